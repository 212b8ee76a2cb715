/*
 * srmctl end to end: two admin servers on loopback stand for nodes n1 (group g1, at
 * 127.0.0.1) and n3 (group g2, at 127.0.0.3), each with a fake backend (a real state machine
 * placed in a state) and a real connection to a throwaway PostgreSQL (scripts/pg-tmp) that
 * holds the configuration; n2 and n4 have no server (unreachable). srmctl, the built binary,
 * runs as a child process against n1 for every verb: status (table and --json), operations
 * accepted and refused (exit code 1 and the state machine's reason on stderr), operations on
 * the other group (redirect followed, recover fanned out to both nodes), HA forwarded to the
 * other group, parameters (ranges), users, events and --follow (a new event arrives while it
 * waits), counters, the seed's `utils ha` verbs, and refusals of bad client certificates
 * (expired, another CA, none) with nothing executed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fake_backend.h"
#include "pg_fixture.h"
#include "srm_error.h"

static struct pg_fixture pg;
static char certs[64], other[64];
static uv_loop_t loop;
static uv_thread_t thread;
static uv_async_t stopper;
static uint16_t port;
static char srmctl[512], node_env[64];
static struct srm_db_config *dir;

struct node {
    struct fake_node fake;
    struct srm_admin_server *server;
    struct srm_db *db;
} n1, n3;

/* ---- the two nodes on one loop, in a thread ---- */

static void on_change(struct srm_db *db, const struct srm_db_change *ch, void *data)
{
    struct node *n = data;
    (void)db;
    if (ch->table == SRM_DB_TABLE_HISTORY || ch->table == SRM_DB_TABLE_UNKNOWN)
        srm_admin_server_events_changed(n->server);
}

static int closing;

static void on_closed(void *data)
{
    (void)data;
    if (--closing == 0)
        uv_close((uv_handle_t *)&stopper, NULL);
}

static void db_closed(struct srm_db *db, void *data)
{
    (void)db;
    on_closed(data);
}

static void on_stop(uv_async_t *a)
{
    (void)a;
    closing = 4;
    srm_admin_server_close(n1.server, on_closed, NULL);
    srm_admin_server_close(n3.server, on_closed, NULL);
    srm_db_close(n1.db, db_closed, NULL);
    srm_db_close(n3.db, db_closed, NULL);
}

static void run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
}

static int start_node(struct node *n, const char *name, const char *peer, const char *host,
                      uint16_t want_port)
{
    char ca[128], crt[128], key[128];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/%s.crt", certs, name);
    snprintf(key, sizeof(key), "%s/%s.key", certs, name);
    struct srm_db_options dbo = {.conninfo = pg.conninfo, .change_cb = on_change, .data = n};
    if (srm_db_new(&loop, &dbo, &n->db) < 0 || srm_db_start(n->db) < 0)
        return -1;
    (void)peer;
    struct srm_admin_server_options o = {
        .node = name,
        .listen_host = host,
        .listen_port = want_port,
        .ca_file = ca,
        .cert_file = crt,
        .key_file = key,
        .db = n->db,
        .backend = fake_node_backend(&n->fake),
        .metrics = n->fake.metrics,
        .peer_timeout_ms = 2000,
        /* long-polls wake on the database's notifications only: shows they are used */
        .events_poll_ms = 60000,
    };
    if (srm_admin_server_new(&loop, &o, &n->server) < 0 || srm_admin_server_start(n->server) < 0)
        return -1;
    return srm_admin_server_port(n->server);
}

