/*
 * repl-node: one replication endpoint in its own process, on its own datastore directory,
 * with optional writers. Used by the integration tests and the benchmark so that the two
 * ends of a link are separate processes.
 *
 *   repl-node --dir DIR --node ID --peer ID --peer-name NAME --ca F --cert F --key F
 *             [--cluster NAME] [--listen HOST:PORT] [--connect HOST:PORT]
 *             [--own PART:EPOCH]... [--recv PART:EPOCH]... [--log-max BYTES]
 *             [--degrade-ms MS] [--keepalive-ms MS]
 *             [--write N] [--batch B] [--rate W/S] [--clients C] [--sync] [--acked FILE]
 *             [--prefix P] [--value-bytes N] [--run-ms MS] [--random] [--wait-link]
 *             [--lag-dump FILE] [--batch-bytes N]
 *
 * Writers write presence records (workload.h) to the first --own partition. --write N: N
 * records (-1: until killed); --random: in random key order (a permutation of the N users),
 * else in index order; --wait-link: writers start once the replication link is up (the
 * benchmark: lags and rates then measure replication, not the link's setup).
 *
 * Without --clients, one thread writes batches of B records per transaction (at --rate
 * records/s if given) and samples the lag from each commit to the peer's acknowledgement of
 * it (--lag-dump FILE writes "<ms since start> <lag ms>" per sample).
 *
 * With --clients C, C writes are kept in flight, like C clients each waiting for its own
 * write before sending the next (redis-benchmark's model of C connections): a committer
 * thread puts the pending writes, up to half of C, into one transaction (group commit) and
 * commits again as soon as writes are pending, while an acker thread waits for
 * acknowledgements (two groups in flight: one replicated while the next is committed);
 * with --sync a write completes only when the peer has applied it (srm_ds_sync_wait: one
 * acknowledgement releases every write it covers), and the keys of acknowledged writes are
 * appended to --acked FILE. A write's latency runs from its submission to its completion.
 *
 * Standard output, one line each: "EVENT <name> part <p> err <code> <detail>",
 * "WRITES-DONE <n> <ms>", "DRAINED <n> <ms> <writes/s>", "LAG p50 <ms> p99 <ms> n <k>",
 * "CLIENTS <c> <n> <ms> <writes/s> p50_us <x> p99_us <y>", and at exit "RUSAGE <user s>
 * <system s>". SIGTERM closes cleanly.
 * SIGUSR1 prints "DIGEST <part> <count:lo:hi> x3" and "LOG <part> <first seq> <last seq>"
 * for each partition; SIGUSR2, on a node
 * receiving partitions, checks the keys appended to --acked FILE since the last SIGUSR2 and
 * prints "CHECKED <n> MISSING <m>" (and "MISSING <key>" for each absent one).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "srm_ds.h"
#include "srm_error.h"
#include "srm_repl.h"
#include "workload.h"

#define MAX_PARTS 8
#define LAG_MAX   (1u << 17)
#define BATCH_MAX 1024
#define LAT_MAX   (1u << 22)

struct partarg {
    uint32_t part;
    uint64_t epoch;
};

static struct {
    const char *dir, *cluster, *peer_name, *ca, *cert, *key, *acked, *prefix, *lag_dump;
    char listen_host[64], connect_host[64];
    uint16_t listen_port, connect_port;
    uint32_t node, peer;
    struct partarg own[MAX_PARTS], recv[MAX_PARTS];
    int nown, nrecv;
    uint64_t log_max;
    uint32_t degrade_ms, keepalive_ms, batch_bytes;
    long long write_n;
    unsigned batch, clients, value_bytes;
    double rate;
    bool sync, random, wait_link;
    long run_ms;
} o = {.cluster = "srm-test", .batch = 100, .value_bytes = 150};

static struct srm_ds_env *env;
static uv_loop_t loop;
static struct srm_repl *repl;
static uv_async_t wake;
static uv_signal_t sigterm, sigusr1, sigusr2;
static long check_off;
static uint64_t checked, missing;
static uv_timer_t poll_timer, run_timer;
static int acked_fd = -1;
static char status_text[SRM_DS_STATUS_MAX + 1];

/* writer results, handed to the loop thread */
static volatile int writes_done;
static uint64_t last_seq, n_written, t_start_ns, t_done_ns;
static bool drained_told;

