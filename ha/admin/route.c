/*
 * Routing decisions (README.md "Routing"): which node serves a request, from the cluster
 * directory srmd holds (its configuration snapshot). Pure: no I/O, so the unit tests walk
 * every case over fake directories.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int srm__admin_target_of(const struct srm_db_config *cfg, const struct srm_db_node *node,
                         struct srm__admin_target *ret_target)
{
    struct srm__admin_target t;
    memset(&t, 0, sizeof(t));
    const char *a = node->address;
    if (!a || !a[0] || strlen(a) > SRM_DB_ADDRESS_MAX)
        return -EINVAL;
    if (a[0] == '[') {
        /* [v6] or [v6]:port */
        const char *end = strchr(a, ']');
        if (!end || end == a + 1)
            return -EINVAL;
        snprintf(t.host, sizeof(t.host), "%.*s", (int)(end - a - 1), a + 1);
    } else {
        const char *colon = strchr(a, ':');
        if (colon && strchr(colon + 1, ':') == NULL) /* host:port: the port is not ours */
            snprintf(t.host, sizeof(t.host), "%.*s", (int)(colon - a), a);
        else
            snprintf(t.host, sizeof(t.host), "%s", a); /* a name, IPv4, or bare IPv6 */
    }
    if (!t.host[0])
        return -EINVAL;
    int64_t port = node->params[SRM_DB_PARAM_ADMIN_RPC_PORT];
    if (port <= 0 || port > 65535)
        port = cfg->params[SRM_DB_PARAM_ADMIN_RPC_PORT];
    if (port <= 0 || port > 65535)
        return -EINVAL;
    t.port = (uint16_t)port;
    snprintf(t.node, sizeof(t.node), "%s", node->name);
    *ret_target = t;
    return 0;
}

void srm__admin_target_url(const struct srm__admin_target *t, const char *path_and_query,
                           struct srm__admin_buf *out)
{
    srm__admin_buf_printf(out, "https://%s:%u%s", t->node, t->port, path_and_query);
}

void srm__admin_target_connect_to(const struct srm__admin_target *t, char *out, size_t outlen)
{
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(out, outlen, "%s:%u:%s%s%s:%u", t->node, t->port, v6 ? "[" : "", t->host,
             v6 ? "]" : "", t->port);
}

void srm__admin_route_clear(struct srm__admin_route *route)
{
    if (!route)
        return;
    free(route->targets);
    route->targets = NULL;
    route->n = 0;
}

static int add_target(const struct srm_db_config *cfg, const struct srm_db_node *node,
                      struct srm__admin_route *r, size_t cap)
{
    if (!r->targets) {
        r->targets = calloc(cap ? cap : 1, sizeof(*r->targets));
        if (!r->targets)
            return -ENOMEM;
    }
    if (srm__admin_target_of(cfg, node, &r->targets[r->n]) < 0)
        return 0; /* a node without a usable address cannot be asked: left out */
    r->n++;
    return 0;
}

int srm__admin_route(const struct srm_db_config *cfg, const char *self,
                     enum srm__admin_route_what what, const char *name,
                     struct srm__admin_route *ret_route)
{
    struct srm__admin_route r;
    memset(&r, 0, sizeof(r));
    int rc = 0;

    if (what == SRM__ADMIN_ROUTE_NODE) {
        if (strcmp(name, self) == 0) {
            r.kind = SRM__ADMIN_ROUTE_LOCAL;
        } else if (!cfg) {
            r.kind = SRM__ADMIN_ROUTE_NODIR;
            snprintf(r.msg, sizeof(r.msg),
                     "node \"%s\" is not this node (%s) and %s has no cluster configuration yet; "
                     "ask %s directly",
                     name, self, self, name);
        } else {
            const struct srm_db_node *n = srm_db_config_node(cfg, name);
            if (!n) {
                r.kind = SRM__ADMIN_ROUTE_NOTFOUND;
                snprintf(r.msg, sizeof(r.msg), "no node \"%s\" in the cluster configuration", name);
            } else {
                r.kind = SRM__ADMIN_ROUTE_REDIRECT;
                rc = add_target(cfg, n, &r, 1);
                if (rc == 0 && r.n == 0) {
                    r.kind = SRM__ADMIN_ROUTE_NODIR;
                    snprintf(r.msg, sizeof(r.msg), "node \"%s\" has no usable address (\"%s\")",
                             name, n->address ? n->address : "");
                }
            }
        }
    } else if (what == SRM__ADMIN_ROUTE_GROUP_RECOVER || what == SRM__ADMIN_ROUTE_GROUP_HA) {
        const struct srm_db_group *g = cfg ? srm_db_config_group(cfg, name) : NULL;
        if (!g) {
            r.kind = cfg ? SRM__ADMIN_ROUTE_NOTFOUND : SRM__ADMIN_ROUTE_NODIR;
            snprintf(r.msg, sizeof(r.msg),
                     cfg ? "no group \"%s\" in the cluster configuration"
                         : "%s has no cluster configuration yet to find group \"%s\"",
                     cfg ? name : self, name);
        } else {
            bool mine = false;
            for (size_t i = 0; i < g->n_nodes; i++)
                if (strcmp(cfg->nodes[g->nodes[i]].name, self) == 0)
                    mine = true;
            if (what == SRM__ADMIN_ROUTE_GROUP_HA && mine) {
                r.kind = SRM__ADMIN_ROUTE_LOCAL;
            } else {
                r.kind = what == SRM__ADMIN_ROUTE_GROUP_HA ? SRM__ADMIN_ROUTE_FORWARD
                                                           : SRM__ADMIN_ROUTE_FANOUT;
                r.include_self = mine;
                for (size_t i = 0; i < g->n_nodes && rc == 0; i++) {
                    const struct srm_db_node *n = &cfg->nodes[g->nodes[i]];
                    if (strcmp(n->name, self) != 0)
                        rc = add_target(cfg, n, &r, 2);
                }
                if (rc == 0 && r.n == 0 && !r.include_self) {
                    if (what == SRM__ADMIN_ROUTE_GROUP_HA) {
                        r.kind = SRM__ADMIN_ROUTE_LOCAL; /* nobody to ask: the database */
                    } else {
                        r.kind = SRM__ADMIN_ROUTE_NOTFOUND;
                        snprintf(r.msg, sizeof(r.msg), "group \"%s\" has no node to recover", name);
                    }
                }
            }
        }
    } else {
        r.kind = SRM__ADMIN_ROUTE_FANOUT;
        r.include_self = true;
        for (size_t i = 0; cfg && i < cfg->n_nodes && rc == 0; i++)
            if (strcmp(cfg->nodes[i].name, self) != 0)
                rc = add_target(cfg, &cfg->nodes[i], &r, cfg->n_nodes);
    }
    if (rc < 0) {
        srm__admin_route_clear(&r);
        return rc;
    }
    *ret_route = r;
    return 0;
}
