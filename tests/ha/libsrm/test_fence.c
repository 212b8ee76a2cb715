/*
 * libsrm's safety core (ha/libsrm/fence.c) with a fake clock and a fake quorum source: the
 * lease (expiry by the engine's own clock, renewals, late messages, announced restarts),
 * the quorum self-fence (cut off, peer still in sight, Corosync unreachable, no peer, heal
 * without a new grant), releases and drain timeouts, epochs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------ fakes */

/* What the fence reported through its callback. */
struct stops {
    int calls;
    uint32_t part;
    enum srm_ipc_reason reason;
    size_t n_gone;
    struct srm__grant gone[8];
};

static void stop_cb(void *data, uint32_t part, enum srm_ipc_reason reason,
                    const struct srm__grant *gone, size_t n_gone)
{
    struct stops *s = data;

    s->calls++;
    s->part = part;
    s->reason = reason;
    s->n_gone = n_gone;
    memcpy(s->gone, gone, (n_gone < 8 ? n_gone : 8) * sizeof(gone[0]));
}

/*
 * A fake quorum source: the Corosync membership of a three-node cluster seen from node 1
 * (group peer 2), as libquorum would report it.
 */
struct fake_quorum {
    struct srm__fence *f;
    bool up; /* corosync reachable */
    uint32_t members[3];
    size_t n;
};

static int fq_view(struct fake_quorum *q)
{
    if (!q->up)
        return srm__fence_quorum(q->f, false, false, NULL, 0);
    /* Votequorum with three votes: quorate with two members or more. */
    return srm__fence_quorum(q->f, true, q->n >= 2, q->members, q->n);
}

static int fq_set(struct fake_quorum *q, const uint32_t *members, size_t n)
{
    q->up = true;
    memcpy(q->members, members, n * sizeof(uint32_t));
    q->n = n;
    return fq_view(q);
}

static int fq_all(struct fake_quorum *q)
{
    return fq_set(q, (uint32_t[]){1, 2, 3}, 3);
}

static int fq_cut_off(struct fake_quorum *q) /* node 1 alone */
{
    return fq_set(q, (uint32_t[]){1}, 1);
}

static int fq_corosync_dies(struct fake_quorum *q)
{
    q->up = false;
    q->n = 0;
    return fq_view(q);
}

struct fixture {
    struct srm__fence f;
    struct stops stops;
    struct fake_quorum q;
};

static int setup_quorum(void **state)
{
    static struct fixture fx;

    memset(&fx, 0, sizeof(fx));
    srm__fence_init(&fx.f, true, stop_cb, &fx.stops);
    srm__fence_set_peer(&fx.f, 2);
    fx.q.f = &fx.f;
    *state = &fx;
    return 0;
}

static int setup_no_quorum(void **state)
{
    static struct fixture fx;

    memset(&fx, 0, sizeof(fx));
    srm__fence_init(&fx.f, false, stop_cb, &fx.stops);
    fx.q.f = &fx.f;
    *state = &fx;
    return 0;
}

static int serving(struct fixture *fx, uint64_t now, uint32_t part)
{
    return srm__fence_serving(&fx->f, now, part, NULL);
}

/* ------------------------------------------------------------------------ lease */

static void test_lease_expires_by_own_clock(void **state)
{
    struct fixture *fx = *state;
    uint64_t epoch = 0;

    assert_int_equal(srm__fence_serve(&fx->f, 1000, 7, 3, 4000, 1000, NULL), 0);
    assert_int_equal(srm__fence_serving(&fx->f, 1000, 7, &epoch), 1);
    assert_int_equal(epoch, 3);
    assert_int_equal(srm__fence_lease_left(&fx->f, 2000), 3000);
    assert_int_equal(srm__fence_next_deadline(&fx->f), 5000);
    /* The query is exact to the millisecond even if nobody ran the tick. */
    assert_int_equal(serving(fx, 4999, 7), 1);
    assert_int_equal(serving(fx, 5000, 7), 0);
    assert_int_equal(fx->stops.calls, 0);
    /* The tick takes everything away, once, naming the reason. */
    assert_int_equal(srm__fence_tick(&fx->f, 4999), 5000);
    assert_int_equal(fx->stops.calls, 0);
    assert_int_equal(srm__fence_tick(&fx->f, 5000), UINT64_MAX);
    assert_int_equal(fx->stops.calls, 1);
    assert_int_equal(fx->stops.part, SRM_PART_ALL);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_LEASE);
    assert_int_equal(fx->f.n, 0);
    assert_int_equal(fx->f.lease_expiries, 1);
    srm__fence_tick(&fx->f, 9000);
    assert_int_equal(fx->stops.calls, 1);
}