static int sql_setup(void)
{
    struct srm_db_sync *db;
    char e[512];
    int64_t id;
    if (srm_db_sync_open(pg.conninfo, &db, e, sizeof(e)) < 0)
        return -1;
    int rc = srm_db_sync_migrate(db, NULL);
    char p[16];
    snprintf(p, sizeof(p), "%u", port);
    rc = rc < 0 ? rc : srm_db_sync_group_create(db, "g1", "first pair", &id);
    rc = rc < 0 ? rc : srm_db_sync_group_create(db, "g2", "second pair", &id);
    const char *nodes[4][3] = {{"n1", "127.0.0.1", "g1"},
                               {"n2", "127.0.0.2", "g1"},
                               {"n3", "127.0.0.3", "g2"},
                               {"n4", "127.0.0.4", "g2"}};
    for (int i = 0; i < 4 && rc >= 0; i++)
        rc = srm_db_sync_node_add(db, nodes[i][0], nodes[i][1], nodes[i][2], &id, NULL);
    rc = rc < 0 ? rc : srm_db_sync_group_set_ha(db, "g1", true);
    rc = rc < 0 ? rc : srm_db_sync_group_set_ha(db, "g2", true);
    rc = rc < 0 ? rc : srm_db_sync_param_set(db, "admin_rpc_port", NULL, p);
    rc = rc < 0 ? rc : srm_db_sync_config_load(db, &dir);
    if (rc < 0)
        fprintf(stderr, "setup: %s\n", srm_db_sync_errmsg(db));
    srm_db_sync_close(db);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    const char *bin = getenv("SRM_BINARY_DIR");
    snprintf(srmctl, sizeof(srmctl), "%s/ha/srmctl/srmctl", bin ? bin : ".");
    if (access(srmctl, X_OK) != 0) {
        fprintf(stderr, "setup: %s not built\n", srmctl);
        return -1;
    }
    certs[0] = other[0] = '\0';
    if (fake_make_certs(certs, "--expired old", "n1 n2 n3 n4 admin") < 0 ||
        fake_make_certs(other, NULL, "admin") < 0)
        return -1;
    if (pg_fixture_start(&pg) < 0)
        return -1;
    fake_node_init(&n1.fake, "n1", "n2", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    /* n3 took over n4's users: n4 is down (row 16) */
    fake_node_init(&n3.fake, "n3", "n4", SRM_FSM_STATE_BACKUP_MODE, SRM_FSM_REASON_PEER_DOWN,
                   SRM_FSM_STATE_UNKNOWN, SRM_FSM_REASON_UNKNOWN);
    n3.fake.peer_status = SRM_FSM_PEER_LOST;
    n3.fake.fsm.peer_status = SRM_FSM_PEER_LOST;
    n3.fake.peer_age_ms = 75000;
    n3.fake.users_active = 5000;
    uv_loop_init(&loop);
    /* n1 on an ephemeral port; n3 on the same port at its own address (one admin port for
     * the cluster, as in production) */
    for (int attempt = 0; attempt < 20; attempt++) {
        int p1 = start_node(&n1, "n1", "n2", "127.0.0.1", 0);
        if (p1 < 0)
            return -1;
        int p3 = start_node(&n3, "n3", "n4", "127.0.0.3", (uint16_t)p1);
        if (p3 == p1) {
            port = (uint16_t)p1;
            break;
        }
        /* taken at 127.0.0.3: try another port */
        srm_admin_server_close(n1.server, NULL, NULL);
        srm_admin_server_close(n3.server, NULL, NULL);
        srm_db_close(n1.db, NULL, NULL);
        srm_db_close(n3.db, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (!port || sql_setup() < 0)
        return -1;
    n1.fake.config = dir;
    n3.fake.config = dir;
    uv_async_init(&loop, &stopper, on_stop);
    snprintf(node_env, sizeof(node_env), "127.0.0.1:%u", port);
    setenv("SRMCTL_NODE", node_env, 1);
    setenv("SRMCTL_CERT_DIR", certs, 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return uv_thread_create(&thread, run_loop, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stopper);
    uv_thread_join(&thread);
    uv_loop_close(&loop);
    srm_db_config_free(dir);
    fake_node_fini(&n1.fake);
    fake_node_fini(&n3.fake);
    pg_fixture_stop(&pg);
    fake_rmdir(certs);
    fake_rmdir(other);
    curl_global_cleanup();
    return 0;
}

/* ---- running srmctl ---- */

struct run {
    int status;
    char out[1 << 16], err[8192];
};

static pid_t spawn(char *const argv[], int *out_fd, int *err_fd)
{
    int o[2], e[2];
    if (pipe(o) < 0 || pipe(e) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        close(o[1]);
        close(e[1]);
        execv(srmctl, argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    *out_fd = o[0];
    *err_fd = e[0];
    return pid;
}

/* Runs srmctl with args (NULL-terminated), bounded to 30 s. */
static void run_argv(struct run *r, const char *const *args)
{
    char *argv[40];
    int n = 0;
    argv[n++] = "srmctl";
    for (; args[n - 1] && n < 39; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    memset(r, 0, sizeof(*r));
    int ofd, efd;
    pid_t pid = spawn(argv, &ofd, &efd);
    assert_true(pid > 0);
    size_t olen = 0, elen = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool oopen = true, eopen = true;
    while (oopen || eopen) {
        struct pollfd p[2] = {{oopen ? ofd : -1, POLLIN, 0}, {eopen ? efd : -1, POLLIN, 0}};
        poll(p, 2, 200);
        if (p[0].revents) {
            ssize_t k = read(ofd, r->out + olen, sizeof(r->out) - 1 - olen);
            if (k <= 0)
                oopen = false;
            else
                olen += (size_t)k;
        }
        if (p[1].revents) {
            ssize_t k = read(efd, r->err + elen, sizeof(r->err) - 1 - elen);
            if (k <= 0)
                eopen = false;
            else
                elen += (size_t)k;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30) {
            kill(pid, SIGKILL);
            break;
        }
    }
    close(ofd);
    close(efd);
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(r, ...)                                                                                \
    do {                                                                                           \
        const char *const a_[] = {__VA_ARGS__, NULL};                                              \
        run_argv((r), a_);                                                                         \
    } while (0)

static void expect(const struct run *r, int status, const char *out_word, const char *err_word)
{
    if (r->status != status || (out_word && !strstr(r->out, out_word)) ||
        (err_word && !strstr(r->err, err_word)))
        fail_msg(
            "exit %d (wanted %d)\n--- stdout (wanted \"%s\"):\n%s--- stderr (wanted \"%s\"):\n%s",
            r->status, status, out_word ? out_word : "", r->out, err_word ? err_word : "", r->err);
}

static json_t *out_json(const struct run *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    if (!j)
        fail_msg("stdout is not JSON: %s\n%s", e.text, r->out);
    return j;
}

static struct srm_db_sync *sync_db(void)
{
    struct srm_db_sync *db;
    char e[256];
    assert_int_equal(srm_db_sync_open(pg.conninfo, &db, e, sizeof(e)), 0);
    return db;
}

/* ---- tests ---- */

static void test_status(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "status");
    expect(&r, 0, "Running in Backup Mode", NULL);
    printf("%s", r.out);
    assert_non_null(strstr(r.out, "GROUP"));
    assert_non_null(strstr(r.out, "Peer Down"));
    assert_non_null(strstr(r.out, "xmpp:up"));
    assert_non_null(strstr(r.out, "note: n4: nobody sees it, state Unknown"));
    assert_non_null(strstr(r.out, "note: n2: shown as its peer sees it"));

    RUN(&r, "status", "--json");
    expect(&r, 0, NULL, NULL);
    json_t *j = out_json(&r);
    struct srm_admin_status *st = NULL;
    char e[256];
    assert_int_equal(srm_admin_status_from_json(j, &st, e, sizeof(e)), 0);
    assert_int_equal(st->n_groups, 2);
    /* spelled as SPEC §3 */
    json_t *g2n = json_object_get(json_array_get(json_object_get(j, "groups"), 1), "nodes");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g2n, 0), "state")),
                        "Running in Backup Mode");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g2n, 0), "reason")),
                        "Peer Down");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g2n, 1), "state")),
                        "Unknown");
    const struct srm_admin_group_status *g1 = &st->groups[0], *g2 = &st->groups[1];
    assert_string_equal(g1->nodes[0].name, "n1");
    assert_int_equal(g1->nodes[0].source, SRM_ADMIN_SOURCE_SELF);
    assert_int_equal(g1->nodes[1].source, SRM_ADMIN_SOURCE_PEER); /* n2: n1 sees it */
    assert_int_equal(g2->nodes[0].source, SRM_ADMIN_SOURCE_SELF); /* n3 answered n1 */
    assert_int_equal(g2->nodes[0].users_active, 5000);
    assert_int_equal(g2->nodes[1].source, SRM_ADMIN_SOURCE_NONE); /* n4: nobody */
    assert_non_null(g2->nodes[1].error);
    srm_admin_status_free(st);
    json_decref(j);

    /* the seed's verbs, and asking n3 instead: the same cluster */
    RUN(&r, "utils", "ha", "status");
    expect(&r, 0, "Running in Backup Mode", NULL);
    char n3addr[64];
    snprintf(n3addr, sizeof(n3addr), "127.0.0.3:%u", port);
    RUN(&r, "--node", n3addr, "status");
    expect(&r, 0, "Running in Backup Mode", NULL);
    assert_non_null(strstr(r.out, "n1"));
}

