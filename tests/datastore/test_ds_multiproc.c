/* Several processes on one environment at once: two writers and a subscribed reader (no lost
 * or torn records; the reader's notifications match the writers' commits), and sync waiters
 * in several processes released by one acknowledgement (group commit). */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "ds_test.h"

#define PART       1
#define PER_WRITER 3000
#define EXT_LEN    160

static char *dir;

static struct srm_ds_env *child_open(void)
{
    struct srm_ds_open_opts o = {
        .node_id = 1, .sync = SRM_DS_SYNC_NONE, .map_size = 64 << 20, .map_size_max = 512 << 20};
    struct srm_ds_env *env;

    if (srm_ds_env_open(dir, &o, &env) < 0)
        _exit(90);
    return env;
}

/* Content of record (w, n): a status and an extension blob derived from both. */
static void fill(unsigned w, unsigned n, char *status, size_t cap, uint8_t *ext)
{
    snprintf(status, cap, "w%u n%u", w, n);
    for (unsigned i = 0; i < EXT_LEN; i++)
        ext[i] = (uint8_t)(w * 131 + n * 31 + i * 7);
}

static void writer(unsigned w)
{
    struct srm_ds_env *env = child_open();
    unsigned seed = w * 17 + 3;
    char path[512];
    FILE *seqs;

    snprintf(path, sizeof(path), "%s/commits.%u", dir, w);
    seqs = fopen(path, "w");
    if (!seqs)
        _exit(91);
    for (unsigned n = 0; n < PER_WRITER;) {
        unsigned batch = 1 + rand_r(&seed) % 8;
        struct srm_ds_txn *t;
        uint64_t seq;
        int rc;

        if (srm_ds_txn_begin(env, 0, &t) < 0)
            _exit(92);
        for (unsigned i = 0; i < batch && n + i < PER_WRITER; i++) {
            char user[32], status[64];
            uint8_t ext[EXT_LEN];

            snprintf(user, sizeof(user), "w%u-%u", w, n + i);
            fill(w, n + i, status, sizeof(status), ext);
            struct srm_ds_presence p = {.user = user,
                                        .resource = "res",
                                        .availability = SRM_DS_AVAIL_CHAT,
                                        .status = status,
                                        .ext = ext,
                                        .ext_len = EXT_LEN};
            if (srm_ds_presence_put(t, PART, 1, &p) < 0)
                _exit(93);
        }
        if (srm_ds_txn_seq(t, PART, &seq) < 0)
            _exit(94);
        rc = srm_ds_txn_commit(t);
        if (rc == -EAGAIN)
            continue;
        if (rc < 0)
            _exit(95);
        fprintf(seqs, "%llu\n", (unsigned long long)seq);
        n += batch;
    }
    fclose(seqs);
    srm_ds_env_close(env);
    _exit(0);
}

struct reader_state {
    uint64_t next;    /* next log position to read */
    unsigned seen[2]; /* records seen per writer */
    uint8_t *got[2];  /* which n were seen */
    int bad;
};

static int reader_entry(const struct srm_ds_entry *e, void *data)
{
    struct reader_state *rs = data;
    struct srm_ds_presence p;
    unsigned w, n;
    char status[64];
    uint8_t ext[EXT_LEN];

    if (e->seq != rs->next) {
        fprintf(stderr, "reader: gap: got seq %llu, expected %llu\n", (unsigned long long)e->seq,
                (unsigned long long)rs->next);
        rs->bad = 1;
        return -1;
    }
    rs->next++;
    if (e->kind != SRM_DS_PRESENCE || (e->flags & SRM_DS_ENTRY_TOMBSTONE) ||
        srm_ds_presence_decode(e->key, e->key_len, e->val, e->val_len, &p) < 0 ||
        sscanf(p.user, "w%u-%u", &w, &n) != 2 || w > 1 || n >= PER_WRITER) {
        fprintf(stderr, "reader: undecodable entry at %llu\n", (unsigned long long)e->seq);
        rs->bad = 1;
        return -1;
    }
    fill(w, n, status, sizeof(status), ext);
    if (strcmp(p.status, status) || p.ext_len != EXT_LEN || memcmp(p.ext, ext, EXT_LEN) ||
        strcmp(p.resource, "res")) {
        fprintf(stderr, "reader: torn record %s\n", p.user);
        rs->bad = 1;
        return -1;
    }
    if (rs->got[w][n]++) {
        fprintf(stderr, "reader: %s twice\n", p.user);
        rs->bad = 1;
        return -1;
    }
    rs->seen[w]++;
    return 0;
}

