/*
 * Building the status (README.md "Status"): this node's group from the backend's live view,
 * the other groups from their nodes' own answers, else from their peer's view of them, else
 * Unknown (nobody sees them) with what the configuration database last heard.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = true;
    return c;
}

int srm__admin_node_status_copy(struct srm_admin_node_status *dst,
                                const struct srm_admin_node_status *src)
{
    bool oom = false;
    struct srm_admin_node_status n = *src;
    n.name = dup_or_null(src->name, &oom);
    n.address = dup_or_null(src->address, &oom);
    n.error = dup_or_null(src->error, &oom);
    n.reported_state = dup_or_null(src->reported_state, &oom);
    n.reported_reason = dup_or_null(src->reported_reason, &oom);
    n.services = NULL;
    n.n_services = 0;
    if (src->n_services) {
        n.services = calloc(src->n_services, sizeof(*n.services));
        if (!n.services)
            oom = true;
        for (size_t i = 0; n.services && i < src->n_services; i++) {
            n.services[i] = src->services[i];
            n.services[i].name = dup_or_null(src->services[i].name, &oom);
            n.n_services = i + 1;
        }
    }
    if (oom) {
        srm__admin_node_status_clear(&n);
        return -ENOMEM;
    }
    *dst = n;
    return 0;
}

static void set_reported(struct srm_admin_node_status *n, const struct srm_db_node *dn, bool *oom)
{
    if (!dn)
        return;
    if (!n->address)
        n->address = dup_or_null(dn->address, oom);
    if (dn->state && !n->reported_state) {
        n->reported_state = dup_or_null(dn->state, oom);
        n->reported_reason = dup_or_null(dn->reason, oom);
        n->reported_since_us = dn->state_since_us;
    }
}

static void from_view(struct srm_admin_node_status *n, const struct srm_admin_node_view *v,
                      bool *oom)
{
    n->state = v->state;
    n->reason = v->reason;
    n->since_us = v->since_us;
    n->users_assigned = v->users_assigned;
    n->users_active = v->users_active;
    n->repl_known = v->repl_known;
    n->lag_entries = v->lag_entries;
    n->lag_bytes = v->lag_bytes;
    n->lag_ms = v->lag_ms;
    size_t ns = v->n_services > SRM_ADMIN_SERVICES_MAX ? SRM_ADMIN_SERVICES_MAX : v->n_services;
    if (ns) {
        n->services = calloc(ns, sizeof(*n->services));
        if (!n->services)
            *oom = true;
        for (size_t i = 0; n->services && i < ns; i++) {
            n->services[i] = v->services[i];
            n->services[i].name = dup_or_null(v->services[i].name ? v->services[i].name : "?", oom);
            n->n_services = i + 1;
        }
    }
}

static void fill_top(struct srm_admin_status *st, const struct srm_db_config *cfg, const char *self,
                     bool db_up, int64_t now_us, bool *oom)
{
    st->answered_by = dup_or_null(self, oom);
    st->db_up = db_up;
    st->config_source = dup_or_null(!cfg                                    ? "none"
                                    : cfg->source == SRM_DB_SOURCE_DATABASE ? "database"
                                                                            : "cache",
                                    oom);
    st->config_age_ms = cfg ? srm_db_config_age_ms(cfg, now_us) : -1;
    if (st->config_age_ms < -1)
        st->config_age_ms = 0;
    st->assignment_mode =
        cfg ? dup_or_null(srm_db_assign_mode_name(cfg->assignment_mode), oom) : NULL;
    st->users_total = cfg ? cfg->users_total : -1;
    st->users_unassigned = cfg ? cfg->users_unassigned : -1;
}

int srm__admin_status_local(const struct srm_admin_view *view, const struct srm_db_config *cfg,
                            const char *self, bool db_up, int64_t now_us,
                            struct srm_admin_status **ret_status)
{
    bool oom = false;
    struct srm_admin_status *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->local = true;
    fill_top(st, cfg, self, db_up, now_us, &oom);
    st->groups = calloc(1, sizeof(*st->groups));
    if (!st->groups) {
        srm_admin_status_free(st);
        return -ENOMEM;
    }
    st->n_groups = 1;
    struct srm_admin_group_status *g = &st->groups[0];
    const struct srm_db_node *me = cfg ? srm_db_config_node(cfg, self) : NULL;
    const struct srm_db_node *peer = me ? srm_db_config_peer(cfg, me) : NULL;
    g->name = dup_or_null(me ? cfg->groups[me->group_index].name : "", &oom);
    g->ha_enabled = view->ha_enabled;

    struct srm_admin_node_status *ns = &g->nodes[0], *np = &g->nodes[1];
    bool have_peer = view->has_peer || peer;
    if (have_peer && peer && me && peer->position < me->position) {
        ns = &g->nodes[1];
        np = &g->nodes[0];
    }
    g->n_nodes = have_peer ? 2 : 1;

    ns->name = dup_or_null(self, &oom);
    ns->source = SRM_ADMIN_SOURCE_SELF;
    from_view(ns, &view->self, &oom);
    if (ns->users_assigned < 0 && me)
        ns->users_assigned = me->users;
    set_reported(ns, me, &oom);

    if (have_peer) {
        const char *pname = view->peer.name ? view->peer.name : peer ? peer->name : "?";
        np->name = dup_or_null(pname, &oom);
        np->users_assigned = np->users_active = -1;
        if (view->peer_status == SRM_FSM_PEER_VISIBLE) {
            np->source = SRM_ADMIN_SOURCE_PEER;
            from_view(np, &view->peer, &oom);
            np->age_ms = view->peer_age_ms < 0 ? 0 : view->peer_age_ms;
        } else {
            char e[256];
            np->source = SRM_ADMIN_SOURCE_NONE;
            np->state = SRM_FSM_STATE_UNKNOWN;
            np->reason = SRM_FSM_REASON_UNKNOWN;
            if (view->peer_status == SRM_FSM_PEER_LOST)
                snprintf(e, sizeof(e), "%s has lost its peer (no heartbeat for %lld ms)", self,
                         (long long)view->peer_age_ms);
            else
                snprintf(e, sizeof(e), "%s has not heard its peer since it started", self);
            np->error = dup_or_null(e, &oom);
        }
        if (np->users_assigned < 0 && peer && strcmp(peer->name, pname) == 0)
            np->users_assigned = peer->users;
        set_reported(np, peer && strcmp(peer->name, pname) == 0 ? peer : NULL, &oom);
    }
    if (oom) {
        srm_admin_status_free(st);
        return -ENOMEM;
    }
    *ret_status = st;
    return 0;
}

static struct srm_admin_node_status *find_line(struct srm_admin_status *st, const char *name,
                                               struct srm_admin_group_status **ret_group)
{
    for (size_t g = 0; g < st->n_groups; g++)
        for (size_t i = 0; i < st->groups[g].n_nodes; i++)
            if (st->groups[g].nodes[i].name && strcmp(st->groups[g].nodes[i].name, name) == 0) {
                if (ret_group)
                    *ret_group = &st->groups[g];
                return &st->groups[g].nodes[i];
            }
    return NULL;
}

/* Replaces *into with a copy of *from, keeping what the database said if from lacks it. */
static int replace_line(struct srm_admin_node_status *into,
                        const struct srm_admin_node_status *from)
{
    struct srm_admin_node_status n;
    int rc = srm__admin_node_status_copy(&n, from);
    if (rc < 0)
        return rc;
    bool oom = false;
    if (!n.address && into->address)
        n.address = dup_or_null(into->address, &oom);
    if (!n.reported_state && into->reported_state) {
        n.reported_state = dup_or_null(into->reported_state, &oom);
        n.reported_reason = dup_or_null(into->reported_reason, &oom);
        n.reported_since_us = into->reported_since_us;
    }
    if (n.users_assigned < 0)
        n.users_assigned = into->users_assigned;
    if (oom) {
        srm__admin_node_status_clear(&n);
        return -ENOMEM;
    }
    srm__admin_node_status_clear(into);
    *into = n;
    return 0;
}

