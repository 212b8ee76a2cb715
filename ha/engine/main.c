/*
 * srm-engine: the reference protocol engine. A small daemon on libsrm that registers two
 * critical services, serves the partitions srmd grants it (logins, presence, SIP
 * registrations, dual-connection sessions written to the node's datastore under the granted
 * epoch) and exposes its counters. ha/engine/README.md documents it.
 *
 *   srm-engine [OPTIONS]                     run
 *   srm-engine ctl (--dir DIR | --control PATH) COMMAND [ARGS...]
 *                                            send a control command, print the answer
 */
#include "internal.h"
#include "srm_log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t engine_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: srm-engine [OPTIONS]\n"
            "       srm-engine ctl (--dir DIR | --control PATH) COMMAND [ARGS...]\n"
            "\n"
            "  --node NAME            this node's name (default $SRM_NODE)\n"
            "  --node-id N            this node's id (default $SRM_NODE_ID, else srmd's)\n"
            "  --dir DIR              run directory: control socket and status file\n"
            "  --data-dir DIR         the node's datastore (default $SRM_NODE_DIR/data)\n"
            "  --ipc NAME             srmd's IPC name (default $SRM_IPC_NAME, else srmd)\n"
            "  --users-from-file FILE users as \"NAME PARTITION\" lines, instead of PostgreSQL\n"
            "  --pg CONNINFO          configuration database (default: the PG* environment)\n"
            "  --login-rate N         sessions opened per second (default 5000)\n"
            "  --activate-rate N      sessions activated per second after a takeover "
            "(default 20000)\n"
            "  --presence-rate N      presence updates per second (default 500)\n"
            "  --sip-expiry S         SIP registration expiry in seconds (default 3600)\n"
            "  --no-dual              keep no inactive sessions for the peer's users\n"
            "  --status-file PATH     rewritten every second (default DIR/status.json)\n"
            "  --quorum off|corosync  the quorum self-fence (default $SRM_QUORUM, else corosync)\n"
            "  --peer-node-id N       the peer the fence watches (default: srmd's)\n"
            "  --sync none|durable    datastore commits (default none; use srmd's mode)\n"
            "  --log-level LEVEL      error, warn, notice, info, debug (default notice)\n"
            "\n"
            "control commands: status | status-text | service-down NAME [DETAIL] |\n"
            "                  service-up NAME | fail-next-start | quit\n");
}

/* ------------------------------------------------------------------------ ctl */

