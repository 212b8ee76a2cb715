/*
 * The write core (every change of a record goes through srm__ds_store: digest, buckets,
 * counters, expiry index, log append), fencing of local writes, the replication log (read,
 * apply, trim), digests and verification.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static int rec_cursor(struct srm_ds_txn *txn)
{
    int rc;

    if (txn->rec_cur)
        return 0;
    rc = mdb_cursor_open(txn->mdb, txn->env->dbi_rec, &txn->rec_cur);
    return rc ? srm__ds_err(rc) : 0;
}

static int log_cursor(struct srm_ds_txn *txn)
{
    int rc;

    if (txn->log_cur)
        return 0;
    rc = mdb_cursor_open(txn->mdb, txn->env->dbi_log, &txn->log_cur);
    return rc ? srm__ds_err(rc) : 0;
}

void srm__ds_envelope_get(const MDB_val *v, struct srm_ds_stamp *st, uint8_t *flags)
{
    const uint8_t *e = (const uint8_t *)v->mv_data + v->mv_size - DS_STAMP;

    *flags = ((const uint8_t *)v->mv_data)[0] & SRM_DS_ENTRY_TOMBSTONE;
    st->epoch = srm__ds_get_le64(e);
    st->hlc = srm__ds_get_le64(e + 8);
    st->origin = srm__ds_get_le32(e + 16);
}

void srm__ds_value_build(uint8_t *out, const struct srm_ds_stamp *st, uint8_t flags,
                         const void *body, size_t body_len)
{
    out[0] = (uint8_t)(DS_ENV_FMT << 1 | (flags & SRM_DS_ENTRY_TOMBSTONE));
    if (body_len)
        memcpy(out + 1, body, body_len);
    out += 1 + body_len;
    srm__ds_le64(out, st->epoch);
    srm__ds_le64(out + 8, st->hlc);
    srm__ds_le32(out + 16, st->origin);
}

int srm__ds_envelope_check(const MDB_val *v)
{
    uint8_t head;

    if (v->mv_size < DS_ENVELOPE)
        return SRM_ECORRUPT;
    head = ((const uint8_t *)v->mv_data)[0];
    if ((head >> 1) != DS_ENV_FMT)
        return SRM_ECORRUPT;
    if ((head & SRM_DS_ENTRY_TOMBSTONE) ? v->mv_size != DS_ENVELOPE : v->mv_size == DS_ENVELOPE)
        return SRM_ECORRUPT;
    return 0;
}

int srm__ds_rec_get(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, const uint8_t *key,
                    size_t key_len, MDB_val *ret_val)
{
    uint8_t rk[DS_REC_KEY_MAX];
    MDB_val k = {DS_REC_KEY0 + key_len, rk};
    int rc;

    srm__ds_rec_key(rk, part, kind);
    memcpy(rk + DS_REC_KEY0, key, key_len);
    rc = mdb_get(txn->mdb, txn->env->dbi_rec, &k, ret_val);
    if (rc)
        return srm__ds_err(rc);
    return srm__ds_envelope_check(ret_val);
}

/* ---- expiry index: part BE32 | earliest expiry BE64 | aor key ---- */

static int expiry_key(uint8_t *out, uint32_t part, uint64_t when, const uint8_t *key,
                      size_t key_len)
{
    srm__ds_be32(out, part);
    srm__ds_be64(out + 4, when);
    memcpy(out + 12, key, key_len);
    return (int)(12 + key_len);
}

static int expiry_put(struct srm_ds_txn *txn, uint32_t part, uint64_t when, const uint8_t *key,
                      size_t key_len, bool add)
{
    uint8_t ek[12 + SRM_DS_KEY_MAX];
    MDB_val k, v = {0, ""};
    int rc;

    k.mv_data = ek;
    k.mv_size = (size_t)expiry_key(ek, part, when, key, key_len);
    rc = add ? mdb_put(txn->mdb, txn->env->dbi_exp, &k, &v, 0)
             : mdb_del(txn->mdb, txn->env->dbi_exp, &k, NULL);
    if (rc == MDB_NOTFOUND && !add)
        return 0;
    return rc;
}

/* ---- the log: records of consecutive entries (internal.h) ---- */

static void log_key(uint8_t lk[12], uint32_t part, uint64_t seq)
{
    srm__ds_be32(lk, part);
    srm__ds_be64(lk + 4, seq);
}

/* Checks a stored record and returns its entry count (> 0), or SRM_ECORRUPT. */
static int log_rec_check(const MDB_val *k, const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    size_t off = DS_LOG_HDR;
    unsigned count;

    if (k->mv_size != 12 || v->mv_size < DS_LOG_HDR + DS_LOG_ENT || v->mv_size > DS_LOG_REC_MAX ||
        p[0] != DS_LOG_FMT || p[1] == 0)
        return SRM_ECORRUPT;
    count = p[1];
    for (unsigned i = 0; i < count; i++) {
        size_t klen;

        if (v->mv_size - off < DS_LOG_ENT)
            return SRM_ECORRUPT;
        klen = srm__ds_get_le16(p + off + 22);
        if (p[off] >= SRM_DS_KIND_MAX || (p[off + 1] & ~SRM_DS_ENTRY_TOMBSTONE) || klen == 0 ||
            klen > SRM_DS_KEY_MAX || v->mv_size - off - DS_LOG_ENT < klen)
            return SRM_ECORRUPT;
        off += DS_LOG_ENT + klen;
    }
    return off == v->mv_size ? (int)count : SRM_ECORRUPT;
}

