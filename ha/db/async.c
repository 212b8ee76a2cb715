/*
 * The connection manager on libuv (STYLE.md "The loop"): the libpq socket is polled with
 * a uv_poll_t, connection attempts and answers never block the loop.
 *
 * Life of a connection:
 *
 *   BACKOFF --timer--> CONNECTING --PQconnectPoll OK--> LISTENING --LISTEN done--> UP
 *      ^                   |                               |                        |
 *      +----- failure -----+-------------------------------+------------------------+
 *
 * Failures (connect error or timeout, socket error, EOF, an answer that does not come
 * within op_timeout_ms, a failed ping) close the connection and schedule the next attempt
 * after a delay that doubles from reconnect_min_ms up to reconnect_max_ms (with +-20%
 * jitter so that many srmd do not reconnect in step). down_cb is called once when the
 * database becomes unreachable; up_cb once LISTEN is in place again.
 *
 * Queues, sent one statement at a time in this order: internal (LISTEN, ping), node state
 * reports, other operations. Reports survive an outage; other operations fail with
 * SRM_EDB_DOWN while the database is down. Callbacks of operations that fail before being
 * sent are deferred to a zero timer, so a submit call never calls back.
 */
#include "internal.h"

#include "srm_error.h"
#include "srm_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define CHANNEL "srm_config"

enum phase {
    PH_NEW = 0,    /* srm_db_start() not called yet */
    PH_BACKOFF,    /* waiting for the next connection attempt */
    PH_CONNECTING, /* PQconnectPoll in progress */
    PH_LISTENING,  /* connected, LISTEN in flight */
    PH_UP,
};

enum reported {
    REP_NONE = 0, /* neither up nor down said yet (first attempt) */
    REP_UP,
    REP_DOWN,
};

struct queue {
    struct srm__db_op *head, *tail;
    size_t n;
};

/* A poll handle is per socket; libpq may change socket while connecting. */
struct pollh {
    uv_poll_t handle;
    struct srm_db *db;
    int fd;
    int events;
};

struct srm_db {
    uv_loop_t *loop;
    char *conninfo;
    char *cache_path;
    struct srm_db_options opts; /* defaults applied; conninfo and cache_path point above */

    enum phase phase;
    enum reported reported;
    bool closing;
    PGconn *conn;
    struct pollh *poll;
    unsigned handles_open; /* timers and poll handles not yet closed */
    uv_timer_t retry_timer, op_timer, ping_timer, defer_timer;
    unsigned backoff_ms;
    uint64_t rng;

    struct queue internal, reports, ops, done;
    struct srm__db_op *inflight;
    PGresult *inflight_res;
    bool inflight_sent_ok; /* PQsendQueryParams accepted it */

    char source[24]; /* writer id of node state reports: de-duplicates re-sends */
    uint64_t seq;
    char down_reason[320];

    uv_work_t cache_work;
    bool cache_busy;
    char *cache_text; /* being written by the worker */
    char *cache_next; /* newest snapshot waiting for the worker */
    int cache_status;
    char cache_msg[SRM_DB_ERRMSG_MAX];

    srm_db_close_cb *close_cb;
    void *close_data;
};

/* ---- Queues ---- */

static void q_push(struct queue *q, struct srm__db_op *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->n++;
}

static void q_push_front(struct queue *q, struct srm__db_op *op)
{
    op->next = q->head;
    q->head = op;
    if (!q->tail)
        q->tail = op;
    q->n++;
}

static struct srm__db_op *q_pop(struct queue *q)
{
    struct srm__db_op *op = q->head;
    if (!op)
        return NULL;
    q->head = op->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    op->next = NULL;
    return op;
}

/* ---- Delivery ---- */

static void cache_schedule(struct srm_db *db, const struct srm_db_config *cfg);

static void deliver(struct srm_db *db, struct srm__db_op *op)
{
    if (op->internal) {
        srm__db_op_free(op);
        return;
    }
    if (op->status >= 0 && op->parse == SRM__DB_PARSE_CONFIG && db->cache_path && !db->closing)
        cache_schedule(db, op->result.config);
    op->result.status = op->status;
    op->result.errmsg = op->errmsg;
    if (op->cb)
        op->cb(db, &op->result, op->data);
    srm__db_op_free(op);
}

