/* Pure parts of the datastore: clock, conflict rule, UTF-8, record and entry encodings,
 * every bound of every field. */
#include "ds_test.h"
#include "internal.h"

static char *str_of(size_t n, char c)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

static void test_hlc(void **state)
{
    (void)state;
    uint64_t h = srm_ds_hlc_send(0, 1000);

    assert_int_equal(SRM_DS_HLC_MS(h), 1000);
    assert_int_equal(SRM_DS_HLC_COUNTER(h), 0);
    /* same millisecond: logical counter */
    uint64_t h2 = srm_ds_hlc_send(h, 1000);
    assert_true(h2 > h);
    assert_int_equal(SRM_DS_HLC_COUNTER(h2), 1);
    /* clock going backwards never goes back */
    uint64_t h3 = srm_ds_hlc_send(h2, 10);
    assert_true(h3 > h2);
    /* receive a remote timestamp from the future */
    uint64_t r = srm_ds_hlc_send(0, 5000);
    uint64_t h4 = srm_ds_hlc_recv(h3, r, 1200);
    assert_true(h4 > r && h4 > h3);
    assert_int_equal(SRM_DS_HLC_MS(h4), 5000);
    /* wall clock ahead of both */
    uint64_t h5 = srm_ds_hlc_recv(h4, r, 9000);
    assert_int_equal(SRM_DS_HLC_MS(h5), 9000);
    assert_int_equal(SRM_DS_HLC_COUNTER(h5), 0);
}

static void test_stamp_cmp(void **state)
{
    (void)state;
    struct srm_ds_stamp a = {2, 10, 1}, b = {1, 99, 9};

    assert_true(srm_ds_stamp_cmp(&a, &b) > 0); /* epoch first */
    assert_true(srm_ds_stamp_cmp(&b, &a) < 0);
    b.epoch = 2;
    assert_true(srm_ds_stamp_cmp(&a, &b) < 0); /* then hlc */
    b.hlc = 10;
    assert_true(srm_ds_stamp_cmp(&a, &b) < 0); /* then origin */
    b.origin = 1;
    assert_int_equal(srm_ds_stamp_cmp(&a, &b), 0);
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        int ok;
    } cases[] = {
        {"plain", 5, 1},
        {"\xc3\xa9t\xc3\xa9", 5, 1},        /* été */
        {"\xe4\xb8\xad\xe6\x96\x87", 6, 1}, /* 中文 */
        {"\xf0\x9f\x98\x80", 4, 1},         /* emoji */
        {"\xc0\x80", 2, 0},                 /* overlong NUL */
        {"\xe0\x80\xaf", 3, 0},             /* overlong */
        {"\xed\xa0\x80", 3, 0},             /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0},         /* above U+10FFFF */
        {"\xc3", 1, 0},                     /* truncated */
        {"\x80", 1, 0},                     /* lone continuation */
        {"a\0b", 3, 0},                     /* NUL */
        {"\xff", 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = srm__ds_utf8_check((const uint8_t *)cases[i].s, cases[i].n);
        if (cases[i].ok)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, SRM_EBADUTF8);
    }
    /* The same sequences inside ASCII text, at every offset of texts up to 100 bytes: the
     * word-at-a-time paths (32, 8 and a last overlapping 8) find them wherever they are. */
    uint8_t text[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t len = cases[i].n; len <= 100; len += 3) {
            for (size_t at = 0; at + cases[i].n <= len; at++) {
                memset(text, 'a', len);
                memcpy(text + at, cases[i].s, cases[i].n);
                int rc = srm__ds_utf8_check(text, len);
                if (cases[i].ok)
                    assert_int_equal(rc, 0);
                else
                    assert_int_equal(rc, SRM_EBADUTF8);
            }
        }
    }
}

/* Encodes p and decodes it back through the public decoder. */
static int presence_roundtrip(const struct srm_ds_presence *p, struct srm_ds_presence *out,
                              uint8_t *key, uint8_t **buf, size_t *cap)
{
    size_t klen, blen;
    int rc = srm__ds_presence_encode(p, key, &klen, buf, cap, &blen);

    if (rc < 0)
        return rc;
    return srm_ds_presence_decode(key, klen, *buf, blen, out);
}

