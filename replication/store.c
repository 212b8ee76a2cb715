/*
 * The store interface of the protocol core, bound to the datastore (datastore/srm_ds.h).
 * Reads share one read transaction that is reset between uses (cheap in LMDB); an apply
 * is one write transaction on the loop thread. Trims run in a thread of their own: a write
 * transaction first waits for LMDB's writer lock, which the node's writers hold for a
 * millisecond or more at a time, and the loop must not wait with them (it would stop
 * streaming meanwhile, adding that wait to the replication lag at every trim). Change
 * notifications come from a datastore subscriber whose socket the endpoint polls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "srm_ds.h"
#include "srm_error.h"
#include "srm_log.h"

#define WRITE_RETRIES 4 /* -EAGAIN: the map grew; the transaction is retried */

struct trim_req {
    uint32_t part;
    uint64_t seq;
};

struct ds_store {
    struct srm_ds_env *env;
    uint32_t node_id;
    struct srm_ds_txn *rtxn; /* reset between uses */
    struct srm_ds_sub *sub;
    struct srm_ds_entry *ents; /* decoded batch for apply */
    size_t ents_cap;

    /* the trimming thread, started at the first trim; the requests are positions to trim up
     * to, the latest per partition */
    pthread_t trim_thread;
    bool trim_started, trim_stop;
    pthread_mutex_t trim_mu;
    pthread_cond_t trim_cv;
    struct trim_req trim[SRM_REPL_PARTS_MAX];
    unsigned ntrim;
};

static int read_begin(struct ds_store *s, struct srm_ds_txn **ret)
{
    int rc;
    if (!s->rtxn) {
        rc = srm_ds_txn_begin(s->env, SRM_DS_TXN_RDONLY, &s->rtxn);
        if (rc < 0)
            return rc;
    } else if ((rc = srm_ds_txn_renew(s->rtxn)) < 0) {
        srm_ds_txn_abort(s->rtxn);
        s->rtxn = NULL;
        if ((rc = srm_ds_txn_begin(s->env, SRM_DS_TXN_RDONLY, &s->rtxn)) < 0)
            return rc;
    }
    *ret = s->rtxn;
    return 0;
}

static void read_end(struct ds_store *s)
{
    if (s->rtxn)
        srm_ds_txn_reset(s->rtxn);
}

static int ds_log_head(void *ctx, uint32_t part, uint64_t *ret_gen, uint64_t *ret_seq)
{
    struct ds_store *s = ctx;
    struct srm_ds_txn *txn;
    struct srm_ds_log_info li;
    int rc = read_begin(s, &txn);
    if (rc < 0)
        return rc;
    rc = srm_ds_log_info(txn, part, &li);
    read_end(s);
    if (rc == SRM_ENOTFOUND) {
        *ret_gen = 0;
        *ret_seq = 0;
        return 0;
    }
    if (rc < 0)
        return rc;
    *ret_gen = li.gen;
    *ret_seq = li.last_seq;
    return 0;
}

static int ds_applied(void *ctx, uint32_t part, uint32_t source, uint64_t *ret_gen,
                      uint64_t *ret_seq)
{
    struct ds_store *s = ctx;
    struct srm_ds_txn *txn;
    uint64_t gen = 0, seq = 0;
    int rc = read_begin(s, &txn);
    if (rc < 0)
        return rc;
    rc = srm_ds_log_pos(txn, part, source, &gen, &seq);
    read_end(s);
    if (rc == SRM_ENOTFOUND)
        gen = seq = 0;
    else if (rc < 0)
        return rc;
    *ret_gen = gen;
    *ret_seq = seq;
    return 0;
}

struct enc {
    uint8_t *buf;
    size_t cap, len;
    uint32_t count;
};