int srm__admin_status_skeleton(const struct srm_db_config *cfg,
                               const struct srm_admin_status *local, int64_t now_us,
                               struct srm_admin_status **ret_status)
{
    bool oom = false;
    struct srm_admin_status *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    (void)now_us;
    st->answered_by = dup_or_null(local->answered_by, &oom);
    st->db_up = local->db_up;
    st->config_source = dup_or_null(local->config_source, &oom);
    st->config_age_ms = local->config_age_ms;
    st->assignment_mode = dup_or_null(local->assignment_mode, &oom);
    st->users_total = local->users_total;
    st->users_unassigned = local->users_unassigned;
    size_t ng = cfg ? cfg->n_groups : local->n_groups;
    st->groups = calloc(ng ? ng : 1, sizeof(*st->groups));
    if (!st->groups || oom) {
        srm_admin_status_free(st);
        return -ENOMEM;
    }
    if (!cfg) {
        for (size_t g = 0; g < local->n_groups; g++) {
            st->n_groups = g + 1;
            st->groups[g].name = dup_or_null(local->groups[g].name, &oom);
            st->groups[g].ha_enabled = local->groups[g].ha_enabled;
            for (size_t i = 0; i < local->groups[g].n_nodes && !oom; i++) {
                if (srm__admin_node_status_copy(&st->groups[g].nodes[i],
                                                &local->groups[g].nodes[i]) < 0)
                    oom = true;
                else
                    st->groups[g].n_nodes = i + 1;
            }
        }
    } else {
        for (size_t g = 0; g < cfg->n_groups; g++) {
            const struct srm_db_group *dg = &cfg->groups[g];
            struct srm_admin_group_status *gs = &st->groups[g];
            st->n_groups = g + 1;
            gs->name = dup_or_null(dg->name, &oom);
            gs->ha_enabled = dg->ha_enabled;
            for (size_t i = 0; i < dg->n_nodes && i < 2; i++) {
                const struct srm_db_node *dn = &cfg->nodes[dg->nodes[i]];
                struct srm_admin_node_status *n = &gs->nodes[i];
                gs->n_nodes = i + 1;
                n->name = dup_or_null(dn->name, &oom);
                n->source = SRM_ADMIN_SOURCE_NONE;
                n->state = SRM_FSM_STATE_UNKNOWN;
                n->reason = SRM_FSM_REASON_UNKNOWN;
                n->users_assigned = dn->users;
                n->users_active = -1;
                set_reported(n, dn, &oom);
            }
        }
        srm__admin_status_merge(st, local);
        /* the local group's HA flag is the live one */
        for (size_t g = 0; g < local->n_groups; g++)
            for (size_t i = 0; i < local->groups[g].n_nodes; i++) {
                struct srm_admin_group_status *into = NULL;
                const struct srm_admin_node_status *ln = &local->groups[g].nodes[i];
                if (ln->source == SRM_ADMIN_SOURCE_SELF && find_line(st, ln->name, &into))
                    into->ha_enabled = local->groups[g].ha_enabled;
            }
    }
    if (oom) {
        srm_admin_status_free(st);
        return -ENOMEM;
    }
    *ret_status = st;
    return 0;
}

