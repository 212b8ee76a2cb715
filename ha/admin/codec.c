/*
 * The JSON codec of the API: every request body and response the server and srmctl
 * exchange (README.md "Endpoints"). Decoders check every type and bound and say which field
 * is wrong; they never trust a length or a count they did not check.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define ERROR_TEXT_MAX 1024
#define GROUPS_MAX     100000

/* ---- names ---- */

static const char *const source_names[SRM_ADMIN_SOURCE_MAX] = {"self", "peer", "none"};
static const char *const op_names[SRM_ADMIN_OP_MAX] = {"failover", "fallback", "recover"};

const char *srm_admin_source_name(enum srm_admin_source source)
{
    return (unsigned)source < SRM_ADMIN_SOURCE_MAX ? source_names[source] : NULL;
}

const char *srm_admin_op_name(enum srm_admin_op op)
{
    return (unsigned)op < SRM_ADMIN_OP_MAX ? op_names[op] : NULL;
}

int srm_admin_op_parse(const char *name, enum srm_admin_op *ret_op)
{
    for (int i = 0; name && i < SRM_ADMIN_OP_MAX; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *ret_op = (enum srm_admin_op)i;
            return 0;
        }
    }
    return -EINVAL;
}

enum srm_fsm_event_type srm_admin_op_event(enum srm_admin_op op)
{
    switch (op) {
    case SRM_ADMIN_OP_FAILOVER:
        return SRM_FSM_EVENT_ADMIN_FAILOVER;
    case SRM_ADMIN_OP_FALLBACK:
        return SRM_FSM_EVENT_ADMIN_FALLBACK;
    case SRM_ADMIN_OP_RECOVER:
        return SRM_FSM_EVENT_ADMIN_RECOVER;
    default:
        return SRM_FSM_EVENT_MAX;
    }
}

/* ---- decoding helpers ---- */

struct dec {
    char *errbuf;
    size_t errlen;
    bool failed;
};

static int dec_fail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int dec_fail(struct dec *d, const char *fmt, ...)
{
    if (!d->failed && d->errbuf && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->errbuf, d->errlen, fmt, ap);
        va_end(ap);
    }
    d->failed = true;
    return -EINVAL;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A string member: absent or null gives NULL unless required. maxlen in bytes. */
static int dec_str(struct dec *d, const json_t *obj, const char *where, const char *key,
                   bool required, size_t maxlen, char **ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return dec_fail(d, "%s: \"%s\" is missing", where, key);
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return dec_fail(d, "%s: \"%s\" must be a string, not %s", where, key, type_name(v));
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len > maxlen)
        return dec_fail(d, "%s: \"%s\" is longer than %zu bytes", where, key, maxlen);
    if (memchr(s, '\0', len))
        return dec_fail(d, "%s: \"%s\" contains a NUL character", where, key);
    char *c = strdup(s);
    if (!c) {
        d->failed = true;
        return -ENOMEM;
    }
    *ret = c;
    return 0;
}

static int dec_int(struct dec *d, const json_t *obj, const char *where, const char *key,
                   bool required, int64_t min, int64_t max, int64_t dflt, int64_t *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return dec_fail(d, "%s: \"%s\" is missing", where, key);
        *ret = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return dec_fail(d, "%s: \"%s\" must be an integer, not %s", where, key, type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return dec_fail(
            d, "%s: \"%s\" = %" JSON_INTEGER_FORMAT " is out of range [%" PRId64 ", %" PRId64 "]",
            where, key, x, min, max);
    *ret = x;
    return 0;
}

static int dec_bool(struct dec *d, const json_t *obj, const char *where, const char *key,
                    bool required, bool dflt, bool *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return dec_fail(d, "%s: \"%s\" is missing", where, key);
        *ret = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return dec_fail(d, "%s: \"%s\" must be true or false, not %s", where, key, type_name(v));
    *ret = json_is_true(v);
    return 0;
}

static int dec_obj(struct dec *d, const json_t *v, const char *where)
{
    if (!json_is_object(v))
        return dec_fail(d, "%s must be a JSON object, not %s", where, v ? type_name(v) : "nothing");
    return 0;
}

/* ---- status ---- */

void srm__admin_node_status_clear(struct srm_admin_node_status *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->address);
    free(n->error);
    for (size_t i = 0; i < n->n_services; i++)
        free(n->services[i].name);
    free(n->services);
    free(n->reported_state);
    free(n->reported_reason);
    memset(n, 0, sizeof(*n));
}

