/*
 * srmctl: the admin CLI of the server recovery manager. It talks HTTPS with a client
 * certificate to the admin API of any node (ha/admin/README.md documents the API and, in
 * "srmctl", this tool); requests for another node or group are redirected there, and srmctl
 * follows the redirect, checking that the node it reaches presents a certificate in that
 * node's name. Results go to stdout, errors to stderr; exit codes are in usage().
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "srm_admin.h"
#include "srm_db.h"
#include "srm_error.h"

enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,     /* the state machine or a rule refused the operation */
    EXIT_USAGE = 2,       /* bad command line, or the request is invalid (400, 404) */
    EXIT_UNREACHABLE = 3, /* no connection: node down, timeout, TLS or certificate failure */
    EXIT_SERVER = 4,      /* the node failed: database down, internal error, bad answer */
};

#define REDIRECTS_MAX 3
#define USERS_BATCH   5000

struct opts {
    char host[300];
    unsigned port;
    char ca[1024], cert[1024], key[1024];
    long timeout_ms;
    long connect_timeout_ms;
    bool json;
    bool verbose;
};

static struct opts o;
static volatile sig_atomic_t stop;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: srmctl [GLOBAL OPTIONS] VERB [ARGS] [OPTIONS]\n"
           "\n"
           "Verbs:\n"
           "  status [--json]                     every group and node: state, reason, users,\n"
           "                                      replication lag, critical services\n"
           "  failover NODE                       manual failover of NODE to its peer\n"
           "  fallback NODE                       manual fallback: NODE takes its users back\n"
           "  recover GROUP                       manual recover of both nodes of GROUP\n"
           "  ha enable|disable GROUP             high availability of GROUP on or off\n"
           "  param get [NAME] [--node NODE]      parameters (cluster-wide, or effective on NODE)\n"
           "  param set NAME VALUE [--node NODE]  set cluster-wide, or for NODE (per-node ones)\n"
           "  param reset NAME [--node NODE]      remove the value set at that scope\n"
           "  users add [NAME...] [--node NODE] [--file FILE|-]\n"
           "  users remove [NAME...] [--file FILE|-]\n"
           "  users list [--node NODE] [--unassigned] [--after NAME] [--limit N] [--all]\n"
           "  users assign NODE|--unassign [NAME...] [--file FILE|-]\n"
           "  users rebalance\n"
           "  events [--follow] [--since ID] [--limit N] [--json]\n"
           "  counters [--json] [--node NODE]     this node's (or NODE's) counters\n"
           "  utils ha status|failover NODE|fallback NODE|recover GROUP   (seed CLI verbs)\n"
           "\n"
           "Global options (before the verb):\n"
           "  --node HOST[:PORT]    any node of the cluster (env SRMCTL_NODE; default\n"
           "                        localhost:20075); requests reach the right node from there\n"
           "  --cert-dir DIR        ca.crt, admin.crt and admin.key in DIR, as scripts/make-certs\n"
           "                        makes them (env SRMCTL_CERT_DIR)\n"
           "  --cert-name NAME      use NAME.crt and NAME.key in the cert dir (default admin)\n"
           "  --ca FILE, --cert FILE, --key FILE   the cluster CA, your certificate and key\n"
           "  --timeout SECONDS     whole request (default 10; events --follow adds its wait)\n"
           "  --connect-timeout SECONDS           (default 3)\n"
           "  --json                JSON output (same as the verb option)\n"
           "  -v, --verbose         show redirects\n"
           "  -h, --help\n"
           "\n"
           "Exit codes:\n"
           "  0  success\n"
           "  1  refused: the states do not allow the operation, or a rule refuses it (the\n"
           "     reason is printed on stderr)\n"
           "  2  usage error or invalid request: bad arguments, unknown node, group or parameter,\n"
           "     a value out of range (the allowed range is printed)\n"
           "  3  cannot reach the node: connection refused, timeout, TLS or certificate failure\n"
           "     (the message says which certificate is wrong)\n"
           "  4  the node failed: configuration database unreachable, internal error\n");
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("srmctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

/* ---- HTTP ---- */

struct answer {
    long status;
    char *body;
    size_t len;
    char redirect_node[SRM_DB_NAME_MAX + 1];
    char redirect_addr[SRM_DB_ADDRESS_MAX + 1];
    char location[2048];
    char node[SRM_DB_NAME_MAX + 1]; /* Srm-Node of the answer */
};

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    struct answer *a = data;
    size_t len = size * n;
    if (a->len + len > (64u << 20))
        return 0;
    char *b = realloc(a->body, a->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + a->len, p, len);
    a->body = b;
    a->len += len;
    b[a->len] = '\0';
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    struct answer *a = data;
    size_t len = size * n;
    header_value(p, len, "Location", a->location, sizeof(a->location));
    header_value(p, len, "Srm-Redirect-Node", a->redirect_node, sizeof(a->redirect_node));
    header_value(p, len, "Srm-Node-Address", a->redirect_addr, sizeof(a->redirect_addr));
    header_value(p, len, "Srm-Node", a->node, sizeof(a->node));
    return len;
}