static int ctl_main(int argc, char **argv)
{
    const char *dir = NULL, *path = NULL;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char line[1024] = "", buf[65536];
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t off = 0;
    int i, fd, ok;
    ssize_t n;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            break;
    }
    if ((!dir && !path) || i >= argc) {
        usage(stderr);
        return 2;
    }
    if (!path) {
        snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
        path = sock_path;
    }
    for (; i < argc; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "", argv[i]);
    }
    if (strlen(path) >= sizeof(a.sun_path)) {
        fprintf(stderr, "srm-engine ctl: socket path too long: %s\n", path);
        return 1;
    }
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "srm-engine ctl: cannot connect to %s: %s (is srm-engine running?)\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    strcat(line, "\n");
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        fprintf(stderr, "srm-engine ctl: write: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    while (off < sizeof(buf) - 1 && (n = read(fd, buf + off, sizeof(buf) - 1 - off)) > 0)
        off += (size_t)n;
    close(fd);
    buf[off] = '\0';
    ok = off > 0 && strncmp(buf, "error", 5) != 0;
    fputs(buf, ok ? stdout : stderr);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------ loop */

static void tick_cb(uv_timer_t *t)
{
    engine_tick(t->data);
}

static void status_cb(uv_timer_t *t)
{
    struct engine *e = t->data;
    uint64_t now = engine_now_ms();

    if (e->last_status_ms) {
        uint64_t dt = now - e->last_status_ms;
        e->writes_per_s = dt ? (e->writes_total - e->writes_last) * 1000u / dt : 0;
    }
    e->writes_last = e->writes_total;
    e->last_status_ms = now;
    engine_status_write(e);
    engine_counters_send(e);
}

static void closing_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void signal_cb(uv_signal_t *s, int sig)
{
    struct engine *e = s->data;

    if (e->stopping)
        return;
    e->stopping = true;
    srm_log_notice("signal %d: stopping (no more writes; srmd is told nothing is served)", sig);
    engine_shutdown_serving(e);
    uv_timer_stop(&e->tick);
    uv_timer_stop(&e->status_timer);
    engine_status_write(e);
    engine_control_stop(e);
    uv_poll_stop(&e->client_poll);
    srm_client_free(e->client);
    e->client = NULL;
    uv_walk(e->loop, closing_walk_cb, NULL);
}

static uint32_t node_id_from(const char *s)
{
    char *end;
    unsigned long v;

    if (!s || !*s)
        return 0;
    v = strtoul(s, &end, 10);
    return *end == '\0' && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static int parse_uint(const char *s, unsigned *ret)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 100000000ul)
        return -EINVAL;
    *ret = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    static struct engine e;
    static char data_dir[4096], status_file[4096], control_path[4096], acked_file[4096];
    enum srm_log_level level = SRM_LOG_NOTICE;
    const char *env;
    int r;

    enum {
        OPT_NODE = 256,
        OPT_NODE_ID,
        OPT_DIR,
        OPT_DATA_DIR,
        OPT_IPC,
        OPT_USERS,
        OPT_PG,
        OPT_LOGIN,
        OPT_ACTIVATE,
        OPT_PRESENCE,
        OPT_SIP,
        OPT_NO_DUAL,
        OPT_STATUS,
        OPT_QUORUM,
        OPT_PEER,
        OPT_SYNC,
        OPT_LOG,
        OPT_HELP,
    };
    static const struct option longopts[] = {
        {"node", required_argument, NULL, OPT_NODE},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"dir", required_argument, NULL, OPT_DIR},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"ipc", required_argument, NULL, OPT_IPC},
        {"users-from-file", required_argument, NULL, OPT_USERS},
        {"pg", required_argument, NULL, OPT_PG},
        {"login-rate", required_argument, NULL, OPT_LOGIN},
        {"activate-rate", required_argument, NULL, OPT_ACTIVATE},
        {"presence-rate", required_argument, NULL, OPT_PRESENCE},
        {"sip-expiry", required_argument, NULL, OPT_SIP},
        {"no-dual", no_argument, NULL, OPT_NO_DUAL},
        {"status-file", required_argument, NULL, OPT_STATUS},
        {"quorum", required_argument, NULL, OPT_QUORUM},
        {"peer-node-id", required_argument, NULL, OPT_PEER},
        {"sync", required_argument, NULL, OPT_SYNC},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 1, argv + 1);

    e.o = (struct engine_opts){
        .node_name = getenv("SRM_NODE"),
        .node_id = node_id_from(getenv("SRM_NODE_ID")),
        .login_rate = 5000,
        .activate_rate = 20000,
        .presence_rate = 500,
        .sip_expiry_s = 3600,
        .dual = true,
        .quorum = SRM_QUORUM_DEFAULT,
        .sync = SRM_DS_SYNC_NONE,
    };
    env = getenv("SRM_NODE_DIR");
    if (env && *env) {
        snprintf(data_dir, sizeof(data_dir), "%s/data", env);
        e.o.data_dir = data_dir;
    }
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case OPT_NODE:
            e.o.node_name = optarg;
            break;
        case OPT_NODE_ID:
            e.o.node_id = node_id_from(optarg);
            if (!e.o.node_id)
                goto bad;
            break;
        case OPT_DIR:
            e.o.run_dir = optarg;
            break;
        case OPT_DATA_DIR:
            e.o.data_dir = optarg;
            break;
        case OPT_IPC:
            e.o.ipc_name = optarg;
            break;
        case OPT_USERS:
            e.o.users_file = optarg;
            break;
        case OPT_PG:
            e.o.pg = optarg;
            break;
        case OPT_LOGIN:
            if (parse_uint(optarg, &e.o.login_rate) < 0)
                goto bad;
            break;
        case OPT_ACTIVATE:
            if (parse_uint(optarg, &e.o.activate_rate) < 0)
                goto bad;
            break;
        case OPT_PRESENCE:
            if (parse_uint(optarg, &e.o.presence_rate) < 0)
                goto bad;
            break;
        case OPT_SIP:
            if (parse_uint(optarg, &e.o.sip_expiry_s) < 0 || e.o.sip_expiry_s < 10)
                goto bad;
            break;
        case OPT_NO_DUAL:
            e.o.dual = false;
            break;
        case OPT_STATUS:
            e.o.status_file = optarg;
            break;
        case OPT_QUORUM:
            if (strcmp(optarg, "off") == 0)
                e.o.quorum = SRM_QUORUM_OFF;
            else if (strcmp(optarg, "corosync") == 0)
                e.o.quorum = SRM_QUORUM_COROSYNC;
            else
                goto bad;
            break;
        case OPT_PEER:
            e.o.peer_node_id = node_id_from(optarg);
            break;
        case OPT_SYNC:
            if (strcmp(optarg, "none") == 0)
                e.o.sync = SRM_DS_SYNC_NONE;
            else if (strcmp(optarg, "durable") == 0)
                e.o.sync = SRM_DS_SYNC_DURABLE;
            else
                goto bad;
            break;
        case OPT_LOG:
            if (srm_log_parse_level(optarg, &level) < 0)
                goto bad;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        goto bad;
    srm_log_set_level(level);
    if (e.o.run_dir) {
        if (mkdir(e.o.run_dir, 0750) < 0 && errno != EEXIST) {
            fprintf(stderr, "srm-engine: cannot create %s: %s\n", e.o.run_dir, strerror(errno));
            return 1;
        }
        snprintf(control_path, sizeof(control_path), "%s/control.sock", e.o.run_dir);
        e.o.control_path = control_path;
        if (!e.o.status_file) {
            snprintf(status_file, sizeof(status_file), "%s/status.json", e.o.run_dir);
            e.o.status_file = status_file;
        }
        snprintf(acked_file, sizeof(acked_file), "%s/acked.log", e.o.run_dir);
        e.o.acked_file = acked_file;
        e.acked = fopen(acked_file, "a");
        if (!e.acked) {
            fprintf(stderr, "srm-engine: cannot open %s: %s\n", acked_file, strerror(errno));
            return 1;
        }
    }
    if (!e.o.data_dir) {
        fprintf(stderr, "srm-engine: no datastore: give --data-dir (or set SRM_NODE_DIR)\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    e.loop = uv_default_loop();
    e.node_id = e.o.node_id;
    r = srm_rng_init(&e.rng);
    if (r < 0)
        srm_rng_seed(&e.rng, (uint64_t)getpid() ^ engine_now_ms());
    engine_datastore_open(&e);
    r = engine_client_start(&e);
    if (r < 0) {
        fprintf(stderr, "srm-engine: cannot start the srmd client: %s\n", srm_strerror(r));
        return 1;
    }
    r = engine_control_start(&e);
    if (r < 0) {
        fprintf(stderr, "srm-engine: control socket %s: %s\n", e.o.control_path, srm_strerror(r));
        return 1;
    }
    /* With a users file, the node's own users can load before srmd is heard. */
    if (e.o.users_file && e.node_id) {
        struct part *own = engine_part(&e, e.node_id, true);
        if (own) {
            if (e.o.node_name)
                snprintf(own->home, sizeof(own->home), "%s", e.o.node_name);
            engine_load(&e, own);
        }
    }
    uv_timer_init(e.loop, &e.tick);
    e.tick.data = &e;
    uv_timer_start(&e.tick, tick_cb, ENGINE_TICK_MS, ENGINE_TICK_MS);
    uv_timer_init(e.loop, &e.status_timer);
    e.status_timer.data = &e;
    uv_timer_start(&e.status_timer, status_cb, 1000, 1000);
    uv_signal_init(e.loop, &e.sigterm);
    uv_signal_init(e.loop, &e.sigint);
    e.sigterm.data = e.sigint.data = &e;
    uv_signal_start(&e.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&e.sigint, signal_cb, SIGINT);
    srm_log_notice("srm-engine %d started: node %s (%u), datastore %s, users from %s, login "
                   "rate %u/s",
                   (int)getpid(), e.o.node_name ? e.o.node_name : "?", e.node_id, e.o.data_dir,
                   e.o.users_file ? e.o.users_file : "PostgreSQL", e.o.login_rate);

    uv_run(e.loop, UV_RUN_DEFAULT);
    uv_loop_close(e.loop);
    srm_ds_env_close(e.env);
    if (e.acked)
        fclose(e.acked);
    for (size_t i = 0; i < e.n_parts; i++) {
        free(e.parts[i]->users);
        free(e.parts[i]->arena);
        free(e.parts[i]);
    }
    srm_log_notice("srm-engine stopped");
    return 0;

bad:
    fprintf(stderr, "srm-engine: invalid option or value near '%s'\n",
            optind > 0 && optind <= argc ? argv[optind - 1] : "?");
    usage(stderr);
    return 2;
}
