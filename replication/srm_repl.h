/*
 * srm_repl — replication of the datastores between the two nodes of a redundancy group.
 *
 * One endpoint (struct srm_repl) per group peer. It keeps one mutual-TLS 1.3 connection to
 * the peer (redialled after every loss), and over it, per partition:
 *   - a partition this node OWNS (role SOURCE) is streamed from its datastore log to the
 *     peer, which applies each batch in one LMDB transaction and acknowledges it; the
 *     acknowledged position is written to the datastore (what sync writers wait for) and
 *     the log is trimmed behind it;
 *   - a partition this node RECEIVES (role SINK) is applied as it arrives.
 * A reconnect resumes from the receiver's last applied sequence; a receiver behind the
 * sender's log horizon is sent a snapshot first. Both directions share one connection, so
 * a backup owning the failed node's partition streams it back once the node returns; the
 * daemon asks srm_repl_partition_caught_up() (or waits for SRM_REPL_EV_CAUGHT_UP) before a
 * takeback. The protocol is documented in replication/README.md.
 *
 * Threading: an endpoint lives on one libuv loop (the daemon's) and every function must be
 * called from that loop's thread. Callbacks run on that loop. The endpoint applies received
 * entries in write transactions on that thread and trims its logs in a thread of its own,
 * so the loop thread must not hold a write transaction of the datastore when it calls the
 * endpoint or returns to the loop (LMDB allows one writer at a time). Functions return >= 0 on
 * success, a negative errno or a negative SRM_E... code (common/srm_error.h) on failure;
 * output parameters (ret_*) are untouched on failure.
 *
 * Durability (per datastore; the writer decides whether to wait): a writer of a sync
 * datastore waits, after its commit, until the datastore's "replicated up to" position of
 * the partition reaches its write, or until the partition is flagged "sync degraded". This
 * endpoint maintains both: it sets the position from the peer's acknowledgements (one
 * acknowledgement releases every writer whose entries it covers: group commit), flags the
 * partition degraded when the peer has been absent (or silent with entries outstanding) for
 * longer than degrade_ms, raising SRM_REPL_EV_DEGRADED and counting it, and clears the flag,
 * raising SRM_REPL_EV_SYNC_RESTORED, once the peer has caught up again.
 */
#ifndef SRM_REPL_H
#define SRM_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct srm_ds_env; /* datastore/srm_ds.h */
struct srm_repl;

/* Protocol version spoken by this library (the handshake negotiates it). */
#define SRM_REPL_VERSION 1
/* Longest cluster or node name, in bytes ([A-Za-z0-9_.-]). */
#define SRM_REPL_NAME_MAX 128
/* Most partitions one endpoint replicates (either direction). */
#define SRM_REPL_PARTS_MAX 256

enum srm_repl_role {
    SRM_REPL_ROLE_NONE = 0,   /* neither sends nor receives this partition */
    SRM_REPL_ROLE_SOURCE = 1, /* this node owns it: stream its log to the peer */
    SRM_REPL_ROLE_SINK = 2,   /* the peer owns it: apply what the peer streams */
    SRM_REPL_ROLE_MAX
};

/*
 * Named events, as (NAME, "name"): the name is what the daemon logs ("+caught-up"). Every
 * event carries the partition it concerns (0 when it concerns the link) and, for failures,
 * an error code and a human-readable detail.
 */
#define SRM_REPL_EVENT_MAP(X)                                                                      \
    /* the TLS handshake completed and the peer's certificate was verified */                      \
    X(CONNECTED, "+link-up")                                                                       \
    /* the replication handshake completed: streams are (re)starting */                            \
    X(READY, "+handshake")                                                                         \
    /* the link was lost or closed (err says why) */                                               \
    X(DISCONNECTED, "-link-down")                                                                  \
    /* a connection attempt or a peer was refused: TLS, certificate or handshake (err, detail) */  \
    X(REFUSED, "-peer-refused")                                                                    \
    /* partition caught up: source: the peer acknowledged the local head; sink: the local */       \
    /* store applied the peer's head. Raised once per link and partition role. */                  \
    X(CAUGHT_UP, "+caught-up")                                                                     \
    /* sync writers of the partition no longer wait for the peer (peer absent too long) */         \
    X(DEGRADED, "-sync-degraded")                                                                  \
    /* the peer caught up again: sync writers wait for it again */                                 \
    X(SYNC_RESTORED, "+sync-restored")                                                             \
    /* a snapshot of the partition was sent and installed by the peer */                           \
    X(SNAPSHOT_SENT, "+snapshot-sent")                                                             \
    /* a snapshot from the peer was installed locally */                                           \
    X(SNAPSHOT_INSTALLED, "+snapshot-installed")                                                   \
    /* both nodes claim to own the partition, or the peer's epoch is newer than ours, or the */    \
    /* peer applied entries this node does not have: nothing is streamed for it until the */       \
    /* daemon resolves it with srm_repl_partition_set() */                                         \
    X(CONFLICT, "-partition-conflict")                                                             \
    /* any other failure (protocol error from the peer, datastore error) */                        \
    X(ERROR, "-error")

