/*
 * Integration tests of the migrations (ha/db/sync.c, ha/db/migrations/) against a real
 * throwaway PostgreSQL: from an empty database, run again (idempotent), two migrations at
 * once, a newer schema refused, and the C tables (parameters, states, the failed-over
 * predicate) equal to the SQL ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "pg_fixture.h"
#include "srm_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct pg_fixture pg;

static int group_setup(void **state)
{
    (void)state;
    return pg_fixture_start(&pg);
}

static int group_teardown(void **state)
{
    (void)state;
    pg_fixture_stop(&pg);
    return 0;
}

static struct srm_db_sync *open_db(const char *conninfo)
{
    struct srm_db_sync *db = NULL;
    char msg[SRM_DB_ERRMSG_MAX];
    if (srm_db_sync_open(conninfo, &db, msg, sizeof(msg)) < 0)
        fail_msg("open: %s", msg);
    return db;
}

/* Runs a query on a plain libpq connection; returns the first value or NULL (caller frees). */
static char *query1(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        v = strdup(PQresultErrorField(r, PG_DIAG_SQLSTATE));
    PQclear(r);
    PQfinish(c);
    return v;
}

static void test_from_empty_and_again(void **state)
{
    (void)state;
    struct srm_db_sync *db = open_db(pg.conninfo);
    int version = -1;

    assert_true(srm__db_migrations_count >= 2);
    for (size_t i = 0; i < srm__db_migrations_count; i++)
        assert_int_equal(srm__db_migrations[i].version, (int)i + 1);
    assert_int_equal(srm_db_sync_migrate(db, &version), 0);
    assert_int_equal(version, srm_db_schema_version_known());
    printf("# schema at version %d after migrating an empty database\n", version);

    char *n = query1(pg.conninfo, "SELECT count(*) FROM schema_version");
    assert_int_equal(atoi(n), (int)srm__db_migrations_count);
    free(n);
    /* idempotent: again and again, nothing changes */
    for (int i = 0; i < 2; i++) {
        version = -1;
        assert_int_equal(srm_db_sync_migrate(db, &version), 0);
        assert_int_equal(version, srm_db_schema_version_known());
    }
    n = query1(pg.conninfo, "SELECT count(*) FROM schema_version");
    assert_int_equal(atoi(n), (int)srm__db_migrations_count);
    free(n);
    n = query1(pg.conninfo, "SELECT count(*) FROM cluster");
    assert_string_equal(n, "1");
    free(n);

    /* the fresh schema loads as an empty configuration with every default */
    struct srm_db_config *cfg = NULL;
    assert_int_equal(srm_db_sync_config_load(db, &cfg), 0);
    assert_int_equal(cfg->schema_version, srm_db_schema_version_known());
    assert_int_equal(cfg->n_nodes, 0);
    assert_int_equal(cfg->assignment_mode, SRM_DB_ASSIGN_BALANCED);
    int64_t defaults[SRM_DB_PARAM_MAX];
    srm_db_params_defaults(defaults);
    assert_memory_equal(cfg->params, defaults, sizeof(defaults));
    srm_db_config_free(cfg);
    srm_db_sync_close(db);
}

static void test_concurrent_migrations(void **state)
{
    (void)state;
    /* two srmd starting at once on a new database: the advisory lock serializes them */
    char *r = query1(pg.conninfo, "CREATE DATABASE srm_race");
    free(r);
    char conninfo[320];
    snprintf(conninfo, sizeof(conninfo), "%s dbname=srm_race", pg.conninfo);
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct srm_db_sync *db = NULL;
            int v = 0;
            if (srm_db_sync_open(conninfo, &db, NULL, 0) < 0)
                _exit(2);
            int err = srm_db_sync_migrate(db, &v);
            if (err < 0)
                fprintf(stderr, "migrate: %s\n", srm_db_sync_errmsg(db));
            srm_db_sync_close(db);
            _exit(err == 0 && v == srm_db_schema_version_known() ? 0 : 1);
        }
    }
    for (int i = 0; i < 3; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    char *n = query1(conninfo, "SELECT count(*) FROM schema_version");
    assert_int_equal(atoi(n), (int)srm__db_migrations_count);
    free(n);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    struct srm_db_sync *db = open_db(pg.conninfo);
    char sql[160];
    int known = srm_db_schema_version_known();

    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_version (version, name) VALUES (%d, '%03d_future')", known + 1,
             known + 1);
    free(query1(pg.conninfo, sql));
    int version = -7;
    assert_int_equal(srm_db_sync_migrate(db, &version), SRM_EDB_SCHEMA);
    assert_int_equal(version, -7);
    printf("# %s\n", srm_db_sync_errmsg(db));
    assert_non_null(strstr(srm_db_sync_errmsg(db), "upgrade srm"));
    char expect[64];
    snprintf(expect, sizeof(expect), "version %d but this program knows only up to version %d",
             known + 1, known);
    assert_non_null(strstr(srm_db_sync_errmsg(db), expect));
    /* loading from such a database is refused too */
    struct srm_db_config *cfg = NULL;
    assert_int_equal(srm_db_sync_config_load(db, &cfg), SRM_EDB_SCHEMA);
    assert_null(cfg);

    snprintf(sql, sizeof(sql), "DELETE FROM schema_version WHERE version = %d", known + 1);
    free(query1(pg.conninfo, sql));
    assert_int_equal(srm_db_sync_migrate(db, &version), 0);
    assert_int_equal(version, known);
    srm_db_sync_close(db);
}

