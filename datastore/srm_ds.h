/*
 * srm_ds — presence, login and SIP-registration datastores on LMDB, with partition
 * ownership and fencing, a per-partition replication log, snapshots, change notifications
 * and order-independent digests.
 *
 * MODEL
 *
 * An environment (struct srm_ds_env) is one directory on one node. It holds several
 * partitions. A partition is named by the home node id of its users (a uint32_t, never 0)
 * and holds three datastores (enum srm_ds_kind): presence, login and SIP registration.
 * Every record belongs to exactly one partition.
 *
 * Each partition has an ownership record {owner node, epoch}. A node writes a partition
 * only while it owns it: every local write names the epoch it believes current, and the
 * check is made inside the write transaction, so a node that lost ownership (or a process
 * that holds an old epoch) is refused with SRM_ENOTOWNER or SRM_ESTALE_EPOCH, never
 * silently applied. srmd changes ownership with srm_ds_owner_set(): one record, O(1) in
 * the number of users.
 *
 * Every change (local write, remote entry applied, expiry sweep) appends, in the same
 * transaction, an entry to its partition's log: {seq, datastore, key, value or tombstone,
 * stamp}. The value is kept once, in the record; an entry whose key was written again is
 * superseded by the later entry (see srm_ds_log_read). The stamp {epoch, hlc, origin} orders writes
 * to one key across nodes: the higher epoch wins, then the higher hybrid-logical-clock timestamp,
 * then the higher origin node id (srm_ds_stamp_cmp). Remote batches are applied with that rule, so
 * two nodes that wrote the same partition (split brain, or a backup that served the peer's users
 * while it was away) converge to identical contents and digests whatever the order of application.
 * An applied remote entry keeps its origin in the local log, and srm_ds_log_read() can skip
 * entries of a given origin, so nothing is sent back to the node it came from.
 *
 * MULTI-PROCESS RULES
 *
 * - One environment per node directory. Several processes (srmd, protocol daemons) may
 *   open the same directory at once; LMDB serialises writers with a robust process-shared
 *   mutex in lock.mdb (a writer killed while holding it does not block the others) and
 *   readers never block. A process opens an environment once and shares the handle between
 *   its threads.
 * - Never fork() with an environment open and use it in the child; open it after fork.
 * - Handles are opened with MDB_NOTLS: a read transaction may be used by any one thread at
 *   a time (e.g. a snapshot iterated in a worker thread), and a thread may hold several.
 *   A write transaction must stay in the thread that began it. One write transaction at a
 *   time per process and thread; a second writer (any process) waits in
 *   srm_ds_txn_begin().
 * - Keep write transactions short: they block every other writer of the node.
 * - Values read from the store are borrowed: they point into the LMDB map and are valid
 *   until the transaction ends (commit, abort or reset). Copy what you keep.
 * - Change notifications use abstract unix datagram sockets, so every process using an
 *   environment must be in the same network namespace.
 *
 * ERRORS
 *
 * Functions return >= 0 on success, a negative errno or a negative SRM_E... code of
 * common/srm_error.h on failure; LMDB codes never escape. Output parameters (ret_*) are
 * untouched on failure. Codes common to all operations inside a transaction:
 *   -EINVAL            a NULL argument, an unknown enum value, a read-only transaction
 *                      given to a write operation;
 *   SRM_ETXN_FAILED    the transaction failed earlier (see srm_ds_txn_begin);
 *   SRM_ECORRUPT       the store holds a record or page that cannot be decoded;
 *   SRM_EMAPFULL       the map is full at its configured maximum (no retry will help
 *                      until records are deleted or the maximum is raised);
 *   -EAGAIN            the map was full and will grow before the next transaction:
 *                      abort and retry the whole transaction;
 *   -ENOSPC, -EIO      the file system refused a write (full disk, I/O error): the
 *                      transaction is failed, nothing of it is stored, and the store works
 *                      again once space is back;
 *   -ENOMEM            out of memory.
 */
#ifndef SRM_DS_H
#define SRM_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srm_error.h"

/* ---------------------------------------------------------------------------------------
 * Bounds. Every field of every record has one; encoders and decoders refuse anything
 * beyond it with SRM_ETOOBIG. Text fields are UTF-8 (SRM_EBADUTF8 otherwise) without NUL.
 * Lengths are in bytes.
 * ------------------------------------------------------------------------------------- */
#define SRM_DS_USER_MAX           255   /* user id (bare JID, SIP user), 1..255 */
#define SRM_DS_RESOURCE_MAX       255   /* XMPP resource, 0..255 */
#define SRM_DS_STATUS_MAX         1024  /* presence status text, 0..1024 */
#define SRM_DS_EXT_MAX            16384 /* presence opaque extension blob, 0..16384 */
#define SRM_DS_SESSION_ID_MAX     128   /* login session id, 1..128 */
#define SRM_DS_CLIENT_TYPE_MAX    64    /* login client type, 0..64 */
#define SRM_DS_CLIENT_VERSION_MAX 64    /* login client version, 0..64 */
#define SRM_DS_AOR_MAX            255   /* SIP address of record, 1..255 */
#define SRM_DS_SIP_CONTACTS_MAX   16    /* contacts per address of record, 1..16 */
#define SRM_DS_CONTACT_URI_MAX    1024  /* SIP contact URI, 1..1024 */
#define SRM_DS_CALL_ID_MAX        255   /* SIP Call-ID, 1..255 */
#define SRM_DS_PATH_MAX           2048  /* SIP Path header value, 0..2048 */
#define SRM_DS_RECEIVED_MAX       255   /* SIP received (source address), 0..255 */
#define SRM_DS_SIP_Q_MAX          1000  /* q in thousandths: 0..1000 means 0.000..1.000 */

