/*
 * srmd: one node's recovery manager, on one libuv loop.
 *
 * The node core (ha/core) decides; this file carries out its decisions and feeds it what
 * the node sees:
 *   - heartbeat/ (Corosync): the peer's reports, losses, membership and quorum;
 *   - the engines over local IPC (ha/ipc): critical services and their health, what they
 *     serve; srmd grants partitions under a lease it renews, and drains them on release;
 *   - the datastore: partition ownership, flipped with a new epoch on every acquisition;
 *     its health (a failing datastore is a Database Failure);
 *   - replication: each partition this node owns is a source, the peer's a sink; a
 *     takeback waits until the returning node has caught up;
 *   - the configuration database: parameters, the HA flag, the group; state reports.
 *
 * Partition ids are the nodes' ids in the configuration database (the users' home nodes).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "srm_core.h"
#include "srm_db.h"
#include "srm_ds.h"
#include "srm_error.h"
#include "srm_hb.h"
#include "srm_ipc.h"
#include "srm_log.h"
#include "srm_repl.h"
#include "srmd.h"
#include "srmd_internal.h"

/* ---- clock -------------------------------------------------------------------------- */

static uint64_t now_ms(struct srmd *d)
{
    return uv_now(d->loop);
}

/* ---- fault points (debug builds: files in the node's directory) -------------------------- */

/*
 * fault-acquire-delay-ms, fault-release-delay-ms (a number): acquisitions or releases take
 * that much longer, so that transient states can be observed; fault-takeover-fail,
 * fault-takeback-fail: the next takeover or takeback fails (the file is removed);
 * fault-internal-error: srmd hits an internal error (removed); fault-datastore: see ds.c.
 * Returns the file's number (0 if empty), or -1 when absent or fault points are off.
 */
long srmd_fault(struct srmd *d, const char *name, bool consume)
{
#ifdef SRM_FAULT_POINTS
    char *path = NULL;
    long v = -1;
    FILE *f;

    if (asprintf(&path, "%s/fault-%s", d->conf->dir, name) < 0)
        return -1;
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
        if (consume)
            unlink(path);
        srm_log_warn("fault point %s (%ld)", name, v);
    }
    free(path);
    return v;
#else
    (void)d;
    (void)name;
    (void)consume;
    return -1;
#endif
}

/* ---- partitions ----------------------------------------------------------------------- */

static uint32_t part_id(const struct srmd *d, unsigned part)
{
    return part == SRM_FSM_PART_OWN ? d->self_part : d->peer_part;
}

/* The partition's current epoch here (0 if it has none yet). */
static uint64_t local_epoch(struct srmd *d, uint32_t part)
{
    struct srm_ds_txn *txn;
    struct srm_ds_owner o = {0};

    if (srm_ds_txn_begin(d->ds, SRM_DS_TXN_RDONLY, &txn) < 0)
        return 0;
    if (srm_ds_owner_get(txn, part, &o) < 0)
        o.epoch = 0;
    srm_ds_txn_abort(txn);
    return o.epoch;
}

/*
 * A new epoch for a partition this node acquires: above what it has and above what the peer
 * last told (the peer advertises its epochs in its reports), with this node's id in the
 * low byte, so that the two nodes never pick the same one.
 */
static uint64_t next_epoch(struct srmd *d, uint32_t part)
{
    uint64_t seen = local_epoch(d, part);
    uint64_t peer = part == d->self_part ? d->peer_ext.epoch_of_mine : d->peer_ext.epoch_own;

    if (peer > seen)
        seen = peer;
    return ((seen >> 8) + 1) << 8 | (d->conf->node_id & 0xff);
}

static int take_ownership(struct srmd *d, uint32_t part, uint64_t *ret_epoch, uint64_t *ret_gen,
                          uint64_t *ret_applied)
{
    struct srm_ds_txn *txn;
    int r = srm_ds_txn_begin(d->ds, 0, &txn);

    if (r < 0)
        return r;
    r = srm_ds_owner_set(txn, part, d->conf->node_id, next_epoch(d, part), ret_epoch);
    /* How far the peer's writes to this partition had reached us when ownership moved. */
    if (r >= 0)
        r = srm_ds_log_pos(txn, part, d->conf->peer_id, ret_gen, ret_applied);
    if (r < 0) {
        srm_ds_txn_abort(txn);
        return r;
    }
    return srm_ds_txn_commit(txn);
}