static void reader(int ready_fd)
{
    struct srm_ds_env *env = child_open();
    struct srm_ds_sub *sub;
    struct reader_state rs = {.next = 1};
    char path[512];
    FILE *notes;
    int overflow = 0;
    struct timespec t0, now;

    rs.got[0] = calloc(PER_WRITER, 1);
    rs.got[1] = calloc(PER_WRITER, 1);
    snprintf(path, sizeof(path), "%s/notified", dir);
    notes = fopen(path, "w");
    if (!notes || srm_ds_sub_open(env, &sub) < 0)
        _exit(80);
    if (write(ready_fd, "r", 1) != 1)
        _exit(81);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (rs.seen[0] + rs.seen[1] < 2 * PER_WRITER) {
        struct pollfd pf = {srm_ds_sub_fd(sub), POLLIN, 0};
        struct srm_ds_event ev[32];
        size_t n;
        uint64_t target = 0;

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 60) {
            fprintf(stderr, "reader: timed out with %u + %u records\n", rs.seen[0], rs.seen[1]);
            _exit(82);
        }
        if (poll(&pf, 1, 500) <= 0)
            continue; /* no event: nothing new (checked again at the next event) */
        if (srm_ds_sub_read(sub, ev, 32, &n) < 0)
            _exit(83);
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == SRM_DS_EV_OVERFLOW) {
                overflow = 1;
                target = UINT64_MAX;
            } else if (ev[i].kind == SRM_DS_EV_COMMIT && ev[i].part == PART) {
                fprintf(notes, "%llu\n", (unsigned long long)ev[i].seq);
                if (ev[i].seq > target)
                    target = ev[i].seq;
            }
        }
        /* read the log from our position up to what we were told (or everything) */
        while (target != 0 && (target == UINT64_MAX || rs.next <= target)) {
            struct srm_ds_txn *t;
            uint64_t next, before = rs.next;
            int rc;

            if (srm_ds_txn_begin(env, SRM_DS_TXN_RDONLY, &t) < 0)
                _exit(84);
            rc = srm_ds_log_read(t, PART, rs.next, 0, 256, 0, reader_entry, &rs, &next, NULL);
            srm_ds_txn_abort(t);
            if (rc < 0 || rs.bad || next != rs.next)
                _exit(85); /* nothing is superseded here: every entry is delivered */
            if (next == before)
                break; /* at the end */
        }
    }
    fprintf(notes, "overflow %d\n", overflow);
    fclose(notes);
    srm_ds_sub_close(sub);
    srm_ds_env_close(env);
    _exit(0);
}

