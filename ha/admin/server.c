/*
 * The server's lifecycle and the endpoint handlers (README.md "Endpoints"). Each handler
 * checks its input completely (400 with a message that says what is wrong), then serves the
 * request here, through the backend or the configuration database, or sends it where the
 * routing decision says (route.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "srm_log.h"

#define SEGS_MAX 6
#define SEG_LEN  (SRM_DB_USER_NAME_MAX + 1)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- lifecycle ---- */

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = true;
    return c;
}

static int tls_setup(struct srm_admin_server *s)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return -ENOMEM;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        SSL_CTX_load_verify_locations(ctx, s->ca_file, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, s->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, s->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char d[256];
        ERR_error_string_n(ERR_get_error(), d, sizeof(d));
        ERR_clear_error();
        srm_log_debug("admin: TLS setup failed (ca %s, cert %s, key %s): %s", s->ca_file,
                      s->cert_file, s->key_file, d);
        SSL_CTX_free(ctx);
        return SRM_ETLS;
    }
    /* Every client presents a certificate of the cluster CA: admins (srmctl) and nodes. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    STACK_OF(X509_NAME) *cas = SSL_load_client_CA_file(s->ca_file);
    if (cas)
        SSL_CTX_set_client_CA_list(ctx, cas);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    s->ssl_ctx = ctx;
    return 0;
}

int srm_admin_server_new(uv_loop_t *loop, const struct srm_admin_server_options *opts,
                         struct srm_admin_server **ret_server)
{
    if (!loop || !opts || !opts->node || !opts->ca_file || !opts->cert_file || !opts->key_file ||
        !opts->backend.view || !opts->backend.operate ||
        srm_db_validate_node_name(opts->node, NULL, 0) < 0)
        return -EINVAL;
    struct srm_admin_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    bool oom = false;
    s->loop = loop;
    s->o = *opts;
    s->node = dup_opt(opts->node, &oom);
    s->listen_host = dup_opt(opts->listen_host ? opts->listen_host : "0.0.0.0", &oom);
    s->metrics_host = dup_opt(opts->metrics_host, &oom);
    s->ca_file = dup_opt(opts->ca_file, &oom);
    s->cert_file = dup_opt(opts->cert_file, &oom);
    s->key_file = dup_opt(opts->key_file, &oom);
    struct srm_admin_server_options *o = &s->o;
    o->node = o->listen_host = o->metrics_host = o->ca_file = o->cert_file = o->key_file = NULL;
    if (!o->max_body)
        o->max_body = 4u << 20;
    if (!o->max_header)
        o->max_header = 16u << 10;
    if (!o->max_connections)
        o->max_connections = 128;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = 30000;
    if (!o->request_timeout_ms)
        o->request_timeout_ms = 10000;
    if (!o->peer_timeout_ms)
        o->peer_timeout_ms = 2000;
    if (!o->events_wait_max_ms)
        o->events_wait_max_ms = 30000;
    if (!o->events_poll_ms)
        o->events_poll_ms = 500;
    int rc = oom ? -ENOMEM : 0;
    if (rc == 0)
        rc = srm_admin_metrics_new(&s->own_metrics);
    s->metrics = o->metrics ? o->metrics : s->own_metrics;
    if (rc == 0) {
        static const char *const code[] = {"code"};
        rc = srm_admin_metrics_family(
            s->metrics, "srm_admin_requests_total", SRM_ADMIN_METRIC_COUNTER,
            "Admin API requests answered, by HTTP status", 1, code, &s->m_requests);
    }
    if (rc == 0)
        rc = tls_setup(s);
    if (rc < 0) {
        SSL_CTX_free(s->ssl_ctx);
        srm_admin_metrics_free(s->own_metrics);
        free(s->node);
        free(s->listen_host);
        free(s->metrics_host);
        free(s->ca_file);
        free(s->cert_file);
        free(s->key_file);
        free(s);
        return rc;
    }
    *ret_server = s;
    return 0;
}

int srm_admin_server_start(struct srm_admin_server *s)
{
    if (s->started)
        return -EALREADY;
    int rc = srm__admin_client_new(s->loop, s->ca_file, s->cert_file, s->key_file, &s->client);
    if (rc < 0)
        return rc;
    s->client_open = true;
    rc = srm__admin_listen(s);
    if (rc < 0) {
        srm__admin_client_close(s->client, NULL, NULL);
        s->client_open = false; /* its handles still close on the loop; see close_client */
        s->client = NULL;
        return rc;
    }
    uv_timer_init(s->loop, &s->wait_timer);
    s->wait_timer.data = s;
    s->open_handles++;
    s->started = true;
    return 0;
}

uint16_t srm_admin_server_port(const struct srm_admin_server *s)
{
    return s->port;
}

uint16_t srm_admin_server_metrics_port(const struct srm_admin_server *s)
{
    return s->metrics_on ? s->metrics_port : 0;
}

static void client_closed(void *data)
{
    struct srm_admin_server *s = data;
    s->client_open = false;
    srm__admin_maybe_finish(s);
}

void srm_admin_server_close(struct srm_admin_server *s, srm_admin_server_close_cb *close_cb,
                            void *data)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->close_cb = close_cb;
    s->close_data = data;
    if (s->started) {
        uv_close((uv_handle_t *)&s->listener, srm__admin_handle_closed);
        if (s->metrics_on)
            uv_close((uv_handle_t *)&s->metrics_listener, srm__admin_handle_closed);
        uv_close((uv_handle_t *)&s->wait_timer, srm__admin_handle_closed);
    }
    srm__admin_close_conns(s);
    if (s->client)
        srm__admin_client_close(s->client, client_closed, s);
    srm__admin_maybe_finish(s);
}

/* ---- helpers ---- */

static bool has_db(struct srm__admin_req *req)
{
    if (req->s->o.db)
        return true;
    srm__admin_reply_error(req, 503, SRM_EDB_DOWN,
                           "node %s has no configuration database connection; ask another node",
                           req->s->node);
    return false;
}

static void reply_db_error(struct srm__admin_req *req, const struct srm_db_result *r)
{
    srm__admin_reply_error(req, srm__admin_http_status(r->status), r->status, "%s",
                           r->errmsg && r->errmsg[0] ? r->errmsg : srm_strerror(r->status));
}

