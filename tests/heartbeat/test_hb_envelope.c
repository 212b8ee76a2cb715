/*
 * The heartbeat envelope codec (heartbeat/hb_envelope.c): round trips, the exact wire
 * layout, and every rejection of the strict decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "srm_error.h"

#include <errno.h>
#include <string.h>

static struct srm__hb_envelope sample(const char *payload)
{
    return (struct srm__hb_envelope){
        .flags = SRM_HB_FLAG_RESTARTING,
        .sender = 0x01020304,
        .incarnation = 0x1122334455667788ull,
        .seq = 42,
        .group = "srm.g1",
        .group_len = 6,
        .payload = payload,
        .payload_len = payload ? strlen(payload) : 0,
    };
}

static size_t encode(const struct srm__hb_envelope *env, uint8_t *buf)
{
    size_t len = 0;

    assert_int_equal(srm__hb_envelope_encode(env, buf, SRM__HB_ENVELOPE_MAX, &len), 0);
    return len;
}

static void test_round_trip(void **state)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope in = sample("state=normal"), out;
    size_t len = encode(&in, buf);

    (void)state;
    assert_int_equal(len, SRM__HB_HEADER_LEN + 6 + 12);
    assert_int_equal(srm__hb_envelope_decode(buf, len, "srm.g1", 6, &out), 0);
    assert_int_equal(out.version, SRM_HB_PROTOCOL_VERSION);
    assert_int_equal(out.flags, SRM_HB_FLAG_RESTARTING);
    assert_int_equal(out.sender, 0x01020304);
    assert_true(out.incarnation == 0x1122334455667788ull);
    assert_int_equal(out.seq, 42);
    assert_int_equal(out.group_len, 6);
    assert_memory_equal(out.group, "srm.g1", 6);
    assert_int_equal(out.payload_len, 12);
    assert_memory_equal(out.payload, "state=normal", 12);
    /* Borrowed pointers point into the buffer. */
    assert_ptr_equal(out.payload, buf + SRM__HB_HEADER_LEN + 6);
    /* No group check. */
    assert_int_equal(srm__hb_envelope_decode(buf, len, NULL, 0, &out), 0);
}

static void test_wire_layout(void **state)
{
    static const uint8_t expect[] = {
        'S',  'R',  'M',  'H',  1,    1,    6,    0,    /* magic version flags glen rsvd */
        0x01, 0x02, 0x03, 0x04, 0,    0,    0,    2,    /* sender, payload length */
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* incarnation */
        0,    0,    0,    0,    0,    0,    0,    42,   /* sequence */
        's',  'r',  'm',  '.',  'g',  '1',  'o',  'k',
    };
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope in = sample("ok");

    (void)state;
    assert_int_equal(encode(&in, buf), sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
}

static void test_empty_payload(void **state)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope in = sample(NULL), out;
    size_t len = encode(&in, buf);

    (void)state;
    assert_int_equal(len, SRM__HB_HEADER_LEN + 6);
    assert_int_equal(srm__hb_envelope_decode(buf, len, "srm.g1", 6, &out), 0);
    assert_int_equal(out.payload_len, 0);
    assert_null(out.payload);
}

static void test_max_payload(void **state)
{
    static uint8_t buf[SRM__HB_ENVELOPE_MAX], payload[SRM_HB_PAYLOAD_MAX + 1];
    struct srm__hb_envelope in = sample(NULL), out;
    size_t len;

    (void)state;
    memset(payload, 0xab, sizeof(payload));
    in.payload = payload;
    in.payload_len = SRM_HB_PAYLOAD_MAX;
    len = encode(&in, buf);
    assert_int_equal(srm__hb_envelope_decode(buf, len, "srm.g1", 6, &out), 0);
    assert_int_equal(out.payload_len, SRM_HB_PAYLOAD_MAX);
    in.payload_len = SRM_HB_PAYLOAD_MAX + 1;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), SRM_ETOOBIG);
}