/* Entry at p (inside a checked record) with sequence seq; returns its size. */
static size_t log_ent_decode(const uint8_t *p, uint64_t seq, struct srm_ds_entry *e)
{
    e->seq = seq;
    e->kind = p[0];
    e->flags = p[1];
    e->stamp.epoch = srm__ds_get_le64(p + 2);
    e->stamp.hlc = srm__ds_get_le64(p + 10);
    e->stamp.origin = srm__ds_get_le32(p + 18);
    e->key_len = srm__ds_get_le16(p + 22);
    e->key = p + DS_LOG_ENT;
    e->val = NULL;
    e->val_len = 0;
    return DS_LOG_ENT + e->key_len;
}

/* Positions the front cursor on the partition's oldest record (keyed first_seq). LMDB
 * leaves a cursor on the next item after a deletion, so a run of drops (a trim, or the
 * drops that keep the log at its bound) walks forward instead of descending from the root
 * each time; the position is checked against the expected key and sought when it does not
 * match. 0 and k/v; MDB_NOTFOUND when the partition has no record at or after first_seq;
 * or an LMDB code. A record of the partition that starts after first_seq (a gap: not made
 * by this code) is returned too; the caller checks the key. */
static int log_front(struct srm_ds_txn *txn, struct ds_pstate *ps, MDB_val *k, MDB_val *v)
{
    uint8_t lk[12];
    int rc;

    if (!txn->log_front_cur &&
        (rc = mdb_cursor_open(txn->mdb, txn->env->dbi_log, &txn->log_front_cur)))
        return rc;
    rc = txn->log_front ? mdb_cursor_get(txn->log_front_cur, k, v, MDB_GET_CURRENT) : MDB_NOTFOUND;
    if (rc == 0 && k->mv_size == 12 && srm__ds_get_be32(k->mv_data) == ps->part &&
        srm__ds_get_be64((const uint8_t *)k->mv_data + 4) == ps->m.first_seq)
        return 0;
    txn->log_front = false;
    log_key(lk, ps->part, ps->m.first_seq);
    k->mv_data = lk;
    k->mv_size = 12;
    rc = mdb_cursor_get(txn->log_front_cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && (k->mv_size != 12 || srm__ds_get_be32(k->mv_data) != ps->part))
        rc = MDB_NOTFOUND;
    return rc;
}

/* Drops the oldest record if it ends at or before upto, or rewrites it without its entries
 * up to upto, advancing first_seq; *done when nothing is left to drop up to upto. Returns an
 * LMDB code. */
static int log_drop_front(struct srm_ds_txn *txn, struct ds_pstate *ps, uint64_t upto, bool *done)
{
    MDB_val k, v;
    uint64_t first;
    int rc, count;

    *done = false;
    if ((rc = log_front(txn, ps, &k, &v)) == MDB_NOTFOUND) {
        ps->m.first_seq = upto + 1; /* no record left: nothing stored to drop */
        ps->dirty = true;
        *done = true;
        return 0;
    }
    if (rc)
        return rc;
    first = srm__ds_get_be64((const uint8_t *)k.mv_data + 4);
    if (first > ps->m.first_seq) { /* a gap: skip to the next record */
        *done = first > upto;
        ps->m.first_seq = *done ? upto + 1 : first;
        ps->dirty = true;
        return 0;
    }
    if ((count = log_rec_check(&k, &v)) < 0)
        return MDB_CORRUPTED;
    if (first + (uint64_t)count - 1 <= upto) {
        uint64_t sz = 12 + v.mv_size;

        if ((rc = mdb_cursor_del(txn->log_front_cur, 0)))
            return rc;
        txn->log_front = true;
        ps->m.log_bytes = ps->m.log_bytes > sz ? ps->m.log_bytes - sz : 0;
        ps->m.first_seq = first + (uint64_t)count;
        ps->dirty = true;
        return 0;
    }
    /* upto falls inside: keep the entries after it, in a record keyed by upto + 1 */
    {
        uint8_t rec[DS_LOG_REC_MAX], lk[12];
        const uint8_t *p = v.mv_data;
        size_t off = DS_LOG_HDR, len;
        unsigned skip = (unsigned)(upto + 1 - first);
        MDB_val nk = {12, lk}, nv;

        for (unsigned i = 0; i < skip; i++)
            off += DS_LOG_ENT + srm__ds_get_le16(p + off + 22);
        len = v.mv_size - off;
        rec[0] = DS_LOG_FMT;
        rec[1] = (uint8_t)(count - (int)skip);
        memcpy(rec + DS_LOG_HDR, p + off, len);
        ps->m.log_bytes -= v.mv_size - (DS_LOG_HDR + len);
        if ((rc = mdb_cursor_del(txn->log_front_cur, 0)))
            return rc;
        txn->log_front = false;
        log_key(lk, ps->part, upto + 1);
        nv.mv_data = rec;
        nv.mv_size = DS_LOG_HDR + len;
        if ((rc = mdb_put(txn->mdb, txn->env->dbi_log, &nk, &nv, 0)))
            return rc;
        ps->m.first_seq = upto + 1;
        ps->dirty = true;
        *done = true;
        return 0;
    }
}

/* Log trimming: drops entries first_seq..upto (inclusive); pending entries must have been
 * stored (srm__ds_log_flush). Returns an LMDB code. */
int srm__ds_log_trim_to(struct srm_ds_txn *txn, struct ds_pstate *ps, uint64_t upto)
{
    bool done = false;
    int rc;

    if (upto > ps->m.last_seq)
        upto = ps->m.last_seq;
    while (!done && ps->m.first_seq <= upto)
        if ((rc = log_drop_front(txn, ps, upto, &done)))
            return rc;
    return 0;
}

/* Drops whole oldest records while the log is over its bound, keeping the newest one.
 * Returns an LMDB code. */
