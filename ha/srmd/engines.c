/*
 * srmd and its engines: the local IPC server (ha/ipc), what the engines serve, the node's
 * critical services (services the engines register as critical, and processes srmd
 * supervises with start / stop / check commands), and stopping or starting them when the
 * state machine says so.
 *
 * What the core is told about critical services:
 *   STOPPED   srmd stopped them (manual failover, fence) and has not been asked to start;
 *   STARTING  being started (a start command or START_SERVICES to the engines under way);
 *   START_FAILED a start failed (command exit status, or an engine refused);
 *   UP        every critical service runs (every expected engine service registered and
 *             up, every supervised one passing its check);
 *   DOWN      one is down, since when (the core applies the critical service down delay).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srm_error.h"
#include "srm_log.h"
#include "srmd_internal.h"

static uint64_t now_ms(struct srmd *d)
{
    return uv_now(d->loop);
}

/* ---- the view the core gets -------------------------------------------------------------- */

static void services_eval(struct srmd *d)
{
    struct srm_ipc_service_info svcs[64];
    size_t n = 0;
    enum srm_core_svc state = SRM_CORE_SVC_UP;
    uint64_t since = UINT64_MAX, now = now_ms(d);
    uint16_t up = 0, total = 0;
    bool start_failed = false, any_unknown = false;

    if (d->ipc && srm_ipc_server_services(d->ipc, svcs, 64, &n) == 0) {
        if (n > 64)
            n = 64;
        for (size_t i = 0; i < n; i++) {
            if (!svcs[i].critical)
                continue;
            total++;
            if (svcs[i].up) {
                up++;
            } else {
                uint64_t t = svcs[i].since_ms ? svcs[i].since_ms : now;
                if (t < since)
                    since = t;
            }
        }
    }
    for (size_t i = 0; i < d->conf->n_services; i++) {
        struct srmd_proc *p = &d->procs[i];
        if (!p->conf->critical)
            continue;
        total++;
        if (!p->known)
            any_unknown = true;
        else if (p->up)
            up++;
        else if (p->down_since < since)
            since = p->down_since;
        start_failed |= p->start_failed;
    }
    /* Engines that have not registered yet count as down from srmd's start. */
    if (total == 0 && d->conf->n_services == 0 && !d->ipc_seen_services)
        since = d->started_ms;

    /* A start that has not brought every service up within the critical service down delay
     * has failed to: from then on the services are down (since the start). */
    if (d->services_starting &&
        now - d->services_start_at > (uint64_t)d->params.critical_service_down_delay * 1000) {
        d->services_starting = false;
        if (since == UINT64_MAX || since > d->services_start_at)
            since = d->services_start_at;
    }
    if (d->services_stopped)
        state = SRM_CORE_SVC_STOPPED;
    else if (start_failed || d->engine_start_failed)
        state = SRM_CORE_SVC_START_FAILED;
    else if (since == UINT64_MAX && !any_unknown)
        state = SRM_CORE_SVC_UP;
    else if (d->services_starting || any_unknown)
        state = SRM_CORE_SVC_STARTING;
    else
        state = SRM_CORE_SVC_DOWN;
    if (state == SRM_CORE_SVC_UP)
        d->services_starting = false;

    bool changed = state != d->svc_state || up != d->svc_up || total != d->svc_total ||
                   (state == SRM_CORE_SVC_DOWN && since != d->svc_down_since);
    d->svc_state = state;
    d->svc_down_since = since == UINT64_MAX ? now : since;
    d->svc_up = up;
    d->svc_total = total;
    if (changed && d->core) {
        srm_core_services(d->core, now, state, d->svc_down_since);
        srmd_core_kick(d);
    }
}

/* ---- supervised processes -----------------------------------------------------------------------
 */

static void spawn_exit_cb(uv_process_t *proc, int64_t status, int signal);

static int spawn_sh(struct srmd *d, uv_process_t *proc, const char *cmd, void *data)
{
    char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .exit_cb = spawn_exit_cb,
        .file = "/bin/sh",
        .args = args,
        .stdio_count = 3,
        .stdio = stdio,
    };
    proc->data = data;
    return uv_spawn(d->loop, proc, &o);
}

struct run_ctx {
    uv_process_t proc;
    struct srmd_proc *p;
    bool is_start;
};

