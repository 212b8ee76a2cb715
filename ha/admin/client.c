/*
 * This node asking other nodes (cluster status, recover of a group, HA of another group):
 * libcurl's multi interface driven by the daemon's loop (sockets polled with uv_poll_t, curl's
 * timer on a uv_timer_t). Requests are HTTPS with this node's certificate; the answering
 * node must present a certificate of the cluster CA that names it (the URL carries the node
 * name, CONNECT_TO sends the connection to its address).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"
#include "srm_log.h"

#define ANSWER_MAX (16u << 20) /* bytes of an answer kept */

struct srm__admin_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *ca, *cert, *key;
    int handles; /* open uv handles */
    bool closing;
    struct fetch *fetches;
    struct sock *socks;
    void (*done_cb)(void *);
    void *done_data;
};

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct srm__admin_client *c;
    struct sock *prev, *next;
};

static void handle_closed(uv_handle_t *h);

static void sock_close(struct sock *s)
{
    struct srm__admin_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

struct fetch {
    struct srm__admin_client *c;
    CURL *easy;
    struct curl_slist *headers, *connect_to;
    struct srm__admin_buf answer;
    char *body;
    srm__admin_fetch_cb *cb;
    void *data;
    char errbuf[CURL_ERROR_SIZE];
    struct fetch *prev, *next;
};

static void maybe_done(struct srm__admin_client *c)
{
    if (!c->closing || c->handles > 0)
        return;
    void (*cb)(void *) = c->done_cb;
    void *data = c->done_data;
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c);
    if (cb)
        cb(data);
}

static void handle_closed(uv_handle_t *h)
{
    struct srm__admin_client *c;
    if (h->type == UV_POLL) {
        struct sock *s = h->data;
        c = s->c;
        free(s);
    } else {
        c = h->data;
    }
    c->handles--;
    maybe_done(c);
}

static void fetch_free(struct fetch *f)
{
    struct srm__admin_client *c = f->c;
    if (f->prev)
        f->prev->next = f->next;
    else
        c->fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
    curl_multi_remove_handle(c->multi, f->easy);
    curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->headers);
    curl_slist_free_all(f->connect_to);
    srm__admin_buf_free(&f->answer);
    free(f->body);
    free(f);
}

static int classify(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        return SRM_EUNREACHABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
        return SRM_EPEER_CERT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return SRM_ETLS;
    default:
        return SRM_EUNREACHABLE;
    }
}

static void check_done(struct srm__admin_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct fetch *f = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        CURLcode code = msg->data.result;
        long http = 0;
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &http);
        srm__admin_fetch_cb *cb = f->cb;
        void *data = f->data;
        if (code == CURLE_OK && srm__admin_buf_terminate(&f->answer) == 0) {
            cb(data, 0, http, f->answer.data, f->answer.len, "");
        } else {
            char e[CURL_ERROR_SIZE + 64];
            snprintf(e, sizeof(e), "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(code));
            cb(data, code == CURLE_OK ? -ENOMEM : classify(code), 0, NULL, 0, e);
        }
        fetch_free(f);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    struct srm__admin_client *c = s->c;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct srm__admin_client *c = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        c->handles++;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct srm__admin_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct srm__admin_client *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

int srm__admin_client_new(uv_loop_t *loop, const char *ca, const char *cert, const char *key,
                          struct srm__admin_client **ret_client)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -ENOMEM;
        global_done = true;
    }
    struct srm__admin_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->ca = strdup(ca);
    c->cert = strdup(cert);
    c->key = strdup(key);
    c->multi = curl_multi_init();
    if (!c->ca || !c->cert || !c->key || !c->multi) {
        curl_multi_cleanup(c->multi);
        free(c->ca);
        free(c->cert);
        free(c->key);
        free(c);
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 32L);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    *ret_client = c;
    return 0;
}

void srm__admin_client_close(struct srm__admin_client *c, void (*done_cb)(void *), void *data)
{
    if (!c)
        return;
    c->closing = true;
    c->done_cb = done_cb;
    c->done_data = data;
    while (c->fetches) {
        struct fetch *f = c->fetches;
        srm__admin_fetch_cb *cb = f->cb;
        void *d = f->data;
        fetch_free(f);
        cb(d, -ECANCELED, 0, NULL, 0, "cancelled: the server is closing");
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct fetch *f = userdata;
    size_t n = size * nmemb;
    if (f->answer.len + n > ANSWER_MAX)
        return 0; /* aborts the transfer */
    srm__admin_buf_put(&f->answer, ptr, n);
    return f->answer.oom ? 0 : n;
}

int srm__admin_client_fetch(struct srm__admin_client *c, const struct srm__admin_target *t,
                            const char *method, const char *path_and_query, const char *body,
                            const char *on_behalf_of, unsigned timeout_ms, srm__admin_fetch_cb *cb,
                            void *data)
{
    if (c->closing)
        return -ECANCELED;
    struct fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->c = c;
    f->cb = cb;
    f->data = data;
    f->easy = curl_easy_init();
    struct srm__admin_buf url = {0};
    srm__admin_target_url(t, path_and_query, &url);
    char connect_to[2 * SRM_DB_ADDRESS_MAX + 32];
    srm__admin_target_connect_to(t, connect_to, sizeof(connect_to));
    f->connect_to = curl_slist_append(NULL, connect_to);
    f->headers = curl_slist_append(NULL, "Content-Type: application/json");
    f->headers = curl_slist_append(f->headers, "Expect:");
    if (on_behalf_of && on_behalf_of[0]) {
        char h[SRM_DB_NAME_MAX + 32];
        snprintf(h, sizeof(h), "Srm-On-Behalf-Of: %s", on_behalf_of);
        f->headers = curl_slist_append(f->headers, h);
    }
    if (body) {
        f->body = strdup(body);
        if (!f->body)
            url.oom = true;
    }
    if (!f->easy || !f->connect_to || !f->headers || srm__admin_buf_terminate(&url) < 0) {
        srm__admin_buf_free(&url);
        curl_easy_cleanup(f->easy);
        curl_slist_free_all(f->headers);
        curl_slist_free_all(f->connect_to);
        free(f->body);
        free(f);
        return -ENOMEM;
    }
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    srm__admin_buf_free(&url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, f);
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, f->connect_to);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (f->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, f->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(f->body));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
    curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
    f->next = c->fetches;
    if (c->fetches)
        c->fetches->prev = f;
    c->fetches = f;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        fetch_free(f);
        return -ENOMEM;
    }
    return 0;
}
