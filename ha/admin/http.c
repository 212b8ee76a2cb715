/*
 * Connections: TCP on the loop, TLS 1.3 through OpenSSL memory BIOs (no blocking socket; the
 * pattern of replication/tls.c), HTTP/1.1 requests parsed by http-parser, keep-alive, bounds
 * and timeouts. One request per connection is handled at a time: the parser is paused at the
 * end of each message and resumed once the answer is queued, so pipelined requests are
 * answered in order.
 *
 * A client certificate that does not chain to the cluster CA (none, another CA, expired)
 * fails the handshake: no request is ever read from such a connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "srm_log.h"

#define READ_BUF (64u << 10)

struct srm__admin_conn {
    struct srm_admin_server *s;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;
    bool plain, tls_done, closing, reading;
    SSL *ssl;
    BIO *rbio, *wbio;
    http_parser parser;
    struct srm__admin_req *req; /* being read or answered */
    bool busy;                  /* a complete request is being handled: parser paused */
    bool close_after;           /* close once the answer is written */
    struct srm__admin_buf rest; /* plaintext received but not yet parsed (while busy) */
    size_t header_bytes;
    char hname[32];
    size_t hname_len;
    bool hname_done;
    char client[SRM_DB_NAME_MAX + 1];
    struct srm__admin_conn *prev, *next;
    char rbuf[READ_BUF];
};

struct wreq {
    uv_write_t req;
    struct srm__admin_conn *c;
    char data[];
};

static http_parser_settings settings;
static void conn_close(struct srm__admin_conn *c, bool graceful);
static void conn_feed(struct srm__admin_conn *c, const char *data, size_t len);
static void on_timeout(uv_timer_t *t);

/* ---- closing ---- */

void srm__admin_maybe_finish(struct srm_admin_server *s)
{
    if (!s->closing || s->open_handles > 0 || s->client_open)
        return;
    srm_admin_server_close_cb *cb = s->close_cb;
    void *data = s->close_data;
    SSL_CTX_free(s->ssl_ctx);
    srm_admin_metrics_free(s->own_metrics);
    free(s->node);
    free(s->listen_host);
    free(s->metrics_host);
    free(s->ca_file);
    free(s->cert_file);
    free(s->key_file);
    free(s);
    if (cb)
        cb(data);
}

void srm__admin_handle_closed(uv_handle_t *h)
{
    struct srm_admin_server *s = h->data;
    s->open_handles--;
    srm__admin_maybe_finish(s);
}

static void req_free(struct srm__admin_req *req)
{
    if (req->waiting)
        srm__admin_unwait(req);
    if (req->ctx_free)
        req->ctx_free(req->ctx);
    srm__admin_buf_free(&req->url);
    srm__admin_buf_free(&req->body);
    free(req);
}

void srm__admin_req_release(struct srm__admin_req *req)
{
    if (req->pending > 0)
        req->pending--;
    if (req->pending == 0 && (req->answered || !req->conn))
        req_free(req);
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct srm__admin_conn *c = h->data;
    struct srm_admin_server *s = c->s;
    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    SSL_free(c->ssl);
    srm__admin_buf_free(&c->rest);
    free(c);
    s->open_handles--;
    srm__admin_maybe_finish(s);
}