static int log_evict(struct srm_ds_txn *txn, struct ds_pstate *ps)
{
    bool done = false;
    int rc;

    while (!done && ps->m.log_bytes > ps->m.log_max && ps->m.first_seq <= ps->m.last_seq) {
        MDB_val k, v;
        uint64_t first;
        int count;

        if ((rc = log_front(txn, ps, &k, &v)) == MDB_NOTFOUND)
            break;
        if (rc)
            return rc;
        if ((count = log_rec_check(&k, &v)) < 0)
            return MDB_CORRUPTED;
        first = srm__ds_get_be64((const uint8_t *)k.mv_data + 4);
        if (first + (uint64_t)count - 1 >= ps->m.last_seq)
            break; /* the newest record stays */
        if ((rc = log_drop_front(txn, ps, first + (uint64_t)count - 1, &done)))
            return rc;
    }
    return 0;
}

int srm__ds_log_flush(struct srm_ds_txn *txn, struct ds_pstate *ps)
{
    uint8_t lk[12];
    MDB_val k = {12, lk}, v;
    int rc;

    if (ps->lg_count == 0)
        return 0;
    if ((rc = log_cursor(txn)) < 0)
        return rc;
    log_key(lk, ps->part, ps->lg_first);
    v.mv_data = ps->lg;
    v.mv_size = ps->lg_len;
    /* Appending at the end of the database (the common case of one busy partition) skips
     * the page search; otherwise an ordinary insert. */
    rc = mdb_cursor_put(txn->log_cur, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_cursor_put(txn->log_cur, &k, &v, 0);
    if (rc)
        return srm__ds_txn_fail(txn, rc);
    ps->m.log_bytes += 12 + v.mv_size;
    ps->lg_count = 0;
    ps->lg_len = 0;
    ps->dirty = true;
    if ((rc = log_evict(txn, ps)))
        return srm__ds_txn_fail(txn, rc);
    return 0;
}

int srm__ds_log_flush_part(struct srm_ds_txn *txn, uint32_t part)
{
    for (size_t i = 0; i < txn->nps; i++)
        if (txn->ps[i]->part == part)
            return srm__ds_log_flush(txn, txn->ps[i]);
    return 0;
}

static int log_append(struct srm_ds_txn *txn, struct ds_pstate *ps, uint8_t kind,
                      const uint8_t *key, size_t key_len, const struct srm_ds_stamp *st,
                      uint8_t flags)
{
    size_t need = DS_LOG_ENT + key_len;
    uint8_t *p;
    int rc;

    /* The entry names the version (key and stamp); its value is the record itself, which
     * log_read returns while it is that version (see log_resolve). Entries gather in one
     * record per transaction, stored when full and at commit. */
    if (ps->lg_count && (ps->lg_len + need > DS_LOG_REC_MAX || ps->lg_count == DS_LOG_REC_COUNT) &&
        (rc = srm__ds_log_flush(txn, ps)) < 0)
        return rc;
    if (!ps->lg && !(ps->lg = malloc(DS_LOG_REC_MAX)))
        return -ENOMEM;
    if (ps->lg_count == 0) {
        ps->lg[0] = DS_LOG_FMT;
        ps->lg_len = DS_LOG_HDR;
        ps->lg_first = ps->m.last_seq + 1;
    }
    p = ps->lg + ps->lg_len;
    p[0] = kind;
    p[1] = flags;
    srm__ds_le64(p + 2, st->epoch);
    srm__ds_le64(p + 10, st->hlc);
    srm__ds_le32(p + 18, st->origin);
    srm__ds_le16(p + 22, (uint16_t)key_len);
    memcpy(p + DS_LOG_ENT, key, key_len);
    ps->lg_len += need;
    ps->lg[1] = (uint8_t)++ps->lg_count;
    ps->m.last_seq++;
    ps->wrote_log = true;
    ps->dirty = true;
    return 0;
}

/* The stored value (envelope | body) in txn->buf2. */
static int build_value(struct srm_ds_txn *txn, const struct srm_ds_stamp *stamp,
                       const uint8_t *body, size_t body_len, MDB_val *ret)
{
    int rc;

    if ((rc = srm__ds_scratch(&txn->buf2, &txn->buf2_cap, DS_ENVELOPE + body_len)) < 0)
        return rc;
    if (!body)
        body_len = 0;
    srm__ds_value_build(txn->buf2, stamp, body ? 0 : SRM_DS_ENTRY_TOMBSTONE, body, body_len);
    ret->mv_data = txn->buf2;
    ret->mv_size = body_len + DS_ENVELOPE;
    return 0;
}

/* Inserts the value if the key is absent (one descent). 0: inserted; 1: present, *ret_old
 * is the stored value and the record cursor is on it; or an error. */
static int insert_or_find(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, const uint8_t *key,
                          size_t key_len, const struct srm_ds_stamp *stamp, const uint8_t *body,
                          size_t body_len, MDB_val *ret_old)
{
    uint8_t rk[DS_REC_KEY_MAX];
    MDB_val k = {DS_REC_KEY0 + key_len, rk}, v;
    int rc;

    if ((rc = rec_cursor(txn)) < 0 || (rc = build_value(txn, stamp, body, body_len, &v)) < 0)
        return rc;
    srm__ds_rec_key(rk, part, kind);
    memcpy(rk + DS_REC_KEY0, key, key_len);
    rc = mdb_cursor_put(txn->rec_cur, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0)
        return 0;
    if (rc == MDB_KEYEXIST) {
        if ((rc = srm__ds_envelope_check(&v)) < 0)
            return rc;
        *ret_old = v;
        return 1;
    }
    return srm__ds_txn_fail(txn, rc);
}

int srm__ds_store(struct srm_ds_txn *txn, struct ds_pstate *ps, uint8_t kind, const uint8_t *key,
                  size_t key_len, const MDB_val *old, const uint8_t *body, size_t body_len,
                  const struct srm_ds_stamp *stamp, enum ds_store_how how)
{
    struct ds_meta *m = &ps->m;
    bool old_live = false, new_live = body != NULL;
    bool old_active = false, new_active = false;
    uint64_t old_exp = UINT64_MAX, new_exp = UINT64_MAX;
    uint64_t oh[2], nh[2];
    unsigned bucket;
    uint8_t rk[DS_REC_KEY_MAX];
    MDB_val k = {DS_REC_KEY0 + key_len, rk}, v;
    int rc;

    if ((rc = srm__ds_buckets_load(txn, ps, kind)) < 0)
        return rc;
    bucket = srm__ds_bucket(kind, key, key_len);

    /* Everything about the old version first: its memory is the map's. */
    if (old) {
        old_live = !srm__ds_rec_tomb(old);
        if (old_live) {
            const uint8_t *ob = srm__ds_body(old);
            size_t obl = srm__ds_body_len(old);

            srm__ds_hash_record(kind, key, key_len, ob, obl, oh);
            if (kind == SRM_DS_LOGIN && (rc = srm__ds_login_active(ob, obl, &old_active)) < 0)
                return rc;
            if (kind == SRM_DS_SIP && (rc = srm__ds_sip_earliest(ob, obl, &old_exp)) < 0)
                return rc;
        }
    }
    if (new_live) {
        srm__ds_hash_record(kind, key, key_len, body, body_len, nh);
        if (kind == SRM_DS_LOGIN && (rc = srm__ds_login_active(body, body_len, &new_active)) < 0)
            return rc;
        if (kind == SRM_DS_SIP && (rc = srm__ds_sip_earliest(body, body_len, &new_exp)) < 0)
            return rc;
    }

    if (how != DS_STORE_INSERTED) {
        if ((rc = build_value(txn, stamp, body, body_len, &v)) < 0 || (rc = rec_cursor(txn)) < 0)
            return rc;
        srm__ds_rec_key(rk, ps->part, kind);
        memcpy(rk + DS_REC_KEY0, key, key_len);
        /* MDB_CURRENT: the cursor is on the key already, no second descent */
        rc = mdb_cursor_put(txn->rec_cur, &k, &v, how == DS_STORE_CURRENT ? MDB_CURRENT : 0);
        if (rc)
            return srm__ds_txn_fail(txn, rc);
    }

    if (kind == SRM_DS_SIP && old_exp != new_exp) {
        if (old_live && (rc = expiry_put(txn, ps->part, old_exp, key, key_len, false)))
            return srm__ds_txn_fail(txn, rc);
        if (new_live && (rc = expiry_put(txn, ps->part, new_exp, key, key_len, true)))
            return srm__ds_txn_fail(txn, rc);
    }

    if (old_live) {
        srm__ds_digest_sub(&m->digest[kind], oh);
        srm__ds_digest_sub(&ps->buckets[kind].b[bucket], oh);
        if (kind == SRM_DS_LOGIN) {
            if (old_active)
                m->sessions_active--;
            else
                m->sessions_inactive--;
        }
    } else if (old) {
        m->tombstones--;
    }
    if (new_live) {
        srm__ds_digest_add(&m->digest[kind], nh);
        srm__ds_digest_add(&ps->buckets[kind].b[bucket], nh);
        if (kind == SRM_DS_LOGIN) {
            if (new_active)
                m->sessions_active++;
            else
                m->sessions_inactive++;
        }
    } else {
        m->tombstones++;
    }
    ps->buckets_dirty[kind] = true;
    ps->dirty = true;
    return log_append(txn, ps, kind, key, key_len, stamp, new_live ? 0 : SRM_DS_ENTRY_TOMBSTONE);
}

int srm__ds_local_write(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint8_t kind,
                        const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                        bool is_delete)
{
    struct srm_ds_env *env = txn->env;
    struct ds_pstate *ps;
    struct srm_ds_stamp st, ost;
    MDB_val old;
    uint8_t fl;
    int rc;

    rc = srm__ds_pstate(txn, part, false, &ps);
    if (rc == SRM_ENOTFOUND || rc == -EINVAL)
        return SRM_ENOTOWNER;
    if (rc < 0)
        return rc;
    if (ps->m.owner != env->node_id)
        return SRM_ENOTOWNER;
    if (epoch != SRM_DS_EPOCH_ANY && epoch != ps->m.epoch)
        return SRM_ESTALE_EPOCH;
    st.epoch = ps->m.epoch;
    st.hlc = srm_ds_hlc_send(ps->m.hlc, srm__ds_txn_now(txn));
    st.origin = env->node_id;

    if (is_delete) {
        uint8_t rk[DS_REC_KEY_MAX];
        MDB_val k = {DS_REC_KEY0 + key_len, rk};

        if ((rc = rec_cursor(txn)) < 0)
            return rc;
        srm__ds_rec_key(rk, part, kind);
        memcpy(rk + DS_REC_KEY0, key, key_len);
        rc = mdb_cursor_get(txn->rec_cur, &k, &old, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            return -ENOENT;
        if (rc)
            return srm__ds_err(rc);
        if ((rc = srm__ds_envelope_check(&old)) < 0)
            return rc;
        body = NULL;
        body_len = 0;
    } else {
        rc = insert_or_find(txn, part, kind, key, key_len, &st, body, body_len, &old);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            ps->m.hlc = st.hlc;
            ps->dirty = true;
            rc = srm__ds_store(txn, ps, kind, key, key_len, NULL, body, body_len, &st,
                               DS_STORE_INSERTED);
            if (rc < 0 && !txn->err)
                txn->err = rc; /* the record is in: a half-done write fails the txn */
            return rc;
        }
    }
    srm__ds_envelope_get(&old, &ost, &fl);
    /* A version written under a later ownership wins under the conflict rule; writing over
     * it here would make this node diverge from the rest. */
    if (ost.epoch > ps->m.epoch)
        return SRM_ESTALE_EPOCH;
    if (is_delete && (fl & SRM_DS_ENTRY_TOMBSTONE))
        return -ENOENT;
    ps->m.hlc = st.hlc;
    ps->dirty = true;
    rc = srm__ds_store(txn, ps, kind, key, key_len, &old, body, body_len, &st, DS_STORE_CURRENT);
    if (rc < 0 && !txn->err)
        txn->err = rc;
    return rc;
}

/* ---- log ---- */

int srm_ds_log_info(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_log_info *ret)
{
    struct ds_meta m;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret)
        return -EINVAL;
    if ((rc = srm__ds_log_flush_part(txn, part)) < 0)
        return rc;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    ret->gen = m.gen;
    ret->first_seq = m.first_seq;
    ret->last_seq = m.last_seq;
    ret->bytes = m.log_bytes;
    ret->max_bytes = m.log_max;
    return 0;
}

