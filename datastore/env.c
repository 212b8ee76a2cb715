/*
 * Environment and transactions: opening and format checks, error conversion, map growth,
 * the per-transaction partition cache that is written back once at commit, ownership.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "srm_log.h"

#define DEFAULT_MAP_SIZE (64ull << 20)
#define DEFAULT_LOG_MAX  (64ull << 20)

static const char *const db_names[] = {"srm-format", "part",   "rec",  "log",
                                       "pos",        "expiry", "stage"};
#define N_DBS (sizeof(db_names) / sizeof(db_names[0]))

int srm__ds_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
        return SRM_EMAPFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_PANIC:
        return SRM_ECORRUPT;
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_READERS_FULL:
        return -EBUSY;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -E2BIG;
    case MDB_DBS_FULL:
    case MDB_TLS_FULL:
        return -EMFILE;
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
        return -EINVAL;
    default:
        return rc > 0 ? -rc : (rc < 0 ? -EIO : 0);
    }
}

/* A map-full failure: ask for growth, tell the caller whether a retry can succeed. */
static int map_full(struct srm_ds_env *env)
{
    int rc;

    pthread_mutex_lock(&env->mu);
    if (env->map_size < env->map_max) {
        env->grow_pending = true;
        rc = -EAGAIN;
    } else {
        rc = SRM_EMAPFULL;
    }
    pthread_mutex_unlock(&env->mu);
    return rc;
}

int srm__ds_txn_fail(struct srm_ds_txn *txn, int rc)
{
    int err = rc == MDB_MAP_FULL ? map_full(txn->env) : srm__ds_err(rc);

    if (!txn->err)
        txn->err = err;
    return err;
}

int srm__ds_txn_check(struct srm_ds_txn *txn, bool write)
{
    if (!txn)
        return -EINVAL;
    if (txn->err)
        return SRM_ETXN_FAILED;
    if (!txn->active)
        return -EINVAL;
    if (write && txn->rdonly)
        return -EINVAL;
    return 0;
}

int srm__ds_scratch(uint8_t **buf, size_t *cap, size_t need)
{
    uint8_t *n;
    size_t c;

    if (need <= *cap)
        return 0;
    c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    n = realloc(*buf, c);
    if (!n)
        return -ENOMEM;
    *buf = n;
    *cap = c;
    return 0;
}

static uint64_t realtime_ms(void *data)
{
    struct timespec ts;

    (void)data;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t srm__ds_now(struct srm_ds_env *env)
{
    return env->clock_cb(env->clock_data);
}

uint64_t srm__ds_txn_now(struct srm_ds_txn *txn)
{
    /* One reading per transaction: its writes share a wall time, the clock orders them. */
    if (txn->wall_ms == 0)
        txn->wall_ms = srm__ds_now(txn->env);
    return txn->wall_ms;
}

uint64_t srm__ds_random64(void)
{
    uint64_t v = 0;

    while (v == 0) {
        if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            v = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
        }
    }
    return v;
}

/* ---- opening ---- */

struct fmt_rec {
    char magic[8];
    uint32_t layout;
    uint32_t pad;
};

