/*
 * srm_ha_admin: the admin API of srmd (HTTPS + JSON, mutual TLS) and its metrics registry.
 *
 * Three parts, documented in ha/admin/README.md (endpoints with examples, routing, TLS rules,
 * metric families):
 *
 *  - The metrics registry (srm_admin_metrics_*): counters and gauges in labelled families
 *    that srmd fills, rendered to the Prometheus text exposition format (GET /metrics) and
 *    to JSON (GET /v1/counters, `srmctl counters`).
 *  - The JSON codec of every request and response of the API (srm_admin_*_to_json,
 *    srm_admin_*_from_json): the server and srmctl share it, and so do the nodes when one
 *    asks another for its view.
 *  - The server (srm_admin_server_*): runs on srmd's uv_loop_t, speaks HTTP/1.1 over TLS 1.3
 *    with client certificates signed by the cluster CA, and reaches srmd only through a
 *    struct srm_admin_backend (callbacks + data pointer), so tests run it against a fake.
 *    Configuration operations (parameters, users, HA flag, history) go straight to the
 *    configuration database through the struct srm_db srmd hands over (ha/db async API).
 *
 * Errors. Functions returning int return >= 0 on success, a negative errno or a negative
 * project code of common/srm_error.h on failure; output parameters (ret_*) are untouched on
 * failure. Every function must be called from the thread that runs the loop (the registry
 * and the codec are plain data and may be used from any single thread). The library does
 * not log above debug level.
 */
#ifndef SRM_ADMIN_H
#define SRM_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "srm_db.h"
#include "srm_fsm.h"

/* ------------------------------------------------------------------------------------ */
/* Metrics registry                                                                      */
/* ------------------------------------------------------------------------------------ */

/* Most labels in one family, and the longest label value (bytes). */
#define SRM_ADMIN_METRIC_LABELS_MAX 4
#define SRM_ADMIN_METRIC_VALUE_MAX  256

enum srm_admin_metric_type {
    SRM_ADMIN_METRIC_COUNTER = 0, /* only goes up; the name must end in "_total" */
    SRM_ADMIN_METRIC_GAUGE,
};

struct srm_admin_metrics;       /* the registry */
struct srm_admin_metric_family; /* one metric name with its HELP, TYPE and label names */

/* Creates an empty registry; free it with srm_admin_metrics_free(). Errors: -ENOMEM. */
int srm_admin_metrics_new(struct srm_admin_metrics **ret_metrics);

/* Frees the registry, its families and series. Accepts NULL. */
void srm_admin_metrics_free(struct srm_admin_metrics *metrics);

/*
 * Declares a family, or returns the one already declared with the same name, type and
 * labels. name: [a-zA-Z_:][a-zA-Z0-9_:]*, "_total" at the end for counters. help: one line
 * of text (escaped on output). labels: nlabels (0..SRM_ADMIN_METRIC_LABELS_MAX) names
 * [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", all different. Strings are copied.
 * *ret_family belongs to the registry and lives as long as it.
 * Errors: -EINVAL (bad name, help or labels), -EEXIST (same name, other definition),
 * -ENOMEM.
 */
int srm_admin_metrics_family(struct srm_admin_metrics *metrics, const char *name,
                             enum srm_admin_metric_type type, const char *help, unsigned nlabels,
                             const char *const *labels,
                             struct srm_admin_metric_family **ret_family);

/* The family of that name, or NULL. */
struct srm_admin_metric_family *srm_admin_metrics_find(const struct srm_admin_metrics *metrics,
                                                       const char *name);

/*
 * Sets the series with these label values (one per label of the family, valid UTF-8, at most
 * SRM_ADMIN_METRIC_VALUE_MAX bytes; copied) to value, creating it if needed. A counter may be
 * set to an absolute value (a collector copying another module's counter); it is not
 * checked to grow. Errors: -EINVAL (NULL or invalid label value, NaN for a counter, negative
 * counter), -ENOMEM.
 */
