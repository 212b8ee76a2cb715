/*
 * srm-client-probe: a protocol daemon reduced to libsrm (linked against libsrm.so), for the
 * integration tests. It prints one line per event and reads commands on stdin.
 *
 *   srm-client-probe [--ipc NAME] [--name NAME] [--service NAME[:normal]]...
 *                    [--quorum off|corosync] [--peer N] [--ack-later] [--reconnect MS]
 *
 * --ack-later: SERVE, RELEASE, STOP_SERVICES and START_SERVICES wait for an "ack" command.
 * Commands: health SVC up|down [DETAIL]   ack CMD RESULT   stale PART EPOCH [notowner]
 *           counters PART A I C CI        status           quit
 *
 * Besides the callbacks, it asks srm_client_serving() every 10 ms for each partition it has
 * been granted and prints "serving-set parts=..." whenever the answer changes: that is what
 * the library lets the application write, by its own clock.
 */
#include "srm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct probe {
    struct srm_client *c;
    bool ack_later;
    uint64_t t0;
    uint32_t known[SRM_PARTS_MAX];
    size_t n_known;
    char last_set[4096];
    char line[4096];
    size_t line_len;
    bool quit;
};

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void out(struct probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct probe *p, const char *fmt, ...)
{
    va_list ap;
    uint64_t now = mono_us();

    printf("t=%llu mono=%llu ", (unsigned long long)((now - p->t0) / 1000),
           (unsigned long long)(now / 1000));
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void remember(struct probe *p, uint32_t part)
{
    for (size_t i = 0; i < p->n_known; i++)
        if (p->known[i] == part)
            return;
    if (p->n_known < SRM_PARTS_MAX)
        p->known[p->n_known++] = part;
}

static void check_serving(struct probe *p)
{
    char set[4096];
    size_t n = 0;

    set[0] = '\0';
    for (size_t i = 0; i < p->n_known; i++) {
        uint64_t epoch = 0;
        if (srm_client_serving(p->c, p->known[i], &epoch) == 1)
            n += (size_t)snprintf(set + n, sizeof(set) - n, "%s%u:%llu", n ? "," : "", p->known[i],
                                  (unsigned long long)epoch);
    }
    if (strcmp(set, p->last_set) != 0) {
        snprintf(p->last_set, sizeof(p->last_set), "%s", set);
        out(p, "serving-set parts=%s", n ? set : "-");
    }
}

static int serve_cb(struct srm_client *c, const struct srm_serve *s, void *d)
{
    struct probe *p = d;

    (void)c;
    remember(p, s->part);
    out(p, "serve part=%u epoch=%llu renewed=%d cmd=%u home=%s", s->part,
        (unsigned long long)s->epoch, s->renewed, s->cmd_id, s->home_name);
    check_serving(p);
    return p->ack_later ? SRM_ACK_LATER : 0;
}

static int release_cb(struct srm_client *c, const struct srm_release *r, void *d)
{
    struct probe *p = d;
    uint64_t lo = UINT64_MAX, hi = 0;

    for (int i = 0; i < 100; i++) {
        uint64_t v = srm_client_relogin_delay_ms(c, r->relogin_lower_s, r->relogin_upper_s);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    out(p, "release part=%u epoch=%llu cmd=%u drain=%u lo=%u hi=%u delays=%llu..%llu", r->part,
        (unsigned long long)r->epoch, r->cmd_id, r->drain_ms, r->relogin_lower_s,
        r->relogin_upper_s, (unsigned long long)lo, (unsigned long long)hi);
    check_serving(p);
    return p->ack_later ? SRM_ACK_LATER : 0;
}

static void stop_serving_cb(struct srm_client *c, uint32_t part, enum srm_stop_reason reason,
                            void *d)
{
    (void)c;
    out(d, "stop-serving part=%u reason=%s", part, srm_stop_reason_name(reason));
    check_serving(d);
}

static int stop_services_cb(struct srm_client *c, uint32_t cmd, void *d)
{
    struct probe *p = d;

    (void)c;
    out(p, "stop-services cmd=%u", cmd);
    return p->ack_later ? SRM_ACK_LATER : 0;
}

static int start_services_cb(struct srm_client *c, uint32_t cmd, void *d)
{
    struct probe *p = d;

    (void)c;
    out(p, "start-services cmd=%u", cmd);
    return p->ack_later ? SRM_ACK_LATER : 0;
}

static void connection_cb(struct srm_client *c, bool up, int err, void *d)
{
    struct srm_client_status st;

    srm_client_status(c, &st);
    if (up)
        out(d, "connected node=%u peer=%u reconnects=%llu", st.node_id, st.peer_node_id,
            (unsigned long long)st.reconnects);
    else
        out(d, "disconnected err=%s", srm_errname(err));
}

static void quorum_cb(struct srm_client *c, bool quorate, bool peer_present, void *d)
{
    (void)c;
    out(d, "quorum quorate=%d peer_present=%d", quorate, peer_present);
}

static void command(struct probe *p, char *line)
{
    char *argv[8];
    int argc = 0, r = 0;

    for (char *tok = strtok(line, " \t"); tok && argc < 8; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    if (argc == 0)
        return;
    if (strcmp(argv[0], "quit") == 0) {
        p->quit = true;
        return;
    } else if (strcmp(argv[0], "health") == 0 && argc >= 3) {
        r = srm_client_service_health(p->c, argv[1], strcmp(argv[2], "up") == 0,
                                      argc > 3 ? argv[3] : NULL);
    } else if (strcmp(argv[0], "ack") == 0 && argc >= 3) {
        r = srm_client_ack(p->c, (uint32_t)strtoul(argv[1], NULL, 10), atoi(argv[2]), NULL);
    } else if (strcmp(argv[0], "stale") == 0 && argc >= 3) {
        r = srm_client_stale(
            p->c, (uint32_t)strtoul(argv[1], NULL, 10), strtoull(argv[2], NULL, 10),
            argc > 3 && strcmp(argv[3], "notowner") == 0 ? SRM_ENOTOWNER : SRM_ESTALE_EPOCH);
    } else if (strcmp(argv[0], "counters") == 0 && argc == 6) {
        struct srm_part_counters k = {
            .part = (uint32_t)strtoul(argv[1], NULL, 10),
            .active = strtoull(argv[2], NULL, 10),
            .inactive = strtoull(argv[3], NULL, 10),
            .client = strtoull(argv[4], NULL, 10),
            .client_inactive = strtoull(argv[5], NULL, 10),
        };
        struct srm_counter extra = {.name = "probe_counter", .value = 7};
        r = srm_client_counters(p->c, &k, 1, &extra, 1);
    } else if (strcmp(argv[0], "status") == 0) {
        struct srm_client_status st;
        srm_client_status(p->c, &st);
        out(p,
            "status connected=%d node=%u peer=%u quorum_connected=%d quorate=%d "
            "peer_present=%d fenced=%d lease_left=%lld grants=%zu reconnects=%llu "
            "lease_expiries=%llu quorum_fences=%llu refused=%llu ping=%u",
            st.connected, st.node_id, st.peer_node_id, st.quorum_connected, st.quorate,
            st.peer_present, st.fenced, (long long)st.lease_left_ms, st.n_grants,
            (unsigned long long)st.reconnects, (unsigned long long)st.lease_expiries,
            (unsigned long long)st.quorum_fences, (unsigned long long)st.refused_serves,
            st.ping_ms);
        return;
    } else {
        out(p, "error %s: unknown command or wrong arguments", argv[0]);
        return;
    }
    out(p, "done %s result=%s", argv[0], r == 0 ? "0" : r > 0 ? "1" : srm_errname(r));
}

static void read_stdin(struct probe *p)
{
    char buf[1024];
    ssize_t n = read(0, buf, sizeof(buf));

    if (n == 0) {
        p->quit = true;
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            p->line[p->line_len] = '\0';
            command(p, p->line);
            p->line_len = 0;
        } else if (p->line_len < sizeof(p->line) - 1) {
            p->line[p->line_len++] = buf[i];
        }
    }
}

int main(int argc, char **argv)
{
    static struct probe p;
    struct srm_client_options o = {0};
    const char *services[SRM_SERVICES_MAX];
    size_t n_services = 0;
    int r;

    p.t0 = mono_us();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--ack-later") == 0) {
            p.ack_later = true;
            continue;
        }
        if (!v)
            goto usage;
        if (strcmp(a, "--ipc") == 0)
            o.ipc_name = v;
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--service") == 0 && n_services < SRM_SERVICES_MAX)
            services[n_services++] = v;
        else if (strcmp(a, "--quorum") == 0)
            o.quorum = strcmp(v, "off") == 0 ? SRM_QUORUM_OFF : SRM_QUORUM_COROSYNC;
        else if (strcmp(a, "--peer") == 0)
            o.peer_node_id = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--reconnect") == 0)
            o.reconnect_ms = (unsigned)strtoul(v, NULL, 10);
        else
            goto usage;
        i++;
    }
    o.callbacks = (struct srm_client_callbacks){
        .serve_cb = serve_cb,
        .release_cb = release_cb,
        .stop_serving_cb = stop_serving_cb,
        .stop_services_cb = stop_services_cb,
        .start_services_cb = start_services_cb,
        .connection_cb = connection_cb,
        .quorum_cb = quorum_cb,
    };
    o.data = &p;
    r = srm_client_new(&o, &p.c);
    if (r < 0) {
        fprintf(stderr, "srm-client-probe: %s\n", srm_strerror(r));
        return 1;
    }
    for (size_t i = 0; i < n_services; i++) {
        char name[SRM_NAME_MAX + 1];
        const char *colon = strchr(services[i], ':');
        bool critical = !(colon && strcmp(colon, ":normal") == 0);
        snprintf(name, sizeof(name), "%.*s",
                 (int)(colon ? (size_t)(colon - services[i]) : strlen(services[i])), services[i]);
        r = srm_client_service_register(p.c, name, critical);
        if (r < 0) {
            fprintf(stderr, "srm-client-probe: service %s: %s\n", name, srm_strerror(r));
            return 1;
        }
    }
    out(&p, "started pid=%d", (int)getpid());
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    while (!p.quit) {
        struct pollfd fds[2] = {{.fd = srm_client_fd(p.c), .events = POLLIN},
                                {.fd = 0, .events = POLLIN}};
        int n = poll(fds, 2, 10);
        if (n < 0 && errno != EINTR)
            break;
        srm_client_dispatch(p.c);
        if (fds[1].revents & (POLLIN | POLLHUP))
            read_stdin(&p);
        check_serving(&p);
    }
    out(&p, "exit");
    srm_client_free(p.c);
    return 0;

usage:
    fprintf(stderr, "usage: srm-client-probe [--ipc NAME] [--name NAME] [--service NAME[:normal]]"
                    "... [--quorum off|corosync] [--peer N] [--ack-later] [--reconnect MS]\n");
    return 2;
}
