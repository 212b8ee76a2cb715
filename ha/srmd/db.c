/*
 * srmd and the configuration database: the snapshot in force (from the database, else the
 * local cache), reloads on change notifications, parameters, state reports, history.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "srm_error.h"
#include "srm_log.h"
#include "srmd_internal.h"

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

void srmd_cpg_group_name(const struct srmd_conf *conf, char *buf, size_t size)
{
    /* CPG group names are at most 127 bytes; group names up to 128 (SPEC §2). A long name is
     * cut and completed with a hash so that two groups never share a CPG group. */
    char full[512];
    int n = snprintf(full, sizeof(full), "srm.%s.%s", conf->cluster, conf->group);

    if (n > 0 && (size_t)n < size && (size_t)n <= SRM_HB_GROUP_MAX) {
        memcpy(buf, full, (size_t)n + 1);
        return;
    }
    uint64_t h = 1469598103934665603ull;
    for (const char *p = full; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(buf, size, "%.*s~%016" PRIx64, (int)(SRM_HB_GROUP_MAX - 17), full, h);
}

/* Finds this node and its peer in the snapshot and takes their ids and the parameters. */
static int apply_config(struct srmd *d, struct srm_db_config *cfg, char *err, size_t errlen)
{
    const struct srm_db_node *self = srm_db_config_node(cfg, d->conf->node_name);
    const struct srm_db_node *peer = srm_db_config_node(cfg, d->conf->peer_name);
    const struct srm_db_group *group;

    if (!self || !peer) {
        snprintf(err, errlen,
                 "the configuration has no node \"%s\" or \"%s\": add them (and their group "
                 "\"%s\") to the configuration database first",
                 d->conf->node_name, d->conf->peer_name, d->conf->group);
        return SRM_ECONFIG;
    }
    group = &cfg->groups[self->group_index];
    if (strcmp(group->name, d->conf->group) != 0 || peer->group_id != self->group_id) {
        snprintf(err, errlen,
                 "in the configuration database %s belongs to group \"%s\", not \"%s\" with %s",
                 d->conf->node_name, group->name, d->conf->group, d->conf->peer_name);
        return SRM_ECONFIG;
    }
    /* Partitions are identified by the nodes' Corosync ids (engines find a partition's
     * users by its node's name). */
    d->self_part = d->conf->node_id;
    d->peer_part = d->conf->peer_id;
    d->ha_enabled = group->ha_enabled;
    d->params = (struct srmd_params){
        .keepalive_interval = self->params[SRM_DB_PARAM_KEEPALIVE_INTERVAL],
        .keepalive_timeout = self->params[SRM_DB_PARAM_KEEPALIVE_TIMEOUT],
        .init_keepalive_timeout = self->params[SRM_DB_PARAM_INIT_KEEPALIVE_TIMEOUT],
        .critical_service_down_delay = self->params[SRM_DB_PARAM_CRITICAL_SERVICE_DOWN_DELAY],
        .automatic_fallback = self->params[SRM_DB_PARAM_AUTOMATIC_FALLBACK] != 0,
        .automatic_fallback_delay = self->params[SRM_DB_PARAM_AUTOMATIC_FALLBACK_DELAY],
        .relogin_lower = self->params[SRM_DB_PARAM_RELOGIN_LOWER],
        .relogin_upper = self->params[SRM_DB_PARAM_RELOGIN_UPPER],
    };
    srm_db_config_free(d->cfg);
    d->cfg = cfg;
    return 0;
}

void srmd_core_params(const struct srmd *d, struct srm_core_params *cp)
{
    srm_core_params_default(cp);
    cp->cs_down_delay_ms = (uint64_t)d->params.critical_service_down_delay * 1000;
    cp->auto_fallback = d->params.automatic_fallback;
    cp->auto_fallback_delay_ms = (uint64_t)d->params.automatic_fallback_delay * 1000;
    cp->fence_node_ms = d->conf->fence_node_ms;
    cp->fence_process_ms = d->conf->lease_ms + 1000;
    cp->fence_timeout_ms = 0;
}

/* A reload: parameters, HA flag and timings take effect at once. */
static void reloaded(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srmd *d = data;
    char err[256];
    struct srmd_params old = d->params;

    (void)db;
    if (res->status < 0) {
        srm_log_warn("reloading the configuration: %s", res->errmsg);
        return;
    }
    if (apply_config(d, res->config, err, sizeof(err)) < 0) {
        srm_log_error("configuration not applied: %s", err);
        return;
    }
    res->config = NULL; /* kept */
    if (d->core) {
        struct srm_core_params cp;
        srmd_core_params(d, &cp);
        srm_core_set_params(d->core, uv_now(d->loop), &cp);
        srm_core_ha(d->core, uv_now(d->loop), d->ha_enabled);
        srmd_core_kick(d);
    }
    if (d->hb && (old.keepalive_interval != d->params.keepalive_interval ||
                  old.keepalive_timeout != d->params.keepalive_timeout ||
                  old.init_keepalive_timeout != d->params.init_keepalive_timeout)) {
        int r = srm_hb_set_timing(d->hb, (uint32_t)d->params.keepalive_interval * 1000,
                                  (uint32_t)d->params.keepalive_timeout * 1000,
                                  (uint32_t)d->params.init_keepalive_timeout * 1000);
        if (r < 0)
            srm_log_warn("heartbeat timing not applied: %s", srm_strerror(r));
        srmd_hb_timing_check(d);
        srmd_hb_rearm(d);
    }
    srm_log_info("configuration reloaded (HA %s)", d->ha_enabled ? "enabled" : "disabled");
}