static void tls_failure(CURLcode code, const char *err, const char *where)
{
    switch (code) {
    case CURLE_SSL_CACERT_BADFILE:
        die(EXIT_UNREACHABLE, "cannot use the CA file %s: %s", o.ca, err);
    case CURLE_SSL_CERTPROBLEM:
        die(EXIT_UNREACHABLE, "cannot use your client certificate %s with key %s: %s", o.cert,
            o.key, err);
    case CURLE_PEER_FAILED_VERIFICATION:
        die(EXIT_UNREACHABLE,
            "the certificate of %s is not trusted: %s (it must be signed by the cluster CA in %s "
            "and name the node)",
            where, err, o.ca);
    default:
        break;
    }
    if (strstr(err, "alert") || strstr(err, "certificate"))
        die(EXIT_UNREACHABLE,
            "%s refused your client certificate %s: %s (it must be signed by the cluster CA and "
            "valid today)",
            where, o.cert, err);
    die(EXIT_UNREACHABLE, "TLS failure with %s: %s", where, err);
}

/* Stops a transfer in progress once SIGINT or SIGTERM arrived (events --follow). */
static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)data, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return stop ? 1 : 0;
}

/*
 * One request, following redirects to the node that serves it. method: GET, POST, PUT,
 * DELETE; body may be NULL. Exits on a transport failure.
 */
static void request(const char *method, const char *path, const char *body, long extra_ms,
                    struct answer *ret)
{
    char url[2400], connect_to[600] = "", expect[SRM_DB_NAME_MAX + 1] = "";
    bool v6 = strchr(o.host, ':') != NULL;
    snprintf(url, sizeof(url), "https://%s%s%s:%u%s", v6 ? "[" : "", o.host, v6 ? "]" : "", o.port,
             path);
    for (int hop = 0;; hop++) {
        struct answer a;
        memset(&a, 0, sizeof(a));
        CURL *c = curl_easy_init();
        if (!c)
            die(EXIT_SERVER, "out of memory");
        char err[CURL_ERROR_SIZE] = "";
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        h = curl_slist_append(h, "Expect:");
        struct curl_slist *ct = connect_to[0] ? curl_slist_append(NULL, connect_to) : NULL;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        }
        if (ct)
            curl_easy_setopt(c, CURLOPT_CONNECT_TO, ct);
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
        curl_easy_setopt(c, CURLOPT_CAINFO, o.ca);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(c, CURLOPT_SSLCERT, o.cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, o.key);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        /* The node asked first may be any node of the cluster: its certificate must chain to
         * the cluster CA. A node reached by a redirect must also carry that node's name. */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, hop == 0 ? 0L : 2L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o.timeout_ms + extra_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        curl_slist_free_all(ct);
        char where[1400];
        if (hop == 0)
            snprintf(where, sizeof(where), "node %s:%u", o.host, o.port);
        else
            snprintf(where, sizeof(where), "node %s (%s)", expect, connect_to);
        if (rc == CURLE_ABORTED_BY_CALLBACK && stop)
            exit(EXIT_OK); /* interrupted by the user: not an error */
        if (rc != CURLE_OK) {
            free(a.body);
            const char *e = err[0] ? err : curl_easy_strerror(rc);
            switch (rc) {
            case CURLE_COULDNT_CONNECT:
            case CURLE_COULDNT_RESOLVE_HOST:
                die(EXIT_UNREACHABLE, "cannot reach %s: %s; is srmd running there?", where, e);
            case CURLE_OPERATION_TIMEDOUT:
                die(EXIT_UNREACHABLE, "no answer from %s: %s", where, e);
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_CERTPROBLEM:
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CONNECT_ERROR:
            case CURLE_RECV_ERROR:
            case CURLE_SEND_ERROR:
                tls_failure(rc, e, where);
                break;
            default:
                die(EXIT_UNREACHABLE, "request to %s failed: %s", where, e);
            }
        }
        if (a.status == 307 && a.location[0] && a.redirect_node[0] && a.redirect_addr[0]) {
            if (hop + 1 > REDIRECTS_MAX)
                die(EXIT_SERVER, "too many redirects (last to %s)", a.location);
            if (o.verbose)
                fprintf(stderr, "srmctl: %s is served by node %s (%s)\n", path, a.redirect_node,
                        a.redirect_addr);
            /* https://NODE:PORT/...: connect to the address the directory gives */
            const char *hp = strstr(a.location, "://");
            unsigned port = 0;
            const char *colon = hp ? strchr(hp + 3, ':') : NULL;
            if (!colon || sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
                die(EXIT_SERVER, "malformed redirect to %s", a.location);
            bool av6 = strchr(a.redirect_addr, ':') != NULL;
            snprintf(connect_to, sizeof(connect_to), "%s:%u:%s%s%s:%u", a.redirect_node, port,
                     av6 ? "[" : "", a.redirect_addr, av6 ? "]" : "", port);
            snprintf(expect, sizeof(expect), "%s", a.redirect_node);
            snprintf(url, sizeof(url), "%s", a.location);
            free(a.body);
            continue;
        }
        *ret = a;
        return;
    }
}

static json_t *answer_json(const struct answer *a)
{
    json_error_t e;
    json_t *j = a->body ? json_loadb(a->body, a->len, 0, &e) : NULL;
    if (!j)
        die(EXIT_SERVER, "node %s answered HTTP %ld with a body that is not JSON: %.200s",
            a->node[0] ? a->node : o.host, a->status, a->body ? a->body : "");
    return j;
}

