/*
 * The JSON codec: every request and response type encoded and decoded back, states and
 * reasons spelled exactly as in SPEC §3, and every malformed input (wrong types, missing
 * fields, bounds, unknown states, bad user names) refused with a message naming the field.
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

#include "internal.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("test JSON does not parse: %s: %s", e.text, s);
    return j;
}

static struct srm_admin_status *sample_status(void)
{
    struct srm_admin_status *st = calloc(1, sizeof(*st));
    st->answered_by = strdup("n1");
    st->db_up = true;
    st->config_source = strdup("database");
    st->config_age_ms = 42;
    st->assignment_mode = strdup("balanced");
    st->users_total = 5000;
    st->users_unassigned = 0;
    st->n_groups = 1;
    st->groups = calloc(1, sizeof(*st->groups));
    st->groups[0].name = strdup("g1");
    st->groups[0].ha_enabled = true;
    st->groups[0].n_nodes = 2;
    struct srm_admin_node_status *a = &st->groups[0].nodes[0], *b = &st->groups[0].nodes[1];
    a->name = strdup("n1");
    a->address = strdup("10.0.0.1");
    a->source = SRM_ADMIN_SOURCE_SELF;
    a->state = SRM_FSM_STATE_FAILED_OVER_CS_DOWN;
    a->reason = SRM_FSM_REASON_CS_DOWN;
    a->since_us = 1700000000123456;
    a->users_assigned = 2500;
    a->users_active = 0;
    a->repl_known = true;
    a->lag_entries = 7;
    a->lag_bytes = 1024;
    a->lag_ms = 3;
    a->n_services = 2;
    a->services = calloc(2, sizeof(*a->services));
    a->services[0] = (struct srm_admin_service){strdup("xmpp"), true, false};
    a->services[1] = (struct srm_admin_service){strdup("sip"), false, true};
    a->reported_state = strdup("Normal");
    a->reported_reason = strdup("Normal");
    a->reported_since_us = 1699999999000000;
    b->name = strdup("n2");
    b->source = SRM_ADMIN_SOURCE_NONE;
    b->state = SRM_FSM_STATE_UNKNOWN;
    b->reason = SRM_FSM_REASON_UNKNOWN;
    b->error = strdup("no answer from n2");
    b->users_assigned = -1;
    b->users_active = -1;
    return st;
}

static void test_status_round_trip(void **state)
{
    (void)state;
    struct srm_admin_status *st = sample_status(), *back = NULL;
    json_t *j = NULL;
    assert_int_equal(srm_admin_status_to_json(st, &j), 0);
    /* states and reasons as SPEC §3 spells them */
    json_t *n1 = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "groups"), 0), "nodes"), 0);
    assert_string_equal(json_string_value(json_object_get(n1, "state")),
                        "Failed Over with Critical Services not Running");
    assert_string_equal(json_string_value(json_object_get(n1, "reason")), "Critical Service Down");
    char e[256] = "";
    assert_int_equal(srm_admin_status_from_json(j, &back, e, sizeof(e)), 0);
    assert_string_equal(back->answered_by, "n1");
    assert_true(back->db_up);
    assert_int_equal(back->config_age_ms, 42);
    assert_int_equal(back->users_total, 5000);
    assert_int_equal(back->n_groups, 1);
    const struct srm_admin_node_status *a = &back->groups[0].nodes[0],
                                       *b = &back->groups[0].nodes[1];
    assert_int_equal(a->state, SRM_FSM_STATE_FAILED_OVER_CS_DOWN);
    assert_int_equal(a->reason, SRM_FSM_REASON_CS_DOWN);
    assert_int_equal(a->since_us, 1700000000123456);
    assert_int_equal(a->users_active, 0);
    assert_true(a->repl_known);
    assert_int_equal(a->lag_bytes, 1024);
    assert_int_equal(a->n_services, 2);
    assert_string_equal(a->services[0].name, "xmpp");
    assert_false(a->services[0].up);
    assert_false(a->services[1].critical);
    assert_string_equal(a->reported_state, "Normal");
    assert_int_equal(b->source, SRM_ADMIN_SOURCE_NONE);
    assert_int_equal(b->users_assigned, -1);
    assert_false(b->repl_known);
    assert_string_equal(b->error, "no answer from n2");
    /* encoding the decoded status gives the same JSON */
    json_t *j2 = NULL;
    assert_int_equal(srm_admin_status_to_json(back, &j2), 0);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    srm_admin_status_free(st);
    srm_admin_status_free(back);
}

