/*
 * The configuration snapshot as JSON (what srm_config_snapshot() returns and what the
 * cache stores), notification payloads, and the helpers on snapshots and lists.
 * Everything read is checked: a snapshot that breaks a rule is refused, whoever wrote it.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- Reading helpers: each failure says where (path) and what ---- */

struct reader {
    char *errbuf;
    size_t errlen;
    char path[96];
};

static int corrupt(struct reader *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int corrupt(struct reader *r, const char *key, const char *fmt, ...)
{
    if (!r->errbuf || r->errlen == 0)
        return SRM_ECORRUPT;
    int n = snprintf(r->errbuf, r->errlen, "%s%s%s: ", r->path, r->path[0] && key ? "." : "",
                     key ? key : "");
    if (n >= 0 && (size_t)n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->errbuf + n, r->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return SRM_ECORRUPT;
}

static int get_int(struct reader *r, json_t *obj, const char *key, bool required, int64_t min,
                   int64_t max, int64_t *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return corrupt(r, key, "missing");
        return 0;
    }
    if (!json_is_integer(v))
        return corrupt(r, key, "not an integer");
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return corrupt(r, key, "value out of range");
    *ret = (int64_t)i;
    return 0;
}

static int get_bool(struct reader *r, json_t *obj, const char *key, bool *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return corrupt(r, key, "missing");
    if (!json_is_boolean(v))
        return corrupt(r, key, "not a boolean");
    *ret = json_is_true(v);
    return 0;
}

/* Copies a string member; NULL in *ret when absent and !required. */
static int get_str(struct reader *r, json_t *obj, const char *key, bool required, char **ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return corrupt(r, key, "missing");
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return corrupt(r, key, "not a string");
    size_t len = json_string_length(v);
    if (memchr(json_string_value(v), '\0', len))
        return corrupt(r, key, "contains a NUL character");
    *ret = strndup(json_string_value(v), len);
    return *ret ? 0 : -ENOMEM;
}

/* A check by one of the validators, reported with the path. */
static int checked(struct reader *r, const char *key, int err, const char *msg)
{
    if (err >= 0)
        return 0;
    return corrupt(r, key, "%s", msg);
}

/* Parameters: known names are read and range-checked; absent ones keep their default. */
static int get_params(struct reader *r, json_t *obj, int64_t values[SRM_DB_PARAM_MAX])
{
    json_t *p = json_object_get(obj, "params");
    char msg[SRM_DB_ERRMSG_MAX];

    srm_db_params_defaults(values);
    if (!p)
        return corrupt(r, "params", "missing");
    if (!json_is_object(p))
        return corrupt(r, "params", "not an object");
    for (int i = 0; i < SRM_DB_PARAM_MAX; i++) {
        const struct srm_db_param_def *d = srm_db_param_def((enum srm_db_param)i);
        json_t *v = json_object_get(p, d->name);
        if (!v)
            continue;
        if (!json_is_integer(v))
            return corrupt(r, "params", "%s is not an integer", d->name);
        values[i] = (int64_t)json_integer_value(v);
    }
    return checked(r, "params", srm_db_params_check(values, msg, sizeof(msg)), msg);
}

void srm_db_config_free(struct srm_db_config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->n_groups; i++) {
        free(config->groups[i].name);
        free(config->groups[i].description);
    }
    for (size_t i = 0; i < config->n_nodes; i++) {
        struct srm_db_node *n = &config->nodes[i];
        free(n->name);
        free(n->address);
        free(n->state);
        free(n->reason);
    }
    free(config->groups);
    free(config->nodes);
    free(config);
}

static int parse_group(struct reader *r, json_t *g, struct srm_db_group *out)
{
    char msg[SRM_DB_ERRMSG_MAX];
    int err;

    if (!json_is_object(g))
        return corrupt(r, NULL, "not an object");
    if ((err = get_int(r, g, "id", true, 1, INT32_MAX, &out->id)) < 0 ||
        (err = get_str(r, g, "name", true, &out->name)) < 0 ||
        (err = get_str(r, g, "description", true, &out->description)) < 0 ||
        (err = get_bool(r, g, "ha_enabled", &out->ha_enabled)) < 0)
        return err;
    if ((err = checked(r, "name", srm_db_validate_group_name(out->name, msg, sizeof(msg)), msg)) <
            0 ||
        (err = checked(r, "description",
                       srm_db_validate_description(out->description, msg, sizeof(msg)), msg)) < 0)
        return err;
    return 0;
}

static int parse_node(struct reader *r, json_t *n, struct srm_db_config *cfg,
                      struct srm_db_node *out)
{
    char msg[SRM_DB_ERRMSG_MAX];
    int64_t position = 0;
    int err;

