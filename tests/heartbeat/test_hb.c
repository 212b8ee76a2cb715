/*
 * The heartbeat handle (heartbeat/hb.c and hb_corosync.c) driven through a fake Corosync
 * (fake_corosync.c, linked with -Wl,--wrap) and a fake clock: every event goes through the
 * library's real CPG and quorum callbacks. The shared log (fake_log) records callbacks and
 * the fake's finalize in order, so ordering rules are asserted as strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_corosync.h"
#include "internal.h"
#include "srm_error.h"
#include "srm_hb.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define T0       1000u /* start time */
#define INTERVAL 100u
#define TIMEOUT  1000u
#define INIT     3000u
#define RECONN   500u
#define OUR_INC  0x1111u
#define PEER_INC 0x2222u
#define PEER_PID 2002u

struct ctx {
    struct srm_hb *hb;
    char last_payload[SRM_HB_PAYLOAD_MAX + 1];
    struct srm_hb_peer_lost last_lost;
    struct srm_hb_peer_back last_back;
    bool send_from_keepalive;
    bool log_views; /* membership_cb logs "view(peer,quorate)" */
};

static struct ctx C;

static void keepalive_cb(struct srm_hb *hb, const struct srm_hb_keepalive *ka, void *data)
{
    struct ctx *c = data;

    assert_ptr_equal(c, &C);
    fake_logf("ka(%llu) ", (unsigned long long)ka->seq);
    snprintf(c->last_payload, sizeof(c->last_payload), "%.*s", (int)ka->len,
             ka->payload ? (const char *)ka->payload : "");
    if (c->send_from_keepalive)
        assert_int_equal(srm_hb_send(hb, T0, "reply", 5), 0);
}

static void peer_back_cb(struct srm_hb *hb, const struct srm_hb_peer_back *b, void *data)
{
    (void)hb;
    ((struct ctx *)data)->last_back = *b;
    fake_logf("back(%s,%d) ", srm_hb_back_name(b->kind), b->was_lost);
}

static void peer_lost_cb(struct srm_hb *hb, const struct srm_hb_peer_lost *l, void *data)
{
    (void)hb;
    ((struct ctx *)data)->last_lost = *l;
    fake_logf("lost(%s,init=%d,q=%d) ", srm_hb_loss_name(l->kind), l->during_init, l->quorate);
}

static void quorum_cb(struct srm_hb *hb, bool quorate, void *data)
{
    (void)hb;
    (void)data;
    fake_logf("quorum(%d) ", quorate);
}

static void membership_cb(struct srm_hb *hb, bool peer_present, bool quorate, void *data)
{
    (void)hb;
    if (((struct ctx *)data)->log_views)
        fake_logf("view(%d,%d) ", peer_present, quorate);
}

static void error_cb(struct srm_hb *hb, int err, void *data)
{
    (void)hb;
    (void)data;
    fake_logf("err(%s) ", srm_errname(err));
}

static void fds_cb(struct srm_hb *hb, const int *fds, size_t nfds, void *data)
{
    int mine[SRM_HB_FDS_MAX];

    (void)data;
    assert_int_equal(srm_hb_fds(hb, mine), (int)nfds);
    if (nfds == 2) {
        assert_int_equal(fds[0], fake.cpg_fd);
        assert_int_equal(fds[1], fake.quorum_fd);
    }
    fake_logf("fds(%zu) ", nfds);
}

static const struct srm_hb_callbacks cbs = {
    .keepalive_cb = keepalive_cb,
    .peer_back_cb = peer_back_cb,
    .peer_lost_cb = peer_lost_cb,
    .quorum_cb = quorum_cb,
    .error_cb = error_cb,
    .fds_cb = fds_cb,
    .membership_cb = membership_cb,
};

static struct srm_hb_options base_opts(void)
{
    return (struct srm_hb_options){
        .group = "srm.g1",
        .node_id = 1,
        .node_name = "n1",
        .peer_node_id = 2,
        .keepalive_interval_ms = INTERVAL,
        .keepalive_timeout_ms = TIMEOUT,
        .init_timeout_ms = INIT,
        .reconnect_interval_ms = RECONN,
        .incarnation = OUR_INC,
        .callbacks = &cbs,
        .data = &C,
    };
}

static int setup(void **state)
{
    struct srm_hb_options o = base_opts();

    (void)state;
    fake_reset();
    memset(&C, 0, sizeof(C));
    return srm_hb_new(&o, &C.hb);
}

static int teardown(void **state)
{
    (void)state;
    srm_hb_free(C.hb);
    C.hb = NULL;
    fake_reset();
    return 0;
}

/* Starts at T0 and clears the log and our looped-back first keepalive. */
static void start(void)
{
    assert_int_equal(srm_hb_start(C.hb, T0), 0);
    assert_string_equal(fake_log, "fds(2) quorum(1) ");
    fake_drop_queue();
    fake_log_clear();
}

static size_t envelope(uint8_t *buf, uint32_t sender, uint64_t inc, uint64_t seq, uint8_t flags,
                       const char *group, const char *payload)
{
    struct srm__hb_envelope env = {
        .flags = flags,
        .sender = sender,
        .incarnation = inc,
        .seq = seq,
        .group = group,
        .group_len = strlen(group),
        .payload = payload,
        .payload_len = payload ? strlen(payload) : 0,
    };
    size_t len = 0;

    assert_int_equal(srm__hb_envelope_encode(&env, buf, SRM__HB_ENVELOPE_MAX, &len), 0);
    return len;
}

