/*
 * The recovery-manager state machine of one node.
 *
 * Pure: no I/O, no clock, no globals, no allocation. The daemon (or the simulator) owns a
 * struct srm_fsm, feeds it events that carry every fact they depend on (peer reports,
 * loss kinds, service health), and carries out the effects that srm_fsm_step() returns.
 * Time never enters the module: timers (keepalive timeout, critical service down delay,
 * automatic fallback) run in the caller and arrive here as events.
 *
 * The machine is one table indexed by (state, event); each cell lists alternatives, each
 * with a guard, the next state, the next reason and a bitmask of effects, or an explicit
 * refusal that says why the event does not apply (srmctl prints it). The states and
 * reasons are those of SPEC.md §3; the pair table of SPEC.md §4 is what two machines
 * talking to each other produce (tests/sim/scenarios/row*.scn).
 *
 * Ownership. Each node is the home of one partition of users (SRM_FSM_PART_OWN); its
 * peer's users are SRM_FSM_PART_PEER. Which partitions a node should serve follows from
 * its state (srm_fsm_desired()), except that a node cut off from its peer without quorum
 * serves nothing, HA on or off; when it may actually start serving one is decided by
 * srm_fsm_own_plan(), the single rule both the daemon and the simulator use: a node
 * acquires a partition only when its peer reports that it neither serves nor claims it,
 * or when the peer is gone and this node holds quorum and the fence delay has passed.
 */
#ifndef SRM_FSM_H
#define SRM_FSM_H

#include <stdbool.h>
#include <stdint.h>

/* X(NAME, "display string as in SPEC.md §3") */
#define SRM_FSM_STATE_MAP(X)                                                                       \
    X(INITIALIZING, "Initializing")                                                                \
    X(IDLE, "Idle")                                                                                \
    X(NORMAL, "Normal")                                                                            \
    X(BACKUP_MODE, "Running in Backup Mode")                                                       \
    X(TAKING_OVER, "Taking Over")                                                                  \
    X(FAILING_OVER, "Failing Over")                                                                \
    X(FAILED_OVER, "Failed Over")                                                                  \
    X(FAILED_OVER_CS_DOWN, "Failed Over with Critical Services not Running")                       \
    X(TAKING_BACK, "Taking Back")                                                                  \
    X(FALLING_BACK, "Falling Back")                                                                \
    X(FAILED_MODE, "Running in Failed Mode")                                                       \
    X(BACKUP_ACTIVATED, "Backup Activated")                                                        \
    X(FAILING_OVER_AFFECTED, "Failing Over Affected Services")                                     \
    X(UNKNOWN, "Unknown")

#define SRM_FSM_REASON_MAP(X)                                                                      \
    X(NORMAL, "Normal")                                                                            \
    X(ADMIN_REQUEST, "Admin Request")                                                              \
    X(INITIALIZATION, "Initialization")                                                            \
    X(CS_DOWN, "Critical Service Down")                                                            \
    X(DB_FAILURE, "Database Failure")                                                              \
    X(PEER_DOWN, "Peer Down")                                                                      \
    X(PEER_REBOOT, "Peer Reboot")                                                                  \
    X(PEER_DOWN_INIT, "Peer Down During Initialization")                                           \
    X(CS_START_FAILURE, "Critical Service Startup Failure")                                        \
    X(TAKEOVER_FAILURE, "Takeover User Failure")                                                   \
    X(TAKEBACK_FAILURE, "Takeback User Failure")                                                   \
    X(AUTO_FALLBACK, "Automatic Fallback")                                                         \
    X(AUTO_RECOVER_DB, "Auto Recover Database Failure")                                            \
    X(AUTO_RECOVER_CS, "Auto Recover Critical Service Down")                                       \
    X(UNKNOWN, "Unknown")