static void test_lease_renewals(void **state)
{
    struct fixture *fx = *state;
    uint64_t now = 0;

    assert_int_equal(srm__fence_serve(&fx->f, now, 1, 1, 1000, now, NULL), 0);
    assert_int_equal(srm__fence_serve(&fx->f, now, 2, 1, 1000, now, NULL), 0);
    /* Renewed every 250 ms (lease/4) for 60 s: never expires. */
    for (int i = 0; i < 240; i++) {
        now += 250;
        srm__fence_tick(&fx->f, now);
        srm__fence_lease(&fx->f, now, 1000, now);
        assert_int_equal(serving(fx, now, 1), 1);
    }
    /* srmd stops (SIGSTOP): the lease ends 1000 ms after the last renewal was sent. */
    assert_int_equal(srm__fence_next_deadline(&fx->f), now + 1000);
    srm__fence_tick(&fx->f, now + 999);
    assert_int_equal(serving(fx, now + 999, 2), 1);
    srm__fence_tick(&fx->f, now + 1000);
    assert_int_equal(fx->stops.calls, 1);
    assert_int_equal(fx->stops.n_gone, 2);
    assert_int_equal(serving(fx, now + 1000, 1), 0);
    /* A renewal after the expiry does not bring the partitions back: only SERVE does. */
    srm__fence_lease(&fx->f, now + 1100, 1000, now + 1100);
    assert_int_equal(serving(fx, now + 1100, 1), 0);
    assert_int_equal(srm__fence_serve(&fx->f, now + 1100, 1, 1, 1000, now + 1100, NULL), 0);
    assert_int_equal(serving(fx, now + 1100, 1), 1);
}

static void test_lease_late_messages(void **state)
{
    struct fixture *fx = *state;

    /* A renewal that waited 900 ms in a queue grants only what is left of it. */
    assert_int_equal(srm__fence_serve(&fx->f, 10000, 1, 1, 1000, 10000, NULL), 0);
    srm__fence_lease(&fx->f, 10950, 1000, 10050);
    assert_int_equal(srm__fence_lease_left(&fx->f, 10950), 100);
    /* A SERVE whose lease is over when it arrives is refused. */
    assert_int_equal(srm__fence_serve(&fx->f, 20000, 2, 1, 1000, 18000, NULL), SRM_ELEASE);
    assert_null(srm__fence_find(&fx->f, 2));
    /* A send time in the future (another clock) is not trusted: measured from arrival. */
    assert_int_equal(srm__fence_serve(&fx->f, 20000, 2, 1, 1000, 99999999, NULL), 0);
    assert_int_equal(srm__fence_lease_left(&fx->f, 20000), 1000);
    /* No send time: from arrival. */
    srm__fence_lease(&fx->f, 20500, 1000, 0);
    assert_int_equal(srm__fence_lease_left(&fx->f, 20500), 1000);
}

static void test_lease_end_and_long_lease(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 1000, 0, NULL), 0);
    /* An announced restart: srmd extends the lease to cover it. */
    srm__fence_lease(&fx->f, 500, 30000, 500);
    srm__fence_tick(&fx->f, 20000);
    assert_int_equal(serving(fx, 20000, 1), 1);
    /* LEASE 0 ends it at once. */
    srm__fence_lease(&fx->f, 21000, 0, 21000);
    assert_int_equal(fx->stops.calls, 1);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_LEASE);
    assert_int_equal(serving(fx, 21000, 1), 0);
}

/* ------------------------------------------------------------------------ quorum */

static void test_quorum_needed_to_serve(void **state)
{
    struct fixture *fx = *state;

    /* No view yet (Corosync not heard): refused. */
    assert_true(srm__fence_blocked(&fx->f));
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 1000, 0, NULL), SRM_ENO_QUORUM);
    /* Quorate flag known, membership not yet: quorate is enough. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, true, NULL, 0), 0);
    assert_false(srm__fence_blocked(&fx->f));
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 1000, 0, NULL), 0);
    /* Not quorate, membership unknown: the peer counts as absent. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, NULL, 0), 1);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_QUORUM);
}

static void test_cut_off_fences_at_once(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 5, 60000, 0, NULL), 0);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 2, 6, 60000, 0, NULL), 0);
    assert_true(srm__fence_peer_present(&fx->f));
    /* Node 3 leaves: still quorate. */
    assert_int_equal(fq_set(&fx->q, (uint32_t[]){1, 2}, 2), 0);
    assert_int_equal(serving(fx, 1, 1), 1);
    /* This node is cut off: not quorate, peer gone: everything stops now, whatever the
     * lease says. */
    assert_int_equal(fq_cut_off(&fx->q), 1);
    assert_int_equal(fx->stops.calls, 1);
    assert_int_equal(fx->stops.part, SRM_PART_ALL);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_QUORUM);
    assert_int_equal(fx->stops.n_gone, 2);
    assert_int_equal(serving(fx, 2, 1), 0);
    assert_int_equal(fx->f.quorum_fences, 1);
    /* srmd, not knowing, grants again: refused while cut off. */
    assert_int_equal(srm__fence_serve(&fx->f, 3, 1, 5, 60000, 0, NULL), SRM_ENO_QUORUM);
    /* Healed: quorate again, but nothing is served until srmd grants again. */
    assert_int_equal(fq_all(&fx->q), 0);
    assert_int_equal(serving(fx, 4, 1), 0);
    assert_int_equal(fx->f.n, 0);
    assert_int_equal(srm__fence_serve(&fx->f, 5, 1, 7, 60000, 0, NULL), 0);
    assert_int_equal(serving(fx, 5, 1), 1);
    assert_int_equal(fx->stops.calls, 1);
}

