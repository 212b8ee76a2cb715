/*
 * Internals of the datastore module shared between its source files.
 *
 * Byte layouts (see README.md): integers inside keys are big-endian so that keys sort by
 * number; integers inside values are little-endian; the partition metadata and bucket
 * records are host-order structs, like LMDB's own pages (the file is not portable across
 * byte orders anyway).
 */
#ifndef SRM_DS_INTERNAL_H
#define SRM_DS_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "srm_ds.h"

/* ---- byte helpers ---- */
static inline void srm__ds_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void srm__ds_be64(uint8_t *p, uint64_t v)
{
    srm__ds_be32(p, (uint32_t)(v >> 32));
    srm__ds_be32(p + 4, (uint32_t)v);
}
static inline uint32_t srm__ds_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t srm__ds_get_be64(const uint8_t *p)
{
    return (uint64_t)srm__ds_get_be32(p) << 32 | srm__ds_get_be32(p + 4);
}
static inline void srm__ds_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void srm__ds_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void srm__ds_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t srm__ds_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t srm__ds_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t srm__ds_get_le64(const uint8_t *p)
{
    return (uint64_t)srm__ds_get_le32(p) | (uint64_t)srm__ds_get_le32(p + 4) << 32;
}

/* ---- hashing (codec.c) ---- */
void srm__ds_hash_record(uint8_t kind, const void *key, size_t key_len, const void *val,
                         size_t val_len, uint64_t ret[2]);
unsigned srm__ds_bucket(uint8_t kind, const void *key, size_t key_len);
int srm__ds_utf8_check(const uint8_t *s, size_t n);

static inline void srm__ds_digest_add(struct srm_ds_digest *d, const uint64_t h[2])
{
    uint64_t lo = d->lo + h[0];
    d->hi += h[1] + (lo < d->lo);
    d->lo = lo;
    d->count++;
}
static inline void srm__ds_digest_sub(struct srm_ds_digest *d, const uint64_t h[2])
{
    uint64_t lo = d->lo - h[0];
    d->hi -= h[1] + (lo > d->lo);
    d->lo = lo;
    d->count--;
}

/* ---- record bodies (codec.c) ---- */
/* Decodes the key of `kind` into up to two strings (NUL-terminated inside key). */
int srm__ds_key_split(uint8_t kind, const uint8_t *key, size_t key_len, const char **a,
                      const char **b, bool check_utf8);
int srm__ds_presence_decode(const uint8_t *val, size_t len, struct srm_ds_presence *p,
                            bool check_utf8);
int srm__ds_login_decode(const uint8_t *val, size_t len, struct srm_ds_login *l, bool check_utf8);
int srm__ds_sip_decode(const uint8_t *val, size_t len, struct srm_ds_sip_reg *r, bool check_utf8);
int srm__ds_key_make(uint8_t kind, const char *a, const char *b, uint8_t *key, size_t *ret_len,
                     bool check_utf8);
int srm__ds_presence_encode(const struct srm_ds_presence *p, uint8_t *key, size_t *key_len,
                            uint8_t **buf, size_t *cap, size_t *ret_len);
int srm__ds_login_encode(const struct srm_ds_login *l, uint8_t *key, size_t *key_len, uint8_t **buf,
                         size_t *cap, size_t *ret_len);
/* Drops contacts expired at now_ms; *ret_live is the number kept (0: delete the record). */
int srm__ds_sip_encode(const struct srm_ds_sip_reg *reg, uint64_t now_ms, uint8_t *key,
                       size_t *key_len, uint8_t **buf, size_t *cap, size_t *ret_len,
                       unsigned *ret_live);
/* Earliest expiry of an encoded SIP body (UINT64_MAX if none); 0 on success. */
int srm__ds_sip_earliest(const uint8_t *val, size_t len, uint64_t *ret);
/* Login body's active flag. */
int srm__ds_login_active(const uint8_t *val, size_t len, bool *ret);

/* ---- on-disk layouts ---- */
#define DS_PRESENCE_HDR     15u /* fixed part of a presence body */
#define DS_LOGIN_HDR        20u /* fixed part of a login body */
#define DS_ENV_FORMAT_MAGIC "srm-ds"
#define DS_ENV_LAYOUT       2u

/* Stored record value: u8 head (format << 1 | tombstone) | body (absent for a tombstone) |
 * stamp: u64 epoch | u64 hlc | u32 origin (LE). The head and the body's own header share a
 * cache line with the key, the stamp is at the end: a read touches no more cache lines
 * than a bare mdb_get of the same value. */
