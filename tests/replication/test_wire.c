/* Unit tests of the replication wire format: CRC32C, frames, and every message codec. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "../../replication/internal.h"
#include "srm_error.h"

static void test_crc32c_known_vectors(void **state)
{
    (void)state;
    /* RFC 3720 B.4 and the usual check value */
    assert_int_equal(srm__repl_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(srm__repl_crc32c(0, zeros, 32), 0x8A9136AAu);
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(srm__repl_crc32c(0, ones, 32), 0x62A8AB43u);
    /* incremental equals one-shot */
    uint32_t c = srm__repl_crc32c(0, "12345", 5);
    assert_int_equal(srm__repl_crc32c(c, "6789", 4), 0xE3069283u);
    /* the tables give the same values as the instruction (when the CPU has one), at every
     * length and alignment */
    assert_int_equal(srm__repl_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    static uint8_t buf[4096 + 16];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 300; len += 1 + len / 8)
            assert_int_equal(srm__repl_crc32c(7, buf + off, len),
                             srm__repl_crc32c_sw(7, buf + off, len));
    assert_int_equal(srm__repl_crc32c(0, buf, 4096), srm__repl_crc32c_sw(0, buf, 4096));
}

static size_t make_frame(uint8_t *buf, uint8_t type, const void *payload, size_t len)
{
    memcpy(buf + SRM__REPL_HDR, payload, len);
    srm__repl_frame_header(buf, type, buf + SRM__REPL_HDR, len);
    return SRM__REPL_HDR + len;
}

static void test_frame_roundtrip_and_partial(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = make_frame(buf, SRM__REPL_MSG_PING, "abcdefgh", 8);
    struct srm__repl_frame f;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(srm__repl_frame_decode(buf, k, SRM__REPL_FRAME_MAX, &f), 0);
    assert_int_equal(srm__repl_frame_decode(buf, n, SRM__REPL_FRAME_MAX, &f), (int)n);
    assert_int_equal(f.type, SRM__REPL_MSG_PING);
    assert_int_equal(f.len, 8);
    assert_memory_equal(f.payload, "abcdefgh", 8);
}

static void test_frame_rejects_corruption(void **state)
{
    (void)state;
    uint8_t buf[128], bad[128];
    size_t n = make_frame(buf, SRM__REPL_MSG_PING, "abcdefgh", 8);
    struct srm__repl_frame f;
    /* every single-bit flip is caught (length flips may look partial, never valid) */
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(bad, buf, n);
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rc = srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f);
        assert_true(rc <= 0);
    }
    memcpy(bad, buf, n);
    bad[SRM__REPL_HDR] ^= 1;
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADCHECKSUM);
    /* unknown type, flags, reserved, oversize length */
    memcpy(bad, buf, n);
    bad[4] = 0;
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADFRAME);
    bad[4] = SRM__REPL_MSG_LAST + 1;
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADFRAME);
    memcpy(bad, buf, n);
    bad[5] = 1;
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADFRAME);
    memcpy(bad, buf, n);
    bad[7] = 1;
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADFRAME);
    memcpy(bad, buf, n);
    bad[3] = 0x7f; /* 2 GiB payload */
    assert_int_equal(srm__repl_frame_decode(bad, n, SRM__REPL_FRAME_MAX, &f), SRM_EBADFRAME);
    assert_int_equal(srm__repl_frame_decode(buf, n, 4, &f), SRM_EBADFRAME); /* caller bound */
}

static void test_hello_roundtrip(void **state)
{
    (void)state;
    static struct srm__repl_hello h, d;
    memset(&h, 0, sizeof(h));
    h.version_min = 1;
    h.version_max = 3;
    strcpy(h.cluster, "prod-east_1");
    h.node_id = 7;
    h.peer_id = 9;
    h.instance = 0x1122334455667788ull;
    h.nparts = 3;
    for (unsigned i = 0; i < 3; i++)
        h.parts[i] = (struct srm__repl_partrec){
            .part = i + 1, .role = (uint8_t)(i % 3), .epoch = 10 + i, .gen = 99, .seq = 1000 * i};
    uint8_t buf[4096];
    size_t n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(n, srm__repl_hello_size(&h));
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), 0);
    assert_string_equal(d.cluster, "prod-east_1");
    assert_int_equal(d.node_id, 7);
    assert_int_equal(d.peer_id, 9);
    assert_int_equal(d.instance, h.instance);
    assert_int_equal(d.nparts, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(d.parts[i].part, h.parts[i].part);
        assert_int_equal(d.parts[i].role, h.parts[i].role);
        assert_int_equal(d.parts[i].epoch, h.parts[i].epoch);
        assert_int_equal(d.parts[i].gen, 99);
        assert_int_equal(d.parts[i].seq, h.parts[i].seq);
    }
    /* every truncation is refused */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(srm__repl_hello_decode(buf, k, &d), SRM_EHANDSHAKE);
    /* trailing bytes are refused */
    assert_int_equal(srm__repl_hello_decode(buf, n + 1, &d), SRM_EHANDSHAKE);
}