/* Exits with the error of a non-2xx answer. */
static void fail_answer(const struct answer *a)
{
    json_t *j = answer_json(a);
    const char *msg = NULL;
    json_t *err = json_object_get(j, "error");
    if (json_is_object(err))
        msg = json_string_value(json_object_get(err, "message"));
    int code = a->status == 409                       ? EXIT_REFUSED
               : a->status >= 400 && a->status < 500  ? EXIT_USAGE
               : a->status == 502 || a->status == 504 ? EXIT_UNREACHABLE
                                                      : EXIT_SERVER;
    fprintf(stderr, "srmctl: %s\n", msg ? msg : "the node answered with an error");
    if (json_is_object(err)) {
        json_t *range = json_object_get(err, "range");
        if (json_is_object(range))
            fprintf(stderr, "srmctl: allowed values of %s: %s\n",
                    json_string_value(json_object_get(range, "name")),
                    strcmp(json_string_value(json_object_get(range, "kind")), "bool") == 0
                        ? "true or false"
                        : "see above");
    }
    json_decref(j);
    exit(code);
}

static json_t *call(const char *method, const char *path, json_t *body, long extra_ms)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct answer a;
    request(method, path, text, extra_ms, &a);
    free(text);
    if (a.status < 200 || a.status >= 300)
        fail_answer(&a);
    json_t *j = answer_json(&a);
    free(a.body);
    return j;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

static char *pct(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *p = out;
    if (!out)
        die(EXIT_SERVER, "out of memory");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~')
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    *p = '\0';
    return out;
}

/* ---- status ---- */

