/*
 * The ceiling for replicated writes: raw LMDB puts of the same records (a presence-sized
 * key and ~200-byte value) in batches, MDB_NOSYNC, as the receiving side would store them
 * without any log, digest or protocol.
 *   bench-repl-lmdb DIR N BATCH     prints "LMDB <n> <ms> <puts/s>"
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench-repl-lmdb DIR N BATCH\n");
        return 2;
    }
    const char *dir = argv[1];
    long n = atol(argv[2]), batch = atol(argv[3]);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mkdir(dir, 0755);
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 4ull << 30) ||
        mdb_env_open(env, dir, MDB_NOSYNC, 0644)) {
        fprintf(stderr, "bench-repl-lmdb: cannot open %s\n", dir);
        return 1;
    }
    char key[64], val[200];
    memset(val, 's', sizeof(val));
    double t0 = now_s();
    for (long i = 0; i < n;) {
        if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, NULL, 0, &dbi))
            return 1;
        for (long k = 0; k < batch && i < n; k++, i++) {
            int kl = snprintf(key, sizeof(key), "w12345-%ld", i) + 1;
            memcpy(key + kl, "r", 2);
            MDB_val mk = {(size_t)kl + 2, key}, mv = {sizeof(val), val};
            if (mdb_put(txn, dbi, &mk, &mv, 0))
                return 1;
        }
        if (mdb_txn_commit(txn))
            return 1;
    }
    double ms = (now_s() - t0) * 1e3;
    printf("LMDB %ld %.1f %.0f\n", n, ms, (double)n / (ms / 1e3));
    mdb_env_close(env);
    return 0;
}
