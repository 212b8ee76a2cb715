/*
 * The protocol core: handshake, per-partition streams, acknowledgements, snapshots,
 * caught-up and durability bookkeeping. It does no I/O of its own: bytes come in through
 * srm__repl_input(), frames go out through r->out and the transport table, the log through
 * the store interface, and time through r->now_ms (a seam for unit tests).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"
#include "srm_error.h"
#include "srm_log.h"

#define OUT_HIGH      (1u << 20) /* stop producing when this much is queued for the wire */
#define RING_MAX      (1u << 16) /* most unacknowledged batches per partition */
#define IDLE_PINGS    5          /* keepalive intervals of silence before the link drops */
#define DEF_RECONNECT 100
#define DEF_RECON_MAX 2000
#define DEF_KEEPALIVE 1000
#define DEF_DEGRADE   5000
#define DEF_WINDOW    (8u << 20)
#define DEF_BATCH     (256u << 10)
#define MIN_BATCH     (72u << 10) /* one largest datastore entry */
#define APPLY_MAX     (4u << 20)  /* most bytes of entries applied in one transaction */

/* ---- names ---- */

const char *srm_repl_event_name(enum srm_repl_event_type type)
{
    switch (type) {
#define X(name, str)                                                                               \
    case SRM_REPL_EV_##name:                                                                       \
        return str;
        SRM_REPL_EVENT_MAP(X)
#undef X
    case SRM_REPL_EV_MAX:
        break;
    }
    return "?";
}

const char *srm_repl_role_name(enum srm_repl_role role)
{
    switch (role) {
    case SRM_REPL_ROLE_NONE:
        return "none";
    case SRM_REPL_ROLE_SOURCE:
        return "source";
    case SRM_REPL_ROLE_SINK:
        return "sink";
    case SRM_REPL_ROLE_MAX:
        break;
    }
    return "?";
}

/* ---- buffers ---- */

static int buf_reserve(struct srm__repl_buf *b, size_t n)
{
    if (b->off > 0 && (b->off == b->len || b->cap - b->len < n)) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

static void buf_free(struct srm__repl_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static size_t buf_used(const struct srm__repl_buf *b)
{
    return b->len - b->off;
}

/* Reserves room for a frame with up to max payload bytes; returns the payload area. */
static uint8_t *frame_begin(struct srm_repl *r, size_t max)
{
    if (buf_reserve(&r->out, SRM__REPL_HDR + max) < 0)
        return NULL;
    return r->out.data + r->out.len + SRM__REPL_HDR;
}

static void frame_end(struct srm_repl *r, uint8_t type, size_t len)
{
    uint8_t *hdr = r->out.data + r->out.len;
    srm__repl_frame_header(hdr, type, hdr + SRM__REPL_HDR, len);
    r->out.len += SRM__REPL_HDR + len;
    r->st.frames_sent++;
    r->st.bytes_sent += SRM__REPL_HDR + len;
    r->last_tx_ms = r->now_ms(r);
}

/* ---- events ---- */

void srm__repl_emit(struct srm_repl *r, enum srm_repl_event_type type, uint32_t part, int err,
                    const char *fmt, ...)
{
    char detail[512];
    struct srm_repl_event ev = {.type = type, .part = part, .err = err, .detail = NULL};
    if (r->closing)
        return;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        ev.detail = detail;
    }
    srm_log_debug("repl %u->%u: %s part %u err %d %s", r->cfg.node_id, r->cfg.peer_id,
                  srm_repl_event_name(type), part, err, ev.detail ? ev.detail : "");
    if (r->cfg.event_cb)
        r->cfg.event_cb(r, &ev, r->cfg.event_data);
}

/* ---- partitions ---- */

static struct srm__repl_part *part_find(struct srm_repl *r, uint32_t part)
{
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].part == part)
            return &r->parts[i];
    return NULL;
}

/* Partitions live in one array that is never reallocated (SRM_REPL_PARTS_MAX slots), so a
 * pointer stays valid even when a callback declares a new partition. */
static struct srm__repl_part *part_add(struct srm_repl *r, uint32_t part)
{
    if (r->nparts >= SRM_REPL_PARTS_MAX)
        return NULL;
    struct srm__repl_part *p = &r->parts[r->nparts++];
    memset(p, 0, sizeof(*p));
    p->part = part;
    p->st.part = part;
    return p;
}

static void mark_push(struct srm_repl *r, struct srm__repl_part *p, uint64_t seq)
{
    uint64_t now = r->now_ms(r);
    if (p->marks_len == SRM__REPL_MARKS) {
        unsigned last = (p->marks_head + p->marks_len - 1) % SRM__REPL_MARKS;
        p->marks[last].seq = seq; /* full: extend the newest (ages stay conservative) */
        return;
    }
    unsigned i = (p->marks_head + p->marks_len) % SRM__REPL_MARKS;
    p->marks[i].seq = seq;
    p->marks[i].ms = now;
    p->marks_len++;
}

static void marks_drop(struct srm__repl_part *p, uint64_t acked)
{
    while (p->marks_len && p->marks[p->marks_head].seq <= acked) {
        p->marks_head = (p->marks_head + 1) % SRM__REPL_MARKS;
        p->marks_len--;
    }
}

static void stream_start(struct srm_repl *r, struct srm__repl_part *p, uint64_t from);

/* A source's log got a new generation (its contents were replaced): sequences restart, so
 * the peer's position is meaningless and the stream restarts from the beginning. */
static void new_generation(struct srm_repl *r, struct srm__repl_part *p, uint64_t gen,
                           uint64_t head)
{
    p->gen = gen;
    p->head = head;
    p->marks_len = 0;
    (void)r->store->set_replicated(r->store_ctx, p->part, 0, true);
    if (p->streaming)
        stream_start(r, p, 0);
}

static int refresh_head(struct srm_repl *r, struct srm__repl_part *p)
{
    uint64_t g, h;
    int rc = r->store->log_head(r->store_ctx, p->part, &g, &h);
    if (rc < 0)
        return rc;
    if (g != p->gen && p->gen != 0) {
        new_generation(r, p, g, h);
        return 0;
    }
    p->gen = g;
    if (h > p->head) {
        p->head = h;
        mark_push(r, p, h);
    }
    return 0;
}

static void ring_clear(struct srm__repl_part *p)
{
    p->ring_head = p->ring_len = 0;
    p->inflight_bytes = 0;
}

static int ring_push(struct srm__repl_part *p, uint64_t last, uint32_t bytes)
{
    if (p->ring_len == p->ring_cap) {
        if (p->ring_cap >= RING_MAX)
            return -ENOBUFS;
        size_t cap = p->ring_cap ? p->ring_cap * 2 : 256;
        struct srm__repl_inflight *n = malloc(cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i < p->ring_len; i++)
            n[i] = p->ring[(p->ring_head + i) % p->ring_cap];
        free(p->ring);
        p->ring = n;
        p->ring_cap = cap;
        p->ring_head = 0;
    }
    p->ring[(p->ring_head + p->ring_len) % p->ring_cap] =
        (struct srm__repl_inflight){.last_seq = last, .bytes = bytes};
    p->ring_len++;
    p->inflight_bytes += bytes;
    return 0;
}