int srm_ds_log_set_max(struct srm_ds_txn *txn, uint32_t part, uint64_t max_bytes)
{
    struct ds_pstate *ps;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if (max_bytes < 4096)
        return -EINVAL;
    if ((rc = srm__ds_pstate(txn, part, false, &ps)) < 0)
        return rc;
    ps->m.log_max = max_bytes;
    ps->dirty = true;
    if ((rc = srm__ds_log_flush(txn, ps)) < 0) /* stores, then drops down to the bound */
        return rc;
    if ((rc = log_evict(txn, ps)))
        return srm__ds_txn_fail(txn, rc);
    return 0;
}

int srm_ds_log_trim(struct srm_ds_txn *txn, uint32_t part, uint64_t upto_seq)
{
    struct ds_pstate *ps;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_pstate(txn, part, false, &ps)) < 0)
        return rc;
    if ((rc = srm__ds_log_flush(txn, ps)) < 0)
        return rc;
    if ((rc = srm__ds_log_trim_to(txn, ps, upto_seq)))
        return srm__ds_txn_fail(txn, rc);
    return 0;
}

/* The value of a put entry: the record, if it is still the version the entry names.
 * 0 and e->val set; 1 if superseded (a later entry of the log names the newer version or
 * the delete); or an error. The lookup goes through one cursor for the whole read: when the
 * key lies on the leaf page the cursor is on (writes with locality: a batch of one
 * client's keys, a user's resources), LMDB searches that page only instead of descending
 * from the root. */