/* The peer (node 2) multicasts a keepalive; dispatched at `now`. */
static void peer_says(uint64_t now, uint64_t inc, uint32_t pid, uint64_t seq, uint8_t flags,
                      const char *payload)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    size_t len = envelope(buf, 2, inc, seq, flags, "srm.g1", payload);

    fake_queue_deliver(2, pid, buf, len);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.cpg_fd, now), 0);
}

static void dispatch_cpg(uint64_t now)
{
    assert_int_equal(srm_hb_dispatch(C.hb, fake.cpg_fd, now), 0);
}

static void tick(uint64_t now, uint64_t expect_next)
{
    uint64_t next = 0;

    assert_int_equal(srm_hb_tick(C.hb, now, &next), 0);
    if (expect_next)
        assert_int_equal(next, expect_next);
}

static void last_sent(struct srm__hb_envelope *env)
{
    assert_int_equal(srm__hb_envelope_decode(fake.last_sent, fake.last_sent_len, "srm.g1", 6, env),
                     0);
}

/* The peer is heard at T0 + 200 with "p1": FIRST. */
static void peer_heard(void)
{
    peer_says(T0 + 200, PEER_INC, PEER_PID, 1, 0, "p1");
    assert_string_equal(fake_log, "back(first,0) ka(1) ");
    fake_log_clear();
}

/* ------------------------------------------------------------------ options */

static void test_options_rejected(void **state)
{
    struct srm_hb_options o;
    struct srm_hb *hb = (struct srm_hb *)0x1;
    char longname[SRM_HB_GROUP_MAX + 2];

    (void)state;
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';

    o = base_opts();
    o.group = NULL;
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    o = base_opts();
    o.group = "";
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    o.group = "srm g1";
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    o.group = longname;
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    longname[SRM_HB_GROUP_MAX] = '\0';
    o.group = longname;
    assert_int_equal(srm_hb_new(&o, &hb), 0);
    srm_hb_free(hb);
    hb = (struct srm_hb *)0x1;

    o = base_opts();
    o.peer_node_id = 1;
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    o = base_opts();
    o.keepalive_interval_ms = 5;
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    o = base_opts();
    o.keepalive_timeout_ms = INTERVAL;
    assert_int_equal(srm_hb_new(&o, &hb), -EINVAL);
    assert_ptr_equal(hb, (struct srm_hb *)0x1); /* untouched on failure */
    assert_int_equal(srm_hb_new(NULL, &hb), -EINVAL);
    o = base_opts();
    assert_int_equal(srm_hb_new(&o, NULL), -EINVAL);
    srm_hb_free(NULL);
}

static void test_defaults_from_spec(void **state)
{
    struct srm_hb_options o = base_opts();
    struct srm_hb *hb;
    uint64_t next = 0;

    (void)state;
    o.keepalive_interval_ms = 0;
    o.keepalive_timeout_ms = 0;
    o.init_timeout_ms = 0;
    o.incarnation = 0; /* random */
    o.callbacks = NULL;
    assert_int_equal(srm_hb_new(&o, &hb), 0);
    assert_true(srm_hb_incarnation(hb) != 0);
    assert_int_equal(srm_hb_start(hb, 0), 0);
    assert_int_equal(srm_hb_tick(hb, 0, &next), 0);
    assert_int_equal(next, 15000); /* SPEC.md §6: keepalive interval 15 s */
    assert_int_equal(srm_hb_tick(hb, 119999, NULL), 0);
    struct srm_hb_peer peer;
    srm_hb_peer_get(hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_UNKNOWN);
    assert_int_equal(srm_hb_tick(hb, 120000, NULL), 0); /* initialization timeout 120 s */
    srm_hb_peer_get(hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_LOST);
    srm_hb_free(hb);
}

/* ------------------------------------------------------------------ sending */

static void test_start_joins_and_sends(void **state)
{
    struct srm__hb_envelope env;
    int fds[SRM_HB_FDS_MAX];

    (void)state;
    assert_int_equal(srm_hb_send(C.hb, 0, "boot", 4), 1); /* before start: held */
    start();
    assert_int_equal(fake.joins, 1);
    assert_true(srm_hb_connected(C.hb));
    assert_true(srm_hb_quorate(C.hb));
    assert_int_equal(srm_hb_fds(C.hb, fds), 2);
    assert_int_equal(fds[0], fake.cpg_fd);
    assert_int_equal(fake.n_sent, 1);
    last_sent(&env);
    assert_int_equal(env.seq, 1);
    assert_int_equal(env.sender, 1);
    assert_int_equal(env.incarnation, OUR_INC);
    assert_int_equal(env.flags, 0);
    assert_int_equal(env.payload_len, 4);
    assert_memory_equal(env.payload, "boot", 4);
    assert_int_equal(srm_hb_start(C.hb, T0), -EINVAL);
}

static void test_keepalive_every_interval(void **state)
{
    struct srm__hb_envelope env;

    (void)state;
    start();
    tick(T0 + INTERVAL - 1, T0 + INTERVAL);
    assert_int_equal(fake.n_sent, 1);
    tick(T0 + INTERVAL, T0 + 2 * INTERVAL);
    assert_int_equal(fake.n_sent, 2);
    last_sent(&env);
    assert_int_equal(env.seq, 2);
    /* A late tick sends once and counts the interval from then. */
    tick(T0 + 350, T0 + 450);
    assert_int_equal(fake.n_sent, 3);
    assert_int_equal(fake.dispatches, 0);
}

