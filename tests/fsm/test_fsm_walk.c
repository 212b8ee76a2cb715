/*
 * The state machine, cell by cell.
 *
 * - The names are those of SPEC.md §3, letter for letter.
 * - Every (state, event) cell, under every combination of facts that matters (HA, quorum,
 *   services, datastore, peer unseen / lost by each kind / in sight in each state with each
 *   set of served partitions and health), is either a transition or a refusal with a
 *   reason; never a missing rule, an out-of-range state or reason, or a silent no-op for an
 *   admin operation.
 * - Every state the machine can stand in leads back to Normal/Normal: both nodes started
 *   from every pair of persisted states return to Normal/Normal in the simulator through
 *   the operations the spec prescribes (recover, fallback, starting services).
 * - The ownership rule: acquisition needs a fresh report, the home node wins a tie, a node
 *   cut off without quorum serves nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scenario.h"
#include "srm_error.h"
#include "srm_fsm.h"

static const char *const spec_states[] = {
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

static const char *const spec_reasons[] = {
    "Normal",
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
    "Unknown",
};

static void test_names_match_spec(void **state)
{
    (void)state;
    assert_int_equal(SRM_FSM_STATE_MAX, sizeof(spec_states) / sizeof(spec_states[0]));
    assert_int_equal(SRM_FSM_REASON_MAX, sizeof(spec_reasons) / sizeof(spec_reasons[0]));
    for (int s = 0; s < SRM_FSM_STATE_MAX; s++) {
        enum srm_fsm_state parsed;
        assert_string_equal(srm_fsm_state_name((enum srm_fsm_state)s), spec_states[s]);
        assert_int_equal(srm_fsm_state_parse(spec_states[s], &parsed), 0);
        assert_int_equal(parsed, s);
    }
    for (int r = 0; r < SRM_FSM_REASON_MAX; r++) {
        enum srm_fsm_reason parsed;
        assert_string_equal(srm_fsm_reason_name((enum srm_fsm_reason)r), spec_reasons[r]);
        assert_int_equal(srm_fsm_reason_parse(spec_reasons[r], &parsed), 0);
        assert_int_equal(parsed, r);
    }
    enum srm_fsm_state st = SRM_FSM_STATE_IDLE;
    assert_int_equal(srm_fsm_state_parse("no such state", &st), -EINVAL);
    assert_int_equal(st, SRM_FSM_STATE_IDLE); /* untouched on failure */
    assert_string_equal(srm_fsm_state_name(SRM_FSM_STATE_MAX), "?");
    for (int e = 0; e < SRM_FSM_EVENT_MAX; e++)
        assert_string_not_equal(srm_fsm_event_name((enum srm_fsm_event_type)e), "?");
}

static void test_table_has_no_missing_cell(void **state)
{
    struct srm_fsm_table_stats st;

    (void)state;
    srm_fsm_table_stats(&st);
    assert_int_equal(st.cells, SRM_FSM_STATE_MAX * SRM_FSM_EVENT_MAX);
    assert_int_equal(st.missing, 0);
    print_message("table: %u cells, %u alternatives, %u cells end in a refusal\n", st.cells,
                  st.alternatives, st.refusals);
}

/* ---- the walk --------------------------------------------------------------------------- */

struct facts {
    bool ha, quorate, db_ok;
    enum srm_fsm_cs cs;
    enum srm_fsm_peer_status peer;
    enum srm_fsm_loss loss;
    struct srm_fsm_report report;
};

static void place(struct srm_fsm *f, enum srm_fsm_state s, enum srm_fsm_reason r,
                  const struct facts *x)
{
    srm_fsm_init(f);
    f->started = true;
    f->state = s;
    f->reason = r;
    f->ha_enabled = x->ha;
    f->quorate = x->quorate;
    f->db_ok = x->db_ok;
    f->cs = x->cs;
    f->peer_status = x->peer;
    f->peer_loss = x->loss;
    f->peer = x->report;
    f->recovering = s == SRM_FSM_STATE_INITIALIZING && x->report.recovering;
}

static struct srm_fsm_event event_for(enum srm_fsm_event_type type, const struct facts *x)
{
    struct srm_fsm_event ev = {.type = type};

