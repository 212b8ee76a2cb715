/*
 * The engine-side safety rules (fsm/README.md, "Engines fence themselves"): the lease srmd
 * grants and renews, and the quorum self-fence. Pure: the clock and the quorum view come in
 * as arguments; the caller turns the callbacks into actions.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

void srm__fence_init(struct srm__fence *f, bool quorum_required, srm__fence_stop_cb *stop_cb,
                     void *data)
{
    memset(f, 0, sizeof(*f));
    f->quorum_required = quorum_required;
    f->stop_cb = stop_cb;
    f->data = data;
}

bool srm__fence_peer_present(const struct srm__fence *f)
{
    if (!f->q_connected || !f->members_known || f->peer == 0)
        return false;
    for (size_t i = 0; i < f->n_members; i++)
        if (f->members[i] == f->peer)
            return true;
    return false;
}

bool srm__fence_blocked(const struct srm__fence *f)
{
    if (!f->quorum_required)
        return false;
    if (f->q_connected && f->quorate)
        return false;
    return !srm__fence_peer_present(f);
}

static void remove_at(struct srm__fence *f, size_t i)
{
    memmove(&f->g[i], &f->g[i + 1], (f->n - i - 1) * sizeof(f->g[0]));
    f->n--;
}

size_t srm__fence_drop(struct srm__fence *f, uint32_t part, enum srm_ipc_reason reason, bool notify)
{
    struct srm__grant gone[SRM__GRANTS_MAX];
    size_t n = 0;

    for (size_t i = 0; i < f->n;) {
        if (part == SRM_PART_ALL || f->g[i].part == part) {
            gone[n++] = f->g[i];
            remove_at(f, i);
        } else {
            i++;
        }
    }
    if (n == 0)
        return 0;
    f->last_reason = reason;
    if (notify && f->stop_cb)
        f->stop_cb(f->data, part, reason, gone, n);
    return n;
}

static void apply_fence(struct srm__fence *f, int *ret_dropped)
{
    if (f->n > 0 && srm__fence_blocked(f)) {
        f->quorum_fences++;
        srm__fence_drop(f, SRM_PART_ALL, SRM_IPC_REASON_QUORUM, true);
        *ret_dropped = 1;
    }
}

void srm__fence_set_peer(struct srm__fence *f, uint32_t peer)
{
    int dropped = 0;

    f->peer = peer;
    apply_fence(f, &dropped);
}

int srm__fence_quorum(struct srm__fence *f, bool connected, bool quorate, const uint32_t *members,
                      size_t n_members)
{
    int dropped = 0;

    f->q_connected = connected;
    f->quorate = connected && quorate;
    if (!connected) {
        f->n_members = 0;
        f->members_known = false;
    } else if (members) {
        if (n_members > SRM__MEMBERS_MAX)
            n_members = SRM__MEMBERS_MAX;
        memcpy(f->members, members, n_members * sizeof(uint32_t));
        f->n_members = n_members;
        f->members_known = true;
    }
    /* connected without members: a quorate-only view (quorum_getquorate) keeps whatever
     * membership is known. */
    apply_fence(f, &dropped);
    return dropped;
}

const struct srm__grant *srm__fence_find(const struct srm__fence *f, uint32_t part)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->g[i].part == part)
            return &f->g[i];
    return NULL;
}

static uint64_t lease_base(uint64_t now, uint64_t sent_mono_ms)
{
    /* srmd and the engine read the same CLOCK_MONOTONIC: measuring from the send time keeps
     * a message that waited in a queue from extending the lease. A stamp from the future
     * (another clock domain) is not trusted. */
    if (sent_mono_ms != 0 && sent_mono_ms <= now)
        return sent_mono_ms;
    return now;
}

int srm__fence_serve(struct srm__fence *f, uint64_t now, uint32_t part, uint64_t epoch,
                     uint32_t lease_ms, uint64_t sent_mono_ms, bool *ret_renewed)
{
    uint64_t until = lease_base(now, sent_mono_ms) + lease_ms;
    size_t i;

    if (part == 0 || epoch == 0)
        return -EINVAL;
    if (srm__fence_blocked(f))
        return SRM_ENO_QUORUM;
    if (until <= now)
        return SRM_ELEASE;
    for (i = 0; i < f->n && f->g[i].part < part; i++)
        ;
    if (i < f->n && f->g[i].part == part) {
        struct srm__grant *g = &f->g[i];
        if (g->epoch > epoch)
            return SRM_ESTALE_EPOCH;
        if (g->state == SRM_IPC_GRANT_DRAINING)
            return -EBUSY;
        if (ret_renewed)
            *ret_renewed = g->epoch == epoch;
        g->epoch = epoch;
    } else {
        if (f->n == SRM__GRANTS_MAX)
            return -ENOSPC;
        memmove(&f->g[i + 1], &f->g[i], (f->n - i) * sizeof(f->g[0]));
        memset(&f->g[i], 0, sizeof(f->g[0]));
        f->g[i].part = part;
        f->g[i].epoch = epoch;
        f->g[i].state = SRM_IPC_GRANT_SERVING;
        f->n++;
        if (ret_renewed)
            *ret_renewed = false;
    }
    f->lease_until = until;
    f->last_reason = SRM_IPC_REASON_GRANTED;
    return 0;
}

