/*
 * Snapshots: streaming one partition from a read transaction in bounded chunks, and
 * installing a received image atomically through a staging database.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct srm_ds_snap {
    struct srm_ds_txn *txn;
    MDB_cursor *cur;
    struct srm_ds_snap_info info;
    bool started;
    bool pending; /* the cursor is on a record not yet emitted */
    bool done;
};

int srm_ds_snap_open(struct srm_ds_env *env, uint32_t part, struct srm_ds_snap **ret_snap)
{
    struct srm_ds_snap *s;
    struct ds_meta m;
    int rc;

    if (!env || !ret_snap || part == 0)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if ((rc = srm_ds_txn_begin(env, SRM_DS_TXN_RDONLY, &s->txn)) < 0)
        goto fail;
    if ((rc = srm__ds_meta_read(s->txn, part, &m)) < 0)
        goto fail;
    if ((rc = mdb_cursor_open(s->txn->mdb, env->dbi_rec, &s->cur))) {
        rc = srm__ds_err(rc);
        goto fail;
    }
    s->info.part = part;
    s->info.source = env->node_id;
    s->info.gen = m.gen;
    s->info.seq = m.last_seq;
    s->info.hlc = m.hlc;
    s->info.owner.node = m.owner;
    s->info.owner.epoch = m.epoch;
    memcpy(s->info.digest, m.digest, sizeof(m.digest));
    s->info.entries = m.tombstones;
    for (int k = 0; k < SRM_DS_KIND_MAX; k++)
        s->info.entries += m.digest[k].count;
    *ret_snap = s;
    return 0;
fail:
    srm_ds_txn_abort(s->txn);
    free(s);
    return rc;
}

int srm_ds_snap_info(struct srm_ds_snap *snap, struct srm_ds_snap_info *ret_info)
{
    if (!snap || !ret_info)
        return -EINVAL;
    *ret_info = snap->info;
    return 0;
}

int srm_ds_snap_next(struct srm_ds_snap *snap, void *buf, size_t cap, size_t *ret_len)
{
    uint8_t pk[4];
    size_t len = 0;
    int rc;

    if (!snap || !buf || !ret_len)
        return -EINVAL;
    srm__ds_be32(pk, snap->info.part);
    while (!snap->done) {
        MDB_val k, v;
        struct srm_ds_entry e;
        size_t sz;

        if (snap->pending) {
            rc = mdb_cursor_get(snap->cur, &k, &v, MDB_GET_CURRENT);
        } else if (!snap->started) {
            k.mv_data = pk;
            k.mv_size = 4;
            rc = mdb_cursor_get(snap->cur, &k, &v, MDB_SET_RANGE);
            snap->started = true;
        } else {
            rc = mdb_cursor_get(snap->cur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND ||
            (rc == 0 && (k.mv_size <= DS_REC_KEY0 || memcmp(k.mv_data, pk, 4)))) {
            snap->done = true;
            break;
        }
        if (rc)
            return srm__ds_err(rc);
        snap->pending = true;
        if ((rc = srm__ds_envelope_check(&v)) < 0)
            return rc;
        memset(&e, 0, sizeof(e));
        e.kind = ((const uint8_t *)k.mv_data)[4];
        srm__ds_envelope_get(&v, &e.stamp, &e.flags);
        e.key = (const uint8_t *)k.mv_data + DS_REC_KEY0;
        e.key_len = k.mv_size - DS_REC_KEY0;
        e.val_len = v.mv_size - DS_ENVELOPE;
        e.val = e.val_len ? srm__ds_body(&v) : NULL;
        sz = srm_ds_entry_size(&e);
        if (len + sz > cap) {
            if (len == 0)
                return -ENOBUFS;
            break;
        }
        if ((rc = srm_ds_entry_encode(&e, (uint8_t *)buf + len, cap - len, NULL)) < 0)
            return SRM_ECORRUPT;
        len += sz;
        snap->pending = false;
    }
    *ret_len = len;
    return len ? 1 : 0;
}

void srm_ds_snap_close(struct srm_ds_snap *snap)
{
    if (!snap)
        return;
    if (snap->cur)
        mdb_cursor_close(snap->cur);
    srm_ds_txn_abort(snap->txn);
    free(snap);
}

/* ---- install ---- */

struct srm_ds_snap_install {
    struct srm_ds_env *env;
    struct srm_ds_snap_info info;
    uint64_t staged;
};

/* Deletes every key of dbi starting with prefix. Returns an LMDB code. */
static int range_del(MDB_txn *t, MDB_dbi dbi, const uint8_t *prefix, size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int rc;

    if ((rc = mdb_cursor_open(t, dbi, &cur)))
        return rc;
    /* Seek again after each delete: a cursor left past the last key by mdb_cursor_del is
     * not positioned. */
    for (;;) {
        k.mv_size = plen;
        k.mv_data = (void *)prefix;
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)))
            break;
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
            break;
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int stage_clear(struct srm_ds_env *env, uint32_t part)
{
    MDB_txn *t;
    uint8_t pk[4];
    int rc;

    srm__ds_be32(pk, part);
    if ((rc = mdb_txn_begin(env->mdb, NULL, 0, &t)))
        return srm__ds_err(rc);
    if ((rc = range_del(t, env->dbi_stage, pk, 4))) {
        mdb_txn_abort(t);
        return srm__ds_err(rc);
    }
    return srm__ds_err(mdb_txn_commit(t));
}

