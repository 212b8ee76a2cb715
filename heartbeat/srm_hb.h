/*
 * Heartbeats between the two nodes of a redundancy group, over Corosync.
 *
 * One `struct srm_hb` is one membership of a redundancy group: it joins a Corosync CPG group
 * (conventionally "srm.<group>"), multicasts a keepalive every keepalive interval and at once
 * whenever the caller has news (srm_hb_send), and watches the group peer. It reports:
 *
 *   - every keepalive of the peer (keepalive_cb), with the peer's opaque payload;
 *   - the peer coming into view: first time since our start, back after a loss, or with a new
 *     incarnation because its process restarted (peer_back_cb);
 *   - the peer lost (peer_lost_cb), with how it was lost:
 *       SRM_HB_LOSS_NODE     its node left the Corosync membership (power loss, crash, reboot,
 *                            corosync killed, network cut): CPG reason NODEDOWN;
 *       SRM_HB_LOSS_PROCESS  its process left the CPG group without announcing a restart
 *                            (kill -9, crash, stopped): CPG reason PROCDOWN or LEAVE;
 *       SRM_HB_LOSS_TIMEOUT  no keepalive for the keepalive timeout while the peer was known
 *                            (process stopped or hung, or it announced a restart and did not
 *                            come back in time), or for the initialization timeout when the
 *                            peer was never heard since our start (SPEC.md §6);
 *   - this node's quorum (quorum_cb), followed through Corosync's quorum service;
 *   - the connection to the local corosync lost (error_cb) and the pollable descriptors
 *     changing (fds_cb); the handle reconnects by itself from srm_hb_tick().
 *
 * The payload is opaque and bounded (SRM_HB_PAYLOAD_MAX bytes): the daemon encodes its state,
 * reason, ownership epochs, replication positions and critical-service summary into it. Each
 * message is a snapshot, not a stream entry: a keepalive always carries the latest payload,
 * and when Corosync's flow control holds a message back, only the latest payload is sent
 * once it clears.
 *
 * Event-loop friendly: no threads, no timers, no clock reads. The caller polls the
 * descriptors srm_hb_fds() gives (readable), calls srm_hb_dispatch() when one is readable and
 * srm_hb_tick() when the deadline the previous tick returned has come, and passes its
 * monotonic clock in milliseconds to every call (`now_ms`; any origin, never decreasing).
 *
 * Ordering guarantees:
 *   - Quorum before loss: right before peer_lost_cb, the quorum is queried synchronously; if
 *     it changed, quorum_cb runs first. A node cut off from the cluster therefore learns that
 *     it lost quorum no later than it learns that its peer is gone. (Its peer learns of the
 *     loss at about the same time, not provably later: see heartbeat/README.md on the
 *     margin a takeover needs.)
 *   - Announced restart: srm_hb_announce_restart() returns 0 only once its keepalive, flagged
 *     "restarting", came back through the group's total order; every member delivers it
 *     before it sees the process leave, so the peer reports no PROCESS loss, only a TIMEOUT
 *     if no new incarnation is heard within the keepalive timeout (SPEC.md §4 rows 5-9).
 *
 * Callbacks run from srm_hb_start(), srm_hb_dispatch() and srm_hb_tick() (never from
 * srm_hb_send() or after srm_hb_announce_restart()). A callback may call srm_hb_send() and
 * every getter; it must not call srm_hb_free(), srm_hb_dispatch(), srm_hb_tick() or
 * srm_hb_announce_restart().
 * A handle is not thread-safe: use it from one thread.
 */
#ifndef SRM_HB_H
#define SRM_HB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload a keepalive carries, in bytes. */
#define SRM_HB_PAYLOAD_MAX 4096
/* Longest CPG group name, in bytes (printable ASCII without space). */
#define SRM_HB_GROUP_MAX 127
/* Most descriptors srm_hb_fds() returns (CPG and quorum). */
#define SRM_HB_FDS_MAX 2
/* Version of the envelope the heartbeat messages travel in (heartbeat/README.md). */
#define SRM_HB_PROTOCOL_VERSION 1

