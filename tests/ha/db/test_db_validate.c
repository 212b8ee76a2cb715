/*
 * Unit tests of ha/db/validate.c: every validation rule of SPEC.md §2 (names,
 * descriptions), the parameter table and its ranges (SPEC.md §6), the rules between
 * parameters, the state and reason names and the failed-over predicate (SPEC.md §3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "srm_db.h"
#include "srm_error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char msg[SRM_DB_ERRMSG_MAX];

static void repeat(char *buf, const char *unit, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(buf, unit);
}

static void test_group_name(void **state)
{
    (void)state;
    char buf[512];

    assert_int_equal(srm_db_validate_group_name("g1", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_group_name("Group_A-9", msg, sizeof(msg)), 0);
    repeat(buf, "a", 128);
    assert_int_equal(srm_db_validate_group_name(buf, msg, sizeof(msg)), 0);
    repeat(buf, "a", 129);
    assert_int_equal(srm_db_validate_group_name(buf, msg, sizeof(msg)), SRM_ETOOBIG);
    assert_non_null(strstr(msg, "129 characters"));
    assert_non_null(strstr(msg, "limit is 128"));

    assert_int_equal(srm_db_validate_group_name("", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(srm_db_validate_group_name(NULL, msg, sizeof(msg)), -EINVAL);
    assert_int_equal(srm_db_validate_group_name("a b", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "' '"));
    assert_non_null(strstr(msg, "letters, digits, '_' and '-'"));
    const char *bad[] = {"a.b", "a/b", "a\"b", "a%b", "naïve", "a\tb", "a;b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(srm_db_validate_group_name(bad[i], msg, sizeof(msg)), -EINVAL);
    /* errbuf is optional */
    assert_int_equal(srm_db_validate_group_name("a b", NULL, 0), -EINVAL);
}

static void test_description(void **state)
{
    (void)state;
    char buf[1024];

    assert_int_equal(srm_db_validate_description("", msg, sizeof(msg)), 0);
    assert_int_equal(
        srm_db_validate_description("Tokyo pair, rack 3 (primary site)", msg, sizeof(msg)), 0);
    repeat(buf, "x", 128);
    assert_int_equal(srm_db_validate_description(buf, msg, sizeof(msg)), 0);
    repeat(buf, "x", 129);
    assert_int_equal(srm_db_validate_description(buf, msg, sizeof(msg)), SRM_ETOOBIG);
    /* characters, not bytes: 128 two-byte characters are fine */
    repeat(buf, "\xc3\xa9", 128);
    assert_int_equal(srm_db_validate_description(buf, msg, sizeof(msg)), 0);
    repeat(buf, "\xc3\xa9", 129);
    assert_int_equal(srm_db_validate_description(buf, msg, sizeof(msg)), SRM_ETOOBIG);
    repeat(buf, "\xe5\x82\x99", 128); /* CJK, three bytes each */
    assert_int_equal(srm_db_validate_description(buf, msg, sizeof(msg)), 0);

    /* SPEC.md §2: excluding " % & \ < > */
    const char *forbidden[] = {"a\"b", "50%", "a&b", "a\\b", "<b>", "a>b"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        assert_int_equal(srm_db_validate_description(forbidden[i], msg, sizeof(msg)), -EINVAL);
        assert_non_null(strstr(msg, "forbidden character"));
    }
    assert_int_equal(srm_db_validate_description("tab\there", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "control character"));
    assert_int_equal(srm_db_validate_description("\xc3", msg, sizeof(msg)), SRM_EBADUTF8);
    assert_int_equal(srm_db_validate_description("\xc0\xaf", msg, sizeof(msg)), SRM_EBADUTF8);
    assert_int_equal(srm_db_validate_description("\xed\xa0\x80", msg, sizeof(msg)),
                     SRM_EBADUTF8); /* surrogate */
    assert_int_equal(srm_db_validate_description("\xf4\x90\x80\x80", msg, sizeof(msg)),
                     SRM_EBADUTF8); /* beyond U+10FFFF */
    assert_int_equal(srm_db_validate_description(NULL, msg, sizeof(msg)), -EINVAL);
}

