/*
 * srmd internals: the node configuration, the persisted state, the daemon.
 *
 * srmd is one libuv loop per node. It runs the node core (ha/core) and carries out its
 * decisions: Corosync heartbeats and quorum (heartbeat/), the protocol engines and their
 * critical services (ha/ipc, plus supervised processes), partition ownership in the
 * datastore (datastore/), replication to the peer (replication/), the configuration
 * database (ha/db), the admin API and metrics (ha/admin).
 */
#ifndef SRMD_H
#define SRMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srm_fsm.h"

#define SRMD_SERVICES_MAX 16
#define SRMD_UIDS_MAX     16

/* A critical service supervised as a plain process (commands run with /bin/sh -c). */
struct srmd_service_conf {
    char *name;
    bool critical;
    char *start; /* may be NULL: started by someone else */
    char *stop;  /* may be NULL */
    char *check; /* exit status 0 = running; required */
    uint32_t check_interval_ms;
};

/* The node configuration file (JSON; see ha/srmd/README.md). */
struct srmd_conf {
    char *path;
    char *cluster;    /* cluster name: CPG group prefix, replication handshake */
    char *node_name;  /* this node, as in the configuration database */
    uint32_t node_id; /* its Corosync node id */
    char *peer_name;  /* the group peer */
    uint32_t peer_id; /* its Corosync node id */
    char *group;      /* the redundancy group */
    char *dir;        /* state file and datastore live here */
    char *database;   /* libpq conninfo of the configuration database */
    char *tls_ca, *tls_cert, *tls_key;
    char *repl_listen_host; /* replication: listen address, peer address */
    uint16_t repl_listen_port;
    char *repl_peer_host;
    uint16_t repl_peer_port;
    char *admin_listen_host; /* admin API */
    uint16_t admin_listen_port;
    char *metrics_listen_host; /* plain-HTTP metrics, NULL: off */
    uint16_t metrics_listen_port;
    char *ipc_name;
    uint32_t ipc_uids[SRMD_UIDS_MAX];
    size_t n_ipc_uids;
    uint32_t ipc_gids[SRMD_UIDS_MAX];
    size_t n_ipc_gids;
    struct srmd_service_conf services[SRMD_SERVICES_MAX];
    size_t n_services;
    /* engineering timings (the SPEC §6 parameters come from the configuration database) */
    uint32_t lease_ms;      /* engines' lease [5000] */
    uint32_t fence_node_ms; /* [500] */
    uint32_t stall_ms;      /* loop gap that counts as a stall [2000] */
    uint32_t drain_ms;      /* engines' drain timeout on release [5000] */
    uint32_t catchup_ms;    /* longest wait for replication before a takeback [30000] */
};

/*
 * Reads and validates the configuration file. On error returns a negative code and writes a
 * message that says what is wrong where into errbuf.
 */
int srmd_conf_load(const char *path, struct srmd_conf *ret_conf, char *errbuf, size_t errlen);
void srmd_conf_free(struct srmd_conf *conf);

/* The state a node persists across restarts (dir/state.json, written atomically). */
struct srmd_state {
    enum srm_fsm_start_kind kind; /* what loading found: nothing, a state, or garbage */
    enum srm_fsm_state state;
    enum srm_fsm_reason reason;
    uint32_t epoch;
    /* The previous run announced its end (graceful restart): the peer did not start a fence
     * and the engines' lease may be renewed at once. */
    bool announced;
};

int srmd_state_load(const char *dir, struct srmd_state *ret_state);
int srmd_state_save(const char *dir, const struct srmd_state *state);

/* Runs the daemon until it is told to stop. Returns the exit status. */
int srmd_run(const struct srmd_conf *conf);

#endif
