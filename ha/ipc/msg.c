/*
 * The IPC frame codec (layout in ha/ipc/README.md). The decoder is strict: one valid
 * encoding per message, every field checked, nothing after the body. The encoder checks the
 * same bounds, so whatever it produces decodes back to the same message.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ names */

const char *srm_ipc_type_name(enum srm_ipc_type type)
{
    switch (type) {
#define SRM__IPC_TYPE_NAME(name, value, str, from_engine)                                          \
    case SRM_IPC_##name:                                                                           \
        return str;
        SRM_IPC_TYPE_MAP(SRM__IPC_TYPE_NAME)
#undef SRM__IPC_TYPE_NAME
    }
    return "?";
}

static bool type_known(unsigned type)
{
    switch (type) {
#define SRM__IPC_TYPE_KNOWN(name, value, str, from_engine) case value:
        SRM_IPC_TYPE_MAP(SRM__IPC_TYPE_KNOWN)
#undef SRM__IPC_TYPE_KNOWN
        return true;
    }
    return false;
}

bool srm_ipc_type_from_engine(enum srm_ipc_type type)
{
    switch (type) {
#define SRM__IPC_TYPE_FROM(name, value, str, from_engine)                                          \
    case SRM_IPC_##name:                                                                           \
        return from_engine;
        SRM_IPC_TYPE_MAP(SRM__IPC_TYPE_FROM)
#undef SRM__IPC_TYPE_FROM
    }
    return false;
}

bool srm_ipc_type_is_command(enum srm_ipc_type type)
{
    return type == SRM_IPC_SERVE || type == SRM_IPC_RELEASE || type == SRM_IPC_STOP_SERVICES ||
           type == SRM_IPC_START_SERVICES;
}

const char *srm_ipc_reason_name(enum srm_ipc_reason reason)
{
    switch (reason) {
#define SRM__IPC_REASON_NAME(name, value, str)                                                     \
    case SRM_IPC_REASON_##name:                                                                    \
        return str;
        SRM_IPC_REASON_MAP(SRM__IPC_REASON_NAME)
#undef SRM__IPC_REASON_NAME
    case SRM_IPC_REASON_MAX:
        break;
    }
    return "?";
}

uint64_t srm_ipc_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------ text checks */

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool name_valid_len(const char *s, size_t len, size_t max, bool allow_empty)
{
    if (len > max || (len == 0 && !allow_empty))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)s[i]))
            return false;
    return true;
}

bool srm_ipc_name_valid(const char *name, size_t max)
{
    if (!name)
        return false;
    return name_valid_len(name, strnlen(name, max + 1), max, false);
}

bool srm_ipc_text_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        uint32_t cp;
        size_t n;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += n + 1;
    }
    return true;
}

/* ------------------------------------------------------------------------ writer */

struct wr {
    uint8_t *p;
    size_t cap;
    size_t len;
    bool full;
};

static void w_bytes(struct wr *w, const void *src, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void w_u8(struct wr *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    w_bytes(w, b, 2);
}

static void w_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}