#define DS_ENV_FMT     1u
#define DS_STAMP       20u
#define DS_ENVELOPE    (1u + DS_STAMP) /* head + stamp */
#define DS_REC_KEY0    5u              /* part BE32 | kind */
#define DS_REC_KEY_MAX (DS_REC_KEY0 + SRM_DS_KEY_MAX)

/* Stored log record: a run of consecutive entries of one partition written by one
 * transaction, keyed by part BE32 | seq BE64 of its first entry: u8 fmt | u8 count, then
 * count entries of u8 kind | u8 flags | u64 epoch | u64 hlc | u32 origin | u16 key_len |
 * key (entry i has seq first + i). The records of a partition cover first_seq..last_seq
 * without gap or overlap. A record holds at most DS_LOG_REC_MAX bytes (below LMDB's
 * largest node on a 4 KiB page, so never an overflow page) and DS_LOG_REC_COUNT entries:
 * one LMDB put appends dozens of entries and one delete trims them, where an entry per
 * record cost a put and a delete each. The value is not copied: it is the record while the
 * record carries the entry's stamp; once overwritten, the entry is superseded by a later
 * one. */
#define DS_LOG_FMT       2u
#define DS_LOG_HDR       2u  /* record header */
#define DS_LOG_ENT       24u /* entry header */
#define DS_LOG_REC_MAX   2000u
#define DS_LOG_REC_COUNT 255u

#define DS_WIRE_FMT 1u
#define DS_WIRE_HDR 37u

#define DS_META_FMT 1u
struct ds_meta {
    uint8_t fmt;
    uint8_t pad[3];
    uint32_t owner;
    uint64_t epoch;
    uint64_t gen;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t log_bytes;
    uint64_t log_max;
    uint64_t hlc;
    uint64_t sessions_active;
    uint64_t sessions_inactive;
    uint64_t tombstones;
    struct srm_ds_digest digest[SRM_DS_KIND_MAX];
};

struct ds_buckets {
    struct srm_ds_digest b[SRM_DS_DIGEST_BUCKETS];
};

/* ---- shared memory (notify.c) ---- */
struct ds_shm;

/* ---- environment and transactions ---- */
struct srm_ds_env {
    MDB_env *mdb;
    /* part: metadata (key part, 4 bytes) and bucket digests (part | kind, 5 bytes) side by
     * side, so that a commit dirties one leaf for both */
    MDB_dbi dbi_fmt, dbi_part, dbi_rec, dbi_log, dbi_pos, dbi_exp, dbi_stage;
    uint32_t node_id;
    bool read_only;
    uint64_t map_size, map_max, log_max_default;
    srm_ds_clock_cb *clock_cb;
    void *clock_data;
    pthread_mutex_t mu; /* guards active_txns, grow_pending, map_size, send_fd */
    unsigned active_txns;
    bool grow_pending;
    struct ds_shm *shm;
    size_t shm_len;
    int send_fd;
    char sock_base[64]; /* abstract socket name prefix, from data.mdb's dev/ino */
};

/* Per-partition state of a write transaction: loaded on first touch, written once at
 * commit. */
struct ds_pstate {
    uint32_t part;
    bool exists;
    bool dirty;
    bool wrote_log;
    /* log entries appended by this transaction and not stored yet: one record being
     * filled (srm__ds_log_flush stores it) */
    uint8_t *lg;
    size_t lg_len;
    unsigned lg_count;
    uint64_t lg_first;
    bool buckets_loaded[SRM_DS_KIND_MAX];
    bool buckets_dirty[SRM_DS_KIND_MAX];
    struct ds_meta m;
    struct ds_buckets buckets[SRM_DS_KIND_MAX];
};

struct srm_ds_txn {
    struct srm_ds_env *env;
    MDB_txn *mdb;
    bool rdonly;
    bool active; /* read txn: false after reset */
    int err;     /* sticky failure */
    MDB_cursor *rec_cur, *log_cur;
    MDB_cursor *log_front_cur; /* deletions at the log's front (trims, bound) */
    bool log_front;            /* ... and it sits on the oldest entry (after a deletion) */
    struct ds_pstate **ps;
    size_t nps, cap_ps;
    uint8_t *buf; /* scratch for encoding */
    size_t buf_cap;
    uint8_t *buf2;
    size_t buf2_cap;
    uint64_t wall_ms; /* read once per transaction (0: not yet) */
};

int srm__ds_err(int rc);
/* Records an LMDB failure that broke the transaction and returns the project code. */
int srm__ds_txn_fail(struct srm_ds_txn *txn, int rc);
/* Common entry checks: 0 or an error (write: needs a write transaction). */
int srm__ds_txn_check(struct srm_ds_txn *txn, bool write);
int srm__ds_scratch(uint8_t **buf, size_t *cap, size_t need);
uint64_t srm__ds_now(struct srm_ds_env *env);
uint64_t srm__ds_txn_now(struct srm_ds_txn *txn);
uint64_t srm__ds_random64(void);

