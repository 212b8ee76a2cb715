/*
 * Unit tests of the replication protocol core (replication/repl.c) between two endpoints in
 * one process, through seams: an in-memory log store with the datastore's semantics
 * (generations, horizon, origin filter, idempotent apply, snapshots), an in-memory pipe
 * transport that can pause, cut and corrupt the link, and a fake clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../replication/internal.h"
#include "srm_error.h"

/* ---- memory store ---- */

#define MS_VALS (1u << 16)
#define ENT     16 /* u64 seq, u32 origin, u32 value */

struct ment {
    uint32_t origin, val;
};

struct mpos {
    uint32_t source;
    uint64_t gen, seq;
};

struct mpart {
    uint32_t id;
    uint64_t gen;
    uint64_t first; /* seq of log[0] */
    struct ment *log;
    size_t n, cap;
    uint8_t has[MS_VALS];
    uint64_t sum, count;
    struct mpos pos[4];
    uint64_t repl;
    bool degraded;
};

struct mstore {
    uint32_t node;
    struct mpart parts[4];
    unsigned applies, installs;
    uint64_t next_gen;
};

struct msnap {
    struct mpart *p;
    uint32_t next;
};

struct minst {
    struct mstore *s;
    struct mpart *p;
    uint64_t seq, gen;
    uint32_t source;
    uint8_t has[MS_VALS];
};

static struct mpart *ms_part(struct mstore *s, uint32_t id, bool create)
{
    for (int i = 0; i < 4; i++)
        if (s->parts[i].id == id)
            return &s->parts[i];
    if (!create)
        return NULL;
    for (int i = 0; i < 4; i++)
        if (s->parts[i].id == 0) {
            s->parts[i].id = id;
            s->parts[i].gen = ++s->next_gen + s->node * 1000;
            s->parts[i].first = 1;
            return &s->parts[i];
        }
    fail();
    return NULL;
}

static uint64_t ms_last(const struct mpart *p)
{
    return p->first + p->n - 1;
}

static void ms_append(struct mpart *p, uint32_t origin, uint32_t val)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->log = realloc(p->log, p->cap * sizeof(*p->log));
        assert_non_null(p->log);
    }
    p->log[p->n++] = (struct ment){.origin = origin, .val = val};
}

static void ms_add(struct mpart *p, uint32_t val)
{
    if (!p->has[val]) {
        p->has[val] = 1;
        p->sum += (uint64_t)val * 0x9E3779B97F4A7C15ull;
        p->count++;
    }
}

static void ms_write(struct mstore *s, uint32_t part, uint32_t val)
{
    struct mpart *p = ms_part(s, part, true);
    ms_append(p, s->node, val);
    ms_add(p, val);
}

static void ms_trim(struct mpart *p, uint64_t upto)
{
    if (upto > ms_last(p))
        upto = ms_last(p);
    if (upto < p->first)
        return;
    size_t k = (size_t)(upto - p->first + 1);
    memmove(p->log, p->log + k, (p->n - k) * sizeof(*p->log));
    p->n -= k;
    p->first = upto + 1;
}

static struct mpos *ms_pos(struct mpart *p, uint32_t source)
{
    for (int i = 0; i < 4; i++)
        if (p->pos[i].source == source || p->pos[i].source == 0) {
            p->pos[i].source = source;
            return &p->pos[i];
        }
    fail();
    return NULL;
}

static int ms_log_head(void *ctx, uint32_t part, uint64_t *ret_gen, uint64_t *ret_seq)
{
    struct mpart *p = ms_part(ctx, part, false);
    *ret_gen = p ? p->gen : 0;
    *ret_seq = p ? ms_last(p) : 0;
    return 0;
}