    if (type == SRM_FSM_EVENT_PEER_KEEPALIVE || type == SRM_FSM_EVENT_PEER_BACK)
        ev.u.peer = x->report;
    else if (type == SRM_FSM_EVENT_PEER_LOST)
        ev.u.loss = x->loss;
    return ev;
}

static unsigned cell_accepted[SRM_FSM_STATE_MAX][SRM_FSM_EVENT_MAX];
static unsigned cell_refused[SRM_FSM_STATE_MAX][SRM_FSM_EVENT_MAX];

static void walk_one(enum srm_fsm_state s, enum srm_fsm_reason r, const struct facts *x,
                     unsigned long *steps)
{
    for (int e = SRM_FSM_EVENT_PEER_KEEPALIVE; e < SRM_FSM_EVENT_MAX; e++) {
        struct srm_fsm f, before;
        struct srm_fsm_step st;
        struct srm_fsm_event ev = event_for((enum srm_fsm_event_type)e, x);

        place(&f, s, r, x);
        before = f;
        int rc = srm_fsm_step(&f, &ev, &st);
        (*steps)++;
        if (rc != 0 && rc != SRM_EREFUSED)
            fail_msg("%s / %s, %s: unexpected %d", srm_fsm_state_name(s), srm_fsm_reason_name(r),
                     srm_fsm_event_name((enum srm_fsm_event_type)e), rc);
        if (st.why == NULL || st.why[0] == '\0')
            fail_msg("%s, %s: no reason given", srm_fsm_state_name(s),
                     srm_fsm_event_name((enum srm_fsm_event_type)e));
        assert_true((unsigned)f.state < SRM_FSM_STATE_MAX);
        assert_true((unsigned)f.reason < SRM_FSM_REASON_MAX);
        if (rc == SRM_EREFUSED) {
            /* A refusal changes nothing. */
            assert_memory_equal(&f, &before, sizeof(f));
            assert_int_equal(st.effects, 0);
            cell_refused[s][e]++;
        } else {
            cell_accepted[s][e]++;
            /* srm_fsm_check() agrees with srm_fsm_step(). */
            if (e >= SRM_FSM_EVENT_ADMIN_FAILOVER && e <= SRM_FSM_EVENT_ADMIN_RECOVER) {
                const char *why = NULL;
                assert_int_equal(srm_fsm_check(&before, (enum srm_fsm_event_type)e, &why), 0);
            }
            /* A state or reason change is persisted and sent. */
            if (st.from != st.to || st.from_reason != st.to_reason) {
                assert_true(st.effects & SRM_FSM_EFFECT(PERSIST));
                assert_true(st.effects & SRM_FSM_EFFECT(SEND_STATE));
            }
        }
        /* An admin operation is never silently ignored: it changes the state or is
         * refused with a reason. */
        if (e >= SRM_FSM_EVENT_ADMIN_FAILOVER && e <= SRM_FSM_EVENT_ADMIN_RECOVER && rc == 0)
            assert_true(st.from != st.to || st.from_reason != st.to_reason);
    }
}

