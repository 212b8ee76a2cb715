/*
 * The node core: what srmd runs around the state machine.
 *
 * Pure like fsm/: no I/O, no clock, no threads; time is passed in (milliseconds of a
 * monotonic clock) and every action goes out through the callbacks of struct
 * srm_core_io. srmd drives it from Corosync (heartbeat/), its protocol engines, its
 * datastore and its admin API; the simulator (tests/sim) drives the same code from its
 * models, so every random fault schedule exercises what the daemon runs.
 *
 * What it does:
 *   - feeds the state machine the facts it hears (peer reports, losses, quorum and
 *     membership, critical services after their down delay, datastore, HA flag, admin
 *     operations, timers) and carries out its effects through the callbacks;
 *   - exchanges reports with the peer: each carries the sender's state, which users it
 *     serves and wants, a sequence number and the acknowledgement of the peer's (per
 *     incarnation); a report is sent whenever its content changes and an acknowledgement
 *     whenever the peer's changes, so both sides know what the other has seen;
 *   - runs the ownership executor: srm_fsm_own_plan() decides, the callbacks acquire or
 *     release users, srm_core_op_done() reports the outcome; takeover and takeback
 *     completion and failure go back to the machine;
 *   - times the fences (how long a lost peer must have been gone before its users are
 *     taken), the critical service down delay and the automatic fallback;
 *   - after a crash, tells the caller when the engines' lease may be renewed again.
 *
 * Callbacks must not call back into the core; the core finishes its own work (it may call
 * several callbacks) before it returns.
 */
#ifndef SRM_CORE_H
#define SRM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srm_fsm.h"

/* Largest report payload (srm_core_io.send); leaves room in a heartbeat envelope. */
#define SRM_CORE_PAYLOAD_MAX 1024
/* Largest opaque extension the caller may attach to reports (status for its peer). */
#define SRM_CORE_EXT_MAX 768

struct srm_core;

struct srm_core_params {
    uint64_t cs_down_delay_ms;       /* SPEC §6 critical service down delay: 90 s */
    bool auto_fallback;              /* SPEC §6 enable automatic fallback: false */
    uint64_t auto_fallback_delay_ms; /* 30 min */
    /* How long a lost peer must have been gone before its users are taken over, by how it
     * was lost: its node left the membership (the cut-off side loses quorum in the same
     * ring change: a short margin for skew), its srmd died (the engines' lease plus a
     * margin), keepalives stopped (nothing: the timeout is longer than the lease). */
    uint64_t fence_node_ms;
    uint64_t fence_process_ms;
    uint64_t fence_timeout_ms;
};

/* Defaults: SPEC §6, fence_node 500 ms, fence_process 6 s (a 5 s lease), fence_timeout 0. */
void srm_core_params_default(struct srm_core_params *ret_params);

/* Critical services, as the caller sees them. */
enum srm_core_svc {
    SRM_CORE_SVC_UP = 0,       /* all critical services run */
    SRM_CORE_SVC_STARTING,     /* being started */
    SRM_CORE_SVC_DOWN,         /* one is down (since the time given) */
    SRM_CORE_SVC_START_FAILED, /* a start attempt failed */
    SRM_CORE_SVC_STOPPED,      /* stopped on purpose */
};