static int ms_applied(void *ctx, uint32_t part, uint32_t source, uint64_t *ret_gen,
                      uint64_t *ret_seq)
{
    struct mpart *p = ms_part(ctx, part, false);
    struct mpos *q = p ? ms_pos(p, source) : NULL;
    *ret_gen = q ? q->gen : 0;
    *ret_seq = q ? q->seq : 0;
    return 0;
}

static void put64le(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64le(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static int ms_log_read(void *ctx, uint32_t part, uint64_t from, uint32_t exclude, void *buf,
                       size_t cap, size_t *ret_len, uint32_t *ret_count, uint64_t *ret_next,
                       uint64_t *ret_gen)
{
    struct mpart *p = ms_part(ctx, part, false);
    if (!p) {
        *ret_len = 0;
        *ret_count = 0;
        *ret_next = from;
        *ret_gen = 0;
        return 0;
    }
    if (from < p->first || from > ms_last(p) + 1)
        return SRM_EHORIZON;
    uint8_t *b = buf;
    size_t len = 0;
    uint32_t count = 0;
    uint64_t seq = from;
    for (; seq <= ms_last(p) && len + ENT <= cap; seq++) {
        const struct ment *m = &p->log[seq - p->first];
        if (m->origin == exclude)
            continue;
        put64le(b + len, seq);
        put64le(b + len + 8, (uint64_t)m->origin | (uint64_t)m->val << 32);
        len += ENT;
        count++;
    }
    *ret_len = len;
    *ret_count = count;
    *ret_next = seq;
    *ret_gen = p->gen;
    return 0;
}

static int ms_log_apply(void *ctx, uint32_t part, uint32_t source, uint64_t gen, const void *buf,
                        size_t len, uint32_t count, uint64_t through)
{
    struct mstore *s = ctx;
    const uint8_t *b = buf;
    if (len != (size_t)count * ENT)
        return SRM_EBADFRAME;
    for (uint32_t i = 0; i < count; i++)
        if ((uint32_t)(get64le(b + i * ENT + 8) >> 32) >= MS_VALS)
            return SRM_ECORRUPT; /* validated before anything changes */
    struct mpart *p = ms_part(s, part, true);
    struct mpos *q = ms_pos(p, source);
    if (q->gen != gen) {
        q->gen = gen;
        q->seq = 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint64_t seq = get64le(b + i * ENT);
        uint64_t ov = get64le(b + i * ENT + 8);
        if (seq <= q->seq)
            continue;
        ms_append(p, (uint32_t)ov, (uint32_t)(ov >> 32));
        ms_add(p, (uint32_t)(ov >> 32));
    }
    if (through > q->seq)
        q->seq = through;
    s->applies++;
    return 0;
}

static int ms_log_trim(void *ctx, uint32_t part, uint64_t seq)
{
    struct mpart *p = ms_part(ctx, part, false);
    if (p)
        ms_trim(p, seq);
    return 0;
}

static int ms_snap_open(void *ctx, uint32_t part, void **ret_snap, uint64_t *ret_seq,
                        struct srm__repl_snapinfo *ret_info)
{
    struct mstore *s = ctx;
    struct mpart *p = ms_part(s, part, false);
    if (!p)
        return SRM_ENOTFOUND;
    struct msnap *sn = calloc(1, sizeof(*sn));
    sn->p = p;
    *ret_snap = sn;
    *ret_seq = ms_last(p);
    memset(ret_info, 0, sizeof(*ret_info));
    ret_info->source = s->node;
    ret_info->gen = p->gen;
    ret_info->entries = p->count;
    return 0;
}

static int ms_snap_next(void *snap, void *buf, size_t cap, size_t *ret_len)
{
    struct msnap *sn = snap;
    uint8_t *b = buf;
    size_t len = 0;
    while (sn->next < MS_VALS && len + 4 <= cap) {
        if (sn->p->has[sn->next]) {
            memcpy(b + len, &sn->next, 4);
            len += 4;
        }
        sn->next++;
    }
    *ret_len = len;
    return 0;
}

static void ms_snap_close(void *snap)
{
    free(snap);
}

static int ms_install_begin(void *ctx, uint32_t part, uint64_t seq,
                            const struct srm__repl_snapinfo *info, void **ret_inst)
{
    struct mstore *s = ctx;
    struct minst *in = calloc(1, sizeof(*in));
    in->s = s;
    in->p = ms_part(s, part, true);
    in->seq = seq;
    in->gen = info->gen;
    in->source = info->source;
    *ret_inst = in;
    return 0;
}

static int ms_install_chunk(void *inst, const void *buf, size_t len)
{
    struct minst *in = inst;
    if (len % 4)
        return SRM_ECORRUPT;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v;
        memcpy(&v, (const uint8_t *)buf + i, 4);
        if (v >= MS_VALS)
            return SRM_ECORRUPT;
        in->has[v] = 1;
    }
    return 0;
}

static int ms_install_commit(void *inst)
{
    struct minst *in = inst;
    struct mpart *p = in->p;
    memset(p->has, 0, sizeof(p->has));
    p->sum = p->count = 0;
    for (uint32_t v = 0; v < MS_VALS; v++)
        if (in->has[v])
            ms_add(p, v);
    struct mpos *q = ms_pos(p, in->source);
    q->gen = in->gen;
    q->seq = in->seq;
    p->gen = ++in->s->next_gen + in->s->node * 1000; /* the local log restarts */
    p->n = 0;
    p->first = 1;
    in->s->installs++;
    free(in);
    return 0;
}

static void ms_install_abort(void *inst)
{
    free(inst);
}

static int ms_set_replicated(void *ctx, uint32_t part, uint64_t seq, bool reset)
{
    struct mpart *p = ms_part(ctx, part, true);
    if (reset || seq > p->repl)
        p->repl = seq;
    return 0;
}

static int ms_set_degraded(void *ctx, uint32_t part, bool degraded)
{
    ms_part(ctx, part, true)->degraded = degraded;
    return 0;
}

static const struct srm__repl_store_ops ms_ops = {
    .log_head = ms_log_head,
    .applied = ms_applied,
    .log_read = ms_log_read,
    .log_apply = ms_log_apply,
    .log_trim = ms_log_trim,
    .snap_open = ms_snap_open,
    .snap_next = ms_snap_next,
    .snap_close = ms_snap_close,
    .install_begin = ms_install_begin,
    .install_chunk = ms_install_chunk,
    .install_commit = ms_install_commit,
    .install_abort = ms_install_abort,
    .set_replicated = ms_set_replicated,
    .set_degraded = ms_set_degraded,
};

/* ---- pipe transport, clock, events ---- */

static uint64_t now_ms = 1000;

static uint64_t fake_now(struct srm_repl *r)
{
    (void)r;
    return now_ms;
}

struct end {
    struct srm_repl *r;
    struct end *peer;
    uint8_t *inbox;
    size_t in_len, in_cap;
    bool up, paused, closed_by_core;
    unsigned ev[SRM_REPL_EV_MAX];
    int last_err;
};

static int pipe_flush(struct srm_repl *r, void *link)
{
    struct end *e = link;
    struct end *to = e->peer;
    size_t n = r->out.len - r->out.off;
    if (to->in_len + n > to->in_cap) {
        to->in_cap = (to->in_len + n) * 2;
        to->inbox = realloc(to->inbox, to->in_cap);
        assert_non_null(to->inbox);
    }
    memcpy(to->inbox + to->in_len, r->out.data + r->out.off, n);
    to->in_len += n;
    r->out.off = r->out.len = 0;
    return 0;
}

static size_t pipe_backlog(struct srm_repl *r, void *link)
{
    struct end *e = link;
    (void)r;
    return e->peer->in_len;
}

static void pipe_close(struct srm_repl *r, void *link)
{
    struct end *e = link;
    (void)r;
    e->up = false;
    e->closed_by_core = true;
}

static const struct srm__repl_transport pipe_tp = {
    .flush = pipe_flush, .backlog = pipe_backlog, .close = pipe_close};

static void on_event(struct srm_repl *r, const struct srm_repl_event *ev, void *data)
{
    struct end *e = data;
    (void)r;
    e->ev[ev->type]++;
    if (ev->err)
        e->last_err = ev->err;
}

struct pair {
    struct mstore sa, sb;
    struct end a, b;
};

static struct pair *P;

static void make_pair(const char *cluster_b, uint32_t window)
{
    P = calloc(1, sizeof(*P));
    assert_non_null(P);
    P->sa.node = 1;
    P->sb.node = 2;
    struct srm_repl_config ca = {.cluster = "c1",
                                 .node_id = 1,
                                 .peer_id = 2,
                                 .peer_name = "n2",
                                 .window_bytes = window,
                                 .batch_bytes = 72 << 10,
                                 .degrade_ms = 3000,
                                 .event_cb = on_event,
                                 .event_data = &P->a};
    struct srm_repl_config cb = ca;
    cb.cluster = cluster_b;
    cb.node_id = 2;
    cb.peer_id = 1;
    cb.peer_name = "n1";
    cb.event_data = &P->b;
    assert_int_equal(srm__repl_new_with_store(NULL, &ca, &ms_ops, &P->sa, &P->a.r), 0);
    assert_int_equal(srm__repl_new_with_store(NULL, &cb, &ms_ops, &P->sb, &P->b.r), 0);
    P->a.r->now_ms = fake_now;
    P->b.r->now_ms = fake_now;
    P->a.peer = &P->b;
    P->b.peer = &P->a;
}

static void free_pair(void)
{
    srm__repl_free(P->a.r);
    srm__repl_free(P->b.r);
    free(P->a.inbox);
    free(P->b.inbox);
    for (int i = 0; i < 4; i++) {
        free(P->sa.parts[i].log);
        free(P->sb.parts[i].log);
    }
    free(P);
    P = NULL;
}

static void cut(void)
{
    if (P->a.up || P->a.closed_by_core)
        srm__repl_link_down(P->a.r, -ECONNRESET);
    if (P->b.up || P->b.closed_by_core)
        srm__repl_link_down(P->b.r, -ECONNRESET);
    P->a.up = P->b.up = false;
    P->a.closed_by_core = P->b.closed_by_core = false;
    P->a.in_len = P->b.in_len = 0;
}

/* Delivers bytes until nothing moves (bounded). A link one side closed is cut. */
static void run(void)
{
    for (int round = 0; round < 100000; round++) {
        bool moved = false;
        struct end *ends[2] = {&P->a, &P->b};
        for (int k = 0; k < 2; k++) {
            struct end *e = ends[k];
            if (e->closed_by_core || e->peer->closed_by_core) {
                cut();
                return;
            }
            if (!e->up || e->paused || e->in_len == 0)
                continue;
            size_t n = e->in_len < 65536 ? e->in_len : 65536;
            uint8_t *chunk = malloc(n);
            memcpy(chunk, e->inbox, n);
            memmove(e->inbox, e->inbox + n, e->in_len - n);
            e->in_len -= n;
            srm__repl_input(e->r, chunk, n);
            free(chunk);
            moved = true;
            /* the sender's window opened: it may produce more */
            srm__repl_pump(e->peer->r);
        }
        if (!moved)
            return;
    }
    fail_msg("pipe did not settle");
}

static void connect_pair(void)
{
    P->a.up = P->b.up = true;
    srm__repl_link_up(P->a.r, &pipe_tp, &P->a);
    srm__repl_link_up(P->b.r, &pipe_tp, &P->b);
    run();
}

static void assert_same(uint32_t part)
{
    struct mpart *pa = ms_part(&P->sa, part, false), *pb = ms_part(&P->sb, part, false);
    assert_non_null(pa);
    assert_non_null(pb);
    assert_int_equal(pa->count, pb->count);
    assert_true(pa->sum == pb->sum);
    assert_memory_equal(pa->has, pb->has, MS_VALS);
}

static void write_n(struct mstore *s, uint32_t part, uint32_t from, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        ms_write(s, part, from + i);
}

/* ---- tests ---- */

static void test_stream_and_caught_up(void **state)
{
    (void)state;
    make_pair("c1", 0);
    write_n(&P->sa, 1, 1, 1000);
    assert_int_equal(srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1), 0);
    assert_int_equal(srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1), 0);
    assert_int_equal(srm_repl_partition_caught_up(P->a.r, 1), 0); /* no link */
    assert_int_equal(srm_repl_partition_caught_up(P->a.r, 9), -ENOENT);
    connect_pair();
    assert_int_equal(P->a.ev[SRM_REPL_EV_READY], 1);
    assert_int_equal(P->b.ev[SRM_REPL_EV_READY], 1);
    assert_same(1);
    write_n(&P->sa, 1, 1001, 500);
    srm_repl_notify(P->a.r);
    run();
    assert_same(1);
    assert_int_equal(srm_repl_partition_caught_up(P->a.r, 1), 1);
    assert_int_equal(srm_repl_partition_caught_up(P->b.r, 1), 1);
    assert_int_equal(P->a.ev[SRM_REPL_EV_CAUGHT_UP], 1);
    assert_int_equal(P->b.ev[SRM_REPL_EV_CAUGHT_UP], 1);
    struct srm_repl_part_stats st;
    assert_int_equal(srm_repl_partition_stats(P->a.r, 1, &st), 0);
    assert_int_equal(st.entries_sent, 1500);
    assert_int_equal(st.applied_seq, 1500);
    assert_int_equal(st.lag_entries, 0);
    assert_int_equal(st.lag_bytes, 0);
    assert_int_equal(ms_part(&P->sa, 1, false)->repl, 1500); /* sync writers released */
    assert_int_equal(srm_repl_partition_stats(P->b.r, 1, &st), 0);
    assert_int_equal(st.entries_applied, 1500);
    /* the sender trims what was acknowledged */
    srm__repl_tick(P->a.r);
    assert_int_equal(ms_part(&P->sa, 1, false)->first, 1501);
    free_pair();
}

