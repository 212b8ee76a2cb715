/*
 * libsrm — the client library protocol daemons link to work with srmd, the server recovery
 * manager of their node.
 *
 * WHAT IT DOES FOR YOU
 *
 * A protocol daemon (an "engine": an XMPP router, a presence engine, a SIP proxy...) serves
 * the users of the partitions srmd grants it, and nothing else. A partition is identified by
 * the node id of its users' home node (uint32_t, never 0); a grant carries the partition's
 * ownership epoch, which every datastore write must name (srm_ds_*_put(..., epoch, ...)).
 * This library:
 *
 *  - connects to the local srmd (libqb IPC), says who it is, registers your services
 *    (critical or not) and reports their health, and reconnects by itself when srmd
 *    restarts (re-registering everything; srmd then grants again);
 *  - keeps srmd's watchdog fed (PING every interval srmd asks for);
 *  - delivers srmd's commands to your callbacks: serve a partition, release one (drain it and
 *    tell its users to re-login after a random delay in a window), stop or start your
 *    critical services; you acknowledge each (at once by the callback's return value, or
 *    later with srm_client_ack());
 *  - ENFORCES TWO SAFETY RULES ON ITS OWN, whatever srmd does or fails to do:
 *      1. the LEASE: srmd grants serving for lease_ms and renews it; when the lease runs out
 *         by this process's monotonic clock (srmd crashed, hung, stopped), every partition
 *         is taken away at once;
 *      2. the QUORUM SELF-FENCE: the library follows the node's Corosync quorum itself; when
 *         the node is not quorate AND the group peer's node id is not in the membership (this
 *         node was cut off), every partition is taken away at once, and SERVE is refused
 *         until that changes; serving resumes only when srmd grants again. A Corosync that
 *         cannot be reached counts as not quorate, its membership as empty.
 *    Taking away means: stop_serving_cb(part or SRM_PART_ALL, reason) is called, and
 *    srm_client_serving() answers 0 for those partitions. YOUR CODE MUST OBEY: stop writing
 *    at once. Check srm_client_serving() (cheap: one clock read) before each batch of writes
 *    and write with the epoch it gives: a write made under a stale grant is refused by the
 *    datastore (SRM_ESTALE_EPOCH / SRM_ENOTOWNER); report it with srm_client_stale().
 *  - draws re-login delays uniformly from [lower, upper] with a good generator.
 *
 * EVENT LOOP
 *
 * One descriptor, srm_client_fd(), stays the same for the life of the client (an epoll
 * descriptor holding the IPC socket, the quorum socket and an internal timerfd for every
 * deadline: pings, the lease, drains, reconnects). Poll it for readability (poll, epoll,
 * libuv's uv_poll_t...) and call srm_client_dispatch() when it is readable. Nothing else is
 * needed: no timer of yours. Callbacks run only from srm_client_dispatch(), on your thread.
 *
 *     struct srm_client_options o = { .name = "xcp-router", .callbacks = { ... }, .data = me };
 *     srm_client_new(&o, &c);
 *     srm_client_service_register(c, "xcp-router", true);
 *     for (;;) { poll(srm_client_fd(c), POLLIN); srm_client_dispatch(c); ... }
 *
 * ERRORS AND THREADS
 *
 * Functions return >= 0 on success, a negative errno or a negative SRM_E... code on failure
 * (srm_strerror() gives the message). Output parameters (ret_*) are untouched on failure. A
 * client is not thread-safe: use it from one thread (or serialize the calls). Different
 * clients are independent. Never call srm_client_free() from one of its callbacks.
 *
 * DATASTORES
 *
 * libsrm also exports the datastore API of srm_ds.h (srm_ds_env_open, srm_ds_login_put...):
 * link libsrm only. Open the node's datastore directory with the node id srmd reports
 * (srm_client_status().node_id) and the sync mode srmd uses.
 *
 * Environment: SRM_IPC_NAME (the IPC name of srmd, default "srmd") and SRM_QUORUM ("off"
 * disables the quorum self-fence, for nodes without Corosync and for tests) apply when the
 * corresponding option is left at its default.
 */
#ifndef SRM_H
#define SRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "srm_error.h"

#define SRM_VERSION_MAJOR 1
#define SRM_VERSION_MINOR 0

/* "all partitions" in stop_serving_cb. Partition ids are never 0. */
#define SRM_PART_ALL 0u

/* Bounds (as the IPC protocol enforces them). */
#define SRM_NAME_MAX      64  /* process and service names: 1..64 of [A-Za-z0-9._-] */
#define SRM_DETAIL_MAX    255 /* detail texts: UTF-8, no control characters */
#define SRM_NODE_NAME_MAX 128
#define SRM_PARTS_MAX     256 /* partitions served at once; counters per message */
#define SRM_EXTRA_MAX     32  /* named extra counters per message */
#define SRM_SERVICES_MAX  16  /* services one client may register */

