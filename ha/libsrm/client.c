/*
 * The libsrm client: the connection to srmd (libqb IPC, asynchronous connect, reconnect),
 * the watchdog pings, the commands, the quorum source (libquorum) and the glue that turns
 * the fence's decisions (fence.c) into callbacks. Everything runs from srm_client_dispatch()
 * behind one epoll descriptor holding the IPC socket, the quorum socket and a timerfd.
 */
#include "internal.h"

#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <qb/qbdefs.h>
#include <qb/qbipcc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

_Static_assert((int)SRM_STOP_DRAIN_TIMEOUT == (int)SRM_IPC_REASON_DRAIN_TIMEOUT, "reasons");
_Static_assert((int)SRM_STOP_SERVICES == (int)SRM_IPC_REASON_STOPPED, "reasons");
_Static_assert((int)SRM_STOP_LEASE == (int)SRM_IPC_REASON_LEASE, "reasons");
_Static_assert((int)SRM_STOP_QUORUM == (int)SRM_IPC_REASON_QUORUM, "reasons");
_Static_assert(SRM_NAME_MAX == SRM_IPC_NAME_MAX && SRM_DETAIL_MAX == SRM_IPC_DETAIL_MAX &&
                   SRM_PARTS_MAX == SRM_IPC_PARTS_MAX && SRM_EXTRA_MAX == SRM_IPC_EXTRA_MAX &&
                   SRM_SERVICES_MAX == SRM_IPC_SERVICES_MAX &&
                   SRM_NODE_NAME_MAX == SRM_IPC_NODE_NAME_MAX,
               "bounds");

#define TAG_TIMER  1u
#define TAG_CONN   2u
#define TAG_QUORUM 3u

#define CONNECT_TIMEOUT_MS  2000
#define HELLO_TIMEOUT_MS    5000
#define QUORUM_RETRY_MS     1000
#define QUEUE_RETRY_MS      10
#define QUEUE_MAX           256
#define EVENTS_PER_DISPATCH 64
#define CMDS_MAX            1024

enum conn_state {
    CONN_IDLE = 0,   /* not connected; next attempt at next_attempt */
    CONN_CONNECTING, /* asynchronous connect in progress */
    CONN_HELLO,      /* HELLO sent, waiting for WELCOME */
    CONN_UP,         /* WELCOME received */
};

struct svc {
    char name[SRM_NAME_MAX + 1];
    bool critical;
    bool up;
    char detail[SRM_DETAIL_MAX + 1];
};

struct outq {
    struct outq *next;
    enum srm_ipc_type type;
    size_t len;
    uint8_t buf[];
};

/*
 * A command handed to the application and not acknowledged yet. The application sees a
 * local id, unique for the life of the client: srmd's ids restart with every srmd, and a
 * command of a former connection must never be taken for one of the current one.
 */
struct cmd {
    uint32_t local; /* the id the application sees */
    uint32_t id;    /* srmd's */
    enum srm_ipc_type type;
    uint64_t conn_gen; /* the connection it came on: its ACK goes nowhere else */
    uint32_t part;
    uint64_t epoch;
    struct cmd *next;
};

struct srm_client {
    struct srm_client_callbacks cb;
    void *data;
    char ipc_name[SRM_IPC_NAME_MAX + 1];
    char name[SRM_IPC_NAME_MAX + 1];
    uid_t *server_uids;
    size_t n_server_uids;
    unsigned reconnect_ms;
    uint32_t peer_opt;
    int epfd;
    int tfd;
    uint64_t timer_armed_at; /* absolute ms the timerfd is set to (0: disarmed) */

    /* srmd connection */
    enum conn_state st;
    qb_ipcc_connection_t *conn;
    int conn_fd;
    uint64_t conn_gen;
    uint64_t conn_deadline;
    uint64_t next_attempt;
    bool ever_up;
    uint64_t reconnects;
    uint64_t incarnation;
    uint64_t srmd_incarnation;
    uint32_t node_id;
    uint32_t srmd_peer;
    char node_name[SRM_NODE_NAME_MAX + 1];
    char peer_name[SRM_NODE_NAME_MAX + 1];
    uint32_t ping_ms;
    uint64_t next_ping;
    uint64_t ping_seq;
    struct outq *q_head, *q_tail;
    size_t q_len;
    bool serving_dirty;

    /* quorum */
    enum srm_quorum_mode qmode;
    quorum_handle_t qh;
    bool q_open;
    int q_fd;
    uint64_t q_retry;

    struct srm__fence fence;
    size_t n_svc;
    struct svc svc[SRM_SERVICES_MAX];
    struct cmd *cmds;
    size_t n_cmds;
    uint32_t next_local;
    bool lost_pending; /* a lost connection to report from the next dispatch */
    int lost_err;
    struct srm_rng rng;
    uint64_t refused_serves;
    struct srm_ipc_msg msg; /* decode buffer (large) */
    uint8_t rx[SRM_IPC_BUFFER_SIZE];
};

static void conn_lost(struct srm_client *c, uint64_t now, int err);
static void fence_stop_cb(void *data, uint32_t part, enum srm_ipc_reason reason,
                          const struct srm__grant *gone, size_t n_gone);

static uint64_t now_ms(void)
{
    return srm_ipc_mono_ms();
}

const char *srm_stop_reason_name(enum srm_stop_reason reason)
{
    switch (reason) {
    case SRM_STOP_DRAIN_TIMEOUT:
    case SRM_STOP_SERVICES:
    case SRM_STOP_LEASE:
    case SRM_STOP_QUORUM:
        return srm_ipc_reason_name((enum srm_ipc_reason)reason);
    }
    return "?";
}