/* Delivers everything waiting for end e in pieces of 64 KiB, as one loop iteration's reads
 * would, without finishing the input (the transport's check callback does that). */
static void deliver_burst(struct end *e)
{
    while (e->in_len > 0) {
        size_t n = e->in_len < 65536 ? e->in_len : 65536;
        uint8_t *chunk = malloc(n);
        memcpy(chunk, e->inbox, n);
        memmove(e->inbox, e->inbox + n, e->in_len - n);
        e->in_len -= n;
        srm__repl_input(e->r, chunk, n);
        free(chunk);
    }
}

/* The batches that arrive in one loop iteration are applied in one transaction and
 * acknowledged once; a link lost before that drops them (nothing was acknowledged) and the
 * peer sends them again. */
static void test_apply_per_read_burst(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    connect_pair();
    P->b.r->defer_flush = true;
    unsigned applies = P->sb.applies;
    write_n(&P->sa, 1, 1, 20000); /* 72 KiB batches: several ENTRIES frames */
    srm_repl_notify(P->a.r);
    struct srm_repl_stats es;
    srm_repl_stats(P->a.r, &es);
    assert_true(es.frames_sent >= 5);
    deliver_burst(&P->b);
    assert_int_equal(P->sb.applies, applies); /* queued, not applied yet */
    assert_int_equal(P->a.in_len, 0);         /* and not acknowledged */
    struct srm_repl_part_stats st;
    assert_int_equal(srm_repl_partition_stats(P->b.r, 1, &st), 0);
    assert_int_equal(st.applied_seq, 0);
    srm__repl_input_flush(P->b.r);
    assert_int_equal(P->sb.applies, applies + 1); /* one transaction */
    assert_true(P->a.in_len > 0 && P->a.in_len <= 2 * (SRM__REPL_HDR + SRM__REPL_ACK_SIZE));
    run();
    assert_same(1);
    assert_int_equal(srm_repl_partition_stats(P->b.r, 1, &st), 0);
    assert_int_equal(st.entries_applied, 20000);
    assert_int_equal(ms_part(&P->sa, 1, false)->repl, 20000);

    /* more batches arrive, then the link drops before they are applied */
    write_n(&P->sa, 1, 20001, 10000);
    srm_repl_notify(P->a.r);
    deliver_burst(&P->b);
    applies = P->sb.applies;
    cut();
    srm__repl_input_flush(P->b.r); /* nothing to finish on a dead link */
    assert_int_equal(P->sb.applies, applies);
    assert_int_equal(ms_part(&P->sb, 1, false)->count, 20000);
    P->b.r->defer_flush = false;
    connect_pair();
    assert_same(1);
    assert_int_equal(srm_repl_partition_stats(P->b.r, 1, &st), 0);
    assert_int_equal(st.entries_applied, 30000); /* each entry applied once */
    assert_int_equal(ms_part(&P->sa, 1, false)->repl, 30000);
    free_pair();
}

