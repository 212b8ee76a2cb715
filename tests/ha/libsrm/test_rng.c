/*
 * Re-login delays (ha/libsrm/rng.c): the generator matches the reference xoshiro256**, is
 * reproducible from a seed, and draws uniformly in [lower, upper] with both bounds
 * included, checked with chi-square tests at a fixed seed (so the test is deterministic;
 * the critical values are those of p = 0.001).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "srm.h"

#include <stdlib.h>
#include <string.h>

static void test_reference_vectors(void **state)
{
    struct srm_rng r = {.s = {1, 2, 3, 4}};

    (void)state;
    /* xoshiro256** from the state {1, 2, 3, 4}, computed by an independent
     * implementation. */
    assert_true(srm_rng_next(&r) == 11520u);
    assert_true(srm_rng_next(&r) == 0u);
    assert_true(srm_rng_next(&r) == 1509978240u);
    assert_true(srm_rng_next(&r) == 1215971899390074240ull);
}

static void test_seeding(void **state)
{
    struct srm_rng a, b, c;

    (void)state;
    srm_rng_seed(&a, 42);
    srm_rng_seed(&b, 42);
    srm_rng_seed(&c, 43);
    for (int i = 0; i < 100; i++) {
        uint64_t x = srm_rng_next(&a);
        assert_true(x == srm_rng_next(&b));
        assert_true(x != srm_rng_next(&c));
    }
    assert_int_equal(srm_rng_init(&a), 0);
    assert_int_equal(srm_rng_init(&b), 0);
    assert_true(memcmp(&a, &b, sizeof(a)) != 0);
}

/* Chi-square of counts against expected counts. */
static double chi2(const uint64_t *obs, const double *exp, size_t k)
{
    double sum = 0;

    for (size_t i = 0; i < k; i++) {
        double d = (double)obs[i] - exp[i];
        sum += d * d / exp[i];
    }
    return sum;
}

static void test_small_range_inclusive_uniform(void **state)
{
    struct srm_rng r;
    uint64_t obs[10] = {0};
    double exp[10];
    const size_t n = 200000;

    (void)state;
    srm_rng_seed(&r, 20240601);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = srm_rng_range(&r, 3, 12);
        assert_true(v >= 3 && v <= 12);
        obs[v - 3]++;
    }
    for (int i = 0; i < 10; i++)
        exp[i] = n / 10.0;
    /* Both bounds are drawn as often as any other value. */
    assert_true(obs[0] > 0 && obs[9] > 0);
    /* 9 degrees of freedom: 27.88 at p = 0.001. */
    assert_true(chi2(obs, exp, 10) < 27.88);

    /* A span that does not divide 2^64 (3): no modulo bias. */
    memset(obs, 0, sizeof(obs));
    for (size_t i = 0; i < n; i++)
        obs[srm_rng_range(&r, 0, 2)]++;
    for (int i = 0; i < 3; i++)
        exp[i] = n / 3.0;
    assert_true(chi2(obs, exp, 3) < 13.82); /* 2 dof */
}

static void test_relogin_delay_distribution(void **state)
{
    enum { K = 100 };
    struct srm_rng r;
    uint64_t obs[K] = {0}, lo_ms = 120000, hi_ms = 537000, span = hi_ms - lo_ms + 1;
    uint64_t min = UINT64_MAX, max = 0;
    double exp[K];
    const size_t n = 500000;

    (void)state;
    srm_rng_seed(&r, 7);
    /* SPEC.md §6 defaults: [120, 537] s. */
    for (size_t i = 0; i < n; i++) {
        uint64_t v = srm_relogin_delay_ms(&r, 120, 537);
        assert_true(v >= lo_ms && v <= hi_ms);
        min = v < min ? v : min;
        max = v > max ? v : max;
        obs[(v - lo_ms) * K / span]++;
    }
    /* Bucket b holds the offsets x with floor(x K / span) = b. */
    for (uint64_t b = 0; b < K; b++) {
        uint64_t first = (b * span + K - 1) / K, next = ((b + 1) * span + K - 1) / K;
        exp[b] = (double)n * (double)(next - first) / (double)span;
    }
    /* 99 degrees of freedom: 148.23 at p = 0.001. */
    assert_true(chi2(obs, exp, K) < 148.23);
    assert_true(min < lo_ms + 5000 && max > hi_ms - 5000);
}

static void test_bounds_exact(void **state)
{
    struct srm_rng r;
    bool seen_lo = false, seen_hi = false;

    (void)state;
    srm_rng_seed(&r, 1);
    /* [1, 2] s: 1001 possible delays; both ends come out. */
    for (int i = 0; i < 100000; i++) {
        uint64_t v = srm_relogin_delay_ms(&r, 1, 2);
        assert_true(v >= 1000 && v <= 2000);
        seen_lo |= v == 1000;
        seen_hi |= v == 2000;
    }
    assert_true(seen_lo && seen_hi);
    /* Degenerate windows. */
    assert_true(srm_relogin_delay_ms(&r, 0, 0) == 0);
    assert_true(srm_relogin_delay_ms(&r, 30, 30) == 30000);
    /* Swapped bounds are taken in order. */
    for (int i = 0; i < 1000; i++) {
        uint64_t v = srm_rng_range(&r, 9, 5);
        assert_true(v >= 5 && v <= 9);
    }
    /* The whole 64-bit range. */
    (void)srm_rng_range(&r, 0, UINT64_MAX);
    assert_true(srm_rng_range(&r, UINT64_MAX, UINT64_MAX) == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_seeding),
        cmocka_unit_test(test_small_range_inclusive_uniform),
        cmocka_unit_test(test_relogin_delay_distribution),
        cmocka_unit_test(test_bounds_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