struct srm_core_io {
    /* Send this report to the peer now (bytes copied by the callee). */
    void (*send_cb)(struct srm_core *core, const void *payload, size_t len, void *data);
    /* Start serving these users (SRM_FSM_PART_*): take ownership with a new epoch, grant the
     * engines. Report the outcome with srm_core_op_done(). */
    void (*acquire_cb)(struct srm_core *core, unsigned parts, void *data);
    /* Stop serving these users: drain the engines, clients re-login within the window.
     * Report completion with srm_core_op_done(); a release does not fail (escalate: stop
     * the engines) before reporting it. */
    void (*release_cb)(struct srm_core *core, unsigned parts, void *data);
    /* Start (true) or stop (false) the node's critical services. */
    void (*services_cb)(struct srm_core *core, bool start, void *data);
    /* A step of the machine was taken (or refused, rc < 0): log it, persist on
     * SRM_FSM_EFFECT(PERSIST) (state, reason and srm_core_fsm()->epoch), raise or clear the
     * alarm, count it, tell clients to re-login on SRM_FSM_EFFECT(RELOGIN). */
    void (*step_cb)(struct srm_core *core, enum srm_fsm_event_type type, int rc,
                    const struct srm_fsm_step *step, void *data);
    /* After a start that followed a crash: the peer has heard this incarnation and claims
     * none of this node's users; the engines' lease may be renewed again. */
    void (*lease_cb)(struct srm_core *core, void *data);
    void *data;
};

/* What the previous run left, and the facts at start. */
struct srm_core_start {
    enum srm_fsm_start_kind kind; /* fresh, resume (state, reason, epoch below) or corrupt */
    enum srm_fsm_state state;
    enum srm_fsm_reason reason;
    uint32_t epoch;
    /* The previous run ended without announcing it (crash, kill -9, power loss): the peer
     * may be about to take this node's users; hold the engines' lease until it heard us. */
    bool after_crash;
    bool ha_enabled;
    bool quorate;
    bool peer_present; /* the peer's node is in the membership */
    bool db_ok;
    enum srm_core_svc svc;
    uint64_t svc_down_since_ms;
    unsigned serving; /* users the engines serve right now (they outlive srmd) */
};

/*
 * Creates a core. incarnation identifies this process (random, never 0; the heartbeat's).
 * Returns 0, -EINVAL (missing callbacks, incarnation 0) or -ENOMEM. Nothing happens until
 * srm_core_start().
 */
int srm_core_new(const struct srm_core_params *params, const struct srm_core_io *io,
                 uint64_t incarnation, struct srm_core **ret_core);
void srm_core_free(struct srm_core *core);

/* Starts the machine (SRM_FSM_EVENT_START) and sends the first report. Returns 0 or the
 * machine's error (-EINVAL for an out-of-range persisted state). */
int srm_core_start(struct srm_core *core, uint64_t now_ms, const struct srm_core_start *start);

/* ---- what the heartbeat layer hears ---------------------------------------------------- */

/*
 * A report from the peer (a heartbeat payload). incarnation is the sender's process
 * incarnation; back is true when the heartbeat layer reports the peer back in view (after
 * a loss, or restarted). Returns 0, or SRM_EBADFRAME for a malformed payload (nothing
 * recorded; the caller counts it).
 */
int srm_core_peer_report(struct srm_core *core, uint64_t now_ms, uint64_t incarnation, bool back,
                         const void *payload, size_t len);

/* The peer was lost (heartbeat's loss kind). */
void srm_core_peer_lost(struct srm_core *core, uint64_t now_ms, enum srm_fsm_loss kind);

/*
 * The membership changed: whether the peer's node is in it, whether this node is quorate,
 * and whether this is a new ring (every membership change is one; the peer may have
 * restarted meanwhile). Quorum changes reach the machine with the peer's presence.
 */
void srm_core_membership(struct srm_core *core, uint64_t now_ms, bool peer_present, bool quorate);

/*
 * srmd stalled (its loop did not run for a while: SIGSTOP, swap, a hung disk). Whatever the
 * peer acknowledged before no longer counts: the handshake starts over. serving: what the
 * engines serve now (srmd knows whether the lease it granted ran out meanwhile).
 *
 * Then deliver what queued up during the stall (reports, membership changes, notices), in
 * order: the machine follows them, but the core sends nothing and moves no users, since
 * those facts are history. srm_core_resume_done() ends that and acts on where things stand.
 */
void srm_core_resume(struct srm_core *core, uint64_t now_ms, unsigned serving);
void srm_core_resume_done(struct srm_core *core, uint64_t now_ms);