static void test_resume_after_reconnect(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    write_n(&P->sa, 1, 1, 100);
    connect_pair();
    cut();
    assert_int_equal(P->a.ev[SRM_REPL_EV_DISCONNECTED], 1);
    write_n(&P->sa, 1, 101, 100);
    connect_pair();
    assert_same(1);
    struct srm_repl_part_stats st;
    srm_repl_partition_stats(P->a.r, 1, &st);
    assert_int_equal(st.entries_sent, 200); /* nothing sent twice */
    struct srm_repl_stats es;
    srm_repl_stats(P->a.r, &es);
    assert_int_equal(es.links_up, 2);
    assert_int_equal(es.reconnects, 1);
    assert_int_equal(es.links_down, 1);
    assert_int_equal(P->a.ev[SRM_REPL_EV_CAUGHT_UP], 2); /* once per link */
    free_pair();
}

static void test_snapshot_when_behind_horizon(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    write_n(&P->sa, 1, 1, 50);
    connect_pair();
    cut();
    write_n(&P->sa, 1, 51, 30000);
    ms_trim(ms_part(&P->sa, 1, false), 20000); /* the log dropped what the peer lacks */
    connect_pair();
    assert_int_equal(P->a.ev[SRM_REPL_EV_SNAPSHOT_SENT], 1);
    assert_int_equal(P->b.ev[SRM_REPL_EV_SNAPSHOT_INSTALLED], 1);
    assert_same(1);
    write_n(&P->sa, 1, 40000, 10);
    srm_repl_notify(P->a.r);
    run();
    assert_same(1);
    assert_int_equal(srm_repl_partition_caught_up(P->a.r, 1), 1);
    assert_int_equal(srm_repl_partition_caught_up(P->b.r, 1), 1);
    struct srm_repl_stats es;
    srm_repl_stats(P->b.r, &es);
    assert_int_equal(es.snapshots_installed, 1);
    free_pair();
}

