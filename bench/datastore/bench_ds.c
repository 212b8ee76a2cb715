/*
 * Datastore throughput against raw LMDB, measured in the same run with the same record
 * sizes and the same environment flags (MDB_NOSYNC | MDB_NOTLS, same map size), keys in the
 * same random order:
 *   - one write per transaction, and batches of BATCH writes per transaction;
 *   - random reads (read transactions renewed every 1000 reads).
 * The datastore's writes include fencing, the log append, the digest and bucket updates.
 * Each figure is the median of ROUNDS rounds; which side goes first alternates; each ratio
 * is the median of the per-round ratios. Reads run after both stores are flushed, in
 * alternating slices. Also: the ownership flip with N users, and a snapshot of N records
 * streamed while a writer goes on.
 *
 * Profiling aids: `bench_ds ds|raw` loads one store (batched) and prints its write volume;
 * `bench_ds dsget|rawget` loads one store and times reads five times.
 */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "srm_ds.h"

#define N_BATCHED   200000
#define N_SINGLE    20000
#define N_READS     500000
#define BATCH       1000
#define ROUNDS      5
#define READ_SLICES 50 /* reads alternate between the two stores every N_READS/50 */
#define MAP_SIZE    (1ull << 30)

static char status_text[101];
static uint8_t ext_blob[64];

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

static void rmrf(const char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ds: %s: %d (%s)\n", what, rc, rc < 0 ? srm_strerror(rc) : "lmdb");
    exit(1);
}

static void user_of(char *u, size_t cap, unsigned i)
{
    snprintf(u, cap, "user%07u@example.com", i);
}

static struct srm_ds_presence rec_of(const char *user)
{
    struct srm_ds_presence p = {.user = user,
                                .resource = "desktop",
                                .availability = SRM_DS_AVAIL_AWAY,
                                .priority = 1,
                                .status = status_text,
                                .updated_ms = 1700000000000ull,
                                .ext = ext_blob,
                                .ext_len = sizeof(ext_blob)};
    return p;
}

/* ---- raw LMDB: the same key bytes (partition | kind | user NUL resource NUL) and the same
 * encoded record bytes as the datastore's body ---- */

struct raw {
    MDB_env *env;
    MDB_dbi dbi;
    char dir[64];
};

static double raw_get_s(struct raw *r, const unsigned *order, unsigned from, unsigned n,
                        unsigned nkeys);

static void raw_open(struct raw *r)
{
    MDB_txn *t;
    int rc;

    strcpy(r->dir, "/tmp/srm-bench-raw-XXXXXX");
    if (!mkdtemp(r->dir))
        die("mkdtemp", -errno);
    mdb_env_create(&r->env);
    mdb_env_set_maxdbs(r->env, 16);
    mdb_env_set_mapsize(r->env, MAP_SIZE);
    if ((rc = mdb_env_open(r->env, r->dir, MDB_NOSYNC | MDB_NOTLS, 0600)))
        die("mdb_env_open", rc);
    mdb_txn_begin(r->env, NULL, 0, &t);
    mdb_dbi_open(t, "raw", MDB_CREATE, &r->dbi);
    mdb_txn_commit(t);
}

static void raw_close(struct raw *r)
{
    mdb_env_close(r->env);
    rmrf(r->dir);
}

static size_t raw_kv(unsigned i, uint8_t *key, uint8_t **val, size_t *vcap, size_t *vlen)
{
    char u[64];
    size_t klen;
    struct srm_ds_presence p;

    user_of(u, sizeof(u), i);
    p = rec_of(u);
    srm__ds_rec_key(key, 1, SRM_DS_PRESENCE);
    if (srm__ds_presence_encode(&p, key + DS_REC_KEY0, &klen, val, vcap, vlen) < 0)
        die("encode", -EINVAL);
    return DS_REC_KEY0 + klen;
}

