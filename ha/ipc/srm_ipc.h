/*
 * srm_ha_ipc — the local IPC between srmd and the protocol daemons ("engines") of its node:
 * the message set with its strict codec, and srmd's server side on libqb and libuv.
 *
 * MODEL
 *
 * Engines connect to srmd over libqb IPC (an abstract unix socket named by the server, then
 * shared-memory rings). An engine says HELLO, registers its services (critical or not),
 * reports their health and pings srmd's watchdog. srmd grants it partitions to serve (SERVE,
 * with the partition's ownership epoch and a lease), renews the lease (LEASE), takes
 * partitions back (RELEASE, with a drain timeout and the users' re-login window), and stops
 * or starts its critical services (STOP_SERVICES / START_SERVICES). Commands carry an id
 * that the engine acknowledges (ACK) when it is done. The engine reports what it serves
 * (SERVING), its session counters (COUNTERS) and every datastore write that was refused
 * because ownership moved (STALE). ha/ipc/README.md has the byte layout and the rules;
 * ha/libsrm is the engine side.
 *
 * Every frame travels after a libqb header (struct qb_ipc_request_header from engines,
 * struct qb_ipc_response_header from srmd) whose size covers the whole message. The codec
 * below handles the frame itself and knows nothing of libqb.
 *
 * ERRORS
 *
 * Functions return >= 0 on success, a negative errno or a negative SRM_E... code of
 * common/srm_error.h on failure. Output parameters (ret_*) are untouched on failure.
 *
 * THREADS
 *
 * None. The codec is pure and reentrant. A server is used from its loop's thread only; its
 * callbacks run on that thread, never from inside the call that caused them unless said.
 */
#ifndef SRM_IPC_H
#define SRM_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "srm_error.h"

/* ---------------------------------------------------------------------------------------
 * Frame and bounds
 * ------------------------------------------------------------------------------------- */

#define SRM_IPC_PROTOCOL_VERSION 1

/* Frame header: magic "SRMI", version, type, reserved u16 (0), body length u32 (LE). */
#define SRM_IPC_HEADER_LEN 12

#define SRM_IPC_NAME_MAX      64        /* process and service names: 1..64 of [A-Za-z0-9._-] */
#define SRM_IPC_DETAIL_MAX    255       /* free text: 0..255 bytes of UTF-8, no control chars */
#define SRM_IPC_NODE_NAME_MAX 128       /* node names: 0..128 of [A-Za-z0-9._-] */
#define SRM_IPC_PARTS_MAX     256       /* partitions in one COUNTERS or SERVING message */
#define SRM_IPC_EXTRA_MAX     32        /* named extra counters in one COUNTERS message */
#define SRM_IPC_SERVICES_MAX  16        /* services one client may register */
#define SRM_IPC_LEASE_MAX_MS  86400000u /* 24 h: the longest lease (an announced restart) */
#define SRM_IPC_DRAIN_MAX_MS  3600000u  /* 1 h */
#define SRM_IPC_RELOGIN_MAX_S 86400u    /* re-login window bounds, seconds */
#define SRM_IPC_PING_MIN_MS   20u
#define SRM_IPC_PING_MAX_MS   60000u
#define SRM_IPC_MISSES_MAX    100u

/* The largest frame of this version (a COUNTERS message at its bounds). */
#define SRM_IPC_FRAME_MAX                                                                          \
    (SRM_IPC_HEADER_LEN + 2 + SRM_IPC_PARTS_MAX * 36 + 2 +                                         \
     SRM_IPC_EXTRA_MAX * (1 + SRM_IPC_NAME_MAX + 8))

/* libqb buffer size both sides use: room for a frame and a libqb header, with margin. */
#define SRM_IPC_BUFFER_SIZE (64 * 1024)