/* SPEC.md §6 defaults, used when an option is 0. */
#define SRM_HB_DEFAULT_INTERVAL_MS     15000
#define SRM_HB_DEFAULT_TIMEOUT_MS      60000
#define SRM_HB_DEFAULT_INIT_TIMEOUT_MS 120000
#define SRM_HB_DEFAULT_RECONNECT_MS    1000

struct srm_hb;

/* How the peer was lost. */
#define SRM_HB_LOSS_MAP(X)                                                                         \
    X(NODE, "node")                                                                                \
    X(PROCESS, "process")                                                                          \
    X(TIMEOUT, "timeout")

enum srm_hb_loss {
#define SRM__HB_LOSS_ENUM(name, str) SRM_HB_LOSS_##name,
    SRM_HB_LOSS_MAP(SRM__HB_LOSS_ENUM)
#undef SRM__HB_LOSS_ENUM
        SRM_HB_LOSS_MAX
};

/* Why the peer came into view. */
#define SRM_HB_BACK_MAP(X)                                                                         \
    X(FIRST, "first")         /* first keepalive heard since our start */                          \
    X(RETURNED, "returned")   /* heard again after a loss, same incarnation */                     \
    X(RESTARTED, "restarted") /* heard with a new incarnation: its process restarted */

enum srm_hb_back {
#define SRM__HB_BACK_ENUM(name, str) SRM_HB_BACK_##name,
    SRM_HB_BACK_MAP(SRM__HB_BACK_ENUM)
#undef SRM__HB_BACK_ENUM
        SRM_HB_BACK_MAX
};

/* What this node knows of its peer. */
#define SRM_HB_PEER_MAP(X)                                                                         \
    X(NONE, "none")             /* no peer configured (one-node group) */                          \
    X(UNKNOWN, "unknown")       /* not heard since our start; initialization timeout runs */       \
    X(ALIVE, "alive")           /* heard within the keepalive timeout */                           \
    X(RESTARTING, "restarting") /* announced a restart; keepalive timeout runs */                  \
    X(LOST, "lost")             /* reported lost; waiting to hear it again */

enum srm_hb_peer_state {
#define SRM__HB_PEER_ENUM(name, str) SRM_HB_PEER_##name,
    SRM_HB_PEER_MAP(SRM__HB_PEER_ENUM)
#undef SRM__HB_PEER_ENUM
        SRM_HB_PEER_MAX
};

/* Envelope flag: the sender is about to restart (srm_hb_announce_restart). */
#define SRM_HB_FLAG_RESTARTING 0x01u

/*
 * A keepalive received from the peer. Everything it points to is borrowed: valid only during
 * the callback that receives it; copy what you keep.
 */
struct srm_hb_keepalive {
    uint64_t incarnation; /* the sender's process incarnation (random, never 0) */
    uint64_t seq;         /* per-incarnation sequence number, from 1, increasing */
    uint32_t flags;       /* SRM_HB_FLAG_* */
    uint32_t pid;         /* the sender's process id on its node, as CPG reports it */
    const void *payload;  /* the sender's payload; NULL when len is 0 */
    size_t len;           /* payload length, <= SRM_HB_PAYLOAD_MAX */
};

/* The peer came into view (peer_back_cb). `ka` is borrowed for the callback's duration. */
struct srm_hb_peer_back {
    enum srm_hb_back kind;
    bool was_lost;                     /* the peer had been reported lost (peer_lost_cb) */
    uint64_t previous_incarnation;     /* incarnation known before; 0 if none */
    const struct srm_hb_keepalive *ka; /* the keepalive that brought it back */
};

/* The peer was lost (peer_lost_cb). */
struct srm_hb_peer_lost {
    enum srm_hb_loss kind;
    bool during_init;       /* never heard since our start (the initialization timeout ran) */
    bool quorate;           /* this node's quorum at this moment (already told by quorum_cb) */
    uint64_t incarnation;   /* last known incarnation of the peer; 0 if never heard */
    uint64_t last_heard_ms; /* caller's clock when it was last heard; 0 if never heard */
};