    if (!json_is_object(n))
        return corrupt(r, NULL, "not an object");
    if ((err = get_int(r, n, "id", true, 1, INT32_MAX, &out->id)) < 0 ||
        (err = get_str(r, n, "name", true, &out->name)) < 0 ||
        (err = get_str(r, n, "address", true, &out->address)) < 0 ||
        (err = get_int(r, n, "group_id", true, 1, INT32_MAX, &out->group_id)) < 0 ||
        (err = get_int(r, n, "position", true, 1, 2, &position)) < 0 ||
        (err = get_bool(r, n, "is_publisher", &out->is_publisher)) < 0 ||
        (err = get_bool(r, n, "assignable", &out->assignable)) < 0 ||
        (err = get_int(r, n, "users", true, 0, INT64_MAX, &out->users)) < 0 ||
        (err = get_str(r, n, "state", false, &out->state)) < 0 ||
        (err = get_str(r, n, "reason", false, &out->reason)) < 0 ||
        (err = get_int(r, n, "state_since_us", false, 0, INT64_MAX, &out->state_since_us)) < 0 ||
        (err = get_params(r, n, out->params)) < 0)
        return err;
    out->position = (int)position;
    if ((err = checked(r, "name", srm_db_validate_node_name(out->name, msg, sizeof(msg)), msg)) <
            0 ||
        (err = checked(r, "address", srm_db_validate_address(out->address, msg, sizeof(msg)),
                       msg)) < 0)
        return err;
    if (!out->state != !out->reason)
        return corrupt(r, "state", "state and reason must be both present or both absent");
    if (out->state && !srm_db_state_valid(out->state))
        return corrupt(r, "state", "\"%.64s\" is not a state name", out->state);
    if (out->reason && !srm_db_reason_valid(out->reason))
        return corrupt(r, "reason", "\"%.64s\" is not a reason name", out->reason);

    for (size_t i = 0; i < cfg->n_groups; i++) {
        if (cfg->groups[i].id != out->group_id)
            continue;
        struct srm_db_group *g = &cfg->groups[i];
        for (size_t k = 0; k < g->n_nodes; k++)
            if (cfg->nodes[g->nodes[k]].position == out->position)
                return corrupt(r, "position", "group %s has two nodes at the same position",
                               g->name);
        if (g->n_nodes >= 2)
            return corrupt(r, "group_id", "group %s would have more than two nodes", g->name);
        out->group_index = i;
        g->nodes[g->n_nodes++] = (size_t)(out - cfg->nodes);
        if (g->n_nodes == 2 && out->position == 1) {
            size_t t = g->nodes[0];
            g->nodes[0] = g->nodes[1];
            g->nodes[1] = t;
        }
        return 0;
    }
    return corrupt(r, "group_id", "no group has this id");
}

int srm__db_config_from_json(json_t *obj, enum srm_db_config_source source,
                             struct srm_db_config **ret_config, char *errbuf, size_t errlen)
{
    struct reader r = {.errbuf = errbuf, .errlen = errlen};
    struct srm_db_config *cfg;
    int64_t v = 0;
    char *mode = NULL;
    char msg[SRM_DB_ERRMSG_MAX];
    int err;

    if (!json_is_object(obj))
        return srm__db_err(errbuf, errlen, SRM_ECORRUPT, "configuration is not a JSON object");
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return -ENOMEM;
    cfg->source = source;

    if ((err = get_int(&r, obj, "schema_version", true, 1, INT32_MAX, &v)) < 0)
        goto fail;
    cfg->schema_version = (int)v;
    if ((err = get_int(&r, obj, "taken_at_us", true, 0, INT64_MAX, &cfg->taken_at_us)) < 0 ||
        (err = get_int(&r, obj, "users_total", true, 0, INT64_MAX, &cfg->users_total)) < 0 ||
        (err = get_int(&r, obj, "users_unassigned", true, 0, INT64_MAX, &cfg->users_unassigned)) <
            0 ||
        (err = get_str(&r, obj, "assignment_mode", true, &mode)) < 0)
        goto fail;
    err = srm_db_assign_mode_parse(mode, &cfg->assignment_mode, msg, sizeof(msg));
    free(mode);
    if ((err = checked(&r, "assignment_mode", err, msg)) < 0 ||
        (err = get_params(&r, obj, cfg->params)) < 0)
        goto fail;