static void test_node_address_user_cause(void **state)
{
    (void)state;
    char buf[600];

    assert_int_equal(srm_db_validate_node_name("n1", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_node_name("imp-01.example.com", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_node_name("n 1", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(srm_db_validate_node_name("", msg, sizeof(msg)), -EINVAL);
    repeat(buf, "n", 129);
    assert_int_equal(srm_db_validate_node_name(buf, msg, sizeof(msg)), SRM_ETOOBIG);

    assert_int_equal(srm_db_validate_address("10.200.0.1", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_address("[fe80::1%eth0]:22001", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_address("node-1.example.com", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_address("10.0.0.1 ", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(srm_db_validate_address("a/b", msg, sizeof(msg)), -EINVAL);
    repeat(buf, "1", 256);
    assert_int_equal(srm_db_validate_address(buf, msg, sizeof(msg)), SRM_ETOOBIG);

    assert_int_equal(srm_db_validate_user_name("alice@example.com", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_user_name("user.00001+jabber_x-y", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_user_name("al ice", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(srm_db_validate_user_name("a\nb", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "0x0a"));
    repeat(buf, "u", 255);
    assert_int_equal(srm_db_validate_user_name(buf, msg, sizeof(msg)), 0);
    repeat(buf, "u", 256);
    assert_int_equal(srm_db_validate_user_name(buf, msg, sizeof(msg)), SRM_ETOOBIG);

    assert_int_equal(srm_db_validate_cause("", msg, sizeof(msg)), 0);
    assert_int_equal(
        srm_db_validate_cause("critical service \"sip\" down for 90 s", msg, sizeof(msg)), 0);
    assert_int_equal(srm_db_validate_cause("line\nbreak", msg, sizeof(msg)), -EINVAL);
    repeat(buf, "c", 513);
    assert_int_equal(srm_db_validate_cause(buf, msg, sizeof(msg)), SRM_ETOOBIG);
}

static void test_param_table(void **state)
{
    (void)state;
    enum srm_db_param p;
    int64_t v;
    char text[32];

    assert_null(srm_db_param_def(SRM_DB_PARAM_MAX));
    for (int i = 0; i < SRM_DB_PARAM_MAX; i++) {
        const struct srm_db_param_def *d = srm_db_param_def((enum srm_db_param)i);
        assert_non_null(d);
        assert_true(d->min_value <= d->default_value && d->default_value <= d->max_value);
        assert_int_equal(srm_db_param_lookup(d->name, &p, msg, sizeof(msg)), 0);
        assert_int_equal(p, i);
        /* the bounds are accepted, one past them is refused with the range in the message */
        if (d->kind == SRM_DB_PARAM_KIND_BOOL)
            continue;
        snprintf(text, sizeof(text), "%lld", (long long)d->min_value);
        assert_int_equal(srm_db_param_parse_value(p, text, &v, msg, sizeof(msg)), 0);
        assert_int_equal(v, d->min_value);
        snprintf(text, sizeof(text), "%lld", (long long)d->max_value);
        assert_int_equal(srm_db_param_parse_value(p, text, &v, msg, sizeof(msg)), 0);
        snprintf(text, sizeof(text), "%lld", (long long)d->min_value - 1);
        assert_int_equal(srm_db_param_parse_value(p, text, &v, msg, sizeof(msg)), -ERANGE);
        assert_non_null(strstr(msg, "out of range: allowed"));
        snprintf(text, sizeof(text), "%lld", (long long)d->max_value + 1);
        assert_int_equal(srm_db_param_parse_value(p, text, &v, msg, sizeof(msg)), -ERANGE);
    }

    /* SPEC.md §6 defaults */
    int64_t values[SRM_DB_PARAM_MAX];
    srm_db_params_defaults(values);
    assert_int_equal(values[SRM_DB_PARAM_SERVICE_PORT], 22001);
    assert_int_equal(values[SRM_DB_PARAM_ADMIN_RPC_PORT], 20075);
    assert_int_equal(values[SRM_DB_PARAM_CRITICAL_SERVICE_DOWN_DELAY], 90);
    assert_int_equal(values[SRM_DB_PARAM_AUTOMATIC_FALLBACK], 0);
    assert_int_equal(values[SRM_DB_PARAM_AUTOMATIC_FALLBACK_DELAY], 1800);
    assert_int_equal(values[SRM_DB_PARAM_INIT_KEEPALIVE_TIMEOUT], 120);
    assert_int_equal(values[SRM_DB_PARAM_KEEPALIVE_TIMEOUT], 60);
    assert_int_equal(values[SRM_DB_PARAM_KEEPALIVE_INTERVAL], 15);
    assert_int_equal(values[SRM_DB_PARAM_MONITOR_XCP_AUTH], 0);
    assert_int_equal(values[SRM_DB_PARAM_RELOGIN_LOWER], 120);
    assert_int_equal(values[SRM_DB_PARAM_RELOGIN_UPPER], 537);
    assert_true(srm_db_param_def(SRM_DB_PARAM_RELOGIN_LOWER)->per_node);
    assert_true(srm_db_param_def(SRM_DB_PARAM_RELOGIN_UPPER)->per_node);
    assert_false(srm_db_param_def(SRM_DB_PARAM_KEEPALIVE_INTERVAL)->per_node);

    assert_int_equal(srm_db_param_lookup("nope", &p, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "keepalive_interval"));
}

static void test_param_values(void **state)
{
    (void)state;
    int64_t v = 42;

    assert_int_equal(
        srm_db_param_parse_value(SRM_DB_PARAM_KEEPALIVE_INTERVAL, "300", &v, msg, sizeof(msg)), 0);
    assert_int_equal(v, 300);
    v = 42;
    assert_int_equal(
        srm_db_param_parse_value(SRM_DB_PARAM_KEEPALIVE_INTERVAL, "0", &v, msg, sizeof(msg)),
        -ERANGE);
    assert_int_equal(v, 42); /* untouched on failure */
    assert_string_equal(msg, "keepalive_interval = 0 is out of range: allowed 1 to 300 s");
    assert_int_equal(
        srm_db_param_parse_value(SRM_DB_PARAM_SERVICE_PORT, "65536", &v, msg, sizeof(msg)),
        -ERANGE);
    assert_string_equal(msg, "service_port = 65536 is out of range: allowed 1 to 65535");
    assert_int_equal(srm_db_param_parse_value(SRM_DB_PARAM_SERVICE_PORT, "0", &v, msg, sizeof(msg)),
                     -ERANGE);
    const char *not_numbers[] = {"", "abc", "15s", " 15", "1e3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++)
        assert_int_equal(srm_db_param_parse_value(SRM_DB_PARAM_KEEPALIVE_TIMEOUT, not_numbers[i],
                                                  &v, msg, sizeof(msg)),
                         -EINVAL);
    assert_int_equal(
        srm_db_param_parse_value(SRM_DB_PARAM_KEEPALIVE_TIMEOUT, NULL, &v, msg, sizeof(msg)),
        -EINVAL);

    const char *yes[] = {"true", "TRUE", "on", "yes", "1"}, *no[] = {"false", "Off", "no", "0"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(
            srm_db_param_parse_value(SRM_DB_PARAM_AUTOMATIC_FALLBACK, yes[i], &v, msg, sizeof(msg)),
            0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            srm_db_param_parse_value(SRM_DB_PARAM_AUTOMATIC_FALLBACK, no[i], &v, msg, sizeof(msg)),
            0);
        assert_int_equal(v, 0);
    }
    assert_int_equal(
        srm_db_param_parse_value(SRM_DB_PARAM_MONITOR_XCP_AUTH, "maybe", &v, msg, sizeof(msg)),
        -EINVAL);
    assert_int_equal(srm_db_param_parse_value(SRM_DB_PARAM_MAX, "1", &v, msg, sizeof(msg)),
                     -EINVAL);
}

static void test_param_rules(void **state)
{
    (void)state;
    int64_t v[SRM_DB_PARAM_MAX];

    srm_db_params_defaults(v);
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), 0);

    /* timeouts >= 2 x interval, the boundary included */
    v[SRM_DB_PARAM_KEEPALIVE_INTERVAL] = 30;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), 0); /* 60 = 2 x 30 */
    v[SRM_DB_PARAM_KEEPALIVE_INTERVAL] = 31;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), -ERANGE);
    assert_non_null(strstr(msg, "keepalive_timeout (60 s) must be at least twice"));
    v[SRM_DB_PARAM_KEEPALIVE_TIMEOUT] = 62;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), 0);
    v[SRM_DB_PARAM_KEEPALIVE_INTERVAL] = 61;
    v[SRM_DB_PARAM_KEEPALIVE_TIMEOUT] = 122;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), -ERANGE);
    assert_non_null(strstr(msg, "init_keepalive_timeout (120 s)"));

    /* relogin_lower <= relogin_upper */
    srm_db_params_defaults(v);
    v[SRM_DB_PARAM_RELOGIN_LOWER] = 537;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), 0);
    v[SRM_DB_PARAM_RELOGIN_LOWER] = 538;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), -ERANGE);
    assert_non_null(strstr(msg, "relogin_lower (538 s) must not exceed relogin_upper (537 s)"));

    /* each value in range */
    srm_db_params_defaults(v);
    v[SRM_DB_PARAM_ADMIN_RPC_PORT] = 0;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), -ERANGE);
    assert_non_null(strstr(msg, "admin_rpc_port"));
    srm_db_params_defaults(v);
    v[SRM_DB_PARAM_AUTOMATIC_FALLBACK] = 2;
    assert_int_equal(srm_db_params_check(v, msg, sizeof(msg)), -ERANGE);
}