struct srm_hb_callbacks {
    /*
     * A keepalive from the peer was accepted. When the same keepalive also brings the peer
     * into view, peer_back_cb runs first, then this.
     */
    void (*keepalive_cb)(struct srm_hb *hb, const struct srm_hb_keepalive *ka, void *data);
    /* The peer came into view; see enum srm_hb_back. */
    void (*peer_back_cb)(struct srm_hb *hb, const struct srm_hb_peer_back *back, void *data);
    /* The peer was lost; reported once per loss, until it is heard again. */
    void (*peer_lost_cb)(struct srm_hb *hb, const struct srm_hb_peer_lost *lost, void *data);
    /*
     * This node's quorum changed. Losing the connection to corosync counts as losing quorum.
     * Called only on changes; the initial value (false before the first connection) is
     * reported by the first connection if it is true.
     */
    void (*quorum_cb)(struct srm_hb *hb, bool quorate, void *data);
    /*
     * The connection to the local corosync was lost (err is SRM_EDISCONNECTED). Runs after
     * quorum_cb(false) and fds_cb(nfds == 0). The handle keeps retrying from srm_hb_tick()
     * every reconnect interval; peer timeouts keep running. Called once per outage, not per
     * failed retry; a failure of srm_hb_start() is returned instead.
     */
    void (*error_cb)(struct srm_hb *hb, int err, void *data);
    /*
     * The set of descriptors to poll changed: after a connection (nfds > 0) and right before
     * a disconnection closes them (nfds == 0; stop polling the old ones now). `fds` is
     * borrowed for the callback's duration; srm_hb_fds() gives the same set.
     */
    void (*fds_cb)(struct srm_hb *hb, const int *fds, size_t nfds, void *data);
    /*
     * The membership changed (every ring change, with the quorum it brings): whether the
     * peer's node is in it, and this node's quorum. Runs after quorum_cb. A lost peer whose
     * node comes back but stays silent is reported lost again (TIMEOUT) after the keepalive
     * timeout counted from here.
     */
    void (*membership_cb)(struct srm_hb *hb, bool peer_present, bool quorate, void *data);
};

struct srm_hb_options {
    /* CPG group name, 1..SRM_HB_GROUP_MAX printable ASCII bytes without space; copied. */
    const char *group;
    /* This node's Corosync node id; 0 = take the local node id from Corosync. A non-zero id
     * that differs from Corosync's is a configuration error (SRM_ECONFIG at connection). */
    uint32_t node_id;
    /* This node's name, for debug logs only; may be NULL; copied (truncated to 63 bytes). */
    const char *node_name;
    /* The peer's Corosync node id; 0 = no peer (one-node group: no peer events). */
    uint32_t peer_node_id;
    /* Milliseconds; 0 = the SPEC.md §6 default. interval >= 10, timeout > interval. Both
     * nodes of a group must use the same interval (misses are counted against it). */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_timeout_ms;
    uint32_t init_timeout_ms;
    /* Delay between reconnection attempts, ms; 0 = SRM_HB_DEFAULT_RECONNECT_MS. */
    uint32_t reconnect_interval_ms;
    /* This process's incarnation; 0 = random (getrandom). Tests set it to be reproducible. */
    uint64_t incarnation;
    /* Callbacks (copied; any may be NULL) and the pointer passed to them. */
    const struct srm_hb_callbacks *callbacks;
    void *data;
};

/* Counters since srm_hb_new(), for metrics. */
struct srm_hb_stats {
    uint64_t sent;                  /* keepalives accepted by Corosync */
    uint64_t flow_control;          /* CS_ERR_TRY_AGAIN answers (each retried after a dispatch) */
    uint64_t send_errors;           /* other send failures */
    uint64_t received;              /* keepalives accepted from the peer */
    uint64_t missed;                /* keepalives of a known peer overdue by half an interval */
    uint64_t malformed;             /* envelopes rejected: malformed, oversize, forged sender id */
    uint64_t foreign;               /* envelopes of another group or protocol version */
    uint64_t ignored;               /* valid envelopes ignored: stale sequence, superseded
                                       incarnation, or a sender that is neither the peer nor us */
    uint64_t lost[SRM_HB_LOSS_MAX]; /* peer losses reported, by kind */
    uint64_t back[SRM_HB_BACK_MAX]; /* peer_back_cb calls, by kind */
    uint64_t connects;    /* successful connections to corosync (the first one included) */
    uint64_t disconnects; /* connections lost */
};