static void ring_ack(struct srm__repl_part *p, uint64_t seq)
{
    while (p->ring_len && p->ring[p->ring_head].last_seq <= seq) {
        p->inflight_bytes -= p->ring[p->ring_head].bytes;
        p->ring_head = (p->ring_head + 1) % p->ring_cap;
        p->ring_len--;
    }
}

static void snap_abort(struct srm_repl *r, struct srm__repl_part *p)
{
    if (p->snap)
        r->store->snap_close(p->snap);
    p->snap = NULL;
    p->snap_state = SRM__REPL_SNAP_NONE;
    p->snap_sent = p->snap_acked = 0;
    p->snap_bytes = 0;
}

static void inst_abort(struct srm_repl *r, struct srm__repl_part *p)
{
    if (p->inst)
        r->store->install_abort(p->inst);
    p->inst = NULL;
    p->inst_chunks = 0;
    p->inst_bytes = 0;
}

/* Drops the batches received and not applied (the link is gone: they were not
 * acknowledged, so the peer sends them again). */
static void queue_drop(struct srm__repl_part *p)
{
    p->q.off = p->q.len = 0;
    p->q_count = 0;
    p->q_frames = 0;
}

static void stream_stop(struct srm_repl *r, struct srm__repl_part *p)
{
    snap_abort(r, p);
    inst_abort(r, p);
    queue_drop(p);
    p->streaming = false;
    ring_clear(p);
    p->ack_pending = false;
    p->snap_ack_pending = 0;
}

static bool part_caught_up(struct srm_repl *r, const struct srm__repl_part *p)
{
    if (r->link != SRM__REPL_LINK_READY)
        return false;
    if (p->role == SRM_REPL_ROLE_SOURCE)
        return p->streaming && p->snap_state == SRM__REPL_SNAP_NONE && p->acked >= p->head;
    if (p->role == SRM_REPL_ROLE_SINK)
        return p->peer_known && p->peer_role == SRM_REPL_ROLE_SOURCE && !p->inst &&
               (p->peer_head == 0 || (p->peer_gen == p->gen && p->head >= p->peer_head));
    return false;
}

static void set_degraded(struct srm_repl *r, struct srm__repl_part *p, bool on)
{
    int rc = r->store->set_degraded(r->store_ctx, p->part, on);
    if (rc < 0) {
        srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc, "cannot %s sync-degraded flag: %s",
                       on ? "set" : "clear", srm_strerror(rc));
        return;
    }
    p->degraded = on;
    if (on) {
        p->st.sync_degradations++;
        r->st.sync_degradations++;
        srm__repl_emit(r, SRM_REPL_EV_DEGRADED, p->part, SRM_EPEER_GONE,
                       "partition %u: peer absent or silent for %u ms; sync writes no longer "
                       "wait for it",
                       p->part, r->cfg.degrade_ms);
    } else {
        srm__repl_emit(r, SRM_REPL_EV_SYNC_RESTORED, p->part, 0,
                       "partition %u: peer caught up; sync writes wait for it again", p->part);
    }
}

/* Called whenever a partition's position moved: raises CAUGHT_UP once, restores sync. */
static void check_caught_up(struct srm_repl *r, struct srm__repl_part *p)
{
    if (!part_caught_up(r, p)) {
        /* a source's head may have moved without a notification yet: nothing to do */
        return;
    }
    if (p->role == SRM_REPL_ROLE_SOURCE && p->degraded)
        set_degraded(r, p, false);
    if (!p->caught_up_told) {
        p->caught_up_told = true;
        srm__repl_emit(r, SRM_REPL_EV_CAUGHT_UP, p->part, 0, "partition %u caught up at %llu (%s)",
                       p->part, (unsigned long long)p->head, srm_repl_role_name(p->role));
    }
}

static int set_replicated(struct srm_repl *r, struct srm__repl_part *p, uint64_t seq)
{
    int rc = r->store->set_replicated(r->store_ctx, p->part, seq, false);
    if (rc < 0)
        srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc,
                       "cannot record replicated position %llu: %s", (unsigned long long)seq,
                       srm_strerror(rc));
    return rc;
}

/* ---- link ---- */

static void send_error(struct srm_repl *r, int err, const char *msg)
{
    uint8_t *p = frame_begin(r, 6 + SRM__REPL_ERRMSG_MAX);
    if (!p)
        return;
    frame_end(r, SRM__REPL_MSG_ERROR, srm__repl_error_encode(err, msg, p));
}

static void flush(struct srm_repl *r)
{
    if (r->link == SRM__REPL_LINK_DOWN || !r->tp || buf_used(&r->out) == 0)
        return;
    int rc = r->tp->flush(r, r->tp_link);
    if (rc < 0)
        srm__repl_link_down(r, rc);
}

/* Fails the link for a reason found by the core: tell the peer, close, report. */
static void fail_link(struct srm_repl *r, int err, enum srm_repl_event_type ev, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void fail_link(struct srm_repl *r, int err, enum srm_repl_event_type ev, const char *fmt,
                      ...)
{
    char msg[SRM__REPL_ERRMSG_MAX + 1];
    va_list ap;
    if (r->link == SRM__REPL_LINK_DOWN)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    if (err == SRM_EBADFRAME || err == SRM_EBADCHECKSUM)
        r->st.protocol_errors++;
    if (ev == SRM_REPL_EV_REFUSED)
        r->st.refused++;
    srm__repl_emit(r, ev, 0, err, "%s", msg);
    send_error(r, err, msg);
    flush(r);
    if (r->link == SRM__REPL_LINK_DOWN)
        return;
    const struct srm__repl_transport *tp = r->tp;
    void *link = r->tp_link;
    srm__repl_link_down(r, err);
    tp->close(r, link);
}

static void send_part(struct srm_repl *r, struct srm__repl_part *p)
{
    struct srm__repl_partrec pr = {
        .part = p->part, .role = p->role, .epoch = p->epoch, .gen = p->gen, .seq = p->head};
    uint8_t *b = frame_begin(r, SRM__REPL_PARTREC_SIZE);
    if (b)
        frame_end(r, SRM__REPL_MSG_PART, srm__repl_part_encode(&pr, b));
}

static void stream_start(struct srm_repl *r, struct srm__repl_part *p, uint64_t from)
{
    stream_stop(r, p);
    p->streaming = true;
    p->sent = p->acked = from;
    p->ack_ms = r->now_ms(r);
    p->absent_since = 0;
    marks_drop(p, from);
    if (from > 0)
        set_replicated(r, p, from);
}

/* Decides what to do with a partition given both sides' declarations. */
static void reconcile(struct srm_repl *r, struct srm__repl_part *p)
{
    if (r->link != SRM__REPL_LINK_READY)
        return;
    if (p->role == SRM_REPL_ROLE_SOURCE) {
        if (!p->peer_known || p->peer_role != SRM_REPL_ROLE_SINK) {
            if (p->streaming)
                stream_stop(r, p);
            /* A peer still claiming an older epoch is handing over: it steps down when our
             * PART reaches it. Only an equal or newer claim is a conflict. */
            if (p->peer_known && p->peer_role == SRM_REPL_ROLE_SOURCE && p->peer_epoch >= p->epoch)
                srm__repl_emit(r, SRM_REPL_EV_CONFLICT, p->part, SRM_ENOTOWNER,
                               "both nodes own partition %u (epochs: local %llu, peer %llu)",
                               p->part, (unsigned long long)p->epoch,
                               (unsigned long long)p->peer_epoch);
            return;
        }
        if (p->streaming)
            return;
        if (p->peer_epoch > p->epoch) {
            srm__repl_emit(r, SRM_REPL_EV_CONFLICT, p->part, SRM_ESTALE_EPOCH,
                           "peer has partition %u at epoch %llu, newer than this owner's %llu",
                           p->part, (unsigned long long)p->peer_epoch,
                           (unsigned long long)p->epoch);
            return;
        }
        int rc = refresh_head(r, p);
        if (rc < 0) {
            srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc, "cannot read log head: %s",
                           srm_strerror(rc));
            return;
        }
        uint64_t from = p->peer_gen == p->gen ? p->peer_seq : 0;
        if (from > p->head) {
            srm__repl_emit(r, SRM_REPL_EV_CONFLICT, p->part, SRM_ECORRUPT,
                           "peer applied partition %u up to %llu but the local log ends at %llu",
                           p->part, (unsigned long long)from, (unsigned long long)p->head);
            return;
        }
        stream_start(r, p, from);
        check_caught_up(r, p);
    } else if (p->role == SRM_REPL_ROLE_SINK) {
        if (p->peer_known && p->peer_role == SRM_REPL_ROLE_SOURCE)
            check_caught_up(r, p);
    }
}