enum srm_repl_event_type {
#define SRM__REPL_EV_ENUM(name, str) SRM_REPL_EV_##name,
    SRM_REPL_EVENT_MAP(SRM__REPL_EV_ENUM)
#undef SRM__REPL_EV_ENUM
        SRM_REPL_EV_MAX
};

struct srm_repl_event {
    enum srm_repl_event_type type;
    uint32_t part;      /* partition concerned, 0 for link events */
    int err;            /* 0, or why (negative errno / SRM_E...) */
    const char *detail; /* NUL-terminated text, or NULL; valid only during the callback */
};

/*
 * Called on the loop for every event. The endpoint may be used from inside the callback,
 * except srm_repl_free... there is no such call: srm_repl_close() may be called from it.
 */
typedef void srm_repl_event_cb(struct srm_repl *r, const struct srm_repl_event *ev, void *data);
/* Called once the endpoint and every handle it owns are closed and freed. */
typedef void srm_repl_close_cb(void *data);

struct srm_repl_config {
    /* Identity. cluster: the cluster name both sides must agree on. node_id / peer_id: the
     * node ids of this node and of the peer (nonzero, different). peer_name: the name the
     * peer's certificate must carry (subjectAltName DNS or, without SAN, CN). */
    const char *cluster;
    uint32_t node_id;
    uint32_t peer_id;
    const char *peer_name;

    /* PEM files: the cluster CA, this node's certificate (chain) and private key. */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;

    /* Where this endpoint accepts the peer (listen_host NULL: it does not listen) and where it
     * dials it (peer_host NULL: it does not dial). The node with the lower id dials: an
     * endpoint with node_id > peer_id ignores peer_host, one with node_id < peer_id still
     * accepts (a peer may dial either way after a role mix-up); a second, newer verified
     * connection replaces the older one. IPv4 or IPv6 literal addresses. */
    const char *listen_host;
    uint16_t listen_port;
    const char *peer_host;
    uint16_t peer_port;

    /* The datastore whose partitions are replicated (borrowed; must outlive the endpoint). */
    struct srm_ds_env *ds;

    /* Tuning; 0 selects the default in brackets. */
    uint32_t reconnect_min_ms; /* first redial delay [100]; doubles up to reconnect_max_ms */
    uint32_t reconnect_max_ms; /* [2000] */
    uint32_t keepalive_ms;     /* ping interval when idle [1000]; the link is dropped after */
                               /* 5 intervals without a frame from the peer */
    uint32_t degrade_ms;       /* peer absence before sync degrades to async [5000] */
    uint32_t window_bytes;     /* most bytes sent but not acknowledged, per partition [8 MiB] */
    uint32_t batch_bytes;      /* largest log batch or snapshot chunk per frame [256 KiB] */

    srm_repl_event_cb *event_cb; /* may be NULL */
    void *event_data;
};

/* Per-partition figures (see srm_repl_partition_stats). Sequences are log sequences. */
struct srm_repl_part_stats {
    uint32_t part;
    enum srm_repl_role role;
    uint64_t epoch;
    uint64_t head_seq;    /* source: last local log sequence; sink: peer's head as last told */
    uint64_t sent_seq;    /* source: highest sequence sent on the current link */
    uint64_t applied_seq; /* source: highest sequence the peer acknowledged; sink: applied */
    uint64_t lag_entries; /* head_seq - applied_seq */
    uint64_t lag_bytes;   /* source: bytes sent and not yet acknowledged */
    uint64_t lag_ms;      /* source: age of the oldest unacknowledged local write, 0 if none */
    uint64_t entries_sent, bytes_sent;       /* source, since the endpoint started */
    uint64_t entries_applied, bytes_applied; /* sink, since the endpoint started */
    uint64_t snapshots_sent, snapshots_installed;
    uint64_t sync_degradations; /* times the partition degraded to async */
    bool streaming;             /* source: the peer is receiving it on the current link */
    bool caught_up;             /* see srm_repl_partition_caught_up() */
    bool degraded;              /* sync is degraded to async */
};