static int wait_child(pid_t pid, int secs)
{
    int status;

    for (int i = 0; i < secs * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static int read_seqs(const char *name, uint64_t *out, int cap, int *overflow)
{
    char path[512], line[64];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        if (overflow && sscanf(line, "overflow %d", overflow) == 1)
            continue;
        assert_true(n < cap);
        out[n++] = strtoull(line, NULL, 10);
    }
    fclose(f);
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_two_writers_and_a_reader(void **state)
{
    (void)state;
    pid_t w[2], r;
    int ready[2];
    char c;

    dir = ds_test_mkdtemp();
    {
        struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
        ds_test_own(env, PART, 1, 1);
        srm_ds_env_close(env);
    }
    assert_int_equal(pipe(ready), 0);
    r = fork();
    if (r == 0) {
        close(ready[0]);
        reader(ready[1]);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1); /* subscribed before the first write */
    close(ready[0]);
    for (unsigned i = 0; i < 2; i++) {
        w[i] = fork();
        if (w[i] == 0)
            writer(i);
    }
    assert_int_equal(wait_child(w[0], 90), 0);
    assert_int_equal(wait_child(w[1], 90), 0);
    assert_int_equal(wait_child(r, 90), 0);

    /* the store: every record, consistent */
    struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
    struct srm_ds_txn *t = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    struct srm_ds_part_stats st;
    struct srm_ds_log_info li;
    assert_int_equal(srm_ds_part_stats(t, PART, &st), 0);
    assert_int_equal(st.records[SRM_DS_PRESENCE], 2 * PER_WRITER);
    assert_int_equal(srm_ds_verify(t, PART), 0);
    assert_int_equal(srm_ds_log_info(t, PART, &li), 0);
    assert_int_equal(li.last_seq, 2 * PER_WRITER);
    srm_ds_txn_abort(t);
    srm_ds_env_close(env);

    /* notifications: each one names a commit of a writer; without a reported loss, every
     * commit was notified */
    static uint64_t commits[2 * PER_WRITER], notified[2 * PER_WRITER + 8];
    int nc = read_seqs("commits.0", commits, 2 * PER_WRITER, NULL);
    nc += read_seqs("commits.1", commits + nc, 2 * PER_WRITER - nc, NULL);
    int overflow = -1;
    int nn = read_seqs("notified", notified, 2 * PER_WRITER + 8, &overflow);
    assert_true(overflow == 0 || overflow == 1);
    qsort(commits, (size_t)nc, sizeof(uint64_t), cmp_u64);
    qsort(notified, (size_t)nn, sizeof(uint64_t), cmp_u64);
    assert_int_equal(commits[nc - 1], 2 * PER_WRITER);
    for (int i = 0; i < nn; i++)
        assert_non_null(bsearch(&notified[i], commits, (size_t)nc, sizeof(uint64_t), cmp_u64));
    for (int i = 1; i < nn; i++)
        assert_true(notified[i] != notified[i - 1]);
    if (!overflow)
        assert_int_equal(nn, nc);
    print_message("%d commits, %d notifications, overflow %d\n", nc, nn, overflow);
    ds_test_rmdir(dir);
}

/* Lock step: a writer commits, then waits for a token the reader sends for each COMMIT
 * event. At most two datagrams are ever queued, so nothing may be dropped: the reader must
 * be told of every commit, exactly once, with its position. */
#define LOCKSTEP 200

static void lockstep_writer(unsigned w, int token_fd, int report_fd)
{
    struct srm_ds_env *env = child_open();

    for (unsigned n = 0; n < LOCKSTEP; n++) {
        struct srm_ds_txn *t;
        uint64_t seq;
        char user[32], c;

        snprintf(user, sizeof(user), "l%u-%u", w, n);
        struct srm_ds_presence p = {.user = user, .resource = "r", .status = "s"};
        if (srm_ds_txn_begin(env, 0, &t) < 0 || srm_ds_presence_put(t, PART, 1, &p) < 0 ||
            srm_ds_txn_seq(t, PART, &seq) < 0 || srm_ds_txn_commit(t) < 0)
            _exit(60);
        if (write(report_fd, &seq, sizeof(seq)) != sizeof(seq) || read(token_fd, &c, 1) != 1)
            _exit(61);
    }
    srm_ds_env_close(env);
    _exit(0);
}

static void lockstep_reader(int ready_fd, int token_fd, int report_fd)
{
    struct srm_ds_env *env = child_open();
    struct srm_ds_sub *sub;
    unsigned got = 0;
    struct timespec t0, now;

    if (srm_ds_sub_open(env, &sub) < 0 || write(ready_fd, "r", 1) != 1)
        _exit(50);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got < 2 * LOCKSTEP) {
        struct pollfd pf = {srm_ds_sub_fd(sub), POLLIN, 0};
        struct srm_ds_event ev[8];
        size_t n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 60)
            _exit(51);
        if (poll(&pf, 1, 500) <= 0)
            continue;
        if (srm_ds_sub_read(sub, ev, 8, &n) < 0)
            _exit(52);
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == SRM_DS_EV_OVERFLOW)
                _exit(53); /* cannot happen with two datagrams in flight */
            if (ev[i].kind != SRM_DS_EV_COMMIT || ev[i].part != PART)
                continue;
            if (write(report_fd, &ev[i].seq, sizeof(ev[i].seq)) != sizeof(ev[i].seq) ||
                write(token_fd, "t", 1) != 1)
                _exit(54);
            got++;
        }
    }
    srm_ds_sub_close(sub);
    srm_ds_env_close(env);
    _exit(0);
}