/* --wait-link: writers start once the link is up */
static pthread_mutex_t link_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t link_cv = PTHREAD_COND_INITIALIZER;
static bool link_ready;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "repl-node %u: %s: %s\n", o.node, what, srm_strerror(rc));
    exit(2);
}

static void wait_for_link(void)
{
    if (!o.wait_link)
        return;
    pthread_mutex_lock(&link_mu);
    while (!link_ready)
        pthread_cond_wait(&link_cv, &link_mu);
    pthread_mutex_unlock(&link_mu);
}

/* The user of write number i of this run (workload.h). */
static void user_of(char *buf, size_t cap, const char *prefix, uint64_t i)
{
    uint64_t n = o.write_n > 0 ? (uint64_t)o.write_n : 0;
    wl_user(buf, cap, prefix, wl_index(i, n, o.random));
}

static int put_one(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *user)
{
    struct srm_ds_presence p = wl_presence(user, status_text);
    return srm_ds_presence_put(txn, part, epoch, &p);
}

/* Commits writes first..first+n-1; returns the partition's commit position. */
static int write_batch(const char *prefix, uint64_t first, unsigned n, uint64_t *ret_seq)
{
    for (int attempt = 0;; attempt++) {
        struct srm_ds_txn *txn;
        char user[128];
        int rc = srm_ds_txn_begin(env, 0, &txn);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < n && rc >= 0; i++) {
            user_of(user, sizeof(user), prefix, first + i);
            rc = put_one(txn, o.own[0].part, o.own[0].epoch, user);
        }
        uint64_t seq = 0;
        if (rc >= 0)
            rc = srm_ds_txn_seq(txn, o.own[0].part, &seq);
        if (rc < 0) {
            srm_ds_txn_abort(txn);
        } else {
            rc = srm_ds_txn_commit(txn);
        }
        if (rc == -EAGAIN && attempt < 8)
            continue;
        if (rc >= 0)
            *ret_seq = seq;
        return rc;
    }
}

/* ---- lag sampling (single writer) ---- */

struct sample {
    uint64_t seq, t;
};
static struct sample samples[LAG_MAX];
static volatile unsigned n_samples;
static double lags_ms[LAG_MAX];
static double lag_at_ms[LAG_MAX];
static unsigned n_lags;

static unsigned lag_next; /* first sample not acknowledged yet (loop thread) */
static uv_check_t lag_check;

/* After the loop's I/O callbacks, which process the peer's acknowledgements: every sampled
 * commit the acknowledged position now covers gets its lag. Taken on the loop that
 * received the ACK, so the lag does not include a waiting thread's wake-up. */
static void on_lag_check(uv_check_t *h)
{
    (void)h;
    unsigned n = __atomic_load_n(&n_samples, __ATOMIC_ACQUIRE);
    if (lag_next >= n)
        return;
    uint64_t acked = 0;
    srm_ds_sync_get(env, o.own[0].part, &acked, NULL);
    uint64_t now = now_ns();
    while (lag_next < n && samples[lag_next].seq <= acked) {
        const struct sample *sp = &samples[lag_next++];
        if (n_lags < LAG_MAX) {
            lag_at_ms[n_lags] = (double)(sp->t - t_start_ns) / 1e6;
            lags_ms[n_lags++] = (double)(now - sp->t) / 1e6;
        }
    }
}