static void close_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void spawn_exit_cb(uv_process_t *proc, int64_t status, int signal)
{
    struct srmd_proc *p = proc->data;

    if (proc == &p->check) {
        /* a check */
        bool up = status == 0 && signal == 0;
        uint64_t now = now_ms(p->d);
        p->checking = false;
        if (!up && (p->up || !p->known))
            p->down_since = now;
        if (up && !p->up)
            p->start_failed = false;
        if (up != p->up || !p->known)
            srm_log_notice("%sservice %s %s", up ? "+" : "-", p->conf->name,
                           up ? "running" : "not running");
        p->up = up;
        p->known = true;
        uv_close((uv_handle_t *)proc, NULL);
        services_eval(p->d);
        return;
    }
    /* a start or stop command */
    struct run_ctx *ctx = (struct run_ctx *)proc;
    if (ctx->is_start && (status != 0 || signal != 0)) {
        srm_log_error("starting service %s failed (exit %" PRId64 ", signal %d)",
                      ctx->p->conf->name, status, signal);
        ctx->p->start_failed = true;
        services_eval(ctx->p->d);
    }
    proc->data = ctx;
    uv_close((uv_handle_t *)proc, close_free_cb);
}

static void run_cmd(struct srmd_proc *p, const char *cmd, bool is_start)
{
    struct run_ctx *ctx;

    if (!cmd)
        return;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return;
    ctx->p = p;
    ctx->is_start = is_start;
    if (spawn_sh(p->d, &ctx->proc, cmd, p) < 0) {
        srm_log_error("cannot run \"%s\"", cmd);
        if (is_start)
            p->start_failed = true;
        free(ctx);
    }
}

static void check_timer_cb(uv_timer_t *t)
{
    struct srmd_proc *p = t->data;

    if (p->checking || p->d->stopping)
        return;
    if (spawn_sh(p->d, &p->check, p->conf->check, p) == 0)
        p->checking = true;
}

static void eval_timer_cb(uv_timer_t *t)
{
    services_eval(t->data);
}

int srmd_services_start(struct srmd *d)
{
    d->started_ms = now_ms(d);
    d->services_start_at = d->started_ms;
    d->svc_state = SRM_CORE_SVC_STARTING;
    d->services_starting = true;
    uv_timer_init(d->loop, &d->svc_timer);
    d->svc_timer.data = d;
    uv_timer_start(&d->svc_timer, eval_timer_cb, 1000, 1000);
    if (d->conf->n_services == 0)
        return 0;
    d->procs = calloc(d->conf->n_services, sizeof(*d->procs));
    if (!d->procs)
        return -ENOMEM;
    for (size_t i = 0; i < d->conf->n_services; i++) {
        struct srmd_proc *p = &d->procs[i];
        p->conf = &d->conf->services[i];
        p->d = d;
        uv_timer_init(d->loop, &p->timer);
        p->timer.data = p;
        uv_timer_start(&p->timer, check_timer_cb, 0, p->conf->check_interval_ms);
    }
    return 0;
}

void srmd_services_stop(struct srmd *d)
{
    (void)d; /* handles are closed with the loop; the processes keep running */
}

/* ---- stop / start on the machine's request
 * -------------------------------------------------------- */

static void for_each_client(struct srmd *d, bool start)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;

    if (!d->ipc || srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return;
    for (size_t i = 0; i < n && i < SRMD_CLIENTS_MAX; i++) {
        uint32_t cmd;
        if (!clients[i].hello)
            continue;
        if (start)
            srm_ipc_server_start_services(d->ipc, clients[i].id, d->conf->drain_ms, &cmd);
        else
            srm_ipc_server_stop_services(d->ipc, clients[i].id, d->conf->drain_ms, &cmd);
    }
}

void srmd_services_command(struct srmd *d, bool start)
{
    d->services_stopped = !start;
    d->services_starting = start;
    d->engine_start_failed = false;
    d->services_start_at = now_ms(d);
    for (size_t i = 0; i < d->conf->n_services; i++) {
        struct srmd_proc *p = &d->procs[i];
        p->start_failed = false;
        run_cmd(p, start ? p->conf->start : p->conf->stop, start);
    }
    for_each_client(d, start);
    /* Stopped services serve nobody. */
    if (!start && d->core)
        srm_core_engines_stopped(d->core, now_ms(d), SRM_FSM_PART_ALL);
    services_eval(d);
}