/* Creates or checks the named databases and the format record. */
static int open_dbs(struct srm_ds_env *env)
{
    MDB_dbi *dbis[N_DBS] = {&env->dbi_fmt, &env->dbi_part, &env->dbi_rec,  &env->dbi_log,
                            &env->dbi_pos, &env->dbi_exp,  &env->dbi_stage};
    MDB_txn *t;
    MDB_dbi main;
    MDB_cursor *cur;
    MDB_val k, v;
    bool empty = true, ours = false;
    int rc;

    rc = mdb_txn_begin(env->mdb, NULL, env->read_only ? MDB_RDONLY : 0, &t);
    if (rc)
        return srm__ds_err(rc);
    if ((rc = mdb_dbi_open(t, NULL, 0, &main)) || (rc = mdb_cursor_open(t, main, &cur)))
        goto fail;
    /* The main database of our file holds exactly our named databases. */
    while ((rc = mdb_cursor_get(cur, &k, &v, empty ? MDB_FIRST : MDB_NEXT)) == 0) {
        bool known = false;

        empty = false;
        for (size_t i = 0; i < N_DBS; i++)
            if (k.mv_size == strlen(db_names[i]) && !memcmp(k.mv_data, db_names[i], k.mv_size))
                known = true;
        if (k.mv_size == strlen(db_names[0]) && !memcmp(k.mv_data, db_names[0], k.mv_size))
            ours = true;
        if (!known) {
            mdb_cursor_close(cur);
            mdb_txn_abort(t);
            return SRM_ECORRUPT;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        goto fail;
    if (!empty && !ours) {
        mdb_txn_abort(t);
        return SRM_ECORRUPT;
    }
    if (empty && env->read_only) {
        mdb_txn_abort(t);
        return -ENOENT;
    }
    for (size_t i = 0; i < N_DBS; i++) {
        rc = mdb_dbi_open(t, db_names[i], env->read_only ? 0 : MDB_CREATE, dbis[i]);
        if (rc)
            goto fail;
    }
    k.mv_data = "format";
    k.mv_size = 6;
    rc = mdb_get(t, env->dbi_fmt, &k, &v);
    if (rc == MDB_NOTFOUND && empty) {
        struct fmt_rec f = {.layout = DS_ENV_LAYOUT};

        memcpy(f.magic, DS_ENV_FORMAT_MAGIC, sizeof(DS_ENV_FORMAT_MAGIC));
        v.mv_data = &f;
        v.mv_size = sizeof(f);
        if ((rc = mdb_put(t, env->dbi_fmt, &k, &v, 0)))
            goto fail;
    } else if (rc) {
        mdb_txn_abort(t);
        return rc == MDB_NOTFOUND ? SRM_ECORRUPT : srm__ds_err(rc);
    } else {
        struct fmt_rec f;

        if (v.mv_size != sizeof(f)) {
            mdb_txn_abort(t);
            return SRM_ECORRUPT;
        }
        memcpy(&f, v.mv_data, sizeof(f));
        if (memcmp(f.magic, DS_ENV_FORMAT_MAGIC, sizeof(DS_ENV_FORMAT_MAGIC)) ||
            f.layout != DS_ENV_LAYOUT) {
            mdb_txn_abort(t);
            return SRM_ECORRUPT;
        }
    }
    rc = mdb_txn_commit(t);
    return srm__ds_err(rc);
fail:
    mdb_txn_abort(t);
    return srm__ds_err(rc);
}

int srm_ds_env_open(const char *dir, const struct srm_ds_open_opts *opts,
                    struct srm_ds_env **ret_env)
{
    struct srm_ds_env *env;
    unsigned flags = MDB_NOTLS;
    int rc, dead;

    if (!dir || !opts || !ret_env || opts->node_id == SRM_DS_NODE_NONE ||
        (unsigned)opts->sync >= SRM_DS_SYNC_MODE_MAX)
        return -EINVAL;
    if (opts->map_size_max &&
        opts->map_size_max < (opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE))
        return -EINVAL;
    if (!opts->read_only && mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -errno;

    env = calloc(1, sizeof(*env));
    if (!env)
        return -ENOMEM;
    pthread_mutex_init(&env->mu, NULL);
    env->send_fd = -1;
    env->node_id = opts->node_id;
    env->read_only = opts->read_only;
    env->map_size = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    env->map_max = opts->map_size_max ? opts->map_size_max : env->map_size;
    env->log_max_default = opts->log_max_bytes ? opts->log_max_bytes : DEFAULT_LOG_MAX;
    env->clock_cb = opts->clock_cb ? opts->clock_cb : realtime_ms;
    env->clock_data = opts->clock_data;

    if ((rc = mdb_env_create(&env->mdb))) {
        rc = srm__ds_err(rc);
        goto fail;
    }
    mdb_env_set_maxdbs(env->mdb, 16);
    mdb_env_set_maxreaders(env->mdb, opts->max_readers ? opts->max_readers : 126);
    /* 0: an existing file keeps the size it grew to (recorded in its meta page); the
     * requested size is applied after opening if it is larger. */
    mdb_env_set_mapsize(env->mdb, 0);
    if (opts->sync == SRM_DS_SYNC_NONE)
        flags |= MDB_NOSYNC;
    if (opts->read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_open(env->mdb, dir, flags, 0640))) {
        rc = srm__ds_err(rc);
        goto fail;
    }
    {
        /* An existing file larger than the requested map keeps its size. */
        MDB_envinfo info;

        mdb_env_info(env->mdb, &info);
        if (info.me_mapsize < env->map_size) {
            if ((rc = mdb_env_set_mapsize(env->mdb, env->map_size))) {
                rc = srm__ds_err(rc);
                goto fail;
            }
        } else {
            env->map_size = info.me_mapsize;
        }
        if (env->map_max < env->map_size)
            env->map_max = env->map_size;
    }
    {
        /* A file shorter than its committed pages (truncated, or cut by a copy) would
         * fault (SIGBUS) when a missing page is touched: refuse it here. */
        MDB_envinfo info;
        MDB_stat st;
        struct stat fst;
        char path[PATH_MAX];

        mdb_env_info(env->mdb, &info);
        mdb_env_stat(env->mdb, &st);
        snprintf(path, sizeof(path), "%s/data.mdb", dir);
        if (stat(path, &fst) == 0 &&
            (uint64_t)fst.st_size < (uint64_t)(info.me_last_pgno + 1) * st.ms_psize) {
            rc = SRM_ECORRUPT;
            goto fail;
        }
    }
    mdb_reader_check(env->mdb, &dead);
    if ((rc = open_dbs(env)) < 0)
        goto fail;
    if ((rc = srm__ds_shm_open(env, dir)) < 0)
        goto fail;
    *ret_env = env;
    return 0;
fail:
    if (env->mdb)
        mdb_env_close(env->mdb);
    pthread_mutex_destroy(&env->mu);
    free(env);
    return rc;
}

void srm_ds_env_close(struct srm_ds_env *env)
{
    if (!env)
        return;
    srm__ds_shm_close(env);
    mdb_env_close(env->mdb);
    pthread_mutex_destroy(&env->mu);
    free(env);
}

int srm_ds_env_flush(struct srm_ds_env *env)
{
    if (!env)
        return -EINVAL;
    return srm__ds_err(mdb_env_sync(env->mdb, 1));
}

int srm_ds_env_info(struct srm_ds_env *env, struct srm_ds_env_info *ret)
{
    MDB_envinfo info;
    MDB_stat st;

    if (!env || !ret)
        return -EINVAL;
    mdb_env_info(env->mdb, &info);
    mdb_env_stat(env->mdb, &st);
    pthread_mutex_lock(&env->mu);
    ret->map_size = info.me_mapsize;
    ret->map_size_max = env->map_max;
    pthread_mutex_unlock(&env->mu);
    ret->node_id = env->node_id;
    ret->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    ret->readers_used = info.me_numreaders;
    return 0;
}

/* ---- transactions ---- */

/* Called with env->mu held and no transaction of this process open. */
static int grow_locked(struct srm_ds_env *env)
{
    uint64_t n = env->map_size * 2;
    int rc;

    if (n > env->map_max)
        n = env->map_max;
    rc = mdb_env_set_mapsize(env->mdb, n);
    if (rc)
        return srm__ds_err(rc);
    env->map_size = n;
    env->grow_pending = false;
    return 0;
}

static void txn_end_locked(struct srm_ds_env *env)
{
    env->active_txns--;
    if (env->active_txns == 0 && env->grow_pending)
        grow_locked(env);
}

int srm_ds_txn_begin(struct srm_ds_env *env, unsigned flags, struct srm_ds_txn **ret_txn)
{
    struct srm_ds_txn *txn;
    bool rdonly = flags & SRM_DS_TXN_RDONLY;
    int rc;

    if (!env || !ret_txn || (flags & ~SRM_DS_TXN_RDONLY) || (!rdonly && env->read_only))
        return -EINVAL;
    txn = calloc(1, sizeof(*txn));
    if (!txn)
        return -ENOMEM;
    txn->env = env;
    txn->rdonly = rdonly;
    pthread_mutex_lock(&env->mu);
    if (env->active_txns == 0 && env->grow_pending)
        grow_locked(env);
    env->active_txns++;
    pthread_mutex_unlock(&env->mu);
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(env->mdb, NULL, rdonly ? MDB_RDONLY : 0, &txn->mdb);
        if (rc != MDB_MAP_RESIZED || tries > 0)
            break;
        /* Another process grew the map: adopt its size if nothing else of ours is open. */
        pthread_mutex_lock(&env->mu);
        if (env->active_txns == 1) {
            MDB_envinfo info;

            mdb_env_set_mapsize(env->mdb, 0);
            mdb_env_info(env->mdb, &info);
            env->map_size = info.me_mapsize;
            if (env->map_max < env->map_size)
                env->map_max = env->map_size;
        }
        pthread_mutex_unlock(&env->mu);
    }
    if (rc) {
        pthread_mutex_lock(&env->mu);
        txn_end_locked(env);
        pthread_mutex_unlock(&env->mu);
        free(txn);
        return srm__ds_err(rc);
    }
    txn->active = true;
    *ret_txn = txn;
    return 0;
}

static void txn_free(struct srm_ds_txn *txn)
{
    struct srm_ds_env *env = txn->env;
    bool counted = txn->active || !txn->rdonly; /* a reset read transaction is not counted */

    for (size_t i = 0; i < txn->nps; i++) {
        free(txn->ps[i]->lg);
        free(txn->ps[i]);
    }
    free(txn->ps);
    free(txn->buf);
    free(txn->buf2);
    free(txn);
    if (!counted)
        return;
    pthread_mutex_lock(&env->mu);
    txn_end_locked(env);
    pthread_mutex_unlock(&env->mu);
}

void srm_ds_txn_abort(struct srm_ds_txn *txn)
{
    if (!txn)
        return;
    if (txn->mdb)
        mdb_txn_abort(txn->mdb); /* closes its cursors */
    txn_free(txn);
}

static int bucket_key(uint8_t *k, uint32_t part, uint8_t kind)
{
    srm__ds_be32(k, part);
    k[4] = kind;
    return 5;
}

/* Writes back the partition caches. */
static int flush_parts(struct srm_ds_txn *txn)
{
    struct srm_ds_env *env = txn->env;
    uint8_t k[8];
    MDB_val key, val;
    int rc;

    for (size_t i = 0; i < txn->nps; i++) {
        struct ds_pstate *ps = txn->ps[i];

        if (!ps->dirty)
            continue;
        for (int kind = 0; kind < SRM_DS_KIND_MAX; kind++) {
            if (!ps->buckets_dirty[kind])
                continue;
            key.mv_data = k;
            key.mv_size = (size_t)bucket_key(k, ps->part, (uint8_t)kind);
            val.mv_data = &ps->buckets[kind];
            val.mv_size = sizeof(ps->buckets[kind]);
            if ((rc = mdb_put(txn->mdb, env->dbi_part, &key, &val, 0)))
                return rc;
        }
        srm__ds_be32(k, ps->part);
        key.mv_data = k;
        key.mv_size = 4;
        val.mv_data = &ps->m;
        val.mv_size = sizeof(ps->m);
        if ((rc = mdb_put(txn->mdb, env->dbi_part, &key, &val, 0)))
            return rc;
    }
    return 0;
}

int srm_ds_txn_commit(struct srm_ds_txn *txn)
{
    struct srm_ds_env *env;
    struct {
        uint32_t part;
        uint64_t seq;
    } notes[8];
    size_t nnotes = 0;
    bool more = false;
    int rc;

    if (!txn)
        return -EINVAL;
    env = txn->env;
    if (txn->rdonly) {
        srm_ds_txn_abort(txn);
        return 0;
    }
    if (txn->err) {
        srm_ds_txn_abort(txn);
        return SRM_ETXN_FAILED;
    }
    /* the log entries still gathered in memory, then the partition records */
    for (size_t i = 0; i < txn->nps; i++) {
        if ((rc = srm__ds_log_flush(txn, txn->ps[i])) < 0) {
            srm_ds_txn_abort(txn);
            return rc;
        }
    }
    if ((rc = flush_parts(txn))) {
        rc = srm__ds_txn_fail(txn, rc);
        srm_ds_txn_abort(txn);
        return rc;
    }
    for (size_t i = 0; i < txn->nps; i++) {
        if (!txn->ps[i]->wrote_log)
            continue;
        if (nnotes < 8) {
            notes[nnotes].part = txn->ps[i]->part;
            notes[nnotes].seq = txn->ps[i]->m.last_seq;
            nnotes++;
        } else {
            more = true;
        }
    }
    rc = mdb_txn_commit(txn->mdb);
    txn->mdb = NULL;
    if (rc) {
        rc = rc == MDB_MAP_FULL ? map_full(env) : srm__ds_err(rc);
        txn_free(txn);
        return rc;
    }
    txn_free(txn);
    for (size_t i = 0; i < nnotes; i++)
        srm__ds_notify(env, SRM_DS_EV_COMMIT, notes[i].part, notes[i].seq);
    if (more)
        srm__ds_notify(env, SRM_DS_EV_OVERFLOW, 0, 0);
    return 0;
}

/* A reset read transaction holds no snapshot and no page of the map: it does not count as
 * open, so that the map can grow while a long-lived handle (a replication endpoint's, a
 * subscriber's) sits reset between uses. */
void srm_ds_txn_reset(struct srm_ds_txn *txn)
{
    if (!txn || !txn->rdonly || !txn->active)
        return;
    mdb_txn_reset(txn->mdb);
    txn->rec_cur = NULL; /* read-only cursors stay attached; reopened lazily */
    txn->active = false;
    pthread_mutex_lock(&txn->env->mu);
    txn_end_locked(txn->env);
    pthread_mutex_unlock(&txn->env->mu);
}

int srm_ds_txn_renew(struct srm_ds_txn *txn)
{
    struct srm_ds_env *env;
    int rc;

    if (!txn || !txn->rdonly || txn->active)
        return -EINVAL;
    env = txn->env;
    pthread_mutex_lock(&env->mu);
    if (env->active_txns == 0 && env->grow_pending)
        grow_locked(env);
    env->active_txns++;
    pthread_mutex_unlock(&env->mu);
    rc = mdb_txn_renew(txn->mdb);
    if (rc) {
        pthread_mutex_lock(&env->mu);
        txn_end_locked(env);
        pthread_mutex_unlock(&env->mu);
        return srm__ds_err(rc);
    }
    txn->active = true;
    return 0;
}

int srm_ds_txn_seq(struct srm_ds_txn *txn, uint32_t part, uint64_t *ret_seq)
{
    if (!txn || !ret_seq)
        return -EINVAL;
    for (size_t i = 0; i < txn->nps; i++) {
        if (txn->ps[i]->part == part && txn->ps[i]->wrote_log) {
            *ret_seq = txn->ps[i]->m.last_seq;
            return 0;
        }
    }
    return -ENOENT;
}

/* ---- partition state ---- */

void srm__ds_meta_init(struct srm_ds_env *env, struct ds_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->fmt = DS_META_FMT;
    m->gen = srm__ds_random64();
    m->first_seq = 1;
    m->last_seq = 0;
    m->log_max = env->log_max_default;
}

static int meta_decode(const MDB_val *v, struct ds_meta *m)
{
    if (v->mv_size != sizeof(*m))
        return SRM_ECORRUPT;
    memcpy(m, v->mv_data, sizeof(*m));
    if (m->fmt != DS_META_FMT)
        return SRM_ECORRUPT;
    return 0;
}

int srm__ds_pstate(struct srm_ds_txn *txn, uint32_t part, bool create, struct ds_pstate **ret)
{
    struct ds_pstate *ps;
    uint8_t k[4];
    MDB_val key, val;
    int rc;

    for (size_t i = 0; i < txn->nps; i++) {
        if (txn->ps[i]->part == part) {
            ps = txn->ps[i];
            if (!ps->exists) {
                if (!create)
                    return SRM_ENOTFOUND;
                ps->exists = true;
                ps->dirty = true;
            }
            *ret = ps;
            return 0;
        }
    }
    if (part == 0)
        return -EINVAL;
    if (txn->nps == txn->cap_ps) {
        size_t c = txn->cap_ps ? txn->cap_ps * 2 : 4;
        struct ds_pstate **n = realloc(txn->ps, c * sizeof(*n));

        if (!n)
            return -ENOMEM;
        txn->ps = n;
        txn->cap_ps = c;
    }
    ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -ENOMEM;
    ps->part = part;
    srm__ds_be32(k, part);
    key.mv_data = k;
    key.mv_size = 4;
    rc = mdb_get(txn->mdb, txn->env->dbi_part, &key, &val);
    if (rc == 0) {
        if ((rc = meta_decode(&val, &ps->m)) < 0) {
            free(ps);
            return rc;
        }
        ps->exists = true;
    } else if (rc == MDB_NOTFOUND) {
        srm__ds_meta_init(txn->env, &ps->m);
        if (create) {
            ps->exists = true;
            ps->dirty = true;
        }
    } else {
        free(ps);
        return srm__ds_err(rc);
    }
    txn->ps[txn->nps++] = ps;
    if (!ps->exists)
        return SRM_ENOTFOUND;
    *ret = ps;
    return 0;
}

int srm__ds_buckets_load(struct srm_ds_txn *txn, struct ds_pstate *ps, uint8_t kind)
{
    uint8_t k[8];
    MDB_val key, val;
    int rc;

    if (ps->buckets_loaded[kind])
        return 0;
    key.mv_data = k;
    key.mv_size = (size_t)bucket_key(k, ps->part, kind);
    rc = mdb_get(txn->mdb, txn->env->dbi_part, &key, &val);
    if (rc == 0) {
        if (val.mv_size != sizeof(ps->buckets[kind]))
            return SRM_ECORRUPT;
        memcpy(&ps->buckets[kind], val.mv_data, sizeof(ps->buckets[kind]));
    } else if (rc == MDB_NOTFOUND) {
        memset(&ps->buckets[kind], 0, sizeof(ps->buckets[kind]));
    } else {
        return srm__ds_err(rc);
    }
    ps->buckets_loaded[kind] = true;
    return 0;
}

int srm__ds_meta_read(struct srm_ds_txn *txn, uint32_t part, struct ds_meta *ret)
{
    uint8_t k[4];
    MDB_val key, val;
    int rc;

    for (size_t i = 0; i < txn->nps; i++) {
        if (txn->ps[i]->part == part) {
            if (!txn->ps[i]->exists)
                return SRM_ENOTFOUND;
            *ret = txn->ps[i]->m;
            return 0;
        }
    }
    srm__ds_be32(k, part);
    key.mv_data = k;
    key.mv_size = 4;
    rc = mdb_get(txn->mdb, txn->env->dbi_part, &key, &val);
    if (rc == MDB_NOTFOUND)
        return SRM_ENOTFOUND;
    if (rc)
        return srm__ds_err(rc);
    return meta_decode(&val, ret);
}

/* ---- ownership and partitions ---- */

int srm_ds_owner_get(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_owner *ret)
{
    struct ds_meta m;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret)
        return -EINVAL;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    ret->node = m.owner;
    ret->epoch = m.epoch;
    return 0;
}