void srm_admin_status_free(struct srm_admin_status *status)
{
    if (!status)
        return;
    for (size_t g = 0; g < status->n_groups; g++) {
        free(status->groups[g].name);
        for (size_t i = 0; i < status->groups[g].n_nodes; i++)
            srm__admin_node_status_clear(&status->groups[g].nodes[i]);
    }
    free(status->groups);
    free(status->answered_by);
    free(status->config_source);
    free(status->assignment_mode);
    free(status);
}

static json_t *opt_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *opt_count(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *node_to_json(const struct srm_admin_node_status *n)
{
    const char *state = srm_fsm_state_name(n->state), *reason = srm_fsm_reason_name(n->reason);
    if ((unsigned)n->state >= SRM_FSM_STATE_MAX || (unsigned)n->reason >= SRM_FSM_REASON_MAX ||
        !srm_admin_source_name(n->source) || !n->name)
        return NULL;
    json_t *services = json_array();
    for (size_t i = 0; services && i < n->n_services; i++) {
        json_t *s =
            json_pack("{s:s, s:b, s:b}", "name", n->services[i].name ? n->services[i].name : "",
                      "critical", n->services[i].critical, "up", n->services[i].up);
        if (!s || json_array_append_new(services, s) < 0) {
            json_decref(s);
            json_decref(services);
            return NULL;
        }
    }
    json_t *repl =
        n->repl_known
            ? json_pack("{s:I, s:I, s:I}", "lag_entries", (json_int_t)n->lag_entries, "lag_bytes",
                        (json_int_t)n->lag_bytes, "lag_ms", (json_int_t)n->lag_ms)
            : json_null();
    json_t *reported = n->reported_state ? json_pack("{s:s, s:o, s:I}", "state", n->reported_state,
                                                     "reason", opt_string(n->reported_reason),
                                                     "since_us", (json_int_t)n->reported_since_us)
                                         : json_null();
    return json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "name",
                     n->name, "address", opt_string(n->address), "source",
                     srm_admin_source_name(n->source), "state", state, "reason", reason, "since_us",
                     (json_int_t)n->since_us, "age_ms", (json_int_t)n->age_ms, "error",
                     opt_string(n->error), "users_assigned", opt_count(n->users_assigned),
                     "users_active", opt_count(n->users_active), "replication", repl,
                     "critical_services", services, "reported", reported);
}

int srm_admin_status_to_json(const struct srm_admin_status *st, json_t **ret_json)
{
    if (!st)
        return -EINVAL;
    json_t *groups = json_array();
    json_t *root =
        json_pack("{s:o, s:s, s:b, s:{s:o, s:I}, s:o, s:o, s:o, s:o}", "answered_by",
                  opt_string(st->answered_by), "scope", st->local ? "local" : "cluster", "db_up",
                  st->db_up, "config", "source", opt_string(st->config_source), "age_ms",
                  (json_int_t)st->config_age_ms, "assignment_mode", opt_string(st->assignment_mode),
                  "users_total", opt_count(st->users_total), "users_unassigned",
                  opt_count(st->users_unassigned), "groups", groups);
    if (!root)
        return -ENOMEM;
    for (size_t g = 0; g < st->n_groups; g++) {
        const struct srm_admin_group_status *gs = &st->groups[g];
        json_t *nodes = json_array();
        json_t *jg = json_pack("{s:s, s:b, s:o}", "name", gs->name ? gs->name : "", "ha_enabled",
                               gs->ha_enabled, "nodes", nodes);
        if (!jg || json_array_append_new(groups, jg) < 0) {
            json_decref(root);
            return -ENOMEM;
        }
        for (size_t i = 0; i < gs->n_nodes && i < 2; i++) {
            json_t *jn = node_to_json(&gs->nodes[i]);
            if (!jn) {
                json_decref(root);
                return -EINVAL;
            }
            json_array_append_new(nodes, jn);
        }
    }
    *ret_json = root;
    return 0;
}

