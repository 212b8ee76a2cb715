/*
 * The recovery-manager state machine: one table indexed by (state, event).
 *
 * Each cell is a list of alternatives tried in order. An alternative matches when the
 * peer's reported state is in its mask (if it has one; a mask needs a visible peer) and
 * its guard holds. Guards read only the machine, after the event's facts were recorded in
 * a copy of it. The first match gives the next state, the next reason and the effects; if
 * none matches, the cell's refusal applies. A cell with neither is a bug that the
 * exhaustive walk (tests/fsm/test_fsm_walk.c) catches.
 *
 * Comments cite the pair table rows of SPEC.md §4 that a rule produces.
 */
#include "srm_fsm.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "srm_error.h"

#define S(name)  SRM_FSM_STATE_##name
#define R(name)  SRM_FSM_REASON_##name
#define E(name)  SRM_FSM_EVENT_##name
#define EF(name) SRM_FSM_EFFECT(name)
#define P(name)  (1u << SRM_FSM_STATE_##name)

/* Pseudo values of struct alt's next and reason fields. */
#define SAME 0xfe /* stay in the current state */
#define END  0xff /* end of an alternative list */
enum {
    R_KEEP = 0xf0, /* keep the current reason */
    R_PEER,        /* the reason the peer reports */
    R_LOSS,        /* Peer Reboot when its node left, Peer Down otherwise */
    R_FAULT,       /* Database Failure if the datastore failed, else Critical Service Down */
};

typedef bool guard_fn(const struct srm_fsm *f);

struct alt {
    uint32_t peer;   /* mask of peer states (P(...)); 0 = any, including no visible peer */
    guard_fn *guard; /* NULL = always */
    uint8_t next;
    uint8_t reason;
    uint16_t effects;
    const char *why;
};

struct cell {
    const struct alt *alts; /* terminated by next == END; NULL = none */
    const char *refuse;     /* refusal when no alternative matches */
};

/* ---- facts ----------------------------------------------------------------------- */

static bool visible(const struct srm_fsm *f)
{
    return f->peer_status == SRM_FSM_PEER_VISIBLE;
}

static bool lost(const struct srm_fsm *f)
{
    return f->peer_status == SRM_FSM_PEER_LOST;
}

static bool healthy(const struct srm_fsm *f)
{
    return f->cs == SRM_FSM_CS_UP && f->db_ok;
}

static bool faulty(const struct srm_fsm *f)
{
    return f->cs == SRM_FSM_CS_DOWN || !f->db_ok;
}

static bool pending(const struct srm_fsm *f)
{
    return !healthy(f) && !faulty(f);
}

static bool peer_healthy(const struct srm_fsm *f)
{
    return visible(f) && f->peer.cs_up && f->peer.db_ok;
}

/* The peer serves this node's users (its PEER bit) or its own (its OWN bit). */
static bool peer_serves_mine(const struct srm_fsm *f)
{
    return visible(f) && (f->peer.serves & SRM_FSM_PART_PEER);
}

static bool peer_serves_its(const struct srm_fsm *f)
{
    return visible(f) && (f->peer.serves & SRM_FSM_PART_OWN);
}

static bool fence_reason(enum srm_fsm_reason r)
{
    return r == R(PEER_DOWN) || r == R(PEER_REBOOT) || r == R(PEER_DOWN_INIT);
}

/* The peer is failed over and counts on this node to serve its users. A peer that is Idle
 * because it fenced itself (lost quorum and peer), or Failed Over with its services up,
 * does not: it takes its users back itself. */
static bool peer_expects_backup(const struct srm_fsm *f)
{
    const uint32_t m = P(IDLE) | P(FAILED_OVER_CS_DOWN) | P(FAILING_OVER);

    if (!visible(f) || !((1u << f->peer.state) & m))
        return false;
    return !(f->peer.state == S(IDLE) && fence_reason((enum srm_fsm_reason)f->peer.reason));
}

/* ---- guards ---------------------------------------------------------------------- */

static bool g_healthy(const struct srm_fsm *f)
{
    return healthy(f);
}

static bool g_not_recovering(const struct srm_fsm *f)
{
    return !f->recovering;
}

static bool g_recovering_peer(const struct srm_fsm *f)
{
    return f->peer.recovering && f->peer.phase > f->recover_phase;
}

static bool g_ha_off(const struct srm_fsm *f)
{
    return !f->ha_enabled;
}

/* INITIALIZING resolution. */
static bool g_init_backup_healthy(const struct srm_fsm *f)
{
    return peer_expects_backup(f) && f->ha_enabled && healthy(f);
}

static bool g_init_backup_pending(const struct srm_fsm *f)
{
    return peer_expects_backup(f) && f->ha_enabled && pending(f);
}

static bool g_init_backup_faulty(const struct srm_fsm *f)
{
    return peer_expects_backup(f) && f->ha_enabled && faulty(f);
}

static bool g_vis_healthy(const struct srm_fsm *f)
{
    return visible(f) && healthy(f);
}

static bool g_vis_pending(const struct srm_fsm *f)
{
    return visible(f) && pending(f);
}

static bool peer_can_take_mine(const struct srm_fsm *f)
{
    const uint32_t m = P(NORMAL) | P(INITIALIZING);

    return peer_healthy(f) && ((1u << f->peer.state) & m);
}

static bool g_vis_faulty_failover(const struct srm_fsm *f)
{
    return visible(f) && faulty(f) && f->ha_enabled && peer_can_take_mine(f);
}

static bool g_vis_faulty_ha_off(const struct srm_fsm *f)
{
    return visible(f) && faulty(f) && !f->ha_enabled;
}

static bool g_vis_faulty(const struct srm_fsm *f)
{
    return visible(f) && faulty(f);
}

static bool g_lost_ha_off_healthy(const struct srm_fsm *f)
{
    return lost(f) && f->quorate && !f->ha_enabled && healthy(f);
}

static bool g_lost_ha_off_faulty(const struct srm_fsm *f)
{
    return lost(f) && f->quorate && !f->ha_enabled && faulty(f);
}

static bool g_lost_no_quorum(const struct srm_fsm *f)
{
    return lost(f) && !f->quorate;
}

static bool g_lost_q_healthy(const struct srm_fsm *f)
{
    return lost(f) && f->ha_enabled && f->quorate && healthy(f);
}

static bool g_lost_q_faulty(const struct srm_fsm *f)
{
    return lost(f) && f->ha_enabled && f->quorate && faulty(f);
}

/* The peer is gone. These guards serve the "peer gone" lists below, which the events that
 * can make a takeover possible share: peer lost, quorum regained, HA enabled. A takeover
 * needs HA on, a lost peer and quorum. A fence needs no peer in sight and no quorum, HA
 * on or off: it is what makes the other side's takeover safe, and with HA off nobody
 * moves users but the quorum rule still decides who may serve. */
static bool g_fence(const struct srm_fsm *f)
{
    return !visible(f) && !f->quorate;
}

static bool g_ha_quorum(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && f->quorate;
}

static bool g_ha_quorum_faulty(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && f->quorate && faulty(f);
}

static bool g_quorum(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && f->quorate;
}

static bool g_quorum_healthy(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && f->quorate && healthy(f);
}

static bool g_cut_off(const struct srm_fsm *f)
{
    return !visible(f) && !f->quorate;
}

/* NORMAL. */
static bool g_ha_faulty_peer_takes(const struct srm_fsm *f)
{
    return f->ha_enabled && faulty(f) && peer_can_take_mine(f);
}

static bool g_ha_faulty(const struct srm_fsm *f)
{
    return f->ha_enabled && faulty(f);
}

static bool g_reason_fault_cleared(const struct srm_fsm *f)
{
    return healthy(f) && (f->reason == R(CS_DOWN) || f->reason == R(DB_FAILURE));
}

static bool g_peer_serves_mine_healthy(const struct srm_fsm *f)
{
    return peer_serves_mine(f) && healthy(f);
}

static bool g_peer_serves_mine(const struct srm_fsm *f)
{
    return peer_serves_mine(f);
}

static bool g_expects_backup_healthy(const struct srm_fsm *f)
{
    return f->ha_enabled && peer_expects_backup(f) && !peer_serves_its(f) && healthy(f);
}

static bool g_expects_backup_faulty(const struct srm_fsm *f)
{
    return f->ha_enabled && peer_expects_backup(f) && !peer_serves_its(f) && faulty(f);
}

static bool g_lost_ha_quorum(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && f->quorate;
}

/* BACKUP_MODE. */
static bool g_peer_taking_back_ready(const struct srm_fsm *f)
{
    return f->peer.cs_up && f->peer.db_ok;
}

static bool g_peer_serves_its(const struct srm_fsm *f)
{
    return peer_serves_its(f);
}

static bool g_auto_recover(const struct srm_fsm *f)
{
    return f->ha_enabled && visible(f) && f->peer.state == S(FAILED_OVER) && peer_healthy(f);
}

static bool g_ha_on(const struct srm_fsm *f)
{
    return f->ha_enabled;
}

/* FAILING_OVER. */
static bool g_can_serve_peer_cannot(const struct srm_fsm *f)
{
    return !faulty(f) && !peer_healthy(f);
}