static void fmt_time(int64_t us, char *buf, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static int cmd_status(bool json)
{
    json_t *j = call("GET", "/v1/status", NULL, 0);
    struct srm_admin_status *st = NULL;
    char e[256];
    if (srm_admin_status_from_json(j, &st, e, sizeof(e)) < 0)
        die(EXIT_SERVER, "malformed status from the node: %s", e);
    if (json) {
        print_json(j);
        json_decref(j);
        srm_admin_status_free(st);
        return EXIT_OK;
    }
    json_decref(j);
    const char *hdr[] = {"GROUP",  "NODE", "STATE",    "REASON", "USERS",
                         "ACTIVE", "LAG",  "SERVICES", "SOURCE"};
    enum { NCOL = 9 };
    size_t rows = 1;
    for (size_t g = 0; g < st->n_groups; g++)
        rows += st->groups[g].n_nodes ? st->groups[g].n_nodes : 1;
    char(*cell)[NCOL][256] = calloc(rows, sizeof(*cell));
    if (!cell)
        die(EXIT_SERVER, "out of memory");
    for (int c = 0; c < NCOL; c++)
        snprintf(cell[0][c], 256, "%s", hdr[c]);
    size_t r = 1;
    for (size_t g = 0; g < st->n_groups; g++) {
        const struct srm_admin_group_status *gs = &st->groups[g];
        if (gs->n_nodes == 0) {
            snprintf(cell[r][0], 256, "%s%s", gs->name, gs->ha_enabled ? "" : " (HA off)");
            snprintf(cell[r][1], 256, "-");
            r++;
            continue;
        }
        for (size_t i = 0; i < gs->n_nodes; i++, r++) {
            const struct srm_admin_node_status *n = &gs->nodes[i];
            if (i == 0)
                snprintf(cell[r][0], 256, "%s%s", gs->name, gs->ha_enabled ? "" : " (HA off)");
            snprintf(cell[r][1], 256, "%s", n->name);
            snprintf(cell[r][2], 256, "%s", srm_fsm_state_name(n->state));
            snprintf(cell[r][3], 256, "%s", srm_fsm_reason_name(n->reason));
            if (n->users_assigned >= 0)
                snprintf(cell[r][4], 256, "%" PRId64, n->users_assigned);
            else
                snprintf(cell[r][4], 256, "-");
            if (n->users_active >= 0)
                snprintf(cell[r][5], 256, "%" PRId64, n->users_active);
            else
                snprintf(cell[r][5], 256, "-");
            if (n->repl_known)
                snprintf(cell[r][6], 256, "%" PRIu64 "e/%" PRIu64 "B/%" PRIu64 "ms", n->lag_entries,
                         n->lag_bytes, n->lag_ms);
            else
                snprintf(cell[r][6], 256, "-");
            size_t off = 0;
            for (size_t k = 0; k < n->n_services && off < 200; k++)
                off += (size_t)snprintf(cell[r][7] + off, 256 - off, "%s%s:%s", k ? "," : "",
                                        n->services[k].name, n->services[k].up ? "up" : "DOWN");
            if (n->n_services == 0)
                snprintf(cell[r][7], 256, "-");
            if (n->source == SRM_ADMIN_SOURCE_PEER)
                snprintf(cell[r][8], 256, "peer (%" PRId64 " ms ago)", n->age_ms);
            else
                snprintf(cell[r][8], 256, "%s",
                         n->source == SRM_ADMIN_SOURCE_SELF ? "self" : "unreachable");
        }
    }
    size_t w[NCOL] = {0};
    for (size_t i = 0; i < r; i++)
        for (int c = 0; c < NCOL; c++)
            if (strlen(cell[i][c]) > w[c])
                w[c] = strlen(cell[i][c]);
    for (size_t i = 0; i < r; i++) {
        for (int c = 0; c < NCOL; c++) {
            bool num = c == 4 || c == 5;
            if (c == NCOL - 1)
                printf("%s", cell[i][c]);
            else if (num && i > 0)
                printf("%*s  ", (int)w[c], cell[i][c]);
            else
                printf("%-*s  ", (int)w[c], cell[i][c]);
        }
        putchar('\n');
    }
    free(cell);
    /* notes: what could not be seen, and what the database last heard */
    for (size_t g = 0; g < st->n_groups; g++)
        for (size_t i = 0; i < st->groups[g].n_nodes; i++) {
            const struct srm_admin_node_status *n = &st->groups[g].nodes[i];
            if (n->source == SRM_ADMIN_SOURCE_SELF)
                continue;
            printf("note: %s: %s", n->name,
                   n->source == SRM_ADMIN_SOURCE_PEER ? "shown as its peer sees it"
                                                      : "nobody sees it, state Unknown");
            if (n->error)
                printf("; %s", n->error);
            if (n->reported_state) {
                char t[64] = "";
                if (n->reported_since_us)
                    fmt_time(n->reported_since_us, t, sizeof(t));
                printf("; last reported %s / %s%s%s", n->reported_state,
                       n->reported_reason ? n->reported_reason : "?", t[0] ? " since " : "", t);
            }
            putchar('\n');
        }
    if (st->config_source && strcmp(st->config_source, "database") != 0)
        printf("note: %s works from its %s configuration (%" PRId64 " ms old)%s\n",
               st->answered_by ? st->answered_by : "the node", st->config_source, st->config_age_ms,
               st->db_up ? "" : "; the configuration database is unreachable");
    srm_admin_status_free(st);
    return EXIT_OK;
}

/* ---- operations ---- */

static int cmd_op(enum srm_admin_op op, const char *target)
{
    char e[256];
    if (op == SRM_ADMIN_OP_RECOVER ? srm_db_validate_group_name(target, e, sizeof(e)) < 0
                                   : srm_db_validate_node_name(target, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    char *t = pct(target);
    char path[512];
    snprintf(path, sizeof(path), "/v1/%s/%s/%s", op == SRM_ADMIN_OP_RECOVER ? "groups" : "nodes", t,
             srm_admin_op_name(op));
    free(t);
    struct answer a;
    request("POST", path, NULL, 0, &a);
    json_t *j = answer_json(&a);
    struct srm_admin_op_answer ans;
    if (srm_admin_op_answer_from_json(j, &ans, e, sizeof(e)) < 0) {
        if (a.status >= 300)
            fail_answer(&a);
        die(EXIT_SERVER, "malformed answer: %s", e);
    }
    if (o.json)
        print_json(j);
    json_decref(j);
    free(a.body);
    int rc = EXIT_OK;
    for (size_t i = 0; i < ans.n_results; i++) {
        const struct srm_admin_op_result *r = &ans.results[i];
        if (r->accepted) {
            if (!o.json)
                printf("%s of %s accepted by %s%s%s\n", srm_admin_op_name(op), target, r->node,
                       r->why[0] ? ": " : "", r->why);
        } else {
            fprintf(stderr, "srmctl: %s of %s %s by %s: %s\n", srm_admin_op_name(op), target,
                    r->status == SRM_EREFUSED ? "refused" : "failed", r->node, r->why);
        }
    }
    if (!ans.accepted) {
        bool refused = false;
        for (size_t i = 0; i < ans.n_results; i++)
            refused |= ans.results[i].status == SRM_EREFUSED;
        rc = refused                              ? EXIT_REFUSED
             : a.status == 502 || a.status == 504 ? EXIT_UNREACHABLE
                                                  : EXIT_SERVER;
    }
    return rc;
}

static int cmd_ha(const char *how, const char *group)
{
    bool enable;
    if (strcmp(how, "enable") == 0)
        enable = true;
    else if (strcmp(how, "disable") == 0)
        enable = false;
    else
        die(EXIT_USAGE, "ha: expected enable or disable, not \"%s\"", how);
    char e[256];
    if (srm_db_validate_group_name(group, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    json_t *body = NULL;
    srm_admin_ha_request_to_json(enable, &body);
    char *g = pct(group), path[512];
    snprintf(path, sizeof(path), "/v1/groups/%s/ha", g);
    free(g);
    json_t *j = call("PUT", path, body, 0);
    if (o.json)
        print_json(j);
    else
        printf("HA %s on group %s\n", enable ? "enabled" : "disabled", group);
    json_decref(j);
    return EXIT_OK;
}

/* ---- parameters ---- */

static void print_param(json_t *p)
{
    const char *name = json_string_value(json_object_get(p, "name"));
    json_t *v = json_object_get(p, "value");
    const char *unit = json_string_value(json_object_get(p, "unit"));
    char val[64];
    if (json_is_boolean(v))
        snprintf(val, sizeof(val), "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(val, sizeof(val), "%" JSON_INTEGER_FORMAT "%s", json_integer_value(v),
                 unit ? unit : "");
    const char *kind = json_string_value(json_object_get(p, "kind"));
    char range[64];
    if (kind && strcmp(kind, "bool") == 0)
        snprintf(range, sizeof(range), "true|false");
    else
        snprintf(range, sizeof(range), "%" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT "%s",
                 json_integer_value(json_object_get(p, "min")),
                 json_integer_value(json_object_get(p, "max")), unit ? unit : "");
    printf("%-28s %-8s %-8s %-14s%s\n", name ? name : "?", val,
           json_string_value(json_object_get(p, "source")), range,
           json_is_true(json_object_get(p, "per_node")) ? " per-node" : "");
}

static int cmd_param(int argc, char **argv)
{
    const char *node = NULL;
    static const struct option lo[] = {{"node", required_argument, NULL, 'n'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:j", lo, NULL)) != -1) {
        if (c == 'n')
            node = optarg;
        else if (c == 'j')
            o.json = true;
        else
            die(EXIT_USAGE, "param: see srmctl --help");
    }
    argc -= optind;
    argv += optind;
    if (argc < 1)
        die(EXIT_USAGE, "param: expected get, set or reset");
    const char *verb = argv[0];
    char e[512];
    if (node && srm_db_validate_node_name(node, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    char *nq = node ? pct(node) : NULL;
    char path[1024];
    int rc = EXIT_OK;
    if (strcmp(verb, "get") == 0) {
        if (argc > 2)
            die(EXIT_USAGE, "param get: at most one NAME");
        enum srm_db_param p;
        if (argc == 2 && srm_db_param_lookup(argv[1], &p, e, sizeof(e)) < 0)
            die(EXIT_USAGE, "%s", e);
        snprintf(path, sizeof(path), "/v1/params%s%s%s%s", argc == 2 ? "/" : "",
                 argc == 2 ? argv[1] : "", nq ? "?node=" : "", nq ? nq : "");
        json_t *j = call("GET", path, NULL, 0);
        if (o.json) {
            print_json(j);
        } else {
            printf("%-28s %-8s %-8s %-14s\n", "NAME", "VALUE", "SOURCE", "RANGE");
            json_t *arr = json_object_get(j, "params");
            if (json_is_array(arr)) {
                size_t i;
                json_t *jp;
                json_array_foreach(arr, i, jp) print_param(jp);
            } else {
                print_param(j);
            }
        }
        json_decref(j);
    } else if (strcmp(verb, "set") == 0 || strcmp(verb, "reset") == 0) {
        bool set = strcmp(verb, "set") == 0;
        if (argc != (set ? 3 : 2))
            die(EXIT_USAGE,
                set ? "param set NAME VALUE [--node NODE]" : "param reset NAME [--node NODE]");
        enum srm_db_param p;
        int64_t v;
        if (srm_db_param_lookup(argv[1], &p, e, sizeof(e)) < 0)
            die(EXIT_USAGE, "%s", e);
        if (set && srm_db_param_parse_value(p, argv[2], &v, e, sizeof(e)) < 0)
            die(EXIT_USAGE, "%s", e);
        if (node && !srm_db_param_def(p)->per_node)
            die(EXIT_USAGE, "%s is a cluster-wide parameter: it cannot be set for one node",
                argv[1]);
        json_t *body = NULL;
        if (set) {
            struct srm_admin_param_request pr;
            memset(&pr, 0, sizeof(pr));
            snprintf(pr.value, sizeof(pr.value), "%s", argv[2]);
            snprintf(pr.node, sizeof(pr.node), "%s", node ? node : "");
            srm_admin_param_request_to_json(&pr, &body);
            snprintf(path, sizeof(path), "/v1/params/%s", argv[1]);
        } else {
            snprintf(path, sizeof(path), "/v1/params/%s%s%s", argv[1], nq ? "?node=" : "",
                     nq ? nq : "");
        }
        json_t *j = call(set ? "PUT" : "DELETE", path, body, 0);
        if (o.json)
            print_json(j);
        else
            print_param(j);
        json_decref(j);
    } else {
        die(EXIT_USAGE, "param: expected get, set or reset, not \"%s\"", verb);
    }
    free(nq);
    return rc;
}

/* ---- users ---- */

struct names {
    size_t n, cap;
    char **v;
};

static void names_add(struct names *ns, const char *s)
{
    char e[256];
    if (srm_db_validate_user_name(s, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? ns->cap * 2 : 64;
        ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
        if (!ns->v)
            die(EXIT_SERVER, "out of memory");
    }
    ns->v[ns->n] = strdup(s);
    if (!ns->v[ns->n])
        die(EXIT_SERVER, "out of memory");
    ns->n++;
}

static void names_file(struct names *ns, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        die(EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != '#')
            names_add(ns, line);
    }
    if (f != stdin)
        fclose(f);
}

static int cmd_users(int argc, char **argv)
{
    const char *node = NULL, *after = NULL, *file = NULL;
    bool unassigned = false, all = false, unassign = false;
    long limit = 1000;
    static const struct option lo[] = {{"node", required_argument, NULL, 'n'},
                                       {"after", required_argument, NULL, 'a'},
                                       {"limit", required_argument, NULL, 'l'},
                                       {"file", required_argument, NULL, 'f'},
                                       {"unassigned", no_argument, NULL, 'u'},
                                       {"unassign", no_argument, NULL, 'U'},
                                       {"all", no_argument, NULL, 'A'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
    if (argc < 2)
        die(EXIT_USAGE, "users: expected add, remove, list, assign or rebalance");
    const char *verb = argv[1];
    argc--;
    argv++;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:a:l:f:uUAj", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            node = optarg;
            break;
        case 'a':
            after = optarg;
            break;
        case 'l': {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (*end || limit < 1 || limit > SRM_DB_LIST_MAX)
                die(EXIT_USAGE, "--limit must be 1 to %d", SRM_DB_LIST_MAX);
            break;
        }
        case 'f':
            file = optarg;
            break;
        case 'u':
            unassigned = true;
            break;
        case 'U':
            unassign = true;
            break;
        case 'A':
            all = true;
            break;
        case 'j':
            o.json = true;
            break;
        default:
            die(EXIT_USAGE, "users: see srmctl --help");
        }
    }
    char e[256];
    if (node && srm_db_validate_node_name(node, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    struct names ns = {0};
    int first = optind;
    if (strcmp(verb, "assign") == 0 && !unassign) {
        if (first >= argc)
            die(EXIT_USAGE, "users assign NODE|--unassign NAME...");
        node = argv[first++];
        if (srm_db_validate_node_name(node, e, sizeof(e)) < 0)
            die(EXIT_USAGE, "%s", e);
    }
    for (int i = first; i < argc; i++)
        names_add(&ns, argv[i]);
    if (file)
        names_file(&ns, file);

    if (strcmp(verb, "list") == 0) {
        char last[SRM_DB_USER_NAME_MAX + 1] = "";
        if (after)
            snprintf(last, sizeof(last), "%s", after);
        json_t *out = o.json ? json_array() : NULL;
        for (;;) {
            char path[1024];
            char *aq = last[0] ? pct(last) : NULL, *nq = node ? pct(node) : NULL;
            snprintf(path, sizeof(path), "/v1/users?limit=%ld%s%s%s%s%s", limit,
                     aq ? "&after=" : "", aq ? aq : "", nq ? "&node=" : "", nq ? nq : "",
                     unassigned ? "&unassigned=true" : "");
            free(aq);
            free(nq);
            json_t *j = call("GET", path, NULL, 0);
            json_t *users = json_object_get(j, "users");
            size_t i;
            json_t *u;
            json_array_foreach(users, i, u)
            {
                if (out)
                    json_array_append(out, u);
                else
                    printf("%s\t%s\n", json_string_value(json_object_get(u, "name")),
                           json_is_string(json_object_get(u, "node"))
                               ? json_string_value(json_object_get(u, "node"))
                               : "-");
            }
            json_t *next = json_object_get(j, "next_after");
            bool more = all && json_is_string(next);
            if (more)
                snprintf(last, sizeof(last), "%s", json_string_value(next));
            else if (!all && json_is_string(next) && !out)
                fprintf(stderr, "srmctl: more users follow: --after %s (or --all)\n",
                        json_string_value(next));
            json_decref(j);
            if (!more)
                break;
        }
        if (out) {
            print_json(out);
            json_decref(out);
        }
        return EXIT_OK;
    }
    if (strcmp(verb, "rebalance") == 0) {
        json_t *j = call("POST", "/v1/users/rebalance", NULL, 0);
        if (o.json)
            print_json(j);
        else
            printf("rebalanced: %" JSON_INTEGER_FORMAT " users moved\n",
                   json_integer_value(json_object_get(j, "moved")));
        json_decref(j);
        return EXIT_OK;
    }
    const char *path;
    if (strcmp(verb, "add") == 0)
        path = "/v1/users";
    else if (strcmp(verb, "remove") == 0)
        path = "/v1/users/remove";
    else if (strcmp(verb, "assign") == 0)
        path = "/v1/users/assign";
    else
        die(EXIT_USAGE, "users: expected add, remove, list, assign or rebalance, not \"%s\"", verb);
    if (ns.n == 0)
        die(EXIT_USAGE, "users %s: no user names (give them as arguments or with --file)", verb);
    long long total = 0, moved = 0;
    for (size_t off = 0; off < ns.n; off += USERS_BATCH) {
        struct srm_admin_users_request ur = {0};
        ur.n = ns.n - off < USERS_BATCH ? ns.n - off : USERS_BATCH;
        ur.names = ns.v + off;
        ur.node = (char *)node;
        json_t *body = NULL;
        if (srm_admin_users_request_to_json(&ur, &body) < 0)
            die(EXIT_SERVER, "out of memory");
        json_t *j = call("POST", path, body, 0);
        json_t *cnt = json_object_get(j, strcmp(verb, "add") == 0      ? "added"
                                         : strcmp(verb, "remove") == 0 ? "removed"
                                                                       : "changed");
        total += json_integer_value(cnt);
        moved += json_integer_value(json_object_get(j, "moved"));
        json_decref(j);
    }
    if (o.json)
        printf("{\"%s\": %lld, \"moved\": %lld}\n",
               strcmp(verb, "add") == 0      ? "added"
               : strcmp(verb, "remove") == 0 ? "removed"
                                             : "changed",
               total, moved);
    else
        printf("%s: %lld users%s, %lld moved by the assignment mode\n", verb, total,
               strcmp(verb, "assign") == 0 ? " changed home node" : "", moved);
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
    return EXIT_OK;
}

/* ---- events ---- */

static void print_event(json_t *ev)
{
    if (o.json) {
        char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
    } else {
        struct srm_db_event e;
        char err[256];
        if (srm_admin_event_from_json(ev, &e, err, sizeof(err)) < 0) {
            fprintf(stderr, "srmctl: skipping a malformed event: %s\n", err);
            return;
        }
        char t[64];
        fmt_time(e.at_us, t, sizeof(t));
        printf("%s.%03d #%" PRId64 " %s%s%s%s: %s / %s -> %s / %s%s%s\n", t,
               (int)((e.at_us % 1000000) / 1000), e.id, e.node, e.group ? " (" : "",
               e.group ? e.group : "", e.group ? ")" : "", e.old_state ? e.old_state : "(start)",
               e.old_reason ? e.old_reason : "-", e.new_state, e.new_reason,
               e.cause && e.cause[0] ? "  " : "", e.cause ? e.cause : "");
        srm_admin_event_clear(&e);
    }
    fflush(stdout);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int cmd_events(int argc, char **argv)
{
    bool follow = false;
    long long since = -1;
    long limit = 20;
    static const struct option lo[] = {{"follow", no_argument, NULL, 'f'},
                                       {"since", required_argument, NULL, 's'},
                                       {"limit", required_argument, NULL, 'l'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "fs:l:j", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 's':
            since = strtoll(optarg, &end, 10);
            if (*end || since < 0)
                die(EXIT_USAGE, "--since needs an event id (a number >= 0)");
            break;
        case 'l':
            limit = strtol(optarg, &end, 10);
            if (*end || limit < 1 || limit > SRM_DB_LIST_MAX)
                die(EXIT_USAGE, "--limit must be 1 to %d", SRM_DB_LIST_MAX);
            break;
        case 'j':
            o.json = true;
            break;
        default:
            die(EXIT_USAGE, "events: see srmctl --help");
        }
    }
    if (optind < argc)
        die(EXIT_USAGE, "events: unexpected argument \"%s\"", argv[optind]);
    char path[256];
    if (since >= 0)
        snprintf(path, sizeof(path), "/v1/events?after=%lld&limit=%ld", since, limit);
    else
        snprintf(path, sizeof(path), "/v1/events?limit=%ld", limit);
    json_t *j = call("GET", path, NULL, 0);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(j, "events"), i, ev) print_event(ev);
    long long last = json_integer_value(json_object_get(j, "last_id"));
    json_decref(j);
    if (!follow)
        return EXIT_OK;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    const int wait_s = 25;
    while (!stop) {
        snprintf(path, sizeof(path), "/v1/events?after=%lld&limit=1000&wait=%d", last, wait_s);
        j = call("GET", path, NULL, wait_s * 1000L);
        json_array_foreach(json_object_get(j, "events"), i, ev) print_event(ev);
        long long l = json_integer_value(json_object_get(j, "last_id"));
        if (l > last)
            last = l;
        json_decref(j);
    }
    return EXIT_OK;
}

/* ---- counters ---- */

static int cmd_counters(int argc, char **argv)
{
    const char *node = NULL;
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"node", required_argument, NULL, 'n'},
                                       {NULL, 0, NULL, 0}};
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "jn:", lo, NULL)) != -1) {
        if (c == 'j')
            o.json = true;
        else if (c == 'n')
            node = optarg;
        else
            die(EXIT_USAGE, "counters [--json] [--node NODE]");
    }
    char e[256], path[512];
    if (node && srm_db_validate_node_name(node, e, sizeof(e)) < 0)
        die(EXIT_USAGE, "%s", e);
    char *nq = node ? pct(node) : NULL;
    snprintf(path, sizeof(path), "/v1/counters%s%s", nq ? "?node=" : "", nq ? nq : "");
    free(nq);
    json_t *j = call("GET", path, NULL, 0);
    if (o.json) {
        print_json(j);
        json_decref(j);
        return EXIT_OK;
    }
    size_t i, k;
    json_t *f, *s;
    json_array_foreach(json_object_get(j, "families"), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_array_foreach(json_object_get(f, "series"), k, s)
        {
            char labels[512] = "";
            size_t off = 0;
            const char *key;
            json_t *v;
            json_object_foreach(json_object_get(s, "labels"), key, v)
            {
                if (off < sizeof(labels))
                    off += (size_t)snprintf(labels + off, sizeof(labels) - off, "%s%s=\"%s\"",
                                            off ? "," : "", key, json_string_value(v));
            }
            json_t *val = json_object_get(s, "value");
            char num[64];
            if (json_is_integer(val))
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
            else
                snprintf(num, sizeof(num), "%g", json_number_value(val));
            printf("%s%s%s%s %s\n", name, off ? "{" : "", labels, off ? "}" : "", num);
        }
    }
    json_decref(j);
    return EXIT_OK;
}

/* ---- main ---- */

static void set_node(const char *arg)
{
    const char *h = arg;
    size_t hl;
    const char *port = NULL;
    if (h[0] == '[') {
        const char *end = strchr(h, ']');
        if (!end)
            die(EXIT_USAGE, "--node %s: missing ']'", arg);
        h++;
        hl = (size_t)(end - h);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            die(EXIT_USAGE, "--node %s: expected [ADDRESS]:PORT", arg);
    } else {
        const char *colon = strchr(h, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hl = (size_t)(colon - h);
            port = colon + 1;
        } else {
            hl = strlen(h); /* a name, IPv4, or bare IPv6 */
        }
    }
    if (hl == 0 || hl >= sizeof(o.host))
        die(EXIT_USAGE, "--node %s: bad host", arg);
    memcpy(o.host, h, hl);
    o.host[hl] = '\0';
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            die(EXIT_USAGE, "--node %s: bad port", arg);
        o.port = (unsigned)p;
    }
}

static long seconds_ms(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || v <= 0 || v > 3600)
        die(EXIT_USAGE, "%s must be a number of seconds (0 to 3600)", what);
    return (long)(v * 1000);
}

int main(int argc, char **argv)
{
    const char *cert_dir = getenv("SRMCTL_CERT_DIR"), *cert_name = "admin";
    const char *ca = NULL, *cert = NULL, *key = NULL;
    snprintf(o.host, sizeof(o.host), "localhost");
    o.port = 20075;
    o.timeout_ms = 10000;
    o.connect_timeout_ms = 3000;
    if (getenv("SRMCTL_NODE") && getenv("SRMCTL_NODE")[0])
        set_node(getenv("SRMCTL_NODE"));

    static const struct option lo[] = {{"node", required_argument, NULL, 'N'},
                                       {"cert-dir", required_argument, NULL, 'D'},
                                       {"cert-name", required_argument, NULL, 'M'},
                                       {"ca", required_argument, NULL, 'C'},
                                       {"cert", required_argument, NULL, 'c'},
                                       {"key", required_argument, NULL, 'k'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"connect-timeout", required_argument, NULL, 'T'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    /* "+": stop at the verb; what follows belongs to it */
    while ((c = getopt_long(argc, argv, "+hvj", lo, NULL)) != -1) {
        switch (c) {
        case 'N':
            set_node(optarg);
            break;
        case 'D':
            cert_dir = optarg;
            break;
        case 'M':
            cert_name = optarg;
            break;
        case 'C':
            ca = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            o.timeout_ms = seconds_ms(optarg, "--timeout");
            break;
        case 'T':
            o.connect_timeout_ms = seconds_ms(optarg, "--connect-timeout");
            break;
        case 'j':
            o.json = true;
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cert_dir) {
        if (!ca)
            snprintf(o.ca, sizeof(o.ca), "%s/ca.crt", cert_dir);
        if (!cert)
            snprintf(o.cert, sizeof(o.cert), "%s/%s.crt", cert_dir, cert_name);
        if (!key)
            snprintf(o.key, sizeof(o.key), "%s/%s.key", cert_dir, cert_name);
    }
    if (ca)
        snprintf(o.ca, sizeof(o.ca), "%s", ca);
    if (cert)
        snprintf(o.cert, sizeof(o.cert), "%s", cert);
    if (key)
        snprintf(o.key, sizeof(o.key), "%s", key);
    if (!o.ca[0] || !o.cert[0] || !o.key[0])
        die(EXIT_USAGE, "no certificates: give --cert-dir DIR (or SRMCTL_CERT_DIR), or --ca, "
                        "--cert and --key");
    const char *files[] = {o.ca, o.cert, o.key};
    const char *what[] = {"CA file", "client certificate", "client key"};
    for (int i = 0; i < 3; i++)
        if (access(files[i], R_OK) != 0)
            die(EXIT_USAGE, "cannot read the %s %s: %s", what[i], files[i], strerror(errno));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die(EXIT_SERVER, "cannot initialise libcurl");

    /* the seed's verbs: srmctl utils ha status|failover NODE|fallback NODE|recover GROUP */
    if (strcmp(argv[0], "utils") == 0) {
        if (argc < 3 || strcmp(argv[1], "ha") != 0)
            die(EXIT_USAGE, "utils ha status|failover NODE|fallback NODE|recover GROUP");
        argc -= 2;
        argv += 2;
    }
    const char *verb = argv[0];
    int rc;
    if (strcmp(verb, "status") == 0) {
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                o.json = true;
            else
                die(EXIT_USAGE, "status [--json]");
        }
        rc = cmd_status(o.json);
    } else if (strcmp(verb, "failover") == 0 || strcmp(verb, "fallback") == 0 ||
               strcmp(verb, "recover") == 0) {
        if (argc != 2)
            die(EXIT_USAGE, "%s %s", verb, strcmp(verb, "recover") == 0 ? "GROUP" : "NODE");
        enum srm_admin_op op;
        srm_admin_op_parse(verb, &op);
        rc = cmd_op(op, argv[1]);
    } else if (strcmp(verb, "ha") == 0) {
        if (argc != 3)
            die(EXIT_USAGE, "ha enable|disable GROUP");
        rc = cmd_ha(argv[1], argv[2]);
    } else if (strcmp(verb, "param") == 0) {
        rc = cmd_param(argc, argv);
    } else if (strcmp(verb, "users") == 0) {
        rc = cmd_users(argc, argv);
    } else if (strcmp(verb, "events") == 0) {
        rc = cmd_events(argc, argv);
    } else if (strcmp(verb, "counters") == 0) {
        rc = cmd_counters(argc, argv);
    } else {
        fprintf(stderr, "srmctl: unknown verb \"%s\"\n", verb);
        usage(stderr);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
