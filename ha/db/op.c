/*
 * Operations: for each, the statement it sends (one call of a function of
 * migrations/002_rules.sql, so one transaction), the C validation of its arguments, and
 * the parsing of its answer. The blocking and asynchronous APIs share all of it; they
 * differ only in how they wait.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srm__db_op *srm__db_op_new(const char *what, const char *sql, enum srm__db_parse parse)
{
    struct srm__db_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->what = what;
    op->sql = sql;
    op->parse = parse;
    op->result.errmsg = op->errmsg;
    return op;
}

void srm__db_op_fail(struct srm__db_op *op, int status, const char *fmt, ...)
{
    if (op->status < 0)
        return; /* the first failure is the one to report */
    int n = snprintf(op->errmsg, sizeof(op->errmsg), "%s: ", op->what);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(op->errmsg))
        vsnprintf(op->errmsg + n, sizeof(op->errmsg) - (size_t)n, fmt, ap);
    va_end(ap);
    op->status = status;
}

void srm__db_op_param(struct srm__db_op *op, int i, const char *value)
{
    if (i >= op->nparams)
        op->nparams = i + 1;
    free(op->params[i]);
    op->params[i] = NULL;
    if (value && !(op->params[i] = strdup(value)))
        srm__db_op_fail(op, -ENOMEM, "out of memory");
}

void srm__db_op_param_i64(struct srm__db_op *op, int i, int64_t value)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, value);
    srm__db_op_param(op, i, buf);
}

void srm__db_result_release(struct srm_db_result *result)
{
    srm_db_config_free(result->config);
    srm_db_user_list_free(result->users);
    srm_db_event_list_free(result->events);
    result->config = NULL;
    result->users = NULL;
    result->events = NULL;
}

void srm__db_op_free(struct srm__db_op *op)
{
    if (!op)
        return;
    for (int i = 0; i < SRM__DB_OP_MAXPARAMS; i++)
        free(op->params[i]);
    srm__db_result_release(&op->result);
    free(op);
}

/* ---- Errors ---- */

void srm__db_pq_message(const char *msg, char *buf, size_t len)
{
    if (!msg || !msg[0])
        msg = "no reason given";
    if (strncmp(msg, "ERROR:  ", 8) == 0 || strncmp(msg, "FATAL:  ", 8) == 0)
        msg += 8;
    /* libpq ends messages with a newline and may hold several lines and tabs: one line */
    size_t n = 0;
    bool space = false;
    for (const char *p = msg; *p && n + 1 < len; p++) {
        if (*p == '\n' || *p == '\t' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < len)
            buf[n++] = ' ';
        space = false;
        buf[n++] = *p;
    }
    if (len > 0)
        buf[n] = '\0';
}

void srm__db_op_fail_down(struct srm__db_op *op, const char *reason, bool maybe_applied)
{
    char msg[320];
    srm__db_pq_message(reason, msg, sizeof(msg));
    if (maybe_applied)
        srm__db_op_fail(op, SRM_EDB_DOWN,
                        "the connection to the configuration database broke before the answer "
                        "(%s); the operation may or may not have been applied: check, then retry",
                        msg);
    else
        srm__db_op_fail(op, SRM_EDB_DOWN,
                        "the configuration database is down (%s); nothing was changed; retry "
                        "when it is back",
                        msg);
}

static int status_from_sqlstate(const char *st)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"SRMNF", SRM_ENOTFOUND},    {"SRMEX", SRM_EEXISTS},  {"SRMRF", SRM_EREFUSED},
        {"SRMFO", SRM_EFAILED_OVER}, {"SRMIV", -EINVAL},      {"SRMRG", -ERANGE},
        {"23505", SRM_EEXISTS},      {"23503", SRM_EREFUSED}, {"23514", -EINVAL},
        {"23502", -EINVAL},          {"40001", -EAGAIN},      {"40P01", -EAGAIN},
        {"57P01", SRM_EDB_DOWN},     {"57P02", SRM_EDB_DOWN}, {"57P03", SRM_EDB_DOWN},
        {"57014", -ECANCELED},
    };
    if (!st)
        return SRM_EDB;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(st, map[i].code) == 0)
            return map[i].status;
    if (strncmp(st, "08", 2) == 0)
        return SRM_EDB_DOWN;
    if (strncmp(st, "22", 2) == 0)
        return -EINVAL;
    return SRM_EDB;
}

