/*
 * Internal interface of srm_ha_db, shared by its source files:
 *   validate.c  validation, parameters, states, modes (pure)
 *   json.c      snapshot <-> JSON, notification payloads, snapshot helpers (pure)
 *   cache.c     the cache file
 *   op.c        operations: the SQL each sends, the parsing of its result, libpq errors
 *   sync.c      the blocking API and migrations
 *   async.c     the libuv connection manager
 */
#ifndef SRM_DB_INTERNAL_H
#define SRM_DB_INTERNAL_H

#include "srm_db.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>

#define SRM__DB_XSTR(x) #x
#define SRM__DB_STR(x)  SRM__DB_XSTR(x)

/* Formats into errbuf if it is not NULL; returns err. */
int srm__db_err(char *errbuf, size_t errlen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies src into dst (size dstlen, NUL-terminated, truncated); dst may be NULL. */
void srm__db_strlcpy(char *dst, const char *src, size_t dstlen);

/* ---- JSON (json.c) ---- */

/*
 * Builds a snapshot from the JSON object that srm_config_snapshot() returns (and the
 * cache stores under "config"). Checks every field; errors: SRM_ECORRUPT with where and
 * what, -ENOMEM.
 */
int srm__db_config_from_json(json_t *obj, enum srm_db_config_source source,
                             struct srm_db_config **ret_config, char *errbuf, size_t errlen);

/* The inverse, for the cache. NULL on allocation failure. */
json_t *srm__db_config_to_json(const struct srm_db_config *config);

/* ---- Cache (cache.c) ---- */

/* The cache file text of a snapshot (malloc'd, NUL-terminated), or NULL on ENOMEM. */
char *srm__db_cache_serialize(const struct srm_db_config *config);

/*
 * Reads the cache file text (len bytes, need not be NUL-terminated); path is only for the
 * messages. Errors: SRM_ECORRUPT, -ENOMEM.
 */
int srm__db_cache_parse(const char *text, size_t len, const char *path,
                        struct srm_db_config **ret_config, char *errbuf, size_t errlen);

/* Atomic write of text to path (temp file, fsync, rename, fsync dir). */
int srm__db_cache_write(const char *path, const char *text, char *errbuf, size_t errlen);

/* ---- Migrations (generated from migrations/NNN_name.sql) ---- */

struct srm__db_migration {
    int version;      /* NNN */
    const char *name; /* "002_rules" */
    const char *sql;  /* the file's text */
};

extern const struct srm__db_migration srm__db_migrations[];
extern const size_t srm__db_migrations_count;

/* ---- Operations (op.c) ---- */

enum srm__db_parse {
    SRM__DB_PARSE_NONE = 0, /* status only */
    SRM__DB_PARSE_SCALARS,  /* columns id, count, moved when present (first row) */
    SRM__DB_PARSE_CONFIG,   /* one text column: the snapshot JSON */
    SRM__DB_PARSE_USERS,    /* id, name, node */
    SRM__DB_PARSE_EVENTS,   /* srm_history_rows() columns */
    SRM__DB_PARSE_PARAM,    /* value, source */
};

#define SRM__DB_OP_MAXPARAMS 9

/*
 * One operation: the statement and its parameters, how to read the answer, and (async)
 * who to tell. Built by the srm__db_build_* functions shared by both APIs. A builder
 * that finds an invalid argument returns an op already failed (status < 0, errmsg set),
 * so both APIs report validation errors the same way.
 */
struct srm__db_op {
    struct srm__db_op *next;
    const char *what; /* "users add": first words of every message */
    const char *sql;
    int nparams;
    char *params[SRM__DB_OP_MAXPARAMS]; /* owned; NULL is SQL NULL */
    enum srm__db_parse parse;
    enum srm_db_param param; /* PARSE_PARAM: which one */
    bool durable;            /* node state report: kept and re-sent while the database is down */
    bool internal;           /* LISTEN and pings of the connection manager */
    srm_db_result_cb *cb;
    void *data;
    int status;
    char errmsg[SRM_DB_ERRMSG_MAX];
    struct srm_db_result result;
};

struct srm__db_op *srm__db_op_new(const char *what, const char *sql, enum srm__db_parse parse);

/* Sets parameter i to a copy of value (NULL: SQL NULL). Fails the op on ENOMEM. */
void srm__db_op_param(struct srm__db_op *op, int i, const char *value);
void srm__db_op_param_i64(struct srm__db_op *op, int i, int64_t value);

/* Marks the op failed with status and "what: message". Keeps the first failure. */
void srm__db_op_fail(struct srm__db_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees the op and whatever its result still owns. Accepts NULL. */
void srm__db_op_free(struct srm__db_op *op);

/* Frees what result->config/users/events still point to and clears them. */
void srm__db_result_release(struct srm_db_result *result);

/*
 * Reads the answer to op: res (may be NULL, meaning the connection failed), conn for its
 * status and error text. Sets op->status, op->errmsg and op->result.
 */
void srm__db_op_finish(struct srm__db_op *op, PGconn *conn, const PGresult *res);

/* Fails op with SRM_EDB_DOWN and a message built from reason. */
void srm__db_op_fail_down(struct srm__db_op *op, const char *reason, bool maybe_applied);

/* Trims libpq's message (trailing newline, "ERROR:  " prefix) into buf. */
void srm__db_pq_message(const char *msg, char *buf, size_t len);

/* Builders: one per operation. NULL only when out of memory. */
struct srm__db_op *srm__db_build_config_load(void);
struct srm__db_op *srm__db_build_group_create(const char *name, const char *description);
struct srm__db_op *srm__db_build_group_update(const char *name, const char *new_name,
                                              const char *description);
struct srm__db_op *srm__db_build_group_delete(const char *name);
struct srm__db_op *srm__db_build_group_set_ha(const char *name, bool enabled);
struct srm__db_op *srm__db_build_node_add(const char *name, const char *address, const char *group);
struct srm__db_op *srm__db_build_node_update(const char *name, const char *address);
struct srm__db_op *srm__db_build_node_set_assignable(const char *name, bool assignable);
struct srm__db_op *srm__db_build_node_remove(const char *name);
struct srm__db_op *srm__db_build_param_get(const char *name, const char *node);
struct srm__db_op *srm__db_build_param_set(const char *name, const char *node, const char *value);
struct srm__db_op *srm__db_build_param_reset(const char *name, const char *node);
struct srm__db_op *srm__db_build_users_add(const char *const *names, size_t n, const char *node);
struct srm__db_op *srm__db_build_users_remove(const char *const *names, size_t n);
struct srm__db_op *srm__db_build_users_assign(const char *const *names, size_t n, const char *node);
struct srm__db_op *srm__db_build_users_list(const char *after, const char *node,
                                            bool unassigned_only, unsigned limit);
struct srm__db_op *srm__db_build_users_rebalance(void);
struct srm__db_op *srm__db_build_assignment_mode_set(enum srm_db_assign_mode mode);
/* source: writer id for de-duplication (NULL: none); seq: its sequence number. */
struct srm__db_op *srm__db_build_node_state_report(const struct srm_db_transition *t,
                                                   const char *source, uint64_t seq);
struct srm__db_op *srm__db_build_history(int64_t after_id, bool last, unsigned limit);

#endif