/* Partition state of a write transaction; create: make the partition if missing. */
int srm__ds_pstate(struct srm_ds_txn *txn, uint32_t part, bool create, struct ds_pstate **ret);
int srm__ds_buckets_load(struct srm_ds_txn *txn, struct ds_pstate *ps, uint8_t kind);
/* Reads meta of a partition in any transaction (from the txn cache when present). */
int srm__ds_meta_read(struct srm_ds_txn *txn, uint32_t part, struct ds_meta *ret);
void srm__ds_meta_init(struct srm_ds_env *env, struct ds_meta *m);

static inline bool srm__ds_rec_tomb(const MDB_val *v)
{
    return ((const uint8_t *)v->mv_data)[0] & SRM_DS_ENTRY_TOMBSTONE;
}
static inline const uint8_t *srm__ds_body(const MDB_val *v)
{
    return (const uint8_t *)v->mv_data + 1;
}
static inline size_t srm__ds_body_len(const MDB_val *v)
{
    return v->mv_size - DS_ENVELOPE;
}

static inline void srm__ds_rec_key(uint8_t *out, uint32_t part, uint8_t kind)
{
    srm__ds_be32(out, part);
    out[4] = kind;
}

/* store.c: the write core shared by local writes, apply and sweeps. `old` is the stored
 * value of the key (NULL if none), body NULL for a tombstone. */
enum ds_store_how {
    DS_STORE_PUT,      /* write the record (a cursor put) */
    DS_STORE_CURRENT,  /* the record cursor is on the key: replace in place */
    DS_STORE_INSERTED, /* already inserted by the caller: bookkeeping only */
};
int srm__ds_store(struct srm_ds_txn *txn, struct ds_pstate *ps, uint8_t kind, const uint8_t *key,
                  size_t key_len, const MDB_val *old, const uint8_t *body, size_t body_len,
                  const struct srm_ds_stamp *stamp, enum ds_store_how how);
/* Local write: fencing, stamp, store. */
int srm__ds_local_write(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint8_t kind,
                        const uint8_t *key, size_t key_len, const uint8_t *body, size_t body_len,
                        bool is_delete);
/* Looks up a record: 0 and *ret_val (live or tombstone), -ENOENT. */
int srm__ds_rec_get(struct srm_ds_txn *txn, uint32_t part, uint8_t kind, const uint8_t *key,
                    size_t key_len, MDB_val *ret_val);
/* Stamp and flags of a stored value (checked with srm__ds_envelope_check). */
void srm__ds_envelope_get(const MDB_val *v, struct srm_ds_stamp *st, uint8_t *flags);
/* Writes head | body | stamp into out (DS_ENVELOPE + body_len bytes). */
void srm__ds_value_build(uint8_t *out, const struct srm_ds_stamp *st, uint8_t flags,
                         const void *body, size_t body_len);
int srm__ds_log_trim_to(struct srm_ds_txn *txn, struct ds_pstate *ps, uint64_t upto);
/* Stores the log entries ps has pending (a write transaction's), then drops the oldest
 * records while the log is over its bound. 0 or a project code (the transaction is failed
 * on an LMDB error). */
int srm__ds_log_flush(struct srm_ds_txn *txn, struct ds_pstate *ps);
/* The same for the partition's state in txn, if any (reads of the log call it first). */
int srm__ds_log_flush_part(struct srm_ds_txn *txn, uint32_t part);
int srm__ds_sip_expiry_del(struct srm_ds_txn *txn, uint32_t part, const uint8_t *key,
                           size_t key_len, const uint8_t *body, size_t body_len);

/* Iterates stored records of (part, kind) (kind < 0: every kind); cb gets the record key
 * without its prefix and the stored value (envelope | body). */
typedef int srm__ds_visit_cb(uint8_t kind, const uint8_t *key, size_t key_len, const MDB_val *v,
                             void *data);
int srm__ds_rec_scan(struct srm_ds_txn *txn, uint32_t part, int kind, srm__ds_visit_cb *cb,
                     void *data);
int srm__ds_pos_set(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t gen,
                    uint64_t seq);
int srm__ds_envelope_check(const MDB_val *v);

/* notify.c */
int srm__ds_shm_open(struct srm_ds_env *env, const char *dir);
void srm__ds_shm_close(struct srm_ds_env *env);
void srm__ds_notify(struct srm_ds_env *env, enum srm_ds_event_kind kind, uint32_t part,
                    uint64_t seq);

#endif
