/*
 * The blocking API: one libpq connection, each call one statement. Also the migrations
 * and the startup helper that falls back to the cache.
 */
#include "internal.h"

#include "srm_error.h"
#include "srm_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Advisory lock key that serializes migrations across every client of the database. */
#define MIGRATION_LOCK_KEY 7368051

struct srm_db_sync {
    PGconn *conn;
    char source[24]; /* writer id of node state reports sent through this handle */
    uint64_t seq;
    char errmsg[SRM_DB_ERRMSG_MAX];
};

static void notice_to_debug(void *arg, const char *message)
{
    (void)arg;
    srm_log_debug("configuration database: %s", message);
}

int srm_db_schema_version_known(void)
{
    return srm__db_migrations_count ? srm__db_migrations[srm__db_migrations_count - 1].version : 0;
}

int srm_db_sync_open(const char *conninfo, struct srm_db_sync **ret_db, char *errbuf, size_t errlen)
{
    struct srm_db_sync *db = calloc(1, sizeof(*db));
    uint64_t id = 0;
    char msg[320];

    if (!db)
        return srm__db_err(errbuf, errlen, -ENOMEM, "out of memory");
    db->conn = PQconnectdb(conninfo ? conninfo : "");
    if (!db->conn) {
        free(db);
        return srm__db_err(errbuf, errlen, -ENOMEM, "out of memory");
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        srm__db_pq_message(PQerrorMessage(db->conn), msg, sizeof(msg));
        srm_db_sync_close(db);
        return srm__db_err(errbuf, errlen, SRM_EDB_DOWN,
                           "cannot connect to the configuration database: %s; check that "
                           "PostgreSQL runs and the connection settings (PGHOST, PGPORT, ...)",
                           msg);
    }
    PQsetNoticeProcessor(db->conn, notice_to_debug, NULL);
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)db << 16);
    snprintf(db->source, sizeof(db->source), "%016" PRIx64, id);
    srm__db_strlcpy(errbuf, "", errlen);
    *ret_db = db;
    return 0;
}

void srm_db_sync_close(struct srm_db_sync *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db);
}

const char *srm_db_sync_errmsg(const struct srm_db_sync *db)
{
    return db ? db->errmsg : "no database handle";
}