static void test_window_bounds_memory(void **state)
{
    (void)state;
    const uint32_t window = 100 << 10;
    make_pair("c1", window);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    connect_pair();
    P->b.paused = true; /* a peer that does not read */
    write_n(&P->sa, 1, 1, 60000);
    srm_repl_notify(P->a.r);
    for (int i = 0; i < 10; i++) {
        srm__repl_tick(P->a.r);
        run();
    }
    struct srm_repl_part_stats st;
    srm_repl_partition_stats(P->a.r, 1, &st);
    assert_true(st.lag_bytes <= window + (72 << 10) + 256);
    assert_true(P->b.in_len <= window + (72 << 10) + 4096);
    assert_true(st.sent_seq < 60000);
    P->b.paused = false;
    for (int i = 0; i < 100 && srm_repl_partition_caught_up(P->a.r, 1) != 1; i++)
        run();
    assert_same(1);
    free_pair();
}

static void test_degrade_and_restore(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    write_n(&P->sa, 1, 1, 10);
    srm__repl_tick(P->a.r);
    assert_int_equal(P->a.ev[SRM_REPL_EV_DEGRADED], 0);
    now_ms += 3001;
    srm__repl_tick(P->a.r);
    assert_int_equal(P->a.ev[SRM_REPL_EV_DEGRADED], 1);
    assert_true(ms_part(&P->sa, 1, false)->degraded);
    srm__repl_tick(P->a.r);
    assert_int_equal(P->a.ev[SRM_REPL_EV_DEGRADED], 1); /* counted once */
    connect_pair();
    assert_int_equal(P->a.ev[SRM_REPL_EV_SYNC_RESTORED], 1);
    assert_false(ms_part(&P->sa, 1, false)->degraded);
    /* a connected peer that stops acknowledging degrades too */
    P->b.paused = true;
    write_n(&P->sa, 1, 11, 10);
    srm_repl_notify(P->a.r);
    now_ms += 3001;
    srm__repl_tick(P->a.r);
    assert_int_equal(P->a.ev[SRM_REPL_EV_DEGRADED], 2);
    P->b.paused = false;
    run();
    assert_int_equal(P->a.ev[SRM_REPL_EV_SYNC_RESTORED], 2);
    struct srm_repl_part_stats st;
    srm_repl_partition_stats(P->a.r, 1, &st);
    assert_int_equal(st.sync_degradations, 2);
    free_pair();
}