static void reset_link_state(struct srm_repl *r)
{
    uint64_t now = r->now_ms(r);
    for (unsigned i = 0; i < r->nparts; i++) {
        struct srm__repl_part *p = &r->parts[i];
        stream_stop(r, p);
        p->peer_known = false;
        p->peer_role = SRM_REPL_ROLE_NONE;
        p->peer_head = 0;
        p->caught_up_told = false;
        if (p->role == SRM_REPL_ROLE_SOURCE && p->absent_since == 0)
            p->absent_since = now;
    }
}

void srm__repl_link_up(struct srm_repl *r, const struct srm__repl_transport *tp, void *link)
{
    if (r->link != SRM__REPL_LINK_DOWN)
        srm__repl_link_down(r, 0);
    reset_link_state(r);
    r->tp = tp;
    r->tp_link = link;
    r->link = SRM__REPL_LINK_HELLO;
    r->in.off = r->in.len = 0;
    r->out.off = r->out.len = 0;
    r->last_rx_ms = r->now_ms(r);

    struct srm__repl_hello *h = calloc(1, sizeof(*h));
    if (!h) {
        fail_link(r, -ENOMEM, SRM_REPL_EV_ERROR, "out of memory");
        return;
    }
    h->version_min = h->version_max = SRM_REPL_VERSION;
    snprintf(h->cluster, sizeof(h->cluster), "%s", r->cfg.cluster);
    h->node_id = r->cfg.node_id;
    h->peer_id = r->cfg.peer_id;
    h->instance = r->instance;
    for (unsigned i = 0; i < r->nparts; i++) {
        struct srm__repl_part *p = &r->parts[i];
        if (p->role == SRM_REPL_ROLE_SOURCE)
            (void)refresh_head(r, p);
        h->parts[h->nparts++] = (struct srm__repl_partrec){
            .part = p->part, .role = p->role, .epoch = p->epoch, .gen = p->gen, .seq = p->head};
    }
    uint8_t *b = frame_begin(r, srm__repl_hello_size(h));
    if (b)
        frame_end(r, SRM__REPL_MSG_HELLO, srm__repl_hello_encode(h, b));
    free(h);
    flush(r);
}

void srm__repl_link_down(struct srm_repl *r, int err)
{
    if (r->link == SRM__REPL_LINK_DOWN)
        return;
    bool was_ready = r->link == SRM__REPL_LINK_READY;
    r->link = SRM__REPL_LINK_DOWN;
    r->tp = NULL;
    r->tp_link = NULL;
    r->st.connected = r->st.ready = false;
    reset_link_state(r);
    r->in.off = r->in.len = 0;
    r->out.off = r->out.len = 0;
    if (was_ready)
        r->st.links_down++;
    srm__repl_emit(r, SRM_REPL_EV_DISCONNECTED, 0, err, "link to node %u %s%s%s", r->cfg.peer_id,
                   err ? "lost: " : "closed", err ? srm_strerror(err) : "", "");
}

/* ---- incoming frames ---- */

static int on_hello(struct srm_repl *r, const struct srm__repl_frame *f)
{
    struct srm__repl_hello *h = malloc(sizeof(*h));
    if (!h)
        return -ENOMEM;
    int rc = srm__repl_hello_decode(f->payload, f->len, h);
    if (rc < 0) {
        free(h);
        fail_link(r, rc, SRM_REPL_EV_REFUSED, "malformed handshake from the peer");
        return rc;
    }
    if (h->version_min > SRM_REPL_VERSION || h->version_max < SRM_REPL_VERSION) {
        fail_link(r, SRM_EHANDSHAKE, SRM_REPL_EV_REFUSED,
                  "peer speaks protocol versions %u-%u, this node %u", h->version_min,
                  h->version_max, SRM_REPL_VERSION);
        rc = SRM_EHANDSHAKE;
    } else if (strcmp(h->cluster, r->cfg.cluster) != 0) {
        fail_link(r, SRM_EHANDSHAKE, SRM_REPL_EV_REFUSED,
                  "peer is in cluster '%s', this node in '%s'", h->cluster, r->cfg.cluster);
        rc = SRM_EHANDSHAKE;
    } else if (h->node_id != r->cfg.peer_id || h->peer_id != r->cfg.node_id) {
        fail_link(r, SRM_EHANDSHAKE, SRM_REPL_EV_REFUSED,
                  "peer is node %u expecting node %u; this is node %u expecting node %u",
                  h->node_id, h->peer_id, r->cfg.node_id, r->cfg.peer_id);
        rc = SRM_EHANDSHAKE;
    }
    if (rc < 0) {
        free(h);
        return rc;
    }
    r->peer_instance = h->instance;
    for (unsigned i = 0; i < h->nparts; i++) {
        struct srm__repl_part *p = part_find(r, h->parts[i].part);
        if (!p && !(p = part_add(r, h->parts[i].part)))
            continue; /* table full: the peer's extra partitions are not replicated */
        p->peer_known = true;
        p->peer_role = h->parts[i].role;
        p->peer_epoch = h->parts[i].epoch;
        p->peer_gen = h->parts[i].gen;
        p->peer_seq = h->parts[i].seq;
        p->peer_head = p->peer_role == SRM_REPL_ROLE_SOURCE ? p->peer_seq : 0;
    }
    free(h);
    r->link = SRM__REPL_LINK_READY;
    r->st.ready = true;
    if (r->st.links_up++ > 0)
        r->st.reconnects++;
    r->redial_delay = 0;
    srm__repl_emit(r, SRM_REPL_EV_READY, 0, 0, "replicating with node %u", r->cfg.peer_id);
    for (unsigned i = 0; i < r->nparts && r->link == SRM__REPL_LINK_READY; i++)
        reconcile(r, &r->parts[i]);
    return 0;
}