static int log_resolve(MDB_cursor *rc_cur, uint32_t part, struct srm_ds_entry *e)
{
    uint8_t rk[DS_REC_KEY_MAX];
    MDB_val k = {DS_REC_KEY0 + e->key_len, rk}, v;
    struct srm_ds_stamp st;
    uint8_t fl;
    int rc;

    if (e->flags & SRM_DS_ENTRY_TOMBSTONE)
        return 0;
    srm__ds_rec_key(rk, part, e->kind);
    memcpy(rk + DS_REC_KEY0, e->key, e->key_len);
    rc = mdb_cursor_get(rc_cur, &k, &v, MDB_SET);
    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc)
        return srm__ds_err(rc);
    if ((rc = srm__ds_envelope_check(&v)) < 0)
        return rc;
    srm__ds_envelope_get(&v, &st, &fl);
    if ((fl & SRM_DS_ENTRY_TOMBSTONE) || srm_ds_stamp_cmp(&st, &e->stamp) != 0)
        return 1;
    e->val = srm__ds_body(&v);
    e->val_len = v.mv_size - DS_ENVELOPE;
    return 0;
}

int srm_ds_log_read(struct srm_ds_txn *txn, uint32_t part, uint64_t from_seq,
                    uint32_t exclude_origin, size_t max_count, size_t max_bytes,
                    srm_ds_entry_cb *cb, void *data, uint64_t *ret_next, uint64_t *ret_gen)
{
    struct ds_meta m;
    MDB_cursor *cur, *rcur;
    uint8_t lk[12];
    MDB_val k = {12, lk}, v;
    uint64_t next = from_seq;
    size_t count = 0, bytes = 0;
    bool stop = false;
    int rc, ret = 0;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!cb)
        return -EINVAL;
    if ((rc = srm__ds_log_flush_part(txn, part)) < 0)
        return rc;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    if (from_seq < m.first_seq || from_seq > m.last_seq + 1)
        return SRM_EHORIZON;
    if (from_seq > m.last_seq) {
        if (ret_next)
            *ret_next = from_seq;
        if (ret_gen)
            *ret_gen = m.gen;
        return 0;
    }
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_log, &cur)))
        return srm__ds_err(rc);
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_rec, &rcur))) {
        mdb_cursor_close(cur);
        return srm__ds_err(rc);
    }
    /* the record holding from_seq: the last one keyed at or before it */
    log_key(lk, part, from_seq);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 12 || srm__ds_get_be32(k.mv_data) != part ||
                                           srm__ds_get_be64((uint8_t *)k.mv_data + 4) > from_seq)))
        rc = mdb_cursor_get(cur, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    for (; rc == 0 && !stop; rc = stop ? 0 : mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        size_t off = DS_LOG_HDR;
        uint64_t first;
        int n;

        if (k.mv_size != 12 || srm__ds_get_be32(k.mv_data) != part)
            break;
        if ((n = log_rec_check(&k, &v)) < 0) {
            ret = n;
            break;
        }
        first = srm__ds_get_be64((const uint8_t *)k.mv_data + 4);
        for (int i = 0; i < n; i++) {
            struct srm_ds_entry e;
            size_t sz = 0;

            off += log_ent_decode(p + off, first + (uint64_t)i, &e);
            if (e.seq < from_seq)
                continue;
            if (e.seq > m.last_seq) { /* entries of this transaction's future are not ours */
                stop = true;
                break;
            }
            if (count > 0 && max_count && count >= max_count) {
                stop = true;
                break;
            }
            if (!(exclude_origin && e.stamp.origin == exclude_origin)) {
                if ((ret = log_resolve(rcur, part, &e)) < 0) {
                    stop = true;
                    break;
                }
                if (ret == 0) {
                    sz = srm_ds_entry_size(&e);
                    if (count > 0 && max_bytes && bytes + sz > max_bytes) {
                        stop = true;
                        break;
                    }
                }
            } else {
                ret = 1;
            }
            count++;
            next = e.seq + 1;
            if (ret) { /* skipped: another node's, or superseded */
                ret = 0;
                continue;
            }
            bytes += sz;
            if ((ret = cb(&e, data)) != 0) {
                stop = true;
                break;
            }
        }
    }
    mdb_cursor_close(rcur);
    mdb_cursor_close(cur);
    if (ret < 0)
        return ret;
    if (rc && rc != MDB_NOTFOUND)
        return srm__ds_err(rc);
    if (ret_next)
        *ret_next = next;
    if (ret_gen)
        *ret_gen = m.gen;
    return ret;
}