static void fail_from_result(struct srm__db_op *op, PGconn *conn, const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    char msg[320];

    if (!st && conn && PQstatus(conn) == CONNECTION_BAD) {
        srm__db_op_fail_down(op, PQerrorMessage(conn), true);
        return;
    }
    srm__db_pq_message(primary ? primary : PQresultErrorMessage(res), msg, sizeof(msg));
    int status = status_from_sqlstate(st);
    if (st && strncmp(st, "SRM", 3) == 0) {
        srm__db_op_fail(op, status, "%s%s%s", msg, hint ? "; " : "", hint ? hint : "");
        return;
    }
    if (status == SRM_EDB_DOWN) {
        srm__db_op_fail_down(op, msg, true);
        return;
    }
    if (st && (strcmp(st, "42883") == 0 || strcmp(st, "42P01") == 0)) {
        srm__db_op_fail(op, SRM_EDB,
                        "the database has no srm schema (%s); run the migrations (srmd does at "
                        "start)",
                        msg);
        return;
    }
    srm__db_op_fail(op, status, "database error %s: %s; %s", st ? st : "?", msg,
                    hint ? hint : "see the PostgreSQL server log");
}

/* ---- Parsing ---- */

static int text_i64(const char *s, int64_t *ret)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* Copies a column value; NULL for SQL NULL. Returns -ENOMEM on failure. */
static int col_str(const PGresult *res, int row, int col, char **ret)
{
    *ret = NULL;
    if (PQgetisnull(res, row, col))
        return 0;
    *ret = strdup(PQgetvalue(res, row, col));
    return *ret ? 0 : -ENOMEM;
}

static int col_i64(const PGresult *res, int row, int col, int64_t *ret)
{
    *ret = 0;
    if (col < 0 || PQgetisnull(res, row, col))
        return 0;
    return text_i64(PQgetvalue(res, row, col), ret);
}

static void parse_scalars(struct srm__db_op *op, const PGresult *res)
{
    if (PQntuples(res) < 1)
        return;
    if (col_i64(res, 0, PQfnumber(res, "id"), &op->result.id) < 0 ||
        col_i64(res, 0, PQfnumber(res, "count"), &op->result.count) < 0 ||
        col_i64(res, 0, PQfnumber(res, "moved"), &op->result.moved) < 0)
        srm__db_op_fail(op, SRM_EDB, "unexpected answer from the database (not an integer)");
}

static void parse_config(struct srm__db_op *op, const PGresult *res)
{
    char msg[SRM_DB_ERRMSG_MAX];
    json_error_t jerr;

    if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
        srm__db_op_fail(op, SRM_EDB, "unexpected answer from the database (no snapshot)");
        return;
    }
    json_t *root = json_loads(PQgetvalue(res, 0, 0), JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        srm__db_op_fail(op, SRM_ECORRUPT, "the snapshot is not JSON: %s", jerr.text);
        return;
    }
    json_t *v = json_object_get(root, "schema_version");
    if (json_is_integer(v) && json_integer_value(v) > srm_db_schema_version_known()) {
        srm__db_op_fail(op, SRM_EDB_SCHEMA,
                        "the database schema is version %" JSON_INTEGER_FORMAT
                        " but this program knows only up to %d; upgrade srm on this node",
                        json_integer_value(v), srm_db_schema_version_known());
    } else {
        int err = srm__db_config_from_json(root, SRM_DB_SOURCE_DATABASE, &op->result.config, msg,
                                           sizeof(msg));
        if (err < 0)
            srm__db_op_fail(op, err, "the snapshot breaks a rule: %s",
                            err == -ENOMEM ? "out of memory" : msg);
    }
    json_decref(root);
}

static void parse_users(struct srm__db_op *op, const PGresult *res)
{
    int rows = PQntuples(res);
    struct srm_db_user_list *l = calloc(1, sizeof(*l));

    if (!l || !(l->users = calloc(rows ? (size_t)rows : 1, sizeof(*l->users)))) {
        free(l);
        srm__db_op_fail(op, -ENOMEM, "out of memory");
        return;
    }
    op->result.users = l;
    for (int i = 0; i < rows; i++) {
        struct srm_db_user *u = &l->users[i];
        l->n = (size_t)i + 1;
        if (col_i64(res, i, 0, &u->id) < 0 || col_str(res, i, 1, &u->name) < 0 ||
            col_str(res, i, 2, &u->node) < 0 || !u->name) {
            srm__db_op_fail(op, -ENOMEM, "out of memory");
            return;
        }
    }
}