static int node_from_json(struct dec *d, const json_t *v, const char *where,
                          struct srm_admin_node_status *n)
{
    int rc;
    char *s = NULL;
    n->users_assigned = n->users_active = -1;
    if ((rc = dec_obj(d, v, where)) < 0)
        return rc;
    if ((rc = dec_str(d, v, where, "name", true, SRM_DB_NAME_MAX, &n->name)) < 0 ||
        (rc = dec_str(d, v, where, "address", false, SRM_DB_ADDRESS_MAX, &n->address)) < 0 ||
        (rc = dec_str(d, v, where, "error", false, ERROR_TEXT_MAX, &n->error)) < 0)
        return rc;
    if ((rc = dec_str(d, v, where, "source", true, 16, &s)) < 0)
        return rc;
    int src = -1;
    for (int i = 0; i < SRM_ADMIN_SOURCE_MAX; i++)
        if (strcmp(s, source_names[i]) == 0)
            src = i;
    free(s);
    if (src < 0)
        return dec_fail(d, "%s: \"source\" must be \"self\", \"peer\" or \"none\"", where);
    n->source = (enum srm_admin_source)src;
    if ((rc = dec_str(d, v, where, "state", true, 64, &s)) < 0)
        return rc;
    enum srm_fsm_state state;
    rc = srm_fsm_state_parse(s, &state);
    if (rc < 0 || strcmp(s, srm_fsm_state_name(state)) != 0) {
        rc = dec_fail(d, "%s: \"state\" = \"%s\" is not a state of SPEC §3", where, s);
        free(s);
        return rc;
    }
    free(s);
    if ((rc = dec_str(d, v, where, "reason", true, 64, &s)) < 0)
        return rc;
    enum srm_fsm_reason reason;
    rc = srm_fsm_reason_parse(s, &reason);
    if (rc < 0 || strcmp(s, srm_fsm_reason_name(reason)) != 0) {
        rc = dec_fail(d, "%s: \"reason\" = \"%s\" is not a reason of SPEC §3", where, s);
        free(s);
        return rc;
    }
    free(s);
    n->state = state;
    n->reason = reason;
    if ((rc = dec_int(d, v, where, "since_us", false, 0, INT64_MAX, 0, &n->since_us)) < 0 ||
        (rc = dec_int(d, v, where, "age_ms", false, 0, INT64_MAX, 0, &n->age_ms)) < 0 ||
        (rc = dec_int(d, v, where, "users_assigned", false, 0, INT64_MAX, -1, &n->users_assigned)) <
            0 ||
        (rc = dec_int(d, v, where, "users_active", false, 0, INT64_MAX, -1, &n->users_active)) < 0)
        return rc;
    json_t *repl = json_object_get(v, "replication");
    if (repl && !json_is_null(repl)) {
        char w[160];
        snprintf(w, sizeof(w), "%s.replication", where);
        int64_t e, b, ms;
        if ((rc = dec_obj(d, repl, w)) < 0 ||
            (rc = dec_int(d, repl, w, "lag_entries", true, 0, INT64_MAX, 0, &e)) < 0 ||
            (rc = dec_int(d, repl, w, "lag_bytes", true, 0, INT64_MAX, 0, &b)) < 0 ||
            (rc = dec_int(d, repl, w, "lag_ms", true, 0, INT64_MAX, 0, &ms)) < 0)
            return rc;
        n->repl_known = true;
        n->lag_entries = (uint64_t)e;
        n->lag_bytes = (uint64_t)b;
        n->lag_ms = (uint64_t)ms;
    }
    json_t *svcs = json_object_get(v, "critical_services");
    if (svcs && !json_is_null(svcs)) {
        if (!json_is_array(svcs))
            return dec_fail(d, "%s: \"critical_services\" must be an array", where);
        size_t ns = json_array_size(svcs);
        if (ns > SRM_ADMIN_SERVICES_MAX)
            return dec_fail(d, "%s: more than %d critical services", where, SRM_ADMIN_SERVICES_MAX);
        n->services = calloc(ns ? ns : 1, sizeof(*n->services));
        if (!n->services)
            return -ENOMEM;
        for (size_t i = 0; i < ns; i++) {
            char w[160];
            snprintf(w, sizeof(w), "%s.critical_services[%zu]", where, i);
            json_t *sv = json_array_get(svcs, i);
            if ((rc = dec_obj(d, sv, w)) < 0 ||
                (rc = dec_str(d, sv, w, "name", true, SRM_DB_NAME_MAX, &n->services[i].name)) < 0)
                return rc;
            n->n_services = i + 1;
            if ((rc = dec_bool(d, sv, w, "critical", false, true, &n->services[i].critical)) < 0 ||
                (rc = dec_bool(d, sv, w, "up", true, false, &n->services[i].up)) < 0)
                return rc;
        }
    }
    json_t *rep = json_object_get(v, "reported");
    if (rep && !json_is_null(rep)) {
        char w[160];
        snprintf(w, sizeof(w), "%s.reported", where);
        if ((rc = dec_obj(d, rep, w)) < 0 ||
            (rc = dec_str(d, rep, w, "state", true, 64, &n->reported_state)) < 0 ||
            (rc = dec_str(d, rep, w, "reason", false, 64, &n->reported_reason)) < 0 ||
            (rc = dec_int(d, rep, w, "since_us", false, 0, INT64_MAX, 0, &n->reported_since_us)) <
                0)
            return rc;
        if (!srm_db_state_valid(n->reported_state) ||
            (n->reported_reason && !srm_db_reason_valid(n->reported_reason)))
            return dec_fail(d, "%s: not a state and reason of SPEC §3", w);
    }
    return 0;
}