static void on_defer(uv_timer_t *t);
static void on_retry(uv_timer_t *t);
static void on_op_timeout(uv_timer_t *t);
static void on_ping(uv_timer_t *t);
static void maybe_finish_close(struct srm_db *db);

static void complete_later(struct srm_db *db, struct srm__db_op *op)
{
    q_push(&db->done, op);
    if (!db->closing && !uv_is_active((uv_handle_t *)&db->defer_timer))
        uv_timer_start(&db->defer_timer, on_defer, 0, 0);
}

/* ---- Poll handles ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void pollh_closed(uv_handle_t *h)
{
    struct pollh *p = h->data;
    struct srm_db *db = p->db;
    free(p);
    db->handles_open--;
    if (db->closing)
        maybe_finish_close(db);
}

static void close_poll(struct srm_db *db)
{
    if (!db->poll)
        return;
    uv_poll_stop(&db->poll->handle);
    uv_close((uv_handle_t *)&db->poll->handle, pollh_closed);
    db->poll = NULL;
}

/*
 * Polls fd for events, replacing the handle when libpq changed socket. While connecting,
 * libpq may close a socket and open another that gets the same number (several hosts in
 * conninfo): `rearm` stops and restarts the poll so that the new socket is registered.
 */
static int watch(struct srm_db *db, int fd, int events, bool rearm)
{
    if (fd < 0)
        return -EBADF;
    if (db->poll && db->poll->fd != fd)
        close_poll(db);
    if (db->poll && rearm)
        uv_poll_stop(&db->poll->handle);
    if (!db->poll) {
        struct pollh *p = calloc(1, sizeof(*p));
        if (!p)
            return -ENOMEM;
        int err = uv_poll_init(db->loop, &p->handle, fd);
        if (err < 0) {
            free(p);
            return err;
        }
        p->handle.data = p;
        p->db = db;
        p->fd = fd;
        db->poll = p;
        db->handles_open++;
    }
    if (db->poll->events == events && uv_is_active((uv_handle_t *)&db->poll->handle))
        return 0;
    db->poll->events = events;
    return uv_poll_start(&db->poll->handle, events, on_poll);
}

/* ---- Connection loss and retry ---- */

static unsigned next_delay(struct srm_db *db)
{
    unsigned base = db->backoff_ms;
    db->rng ^= db->rng << 13;
    db->rng ^= db->rng >> 7;
    db->rng ^= db->rng << 17;
    /* +-20% jitter */
    unsigned span = base / 5;
    unsigned delay = base - span + (span ? (unsigned)(db->rng % (2 * (uint64_t)span + 1)) : 0);
    db->backoff_ms = base >= db->opts.reconnect_max_ms / 2 ? db->opts.reconnect_max_ms : base * 2;
    return delay ? delay : 1;
}

static void drop_connection(struct srm_db *db)
{
    uv_timer_stop(&db->op_timer);
    uv_timer_stop(&db->ping_timer);
    close_poll(db); /* before PQfinish closes the socket */
    PQclear(db->inflight_res);
    db->inflight_res = NULL;
    PQfinish(db->conn);
    db->conn = NULL;
}

/*
 * The connection failed or broke: err is SRM_EDB_DOWN or -ETIMEDOUT, reason says why.
 * In-flight and queued operations fail (reports are kept); down_cb if it was not down.
 */