int srm_ds_snap_install_begin(struct srm_ds_env *env, const struct srm_ds_snap_info *info,
                              struct srm_ds_snap_install **ret_inst)
{
    struct srm_ds_snap_install *inst;
    int rc;

    if (!env || !info || !ret_inst || info->part == 0 || info->source == SRM_DS_NODE_NONE ||
        env->read_only)
        return -EINVAL;
    inst = calloc(1, sizeof(*inst));
    if (!inst)
        return -ENOMEM;
    inst->env = env;
    inst->info = *info;
    if ((rc = stage_clear(env, info->part)) < 0) {
        free(inst);
        return rc;
    }
    *ret_inst = inst;
    return 0;
}

int srm_ds_snap_install_chunk(struct srm_ds_snap_install *inst, const void *buf, size_t len)
{
    struct srm_ds_txn *txn;
    const uint8_t *p = buf;
    size_t off = 0, n = 0;
    int rc;

    if (!inst || (!buf && len))
        return -EINVAL;
    /* Validate the whole chunk before staging any of it. */
    while (off < len) {
        struct srm_ds_entry e;
        const char *a, *b;
        size_t used;

        if ((rc = srm_ds_entry_decode(p + off, len - off, &e, &used)) < 0)
            return rc;
        if (e.stamp.origin == SRM_DS_NODE_NONE)
            return SRM_ECORRUPT;
        if (e.flags & SRM_DS_ENTRY_TOMBSTONE)
            rc = srm__ds_key_split(e.kind, e.key, e.key_len, &a, &b, true);
        else
            rc = srm_ds_record_check(e.kind, e.key, e.key_len, e.val, e.val_len);
        if (rc < 0)
            return rc;
        off += used;
        n++;
    }
    if ((rc = srm_ds_txn_begin(inst->env, 0, &txn)) < 0)
        return rc;
    for (off = 0; off < len;) {
        struct srm_ds_entry e;
        uint8_t rk[DS_REC_KEY_MAX];
        MDB_val k, v;
        size_t used;

        srm_ds_entry_decode(p + off, len - off, &e, &used);
        off += used;
        srm__ds_rec_key(rk, inst->info.part, e.kind);
        memcpy(rk + DS_REC_KEY0, e.key, e.key_len);
        k.mv_data = rk;
        k.mv_size = DS_REC_KEY0 + e.key_len;
        if ((rc = srm__ds_scratch(&txn->buf2, &txn->buf2_cap, DS_ENVELOPE + e.val_len)) < 0)
            goto fail;
        srm__ds_value_build(txn->buf2, &e.stamp, e.flags, e.val, e.val_len);
        v.mv_data = txn->buf2;
        v.mv_size = e.val_len + DS_ENVELOPE;
        if ((rc = mdb_put(txn->mdb, inst->env->dbi_stage, &k, &v, 0))) {
            rc = srm__ds_txn_fail(txn, rc);
            goto fail;
        }
    }
    if ((rc = srm_ds_txn_commit(txn)) < 0)
        return rc;
    inst->staged += n;
    return 0;
fail:
    srm_ds_txn_abort(txn);
    return rc;
}