static void test_presence_codec(void **state)
{
    (void)state;
    uint8_t key[SRM_DS_KEY_MAX], *buf = NULL;
    size_t cap = 0;
    struct srm_ds_presence p = ds_test_presence("alice@example.com", "laptop", "in a meeting");
    struct srm_ds_presence out;
    uint8_t ext[100];

    for (size_t i = 0; i < sizeof(ext); i++)
        ext[i] = (uint8_t)i;
    p.ext = ext;
    p.ext_len = sizeof(ext);
    p.priority = -7;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    assert_string_equal(out.user, "alice@example.com");
    assert_string_equal(out.resource, "laptop");
    assert_string_equal(out.status, "in a meeting");
    assert_int_equal(out.availability, SRM_DS_AVAIL_AWAY);
    assert_int_equal(out.priority, -7);
    assert_int_equal(out.updated_ms, p.updated_ms);
    assert_int_equal(out.ext_len, sizeof(ext));
    assert_memory_equal(out.ext, ext, sizeof(ext));

    /* bounds: user */
    char *s = str_of(SRM_DS_USER_MAX, 'u');
    p.user = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    free(s);
    s = str_of(SRM_DS_USER_MAX + 1, 'u');
    p.user = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_ETOOBIG);
    free(s);
    p.user = "";
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), -EINVAL);
    p.user = NULL;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), -EINVAL);
    p.user = "bad\xff";
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_EBADUTF8);
    p.user = "alice";
    /* resource */
    s = str_of(SRM_DS_RESOURCE_MAX, 'r');
    p.resource = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    free(s);
    s = str_of(SRM_DS_RESOURCE_MAX + 1, 'r');
    p.resource = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_ETOOBIG);
    free(s);
    /* user and resource both at their bounds: the key as a whole is too long */
    char *u2 = str_of(SRM_DS_USER_MAX, 'u');
    s = str_of(SRM_DS_KEY_MAX - 2 - SRM_DS_USER_MAX, 'r');
    p.user = u2;
    p.resource = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    free(s);
    s = str_of(SRM_DS_KEY_MAX - 1 - SRM_DS_USER_MAX, 'r');
    p.resource = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_ETOOBIG);
    free(s);
    free(u2);
    p.user = "alice";
    p.resource = "\xc0\x80";
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_EBADUTF8);
    p.resource = NULL; /* bare presence */
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    assert_string_equal(out.resource, "");
    p.resource = "r";
    /* status */
    s = str_of(SRM_DS_STATUS_MAX, 's');
    p.status = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    free(s);
    s = str_of(SRM_DS_STATUS_MAX + 1, 's');
    p.status = s;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_ETOOBIG);
    free(s);
    p.status = "\xed\xa0\x80";
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_EBADUTF8);
    p.status = NULL;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    assert_string_equal(out.status, "");
    /* ext */
    uint8_t *big = calloc(1, SRM_DS_EXT_MAX + 1);
    p.ext = big;
    p.ext_len = SRM_DS_EXT_MAX;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), 0);
    p.ext_len = SRM_DS_EXT_MAX + 1;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), SRM_ETOOBIG);
    free(big);
    p.ext = NULL;
    p.ext_len = 3;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), -EINVAL);
    p.ext_len = 0;
    /* availability */
    p.availability = SRM_DS_AVAIL_MAX;
    assert_int_equal(presence_roundtrip(&p, &out, key, &buf, &cap), -EINVAL);
    free(buf);
}

