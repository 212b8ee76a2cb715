/*
 * Error codes of the server recovery manager.
 *
 * Every function of the project returns an int: >= 0 on success, a negative errno
 * (-EINVAL, -ENOMEM, ...) or a negative project code from the table below on failure.
 * Codes of LMDB, OpenSSL, Corosync and libpq are converted at the module boundary and
 * never escape it.
 */
#ifndef SRM_ERROR_H
#define SRM_ERROR_H

/*
 * X(NAME, message): project-specific failures. Values start at SRM_E_BASE so that they
 * never collide with errno values. Keep the sections: one per module.
 */
#define SRM_ERROR_MAP(X)                                                                           \
    /* fsm */                                                                                      \
    X(REFUSED, "operation refused in the current state")                                           \
    X(BADSTATE, "unknown state or reason value")                                                   \
    /* datastore */                                                                                \
    X(NOTOWNER, "partition is not owned by this node")                                             \
    X(STALE_EPOCH, "write carries a stale ownership epoch")                                        \
    X(HORIZON, "log position is behind the trimmed horizon; a snapshot is needed")                 \
    X(CORRUPT, "stored data is corrupt or of a foreign format")                                    \
    X(BADFORMAT, "record has an unknown format byte")                                              \
    X(TOOBIG, "field exceeds its documented bound")                                                \
    X(BADUTF8, "text field is not valid UTF-8")                                                    \
    X(MAPFULL, "datastore map is full and cannot grow")                                            \
    X(TXN_FAILED, "transaction failed earlier and refuses further operations")                     \
    X(SYNC_DEGRADED, "sync replication is degraded; the write is committed locally only")          \
    /* replication */                                                                              \
    X(BADFRAME, "malformed frame")                                                                 \
    X(BADCHECKSUM, "frame checksum mismatch")                                                      \
    X(HANDSHAKE, "replication handshake failed")                                                   \
    X(TLS, "TLS failure")                                                                          \
    X(PEER_CERT, "peer certificate rejected")                                                      \
    X(PEER_GONE, "peer is not connected")                                                          \
    X(BACKPRESSURE, "send queue is full")                                                          \
    /* heartbeat */                                                                                \
    X(COROSYNC, "Corosync call failed")                                                            \
    X(NO_QUORUM, "this node has no quorum")                                                        \
    X(DISCONNECTED, "not connected to the local Corosync; is corosync running?")                   \
    X(BADENVELOPE, "malformed heartbeat envelope")                                                 \
    X(BADVERSION, "heartbeat envelope of an unsupported protocol version")                         \
    X(FOREIGN, "heartbeat envelope of another redundancy group")                                   \
    /* ha */                                                                                       \
    X(DB, "configuration database failure")                                                        \
    X(CONFIG, "invalid configuration")                                                             \
    X(IPC, "local IPC failure")                                                                    \
    X(NOTFOUND, "no such object")                                                                  \
    X(EXISTS, "object already exists")                                                             \
    X(UNREACHABLE, "node is not reachable")                                                        \
    X(DB_DOWN, "configuration database is unreachable")                                            \
    X(DB_SCHEMA, "configuration database schema is newer than this program")                       \
    X(FAILED_OVER, "refused while a node is failed over")                                          \
    X(BADMSG, "malformed local IPC message")                                                       \
    X(IPC_VERSION, "local IPC message of an unsupported protocol version")                         \
    X(LEASE, "serving lease expired: srmd did not renew it in time")                               \
    X(NOT_GRANTED, "partition is not granted to this process")

#define SRM_E_BASE 10000

enum {
    SRM__E_FIRST = SRM_E_BASE - 1,
#define SRM__E_ENUM(name, msg) SRM__E_##name,
    SRM_ERROR_MAP(SRM__E_ENUM)
#undef SRM__E_ENUM
        SRM__E_LAST
};

/* Negative values, as returned by functions. */
#define SRM_E(name)        (-SRM__E_##name)
#define SRM_EREFUSED       SRM_E(REFUSED)
#define SRM_EBADSTATE      SRM_E(BADSTATE)
#define SRM_ENOTOWNER      SRM_E(NOTOWNER)
#define SRM_ESTALE_EPOCH   SRM_E(STALE_EPOCH)
#define SRM_EHORIZON       SRM_E(HORIZON)
#define SRM_ECORRUPT       SRM_E(CORRUPT)
#define SRM_EBADFORMAT     SRM_E(BADFORMAT)
#define SRM_ETOOBIG        SRM_E(TOOBIG)
#define SRM_EBADUTF8       SRM_E(BADUTF8)
#define SRM_EMAPFULL       SRM_E(MAPFULL)
#define SRM_ETXN_FAILED    SRM_E(TXN_FAILED)
#define SRM_ESYNC_DEGRADED SRM_E(SYNC_DEGRADED)
#define SRM_EBADFRAME      SRM_E(BADFRAME)
#define SRM_EBADCHECKSUM   SRM_E(BADCHECKSUM)
#define SRM_EHANDSHAKE     SRM_E(HANDSHAKE)
#define SRM_ETLS           SRM_E(TLS)
#define SRM_EPEER_CERT     SRM_E(PEER_CERT)
#define SRM_EPEER_GONE     SRM_E(PEER_GONE)
#define SRM_EBACKPRESSURE  SRM_E(BACKPRESSURE)
#define SRM_ECOROSYNC      SRM_E(COROSYNC)
#define SRM_ENO_QUORUM     SRM_E(NO_QUORUM)
#define SRM_EDISCONNECTED  SRM_E(DISCONNECTED)
#define SRM_EBADENVELOPE   SRM_E(BADENVELOPE)
#define SRM_EBADVERSION    SRM_E(BADVERSION)
#define SRM_EFOREIGN       SRM_E(FOREIGN)
#define SRM_EDB            SRM_E(DB)
#define SRM_ECONFIG        SRM_E(CONFIG)
#define SRM_EIPC           SRM_E(IPC)
#define SRM_ENOTFOUND      SRM_E(NOTFOUND)
#define SRM_EEXISTS        SRM_E(EXISTS)
#define SRM_EUNREACHABLE   SRM_E(UNREACHABLE)
#define SRM_EDB_DOWN       SRM_E(DB_DOWN)
#define SRM_EDB_SCHEMA     SRM_E(DB_SCHEMA)
#define SRM_EFAILED_OVER   SRM_E(FAILED_OVER)
#define SRM_EBADMSG        SRM_E(BADMSG)
#define SRM_EIPC_VERSION   SRM_E(IPC_VERSION)
#define SRM_ELEASE         SRM_E(LEASE)
#define SRM_ENOT_GRANTED   SRM_E(NOT_GRANTED)

/*
 * Message for a return value: a project code, a negative errno, or a positive errno.
 * Never NULL; the string is static and must not be freed.
 */
const char *srm_strerror(int err);

/* Symbolic name of a project code ("SRM_ENOTOWNER", "EINVAL", ...), for logs and JSON. */
const char *srm_errname(int err);

#endif