/* The extension attached to reports: this node's epochs and status for the peer's view. */
static void publish_ext(struct srmd *d)
{
    struct srmd_ext e = {
        .epoch_own = local_epoch(d, d->self_part),
        .epoch_of_mine = local_epoch(d, d->peer_part),
        .users_active = d->counters.active,
        .users_inactive = d->counters.inactive,
        .services_up = d->svc_up,
        .services_total = d->svc_total,
    };
    uint8_t buf[SRMD_EXT_SIZE];

    srmd_ext_encode(&e, buf);
    if (d->core)
        srm_core_set_ext(d->core, now_ms(d), buf, sizeof(buf));
}

/* ---- the executor: acquire and release ------------------------------------------------------ */

static void op_finish(struct srmd *d, int err)
{
    bool was = d->op.busy;

    if (was && d->op.moving_since_ns && err == 0) {
        char ids[32] = "";
        if (d->op.parts & SRM_FSM_PART_OWN)
            snprintf(ids, sizeof(ids), "%" PRIu32, d->self_part);
        if (d->op.parts & SRM_FSM_PART_PEER)
            snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%" PRIu32, ids[0] ? "," : "",
                     d->peer_part);
        srm_log_notice("+partition-move %s %s in %.3f ms (ownership and engines)",
                       d->op.acquire ? "acquired" : "released", ids,
                       (double)(uv_hrtime() - d->op.moving_since_ns) / 1e6);
    }
    d->op.moving_since_ns = 0;
    uv_timer_stop(&d->op.timer);
    d->op.busy = false;
    d->op.waiting_catchup = false;
    d->op.ncmds = 0;
    if (was && d->core)
        srm_core_op_done(d->core, now_ms(d), err);
    srmd_core_kick(d);
}

static void grant_all(struct srmd *d, uint32_t part, uint64_t epoch)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;

    if (srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return;
    if (n > SRMD_CLIENTS_MAX)
        n = SRMD_CLIENTS_MAX;
    for (size_t i = 0; i < n; i++) {
        uint32_t cmd;
        if (!clients[i].hello)
            continue;
        if (srm_ipc_server_serve(d->ipc, clients[i].id, part, epoch, d->conf->lease_ms,
                                 part == d->self_part ? d->conf->node_name : d->conf->peer_name,
                                 d->conf->drain_ms, &cmd) == 0 &&
            d->op.busy && d->op.ncmds < SRMD_CMDS_MAX)
            d->op.cmds[d->op.ncmds++] = cmd;
    }
}

static void release_all(struct srmd *d, uint32_t part)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;

    if (srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return;
    if (n > SRMD_CLIENTS_MAX)
        n = SRMD_CLIENTS_MAX;
    for (size_t i = 0; i < n; i++) {
        uint32_t cmd;
        if (!clients[i].hello)
            continue;
        if (srm_ipc_server_release(
                d->ipc, clients[i].id, part, d->conf->drain_ms, (uint32_t)d->params.relogin_lower,
                (uint32_t)d->params.relogin_upper, d->conf->drain_ms + 1000, &cmd) == 0 &&
            d->op.ncmds < SRMD_CMDS_MAX)
            d->op.cmds[d->op.ncmds++] = cmd;
    }
}

static void op_timeout_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;

    if (!d->op.busy)
        return;
    if (d->op.waiting_catchup) {
        srm_log_warn("takeback: the peer's writes to our users did not catch up within %u ms; "
                     "taking them back anyway (replication resumes from the peer)",
                     d->conf->catchup_ms);
        d->op.waiting_catchup = false;
        srmd_op_start(d);
        return;
    }
    if (d->op.acquire) {
        srm_log_warn("engines did not confirm serving partitions %u in time", d->op.parts);
        op_finish(d, 0); /* ownership moved; engines that confirm later serve them */
    } else {
        /* A release does not fail: engines that did not drain in time are disconnected,
         * which stops them serving (libsrm stops on the lost connection's lease). */
        srm_log_warn("engines did not drain partitions %u in time: disconnecting them",
                     d->op.parts);
        for (size_t i = 0; i < d->op.ncmds; i++)
            srmd_ipc_disconnect_cmd(d, d->op.cmds[i]);
        op_finish(d, 0);
    }
}

