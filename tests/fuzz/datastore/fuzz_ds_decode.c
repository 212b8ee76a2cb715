/*
 * libFuzzer target for the datastore's decoders: wire entries (what replication and
 * snapshot chunks carry) and the three record encodings behind them. The first input byte
 * selects the path; whatever decodes must re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "srm_ds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry_chunk(const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        struct srm_ds_entry e;
        size_t used, len;
        uint8_t *copy;

        if (srm_ds_entry_decode(p + off, n - off, &e, &used) < 0)
            return;
        if (used == 0 || used > n - off)
            abort();
        copy = malloc(used);
        if (srm_ds_entry_encode(&e, copy, used, &len) == 0 &&
            (len != used || memcmp(copy, p + off, used)))
            abort();
        free(copy);
        /* the record inside, as apply and snapshot install check it */
        if (!(e.flags & SRM_DS_ENTRY_TOMBSTONE))
            (void)srm_ds_record_check(e.kind, e.key, e.key_len, e.val, e.val_len);
        off += used;
    }
}

static void check_record(uint8_t kind, const uint8_t *p, size_t n)
{
    size_t klen;
    const uint8_t *key, *val;

    if (n < 1)
        return;
    klen = p[0] % (n > 1 ? n : 1);
    key = p + 1;
    if (klen > n - 1)
        klen = n - 1;
    val = key + klen;
    n -= 1 + klen;
    switch (kind % 3) {
    case SRM_DS_PRESENCE: {
        struct srm_ds_presence r;
        if (srm_ds_presence_decode(key, klen, val, n, &r) == 0) {
            uint8_t k2[SRM_DS_KEY_MAX], *buf = NULL;
            size_t cap = 0, k2len, blen;
            if (srm__ds_presence_encode(&r, k2, &k2len, &buf, &cap, &blen) != 0 || k2len != klen ||
                memcmp(k2, key, klen) || blen != n || memcmp(buf, val, n))
                abort();
            free(buf);
        }
        break;
    }
    case SRM_DS_LOGIN: {
        struct srm_ds_login r;
        if (srm_ds_login_decode(key, klen, val, n, &r) == 0) {
            uint8_t k2[SRM_DS_KEY_MAX], *buf = NULL;
            size_t cap = 0, k2len, blen;
            if (srm__ds_login_encode(&r, k2, &k2len, &buf, &cap, &blen) != 0 || blen != n ||
                memcmp(buf, val, n))
                abort();
            free(buf);
        }
        break;
    }
    default: {
        struct srm_ds_sip_reg r;
        if (srm_ds_sip_decode(key, klen, val, n, &r) == 0) {
            uint8_t k2[SRM_DS_KEY_MAX], *buf = NULL;
            size_t cap = 0, k2len, blen;
            unsigned live;
            uint64_t e;
            if (srm__ds_sip_encode(&r, 0, k2, &k2len, &buf, &cap, &blen, &live) != 0)
                abort();
            /* contacts expiring at 0 are dropped at encode; otherwise the same bytes */
            if (live == r.n_contacts && (blen != n || memcmp(buf, val, n)))
                abort();
            if (srm__ds_sip_earliest(val, n, &e) != 0)
                abort();
            free(buf);
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        check_entry_chunk(data + 1, size - 1);
    else
        check_record(data[0], data + 1, size - 1);
    return 0;
}