int srm_admin_metric_set(struct srm_admin_metric_family *family, const char *const *values,
                         double value);

/* Adds delta to the series (created at 0). Counters: delta >= 0. Errors: as _set. */
int srm_admin_metric_add(struct srm_admin_metric_family *family, const char *const *values,
                         double delta);

/* Reads a series. Errors: -ENOENT (no such series), -EINVAL. */
int srm_admin_metric_get(const struct srm_admin_metric_family *family, const char *const *values,
                         double *ret_value);

/* Drops one series (a node left the cluster). Errors: -ENOENT, -EINVAL. */
int srm_admin_metric_remove(struct srm_admin_metric_family *family, const char *const *values);

/* Drops every series of the family (the family itself stays). Accepts NULL. */
void srm_admin_metric_clear(struct srm_admin_metric_family *family);

/*
 * Renders the registry in the Prometheus text exposition format 0.0.4: for each family in
 * name order, "# HELP" and "# TYPE" lines, then its series sorted by label values (byte
 * order), label values escaped (\\, \", \n), values as integers when integral, else %.17g,
 * NaN and +Inf/-Inf spelled as Prometheus does. A family without series is rendered with
 * its HELP and TYPE lines only. *ret_text: NUL-terminated, malloc'd, owned by the caller;
 * *ret_len its length. Errors: -ENOMEM.
 */
int srm_admin_metrics_render_text(const struct srm_admin_metrics *metrics, char **ret_text,
                                  size_t *ret_len);

/*
 * The same content as JSON (GET /v1/counters): {"families": [{"name", "type", "help",
 * "series": [{"labels": {..}, "value": N}]}]}, same order. *ret_json: new reference owned by
 * the caller. Errors: -ENOMEM.
 */
int srm_admin_metrics_to_json(const struct srm_admin_metrics *metrics, json_t **ret_json);

/*
 * The families srmd fills (README.md "Metrics"), declared by srm_admin_metrics_standard().
 * Labels in brackets.
 */
struct srm_admin_std_metrics {
    struct srm_admin_metric_family *node_state;      /* gauge [node, state]: 1 current, 0 others */
    struct srm_admin_metric_family *node_reason;     /* gauge [node, reason]: same */
    struct srm_admin_metric_family *transitions;     /* counter [node, reason] */
    struct srm_admin_metric_family *failovers;       /* counter [node, reason] */
    struct srm_admin_metric_family *users_assigned;  /* gauge [node] */
    struct srm_admin_metric_family *users_active;    /* gauge [node] */
    struct srm_admin_metric_family *keepalives_sent; /* counter [node] */
    struct srm_admin_metric_family *keepalives_missed;   /* counter [node] */
    struct srm_admin_metric_family *service_up;          /* gauge [node, service]: 1 up, 0 down */
    struct srm_admin_metric_family *repl_lag_entries;    /* gauge [node] */
    struct srm_admin_metric_family *repl_lag_bytes;      /* gauge [node] */
    struct srm_admin_metric_family *repl_lag_ms;         /* gauge [node] */
    struct srm_admin_metric_family *repl_reconnects;     /* counter [node] */
    struct srm_admin_metric_family *repl_snapshots_sent; /* counter [node] */
    struct srm_admin_metric_family *repl_snapshots_installed; /* counter [node] */
    struct srm_admin_metric_family *repl_sync_degradations;   /* counter [node] */
};

/* Declares the standard families in metrics. Errors: as srm_admin_metrics_family(). */
int srm_admin_metrics_standard(struct srm_admin_metrics *metrics,
                               struct srm_admin_std_metrics *ret_std);

/*
 * Sets node's state and reason series: one series per state of SPEC.md §3 (1 for state, 0
 * for the others) in std->node_state, and likewise per reason in std->node_reason, so a
 * query never sees two states at 1. Errors: -EINVAL (out-of-range state or reason), -ENOMEM.
 */