void srmd_op_continue(struct srmd *d)
{
    unsigned parts = d->op.parts;
    int r = 0;

    d->op.moving_since_ns = uv_hrtime();
    if (d->op.acquire) {
        for (unsigned p = SRM_FSM_PART_OWN; p <= SRM_FSM_PART_PEER; p <<= 1) {
            uint64_t epoch = 0, gen = 0, applied = 0;
            uint32_t id = part_id(d, p);
            if (!(parts & p))
                continue;
            r = take_ownership(d, id, &epoch, &gen, &applied);
            if (r < 0) {
                srm_log_error("taking ownership of partition %" PRIu32 " failed: %s", id,
                              srm_strerror(r));
                break;
            }
            srm_log_notice("+partition-acquired %" PRIu32 " epoch %" PRIu64
                           " (the peer's writes applied through seq %" PRIu64 ", log gen %" PRIu64
                           ")",
                           id, epoch, applied, gen);
            d->counters.acquisitions++;
            d->repl_role[p == SRM_FSM_PART_OWN ? 0 : 1] = SRM_REPL_ROLE_SOURCE;
            srm_repl_partition_set(d->repl, id, SRM_REPL_ROLE_SOURCE, epoch);
            grant_all(d, id, epoch);
        }
        publish_ext(d);
        if (r < 0) {
            op_finish(d, r);
            return;
        }
    } else {
        for (unsigned p = SRM_FSM_PART_OWN; p <= SRM_FSM_PART_PEER; p <<= 1) {
            if (!(parts & p))
                continue;
            srm_log_notice("+partition-released %" PRIu32, part_id(d, p));
            release_all(d, part_id(d, p));
        }
    }
    if (d->op.ncmds == 0) {
        op_finish(d, 0);
        return;
    }
    uv_timer_start(&d->op.timer, op_timeout_cb, d->conf->drain_ms + 2000, 0);
}

static void op_delay_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;

    if (d->op.busy)
        srmd_op_continue(d);
}

/* Starts the operation, after the delay a fault point asks for; a takeover or takeback the
 * fault points make fail fails here. */
void srmd_op_start(struct srmd *d)
{
    enum srm_fsm_state st = srm_core_fsm(d->core)->state;
    long delay = srmd_fault(d, d->op.acquire ? "acquire-delay-ms" : "release-delay-ms", false);

    if (d->op.acquire) {
        bool takeover = st == SRM_FSM_STATE_TAKING_OVER || st == SRM_FSM_STATE_BACKUP_ACTIVATED;
        if ((takeover && srmd_fault(d, "takeover-fail", true) >= 0) ||
            (st == SRM_FSM_STATE_TAKING_BACK && srmd_fault(d, "takeback-fail", true) >= 0)) {
            srm_log_error("moving users failed (fault point)");
            op_finish(d, -EIO);
            return;
        }
    }
    if (delay > 0) {
        uv_timer_start(&d->op.timer, op_delay_cb, (uint64_t)delay, 0);
        return;
    }
    srmd_op_continue(d);
}

static void catchup_poll_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;

    if (!d->op.busy || !d->op.waiting_catchup)
        return;
    if (srm_repl_partition_caught_up(d->repl, d->self_part) == 1 ||
        now_ms(d) >= d->op.catchup_deadline) {
        if (now_ms(d) >= d->op.catchup_deadline)
            srm_log_warn("takeback: replication of our users not caught up after %u ms; "
                         "taking them back anyway",
                         d->conf->catchup_ms);
        d->op.waiting_catchup = false;
        uv_timer_stop(&d->catchup_timer);
        srmd_op_start(d);
    }
}

static void acquire_cb(struct srm_core *core, unsigned parts, void *data)
{
    struct srmd *d = data;
    const struct srm_fsm *f = srm_core_fsm(core);

    d->op.busy = true;
    d->op.acquire = true;
    d->op.parts = parts;
    d->op.ncmds = 0;
    /* Out of sight, act only on quorum as Corosync says it now, not as last reported. */
    if (f->peer_status != SRM_FSM_PEER_VISIBLE && !srm_hb_quorate(d->hb)) {
        srm_log_warn("not acquiring partitions %u: this node has no quorum", parts);
        d->op.busy = false;
        srm_core_op_done(core, now_ms(d), -EAGAIN);
        return;
    }
    /* Taking our users back from a peer in sight that served them after us (it has a newer
     * epoch for them): wait until what it wrote for them has reached us, so that a fallback
     * loses nothing. */
    if ((parts & SRM_FSM_PART_OWN) && f->peer_status == SRM_FSM_PEER_VISIBLE &&
        d->peer_ext.epoch_of_mine > local_epoch(d, d->self_part) &&
        srm_repl_partition_caught_up(d->repl, d->self_part) == 0) {
        d->op.waiting_catchup = true;
        d->op.catchup_deadline = now_ms(d) + d->conf->catchup_ms;
        srm_log_notice("takeback: waiting for the peer's writes to our users to catch up");
        uv_timer_start(&d->catchup_timer, catchup_poll_cb, 50, 50);
        return;
    }
    srmd_op_start(d);
}

