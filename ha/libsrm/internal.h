/*
 * What the files of libsrm share. The fence (fence.c) is the safety core: pure (time comes
 * in as arguments, no I/O), so that the lease and the quorum self-fence are tested with a
 * fake clock and a fake quorum source (tests/ha/libsrm/test_fence.c).
 */
#ifndef SRM_LIBSRM_INTERNAL_H
#define SRM_LIBSRM_INTERNAL_H

#include "srm.h"
#include "srm_ipc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRM__GRANTS_MAX  SRM_IPC_PARTS_MAX
#define SRM__MEMBERS_MAX 1024

struct srm__grant {
    uint32_t part;
    uint64_t epoch;
    uint8_t state;           /* SRM_IPC_GRANT_SERVING or SRM_IPC_GRANT_DRAINING */
    uint32_t release_cmd;    /* the RELEASE being carried out (DRAINING) */
    uint64_t drain_deadline; /* ms */
};

/*
 * Called when the fence takes grants away: part is one partition or SRM_PART_ALL, `gone`
 * lists the grants removed (their state tells which were draining, release_cmd which
 * RELEASE was in progress).
 */
typedef void srm__fence_stop_cb(void *data, uint32_t part, enum srm_ipc_reason reason,
                                const struct srm__grant *gone, size_t n_gone);

struct srm__fence {
    bool quorum_required;
    uint32_t peer; /* group peer node id, 0: none */
    /* quorum view */
    bool q_connected; /* a view from Corosync is in force */
    bool quorate;
    size_t n_members;
    uint32_t members[SRM__MEMBERS_MAX];
    bool members_known; /* the member list came with the view */
    /* lease */
    uint64_t lease_until; /* ms; serving allowed while now < lease_until */
    /* grants, sorted by part */
    size_t n;
    struct srm__grant g[SRM__GRANTS_MAX];
    enum srm_ipc_reason last_reason;
    uint64_t lease_expiries;
    uint64_t quorum_fences;
    srm__fence_stop_cb *stop_cb;
    void *data;
};

void srm__fence_init(struct srm__fence *f, bool quorum_required, srm__fence_stop_cb *stop_cb,
                     void *data);

/* The group peer (0: none). Applies the fence to the current view. */
void srm__fence_set_peer(struct srm__fence *f, uint32_t peer);

/*
 * A new quorum view: connected false means Corosync cannot be reached (not quorate, no
 * members). members NULL with connected true: quorate known, membership not (yet) known.
 * If the fence now holds, every grant is taken away (reason QUORUM). Returns 1 if grants
 * were taken away, else 0.
 */
int srm__fence_quorum(struct srm__fence *f, bool connected, bool quorate, const uint32_t *members,
                      size_t n_members);

/* True while the self-fence holds: quorum required, and neither quorate nor the peer in the
 * membership (an unknown membership counts as without the peer). */
bool srm__fence_blocked(const struct srm__fence *f);

/* True if the peer is in the membership of the current view. */
bool srm__fence_peer_present(const struct srm__fence *f);

/*
 * A SERVE. The lease runs until base + lease_ms, base being sent_mono_ms when it is
 * non-zero and not in the future, else now. Returns 0 (*ret_renewed: the partition was
 * already served under this epoch), or
 *   SRM_ENO_QUORUM    the fence holds;
 *   SRM_ELEASE        the lease it carries is already over (a message delivered late);
 *   SRM_ESTALE_EPOCH  the partition is served under a newer epoch;
 *   -EBUSY            the partition is draining (acknowledge the RELEASE first);
 *   -ENOSPC           SRM__GRANTS_MAX partitions are served.
 */
int srm__fence_serve(struct srm__fence *f, uint64_t now, uint32_t part, uint64_t epoch,
                     uint32_t lease_ms, uint64_t sent_mono_ms, bool *ret_renewed);

/* A LEASE renewal (lease_ms 0: the lease ends now). Applies the lease at once. */
void srm__fence_lease(struct srm__fence *f, uint64_t now, uint32_t lease_ms, uint64_t sent_mono_ms);

/*
 * Enforces deadlines at now: the lease (every grant goes, reason LEASE) and drain timeouts
 * (each draining grant past its deadline goes, reason DRAIN_TIMEOUT). Returns the next
 * deadline in ms (UINT64_MAX: none).
 */
uint64_t srm__fence_tick(struct srm__fence *f, uint64_t now);

/* The next deadline (lease end while something is granted, drain timeouts), UINT64_MAX if
 * none. Pure. */
uint64_t srm__fence_next_deadline(const struct srm__fence *f);

/*
 * A RELEASE: the partition drains until now + drain_ms. Returns 0, SRM_ENOT_GRANTED (not
 * served: nothing to drain), -EALREADY (already draining for another RELEASE).
 */
int srm__fence_release_begin(struct srm__fence *f, uint64_t now, uint32_t part, uint32_t drain_ms,
                             uint32_t cmd_id);

/* The RELEASE cmd_id is done: its grant goes (no callback). 0, -ENOENT. */
int srm__fence_release_done(struct srm__fence *f, uint32_t cmd_id);

/* Takes one partition (or SRM_PART_ALL) away with `reason`; callback only if notify. Returns
 * the number of grants removed. */
size_t srm__fence_drop(struct srm__fence *f, uint32_t part, enum srm_ipc_reason reason,
                       bool notify);

/* Removes the grant of part if it is served under exactly `epoch`. 1 removed, 0 not. */
int srm__fence_drop_epoch(struct srm__fence *f, uint32_t part, uint64_t epoch);

/* 1 and *ret_epoch if part may be written at now (granted, serving, lease running, fence not
 * holding), else 0. Pure: changes nothing. */
int srm__fence_serving(const struct srm__fence *f, uint64_t now, uint32_t part,
                       uint64_t *ret_epoch);

/* The grant of part, or NULL. */
const struct srm__grant *srm__fence_find(const struct srm__fence *f, uint32_t part);

/* Milliseconds of lease left at now (0 if none). */
uint32_t srm__fence_lease_left(const struct srm__fence *f, uint64_t now);

#endif
