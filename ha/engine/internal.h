/*
 * srm-engine, the reference protocol engine: what its files share.
 *
 *   main.c     options, the libuv loop, signals, `srm-engine ctl`
 *   model.c    partitions and users, libsrm's callbacks, the writes (logins, presence, SIP
 *              registrations, dual-connection sessions) and the counters
 *   load.c     loading a partition's users (users file or PostgreSQL) in the thread pool
 *   control.c  the control socket and the status JSON
 *
 * See ha/engine/README.md for the behaviour.
 */
#ifndef SRM_ENGINE_INTERNAL_H
#define SRM_ENGINE_INTERNAL_H

#include "srm.h"
#include "srm_ds.h"

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ENGINE_SERVICES  2
#define ENGINE_PARTS_MAX SRM_PARTS_MAX
#define ENGINE_RESOURCE  "srm-engine"
#define ENGINE_TICK_MS   10

/* A user's session on this node. */
enum user_state {
    USER_NEW = 0,  /* no session here */
    USER_ACTIVE,   /* active session written in its partition (served here) */
    USER_INACTIVE, /* inactive second session (dual connection) kept on this node */
};

struct user {
    const char *name; /* in the partition's name arena */
    uint8_t state;    /* enum user_state */
    uint32_t gen;     /* the partition's activation generation this user was brought to */
    uint64_t due_ms;  /* next action: login / inactive session not before, or SIP
                         re-registration when active */
};

struct part {
    uint32_t id;
    char home[SRM_NODE_NAME_MAX + 1];
    /* users */
    bool loading;
    bool loaded;
    int load_error;
    uint64_t load_ms; /* how long the last load took */
    struct user *users;
    size_t n_users;
    char *arena; /* user names */
    /* serving */
    bool served; /* granted and not stopped (libsrm has the final word) */
    uint64_t epoch;
    uint32_t gen; /* +1 at each SERVE: sessions of older generations are inactive */
    uint64_t served_since_ms;
    uint64_t first_write_ms; /* SERVE to the first committed write in it (0: none yet) */
    uint64_t all_clients_ms; /* SERVE to every user's session materialized (0: not yet) */
    bool first_write_seen, all_clients_seen;
    size_t login_cursor;  /* next user to log in (or to activate) */
    size_t sip_cursor;    /* next user to look at for SIP re-registration */
    size_t backup_cursor; /* next user to give an inactive session (peer partition) */
    /* A pass over the users that found nothing to do sleeps until the earliest re-login. */
    uint64_t login_idle_until, backup_idle_until;
    uint64_t login_pass_min, backup_pass_min;
    bool login_pass_work, backup_pass_work;
    /* counters (SPEC.md §5) */
    uint64_t active;          /* ActiveJsmSessions */
    uint64_t inactive;        /* InactiveJsmSessions */
    uint64_t client;          /* JsmSessionsClient: active sessions written */
    uint64_t client_inactive; /* JsmSessionsClientInactive: inactive sessions written */
};

struct service {
    const char *name;
    bool up;
};

/* A committed transaction's sync writes to one partition, waiting for the peer. */
struct pending_sync {
    uint32_t part;
    uint32_t writes;
    uint64_t seq;
    uint64_t commit_wall_ms;
};

#define ENGINE_PENDING_MAX 8192

struct engine_opts {
    const char *node_name;
    uint32_t node_id;
    const char *run_dir;
    const char *data_dir;
    const char *ipc_name;
    const char *users_file;
    const char *pg; /* libpq conninfo; NULL: PG* environment */
    const char *status_file;
    const char *control_path;
    const char *acked_file; /* journal of acknowledged sync writes (default DIR/acked.log) */
    unsigned login_rate;    /* sessions opened (logins, inactive sessions) per second */
    unsigned activate_rate; /* sessions activated after a takeover per second */
    unsigned presence_rate; /* presence updates per second */
    unsigned sip_expiry_s;  /* SIP registration expiry; re-registered at 80% of it */
    bool dual;              /* keep inactive sessions for the peer's users */
    enum srm_quorum_mode quorum;
    enum srm_ds_sync_mode sync;
    uint32_t peer_node_id; /* 0: srmd's */
};

struct engine {
    struct engine_opts o;
    uv_loop_t *loop;
    struct srm_client *client;
    struct srm_ds_env *env;
    uint32_t node_id;
    uint32_t peer_id;
    char peer_name[SRM_NODE_NAME_MAX + 1];
    uv_poll_t client_poll;
    uv_timer_t tick;
    uv_timer_t status_timer;
    uv_signal_t sigterm, sigint;
    uv_pipe_t control;
    bool control_open;
    bool stopping;
    /* services */
    struct service svc[ENGINE_SERVICES];
    bool services_running;
    bool fail_next_start;
    /* partitions */
    struct part *parts[ENGINE_PARTS_MAX];
    size_t n_parts;
    struct srm_rng rng;
    /* rate budgets (tokens) */
    double login_tokens, activate_tokens, presence_tokens;
    uint64_t last_tick_ms;
    /* statistics */
    uint64_t writes_total, writes_last, writes_per_s;
    uint64_t logins_total, presence_total, sip_total, activations_total, inactive_total;
    uint64_t stale_refusals;
    uint64_t txn_failures;
    uint64_t last_status_ms;
    char last_stop[256];
    /* sync writes (login, SIP registration) committed and waiting for the peer to apply
     * them: acknowledged (journaled) once srmd's replication reports them applied, or
     * once it degrades sync to async (journaled as such) */
    struct pending_sync pending[ENGINE_PENDING_MAX];
    size_t pending_head, pending_n;
    uint64_t acked_writes, degraded_writes, pending_overflows;
    FILE *acked;
    /* users file, parsed once, all partitions */
    bool file_loaded;
};

/* ---- main.c */
uint64_t engine_now_ms(void);

/* ---- model.c */
int engine_client_start(struct engine *e);
struct part *engine_part(struct engine *e, uint32_t id, bool create);
void engine_tick(struct engine *e);
/* Journals and counts the sync writes the peer has applied (or that degraded to async). */
void engine_sync_poll(struct engine *e);
/* Sync writes committed and not yet acknowledged. */
uint64_t engine_pending_writes(const struct engine *e);
void engine_counters_send(struct engine *e);
/* Users of a partition arrived (from load.c); takes the arrays. */
void engine_part_users(struct engine *e, struct part *p, struct user *users, size_t n, char *arena,
                       int err, uint64_t load_ms);
uint64_t engine_users_served(const struct engine *e);
void engine_datastore_open(struct engine *e);
void engine_shutdown_serving(struct engine *e);

/* ---- load.c */
/* Starts loading the users of p (file or database) unless loading or loaded. */
void engine_load(struct engine *e, struct part *p);
/* Parses a users file: one user per line, "NAME PARTITION" (partition = home node id). */
int engine_users_file_read(const char *path, uint32_t part, struct user **ret_users, size_t *ret_n,
                           char **ret_arena);

/* ---- control.c */
int engine_control_start(struct engine *e);
void engine_control_stop(struct engine *e);
/* The status document (a JSON object, one line); malloc'd, caller frees. */
char *engine_status_json(struct engine *e);
/* The same as key=value lines: "engine ..." then one "part ..." per partition. */
char *engine_status_text(struct engine *e);
void engine_status_write(struct engine *e);
/* Runs one control command line; returns a malloc'd response ending with a newline. */
char *engine_control_command(struct engine *e, const char *line);

#endif
