/*
 * The fake Corosync behind -Wl,--wrap (see fake_corosync.h). Only what the heartbeat module
 * calls is wrapped; the real functions are never reached.
 */
#include "fake_corosync.h"

#include <corosync/cmap.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define FAKE_CPG_HANDLE    0x1234u
#define FAKE_QUORUM_HANDLE 0x5678u
#define FAKE_QUEUE_MAX     64

struct fake_cs fake;
char fake_log[4096];

enum ev_kind { EV_DELIVER, EV_LEFT, EV_JOINED, EV_QUORUM };

struct ev {
    enum ev_kind kind;
    uint32_t nodeid, pid, reason;
    int quorate;
    uint32_t view[8]; /* EV_QUORUM: the membership view */
    size_t n_view;
    size_t len;
    uint8_t msg[FAKE_MSG_MAX];
};

static struct ev queue[FAKE_QUEUE_MAX];
static size_t n_queue;
static cpg_model_v1_data_t model;
static void *cpg_ctx;
static const void *quorum_ctx;
static quorum_notification_fn_t quorum_fn;

cs_error_t __wrap_cpg_model_initialize(cpg_handle_t *handle, cpg_model_t m, cpg_model_data_t *data,
                                       void *context);
cs_error_t __wrap_cpg_finalize(cpg_handle_t handle);
cs_error_t __wrap_cpg_fd_get(cpg_handle_t handle, int *fd);
cs_error_t __wrap_cpg_local_get(cpg_handle_t handle, unsigned int *nodeid);
cs_error_t __wrap_cpg_context_get(cpg_handle_t handle, void **context);
cs_error_t __wrap_cpg_join(cpg_handle_t handle, const struct cpg_name *group);
cs_error_t __wrap_cpg_leave(cpg_handle_t handle, const struct cpg_name *group);
cs_error_t __wrap_cpg_mcast_joined(cpg_handle_t handle, cpg_guarantee_t g, const struct iovec *iov,
                                   unsigned int n);
cs_error_t __wrap_cpg_dispatch(cpg_handle_t handle, cs_dispatch_flags_t flags);
cs_error_t __wrap_quorum_initialize(quorum_handle_t *handle, quorum_callbacks_t *cb,
                                    uint32_t *type);
cs_error_t __wrap_quorum_finalize(quorum_handle_t handle);
cs_error_t __wrap_quorum_fd_get(quorum_handle_t handle, int *fd);
cs_error_t __wrap_quorum_getquorate(quorum_handle_t handle, int *quorate);
cs_error_t __wrap_quorum_trackstart(quorum_handle_t handle, unsigned int flags);
cs_error_t __wrap_quorum_dispatch(quorum_handle_t handle, cs_dispatch_flags_t flags);
cs_error_t __wrap_quorum_context_set(quorum_handle_t handle, const void *context);
cs_error_t __wrap_quorum_context_get(quorum_handle_t handle, const void **context);
cs_error_t __wrap_cmap_initialize(cmap_handle_t *handle);
cs_error_t __wrap_cmap_get_uint32(cmap_handle_t handle, const char *key, uint32_t *u32);
cs_error_t __wrap_cmap_finalize(cmap_handle_t handle);

void fake_logf(const char *fmt, ...)
{
    size_t used = strlen(fake_log);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fake_log + used, sizeof(fake_log) - used, fmt, ap);
    va_end(ap);
}

void fake_log_clear(void)
{
    fake_log[0] = '\0';
}

static void signal_fd(int fd)
{
    uint64_t one = 1;

    if (fd >= 0 && write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        fprintf(stderr, "fake: eventfd write failed\n");
}

static void drain_fd(int fd)
{
    uint64_t v;

    if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing was pending */
    }
}

