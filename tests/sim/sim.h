/*
 * A deterministic simulator of one redundancy group: two nodes, each running the real
 * state machine (fsm/) under a model of what srmd does around it.
 *
 * Everything is simulated and seeded: a clock, Corosync (membership with detection and
 * merge delays, quorum counted over the group's two nodes plus other voters, CPG delivery
 * in order, process-down notices), the network between the nodes (delay, jitter, delay
 * spikes, isolation of a node), the protocol engines (they serve the partitions srmd gives
 * them and stop by themselves when srmd has not renewed their lease), critical services
 * (start time, failures past the critical-service-down delay, start failures), the
 * datastore (failure and recovery) and the timing rules of SPEC.md §6 (keepalive interval
 * and timeout, initialization timeout, critical-service-down delay, automatic fallback).
 *
 * Invariants are checked after every event: a partition is never served by both nodes
 * (always, and in particular while the two can talk); a node takes over a partition of a
 * peer it cannot see only while its node has quorum, as Corosync's current membership on
 * that node says at that moment (within the detection window after a cut, the previous
 * membership still stands: that is what quorum means in a Corosync cluster).
 */
#ifndef SRM_SIM_H
#define SRM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "srm_fsm.h"

#define SIM_NODES 2

struct sim_params {
    int64_t keepalive_interval;  /* ms; SPEC §6 default 15 s */
    int64_t keepalive_timeout;   /* 60 s */
    int64_t init_timeout;        /* 120 s */
    int64_t cs_down_delay;       /* 90 s */
    bool auto_fallback;          /* false */
    int64_t auto_fallback_delay; /* 30 min */
    int64_t detect;              /* Corosync membership detection after a loss: 2.2 s */
    int64_t merge;               /* membership merge after a heal or a boot: 1.4 s */
    int64_t procdown;            /* CPG notice that a process left: 5 ms */
    int64_t net_delay;           /* one-way delay between the nodes: 1 ms */
    int64_t net_jitter;          /* up to this much more, uniformly */
    int64_t lease;               /* engines keep serving this long without srmd: 5 s */
    int64_t fence_node;          /* wait after the peer's node left before acquiring: 500 ms */
    int64_t fence_process;       /* after its srmd died: lease + 1 s */
    int64_t svc_start;           /* critical services start in: 2 s */
    int64_t release_time;        /* engines stop serving a partition in: 100 ms */
    int64_t acquire_time;        /* new owner epoch + engines serving: 50 ms */
    int64_t ha_propagation;      /* configuration change reaches srmd in: 300 ms */
    int others;                  /* other voters in the cluster besides the two nodes */
};

void sim_params_default(struct sim_params *p);

/* Sets one parameter by name ("keepalive_interval", ...) from a string ("15s", "500ms",
 * "30m", "2h", "true", "3"). Returns 0 or -EINVAL. */
int sim_params_set(struct sim_params *p, const char *name, const char *value);

/* Parses "15s", "500ms", "2m", "1h", "250" (ms). Returns 0 or -EINVAL. */
int sim_parse_duration(const char *s, int64_t *ret_ms);

struct sim;

int sim_new(const struct sim_params *p, uint64_t seed, struct sim **ret_sim);
void sim_free(struct sim *sim);

/* Timeline output: every transition, admin command and fault, with the time. */
void sim_set_timeline(struct sim *sim, FILE *out);
/* Debug trace of every delivered message and executor action (very verbose). */
void sim_set_trace(struct sim *sim, FILE *out);

int64_t sim_now(const struct sim *sim);
void sim_run_for(struct sim *sim, int64_t ms);
/* Runs until both nodes are in stable states with no pending work, at most max_ms.
 * Returns 0 when settled, -ETIMEDOUT otherwise. */
int sim_settle(struct sim *sim, int64_t max_ms);

/* Nodes are 0 and 1 (named n1 and n2). */
const struct srm_fsm *sim_fsm(const struct sim *sim, int node);
unsigned sim_serving(const struct sim *sim, int node); /* SRM_FSM_PART_* */
bool sim_srm_running(const struct sim *sim, int node);
bool sim_node_powered(const struct sim *sim, int node);

/* What a node finds on disk when its srmd next starts (before sim_act(SIM_POWER_ON)). */
void sim_set_persisted(struct sim *sim, int node, enum srm_fsm_state state,
                       enum srm_fsm_reason reason, uint32_t epoch);

/* Faults and actions. */
enum sim_action {
    SIM_POWER_ON,
    SIM_POWER_OFF,
    SIM_CRASH_SRM, /* kill -9 of srmd */
    SIM_STOP_SRM,  /* graceful stop, announced to the peer */
    SIM_START_SRM,
    SIM_RESTART_SRM, /* graceful restart */
    SIM_PAUSE,       /* SIGSTOP srmd */
    SIM_RESUME,
    SIM_ISOLATE,        /* cut the node off from everyone */
    SIM_HEAL,           /* reconnect every node */
    SIM_CS_DOWN,        /* a critical service breaks */
    SIM_CS_REPAIR,      /* it is repaired (and runs again if services are supposed to run) */
    SIM_START_SERVICES, /* an admin starts the node's critical services by hand */
    SIM_STARTFAIL_ON,
    SIM_STARTFAIL_OFF,
    SIM_DB_FAIL,
    SIM_DB_OK,
    SIM_TAKEOVER_FAIL, /* the node's next takeover fails */
    SIM_TAKEBACK_FAIL, /* the node's next takeback fails */
    SIM_INTERNAL_ERROR,
    SIM_CORRUPT_STATE, /* its persisted state becomes unreadable */
    SIM_DELAY_SPIKE,   /* messages between the nodes take arg ms more for a while */
    SIM_HA_ON,         /* node is ignored */
    SIM_HA_OFF,
    SIM_ACTION_MAX
};

const char *sim_action_name(enum sim_action a);
int sim_action_parse(const char *s, enum sim_action *ret);
void sim_act(struct sim *sim, enum sim_action a, int node, int64_t arg);

/* Admin operations through srmctl. Return 0, SRM_EREFUSED (why says why) or
 * SRM_EUNREACHABLE. recover goes to both nodes (node ignored); it succeeds if one
 * accepted it. */
int sim_admin(struct sim *sim, enum srm_fsm_event_type op, int node, const char **ret_why);

/* The first invariant violation, or NULL. */
const char *sim_violation(const struct sim *sim);

/* Counters. */
struct sim_stats {
    uint64_t events;
    uint64_t transitions;
    uint64_t messages;
    uint64_t takeovers; /* partitions acquired while the peer was out of sight */
    uint64_t refusals;
};
void sim_stats(const struct sim *sim, struct sim_stats *ret);

/* Random numbers from the simulation's generator (for schedule generation). */
uint64_t sim_rand(struct sim *sim);

#endif