/* X(NAME, "log name") */
#define SRM_FSM_EVENT_MAP(X)                                                                       \
    X(START, "start")                                                                              \
    X(PEER_KEEPALIVE, "peer-keepalive")                                                            \
    X(PEER_LOST, "peer-lost")                                                                      \
    X(PEER_BACK, "peer-back")                                                                      \
    X(CS_DOWN, "critical-service-down")                                                            \
    X(CS_UP, "critical-services-up")                                                               \
    X(CS_START_FAILED, "critical-service-start-failed")                                            \
    X(DB_FAILED, "database-failed")                                                                \
    X(DB_RECOVERED, "database-recovered")                                                          \
    X(ADMIN_FAILOVER, "admin-failover")                                                            \
    X(ADMIN_FALLBACK, "admin-fallback")                                                            \
    X(ADMIN_RECOVER, "admin-recover")                                                              \
    X(FALLBACK_TIMER, "automatic-fallback-timer")                                                  \
    X(TAKEOVER_DONE, "takeover-done")                                                              \
    X(TAKEOVER_FAILED, "takeover-failed")                                                          \
    X(TAKEBACK_DONE, "takeback-done")                                                              \
    X(TAKEBACK_FAILED, "takeback-failed")                                                          \
    X(HA_ENABLED, "ha-enabled")                                                                    \
    X(HA_DISABLED, "ha-disabled")                                                                  \
    X(QUORUM_LOST, "quorum-lost")                                                                  \
    X(QUORUM_REGAINED, "quorum-regained")                                                          \
    X(INTERNAL_ERROR, "internal-error")

/*
 * Effects the caller must carry out after a step, in this order. PERSIST, SEND_STATE and
 * the alarm effects are added by srm_fsm_step() itself whenever state or reason change.
 */
#define SRM_FSM_EFFECT_MAP(X)                                                                      \
    X(STOP_SERVICES, "stop-services")   /* stop this node's critical services */                   \
    X(START_SERVICES, "start-services") /* start them; CS_UP or CS_START_FAILED follows */         \
    X(HAND_OVER, "hand-over")           /* stop serving own users: the peer takes them */          \
    X(RELEASE, "release")               /* hand the peer's users back to the peer */               \
    X(TAKE_OVER, "take-over")           /* start serving the peer's users */                       \
    X(TAKE_BACK, "take-back")           /* start serving own users again */                        \
    X(RELOGIN, "relogin")               /* tell moved clients: re-login in [lower, upper] */       \
    X(RESTART, "restart")               /* re-initialise (manual recover) */                       \
    X(PERSIST, "persist")               /* write state and reason to stable storage */             \
    X(SEND_STATE, "send-state")         /* send a report to the peer now */                        \
    X(ALARM_RAISE, "alarm-raise")                                                                  \
    X(ALARM_CLEAR, "alarm-clear")

enum srm_fsm_state {
#define SRM__FSM_ENUM(name, str) SRM_FSM_STATE_##name,
    SRM_FSM_STATE_MAP(SRM__FSM_ENUM)
#undef SRM__FSM_ENUM
        SRM_FSM_STATE_MAX
};

enum srm_fsm_reason {
#define SRM__FSM_ENUM(name, str) SRM_FSM_REASON_##name,
    SRM_FSM_REASON_MAP(SRM__FSM_ENUM)
#undef SRM__FSM_ENUM
        SRM_FSM_REASON_MAX
};

enum srm_fsm_event_type {
#define SRM__FSM_ENUM(name, str) SRM_FSM_EVENT_##name,
    SRM_FSM_EVENT_MAP(SRM__FSM_ENUM)
#undef SRM__FSM_ENUM
        SRM_FSM_EVENT_MAX
};

enum srm_fsm_effect_bit {
#define SRM__FSM_ENUM(name, str) SRM_FSM_EFFECT_BIT_##name,
    SRM_FSM_EFFECT_MAP(SRM__FSM_ENUM)
#undef SRM__FSM_ENUM
        SRM_FSM_EFFECT_BIT_MAX
};