/* X(NAME, value, "name", from_engine) */
#define SRM_IPC_TYPE_MAP(X)                                                                        \
    X(HELLO, 1, "HELLO", true)                                                                     \
    X(REGISTER, 2, "REGISTER", true)                                                               \
    X(HEALTH, 3, "HEALTH", true)                                                                   \
    X(PING, 4, "PING", true)                                                                       \
    X(ACK, 5, "ACK", true)                                                                         \
    X(COUNTERS, 6, "COUNTERS", true)                                                               \
    X(STALE, 7, "STALE", true)                                                                     \
    X(SERVING, 8, "SERVING", true)                                                                 \
    X(WELCOME, 64, "WELCOME", false)                                                               \
    X(SERVE, 65, "SERVE", false)                                                                   \
    X(RELEASE, 66, "RELEASE", false)                                                               \
    X(LEASE, 67, "LEASE", false)                                                                   \
    X(STOP_SERVICES, 68, "STOP_SERVICES", false)                                                   \
    X(START_SERVICES, 69, "START_SERVICES", false)                                                 \
    X(WATCHDOG, 70, "WATCHDOG", false)

enum srm_ipc_type {
#define SRM__IPC_TYPE_ENUM(name, value, str, from_engine) SRM_IPC_##name = value,
    SRM_IPC_TYPE_MAP(SRM__IPC_TYPE_ENUM)
#undef SRM__IPC_TYPE_ENUM
};

/* "SERVE", ...; "?" for an unknown value. */
const char *srm_ipc_type_name(enum srm_ipc_type type);
/* True for the types an engine sends (HELLO..SERVING), false for srmd's and unknown ones. */
bool srm_ipc_type_from_engine(enum srm_ipc_type type);
/* True for the commands an engine acknowledges: SERVE, RELEASE, STOP_SERVICES,
 * START_SERVICES. */
bool srm_ipc_type_is_command(enum srm_ipc_type type);

/* Why an engine stopped serving something (SERVING.reason, srm.h's stop_serving_cb). */
#define SRM_IPC_REASON_MAP(X)                                                                      \
    X(NONE, 0, "none")                                                                             \
    X(GRANTED, 1, "granted")             /* a SERVE was applied */                                 \
    X(RELEASED, 2, "released")           /* a RELEASE completed (drained) */                       \
    X(DRAIN_TIMEOUT, 3, "drain-timeout") /* a RELEASE's drain timeout passed */                    \
    X(STOPPED, 4, "services-stopped")    /* STOP_SERVICES */                                       \
    X(LEASE, 5, "lease-expired")         /* srmd did not renew the lease in time */                \
    X(QUORUM, 6, "quorum-lost")          /* no quorum and the peer not in the membership */        \
    X(STALE, 7, "stale-epoch")           /* the datastore refused a write: ownership moved */      \
    X(CLOSED, 8, "closed")               /* the engine is shutting down */

enum srm_ipc_reason {
#define SRM__IPC_REASON_ENUM(name, value, str) SRM_IPC_REASON_##name = value,
    SRM_IPC_REASON_MAP(SRM__IPC_REASON_ENUM)
#undef SRM__IPC_REASON_ENUM
        SRM_IPC_REASON_MAX
};

/* "lease-expired", ...; "?" for an unknown value. */
const char *srm_ipc_reason_name(enum srm_ipc_reason reason);

/* ---------------------------------------------------------------------------------------
 * Messages. Text fields are NUL-terminated copies (never borrowed). Lengths below are the
 * bounds the codec enforces; the README gives the wire layout of each body.
 * ------------------------------------------------------------------------------------- */

/* engine -> srmd: first message of a connection. */
struct srm_ipc_hello {
    uint32_t pid;                    /* the engine's pid (srmd trusts the socket's) */
    uint64_t incarnation;            /* random per engine process start, non-zero */
    char name[SRM_IPC_NAME_MAX + 1]; /* process name, 1..64 */
};

/* engine -> srmd: a service this process runs. */
struct srm_ipc_register {
    bool critical;                      /* a critical service (SPEC.md §3) */
    char service[SRM_IPC_NAME_MAX + 1]; /* 1..64 */
};

/* engine -> srmd: a registered service is up or down. */
struct srm_ipc_health {
    bool up;
    char service[SRM_IPC_NAME_MAX + 1];
    char detail[SRM_IPC_DETAIL_MAX + 1]; /* why, for logs and status; may be empty */
};

/* engine -> srmd: the watchdog's keepalive. */
struct srm_ipc_ping {
    uint64_t seq; /* increments per ping; informative */
};

/* engine -> srmd: a command is done. */
struct srm_ipc_ack {
    uint32_t cmd_id; /* the command's id, non-zero */
    int32_t result;  /* 0 done, or a negative code (why not) */
    char detail[SRM_IPC_DETAIL_MAX + 1];
};

