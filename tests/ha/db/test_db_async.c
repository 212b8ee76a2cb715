/*
 * Integration tests of the connection manager on libuv (ha/db/async.c) against a real
 * throwaway PostgreSQL: operations and their callbacks, LISTEN/NOTIFY reaching a second
 * instance (latency measured and printed), the database stopped and restarted mid-run
 * (down/up callbacks, operations failing cleanly, node state reports queued and flushed,
 * the cache used at startup), the report queue bound, operation timeouts and close.
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
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct pg_fixture pg;
static uv_loop_t loop;
static uv_timer_t guard;
static char cache_path[128];

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond holds; fails the test after ms milliseconds. */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        uv_update_time(&loop);                                                                     \
        uint64_t deadline_ = uv_now(&loop) + (ms);                                                 \
        uv_timer_start(&guard, on_guard, 10, 10);                                                  \
        while (!(cond)) {                                                                          \
            if (uv_now(&loop) > deadline_)                                                         \
                fail_msg("waited %d ms for %s", (int)(ms), #cond);                                 \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        }                                                                                          \
        uv_timer_stop(&guard);                                                                     \
    } while (0)

static void run_for(unsigned ms)
{
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    uv_timer_start(&guard, on_guard, 10, 10);
    while (uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* What one manager saw. */
struct watcher {
    int up, down, caches, cache_errors;
    int down_err;
    char down_msg[SRM_DB_ERRMSG_MAX];
    int changes[SRM_DB_TABLE_MAX];
    struct srm_db_change last;
    double last_change_ms;
    bool closed;
};

static void on_up(struct srm_db *db, void *data)
{
    (void)db;
    ((struct watcher *)data)->up++;
}

static void on_down(struct srm_db *db, int err, const char *msg, void *data)
{
    (void)db;
    struct watcher *w = data;
    w->down++;
    w->down_err = err;
    snprintf(w->down_msg, sizeof(w->down_msg), "%s", msg);
}

static void on_change(struct srm_db *db, const struct srm_db_change *c, void *data)
{
    (void)db;
    struct watcher *w = data;
    w->changes[c->table]++;
    w->last = *c;
    w->last_change_ms = now_ms();
}

static void on_cache(struct srm_db *db, int status, const char *msg, void *data)
{
    (void)db;
    struct watcher *w = data;
    if (status < 0) {
        w->cache_errors++;
        fprintf(stderr, "cache: %s\n", msg);
    } else {
        w->caches++;
    }
}

static void on_closed(struct srm_db *db, void *data)
{
    (void)db;
    ((struct watcher *)data)->closed = true;
}

/* The outcome of one operation. */
struct capture {
    bool done;
    int status;
    char msg[SRM_DB_ERRMSG_MAX];
    int64_t id, count, moved;
    struct srm_db_param_value param;
    struct srm_db_config *config;
    struct srm_db_user_list *users;
    struct srm_db_event_list *events;
};

static void on_result(struct srm_db *db, struct srm_db_result *r, void *data)
{
    (void)db;
    struct capture *c = data;
    assert_false(c->done); /* exactly once */
    c->done = true;
    c->status = r->status;
    snprintf(c->msg, sizeof(c->msg), "%s", r->errmsg);
    c->id = r->id;
    c->count = r->count;
    c->moved = r->moved;
    c->param = r->param;
    /* keep what we want: take it and leave NULL behind */
    c->config = r->config;
    r->config = NULL;
    c->users = r->users;
    r->users = NULL;
    c->events = r->events;
    r->events = NULL;
}

static void capture_free(struct capture *c)
{
    srm_db_config_free(c->config);
    srm_db_user_list_free(c->users);
    srm_db_event_list_free(c->events);
    memset(c, 0, sizeof(*c));
}

#define WAIT_OK(c)                                                                                 \
    do {                                                                                           \
        RUN_UNTIL((c).done, 20000);                                                                \
        if ((c).status < 0)                                                                        \
            fail_msg("operation failed: %d %s", (c).status, (c).msg);                              \
    } while (0)

static struct srm_db *manager(struct watcher *w, const char *conninfo, const char *cache,
                              unsigned reconnect_max_ms)
{
    struct srm_db_options o = {
        .conninfo = conninfo,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = reconnect_max_ms,
        .op_timeout_ms = 5000,
        .ping_interval_ms = 200,
        .cache_path = cache,
        .up_cb = on_up,
        .down_cb = on_down,
        .change_cb = on_change,
        .cache_cb = on_cache,
        .data = w,
    };
    struct srm_db *db = NULL;
    assert_int_equal(srm_db_new(&loop, &o, &db), 0);
    assert_int_equal(srm_db_start(db), 0);
    assert_int_equal(srm_db_start(db), -EALREADY);
    return db;
}

static void close_manager(struct srm_db *db, struct watcher *w)
{
    srm_db_close(db, on_closed, w);
    RUN_UNTIL(w->closed, 10000);
}

static int group_setup(void **state)
{
    (void)state;
    struct srm_db_sync *db = NULL;
    char msg[SRM_DB_ERRMSG_MAX];
    if (pg_fixture_start(&pg) < 0)
        return -1;
    snprintf(cache_path, sizeof(cache_path), "%s/srmd-cache.json", pg.dir);
    if (srm_db_sync_open(pg.conninfo, &db, msg, sizeof(msg)) < 0 ||
        srm_db_sync_migrate(db, NULL) < 0 ||
        srm_db_sync_group_create(db, "g1", "test pair", NULL) < 0 ||
        srm_db_sync_node_add(db, "n1", "10.200.0.1", "g1", NULL, NULL) < 0 ||
        srm_db_sync_node_add(db, "n2", "10.200.0.2", "g1", NULL, NULL) < 0) {
        fprintf(stderr, "setup: %s %s\n", msg, db ? srm_db_sync_errmsg(db) : "");
        srm_db_sync_close(db);
        return -1;
    }
    srm_db_sync_close(db);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &guard);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    uv_close((uv_handle_t *)&guard, NULL);
    /* bounded: a failed test may have left a manager running */
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    int err = uv_loop_close(&loop);
    pg_fixture_stop(&pg);
    return err == 0 ? 0 : -1; /* every handle of the managers was closed */
}

static void test_operations(void **state)
{
    (void)state;
    static struct watcher w;
    static struct capture c;
    memset(&w, 0, sizeof(w));
    memset(&c, 0, sizeof(c));
    struct srm_db *db = manager(&w, pg.conninfo, cache_path, 1000);

    /* operations submitted before the first connection wait for it */
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    assert_false(c.done);
    WAIT_OK(c);
    assert_int_equal(w.up, 1);
    assert_true(srm_db_is_up(db));
    assert_non_null(c.config);
    assert_int_equal(c.config->n_nodes, 2);
    assert_int_equal(c.config->source, SRM_DB_SOURCE_DATABASE);
    capture_free(&c);
    /* the snapshot went to the cache, written in the thread pool */
    RUN_UNTIL(w.caches == 1, 10000);
    struct srm_db_config *cached = NULL;
    char msg[SRM_DB_ERRMSG_MAX];
    assert_int_equal(srm_db_cache_load(cache_path, &cached, msg, sizeof(msg)), 0);
    assert_int_equal(cached->n_nodes, 2);
    srm_db_config_free(cached);

    /* an invalid argument comes back through the callback, never from within the call */
    assert_int_equal(srm_db_group_create(db, "bad name", NULL, on_result, &c), 0);
    assert_false(c.done);
    RUN_UNTIL(c.done, 1000);
    assert_int_equal(c.status, -EINVAL);
    assert_non_null(strstr(c.msg, "group create: group name \"bad name\""));
    capture_free(&c);

    assert_int_equal(srm_db_group_create(db, "g2", "second", on_result, &c), 0);
    WAIT_OK(c);
    assert_true(c.id > 0);
    capture_free(&c);
    assert_int_equal(srm_db_node_add(db, "n3", "10.200.0.3", "g2", on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    assert_int_equal(srm_db_node_add(db, "n4", "10.200.0.4", "g2", on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    assert_int_equal(srm_db_group_set_ha(db, "g2", true, on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    assert_int_equal(srm_db_node_remove(db, "n4", on_result, &c), 0);
    RUN_UNTIL(c.done, 10000);
    assert_int_equal(c.status, SRM_EREFUSED);
    assert_non_null(strstr(c.msg, "HA is enabled"));
    capture_free(&c);

    assert_int_equal(srm_db_param_set(db, "relogin_upper", "n3", "600", on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    assert_int_equal(srm_db_param_get(db, "relogin_upper", "n3", on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.param.param, SRM_DB_PARAM_RELOGIN_UPPER);
    assert_int_equal(c.param.value, 600);
    assert_int_equal(c.param.source, SRM_DB_PARAM_SOURCE_NODE);
    capture_free(&c);

    enum { N = 1000 };
    char **names = malloc(N * sizeof(*names));
    for (int i = 0; i < N; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "async%04d", i);
    }
    assert_int_equal(srm_db_users_add(db, (const char *const *)names, N, NULL, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.count, N);
    assert_int_equal(c.moved, N);
    capture_free(&c);
    assert_int_equal(srm_db_users_list(db, "async0099", "n1", false, 10, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.users->n, 10);
    assert_string_equal(c.users->users[0].node, "n1");
    assert_true(strcmp(c.users->users[0].name, "async0099") > 0);
    capture_free(&c);
    assert_int_equal(srm_db_users_rebalance(db, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.moved, 0);
    capture_free(&c);
    assert_int_equal(srm_db_users_remove(db, (const char *const *)names, N, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.count, N);
    capture_free(&c);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);

    struct srm_db_transition t = {.node = "n3",
                                  .new_state = "Initializing",
                                  .new_reason = "Initialization",
                                  .cause = "start",
                                  .at_us = now_us()};
    assert_int_equal(srm_db_node_state_report(db, &t, on_result, &c), 0);
    WAIT_OK(c);
    int64_t ev_id = c.id;
    capture_free(&c);
    assert_int_equal(srm_db_history_last(db, 1, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.events->n, 1);
    assert_int_equal(c.events->events[0].id, ev_id);
    assert_string_equal(c.events->events[0].new_state, "Initializing");
    capture_free(&c);
    assert_int_equal(srm_db_history_since(db, ev_id, 10, on_result, &c), 0);
    WAIT_OK(c);
    assert_int_equal(c.events->n, 0);
    capture_free(&c);
    assert_int_equal(srm_db_assignment_mode_set(db, SRM_DB_ASSIGN_BALANCED, on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    assert_int_equal(w.cache_errors, 0);

    close_manager(db, &w);
    assert_int_equal(w.down, 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Changes reach a second instance (another srmd) through LISTEN/NOTIFY. */
static void test_notify_second_instance(void **state)
{
    (void)state;
    static struct watcher wa, wb;
    static struct capture c;
    memset(&wa, 0, sizeof(wa));
    memset(&wb, 0, sizeof(wb));
    memset(&c, 0, sizeof(c));
    struct srm_db *a = manager(&wa, pg.conninfo, NULL, 1000);
    struct srm_db *b = manager(&wb, pg.conninfo, NULL, 1000);
    RUN_UNTIL(wa.up && wb.up, 10000);

    enum { ROUNDS = 20 };
    double lat[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        char value[16];
        snprintf(value, sizeof(value), "%d", 60 + i);
        int before = wb.changes[SRM_DB_TABLE_PARAMS];
        double t0 = now_ms();
        assert_int_equal(
            srm_db_param_set(a, "critical_service_down_delay", NULL, value, on_result, &c), 0);
        RUN_UNTIL(wb.changes[SRM_DB_TABLE_PARAMS] > before, 10000);
        lat[i] = wb.last_change_ms - t0;
        RUN_UNTIL(c.done, 10000);
        assert_true(c.status >= 0);
        capture_free(&c);
    }
    qsort(lat, ROUNDS, sizeof(lat[0]), cmp_double);
    printf("# a change made through instance A reached instance B (request sent -> B's "
           "callback): p50 %.2f ms, max %.2f ms over %d changes\n",
           lat[ROUNDS / 2], lat[ROUNDS - 1], ROUNDS);
    assert_true(lat[ROUNDS - 1] < 10000); /* generous bound; the figure is printed above */
    assert_true(wa.changes[SRM_DB_TABLE_PARAMS] >= ROUNDS); /* A sees its own changes too */

    /* a change by another client (srmctl through the blocking API) */
    struct srm_db_sync *s = NULL;
    assert_int_equal(srm_db_sync_open(pg.conninfo, &s, NULL, 0), 0);
    int before = wb.changes[SRM_DB_TABLE_NODES];
    double t0 = now_ms();
    assert_int_equal(srm_db_sync_node_update(s, "n2", "10.200.0.22"), 0);
    RUN_UNTIL(wb.changes[SRM_DB_TABLE_NODES] > before, 10000);
    printf("# a node update by a third client reached B in %.2f ms\n", wb.last_change_ms - t0);
    assert_int_equal(wb.last.op, SRM_DB_CHANGE_UPDATE);
    assert_true(wb.last.node_id > 0);
    assert_true(wb.last.group_id > 0);

    /* users: one notification per node concerned, whatever the number of users */
    const char *u[] = {"nu1", "nu2", "nu3", "nu4", "nu5", "nu6", "nu7", "nu8"};
    before = wb.changes[SRM_DB_TABLE_USERS];
    assert_int_equal(srm_db_sync_users_add(s, u, 8, NULL, NULL, NULL), 0);
    RUN_UNTIL(wb.changes[SRM_DB_TABLE_USERS] >= before + 4, 10000);
    run_for(100);
    assert_int_equal(wb.changes[SRM_DB_TABLE_USERS] - before, 4); /* n1..n4, one each */
    assert_int_equal(srm_db_sync_users_remove(s, u, 8, NULL, NULL), 0);

    /* a state report: node_state and history rows */
    int hist = wb.changes[SRM_DB_TABLE_HISTORY], st = wb.changes[SRM_DB_TABLE_NODE_STATE];
    struct srm_db_transition t = {.node = "n3",
                                  .old_state = "Initializing",
                                  .old_reason = "Initialization",
                                  .new_state = "Normal",
                                  .new_reason = "Normal",
                                  .at_us = now_us()};
    assert_int_equal(srm_db_sync_node_state_report(s, &t, NULL), 0);
    RUN_UNTIL(wb.changes[SRM_DB_TABLE_HISTORY] > hist && wb.changes[SRM_DB_TABLE_NODE_STATE] > st,
              10000);

    /* a payload this version does not understand still says "something changed" */
    PGconn *raw = PQconnectdb(pg.conninfo);
    PQclear(PQexec(raw, "NOTIFY srm_config, 'not json'"));
    PQfinish(raw);
    before = wb.changes[SRM_DB_TABLE_UNKNOWN];
    RUN_UNTIL(wb.changes[SRM_DB_TABLE_UNKNOWN] > before, 10000);
    srm_db_sync_close(s);

    close_manager(a, &wa);
    close_manager(b, &wb);
}

static void on_report_note(struct srm_db *db, struct srm_db_result *r, void *data)
{
    (void)db;
    struct capture *c = data;
    c->done = true;
    c->status = r->status;
    c->id = r->id;
    snprintf(c->msg, sizeof(c->msg), "%s", r->errmsg);
}

static void test_database_restart(void **state)
{
    (void)state;
    static struct watcher w;
    static struct capture c;
    memset(&w, 0, sizeof(w));
    memset(&c, 0, sizeof(c));
    struct srm_db *db = manager(&w, pg.conninfo, cache_path, 400);
    RUN_UNTIL(w.up == 1, 10000);
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    RUN_UNTIL(w.caches == 1, 10000);

    /* the database goes away */
    assert_int_equal(pg_fixture_halt(&pg), 0);
    double t0 = now_ms();
    RUN_UNTIL(w.down == 1, 10000);
    printf("# database stopped: down callback after %.0f ms: \"%s\"\n", now_ms() - t0, w.down_msg);
    assert_int_equal(w.down_err, SRM_EDB_DOWN);
    assert_false(srm_db_is_up(db));

    /* operations fail cleanly */
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    RUN_UNTIL(c.done, 1000);
    assert_int_equal(c.status, SRM_EDB_DOWN);
    assert_null(c.config);
    printf("#   \"%s\"\n", c.msg);
    assert_non_null(strstr(c.msg, "config load: the configuration database is down"));
    assert_non_null(strstr(c.msg, "nothing was changed"));
    capture_free(&c);

    /* node state reports are kept: SPEC.md §4 row 13 happening while the database is down */
    struct {
        const char *os, *orr, *ns, *nr;
    } steps[] = {
        {"Normal", "Normal", "Failing Over", "Database Failure"},
        {"Failing Over", "Database Failure", "Failed Over with Critical Services not Running",
         "Database Failure"},
        {"Failed Over with Critical Services not Running", "Database Failure", "Failed Over",
         "Database Failure"},
        {"Failed Over", "Database Failure", "Taking Back", "Admin Request"},
        {"Taking Back", "Admin Request", "Normal", "Normal"},
    };
    enum { STEPS = sizeof(steps) / sizeof(steps[0]) };
    static struct capture rc[STEPS];
    memset(rc, 0, sizeof(rc));
    int64_t at = now_us();
    for (int i = 0; i < STEPS; i++) {
        struct srm_db_transition t = {.node = "n1",
                                      .old_state = steps[i].os,
                                      .old_reason = steps[i].orr,
                                      .new_state = steps[i].ns,
                                      .new_reason = steps[i].nr,
                                      .cause = "while the database was down",
                                      .at_us = at + i};
        assert_int_equal(srm_db_node_state_report(db, &t, on_report_note, &rc[i]), 0);
    }
    run_for(300); /* a few reconnection attempts fail meanwhile */
    assert_int_equal(srm_db_reports_pending(db), STEPS);
    for (int i = 0; i < STEPS; i++)
        assert_false(rc[i].done);
    assert_int_equal(w.down, 1); /* said once, not at every failed attempt */

    /* a srmd starting now works from the cache, and says so */
    struct srm_db_config *cfg = NULL;
    char note[SRM_DB_ERRMSG_MAX];
    assert_int_equal(
        srm_db_config_bootstrap(pg.conninfo, cache_path, true, &cfg, note, sizeof(note)), 1);
    printf("# bootstrap while the database is down: \"%s\"\n", note);
    assert_int_equal(cfg->source, SRM_DB_SOURCE_CACHE);
    assert_non_null(strstr(note, "working from the cache"));
    assert_non_null(strstr(note, "s ago"));
    assert_non_null(srm_db_config_node(cfg, "n1"));
    srm_db_config_free(cfg);
    char nocache[160];
    snprintf(nocache, sizeof(nocache), "%s/absent.json", pg.dir);
    assert_int_equal(srm_db_config_bootstrap(pg.conninfo, nocache, true, &cfg, note, sizeof(note)),
                     SRM_EDB_DOWN);
    assert_non_null(strstr(note, "no cache file at"));

    /* the database returns: up again, the reports are written in order, none lost */
    assert_int_equal(pg_fixture_resume(&pg), 0);
    t0 = now_ms();
    RUN_UNTIL(w.up == 2, 10000);
    printf("# database restarted: up callback after %.0f ms\n", now_ms() - t0);
    RUN_UNTIL(rc[STEPS - 1].done, 10000);
    for (int i = 0; i < STEPS; i++) {
        assert_true(rc[i].done);
        if (rc[i].status < 0)
            fail_msg("report %d: %s", i, rc[i].msg);
        if (i > 0)
            assert_true(rc[i].id > rc[i - 1].id);
    }
    assert_int_equal(srm_db_reports_pending(db), 0);

    struct srm_db_sync *s = NULL;
    assert_int_equal(srm_db_sync_open(pg.conninfo, &s, NULL, 0), 0);
    struct srm_db_event_list *ev = NULL;
    assert_int_equal(srm_db_sync_history_last(s, STEPS, &ev), 0);
    assert_int_equal(ev->n, STEPS);
    for (int i = 0; i < STEPS; i++) {
        assert_string_equal(ev->events[i].old_state, steps[i].os);
        assert_string_equal(ev->events[i].new_state, steps[i].ns);
        assert_string_equal(ev->events[i].new_reason, steps[i].nr);
        assert_int_equal(ev->events[i].at_us, at + i);
    }
    srm_db_event_list_free(ev);
    assert_int_equal(srm_db_sync_config_load(s, &cfg), 0);
    assert_string_equal(srm_db_config_node(cfg, "n1")->state, "Normal");
    srm_db_config_free(cfg);
    srm_db_sync_close(s);

    /* and the database answers the manager again */
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    close_manager(db, &w);
}

static void test_report_queue_bound(void **state)
{
    (void)state;
    static struct watcher w;
    memset(&w, 0, sizeof(w));
    char nowhere[256];
    snprintf(nowhere, sizeof(nowhere), "host=%s/nowhere port=%d user=postgres dbname=srm", pg.dir,
             pg.port);
    struct srm_db_options o = {.conninfo = nowhere,
                               .reconnect_min_ms = 10,
                               .reconnect_max_ms = 40,
                               .report_queue_max = 2,
                               .down_cb = on_down,
                               .up_cb = on_up,
                               .data = &w};
    struct srm_db *db = NULL;
    assert_int_equal(srm_db_new(&loop, &o, &db), 0);
    assert_int_equal(srm_db_start(db), 0);
    RUN_UNTIL(w.down == 1, 10000);
    printf("# unreachable at start: \"%s\"\n", w.down_msg);
    assert_non_null(strstr(w.down_msg, "cannot reach the configuration database"));
    run_for(200);
    assert_int_equal(w.down, 1);
    assert_int_equal(w.up, 0);

    static struct capture rc[3], op;
    memset(rc, 0, sizeof(rc));
    memset(&op, 0, sizeof(op));
    for (int i = 0; i < 3; i++) {
        struct srm_db_transition t = {
            .node = "n2", .new_state = "Normal", .new_reason = "Normal", .at_us = now_us()};
        assert_int_equal(srm_db_node_state_report(db, &t, on_report_note, &rc[i]), 0);
    }
    RUN_UNTIL(rc[0].done, 1000);
    assert_int_equal(rc[0].status, -ENOBUFS);
    printf("#   \"%s\"\n", rc[0].msg);
    assert_false(rc[1].done);
    assert_int_equal(srm_db_reports_pending(db), 2);
    assert_int_equal(srm_db_users_rebalance(db, on_result, &op), 0);
    RUN_UNTIL(op.done, 1000);
    assert_int_equal(op.status, SRM_EDB_DOWN);

    /* close: what is still queued is cancelled, from within the call */
    srm_db_close(db, on_closed, &w);
    assert_true(rc[1].done && rc[2].done);
    assert_int_equal(rc[1].status, -ECANCELED);
    assert_int_equal(srm_db_users_rebalance(db, on_result, &op), -ECANCELED);
    RUN_UNTIL(w.closed, 10000);
}

static void test_operation_timeout(void **state)
{
    (void)state;
    static struct watcher w;
    static struct capture c;
    memset(&w, 0, sizeof(w));
    memset(&c, 0, sizeof(c));
    char conninfo[320];
    snprintf(conninfo, sizeof(conninfo), "%s application_name=srm-stop-me", pg.conninfo);
    struct srm_db_options o = {.conninfo = conninfo,
                               .reconnect_min_ms = 20,
                               .reconnect_max_ms = 200,
                               .op_timeout_ms = 500,
                               .ping_interval_ms = 60000,
                               .up_cb = on_up,
                               .down_cb = on_down,
                               .data = &w};
    struct srm_db *db = NULL;
    assert_int_equal(srm_db_new(&loop, &o, &db), 0);
    assert_int_equal(srm_db_start(db), 0);
    RUN_UNTIL(w.up == 1, 10000);

    /* freeze the server process that serves this manager */
    struct srm_db_sync *s = NULL;
    assert_int_equal(srm_db_sync_open(pg.conninfo, &s, NULL, 0), 0);
    srm_db_sync_close(s);
    PGconn *raw = PQconnectdb(pg.conninfo);
    PGresult *r = PQexec(raw, "SELECT pid FROM pg_stat_activity "
                              "WHERE application_name = 'srm-stop-me'");
    assert_int_equal(PQntuples(r), 1);
    pid_t backend = (pid_t)atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_int_equal(kill(backend, SIGSTOP), 0);

    double t0 = now_ms();
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    RUN_UNTIL(c.done, 10000);
    kill(backend, SIGCONT);
    printf("# server frozen: operation failed after %.0f ms: \"%s\"\n", now_ms() - t0, c.msg);
    assert_int_equal(c.status, -ETIMEDOUT);
    assert_non_null(strstr(c.msg, "may or may not have been applied"));
    assert_int_equal(w.down, 1);
    assert_int_equal(w.down_err, -ETIMEDOUT);
    /* it reconnects with a new server process */
    RUN_UNTIL(w.up == 2, 10000);
    capture_free(&c);
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    WAIT_OK(c);
    capture_free(&c);
    PQfinish(raw);

    /* close with an operation in flight: cancelled from within the call */
    assert_int_equal(srm_db_config_load(db, on_result, &c), 0);
    srm_db_close(db, on_closed, &w);
    assert_true(c.done);
    assert_int_equal(c.status, -ECANCELED);
    capture_free(&c);
    RUN_UNTIL(w.closed, 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations),        cmocka_unit_test(test_notify_second_instance),
        cmocka_unit_test(test_database_restart),  cmocka_unit_test(test_report_queue_bound),
        cmocka_unit_test(test_operation_timeout),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
