/*
 * The TLS transport: mutual TLS 1.3 over libuv TCP with OpenSSL memory BIOs (no blocking
 * socket anywhere), the listener and the dialler, and the endpoint's public lifecycle
 * (srm_repl_new / start / close).
 *
 * Plaintext frames produced by the core during one callback are written to OpenSSL in
 * large pieces, so many small messages share a TLS record (RECIPES §10: 64 messages per
 * record are 12x faster than one). The encrypted bytes are handed to uv_write as they come
 * out of the write BIO; the amount queued there is the transport's backlog, which the core
 * compares to its high-water mark before it reads more of the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "srm_error.h"
#include "srm_log.h"

#define READ_BUF      (64u << 10)
#define PLAIN_BUF     (64u << 10)
#define SSL_WRITE_MAX (256u << 10)
#define PENDING_MAX   4 /* unverified connections at once */
#define TICK_MS       50
#define TLS_TIMEOUT   10000 /* ms for a TLS handshake to complete */

struct srm__repl_conn {
    struct srm_repl *r;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    SSL *ssl;
    BIO *rbio, *wbio;
    bool dialed, tls_done, attached, closing, reading;
    size_t wq; /* bytes queued in uv_write */
    uint64_t started_ms;
    struct srm__repl_conn *next;
    char rbuf[READ_BUF];
    uint8_t pbuf[PLAIN_BUF];
};

struct wreq {
    uv_write_t req;
    struct srm__repl_conn *c;
    size_t len;
    char data[];
};

static void conn_close(struct srm__repl_conn *c, bool graceful);
static void conn_pump(struct srm__repl_conn *c);

/* ---- OpenSSL errors ---- */

static void ssl_detail(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, cap, "TLS failure");
    else
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
}