#define SRM_FSM_EFFECT(name) (1u << SRM_FSM_EFFECT_BIT_##name)

/* Partitions, seen from the node that holds the struct srm_fsm. */
#define SRM_FSM_PART_OWN  1u
#define SRM_FSM_PART_PEER 2u
#define SRM_FSM_PART_ALL  3u

/* How the peer was lost; decides the reason shown and how long the fence delay is. */
enum srm_fsm_loss {
    SRM_FSM_LOSS_NODE = 0, /* its node left the membership: power, crash, reboot, cut off */
    SRM_FSM_LOSS_PROCESS,  /* its srmd left without announcing a restart (crash, kill -9) */
    SRM_FSM_LOSS_TIMEOUT,  /* no keepalive within the (initialization) keepalive timeout */
    SRM_FSM_LOSS_MAX
};

/* What this node knows of its critical services. */
enum srm_fsm_cs {
    SRM_FSM_CS_PENDING = 0, /* starting, or not yet reported since start */
    SRM_FSM_CS_UP,          /* all critical services run */
    SRM_FSM_CS_DOWN,        /* one has been down past the delay, or failed to start */
    SRM_FSM_CS_STOPPED,     /* stopped on purpose by this machine (manual failover, fence) */
};

enum srm_fsm_peer_status {
    SRM_FSM_PEER_UNKNOWN = 0, /* not heard since this machine started */
    SRM_FSM_PEER_VISIBLE,
    SRM_FSM_PEER_LOST,
};

/*
 * What a node tells its peer (keepalive payload), in the SENDER's frame: serves and wants
 * use SRM_FSM_PART_OWN for the sender's own users. Produced by srm_fsm_report().
 */
struct srm_fsm_report {
    uint8_t state;  /* enum srm_fsm_state; unknown values are read as SRM_FSM_STATE_UNKNOWN */
    uint8_t reason; /* enum srm_fsm_reason */
    uint8_t serves; /* SRM_FSM_PART_* the sender serves now */
    uint8_t wants;  /* SRM_FSM_PART_* the sender's state wants it to serve */
    bool cs_up;     /* all its critical services run */
    bool db_ok;
    bool ha_enabled;
    bool recovering; /* it is initializing because an admin asked for a recover */
    uint32_t epoch;  /* generation of the sender's claim on users (see struct srm_fsm) */
    uint32_t phase;  /* recovers the sender has seen (see struct srm_fsm) */
};

/* What the machine was started from (the previous run's persisted state). */
enum srm_fsm_start_kind {
    SRM_FSM_START_FRESH = 0, /* nothing persisted: first start, or after a recover */
    SRM_FSM_START_RESUME,    /* state and reason persisted by the previous run */
    SRM_FSM_START_CORRUPT,   /* something was persisted but cannot be read */
};

struct srm_fsm_event {
    enum srm_fsm_event_type type;
    union {
        struct {
            enum srm_fsm_start_kind kind;
            enum srm_fsm_state state;   /* persisted state, for SRM_FSM_START_RESUME */
            enum srm_fsm_reason reason; /* persisted reason, for SRM_FSM_START_RESUME */
            uint32_t epoch;             /* persisted epoch, for SRM_FSM_START_RESUME */
            bool ha_enabled;
            bool quorate;
            bool db_ok;
            enum srm_fsm_cs cs;
        } start;                    /* SRM_FSM_EVENT_START */
        struct srm_fsm_report peer; /* SRM_FSM_EVENT_PEER_KEEPALIVE, SRM_FSM_EVENT_PEER_BACK */
        enum srm_fsm_loss loss;     /* SRM_FSM_EVENT_PEER_LOST */
        struct {
            /* The peer's node is in the membership that brought the change. */
            bool peer_present;
        } quorum; /* SRM_FSM_EVENT_QUORUM_LOST, SRM_FSM_EVENT_QUORUM_REGAINED */
    } u;
};

