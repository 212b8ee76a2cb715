/*
 * The IPC codec (ha/ipc/msg.c): every message type round-trips, the exact header layout, and
 * every rejection of the strict decoder: truncated, oversized, trailing bytes, bad magic,
 * unknown version and type, reserved bits, body length, out-of-bound fields, bad text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "srm_error.h"
#include "srm_ipc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[SRM_IPC_FRAME_MAX + 64];

static size_t encode(const struct srm_ipc_msg *m)
{
    size_t len = 0;

    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &len), 0);
    assert_true(len >= SRM_IPC_HEADER_LEN && len <= SRM_IPC_FRAME_MAX);
    return len;
}

/* Encodes, decodes, compares field by field (through a second encoding) and checks that
 * every proper prefix and every one-byte extension is refused. */
static void round_trip(const struct srm_ipc_msg *in)
{
    struct srm_ipc_msg *out = calloc(1, sizeof(*out));
    uint8_t again[SRM_IPC_FRAME_MAX];
    size_t len = encode(in), len2 = 0;

    assert_non_null(out);
    assert_int_equal(srm_ipc_msg_decode(buf, len, out), 0);
    assert_int_equal(out->type, in->type);
    assert_int_equal(srm_ipc_msg_encode(out, again, sizeof(again), &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    for (size_t cut = 0; cut < len; cut++)
        assert_true(srm_ipc_msg_decode(buf, cut, out) < 0);
    buf[len] = 0;
    assert_int_equal(srm_ipc_msg_decode(buf, len + 1, out), SRM_EBADMSG);
    free(out);
}

static struct srm_ipc_msg *msg_new(enum srm_ipc_type type)
{
    struct srm_ipc_msg *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->type = type;
    return m;
}

static void test_round_trip_engine_messages(void **state)
{
    struct srm_ipc_msg *m;

    (void)state;
    m = msg_new(SRM_IPC_HELLO);
    m->u.hello.pid = 4242;
    m->u.hello.incarnation = 0x0102030405060708ull;
    strcpy(m->u.hello.name, "xcp-router");
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_REGISTER);
    m->u.reg.critical = true;
    strcpy(m->u.reg.service, "presence-engine");
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_HEALTH);
    m->u.health.up = false;
    strcpy(m->u.health.service, "xcp-router");
    strcpy(m->u.health.detail, "process exited (status 1) – restarting");
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_PING);
    m->u.ping.seq = 99;
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_ACK);
    m->u.ack.cmd_id = 7;
    m->u.ack.result = SRM_ENO_QUORUM;
    strcpy(m->u.ack.detail, "no quorum");
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_COUNTERS);
    m->u.counters.n_parts = 2;
    m->u.counters.parts[0] = (struct srm_ipc_part_counters){1, 75000, 3, 74000, 2};
    m->u.counters.parts[1] = (struct srm_ipc_part_counters){2, 0, 75000, 0, 75000};
    m->u.counters.n_extra = 1;
    strcpy(m->u.counters.extra[0].name, "writes_per_s");
    m->u.counters.extra[0].value = 12345;
    round_trip(m);
    /* At the bounds. */
    m->u.counters.n_parts = SRM_IPC_PARTS_MAX;
    for (unsigned i = 0; i < SRM_IPC_PARTS_MAX; i++)
        m->u.counters.parts[i] = (struct srm_ipc_part_counters){i + 1, i, i, i, UINT64_MAX};
    m->u.counters.n_extra = SRM_IPC_EXTRA_MAX;
    for (unsigned i = 0; i < SRM_IPC_EXTRA_MAX; i++) {
        memset(m->u.counters.extra[i].name, 'x', SRM_IPC_NAME_MAX);
        m->u.counters.extra[i].name[SRM_IPC_NAME_MAX] = '\0';
    }
    assert_int_equal(encode(m), SRM_IPC_FRAME_MAX);
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_STALE);
    m->u.stale.part = 3;
    m->u.stale.epoch = 12;
    m->u.stale.error = SRM_ENOTOWNER;
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_SERVING);
    m->u.serving.reason = SRM_IPC_REASON_QUORUM;
    m->u.serving.fenced = true;
    m->u.serving.lease_left_ms = 1500;
    m->u.serving.n = 2;
    m->u.serving.grants[0] = (struct srm_ipc_grant){1, 5, SRM_IPC_GRANT_SERVING};
    m->u.serving.grants[1] = (struct srm_ipc_grant){2, 6, SRM_IPC_GRANT_DRAINING};
    round_trip(m);
    free(m);
}