int srm_ds_owner_set(struct srm_ds_txn *txn, uint32_t part, uint32_t owner, uint64_t epoch,
                     uint64_t *ret_epoch)
{
    struct ds_pstate *ps;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if (part == 0)
        return -EINVAL;
    if ((rc = srm__ds_pstate(txn, part, true, &ps)) < 0)
        return rc;
    if (epoch == 0)
        epoch = ps->m.epoch + 1;
    if (epoch <= ps->m.epoch)
        return SRM_ESTALE_EPOCH;
    ps->m.owner = owner;
    ps->m.epoch = epoch;
    ps->dirty = true;
    if (ret_epoch)
        *ret_epoch = epoch;
    return 0;
}

int srm_ds_part_list(struct srm_ds_txn *txn, uint32_t *ids, size_t cap, size_t *ret_n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret_n || (cap && !ids))
        return -EINVAL;
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_part, &cur)))
        return srm__ds_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4)
            continue;
        if (n < cap)
            ids[n] = srm__ds_get_be32(k.mv_data);
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return srm__ds_err(rc);
    /* Partitions created in this transaction are already in the cache, not yet in the DB. */
    for (size_t i = 0; i < txn->nps; i++) {
        struct ds_pstate *ps = txn->ps[i];
        uint8_t k4[4];
        MDB_val key = {4, k4}, val;

        if (!ps->exists)
            continue;
        srm__ds_be32(k4, ps->part);
        if (mdb_get(txn->mdb, txn->env->dbi_part, &key, &val) == MDB_NOTFOUND) {
            size_t j = n < cap ? n : cap;
            /* insert sorted into the visible part of ids */
            while (j > 0 && ids[j - 1] > ps->part) {
                if (j < cap)
                    ids[j] = ids[j - 1];
                j--;
            }
            if (j < cap)
                ids[j] = ps->part;
            n++;
        }
    }
    *ret_n = n;
    return 0;
}

int srm_ds_part_stats(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_part_stats *ret)
{
    struct ds_meta m;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret)
        return -EINVAL;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    ret->owner.node = m.owner;
    ret->owner.epoch = m.epoch;
    for (int i = 0; i < SRM_DS_KIND_MAX; i++)
        ret->records[i] = m.digest[i].count;
    ret->tombstones = m.tombstones;
    ret->sessions_active = m.sessions_active;
    ret->sessions_inactive = m.sessions_inactive;
    ret->hlc = m.hlc;
    return 0;
}
