/*
 * Routing decisions over fake cluster directories: which node serves which request (this
 * node, a redirect, the group's nodes, everyone), what happens without a directory, with
 * unknown names and unusable addresses; and how the cluster status is assembled from the
 * answers (own answer beats the peer's view beats nobody: Unknown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_backend.h"
#include "internal.h"

static void test_node_ops(void **state)
{
    (void)state;
    struct srm_db_config *cfg = fake_directory(3, 20075);
    struct srm__admin_route r;
    /* this node */
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_NODE, "n1", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_LOCAL);
    srm__admin_route_clear(&r);
    /* its peer, and a node of another group: redirected to that node */
    const char *others[] = {"n2", "n5"};
    const char *hosts[] = {"127.0.0.2", "127.0.0.5"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_NODE, others[i], &r), 0);
        assert_int_equal(r.kind, SRM__ADMIN_ROUTE_REDIRECT);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.targets[0].node, others[i]);
        assert_string_equal(r.targets[0].host, hosts[i]);
        assert_int_equal(r.targets[0].port, 20075);
        srm__admin_route_clear(&r);
    }
    /* unknown node */
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_NODE, "n9", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NOTFOUND);
    assert_non_null(strstr(r.msg, "n9"));
    srm__admin_route_clear(&r);
    /* no directory: only this node can be served */
    assert_int_equal(srm__admin_route(NULL, "n1", SRM__ADMIN_ROUTE_NODE, "n1", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_LOCAL);
    assert_int_equal(srm__admin_route(NULL, "n1", SRM__ADMIN_ROUTE_NODE, "n2", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NODIR);
    srm__admin_route_clear(&r);
    /* an address this node cannot use */
    free(cfg->nodes[3].address);
    cfg->nodes[3].address = strdup("[");
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_NODE, "n4", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NODIR);
    srm__admin_route_clear(&r);
    srm_db_config_free(cfg);
}

static void test_addresses(void **state)
{
    (void)state;
    struct srm_db_config *cfg = fake_directory(1, 20075);
    struct srm__admin_target t;
    static const struct {
        const char *addr, *host;
    } cases[] = {
        {"10.1.2.3", "10.1.2.3"}, {"10.1.2.3:22001", "10.1.2.3"}, {"host.example", "host.example"},
        {"fe80::1", "fe80::1"},   {"[fe80::1]", "fe80::1"},       {"[::1]:22001", "::1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        free(cfg->nodes[1].address);
        cfg->nodes[1].address = strdup(cases[i].addr);
        assert_int_equal(srm__admin_target_of(cfg, &cfg->nodes[1], &t), 0);
        assert_string_equal(t.host, cases[i].host);
    }
    /* per-node effective admin port wins over the cluster-wide one */
    cfg->nodes[1].params[SRM_DB_PARAM_ADMIN_RPC_PORT] = 21000;
    assert_int_equal(srm__admin_target_of(cfg, &cfg->nodes[1], &t), 0);
    assert_int_equal(t.port, 21000);
    char ct[300];
    srm__admin_target_connect_to(&t, ct, sizeof(ct));
    assert_string_equal(ct, "n2:21000:[::1]:21000");
    struct srm__admin_buf url = {0};
    srm__admin_target_url(&t, "/v1/status?scope=local", &url);
    srm__admin_buf_terminate(&url);
    assert_string_equal(url.data, "https://n2:21000/v1/status?scope=local");
    srm__admin_buf_free(&url);
    srm_db_config_free(cfg);
}

static void test_group_ops(void **state)
{
    (void)state;
    struct srm_db_config *cfg = fake_directory(2, 20075);
    struct srm__admin_route r;
    /* recover of this node's group: here and the peer */
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_GROUP_RECOVER, "g1", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_FANOUT);
    assert_true(r.include_self);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.targets[0].node, "n2");
    srm__admin_route_clear(&r);
    /* recover of another group: both its nodes, not here */
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_GROUP_RECOVER, "g2", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_FANOUT);
    assert_false(r.include_self);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.targets[0].node, "n3");
    assert_string_equal(r.targets[1].node, "n4");
    srm__admin_route_clear(&r);
    /* HA of this node's group: here (the database); of another: its nodes in order */
    assert_int_equal(srm__admin_route(cfg, "n2", SRM__ADMIN_ROUTE_GROUP_HA, "g1", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_LOCAL);
    srm__admin_route_clear(&r);
    assert_int_equal(srm__admin_route(cfg, "n2", SRM__ADMIN_ROUTE_GROUP_HA, "g2", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_FORWARD);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.targets[0].node, "n3");
    srm__admin_route_clear(&r);
    /* unknown group, no directory */
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_GROUP_RECOVER, "g7", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NOTFOUND);
    srm__admin_route_clear(&r);
    assert_int_equal(srm__admin_route(NULL, "n1", SRM__ADMIN_ROUTE_GROUP_HA, "g1", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NODIR);
    srm__admin_route_clear(&r);
    /* a group of one node, not this one, whose node has no usable address: HA goes to the
     * database here; recover has nobody to ask */
    cfg->groups[1].n_nodes = 1;
    free(cfg->nodes[2].address);
    cfg->nodes[2].address = strdup("[");
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_GROUP_HA, "g2", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_LOCAL);
    srm__admin_route_clear(&r);
    assert_int_equal(srm__admin_route(cfg, "n1", SRM__ADMIN_ROUTE_GROUP_RECOVER, "g2", &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_NOTFOUND);
    srm__admin_route_clear(&r);
    srm_db_config_free(cfg);
}