/* ---- applied positions: part BE32 | source BE32 -> {gen, seq} ---- */

struct ds_pos {
    uint64_t gen;
    uint64_t seq;
};

static int pos_get(struct srm_ds_txn *txn, uint32_t part, uint32_t source, struct ds_pos *ret)
{
    uint8_t pk[8];
    MDB_val k = {8, pk}, v;
    int rc;

    srm__ds_be32(pk, part);
    srm__ds_be32(pk + 4, source);
    rc = mdb_get(txn->mdb, txn->env->dbi_pos, &k, &v);
    if (rc == MDB_NOTFOUND) {
        ret->gen = 0;
        ret->seq = 0;
        return 0;
    }
    if (rc)
        return srm__ds_err(rc);
    if (v.mv_size != sizeof(*ret))
        return SRM_ECORRUPT;
    memcpy(ret, v.mv_data, sizeof(*ret));
    return 0;
}

static int pos_put(struct srm_ds_txn *txn, uint32_t part, uint32_t source, const struct ds_pos *p)
{
    uint8_t pk[8];
    MDB_val k = {8, pk}, v = {sizeof(*p), (void *)p};

    srm__ds_be32(pk, part);
    srm__ds_be32(pk + 4, source);
    return mdb_put(txn->mdb, txn->env->dbi_pos, &k, &v, 0);
}

int srm__ds_pos_set(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t gen,
                    uint64_t seq)
{
    struct ds_pos p = {gen, seq};
    int rc = pos_put(txn, part, source, &p);

    return rc ? srm__ds_txn_fail(txn, rc) : 0;
}

int srm_ds_log_pos(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t *ret_gen,
                   uint64_t *ret_seq)
{
    struct ds_pos p;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if ((rc = pos_get(txn, part, source, &p)) < 0)
        return rc;
    if (ret_gen)
        *ret_gen = p.gen;
    if (ret_seq)
        *ret_seq = p.seq;
    return 0;
}

static int entry_check(const struct srm_ds_entry *e)
{
    const char *a, *b;

    if (e->kind >= SRM_DS_KIND_MAX || (e->flags & ~SRM_DS_ENTRY_TOMBSTONE) || !e->key ||
        e->stamp.origin == SRM_DS_NODE_NONE)
        return -EINVAL;
    if (e->key_len > SRM_DS_KEY_MAX)
        return SRM_ETOOBIG;
    if (e->flags & SRM_DS_ENTRY_TOMBSTONE)
        return srm__ds_key_split(e->kind, e->key, e->key_len, &a, &b, true);
    if (!e->val)
        return -EINVAL;
    return srm_ds_record_check(e->kind, e->key, e->key_len, e->val, e->val_len);
}

int srm_ds_log_apply(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t source_gen,
                     const struct srm_ds_entry *entries, size_t n, uint64_t through_seq,
                     struct srm_ds_apply_result *ret)
{
    struct srm_ds_apply_result res = {0, 0, 0};
    struct ds_pstate *ps;
    struct ds_pos pos;
    uint64_t newpos, now;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if (part == 0 || source == SRM_DS_NODE_NONE || (n && !entries))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((rc = entry_check(&entries[i])) < 0)
            return rc;
    if ((rc = srm__ds_pstate(txn, part, true, &ps)) < 0)
        return rc;
    if ((rc = pos_get(txn, part, source, &pos)) < 0)
        return rc;
    if (pos.gen != source_gen) {
        pos.gen = source_gen;
        pos.seq = 0;
    }
    if ((rc = rec_cursor(txn)) < 0)
        return rc;
    now = srm__ds_txn_now(txn);
    newpos = pos.seq > through_seq ? pos.seq : through_seq;
    for (size_t i = 0; i < n; i++) {
        const struct srm_ds_entry *e = &entries[i];
        bool tomb = e->flags & SRM_DS_ENTRY_TOMBSTONE;
        MDB_val old;
        bool found;

        if (e->seq && e->seq <= pos.seq) {
            res.duplicate++;
            continue;
        }
        if (e->seq > newpos)
            newpos = e->seq;
        rc = insert_or_find(txn, part, e->kind, e->key, e->key_len, &e->stamp, tomb ? NULL : e->val,
                            tomb ? 0 : e->val_len, &old);
        if (rc < 0) {
            if (!txn->err)
                txn->err = rc;
            return rc;
        }
        found = rc == 1;
        if (found) {
            struct srm_ds_stamp st;
            uint8_t fl;
            int c;

            srm__ds_envelope_get(&old, &st, &fl);
            c = srm_ds_stamp_cmp(&e->stamp, &st);
            if (c == 0) {
                res.duplicate++;
                continue;
            }
            if (c < 0) {
                res.superseded++;
                continue;
            }
        }
        ps->m.hlc = srm_ds_hlc_recv(ps->m.hlc, e->stamp.hlc, now);
        rc = srm__ds_store(txn, ps, e->kind, e->key, e->key_len, found ? &old : NULL,
                           tomb ? NULL : e->val, tomb ? 0 : e->val_len, &e->stamp,
                           found ? DS_STORE_CURRENT : DS_STORE_INSERTED);
        if (rc < 0) {
            if (!txn->err)
                txn->err = rc;
            return rc;
        }
        res.applied++;
    }
    if (newpos != pos.seq || n == 0) {
        pos.seq = newpos;
        if ((rc = pos_put(txn, part, source, &pos)))
            return srm__ds_txn_fail(txn, rc);
    }
    ps->dirty = true;
    if (ret)
        *ret = res;
    return 0;
}