static void *writer_thread(void *arg)
{
    (void)arg;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s", o.prefix);
    uint64_t i = 0;
    wait_for_link();
    t_start_ns = now_ns();
    while (o.write_n < 0 || i < (uint64_t)o.write_n) {
        unsigned n = o.batch;
        if (o.write_n >= 0 && i + n > (uint64_t)o.write_n)
            n = (unsigned)((uint64_t)o.write_n - i);
        if (o.rate > 0) {
            uint64_t due = t_start_ns + (uint64_t)((double)i / o.rate * 1e9);
            uint64_t now = now_ns();
            if (due > now)
                usleep((useconds_t)((due - now) / 1000));
        }
        uint64_t seq = 0;
        int rc = write_batch(prefix, i, n, &seq);
        if (rc < 0)
            die("write", rc);
        i += n;
        __atomic_store_n(&last_seq, seq, __ATOMIC_RELEASE);
        unsigned k = __atomic_load_n(&n_samples, __ATOMIC_RELAXED);
        if (k < LAG_MAX) {
            samples[k] = (struct sample){.seq = seq, .t = now_ns()};
            __atomic_store_n(&n_samples, k + 1, __ATOMIC_RELEASE);
        }
    }
    n_written = i;
    t_done_ns = now_ns();
    __atomic_store_n(&writes_done, 1, __ATOMIC_RELEASE);
    uv_async_send(&wake);
    return NULL;
}

/* ---- clients: C writes in flight, group commit ---- */

struct slot {
    uint64_t i;  /* write number (workload.h) */
    uint64_t t0; /* submitted */
};

/* Writes committed together; completed together once acknowledged. */
struct abatch {
    uint64_t seq;
    unsigned n;
    unsigned slot[BATCH_MAX];
};

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t free_cv = PTHREAD_COND_INITIALIZER; /* committer: slots free */
static pthread_cond_t ack_cv = PTHREAD_COND_INITIALIZER;  /* acker: batches committed */
static struct slot *slots;
static unsigned *free_slots, n_free;
static struct abatch **aq; /* committed, not yet completed, oldest first */
static unsigned aq_head, aq_len, aq_cap;
static uint64_t next_write, total_done;
static bool committer_done;
static volatile bool clients_stop;
static uint64_t *client_lat;
static uint64_t client_lat_n;

/* Completes the writes of b: acknowledged (acked file), latency, slots back to the free
 * list. Called without q_mu. */
static void complete(struct abatch *b, bool acked)
{
    uint64_t now = now_ns();
    if (acked && acked_fd >= 0) {
        char *buf = malloc((size_t)b->n * 80 + 1);
        size_t len = 0;
        for (unsigned k = 0; k < b->n; k++) {
            user_of(buf + len, 80, o.prefix, slots[b->slot[k]].i);
            len += strlen(buf + len);
            buf[len++] = '\n';
        }
        if (write(acked_fd, buf, len) != (ssize_t)len)
            die("acked file", -errno);
        free(buf);
    }
    pthread_mutex_lock(&q_mu);
    for (unsigned k = 0; k < b->n; k++) {
        struct slot *sl = &slots[b->slot[k]];
        if (client_lat_n < LAT_MAX)
            client_lat[client_lat_n++] = now - sl->t0;
        sl->t0 = now; /* the client sends its next write at once */
        free_slots[n_free++] = b->slot[k];
    }
    total_done += b->n;
    pthread_cond_signal(&free_cv);
    pthread_mutex_unlock(&q_mu);
}

static unsigned commit_max = BATCH_MAX; /* writes per transaction */

