/*
 * Integration tests of replication: two repl-node processes, each with its own datastore,
 * over real mutual TLS on loopback. Between them, for the link-cutting tests, a TCP proxy
 * run by this process that can cut every connection at will. Contents are compared with
 * the datastore's digests, read by this process from both directories.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../replication/internal.h"
#include "srm_ds.h"
#include "srm_error.h"

static char tmp[256];
static char node_bin[512];
static int port_base;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    usleep(ms * 1000u);
}

static char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path(const char *fmt, ...)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    int n = snprintf(b, 512, "%s/", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, (size_t)(512 - n), fmt, ap);
    va_end(ap);
    return b;
}

/* ---- processes ---- */

struct node {
    pid_t pid;
    char out[512];
};

/* Starts repl-node with the common arguments of node id (1 or 2) and extra ones. */
static void start_node(struct node *nd, int id, const char *out, const char *certdir,
                       const char *certname, const char *const *extra)
{
    const char *argv[64];
    int n = 0;
    static char dir[512], node[8], peer[8], pname[8], ca[512], cert[512], key[512];
    snprintf(dir, sizeof(dir), "%s/n%d", tmp, id);
    snprintf(node, sizeof(node), "%d", id);
    snprintf(peer, sizeof(peer), "%d", 3 - id);
    snprintf(pname, sizeof(pname), "n%d", 3 - id);
    snprintf(ca, sizeof(ca), "%s/certs/ca.crt", tmp);
    snprintf(cert, sizeof(cert), "%s/%s/%s.crt", tmp, certdir, certname);
    snprintf(key, sizeof(key), "%s/%s/%s.key", tmp, certdir, certname);
    argv[n++] = node_bin;
    const char *fixed[] = {"--dir", dir, "--node", node, "--peer", peer, "--peer-name",    pname,
                           "--ca",  ca,  "--cert", cert, "--key",  key,  "--keepalive-ms", "300"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
        argv[n++] = fixed[i];
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(nd->out, sizeof(nd->out), "%s/%s", tmp, out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(nd->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(node_bin, (char *const *)argv);
        _exit(127);
    }
    nd->pid = pid;
}

static void stop_node(struct node *nd, int sig)
{
    if (nd->pid <= 0)
        return;
    kill(nd->pid, sig);
    for (int i = 0; i < 500; i++) {
        if (waitpid(nd->pid, NULL, WNOHANG) == nd->pid) {
            nd->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(nd->pid, SIGKILL);
    waitpid(nd->pid, NULL, 0);
    nd->pid = 0;
}

static int count_in_file(const char *file, const char *needle)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static bool wait_line(const char *file, const char *needle, int count, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (count_in_file(file, needle) >= count)
            return true;
        sleep_ms(20);
    }
    return false;
}

/* ---- digests, asked of the node processes (SIGUSR1) ---- */

static bool last_line(const char *file, const char *prefix, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, prefix, strlen(prefix)) == 0 && line[strlen(line) - 1] == '\n') {
            snprintf(out, cap, "%.*s", (int)(cap - 1), line);
            found = true;
        }
    fclose(f);
    return found;
}

/* The digest line of part from node nd ("" if it did not answer in time). */
static void digest_of(struct node *nd, uint32_t part, char *out, size_t cap)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "DIGEST %u ", part);
    int before = count_in_file(nd->out, prefix);
    out[0] = '\0';
    kill(nd->pid, SIGUSR1);
    if (wait_line(nd->out, prefix, before + 1, 5000))
        last_line(nd->out, prefix, out, cap);
}

static uint64_t wait_same_digest(struct node *a, struct node *b, uint32_t part,
                                 uint64_t expect_count, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms, count = 0;
    char da[512], db[512];
    while (now_ms() < end) {
        digest_of(a, part, da, sizeof(da));
        digest_of(b, part, db, sizeof(db));
        count = 0;
        sscanf(da, "DIGEST %*u %" SCNu64, &count);
        if (da[0] && strcmp(da, db) == 0 && count >= expect_count)
            return count;
        sleep_ms(200);
    }
    fail_msg("digests of partition %u differ after %u ms:\n  %s  %s", part, timeout_ms, da, db);
    return 0;
}

/* Waits until node nd's log of part starts after `after` (trimmed behind the peer's
 * acknowledgements); returns its first sequence. */