static double raw_put(struct raw *r, const unsigned *order, unsigned n, unsigned batch)
{
    uint8_t key[DS_REC_KEY_MAX], *val = NULL;
    size_t vcap = 0, vlen;
    MDB_txn *t = NULL;
    double t0 = now_s();
    int rc;

    for (unsigned i = 0; i < n; i++) {
        MDB_val k, v;

        k.mv_size = raw_kv(order[i], key, &val, &vcap, &vlen);
        k.mv_data = key;
        v.mv_data = val;
        v.mv_size = vlen;
        if (!t && (rc = mdb_txn_begin(r->env, NULL, 0, &t)))
            die("raw begin", rc);
        if ((rc = mdb_put(t, r->dbi, &k, &v, 0)))
            die("raw put", rc);
        if ((i + 1) % batch == 0 || i + 1 == n) {
            if ((rc = mdb_txn_commit(t)))
                die("raw commit", rc);
            t = NULL;
        }
    }
    free(val);
    return n / (now_s() - t0);
}

static double raw_get(struct raw *r, const unsigned *order, unsigned n, unsigned nkeys)
{
    return n / raw_get_s(r, order, 0, n, nkeys);
}

static double raw_get_s(struct raw *r, const unsigned *order, unsigned from, unsigned n,
                        unsigned nkeys)
{
    uint8_t key[DS_REC_KEY_MAX], *val = NULL;
    size_t vcap = 0, vlen;
    MDB_txn *t;
    size_t sum = 0;
    double t0;

    mdb_txn_begin(r->env, NULL, MDB_RDONLY, &t);
    t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        MDB_val k, v;
        char u[64];

        if (i % 1000 == 999) {
            mdb_txn_reset(t);
            mdb_txn_renew(t);
        }
        /* the same key construction work as the datastore's get */
        user_of(u, sizeof(u), order[(from + i) % nkeys]);
        srm__ds_rec_key(key, 1, SRM_DS_PRESENCE);
        size_t ul = strlen(u);
        memcpy(key + DS_REC_KEY0, u, ul + 1);
        memcpy(key + DS_REC_KEY0 + ul + 1, "desktop", 8);
        k.mv_data = key;
        k.mv_size = DS_REC_KEY0 + ul + 1 + 8;
        if (mdb_get(t, r->dbi, &k, &v))
            die("raw get", -ENOENT);
        sum += ((const uint8_t *)v.mv_data)[v.mv_size - 1];
    }
    double el = now_s() - t0;
    mdb_txn_abort(t);
    (void)vcap;
    (void)vlen;
    free(val);
    if (sum == 1)
        printf("(unlikely)\n");
    return el;
}

/* ---- datastore ---- */

struct ds {
    struct srm_ds_env *env;
    char dir[64];
};

static double ds_get_s(struct ds *d, const unsigned *order, unsigned from, unsigned n,
                       unsigned nkeys);

static void ds_open(struct ds *d)
{
    struct srm_ds_open_opts o = {.node_id = 1,
                                 .sync = SRM_DS_SYNC_NONE,
                                 .map_size = MAP_SIZE,
                                 .log_max_bytes = 256ull << 20};
    struct srm_ds_txn *t;
    int rc;

    strcpy(d->dir, "/tmp/srm-bench-ds-XXXXXX");
    if (!mkdtemp(d->dir))
        die("mkdtemp", -errno);
    if ((rc = srm_ds_env_open(d->dir, &o, &d->env)) < 0)
        die("srm_ds_env_open", rc);
    srm_ds_txn_begin(d->env, 0, &t);
    srm_ds_owner_set(t, 1, 1, 1, NULL);
    if ((rc = srm_ds_txn_commit(t)) < 0)
        die("owner", rc);
}

static void ds_close(struct ds *d)
{
    srm_ds_env_close(d->env);
    rmrf(d->dir);
}

