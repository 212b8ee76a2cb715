/*
 * libFuzzer target for replication's wire decoders: the frame decoder, the handshake and
 * every message decoder, then the protocol core fed the same bytes as a peer would send
 * them (before and after a valid handshake). Nothing may crash, leak or read out of bounds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../replication/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a store that accepts anything well-formed and remembers nothing ---- */

static int st_head(void *ctx, uint32_t part, uint64_t *g, uint64_t *s)
{
    (void)ctx;
    (void)part;
    *g = 1;
    *s = 0;
    return 0;
}
static int st_applied(void *ctx, uint32_t part, uint32_t src, uint64_t *g, uint64_t *s)
{
    (void)ctx;
    (void)part;
    (void)src;
    *g = 0;
    *s = 0;
    return 0;
}
static int st_read(void *ctx, uint32_t part, uint64_t from, uint32_t ex, void *buf, size_t cap,
                   size_t *len, uint32_t *count, uint64_t *next, uint64_t *gen)
{
    (void)ctx;
    (void)part;
    (void)ex;
    (void)buf;
    (void)cap;
    *len = 0;
    *count = 0;
    *next = from;
    *gen = 1;
    return 0;
}
static int st_apply(void *ctx, uint32_t part, uint32_t src, uint64_t gen, const void *buf,
                    size_t len, uint32_t count, uint64_t through)
{
    (void)ctx;
    (void)part;
    (void)src;
    (void)gen;
    (void)through;
    /* touch every byte so that ASan checks the bounds the core passed */
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= ((const uint8_t *)buf)[i];
    return (count == 0 && len != 0) || x == 0xA5 ? -22 : 0;
}
static int st_trim(void *ctx, uint32_t part, uint64_t seq)
{
    (void)ctx;
    (void)part;
    (void)seq;
    return 0;
}
static int st_snap_open(void *ctx, uint32_t part, void **snap, uint64_t *seq,
                        struct srm__repl_snapinfo *info)
{
    (void)ctx;
    (void)part;
    (void)snap;
    (void)seq;
    (void)info;
    return -2;
}
static int st_snap_next(void *snap, void *buf, size_t cap, size_t *len)
{
    (void)snap;
    (void)buf;
    (void)cap;
    *len = 0;
    return 0;
}
static void st_snap_close(void *snap)
{
    (void)snap;
}
static int st_inst_begin(void *ctx, uint32_t part, uint64_t seq,
                         const struct srm__repl_snapinfo *info, void **inst)
{
    (void)ctx;
    (void)part;
    (void)seq;
    (void)info;
    *inst = malloc(1);
    return *inst ? 0 : -12;
}
static int st_inst_chunk(void *inst, const void *buf, size_t len)
{
    (void)inst;
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= ((const uint8_t *)buf)[i];
    return x == 0x5A ? -22 : 0;
}
static int st_inst_commit(void *inst)
{
    free(inst);
    return 0;
}
static void st_inst_abort(void *inst)
{
    free(inst);
}
static int st_repl(void *ctx, uint32_t part, uint64_t seq, bool reset)
{
    (void)ctx;
    (void)part;
    (void)seq;
    (void)reset;
    return 0;
}
static int st_degr(void *ctx, uint32_t part, bool on)
{
    (void)ctx;
    (void)part;
    (void)on;
    return 0;
}

static const struct srm__repl_store_ops ops = {
    .log_head = st_head,
    .applied = st_applied,
    .log_read = st_read,
    .log_apply = st_apply,
    .log_trim = st_trim,
    .snap_open = st_snap_open,
    .snap_next = st_snap_next,
    .snap_close = st_snap_close,
    .install_begin = st_inst_begin,
    .install_chunk = st_inst_chunk,
    .install_commit = st_inst_commit,
    .install_abort = st_inst_abort,
    .set_replicated = st_repl,
    .set_degraded = st_degr,
};

static bool closed;
static int t_flush(struct srm_repl *r, void *link)
{
    (void)link;
    r->out.off = r->out.len = 0;
    return 0;
}
static size_t t_backlog(struct srm_repl *r, void *link)
{
    (void)r;
    (void)link;
    return 0;
}
static void t_close(struct srm_repl *r, void *link)
{
    (void)r;
    (void)link;
    closed = true;
}
static const struct srm__repl_transport tp = {
    .flush = t_flush, .backlog = t_backlog, .close = t_close};

static uint64_t fixed_now(struct srm_repl *r)
{
    (void)r;
    return 1000;
}