/* ------------------------------------------------------------------------ epoll helpers */

static int ep_add(struct srm_client *c, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (errno == EEXIST)
            return epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
        return -errno;
    }
    return 0;
}

static void ep_del(struct srm_client *c, int fd)
{
    if (fd >= 0)
        (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ------------------------------------------------------------------------ sending */

static void outq_clear(struct srm_client *c)
{
    while (c->q_head) {
        struct outq *m = c->q_head;
        c->q_head = m->next;
        free(m);
    }
    c->q_tail = NULL;
    c->q_len = 0;
}

static ssize_t raw_send(struct srm_client *c, const uint8_t *buf, size_t len)
{
    return qb_ipcc_send(c->conn, buf, len);
}

/* Sends what waits, in order, until the ring is full. A hard error ends the connection. */
static void flush_queue(struct srm_client *c, uint64_t now)
{
    while (c->q_head && c->conn && (c->st == CONN_UP || c->st == CONN_HELLO)) {
        struct outq *m = c->q_head;
        ssize_t r = raw_send(c, m->buf, m->len);
        if (r == -EAGAIN || r == -ETIMEDOUT)
            return;
        if (r < 0) {
            conn_lost(c, now, (int)r);
            return;
        }
        c->q_head = m->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->q_len--;
        free(m);
    }
}

/*
 * Frames msg behind a libqb request header and sends it, or queues it when the ring is full
 * (PING is dropped instead: the next one will do; a queued COUNTERS is replaced).
 * Returns 0, -ENOTCONN, or the encoder's error.
 */
static int send_msg(struct srm_client *c, const struct srm_ipc_msg *msg)
{
    uint8_t buf[sizeof(struct qb_ipc_request_header) + SRM_IPC_FRAME_MAX];
    struct qb_ipc_request_header h;
    size_t flen = 0, total;
    struct outq *m;
    int r;

    if (!c->conn || (c->st != CONN_UP && !(c->st == CONN_HELLO && msg->type == SRM_IPC_HELLO)))
        return -ENOTCONN;
    r = srm_ipc_msg_encode(msg, buf + sizeof(h), SRM_IPC_FRAME_MAX, &flen);
    if (r < 0)
        return r;
    total = sizeof(h) + flen;
    memset(&h, 0, sizeof(h));
    h.id = (int32_t)msg->type;
    h.size = (int32_t)total;
    memcpy(buf, &h, sizeof(h)); /* the buffer is not aligned for the struct */

    if (!c->q_head) {
        ssize_t sr = raw_send(c, buf, total);
        if (sr == (ssize_t)total)
            return 0;
        if (sr != -EAGAIN && sr != -ETIMEDOUT) {
            conn_lost(c, now_ms(), sr < 0 ? (int)sr : -EIO);
            return -ENOTCONN;
        }
    }
    if (msg->type == SRM_IPC_PING)
        return 0;
    if (msg->type == SRM_IPC_COUNTERS) {
        for (struct outq **pp = &c->q_head; *pp; pp = &(*pp)->next) {
            if ((*pp)->type != SRM_IPC_COUNTERS)
                continue;
            /* Drop the stale snapshot; the new one goes at the end. */
            struct outq *old = *pp;
            *pp = old->next;
            if (c->q_tail == old) {
                c->q_tail = NULL;
                for (struct outq *t = c->q_head; t; t = t->next)
                    c->q_tail = t;
            }
            c->q_len--;
            free(old);
            break;
        }
    }
    if (c->q_len >= QUEUE_MAX) {
        /* srmd does not read: start over with a fresh connection (state is re-sent). */
        conn_lost(c, now_ms(), -ENOBUFS);
        return -ENOTCONN;
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
    return 0;
}

static void send_ack(struct srm_client *c, uint32_t cmd_id, int result, const char *detail)
{
    struct srm_ipc_msg m;

    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_ACK;
    m.u.ack.cmd_id = cmd_id;
    m.u.ack.result = result > 0 ? 0 : result;
    snprintf(m.u.ack.detail, sizeof(m.u.ack.detail), "%s", detail ? detail : "");
    if (!srm_ipc_text_valid(m.u.ack.detail, strlen(m.u.ack.detail)))
        m.u.ack.detail[0] = '\0';
    (void)send_msg(c, &m);
}

static void send_serving(struct srm_client *c, uint64_t now)
{
    struct srm_ipc_msg m;
    struct srm_ipc_serving *s = &m.u.serving;

    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_SERVING;
    s->reason = (uint8_t)c->fence.last_reason;
    s->fenced = srm__fence_blocked(&c->fence);
    s->lease_left_ms = c->fence.n > 0 ? srm__fence_lease_left(&c->fence, now) : 0;
    if (s->lease_left_ms > SRM_IPC_LEASE_MAX_MS)
        s->lease_left_ms = SRM_IPC_LEASE_MAX_MS;
    s->n = (uint16_t)c->fence.n;
    for (size_t i = 0; i < c->fence.n; i++) {
        s->grants[i].part = c->fence.g[i].part;
        s->grants[i].epoch = c->fence.g[i].epoch;
        s->grants[i].state = c->fence.g[i].state;
    }
    if (send_msg(c, &m) == 0)
        c->serving_dirty = false;
}

/* ------------------------------------------------------------------------ commands */

static struct cmd *cmd_find(struct srm_client *c, uint32_t local, struct cmd ***ret_pp)
{
    for (struct cmd **pp = &c->cmds; *pp; pp = &(*pp)->next)
        if ((*pp)->local == local) {
            if (ret_pp)
                *ret_pp = pp;
            return *pp;
        }
    return NULL;
}

static uint32_t local_id(struct srm_client *c)
{
    if (++c->next_local == 0)
        c->next_local = 1;
    return c->next_local;
}

static void cmd_forget(struct srm_client *c, struct cmd **pp)
{
    struct cmd *k = *pp;

    *pp = k->next;
    free(k);
    c->n_cmds--;
}

static int cmd_remember(struct srm_client *c, uint32_t local, uint32_t id, enum srm_ipc_type type,
                        uint32_t part, uint64_t epoch)
{
    struct cmd *k;

    if (c->n_cmds >= CMDS_MAX)
        return -ENOSPC;
    k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->local = local;
    k->id = id;
    k->type = type;
    k->conn_gen = c->conn_gen;
    k->part = part;
    k->epoch = epoch;
    k->next = c->cmds;
    c->cmds = k;
    c->n_cmds++;
    return 0;
}

/* Acknowledges to srmd only on the connection the command came on. */
static void ack_on(struct srm_client *c, uint64_t conn_gen, uint32_t id, int result,
                   const char *detail)
{
    if (conn_gen == c->conn_gen && c->st == CONN_UP)
        send_ack(c, id, result, detail);
}

static const char *reason_detail(enum srm_ipc_reason reason)
{
    switch (reason) {
    case SRM_IPC_REASON_DRAIN_TIMEOUT:
        return "drain timeout: partition stopped by libsrm";
    case SRM_IPC_REASON_LEASE:
        return "lease expired: partition stopped by libsrm";
    case SRM_IPC_REASON_QUORUM:
        return "quorum lost and peer not in the membership: partition stopped by libsrm";
    case SRM_IPC_REASON_STOPPED:
        return "critical services stopped";
    default:
        return srm_ipc_reason_name(reason);
    }
}

static int reason_code(enum srm_ipc_reason reason)
{
    switch (reason) {
    case SRM_IPC_REASON_DRAIN_TIMEOUT:
        return -ETIMEDOUT;
    case SRM_IPC_REASON_LEASE:
        return SRM_ELEASE;
    case SRM_IPC_REASON_QUORUM:
        return SRM_ENO_QUORUM;
    default:
        return -ECANCELED;
    }
}

static void fence_stop_cb(void *data, uint32_t part, enum srm_ipc_reason reason,
                          const struct srm__grant *gone, size_t n_gone)
{
    struct srm_client *c = data;

    c->serving_dirty = true;
    /* RELEASEs in progress end here: acknowledge them with what happened. */
    for (size_t i = 0; i < n_gone; i++) {
        struct cmd **pp;
        struct cmd *k;
        if (gone[i].state != SRM_IPC_GRANT_DRAINING)
            continue;
        k = cmd_find(c, gone[i].release_cmd, &pp);
        if (!k)
            continue;
        ack_on(c, k->conn_gen, k->id, reason_code(reason), reason_detail(reason));
        cmd_forget(c, pp);
    }
    if (c->cb.stop_serving_cb)
        c->cb.stop_serving_cb(c, part, (enum srm_stop_reason)reason, c->data);
}

static void on_serve(struct srm_client *c, uint64_t now, const struct srm_ipc_serve *m)
{
    struct srm_serve sv;
    uint32_t local = local_id(c);
    bool renewed = false;
    int r =
        srm__fence_serve(&c->fence, now, m->part, m->epoch, m->lease_ms, m->sent_mono_ms, &renewed);

    if (r < 0) {
        char why[SRM_IPC_DETAIL_MAX + 1];
        c->refused_serves++;
        snprintf(why, sizeof(why), "serve refused: %s", srm_strerror(r));
        send_ack(c, m->cmd_id, r, why);
        c->serving_dirty = true;
        return;
    }
    c->serving_dirty = true;
    if (!c->cb.serve_cb) {
        send_ack(c, m->cmd_id, 0, renewed ? "renewed" : "serving");
        return;
    }
    sv = (struct srm_serve){.cmd_id = local,
                            .part = m->part,
                            .epoch = m->epoch,
                            .renewed = renewed,
                            .home_name = m->home_name};
    r = c->cb.serve_cb(c, &sv, c->data);
    if (r == SRM_ACK_LATER) {
        if (cmd_remember(c, local, m->cmd_id, SRM_IPC_SERVE, m->part, m->epoch) == 0)
            return;
        r = 0; /* cannot track it: acknowledge now */
    }
    if (r < 0) {
        srm__fence_drop_epoch(&c->fence, m->part, m->epoch);
        send_ack(c, m->cmd_id, r, "serve refused by the application");
        return;
    }
    send_ack(c, m->cmd_id, 0, renewed ? "renewed" : "serving");
}

static void on_release(struct srm_client *c, uint64_t now, const struct srm_ipc_release *m)
{
    const struct srm__grant *g = srm__fence_find(&c->fence, m->part);
    uint32_t local = local_id(c);
    struct srm_release rl;
    int r;

    if (!g) {
        send_ack(c, m->cmd_id, 0, "not served");
        return;
    }
    r = srm__fence_release_begin(&c->fence, now, m->part, m->drain_ms, local);
    if (r < 0) {
        send_ack(c, m->cmd_id, r, "release already in progress");
        return;
    }
    c->serving_dirty = true;
    rl = (struct srm_release){.cmd_id = local,
                              .part = m->part,
                              .epoch = g->epoch,
                              .drain_ms = m->drain_ms,
                              .relogin_lower_s = m->relogin_lower_s,
                              .relogin_upper_s = m->relogin_upper_s};
    r = c->cb.release_cb ? c->cb.release_cb(c, &rl, c->data) : 0;
    if (r == SRM_ACK_LATER) {
        if (cmd_remember(c, local, m->cmd_id, SRM_IPC_RELEASE, m->part, rl.epoch) == 0)
            return;
        r = 0;
    }
    /* Whatever the application says, the partition is no longer served: srmd needs it
     * back. The result tells srmd whether the drain went well. */
    srm__fence_release_done(&c->fence, local);
    send_ack(c, m->cmd_id, r, r < 0 ? "drain failed" : "released");
}

static void on_services(struct srm_client *c, enum srm_ipc_type type, uint32_t cmd_id)
{
    srm_client_services_cb *cb;
    uint32_t local = local_id(c);
    int r;

    if (type == SRM_IPC_STOP_SERVICES) {
        srm__fence_drop(&c->fence, SRM_PART_ALL, SRM_IPC_REASON_STOPPED, true);
        cb = c->cb.stop_services_cb;
    } else {
        cb = c->cb.start_services_cb;
    }
    r = cb ? cb(c, local, c->data) : 0;
    if (r == SRM_ACK_LATER) {
        if (cmd_remember(c, local, cmd_id, type, 0, 0) == 0)
            return;
        r = 0;
    }
    send_ack(c, cmd_id, r, r < 0 ? "failed" : "done");
}

static void on_welcome(struct srm_client *c, uint64_t now, const struct srm_ipc_welcome *w)
{
    struct srm_ipc_msg m;

    c->srmd_incarnation = w->incarnation;
    c->node_id = w->node_id;
    c->srmd_peer = w->peer_node_id;
    snprintf(c->node_name, sizeof(c->node_name), "%s", w->node_name);
    snprintf(c->peer_name, sizeof(c->peer_name), "%s", w->peer_name);
    c->ping_ms = w->ping_ms;
    c->next_ping = now + c->ping_ms;
    c->st = CONN_UP;
    if (c->ever_up)
        c->reconnects++;
    c->ever_up = true;
    srm__fence_set_peer(&c->fence, c->peer_opt ? c->peer_opt : c->srmd_peer);
    if (c->qmode == SRM_QUORUM_COROSYNC && c->cb.quorum_cb)
        c->cb.quorum_cb(c, c->fence.quorate, srm__fence_peer_present(&c->fence), c->data);

    for (size_t i = 0; i < c->n_svc; i++) {
        memset(&m, 0, sizeof(m));
        m.type = SRM_IPC_REGISTER;
        m.u.reg.critical = c->svc[i].critical;
        snprintf(m.u.reg.service, sizeof(m.u.reg.service), "%s", c->svc[i].name);
        (void)send_msg(c, &m);
        if (!c->svc[i].up) {
            memset(&m, 0, sizeof(m));
            m.type = SRM_IPC_HEALTH;
            m.u.health.up = false;
            snprintf(m.u.health.service, sizeof(m.u.health.service), "%s", c->svc[i].name);
            snprintf(m.u.health.detail, sizeof(m.u.health.detail), "%s", c->svc[i].detail);
            (void)send_msg(c, &m);
        }
    }
    c->serving_dirty = true;
    if (c->cb.connection_cb)
        c->cb.connection_cb(c, true, 0, c->data);
}

static void handle_msg(struct srm_client *c, uint64_t now, const struct srm_ipc_msg *m)
{
    if (c->st == CONN_HELLO) {
        if (m->type == SRM_IPC_WELCOME)
            on_welcome(c, now, &m->u.welcome);
        else
            conn_lost(c, now, SRM_EBADMSG);
        return;
    }
    switch (m->type) {
    case SRM_IPC_SERVE:
        on_serve(c, now, &m->u.serve);
        break;
    case SRM_IPC_RELEASE:
        on_release(c, now, &m->u.release);
        break;
    case SRM_IPC_LEASE:
        srm__fence_lease(&c->fence, now, m->u.lease.lease_ms, m->u.lease.sent_mono_ms);
        break;
    case SRM_IPC_STOP_SERVICES:
    case SRM_IPC_START_SERVICES:
        on_services(c, m->type, m->u.command.cmd_id);
        break;
    case SRM_IPC_WATCHDOG:
        c->ping_ms = m->u.watchdog.ping_ms;
        if (c->next_ping > now + c->ping_ms)
            c->next_ping = now + c->ping_ms;
        break;
    default:
        /* WELCOME twice, or an engine's message: not srmd speaking our protocol. */
        conn_lost(c, now, SRM_EBADMSG);
        break;
    }
}

/* ------------------------------------------------------------------------ connection */

static bool server_uid_ok(struct srm_client *c, uid_t uid)
{
    if (c->n_server_uids == 0)
        return uid == 0 || uid == geteuid();
    for (size_t i = 0; i < c->n_server_uids; i++)
        if (c->server_uids[i] == uid)
            return true;
    return false;
}

/* Frees the libqb connection. A connect still in progress can only be freed by continuing
 * it: its socket is non-blocking, so that fails at once and cleans up (or, if the answer
 * came meanwhile, succeeds and is then disconnected). */
static void conn_free(struct srm_client *c)
{
    if (c->st == CONN_CONNECTING) {
        if (qb_ipcc_connect_continue(c->conn) == 0)
            qb_ipcc_disconnect(c->conn);
    } else {
        qb_ipcc_disconnect(c->conn);
    }
    c->conn = NULL;
}

static void conn_lost(struct srm_client *c, uint64_t now, int err)
{
    bool was_up = c->st == CONN_UP;

    if (c->conn) {
        ep_del(c, c->conn_fd);
        conn_free(c);
    }
    c->conn_fd = -1;
    c->st = CONN_IDLE;
    c->conn_gen++;
    c->next_attempt = now + c->reconnect_ms;
    outq_clear(c);
    /* Reported from srm_client_dispatch(): this may run inside another API call. */
    if (was_up) {
        c->lost_pending = true;
        c->lost_err = err;
    }
}

static void conn_start(struct srm_client *c, uint64_t now)
{
    int fd = -1;

    c->conn = qb_ipcc_connect_async(c->ipc_name, SRM_IPC_BUFFER_SIZE, &fd);
    if (!c->conn) {
        c->next_attempt = now + c->reconnect_ms;
        return;
    }
    c->conn_fd = fd;
    c->st = CONN_CONNECTING;
    c->conn_deadline = now + CONNECT_TIMEOUT_MS;
    if (ep_add(c, fd, TAG_CONN) < 0)
        conn_lost(c, now, -EIO);
}

static void conn_continue(struct srm_client *c, uint64_t now)
{
    struct srm_ipc_msg m;
    pid_t pid = 0;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    int32_t fd = -1;
    int r;

    ep_del(c, c->conn_fd);
    r = qb_ipcc_connect_continue(c->conn);
    if (r != 0) {
        c->conn = NULL; /* freed by libqb */
        c->conn_fd = -1;
        conn_lost(c, now, r < 0 ? r : -ECONNREFUSED);
        return;
    }
    c->st = CONN_HELLO;
    if (qb_ipcc_auth_get(c->conn, &pid, &uid, &gid) != 0 || !server_uid_ok(c, uid)) {
        /* Whoever answers on srmd's name is not srmd: do not take orders from it. */
        conn_lost(c, now, -EPERM);
        return;
    }
    if (qb_ipcc_fd_get(c->conn, &fd) != 0 || ep_add(c, fd, TAG_CONN) < 0) {
        conn_lost(c, now, -EIO);
        return;
    }
    c->conn_fd = fd;
    c->conn_deadline = now + HELLO_TIMEOUT_MS;
    memset(&m, 0, sizeof(m));
    m.type = SRM_IPC_HELLO;
    m.u.hello.pid = (uint32_t)getpid();
    m.u.hello.incarnation = c->incarnation;
    snprintf(m.u.hello.name, sizeof(m.u.hello.name), "%s", c->name);
    if (send_msg(c, &m) < 0 && c->st != CONN_IDLE)
        conn_lost(c, now, -EIO);
}

static void conn_read(struct srm_client *c, uint64_t now)
{
    for (int i = 0; i < EVENTS_PER_DISPATCH && c->conn && c->st >= CONN_HELLO; i++) {
        ssize_t n = qb_ipcc_event_recv(c->conn, c->rx, sizeof(c->rx), 0);
        struct qb_ipc_response_header hdr;
        const struct qb_ipc_response_header *h = &hdr;
        int r;

        if (n == -EAGAIN || n == -ETIMEDOUT)
            return;
        if (n < 0) {
            conn_lost(c, now, (int)n);
            return;
        }
        if ((size_t)n >= sizeof(hdr))
            memcpy(&hdr, c->rx, sizeof(hdr));
        if ((size_t)n < sizeof(hdr) || h->size != (int32_t)n) {
            conn_lost(c, now, SRM_EBADMSG);
            return;
        }
        r = srm_ipc_msg_decode(c->rx + sizeof(hdr), (size_t)n - sizeof(hdr), &c->msg);
        if (r < 0 || h->id != (int32_t)c->msg.type || srm_ipc_type_from_engine(c->msg.type)) {
            conn_lost(c, now, r < 0 ? r : SRM_EBADMSG);
            return;
        }
        handle_msg(c, now, &c->msg);
    }
}

/* ------------------------------------------------------------------------ quorum */

static void quorum_notify(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq, uint32_t n_view,
                          uint32_t *view)
{
    const void *ctx = NULL;
    struct srm_client *c;

    (void)ring_seq;
    if (quorum_context_get(h, &ctx) != CS_OK || !ctx)
        return;
    c = (struct srm_client *)ctx;
    if (srm__fence_quorum(&c->fence, true, quorate != 0, view, n_view) > 0)
        c->serving_dirty = true;
    if (c->cb.quorum_cb)
        c->cb.quorum_cb(c, quorate != 0, srm__fence_peer_present(&c->fence), c->data);
}

static void quorum_close(struct srm_client *c, uint64_t now, bool report)
{
    if (c->q_open) {
        ep_del(c, c->q_fd);
        quorum_finalize(c->qh);
        c->q_open = false;
        c->q_fd = -1;
    }
    c->q_retry = now + QUORUM_RETRY_MS;
    if (report) {
        if (srm__fence_quorum(&c->fence, false, false, NULL, 0) > 0)
            c->serving_dirty = true;
        if (c->cb.quorum_cb)
            c->cb.quorum_cb(c, false, false, c->data);
    }
}

static void quorum_open(struct srm_client *c, uint64_t now)
{
    quorum_callbacks_t qcb = {.quorum_notify_fn = quorum_notify};
    uint32_t qtype = 0;
    int quorate = 0;
    cs_error_t e;

    e = quorum_initialize(&c->qh, &qcb, &qtype);
    if (e != CS_OK) {
        c->q_retry = now + QUORUM_RETRY_MS;
        return;
    }
    c->q_open = true;
    if (quorum_context_set(c->qh, c) != CS_OK ||
        quorum_trackstart(c->qh, CS_TRACK_CURRENT | CS_TRACK_CHANGES) != CS_OK ||
        quorum_fd_get(c->qh, &c->q_fd) != CS_OK || ep_add(c, c->q_fd, TAG_QUORUM) < 0) {
        quorum_close(c, now, true);
        return;
    }
    /* The quorate flag at once (the member list comes with the first notification, which
     * CS_TRACK_CURRENT asks for, through the descriptor). */
    if (quorum_getquorate(c->qh, &quorate) == CS_OK)
        srm__fence_quorum(&c->fence, true, quorate != 0, NULL, 0);
}

/* ------------------------------------------------------------------------ timer */

static uint64_t next_deadline(const struct srm_client *c, uint64_t now)
{
    uint64_t best = srm__fence_next_deadline(&c->fence);

    switch (c->st) {
    case CONN_IDLE:
        if (c->next_attempt < best)
            best = c->next_attempt;
        break;
    case CONN_CONNECTING:
    case CONN_HELLO:
        if (c->conn_deadline < best)
            best = c->conn_deadline;
        break;
    case CONN_UP:
        if (c->next_ping < best)
            best = c->next_ping;
        if (c->q_head && now + QUEUE_RETRY_MS < best)
            best = now + QUEUE_RETRY_MS;
        if (c->serving_dirty)
            best = now;
        break;
    }
    if (c->qmode == SRM_QUORUM_COROSYNC && !c->q_open && c->q_retry < best)
        best = c->q_retry;
    if (c->lost_pending)
        best = now;
    return best;
}

static void timer_arm(struct srm_client *c, uint64_t at)
{
    struct itimerspec its;

    if (at == c->timer_armed_at)
        return;
    memset(&its, 0, sizeof(its));
    if (at != UINT64_MAX) {
        /* 0 would disarm: an instant in the past fires at once anyway. */
        uint64_t t = at ? at : 1;
        its.it_value.tv_sec = (time_t)(t / 1000);
        its.it_value.tv_nsec = (long)(t % 1000) * 1000000L;
    }
    if (timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        c->timer_armed_at = at;
}

/* ------------------------------------------------------------------------ public API */

int srm_client_dispatch(struct srm_client *c)
{
    struct epoll_event evs[8];
    uint64_t now;
    int n;

    if (!c)
        return -EINVAL;
    now = now_ms();
    /* The lease first: nothing read below may extend a lease that is already over. */
    srm__fence_tick(&c->fence, now);

    n = epoll_wait(c->epfd, evs, 8, 0);
    for (int i = 0; i < n; i++) {
        switch (evs[i].data.u32) {
        case TAG_TIMER: {
            uint64_t expirations;
            (void)!read(c->tfd, &expirations, sizeof(expirations));
            c->timer_armed_at = 0;
            break;
        }
        case TAG_CONN:
            if (c->st == CONN_CONNECTING)
                conn_continue(c, now);
            else if (c->st >= CONN_HELLO)
                conn_read(c, now);
            break;
        case TAG_QUORUM:
            if (c->q_open && quorum_dispatch(c->qh, CS_DISPATCH_ALL) != CS_OK)
                quorum_close(c, now, true);
            break;
        }
    }

    now = now_ms();
    srm__fence_tick(&c->fence, now);
    switch (c->st) {
    case CONN_IDLE:
        if (now >= c->next_attempt)
            conn_start(c, now);
        break;
    case CONN_CONNECTING:
    case CONN_HELLO:
        if (now >= c->conn_deadline)
            conn_lost(c, now, -ETIMEDOUT);
        break;
    case CONN_UP:
        if (now >= c->next_ping) {
            struct srm_ipc_msg m;
            memset(&m, 0, sizeof(m));
            m.type = SRM_IPC_PING;
            m.u.ping.seq = ++c->ping_seq;
            (void)send_msg(c, &m);
            c->next_ping = now + c->ping_ms;
        }
        if (c->q_head)
            flush_queue(c, now);
        if (c->st == CONN_UP && c->serving_dirty)
            send_serving(c, now);
        break;
    }
    if (c->qmode == SRM_QUORUM_COROSYNC && !c->q_open && now >= c->q_retry)
        quorum_open(c, now);
    if (c->lost_pending) {
        c->lost_pending = false;
        if (c->cb.connection_cb)
            c->cb.connection_cb(c, false, c->lost_err, c->data);
    }

    timer_arm(c, next_deadline(c, now));
    return 0;
}

int srm_client_timeout_ms(const struct srm_client *c)
{
    uint64_t now = now_ms(), at;

    if (!c)
        return -1;
    at = next_deadline(c, now);
    if (at == UINT64_MAX)
        return -1;
    if (at <= now)
        return 0;
    return at - now > INT32_MAX ? INT32_MAX : (int)(at - now);
}

int srm_client_new(const struct srm_client_options *opts, struct srm_client **ret_client)
{
    struct srm_client *c;
    const char *ipc, *name, *qenv;
    int r;

    if (!opts || !ret_client)
        return -EINVAL;
    ipc = opts->ipc_name ? opts->ipc_name : getenv("SRM_IPC_NAME");
    if (!ipc || !*ipc)
        ipc = "srmd";
    name = opts->name ? opts->name : program_invocation_short_name;
    if (!srm_ipc_name_valid(ipc, SRM_IPC_NAME_MAX) || !srm_ipc_name_valid(name, SRM_IPC_NAME_MAX))
        return -EINVAL;
    if (opts->n_server_uids > 0 && !opts->server_uids)
        return -EINVAL;

    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->epfd = c->tfd = c->conn_fd = c->q_fd = -1;
    c->qmode = opts->quorum;
    if (c->qmode == SRM_QUORUM_DEFAULT) {
        qenv = getenv("SRM_QUORUM");
        if (!qenv || !*qenv || strcmp(qenv, "corosync") == 0)
            c->qmode = SRM_QUORUM_COROSYNC;
        else if (strcmp(qenv, "off") == 0)
            c->qmode = SRM_QUORUM_OFF;
        else {
            free(c);
            return -EINVAL;
        }
    }
    if (c->qmode != SRM_QUORUM_COROSYNC && c->qmode != SRM_QUORUM_OFF) {
        free(c);
        return -EINVAL;
    }
    c->cb = opts->callbacks;
    c->data = opts->data;
    snprintf(c->ipc_name, sizeof(c->ipc_name), "%s", ipc);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->reconnect_ms = opts->reconnect_ms ? opts->reconnect_ms : 250;
    c->peer_opt = opts->peer_node_id;
    c->ping_ms = 1000;
    if (opts->n_server_uids) {
        c->server_uids = calloc(opts->n_server_uids, sizeof(uid_t));
        if (!c->server_uids) {
            free(c);
            return -ENOMEM;
        }
        memcpy(c->server_uids, opts->server_uids, opts->n_server_uids * sizeof(uid_t));
        c->n_server_uids = opts->n_server_uids;
    }
    r = srm_rng_init(&c->rng);
    if (r < 0)
        goto fail;
    do {
        c->incarnation = srm_rng_next(&c->rng);
    } while (c->incarnation == 0);
    srm__fence_init(&c->fence, c->qmode == SRM_QUORUM_COROSYNC, fence_stop_cb, c);
    c->fence.peer = c->peer_opt;

    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        r = -errno;
        goto fail;
    }
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->tfd < 0) {
        r = -errno;
        goto fail;
    }
    r = ep_add(c, c->tfd, TAG_TIMER);
    if (r < 0)
        goto fail;

    {
        uint64_t now = now_ms();
        if (c->qmode == SRM_QUORUM_COROSYNC)
            quorum_open(c, now);
        conn_start(c, now);
        timer_arm(c, next_deadline(c, now));
    }
    *ret_client = c;
    return 0;

fail:
    if (c->tfd >= 0)
        close(c->tfd);
    if (c->epfd >= 0)
        close(c->epfd);
    free(c->server_uids);
    free(c);
    return r;
}

void srm_client_free(struct srm_client *c)
{
    if (!c)
        return;
    c->cb.connection_cb = NULL;
    c->cb.stop_serving_cb = NULL;
    srm__fence_drop(&c->fence, SRM_PART_ALL, SRM_IPC_REASON_CLOSED, false);
    if (c->st == CONN_UP) {
        /* Tell srmd at once that nothing is served any more (best effort). */
        send_serving(c, now_ms());
    }
    if (c->conn) {
        ep_del(c, c->conn_fd);
        conn_free(c);
    }
    outq_clear(c);
    if (c->q_open) {
        ep_del(c, c->q_fd);
        quorum_finalize(c->qh);
    }
    while (c->cmds)
        cmd_forget(c, &c->cmds);
    close(c->tfd);
    close(c->epfd);
    free(c->server_uids);
    free(c);
}

int srm_client_fd(const struct srm_client *c)
{
    return c ? c->epfd : -EINVAL;
}

static struct svc *svc_find(struct srm_client *c, const char *name)
{
    for (size_t i = 0; i < c->n_svc; i++)
        if (strcmp(c->svc[i].name, name) == 0)
            return &c->svc[i];
    return NULL;
}

int srm_client_service_register(struct srm_client *c, const char *service, bool critical)
{
    struct srm_ipc_msg m;
    struct svc *v;

    if (!c || !srm_ipc_name_valid(service, SRM_IPC_NAME_MAX))
        return -EINVAL;
    v = svc_find(c, service);
    if (!v) {
        if (c->n_svc == SRM_SERVICES_MAX)
            return -ENOSPC;
        v = &c->svc[c->n_svc++];
        snprintf(v->name, sizeof(v->name), "%s", service);
    }
    v->critical = critical;
    v->up = true;
    v->detail[0] = '\0';
    if (c->st == CONN_UP) {
        memset(&m, 0, sizeof(m));
        m.type = SRM_IPC_REGISTER;
        m.u.reg.critical = critical;
        snprintf(m.u.reg.service, sizeof(m.u.reg.service), "%s", service);
        (void)send_msg(c, &m);
    }
    return 0;
}

int srm_client_service_health(struct srm_client *c, const char *service, bool up,
                              const char *detail)
{
    struct srm_ipc_msg m;
    struct svc *v;

    if (!c || !service)
        return -EINVAL;
    if (!detail)
        detail = "";
    if (strlen(detail) > SRM_DETAIL_MAX || !srm_ipc_text_valid(detail, strlen(detail)))
        return -EINVAL;
    v = svc_find(c, service);
    if (!v)
        return SRM_ENOTFOUND;
    v->up = up;
    snprintf(v->detail, sizeof(v->detail), "%s", detail);
    if (c->st == CONN_UP) {
        memset(&m, 0, sizeof(m));
        m.type = SRM_IPC_HEALTH;
        m.u.health.up = up;
        snprintf(m.u.health.service, sizeof(m.u.health.service), "%s", service);
        snprintf(m.u.health.detail, sizeof(m.u.health.detail), "%s", detail);
        (void)send_msg(c, &m);
    }
    return 0;
}

int srm_client_ack(struct srm_client *c, uint32_t cmd_id, int result, const char *detail)
{
    struct cmd **pp = NULL;
    struct cmd *k;

    if (!c || result > 0)
        return -EINVAL;
    if (detail && (strlen(detail) > SRM_DETAIL_MAX || !srm_ipc_text_valid(detail, strlen(detail))))
        return -EINVAL;
    k = cmd_find(c, cmd_id, &pp);
    if (!k)
        return -ENOENT;
    switch (k->type) {
    case SRM_IPC_RELEASE:
        srm__fence_release_done(&c->fence, k->local);
        c->serving_dirty = true;
        break;
    case SRM_IPC_SERVE:
        if (result < 0) {
            srm__fence_drop_epoch(&c->fence, k->part, k->epoch);
            c->serving_dirty = true;
        }
        break;
    default:
        break;
    }
    ack_on(c, k->conn_gen, k->id, result, detail ? detail : (result < 0 ? "failed" : "done"));
    cmd_forget(c, pp);
    timer_arm(c, next_deadline(c, now_ms()));
    return 0;
}

static int part_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct srm_ipc_part_counters *)a)->part;
    uint32_t y = ((const struct srm_ipc_part_counters *)b)->part;
    return x < y ? -1 : x > y;
}