static const char *const all_states[] = {
    "Initializing",
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
};

static void test_states_and_failed_over(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_states) / sizeof(all_states[0]); i++) {
        assert_true(srm_db_state_valid(all_states[i]));
        bool expected =
            strcmp(all_states[i], "Normal") != 0 && strcmp(all_states[i], "Initializing") != 0;
        assert_int_equal(srm_db_state_is_failed_over(all_states[i]), expected);
    }
    /* not knowing is not safe */
    assert_true(srm_db_state_is_failed_over(NULL));
    assert_true(srm_db_state_is_failed_over("normal"));
    assert_true(srm_db_state_is_failed_over("Whatever"));
    assert_false(srm_db_state_valid("normal"));
    assert_false(srm_db_state_valid(NULL));
    assert_false(srm_db_state_valid("Failed over"));

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
                             "Unknown"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        assert_true(srm_db_reason_valid(reasons[i]));
    assert_false(srm_db_reason_valid("Idle"));
    assert_false(srm_db_reason_valid("admin request"));
}

static void test_modes(void **state)
{
    (void)state;
    enum srm_db_assign_mode m;
    assert_string_equal(srm_db_assign_mode_name(SRM_DB_ASSIGN_BALANCED), "balanced");
    assert_string_equal(srm_db_assign_mode_name(SRM_DB_ASSIGN_ACTIVE_STANDBY), "active-standby");
    assert_string_equal(srm_db_assign_mode_name(SRM_DB_ASSIGN_NONE), "none");
    assert_null(srm_db_assign_mode_name(SRM_DB_ASSIGN_MAX));
    for (int i = 0; i < SRM_DB_ASSIGN_MAX; i++) {
        assert_int_equal(srm_db_assign_mode_parse(srm_db_assign_mode_name(i), &m, msg, sizeof(msg)),
                         0);
        assert_int_equal(m, i);
    }
    assert_int_equal(srm_db_assign_mode_parse("active/standby", &m, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "balanced, active-standby or none"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_name),
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_node_address_user_cause),
        cmocka_unit_test(test_param_table),
        cmocka_unit_test(test_param_values),
        cmocka_unit_test(test_param_rules),
        cmocka_unit_test(test_states_and_failed_over),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
