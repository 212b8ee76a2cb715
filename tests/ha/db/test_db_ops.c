/*
 * Integration tests of every operation (ha/db/op.c, ha/db/sync.c and the functions of
 * ha/db/migrations/002_rules.sql) through the blocking API, against a real throwaway
 * PostgreSQL: groups, nodes, HA, parameters, users, the rules of SPEC.md §2 (no users
 * added while a node is failed over, node removal, the publisher), balanced and
 * active-standby assignment at 75,000 users with the number of moves checked against the
 * minimum, rebalance, and the history.
 *
 * The tests run in order on one database; each leaves it as the next expects.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct pg_fixture pg;
static struct srm_db_sync *db;

#define EXPECT(call, expected)                                                                     \
    do {                                                                                           \
        int err_ = (call);                                                                         \
        if (err_ != (expected))                                                                    \
            fail_msg("%s: expected %d, got %d (%s)", #call, (int)(expected), err_,                 \
                     srm_db_sync_errmsg(db));                                                      \
    } while (0)
#define OK(call) EXPECT(call, 0)

/* Asserts the last error message contains part, and prints it: the messages are the UI. */
static void said(const char *part)
{
    const char *m = srm_db_sync_errmsg(db);
    if (!strstr(m, part))
        fail_msg("message \"%s\" does not say \"%s\"", m, part);
    printf("#   \"%s\"\n", m);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Names "<prefix>NNNNNN" for from..from+n-1; free with free_names(). */
static char **make_names(const char *prefix, int from, int n)
{
    char **v = malloc((size_t)n * sizeof(*v));
    for (int i = 0; i < n; i++) {
        v[i] = malloc(48);
        snprintf(v[i], 48, "%s%06d@example.com", prefix, from + i);
    }
    return v;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static struct srm_db_config *load(void)
{
    struct srm_db_config *cfg = NULL;
    OK(srm_db_sync_config_load(db, &cfg));
    return cfg;
}

static int64_t users_of(const struct srm_db_config *cfg, const char *node)
{
    const struct srm_db_node *n = srm_db_config_node(cfg, node);
    assert_non_null(n);
    return n->users;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The fewest moves that make `total` users even over buckets that hold counts[] now: give
 * the extra users to the fullest buckets, then count what the others miss.
 */
static int64_t min_moves(int64_t *counts, size_t b, int64_t total)
{
    qsort(counts, b, sizeof(*counts), cmp_desc);
    int64_t q = total / (int64_t)b, r = total % (int64_t)b, moves = 0;
    for (size_t i = 0; i < b; i++) {
        int64_t target = q + ((int64_t)i < r ? 1 : 0);
        if (target > counts[i])
            moves += target - counts[i];
    }
    return moves;
}

/* Counts of the assignable nodes, optionally with one more empty node and one excluded. */
static size_t assignable_counts(const struct srm_db_config *cfg, int64_t *out, bool plus_empty,
                                const char *exclude)
{
    size_t b = 0;
    for (size_t i = 0; i < cfg->n_nodes; i++)
        if (cfg->nodes[i].assignable && (!exclude || strcmp(cfg->nodes[i].name, exclude) != 0))
            out[b++] = cfg->nodes[i].users;
    if (plus_empty)
        out[b++] = 0;
    return b;
}

/* Balanced mode holds: every user assigned, max - min <= 1 over the assignable nodes. */
static void check_even(const char *step)
{
    struct srm_db_config *cfg = load();
    int64_t lo = INT64_MAX, hi = 0, sum = 0;
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        const struct srm_db_node *n = &cfg->nodes[i];
        if (!n->assignable) {
            assert_int_equal(n->users, 0);
            continue;
        }
        lo = n->users < lo ? n->users : lo;
        hi = n->users > hi ? n->users : hi;
        sum += n->users;
    }
    printf("# %-44s users %6" PRId64 ", per node %" PRId64 "..%" PRId64 "\n", step,
           cfg->users_total, lo, hi);
    assert_int_equal(cfg->users_unassigned, 0);
    assert_int_equal(sum, cfg->users_total);
    assert_true(hi - lo <= 1);
    srm_db_config_free(cfg);
}

static int group_setup(void **state)
{
    (void)state;
    char msg[SRM_DB_ERRMSG_MAX];
    if (pg_fixture_start(&pg) < 0)
        return -1;
    if (srm_db_sync_open(pg.conninfo, &db, msg, sizeof(msg)) < 0 ||
        srm_db_sync_migrate(db, NULL) < 0) {
        fprintf(stderr, "setup: %s %s\n", msg, db ? srm_db_sync_errmsg(db) : "");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    srm_db_sync_close(db);
    pg_fixture_stop(&pg);
    return 0;
}

static void test_groups_nodes_ha(void **state)
{
    (void)state;
    int64_t id = 0, moved = -1;

    OK(srm_db_sync_group_create(db, "g1", "first pair", &id));
    assert_true(id > 0);
    EXPECT(srm_db_sync_group_create(db, "g1", "", NULL), SRM_EEXISTS);
    said("group \"g1\" already exists; choose another name");
    EXPECT(srm_db_sync_group_create(db, "g 1", "", NULL), -EINVAL);
    said("group create: group name \"g 1\" has a forbidden character ' '");
    EXPECT(srm_db_sync_group_create(db, "g9", "100% <sure>", NULL), -EINVAL);
    said("forbidden character '%'");

    OK(srm_db_sync_group_update(db, "g1", "gx", NULL));
    OK(srm_db_sync_group_update(db, "gx", "g1", "Tokyo, rack 3"));
    EXPECT(srm_db_sync_group_update(db, "nope", NULL, "x"), SRM_ENOTFOUND);
    said("no group named \"nope\"");

    OK(srm_db_sync_node_add(db, "n1", "10.200.0.1", "g1", &id, &moved));
    assert_int_equal(moved, 0);
    OK(srm_db_sync_node_add(db, "n2", "10.200.0.2", "g1", NULL, NULL));
    EXPECT(srm_db_sync_node_add(db, "n9", "10.200.0.9", "g1", NULL, NULL), SRM_EREFUSED);
    said("group \"g1\" already has two nodes (n1, n2)");
    EXPECT(srm_db_sync_node_add(db, "n1", "10.200.0.1", "g1", NULL, NULL), SRM_EEXISTS);
    EXPECT(srm_db_sync_node_add(db, "n9", "10.200.0.9", "g9", NULL, NULL), SRM_ENOTFOUND);

    /* SPEC.md §2: HA needs two nodes */
    OK(srm_db_sync_group_create(db, "g2", NULL, NULL));
    OK(srm_db_sync_node_add(db, "n3", "10.200.0.3", "g2", NULL, NULL));
    EXPECT(srm_db_sync_group_set_ha(db, "g2", true), SRM_EREFUSED);
    said("HA needs two nodes and it has 1");
    OK(srm_db_sync_node_add(db, "n4", "10.200.0.4", "g2", NULL, NULL));
    OK(srm_db_sync_group_set_ha(db, "g2", true));
    OK(srm_db_sync_group_set_ha(db, "g2", false));
    OK(srm_db_sync_group_set_ha(db, "g1", true));
    OK(srm_db_sync_group_set_ha(db, "g1", true)); /* idempotent */

    EXPECT(srm_db_sync_group_delete(db, "g1"), SRM_EREFUSED);
    said("group \"g1\" still has nodes (n1, n2); remove its nodes first");
    OK(srm_db_sync_group_create(db, "spare", NULL, NULL));
    OK(srm_db_sync_group_delete(db, "spare"));
    EXPECT(srm_db_sync_group_delete(db, "spare"), SRM_ENOTFOUND);

    OK(srm_db_sync_node_update(db, "n1", "[fd00::1]:22001"));
    EXPECT(srm_db_sync_node_update(db, "n7", "10.0.0.7"), SRM_ENOTFOUND);

    struct srm_db_config *cfg = load();
    const struct srm_db_node *n1 = srm_db_config_node(cfg, "n1");
    const struct srm_db_node *n2 = srm_db_config_node(cfg, "n2");
    assert_true(n1->is_publisher); /* the first node added */
    assert_false(n2->is_publisher);
    assert_false(srm_db_config_node(cfg, "n3")->is_publisher);
    assert_int_equal(n1->position, 1);
    assert_int_equal(n2->position, 2);
    assert_string_equal(n1->address, "[fd00::1]:22001");
    const struct srm_db_group *g1 = srm_db_config_group(cfg, "g1");
    assert_string_equal(g1->description, "Tokyo, rack 3");
    assert_true(g1->ha_enabled);
    assert_false(srm_db_config_group(cfg, "g2")->ha_enabled);
    assert_ptr_equal(srm_db_config_peer(cfg, n1), n2);
    srm_db_config_free(cfg);
}

static void test_params(void **state)
{
    (void)state;
    struct srm_db_param_value v;

    OK(srm_db_sync_param_get(db, "keepalive_interval", NULL, &v));
    assert_int_equal(v.value, 15);
    assert_int_equal(v.source, SRM_DB_PARAM_SOURCE_DEFAULT);
    OK(srm_db_sync_param_set(db, "keepalive_interval", NULL, "20"));
    OK(srm_db_sync_param_get(db, "keepalive_interval", NULL, &v));
    assert_int_equal(v.value, 20);
    assert_int_equal(v.source, SRM_DB_PARAM_SOURCE_CLUSTER);

    /* the range, checked in C before sending */
    EXPECT(srm_db_sync_param_set(db, "keepalive_interval", NULL, "0"), -ERANGE);
    said("keepalive_interval = 0 is out of range: allowed 1 to 300 s");
    EXPECT(srm_db_sync_param_set(db, "service_port", NULL, "70000"), -ERANGE);
    said("allowed 1 to 65535");
    /* the rules between parameters, checked in the database against the stored values */
    EXPECT(srm_db_sync_param_set(db, "keepalive_interval", NULL, "40"), -ERANGE);
    said("keepalive_timeout (60 s) must be at least twice keepalive_interval (40 s); raise "
         "keepalive_timeout or lower keepalive_interval first");
    OK(srm_db_sync_param_get(db, "keepalive_interval", NULL, &v));
    assert_int_equal(v.value, 20); /* unchanged */
    OK(srm_db_sync_param_set(db, "keepalive_timeout", NULL, "100"));
    OK(srm_db_sync_param_set(db, "init_keepalive_timeout", NULL, "200"));
    OK(srm_db_sync_param_set(db, "keepalive_interval", NULL, "40"));
    OK(srm_db_sync_param_reset(db, "keepalive_interval", NULL));
    OK(srm_db_sync_param_reset(db, "keepalive_timeout", NULL));
    OK(srm_db_sync_param_reset(db, "init_keepalive_timeout", NULL));
    OK(srm_db_sync_param_get(db, "keepalive_timeout", NULL, &v));
    assert_int_equal(v.source, SRM_DB_PARAM_SOURCE_DEFAULT);

    /* per node (SPEC.md §6: the re-login limits) */
    OK(srm_db_sync_param_set(db, "relogin_lower", "n1", "30"));
    OK(srm_db_sync_param_set(db, "relogin_upper", "n1", "50"));
    OK(srm_db_sync_param_get(db, "relogin_lower", "n1", &v));
    assert_int_equal(v.value, 30);
    assert_int_equal(v.source, SRM_DB_PARAM_SOURCE_NODE);
    OK(srm_db_sync_param_get(db, "relogin_lower", "n2", &v));
    assert_int_equal(v.value, 120);
    EXPECT(srm_db_sync_param_set(db, "relogin_upper", NULL, "100"), -ERANGE);
    said("relogin_lower (120 s) must not exceed relogin_upper (100 s) (cluster-wide)");
    EXPECT(srm_db_sync_param_set(db, "relogin_lower", "n1", "60"), -ERANGE);
    said("on node \"n1\"");
    EXPECT(srm_db_sync_param_set(db, "keepalive_interval", "n1", "5"), -EINVAL);
    said("cluster-wide and cannot be set per node");
    EXPECT(srm_db_sync_param_set(db, "relogin_lower", "n8", "5"), SRM_ENOTFOUND);
    EXPECT(srm_db_sync_param_get(db, "nothing", NULL, &v), -EINVAL);
    said("known parameters:");
    /* the automatic fallback delay is a parameter, so demos can shorten it */
    OK(srm_db_sync_param_set(db, "automatic_fallback", NULL, "true"));
    OK(srm_db_sync_param_set(db, "automatic_fallback_delay", NULL, "20"));

    struct srm_db_config *cfg = load();
    assert_int_equal(cfg->params[SRM_DB_PARAM_RELOGIN_LOWER], 120);
    assert_int_equal(cfg->params[SRM_DB_PARAM_AUTOMATIC_FALLBACK], 1);
    assert_int_equal(cfg->params[SRM_DB_PARAM_AUTOMATIC_FALLBACK_DELAY], 20);
    const struct srm_db_node *n1 = srm_db_config_node(cfg, "n1");
    const struct srm_db_node *n2 = srm_db_config_node(cfg, "n2");
    assert_int_equal(n1->params[SRM_DB_PARAM_RELOGIN_LOWER], 30);
    assert_int_equal(n1->params[SRM_DB_PARAM_RELOGIN_UPPER], 50);
    assert_int_equal(n1->params[SRM_DB_PARAM_AUTOMATIC_FALLBACK_DELAY], 20); /* merged */
    assert_int_equal(n2->params[SRM_DB_PARAM_RELOGIN_UPPER], 537);
    srm_db_config_free(cfg);
    OK(srm_db_sync_param_reset(db, "automatic_fallback", NULL));
}

static void test_users_basic(void **state)
{
    (void)state;
    const char *abc[] = {"alice", "bob", "carol"};
    int64_t added = 0, moved = 0, n = 0;

    OK(srm_db_sync_users_add(db, abc, 3, NULL, &added, &moved));
    assert_int_equal(added, 3);
    assert_int_equal(moved, 3); /* each placed by the balanced mode */
    const char *again[] = {"dave", "bob"};
    EXPECT(srm_db_sync_users_add(db, again, 2, NULL, NULL, NULL), SRM_EEXISTS);
    said("user \"bob\" already exists; leave existing users out of the list; nothing was added");
    const char *bad[] = {"eve", "mallory evil"};
    EXPECT(srm_db_sync_users_add(db, bad, 2, NULL, NULL, NULL), -EINVAL);

    struct srm_db_user_list *page = NULL;
    OK(srm_db_sync_users_list(db, NULL, NULL, false, 2, &page));
    assert_int_equal(page->n, 2);
    assert_string_equal(page->users[0].name, "alice");
    assert_string_equal(page->users[1].name, "bob");
    assert_non_null(page->users[0].node);
    char after[64];
    snprintf(after, sizeof(after), "%s", page->users[1].name);
    srm_db_user_list_free(page);
    OK(srm_db_sync_users_list(db, after, NULL, false, 2, &page));
    assert_int_equal(page->n, 1);
    assert_string_equal(page->users[0].name, "carol");
    srm_db_user_list_free(page);

    const char *b[] = {"bob"};
    OK(srm_db_sync_users_assign(db, b, 1, "n3", &n));
    OK(srm_db_sync_users_list(db, NULL, "n3", false, 10, &page));
    bool found = false;
    for (size_t i = 0; i < page->n; i++) {
        assert_string_equal(page->users[i].node, "n3");
        found |= strcmp(page->users[i].name, "bob") == 0;
    }
    assert_true(found);
    srm_db_user_list_free(page);
    const char *ghost[] = {"bob", "ghost"};
    EXPECT(srm_db_sync_users_assign(db, ghost, 2, "n1", NULL), SRM_ENOTFOUND);
    said("no user named \"ghost\"; add the user first; nothing was assigned");
    EXPECT(srm_db_sync_users_assign(db, b, 1, "n8", NULL), SRM_ENOTFOUND);
    EXPECT(srm_db_sync_users_list(db, NULL, "n8", false, 10, &page), SRM_ENOTFOUND);

    /* unassign by hand, list the unassigned */
    OK(srm_db_sync_users_assign(db, b, 1, NULL, &n));
    assert_int_equal(n, 1);
    OK(srm_db_sync_users_list(db, NULL, NULL, true, 10, &page));
    assert_int_equal(page->n, 1);
    assert_null(page->users[0].node);
    srm_db_user_list_free(page);

    OK(srm_db_sync_users_remove(db, abc, 3, &n, NULL));
    assert_int_equal(n, 3);
    OK(srm_db_sync_users_remove(db, abc, 3, &n, NULL)); /* absent names are ignored */
    assert_int_equal(n, 0);
}

static void report(const char *node, const char *os, const char *orr, const char *ns,
                   const char *nr, const char *cause, int64_t *ret_id)
{
    struct srm_db_transition t = {.node = node,
                                  .old_state = os,
                                  .old_reason = orr,
                                  .new_state = ns,
                                  .new_reason = nr,
                                  .cause = cause,
                                  .at_us = now_us()};
    OK(srm_db_sync_node_state_report(db, &t, ret_id));
}

static void test_failed_over_rule(void **state)
{
    (void)state;
    const char *u[] = {"frank"};
    int64_t first = 0, id = 0;

    report("n1", NULL, NULL, "Initializing", "Initialization", "srmd started", &first);
    report("n1", "Initializing", "Initialization", "Normal", "Normal", "", NULL);
    report("n2", NULL, NULL, "Normal", "Normal", "srmd started", NULL);
    OK(srm_db_sync_users_add(db, u, 1, NULL, NULL, NULL)); /* Normal / Initializing: allowed */

    /* SPEC.md §4 row 2: manual failover in progress */
    report("n1", "Normal", "Normal", "Failing Over", "Admin Request", "srmctl failover n1", NULL);
    report("n2", "Normal", "Normal", "Taking Over", "Admin Request", "srmctl failover n1", &id);
    const char *v[] = {"grace", "heidi"};
    EXPECT(srm_db_sync_users_add(db, v, 2, NULL, NULL, NULL), SRM_EFAILED_OVER);
    said("users add: adding users refused: node \"n1\" is failed over (state Failing Over, "
         "reason Admin Request)");
    said("fall back or recover until every node is Normal");
    EXPECT(srm_db_sync_users_add(db, v, 2, "n3", NULL, NULL), SRM_EFAILED_OVER);
    EXPECT(srm_db_sync_users_assign(db, u, 1, "n4", NULL), SRM_EFAILED_OVER);
    EXPECT(srm_db_sync_users_rebalance(db, NULL), SRM_EFAILED_OVER);
    said("rebalancing users refused");

    struct srm_db_config *cfg = load();
    const struct srm_db_node *fo = srm_db_config_failed_over(cfg);
    assert_non_null(fo);
    assert_string_equal(fo->name, "n1");
    assert_string_equal(srm_db_config_node(cfg, "n2")->state, "Taking Over");
    srm_db_config_free(cfg);

    /* row 3, then back to row 1 through a fallback */
    report("n1", "Failing Over", "Admin Request", "Idle", "Admin Request", "", NULL);
    report("n2", "Taking Over", "Admin Request", "Running in Backup Mode", "Admin Request", "",
           NULL);
    EXPECT(srm_db_sync_users_add(db, v, 2, NULL, NULL, NULL), SRM_EFAILED_OVER);
    report("n1", "Idle", "Admin Request", "Taking Back", "Admin Request", "srmctl fallback n1",
           NULL);
    report("n2", "Running in Backup Mode", "Admin Request", "Falling Back", "Admin Request",
           "srmctl fallback n1", NULL);
    report("n1", "Taking Back", "Admin Request", "Normal", "Normal", "", NULL);
    EXPECT(srm_db_sync_users_add(db, v, 2, NULL, NULL, NULL), SRM_EFAILED_OVER); /* n2 not yet */
    said("node \"n2\" is failed over (state Falling Back");
    report("n2", "Falling Back", "Admin Request", "Normal", "Normal", "", NULL);
    OK(srm_db_sync_users_add(db, v, 2, NULL, NULL, NULL));

    /* the history holds every transition, in order, with old and new state and reason */
    struct srm_db_event_list *ev = NULL;
    OK(srm_db_sync_history_since(db, first - 1, 100, &ev));
    assert_int_equal(ev->n, 11);
    assert_int_equal(ev->events[0].id, first);
    assert_null(ev->events[0].old_state);
    assert_string_equal(ev->events[0].new_state, "Initializing");
    assert_string_equal(ev->events[0].cause, "srmd started");
    assert_string_equal(ev->events[0].group, "g1");
    assert_string_equal(ev->events[4].old_state, "Normal");
    assert_string_equal(ev->events[4].new_state, "Taking Over");
    assert_string_equal(ev->events[4].new_reason, "Admin Request");
    assert_string_equal(ev->events[4].node, "n2");
    assert_int_equal(ev->events[4].id, id);
    for (size_t i = 1; i < ev->n; i++)
        assert_true(ev->events[i].id > ev->events[i - 1].id);
    srm_db_event_list_free(ev);
    OK(srm_db_sync_history_since(db, id, 100, &ev)); /* what `events --follow` reads */
    assert_int_equal(ev->n, 6);
    assert_true(ev->events[0].id > id);
    srm_db_event_list_free(ev);
    OK(srm_db_sync_history_last(db, 2, &ev));
    assert_int_equal(ev->n, 2);
    assert_string_equal(ev->events[1].node, "n2");
    assert_string_equal(ev->events[1].new_state, "Normal");
    assert_string_equal(ev->events[0].new_state, "Normal"); /* n1 back, oldest first */
    srm_db_event_list_free(ev);

    struct srm_db_transition t = {
        .node = "n9", .new_state = "Normal", .new_reason = "Normal", .at_us = now_us()};
    EXPECT(srm_db_sync_node_state_report(db, &t, NULL), SRM_ENOTFOUND);
    said("no node named \"n9\"");

    const char *all[] = {"frank", "grace", "heidi"};
    OK(srm_db_sync_users_remove(db, all, 3, NULL, NULL));
}

/*
 * The predicate is checked inside the transaction of the insert: a node going to a failed
 * state in a concurrent, not yet committed transaction makes users add wait for it, then
 * refuse.
 */
static void test_failed_over_race(void **state)
{
    (void)state;
    PGconn *other = PQconnectdb(pg.conninfo);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    PQclear(PQexec(other, "BEGIN"));
    PGresult *r = PQexec(other, "SELECT srm_node_state_report('n3', NULL, NULL, "
                                "'Failed Over with Critical Services not Running', "
                                "'Critical Service Down', 'sip proxy down', "
                                "srm_us(now()), NULL, NULL)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct srm_db_sync *c = NULL;
        const char *u[] = {"ivan"};
        if (srm_db_sync_open(pg.conninfo, &c, NULL, 0) < 0)
            _exit(2);
        int err = srm_db_sync_users_add(c, u, 1, NULL, NULL, NULL);
        srm_db_sync_close(c);
        _exit(err == SRM_EFAILED_OVER ? 0 : 1);
    }
    /* the child's users add now waits for this transaction */
    usleep(300 * 1000);
    PQclear(PQexec(other, "COMMIT"));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    r = PQexec(other, "SELECT count(*) FROM users WHERE name = 'ivan'");
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    PQfinish(other);
    report("n3", "Failed Over with Critical Services not Running", "Critical Service Down",
           "Normal", "Normal", "", NULL);
}

static void test_node_removal_rules(void **state)
{
    (void)state;
    char **u = make_names("rm", 0, 40);
    int64_t moved = 0;

    OK(srm_db_sync_users_add(db, (const char *const *)u, 40, NULL, NULL, NULL));
    check_even("40 users over n1..n4");

    /* SPEC.md §2: a node can be removed only after HA is disabled on its group... */
    EXPECT(srm_db_sync_node_remove(db, "n2"), SRM_EREFUSED);
    said("cannot remove node \"n2\": HA is enabled on its group \"g1\"; disable HA first "
         "(srmctl ha disable g1)");
    OK(srm_db_sync_group_set_ha(db, "g1", false));
    /* ...and its users are unassigned */
    EXPECT(srm_db_sync_node_remove(db, "n2"), SRM_EREFUSED);
    said("cannot remove node \"n2\": 10 users are assigned to it");
    OK(srm_db_sync_node_set_assignable(db, "n2", false, &moved));
    assert_int_equal(moved, 10);
    check_even("n2 unassigned");
    OK(srm_db_sync_node_remove(db, "n2"));
    check_even("n2 removed");

    /* the publisher cannot be removed from a live group */
    OK(srm_db_sync_node_add(db, "n2", "10.200.0.2", "g1", NULL, &moved));
    check_even("n2 back");
    OK(srm_db_sync_node_set_assignable(db, "n1", false, NULL));
    EXPECT(srm_db_sync_node_remove(db, "n1"), SRM_EREFUSED);
    said("it is the database publisher and its group \"g1\" is live (node \"n2\" is still in "
         "it)");
    OK(srm_db_sync_node_set_assignable(db, "n2", false, NULL));
    OK(srm_db_sync_node_remove(db, "n2"));
    OK(srm_db_sync_node_remove(db, "n1")); /* alone in its group now */
    check_even("n1 (publisher) removed");

    struct srm_db_config *cfg = load();
    assert_null(srm_db_config_node(cfg, "n1"));
    assert_true(srm_db_config_node(cfg, "n3")->is_publisher); /* the oldest remaining */
    assert_int_equal(srm_db_config_group(cfg, "g1")->n_nodes, 0);
    srm_db_config_free(cfg);
    /* the history outlives the node */
    struct srm_db_event_list *ev = NULL;
    OK(srm_db_sync_history_since(db, 0, 100, &ev));
    assert_string_equal(ev->events[0].node, "n1");
    srm_db_event_list_free(ev);

    /* back to two groups of two for what follows */
    OK(srm_db_sync_node_add(db, "n1", "10.200.0.1", "g1", NULL, NULL));
    OK(srm_db_sync_node_add(db, "n2", "10.200.0.2", "g1", NULL, NULL));
    OK(srm_db_sync_users_remove(db, (const char *const *)u, 40, NULL, NULL));
    free_names(u, 40);
}

enum { BIG = 75000 };

static void test_balanced_at_scale(void **state)
{
    (void)state;
    int64_t counts[16], added = 0, moved = 0, removed = 0;
    size_t b;
    struct srm_db_config *before;
    char **u = make_names("user", 0, BIG);

    /* add 75,000 users in one statement: each lands on a node below the even share */
    before = load();
    b = assignable_counts(before, counts, false, NULL);
    int64_t expect = min_moves(counts, b, before->users_total + BIG);
    srm_db_config_free(before);
    double t0 = now_s();
    OK(srm_db_sync_users_add(db, (const char *const *)u, BIG, NULL, &added, &moved));
    printf("# users add of %d users: %.0f ms\n", BIG, (now_s() - t0) * 1000);
    assert_int_equal(added, BIG);
    assert_int_equal(moved, expect);
    check_even("75,000 users added");

    /* remove 3,000 users of one node: the others give it users back, no more than needed */
    struct srm_db_user_list *page = NULL;
    OK(srm_db_sync_users_list(db, NULL, "n3", false, 3000, &page));
    assert_int_equal(page->n, 3000);
    const char **names = malloc(page->n * sizeof(*names));
    for (size_t i = 0; i < page->n; i++)
        names[i] = page->users[i].name;
    before = load();
    b = assignable_counts(before, counts, false, NULL);
    for (size_t i = 0; i < before->n_nodes; i++)
        if (strcmp(before->nodes[i].name, "n3") == 0)
            counts[i] -= 3000; /* assignable_counts keeps the node order */
    expect = min_moves(counts, b, before->users_total - 3000);
    srm_db_config_free(before);
    t0 = now_s();
    OK(srm_db_sync_users_remove(db, names, page->n, &removed, &moved));
    printf("# users remove of 3,000 users of n3: %.0f ms, %" PRId64 " moved\n",
           (now_s() - t0) * 1000, moved);
    assert_int_equal(removed, 3000);
    assert_int_equal(moved, expect);
    free(names);
    srm_db_user_list_free(page);
    check_even("3,000 users of n3 removed");

    /* remove 10,000 users spread over every node */
    char **spread = make_names("user", 30000, 10000);
    OK(srm_db_sync_users_remove(db, (const char *const *)spread, 10000, &removed, NULL));
    assert_true(removed > 9000); /* some of them were among the 3,000 above */
    free_names(spread, 10000);
    check_even("10,000 users removed");

    /* a node joins: it gets its share, taken from the fullest nodes only */
    OK(srm_db_sync_group_create(db, "g3", NULL, NULL));
    before = load();
    b = assignable_counts(before, counts, true, NULL);
    expect = min_moves(counts, b, before->users_total);
    srm_db_config_free(before);
    t0 = now_s();
    OK(srm_db_sync_node_add(db, "n5", "10.200.0.5", "g3", NULL, &moved));
    printf("# node add n5: %.0f ms, %" PRId64 " users moved to it\n", (now_s() - t0) * 1000, moved);
    assert_int_equal(moved, expect);
    check_even("node n5 added");

    /* more users */
    char **more = make_names("late", 0, 5001);
    OK(srm_db_sync_users_add(db, (const char *const *)more, 5001, NULL, &added, &moved));
    assert_int_equal(moved, 5001);
    check_even("5,001 users added");

    /* a node leaves: its users spread over the others */
    before = load();
    b = assignable_counts(before, counts, false, "n5");
    expect = min_moves(counts, b, before->users_total);
    srm_db_config_free(before);
    t0 = now_s();
    OK(srm_db_sync_node_set_assignable(db, "n5", false, &moved));
    printf("# node n5 unassigned: %.0f ms, %" PRId64 " users moved\n", (now_s() - t0) * 1000,
           moved);
    assert_int_equal(moved, expect);
    check_even("node n5 unassigned");
    OK(srm_db_sync_node_remove(db, "n5"));
    check_even("node n5 removed");

    /* manual skew, then rebalance on request */
    const char **skew = malloc(2000 * sizeof(*skew));
    for (int i = 0; i < 2000; i++)
        skew[i] = more[i];
    OK(srm_db_sync_users_assign(db, skew, 2000, "n1", NULL));
    before = load();
    b = assignable_counts(before, counts, false, NULL);
    expect = min_moves(counts, b, before->users_total);
    srm_db_config_free(before);
    t0 = now_s();
    OK(srm_db_sync_users_rebalance(db, &moved));
    printf("# rebalance after 2,000 users put on n1 by hand: %.0f ms, %" PRId64 " moved\n",
           (now_s() - t0) * 1000, moved);
    assert_int_equal(moved, expect);
    check_even("rebalanced");
    OK(srm_db_sync_users_rebalance(db, &moved));
    assert_int_equal(moved, 0); /* already even: nothing moves */
    free(skew);
    free_names(more, 5001);
    free_names(u, BIG);
}

static void test_active_standby(void **state)
{
    (void)state;
    int64_t moved = 0;
    struct srm_db_config *before = load();
    int64_t on_n2 = users_of(before, "n2"), on_n4 = users_of(before, "n4");
    int64_t on_n1 = users_of(before, "n1"), on_n3 = users_of(before, "n3");
    int64_t total = before->users_total;
    srm_db_config_free(before);

    /* setting the mode moves nobody */
    OK(srm_db_sync_assignment_mode_set(db, SRM_DB_ASSIGN_ACTIVE_STANDBY));
    struct srm_db_config *cfg = load();
    assert_int_equal(cfg->assignment_mode, SRM_DB_ASSIGN_ACTIVE_STANDBY);
    assert_int_equal(users_of(cfg, "n2"), on_n2);
    srm_db_config_free(cfg);

    /* groups already even: only the second nodes' users move, to their group's first node */
    double t0 = now_s();
    OK(srm_db_sync_users_rebalance(db, &moved));
    printf("# active-standby rebalance: %.0f ms, %" PRId64 " moved\n", (now_s() - t0) * 1000,
           moved);
    assert_int_equal(moved, on_n2 + on_n4);
    cfg = load();
    assert_int_equal(users_of(cfg, "n1"), on_n1 + on_n2);
    assert_int_equal(users_of(cfg, "n3"), on_n3 + on_n4);
    assert_int_equal(users_of(cfg, "n2"), 0);
    assert_int_equal(users_of(cfg, "n4"), 0);
    assert_int_equal(cfg->users_total, total);
    srm_db_config_free(cfg);

    /* new users: spread evenly over the groups, all on first nodes */
    char **u = make_names("as", 0, 1001);
    OK(srm_db_sync_users_add(db, (const char *const *)u, 1001, NULL, NULL, &moved));
    assert_int_equal(moved, 1001);
    cfg = load();
    int64_t a = users_of(cfg, "n1"), c = users_of(cfg, "n3");
    printf("# active-standby after 1,001 more users: g1 %" PRId64 " on n1, g2 %" PRId64 " on n3\n",
           a, c);
    assert_true(a - c <= 1 && c - a <= 1);
    assert_int_equal(a + c, total + 1001);
    assert_int_equal(users_of(cfg, "n2") + users_of(cfg, "n4"), 0);
    srm_db_config_free(cfg);

    /* the first node stops taking users: the second becomes the group's first */
    OK(srm_db_sync_node_set_assignable(db, "n1", false, &moved));
    assert_int_equal(moved, a);
    cfg = load();
    assert_int_equal(users_of(cfg, "n2"), a);
    assert_int_equal(users_of(cfg, "n1"), 0);
    srm_db_config_free(cfg);
    OK(srm_db_sync_node_set_assignable(db, "n1", true, &moved));
    assert_int_equal(moved, a);
    cfg = load();
    assert_int_equal(users_of(cfg, "n1"), a);
    srm_db_config_free(cfg);
    OK(srm_db_sync_users_remove(db, (const char *const *)u, 1001, NULL, NULL));
    free_names(u, 1001);
}

static void test_mode_none(void **state)
{
    (void)state;
    int64_t moved = -1, n = 0;
    char **u = make_names("manual", 0, 10);

    OK(srm_db_sync_assignment_mode_set(db, SRM_DB_ASSIGN_NONE));
    OK(srm_db_sync_users_add(db, (const char *const *)u, 10, NULL, NULL, &moved));
    assert_int_equal(moved, 0);
    struct srm_db_config *cfg = load();
    assert_int_equal(cfg->users_unassigned, 10);
    srm_db_config_free(cfg);
    OK(srm_db_sync_users_rebalance(db, &moved)); /* none: the engine assigns nobody */
    assert_int_equal(moved, 0);
    OK(srm_db_sync_users_assign(db, (const char *const *)u, 10, "n4", &n));
    assert_int_equal(n, 10);
    cfg = load();
    assert_int_equal(cfg->users_unassigned, 0);
    assert_int_equal(users_of(cfg, "n4"), 10);
    srm_db_config_free(cfg);

    /* back to balanced: a rebalance spreads everybody again */
    OK(srm_db_sync_assignment_mode_set(db, SRM_DB_ASSIGN_BALANCED));
    double t0 = now_s();
    OK(srm_db_sync_users_rebalance(db, &moved));
    printf("# balanced rebalance from active-standby: %.0f ms, %" PRId64 " moved\n",
           (now_s() - t0) * 1000, moved);
    check_even("balanced again");
    OK(srm_db_sync_users_remove(db, (const char *const *)u, 10, NULL, NULL));
    free_names(u, 10);
}

/* A report re-sent with the same writer id and sequence number is recorded once. */
static void test_report_dedup(void **state)
{
    (void)state;
    PGconn *c = PQconnectdb(pg.conninfo);
    const char *sql = "SELECT srm_node_state_report('n4', 'Normal', 'Normal', 'Normal', "
                      "'Normal', 'resent', srm_us(now()), 'writer-x', 42)";
    PGresult *r1 = PQexec(c, sql), *r2 = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r1), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r1, 0, 0), PQgetvalue(r2, 0, 0));
    PQclear(r1);
    PQclear(r2);
    r1 = PQexec(c, "SELECT count(*) FROM history WHERE cause = 'resent'");
    assert_string_equal(PQgetvalue(r1, 0, 0), "1");
    PQclear(r1);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_nodes_ha),   cmocka_unit_test(test_params),
        cmocka_unit_test(test_users_basic),       cmocka_unit_test(test_failed_over_rule),
        cmocka_unit_test(test_failed_over_race),  cmocka_unit_test(test_node_removal_rules),
        cmocka_unit_test(test_balanced_at_scale), cmocka_unit_test(test_active_standby),
        cmocka_unit_test(test_mode_none),         cmocka_unit_test(test_report_dedup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
