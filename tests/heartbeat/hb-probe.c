/*
 * hb-probe: one member of a heartbeat group, for the integration tests and for trying the
 * heartbeat module by hand on a cluster (scripts/cluster exec n1 hb-probe --group srm.g1
 * --peer 2). Prints one line per event on stdout:
 *
 *   hb-probe t=<monotonic ms> wall=<unix time, s.ms> node=<id> event=<name> [key=value...]
 *
 * events: start, connected (fds changed), disconnected, quorum, peer_back, peer_lost,
 * keepalive (only the first of each incarnation unless --verbose), error, announce, exit.
 *
 * Signals: SIGUSR1 announces a restart and exits 0; SIGUSR2 sends a new payload at once;
 * SIGTERM and SIGINT leave the group and exit 0.
 */
#include "srm_error.h"
#include "srm_hb.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct probe {
    uint32_t node_id;
    bool verbose;
    uint64_t last_ka_incarnation;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void emit(struct srm_hb *hb, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emit(struct srm_hb *hb, const char *event, const char *fmt, ...)
{
    struct timespec wall;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &wall);
    printf("hb-probe t=%" PRIu64 " wall=%lld.%03ld node=%" PRIu32 " event=%s", mono_ms(),
           (long long)wall.tv_sec, wall.tv_nsec / 1000000, hb ? srm_hb_node_id(hb) : 0, event);
    if (fmt && *fmt) {
        putchar(' ');
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
}

static void keepalive_cb(struct srm_hb *hb, const struct srm_hb_keepalive *ka, void *data)
{
    struct probe *p = data;

    if (!p->verbose && ka->incarnation == p->last_ka_incarnation)
        return;
    p->last_ka_incarnation = ka->incarnation;
    emit(hb, "keepalive",
         "incarnation=%016" PRIx64 " seq=%" PRIu64 " flags=%" PRIu32 " pid=%" PRIu32
         " payload=%.*s",
         ka->incarnation, ka->seq, ka->flags, ka->pid, (int)ka->len,
         ka->payload ? (const char *)ka->payload : "");
}

static void peer_back_cb(struct srm_hb *hb, const struct srm_hb_peer_back *b, void *data)
{
    (void)data;
    emit(hb, "peer_back",
         "kind=%s incarnation=%016" PRIx64 " previous=%016" PRIx64 " was_lost=%d pid=%" PRIu32,
         srm_hb_back_name(b->kind), b->ka->incarnation, b->previous_incarnation, b->was_lost,
         b->ka->pid);
}

static void peer_lost_cb(struct srm_hb *hb, const struct srm_hb_peer_lost *l, void *data)
{
    (void)data;
    emit(hb, "peer_lost", "kind=%s during_init=%d quorate=%d incarnation=%016" PRIx64,
         srm_hb_loss_name(l->kind), l->during_init, l->quorate, l->incarnation);
}

static void quorum_cb(struct srm_hb *hb, bool quorate, void *data)
{
    (void)data;
    emit(hb, "quorum", "quorate=%d", quorate);
}

static void error_cb(struct srm_hb *hb, int err, void *data)
{
    (void)data;
    emit(hb, "error", "err=%s msg=\"%s\"", srm_errname(err), srm_strerror(err));
}

static void fds_cb(struct srm_hb *hb, const int *fds, size_t nfds, void *data)
{
    (void)fds;
    (void)data;
    emit(hb, nfds ? "connected" : "disconnected", "fds=%zu", nfds);
}

static void usage(void)
{
    fprintf(stderr, "usage: hb-probe --group NAME --peer NODEID [--node-id ID] [--interval MS]\n"
                    "                [--timeout MS] [--init-timeout MS] [--reconnect MS]\n"
                    "                [--payload TEXT] [--verbose]\n");
    exit(2);
}

static uint32_t num(const char *s)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        usage();
    return (uint32_t)v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"group", required_argument, NULL, 'g'},     {"peer", required_argument, NULL, 'p'},
        {"node-id", required_argument, NULL, 'n'},   {"interval", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'},   {"init-timeout", required_argument, NULL, 'I'},
        {"reconnect", required_argument, NULL, 'r'}, {"payload", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},         {NULL, 0, NULL, 0},
    };
    struct probe probe = {0};
    struct srm_hb_callbacks cbs = {
        .keepalive_cb = keepalive_cb,
        .peer_back_cb = peer_back_cb,
        .peer_lost_cb = peer_lost_cb,
        .quorum_cb = quorum_cb,
        .error_cb = error_cb,
        .fds_cb = fds_cb,
    };
    struct srm_hb_options opts = {.callbacks = &cbs, .data = &probe};
    const char *payload = "hello";
    char buf[256];
    unsigned changes = 0;
    struct srm_hb *hb;
    sigset_t mask;
    int c, r, sfd;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            opts.group = optarg;
            break;
        case 'p':
            opts.peer_node_id = num(optarg);
            break;
        case 'n':
            opts.node_id = num(optarg);
            break;
        case 'i':
            opts.keepalive_interval_ms = num(optarg);
            break;
        case 't':
            opts.keepalive_timeout_ms = num(optarg);
            break;
        case 'I':
            opts.init_timeout_ms = num(optarg);
            break;
        case 'r':
            opts.reconnect_interval_ms = num(optarg);
            break;
        case 'P':
            payload = optarg;
            break;
        case 'v':
            probe.verbose = true;
            break;
        default:
            usage();
        }
    }
    if (!opts.group || optind != argc)
        usage();

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("hb-probe: signalfd");
        return 1;
    }

    r = srm_hb_new(&opts, &hb);
    if (r < 0) {
        fprintf(stderr, "hb-probe: %s\n", srm_strerror(r));
        return 2;
    }
    srm_hb_send(hb, 0, payload, strlen(payload));
    emit(hb, "start", "incarnation=%016" PRIx64 " pid=%d group=%s peer=%" PRIu32,
         srm_hb_incarnation(hb), (int)getpid(), opts.group, opts.peer_node_id);
    r = srm_hb_start(hb, mono_ms());
    if (r < 0)
        emit(hb, "error", "err=%s msg=\"%s\" (start; retrying)", srm_errname(r), srm_strerror(r));

    for (;;) {
        struct pollfd pfd[1 + SRM_HB_FDS_MAX];
        int fds[SRM_HB_FDS_MAX];
        int n;
        uint64_t next, now = mono_ms();
        int timeout;

        srm_hb_tick(hb, now, &next);
        now = mono_ms();
        timeout = next > now ? (int)(next - now) : 0;
        pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        n = srm_hb_fds(hb, fds);
        for (int i = 0; i < n; i++)
            pfd[1 + i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        r = poll(pfd, (nfds_t)(1 + n), timeout);
        if (r < 0 && errno != EINTR) {
            perror("hb-probe: poll");
            return 1;
        }
        for (int i = 0; r > 0 && i < n; i++) {
            if (pfd[1 + i].revents)
                srm_hb_dispatch(hb, pfd[1 + i].fd, mono_ms());
            /* A dispatch that lost the connection closed these descriptors: stop. */
            if (srm_hb_fds(hb, fds) != n)
                break;
        }
        if (r > 0 && (pfd[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
                continue;
            if (si.ssi_signo == SIGUSR2) {
                snprintf(buf, sizeof(buf), "%s-%u", payload, ++changes);
                r = srm_hb_send(hb, mono_ms(), buf, strlen(buf));
                emit(hb, "send", "payload=%s r=%d", buf, r);
            } else if (si.ssi_signo == SIGUSR1) {
                r = srm_hb_announce_restart(hb, mono_ms());
                emit(hb, "announce", "r=%s", r < 0 ? srm_errname(r) : "0");
                srm_hb_free(hb);
                emit(NULL, "exit", "reason=restart");
                return 0;
            } else {
                srm_hb_free(hb);
                emit(NULL, "exit", "reason=signal");
                return 0;
            }
        }
    }
}
