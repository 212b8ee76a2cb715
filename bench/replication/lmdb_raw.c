/*
 * The ceiling for replicated writes: raw LMDB puts of the records the receiving side
 * stores, and nothing else (no log, digest, fencing or protocol).
 *
 *   bench-repl-lmdb DIR N BATCH [random] [VALUE_BYTES]
 *       prints "LMDB <n> <ms> <puts/s> <cpu s>" (cpu: user + system of the timed part)
 *
 * The records are byte for byte what a replicated write of repl-node leaves in the
 * receiver's `rec` database (tests/replication/workload.h: the same users in the same order,
 * the datastore's key layout and its encoded value with head and stamp), built before the
 * clock starts, as the receiver gets them ready-made from the wire. The environment is
 * opened like the receiver's datastore: MDB_NOSYNC | MDB_NOTLS, a named database, the same
 * initial map size; BATCH puts per transaction.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h" /* datastore: key layout, encoders */
#include "workload.h" /* tests/replication: the records */

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench-repl-lmdb: %s: %s\n", what, rc > 0 ? mdb_strerror(rc) : "failed");
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench-repl-lmdb DIR N BATCH [random] [VALUE_BYTES]\n");
        return 2;
    }
    const char *dir = argv[1];
    long n = atol(argv[2]), batch = atol(argv[3]);
    bool random = argc > 4 && strcmp(argv[4], "random") == 0;
    unsigned vbytes = argc > 5 ? (unsigned)atoi(argv[5]) : 150;
    static char status[SRM_DS_STATUS_MAX + 1];
    if (n <= 0 || batch <= 0 || vbytes > SRM_DS_STATUS_MAX)
        return 2;
    memset(status, 's', vbytes);

    /* the records, as repl-node --write N [--random] writes them, with prefix "w" */
    struct rec {
        uint32_t klen, vlen;
        uint8_t *k, *v;
    } *recs = calloc((size_t)n, sizeof(*recs));
    uint8_t *body = NULL;
    size_t cap = 0;
    const struct srm_ds_stamp st = {.epoch = 1, .hlc = 1ull << 40, .origin = 1};
    for (long i = 0; i < n; i++) {
        char user[64];
        uint8_t key[DS_REC_KEY_MAX];
        size_t klen, blen;
        wl_user(user, sizeof(user), "w", wl_index((uint64_t)i, (uint64_t)n, random));
        struct srm_ds_presence p = wl_presence(user, status);
        srm__ds_rec_key(key, 1, SRM_DS_PRESENCE);
        if (srm__ds_presence_encode(&p, key + DS_REC_KEY0, &klen, &body, &cap, &blen) < 0)
            die("encode", 0);
        recs[i].klen = (uint32_t)(DS_REC_KEY0 + klen);
        recs[i].vlen = (uint32_t)(DS_ENVELOPE + blen);
        recs[i].k = malloc(recs[i].klen + recs[i].vlen);
        if (!recs[i].k)
            die("malloc", 0);
        recs[i].v = recs[i].k + recs[i].klen;
        memcpy(recs[i].k, key, recs[i].klen);
        srm__ds_value_build(recs[i].v, &st, 0, body, blen);
    }
    free(body);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;
    mkdir(dir, 0755);
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
        (rc = mdb_env_set_mapsize(env, 256ull << 20)) ||
        (rc = mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0640)))
        die("open", rc);
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "rec", MDB_CREATE, &dbi)) || (rc = mdb_txn_commit(txn)))
        die("dbi", rc);
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n;) {
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
            die("begin", rc);
        for (long k = 0; k < batch && i < n; k++, i++) {
            MDB_val mk = {recs[i].klen, recs[i].k}, mv = {recs[i].vlen, recs[i].v};
            if ((rc = mdb_put(txn, dbi, &mk, &mv, 0))) {
                if (rc != MDB_MAP_FULL)
                    die("put", rc);
                /* grow like the datastore does: abort, double, retry the batch */
                mdb_txn_abort(txn);
                MDB_envinfo info;
                mdb_env_info(env, &info);
                if ((rc = mdb_env_set_mapsize(env, info.me_mapsize * 2)))
                    die("grow", rc);
                i -= k;
                goto next;
            }
        }
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
    next:;
    }
    double ms = (now_s() - t0) * 1e3, cpu = cpu_s() - c0;
    printf("LMDB %ld %.1f %.0f %.3f\n", n, ms, (double)n / (ms / 1e3), cpu);
    mdb_env_close(env);
    for (long i = 0; i < n; i++)
        free(recs[i].k);
    free(recs);
    return 0;
}