/* ---- what the node sees ----------------------------------------------------------------- */

/* The critical services' state; since_ms is when one went down (SRM_CORE_SVC_DOWN). */
void srm_core_services(struct srm_core *core, uint64_t now_ms, enum srm_core_svc svc,
                       uint64_t since_ms);
void srm_core_datastore(struct srm_core *core, uint64_t now_ms, bool ok);
void srm_core_ha(struct srm_core *core, uint64_t now_ms, bool enabled);
/* The engines stopped serving these users by themselves (lease ran out, quorum fence,
 * services stopped). An acquisition or release under way is abandoned: do not report its
 * completion. */
void srm_core_engines_stopped(struct srm_core *core, uint64_t now_ms, unsigned parts);

/* The acquire or release last requested finished: err 0, or a negative code when an
 * acquisition failed (the takeover or takeback fails). */
void srm_core_op_done(struct srm_core *core, uint64_t now_ms, int err);

/* An admin operation (SRM_FSM_EVENT_ADMIN_FAILOVER, _FALLBACK, _RECOVER). Returns 0, or
 * SRM_EREFUSED with the reason in *ret_why (static string). */
int srm_core_admin(struct srm_core *core, uint64_t now_ms, enum srm_fsm_event_type op,
                   const char **ret_why);

/* An internal error of the daemon: the node runs in failed mode (SPEC §4 row 21). */
void srm_core_internal_error(struct srm_core *core, uint64_t now_ms);

/* Runs due timers. Returns the next deadline (UINT64_MAX: none). */
uint64_t srm_core_tick(struct srm_core *core, uint64_t now_ms);

/* Sets the opaque extension attached to every report from now on (status for the peer:
 * users, replication positions, services). len <= SRM_CORE_EXT_MAX. Sends a report if it
 * changed. Returns 0 or -EINVAL. */
int srm_core_set_ext(struct srm_core *core, uint64_t now_ms, const void *ext, size_t len);

/* Sends a report now (keepalive interval). */
void srm_core_send(struct srm_core *core, uint64_t now_ms);

/* Changes parameters (a configuration reload). */
void srm_core_set_params(struct srm_core *core, uint64_t now_ms,
                         const struct srm_core_params *params);

/* ---- what it knows --------------------------------------------------------------------- */

const struct srm_fsm *srm_core_fsm(const struct srm_core *core);
/* Users the engines serve now (SRM_FSM_PART_*), and those being acquired. */
unsigned srm_core_serving(const struct srm_core *core);
unsigned srm_core_acquiring(const struct srm_core *core);
/* True when no operation is under way and the plan has nothing to do. */
bool srm_core_settled(const struct srm_core *core, uint64_t now_ms);
/* The peer's last extension (borrowed until the next report; len 0 if none). */
const void *srm_core_peer_ext(const struct srm_core *core, size_t *ret_len);
/* The peer's incarnation as last heard (0 if never). */
uint64_t srm_core_peer_incarnation(const struct srm_core *core);

/* ---- the report on the wire --------------------------------------------------------------- */

struct srm_core_wire {
    struct srm_fsm_report report;
    uint32_t seq;     /* sender's report sequence, from 1 per incarnation */
    uint64_t ack_inc; /* the receiver incarnation whose reports `ack` counts */
    uint32_t ack;     /* last report sequence of that incarnation the sender received */
    const void *ext;  /* borrowed from the decoded buffer */
    size_t ext_len;
};

/* Encodes a report; returns its length, or -ENOSPC if buf is too small. */
int srm_core_wire_encode(const struct srm_core_wire *w, void *buf, size_t size);
/* Decodes one; strict (version, lengths, ranges). Returns 0 or SRM_EBADFRAME. */
int srm_core_wire_decode(const void *buf, size_t len, struct srm_core_wire *ret_wire);

#endif
