/*
 * Unit tests of ha/db/op.c: the validation each operation does in C before anything is
 * sent (both APIs share it), the parameters it sends, and the mapping of libpq errors.
 * No database: the builders are pure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "srm_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asserts that op was refused before sending, with status and a message containing part. */
static void refused(struct srm__db_op *op, int status, const char *part)
{
    assert_non_null(op);
    if (op->status != status || !strstr(op->errmsg, part))
        fail_msg("expected %d \"%s\", got %d \"%s\"", status, part, op->status, op->errmsg);
    srm__db_op_free(op);
}

static void accepted(struct srm__db_op *op)
{
    assert_non_null(op);
    if (op->status < 0)
        fail_msg("refused: %s", op->errmsg);
}

static void test_groups_and_nodes(void **state)
{
    (void)state;
    struct srm__db_op *op = srm__db_build_group_create("g1", NULL);
    accepted(op);
    assert_int_equal(op->nparams, 2);
    assert_string_equal(op->params[0], "g1");
    assert_string_equal(op->params[1], ""); /* no description = empty */
    srm__db_op_free(op);

    refused(srm__db_build_group_create("g 1", ""), -EINVAL, "group create: group name \"g 1\"");
    refused(srm__db_build_group_create("g1", "<b>"), -EINVAL, "forbidden character '<'");
    refused(srm__db_build_group_update("g1", "bad name", NULL), -EINVAL, "group update:");
    op = srm__db_build_group_update("g1", NULL, NULL);
    accepted(op);
    assert_null(op->params[1]);
    assert_null(op->params[2]);
    srm__db_op_free(op);
    refused(srm__db_build_group_set_ha("", true), -EINVAL, "ha enable:");
    refused(srm__db_build_node_add("n1", "10.0.0.1 ", "g1"), -EINVAL, "node address");
    refused(srm__db_build_node_add("n1", "10.0.0.1", NULL), -EINVAL, "group name is missing");
    refused(srm__db_build_node_remove("n/1"), -EINVAL, "node remove:");
    accepted(op = srm__db_build_node_set_assignable("n1", false));
    assert_string_equal(op->params[1], "false");
    srm__db_op_free(op);
}

static void test_params(void **state)
{
    (void)state;
    struct srm__db_op *op = srm__db_build_param_set("keepalive_interval", NULL, "20");
    accepted(op);
    assert_string_equal(op->params[2], "20");
    assert_null(op->params[1]);
    srm__db_op_free(op);

    refused(srm__db_build_param_set("keepalive_interval", NULL, "301"), -ERANGE,
            "param set: keepalive_interval = 301 is out of range: allowed 1 to 300 s");
    refused(srm__db_build_param_set("keepalive_interval", "n1", "20"), -EINVAL,
            "is cluster-wide and cannot be set per node");
    refused(srm__db_build_param_set("no_such", NULL, "1"), -EINVAL, "no parameter named");
    refused(srm__db_build_param_set("automatic_fallback", NULL, "perhaps"), -EINVAL,
            "is a boolean");
    accepted(op = srm__db_build_param_set("automatic_fallback", NULL, "on"));
    assert_string_equal(op->params[2], "1");
    srm__db_op_free(op);
    accepted(op = srm__db_build_param_set("relogin_upper", "n1", "900"));
    srm__db_op_free(op);
    refused(srm__db_build_param_reset("service_port", "n1"), -EINVAL, "cluster-wide");
    /* reading a cluster-wide parameter "for a node" gives the cluster value: allowed */
    accepted(op = srm__db_build_param_get("service_port", "n1"));
    assert_int_equal(op->param, SRM_DB_PARAM_SERVICE_PORT);
    srm__db_op_free(op);
}

static void test_user_lists(void **state)
{
    (void)state;
    const char *names[] = {"alice", "bob@example.com", "carol"};
    struct srm__db_op *op = srm__db_build_users_add(names, 3, NULL);
    accepted(op);
    assert_string_equal(op->params[0], "alice\nbob@example.com\ncarol");
    assert_null(op->params[1]);
    srm__db_op_free(op);

    const char *dup[] = {"alice", "bob", "alice"};
    refused(srm__db_build_users_add(dup, 3, NULL), -EINVAL, "user \"alice\" appears twice");
    const char *bad[] = {"alice", "bo b"};
    refused(srm__db_build_users_add(bad, 2, NULL), -EINVAL, "(name 2 of 2); nothing was sent");
    const char *injected[] = {"alice\nmallory"};
    refused(srm__db_build_users_remove(injected, 1), -EINVAL, "forbidden byte 0x0a");
    refused(srm__db_build_users_add(names, 0, NULL), -EINVAL, "no user names given");
    refused(srm__db_build_users_assign(names, 3, "bad node"), -EINVAL, "users assign:");

    /* a large list: one parameter, names in order */
    enum { N = 20000 };
    char **many = malloc(N * sizeof(*many));
    for (int i = 0; i < N; i++) {
        many[i] = malloc(16);
        snprintf(many[i], 16, "u%05d", i);
    }
    op = srm__db_build_users_add((const char *const *)many, N, "n1");
    accepted(op);
    assert_int_equal(strlen(op->params[0]), N * 7 - 1);
    assert_memory_equal(op->params[0], "u00000\nu00001\n", 14);
    srm__db_op_free(op);
    for (int i = 0; i < N; i++)
        free(many[i]);
    free(many);

    refused(srm__db_build_users_list(NULL, NULL, false, 0), -EINVAL, "page size 0");
    refused(srm__db_build_users_list(NULL, NULL, false, SRM_DB_LIST_MAX + 1), -EINVAL,
            "out of range");
    accepted(op = srm__db_build_users_list("bob", "n2", true, 100));
    assert_string_equal(op->params[2], "true");
    assert_string_equal(op->params[3], "100");
    srm__db_op_free(op);
}