static void release_cb(struct srm_core *core, unsigned parts, void *data)
{
    struct srmd *d = data;

    (void)core;
    d->op.busy = true;
    d->op.acquire = false;
    d->op.parts = parts;
    d->op.ncmds = 0;
    srmd_op_start(d);
}

void srmd_ipc_ack(struct srmd *d, uint32_t cmd_id, int result)
{
    for (size_t i = 0; i < d->op.ncmds; i++) {
        if (d->op.cmds[i] != cmd_id)
            continue;
        if (result < 0)
            srm_log_warn("engine answered command %" PRIu32 ": %s", cmd_id, srm_strerror(result));
        d->op.cmds[i] = d->op.cmds[--d->op.ncmds];
        if (d->op.ncmds == 0 && d->op.busy && !d->op.waiting_catchup)
            op_finish(d, 0);
        return;
    }
}

/* ---- the core's other callbacks ----------------------------------------------------------- */

static void send_cb(struct srm_core *core, const void *payload, size_t len, void *data)
{
    struct srmd *d = data;
    int r;

    (void)core;
    r = srm_hb_send(d->hb, now_ms(d), payload, len);
    if (r < 0 && r != SRM_EDISCONNECTED)
        srm_log_warn("sending a report to the peer failed: %s", srm_strerror(r));
    srmd_hb_rearm(d);
}

static void services_cb(struct srm_core *core, bool start, void *data)
{
    struct srmd *d = data;

    (void)core;
    srm_log_notice("%s critical services", start ? "+starting" : "-stopping");
    srmd_services_command(d, start);
}

static void step_cb(struct srm_core *core, enum srm_fsm_event_type type, int rc,
                    const struct srm_fsm_step *st, void *data)
{
    struct srmd *d = data;
    char effects[256];

    (void)core;
    if (rc == SRM_EREFUSED) {
        srm_log_debug("event %s refused in %s: %s", srm_fsm_event_name(type),
                      srm_fsm_state_name(st->from), st->why);
        return;
    }
    if (rc < 0) {
        srm_log_error("event %s: %s", srm_fsm_event_name(type), srm_strerror(rc));
        return;
    }
    if (st->effects & SRM_FSM_EFFECT(PERSIST)) {
        d->st.kind = SRM_FSM_START_RESUME;
        d->st.state = st->to;
        d->st.reason = st->to_reason;
        d->st.epoch = srm_core_fsm(core)->epoch;
        d->st.announced = false;
        int r = srmd_state_save(d->conf->dir, &d->st);
        if (r < 0)
            srm_log_error("persisting the state to %s/state.json failed: %s", d->conf->dir,
                          srm_strerror(r));
    }
    if (st->from == st->to && st->from_reason == st->to_reason)
        return;
    d->counters.transitions++;
    if (st->to == SRM_FSM_STATE_TAKING_OVER || st->to == SRM_FSM_STATE_BACKUP_ACTIVATED)
        d->counters.failovers[st->to_reason]++;
    srm_fsm_effects_format(st->effects, effects, sizeof(effects));
    srm_log_notice("+state %s / %s -> %s / %s (%s: %s) [%s]", srm_fsm_state_name(st->from),
                   srm_fsm_reason_name(st->from_reason), srm_fsm_state_name(st->to),
                   srm_fsm_reason_name(st->to_reason), srm_fsm_event_name(type), st->why, effects);
    if (st->effects & SRM_FSM_EFFECT(ALARM_RAISE))
        srm_log_warn("+alarm %s / %s", srm_fsm_state_name(st->to),
                     srm_fsm_reason_name(st->to_reason));
    if (st->effects & SRM_FSM_EFFECT(ALARM_CLEAR))
        srm_log_notice("-alarm");
    srmd_db_report_state(d, st, type);
    srmd_history_add(d, st, type);
    srmd_admin_transition(d, st);
}

static void lease_cb(struct srm_core *core, void *data)
{
    struct srmd *d = data;

    (void)core;
    srm_log_notice("the peer heard this incarnation and claims none of our users: renewing the "
                   "engines' lease");
    d->lease_pending = false;
    srmd_lease_renew(d);
}

/* ---- the core's timer ------------------------------------------------------------------------ */

static void core_timer_cb(uv_timer_t *t)
{
    srmd_core_kick(t->data);
}

/*
 * Replication follows what this node serves: a partition it serves (or is acquiring) it
 * sends, any other it receives. Whatever changed the serving set (a release, engines that
 * stopped by themselves, services stopped), the roles follow here.
 */
