/* A full disk: a small tmpfs mounted in a private mount namespace of this test process
 * (needs root; skipped otherwise). Writes fail cleanly with -ENOSPC, committed data stays
 * readable and consistent, and writes work again once space is back. */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "ds_test.h"

static int write_batch(struct srm_ds_env *env, int b)
{
    static char status[1000];
    struct srm_ds_txn *t;
    char user[32];
    int rc = 0;

    memset(status, 'x', sizeof(status) - 1);
    if ((rc = srm_ds_txn_begin(env, 0, &t)) < 0)
        return rc;
    for (int i = 0; i < 10 && rc == 0; i++) {
        snprintf(user, sizeof(user), "b%d-%d", b, i);
        struct srm_ds_presence p = {.user = user, .resource = "r", .status = status};
        rc = srm_ds_presence_put(t, 1, 1, &p);
    }
    if (rc < 0) {
        srm_ds_txn_abort(t);
        return rc;
    }
    return srm_ds_txn_commit(t);
}

static void test_disk_full(void **state)
{
    (void)state;
    char *mnt, envdir[512], filler[512];
    struct srm_ds_open_opts o = {
        .node_id = 1, .sync = SRM_DS_SYNC_DURABLE, .map_size = 32 << 20, .map_size_max = 32 << 20};
    struct srm_ds_env *env;
    static char chunk[65536];
    int b, rc = 0, committed = 0, fd;

    if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        skip(); /* needs root and mount namespaces */
    mnt = ds_test_mkdtemp();
    assert_int_equal(mount("srm-ds-test", mnt, "tmpfs", 0, "size=4m"), 0);
    snprintf(envdir, sizeof(envdir), "%s/env", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);

    assert_int_equal(srm_ds_env_open(envdir, &o, &env), 0);
    ds_test_own(env, 1, 1, 1);
    for (b = 0; b < 20; b++) {
        assert_int_equal(write_batch(env, b), 0);
        committed++;
    }
    /* fill the disk */
    fd = open(filler, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    memset(chunk, 'f', sizeof(chunk));
    while (write(fd, chunk, sizeof(chunk)) > 0)
        ;
    close(fd);
    /* writes fail cleanly once LMDB needs new space */
    for (; b < 2000; b++) {
        rc = write_batch(env, b);
        if (rc < 0)
            break;
        committed++;
    }
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(write_batch(env, b), -ENOSPC); /* still full: still clean */
    /* everything committed is there, consistent */
    struct srm_ds_txn *t = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    struct srm_ds_part_stats st;
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_PRESENCE], (uint64_t)committed * 10);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    /* space is back: the same write succeeds */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(write_batch(env, b), 0);
    committed++;
    srm_ds_env_close(env);
    /* and a fresh open sees all of it */
    assert_int_equal(srm_ds_env_open(envdir, &o, &env), 0);
    t = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_PRESENCE], (uint64_t)committed * 10);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    srm_ds_env_close(env);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    ds_test_rmdir(mnt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