static void test_presence_decode_refusals(void **state)
{
    (void)state;
    uint8_t key[SRM_DS_KEY_MAX], *buf = NULL;
    size_t cap = 0, klen, blen;
    struct srm_ds_presence p = ds_test_presence("bob", "phone", "hi"), out;

    assert_int_equal(srm__ds_presence_encode(&p, key, &klen, &buf, &cap, &blen), 0);
    /* unknown format byte */
    buf[0] = 2;
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_EBADFORMAT);
    buf[0] = SRM_DS_RECORD_FORMAT;
    /* every truncation is refused */
    for (size_t n = 0; n < blen; n++)
        assert_true(srm_ds_presence_decode(key, klen, buf, n, &out) < 0);
    /* trailing garbage */
    uint8_t *longer = malloc(blen + 1);
    memcpy(longer, buf, blen);
    longer[blen] = 0;
    assert_int_equal(srm_ds_presence_decode(key, klen, longer, blen + 1, &out), SRM_ECORRUPT);
    free(longer);
    /* bad availability */
    buf[1] = SRM_DS_AVAIL_MAX;
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_ECORRUPT);
    buf[1] = 0;
    /* invalid UTF-8 in stored status: 'h' -> 0xff */
    buf[DS_PRESENCE_HDR] = 0xff;
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_EBADUTF8);
    buf[DS_PRESENCE_HDR] = 'h';
    /* missing terminator */
    buf[DS_PRESENCE_HDR + 2] = 'x';
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_ECORRUPT);
    buf[DS_PRESENCE_HDR + 2] = 0;
    /* keys: missing NUL, empty user, extra bytes */
    assert_int_equal(srm_ds_presence_decode("bob", 3, buf, blen, &out), SRM_ECORRUPT);
    assert_int_equal(srm_ds_presence_decode("\0x\0", 3, buf, blen, &out), SRM_ECORRUPT);
    assert_int_equal(srm_ds_presence_decode("a\0b\0c", 5, buf, blen, &out), SRM_ECORRUPT);
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), 0);
    /* lengths beyond their bounds */
    srm__ds_le16(buf + 11, SRM_DS_STATUS_MAX + 1);
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_ETOOBIG);
    srm__ds_le16(buf + 11, 2);
    srm__ds_le16(buf + 13, SRM_DS_EXT_MAX + 1);
    assert_int_equal(srm_ds_presence_decode(key, klen, buf, blen, &out), SRM_ETOOBIG);
    free(buf);
}

static void test_login_codec(void **state)
{
    (void)state;
    uint8_t key[SRM_DS_KEY_MAX], *buf = NULL;
    size_t cap = 0, klen, blen;
    struct srm_ds_login l = {.user = "carol",
                             .session_id = "s-1",
                             .resource = "desk",
                             .client_type = "jabber",
                             .client_version = "14.0.1",
                             .node = 3,
                             .login_ms = 42,
                             .active = false};
    struct srm_ds_login out;

    assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), 0);
    assert_int_equal(srm_ds_login_decode(key, klen, buf, blen, &out), 0);
    assert_string_equal(out.user, "carol");
    assert_string_equal(out.session_id, "s-1");
    assert_string_equal(out.resource, "desk");
    assert_string_equal(out.client_type, "jabber");
    assert_string_equal(out.client_version, "14.0.1");
    assert_int_equal(out.node, 3);
    assert_int_equal(out.login_ms, 42);
    assert_false(out.active);
    buf[0] = 9;
    assert_int_equal(srm_ds_login_decode(key, klen, buf, blen, &out), SRM_EBADFORMAT);

    struct {
        const char **field;
        size_t max;
        size_t min;
    } f[] = {
        {&l.session_id, SRM_DS_SESSION_ID_MAX, 1},
        {&l.resource, SRM_DS_RESOURCE_MAX, 0},
        {&l.client_type, SRM_DS_CLIENT_TYPE_MAX, 0},
        {&l.client_version, SRM_DS_CLIENT_VERSION_MAX, 0},
        {&l.user, SRM_DS_USER_MAX, 1},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        const char *saved = *f[i].field;
        char *s = str_of(f[i].max, 'x');

        *f[i].field = s;
        assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), 0);
        free(s);
        s = str_of(f[i].max + 1, 'x');
        *f[i].field = s;
        assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), SRM_ETOOBIG);
        free(s);
        *f[i].field = "\xe0\x80\xaf";
        assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), SRM_EBADUTF8);
        if (f[i].min) {
            *f[i].field = "";
            assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), -EINVAL);
        }
        *f[i].field = saved;
    }
    l.node = 0;
    assert_int_equal(srm__ds_login_encode(&l, key, &klen, &buf, &cap, &blen), -EINVAL);
    free(buf);
}

