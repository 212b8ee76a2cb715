/*
 * The HTTPS server on loopback against a fake backend (certificates from scripts/make-certs
 * in a temporary directory): status, operations accepted and refused with the state
 * machine's text, redirects, bounds (oversize body and headers, bad JSON, wrong types,
 * unknown endpoints and methods, slow requests) answered with a status and a message,
 * keep-alive with pipelined requests, /metrics on both ports checked by a strict parser, and
 * client certificates refused (none, another CA, expired) with nothing executed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fake_backend.h"
#include "prom_check.h"
#include "srm_error.h"

static char certs[64], other[64];
static uv_loop_t loop;
static uv_thread_t thread;
static uv_async_t stopper;
static struct srm_admin_server *server;
static struct fake_node node;
static struct srm_db_config *dir;
static uint16_t port, mport;

static void on_closed(void *data)
{
    (void)data;
    uv_close((uv_handle_t *)&stopper, NULL);
}

static void on_stop(uv_async_t *a)
{
    (void)a;
    srm_admin_server_close(server, on_closed, NULL);
}

static void run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
}

static int setup(void **state)
{
    (void)state;
    certs[0] = other[0] = '\0';
    if (fake_make_certs(certs, "--expired old", "n1 n2 admin") < 0 ||
        fake_make_certs(other, NULL, "admin") < 0)
        return -1;
    fake_node_init(&node, "n1", "n2", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    uv_loop_init(&loop);
    char ca[128], crt[128], key[128];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/n1.crt", certs);
    snprintf(key, sizeof(key), "%s/n1.key", certs);
    struct srm_admin_server_options o = {
        .node = "n1",
        .listen_host = "127.0.0.1",
        .ca_file = ca,
        .cert_file = crt,
        .key_file = key,
        .metrics_host = "127.0.0.1",
        .backend = fake_node_backend(&node),
        .metrics = node.metrics,
        .max_body = 4096,
        .max_header = 2048,
        .request_timeout_ms = 400,
        .peer_timeout_ms = 1000,
    };
    if (srm_admin_server_new(&loop, &o, &server) < 0 || srm_admin_server_start(server) < 0)
        return -1;
    port = srm_admin_server_port(server);
    mport = srm_admin_server_metrics_port(server);
    /* n2 at 127.0.0.2 on the same port: nobody listens there */
    dir = fake_directory(1, port);
    node.config = dir;
    uv_async_init(&loop, &stopper, on_stop);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return uv_thread_create(&thread, run_loop, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stopper);
    uv_thread_join(&thread);
    uv_loop_close(&loop);
    srm_db_config_free(dir);
    fake_node_fini(&node);
    fake_rmdir(certs);
    fake_rmdir(other);
    curl_global_cleanup();
    return 0;
}

/* ---- a libcurl client ---- */

struct reply {
    long status;
    char body[1 << 16];
    size_t len;
    char headers[4096];
    size_t hlen;
    CURLcode code;
    char err[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t s, size_t n, void *d)
{
    struct reply *r = d;
    size_t len = s * n, room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, len < room ? len : room);
    r->len += len < room ? len : room;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_hdr(char *p, size_t s, size_t n, void *d)
{
    struct reply *r = d;
    size_t len = s * n, room = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, len < room ? len : room);
    r->hlen += len < room ? len : room;
    r->headers[r->hlen] = '\0';
    return len;
}

/* cert: "admin" in the cluster dir, "other" (another CA), "old" (expired), NULL (none). */
static void req(const char *method, const char *path, const char *body, const char *cert,
                bool plain, struct reply *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char url[512], ca[128], crt[128], key[128];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", plain ? "http" : "https",
             plain ? mport : port, path);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    const char *d = cert && strcmp(cert, "other") == 0 ? other : certs;
    const char *name = cert && strcmp(cert, "other") == 0 ? "admin" : cert;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    if (name) {
        snprintf(crt, sizeof(crt), "%s/%s.crt", d, name);
        snprintf(key, sizeof(key), "%s/%s.key", d, name);
        curl_easy_setopt(c, CURLOPT_SSLCERT, crt);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->err);
    r->code = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

static json_t *body_json(const struct reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    if (!j)
        fail_msg("answer is not JSON (%s): %s", e.text, r->body);
    return j;
}

/* Checks an error answer: status, code and a word of the message. */
static void expect_error(const struct reply *r, long status, const char *code, const char *word)
{
    if (r->code != CURLE_OK)
        fail_msg("transfer failed: %s", r->err);
    if (r->status != status)
        fail_msg("status %ld, wanted %ld: %s", r->status, status, r->body);
    json_t *j = body_json(r);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    if (code)
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg || !strstr(msg, word))
        fail_msg("message \"%s\" lacks \"%s\"", msg ? msg : "(none)", word);
    json_decref(j);
}

