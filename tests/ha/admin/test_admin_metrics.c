/*
 * The metrics registry and its renderers: declaration rules, set/add/get/remove, the
 * Prometheus text format checked line by line by a strict parser (escaping of label values
 * and HELP text, stable order whatever the insertion order, integer and special values), the
 * JSON rendering, and the standard families srmd fills.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_check.h"
#include "srm_admin.h"

static char *render(struct srm_admin_metrics *m, size_t *len)
{
    char *t = NULL;
    assert_int_equal(srm_admin_metrics_render_text(m, &t, len), 0);
    assert_non_null(t);
    assert_int_equal(strlen(t), *len);
    return t;
}

static void check_valid(const char *t, size_t len, size_t want_samples)
{
    char err[256] = "";
    size_t n = 0;
    if (prom_check(t, len, &n, err, sizeof(err)) != 0)
        fail_msg("invalid exposition: %s\n%s", err, t);
    assert_int_equal(n, want_samples);
}

static void test_declare_rules(void **state)
{
    (void)state;
    struct srm_admin_metrics *m;
    struct srm_admin_metric_family *f, *g;
    const char *l1[] = {"node"}, *bad_dup[] = {"a", "a"}, *bad_res[] = {"__name"},
               *bad_chr[] = {"no-dash"};
    assert_int_equal(srm_admin_metrics_new(&m), 0);
    assert_int_equal(
        srm_admin_metrics_family(m, "x_total", SRM_ADMIN_METRIC_COUNTER, "h", 1, l1, &f), 0);
    /* the same definition returns the same family; another one is refused */
    assert_int_equal(
        srm_admin_metrics_family(m, "x_total", SRM_ADMIN_METRIC_COUNTER, "h", 1, l1, &g), 0);
    assert_ptr_equal(f, g);
    assert_int_equal(srm_admin_metrics_family(m, "x_total", SRM_ADMIN_METRIC_GAUGE, "h", 1, l1, &g),
                     -EEXIST);
    assert_int_equal(
        srm_admin_metrics_family(m, "x_total", SRM_ADMIN_METRIC_COUNTER, "h", 0, NULL, &g),
        -EEXIST);
    /* names, help, labels */
    assert_int_equal(srm_admin_metrics_family(m, "x", SRM_ADMIN_METRIC_COUNTER, "h", 0, NULL, &g),
                     -EINVAL); /* counter without _total */
    assert_int_equal(srm_admin_metrics_family(m, "9x", SRM_ADMIN_METRIC_GAUGE, "h", 0, NULL, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "a-b", SRM_ADMIN_METRIC_GAUGE, "h", 0, NULL, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "", SRM_ADMIN_METRIC_GAUGE, "h", 0, NULL, &g),
                     -EINVAL);
    assert_int_equal(
        srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "two\nlines", 0, NULL, &g),
        -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "h", 2, bad_dup, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "h", 1, bad_res, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "h", 1, bad_chr, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "h",
                                              SRM_ADMIN_METRIC_LABELS_MAX + 1, l1, &g),
                     -EINVAL);
    assert_int_equal(srm_admin_metrics_family(m, "ns:a", SRM_ADMIN_METRIC_GAUGE, "h", 0, NULL, &g),
                     0);
    assert_ptr_equal(srm_admin_metrics_find(m, "ns:a"), g);
    assert_null(srm_admin_metrics_find(m, "nope"));
    srm_admin_metrics_free(m);
    srm_admin_metrics_free(NULL);
}

