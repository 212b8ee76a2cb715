/*
 * The node configuration file and the persisted state, both JSON (jansson).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srm_error.h"
#include "srmd.h"

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return SRM_ECONFIG;
}

static char *dup_opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* "host:port" (IPv6 as "[addr]:port"). */
static int parse_hostport(const char *s, char **ret_host, uint16_t *ret_port)
{
    const char *colon;
    char *end;
    long port;
    size_t hl;

    if (!s)
        return -EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        hl = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535 || hl == 0)
        return -EINVAL;
    *ret_host = strndup(s, hl);
    *ret_port = (uint16_t)port;
    return *ret_host ? 0 : -ENOMEM;
}

static int get_u32(json_t *obj, const char *key, uint32_t def, uint32_t *ret, const char *where,
                   char *errbuf, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (!v) {
        *ret = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return fail(errbuf, errlen, "%s: \"%s\" must be a non-negative integer", where, key);
    *ret = (uint32_t)json_integer_value(v);
    return 0;
}

int srmd_conf_load(const char *path, struct srmd_conf *ret, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    struct srmd_conf c = {0};
    json_t *node, *peer, *tls, *repl, *admin, *ipc, *services, *timing;
    int r = SRM_ECONFIG;

    if (!root)
        return fail(errbuf, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
    c.path = strdup(path);
    c.cluster = dup_opt(root, "cluster");
    c.group = dup_opt(root, "group");
    c.dir = dup_opt(root, "dir");
    c.database = dup_opt(root, "database");
    node = json_object_get(root, "node");
    peer = json_object_get(root, "peer");
    if (!c.cluster || !c.group || !c.dir || !json_is_object(node) || !json_is_object(peer)) {
        fail(errbuf, errlen,
             "%s: \"cluster\", \"group\", \"dir\", \"node\" and \"peer\" are required", path);
        goto out;
    }
    c.node_name = dup_opt(node, "name");
    c.peer_name = dup_opt(peer, "name");
    if (!c.node_name || !c.peer_name) {
        fail(errbuf, errlen, "%s: \"node\" and \"peer\" need a \"name\"", path);
        goto out;
    }
    if (get_u32(node, "id", 0, &c.node_id, path, errbuf, errlen) < 0 ||
        get_u32(peer, "id", 0, &c.peer_id, path, errbuf, errlen) < 0)
        goto out;
    if (c.node_id == 0 || c.peer_id == 0 || c.node_id == c.peer_id) {
        fail(errbuf, errlen, "%s: node and peer need distinct, non-zero Corosync node ids (\"id\")",
             path);
        goto out;
    }

    tls = json_object_get(root, "tls");
    c.tls_ca = dup_opt(tls, "ca");
    c.tls_cert = dup_opt(tls, "cert");
    c.tls_key = dup_opt(tls, "key");
    if (!c.tls_ca || !c.tls_cert || !c.tls_key) {
        fail(errbuf, errlen,
             "%s: \"tls\" needs \"ca\", \"cert\" and \"key\" (PEM files; "
             "scripts/make-certs makes them)",
             path);
        goto out;
    }
    repl = json_object_get(root, "replication");
    if (parse_hostport(json_string_value(json_object_get(repl, "listen")), &c.repl_listen_host,
                       &c.repl_listen_port) < 0 ||
        parse_hostport(json_string_value(json_object_get(repl, "peer")), &c.repl_peer_host,
                       &c.repl_peer_port) < 0) {
        fail(errbuf, errlen, "%s: \"replication\" needs \"listen\" and \"peer\" as \"host:port\"",
             path);
        goto out;
    }
    admin = json_object_get(root, "admin");
    if (parse_hostport(json_string_value(json_object_get(admin, "listen")), &c.admin_listen_host,
                       &c.admin_listen_port) < 0) {
        fail(errbuf, errlen, "%s: \"admin\" needs \"listen\" as \"host:port\"", path);
        goto out;
    }
    if (json_object_get(admin, "metrics_listen") &&
        parse_hostport(json_string_value(json_object_get(admin, "metrics_listen")),
                       &c.metrics_listen_host, &c.metrics_listen_port) < 0) {
        fail(errbuf, errlen, "%s: \"admin\".\"metrics_listen\" must be \"host:port\"", path);
        goto out;
    }

    ipc = json_object_get(root, "ipc");
    c.ipc_name = dup_opt(ipc, "name");
    if (!c.ipc_name)
        c.ipc_name = strdup("srmd");
    for (int k = 0; k < 2; k++) {
        json_t *arr = json_object_get(ipc, k ? "allow_gids" : "allow_uids");
        uint32_t *dst = k ? c.ipc_gids : c.ipc_uids;
        size_t *n = k ? &c.n_ipc_gids : &c.n_ipc_uids;
        size_t i;
        json_t *v;
        if (!arr)
            continue;
        if (!json_is_array(arr) || json_array_size(arr) > SRMD_UIDS_MAX) {
            fail(errbuf, errlen, "%s: \"ipc\".\"%s\" must be a list of at most %d ids", path,
                 k ? "allow_gids" : "allow_uids", SRMD_UIDS_MAX);
            goto out;
        }
        json_array_foreach(arr, i, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                fail(errbuf, errlen, "%s: ipc ids must be non-negative integers", path);
                goto out;
            }
            dst[(*n)++] = (uint32_t)json_integer_value(v);
        }
    }
    if (c.n_ipc_uids == 0 && c.n_ipc_gids == 0)
        c.ipc_uids[c.n_ipc_uids++] = 0; /* root only */

    services = json_object_get(root, "services");
    if (services) {
        size_t i;
        json_t *s;
        if (!json_is_array(services) || json_array_size(services) > SRMD_SERVICES_MAX) {
            fail(errbuf, errlen, "%s: \"services\" must be a list of at most %d services", path,
                 SRMD_SERVICES_MAX);
            goto out;
        }
        json_array_foreach(services, i, s)
        {
            struct srmd_service_conf *sc = &c.services[c.n_services++];
            json_t *crit = json_object_get(s, "critical");
            sc->name = dup_opt(s, "name");
            sc->start = dup_opt(s, "start");
            sc->stop = dup_opt(s, "stop");
            sc->check = dup_opt(s, "check");
            sc->critical = !crit || json_is_true(crit);
            if (!sc->name || !sc->check) {
                fail(errbuf, errlen, "%s: services[%zu] needs \"name\" and \"check\"", path, i);
                goto out;
            }
            if (get_u32(s, "check_interval_ms", 1000, &sc->check_interval_ms, path, errbuf,
                        errlen) < 0)
                goto out;
        }
    }

    timing = json_object_get(root, "timing");
    if (get_u32(timing, "lease_ms", 5000, &c.lease_ms, path, errbuf, errlen) < 0 ||
        get_u32(timing, "fence_node_ms", 100, &c.fence_node_ms, path, errbuf, errlen) < 0 ||
        get_u32(timing, "stall_ms", 2000, &c.stall_ms, path, errbuf, errlen) < 0 ||
        get_u32(timing, "drain_ms", 5000, &c.drain_ms, path, errbuf, errlen) < 0 ||
        get_u32(timing, "catchup_ms", 30000, &c.catchup_ms, path, errbuf, errlen) < 0)
        goto out;
    if (c.lease_ms < 200) {
        fail(errbuf, errlen, "%s: \"timing\".\"lease_ms\" must be at least 200", path);
        goto out;
    }
    r = 0;
out:
    json_decref(root);
    if (r < 0) {
        srmd_conf_free(&c);
        return r;
    }
    *ret = c;
    return 0;
}

void srmd_conf_free(struct srmd_conf *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->cluster);
    free(c->node_name);
    free(c->peer_name);
    free(c->group);
    free(c->dir);
    free(c->database);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->repl_listen_host);
    free(c->repl_peer_host);
    free(c->admin_listen_host);
    free(c->metrics_listen_host);
    free(c->ipc_name);
    for (size_t i = 0; i < c->n_services; i++) {
        free(c->services[i].name);
        free(c->services[i].start);
        free(c->services[i].stop);
        free(c->services[i].check);
    }
    memset(c, 0, sizeof(*c));
}