int srm_admin_metrics_set_node_state(const struct srm_admin_std_metrics *std, const char *node,
                                     enum srm_fsm_state state, enum srm_fsm_reason reason);

/* ------------------------------------------------------------------------------------ */
/* Status: what a node knows of itself and of its peer, and of the whole cluster         */
/* ------------------------------------------------------------------------------------ */

#define SRM_ADMIN_SERVICES_MAX 64 /* critical services listed per node */

/* Where a node's line of the status comes from. */
enum srm_admin_source {
    SRM_ADMIN_SOURCE_SELF = 0, /* the node's own srmd answered */
    SRM_ADMIN_SOURCE_PEER,     /* its peer sees it (heartbeats) and said what it reports */
    SRM_ADMIN_SOURCE_NONE,     /* nobody sees it: state and reason are Unknown */
    SRM_ADMIN_SOURCE_MAX,
};

/* "self", "peer", "none"; NULL out of range. */
const char *srm_admin_source_name(enum srm_admin_source source);

struct srm_admin_service {
    char *name;
    bool critical;
    bool up;
};

/*
 * One node's line. Strings are owned by the struct that holds it (freed by
 * srm_admin_status_free()); -1 in a count means "not known".
 */
struct srm_admin_node_status {
    char *name;
    char *address; /* from the configuration; NULL if not known */
    enum srm_admin_source source;
    enum srm_fsm_state state;   /* SRM_FSM_STATE_UNKNOWN when source is NONE */
    enum srm_fsm_reason reason; /* SRM_FSM_REASON_UNKNOWN when source is NONE */
    int64_t since_us;           /* when the state began, µs since the epoch; 0 if not known */
    int64_t age_ms;             /* age of the information (PEER: since the peer last heard) */
    char *error;                /* why the node itself could not be asked; NULL */
    int64_t users_assigned;
    int64_t users_active;
    bool repl_known; /* the three lag figures are meaningful */
    uint64_t lag_entries, lag_bytes, lag_ms;
    size_t n_services;
    struct srm_admin_service *services;
    /* The last state its srmd wrote to the configuration database; NULL if none. */
    char *reported_state;
    char *reported_reason;
    int64_t reported_since_us;
};

struct srm_admin_group_status {
    char *name;
    bool ha_enabled;
    size_t n_nodes; /* 0..2 */
    struct srm_admin_node_status nodes[2];
};

/*
 * The status of the cluster (GET /v1/status) or of one group as its node sees it
 * (GET /v1/status?scope=local: one group, the node itself and its peer).
 */
struct srm_admin_status {
    char *answered_by;     /* node that built it */
    bool local;            /* scope=local */
    bool db_up;            /* that node's configuration database connection */
    char *config_source;   /* "database", "cache" or "none" */
    int64_t config_age_ms; /* age of the configuration snapshot; -1 if none */
    char *assignment_mode; /* NULL if not known */
    int64_t users_total;   /* -1 if not known */
    int64_t users_unassigned;
    size_t n_groups;
    struct srm_admin_group_status *groups;
};

/* Frees everything the status owns, and the status. Accepts NULL. */
void srm_admin_status_free(struct srm_admin_status *status);

/*
 * Encodes a status. States and reasons are spelled exactly as in SPEC.md §3 (README.md has
 * an example). *ret_json: new reference. Errors: -ENOMEM, -EINVAL (state out of range).
 */
int srm_admin_status_to_json(const struct srm_admin_status *status, json_t **ret_json);

/*
 * Decodes a status. Every field is type-checked, states and reasons must be SPEC.md §3
 * names, counts and lengths are bounded; unknown fields are ignored (a newer node may add
 * some). *ret_status: new status owned by the caller.
 * Errors: -EINVAL (errbuf says which field is wrong and why), -ENOMEM.
 */