/* Generic bounds, used by the log, apply and snapshot paths. A key holds its fields and
 * their NUL terminators: a presence key (user and resource) is also bounded as a whole,
 * user + resource <= SRM_DS_KEY_MAX - 2 (SRM_ETOOBIG beyond). */
#define SRM_DS_KEY_MAX   480   /* datastore key (see each datastore for its layout) */
#define SRM_DS_VALUE_MAX 65536 /* encoded record */

/* Number of digest buckets per partition and datastore (by keyed hash of the key). */
#define SRM_DS_DIGEST_BUCKETS 64

/* Node ids and partition ids are non-zero; 0 means "no node". */
#define SRM_DS_NODE_NONE 0u

/* Epoch argument of a write meaning "whatever the current epoch is, as long as this node
 * owns the partition". Weaker than naming the epoch: use it only for writes that cannot
 * have been decided under an older ownership. */
#define SRM_DS_EPOCH_ANY 0u

/* The three datastores. The value is also the wire and on-disk byte. */
enum srm_ds_kind { SRM_DS_PRESENCE = 0, SRM_DS_LOGIN = 1, SRM_DS_SIP = 2, SRM_DS_KIND_MAX };

/* Name of a datastore ("presence", "login", "sip"); "?" for an unknown value. */
const char *srm_ds_kind_name(enum srm_ds_kind kind);

/* ---------------------------------------------------------------------------------------
 * Environment
 * ------------------------------------------------------------------------------------- */

struct srm_ds_env;

enum srm_ds_sync_mode {
    /* Every commit is flushed to disk (two fdatasync) before srm_ds_txn_commit() returns:
     * a committed write survives a power loss. 2-5k commits/s per node: batch writes. */
    SRM_DS_SYNC_DURABLE = 0,
    /* MDB_NOSYNC: commits reach the page cache only; a committed write survives the death
     * of any process but not of the machine, until srm_ds_env_flush() returns. The
     * database stays consistent either way (LMDB's two meta pages). */
    SRM_DS_SYNC_NONE = 1,
    SRM_DS_SYNC_MODE_MAX
};

/* Wall clock in milliseconds since the Unix epoch; a seam for tests. */
typedef uint64_t srm_ds_clock_cb(void *data);

struct srm_ds_open_opts {
    uint32_t node_id;           /* this node (required, non-zero): origin of local writes and
                                   the node ownership is checked against */
    enum srm_ds_sync_mode sync; /* see above; every process of one environment should use the
                                   same mode (LMDB applies it per handle) */
    uint64_t map_size;          /* initial map size in bytes; 0: 64 MiB. An existing larger
                                   file keeps its size. */
    uint64_t map_size_max;      /* the map grows (doubling) up to this on MDB_MAP_FULL;
                                   0: same as map_size (never grows) */
    uint64_t log_max_bytes;     /* default bound of each partition's log, set when a
                                   partition is created; 0: 64 MiB */
    unsigned max_readers;       /* concurrent read transactions of all processes; 0: 126 */
    bool read_only;             /* MDB_RDONLY: no write transaction, no format creation */
    srm_ds_clock_cb *clock_cb;  /* NULL: CLOCK_REALTIME */
    void *clock_data;
};

/*
 * Opens (creating the directory and the store if needed) the environment in `dir`:
 * files data.mdb and lock.mdb (LMDB) and srm-ds.shm (volatile shared state: replication
 * positions for sync waiters and the subscriber registry). Clears stale reader slots of
 * dead processes.
 *
 * Returns 0 and *ret_env (close with srm_ds_env_close), or
 *   -EINVAL          opts or dir NULL, node_id 0, map_size_max < map_size;
 *   SRM_ECORRUPT     data.mdb is not an LMDB file, is of another LMDB version, is shorter
 *                    than its committed pages (truncated), belongs to another program
 *                    (foreign named databases, no or another srm-ds format record), or
 *                    srm-ds.shm is not ours;
 *   -EACCES, -ENOENT, -ENOMEM, -EIO ... from the file system.
 */
int srm_ds_env_open(const char *dir, const struct srm_ds_open_opts *opts,
                    struct srm_ds_env **ret_env);

/* Closes the handle; every transaction, snapshot and subscriber of it must be finished
 * before. Accepts NULL. */
void srm_ds_env_close(struct srm_ds_env *env);

/* Flushes committed data to disk (for SRM_DS_SYNC_NONE). 0, -EIO, -ENOSPC. */
int srm_ds_env_flush(struct srm_ds_env *env);

struct srm_ds_env_info {
    uint32_t node_id;
    uint64_t map_size;     /* current map size in bytes */
    uint64_t map_size_max; /* growth limit */
    uint64_t used_bytes;   /* pages in use (last committed transaction) times page size */
    unsigned readers_used; /* reader slots in use */
};