/* Session counters of one partition (SPEC.md §5 names). */
struct srm_ipc_part_counters {
    uint32_t part;            /* non-zero */
    uint64_t active;          /* ActiveJsmSessions */
    uint64_t inactive;        /* InactiveJsmSessions */
    uint64_t client;          /* JsmSessionsClient */
    uint64_t client_inactive; /* JsmSessionsClientInactive */
};

struct srm_ipc_extra_counter {
    char name[SRM_IPC_NAME_MAX + 1]; /* 1..64 */
    uint64_t value;
};

/* engine -> srmd: counters, per partition plus named extras (users served, writes...). */
struct srm_ipc_counters {
    uint16_t n_parts; /* 0..SRM_IPC_PARTS_MAX; part ids strictly increasing */
    struct srm_ipc_part_counters parts[SRM_IPC_PARTS_MAX];
    uint16_t n_extra; /* 0..SRM_IPC_EXTRA_MAX */
    struct srm_ipc_extra_counter extra[SRM_IPC_EXTRA_MAX];
};

/* engine -> srmd: the datastore refused a write to `part` under `epoch`; the engine
 * stopped serving that partition. */
struct srm_ipc_stale {
    uint32_t part;  /* non-zero */
    uint64_t epoch; /* the epoch the write named, non-zero */
    int32_t error;  /* SRM_ESTALE_EPOCH or SRM_ENOTOWNER */
};

enum srm_ipc_grant_state {
    SRM_IPC_GRANT_SERVING = 0,  /* serving */
    SRM_IPC_GRANT_DRAINING = 1, /* a RELEASE is being carried out: no new writes */
    SRM_IPC_GRANT_STATE_MAX
};

struct srm_ipc_grant {
    uint32_t part;  /* non-zero */
    uint64_t epoch; /* non-zero */
    uint8_t state;  /* enum srm_ipc_grant_state */
};

/* engine -> srmd: what the engine serves now; sent after connecting and after every
 * change. */
struct srm_ipc_serving {
    uint8_t reason;         /* enum srm_ipc_reason of the last change */
    bool fenced;            /* the quorum self-fence holds: SERVE is refused */
    uint32_t lease_left_ms; /* 0: no lease (or expired) */
    uint16_t n;             /* 0..SRM_IPC_PARTS_MAX; part ids strictly increasing */
    struct srm_ipc_grant grants[SRM_IPC_PARTS_MAX];
};

/* srmd -> engine: answer to HELLO. */
struct srm_ipc_welcome {
    uint64_t incarnation;  /* srmd's, random per start, non-zero */
    uint32_t node_id;      /* this node (Corosync node id), non-zero */
    uint32_t peer_node_id; /* its group peer; 0: no peer */
    uint32_t ping_ms;      /* watchdog ping interval */
    uint8_t misses;        /* pings that may be missed, 1..100 */
    char node_name[SRM_IPC_NODE_NAME_MAX + 1];
    char peer_name[SRM_IPC_NODE_NAME_MAX + 1];
};

/* srmd -> engine: serve `part` under `epoch`, and (re)sets the lease. */
struct srm_ipc_serve {
    uint32_t cmd_id;                           /* non-zero */
    uint32_t part;                             /* non-zero: the home node id of its users */
    uint64_t epoch;                            /* non-zero: the ownership epoch srmd set */
    uint32_t lease_ms;                         /* 1..SRM_IPC_LEASE_MAX_MS */
    uint64_t sent_mono_ms;                     /* srmd's CLOCK_MONOTONIC when sent (see README) */
    char home_name[SRM_IPC_NODE_NAME_MAX + 1]; /* name of the partition's node; may be "" */
};

/* srmd -> engine: stop serving `part` after draining its users. */
struct srm_ipc_release {
    uint32_t cmd_id;
    uint32_t part;
    uint32_t drain_ms;        /* 0..SRM_IPC_DRAIN_MAX_MS */
    uint32_t relogin_lower_s; /* users re-login after a delay drawn uniformly */
    uint32_t relogin_upper_s; /* in [lower, upper] s; lower <= upper <= 86400 */
};

