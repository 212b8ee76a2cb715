/* srmd's internal structure, shared by its files. */
#ifndef SRMD_INTERNAL_H
#define SRMD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "srm_core.h"
#include "srm_db.h"
#include "srm_ds.h"
#include "srm_hb.h"
#include "srm_ipc.h"
#include "srm_repl.h"
#include "srmd.h"

#define SRMD_CLIENTS_MAX  32
#define SRMD_CMDS_MAX     64
#define SRMD_EXIT_RESTART 75 /* srmd asks its supervisor to start it again (SIGHUP) */
#define SRMD_HISTORY_MAX  64

/* What a node tells its peer besides the state machine's report (the core's extension). */
struct srmd_ext {
    uint64_t epoch_own;     /* epoch of the sender's own partition in its datastore */
    uint64_t epoch_of_mine; /* epoch of the receiver's partition in the sender's datastore */
    uint32_t users_active;
    uint32_t users_inactive;
    uint16_t services_up;
    uint16_t services_total;
};
#define SRMD_EXT_SIZE 32
void srmd_ext_encode(const struct srmd_ext *e, uint8_t buf[SRMD_EXT_SIZE]);
/* Unknown or short extensions decode as zeros. */
void srmd_ext_decode(const void *buf, size_t len, struct srmd_ext *ret);

/* SPEC §6 parameters in force, from the configuration database (or its cache). */
struct srmd_params {
    int64_t keepalive_interval, keepalive_timeout, init_keepalive_timeout; /* s */
    int64_t critical_service_down_delay;                                   /* s */
    bool automatic_fallback;
    int64_t automatic_fallback_delay; /* s */
    int64_t relogin_lower, relogin_upper;
};

/* A supervised process service. */
struct srmd_proc {
    const struct srmd_service_conf *conf;
    struct srmd *d;
    uv_timer_t timer;
    uv_process_t check;
    bool checking;
    bool up;
    bool known; /* a check finished at least once */
    uint64_t down_since;
    bool start_failed;
};

struct srmd_transition {
    uint64_t at_ms; /* wall clock */
    enum srm_fsm_state from, to;
    enum srm_fsm_reason from_reason, to_reason;
    enum srm_fsm_event_type event;
    const char *why;
};

struct srmd {
    const struct srmd_conf *conf;
    uv_loop_t *loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool stopping, restart;
    uint64_t incarnation;

    /* timers; listed so that they are initialised together */
    uv_timer_t hb_timer, core_timer, lease_timer, stall_timer, resume_timer, start_timer,
        catchup_timer, ds_timer;
    uv_timer_t *timers[8];

    /* configuration */
    struct srm_db *db;
    struct srm_db_config *cfg; /* the snapshot in force */
    bool db_up;
    uint32_t self_part, peer_part; /* database node ids: the partitions */
    struct srmd_params params;
    bool ha_enabled;
    char *prev_state_name, *prev_reason_name; /* for state reports */

    /* the node core and the heartbeat */
    struct srm_core *core;
    struct srm_hb *hb;
    uv_poll_t hb_polls[SRM_HB_FDS_MAX];
    size_t n_hb_polls;
    bool peer_back_pending;
    struct srmd_ext peer_ext;
    uint64_t stall_last;

    /* the datastore and replication */
    struct srm_ds_env *ds;
    bool ds_ok;
    struct srm_repl *repl;
    enum srm_repl_role repl_role[2]; /* declared roles of the own and the peer's partition */
    bool core_started;

    /* engines and services */
    struct srm_ipc_server *ipc;
    bool lease_pending;
    uint64_t lease_renewed_at;
    enum srm_core_svc svc_state;
    uint64_t svc_down_since;
    uint16_t svc_up, svc_total;
    bool services_stopped; /* stopped on the machine's request */
    bool services_starting;
    uint64_t services_start_at;
    bool engine_start_failed; /* an engine refused START_SERVICES */
    bool ipc_seen_services;   /* some engine registered a service since start */
    uint64_t started_ms;
    struct srmd_proc *procs; /* supervised processes */
    uv_timer_t svc_timer;    /* re-evaluates the services every second */

    /* the executor's operation in progress */
    struct {
        bool busy, acquire, waiting_catchup;
        unsigned parts;
        uint32_t cmds[SRMD_CMDS_MAX];
        size_t ncmds;
        uint64_t catchup_deadline;
        uint64_t moving_since_ns; /* ownership change started (CLOCK_MONOTONIC) */
        uv_timer_t timer;
    } op;
    uint32_t hb_raised_ms; /* keepalive timeout last said to be raised (srmd_hb_timing_check) */

    /* the admin API */
    struct srmd_admin *admin;

    struct srmd_state st;
    struct srmd_transition history[SRMD_HISTORY_MAX];
    unsigned history_next, history_n;

    struct {
        uint64_t transitions;
        uint64_t failovers[SRM_FSM_REASON_MAX];
        uint64_t acquisitions;
        uint64_t peer_lost[SRM_HB_LOSS_MAX];
        uint64_t bad_reports;
        uint64_t stalls;
        uint32_t active, inactive, client, client_inactive; /* engines' session counters */
    } counters;
};

/* node.c */
void srmd_core_kick(struct srmd *d);
void srmd_hb_rearm(struct srmd *d);
void srmd_op_continue(struct srmd *d);
void srmd_op_start(struct srmd *d);
long srmd_fault(struct srmd *d, const char *name, bool consume);
void srmd_lease_renew(struct srmd *d);
void srmd_hb_timing_check(struct srmd *d);
void srmd_stop(struct srmd *d);
void srmd_core_start_cb(uv_timer_t *t);

/* db.c: the configuration database */
int srmd_db_start(struct srmd *d, char *err, size_t errlen);
void srmd_db_stop(struct srmd *d);
void srmd_db_free(struct srmd *d);
void srmd_db_report_state(struct srmd *d, const struct srm_fsm_step *st,
                          enum srm_fsm_event_type type);
void srmd_core_params(const struct srmd *d, struct srm_core_params *ret);
void srmd_cpg_group_name(const struct srmd_conf *conf, char *buf, size_t size);
void srmd_history_add(struct srmd *d, const struct srm_fsm_step *st, enum srm_fsm_event_type type);

/* ds.c: the datastore and replication events */
int srmd_datastore_open(struct srmd *d, char *err, size_t errlen);
void srmd_datastore_close(struct srmd *d);
void srmd_repl_event_cb(struct srm_repl *r, const struct srm_repl_event *ev, void *data);

/* engines.c: engines over IPC, critical services, supervised processes */
int srmd_ipc_start(struct srmd *d, char *err, size_t errlen);
void srmd_ipc_ack(struct srmd *d, uint32_t cmd_id, int result);
void srmd_ipc_disconnect_cmd(struct srmd *d, uint32_t cmd_id);
unsigned srmd_engines_serving(struct srmd *d);
size_t srmd_engines_count(struct srmd *d);
int srmd_services_start(struct srmd *d);
void srmd_services_stop(struct srmd *d);
void srmd_services_command(struct srmd *d, bool start);

/* admin.c: the admin API and metrics */
int srmd_admin_start(struct srmd *d, char *err, size_t errlen);
void srmd_admin_stop(struct srmd *d);
void srmd_admin_free(struct srmd *d);
void srmd_admin_transition(struct srmd *d, const struct srm_fsm_step *st);

#endif