static void test_send_now_resets_interval(void **state)
{
    struct srm__hb_envelope env;
    char big[SRM_HB_PAYLOAD_MAX + 1];

    (void)state;
    start();
    assert_int_equal(srm_hb_send(C.hb, T0 + 50, "state=normal", 12), 0);
    assert_int_equal(fake.n_sent, 2);
    last_sent(&env);
    assert_int_equal(env.seq, 2);
    assert_memory_equal(env.payload, "state=normal", 12);
    tick(T0 + 100, T0 + 150);
    assert_int_equal(fake.n_sent, 2);
    tick(T0 + 150, T0 + 250);
    assert_int_equal(fake.n_sent, 3);
    last_sent(&env);
    assert_memory_equal(env.payload, "state=normal", 12); /* the latest payload is kept */

    memset(big, 'x', sizeof(big));
    assert_int_equal(srm_hb_send(C.hb, T0 + 160, big, sizeof(big)), SRM_ETOOBIG);
    assert_int_equal(srm_hb_send(C.hb, T0 + 160, NULL, 3), -EINVAL);
    assert_int_equal(srm_hb_send(C.hb, T0 + 160, big, SRM_HB_PAYLOAD_MAX), 0);
    last_sent(&env);
    assert_int_equal(env.payload_len, SRM_HB_PAYLOAD_MAX);
    assert_int_equal(srm_hb_send(C.hb, T0 + 170, NULL, 0), 0);
    last_sent(&env);
    assert_int_equal(env.payload_len, 0);
}

static void test_flow_control_retried_after_dispatch(void **state)
{
    struct srm_hb_stats st;
    struct srm__hb_envelope env;

    (void)state;
    start();
    fake.mcast_try_again = 3;
    /* srm_hb_send never dispatches (callbacks never run from it): it holds the message. */
    assert_int_equal(srm_hb_send(C.hb, T0 + 10, "s1", 2), 1);
    assert_int_equal(fake.dispatches, 0);
    assert_int_equal(fake.n_sent, 1);
    /* A newer payload replaces the held one: messages are snapshots. */
    assert_int_equal(srm_hb_send(C.hb, T0 + 11, "s2", 2), 1);
    tick(T0 + 12, T0 + 12 + INTERVAL);
    assert_int_equal(fake.dispatches, 1); /* dispatch, retry: out */
    assert_int_equal(fake.n_sent, 2);
    last_sent(&env);
    assert_memory_equal(env.payload, "s2", 2);
    assert_int_equal(env.seq, 2);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.flow_control, 3);
    assert_int_equal(st.sent, 2);
}

static void test_flow_control_bounded(void **state)
{
    struct srm_hb_stats st;

    (void)state;
    start();
    fake.mcast_try_again = 1000;
    tick(T0 + INTERVAL, T0 + INTERVAL + SRM__HB_RETRY_MS);
    assert_int_equal(fake.dispatches, SRM__HB_FLOW_RETRIES);
    assert_int_equal(fake.n_sent, 1);
    fake.mcast_try_again = 0;
    tick(T0 + INTERVAL + SRM__HB_RETRY_MS, T0 + 2 * INTERVAL + SRM__HB_RETRY_MS);
    assert_int_equal(fake.n_sent, 2);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.flow_control, SRM__HB_FLOW_RETRIES + 1);
}

static void test_send_error_is_not_cs_ok(void **state)
{
    struct srm_hb_stats st;

    (void)state;
    start();
    /* Any answer but CS_OK (1) is a failure, including small "truthy" codes. */
    fake.mcast_error = CS_ERR_NOT_EXIST;
    assert_int_equal(srm_hb_send(C.hb, T0 + 10, "x", 1), SRM_ECOROSYNC);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.send_errors, 1);
    assert_int_equal(st.sent, 1);
    fake.mcast_error = CS_OK;
    tick(T0 + 10 + SRM__HB_RETRY_MS, 0);
    assert_int_equal(fake.n_sent, 2);
}

static void test_join_try_again(void **state)
{
    (void)state;
    fake.join_try_again = 2;
    assert_int_equal(srm_hb_start(C.hb, T0), 0);
    assert_false(srm_hb_connected(C.hb));
    assert_int_equal(fake.n_sent, 0);
    tick(T0 + SRM__HB_RETRY_MS - 1, T0 + SRM__HB_RETRY_MS);
    tick(T0 + SRM__HB_RETRY_MS, T0 + 2 * SRM__HB_RETRY_MS);
    assert_false(srm_hb_connected(C.hb));
    tick(T0 + 2 * SRM__HB_RETRY_MS, 0);
    assert_true(srm_hb_connected(C.hb));
    assert_int_equal(fake.joins, 1);
    assert_int_equal(fake.n_sent, 1);
}

/* ------------------------------------------------------------------ peer events */