static void sync_roles(struct srmd *d)
{
    unsigned mine = srm_core_serving(d->core) | srm_core_acquiring(d->core);

    for (unsigned p = SRM_FSM_PART_OWN; p <= SRM_FSM_PART_PEER; p <<= 1) {
        int k = p == SRM_FSM_PART_OWN ? 0 : 1;
        enum srm_repl_role role = (mine & p) ? SRM_REPL_ROLE_SOURCE : SRM_REPL_ROLE_SINK;
        if (d->repl_role[k] == role)
            continue;
        uint32_t id = part_id(d, p);
        d->repl_role[k] = role;
        srm_repl_partition_set(d->repl, id, role,
                               role == SRM_REPL_ROLE_SOURCE ? local_epoch(d, id) : 0);
    }
}

void srmd_core_kick(struct srmd *d)
{
    uint64_t next, now = now_ms(d);

    if (!d->core)
        return;
    if (d->core_started && d->repl)
        sync_roles(d);
    next = srm_core_tick(d->core, now);
    if (next == UINT64_MAX)
        uv_timer_stop(&d->core_timer);
    else
        uv_timer_start(&d->core_timer, core_timer_cb, next > now ? next - now : 0, 0);
}

/* ---- the heartbeat --------------------------------------------------------------------------- */

static void hb_poll_cb(uv_poll_t *p, int status, int events)
{
    struct srmd *d = p->data;
    int fd;

    (void)events;
    if (status < 0)
        return;
    uv_fileno((uv_handle_t *)p, &fd);
    srm_hb_dispatch(d->hb, fd, now_ms(d));
    srmd_hb_rearm(d);
}

static void hb_timer_cb(uv_timer_t *t)
{
    srmd_hb_rearm(t->data);
}

void srmd_hb_rearm(struct srmd *d)
{
    uint64_t next = 0, now = now_ms(d);

    if (srm_hb_tick(d->hb, now, &next) < 0)
        next = now + 1000;
    uv_timer_start(&d->hb_timer, hb_timer_cb, next > now ? next - now : 0, 0);
}

/* Says when Corosync's ring change makes the keepalive timeouts in force longer than the
 * parameters (once per value). */
void srmd_hb_timing_check(struct srmd *d)
{
    uint32_t ka = 0, init = 0, ring = 0;
    uint32_t want_ka = (uint32_t)d->params.keepalive_timeout * 1000;
    uint32_t want_init = (uint32_t)d->params.init_keepalive_timeout * 1000;

    srm_hb_timeouts(d->hb, &ka, &init, &ring);
    if (ring == 0 || (ka <= want_ka && init <= want_init) || ka == d->hb_raised_ms)
        return;
    d->hb_raised_ms = ka;
    srm_log_warn("-keepalive-timeout: keepalive_timeout %u ms / init_keepalive_timeout %u ms are "
                 "shorter than a Corosync membership change (token + consensus: %u ms) plus a "
                 "keepalive interval and 500 ms; using %u ms / %u ms",
                 want_ka, want_init, ring, ka, init);
}

static void hb_fds_cb(struct srm_hb *hb, const int *fds, size_t nfds, void *data)
{
    struct srmd *d = data;

    (void)hb;
    if (nfds > 0)
        srmd_hb_timing_check(d);
    for (size_t i = 0; i < d->n_hb_polls; i++) {
        uv_poll_stop(&d->hb_polls[i]);
        uv_close((uv_handle_t *)&d->hb_polls[i], NULL);
    }
    d->n_hb_polls = 0;
    for (size_t i = 0; i < nfds && i < SRM_HB_FDS_MAX; i++) {
        uv_poll_init(d->loop, &d->hb_polls[i], fds[i]);
        d->hb_polls[i].data = d;
        uv_poll_start(&d->hb_polls[i], UV_READABLE, hb_poll_cb);
        d->n_hb_polls++;
    }
}

static void hb_keepalive_cb(struct srm_hb *hb, const struct srm_hb_keepalive *ka, void *data)
{
    struct srmd *d = data;
    bool back = d->peer_back_pending;

    (void)hb;
    d->peer_back_pending = false;
    if (!d->core)
        return;
    if (srm_core_peer_report(d->core, now_ms(d), ka->incarnation, back, ka->payload, ka->len) < 0) {
        d->counters.bad_reports++;
        return;
    }
    size_t len;
    const void *ext = srm_core_peer_ext(d->core, &len);
    srmd_ext_decode(ext, len, &d->peer_ext);
    srmd_core_kick(d);
}