/* ---- the IPC server -----------------------------------------------------------------------------
 */

static unsigned part_bit(struct srmd *d, uint32_t part)
{
    if (part == d->self_part)
        return SRM_FSM_PART_OWN;
    if (part == d->peer_part)
        return SRM_FSM_PART_PEER;
    return 0;
}

unsigned srmd_engines_serving(struct srmd *d)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;
    unsigned serving = 0;

    if (!d->ipc || srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return 0;
    for (size_t i = 0; i < n && i < SRMD_CLIENTS_MAX; i++) {
        if (!clients[i].have_serving || clients[i].serving.fenced ||
            clients[i].serving.lease_left_ms == 0)
            continue;
        for (uint16_t g = 0; g < clients[i].serving.n; g++)
            if (clients[i].serving.grants[g].state == SRM_IPC_GRANT_SERVING)
                serving |= part_bit(d, clients[i].serving.grants[g].part);
    }
    return serving;
}

static void connected_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c, void *data)
{
    struct srmd *d = data;

    (void)s;
    srm_log_notice("+engine %s (pid %d) connected", c->name, (int)c->pid);
    /* A new engine serves what this node serves, and starts or stops with the services. */
    if (!d->lease_pending)
        srm_ipc_server_lease(d->ipc, c->id, d->conf->lease_ms);
    if (d->services_stopped) {
        uint32_t cmd;
        srm_ipc_server_stop_services(d->ipc, c->id, d->conf->drain_ms, &cmd);
    }
    if (d->core) {
        unsigned serving = srm_core_serving(d->core);
        for (unsigned p = SRM_FSM_PART_OWN; p <= SRM_FSM_PART_PEER; p <<= 1) {
            uint32_t id = p == SRM_FSM_PART_OWN ? d->self_part : d->peer_part, cmd;
            struct srm_ds_txn *txn;
            struct srm_ds_owner o = {0};
            if (!(serving & p))
                continue;
            if (srm_ds_txn_begin(d->ds, SRM_DS_TXN_RDONLY, &txn) == 0) {
                srm_ds_owner_get(txn, id, &o);
                srm_ds_txn_abort(txn);
            }
            if (o.epoch)
                srm_ipc_server_serve(d->ipc, c->id, id, o.epoch, d->conf->lease_ms,
                                     p == SRM_FSM_PART_OWN ? d->conf->node_name
                                                           : d->conf->peer_name,
                                     d->conf->drain_ms, &cmd);
        }
    }
}

static void disconnected_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                            int reason, void *data)
{
    struct srmd *d = data;

    (void)s;
    srm_log_warn("-engine %s (pid %d) gone: %s", c->name, (int)c->pid,
                 reason ? srm_strerror(reason) : "closed");
    /* What only it served is served no more. */
    if (d->core) {
        unsigned gone = srm_core_serving(d->core) & ~srmd_engines_serving(d);
        if (gone && srmd_engines_count(d) == 0) {
            srm_core_engines_stopped(d->core, now_ms(d), gone);
            srmd_core_kick(d);
        }
    }
    services_eval(d);
}

static void refused_cb(struct srm_ipc_server *s, pid_t pid, uid_t uid, gid_t gid, int err,
                       void *data)
{
    (void)s;
    (void)data;
    srm_log_warn("refused a local IPC client (pid %d, uid %u, gid %u): %s", (int)pid, (unsigned)uid,
                 (unsigned)gid, srm_strerror(err));
}

static void service_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *svc, void *data)
{
    struct srmd *d = data;

    (void)s;
    d->ipc_seen_services = true;
    srm_log_info("service %s registered (%s)", svc->name,
                 svc->critical ? "critical" : "not critical");
    services_eval(d);
}

static void health_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *svc, void *data)
{
    struct srmd *d = data;

    (void)s;
    srm_log_notice("%sservice %s %s%s%s", svc->up ? "+" : "-", svc->name, svc->up ? "up" : "down",
                   svc->detail[0] ? ": " : "", svc->detail);
    services_eval(d);
}