static void parse_events(struct srm__db_op *op, const PGresult *res)
{
    int rows = PQntuples(res);
    struct srm_db_event_list *l = calloc(1, sizeof(*l));

    if (!l || !(l->events = calloc(rows ? (size_t)rows : 1, sizeof(*l->events)))) {
        free(l);
        srm__db_op_fail(op, -ENOMEM, "out of memory");
        return;
    }
    op->result.events = l;
    for (int i = 0; i < rows; i++) {
        struct srm_db_event *e = &l->events[i];
        l->n = (size_t)i + 1;
        if (col_i64(res, i, 0, &e->id) < 0 || col_i64(res, i, 1, &e->at_us) < 0 ||
            col_i64(res, i, 2, &e->node_id) < 0 || col_str(res, i, 3, &e->node) < 0 ||
            col_str(res, i, 4, &e->group) < 0 || col_str(res, i, 5, &e->old_state) < 0 ||
            col_str(res, i, 6, &e->old_reason) < 0 || col_str(res, i, 7, &e->new_state) < 0 ||
            col_str(res, i, 8, &e->new_reason) < 0 || col_str(res, i, 9, &e->cause) < 0) {
            srm__db_op_fail(op, -ENOMEM, "out of memory");
            return;
        }
    }
}

static void parse_param(struct srm__db_op *op, const PGresult *res)
{
    if (PQntuples(res) != 1 || PQnfields(res) != 2 ||
        text_i64(PQgetvalue(res, 0, 0), &op->result.param.value) < 0) {
        srm__db_op_fail(op, SRM_EDB, "unexpected answer from the database");
        return;
    }
    const char *src = PQgetvalue(res, 0, 1);
    op->result.param.param = op->param;
    op->result.param.source = strcmp(src, "node") == 0      ? SRM_DB_PARAM_SOURCE_NODE
                              : strcmp(src, "cluster") == 0 ? SRM_DB_PARAM_SOURCE_CLUSTER
                                                            : SRM_DB_PARAM_SOURCE_DEFAULT;
}

void srm__db_op_finish(struct srm__db_op *op, PGconn *conn, const PGresult *res)
{
    if (!res) {
        srm__db_op_fail_down(op, conn ? PQerrorMessage(conn) : "no connection", true);
        return;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fail_from_result(op, conn, res);
        return;
    }
    switch (op->parse) {
    case SRM__DB_PARSE_NONE:
        break;
    case SRM__DB_PARSE_SCALARS:
        parse_scalars(op, res);
        break;
    case SRM__DB_PARSE_CONFIG:
        parse_config(op, res);
        break;
    case SRM__DB_PARSE_USERS:
        parse_users(op, res);
        break;
    case SRM__DB_PARSE_EVENTS:
        parse_events(op, res);
        break;
    case SRM__DB_PARSE_PARAM:
        parse_param(op, res);
        break;
    }
    if (op->status >= 0)
        op->errmsg[0] = '\0';
    else
        srm__db_result_release(&op->result);
}

/* ---- Builders ---- */

/* Runs a validator; on failure fails the op with its message. */
#define VALIDATE(op, call)                                                                         \
    do {                                                                                           \
        char vmsg_[SRM_DB_ERRMSG_MAX];                                                             \
        int verr_ = (call);                                                                        \
        if (verr_ < 0)                                                                             \
            srm__db_op_fail((op), verr_, "%s", vmsg_);                                             \
    } while (0)
#define V(fn, arg) fn((arg), vmsg_, sizeof(vmsg_))

struct srm__db_op *srm__db_build_config_load(void)
{
    return srm__db_op_new("config load", "SELECT srm_config_snapshot()", SRM__DB_PARSE_CONFIG);
}

struct srm__db_op *srm__db_build_group_create(const char *name, const char *description)
{
    struct srm__db_op *op = srm__db_op_new("group create", "SELECT srm_group_create($1, $2) AS id",
                                           SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    if (!description)
        description = "";
    VALIDATE(op, V(srm_db_validate_group_name, name));
    VALIDATE(op, V(srm_db_validate_description, description));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, description);
    return op;
}