static void test_encode_rejects(void **state)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope in;
    size_t len = 99;

    (void)state;
    in = sample("x");
    in.incarnation = 0;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), -EINVAL);
    in = sample("x");
    in.seq = 0;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), -EINVAL);
    in = sample("x");
    in.flags = 0x80;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), -EINVAL);
    in = sample("x");
    in.group = "bad name";
    in.group_len = 8;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), -EINVAL);
    in = sample("x");
    in.payload = NULL;
    assert_int_equal(srm__hb_envelope_encode(&in, buf, sizeof(buf), &len), -EINVAL);
    in = sample("x");
    assert_int_equal(srm__hb_envelope_encode(&in, buf, SRM__HB_HEADER_LEN + 6, &len), -ENOBUFS);
    assert_int_equal(len, 99); /* untouched on failure */
}

static void expect_decode(const uint8_t *buf, size_t len, int err)
{
    struct srm__hb_envelope out;

    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(srm__hb_envelope_decode(buf, len, "srm.g1", 6, &out), err);
    if (err < 0) {
        struct srm__hb_envelope untouched;
        memset(&untouched, 0x5a, sizeof(untouched));
        assert_memory_equal(&out, &untouched, sizeof(out));
    }
}

static void test_decode_rejects(void **state)
{
    uint8_t good[SRM__HB_ENVELOPE_MAX], buf[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope in = sample("abc");
    size_t len = encode(&in, good);

    (void)state;
    expect_decode(good, len, 0);
    /* Short, truncated, trailing byte. */
    expect_decode(good, 0, SRM_EBADENVELOPE);
    expect_decode(good, SRM__HB_HEADER_LEN - 1, SRM_EBADENVELOPE);
    expect_decode(good, len - 1, SRM_EBADENVELOPE);
    memcpy(buf, good, len);
    buf[len] = 0;
    expect_decode(buf, len + 1, SRM_EBADENVELOPE);
#define MUTATE(off, val, err)                                                                      \
    do {                                                                                           \
        memcpy(buf, good, len);                                                                    \
        buf[off] = (val);                                                                          \
        expect_decode(buf, len, err);                                                              \
    } while (0)
    MUTATE(0, 'X', SRM_EBADENVELOPE);   /* magic */
    MUTATE(4, 0, SRM_EBADVERSION);      /* version 0 */
    MUTATE(4, 2, SRM_EBADVERSION);      /* version 2 */
    MUTATE(5, 0x02, SRM_EBADENVELOPE);  /* unknown flag */
    MUTATE(6, 0, SRM_EBADENVELOPE);     /* group length 0 */
    MUTATE(6, 7, SRM_EBADENVELOPE);     /* group length disagrees with the size */
    MUTATE(6, 200, SRM_EBADENVELOPE);   /* group length over the bound */
    MUTATE(7, 1, SRM_EBADENVELOPE);     /* reserved */
    MUTATE(12, 0x01, SRM_ETOOBIG);      /* payload length 16 MiB */
    MUTATE(15, 4, SRM_EBADENVELOPE);    /* payload length disagrees with the size */
    MUTATE(34, ' ', SRM_EBADENVELOPE);  /* space in the group name */
    MUTATE(34, 0x7f, SRM_EBADENVELOPE); /* control character */
    MUTATE(37, '2', SRM_EFOREIGN);      /* srm.g2 */
#undef MUTATE
    /* Zero incarnation or sequence. */
    memcpy(buf, good, len);
    memset(buf + 16, 0, 8);
    expect_decode(buf, len, SRM_EBADENVELOPE);
    memcpy(buf, good, len);
    memset(buf + 24, 0, 8);
    expect_decode(buf, len, SRM_EBADENVELOPE);
    /* A group that is a prefix of ours is still another group. */
    in.group = "srm.g";
    in.group_len = 5;
    len = encode(&in, buf);
    expect_decode(buf, len, SRM_EFOREIGN);
    expect_decode(NULL, 10, SRM_EBADENVELOPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_wire_layout),
        cmocka_unit_test(test_empty_payload),  cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_encode_rejects), cmocka_unit_test(test_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