static void test_walk_every_cell(void **state)
{
    static const enum srm_fsm_cs cs_values[] = {SRM_FSM_CS_PENDING, SRM_FSM_CS_UP, SRM_FSM_CS_DOWN,
                                                SRM_FSM_CS_STOPPED};
    static const enum srm_fsm_reason reasons[] = {
        SRM_FSM_REASON_NORMAL,      SRM_FSM_REASON_ADMIN_REQUEST,   SRM_FSM_REASON_INITIALIZATION,
        SRM_FSM_REASON_CS_DOWN,     SRM_FSM_REASON_DB_FAILURE,      SRM_FSM_REASON_PEER_DOWN,
        SRM_FSM_REASON_PEER_REBOOT, SRM_FSM_REASON_AUTO_RECOVER_DB,
    };
    unsigned long steps = 0;

    (void)state;
    memset(cell_accepted, 0, sizeof(cell_accepted));
    memset(cell_refused, 0, sizeof(cell_refused));
    for (int s = 0; s < SRM_FSM_STATE_MAX; s++)
        for (size_t ri = 0; ri < sizeof(reasons) / sizeof(reasons[0]); ri++)
            for (int bits = 0; bits < 8; bits++)
                for (size_t ci = 0; ci < 4; ci++) {
                    struct facts x = {.ha = bits & 1,
                                      .quorate = bits & 2,
                                      .db_ok = bits & 4,
                                      .cs = cs_values[ci]};
                    /* peer never seen, and lost in each way */
                    x.peer = SRM_FSM_PEER_UNKNOWN;
                    walk_one((enum srm_fsm_state)s, reasons[ri], &x, &steps);
                    for (int l = 0; l < SRM_FSM_LOSS_MAX; l++) {
                        x.peer = SRM_FSM_PEER_LOST;
                        x.loss = (enum srm_fsm_loss)l;
                        walk_one((enum srm_fsm_state)s, reasons[ri], &x, &steps);
                    }
                    /* peer in sight, in every state, serving every set, healthy or not */
                    x.peer = SRM_FSM_PEER_VISIBLE;
                    for (int ps = 0; ps <= SRM_FSM_STATE_MAX; ps++) /* MAX: a future state */
                        for (int serves = 0; serves < 4; serves++)
                            for (int h = 0; h < 4; h++) {
                                x.report = (struct srm_fsm_report){
                                    .state = (uint8_t)ps,
                                    .reason = (uint8_t)reasons[(ps + serves) % 8],
                                    .serves = (uint8_t)serves,
                                    .wants = (uint8_t)serves,
                                    .cs_up = h & 1,
                                    .db_ok = h & 2,
                                    .ha_enabled = true,
                                    .recovering = (serves & 1) != 0,
                                    .epoch = (uint32_t)(h & 1),
                                };
                                walk_one((enum srm_fsm_state)s, reasons[ri], &x, &steps);
                            }
                }

    /* Every cell was reached, and every cell that can accept did so at least once. */
    unsigned transitions = 0, refusal_only = 0;
    for (int s = 0; s < SRM_FSM_STATE_MAX; s++)
        for (int e = SRM_FSM_EVENT_PEER_KEEPALIVE; e < SRM_FSM_EVENT_MAX; e++) {
            assert_true(cell_accepted[s][e] + cell_refused[s][e] > 0);
            if (cell_accepted[s][e])
                transitions++;
            else
                refusal_only++;
        }
    print_message("walk: %lu steps; %u cells accept the event under some facts, %u always "
                  "refuse it\n",
                  steps, transitions, refusal_only);
}

static void test_start_is_refused_once_started(void **state)
{
    struct srm_fsm f;
    struct srm_fsm_step st;
    struct srm_fsm_event start = {.type = SRM_FSM_EVENT_START,
                                  .u.start = {.kind = SRM_FSM_START_FRESH, .cs = SRM_FSM_CS_UP}};
    struct srm_fsm_event ka = {.type = SRM_FSM_EVENT_PEER_KEEPALIVE};

    (void)state;
    srm_fsm_init(&f);
    assert_int_equal(srm_fsm_step(&f, &ka, &st), SRM_EREFUSED); /* not started */
    assert_int_equal(srm_fsm_step(&f, &start, &st), 0);
    assert_int_equal(st.to, SRM_FSM_STATE_INITIALIZING);
    assert_true(st.effects & SRM_FSM_EFFECT(START_SERVICES));
    assert_int_equal(srm_fsm_step(&f, &start, &st), SRM_EREFUSED);
    assert_string_equal(st.why, "already started");

    /* malformed events */
    struct srm_fsm_event bad = {.type = SRM_FSM_EVENT_MAX};
    assert_int_equal(srm_fsm_step(&f, &bad, &st), -EINVAL);
    struct srm_fsm_event badloss = {.type = SRM_FSM_EVENT_PEER_LOST, .u.loss = SRM_FSM_LOSS_MAX};
    assert_int_equal(srm_fsm_step(&f, &badloss, &st), -EINVAL);
    struct srm_fsm g;
    srm_fsm_init(&g);
    struct srm_fsm_event badstart = {
        .type = SRM_FSM_EVENT_START,
        .u.start = {.kind = SRM_FSM_START_RESUME, .state = SRM_FSM_STATE_MAX}};
    assert_int_equal(srm_fsm_step(&g, &badstart, &st), -EINVAL);
}

