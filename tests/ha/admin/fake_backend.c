#include "fake_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "srm_error.h"

void fake_node_init(struct fake_node *f, const char *name, const char *peer_name,
                    enum srm_fsm_state state, enum srm_fsm_reason reason,
                    enum srm_fsm_state peer_state, enum srm_fsm_reason peer_reason)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    srm_fsm_init(&f->fsm);
    f->fsm.started = true;
    f->fsm.state = state;
    f->fsm.reason = reason;
    f->fsm.ha_enabled = true;
    f->fsm.quorate = true;
    f->fsm.peer_present = true;
    f->fsm.db_ok = true;
    f->fsm.cs = SRM_FSM_CS_UP;
    if (peer_name) {
        f->has_peer = true;
        snprintf(f->peer_name, sizeof(f->peer_name), "%s", peer_name);
        f->peer_status = SRM_FSM_PEER_VISIBLE;
        f->fsm.peer_status = SRM_FSM_PEER_VISIBLE;
        f->fsm.peer.state = (uint8_t)peer_state;
        f->fsm.peer.reason = (uint8_t)peer_reason;
        f->fsm.peer.cs_up = true;
        f->fsm.peer.db_ok = true;
        f->fsm.peer.ha_enabled = true;
        f->peer_age_ms = 120;
    }
    f->users_assigned = 2500;
    f->users_active = 2400;
    f->lag_entries = 3;
    f->lag_bytes = 512;
    f->lag_ms = 2;
    f->services[0] = (struct srm_admin_service){.name = "xmpp", .critical = true, .up = true};
    f->services[1] = (struct srm_admin_service){.name = "sip", .critical = true, .up = true};
    f->n_services = 2;
    if (srm_admin_metrics_new(&f->metrics) == 0)
        srm_admin_metrics_standard(f->metrics, &f->std);
}

void fake_node_fini(struct fake_node *f)
{
    srm_admin_metrics_free(f->metrics);
    f->metrics = NULL;
}

static int fake_view(void *data, struct srm_admin_view *v)
{
    struct fake_node *f = data;
    if (f->view_error)
        return f->view_error;
    v->self.name = f->name;
    v->self.state = f->fsm.state;
    v->self.reason = f->fsm.reason;
    v->self.since_us = 1700000000000000;
    v->self.users_assigned = f->users_assigned;
    v->self.users_active = f->users_active;
    v->self.repl_known = true;
    v->self.lag_entries = f->lag_entries;
    v->self.lag_bytes = f->lag_bytes;
    v->self.lag_ms = f->lag_ms;
    v->self.n_services = f->n_services;
    v->self.services = f->services;
    v->ha_enabled = f->fsm.ha_enabled;
    v->quorate = f->fsm.quorate;
    v->db_up = true;
    v->has_peer = f->has_peer;
    v->peer_status = f->peer_status;
    v->peer_age_ms = f->peer_age_ms;
    v->peer.name = f->peer_name;
    v->peer.state = f->fsm.peer.state;
    v->peer.reason = f->fsm.peer.reason;
    v->peer.users_assigned = -1;
    v->peer.users_active = -1;
    return 0;
}

static int fake_operate(void *data, const struct srm_admin_op_request *req, char *why,
                        size_t whylen)
{
    struct fake_node *f = data;
    f->ops[req->op]++;
    snprintf(f->last_client, sizeof(f->last_client), "%s", req->client ? req->client : "");
    snprintf(f->last_group, sizeof(f->last_group), "%s", req->group ? req->group : "");
    const char *w = NULL;
    enum srm_fsm_event_type type = srm_admin_op_event(req->op);
    int rc = srm_fsm_check(&f->fsm, type, &w);
    if (rc < 0) {
        snprintf(why, whylen, "%s", w ? w : "");
        return rc;
    }
    struct srm_fsm_event ev = {.type = type};
    struct srm_fsm_step step;
    rc = srm_fsm_step(&f->fsm, &ev, &step);
    snprintf(why, whylen, "%s", step.why ? step.why : "");
    if (rc == 0)
        f->accepted[req->op]++;
    return rc;
}

static const struct srm_db_config *fake_config(void *data)
{
    return ((struct fake_node *)data)->config;
}

static void fake_collect(void *data, struct srm_admin_metrics *m)
{
    struct fake_node *f = data;
    const char *v[] = {f->name};
    (void)m;
    f->collects++;
    srm_admin_metrics_set_node_state(&f->std, f->name, f->fsm.state, f->fsm.reason);
    srm_admin_metric_set(f->std.users_assigned, v, (double)f->users_assigned);
    srm_admin_metric_set(f->std.users_active, v, (double)f->users_active);
    srm_admin_metric_set(f->std.repl_lag_entries, v, (double)f->lag_entries);
}

struct srm_admin_backend fake_node_backend(struct fake_node *f)
{
    return (struct srm_admin_backend){.view = fake_view,
                                      .operate = fake_operate,
                                      .config = fake_config,
                                      .collect = fake_collect,
                                      .data = f};
}

static char *xstrdup(const char *s)
{
    char *c = strdup(s);
    if (!c)
        abort();
    return c;
}

struct srm_db_config *fake_directory(unsigned groups, uint16_t admin_port)
{
    struct srm_db_config *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->schema_version = 2;
    c->taken_at_us = 1700000000000000;
    c->source = SRM_DB_SOURCE_DATABASE;
    srm_db_params_defaults(c->params);
    c->params[SRM_DB_PARAM_ADMIN_RPC_PORT] = admin_port;
    c->n_groups = groups;
    c->groups = calloc(groups, sizeof(*c->groups));
    c->n_nodes = groups * 2;
    c->nodes = calloc(c->n_nodes, sizeof(*c->nodes));
    if (!c->groups || !c->nodes)
        abort();
    /* sorted by name: g1..g9 and n1..n9 sort as numbers while below 10 */
    for (unsigned g = 0; g < groups; g++) {
        char name[32];
        snprintf(name, sizeof(name), "g%u", g + 1);
        c->groups[g].id = g + 1;
        c->groups[g].name = xstrdup(name);
        c->groups[g].description = xstrdup("");
        c->groups[g].ha_enabled = true;
        c->groups[g].n_nodes = 2;
        for (unsigned i = 0; i < 2; i++) {
            unsigned k = 2 * g + i;
            struct srm_db_node *n = &c->nodes[k];
            char addr[32];
            snprintf(name, sizeof(name), "n%u", k + 1);
            snprintf(addr, sizeof(addr), "127.0.0.%u", k + 1);
            n->id = k + 1;
            n->name = xstrdup(name);
            n->address = xstrdup(addr);
            n->group_id = g + 1;
            n->group_index = g;
            n->position = (int)i + 1;
            n->is_publisher = k == 0;
            n->assignable = true;
            n->users = 2500;
            memcpy(n->params, c->params, sizeof(n->params));
            c->groups[g].nodes[i] = k;
        }
    }
    return c;
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int fake_make_certs(char *dir, const char *extra, const char *names)
{
    if (!dir[0]) {
        snprintf(dir, 64, "/tmp/srm-admin-test-XXXXXX");
        if (!mkdtemp(dir))
            return -1;
    }
    const char *src = getenv("SRM_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/scripts/make-certs %s %s %s >/dev/null", src ? src : ".",
             extra ? extra : "", dir, names);
    return run(cmd) == 0 ? 0 : -1;
}

void fake_rmdir(const char *dir)
{
    if (!dir[0] || strncmp(dir, "/tmp/", 5) != 0)
        return;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    run(cmd);
}
