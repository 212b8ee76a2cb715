/*
 * ipc-server-probe: srmd's IPC server side (srm_ha_ipc) in a small program for the
 * integration tests and for trying engines by hand. It prints one line per event on stdout
 * and reads commands, one per line, on stdin (a FIFO in the tests).
 *
 *   ipc-server-probe --name IPC --node-id N [--peer-id P] [--node-name S] [--peer-name S]
 *                    [--ping MS] [--misses N] [--allow-uid U]... [--allow-gid G]...
 *                    [--auto-lease MS] [--cmd-timeout MS]
 *
 * Commands (CLIENT: a client id, a client name from its HELLO, or "all"):
 *   serve CLIENT PART EPOCH LEASE_MS [HOME]     release CLIENT PART DRAIN_MS LO HI [TIMEOUT]
 *   lease CLIENT MS      autolease MS (renew every MS/4 to all; 0 stops)
 *   stop CLIENT          start CLIENT          watchdog CLIENT PING_MS MISSES
 *   disconnect CLIENT    clients    services    stats    quit
 *
 * Event lines: "t=<ms since start> mono=<CLOCK_MONOTONIC ms> <event> key=value...".
 */
#include "srm_ipc.h"
#include "srm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct probe {
    uv_loop_t *loop;
    struct srm_ipc_server *s;
    uv_poll_t in;
    uv_timer_t lease_timer;
    uv_signal_t sigterm;
    uint32_t auto_lease_ms;
    uint64_t t0;
    char line[4096];
    size_t line_len;
    bool quitting;
    /* send time of each command, for round-trip figures */
    uint32_t sent_id[1024];
    uint64_t sent_us[1024];
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

static const char *res_name(int r)
{
    return r == 0 ? "0" : srm_errname(r);
}

static void connected_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c, void *d)
{
    (void)s;
    out(d, "connected id=%u name=%s pid=%d uid=%d incarnation=%llx", c->id, c->name, (int)c->pid,
        (int)c->uid, (unsigned long long)c->incarnation);
}

static void disconnected_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                            int reason, void *d)
{
    (void)s;
    out(d, "disconnected id=%u name=%s pid=%d reason=%s", c->id, c->name, (int)c->pid,
        res_name(reason));
}

static void refused_cb(struct srm_ipc_server *s, pid_t pid, uid_t uid, gid_t gid, int err, void *d)
{
    (void)s;
    out(d, "refused pid=%d uid=%d gid=%d err=%s", (int)pid, (int)uid, (int)gid, res_name(err));
}

static void service_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *v, void *d)
{
    (void)s;
    out(d, "service name=%s client=%u critical=%d up=%d", v->name, v->client, v->critical, v->up);
}

static void health_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *v, void *d)
{
    (void)s;
    out(d, "health name=%s client=%u up=%d detail=\"%s\"", v->name, v->client, v->up, v->detail);
}

static void ack_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c, uint32_t cmd_id,
                   enum srm_ipc_type type, int result, const char *detail, void *d)
{
    struct probe *p = d;
    uint64_t sent = p->sent_id[cmd_id % 1024] == cmd_id ? p->sent_us[cmd_id % 1024] : 0;

    (void)s;
    out(d, "ack id=%u name=%s cmd=%u type=%s result=%s rtt_us=%llu detail=\"%s\"", c->id, c->name,
        cmd_id, srm_ipc_type_name(type), res_name(result),
        (unsigned long long)(sent ? mono_us() - sent : 0), detail);
}

static void counters_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                        const struct srm_ipc_counters *k, void *d)
{
    char buf[8192];
    size_t n = 0;

    (void)s;
    buf[0] = '\0';
    for (size_t i = 0; i < k->n_parts && n < sizeof(buf) - 128; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " p%u=%llu/%llu/%llu/%llu",
                              k->parts[i].part, (unsigned long long)k->parts[i].active,
                              (unsigned long long)k->parts[i].inactive,
                              (unsigned long long)k->parts[i].client,
                              (unsigned long long)k->parts[i].client_inactive);
    for (size_t i = 0; i < k->n_extra && n < sizeof(buf) - 128; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%llu", k->extra[i].name,
                              (unsigned long long)k->extra[i].value);
    out(d, "counters id=%u name=%s%s", c->id, c->name, buf);
}