static void lost(struct srm_db *db, int err, const char *reason)
{
    struct srm__db_op *op;
    char msg[SRM_DB_ERRMSG_MAX];

    char why[sizeof(db->down_reason)];
    srm__db_pq_message(reason, why, sizeof(why)); /* reason may live in the connection */
    memcpy(db->down_reason, why, sizeof(why));
    bool was_connected = db->phase == PH_LISTENING || db->phase == PH_UP;
    drop_connection(db);
    db->phase = PH_BACKOFF;

    if ((op = db->inflight)) {
        db->inflight = NULL;
        if (op->internal)
            srm__db_op_free(op);
        else if (op->durable)
            q_push_front(&db->reports, op); /* re-sent; (source, seq) makes it a no-op if done */
        else {
            if (err == -ETIMEDOUT)
                srm__db_op_fail(op, err,
                                "no answer from the configuration database within %u ms; the "
                                "operation may or may not have been applied: check, then retry",
                                db->opts.op_timeout_ms);
            else
                srm__db_op_fail_down(op, db->down_reason, db->inflight_sent_ok);
            complete_later(db, op);
        }
    }
    while ((op = q_pop(&db->internal)))
        srm__db_op_free(op);
    while ((op = q_pop(&db->ops))) {
        srm__db_op_fail_down(op, db->down_reason, false);
        complete_later(db, op);
    }

    unsigned delay = next_delay(db);
    if (db->reported != REP_DOWN) {
        db->reported = REP_DOWN;
        snprintf(msg, sizeof(msg), "%s the configuration database: %s; retrying in %u ms",
                 was_connected ? "lost the connection to" : "cannot reach", db->down_reason, delay);
        srm_log_debug("%s", msg);
        if (db->opts.down_cb)
            db->opts.down_cb(db, err, msg, db->opts.data);
        if (db->closing)
            return;
    }
    uv_timer_start(&db->retry_timer, on_retry, delay, 0);
}

/* ---- Sending ---- */

static void pump(struct srm_db *db);

static void flush_and_watch(struct srm_db *db)
{
    int r = PQflush(db->conn);
    if (r < 0) {
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        return;
    }
    int err = watch(db, PQsocket(db->conn), UV_READABLE | (r == 1 ? UV_WRITABLE : 0), false);
    if (err < 0)
        lost(db, SRM_EDB_DOWN, uv_strerror(err));
}

static void send_op(struct srm_db *db, struct srm__db_op *op)
{
    db->inflight = op;
    db->inflight_sent_ok = false;
    if (!PQsendQueryParams(db->conn, op->sql, op->nparams, NULL, (const char *const *)op->params,
                           NULL, NULL, 0)) {
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        return;
    }
    db->inflight_sent_ok = true;
    uv_timer_start(&db->op_timer, on_op_timeout, db->opts.op_timeout_ms, 0);
    flush_and_watch(db);
}

static void pump(struct srm_db *db)
{
    struct srm__db_op *op = NULL;

    if (db->closing || !db->conn || db->inflight)
        return;
    if (db->phase == PH_LISTENING || db->phase == PH_UP)
        op = q_pop(&db->internal);
    if (!op && db->phase == PH_UP) {
        op = q_pop(&db->reports);
        if (!op)
            op = q_pop(&db->ops);
    }
    if (op)
        send_op(db, op);
}

/* ---- Receiving ---- */

static void deliver_notifications(struct srm_db *db)
{
    PGnotify *n;
    while (!db->closing && db->conn && (n = PQnotifies(db->conn))) {
        struct srm_db_change change = {0};
        if (srm_db_change_parse(n->extra, strlen(n->extra), &change) < 0)
            change.table = SRM_DB_TABLE_UNKNOWN; /* still a change: reload everything */
        PQfreemem(n);
        if (db->opts.change_cb)
            db->opts.change_cb(db, &change, db->opts.data);
    }
}

static void listen_done(struct srm_db *db, struct srm__db_op *op)
{
    if (op->status < 0) {
        char reason[SRM_DB_ERRMSG_MAX];
        srm__db_strlcpy(reason, op->errmsg, sizeof(reason));
        srm__db_op_free(op);
        lost(db, SRM_EDB_DOWN, reason);
        return;
    }
    srm__db_op_free(op);
    db->phase = PH_UP;
    db->reported = REP_UP;
    db->backoff_ms = db->opts.reconnect_min_ms;
    uv_timer_start(&db->ping_timer, on_ping, db->opts.ping_interval_ms, db->opts.ping_interval_ms);
    srm_log_debug("configuration database: connected, listening on " CHANNEL);
    if (db->opts.up_cb)
        db->opts.up_cb(db, db->opts.data);
}