static void test_operations(void **state)
{
    (void)state;
    struct run r;
    const char *why;
    /* fallback of n3 (asked of n1, served by n3 after a redirect): refused by n3's machine */
    assert_int_equal(srm_fsm_check(&n3.fake.fsm, SRM_FSM_EVENT_ADMIN_FALLBACK, &why), SRM_EREFUSED);
    RUN(&r, "fallback", "n3");
    expect(&r, 1, NULL, why);
    assert_non_null(strstr(r.err, "fallback of n3 refused by n3"));
    assert_int_equal(n3.fake.ops[SRM_ADMIN_OP_FALLBACK], 1);
    assert_string_equal(n3.fake.last_client, "admin"); /* the admin's own certificate */
    assert_int_equal(n1.fake.ops[SRM_ADMIN_OP_FALLBACK], 0);
    RUN(&r, "utils", "ha", "failover", "n3");
    assert_int_equal(srm_fsm_check(&n3.fake.fsm, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), SRM_EREFUSED);
    expect(&r, 1, NULL, why);

    /* failover of n1: accepted */
    RUN(&r, "failover", "n1");
    expect(&r, 0, "failover of n1 accepted by n1", NULL);
    assert_int_equal(n1.fake.fsm.state, SRM_FSM_STATE_FAILING_OVER);
    RUN(&r, "failover", "n1");
    assert_int_equal(srm_fsm_check(&n1.fake.fsm, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), SRM_EREFUSED);
    expect(&r, 1, NULL, why);

    /* recover of g2 from n1: both of its nodes are asked; n3 is not failed, so it refuses */
    RUN(&r, "recover", "g2");
    assert_int_equal(srm_fsm_check(&n3.fake.fsm, SRM_FSM_EVENT_ADMIN_RECOVER, &why), SRM_EREFUSED);
    expect(&r, 1, NULL, why);
    assert_non_null(strstr(r.err, "recover of g2 failed by n4")); /* unreachable */
    assert_int_equal(n3.fake.ops[SRM_ADMIN_OP_RECOVER], 1);
    assert_string_equal(n3.fake.last_client, "admin via n1"); /* n1 asked, for the admin */
    assert_string_equal(n3.fake.last_group, "");
    /* n3 in failed mode: the recover is accepted (n4 follows when it comes back) */
    n3.fake.fsm.state = SRM_FSM_STATE_FAILED_MODE;
    n3.fake.fsm.reason = SRM_FSM_REASON_UNKNOWN;
    RUN(&r, "recover", "g2");
    expect(&r, 0, "recover of g2 accepted by n3", NULL);
    assert_int_equal(n3.fake.accepted[SRM_ADMIN_OP_RECOVER], 1);
    /* recover of g1 from n1: here and n2 (unreachable); n1 is failing over: refused */
    RUN(&r, "utils", "ha", "recover", "g1");
    expect(&r, 1, NULL, "recover of g1 refused by n1");

    RUN(&r, "failover", "n9");
    expect(&r, 2, NULL, "no node \"n9\"");
    RUN(&r, "recover", "g9");
    expect(&r, 2, NULL, "no group \"g9\"");
    RUN(&r, "failover", "bad name");
    expect(&r, 2, NULL, "");
    RUN(&r, "failover");
    expect(&r, 2, NULL, "failover NODE");
    RUN(&r, "explode");
    expect(&r, 2, NULL, "unknown verb");
}

