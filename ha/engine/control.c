/*
 * The engine's control interface for tests and the demo: a unix stream socket in its run
 * directory taking one command line per connection and answering before it closes, and the
 * status document (JSON, built with jansson) it also rewrites every second into the status
 * file (written to a temporary file and renamed: readers never see half of it).
 */
#include "internal.h"
#include "srm_log.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 512

struct conn {
    uv_pipe_t pipe;
    struct engine *e;
    char buf[CONTROL_LINE_MAX];
    size_t len;
    uv_write_t wr;
    char *reply;
    bool done;
};

/* ------------------------------------------------------------------------ status */

char *engine_status_json(struct engine *e)
{
    struct srm_client_status st;
    json_t *root = json_object(), *parts = json_array(), *svcs = json_array();
    uint64_t tot[4] = {0, 0, 0, 0};
    char *s;

    memset(&st, 0, sizeof(st));
    if (e->client)
        srm_client_status(e->client, &st);
    for (int i = 0; i < ENGINE_SERVICES; i++)
        if (e->svc[i].name)
            json_array_append_new(
                svcs, json_pack("{s:s, s:b}", "name", e->svc[i].name, "up", e->svc[i].up));
    for (size_t i = 0; i < e->n_parts; i++) {
        struct part *p = e->parts[i];
        json_t *o = json_pack(
            "{s:i, s:s, s:b, s:b, s:I, s:I, s:b, s:I, s:b}", "part", (json_int_t)p->id, "home",
            p->home, "loaded", p->loaded, "loading", p->loading, "users", (json_int_t)p->n_users,
            "load_ms", (json_int_t)p->load_ms, "served", p->served, "epoch", (json_int_t)p->epoch,
            "backup", e->o.dual && e->peer_id && p->id == e->peer_id && !p->served);
        json_object_set_new(o, "ActiveJsmSessions", json_integer((json_int_t)p->active));
        json_object_set_new(o, "InactiveJsmSessions", json_integer((json_int_t)p->inactive));
        json_object_set_new(o, "JsmSessionsClient", json_integer((json_int_t)p->client));
        json_object_set_new(o, "JsmSessionsClientInactive",
                            json_integer((json_int_t)p->client_inactive));
        json_object_set_new(o, "first_write_ms", json_integer((json_int_t)p->first_write_ms));
        json_object_set_new(o, "all_clients_ms", json_integer((json_int_t)p->all_clients_ms));
        json_array_append_new(parts, o);
        tot[0] += p->active;
        tot[1] += p->inactive;
        tot[2] += p->client;
        tot[3] += p->client_inactive;
    }
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "node_id", json_integer(e->node_id));
    json_object_set_new(root, "node",
                        json_string(st.node_name[0]  ? st.node_name
                                    : e->o.node_name ? e->o.node_name
                                                     : ""));
    json_object_set_new(root, "peer_id", json_integer(e->peer_id));
    json_object_set_new(root, "connected", json_boolean(st.connected));
    json_object_set_new(root, "quorum",
                        json_string(st.quorum == SRM_QUORUM_OFF ? "off" : "corosync"));
    json_object_set_new(root, "quorate", json_boolean(st.quorate));
    json_object_set_new(root, "peer_present", json_boolean(st.peer_present));
    json_object_set_new(root, "fenced", json_boolean(st.fenced));
    json_object_set_new(root, "lease_left_ms", json_integer(st.lease_left_ms));
    json_object_set_new(root, "datastore", json_boolean(e->env != NULL));
    json_object_set_new(root, "services_running", json_boolean(e->services_running));
    json_object_set_new(root, "services", svcs);
    json_object_set_new(root, "partitions", parts);
    json_object_set_new(root, "ActiveJsmSessions", json_integer((json_int_t)tot[0]));
    json_object_set_new(root, "InactiveJsmSessions", json_integer((json_int_t)tot[1]));
    json_object_set_new(root, "JsmSessionsClient", json_integer((json_int_t)tot[2]));
    json_object_set_new(root, "JsmSessionsClientInactive", json_integer((json_int_t)tot[3]));
    json_object_set_new(root, "users_served", json_integer((json_int_t)engine_users_served(e)));
    json_object_set_new(root, "writes_per_s", json_integer((json_int_t)e->writes_per_s));
    json_object_set_new(root, "writes_total", json_integer((json_int_t)e->writes_total));
    json_object_set_new(root, "acked_writes", json_integer((json_int_t)e->acked_writes));
    json_object_set_new(root, "degraded_writes", json_integer((json_int_t)e->degraded_writes));
    json_object_set_new(root, "pending_sync_writes",
                        json_integer((json_int_t)engine_pending_writes(e)));
    json_object_set_new(root, "pending_overflows", json_integer((json_int_t)e->pending_overflows));
    json_object_set_new(root, "stale_refusals", json_integer((json_int_t)e->stale_refusals));
    json_object_set_new(root, "logins_total", json_integer((json_int_t)e->logins_total));
    json_object_set_new(root, "activations_total", json_integer((json_int_t)e->activations_total));
    json_object_set_new(root, "inactive_total", json_integer((json_int_t)e->inactive_total));
    json_object_set_new(root, "presence_total", json_integer((json_int_t)e->presence_total));
    json_object_set_new(root, "sip_total", json_integer((json_int_t)e->sip_total));
    json_object_set_new(root, "txn_failures", json_integer((json_int_t)e->txn_failures));
    json_object_set_new(root, "lease_expiries", json_integer((json_int_t)st.lease_expiries));
    json_object_set_new(root, "quorum_fences", json_integer((json_int_t)st.quorum_fences));
    json_object_set_new(root, "refused_serves", json_integer((json_int_t)st.refused_serves));
    json_object_set_new(root, "reconnects", json_integer((json_int_t)st.reconnects));
    json_object_set_new(root, "last_stop", json_string(e->last_stop));
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