static void test_peer_first_heard(void **state)
{
    struct srm_hb_peer peer;
    struct srm_hb_stats st;

    (void)state;
    start();
    peer_heard();
    assert_string_equal(C.last_payload, "p1");
    assert_int_equal(C.last_back.kind, SRM_HB_BACK_FIRST);
    assert_int_equal(C.last_back.previous_incarnation, 0);
    srm_hb_peer_get(C.hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_ALIVE);
    assert_int_equal(peer.pid, PEER_PID);
    assert_int_equal(peer.incarnation, PEER_INC);
    assert_int_equal(peer.last_heard_ms, T0 + 200);
    peer_says(T0 + 300, PEER_INC, PEER_PID, 2, 0, "p2");
    assert_string_equal(fake_log, "ka(2) ");
    assert_string_equal(C.last_payload, "p2");
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.received, 2);
    assert_int_equal(st.ignored, 0);
    assert_int_equal(st.back[SRM_HB_BACK_FIRST], 1);
}

static void test_init_timeout(void **state)
{
    (void)state;
    start();
    tick(T0 + INIT - 1, 0);
    assert_string_equal(fake_log, "");
    tick(T0 + INIT, 0);
    assert_string_equal(fake_log, "lost(timeout,init=1,q=1) ");
    assert_int_equal(C.last_lost.incarnation, 0);
    assert_int_equal(C.last_lost.last_heard_ms, 0);
    fake_log_clear();
    tick(T0 + 10 * INIT, 0);
    assert_string_equal(fake_log, ""); /* reported once */
    /* Heard at last: FIRST, after a loss. */
    peer_says(T0 + 10 * INIT, PEER_INC, PEER_PID, 1, 0, "late");
    assert_string_equal(fake_log, "back(first,1) ka(1) ");
}

static void test_keepalive_timeout_and_misses(void **state)
{
    struct srm_hb_stats st;

    (void)state;
    start();
    peer_heard(); /* at T0 + 200 */
    /* First miss is due half an interval after the expected keepalive. */
    tick(T0 + 200 + 149, T0 + 200 + 150);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.missed, 0);
    tick(T0 + 200 + 150, 0);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.missed, 1);
    tick(T0 + 200 + TIMEOUT - 1, T0 + 200 + TIMEOUT);
    assert_string_equal(fake_log, "");
    /* The keepalive timeout applies once the peer is known, well before the init timeout. */
    tick(T0 + 200 + TIMEOUT, 0);
    assert_string_equal(fake_log, "lost(timeout,init=0,q=1) ");
    assert_int_equal(C.last_lost.incarnation, PEER_INC);
    assert_int_equal(C.last_lost.last_heard_ms, T0 + 200);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.missed, 9); /* (1000 - 50) / 100 */
    assert_int_equal(st.lost[SRM_HB_LOSS_TIMEOUT], 1);
    fake_log_clear();
    /* It returns (SIGCONT): same incarnation, RETURNED. */
    peer_says(T0 + 2000, PEER_INC, PEER_PID, 2, 0, "again");
    assert_string_equal(fake_log, "back(returned,1) ka(2) ");
    fake_log_clear();
    /* A stale sequence number is ignored. */
    peer_says(T0 + 2001, PEER_INC, PEER_PID, 2, 0, "dup");
    assert_string_equal(fake_log, "");
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.ignored, 1);
}

static void test_node_loss(void **state)
{
    (void)state;
    start();
    peer_heard();
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 300);
    assert_string_equal(fake_log, "lost(node,init=0,q=1) ");
    fake_log_clear();
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 301);
    tick(T0 + 5000, 0);
    assert_string_equal(fake_log, ""); /* once per loss, no timeout after it */
}

static void test_process_loss(void **state)
{
    (void)state;
    start();
    peer_heard();
    /* Another process of the peer's node, and a third node: not the peer. */
    fake_queue_left(2, 2999, CPG_REASON_PROCDOWN);
    fake_queue_left(3, 3003, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 300);
    assert_string_equal(fake_log, "");
    fake_queue_left(2, PEER_PID, CPG_REASON_PROCDOWN);
    dispatch_cpg(T0 + 301);
    assert_string_equal(fake_log, "lost(process,init=0,q=1) ");
}

static void test_leave_without_announcement_is_process_loss(void **state)
{
    (void)state;
    start();
    peer_heard();
    fake_queue_left(2, PEER_PID, CPG_REASON_LEAVE);
    dispatch_cpg(T0 + 300);
    assert_string_equal(fake_log, "lost(process,init=0,q=1) ");
}

static void test_membership_before_heard_is_ignored(void **state)
{
    (void)state;
    start();
    /* Never heard: only the initialization timeout decides (SPEC.md §6). */
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 300);
    assert_string_equal(fake_log, "");
}

static void test_announced_restart_no_loss(void **state)
{
    struct srm_hb_peer peer;
    struct srm_hb_stats st;

    (void)state;
    start();
    peer_heard();
    peer_says(T0 + 300, PEER_INC, PEER_PID, 2, SRM_HB_FLAG_RESTARTING, "bye");
    assert_string_equal(fake_log, "ka(2) ");
    srm_hb_peer_get(C.hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_RESTARTING);
    fake_log_clear();
    fake_queue_left(2, PEER_PID, CPG_REASON_LEAVE);
    dispatch_cpg(T0 + 301);
    tick(T0 + 900, 0);
    assert_string_equal(fake_log, "");
    /* Back before the keepalive timeout, with a new incarnation. */
    peer_says(T0 + 1200, 0x3333, 2100, 1, 0, "hello again");
    assert_string_equal(fake_log, "back(restarted,0) ka(1) ");
    assert_int_equal(C.last_back.previous_incarnation, PEER_INC);
    assert_int_equal(C.last_back.ka->incarnation, 0x3333);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(
        st.lost[SRM_HB_LOSS_NODE] + st.lost[SRM_HB_LOSS_PROCESS] + st.lost[SRM_HB_LOSS_TIMEOUT], 0);
}