/* Each case: a mutation of a valid status that must be refused, and a word of the message. */
static void test_status_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *word;
    } cases[] = {
        {"[]", "object"},
        {"{\"scope\":\"local\"}", "groups"},
        {"{\"scope\":\"galaxy\",\"groups\":[]}", "scope"},
        {"{\"scope\":\"local\",\"groups\":{}}", "groups"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":1,\"nodes\":[]}]}", "name"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{},{},{}]}]}", "at most 2"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"Fine\",\"reason\":\"Normal\"}]}]}",
         "state"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"NORMAL\",\"reason\":\"Normal\"}]}]}",
         "state"}, /* enum names are not the display strings */
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"Normal\",\"reason\":\"Normal\",\"users_active\":\"5\"}]}]}",
         "users_active"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"Normal\",\"reason\":\"Normal\",\"users_active\":-2}]}]}",
         "users_active"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"mars\",\"state\":\"Normal\",\"reason\":\"Normal\"}]}]}",
         "source"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"Normal\",\"reason\":\"Normal\",\"replication\":{\"lag_entries\":1}}]"
         "}"
         "]}",
         "lag_bytes"},
        {"{\"scope\":\"local\",\"groups\":[{\"name\":\"g\",\"nodes\":[{\"name\":\"n\",\"source\":"
         "\"self\",\"state\":\"Normal\",\"reason\":\"Normal\",\"critical_services\":[{\"up\":true}]"
         "}]}]}",
         "name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = parse(cases[i].json);
        struct srm_admin_status *st = NULL;
        char e[256] = "";
        int rc = srm_admin_status_from_json(j, &st, e, sizeof(e));
        if (rc != -EINVAL || !strstr(e, cases[i].word))
            fail_msg("case %zu: rc %d, message \"%s\" (wanted \"%s\")", i, rc, e, cases[i].word);
        assert_null(st);
        json_decref(j);
    }
    /* a name longer than its bound */
    char big[400];
    memset(big, 'x', 300);
    big[300] = '\0';
    char js[600];
    snprintf(js, sizeof(js), "{\"scope\":\"local\",\"groups\":[{\"name\":\"%s\",\"nodes\":[]}]}",
             big);
    json_t *j = parse(js);
    struct srm_admin_status *st = NULL;
    char e[256];
    assert_int_equal(srm_admin_status_from_json(j, &st, e, sizeof(e)), -EINVAL);
    assert_non_null(strstr(e, "longer than"));
    json_decref(j);
}

static void test_op_answer(void **state)
{
    (void)state;
    struct srm_admin_op_answer a, b;
    memset(&a, 0, sizeof(a));
    a.op = SRM_ADMIN_OP_RECOVER;
    a.group = true;
    strcpy(a.target, "g1");
    a.accepted = false;
    a.n_results = 2;
    strcpy(a.results[0].node, "n1");
    a.results[0].accepted = true;
    strcpy(a.results[0].why, "manual recover");
    strcpy(a.results[1].node, "n2");
    a.results[1].status = SRM_EREFUSED;
    strcpy(a.results[1].why, "not allowed in this state");
    json_t *j = NULL;
    assert_int_equal(srm_admin_op_answer_to_json(&a, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "group")), "g1");
    char e[256];
    assert_int_equal(srm_admin_op_answer_from_json(j, &b, e, sizeof(e)), 0);
    assert_int_equal(b.op, SRM_ADMIN_OP_RECOVER);
    assert_true(b.group);
    assert_string_equal(b.target, "g1");
    assert_int_equal(b.n_results, 2);
    assert_true(b.results[0].accepted);
    assert_int_equal(b.results[0].status, 0);
    assert_int_equal(b.results[1].status, SRM_EREFUSED);
    assert_string_equal(b.results[1].why, "not allowed in this state");
    json_decref(j);
    j = parse("{\"operation\":\"explode\",\"node\":\"n1\",\"accepted\":true,\"results\":[]}");
    assert_int_equal(srm_admin_op_answer_from_json(j, &b, e, sizeof(e)), -EINVAL);
    json_decref(j);
    j = parse("{\"operation\":\"failover\",\"node\":\"n1\",\"accepted\":true,\"results\":[]}");
    assert_int_equal(srm_admin_op_answer_from_json(j, &b, e, sizeof(e)), -EINVAL);
    assert_non_null(strstr(e, "results"));
    json_decref(j);
    enum srm_admin_op op;
    assert_int_equal(srm_admin_op_parse("fallback", &op), 0);
    assert_int_equal(op, SRM_ADMIN_OP_FALLBACK);
    assert_int_equal(srm_admin_op_parse("Fallback", &op), -EINVAL);
    assert_int_equal(srm_admin_op_event(SRM_ADMIN_OP_FAILOVER), SRM_FSM_EVENT_ADMIN_FAILOVER);
}