static uint64_t wait_trimmed(struct node *nd, uint32_t part, uint64_t after, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms, first = 0;
    char prefix[32], line[512];
    snprintf(prefix, sizeof(prefix), "LOG %u ", part);
    while (now_ms() < end) {
        int before = count_in_file(nd->out, prefix);
        kill(nd->pid, SIGUSR1);
        if (wait_line(nd->out, prefix, before + 1, 5000) &&
            last_line(nd->out, prefix, line, sizeof(line)))
            sscanf(line, "LOG %*u %" SCNu64, &first);
        if (first > after)
            return first;
        sleep_ms(100);
    }
    return first;
}

static bool nothing_applied(struct node *b)
{
    char d[512];
    uint64_t count = 1;
    digest_of(b, 1, d, sizeof(d));
    sscanf(d, "DIGEST %*u %" SCNu64, &count);
    return d[0] && count == 0;
}

/* ---- a TCP proxy that cuts links on request ---- */

static struct {
    int lfd, to_port;
    volatile int cut, stop;
    pthread_t th;
    unsigned cuts;
} px;

static void rst_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

static void *proxy_main(void *arg)
{
    (void)arg;
    int pairs[8][2];
    int np = 0;
    char buf[65536];
    while (!px.stop) {
        if (px.cut) {
            for (int i = 0; i < np; i++) {
                rst_close(pairs[i][0]);
                rst_close(pairs[i][1]);
            }
            np = 0;
            px.cut = 0;
            px.cuts++;
        }
        struct pollfd pf[17];
        int n = 0;
        pf[n++] = (struct pollfd){.fd = px.lfd, .events = POLLIN};
        for (int i = 0; i < np; i++) {
            pf[n++] = (struct pollfd){.fd = pairs[i][0], .events = POLLIN};
            pf[n++] = (struct pollfd){.fd = pairs[i][1], .events = POLLIN};
        }
        if (poll(pf, (nfds_t)n, 20) <= 0)
            continue;
        int polled = np; /* pairs accepted below have no poll entry yet */
        if ((pf[0].revents & POLLIN) && np < 8) {
            int c = accept(px.lfd, NULL, NULL);
            if (c >= 0) {
                int s = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = htons((uint16_t)px.to_port),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    pairs[np][0] = c;
                    pairs[np][1] = s;
                    np++;
                } else {
                    close(s);
                    rst_close(c);
                }
            }
        }
        for (int i = 0; i < polled && i < np; i++) {
            for (int side = 0; side < 2; side++) {
                if (!(pf[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t r = recv(pairs[i][side], buf, sizeof(buf), MSG_DONTWAIT);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    continue;
                bool dead = r <= 0;
                for (ssize_t off = 0; !dead && off < r;) {
                    ssize_t w = write(pairs[i][!side], buf + off, (size_t)(r - off));
                    if (w <= 0)
                        dead = true;
                    else
                        off += w;
                }
                if (dead) {
                    rst_close(pairs[i][0]);
                    rst_close(pairs[i][1]);
                    pairs[i][0] = pairs[np - 1][0];
                    pairs[i][1] = pairs[np - 1][1];
                    np--;
                    i = polled; /* the poll set is stale: poll again */
                    break;
                }
            }
        }
    }
    for (int i = 0; i < np; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static void proxy_start(int listen_port, int to_port)
{
    memset(&px, 0, sizeof(px));
    px.lfd = listen_on(listen_port);
    px.to_port = to_port;
    pthread_create(&px.th, NULL, proxy_main, NULL);
}

static void proxy_cut(void)
{
    px.cut = 1;
    for (int i = 0; i < 100 && px.cut; i++)
        sleep_ms(5);
}

static void proxy_stop(void)
{
    px.stop = 1;
    pthread_join(px.th, NULL);
    close(px.lfd);
}

static char *hp(int port)
{
    static char b[4][32];
    static int k;
    char *s = b[k++ % 4];
    snprintf(s, 32, "127.0.0.1:%d", port);
    return s;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("SRM_BINARY_DIR"), *src = getenv("SRM_SOURCE_DIR");
    assert_non_null(bin);
    assert_non_null(src);
    snprintf(node_bin, sizeof(node_bin), "%s/tests/replication/repl-node", bin);
    snprintf(tmp, sizeof(tmp), "/tmp/srm-repl-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; S=%s/scripts/make-certs; $S certs n1 n2 n3 >/dev/null;"
             "mkdir -p expired; cp certs/ca.* expired/; $S --expired n2 expired >/dev/null;"
             "$S --ca-name other-ca other n2 >/dev/null",
             tmp, src);
    assert_int_equal(system(cmd), 0);
    port_base = 20000 + (int)(getpid() % 2000) * 10;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void wipe_nodes(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s/n1 %s/n2 %s/*.out %s/acked", tmp, tmp, tmp, tmp);
    assert_int_equal(system(cmd), 0);
}

/* ---- tests ---- */

/* Steady streaming, then the link cut repeatedly under write load; the log holds the whole
 * backlog, so every catch-up is from the log. */
static void test_link_cuts_large_backlog(void **state)
{
    (void)state;
    wipe_nodes();
    int pb = port_base, pp = port_base + 1;
    struct node a, b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", NULL};
    start_node(&b, 2, "b.out", "certs", "n2", bx);
    proxy_start(pp, pb);
    const char *ax[] = {"--connect", hp(pp),  "--own",   "1:1", "--write", "150000",
                        "--rate",    "50000", "--batch", "50",  NULL};
    start_node(&a, 1, "a.out", "certs", "n1", ax);
    assert_true(wait_line(a.out, "+handshake", 1, 10000));
    for (int i = 0; i < 8; i++) {
        sleep_ms(250);
        proxy_cut();
    }
    assert_true(wait_line(a.out, "WRITES-DONE", 1, 20000));
    uint64_t n = wait_same_digest(&a, &b, 1, 150000, 30000);
    assert_int_equal(n, 150000);
    assert_true(count_in_file(a.out, "+handshake") >= 3); /* it reconnected */
    assert_int_equal(count_in_file(b.out, "+snapshot-installed"), 0);
    /* the sender trimmed its log behind the acknowledgements (in its trimming thread) */
    assert_int_equal(wait_trimmed(&a, 1, 150000, 10000), 150001);
    stop_node(&a, SIGTERM);
    stop_node(&b, SIGTERM);
    proxy_stop();
}

/* The same with a log bounded to 4 KiB: the peer falls behind the horizon and gets
 * snapshots. */
static void test_link_cuts_tiny_log_snapshots(void **state)
{
    (void)state;
    wipe_nodes();
    int pb = port_base + 2, pp = port_base + 3;
    struct node a, b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", NULL};
    start_node(&b, 2, "b.out", "certs", "n2", bx);
    proxy_start(pp, pb);
    const char *ax[] = {"--connect", hp(pp),   "--own", "1:1",     "--log-max", "4096", "--write",
                        "40000",     "--rate", "20000", "--batch", "20",        NULL};
    start_node(&a, 1, "a.out", "certs", "n1", ax);
    assert_true(wait_line(a.out, "+handshake", 1, 10000));
    for (int i = 0; i < 6; i++) {
        sleep_ms(300);
        proxy_cut();
    }
    assert_true(wait_line(a.out, "WRITES-DONE", 1, 20000));
    assert_int_equal(wait_same_digest(&a, &b, 1, 40000, 30000), 40000);
    assert_true(count_in_file(b.out, "+snapshot-installed") >= 1);
    assert_true(count_in_file(a.out, "+snapshot-sent") >= 1);
    stop_node(&a, SIGTERM);
    stop_node(&b, SIGTERM);
    proxy_stop();
}

/* Each side is killed and restarted mid-stream. */
static void test_restart_either_side(void **state)
{
    (void)state;
    wipe_nodes();
    int pb = port_base + 4;
    struct node a, b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", NULL};
    start_node(&b, 2, "b.out", "certs", "n2", bx);
    const char *ax[] = {"--connect", hp(pb),  "--own",    "1:1",    "--write", "120000",
                        "--rate",    "40000", "--prefix", "first-", NULL};
    start_node(&a, 1, "a.out", "certs", "n1", ax);
    assert_true(wait_line(a.out, "+handshake", 1, 10000));
    sleep_ms(700);
    stop_node(&b, SIGKILL); /* the receiver dies mid-stream */
    start_node(&b, 2, "b2.out", "certs", "n2", bx);
    assert_true(wait_line(b.out, "+handshake", 1, 10000));
    assert_true(wait_line(a.out, "WRITES-DONE", 1, 20000));
    stop_node(&a, SIGKILL); /* the sender dies; it comes back and writes more */
    const char *ax2[] = {"--connect", hp(pb),     "--own",   "1:1", "--write",
                         "20000",     "--prefix", "second-", NULL};
    start_node(&a, 1, "a2.out", "certs", "n1", ax2);
    assert_true(wait_line(a.out, "WRITES-DONE", 1, 20000));
    assert_int_equal(wait_same_digest(&a, &b, 1, 140000, 30000), 140000);
    stop_node(&a, SIGTERM);
    stop_node(&b, SIGTERM);
}

/* Sync durability: the writer's node is SIGKILLed at random moments; every write it had
 * been told was replicated must be on the peer. */
static void test_sync_kill_loop(void **state)
{
    (void)state;
    wipe_nodes();
    int pb = port_base + 5;
    struct node a, b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", "--acked", path("acked"), NULL};
    start_node(&b, 2, "b.out", "certs", "n2", bx);
    srand((unsigned)getpid());
    int kills = 0;
    for (int i = 0; i < 100; i++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "k%d-", i);
        const char *ax[] = {"--connect", hp(pb),         "--own",       "1:1",
                            "--write",   "-1",           "--clients",   "8",
                            "--sync",    "--acked",      path("acked"), "--prefix",
                            prefix,      "--degrade-ms", "20000",       NULL};
        start_node(&a, 1, "a.out", "certs", "n1", ax);
        sleep_ms(40 + (unsigned)(rand() % 120));
        stop_node(&a, SIGKILL);
        kills++;
        /* the peer checks every key acknowledged so far */
        int before = count_in_file(b.out, "CHECKED ");
        kill(b.pid, SIGUSR2);
        assert_true(wait_line(b.out, "CHECKED ", before + 1, 5000));
    }
    assert_int_equal(kills, 100);
    char line[256];
    unsigned long long checked = 0, missing = 1;
    assert_true(last_line(b.out, "CHECKED ", line, sizeof(line)));
    assert_int_equal(sscanf(line, "CHECKED %llu MISSING %llu", &checked, &missing), 2);
    fprintf(stderr, "sync kill loop: %d kills, %llu acknowledged writes checked, %llu missing\n",
            kills, checked, missing);
    assert_int_equal(missing, 0);
    assert_true(checked >= 100); /* writes were acknowledged at all */
    stop_node(&b, SIGTERM);
}

/* A receiver presenting a bad certificate: the writer refuses it, nothing is applied. */
static void refused_case(const char *certdir, const char *certname, const char *a_certname,
                         const char *expect_on, const char *reason)
{
    wipe_nodes();
    int pb = port_base + 6;
    struct node a, b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", NULL};
    start_node(&b, 2, "b.out", certdir, certname, bx);
    const char *ax[] = {"--connect", hp(pb), "--own", "1:1", "--write", "100", NULL};
    start_node(&a, 1, "a.out", "certs", a_certname, ax);
    const char *out = strcmp(expect_on, "a") == 0 ? a.out : b.out;
    bool refused = wait_line(out, "-peer-refused", 1, 10000);
    sleep_ms(200);
    bool none = nothing_applied(&b);
    stop_node(&a, SIGKILL);
    stop_node(&b, SIGKILL);
    assert_true(none);
    if (!refused)
        fail_msg("no refusal for %s/%s", certdir, certname);
    assert_true(count_in_file(out, reason) >= 1);
    assert_int_equal(count_in_file(a.out, "+handshake"), 0);
}

static void test_refuse_wrong_ca(void **state)
{
    (void)state;
    refused_case("other", "n2", "n1", "a", "SRM_EPEER_CERT");
}

static void test_refuse_wrong_peer_name(void **state)
{
    (void)state;
    refused_case("certs", "n3", "n1", "a", "hostname mismatch");
    /* and the other way: the dialler presents n3's certificate to a node expecting n1 */
    refused_case("certs", "n2", "n3", "b", "hostname mismatch");
}

static void test_refuse_expired(void **state)
{
    (void)state;
    refused_case("expired", "n2", "n1", "a", "certificate has expired");
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 200; i++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sleep_ms(20);
    }
    fail_msg("cannot connect to port %d", port);
    return -1;
}

/* A TLS client with node 1's valid certificate that speaks the protocol badly. */
static SSL *evil_connect(int port, SSL_CTX **ret_ctx, int *ret_fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, path("certs/ca.crt"), NULL), 1);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, path("certs/n1.crt")), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path("certs/n1.key"), SSL_FILETYPE_PEM), 1);
    int fd = tcp_connect(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    *ret_ctx = ctx;
    *ret_fd = fd;
    return ssl;
}