int srm_admin_status_from_json(const json_t *json, struct srm_admin_status **ret_status,
                               char *errbuf, size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    int rc;
    if ((rc = dec_obj(&d, json, "status")) < 0)
        return rc;
    struct srm_admin_status *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    char *scope = NULL;
    if ((rc = dec_str(&d, json, "status", "answered_by", false, SRM_DB_NAME_MAX,
                      &st->answered_by)) < 0 ||
        (rc = dec_str(&d, json, "status", "scope", true, 16, &scope)) < 0)
        goto fail;
    if (strcmp(scope, "local") != 0 && strcmp(scope, "cluster") != 0) {
        free(scope);
        rc = dec_fail(&d, "status: \"scope\" must be \"local\" or \"cluster\"");
        goto fail;
    }
    st->local = strcmp(scope, "local") == 0;
    free(scope);
    if ((rc = dec_bool(&d, json, "status", "db_up", false, false, &st->db_up)) < 0 ||
        (rc = dec_str(&d, json, "status", "assignment_mode", false, 32, &st->assignment_mode)) <
            0 ||
        (rc = dec_int(&d, json, "status", "users_total", false, 0, INT64_MAX, -1,
                      &st->users_total)) < 0 ||
        (rc = dec_int(&d, json, "status", "users_unassigned", false, 0, INT64_MAX, -1,
                      &st->users_unassigned)) < 0)
        goto fail;
    st->config_age_ms = -1;
    json_t *cfg = json_object_get(json, "config");
    if (cfg && !json_is_null(cfg)) {
        if ((rc = dec_obj(&d, cfg, "status.config")) < 0 ||
            (rc = dec_str(&d, cfg, "status.config", "source", false, 16, &st->config_source)) < 0 ||
            (rc = dec_int(&d, cfg, "status.config", "age_ms", false, -1, INT64_MAX, -1,
                          &st->config_age_ms)) < 0)
            goto fail;
    }
    json_t *groups = json_object_get(json, "groups");
    if (!json_is_array(groups)) {
        rc = dec_fail(&d, "status: \"groups\" must be an array");
        goto fail;
    }
    size_t ng = json_array_size(groups);
    if (ng > GROUPS_MAX) {
        rc = dec_fail(&d, "status: more than %d groups", GROUPS_MAX);
        goto fail;
    }
    st->groups = calloc(ng ? ng : 1, sizeof(*st->groups));
    if (!st->groups) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t g = 0; g < ng; g++) {
        char w[64];
        snprintf(w, sizeof(w), "groups[%zu]", g);
        json_t *jg = json_array_get(groups, g);
        struct srm_admin_group_status *gs = &st->groups[g];
        st->n_groups = g + 1;
        if ((rc = dec_obj(&d, jg, w)) < 0 ||
            (rc = dec_str(&d, jg, w, "name", true, SRM_DB_NAME_MAX, &gs->name)) < 0 ||
            (rc = dec_bool(&d, jg, w, "ha_enabled", false, false, &gs->ha_enabled)) < 0)
            goto fail;
        json_t *nodes = json_object_get(jg, "nodes");
        if (!json_is_array(nodes) || json_array_size(nodes) > 2) {
            rc = dec_fail(&d, "%s: \"nodes\" must be an array of at most 2 nodes", w);
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(nodes); i++) {
            char wn[96];
            snprintf(wn, sizeof(wn), "%s.nodes[%zu]", w, i);
            gs->n_nodes = i + 1;
            if ((rc = node_from_json(&d, json_array_get(nodes, i), wn, &gs->nodes[i])) < 0)
                goto fail;
        }
    }
    *ret_status = st;
    return 0;