/* srmd -> engine: the lease runs until sent_mono_ms + lease_ms; 0 ends it now. */
struct srm_ipc_lease {
    uint32_t lease_ms; /* 0..SRM_IPC_LEASE_MAX_MS */
    uint64_t sent_mono_ms;
};

/* srmd -> engine: STOP_SERVICES, START_SERVICES. */
struct srm_ipc_command {
    uint32_t cmd_id;
};

/* srmd -> engine: new watchdog parameters. */
struct srm_ipc_watchdog {
    uint32_t ping_ms; /* SRM_IPC_PING_MIN_MS..SRM_IPC_PING_MAX_MS */
    uint8_t misses;   /* 1..SRM_IPC_MISSES_MAX */
};

struct srm_ipc_msg {
    enum srm_ipc_type type;
    union {
        struct srm_ipc_hello hello;
        struct srm_ipc_register reg;
        struct srm_ipc_health health;
        struct srm_ipc_ping ping;
        struct srm_ipc_ack ack;
        struct srm_ipc_counters counters;
        struct srm_ipc_stale stale;
        struct srm_ipc_serving serving;
        struct srm_ipc_welcome welcome;
        struct srm_ipc_serve serve;
        struct srm_ipc_release release;
        struct srm_ipc_lease lease;
        struct srm_ipc_command command; /* STOP_SERVICES, START_SERVICES */
        struct srm_ipc_watchdog watchdog;
    } u;
};

/*
 * Encodes `msg` as one frame into buf (cap bytes). Every field is checked against the
 * bounds the decoder enforces, so an encoded frame always decodes to the same message.
 * Returns 0 and *ret_len, or
 *   -EINVAL           msg, buf or ret_len NULL; an unknown type; a field out of bounds
 *                     (empty or bad name, zero id, unknown enum, partitions not increasing);
 *   SRM_EBADUTF8      a detail that is not valid UTF-8 or holds a control character;
 *   -ENOBUFS          the frame does not fit in cap.
 */
int srm_ipc_msg_encode(const struct srm_ipc_msg *msg, void *buf, size_t cap, size_t *ret_len);

/*
 * Decodes exactly one frame of `len` bytes (no libqb header, nothing after it). Strict: one
 * valid encoding per message. *ret_msg is filled (text copied, nothing borrowed).
 * Returns 0, or
 *   -EINVAL           buf or ret_msg NULL;
 *   SRM_EBADMSG       shorter than the header, bad magic, reserved bits set, a body length
 *                     that disagrees with len, an unknown type, a truncated or oversized
 *                     body, a field out of bounds, bad text;
 *   SRM_EIPC_VERSION  a protocol version other than SRM_IPC_PROTOCOL_VERSION (checked right
 *                     after the magic: another version may lay out the rest differently).
 */
int srm_ipc_msg_decode(const void *buf, size_t len, struct srm_ipc_msg *ret_msg);

/* Name check used by the codec: 1..max characters of [A-Za-z0-9._-]. NULL is invalid. */
bool srm_ipc_name_valid(const char *name, size_t max);

/* Text check used by the codec for details: len bytes of valid UTF-8 (no overlong form,
 * surrogate or code point beyond U+10FFFF) without control characters (C0, DEL, C1). */
bool srm_ipc_text_valid(const char *text, size_t len);