/* 0 and *ret_info; -EINVAL. */
int srm_ds_env_info(struct srm_ds_env *env, struct srm_ds_env_info *ret_info);

/* ---------------------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------------------- */

struct srm_ds_txn;

#define SRM_DS_TXN_RDONLY 0x1u

/*
 * Begins a transaction (read-only with SRM_DS_TXN_RDONLY). A read transaction sees one
 * consistent point in time. A write transaction is exclusive among all processes of the
 * environment until it ends.
 *
 * An operation that fails after it changed anything (an LMDB failure: map full, disk full,
 * I/O error, corruption) fails the transaction: every later operation on it returns
 * SRM_ETXN_FAILED and srm_ds_txn_commit() aborts it and returns SRM_ETXN_FAILED. Refusals
 * decided before any change (bad input, SRM_ENOTOWNER, SRM_ESTALE_EPOCH, -ENOENT ...)
 * leave the transaction usable.
 *
 * Returns 0 and *ret_txn, or -EINVAL (write on a read-only environment), -EAGAIN (another
 * process grew the map while transactions of this process are open: retry once they end),
 * -EBUSY (reader slots exhausted), -ENOMEM, SRM_ECORRUPT, -EIO.
 */
int srm_ds_txn_begin(struct srm_ds_env *env, unsigned flags, struct srm_ds_txn **ret_txn);

/*
 * Commits and frees the transaction, then notifies subscribers of every partition whose
 * log advanced. For a read transaction this is the same as abort. On failure the
 * transaction is aborted and freed too.
 * Returns 0, SRM_ETXN_FAILED, -EAGAIN / SRM_EMAPFULL, -ENOSPC, -EIO.
 */
int srm_ds_txn_commit(struct srm_ds_txn *txn);

/* Aborts and frees. Accepts NULL. */
void srm_ds_txn_abort(struct srm_ds_txn *txn);

/* Read transactions only: release the snapshot but keep the handle (cheap), and take a
 * fresh snapshot with renew. Borrowed values die at reset. renew: 0, -EINVAL, -EIO. */
void srm_ds_txn_reset(struct srm_ds_txn *txn);
int srm_ds_txn_renew(struct srm_ds_txn *txn);

/*
 * Write transactions: the last log sequence number this transaction assigned in
 * `part` (the commit position to wait for with srm_ds_sync_wait after commit).
 * Returns 0 and *ret_seq; -ENOENT if the transaction did not write `part`.
 */
int srm_ds_txn_seq(struct srm_ds_txn *txn, uint32_t part, uint64_t *ret_seq);

/* ---------------------------------------------------------------------------------------
 * Hybrid logical clock: 48 bits of wall-clock milliseconds, 16 bits of logical counter,
 * in one uint64_t that orders like the pair. Pure functions; the wall clock is passed in.
 * ------------------------------------------------------------------------------------- */

#define SRM_DS_HLC_MS(h)      ((h) >> 16)
#define SRM_DS_HLC_COUNTER(h) ((h)&0xffffu)

/* Timestamp for a local event: greater than `last`, and >= wall_ms if the clock is ahead. */
uint64_t srm_ds_hlc_send(uint64_t last, uint64_t wall_ms);
/* New local clock after seeing `remote`: greater than both `last` and `remote`. */
uint64_t srm_ds_hlc_recv(uint64_t last, uint64_t remote, uint64_t wall_ms);

/* The version of one write, stored with every record and log entry. */
struct srm_ds_stamp {
    uint64_t epoch;  /* ownership epoch the write was made under */
    uint64_t hlc;    /* hybrid logical clock of the writing node's partition */
    uint32_t origin; /* node that made the write */
};

/* The conflict rule: <0, 0, >0 as a is older, the same write, newer than b. Higher epoch
 * wins, then higher hlc, then higher origin. */
int srm_ds_stamp_cmp(const struct srm_ds_stamp *a, const struct srm_ds_stamp *b);

/* ---------------------------------------------------------------------------------------
 * Partitions and ownership
 * ------------------------------------------------------------------------------------- */

struct srm_ds_owner {
    uint32_t node;  /* owner, SRM_DS_NODE_NONE if nobody */
    uint64_t epoch; /* grows with every change of owner; 0 before the first */
};

/*
 * Reads a partition's ownership. Any transaction.
 * Returns 0 and *ret_owner, SRM_ENOTFOUND if the partition does not exist.
 */
int srm_ds_owner_get(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_owner *ret_owner);

/*
 * Sets a partition's owner (srmd: failover, fallback, takeover, initial assignment),
 * creating the partition if needed. One record: O(1) in the number of users. `epoch` must
 * be greater than the current epoch (0 picks current + 1); the cluster decides epochs so
 * that two nodes never use the same one. Writes already made stay; later writes are
 * checked against the new owner and epoch.
 * Returns 0 and *ret_epoch (may be NULL), -EINVAL (part 0), SRM_ESTALE_EPOCH (epoch not
 * greater than the current one).
 */
int srm_ds_owner_set(struct srm_ds_txn *txn, uint32_t part, uint32_t owner, uint64_t epoch,
                     uint64_t *ret_epoch);