fail:
    srm_admin_status_free(st);
    return rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

/* ---- operation answers ---- */

int srm_admin_op_answer_to_json(const struct srm_admin_op_answer *a, json_t **ret_json)
{
    if (!a || !srm_admin_op_name(a->op) || a->n_results > 2)
        return -EINVAL;
    json_t *results = json_array();
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:b, s:o}", "operation", srm_admin_op_name(a->op),
                  a->group ? "group" : "node", a->target, "scope", a->group ? "group" : "node",
                  "accepted", a->accepted, "results", results);
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; i < a->n_results; i++) {
        const struct srm_admin_op_result *r = &a->results[i];
        json_t *jr = json_pack("{s:s, s:b, s:s, s:s}", "node", r->node, "accepted", r->accepted,
                               "code", r->status ? srm_errname(r->status) : "OK", "why", r->why);
        if (!jr || json_array_append_new(results, jr) < 0) {
            json_decref(root);
            return -ENOMEM;
        }
    }
    *ret_json = root;
    return 0;
}

static int copy_into(struct dec *d, const json_t *obj, const char *where, const char *key,
                     bool required, char *out, size_t outlen)
{
    char *s = NULL;
    int rc = dec_str(d, obj, where, key, required, outlen - 1, &s);
    if (rc < 0)
        return rc;
    snprintf(out, outlen, "%s", s ? s : "");
    free(s);
    return 0;
}

static int code_from_name(const char *name)
{
    if (strcmp(name, "OK") == 0)
        return 0;
    for (int c = SRM_E_BASE; c < SRM__E_LAST; c++)
        if (strcmp(srm_errname(-c), name) == 0)
            return -c;
    for (int e = 1; e < 140; e++)
        if (strcmp(srm_errname(-e), name) == 0)
            return -e;
    return -EIO;
}