static void test_announced_restart_then_timeout(void **state)
{
    (void)state;
    start();
    peer_heard();
    peer_says(T0 + 300, PEER_INC, PEER_PID, 2, SRM_HB_FLAG_RESTARTING, "bye");
    fake_queue_left(2, PEER_PID, CPG_REASON_PROCDOWN);
    dispatch_cpg(T0 + 301);
    fake_log_clear();
    tick(T0 + 300 + TIMEOUT - 1, T0 + 300 + TIMEOUT);
    assert_string_equal(fake_log, "");
    tick(T0 + 300 + TIMEOUT, 0);
    assert_string_equal(fake_log, "lost(timeout,init=0,q=1) ");
}

static void test_announced_restart_node_down_still_reported(void **state)
{
    (void)state;
    start();
    peer_heard();
    peer_says(T0 + 300, PEER_INC, PEER_PID, 2, SRM_HB_FLAG_RESTARTING, "bye");
    fake_log_clear();
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 301);
    assert_string_equal(fake_log, "lost(node,init=0,q=1) ");
}

static void test_new_incarnation_while_alive(void **state)
{
    struct srm_hb_stats st;

    (void)state;
    start();
    peer_heard();
    peer_says(T0 + 300, 0x3333, 2100, 1, 0, "new");
    assert_string_equal(fake_log, "back(restarted,0) ka(1) ");
    fake_log_clear();
    /* A late message of the replaced process is ignored. */
    peer_says(T0 + 301, PEER_INC, PEER_PID, 7, 0, "old");
    assert_string_equal(fake_log, "");
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.ignored, 1);
    /* And its pid leaving is not the peer's process leaving. */
    fake_queue_left(2, PEER_PID, CPG_REASON_PROCDOWN);
    dispatch_cpg(T0 + 302);
    assert_string_equal(fake_log, "");
}

static void test_restart_after_process_loss(void **state)
{
    (void)state;
    start();
    peer_heard();
    fake_queue_left(2, PEER_PID, CPG_REASON_PROCDOWN);
    dispatch_cpg(T0 + 300);
    fake_log_clear();
    peer_says(T0 + 800, 0x3333, 2100, 1, 0, "new");
    assert_string_equal(fake_log, "back(restarted,1) ka(1) ");
}

static void test_malformed_ignored_and_counted(void **state)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    struct srm_hb_stats st;
    struct srm_hb_peer peer;
    size_t len;

    (void)state;
    start();
    fake_queue_deliver(2, PEER_PID, "garbage", 7);
    len = envelope(buf, 2, PEER_INC, 1, 0, "srm.g1", "abc");
    fake_queue_deliver(2, PEER_PID, buf, len - 1); /* truncated */
    buf[4] = 2;                                    /* version 2 */
    fake_queue_deliver(2, PEER_PID, buf, len);
    len = envelope(buf, 2, PEER_INC, 1, 0, "srm.g9", "abc"); /* another group */
    fake_queue_deliver(2, PEER_PID, buf, len);
    len = envelope(buf, 3, PEER_INC, 1, 0, "srm.g1", "abc"); /* sender 3 sent by node 2 */
    fake_queue_deliver(2, PEER_PID, buf, len);
    len = envelope(buf, 2, PEER_INC, 1, 0, "srm.g1", "abc");
    buf[12] = 0x7f; /* payload length far over the bound */
    fake_queue_deliver(2, PEER_PID, buf, len);
    len = envelope(buf, 3, 0x4444, 1, 0, "srm.g1", "abc"); /* valid, from a third node */
    fake_queue_deliver(3, 3003, buf, len);
    dispatch_cpg(T0 + 100);
    assert_string_equal(fake_log, "");
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.malformed, 4);
    assert_int_equal(st.foreign, 2);
    assert_int_equal(st.ignored, 1);
    assert_int_equal(st.received, 0);
    srm_hb_peer_get(C.hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_UNKNOWN);
    peer_heard(); /* nothing was lost: the next valid keepalive is FIRST */
}

static void test_peer_joined_gets_keepalive_at_once(void **state)
{
    (void)state;
    start();
    fake_queue_joined(2, PEER_PID);
    dispatch_cpg(T0 + 30);
    assert_int_equal(fake.n_sent, 2);
    fake_queue_joined(3, 3003); /* not the peer */
    dispatch_cpg(T0 + 31);
    assert_int_equal(fake.n_sent, 2);
}

static void test_send_from_callback(void **state)
{
    struct srm__hb_envelope env;

    (void)state;
    start();
    C.send_from_keepalive = true;
    peer_says(T0 + 200, PEER_INC, PEER_PID, 1, 0, "p1");
    assert_int_equal(fake.n_sent, 2);
    last_sent(&env);
    assert_memory_equal(env.payload, "reply", 5);
}