struct srm__db_op *srm__db_build_group_update(const char *name, const char *new_name,
                                              const char *description)
{
    struct srm__db_op *op = srm__db_op_new(
        "group update", "SELECT srm_group_update($1, $2, $3) AS id", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_group_name, name));
    if (new_name)
        VALIDATE(op, V(srm_db_validate_group_name, new_name));
    if (description)
        VALIDATE(op, V(srm_db_validate_description, description));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, new_name);
    srm__db_op_param(op, 2, description);
    return op;
}

struct srm__db_op *srm__db_build_group_delete(const char *name)
{
    struct srm__db_op *op =
        srm__db_op_new("group delete", "SELECT srm_group_delete($1) AS id", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_group_name, name));
    srm__db_op_param(op, 0, name);
    return op;
}

struct srm__db_op *srm__db_build_group_set_ha(const char *name, bool enabled)
{
    struct srm__db_op *op =
        srm__db_op_new(enabled ? "ha enable" : "ha disable",
                       "SELECT srm_group_set_ha($1, $2::boolean) AS id", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_group_name, name));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, enabled ? "true" : "false");
    return op;
}

struct srm__db_op *srm__db_build_node_add(const char *name, const char *address, const char *group)
{
    struct srm__db_op *op = srm__db_op_new(
        "node add", "SELECT id, moved FROM srm_node_add($1, $2, $3)", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_node_name, name));
    VALIDATE(op, V(srm_db_validate_address, address));
    VALIDATE(op, V(srm_db_validate_group_name, group));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, address);
    srm__db_op_param(op, 2, group);
    return op;
}

struct srm__db_op *srm__db_build_node_update(const char *name, const char *address)
{
    struct srm__db_op *op = srm__db_op_new("node update", "SELECT srm_node_update($1, $2) AS id",
                                           SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_node_name, name));
    VALIDATE(op, V(srm_db_validate_address, address));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, address);
    return op;
}

struct srm__db_op *srm__db_build_node_set_assignable(const char *name, bool assignable)
{
    struct srm__db_op *op = srm__db_op_new(
        assignable ? "node assignable" : "node unassign",
        "SELECT srm_node_set_assignable($1, $2::boolean) AS moved", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_node_name, name));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, assignable ? "true" : "false");
    return op;
}

struct srm__db_op *srm__db_build_node_remove(const char *name)
{
    struct srm__db_op *op =
        srm__db_op_new("node remove", "SELECT srm_node_remove($1) AS id", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    VALIDATE(op, V(srm_db_validate_node_name, name));
    srm__db_op_param(op, 0, name);
    return op;
}

/* Parameter name and scope: known name; a node only for per-node parameters. */
static void check_param_scope(struct srm__db_op *op, const char *name, const char *node)
{
    char msg[SRM_DB_ERRMSG_MAX];
    int err = srm_db_param_lookup(name, &op->param, msg, sizeof(msg));
    if (err < 0) {
        srm__db_op_fail(op, err, "%s", msg);
        return;
    }
    if (node) {
        VALIDATE(op, V(srm_db_validate_node_name, node));
        if (!srm_db_param_def(op->param)->per_node)
            srm__db_op_fail(op, -EINVAL,
                            "parameter %s is cluster-wide and cannot be set per node; set it "
                            "without a node",
                            name);
    }
}

struct srm__db_op *srm__db_build_param_get(const char *name, const char *node)
{
    struct srm__db_op *op = srm__db_op_new(
        "param get", "SELECT value, source FROM srm_param_get($1, $2)", SRM__DB_PARSE_PARAM);
    if (!op)
        return NULL;
    /* reading a cluster-wide parameter "for a node" is fine: it gives the cluster value */
    char msg[SRM_DB_ERRMSG_MAX];
    int err = srm_db_param_lookup(name, &op->param, msg, sizeof(msg));
    if (err < 0)
        srm__db_op_fail(op, err, "%s", msg);
    if (node)
        VALIDATE(op, V(srm_db_validate_node_name, node));
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, node);
    return op;
}

struct srm__db_op *srm__db_build_param_set(const char *name, const char *node, const char *value)
{
    struct srm__db_op *op =
        srm__db_op_new("param set", "SELECT srm_param_set($1, $2, $3::bigint)", SRM__DB_PARSE_NONE);
    if (!op)
        return NULL;
    check_param_scope(op, name, node);
    if (op->status >= 0) {
        char msg[SRM_DB_ERRMSG_MAX];
        int64_t v;
        int err = srm_db_param_parse_value(op->param, value, &v, msg, sizeof(msg));
        if (err < 0)
            srm__db_op_fail(op, err, "%s", msg);
        else
            srm__db_op_param_i64(op, 2, v);
    }
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, node);
    return op;
}