/* What is known of the peer. */
struct srm_hb_peer {
    enum srm_hb_peer_state state;
    uint32_t node_id;     /* 0 if no peer */
    uint32_t pid;         /* its process id as CPG reports it; 0 if never heard */
    uint64_t incarnation; /* 0 if never heard */
    uint64_t last_seq;
    uint64_t last_heard_ms; /* 0 if never heard */
};

/*
 * Creates a handle; does not contact Corosync (srm_hb_start does).
 *
 * Returns 0 and sets *ret_hb (free it with srm_hb_free), or:
 *   -EINVAL   opts, opts->group or ret_hb is NULL; the group name is empty, too long or has
 *             a character outside printable ASCII; node ids equal; timing out of range
 *   -ENOMEM
 *   -errno    getrandom() failed (only when opts->incarnation is 0)
 * *ret_hb is untouched on failure.
 */
int srm_hb_new(const struct srm_hb_options *opts, struct srm_hb **ret_hb);

/*
 * Starts the initialization timeout at now_ms, connects to the local corosync, joins the
 * group and sends the first keepalive (with an empty payload unless srm_hb_send() set one
 * before). Callbacks may run (fds_cb, quorum_cb).
 *
 * Returns 0 when connected, or:
 *   -EINVAL             already started
 *   SRM_EDISCONNECTED   corosync is not running or refused the connection
 *   SRM_ECONFIG         the local node id differs from opts->node_id
 *   SRM_ECOROSYNC, -ENOMEM
 * Even on failure the handle is started: srm_hb_tick() retries the connection every reconnect
 * interval (the caller may instead treat the error as fatal and free the handle).
 */
int srm_hb_start(struct srm_hb *hb, uint64_t now_ms);

/*
 * Leaves the group, closes the connection and frees the handle. Accepts NULL. Stop polling
 * the descriptors first: they are closed here. No callback runs. Leaving without announcing
 * a restart makes the peer report a PROCESS loss.
 */
void srm_hb_free(struct srm_hb *hb);

/*
 * Writes the descriptors to poll for reading into ret_fds (room for SRM_HB_FDS_MAX) and
 * returns how many (0 while disconnected). They change only where fds_cb says.
 */
int srm_hb_fds(const struct srm_hb *hb, int ret_fds[SRM_HB_FDS_MAX]);

/*
 * Processes what is pending on `fd` (one of srm_hb_fds()); callbacks run from here. Then
 * retries a send held back by flow control, once.
 *
 * Returns 0, or:
 *   -EINVAL             fd is not one of the handle's descriptors (e.g. a stale one)
 *   SRM_EDISCONNECTED   the connection was lost (error_cb and fds_cb already ran); keep
 *                       calling srm_hb_tick(), it reconnects
 */
int srm_hb_dispatch(struct srm_hb *hb, int fd, uint64_t now_ms);

/*
 * Does what is due at now_ms: sends the keepalive when the interval has passed, retries a
 * send held back by flow control (dispatching pending messages in between, a bounded number
 * of times), detects the keepalive and initialization timeouts, counts missed keepalives,
 * retries the connection or the group join. Callbacks may run.
 *
 * Sets *ret_next_ms (may be NULL) to the caller-clock time at which it must be called again
 * at the latest (it may be called earlier, and after every dispatch if convenient).
 * Returns 0, or -EINVAL when the handle is not started.
 */
int srm_hb_tick(struct srm_hb *hb, uint64_t now_ms, uint64_t *ret_next_ms);