/* Reads a query parameter; answers 400 and returns -1 on a malformed one. */
static int query(struct srm__admin_req *req, const char *key, char *out, size_t len)
{
    int rc = srm__admin_query_get(req->query, key, out, len);
    if (rc < 0)
        srm__admin_reply_error(req, 400, -EINVAL,
                               "query parameter \"%s\" is malformed or longer than %zu bytes", key,
                               len - 1);
    return rc;
}

static int query_int(struct srm__admin_req *req, const char *key, int64_t min, int64_t max,
                     int64_t dflt, int64_t *ret)
{
    char v[32];
    int rc = query(req, key, v, sizeof(v));
    if (rc < 0)
        return -1;
    if (rc == 0) {
        *ret = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        srm__admin_reply_error(req, 400, -EINVAL,
                               "query parameter \"%s\" = \"%s\" must be an integer from %" PRId64
                               " to %" PRId64,
                               key, v, min, max);
        return -1;
    }
    *ret = x;
    return 0;
}

static json_t *parse_body(struct srm__admin_req *req)
{
    if (req->body.len == 0) {
        srm__admin_reply_error(req, 400, -EINVAL, "this request needs a JSON body");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        srm__admin_reply_error(req, 400, -EINVAL,
                               "request body is not valid JSON: %s (line %d, "
                               "column %d)",
                               e.text, e.line, e.column);
    return j;
}

static const struct srm_db_config *directory(struct srm_admin_server *s)
{
    return s->o.backend.config ? s->o.backend.config(s->o.backend.data) : NULL;
}

static void reply_redirect(struct srm__admin_req *req, const struct srm__admin_target *t)
{
    struct srm__admin_buf url = {0}, pq = {0}, h = {0};
    srm__admin_buf_puts(&pq, req->path);
    if (req->query[0])
        srm__admin_buf_printf(&pq, "?%s", req->query);
    srm__admin_buf_terminate(&pq);
    srm__admin_target_url(t, pq.oom ? "/" : pq.data, &url);
    srm__admin_buf_terminate(&url);
    srm__admin_buf_printf(&h, "Location: %s\r\nSrm-Redirect-Node: %s\r\nSrm-Node-Address: %s\r\n",
                          url.oom ? "" : url.data, t->node, t->host);
    srm__admin_buf_terminate(&h);
    json_t *j = json_pack("{s:{s:s, s:s, s:s, s:i}}", "redirect", "node", t->node, "url",
                          url.oom ? "" : url.data, "address", t->host, "port", (int)t->port);
    srm__admin_reply_json(req, 307, j, h.oom ? NULL : h.data);
    srm__admin_buf_free(&url);
    srm__admin_buf_free(&pq);
    srm__admin_buf_free(&h);
}

/* Answers a routing decision that is not served here; returns true if it did. */
static bool route_elsewhere(struct srm__admin_req *req, const struct srm__admin_route *r)
{
    switch (r->kind) {
    case SRM__ADMIN_ROUTE_NOTFOUND:
        srm__admin_reply_error(req, 404, SRM_ENOTFOUND, "%s", r->msg);
        return true;
    case SRM__ADMIN_ROUTE_NODIR:
        srm__admin_reply_error(req, 503, SRM_ECONFIG, "%s", r->msg);
        return true;
    case SRM__ADMIN_ROUTE_REDIRECT:
        reply_redirect(req, &r->targets[0]);
        return true;
    default:
        return false;
    }
}

/* ---- GET /metrics, GET /v1/counters ---- */

static void h_metrics(struct srm__admin_req *req)
{
    struct srm_admin_server *s = req->s;
    if (s->o.backend.collect)
        s->o.backend.collect(s->o.backend.data, s->metrics);
    char *text;
    size_t len;
    if (srm_admin_metrics_render_text(s->metrics, &text, &len) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    srm__admin_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    free(text);
}

static void h_counters(struct srm__admin_req *req)
{
    struct srm_admin_server *s = req->s;
    char node[SRM_DB_NAME_MAX + 1];
    int q = query(req, "node", node, sizeof(node));
    if (q < 0)
        return;
    if (q > 0 && strcmp(node, s->node) != 0) {
        struct srm__admin_route r;
        if (srm__admin_route(directory(s), s->node, SRM__ADMIN_ROUTE_NODE, node, &r) < 0) {
            srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
            return;
        }
        route_elsewhere(req, &r);
        srm__admin_route_clear(&r);
        return;
    }
    if (s->o.backend.collect)
        s->o.backend.collect(s->o.backend.data, s->metrics);
    json_t *j = NULL;
    if (srm_admin_metrics_to_json(s->metrics, &j) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    json_object_set_new(j, "node", json_string(s->node));
    srm__admin_reply_json(req, 200, j, NULL);
}

/* ---- GET /v1/status ---- */

struct status_ctx {
    struct srm_admin_status *st;
    int left;
};

struct ask {
    struct srm__admin_req *req;
    struct srm__admin_target t;
};

static void status_ctx_free(void *p)
{
    struct status_ctx *ctx = p;
    srm_admin_status_free(ctx->st);
    free(ctx);
}

static void status_reply(struct srm__admin_req *req, const struct srm_admin_status *st)
{
    json_t *j = NULL;
    int rc = srm_admin_status_to_json(st, &j);
    if (rc < 0)
        srm__admin_reply_error(req, 500, rc, "cannot encode the status: %s", srm_strerror(rc));
    else
        srm__admin_reply_json(req, 200, j, NULL);
}

static void describe_failure(const struct srm__admin_target *t, int status, long http,
                             const char *body, const char *errmsg, char *out, size_t len)
{
    if (status < 0)
        srm__admin_fmt(out, len, "no answer from %s (%s:%u): %s", t->node, t->host, t->port,
                       errmsg);
    else
        srm__admin_fmt(out, len, "%s (%s:%u) answered HTTP %ld%s%.200s", t->node, t->host, t->port,
                       http, body && body[0] ? ": " : "", body ? body : "");
}

static void status_answer(void *data, int status, long http, const char *body, size_t len,
                          const char *errmsg)
{
    struct ask *a = data;
    struct srm__admin_req *req = a->req;
    struct status_ctx *ctx = req->ctx;
    bool merged = false;
    if (status == 0 && http == 200) {
        json_t *j = json_loadb(body, len, 0, NULL);
        struct srm_admin_status *other = NULL;
        char e[256];
        if (j && srm_admin_status_from_json(j, &other, e, sizeof(e)) == 0) {
            srm__admin_status_merge(ctx->st, other);
            merged = true;
        }
        srm_admin_status_free(other);
        json_decref(j);
    }
    if (!merged) {
        char e[512];
        describe_failure(&a->t, status, http, NULL, errmsg, e, sizeof(e));
        srm__admin_status_unreachable(ctx->st, a->t.node, e);
    }
    free(a);
    if (--ctx->left == 0)
        status_reply(req, ctx->st);
    srm__admin_req_release(req);
}

static void h_status(struct srm__admin_req *req)
{
    struct srm_admin_server *s = req->s;
    char scope[16];
    int q = query(req, "scope", scope, sizeof(scope));
    if (q < 0)
        return;
    bool local = q > 0 && strcmp(scope, "local") == 0;
    if (q > 0 && !local && strcmp(scope, "cluster") != 0) {
        srm__admin_reply_error(req, 400, -EINVAL,
                               "query parameter \"scope\" must be \"local\" or \"cluster\"");
        return;
    }
    struct srm_admin_view view;
    memset(&view, 0, sizeof(view));
    int rc = s->o.backend.view(s->o.backend.data, &view);
    if (rc < 0) {
        srm__admin_reply_error(req, 503, rc, "node %s cannot report its state: %s", s->node,
                               srm_strerror(rc));
        return;
    }
    const struct srm_db_config *cfg = directory(s);
    bool db_up = s->o.db && srm_db_is_up(s->o.db);
    int64_t now = now_us();
    struct srm_admin_status *ls = NULL;
    rc = srm__admin_status_local(&view, cfg, s->node, db_up, now, &ls);
    if (rc < 0) {
        srm__admin_reply_error(req, 500, rc, "out of memory");
        return;
    }
    if (local) {
        status_reply(req, ls);
        srm_admin_status_free(ls);
        return;
    }
    struct status_ctx *ctx = calloc(1, sizeof(*ctx));
    struct srm__admin_route r = {0};
    if (!ctx || srm__admin_status_skeleton(cfg, ls, now, &ctx->st) < 0 ||
        srm__admin_route(cfg, s->node, SRM__ADMIN_ROUTE_CLUSTER, NULL, &r) < 0) {
        if (ctx)
            srm_admin_status_free(ctx->st);
        free(ctx);
        srm_admin_status_free(ls);
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    srm_admin_status_free(ls);
    req->ctx = ctx;
    req->ctx_free = status_ctx_free;
    ctx->left = 1; /* held until every question is asked */
    for (size_t i = 0; i < r.n; i++) {
        struct ask *a = calloc(1, sizeof(*a));
        if (!a) {
            srm__admin_status_unreachable(ctx->st, r.targets[i].node, "out of memory");
            continue;
        }
        a->req = req;
        a->t = r.targets[i];
        ctx->left++;
        req->pending++;
        rc = srm__admin_client_fetch(s->client, &a->t, "GET", "/v1/status?scope=local", NULL,
                                     req->client, s->o.peer_timeout_ms, status_answer, a);
        if (rc < 0) {
            char e[384];
            snprintf(e, sizeof(e), "cannot ask %s: %s", a->t.node, srm_strerror(rc));
            srm__admin_status_unreachable(ctx->st, a->t.node, e);
            free(a);
            ctx->left--;
            req->pending--;
        }
    }
    srm__admin_route_clear(&r);
    if (--ctx->left == 0)
        status_reply(req, ctx->st);
}

/* ---- operations: failover, fallback, recover ---- */

static void run_local_op(struct srm_admin_server *s, enum srm_admin_op op, const char *client,
                         const char *group, struct srm_admin_op_result *res)
{
    struct srm_admin_op_request r = {.op = op, .client = client, .group = group};
    memset(res, 0, sizeof(*res));
    snprintf(res->node, sizeof(res->node), "%s", s->node);
    res->op = op;
    int rc = s->o.backend.operate(s->o.backend.data, &r, res->why, sizeof(res->why));
    res->why[sizeof(res->why) - 1] = '\0';
    res->status = rc < 0 ? rc : 0;
    res->accepted = rc >= 0;
    if (rc < 0 && rc != SRM_EREFUSED && !res->why[0])
        snprintf(res->why, sizeof(res->why), "%s", srm_strerror(rc));
}

static void answer_reply(struct srm__admin_req *req, struct srm_admin_op_answer *a)
{
    bool refused = false, failed = false, accepted = false;
    const struct srm_admin_op_result *first_bad = NULL;
    for (size_t i = 0; i < a->n_results; i++) {
        const struct srm_admin_op_result *r = &a->results[i];
        if (r->accepted)
            accepted = true;
        else if (r->status == SRM_EREFUSED)
            refused = true;
        else
            failed = true;
        if (!r->accepted && (!first_bad || r->status == SRM_EREFUSED))
            first_bad = first_bad && first_bad->status == SRM_EREFUSED ? first_bad : r;
    }
    /* A recover is accepted when a node accepted it and none refused it: the other node
     * follows the one that recovers (fsm/README.md, "Manual recover"). */
    a->accepted = accepted && !refused;
    json_t *j = NULL;
    if (srm_admin_op_answer_to_json(a, &j) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    int http = 200;
    if (!a->accepted && first_bad) {
        http = refused ? 409 : failed ? srm__admin_http_status(first_bad->status) : 500;
        if (http == 500 && first_bad->status == SRM_EUNREACHABLE)
            http = 502;
        char msg[512];
        srm__admin_fmt(msg, sizeof(msg), "%s of %s refused by %s: %s", srm_admin_op_name(a->op),
                       a->target, first_bad->node, first_bad->why);
        if (!refused)
            srm__admin_fmt(msg, sizeof(msg), "%s of %s failed on %s: %s", srm_admin_op_name(a->op),
                           a->target, first_bad->node, first_bad->why);
        json_t *e = NULL;
        srm_admin_error_to_json(http, first_bad->status, msg, &e);
        if (e)
            json_object_update(j, e);
        json_decref(e);
    }
    srm__admin_reply_json(req, http, j, NULL);
}

static void h_node_op(struct srm__admin_req *req, enum srm_admin_op op, const char *node)
{
    struct srm_admin_server *s = req->s;
    struct srm__admin_route r;
    if (srm__admin_route(directory(s), s->node, SRM__ADMIN_ROUTE_NODE, node, &r) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    if (!route_elsewhere(req, &r)) {
        struct srm_admin_op_answer a;
        memset(&a, 0, sizeof(a));
        a.op = op;
        snprintf(a.target, sizeof(a.target), "%.128s", node);
        a.n_results = 1;
        run_local_op(s, op, req->client, NULL, &a.results[0]);
        answer_reply(req, &a);
    }
    srm__admin_route_clear(&r);
}

struct recover_ctx {
    struct srm_admin_op_answer a;
    int left;
};

struct recover_ask {
    struct srm__admin_req *req;
    struct srm__admin_target t;
    size_t slot;
};

static void recover_answer(void *data, int status, long http, const char *body, size_t len,
                           const char *errmsg)
{
    struct recover_ask *ra = data;
    struct srm__admin_req *req = ra->req;
    struct recover_ctx *ctx = req->ctx;
    struct srm_admin_op_result *res = &ctx->a.results[ra->slot];
    bool ok = false;
    if (status == 0 && (http == 200 || http == 409)) {
        json_t *j = json_loadb(body, len, 0, NULL);
        struct srm_admin_op_answer other;
        if (j && srm_admin_op_answer_from_json(j, &other, NULL, 0) == 0 && other.n_results >= 1) {
            *res = other.results[0];
            ok = true;
        }
        json_decref(j);
    }
    if (!ok) {
        snprintf(res->node, sizeof(res->node), "%s", ra->t.node);
        res->op = SRM_ADMIN_OP_RECOVER;
        res->accepted = false;
        res->status = status < 0 ? status : SRM_EUNREACHABLE;
        describe_failure(&ra->t, status, http, NULL, errmsg, res->why, sizeof(res->why));
    }
    free(ra);
    if (--ctx->left == 0)
        answer_reply(req, &ctx->a);
    srm__admin_req_release(req);
}

static void h_group_recover(struct srm__admin_req *req, const char *group)
{
    struct srm_admin_server *s = req->s;
    struct srm__admin_route r;
    if (srm__admin_route(directory(s), s->node, SRM__ADMIN_ROUTE_GROUP_RECOVER, group, &r) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    if (route_elsewhere(req, &r)) {
        srm__admin_route_clear(&r);
        return;
    }
    struct recover_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        srm__admin_route_clear(&r);
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ctx_free = free;
    ctx->a.op = SRM_ADMIN_OP_RECOVER;
    ctx->a.group = true;
    snprintf(ctx->a.target, sizeof(ctx->a.target), "%.128s", group);
    ctx->left = 1;
    /* Ask the peer first, then run it here: both start at about the same moment. */
    size_t slot = r.include_self ? 1 : 0;
    for (size_t i = 0; i < r.n && slot < 2; i++, slot++) {
        struct srm_admin_op_result *res = &ctx->a.results[slot];
        ctx->a.n_results = slot + 1;
        struct recover_ask *ra = calloc(1, sizeof(*ra));
        struct srm__admin_buf path = {0};
        srm__admin_buf_puts(&path, "/v1/nodes/");
        srm__admin_pct_encode(&path, r.targets[i].node);
        srm__admin_buf_puts(&path, "/recover");
        int rc = ra && srm__admin_buf_terminate(&path) == 0 ? 0 : -ENOMEM;
        if (rc == 0) {
            ra->req = req;
            ra->t = r.targets[i];
            ra->slot = slot;
            ctx->left++;
            req->pending++;
            rc = srm__admin_client_fetch(s->client, &ra->t, "POST", path.data, NULL, req->client,
                                         s->o.peer_timeout_ms, recover_answer, ra);
            if (rc < 0) {
                ctx->left--;
                req->pending--;
            }
        }
        srm__admin_buf_free(&path);
        if (rc < 0) {
            free(ra);
            snprintf(res->node, sizeof(res->node), "%s", r.targets[i].node);
            res->op = SRM_ADMIN_OP_RECOVER;
            res->status = rc;
            snprintf(res->why, sizeof(res->why), "cannot ask %s: %s", r.targets[i].node,
                     srm_strerror(rc));
        }
    }
    if (r.include_self) {
        run_local_op(s, SRM_ADMIN_OP_RECOVER, req->client, group, &ctx->a.results[0]);
        if (ctx->a.n_results == 0)
            ctx->a.n_results = 1;
    }
    srm__admin_route_clear(&r);
    if (--ctx->left == 0)
        answer_reply(req, &ctx->a);
}

/* ---- PUT /v1/groups/GROUP/ha ---- */

struct ha_ctx {
    struct srm__admin_route r;
    size_t next;
    bool enabled;
    char group[SRM_DB_NAME_MAX + 1];
    char body[64];
    char failures[768];
};

static void ha_ctx_free(void *p)
{
    struct ha_ctx *ctx = p;
    srm__admin_route_clear(&ctx->r);
    free(ctx);
}

static void ha_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    struct ha_ctx *ctx = req->ctx;
    (void)db;
    if (!req->conn) {
        srm__admin_req_release(req);
        return;
    }
    if (res->status < 0) {
        reply_db_error(req, res);
    } else {
        json_t *j = json_pack("{s:s, s:b, s:s, s:s}", "group", ctx->group, "ha_enabled",
                              ctx->enabled, "via", req->s->node, "note", ctx->failures);
        srm__admin_reply_json(req, 200, j, NULL);
    }
    srm__admin_req_release(req);
}

static void ha_local(struct srm__admin_req *req)
{
    struct ha_ctx *ctx = req->ctx;
    if (!has_db(req))
        return;
    req->pending++;
    int rc = srm_db_group_set_ha(req->s->o.db, ctx->group, ctx->enabled, ha_done, req);
    if (rc < 0) {
        req->pending--;
        srm__admin_reply_error(req, srm__admin_http_status(rc), rc, "cannot change HA of %s: %s",
                               ctx->group, srm_strerror(rc));
    }
}

static void ha_try_next(struct srm__admin_req *req);

static void ha_answer(void *data, int status, long http, const char *body, size_t len,
                      const char *errmsg)
{
    struct srm__admin_req *req = data;
    struct ha_ctx *ctx = req->ctx;
    const struct srm__admin_target *t = &ctx->r.targets[ctx->next - 1];
    if (!req->conn) {
        srm__admin_req_release(req);
        return;
    }
    if (status == 0) {
        /* the group's node answered: its answer is the answer */
        srm__admin_reply_raw(req, (int)http, "application/json", body, len, NULL);
    } else {
        size_t o = strlen(ctx->failures);
        snprintf(ctx->failures + o, sizeof(ctx->failures) - o, "%s%s (%s:%u): %s", o ? "; " : "",
                 t->node, t->host, t->port, errmsg);
        ha_try_next(req);
    }
    srm__admin_req_release(req);
}

static void ha_try_next(struct srm__admin_req *req)
{
    struct ha_ctx *ctx = req->ctx;
    struct srm_admin_server *s = req->s;
    while (ctx->next < ctx->r.n) {
        const struct srm__admin_target *t = &ctx->r.targets[ctx->next++];
        struct srm__admin_buf path = {0};
        srm__admin_buf_puts(&path, "/v1/groups/");
        srm__admin_pct_encode(&path, ctx->group);
        srm__admin_buf_puts(&path, "/ha");
        if (srm__admin_buf_terminate(&path) < 0)
            break;
        req->pending++;
        int rc = srm__admin_client_fetch(s->client, t, "PUT", path.data, ctx->body, req->client,
                                         s->o.peer_timeout_ms, ha_answer, req);
        srm__admin_buf_free(&path);
        if (rc == 0)
            return;
        req->pending--;
    }
    /* No node of the group answers: the change goes to the database; the group's srmds
     * read it when they come back (README.md "Routing"). */
    ha_local(req);
}

static void h_group_ha(struct srm__admin_req *req, const char *group)
{
    json_t *j = parse_body(req);
    if (!j)
        return;
    char e[256];
    bool enabled;
    int rc = srm_admin_ha_request_from_json(j, &enabled, e, sizeof(e));
    json_decref(j);
    if (rc < 0) {
        srm__admin_reply_error(req, 400, rc, "%s", e);
        return;
    }
    struct ha_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ctx_free = ha_ctx_free;
    ctx->enabled = enabled;
    snprintf(ctx->group, sizeof(ctx->group), "%.128s", group);
    snprintf(ctx->body, sizeof(ctx->body), "{\"enabled\":%s}", enabled ? "true" : "false");
    if (srm__admin_route(directory(req->s), req->s->node, SRM__ADMIN_ROUTE_GROUP_HA, group,
                         &ctx->r) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    if (ctx->r.kind == SRM__ADMIN_ROUTE_NOTFOUND || ctx->r.kind == SRM__ADMIN_ROUTE_NODIR) {
        /* without a directory, the database still knows the group */
        if (ctx->r.kind == SRM__ADMIN_ROUTE_NODIR && req->s->o.db) {
            ha_local(req);
            return;
        }
        route_elsewhere(req, &ctx->r);
        return;
    }
    if (ctx->r.kind == SRM__ADMIN_ROUTE_LOCAL)
        ha_local(req);
    else
        ha_try_next(req);
}

/* ---- parameters ---- */

struct params_ctx {
    int left;
    int err;
    char errmsg[512];
    char node[SRM_DB_NAME_MAX + 1];
    struct srm_db_param_value values[SRM_DB_PARAM_MAX];
    size_t slot_of[SRM_DB_PARAM_MAX];
};

struct param_slot {
    struct srm__admin_req *req;
    enum srm_db_param p;
};

static void params_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct param_slot *ps = data;
    struct srm__admin_req *req = ps->req;
    struct params_ctx *ctx = req->ctx;
    (void)db;
    if (res->status < 0 && ctx->err == 0) {
        ctx->err = res->status;
        snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s", res->errmsg ? res->errmsg : "");
    } else if (res->status >= 0) {
        ctx->values[ps->p] = res->param;
    }
    free(ps);
    if (--ctx->left == 0 && req->conn) {
        if (ctx->err) {
            srm__admin_reply_error(req, srm__admin_http_status(ctx->err), ctx->err, "%s",
                                   ctx->errmsg[0] ? ctx->errmsg : srm_strerror(ctx->err));
        } else {
            json_t *arr = json_array();
            for (int p = 0; p < SRM_DB_PARAM_MAX; p++) {
                json_t *v = NULL;
                if (srm_admin_param_value_to_json(&ctx->values[p], ctx->node[0] ? ctx->node : NULL,
                                                  &v) == 0)
                    json_array_append_new(arr, v);
            }
            json_t *j =
                json_pack("{s:o, s:o}", "node", ctx->node[0] ? json_string(ctx->node) : json_null(),
                          "params", arr);
            srm__admin_reply_json(req, 200, j, NULL);
        }
    }
    srm__admin_req_release(req);
}

static void param_one_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    (void)db;
    if (req->conn) {
        if (res->status < 0) {
            reply_db_error(req, res);
        } else {
            const char *node = req->ctx;
            json_t *j = NULL;
            srm_admin_param_value_to_json(&res->param, node && node[0] ? node : NULL, &j);
            srm__admin_reply_json(req, 200, j, NULL);
        }
    }
    srm__admin_req_release(req);
}

/* The value just set, as a GET would show it. */
struct param_set_ctx {
    char node[SRM_DB_NAME_MAX + 1];
    struct srm_db_param_value v;
    bool reset;
};

static void param_set_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    struct param_set_ctx *ctx = req->ctx;
    if (req->conn) {
        if (res->status < 0) {
            reply_db_error(req, res);
        } else if (ctx->reset) {
            /* read the value that applies now */
            req->pending++;
            const struct srm_db_param_def *def = srm_db_param_def(ctx->v.param);
            if (srm_db_param_get(db, def->name, ctx->node[0] ? ctx->node : NULL, param_one_done,
                                 req) < 0) {
                req->pending--;
                srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
            }
            /* param_one_done reads req->ctx as the node name: node is the first member */
        } else {
            json_t *j = NULL;
            srm_admin_param_value_to_json(&ctx->v, ctx->node[0] ? ctx->node : NULL, &j);
            srm__admin_reply_json(req, 200, j, NULL);
        }
    }
    srm__admin_req_release(req);
}

static int param_node(struct srm__admin_req *req, char *node, size_t len)
{
    int q = query(req, "node", node, len);
    if (q < 0)
        return -1;
    if (q == 0)
        node[0] = '\0';
    char e[256];
    if (node[0] && srm_db_validate_node_name(node, e, sizeof(e)) < 0) {
        srm__admin_reply_error(req, 400, -EINVAL, "%s", e);
        return -1;
    }
    return 0;
}

static void h_params_all(struct srm__admin_req *req)
{
    if (!has_db(req))
        return;
    struct params_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ctx_free = free;
    if (param_node(req, ctx->node, sizeof(ctx->node)) < 0)
        return;
    ctx->left = 1;
    for (int p = 0; p < SRM_DB_PARAM_MAX; p++) {
        struct param_slot *ps = calloc(1, sizeof(*ps));
        if (!ps)
            break;
        ps->req = req;
        ps->p = (enum srm_db_param)p;
        ctx->left++;
        req->pending++;
        if (srm_db_param_get(req->s->o.db, srm_db_param_def(ps->p)->name,
                             ctx->node[0] ? ctx->node : NULL, params_done, ps) < 0) {
            ctx->left--;
            req->pending--;
            free(ps);
            ctx->err = -ENOMEM;
            break;
        }
    }
    if (--ctx->left == 0)
        srm__admin_reply_error(req, 500, ctx->err, "cannot read the parameters");
}

static void h_param(struct srm__admin_req *req, const char *name)
{
    char e[512];
    enum srm_db_param p;
    if (srm_db_param_lookup(name, &p, e, sizeof(e)) < 0) {
        srm__admin_reply_error(req, 404, SRM_ENOTFOUND, "%s", e);
        return;
    }
    const struct srm_db_param_def *def = srm_db_param_def(p);
    struct param_set_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ctx_free = free;
    ctx->v.param = p;
    int rc;
    if (req->method == HTTP_GET || req->method == HTTP_DELETE) {
        if (param_node(req, ctx->node, sizeof(ctx->node)) < 0)
            return;
    } else {
        json_t *j = parse_body(req);
        if (!j)
            return;
        struct srm_admin_param_request pr;
        rc = srm_admin_param_request_from_json(j, &pr, e, sizeof(e));
        json_decref(j);
        if (rc < 0) {
            srm__admin_reply_error(req, 400, rc, "%s", e);
            return;
        }
        snprintf(ctx->node, sizeof(ctx->node), "%s", pr.node);
        rc = srm_db_param_parse_value(p, pr.value, &ctx->v.value, e, sizeof(e));
        if (rc < 0) {
            json_t *err = NULL;
            srm_admin_error_to_json(400, rc, e, &err);
            json_t *range =
                json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", def->name, "min",
                          (json_int_t)def->min_value, "max", (json_int_t)def->max_value, "unit",
                          def->unit, "kind", def->kind == SRM_DB_PARAM_KIND_BOOL ? "bool" : "int");
            if (err && range)
                json_object_set_new(json_object_get(err, "error"), "range", range);
            else
                json_decref(range);
            srm__admin_reply_json(req, 400, err, NULL);
            return;
        }
        ctx->v.source = ctx->node[0] ? SRM_DB_PARAM_SOURCE_NODE : SRM_DB_PARAM_SOURCE_CLUSTER;
    }
    if (ctx->node[0] && !def->per_node && req->method != HTTP_GET) {
        srm__admin_reply_error(req, 400, -EINVAL,
                               "%s is a cluster-wide parameter: it cannot be set for node %s "
                               "(per-node parameters: relogin_lower, relogin_upper)",
                               def->name, ctx->node);
        return;
    }
    if (!has_db(req))
        return;
    const char *node = ctx->node[0] ? ctx->node : NULL;
    req->pending++;
    if (req->method == HTTP_GET)
        rc = srm_db_param_get(req->s->o.db, def->name, node, param_one_done, req);
    else if (req->method == HTTP_DELETE) {
        ctx->reset = true;
        rc = srm_db_param_reset(req->s->o.db, def->name, node, param_set_done, req);
    } else {
        char value[32];
        snprintf(value, sizeof(value), "%" PRId64, ctx->v.value);
        rc = srm_db_param_set(req->s->o.db, def->name, node, value, param_set_done, req);
    }
    if (rc < 0) {
        req->pending--;
        srm__admin_reply_error(req, 500, rc, "cannot reach the configuration database: %s",
                               srm_strerror(rc));
    }
}

/* ---- users ---- */

enum users_verb { USERS_ADD, USERS_REMOVE, USERS_ASSIGN, USERS_REBALANCE };

static void users_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    (void)db;
    if (req->conn) {
        if (res->status < 0) {
            reply_db_error(req, res);
        } else {
            enum users_verb v = (enum users_verb)(intptr_t)req->ctx;
            json_t *j = NULL;
            if (v == USERS_ADD)
                j = json_pack("{s:I, s:I}", "added", (json_int_t)res->count, "moved",
                              (json_int_t)res->moved);
            else if (v == USERS_REMOVE)
                j = json_pack("{s:I, s:I}", "removed", (json_int_t)res->count, "moved",
                              (json_int_t)res->moved);
            else if (v == USERS_ASSIGN)
                j = json_pack("{s:I}", "changed", (json_int_t)res->count);
            else
                j = json_pack("{s:I}", "moved", (json_int_t)res->moved);
            srm__admin_reply_json(req, 200, j, NULL);
        }
    }
    srm__admin_req_release(req);
}

static void h_users_change(struct srm__admin_req *req, enum users_verb v)
{
    struct srm_admin_users_request ur = {0};
    char e[512];
    if (v != USERS_REBALANCE) {
        json_t *j = parse_body(req);
        if (!j)
            return;
        int rc = srm_admin_users_request_from_json(j, &ur, e, sizeof(e));
        json_decref(j);
        if (rc < 0) {
            srm__admin_reply_error(req, rc == -ENOMEM ? 500 : 400, rc, "%s", e);
            return;
        }
        if (v == USERS_REMOVE && ur.node) {
            srm_admin_users_request_clear(&ur);
            srm__admin_reply_error(req, 400, -EINVAL,
                                   "request body: \"node\" does not apply to removing users");
            return;
        }
    }
    if (!has_db(req)) {
        srm_admin_users_request_clear(&ur);
        return;
    }
    req->ctx = (void *)(intptr_t)v;
    req->pending++;
    struct srm_db *db = req->s->o.db;
    const char *const *names = (const char *const *)ur.names;
    int rc;
    switch (v) {
    case USERS_ADD:
        rc = srm_db_users_add(db, names, ur.n, ur.node, users_done, req);
        break;
    case USERS_REMOVE:
        rc = srm_db_users_remove(db, names, ur.n, users_done, req);
        break;
    case USERS_ASSIGN:
        rc = srm_db_users_assign(db, names, ur.n, ur.node, users_done, req);
        break;
    default:
        rc = srm_db_users_rebalance(db, users_done, req);
        break;
    }
    srm_admin_users_request_clear(&ur);
    if (rc < 0) {
        req->pending--;
        srm__admin_reply_error(req, 500, rc, "cannot reach the configuration database: %s",
                               srm_strerror(rc));
    }
}

static void users_list_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    (void)db;
    if (req->conn) {
        if (res->status < 0) {
            reply_db_error(req, res);
        } else {
            int64_t limit = (int64_t)(intptr_t)req->ctx;
            json_t *arr = json_array();
            size_t n = res->users ? res->users->n : 0;
            for (size_t i = 0; i < n; i++) {
                const struct srm_db_user *u = &res->users->users[i];
                json_array_append_new(arr, json_pack("{s:s, s:o}", "name", u->name, "node",
                                                     u->node ? json_string(u->node) : json_null()));
            }
            json_t *next = n > 0 && (int64_t)n == limit ? json_string(res->users->users[n - 1].name)
                                                        : json_null();
            srm__admin_reply_json(req, 200,
                                  json_pack("{s:o, s:o}", "users", arr, "next_after", next), NULL);
        }
    }
    srm__admin_req_release(req);
}

static void h_users_list(struct srm__admin_req *req)
{
    char after[SRM_DB_USER_NAME_MAX + 1], node[SRM_DB_NAME_MAX + 1], un[8];
    int64_t limit;
    int qa = query(req, "after", after, sizeof(after));
    if (qa < 0 || param_node(req, node, sizeof(node)) < 0)
        return;
    int qu = query(req, "unassigned", un, sizeof(un));
    if (qu < 0 || query_int(req, "limit", 1, SRM_DB_LIST_MAX, 1000, &limit) < 0)
        return;
    bool unassigned =
        qu > 0 && (strcmp(un, "") == 0 || strcmp(un, "true") == 0 || strcmp(un, "1") == 0);
    if (qu > 0 && !unassigned && strcmp(un, "false") != 0 && strcmp(un, "0") != 0) {
        srm__admin_reply_error(req, 400, -EINVAL,
                               "query parameter \"unassigned\" must be true or false");
        return;
    }
    if (!has_db(req))
        return;
    req->ctx = (void *)(intptr_t)limit;
    req->pending++;
    int rc = srm_db_users_list(req->s->o.db, qa > 0 ? after : NULL, node[0] ? node : NULL,
                               unassigned, (unsigned)limit, users_list_done, req);
    if (rc < 0) {
        req->pending--;
        srm__admin_reply_error(req, 500, rc, "cannot reach the configuration database: %s",
                               srm_strerror(rc));
    }
}

/* ---- GET /v1/events ---- */

struct events_ctx {
    int64_t after;
    int64_t limit;
    bool since; /* after given: history_since; else history_last */
    bool querying;
};

static void events_query(struct srm__admin_req *req);

static void events_reply(struct srm__admin_req *req, const struct srm_db_event_list *list)
{
    struct events_ctx *ctx = req->ctx;
    json_t *arr = json_array();
    int64_t last = ctx->after;
    for (size_t i = 0; list && i < list->n; i++) {
        json_t *e = NULL;
        if (srm_admin_event_to_json(&list->events[i], &e) == 0)
            json_array_append_new(arr, e);
        if (list->events[i].id > last)
            last = list->events[i].id;
    }
    srm__admin_reply_json(
        req, 200, json_pack("{s:o, s:I}", "events", arr, "last_id", (json_int_t)last), NULL);
}

void srm__admin_unwait(struct srm__admin_req *req)
{
    struct srm_admin_server *s = req->s;
    for (struct srm__admin_req **pp = &s->waiters; *pp; pp = &(*pp)->wait_next) {
        if (*pp == req) {
            *pp = req->wait_next;
            s->nwaiters--;
            break;
        }
    }
    req->waiting = false;
    req->wait_next = NULL;
    if (!s->waiters && !s->closing)
        uv_timer_stop(&s->wait_timer);
}

static void on_wait_tick(uv_timer_t *t)
{
    struct srm_admin_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct srm__admin_req *req = s->waiters;
    while (req) {
        struct srm__admin_req *next = req->wait_next;
        struct events_ctx *ctx = req->ctx;
        if (now >= req->wait_deadline) {
            srm__admin_unwait(req);
            events_reply(req, NULL);
        } else if (!ctx->querying) {
            events_query(req);
        }
        req = next;
    }
}

void srm_admin_server_events_changed(struct srm_admin_server *s)
{
    if (!s || s->closing)
        return;
    for (struct srm__admin_req *req = s->waiters; req; req = req->wait_next) {
        struct events_ctx *ctx = req->ctx;
        if (!ctx->querying)
            events_query(req);
    }
}

static void events_done(struct srm_db *db, struct srm_db_result *res, void *data)
{
    struct srm__admin_req *req = data;
    struct events_ctx *ctx = req->ctx;
    (void)db;
    ctx->querying = false;
    if (req->conn) {
        struct srm_admin_server *s = req->s;
        if (res->status < 0) {
            if (req->waiting)
                srm__admin_unwait(req);
            reply_db_error(req, res);
        } else if ((res->events && res->events->n > 0) || !req->waiting ||
                   uv_now(s->loop) >= req->wait_deadline) {
            if (req->waiting)
                srm__admin_unwait(req);
            events_reply(req, res->events);
        }
    }
    srm__admin_req_release(req);
}

static void events_query(struct srm__admin_req *req)
{
    struct events_ctx *ctx = req->ctx;
    struct srm_db *db = req->s->o.db;
    int rc;
    ctx->querying = true;
    req->pending++;
    if (ctx->since)
        rc = srm_db_history_since(db, ctx->after, (unsigned)ctx->limit, events_done, req);
    else
        rc = srm_db_history_last(db, (unsigned)ctx->limit, events_done, req);
    if (rc < 0) {
        ctx->querying = false;
        req->pending--;
        if (req->waiting)
            srm__admin_unwait(req);
        srm__admin_reply_error(req, 500, rc, "cannot reach the configuration database: %s",
                               srm_strerror(rc));
    }
}

static void h_events(struct srm__admin_req *req)
{
    struct srm_admin_server *s = req->s;
    int64_t after, limit, wait;
    char tmp[32];
    int qa = query(req, "after", tmp, sizeof(tmp));
    if (qa < 0 || query_int(req, "after", 0, INT64_MAX, 0, &after) < 0 ||
        query_int(req, "limit", 1, SRM_DB_LIST_MAX, qa > 0 ? 1000 : 20, &limit) < 0 ||
        query_int(req, "wait", 0, s->o.events_wait_max_ms / 1000, 0, &wait) < 0)
        return;
    if (!has_db(req))
        return;
    struct events_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ctx_free = free;
    ctx->after = after;
    ctx->limit = limit;
    ctx->since = qa > 0;
    if (ctx->since && wait > 0) {
        if (s->nwaiters >= s->o.max_connections) {
            srm__admin_reply_error(req, 503, -EBUSY, "too many waiting event requests");
            return;
        }
        req->waiting = true;
        req->wait_deadline = uv_now(s->loop) + (uint64_t)wait * 1000;
        req->wait_next = s->waiters;
        s->waiters = req;
        s->nwaiters++;
        if (!uv_is_active((uv_handle_t *)&s->wait_timer))
            uv_timer_start(&s->wait_timer, on_wait_tick, s->o.events_poll_ms, s->o.events_poll_ms);
    }
    events_query(req);
}

/* ---- dispatch ---- */

static int split_path(const char *path, char segs[SEGS_MAX][SEG_LEN])
{
    int n = 0;
    const char *p = path;
    if (*p != '/')
        return -1;
    while (*p) {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 && !end)
            break; /* trailing slash */
        if (n == SEGS_MAX || srm__admin_pct_decode(p, len, segs[n], SEG_LEN) < 0)
            return -1;
        n++;
        p += len;
    }
    return n;
}