static int on_part(struct srm_repl *r, const struct srm__repl_frame *f)
{
    struct srm__repl_partrec pr;
    int rc = srm__repl_part_decode(f->payload, f->len, &pr);
    if (rc < 0) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "malformed PART frame");
        return SRM_EBADFRAME;
    }
    struct srm__repl_part *p = part_find(r, pr.part);
    if (!p && !(p = part_add(r, pr.part)))
        return 0;
    bool changed = !p->peer_known || p->peer_role != pr.role || p->peer_epoch != pr.epoch;
    p->peer_known = true;
    p->peer_role = pr.role;
    p->peer_epoch = pr.epoch;
    p->peer_gen = pr.gen;
    p->peer_seq = pr.seq;
    p->peer_head = pr.role == SRM_REPL_ROLE_SOURCE ? pr.seq : 0;
    if (changed && p->streaming)
        stream_stop(r, p);
    if (changed)
        p->caught_up_told = false;
    reconcile(r, p);
    return 0;
}

/* Applies a sink partition's queued batches in one transaction. < 0: the link failed. */
static int apply_queued(struct srm_repl *r, struct srm__repl_part *p)
{
    if (p->q_frames == 0)
        return 0;
    int rc =
        r->store->log_apply(r->store_ctx, p->part, r->cfg.peer_id, p->q_gen, p->q.data + p->q.off,
                            p->q.len - p->q.off, p->q_count, p->q_through);
    if (rc < 0) {
        fail_link(r, rc, SRM_REPL_EV_ERROR, "applying entries %llu-%llu of partition %u: %s",
                  (unsigned long long)p->q_first, (unsigned long long)p->q_through, p->part,
                  srm_strerror(rc));
        return rc;
    }
    p->head = p->q_through;
    p->st.entries_applied += p->q_count;
    p->st.bytes_applied += p->q.len - p->q.off;
    if (p->q_epoch > p->epoch)
        p->epoch = p->q_epoch;
    queue_drop(p);
    return 0;
}

/* Applies every queued batch; < 0: the link failed. */
static int apply_all_queued(struct srm_repl *r)
{
    for (unsigned i = 0; i < r->nparts; i++) {
        int rc = apply_queued(r, &r->parts[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int on_entries(struct srm_repl *r, const struct srm__repl_frame *f)
{
    struct srm__repl_entries e;
    int rc = srm__repl_entries_decode(f->payload, f->len, &e);
    if (rc < 0) {
        fail_link(r, rc, SRM_REPL_EV_ERROR, "malformed ENTRIES frame");
        return rc;
    }
    struct srm__repl_part *p = part_find(r, e.part);
    if (!p || p->role != SRM_REPL_ROLE_SINK)
        return 0; /* declared away meanwhile; the peer learns it from our PART */
    if (p->inst) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "ENTRIES for partition %u during a snapshot",
                  e.part);
        return SRM_EBADFRAME;
    }
    uint64_t owner_epoch = p->q_frames && p->q_epoch > p->epoch ? p->q_epoch : p->epoch;
    if (e.epoch < owner_epoch) {
        /* a stale owner: never apply (SPEC §7: fencing); the daemon resolves it */
        srm__repl_emit(r, SRM_REPL_EV_CONFLICT, p->part, SRM_ESTALE_EPOCH,
                       "entries of partition %u at epoch %llu, owner epoch is %llu: refused",
                       e.part, (unsigned long long)e.epoch, (unsigned long long)owner_epoch);
        return 0;
    }
    if (p->q_frames && e.gen != p->q_gen && (rc = apply_queued(r, p)) < 0)
        return rc;
    if (e.gen != p->gen) {
        /* the source's log has another generation: nothing of it is applied here yet */
        p->gen = e.gen;
        p->head = 0;
    }
    uint64_t have = p->q_frames ? p->q_through : p->head;
    if (e.first_seq > have + 1) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR,
                  "sequence gap on partition %u: applied %llu, received %llu-%llu", e.part,
                  (unsigned long long)have, (unsigned long long)e.first_seq,
                  (unsigned long long)e.through_seq);
        return SRM_EBADFRAME;
    }
    if (p->peer_gen != e.gen || e.head_seq > p->peer_head) {
        p->peer_gen = e.gen;
        p->peer_head = e.head_seq;
    }
    p->ack_pending = true;
    if (e.through_seq <= have)
        return 0; /* already applied (a resend after reconnect) */
    /* Queue the batch: the batches that arrive together go into one transaction. */
    if (buf_reserve(&p->q, e.len) < 0) {
        fail_link(r, -ENOMEM, SRM_REPL_EV_ERROR, "out of memory");
        return -ENOMEM;
    }
    if (e.len)
        memcpy(p->q.data + p->q.len, e.data, e.len);
    p->q.len += e.len;
    if (p->q_frames++ == 0) {
        p->q_first = e.first_seq;
        p->q_count = 0;
        p->q_epoch = e.epoch;
    }
    p->q_count += e.count;
    p->q_through = e.through_seq;
    p->q_gen = e.gen;
    if (e.epoch > p->q_epoch)
        p->q_epoch = e.epoch;
    if (!r->defer_flush || p->q.len - p->q.off >= APPLY_MAX)
        return apply_queued(r, p);
    return 0;
}

static int on_ack(struct srm_repl *r, const struct srm__repl_frame *f)
{
    struct srm__repl_ack a;
    int rc = srm__repl_ack_decode(f->payload, f->len, &a);
    if (rc < 0) {
        fail_link(r, rc, SRM_REPL_EV_ERROR, "malformed ACK frame");
        return rc;
    }
    struct srm__repl_part *p = part_find(r, a.part);
    if (!p || p->role != SRM_REPL_ROLE_SOURCE || !p->streaming || a.seq < p->acked ||
        a.gen != p->gen)
        return 0; /* stale: from before a role change or a new generation */
    if (p->snap_state == SRM__REPL_SNAP_WAITING && a.seq >= p->snap_seq) {
        p->sent = a.seq;
        p->st.snapshots_sent++;
        r->st.snapshots_sent++;
        uint64_t sseq = p->snap_seq;
        snap_abort(r, p);
        srm__repl_emit(r, SRM_REPL_EV_SNAPSHOT_SENT, p->part, 0,
                       "snapshot of partition %u at %llu installed by the peer", p->part,
                       (unsigned long long)sseq);
    } else if (a.seq > p->sent) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR,
                  "peer acknowledged %llu of partition %u, only %llu were sent",
                  (unsigned long long)a.seq, a.part, (unsigned long long)p->sent);
        return SRM_EBADFRAME;
    }
    ring_ack(p, a.seq);
    p->ack_ms = r->now_ms(r);
    if (a.seq > p->acked) {
        p->acked = a.seq;
        marks_drop(p, a.seq);
        set_replicated(r, p, a.seq);
    }
    if (p->acked >= p->head)
        (void)refresh_head(r, p);
    check_caught_up(r, p);
    return 0;
}

