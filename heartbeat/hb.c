/*
 * Heartbeat handle: peer tracking, timers, sending and reconnection. Corosync itself is
 * reached only through hb_corosync.c; the clock only through the callers' now_ms.
 */
#include "internal.h"

#include "srm_error.h"
#include "srm_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *const loss_names[] = {
#define SRM__HB_NAME(name, str) str,
    SRM_HB_LOSS_MAP(SRM__HB_NAME)};
static const char *const back_names[] = {SRM_HB_BACK_MAP(SRM__HB_NAME)};
static const char *const peer_names[] = {SRM_HB_PEER_MAP(SRM__HB_NAME)
#undef SRM__HB_NAME
};

const char *srm_hb_loss_name(enum srm_hb_loss kind)
{
    return (unsigned)kind < SRM_HB_LOSS_MAX ? loss_names[kind] : "?";
}

const char *srm_hb_back_name(enum srm_hb_back kind)
{
    return (unsigned)kind < SRM_HB_BACK_MAX ? back_names[kind] : "?";
}

const char *srm_hb_peer_state_name(enum srm_hb_peer_state state)
{
    return (unsigned)state < SRM_HB_PEER_MAX ? peer_names[state] : "?";
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/*
 * A Corosync call failed in a way that leaves the handles unusable. Only recorded: inside
 * cpg_dispatch the handles must not be finalized, and srm_hb_send() runs no callbacks.
 * handle_lost() acts on it where both are allowed (dispatch and tick).
 */
static void connection_failed(struct srm_hb *hb, int err)
{
    if (hb->lost_err == 0)
        hb->lost_err = err;
}

/* ------------------------------------------------------------------ callbacks out */

/* After srm_hb_announce_restart() the handle is silent. */
static bool quiet(const struct srm_hb *hb)
{
    return hb->leaving;
}

static void set_quorate(struct srm_hb *hb, bool quorate)
{
    if (hb->quorate == quorate)
        return;
    hb->quorate = quorate;
    srm_log_debug("hb %s: quorate %d", hb->group, quorate);
    if (!quiet(hb) && hb->cb.quorum_cb)
        hb->cb.quorum_cb(hb, quorate, hb->data);
}

/* The synchronous quorum query behind the "quorum before loss" rule (srm_hb.h). */
static void refresh_quorum(struct srm_hb *hb)
{
    bool quorate = false;
    int r;

    if (!hb->connected) {
        set_quorate(hb, false);
        return;
    }
    r = srm__hb_cs_quorate(hb, &quorate);
    if (r == SRM_EDISCONNECTED) {
        connection_failed(hb, r);
        quorate = false;
    } else if (r < 0) {
        return; /* transient: keep what the notifications said */
    }
    set_quorate(hb, quorate);
}

static void emit_fds(struct srm_hb *hb)
{
    int fds[SRM_HB_FDS_MAX];
    int n = srm_hb_fds(hb, fds);

    if (!quiet(hb) && hb->cb.fds_cb)
        hb->cb.fds_cb(hb, fds, (size_t)n, hb->data);
}

/* ------------------------------------------------------------------ connection */

static int flush_send(struct srm_hb *hb, bool may_dispatch);

static void connection_lost(struct srm_hb *hb, int err)
{
    if (!hb->connected)
        return;
    srm_log_debug("hb %s: connection to corosync lost: %s", hb->group, srm_strerror(err));
    /* srm_hb_fds() is empty from here. Without corosync this node cannot claim quorum: say
     * so first; then let the caller stop polling, before the descriptors close. */
    hb->connected = false;
    set_quorate(hb, false);
    emit_fds(hb);
    srm__hb_cs_disconnect(hb);
    hb->joined = false;
    hb->stats.disconnects++;
    hb->next_connect = hb->now + hb->reconnect_ms;
    if (!hb->error_reported) {
        hb->error_reported = true;
        if (!quiet(hb) && hb->cb.error_cb)
            hb->cb.error_cb(hb, SRM_EDISCONNECTED, hb->data);
    }
}

/* Returns true when a recorded connection failure was acted on. */
static bool handle_lost(struct srm_hb *hb)
{
    int err = hb->lost_err;

    if (err == 0)
        return false;
    hb->lost_err = 0;
    connection_lost(hb, err);
    return true;
}

static int do_dispatch(struct srm_hb *hb, int fd)
{
    int r;

    hb->dispatching = true;
    r = srm__hb_cs_dispatch(hb, fd);
    hb->dispatching = false;
    /* Any dispatch failure (but "try again") leaves the handle unusable: reconnect. */
    if (r < 0 && r != -EAGAIN)
        connection_failed(hb, r);
    return handle_lost(hb) ? SRM_EDISCONNECTED : 0;
}

static void try_join(struct srm_hb *hb)
{
    int r = srm__hb_cs_join(hb);

    if (r == -EAGAIN) {
        hb->next_join = hb->now + SRM__HB_RETRY_MS;
        return;
    }
    if (r < 0) {
        connection_failed(hb, r);
        return;
    }
    hb->joined = true;
    /* Announce ourselves at once: the peer leaves its initialization sooner. */
    hb->send_pending = true;
    flush_send(hb, false);
}

static int try_connect(struct srm_hb *hb)
{
    int r = srm__hb_cs_connect(hb);

    if (r < 0) {
        srm_log_debug("hb %s: cannot connect to corosync: %s", hb->group, srm_strerror(r));
        hb->next_connect = hb->now + hb->reconnect_ms;
        return r;
    }
    hb->connected = true;
    hb->error_reported = false;
    hb->stats.connects++;
    emit_fds(hb);
    refresh_quorum(hb);
    try_join(hb);
    return handle_lost(hb) ? SRM_EDISCONNECTED : 0;
}

/* ------------------------------------------------------------------ sending */

/*
 * Multicasts the latest payload. Under flow control (CS_ERR_TRY_AGAIN) and when allowed,
 * dispatches what Corosync holds for us (that is what frees its queue) and retries, a
 * bounded number of times; otherwise the send stays pending for the next tick.
 * Returns 0 sent, 1 pending, or a negative error.
 */
static int flush_send(struct srm_hb *hb, bool may_dispatch)
{
    uint8_t buf[SRM__HB_ENVELOPE_MAX];

    hb->send_pending = true;
    for (unsigned attempt = 0;; attempt++) {
        struct srm__hb_envelope env = {
            .flags = hb->flags,
            .sender = hb->node_id,
            .incarnation = hb->incarnation,
            .seq = hb->seq + 1,
            .group = hb->group,
            .group_len = hb->group_len,
            .payload = hb->payload_len > 0 ? hb->payload : NULL,
            .payload_len = hb->payload_len,
        };
        size_t len;
        int r;

        if (!hb->connected || !hb->joined)
            return 1;
        r = srm__hb_envelope_encode(&env, buf, sizeof(buf), &len);
        if (r < 0)
            return r;
        r = srm__hb_cs_mcast(hb, buf, len);
        if (r == 0) {
            hb->seq++;
            hb->stats.sent++;
            hb->send_pending = false;
            hb->next_send = hb->now + hb->interval_ms;
            return 0;
        }
        if (r != -EAGAIN) {
            hb->stats.send_errors++;
            if (r == SRM_EDISCONNECTED)
                connection_failed(hb, r);
            return r;
        }
        hb->stats.flow_control++;
        if (!may_dispatch || hb->dispatching || attempt >= SRM__HB_FLOW_RETRIES)
            return 1;
        if (do_dispatch(hb, hb->cpg_fd) < 0)
            return 1;
        if (!hb->send_pending)
            return 0; /* a callback's srm_hb_send() got the latest payload out */
    }
}

/* ------------------------------------------------------------------ peer tracking */

static bool peer_known(const struct srm_hb *hb)
{
    return hb->peer_state == SRM_HB_PEER_ALIVE || hb->peer_state == SRM_HB_PEER_RESTARTING;
}

/*
 * Keepalive k of the current silence was due at last_heard + k * interval; it counts as
 * missed once it is half an interval late.
 */
static uint64_t misses_due(const struct srm_hb *hb)
{
    uint64_t silent = hb->now > hb->last_heard ? hb->now - hb->last_heard : 0;
    uint64_t iv = hb->interval_ms;

    return silent >= iv + iv / 2 ? (silent - iv / 2) / iv : 0;
}

static void account_missed(struct srm_hb *hb)
{
    uint64_t m;

    if (hb->peer_state != SRM_HB_PEER_ALIVE)
        return;
    m = misses_due(hb);
    if (m > hb->missed_counted) {
        hb->stats.missed += m - hb->missed_counted;
        hb->missed_counted = m;
    }
}

static void peer_lose(struct srm_hb *hb, enum srm_hb_loss kind, bool during_init)
{
    struct srm_hb_peer_lost lost;

    account_missed(hb);
    hb->peer_state = SRM_HB_PEER_LOST;
    hb->stats.lost[kind]++;
    refresh_quorum(hb); /* quorum_cb, if it changed, runs before peer_lost_cb */
    lost = (struct srm_hb_peer_lost){
        .kind = kind,
        .during_init = during_init,
        .quorate = hb->quorate,
        .incarnation = hb->peer_inc,
        .last_heard_ms = hb->peer_inc ? hb->last_heard : 0,
    };
    srm_log_debug("hb %s: peer %u lost (%s%s), quorate %d", hb->group, hb->peer_id,
                  srm_hb_loss_name(kind), during_init ? ", during initialization" : "",
                  hb->quorate);
    if (!quiet(hb) && hb->cb.peer_lost_cb)
        hb->cb.peer_lost_cb(hb, &lost, hb->data);
}

static void peer_heard(struct srm_hb *hb, uint32_t pid, const struct srm__hb_envelope *env)
{
    bool was_lost = hb->peer_state == SRM_HB_PEER_LOST;
    bool back = false;
    enum srm_hb_back kind = SRM_HB_BACK_FIRST;
    uint64_t previous = hb->peer_inc;

    if (hb->peer_inc == 0) {
        back = true;
        kind = SRM_HB_BACK_FIRST;
    } else if (env->incarnation == hb->peer_inc) {
        if (env->seq <= hb->peer_seq) {
            hb->stats.ignored++;
            return;
        }
        if (was_lost) {
            back = true;
            kind = SRM_HB_BACK_RETURNED;
        }
    } else {
        for (size_t i = 0; i < SRM__HB_RETIRED; i++) {
            if (hb->retired[i] == env->incarnation) {
                hb->stats.ignored++; /* a late message of a process since replaced */
                return;
            }
        }
        back = true;
        kind = SRM_HB_BACK_RESTARTED;
        hb->retired[hb->retired_next] = hb->peer_inc;
        hb->retired_next = (hb->retired_next + 1) % SRM__HB_RETIRED;
    }

    account_missed(hb);
    hb->rejoined_at = 0;
    hb->peer_inc = env->incarnation;
    hb->peer_seq = env->seq;
    hb->peer_pid = pid;
    hb->last_heard = hb->now;
    hb->missed_counted = 0;
    hb->peer_state =
        (env->flags & SRM_HB_FLAG_RESTARTING) ? SRM_HB_PEER_RESTARTING : SRM_HB_PEER_ALIVE;
    hb->stats.received++;

    struct srm_hb_keepalive ka = {
        .incarnation = env->incarnation,
        .seq = env->seq,
        .flags = env->flags,
        .pid = pid,
        .payload = env->payload,
        .len = env->payload_len,
    };
    if (back) {
        struct srm_hb_peer_back info = {
            .kind = kind,
            .was_lost = was_lost,
            .previous_incarnation = previous,
            .ka = &ka,
        };
        hb->stats.back[kind]++;
        srm_log_debug("hb %s: peer %u %s (incarnation %016llx)", hb->group, hb->peer_id,
                      srm_hb_back_name(kind), (unsigned long long)env->incarnation);
        if (!quiet(hb) && hb->cb.peer_back_cb)
            hb->cb.peer_back_cb(hb, &info, hb->data);
    }
    if (!quiet(hb) && hb->cb.keepalive_cb)
        hb->cb.keepalive_cb(hb, &ka, hb->data);
}

void srm__hb_on_deliver(struct srm_hb *hb, uint32_t nodeid, uint32_t pid, const void *msg,
                        size_t len)
{
    struct srm__hb_envelope env;
    int r = srm__hb_envelope_decode(msg, len, hb->group, hb->group_len, &env);

    if (r == SRM_EFOREIGN || r == SRM_EBADVERSION) {
        hb->stats.foreign++;
        return;
    }
    if (r < 0 || env.sender != nodeid) {
        hb->stats.malformed++;
        return;
    }
    if (env.incarnation == hb->incarnation) {
        /* Our own message, back through the total order. */
        if (hb->announce_seq != 0 && env.seq == hb->announce_seq)
            hb->announce_delivered = true;
        return;
    }
    if (hb->peer_id == 0 || nodeid != hb->peer_id) {
        hb->stats.ignored++;
        return;
    }
    peer_heard(hb, pid, &env);
}

void srm__hb_on_confchg(struct srm_hb *hb, const struct cpg_address *members, size_t n_members,
                        const struct cpg_address *left, size_t n_left,
                        const struct cpg_address *joined, size_t n_joined)
{
    bool peer_joined = false;

    (void)members;
    (void)n_members;
    if (hb->peer_id == 0)
        return;
    for (size_t i = 0; i < n_left && peer_known(hb); i++) {
        if (left[i].nodeid != hb->peer_id)
            continue;
        if (left[i].reason == CPG_REASON_NODEDOWN) {
            /* The whole node left the membership: whichever of its processes this was. */
            peer_lose(hb, SRM_HB_LOSS_NODE, false);
        } else if ((left[i].reason == CPG_REASON_PROCDOWN || left[i].reason == CPG_REASON_LEAVE) &&
                   left[i].pid == hb->peer_pid) {
            if (hb->peer_state == SRM_HB_PEER_RESTARTING)
                srm_log_debug("hb %s: peer %u left for its announced restart", hb->group,
                              hb->peer_id);
            else
                peer_lose(hb, SRM_HB_LOSS_PROCESS, false);
        }
    }
    for (size_t i = 0; i < n_joined; i++)
        if (joined[i].nodeid == hb->peer_id)
            peer_joined = true;
    /* A peer process that just joined learns about us now rather than an interval later. */
    if (peer_joined && !hb->leaving)
        flush_send(hb, false);
}

void srm__hb_on_quorum(struct srm_hb *hb, bool quorate)
{
    set_quorate(hb, quorate);
}

/* Every membership change (quorum notification with its view). */
void srm__hb_on_membership(struct srm_hb *hb, bool quorate, bool peer_in_view)
{
    set_quorate(hb, quorate);
    hb->peer_in_view = peer_in_view;
    /* The lost peer's node is back but its process may be silent (paused, hung): it gets a
     * new keepalive timeout, counted from now, and is reported lost again if it stays
     * silent. */
    if (hb->peer_state == SRM_HB_PEER_LOST)
        hb->rejoined_at = peer_in_view ? hb->now : 0;
    if (!quiet(hb) && hb->cb.membership_cb)
        hb->cb.membership_cb(hb, peer_in_view, quorate, hb->data);
}

/* Margin beyond a ring change and a keepalive interval before silence means loss. */
#define RING_CHANGE_MARGIN_MS 500u

static uint32_t timeout_floor(const struct srm_hb *hb)
{
    return hb->ring_change_ms ? hb->interval_ms + hb->ring_change_ms + RING_CHANGE_MARGIN_MS : 0;
}

uint32_t srm__hb_timeout(const struct srm_hb *hb)
{
    uint32_t floor = timeout_floor(hb);
    return hb->timeout_ms > floor ? hb->timeout_ms : floor;
}

uint32_t srm__hb_init_timeout(const struct srm_hb *hb)
{
    uint32_t floor = timeout_floor(hb);
    return hb->init_timeout_ms > floor ? hb->init_timeout_ms : floor;
}

static void check_peer(struct srm_hb *hb)
{
    switch (hb->peer_state) {
    case SRM_HB_PEER_UNKNOWN:
        if (hb->now >= hb->started_at + srm__hb_init_timeout(hb))
            peer_lose(hb, SRM_HB_LOSS_TIMEOUT, true);
        break;
    case SRM_HB_PEER_ALIVE:
    case SRM_HB_PEER_RESTARTING:
        account_missed(hb);
        if (hb->now >= hb->last_heard + srm__hb_timeout(hb))
            peer_lose(hb, SRM_HB_LOSS_TIMEOUT, false);
        break;
    case SRM_HB_PEER_LOST:
        if (hb->rejoined_at && hb->now >= hb->rejoined_at + srm__hb_timeout(hb)) {
            hb->rejoined_at = 0;
            peer_lose(hb, SRM_HB_LOSS_TIMEOUT, false);
        }
        break;
    default:
        break;
    }
}

static uint64_t next_deadline(const struct srm_hb *hb)
{
    uint64_t next = hb->now + hb->interval_ms;

    if (hb->leaving)
        return next;
    if (hb->lost_err)
        return hb->now;
    if (!hb->connected)
        next = min64(next, hb->next_connect);
    else if (!hb->joined)
        next = min64(next, hb->next_join);
    else
        next = min64(next, hb->send_pending ? hb->now + SRM__HB_RETRY_MS : hb->next_send);
    switch (hb->peer_state) {
    case SRM_HB_PEER_UNKNOWN:
        next = min64(next, hb->started_at + srm__hb_init_timeout(hb));
        break;
    case SRM_HB_PEER_ALIVE: {
        uint64_t iv = hb->interval_ms;
        next = min64(next, hb->last_heard + (hb->missed_counted + 1) * iv + iv / 2);
        next = min64(next, hb->last_heard + srm__hb_timeout(hb));
        break;
    }
    case SRM_HB_PEER_RESTARTING:
        next = min64(next, hb->last_heard + srm__hb_timeout(hb));
        break;
    case SRM_HB_PEER_LOST:
        if (hb->rejoined_at)
            next = min64(next, hb->rejoined_at + srm__hb_timeout(hb));
        break;
    default:
        break;
    }
    return next;
}

/* ------------------------------------------------------------------ public API */

static int timing_resolve(uint32_t *interval, uint32_t *timeout, uint32_t *init)
{
    uint32_t iv = *interval ? *interval : SRM_HB_DEFAULT_INTERVAL_MS;
    uint32_t to = *timeout ? *timeout : SRM_HB_DEFAULT_TIMEOUT_MS;
    uint32_t it = *init ? *init : SRM_HB_DEFAULT_INIT_TIMEOUT_MS;

    /* Upper bounds keep every deadline sum far from overflow. */
    if (iv < 10 || iv > 3600000u || to <= iv || to > 86400000u || it > 86400000u)
        return -EINVAL;
    *interval = iv;
    *timeout = to;
    *init = it;
    return 0;
}

int srm_hb_new(const struct srm_hb_options *opts, struct srm_hb **ret_hb)
{
    struct srm_hb *hb;
    uint32_t iv, to, it;
    uint64_t inc;
    size_t glen;

    if (!opts || !ret_hb || !opts->group)
        return -EINVAL;
    glen = strnlen(opts->group, SRM_HB_GROUP_MAX + 1);
    if (!srm__hb_group_valid(opts->group, glen))
        return -EINVAL;
    if (opts->node_id != 0 && opts->node_id == opts->peer_node_id)
        return -EINVAL;
    iv = opts->keepalive_interval_ms;
    to = opts->keepalive_timeout_ms;
    it = opts->init_timeout_ms;
    if (timing_resolve(&iv, &to, &it) < 0)
        return -EINVAL;

    inc = opts->incarnation;
    for (int i = 0; inc == 0 && i < 4; i++) {
        if (getrandom(&inc, sizeof(inc), 0) != (ssize_t)sizeof(inc))
            return errno ? -errno : -EIO;
    }
    if (inc == 0)
        return -EIO;

    hb = calloc(1, sizeof(*hb));
    if (!hb)
        return -ENOMEM;
    memcpy(hb->group, opts->group, glen);
    hb->group_len = glen;
    if (opts->node_name)
        snprintf(hb->node_name, sizeof(hb->node_name), "%s", opts->node_name);
    hb->node_id = opts->node_id;
    hb->opt_node_id = opts->node_id;
    hb->peer_id = opts->peer_node_id;
    hb->interval_ms = iv;
    hb->timeout_ms = to;
    hb->init_timeout_ms = it;
    hb->reconnect_ms =
        opts->reconnect_interval_ms ? opts->reconnect_interval_ms : SRM_HB_DEFAULT_RECONNECT_MS;
    hb->incarnation = inc;
    if (opts->callbacks)
        hb->cb = *opts->callbacks;
    hb->data = opts->data;
    hb->cpg_fd = -1;
    hb->quorum_fd = -1;
    hb->peer_state = hb->peer_id ? SRM_HB_PEER_UNKNOWN : SRM_HB_PEER_NONE;
    *ret_hb = hb;
    return 0;
}

int srm_hb_start(struct srm_hb *hb, uint64_t now_ms)
{
    int r;

    if (!hb || hb->started)
        return -EINVAL;
    hb->started = true;
    hb->now = now_ms;
    hb->started_at = now_ms;
    hb->next_send = now_ms;
    hb->send_pending = true;
    r = try_connect(hb);
    if (r < 0 && !hb->error_reported)
        hb->error_reported = true; /* the caller has the error; retries stay silent */
    return r;
}

void srm_hb_free(struct srm_hb *hb)
{
    if (!hb)
        return;
    if (hb->connected)
        srm__hb_cs_disconnect(hb);
    free(hb);
}

int srm_hb_fds(const struct srm_hb *hb, int ret_fds[SRM_HB_FDS_MAX])
{
    if (!hb || !ret_fds || !hb->connected)
        return 0;
    ret_fds[0] = hb->cpg_fd;
    ret_fds[1] = hb->quorum_fd;
    return 2;
}

int srm_hb_dispatch(struct srm_hb *hb, int fd, uint64_t now_ms)
{
    int r;

    if (!hb || !hb->started)
        return -EINVAL;
    hb->now = now_ms;
    if (handle_lost(hb) || !hb->connected)
        return SRM_EDISCONNECTED;
    if (fd < 0 || (fd != hb->cpg_fd && fd != hb->quorum_fd))
        return -EINVAL;
    r = do_dispatch(hb, fd);
    if (r < 0)
        return r;
    if (hb->send_pending && !hb->leaving)
        flush_send(hb, false);
    return handle_lost(hb) ? SRM_EDISCONNECTED : 0;
}

int srm_hb_tick(struct srm_hb *hb, uint64_t now_ms, uint64_t *ret_next_ms)
{
    if (!hb || !hb->started)
        return -EINVAL;
    hb->now = now_ms;
    if (!hb->leaving) {
        handle_lost(hb);
        if (!hb->connected) {
            if (now_ms >= hb->next_connect)
                try_connect(hb);
        } else if (!hb->joined) {
            if (now_ms >= hb->next_join)
                try_join(hb);
        }
        if (hb->connected && hb->joined && (hb->send_pending || now_ms >= hb->next_send))
            flush_send(hb, true);
        handle_lost(hb);
        check_peer(hb);
        handle_lost(hb); /* the quorum query before a loss may have found corosync gone */
    }
    if (ret_next_ms)
        *ret_next_ms = next_deadline(hb);
    return 0;
}

int srm_hb_send(struct srm_hb *hb, uint64_t now_ms, const void *payload, size_t len)
{
    if (!hb || (len > 0 && !payload))
        return -EINVAL;
    if (len > SRM_HB_PAYLOAD_MAX)
        return SRM_ETOOBIG;
    if (hb->leaving)
        return -ESHUTDOWN;
    if (len > 0)
        memmove(hb->payload, payload, len);
    hb->payload_len = len;
    if (!hb->started) {
        hb->send_pending = true;
        return 1;
    }
    hb->now = now_ms;
    return flush_send(hb, false);
}

int srm_hb_announce_restart(struct srm_hb *hb, uint64_t now_ms)
{
    int r;

    if (!hb || !hb->started)
        return -EINVAL;
    if (hb->leaving)
        return -EALREADY;
    hb->now = now_ms;
    hb->leaving = true;
    hb->flags |= SRM_HB_FLAG_RESTARTING;
    if (!hb->connected || !hb->joined)
        return SRM_EDISCONNECTED;
    r = flush_send(hb, true);
    if (r == 1)
        return hb->connected ? -EAGAIN : SRM_EDISCONNECTED;
    if (r < 0)
        return r;
    hb->announce_seq = hb->seq;
    for (int i = 0; i < SRM__HB_ANNOUNCE_WAITS && !hb->announce_delivered; i++) {
        r = srm__hb_cs_wait(hb, SRM__HB_ANNOUNCE_POLL_MS);
        if (r < 0)
            return r;
        if (r == 0)
            continue;
        r = do_dispatch(hb, hb->cpg_fd);
        if (r < 0)
            return r;
    }
    return hb->announce_delivered ? 0 : -ETIMEDOUT;
}

int srm_hb_set_timing(struct srm_hb *hb, uint32_t keepalive_interval_ms,
                      uint32_t keepalive_timeout_ms, uint32_t init_timeout_ms)
{
    if (!hb || timing_resolve(&keepalive_interval_ms, &keepalive_timeout_ms, &init_timeout_ms) < 0)
        return -EINVAL;
    if (hb->started && hb->next_send > hb->now + keepalive_interval_ms)
        hb->next_send = hb->now + keepalive_interval_ms;
    hb->interval_ms = keepalive_interval_ms;
    hb->timeout_ms = keepalive_timeout_ms;
    hb->init_timeout_ms = init_timeout_ms;
    return 0;
}

bool srm_hb_quorate(const struct srm_hb *hb)
{
    return hb && hb->quorate;
}

bool srm_hb_connected(const struct srm_hb *hb)
{
    return hb && hb->connected && hb->joined;
}

uint64_t srm_hb_incarnation(const struct srm_hb *hb)
{
    return hb ? hb->incarnation : 0;
}

uint32_t srm_hb_node_id(const struct srm_hb *hb)
{
    return hb ? hb->node_id : 0;
}

void srm_hb_peer_get(const struct srm_hb *hb, struct srm_hb_peer *ret_peer)
{
    if (!hb || !ret_peer)
        return;
    *ret_peer = (struct srm_hb_peer){
        .state = hb->peer_state,
        .node_id = hb->peer_id,
        .pid = hb->peer_pid,
        .incarnation = hb->peer_inc,
        .last_seq = hb->peer_seq,
        .last_heard_ms = hb->peer_inc ? hb->last_heard : 0,
    };
}

void srm_hb_stats_get(const struct srm_hb *hb, struct srm_hb_stats *ret_stats)
{
    if (hb && ret_stats)
        *ret_stats = hb->stats;
}

void srm_hb_resume(struct srm_hb *hb, uint64_t now_ms)
{
    hb->now = now_ms;
    /* Silence heard while this process was stalled proves nothing about the peer. */
    if (hb->peer_state == SRM_HB_PEER_ALIVE || hb->peer_state == SRM_HB_PEER_RESTARTING) {
        hb->last_heard = now_ms;
        hb->missed_counted = 0;
    }
    if (hb->peer_state == SRM_HB_PEER_UNKNOWN && hb->started_at + srm__hb_init_timeout(hb) < now_ms)
        hb->started_at = now_ms - srm__hb_init_timeout(hb) + srm__hb_timeout(hb);
    if (hb->rejoined_at)
        hb->rejoined_at = now_ms;
}

bool srm_hb_peer_in_view(const struct srm_hb *hb)
{
    return hb->peer_in_view;
}

void srm_hb_timeouts(const struct srm_hb *hb, uint32_t *ret_keepalive_ms, uint32_t *ret_init_ms,
                     uint32_t *ret_ring_change_ms)
{
    if (ret_keepalive_ms)
        *ret_keepalive_ms = srm__hb_timeout(hb);
    if (ret_init_ms)
        *ret_init_ms = srm__hb_init_timeout(hb);
    if (ret_ring_change_ms)
        *ret_ring_change_ms = hb->ring_change_ms;
}