static void stale_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                     const struct srm_ipc_stale *st, void *d)
{
    (void)s;
    out(d, "stale id=%u name=%s part=%u epoch=%llu error=%s", c->id, c->name, st->part,
        (unsigned long long)st->epoch, res_name(st->error));
}

static void serving_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                       const struct srm_ipc_serving *v, void *d)
{
    char buf[4096];
    size_t n = 0;

    (void)s;
    buf[0] = '\0';
    for (size_t i = 0; i < v->n && n < sizeof(buf) - 64; i++)
        n +=
            (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%u:%llu:%s", i ? "," : "",
                             v->grants[i].part, (unsigned long long)v->grants[i].epoch,
                             v->grants[i].state == SRM_IPC_GRANT_DRAINING ? "draining" : "serving");
    out(d, "serving id=%u name=%s reason=%s fenced=%d lease_left=%u parts=%s", c->id, c->name,
        srm_ipc_reason_name((enum srm_ipc_reason)v->reason), v->fenced, v->lease_left_ms,
        n ? buf : "-");
}

/* CLIENT argument: "all", an id, or a name (the newest client with that name). */
static int client_of(struct probe *p, const char *arg, uint32_t *ret)
{
    struct srm_ipc_client_info all[SRM_IPC_CLIENTS_MAX];
    size_t n = 0;
    char *end;
    unsigned long v;

    if (strcmp(arg, "all") == 0) {
        *ret = SRM_IPC_CLIENT_ALL;
        return 0;
    }
    v = strtoul(arg, &end, 10);
    if (*end == '\0' && v > 0) {
        *ret = (uint32_t)v;
        return 0;
    }
    srm_ipc_server_clients(p->s, all, SRM_IPC_CLIENTS_MAX, &n);
    *ret = 0;
    for (size_t i = 0; i < n && i < SRM_IPC_CLIENTS_MAX; i++)
        if (all[i].hello && strcmp(all[i].name, arg) == 0 && all[i].id > *ret)
            *ret = all[i].id;
    return *ret ? 0 : SRM_ENOTFOUND;
}

static void note_sent(struct probe *p, uint32_t cmd)
{
    p->sent_id[cmd % 1024] = cmd;
    p->sent_us[cmd % 1024] = mono_us();
}

static void lease_timer_cb(uv_timer_t *t)
{
    struct probe *p = t->data;

    if (p->auto_lease_ms)
        srm_ipc_server_lease(p->s, SRM_IPC_CLIENT_ALL, p->auto_lease_ms);
}

static void closed_cb(struct srm_ipc_server *s, void *d)
{
    struct probe *p = d;

    (void)s;
    out(p, "closed");
}

