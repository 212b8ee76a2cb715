/*
 * A minimal protocol daemon on libsrm (ha/libsrm/README.md walks through it).
 *
 *   srm-example [--ipc NAME] [--name NAME] [--data-dir DIR --node-id N] [--seconds S]
 *
 * It registers one critical service, serves the partitions srmd grants, and once a second
 * writes one presence record into each served partition (with --data-dir: the node's
 * datastore) under the granted epoch. On RELEASE it draws a re-login delay per (pretend)
 * user from the window srmd gives. It prints one line per event on stdout. Build it
 * against an installed libsrm with:
 *
 *   cc example.c $(pkg-config --cflags --libs libsrm) -o srm-example
 */
#include <srm.h>
#include <srm_ds.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SERVICE "example-service"

static volatile sig_atomic_t stop_requested;

struct app {
    struct srm_client *client;
    struct srm_ds_env *env; /* NULL without --data-dir */
    unsigned writes;
};

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int on_serve(struct srm_client *c, const struct srm_serve *s, void *data)
{
    (void)c;
    (void)data;
    /* Nothing to load here; a real engine would start loading the users of s->part
     * lazily and return at once (accepting a SERVE must stay O(1)). */
    printf("serve part=%u epoch=%llu%s\n", s->part, (unsigned long long)s->epoch,
           s->renewed ? " (renewed)" : "");
    fflush(stdout);
    return 0; /* acknowledged by the library now */
}

static int on_release(struct srm_client *c, const struct srm_release *r, void *data)
{
    uint64_t lo = UINT64_MAX, hi = 0;

    (void)data;
    /* Each user of the partition is told to come back after its own random delay. */
    for (int user = 0; user < 1000; user++) {
        uint64_t d = srm_client_relogin_delay_ms(c, r->relogin_lower_s, r->relogin_upper_s);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    printf("release part=%u relogin=[%u,%u]s drawn=[%llu,%llu]ms\n", r->part, r->relogin_lower_s,
           r->relogin_upper_s, (unsigned long long)lo, (unsigned long long)hi);
    fflush(stdout);
    return 0; /* drained at once */
}

static void on_stop_serving(struct srm_client *c, uint32_t part, enum srm_stop_reason reason,
                            void *data)
{
    (void)c;
    (void)data;
    printf("stop-serving part=%u reason=%s\n", part, srm_stop_reason_name(reason));
    fflush(stdout);
}

static int on_stop_services(struct srm_client *c, uint32_t cmd_id, void *data)
{
    (void)cmd_id;
    (void)data;
    srm_client_service_health(c, SERVICE, false, "stopped by srmd");
    printf("services stopped\n");
    fflush(stdout);
    return 0;
}

static int on_start_services(struct srm_client *c, uint32_t cmd_id, void *data)
{
    (void)cmd_id;
    (void)data;
    srm_client_service_health(c, SERVICE, true, NULL);
    printf("services started\n");
    fflush(stdout);
    return 0;
}

static void on_connection(struct srm_client *c, bool up, int err, void *data)
{
    struct srm_client_status st;

    (void)data;
    srm_client_status(c, &st);
    if (up)
        printf("connected node=%u peer=%u\n", st.node_id, st.peer_node_id);
    else
        printf("disconnected: %s\n", srm_strerror(err));
    fflush(stdout);
}

/* One presence write per served partition, under the epoch of its grant. */
static void write_presence(struct app *a)
{
    struct srm_grant grants[SRM_PARTS_MAX];
    size_t n = 0;

    if (!a->env || srm_client_grants(a->client, grants, SRM_PARTS_MAX, &n) < 0)
        return;
    for (size_t i = 0; i < n && i < SRM_PARTS_MAX; i++) {
        struct srm_ds_txn *txn;
        uint64_t epoch;
        char user[64];
        struct timespec ts;
        int r;

        /* Checked right before writing: the lease or the fence may have ended since. */
        if (srm_client_serving(a->client, grants[i].part, &epoch) != 1)
            continue;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(user, sizeof(user), "example-%u@example.org", grants[i].part);
        struct srm_ds_presence p = {
            .user = user,
            .resource = "example",
            .availability = SRM_DS_AVAIL_AVAILABLE,
            .status = "written by srm-example",
            .updated_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
        };
        if (srm_ds_txn_begin(a->env, 0, &txn) < 0)
            continue;
        r = srm_ds_presence_put(txn, grants[i].part, epoch, &p);
        if (r == 0)
            r = srm_ds_txn_commit(txn);
        else
            srm_ds_txn_abort(txn);
        if (r == SRM_ESTALE_EPOCH || r == SRM_ENOTOWNER) {
            /* Ownership moved on: stop serving the partition and tell srmd. */
            srm_client_stale(a->client, grants[i].part, epoch, r);
            printf("stale part=%u epoch=%llu: %s\n", grants[i].part, (unsigned long long)epoch,
                   srm_strerror(r));
        } else if (r == 0) {
            a->writes++;
        }
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct app a = {0};
    struct srm_client_options o = {0};
    const char *data_dir = NULL;
    unsigned node_id = 0, seconds = 0;
    time_t start = time(NULL), last = 0;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ipc") == 0 && i + 1 < argc)
            o.ipc_name = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            o.name = argv[++i];
        else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            data_dir = argv[++i];
        else if (strcmp(argv[i], "--node-id") == 0 && i + 1 < argc)
            node_id = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr,
                    "usage: %s [--ipc NAME] [--name NAME] [--data-dir DIR --node-id N] "
                    "[--seconds S]\n",
                    argv[0]);
            return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (data_dir) {
        struct srm_ds_open_opts dso = {.node_id = node_id, .sync = SRM_DS_SYNC_NONE};
        r = srm_ds_env_open(data_dir, &dso, &a.env);
        if (r < 0) {
            fprintf(stderr, "srm-example: cannot open datastore %s: %s\n", data_dir,
                    srm_strerror(r));
            return 1;
        }
    }

    o.callbacks = (struct srm_client_callbacks){
        .serve_cb = on_serve,
        .release_cb = on_release,
        .stop_serving_cb = on_stop_serving,
        .stop_services_cb = on_stop_services,
        .start_services_cb = on_start_services,
        .connection_cb = on_connection,
    };
    o.data = &a;
    r = srm_client_new(&o, &a.client);
    if (r < 0) {
        fprintf(stderr, "srm-example: %s\n", srm_strerror(r));
        srm_ds_env_close(a.env);
        return 1;
    }
    srm_client_service_register(a.client, SERVICE, true);

    while (!stop_requested && (seconds == 0 || time(NULL) - start < (time_t)seconds)) {
        struct pollfd p = {.fd = srm_client_fd(a.client), .events = POLLIN};

        if (poll(&p, 1, 200) < 0 && errno != EINTR)
            break;
        srm_client_dispatch(a.client);
        if (time(NULL) != last) {
            last = time(NULL);
            write_presence(&a);
        }
    }
    printf("exit writes=%u\n", a.writes);
    srm_client_free(a.client);
    srm_ds_env_close(a.env);
    return 0;
}