struct srm__db_op *srm__db_build_param_reset(const char *name, const char *node)
{
    struct srm__db_op *op =
        srm__db_op_new("param reset", "SELECT srm_param_reset($1, $2)", SRM__DB_PARSE_NONE);
    if (!op)
        return NULL;
    check_param_scope(op, name, node);
    srm__db_op_param(op, 0, name);
    srm__db_op_param(op, 1, node);
    return op;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * User names travel as one text, one per line (srm_names() splits it). Each name is
 * validated, and a name listed twice is refused, before anything is sent.
 */
static void param_names(struct srm__db_op *op, int i, const char *const *names, size_t n)
{
    char msg[SRM_DB_ERRMSG_MAX];
    size_t total = 0;

    if (!names || n == 0) {
        srm__db_op_fail(op, -EINVAL, "no user names given");
        return;
    }
    for (size_t k = 0; k < n; k++) {
        int err = srm_db_validate_user_name(names[k], msg, sizeof(msg));
        if (err < 0) {
            srm__db_op_fail(op, err, "%s (name %zu of %zu); nothing was sent", msg, k + 1, n);
            return;
        }
        total += strlen(names[k]) + 1;
    }
    const char **sorted = malloc(n * sizeof(*sorted));
    char *text = malloc(total);
    if (!sorted || !text) {
        free(sorted);
        free(text);
        srm__db_op_fail(op, -ENOMEM, "out of memory for %zu user names", n);
        return;
    }
    memcpy(sorted, names, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_str_ptr);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(sorted[k - 1], sorted[k]) == 0) {
            srm__db_op_fail(op, -EINVAL,
                            "user \"%s\" appears twice in the list; list each "
                            "user once",
                            sorted[k]);
            break;
        }
    }
    free(sorted);
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(names[k]);
        memcpy(text + off, names[k], len);
        off += len;
        text[off++] = k + 1 < n ? '\n' : '\0';
    }
    if (i >= op->nparams)
        op->nparams = i + 1;
    free(op->params[i]);
    op->params[i] = text;
}