int srm_client_counters(struct srm_client *c, const struct srm_part_counters *parts, size_t n,
                        const struct srm_counter *extra, size_t n_extra)
{
    struct srm_ipc_msg *m;
    int r;

    if (!c || (n > 0 && !parts) || (n_extra > 0 && !extra))
        return -EINVAL;
    if (n > SRM_PARTS_MAX || n_extra > SRM_EXTRA_MAX)
        return -E2BIG;
    if (c->st != CONN_UP)
        return -ENOTCONN;
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->type = SRM_IPC_COUNTERS;
    m->u.counters.n_parts = (uint16_t)n;
    for (size_t i = 0; i < n; i++) {
        m->u.counters.parts[i].part = parts[i].part;
        m->u.counters.parts[i].active = parts[i].active;
        m->u.counters.parts[i].inactive = parts[i].inactive;
        m->u.counters.parts[i].client = parts[i].client;
        m->u.counters.parts[i].client_inactive = parts[i].client_inactive;
    }
    qsort(m->u.counters.parts, n, sizeof(m->u.counters.parts[0]), part_cmp);
    m->u.counters.n_extra = (uint16_t)n_extra;
    for (size_t i = 0; i < n_extra; i++) {
        if (!srm_ipc_name_valid(extra[i].name, SRM_IPC_NAME_MAX)) {
            free(m);
            return -EINVAL;
        }
        snprintf(m->u.counters.extra[i].name, sizeof(m->u.counters.extra[i].name), "%s",
                 extra[i].name);
        m->u.counters.extra[i].value = extra[i].value;
    }
    r = send_msg(c, m);
    free(m);
    /* Duplicate or zero partition ids are refused by the encoder. */
    return r;
}

