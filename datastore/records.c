/*
 * The typed datastores: presence, login and SIP registration (encode, fence, store; get;
 * list; expiry of SIP contacts).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* ---- common ---- */

/* One key construction and one lookup: the read path is measured against raw mdb_get. */
static int typed_get(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, const char *a,
                     const char *b, MDB_val *v)
{
    uint8_t rk[DS_REC_KEY_MAX];
    MDB_val k;
    size_t klen;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    srm__ds_rec_key(rk, part, kind);
    if ((rc = srm__ds_key_make(kind, a, b, rk + DS_REC_KEY0, &klen, false)) < 0)
        return rc;
    k.mv_data = rk;
    k.mv_size = DS_REC_KEY0 + klen;
    if ((rc = mdb_get(txn->mdb, txn->env->dbi_rec, &k, v)))
        return srm__ds_err(rc);
    if ((rc = srm__ds_envelope_check(v)) < 0)
        return rc;
    if (srm__ds_rec_tomb(v))
        return -ENOENT;
    return 0;
}

static int typed_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint8_t kind,
                     const char *a, const char *b)
{
    uint8_t key[SRM_DS_KEY_MAX];
    size_t klen;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_key_make(kind, a, b, key, &klen, false)) < 0)
        return rc;
    return srm__ds_local_write(txn, part, epoch, kind, key, klen, NULL, 0, true);
}

/* Prefix scan of live records: part | kind | (a NUL when a is given). */
typedef int typed_visit_cb(const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                           void *data);

static int typed_scan(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, const char *a,
                      typed_visit_cb *cb, void *data)
{
    uint8_t pk[DS_REC_KEY0 + SRM_DS_USER_MAX + 1];
    size_t plen = DS_REC_KEY0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, ret = 0;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!cb)
        return -EINVAL;
    srm__ds_rec_key(pk, part, kind);
    if (a) {
        size_t n = strnlen(a, SRM_DS_USER_MAX + 1);

        if (n > SRM_DS_USER_MAX)
            return SRM_ETOOBIG;
        if (n == 0)
            return -EINVAL;
        memcpy(pk + plen, a, n + 1);
        plen += n + 1;
    }
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_rec, &cur)))
        return srm__ds_err(rc);
    k.mv_data = pk;
    k.mv_size = plen;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;

        if (k.mv_size <= DS_REC_KEY0 || k.mv_size < plen || memcmp(kp, pk, plen))
            break;
        if ((ret = srm__ds_envelope_check(&v)) < 0)
            break;
        if (srm__ds_rec_tomb(&v))
            continue;
        ret = cb(kp + DS_REC_KEY0, k.mv_size - DS_REC_KEY0, srm__ds_body(&v), srm__ds_body_len(&v),
                 data);
        if (ret)
            break;
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    if (rc && rc != MDB_NOTFOUND)
        return srm__ds_err(rc);
    return 0;
}

/* ---- presence ---- */

int srm_ds_presence_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                        const struct srm_ds_presence *p)
{
    uint8_t key[SRM_DS_KEY_MAX];
    size_t klen, blen;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_presence_encode(p, key, &klen, &txn->buf, &txn->buf_cap, &blen)) < 0)
        return rc;
    return srm__ds_local_write(txn, part, epoch, SRM_DS_PRESENCE, key, klen, txn->buf, blen, false);
}