static void test_hello_rejects_bad_fields(void **state)
{
    (void)state;
    static struct srm__repl_hello h, d;
    uint8_t buf[4096];
    memset(&h, 0, sizeof(h));
    h.version_min = h.version_max = 1;
    strcpy(h.cluster, "c");
    h.node_id = 1;
    h.peer_id = 2;
    h.nparts = 2;
    h.parts[0] = (struct srm__repl_partrec){.part = 5, .role = 1};
    h.parts[1] = (struct srm__repl_partrec){.part = 5, .role = 2};
    size_t n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE); /* duplicate part */
    h.parts[1].part = 6;
    n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), 0);
    buf[0] ^= 1; /* magic */
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
    buf[0] ^= 1;
    buf[9] = '/'; /* cluster name character */
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
    buf[9] = 'c';
    buf[8] = 0; /* empty cluster name */
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
    buf[8] = 1;
    h.version_min = 2; /* min > max */
    n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
    h.version_min = 1;
    h.parts[1].role = 7; /* unknown role */
    n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
    h.parts[1].role = 1;
    h.parts[1].part = 0; /* partition 0 */
    n = srm__repl_hello_encode(&h, buf);
    assert_int_equal(srm__repl_hello_decode(buf, n, &d), SRM_EHANDSHAKE);
}

static void test_entries_codec(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct srm__repl_entries e = {.part = 3,
                                  .epoch = 4,
                                  .gen = 5,
                                  .first_seq = 10,
                                  .through_seq = 19,
                                  .head_seq = 25,
                                  .count = 7};
    size_t n = srm__repl_entries_encode_head(&e, buf);
    memcpy(buf + n, "payload", 7);
    struct srm__repl_entries d;
    assert_int_equal(srm__repl_entries_decode(buf, n + 7, &d), 0);
    assert_int_equal(d.part, 3);
    assert_int_equal(d.gen, 5);
    assert_int_equal(d.first_seq, 10);
    assert_int_equal(d.through_seq, 19);
    assert_int_equal(d.head_seq, 25);
    assert_int_equal(d.count, 7);
    assert_int_equal(d.len, 7);
    assert_memory_equal(d.data, "payload", 7);
    /* count 0 needs an empty body, count > 0 a non-empty one */
    assert_int_equal(srm__repl_entries_decode(buf, n, &d), SRM_EBADFRAME);
    struct srm__repl_entries bad = e;
    bad.count = 11; /* more entries than positions */
    srm__repl_entries_encode_head(&bad, buf);
    assert_int_equal(srm__repl_entries_decode(buf, n + 7, &d), SRM_EBADFRAME);
    bad = e;
    bad.through_seq = 9;
    srm__repl_entries_encode_head(&bad, buf);
    assert_int_equal(srm__repl_entries_decode(buf, n + 7, &d), SRM_EBADFRAME);
    bad = e;
    bad.head_seq = 18;
    srm__repl_entries_encode_head(&bad, buf);
    assert_int_equal(srm__repl_entries_decode(buf, n + 7, &d), SRM_EBADFRAME);
    bad = e;
    bad.first_seq = 0;
    srm__repl_entries_encode_head(&bad, buf);
    assert_int_equal(srm__repl_entries_decode(buf, n + 7, &d), SRM_EBADFRAME);
    bad = e;
    bad.count = 0;
    srm__repl_entries_encode_head(&bad, buf);
    assert_int_equal(srm__repl_entries_decode(buf, n, &d), 0); /* all skipped: legal */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(srm__repl_entries_decode(buf, k, &d), SRM_EBADFRAME);
}