/* ---- the persisted state ------------------------------------------------------------ */

static char *state_path(const char *dir, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p, "%s/state.json%s", dir, suffix) < 0)
        return NULL;
    return p;
}

int srmd_state_load(const char *dir, struct srmd_state *ret)
{
    char *path = state_path(dir, "");
    json_t *root;
    json_error_t jerr;
    struct srmd_state s = {.kind = SRM_FSM_START_FRESH};

    if (!path)
        return -ENOMEM;
    if (access(path, F_OK) != 0) {
        free(path);
        *ret = s;
        return 0;
    }
    root = json_load_file(path, 0, &jerr);
    free(path);
    s.kind = SRM_FSM_START_CORRUPT;
    if (root) {
        const char *st = json_string_value(json_object_get(root, "state"));
        const char *rs = json_string_value(json_object_get(root, "reason"));
        json_t *ep = json_object_get(root, "epoch");
        if (st && rs && json_is_integer(ep) && srm_fsm_state_parse(st, &s.state) == 0 &&
            srm_fsm_reason_parse(rs, &s.reason) == 0 && json_integer_value(ep) >= 0 &&
            json_integer_value(ep) <= UINT32_MAX) {
            s.kind = SRM_FSM_START_RESUME;
            s.epoch = (uint32_t)json_integer_value(ep);
            s.announced = json_is_true(json_object_get(root, "announced"));
        }
        json_decref(root);
    }
    *ret = s;
    return 0;
}

int srmd_state_save(const char *dir, const struct srmd_state *s)
{
    char *tmp = state_path(dir, ".tmp"), *path = state_path(dir, "");
    json_t *root = json_pack("{s:s, s:s, s:I, s:b}", "state", srm_fsm_state_name(s->state),
                             "reason", srm_fsm_reason_name(s->reason), "epoch",
                             (json_int_t)s->epoch, "announced", s->announced);
    int r = -ENOMEM, fd = -1;
    char *text = NULL;

    if (!tmp || !path || !root)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (!text)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        r = errno ? -errno : -EIO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        r = -errno;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        r = -errno;
        goto out;
    }
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    json_decref(root);
    free(tmp);
    free(path);
    return r;
}