static void test_peer_in_sight_keeps_serving(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), 0);
    /* Nodes 1 and 2 together but not quorate (say node 3 holds two votes): the peer is in
     * sight, so it cannot be taking over: keep serving. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, (uint32_t[]){1, 2}, 2), 0);
    assert_int_equal(serving(fx, 1, 1), 1);
    /* A quorate-only update keeps the known membership. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, NULL, 0), 0);
    assert_true(srm__fence_peer_present(&fx->f));
    /* The peer leaves too. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, (uint32_t[]){1}, 1), 1);
    assert_int_equal(serving(fx, 2, 1), 0);
}

static void test_corosync_unreachable(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), 0);
    assert_int_equal(fq_corosync_dies(&fx->q), 1);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_QUORUM);
    assert_false(srm__fence_peer_present(&fx->f));
    assert_int_equal(srm__fence_serve(&fx->f, 1, 1, 1, 60000, 0, NULL), SRM_ENO_QUORUM);
    /* Back, quorate: SERVE works again. */
    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 2, 1, 1, 60000, 0, NULL), 0);
}

static void test_no_peer_and_peer_change(void **state)
{
    struct fixture *fx = *state;

    /* A one-node group: only quorum counts. */
    srm__fence_set_peer(&fx->f, 0);
    fq_set(&fx->q, (uint32_t[]){1, 2}, 2);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), 0);
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, (uint32_t[]){1, 2}, 2), 1);
    /* Every loss of quorum fences again; a peer learnt later brings the membership rule. */
    assert_int_equal(srm__fence_quorum(&fx->f, true, true, (uint32_t[]){1, 3}, 2), 0);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), 0);
    assert_int_equal(srm__fence_quorum(&fx->f, true, false, (uint32_t[]){1, 3}, 2), 1);
    assert_int_equal(srm__fence_quorum(&fx->f, true, true, (uint32_t[]){1, 3}, 2), 0);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), 0);
    srm__fence_quorum(&fx->f, true, false, NULL, 0); /* not quorate, members {1,3} kept */
    assert_int_equal(fx->f.n, 0);
    srm__fence_quorum(&fx->f, true, false, (uint32_t[]){1, 2}, 2);
    srm__fence_set_peer(&fx->f, 2);
    assert_false(srm__fence_blocked(&fx->f));
}

static void test_quorum_off(void **state)
{
    struct fixture *fx = *state;

    assert_false(srm__fence_blocked(&fx->f));
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 1000, 0, NULL), 0);
    assert_int_equal(fq_cut_off(&fx->q), 0);
    assert_int_equal(fq_corosync_dies(&fx->q), 0);
    assert_int_equal(serving(fx, 1, 1), 1);
    /* The lease still applies. */
    srm__fence_tick(&fx->f, 1000);
    assert_int_equal(serving(fx, 1000, 1), 0);
}

/* ------------------------------------------------------------------------ releases */

static void test_release_and_drain_timeout(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 4, 60000, 0, NULL), 0);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 2, 4, 60000, 0, NULL), 0);
    assert_int_equal(srm__fence_release_begin(&fx->f, 100, 3, 1000, 9), SRM_ENOT_GRANTED);
    assert_int_equal(srm__fence_release_begin(&fx->f, 100, 1, 1000, 10), 0);
    assert_int_equal(srm__fence_release_begin(&fx->f, 100, 1, 1000, 11), -EALREADY);
    /* Draining: no new writes; a SERVE of it waits for the release to finish. */
    assert_int_equal(serving(fx, 100, 1), 0);
    assert_int_equal(serving(fx, 100, 2), 1);
    assert_int_equal(srm__fence_serve(&fx->f, 100, 1, 5, 60000, 0, NULL), -EBUSY);
    assert_int_equal(srm__fence_next_deadline(&fx->f), 1100);
    /* Acknowledged in time: gone without a callback. */
    assert_int_equal(srm__fence_release_done(&fx->f, 10), 0);
    assert_int_equal(srm__fence_release_done(&fx->f, 10), -ENOENT);
    assert_null(srm__fence_find(&fx->f, 1));
    assert_int_equal(fx->stops.calls, 0);
    /* Not acknowledged: the library stops it at the drain timeout. */
    assert_int_equal(srm__fence_release_begin(&fx->f, 200, 2, 500, 12), 0);
    assert_int_equal(srm__fence_tick(&fx->f, 699), 700);
    assert_int_equal(fx->stops.calls, 0);
    srm__fence_tick(&fx->f, 700);
    assert_int_equal(fx->stops.calls, 1);
    assert_int_equal(fx->stops.part, 2);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_DRAIN_TIMEOUT);
    assert_int_equal(fx->stops.gone[0].release_cmd, 12);
    assert_int_equal(fx->f.n, 0);
}