/* Lists the partitions of the environment, ascending. Fills up to `cap` ids; *ret_n is the
 * number of partitions (may exceed cap). 0, -EINVAL. */
int srm_ds_part_list(struct srm_ds_txn *txn, uint32_t *ids, size_t cap, size_t *ret_n);

struct srm_ds_part_stats {
    struct srm_ds_owner owner;
    uint64_t records[SRM_DS_KIND_MAX]; /* live records (tombstones excluded) */
    uint64_t tombstones;
    uint64_t sessions_active;   /* login sessions with active == true */
    uint64_t sessions_inactive; /* dual-connection inactive sessions (SPEC §5) */
    uint64_t hlc;               /* partition clock */
};

/* Counters of one partition, maintained incrementally. 0, SRM_ENOTFOUND. */
int srm_ds_part_stats(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_part_stats *ret);

/* ---------------------------------------------------------------------------------------
 * Presence: one record per (user, resource).
 * Key layout: user NUL resource NUL.
 * ------------------------------------------------------------------------------------- */

enum srm_ds_availability {
    SRM_DS_AVAIL_AVAILABLE = 0,
    SRM_DS_AVAIL_CHAT = 1,
    SRM_DS_AVAIL_AWAY = 2,
    SRM_DS_AVAIL_XA = 3,
    SRM_DS_AVAIL_DND = 4,
    SRM_DS_AVAIL_INVISIBLE = 5,
    SRM_DS_AVAIL_UNAVAILABLE = 6,
    SRM_DS_AVAIL_MAX
};

/* Strings are NUL-terminated UTF-8. In records returned by the store they are borrowed
 * until the transaction ends. */
struct srm_ds_presence {
    const char *user;     /* 1..SRM_DS_USER_MAX */
    const char *resource; /* 0..SRM_DS_RESOURCE_MAX ("" for a bare presence) */
    enum srm_ds_availability availability;
    int8_t priority;     /* XMPP priority -128..127 */
    const char *status;  /* 0..SRM_DS_STATUS_MAX; NULL is taken as "" */
    uint64_t updated_ms; /* last update, ms since the Unix epoch */
    const void *ext;     /* opaque extension blob, 0..SRM_DS_EXT_MAX bytes */
    size_t ext_len;
};

/*
 * Inserts or replaces the presence of (p->user, p->resource) in `part`, under `epoch`.
 * Returns 0, or
 *   SRM_ETOOBIG, SRM_EBADUTF8, -EINVAL    field out of bounds / invalid;
 *   SRM_ENOTOWNER      this node does not own `part` (or it does not exist);
 *   SRM_ESTALE_EPOCH   `epoch` is not the partition's current epoch, or the record was
 *                      last written under a higher epoch;
 *   and the transaction codes listed at the top.
 */
int srm_ds_presence_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                        const struct srm_ds_presence *p);
/* 0 and *ret: user and resource are the caller's arguments, the rest is borrowed.
 * -ENOENT; SRM_ETOOBIG / -EINVAL for an argument out of bounds (no UTF-8 check on reads:
 * a bad string is simply not found). */
int srm_ds_presence_get(struct srm_ds_txn *txn, uint32_t part, const char *user,
                        const char *resource, struct srm_ds_presence *ret);
/* Deletes (leaves a tombstone for the conflict rule). 0, -ENOENT, as put. */
int srm_ds_presence_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *user,
                        const char *resource);

/* Iteration callback: return 0 to go on, > 0 to stop (returned by the list function), < 0
 * to stop with that error. Records are borrowed until the transaction ends. */
typedef int srm_ds_presence_cb(const struct srm_ds_presence *p, void *data);
/* Every resource of `user`, or every presence of the partition when user is NULL, in key
 * order. Returns 0, the callback's non-zero value, or an error. */
int srm_ds_presence_list(struct srm_ds_txn *txn, uint32_t part, const char *user,
                         srm_ds_presence_cb *cb, void *data);

/* ---------------------------------------------------------------------------------------
 * Login: one record per session. Key layout: user NUL session_id NUL.
 * ------------------------------------------------------------------------------------- */

struct srm_ds_login {
    const char *user;           /* 1..SRM_DS_USER_MAX */
    const char *session_id;     /* 1..SRM_DS_SESSION_ID_MAX */
    const char *resource;       /* 0..SRM_DS_RESOURCE_MAX; NULL is "" */
    const char *client_type;    /* 0..SRM_DS_CLIENT_TYPE_MAX; NULL is "" */
    const char *client_version; /* 0..SRM_DS_CLIENT_VERSION_MAX; NULL is "" */
    uint32_t node;              /* node serving the session (non-zero) */
    uint64_t login_ms;          /* login time, ms since the Unix epoch */
    bool active;                /* false: the inactive second session on the backup */
};

/* As srm_ds_presence_put; also keeps the partition's active/inactive session counters. */
int srm_ds_login_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                     const struct srm_ds_login *l);
int srm_ds_login_get(struct srm_ds_txn *txn, uint32_t part, const char *user,
                     const char *session_id, struct srm_ds_login *ret);
int srm_ds_login_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *user,
                     const char *session_id);