int srm_admin_op_answer_from_json(const json_t *json, struct srm_admin_op_answer *ret_answer,
                                  char *errbuf, size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    struct srm_admin_op_answer a;
    memset(&a, 0, sizeof(a));
    char op[16];
    int rc;
    if ((rc = dec_obj(&d, json, "answer")) < 0 ||
        (rc = copy_into(&d, json, "answer", "operation", true, op, sizeof(op))) < 0)
        return rc;
    if (srm_admin_op_parse(op, &a.op) < 0)
        return dec_fail(&d, "answer: unknown operation \"%s\"", op);
    a.group = json_object_get(json, "group") != NULL;
    if ((rc = copy_into(&d, json, "answer", a.group ? "group" : "node", true, a.target,
                        sizeof(a.target))) < 0 ||
        (rc = dec_bool(&d, json, "answer", "accepted", true, false, &a.accepted)) < 0)
        return rc;
    json_t *results = json_object_get(json, "results");
    if (!json_is_array(results) || json_array_size(results) < 1 || json_array_size(results) > 2)
        return dec_fail(&d, "answer: \"results\" must be an array of 1 or 2 results");
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *jr = json_array_get(results, i);
        struct srm_admin_op_result *r = &a.results[i];
        char w[32], code[48];
        snprintf(w, sizeof(w), "results[%zu]", i);
        r->op = a.op;
        if ((rc = dec_obj(&d, jr, w)) < 0 ||
            (rc = copy_into(&d, jr, w, "node", true, r->node, sizeof(r->node))) < 0 ||
            (rc = dec_bool(&d, jr, w, "accepted", true, false, &r->accepted)) < 0 ||
            (rc = copy_into(&d, jr, w, "code", true, code, sizeof(code))) < 0 ||
            (rc = copy_into(&d, jr, w, "why", false, r->why, sizeof(r->why))) < 0)
            return rc;
        r->status = code_from_name(code);
        a.n_results = i + 1;
    }
    *ret_answer = a;
    return 0;
}

/* ---- users requests ---- */

void srm_admin_users_request_clear(struct srm_admin_users_request *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->n; i++)
        free(req->names[i]);
    free(req->names);
    free(req->node);
    memset(req, 0, sizeof(*req));
}

int srm_admin_users_request_to_json(const struct srm_admin_users_request *req, json_t **ret_json)
{
    json_t *names = json_array();
    json_t *root = json_pack("{s:o, s:o}", "names", names, "node", opt_string(req->node));
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; i < req->n; i++) {
        if (json_array_append_new(names, json_string(req->names[i])) < 0) {
            json_decref(root);
            return -ENOMEM;
        }
    }
    *ret_json = root;
    return 0;
}

int srm_admin_users_request_from_json(const json_t *json, struct srm_admin_users_request *ret_req,
                                      char *errbuf, size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    struct srm_admin_users_request r = {0};
    int rc;
    if ((rc = dec_obj(&d, json, "request body")) < 0)
        return rc;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)json, key, val)
    {
        (void)val;
        if (strcmp(key, "names") != 0 && strcmp(key, "node") != 0)
            return dec_fail(&d, "request body: unknown field \"%s\" (expected \"names\", \"node\")",
                            key);
    }
    if ((rc = dec_str(&d, json, "request body", "node", false, SRM_DB_NAME_MAX, &r.node)) < 0)
        goto fail;
    if (r.node && srm_db_validate_node_name(r.node, errbuf, errlen) < 0) {
        rc = -EINVAL;
        goto fail;
    }
    json_t *names = json_object_get(json, "names");
    if (!names) {
        rc = dec_fail(&d, "request body: \"names\" is missing");
        goto fail;
    }
    if (!json_is_array(names)) {
        rc = dec_fail(&d, "request body: \"names\" must be an array of user names, not %s",
                      type_name(names));
        goto fail;
    }
    size_t n = json_array_size(names);
    if (n == 0 || n > SRM_ADMIN_USERS_MAX) {
        rc = dec_fail(&d, "request body: \"names\" must hold 1 to %d user names (it has %zu)",
                      SRM_ADMIN_USERS_MAX, n);
        goto fail;
    }
    r.names = calloc(n, sizeof(*r.names));
    if (!r.names) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(names, i);
        if (!json_is_string(v)) {
            rc = dec_fail(&d, "request body: names[%zu] must be a string, not %s", i, type_name(v));
            goto fail;
        }
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v)) {
            rc = dec_fail(&d, "request body: names[%zu] contains a NUL character", i);
            goto fail;
        }
        char e[160];
        if (srm_db_validate_user_name(s, e, sizeof(e)) < 0) {
            rc = dec_fail(&d, "request body: names[%zu]: %s", i, e);
            goto fail;
        }
        r.names[i] = strdup(s);
        if (!r.names[i]) {
            rc = -ENOMEM;
            goto fail;
        }
        r.n = i + 1;
    }
    *ret_req = r;
    return 0;