/*
 * The machine. Caller-owned; fields are readable, but change only through srm_fsm_init()
 * and srm_fsm_step() (tests may set them to place the machine in a given situation).
 */
struct srm_fsm {
    enum srm_fsm_state state;
    enum srm_fsm_reason reason;
    bool started;
    bool ha_enabled;
    bool quorate;
    /* The peer's node is in the membership (from quorum events and reports); a peer lost
     * by any kind of loss is absent until it is heard again. A takeover decided because
     * quorum came back or HA was enabled needs the peer absent: a node that rejoined is
     * heard within moments (and timed out again if it stays silent). */
    bool peer_present;
    bool db_ok;
    bool recovering; /* in INITIALIZING because of a manual recover */
    enum srm_fsm_cs cs;
    enum srm_fsm_peer_status peer_status;
    /*
     * Claim generation. Entering TAKING_OVER or BACKUP_ACTIVATED sets it one above the
     * highest this node has seen. When the two nodes claim each other's users (one took
     * over while the other was out of sight: paused, restarted, cut off), the older claim
     * yields; equal claims mean both took over at once (a split brain) and the group fails.
     * Persisted with the state.
     */
    uint32_t epoch;
    /*
     * Recover phase. A manual recover starts a new phase (one above the highest seen);
     * reports carry it. A report from an older phase was sent before its sender learnt of
     * the recover: it is refused, so that the two nodes never chase each other's stale
     * reports. A newer phase is adopted. The caller still counts a refused report as a
     * sign of life (keepalive timer, peer in sight).
     */
    uint32_t phase;
    /* The phase in which this node last re-initialized for a recover: it follows a peer's
     * recover once per phase. */
    uint32_t recover_phase;
    enum srm_fsm_loss peer_loss; /* why the peer was lost; meaningful when LOST */
    struct srm_fsm_report peer;  /* the peer's last report; meaningful once it was VISIBLE */
};

/* The outcome of one step. */
struct srm_fsm_step {
    enum srm_fsm_state from;
    enum srm_fsm_state to;
    enum srm_fsm_reason from_reason;
    enum srm_fsm_reason to_reason;
    uint32_t effects; /* SRM_FSM_EFFECT(...) bits */
    /*
     * Static string: the rule that fired (why this transition), or, when the step is
     * refused, why the event does not apply in this state. Never NULL after a step.
     */
    const char *why;
};

/* Puts the machine in INITIALIZING / Initialization, not started. */
void srm_fsm_init(struct srm_fsm *fsm);

/*
 * Feeds one event.
 *
 * Returns 0 when the event was accepted (the machine may stay in the same state; facts the
 * event carries are recorded), SRM_EREFUSED when the event does not apply in the current
 * state (nothing changes; ret_step->why says why), -EINVAL when the event is malformed
 * (unknown type, or START with an out-of-range persisted state). Every event other than
 * START is refused until START was accepted.
 *
 * ret_step may be NULL. On success and on refusal it is filled in.
 */
int srm_fsm_step(struct srm_fsm *fsm, const struct srm_fsm_event *ev,
                 struct srm_fsm_step *ret_step);

/*
 * Whether an admin operation (SRM_FSM_EVENT_ADMIN_FAILOVER, _FALLBACK, _RECOVER, or any other
 * event) would be accepted now, without changing anything. Returns 0 or SRM_EREFUSED;
 * *ret_why (if not NULL) gets the rule or the refusal text.
 */
int srm_fsm_check(const struct srm_fsm *fsm, enum srm_fsm_event_type type, const char **ret_why);

/*
 * The partitions this node's state wants it to serve, given those it serves now (some
 * states keep whatever they hold). A node that is cut off from its peer and has lost
 * quorum wants nothing: it fences itself.
 */
unsigned srm_fsm_desired(const struct srm_fsm *fsm, unsigned actual);