static void test_resume_rows_5_to_9_and_21(void **state)
{
    static const struct {
        enum srm_fsm_state persisted;
        enum srm_fsm_state state;
        enum srm_fsm_reason reason;
    } rows[] = {
        {SRM_FSM_STATE_IDLE, SRM_FSM_STATE_IDLE, SRM_FSM_REASON_INITIALIZATION},
        {SRM_FSM_STATE_BACKUP_MODE, SRM_FSM_STATE_BACKUP_MODE, SRM_FSM_REASON_INITIALIZATION},
        {SRM_FSM_STATE_TAKING_OVER, SRM_FSM_STATE_TAKING_OVER, SRM_FSM_REASON_INITIALIZATION},
        {SRM_FSM_STATE_TAKING_BACK, SRM_FSM_STATE_TAKING_BACK, SRM_FSM_REASON_INITIALIZATION},
        {SRM_FSM_STATE_FAILED_MODE, SRM_FSM_STATE_FAILED_MODE, SRM_FSM_REASON_UNKNOWN},
        {SRM_FSM_STATE_NORMAL, SRM_FSM_STATE_INITIALIZING, SRM_FSM_REASON_INITIALIZATION},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct srm_fsm f;
        struct srm_fsm_step st;
        struct srm_fsm_event ev = {.type = SRM_FSM_EVENT_START,
                                   .u.start = {.kind = SRM_FSM_START_RESUME,
                                               .state = rows[i].persisted,
                                               .reason = SRM_FSM_REASON_ADMIN_REQUEST,
                                               .ha_enabled = true,
                                               .quorate = true,
                                               .db_ok = true,
                                               .cs = SRM_FSM_CS_PENDING}};
        srm_fsm_init(&f);
        assert_int_equal(srm_fsm_step(&f, &ev, &st), 0);
        assert_int_equal(f.state, rows[i].state);
        assert_int_equal(f.reason, rows[i].reason);
    }
    /* An unreadable persisted state: Unknown (row 24). */
    struct srm_fsm f;
    struct srm_fsm_event ev = {.type = SRM_FSM_EVENT_START,
                               .u.start = {.kind = SRM_FSM_START_CORRUPT}};
    srm_fsm_init(&f);
    assert_int_equal(srm_fsm_step(&f, &ev, NULL), 0);
    assert_int_equal(f.state, SRM_FSM_STATE_UNKNOWN);
    assert_int_equal(f.reason, SRM_FSM_REASON_UNKNOWN);
}

static void test_admin_refusals_say_why(void **state)
{
    struct facts x = {.ha = false,
                      .quorate = true,
                      .db_ok = true,
                      .cs = SRM_FSM_CS_UP,
                      .peer = SRM_FSM_PEER_VISIBLE,
                      .report = {.state = SRM_FSM_STATE_NORMAL,
                                 .serves = 1,
                                 .wants = 1,
                                 .cs_up = true,
                                 .db_ok = true,
                                 .ha_enabled = true}};
    struct srm_fsm f;
    const char *why = NULL;

    (void)state;
    place(&f, SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), SRM_EREFUSED);
    assert_non_null(strstr(why, "HA is disabled"));
    x.ha = true;
    x.peer = SRM_FSM_PEER_LOST;
    place(&f, SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), SRM_EREFUSED);
    assert_non_null(strstr(why, "not reachable"));
    x.peer = SRM_FSM_PEER_VISIBLE;
    x.report.state = SRM_FSM_STATE_FAILED_OVER;
    place(&f, SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), SRM_EREFUSED);
    assert_non_null(strstr(why, "not Normal"));
    x.report.state = SRM_FSM_STATE_NORMAL;
    place(&f, SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_FAILOVER, &why), 0);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_RECOVER, &why), SRM_EREFUSED);
    assert_non_null(strstr(why, "Running in Failed Mode or Unknown"));
    place(&f, SRM_FSM_STATE_FAILED_OVER_CS_DOWN, SRM_FSM_REASON_CS_DOWN, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_FALLBACK, &why), SRM_EREFUSED);
    assert_non_null(strstr(why, "critical services are not running"));
    place(&f, SRM_FSM_STATE_FAILED_MODE, SRM_FSM_REASON_UNKNOWN, &x);
    assert_int_equal(srm_fsm_check(&f, SRM_FSM_EVENT_ADMIN_RECOVER, &why), 0);
}