/* The hot read of a protocol daemon: written out flat (measured against raw mdb_get). */
int srm_ds_presence_get(struct srm_ds_txn *txn, uint32_t part, const char *user,
                        const char *resource, struct srm_ds_presence *ret)
{
    uint8_t rk[DS_REC_KEY_MAX];
    size_t ul, rl = 0;
    const uint8_t *b;
    MDB_val k, v;
    uint16_t slen, elen;
    int rc;

    if (!txn || !user || !ret)
        return -EINVAL;
    if (txn->err)
        return SRM_ETXN_FAILED;
    if (!txn->active)
        return -EINVAL;
    ul = strnlen(user, SRM_DS_USER_MAX + 1);
    if (resource)
        rl = strnlen(resource, SRM_DS_RESOURCE_MAX + 1);
    if (ul > SRM_DS_USER_MAX || rl > SRM_DS_RESOURCE_MAX || ul + rl + 2 > SRM_DS_KEY_MAX)
        return SRM_ETOOBIG;
    if (ul == 0)
        return -EINVAL;
    srm__ds_rec_key(rk, part, SRM_DS_PRESENCE);
    memcpy(rk + DS_REC_KEY0, user, ul);
    rk[DS_REC_KEY0 + ul] = 0;
    if (rl)
        memcpy(rk + DS_REC_KEY0 + ul + 1, resource, rl);
    rk[DS_REC_KEY0 + ul + 1 + rl] = 0;
    k.mv_data = rk;
    k.mv_size = DS_REC_KEY0 + ul + rl + 2;
    if ((rc = mdb_get(txn->mdb, txn->env->dbi_rec, &k, &v)))
        return srm__ds_err(rc);
    if ((rc = srm__ds_envelope_check(&v)) < 0)
        return rc;
    if (srm__ds_rec_tomb(&v))
        return -ENOENT;
    /* body: fmt | avail | prio | updated u64 | status_len u16 | ext_len u16 | status NUL | ext */
    b = srm__ds_body(&v);
    if (srm__ds_body_len(&v) < DS_PRESENCE_HDR || b[0] != SRM_DS_RECORD_FORMAT)
        return srm__ds_body_len(&v) >= 1 && b[0] != SRM_DS_RECORD_FORMAT ? SRM_EBADFORMAT
                                                                         : SRM_ECORRUPT;
    slen = srm__ds_get_le16(b + 11);
    elen = srm__ds_get_le16(b + 13);
    if (b[1] >= SRM_DS_AVAIL_MAX || srm__ds_body_len(&v) != DS_PRESENCE_HDR + slen + 1u + elen)
        return SRM_ECORRUPT;
    ret->user = user;
    ret->resource = resource ? resource : "";
    ret->availability = (enum srm_ds_availability)b[1];
    ret->priority = (int8_t)b[2];
    ret->updated_ms = srm__ds_get_le64(b + 3);
    ret->status = (const char *)b + DS_PRESENCE_HDR;
    ret->ext = elen ? b + DS_PRESENCE_HDR + slen + 1 : NULL;
    ret->ext_len = elen;
    return 0;
}

int srm_ds_presence_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *user,
                        const char *resource)
{
    return typed_del(txn, part, epoch, SRM_DS_PRESENCE, user, resource);
}

struct presence_list {
    srm_ds_presence_cb *cb;
    void *data;
};

static int presence_visit(const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                          void *data)
{
    struct presence_list *pl = data;
    struct srm_ds_presence p;

    if (srm__ds_key_split(SRM_DS_PRESENCE, key, key_len, &p.user, &p.resource, false) < 0 ||
        srm__ds_presence_decode(body, body_len, &p, false) < 0)
        return SRM_ECORRUPT;
    return pl->cb(&p, pl->data);
}

int srm_ds_presence_list(struct srm_ds_txn *txn, uint32_t part, const char *user,
                         srm_ds_presence_cb *cb, void *data)
{
    struct presence_list pl = {cb, data};

    if (!cb)
        return -EINVAL;
    return typed_scan(txn, part, SRM_DS_PRESENCE, user, presence_visit, &pl);
}

/* ---- login ---- */

int srm_ds_login_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                     const struct srm_ds_login *l)
{
    uint8_t key[SRM_DS_KEY_MAX];
    size_t klen, blen;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_login_encode(l, key, &klen, &txn->buf, &txn->buf_cap, &blen)) < 0)
        return rc;
    return srm__ds_local_write(txn, part, epoch, SRM_DS_LOGIN, key, klen, txn->buf, blen, false);
}

int srm_ds_login_get(struct srm_ds_txn *txn, uint32_t part, const char *user,
                     const char *session_id, struct srm_ds_login *ret)
{
    struct srm_ds_login l;
    MDB_val v;
    int rc;

    if (!ret || !session_id)
        return -EINVAL;
    if ((rc = typed_get(txn, part, SRM_DS_LOGIN, user, session_id, &v)) < 0)
        return rc;
    if ((rc = srm__ds_login_decode(srm__ds_body(&v), v.mv_size - DS_ENVELOPE, &l, false)) < 0)
        return rc == SRM_EBADFORMAT ? rc : SRM_ECORRUPT;
    l.user = user;
    l.session_id = session_id;
    *ret = l;
    return 0;
}

