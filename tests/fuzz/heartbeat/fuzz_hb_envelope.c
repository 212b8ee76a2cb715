/*
 * Fuzzes the heartbeat envelope decoder (heartbeat/hb_envelope.c). Properties: the decoder
 * never reads outside the input, accepts only envelopes whose fields satisfy every documented
 * bound, and an accepted envelope re-encodes to exactly the same bytes (one encoding per
 * message). Checked both with our group and without a group filter.
 */
#include "internal.h"
#include "srm_error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, const char *group, size_t group_len)
{
    static uint8_t out[SRM__HB_ENVELOPE_MAX];
    struct srm__hb_envelope env;
    size_t len = 0;
    int r = srm__hb_envelope_decode(data, size, group, group_len, &env);

    if (r < 0) {
        if (r != SRM_EBADENVELOPE && r != SRM_EBADVERSION && r != SRM_ETOOBIG && r != SRM_EFOREIGN)
            abort();
        if (r == SRM_EFOREIGN && !group)
            abort();
        return;
    }
    if (env.version != SRM_HB_PROTOCOL_VERSION || env.incarnation == 0 || env.seq == 0 ||
        env.payload_len > SRM_HB_PAYLOAD_MAX || (env.flags & ~SRM__HB_FLAGS_KNOWN) ||
        !srm__hb_group_valid(env.group, env.group_len) ||
        (group && (env.group_len != group_len || memcmp(env.group, group, group_len) != 0)))
        abort();
    if (srm__hb_envelope_encode(&env, out, sizeof(out), &len) != 0 || len != size ||
        memcmp(out, data, size) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, "srm.g1", 6);
    check(data, size, NULL, 0);
    return 0;
}