int srm__repl_tls_init(struct srm_repl *r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx)
        return -ENOMEM;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        goto fail;
    if (SSL_CTX_load_verify_locations(ctx, r->cfg.ca_file, NULL) != 1)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, r->cfg.cert_file) != 1)
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, r->cfg.key_file, SSL_FILETYPE_PEM) != 1)
        goto fail;
    if (SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    /* Both sides present and verify a certificate; the peer's must name the expected node.
     * The host check applies to the client's certificate on the accepting side too. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(vp, r->cfg.peer_name, 0) != 1)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    r->ssl_ctx = ctx;
    return 0;
fail : {
    char d[256];
    ssl_detail(d, sizeof(d));
    srm_log_debug("repl: TLS setup failed (ca %s, cert %s, key %s): %s", r->cfg.ca_file,
                  r->cfg.cert_file, r->cfg.key_file, d);
    SSL_CTX_free(ctx);
    return SRM_ETLS;
}
}

void srm__repl_tls_free(struct srm_repl *r)
{
    SSL_CTX_free(r->ssl_ctx);
    r->ssl_ctx = NULL;
}

/* ---- handle bookkeeping ---- */

static void maybe_finish_close(struct srm_repl *r)
{
    if (!r->closing || r->open_handles > 0)
        return;
    srm_repl_close_cb *cb = r->close_cb;
    void *data = r->close_data;
    srm__repl_tls_free(r);
    srm__repl_free(r);
    if (cb)
        cb(data);
}

static void handle_closed(uv_handle_t *h)
{
    struct srm_repl *r = h->data;
    r->open_handles--;
    maybe_finish_close(r);
}

static void conn_closed(uv_handle_t *h)
{
    struct srm__repl_conn *c = h->data;
    struct srm_repl *r = c->r;
    for (struct srm__repl_conn **pp = &r->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
    r->open_handles--;
    maybe_finish_close(r);
}

/* ---- the transport table ---- */

static void drain_wbio(struct srm__repl_conn *c);

static int tls_flush(struct srm_repl *r, void *link)
{
    struct srm__repl_conn *c = link;
    struct srm__repl_buf *out = &r->out;
    if (c->closing)
        return SRM_EPEER_GONE;
    while (out->len > out->off) {
        size_t n = out->len - out->off;
        if (n > SSL_WRITE_MAX)
            n = SSL_WRITE_MAX;
        int w = SSL_write(c->ssl, out->data + out->off, (int)n);
        if (w <= 0) {
            char d[256];
            ssl_detail(d, sizeof(d));
            srm_log_debug("repl: SSL_write: %s", d);
            return SRM_ETLS;
        }
        out->off += (size_t)w;
    }
    out->off = out->len = 0;
    drain_wbio(c);
    return 0;
}

static size_t tls_backlog(struct srm_repl *r, void *link)
{
    struct srm__repl_conn *c = link;
    (void)r;
    return c->wq + BIO_ctrl_pending(c->wbio);
}

static void tls_close(struct srm_repl *r, void *link)
{
    struct srm__repl_conn *c = link;
    (void)r;
    c->attached = false;
    conn_close(c, true);
}

static const struct srm__repl_transport tls_transport = {
    .flush = tls_flush,
    .backlog = tls_backlog,
    .close = tls_close,
};

/* ---- connections ---- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct srm__repl_conn *c = w->c;
    c->wq -= w->len;
    free(w);
    if (status < 0) {
        if (!c->closing) {
            if (c->attached) {
                c->attached = false;
                srm__repl_link_down(c->r, status);
            }
            conn_close(c, false);
        }
        return;
    }
    if (c->attached && !c->closing)
        srm__repl_pump(c->r);
}

static void drain_wbio(struct srm__repl_conn *c)
{
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (pending == 0 || c->closing)
        return;
    struct wreq *w = malloc(sizeof(*w) + pending);
    if (!w)
        return; /* stays in the BIO; retried on the next flush */
    int n = BIO_read(c->wbio, w->data, (int)pending);
    if (n <= 0) {
        free(w);
        return;
    }
    w->c = c;
    w->len = (size_t)n;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return;
    }
    c->wq += (size_t)n;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct srm__repl_conn *c = req->data;
    (void)status;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Closes a connection. graceful: send what is queued (an ERROR frame, a TLS alert) first. */
static void conn_close(struct srm__repl_conn *c, bool graceful)
{
    if (c->closing)
        return;
    if (graceful && c->tls_done) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    if (graceful)
        drain_wbio(c);
    c->closing = true;
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->sreq.data = c;
    if (graceful && uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* The link of a dialled connection went away: dial again after the backoff delay. */
static void schedule_redial(struct srm_repl *r)
{
    if (r->closing || r->cfg.node_id > r->cfg.peer_id || !r->cfg.peer_host)
        return;
    uint32_t d = r->redial_delay ? r->redial_delay : r->cfg.reconnect_min_ms;
    r->redial_at = uv_now(r->loop) + d;
    d *= 2;
    r->redial_delay = d > r->cfg.reconnect_max_ms ? r->cfg.reconnect_max_ms : d;
}

static void conn_fail(struct srm__repl_conn *c, int err)
{
    struct srm_repl *r = c->r;
    if (c->closing)
        return;
    bool dialed = c->dialed;
    if (c->attached) {
        c->attached = false;
        srm__repl_link_down(r, err);
    }
    conn_close(c, false);
    if (dialed)
        schedule_redial(r);
}

/* TLS is up and the peer's certificate verified: this connection becomes the link. */
static void conn_attach(struct srm__repl_conn *c)
{
    struct srm_repl *r = c->r;
    for (struct srm__repl_conn *o = r->conns; o; o = o->next) {
        if (o != c && o->attached) {
            o->attached = false;
            srm__repl_link_down(r, 0);
            conn_close(o, true);
        }
    }
    c->attached = true;
    r->st.connected = true;
    srm__repl_emit(r, SRM_REPL_EV_CONNECTED, 0, 0, "TLS link %s node %u (%s) verified",
                   c->dialed ? "to" : "from", r->cfg.peer_id, r->cfg.peer_name);
    if (!c->attached || c->closing || r->closing)
        return;
    srm__repl_link_up(r, &tls_transport, c);
}

static void tls_refused(struct srm__repl_conn *c)
{
    struct srm_repl *r = c->r;
    char d[256];
    long vr = SSL_get_verify_result(c->ssl);
    int err;
    if (vr != X509_V_OK) {
        snprintf(d, sizeof(d), "peer certificate rejected: %s", X509_verify_cert_error_string(vr));
        ERR_clear_error();
        err = SRM_EPEER_CERT;
    } else {
        char e[200];
        ssl_detail(e, sizeof(e));
        snprintf(d, sizeof(d), "TLS handshake failed: %s", e);
        err = strstr(e, "certificate") || strstr(e, "unknown ca") ? SRM_EPEER_CERT : SRM_ETLS;
    }
    r->st.refused++;
    srm__repl_emit(r, SRM_REPL_EV_REFUSED, 0, err, "%s connection %s node %u: %s",
                   c->dialed ? "outgoing" : "incoming", c->dialed ? "to" : "from", r->cfg.peer_id,
                   d);
}

static void conn_handshake(struct srm__repl_conn *c)
{
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->tls_done = true;
        drain_wbio(c);
        conn_attach(c);
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        drain_wbio(c);
        return;
    }
    tls_refused(c);
    bool dialed = c->dialed;
    conn_close(c, true); /* sends the alert telling the peer why */
    if (dialed)
        schedule_redial(c->r);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct srm__repl_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srm__repl_conn *c = s->data;
    struct srm_repl *r = c->r;
    (void)buf;
    if (c->closing)
        return;
    if (nread < 0) {
        if (!c->tls_done) {
            r->st.refused += c->dialed ? 0 : 0;
            srm_log_debug("repl: connection closed during the TLS handshake: %s",
                          uv_strerror((int)nread));
        }
        conn_fail(c, nread == UV_EOF ? -ECONNRESET : (int)nread);
        return;
    }
    if (nread == 0)
        return;
    if (BIO_write(c->rbio, c->rbuf, (int)nread) != (int)nread) {
        conn_fail(c, -ENOMEM);
        return;
    }
    if (!c->tls_done) {
        conn_handshake(c);
        if (c->closing || !c->tls_done)
            return;
    }
    conn_pump(c);
}

/* After the loop's I/O callbacks: finishes the input they delivered (the core applies the
 * batches that arrived, in one transaction per partition, and acknowledges them). */
static void on_input_check(uv_check_t *h)
{
    struct srm_repl *r = h->data;
    uv_check_stop(h);
    srm__repl_input_flush(r);
}

/* Decrypts everything buffered and hands it to the core. */
static void conn_pump(struct srm__repl_conn *c)
{
    struct srm_repl *r = c->r;
    for (;;) {
        int n = SSL_read(c->ssl, c->pbuf, sizeof(c->pbuf));
        if (n > 0) {
            if (!c->attached)
                continue;
            if (r->check_on && !uv_is_active((uv_handle_t *)&r->input_check))
                uv_check_start(&r->input_check, on_input_check);
            if (srm__repl_input(r, c->pbuf, (size_t)n) < 0 || c->closing || r->closing)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_fail(c, -ECONNRESET);
            return;
        }
        /* With TLS 1.3 the client learns only now that the server refused its certificate. */
        char d[200];
        ssl_detail(d, sizeof(d));
        if (c->attached && r->link == SRM__REPL_LINK_HELLO) {
            r->st.refused++;
            srm__repl_emit(r, SRM_REPL_EV_REFUSED, 0,
                           strstr(d, "certificate") || strstr(d, "unknown ca") ? SRM_EPEER_CERT
                                                                               : SRM_ETLS,
                           "node %u refused this node: %s", r->cfg.peer_id, d);
        } else {
            srm_log_debug("repl: TLS read failed: %s", d);
        }
        conn_fail(c, SRM_ETLS);
        return;
    }
    drain_wbio(c);
}

static struct srm__repl_conn *conn_new(struct srm_repl *r, bool dialed)
{
    struct srm__repl_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->r = r;
    c->dialed = dialed;
    c->ssl = SSL_new(r->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (dialed) {
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, r->cfg.peer_name);
    } else {
        SSL_set_accept_state(c->ssl);
    }
    if (uv_tcp_init(r->loop, &c->tcp) < 0) {
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->started_ms = uv_now(r->loop);
    r->open_handles++;
    c->next = r->conns;
    r->conns = c;
    return c;
}

static int conn_start_reading(struct srm__repl_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    if (rc < 0)
        return rc;
    c->reading = true;
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct srm__repl_conn *c = req->data;
    struct srm_repl *r = c->r;
    r->dialing = false;
    if (c->closing)
        return;
    if (status < 0) {
        srm_log_debug("repl: dial %s:%u: %s", r->cfg.peer_host, r->cfg.peer_port,
                      uv_strerror(status));
        conn_close(c, false);
        schedule_redial(r);
        return;
    }
    if (conn_start_reading(c) < 0) {
        conn_close(c, false);
        schedule_redial(r);
        return;
    }
    conn_handshake(c); /* sends the ClientHello */
}

static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

void srm__repl_net_dial(struct srm_repl *r)
{
    if (r->closing || r->dialing || !r->cfg.peer_host || r->cfg.node_id > r->cfg.peer_id)
        return;
    for (struct srm__repl_conn *o = r->conns; o; o = o->next)
        if (o->dialed && !o->closing)
            return; /* a dialled connection is in progress or up */
    struct sockaddr_storage ss;
    if (parse_addr(r->cfg.peer_host, r->cfg.peer_port, &ss) < 0)
        return;
    struct srm__repl_conn *c = conn_new(r, true);
    if (!c) {
        schedule_redial(r);
        return;
    }
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, on_connect);
    if (rc < 0) {
        conn_close(c, false);
        schedule_redial(r);
        return;
    }
    r->dialing = true;
    r->redial_at = 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct srm_repl *r = server->data;
    if (status < 0 || r->closing)
        return;
    unsigned pending = 0;
    for (struct srm__repl_conn *o = r->conns; o; o = o->next)
        if (!o->tls_done && !o->closing)
            pending++;
    struct srm__repl_conn *c = conn_new(r, false);
    if (!c)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || pending >= PENDING_MAX ||
        conn_start_reading(c) < 0) {
        conn_close(c, false);
        return;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct srm_repl *r = t->data;
    uint64_t now = uv_now(r->loop);
    for (struct srm__repl_conn *c = r->conns, *n; c; c = n) {
        n = c->next;
        if (!c->tls_done && !c->closing && now - c->started_ms > TLS_TIMEOUT) {
            bool dialed = c->dialed;
            conn_close(c, false);
            if (dialed)
                schedule_redial(r);
        }
    }
    /* Whatever ended the last dialled connection (read or write error, a refusal, the core
     * closing it), the dialler dials again after the backoff delay. */
    if (!r->closing && r->cfg.peer_host && r->cfg.node_id < r->cfg.peer_id && !r->dialing) {
        bool live = false;
        for (struct srm__repl_conn *c = r->conns; c; c = c->next)
            if (c->dialed && !c->closing)
                live = true;
        if (!live && r->redial_at == 0)
            schedule_redial(r);
        if (!live && now >= r->redial_at)
            srm__repl_net_dial(r);
    }
    srm__repl_tick(r);
}

static void on_notify(uv_poll_t *h, int status, int events)
{
    struct srm_repl *r = h->data;
    (void)events;
    if (status < 0 || r->closing)
        return;
    srm__repl_notified(r);
}

int srm__repl_net_start(struct srm_repl *r)
{
    int rc;
    if (r->cfg.listen_host) {
        struct sockaddr_storage ss;
        if (parse_addr(r->cfg.listen_host, r->cfg.listen_port, &ss) < 0)
            return -EINVAL;
        if ((rc = uv_tcp_init(r->loop, &r->listener)) < 0)
            return rc;
        r->listener.data = r;
        r->open_handles++;
        r->listening = true;
        if ((rc = uv_tcp_bind(&r->listener, (struct sockaddr *)&ss, 0)) < 0 ||
            (rc = uv_listen((uv_stream_t *)&r->listener, 16, on_connection)) < 0)
            return rc;
    }
    int fd = r->store->notify_fd ? r->store->notify_fd(r->store_ctx) : -1;
    if (fd >= 0) {
        if ((rc = uv_poll_init(r->loop, &r->notify_poll, fd)) < 0)
            return rc;
        r->notify_poll.data = r;
        r->open_handles++;
        r->poll_on = true;
        if ((rc = uv_poll_start(&r->notify_poll, UV_READABLE, on_notify)) < 0)
            return rc;
    }
    if ((rc = uv_timer_start(&r->timer, on_tick, TICK_MS, TICK_MS)) < 0)
        return rc;
    srm__repl_net_dial(r);
    return 0;
}

void srm__repl_net_close(struct srm_repl *r)
{
    for (struct srm__repl_conn *c = r->conns; c; c = c->next) {
        c->attached = false;
        conn_close(c, false);
    }
    if (r->listening)
        uv_close((uv_handle_t *)&r->listener, handle_closed);
    if (r->poll_on)
        uv_close((uv_handle_t *)&r->notify_poll, handle_closed);
    if (r->timer_on)
        uv_close((uv_handle_t *)&r->timer, handle_closed);
    if (r->check_on)
        uv_close((uv_handle_t *)&r->input_check, handle_closed);
    r->listening = r->poll_on = r->timer_on = r->check_on = false;
}

/* ---- public lifecycle ---- */

int srm_repl_new(uv_loop_t *loop, const struct srm_repl_config *cfg, struct srm_repl **ret_repl)
{
    if (!loop || !cfg || !ret_repl || !cfg->ds || !cfg->ca_file || !cfg->cert_file ||
        !cfg->key_file)
        return -EINVAL;
    if (cfg->listen_host == NULL && cfg->peer_host == NULL)
        return -EINVAL;
    void *ctx = NULL;
    int rc = srm__repl_ds_store_new(cfg->ds, cfg->node_id, &ctx);
    if (rc < 0)
        return rc;
    struct srm_repl *r;
    rc = srm__repl_new_with_store(loop, cfg, &srm__repl_ds_ops, ctx, &r);
    if (rc < 0) {
        srm__repl_ds_ops.close(ctx);
        return rc;
    }
    if ((rc = srm__repl_tls_init(r)) < 0) {
        srm__repl_free(r);
        return rc;
    }
    if ((rc = uv_timer_init(loop, &r->timer)) < 0) {
        srm__repl_tls_free(r);
        srm__repl_free(r);
        return rc;
    }
    r->timer.data = r;
    r->timer_on = true;
    r->open_handles++;
    if (uv_check_init(loop, &r->input_check) == 0) {
        r->input_check.data = r;
        r->check_on = true;
        r->open_handles++;
        r->defer_flush = true;
    }
    *ret_repl = r;
    return 0;
}

int srm_repl_start(struct srm_repl *r)
{
    if (!r || r->closing)
        return -EINVAL;
    if (r->started)
        return -EALREADY;
    r->started = true;
    return srm__repl_net_start(r);
}

void srm_repl_close(struct srm_repl *r, srm_repl_close_cb *close_cb, void *data)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    r->close_cb = close_cb;
    r->close_data = data;
    r->link = SRM__REPL_LINK_DOWN;
    srm__repl_net_close(r);
    maybe_finish_close(r);
}