static void test_c_and_sql_agree(void **state)
{
    (void)state;
    PGconn *c = PQconnectdb(pg.conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);

    /* the parameter table */
    PGresult *r = PQexec(c, "SELECT name, kind, unit, default_value, min_value, max_value, "
                            "per_node FROM param_defs ORDER BY name");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), SRM_DB_PARAM_MAX);
    for (int i = 0; i < PQntuples(r); i++) {
        enum srm_db_param p;
        assert_int_equal(srm_db_param_lookup(PQgetvalue(r, i, 0), &p, NULL, 0), 0);
        const struct srm_db_param_def *d = srm_db_param_def(p);
        assert_string_equal(PQgetvalue(r, i, 1),
                            d->kind == SRM_DB_PARAM_KIND_BOOL ? "bool" : "int");
        assert_string_equal(PQgetvalue(r, i, 2), d->unit);
        assert_int_equal(atoll(PQgetvalue(r, i, 3)), d->default_value);
        assert_int_equal(atoll(PQgetvalue(r, i, 4)), d->min_value);
        assert_int_equal(atoll(PQgetvalue(r, i, 5)), d->max_value);
        assert_string_equal(PQgetvalue(r, i, 6), d->per_node ? "t" : "f");
    }
    PQclear(r);

    /* states, reasons and the failed-over predicate */
    const char *probes[] = {"Initializing",
                            "Idle",
                            "Normal",
                            "Running in Backup Mode",
                            "Taking Over",
                            "Failing Over",
                            "Failed Over",
                            "Failed Over with Critical Services not Running",
                            "Taking Back",
                            "Falling Back",
                            "Running in Failed Mode",
                            "Backup Activated",
                            "Failing Over Affected Services",
                            "Unknown",
                            "normal",
                            "Asleep"};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const char *params[1] = {probes[i]};
        r = PQexecParams(c, "SELECT srm_state_is_failed_over($1)", 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(r, 0, 0),
                            srm_db_state_is_failed_over(probes[i]) ? "t" : "f");
        PQclear(r);
        r = PQexecParams(c, "SELECT $1::srm_state", 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r) == PGRES_TUPLES_OK, srm_db_state_valid(probes[i]));
        PQclear(r);
    }
    const char *reasons[] = {"Normal",
                             "Admin Request",
                             "Initialization",
                             "Critical Service Down",
                             "Database Failure",
                             "Peer Down",
                             "Peer Reboot",
                             "Peer Down During Initialization",
                             "Critical Service Startup Failure",
                             "Takeover User Failure",
                             "Takeback User Failure",
                             "Automatic Fallback",
                             "Auto Recover Database Failure",
                             "Auto Recover Critical Service Down",
                             "Unknown",
                             "Idle",
                             "peer down"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        const char *params[1] = {reasons[i]};
        r = PQexecParams(c, "SELECT $1::srm_reason", 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r) == PGRES_TUPLES_OK, srm_db_reason_valid(reasons[i]));
        PQclear(r);
    }
    PQfinish(c);
}

/* The CHECK constraints refuse in SQL what the C validators refuse, for any client. */
static void test_sql_checks(void **state)
{
    (void)state;
    struct {
        const char *sql;
        const char *sqlstate;
    } cases[] = {
        {"INSERT INTO groups (name) VALUES ('bad name')", "23514"},
        {"INSERT INTO groups (name) VALUES (repeat('g', 129))", "23514"},
        {"INSERT INTO groups (name, description) VALUES ('g', 'a&b')", "23514"},
        {"INSERT INTO groups (name, description) VALUES ('g', repeat('d', 129))", "23514"},
        {"INSERT INTO users (name) VALUES ('bad user')", "23514"},
        {"INSERT INTO users (name, home_node_id) VALUES ('u', 4242)", "23503"},
        {"UPDATE cluster SET assignment_mode = 'random'", "23514"},
        {"INSERT INTO cluster (id) VALUES (2)", "23514"},
        {"INSERT INTO params (name, value) VALUES ('keepalive_interval', 0)", "SRMRG"},
        {"INSERT INTO params (name, value) VALUES ('keepalive_interval', 40)", "SRMRG"},
        {"INSERT INTO history (at, node_name, new_state, new_reason) "
         "VALUES (now(), 'n', 'Sleeping', 'Normal')",
         "23514"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *st = query1(pg.conninfo, cases[i].sql);
        if (!st || strcmp(st, cases[i].sqlstate) != 0)
            fail_msg("%s: expected %s, got %s", cases[i].sql, cases[i].sqlstate,
                     st ? st : "success");
        free(st);
    }
    /* a description with every allowed character class, and 128 multi-byte characters */
    char *st = query1(pg.conninfo, "INSERT INTO groups (name, description) VALUES ('gok', "
                                   "repeat('\xc3\xa9', 128)) RETURNING id");
    assert_non_null(st);
    free(st);
    free(query1(pg.conninfo, "DELETE FROM groups WHERE name = 'gok'"));
}

static void test_down(void **state)
{
    (void)state;
    struct srm_db_sync *db = NULL;
    char msg[SRM_DB_ERRMSG_MAX];
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=%s/nowhere port=%d user=postgres dbname=srm", pg.dir,
             pg.port);
    assert_int_equal(srm_db_sync_open(conninfo, &db, msg, sizeof(msg)), SRM_EDB_DOWN);
    assert_null(db);
    assert_non_null(strstr(msg, "cannot connect to the configuration database"));
    printf("# %s\n", msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_empty_and_again), cmocka_unit_test(test_concurrent_migrations),
        cmocka_unit_test(test_newer_schema_refused), cmocka_unit_test(test_c_and_sql_agree),
        cmocka_unit_test(test_sql_checks),           cmocka_unit_test(test_down),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