static void test_sip_codec(void **state)
{
    (void)state;
    uint8_t key[SRM_DS_KEY_MAX], *buf = NULL;
    size_t cap = 0, klen, blen;
    unsigned live;
    struct srm_ds_sip_reg r = {.aor = "sip:dave@example.com", .n_contacts = 2};
    struct srm_ds_sip_reg out;

    r.contacts[0] = (struct srm_ds_sip_contact){.uri = "sip:dave@10.0.0.1:5060",
                                                .expires_ms = 5000,
                                                .call_id = "abc@host",
                                                .cseq = 7,
                                                .q = 1000,
                                                .path = "<sip:proxy;lr>",
                                                .received = "10.0.0.1:5060"};
    r.contacts[1] = (struct srm_ds_sip_contact){
        .uri = "sip:dave@10.0.0.2", .expires_ms = 900, .call_id = "x", .cseq = 1, .q = 500};
    /* at now=100 both live */
    assert_int_equal(srm__ds_sip_encode(&r, 100, key, &klen, &buf, &cap, &blen, &live), 0);
    assert_int_equal(live, 2);
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), 0);
    assert_int_equal(out.n_contacts, 2);
    assert_string_equal(out.aor, "sip:dave@example.com");
    assert_string_equal(out.contacts[0].uri, "sip:dave@10.0.0.1:5060");
    assert_string_equal(out.contacts[0].path, "<sip:proxy;lr>");
    assert_string_equal(out.contacts[0].received, "10.0.0.1:5060");
    assert_string_equal(out.contacts[1].path, "");
    assert_int_equal(out.contacts[0].q, 1000);
    assert_int_equal(out.contacts[0].cseq, 7);
    /* at now=1000 the second one is dropped at encode time */
    assert_int_equal(srm__ds_sip_encode(&r, 1000, key, &klen, &buf, &cap, &blen, &live), 0);
    assert_int_equal(live, 1);
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), 0);
    assert_int_equal(out.n_contacts, 1);
    uint64_t e;
    assert_int_equal(srm__ds_sip_earliest(buf, blen, &e), 0);
    assert_int_equal(e, 5000);

    /* field bounds */
    struct {
        const char **field;
        size_t max;
        size_t min;
    } f[] = {
        {&r.contacts[0].uri, SRM_DS_CONTACT_URI_MAX, 1},
        {&r.contacts[0].call_id, SRM_DS_CALL_ID_MAX, 1},
        {&r.contacts[0].path, SRM_DS_PATH_MAX, 0},
        {&r.contacts[0].received, SRM_DS_RECEIVED_MAX, 0},
        {&r.aor, SRM_DS_AOR_MAX, 1},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        const char *saved = *f[i].field;
        char *s = str_of(f[i].max, 'y');

        *f[i].field = s;
        assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live), 0);
        assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), 0);
        free(s);
        s = str_of(f[i].max + 1, 'y');
        *f[i].field = s;
        assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live),
                         SRM_ETOOBIG);
        free(s);
        *f[i].field = "\xf4\x90\x80\x80";
        assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live),
                         SRM_EBADUTF8);
        if (f[i].min) {
            *f[i].field = "";
            assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live),
                             -EINVAL);
        }
        *f[i].field = saved;
    }
    r.contacts[0].q = SRM_DS_SIP_Q_MAX + 1;
    assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live), SRM_ETOOBIG);
    r.contacts[0].q = 0;
    r.n_contacts = SRM_DS_SIP_CONTACTS_MAX + 1;
    assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live), SRM_ETOOBIG);
    r.n_contacts = 0;
    assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live), -EINVAL);
    /* the maximum number of contacts */
    r.n_contacts = SRM_DS_SIP_CONTACTS_MAX;
    for (unsigned i = 1; i < SRM_DS_SIP_CONTACTS_MAX; i++)
        r.contacts[i] = r.contacts[1];
    assert_int_equal(srm__ds_sip_encode(&r, 0, key, &klen, &buf, &cap, &blen, &live), 0);
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), 0);
    assert_int_equal(out.n_contacts, SRM_DS_SIP_CONTACTS_MAX);
    buf[1] = SRM_DS_SIP_CONTACTS_MAX + 1;
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), SRM_ETOOBIG);
    buf[1] = 0;
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), SRM_ECORRUPT);
    buf[0] = 0;
    assert_int_equal(srm_ds_sip_decode(key, klen, buf, blen, &out), SRM_EBADFORMAT);
    free(buf);
}