fail:
    if (r.n == 0) {
        free(r.names);
        r.names = NULL;
    }
    srm_admin_users_request_clear(&r);
    return rc;
}

/* ---- parameter and HA requests ---- */

int srm_admin_param_request_to_json(const struct srm_admin_param_request *req, json_t **ret_json)
{
    json_t *j = json_pack("{s:s, s:o}", "value", req->value, "node",
                          req->node[0] ? json_string(req->node) : json_null());
    if (!j)
        return -ENOMEM;
    *ret_json = j;
    return 0;
}

int srm_admin_param_request_from_json(const json_t *json, struct srm_admin_param_request *ret_req,
                                      char *errbuf, size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    struct srm_admin_param_request r;
    memset(&r, 0, sizeof(r));
    int rc;
    if ((rc = dec_obj(&d, json, "request body")) < 0)
        return rc;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)json, key, val)
    {
        (void)val;
        if (strcmp(key, "value") != 0 && strcmp(key, "node") != 0)
            return dec_fail(&d, "request body: unknown field \"%s\" (expected \"value\", \"node\")",
                            key);
    }
    json_t *v = json_object_get(json, "value");
    if (!v)
        return dec_fail(&d, "request body: \"value\" is missing");
    if (json_is_string(v)) {
        if (json_string_length(v) >= sizeof(r.value) ||
            strlen(json_string_value(v)) != json_string_length(v))
            return dec_fail(&d, "request body: \"value\" is longer than %zu bytes",
                            sizeof(r.value) - 1);
        snprintf(r.value, sizeof(r.value), "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(r.value, sizeof(r.value), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(r.value, sizeof(r.value), "%s", json_is_true(v) ? "true" : "false");
    } else {
        return dec_fail(&d,
                        "request body: \"value\" must be a string, an integer or a boolean, "
                        "not %s",
                        type_name(v));
    }
    if ((rc = copy_into(&d, json, "request body", "node", false, r.node, sizeof(r.node))) < 0)
        return rc;
    if (r.node[0] && srm_db_validate_node_name(r.node, errbuf, errlen) < 0)
        return -EINVAL;
    *ret_req = r;
    return 0;
}

int srm_admin_ha_request_to_json(bool enabled, json_t **ret_json)
{
    json_t *j = json_pack("{s:b}", "enabled", enabled);
    if (!j)
        return -ENOMEM;
    *ret_json = j;
    return 0;
}

int srm_admin_ha_request_from_json(const json_t *json, bool *ret_enabled, char *errbuf,
                                   size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    int rc;
    bool en;
    if ((rc = dec_obj(&d, json, "request body")) < 0)
        return rc;
    if (json_object_size(json) != 1)
        return dec_fail(&d, "request body: expected exactly one field, \"enabled\"");
    if ((rc = dec_bool(&d, json, "request body", "enabled", true, false, &en)) < 0)
        return rc;
    *ret_enabled = en;
    return 0;
}

/* ---- parameter values ---- */

static const char *const param_sources[] = {"default", "cluster", "node"};

int srm_admin_param_value_to_json(const struct srm_db_param_value *value, const char *node,
                                  json_t **ret_json)
{
    const struct srm_db_param_def *def = srm_db_param_def(value->param);
    if (!def || (unsigned)value->source > SRM_DB_PARAM_SOURCE_NODE)
        return -EINVAL;
    json_t *v = def->kind == SRM_DB_PARAM_KIND_BOOL ? json_boolean(value->value != 0)
                                                    : json_integer(value->value);
    json_t *j = json_pack(
        "{s:s, s:o, s:s, s:o, s:s, s:s, s:I, s:I, s:I, s:b, s:s}", "name", def->name, "value", v,
        "source", param_sources[value->source], "node", opt_string(node), "kind",
        def->kind == SRM_DB_PARAM_KIND_BOOL ? "bool" : "int", "unit", def->unit, "default",
        (json_int_t)def->default_value, "min", (json_int_t)def->min_value, "max",
        (json_int_t)def->max_value, "per_node", def->per_node, "description", def->description);
    if (!j)
        return -ENOMEM;
    *ret_json = j;
    return 0;
}