static void *committer_thread(void *arg)
{
    (void)arg;
    uint64_t limit = o.write_n < 0 ? UINT64_MAX : (uint64_t)o.write_n;
    char user[128];
    for (;;) {
        struct abatch *b = malloc(sizeof(*b));
        if (!b)
            die("committer", -ENOMEM);
        pthread_mutex_lock(&q_mu);
        while (n_free == 0 && !clients_stop)
            pthread_cond_wait(&free_cv, &q_mu);
        if (clients_stop || next_write >= limit) {
            committer_done = true;
            pthread_cond_broadcast(&ack_cv);
            pthread_mutex_unlock(&q_mu);
            free(b);
            return NULL;
        }
        b->n = 0;
        while (n_free > 0 && b->n < commit_max && next_write < limit) {
            unsigned id = free_slots[--n_free];
            slots[id].i = next_write++;
            b->slot[b->n++] = id;
        }
        pthread_mutex_unlock(&q_mu);

        struct srm_ds_txn *txn;
        int rc = srm_ds_txn_begin(env, 0, &txn);
        if (rc < 0)
            die("txn", rc);
        for (unsigned k = 0; k < b->n && rc >= 0; k++) {
            user_of(user, sizeof(user), o.prefix, slots[b->slot[k]].i);
            rc = put_one(txn, o.own[0].part, o.own[0].epoch, user);
        }
        if (rc >= 0)
            rc = srm_ds_txn_seq(txn, o.own[0].part, &b->seq);
        if (rc < 0) {
            srm_ds_txn_abort(txn);
            die("write", rc);
        }
        if ((rc = srm_ds_txn_commit(txn)) < 0)
            die("commit", rc);
        if (!o.sync) {
            complete(b, false);
            free(b);
            continue;
        }
        pthread_mutex_lock(&q_mu);
        aq[(aq_head + aq_len++) % aq_cap] = b;
        pthread_cond_signal(&ack_cv);
        pthread_mutex_unlock(&q_mu);
    }
}

/* Waits for the oldest committed batch's acknowledgement, then completes every batch the
 * acknowledged position covers. */