static void test_round_trip_srmd_messages(void **state)
{
    struct srm_ipc_msg *m;

    (void)state;
    m = msg_new(SRM_IPC_WELCOME);
    m->u.welcome.incarnation = 77;
    m->u.welcome.node_id = 1;
    m->u.welcome.peer_node_id = 2;
    m->u.welcome.ping_ms = 1000;
    m->u.welcome.misses = 3;
    strcpy(m->u.welcome.node_name, "n1");
    strcpy(m->u.welcome.peer_name, "n2");
    round_trip(m);
    m->u.welcome.peer_node_id = 0; /* a one-node group */
    m->u.welcome.peer_name[0] = '\0';
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_SERVE);
    m->u.serve.cmd_id = 1;
    m->u.serve.part = 2;
    m->u.serve.epoch = 9;
    m->u.serve.lease_ms = 4000;
    m->u.serve.sent_mono_ms = 123456789;
    strcpy(m->u.serve.home_name, "n2");
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_RELEASE);
    m->u.release = (struct srm_ipc_release){5, 2, 3000, 120, 537};
    round_trip(m);
    m->u.release.relogin_lower_s = m->u.release.relogin_upper_s = 0; /* equal bounds */
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_LEASE);
    m->u.lease.lease_ms = 0; /* ends the lease now */
    m->u.lease.sent_mono_ms = 1;
    round_trip(m);
    m->u.lease.lease_ms = SRM_IPC_LEASE_MAX_MS;
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_STOP_SERVICES);
    m->u.command.cmd_id = 11;
    round_trip(m);
    m->type = SRM_IPC_START_SERVICES;
    round_trip(m);
    free(m);

    m = msg_new(SRM_IPC_WATCHDOG);
    m->u.watchdog.ping_ms = SRM_IPC_PING_MIN_MS;
    m->u.watchdog.misses = 1;
    round_trip(m);
    free(m);
}

static void test_header_layout(void **state)
{
    struct srm_ipc_msg *m = msg_new(SRM_IPC_PING);
    size_t len;

    (void)state;
    m->u.ping.seq = 0x1122334455667788ull;
    len = encode(m);
    assert_int_equal(len, SRM_IPC_HEADER_LEN + 8);
    assert_memory_equal(buf, "SRMI", 4);
    assert_int_equal(buf[4], SRM_IPC_PROTOCOL_VERSION);
    assert_int_equal(buf[5], SRM_IPC_PING);
    assert_int_equal(buf[6], 0);
    assert_int_equal(buf[7], 0);
    assert_int_equal(buf[8], 8); /* body length, little-endian */
    assert_int_equal(buf[9] | buf[10] | buf[11], 0);
    assert_int_equal(buf[12], 0x88); /* integers little-endian */
    assert_int_equal(buf[19], 0x11);
    free(m);
}

static void expect_bad(const uint8_t *frame, size_t len, int want)
{
    struct srm_ipc_msg *out = calloc(1, sizeof(*out));

    assert_non_null(out);
    assert_int_equal(srm_ipc_msg_decode(frame, len, out), want);
    free(out);
}

/* Encodes m, applies the edit at offset (from the start of the body), expects SRM_EBADMSG. */
static void corrupt_body(struct srm_ipc_msg *m, size_t off, uint8_t value)
{
    size_t len = encode(m);

    assert_true(SRM_IPC_HEADER_LEN + off < len);
    buf[SRM_IPC_HEADER_LEN + off] = value;
    expect_bad(buf, len, SRM_EBADMSG);
}

static void test_header_rejections(void **state)
{
    struct srm_ipc_msg *m = msg_new(SRM_IPC_PING);
    uint8_t big[SRM_IPC_FRAME_MAX + 1];
    size_t len;

    (void)state;
    len = encode(m);
    expect_bad(buf, 0, SRM_EBADMSG);
    expect_bad(buf, SRM_IPC_HEADER_LEN - 1, SRM_EBADMSG); /* truncated header */
    buf[0] = 'X';
    expect_bad(buf, len, SRM_EBADMSG); /* magic */
    len = encode(m);
    buf[4] = 2;
    expect_bad(buf, len, SRM_EIPC_VERSION); /* unknown version */
    buf[4] = 0;
    expect_bad(buf, len, SRM_EIPC_VERSION);
    len = encode(m);
    buf[5] = 0;
    expect_bad(buf, len, SRM_EBADMSG); /* unknown types */
    buf[5] = 9;
    expect_bad(buf, len, SRM_EBADMSG);
    buf[5] = 63;
    expect_bad(buf, len, SRM_EBADMSG);
    buf[5] = 71;
    expect_bad(buf, len, SRM_EBADMSG);
    buf[5] = 255;
    expect_bad(buf, len, SRM_EBADMSG);
    len = encode(m);
    buf[6] = 1;
    expect_bad(buf, len, SRM_EBADMSG); /* reserved */
    len = encode(m);
    buf[7] = 0x80;
    expect_bad(buf, len, SRM_EBADMSG);
    len = encode(m);
    buf[8] = 9; /* body length larger than the data */
    expect_bad(buf, len, SRM_EBADMSG);
    buf[8] = 7; /* smaller: the body of a PING is 8 bytes */
    expect_bad(buf, len - 1, SRM_EBADMSG);
    len = encode(m);
    buf[11] = 0x01; /* a body of 16 MiB + 8 */
    expect_bad(buf, len, SRM_EBADMSG);
    /* Oversized frames are refused before anything else is read. */
    memset(big, 0, sizeof(big));
    memcpy(big, "SRMI", 4);
    expect_bad(big, sizeof(big), SRM_EBADMSG);
    /* A valid header with a body of the wrong size for the type. */
    len = encode(m);
    buf[8] = 4;
    expect_bad(buf, SRM_IPC_HEADER_LEN + 4, SRM_EBADMSG);
    assert_int_equal(srm_ipc_msg_decode(NULL, 4, m), -EINVAL);
    assert_int_equal(srm_ipc_msg_decode(buf, len, NULL), -EINVAL);
    free(m);
}