static void w_u64(struct wr *w, uint64_t v)
{
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_str(struct wr *w, const char *s)
{
    size_t n = strlen(s);

    w_u8(w, (uint8_t)n);
    w_bytes(w, s, n);
}

/* ------------------------------------------------------------------------ reader */

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *r_take(struct rd *r, size_t n)
{
    const uint8_t *q;

    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    q = r->p;
    r->p += n;
    r->left -= n;
    return q;
}

static uint8_t r_u8(struct rd *r)
{
    const uint8_t *q = r_take(r, 1);
    return q ? q[0] : 0;
}

static uint16_t r_u16(struct rd *r)
{
    const uint8_t *q = r_take(r, 2);
    return q ? (uint16_t)(q[0] | q[1] << 8) : 0;
}

static uint32_t r_u32(struct rd *r)
{
    const uint8_t *q = r_take(r, 4);
    return q ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24
             : 0;
}

static uint64_t r_u64(struct rd *r)
{
    uint64_t lo = r_u32(r);
    uint64_t hi = r_u32(r);
    return lo | hi << 32;
}

/* A name of [A-Za-z0-9._-]: at least min, at most max bytes. */
static void r_name(struct rd *r, char *dst, size_t min, size_t max)
{
    size_t n = r_u8(r);
    const uint8_t *q;

    dst[0] = '\0';
    if (r->bad)
        return;
    if (n < min || n > max) {
        r->bad = true;
        return;
    }
    q = r_take(r, n);
    if (!q || !name_valid_len((const char *)q, n, max, true)) {
        r->bad = true;
        return;
    }
    memcpy(dst, q, n);
    dst[n] = '\0';
}

static void r_text(struct rd *r, char *dst, size_t max)
{
    size_t n = r_u8(r);
    const uint8_t *q;

    dst[0] = '\0';
    if (r->bad)
        return;
    if (n > max) {
        r->bad = true;
        return;
    }
    q = r_take(r, n);
    if (!q || !srm_ipc_text_valid((const char *)q, n)) {
        r->bad = true;
        return;
    }
    memcpy(dst, q, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------------ field rules */

static bool name_ok(const char *s, size_t min, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n >= min && name_valid_len(s, n, max, true);
}

static int text_check(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n > max)
        return -EINVAL;
    return srm_ipc_text_valid(s, n) ? 0 : SRM_EBADUTF8;
}

static bool lease_ok(uint32_t ms, bool allow_zero)
{
    return (allow_zero || ms > 0) && ms <= SRM_IPC_LEASE_MAX_MS;
}

static bool watchdog_ok(uint32_t ping_ms, uint8_t misses)
{
    return ping_ms >= SRM_IPC_PING_MIN_MS && ping_ms <= SRM_IPC_PING_MAX_MS && misses >= 1 &&
           misses <= SRM_IPC_MISSES_MAX;
}

static bool release_ok(const struct srm_ipc_release *m)
{
    return m->cmd_id != 0 && m->part != 0 && m->drain_ms <= SRM_IPC_DRAIN_MAX_MS &&
           m->relogin_lower_s <= m->relogin_upper_s && m->relogin_upper_s <= SRM_IPC_RELOGIN_MAX_S;
}

static bool counters_ok(const struct srm_ipc_counters *m)
{
    if (m->n_parts > SRM_IPC_PARTS_MAX || m->n_extra > SRM_IPC_EXTRA_MAX)
        return false;
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i].part == 0 || (i > 0 && m->parts[i].part <= m->parts[i - 1].part))
            return false;
    for (size_t i = 0; i < m->n_extra; i++)
        if (!name_ok(m->extra[i].name, 1, SRM_IPC_NAME_MAX))
            return false;
    return true;
}

static bool serving_ok(const struct srm_ipc_serving *m)
{
    if (m->reason >= SRM_IPC_REASON_MAX || m->n > SRM_IPC_PARTS_MAX)
        return false;
    for (size_t i = 0; i < m->n; i++) {
        const struct srm_ipc_grant *g = &m->grants[i];
        if (g->part == 0 || g->epoch == 0 || g->state >= SRM_IPC_GRANT_STATE_MAX ||
            (i > 0 && g->part <= m->grants[i - 1].part))
            return false;
    }
    return true;
}

static bool stale_error_ok(int32_t e)
{
    return e == SRM_ESTALE_EPOCH || e == SRM_ENOTOWNER;
}

/* ------------------------------------------------------------------------ encode */