/* ---------------------------------------------------------------------------------------
 * Server (srmd side)
 *
 * One server per srmd, on srmd's uv_loop_t. libqb's poll handlers are mapped onto uv_poll_t
 * handles and 0 ms timers; no qb_loop runs.
 *
 * CLIENTS. A connection is accepted only if its uid is in allow_uids or its gid in
 * allow_gids (SO_PEERCRED, checked by libqb before anything is read); others are refused
 * with -EPERM and reported through refused_cb. An accepted connection must send HELLO
 * within hello_timeout_ms; the server answers WELCOME (node ids, watchdog parameters) and
 * reports connected_cb. Any malformed frame, any message before HELLO, a second HELLO, a
 * HEALTH of a service never registered, or a message srmd does not accept from engines
 * disconnects the client (SRM_EBADMSG or SRM_EIPC_VERSION in disconnected_cb; more than
 * SRM_IPC_SERVICES_MAX services: -EMFILE). A client that sends no PING for more than
 * ping_ms x misses is disconnected with -ETIMEDOUT (it reconnects when it runs again).
 *
 * SERVICES. The registry is keyed by service name and outlives connections: when a client
 * goes away (closed, killed, watchdog), each service it registered is reported down through
 * health_cb (detail "process disconnected" or "watchdog: no ping for N ms") and stays in
 * the registry, down, until some client registers the name again (the newest registration
 * wins, and a HEALTH from the former owner is then ignored; a client re-registering on
 * reconnect takes its services back). A registration starts the service up.
 *
 * COMMANDS. SERVE, RELEASE, STOP_SERVICES and START_SERVICES get a command id (non-zero,
 * increasing) and a deadline; ack_cb reports exactly once per (client, command): the
 * engine's result, -ETIMEDOUT at the deadline, -ENOTCONN if the client went away first, or
 * -ECANCELED when the server closes. Sent to SRM_IPC_CLIENT_ALL, one command id covers
 * every client that had said HELLO, each acknowledging on its own. A late ACK is ignored
 * (counted). Messages the client's ring cannot take now are queued (at most
 * SRM_IPC_QUEUE_MAX per client; a queued LEASE is replaced by a newer one) and retried.
 *
 * STALLS. If the loop itself stalled (srmd stopped or starved: the deadline timer ran more
 * than half the shortest watchdog interval late, 50 ms at least), the silence of clients
 * during the stall proves nothing: every watchdog window restarts, command deadlines move
 * by the stall, and what the clients sent meanwhile is read before anyone is judged.
 * ------------------------------------------------------------------------------------- */

#define SRM_IPC_CLIENT_ALL  0u
#define SRM_IPC_QUEUE_MAX   256
#define SRM_IPC_CLIENTS_MAX 64

struct srm_ipc_server;

/* A client as the server sees it. */
struct srm_ipc_client_info {
    uint32_t id; /* server-assigned, non-zero, never reused */
    pid_t pid;   /* from the socket credentials */
    uid_t uid;
    gid_t gid;
    bool hello; /* HELLO received (name and incarnation valid) */
    char name[SRM_IPC_NAME_MAX + 1];
    uint64_t incarnation;
    uint64_t connected_ms; /* uv_now() at accept */
    uint64_t last_ping_ms; /* uv_now() at the last PING (or HELLO) */
    uint32_t ping_ms;      /* watchdog parameters in force for this client */
    uint8_t misses;
    bool have_serving;              /* serving below was reported */
    struct srm_ipc_serving serving; /* the client's last SERVING report */
};

/* A registered service. */
struct srm_ipc_service_info {
    char name[SRM_IPC_NAME_MAX + 1];
    uint32_t client; /* registering client; 0 once it went away */
    bool critical;
    bool up;
    char detail[SRM_IPC_DETAIL_MAX + 1];
    uint64_t since_ms; /* uv_now() when `up` last changed or registered */
};

struct srm_ipc_server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t refused;         /* connections refused by the access list */
    uint64_t malformed;       /* clients disconnected for a protocol violation */
    uint64_t watchdog_misses; /* clients disconnected by the watchdog */
    uint64_t late_acks;       /* ACKs of unknown or finished commands */
    uint64_t queued;          /* messages that waited in a client's queue */
    uint64_t dropped;         /* messages not sent: queue full */
    uint64_t stalls;          /* loop stalls detected */
};

/* A client said HELLO (info->hello is true). */
typedef void srm_ipc_connected_cb(struct srm_ipc_server *s,
                                  const struct srm_ipc_client_info *client, void *data);
/*
 * A client is gone. reason: 0 closed by the client (or it died: killed, crashed);
 * -ETIMEDOUT watchdog or HELLO timeout; SRM_EBADMSG / SRM_EIPC_VERSION / -EMFILE protocol
 * violation; -ECONNABORTED srm_ipc_server_disconnect(); -ECANCELED the server is closing.
 * Called only for clients that said HELLO; the services are reported down (health_cb) and
 * its pending commands acknowledged (-ENOTCONN) before this.
 */
typedef void srm_ipc_disconnected_cb(struct srm_ipc_server *s,
                                     const struct srm_ipc_client_info *client, int reason,
                                     void *data);