/*
 * Makes `payload` (copied) the payload of this and every later keepalive, and multicasts a
 * keepalive now; the next periodic keepalive comes one interval later. Call it on every state
 * change. Never dispatches, so never runs callbacks. Before srm_hb_start() it only sets the
 * payload of the first keepalive.
 *
 * Returns:
 *   0                   sent
 *   1                   accepted but held back (flow control, not started, not connected or
 *                       not joined yet); the latest payload goes out when possible
 *   -EINVAL             hb is NULL, or payload is NULL with len > 0
 *   SRM_ETOOBIG         len > SRM_HB_PAYLOAD_MAX (nothing changed)
 *   -ESHUTDOWN          after srm_hb_announce_restart()
 *   SRM_ECOROSYNC       Corosync refused the message (the payload is kept for the next try)
 *   SRM_EDISCONNECTED   the connection to corosync turned out lost; the payload is kept, and
 *                       the next srm_hb_dispatch() or srm_hb_tick() reports the loss
 *                       (quorum_cb, fds_cb, error_cb) and starts reconnecting
 */
int srm_hb_send(struct srm_hb *hb, uint64_t now_ms, const void *payload, size_t len);

/*
 * For a planned restart of this process: multicasts a final keepalive flagged
 * SRM_HB_FLAG_RESTARTING with the current payload, and waits (up to about one second,
 * polling the CPG descriptor) until it comes back through the group's total order. From then
 * on the handle is silent: no keepalives, no callbacks, srm_hb_send() refuses; only
 * srm_hb_free() remains useful. The peer reports no PROCESS loss when this process leaves,
 * only a TIMEOUT if no new incarnation is heard within its keepalive timeout.
 *
 * This is the only call that blocks. Returns 0 when delivered, or:
 *   -EINVAL             not started; -EALREADY  already announced
 *   SRM_EDISCONNECTED   not connected (the peer will see a loss)
 *   -EAGAIN             still held back by flow control after the bounded retries
 *   -ETIMEDOUT          sent, but not seen back within the wait
 */
int srm_hb_announce_restart(struct srm_hb *hb, uint64_t now_ms);

/*
 * Changes the timing (same rules and defaults as the options); applies to the deadlines
 * computed from now on. Returns 0 or -EINVAL (nothing changed).
 */
int srm_hb_set_timing(struct srm_hb *hb, uint32_t keepalive_interval_ms,
                      uint32_t keepalive_timeout_ms, uint32_t init_timeout_ms);

/* This node's quorum as last known (false while disconnected or before the first connection). */
bool srm_hb_quorate(const struct srm_hb *hb);

/*
 * The timeouts in force: the configured ones (srm_hb_options, srm_hb_set_timing), raised
 * to Corosync's ring change (its token + consensus timeouts, read at each connection) plus
 * a keepalive interval and 500 ms: while Corosync forms a new membership it delivers no
 * message, and that silence is not the peer's. *ret_ring_change_ms is 0 while Corosync's
 * timing is unknown (not connected yet, or unreadable), and the configured values apply.
 * Any pointer may be NULL.
 */
void srm_hb_timeouts(const struct srm_hb *hb, uint32_t *ret_keepalive_ms, uint32_t *ret_init_ms,
                     uint32_t *ret_ring_change_ms);

/* Whether the peer's node is in the last membership view. */
bool srm_hb_peer_in_view(const struct srm_hb *hb);

/*
 * This process stalled (its loop did not run for a while: SIGSTOP, swap, a hung disk):
 * silence heard meanwhile proves nothing, so the peer's keepalive timeout starts over from
 * now_ms (a peer that really died shows in the membership changes delivered next).
 */
void srm_hb_resume(struct srm_hb *hb, uint64_t now_ms);
/* Whether the handle is connected to corosync and joined to its group. */
bool srm_hb_connected(const struct srm_hb *hb);
/* This process's incarnation (what the peer sees in its keepalives). */
uint64_t srm_hb_incarnation(const struct srm_hb *hb);
/* This node's id (from the options, or learned from Corosync at the first connection). */
uint32_t srm_hb_node_id(const struct srm_hb *hb);
void srm_hb_peer_get(const struct srm_hb *hb, struct srm_hb_peer *ret_peer);
void srm_hb_stats_get(const struct srm_hb *hb, struct srm_hb_stats *ret_stats);

/* Static lowercase names ("node", "first", "alive"); "?" for an out-of-range value. */
const char *srm_hb_loss_name(enum srm_hb_loss kind);
const char *srm_hb_back_name(enum srm_hb_back kind);
const char *srm_hb_peer_state_name(enum srm_hb_peer_state state);

#endif