typedef int srm_ds_login_cb(const struct srm_ds_login *l, void *data);
/* Sessions of `user`, or of the whole partition when user is NULL. */
int srm_ds_login_list(struct srm_ds_txn *txn, uint32_t part, const char *user, srm_ds_login_cb *cb,
                      void *data);

/* ---------------------------------------------------------------------------------------
 * SIP registration: one record per address of record holding its contacts.
 * Key layout: aor NUL. An expiry index (earliest expiry of each record) lets sweeps find
 * expired contacts without a scan.
 *
 * Expiry: reads take the current time and never return a contact with expires_ms <= now
 * (a record whose contacts all expired reads as -ENOENT). srm_ds_sip_put drops expired
 * contacts before storing and then sweeps up to 8 other expired records of the partition;
 * srm_ds_sip_sweep removes them in bulk. Sweeps are writes of the owner (logged and
 * replicated); a non-owner only filters on read.
 * ------------------------------------------------------------------------------------- */

struct srm_ds_sip_contact {
    const char *uri;      /* 1..SRM_DS_CONTACT_URI_MAX */
    uint64_t expires_ms;  /* absolute expiry, ms since the Unix epoch */
    const char *call_id;  /* 1..SRM_DS_CALL_ID_MAX */
    uint32_t cseq;        /* CSeq number of the REGISTER */
    uint16_t q;           /* 0..SRM_DS_SIP_Q_MAX (thousandths) */
    const char *path;     /* 0..SRM_DS_PATH_MAX; NULL is "" */
    const char *received; /* 0..SRM_DS_RECEIVED_MAX; NULL is "" */
};

struct srm_ds_sip_reg {
    const char *aor; /* 1..SRM_DS_AOR_MAX */
    unsigned n_contacts;
    struct srm_ds_sip_contact contacts[SRM_DS_SIP_CONTACTS_MAX];
};

/*
 * Replaces the contact set of reg->aor (the caller merges a REGISTER into the set it read
 * in the same transaction). Contacts with expires_ms <= now_ms are dropped; if none is
 * left the record is deleted. Errors as srm_ds_presence_put; n_contacts 0 or above the
 * maximum is -EINVAL / SRM_ETOOBIG.
 */
int srm_ds_sip_put(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch,
                   const struct srm_ds_sip_reg *reg, uint64_t now_ms);
/* The live contacts at now_ms (borrowed). 0, -ENOENT. */
int srm_ds_sip_get(struct srm_ds_txn *txn, uint32_t part, const char *aor, uint64_t now_ms,
                   struct srm_ds_sip_reg *ret);
int srm_ds_sip_del(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, const char *aor);
typedef int srm_ds_sip_cb(const struct srm_ds_sip_reg *reg, void *data);
/* Every record with at least one live contact at now_ms, live contacts only. */
int srm_ds_sip_list(struct srm_ds_txn *txn, uint32_t part, uint64_t now_ms, srm_ds_sip_cb *cb,
                    void *data);
/* Removes up to `max` expired records' expired contacts (0: no limit) as owner writes.
 * 0 and *ret_n (records changed, may be NULL); errors as put. */
int srm_ds_sip_sweep(struct srm_ds_txn *txn, uint32_t part, uint64_t epoch, uint64_t now_ms,
                     size_t max, size_t *ret_n);

/* ---------------------------------------------------------------------------------------
 * Record encodings (the values carried by the log, by apply and by snapshots). The first
 * byte is a format byte (1 for every datastore today); decoders refuse an unknown one with
 * SRM_EBADFORMAT, truncated or inconsistent input with SRM_ECORRUPT, an out-of-bound field
 * with SRM_ETOOBIG and bad text with SRM_EBADUTF8. Decoded records borrow from `val` and
 * `key`; text fields point into them and are NUL-terminated there.
 * ------------------------------------------------------------------------------------- */

#define SRM_DS_RECORD_FORMAT 1

/* Validates one (key, value) of datastore `kind` completely (structure, bounds, UTF-8). */
int srm_ds_record_check(enum srm_ds_kind kind, const void *key, size_t key_len, const void *val,
                        size_t val_len);
int srm_ds_presence_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                           struct srm_ds_presence *ret);
int srm_ds_login_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                        struct srm_ds_login *ret);
/* All contacts, expired or not. */
int srm_ds_sip_decode(const void *key, size_t key_len, const void *val, size_t val_len,
                      struct srm_ds_sip_reg *ret);

/* ---------------------------------------------------------------------------------------
 * Replication log
 *
 * Each partition's log has a generation (random, new when the partition is created or a
 * snapshot installed: positions of different generations are unrelated) and entries with
 * sequence numbers first_seq..last_seq (empty when first_seq == last_seq + 1). Sequence
 * numbers are local to one node's log; `seq` of an entry read from a peer is the peer's.
 * The log is bounded by log_max_bytes: a commit beyond it drops the oldest entries (a run
 * at a time, keeping the transaction's newest), and srm_ds_log_trim drops entries a peer
 * acknowledged. Entries appended by a write transaction are read back by that transaction
 * (srm_ds_log_read, srm_ds_log_info) like any others. A reader asking for a position before
 * first_seq, or beyond last_seq + 1 (a log that was reset), gets SRM_EHORIZON and must fall
 * back to a snapshot (replication) or re-read the partition (subscribers).
 * ------------------------------------------------------------------------------------- */