static void test_cluster(void **state)
{
    (void)state;
    struct srm_db_config *cfg = fake_directory(4, 20075);
    struct srm__admin_route r;
    assert_int_equal(srm__admin_route(cfg, "n3", SRM__ADMIN_ROUTE_CLUSTER, NULL, &r), 0);
    assert_int_equal(r.kind, SRM__ADMIN_ROUTE_FANOUT);
    assert_int_equal(r.n, 7);
    for (size_t i = 0; i < r.n; i++)
        assert_string_not_equal(r.targets[i].node, "n3");
    srm__admin_route_clear(&r);
    assert_int_equal(srm__admin_route(NULL, "n3", SRM__ADMIN_ROUTE_CLUSTER, NULL, &r), 0);
    assert_int_equal(r.n, 0);
    srm__admin_route_clear(&r);
    srm_db_config_free(cfg);
}

/* The local view, then the assembled cluster status with answers merged in. */
static void test_status_assembly(void **state)
{
    (void)state;
    struct srm_db_config *cfg = fake_directory(2, 20075);
    free(cfg->nodes[3].state);
    cfg->nodes[3].state = strdup("Normal"); /* what n4 last reported to the database */
    cfg->nodes[3].reason = strdup("Normal");
    cfg->nodes[3].state_since_us = 1690000000000000;

    struct fake_node n1, n3;
    fake_node_init(&n1, "n1", "n2", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    fake_node_init(&n3, "n3", "n4", SRM_FSM_STATE_BACKUP_MODE, SRM_FSM_REASON_PEER_DOWN,
                   SRM_FSM_STATE_UNKNOWN, SRM_FSM_REASON_UNKNOWN);
    n3.peer_status = SRM_FSM_PEER_LOST;
    n3.peer_age_ms = 61000;
    struct srm_admin_backend b1 = fake_node_backend(&n1), b3 = fake_node_backend(&n3);
    struct srm_admin_view v1 = {0}, v3 = {0};
    assert_int_equal(b1.view(b1.data, &v1), 0);
    assert_int_equal(b3.view(b3.data, &v3), 0);
    struct srm_admin_status *l1, *l3, *cl;
    assert_int_equal(srm__admin_status_local(&v1, cfg, "n1", true, 1700000001000000, &l1), 0);
    assert_int_equal(srm__admin_status_local(&v3, cfg, "n3", true, 1700000001000000, &l3), 0);
    assert_true(l1->local);
    assert_string_equal(l1->groups[0].name, "g1");
    assert_int_equal(l1->groups[0].n_nodes, 2);
    assert_string_equal(l1->groups[0].nodes[0].name, "n1");
    assert_int_equal(l1->groups[0].nodes[0].source, SRM_ADMIN_SOURCE_SELF);
    assert_int_equal(l1->groups[0].nodes[1].source, SRM_ADMIN_SOURCE_PEER);
    assert_int_equal(l1->groups[0].nodes[1].age_ms, 120);
    assert_int_equal(l1->config_age_ms, 1000);
    /* n3 lost n4: n4 is nobody's to see */
    assert_int_equal(l3->groups[0].nodes[1].source, SRM_ADMIN_SOURCE_NONE);
    assert_int_equal(l3->groups[0].nodes[1].state, SRM_FSM_STATE_UNKNOWN);
    assert_non_null(strstr(l3->groups[0].nodes[1].error, "lost its peer"));

    /* n1 assembles: its group from itself; g2 unknown until n3 answers */
    assert_int_equal(srm__admin_status_skeleton(cfg, l1, 0, &cl), 0);
    assert_false(cl->local);
    assert_int_equal(cl->n_groups, 2);
    assert_int_equal(cl->groups[0].nodes[1].source, SRM_ADMIN_SOURCE_PEER);
    assert_int_equal(cl->groups[1].nodes[0].source, SRM_ADMIN_SOURCE_NONE);
    assert_string_equal(cl->groups[1].nodes[1].reported_state, "Normal");
    /* n2 answers itself: replaces the peer view */
    struct srm_admin_status *l2;
    struct fake_node n2;
    fake_node_init(&n2, "n2", "n1", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    n2.users_active = 77;
    struct srm_admin_backend b2 = fake_node_backend(&n2);
    struct srm_admin_view v2 = {0};
    b2.view(b2.data, &v2);
    assert_int_equal(srm__admin_status_local(&v2, cfg, "n2", true, 1700000001000000, &l2), 0);
    srm__admin_status_merge(cl, l2);
    assert_int_equal(cl->groups[0].nodes[1].source, SRM_ADMIN_SOURCE_SELF);
    assert_int_equal(cl->groups[0].nodes[1].users_active, 77);
    /* ... and n1's own line is not replaced by n2's peer view of it */
    assert_int_equal(cl->groups[0].nodes[0].source, SRM_ADMIN_SOURCE_SELF);
    /* n3 answers; n4 does not */
    srm__admin_status_merge(cl, l3);
    srm__admin_status_unreachable(cl, "n4", "no answer from n4 (127.0.0.4:20075)");
    srm__admin_status_unreachable(cl, "n3", "must not overwrite a node that answered");
    assert_int_equal(cl->groups[1].nodes[0].state, SRM_FSM_STATE_BACKUP_MODE);
    assert_int_equal(cl->groups[1].nodes[0].reason, SRM_FSM_REASON_PEER_DOWN);
    assert_null(cl->groups[1].nodes[0].error);
    const struct srm_admin_node_status *n4 = &cl->groups[1].nodes[1];
    assert_int_equal(n4->source, SRM_ADMIN_SOURCE_NONE);
    assert_int_equal(n4->state, SRM_FSM_STATE_UNKNOWN);
    /* both reasons: n3 lost it, and it does not answer */
    assert_string_equal(n4->error, "n3 has lost its peer (no heartbeat for 61000 ms); no answer "
                                   "from n4 (127.0.0.4:20075)");
    assert_string_equal(n4->reported_state, "Normal"); /* the database's word is kept */
    /* it encodes */
    json_t *j = NULL;
    assert_int_equal(srm_admin_status_to_json(cl, &j), 0);
    json_decref(j);
    srm_admin_status_free(l1);
    srm_admin_status_free(l2);
    srm_admin_status_free(l3);
    srm_admin_status_free(cl);
    /* no directory: the local view alone */
    assert_int_equal(srm__admin_status_local(&v1, NULL, "n1", false, 0, &l1), 0);
    assert_int_equal(srm__admin_status_skeleton(NULL, l1, 0, &cl), 0);
    assert_int_equal(cl->n_groups, 1);
    assert_string_equal(cl->config_source, "none");
    srm_admin_status_free(l1);
    srm_admin_status_free(cl);
    fake_node_fini(&n1);
    fake_node_fini(&n2);
    fake_node_fini(&n3);
    srm_db_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_ops),        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_group_ops),       cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_status_assembly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
