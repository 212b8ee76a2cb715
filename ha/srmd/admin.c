/*
 * srmd's admin API (ha/admin): the backend the server calls (this node's live view, admin
 * operations through the node core, the configuration snapshot, metrics), and the metrics
 * srmd keeps up to date.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "srm_admin.h"
#include "srm_error.h"
#include "srm_log.h"
#include "srmd_internal.h"

#define VIEW_SERVICES_MAX 32

struct srmd_admin {
    struct srm_admin_server *server;
    struct srm_admin_metrics *metrics;
    struct srm_admin_std_metrics std;
    struct srm_admin_service services[VIEW_SERVICES_MAX];
    char *names[VIEW_SERVICES_MAX];
    int64_t state_since_us;
};

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void free_names(struct srmd_admin *a)
{
    for (size_t i = 0; i < VIEW_SERVICES_MAX; i++) {
        free(a->names[i]);
        a->names[i] = NULL;
    }
}

/* Replication lag of what this node sends (the partitions it owns). */
static void lag(struct srmd *d, uint64_t *entries, uint64_t *bytes, uint64_t *ms)
{
    uint32_t parts[2] = {d->self_part, d->peer_part};

    *entries = *bytes = *ms = 0;
    for (int i = 0; i < 2 && d->repl; i++) {
        struct srm_repl_part_stats st;
        if (srm_repl_partition_stats(d->repl, parts[i], &st) < 0 || st.role != SRM_REPL_ROLE_SOURCE)
            continue;
        *entries += st.lag_entries;
        *bytes += st.lag_bytes;
        if (st.lag_ms > *ms)
            *ms = st.lag_ms;
    }
}

static size_t collect_services(struct srmd *d, struct srmd_admin *a)
{
    struct srm_ipc_service_info svcs[VIEW_SERVICES_MAX];
    size_t n = 0, k = 0;

    free_names(a);
    if (d->ipc && srm_ipc_server_services(d->ipc, svcs, VIEW_SERVICES_MAX, &n) == 0)
        for (size_t i = 0; i < n && k < VIEW_SERVICES_MAX; i++, k++) {
            a->names[k] = strdup(svcs[i].name);
            a->services[k] = (struct srm_admin_service){a->names[k], svcs[i].critical, svcs[i].up};
        }
    for (size_t i = 0; i < d->conf->n_services && k < VIEW_SERVICES_MAX; i++, k++) {
        a->names[k] = strdup(d->conf->services[i].name);
        a->services[k] =
            (struct srm_admin_service){a->names[k], d->conf->services[i].critical,
                                       d->procs && d->procs[i].known && d->procs[i].up};
    }
    return k;
}

static int64_t users_of(struct srmd *d, const char *node)
{
    const struct srm_db_node *n = d->cfg ? srm_db_config_node(d->cfg, node) : NULL;
    return n ? n->users : -1;
}

static int view_cb(void *data, struct srm_admin_view *v)
{
    struct srmd *d = data;
    struct srmd_admin *a = d->admin;
    const struct srm_fsm *f = d->core ? srm_core_fsm(d->core) : NULL;
    struct srm_hb_peer peer;

    memset(v, 0, sizeof(*v));
    v->self.name = d->conf->node_name;
    v->self.state = f ? f->state : SRM_FSM_STATE_INITIALIZING;
    v->self.reason = f ? f->reason : SRM_FSM_REASON_INITIALIZATION;
    v->self.since_us = a->state_since_us;
    v->self.users_assigned = users_of(d, d->conf->node_name);
    v->self.users_active = d->counters.active;
    v->self.repl_known = d->repl != NULL;
    lag(d, &v->self.lag_entries, &v->self.lag_bytes, &v->self.lag_ms);
    v->self.n_services = collect_services(d, a);
    v->self.services = a->services;
    v->ha_enabled = d->ha_enabled;
    v->quorate = d->hb && srm_hb_quorate(d->hb);
    v->db_up = d->db_up;
    v->has_peer = true;
    v->peer_status = f ? f->peer_status : SRM_FSM_PEER_UNKNOWN;
    srm_hb_peer_get(d->hb, &peer);
    v->peer_age_ms = peer.last_heard_ms ? (int64_t)(uv_now(d->loop) - peer.last_heard_ms) : -1;
    v->peer.name = d->conf->peer_name;
    v->peer.state = f ? (enum srm_fsm_state)f->peer.state : SRM_FSM_STATE_UNKNOWN;
    v->peer.reason = f ? (enum srm_fsm_reason)f->peer.reason : SRM_FSM_REASON_UNKNOWN;
    v->peer.users_assigned = users_of(d, d->conf->peer_name);
    v->peer.users_active = d->peer_ext.users_active;
    return 0;
}

static int operate_cb(void *data, const struct srm_admin_op_request *req, char *why, size_t whylen)
{
    struct srmd *d = data;
    const char *w = NULL;
    int r;

    if (!d->core) {
        snprintf(why, whylen, "the recovery manager is still starting");
        return SRM_EREFUSED;
    }
    r = srm_core_admin(d->core, uv_now(d->loop), srm_admin_op_event(req->op), &w);
    snprintf(why, whylen, "%s", w ? w : "");
    srm_log_notice("%s %s by %s: %s", r == 0 ? "+admin" : "-admin", srm_admin_op_name(req->op),
                   req->client ? req->client : "?", r == 0 ? "accepted" : why);
    srmd_core_kick(d);
    return r;
}