#define SRM_DS_ENTRY_TOMBSTONE 0x1u /* entry flag: the key was deleted */

/* One log entry. key/val are borrowed (from the store until the transaction ends, or from
 * the buffer given to srm_ds_entry_decode). val is NULL/0 for a tombstone. */
struct srm_ds_entry {
    uint64_t seq; /* position in the source's log of the partition */
    uint8_t kind; /* enum srm_ds_kind */
    uint8_t flags;
    struct srm_ds_stamp stamp;
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
};

struct srm_ds_log_info {
    uint64_t gen;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t bytes;     /* stored size of the entries */
    uint64_t max_bytes; /* bound */
};

/* 0 and *ret; SRM_ENOTFOUND. */
int srm_ds_log_info(struct srm_ds_txn *txn, uint32_t part, struct srm_ds_log_info *ret);

/* Sets the bound of a partition's log (write transaction), trimming now if needed.
 * 0, SRM_ENOTFOUND, -EINVAL (below 4096). */
int srm_ds_log_set_max(struct srm_ds_txn *txn, uint32_t part, uint64_t max_bytes);

typedef int srm_ds_entry_cb(const struct srm_ds_entry *e, void *data);

/*
 * Reads the log of `part` from `from_seq`, calling cb for each entry in order. Bounds:
 * max_count entries examined (0: no limit) and max_bytes of encoded size given
 * (srm_ds_entry_size; 0: no limit); at least one entry is always examined.
 * Skipped, but counted as examined and passed by *ret_next:
 *  - entries whose origin is `exclude_origin` (non-zero): pass the peer you are sending
 *    to, so that its own writes are not sent back;
 *  - superseded entries: the log stores each version once, in the record; an entry whose
 *    key was written again since is skipped, because the later entry of that key (always
 *    still in the log, being newer) carries the newer version or the delete. A reader thus
 *    sees, for each key, its current version, never an older one after a newer one.
 * e->val of a put entry is the record's value, borrowed until the transaction ends.
 * *ret_next (may be NULL) is the position to read from next time, *ret_gen (may be NULL)
 * the log's generation.
 * Returns 0 (or the callback's positive value), SRM_EHORIZON, SRM_ENOTFOUND, or an error.
 */
int srm_ds_log_read(struct srm_ds_txn *txn, uint32_t part, uint64_t from_seq,
                    uint32_t exclude_origin, size_t max_count, size_t max_bytes,
                    srm_ds_entry_cb *cb, void *data, uint64_t *ret_next, uint64_t *ret_gen);

/* Drops the entries up to and including upto_seq (acknowledged by the peer). Trimming
 * beyond last_seq stops at last_seq. Write transaction. 0, SRM_ENOTFOUND. */
int srm_ds_log_trim(struct srm_ds_txn *txn, uint32_t part, uint64_t upto_seq);

struct srm_ds_apply_result {
    size_t applied;    /* entries that changed the store */
    size_t superseded; /* entries that lost to the stored version (conflict rule) */
    size_t duplicate;  /* entries at or below the applied position, or already stored */
};

/*
 * Applies a batch of entries read from `source`'s log of `part` (generation `source_gen`),
 * in one write transaction (the caller's), idempotently: an entry at or below the applied
 * position of (part, source, gen) is skipped, and any other entry is applied only if its
 * stamp wins over the stored version of its key (srm_ds_stamp_cmp). Each applied entry is
 * appended to the local log with its original stamp (origin kept), and advances the local
 * hybrid clock. No ownership check: remote entries carry their own epoch. The applied
 * position becomes max(position, through_seq, last entry's seq), so that a batch whose
 * entries were all filtered out by the sender still advances it. The partition is created
 * (no owner) if missing. Every entry is validated before anything is changed.
 * Returns 0 and *ret (may be NULL), or -EINVAL / SRM_EBADFORMAT / SRM_ECORRUPT /
 * SRM_ETOOBIG / SRM_EBADUTF8 for a bad entry (nothing applied), or the transaction codes.
 */
int srm_ds_log_apply(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t source_gen,
                     const struct srm_ds_entry *entries, size_t n, uint64_t through_seq,
                     struct srm_ds_apply_result *ret);

/* The applied position of (part, source): *ret_gen and *ret_seq (0 and 0 if nothing was
 * applied yet). Either pointer may be NULL. 0 or an error. */
int srm_ds_log_pos(struct srm_ds_txn *txn, uint32_t part, uint32_t source, uint64_t *ret_gen,
                   uint64_t *ret_seq);

/*
 * Wire encoding of one entry (what replication sends and snapshot chunks hold):
 *   u8 format (1) | u8 kind | u8 flags | u64 seq | u64 epoch | u64 hlc | u32 origin |
 *   u16 key_len | u32 val_len | key | val            (integers little-endian)
 * encode: writes into buf (cap bytes); 0 and *ret_len, -ENOBUFS if it does not fit,
 * -EINVAL for an entry out of bounds. srm_ds_entry_size gives the encoded size.
 * decode: 0, *ret (borrowing from buf) and *ret_used; SRM_EBADFORMAT, SRM_ECORRUPT,
 * SRM_ETOOBIG. The record value itself is checked by srm_ds_record_check (apply does it).
 */