static void *acker_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_mu);
        while (aq_len == 0 && !committer_done)
            pthread_cond_wait(&ack_cv, &q_mu);
        if (aq_len == 0) {
            pthread_mutex_unlock(&q_mu);
            return NULL;
        }
        uint64_t seq = aq[aq_head]->seq;
        pthread_mutex_unlock(&q_mu);
        int rc = srm_ds_sync_wait(env, o.own[0].part, seq, 60000);
        uint64_t acked = 0;
        if (rc == 0)
            srm_ds_sync_get(env, o.own[0].part, &acked, NULL);
        for (;;) {
            pthread_mutex_lock(&q_mu);
            struct abatch *b = aq_len ? aq[aq_head] : NULL;
            /* a degraded or timed-out wait completes the oldest batch as not acknowledged:
             * it is committed locally only and never reported as replicated */
            if (!b || (rc == 0 && b->seq > acked) || (rc != 0 && b->seq != seq)) {
                pthread_mutex_unlock(&q_mu);
                break;
            }
            aq_head = (aq_head + 1) % aq_cap;
            aq_len--;
            pthread_mutex_unlock(&q_mu);
            complete(b, rc == 0);
            free(b);
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *clients_main(void *arg)
{
    (void)arg;
    pthread_t com, ack;
    slots = calloc(o.clients, sizeof(*slots));
    free_slots = calloc(o.clients, sizeof(*free_slots));
    aq_cap = o.clients + 1;
    aq = calloc(aq_cap, sizeof(*aq));
    client_lat = malloc(sizeof(uint64_t) * LAT_MAX);
    if (!slots || !free_slots || !aq || !client_lat)
        die("clients", -ENOMEM);
    /* A transaction takes at most half of the writes in flight: one group is replicated
     * while the next one is committed, so the writer and the peer work at the same time
     * (with every write in one transaction they took turns: 0.6x the throughput). */
    commit_max = o.clients / 2 ? o.clients / 2 : 1;
    if (commit_max > BATCH_MAX)
        commit_max = BATCH_MAX;
    wait_for_link();
    t_start_ns = now_ns();
    for (unsigned i = 0; i < o.clients; i++) {
        slots[i].t0 = t_start_ns;
        free_slots[n_free++] = o.clients - 1 - i;
    }
    pthread_create(&com, NULL, committer_thread, NULL);
    pthread_create(&ack, NULL, acker_thread, NULL);
    pthread_join(com, NULL);
    pthread_join(ack, NULL);
    t_done_ns = now_ns();
    uint64_t n = client_lat_n;
    qsort(client_lat, n, sizeof(uint64_t), cmp_u64);
    double ms = (double)(t_done_ns - t_start_ns) / 1e6;
    printf("CLIENTS %u %" PRIu64 " %.1f %.0f p50_us %.0f p99_us %.0f\n", o.clients, total_done, ms,
           (double)total_done / (ms / 1e3), n ? (double)client_lat[n / 2] / 1e3 : 0,
           n ? (double)client_lat[n * 99 / 100] / 1e3 : 0);
    fflush(stdout);
    n_written = total_done;
    __atomic_store_n(&writes_done, 2, __ATOMIC_RELEASE);
    uv_async_send(&wake);
    return NULL;
}

/* ---- loop side ---- */

static void on_event(struct srm_repl *r, const struct srm_repl_event *ev, void *data)
{
    (void)r;
    (void)data;
    printf("EVENT %s part %u err %s %s\n", srm_repl_event_name(ev->type), ev->part,
           ev->err ? srm_errname(ev->err) : "0", ev->detail ? ev->detail : "");
    fflush(stdout);
    if (ev->type == SRM_REPL_EV_READY) {
        pthread_mutex_lock(&link_mu);
        link_ready = true;
        pthread_cond_broadcast(&link_cv);
        pthread_mutex_unlock(&link_mu);
    }
}

static void closed_cb(void *data)
{
    (void)data;
    uv_close((uv_handle_t *)&wake, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigusr1, NULL);
    uv_close((uv_handle_t *)&sigusr2, NULL);
    uv_close((uv_handle_t *)&poll_timer, NULL);
    uv_close((uv_handle_t *)&run_timer, NULL);
    uv_close((uv_handle_t *)&lag_check, NULL);
}

static void shutdown_node(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    srm_repl_close(repl, closed_cb, NULL);
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    shutdown_node();
}

/* SIGUSR1: print the digest of every partition of this node. */
static void on_sigusr1(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    struct srm_ds_txn *txn;
    if (srm_ds_txn_begin(env, SRM_DS_TXN_RDONLY, &txn) < 0)
        return;
    struct partarg *lists[2] = {o.own, o.recv};
    int counts[2] = {o.nown, o.nrecv};
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < counts[l]; i++) {
            printf("DIGEST %u", lists[l][i].part);
            for (int k = 0; k < SRM_DS_KIND_MAX; k++) {
                struct srm_ds_digest d = {0};
                srm_ds_digest_get(txn, lists[l][i].part, (enum srm_ds_kind)k, &d);
                printf(" %" PRIu64 ":%" PRIx64 ":%" PRIx64, d.count, d.lo, d.hi);
            }
            printf("\n");
            struct srm_ds_log_info li = {0};
            srm_ds_log_info(txn, lists[l][i].part, &li);
            printf("LOG %u %" PRIu64 " %" PRIu64 "\n", lists[l][i].part, li.first_seq, li.last_seq);
        }
    }
    srm_ds_txn_abort(txn);
    fflush(stdout);
}

/* SIGUSR2: check that every key appended to the --acked file since the last check is in
 * this node's first received partition. */
static void on_sigusr2(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    FILE *f = o.acked ? fopen(o.acked, "r") : NULL;
    struct srm_ds_txn *txn;
    if (f && o.nrecv && srm_ds_txn_begin(env, SRM_DS_TXN_RDONLY, &txn) == 0) {
        char line[256];
        fseek(f, check_off, SEEK_SET);
        while (fgets(line, sizeof(line), f)) {
            size_t l = strlen(line);
            if (l == 0 || line[l - 1] != '\n')
                break;
            line[l - 1] = '\0';
            struct srm_ds_presence p;
            if (srm_ds_presence_get(txn, o.recv[0].part, line, "r", &p) != 0) {
                missing++;
                printf("MISSING %s\n", line);
            }
            checked++;
            check_off = ftell(f);
        }
        srm_ds_txn_abort(txn);
    }
    if (f)
        fclose(f);
    printf("CHECKED %" PRIu64 " MISSING %" PRIu64 "\n", checked, missing);
    fflush(stdout);
}