static void test_small_codecs(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct srm__repl_ack a = {.part = 1, .gen = 2, .seq = 3, .epoch = 4}, ad;
    size_t n = srm__repl_ack_encode(&a, buf);
    assert_int_equal(srm__repl_ack_decode(buf, n, &ad), 0);
    assert_int_equal(ad.seq, 3);
    assert_int_equal(ad.gen, 2);
    assert_int_equal(srm__repl_ack_decode(buf, n - 1, &ad), SRM_EBADFRAME);
    assert_int_equal(srm__repl_ack_decode(buf, n + 1, &ad), SRM_EBADFRAME);

    struct srm__repl_partrec pr = {.part = 8, .role = 2, .epoch = 1, .gen = 2, .seq = 3}, pd;
    n = srm__repl_part_encode(&pr, buf);
    assert_int_equal(srm__repl_part_decode(buf, n, &pd), 0);
    assert_int_equal(pd.role, 2);
    buf[4] = 3;
    assert_int_equal(srm__repl_part_decode(buf, n, &pd), SRM_EBADFRAME);

    uint64_t tok;
    n = srm__repl_ping_encode(77, buf);
    assert_int_equal(srm__repl_ping_decode(buf, n, &tok), 0);
    assert_int_equal(tok, 77);
    assert_int_equal(srm__repl_ping_decode(buf, 7, &tok), SRM_EBADFRAME);

    int err;
    char msg[64];
    n = srm__repl_error_encode(SRM_EHANDSHAKE, "wrong cluster", buf);
    assert_int_equal(srm__repl_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
    assert_int_equal(err, SRM_EHANDSHAKE);
    assert_string_equal(msg, "wrong cluster");
    buf[7] = '\n'; /* non-printable */
    assert_int_equal(srm__repl_error_decode(buf, n, &err, msg, sizeof(msg)), SRM_EBADFRAME);
    assert_int_equal(srm__repl_error_decode(buf, 5, &err, msg, sizeof(msg)), SRM_EBADFRAME);
}

static void test_snap_codecs(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct srm__repl_snap s = {.part = 2, .epoch = 3, .seq = 40};
    struct srm__repl_snapinfo info = {
        .source = 9, .gen = 5, .hlc = 6, .owner_node = 9, .owner_epoch = 3, .entries = 12};
    info.digest[1][2] = 77;
    size_t n = srm__repl_snap_encode_head(&s, buf);
    n += srm__repl_snapinfo_encode(&info, buf + n);
    struct srm__repl_snap d;
    struct srm__repl_snapinfo di;
    assert_int_equal(srm__repl_snap_decode(SRM__REPL_MSG_SNAP_BEGIN, buf, n, &d), 0);
    assert_int_equal(srm__repl_snapinfo_decode(d.data, d.len, &di), 0);
    assert_int_equal(di.source, 9);
    assert_int_equal(di.digest[1][2], 77);
    assert_int_equal(di.entries, 12);
    /* BEGIN without its info, END with data, CHUNK without data */
    assert_int_equal(srm__repl_snap_decode(SRM__REPL_MSG_SNAP_BEGIN, buf, SRM__REPL_SNAP_HEAD, &d),
                     SRM_EBADFRAME);
    assert_int_equal(srm__repl_snap_decode(SRM__REPL_MSG_SNAP_END, buf, n, &d), SRM_EBADFRAME);
    assert_int_equal(srm__repl_snap_decode(SRM__REPL_MSG_SNAP_CHUNK, buf, SRM__REPL_SNAP_HEAD, &d),
                     SRM_EBADFRAME);
    assert_int_equal(srm__repl_snap_decode(SRM__REPL_MSG_SNAP_CHUNK, buf, 10, &d), SRM_EBADFRAME);
    info.source = 0;
    srm__repl_snapinfo_encode(&info, buf + SRM__REPL_SNAP_HEAD);
    assert_int_equal(
        srm__repl_snapinfo_decode(buf + SRM__REPL_SNAP_HEAD, SRM__REPL_SNAPINFO_SIZE, &di),
        SRM_EBADFRAME);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(srm__repl_name_valid("node-1.a_b", 10));
    assert_false(srm__repl_name_valid("", 0));
    assert_false(srm__repl_name_valid("a b", 3));
    char longname[SRM_REPL_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname));
    assert_true(srm__repl_name_valid(longname, SRM_REPL_NAME_MAX));
    assert_false(srm__repl_name_valid(longname, SRM_REPL_NAME_MAX + 1));
    assert_string_equal(srm_repl_event_name(SRM_REPL_EV_CAUGHT_UP), "+caught-up");
    assert_string_equal(srm_repl_event_name(SRM_REPL_EV_MAX), "?");
    assert_string_equal(srm_repl_role_name(SRM_REPL_ROLE_SINK), "sink");
    assert_string_equal(srm__repl_msg_name(SRM__REPL_MSG_SNAP_ACK), "SNAP_ACK");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_frame_roundtrip_and_partial),
        cmocka_unit_test(test_frame_rejects_corruption),
        cmocka_unit_test(test_hello_roundtrip),
        cmocka_unit_test(test_hello_rejects_bad_fields),
        cmocka_unit_test(test_entries_codec),
        cmocka_unit_test(test_small_codecs),
        cmocka_unit_test(test_snap_codecs),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
