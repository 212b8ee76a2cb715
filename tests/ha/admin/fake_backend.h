/*
 * A fake srmd behind the admin server: one real state machine (fsm/) placed in a state, so
 * that operations are accepted or refused with the exact text of srm_fsm_check(), a peer
 * view, counters, and a cluster directory (a struct srm_db_config built in memory or loaded
 * from the database). Shared by the admin tests; each test owns its fake nodes.
 */
#ifndef SRM_TEST_FAKE_BACKEND_H
#define SRM_TEST_FAKE_BACKEND_H

#include "srm_admin.h"

struct fake_node {
    char name[SRM_DB_NAME_MAX + 1];
    struct srm_fsm fsm;
    /* the peer as the heartbeats show it */
    bool has_peer;
    char peer_name[SRM_DB_NAME_MAX + 1];
    enum srm_fsm_peer_status peer_status;
    int64_t peer_age_ms;
    int64_t users_assigned, users_active;
    uint64_t lag_entries, lag_bytes, lag_ms;
    struct srm_admin_service services[2];
    size_t n_services;
    int view_error; /* returned by view() when nonzero */
    /* what was asked */
    unsigned ops[SRM_ADMIN_OP_MAX];
    unsigned accepted[SRM_ADMIN_OP_MAX];
    unsigned collects;
    char last_client[SRM_DB_NAME_MAX + 1];
    char last_group[SRM_DB_NAME_MAX + 1];
    /* directory (borrowed) and metrics */
    const struct srm_db_config *config;
    struct srm_admin_metrics *metrics;
    struct srm_admin_std_metrics std;
};

/* Places the node's machine in state/reason with a healthy, visible peer in peer_state
 * (HA on, quorum, services up). */
void fake_node_init(struct fake_node *f, const char *name, const char *peer_name,
                    enum srm_fsm_state state, enum srm_fsm_reason reason,
                    enum srm_fsm_state peer_state, enum srm_fsm_reason peer_reason);
void fake_node_fini(struct fake_node *f);

/* The backend for srm_admin_server_options. */
struct srm_admin_backend fake_node_backend(struct fake_node *f);

/*
 * A directory of n groups g1..gn, each with nodes n(2i-1), n(2i), node k at 127.0.0.k, admin
 * port as given, HA on. Free with srm_db_config_free().
 */
struct srm_db_config *fake_directory(unsigned groups, uint16_t admin_port);

/*
 * Makes a CA and certificates with scripts/make-certs in dir (a new temp dir is created
 * when dir[0] == 0; size >= 64). extra: more make-certs options ("--expired old"), may be
 * NULL. Returns 0 or -1.
 */
int fake_make_certs(char *dir, const char *extra, const char *names);

/* rm -rf dir */
void fake_rmdir(const char *dir);

#endif