static int check_msg(const struct srm_ipc_msg *m)
{
    const char *txt = NULL;

    switch (m->type) {
    case SRM_IPC_HELLO:
        if (m->u.hello.incarnation == 0 || !name_ok(m->u.hello.name, 1, SRM_IPC_NAME_MAX))
            return -EINVAL;
        break;
    case SRM_IPC_REGISTER:
        if (!name_ok(m->u.reg.service, 1, SRM_IPC_NAME_MAX))
            return -EINVAL;
        break;
    case SRM_IPC_HEALTH:
        if (!name_ok(m->u.health.service, 1, SRM_IPC_NAME_MAX))
            return -EINVAL;
        txt = m->u.health.detail;
        break;
    case SRM_IPC_PING:
        break;
    case SRM_IPC_ACK:
        if (m->u.ack.cmd_id == 0 || m->u.ack.result > 0)
            return -EINVAL;
        txt = m->u.ack.detail;
        break;
    case SRM_IPC_COUNTERS:
        if (!counters_ok(&m->u.counters))
            return -EINVAL;
        break;
    case SRM_IPC_STALE:
        if (m->u.stale.part == 0 || m->u.stale.epoch == 0 || !stale_error_ok(m->u.stale.error))
            return -EINVAL;
        break;
    case SRM_IPC_SERVING:
        if (!serving_ok(&m->u.serving) || m->u.serving.lease_left_ms > SRM_IPC_LEASE_MAX_MS)
            return -EINVAL;
        break;
    case SRM_IPC_WELCOME:
        if (m->u.welcome.incarnation == 0 || m->u.welcome.node_id == 0 ||
            !watchdog_ok(m->u.welcome.ping_ms, m->u.welcome.misses) ||
            !name_ok(m->u.welcome.node_name, 0, SRM_IPC_NODE_NAME_MAX) ||
            !name_ok(m->u.welcome.peer_name, 0, SRM_IPC_NODE_NAME_MAX))
            return -EINVAL;
        break;
    case SRM_IPC_SERVE:
        if (m->u.serve.cmd_id == 0 || m->u.serve.part == 0 || m->u.serve.epoch == 0 ||
            !lease_ok(m->u.serve.lease_ms, false) ||
            !name_ok(m->u.serve.home_name, 0, SRM_IPC_NODE_NAME_MAX))
            return -EINVAL;
        break;
    case SRM_IPC_RELEASE:
        if (!release_ok(&m->u.release))
            return -EINVAL;
        break;
    case SRM_IPC_LEASE:
        if (!lease_ok(m->u.lease.lease_ms, true))
            return -EINVAL;
        break;
    case SRM_IPC_STOP_SERVICES:
    case SRM_IPC_START_SERVICES:
        if (m->u.command.cmd_id == 0)
            return -EINVAL;
        break;
    case SRM_IPC_WATCHDOG:
        if (!watchdog_ok(m->u.watchdog.ping_ms, m->u.watchdog.misses))
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    return txt ? text_check(txt, SRM_IPC_DETAIL_MAX) : 0;
}

static void encode_body(struct wr *w, const struct srm_ipc_msg *m)
{
    switch (m->type) {
    case SRM_IPC_HELLO:
        w_u32(w, m->u.hello.pid);
        w_u64(w, m->u.hello.incarnation);
        w_str(w, m->u.hello.name);
        break;
    case SRM_IPC_REGISTER:
        w_u8(w, m->u.reg.critical ? 1 : 0);
        w_str(w, m->u.reg.service);
        break;
    case SRM_IPC_HEALTH:
        w_u8(w, m->u.health.up ? 1 : 0);
        w_str(w, m->u.health.service);
        w_str(w, m->u.health.detail);
        break;
    case SRM_IPC_PING:
        w_u64(w, m->u.ping.seq);
        break;
    case SRM_IPC_ACK:
        w_u32(w, m->u.ack.cmd_id);
        w_u32(w, (uint32_t)m->u.ack.result);
        w_str(w, m->u.ack.detail);
        break;
    case SRM_IPC_COUNTERS:
        w_u16(w, m->u.counters.n_parts);
        for (size_t i = 0; i < m->u.counters.n_parts; i++) {
            const struct srm_ipc_part_counters *c = &m->u.counters.parts[i];
            w_u32(w, c->part);
            w_u64(w, c->active);
            w_u64(w, c->inactive);
            w_u64(w, c->client);
            w_u64(w, c->client_inactive);
        }
        w_u16(w, m->u.counters.n_extra);
        for (size_t i = 0; i < m->u.counters.n_extra; i++) {
            w_str(w, m->u.counters.extra[i].name);
            w_u64(w, m->u.counters.extra[i].value);
        }
        break;
    case SRM_IPC_STALE:
        w_u32(w, m->u.stale.part);
        w_u64(w, m->u.stale.epoch);
        w_u32(w, (uint32_t)m->u.stale.error);
        break;
    case SRM_IPC_SERVING:
        w_u8(w, m->u.serving.reason);
        w_u8(w, m->u.serving.fenced ? 1 : 0);
        w_u32(w, m->u.serving.lease_left_ms);
        w_u16(w, m->u.serving.n);
        for (size_t i = 0; i < m->u.serving.n; i++) {
            w_u32(w, m->u.serving.grants[i].part);
            w_u64(w, m->u.serving.grants[i].epoch);
            w_u8(w, m->u.serving.grants[i].state);
        }
        break;
    case SRM_IPC_WELCOME:
        w_u64(w, m->u.welcome.incarnation);
        w_u32(w, m->u.welcome.node_id);
        w_u32(w, m->u.welcome.peer_node_id);
        w_u32(w, m->u.welcome.ping_ms);
        w_u8(w, m->u.welcome.misses);
        w_str(w, m->u.welcome.node_name);
        w_str(w, m->u.welcome.peer_name);
        break;
    case SRM_IPC_SERVE:
        w_u32(w, m->u.serve.cmd_id);
        w_u32(w, m->u.serve.part);
        w_u64(w, m->u.serve.epoch);
        w_u32(w, m->u.serve.lease_ms);
        w_u64(w, m->u.serve.sent_mono_ms);
        w_str(w, m->u.serve.home_name);
        break;
    case SRM_IPC_RELEASE:
        w_u32(w, m->u.release.cmd_id);
        w_u32(w, m->u.release.part);
        w_u32(w, m->u.release.drain_ms);
        w_u32(w, m->u.release.relogin_lower_s);
        w_u32(w, m->u.release.relogin_upper_s);
        break;
    case SRM_IPC_LEASE:
        w_u32(w, m->u.lease.lease_ms);
        w_u64(w, m->u.lease.sent_mono_ms);
        break;
    case SRM_IPC_STOP_SERVICES:
    case SRM_IPC_START_SERVICES:
        w_u32(w, m->u.command.cmd_id);
        break;
    case SRM_IPC_WATCHDOG:
        w_u32(w, m->u.watchdog.ping_ms);
        w_u8(w, m->u.watchdog.misses);
        break;
    }
}

int srm_ipc_msg_encode(const struct srm_ipc_msg *msg, void *buf, size_t cap, size_t *ret_len)
{
    struct wr w = {.p = buf, .cap = cap};
    int r;

    if (!msg || !buf || !ret_len)
        return -EINVAL;
    r = check_msg(msg);
    if (r < 0)
        return r;
    w_bytes(&w, SRM__IPC_MAGIC, 4);
    w_u8(&w, SRM_IPC_PROTOCOL_VERSION);
    w_u8(&w, (uint8_t)msg->type);
    w_u16(&w, 0);
    w_u32(&w, 0); /* body length, patched below */
    encode_body(&w, msg);
    if (w.full)
        return -ENOBUFS;
    {
        uint32_t body = (uint32_t)(w.len - SRM_IPC_HEADER_LEN);
        uint8_t *p = w.p + 8;
        p[0] = (uint8_t)body;
        p[1] = (uint8_t)(body >> 8);
        p[2] = (uint8_t)(body >> 16);
        p[3] = (uint8_t)(body >> 24);
    }
    *ret_len = w.len;
    return 0;
}

/* ------------------------------------------------------------------------ decode */

static bool r_bool(struct rd *r)
{
    uint8_t v = r_u8(r);

    if (v > 1)
        r->bad = true;
    return v == 1;
}

static void decode_body(struct rd *r, struct srm_ipc_msg *m)
{
    switch (m->type) {
    case SRM_IPC_HELLO:
        m->u.hello.pid = r_u32(r);
        m->u.hello.incarnation = r_u64(r);
        r_name(r, m->u.hello.name, 1, SRM_IPC_NAME_MAX);
        break;
    case SRM_IPC_REGISTER:
        m->u.reg.critical = r_bool(r);
        r_name(r, m->u.reg.service, 1, SRM_IPC_NAME_MAX);
        break;
    case SRM_IPC_HEALTH:
        m->u.health.up = r_bool(r);
        r_name(r, m->u.health.service, 1, SRM_IPC_NAME_MAX);
        r_text(r, m->u.health.detail, SRM_IPC_DETAIL_MAX);
        break;
    case SRM_IPC_PING:
        m->u.ping.seq = r_u64(r);
        break;
    case SRM_IPC_ACK:
        m->u.ack.cmd_id = r_u32(r);
        m->u.ack.result = (int32_t)r_u32(r);
        r_text(r, m->u.ack.detail, SRM_IPC_DETAIL_MAX);
        break;
    case SRM_IPC_COUNTERS: {
        struct srm_ipc_counters *c = &m->u.counters;
        c->n_parts = r_u16(r);
        if (c->n_parts > SRM_IPC_PARTS_MAX) {
            r->bad = true;
            break;
        }
        for (size_t i = 0; i < c->n_parts && !r->bad; i++) {
            c->parts[i].part = r_u32(r);
            c->parts[i].active = r_u64(r);
            c->parts[i].inactive = r_u64(r);
            c->parts[i].client = r_u64(r);
            c->parts[i].client_inactive = r_u64(r);
        }
        c->n_extra = r_u16(r);
        if (c->n_extra > SRM_IPC_EXTRA_MAX) {
            r->bad = true;
            break;
        }
        for (size_t i = 0; i < c->n_extra && !r->bad; i++) {
            r_name(r, c->extra[i].name, 1, SRM_IPC_NAME_MAX);
            c->extra[i].value = r_u64(r);
        }
        break;
    }
    case SRM_IPC_STALE:
        m->u.stale.part = r_u32(r);
        m->u.stale.epoch = r_u64(r);
        m->u.stale.error = (int32_t)r_u32(r);
        break;
    case SRM_IPC_SERVING: {
        struct srm_ipc_serving *s = &m->u.serving;
        s->reason = r_u8(r);
        s->fenced = r_bool(r);
        s->lease_left_ms = r_u32(r);
        s->n = r_u16(r);
        if (s->n > SRM_IPC_PARTS_MAX) {
            r->bad = true;
            break;
        }
        for (size_t i = 0; i < s->n && !r->bad; i++) {
            s->grants[i].part = r_u32(r);
            s->grants[i].epoch = r_u64(r);
            s->grants[i].state = r_u8(r);
        }
        break;
    }
    case SRM_IPC_WELCOME:
        m->u.welcome.incarnation = r_u64(r);
        m->u.welcome.node_id = r_u32(r);
        m->u.welcome.peer_node_id = r_u32(r);
        m->u.welcome.ping_ms = r_u32(r);
        m->u.welcome.misses = r_u8(r);
        r_name(r, m->u.welcome.node_name, 0, SRM_IPC_NODE_NAME_MAX);
        r_name(r, m->u.welcome.peer_name, 0, SRM_IPC_NODE_NAME_MAX);
        break;
    case SRM_IPC_SERVE:
        m->u.serve.cmd_id = r_u32(r);
        m->u.serve.part = r_u32(r);
        m->u.serve.epoch = r_u64(r);
        m->u.serve.lease_ms = r_u32(r);
        m->u.serve.sent_mono_ms = r_u64(r);
        r_name(r, m->u.serve.home_name, 0, SRM_IPC_NODE_NAME_MAX);
        break;
    case SRM_IPC_RELEASE:
        m->u.release.cmd_id = r_u32(r);
        m->u.release.part = r_u32(r);
        m->u.release.drain_ms = r_u32(r);
        m->u.release.relogin_lower_s = r_u32(r);
        m->u.release.relogin_upper_s = r_u32(r);
        break;
    case SRM_IPC_LEASE:
        m->u.lease.lease_ms = r_u32(r);
        m->u.lease.sent_mono_ms = r_u64(r);
        break;
    case SRM_IPC_STOP_SERVICES:
    case SRM_IPC_START_SERVICES:
        m->u.command.cmd_id = r_u32(r);
        break;
    case SRM_IPC_WATCHDOG:
        m->u.watchdog.ping_ms = r_u32(r);
        m->u.watchdog.misses = r_u8(r);
        break;
    }
}

int srm_ipc_msg_decode(const void *buf, size_t len, struct srm_ipc_msg *ret_msg)
{
    const uint8_t *p = buf;
    struct srm_ipc_msg m;
    struct rd r;
    uint32_t body;

    if (!buf || !ret_msg)
        return -EINVAL;
    if (len < SRM_IPC_HEADER_LEN || len > SRM_IPC_FRAME_MAX)
        return SRM_EBADMSG;
    if (memcmp(p, SRM__IPC_MAGIC, 4) != 0)
        return SRM_EBADMSG;
    if (p[4] != SRM_IPC_PROTOCOL_VERSION)
        return SRM_EIPC_VERSION;
    if (!type_known(p[5]) || p[6] != 0 || p[7] != 0)
        return SRM_EBADMSG;
    body = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    if (body != len - SRM_IPC_HEADER_LEN)
        return SRM_EBADMSG;

    memset(&m, 0, sizeof(m));
    m.type = (enum srm_ipc_type)p[5];
    r = (struct rd){.p = p + SRM_IPC_HEADER_LEN, .left = body};
    decode_body(&r, &m);
    if (r.bad || r.left != 0)
        return SRM_EBADMSG;
    /* The same field rules as the encoder: one valid encoding per message. */
    if (check_msg(&m) < 0)
        return SRM_EBADMSG;
    memcpy(ret_msg, &m, sizeof(m));
    return 0;
}

/* ------------------------------------------------------------------------ watchdog */

void srm__ipc_wd_init(struct srm__ipc_wd *wd, uint64_t now_ms, uint32_t ping_ms, uint8_t misses)
{
    wd->last_ms = now_ms;
    wd->floor_ms = 0;
    wd->ping_ms = ping_ms;
    wd->misses = misses;
}

void srm__ipc_wd_ping(struct srm__ipc_wd *wd, uint64_t now_ms)
{
    if (now_ms > wd->last_ms)
        wd->last_ms = now_ms;
}

uint64_t srm__ipc_wd_deadline(const struct srm__ipc_wd *wd)
{
    uint64_t d = wd->last_ms + (uint64_t)wd->ping_ms * wd->misses;

    return d > wd->floor_ms ? d : wd->floor_ms;
}

void srm__ipc_wd_set(struct srm__ipc_wd *wd, uint64_t now_ms, uint32_t ping_ms, uint8_t misses)
{
    uint64_t old = srm__ipc_wd_deadline(wd);
    uint64_t fresh = now_ms + (uint64_t)ping_ms * misses;

    wd->ping_ms = ping_ms;
    wd->misses = misses;
    wd->floor_ms = old > fresh ? old : fresh;
}

bool srm__ipc_wd_expired(const struct srm__ipc_wd *wd, uint64_t now_ms)
{
    return now_ms > srm__ipc_wd_deadline(wd);
}

uint32_t srm__ipc_wd_missed(const struct srm__ipc_wd *wd, uint64_t now_ms)
{
    if (now_ms <= wd->last_ms || wd->ping_ms == 0)
        return 0;
    return (uint32_t)((now_ms - wd->last_ms) / wd->ping_ms);
}

void srm__ipc_wd_grace(struct srm__ipc_wd *wd, uint64_t now_ms)
{
    srm__ipc_wd_ping(wd, now_ms);
}

uint64_t srm__ipc_stall(uint64_t due_ms, uint64_t now_ms, uint64_t threshold_ms)
{
    if (now_ms <= due_ms)
        return 0;
    return now_ms - due_ms > threshold_ms ? now_ms - due_ms : 0;
}