static void test_no_peer(void **state)
{
    struct srm_hb_options o = base_opts();
    struct srm_hb_peer peer;
    struct srm_hb_stats st;
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    size_t len;

    (void)state;
    srm_hb_free(C.hb);
    o.peer_node_id = 0;
    assert_int_equal(srm_hb_new(&o, &C.hb), 0);
    start();
    len = envelope(buf, 2, PEER_INC, 1, 0, "srm.g1", "x");
    fake_queue_deliver(2, PEER_PID, buf, len);
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 10);
    tick(T0 + 100 * INIT, 0);
    assert_string_equal(fake_log, "");
    srm_hb_peer_get(C.hb, &peer);
    assert_int_equal(peer.state, SRM_HB_PEER_NONE);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.ignored, 1);
}

/* ------------------------------------------------------------------ quorum */

static void test_quorum_before_peer_lost(void **state)
{
    (void)state;
    start();
    peer_heard();
    /* The membership change that removes the peer also cost us quorum, and the quorum
     * service has not told us yet: the loss still comes after the quorum change. */
    fake.quorate = 0;
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 300);
    assert_string_equal(fake_log, "quorum(0) lost(node,init=0,q=0) ");
    assert_false(srm_hb_quorate(C.hb));
    fake_log_clear();
    /* The notification that follows changes nothing. */
    fake_queue_quorum(0);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 301), 0);
    assert_string_equal(fake_log, "");
}

static void test_quorum_notifications(void **state)
{
    (void)state;
    start();
    fake_queue_quorum(0);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 10), 0);
    assert_string_equal(fake_log, "quorum(0) ");
    fake_queue_quorum(1);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 20), 0);
    assert_string_equal(fake_log, "quorum(0) quorum(1) ");
    assert_int_equal(fake.quorum_dispatches, 2);
    assert_int_equal(srm_hb_dispatch(C.hb, 12345, T0 + 30), -EINVAL);
}

static void test_membership_views(void **state)
{
    const uint32_t both[] = {1, 2, 3}, without[] = {1, 3};

    (void)state;
    start();
    C.log_views = true;
    fake_queue_view(1, both, 3);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 10), 0);
    assert_string_equal(fake_log, "view(1,1) ");
    assert_true(srm_hb_peer_in_view(C.hb));
    fake_queue_view(0, without, 2);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 20), 0);
    /* quorum_cb first, then the view */
    assert_string_equal(fake_log, "view(1,1) quorum(0) view(0,0) ");
    assert_false(srm_hb_peer_in_view(C.hb));
}

/* The lost peer's node comes back into the membership but its process stays silent
 * (paused, hung): it is reported lost again after a keepalive timeout. */
static void test_rejoined_but_silent_is_lost_again(void **state)
{
    const uint32_t both[] = {1, 2}, alone[] = {1};

    (void)state;
    start();
    peer_heard();
    C.log_views = true;
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    fake_queue_view(1, alone, 1);
    dispatch_cpg(T0 + 300);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 300), 0);
    assert_string_equal(fake_log, "lost(node,init=0,q=1) view(0,1) ");
    fake_log_clear();
    /* Out of the view, silence is expected: no second loss however long it lasts. */
    tick(T0 + 300 + 3 * TIMEOUT, 0);
    assert_string_equal(fake_log, "");
    /* Back in the view at T0 + 4000: a new keepalive timeout runs from there. */
    fake_queue_view(1, both, 2);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 4000), 0);
    assert_string_equal(fake_log, "view(1,1) ");
    fake_log_clear();
    tick(T0 + 4000 + TIMEOUT - 1, T0 + 4000 + TIMEOUT);
    assert_string_equal(fake_log, "");
    tick(T0 + 4000 + TIMEOUT, 0);
    assert_string_equal(fake_log, "lost(timeout,init=0,q=1) ");
    fake_log_clear();
    /* Reported once. */
    tick(T0 + 4000 + 5 * TIMEOUT, 0);
    assert_string_equal(fake_log, "");
}

/* Back in the view and heard in time: no second loss. */
static void test_rejoined_and_heard(void **state)
{
    const uint32_t both[] = {1, 2};

    (void)state;
    start();
    peer_heard();
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 300);
    fake_log_clear();
    fake_queue_view(1, both, 2);
    assert_int_equal(srm_hb_dispatch(C.hb, fake.quorum_fd, T0 + 4000), 0);
    peer_says(T0 + 4500, PEER_INC + 1, PEER_PID + 1, 1, 0, "p2");
    assert_string_equal(fake_log, "back(restarted,1) ka(1) ");
    fake_log_clear();
    tick(T0 + 4000 + TIMEOUT, 0);
    assert_string_equal(fake_log, "");
}

/* A stall of this process (SIGSTOP, swap): the silence it saw proves nothing. */
static void test_resume_after_stall(void **state)
{
    (void)state;
    start();
    peer_heard(); /* last heard at T0 + 200 */
    srm_hb_resume(C.hb, T0 + 10000);
    tick(T0 + 10000, 0);
    assert_null(strstr(fake_log, "lost("));
    fake_log_clear();
    tick(T0 + 10000 + TIMEOUT - 1, 0);
    assert_null(strstr(fake_log, "lost("));
    fake_log_clear();
    tick(T0 + 10000 + TIMEOUT, 0);
    assert_non_null(strstr(fake_log, "lost(timeout,init=0,q=1) "));
}

/* A stall during initialization leaves the peer a keepalive timeout to be heard. */
static void test_resume_during_init(void **state)
{
    (void)state;
    start();
    srm_hb_resume(C.hb, T0 + INIT + 5000);
    tick(T0 + INIT + 5000, 0);
    assert_null(strstr(fake_log, "lost("));
    fake_log_clear();
    tick(T0 + INIT + 5000 + TIMEOUT, 0);
    assert_non_null(strstr(fake_log, "lost(timeout,init=1,q=1) "));
}