static void hb_back_cb(struct srm_hb *hb, const struct srm_hb_peer_back *back, void *data)
{
    struct srmd *d = data;

    (void)hb;
    srm_log_notice("+peer-back %s (%s)", d->conf->peer_name, srm_hb_back_name(back->kind));
    d->peer_back_pending = back->kind != SRM_HB_BACK_FIRST;
}

static void hb_lost_cb(struct srm_hb *hb, const struct srm_hb_peer_lost *lost, void *data)
{
    struct srmd *d = data;
    static const enum srm_fsm_loss map[] = {
        [SRM_HB_LOSS_NODE] = SRM_FSM_LOSS_NODE,
        [SRM_HB_LOSS_PROCESS] = SRM_FSM_LOSS_PROCESS,
        [SRM_HB_LOSS_TIMEOUT] = SRM_FSM_LOSS_TIMEOUT,
    };

    (void)hb;
    srm_log_warn("-peer-lost %s (%s%s), this node %s quorum", d->conf->peer_name,
                 srm_hb_loss_name(lost->kind), lost->during_init ? ", during initialization" : "",
                 lost->quorate ? "has" : "has no");
    d->counters.peer_lost[lost->kind]++;
    if (d->core) {
        srm_core_peer_lost(d->core, now_ms(d), map[lost->kind]);
        srmd_core_kick(d);
    }
}

static void hb_membership_cb(struct srm_hb *hb, bool peer_present, bool quorate, void *data)
{
    struct srmd *d = data;

    (void)hb;
    srm_log_info("membership: peer %s, %squorate", peer_present ? "present" : "absent",
                 quorate ? "" : "not ");
    if (d->core) {
        srm_core_membership(d->core, now_ms(d), peer_present, quorate);
        srmd_core_kick(d);
    }
}

static void hb_quorum_cb(struct srm_hb *hb, bool quorate, void *data)
{
    struct srmd *d = data;

    srm_log_notice("%squorum", quorate ? "+" : "-");
    /* Membership changes bring quorum with the peer's presence; a lost connection to
     * corosync only says quorate false. */
    if (!quorate && !srm_hb_connected(hb) && d->core) {
        srm_core_membership(d->core, now_ms(d), false, false);
        srmd_core_kick(d);
    }
}

static void hb_error_cb(struct srm_hb *hb, int err, void *data)
{
    (void)hb;
    (void)data;
    srm_log_error("Corosync: %s; retrying", srm_strerror(err));
}

/* ---- leases, stalls ---------------------------------------------------------------------------
 */

void srmd_lease_renew(struct srmd *d)
{
    struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
    size_t n = 0;

    if (d->lease_pending || !d->ipc)
        return;
    if (srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) < 0)
        return;
    if (n > SRMD_CLIENTS_MAX)
        n = SRMD_CLIENTS_MAX;
    for (size_t i = 0; i < n; i++)
        if (clients[i].hello)
            srm_ipc_server_lease(d->ipc, clients[i].id, d->conf->lease_ms);
    d->lease_renewed_at = now_ms(d);
}

static void lease_timer_cb(uv_timer_t *t)
{
    srmd_lease_renew(t->data);
}

static void resume_done_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;

    if (d->core) {
        srm_core_resume_done(d->core, now_ms(d));
        srmd_core_kick(d);
    }
}

/* A loop gap longer than stall_ms: this process was stopped, swapped out or blocked. */
static void stall_timer_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;
    uint64_t now = now_ms(d);

    if (d->stall_last && now - d->stall_last > d->conf->stall_ms && d->core) {
        uint64_t gap = now - d->stall_last;
        unsigned serving = srm_core_serving(d->core);
        srm_log_warn("-stall: the loop did not run for %" PRIu64 " ms", gap);
        d->counters.stalls++;
        /* The lease srmd could not renew has run out if the stall outlasted it. */
        if (now - d->lease_renewed_at >= d->conf->lease_ms)
            serving = 0;
        srm_hb_resume(d->hb, now);
        srm_core_resume(d->core, now, serving);
        /* Let the loop deliver what queued up during the stall, then act. */
        uv_timer_start(&d->resume_timer, resume_done_cb, 50, 0);
    }
    d->stall_last = now;
    if (d->core && srmd_fault(d, "internal-error", true) >= 0) {
        srm_log_error("internal error (fault point)");
        srm_core_internal_error(d->core, now);
        srmd_core_kick(d);
    }
}

/* ---- start and stop ---------------------------------------------------------------------------
 */

