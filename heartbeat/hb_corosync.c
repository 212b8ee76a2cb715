/*
 * The Corosync adapter: CPG (membership and messages) and the quorum service. Every
 * cs_error_t is converted here; CS_OK is 1, so results are always tested with != CS_OK.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <poll.h>
#include <sys/uio.h>
#include <string.h>

int srm__hb_cs_error(cs_error_t err)
{
    switch (err) {
    case CS_OK:
        return 0;
    case CS_ERR_TRY_AGAIN:
        return -EAGAIN;
    case CS_ERR_LIBRARY:
    case CS_ERR_BAD_HANDLE:
        return SRM_EDISCONNECTED;
    case CS_ERR_NO_MEMORY:
        return -ENOMEM;
    default:
        return SRM_ECOROSYNC;
    }
}

static struct srm_hb *hb_of_cpg(cpg_handle_t handle)
{
    void *ctx = NULL;

    if (cpg_context_get(handle, &ctx) != CS_OK)
        return NULL;
    return ctx;
}

static void deliver_fn(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid,
                       uint32_t pid, void *msg, size_t len)
{
    struct srm_hb *hb = hb_of_cpg(handle);

    (void)group; /* this handle joins one group only */
    if (hb)
        srm__hb_on_deliver(hb, nodeid, pid, msg, len);
}

static void confchg_fn(cpg_handle_t handle, const struct cpg_name *group,
                       const struct cpg_address *members, size_t n_members,
                       const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined)
{
    struct srm_hb *hb = hb_of_cpg(handle);

    (void)group;
    if (hb)
        srm__hb_on_confchg(hb, members, n_members, left, n_left, joined, n_joined);
}

static void quorum_fn(quorum_handle_t handle, uint32_t quorate, uint64_t ring_seq, uint32_t n_view,
                      uint32_t *view)
{
    const void *ctx = NULL;

    (void)ring_seq;
    if (quorum_context_get(handle, &ctx) == CS_OK && ctx) {
        struct srm_hb *hb = (struct srm_hb *)ctx;
        bool peer_in_view = false;
        for (uint32_t i = 0; view && i < n_view; i++)
            if (hb->peer_id != 0 && view[i] == hb->peer_id)
                peer_in_view = true;
        srm__hb_on_membership(hb, quorate != 0, peer_in_view);
    }
}

int srm__hb_cs_connect(struct srm_hb *hb)
{
    cpg_model_v1_data_t model = {
        .model = CPG_MODEL_V1,
        .cpg_deliver_fn = deliver_fn,
        .cpg_confchg_fn = confchg_fn,
        .cpg_totem_confchg_fn = NULL,
        .flags = 0,
    };
    quorum_callbacks_t qcb = {.quorum_notify_fn = quorum_fn};
    cpg_handle_t cpg;
    quorum_handle_t quorum;
    unsigned int local = 0;
    uint32_t qtype = 0;
    int cpg_fd = -1, quorum_fd = -1;
    cs_error_t e;
    int r;

    e = cpg_model_initialize(&cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, hb);
    if (e != CS_OK)
        return srm__hb_cs_error(e);
    e = cpg_local_get(cpg, &local);
    if (e == CS_OK)
        e = cpg_fd_get(cpg, &cpg_fd);
    if (e != CS_OK) {
        r = srm__hb_cs_error(e);
        goto fail_cpg;
    }
    if (hb->opt_node_id != 0 && local != hb->opt_node_id) {
        r = SRM_ECONFIG;
        goto fail_cpg;
    }

    e = quorum_initialize(&quorum, &qcb, &qtype);
    if (e != CS_OK) {
        r = srm__hb_cs_error(e);
        goto fail_cpg;
    }
    e = quorum_context_set(quorum, hb);
    if (e == CS_OK)
        e = quorum_trackstart(quorum, CS_TRACK_CHANGES);
    if (e == CS_OK)
        e = quorum_fd_get(quorum, &quorum_fd);
    if (e != CS_OK) {
        r = srm__hb_cs_error(e);
        goto fail_quorum;
    }

    hb->cpg = cpg;
    hb->quorum = quorum;
    hb->cpg_fd = cpg_fd;
    hb->quorum_fd = quorum_fd;
    hb->node_id = local;
    hb->ring_change_ms = srm__hb_cs_ring_change_ms();
    return 0;

fail_quorum:
    quorum_finalize(quorum);
fail_cpg:
    cpg_finalize(cpg);
    return r;
}

uint32_t srm__hb_cs_ring_change_ms(void)
{
    cmap_handle_t cmap;
    uint32_t token = 0, consensus = 0;

    if (cmap_initialize(&cmap) != CS_OK)
        return 0;
    if (cmap_get_uint32(cmap, "runtime.config.totem.token", &token) != CS_OK ||
        cmap_get_uint32(cmap, "runtime.config.totem.consensus", &consensus) != CS_OK)
        token = consensus = 0;
    cmap_finalize(cmap);
    return token + consensus;
}

static void group_name(const struct srm_hb *hb, struct cpg_name *ret_name)
{
    memset(ret_name, 0, sizeof(*ret_name));
    ret_name->length = (uint32_t)hb->group_len;
    memcpy(ret_name->value, hb->group, hb->group_len);
}

void srm__hb_cs_disconnect(struct srm_hb *hb)
{
    if (hb->joined) {
        struct cpg_name name;
        group_name(hb, &name);
        cpg_leave(hb->cpg, &name); /* best effort: finalize leaves anyway */
    }
    cpg_finalize(hb->cpg);
    quorum_finalize(hb->quorum);
    hb->cpg_fd = -1;
    hb->quorum_fd = -1;
}

int srm__hb_cs_join(struct srm_hb *hb)
{
    struct cpg_name name;

    group_name(hb, &name);
    return srm__hb_cs_error(cpg_join(hb->cpg, &name));
}

int srm__hb_cs_dispatch(struct srm_hb *hb, int fd)
{
    if (fd == hb->cpg_fd)
        return srm__hb_cs_error(cpg_dispatch(hb->cpg, CS_DISPATCH_ALL));
    if (fd == hb->quorum_fd)
        return srm__hb_cs_error(quorum_dispatch(hb->quorum, CS_DISPATCH_ALL));
    return -EINVAL;
}

int srm__hb_cs_mcast(struct srm_hb *hb, const void *msg, size_t len)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};

    return srm__hb_cs_error(cpg_mcast_joined(hb->cpg, CPG_TYPE_AGREED, &iov, 1));
}

int srm__hb_cs_quorate(struct srm_hb *hb, bool *ret_quorate)
{
    int quorate = 0;
    cs_error_t e = quorum_getquorate(hb->quorum, &quorate);

    if (e != CS_OK)
        return srm__hb_cs_error(e);
    *ret_quorate = quorate != 0;
    return 0;
}

int srm__hb_cs_wait(struct srm_hb *hb, int timeout_ms)
{
    struct pollfd pfd = {.fd = hb->cpg_fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);

    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    return r > 0 ? 1 : 0;
}