/* A connection was refused by the access list (err -EPERM) or because SRM_IPC_CLIENTS_MAX
 * clients are connected (err -EMFILE). For srmd to log and count. */
typedef void srm_ipc_refused_cb(struct srm_ipc_server *s, pid_t pid, uid_t uid, gid_t gid, int err,
                                void *data);
/* A service was registered (or re-registered). */
typedef void srm_ipc_service_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *svc,
                                void *data);
/* A service went up or down (also when its client went away). Called only on a change, and
 * on every HEALTH down even if it was already down (the detail may have changed). */
typedef void srm_ipc_health_cb(struct srm_ipc_server *s, const struct srm_ipc_service_info *svc,
                               void *data);
/* The outcome of a command (see COMMANDS). detail is "" when none; borrowed for the call. */
typedef void srm_ipc_ack_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *client,
                            uint32_t cmd_id, enum srm_ipc_type cmd, int result, const char *detail,
                            void *data);
typedef void srm_ipc_counters_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *client,
                                 const struct srm_ipc_counters *counters, void *data);
typedef void srm_ipc_stale_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *client,
                              const struct srm_ipc_stale *stale, void *data);
/* A SERVING report (also available later in client->serving). */
typedef void srm_ipc_serving_cb(struct srm_ipc_server *s, const struct srm_ipc_client_info *client,
                                const struct srm_ipc_serving *serving, void *data);
typedef void srm_ipc_close_cb(struct srm_ipc_server *s, void *data);

struct srm_ipc_server_options {
    const char *name;        /* IPC name (abstract socket), required, 1..64 of the name
                                set; copied */
    const uid_t *allow_uids; /* accepted uids; copied. With both lists empty only the
                                server's own uid is accepted. */
    size_t n_allow_uids;
    const gid_t *allow_gids; /* accepted gids (primary group of the client); copied */
    size_t n_allow_gids;
    uint32_t node_id;      /* sent in WELCOME: this node, required (non-zero) */
    uint32_t peer_node_id; /* its group peer, 0 if none */
    const char *node_name; /* sent in WELCOME; NULL or "" allowed; copied */
    const char *peer_name;
    uint32_t ping_ms;                   /* watchdog interval for new clients; 0: 1000 */
    uint8_t misses;                     /* pings that may be missed; 0: 3 */
    uint32_t hello_timeout_ms;          /* 0: 5000 */
    uint32_t cmd_timeout_ms;            /* default deadline of commands given timeout 0; 0: 10000 */
    srm_ipc_connected_cb *connected_cb; /* each may be NULL */
    srm_ipc_disconnected_cb *disconnected_cb;
    srm_ipc_refused_cb *refused_cb;
    srm_ipc_service_cb *service_cb;
    srm_ipc_health_cb *health_cb;
    srm_ipc_ack_cb *ack_cb;
    srm_ipc_counters_cb *counters_cb;
    srm_ipc_stale_cb *stale_cb;
    srm_ipc_serving_cb *serving_cb;
    void *data; /* passed to every callback */
};

/*
 * Creates the server on loop and starts listening at once (the name is taken until the
 * server is closed or the process exits).
 * Returns 0 and *ret_server (release with srm_ipc_server_close), or
 *   -EINVAL        loop, opts, ret_server NULL, a bad name, node_id 0, watchdog parameters
 *                  out of bounds;
 *   -EADDRINUSE    another process serves that name in this network namespace;
 *   -ENOMEM, or a negative errno from libqb or libuv.
 */
int srm_ipc_server_new(uv_loop_t *loop, const struct srm_ipc_server_options *opts,
                       struct srm_ipc_server **ret_server);

/*
 * Closes the server. From the next loop iteration (never from within this call, so it is
 * safe from any callback): pending commands are reported with -ECANCELED, every client is
 * disconnected (services reported down, disconnected_cb with -ECANCELED), the name is
 * released; once the libuv handles are closed, close_cb (may be NULL) runs and the memory
 * is freed. Do not call any other function on s after this call. Accepts NULL.
 */
void srm_ipc_server_close(struct srm_ipc_server *s, srm_ipc_close_cb *close_cb, void *data);

