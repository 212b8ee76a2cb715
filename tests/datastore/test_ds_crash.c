/* The crash loop: writer processes are SIGKILLed at random moments, 200 times; after that
 * every write a writer reported committed is present and every digest, counter and index
 * agrees with the records (srm_ds_verify). Writers report each committed position over a
 * pipe right after srm_ds_txn_commit returns. */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "ds_test.h"

#define ITERATIONS 200
#define PART_OWN   1
#define PART_PEER  2

struct report {
    uint32_t iter;
    uint32_t n;
};

static char *dir;

static void status_of(char *buf, size_t cap, uint32_t iter, uint32_t n)
{
    snprintf(buf, cap, "committed %u/%u", iter, n);
}

/* The child: writes until killed. Never returns. */
static void writer(uint32_t iter, int fd)
{
    struct srm_ds_open_opts o = {.node_id = 1,
                                 .sync = iter % 2 ? SRM_DS_SYNC_NONE : SRM_DS_SYNC_DURABLE,
                                 .map_size = 16 << 20,
                                 .map_size_max = 256 << 20};
    struct srm_ds_env *env;
    unsigned seed = iter * 7919u + 1;

    if (srm_ds_env_open(dir, &o, &env) < 0)
        _exit(2);
    for (uint32_t n = 0; n < 1000000; n++) {
        struct srm_ds_txn *t;
        char user[64], status[64], sess[32];
        int rc;

        if (srm_ds_txn_begin(env, 0, &t) < 0)
            _exit(3);
        snprintf(user, sizeof(user), "i%u-%u", iter, n);
        status_of(status, sizeof(status), iter, n);
        struct srm_ds_presence p = {.user = user,
                                    .resource = "r",
                                    .availability = SRM_DS_AVAIL_AVAILABLE,
                                    .status = status,
                                    .updated_ms = n};
        rc = srm_ds_presence_put(t, PART_OWN, 1, &p);
        /* some churn on shared keys: sessions come and go, registrations refresh */
        snprintf(sess, sizeof(sess), "s%u", rand_r(&seed) % 50);
        if (rc == 0 && rand_r(&seed) % 3 == 0) {
            struct srm_ds_login l = {
                .user = "shared", .session_id = sess, .node = 1, .active = rand_r(&seed) % 2};
            rc = srm_ds_login_put(t, PART_OWN, 1, &l);
        } else if (rc == 0 && rand_r(&seed) % 3 == 0) {
            rc = srm_ds_login_del(t, PART_OWN, 1, "shared", sess);
            if (rc == -ENOENT)
                rc = 0;
        }
        if (rc == 0 && rand_r(&seed) % 4 == 0) {
            struct srm_ds_sip_reg reg = {.aor = sess, .n_contacts = 1};
            reg.contacts[0] = (struct srm_ds_sip_contact){
                .uri = "sip:x@192.0.2.1", .expires_ms = n + 5, .call_id = "c", .cseq = n};
            rc = srm_ds_sip_put(t, PART_OWN, 1, &reg, n);
        }
        if (rc == 0 && rand_r(&seed) % 5 == 0) {
            /* entries arriving from the peer for its partition */
            char key[64];
            uint8_t body[32] = {1, 0, 0};
            int kl = snprintf(key, sizeof(key), "peer%u", rand_r(&seed) % 20);
            struct srm_ds_entry e = {.seq = 0,
                                     .kind = SRM_DS_PRESENCE,
                                     .stamp = {1, ((uint64_t)iter << 24) | n, 2},
                                     .key = key,
                                     .key_len = (size_t)kl + 3,
                                     .val = body,
                                     .val_len = 16}; /* presence header, empty status */
            key[kl + 1] = 'x';
            key[kl + 2] = 0;
            rc = srm_ds_log_apply(t, PART_PEER, 2, 7, &e, 1, 0, NULL);
        }
        if (rc == 0 && n % 50 == 49) {
            struct srm_ds_log_info li;
            rc = srm_ds_log_info(t, PART_OWN, &li);
            if (rc == 0)
                rc = srm_ds_log_trim(t, PART_OWN, li.last_seq - 20);
        }
        if (rc == 0)
            rc = srm_ds_txn_commit(t);
        else
            srm_ds_txn_abort(t);
        if (rc == -EAGAIN) { /* the map grows: the same write again */
            n--;
            continue;
        }
        if (rc < 0)
            _exit(4);
        struct report r = {iter, n};
        if (write(fd, &r, sizeof(r)) != sizeof(r))
            _exit(5);
    }
    _exit(0);
}

static void check_all(uint32_t upto, const int32_t *last)
{
    struct srm_ds_open_opts o = {.node_id = 1, .sync = SRM_DS_SYNC_NONE};
    struct srm_ds_env *env;
    struct srm_ds_txn *t;

    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    t = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    for (uint32_t i = 0; i < upto; i++) {
        for (int32_t n = 0; n <= last[i]; n++) {
            char user[64], status[64];
            struct srm_ds_presence p;

            snprintf(user, sizeof(user), "i%u-%d", i, n);
            status_of(status, sizeof(status), i, (uint32_t)n);
            if (srm_ds_presence_get(t, PART_OWN, user, "r", &p) != 0)
                fail_msg("committed write %s lost", user);
            assert_string_equal(p.status, status);
        }
    }
    assert_int_equal(srm_ds_verify(t, PART_OWN), 0);
    int rc = srm_ds_verify(t, PART_PEER);
    assert_true(rc == 0 || rc == SRM_ENOTFOUND);
    srm_ds_txn_abort(t);
    srm_ds_env_close(env);
}

static void test_crash_loop(void **state)
{
    (void)state;
    int32_t last[ITERATIONS];
    unsigned seed = (unsigned)time(NULL);
    int kills = 0;

    dir = ds_test_mkdtemp();
    {
        struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
        ds_test_own(env, PART_OWN, 1, 1);
        srm_ds_env_close(env);
    }
    for (uint32_t iter = 0; iter < ITERATIONS; iter++) {
        int p[2], status;
        pid_t pid;
        long delay_us = rand_r(&seed) % 15000;
        struct timespec start, now;

        last[iter] = -1;
        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            writer(iter, p[1]);
        }
        close(p[1]);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            long el;
            struct pollfd pf = {p[0], POLLIN, 0};
            struct report r;

            clock_gettime(CLOCK_MONOTONIC, &now);
            el = (now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000;
            if (el >= delay_us)
                break;
            if (poll(&pf, 1, (int)((delay_us - el) / 1000) + 1) > 0) {
                if (read(p[0], &r, sizeof(r)) == sizeof(r))
                    last[iter] = (int32_t)r.n;
                else
                    break;
            }
        }
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
            kills++;
        else
            fail_msg("writer %u exited with %d before the kill", iter, WEXITSTATUS(status));
        /* what it reported before dying */
        struct report r;
        while (read(p[0], &r, sizeof(r)) == sizeof(r))
            last[iter] = (int32_t)r.n;
        close(p[0]);
        if (iter % 50 == 49)
            check_all(iter + 1, last);
    }
    assert_true(kills >= ITERATIONS);
    check_all(ITERATIONS, last);
    int32_t total = 0;
    for (int i = 0; i < ITERATIONS; i++)
        total += last[i] + 1;
    print_message("crash loop: %d kills, %d committed writes checked\n", kills, total);
    ds_test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
