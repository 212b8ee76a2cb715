/*
 * Wire format of replication: CRC32C, frame header, and the encoders and decoders of every
 * message (replication/README.md gives the layout). Decoders never trust a length: each
 * field is checked against the bytes that remain and against its documented bound.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "srm_error.h"

/* ---- CRC32C (Castagnoli): the SSE4.2 instruction where the CPU has it (about 4x the
 * table's speed: every byte of every frame goes through it on both sides), else
 * slicing-by-8 tables. ---- */

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint32_t srm__repl_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init(); /* idempotent: concurrent callers compute the same table */
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* the instruction reads little-endian, like the tables */
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

int srm__repl_crc32c_hw(void)
{
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}

uint32_t srm__repl_crc32c(uint32_t crc, const void *data, size_t len)
{
    return srm__repl_crc32c_hw() ? crc_hw(crc, data, len) : srm__repl_crc32c_sw(crc, data, len);
}
#else
int srm__repl_crc32c_hw(void)
{
    return 0;
}

uint32_t srm__repl_crc32c(uint32_t crc, const void *data, size_t len)
{
    return srm__repl_crc32c_sw(crc, data, len);
}
#endif

/* ---- little-endian helpers ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* A bounds-checked reader over a payload. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static int rd_u8(struct rd *r, uint8_t *v)
{
    if (r->left < 1)
        return SRM_EBADFRAME;
    *v = r->p[0];
    r->p++;
    r->left--;
    return 0;
}

static int rd_u16(struct rd *r, uint16_t *v)
{
    if (r->left < 2)
        return SRM_EBADFRAME;
    *v = get16(r->p);
    r->p += 2;
    r->left -= 2;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    if (r->left < 4)
        return SRM_EBADFRAME;
    *v = get32(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
    if (r->left < 8)
        return SRM_EBADFRAME;
    *v = get64(r->p);
    r->p += 8;
    r->left -= 8;
    return 0;
}

/* ---- frame ---- */

const char *srm__repl_msg_name(unsigned type)
{
    switch (type) {
#define X(name, val, str)                                                                          \
    case val:                                                                                      \
        return str;
        SRM__REPL_MSG_MAP(X)
#undef X
    }
    return "unknown";
}

void srm__repl_frame_header(uint8_t hdr[SRM__REPL_HDR], uint8_t type, const void *payload,
                            size_t len)
{
    put32(hdr, (uint32_t)len);
    hdr[4] = type;
    hdr[5] = 0;
    put16(hdr + 6, 0);
    uint32_t crc = srm__repl_crc32c(0, hdr, 8);
    crc = srm__repl_crc32c(crc, payload, len);
    put32(hdr + 8, crc);
}

int srm__repl_frame_decode(const void *buf, size_t len, size_t max_payload,
                           struct srm__repl_frame *ret_frame)
{
    const uint8_t *p = buf;
    if (len < SRM__REPL_HDR)
        return 0;
    uint32_t plen = get32(p);
    if (plen > max_payload || plen > SRM__REPL_FRAME_MAX)
        return SRM_EBADFRAME;
    if (p[4] < SRM__REPL_MSG_FIRST || p[4] > SRM__REPL_MSG_LAST || p[5] != 0 || get16(p + 6) != 0)
        return SRM_EBADFRAME;
    if (len - SRM__REPL_HDR < plen)
        return 0;
    uint32_t crc = srm__repl_crc32c(0, p, 8);
    crc = srm__repl_crc32c(crc, p + SRM__REPL_HDR, plen);
    if (crc != get32(p + 8))
        return SRM_EBADCHECKSUM;
    ret_frame->type = p[4];
    ret_frame->payload = p + SRM__REPL_HDR;
    ret_frame->len = plen;
    return (int)(SRM__REPL_HDR + plen);
}

/* ---- names ---- */

int srm__repl_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > SRM_REPL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* ---- messages ---- */

static void put_part(uint8_t *p, const struct srm__repl_partrec *pr)
{
    put32(p, pr->part);
    p[4] = pr->role;
    put64(p + 5, pr->epoch);
    put64(p + 13, pr->gen);
    put64(p + 21, pr->seq);
}

static int rd_part(struct rd *r, struct srm__repl_partrec *pr)
{
    uint8_t role;
    int rc;
    if ((rc = rd_u32(r, &pr->part)) < 0 || (rc = rd_u8(r, &role)) < 0 ||
        (rc = rd_u64(r, &pr->epoch)) < 0 || (rc = rd_u64(r, &pr->gen)) < 0 ||
        (rc = rd_u64(r, &pr->seq)) < 0)
        return rc;
    if (role > SRM_REPL_ROLE_SINK || pr->part == 0)
        return SRM_EBADFRAME;
    pr->role = role;
    return 0;
}

size_t srm__repl_hello_size(const struct srm__repl_hello *h)
{
    return 4 + 2 + 2 + 1 + strlen(h->cluster) + 4 + 4 + 8 + 2 +
           (size_t)h->nparts * SRM__REPL_PARTREC_SIZE;
}