static double ds_put(struct ds *d, const unsigned *order, unsigned n, unsigned batch)
{
    struct srm_ds_txn *t = NULL;
    double t0 = now_s();
    int rc;

    for (unsigned i = 0; i < n; i++) {
        char u[64];
        struct srm_ds_presence p;

        user_of(u, sizeof(u), order[i]);
        p = rec_of(u);
        if (!t && (rc = srm_ds_txn_begin(d->env, 0, &t)) < 0)
            die("ds begin", rc);
        if ((rc = srm_ds_presence_put(t, 1, 1, &p)) < 0)
            die("ds put", rc);
        if ((i + 1) % batch == 0 || i + 1 == n) {
            if ((rc = srm_ds_txn_commit(t)) < 0)
                die("ds commit", rc);
            t = NULL;
        }
    }
    return n / (now_s() - t0);
}

static double ds_get(struct ds *d, const unsigned *order, unsigned n, unsigned nkeys)
{
    return n / ds_get_s(d, order, 0, n, nkeys);
}

static double ds_get_s(struct ds *d, const unsigned *order, unsigned from, unsigned n,
                       unsigned nkeys)
{
    struct srm_ds_txn *t;
    size_t sum = 0;
    double t0;
    int rc;

    srm_ds_txn_begin(d->env, SRM_DS_TXN_RDONLY, &t);
    t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        struct srm_ds_presence p;
        char u[64];

        if (i % 1000 == 999) {
            srm_ds_txn_reset(t);
            srm_ds_txn_renew(t);
        }
        user_of(u, sizeof(u), order[(from + i) % nkeys]);
        if ((rc = srm_ds_presence_get(t, 1, u, "desktop", &p)) < 0)
            die("ds get", rc);
        sum += ((const uint8_t *)p.ext)[p.ext_len - 1];
    }
    double el = now_s() - t0;
    srm_ds_txn_abort(t);
    if (sum == 1)
        printf("(unlikely)\n");
    return el;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(double), cmp_d);
    return v[ROUNDS / 2];
}

/* ---- snapshot while writing ---- */

struct snap_writer {
    struct srm_ds_env *env;
    volatile int stop;
    double max_commit_s;
    unsigned commits;
};