/* ---- events ---- */

static void format_time(int64_t us, char *buf, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[32];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", b, (int)((us % 1000000) / 1000));
}

int srm_admin_event_to_json(const struct srm_db_event *e, json_t **ret_json)
{
    char at[48];
    format_time(e->at_us, at, sizeof(at));
    json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}", "id",
                          (json_int_t)e->id, "at_us", (json_int_t)e->at_us, "at", at, "node",
                          e->node ? e->node : "", "group", opt_string(e->group), "old_state",
                          opt_string(e->old_state), "old_reason", opt_string(e->old_reason),
                          "new_state", e->new_state ? e->new_state : "", "new_reason",
                          e->new_reason ? e->new_reason : "", "cause", e->cause ? e->cause : "");
    if (!j)
        return -ENOMEM;
    *ret_json = j;
    return 0;
}

void srm_admin_event_clear(struct srm_db_event *e)
{
    if (!e)
        return;
    free(e->node);
    free(e->group);
    free(e->old_state);
    free(e->old_reason);
    free(e->new_state);
    free(e->new_reason);
    free(e->cause);
    memset(e, 0, sizeof(*e));
}

int srm_admin_event_from_json(const json_t *json, struct srm_db_event *ret_event, char *errbuf,
                              size_t errlen)
{
    struct dec d = {errbuf, errlen, false};
    struct srm_db_event e;
    memset(&e, 0, sizeof(e));
    int rc;
    if ((rc = dec_obj(&d, json, "event")) < 0)
        return rc;
    if ((rc = dec_int(&d, json, "event", "id", true, 1, INT64_MAX, 0, &e.id)) < 0 ||
        (rc = dec_int(&d, json, "event", "at_us", true, 0, INT64_MAX, 0, &e.at_us)) < 0 ||
        (rc = dec_str(&d, json, "event", "node", true, SRM_DB_NAME_MAX, &e.node)) < 0 ||
        (rc = dec_str(&d, json, "event", "group", false, SRM_DB_NAME_MAX, &e.group)) < 0 ||
        (rc = dec_str(&d, json, "event", "old_state", false, 64, &e.old_state)) < 0 ||
        (rc = dec_str(&d, json, "event", "old_reason", false, 64, &e.old_reason)) < 0 ||
        (rc = dec_str(&d, json, "event", "new_state", true, 64, &e.new_state)) < 0 ||
        (rc = dec_str(&d, json, "event", "new_reason", true, 64, &e.new_reason)) < 0 ||
        (rc = dec_str(&d, json, "event", "cause", false, 4 * SRM_DB_CAUSE_MAX, &e.cause)) < 0)
        goto fail;
    if (!srm_db_state_valid(e.new_state) || !srm_db_reason_valid(e.new_reason) ||
        (e.old_state && !srm_db_state_valid(e.old_state)) ||
        (e.old_reason && !srm_db_reason_valid(e.old_reason))) {
        rc = dec_fail(&d, "event %" PRId64 ": not a state and reason of SPEC §3", e.id);
        goto fail;
    }
    *ret_event = e;
    return 0;
fail:
    srm_admin_event_clear(&e);
    return rc;
}

/* ---- errors ---- */

int srm_admin_error_to_json(int http_status, int err, const char *message, json_t **ret_json)
{
    json_t *j = json_pack("{s:{s:i, s:s, s:s}}", "error", "status", http_status, "code",
                          srm_errname(err), "message", message ? message : srm_strerror(err));
    if (!j)
        return -ENOMEM;
    *ret_json = j;
    return 0;
}