static int enc_cb(const struct srm_ds_entry *e, void *data)
{
    struct enc *en = data;
    size_t used = 0;
    int rc = srm_ds_entry_encode(e, en->buf + en->len, en->cap - en->len, &used);
    if (rc < 0)
        return rc; /* -ENOBUFS: cap is below one largest entry (checked at creation) */
    en->len += used;
    en->count++;
    return 0;
}

static int ds_log_read(void *ctx, uint32_t part, uint64_t from, uint32_t exclude, void *buf,
                       size_t cap, size_t *ret_len, uint32_t *ret_count, uint64_t *ret_next,
                       uint64_t *ret_gen)
{
    struct ds_store *s = ctx;
    struct srm_ds_txn *txn;
    struct enc en = {.buf = buf, .cap = cap};
    uint64_t next = from, gen = 0;
    int rc = read_begin(s, &txn);
    if (rc < 0)
        return rc;
    rc = srm_ds_log_read(txn, part, from, exclude, 0, cap, enc_cb, &en, &next, &gen);
    read_end(s);
    if (rc == SRM_ENOTFOUND) {
        rc = 0;
        en.len = 0;
        en.count = 0;
        next = from;
    }
    if (rc < 0)
        return rc;
    *ret_len = en.len;
    *ret_count = en.count;
    *ret_next = next;
    *ret_gen = gen;
    return 0;
}