static int set_error(struct srm_db_sync *db, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(struct srm_db_sync *db, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

/*
 * Runs an op built by a srm__db_build_* function and returns its status. The op stays
 * owned by the caller (who reads its result, then frees it).
 */
static int run(struct srm_db_sync *db, struct srm__db_op *op)
{
    if (!op)
        return set_error(db, -ENOMEM, "out of memory");
    if (op->status >= 0 && PQstatus(db->conn) != CONNECTION_OK) {
        /* a tool or test may outlive a database restart: one reconnection attempt */
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK)
            srm__db_op_fail_down(op, PQerrorMessage(db->conn), false);
    }
    if (op->status >= 0) {
        PGresult *res = PQexecParams(db->conn, op->sql, op->nparams, NULL,
                                     (const char *const *)op->params, NULL, NULL, 0);
        srm__db_op_finish(op, db->conn, res);
        PQclear(res);
    }
    srm__db_strlcpy(db->errmsg, op->status < 0 ? op->errmsg : "", sizeof(db->errmsg));
    return op->status;
}

/* Runs op, then frees it; for operations whose answer carries nothing to return. */
static int run_free(struct srm_db_sync *db, struct srm__db_op *op)
{
    int err = run(db, op);
    srm__db_op_free(op);
    return err;
}

/* ---- Migrations ---- */

/* Runs a statement without parameters; on failure sets db->errmsg ("what: reason"). */
static int exec_simple(struct srm_db_sync *db, const char *what, const char *sql,
                       PGresult **ret_res)
{
    struct srm__db_op *op = srm__db_op_new(what, sql, SRM__DB_PARSE_NONE);
    if (!op)
        return set_error(db, -ENOMEM, "out of memory");
    PGresult *res = PQexec(db->conn, sql);
    srm__db_op_finish(op, db->conn, res);
    int err = op->status;
    if (err < 0)
        srm__db_strlcpy(db->errmsg, op->errmsg, sizeof(db->errmsg));
    srm__db_op_free(op);
    if (err >= 0 && ret_res)
        *ret_res = res;
    else
        PQclear(res);
    return err;
}

static void rollback(struct srm_db_sync *db)
{
    PQclear(PQexec(db->conn, "ROLLBACK"));
}

int srm_db_sync_migrate(struct srm_db_sync *db, int *ret_version)
{
    int known = srm_db_schema_version_known();
    char what[96];
    int err;

    if (PQstatus(db->conn) != CONNECTION_OK) {
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            char msg[320];
            srm__db_pq_message(PQerrorMessage(db->conn), msg, sizeof(msg));
            return set_error(db, SRM_EDB_DOWN,
                             "migrate: the configuration database is down (%s); retry when it "
                             "is back",
                             msg);
        }
    }
    /* One transaction per migration, each re-reading the version under the lock. */
    for (;;) {
        PGresult *res = NULL;
        int current;

        if ((err = exec_simple(db, "migrate", "BEGIN", NULL)) < 0)
            return err;
        if ((err = exec_simple(db, "migrate",
                               "SELECT pg_advisory_xact_lock(" SRM__DB_STR(MIGRATION_LOCK_KEY) ")",
                               NULL)) < 0 ||
            (err = exec_simple(db, "migrate",
                               "CREATE TABLE IF NOT EXISTS schema_version ("
                               " version integer PRIMARY KEY,"
                               " name text NOT NULL,"
                               " applied_at timestamptz NOT NULL DEFAULT now())",
                               NULL)) < 0 ||
            (err = exec_simple(db, "migrate",
                               "SELECT coalesce(max(version), 0) FROM schema_version", &res)) < 0) {
            rollback(db);
            return err;
        }
        current = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (current > known) {
            rollback(db);
            return set_error(db, SRM_EDB_SCHEMA,
                             "migrate: the database schema is version %d but this program knows "
                             "only up to version %d; upgrade srm on this node (nothing was "
                             "changed)",
                             current, known);
        }
        const struct srm__db_migration *m = NULL;
        for (size_t i = 0; i < srm__db_migrations_count; i++)
            if (srm__db_migrations[i].version == current + 1)
                m = &srm__db_migrations[i];
        if (!m) {
            if ((err = exec_simple(db, "migrate", "COMMIT", NULL)) < 0)
                return err;
            if (ret_version)
                *ret_version = current;
            db->errmsg[0] = '\0';
            return 0;
        }
        snprintf(what, sizeof(what), "migration %s", m->name);
        if ((err = exec_simple(db, what, m->sql, NULL)) < 0) {
            rollback(db);
            return err;
        }
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[2] = {version, m->name};
        res = PQexecParams(db->conn, "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                           2, NULL, params, NULL, NULL, 0);
        struct srm__db_op *op = srm__db_op_new(what, "", SRM__DB_PARSE_NONE);
        if (!op) {
            PQclear(res);
            rollback(db);
            return set_error(db, -ENOMEM, "out of memory");
        }
        srm__db_op_finish(op, db->conn, res);
        PQclear(res);
        err = op->status;
        if (err < 0)
            srm__db_strlcpy(db->errmsg, op->errmsg, sizeof(db->errmsg));
        srm__db_op_free(op);
        if (err < 0) {
            rollback(db);
            return err;
        }
        if ((err = exec_simple(db, what, "COMMIT", NULL)) < 0)
            return err;
    }
}

/* ---- Operations ---- */

int srm_db_sync_config_load(struct srm_db_sync *db, struct srm_db_config **ret_config)
{
    struct srm__db_op *op = srm__db_build_config_load();
    int err = run(db, op);
    if (err >= 0) {
        *ret_config = op->result.config;
        op->result.config = NULL;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_group_create(struct srm_db_sync *db, const char *name, const char *description,
                             int64_t *ret_id)
{
    struct srm__db_op *op = srm__db_build_group_create(name, description);
    int err = run(db, op);
    if (err >= 0 && ret_id)
        *ret_id = op->result.id;
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_group_update(struct srm_db_sync *db, const char *name, const char *new_name,
                             const char *description)
{
    return run_free(db, srm__db_build_group_update(name, new_name, description));
}

int srm_db_sync_group_delete(struct srm_db_sync *db, const char *name)
{
    return run_free(db, srm__db_build_group_delete(name));
}

int srm_db_sync_group_set_ha(struct srm_db_sync *db, const char *name, bool enabled)
{
    return run_free(db, srm__db_build_group_set_ha(name, enabled));
}

int srm_db_sync_node_add(struct srm_db_sync *db, const char *name, const char *address,
                         const char *group, int64_t *ret_id, int64_t *ret_moved)
{
    struct srm__db_op *op = srm__db_build_node_add(name, address, group);
    int err = run(db, op);
    if (err >= 0) {
        if (ret_id)
            *ret_id = op->result.id;
        if (ret_moved)
            *ret_moved = op->result.moved;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_node_update(struct srm_db_sync *db, const char *name, const char *address)
{
    return run_free(db, srm__db_build_node_update(name, address));
}

int srm_db_sync_node_set_assignable(struct srm_db_sync *db, const char *name, bool assignable,
                                    int64_t *ret_moved)
{
    struct srm__db_op *op = srm__db_build_node_set_assignable(name, assignable);
    int err = run(db, op);
    if (err >= 0 && ret_moved)
        *ret_moved = op->result.moved;
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_node_remove(struct srm_db_sync *db, const char *name)
{
    return run_free(db, srm__db_build_node_remove(name));
}

int srm_db_sync_param_get(struct srm_db_sync *db, const char *name, const char *node,
                          struct srm_db_param_value *ret_value)
{
    struct srm__db_op *op = srm__db_build_param_get(name, node);
    int err = run(db, op);
    if (err >= 0)
        *ret_value = op->result.param;
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_param_set(struct srm_db_sync *db, const char *name, const char *node,
                          const char *value)
{
    return run_free(db, srm__db_build_param_set(name, node, value));
}

int srm_db_sync_param_reset(struct srm_db_sync *db, const char *name, const char *node)
{
    return run_free(db, srm__db_build_param_reset(name, node));
}

int srm_db_sync_users_add(struct srm_db_sync *db, const char *const *names, size_t n,
                          const char *node, int64_t *ret_added, int64_t *ret_moved)
{
    struct srm__db_op *op = srm__db_build_users_add(names, n, node);
    int err = run(db, op);
    if (err >= 0) {
        if (ret_added)
            *ret_added = op->result.count;
        if (ret_moved)
            *ret_moved = op->result.moved;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_users_remove(struct srm_db_sync *db, const char *const *names, size_t n,
                             int64_t *ret_removed, int64_t *ret_moved)
{
    struct srm__db_op *op = srm__db_build_users_remove(names, n);
    int err = run(db, op);
    if (err >= 0) {
        if (ret_removed)
            *ret_removed = op->result.count;
        if (ret_moved)
            *ret_moved = op->result.moved;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_users_assign(struct srm_db_sync *db, const char *const *names, size_t n,
                             const char *node, int64_t *ret_changed)
{
    struct srm__db_op *op = srm__db_build_users_assign(names, n, node);
    int err = run(db, op);
    if (err >= 0 && ret_changed)
        *ret_changed = op->result.count;
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_users_list(struct srm_db_sync *db, const char *after, const char *node,
                           bool unassigned_only, unsigned limit, struct srm_db_user_list **ret_list)
{
    struct srm__db_op *op = srm__db_build_users_list(after, node, unassigned_only, limit);
    int err = run(db, op);
    if (err >= 0) {
        *ret_list = op->result.users;
        op->result.users = NULL;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_users_rebalance(struct srm_db_sync *db, int64_t *ret_moved)
{
    struct srm__db_op *op = srm__db_build_users_rebalance();
    int err = run(db, op);
    if (err >= 0 && ret_moved)
        *ret_moved = op->result.moved;
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_assignment_mode_set(struct srm_db_sync *db, enum srm_db_assign_mode mode)
{
    return run_free(db, srm__db_build_assignment_mode_set(mode));
}

int srm_db_sync_node_state_report(struct srm_db_sync *db, const struct srm_db_transition *t,
                                  int64_t *ret_event_id)
{
    struct srm__db_op *op = srm__db_build_node_state_report(t, db->source, ++db->seq);
    int err = run(db, op);
    if (err >= 0 && ret_event_id)
        *ret_event_id = op->result.id;
    srm__db_op_free(op);
    return err;
}

static int history(struct srm_db_sync *db, struct srm__db_op *op,
                   struct srm_db_event_list **ret_list)
{
    int err = run(db, op);
    if (err >= 0) {
        *ret_list = op->result.events;
        op->result.events = NULL;
    }
    srm__db_op_free(op);
    return err;
}

int srm_db_sync_history_since(struct srm_db_sync *db, int64_t after_id, unsigned limit,
                              struct srm_db_event_list **ret_list)
{
    return history(db, srm__db_build_history(after_id, false, limit), ret_list);
}

int srm_db_sync_history_last(struct srm_db_sync *db, unsigned n,
                             struct srm_db_event_list **ret_list)
{
    return history(db, srm__db_build_history(0, true, n), ret_list);
}

/* ---- Startup ---- */

int srm_db_config_bootstrap(const char *conninfo, const char *cache_path, bool migrate,
                            struct srm_db_config **ret_config, char *note, size_t notelen)
{
    char dbmsg[SRM_DB_ERRMSG_MAX], cmsg[SRM_DB_ERRMSG_MAX];
    struct srm_db_config *cfg = NULL;
    struct srm_db_sync *db = NULL;
    int err;

    srm__db_strlcpy(note, "", notelen);
    err = srm_db_sync_open(conninfo, &db, dbmsg, sizeof(dbmsg));
    if (err >= 0) {
        if (migrate)
            err = srm_db_sync_migrate(db, NULL);
        if (err >= 0)
            err = srm_db_sync_config_load(db, &cfg);
        if (err < 0)
            srm__db_strlcpy(dbmsg, srm_db_sync_errmsg(db), sizeof(dbmsg));
        srm_db_sync_close(db);
    }
    if (err >= 0) {
        if (cache_path && srm_db_cache_save(cfg, cache_path, cmsg, sizeof(cmsg)) < 0)
            srm__db_err(note, notelen, 0,
                        "configuration loaded from the database, but the cache could not be "
                        "written: %s",
                        cmsg);
        *ret_config = cfg;
        return 0;
    }
    if (err != SRM_EDB_DOWN)
        return srm__db_err(note, notelen, err, "%s", dbmsg);
    if (!cache_path)
        return srm__db_err(note, notelen, err, "%s; no cache file is configured", dbmsg);
    int cerr = srm_db_cache_load(cache_path, &cfg, cmsg, sizeof(cmsg));
    if (cerr < 0)
        return srm__db_err(note, notelen, cerr == -ENOMEM ? cerr : SRM_EDB_DOWN,
                           "%s; and the cache cannot be used: %s", dbmsg, cmsg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    srm__db_err(note, notelen, 0,
                "working from the cache %s, taken %" PRId64 " s ago, because the configuration "
                "database is unreachable (%s)",
                cache_path, srm_db_config_age_ms(cfg, now_us) / 1000, dbmsg);
    *ret_config = cfg;
    return 1;
}
