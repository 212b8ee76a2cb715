/*
 * The heartbeat envelope (layout in internal.h and heartbeat/README.md). The decoder is
 * strict: one valid encoding per message, every field checked, no trailing bytes.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

bool srm__hb_group_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > SRM_HB_GROUP_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

int srm__hb_envelope_encode(const struct srm__hb_envelope *env, void *buf, size_t cap,
                            size_t *ret_len)
{
    uint8_t *p = buf;
    size_t total;

    if (!env || !buf || !ret_len || !srm__hb_group_valid(env->group, env->group_len) ||
        env->incarnation == 0 || env->seq == 0 || (env->flags & ~SRM__HB_FLAGS_KNOWN) ||
        (env->payload_len > 0 && !env->payload))
        return -EINVAL;
    if (env->payload_len > SRM_HB_PAYLOAD_MAX)
        return SRM_ETOOBIG;
    total = SRM__HB_HEADER_LEN + env->group_len + env->payload_len;
    if (cap < total)
        return -ENOBUFS;

    memcpy(p, SRM__HB_MAGIC, 4);
    p[4] = SRM_HB_PROTOCOL_VERSION;
    p[5] = env->flags;
    p[6] = (uint8_t)env->group_len;
    p[7] = 0;
    put32(p + 8, env->sender);
    put32(p + 12, (uint32_t)env->payload_len);
    put64(p + 16, env->incarnation);
    put64(p + 24, env->seq);
    memcpy(p + SRM__HB_HEADER_LEN, env->group, env->group_len);
    if (env->payload_len > 0)
        memcpy(p + SRM__HB_HEADER_LEN + env->group_len, env->payload, env->payload_len);
    *ret_len = total;
    return 0;
}

int srm__hb_envelope_decode(const void *buf, size_t len, const char *group, size_t group_len,
                            struct srm__hb_envelope *ret_env)
{
    const uint8_t *p = buf;
    struct srm__hb_envelope env;
    uint32_t payload_len;
    size_t glen;

    if (!buf || !ret_env || len < SRM__HB_HEADER_LEN || memcmp(p, SRM__HB_MAGIC, 4) != 0)
        return SRM_EBADENVELOPE;
    /* The version comes first: a later version may lay out the rest differently. */
    if (p[4] != SRM_HB_PROTOCOL_VERSION)
        return SRM_EBADVERSION;
    payload_len = get32(p + 12);
    if (payload_len > SRM_HB_PAYLOAD_MAX)
        return SRM_ETOOBIG;
    glen = p[6];
    if ((p[5] & ~SRM__HB_FLAGS_KNOWN) || p[7] != 0 || glen == 0 || glen > SRM_HB_GROUP_MAX ||
        len != SRM__HB_HEADER_LEN + glen + payload_len)
        return SRM_EBADENVELOPE;

    env.version = p[4];
    env.flags = p[5];
    env.sender = get32(p + 8);
    env.incarnation = get64(p + 16);
    env.seq = get64(p + 24);
    env.group = (const char *)p + SRM__HB_HEADER_LEN;
    env.group_len = glen;
    env.payload = payload_len > 0 ? p + SRM__HB_HEADER_LEN + glen : NULL;
    env.payload_len = payload_len;
    if (env.incarnation == 0 || env.seq == 0 || !srm__hb_group_valid(env.group, glen))
        return SRM_EBADENVELOPE;
    if (group && (glen != group_len || memcmp(env.group, group, glen) != 0))
        return SRM_EFOREIGN;
    *ret_env = env;
    return 0;
}