/* The answer to the in-flight op is complete: finish it and hand it over. */
static void finish_inflight(struct srm_db *db)
{
    struct srm__db_op *op = db->inflight;
    PGresult *res = db->inflight_res;

    db->inflight = NULL;
    db->inflight_res = NULL;
    uv_timer_stop(&db->op_timer);
    srm__db_op_finish(op, db->conn, res);
    PQclear(res);

    bool broken = PQstatus(db->conn) == CONNECTION_BAD || op->status == SRM_EDB_DOWN;
    if (broken) {
        /* put it back where lost() expects it: it re-queues reports, fails the others */
        char reason[SRM_DB_ERRMSG_MAX];
        srm__db_strlcpy(reason, PQerrorMessage(db->conn), sizeof(reason));
        db->inflight = op;
        op->status = 0;
        op->errmsg[0] = '\0';
        lost(db, SRM_EDB_DOWN, reason);
        return;
    }
    if (op->internal) {
        if (op->sql[0] == 'L') /* LISTEN */
            listen_done(db, op);
        else if (op->status < 0) { /* failed ping */
            char reason[SRM_DB_ERRMSG_MAX];
            srm__db_strlcpy(reason, op->errmsg, sizeof(reason));
            srm__db_op_free(op);
            lost(db, SRM_EDB_DOWN, reason);
        } else {
            srm__db_op_free(op);
        }
        return;
    }
    deliver(db, op);
}

static void read_input(struct srm_db *db)
{
    if (!PQconsumeInput(db->conn)) {
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        return;
    }
    while (!db->closing && db->conn && db->inflight && !PQisBusy(db->conn)) {
        PGresult *res = PQgetResult(db->conn);
        if (res) {
            /* one statement gives one result; keep the first error if there are more */
            if (!db->inflight_res)
                db->inflight_res = res;
            else if (PQresultStatus(db->inflight_res) != PGRES_FATAL_ERROR) {
                PQclear(db->inflight_res);
                db->inflight_res = res;
            } else {
                PQclear(res);
            }
            continue;
        }
        finish_inflight(db);
        if (db->closing || !db->conn)
            return;
        deliver_notifications(db);
        pump(db);
    }
    deliver_notifications(db);
}

/* ---- Connecting ---- */

static void connected(struct srm_db *db)
{
    uv_timer_stop(&db->op_timer);
    if (PQsetnonblocking(db->conn, 1) != 0) {
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        return;
    }
    struct srm__db_op *op = srm__db_op_new("listen", "LISTEN " CHANNEL, SRM__DB_PARSE_NONE);
    if (!op) {
        lost(db, SRM_EDB_DOWN, "out of memory");
        return;
    }
    op->internal = true;
    db->phase = PH_LISTENING;
    q_push_front(&db->internal, op);
    pump(db);
}

static void connect_step(struct srm_db *db)
{
    switch (PQconnectPoll(db->conn)) {
    case PGRES_POLLING_READING:
        if (watch(db, PQsocket(db->conn), UV_READABLE, true) < 0)
            lost(db, SRM_EDB_DOWN, "cannot poll the connection socket");
        break;
    case PGRES_POLLING_WRITING:
        if (watch(db, PQsocket(db->conn), UV_WRITABLE, true) < 0)
            lost(db, SRM_EDB_DOWN, "cannot poll the connection socket");
        break;
    case PGRES_POLLING_OK:
        connected(db);
        break;
    default:
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        break;
    }
}

static void notice_to_debug(void *arg, const char *message)
{
    (void)arg;
    srm_log_debug("configuration database: %s", message);
}

static void connect_start(struct srm_db *db)
{
    db->phase = PH_CONNECTING;
    db->conn = PQconnectStart(db->conninfo);
    if (!db->conn) {
        lost(db, SRM_EDB_DOWN, "out of memory");
        return;
    }
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        lost(db, SRM_EDB_DOWN, PQerrorMessage(db->conn));
        return;
    }
    PQsetNoticeProcessor(db->conn, notice_to_debug, NULL);
    uv_timer_start(&db->op_timer, on_op_timeout, db->opts.connect_timeout_ms, 0);
    /* libpq: behave as if PQconnectPoll had returned PGRES_POLLING_WRITING */
    if (watch(db, PQsocket(db->conn), UV_WRITABLE, true) < 0)
        lost(db, SRM_EDB_DOWN, "cannot poll the connection socket");
}