char *engine_status_text(struct engine *e)
{
    struct srm_client_status st;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (!f)
        return NULL;
    memset(&st, 0, sizeof(st));
    if (e->client)
        srm_client_status(e->client, &st);
    fprintf(f,
            "engine node=%u peer=%u connected=%d quorate=%d peer_present=%d fenced=%d "
            "lease_left_ms=%lld services_running=%d users_served=%llu writes_total=%llu "
            "writes_per_s=%llu stale_refusals=%llu lease_expiries=%llu quorum_fences=%llu "
            "refused_serves=%llu reconnects=%llu txn_failures=%llu acked_writes=%llu "
            "degraded_writes=%llu pending_sync_writes=%llu\n",
            e->node_id, e->peer_id, st.connected, st.quorate, st.peer_present, st.fenced,
            (long long)st.lease_left_ms, e->services_running,
            (unsigned long long)engine_users_served(e), (unsigned long long)e->writes_total,
            (unsigned long long)e->writes_per_s, (unsigned long long)e->stale_refusals,
            (unsigned long long)st.lease_expiries, (unsigned long long)st.quorum_fences,
            (unsigned long long)st.refused_serves, (unsigned long long)st.reconnects,
            (unsigned long long)e->txn_failures, (unsigned long long)e->acked_writes,
            (unsigned long long)e->degraded_writes, (unsigned long long)engine_pending_writes(e));
    for (size_t i = 0; i < e->n_parts; i++) {
        struct part *p = e->parts[i];
        fprintf(f,
                "part id=%u home=%s loaded=%d users=%zu served=%d epoch=%llu backup=%d "
                "active=%llu inactive=%llu client=%llu client_inactive=%llu "
                "first_write_ms=%llu all_clients_ms=%llu\n",
                p->id, p->home[0] ? p->home : "-", p->loaded, p->n_users, p->served,
                (unsigned long long)p->epoch,
                e->o.dual && e->peer_id && p->id == e->peer_id && !p->served,
                (unsigned long long)p->active, (unsigned long long)p->inactive,
                (unsigned long long)p->client, (unsigned long long)p->client_inactive,
                (unsigned long long)p->first_write_ms, (unsigned long long)p->all_clients_ms);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

void engine_status_write(struct engine *e)
{
    char tmp[4096];
    char *s;
    FILE *f;

    if (!e->o.status_file)
        return;
    s = engine_status_json(e);
    if (!s)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", e->o.status_file);
    f = fopen(tmp, "we");
    if (!f) {
        srm_log_debug("status file %s: %s", tmp, strerror(errno));
        free(s);
        return;
    }
    fputs(s, f);
    fputc('\n', f);
    if (fclose(f) == 0)
        (void)rename(tmp, e->o.status_file);
    free(s);
}

/* ------------------------------------------------------------------------ commands */

static struct service *service_named(struct engine *e, const char *name)
{
    for (int i = 0; i < ENGINE_SERVICES; i++)
        if (e->svc[i].name && strcmp(e->svc[i].name, name) == 0)
            return &e->svc[i];
    return NULL;
}

char *engine_control_command(struct engine *e, const char *line)
{
    char cmd[32] = "", arg[SRM_NAME_MAX + 1] = "";
    const char *rest = "";
    char *out = NULL;
    int n = 0;

    if (sscanf(line, "%31s %64s %n", cmd, arg, &n) >= 2 && n > 0)
        rest = line + n;
    if (strcmp(cmd, "status-text") == 0)
        return engine_status_text(e);
    if (strcmp(cmd, "status") == 0) {
        char *s = engine_status_json(e);
        if (s && asprintf(&out, "%s\n", s) < 0)
            out = NULL;
        free(s);
        return out;
    }
    if (strcmp(cmd, "service-down") == 0 || strcmp(cmd, "service-up") == 0) {
        bool up = strcmp(cmd, "service-up") == 0;
        struct service *v = service_named(e, arg);
        int r;
        if (!v)
            return strdup("error: no such service (xcp-router, presence-engine)\n");
        r = srm_client_service_health(e->client, v->name, up,
                                      up ? NULL
                                         : (*rest ? rest : "stopped by the control interface"));
        if (r < 0)
            return asprintf(&out, "error: %s\n", srm_strerror(r)) < 0 ? NULL : out;
        v->up = up;
        srm_log_notice("critical service %s reported %s (control interface)", v->name,
                       up ? "up" : "down");
        return strdup("ok\n");
    }
    if (strcmp(cmd, "fail-next-start") == 0) {
        e->fail_next_start = true;
        srm_log_notice("the next start of the critical services will fail (control interface)");
        return strdup("ok\n");
    }
    if (strcmp(cmd, "quit") == 0) {
        uv_kill(getpid(), SIGTERM);
        return strdup("ok\n");
    }
    return strdup("error: unknown command (status, status-text, service-down NAME [DETAIL], "
                  "service-up NAME, fail-next-start, quit)\n");
}

/* ------------------------------------------------------------------------ socket */

static void conn_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;

    free(c->reply);
    free(c);
}

static void written_cb(uv_write_t *w, int status)
{
    struct conn *c = w->data;

    (void)status;
    uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)suggested;
    buf->base = c->buf + c->len;
    buf->len = sizeof(c->buf) - 1 - c->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    char *nl;
    uv_buf_t out;

    (void)buf;
    if (c->done)
        return;
    if (n < 0 || (n == 0 && c->len == sizeof(c->buf) - 1)) {
        uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    nl = strchr(c->buf, '\n');
    if (!nl && c->len < sizeof(c->buf) - 1)
        return;
    if (nl)
        *nl = '\0';
    c->done = true;
    uv_read_stop(s);
    c->reply = engine_control_command(c->e, c->buf);
    if (!c->reply)
        c->reply = strdup("error: out of memory\n");
    out = uv_buf_init(c->reply, c->reply ? (unsigned)strlen(c->reply) : 0);
    c->wr.data = c;
    if (uv_write(&c->wr, s, &out, 1, written_cb) < 0)
        uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct engine *e = server->data;
    struct conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->e = e;
    uv_pipe_init(e->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) < 0)
        uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

int engine_control_start(struct engine *e)
{
    int r;

    if (!e->o.control_path)
        return 0;
    (void)unlink(e->o.control_path);
    uv_pipe_init(e->loop, &e->control, 0);
    e->control.data = e;
    r = uv_pipe_bind(&e->control, e->o.control_path);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&e->control, 8, connection_cb);
    if (r < 0) {
        uv_close((uv_handle_t *)&e->control, NULL);
        return r;
    }
    e->control_open = true;
    return 0;
}

void engine_control_stop(struct engine *e)
{
    if (!e->control_open)
        return;
    e->control_open = false;
    uv_close((uv_handle_t *)&e->control, NULL);
    (void)unlink(e->o.control_path);
}