static void *snap_writer_main(void *arg)
{
    struct snap_writer *w = arg;
    unsigned i = 0;

    while (!w->stop) {
        struct srm_ds_txn *t;
        char u[64];
        double t0 = now_s(), el;

        snprintf(u, sizeof(u), "live%u", i++);
        struct srm_ds_presence p = rec_of(u);
        srm_ds_txn_begin(w->env, 0, &t);
        srm_ds_presence_put(t, 1, 1, &p);
        srm_ds_txn_commit(t);
        el = now_s() - t0;
        if (el > w->max_commit_s)
            w->max_commit_s = el;
        w->commits++;
        usleep(200);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned *order = malloc(N_BATCHED * sizeof(*order));
    unsigned seed = 42;
    double rs[ROUNDS], ds1[ROUNDS], rb[ROUNDS], db[ROUNDS], rg[ROUNDS], dg[ROUNDS];
    double ratio_s[ROUNDS], ratio_b[ROUNDS], ratio_g[ROUNDS];
    double run0 = now_s();

    memset(status_text, 's', sizeof(status_text) - 1);
    for (size_t i = 0; i < sizeof(ext_blob); i++)
        ext_blob[i] = (uint8_t)i;
    for (unsigned i = 0; i < N_BATCHED; i++)
        order[i] = i;
    for (unsigned i = N_BATCHED - 1; i > 0; i--) {
        unsigned j = rand_r(&seed) % (i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    {
        uint8_t key[DS_REC_KEY_MAX], *val = NULL;
        size_t vcap = 0, vlen, klen = raw_kv(0, key, &val, &vcap, &vlen);
        printf("record: key %zu bytes, encoded value %zu bytes (datastore stores +%u envelope)\n",
               klen, vlen, DS_ENVELOPE);
        printf("BENCH ds_record_key_bytes %zu bytes\nBENCH ds_record_value_bytes %zu bytes\n", klen,
               vlen);
        free(val);
    }
    printf("env flags: MDB_NOSYNC|MDB_NOTLS on both sides; %d rounds, medians\n", ROUNDS);
    if (argc > 1) {
        /* profiling aids: `bench_ds ds` or `bench_ds raw` runs one batched load */
        struct raw raw;
        struct ds ds;

        if (!strcmp(argv[1], "dsget")) {
            ds_open(&ds);
            ds_put(&ds, order, N_BATCHED, BATCH);
            for (int i = 0; i < 5; i++)
                printf("ds get %.0f ops/s\n", ds_get(&ds, order, N_READS, N_BATCHED));
            ds_close(&ds);
        } else if (!strcmp(argv[1], "rawget")) {
            raw_open(&raw);
            raw_put(&raw, order, N_BATCHED, BATCH);
            for (int i = 0; i < 5; i++)
                printf("raw get %.0f ops/s\n", raw_get(&raw, order, N_READS, N_BATCHED));
            raw_close(&raw);
        } else if (!strcmp(argv[1], "ds")) {
            ds_open(&ds);
            printf("ds batched %.0f ops/s\n", ds_put(&ds, order, N_BATCHED, BATCH));
            struct srm_ds_env_info info;
            srm_ds_env_info(ds.env, &info);
            printf("ds used %.1f MB\n", info.used_bytes / 1e6);
            ds_close(&ds);
        } else {
            raw_open(&raw);
            printf("raw batched %.0f ops/s\n", raw_put(&raw, order, N_BATCHED, BATCH));
            MDB_envinfo mi;
            mdb_env_info(raw.env, &mi);
            printf("raw used %.1f MB\n", (mi.me_last_pgno + 1) * 4096 / 1e6);
            raw_close(&raw);
        }
        {
            char line[128];
            FILE *io = fopen("/proc/self/io", "r");
            while (io && fgets(line, sizeof(line), io))
                if (!strncmp(line, "wchar", 5))
                    printf("%s", line);
            if (io)
                fclose(io);
        }
        free(order);
        return 0;
    }

    for (int r = 0; r < ROUNDS; r++) {
        struct raw raw;
        struct ds ds;

        /* alternate which goes first */
        if (r % 2 == 0) {
            raw_open(&raw);
            rs[r] = raw_put(&raw, order, N_SINGLE, 1);
            raw_close(&raw);
            ds_open(&ds);
            ds1[r] = ds_put(&ds, order, N_SINGLE, 1);
            ds_close(&ds);
        } else {
            ds_open(&ds);
            ds1[r] = ds_put(&ds, order, N_SINGLE, 1);
            ds_close(&ds);
            raw_open(&raw);
            rs[r] = raw_put(&raw, order, N_SINGLE, 1);
            raw_close(&raw);
        }
        raw_open(&raw);
        ds_open(&ds);
        if (r % 2 == 0) {
            rb[r] = raw_put(&raw, order, N_BATCHED, BATCH);
            db[r] = ds_put(&ds, order, N_BATCHED, BATCH);
        } else {
            db[r] = ds_put(&ds, order, N_BATCHED, BATCH);
            rb[r] = raw_put(&raw, order, N_BATCHED, BATCH);
        }
        /* reads: both stores flushed (no writeback in the way), then alternating slices */
        mdb_env_sync(raw.env, 1);
        srm_ds_env_flush(ds.env);
        {
            double traw = 0, tds = 0;
            unsigned slice = N_READS / READ_SLICES;

            for (unsigned k = 0; k < READ_SLICES; k++) {
                if ((k + (unsigned)r) % 2 == 0) {
                    traw += raw_get_s(&raw, order, k * slice, slice, N_BATCHED);
                    tds += ds_get_s(&ds, order, k * slice, slice, N_BATCHED);
                } else {
                    tds += ds_get_s(&ds, order, k * slice, slice, N_BATCHED);
                    traw += raw_get_s(&raw, order, k * slice, slice, N_BATCHED);
                }
            }
            rg[r] = READ_SLICES * slice / traw;
            dg[r] = READ_SLICES * slice / tds;
        }
        ratio_s[r] = ds1[r] / rs[r];
        ratio_b[r] = db[r] / rb[r];
        ratio_g[r] = dg[r] / rg[r];
        printf("round %d: single raw %.0f ds %.0f (%.2f) | batched raw %.0f ds %.0f (%.2f) | get "
               "raw %.0f ds %.0f (%.2f) (ops/s)\n",
               r + 1, rs[r], ds1[r], ratio_s[r], rb[r], db[r], ratio_b[r], rg[r], dg[r],
               ratio_g[r]);
        fflush(stdout);

        if (r == ROUNDS - 1) {
            /* ownership flip with N_BATCHED users: one record */
            struct srm_ds_txn *t;
            double t0 = now_s();
            srm_ds_txn_begin(ds.env, 0, &t);
            srm_ds_owner_set(t, 1, 2, 0, NULL);
            srm_ds_txn_commit(t);
            double flip = now_s() - t0;
            srm_ds_txn_begin(ds.env, 0, &t);
            srm_ds_owner_set(t, 1, 1, 0, NULL);
            srm_ds_txn_commit(t);
            printf("ownership flip of a partition of %d users: %.1f us\n", N_BATCHED, flip * 1e6);
            printf("BENCH ds_owner_flip_us %.1f us\n", flip * 1e6);

            /* snapshot of N_BATCHED records streamed in 64 KiB chunks while a writer runs */
            struct snap_writer w = {ds.env, 0, 0, 0};
            pthread_t th;
            struct srm_ds_snap *s;
            static uint8_t chunk[SRM_DS_SNAP_CHUNK_MIN];
            size_t len, bytes = 0;
            int rc;

            pthread_create(&th, NULL, snap_writer_main, &w);
            t0 = now_s();
            if ((rc = srm_ds_snap_open(ds.env, 1, &s)) < 0)
                die("snap open", rc);
            while ((rc = srm_ds_snap_next(s, chunk, sizeof(chunk), &len)) == 1)
                bytes += len;
            srm_ds_snap_close(s);
            double snap = now_s() - t0;
            w.stop = 1;
            pthread_join(th, NULL);
            printf("snapshot: %d records, %.1f MB in %.3f s while a writer made %u commits "
                   "(longest commit %.2f ms)\n",
                   N_BATCHED, bytes / 1e6, snap, w.commits, w.max_commit_s * 1e3);
            printf("BENCH ds_snapshot_records_per_s %.0f records/s\n", N_BATCHED / snap);
            printf("BENCH ds_snapshot_writer_max_commit_ms %.2f ms\n", w.max_commit_s * 1e3);
        }
        raw_close(&raw);
        ds_close(&ds);
    }
    /* ratios: median of the per-round ratios (each round measures both sides side by side) */
    printf("BENCH raw_put_single %.0f ops/s\n", median(rs));
    printf("BENCH ds_put_single %.0f ops/s\n", median(ds1));
    printf("BENCH ds_single_write_ratio %.3f ratio\n", median(ratio_s));
    printf("BENCH raw_put_batched %.0f ops/s\n", median(rb));
    printf("BENCH ds_put_batched %.0f ops/s\n", median(db));
    printf("BENCH ds_batched_write_ratio %.3f ratio\n", median(ratio_b));
    printf("BENCH raw_get %.0f ops/s\n", median(rg));
    printf("BENCH ds_get %.0f ops/s\n", median(dg));
    printf("BENCH ds_read_ratio %.3f ratio\n", median(ratio_g));
    printf("total %.1f s\n", now_s() - run0);
    free(order);
    return 0;
}