size_t srm__repl_hello_encode(const struct srm__repl_hello *h, uint8_t *p)
{
    size_t cl = strlen(h->cluster);
    uint8_t *s = p;
    put32(p, SRM__REPL_MAGIC);
    put16(p + 4, h->version_min);
    put16(p + 6, h->version_max);
    p[8] = (uint8_t)cl;
    memcpy(p + 9, h->cluster, cl);
    p += 9 + cl;
    put32(p, h->node_id);
    put32(p + 4, h->peer_id);
    put64(p + 8, h->instance);
    put16(p + 16, (uint16_t)h->nparts);
    p += 18;
    for (unsigned i = 0; i < h->nparts; i++, p += SRM__REPL_PARTREC_SIZE)
        put_part(p, &h->parts[i]);
    return (size_t)(p - s);
}

int srm__repl_hello_decode(const void *buf, size_t len, struct srm__repl_hello *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_hello h;
    uint32_t magic;
    uint8_t cl;
    uint16_t np;
    int rc;

    memset(&h, 0, sizeof(h));
    if ((rc = rd_u32(&r, &magic)) < 0)
        return SRM_EHANDSHAKE;
    if (magic != SRM__REPL_MAGIC)
        return SRM_EHANDSHAKE;
    if (rd_u16(&r, &h.version_min) < 0 || rd_u16(&r, &h.version_max) < 0 || rd_u8(&r, &cl) < 0)
        return SRM_EHANDSHAKE;
    if (h.version_min == 0 || h.version_min > h.version_max)
        return SRM_EHANDSHAKE;
    if (cl > r.left || !srm__repl_name_valid((const char *)r.p, cl))
        return SRM_EHANDSHAKE;
    memcpy(h.cluster, r.p, cl);
    h.cluster[cl] = '\0';
    r.p += cl;
    r.left -= cl;
    if (rd_u32(&r, &h.node_id) < 0 || rd_u32(&r, &h.peer_id) < 0 || rd_u64(&r, &h.instance) < 0 ||
        rd_u16(&r, &np) < 0)
        return SRM_EHANDSHAKE;
    if (np > SRM_REPL_PARTS_MAX || r.left != (size_t)np * SRM__REPL_PARTREC_SIZE)
        return SRM_EHANDSHAKE;
    h.nparts = np;
    for (unsigned i = 0; i < np; i++) {
        if (rd_part(&r, &h.parts[i]) < 0)
            return SRM_EHANDSHAKE;
        for (unsigned j = 0; j < i; j++)
            if (h.parts[j].part == h.parts[i].part)
                return SRM_EHANDSHAKE; /* a partition declared twice */
    }
    *ret = h;
    return 0;
}

size_t srm__repl_part_encode(const struct srm__repl_partrec *pr, uint8_t *p)
{
    put_part(p, pr);
    return SRM__REPL_PARTREC_SIZE;
}

int srm__repl_part_decode(const void *buf, size_t len, struct srm__repl_partrec *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_partrec pr;
    if (len != SRM__REPL_PARTREC_SIZE || rd_part(&r, &pr) < 0)
        return SRM_EBADFRAME;
    *ret = pr;
    return 0;
}

size_t srm__repl_entries_encode_head(const struct srm__repl_entries *e, uint8_t *p)
{
    put32(p, e->part);
    put64(p + 4, e->epoch);
    put64(p + 12, e->gen);
    put64(p + 20, e->first_seq);
    put64(p + 28, e->through_seq);
    put64(p + 36, e->head_seq);
    put32(p + 44, e->count);
    put32(p + 48, 0);
    put32(p + 52, 0);
    return SRM__REPL_ENTRIES_HEAD;
}

int srm__repl_entries_decode(const void *buf, size_t len, struct srm__repl_entries *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_entries e;
    uint32_t rsv1, rsv2;
    if (rd_u32(&r, &e.part) < 0 || rd_u64(&r, &e.epoch) < 0 || rd_u64(&r, &e.gen) < 0 ||
        rd_u64(&r, &e.first_seq) < 0 || rd_u64(&r, &e.through_seq) < 0 ||
        rd_u64(&r, &e.head_seq) < 0 || rd_u32(&r, &e.count) < 0 || rd_u32(&r, &rsv1) < 0 ||
        rd_u32(&r, &rsv2) < 0)
        return SRM_EBADFRAME;
    /* Sequences start at 1; a batch covers first..through, of which count were sent. */
    if (e.part == 0 || e.first_seq == 0 || e.through_seq < e.first_seq ||
        e.head_seq < e.through_seq || e.through_seq - e.first_seq >= UINT32_MAX ||
        e.count > e.through_seq - e.first_seq + 1 || (e.count == 0) != (r.left == 0) || rsv1 != 0 ||
        rsv2 != 0)
        return SRM_EBADFRAME;
    e.data = r.p;
    e.len = r.left;
    *ret = e;
    return 0;
}

size_t srm__repl_ack_encode(const struct srm__repl_ack *a, uint8_t *p)
{
    put32(p, a->part);
    put64(p + 4, a->gen);
    put64(p + 12, a->seq);
    put64(p + 20, a->epoch);
    return SRM__REPL_ACK_SIZE;
}