/* ---- libuv callbacks ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pollh *p = h->data;
    struct srm_db *db = p->db;

    if (db->closing || p != db->poll)
        return;
    if (db->phase == PH_CONNECTING) {
        connect_step(db);
        return;
    }
    if (status < 0) {
        lost(db, SRM_EDB_DOWN, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        flush_and_watch(db);
        if (db->closing || !db->conn)
            return;
    }
    if (events & UV_READABLE)
        read_input(db);
}

static void on_retry(uv_timer_t *t)
{
    struct srm_db *db = t->data;
    if (!db->closing)
        connect_start(db);
}

static void on_op_timeout(uv_timer_t *t)
{
    struct srm_db *db = t->data;
    char reason[SRM_DB_ERRMSG_MAX];

    if (db->phase == PH_CONNECTING) {
        snprintf(reason, sizeof(reason), "no answer to the connection attempt within %u ms",
                 db->opts.connect_timeout_ms);
        lost(db, SRM_EDB_DOWN, reason);
    } else if (db->inflight) {
        snprintf(reason, sizeof(reason), "no answer within %u ms to %s", db->opts.op_timeout_ms,
                 db->inflight->what);
        lost(db, -ETIMEDOUT, reason);
    }
}

static void on_ping(uv_timer_t *t)
{
    struct srm_db *db = t->data;

    /* only when idle: any answer proves the connection, and op_timer bounds the wait */
    if (db->phase != PH_UP || db->inflight || db->reports.n || db->ops.n || db->internal.n)
        return;
    struct srm__db_op *op = srm__db_op_new("ping", "SELECT 1", SRM__DB_PARSE_NONE);
    if (!op)
        return;
    op->internal = true;
    q_push(&db->internal, op);
    pump(db);
}

static void on_defer(uv_timer_t *t)
{
    struct srm_db *db = t->data;
    struct srm__db_op *op;
    while (!db->closing && (op = q_pop(&db->done)))
        deliver(db, op);
}

/* ---- Cache writes, in the libuv thread pool ---- */

static void cache_start(struct srm_db *db, char *text);

static void cache_work(uv_work_t *req)
{
    struct srm_db *db = req->data;
    db->cache_status =
        srm__db_cache_write(db->cache_path, db->cache_text, db->cache_msg, sizeof(db->cache_msg));
}

static void cache_after(uv_work_t *req, int status)
{
    struct srm_db *db = req->data;
    free(db->cache_text);
    db->cache_text = NULL;
    db->cache_busy = false;
    if (db->closing) {
        maybe_finish_close(db);
        return;
    }
    if (status < 0) {
        db->cache_status = status;
        snprintf(db->cache_msg, sizeof(db->cache_msg), "cache write not run: %s",
                 uv_strerror(status));
    }
    if (db->opts.cache_cb)
        db->opts.cache_cb(db, db->cache_status, db->cache_status < 0 ? db->cache_msg : "",
                          db->opts.data);
    if (!db->closing && db->cache_next) {
        char *next = db->cache_next;
        db->cache_next = NULL;
        cache_start(db, next);
    }
}

static void cache_start(struct srm_db *db, char *text)
{
    db->cache_text = text;
    db->cache_busy = true;
    db->cache_work.data = db;
    int err = uv_queue_work(db->loop, &db->cache_work, cache_work, cache_after);
    if (err < 0) {
        free(db->cache_text);
        db->cache_text = NULL;
        db->cache_busy = false;
        if (db->opts.cache_cb)
            db->opts.cache_cb(db, err, "cannot queue the cache write", db->opts.data);
    }
}

static void cache_schedule(struct srm_db *db, const struct srm_db_config *cfg)
{
    char *text = srm__db_cache_serialize(cfg);
    if (!text) {
        if (db->opts.cache_cb)
            db->opts.cache_cb(db, -ENOMEM, "out of memory serializing the cache", db->opts.data);
        return;
    }
    if (db->cache_busy) {
        free(db->cache_next); /* only the newest snapshot matters */
        db->cache_next = text;
        return;
    }
    cache_start(db, text);
}

/* ---- Life cycle ---- */