int srm_client_stale(struct srm_client *c, uint32_t part, uint64_t epoch, int err)
{
    struct srm_ipc_msg m;
    int removed;

    if (!c || part == 0 || epoch == 0 || (err != SRM_ESTALE_EPOCH && err != SRM_ENOTOWNER))
        return -EINVAL;
    removed = srm__fence_drop_epoch(&c->fence, part, epoch);
    if (removed)
        c->serving_dirty = true;
    if (c->st == CONN_UP) {
        memset(&m, 0, sizeof(m));
        m.type = SRM_IPC_STALE;
        m.u.stale.part = part;
        m.u.stale.epoch = epoch;
        m.u.stale.error = err;
        (void)send_msg(c, &m);
    }
    timer_arm(c, next_deadline(c, now_ms()));
    return removed;
}

int srm_client_serving(const struct srm_client *c, uint32_t part, uint64_t *ret_epoch)
{
    if (!c)
        return 0;
    return srm__fence_serving(&c->fence, now_ms(), part, ret_epoch);
}

int srm_client_grants(const struct srm_client *c, struct srm_grant *arr, size_t cap, size_t *ret_n)
{
    if (!c || !ret_n || (cap > 0 && !arr))
        return -EINVAL;
    for (size_t i = 0; i < c->fence.n && i < cap; i++) {
        arr[i].part = c->fence.g[i].part;
        arr[i].epoch = c->fence.g[i].epoch;
        arr[i].draining = c->fence.g[i].state == SRM_IPC_GRANT_DRAINING;
    }
    *ret_n = c->fence.n;
    return 0;
}