static void test_handshake_refused(void **state)
{
    (void)state;
    make_pair("other-cluster", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    write_n(&P->sa, 1, 1, 10);
    connect_pair();
    assert_true(P->a.ev[SRM_REPL_EV_REFUSED] >= 1);
    assert_int_equal(P->a.last_err, SRM_EHANDSHAKE);
    assert_int_equal(P->a.ev[SRM_REPL_EV_READY], 0);
    assert_null(ms_part(&P->sb, 1, false)); /* nothing applied */
    assert_int_equal(P->sb.applies, 0);
    free_pair();
}

static void test_both_directions_and_takeback(void **state)
{
    (void)state;
    make_pair("c1", 0);
    /* node 1 owns P1, node 2 owns P2 */
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->a.r, 2, SRM_REPL_ROLE_SINK, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    srm_repl_partition_set(P->b.r, 2, SRM_REPL_ROLE_SOURCE, 1);
    write_n(&P->sa, 1, 1, 100);
    write_n(&P->sb, 2, 1000, 100);
    connect_pair();
    assert_same(1);
    assert_same(2);
    /* node 1 fails: node 2 takes P1 over (epoch 2) and writes it */
    cut();
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SOURCE, 2);
    write_n(&P->sb, 1, 5000, 50);
    /* node 1 returns as a sink of P1 until it caught up */
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SINK, 2);
    connect_pair();
    assert_same(1);
    assert_int_equal(srm_repl_partition_caught_up(P->b.r, 1), 1);
    assert_int_equal(srm_repl_partition_caught_up(P->a.r, 1), 1);
    struct srm_repl_part_stats st;
    srm_repl_partition_stats(P->b.r, 1, &st);
    assert_int_equal(st.entries_sent, 50); /* node 1's own writes are not sent back */
    /* takeback: roles swap under epoch 3, node 1 writes again, node 2 receives */
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 3);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 3);
    run();
    write_n(&P->sa, 1, 7000, 20);
    srm_repl_notify(P->a.r);
    run();
    assert_same(1);
    assert_int_equal(P->a.ev[SRM_REPL_EV_CONFLICT], 0);
    free_pair();
}