static const struct srm_db_config *config_cb(void *data)
{
    struct srmd *d = data;
    return d->cfg;
}

static void collect_cb(void *data, struct srm_admin_metrics *m)
{
    struct srmd *d = data;
    struct srmd_admin *a = d->admin;
    const char *node[] = {d->conf->node_name};
    struct srm_hb_stats hs;
    struct srm_repl_stats rs;
    uint64_t e, b, ms;

    (void)m;
    srm_hb_stats_get(d->hb, &hs);
    srm_admin_metric_set(a->std.keepalives_sent, node, (double)hs.sent);
    srm_admin_metric_set(a->std.keepalives_missed, node, (double)hs.missed);
    srm_admin_metric_set(a->std.users_assigned, node, (double)users_of(d, d->conf->node_name));
    srm_admin_metric_set(a->std.users_active, node, (double)d->counters.active);
    lag(d, &e, &b, &ms);
    srm_admin_metric_set(a->std.repl_lag_entries, node, (double)e);
    srm_admin_metric_set(a->std.repl_lag_bytes, node, (double)b);
    srm_admin_metric_set(a->std.repl_lag_ms, node, (double)ms);
    if (d->repl) {
        srm_repl_stats(d->repl, &rs);
        srm_admin_metric_set(a->std.repl_reconnects, node, (double)rs.reconnects);
        srm_admin_metric_set(a->std.repl_snapshots_sent, node, (double)rs.snapshots_sent);
        srm_admin_metric_set(a->std.repl_snapshots_installed, node, (double)rs.snapshots_installed);
        srm_admin_metric_set(a->std.repl_sync_degradations, node, (double)rs.sync_degradations);
    }
    size_t n = collect_services(d, a);
    for (size_t i = 0; i < n; i++) {
        const char *labels[] = {d->conf->node_name, a->services[i].name};
        srm_admin_metric_set(a->std.service_up, labels, a->services[i].up ? 1 : 0);
    }
}

void srmd_admin_transition(struct srmd *d, const struct srm_fsm_step *st)
{
    struct srmd_admin *a = d->admin;
    const char *labels[] = {d->conf->node_name, srm_fsm_reason_name(st->to_reason)};

    if (!a)
        return;
    a->state_since_us = wall_us();
    srm_admin_metrics_set_node_state(&a->std, d->conf->node_name, st->to, st->to_reason);
    srm_admin_metric_add(a->std.transitions, labels, 1);
    if (st->to == SRM_FSM_STATE_TAKING_OVER || st->to == SRM_FSM_STATE_BACKUP_ACTIVATED)
        srm_admin_metric_add(a->std.failovers, labels, 1);
    if (a->server)
        srm_admin_server_events_changed(a->server);
}

int srmd_admin_start(struct srmd *d, char *err, size_t errlen)
{
    struct srmd_admin *a = calloc(1, sizeof(*a));
    int r;

    if (!a)
        return -ENOMEM;
    d->admin = a;
    r = srm_admin_metrics_new(&a->metrics);
    if (r == 0)
        r = srm_admin_metrics_standard(a->metrics, &a->std);
    if (r < 0) {
        snprintf(err, errlen, "metrics: %s", srm_strerror(r));
        return r;
    }
    a->state_since_us = wall_us();
    srm_admin_metrics_set_node_state(&a->std, d->conf->node_name, SRM_FSM_STATE_INITIALIZING,
                                     SRM_FSM_REASON_INITIALIZATION);
    struct srm_admin_server_options o = {
        .node = d->conf->node_name,
        .listen_host = d->conf->admin_listen_host,
        .listen_port = d->conf->admin_listen_port,
        .ca_file = d->conf->tls_ca,
        .cert_file = d->conf->tls_cert,
        .key_file = d->conf->tls_key,
        .metrics_host = d->conf->metrics_listen_host,
        .metrics_port = d->conf->metrics_listen_port,
        .db = d->db,
        .backend = {.view = view_cb,
                    .operate = operate_cb,
                    .config = config_cb,
                    .collect = collect_cb,
                    .data = d},
        .metrics = a->metrics,
    };
    r = srm_admin_server_new(d->loop, &o, &a->server);
    if (r == 0)
        r = srm_admin_server_start(a->server);
    if (r < 0)
        snprintf(err, errlen, "admin API on %s:%u: %s", d->conf->admin_listen_host,
                 d->conf->admin_listen_port, srm_strerror(r));
    return r;
}

void srmd_admin_stop(struct srmd *d)
{
    struct srmd_admin *a = d->admin;

    if (!a)
        return;
    if (a->server)
        srm_admin_server_close(a->server, NULL, NULL);
    a->server = NULL;
}

void srmd_admin_free(struct srmd *d)
{
    struct srmd_admin *a = d->admin;

    if (!a)
        return;
    free_names(a);
    srm_admin_metrics_free(a->metrics);
    free(a);
    d->admin = NULL;
}