size_t srm_ds_entry_size(const struct srm_ds_entry *e);
int srm_ds_entry_encode(const struct srm_ds_entry *e, void *buf, size_t cap, size_t *ret_len);
int srm_ds_entry_decode(const void *buf, size_t len, struct srm_ds_entry *ret, size_t *ret_used);

/* ---------------------------------------------------------------------------------------
 * Snapshots: one partition as a point-in-time image, streamed in bounded chunks.
 * ------------------------------------------------------------------------------------- */

/* Digest of a set of records: the sum modulo 2^128 of a keyed 128-bit hash (a multiply-fold
 * hash, datastore/README.md) of (kind, key, value) of each live record, and their count.
 * Order-independent. */
struct srm_ds_digest {
    uint64_t lo, hi;
    uint64_t count;
};

struct srm_ds_snap_info {
    uint32_t part;
    uint32_t source; /* node that made the snapshot */
    uint64_t gen;    /* the source's log generation ... */
    uint64_t seq;    /* ... and last_seq at the snapshot point */
    uint64_t hlc;    /* partition clock */
    struct srm_ds_owner owner;
    struct srm_ds_digest digest[SRM_DS_KIND_MAX];
    uint64_t entries; /* records in the image, tombstones included */
};

struct srm_ds_snap;

/*
 * Opens a snapshot of `part`: a read transaction of its own (a point in time; writers go
 * on, only pages are kept from reuse until the snapshot is closed). The handle may be
 * iterated from another thread (one at a time).
 * Returns 0 and *ret_snap, SRM_ENOTFOUND, or an error.
 */
int srm_ds_snap_open(struct srm_ds_env *env, uint32_t part, struct srm_ds_snap **ret_snap);
/* 0 and *ret_info. */
int srm_ds_snap_info(struct srm_ds_snap *snap, struct srm_ds_snap_info *ret_info);
/*
 * Fills buf with the next chunk: whole encoded entries (srm_ds_entry_encode, seq 0, every
 * stored record of the partition in key order, tombstones included), at least one if any
 * is left. Returns 1 and *ret_len for a chunk, 0 at the end, -ENOBUFS if cap cannot hold
 * the next entry (SRM_DS_SNAP_CHUNK_MIN always can).
 */
#define SRM_DS_SNAP_CHUNK_MIN (48 + SRM_DS_KEY_MAX + SRM_DS_VALUE_MAX)
int srm_ds_snap_next(struct srm_ds_snap *snap, void *buf, size_t cap, size_t *ret_len);
/* Ends the read transaction and frees. Accepts NULL. */
void srm_ds_snap_close(struct srm_ds_snap *snap);

struct srm_ds_snap_install;

/*
 * Receiving side. begin: clears the staging area of info->part (one short transaction).
 * chunk: validates and stages a chunk (one short transaction each; nothing visible yet).
 * commit: in ONE transaction, replaces the partition's contents with the staged image,
 * rebuilds its digests, counters and expiry index, checks the digests against info
 * (SRM_ECORRUPT and nothing changed if they differ), sets the applied position of
 * (part, info->source) to (info->gen, info->seq), and resets the local log (new
 * generation; local readers get SRM_EHORIZON and re-read). Ownership is not changed.
 * abort: drops the staging and frees (accepts NULL); commit frees in every case.
 * Only one install per partition at a time (srmd's job).
 */
int srm_ds_snap_install_begin(struct srm_ds_env *env, const struct srm_ds_snap_info *info,
                              struct srm_ds_snap_install **ret_inst);
int srm_ds_snap_install_chunk(struct srm_ds_snap_install *inst, const void *buf, size_t len);
int srm_ds_snap_install_commit(struct srm_ds_snap_install *inst);
void srm_ds_snap_install_abort(struct srm_ds_snap_install *inst);

/* ---------------------------------------------------------------------------------------
 * Digests and verification
 * ------------------------------------------------------------------------------------- */

/* The digest of one datastore of a partition, kept incrementally: O(1). 0, SRM_ENOTFOUND. */
int srm_ds_digest_get(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                      struct srm_ds_digest *ret);
/* The SRM_DS_DIGEST_BUCKETS bucket digests (records by keyed hash of the key), to narrow a
 * difference down: compare buckets, then list the keys of the differing ones. */
int srm_ds_digest_buckets(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                          struct srm_ds_digest ret[SRM_DS_DIGEST_BUCKETS]);
/* Bucket of a key (0..SRM_DS_DIGEST_BUCKETS-1). */
unsigned srm_ds_digest_bucket_of(enum srm_ds_kind kind, const void *key, size_t key_len);
/* Calls cb for every stored entry (tombstones included, seq 0) of one bucket: O(records
 * of the datastore). */
int srm_ds_digest_bucket_list(struct srm_ds_txn *txn, uint32_t part, enum srm_ds_kind kind,
                              unsigned bucket, srm_ds_entry_cb *cb, void *data);

/*
 * Recomputes every digest, bucket, counter and the expiry index of `part` from the records
 * and compares with the stored ones (startup check, tests). Also decodes every record.
 * Returns 0 if all agree, SRM_ECORRUPT otherwise, SRM_ENOTFOUND.
 */
int srm_ds_verify(struct srm_ds_txn *txn, uint32_t part);