static bool g_reason_admin(const struct srm_fsm *f)
{
    return f->reason == R(ADMIN_REQUEST);
}

static bool g_reason_fault(const struct srm_fsm *f)
{
    return f->reason == R(CS_DOWN) || f->reason == R(DB_FAILURE) ||
           f->reason == R(AUTO_RECOVER_CS) || f->reason == R(AUTO_RECOVER_DB);
}

static bool g_fault_reason_or_faulty(const struct srm_fsm *f)
{
    return lost(f) && !f->peer_present && f->ha_enabled && (g_reason_fault(f) || faulty(f));
}

/* IDLE, FAILED_OVER. */
static bool g_fenced_stopped(const struct srm_fsm *f)
{
    return fence_reason(f->reason) && f->cs == SRM_FSM_CS_STOPPED;
}

static bool g_fenced_healthy(const struct srm_fsm *f)
{
    return fence_reason(f->reason) && healthy(f);
}

static bool g_fenced_peer_left_mine_unserved(const struct srm_fsm *f)
{
    return fence_reason(f->reason) && !peer_serves_mine(f);
}

static bool g_peer_left_mine(const struct srm_fsm *f)
{
    return visible(f) && !(f->peer.serves & SRM_FSM_PART_PEER) &&
           !(f->peer.wants & SRM_FSM_PART_PEER);
}

static bool g_fallback_ok(const struct srm_fsm *f)
{
    return visible(f) && f->peer.state == S(BACKUP_MODE);
}

static bool g_fallback_ok_healthy(const struct srm_fsm *f)
{
    return g_fallback_ok(f) && healthy(f);
}

static bool g_auto_fallback(const struct srm_fsm *f)
{
    return srm_fsm_fallback_eligible(f);
}

static bool g_healthy_unserved(const struct srm_fsm *f)
{
    return healthy(f) && !peer_serves_mine(f);
}

static bool g_db_ok_cs_up(const struct srm_fsm *f)
{
    return healthy(f);
}

static bool g_db_ok_cs_not_up(const struct srm_fsm *f)
{
    return f->db_ok && f->cs != SRM_FSM_CS_UP;
}

static bool g_admin_failover(const struct srm_fsm *f)
{
    return f->ha_enabled && visible(f) && f->peer.state == S(NORMAL) && peer_healthy(f);
}

/* Conflicting claims: the peer claims this node's users while this node claims the
 * peer's, or takes its own back. The newer claim wins. */
static bool g_peer_newer(const struct srm_fsm *f)
{
    return f->peer.epoch > f->epoch;
}

static bool g_peer_older(const struct srm_fsm *f)
{
    return f->peer.epoch < f->epoch;
}

static bool g_peer_newer_serves_mine_healthy(const struct srm_fsm *f)
{
    return g_peer_newer(f) && peer_serves_mine(f) && healthy(f);
}

static bool g_peer_newer_serves_mine(const struct srm_fsm *f)
{
    return g_peer_newer(f) && peer_serves_mine(f);
}

/* FALLING_BACK, FAILING_OVER_AFFECTED. */
static bool g_peer_serves_all(const struct srm_fsm *f)
{
    return visible(f) && (f->peer.serves & SRM_FSM_PART_ALL) == SRM_FSM_PART_ALL;
}

static bool g_peer_serves_all_healthy(const struct srm_fsm *f)
{
    return g_peer_serves_all(f) && healthy(f);
}

/* ---- alternatives ---------------------------------------------------------------- */

#define ALT(mask, guard, next, reason, effects, why)                                               \
    {                                                                                              \
        (mask), (guard), (uint8_t)(next), (uint8_t)(reason), (uint16_t)(effects), (why)            \
    }
#define ALTS(...)                                                                                  \
    (const struct alt[])                                                                           \
    {                                                                                              \
        __VA_ARGS__, ALT(0, NULL, END, 0, 0, NULL)                                                 \
    }

#define STAY(why) ALT(0, NULL, SAME, R_KEEP, 0, why)

/* Every state but INITIALIZING, FAILED_MODE and UNKNOWN follows a failed peer: the group
 * is failed (SPEC §4 rows 14, 15, 19, 20, 21). A peer in Unknown is not followed: this
 * node cannot know better, and following it would make two nodes chase each other's
 * stale reports; its own users stay where they are until the peer is recovered. */
#define PEER_FAILED                                                                                \
    ALT(P(FAILED_MODE), NULL, S(FAILED_MODE), R_PEER, 0, "the peer runs in failed mode")

/* Fence: cut off from the peer without quorum, stop serving before the quorate side takes
 * the users over. */
#define FENCE_ON_LOSS                                                                              \
    ALT(0, g_fence, S(IDLE), R_LOSS, EF(STOP_SERVICES) | EF(HAND_OVER),                            \
        "peer lost without quorum: fence, stop serving")
#define FENCE_ON_QUORUM_LOSS                                                                       \
    ALT(0, g_cut_off, S(IDLE), R_KEEP, EF(STOP_SERVICES) | EF(HAND_OVER),                          \
        "quorum lost while the peer is out of sight: fence, stop serving")

#define TAKE_ALL (EF(START_SERVICES) | EF(TAKE_BACK) | EF(TAKE_OVER))

/* The peer claims this node's users. */
#define CLAIMS_MINE (P(BACKUP_MODE) | P(TAKING_OVER) | P(BACKUP_ACTIVATED))

/* In states that claim the peer's users: a newer claim from the peer wins (this node was
 * out of sight and the peer took over), an older one loses, equal ones are a split brain. */
#define YIELD                                                                                      \
    ALT(CLAIMS_MINE, g_peer_newer_serves_mine_healthy, S(FAILED_OVER), R_PEER,                     \
        EF(HAND_OVER) | EF(RELEASE), "the peer took over while this node was out of sight"),       \
        ALT(CLAIMS_MINE, g_peer_newer_serves_mine, S(FAILED_OVER_CS_DOWN), R_PEER,                 \
            EF(HAND_OVER) | EF(RELEASE), "the peer took over while this node was out of sight"),   \
        ALT(CLAIMS_MINE, g_peer_newer, S(FAILING_OVER), R_PEER,                                    \
            EF(HAND_OVER) | EF(RELEASE) | EF(RELOGIN),                                             \
            "the peer is taking over after losing sight of this node: yield"),                     \
        ALT(CLAIMS_MINE, g_peer_older, SAME, R_KEEP, 0, "the peer's claim is older: it yields"),   \
        ALT(CLAIMS_MINE, NULL, S(FAILED_MODE), R_KEEP, 0,                                          \
            "both nodes claim each other's users (a split brain): recover the group")

/* INITIALIZING: decide where this node stands once it knows its peer, its services and
 * its quorum. Shared by every event that brings one of those facts. */