    json_t *groups = json_object_get(obj, "groups");
    json_t *nodes = json_object_get(obj, "nodes");
    if (!json_is_array(groups)) {
        err = corrupt(&r, "groups", "missing or not an array");
        goto fail;
    }
    if (!json_is_array(nodes)) {
        err = corrupt(&r, "nodes", "missing or not an array");
        goto fail;
    }
    size_t ng = json_array_size(groups), nn = json_array_size(nodes);
    cfg->groups = calloc(ng ? ng : 1, sizeof(*cfg->groups));
    cfg->nodes = calloc(nn ? nn : 1, sizeof(*cfg->nodes));
    if (!cfg->groups || !cfg->nodes) {
        err = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < ng; i++) {
        snprintf(r.path, sizeof(r.path), "groups[%zu]", i);
        cfg->n_groups = i + 1; /* so that free() sees what was read */
        if ((err = parse_group(&r, json_array_get(groups, i), &cfg->groups[i])) < 0)
            goto fail;
        for (size_t k = 0; k < i; k++)
            if (cfg->groups[k].id == cfg->groups[i].id ||
                strcmp(cfg->groups[k].name, cfg->groups[i].name) == 0) {
                err = corrupt(&r, NULL, "same id or name as groups[%s]", cfg->groups[k].name);
                goto fail;
            }
    }
    size_t publishers = 0;
    for (size_t i = 0; i < nn; i++) {
        snprintf(r.path, sizeof(r.path), "nodes[%zu]", i);
        cfg->n_nodes = i + 1;
        if ((err = parse_node(&r, json_array_get(nodes, i), cfg, &cfg->nodes[i])) < 0)
            goto fail;
        for (size_t k = 0; k < i; k++)
            if (cfg->nodes[k].id == cfg->nodes[i].id ||
                strcmp(cfg->nodes[k].name, cfg->nodes[i].name) == 0) {
                err = corrupt(&r, NULL, "same id or name as node %s", cfg->nodes[k].name);
                goto fail;
            }
        publishers += cfg->nodes[i].is_publisher;
    }
    r.path[0] = '\0';
    for (size_t i = 0; i < ng; i++) {
        if (cfg->groups[i].ha_enabled && cfg->groups[i].n_nodes != 2) {
            err = corrupt(&r, "groups", "HA is enabled on group %s, which has %zu node(s)",
                          cfg->groups[i].name, cfg->groups[i].n_nodes);
            goto fail;
        }
    }
    if (cfg->users_unassigned > cfg->users_total) {
        err = corrupt(&r, "users_unassigned", "more than users_total");
        goto fail;
    }
    if (nn > 0 && publishers != 1) {
        err = corrupt(&r, "nodes", "%s publisher nodes; a cluster has exactly one",
                      publishers ? "several" : "no");
        goto fail;
    }
    *ret_config = cfg;
    return 0;

fail:
    srm_db_config_free(cfg);
    return err;
}

static json_t *params_to_json(const int64_t values[SRM_DB_PARAM_MAX])
{
    json_t *p = json_object();
    for (int i = 0; p && i < SRM_DB_PARAM_MAX; i++) {
        if (json_object_set_new(p, srm_db_param_def((enum srm_db_param)i)->name,
                                json_integer(values[i])) < 0) {
            json_decref(p);
            return NULL;
        }
    }
    return p;
}

json_t *srm__db_config_to_json(const struct srm_db_config *cfg)
{
    json_t *groups = json_array(), *nodes = json_array();
    json_t *root = NULL;

    if (!groups || !nodes)
        goto fail;
    for (size_t i = 0; i < cfg->n_groups; i++) {
        const struct srm_db_group *g = &cfg->groups[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)g->id, "name", g->name,
                              "description", g->description, "ha_enabled", g->ha_enabled);
        if (!o || json_array_append_new(groups, o) < 0)
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        const struct srm_db_node *n = &cfg->nodes[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:i, s:b, s:b, s:I, s:o}", "id",
                              (json_int_t)n->id, "name", n->name, "address", n->address, "group_id",
                              (json_int_t)n->group_id, "position", n->position, "is_publisher",
                              n->is_publisher, "assignable", n->assignable, "users",
                              (json_int_t)n->users, "params", params_to_json(n->params));
        if (!o || json_array_append_new(nodes, o) < 0)
            goto fail;
        if (n->state &&
            (json_object_set_new(o, "state", json_string(n->state)) < 0 ||
             json_object_set_new(o, "reason", json_string(n->reason)) < 0 ||
             json_object_set_new(o, "state_since_us", json_integer(n->state_since_us)) < 0))
            goto fail;
    }
    root = json_pack("{s:i, s:I, s:s, s:o, s:O, s:O, s:I, s:I}", "schema_version",
                     cfg->schema_version, "taken_at_us", (json_int_t)cfg->taken_at_us,
                     "assignment_mode", srm_db_assign_mode_name(cfg->assignment_mode), "params",
                     params_to_json(cfg->params), "groups", groups, "nodes", nodes, "users_total",
                     (json_int_t)cfg->users_total, "users_unassigned",
                     (json_int_t)cfg->users_unassigned);