void fake_reset(void)
{
    if (fake.cpg_fd > 0)
        close(fake.cpg_fd);
    if (fake.quorum_fd > 0)
        close(fake.quorum_fd);
    memset(&fake, 0, sizeof(fake));
    fake.up = true;
    fake.local_nodeid = 1;
    fake.local_pid = 1001;
    fake.quorate = 1;
    fake.mcast_error = CS_OK;
    fake.dispatch_error = CS_OK;
    fake.loopback = true;
    fake.cpg_fd = -1;
    fake.quorum_fd = -1;
    n_queue = 0;
    fake_log_clear();
}

static struct ev *push(enum ev_kind kind)
{
    struct ev *e;

    if (n_queue == FAKE_QUEUE_MAX) {
        fprintf(stderr, "fake: event queue full\n");
        return NULL;
    }
    e = &queue[n_queue++];
    memset(e, 0, offsetof(struct ev, msg));
    e->kind = kind;
    signal_fd(kind == EV_QUORUM ? fake.quorum_fd : fake.cpg_fd);
    return e;
}

void fake_queue_deliver(uint32_t nodeid, uint32_t pid, const void *msg, size_t len)
{
    struct ev *e = push(EV_DELIVER);

    if (!e || len > FAKE_MSG_MAX)
        return;
    e->nodeid = nodeid;
    e->pid = pid;
    e->len = len;
    memcpy(e->msg, msg, len);
}

void fake_queue_left(uint32_t nodeid, uint32_t pid, uint32_t reason)
{
    struct ev *e = push(EV_LEFT);

    if (e) {
        e->nodeid = nodeid;
        e->pid = pid;
        e->reason = reason;
    }
}

void fake_queue_joined(uint32_t nodeid, uint32_t pid)
{
    struct ev *e = push(EV_JOINED);

    if (e) {
        e->nodeid = nodeid;
        e->pid = pid;
        e->reason = CPG_REASON_JOIN;
    }
}

void fake_queue_quorum(int quorate)
{
    struct ev *e = push(EV_QUORUM);

    if (e)
        e->quorate = quorate;
}

void fake_queue_view(int quorate, const uint32_t *nodes, size_t n)
{
    struct ev *e = push(EV_QUORUM);

    if (e) {
        e->quorate = quorate;
        e->n_view = n < 8 ? n : 8;
        memcpy(e->view, nodes, e->n_view * sizeof(*nodes));
    }
}

void fake_drop_queue(void)
{
    size_t keep = 0;

    for (size_t i = 0; i < n_queue; i++)
        if (queue[i].kind == EV_QUORUM)
            queue[keep++] = queue[i];
    n_queue = keep;
    drain_fd(fake.cpg_fd);
}

/* Runs (and removes) the queued events of one handle present when the dispatch started;
 * events queued by the callbacks themselves wait for the next dispatch, as in CPG. */
static void run_queue(bool quorum)
{
    static struct ev batch[FAKE_QUEUE_MAX];
    size_t n = n_queue;
    size_t nb = 0, keep = 0;

    for (size_t i = 0; i < n; i++) {
        if ((queue[i].kind == EV_QUORUM) == quorum)
            batch[nb++] = queue[i];
        else
            queue[keep++] = queue[i];
    }
    n_queue = keep;

    for (size_t i = 0; i < nb; i++) {
        struct ev *e = &batch[i];
        struct cpg_name name = {.length = 6, .value = "srm.g1"};
        struct cpg_address addr = {.nodeid = e->nodeid, .pid = e->pid, .reason = e->reason};

        switch (e->kind) {
        case EV_DELIVER:
            model.cpg_deliver_fn(FAKE_CPG_HANDLE, &name, e->nodeid, e->pid, e->msg, e->len);
            break;
        case EV_LEFT:
            model.cpg_confchg_fn(FAKE_CPG_HANDLE, &name, NULL, 0, &addr, 1, NULL, 0);
            break;
        case EV_JOINED:
            model.cpg_confchg_fn(FAKE_CPG_HANDLE, &name, &addr, 1, NULL, 0, &addr, 1);
            break;
        case EV_QUORUM:
            fake.quorate = e->quorate;
            quorum_fn(FAKE_QUORUM_HANDLE, (uint32_t)e->quorate, 1, (uint32_t)e->n_view,
                      e->n_view ? e->view : NULL);
            break;
        }
    }
}