static void ack_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c, uint32_t cmd_id,
                   enum srm_ipc_type cmd, int result, const char *detail, void *data)
{
    struct srmd *d = data;

    (void)s;
    if (result < 0 && cmd == SRM_IPC_START_SERVICES) {
        srm_log_error("engine %s could not start its services: %s%s%s", c->name,
                      srm_strerror(result), detail[0] ? ": " : "", detail);
        d->engine_start_failed = true;
        services_eval(d);
    }
    srmd_ipc_ack(d, cmd_id, result);
}

static void counters_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                        const struct srm_ipc_counters *k, void *data)
{
    struct srmd *d = data;
    uint64_t a = 0, in = 0, cl = 0, ci = 0;

    (void)s;
    (void)c;
    for (uint16_t i = 0; i < k->n_parts; i++) {
        a += k->parts[i].active;
        in += k->parts[i].inactive;
        cl += k->parts[i].client;
        ci += k->parts[i].client_inactive;
    }
    d->counters.active = (uint32_t)a;
    d->counters.inactive = (uint32_t)in;
    d->counters.client = (uint32_t)cl;
    d->counters.client_inactive = (uint32_t)ci;
}

static void stale_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                     const struct srm_ipc_stale *st, void *data)
{
    (void)s;
    (void)st;
    (void)data;
    srm_log_warn("engine %s wrote to a partition it no longer owns (refused by the datastore)",
                 c->name);
}

static void serving_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *c,
                       const struct srm_ipc_serving *sv, void *data)
{
    struct srmd *d = data;

    (void)s;
    (void)c;
    (void)sv;
    if (!d->core)
        return;
    /* Engines that stopped by themselves (lease, quorum fence) serve nothing now. */
    unsigned gone = srm_core_serving(d->core) & ~srmd_engines_serving(d);
    if (gone && !srm_core_acquiring(d->core)) {
        srm_log_warn("engines stopped serving partitions %u by themselves", gone);
        srm_core_engines_stopped(d->core, now_ms(d), gone);
        srmd_core_kick(d);
    }
}

size_t srmd_engines_count(struct srmd *d)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0, k = 0;

    if (!d->ipc || srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return 0;
    for (size_t i = 0; i < n && i < SRMD_CLIENTS_MAX; i++)
        k += clients[i].hello;
    return k;
}

void srmd_ipc_disconnect_cmd(struct srmd *d, uint32_t cmd_id)
{
    (void)cmd_id;
    /* The command's client is not kept per command: disconnect every engine that has not
     * drained (all of them), which stops them serving. */
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;
    if (!d->ipc || srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return;
    for (size_t i = 0; i < n && i < SRMD_CLIENTS_MAX; i++)
        srm_ipc_server_disconnect(d->ipc, clients[i].id);
}

int srmd_ipc_start(struct srmd *d, char *err, size_t errlen)
{
    uid_t uids[SRMD_UIDS_MAX];
    gid_t gids[SRMD_UIDS_MAX];
    int r;

    for (size_t i = 0; i < d->conf->n_ipc_uids; i++)
        uids[i] = d->conf->ipc_uids[i];
    for (size_t i = 0; i < d->conf->n_ipc_gids; i++)
        gids[i] = d->conf->ipc_gids[i];
    struct srm_ipc_server_options o = {
        .name = d->conf->ipc_name,
        .allow_uids = uids,
        .n_allow_uids = d->conf->n_ipc_uids,
        .allow_gids = gids,
        .n_allow_gids = d->conf->n_ipc_gids,
        .node_id = d->conf->node_id,
        .peer_node_id = d->conf->peer_id,
        .node_name = d->conf->node_name,
        .peer_name = d->conf->peer_name,
        .connected_cb = connected_cb,
        .disconnected_cb = disconnected_cb,
        .refused_cb = refused_cb,
        .service_cb = service_cb,
        .health_cb = health_cb,
        .ack_cb = ack_cb,
        .counters_cb = counters_cb,
        .stale_cb = stale_cb,
        .serving_cb = serving_cb,
        .data = d,
    };
    r = srm_ipc_server_new(d->loop, &o, &d->ipc);
    if (r < 0)
        snprintf(err, errlen, "local IPC \"%s\": %s", d->conf->ipc_name, srm_strerror(r));
    return r;
}