/* Corosync's ring change (token + consensus) holds every message back: the keepalive
 * timeout in force is never shorter than it plus an interval and a margin. */
static void test_timeout_floor_from_corosync(void **state)
{
    uint32_t ka = 0, init = 0, ring = 0;

    (void)state;
    fake.token_ms = 1000;
    fake.consensus_ms = 1200;
    start();
    srm_hb_timeouts(C.hb, &ka, &init, &ring);
    assert_int_equal(ring, 2200);
    assert_int_equal(ka, INTERVAL + 2200 + 500); /* the configured 1000 is too short */
    assert_int_equal(init, INIT);                /* 3000 is long enough */
    peer_heard();                                /* at T0 + 200 */
    tick(T0 + 200 + TIMEOUT + 100, 0);
    assert_null(strstr(fake_log, "lost("));
    fake_log_clear();
    tick(T0 + 200 + ka, 0);
    assert_non_null(strstr(fake_log, "lost(timeout,init=0,q=1) "));
    /* A configured timeout above the floor is kept. */
    assert_int_equal(srm_hb_set_timing(C.hb, INTERVAL, 5000, INIT), 0);
    srm_hb_timeouts(C.hb, &ka, NULL, NULL);
    assert_int_equal(ka, 5000);
}

/* Timing unknown (cmap unreadable): the configured timeouts apply. */
static void test_timeout_without_cmap(void **state)
{
    uint32_t ka = 0, ring = 1;

    (void)state;
    start();
    srm_hb_timeouts(C.hb, &ka, NULL, &ring);
    assert_int_equal(ring, 0);
    assert_int_equal(ka, TIMEOUT);
}

/* ------------------------------------------------------------------ corosync dies */

static void test_corosync_dies_and_returns(void **state)
{
    struct srm_hb_stats st;
    int fds[SRM_HB_FDS_MAX];
    int inits;

    (void)state;
    start();
    peer_heard();
    fake.dispatch_error = CS_ERR_LIBRARY;
    fake.up = false;
    assert_int_equal(srm_hb_dispatch(C.hb, fake.cpg_fd, T0 + 300), SRM_EDISCONNECTED);
    /* Quorum first, then the descriptors go (before they close), then the error. */
    assert_string_equal(fake_log, "quorum(0) fds(0) finalize err(SRM_EDISCONNECTED) ");
    assert_int_equal(srm_hb_fds(C.hb, fds), 0);
    assert_false(srm_hb_connected(C.hb));
    assert_int_equal(srm_hb_dispatch(C.hb, 3, T0 + 301), SRM_EDISCONNECTED);
    assert_int_equal(srm_hb_send(C.hb, T0 + 302, "held", 4), 1);
    fake_log_clear();
    inits = fake.inits;
    tick(T0 + 300 + RECONN - 1, T0 + 300 + RECONN);
    assert_int_equal(fake.inits, inits);
    tick(T0 + 300 + RECONN, 0);
    assert_int_equal(fake.inits, inits + 1); /* failed again: silently */
    assert_string_equal(fake_log, "");
    /* Peer timeouts keep running while disconnected. */
    tick(T0 + 200 + TIMEOUT, 0);
    assert_string_equal(fake_log, "lost(timeout,init=0,q=0) ");
    fake_log_clear();
    fake.up = true;
    fake.dispatch_error = CS_OK;
    tick(T0 + 300 + 2 * RECONN, 0);
    assert_string_equal(fake_log, "fds(2) quorum(1) ");
    assert_true(srm_hb_connected(C.hb));
    assert_int_equal(fake.joins, 2);
    struct srm__hb_envelope env;
    last_sent(&env);
    assert_memory_equal(env.payload, "held", 4);
    srm_hb_stats_get(C.hb, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.disconnects, 1);
}

static void test_send_finds_corosync_gone(void **state)
{
    (void)state;
    start();
    fake.mcast_error = CS_ERR_LIBRARY;
    fake.up = false;
    /* srm_hb_send() runs no callbacks: the loss is reported by the next tick. */
    assert_int_equal(srm_hb_send(C.hb, T0 + 10, "x", 1), SRM_EDISCONNECTED);
    assert_string_equal(fake_log, "");
    assert_int_equal(fake.finalizes, 0);
    tick(T0 + 11, T0 + 11 + INTERVAL);
    assert_string_equal(fake_log, "quorum(0) fds(0) finalize err(SRM_EDISCONNECTED) ");
}

static void test_start_without_corosync(void **state)
{
    (void)state;
    fake.up = false;
    assert_int_equal(srm_hb_start(C.hb, T0), SRM_EDISCONNECTED);
    assert_string_equal(fake_log, "");
    assert_false(srm_hb_quorate(C.hb));
    tick(T0 + RECONN, 0);
    assert_string_equal(fake_log, "");
    fake.up = true;
    tick(T0 + 2 * RECONN, 0);
    assert_string_equal(fake_log, "fds(2) quorum(1) ");
    assert_int_equal(fake.n_sent, 1);
}

static void test_node_id_mismatch(void **state)
{
    (void)state;
    fake.local_nodeid = 5;
    assert_int_equal(srm_hb_start(C.hb, T0), SRM_ECONFIG);
    assert_false(fake.cpg_open);
    assert_false(fake.quorum_open);
}