static void test_conflict_and_stale_epoch(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    write_n(&P->sa, 1, 1, 10);
    connect_pair();
    assert_true(P->a.ev[SRM_REPL_EV_CONFLICT] >= 1);
    assert_true(P->b.ev[SRM_REPL_EV_CONFLICT] >= 1);
    assert_int_equal(P->sb.applies, 0);
    /* node 2 knows a newer owner epoch: node 1's entries are fenced off */
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 5);
    run();
    assert_int_equal(P->sb.applies, 0);
    assert_true(P->a.ev[SRM_REPL_EV_CONFLICT] >= 2);
    assert_int_equal(P->a.last_err, SRM_ESTALE_EPOCH);
    free_pair();
}

static void test_garbage_and_truncated_frames(void **state)
{
    (void)state;
    make_pair("c1", 0);
    srm_repl_partition_set(P->a.r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(P->b.r, 1, SRM_REPL_ROLE_SINK, 1);
    connect_pair();
    unsigned applies = P->sb.applies;
    /* garbage: refused, link dropped, counted */
    static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(srm__repl_input(P->b.r, junk, sizeof(junk)) < 0);
    struct srm_repl_stats es;
    srm_repl_stats(P->b.r, &es);
    assert_int_equal(es.protocol_errors, 1);
    assert_false(es.connected);
    run();
    assert_int_equal(P->sb.applies, applies);
    /* a valid ENTRIES frame cut short, then the link dies: nothing applied */
    connect_pair();
    write_n(&P->sa, 1, 1, 5);
    uint8_t frame[SRM__REPL_HDR + SRM__REPL_ENTRIES_HEAD + 5 * ENT];
    struct srm__repl_entries e = {.part = 1,
                                  .epoch = 1,
                                  .gen = ms_part(&P->sa, 1, false)->gen,
                                  .first_seq = 1,
                                  .through_seq = 5,
                                  .head_seq = 5,
                                  .count = 5};
    size_t len = 0;
    uint64_t next, gen;
    uint32_t count;
    srm__repl_entries_encode_head(&e, frame + SRM__REPL_HDR);
    ms_log_read(&P->sa, 1, 1, 0, frame + SRM__REPL_HDR + SRM__REPL_ENTRIES_HEAD, 5 * ENT, &len,
                &count, &next, &gen);
    srm__repl_frame_header(frame, SRM__REPL_MSG_ENTRIES, frame + SRM__REPL_HDR,
                           SRM__REPL_ENTRIES_HEAD + len);
    assert_int_equal(srm__repl_input(P->b.r, frame, sizeof(frame) - 7), 0);
    assert_int_equal(P->sb.applies, applies);
    cut();
    assert_int_equal(P->sb.applies, applies);
    /* the same frame with a flipped payload bit: checksum error, nothing applied */
    connect_pair(); /* the real stream now delivers the 5 entries */
    applies = P->sb.applies;
    frame[sizeof(frame) - 3] ^= 0x10;
    assert_int_equal(srm__repl_input(P->b.r, frame, sizeof(frame)), SRM_EBADCHECKSUM);
    assert_int_equal(P->sb.applies, applies);
    free_pair();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_and_caught_up),
        cmocka_unit_test(test_apply_per_read_burst),
        cmocka_unit_test(test_resume_after_reconnect),
        cmocka_unit_test(test_snapshot_when_behind_horizon),
        cmocka_unit_test(test_window_bounds_memory),
        cmocka_unit_test(test_degrade_and_restore),
        cmocka_unit_test(test_handshake_refused),
        cmocka_unit_test(test_both_directions_and_takeback),
        cmocka_unit_test(test_conflict_and_stale_epoch),
        cmocka_unit_test(test_garbage_and_truncated_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