static void test_field_rejections(void **state)
{
    struct srm_ipc_msg *m;

    (void)state;
    /* HELLO: incarnation 0, empty name, bad character, name length beyond the data. */
    m = msg_new(SRM_IPC_HELLO);
    m->u.hello.incarnation = 1;
    strcpy(m->u.hello.name, "engine");
    corrupt_body(m, 4, 0);  /* incarnation low byte: 1 -> 0 */
    corrupt_body(m, 12, 0); /* name length 0 */
    corrupt_body(m, 13, ' ');
    corrupt_body(m, 12, 200);
    free(m);

    /* REGISTER: a boolean other than 0/1. */
    m = msg_new(SRM_IPC_REGISTER);
    strcpy(m->u.reg.service, "svc");
    corrupt_body(m, 0, 2);
    free(m);

    /* HEALTH: a control character, invalid UTF-8, an overlong form, a surrogate. */
    m = msg_new(SRM_IPC_HEALTH);
    strcpy(m->u.health.service, "svc");
    strcpy(m->u.health.detail, "abcd");
    corrupt_body(m, 6, '\n'); /* the detail's first byte (after its length) */
    corrupt_body(m, 6, 0x7f);
    corrupt_body(m, 6, 0x80);
    corrupt_body(m, 6, 0xc0);
    corrupt_body(m, 6, 0xff);
    corrupt_body(m, 5, 5);                      /* detail length beyond the data */
    strcpy(m->u.health.detail, "\xed\xa0\x80"); /* U+D800 */
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), SRM_EBADUTF8);
    strcpy(m->u.health.detail, "\xe0\x80\xaf"); /* overlong '/' */
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), SRM_EBADUTF8);
    strcpy(m->u.health.detail, "\xc2\x85"); /* C1 control */
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), SRM_EBADUTF8);
    strcpy(m->u.health.detail, "\xf4\x90\x80\x80"); /* beyond U+10FFFF */
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), SRM_EBADUTF8);
    free(m);

    /* ACK: command id 0, a positive result. */
    m = msg_new(SRM_IPC_ACK);
    m->u.ack.cmd_id = 1;
    corrupt_body(m, 0, 0);
    corrupt_body(m, 4, 1);
    free(m);

    /* COUNTERS: too many partitions, unsorted or duplicate or zero ids, too many extras. */
    m = msg_new(SRM_IPC_COUNTERS);
    m->u.counters.n_parts = 2;
    m->u.counters.parts[0].part = 1;
    m->u.counters.parts[1].part = 2;
    corrupt_body(m, 0, 0xff);   /* n_parts 0x02ff... */
    corrupt_body(m, 1, 0x01);   /* n_parts 258 */
    corrupt_body(m, 2, 0);      /* first part 0 */
    corrupt_body(m, 2 + 36, 1); /* second == first */
    m->u.counters.parts[1].part = 1;
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), -EINVAL);
    m->u.counters.parts[1].part = 2;
    corrupt_body(m, 2 + 72, SRM_IPC_EXTRA_MAX + 1); /* n_extra */
    free(m);

    /* STALE: an error that is not a refusal of the datastore, epoch 0. */
    m = msg_new(SRM_IPC_STALE);
    m->u.stale = (struct srm_ipc_stale){4, 2, SRM_ESTALE_EPOCH};
    corrupt_body(m, 12, 0);
    corrupt_body(m, 4, 0);
    m->u.stale.error = -EIO;
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &(size_t){0}), -EINVAL);
    free(m);

    /* SERVING: unknown reason, fenced not boolean, unknown grant state, unsorted parts. */
    m = msg_new(SRM_IPC_SERVING);
    m->u.serving.n = 2;
    m->u.serving.grants[0] = (struct srm_ipc_grant){1, 1, 0};
    m->u.serving.grants[1] = (struct srm_ipc_grant){2, 1, 0};
    corrupt_body(m, 0, SRM_IPC_REASON_MAX);
    corrupt_body(m, 1, 2);
    corrupt_body(m, 8 + 12, 2);
    corrupt_body(m, 8 + 13, 1);
    free(m);

    /* WELCOME: node id 0, watchdog out of bounds, a node name with a space. */
    m = msg_new(SRM_IPC_WELCOME);
    m->u.welcome =
        (struct srm_ipc_welcome){.incarnation = 1, .node_id = 1, .ping_ms = 20, .misses = 3};
    strcpy(m->u.welcome.node_name, "n1");
    corrupt_body(m, 0, 0);    /* incarnation 0 */
    corrupt_body(m, 8, 0);    /* node id 0 */
    corrupt_body(m, 16, 19);  /* ping below the minimum */
    corrupt_body(m, 18, 1);   /* ping above the maximum */
    corrupt_body(m, 20, 0);   /* misses 0 */
    corrupt_body(m, 20, 101); /* misses above the bound */
    corrupt_body(m, 22, ' '); /* node name */
    free(m);

    /* SERVE: epoch 0, lease 0, lease beyond the maximum. */
    m = msg_new(SRM_IPC_SERVE);
    m->u.serve = (struct srm_ipc_serve){.cmd_id = 1, .part = 1, .epoch = 1, .lease_ms = 1};
    corrupt_body(m, 8, 0);
    corrupt_body(m, 16, 0);
    corrupt_body(m, 19, 0xff);
    free(m);

    /* RELEASE: lower above upper, upper beyond the bound, drain beyond the bound. */
    m = msg_new(SRM_IPC_RELEASE);
    m->u.release = (struct srm_ipc_release){1, 1, 0, 5, 6};
    corrupt_body(m, 12, 7);
    corrupt_body(m, 19, 0x10);
    corrupt_body(m, 11, 0xff);
    free(m);

    /* WATCHDOG: ping below the minimum. */
    m = msg_new(SRM_IPC_WATCHDOG);
    m->u.watchdog = (struct srm_ipc_watchdog){20, 3};
    corrupt_body(m, 0, 19);
    corrupt_body(m, 4, 0);
    free(m);
}

