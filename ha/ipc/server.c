/*
 * srmd's IPC server: libqb IPC driven by a libuv loop.
 *
 * libqb asks its host loop for three things through qb_ipcs_poll_handlers: watch a
 * descriptor (dispatch_add/mod/del) and run a deferred job (job_add). They map onto one
 * uv_poll_t per descriptor and a 0 ms uv_timer_t for jobs, so no qb_loop runs. libqb passes
 * these handlers no context of ours, so the server whose libqb call is running is kept in
 * `cur` around every call into libqb (the loop is single-threaded; calls nest correctly).
 *
 * Deadlines (HELLO, watchdog, commands, queue retries) share one uv_timer_t armed at the
 * earliest of them.
 */
#include "internal.h"
#include "srm_log.h"

#include <qb/qbdefs.h>
#include <qb/qbipcs.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define QUEUE_RETRY_MS 10
#define SERVICES_LIMIT 1024
#define STALL_MIN_MS   50

struct job {
    qb_loop_job_dispatch_fn fn;
    void *data;
    struct job *next;
};

struct qbfd {
    struct srm_ipc_server *s;
    uv_poll_t poll;
    int fd;
    int32_t events;
    void *data;
    qb_ipcs_dispatch_fn_t fn;
    bool closing;
    struct qbfd *next;
};

struct outmsg {
    struct outmsg *next;
    enum srm_ipc_type type;
    size_t len;
    uint8_t buf[];
};

struct client {
    struct srm_ipc_server *s;
    qb_ipcs_connection_t *conn;
    struct srm_ipc_client_info info;
    struct srm__ipc_wd wd;
    uint64_t hello_deadline;
    int close_reason; /* set before we disconnect it */
    struct outmsg *q_head, *q_tail;
    size_t q_len;
    struct client *next;
};

struct pending {
    uint32_t client;
    uint32_t cmd_id;
    enum srm_ipc_type type;
    uint64_t deadline;
    int early_result; /* reported at the next tick instead of waiting for the deadline */
    struct pending *next;
};

struct service {
    struct srm_ipc_service_info info;
    struct service *next;
};

struct srm_ipc_server {
    uv_loop_t *loop;
    qb_ipcs_service_t *qb;
    struct srm_ipc_server_options o; /* callbacks and numbers; strings below */
    char name[SRM_IPC_NAME_MAX + 1];
    char node_name[SRM_IPC_NODE_NAME_MAX + 1];
    char peer_name[SRM_IPC_NODE_NAME_MAX + 1];
    uid_t *uids;
    gid_t *gids;
    uint64_t incarnation;
    uint32_t next_client_id;
    uint32_t next_cmd_id;
    size_t n_clients;
    size_t n_services;
    struct client *clients;
    struct pending *pending;
    struct service *services;
    struct qbfd *fds;
    struct job *jobs_head, *jobs_tail;
    uv_timer_t job_timer;
    uv_timer_t tick;
    uint64_t tick_due;
    bool tick_armed;
    int handles_open;
    bool closing;
    srm_ipc_close_cb *close_cb;
    void *close_data;
    struct srm_ipc_server_stats stats;
};

/* The server whose libqb call is in progress (see the top of the file). */
static struct srm_ipc_server *cur;

#define ENTER(srv)                                                                                 \
    struct srm_ipc_server *saved_cur_ = cur;                                                       \
    cur = (srv)
#define LEAVE() cur = saved_cur_

static void arm(struct srm_ipc_server *s);
static void maybe_free(struct srm_ipc_server *s);

/* ------------------------------------------------------------------------ libqb poll glue */

static struct qbfd *fd_find(struct srm_ipc_server *s, int fd)
{
    for (struct qbfd *q = s->fds; q; q = q->next)
        if (q->fd == fd && !q->closing)
            return q;
    return NULL;
}

static int uv_events_of(int32_t events)
{
    int e = UV_DISCONNECT;

    if (events & POLLIN)
        e |= UV_READABLE;
    if (events & POLLOUT)
        e |= UV_WRITABLE;
    if (events & POLLPRI)
        e |= UV_PRIORITIZED;
    return e;
}

static void fd_closed_cb(uv_handle_t *h)
{
    struct qbfd *q = h->data;
    struct srm_ipc_server *s = q->s;

    free(q);
    s->handles_open--;
    maybe_free(s);
}

static void fd_remove(struct srm_ipc_server *s, struct qbfd *q)
{
    struct qbfd **pp;

    for (pp = &s->fds; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    q->closing = true;
    uv_poll_stop(&q->poll);
    uv_close((uv_handle_t *)&q->poll, fd_closed_cb);
}

static void fd_poll_cb(uv_poll_t *h, int status, int uv_ev)
{
    struct qbfd *q = h->data;
    struct srm_ipc_server *s = q->s;
    int32_t res;

    if (q->closing)
        return;
    ENTER(s);
    if (status < 0) {
        res = q->fn(q->fd, POLLHUP | POLLERR, q->data);
    } else if (uv_ev & UV_DISCONNECT) {
        /* Read what the peer sent before it went away, then report the hangup: libqb
         * disconnects at once on POLLHUP. */
        res = 0;
        if (uv_ev & UV_READABLE)
            res = q->fn(q->fd, POLLIN, q->data);
        if (res >= 0 && !q->closing)
            res = q->fn(q->fd, POLLHUP, q->data);
    } else {
        int32_t rev = 0;
        if (uv_ev & UV_READABLE)
            rev |= POLLIN;
        if (uv_ev & UV_WRITABLE)
            rev |= POLLOUT;
        if (uv_ev & UV_PRIORITIZED)
            rev |= POLLPRI;
        res = q->fn(q->fd, rev, q->data);
    }
    /* As qb_loop does: a dispatch function that fails is not called again. */
    if (res < 0 && !q->closing)
        fd_remove(s, q);
    LEAVE();
    if (!s->closing)
        arm(s);
}

static int32_t ph_dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
                               qb_ipcs_dispatch_fn_t fn)
{
    struct srm_ipc_server *s = cur;
    struct qbfd *q;
    int r;

    (void)p;
    if (!s)
        return -EINVAL;
    if (fd_find(s, fd))
        return -EEXIST;
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    r = uv_poll_init(s->loop, &q->poll, fd);
    if (r < 0) {
        free(q);
        return r;
    }
    q->s = s;
    q->fd = fd;
    q->events = events;
    q->data = data;
    q->fn = fn;
    q->poll.data = q;
    s->handles_open++;
    r = uv_poll_start(&q->poll, uv_events_of(events), fd_poll_cb);
    q->next = s->fds;
    s->fds = q;
    if (r < 0) {
        fd_remove(s, q);
        return r;
    }
    return 0;
}