static void signal_cb(uv_signal_t *s, int signum)
{
    struct srmd *d = s->data;

    if (signum == SIGHUP) {
        srm_log_notice("SIGHUP: announced restart");
        d->restart = true;
    } else {
        srm_log_notice("%s: stopping", strsignal(signum));
    }
    srmd_stop(d);
}

static void walk_close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void srmd_stop(struct srmd *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    if (d->restart && d->hb) {
        /* The peer waits for the keepalive timeout instead of taking over; the engines
         * keep serving meanwhile (their lease is extended to just inside that timeout). */
        srm_hb_announce_restart(d->hb, now_ms(d));
        uint32_t extended = (uint32_t)d->params.keepalive_timeout * 1000;
        extended = extended > 6000 ? extended - 5000 : d->conf->lease_ms;
        struct srm_ipc_client_info clients[SRMD_CLIENTS_MAX];
        size_t n = 0;
        if (srm_ipc_server_clients(d->ipc, clients, SRMD_CLIENTS_MAX, &n) == 0)
            for (size_t i = 0; i < n && i < SRMD_CLIENTS_MAX; i++)
                srm_ipc_server_lease(d->ipc, clients[i].id, extended);
        d->st.announced = true;
        if (d->core)
            srmd_state_save(d->conf->dir, &d->st);
    }
    srmd_admin_stop(d);
    srmd_db_stop(d);
    if (d->repl)
        srm_repl_close(d->repl, NULL, NULL);
    d->repl = NULL;
    if (d->ipc)
        srm_ipc_server_close(d->ipc, NULL, NULL);
    d->ipc = NULL;
    srmd_services_stop(d);
    uv_walk(d->loop, walk_close_cb, NULL);
}

