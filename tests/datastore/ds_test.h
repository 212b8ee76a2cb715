/* Helpers shared by the datastore tests: temporary environments and a fake clock. */
#ifndef DS_TEST_H
#define DS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srm_ds.h"

static inline int ds_test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates a fresh directory under /tmp; the caller frees and removes it (ds_test_rmdir). */
static inline char *ds_test_mkdtemp(void)
{
    char *d = strdup("/tmp/srm-ds-test-XXXXXX");

    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static inline void ds_test_rmdir(char *dir)
{
    if (!dir)
        return;
    nftw(dir, ds_test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* A settable clock (ms since the epoch). */
static inline uint64_t ds_test_clock(void *data)
{
    return *(uint64_t *)data;
}

static inline struct srm_ds_env *ds_test_open(const char *dir, uint32_t node, uint64_t *clock)
{
    struct srm_ds_open_opts o = {
        .node_id = node,
        .sync = SRM_DS_SYNC_NONE,
        .map_size = 32ull << 20,
        .clock_cb = clock ? ds_test_clock : NULL,
        .clock_data = clock,
    };
    struct srm_ds_env *env = NULL;

    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    return env;
}

static inline struct srm_ds_txn *ds_test_begin(struct srm_ds_env *env, unsigned flags)
{
    struct srm_ds_txn *t = NULL;

    assert_int_equal(srm_ds_txn_begin(env, flags, &t), 0);
    return t;
}

static inline void ds_test_own(struct srm_ds_env *env, uint32_t part, uint32_t owner,
                               uint64_t epoch)
{
    struct srm_ds_txn *t = ds_test_begin(env, 0);

    assert_int_equal(srm_ds_owner_set(t, part, owner, epoch, NULL), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
}

static inline struct srm_ds_presence ds_test_presence(const char *user, const char *res,
                                                      const char *status)
{
    struct srm_ds_presence p = {
        .user = user,
        .resource = res,
        .availability = SRM_DS_AVAIL_AWAY,
        .priority = 5,
        .status = status,
        .updated_ms = 1700000000000ull,
    };
    return p;
}

#endif