static int ds_log_apply(void *ctx, uint32_t part, uint32_t source, uint64_t gen, const void *buf,
                        size_t len, uint32_t count, uint64_t through)
{
    struct ds_store *s = ctx;
    const uint8_t *p = buf;
    size_t off = 0;
    int rc;

    if (count > s->ents_cap) {
        size_t cap = s->ents_cap ? s->ents_cap : 256;
        while (cap < count)
            cap *= 2;
        struct srm_ds_entry *n = realloc(s->ents, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        s->ents = n;
        s->ents_cap = cap;
    }
    /* Decode (and so bound-check) the whole batch before any transaction. */
    for (uint32_t i = 0; i < count; i++) {
        size_t used = 0;
        if (off >= len)
            return SRM_EBADFRAME;
        rc = srm_ds_entry_decode(p + off, len - off, &s->ents[i], &used);
        if (rc < 0)
            return rc;
        if (used == 0 || used > len - off)
            return SRM_EBADFRAME;
        off += used;
    }
    if (off != len)
        return SRM_EBADFRAME;
    for (int attempt = 0;; attempt++) {
        struct srm_ds_txn *txn;
        rc = srm_ds_txn_begin(s->env, 0, &txn);
        if (rc == -EAGAIN && attempt < WRITE_RETRIES)
            continue;
        if (rc < 0)
            return rc;
        rc = srm_ds_log_apply(txn, part, source, gen, s->ents, count, through, NULL);
        if (rc < 0) {
            srm_ds_txn_abort(txn);
        } else {
            rc = srm_ds_txn_commit(txn);
        }
        if (rc == -EAGAIN && attempt < WRITE_RETRIES)
            continue;
        return rc;
    }
}

static int trim_now(struct ds_store *s, uint32_t part, uint64_t seq)
{
    for (int attempt = 0;; attempt++) {
        struct srm_ds_txn *txn;
        int rc = srm_ds_txn_begin(s->env, 0, &txn);
        if (rc == 0) {
            rc = srm_ds_log_trim(txn, part, seq);
            if (rc < 0)
                srm_ds_txn_abort(txn);
            else
                rc = srm_ds_txn_commit(txn);
        }
        if (rc == -EAGAIN && attempt < WRITE_RETRIES)
            continue;
        return rc;
    }
}

static void *trim_main(void *arg)
{
    struct ds_store *s = arg;
    struct trim_req reqs[SRM_REPL_PARTS_MAX];

    pthread_mutex_lock(&s->trim_mu);
    for (;;) {
        while (s->ntrim == 0 && !s->trim_stop)
            pthread_cond_wait(&s->trim_cv, &s->trim_mu);
        if (s->trim_stop)
            break;
        unsigned n = s->ntrim;
        memcpy(reqs, s->trim, n * sizeof(*reqs));
        s->ntrim = 0;
        pthread_mutex_unlock(&s->trim_mu);
        for (unsigned i = 0; i < n; i++) {
            /* a failure leaves the entries to the next trim or to the log's bound */
            int rc = trim_now(s, reqs[i].part, reqs[i].seq);
            if (rc < 0)
                srm_log_debug("repl: trimming partition %u up to %llu: %s", reqs[i].part,
                              (unsigned long long)reqs[i].seq, srm_strerror(rc));
        }
        pthread_mutex_lock(&s->trim_mu);
    }
    pthread_mutex_unlock(&s->trim_mu);
    return NULL;
}

/* Hands the trim to the trimming thread (started on first use) and returns at once. */
static int ds_log_trim(void *ctx, uint32_t part, uint64_t seq)
{
    struct ds_store *s = ctx;
    int rc = 0;

    pthread_mutex_lock(&s->trim_mu);
    if (!s->trim_started) {
        if ((rc = -pthread_create(&s->trim_thread, NULL, trim_main, s)) == 0)
            s->trim_started = true;
    }
    if (rc == 0) {
        unsigned i = 0;
        while (i < s->ntrim && s->trim[i].part != part)
            i++;
        if (i == s->ntrim)
            s->trim[s->ntrim++] = (struct trim_req){.part = part, .seq = seq};
        else if (seq > s->trim[i].seq)
            s->trim[i].seq = seq;
        pthread_cond_signal(&s->trim_cv);
    }
    pthread_mutex_unlock(&s->trim_mu);
    return rc;
}

static int ds_snap_open(void *ctx, uint32_t part, void **ret_snap, uint64_t *ret_seq,
                        struct srm__repl_snapinfo *ret_info)
{
    struct ds_store *s = ctx;
    struct srm_ds_snap *snap;
    struct srm_ds_snap_info si;
    int rc = srm_ds_snap_open(s->env, part, &snap);
    if (rc < 0)
        return rc;
    rc = srm_ds_snap_info(snap, &si);
    if (rc < 0) {
        srm_ds_snap_close(snap);
        return rc;
    }
    struct srm__repl_snapinfo info = {.source = si.source,
                                      .gen = si.gen,
                                      .hlc = si.hlc,
                                      .owner_node = si.owner.node,
                                      .owner_epoch = si.owner.epoch,
                                      .entries = si.entries};
    for (int k = 0; k < 3 && k < SRM_DS_KIND_MAX; k++) {
        info.digest[k][0] = si.digest[k].lo;
        info.digest[k][1] = si.digest[k].hi;
        info.digest[k][2] = si.digest[k].count;
    }
    *ret_snap = snap;
    *ret_seq = si.seq;
    *ret_info = info;
    return 0;
}

static int ds_snap_next(void *snap, void *buf, size_t cap, size_t *ret_len)
{
    size_t len = 0;
    int rc = srm_ds_snap_next(snap, buf, cap, &len);
    if (rc < 0)
        return rc;
    *ret_len = rc == 0 ? 0 : len;
    return 0;
}

static void ds_snap_close(void *snap)
{
    srm_ds_snap_close(snap);
}

static int ds_install_begin(void *ctx, uint32_t part, uint64_t seq,
                            const struct srm__repl_snapinfo *info, void **ret_inst)
{
    struct ds_store *s = ctx;
    struct srm_ds_snap_info si = {.part = part,
                                  .source = info->source,
                                  .gen = info->gen,
                                  .seq = seq,
                                  .hlc = info->hlc,
                                  .owner = {.node = info->owner_node, .epoch = info->owner_epoch},
                                  .entries = info->entries};
    for (int k = 0; k < 3 && k < SRM_DS_KIND_MAX; k++) {
        si.digest[k].lo = info->digest[k][0];
        si.digest[k].hi = info->digest[k][1];
        si.digest[k].count = info->digest[k][2];
    }
    struct srm_ds_snap_install *inst;
    int rc = srm_ds_snap_install_begin(s->env, &si, &inst);
    if (rc < 0)
        return rc;
    *ret_inst = inst;
    return 0;
}

static int ds_install_chunk(void *inst, const void *buf, size_t len)
{
    return srm_ds_snap_install_chunk(inst, buf, len);
}

static int ds_install_commit(void *inst)
{
    return srm_ds_snap_install_commit(inst);
}

static void ds_install_abort(void *inst)
{
    srm_ds_snap_install_abort(inst);
}

static int ds_set_replicated(void *ctx, uint32_t part, uint64_t seq, bool reset)
{
    struct ds_store *s = ctx;
    return reset ? srm_ds_sync_reset(s->env, part, seq) : srm_ds_sync_ack(s->env, part, seq);
}

static int ds_set_degraded(void *ctx, uint32_t part, bool degraded)
{
    struct ds_store *s = ctx;
    return srm_ds_sync_set_degraded(s->env, part, degraded);
}

static int ds_notify_fd(void *ctx)
{
    struct ds_store *s = ctx;
    return s->sub ? srm_ds_sub_fd(s->sub) : -1;
}

static void ds_notify_drain(void *ctx, void (*cb)(void *arg, uint32_t part, uint64_t seq),
                            void *arg)
{
    struct ds_store *s = ctx;
    struct srm_ds_event evs[64];
    for (int round = 0; round < 64 && s->sub; round++) {
        size_t n = 0;
        if (srm_ds_sub_read(s->sub, evs, 64, &n) < 0 || n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            if (evs[i].kind == SRM_DS_EV_COMMIT)
                cb(arg, evs[i].part, evs[i].seq);
            else if (evs[i].kind == SRM_DS_EV_OVERFLOW)
                cb(arg, 0, 0);
        }
        if (n < 64)
            return;
    }
}

static void ds_close(void *ctx)
{
    struct ds_store *s = ctx;
    if (!s)
        return;
    if (s->trim_started) {
        pthread_mutex_lock(&s->trim_mu);
        s->trim_stop = true;
        pthread_cond_signal(&s->trim_cv);
        pthread_mutex_unlock(&s->trim_mu);
        pthread_join(s->trim_thread, NULL); /* a trim in progress ends first */
    }
    pthread_mutex_destroy(&s->trim_mu);
    pthread_cond_destroy(&s->trim_cv);
    srm_ds_txn_abort(s->rtxn);
    srm_ds_sub_close(s->sub);
    free(s->ents);
    free(s);
}

const struct srm__repl_store_ops srm__repl_ds_ops = {
    .log_head = ds_log_head,
    .applied = ds_applied,
    .log_read = ds_log_read,
    .log_apply = ds_log_apply,
    .log_trim = ds_log_trim,
    .snap_open = ds_snap_open,
    .snap_next = ds_snap_next,
    .snap_close = ds_snap_close,
    .install_begin = ds_install_begin,
    .install_chunk = ds_install_chunk,
    .install_commit = ds_install_commit,
    .install_abort = ds_install_abort,
    .set_replicated = ds_set_replicated,
    .set_degraded = ds_set_degraded,
    .notify_fd = ds_notify_fd,
    .notify_drain = ds_notify_drain,
    .close = ds_close,
};

int srm__repl_ds_store_new(struct srm_ds_env *env, uint32_t node_id, void **ret_ctx)
{
    struct ds_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->env = env;
    s->node_id = node_id;
    int rc = srm_ds_sub_open(env, &s->sub);
    if (rc < 0) {
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->trim_mu, NULL);
    pthread_cond_init(&s->trim_cv, NULL);
    *ret_ctx = s;
    return 0;
}