/*
 * Commands. client is a client id or SRM_IPC_CLIENT_ALL (every client that said HELLO).
 * timeout_ms 0 takes the default (cmd_timeout_ms; for RELEASE, drain_ms + cmd_timeout_ms).
 * Each returns the number of clients the command went to (>= 0; 0 with ALL and nobody
 * connected) and *ret_cmd_id (may be NULL; set even when sent to nobody), or
 *   -EINVAL        a field out of bounds (part 0, epoch 0, lease 0 or too long, lower >
 *                  upper, ...);
 *   SRM_ENOTFOUND  no such client, or it has not said HELLO;
 *   -ENOBUFS       the client's queue is full (the command was not sent to it; with ALL,
 *                  the others got it and ack_cb reports -ENOBUFS for that client later);
 *   -ENOMEM;
 *   -ECANCELED     the server is closing.
 * home_name: name of the partition's node for the engine's user lookup; NULL or "".
 */
int srm_ipc_server_serve(struct srm_ipc_server *s, uint32_t client, uint32_t part, uint64_t epoch,
                         uint32_t lease_ms, const char *home_name, uint32_t timeout_ms,
                         uint32_t *ret_cmd_id);
int srm_ipc_server_release(struct srm_ipc_server *s, uint32_t client, uint32_t part,
                           uint32_t drain_ms, uint32_t relogin_lower_s, uint32_t relogin_upper_s,
                           uint32_t timeout_ms, uint32_t *ret_cmd_id);
int srm_ipc_server_stop_services(struct srm_ipc_server *s, uint32_t client, uint32_t timeout_ms,
                                 uint32_t *ret_cmd_id);
int srm_ipc_server_start_services(struct srm_ipc_server *s, uint32_t client, uint32_t timeout_ms,
                                  uint32_t *ret_cmd_id);

/*
 * Renews (or with lease_ms 0 ends) the lease of one client or all: the engine may serve
 * until now + lease_ms, now being this call's CLOCK_MONOTONIC (carried in the message: a
 * renewal delivered late extends nothing beyond that). SERVE sets the lease the same way.
 * Not acknowledged. Renew at least every lease/4 so that a delayed renewal does not end
 * the lease. Returns the number of clients, or -EINVAL (lease over SRM_IPC_LEASE_MAX_MS),
 * SRM_ENOTFOUND, -ENOBUFS, -ECANCELED.
 */
int srm_ipc_server_lease(struct srm_ipc_server *s, uint32_t client, uint32_t lease_ms);

/* Changes the watchdog of one client or all (and the default for new clients when client is
 * ALL). The old deadline stays in force until the client had one new interval to comply.
 * Returns the number of clients, or -EINVAL, SRM_ENOTFOUND, -ECANCELED. */
int srm_ipc_server_watchdog_set(struct srm_ipc_server *s, uint32_t client, uint32_t ping_ms,
                                uint8_t misses);

/* Disconnects a client (e.g. a misbehaving one); reported with reason -ECONNABORTED.
 * 0, SRM_ENOTFOUND. */
int srm_ipc_server_disconnect(struct srm_ipc_server *s, uint32_t client);

/* Copies up to cap clients (HELLO said or not) into arr; *ret_n is the number connected
 * (may exceed cap). 0, -EINVAL. */
int srm_ipc_server_clients(struct srm_ipc_server *s, struct srm_ipc_client_info *arr, size_t cap,
                           size_t *ret_n);
/* One client. 0, SRM_ENOTFOUND. */
int srm_ipc_server_client_get(struct srm_ipc_server *s, uint32_t client,
                              struct srm_ipc_client_info *ret_info);
/* Copies up to cap services (sorted by name) into arr; *ret_n is how many are known. */
int srm_ipc_server_services(struct srm_ipc_server *s, struct srm_ipc_service_info *arr, size_t cap,
                            size_t *ret_n);
/* One service by name. 0, SRM_ENOTFOUND. */
int srm_ipc_server_service_get(struct srm_ipc_server *s, const char *name,
                               struct srm_ipc_service_info *ret_info);
/* Counters since creation. */
void srm_ipc_server_stats(struct srm_ipc_server *s, struct srm_ipc_server_stats *ret_stats);

/* CLOCK_MONOTONIC in milliseconds: the clock of lease deadlines (sent_mono_ms). */
uint64_t srm_ipc_mono_ms(void);

#endif