static void test_ha(void **state)
{
    (void)state;
    struct run r;
    struct srm_db_sync *db = sync_db();
    struct srm_db_config *cfg;
    RUN(&r, "ha", "disable", "g2"); /* n1 forwards to n3, which writes it */
    expect(&r, 0, "HA disabled on group g2", NULL);
    assert_int_equal(srm_db_sync_config_load(db, &cfg), 0);
    assert_false(srm_db_config_group(cfg, "g2")->ha_enabled);
    assert_true(srm_db_config_group(cfg, "g1")->ha_enabled);
    srm_db_config_free(cfg);
    RUN(&r, "--json", "ha", "enable", "g2");
    expect(&r, 0, "\"via\": \"n3\"", NULL);
    RUN(&r, "ha", "disable", "g1");
    expect(&r, 0, NULL, NULL);
    RUN(&r, "ha", "enable", "g1");
    expect(&r, 0, NULL, NULL);
    assert_int_equal(srm_db_sync_config_load(db, &cfg), 0);
    assert_true(srm_db_config_group(cfg, "g2")->ha_enabled);
    assert_true(srm_db_config_group(cfg, "g1")->ha_enabled);
    srm_db_config_free(cfg);
    RUN(&r, "ha", "maybe", "g1");
    expect(&r, 2, NULL, "enable or disable");
    srm_db_sync_close(db);
}