/* Why the library took partitions away (stop_serving_cb). */
enum srm_stop_reason {
    SRM_STOP_DRAIN_TIMEOUT = 3, /* a RELEASE was not acknowledged within its drain timeout */
    SRM_STOP_SERVICES = 4,      /* srmd stops the critical services (STOP_SERVICES) */
    SRM_STOP_LEASE = 5,         /* srmd did not renew the lease in time */
    SRM_STOP_QUORUM = 6,        /* no quorum and the peer is not in the membership */
};

/* "drain-timeout", "services-stopped", "lease-expired", "quorum-lost"; "?" otherwise. */
const char *srm_stop_reason_name(enum srm_stop_reason reason);

enum srm_quorum_mode {
    SRM_QUORUM_DEFAULT = 0,  /* $SRM_QUORUM ("off" or "corosync"), else COROSYNC */
    SRM_QUORUM_COROSYNC = 1, /* follow the local Corosync (libquorum) and self-fence */
    SRM_QUORUM_OFF = 2,      /* no quorum self-fence (no Corosync on this node; tests) */
};

/* Return value of a command callback: "I will acknowledge with srm_client_ack()". */
#define SRM_ACK_LATER 1

struct srm_client;

/*
 * Command ids given to callbacks are the library's own, unique for the life of the client
 * (srmd's restart from 1 with every srmd): pass them to srm_client_ack().
 */

/* A SERVE command. Strings are borrowed for the duration of the callback. */
struct srm_serve {
    uint32_t cmd_id;
    uint32_t part;         /* the partition (home node id of its users) */
    uint64_t epoch;        /* its ownership epoch: write with it */
    bool renewed;          /* it was already served under this epoch (srmd re-granted it,
                              e.g. after a restart): nothing to load */
    const char *home_name; /* name of the partition's node ("" if srmd did not say) */
};

/* A RELEASE command: stop serving `part` once drained. */
struct srm_release {
    uint32_t cmd_id;
    uint32_t part;
    uint64_t epoch;           /* the epoch it was served under */
    uint32_t drain_ms;        /* acknowledge within this, or the library stops the
                                 partition itself (SRM_STOP_DRAIN_TIMEOUT) */
    uint32_t relogin_lower_s; /* tell each user of the partition to re-login after a */
    uint32_t relogin_upper_s; /* delay drawn from [lower, upper] s (srm_client_relogin_delay_ms) */
};

/*
 * SERVE: the library has already checked the quorum self-fence and the lease and recorded
 * the grant: from now on srm_client_serving(part) answers 1 with this epoch. Load what the
 * partition needs (keep it O(1): load users lazily), then return
 *   0               serving; the library acknowledges the command now;
 *   SRM_ACK_LATER   acknowledge later with srm_client_ack(cmd_id, 0 or error, detail);
 *   < 0             refuse: the grant is dropped and srmd gets this code.
 * The library refuses some SERVEs itself, without calling you; srmd gets the code:
 * SRM_ENO_QUORUM (the self-fence holds), SRM_ELEASE (the lease it carries was over when it
 * arrived), SRM_ESTALE_EPOCH (served under a newer epoch), -EBUSY (a RELEASE of it is in
 * progress), -ENOSPC (SRM_PARTS_MAX partitions served).
 */
typedef int srm_client_serve_cb(struct srm_client *c, const struct srm_serve *serve, void *data);

/*
 * RELEASE: the partition is draining: srm_client_serving(part) now answers 0 (make no new
 * writes). Disconnect its users, giving each a re-login delay from the window, then
 * return 0 (done now) or SRM_ACK_LATER and call srm_client_ack() when done; either way the
 * grant is removed then. A RELEASE of a partition not served is acknowledged by the
 * library without calling you.
 */
typedef int srm_client_release_cb(struct srm_client *c, const struct srm_release *release,
                                  void *data);

/*
 * The library took partitions away on its own: part is one partition or SRM_PART_ALL.
 * Stop serving them at once (no more writes; disconnect their users). Not called for
 * what you finished yourself (an acknowledged RELEASE, a partition you reported stale).
 */
typedef void srm_client_stop_serving_cb(struct srm_client *c, uint32_t part,
                                        enum srm_stop_reason reason, void *data);

/*
 * STOP_SERVICES (every grant was already taken away, with stop_serving_cb(SRM_PART_ALL,
 * SRM_STOP_SERVICES)) and START_SERVICES: stop or start your critical services, report
 * their health, and return 0, SRM_ACK_LATER, or a negative code (the start failed).
 */