cs_error_t __wrap_cpg_model_initialize(cpg_handle_t *handle, cpg_model_t m, cpg_model_data_t *data,
                                       void *context)
{
    fake.inits++;
    if (!fake.up)
        return CS_ERR_LIBRARY;
    if (m != CPG_MODEL_V1)
        return CS_ERR_INVALID_PARAM;
    model = *(cpg_model_v1_data_t *)data;
    cpg_ctx = context;
    fake.cpg_open = true;
    fake.cpg_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    *handle = FAKE_CPG_HANDLE;
    return CS_OK;
}

cs_error_t __wrap_cpg_finalize(cpg_handle_t handle)
{
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    fake.finalizes++;
    fake.cpg_open = false;
    close(fake.cpg_fd);
    fake.cpg_fd = -1;
    n_queue = 0;
    fake_logf("finalize ");
    return CS_OK;
}

cs_error_t __wrap_cpg_fd_get(cpg_handle_t handle, int *fd)
{
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    *fd = fake.cpg_fd;
    return CS_OK;
}

cs_error_t __wrap_cpg_local_get(cpg_handle_t handle, unsigned int *nodeid)
{
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    *nodeid = fake.local_nodeid;
    return CS_OK;
}

cs_error_t __wrap_cpg_context_get(cpg_handle_t handle, void **context)
{
    if (handle != FAKE_CPG_HANDLE)
        return CS_ERR_BAD_HANDLE;
    *context = cpg_ctx;
    return CS_OK;
}

cs_error_t __wrap_cpg_join(cpg_handle_t handle, const struct cpg_name *group)
{
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    if (group->length != 6 || memcmp(group->value, "srm.g1", 6) != 0)
        return CS_ERR_INVALID_PARAM;
    if (fake.join_try_again > 0) {
        fake.join_try_again--;
        return CS_ERR_TRY_AGAIN;
    }
    fake.joins++;
    return CS_OK;
}

cs_error_t __wrap_cpg_leave(cpg_handle_t handle, const struct cpg_name *group)
{
    (void)group;
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    fake.leaves++;
    return CS_OK;
}