int srm_db_new(uv_loop_t *loop, const struct srm_db_options *opts, struct srm_db **ret_db)
{
    if (!loop || !opts || !ret_db)
        return -EINVAL;
    struct srm_db *db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    db->loop = loop;
    db->opts = *opts;
    db->conninfo = strdup(opts->conninfo ? opts->conninfo : "");
    db->cache_path = opts->cache_path ? strdup(opts->cache_path) : NULL;
    if (!db->conninfo || (opts->cache_path && !db->cache_path)) {
        free(db->conninfo);
        free(db->cache_path);
        free(db);
        return -ENOMEM;
    }
    db->opts.conninfo = db->conninfo;
    db->opts.cache_path = db->cache_path;
#define DEFAULT(field, value)                                                                      \
    if (!db->opts.field)                                                                           \
    db->opts.field = (value)
    DEFAULT(connect_timeout_ms, 5000);
    DEFAULT(reconnect_min_ms, 100);
    DEFAULT(reconnect_max_ms, 5000);
    DEFAULT(op_timeout_ms, 60000);
    DEFAULT(ping_interval_ms, 5000);
    DEFAULT(report_queue_max, 4096);
#undef DEFAULT
    if (db->opts.reconnect_max_ms < db->opts.reconnect_min_ms)
        db->opts.reconnect_max_ms = db->opts.reconnect_min_ms;
    db->backoff_ms = db->opts.reconnect_min_ms;

    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)db << 16);
    snprintf(db->source, sizeof(db->source), "%016" PRIx64, id);
    db->rng = id | 1;

    uv_timer_t *timers[] = {&db->retry_timer, &db->op_timer, &db->ping_timer, &db->defer_timer};
    for (size_t i = 0; i < 4; i++) {
        uv_timer_init(loop, timers[i]); /* cannot fail */
        timers[i]->data = db;
        db->handles_open++;
    }
    *ret_db = db;
    return 0;
}

int srm_db_start(struct srm_db *db)
{
    if (db->closing)
        return -ECANCELED;
    if (db->phase != PH_NEW)
        return -EALREADY;
    db->phase = PH_BACKOFF;
    /* the first attempt runs from the loop, like every other */
    uv_timer_start(&db->retry_timer, on_retry, 0, 0);
    return 0;
}

bool srm_db_is_up(const struct srm_db *db)
{
    return db && db->phase == PH_UP;
}

size_t srm_db_reports_pending(const struct srm_db *db)
{
    return db->reports.n + (db->inflight && db->inflight->durable ? 1 : 0);
}

static void timer_closed(uv_handle_t *h)
{
    struct srm_db *db = h->data;
    db->handles_open--;
    maybe_finish_close(db);
}

static void maybe_finish_close(struct srm_db *db)
{
    if (db->handles_open > 0 || db->cache_busy)
        return;
    free(db->cache_next);
    free(db->conninfo);
    free(db->cache_path);
    if (db->close_cb)
        db->close_cb(db, db->close_data);
    free(db);
}

static void cancel(struct srm_db *db, struct srm__db_op *op, bool maybe_applied)
{
    srm__db_op_fail(op, -ECANCELED, "cancelled: the connection manager is closing%s",
                    maybe_applied ? "; the operation may or may not have been applied" : "");
    deliver(db, op);
}

void srm_db_close(struct srm_db *db, srm_db_close_cb *close_cb, void *data)
{
    struct srm__db_op *op;

    if (!db || db->closing)
        return;
    db->closing = true;
    db->close_cb = close_cb;
    db->close_data = data;

    while ((op = q_pop(&db->done)))
        deliver(db, op);
    if ((op = db->inflight)) {
        db->inflight = NULL;
        cancel(db, op, true);
    }
    while ((op = q_pop(&db->internal)))
        srm__db_op_free(op);
    while ((op = q_pop(&db->reports)))
        cancel(db, op, false);
    while ((op = q_pop(&db->ops)))
        cancel(db, op, false);

    drop_connection(db);
    uv_timer_t *timers[] = {&db->retry_timer, &db->op_timer, &db->ping_timer, &db->defer_timer};
    for (size_t i = 0; i < 4; i++) {
        uv_timer_stop(timers[i]);
        uv_close((uv_handle_t *)timers[i], timer_closed);
    }
}

/* ---- Operations ---- */