/* ---- digests ---- */

int srm_ds_digest_get(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                      struct srm_ds_digest *ret)
{
    struct ds_meta m;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret || (unsigned)kind >= SRM_DS_KIND_MAX)
        return -EINVAL;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    *ret = m.digest[kind];
    return 0;
}

static int buckets_read(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, struct ds_buckets *out)
{
    uint8_t k[5];
    MDB_val key = {5, k}, val;
    int rc;

    for (size_t i = 0; i < txn->nps; i++) {
        struct ds_pstate *ps = txn->ps[i];

        if (ps->part == part && ps->exists && ps->buckets_loaded[kind]) {
            *out = ps->buckets[kind];
            return 0;
        }
    }
    srm__ds_be32(k, part);
    k[4] = kind;
    rc = mdb_get(txn->mdb, txn->env->dbi_part, &key, &val);
    if (rc == MDB_NOTFOUND) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    if (rc)
        return srm__ds_err(rc);
    if (val.mv_size != sizeof(*out))
        return SRM_ECORRUPT;
    memcpy(out, val.mv_data, sizeof(*out));
    return 0;
}

int srm_ds_digest_buckets(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                          struct srm_ds_digest ret[SRM_DS_DIGEST_BUCKETS])
{
    struct ds_meta m;
    struct ds_buckets b;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!ret || (unsigned)kind >= SRM_DS_KIND_MAX)
        return -EINVAL;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    if ((rc = buckets_read(txn, part, (uint8_t)kind, &b)) < 0)
        return rc;
    memcpy(ret, b.b, sizeof(b.b));
    return 0;
}