void srm__fence_lease(struct srm__fence *f, uint64_t now, uint32_t lease_ms, uint64_t sent_mono_ms)
{
    f->lease_until = lease_ms == 0 ? now : lease_base(now, sent_mono_ms) + lease_ms;
    srm__fence_tick(f, now);
}

uint64_t srm__fence_tick(struct srm__fence *f, uint64_t now)
{
    uint64_t next = UINT64_MAX;

    if (f->n > 0 && now >= f->lease_until) {
        f->lease_expiries++;
        srm__fence_drop(f, SRM_PART_ALL, SRM_IPC_REASON_LEASE, true);
    }
    for (size_t i = 0; i < f->n;) {
        struct srm__grant *g = &f->g[i];
        if (g->state == SRM_IPC_GRANT_DRAINING && now >= g->drain_deadline) {
            struct srm__grant gone = *g;
            remove_at(f, i);
            f->last_reason = SRM_IPC_REASON_DRAIN_TIMEOUT;
            if (f->stop_cb)
                f->stop_cb(f->data, gone.part, SRM_IPC_REASON_DRAIN_TIMEOUT, &gone, 1);
            /* The callback may change the grants: start over. */
            i = 0;
            continue;
        }
        if (g->state == SRM_IPC_GRANT_DRAINING && g->drain_deadline < next)
            next = g->drain_deadline;
        i++;
    }
    if (f->n > 0 && f->lease_until < next)
        next = f->lease_until;
    return next;
}

uint64_t srm__fence_next_deadline(const struct srm__fence *f)
{
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; i < f->n; i++)
        if (f->g[i].state == SRM_IPC_GRANT_DRAINING && f->g[i].drain_deadline < next)
            next = f->g[i].drain_deadline;
    if (f->n > 0 && f->lease_until < next)
        next = f->lease_until;
    return next;
}

int srm__fence_release_begin(struct srm__fence *f, uint64_t now, uint32_t part, uint32_t drain_ms,
                             uint32_t cmd_id)
{
    for (size_t i = 0; i < f->n; i++) {
        struct srm__grant *g = &f->g[i];
        if (g->part != part)
            continue;
        if (g->state == SRM_IPC_GRANT_DRAINING)
            return -EALREADY;
        g->state = SRM_IPC_GRANT_DRAINING;
        g->release_cmd = cmd_id;
        g->drain_deadline = now + drain_ms;
        return 0;
    }
    return SRM_ENOT_GRANTED;
}

int srm__fence_release_done(struct srm__fence *f, uint32_t cmd_id)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->g[i].state == SRM_IPC_GRANT_DRAINING && f->g[i].release_cmd == cmd_id) {
            remove_at(f, i);
            f->last_reason = SRM_IPC_REASON_RELEASED;
            return 0;
        }
    }
    return -ENOENT;
}

int srm__fence_drop_epoch(struct srm__fence *f, uint32_t part, uint64_t epoch)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->g[i].part == part && f->g[i].epoch == epoch) {
            remove_at(f, i);
            f->last_reason = SRM_IPC_REASON_STALE;
            return 1;
        }
    }
    return 0;
}

int srm__fence_serving(const struct srm__fence *f, uint64_t now, uint32_t part, uint64_t *ret_epoch)
{
    const struct srm__grant *g = srm__fence_find(f, part);

    if (!g || g->state != SRM_IPC_GRANT_SERVING || now >= f->lease_until || srm__fence_blocked(f))
        return 0;
    if (ret_epoch)
        *ret_epoch = g->epoch;
    return 1;
}

uint32_t srm__fence_lease_left(const struct srm__fence *f, uint64_t now)
{
    if (f->lease_until <= now)
        return 0;
    return (uint32_t)(f->lease_until - now);
}