static void on_run_timer(uv_timer_t *t)
{
    (void)t;
    shutdown_node();
}

/* After the writers finished: report when the peer acknowledged everything. */
static void on_poll(uv_timer_t *t)
{
    (void)t;
    if (!writes_done || drained_told || o.nown == 0)
        return;
    uint64_t acked = 0;
    srm_ds_sync_get(env, o.own[0].part, &acked, NULL);
    uint64_t last = __atomic_load_n(&last_seq, __ATOMIC_ACQUIRE);
    if (writes_done == 2) {
        uint64_t h = 0;
        struct srm_repl_part_stats st;
        if (srm_repl_partition_stats(repl, o.own[0].part, &st) == 0)
            h = st.head_seq;
        last = h;
    }
    if (acked < last)
        return;
    drained_told = true;
    double ms = (double)(now_ns() - t_start_ns) / 1e6;
    printf("DRAINED %" PRIu64 " %.1f %.0f\n", n_written, ms, (double)n_written / (ms / 1e3));
    if (n_lags && o.lag_dump) {
        FILE *f = fopen(o.lag_dump, "w");
        for (unsigned i = 0; f && i < n_lags; i++)
            fprintf(f, "%.3f %.3f\n", lag_at_ms[i], lags_ms[i]);
        if (f)
            fclose(f);
    }
    if (n_lags) {
        qsort(lags_ms, n_lags, sizeof(double), cmp_d);
        printf("LAG p50 %.3f p99 %.3f n %u\n", lags_ms[n_lags / 2], lags_ms[n_lags * 99 / 100],
               n_lags);
    }
    fflush(stdout);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    if (writes_done == 1) {
        printf("WRITES-DONE %" PRIu64 " %.1f\n", n_written, (double)(t_done_ns - t_start_ns) / 1e6);
        fflush(stdout);
    }
    srm_repl_notify(repl);
}

/* "RUSAGE <user s> <system s>": the CPU this process used, all threads (the benchmark
 * compares it with the raw writer's). */
static void print_rusage(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("RUSAGE %.3f %.3f\n", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    fflush(stdout);
}

static void parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= cap) {
        fprintf(stderr, "repl-node: bad HOST:PORT '%s'\n", s);
        exit(2);
    }
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    *port = (uint16_t)atoi(c + 1);
}

static void parse_part(const char *s, struct partarg *p)
{
    char *end;
    p->part = (uint32_t)strtoul(s, &end, 10);
    p->epoch = *end == ':' ? strtoull(end + 1, NULL, 10) : 1;
}