static int32_t ph_dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
                               qb_ipcs_dispatch_fn_t fn)
{
    struct srm_ipc_server *s = cur;
    struct qbfd *q;

    (void)p;
    if (!s)
        return -EINVAL;
    q = fd_find(s, fd);
    if (!q)
        return -ENOENT;
    q->events = events;
    q->data = data;
    q->fn = fn;
    return uv_poll_start(&q->poll, uv_events_of(events), fd_poll_cb);
}

static int32_t ph_dispatch_del(int32_t fd)
{
    struct srm_ipc_server *s = cur;
    struct qbfd *q;

    if (!s)
        return -EINVAL;
    q = fd_find(s, fd);
    if (!q)
        return -ENOENT;
    fd_remove(s, q);
    return 0;
}

static void job_timer_cb(uv_timer_t *t)
{
    struct srm_ipc_server *s = t->data;
    struct job *list = s->jobs_head;

    s->jobs_head = s->jobs_tail = NULL;
    ENTER(s);
    while (list) {
        struct job *j = list;
        list = j->next;
        j->fn(j->data);
        free(j);
    }
    LEAVE();
    if (!s->closing)
        arm(s);
}

static int32_t ph_job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
    struct srm_ipc_server *s = cur;
    struct job *j;

    (void)p;
    if (!s)
        return -EINVAL;
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->fn = fn;
    j->data = data;
    if (s->jobs_tail)
        s->jobs_tail->next = j;
    else
        s->jobs_head = j;
    s->jobs_tail = j;
    if (!uv_is_active((uv_handle_t *)&s->job_timer))
        uv_timer_start(&s->job_timer, job_timer_cb, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------------ registry */

static struct client *client_find(struct srm_ipc_server *s, uint32_t id)
{
    for (struct client *c = s->clients; c; c = c->next)
        if (c->info.id == id)
            return c;
    return NULL;
}

static struct service *service_find(struct srm_ipc_server *s, const char *name)
{
    for (struct service *v = s->services; v; v = v->next)
        if (strcmp(v->info.name, name) == 0)
            return v;
    return NULL;
}

static size_t services_of(struct srm_ipc_server *s, uint32_t client)
{
    size_t n = 0;

    for (struct service *v = s->services; v; v = v->next)
        n += v->info.client == client;
    return n;
}

static void detail_set(char *dst, const char *src)
{
    snprintf(dst, SRM_IPC_DETAIL_MAX + 1, "%s", src ? src : "");
}

/* ------------------------------------------------------------------------ sending */

static void outmsg_free_all(struct client *c)
{
    while (c->q_head) {
        struct outmsg *m = c->q_head;
        c->q_head = m->next;
        free(m);
    }
    c->q_tail = NULL;
    c->q_len = 0;
}

static ssize_t qb_send(struct client *c, const uint8_t *buf, size_t len)
{
    ssize_t r;

    ENTER(c->s);
    r = qb_ipcs_event_send(c->conn, buf, len);
    LEAVE();
    return r;
}

/* Sends what waits in the client's queue, in order, until the ring is full. */
static void flush_queue(struct client *c)
{
    while (c->q_head && c->conn) {
        struct outmsg *m = c->q_head;
        ssize_t r = qb_send(c, m->buf, m->len);
        if (r == -EAGAIN || r == -ETIMEDOUT)
            return;
        if (r < 0)
            srm_log_debug("ipc: client %u: event send failed: %s", c->info.id,
                          srm_strerror((int)r));
        c->q_head = m->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->q_len--;
        free(m);
    }
}

/* Frames msg behind a libqb response header and sends or queues it. 0, -ENOBUFS, -EINVAL. */
static int send_msg(struct client *c, const struct srm_ipc_msg *msg)
{
    uint8_t buf[sizeof(struct qb_ipc_response_header) + SRM_IPC_FRAME_MAX];
    struct qb_ipc_response_header h;
    size_t flen = 0;
    int r = srm_ipc_msg_encode(msg, buf + sizeof(h), SRM_IPC_FRAME_MAX, &flen);
    size_t total = sizeof(h) + flen;
    struct outmsg *m;

    if (r < 0)
        return r;
    if (!c->conn)
        return -ENOTCONN;
    /* The buffer has no alignment to speak of: copy the header in. */
    memset(&h, 0, sizeof(h));
    h.id = (int32_t)msg->type;
    h.size = (int32_t)total;
    memcpy(buf, &h, sizeof(h));

    if (!c->q_head) {
        ssize_t sr = qb_send(c, buf, total);
        if (sr == (ssize_t)total)
            return 0;
        if (sr != -EAGAIN && sr != -ETIMEDOUT)
            return sr < 0 ? (int)sr : -EIO;
    }
    /* A newer lease supersedes a queued one. */
    if (msg->type == SRM_IPC_LEASE) {
        for (struct outmsg *q = c->q_head; q; q = q->next)
            if (q->type == SRM_IPC_LEASE && q->len == total) {
                memcpy(q->buf, buf, total);
                return 0;
            }
    }
    if (c->q_len >= SRM_IPC_QUEUE_MAX) {
        c->s->stats.dropped++;
        return -ENOBUFS;
    }
    m = malloc(sizeof(*m) + total);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->type = msg->type;
    m->len = total;
    memcpy(m->buf, buf, total);
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    c->q_len++;
    c->s->stats.queued++;
    return 0;
}

/* ------------------------------------------------------------------------ disconnecting */

static void disconnect(struct client *c, int reason)
{
    struct srm_ipc_server *s = c->s;

    if (!c->conn)
        return;
    if (c->close_reason == 0)
        c->close_reason = reason;
    ENTER(s);
    qb_ipcs_disconnect(c->conn);
    LEAVE();
}

static void ack_report(struct srm_ipc_server *s, const struct srm_ipc_client_info *info,
                       const struct pending *p, int result, const char *detail)
{
    if (s->o.ack_cb)
        s->o.ack_cb(s, info, p->cmd_id, p->type, result, detail ? detail : "", s->o.data);
}

/* Reports and forgets the commands of one client (client 0: every client). */
static void pending_fail(struct srm_ipc_server *s, uint32_t client,
                         const struct srm_ipc_client_info *info, int result, const char *detail)
{
    struct pending **pp = &s->pending;

    while (*pp) {
        struct pending *p = *pp;
        if (client != 0 && p->client != client) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (info) {
            ack_report(s, info, p, result, detail);
        } else {
            struct client *c = client_find(s, p->client);
            if (c)
                ack_report(s, &c->info, p, result, detail);
        }
        free(p);
    }
}

/* ------------------------------------------------------------------------ libqb callbacks */

static bool acl_allows(struct srm_ipc_server *s, uid_t uid, gid_t gid)
{
    if (s->o.n_allow_uids == 0 && s->o.n_allow_gids == 0)
        return uid == geteuid();
    for (size_t i = 0; i < s->o.n_allow_uids; i++)
        if (s->uids[i] == uid)
            return true;
    for (size_t i = 0; i < s->o.n_allow_gids; i++)
        if (s->gids[i] == gid)
            return true;
    return false;
}

static int32_t qb_accept_cb(qb_ipcs_connection_t *conn, uid_t uid, gid_t gid)
{
    struct srm_ipc_server *s = qb_ipcs_connection_service_context_get(conn);
    struct qb_ipcs_connection_stats st;
    int err = 0;

    if (!s || s->closing)
        return -ECONNREFUSED;
    memset(&st, 0, sizeof(st));
    qb_ipcs_connection_stats_get(conn, &st, 0);
    if (!acl_allows(s, uid, gid))
        err = -EPERM;
    else if (s->n_clients >= SRM_IPC_CLIENTS_MAX)
        err = -EMFILE;
    if (err < 0) {
        s->stats.refused++;
        if (s->o.refused_cb)
            s->o.refused_cb(s, (pid_t)st.client_pid, uid, gid, err, s->o.data);
        return err;
    }
    return 0;
}

static void qb_created_cb(qb_ipcs_connection_t *conn)
{
    struct srm_ipc_server *s = qb_ipcs_connection_service_context_get(conn);
    struct qb_ipcs_connection_stats st;
    struct client *c;
    uint64_t now = uv_now(s->loop);

    c = calloc(1, sizeof(*c));
    if (!c) {
        /* Without memory for its state the client cannot be served: refuse it. */
        ENTER(s);
        qb_ipcs_disconnect(conn);
        LEAVE();
        return;
    }
    memset(&st, 0, sizeof(st));
    qb_ipcs_connection_stats_get(conn, &st, 0);
    c->s = s;
    c->conn = conn;
    c->info.id = s->next_client_id++;
    if (s->next_client_id == 0)
        s->next_client_id = 1;
    c->info.pid = (pid_t)st.client_pid;
    c->info.connected_ms = now;
    c->info.ping_ms = s->o.ping_ms;
    c->info.misses = s->o.misses;
    c->hello_deadline = now + s->o.hello_timeout_ms;
    qb_ipcs_connection_ref(conn);
    qb_ipcs_context_set(conn, c);
    c->next = s->clients;
    s->clients = c;
    s->n_clients++;
    s->stats.accepted++;
    srm_log_debug("ipc: connection %u from pid %d", c->info.id, (int)c->info.pid);
}

static const char *reason_detail(int reason, const struct client *c, char *buf, size_t len)
{
    switch (reason) {
    case 0:
        return "process disconnected";
    case -ETIMEDOUT:
        snprintf(buf, len, "watchdog: no ping for %u ms",
                 (unsigned)(c->info.ping_ms * (uint32_t)c->info.misses));
        return buf;
    case -ECANCELED:
        return "srmd closing";
    case -ECONNABORTED:
        return "disconnected by srmd";
    default:
        snprintf(buf, len, "protocol violation: %s", srm_strerror(reason));
        return buf;
    }
}

static int32_t qb_closed_cb(qb_ipcs_connection_t *conn)
{
    struct client *c = qb_ipcs_context_get(conn);
    struct srm_ipc_server *s;
    struct client **pp;
    char why[SRM_IPC_DETAIL_MAX + 1];
    const char *detail;
    uint64_t now;

    if (!c)
        return 0;
    s = c->s;
    now = uv_now(s->loop);
    qb_ipcs_context_set(conn, NULL);
    c->conn = NULL;
    for (pp = &s->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    s->n_clients--;
    outmsg_free_all(c);
    detail = reason_detail(c->close_reason, c, why, sizeof(why));
    srm_log_debug("ipc: client %u (%s, pid %d) gone: %s", c->info.id, c->info.name,
                  (int)c->info.pid, detail);

    if (c->info.hello) {
        for (struct service *v = s->services; v; v = v->next) {
            if (v->info.client != c->info.id)
                continue;
            v->info.client = 0;
            if (v->info.up) {
                v->info.up = false;
                v->info.since_ms = now;
                detail_set(v->info.detail, detail);
                if (s->o.health_cb)
                    s->o.health_cb(s, &v->info, s->o.data);
            }
        }
        pending_fail(s, c->info.id, &c->info,
                     c->close_reason == -ECANCELED ? -ECANCELED : -ENOTCONN, detail);
        if (s->o.disconnected_cb)
            s->o.disconnected_cb(s, &c->info, c->close_reason, s->o.data);
    }
    free(c);
    qb_ipcs_connection_unref(conn);
    return 0;
}

static void qb_destroyed_cb(qb_ipcs_connection_t *conn)
{
    (void)conn;
}

static void violation(struct client *c, int err, const char *what)
{
    srm_log_debug("ipc: client %u (pid %d): %s: %s", c->info.id, (int)c->info.pid, what,
                  srm_strerror(err));
    c->s->stats.malformed++;
    disconnect(c, err);
}

static void on_hello(struct client *c, const struct srm_ipc_hello *h)
{
    struct srm_ipc_server *s = c->s;
    struct srm_ipc_msg w;

    c->info.hello = true;
    c->info.incarnation = h->incarnation;
    snprintf(c->info.name, sizeof(c->info.name), "%s", h->name);
    c->info.last_ping_ms = uv_now(s->loop);
    srm__ipc_wd_init(&c->wd, c->info.last_ping_ms, c->info.ping_ms, c->info.misses);

    memset(&w, 0, sizeof(w));
    w.type = SRM_IPC_WELCOME;
    w.u.welcome.incarnation = s->incarnation;
    w.u.welcome.node_id = s->o.node_id;
    w.u.welcome.peer_node_id = s->o.peer_node_id;
    w.u.welcome.ping_ms = c->info.ping_ms;
    w.u.welcome.misses = c->info.misses;
    snprintf(w.u.welcome.node_name, sizeof(w.u.welcome.node_name), "%s", s->node_name);
    snprintf(w.u.welcome.peer_name, sizeof(w.u.welcome.peer_name), "%s", s->peer_name);
    if (send_msg(c, &w) < 0) {
        disconnect(c, -ENOBUFS);
        return;
    }
    if (s->o.connected_cb)
        s->o.connected_cb(s, &c->info, s->o.data);
}

static void on_register(struct client *c, const struct srm_ipc_register *m)
{
    struct srm_ipc_server *s = c->s;
    struct service *v = service_find(s, m->service);

    if (!v || v->info.client != c->info.id) {
        if (services_of(s, c->info.id) >= SRM_IPC_SERVICES_MAX) {
            violation(c, -EMFILE, "too many services");
            return;
        }
    }
    if (!v) {
        if (s->n_services >= SERVICES_LIMIT) {
            violation(c, -EMFILE, "service registry full");
            return;
        }
        v = calloc(1, sizeof(*v));
        if (!v) {
            disconnect(c, -ENOMEM);
            return;
        }
        snprintf(v->info.name, sizeof(v->info.name), "%s", m->service);
        v->next = s->services;
        s->services = v;
        s->n_services++;
    }
    v->info.client = c->info.id;
    v->info.critical = m->critical;
    v->info.up = true;
    v->info.detail[0] = '\0';
    v->info.since_ms = uv_now(s->loop);
    if (s->o.service_cb)
        s->o.service_cb(s, &v->info, s->o.data);
}

static void on_health(struct client *c, const struct srm_ipc_health *m)
{
    struct srm_ipc_server *s = c->s;
    struct service *v = service_find(s, m->service);

    if (!v) {
        violation(c, SRM_EBADMSG, "health of a service it did not register");
        return;
    }
    if (v->info.client != c->info.id)
        return; /* registered since by another client: the newest registration wins */
    if (v->info.up == m->up && m->up)
        return;
    if (v->info.up != m->up)
        v->info.since_ms = uv_now(s->loop);
    v->info.up = m->up;
    detail_set(v->info.detail, m->detail);
    if (s->o.health_cb)
        s->o.health_cb(s, &v->info, s->o.data);
}

static void on_ack(struct client *c, const struct srm_ipc_ack *m)
{
    struct srm_ipc_server *s = c->s;

    for (struct pending **pp = &s->pending; *pp; pp = &(*pp)->next) {
        struct pending *p = *pp;
        if (p->client == c->info.id && p->cmd_id == m->cmd_id) {
            *pp = p->next;
            ack_report(s, &c->info, p, m->result, m->detail);
            free(p);
            return;
        }
    }
    s->stats.late_acks++;
}

static int32_t qb_msg_cb(qb_ipcs_connection_t *conn, void *data, size_t size)
{
    struct client *c = qb_ipcs_context_get(conn);
    struct qb_ipc_request_header hdr;
    const struct qb_ipc_request_header *h = &hdr;
    struct srm_ipc_server *s;
    struct srm_ipc_msg *m;
    int r;

    if (!c || !c->conn)
        return 0;
    s = c->s;
    /* libqb's rings give 4-byte alignment only: copy the header out. */
    if (size >= sizeof(hdr))
        memcpy(&hdr, data, sizeof(hdr));
    if (size < sizeof(hdr) || (size_t)h->size != size) {
        violation(c, SRM_EBADMSG, "bad libqb header");
        return 0;
    }
    m = malloc(sizeof(*m));
    if (!m) {
        disconnect(c, -ENOMEM);
        return 0;
    }
    r = srm_ipc_msg_decode((const uint8_t *)data + sizeof(hdr), size - sizeof(hdr), m);
    if (r < 0) {
        violation(c, r, "undecodable message");
        goto out;
    }
    if (h->id != (int32_t)m->type || !srm_ipc_type_from_engine(m->type)) {
        violation(c, SRM_EBADMSG, "message of the wrong direction");
        goto out;
    }
    if (!c->info.hello && m->type != SRM_IPC_HELLO) {
        violation(c, SRM_EBADMSG, "message before HELLO");
        goto out;
    }

    switch (m->type) {
    case SRM_IPC_HELLO:
        if (c->info.hello)
            violation(c, SRM_EBADMSG, "second HELLO");
        else
            on_hello(c, &m->u.hello);
        break;
    case SRM_IPC_REGISTER:
        on_register(c, &m->u.reg);
        break;
    case SRM_IPC_HEALTH:
        on_health(c, &m->u.health);
        break;
    case SRM_IPC_PING:
        c->info.last_ping_ms = uv_now(s->loop);
        srm__ipc_wd_ping(&c->wd, c->info.last_ping_ms);
        break;
    case SRM_IPC_ACK:
        on_ack(c, &m->u.ack);
        break;
    case SRM_IPC_COUNTERS:
        if (s->o.counters_cb)
            s->o.counters_cb(s, &c->info, &m->u.counters, s->o.data);
        break;
    case SRM_IPC_STALE:
        if (s->o.stale_cb)
            s->o.stale_cb(s, &c->info, &m->u.stale, s->o.data);
        break;
    case SRM_IPC_SERVING:
        c->info.have_serving = true;
        c->info.serving = m->u.serving;
        if (s->o.serving_cb)
            s->o.serving_cb(s, &c->info, &m->u.serving, s->o.data);
        break;
    default:
        break;
    }
out:
    free(m);
    return 0;
}

/* ------------------------------------------------------------------------ deadlines */

static void consider(uint64_t *best, uint64_t t)
{
    if (t < *best)
        *best = t;
}

static void tick_cb(uv_timer_t *t);

static void arm(struct srm_ipc_server *s)
{
    uint64_t now = uv_now(s->loop), best = UINT64_MAX;

    if (s->closing)
        return;
    for (struct client *c = s->clients; c; c = c->next) {
        if (!c->info.hello)
            consider(&best, c->hello_deadline + 1);
        else
            consider(&best, srm__ipc_wd_deadline(&c->wd) + 1);
        if (c->q_head)
            consider(&best, now + QUEUE_RETRY_MS);
    }
    for (struct pending *p = s->pending; p; p = p->next)
        consider(&best, p->deadline);
    if (best == UINT64_MAX) {
        uv_timer_stop(&s->tick);
        s->tick_armed = false;
        return;
    }
    if (s->tick_armed && s->tick_due == best)
        return;
    s->tick_due = best;
    s->tick_armed = true;
    uv_timer_start(&s->tick, tick_cb, best > now ? best - now : 0, 0);
}

static uint32_t min_ping(struct srm_ipc_server *s)
{
    uint32_t m = s->o.ping_ms;

    for (struct client *c = s->clients; c; c = c->next)
        if (c->info.ping_ms < m)
            m = c->info.ping_ms;
    return m;
}

static void tick_cb(uv_timer_t *t)
{
    struct srm_ipc_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    uint64_t threshold = min_ping(s) / 2;
    uint64_t stall;
    uint32_t doomed[SRM_IPC_CLIENTS_MAX];
    int doomed_reason[SRM_IPC_CLIENTS_MAX];
    size_t n_doomed = 0;

    s->tick_armed = false;
    if (threshold < STALL_MIN_MS)
        threshold = STALL_MIN_MS;
    stall = srm__ipc_stall(s->tick_due, now, threshold);
    if (stall > 0) {
        /* This loop did not run for `stall` ms: what clients sent meanwhile waits unread in
         * their rings. Judge nobody now; read first. */
        s->stats.stalls++;
        srm_log_debug("ipc: loop stalled %llu ms; watchdog and command deadlines extended",
                      (unsigned long long)stall);
        for (struct client *c = s->clients; c; c = c->next) {
            srm__ipc_wd_grace(&c->wd, now);
            c->hello_deadline += stall;
        }
        for (struct pending *p = s->pending; p; p = p->next)
            p->deadline += stall;
        arm(s);
        return;
    }

    for (struct client *c = s->clients; c; c = c->next) {
        if (c->q_head)
            flush_queue(c);
        if (n_doomed == SRM_IPC_CLIENTS_MAX)
            continue;
        if (!c->info.hello && now > c->hello_deadline) {
            doomed[n_doomed] = c->info.id;
            doomed_reason[n_doomed++] = -ETIMEDOUT;
        } else if (c->info.hello && srm__ipc_wd_expired(&c->wd, now)) {
            s->stats.watchdog_misses++;
            doomed[n_doomed] = c->info.id;
            doomed_reason[n_doomed++] = -ETIMEDOUT;
        }
    }
    for (size_t i = 0; i < n_doomed; i++) {
        struct client *c = client_find(s, doomed[i]);
        if (c)
            disconnect(c, doomed_reason[i]);
    }

    for (struct pending **pp = &s->pending; *pp;) {
        struct pending *p = *pp;
        struct client *c;
        if (p->deadline > now) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        c = client_find(s, p->client);
        if (c && p->early_result)
            ack_report(s, &c->info, p, p->early_result, "not sent: the client's queue is full");
        else if (c)
            ack_report(s, &c->info, p, -ETIMEDOUT, "no acknowledgement before the deadline");
        free(p);
        /* The callback may have added or removed commands: restart the walk. */
        pp = &s->pending;
    }
    arm(s);
}

/* ------------------------------------------------------------------------ commands */

static uint32_t new_cmd_id(struct srm_ipc_server *s)
{
    uint32_t id = s->next_cmd_id++;

    if (s->next_cmd_id == 0)
        s->next_cmd_id = 1;
    return id;
}

/*
 * Sends msg to one client or to all that said HELLO. For commands, patches the command id
 * in and records a pending entry per client. Returns the number of clients it went to.
 */
static int dispatch(struct srm_ipc_server *s, uint32_t client, struct srm_ipc_msg *msg,
                    uint32_t timeout_ms, uint32_t *ret_cmd_id)
{
    bool command = srm_ipc_type_is_command(msg->type);
    uint32_t cmd_id = 0;
    uint32_t targets[SRM_IPC_CLIENTS_MAX];
    size_t n = 0;
    int sent = 0, first_err = 0;
    uint64_t now = uv_now(s->loop);

    if (s->closing)
        return -ECANCELED;
    if (client == SRM_IPC_CLIENT_ALL) {
        for (struct client *c = s->clients; c && n < SRM_IPC_CLIENTS_MAX; c = c->next)
            if (c->info.hello)
                targets[n++] = c->info.id;
    } else {
        struct client *c = client_find(s, client);
        if (!c || !c->info.hello)
            return SRM_ENOTFOUND;
        targets[n++] = client;
    }
    if (command) {
        cmd_id = new_cmd_id(s);
        switch (msg->type) {
        case SRM_IPC_SERVE:
            msg->u.serve.cmd_id = cmd_id;
            break;
        case SRM_IPC_RELEASE:
            msg->u.release.cmd_id = cmd_id;
            break;
        default:
            msg->u.command.cmd_id = cmd_id;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct client *c = client_find(s, targets[i]);
        struct pending *p = NULL;
        int r;

        if (!c)
            continue;
        if (command) {
            p = calloc(1, sizeof(*p));
            if (!p)
                return -ENOMEM;
            p->client = c->info.id;
            p->cmd_id = cmd_id;
            p->type = msg->type;
            p->deadline = now + timeout_ms;
        }
        r = send_msg(c, msg);
        if (r < 0) {
            if (first_err == 0)
                first_err = r;
            if (p && client == SRM_IPC_CLIENT_ALL) {
                /* Reported through ack_cb like any other outcome, from the next tick. */
                p->deadline = now;
                p->early_result = r;
                p->next = s->pending;
                s->pending = p;
            } else {
                free(p);
            }
            continue;
        }
        if (p) {
            p->next = s->pending;
            s->pending = p;
        }
        sent++;
    }
    arm(s);
    if (client != SRM_IPC_CLIENT_ALL && first_err < 0)
        return first_err;
    if (ret_cmd_id)
        *ret_cmd_id = cmd_id;
    return sent;
}

static uint32_t cmd_timeout(struct srm_ipc_server *s, uint32_t timeout_ms)
{
    return timeout_ms ? timeout_ms : s->o.cmd_timeout_ms;
}

int srm_ipc_server_serve(struct srm_ipc_server *s, uint32_t client, uint32_t part, uint64_t epoch,
                         uint32_t lease_ms, const char *home_name, uint32_t timeout_ms,
                         uint32_t *ret_cmd_id)
{
    struct srm_ipc_msg m;

    if (!s || part == 0 || epoch == 0 || lease_ms == 0 || lease_ms > SRM_IPC_LEASE_MAX_MS)
        return -EINVAL;
    if (home_name && !srm_ipc_name_valid(home_name, SRM_IPC_NODE_NAME_MAX) && home_name[0])
        return -EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_SERVE;
    m.u.serve.cmd_id = 1; /* replaced by dispatch() */
    m.u.serve.part = part;
    m.u.serve.epoch = epoch;
    m.u.serve.lease_ms = lease_ms;
    m.u.serve.sent_mono_ms = srm_ipc_mono_ms();
    if (home_name)
        snprintf(m.u.serve.home_name, sizeof(m.u.serve.home_name), "%s", home_name);
    return dispatch(s, client, &m, cmd_timeout(s, timeout_ms), ret_cmd_id);
}

int srm_ipc_server_release(struct srm_ipc_server *s, uint32_t client, uint32_t part,
                           uint32_t drain_ms, uint32_t relogin_lower_s, uint32_t relogin_upper_s,
                           uint32_t timeout_ms, uint32_t *ret_cmd_id)
{
    struct srm_ipc_msg m;

    if (!s || part == 0 || drain_ms > SRM_IPC_DRAIN_MAX_MS || relogin_lower_s > relogin_upper_s ||
        relogin_upper_s > SRM_IPC_RELOGIN_MAX_S)
        return -EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_RELEASE;
    m.u.release.cmd_id = 1;
    m.u.release.part = part;
    m.u.release.drain_ms = drain_ms;
    m.u.release.relogin_lower_s = relogin_lower_s;
    m.u.release.relogin_upper_s = relogin_upper_s;
    return dispatch(s, client, &m, timeout_ms ? timeout_ms : drain_ms + s->o.cmd_timeout_ms,
                    ret_cmd_id);
}

static int services_cmd(struct srm_ipc_server *s, enum srm_ipc_type type, uint32_t client,
                        uint32_t timeout_ms, uint32_t *ret_cmd_id)
{
    struct srm_ipc_msg m;

    if (!s)
        return -EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.u.command.cmd_id = 1;
    return dispatch(s, client, &m, cmd_timeout(s, timeout_ms), ret_cmd_id);
}

int srm_ipc_server_stop_services(struct srm_ipc_server *s, uint32_t client, uint32_t timeout_ms,
                                 uint32_t *ret_cmd_id)
{
    return services_cmd(s, SRM_IPC_STOP_SERVICES, client, timeout_ms, ret_cmd_id);
}

int srm_ipc_server_start_services(struct srm_ipc_server *s, uint32_t client, uint32_t timeout_ms,
                                  uint32_t *ret_cmd_id)
{
    return services_cmd(s, SRM_IPC_START_SERVICES, client, timeout_ms, ret_cmd_id);
}

int srm_ipc_server_lease(struct srm_ipc_server *s, uint32_t client, uint32_t lease_ms)
{
    struct srm_ipc_msg m;

    if (!s || lease_ms > SRM_IPC_LEASE_MAX_MS)
        return -EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_LEASE;
    m.u.lease.lease_ms = lease_ms;
    m.u.lease.sent_mono_ms = srm_ipc_mono_ms();
    return dispatch(s, client, &m, 0, NULL);
}

int srm_ipc_server_watchdog_set(struct srm_ipc_server *s, uint32_t client, uint32_t ping_ms,
                                uint8_t misses)
{
    struct srm_ipc_msg m;
    uint64_t now;
    int r;

    if (!s || ping_ms < SRM_IPC_PING_MIN_MS || ping_ms > SRM_IPC_PING_MAX_MS || misses < 1 ||
        misses > SRM_IPC_MISSES_MAX)
        return -EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_WATCHDOG;
    m.u.watchdog.ping_ms = ping_ms;
    m.u.watchdog.misses = misses;
    r = dispatch(s, client, &m, 0, NULL);
    if (r < 0)
        return r;
    now = uv_now(s->loop);
    if (client == SRM_IPC_CLIENT_ALL) {
        s->o.ping_ms = ping_ms;
        s->o.misses = misses;
    }
    for (struct client *c = s->clients; c; c = c->next) {
        if (client != SRM_IPC_CLIENT_ALL && c->info.id != client)
            continue;
        c->info.ping_ms = ping_ms;
        c->info.misses = misses;
        if (c->info.hello)
            srm__ipc_wd_set(&c->wd, now, ping_ms, misses);
    }
    arm(s);
    return r;
}

int srm_ipc_server_disconnect(struct srm_ipc_server *s, uint32_t client)
{
    struct client *c;

    if (!s)
        return -EINVAL;
    c = client_find(s, client);
    if (!c)
        return SRM_ENOTFOUND;
    disconnect(c, -ECONNABORTED);
    arm(s);
    return 0;
}

/* ------------------------------------------------------------------------ queries */

int srm_ipc_server_clients(struct srm_ipc_server *s, struct srm_ipc_client_info *arr, size_t cap,
                           size_t *ret_n)
{
    size_t n = 0;

    if (!s || !ret_n || (cap > 0 && !arr))
        return -EINVAL;
    for (struct client *c = s->clients; c; c = c->next) {
        if (n < cap)
            arr[n] = c->info;
        n++;
    }
    *ret_n = n;
    return 0;
}

int srm_ipc_server_client_get(struct srm_ipc_server *s, uint32_t client,
                              struct srm_ipc_client_info *ret_info)
{
    struct client *c;

    if (!s || !ret_info)
        return -EINVAL;
    c = client_find(s, client);
    if (!c)
        return SRM_ENOTFOUND;
    *ret_info = c->info;
    return 0;
}

static int service_cmp(const void *a, const void *b)
{
    return strcmp(((const struct srm_ipc_service_info *)a)->name,
                  ((const struct srm_ipc_service_info *)b)->name);
}

int srm_ipc_server_services(struct srm_ipc_server *s, struct srm_ipc_service_info *arr, size_t cap,
                            size_t *ret_n)
{
    struct srm_ipc_service_info *all;
    size_t n = 0;

    if (!s || !ret_n || (cap > 0 && !arr))
        return -EINVAL;
    all = calloc(s->n_services ? s->n_services : 1, sizeof(*all));
    if (!all)
        return -ENOMEM;
    for (struct service *v = s->services; v; v = v->next)
        all[n++] = v->info;
    qsort(all, n, sizeof(*all), service_cmp);
    for (size_t i = 0; i < n && i < cap; i++)
        arr[i] = all[i];
    free(all);
    *ret_n = n;
    return 0;
}

int srm_ipc_server_service_get(struct srm_ipc_server *s, const char *name,
                               struct srm_ipc_service_info *ret_info)
{
    struct service *v;

    if (!s || !name || !ret_info)
        return -EINVAL;
    v = service_find(s, name);
    if (!v)
        return SRM_ENOTFOUND;
    *ret_info = v->info;
    return 0;
}

void srm_ipc_server_stats(struct srm_ipc_server *s, struct srm_ipc_server_stats *ret_stats)
{
    if (s && ret_stats)
        *ret_stats = s->stats;
}

/* ------------------------------------------------------------------------ life cycle */

static void free_server(struct srm_ipc_server *s)
{
    while (s->services) {
        struct service *v = s->services;
        s->services = v->next;
        free(v);
    }
    while (s->jobs_head) {
        struct job *j = s->jobs_head;
        s->jobs_head = j->next;
        free(j);
    }
    free(s->uids);
    free(s->gids);
    free(s);
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct srm_ipc_server *s = h->data;

    s->handles_open--;
    maybe_free(s);
}

static void maybe_free(struct srm_ipc_server *s)
{
    if (!s->closing || s->handles_open > 0)
        return;
    if (s->close_cb)
        s->close_cb(s, s->close_data);
    free_server(s);
}

int srm_ipc_server_new(uv_loop_t *loop, const struct srm_ipc_server_options *opts,
                       struct srm_ipc_server **ret_server)
{
    struct qb_ipcs_service_handlers sh = {
        .connection_accept = qb_accept_cb,
        .connection_created = qb_created_cb,
        .msg_process = qb_msg_cb,
        .connection_closed = qb_closed_cb,
        .connection_destroyed = qb_destroyed_cb,
    };
    struct qb_ipcs_poll_handlers ph = {
        .job_add = ph_job_add,
        .dispatch_add = ph_dispatch_add,
        .dispatch_mod = ph_dispatch_mod,
        .dispatch_del = ph_dispatch_del,
    };
    struct srm_ipc_server *s;
    int r;

    if (!loop || !opts || !ret_server || !srm_ipc_name_valid(opts->name, SRM_IPC_NAME_MAX) ||
        opts->node_id == 0)
        return -EINVAL;
    if ((opts->n_allow_uids > 0 && !opts->allow_uids) ||
        (opts->n_allow_gids > 0 && !opts->allow_gids))
        return -EINVAL;
    if ((opts->node_name && opts->node_name[0] &&
         !srm_ipc_name_valid(opts->node_name, SRM_IPC_NODE_NAME_MAX)) ||
        (opts->peer_name && opts->peer_name[0] &&
         !srm_ipc_name_valid(opts->peer_name, SRM_IPC_NODE_NAME_MAX)))
        return -EINVAL;

    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->o = *opts;
    if (s->o.ping_ms == 0)
        s->o.ping_ms = 1000;
    if (s->o.misses == 0)
        s->o.misses = 3;
    if (s->o.hello_timeout_ms == 0)
        s->o.hello_timeout_ms = 5000;
    if (s->o.cmd_timeout_ms == 0)
        s->o.cmd_timeout_ms = 10000;
    if (s->o.ping_ms < SRM_IPC_PING_MIN_MS || s->o.ping_ms > SRM_IPC_PING_MAX_MS ||
        s->o.misses > SRM_IPC_MISSES_MAX) {
        free(s);
        return -EINVAL;
    }
    snprintf(s->name, sizeof(s->name), "%s", opts->name);
    snprintf(s->node_name, sizeof(s->node_name), "%s", opts->node_name ? opts->node_name : "");
    snprintf(s->peer_name, sizeof(s->peer_name), "%s", opts->peer_name ? opts->peer_name : "");
    s->o.name = s->name;
    s->o.node_name = s->node_name;
    s->o.peer_name = s->peer_name;
    if (opts->n_allow_uids) {
        s->uids = calloc(opts->n_allow_uids, sizeof(uid_t));
        if (!s->uids)
            goto nomem;
        memcpy(s->uids, opts->allow_uids, opts->n_allow_uids * sizeof(uid_t));
    }
    if (opts->n_allow_gids) {
        s->gids = calloc(opts->n_allow_gids, sizeof(gid_t));
        if (!s->gids)
            goto nomem;
        memcpy(s->gids, opts->allow_gids, opts->n_allow_gids * sizeof(gid_t));
    }
    s->o.allow_uids = s->uids;
    s->o.allow_gids = s->gids;
    do {
        if (getrandom(&s->incarnation, sizeof(s->incarnation), 0) != sizeof(s->incarnation))
            s->incarnation = srm_ipc_mono_ms() ^ ((uint64_t)getpid() << 32);
    } while (s->incarnation == 0);
    s->next_client_id = 1;
    s->next_cmd_id = 1;

    uv_timer_init(loop, &s->job_timer);
    uv_timer_init(loop, &s->tick);
    s->job_timer.data = s;
    s->tick.data = s;
    s->handles_open = 2;

    s->qb = qb_ipcs_create(s->name, 0, QB_IPC_SHM, &sh);
    if (!s->qb) {
        r = -errno ? -errno : -ENOMEM;
        goto fail_handles;
    }
    qb_ipcs_service_context_set(s->qb, s);
    qb_ipcs_poll_handlers_set(s->qb, &ph);
    qb_ipcs_enforce_buffer_size(s->qb, SRM_IPC_BUFFER_SIZE);
    qb_ipcs_request_rate_limit(s->qb, QB_IPCS_RATE_FAST);
    {
        ENTER(s);
        r = qb_ipcs_run(s->qb);
        LEAVE();
    }
    if (r < 0) {
        /* qb_ipcs_run released the service itself. */
        s->qb = NULL;
        goto fail_handles;
    }
    *ret_server = s;
    return 0;

fail_handles:
    s->closing = true;
    uv_close((uv_handle_t *)&s->job_timer, timer_closed_cb);
    uv_close((uv_handle_t *)&s->tick, timer_closed_cb);
    /* The handles are closed on the next loop iteration; the memory goes with them. */
    return r;
nomem:
    free(s->uids);
    free(s->gids);
    free(s);
    return -ENOMEM;
}

/* The teardown runs from the loop, outside any libqb call (close may be called from a
 * callback that libqb is running). */
static void teardown_cb(uv_timer_t *t)
{
    struct srm_ipc_server *s = t->data;

    pending_fail(s, 0, NULL, -ECANCELED, "srmd closing");
    for (;;) {
        struct client *c = s->clients;
        if (!c)
            break;
        disconnect(c, -ECANCELED);
        if (s->clients == c) {
            /* libqb did not close it (not fully set up): forget it ourselves. */
            s->clients = c->next;
            s->n_clients--;
            if (c->conn) {
                qb_ipcs_context_set(c->conn, NULL);
                qb_ipcs_connection_unref(c->conn);
            }
            outmsg_free_all(c);
            free(c);
        }
    }
    if (s->qb) {
        ENTER(s);
        qb_ipcs_destroy(s->qb);
        LEAVE();
        s->qb = NULL;
    }
    /* Descriptors libqb did not remove (it removes them all). */
    while (s->fds)
        fd_remove(s, s->fds);
    uv_timer_stop(&s->job_timer);
    uv_close((uv_handle_t *)&s->job_timer, timer_closed_cb);
    uv_close((uv_handle_t *)&s->tick, timer_closed_cb);
}

void srm_ipc_server_close(struct srm_ipc_server *s, srm_ipc_close_cb *close_cb, void *data)
{
    if (!s || s->closing)
        return;
    s->close_cb = close_cb;
    s->close_data = data;
    s->closing = true;
    uv_timer_stop(&s->tick);
    uv_timer_start(&s->tick, teardown_cb, 0, 0);
}