static int submit(struct srm_db *db, struct srm__db_op *op, srm_db_result_cb *cb, void *data)
{
    if (!op)
        return -ENOMEM;
    if (!db || db->closing) {
        srm__db_op_free(op);
        return db ? -ECANCELED : -EINVAL;
    }
    op->cb = cb;
    op->data = data;
    if (op->status < 0) {
        complete_later(db, op);
        return 0;
    }
    if (op->durable) {
        if (db->reports.n >= db->opts.report_queue_max) {
            struct srm__db_op *old = q_pop(&db->reports);
            srm__db_op_fail(old, -ENOBUFS,
                            "dropped: %zu node state reports were waiting for the database, the "
                            "most this node keeps; the history misses this transition",
                            db->opts.report_queue_max);
            complete_later(db, old);
        }
        q_push(&db->reports, op);
        pump(db);
        return 0;
    }
    if (db->reported == REP_DOWN) {
        srm__db_op_fail_down(op, db->down_reason, false);
        complete_later(db, op);
        return 0;
    }
    q_push(&db->ops, op);
    pump(db);
    return 0;
}

int srm_db_config_load(struct srm_db *db, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_config_load(), cb, data);
}

int srm_db_group_create(struct srm_db *db, const char *name, const char *description,
                        srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_group_create(name, description), cb, data);
}

int srm_db_group_update(struct srm_db *db, const char *name, const char *new_name,
                        const char *description, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_group_update(name, new_name, description), cb, data);
}

int srm_db_group_delete(struct srm_db *db, const char *name, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_group_delete(name), cb, data);
}

int srm_db_group_set_ha(struct srm_db *db, const char *name, bool enabled, srm_db_result_cb *cb,
                        void *data)
{
    return submit(db, srm__db_build_group_set_ha(name, enabled), cb, data);
}

int srm_db_node_add(struct srm_db *db, const char *name, const char *address, const char *group,
                    srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_node_add(name, address, group), cb, data);
}

int srm_db_node_update(struct srm_db *db, const char *name, const char *address,
                       srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_node_update(name, address), cb, data);
}

int srm_db_node_set_assignable(struct srm_db *db, const char *name, bool assignable,
                               srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_node_set_assignable(name, assignable), cb, data);
}

int srm_db_node_remove(struct srm_db *db, const char *name, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_node_remove(name), cb, data);
}

int srm_db_param_get(struct srm_db *db, const char *name, const char *node, srm_db_result_cb *cb,
                     void *data)
{
    return submit(db, srm__db_build_param_get(name, node), cb, data);
}

int srm_db_param_set(struct srm_db *db, const char *name, const char *node, const char *value,
                     srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_param_set(name, node, value), cb, data);
}

int srm_db_param_reset(struct srm_db *db, const char *name, const char *node, srm_db_result_cb *cb,
                       void *data)
{
    return submit(db, srm__db_build_param_reset(name, node), cb, data);
}

int srm_db_users_add(struct srm_db *db, const char *const *names, size_t n, const char *node,
                     srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_users_add(names, n, node), cb, data);
}

int srm_db_users_remove(struct srm_db *db, const char *const *names, size_t n, srm_db_result_cb *cb,
                        void *data)
{
    return submit(db, srm__db_build_users_remove(names, n), cb, data);
}

int srm_db_users_assign(struct srm_db *db, const char *const *names, size_t n, const char *node,
                        srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_users_assign(names, n, node), cb, data);
}

int srm_db_users_list(struct srm_db *db, const char *after, const char *node, bool unassigned_only,
                      unsigned limit, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_users_list(after, node, unassigned_only, limit), cb, data);
}

int srm_db_users_rebalance(struct srm_db *db, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_users_rebalance(), cb, data);
}

int srm_db_assignment_mode_set(struct srm_db *db, enum srm_db_assign_mode mode,
                               srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_assignment_mode_set(mode), cb, data);
}

int srm_db_node_state_report(struct srm_db *db, const struct srm_db_transition *t,
                             srm_db_result_cb *cb, void *data)
{
    if (!db)
        return -EINVAL;
    return submit(db, srm__db_build_node_state_report(t, db->source, ++db->seq), cb, data);
}

int srm_db_history_since(struct srm_db *db, int64_t after_id, unsigned limit, srm_db_result_cb *cb,
                         void *data)
{
    return submit(db, srm__db_build_history(after_id, false, limit), cb, data);
}

int srm_db_history_last(struct srm_db *db, unsigned n, srm_db_result_cb *cb, void *data)
{
    return submit(db, srm__db_build_history(0, true, n), cb, data);
}