static size_t frame(uint8_t *buf, uint8_t type, const uint8_t *payload, size_t len)
{
    memmove(buf + SRM__REPL_HDR, payload, len);
    srm__repl_frame_header(buf, type, buf + SRM__REPL_HDR, len);
    return SRM__REPL_HDR + len;
}

static void evil_session(int port, int variant)
{
    SSL_CTX *ctx;
    int fd;
    SSL *ssl = evil_connect(port, &ctx, &fd);
    static struct srm__repl_hello h;
    memset(&h, 0, sizeof(h));
    h.version_min = h.version_max = SRM_REPL_VERSION;
    strcpy(h.cluster, "srm-test");
    h.node_id = 1;
    h.peer_id = 2;
    h.nparts = 1;
    h.parts[0] = (struct srm__repl_partrec){
        .part = 1, .role = SRM_REPL_ROLE_SOURCE, .epoch = 1, .gen = 42, .seq = 3};
    static uint8_t buf[8192], pl[4096];
    size_t n = frame(buf, SRM__REPL_MSG_HELLO, pl, srm__repl_hello_encode(&h, pl));
    assert_int_equal(SSL_write(ssl, buf, (int)n), (int)n);
    /* an ENTRIES frame of three well-formed entries */
    struct srm__repl_entries e = {.part = 1,
                                  .epoch = 1,
                                  .gen = 42,
                                  .first_seq = 1,
                                  .through_seq = 3,
                                  .head_seq = 3,
                                  .count = 3};
    size_t pn = srm__repl_entries_encode_head(&e, pl);
    for (int i = 0; i < 3; i++) {
        char user[16], val[64];
        snprintf(user, sizeof(user), "evil%d", i);
        memset(val, 0, sizeof(val));
        struct srm_ds_entry en = {.seq = (uint64_t)i + 1,
                                  .kind = SRM_DS_PRESENCE,
                                  .stamp = {.epoch = 1, .hlc = 1, .origin = 1},
                                  .key = user,
                                  .key_len = strlen(user) + 3,
                                  .val = val,
                                  .val_len = 8};
        size_t used = 0;
        assert_int_equal(srm_ds_entry_encode(&en, pl + pn, sizeof(pl) - pn, &used), 0);
        pn += used;
    }
    n = frame(buf, SRM__REPL_MSG_ENTRIES, pl, pn);
    if (variant == 0) {
        /* truncated frame, then the connection closes */
        assert_true(SSL_write(ssl, buf, (int)(n - 10)) > 0);
    } else if (variant == 1) {
        /* a flipped payload bit: checksum mismatch */
        buf[n - 5] ^= 0x40;
        assert_true(SSL_write(ssl, buf, (int)n) > 0);
    } else if (variant == 2) {
        /* correct framing, records that are not valid presence values */
        assert_true(SSL_write(ssl, buf, (int)n) > 0);
    } else {
        /* garbage after the handshake */
        memset(buf, 0x5a, 300);
        assert_true(SSL_write(ssl, buf, 300) > 0);
    }
    sleep_ms(150);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

static void test_refuse_garbage_and_truncated(void **state)
{
    (void)state;
    wipe_nodes();
    int pb = port_base + 7;
    struct node b;
    const char *bx[] = {"--listen", hp(pb), "--recv", "1:1", NULL};
    start_node(&b, 2, "b.out", "certs", "n2", bx);
    /* garbage instead of a TLS handshake */
    int fd = tcp_connect(pb);
    const char junk[] = "GET / HTTP/1.1\r\nHost: srm\r\n\r\n\x16\x03\x01\xff\xff garbage";
    assert_true(write(fd, junk, sizeof(junk)) > 0);
    assert_true(wait_line(b.out, "-peer-refused", 1, 10000));
    close(fd);
    for (int v = 0; v < 4; v++) {
        int before = count_in_file(b.out, "-link-down");
        evil_session(pb, v);
        assert_true(wait_line(b.out, "-link-down", before + 1, 10000));
    }
    assert_true(count_in_file(b.out, "checksum") >= 1);
    assert_true(count_in_file(b.out, "applying entries") >= 1);
    assert_true(count_in_file(b.out, "malformed frame") >= 1);
    assert_true(nothing_applied(&b));
    stop_node(&b, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_cuts_large_backlog),
        cmocka_unit_test(test_link_cuts_tiny_log_snapshots),
        cmocka_unit_test(test_restart_either_side),
        cmocka_unit_test(test_sync_kill_loop),
        cmocka_unit_test(test_refuse_wrong_ca),
        cmocka_unit_test(test_refuse_wrong_peer_name),
        cmocka_unit_test(test_refuse_expired),
        cmocka_unit_test(test_refuse_garbage_and_truncated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