static void test_ownership_rule(void **state)
{
    struct srm_fsm_own_plan plan;
    struct facts x = {.ha = true,
                      .quorate = true,
                      .db_ok = true,
                      .cs = SRM_FSM_CS_UP,
                      .peer = SRM_FSM_PEER_VISIBLE,
                      .report = {.state = SRM_FSM_STATE_FAILING_OVER,
                                 .serves = 0,
                                 .wants = 0,
                                 .cs_up = true,
                                 .db_ok = true}};
    struct srm_fsm f;

    (void)state;
    /* Taking over a peer in sight: only on a fresh report where it gave its users up. */
    place(&f, SRM_FSM_STATE_TAKING_OVER, SRM_FSM_REASON_ADMIN_REQUEST, &x);
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, false, false, &plan);
    assert_int_equal(plan.acquire, 0);
    assert_int_equal(plan.blocked, SRM_FSM_PART_PEER);
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, false, true, &plan);
    assert_int_equal(plan.acquire, SRM_FSM_PART_PEER);
    f.peer.serves = SRM_FSM_PART_OWN; /* it still serves them */
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, false, true, &plan);
    assert_int_equal(plan.acquire, 0);
    f.peer.serves = 0;
    f.peer.wants = SRM_FSM_PART_OWN; /* it wants them back: the home node wins */
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, false, true, &plan);
    assert_int_equal(plan.acquire, 0);
    /* Done once both partitions are held. */
    srm_fsm_own_plan(&f, SRM_FSM_PART_ALL, false, true, &plan);
    assert_int_equal(plan.complete, SRM_FSM_EVENT_TAKEOVER_DONE);

    /* Out of sight: quorum and the fence delay. */
    x.peer = SRM_FSM_PEER_LOST;
    place(&f, SRM_FSM_STATE_TAKING_OVER, SRM_FSM_REASON_PEER_DOWN, &x);
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, false, true, &plan);
    assert_int_equal(plan.acquire, 0);
    srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, true, true, &plan);
    assert_int_equal(plan.acquire, SRM_FSM_PART_PEER);
    /* Without quorum: fence, serve nothing (HA on or off). */
    x.quorate = false;
    for (int ha = 0; ha < 2; ha++) {
        x.ha = ha;
        place(&f, SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL, &x);
        assert_int_equal(srm_fsm_desired(&f, SRM_FSM_PART_OWN), 0);
        srm_fsm_own_plan(&f, SRM_FSM_PART_OWN, true, true, &plan);
        assert_int_equal(plan.release, SRM_FSM_PART_OWN);
    }
    /* Services down: nothing is acquired. */
    x.quorate = true;
    x.cs = SRM_FSM_CS_PENDING;
    place(&f, SRM_FSM_STATE_TAKING_OVER, SRM_FSM_REASON_PEER_DOWN, &x);
    srm_fsm_own_plan(&f, 0, true, true, &plan);
    assert_int_equal(plan.acquire, 0);
}

static void test_no_state_is_a_dead_end(void **state)
{
    int pairs = 0;

    (void)state;
    /* SRM_FSM_STATE_MAX stands for "nothing persisted". */
    for (int a = 0; a <= SRM_FSM_STATE_MAX; a++)
        for (int b = 0; b <= SRM_FSM_STATE_MAX; b++) {
            char why[600];
            if (scenario_from_states((enum srm_fsm_state)a, (enum srm_fsm_state)b, NULL, why,
                                     sizeof(why)) != 0)
                fail_msg("from %s / %s: %s", srm_fsm_state_name((enum srm_fsm_state)a),
                         srm_fsm_state_name((enum srm_fsm_state)b), why);
            pairs++;
        }
    print_message("%d pairs of starting states all return to Normal/Normal\n", pairs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_match_spec),
        cmocka_unit_test(test_table_has_no_missing_cell),
        cmocka_unit_test(test_walk_every_cell),
        cmocka_unit_test(test_start_is_refused_once_started),
        cmocka_unit_test(test_resume_rows_5_to_9_and_21),
        cmocka_unit_test(test_admin_refusals_say_why),
        cmocka_unit_test(test_ownership_rule),
        cmocka_unit_test(test_no_state_is_a_dead_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