static void test_entry_codec(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len, used;
    struct srm_ds_entry e = {.seq = 77,
                             .kind = SRM_DS_LOGIN,
                             .flags = 0,
                             .stamp = {3, 123456, 2},
                             .key = "u\0s\0",
                             .key_len = 4,
                             .val = "\x01vvv",
                             .val_len = 4},
                        out;

    assert_int_equal(srm_ds_entry_encode(&e, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, srm_ds_entry_size(&e));
    assert_int_equal(srm_ds_entry_decode(buf, len, &out, &used), 0);
    assert_int_equal(used, len);
    assert_int_equal(out.seq, 77);
    assert_int_equal(out.kind, SRM_DS_LOGIN);
    assert_int_equal(out.stamp.epoch, 3);
    assert_int_equal(out.stamp.hlc, 123456);
    assert_int_equal(out.stamp.origin, 2);
    assert_int_equal(out.key_len, 4);
    assert_memory_equal(out.key, "u\0s\0", 4);
    assert_int_equal(out.val_len, 4);
    /* too small a buffer */
    assert_int_equal(srm_ds_entry_encode(&e, buf, len - 1, &len), -ENOBUFS);
    /* every truncation */
    for (size_t n = 0; n < len; n++)
        assert_true(srm_ds_entry_decode(buf, n, &out, &used) < 0);
    /* format byte */
    buf[0] = 7;
    assert_int_equal(srm_ds_entry_decode(buf, len, &out, &used), SRM_EBADFORMAT);
    buf[0] = 1;
    /* oversize key length */
    srm__ds_le16(buf + 35, SRM_DS_KEY_MAX + 1);
    assert_int_equal(srm_ds_entry_decode(buf, sizeof(buf), &out, &used), SRM_ETOOBIG);
    srm__ds_le16(buf + 35, 4);
    srm__ds_le32(buf + 37 - 4 + 4, 0);
    /* value length beyond the bound */
    srm__ds_le32(buf + 33 + 4, SRM_DS_VALUE_MAX + 1);
    assert_int_equal(srm_ds_entry_decode(buf, sizeof(buf), &out, &used), SRM_ETOOBIG);
    /* tombstone with a value */
    e.flags = SRM_DS_ENTRY_TOMBSTONE;
    assert_int_equal(srm_ds_entry_encode(&e, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 37 + 4);
    assert_int_equal(srm_ds_entry_decode(buf, len, &out, &used), 0);
    assert_null(out.val);
    buf[2] = 0; /* not a tombstone but no value */
    assert_int_equal(srm_ds_entry_decode(buf, len, &out, &used), SRM_ECORRUPT);
    /* unknown kind, bad flags */
    e.flags = 0;
    e.kind = SRM_DS_KIND_MAX;
    assert_int_equal(srm_ds_entry_encode(&e, buf, sizeof(buf), &len), -EINVAL);
    e.kind = 0;
    e.flags = 0x80;
    assert_int_equal(srm_ds_entry_encode(&e, buf, sizeof(buf), &len), -EINVAL);
}

static void test_record_check(void **state)
{
    (void)state;
    assert_int_equal(srm_ds_record_check(SRM_DS_KIND_MAX, "a\0", 2, "\x01", 1), -EINVAL);
    assert_int_equal(srm_ds_record_check(SRM_DS_SIP, "a\0", 2, "\x01", SRM_DS_VALUE_MAX + 1),
                     SRM_ETOOBIG);
    assert_true(srm_ds_record_check(SRM_DS_SIP, "a\0", 2, "\x01\x00", 2) < 0);
    assert_int_equal(srm_ds_record_check(SRM_DS_PRESENCE, "a\0\0", 3, "\x05", 1), SRM_EBADFORMAT);
}

/* The record hash spreads: every byte of kind, key and value matters, the split between
 * key and value matters, no collision among many similar records, buckets evenly filled. */
static int cmp_h(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] != y[1] ? (x[1] < y[1] ? -1 : 1) : 0);
}