static void own_partitions(void)
{
    struct srm_ds_txn *txn;
    int rc = srm_ds_txn_begin(env, 0, &txn);
    if (rc < 0)
        die("txn", rc);
    for (int i = 0; i < o.nown; i++) {
        struct srm_ds_owner ow = {0};
        rc = srm_ds_owner_get(txn, o.own[i].part, &ow);
        if (rc < 0 && rc != SRM_ENOTFOUND)
            die("owner_get", rc);
        if (ow.node != o.node || ow.epoch != o.own[i].epoch) {
            uint64_t e = o.own[i].epoch > ow.epoch ? o.own[i].epoch : 0;
            if ((rc = srm_ds_owner_set(txn, o.own[i].part, o.node, e, &o.own[i].epoch)) < 0)
                die("owner_set", rc);
        }
        if (o.log_max && (rc = srm_ds_log_set_max(txn, o.own[i].part, o.log_max)) < 0)
            die("log_set_max", rc);
    }
    if ((rc = srm_ds_txn_commit(txn)) < 0)
        die("commit", rc);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", 1, 0, 'd'},
                                         {"node", 1, 0, 'n'},
                                         {"peer", 1, 0, 'p'},
                                         {"peer-name", 1, 0, 'N'},
                                         {"ca", 1, 0, 'A'},
                                         {"cert", 1, 0, 'C'},
                                         {"key", 1, 0, 'K'},
                                         {"cluster", 1, 0, 'c'},
                                         {"listen", 1, 0, 'l'},
                                         {"connect", 1, 0, 'k'},
                                         {"own", 1, 0, 'o'},
                                         {"recv", 1, 0, 'r'},
                                         {"log-max", 1, 0, 'L'},
                                         {"degrade-ms", 1, 0, 'D'},
                                         {"keepalive-ms", 1, 0, 'P'},
                                         {"write", 1, 0, 'w'},
                                         {"batch", 1, 0, 'b'},
                                         {"rate", 1, 0, 'R'},
                                         {"clients", 1, 0, 'x'},
                                         {"sync", 0, 0, 's'},
                                         {"acked", 1, 0, 'a'},
                                         {"prefix", 1, 0, 'f'},
                                         {"value-bytes", 1, 0, 'v'},
                                         {"run-ms", 1, 0, 't'},
                                         {"random", 0, 0, 'X'},
                                         {"wait-link", 0, 0, 'W'},
                                         {"lag-dump", 1, 0, 'G'},
                                         {"batch-bytes", 1, 0, 'Y'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o.dir = optarg;
            break;
        case 'n':
            o.node = (uint32_t)atoi(optarg);
            break;
        case 'p':
            o.peer = (uint32_t)atoi(optarg);
            break;
        case 'N':
            o.peer_name = optarg;
            break;
        case 'A':
            o.ca = optarg;
            break;
        case 'C':
            o.cert = optarg;
            break;
        case 'K':
            o.key = optarg;
            break;
        case 'c':
            o.cluster = optarg;
            break;
        case 'l':
            parse_hostport(optarg, o.listen_host, sizeof(o.listen_host), &o.listen_port);
            break;
        case 'k':
            parse_hostport(optarg, o.connect_host, sizeof(o.connect_host), &o.connect_port);
            break;
        case 'o':
            if (o.nown < MAX_PARTS)
                parse_part(optarg, &o.own[o.nown++]);
            break;
        case 'r':
            if (o.nrecv < MAX_PARTS)
                parse_part(optarg, &o.recv[o.nrecv++]);
            break;
        case 'L':
            o.log_max = strtoull(optarg, NULL, 10);
            break;
        case 'D':
            o.degrade_ms = (uint32_t)atoi(optarg);
            break;
        case 'P':
            o.keepalive_ms = (uint32_t)atoi(optarg);
            break;
        case 'w':
            o.write_n = atoll(optarg);
            break;
        case 'b':
            o.batch = (unsigned)atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 'x':
            o.clients = (unsigned)atoi(optarg);
            break;
        case 's':
            o.sync = true;
            break;
        case 'a':
            o.acked = optarg;
            break;
        case 'f':
            o.prefix = optarg;
            break;
        case 'v':
            o.value_bytes = (unsigned)atoi(optarg);
            break;
        case 't':
            o.run_ms = atol(optarg);
            break;
        case 'X':
            o.random = true;
            break;
        case 'W':
            o.wait_link = true;
            break;
        case 'G':
            o.lag_dump = optarg;
            break;
        case 'Y':
            o.batch_bytes = (uint32_t)atoi(optarg);
            break;
        default:
            fprintf(stderr, "repl-node: see the comment at the top of repl_node.c\n");
            return 2;
        }
    }
    if (!o.dir || !o.node || !o.peer || !o.peer_name || !o.ca || !o.cert || !o.key) {
        fprintf(stderr, "repl-node: --dir --node --peer --peer-name --ca --cert --key needed\n");
        return 2;
    }
    static char pfx[64];
    if (!o.prefix) {
        snprintf(pfx, sizeof(pfx), "w%d-", (int)getpid());
        o.prefix = pfx;
    }
    if (o.batch == 0 || o.batch > BATCH_MAX)
        o.batch = 100;
    if (o.value_bytes > SRM_DS_STATUS_MAX)
        o.value_bytes = SRM_DS_STATUS_MAX;
    memset(status_text, 's', o.value_bytes);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    struct srm_ds_open_opts dopts = {.node_id = o.node,
                                     .sync = SRM_DS_SYNC_NONE,
                                     .map_size = 256ull << 20,
                                     .map_size_max = 8ull << 30,
                                     .log_max_bytes = o.log_max ? o.log_max : 64ull << 20};
    int rc = srm_ds_env_open(o.dir, &dopts, &env);
    if (rc < 0)
        die("open datastore", rc);
    if (o.nown)
        own_partitions();
    if (o.acked && o.nown && (acked_fd = open(o.acked, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
        die("acked file", -errno);

    uv_loop_init(&loop);
    struct srm_repl_config cfg = {.cluster = o.cluster,
                                  .node_id = o.node,
                                  .peer_id = o.peer,
                                  .peer_name = o.peer_name,
                                  .ca_file = o.ca,
                                  .cert_file = o.cert,
                                  .key_file = o.key,
                                  .listen_host = o.listen_port ? o.listen_host : NULL,
                                  .listen_port = o.listen_port,
                                  .peer_host = o.connect_port ? o.connect_host : NULL,
                                  .peer_port = o.connect_port,
                                  .ds = env,
                                  .reconnect_min_ms = 20,
                                  .reconnect_max_ms = 200,
                                  .keepalive_ms = o.keepalive_ms,
                                  .degrade_ms = o.degrade_ms,
                                  .batch_bytes = o.batch_bytes,
                                  .event_cb = on_event};
    if ((rc = srm_repl_new(&loop, &cfg, &repl)) < 0)
        die("srm_repl_new", rc);
    for (int i = 0; i < o.nown; i++)
        if ((rc = srm_repl_partition_set(repl, o.own[i].part, SRM_REPL_ROLE_SOURCE,
                                         o.own[i].epoch)) < 0)
            die("partition_set", rc);
    for (int i = 0; i < o.nrecv; i++)
        if ((rc = srm_repl_partition_set(repl, o.recv[i].part, SRM_REPL_ROLE_SINK,
                                         o.recv[i].epoch)) < 0)
            die("partition_set", rc);
    if ((rc = srm_repl_start(repl)) < 0)
        die("srm_repl_start", rc);
    uv_async_init(&loop, &wake, on_wake);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    uv_signal_init(&loop, &sigusr1);
    uv_signal_start(&sigusr1, on_sigusr1, SIGUSR1);
    uv_signal_init(&loop, &sigusr2);
    uv_signal_start(&sigusr2, on_sigusr2, SIGUSR2);
    uv_timer_init(&loop, &poll_timer);
    uv_timer_start(&poll_timer, on_poll, 1, 1);
    uv_timer_init(&loop, &run_timer);
    if (o.run_ms > 0)
        uv_timer_start(&run_timer, on_run_timer, (uint64_t)o.run_ms, 0);

    pthread_t wt = 0;
    uv_check_init(&loop, &lag_check);
    if (o.nown && o.write_n != 0) {
        if (o.clients) {
            pthread_create(&wt, NULL, clients_main, NULL);
        } else {
            uv_check_start(&lag_check, on_lag_check);
            pthread_create(&wt, NULL, writer_thread, NULL);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* The endpoint is closed. Writers still running (endless, or waiting for a link or an
     * acknowledgement that will not come) are not joined: the process ends here. */
    if (wt && !__atomic_load_n(&writes_done, __ATOMIC_ACQUIRE)) {
        print_rusage();
        _exit(0);
    }
    clients_stop = true;
    if (wt)
        pthread_join(wt, NULL);
    uv_loop_close(&loop);
    srm_ds_env_close(env);
    print_rusage();
    return 0;
}