static void test_users_request(void **state)
{
    (void)state;
    char *names[] = {"alice@example.com", "bob"};
    struct srm_admin_users_request r = {.n = 2, .names = names, .node = "n1"}, back;
    json_t *j = NULL;
    assert_int_equal(srm_admin_users_request_to_json(&r, &j), 0);
    char e[256];
    assert_int_equal(srm_admin_users_request_from_json(j, &back, e, sizeof(e)), 0);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.names[1], "bob");
    assert_string_equal(back.node, "n1");
    srm_admin_users_request_clear(&back);
    json_decref(j);

    static const struct {
        const char *json, *word;
    } bad[] = {
        {"{\"names\":\"bob\"}", "array"},
        {"{\"names\":[]}", "1 to"},
        {"{\"names\":[1]}", "names[0]"},
        {"{\"names\":[\"ok\",\"bad name\"]}", "names[1]"},
        {"{\"names\":[\"ok\"],\"node\":5}", "node"},
        {"{\"names\":[\"ok\"],\"node\":\"bad node\"}", "node"},
        {"{\"names\":[\"ok\"],\"extra\":1}", "unknown field"},
        {"{\"node\":\"n1\"}", "missing"},
        {"[\"bob\"]", "object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = parse(bad[i].json);
        struct srm_admin_users_request out = {0};
        char m[256] = "";
        int rc = srm_admin_users_request_from_json(b, &out, m, sizeof(m));
        if (rc != -EINVAL || !strcasestr(m, bad[i].word))
            fail_msg("case %zu: rc %d, message \"%s\" (wanted \"%s\")", i, rc, m, bad[i].word);
        json_decref(b);
    }
    /* the bound on names */
    json_t *arr = json_array();
    for (int i = 0; i <= SRM_ADMIN_USERS_MAX; i++)
        json_array_append_new(arr, json_string("u"));
    json_t *big = json_pack("{s:o}", "names", arr);
    struct srm_admin_users_request out = {0};
    assert_int_equal(srm_admin_users_request_from_json(big, &out, e, sizeof(e)), -EINVAL);
    json_decref(big);
}