static void test_lease_expiry_during_drain(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 4, 1000, 0, NULL), 0);
    assert_int_equal(srm__fence_release_begin(&fx->f, 100, 1, 5000, 21), 0);
    srm__fence_tick(&fx->f, 1000);
    assert_int_equal(fx->stops.reason, SRM_IPC_REASON_LEASE);
    assert_int_equal(fx->stops.n_gone, 1);
    assert_int_equal(fx->stops.gone[0].state, SRM_IPC_GRANT_DRAINING);
    assert_int_equal(fx->stops.gone[0].release_cmd, 21);
}

/* ------------------------------------------------------------------------ epochs */

static void test_epochs(void **state)
{
    struct fixture *fx = *state;
    bool renewed = true;
    uint64_t epoch = 0;

    fq_all(&fx->q);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 5, 60000, 0, &renewed), 0);
    assert_false(renewed);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 5, 60000, 0, &renewed), 0);
    assert_true(renewed);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 4, 60000, 0, NULL), SRM_ESTALE_EPOCH);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 8, 60000, 0, &renewed), 0);
    assert_false(renewed);
    assert_int_equal(srm__fence_serving(&fx->f, 0, 1, &epoch), 1);
    assert_int_equal(epoch, 8);
    /* A stale refusal of a write made under an older epoch leaves the new grant alone. */
    assert_int_equal(srm__fence_drop_epoch(&fx->f, 1, 5), 0);
    assert_int_equal(srm__fence_drop_epoch(&fx->f, 1, 8), 1);
    assert_null(srm__fence_find(&fx->f, 1));
    assert_int_equal(srm__fence_serve(&fx->f, 0, 0, 1, 1000, 0, NULL), -EINVAL);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 0, 1000, 0, NULL), -EINVAL);
}

static void test_grants_sorted_and_bounded(void **state)
{
    struct fixture *fx = *state;

    fq_all(&fx->q);
    for (uint32_t i = SRM__GRANTS_MAX; i >= 1; i--)
        assert_int_equal(srm__fence_serve(&fx->f, 0, i * 3, 1, 60000, 0, NULL), 0);
    for (size_t i = 1; i < fx->f.n; i++)
        assert_true(fx->f.g[i - 1].part < fx->f.g[i].part);
    assert_int_equal(srm__fence_serve(&fx->f, 0, 1, 1, 60000, 0, NULL), -ENOSPC);
    assert_int_equal(srm__fence_drop(&fx->f, 9, SRM_IPC_REASON_STOPPED, true), 1);
    assert_int_equal(fx->stops.part, 9);
    assert_int_equal(srm__fence_drop(&fx->f, SRM_PART_ALL, SRM_IPC_REASON_STOPPED, false),
                     SRM__GRANTS_MAX - 1);
    assert_int_equal(fx->stops.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_lease_expires_by_own_clock, setup_no_quorum),
        cmocka_unit_test_setup(test_lease_renewals, setup_no_quorum),
        cmocka_unit_test_setup(test_lease_late_messages, setup_no_quorum),
        cmocka_unit_test_setup(test_lease_end_and_long_lease, setup_no_quorum),
        cmocka_unit_test_setup(test_quorum_needed_to_serve, setup_quorum),
        cmocka_unit_test_setup(test_cut_off_fences_at_once, setup_quorum),
        cmocka_unit_test_setup(test_peer_in_sight_keeps_serving, setup_quorum),
        cmocka_unit_test_setup(test_corosync_unreachable, setup_quorum),
        cmocka_unit_test_setup(test_no_peer_and_peer_change, setup_quorum),
        cmocka_unit_test_setup(test_quorum_off, setup_no_quorum),
        cmocka_unit_test_setup(test_release_and_drain_timeout, setup_quorum),
        cmocka_unit_test_setup(test_lease_expiry_during_drain, setup_quorum),
        cmocka_unit_test_setup(test_epochs, setup_quorum),
        cmocka_unit_test_setup(test_grants_sorted_and_bounded, setup_quorum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
