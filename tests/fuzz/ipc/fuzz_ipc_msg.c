/*
 * Fuzzes the IPC frame decoder (ha/ipc/msg.c). Properties: the decoder never reads outside
 * the input; it accepts only frames whose every field is within the documented bounds (the
 * encoder, which checks the same bounds, takes the decoded message back); and an accepted
 * frame re-encodes to exactly the same bytes (one encoding per message).
 */
#include "srm_error.h"
#include "srm_ipc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct srm_ipc_msg msg;
    static uint8_t out[SRM_IPC_FRAME_MAX];
    size_t len = 0;
    int r = srm_ipc_msg_decode(data, size, &msg);

    if (r < 0) {
        if (r != SRM_EBADMSG && r != SRM_EIPC_VERSION)
            abort();
        return 0;
    }
    if (size > SRM_IPC_FRAME_MAX)
        abort();
    if (srm_ipc_msg_encode(&msg, out, sizeof(out), &len) != 0 || len != size ||
        memcmp(out, data, size) != 0)
        abort();
    return 0;
}
