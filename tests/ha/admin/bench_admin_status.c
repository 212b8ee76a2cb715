/*
 * Throughput and latency of the admin API over TLS on loopback (label bench: never run by
 * the test command). One client (libcurl, one thread) against the server on its own loop
 * thread with a fake backend:
 *   - baseline: GET of an unknown endpoint (a 404 built without the backend), keep-alive;
 *   - GET /v1/status?scope=local, keep-alive;
 *   - GET /v1/status (cluster: the node asks a second node over TLS for each request);
 *   - GET /v1/status?scope=local with a new TLS connection per request.
 * Prints requests/s and p50/p99 latency, and each figure's ratio to the baseline measured in
 * the same run, as BENCH lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "fake_backend.h"

static char certs[64];
static uv_loop_t loop;
static uv_thread_t thread;
static uv_async_t stopper;
static struct fake_node a, b;
static struct srm_admin_server *sa, *sb;
static struct srm_db_config *dir;
static uint16_t port;
static int closing;

static void on_closed(void *d)
{
    (void)d;
    if (--closing == 0)
        uv_close((uv_handle_t *)&stopper, NULL);
}

static void on_stop(uv_async_t *h)
{
    (void)h;
    closing = 2;
    srm_admin_server_close(sa, on_closed, NULL);
    srm_admin_server_close(sb, on_closed, NULL);
}

static void run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
}

static struct srm_admin_server *start(struct fake_node *f, const char *name, const char *host,
                                      uint16_t p)
{
    char ca[128], crt[128], key[128];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/%s.crt", certs, name);
    snprintf(key, sizeof(key), "%s/%s.key", certs, name);
    struct srm_admin_server_options o = {.node = name,
                                         .listen_host = host,
                                         .listen_port = p,
                                         .ca_file = ca,
                                         .cert_file = crt,
                                         .key_file = key,
                                         .backend = fake_node_backend(f),
                                         .metrics = f->metrics};
    struct srm_admin_server *s;
    if (srm_admin_server_new(&loop, &o, &s) < 0 || srm_admin_server_start(s) < 0)
        return NULL;
    return s;
}

static size_t sink(char *p, size_t s, size_t n, void *d)
{
    (void)p, (void)d;
    return s * n;
}

static int cmp(const void *x, const void *y)
{
    double u = *(const double *)x, v = *(const double *)y;
    return u < v ? -1 : u > v;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct result {
    double rps, p50_us, p99_us;
};

static struct result measure(const char *path, int n, bool reuse, long want)
{
    char url[256], ca[128], crt[128], key[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", port, path);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(crt, sizeof(crt), "%s/admin.crt", certs);
    snprintf(key, sizeof(key), "%s/admin.key", certs);
    double *lat = calloc((size_t)n, sizeof(double));
    CURL *c = NULL;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (!c || !reuse) {
            if (c)
                curl_easy_cleanup(c);
            c = curl_easy_init();
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_CAINFO, ca);
            curl_easy_setopt(c, CURLOPT_SSLCERT, crt);
            curl_easy_setopt(c, CURLOPT_SSLKEY, key);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        }
        double s = now_s();
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        lat[i] = (now_s() - s) * 1e6;
        long code;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        assert_int_equal(code, want);
    }
    double total = now_s() - t0;
    curl_easy_cleanup(c);
    qsort(lat, (size_t)n, sizeof(double), cmp);
    struct result r = {n / total, lat[n / 2], lat[(int)(n * 0.99)]};
    free(lat);
    return r;
}

static void report(const char *name, struct result r, const struct result *base)
{
    printf("%-28s %9.0f req/s  p50 %7.0f us  p99 %7.0f us", name, r.rps, r.p50_us, r.p99_us);
    if (base)
        printf("  (%.2fx the baseline's p99)", r.p99_us / base->p99_us);
    printf("\nBENCH admin_%s_rps %.0f req/s\nBENCH admin_%s_p99_us %.0f us\n", name, r.rps, name,
           r.p99_us);
    if (base)
        printf("BENCH admin_%s_p99_vs_baseline %.2f ratio\n", name, r.p99_us / base->p99_us);
}

static void bench(void **state)
{
    (void)state;
    int n = getenv("SRM_BENCH_N") ? atoi(getenv("SRM_BENCH_N")) : 4000;
    measure("/v1/status?scope=local", 200, true, 200); /* warm up */
    struct result base = measure("/v1/nothing", n, true, 404);
    report("baseline_404", base, NULL);
    report("status_local", measure("/v1/status?scope=local", n, true, 200), &base);
    report("status_cluster", measure("/v1/status", n / 2, true, 200), &base);
    report("status_new_conn", measure("/v1/status?scope=local", n / 10, false, 200), &base);
}

static int setup(void **state)
{
    (void)state;
    certs[0] = '\0';
    if (fake_make_certs(certs, NULL, "n1 n2 admin") < 0)
        return -1;
    fake_node_init(&a, "n1", "n2", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    fake_node_init(&b, "n2", "n1", SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL,
                   SRM_FSM_STATE_NORMAL, SRM_FSM_REASON_NORMAL);
    uv_loop_init(&loop);
    for (int i = 0; i < 20 && !sb; i++) {
        sa = start(&a, "n1", "127.0.0.1", 0);
        if (!sa)
            return -1;
        port = srm_admin_server_port(sa);
        sb = start(&b, "n2", "127.0.0.2", port);
        if (!sb) {
            srm_admin_server_close(sa, NULL, NULL);
            uv_run(&loop, UV_RUN_DEFAULT);
        }
    }
    if (!sb)
        return -1;
    dir = fake_directory(1, port);
    a.config = b.config = dir;
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
    fake_node_fini(&a);
    fake_node_fini(&b);
    fake_rmdir(certs);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bench)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