int srmd_run(const struct srmd_conf *conf)
{
    struct srmd *d = calloc(1, sizeof(*d));
    int r;
    char err[512];

    if (!d)
        return 1;
    d->conf = conf;
    d->loop = uv_default_loop();
    uv_timer_t *timers[] = {&d->hb_timer,     &d->core_timer,  &d->lease_timer,   &d->stall_timer,
                            &d->resume_timer, &d->start_timer, &d->catchup_timer, &d->ds_timer};
    memcpy(d->timers, timers, sizeof(timers));
    if (getrandom(&d->incarnation, sizeof(d->incarnation), 0) != sizeof(d->incarnation))
        d->incarnation = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    d->incarnation |= 1;
    for (size_t i = 0; i < sizeof(d->timers) / sizeof(d->timers[0]); i++) {
        uv_timer_init(d->loop, d->timers[i]);
        d->timers[i]->data = d;
    }
    uv_timer_init(d->loop, &d->op.timer);
    d->op.timer.data = d;

    if (mkdir(conf->dir, 0755) < 0 && errno != EEXIST) {
        srm_log_error("cannot create %s: %s", conf->dir, strerror(errno));
        return 1;
    }
    r = srmd_state_load(conf->dir, &d->st);
    if (r < 0) {
        srm_log_error("reading %s/state.json: %s", conf->dir, srm_strerror(r));
        return 1;
    }
    if (d->st.kind == SRM_FSM_START_CORRUPT)
        srm_log_error("%s/state.json cannot be read: starting in Unknown (recover the group)",
                      conf->dir);

    /* The cluster configuration: from the database, else the cache (and say so). */
    r = srmd_db_start(d, err, sizeof(err));
    if (r < 0) {
        srm_log_error("%s", err);
        return 1;
    }

    r = srmd_datastore_open(d, err, sizeof(err));
    if (r < 0) {
        srm_log_error("%s", err);
        return 1;
    }
    r = srmd_ipc_start(d, err, sizeof(err));
    if (r < 0) {
        srm_log_error("%s", err);
        return 1;
    }
    r = srmd_services_start(d);
    if (r < 0)
        return 1;

    struct srm_repl_config rc = {
        .cluster = conf->cluster,
        .node_id = conf->node_id,
        .peer_id = conf->peer_id,
        .peer_name = conf->peer_name,
        .ca_file = conf->tls_ca,
        .cert_file = conf->tls_cert,
        .key_file = conf->tls_key,
        .listen_host = conf->repl_listen_host,
        .listen_port = conf->repl_listen_port,
        .peer_host = conf->repl_peer_host,
        .peer_port = conf->repl_peer_port,
        .ds = d->ds,
        .event_cb = srmd_repl_event_cb,
        .event_data = d,
    };
    r = srm_repl_new(d->loop, &rc, &d->repl);
    if (r == 0)
        r = srm_repl_start(d->repl);
    if (r < 0) {
        srm_log_error("replication on %s:%u: %s", conf->repl_listen_host, conf->repl_listen_port,
                      srm_strerror(r));
        return 1;
    }

    struct srm_hb_callbacks hcb = {
        .keepalive_cb = hb_keepalive_cb,
        .peer_back_cb = hb_back_cb,
        .peer_lost_cb = hb_lost_cb,
        .quorum_cb = hb_quorum_cb,
        .error_cb = hb_error_cb,
        .fds_cb = hb_fds_cb,
        .membership_cb = hb_membership_cb,
    };
    char group[SRM_HB_GROUP_MAX + 1];
    srmd_cpg_group_name(conf, group, sizeof(group));
    struct srm_hb_options ho = {
        .group = group,
        .node_id = conf->node_id,
        .node_name = conf->node_name,
        .peer_node_id = conf->peer_id,
        .keepalive_interval_ms = (uint32_t)d->params.keepalive_interval * 1000,
        .keepalive_timeout_ms = (uint32_t)d->params.keepalive_timeout * 1000,
        .init_timeout_ms = (uint32_t)d->params.init_keepalive_timeout * 1000,
        .incarnation = d->incarnation,
        .callbacks = &hcb,
        .data = d,
    };
    r = srm_hb_new(&ho, &d->hb);
    if (r < 0) {
        srm_log_error("heartbeat: %s", srm_strerror(r));
        return 1;
    }

    struct srm_core_io io = {
        .send_cb = send_cb,
        .acquire_cb = acquire_cb,
        .release_cb = release_cb,
        .services_cb = services_cb,
        .step_cb = step_cb,
        .lease_cb = lease_cb,
        .data = d,
    };
    struct srm_core_params cp;
    srmd_core_params(d, &cp);
    r = srm_core_new(&cp, &io, d->incarnation, &d->core);
    if (r < 0) {
        srm_log_error("node core: %s", srm_strerror(r));
        return 1;
    }

    r = srm_hb_start(d->hb, now_ms(d));
    if (r < 0)
        srm_log_error("Corosync: %s; retrying", srm_strerror(r));

    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&d->sig_int, signal_cb, SIGINT);
    uv_signal_start(&d->sig_hup, signal_cb, SIGHUP);

    r = srmd_admin_start(d, err, sizeof(err));
    if (r < 0) {
        srm_log_error("%s", err);
        return 1;
    }

    /* Give engines that outlived the previous srmd a moment to reconnect and say what they
     * serve, then start the machine. */
    uv_timer_start(&d->start_timer, srmd_core_start_cb, 1000, 0);
    uv_timer_start(&d->lease_timer, lease_timer_cb, conf->lease_ms / 4, conf->lease_ms / 4);
    uv_timer_start(&d->stall_timer, stall_timer_cb, 200, 200);
    srmd_hb_rearm(d);

    srm_log_notice("srmd %s (group %s, peer %s) running", conf->node_name, conf->group,
                   conf->peer_name);
    uv_run(d->loop, UV_RUN_DEFAULT);
    uv_run(d->loop, UV_RUN_DEFAULT); /* close callbacks */
    srm_hb_free(d->hb);
    srm_core_free(d->core);
    srmd_datastore_close(d);
    srmd_admin_free(d);
    srmd_db_free(d);
    uv_loop_close(d->loop);
    bool restart = d->restart;
    free(d);
    return restart ? SRMD_EXIT_RESTART : 0;
}

void srmd_core_start_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;
    struct srm_core_start s = {
        .kind = d->st.kind,
        .state = d->st.state,
        .reason = d->st.reason,
        .epoch = d->st.epoch,
        .after_crash = d->st.kind == SRM_FSM_START_RESUME && !d->st.announced,
        .ha_enabled = d->ha_enabled,
        .quorate = srm_hb_quorate(d->hb),
        .peer_present = srm_hb_peer_in_view(d->hb),
        .db_ok = d->ds_ok,
        .svc = d->svc_state,
        .svc_down_since_ms = d->svc_down_since,
        .serving = srmd_engines_serving(d),
    };
    int r;

    d->lease_pending = s.after_crash;
    if (!d->lease_pending)
        srmd_lease_renew(d);
    r = srm_core_start(d->core, now_ms(d), &s);
    if (r < 0) {
        srm_log_error("starting the state machine: %s", srm_strerror(r));
        srmd_stop(d);
        return;
    }
    d->core_started = true;
    publish_ext(d);
    srmd_core_kick(d);
}
