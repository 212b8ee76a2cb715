/*
 * Pure parts of the datastore: hashing, UTF-8, the hybrid logical clock, the conflict rule,
 * and the encodings of records and log entries. No I/O; the fuzz target drives the
 * decoders of this file.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* ---- Hashing for digests and buckets. The digest needs a good spread, not resistance to
 * an attacker (anyone who can write records can change it), and it is computed on every
 * write and every applied entry: a multiply-fold hash (the construction of wyhash, public
 * domain), about 0.3 instruction per byte where SipHash-1-3 took 5. Reads are host-order,
 * like the rest of the file layout (little-endian hosts). ---- */

#define HS0 0xa0761d6478bd642fULL
#define HS1 0xe7037ed1a0b428dbULL
#define HS2 0x8ebc6af09c88c6e3ULL
#define HS3 0x589965cc75374cc3ULL

static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static uint64_t hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t a, b;
    __uint128_t r;

    seed ^= fold_mul(seed ^ HS0, HS1);
    if (len <= 16) {
        if (len >= 4) {
            a = rd32(p) << 32 | rd32(p + ((len >> 3) << 2));
            b = rd32(p + len - 4) << 32 | rd32(p + len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = (uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;

        if (i > 48) {
            uint64_t see1 = seed, see2 = seed;

            do {
                seed = fold_mul(rd64(p) ^ HS1, rd64(p + 8) ^ seed);
                see1 = fold_mul(rd64(p + 16) ^ HS2, rd64(p + 24) ^ see1);
                see2 = fold_mul(rd64(p + 32) ^ HS3, rd64(p + 40) ^ see2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= see1 ^ see2;
        }
        while (i > 16) {
            seed = fold_mul(rd64(p) ^ HS1, rd64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    r = (__uint128_t)(a ^ HS1) * (b ^ seed);
    return fold_mul((uint64_t)r ^ HS0 ^ len, (uint64_t)(r >> 64) ^ HS1);
}

/* Fixed keys: every node must compute the same digests. They only spread values; the
 * digest is not a defence against an adversary who can write records. */
#define DIGEST_K0 0x73726d2d64732d31ULL
#define DIGEST_K1 0x6469676573742d31ULL
#define BUCKET_K0 0x73726d2d64732d32ULL

/* 128 bits from (kind, key, value): the key's hash seeds the value's; two different
 * foldings of both give the halves. */
void srm__ds_hash_record(uint8_t kind, const void *key, size_t key_len, const void *val,
                         size_t val_len, uint64_t ret[2])
{
    uint64_t hk = hash64(key, key_len, DIGEST_K0 ^ kind ^ (uint64_t)key_len << 8);
    uint64_t hv = hash64(val, val_len, hk ^ DIGEST_K1);

    ret[0] = fold_mul(hv ^ HS2, hk ^ HS3);
    ret[1] = fold_mul(hv ^ HS0 ^ val_len, hk ^ HS1 ^ DIGEST_K1);
}

unsigned srm__ds_bucket(uint8_t kind, const void *key, size_t key_len)
{
    return (unsigned)(hash64(key, key_len, BUCKET_K0 ^ kind) % SRM_DS_DIGEST_BUCKETS);
}

unsigned srm_ds_digest_bucket_of(enum srm_ds_kind kind, const void *key, size_t key_len)
{
    return srm__ds_bucket((uint8_t)kind, key, key_len);
}

/* ---- UTF-8: strict (no overlong forms, surrogates or values above U+10FFFF), no NUL ---- */

/* Nonzero if a word holds a byte with the high bit set or a zero byte. */
static inline uint64_t not_plain_ascii(uint64_t w)
{
    return (w | ((w - 0x0101010101010101ULL) & ~w)) & 0x8080808080808080ULL;
}

int srm__ds_utf8_check(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        /* ASCII fast path, 32 bytes at a time: text fields are mostly ASCII */
        while (n - i >= 32) {
            uint64_t w[4];

            memcpy(w, s + i, 32);
            if (not_plain_ascii(w[0]) | not_plain_ascii(w[1]) | not_plain_ascii(w[2]) |
                not_plain_ascii(w[3]))
                break;
            i += 32;
        }
        /* ... then 8 at a time, and a tail of less than 8 as the last 8 bytes */
        for (uint64_t w; n - i >= 8; i += 8) {
            memcpy(&w, s + i, 8);
            if (not_plain_ascii(w))
                break;
        }
        if (i >= n)
            break;
        if (n - i < 8 && n >= 8) {
            uint64_t w;

            memcpy(&w, s + n - 8, 8);
            if (!not_plain_ascii(w))
                break;
        }

        uint8_t c = s[i];
        uint32_t cp;
        size_t len;

        if (c == 0)
            return SRM_EBADUTF8;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return SRM_EBADUTF8;
        }
        if (n - i < len)
            return SRM_EBADUTF8;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return SRM_EBADUTF8;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return SRM_EBADUTF8;
        i += len;
    }
    return 0;
}

/* ---- clock and conflict rule ---- */

uint64_t srm_ds_hlc_send(uint64_t last, uint64_t wall_ms)
{
    uint64_t cand = (wall_ms & 0xffffffffffffULL) << 16;

    return cand > last ? cand : last + 1;
}

uint64_t srm_ds_hlc_recv(uint64_t last, uint64_t remote, uint64_t wall_ms)
{
    uint64_t m = last > remote ? last : remote;
    uint64_t cand = (wall_ms & 0xffffffffffffULL) << 16;

    return cand > m ? cand : m + 1;
}

int srm_ds_stamp_cmp(const struct srm_ds_stamp *a, const struct srm_ds_stamp *b)
{
    if (a->epoch != b->epoch)
        return a->epoch < b->epoch ? -1 : 1;
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    if (a->origin != b->origin)
        return a->origin < b->origin ? -1 : 1;
    return 0;
}

const char *srm_ds_kind_name(enum srm_ds_kind kind)
{
    switch (kind) {
    case SRM_DS_PRESENCE:
        return "presence";
    case SRM_DS_LOGIN:
        return "login";
    case SRM_DS_SIP:
        return "sip";
    default:
        return "?";
    }
}

/* ---- reader over a byte buffer ---- */

struct rd {
    const uint8_t *p;
    size_t left;
    bool utf8;
};

static int rd_u8(struct rd *r, uint8_t *v)
{
    if (r->left < 1)
        return SRM_ECORRUPT;
    *v = *r->p;
    r->p++;
    r->left--;
    return 0;
}

static int rd_u16(struct rd *r, uint16_t *v)
{
    if (r->left < 2)
        return SRM_ECORRUPT;
    *v = srm__ds_get_le16(r->p);
    r->p += 2;
    r->left -= 2;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    if (r->left < 4)
        return SRM_ECORRUPT;
    *v = srm__ds_get_le32(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
    if (r->left < 8)
        return SRM_ECORRUPT;
    *v = srm__ds_get_le64(r->p);
    r->p += 8;
    r->left -= 8;
    return 0;
}

/* A text field: u16 length | bytes | NUL. */
static int rd_str(struct rd *r, size_t min, size_t max, const char **ret)
{
    uint16_t n;
    int rc = rd_u16(r, &n);

    if (rc < 0)
        return rc;
    if (n > max)
        return SRM_ETOOBIG;
    if (n < min)
        return SRM_ECORRUPT;
    if (r->left < (size_t)n + 1 || r->p[n] != 0)
        return SRM_ECORRUPT;
    /* Stored records were checked when written; input from elsewhere is checked here (the
     * UTF-8 check refuses NUL too). */
    if (r->utf8 && (rc = srm__ds_utf8_check(r->p, n)) < 0)
        return rc;
    *ret = (const char *)r->p;
    r->p += n + 1;
    r->left -= n + 1;
    return 0;
}

/* Text whose length came earlier: bytes | NUL. Stored records were checked when written;
 * the terminator and the text are checked only for input from elsewhere (utf8). */
static int take_str(struct rd *r, size_t n, const char **ret)
{
    int rc;

    if (r->left < n + 1)
        return SRM_ECORRUPT;
    if (r->utf8) {
        if (r->p[n] != 0)
            return SRM_ECORRUPT;
        if ((rc = srm__ds_utf8_check(r->p, n)) < 0)
            return rc;
    }
    *ret = (const char *)r->p;
    r->p += n + 1;
    r->left -= n + 1;
    return 0;
}

/* ---- writer ---- */

struct wr {
    uint8_t *p;
};

static void wr_u8(struct wr *w, uint8_t v)
{
    *w->p++ = v;
}
static void wr_u16(struct wr *w, uint16_t v)
{
    srm__ds_le16(w->p, v);
    w->p += 2;
}
static void wr_u32(struct wr *w, uint32_t v)
{
    srm__ds_le32(w->p, v);
    w->p += 4;
}
static void wr_u64(struct wr *w, uint64_t v)
{
    srm__ds_le64(w->p, v);
    w->p += 8;
}
static void wr_str(struct wr *w, const char *s, size_t n)
{
    wr_u16(w, (uint16_t)n);
    memcpy(w->p, s, n);
    w->p[n] = 0;
    w->p += n + 1;
}
static void wr_text(struct wr *w, const char *s, size_t n)
{
    memcpy(w->p, s, n);
    w->p[n] = 0;
    w->p += n + 1;
}

/* Validates a caller's text field: length in [min, max], UTF-8, no NUL. */
static int text_check(const char *s, size_t min, size_t max, size_t *ret_len)
{
    size_t n;

    if (!s) {
        if (min > 0)
            return -EINVAL;
        *ret_len = 0;
        return 0;
    }
    n = strnlen(s, max + 1);
    if (n > max)
        return SRM_ETOOBIG;
    if (n < min)
        return -EINVAL;
    *ret_len = n;
    return srm__ds_utf8_check((const uint8_t *)s, n);
}

/* ---- keys: one or two NUL-terminated strings ---- */

int srm__ds_key_split(uint8_t kind, const uint8_t *key, size_t key_len, const char **a,
                      const char **b, bool check_utf8)
{
    const uint8_t *z;
    size_t amax, bmin, bmax, alen;
    int rc;

    switch (kind) {
    case SRM_DS_PRESENCE:
        amax = SRM_DS_USER_MAX, bmin = 0, bmax = SRM_DS_RESOURCE_MAX;
        break;
    case SRM_DS_LOGIN:
        amax = SRM_DS_USER_MAX, bmin = 1, bmax = SRM_DS_SESSION_ID_MAX;
        break;
    case SRM_DS_SIP:
        amax = SRM_DS_AOR_MAX, bmin = 0, bmax = 0;
        break;
    default:
        return -EINVAL;
    }
    if (key_len > SRM_DS_KEY_MAX)
        return SRM_ETOOBIG;
    z = key_len ? memchr(key, 0, key_len) : NULL;
    if (!z)
        return SRM_ECORRUPT;
    alen = (size_t)(z - key);
    if (alen == 0)
        return SRM_ECORRUPT;
    if (alen > amax)
        return SRM_ETOOBIG;
    if (check_utf8 && (rc = srm__ds_utf8_check(key, alen)) < 0)
        return rc;
    *a = (const char *)key;
    if (kind == SRM_DS_SIP) {
        if (alen + 1 != key_len)
            return SRM_ECORRUPT;
        if (b)
            *b = NULL;
        return 0;
    }
    {
        const uint8_t *s = z + 1;
        size_t left = key_len - alen - 1;
        const uint8_t *z2 = left ? memchr(s, 0, left) : NULL;
        size_t blen;

        if (!z2 || z2 + 1 != key + key_len)
            return SRM_ECORRUPT;
        blen = (size_t)(z2 - s);
        if (blen > bmax)
            return SRM_ETOOBIG;
        if (blen < bmin)
            return SRM_ECORRUPT;
        if (check_utf8 && (rc = srm__ds_utf8_check(s, blen)) < 0)
            return rc;
        *b = (const char *)s;
    }
    return 0;
}

int srm__ds_key_make(uint8_t kind, const char *a, const char *b, uint8_t *key, size_t *ret_len,
                     bool check_utf8)
{
    size_t amax, bmin, bmax, alen, blen = 0;
    int rc;

    switch (kind) {
    case SRM_DS_PRESENCE:
        amax = SRM_DS_USER_MAX, bmin = 0, bmax = SRM_DS_RESOURCE_MAX;
        break;
    case SRM_DS_LOGIN:
        amax = SRM_DS_USER_MAX, bmin = 1, bmax = SRM_DS_SESSION_ID_MAX;
        break;
    case SRM_DS_SIP:
        amax = SRM_DS_AOR_MAX, bmin = 0, bmax = 0;
        break;
    default:
        return -EINVAL;
    }
    if (!a || (kind != SRM_DS_SIP && kind != SRM_DS_PRESENCE && !b))
        return -EINVAL;
    alen = strnlen(a, amax + 1);
    if (alen > amax)
        return SRM_ETOOBIG;
    if (alen == 0)
        return -EINVAL;
    if (check_utf8 && (rc = srm__ds_utf8_check((const uint8_t *)a, alen)) < 0)
        return rc;
    memcpy(key, a, alen);
    key[alen] = 0;
    if (kind == SRM_DS_SIP) {
        *ret_len = alen + 1;
        return 0;
    }
    if (b) {
        blen = strnlen(b, bmax + 1);
        if (blen > bmax)
            return SRM_ETOOBIG;
        if (check_utf8 && (rc = srm__ds_utf8_check((const uint8_t *)b, blen)) < 0)
            return rc;
    }
    if (blen < bmin)
        return -EINVAL;
    if (alen + blen + 2 > SRM_DS_KEY_MAX)
        return SRM_ETOOBIG; /* both fields near their bounds: the key as a whole */
    if (blen)
        memcpy(key + alen + 1, b, blen);
    key[alen + 1 + blen] = 0;
    *ret_len = alen + blen + 2;
    return 0;
}

/* ---- presence body: fmt | avail | prio | updated u64 | status_len u16 | ext_len u16 |
 * status NUL | ext. Lengths first: a read decodes from the first cache line. ---- */

int srm__ds_presence_encode(const struct srm_ds_presence *p, uint8_t *key, size_t *key_len,
                            uint8_t **buf, size_t *cap, size_t *ret_len)
{
    size_t slen, need;
    struct wr w;
    int rc;

    if (!p || (unsigned)p->availability >= SRM_DS_AVAIL_MAX || (p->ext_len && !p->ext))
        return -EINVAL;
    if ((rc = srm__ds_key_make(SRM_DS_PRESENCE, p->user, p->resource, key, key_len, true)) < 0)
        return rc;
    if ((rc = text_check(p->status, 0, SRM_DS_STATUS_MAX, &slen)) < 0)
        return rc;
    if (p->ext_len > SRM_DS_EXT_MAX)
        return SRM_ETOOBIG;
    need = DS_PRESENCE_HDR + slen + 1 + p->ext_len;
    if ((rc = srm__ds_scratch(buf, cap, need)) < 0)
        return rc;
    w.p = *buf;
    wr_u8(&w, SRM_DS_RECORD_FORMAT);
    wr_u8(&w, (uint8_t)p->availability);
    wr_u8(&w, (uint8_t)p->priority);
    wr_u64(&w, p->updated_ms);
    wr_u16(&w, (uint16_t)slen);
    wr_u16(&w, (uint16_t)p->ext_len);
    wr_text(&w, p->status ? p->status : "", slen);
    if (p->ext_len)
        memcpy(w.p, p->ext, p->ext_len);
    w.p += p->ext_len;
    *ret_len = (size_t)(w.p - *buf);
    return 0;
}

int srm__ds_presence_decode(const uint8_t *val, size_t len, struct srm_ds_presence *p,
                            bool check_utf8)
{
    struct rd r = {val, len, check_utf8};
    uint8_t fmt, avail, prio;
    uint16_t slen, ext_len;
    int rc;

    if ((rc = rd_u8(&r, &fmt)) < 0)
        return rc;
    if (fmt != SRM_DS_RECORD_FORMAT)
        return SRM_EBADFORMAT;
    if ((rc = rd_u8(&r, &avail)) < 0 || (rc = rd_u8(&r, &prio)) < 0 ||
        (rc = rd_u64(&r, &p->updated_ms)) < 0 || (rc = rd_u16(&r, &slen)) < 0 ||
        (rc = rd_u16(&r, &ext_len)) < 0)
        return rc;
    if (slen > SRM_DS_STATUS_MAX || ext_len > SRM_DS_EXT_MAX)
        return SRM_ETOOBIG;
    if (avail >= SRM_DS_AVAIL_MAX || r.left != (size_t)slen + 1 + ext_len)
        return SRM_ECORRUPT;
    if ((rc = take_str(&r, slen, &p->status)) < 0)
        return rc;
    p->availability = (enum srm_ds_availability)avail;
    p->priority = (int8_t)prio;
    p->ext = ext_len ? r.p : NULL;
    p->ext_len = ext_len;
    return 0;
}

/* ---- login body: fmt | active | node u32 | login u64 | resource_len u16 | type_len u16 |
 * version_len u16 | resource NUL | type NUL | version NUL ---- */

int srm__ds_login_encode(const struct srm_ds_login *l, uint8_t *key, size_t *key_len, uint8_t **buf,
                         size_t *cap, size_t *ret_len)
{
    size_t rl, tl, vl;
    struct wr w;
    int rc;

    if (!l || l->node == SRM_DS_NODE_NONE)
        return -EINVAL;
    if ((rc = srm__ds_key_make(SRM_DS_LOGIN, l->user, l->session_id, key, key_len, true)) < 0)
        return rc;
    if ((rc = text_check(l->resource, 0, SRM_DS_RESOURCE_MAX, &rl)) < 0 ||
        (rc = text_check(l->client_type, 0, SRM_DS_CLIENT_TYPE_MAX, &tl)) < 0 ||
        (rc = text_check(l->client_version, 0, SRM_DS_CLIENT_VERSION_MAX, &vl)) < 0)
        return rc;
    if ((rc = srm__ds_scratch(buf, cap, DS_LOGIN_HDR + 3 + rl + tl + vl)) < 0)
        return rc;
    w.p = *buf;
    wr_u8(&w, SRM_DS_RECORD_FORMAT);
    wr_u8(&w, l->active ? 1 : 0);
    wr_u32(&w, l->node);
    wr_u64(&w, l->login_ms);
    wr_u16(&w, (uint16_t)rl);
    wr_u16(&w, (uint16_t)tl);
    wr_u16(&w, (uint16_t)vl);
    wr_text(&w, l->resource ? l->resource : "", rl);
    wr_text(&w, l->client_type ? l->client_type : "", tl);
    wr_text(&w, l->client_version ? l->client_version : "", vl);
    *ret_len = (size_t)(w.p - *buf);
    return 0;
}

int srm__ds_login_decode(const uint8_t *val, size_t len, struct srm_ds_login *l, bool check_utf8)
{
    struct rd r = {val, len, check_utf8};
    uint8_t fmt, active;
    uint16_t rl, tl, vl;
    int rc;

    if ((rc = rd_u8(&r, &fmt)) < 0)
        return rc;
    if (fmt != SRM_DS_RECORD_FORMAT)
        return SRM_EBADFORMAT;
    if ((rc = rd_u8(&r, &active)) < 0 || (rc = rd_u32(&r, &l->node)) < 0 ||
        (rc = rd_u64(&r, &l->login_ms)) < 0 || (rc = rd_u16(&r, &rl)) < 0 ||
        (rc = rd_u16(&r, &tl)) < 0 || (rc = rd_u16(&r, &vl)) < 0)
        return rc;
    if (rl > SRM_DS_RESOURCE_MAX || tl > SRM_DS_CLIENT_TYPE_MAX || vl > SRM_DS_CLIENT_VERSION_MAX)
        return SRM_ETOOBIG;
    if (active > 1 || l->node == SRM_DS_NODE_NONE || r.left != (size_t)rl + tl + vl + 3)
        return SRM_ECORRUPT;
    if ((rc = take_str(&r, rl, &l->resource)) < 0 || (rc = take_str(&r, tl, &l->client_type)) < 0 ||
        (rc = take_str(&r, vl, &l->client_version)) < 0)
        return rc;
    l->active = active;
    return 0;
}

int srm__ds_login_active(const uint8_t *val, size_t len, bool *ret)
{
    if (len < 2)
        return SRM_ECORRUPT;
    *ret = val[1] != 0;
    return 0;
}

/* ---- SIP body: fmt | n u8 | n x (expires u64 | cseq u32 | q u16 | uri | call_id | path |
 * received) ---- */

int srm__ds_sip_encode(const struct srm_ds_sip_reg *reg, uint64_t now_ms, uint8_t *key,
                       size_t *key_len, uint8_t **buf, size_t *cap, size_t *ret_len,
                       unsigned *ret_live)
{
    size_t lens[SRM_DS_SIP_CONTACTS_MAX][4];
    size_t need = 2;
    unsigned live = 0;
    struct wr w;
    int rc;

    if (!reg || reg->n_contacts == 0)
        return -EINVAL;
    if (reg->n_contacts > SRM_DS_SIP_CONTACTS_MAX)
        return SRM_ETOOBIG;
    if ((rc = srm__ds_key_make(SRM_DS_SIP, reg->aor, NULL, key, key_len, true)) < 0)
        return rc;
    for (unsigned i = 0; i < reg->n_contacts; i++) {
        const struct srm_ds_sip_contact *c = &reg->contacts[i];

        if ((rc = text_check(c->uri, 1, SRM_DS_CONTACT_URI_MAX, &lens[i][0])) < 0 ||
            (rc = text_check(c->call_id, 1, SRM_DS_CALL_ID_MAX, &lens[i][1])) < 0 ||
            (rc = text_check(c->path, 0, SRM_DS_PATH_MAX, &lens[i][2])) < 0 ||
            (rc = text_check(c->received, 0, SRM_DS_RECEIVED_MAX, &lens[i][3])) < 0)
            return rc;
        if (c->q > SRM_DS_SIP_Q_MAX)
            return SRM_ETOOBIG;
        if (c->expires_ms > now_ms)
            need += 14 + 12 + lens[i][0] + lens[i][1] + lens[i][2] + lens[i][3];
    }
    if ((rc = srm__ds_scratch(buf, cap, need)) < 0)
        return rc;
    w.p = *buf;
    wr_u8(&w, SRM_DS_RECORD_FORMAT);
    wr_u8(&w, 0);
    for (unsigned i = 0; i < reg->n_contacts; i++) {
        const struct srm_ds_sip_contact *c = &reg->contacts[i];

        if (c->expires_ms <= now_ms)
            continue;
        wr_u64(&w, c->expires_ms);
        wr_u32(&w, c->cseq);
        wr_u16(&w, c->q);
        wr_str(&w, c->uri, lens[i][0]);
        wr_str(&w, c->call_id, lens[i][1]);
        wr_str(&w, c->path ? c->path : "", lens[i][2]);
        wr_str(&w, c->received ? c->received : "", lens[i][3]);
        live++;
    }
    (*buf)[1] = (uint8_t)live;
    *ret_len = (size_t)(w.p - *buf);
    *ret_live = live;
    return 0;
}

int srm__ds_sip_decode(const uint8_t *val, size_t len, struct srm_ds_sip_reg *reg, bool check_utf8)
{
    struct rd r = {val, len, check_utf8};
    uint8_t fmt, n;
    int rc;

    if ((rc = rd_u8(&r, &fmt)) < 0)
        return rc;
    if (fmt != SRM_DS_RECORD_FORMAT)
        return SRM_EBADFORMAT;
    if ((rc = rd_u8(&r, &n)) < 0)
        return rc;
    if (n > SRM_DS_SIP_CONTACTS_MAX)
        return SRM_ETOOBIG;
    if (n == 0)
        return SRM_ECORRUPT;
    for (unsigned i = 0; i < n; i++) {
        struct srm_ds_sip_contact *c = &reg->contacts[i];

        if ((rc = rd_u64(&r, &c->expires_ms)) < 0 || (rc = rd_u32(&r, &c->cseq)) < 0 ||
            (rc = rd_u16(&r, &c->q)) < 0 ||
            (rc = rd_str(&r, 1, SRM_DS_CONTACT_URI_MAX, &c->uri)) < 0 ||
            (rc = rd_str(&r, 1, SRM_DS_CALL_ID_MAX, &c->call_id)) < 0 ||
            (rc = rd_str(&r, 0, SRM_DS_PATH_MAX, &c->path)) < 0 ||
            (rc = rd_str(&r, 0, SRM_DS_RECEIVED_MAX, &c->received)) < 0)
            return rc;
        if (c->q > SRM_DS_SIP_Q_MAX)
            return SRM_ETOOBIG;
    }
    if (r.left != 0)
        return SRM_ECORRUPT;
    reg->n_contacts = n;
    return 0;
}

int srm__ds_sip_earliest(const uint8_t *val, size_t len, uint64_t *ret)
{
    struct srm_ds_sip_reg reg;
    uint64_t e = UINT64_MAX;
    int rc = srm__ds_sip_decode(val, len, &reg, false);

    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < reg.n_contacts; i++)
        if (reg.contacts[i].expires_ms < e)
            e = reg.contacts[i].expires_ms;
    *ret = e;
    return 0;
}

/* ---- public decoders ---- */

int srm_ds_presence_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                           struct srm_ds_presence *ret)
{
    struct srm_ds_presence p;
    int rc;

    if (!key || !val || !ret)
        return -EINVAL;
    if ((rc = srm__ds_key_split(SRM_DS_PRESENCE, key, key_len, &p.user, &p.resource, true)) < 0 ||
        (rc = srm__ds_presence_decode(val, val_len, &p, true)) < 0)
        return rc;
    *ret = p;
    return 0;
}

int srm_ds_login_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                        struct srm_ds_login *ret)
{
    struct srm_ds_login l;
    int rc;

    if (!key || !val || !ret)
        return -EINVAL;
    if ((rc = srm__ds_key_split(SRM_DS_LOGIN, key, key_len, &l.user, &l.session_id, true)) < 0 ||
        (rc = srm__ds_login_decode(val, val_len, &l, true)) < 0)
        return rc;
    *ret = l;
    return 0;
}

int srm_ds_sip_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                      struct srm_ds_sip_reg *ret)
{
    const char *aor;
    int rc;

    if (!key || !val || !ret)
        return -EINVAL;
    if ((rc = srm__ds_key_split(SRM_DS_SIP, key, key_len, &aor, NULL, true)) < 0 ||
        (rc = srm__ds_sip_decode(val, val_len, ret, true)) < 0)
        return rc;
    ret->aor = aor;
    return 0;
}

int srm_ds_record_check(enum srm_ds_kind kind, const void *key, size_t key_len, const void *val,
                        size_t val_len)
{
    union {
        struct srm_ds_presence p;
        struct srm_ds_login l;
        struct srm_ds_sip_reg s;
    } u;

    if (val_len > SRM_DS_VALUE_MAX)
        return SRM_ETOOBIG;
    switch (kind) {
    case SRM_DS_PRESENCE:
        return srm_ds_presence_decode(key, key_len, val, val_len, &u.p);
    case SRM_DS_LOGIN:
        return srm_ds_login_decode(key, key_len, val, val_len, &u.l);
    case SRM_DS_SIP:
        return srm_ds_sip_decode(key, key_len, val, val_len, &u.s);
    default:
        return -EINVAL;
    }
}

/* ---- log entries on the wire ---- */

size_t srm_ds_entry_size(const struct srm_ds_entry *e)
{
    return DS_WIRE_HDR + e->key_len + ((e->flags & SRM_DS_ENTRY_TOMBSTONE) ? 0 : e->val_len);
}

int srm_ds_entry_encode(const struct srm_ds_entry *e, void *buf, size_t cap, size_t *ret_len)
{
    bool tomb;
    size_t vlen, n;
    struct wr w;

    if (!e || !buf || e->kind >= SRM_DS_KIND_MAX || (e->flags & ~SRM_DS_ENTRY_TOMBSTONE) ||
        e->key_len == 0 || e->key_len > SRM_DS_KEY_MAX || !e->key)
        return -EINVAL;
    tomb = e->flags & SRM_DS_ENTRY_TOMBSTONE;
    vlen = tomb ? 0 : e->val_len;
    if ((!tomb && (!e->val || vlen == 0)) || vlen > SRM_DS_VALUE_MAX)
        return -EINVAL;
    n = DS_WIRE_HDR + e->key_len + vlen;
    if (n > cap)
        return -ENOBUFS;
    w.p = buf;
    wr_u8(&w, DS_WIRE_FMT);
    wr_u8(&w, e->kind);
    wr_u8(&w, e->flags);
    wr_u64(&w, e->seq);
    wr_u64(&w, e->stamp.epoch);
    wr_u64(&w, e->stamp.hlc);
    wr_u32(&w, e->stamp.origin);
    wr_u16(&w, (uint16_t)e->key_len);
    wr_u32(&w, (uint32_t)vlen);
    memcpy(w.p, e->key, e->key_len);
    if (vlen)
        memcpy(w.p + e->key_len, e->val, vlen);
    if (ret_len)
        *ret_len = n;
    return 0;
}

int srm_ds_entry_decode(const void *buf, size_t len, struct srm_ds_entry *ret, size_t *ret_used)
{
    struct rd r = {buf, len, false};
    struct srm_ds_entry e;
    uint8_t fmt;
    uint16_t klen;
    uint32_t vlen;
    int rc;

    if (!buf || !ret)
        return -EINVAL;
    if ((rc = rd_u8(&r, &fmt)) < 0)
        return rc;
    if (fmt != DS_WIRE_FMT)
        return SRM_EBADFORMAT;
    if ((rc = rd_u8(&r, &e.kind)) < 0 || (rc = rd_u8(&r, &e.flags)) < 0 ||
        (rc = rd_u64(&r, &e.seq)) < 0 || (rc = rd_u64(&r, &e.stamp.epoch)) < 0 ||
        (rc = rd_u64(&r, &e.stamp.hlc)) < 0 || (rc = rd_u32(&r, &e.stamp.origin)) < 0 ||
        (rc = rd_u16(&r, &klen)) < 0 || (rc = rd_u32(&r, &vlen)) < 0)
        return rc;
    if (e.kind >= SRM_DS_KIND_MAX || (e.flags & ~SRM_DS_ENTRY_TOMBSTONE) || klen == 0)
        return SRM_ECORRUPT;
    if (klen > SRM_DS_KEY_MAX || vlen > SRM_DS_VALUE_MAX)
        return SRM_ETOOBIG;
    if ((e.flags & SRM_DS_ENTRY_TOMBSTONE) ? vlen != 0 : vlen == 0)
        return SRM_ECORRUPT;
    if (r.left < (size_t)klen + vlen)
        return SRM_ECORRUPT;
    e.key = r.p;
    e.key_len = klen;
    e.val = vlen ? r.p + klen : NULL;
    e.val_len = vlen;
    *ret = e;
    if (ret_used)
        *ret_used = DS_WIRE_HDR + klen + vlen;
    return 0;
}