static void test_encoder_checks(void **state)
{
    struct srm_ipc_msg *m = msg_new(SRM_IPC_HELLO);
    size_t len = 99;

    (void)state;
    m->u.hello.incarnation = 1;
    strcpy(m->u.hello.name, "ok");
    assert_int_equal(srm_ipc_msg_encode(m, buf, SRM_IPC_HEADER_LEN + 4, &len), -ENOBUFS);
    assert_int_equal(len, 99); /* untouched on failure */
    assert_int_equal(srm_ipc_msg_encode(NULL, buf, sizeof(buf), &len), -EINVAL);
    memset(m->u.hello.name, 'a', sizeof(m->u.hello.name)); /* no terminator within bounds */
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &len), -EINVAL);
    m->type = (enum srm_ipc_type)99;
    assert_int_equal(srm_ipc_msg_encode(m, buf, sizeof(buf), &len), -EINVAL);
    free(m);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(srm_ipc_type_name(SRM_IPC_SERVE), "SERVE");
    assert_string_equal(srm_ipc_type_name((enum srm_ipc_type)0), "?");
    assert_true(srm_ipc_type_from_engine(SRM_IPC_STALE));
    assert_false(srm_ipc_type_from_engine(SRM_IPC_LEASE));
    assert_true(srm_ipc_type_is_command(SRM_IPC_RELEASE));
    assert_false(srm_ipc_type_is_command(SRM_IPC_LEASE));
    assert_string_equal(srm_ipc_reason_name(SRM_IPC_REASON_LEASE), "lease-expired");
    assert_string_equal(srm_ipc_reason_name(SRM_IPC_REASON_MAX), "?");
    assert_true(srm_ipc_name_valid("a.b_c-9", 64));
    assert_false(srm_ipc_name_valid("", 64));
    assert_false(srm_ipc_name_valid("a b", 64));
    assert_false(srm_ipc_name_valid("abc", 2));
    assert_false(srm_ipc_name_valid(NULL, 2));
    assert_true(srm_ipc_text_valid("héllo — ok", strlen("héllo — ok")));
    assert_false(srm_ipc_text_valid("a\tb", 3));
    assert_string_equal(srm_errname(SRM_EBADMSG), "SRM_EBADMSG");
    assert_string_equal(srm_errname(SRM_EIPC_VERSION), "SRM_EIPC_VERSION");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_engine_messages),
        cmocka_unit_test(test_round_trip_srmd_messages),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_header_rejections),
        cmocka_unit_test(test_field_rejections),
        cmocka_unit_test(test_encoder_checks),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