static int on_snap(struct srm_repl *r, const struct srm__repl_frame *f)
{
    struct srm__repl_snap s;
    int rc = srm__repl_snap_decode(f->type, f->payload, f->len, &s);
    if (rc < 0) {
        fail_link(r, rc, SRM_REPL_EV_ERROR, "malformed %s frame", srm__repl_msg_name(f->type));
        return rc;
    }
    struct srm__repl_part *p = part_find(r, s.part);
    if (f->type == SRM__REPL_MSG_SNAP_ACK) {
        if (p && p->role == SRM_REPL_ROLE_SOURCE && p->snap_state != SRM__REPL_SNAP_NONE &&
            s.seq == p->snap_seq && s.index <= p->snap_sent && s.index > p->snap_acked) {
            p->snap_acked = s.index;
            p->ack_ms = r->now_ms(r);
        }
        return 0;
    }
    if (!p || p->role != SRM_REPL_ROLE_SINK)
        return 0;
    if (f->type == SRM__REPL_MSG_SNAP_BEGIN) {
        if (s.epoch < p->epoch) {
            srm__repl_emit(r, SRM_REPL_EV_CONFLICT, p->part, SRM_ESTALE_EPOCH,
                           "snapshot of partition %u at epoch %llu, owner epoch is %llu: refused",
                           s.part, (unsigned long long)s.epoch, (unsigned long long)p->epoch);
            return 0;
        }
        struct srm__repl_snapinfo info;
        if (srm__repl_snapinfo_decode(s.data, s.len, &info) < 0 || info.source != r->cfg.peer_id) {
            fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "malformed SNAP_BEGIN frame");
            return SRM_EBADFRAME;
        }
        inst_abort(r, p);
        rc = r->store->install_begin(r->store_ctx, p->part, s.seq, &info, &p->inst);
        if (rc < 0) {
            p->inst = NULL;
            fail_link(r, rc, SRM_REPL_EV_ERROR, "cannot begin snapshot install of partition %u: %s",
                      p->part, srm_strerror(rc));
            return rc;
        }
        p->inst_seq = s.seq;
        p->inst_epoch = s.epoch;
        p->inst_gen = info.gen;
        return 0;
    }
    if (!p->inst || s.seq != p->inst_seq || s.index != p->inst_chunks) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR,
                  "%s of partition %u out of order (chunk %u, expected %u)",
                  srm__repl_msg_name(f->type), s.part, s.index, p->inst_chunks);
        return SRM_EBADFRAME;
    }
    if (f->type == SRM__REPL_MSG_SNAP_CHUNK) {
        rc = r->store->install_chunk(p->inst, s.data, s.len);
        if (rc < 0) {
            fail_link(r, rc, SRM_REPL_EV_ERROR, "snapshot chunk %u of partition %u refused: %s",
                      s.index, p->part, srm_strerror(rc));
            return rc;
        }
        p->inst_chunks++;
        p->inst_bytes += s.len;
        p->snap_ack_pending = p->inst_chunks;
        return 0;
    }
    /* SNAP_END */
    if (s.total != p->inst_bytes) {
        fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR,
                  "snapshot of partition %u: %llu bytes announced, %llu received", p->part,
                  (unsigned long long)s.total, (unsigned long long)p->inst_bytes);
        return SRM_EBADFRAME;
    }
    void *inst = p->inst;
    p->inst = NULL;
    rc = r->store->install_commit(inst);
    if (rc < 0) {
        fail_link(r, rc, SRM_REPL_EV_ERROR, "cannot install snapshot of partition %u: %s", p->part,
                  srm_strerror(rc));
        return rc;
    }
    p->head = p->inst_seq;
    p->gen = p->inst_gen;
    p->peer_gen = p->inst_gen;
    if (p->inst_epoch > p->epoch)
        p->epoch = p->inst_epoch;
    if (p->head > p->peer_head)
        p->peer_head = p->head;
    p->inst_chunks = 0;
    p->inst_bytes = 0;
    p->ack_pending = true;
    p->snap_ack_pending = 0;
    p->st.snapshots_installed++;
    r->st.snapshots_installed++;
    srm__repl_emit(r, SRM_REPL_EV_SNAPSHOT_INSTALLED, p->part, 0,
                   "snapshot of partition %u at %llu installed", p->part,
                   (unsigned long long)p->head);
    return 0;
}

static int on_frame(struct srm_repl *r, const struct srm__repl_frame *f)
{
    r->st.frames_received++;
    r->st.bytes_received += SRM__REPL_HDR + f->len;
    if (f->type == SRM__REPL_MSG_ERROR) {
        int err = 0;
        char msg[SRM__REPL_ERRMSG_MAX + 1];
        if (srm__repl_error_decode(f->payload, f->len, &err, msg, sizeof(msg)) < 0) {
            fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "malformed ERROR frame");
            return SRM_EBADFRAME;
        }
        bool hello = r->link == SRM__REPL_LINK_HELLO;
        if (hello)
            r->st.refused++;
        srm__repl_emit(r, hello ? SRM_REPL_EV_REFUSED : SRM_REPL_EV_ERROR, 0, err,
                       "peer closed the link: %s", msg);
        const struct srm__repl_transport *tp = r->tp;
        void *link = r->tp_link;
        srm__repl_link_down(r, err);
        tp->close(r, link);
        return err;
    }
    if (r->link == SRM__REPL_LINK_HELLO) {
        if (f->type != SRM__REPL_MSG_HELLO) {
            fail_link(r, SRM_EHANDSHAKE, SRM_REPL_EV_REFUSED, "%s frame before the handshake",
                      srm__repl_msg_name(f->type));
            return SRM_EHANDSHAKE;
        }
        return on_hello(r, f);
    }
    /* Batches queued so far are applied before any frame that could depend on them. */
    if (f->type != SRM__REPL_MSG_ENTRIES && f->type != SRM__REPL_MSG_ACK &&
        f->type != SRM__REPL_MSG_PING && f->type != SRM__REPL_MSG_PONG) {
        int rc = apply_all_queued(r);
        if (rc < 0)
            return rc;
    }
    switch (f->type) {
    case SRM__REPL_MSG_HELLO:
        fail_link(r, SRM_EHANDSHAKE, SRM_REPL_EV_ERROR, "second handshake on one link");
        return SRM_EHANDSHAKE;
    case SRM__REPL_MSG_PART:
        return on_part(r, f);
    case SRM__REPL_MSG_ENTRIES:
        return on_entries(r, f);
    case SRM__REPL_MSG_ACK:
        return on_ack(r, f);
    case SRM__REPL_MSG_SNAP_BEGIN:
    case SRM__REPL_MSG_SNAP_CHUNK:
    case SRM__REPL_MSG_SNAP_END:
    case SRM__REPL_MSG_SNAP_ACK:
        return on_snap(r, f);
    case SRM__REPL_MSG_PING: {
        uint64_t tok;
        uint8_t *b;
        if (srm__repl_ping_decode(f->payload, f->len, &tok) < 0) {
            fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "malformed PING frame");
            return SRM_EBADFRAME;
        }
        if ((b = frame_begin(r, 8)))
            frame_end(r, SRM__REPL_MSG_PONG, srm__repl_ping_encode(tok, b));
        return 0;
    }
    case SRM__REPL_MSG_PONG: {
        uint64_t tok;
        if (srm__repl_ping_decode(f->payload, f->len, &tok) < 0) {
            fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "malformed PONG frame");
            return SRM_EBADFRAME;
        }
        return 0;
    }
    }
    fail_link(r, SRM_EBADFRAME, SRM_REPL_EV_ERROR, "unexpected frame type %u", f->type);
    return SRM_EBADFRAME;
}

/* Acknowledge everything applied by this input: one ACK per partition, however many
 * batches arrived (group commit on the receiving side). */