int srm__repl_ack_decode(const void *buf, size_t len, struct srm__repl_ack *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_ack a;
    if (len != SRM__REPL_ACK_SIZE || rd_u32(&r, &a.part) < 0 || rd_u64(&r, &a.gen) < 0 ||
        rd_u64(&r, &a.seq) < 0 || rd_u64(&r, &a.epoch) < 0 || a.part == 0)
        return SRM_EBADFRAME;
    *ret = a;
    return 0;
}

size_t srm__repl_snapinfo_encode(const struct srm__repl_snapinfo *i, uint8_t *p)
{
    put32(p, i->source);
    put64(p + 4, i->gen);
    put64(p + 12, i->hlc);
    put32(p + 20, i->owner_node);
    put64(p + 24, i->owner_epoch);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 3; j++)
            put64(p + 32 + 24 * k + 8 * j, i->digest[k][j]);
    put64(p + 104, i->entries);
    return SRM__REPL_SNAPINFO_SIZE;
}

int srm__repl_snapinfo_decode(const void *buf, size_t len, struct srm__repl_snapinfo *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_snapinfo i;
    if (len != SRM__REPL_SNAPINFO_SIZE)
        return SRM_EBADFRAME;
    rd_u32(&r, &i.source);
    rd_u64(&r, &i.gen);
    rd_u64(&r, &i.hlc);
    rd_u32(&r, &i.owner_node);
    rd_u64(&r, &i.owner_epoch);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 3; j++)
            rd_u64(&r, &i.digest[k][j]);
    rd_u64(&r, &i.entries);
    if (i.source == 0)
        return SRM_EBADFRAME;
    *ret = i;
    return 0;
}

size_t srm__repl_snap_encode_head(const struct srm__repl_snap *s, uint8_t *p)
{
    put32(p, s->part);
    put64(p + 4, s->epoch);
    put64(p + 12, s->seq);
    put32(p + 20, s->index);
    put64(p + 24, s->total);
    return SRM__REPL_SNAP_HEAD;
}

int srm__repl_snap_decode(uint8_t type, const void *buf, size_t len, struct srm__repl_snap *ret)
{
    struct rd r = {buf, len};
    struct srm__repl_snap s;
    if (rd_u32(&r, &s.part) < 0 || rd_u64(&r, &s.epoch) < 0 || rd_u64(&r, &s.seq) < 0 ||
        rd_u32(&r, &s.index) < 0 || rd_u64(&r, &s.total) < 0 || s.part == 0)
        return SRM_EBADFRAME;
    s.data = r.p;
    s.len = r.left;
    switch (type) {
    case SRM__REPL_MSG_SNAP_BEGIN:
        if (s.index != 0 || s.total != 0 || s.len != SRM__REPL_SNAPINFO_SIZE)
            return SRM_EBADFRAME;
        break;
    case SRM__REPL_MSG_SNAP_CHUNK:
        if (s.len == 0)
            return SRM_EBADFRAME;
        break;
    case SRM__REPL_MSG_SNAP_END:
        if (s.len != 0)
            return SRM_EBADFRAME;
        break;
    case SRM__REPL_MSG_SNAP_ACK:
        if (s.len != 0 || s.total != 0)
            return SRM_EBADFRAME;
        break;
    default:
        return SRM_EBADFRAME;
    }
    *ret = s;
    return 0;
}

size_t srm__repl_ping_encode(uint64_t token, uint8_t *p)
{
    put64(p, token);
    return 8;
}

int srm__repl_ping_decode(const void *buf, size_t len, uint64_t *ret_token)
{
    if (len != 8)
        return SRM_EBADFRAME;
    *ret_token = get64(buf);
    return 0;
}

size_t srm__repl_error_encode(int err, const char *msg, uint8_t *p)
{
    size_t ml = msg ? strlen(msg) : 0;
    if (ml > SRM__REPL_ERRMSG_MAX)
        ml = SRM__REPL_ERRMSG_MAX;
    put32(p, (uint32_t)(err < 0 ? -err : err));
    put16(p + 4, (uint16_t)ml);
    if (ml)
        memcpy(p + 6, msg, ml);
    return 6 + ml;
}

int srm__repl_error_decode(const void *buf, size_t len, int *ret_err, char *msg, size_t msgcap)
{
    struct rd r = {buf, len};
    uint32_t code;
    uint16_t ml;
    if (rd_u32(&r, &code) < 0 || rd_u16(&r, &ml) < 0 || ml != r.left || ml > SRM__REPL_ERRMSG_MAX ||
        code == 0 || code > 0x7fffffffu)
        return SRM_EBADFRAME;
    for (size_t i = 0; i < ml; i++)
        if (r.p[i] < 0x20 || r.p[i] > 0x7e)
            return SRM_EBADFRAME; /* printable ASCII only: it ends up in logs */
    if (msgcap) {
        size_t n = ml < msgcap - 1 ? ml : msgcap - 1;
        memcpy(msg, r.p, n);
        msg[n] = '\0';
    }
    *ret_err = -(int)code;
    return 0;
}