int srm_client_status(const struct srm_client *c, struct srm_client_status *ret_status)
{
    struct srm_client_status s;
    uint64_t now = now_ms();

    if (!c || !ret_status)
        return -EINVAL;
    memset(&s, 0, sizeof(s));
    s.connected = c->st == CONN_UP;
    s.srmd_incarnation = c->srmd_incarnation;
    s.node_id = c->node_id;
    s.peer_node_id = c->fence.peer;
    snprintf(s.node_name, sizeof(s.node_name), "%s", c->node_name);
    snprintf(s.peer_name, sizeof(s.peer_name), "%s", c->peer_name);
    s.quorum = c->qmode;
    s.quorum_connected = c->fence.q_connected;
    s.quorate = c->fence.quorate;
    s.peer_present = srm__fence_peer_present(&c->fence);
    s.fenced = srm__fence_blocked(&c->fence);
    s.lease_left_ms = c->fence.lease_until > now ? (int64_t)(c->fence.lease_until - now) : 0;
    s.ping_ms = c->ping_ms;
    s.n_grants = c->fence.n;
    s.reconnects = c->reconnects;
    s.lease_expiries = c->fence.lease_expiries;
    s.quorum_fences = c->fence.quorum_fences;
    s.refused_serves = c->refused_serves;
    *ret_status = s;
    return 0;
}

uint64_t srm_client_relogin_delay_ms(struct srm_client *c, uint32_t lower_s, uint32_t upper_s)
{
    return srm_relogin_delay_ms(&c->rng, lower_s, upper_s);
}