/* ---- a raw TLS client, for what libcurl would not send ---- */

struct raw {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static int raw_open(struct raw *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(r->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    char ca[128], crt[128], key[128];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/admin.crt", certs);
    snprintf(key, sizeof(key), "%s/admin.key", certs);
    r->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(r->ctx, ca, NULL);
    SSL_CTX_use_certificate_file(r->ctx, crt, SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM);
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    r->ssl = SSL_new(r->ctx);
    SSL_set_fd(r->ssl, r->fd);
    return SSL_connect(r->ssl) == 1 ? 0 : -1;
}

static void raw_send(struct raw *r, const char *s, size_t len)
{
    assert_int_equal(SSL_write(r->ssl, s, (int)len), (int)len);
}

/* Reads until the peer closes or n bytes are there; returns what was read. */
static size_t raw_read(struct raw *r, char *buf, size_t cap, const char *until)
{
    size_t len = 0;
    while (len + 1 < cap) {
        int n = SSL_read(r->ssl, buf + len, (int)(cap - 1 - len));
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (until && strstr(buf, until))
            break;
    }
    buf[len] = '\0';
    return len;
}

static void raw_close(struct raw *r)
{
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->fd);
    ERR_clear_error();
}

/* ---- tests ---- */

static void test_status(void **state)
{
    (void)state;
    struct reply r;
    req("GET", "/v1/status?scope=local", NULL, "admin", false, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Srm-Node: n1"));
    json_t *j = body_json(&r);
    struct srm_admin_status *st = NULL;
    char e[256];
    assert_int_equal(srm_admin_status_from_json(j, &st, e, sizeof(e)), 0);
    assert_true(st->local);
    assert_int_equal(st->groups[0].nodes[0].state, SRM_FSM_STATE_NORMAL);
    assert_int_equal(st->groups[0].nodes[0].users_active, 2400);
    srm_admin_status_free(st);
    json_decref(j);

    /* cluster scope: n2 does not answer (nobody at 127.0.0.2), n1 still sees it */
    req("GET", "/v1/status", NULL, "admin", false, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_int_equal(srm_admin_status_from_json(j, &st, e, sizeof(e)), 0);
    assert_false(st->local);
    const struct srm_admin_node_status *n2 = &st->groups[0].nodes[1];
    assert_string_equal(n2->name, "n2");
    assert_int_equal(n2->source, SRM_ADMIN_SOURCE_PEER);
    assert_int_equal(n2->state, SRM_FSM_STATE_NORMAL);
    assert_non_null(n2->error);
    assert_non_null(strstr(n2->error, "no answer from n2"));
    srm_admin_status_free(st);
    json_decref(j);
    req("GET", "/v1/status?scope=galaxy", NULL, "admin", false, &r);
    expect_error(&r, 400, "EINVAL", "scope");

    node.view_error = SRM_EIPC;
    req("GET", "/v1/status", NULL, "admin", false, &r);
    node.view_error = 0;
    expect_error(&r, 503, "SRM_EIPC", "cannot report its state");
}

static void test_operations(void **state)
{
    (void)state;
    struct reply r;
    /* fallback of a Normal node: refused with the machine's own text */
    const char *why = NULL;
    assert_int_equal(srm_fsm_check(&node.fsm, SRM_FSM_EVENT_ADMIN_FALLBACK, &why), SRM_EREFUSED);
    req("POST", "/v1/nodes/n1/fallback", NULL, "admin", false, &r);
    assert_int_equal(r.status, 409);
    json_t *j = body_json(&r);
    struct srm_admin_op_answer a;
    char e[256];
    assert_int_equal(srm_admin_op_answer_from_json(j, &a, e, sizeof(e)), 0);
    assert_false(a.accepted);
    assert_int_equal(a.results[0].status, SRM_EREFUSED);
    assert_string_equal(a.results[0].why, why);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "SRM_EREFUSED");
    json_decref(j);
    assert_int_equal(node.ops[SRM_ADMIN_OP_FALLBACK], 1);
    assert_string_equal(node.last_client, "admin");

    /* failover of this node: accepted, the machine moved */
    req("POST", "/v1/nodes/n1/failover", NULL, "admin", false, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_int_equal(srm_admin_op_answer_from_json(j, &a, e, sizeof(e)), 0);
    assert_true(a.accepted);
    assert_string_equal(a.results[0].node, "n1");
    json_decref(j);
    assert_int_equal(node.accepted[SRM_ADMIN_OP_FAILOVER], 1);
    assert_int_equal(node.fsm.state, SRM_FSM_STATE_FAILING_OVER);

    /* failover of the peer: redirected to it, nothing done here */
    req("POST", "/v1/nodes/n2/failover", NULL, "admin", false, &r);
    assert_int_equal(r.status, 307);
    char loc[128];
    snprintf(loc, sizeof(loc), "Location: https://n2:%u/v1/nodes/n2/failover", port);
    assert_non_null(strstr(r.headers, loc));
    assert_non_null(strstr(r.headers, "Srm-Node-Address: 127.0.0.2"));
    assert_int_equal(node.ops[SRM_ADMIN_OP_FAILOVER], 1);
    req("POST", "/v1/nodes/n7/failover", NULL, "admin", false, &r);
    expect_error(&r, 404, "SRM_ENOTFOUND", "no node \"n7\"");
    req("POST", "/v1/groups/g9/recover", NULL, "admin", false, &r);
    expect_error(&r, 404, "SRM_ENOTFOUND", "no group \"g9\"");
    req("GET", "/v1/nodes/n1/failover", NULL, "admin", false, &r);
    expect_error(&r, 405, NULL, "not allowed");
    assert_non_null(strstr(r.headers, "Allow: POST"));
}

static void test_bounds(void **state)
{
    (void)state;
    struct reply r;
    char big[6000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req("PUT", "/v1/groups/g1/ha", big, "admin", false, &r);
    expect_error(&r, 413, NULL, "exceeds the limit of 4096 bytes");
    req("PUT", "/v1/groups/g1/ha", "{\"enabled\": tru", "admin", false, &r);
    expect_error(&r, 400, NULL, "not valid JSON");
    req("PUT", "/v1/groups/g1/ha", "{\"enabled\": \"yes\"}", "admin", false, &r);
    expect_error(&r, 400, NULL, "\"enabled\" must be true or false, not a string");
    req("PUT", "/v1/groups/g1/ha", "", "admin", false, &r);
    expect_error(&r, 400, NULL, "needs a JSON body");
    req("PUT", "/v1/params/keepalive_interval", "{\"value\": 0}", "admin", false, &r);
    expect_error(&r, 400, "ERANGE", "allowed 1 to 300");
    json_t *j = body_json(&r);
    json_t *range = json_object_get(json_object_get(j, "error"), "range");
    assert_int_equal(json_integer_value(json_object_get(range, "max")), 300);
    json_decref(j);
    req("PUT", "/v1/params/keepalive_interval", "{\"value\": [1]}", "admin", false, &r);
    expect_error(&r, 400, NULL, "\"value\" must be a string, an integer or a boolean");
    req("PUT", "/v1/params/keepalive_interval", "{\"value\": 10, \"node\": \"n1\"}", "admin", false,
        &r);
    expect_error(&r, 400, NULL, "cluster-wide parameter");
    req("GET", "/v1/params/no_such_thing", NULL, "admin", false, &r);
    expect_error(&r, 404, NULL, "no_such_thing");
    req("POST", "/v1/users", "{\"names\": [\"ok\", 12]}", "admin", false, &r);
    expect_error(&r, 400, NULL, "names[1] must be a string");
    req("POST", "/v1/users", "{\"names\": [\"bad name\"]}", "admin", false, &r);
    expect_error(&r, 400, NULL, "names[0]");
    req("POST", "/v1/users", "{\"names\": [\"alice\"]}", "admin", false, &r);
    expect_error(&r, 503, "SRM_EDB_DOWN", "no configuration database");
    req("GET", "/v1/users?limit=0", NULL, "admin", false, &r);
    expect_error(&r, 400, NULL, "\"limit\"");
    req("GET", "/v1/events?wait=999", NULL, "admin", false, &r);
    expect_error(&r, 400, NULL, "\"wait\"");
    req("GET", "/v1/nothing", NULL, "admin", false, &r);
    expect_error(&r, 404, "SRM_ENOTFOUND", "no such endpoint");
    req("GET", "/v2/status", NULL, "admin", false, &r);
    expect_error(&r, 404, NULL, "no such endpoint");

    /* headers over the bound */
    struct raw c;
    char buf[8192];
    assert_int_equal(raw_open(&c), 0);
    char hdr[3000];
    int n = snprintf(hdr, sizeof(hdr), "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(hdr + n, 'y', 2500);
    memcpy(hdr + n + 2500, "\r\n\r\n", 5);
    raw_send(&c, hdr, strlen(hdr));
    raw_read(&c, buf, sizeof(buf), NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 431 "));
    assert_non_null(strstr(buf, "exceed 2048 bytes"));
    raw_close(&c);

    /* not HTTP */
    assert_int_equal(raw_open(&c), 0);
    raw_send(&c, "HELLO THERE\r\n\r\n", 15);
    raw_read(&c, buf, sizeof(buf), NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    assert_non_null(strstr(buf, "malformed HTTP request"));
    raw_close(&c);

    /* a request that never ends: answered 408 after the request timeout, then closed */
    assert_int_equal(raw_open(&c), 0);
    raw_send(&c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n", 34);
    raw_read(&c, buf, sizeof(buf), NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 408 "));
    raw_close(&c);

    /* a body shorter than its Content-Length: same */
    assert_int_equal(raw_open(&c), 0);
    const char *partial =
        "PUT /v1/groups/g1/ha HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    raw_send(&c, partial, strlen(partial));
    raw_read(&c, buf, sizeof(buf), NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 408 "));
    raw_close(&c);
}

static void test_keepalive_pipelining(void **state)
{
    (void)state;
    struct raw c;
    char buf[65536];
    assert_int_equal(raw_open(&c), 0);
    const char *two = "GET /v1/status?scope=local HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(&c, two, strlen(two));
    raw_read(&c, buf, sizeof(buf), "no such endpoint");
    char *first = strstr(buf, "HTTP/1.1 200 OK"), *second = strstr(buf, "HTTP/1.1 404 ");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    /* the connection is still open: a third request on it */
    const char *third = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_send(&c, third, strlen(third));
    size_t len = raw_read(&c, buf, sizeof(buf), NULL);
    assert_true(len > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "Connection: close"));
    raw_close(&c);
}

static void test_metrics(void **state)
{
    (void)state;
    struct reply r;
    unsigned before = node.collects;
    req("GET", "/metrics", NULL, "admin", false, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
    assert_true(node.collects > before);
    char err[256];
    size_t n = 0;
    if (prom_check(r.body, r.len, &n, err, sizeof(err)) != 0)
        fail_msg("%s\n%s", err, r.body);
    assert_non_null(strstr(r.body, "srm_users_active{node=\"n1\"} 2400\n"));
    assert_non_null(strstr(r.body, "# TYPE srm_admin_requests_total counter\n"));
    /* the plain port: /metrics without a certificate, nothing else */
    req("GET", "/metrics", NULL, NULL, true, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(prom_check(r.body, r.len, &n, err, sizeof(err)), 0);
    req("POST", "/v1/nodes/n1/failover", NULL, NULL, true, &r);
    expect_error(&r, 404, NULL, "GET /metrics only");
    /* counters as JSON */
    req("GET", "/v1/counters", NULL, "admin", false, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "node")), "n1");
    assert_true(json_array_size(json_object_get(j, "families")) > 10);
    json_decref(j);
    req("GET", "/v1/counters?node=n2", NULL, "admin", false, &r);
    assert_int_equal(r.status, 307);
}

static void test_client_certificates(void **state)
{
    (void)state;
    unsigned ops = node.ops[SRM_ADMIN_OP_FAILOVER] + node.ops[SRM_ADMIN_OP_FALLBACK] +
                   node.ops[SRM_ADMIN_OP_RECOVER];
    static const char *const bad[] = {NULL, "other", "old"};
    for (size_t i = 0; i < 3; i++) {
        struct reply r;
        req("POST", "/v1/nodes/n1/recover", NULL, bad[i], false, &r);
        if (r.code == CURLE_OK)
            fail_msg("certificate %s accepted (HTTP %ld)", bad[i] ? bad[i] : "(none)", r.status);
        assert_int_equal(r.status, 0);
    }
    assert_int_equal(node.ops[SRM_ADMIN_OP_FAILOVER] + node.ops[SRM_ADMIN_OP_FALLBACK] +
                         node.ops[SRM_ADMIN_OP_RECOVER],
                     ops);
    /* and a node certificate of the cluster is accepted */
    struct reply r;
    req("GET", "/v1/status?scope=local", NULL, "n2", false, &r);
    assert_int_equal(r.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),  cmocka_unit_test(test_operations),
        cmocka_unit_test(test_bounds),  cmocka_unit_test(test_keepalive_pipelining),
        cmocka_unit_test(test_metrics), cmocka_unit_test(test_client_certificates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