static void test_values(void **state)
{
    (void)state;
    struct srm_admin_metrics *m;
    struct srm_admin_metric_family *c, *g;
    const char *l[] = {"node"};
    assert_int_equal(srm_admin_metrics_new(&m), 0);
    assert_int_equal(
        srm_admin_metrics_family(m, "c_total", SRM_ADMIN_METRIC_COUNTER, "h", 1, l, &c), 0);
    assert_int_equal(srm_admin_metrics_family(m, "g", SRM_ADMIN_METRIC_GAUGE, "h", 1, l, &g), 0);
    const char *n1[] = {"n1"}, *n2[] = {"n2"}, *bad[] = {"\xff\xfe"}, *none[] = {NULL};
    double v;
    assert_int_equal(srm_admin_metric_add(c, n1, 2), 0);
    assert_int_equal(srm_admin_metric_add(c, n1, 3), 0);
    assert_int_equal(srm_admin_metric_get(c, n1, &v), 0);
    assert_true(v == 5);
    assert_int_equal(srm_admin_metric_add(c, n1, -1), -EINVAL); /* counters only go up */
    assert_int_equal(srm_admin_metric_set(c, n1, -1), -EINVAL);
    assert_int_equal(srm_admin_metric_set(c, n1, NAN), -EINVAL);
    assert_int_equal(srm_admin_metric_set(g, n1, -7.5), 0);
    assert_int_equal(srm_admin_metric_set(g, bad, 1), -EINVAL); /* not UTF-8 */
    assert_int_equal(srm_admin_metric_set(g, none, 1), -EINVAL);
    assert_int_equal(srm_admin_metric_get(g, n2, &v), -ENOENT);
    assert_int_equal(srm_admin_metric_remove(g, n2), -ENOENT);
    assert_int_equal(srm_admin_metric_remove(g, n1), 0);
    assert_int_equal(srm_admin_metric_get(g, n1, &v), -ENOENT);
    char big[SRM_ADMIN_METRIC_VALUE_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *bigv[] = {big};
    assert_int_equal(srm_admin_metric_set(g, bigv, 1), -EINVAL);
    srm_admin_metric_clear(c);
    assert_int_equal(srm_admin_metric_get(c, n1, &v), -ENOENT);
    srm_admin_metrics_free(m);
}

/* Escaping, ordering, value formats: the exact text, and the strict parser accepts it. */
static void test_render_exact(void **state)
{
    (void)state;
    struct srm_admin_metrics *m;
    struct srm_admin_metric_family *a, *b, *e;
    const char *l2[] = {"node", "what"};
    assert_int_equal(srm_admin_metrics_new(&m), 0);
    /* declared out of order: rendered by name */
    assert_int_equal(srm_admin_metrics_family(m, "zz", SRM_ADMIN_METRIC_GAUGE, "last", 0, NULL, &e),
                     0);
    assert_int_equal(srm_admin_metrics_family(m, "b_total", SRM_ADMIN_METRIC_COUNTER,
                                              "back\\slash and more", 2, l2, &b),
                     0);
    assert_int_equal(srm_admin_metrics_family(m, "a", SRM_ADMIN_METRIC_GAUGE, "gauge a", 2, l2, &a),
                     0);
    const char *s1[] = {"n2", "x"}, *s2[] = {"n1", "quote\"back\\slash\nnewline"},
               *s3[] = {"n1", "a"}, *s4[] = {"n10", "é"};
    assert_int_equal(srm_admin_metric_set(a, s1, 1.5), 0);
    assert_int_equal(srm_admin_metric_set(a, s2, 1e300), 0);
    assert_int_equal(srm_admin_metric_set(a, s3, -3), 0);
    assert_int_equal(srm_admin_metric_set(a, s4, INFINITY), 0);
    assert_int_equal(srm_admin_metric_add(b, s3, 12345678901.0), 0);
    assert_int_equal(srm_admin_metric_set(e, NULL, NAN), 0);
    size_t len;
    char *t = render(m, &len);
    const char *want =
        "# HELP a gauge a\n"
        "# TYPE a gauge\n"
        "a{node=\"n1\",what=\"a\"} -3\n"
        "a{node=\"n1\",what=\"quote\\\"back\\\\slash\\nnewline\"} 1.0000000000000001e+300\n"
        "a{node=\"n10\",what=\"é\"} +Inf\n"
        "a{node=\"n2\",what=\"x\"} 1.5\n"
        "# HELP b_total back\\\\slash and more\n"
        "# TYPE b_total counter\n"
        "b_total{node=\"n1\",what=\"a\"} 12345678901\n"
        "# HELP zz last\n"
        "# TYPE zz gauge\n"
        "zz NaN\n";
    assert_string_equal(t, want);
    check_valid(t, len, 6);
    free(t);
    srm_admin_metrics_free(m);
}

/* The same content inserted in two orders renders to the same bytes. */
static void test_render_stable(void **state)
{
    (void)state;
    char *texts[2];
    size_t lens[2];
    for (int round = 0; round < 2; round++) {
        struct srm_admin_metrics *m;
        struct srm_admin_std_metrics std;
        assert_int_equal(srm_admin_metrics_new(&m), 0);
        assert_int_equal(srm_admin_metrics_standard(m, &std), 0);
        for (int k = 0; k < 50; k++) {
            int i = round == 0 ? k : 49 - k;
            char node[16];
            snprintf(node, sizeof(node), "node-%02d", i);
            const char *v[] = {node};
            assert_int_equal(srm_admin_metrics_set_node_state(
                                 &std, node, (enum srm_fsm_state)(i % SRM_FSM_STATE_MAX),
                                 (enum srm_fsm_reason)(i % SRM_FSM_REASON_MAX)),
                             0);
            assert_int_equal(srm_admin_metric_set(std.users_assigned, v, i * 100), 0);
            assert_int_equal(srm_admin_metric_add(std.keepalives_sent, v, i), 0);
        }
        texts[round] = render(m, &lens[round]);
        /* 50 nodes x (14 states + 15 reasons) + 50 + 50 */
        check_valid(texts[round], lens[round], 50 * (SRM_FSM_STATE_MAX + SRM_FSM_REASON_MAX) + 100);
        srm_admin_metrics_free(m);
    }
    assert_int_equal(lens[0], lens[1]);
    assert_memory_equal(texts[0], texts[1], lens[0]);
    free(texts[0]);
    free(texts[1]);
}

/* The standard families: every one rendered with HELP and TYPE, one state at 1 per node. */
static void test_standard(void **state)
{
    (void)state;
    struct srm_admin_metrics *m;
    struct srm_admin_std_metrics std;
    assert_int_equal(srm_admin_metrics_new(&m), 0);
    assert_int_equal(srm_admin_metrics_standard(m, &std), 0);
    assert_int_equal(srm_admin_metrics_standard(m, &std), 0); /* idempotent */
    assert_int_equal(srm_admin_metrics_set_node_state(&std, "n1", SRM_FSM_STATE_BACKUP_MODE,
                                                      SRM_FSM_REASON_PEER_DOWN),
                     0);
    assert_int_equal(srm_admin_metrics_set_node_state(&std, "n1", SRM_FSM_STATE_MAX, 0), -EINVAL);
    const char *nr[] = {"n1", "Peer Down"}, *ns[] = {"n1", "xmpp"}, *n[] = {"n1"};
    assert_int_equal(srm_admin_metric_add(std.transitions, nr, 1), 0);
    assert_int_equal(srm_admin_metric_add(std.failovers, nr, 1), 0);
    assert_int_equal(srm_admin_metric_set(std.service_up, ns, 0), 0);
    assert_int_equal(srm_admin_metric_set(std.repl_lag_ms, n, 12), 0);
    size_t len;
    char *t = render(m, &len);
    check_valid(t, len, SRM_FSM_STATE_MAX + SRM_FSM_REASON_MAX + 4);
    assert_non_null(strstr(t, "srm_node_state{node=\"n1\",state=\"Running in Backup Mode\"} 1\n"));
    assert_non_null(strstr(t, "srm_node_state{node=\"n1\",state=\"Normal\"} 0\n"));
    assert_non_null(strstr(t, "srm_node_reason{node=\"n1\",reason=\"Peer Down\"} 1\n"));
    assert_non_null(strstr(t, "srm_failovers_total{node=\"n1\",reason=\"Peer Down\"} 1\n"));
    assert_non_null(strstr(t, "srm_critical_service_up{node=\"n1\",service=\"xmpp\"} 0\n"));
    static const char *const fams[] = {"srm_node_state",
                                       "srm_node_reason",
                                       "srm_transitions_total",
                                       "srm_failovers_total",
                                       "srm_users_assigned",
                                       "srm_users_active",
                                       "srm_keepalives_sent_total",
                                       "srm_keepalives_missed_total",
                                       "srm_critical_service_up",
                                       "srm_replication_lag_entries",
                                       "srm_replication_lag_bytes",
                                       "srm_replication_lag_ms",
                                       "srm_replication_reconnects_total",
                                       "srm_replication_snapshots_sent_total",
                                       "srm_replication_snapshots_installed_total",
                                       "srm_replication_sync_degradations_total"};
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "# TYPE %s ", fams[i]);
        if (!strstr(t, line))
            fail_msg("family %s missing", fams[i]);
    }
    int ones = 0;
    for (const char *p = t; (p = strstr(p, "srm_node_state{node=\"n1\"")); p++)
        ones += strstr(p, "} 1\n") == strchr(p, '}');
    assert_int_equal(ones, 1);
    free(t);

    json_t *j = NULL;
    assert_int_equal(srm_admin_metrics_to_json(m, &j), 0);
    json_t *fs = json_object_get(j, "families");
    assert_int_equal(json_array_size(fs), sizeof(fams) / sizeof(fams[0]));
    json_t *first = json_array_get(fs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")),
                        "srm_critical_service_up");
    json_t *s0 = json_array_get(json_object_get(first, "series"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s0, "labels"), "service")), "xmpp");
    assert_int_equal(json_integer_value(json_object_get(s0, "value")), 0);
    json_decref(j);
    srm_admin_metrics_free(m);
}