void srm__admin_status_merge(struct srm_admin_status *into, const struct srm_admin_status *from)
{
    for (size_t g = 0; g < from->n_groups; g++) {
        for (size_t i = 0; i < from->groups[g].n_nodes; i++) {
            const struct srm_admin_node_status *fn = &from->groups[g].nodes[i];
            struct srm_admin_group_status *ig = NULL;
            struct srm_admin_node_status *in = fn->name ? find_line(into, fn->name, &ig) : NULL;
            if (!in)
                continue; /* not in this node's directory: it does not know that node */
            if (fn->source > in->source)
                continue;
            if (fn->source == SRM_ADMIN_SOURCE_NONE) {
                /* nobody sees it either way: keep every reason given */
                if (fn->error)
                    srm__admin_status_unreachable(into, fn->name, fn->error);
                continue;
            }
            replace_line(in, fn);
            if (fn->source == SRM_ADMIN_SOURCE_SELF)
                ig->ha_enabled = from->groups[g].ha_enabled;
        }
    }
}

void srm__admin_status_unreachable(struct srm_admin_status *st, const char *node, const char *err)
{
    struct srm_admin_node_status *n = find_line(st, node, NULL);
    if (!n || n->source == SRM_ADMIN_SOURCE_SELF || !err || !err[0])
        return;
    if (n->error && strstr(n->error, err))
        return;
    size_t len = (n->error ? strlen(n->error) + 2 : 0) + strlen(err) + 1;
    if (len > 900) /* decoders bound the text (1024 bytes) */
        return;
    char *e = malloc(len);
    if (!e)
        return;
    srm__admin_fmt(e, len, "%s%s%s", n->error ? n->error : "", n->error ? "; " : "", err);
    free(n->error);
    n->error = e;
}