static void send_acks(struct srm_repl *r)
{
    for (unsigned i = 0; i < r->nparts && r->link == SRM__REPL_LINK_READY; i++) {
        struct srm__repl_part *p = &r->parts[i];
        if (p->snap_ack_pending) {
            struct srm__repl_snap s = {.part = p->part,
                                       .epoch = p->inst_epoch,
                                       .seq = p->inst_seq,
                                       .index = p->snap_ack_pending};
            uint8_t *b = frame_begin(r, SRM__REPL_SNAP_HEAD);
            if (b)
                frame_end(r, SRM__REPL_MSG_SNAP_ACK, srm__repl_snap_encode_head(&s, b));
            p->snap_ack_pending = 0;
        }
        if (p->ack_pending) {
            struct srm__repl_ack a = {
                .part = p->part, .gen = p->gen, .seq = p->head, .epoch = p->epoch};
            uint8_t *b = frame_begin(r, SRM__REPL_ACK_SIZE);
            if (b)
                frame_end(r, SRM__REPL_MSG_ACK, srm__repl_ack_encode(&a, b));
            p->ack_pending = false;
            check_caught_up(r, p);
        }
    }
}

int srm__repl_input(struct srm_repl *r, const void *data, size_t len)
{
    const uint8_t *d = data;
    if (r->link == SRM__REPL_LINK_DOWN || r->closing)
        return SRM_EPEER_GONE;
    r->last_rx_ms = r->now_ms(r);
    /* Decode straight from the caller's buffer when nothing is pending; keep only a tail. */
    while (len > 0 || buf_used(&r->in) > 0) {
        const uint8_t *src;
        size_t avail;
        bool from_in = buf_used(&r->in) > 0;
        if (from_in) {
            size_t need = SRM__REPL_HDR;
            if (buf_used(&r->in) >= SRM__REPL_HDR) {
                const uint8_t *h = r->in.data + r->in.off;
                need = SRM__REPL_HDR + ((uint32_t)h[0] | (uint32_t)h[1] << 8 |
                                        (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24);
                if (need > SRM__REPL_HDR + SRM__REPL_FRAME_MAX)
                    need = SRM__REPL_HDR; /* the decoder rejects it below */
            }
            size_t have = buf_used(&r->in);
            if (have < need && len > 0) {
                size_t take = need - have < len ? need - have : len;
                if (buf_reserve(&r->in, take) < 0) {
                    fail_link(r, -ENOMEM, SRM_REPL_EV_ERROR, "out of memory");
                    return -ENOMEM;
                }
                memcpy(r->in.data + r->in.len, d, take);
                r->in.len += take;
                d += take;
                len -= take;
                continue;
            }
            src = r->in.data + r->in.off;
            avail = buf_used(&r->in);
        } else {
            src = d;
            avail = len;
        }
        struct srm__repl_frame f;
        int n = srm__repl_frame_decode(src, avail, SRM__REPL_FRAME_MAX, &f);
        if (n < 0) {
            fail_link(r, n, SRM_REPL_EV_ERROR, "%s from the peer",
                      n == SRM_EBADCHECKSUM ? "frame checksum mismatch" : "malformed frame");
            return n;
        }
        if (n == 0) {
            if (from_in)
                break; /* need more than we have; len is 0 here */
            if (buf_reserve(&r->in, len) < 0) {
                fail_link(r, -ENOMEM, SRM_REPL_EV_ERROR, "out of memory");
                return -ENOMEM;
            }
            memcpy(r->in.data + r->in.len, d, len);
            r->in.len += len;
            len = 0;
            break;
        }
        int rc = on_frame(r, &f);
        if (r->link == SRM__REPL_LINK_DOWN || r->closing)
            return rc < 0 ? rc : SRM_EPEER_GONE;
        if (from_in) {
            r->in.off += (size_t)n;
            if (r->in.off == r->in.len)
                r->in.off = r->in.len = 0;
        } else {
            d += n;
            len -= (size_t)n;
        }
    }
    r->input_pending = true;
    if (!r->defer_flush)
        srm__repl_input_flush(r);
    return 0;
}

void srm__repl_input_flush(struct srm_repl *r)
{
    if (!r->input_pending || r->closing)
        return;
    r->input_pending = false;
    if (r->link == SRM__REPL_LINK_DOWN)
        return;
    if (apply_all_queued(r) < 0)
        return;
    send_acks(r);
    srm__repl_pump(r);
}

/* ---- outgoing streams ---- */

static bool out_full(struct srm_repl *r)
{
    size_t backlog = r->tp ? r->tp->backlog(r, r->tp_link) : 0;
    return buf_used(&r->out) + backlog >= OUT_HIGH;
}

static bool pump_snapshot(struct srm_repl *r, struct srm__repl_part *p)
{
    if (p->snap_state != SRM__REPL_SNAP_SENDING)
        return false;
    if ((uint64_t)(p->snap_sent - p->snap_acked) * r->cfg.batch_bytes >= r->cfg.window_bytes)
        return false;
    uint8_t *b = frame_begin(r, SRM__REPL_SNAP_HEAD + r->cfg.batch_bytes);
    if (!b)
        return false;
    size_t got = 0;
    int rc = r->store->snap_next(p->snap, b + SRM__REPL_SNAP_HEAD, r->cfg.batch_bytes, &got);
    if (rc < 0) {
        srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc, "reading snapshot of partition %u: %s",
                       p->part, srm_strerror(rc));
        fail_link(r, rc, SRM_REPL_EV_ERROR, "snapshot of partition %u failed on the sender",
                  p->part);
        return false;
    }
    struct srm__repl_snap s = {.part = p->part, .epoch = p->epoch, .seq = p->snap_seq};
    if (got == 0) {
        s.index = p->snap_sent;
        s.total = p->snap_bytes;
        frame_end(r, SRM__REPL_MSG_SNAP_END, srm__repl_snap_encode_head(&s, b));
        p->snap_state = SRM__REPL_SNAP_WAITING;
        return true;
    }
    s.index = p->snap_sent++;
    srm__repl_snap_encode_head(&s, b);
    frame_end(r, SRM__REPL_MSG_SNAP_CHUNK, SRM__REPL_SNAP_HEAD + got);
    p->snap_bytes += got;
    return true;
}

static bool snapshot_begin(struct srm_repl *r, struct srm__repl_part *p)
{
    uint64_t seq = 0;
    void *snap = NULL;
    struct srm__repl_snapinfo info;
    int rc = r->store->snap_open(r->store_ctx, p->part, &snap, &seq, &info);
    if (rc < 0) {
        srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc,
                       "cannot open snapshot of partition %u: %s", p->part, srm_strerror(rc));
        p->streaming = false; /* retried on the next link */
        return false;
    }
    uint8_t *b = frame_begin(r, SRM__REPL_SNAP_HEAD + SRM__REPL_SNAPINFO_SIZE);
    if (!b) {
        r->store->snap_close(snap);
        return false;
    }
    if (info.gen != p->gen) {
        r->store->snap_close(snap);
        new_generation(r, p, info.gen, seq);
        return true;
    }
    p->snap = snap;
    p->snap_seq = seq;
    p->snap_state = SRM__REPL_SNAP_SENDING;
    p->snap_sent = p->snap_acked = 0;
    p->snap_bytes = 0;
    ring_clear(p);
    p->ack_ms = r->now_ms(r);
    p->snap_info = info;
    struct srm__repl_snap s = {.part = p->part, .epoch = p->epoch, .seq = seq};
    size_t n = srm__repl_snap_encode_head(&s, b);
    n += srm__repl_snapinfo_encode(&info, b + n);
    frame_end(r, SRM__REPL_MSG_SNAP_BEGIN, n);
    srm_log_debug("repl: partition %u: peer at %llu is behind the horizon; snapshot at %llu",
                  p->part, (unsigned long long)p->acked, (unsigned long long)seq);
    return true;
}