static int install_visit_stage(struct srm_ds_txn *txn, struct ds_pstate *ps, uint64_t *ret_n)
{
    struct srm_ds_env *env = txn->env;
    MDB_cursor *cur;
    uint8_t pk[4];
    MDB_val k = {4, pk}, v;
    uint64_t n = 0;
    int rc;

    srm__ds_be32(pk, ps->part);
    if ((rc = mdb_cursor_open(txn->mdb, env->dbi_stage, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        const uint8_t *key = kp + DS_REC_KEY0;
        size_t key_len = k.mv_size - DS_REC_KEY0;
        uint8_t kind;

        if (k.mv_size <= DS_REC_KEY0 || memcmp(kp, pk, 4))
            break;
        kind = kp[4];
        if (kind >= SRM_DS_KIND_MAX || srm__ds_envelope_check(&v) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        if ((rc = mdb_put(txn->mdb, env->dbi_rec, &k, &v, 0)))
            break;
        n++;
        if (srm__ds_rec_tomb(&v)) {
            ps->m.tombstones++;
        } else {
            const uint8_t *body = srm__ds_body(&v);
            size_t blen = v.mv_size - DS_ENVELOPE;
            uint64_t h[2];
            unsigned b = srm__ds_bucket(kind, key, key_len);

            srm__ds_hash_record(kind, key, key_len, body, blen, h);
            srm__ds_digest_add(&ps->m.digest[kind], h);
            srm__ds_digest_add(&ps->buckets[kind].b[b], h);
            if (kind == SRM_DS_LOGIN) {
                bool act = false;

                srm__ds_login_active(body, blen, &act);
                if (act)
                    ps->m.sessions_active++;
                else
                    ps->m.sessions_inactive++;
            } else if (kind == SRM_DS_SIP) {
                uint64_t e;
                uint8_t ek[12 + SRM_DS_KEY_MAX];
                MDB_val ekv = {12 + key_len, ek}, ev = {0, ""};

                if (srm__ds_sip_earliest(body, blen, &e) < 0) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                srm__ds_be32(ek, ps->part);
                srm__ds_be64(ek + 4, e);
                memcpy(ek + 12, key, key_len);
                if ((rc = mdb_put(txn->mdb, env->dbi_exp, &ekv, &ev, 0)))
                    break;
            }
        }
    }
    mdb_cursor_close(cur);
    *ret_n = n;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int srm_ds_snap_install_commit(struct srm_ds_snap_install *inst)
{
    struct srm_ds_env *env;
    struct srm_ds_txn *txn;
    struct ds_pstate *ps;
    uint8_t pk[4];
    uint64_t n;
    int rc;

    if (!inst)
        return -EINVAL;
    env = inst->env;
    if ((rc = srm_ds_txn_begin(env, 0, &txn)) < 0)
        goto out;
    if ((rc = srm__ds_pstate(txn, inst->info.part, true, &ps)) < 0)
        goto fail;
    srm__ds_be32(pk, inst->info.part);
    if ((rc = range_del(txn->mdb, env->dbi_rec, pk, 4)) ||
        (rc = range_del(txn->mdb, env->dbi_exp, pk, 4)) ||
        (rc = range_del(txn->mdb, env->dbi_log, pk, 4))) {
        rc = srm__ds_txn_fail(txn, rc);
        goto fail;
    }
    memset(ps->m.digest, 0, sizeof(ps->m.digest));
    ps->m.tombstones = 0;
    ps->m.sessions_active = 0;
    ps->m.sessions_inactive = 0;
    for (int k = 0; k < SRM_DS_KIND_MAX; k++) {
        memset(&ps->buckets[k], 0, sizeof(ps->buckets[k]));
        ps->buckets_loaded[k] = true;
        ps->buckets_dirty[k] = true;
    }
    if ((rc = install_visit_stage(txn, ps, &n))) {
        rc = srm__ds_txn_fail(txn, rc);
        goto fail;
    }
    if (n != inst->info.entries || memcmp(ps->m.digest, inst->info.digest, sizeof(ps->m.digest))) {
        rc = SRM_ECORRUPT;
        goto fail;
    }
    /* A new log: local readers at older positions get SRM_EHORIZON and re-read. */
    ps->m.gen = srm__ds_random64();
    ps->m.last_seq++;
    ps->m.first_seq = ps->m.last_seq + 1;
    ps->m.log_bytes = 0;
    if (inst->info.hlc > ps->m.hlc)
        ps->m.hlc = inst->info.hlc;
    ps->dirty = true;
    ps->wrote_log = true;
    if ((rc = srm__ds_pos_set(txn, inst->info.part, inst->info.source, inst->info.gen,
                              inst->info.seq)) < 0)
        goto fail;
    if ((rc = range_del(txn->mdb, env->dbi_stage, pk, 4))) {
        rc = srm__ds_txn_fail(txn, rc);
        goto fail;
    }
    rc = srm_ds_txn_commit(txn);
    goto out;
fail:
    srm_ds_txn_abort(txn);
    stage_clear(env, inst->info.part);
out:
    free(inst);
    return rc;
}

void srm_ds_snap_install_abort(struct srm_ds_snap_install *inst)
{
    if (!inst)
        return;
    stage_clear(inst->env, inst->info.part);
    free(inst);
}