int srm_ds_login_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *user,
                     const char *session_id)
{
    if (!session_id)
        return -EINVAL;
    return typed_del(txn, part, epoch, SRM_DS_LOGIN, user, session_id);
}

struct login_list {
    srm_ds_login_cb *cb;
    void *data;
};

static int login_visit(const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                       void *data)
{
    struct login_list *ll = data;
    struct srm_ds_login l;

    if (srm__ds_key_split(SRM_DS_LOGIN, key, key_len, &l.user, &l.session_id, false) < 0 ||
        srm__ds_login_decode(body, body_len, &l, false) < 0)
        return SRM_ECORRUPT;
    return ll->cb(&l, ll->data);
}

int srm_ds_login_list(struct srm_ds_txn *txn, uint32_t part, const char *user, srm_ds_login_cb *cb,
                      void *data)
{
    struct login_list ll = {cb, data};

    if (!cb)
        return -EINVAL;
    return typed_scan(txn, part, SRM_DS_LOGIN, user, login_visit, &ll);
}

/* ---- SIP registration ---- */

/* Keeps only the contacts alive at now_ms. */
static void sip_filter(struct srm_ds_sip_reg *reg, uint64_t now_ms)
{
    unsigned n = 0;

    for (unsigned i = 0; i < reg->n_contacts; i++)
        if (reg->contacts[i].expires_ms > now_ms)
            reg->contacts[n++] = reg->contacts[i];
    reg->n_contacts = n;
}

#define SWEEP_BATCH 32

/* Sweeps expired contacts of up to max records (0: all). */
static int sip_sweep(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint64_t now_ms,
                     size_t max, size_t *ret_n)
{
    size_t done = 0;
    int rc;

    for (;;) {
        uint8_t keys[SWEEP_BATCH][SRM_DS_KEY_MAX];
        size_t lens[SWEEP_BATCH], n = 0;
        MDB_cursor *cur;
        uint8_t pk[4];
        MDB_val k = {4, pk}, v;

        /* Collect first: the sweep writes rewrite the expiry index under the cursor. */
        if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_exp, &cur)))
            return srm__ds_txn_fail(txn, rc);
        srm__ds_be32(pk, part);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             rc == 0 && n < SWEEP_BATCH && (!max || done + n < max);
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const uint8_t *kp = k.mv_data;

            if (k.mv_size <= 12 || k.mv_size > 12 + SRM_DS_KEY_MAX || memcmp(kp, pk, 4) ||
                srm__ds_get_be64(kp + 4) > now_ms)
                break;
            lens[n] = k.mv_size - 12;
            memcpy(keys[n], kp + 12, lens[n]);
            n++;
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
            return srm__ds_txn_fail(txn, rc);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            struct srm_ds_sip_reg reg;
            size_t klen = lens[i], blen;
            uint8_t key[SRM_DS_KEY_MAX];
            unsigned live;
            MDB_val rv;

            if ((rc = srm__ds_rec_get(txn, part, SRM_DS_SIP, keys[i], lens[i], &rv)) < 0)
                return rc == -ENOENT ? SRM_ECORRUPT : rc;
            if (srm__ds_rec_tomb(&rv))
                return SRM_ECORRUPT;
            if ((rc = srm__ds_sip_decode(srm__ds_body(&rv), rv.mv_size - DS_ENVELOPE, &reg,
                                         false)) < 0)
                return SRM_ECORRUPT;
            reg.aor = (const char *)keys[i];
            sip_filter(&reg, now_ms);
            if (reg.n_contacts == 0) {
                rc = srm__ds_local_write(txn, part, epoch, SRM_DS_SIP, keys[i], lens[i], NULL, 0,
                                         true);
            } else {
                if ((rc = srm__ds_sip_encode(&reg, now_ms, key, &klen, &txn->buf, &txn->buf_cap,
                                             &blen, &live)) < 0)
                    return rc;
                rc = srm__ds_local_write(txn, part, epoch, SRM_DS_SIP, key, klen, txn->buf, blen,
                                         false);
            }
            if (rc < 0)
                return rc;
            done++;
        }
        if (max && done >= max)
            break;
    }
    if (ret_n)
        *ret_n = done;
    return 0;
}

