/*
 * Shared by the files of ha/admin: growable buffers, routing decisions (route.c), the HTTPS
 * client used to ask other nodes (client.c), connections and requests (http.c) and the
 * endpoint handlers (server.c).
 */
#ifndef SRM_ADMIN_INTERNAL_H
#define SRM_ADMIN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <openssl/ssl.h>

#include "srm_admin.h"
#include "srm_error.h"

/* ---- growable byte buffer (util.c); an allocation failure is remembered in oom ---- */

struct srm__admin_buf {
    char *data;
    size_t len, cap;
    bool oom;
};

void srm__admin_buf_put(struct srm__admin_buf *b, const void *p, size_t n);
void srm__admin_buf_puts(struct srm__admin_buf *b, const char *s);
void srm__admin_buf_printf(struct srm__admin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NUL-terminates (not counted in len); -ENOMEM if any earlier growth failed. */
int srm__admin_buf_terminate(struct srm__admin_buf *b);
void srm__admin_buf_free(struct srm__admin_buf *b);

bool srm__admin_utf8_valid(const char *s, size_t len);

/* snprintf where truncation is acceptable (messages). */
void srm__admin_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Percent-decodes [s, s+len) into out (NUL-terminated). -EINVAL: bad escape, NUL, too long. */
int srm__admin_pct_decode(const char *s, size_t len, char *out, size_t outlen);

/* Finds key in a query string ("a=1&b=2"), decoded into out. 1 found, 0 absent, -EINVAL. */
int srm__admin_query_get(const char *query, const char *key, char *out, size_t outlen);

/* Percent-encodes s for a path segment or query value. */
void srm__admin_pct_encode(struct srm__admin_buf *b, const char *s);

/* Maps an error code of the API to the HTTP status it is answered with. */
int srm__admin_http_status(int err);

/* ---- routing (route.c): pure decisions over the cluster directory ---- */

/* Where another node's admin API is: https://node:port/, connecting to host. */
struct srm__admin_target {
    char node[SRM_DB_NAME_MAX + 1];
    char host[SRM_DB_ADDRESS_MAX + 1]; /* address without brackets or port */
    uint16_t port;
};

enum srm__admin_route_kind {
    SRM__ADMIN_ROUTE_LOCAL = 0, /* serve it here */
    SRM__ADMIN_ROUTE_REDIRECT,  /* 307 to targets[0] */
    SRM__ADMIN_ROUTE_FORWARD,   /* ask targets in order, the first that answers; none: here */
    SRM__ADMIN_ROUTE_FANOUT,    /* ask every target (and this node if include_self) */
    SRM__ADMIN_ROUTE_NOTFOUND,  /* no such node or group: 404 with msg */
    SRM__ADMIN_ROUTE_NODIR,     /* not this node, and no directory to find it: 503 with msg */
};

enum srm__admin_route_what {
    SRM__ADMIN_ROUTE_NODE = 0,      /* failover/fallback/recover/counters of NODE */
    SRM__ADMIN_ROUTE_GROUP_RECOVER, /* recover GROUP: both its nodes */
    SRM__ADMIN_ROUTE_GROUP_HA,      /* ha enable|disable GROUP: a node of the group */
    SRM__ADMIN_ROUTE_CLUSTER,       /* status: every other node */
};

struct srm__admin_route {
    enum srm__admin_route_kind kind;
    bool include_self;
    size_t n;
    struct srm__admin_target *targets; /* malloc'd; srm__admin_route_clear() */
    char msg[256];
};

/*
 * Decides where a request goes. cfg may be NULL (no directory yet). name: the node or group
 * named in the request (NULL for CLUSTER). Returns 0 (decision in *ret_route) or -ENOMEM.
 */
int srm__admin_route(const struct srm_db_config *cfg, const char *self,
                     enum srm__admin_route_what what, const char *name,
                     struct srm__admin_route *ret_route);
void srm__admin_route_clear(struct srm__admin_route *route);

/* Fills a target for a node of the directory. Errors: -EINVAL (unusable address). */
int srm__admin_target_of(const struct srm_db_config *cfg, const struct srm_db_node *node,
                         struct srm__admin_target *ret_target);

/* "https://node:port" + path_and_query; and curl's CONNECT_TO entry "node:port:host:port". */
void srm__admin_target_url(const struct srm__admin_target *t, const char *path_and_query,
                           struct srm__admin_buf *out);
void srm__admin_target_connect_to(const struct srm__admin_target *t, char *out, size_t outlen);

/* ---- the client: this node asking others (client.c), libcurl multi on the loop ---- */

struct srm__admin_client;

/*
 * status: 0 and the HTTP status and body of the answer, or a negative code (-ETIMEDOUT,
 * SRM_EUNREACHABLE, SRM_ETLS, SRM_EPEER_CERT, -ECANCELED) with errmsg. body is valid during
 * the call only.
 */
typedef void srm__admin_fetch_cb(void *data, int status, long http_status, const char *body,
                                 size_t len, const char *errmsg);

int srm__admin_client_new(uv_loop_t *loop, const char *ca, const char *cert, const char *key,
                          struct srm__admin_client **ret_client);
/* Every transfer in progress completes with -ECANCELED before this returns; the client is
 * freed once its handles are closed, then done_cb(data). */
void srm__admin_client_close(struct srm__admin_client *c, void (*done_cb)(void *), void *data);
int srm__admin_client_fetch(struct srm__admin_client *c, const struct srm__admin_target *t,
                            const char *method, const char *path_and_query, const char *body,
                            const char *on_behalf_of, unsigned timeout_ms, srm__admin_fetch_cb *cb,
                            void *data);

/* ---- status assembly (status.c) ---- */

/* The local group's status (scope=local) from the backend. */
int srm__admin_status_local(const struct srm_admin_view *view, const struct srm_db_config *cfg,
                            const char *self, bool db_up, int64_t now_us,
                            struct srm_admin_status **ret_status);

/*
 * The cluster skeleton: every group and node of cfg with what the database says, each node
 * Unknown (source NONE, error "not asked") until merged; the local group's lines are
 * replaced by local's. cfg may be NULL: a copy of local.
 */
int srm__admin_status_skeleton(const struct srm_db_config *cfg,
                               const struct srm_admin_status *local, int64_t now_us,
                               struct srm_admin_status **ret_status);

/* Merges another node's scope=local answer into the cluster status (SELF beats PEER beats NONE). */
void srm__admin_status_merge(struct srm_admin_status *into, const struct srm_admin_status *from);

/* Marks node's line as not answering (err text), unless a better source already filled it. */
void srm__admin_status_unreachable(struct srm_admin_status *st, const char *node, const char *err);

/* Deep copy of one node line. -ENOMEM. */
int srm__admin_node_status_copy(struct srm_admin_node_status *dst,
                                const struct srm_admin_node_status *src);
void srm__admin_node_status_clear(struct srm_admin_node_status *n);

/* ---- connections and requests (http.c) ---- */

struct srm__admin_conn;

struct srm__admin_req {
    struct srm_admin_server *s;
    struct srm__admin_conn *conn; /* NULL once the connection is gone */
    enum http_method method;
    struct srm__admin_buf url;
    struct srm__admin_buf body;
    char path[1024];                  /* raw (still percent-encoded) path */
    char query[2048];                 /* raw query, "" if none */
    char client[SRM_DB_NAME_MAX + 1]; /* the admin's CN, or the on-behalf-of of a node */
    char on_behalf[SRM_DB_NAME_MAX + 1];
    bool expect_continue;
    bool answered;
    int pending; /* asynchronous operations outstanding; freed when 0 and answered */
    /* handler state */
    void *ctx;
    void (*ctx_free)(void *ctx);
    /* long-poll */
    struct srm__admin_req *wait_next;
    uint64_t wait_deadline;
    bool waiting;
};

/* Answers: body is stolen (may be NULL). Frees the request when nothing is pending. */
void srm__admin_reply_json(struct srm__admin_req *req, int status, json_t *body,
                           const char *extra_headers);
void srm__admin_reply_raw(struct srm__admin_req *req, int status, const char *content_type,
                          const char *body, size_t len, const char *extra_headers);
void srm__admin_reply_error(struct srm__admin_req *req, int status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An asynchronous step finished: frees the request if answered and nothing else is pending. */
void srm__admin_req_release(struct srm__admin_req *req);

/* ---- the server object, shared by http.c and server.c ---- */

struct srm_admin_server {
    uv_loop_t *loop;
    struct srm_admin_server_options o;
    char *node, *listen_host, *metrics_host, *ca_file, *cert_file, *key_file;
    SSL_CTX *ssl_ctx;
    uv_tcp_t listener, metrics_listener;
    bool started, metrics_on, closing;
    uint16_t port, metrics_port;
    unsigned nconns;
    struct srm__admin_conn *conns;
    int open_handles;
    struct srm__admin_client *client;
    bool client_open;
    struct srm_admin_metrics *own_metrics;
    struct srm_admin_metrics *metrics;
    struct srm_admin_metric_family *m_requests;
    /* long-polls of GET /v1/events */
    struct srm__admin_req *waiters;
    unsigned nwaiters;
    uv_timer_t wait_timer;
    srm_admin_server_close_cb *close_cb;
    void *close_data;
};

/* Handles a complete request (server.c). */
void srm__admin_dispatch(struct srm__admin_req *req, bool plain);

/* Drops a long-poll waiter from the list (its connection went away). */
void srm__admin_unwait(struct srm__admin_req *req);

int srm__admin_listen(struct srm_admin_server *s);
void srm__admin_close_conns(struct srm_admin_server *s);
void srm__admin_handle_closed(uv_handle_t *h);
void srm__admin_maybe_finish(struct srm_admin_server *s);

#endif