static const struct alt init_resolve[] = {
    ALT(P(UNKNOWN), NULL, SAME, R_KEEP, 0, "the peer's state is unknown: wait for its recover"),
    ALT(P(FAILED_MODE), g_not_recovering, S(FAILED_MODE), R(UNKNOWN), 0,
        "started while the peer runs in failed mode (row 21)"),
    ALT(P(FAILED_MODE), NULL, S(FAILED_MODE), R_PEER, 0, "the peer failed again after the recover"),
    ALT(P(TAKING_OVER) | P(BACKUP_ACTIVATED), NULL, S(FAILING_OVER), R_PEER,
        EF(HAND_OVER) | EF(RELOGIN), "the peer is taking over this node's users"),
    ALT(P(BACKUP_MODE), g_healthy, S(FAILED_OVER), R(INITIALIZATION), 0,
        "the peer serves this node's users as backup (rows 11, 18)"),
    ALT(P(BACKUP_MODE), NULL, S(FAILED_OVER_CS_DOWN), R(INITIALIZATION), 0,
        "the peer serves this node's users; critical services not running yet (row 18)"),
    ALT(P(FALLING_BACK), NULL, S(TAKING_BACK), R(INITIALIZATION),
        EF(START_SERVICES) | EF(TAKE_BACK), "the peer is handing this node's users back"),
    ALT(P(FAILING_OVER_AFFECTED), g_healthy, S(BACKUP_ACTIVATED), R_PEER,
        EF(TAKE_BACK) | EF(TAKE_OVER), "the degraded peer hands every user to this node"),
    ALT(P(FAILING_OVER), g_healthy, S(TAKING_OVER), R_PEER, EF(TAKE_OVER),
        "the peer is being failed over to this node"),
    ALT(0, g_init_backup_healthy, S(TAKING_OVER), R(INITIALIZATION), EF(TAKE_OVER),
        "the peer is failed over: take over its users"),
    ALT(0, g_init_backup_pending, SAME, R_KEEP, 0,
        "the peer is failed over: waiting for critical services to take over"),
    ALT(0, g_init_backup_faulty, S(FAILED_MODE), R_FAULT, 0,
        "the peer is failed over and this node cannot serve"),
    ALT(0, g_vis_healthy, S(NORMAL), R(NORMAL), 0, "peer seen, critical services up (row 1)"),
    ALT(0, g_vis_pending, SAME, R_KEEP, 0, "peer seen: waiting for critical services"),
    ALT(0, g_vis_faulty_failover, S(FAILING_OVER), R_FAULT, EF(HAND_OVER) | EF(RELOGIN),
        "cannot serve: fail over to the healthy peer"),
    ALT(0, g_vis_faulty_ha_off, S(NORMAL), R_FAULT, 0, "cannot serve, HA disabled: no failover"),
    ALT(0, g_vis_faulty, S(FAILED_MODE), R_FAULT, 0, "neither node can serve"),
    ALT(0, g_lost_ha_off_healthy, S(NORMAL), R(NORMAL), 0, "peer not seen, HA disabled"),
    ALT(0, g_lost_ha_off_faulty, S(NORMAL), R_FAULT, 0, "peer not seen, HA disabled"),
    ALT(0, g_lost_no_quorum, S(IDLE), R(PEER_DOWN_INIT), EF(STOP_SERVICES) | EF(HAND_OVER),
        "peer not seen and no quorum: fence"),
    ALT(0, g_lost_q_healthy, S(TAKING_OVER), R(PEER_DOWN_INIT), EF(TAKE_OVER),
        "peer not seen during initialization: take over its users (row 18)"),
    ALT(0, g_lost_q_faulty, S(FAILED_MODE), R_FAULT, 0, "peer not seen and this node cannot serve"),
    STAY("waiting for the peer and critical services"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* NORMAL: serves its own users. */
static const struct alt normal_peer[] = {
    PEER_FAILED,
    ALT(P(FAILING_OVER), g_healthy, S(TAKING_OVER), R_PEER, EF(TAKE_OVER),
        "the peer is failing over to this node (rows 2, 12, 13)"),
    ALT(P(FAILING_OVER), NULL, S(FAILED_MODE), R_FAULT, 0,
        "the peer fails over but this node cannot serve"),
    ALT(P(FAILING_OVER_AFFECTED), g_healthy, S(BACKUP_ACTIVATED), R_PEER, EF(TAKE_OVER),
        "the degraded peer hands its users to this node"),
    ALT(P(FAILING_OVER_AFFECTED), NULL, S(FAILED_MODE), R_FAULT, 0,
        "the peer hands over but this node cannot serve"),
    ALT(P(TAKING_OVER) | P(BACKUP_ACTIVATED), NULL, S(FAILING_OVER), R_PEER,
        EF(HAND_OVER) | EF(RELOGIN), "the peer is taking over this node's users"),
    ALT(P(BACKUP_MODE), g_peer_serves_mine_healthy, S(FAILED_OVER), R_PEER, EF(HAND_OVER),
        "the peer took this node's users over while it was out of sight"),
    ALT(P(BACKUP_MODE), g_peer_serves_mine, S(FAILED_OVER_CS_DOWN), R_PEER, EF(HAND_OVER),
        "the peer took this node's users over while it was out of sight"),
    ALT(0, g_expects_backup_healthy, S(TAKING_OVER), R_PEER, EF(TAKE_OVER),
        "the peer is failed over and nobody serves its users"),
    ALT(0, g_expects_backup_faulty, S(FAILED_MODE), R_FAULT, 0,
        "the peer is failed over and this node cannot serve"),
    STAY("the peer's report needs no action"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt normal_lost[] = {
    FENCE_ON_LOSS,
    ALT(0, g_ha_quorum_faulty, S(FAILED_MODE), R_LOSS, 0, "peer lost and this node cannot serve"),
    ALT(0, g_ha_quorum, S(TAKING_OVER), R_LOSS, EF(TAKE_OVER),
        "peer lost: take over its users (rows 16, 17)"),
    STAY("peer lost, HA disabled: no takeover"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt normal_fault[] = {
    ALT(0, g_ha_off, SAME, R_FAULT, 0, "HA disabled: no failover"),
    ALT(0, g_ha_faulty_peer_takes, S(FAILING_OVER), R_FAULT, EF(HAND_OVER) | EF(RELOGIN),
        "automatic failover to the peer (rows 12, 13)"),
    ALT(0, g_ha_faulty, S(FAILED_MODE), R_FAULT, 0, "no healthy peer to fail over to"),
    STAY("critical services and datastore still usable"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt normal_ha_enabled[] = {
    ALT(0, g_ha_faulty_peer_takes, S(FAILING_OVER), R_FAULT, EF(HAND_OVER) | EF(RELOGIN),
        "HA enabled while this node cannot serve: fail over at once"),
    ALT(0, g_ha_faulty, S(FAILED_MODE), R_FAULT, 0,
        "HA enabled while neither node can serve: the group fails"),
    ALT(0, g_lost_ha_quorum, S(TAKING_OVER), R_LOSS, EF(TAKE_OVER),
        "HA enabled while the peer is lost: take over its users"),
    ALT(0, g_cut_off, S(IDLE), R_LOSS, EF(STOP_SERVICES) | EF(HAND_OVER),
        "HA enabled while cut off without quorum: fence"),
    STAY("HA enabled"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* TAKING_OVER and BACKUP_ACTIVATED: acquiring the peer's users. */
static const struct alt taking_over_peer[] = {
    PEER_FAILED,
    YIELD,
    STAY("takeover in progress"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* TAKING_BACK: only a peer that took over after losing sight of this node wins. */
static const struct alt taking_back_peer[] = {
    PEER_FAILED,
    ALT(P(TAKING_OVER) | P(BACKUP_ACTIVATED), g_peer_newer, S(FAILING_OVER), R_PEER,
        EF(HAND_OVER) | EF(RELOGIN), "the peer is taking over after losing sight of this node"),
    STAY("takeback in progress"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt fo_cs_down_peer[] = {
    PEER_FAILED,
    ALT(P(FAILING_OVER) | P(FAILING_OVER_AFFECTED) | P(FAILED_OVER_CS_DOWN), NULL, S(FAILED_MODE),
        R_KEEP, 0, "both nodes fail over: nobody can serve"),
    STAY("the peer's report needs no action"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt taking_over_lost[] = {
    FENCE_ON_LOSS,
    STAY("peer lost during takeover: continue"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* BACKUP_MODE: serves both partitions. */
static const struct alt backup_peer[] = {
    PEER_FAILED,
    ALT(P(TAKING_BACK), g_peer_taking_back_ready, S(FALLING_BACK), R_PEER,
        EF(RELEASE) | EF(RELOGIN), "the peer takes its users back (rows 4, 10)"),
    ALT(P(TAKING_BACK), NULL, SAME, R_KEEP, 0,
        "the peer will take its users back once its services run"),
    YIELD,
    ALT(P(NORMAL), g_peer_serves_its, S(FAILED_MODE), R(UNKNOWN), 0,
        "the peer serves the users this node backs up"),
    STAY("backing up the peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt backup_lost[] = {
    FENCE_ON_LOSS,
    STAY("the failed-over peer is out of sight; its users stay here"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt backup_cs_down[] = {
    ALT(0, g_auto_recover, S(FAILING_OVER_AFFECTED), R(AUTO_RECOVER_CS),
        EF(HAND_OVER) | EF(RELEASE) | EF(RELOGIN),
        "critical service down on the backup: automatic recovery to the healthy peer (row 23)"),
    ALT(0, g_ha_on, S(FAILED_MODE), R(CS_DOWN), 0,
        "critical service down on the backup: both nodes fail (row 15)"),
    ALT(0, NULL, SAME, R(CS_DOWN), 0, "HA disabled: no recovery"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt backup_db_failed[] = {
    ALT(0, g_auto_recover, S(FAILING_OVER_AFFECTED), R(AUTO_RECOVER_DB),
        EF(HAND_OVER) | EF(RELEASE) | EF(RELOGIN),
        "datastore failed on the backup: automatic recovery to the healthy peer (row 22)"),
    ALT(0, g_ha_on, S(FAILED_MODE), R(DB_FAILURE), 0, "datastore failed on the backup"),
    ALT(0, NULL, SAME, R(DB_FAILURE), 0, "HA disabled: no recovery"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FAILING_OVER: handing own users to the peer. */
static const struct alt failing_over_peer[] = {
    PEER_FAILED,
    ALT(P(FAILING_OVER) | P(FAILING_OVER_AFFECTED), g_can_serve_peer_cannot, S(TAKING_OVER), R_PEER,
        TAKE_ALL, "both nodes fail over and only this one can serve: serve every user here"),
    ALT(P(FAILING_OVER) | P(FAILING_OVER_AFFECTED), NULL, S(FAILED_MODE), R_KEEP, 0,
        "both nodes fail over: recover the group"),
    ALT(P(BACKUP_MODE), g_reason_admin, S(IDLE), R_KEEP, 0,
        "the peer serves this node's users: manual failover done (row 3)"),
    ALT(P(BACKUP_MODE), g_healthy, S(FAILED_OVER), R_KEEP, 0,
        "the peer serves this node's users; this node's services run (row 11)"),
    ALT(P(BACKUP_MODE), NULL, S(FAILED_OVER_CS_DOWN), R_KEEP, 0,
        "the peer serves this node's users: automatic failover done (rows 12, 13)"),
    STAY("failover in progress"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failing_over_lost[] = {
    ALT(0, g_fault_reason_or_faulty, S(FAILED_MODE), R_LOSS, 0,
        "peer lost while failing over, and this node cannot serve"),
    FENCE_ON_LOSS,
    ALT(0, g_quorum, S(TAKING_OVER), R_LOSS, TAKE_ALL,
        "peer lost while failing over: serve every user here"),
    STAY("peer not lost, or HA disabled: wait"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* IDLE: failed over, critical services stopped. */
static const struct alt idle_peer[] = {
    PEER_FAILED,
    ALT(P(FALLING_BACK), NULL, S(TAKING_BACK), R_KEEP, EF(START_SERVICES) | EF(TAKE_BACK),
        "the peer hands this node's users back"),
    ALT(P(FAILING_OVER), NULL, S(TAKING_OVER), R_PEER, TAKE_ALL,
        "the peer fails over while this node is idle: serve every user here"),
    ALT(P(FAILING_OVER_AFFECTED), NULL, S(BACKUP_ACTIVATED), R_PEER, TAKE_ALL,
        "the degraded backup hands every user to this node"),
    ALT(P(BACKUP_MODE) | P(TAKING_OVER) | P(BACKUP_ACTIVATED), g_fenced_stopped, SAME, R_KEEP,
        EF(START_SERVICES), "back in sight after a fence; the peer serves the users"),
    ALT(P(NORMAL) | P(IDLE) | P(INITIALIZING) | P(FAILED_OVER) | P(FAILED_OVER_CS_DOWN),
        g_fenced_peer_left_mine_unserved, S(TAKING_BACK), R_KEEP,
        EF(START_SERVICES) | EF(TAKE_BACK), "back in sight after a fence: nobody took the users"),
    ALT(P(IDLE), g_peer_left_mine, S(TAKING_BACK), R_KEEP, EF(START_SERVICES) | EF(TAKE_BACK),
        "both nodes idle: nobody serves this node's users, take them back"),
    STAY("idle"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt idle_lost[] = {
    ALT(0, g_ha_quorum, S(TAKING_OVER), R_LOSS, TAKE_ALL,
        "the backup is lost: serve every user here"),
    STAY("idle; no takeover without HA, quorum and a lost peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt idle_cs_up[] = {
    ALT(0, g_fenced_healthy, S(FAILED_OVER), R_KEEP, 0, "critical services run again"),
    STAY("idle after a manual failover: fall back to serve again"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt idle_fallback[] = {
    ALT(0, g_fallback_ok, S(TAKING_BACK), R(ADMIN_REQUEST), EF(START_SERVICES) | EF(TAKE_BACK),
        "manual fallback (row 4)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FAILED_OVER: failed over, critical services run. */
static const struct alt failed_over_peer[] = {
    PEER_FAILED,
    ALT(P(FALLING_BACK), g_healthy, S(TAKING_BACK), R_KEEP, EF(TAKE_BACK),
        "the peer hands this node's users back"),
    ALT(P(FAILING_OVER_AFFECTED), g_healthy, S(BACKUP_ACTIVATED), R_PEER,
        EF(TAKE_BACK) | EF(TAKE_OVER),
        "the degraded backup hands every user to this node (rows 22, 23)"),
    ALT(P(NORMAL) | P(IDLE) | P(FAILING_OVER) | P(FAILED_OVER), g_healthy_unserved, S(TAKING_BACK),
        R_KEEP, EF(TAKE_BACK), "nobody serves this node's users: take them back"),
    STAY("failed over"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failed_over_lost[] = {
    FENCE_ON_LOSS,
    ALT(0, g_quorum_healthy, S(TAKING_OVER), R_LOSS, EF(TAKE_BACK) | EF(TAKE_OVER),
        "the backup is lost: serve every user here"),
    ALT(0, g_quorum, S(FAILED_MODE), R_LOSS, 0, "the backup is lost and this node cannot serve"),
    STAY("no takeover without HA, quorum and a lost peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failed_over_fallback[] = {
    ALT(0, g_fallback_ok_healthy, S(TAKING_BACK), R(ADMIN_REQUEST), EF(TAKE_BACK),
        "manual fallback (row 4)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failed_over_timer[] = {
    ALT(0, g_auto_fallback, S(TAKING_BACK), R(AUTO_FALLBACK), EF(TAKE_BACK),
        "automatic fallback (row 10)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FAILED_OVER_CS_DOWN. */
static const struct alt fo_cs_down_cs_up[] = {
    ALT(0, g_db_ok_cs_up, S(FAILED_OVER), R_KEEP, 0,
        "critical services run again: ready for fallback (row 11)"),
    STAY("the datastore is still failed"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt fo_cs_down_db_ok[] = {
    ALT(0, g_db_ok_cs_up, S(FAILED_OVER), R_KEEP, 0, "datastore back: ready for fallback"),
    ALT(0, g_db_ok_cs_not_up, SAME, R_KEEP, EF(START_SERVICES),
        "datastore back: start the critical services"),
    STAY("still failed"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt fo_cs_down_lost[] = {
    ALT(0, g_ha_quorum, S(FAILED_MODE), R_LOSS, 0, "the backup is lost and this node cannot serve"),
    STAY("no recovery without HA, quorum and a lost peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* TAKING_BACK. */
static const struct alt taking_back_lost[] = {
    FENCE_ON_LOSS,
    ALT(0, g_quorum, S(TAKING_OVER), R_LOSS, EF(TAKE_OVER),
        "peer lost while taking back: serve every user here"),
    STAY("no takeover without HA, quorum and a lost peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FALLING_BACK: handing the peer's users back. */
static const struct alt falling_back_peer[] = {
    PEER_FAILED,
    YIELD,
    ALT(P(FAILED_OVER_CS_DOWN), NULL, S(BACKUP_MODE), R_KEEP, EF(TAKE_OVER),
        "the peer cannot take its users back: keep them here"),
    ALT(P(NORMAL) | P(FALLING_BACK), g_peer_serves_its, S(NORMAL), R(NORMAL), 0,
        "the peer serves its users again: fallback done"),
    ALT(P(FAILING_OVER), NULL, S(TAKING_OVER), R_PEER, EF(TAKE_OVER),
        "the peer fails over instead of taking its users back: keep them here"),
    ALT(P(FAILING_OVER_AFFECTED), NULL, S(BACKUP_ACTIVATED), R_PEER, EF(TAKE_OVER),
        "the degraded peer hands every user to this node"),
    STAY("fallback in progress"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt falling_back_lost[] = {
    FENCE_ON_LOSS,
    ALT(0, g_quorum, S(TAKING_OVER), R_LOSS, EF(TAKE_OVER),
        "peer lost while falling back: keep its users here"),
    STAY("no takeover without HA, quorum and a lost peer"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FAILING_OVER_AFFECTED: the degraded backup hands every user to its peer. */
static const struct alt foas_peer[] = {
    PEER_FAILED,
    ALT(P(FAILING_OVER) | P(FAILING_OVER_AFFECTED), NULL, S(FAILED_MODE), R_KEEP, 0,
        "both nodes hand their users away: recover the group"),
    ALT(P(BACKUP_MODE), g_peer_serves_all_healthy, S(FAILED_OVER), R_KEEP, 0,
        "the peer serves every user; this node's services run again"),
    ALT(P(BACKUP_MODE), g_peer_serves_all, S(FAILED_OVER_CS_DOWN), R_KEEP, 0,
        "the peer serves every user: automatic recovery done (rows 22, 23)"),
    STAY("automatic recovery in progress"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* FAILED_MODE and UNKNOWN: wait for a recover. */
static const struct alt failed_peer[] = {
    ALT(P(INITIALIZING), g_recovering_peer, S(INITIALIZING), R(INITIALIZATION),
        EF(RESTART) | EF(START_SERVICES), "the peer was recovered: recover too"),
    STAY("failed: waiting for a recover"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt recover[] = {
    ALT(0, NULL, S(INITIALIZING), R(INITIALIZATION), EF(RESTART) | EF(START_SERVICES),
        "manual recover: restart the recovery manager"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* ---- simple shared lists --------------------------------------------------------- */

static const struct alt stay_facts[] = {
    STAY("fact recorded"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt to_failed_unknown[] = {
    ALT(0, NULL, S(FAILED_MODE), R(UNKNOWN), 0, "internal error (row 21)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt fence_on_quorum_loss[] = {
    FENCE_ON_QUORUM_LOSS,
    STAY("quorum lost; the peer is in sight"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt transition_fault[] = {
    ALT(0, NULL, S(FAILED_MODE), R_FAULT, 0, "this node cannot serve during a transition"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt cs_start_failed[] = {
    ALT(0, NULL, S(FAILED_MODE), R(CS_START_FAILURE), 0, "critical services cannot start (row 14)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt to_fo_cs_down[] = {
    ALT(0, NULL, S(FAILED_OVER_CS_DOWN), R_FAULT, 0, "critical services or datastore failed"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt takeover_done[] = {
    ALT(0, NULL, S(BACKUP_MODE), R_KEEP, 0, "takeover done (rows 3, 12, 13, 16, 17, 18)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt takeover_failed[] = {
    ALT(0, NULL, S(FAILED_MODE), R(TAKEOVER_FAILURE), 0, "moving users failed (row 19)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt takeback_done[] = {
    ALT(0, NULL, S(NORMAL), R(NORMAL), 0, "takeback done (rows 4, 9, 10)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt takeback_failed[] = {
    ALT(0, NULL, S(FAILED_MODE), R(TAKEBACK_FAILURE), 0, "moving users failed (row 20)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt normal_cs_up[] = {
    ALT(0, g_reason_fault_cleared, SAME, R(NORMAL), 0, "critical services and datastore fine"),
    STAY("critical services run"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt normal_admin_failover[] = {
    ALT(0, g_admin_failover, S(FAILING_OVER), R(ADMIN_REQUEST),
        EF(STOP_SERVICES) | EF(HAND_OVER) | EF(RELOGIN), "manual failover (row 2)"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failed_internal[] = {
    ALT(0, NULL, SAME, R(UNKNOWN), 0, "internal error while failed"),
    ALT(0, NULL, END, 0, 0, NULL),
};

static const struct alt failed_over_cs_down_ev[] = {
    ALT(0, NULL, S(FAILED_OVER_CS_DOWN), R_FAULT, 0, "critical services or datastore failed"),
    ALT(0, NULL, END, 0, 0, NULL),
};

/* ---- the table ------------------------------------------------------------------- */

/* Refusal texts, per event, for the states the table does not list (the event does not
 * apply there). Admin refusals are completed by admin_refusal(). */
static const char *const default_refusal[SRM_FSM_EVENT_MAX] = {
    [E(START)] = "already started",
    [E(ADMIN_FAILOVER)] = "failover needs this node in Normal",
    [E(ADMIN_FALLBACK)] = "fallback needs this node failed over (Idle or Failed Over)",
    [E(ADMIN_RECOVER)] = "recover applies to a node in Running in Failed Mode or Unknown",
    [E(FALLBACK_TIMER)] = "automatic fallback applies only to a Failed Over node",
    [E(TAKEOVER_DONE)] = "no takeover in progress",
    [E(TAKEOVER_FAILED)] = "no takeover in progress",
    [E(TAKEBACK_DONE)] = "no takeback in progress",
    [E(TAKEBACK_FAILED)] = "no takeback in progress",
};

/* Cells for events that every state handles the same way unless listed. */
static const struct alt *const default_alts[SRM_FSM_EVENT_MAX] = {
    [E(PEER_KEEPALIVE)] = stay_facts,
    [E(PEER_BACK)] = stay_facts,
    [E(PEER_LOST)] = stay_facts,
    [E(CS_DOWN)] = stay_facts,
    [E(CS_UP)] = stay_facts,
    [E(CS_START_FAILED)] = stay_facts,
    [E(DB_FAILED)] = stay_facts,
    [E(DB_RECOVERED)] = stay_facts,
    [E(HA_ENABLED)] = stay_facts,
    [E(HA_DISABLED)] = stay_facts,
    [E(QUORUM_LOST)] = stay_facts,
    [E(QUORUM_REGAINED)] = stay_facts,
    [E(INTERNAL_ERROR)] = to_failed_unknown,
};

/* Refusal whose text depends on the facts: see detailed_refusal(). */
static const char refuse_detail[] = "see detailed_refusal()";

#define CELL(list)                                                                                 \
    {                                                                                              \
        (list), NULL                                                                               \
    }
#define REFUSE(text)                                                                               \
    {                                                                                              \
        NULL, (text)                                                                               \
    }
#define CELL_OR(list, text)                                                                        \
    {                                                                                              \
        (list), (text)                                                                             \
    }

static const struct cell table[SRM_FSM_STATE_MAX][SRM_FSM_EVENT_MAX] =
    {
        [S(INITIALIZING)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(init_resolve),
                [E(PEER_BACK)] = CELL(init_resolve),
                [E(PEER_LOST)] = CELL(init_resolve),
                [E(CS_DOWN)] = CELL(init_resolve),
                [E(CS_UP)] = CELL(init_resolve),
                [E(CS_START_FAILED)] = CELL(init_resolve),
                [E(DB_FAILED)] = CELL(init_resolve),
                [E(DB_RECOVERED)] = CELL(init_resolve),
                [E(HA_ENABLED)] = CELL(init_resolve),
                [E(HA_DISABLED)] = CELL(init_resolve),
                [E(QUORUM_LOST)] = CELL(init_resolve),
                [E(QUORUM_REGAINED)] = CELL(init_resolve),
                [E(ADMIN_FAILOVER)] = REFUSE("the node is initializing"),
                [E(ADMIN_FALLBACK)] = REFUSE("the node is initializing"),
                [E(ADMIN_RECOVER)] = REFUSE("the node is already initializing"),
            },
        [S(NORMAL)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(normal_peer),
                [E(PEER_BACK)] = CELL(normal_peer),
                [E(PEER_LOST)] = CELL(normal_lost),
                [E(CS_DOWN)] = CELL(normal_fault),
                [E(CS_START_FAILED)] = CELL(normal_fault),
                [E(DB_FAILED)] = CELL(normal_fault),
                [E(CS_UP)] = CELL(normal_cs_up),
                [E(DB_RECOVERED)] = CELL(normal_cs_up),
                [E(HA_ENABLED)] = CELL(normal_ha_enabled),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(QUORUM_REGAINED)] = CELL(normal_lost),
                [E(ADMIN_FAILOVER)] = CELL_OR(normal_admin_failover, refuse_detail),
                [E(ADMIN_FALLBACK)] = REFUSE("this node already serves its own users"),
            },
        [S(TAKING_OVER)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(taking_over_peer),
                [E(PEER_BACK)] = CELL(taking_over_peer),
                [E(PEER_LOST)] = CELL(taking_over_lost),
                [E(CS_DOWN)] = CELL(transition_fault),
                [E(DB_FAILED)] = CELL(transition_fault),
                [E(CS_START_FAILED)] = CELL(cs_start_failed),
                [E(TAKEOVER_DONE)] = CELL(takeover_done),
                [E(TAKEOVER_FAILED)] = CELL(takeover_failed),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] = REFUSE("a takeover is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("a takeover is in progress"),
            },
        [S(BACKUP_ACTIVATED)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(taking_over_peer),
                [E(PEER_BACK)] = CELL(taking_over_peer),
                [E(PEER_LOST)] = CELL(taking_over_lost),
                [E(CS_DOWN)] = CELL(transition_fault),
                [E(DB_FAILED)] = CELL(transition_fault),
                [E(CS_START_FAILED)] = CELL(cs_start_failed),
                [E(TAKEOVER_DONE)] = CELL(takeover_done),
                [E(TAKEOVER_FAILED)] = CELL(takeover_failed),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] = REFUSE("an automatic recovery is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("an automatic recovery is in progress"),
            },
        [S(BACKUP_MODE)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(backup_peer),
                [E(PEER_BACK)] = CELL(backup_peer),
                [E(PEER_LOST)] = CELL(backup_lost),
                [E(CS_DOWN)] = CELL(backup_cs_down),
                [E(CS_START_FAILED)] = CELL(backup_cs_down),
                [E(DB_FAILED)] = CELL(backup_db_failed),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] =
                    REFUSE("this node serves its peer's users as backup: fall back the peer first"),
                [E(ADMIN_FALLBACK)] =
                    REFUSE("this node is the backup: fallback is started on the failed-over peer"),
            },
        [S(FAILING_OVER)] =
            {
                [E(QUORUM_REGAINED)] = CELL(failing_over_lost),
                [E(HA_ENABLED)] = CELL(failing_over_lost),
                [E(PEER_KEEPALIVE)] = CELL(failing_over_peer),
                [E(PEER_BACK)] = CELL(failing_over_peer),
                [E(PEER_LOST)] = CELL(failing_over_lost),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] = REFUSE("a failover is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("a failover is in progress"),
            },
        [S(IDLE)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(idle_peer),
                [E(PEER_BACK)] = CELL(idle_peer),
                [E(PEER_LOST)] = CELL(idle_lost),
                [E(QUORUM_REGAINED)] = CELL(idle_lost),
                [E(HA_ENABLED)] = CELL(idle_lost),
                [E(CS_UP)] = CELL(idle_cs_up),
                [E(ADMIN_FAILOVER)] = REFUSE("this node is already failed over"),
                [E(ADMIN_FALLBACK)] = CELL_OR(idle_fallback, refuse_detail),
                [E(FALLBACK_TIMER)] =
                    REFUSE("automatic fallback does not apply to a node an admin failed over"),
            },
        [S(FAILED_OVER)] =
            {
                [E(QUORUM_REGAINED)] = CELL(failed_over_lost),
                [E(HA_ENABLED)] = CELL(failed_over_lost),
                [E(PEER_KEEPALIVE)] = CELL(failed_over_peer),
                [E(PEER_BACK)] = CELL(failed_over_peer),
                [E(PEER_LOST)] = CELL(failed_over_lost),
                [E(CS_DOWN)] = CELL(failed_over_cs_down_ev),
                [E(CS_START_FAILED)] = CELL(failed_over_cs_down_ev),
                [E(DB_FAILED)] = CELL(to_fo_cs_down),
                [E(ADMIN_FAILOVER)] = REFUSE("this node is already failed over"),
                [E(ADMIN_FALLBACK)] = CELL_OR(failed_over_fallback, refuse_detail),
                [E(FALLBACK_TIMER)] =
                    CELL_OR(failed_over_timer, "no longer eligible for automatic fallback"),
            },
        [S(FAILED_OVER_CS_DOWN)] =
            {
                [E(QUORUM_REGAINED)] = CELL(fo_cs_down_lost),
                [E(HA_ENABLED)] = CELL(fo_cs_down_lost),
                [E(PEER_KEEPALIVE)] = CELL(fo_cs_down_peer),
                [E(PEER_BACK)] = CELL(fo_cs_down_peer),
                [E(PEER_LOST)] = CELL(fo_cs_down_lost),
                [E(CS_UP)] = CELL(fo_cs_down_cs_up),
                [E(DB_RECOVERED)] = CELL(fo_cs_down_db_ok),
                [E(ADMIN_FAILOVER)] = REFUSE("this node is already failed over"),
                [E(ADMIN_FALLBACK)] =
                    REFUSE("critical services are not running on this node: start "
                           "them first (the node shows Failed Over once they run)"),
            },
        [S(TAKING_BACK)] =
            {
                [E(QUORUM_REGAINED)] = CELL(taking_back_lost),
                [E(HA_ENABLED)] = CELL(taking_back_lost),
                [E(PEER_KEEPALIVE)] = CELL(taking_back_peer),
                [E(PEER_BACK)] = CELL(taking_back_peer),
                [E(PEER_LOST)] = CELL(taking_back_lost),
                [E(CS_DOWN)] = CELL(transition_fault),
                [E(DB_FAILED)] = CELL(transition_fault),
                [E(CS_START_FAILED)] = CELL(cs_start_failed),
                [E(TAKEBACK_DONE)] = CELL(takeback_done),
                [E(TAKEBACK_FAILED)] = CELL(takeback_failed),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] = REFUSE("a takeback is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("a takeback is in progress"),
            },
        [S(FALLING_BACK)] =
            {
                [E(QUORUM_REGAINED)] = CELL(falling_back_lost),
                [E(HA_ENABLED)] = CELL(falling_back_lost),
                [E(PEER_KEEPALIVE)] = CELL(falling_back_peer),
                [E(PEER_BACK)] = CELL(falling_back_peer),
                [E(PEER_LOST)] = CELL(falling_back_lost),
                [E(CS_DOWN)] = CELL(transition_fault),
                [E(DB_FAILED)] = CELL(transition_fault),
                [E(CS_START_FAILED)] = CELL(transition_fault),
                [E(QUORUM_LOST)] = CELL(fence_on_quorum_loss),
                [E(ADMIN_FAILOVER)] = REFUSE("a fallback is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("a fallback is in progress"),
            },
        [S(FAILING_OVER_AFFECTED)] =
            {
                [E(QUORUM_REGAINED)] = CELL(fo_cs_down_lost),
                [E(HA_ENABLED)] = CELL(fo_cs_down_lost),
                [E(PEER_KEEPALIVE)] = CELL(foas_peer),
                [E(PEER_BACK)] = CELL(foas_peer),
                [E(PEER_LOST)] = CELL(fo_cs_down_lost),
                [E(ADMIN_FAILOVER)] = REFUSE("an automatic recovery is in progress"),
                [E(ADMIN_FALLBACK)] = REFUSE("an automatic recovery is in progress"),
            },
        [S(FAILED_MODE)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(failed_peer),
                [E(PEER_BACK)] = CELL(failed_peer),
                [E(ADMIN_RECOVER)] = CELL(recover),
                [E(INTERNAL_ERROR)] = CELL(failed_internal),
                [E(ADMIN_FAILOVER)] = REFUSE("the group is in a failed state: recover it first"),
                [E(ADMIN_FALLBACK)] = REFUSE("the group is in a failed state: recover it first"),
            },
        [S(UNKNOWN)] =
            {
                [E(PEER_KEEPALIVE)] = CELL(failed_peer),
                [E(PEER_BACK)] = CELL(failed_peer),
                [E(ADMIN_RECOVER)] = CELL(recover),
                [E(ADMIN_FAILOVER)] = REFUSE("the state is unknown: recover the group first"),
                [E(ADMIN_FALLBACK)] = REFUSE("the state is unknown: recover the group first"),
            },
};

/* ---- names ------------------------------------------------------------------------ */

static const char *const state_names[] = {
#define SRM__FSM_STR(name, str) str,
    SRM_FSM_STATE_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const state_ids[] = {
#define SRM__FSM_STR(name, str) #name,
    SRM_FSM_STATE_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const reason_names[] = {
#define SRM__FSM_STR(name, str) str,
    SRM_FSM_REASON_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const reason_ids[] = {
#define SRM__FSM_STR(name, str) #name,
    SRM_FSM_REASON_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const event_names[] = {
#define SRM__FSM_STR(name, str) str,
    SRM_FSM_EVENT_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const effect_names[] = {
#define SRM__FSM_STR(name, str) str,
    SRM_FSM_EFFECT_MAP(SRM__FSM_STR)
#undef SRM__FSM_STR
};

static const char *const loss_names[] = {"node", "process", "timeout"};

const char *srm_fsm_state_name(enum srm_fsm_state state)
{
    return (unsigned)state < SRM_FSM_STATE_MAX ? state_names[state] : "?";
}

const char *srm_fsm_reason_name(enum srm_fsm_reason reason)
{
    return (unsigned)reason < SRM_FSM_REASON_MAX ? reason_names[reason] : "?";
}

const char *srm_fsm_event_name(enum srm_fsm_event_type type)
{
    return (unsigned)type < SRM_FSM_EVENT_MAX ? event_names[type] : "?";
}

const char *srm_fsm_effect_name(enum srm_fsm_effect_bit bit)
{
    return (unsigned)bit < SRM_FSM_EFFECT_BIT_MAX ? effect_names[bit] : "?";
}

const char *srm_fsm_loss_name(enum srm_fsm_loss loss)
{
    return (unsigned)loss < SRM_FSM_LOSS_MAX ? loss_names[loss] : "?";
}

static int parse_name(const char *s, const char *const *names, const char *const *ids, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0 || strcasecmp(s, ids[i]) == 0)
            return (int)i;
    return -EINVAL;
}

int srm_fsm_state_parse(const char *s, enum srm_fsm_state *ret_state)
{
    int i = parse_name(s, state_names, state_ids, SRM_FSM_STATE_MAX);

    if (i < 0)
        return i;
    *ret_state = (enum srm_fsm_state)i;
    return 0;
}

int srm_fsm_reason_parse(const char *s, enum srm_fsm_reason *ret_reason)
{
    int i = parse_name(s, reason_names, reason_ids, SRM_FSM_REASON_MAX);

    if (i < 0)
        return i;
    *ret_reason = (enum srm_fsm_reason)i;
    return 0;
}

char *srm_fsm_effects_format(uint32_t effects, char *buf, unsigned size)
{
    unsigned len = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    for (unsigned b = 0; b < SRM_FSM_EFFECT_BIT_MAX; b++) {
        if (!(effects & (1u << b)))
            continue;
        const char *name = effect_names[b];
        size_t n = strlen(name) + (len ? 1 : 0);
        if (len + n + 1 > size)
            break;
        if (len)
            buf[len++] = ',';
        memcpy(buf + len, name, strlen(name) + 1);
        len += (unsigned)strlen(name);
    }
    return buf;
}

/* ---- classification --------------------------------------------------------------- */

bool srm_fsm_state_is_transient(enum srm_fsm_state state)
{
    switch (state) {
    case S(INITIALIZING):
    case S(TAKING_OVER):
    case S(FAILING_OVER):
    case S(TAKING_BACK):
    case S(FALLING_BACK):
    case S(BACKUP_ACTIVATED):
    case S(FAILING_OVER_AFFECTED):
        return true;
    default:
        return false;
    }
}

bool srm_fsm_alarm(enum srm_fsm_state state, enum srm_fsm_reason reason)
{
    bool routine = reason == R(NORMAL) || reason == R(ADMIN_REQUEST) ||
                   reason == R(INITIALIZATION) || reason == R(AUTO_FALLBACK);

    switch (state) {
    case S(FAILED_MODE):
    case S(UNKNOWN):
    case S(FAILED_OVER_CS_DOWN):
        return true;
    case S(INITIALIZING):
    case S(TAKING_BACK):
    case S(FALLING_BACK):
        return false;
    default:
        return !routine;
    }
}

/* ---- the machine ------------------------------------------------------------------ */

void srm_fsm_init(struct srm_fsm *fsm)
{
    memset(fsm, 0, sizeof(*fsm));
    fsm->state = S(INITIALIZING);
    fsm->reason = R(INITIALIZATION);
    fsm->db_ok = true;
    fsm->cs = SRM_FSM_CS_PENDING;
    fsm->peer_status = SRM_FSM_PEER_UNKNOWN;
    fsm->peer.state = S(UNKNOWN);
    fsm->peer.reason = R(UNKNOWN);
}

static bool is_visible(const struct srm_fsm *f)
{
    return f->peer_status == SRM_FSM_PEER_VISIBLE;
}

unsigned srm_fsm_desired(const struct srm_fsm *fsm, unsigned actual)
{
    actual &= SRM_FSM_PART_ALL;
    if (!fsm->started)
        return actual;
    /* Cut off from the peer without quorum: the quorate side may take the users over. */
    if (!is_visible(fsm) && !fsm->quorate)
        return 0;
    switch (fsm->state) {
    case S(NORMAL):
    case S(TAKING_BACK):
    case S(FALLING_BACK):
        return SRM_FSM_PART_OWN;
    case S(BACKUP_MODE):
    case S(TAKING_OVER):
    case S(BACKUP_ACTIVATED):
        return SRM_FSM_PART_ALL;
    case S(IDLE):
    case S(FAILING_OVER):
    case S(FAILED_OVER):
    case S(FAILED_OVER_CS_DOWN):
    case S(FAILING_OVER_AFFECTED):
        return 0;
    case S(INITIALIZING):
    case S(FAILED_MODE):
    case S(UNKNOWN):
    default:
        return actual; /* keep what is held, take nothing new */
    }
}

/* The peer's bit for one of this node's partitions. */
static unsigned flip(unsigned part)
{
    return ((part & SRM_FSM_PART_OWN) ? SRM_FSM_PART_PEER : 0) |
           ((part & SRM_FSM_PART_PEER) ? SRM_FSM_PART_OWN : 0);
}

void srm_fsm_own_plan(const struct srm_fsm *fsm, unsigned actual, bool fence_elapsed,
                      bool peer_fresh, struct srm_fsm_own_plan *ret_plan)
{
    unsigned want, need;
    struct srm_fsm_own_plan plan = {.complete = SRM_FSM_EVENT_MAX};

    actual &= SRM_FSM_PART_ALL;
    want = srm_fsm_desired(fsm, actual);
    plan.release = actual & ~want;
    /* Safety net: if both serve the peer's users, the peer (their home) keeps them. */
    if (is_visible(fsm) && (actual & SRM_FSM_PART_PEER) && (fsm->peer.serves & SRM_FSM_PART_OWN))
        plan.release |= SRM_FSM_PART_PEER;

    need = want & ~actual & ~plan.release;
    for (unsigned part = SRM_FSM_PART_OWN; part <= SRM_FSM_PART_PEER; part <<= 1) {
        if (!(need & part))
            continue;
        bool ok;
        if (fsm->cs != SRM_FSM_CS_UP)
            ok = false;
        else if (is_visible(fsm))
            /* Never while the peer serves it; the peer's users only if it gave them up. */
            ok = peer_fresh && !(fsm->peer.serves & flip(part)) &&
                 (part == SRM_FSM_PART_OWN || !(fsm->peer.wants & flip(part)));
        else
            ok = fsm->quorate && fence_elapsed;
        if (ok)
            plan.acquire |= part;
        else
            plan.blocked |= part;
    }

    unsigned held = actual & ~plan.release;
    if ((fsm->state == S(TAKING_OVER) || fsm->state == S(BACKUP_ACTIVATED)) &&
        want == SRM_FSM_PART_ALL && held == SRM_FSM_PART_ALL)
        plan.complete = SRM_FSM_EVENT_TAKEOVER_DONE;
    else if (fsm->state == S(TAKING_BACK) && want == SRM_FSM_PART_OWN && held == SRM_FSM_PART_OWN)
        plan.complete = SRM_FSM_EVENT_TAKEBACK_DONE;
    *ret_plan = plan;
}

void srm_fsm_report(const struct srm_fsm *fsm, unsigned actual, struct srm_fsm_report *ret_report)
{
    struct srm_fsm_report r = {
        .state = (uint8_t)fsm->state,
        .reason = (uint8_t)fsm->reason,
        .serves = (uint8_t)(actual & SRM_FSM_PART_ALL),
        .wants = (uint8_t)srm_fsm_desired(fsm, actual),
        .cs_up = fsm->cs == SRM_FSM_CS_UP,
        .db_ok = fsm->db_ok,
        .ha_enabled = fsm->ha_enabled,
        .recovering = fsm->recovering,
        .epoch = fsm->epoch,
        .phase = fsm->phase,
    };
    *ret_report = r;
}

bool srm_fsm_fallback_eligible(const struct srm_fsm *fsm)
{
    return fsm->started && fsm->state == S(FAILED_OVER) && fsm->ha_enabled && healthy(fsm) &&
           is_visible(fsm) && fsm->peer.state == S(BACKUP_MODE) &&
           (fsm->peer.serves & SRM_FSM_PART_PEER);
}

/* Records the facts an event carries (in a copy of the machine). */
static void record_facts(struct srm_fsm *c, const struct srm_fsm_event *ev)
{
    switch (ev->type) {
    case E(PEER_KEEPALIVE):
    case E(PEER_BACK):
        c->peer_status = SRM_FSM_PEER_VISIBLE;
        c->peer_present = true;
        c->peer = ev->u.peer;
        if (c->peer.state >= SRM_FSM_STATE_MAX)
            c->peer.state = S(UNKNOWN); /* a state this version does not know */
        if (c->peer.reason >= SRM_FSM_REASON_MAX)
            c->peer.reason = R(UNKNOWN);
        c->peer.serves &= SRM_FSM_PART_ALL;
        c->peer.wants &= SRM_FSM_PART_ALL;
        break;
    case E(PEER_LOST):
        c->peer_status = SRM_FSM_PEER_LOST;
        c->peer_loss = ev->u.loss;
        c->peer_present = false;
        break;
    case E(CS_DOWN):
    case E(CS_START_FAILED):
        c->cs = SRM_FSM_CS_DOWN;
        break;
    case E(CS_UP):
        c->cs = SRM_FSM_CS_UP;
        break;
    case E(DB_FAILED):
        c->db_ok = false;
        break;
    case E(DB_RECOVERED):
        c->db_ok = true;
        break;
    case E(HA_ENABLED):
        c->ha_enabled = true;
        break;
    case E(HA_DISABLED):
        c->ha_enabled = false;
        break;
    case E(QUORUM_LOST):
        c->quorate = false;
        c->peer_present = ev->u.quorum.peer_present;
        break;
    case E(QUORUM_REGAINED):
        c->quorate = true;
        c->peer_present = ev->u.quorum.peer_present;
        break;
    default:
        break;
    }
}

static enum srm_fsm_reason resolve_reason(const struct srm_fsm *c, uint8_t rule)
{
    switch (rule) {
    case R_KEEP:
        return c->reason;
    case R_PEER:
        return (enum srm_fsm_reason)c->peer.reason;
    case R_LOSS:
        return c->peer_loss == SRM_FSM_LOSS_NODE ? R(PEER_REBOOT) : R(PEER_DOWN);
    case R_FAULT:
        return !c->db_ok ? R(DB_FAILURE) : R(CS_DOWN);
    default:
        return (enum srm_fsm_reason)rule;
    }
}

static bool alt_matches(const struct alt *a, const struct srm_fsm *c)
{
    if (a->peer) {
        if (c->peer_status != SRM_FSM_PEER_VISIBLE)
            return false;
        if (!((1u << c->peer.state) & a->peer))
            return false;
    }
    return a->guard == NULL || a->guard(c);
}

static const char *detailed_refusal(const struct srm_fsm *c, enum srm_fsm_event_type type)
{
    bool vis = c->peer_status == SRM_FSM_PEER_VISIBLE;

    if (type == E(ADMIN_FAILOVER)) {
        if (!c->ha_enabled)
            return "HA is disabled for this group: enable it first";
        if (!vis)
            return "the peer is not reachable: nobody could take over this node's users";
        if (c->peer.state != S(NORMAL))
            return "the peer is not Normal: it cannot take over this node's users now";
        return "the peer's critical services or datastore are not healthy";
    }
    if (type == E(ADMIN_FALLBACK)) {
        if (!vis)
            return "the peer is not reachable: its copy of this node's users cannot be taken "
                   "back safely (they are taken over automatically if this node has quorum)";
        if (c->peer.state != S(BACKUP_MODE))
            return "the peer is not running in backup mode";
        return "this node's critical services or datastore are not healthy";
    }
    return "not allowed in this state";
}

/* START: where a freshly started machine stands, from what the previous run persisted. */
static int start_rule(const struct srm_fsm_event *ev, struct srm_fsm *c, uint32_t *ret_effects,
                      const char **ret_why)
{
    enum srm_fsm_state st = ev->u.start.state;

    if ((unsigned)ev->u.start.kind > SRM_FSM_START_CORRUPT)
        return -EINVAL;
    c->started = true;
    c->ha_enabled = ev->u.start.ha_enabled;
    c->quorate = ev->u.start.quorate;
    c->db_ok = ev->u.start.db_ok;
    c->cs = ev->u.start.cs;
    c->peer_status = SRM_FSM_PEER_UNKNOWN;
    c->recovering = false;
    c->epoch = 0;
    *ret_effects = 0;

    if (ev->u.start.kind == SRM_FSM_START_CORRUPT) {
        c->state = S(UNKNOWN);
        c->reason = R(UNKNOWN);
        *ret_why = "the persisted state cannot be read: state unknown (row 24)";
        return 0;
    }
    if (ev->u.start.kind == SRM_FSM_START_FRESH) {
        c->state = S(INITIALIZING);
        c->reason = R(INITIALIZATION);
        *ret_effects = EF(START_SERVICES);
        *ret_why = "started";
        return 0;
    }
    if ((unsigned)st >= SRM_FSM_STATE_MAX || (unsigned)ev->u.start.reason >= SRM_FSM_REASON_MAX)
        return -EINVAL;
    c->epoch = ev->u.start.epoch;
    switch (st) {
    case S(INITIALIZING):
    case S(NORMAL):
        c->state = S(INITIALIZING);
        c->reason = R(INITIALIZATION);
        *ret_effects = EF(START_SERVICES);
        *ret_why = "restarted";
        break;
    case S(FAILED_MODE):
        c->state = S(FAILED_MODE);
        c->reason = R(UNKNOWN);
        *ret_why = "restarted while failed (row 21)";
        break;
    case S(UNKNOWN):
        c->state = S(UNKNOWN);
        c->reason = R(UNKNOWN);
        *ret_why = "restarted in an unknown state";
        break;
    case S(IDLE):
    case S(BACKUP_MODE):
    case S(TAKING_OVER):
    case S(TAKING_BACK):
    case S(FAILED_OVER):
    case S(FAILED_OVER_CS_DOWN):
        /* SPEC §4 rows 5-9 and 11: the restarted node resumes, showing Initialization. */
        c->state = st;
        c->reason = R(INITIALIZATION);
        *ret_why = "restarted: resume (rows 5-9, 11)";
        break;
    default:
        /* Transitions whose outcome depends on their cause keep it. */
        c->state = st;
        c->reason = ev->u.start.reason;
        *ret_why = "restarted: resume";
        break;
    }
    /* Row 11: the services came back with the node (or went with it). */
    if (c->state == S(FAILED_OVER_CS_DOWN) && c->cs == SRM_FSM_CS_UP && c->db_ok)
        c->state = S(FAILED_OVER);
    else if (c->state == S(FAILED_OVER) && (c->cs == SRM_FSM_CS_DOWN || !c->db_ok))
        c->state = S(FAILED_OVER_CS_DOWN);
    switch (c->state) {
    case S(BACKUP_MODE):
    case S(TAKING_OVER):
    case S(TAKING_BACK):
    case S(FALLING_BACK):
    case S(BACKUP_ACTIVATED):
    case S(FAILED_OVER):
        *ret_effects = EF(START_SERVICES);
        break;
    case S(IDLE):
        *ret_effects = EF(STOP_SERVICES);
        break;
    default:
        break;
    }
    return 0;
}

/* Fills c (a copy of f) with the machine after ev; 0, SRM_EREFUSED or -EINVAL. */
static int evaluate(const struct srm_fsm *f, const struct srm_fsm_event *ev, struct srm_fsm *c,
                    uint32_t *ret_effects, const char **ret_why)
{
    *c = *f;
    *ret_effects = 0;
    if ((unsigned)ev->type >= SRM_FSM_EVENT_MAX)
        return -EINVAL;
    if (ev->type == E(PEER_LOST) && (unsigned)ev->u.loss >= SRM_FSM_LOSS_MAX)
        return -EINVAL;
    if (ev->type == E(START)) {
        if (f->started) {
            *ret_why = default_refusal[E(START)];
            return SRM_EREFUSED;
        }
        return start_rule(ev, c, ret_effects, ret_why);
    }
    if (!f->started) {
        *ret_why = "the recovery manager has not started";
        return SRM_EREFUSED;
    }

    if (ev->type == E(PEER_KEEPALIVE) || ev->type == E(PEER_BACK)) {
        if (ev->u.peer.phase < f->phase) {
            *ret_why = "stale report: sent before the peer learnt of the last recover";
            return SRM_EREFUSED;
        }
        if (ev->u.peer.phase > f->phase)
            c->phase = ev->u.peer.phase;
    }
    record_facts(c, ev);

    const struct cell *cell = &table[f->state][ev->type];
    const struct alt *alts = cell->alts;
    const char *refuse = cell->refuse;
    if (alts == NULL && refuse == NULL) {
        alts = default_alts[ev->type];
        refuse = default_refusal[ev->type];
    }
    for (const struct alt *a = alts; a && a->next != END; a++) {
        if (!alt_matches(a, c))
            continue;
        c->state = a->next == SAME ? f->state : (enum srm_fsm_state)a->next;
        c->reason = resolve_reason(c, a->reason);
        *ret_effects = a->effects;
        *ret_why = a->why;
        return 0;
    }
    if (refuse == refuse_detail)
        refuse = detailed_refusal(c, ev->type);
    *ret_why = refuse ? refuse : "no rule for this event in this state";
    return SRM_EREFUSED;
}

static bool peer_visible_facts_equal(const struct srm_fsm *a, const struct srm_fsm *b)
{
    return a->state == b->state && a->reason == b->reason &&
           (a->cs == SRM_FSM_CS_UP) == (b->cs == SRM_FSM_CS_UP) && a->db_ok == b->db_ok &&
           a->ha_enabled == b->ha_enabled && a->recovering == b->recovering &&
           a->epoch == b->epoch && a->phase == b->phase;
}

int srm_fsm_step(struct srm_fsm *fsm, const struct srm_fsm_event *ev, struct srm_fsm_step *ret_step)
{
    struct srm_fsm c;
    uint32_t effects = 0;
    const char *why = NULL;
    int r;

    r = evaluate(fsm, ev, &c, &effects, &why);
    if (r == -EINVAL)
        return r;
    if (r < 0) {
        if (ret_step) {
            *ret_step =
                (struct srm_fsm_step){fsm->state, fsm->state, fsm->reason, fsm->reason, 0, why};
        }
        return r;
    }

    /* Effects that change what this machine knows of its own services. */
    if (effects & EF(STOP_SERVICES))
        c.cs = SRM_FSM_CS_STOPPED;
    else if ((effects & EF(START_SERVICES)) && c.cs != SRM_FSM_CS_UP)
        c.cs = SRM_FSM_CS_PENDING;
    if (effects & EF(RESTART))
        c.recovering = true;
    if (ev->type == E(ADMIN_RECOVER)) {
        uint32_t seen = c.phase > c.peer.phase ? c.phase : c.peer.phase;
        c.phase = seen + 1;
    }
    if (effects & EF(RESTART))
        c.recover_phase = c.phase;
    if (c.state != S(INITIALIZING))
        c.recovering = false;
    /* A new claim on users is one generation above every claim seen so far. */
    if (c.state != fsm->state && (c.state == S(TAKING_OVER) || c.state == S(BACKUP_ACTIVATED))) {
        uint32_t seen = c.epoch > c.peer.epoch ? c.epoch : c.peer.epoch;
        c.epoch = seen + 1;
    }

    if (c.state != fsm->state || c.reason != fsm->reason || c.epoch != fsm->epoch ||
        ev->type == E(START))
        effects |= EF(PERSIST);
    if (!peer_visible_facts_equal(&c, fsm) || ev->type == E(START))
        effects |= EF(SEND_STATE);
    bool was = fsm->started && srm_fsm_alarm(fsm->state, fsm->reason);
    bool is = srm_fsm_alarm(c.state, c.reason);
    if (is && !was)
        effects |= EF(ALARM_RAISE);
    else if (was && !is)
        effects |= EF(ALARM_CLEAR);

    if (ret_step)
        *ret_step = (struct srm_fsm_step){fsm->state, c.state, fsm->reason, c.reason, effects, why};
    *fsm = c;
    return 0;
}

int srm_fsm_check(const struct srm_fsm *fsm, enum srm_fsm_event_type type, const char **ret_why)
{
    struct srm_fsm c;
    struct srm_fsm_event ev = {.type = type};
    uint32_t effects;
    const char *why = NULL;
    int r;

    if (type == E(PEER_KEEPALIVE) || type == E(PEER_BACK))
        ev.u.peer = fsm->peer;
    if (type == E(PEER_LOST))
        ev.u.loss = fsm->peer_loss;
    r = evaluate(fsm, &ev, &c, &effects, &why);
    if (ret_why)
        *ret_why = why;
    return r;
}

void srm_fsm_table_stats(struct srm_fsm_table_stats *ret_stats)
{
    struct srm_fsm_table_stats st = {0};

    for (unsigned s = 0; s < SRM_FSM_STATE_MAX; s++) {
        for (unsigned e = 0; e < SRM_FSM_EVENT_MAX; e++) {
            const struct cell *cell = &table[s][e];
            const struct alt *alts = cell->alts;
            const char *refuse = cell->refuse;
            bool total = false;

            st.cells++;
            if (e == E(START)) {
                /* START is decided by start_rule() before the machine has a state; once
                 * started, every state refuses it. */
                st.refusals++;
                continue;
            }
            if (alts == NULL && refuse == NULL) {
                alts = default_alts[e];
                refuse = default_refusal[e];
            }
            for (const struct alt *a = alts; a && a->next != END; a++) {
                st.alternatives++;
                if (a->peer == 0 && a->guard == NULL)
                    total = true;
            }
            if (refuse)
                st.refusals++;
            else if (!total)
                st.missing++;
        }
    }
    *ret_stats = st;
}