int srm_ds_sip_sweep(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint64_t now_ms,
                     size_t max, size_t *ret_n)
{
    struct ds_pstate *ps;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    rc = srm__ds_pstate(txn, part, false, &ps);
    if (rc == SRM_ENOTFOUND || rc == -EINVAL)
        return SRM_ENOTOWNER;
    if (rc < 0)
        return rc;
    if (ps->m.owner != txn->env->node_id)
        return SRM_ENOTOWNER;
    if (epoch != SRM_DS_EPOCH_ANY && epoch != ps->m.epoch)
        return SRM_ESTALE_EPOCH;
    return sip_sweep(txn, part, epoch, now_ms, max, ret_n);
}

int srm_ds_sip_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                   const struct srm_ds_sip_reg *reg, uint64_t now_ms)
{
    uint8_t key[SRM_DS_KEY_MAX];
    size_t klen, blen;
    unsigned live;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_sip_encode(reg, now_ms, key, &klen, &txn->buf, &txn->buf_cap, &blen, &live)) <
        0)
        return rc;
    if (live == 0) {
        rc = srm__ds_local_write(txn, part, epoch, SRM_DS_SIP, key, klen, NULL, 0, true);
        if (rc == -ENOENT)
            rc = 0;
    } else {
        rc = srm__ds_local_write(txn, part, epoch, SRM_DS_SIP, key, klen, txn->buf, blen, false);
    }
    if (rc < 0)
        return rc;
    return sip_sweep(txn, part, epoch, now_ms, 8, NULL);
}

int srm_ds_sip_get(struct srm_ds_txn *txn, uint32_t part, const char *aor, uint64_t now_ms,
                   struct srm_ds_sip_reg *ret)
{
    struct srm_ds_sip_reg *reg = ret;
    MDB_val v;
    int rc;

    if (!ret)
        return -EINVAL;
    if ((rc = typed_get(txn, part, SRM_DS_SIP, aor, NULL, &v)) < 0)
        return rc;
    if ((rc = srm__ds_sip_decode(srm__ds_body(&v), v.mv_size - DS_ENVELOPE, reg, false)) < 0)
        return rc == SRM_EBADFORMAT ? rc : SRM_ECORRUPT;
    reg->aor = aor;
    sip_filter(reg, now_ms);
    return reg->n_contacts ? 0 : -ENOENT;
}

int srm_ds_sip_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *aor)
{
    return typed_del(txn, part, epoch, SRM_DS_SIP, aor, NULL);
}

struct sip_list {
    srm_ds_sip_cb *cb;
    void *data;
    uint64_t now;
    struct srm_ds_sip_reg reg;
};

static int sip_visit(const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                     void *data)
{
    struct sip_list *sl = data;

    if (srm__ds_key_split(SRM_DS_SIP, key, key_len, &sl->reg.aor, NULL, false) < 0 ||
        srm__ds_sip_decode(body, body_len, &sl->reg, false) < 0)
        return SRM_ECORRUPT;
    sip_filter(&sl->reg, sl->now);
    if (sl->reg.n_contacts == 0)
        return 0;
    return sl->cb(&sl->reg, sl->data);
}

int srm_ds_sip_list(struct srm_ds_txn *txn, uint32_t part, uint64_t now_ms, srm_ds_sip_cb *cb,
                    void *data)
{
    struct sip_list *sl;
    int rc;

    if (!cb)
        return -EINVAL;
    sl = malloc(sizeof(*sl));
    if (!sl)
        return -ENOMEM;
    sl->cb = cb;
    sl->data = data;
    sl->now = now_ms;
    rc = typed_scan(txn, part, SRM_DS_SIP, NULL, sip_visit, sl);
    free(sl);
    return rc;
}