static void test_notifications_lockstep(void **state)
{
    (void)state;
    int ready[2], token[2], wrep[2], rrep[2];
    pid_t r, w[2];
    char c;
    static uint64_t commits[2 * LOCKSTEP], notified[2 * LOCKSTEP];

    dir = ds_test_mkdtemp();
    {
        struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
        ds_test_own(env, PART, 1, 1);
        srm_ds_env_close(env);
    }
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(token), 0);
    assert_int_equal(pipe(wrep), 0);
    assert_int_equal(pipe(rrep), 0);
    r = fork();
    if (r == 0)
        lockstep_reader(ready[1], token[1], rrep[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    for (unsigned i = 0; i < 2; i++) {
        w[i] = fork();
        if (w[i] == 0)
            lockstep_writer(i, token[0], wrep[1]);
    }
    close(wrep[1]);
    close(rrep[1]);
    for (int i = 0; i < 2 * LOCKSTEP; i++) {
        assert_int_equal(read(wrep[0], &commits[i], sizeof(uint64_t)), sizeof(uint64_t));
        assert_int_equal(read(rrep[0], &notified[i], sizeof(uint64_t)), sizeof(uint64_t));
    }
    assert_int_equal(wait_child(w[0], 90), 0);
    assert_int_equal(wait_child(w[1], 90), 0);
    assert_int_equal(wait_child(r, 90), 0);
    qsort(commits, 2 * LOCKSTEP, sizeof(uint64_t), cmp_u64);
    qsort(notified, 2 * LOCKSTEP, sizeof(uint64_t), cmp_u64);
    assert_memory_equal(commits, notified, sizeof(commits));
    for (int i = 0; i < 2 * LOCKSTEP; i++)
        assert_int_equal(commits[i], (uint64_t)i + 1);
    close(ready[0]);
    close(ready[1]);
    close(token[0]);
    close(token[1]);
    close(wrep[0]);
    close(rrep[0]);
    ds_test_rmdir(dir);
}

/* K processes commit and wait for replication; one acknowledgement releases them all. */
static void test_sync_group_commit(void **state)
{
    (void)state;
    enum { K = 4 };
    pid_t pids[K];
    int p[2];
    uint64_t max = 0;

    dir = ds_test_mkdtemp();
    {
        struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
        ds_test_own(env, PART, 1, 1);
        srm_ds_env_close(env);
    }
    assert_int_equal(pipe(p), 0);
    for (int i = 0; i < K; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            struct srm_ds_env *env = child_open();
            struct srm_ds_txn *t;
            uint64_t seq;
            char user[16];

            close(p[0]);
            snprintf(user, sizeof(user), "sync%d", i);
            struct srm_ds_presence pr = {.user = user, .resource = "r", .status = "s"};
            if (srm_ds_txn_begin(env, 0, &t) < 0 || srm_ds_presence_put(t, PART, 1, &pr) < 0 ||
                srm_ds_txn_seq(t, PART, &seq) < 0 || srm_ds_txn_commit(t) < 0)
                _exit(70);
            if (write(p[1], &seq, sizeof(seq)) != sizeof(seq))
                _exit(71);
            /* waits until the "peer" acknowledged; 60 s is only a safety net */
            int rc = srm_ds_sync_wait(env, PART, seq, 60000);
            srm_ds_env_close(env);
            _exit(rc == 0 ? 0 : 72);
        }
    }
    close(p[1]);
    for (int i = 0; i < K; i++) {
        uint64_t s;
        assert_int_equal(read(p[0], &s, sizeof(s)), sizeof(s));
        if (s > max)
            max = s;
    }
    close(p[0]);
    usleep(50000); /* let them reach the wait; correctness does not depend on it */
    struct srm_ds_env *env = ds_test_open(dir, 1, NULL);
    assert_int_equal(srm_ds_sync_ack(env, PART, max), 0); /* one round trip for all */
    for (int i = 0; i < K; i++)
        assert_int_equal(wait_child(pids[i], 60), 0);
    srm_ds_env_close(env);
    ds_test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_writers_and_a_reader),
        cmocka_unit_test(test_notifications_lockstep),
        cmocka_unit_test(test_sync_group_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