fail:
    json_decref(groups);
    json_decref(nodes);
    return root;
}

/* ---- Lookups ---- */

const struct srm_db_node *srm_db_config_node(const struct srm_db_config *config, const char *name)
{
    for (size_t i = 0; config && name && i < config->n_nodes; i++)
        if (strcmp(config->nodes[i].name, name) == 0)
            return &config->nodes[i];
    return NULL;
}

const struct srm_db_group *srm_db_config_group(const struct srm_db_config *config, const char *name)
{
    for (size_t i = 0; config && name && i < config->n_groups; i++)
        if (strcmp(config->groups[i].name, name) == 0)
            return &config->groups[i];
    return NULL;
}

const struct srm_db_node *srm_db_config_peer(const struct srm_db_config *config,
                                             const struct srm_db_node *node)
{
    if (!config || !node || node->group_index >= config->n_groups)
        return NULL;
    const struct srm_db_group *g = &config->groups[node->group_index];
    for (size_t k = 0; k < g->n_nodes; k++)
        if (&config->nodes[g->nodes[k]] != node)
            return &config->nodes[g->nodes[k]];
    return NULL;
}

const struct srm_db_node *srm_db_config_failed_over(const struct srm_db_config *config)
{
    for (size_t i = 0; config && i < config->n_nodes; i++)
        if (config->nodes[i].state && srm_db_state_is_failed_over(config->nodes[i].state))
            return &config->nodes[i];
    return NULL;
}

int64_t srm_db_config_age_ms(const struct srm_db_config *config, int64_t now_us)
{
    if (!config || now_us < config->taken_at_us)
        return 0;
    return (now_us - config->taken_at_us) / 1000;
}

/* ---- Lists ---- */

void srm_db_user_list_free(struct srm_db_user_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free(list->users[i].name);
        free(list->users[i].node);
    }
    free(list->users);
    free(list);
}

void srm_db_event_list_free(struct srm_db_event_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        struct srm_db_event *e = &list->events[i];
        free(e->node);
        free(e->group);
        free(e->old_state);
        free(e->old_reason);
        free(e->new_state);
        free(e->new_reason);
        free(e->cause);
    }
    free(list->events);
    free(list);
}

/* ---- Notifications ---- */

static const char *const table_names[SRM_DB_TABLE_MAX] = {
    [SRM_DB_TABLE_UNKNOWN] = "unknown",       [SRM_DB_TABLE_CLUSTER] = "cluster",
    [SRM_DB_TABLE_GROUPS] = "groups",         [SRM_DB_TABLE_NODES] = "nodes",
    [SRM_DB_TABLE_PARAMS] = "params",         [SRM_DB_TABLE_USERS] = "users",
    [SRM_DB_TABLE_NODE_STATE] = "node_state", [SRM_DB_TABLE_HISTORY] = "history",
};

const char *srm_db_table_name(enum srm_db_table table)
{
    if ((unsigned)table >= SRM_DB_TABLE_MAX)
        return NULL;
    return table_names[table];
}

int srm_db_change_parse(const char *payload, size_t len, struct srm_db_change *ret_change)
{
    struct srm_db_change c = {0};
    struct reader r = {0};
    json_error_t jerr;
    json_t *root;
    int err = 0;

    if (!payload)
        return SRM_ECORRUPT;
    root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return SRM_ECORRUPT;
    if (!json_is_object(root)) {
        err = SRM_ECORRUPT;
        goto out;
    }
    json_t *t = json_object_get(root, "table");
    json_t *op = json_object_get(root, "op");
    if (!json_is_string(t) || (op && !json_is_string(op))) {
        err = SRM_ECORRUPT;
        goto out;
    }
    for (int i = 1; i < SRM_DB_TABLE_MAX; i++)
        if (strcmp(json_string_value(t), table_names[i]) == 0)
            c.table = (enum srm_db_table)i;
    if (op) {
        const char *o = json_string_value(op);
        c.op = strcmp(o, "insert") == 0   ? SRM_DB_CHANGE_INSERT
               : strcmp(o, "update") == 0 ? SRM_DB_CHANGE_UPDATE
               : strcmp(o, "delete") == 0 ? SRM_DB_CHANGE_DELETE
                                          : SRM_DB_CHANGE_UNKNOWN;
    }
    if ((err = get_int(&r, root, "id", false, 1, INT64_MAX, &c.id)) < 0 ||
        (err = get_int(&r, root, "node", false, 1, INT64_MAX, &c.node_id)) < 0 ||
        (err = get_int(&r, root, "group", false, 1, INT64_MAX, &c.group_id)) < 0)
        goto out;
    *ret_change = c;
out:
    json_decref(root);
    return err;
}