static void test_param_and_ha_requests(void **state)
{
    (void)state;
    struct srm_admin_param_request p = {.value = "30", .node = "n2"}, q;
    json_t *j = NULL;
    char e[256];
    assert_int_equal(srm_admin_param_request_to_json(&p, &j), 0);
    assert_int_equal(srm_admin_param_request_from_json(j, &q, e, sizeof(e)), 0);
    assert_string_equal(q.value, "30");
    assert_string_equal(q.node, "n2");
    json_decref(j);
    j = parse("{\"value\":45}");
    assert_int_equal(srm_admin_param_request_from_json(j, &q, e, sizeof(e)), 0);
    assert_string_equal(q.value, "45");
    assert_string_equal(q.node, "");
    json_decref(j);
    j = parse("{\"value\":true,\"node\":null}");
    assert_int_equal(srm_admin_param_request_from_json(j, &q, e, sizeof(e)), 0);
    assert_string_equal(q.value, "true");
    json_decref(j);
    static const char *const bad[] = {"{\"value\":1.5}", "{\"value\":[1]}", "{}",
                                      "{\"value\":\"1\",\"x\":1}",
                                      "{\"value\":\"123456789012345678901234567890123\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = parse(bad[i]);
        if (srm_admin_param_request_from_json(j, &q, e, sizeof(e)) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
        json_decref(j);
    }
    bool en = false;
    assert_int_equal(srm_admin_ha_request_to_json(true, &j), 0);
    assert_int_equal(srm_admin_ha_request_from_json(j, &en, e, sizeof(e)), 0);
    assert_true(en);
    json_decref(j);
    static const char *const badha[] = {"{\"enabled\":\"yes\"}", "{}", "{\"enabled\":1}",
                                        "{\"enabled\":true,\"x\":1}", "true"};
    for (size_t i = 0; i < sizeof(badha) / sizeof(badha[0]); i++) {
        j = parse(badha[i]);
        if (srm_admin_ha_request_from_json(j, &en, e, sizeof(e)) != -EINVAL)
            fail_msg("accepted %s", badha[i]);
        json_decref(j);
    }
}

static void test_param_value_event_error(void **state)
{
    (void)state;
    struct srm_db_param_value v = {SRM_DB_PARAM_KEEPALIVE_INTERVAL, 10,
                                   SRM_DB_PARAM_SOURCE_CLUSTER};
    json_t *j = NULL;
    assert_int_equal(srm_admin_param_value_to_json(&v, NULL, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "keepalive_interval");
    assert_int_equal(json_integer_value(json_object_get(j, "value")), 10);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "cluster");
    assert_int_equal(json_integer_value(json_object_get(j, "max")), 300);
    json_decref(j);
    v = (struct srm_db_param_value){SRM_DB_PARAM_AUTOMATIC_FALLBACK, 1,
                                    SRM_DB_PARAM_SOURCE_DEFAULT};
    assert_int_equal(srm_admin_param_value_to_json(&v, "n1", &j), 0);
    assert_true(json_is_true(json_object_get(j, "value")));
    json_decref(j);
    v.param = SRM_DB_PARAM_MAX;
    assert_int_equal(srm_admin_param_value_to_json(&v, NULL, &j), -EINVAL);

    struct srm_db_event ev = {.id = 7,
                              .at_us = 1700000000500000,
                              .node = "n1",
                              .group = "g1",
                              .old_state = "Normal",
                              .old_reason = "Normal",
                              .new_state = "Failing Over",
                              .new_reason = "Admin Request",
                              .cause = "srmctl failover n1"},
                        back;
    char e[256];
    assert_int_equal(srm_admin_event_to_json(&ev, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "at")), "2023-11-14T22:13:20.500Z");
    assert_int_equal(srm_admin_event_from_json(j, &back, e, sizeof(e)), 0);
    assert_int_equal(back.id, 7);
    assert_string_equal(back.new_state, "Failing Over");
    assert_string_equal(back.cause, "srmctl failover n1");
    srm_admin_event_clear(&back);
    json_object_set_new(j, "new_state", json_string("Sleeping"));
    assert_int_equal(srm_admin_event_from_json(j, &back, e, sizeof(e)), -EINVAL);
    json_decref(j);

    assert_int_equal(srm_admin_error_to_json(409, SRM_EREFUSED, "refused: why", &j), 0);
    json_t *err = json_object_get(j, "error");
    assert_int_equal(json_integer_value(json_object_get(err, "status")), 409);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "SRM_EREFUSED");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "refused: why");
    json_decref(j);
}

static void test_query_and_pct(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(srm__admin_query_get("a=1&node=n%31&x", "node", out, sizeof(out)), 1);
    assert_string_equal(out, "n1");
    assert_int_equal(srm__admin_query_get("a=1&x", "x", out, sizeof(out)), 1);
    assert_string_equal(out, "");
    assert_int_equal(srm__admin_query_get("a=1", "b", out, sizeof(out)), 0);
    assert_int_equal(srm__admin_query_get("a=%zz", "a", out, sizeof(out)), -EINVAL);
    assert_int_equal(srm__admin_query_get("a=%4", "a", out, sizeof(out)), -EINVAL);
    assert_int_equal(srm__admin_query_get("a=%00", "a", out, sizeof(out)), -EINVAL);
    assert_int_equal(srm__admin_query_get("aa=1", "a", out, sizeof(out)), 0);
    char big[64];
    memset(big, 'x', 40);
    strcpy(big + 40, "");
    char q[80];
    snprintf(q, sizeof(q), "a=%s", big);
    assert_int_equal(srm__admin_query_get(q, "a", out, sizeof(out)), -EINVAL);
    struct srm__admin_buf b = {0};
    srm__admin_pct_encode(&b, "a b/é");
    srm__admin_buf_terminate(&b);
    assert_string_equal(b.data, "a%20b%2F%C3%A9");
    srm__admin_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_round_trip),
        cmocka_unit_test(test_status_refusals),
        cmocka_unit_test(test_op_answer),
        cmocka_unit_test(test_users_request),
        cmocka_unit_test(test_param_and_ha_requests),
        cmocka_unit_test(test_param_value_event_error),
        cmocka_unit_test(test_query_and_pct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