static void test_params(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "param", "get");
    expect(&r, 0, "keepalive_interval", NULL);
    assert_non_null(strstr(r.out, "admin_rpc_port"));
    RUN(&r, "param", "set", "keepalive_interval", "10");
    expect(&r, 0, "keepalive_interval", NULL);
    RUN(&r, "param", "get", "keepalive_interval");
    expect(&r, 0, "10s", NULL);
    assert_non_null(strstr(r.out, "cluster"));
    /* out of range: the range, exit 2 (checked by srmctl first, then by the server) */
    RUN(&r, "param", "set", "keepalive_interval", "0");
    expect(&r, 2, NULL, "allowed 1 to 300");
    /* a rule between parameters, checked by the database */
    RUN(&r, "param", "set", "keepalive_timeout", "5");
    expect(&r, 2, NULL, "keepalive_timeout");
    /* per node */
    RUN(&r, "param", "set", "relogin_lower", "30", "--node", "n2");
    expect(&r, 0, "relogin_lower", NULL);
    RUN(&r, "--json", "param", "get", "relogin_lower", "--node", "n2");
    expect(&r, 0, NULL, NULL);
    json_t *j = out_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "value")), 30);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "node");
    json_decref(j);
    RUN(&r, "param", "set", "keepalive_interval", "10", "--node", "n2");
    expect(&r, 2, NULL, "cluster-wide");
    RUN(&r, "param", "get", "nonsense");
    expect(&r, 2, NULL, "nonsense");
    RUN(&r, "param", "reset", "keepalive_interval");
    expect(&r, 0, "default", NULL);
    RUN(&r, "param", "set", "automatic_fallback", "maybe");
    expect(&r, 2, NULL, "automatic_fallback");
}

static void test_users(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "users", "add", "u1", "u2", "u3", "u4", "u5", "u6");
    expect(&r, 0, "add: 6 users", NULL);
    RUN(&r, "users", "list");
    expect(&r, 0, "u6", NULL);
    int lines = 0;
    for (char *p = r.out; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 6);
    RUN(&r, "users", "list", "--limit", "2");
    expect(&r, 0, "u2", "more users follow: --after u2");
    RUN(&r, "users", "list", "--limit", "2", "--all", "--json");
    expect(&r, 0, NULL, NULL);
    json_t *j = out_json(&r);
    assert_int_equal(json_array_size(j), 6);
    json_decref(j);
    RUN(&r, "users", "assign", "n3", "u1");
    expect(&r, 0, "assign: 1 users changed home node", NULL);
    RUN(&r, "users", "list", "--node", "n3");
    expect(&r, 0, "u1\tn3", NULL);
    RUN(&r, "users", "rebalance");
    expect(&r, 0, "rebalanced", NULL);
    RUN(&r, "users", "remove", "u1", "u2");
    expect(&r, 0, "remove: 2 users", NULL);
    RUN(&r, "users", "add", "bad name");
    expect(&r, 2, NULL, "");
    RUN(&r, "users", "add", "u3");
    expect(&r, 1, NULL, "u3");
    RUN(&r, "users", "assign", "n9", "u3");
    expect(&r, 2, NULL, "n9");
    /* while a node is failed over, adding users is refused (SPEC §2) */
    struct srm_db_sync *db = sync_db();
    struct srm_db_transition t = {.node = "n2",
                                  .new_state = "Idle",
                                  .new_reason = "Admin Request",
                                  .cause = "test",
                                  .at_us = 1700000000000000};
    assert_int_equal(srm_db_sync_node_state_report(db, &t, NULL), 0);
    RUN(&r, "users", "add", "u9");
    expect(&r, 1, NULL, "failed over");
    t = (struct srm_db_transition){.node = "n2",
                                   .old_state = "Idle",
                                   .old_reason = "Admin Request",
                                   .new_state = "Normal",
                                   .new_reason = "Normal",
                                   .cause = "test",
                                   .at_us = 1700000001000000};
    assert_int_equal(srm_db_sync_node_state_report(db, &t, NULL), 0);
    srm_db_sync_close(db);
    RUN(&r, "users", "add", "u9");
    expect(&r, 0, "add: 1 users", NULL);
}