static void test_node_id_learned(void **state)
{
    struct srm_hb_options o = base_opts();
    struct srm__hb_envelope env;

    (void)state;
    srm_hb_free(C.hb);
    o.node_id = 0;
    fake.local_nodeid = 7;
    assert_int_equal(srm_hb_new(&o, &C.hb), 0);
    start();
    assert_int_equal(srm_hb_node_id(C.hb), 7);
    last_sent(&env);
    assert_int_equal(env.sender, 7);
}

/* ------------------------------------------------------------------ announce restart */

static void test_announce_restart(void **state)
{
    struct srm__hb_envelope env;
    size_t sent;

    (void)state;
    start();
    peer_heard();
    assert_int_equal(srm_hb_announce_restart(C.hb, T0 + 300), 0);
    last_sent(&env);
    assert_int_equal(env.flags, SRM_HB_FLAG_RESTARTING);
    assert_int_equal(srm_hb_announce_restart(C.hb, T0 + 301), -EALREADY);
    assert_int_equal(srm_hb_send(C.hb, T0 + 302, "x", 1), -ESHUTDOWN);
    /* Silent from now on: no keepalives, no callbacks. */
    sent = fake.n_sent;
    fake_queue_left(2, PEER_PID, CPG_REASON_NODEDOWN);
    dispatch_cpg(T0 + 303);
    tick(T0 + 100 * INIT, 0);
    assert_int_equal(fake.n_sent, sent);
    assert_string_equal(fake_log, "");
    srm_hb_free(C.hb);
    C.hb = NULL;
    assert_int_equal(fake.leaves, 1);
    assert_false(fake.cpg_open);
}

static void test_announce_restart_not_seen_back(void **state)
{
    (void)state;
    start();
    fake.loopback = false;
    assert_int_equal(srm_hb_announce_restart(C.hb, T0 + 300), -ETIMEDOUT);
}

static void test_announce_restart_disconnected(void **state)
{
    (void)state;
    fake.up = false;
    srm_hb_start(C.hb, T0);
    assert_int_equal(srm_hb_announce_restart(C.hb, T0 + 300), SRM_EDISCONNECTED);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(srm_hb_loss_name(SRM_HB_LOSS_NODE), "node");
    assert_string_equal(srm_hb_loss_name(SRM_HB_LOSS_PROCESS), "process");
    assert_string_equal(srm_hb_loss_name(SRM_HB_LOSS_TIMEOUT), "timeout");
    assert_string_equal(srm_hb_loss_name(SRM_HB_LOSS_MAX), "?");
    assert_string_equal(srm_hb_back_name(SRM_HB_BACK_RESTARTED), "restarted");
    assert_string_equal(srm_hb_peer_state_name(SRM_HB_PEER_RESTARTING), "restarting");
    assert_string_equal(srm_hb_peer_state_name((enum srm_hb_peer_state)99), "?");
    assert_string_equal(srm_errname(SRM_EDISCONNECTED), "SRM_EDISCONNECTED");
}

static void test_set_timing(void **state)
{
    (void)state;
    start();
    assert_int_equal(srm_hb_set_timing(C.hb, 50, 40, 0), -EINVAL);
    assert_int_equal(srm_hb_set_timing(C.hb, 50, 500, 2000), 0);
    tick(T0, T0 + 50);
    peer_heard();
    tick(T0 + 200 + 499, 0);
    assert_string_equal(fake_log, "");
    tick(T0 + 200 + 500, 0);
    assert_string_equal(fake_log, "lost(timeout,init=0,q=1) ");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_options_rejected),
        T(test_defaults_from_spec),
        T(test_start_joins_and_sends),
        T(test_keepalive_every_interval),
        T(test_send_now_resets_interval),
        T(test_flow_control_retried_after_dispatch),
        T(test_flow_control_bounded),
        T(test_send_error_is_not_cs_ok),
        T(test_join_try_again),
        T(test_peer_first_heard),
        T(test_init_timeout),
        T(test_keepalive_timeout_and_misses),
        T(test_node_loss),
        T(test_process_loss),
        T(test_leave_without_announcement_is_process_loss),
        T(test_membership_before_heard_is_ignored),
        T(test_announced_restart_no_loss),
        T(test_announced_restart_then_timeout),
        T(test_announced_restart_node_down_still_reported),
        T(test_new_incarnation_while_alive),
        T(test_restart_after_process_loss),
        T(test_malformed_ignored_and_counted),
        T(test_peer_joined_gets_keepalive_at_once),
        T(test_send_from_callback),
        T(test_no_peer),
        T(test_quorum_before_peer_lost),
        T(test_quorum_notifications),
        T(test_membership_views),
        T(test_rejoined_but_silent_is_lost_again),
        T(test_rejoined_and_heard),
        T(test_resume_after_stall),
        T(test_resume_during_init),
        T(test_timeout_floor_from_corosync),
        T(test_timeout_without_cmap),
        T(test_corosync_dies_and_returns),
        T(test_send_finds_corosync_gone),
        T(test_start_without_corosync),
        T(test_node_id_mismatch),
        T(test_node_id_learned),
        T(test_announce_restart),
        T(test_announce_restart_not_seen_back),
        T(test_announce_restart_disconnected),
        T(test_names),
        T(test_set_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