static void test_state_reports(void **state)
{
    (void)state;
    struct srm_db_transition t = {.node = "n1",
                                  .old_state = "Normal",
                                  .old_reason = "Normal",
                                  .new_state = "Failing Over",
                                  .new_reason = "Admin Request",
                                  .cause = "srmctl failover n1",
                                  .at_us = 1700000000000000LL};
    struct srm__db_op *op = srm__db_build_node_state_report(&t, "abcd", 7);
    accepted(op);
    assert_true(op->durable);
    assert_string_equal(op->params[6], "1700000000000000");
    assert_string_equal(op->params[7], "abcd");
    assert_string_equal(op->params[8], "7");
    srm__db_op_free(op);

    t.new_state = "Failing over"; /* not spelled as SPEC.md §3 */
    refused(srm__db_build_node_state_report(&t, NULL, 0), -EINVAL, "is not a state name");
    t.new_state = "Idle";
    t.new_reason = "Because";
    refused(srm__db_build_node_state_report(&t, NULL, 0), -EINVAL, "is not a reason name");
    t.new_reason = "Admin Request";
    t.old_reason = NULL;
    refused(srm__db_build_node_state_report(&t, NULL, 0), -EINVAL, "both given or both NULL");
    t.old_state = NULL;
    accepted(op = srm__db_build_node_state_report(&t, NULL, 0));
    assert_null(op->params[1]);
    assert_null(op->params[8]);
    srm__db_op_free(op);
    t.at_us = 0;
    refused(srm__db_build_node_state_report(&t, NULL, 0), -EINVAL, "no time");
    refused(srm__db_build_node_state_report(NULL, NULL, 0), -EINVAL, "no transition");

    refused(srm__db_build_history(0, false, 0), -EINVAL, "0 events asked");
    refused(srm__db_build_history(-1, false, 10), -EINVAL, "negative event id");
    accepted(op = srm__db_build_history(0, true, 50));
    assert_null(op->params[0]);
    assert_string_equal(op->params[1], "50");
    srm__db_op_free(op);
    refused(srm__db_build_assignment_mode_set(SRM_DB_ASSIGN_MAX), -EINVAL, "unknown assignment");
}

static void test_first_failure_kept(void **state)
{
    (void)state;
    struct srm__db_op *op = srm__db_op_new("x", "SELECT 1", SRM__DB_PARSE_NONE);
    srm__db_op_fail(op, -EINVAL, "first");
    srm__db_op_fail(op, -ERANGE, "second");
    assert_int_equal(op->status, -EINVAL);
    assert_string_equal(op->errmsg, "x: first");
    srm__db_op_fail_down(op, "y", false);
    assert_int_equal(op->status, -EINVAL);
    srm__db_op_free(op);

    op = srm__db_op_new("users add", "SELECT 1", SRM__DB_PARSE_NONE);
    srm__db_op_fail_down(op, "connection to server on socket \"/x\" failed: No such file\n", false);
    assert_int_equal(op->status, SRM_EDB_DOWN);
    assert_non_null(strstr(op->errmsg, "users add: the configuration database is down"));
    assert_non_null(strstr(op->errmsg, "nothing was changed"));
    assert_null(strchr(op->errmsg, '\n'));
    srm__db_op_free(op);

    char buf[64];
    srm__db_pq_message("ERROR:  boom\nDETAIL:  more\n", buf, sizeof(buf));
    assert_string_equal(buf, "boom DETAIL: more");
    srm__db_pq_message("failed: No such file\n\tIs the server running?\n", buf, sizeof(buf));
    assert_string_equal(buf, "failed: No such file Is the server running?");
    srm__db_pq_message("0123456789", buf, 5);
    assert_string_equal(buf, "0123");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_and_nodes),   cmocka_unit_test(test_params),
        cmocka_unit_test(test_user_lists),         cmocka_unit_test(test_state_reports),
        cmocka_unit_test(test_first_failure_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