/* What the ownership executor may do now. */
struct srm_fsm_own_plan {
    unsigned release; /* partitions to stop serving now */
    unsigned acquire; /* partitions it may start serving now */
    unsigned blocked; /* wanted but not yet allowed (peer still serves or claims it, ...) */
    /* SRM_FSM_EVENT_TAKEOVER_DONE / _TAKEBACK_DONE when the transition's ownership is
     * complete and the executor should feed that event; SRM_FSM_EVENT_MAX otherwise. */
    enum srm_fsm_event_type complete;
};

/*
 * The one rule for moving users between the two nodes.
 *
 * actual: partitions this node serves now or is acquiring (report them as served from
 * the moment the acquisition starts). fence_elapsed: whether the peer has been out of
 * sight for at least the fence delay that goes with how it was lost (the caller times
 * it). peer_fresh: whether the peer's last report was sent after it received this node's
 * first report that carried its current wants (reports carry a sequence number and
 * acknowledge the peer's; the caller compares them).
 *
 * With the peer in sight, a partition is acquired only on a fresh report in which the
 * peer does not serve it and, for the peer's own users, does not want them either: the
 * home node wins a tie. Out of sight, only with quorum and after the fence delay. Either
 * way this node's critical services must be up.
 */
void srm_fsm_own_plan(const struct srm_fsm *fsm, unsigned actual, bool fence_elapsed,
                      bool peer_fresh, struct srm_fsm_own_plan *ret_plan);

/* The report to send to the peer. */
void srm_fsm_report(const struct srm_fsm *fsm, unsigned actual, struct srm_fsm_report *ret_report);

/*
 * Whether the automatic-fallback timer should run: this node is Failed Over and healthy,
 * its peer serves its users in backup mode, HA is on. The caller arms the timer when this
 * becomes true (if the parameter is enabled), cancels it when it becomes false, and feeds
 * SRM_FSM_EVENT_FALLBACK_TIMER when it fires.
 */
bool srm_fsm_fallback_eligible(const struct srm_fsm *fsm);

/* Whether (state, reason) is an alarm condition (failed, unknown, or failed over for a
 * reason other than an admin's request). */
bool srm_fsm_alarm(enum srm_fsm_state state, enum srm_fsm_reason reason);

/* SPEC.md §3 kind: transient states are passed through, stable ones are waited in. */
bool srm_fsm_state_is_transient(enum srm_fsm_state state);

/* Display strings; "?" for out-of-range values. Static, never NULL. */
const char *srm_fsm_state_name(enum srm_fsm_state state);
const char *srm_fsm_reason_name(enum srm_fsm_reason reason);
const char *srm_fsm_event_name(enum srm_fsm_event_type type);
const char *srm_fsm_effect_name(enum srm_fsm_effect_bit bit);
const char *srm_fsm_loss_name(enum srm_fsm_loss loss);

/* Parse display strings (exact match, as in SPEC.md §3) or enum names ("BACKUP_MODE",
 * case-insensitive). Return 0 or -EINVAL; *ret untouched on failure. */
int srm_fsm_state_parse(const char *s, enum srm_fsm_state *ret_state);
int srm_fsm_reason_parse(const char *s, enum srm_fsm_reason *ret_reason);

/* Writes "effect1,effect2" into buf (always NUL-terminated); returns buf. */
char *srm_fsm_effects_format(uint32_t effects, char *buf, unsigned size);

/* Number of alternatives and refusals in the table, for the exhaustive walk. */
struct srm_fsm_table_stats {
    unsigned cells;        /* state x event cells */
    unsigned alternatives; /* guarded alternatives in all cells */
    unsigned refusals;     /* cells that end in a refusal */
    unsigned missing;      /* cells with neither: must be 0 */
};
void srm_fsm_table_stats(struct srm_fsm_table_stats *ret_stats);

#endif