/* Deletes tombstones of `part` with hlc older than before_hlc (local housekeeping, not
 * logged; keep tombstones longer than any reconciliation window). *ret_n may be NULL. */
int srm_ds_tombstone_purge(struct srm_ds_txn *txn, uint32_t part, uint64_t before_hlc,
                           size_t *ret_n);

/* ---------------------------------------------------------------------------------------
 * Change notifications
 *
 * A subscriber owns a non-blocking unix datagram socket (abstract address derived from the
 * environment's file identity) registered in srm-ds.shm. After every commit that advanced
 * partition P's log, the committing process sends each subscriber a 16-byte datagram
 * "P advanced to seq N" without blocking; srm_ds_sync_ack and srm_ds_sync_set_degraded
 * send "P replicated up to N" / "P degraded". A full socket buffer drops the datagram and
 * marks the subscriber overflowed: its next read returns SRM_DS_EV_OVERFLOW and it must
 * check every partition. A subscriber keeps its own position per partition and reads the
 * log from there (srm_ds_log_read) whenever it is told of a higher seq, so a lost datagram
 * loses nothing: the log holds what changed. Events are hints, never data. Datagrams of
 * dead subscribers are detected (ECONNREFUSED) and their slot is freed.
 * ------------------------------------------------------------------------------------- */

#define SRM_DS_SUBSCRIBERS_MAX 64

enum srm_ds_event_kind {
    SRM_DS_EV_COMMIT = 1,   /* part's log advanced to seq */
    SRM_DS_EV_ACK = 2,      /* part replicated up to seq */
    SRM_DS_EV_DEGRADED = 3, /* part's sync replication degraded flag changed (seq: 0/1) */
    SRM_DS_EV_OVERFLOW = 4, /* events were dropped: check every partition (part 0) */
};

struct srm_ds_event {
    enum srm_ds_event_kind kind;
    uint32_t part;
    uint64_t seq;
};

struct srm_ds_sub;

/* Registers a subscriber (slots of dead processes are reused). 0 and *ret_sub; -ENOSPC
 * (SRM_DS_SUBSCRIBERS_MAX live subscribers), -errno of socket() or bind(). */
int srm_ds_sub_open(struct srm_ds_env *env, struct srm_ds_sub **ret_sub);
/* The pollable fd (readable when events wait). Owned by the subscriber. */
int srm_ds_sub_fd(struct srm_ds_sub *sub);
/* Drains up to `cap` events without blocking; SRM_DS_EV_OVERFLOW comes once the queue is
 * empty if anything was dropped since the last read. 0 and *ret_n (0 when none), or
 * -errno. One thread at a time. */
int srm_ds_sub_read(struct srm_ds_sub *sub, struct srm_ds_event *evs, size_t cap, size_t *ret_n);
/* Unregisters and closes. Accepts NULL. */
void srm_ds_sub_close(struct srm_ds_sub *sub);

/* ---------------------------------------------------------------------------------------
 * Sync replication support (group commit)
 *
 * In sync mode a write returns to its client only after the peer applied it. The writer
 * commits, takes its commit position (srm_ds_txn_seq before commit) and calls
 * srm_ds_sync_wait. srmd's replication, when the peer acknowledges position N of
 * partition P, calls srm_ds_sync_ack(P, N): every waiter at or below N, in any process,
 * wakes at once, so concurrent writers share one round trip. If replication cannot keep
 * up or the peer is gone, srmd sets the degraded flag and waiters return
 * SRM_ESYNC_DEGRADED at once (the write is committed locally; the caller decides).
 * These positions live in srm-ds.shm (shared memory, not persistent): they start at 0 and
 * not degraded when the node boots. Blocking waiters sleep on a futex in srm-ds.shm;
 * event-loop users watch SRM_DS_EV_ACK on their subscriber fd and call srm_ds_sync_get.
 * At most SRM_DS_SYNC_PARTS_MAX partitions have a sync position (-ENOSPC beyond).
 * ------------------------------------------------------------------------------------- */

#define SRM_DS_SYNC_PARTS_MAX 256

/* Raises P's replicated position to seq (never lowers it) and wakes waiters. 0, -ENOSPC. */
int srm_ds_sync_ack(struct srm_ds_env *env, uint32_t part, uint64_t seq);
/* Sets or clears P's degraded flag and wakes waiters. */
int srm_ds_sync_set_degraded(struct srm_ds_env *env, uint32_t part, bool degraded);
/* Sets P's replicated position to seq even if lower (after a snapshot install or a new log
 * generation). */
int srm_ds_sync_reset(struct srm_ds_env *env, uint32_t part, uint64_t seq);
/* 0, *ret_seq and *ret_degraded (either may be NULL). A partition never acked: 0, false. */
int srm_ds_sync_get(struct srm_ds_env *env, uint32_t part, uint64_t *ret_seq, bool *ret_degraded);
/*
 * Blocks until P's replicated position >= seq (returns 0), the degraded flag is set
 * (SRM_ESYNC_DEGRADED), or timeout_ms passed (-ETIMEDOUT; < 0 waits forever).
 */
int srm_ds_sync_wait(struct srm_ds_env *env, uint32_t part, uint64_t seq, int timeout_ms);

#endif