typedef int srm_client_services_cb(struct srm_client *c, uint32_t cmd_id, void *data);

/*
 * Connection to srmd established (connected true: WELCOME received, services
 * re-registered) or lost (false; err says why). Serving continues while the lease lasts.
 */
typedef void srm_client_connection_cb(struct srm_client *c, bool connected, int err, void *data);

/* The quorum view changed (for logs and status). */
typedef void srm_client_quorum_cb(struct srm_client *c, bool quorate, bool peer_present,
                                  void *data);

struct srm_client_callbacks {
    srm_client_serve_cb *serve_cb;               /* each may be NULL: commands are */
    srm_client_release_cb *release_cb;           /* then acknowledged as done at once */
    srm_client_stop_serving_cb *stop_serving_cb; /* set it if you serve anything */
    srm_client_services_cb *stop_services_cb;
    srm_client_services_cb *start_services_cb;
    srm_client_connection_cb *connection_cb;
    srm_client_quorum_cb *quorum_cb;
};

struct srm_client_options {
    const char *ipc_name; /* srmd's IPC name; NULL: $SRM_IPC_NAME, else "srmd". Copied. */
    const char *name;     /* this process's name for srmd (1..64 of [A-Za-z0-9._-]);
                             NULL: the program's name. Copied. */
    enum srm_quorum_mode quorum;
    uint32_t peer_node_id;    /* the group peer's node id for the self-fence; 0: the one
                                 srmd announces (WELCOME) */
    unsigned reconnect_ms;    /* delay between connection attempts; 0: 250 */
    const uid_t *server_uids; /* uids srmd may run as (checked on the socket); NULL: root
                                 and this process's euid. Copied. */
    size_t n_server_uids;
    struct srm_client_callbacks callbacks;
    void *data; /* passed to every callback */
};

/*
 * Creates a client and starts connecting (without blocking: the result comes through
 * connection_cb from srm_client_dispatch()). Connects to Corosync's quorum service when the
 * quorum mode says so (a failure is retried every second; until then nothing can be
 * granted).
 * Returns 0 and *ret_client (free with srm_client_free), or
 *   -EINVAL   opts or ret_client NULL, a bad name or IPC name, $SRM_QUORUM not "off" or
 *             "corosync";
 *   -ENOMEM, -EMFILE ... (epoll, timerfd).
 */
int srm_client_new(const struct srm_client_options *opts, struct srm_client **ret_client);

/*
 * Disconnects and frees. Partitions still served are taken away without callback (the
 * process is stopping). Accepts NULL. Not from a callback of this client.
 */
void srm_client_free(struct srm_client *c);

/* The descriptor to poll for readability (stable for the life of the client). */
int srm_client_fd(const struct srm_client *c);

/*
 * Does whatever is due: reads srmd's messages and Corosync's notifications, enforces the
 * lease, drains timeouts, sends pings and queued messages, reconnects. Never blocks.
 * Returns 0, or -EINVAL. Connection problems are not errors (connection_cb reports them).
 */
int srm_client_dispatch(struct srm_client *c);

/* Milliseconds until the next internal deadline (0: dispatch now; -1: none), for loops that
 * prefer their own timer to polling the descriptor for it. */
int srm_client_timeout_ms(const struct srm_client *c);

/*
 * Registers a service (sent now if connected, and again after every reconnection). It
 * starts up; report changes with srm_client_service_health(). Registering a name again
 * changes its critical flag.
 * Returns 0, or -EINVAL (bad name), -ENOSPC (SRM_SERVICES_MAX services).
 */
int srm_client_service_register(struct srm_client *c, const char *service, bool critical);

/*
 * A registered service is up or down; detail says why (NULL: ""). Remembered and re-sent
 * after a reconnection. Returns 0, -EINVAL (bad detail), SRM_ENOTFOUND (not registered).
 */
int srm_client_service_health(struct srm_client *c, const char *service, bool up,
                              const char *detail);

/*
 * Acknowledges a command whose callback returned SRM_ACK_LATER. result: 0 done, or a
 * negative code. For a RELEASE, the grant is removed now (whatever the result). For a
 * SERVE acknowledged with an error, the grant is dropped. If the connection that carried
 * the command is gone, nothing is sent (the new srmd does not know it), the local effect
 * still applies, and 0 is returned.
 * Returns 0, -EINVAL (result > 0, bad detail), -ENOENT (no such command waiting; also
 * after the library acknowledged it itself, e.g. at a drain timeout).
 */
int srm_client_ack(struct srm_client *c, uint32_t cmd_id, int result, const char *detail);