static void on_shutdown(uv_shutdown_t *sreq, int status)
{
    struct srm__admin_conn *c = sreq->data;
    (void)status;
    free(sreq);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_close(struct srm__admin_conn *c, bool graceful)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->req) {
        struct srm__admin_req *req = c->req;
        c->req = NULL;
        req->conn = NULL;
        if (req->waiting)
            srm__admin_unwait(req);
        if (req->pending == 0)
            req_free(req);
    }
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (graceful) {
        uv_shutdown_t *sreq = malloc(sizeof(*sreq));
        if (sreq) {
            sreq->data = c;
            if (uv_shutdown(sreq, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
                return;
            free(sreq);
        }
    }
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

void srm__admin_close_conns(struct srm_admin_server *s)
{
    struct srm__admin_conn *c = s->conns;
    while (c) {
        struct srm__admin_conn *next = c->next;
        conn_close(c, false);
        c = next;
    }
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct srm__admin_conn *c = wr->c;
    free(wr);
    if (status < 0 && !c->closing)
        conn_close(c, false);
}

static int write_raw(struct srm__admin_conn *c, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    struct wreq *w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, data, len);
    w->c = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    return 0;
}

static void drain_wbio(struct srm__admin_conn *c)
{
    char buf[16384];
    int n;
    while (c->wbio && (n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
        if (write_raw(c, buf, (size_t)n) < 0)
            return;
}

/* Sends plaintext (encrypted first on a TLS connection). */
static int conn_send(struct srm__admin_conn *c, const char *data, size_t len)
{
    if (c->closing)
        return -ECANCELED;
    if (c->plain)
        return write_raw(c, data, len);
    size_t off = 0;
    while (off < len) {
        int w = SSL_write(c->ssl, data + off, (int)(len - off > 65536 ? 65536 : len - off));
        if (w <= 0) {
            ERR_clear_error();
            return SRM_ETLS;
        }
        off += (size_t)w;
        drain_wbio(c);
    }
    return 0;
}

/* ---- answering ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

static void resume(struct srm__admin_conn *c);

void srm__admin_reply_raw(struct srm__admin_req *req, int status, const char *content_type,
                          const char *body, size_t len, const char *extra_headers)
{
    if (req->answered)
        return;
    req->answered = true;
    struct srm__admin_conn *c = req->conn;
    if (c) {
        struct srm_admin_server *s = c->s;
        if (s->m_requests) {
            char code[8];
            snprintf(code, sizeof(code), "%d", status);
            const char *v[] = {code};
            srm_admin_metric_add(s->m_requests, v, 1);
        }
        bool keep = !c->close_after && http_should_keep_alive(&c->parser) && !s->closing;
        struct srm__admin_buf h = {0};
        srm__admin_buf_printf(&h,
                              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                              "Srm-Node: %s\r\nCache-Control: no-store\r\n%s%s\r\n",
                              status, reason_phrase(status), content_type, len, s->node,
                              extra_headers ? extra_headers : "",
                              keep ? "" : "Connection: close\r\n");
        srm__admin_buf_put(&h, body, len);
        int rc = h.oom ? -ENOMEM : conn_send(c, h.data, h.len);
        srm__admin_buf_free(&h);
        c->req = NULL;
        req->conn = NULL;
        if (rc < 0 || !keep) {
            conn_close(c, rc == 0);
        } else {
            c->busy = false;
            resume(c);
        }
    }
    if (req->pending == 0)
        req_free(req);
}

void srm__admin_reply_json(struct srm__admin_req *req, int status, json_t *body,
                           const char *extra_headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        const char *oom = "{\"error\":{\"status\":500,\"code\":\"ENOMEM\",\"message\":\"out of "
                          "memory\"}}";
        srm__admin_reply_raw(req, 500, "application/json", oom, strlen(oom), NULL);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\0';
    struct srm__admin_buf b = {0};
    srm__admin_buf_put(&b, text, len);
    srm__admin_buf_puts(&b, "\n");
    free(text);
    srm__admin_reply_raw(req, status, "application/json", b.oom ? "" : b.data, b.oom ? 0 : b.len,
                         extra_headers);
    srm__admin_buf_free(&b);
}

void srm__admin_reply_error(struct srm__admin_req *req, int status, int err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *j = NULL;
    srm_admin_error_to_json(status, err, msg, &j);
    srm__admin_reply_json(req, status, j, NULL);
}

/* An answer for a request that never reached a handler (bad framing): close afterwards. */
static void reply_early(struct srm__admin_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_early(struct srm__admin_conn *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct srm__admin_req *req = c->req;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req) {
            conn_close(c, false);
            return;
        }
        req->s = c->s;
        req->conn = c;
        c->req = req;
    }
    c->close_after = true;
    c->busy = true;
    json_t *j = NULL;
    srm_admin_error_to_json(status, -EINVAL, msg, &j);
    srm__admin_reply_json(req, status, j, NULL);
}

/* ---- http-parser callbacks ---- */

static int on_message_begin(http_parser *p)
{
    struct srm__admin_conn *c = p->data;
    struct srm_admin_server *s = c->s;
    struct srm__admin_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -1;
    req->s = s;
    req->conn = c;
    snprintf(req->client, sizeof(req->client), "%s", c->client);
    c->req = req;
    c->header_bytes = 0;
    c->hname_len = 0;
    c->hname_done = false;
    uv_timer_start(&c->timer, on_timeout, s->o.request_timeout_ms, 0);
    return 0;
}

static int count_header(struct srm__admin_conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > c->s->o.max_header) {
        reply_early(c, 431, "request line and headers exceed %zu bytes", c->s->o.max_header);
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct srm__admin_conn *c = p->data;
    if (count_header(c, len) < 0)
        return -1;
    srm__admin_buf_put(&c->req->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct srm__admin_conn *c = p->data;
    if (count_header(c, len) < 0)
        return -1;
    if (c->hname_done) {
        c->hname_len = 0;
        c->hname_done = false;
    }
    for (size_t i = 0; i < len && c->hname_len + 1 < sizeof(c->hname); i++) {
        char ch = at[i];
        c->hname[c->hname_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    c->hname[c->hname_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct srm__admin_conn *c = p->data;
    struct srm__admin_req *req = c->req;
    if (count_header(c, len) < 0)
        return -1;
    c->hname_done = true;
    if (strcmp(c->hname, "expect") == 0 && len >= 12 && strncasecmp(at, "100-continue", 12) == 0)
        req->expect_continue = true;
    else if (strcmp(c->hname, "srm-on-behalf-of") == 0 && len < sizeof(req->on_behalf)) {
        size_t o = strlen(req->on_behalf);
        if (o + len < sizeof(req->on_behalf)) {
            memcpy(req->on_behalf + o, at, len);
            req->on_behalf[o + len] = '\0';
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct srm__admin_conn *c = p->data;
    struct srm__admin_req *req = c->req;
    if (req->url.oom) {
        reply_early(c, 500, "out of memory");
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->s->o.max_body) {
        reply_early(c, 413, "request body of %llu bytes exceeds the limit of %zu bytes",
                    (unsigned long long)p->content_length, c->s->o.max_body);
        return -1;
    }
    req->method = (enum http_method)p->method;
    if (req->expect_continue)
        conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct srm__admin_conn *c = p->data;
    struct srm__admin_req *req = c->req;
    if (req->body.len + len > c->s->o.max_body) {
        reply_early(c, 413, "request body exceeds the limit of %zu bytes", c->s->o.max_body);
        return -1;
    }
    srm__admin_buf_put(&req->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct srm__admin_conn *c = p->data;
    c->busy = true;
    uv_timer_stop(&c->timer);
    http_parser_pause(p, 1);
    return 0;
}

/* ---- reading ---- */

static void dispatch(struct srm__admin_conn *c)
{
    struct srm__admin_req *req = c->req;
    if (srm__admin_buf_terminate(&req->url) < 0 || srm__admin_buf_terminate(&req->body) < 0) {
        srm__admin_reply_error(req, 500, -ENOMEM, "out of memory");
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(req->url.data, req->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        c->close_after = true;
        srm__admin_reply_error(req, 400, -EINVAL, "malformed request target");
        return;
    }
    size_t plen = u.field_data[UF_PATH].len;
    if (plen >= sizeof(req->path)) {
        srm__admin_reply_error(req, 414, -EINVAL, "path longer than %zu bytes",
                               sizeof(req->path) - 1);
        return;
    }
    memcpy(req->path, req->url.data + u.field_data[UF_PATH].off, plen);
    req->path[plen] = '\0';
    if (u.field_set & (1 << UF_QUERY)) {
        size_t qlen = u.field_data[UF_QUERY].len;
        if (qlen >= sizeof(req->query)) {
            srm__admin_reply_error(req, 414, -EINVAL, "query longer than %zu bytes",
                                   sizeof(req->query) - 1);
            return;
        }
        memcpy(req->query, req->url.data + u.field_data[UF_QUERY].off, qlen);
        req->query[qlen] = '\0';
    }
    /* A node asking for an admin names the admin; only a node of the directory may. */
    const struct srm_admin_backend *b = &c->s->o.backend;
    const struct srm_db_config *cfg = b->config ? b->config(b->data) : NULL;
    if (req->on_behalf[0] && cfg && srm_db_config_node(cfg, c->client)) {
        char who[sizeof(req->client)];
        snprintf(who, sizeof(who), "%.60s via %.60s", req->on_behalf, c->client);
        memcpy(req->client, who, sizeof(who));
    }
    srm__admin_dispatch(req, c->plain);
}

static void conn_feed(struct srm__admin_conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->closing) {
        if (c->busy) {
            /* a request is being handled: keep the rest for later (pipelining), bounded */
            if (c->rest.len + len > c->s->o.max_body + c->s->o.max_header) {
                conn_close(c, false);
                return;
            }
            srm__admin_buf_put(&c->rest, data, len);
            return;
        }
        size_t n = http_parser_execute(&c->parser, &settings, data, len);
        if (c->closing)
            return;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            data += n;
            len -= n;
            dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            if (!c->busy)
                reply_early(c, 400, "malformed HTTP request: %s", http_errno_description(e));
            else
                conn_close(c, false);
            return;
        }
        data += n;
        len -= n;
        if (n == 0)
            break;
    }
}

/* The answer is queued: parse what arrived meanwhile. */
static void resume(struct srm__admin_conn *c)
{
    http_parser_pause(&c->parser, 0);
    uv_timer_start(&c->timer, on_timeout, c->s->o.idle_timeout_ms, 0);
    if (c->rest.len == 0)
        return;
    struct srm__admin_buf rest = c->rest;
    memset(&c->rest, 0, sizeof(c->rest));
    conn_feed(c, rest.data, rest.len);
    srm__admin_buf_free(&rest);
}

static void client_name(struct srm__admin_conn *c)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (!cert)
        return;
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, c->client,
                              sizeof(c->client));
    X509_free(cert);
}

static void tls_pump(struct srm__admin_conn *c)
{
    if (!c->tls_done) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            drain_wbio(c);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            long vr = SSL_get_verify_result(c->ssl);
            char d[256];
            unsigned long oe = ERR_get_error();
            ERR_error_string_n(oe, d, sizeof(d));
            ERR_clear_error();
            srm_log_debug("admin: TLS handshake refused: %s%s%s", d,
                          vr != X509_V_OK ? "; client certificate: " : "",
                          vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
            conn_close(c, true); /* the alert says why */
            return;
        }
        c->tls_done = true;
        client_name(c);
        drain_wbio(c);
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            conn_feed(c, buf, (size_t)n);
            if (c->closing)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        drain_wbio(c);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        ERR_clear_error();
        conn_close(c, e == SSL_ERROR_ZERO_RETURN);
        return;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srm__admin_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct srm__admin_conn *c = st->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        conn_close(c, false);
        return;
    }
    if (c->plain) {
        conn_feed(c, c->rbuf, (size_t)nread);
        return;
    }
    if (BIO_write(c->rbio, c->rbuf, (int)nread) != (int)nread) {
        conn_close(c, false);
        return;
    }
    tls_pump(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct srm__admin_conn *c = t->data;
    if (c->busy || c->closing)
        return;
    if (c->req && !c->req->answered) {
        reply_early(c, 408, "request not received within %u ms", c->s->o.request_timeout_ms);
        return;
    }
    conn_close(c, true);
}

static void on_connection(uv_stream_t *l, int status, bool plain)
{
    struct srm_admin_server *s = l->data;
    if (status < 0 || s->closing)
        return;
    struct srm__admin_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->s = s;
    c->plain = plain;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->open_handles++;
    s->nconns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || s->nconns > s->o.max_connections) {
        conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (!plain) {
        c->ssl = SSL_new(s->ssl_ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio) {
            BIO_free(c->rbio);
            BIO_free(c->wbio);
            conn_close(c, false);
            return;
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    /* the handshake and the first request must come within the request timeout */
    uv_timer_start(&c->timer, on_timeout, s->o.request_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) < 0) {
        conn_close(c, false);
        return;
    }
    c->reading = true;
}

static void on_tls_connection(uv_stream_t *l, int status)
{
    on_connection(l, status, false);
}

static void on_plain_connection(uv_stream_t *l, int status)
{
    on_connection(l, status, true);
}

static int bind_listen(struct srm_admin_server *s, uv_tcp_t *t, const char *host, uint16_t port,
                       uv_connection_cb cb, uint16_t *ret_port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return -EINVAL;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->open_handles++;
    int rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 128, cb);
    if (rc < 0) {
        uv_close((uv_handle_t *)t, srm__admin_handle_closed);
        return rc;
    }
    struct sockaddr_storage name;
    int len = sizeof(name);
    uv_tcp_getsockname(t, (struct sockaddr *)&name, &len);
    *ret_port = ntohs(name.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&name)->sin6_port
                                                 : ((struct sockaddr_in *)&name)->sin_port);
    return 0;
}

int srm__admin_listen(struct srm_admin_server *s)
{
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    int rc =
        bind_listen(s, &s->listener, s->listen_host, s->o.listen_port, on_tls_connection, &s->port);
    if (rc < 0)
        return rc;
    if (s->metrics_host) {
        rc = bind_listen(s, &s->metrics_listener, s->metrics_host, s->o.metrics_port,
                         on_plain_connection, &s->metrics_port);
        if (rc < 0) {
            uv_close((uv_handle_t *)&s->listener, srm__admin_handle_closed);
            return rc;
        }
        s->metrics_on = true;
    }
    return 0;
}