static void test_hash_spread(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t(*h)[2] = malloc(sizeof(*h) * N);
    unsigned buckets[SRM_DS_DIGEST_BUCKETS] = {0};
    char key[32], val[200];

    assert_non_null(h);
    memset(val, 's', sizeof(val));
    for (unsigned i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof(key), "user%u", i) + 1;
        srm__ds_hash_record(0, key, (size_t)kl, val, sizeof(val), h[i]);
        buckets[srm__ds_bucket(0, key, (size_t)kl)]++;
    }
    qsort(h, N, sizeof(*h), cmp_h);
    for (unsigned i = 1; i < N; i++)
        assert_true(cmp_h(h[i - 1], h[i]) != 0);
    for (unsigned b = 0; b < SRM_DS_DIGEST_BUCKETS; b++) {
        assert_true(buckets[b] > N / SRM_DS_DIGEST_BUCKETS * 8 / 10);
        assert_true(buckets[b] < N / SRM_DS_DIGEST_BUCKETS * 12 / 10);
    }
    /* one bit anywhere changes the hash; so does moving the key/value boundary */
    uint64_t base[2], other[2];
    char k2[8] = "abcdefg", v2[40];
    memset(v2, 'v', sizeof(v2));
    srm__ds_hash_record(1, k2, 8, v2, sizeof(v2), base);
    for (size_t len = 0; len <= sizeof(v2); len += 1) {
        for (size_t bit = 0; bit < len * 8; bit += 7) {
            v2[bit / 8] ^= (char)(1 << (bit % 8));
            srm__ds_hash_record(1, k2, 8, v2, len, other);
            v2[bit / 8] ^= (char)(1 << (bit % 8));
            uint64_t ref[2];
            srm__ds_hash_record(1, k2, 8, v2, len, ref);
            assert_memory_not_equal(ref, other, sizeof(ref));
        }
    }
    srm__ds_hash_record(1, "ab", 2, "cd", 2, base);
    srm__ds_hash_record(1, "abc", 3, "d", 1, other);
    assert_memory_not_equal(base, other, sizeof(base));
    free(h);
}

static void test_digest_math(void **state)
{
    (void)state;
    struct srm_ds_digest d = {0, 0, 0}, z = {0, 0, 0};
    uint64_t h1[2], h2[2], h3[2];

    srm__ds_hash_record(0, "k1", 2, "v1", 2, h1);
    srm__ds_hash_record(0, "k2", 2, "v2", 2, h2);
    srm__ds_hash_record(1, "k1", 2, "v1", 2, h3);
    assert_memory_not_equal(h1, h3, sizeof(h1)); /* kind is part of the hash */
    /* order independence and exact removal, with carries */
    srm__ds_digest_add(&d, h1);
    srm__ds_digest_add(&d, h2);
    struct srm_ds_digest e = {0, 0, 0};
    srm__ds_digest_add(&e, h2);
    srm__ds_digest_add(&e, h1);
    assert_memory_equal(&d, &e, sizeof(d));
    srm__ds_digest_sub(&d, h1);
    srm__ds_digest_sub(&d, h2);
    assert_memory_equal(&d, &z, sizeof(d));
    uint64_t big[2] = {UINT64_MAX, 0};
    srm__ds_digest_add(&d, big);
    srm__ds_digest_add(&d, big);
    assert_int_equal(d.hi, 1);
    srm__ds_digest_sub(&d, big);
    srm__ds_digest_sub(&d, big);
    assert_memory_equal(&d, &z, sizeof(d));
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "user%d", i);
        assert_true(srm_ds_digest_bucket_of(SRM_DS_SIP, k, (size_t)n) < SRM_DS_DIGEST_BUCKETS);
    }
    assert_string_equal(srm_ds_kind_name(SRM_DS_SIP), "sip");
    assert_string_equal(srm_ds_kind_name(SRM_DS_KIND_MAX), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc),
        cmocka_unit_test(test_stamp_cmp),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_presence_codec),
        cmocka_unit_test(test_presence_decode_refusals),
        cmocka_unit_test(test_login_codec),
        cmocka_unit_test(test_sip_codec),
        cmocka_unit_test(test_entry_codec),
        cmocka_unit_test(test_record_check),
        cmocka_unit_test(test_digest_math),
        cmocka_unit_test(test_hash_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