/* One step of one partition's stream; true if a frame was produced. */
static bool pump_part(struct srm_repl *r, struct srm__repl_part *p, bool *head_fresh)
{
    if (p->role != SRM_REPL_ROLE_SOURCE || !p->streaming)
        return false;
    if (p->snap_state != SRM__REPL_SNAP_NONE)
        return pump_snapshot(r, p);
    if (p->inflight_bytes >= r->cfg.window_bytes || p->ring_len >= RING_MAX)
        return false;
    if (p->sent >= p->head) {
        if (*head_fresh)
            return false;
        *head_fresh = true;
        if (refresh_head(r, p) < 0 || p->sent >= p->head)
            return false;
    }
    uint8_t *b = frame_begin(r, SRM__REPL_ENTRIES_HEAD + r->cfg.batch_bytes);
    if (!b)
        return false;
    size_t len = 0;
    uint64_t next = 0, gen = 0;
    uint32_t count = 0;
    int rc = r->store->log_read(r->store_ctx, p->part, p->sent + 1, r->cfg.peer_id,
                                b + SRM__REPL_ENTRIES_HEAD, r->cfg.batch_bytes, &len, &count, &next,
                                &gen);
    if (rc == SRM_EHORIZON)
        return snapshot_begin(r, p);
    if (rc < 0) {
        srm__repl_emit(r, SRM_REPL_EV_ERROR, p->part, rc, "reading log of partition %u: %s",
                       p->part, srm_strerror(rc));
        p->streaming = false;
        return false;
    }
    if (gen != p->gen) {
        new_generation(r, p, gen, p->head);
        return true;
    }
    if (next <= p->sent + 1)
        return false;
    uint64_t through = next - 1;
    if (through > p->head) {
        p->head = through;
        mark_push(r, p, through);
    }
    struct srm__repl_entries e = {.part = p->part,
                                  .epoch = p->epoch,
                                  .gen = gen,
                                  .first_seq = p->sent + 1,
                                  .through_seq = through,
                                  .head_seq = p->head,
                                  .count = count};
    srm__repl_entries_encode_head(&e, b);
    frame_end(r, SRM__REPL_MSG_ENTRIES, SRM__REPL_ENTRIES_HEAD + len);
    (void)ring_push(p, through, (uint32_t)(SRM__REPL_HDR + SRM__REPL_ENTRIES_HEAD + len));
    p->st.entries_sent += count;
    p->st.bytes_sent += len;
    p->sent = through;
    return true;
}

void srm__repl_pump(struct srm_repl *r)
{
    if (r->closing)
        return;
    if (r->link == SRM__REPL_LINK_READY && r->nparts > 0) {
        bool fresh[SRM_REPL_PARTS_MAX];
        memset(fresh, 0, sizeof(bool) * r->nparts);
        bool progress = true;
        while (progress && !out_full(r) && r->link == SRM__REPL_LINK_READY) {
            progress = false;
            unsigned n = r->nparts;
            for (unsigned k = 0; k < n && !out_full(r) && r->link == SRM__REPL_LINK_READY; k++) {
                unsigned i = (r->rr + k) % n;
                if (pump_part(r, &r->parts[i], &fresh[i]))
                    progress = true;
            }
            r->rr++;
        }
    }
    flush(r);
}

static void notified_part(void *arg, uint32_t part, uint64_t seq)
{
    struct srm_repl *r = arg;
    for (unsigned i = 0; i < r->nparts; i++) {
        struct srm__repl_part *p = &r->parts[i];
        if (p->role != SRM_REPL_ROLE_SOURCE || (part != 0 && p->part != part))
            continue;
        if (part == 0 || seq == 0)
            (void)refresh_head(r, p);
        else if (seq > p->head) {
            p->head = seq;
            mark_push(r, p, seq);
        }
    }
}

void srm__repl_notified(struct srm_repl *r)
{
    if (r->store->notify_drain)
        r->store->notify_drain(r->store_ctx, notified_part, r);
    srm__repl_pump(r);
}

int srm_repl_notify(struct srm_repl *r)
{
    notified_part(r, 0, 0);
    srm__repl_pump(r);
    return 0;
}

/* ---- timers ---- */

void srm__repl_tick(struct srm_repl *r)
{
    if (r->closing)
        return;
    uint64_t now = r->now_ms(r);
    if (r->link != SRM__REPL_LINK_DOWN) {
        if (now - r->last_rx_ms >= (uint64_t)IDLE_PINGS * r->cfg.keepalive_ms) {
            fail_link(r, -ETIMEDOUT, SRM_REPL_EV_ERROR, "node %u silent for %llu ms",
                      r->cfg.peer_id, (unsigned long long)(now - r->last_rx_ms));
        } else if (now - r->last_tx_ms >= r->cfg.keepalive_ms) {
            uint8_t *b = frame_begin(r, 8);
            if (b)
                frame_end(r, SRM__REPL_MSG_PING, srm__repl_ping_encode(now, b));
        }
    }
    for (unsigned i = 0; i < r->nparts; i++) {
        struct srm__repl_part *p = &r->parts[i];
        if (p->role != SRM_REPL_ROLE_SOURCE)
            continue;
        bool present = r->link == SRM__REPL_LINK_READY && p->streaming;
        if (!present && p->absent_since == 0)
            p->absent_since = now;
        if (present)
            p->absent_since = 0;
        bool outstanding = p->acked < p->sent || p->snap_state != SRM__REPL_SNAP_NONE;
        bool stalled = present && outstanding && now - p->ack_ms >= r->cfg.degrade_ms;
        bool absent = !present && now - p->absent_since >= r->cfg.degrade_ms;
        if (!p->degraded && (absent || stalled))
            set_degraded(r, p, true);
        if (present && p->acked > p->trimmed) {
            int rc = r->store->log_trim(r->store_ctx, p->part, p->acked);
            if (rc >= 0)
                p->trimmed = p->acked;
        }
    }
    srm__repl_pump(r);
}

/* ---- construction and API ---- */

static uint64_t loop_now(struct srm_repl *r)
{
    return uv_now(r->loop);
}

static char *dup_opt(const char *s, int *err)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *err = -ENOMEM;
    return d;
}

int srm__repl_new_with_store(uv_loop_t *loop, const struct srm_repl_config *cfg,
                             const struct srm__repl_store_ops *store, void *store_ctx,
                             struct srm_repl **ret_repl)
{
    if (!cfg || !store || !ret_repl || !cfg->cluster || !cfg->peer_name)
        return -EINVAL;
    if (!srm__repl_name_valid(cfg->cluster, strlen(cfg->cluster)) ||
        !srm__repl_name_valid(cfg->peer_name, strlen(cfg->peer_name)))
        return -EINVAL;
    if (cfg->node_id == 0 || cfg->peer_id == 0 || cfg->node_id == cfg->peer_id)
        return -EINVAL;
    if ((cfg->listen_host && cfg->listen_port == 0) || (cfg->peer_host && cfg->peer_port == 0))
        return -EINVAL;
    if (cfg->batch_bytes &&
        (cfg->batch_bytes < MIN_BATCH || cfg->batch_bytes > SRM__REPL_BATCH_MAX))
        return -EINVAL;