static void db_up_cb(struct srm_db *db, void *data)
{
    struct srmd *d = data;

    d->db_up = true;
    srm_log_notice("+database: the configuration database is reachable");
    srm_db_config_load(db, reloaded, d);
}

static void db_down_cb(struct srm_db *db, int err, const char *errmsg, void *data)
{
    struct srmd *d = data;

    (void)db;
    (void)err;
    d->db_up = false;
    srm_log_warn("-database: %s; working from the configuration in force (state reports are "
                 "queued)",
                 errmsg);
}

static void db_change_cb(struct srm_db *db, const struct srm_db_change *change, void *data)
{
    (void)change;
    srm_db_config_load(db, reloaded, data);
}

static void db_cache_cb(struct srm_db *db, int status, const char *errmsg, void *data)
{
    (void)db;
    (void)data;
    if (status < 0)
        srm_log_warn("writing the configuration cache: %s", errmsg);
}

int srmd_db_start(struct srmd *d, char *err, size_t errlen)
{
    char *cache = NULL, note[512] = "";
    struct srm_db_config *cfg = NULL;
    int r;

    if (asprintf(&cache, "%s/config-cache.json", d->conf->dir) < 0)
        return -ENOMEM;
    r = srm_db_config_bootstrap(d->conf->database, cache, true, &cfg, note, sizeof(note));
    if (r < 0) {
        snprintf(err, errlen,
                 "no configuration: the database is unreachable and there is no usable cache "
                 "(%s)",
                 note);
        free(cache);
        return r;
    }
    if (r == 1)
        srm_log_warn("working from the cached configuration: %s", note);
    else
        srm_log_info("configuration loaded from the database");
    r = apply_config(d, cfg, err, errlen);
    if (r < 0) {
        srm_db_config_free(cfg);
        free(cache);
        return r;
    }
    struct srm_db_options o = {
        .conninfo = d->conf->database,
        .cache_path = cache,
        .up_cb = db_up_cb,
        .down_cb = db_down_cb,
        .change_cb = db_change_cb,
        .cache_cb = db_cache_cb,
        .data = d,
    };
    r = srm_db_new(d->loop, &o, &d->db);
    if (r == 0)
        r = srm_db_start(d->db);
    free(cache);
    if (r < 0) {
        snprintf(err, errlen, "configuration database: %s", srm_strerror(r));
        return r;
    }
    return 0;
}

void srmd_db_stop(struct srmd *d)
{
    if (d->db)
        srm_db_close(d->db, NULL, NULL);
    d->db = NULL;
}

void srmd_db_free(struct srmd *d)
{
    srm_db_config_free(d->cfg);
    d->cfg = NULL;
    free(d->prev_state_name);
    free(d->prev_reason_name);
}

static void report_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    (void)db;
    (void)data;
    if (res->status < 0 && res->status != SRM_EDB_DOWN)
        srm_log_warn("state report: %s", res->errmsg);
}

void srmd_db_report_state(struct srmd *d, const struct srm_fsm_step *st,
                          enum srm_fsm_event_type type)
{
    char cause[160];
    struct srm_db_transition t = {
        .node = d->conf->node_name,
        .old_state = d->prev_state_name,
        .old_reason = d->prev_reason_name,
        .new_state = srm_fsm_state_name(st->to),
        .new_reason = srm_fsm_reason_name(st->to_reason),
        .cause = cause,
        .at_us = wall_us(),
    };

    snprintf(cause, sizeof(cause), "%s: %s", srm_fsm_event_name(type), st->why);
    for (char *p = cause; *p; p++)
        if (*p == '"' || *p == '\\')
            *p = '\'';
    if (d->db)
        srm_db_node_state_report(d->db, &t, report_done, d);
    free(d->prev_state_name);
    free(d->prev_reason_name);
    d->prev_state_name = strdup(t.new_state);
    d->prev_reason_name = strdup(t.new_reason);
}

void srmd_history_add(struct srmd *d, const struct srm_fsm_step *st, enum srm_fsm_event_type type)
{
    struct srmd_transition *h = &d->history[d->history_next];

    h->at_ms = (uint64_t)(wall_us() / 1000);
    h->from = st->from;
    h->to = st->to;
    h->from_reason = st->from_reason;
    h->to_reason = st->to_reason;
    h->event = type;
    h->why = st->why;
    d->history_next = (d->history_next + 1) % SRMD_HISTORY_MAX;
    if (d->history_n < SRMD_HISTORY_MAX)
        d->history_n++;
}
