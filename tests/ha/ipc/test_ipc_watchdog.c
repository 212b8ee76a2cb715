/*
 * srmd's watchdog of engines (ha/ipc/msg.c, srm__ipc_wd_*) and the loop-stall detector the
 * server uses, with a fake clock: a client pinging on time stays alive, one that stops is
 * judged dead exactly after ping x misses, a change of parameters never shortens the window
 * the client is in, and a stalled observer gives everybody a fresh window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

static void test_on_time_stays_alive(void **state)
{
    struct srm__ipc_wd wd;
    uint64_t now = 10000;

    (void)state;
    srm__ipc_wd_init(&wd, now, 200, 3);
    /* 1000 pings, each up to 1.9 intervals late: never dead. */
    for (int i = 0; i < 1000; i++) {
        now += (i % 2) ? 380 : 100;
        assert_false(srm__ipc_wd_expired(&wd, now));
        srm__ipc_wd_ping(&wd, now);
        assert_int_equal(srm__ipc_wd_missed(&wd, now), 0);
    }
}

static void test_miss_detection(void **state)
{
    struct srm__ipc_wd wd;

    (void)state;
    srm__ipc_wd_init(&wd, 1000, 200, 3);
    srm__ipc_wd_ping(&wd, 1100);
    assert_int_equal(srm__ipc_wd_deadline(&wd), 1100 + 600);
    assert_int_equal(srm__ipc_wd_missed(&wd, 1299), 0);
    assert_int_equal(srm__ipc_wd_missed(&wd, 1300), 1);
    assert_int_equal(srm__ipc_wd_missed(&wd, 1500), 2);
    assert_false(srm__ipc_wd_expired(&wd, 1700)); /* exactly 3 intervals: not yet */
    assert_true(srm__ipc_wd_expired(&wd, 1701));  /* more than 3 intervals without a ping */
    assert_int_equal(srm__ipc_wd_missed(&wd, 1701), 3);
    /* A ping from the past (reordered) does not move the deadline back. */
    srm__ipc_wd_ping(&wd, 900);
    assert_int_equal(srm__ipc_wd_deadline(&wd), 1700);
    /* One miss allowed. */
    srm__ipc_wd_init(&wd, 0, 50, 1);
    assert_false(srm__ipc_wd_expired(&wd, 50));
    assert_true(srm__ipc_wd_expired(&wd, 51));
}

static void test_parameter_change(void **state)
{
    struct srm__ipc_wd wd;

    (void)state;
    srm__ipc_wd_init(&wd, 0, 1000, 3);
    srm__ipc_wd_ping(&wd, 500); /* deadline 3500 */
    /* Shorter window at 600: the client may not know yet; the old deadline holds. */
    srm__ipc_wd_set(&wd, 600, 100, 2);
    assert_int_equal(srm__ipc_wd_deadline(&wd), 3500);
    assert_false(srm__ipc_wd_expired(&wd, 3500));
    assert_true(srm__ipc_wd_expired(&wd, 3501));
    /* Once it pings under the new regime, the new window applies from its pings. */
    srm__ipc_wd_ping(&wd, 4000);
    assert_int_equal(srm__ipc_wd_deadline(&wd), 4200);
    /* Longer window: applies at once from the change. */
    srm__ipc_wd_set(&wd, 4100, 2000, 3);
    assert_int_equal(srm__ipc_wd_deadline(&wd), 4100 + 6000);
}

static void test_stall_grace(void **state)
{
    struct srm__ipc_wd wd;

    (void)state;
    assert_int_equal(srm__ipc_stall(1000, 1000, 100), 0);
    assert_int_equal(srm__ipc_stall(1000, 900, 100), 0);  /* early */
    assert_int_equal(srm__ipc_stall(1000, 1100, 100), 0); /* late within the threshold */
    assert_int_equal(srm__ipc_stall(1000, 1101, 100), 101);
    assert_int_equal(srm__ipc_stall(1000, 31000, 100), 30000);
    /* The observer slept 30 s: the client's pings wait unread; it gets a full window. */
    srm__ipc_wd_init(&wd, 1000, 200, 3);
    assert_true(srm__ipc_wd_expired(&wd, 31000));
    srm__ipc_wd_grace(&wd, 31000);
    assert_false(srm__ipc_wd_expired(&wd, 31600));
    assert_true(srm__ipc_wd_expired(&wd, 31601));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_time_stays_alive),
        cmocka_unit_test(test_miss_detection),
        cmocka_unit_test(test_parameter_change),
        cmocka_unit_test(test_stall_grace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