/* Session counters of one partition (SPEC.md §5 names). */
struct srm_part_counters {
    uint32_t part;
    uint64_t active;          /* ActiveJsmSessions */
    uint64_t inactive;        /* InactiveJsmSessions */
    uint64_t client;          /* JsmSessionsClient */
    uint64_t client_inactive; /* JsmSessionsClientInactive */
};

struct srm_counter {
    const char *name; /* 1..64 of [A-Za-z0-9._-] */
    uint64_t value;
};

/*
 * Reports counters to srmd (a snapshot: the latest replaces one not yet sent). parts need
 * not be sorted; ids must be distinct and non-zero.
 * Returns 0, -EINVAL (bad input), -E2BIG (too many), -ENOTCONN (not connected: nothing
 * queued; send again later).
 */
int srm_client_counters(struct srm_client *c, const struct srm_part_counters *parts, size_t n,
                        const struct srm_counter *extra, size_t n_extra);

/*
 * The datastore refused a write to `part` under `epoch` (err SRM_ESTALE_EPOCH or
 * SRM_ENOTOWNER): ownership moved. If the partition is served under that epoch it is taken
 * away now (no stop_serving_cb: you know), and srmd is told (if connected).
 * Returns 1 if the grant was removed, 0 if not (not served, or granted again since under a
 * newer epoch: retry with it), or -EINVAL.
 */
int srm_client_stale(struct srm_client *c, uint32_t part, uint64_t epoch, int err);

/*
 * May `part` be written now? 1 and *ret_epoch (may be NULL) if it is granted, not draining,
 * the lease runs (checked against the clock now, not at the last dispatch) and the fence
 * does not hold; else 0. Never calls back.
 */
int srm_client_serving(const struct srm_client *c, uint32_t part, uint64_t *ret_epoch);

struct srm_grant {
    uint32_t part;
    uint64_t epoch;
    bool draining; /* a RELEASE is being carried out */
};

/* Copies up to cap grants (sorted by partition); *ret_n is how many there are. 0, -EINVAL. */
int srm_client_grants(const struct srm_client *c, struct srm_grant *arr, size_t cap, size_t *ret_n);

struct srm_client_status {
    bool connected; /* WELCOME received on the current connection */
    uint64_t srmd_incarnation;
    uint32_t node_id;      /* from srmd (0 before the first connection) */
    uint32_t peer_node_id; /* the peer the fence watches */
    char node_name[SRM_NODE_NAME_MAX + 1];
    char peer_name[SRM_NODE_NAME_MAX + 1];
    enum srm_quorum_mode quorum; /* COROSYNC or OFF */
    bool quorum_connected;       /* connected to Corosync's quorum service */
    bool quorate;
    bool peer_present;
    bool fenced;           /* the self-fence holds: SERVE is refused */
    int64_t lease_left_ms; /* <= 0: no lease */
    uint32_t ping_ms;      /* watchdog interval in force */
    size_t n_grants;
    uint64_t reconnects; /* connections established after the first */
    uint64_t lease_expiries;
    uint64_t quorum_fences;
    uint64_t refused_serves;
};

/* 0 and *ret_status; -EINVAL. */
int srm_client_status(const struct srm_client *c, struct srm_client_status *ret_status);

/* ---------------------------------------------------------------------------------------
 * Random numbers for re-login delays
 *
 * xoshiro256** (Blackman and Vigna), seeded from getrandom() or, for reproducible tests,
 * from a 64-bit seed through splitmix64. Ranges are drawn without bias (rejection).
 * ------------------------------------------------------------------------------------- */

struct srm_rng {
    uint64_t s[4];
};

/* Seeds from the kernel's generator. 0, or -errno of getrandom(). */
int srm_rng_init(struct srm_rng *rng);
/* Seeds deterministically (the same seed gives the same sequence). */
void srm_rng_seed(struct srm_rng *rng, uint64_t seed);
/* The next 64 random bits. */
uint64_t srm_rng_next(struct srm_rng *rng);
/* Uniform in [lower, upper], both included (upper < lower: the bounds are swapped). */
uint64_t srm_rng_range(struct srm_rng *rng, uint64_t lower, uint64_t upper);

/*
 * A re-login delay in milliseconds, uniform in [lower_s x 1000, upper_s x 1000], both
 * included (SPEC.md §5: moved users re-login after a random delay in [lower, upper]).
 */
uint64_t srm_relogin_delay_ms(struct srm_rng *rng, uint32_t lower_s, uint32_t upper_s);

/* The same with the client's own generator (seeded from getrandom()). */
uint64_t srm_client_relogin_delay_ms(struct srm_client *c, uint32_t lower_s, uint32_t upper_s);

#endif