int srm__ds_rec_scan(struct srm_ds_txn *txn, uint32_t part, int kind, srm__ds_visit_cb *cb,
                     void *data)
{
    MDB_cursor *cur;
    uint8_t pk[DS_REC_KEY0];
    MDB_val k, v;
    size_t plen = kind >= 0 ? 5 : 4;
    int rc, ret = 0;

    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_rec, &cur)))
        return srm__ds_err(rc);
    srm__ds_be32(pk, part);
    pk[4] = (uint8_t)(kind >= 0 ? kind : 0);
    k.mv_data = pk;
    k.mv_size = plen;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;

        if (k.mv_size <= DS_REC_KEY0 || memcmp(kp, pk, plen))
            break;
        if ((ret = srm__ds_envelope_check(&v)) < 0)
            break;
        if ((ret = cb(kp[4], kp + DS_REC_KEY0, k.mv_size - DS_REC_KEY0, &v, data)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    if (rc && rc != MDB_NOTFOUND)
        return srm__ds_err(rc);
    return 0;
}

struct bucket_list {
    unsigned bucket;
    srm_ds_entry_cb *cb;
    void *data;
};

static int bucket_list_visit(uint8_t kind, const uint8_t *key, size_t key_len, const MDB_val *v,
                             void *data)
{
    struct bucket_list *bl = data;
    struct srm_ds_entry e;

    if (srm__ds_bucket(kind, key, key_len) != bl->bucket)
        return 0;
    memset(&e, 0, sizeof(e));
    e.kind = kind;
    srm__ds_envelope_get(v, &e.stamp, &e.flags);
    e.key = key;
    e.key_len = key_len;
    e.val_len = v->mv_size - DS_ENVELOPE;
    e.val = e.val_len ? srm__ds_body(v) : NULL;
    return bl->cb(&e, bl->data);
}

int srm_ds_digest_bucket_list(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                              unsigned bucket, srm_ds_entry_cb *cb, void *data)
{
    struct bucket_list bl = {bucket, cb, data};
    struct ds_meta m;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if (!cb || (unsigned)kind >= SRM_DS_KIND_MAX || bucket >= SRM_DS_DIGEST_BUCKETS)
        return -EINVAL;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    return srm__ds_rec_scan(txn, part, kind, bucket_list_visit, &bl);
}

/* ---- verification ---- */

struct verify {
    struct srm_ds_txn *txn;
    uint32_t part;
    struct srm_ds_digest digest[SRM_DS_KIND_MAX];
    struct ds_buckets b[SRM_DS_KIND_MAX];
    uint64_t tombstones, active, inactive, sip_live;
    int bad;
};

static int verify_visit(uint8_t kind, const uint8_t *key, size_t key_len, const MDB_val *v,
                        void *data)
{
    struct verify *vf = data;
    const uint8_t *body = srm__ds_body(v);
    size_t blen = v->mv_size - DS_ENVELOPE;
    uint64_t h[2];
    unsigned b;
    int rc;

    if (kind >= SRM_DS_KIND_MAX)
        return SRM_ECORRUPT;
    if (srm__ds_rec_tomb(v)) {
        vf->tombstones++;
        return 0;
    }
    if ((rc = srm_ds_record_check(kind, key, key_len, body, blen)) < 0)
        return SRM_ECORRUPT;
    srm__ds_hash_record(kind, key, key_len, body, blen, h);
    b = srm__ds_bucket(kind, key, key_len);
    srm__ds_digest_add(&vf->digest[kind], h);
    srm__ds_digest_add(&vf->b[kind].b[b], h);
    if (kind == SRM_DS_LOGIN) {
        bool act;

        srm__ds_login_active(body, blen, &act);
        if (act)
            vf->active++;
        else
            vf->inactive++;
    } else if (kind == SRM_DS_SIP) {
        uint64_t e;
        uint8_t ek[12 + SRM_DS_KEY_MAX];
        MDB_val k, ev;

        srm__ds_sip_earliest(body, blen, &e);
        k.mv_data = ek;
        k.mv_size = (size_t)expiry_key(ek, vf->part, e, key, key_len);
        if (mdb_get(vf->txn->mdb, vf->txn->env->dbi_exp, &k, &ev) != 0)
            vf->bad = 1;
        vf->sip_live++;
    }
    return 0;
}

int srm_ds_verify(struct srm_ds_txn *txn, uint32_t part)
{
    struct verify *vf;
    struct ds_meta m;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t pk[4];
    uint64_t nexp = 0;
    int rc;

    if ((rc = srm__ds_txn_check(txn, false)) < 0)
        return rc;
    if ((rc = srm__ds_log_flush_part(txn, part)) < 0)
        return rc;
    if ((rc = srm__ds_meta_read(txn, part, &m)) < 0)
        return rc;
    vf = calloc(1, sizeof(*vf));
    if (!vf)
        return -ENOMEM;
    vf->txn = txn;
    vf->part = part;
    rc = srm__ds_rec_scan(txn, part, -1, verify_visit, vf);
    if (rc < 0)
        goto out;
    rc = SRM_ECORRUPT;
    if (vf->bad || vf->tombstones != m.tombstones || vf->active != m.sessions_active ||
        vf->inactive != m.sessions_inactive)
        goto out;
    for (int kind = 0; kind < SRM_DS_KIND_MAX; kind++) {
        struct ds_buckets b;

        if (memcmp(&vf->digest[kind], &m.digest[kind], sizeof(m.digest[kind])))
            goto out;
        if ((rc = buckets_read(txn, part, (uint8_t)kind, &b)) < 0)
            goto out;
        rc = SRM_ECORRUPT;
        if (memcmp(&b, &vf->b[kind], sizeof(b)))
            goto out;
    }
    /* The expiry index has exactly one entry per live SIP record. */
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_exp, &cur))) {
        rc = srm__ds_err(rc);
        goto out;
    }
    srm__ds_be32(pk, part);
    k.mv_data = pk;
    k.mv_size = 4;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 12 || memcmp(k.mv_data, pk, 4))
            break;
        nexp++;
    }
    mdb_cursor_close(cur);
    rc = nexp == vf->sip_live ? 0 : SRM_ECORRUPT;
    /* The log's byte count matches its entries. */
    if (rc == 0) {
        uint64_t bytes = 0, count = 0;
        uint8_t lk[12];

        if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_log, &cur))) {
            rc = srm__ds_err(rc);
            goto out;
        }
        srm__ds_be32(lk, part);
        srm__ds_be64(lk + 4, 0);
        k.mv_data = lk;
        k.mv_size = 12;
        /* records follow each other without gap from first_seq to last_seq */
        uint64_t expect = m.first_seq;
        bool gap = false;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            int n;

            if (k.mv_size != 12 || memcmp(k.mv_data, lk, 4))
                break;
            if ((n = log_rec_check(&k, &v)) < 0 ||
                srm__ds_get_be64((const uint8_t *)k.mv_data + 4) != expect) {
                gap = true;
                break;
            }
            expect += (uint64_t)n;
            bytes += 12 + v.mv_size;
            count += (uint64_t)n;
        }
        mdb_cursor_close(cur);
        rc = (!gap && bytes == m.log_bytes && count == m.last_seq + 1 - m.first_seq) ? 0
                                                                                     : SRM_ECORRUPT;
    }
out:
    free(vf);
    return rc;
}

/* ---- tombstones ---- */

int srm_ds_tombstone_purge(struct srm_ds_txn *txn, uint32_t part, uint64_t before_hlc,
                           size_t *ret_n)
{
    struct ds_pstate *ps;
    MDB_cursor *cur;
    uint8_t pk[4];
    MDB_val k = {4, pk}, v;
    size_t n = 0;
    int rc;

    if ((rc = srm__ds_txn_check(txn, true)) < 0)
        return rc;
    if ((rc = srm__ds_pstate(txn, part, false, &ps)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn->mdb, txn->env->dbi_rec, &cur)))
        return srm__ds_txn_fail(txn, rc);
    srm__ds_be32(pk, part);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        struct srm_ds_stamp st;
        uint8_t fl;

        if (k.mv_size <= DS_REC_KEY0 || memcmp(k.mv_data, pk, 4))
            break;
        if (v.mv_size >= DS_ENVELOPE) {
            srm__ds_envelope_get(&v, &st, &fl);
            if ((fl & SRM_DS_ENTRY_TOMBSTONE) && st.hlc < before_hlc) {
                uint8_t saved[DS_REC_KEY_MAX];
                size_t slen = k.mv_size;

                memcpy(saved, k.mv_data, slen);
                if ((rc = mdb_cursor_del(cur, 0)))
                    break;
                n++;
                ps->m.tombstones--;
                ps->dirty = true;
                k.mv_data = saved;
                k.mv_size = slen;
                rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                continue;
            }
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return srm__ds_txn_fail(txn, rc);
    if (ret_n)
        *ret_n = n;
    return 0;
}

int srm__ds_sip_expiry_del(struct srm_ds_txn *txn, uint32_t part, const uint8_t *key,
                           size_t key_len, const uint8_t *body, size_t body_len)
{
    uint64_t e;
    int rc = srm__ds_sip_earliest(body, body_len, &e);

    if (rc < 0)
        return rc;
    return expiry_put(txn, part, e, key, key_len, false);
}