static long long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000LL + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_events(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "events", "--limit", "5");
    expect(&r, 0, "n2 (g1): Idle / Admin Request -> Normal / Normal", NULL);
    RUN(&r, "events", "--json", "--since", "1");
    expect(&r, 0, "\"new_state\":\"Normal\"", NULL);
    RUN(&r, "events", "--limit", "0");
    expect(&r, 2, NULL, "--limit");

    /* --follow: a new transition reaches it while it waits */
    char *argv[] = {"srmctl", "events", "--follow", "--limit", "1", NULL};
    int ofd, efd;
    pid_t pid = spawn(argv, &ofd, &efd);
    assert_true(pid > 0);
    char buf[8192];
    size_t len = 0;
    struct timespec t0;
    /* first the last event, then the new one */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!memchr(buf, '\n', len) && ms_since(&t0) < 20000) {
        struct pollfd p = {ofd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            ssize_t k = read(ofd, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
        }
    }
    assert_non_null(memchr(buf, '\n', len));
    len = 0;
    usleep(300 * 1000); /* let it park its long-poll (the event is found either way) */
    struct srm_db_sync *db = sync_db();
    struct srm_db_transition t = {.node = "n4",
                                  .new_state = "Initializing",
                                  .new_reason = "Initialization",
                                  .cause = "follow-me",
                                  .at_us = 1700000002000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(srm_db_sync_node_state_report(db, &t, NULL), 0);
    srm_db_sync_close(db);
    while (!strstr(buf, "follow-me") && ms_since(&t0) < 10000) {
        struct pollfd p = {ofd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            ssize_t k = read(ofd, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            buf[len] = '\0';
        }
    }
    long long ms = ms_since(&t0);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    close(ofd);
    close(efd);
    if (!strstr(buf, "follow-me"))
        fail_msg("events --follow did not print the new event: %s", buf);
    assert_non_null(strstr(buf, "n4 (g2): (start) / - -> Initializing / Initialization"));
    printf("events --follow: new event printed %lld ms after it was written\n", ms);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_counters(void **state)
{
    (void)state;
    struct run r;
    RUN(&r, "counters");
    expect(&r, 0, "srm_node_state{node=\"n1\",state=\"Failing Over\"} 1", NULL);
    RUN(&r, "counters", "--json");
    expect(&r, 0, NULL, NULL);
    json_t *j = out_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "node")), "n1");
    json_decref(j);
    RUN(&r, "counters", "--node", "n3");
    expect(&r, 0, "srm_users_active{node=\"n3\"} 5000", NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    struct run r;
    unsigned before = n1.fake.ops[SRM_ADMIN_OP_RECOVER];
    char ca[128], crt[128], key[128];
    /* an expired client certificate */
    RUN(&r, "--cert-name", "old", "recover", "g1");
    expect(&r, 3, NULL, "refused your client certificate");
    assert_non_null(strstr(r.err, "old.crt"));
    /* a client certificate of another CA */
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/admin.crt", other);
    snprintf(key, sizeof(key), "%s/admin.key", other);
    RUN(&r, "--ca", ca, "--cert", crt, "--key", key, "recover", "g1");
    expect(&r, 3, NULL, "refused your client certificate");
    /* trusting another CA: the node's certificate is not trusted */
    snprintf(ca, sizeof(ca), "%s/ca.crt", other);
    RUN(&r, "--ca", ca, "recover", "g1");
    expect(&r, 3, NULL, "is not trusted");
    /* no client certificate at all (srmctl always sends one: ask with libcurl) */
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/nodes/n1/recover", port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_not_equal(curl_easy_perform(c), CURLE_OK);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    assert_int_equal(http, 0);
    curl_easy_cleanup(c);
    fclose(devnull);
    assert_int_equal(n1.fake.ops[SRM_ADMIN_OP_RECOVER], before);
    /* nothing listening */
    RUN(&r, "--node", "127.0.0.1:1", "status");
    expect(&r, 3, NULL, "cannot reach node 127.0.0.1:1");
    RUN(&r, "--cert-dir", "/nonexistent", "status");
    expect(&r, 2, NULL, "cannot read the CA file");
    RUN(&r, "--help");
    expect(&r, 0, "Exit codes:", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),   cmocka_unit_test(test_operations),
        cmocka_unit_test(test_ha),       cmocka_unit_test(test_params),
        cmocka_unit_test(test_users),    cmocka_unit_test(test_events),
        cmocka_unit_test(test_counters), cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