static bool method_is(struct srm__admin_req *req, enum http_method m, const char *allow)
{
    if (req->method == m)
        return true;
    char h[64];
    snprintf(h, sizeof(h), "Allow: %s\r\n", allow);
    json_t *j = NULL;
    char msg[128];
    srm__admin_fmt(msg, sizeof(msg), "%s is not allowed on %s (allowed: %s)",
                   http_method_str(req->method), req->path, allow);
    srm_admin_error_to_json(405, -EINVAL, msg, &j);
    srm__admin_reply_json(req, 405, j, h);
    return false;
}

void srm__admin_dispatch(struct srm__admin_req *req, bool plain)
{
    char seg[SEGS_MAX][SEG_LEN];
    int n = split_path(req->path, seg);
    if (n < 0) {
        srm__admin_reply_error(req, 404, SRM_ENOTFOUND, "no such endpoint: %.200s", req->path);
        return;
    }
    if (n == 1 && strcmp(seg[0], "metrics") == 0) {
        if (method_is(req, HTTP_GET, "GET"))
            h_metrics(req);
        return;
    }
    if (plain) {
        srm__admin_reply_error(req, 404, SRM_ENOTFOUND,
                               "this port serves GET /metrics only; the admin API needs HTTPS");
        return;
    }
    if (n < 2 || strcmp(seg[0], "v1") != 0)
        goto notfound;
    const char *what = seg[1];
    if (n == 2 && strcmp(what, "status") == 0) {
        if (method_is(req, HTTP_GET, "GET"))
            h_status(req);
        return;
    }
    if (n == 2 && strcmp(what, "counters") == 0) {
        if (method_is(req, HTTP_GET, "GET"))
            h_counters(req);
        return;
    }
    if (n == 2 && strcmp(what, "events") == 0) {
        if (method_is(req, HTTP_GET, "GET"))
            h_events(req);
        return;
    }
    if (n == 4 && (strcmp(what, "nodes") == 0 || strcmp(what, "groups") == 0) &&
        strlen(seg[2]) > SRM_DB_NAME_MAX) {
        srm__admin_reply_error(req, 404, SRM_ENOTFOUND,
                               "no %s named \"%.40s...\": names have at "
                               "most %d characters",
                               what, seg[2], SRM_DB_NAME_MAX);
        return;
    }
    if (n == 4 && strcmp(what, "nodes") == 0) {
        enum srm_admin_op op;
        if (srm_admin_op_parse(seg[3], &op) < 0)
            goto notfound;
        if (method_is(req, HTTP_POST, "POST"))
            h_node_op(req, op, seg[2]);
        return;
    }
    if (n == 4 && strcmp(what, "groups") == 0) {
        if (strcmp(seg[3], "recover") == 0) {
            if (method_is(req, HTTP_POST, "POST"))
                h_group_recover(req, seg[2]);
            return;
        }
        if (strcmp(seg[3], "ha") == 0) {
            if (method_is(req, HTTP_PUT, "PUT"))
                h_group_ha(req, seg[2]);
            return;
        }
        goto notfound;
    }
    if (strcmp(what, "params") == 0 && n <= 3) {
        if (n == 2) {
            if (method_is(req, HTTP_GET, "GET"))
                h_params_all(req);
        } else if (req->method == HTTP_GET || req->method == HTTP_PUT ||
                   req->method == HTTP_DELETE) {
            h_param(req, seg[2]);
        } else {
            method_is(req, HTTP_GET, "GET, PUT, DELETE");
        }
        return;
    }
    if (strcmp(what, "users") == 0 && n <= 3) {
        if (n == 2) {
            if (req->method == HTTP_GET)
                h_users_list(req);
            else if (method_is(req, HTTP_POST, "GET, POST"))
                h_users_change(req, USERS_ADD);
            return;
        }
        enum users_verb v;
        if (strcmp(seg[2], "remove") == 0)
            v = USERS_REMOVE;
        else if (strcmp(seg[2], "assign") == 0)
            v = USERS_ASSIGN;
        else if (strcmp(seg[2], "rebalance") == 0)
            v = USERS_REBALANCE;
        else
            goto notfound;
        if (method_is(req, HTTP_POST, "POST"))
            h_users_change(req, v);
        return;
    }
notfound:
    srm__admin_reply_error(req, 404, SRM_ENOTFOUND,
                           "no such endpoint: %s %.200s (README.md lists them under /v1/)",
                           http_method_str(req->method), req->path);
}