int srm_admin_status_from_json(const json_t *json, struct srm_admin_status **ret_status,
                               char *errbuf, size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Requests and results of the API                                                       */
/* ------------------------------------------------------------------------------------ */

/* Operations on the state machine of a node (SPEC.md §5). */
enum srm_admin_op {
    SRM_ADMIN_OP_FAILOVER = 0,
    SRM_ADMIN_OP_FALLBACK,
    SRM_ADMIN_OP_RECOVER,
    SRM_ADMIN_OP_MAX,
};

/* "failover", "fallback", "recover"; NULL out of range. */
const char *srm_admin_op_name(enum srm_admin_op op);

/* Parses an operation name. Errors: -EINVAL. */
int srm_admin_op_parse(const char *name, enum srm_admin_op *ret_op);

/* The machine's event for an operation (what srm_fsm_check() is asked). */
enum srm_fsm_event_type srm_admin_op_event(enum srm_admin_op op);

/* The outcome of an operation on one node. */
struct srm_admin_op_result {
    char node[SRM_DB_NAME_MAX + 1];
    enum srm_admin_op op;
    bool accepted;
    int status;    /* 0 accepted, SRM_EREFUSED refused, other negative: could not be asked */
    char why[256]; /* accepted: the rule that fired; refused: srm_fsm_check()'s text;
                      otherwise what went wrong */
};

/*
 * The answer to an operation: one result per node asked (two for the recover of a group).
 * accepted is true when the operation was accepted by at least one node and refused by
 * none that could be asked (README.md "Recover").
 */
struct srm_admin_op_answer {
    enum srm_admin_op op;
    char target[SRM_DB_NAME_MAX + 1]; /* node or group named in the request */
    bool group;                       /* target is a group */
    bool accepted;
    size_t n_results; /* 1..2 */
    struct srm_admin_op_result results[2];
};

int srm_admin_op_answer_to_json(const struct srm_admin_op_answer *answer, json_t **ret_json);
int srm_admin_op_answer_from_json(const json_t *json, struct srm_admin_op_answer *ret_answer,
                                  char *errbuf, size_t errlen);

/* Largest number of user names in one request (a page of users_list too). */
#define SRM_ADMIN_USERS_MAX 10000

/*
 * Body of POST /v1/users (add), /v1/users/remove and /v1/users/assign: {"names": [...],
 * "node": "n1" or null}. node is NULL when absent or null. Names are checked with
 * srm_db_validate_user_name(); node with srm_db_validate_node_name().
 */
struct srm_admin_users_request {
    size_t n;
    char **names;
    char *node;
};

void srm_admin_users_request_clear(struct srm_admin_users_request *req);
int srm_admin_users_request_to_json(const struct srm_admin_users_request *req, json_t **ret_json);
/* Errors: -EINVAL (message names the field or the user), -ENOMEM. */
int srm_admin_users_request_from_json(const json_t *json, struct srm_admin_users_request *ret_req,
                                      char *errbuf, size_t errlen);

/* Body of PUT /v1/params/NAME: {"value": "30" | 30 | true, "node": "n1" or null}. */
struct srm_admin_param_request {
    char value[32];                 /* the value as text, what srm_db_param_parse_value() reads */
    char node[SRM_DB_NAME_MAX + 1]; /* "" for cluster-wide */
};

int srm_admin_param_request_to_json(const struct srm_admin_param_request *req, json_t **ret_json);
int srm_admin_param_request_from_json(const json_t *json, struct srm_admin_param_request *ret_req,
                                      char *errbuf, size_t errlen);

/* Body of PUT /v1/groups/GROUP/ha: {"enabled": true}. */
int srm_admin_ha_request_to_json(bool enabled, json_t **ret_json);
int srm_admin_ha_request_from_json(const json_t *json, bool *ret_enabled, char *errbuf,
                                   size_t errlen);

/*
 * A parameter's value as the API returns it: {"name", "value", "source": "default" |
 * "cluster" | "node", "node", "unit", "min", "max", "per_node", "description"}.
 */
int srm_admin_param_value_to_json(const struct srm_db_param_value *value, const char *node,
                                  json_t **ret_json);

/* An event of the history: {"id", "at_us", "at", "node", "group", "old_state", ...}. */
int srm_admin_event_to_json(const struct srm_db_event *event, json_t **ret_json);
/* Decodes one; *ret_event's strings are malloc'd (free with srm_db_event_list_free()'s rules:
 * srm_admin_event_clear()). Errors: -EINVAL, -ENOMEM. */
int srm_admin_event_from_json(const json_t *json, struct srm_db_event *ret_event, char *errbuf,
                              size_t errlen);
void srm_admin_event_clear(struct srm_db_event *event);

/*
 * An error answer: {"error": {"status": 409, "code": "SRM_EREFUSED", "message": "..."}}
 * (README.md "Errors"). code is srm_errname(err).
 */
int srm_admin_error_to_json(int http_status, int err, const char *message, json_t **ret_json);

/* ------------------------------------------------------------------------------------ */
/* The backend: what srmd implements                                                     */
/* ------------------------------------------------------------------------------------ */

/* One node's live facts, as srmd knows them. Strings and arrays are borrowed (see view). */
struct srm_admin_node_view {
    const char *name;
    enum srm_fsm_state state;
    enum srm_fsm_reason reason;
    int64_t since_us;       /* when the state began, µs since the epoch; 0 if not known */
    int64_t users_assigned; /* -1 if not known */
    int64_t users_active;   /* -1 if not known */
    bool repl_known;
    uint64_t lag_entries, lag_bytes, lag_ms;
    size_t n_services; /* at most SRM_ADMIN_SERVICES_MAX are shown */
    const struct srm_admin_service *services;
};

/* This node's view: itself, and its peer as the heartbeats show it. */
struct srm_admin_view {
    struct srm_admin_node_view self;
    bool ha_enabled;
    bool quorate;
    bool db_up;
    /* The peer: has_peer when the group has a second node. peer_status VISIBLE means it is
     * heard now (peer.state/reason are what it last reported, peer_age_ms ago); otherwise the
     * peer line shows Unknown with the reason in the error text. */
    bool has_peer;
    enum srm_fsm_peer_status peer_status;
    int64_t peer_age_ms;
    struct srm_admin_node_view peer;
};

/* An operation asked of this node's state machine. */
struct srm_admin_op_request {
    enum srm_admin_op op;
    const char *client; /* subject CN of the admin's certificate, for srmd's log */
    const char *group;  /* for RECOVER of a group: its name; NULL when asked for this node */
};

/*
 * Callbacks srmd implements; each is called on the loop, must not block and must not call
 * srm_admin_server_close() (defer it). data is the pointer given here.
 */
struct srm_admin_backend {
    /*
     * Fills *ret_view with this node's live facts. Pointers in it are borrowed until the
     * callback's caller returns to the loop (the server encodes them at once). Return 0, or a
     * negative code (the request gets 503 with srm_strerror()). Required.
     */
    int (*view)(void *data, struct srm_admin_view *ret_view);
    /*
     * Runs an operation on this node's state machine. Return 0 if accepted (why: the rule
     * that fired, may be left empty), SRM_EREFUSED if the machine refuses it, with the exact
     * text of srm_fsm_check() in why (NUL-terminated, at most whylen bytes), or another
     * negative code if it could not be asked (why says what). The effects run afterwards,
     * on the loop; the answer does not wait for them. Required.
     */
    int (*operate)(void *data, const struct srm_admin_op_request *req, char *why, size_t whylen);
    /*
     * The cluster directory: srmd's current configuration snapshot (the one it loaded from
     * the database or the cache). Borrowed: the server reads it during the call's caller and
     * copies what it keeps. NULL when srmd has none yet. May be NULL (no routing: every
     * request is served here or refused).
     */
    const struct srm_db_config *(*config)(void *data);
    /*
     * Refreshes metrics (copies counters of other modules into the registry) before it is
     * rendered for GET /metrics or GET /v1/counters. May be NULL.
     */
    void (*collect)(void *data, struct srm_admin_metrics *metrics);
    void *data;
};

/* ------------------------------------------------------------------------------------ */
/* The server                                                                            */
/* ------------------------------------------------------------------------------------ */

struct srm_admin_server;

struct srm_admin_server_options {
    const char *node; /* this node's name, as in the configuration. Required. Copied. */

    /* The HTTPS listener: address (IPv4 or IPv6 literal; NULL: "0.0.0.0") and port (0: an
     * ephemeral port, see srm_admin_server_port(); srmd passes admin_rpc_port, 20075). */
    const char *listen_host;
    uint16_t listen_port;

    /* PEM files: the cluster CA (client certificates must chain to it), this node's
     * certificate and key (also presented when this node asks another one). Required. */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;

    /* Optional plain-HTTP listener that serves GET /metrics only (README.md "Metrics").
     * metrics_host NULL: off (the default). Prometheus scrapes it without a certificate. */
    const char *metrics_host;
    uint16_t metrics_port;

    /* The configuration database (ha/db async API), borrowed; must outlive the server. NULL:
     * configuration endpoints answer 503. */
    struct srm_db *db;

    struct srm_admin_backend backend;

    /* Metrics rendered by GET /metrics and GET /v1/counters; borrowed, must outlive the
     * server. NULL: the server keeps its own (its request counters only). */
    struct srm_admin_metrics *metrics;

    /* Bounds; 0 selects the default in brackets. */
    size_t max_body;             /* request body bytes [4 MiB] */
    size_t max_header;           /* request line + headers bytes [16 KiB] */
    unsigned max_connections;    /* open connections, both listeners [128] */
    unsigned idle_timeout_ms;    /* keep-alive connection without a request [30000] */
    unsigned request_timeout_ms; /* from the first byte of a request to its end [10000] */
    unsigned peer_timeout_ms;    /* asking another node (status, forwarding) [2000] */
    unsigned events_wait_max_ms; /* longest long-poll of GET /v1/events [30000] */
    unsigned events_poll_ms;     /* a waiting long-poll re-reads the history this often
                                    even without srm_admin_server_events_changed() [500] */
};

/*
 * Creates a server on loop: loads and checks the CA, certificate and key, copies the options.
 * Nothing is bound until srm_admin_server_start(). Release with srm_admin_server_close().
 * Errors: -EINVAL (missing option, bad address), SRM_ETLS (files unreadable, key does not
 * match the certificate; debug log has OpenSSL's reason), -ENOMEM.
 */
int srm_admin_server_new(uv_loop_t *loop, const struct srm_admin_server_options *opts,
                         struct srm_admin_server **ret_server);

/* Binds and listens. Errors: negative errno of libuv (-EADDRINUSE...), -EALREADY. */
int srm_admin_server_start(struct srm_admin_server *server);

/* The bound HTTPS port (after start), and the plain metrics port (0 when off). */
uint16_t srm_admin_server_port(const struct srm_admin_server *server);
uint16_t srm_admin_server_metrics_port(const struct srm_admin_server *server);

/*
 * The history may have new events (srmd calls this from its srm_db change_cb for
 * SRM_DB_TABLE_HISTORY): long-polls of GET /v1/events re-read it now.
 */
void srm_admin_server_events_changed(struct srm_admin_server *server);

typedef void srm_admin_server_close_cb(void *data);

/*
 * Closes the listeners and every connection (requests in progress are dropped; their
 * database operations complete and are discarded), then frees the server once libuv has
 * closed every handle and calls close_cb(data) (may be NULL). Accepts NULL (close_cb is then
 * not called).
 */
void srm_admin_server_close(struct srm_admin_server *server, srm_admin_server_close_cb *close_cb,
                            void *data);

#endif
