/*
 * Unit tests of ha/db/json.c: the snapshot read from JSON with every rule checked, its
 * helpers, and the parsing of notification payloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "sample_config.h"
#include "srm_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char msg[SRM_DB_ERRMSG_MAX];

static int parse(const char *text, struct srm_db_config **ret)
{
    json_error_t jerr;
    /* JSON_ALLOW_NUL: so that the snapshot reader's own NUL check is exercised */
    json_t *root = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!root)
        fail_msg("test JSON does not parse: %s", jerr.text);
    int err = srm__db_config_from_json(root, SRM_DB_SOURCE_DATABASE, ret, msg, sizeof(msg));
    json_decref(root);
    return err;
}

/* Parses SAMPLE_CONFIG with `from` replaced by `to`; returns the status. */
static int parse_edited(const char *from, const char *to)
{
    const char *base = SAMPLE_CONFIG;
    const char *at = strstr(base, from);
    if (!at)
        fail_msg("\"%s\" not in the sample", from);
    char *text = malloc(strlen(base) + strlen(to) + 1);
    sprintf(text, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    struct srm_db_config *cfg = NULL;
    int err = parse(text, &cfg);
    free(text);
    srm_db_config_free(cfg);
    return err;
}

static void test_snapshot(void **state)
{
    (void)state;
    struct srm_db_config *cfg = NULL;

    assert_int_equal(parse(SAMPLE_CONFIG, &cfg), 0);
    assert_int_equal(cfg->schema_version, 2);
    assert_int_equal(cfg->source, SRM_DB_SOURCE_DATABASE);
    assert_int_equal(cfg->assignment_mode, SRM_DB_ASSIGN_ACTIVE_STANDBY);
    assert_int_equal(cfg->params[SRM_DB_PARAM_KEEPALIVE_INTERVAL], 5);
    assert_int_equal(cfg->params[SRM_DB_PARAM_SERVICE_PORT], 22001); /* absent: default */
    assert_int_equal(cfg->n_groups, 2);
    assert_int_equal(cfg->n_nodes, 3);
    assert_int_equal(cfg->users_total, 501);

    const struct srm_db_group *g1 = srm_db_config_group(cfg, "g1");
    assert_non_null(g1);
    assert_string_equal(g1->description, "pair one \xc3\xa9");
    assert_true(g1->ha_enabled);
    assert_int_equal(g1->n_nodes, 2);
    assert_string_equal(cfg->nodes[g1->nodes[0]].name, "n1");
    assert_string_equal(cfg->nodes[g1->nodes[1]].name, "n2");

    const struct srm_db_node *n1 = srm_db_config_node(cfg, "n1");
    const struct srm_db_node *n2 = srm_db_config_node(cfg, "n2");
    const struct srm_db_node *n3 = srm_db_config_node(cfg, "n3");
    assert_true(n1->is_publisher);
    assert_int_equal(n1->users, 500);
    assert_string_equal(n1->state, "Idle");
    assert_ptr_equal(srm_db_config_peer(cfg, n1), n2);
    assert_ptr_equal(srm_db_config_peer(cfg, n2), n1);
    assert_null(srm_db_config_peer(cfg, n3));
    assert_int_equal(n2->params[SRM_DB_PARAM_RELOGIN_LOWER], 30);
    assert_null(n3->state);
    assert_false(n3->assignable);
    assert_int_equal(n3->position, 2);
    const struct srm_db_group *g2 = srm_db_config_group(cfg, "g2");
    assert_int_equal(g2->n_nodes, 1);
    assert_int_equal(n3->group_index, (size_t)(g2 - cfg->groups));
    assert_null(srm_db_config_node(cfg, "n4"));
    assert_null(srm_db_config_group(cfg, "g3"));

    /* n1 is Idle: failed over */
    assert_ptr_equal(srm_db_config_failed_over(cfg), n1);
    assert_int_equal(srm_db_config_age_ms(cfg, 1700000002500000LL), 2500);
    assert_int_equal(srm_db_config_age_ms(cfg, 1), 0);
    srm_db_config_free(cfg);
    srm_db_config_free(NULL);
}

static void test_snapshot_rules(void **state)
{
    (void)state;
    struct {
        const char *from, *to, *why;
    } cases[] = {
        {"\"keepalive_timeout\": 20", "\"keepalive_timeout\": 9", "keepalive_timeout (9 s)"},
        {"\"keepalive_interval\": 5", "\"keepalive_interval\": 500", "out of range"},
        {"\"relogin_lower\": 30", "\"relogin_lower\": 90", "relogin_lower (90 s)"},
        {"\"name\": \"g2\"", "\"name\": \"g 2\"", "groups[1].name"},
        {"\"name\": \"g2\"", "\"name\": \"g1\"", "same id or name"},
        {"\"description\": \"\"", "\"description\": \"<b>\"", "groups[1].description"},
        {"\"group_id\": 2", "\"group_id\": 7", "nodes[2].group_id: no group has this id"},
        {"\"position\": 2, \"is_publisher\": false, \"assignable\": false",
         "\"position\": 3, \"is_publisher\": false, \"assignable\": false", "out of range"},
        {"\"is_publisher\": false, \"assignable\": false",
         "\"is_publisher\": true, \"assignable\": false", "several publisher nodes"},
        {"\"state\": \"Idle\"", "\"state\": \"Sleeping\"", "not a state name"},
        {"\"reason\": \"Admin Request\", \"state_since_us\": 1699999999000000",
         "\"state_since_us\": 1699999999000000", "both present or both absent"},
        {"\"assignment_mode\": \"active-standby\"", "\"assignment_mode\": \"random\"",
         "unknown assignment mode"},
        {"\"users_total\": 501", "\"users_total\": -1", "users_total: value out of range"},
        {"\"users_total\": 501", "\"users_total\": \"501\"", "not an integer"},
        {"\"ha_enabled\": false", "\"ha_enabled\": 0", "not a boolean"},
        {"\"schema_version\": 2, ", "", "schema_version: missing"},
        {"\"address\": \"10.200.0.3\"", "\"address\": \"10.200.0.3\\u0000x\"", "NUL"},
        {"\"users\": 0, \"params\": {}", "\"users\": 0, \"params\": []", "params: not an object"},
        {"\"ha_enabled\": false", "\"ha_enabled\": true", "HA is enabled on group g2"},
        {"\"users_unassigned\": 1", "\"users_unassigned\": 502", "more than users_total"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int err = parse_edited(cases[i].from, cases[i].to);
        if (err != SRM_ECORRUPT || !strstr(msg, cases[i].why))
            fail_msg("case %zu: expected SRM_ECORRUPT \"%s\", got %d \"%s\"", i, cases[i].why, err,
                     msg);
    }

    struct srm_db_config *cfg = NULL;
    assert_int_equal(parse("[1, 2]", &cfg), SRM_ECORRUPT);
    assert_null(cfg);
    /* no node at all: no publisher needed */
    assert_int_equal(parse("{\"schema_version\": 1, \"taken_at_us\": 0, \"assignment_mode\": "
                           "\"balanced\", \"params\": {}, \"groups\": [], \"nodes\": [], "
                           "\"users_total\": 0, \"users_unassigned\": 0}",
                           &cfg),
                     0);
    assert_int_equal(cfg->n_nodes, 0);
    srm_db_config_free(cfg);
}

static void test_round_trip_json(void **state)
{
    (void)state;
    struct srm_db_config *a = NULL, *b = NULL;
    assert_int_equal(parse(SAMPLE_CONFIG, &a), 0);
    json_t *j = srm__db_config_to_json(a);
    assert_non_null(j);
    assert_int_equal(srm__db_config_from_json(j, SRM_DB_SOURCE_CACHE, &b, msg, sizeof(msg)), 0);
    json_decref(j);
    assert_int_equal(b->source, SRM_DB_SOURCE_CACHE);
    assert_int_equal(b->n_nodes, a->n_nodes);
    for (size_t i = 0; i < a->n_nodes; i++) {
        assert_string_equal(a->nodes[i].name, b->nodes[i].name);
        assert_memory_equal(a->nodes[i].params, b->nodes[i].params, sizeof(a->nodes[i].params));
    }
    srm_db_config_free(a);
    srm_db_config_free(b);
}

static void test_change_payloads(void **state)
{
    (void)state;
    struct srm_db_change c;
    const char *p = "{\"op\": \"update\", \"node\": 3, \"table\": \"node_state\"}";

    assert_int_equal(srm_db_change_parse(p, strlen(p), &c), 0);
    assert_int_equal(c.table, SRM_DB_TABLE_NODE_STATE);
    assert_int_equal(c.op, SRM_DB_CHANGE_UPDATE);
    assert_int_equal(c.node_id, 3);
    assert_int_equal(c.group_id, 0);

    p = "{\"id\": 12, \"op\": \"insert\", \"node\": 2, \"group\": 1, \"table\": \"history\"}";
    assert_int_equal(srm_db_change_parse(p, strlen(p), &c), 0);
    assert_int_equal(c.table, SRM_DB_TABLE_HISTORY);
    assert_int_equal(c.id, 12);
    assert_int_equal(c.group_id, 1);

    p = "{\"op\": \"delete\", \"table\": \"users\"}"; /* unassigned users */
    assert_int_equal(srm_db_change_parse(p, strlen(p), &c), 0);
    assert_int_equal(c.table, SRM_DB_TABLE_USERS);
    assert_int_equal(c.node_id, 0);

    p = "{\"op\": \"truncate\", \"table\": \"widgets\"}"; /* newer server: reload all */
    assert_int_equal(srm_db_change_parse(p, strlen(p), &c), 0);
    assert_int_equal(c.table, SRM_DB_TABLE_UNKNOWN);
    assert_int_equal(c.op, SRM_DB_CHANGE_UNKNOWN);

    const char *bad[] = {"",
                         "nodes",
                         "[\"nodes\"]",
                         "{\"table\": 3}",
                         "{\"op\": \"update\"}",
                         "{\"table\": \"nodes\", \"node\": \"3\"}",
                         "{\"table\": \"nodes\", \"node\": -3}",
                         "{\"table\": \"nodes\", \"table\": \"users\"}",
                         "{\"table\": \"nodes\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(srm_db_change_parse(bad[i], strlen(bad[i]), &c), SRM_ECORRUPT);
    assert_int_equal(srm_db_change_parse(NULL, 0, &c), SRM_ECORRUPT);
    for (int t = 0; t < SRM_DB_TABLE_MAX; t++)
        assert_non_null(srm_db_table_name(t));
    assert_null(srm_db_table_name(SRM_DB_TABLE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_snapshot_rules),
        cmocka_unit_test(test_round_trip_json),
        cmocka_unit_test(test_change_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
