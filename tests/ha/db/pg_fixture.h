/*
 * A throwaway PostgreSQL for the integration tests of the configuration database, started
 * with scripts/pg-tmp in a unique directory. A watchdog process stops it if the test
 * process dies without doing so (crash, kill, ctest timeout), so no server outlives a test.
 */
#ifndef SRM_TEST_PG_FIXTURE_H
#define SRM_TEST_PG_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

struct pg_fixture {
    char dir[64]; /* /tmp/srm-db-test-XXXXXX */
    int port;
    char conninfo[256]; /* libpq connection string of the srm database */
    pid_t watchdog;
    int watchdog_fd;
};

/* Starts the server; also sets PGHOST, PGPORT, PGUSER, PGDATABASE. Returns 0 or -1. */
int pg_fixture_start(struct pg_fixture *pg);

/* Stops the server and removes its directory. Safe to call twice. */
void pg_fixture_stop(struct pg_fixture *pg);

/* Stops the server but keeps its data (pg_ctl stop -m fast). Returns 0 or -1. */
int pg_fixture_halt(struct pg_fixture *pg);

/* Starts again a server stopped by pg_fixture_halt(). Returns 0 or -1. */
int pg_fixture_resume(struct pg_fixture *pg);

/* Runs SQL with psql on the srm database; returns psql's exit status. */
int pg_fixture_psql(struct pg_fixture *pg, const char *sql);

#endif