static void decoders(const uint8_t *d, size_t n)
{
    static struct srm__repl_hello h;
    struct srm__repl_partrec pr;
    struct srm__repl_entries e;
    struct srm__repl_ack a;
    struct srm__repl_snap s;
    struct srm__repl_snapinfo si;
    uint64_t tok;
    int err;
    char msg[300];

    while (n > 0) {
        struct srm__repl_frame f;
        int rc = srm__repl_frame_decode(d, n, SRM__REPL_FRAME_MAX, &f);
        if (rc <= 0) {
            /* the payload decoders must also survive raw bytes */
            srm__repl_hello_decode(d, n, &h);
            srm__repl_entries_decode(d, n, &e);
            srm__repl_snap_decode(SRM__REPL_MSG_SNAP_BEGIN, d, n, &s);
            srm__repl_error_decode(d, n, &err, msg, sizeof(msg));
            return;
        }
        switch (f.type) {
        case SRM__REPL_MSG_HELLO:
            srm__repl_hello_decode(f.payload, f.len, &h);
            break;
        case SRM__REPL_MSG_PART:
            srm__repl_part_decode(f.payload, f.len, &pr);
            break;
        case SRM__REPL_MSG_ENTRIES:
            srm__repl_entries_decode(f.payload, f.len, &e);
            break;
        case SRM__REPL_MSG_ACK:
            srm__repl_ack_decode(f.payload, f.len, &a);
            break;
        case SRM__REPL_MSG_SNAP_BEGIN:
            if (srm__repl_snap_decode(f.type, f.payload, f.len, &s) == 0)
                srm__repl_snapinfo_decode(s.data, s.len, &si);
            break;
        case SRM__REPL_MSG_SNAP_CHUNK:
        case SRM__REPL_MSG_SNAP_END:
        case SRM__REPL_MSG_SNAP_ACK:
            srm__repl_snap_decode(f.type, f.payload, f.len, &s);
            break;
        case SRM__REPL_MSG_PING:
        case SRM__REPL_MSG_PONG:
            srm__repl_ping_decode(f.payload, f.len, &tok);
            break;
        case SRM__REPL_MSG_ERROR:
            srm__repl_error_decode(f.payload, f.len, &err, msg, sizeof(msg));
            break;
        }
        d += rc;
        n -= (size_t)rc;
    }
}

/* A valid HELLO from node 2 declaring partition 2 as its source and 1 as its sink. */
static size_t peer_hello(uint8_t *buf)
{
    static struct srm__repl_hello h;
    memset(&h, 0, sizeof(h));
    h.version_min = h.version_max = SRM_REPL_VERSION;
    strcpy(h.cluster, "fz");
    h.node_id = 2;
    h.peer_id = 1;
    h.nparts = 2;
    h.parts[0] = (struct srm__repl_partrec){.part = 1, .role = SRM_REPL_ROLE_SINK, .epoch = 1};
    h.parts[1] = (struct srm__repl_partrec){
        .part = 2, .role = SRM_REPL_ROLE_SOURCE, .epoch = 1, .gen = 7, .seq = 100};
    size_t n = srm__repl_hello_encode(&h, buf + SRM__REPL_HDR);
    srm__repl_frame_header(buf, SRM__REPL_MSG_HELLO, buf + SRM__REPL_HDR, n);
    return SRM__REPL_HDR + n;
}

static void core(const uint8_t *d, size_t n, bool handshake, bool deferred)
{
    struct srm_repl_config cfg = {.cluster = "fz", .node_id = 1, .peer_id = 2, .peer_name = "n2"};
    struct srm_repl *r;
    if (srm__repl_new_with_store(NULL, &cfg, &ops, NULL, &r) < 0)
        return;
    r->now_ms = fixed_now;
    /* as the TLS transport runs it: batches queued, applied once per loop iteration */
    r->defer_flush = deferred;
    srm_repl_partition_set(r, 1, SRM_REPL_ROLE_SOURCE, 1);
    srm_repl_partition_set(r, 2, SRM_REPL_ROLE_SINK, 1);
    closed = false;
    srm__repl_link_up(r, &tp, NULL);
    if (handshake) {
        uint8_t hb[256];
        srm__repl_input(r, hb, peer_hello(hb));
    }
    /* feed in uneven pieces to exercise reassembly */
    size_t off = 0, step = 1;
    while (off < n && !closed) {
        size_t k = n - off < step ? n - off : step;
        srm__repl_input(r, d + off, k);
        off += k;
        step = step * 3 + 1;
        if (deferred && (step & 4))
            srm__repl_input_flush(r);
    }
    srm__repl_input_flush(r);
    srm__repl_tick(r);
    srm__repl_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    decoders(data, size);
    core(data, size, mode & 1, mode & 2);
    return 0;
}