cs_error_t __wrap_cpg_mcast_joined(cpg_handle_t handle, cpg_guarantee_t g, const struct iovec *iov,
                                   unsigned int n)
{
    size_t len = 0;

    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    if (g != CPG_TYPE_AGREED)
        return CS_ERR_INVALID_PARAM;
    if (fake.mcast_error != CS_OK)
        return fake.mcast_error;
    if (fake.mcast_try_again > 0) {
        fake.mcast_try_again--;
        return CS_ERR_TRY_AGAIN;
    }
    for (unsigned i = 0; i < n; i++) {
        if (len + iov[i].iov_len > FAKE_MSG_MAX)
            return CS_ERR_TOO_BIG;
        memcpy(fake.last_sent + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    fake.last_sent_len = len;
    fake.n_sent++;
    if (fake.loopback)
        fake_queue_deliver(fake.local_nodeid, fake.local_pid, fake.last_sent, len);
    return CS_OK;
}

cs_error_t __wrap_cpg_dispatch(cpg_handle_t handle, cs_dispatch_flags_t flags)
{
    if (handle != FAKE_CPG_HANDLE || !fake.cpg_open)
        return CS_ERR_BAD_HANDLE;
    if (flags != CS_DISPATCH_ALL)
        return CS_ERR_INVALID_PARAM;
    fake.dispatches++;
    if (fake.dispatch_error != CS_OK)
        return fake.dispatch_error;
    drain_fd(fake.cpg_fd);
    run_queue(false);
    return CS_OK;
}

cs_error_t __wrap_quorum_initialize(quorum_handle_t *handle, quorum_callbacks_t *cb, uint32_t *type)
{
    if (!fake.up)
        return CS_ERR_LIBRARY;
    quorum_fn = cb->quorum_notify_fn;
    fake.quorum_open = true;
    fake.quorum_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    *type = QUORUM_SET;
    *handle = FAKE_QUORUM_HANDLE;
    return CS_OK;
}

cs_error_t __wrap_quorum_finalize(quorum_handle_t handle)
{
    if (handle != FAKE_QUORUM_HANDLE || !fake.quorum_open)
        return CS_ERR_BAD_HANDLE;
    fake.quorum_open = false;
    close(fake.quorum_fd);
    fake.quorum_fd = -1;
    return CS_OK;
}

cs_error_t __wrap_quorum_fd_get(quorum_handle_t handle, int *fd)
{
    if (handle != FAKE_QUORUM_HANDLE || !fake.quorum_open)
        return CS_ERR_BAD_HANDLE;
    *fd = fake.quorum_fd;
    return CS_OK;
}

cs_error_t __wrap_quorum_getquorate(quorum_handle_t handle, int *quorate)
{
    if (handle != FAKE_QUORUM_HANDLE || !fake.quorum_open)
        return CS_ERR_BAD_HANDLE;
    fake.quorum_queries++;
    *quorate = fake.quorate;
    return CS_OK;
}

cs_error_t __wrap_quorum_trackstart(quorum_handle_t handle, unsigned int flags)
{
    if (handle != FAKE_QUORUM_HANDLE || !fake.quorum_open || flags != CS_TRACK_CHANGES)
        return CS_ERR_BAD_HANDLE;
    return CS_OK;
}

cs_error_t __wrap_quorum_dispatch(quorum_handle_t handle, cs_dispatch_flags_t flags)
{
    if (handle != FAKE_QUORUM_HANDLE || !fake.quorum_open || flags != CS_DISPATCH_ALL)
        return CS_ERR_BAD_HANDLE;
    fake.quorum_dispatches++;
    drain_fd(fake.quorum_fd);
    run_queue(true);
    return CS_OK;
}

cs_error_t __wrap_quorum_context_set(quorum_handle_t handle, const void *context)
{
    if (handle != FAKE_QUORUM_HANDLE)
        return CS_ERR_BAD_HANDLE;
    quorum_ctx = context;
    return CS_OK;
}

cs_error_t __wrap_quorum_context_get(quorum_handle_t handle, const void **context)
{
    if (handle != FAKE_QUORUM_HANDLE)
        return CS_ERR_BAD_HANDLE;
    *context = quorum_ctx;
    return CS_OK;
}

/* ---- cmap: Corosync's runtime timing */

#define FAKE_CMAP_HANDLE 0xc3a9u

cs_error_t __wrap_cmap_initialize(cmap_handle_t *handle)
{
    if (!fake.up || fake.token_ms == 0)
        return CS_ERR_LIBRARY;
    *handle = FAKE_CMAP_HANDLE;
    return CS_OK;
}

cs_error_t __wrap_cmap_get_uint32(cmap_handle_t handle, const char *key, uint32_t *u32)
{
    if (handle != FAKE_CMAP_HANDLE)
        return CS_ERR_BAD_HANDLE;
    if (strcmp(key, "runtime.config.totem.token") == 0)
        *u32 = fake.token_ms;
    else if (strcmp(key, "runtime.config.totem.consensus") == 0)
        *u32 = fake.consensus_ms;
    else
        return CS_ERR_NOT_EXIST;
    return CS_OK;
}

cs_error_t __wrap_cmap_finalize(cmap_handle_t handle)
{
    return handle == FAKE_CMAP_HANDLE ? CS_OK : CS_ERR_BAD_HANDLE;
}