struct srm__db_op *srm__db_build_users_add(const char *const *names, size_t n, const char *node)
{
    struct srm__db_op *op = srm__db_op_new(
        "users add", "SELECT count, moved FROM srm_users_add($1, $2)", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    if (node)
        VALIDATE(op, V(srm_db_validate_node_name, node));
    param_names(op, 0, names, n);
    srm__db_op_param(op, 1, node);
    return op;
}

struct srm__db_op *srm__db_build_users_remove(const char *const *names, size_t n)
{
    struct srm__db_op *op = srm__db_op_new(
        "users remove", "SELECT count, moved FROM srm_users_remove($1)", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    param_names(op, 0, names, n);
    return op;
}

struct srm__db_op *srm__db_build_users_assign(const char *const *names, size_t n, const char *node)
{
    struct srm__db_op *op = srm__db_op_new(
        "users assign", "SELECT srm_users_assign($1, $2) AS count", SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    if (node)
        VALIDATE(op, V(srm_db_validate_node_name, node));
    param_names(op, 0, names, n);
    srm__db_op_param(op, 1, node);
    return op;
}

struct srm__db_op *srm__db_build_users_list(const char *after, const char *node,
                                            bool unassigned_only, unsigned limit)
{
    struct srm__db_op *op =
        srm__db_op_new("users list",
                       "SELECT id, name, node FROM srm_users_list($1, $2, $3::boolean, "
                       "$4::integer)",
                       SRM__DB_PARSE_USERS);
    if (!op)
        return NULL;
    if (after && strlen(after) > SRM_DB_USER_NAME_MAX)
        srm__db_op_fail(op, SRM_ETOOBIG, "the cursor is longer than a user name can be");
    if (node)
        VALIDATE(op, V(srm_db_validate_node_name, node));
    if (limit < 1 || limit > SRM_DB_LIST_MAX)
        srm__db_op_fail(op, -EINVAL, "page size %u is out of range: allowed 1 to %d", limit,
                        SRM_DB_LIST_MAX);
    srm__db_op_param(op, 0, after);
    srm__db_op_param(op, 1, node);
    srm__db_op_param(op, 2, unassigned_only ? "true" : "false");
    srm__db_op_param_i64(op, 3, limit);
    return op;
}

struct srm__db_op *srm__db_build_users_rebalance(void)
{
    return srm__db_op_new("users rebalance", "SELECT srm_rebalance() AS moved",
                          SRM__DB_PARSE_SCALARS);
}

struct srm__db_op *srm__db_build_assignment_mode_set(enum srm_db_assign_mode mode)
{
    struct srm__db_op *op = srm__db_op_new(
        "assignment mode set", "SELECT srm_assignment_mode_set($1)", SRM__DB_PARSE_NONE);
    if (!op)
        return NULL;
    const char *name = srm_db_assign_mode_name(mode);
    if (!name)
        srm__db_op_fail(op, -EINVAL,
                        "unknown assignment mode %d; use balanced, "
                        "active-standby or none",
                        (int)mode);
    srm__db_op_param(op, 0, name);
    return op;
}

struct srm__db_op *srm__db_build_node_state_report(const struct srm_db_transition *t,
                                                   const char *source, uint64_t seq)
{
    struct srm__db_op *op = srm__db_op_new(
        "node state report",
        "SELECT srm_node_state_report($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9::bigint) AS id",
        SRM__DB_PARSE_SCALARS);
    if (!op)
        return NULL;
    op->durable = true;
    if (!t) {
        srm__db_op_fail(op, -EINVAL, "no transition given");
        return op;
    }
    VALIDATE(op, V(srm_db_validate_node_name, t->node));
    if (!srm_db_state_valid(t->new_state))
        srm__db_op_fail(op, -EINVAL, "\"%.64s\" is not a state name of SPEC.md §3",
                        t->new_state ? t->new_state : "(null)");
    if (!srm_db_reason_valid(t->new_reason))
        srm__db_op_fail(op, -EINVAL, "\"%.64s\" is not a reason name of SPEC.md §3",
                        t->new_reason ? t->new_reason : "(null)");
    if (!t->old_state != !t->old_reason)
        srm__db_op_fail(op, -EINVAL, "old state and old reason must be both given or both NULL");
    if (t->old_state && !srm_db_state_valid(t->old_state))
        srm__db_op_fail(op, -EINVAL, "\"%.64s\" is not a state name of SPEC.md §3", t->old_state);
    if (t->old_reason && !srm_db_reason_valid(t->old_reason))
        srm__db_op_fail(op, -EINVAL, "\"%.64s\" is not a reason name of SPEC.md §3", t->old_reason);
    if (t->cause)
        VALIDATE(op, V(srm_db_validate_cause, t->cause));
    if (t->at_us <= 0)
        srm__db_op_fail(op, -EINVAL, "the transition has no time");
    srm__db_op_param(op, 0, t->node);
    srm__db_op_param(op, 1, t->old_state);
    srm__db_op_param(op, 2, t->old_reason);
    srm__db_op_param(op, 3, t->new_state);
    srm__db_op_param(op, 4, t->new_reason);
    srm__db_op_param(op, 5, t->cause ? t->cause : "");
    srm__db_op_param_i64(op, 6, t->at_us);
    srm__db_op_param(op, 7, source);
    if (source)
        srm__db_op_param_i64(op, 8, (int64_t)seq);
    else
        srm__db_op_param(op, 8, NULL);
    return op;
}

struct srm__db_op *srm__db_build_history(int64_t after_id, bool last, unsigned limit)
{
    struct srm__db_op *op = srm__db_op_new(
        "history",
        "SELECT id, at_us, node_id, node_name, group_name, old_state, old_reason, new_state, "
        "new_reason, cause FROM srm_history_rows($1::bigint, $2::integer, $3::integer)",
        SRM__DB_PARSE_EVENTS);
    if (!op)
        return NULL;
    if (limit < 1 || limit > SRM_DB_LIST_MAX)
        srm__db_op_fail(op, -EINVAL, "%u events asked; allowed 1 to %d", limit, SRM_DB_LIST_MAX);
    if (after_id < 0)
        srm__db_op_fail(op, -EINVAL, "negative event id %" PRId64, after_id);
    if (last) {
        srm__db_op_param(op, 0, NULL);
        srm__db_op_param_i64(op, 1, limit);
        srm__db_op_param(op, 2, NULL);
    } else {
        srm__db_op_param_i64(op, 0, after_id);
        srm__db_op_param(op, 1, NULL);
        srm__db_op_param_i64(op, 2, limit);
    }
    return op;
}