static void quit(struct probe *p)
{
    if (p->quitting)
        return;
    p->quitting = true;
    uv_timer_stop(&p->lease_timer);
    uv_close((uv_handle_t *)&p->lease_timer, NULL);
    if (uv_is_active((uv_handle_t *)&p->in))
        uv_poll_stop(&p->in);
    uv_close((uv_handle_t *)&p->in, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    srm_ipc_server_close(p->s, closed_cb, p);
}

static void command(struct probe *p, char *line)
{
    char *argv[12];
    int argc = 0;
    uint32_t client = 0, cmd = 0;
    int r = 0;

    for (char *tok = strtok(line, " \t"); tok && argc < 12; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    if (argc == 0)
        return;
#define ARGU(i) ((uint32_t)strtoul(argv[i], NULL, 10))
    if (strcmp(argv[0], "quit") == 0) {
        quit(p);
        return;
    }
    if (strcmp(argv[0], "autolease") == 0 && argc == 2) {
        p->auto_lease_ms = ARGU(1);
        uv_timer_stop(&p->lease_timer);
        if (p->auto_lease_ms) {
            uint64_t every = p->auto_lease_ms / 4 ? p->auto_lease_ms / 4 : 1;
            srm_ipc_server_lease(p->s, SRM_IPC_CLIENT_ALL, p->auto_lease_ms);
            uv_timer_start(&p->lease_timer, lease_timer_cb, every, every);
        }
        out(p, "ok autolease=%u", p->auto_lease_ms);
        return;
    }
    if (strcmp(argv[0], "clients") == 0) {
        struct srm_ipc_client_info all[SRM_IPC_CLIENTS_MAX];
        size_t n = 0;
        srm_ipc_server_clients(p->s, all, SRM_IPC_CLIENTS_MAX, &n);
        for (size_t i = 0; i < n && i < SRM_IPC_CLIENTS_MAX; i++)
            out(p, "client id=%u name=%s pid=%d hello=%d ping=%u misses=%u", all[i].id, all[i].name,
                (int)all[i].pid, all[i].hello, all[i].ping_ms, all[i].misses);
        out(p, "ok clients=%zu", n);
        return;
    }
    if (strcmp(argv[0], "services") == 0) {
        struct srm_ipc_service_info all[64];
        size_t n = 0;
        srm_ipc_server_services(p->s, all, 64, &n);
        for (size_t i = 0; i < n && i < 64; i++)
            out(p, "svc name=%s client=%u critical=%d up=%d detail=\"%s\"", all[i].name,
                all[i].client, all[i].critical, all[i].up, all[i].detail);
        out(p, "ok services=%zu", n);
        return;
    }
    if (strcmp(argv[0], "stats") == 0) {
        struct srm_ipc_server_stats st;
        srm_ipc_server_stats(p->s, &st);
        out(p,
            "stats accepted=%llu refused=%llu malformed=%llu watchdog=%llu late=%llu "
            "queued=%llu dropped=%llu stalls=%llu",
            (unsigned long long)st.accepted, (unsigned long long)st.refused,
            (unsigned long long)st.malformed, (unsigned long long)st.watchdog_misses,
            (unsigned long long)st.late_acks, (unsigned long long)st.queued,
            (unsigned long long)st.dropped, (unsigned long long)st.stalls);
        return;
    }
    if (argc < 2) {
        out(p, "error %s: missing arguments", argv[0]);
        return;
    }
    r = client_of(p, argv[1], &client);
    if (r < 0) {
        out(p, "error %s: no client %s", argv[0], argv[1]);
        return;
    }
    if (strcmp(argv[0], "serve") == 0 && argc >= 5) {
        r = srm_ipc_server_serve(p->s, client, ARGU(2), strtoull(argv[3], NULL, 10), ARGU(4),
                                 argc > 5 ? argv[5] : NULL, 0, &cmd);
    } else if (strcmp(argv[0], "release") == 0 && argc >= 6) {
        r = srm_ipc_server_release(p->s, client, ARGU(2), ARGU(3), ARGU(4), ARGU(5),
                                   argc > 6 ? ARGU(6) : 0, &cmd);
    } else if (strcmp(argv[0], "lease") == 0 && argc == 3) {
        r = srm_ipc_server_lease(p->s, client, ARGU(2));
    } else if (strcmp(argv[0], "stop") == 0) {
        r = srm_ipc_server_stop_services(p->s, client, argc > 2 ? ARGU(2) : 0, &cmd);
    } else if (strcmp(argv[0], "start") == 0) {
        r = srm_ipc_server_start_services(p->s, client, argc > 2 ? ARGU(2) : 0, &cmd);
    } else if (strcmp(argv[0], "watchdog") == 0 && argc == 4) {
        r = srm_ipc_server_watchdog_set(p->s, client, ARGU(2), (uint8_t)ARGU(3));
    } else if (strcmp(argv[0], "disconnect") == 0) {
        r = srm_ipc_server_disconnect(p->s, client);
    } else {
        out(p, "error %s: unknown command or wrong arguments", argv[0]);
        return;
    }
#undef ARGU
    if (r < 0) {
        out(p, "error %s: %s", argv[0], srm_strerror(r));
        return;
    }
    if (cmd)
        note_sent(p, cmd);
    out(p, "sent %s cmd=%u clients=%d", argv[0], cmd, r);
}

static void stdin_cb(uv_poll_t *h, int status, int events)
{
    struct probe *p = h->data;
    char buf[1024];
    ssize_t n;

    (void)events;
    if (status < 0) {
        quit(p);
        return;
    }
    n = read(0, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        quit(p);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            p->line[p->line_len] = '\0';
            command(p, p->line);
            p->line_len = 0;
            if (p->quitting)
                return;
        } else if (p->line_len < sizeof(p->line) - 1) {
            p->line[p->line_len++] = buf[i];
        }
    }
}

static void sigterm_cb(uv_signal_t *h, int sig)
{
    (void)sig;
    quit(h->data);
}

int main(int argc, char **argv)
{
    static struct probe p;
    struct srm_ipc_server_options o = {0};
    uid_t uids[16];
    gid_t gids[16];
    int r;

    p.t0 = mono_us();
    p.loop = uv_default_loop();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--node-id") == 0)
            o.node_id = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--peer-id") == 0)
            o.peer_node_id = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--node-name") == 0)
            o.node_name = v;
        else if (strcmp(a, "--peer-name") == 0)
            o.peer_name = v;
        else if (strcmp(a, "--ping") == 0)
            o.ping_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--misses") == 0)
            o.misses = (uint8_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--allow-uid") == 0 && o.n_allow_uids < 16)
            uids[o.n_allow_uids++] = (uid_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--allow-gid") == 0 && o.n_allow_gids < 16)
            gids[o.n_allow_gids++] = (gid_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--auto-lease") == 0)
            p.auto_lease_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--cmd-timeout") == 0)
            o.cmd_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        else
            goto usage;
        i++;
    }
    if (!o.name || o.node_id == 0)
        goto usage;
    o.allow_uids = uids;
    o.allow_gids = gids;
    o.connected_cb = connected_cb;
    o.disconnected_cb = disconnected_cb;
    o.refused_cb = refused_cb;
    o.service_cb = service_cb;
    o.health_cb = health_cb;
    o.ack_cb = ack_cb;
    o.counters_cb = counters_cb;
    o.stale_cb = stale_cb;
    o.serving_cb = serving_cb;
    o.data = &p;
    signal(SIGPIPE, SIG_IGN);

    r = srm_ipc_server_new(p.loop, &o, &p.s);
    if (r < 0) {
        fprintf(stderr, "ipc-server-probe: cannot serve %s: %s\n", o.name, srm_strerror(r));
        return 1;
    }
    uv_timer_init(p.loop, &p.lease_timer);
    p.lease_timer.data = &p;
    if (p.auto_lease_ms) {
        uint64_t every = p.auto_lease_ms / 4 ? p.auto_lease_ms / 4 : 1;
        uv_timer_start(&p.lease_timer, lease_timer_cb, every, every);
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    uv_poll_init(p.loop, &p.in, 0);
    p.in.data = &p;
    uv_poll_start(&p.in, UV_READABLE | UV_DISCONNECT, stdin_cb);
    uv_signal_init(p.loop, &p.sigterm);
    p.sigterm.data = &p;
    uv_signal_start(&p.sigterm, sigterm_cb, SIGTERM);
    out(&p, "listening name=%s pid=%d", o.name, (int)getpid());
    uv_run(p.loop, UV_RUN_DEFAULT);
    uv_loop_close(p.loop);
    return 0;

usage:
    fprintf(stderr, "usage: ipc-server-probe --name IPC --node-id N [--peer-id P] [--node-name S]"
                    " [--peer-name S] [--ping MS] [--misses N] [--allow-uid U]... "
                    "[--allow-gid G]... [--auto-lease MS] [--cmd-timeout MS]\n");
    return 2;
}