    struct srm_repl *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->parts = calloc(SRM_REPL_PARTS_MAX, sizeof(*r->parts));
    if (!r->parts) {
        free(r);
        return -ENOMEM;
    }
    int err = 0;
    r->loop = loop;
    r->cfg = *cfg;
    r->s_cluster = dup_opt(cfg->cluster, &err);
    r->s_peer_name = dup_opt(cfg->peer_name, &err);
    r->s_ca = dup_opt(cfg->ca_file, &err);
    r->s_cert = dup_opt(cfg->cert_file, &err);
    r->s_key = dup_opt(cfg->key_file, &err);
    r->s_listen = dup_opt(cfg->listen_host, &err);
    r->s_peer_host = dup_opt(cfg->peer_host, &err);
    if (err < 0) {
        srm__repl_free(r);
        return err;
    }
    r->cfg.cluster = r->s_cluster;
    r->cfg.peer_name = r->s_peer_name;
    r->cfg.ca_file = r->s_ca;
    r->cfg.cert_file = r->s_cert;
    r->cfg.key_file = r->s_key;
    r->cfg.listen_host = r->s_listen;
    r->cfg.peer_host = r->s_peer_host;
#define DEF(f, v)                                                                                  \
    if (!r->cfg.f)                                                                                 \
    r->cfg.f = (v)
    DEF(reconnect_min_ms, DEF_RECONNECT);
    DEF(reconnect_max_ms, DEF_RECON_MAX);
    DEF(keepalive_ms, DEF_KEEPALIVE);
    DEF(degrade_ms, DEF_DEGRADE);
    DEF(window_bytes, DEF_WINDOW);
    DEF(batch_bytes, DEF_BATCH);
#undef DEF
    if (r->cfg.reconnect_max_ms < r->cfg.reconnect_min_ms)
        r->cfg.reconnect_max_ms = r->cfg.reconnect_min_ms;
    r->store = store;
    r->store_ctx = store_ctx;
    r->now_ms = loop_now;
    if (getrandom(&r->instance, sizeof(r->instance), 0) != sizeof(r->instance))
        r->instance = (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
    r->link = SRM__REPL_LINK_DOWN;
    *ret_repl = r;
    return 0;
}

void srm__repl_free(struct srm_repl *r)
{
    if (!r)
        return;
    r->closing = true;
    for (unsigned i = 0; r->parts && i < r->nparts; i++) {
        snap_abort(r, &r->parts[i]);
        inst_abort(r, &r->parts[i]);
        free(r->parts[i].ring);
        buf_free(&r->parts[i].q);
    }
    if (r->store && r->store->close)
        r->store->close(r->store_ctx);
    free(r->parts);
    buf_free(&r->in);
    buf_free(&r->out);
    free(r->s_cluster);
    free(r->s_peer_name);
    free(r->s_ca);
    free(r->s_cert);
    free(r->s_key);
    free(r->s_listen);
    free(r->s_peer_host);
    free(r);
}

int srm_repl_partition_set(struct srm_repl *r, uint32_t part, enum srm_repl_role role,
                           uint64_t epoch)
{
    if (!r || part == 0 || (unsigned)role >= SRM_REPL_ROLE_MAX)
        return -EINVAL;
    struct srm__repl_part *p = part_find(r, part);
    if (!p) {
        if (role == SRM_REPL_ROLE_NONE)
            return 0;
        if (!(p = part_add(r, part)))
            return -ENOSPC;
    }
    if (p->role == role && p->epoch == epoch)
        return 0;
    /* what arrived under the old declaration is applied first (a failure closes the link) */
    (void)apply_queued(r, p);
    uint64_t head = 0, gen = 0;
    int rc = 0;
    if (role == SRM_REPL_ROLE_SOURCE)
        rc = r->store->log_head(r->store_ctx, part, &gen, &head);
    else if (role == SRM_REPL_ROLE_SINK)
        rc = r->store->applied(r->store_ctx, part, r->cfg.peer_id, &gen, &head);
    if (rc < 0)
        return rc;
    /* A new owner's writers must wait for this stream's acknowledgements, not for a
     * position left in shared memory by an earlier owner or log. */
    if (role == SRM_REPL_ROLE_SOURCE && p->role != SRM_REPL_ROLE_SOURCE) {
        rc = r->store->set_replicated(r->store_ctx, part, 0, true);
        if (rc < 0)
            return rc;
    }
    stream_stop(r, p);
    bool was_source = p->role == SRM_REPL_ROLE_SOURCE;
    p->role = (uint8_t)role;
    p->epoch = epoch;
    p->gen = gen;
    p->head = head;
    p->caught_up_told = false;
    p->st.role = role;
    p->marks_len = 0;
    if (role == SRM_REPL_ROLE_SOURCE && (!was_source || p->absent_since == 0))
        p->absent_since = r->now_ms(r);
    if (r->link == SRM__REPL_LINK_READY) {
        send_part(r, p);
        reconcile(r, p);
        srm__repl_pump(r);
    }
    return 0;
}

int srm_repl_partition_caught_up(struct srm_repl *r, uint32_t part)
{
    struct srm__repl_part *p = r ? part_find(r, part) : NULL;
    if (!p || p->role == SRM_REPL_ROLE_NONE)
        return -ENOENT;
    return part_caught_up(r, p) ? 1 : 0;
}

int srm_repl_partition_stats(struct srm_repl *r, uint32_t part,
                             struct srm_repl_part_stats *ret_stats)
{
    struct srm__repl_part *p = r ? part_find(r, part) : NULL;
    if (!p || p->role == SRM_REPL_ROLE_NONE || !ret_stats)
        return -ENOENT;
    struct srm_repl_part_stats s = p->st;
    uint64_t now = r->now_ms(r);
    s.part = p->part;
    s.role = p->role;
    s.epoch = p->epoch;
    s.streaming = p->streaming;
    s.caught_up = part_caught_up(r, p);
    s.degraded = p->degraded;
    if (p->role == SRM_REPL_ROLE_SOURCE) {
        s.head_seq = p->head;
        s.sent_seq = p->sent;
        s.applied_seq = p->acked;
        s.lag_bytes = p->inflight_bytes;
        s.lag_ms = 0;
        for (unsigned k = 0; k < p->marks_len; k++) {
            const struct srm__repl_mark *m = &p->marks[(p->marks_head + k) % SRM__REPL_MARKS];
            if (m->seq > p->acked) {
                s.lag_ms = now > m->ms ? now - m->ms : 0;
                break;
            }
        }
    } else {
        s.head_seq = p->peer_head > p->head ? p->peer_head : p->head;
        s.sent_seq = 0;
        s.applied_seq = p->head;
        s.lag_bytes = 0;
        s.lag_ms = 0;
    }
    s.lag_entries = s.head_seq > s.applied_seq ? s.head_seq - s.applied_seq : 0;
    *ret_stats = s;
    return 0;
}

void srm_repl_stats(struct srm_repl *r, struct srm_repl_stats *ret_stats)
{
    struct srm_repl_stats s = r->st;
    s.connected = r->link != SRM__REPL_LINK_DOWN;
    s.ready = r->link == SRM__REPL_LINK_READY;
    s.nparts = 0;
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->parts[i].role != SRM_REPL_ROLE_NONE)
            s.nparts++;
    *ret_stats = s;
}