/* The checker itself refuses what it must (so that the tests above can fail). */
static void test_checker_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a 1\n",                                           /* no TYPE */
        "# TYPE a gauge\na 1",                             /* no final newline */
        "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",    /* duplicate series */
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n", /* not contiguous */
        "# TYPE a gauge\na{x=\"\\q\"} 1\n",                /* bad escape */
        "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",          /* label twice */
        "# TYPE a gauge\na one\n",                         /* bad value */
        "# TYPE a counter\na 1\n",                         /* counter without _total */
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",           /* TYPE twice */
        "# TYPE a gauge\n\na 1\n",                         /* empty line */
        "# TYPE a gauge\na{__x=\"1\"} 1\n",                /* reserved label */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256];
        if (prom_check(bad[i], strlen(bad[i]), NULL, err, sizeof(err)) == 0)
            fail_msg("checker accepted case %zu: %s", i, bad[i]);
    }
    const char *good = "# HELP a x\n# TYPE a gauge\na{x=\"1\",} 1 1700000000\n";
    char err[256];
    assert_int_equal(prom_check(good, strlen(good), NULL, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declare_rules), cmocka_unit_test(test_values),
        cmocka_unit_test(test_render_exact),  cmocka_unit_test(test_render_stable),
        cmocka_unit_test(test_standard),      cmocka_unit_test(test_checker_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