/* Endpoint figures, since srm_repl_new(). */
struct srm_repl_stats {
    bool connected;      /* a verified link is up */
    bool ready;          /* ... and the handshake completed */
    uint64_t links_up;   /* verified links established */
    uint64_t reconnects; /* links established after the first */
    uint64_t links_down; /* links lost */
    uint64_t refused;    /* connections refused (TLS, certificate, handshake) */
    uint64_t frames_sent, frames_received;
    uint64_t bytes_sent, bytes_received; /* plaintext frame bytes */
    uint64_t snapshots_sent, snapshots_installed;
    uint64_t sync_degradations;
    uint64_t protocol_errors; /* malformed frames, checksum errors, sequence gaps */
    unsigned nparts;          /* partitions declared with srm_repl_partition_set() */
};

/*
 * Creates an endpoint on loop. cfg and every string it points to are copied. Loads and
 * checks the CA, certificate and key (SRM_ETLS with the OpenSSL reason in the detail of
 * an SRM_REPL_EV_ERROR is not possible before creation, so a bad file gives SRM_ETLS and a
 * debug log line). Nothing is bound or dialled until srm_repl_start().
 * Errors: -EINVAL (missing or invalid field: names, ids, ports, ds NULL), -ENOMEM,
 * SRM_ETLS (files unreadable, key does not match certificate).
 */
int srm_repl_new(uv_loop_t *loop, const struct srm_repl_config *cfg, struct srm_repl **ret_repl);

/*
 * Binds the listener (if any), starts dialling (if this node dials), watches the datastore's
 * change notifications and starts the timers. Errors: negative errno from libuv converted
 * (e.g. -EADDRINUSE), -EALREADY if started, SRM_E... from the datastore.
 */
int srm_repl_start(struct srm_repl *r);

/*
 * Closes the link and every handle, aborts a snapshot in progress, and frees the endpoint
 * once libuv has closed its handles; then calls close_cb(data) (may be NULL). Accepts NULL
 * r (close_cb is then not called). No event is raised after this call.
 */
void srm_repl_close(struct srm_repl *r, srm_repl_close_cb *close_cb, void *data);

/*
 * Declares partition part (its home node id, nonzero) with this node's role and the
 * ownership epoch the daemon knows for it. For a source, epoch is this node's ownership
 * epoch; for a sink, the owner's (entries of a lower epoch are refused). Setting the same
 * values again is a no-op; changing them tells the peer at once, stops the partition's
 * stream in progress and restarts it under the new roles. ROLE_NONE forgets the partition.
 * Errors: -EINVAL (part 0, bad role), -ENOSPC (SRM_REPL_PARTS_MAX reached), SRM_E... from
 * the datastore (reading the partition's positions).
 */
int srm_repl_partition_set(struct srm_repl *r, uint32_t part, enum srm_repl_role role,
                           uint64_t epoch);

/*
 * Whether part is caught up on the current link: for a source, the peer has acknowledged
 * every entry of the local log; for a sink, this node has applied everything up to the
 * head the peer last announced. Returns 1 (caught up), 0 (not, or no ready link),
 * -ENOENT (partition not declared).
 */
int srm_repl_partition_caught_up(struct srm_repl *r, uint32_t part);

/* Fills *ret_stats for part. Errors: -ENOENT (not declared). */
int srm_repl_partition_stats(struct srm_repl *r, uint32_t part,
                             struct srm_repl_part_stats *ret_stats);

/* Fills *ret_stats with the endpoint's figures. */
void srm_repl_stats(struct srm_repl *r, struct srm_repl_stats *ret_stats);

/*
 * Tells the endpoint that the local log may have grown (a write by this process). Writes by
 * other processes are seen through the datastore's change notifications, so this call is
 * only a shortcut. Returns 0.
 */
int srm_repl_notify(struct srm_repl *r);

/* "+caught-up" etc.; "?" for an unknown type. Static string. */
const char *srm_repl_event_name(enum srm_repl_event_type type);
/* "none", "source", "sink"; "?" for an unknown role. Static string. */
const char *srm_repl_role_name(enum srm_repl_role role);

#endif
