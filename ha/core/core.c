/*
 * The node core. See srm_core.h.
 *
 * Every entry point records the facts it brings, then settle() brings the machine up to
 * date with them: critical services past their delay, datastore, HA, the lease handshake,
 * reports to send, the ownership plan, the fallback timer, until nothing changes.
 */
#include "srm_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srm_error.h"

enum peer_view { PEER_UNKNOWN = 0, PEER_VISIBLE, PEER_LOST };

struct srm_core {
    struct srm_core_params p;
    struct srm_core_io io;
    uint64_t incarnation;
    struct srm_fsm fsm;
    bool started;

    /* the peer, as this core has heard it */
    enum peer_view view;
    uint64_t peer_inc;
    uint64_t lost_at;
    enum srm_fsm_loss lost_kind;
    bool memb_peer;
    uint64_t memb_peer_since;
    bool quorate;
    uint64_t quorate_since;

    /* reports */
    uint32_t tx_seq;
    uint32_t rx_seq;
    uint32_t peer_ack;
    uint32_t wants_seq;
    unsigned last_wants;
    bool sent_any;
    bool need_ack;
    struct srm_fsm_report last_sent;
    struct srm_fsm_report last_rcvd;
    uint8_t ext[SRM_CORE_EXT_MAX];
    size_t ext_len;
    bool ext_dirty;
    uint8_t peer_ext[SRM_CORE_EXT_MAX];
    size_t peer_ext_len;

    /* ownership executor */
    unsigned actual;
    bool op_busy;
    unsigned op_release;
    unsigned op_acquire;
    uint64_t retry_at;

    /* facts */
    enum srm_core_svc svc;
    uint64_t svc_since;
    bool db_ok;
    bool ha;
    bool lease_pending;

    /* automatic fallback */
    bool fb_armed;
    uint64_t fb_at;

    /* re-entrancy */
    bool settling;
    /* after a stall: the caller is delivering what queued up; decide, but do not act */
    bool holding;
};

#define RETRY_MS 1000

void srm_core_params_default(struct srm_core_params *ret_params)
{
    *ret_params = (struct srm_core_params){
        .cs_down_delay_ms = 90000,
        .auto_fallback = false,
        .auto_fallback_delay_ms = 30 * 60000,
        .fence_node_ms = 500,
        .fence_process_ms = 6000,
        .fence_timeout_ms = 0,
    };
}

int srm_core_new(const struct srm_core_params *params, const struct srm_core_io *io,
                 uint64_t incarnation, struct srm_core **ret_core)
{
    struct srm_core *c;

    if (!params || !io || !io->send_cb || !io->acquire_cb || !io->release_cb || !io->services_cb ||
        incarnation == 0)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->p = *params;
    c->io = *io;
    c->incarnation = incarnation;
    srm_fsm_init(&c->fsm);
    c->db_ok = true;
    c->ha = true;
    *ret_core = c;
    return 0;
}

void srm_core_free(struct srm_core *core)
{
    free(core);
}

/* ---- the wire ------------------------------------------------------------------------ */

/*
 * Layout (little endian), version 1:
 *   0  u8  version          1  u8  state        2  u8  reason       3  u8  serves
 *   4  u8  wants            5  u8  flags (1 cs_up, 2 db_ok, 4 ha, 8 recovering)
 *   6  u16 ext_len          8  u32 epoch       12  u32 phase
 *  16  u32 seq             20  u32 ack         24  u64 ack_inc
 *  32  ext
 * Unknown state and reason values are kept (the machine reads them as Unknown).
 */
#define WIRE_VERSION 1
#define WIRE_HEAD    32

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int srm_core_wire_encode(const struct srm_core_wire *w, void *buf, size_t size)
{
    uint8_t *b = buf;
    const struct srm_fsm_report *r = &w->report;

    if (w->ext_len > SRM_CORE_EXT_MAX)
        return -EINVAL;
    if (size < WIRE_HEAD + w->ext_len)
        return -ENOSPC;
    b[0] = WIRE_VERSION;
    b[1] = r->state;
    b[2] = r->reason;
    b[3] = r->serves & SRM_FSM_PART_ALL;
    b[4] = r->wants & SRM_FSM_PART_ALL;
    b[5] = (uint8_t)((r->cs_up ? 1 : 0) | (r->db_ok ? 2 : 0) | (r->ha_enabled ? 4 : 0) |
                     (r->recovering ? 8 : 0));
    put16(b + 6, (uint16_t)w->ext_len);
    put32(b + 8, r->epoch);
    put32(b + 12, r->phase);
    put32(b + 16, w->seq);
    put32(b + 20, w->ack);
    put64(b + 24, w->ack_inc);
    if (w->ext_len)
        memcpy(b + WIRE_HEAD, w->ext, w->ext_len);
    return (int)(WIRE_HEAD + w->ext_len);
}

int srm_core_wire_decode(const void *buf, size_t len, struct srm_core_wire *ret_wire)
{
    const uint8_t *b = buf;
    struct srm_core_wire w = {0};
    size_t ext_len;

    if (!buf || len < WIRE_HEAD || b[0] != WIRE_VERSION)
        return SRM_EBADFRAME;
    ext_len = get16(b + 6);
    if (ext_len > SRM_CORE_EXT_MAX || len != WIRE_HEAD + ext_len)
        return SRM_EBADFRAME;
    if ((b[3] | b[4]) & ~SRM_FSM_PART_ALL || b[5] & ~15u)
        return SRM_EBADFRAME;
    w.report.state = b[1];
    w.report.reason = b[2];
    w.report.serves = b[3];
    w.report.wants = b[4];
    w.report.cs_up = b[5] & 1;
    w.report.db_ok = b[5] & 2;
    w.report.ha_enabled = b[5] & 4;
    w.report.recovering = b[5] & 8;
    w.report.epoch = get32(b + 8);
    w.report.phase = get32(b + 12);
    w.seq = get32(b + 16);
    w.ack = get32(b + 20);
    w.ack_inc = get64(b + 24);
    w.ext = ext_len ? b + WIRE_HEAD : NULL;
    w.ext_len = ext_len;
    *ret_wire = w;
    return 0;
}

/* ---- steps and reports ----------------------------------------------------------------- */

static void settle(struct srm_core *c, uint64_t now);

static int step(struct srm_core *c, const struct srm_fsm_event *ev)
{
    struct srm_fsm_step st;
    int rc = srm_fsm_step(&c->fsm, ev, &st);

    if (c->io.step_cb)
        c->io.step_cb(c, ev->type, rc, &st, c->io.data);
    if (rc == 0) {
        /* Until the caller reports otherwise, the services are as asked. */
        if (st.effects & SRM_FSM_EFFECT(STOP_SERVICES)) {
            c->svc = SRM_CORE_SVC_STOPPED;
            c->io.services_cb(c, false, c->io.data);
        }
        if (st.effects & SRM_FSM_EFFECT(START_SERVICES)) {
            if (c->svc != SRM_CORE_SVC_UP)
                c->svc = SRM_CORE_SVC_STARTING;
            c->io.services_cb(c, true, c->io.data);
        }
    }
    return rc;
}

static int step_simple(struct srm_core *c, enum srm_fsm_event_type type)
{
    struct srm_fsm_event ev = {.type = type};
    return step(c, &ev);
}

static unsigned claimed(const struct srm_core *c)
{
    return c->actual | (c->op_busy ? c->op_acquire : 0);
}

static bool report_equal(const struct srm_fsm_report *a, const struct srm_fsm_report *b)
{
    return a->state == b->state && a->reason == b->reason && a->serves == b->serves &&
           a->wants == b->wants && a->cs_up == b->cs_up && a->db_ok == b->db_ok &&
           a->ha_enabled == b->ha_enabled && a->recovering == b->recovering &&
           a->epoch == b->epoch && a->phase == b->phase;
}

static void send_report(struct srm_core *c)
{
    struct srm_core_wire w = {0};
    uint8_t buf[SRM_CORE_PAYLOAD_MAX];
    int n;

    srm_fsm_report(&c->fsm, claimed(c), &w.report);
    w.seq = ++c->tx_seq;
    w.ack_inc = c->peer_inc;
    w.ack = c->rx_seq;
    w.ext = c->ext;
    w.ext_len = c->ext_len;
    if (!c->sent_any || w.report.wants != c->last_wants)
        c->wants_seq = w.seq;
    c->last_wants = w.report.wants;
    c->last_sent = w.report;
    c->sent_any = true;
    c->need_ack = false;
    c->ext_dirty = false;
    n = srm_core_wire_encode(&w, buf, sizeof(buf));
    if (n > 0)
        c->io.send_cb(c, buf, (size_t)n, c->io.data);
}

static void maybe_send(struct srm_core *c)
{
    struct srm_fsm_report r;

    srm_fsm_report(&c->fsm, claimed(c), &r);
    if (!c->sent_any || c->need_ack || c->ext_dirty || !report_equal(&r, &c->last_sent))
        send_report(c);
}

/* ---- fences and the executor ------------------------------------------------------------ */

static uint64_t fence_for(const struct srm_core *c, enum srm_fsm_loss kind)
{
    switch (kind) {
    case SRM_FSM_LOSS_NODE:
        return c->p.fence_node_ms;
    case SRM_FSM_LOSS_PROCESS:
        return c->p.fence_process_ms;
    default:
        return c->p.fence_timeout_ms;
    }
}

/*
 * When a lost peer's users may be taken: after the fence that goes with how it was lost;
 * if its node is in the membership but its srmd silent, the process fence from when it
 * joined (its engines' lease has run out by then); and quorum held for the node fence (the
 * ring that gave it may have left the peer out a moment ago). UINT64_MAX: never (peer not
 * lost).
 */
static uint64_t fence_deadline(const struct srm_core *c)
{
    uint64_t t;

    if (c->view != PEER_LOST)
        return UINT64_MAX;
    t = c->lost_at + fence_for(c, c->lost_kind);
    if (c->memb_peer && c->memb_peer_since + c->p.fence_process_ms > t)
        t = c->memb_peer_since + c->p.fence_process_ms;
    if (c->quorate_since + c->p.fence_node_ms > t)
        t = c->quorate_since + c->p.fence_node_ms;
    return t;
}

static void plan(const struct srm_core *c, uint64_t now, struct srm_fsm_own_plan *ret)
{
    bool fresh = c->peer_ack >= c->wants_seq;
    srm_fsm_own_plan(&c->fsm, c->actual, now >= fence_deadline(c), fresh, ret);
}

static void reconcile(struct srm_core *c, uint64_t now)
{
    struct srm_fsm_own_plan p;

    if (c->op_busy)
        return;
    plan(c, now, &p);
    if (p.release) {
        c->op_busy = true;
        c->op_release = p.release;
        c->op_acquire = 0;
        c->io.release_cb(c, p.release, c->io.data);
        return;
    }
    if (p.acquire && now >= c->retry_at) {
        c->op_busy = true;
        c->op_release = 0;
        c->op_acquire = p.acquire;
        /* Report the claim before acting on it. */
        maybe_send(c);
        c->io.acquire_cb(c, p.acquire, c->io.data);
        return;
    }
    if (p.complete != SRM_FSM_EVENT_MAX)
        step_simple(c, p.complete);
}

/* ---- facts -------------------------------------------------------------------------------- */

static void services_sync(struct srm_core *c, uint64_t now)
{
    enum srm_fsm_cs cs = c->fsm.cs;

    switch (c->svc) {
    case SRM_CORE_SVC_UP:
        if (cs != SRM_FSM_CS_UP)
            step_simple(c, SRM_FSM_EVENT_CS_UP);
        break;
    case SRM_CORE_SVC_DOWN:
        if (cs != SRM_FSM_CS_DOWN && now >= c->svc_since + c->p.cs_down_delay_ms)
            step_simple(c, SRM_FSM_EVENT_CS_DOWN);
        break;
    case SRM_CORE_SVC_START_FAILED:
        if (cs != SRM_FSM_CS_DOWN)
            step_simple(c, SRM_FSM_EVENT_CS_START_FAILED);
        break;
    default:
        break;
    }
}

static void fallback_sync(struct srm_core *c, uint64_t now)
{
    bool eligible = c->p.auto_fallback && srm_fsm_fallback_eligible(&c->fsm);

    if (eligible && !c->fb_armed) {
        c->fb_armed = true;
        c->fb_at = now + c->p.auto_fallback_delay_ms;
    } else if (!eligible) {
        c->fb_armed = false;
    }
    if (c->fb_armed && now >= c->fb_at) {
        c->fb_armed = false;
        step_simple(c, SRM_FSM_EVENT_FALLBACK_TIMER);
    }
}

static void settle(struct srm_core *c, uint64_t now)
{
    if (!c->started || c->settling)
        return;
    c->settling = true;
    for (int round = 0; round < 64; round++) {
        struct srm_fsm before = c->fsm;
        unsigned actual = c->actual;
        bool busy = c->op_busy;

        if (c->fsm.ha_enabled != c->ha)
            step_simple(c, c->ha ? SRM_FSM_EVENT_HA_ENABLED : SRM_FSM_EVENT_HA_DISABLED);
        if (c->fsm.db_ok != c->db_ok)
            step_simple(c, c->db_ok ? SRM_FSM_EVENT_DB_RECOVERED : SRM_FSM_EVENT_DB_FAILED);
        services_sync(c, now);
        if (c->lease_pending && c->view == PEER_VISIBLE && c->peer_ack >= 1 &&
            !((c->fsm.peer.serves | c->fsm.peer.wants) & SRM_FSM_PART_PEER)) {
            c->lease_pending = false;
            if (c->io.lease_cb)
                c->io.lease_cb(c, c->io.data);
        }
        if (!c->holding) {
            maybe_send(c);
            reconcile(c, now);
            fallback_sync(c, now);
            maybe_send(c);
        }
        if (memcmp(&before, &c->fsm, sizeof(before)) == 0 && actual == c->actual &&
            busy == c->op_busy)
            break;
    }
    c->settling = false;
}

/* ---- entry points ------------------------------------------------------------------------ */

int srm_core_start(struct srm_core *core, uint64_t now_ms, const struct srm_core_start *s)
{
    struct srm_fsm_event ev = {.type = SRM_FSM_EVENT_START};
    int rc;

    if (core->started)
        return SRM_EREFUSED;
    ev.u.start.kind = s->kind;
    ev.u.start.state = s->state;
    ev.u.start.reason = s->reason;
    ev.u.start.epoch = s->epoch;
    ev.u.start.ha_enabled = s->ha_enabled;
    ev.u.start.quorate = s->quorate;
    ev.u.start.db_ok = s->db_ok;
    ev.u.start.cs = s->svc == SRM_CORE_SVC_UP        ? SRM_FSM_CS_UP
                    : s->svc == SRM_CORE_SVC_STOPPED ? SRM_FSM_CS_STOPPED
                                                     : SRM_FSM_CS_PENDING;
    core->ha = s->ha_enabled;
    core->db_ok = s->db_ok;
    core->quorate = s->quorate;
    core->quorate_since = now_ms;
    core->memb_peer = s->peer_present;
    core->memb_peer_since = now_ms;
    core->svc = s->svc;
    core->svc_since = s->svc_down_since_ms;
    core->actual = s->serving & SRM_FSM_PART_ALL;
    core->lease_pending = s->after_crash;
    rc = step(core, &ev);
    if (rc < 0)
        return rc;
    core->fsm.peer_present = s->peer_present;
    core->started = true;
    settle(core, now_ms);
    return 0;
}

int srm_core_peer_report(struct srm_core *core, uint64_t now_ms, uint64_t incarnation, bool back,
                         const void *payload, size_t len)
{
    struct srm_core_wire w;
    struct srm_fsm_event ev = {.type = SRM_FSM_EVENT_PEER_KEEPALIVE};
    int rc = srm_core_wire_decode(payload, len, &w);

    if (rc < 0)
        return rc;
    if (!core->started)
        return 0;
    if (back || core->view == PEER_LOST || (core->peer_inc && core->peer_inc != incarnation))
        ev.type = SRM_FSM_EVENT_PEER_BACK;
    if (core->peer_inc != incarnation || !report_equal(&w.report, &core->last_rcvd))
        core->need_ack = true;
    core->last_rcvd = w.report;
    core->peer_inc = incarnation;
    core->rx_seq = w.seq;
    /* An acknowledgement of another incarnation's reports acknowledges nothing. */
    core->peer_ack = w.ack_inc == core->incarnation ? w.ack : 0;
    core->view = PEER_VISIBLE;
    memcpy(core->peer_ext, w.ext ? w.ext : "", w.ext_len);
    core->peer_ext_len = w.ext_len;
    ev.u.peer = w.report;
    step(core, &ev);
    settle(core, now_ms);
    return 0;
}

void srm_core_peer_lost(struct srm_core *core, uint64_t now_ms, enum srm_fsm_loss kind)
{
    struct srm_fsm_event ev = {.type = SRM_FSM_EVENT_PEER_LOST, .u.loss = kind};

    /* A loss is reported once, until the peer is heard again; but a lost peer whose node
     * came back into the membership and stayed silent is lost anew (it counts as absent
     * from then on). */
    if (!core->started || (core->view == PEER_LOST && !core->fsm.peer_present))
        return;
    core->view = PEER_LOST;
    core->lost_at = now_ms;
    core->lost_kind = kind;
    step(core, &ev);
    settle(core, now_ms);
}

void srm_core_membership(struct srm_core *core, uint64_t now_ms, bool peer_present, bool quorate)
{
    if (!core->started)
        return;
    if (peer_present) {
        /* The peer joined, or a ring formed around it (it may have restarted meanwhile):
         * tell it where we stand, and count its silence from now. */
        core->memb_peer_since = now_ms;
        core->need_ack = true;
    }
    core->memb_peer = peer_present;
    if (!core->quorate && quorate)
        core->quorate_since = now_ms;
    core->quorate = quorate;
    if (core->fsm.quorate != quorate) {
        struct srm_fsm_event q = {.type = quorate ? SRM_FSM_EVENT_QUORUM_REGAINED
                                                  : SRM_FSM_EVENT_QUORUM_LOST,
                                  .u.quorum.peer_present = peer_present};
        step(core, &q);
    }
    if (core->view == PEER_VISIBLE && !peer_present)
        srm_core_peer_lost(core, now_ms, SRM_FSM_LOSS_NODE);
    settle(core, now_ms);
}

void srm_core_resume(struct srm_core *core, uint64_t now_ms, unsigned serving)
{
    /* What the engines serve now: the lease srmd could not renew may have run out. */
    core->actual &= serving;
    core->holding = true;
    /* The peer may have declared this node lost meanwhile: whatever it acknowledged before
     * no longer counts. */
    core->wants_seq = core->tx_seq + 1;
    core->need_ack = true;
    (void)now_ms; /* the report goes out once the caller has delivered what queued up */
}

void srm_core_resume_done(struct srm_core *core, uint64_t now_ms)
{
    core->holding = false;
    settle(core, now_ms);
}

void srm_core_services(struct srm_core *core, uint64_t now_ms, enum srm_core_svc svc,
                       uint64_t since_ms)
{
    if (svc == SRM_CORE_SVC_DOWN && core->svc == SRM_CORE_SVC_DOWN)
        since_ms = core->svc_since; /* still the same outage */
    core->svc = svc;
    core->svc_since = since_ms;
    settle(core, now_ms);
}

void srm_core_datastore(struct srm_core *core, uint64_t now_ms, bool ok)
{
    core->db_ok = ok;
    settle(core, now_ms);
}

void srm_core_ha(struct srm_core *core, uint64_t now_ms, bool enabled)
{
    core->ha = enabled;
    settle(core, now_ms);
}

void srm_core_engines_stopped(struct srm_core *core, uint64_t now_ms, unsigned parts)
{
    core->actual &= ~parts;
    /* Whatever was being granted or drained is moot: the operation is abandoned (the
     * caller does not report its completion) and the plan starts again from here. */
    if (core->op_busy) {
        core->op_busy = false;
        core->op_release = core->op_acquire = 0;
    }
    settle(core, now_ms);
}

void srm_core_op_done(struct srm_core *core, uint64_t now_ms, int err)
{
    if (!core->op_busy)
        return;
    core->op_busy = false;
    if (core->op_release) {
        core->actual &= ~core->op_release;
    } else if (err < 0) {
        enum srm_fsm_state st = core->fsm.state;
        core->retry_at = now_ms + RETRY_MS;
        if (st == SRM_FSM_STATE_TAKING_OVER || st == SRM_FSM_STATE_BACKUP_ACTIVATED)
            step_simple(core, SRM_FSM_EVENT_TAKEOVER_FAILED);
        else if (st == SRM_FSM_STATE_TAKING_BACK)
            step_simple(core, SRM_FSM_EVENT_TAKEBACK_FAILED);
    } else {
        core->actual |= core->op_acquire;
    }
    core->op_release = core->op_acquire = 0;
    settle(core, now_ms);
}

int srm_core_admin(struct srm_core *core, uint64_t now_ms, enum srm_fsm_event_type op,
                   const char **ret_why)
{
    const char *why = NULL;
    int rc;

    if (op != SRM_FSM_EVENT_ADMIN_FAILOVER && op != SRM_FSM_EVENT_ADMIN_FALLBACK &&
        op != SRM_FSM_EVENT_ADMIN_RECOVER)
        return -EINVAL;
    rc = srm_fsm_check(&core->fsm, op, &why);
    if (rc == 0)
        rc = step_simple(core, op);
    if (ret_why)
        *ret_why = why;
    settle(core, now_ms);
    return rc;
}

void srm_core_internal_error(struct srm_core *core, uint64_t now_ms)
{
    step_simple(core, SRM_FSM_EVENT_INTERNAL_ERROR);
    settle(core, now_ms);
}

uint64_t srm_core_tick(struct srm_core *core, uint64_t now_ms)
{
    uint64_t next = UINT64_MAX;
    struct srm_fsm_own_plan p;

    settle(core, now_ms);
    if (!core->started)
        return next;
    if (core->fb_armed && core->fb_at < next)
        next = core->fb_at;
    if (core->svc == SRM_CORE_SVC_DOWN && core->fsm.cs != SRM_FSM_CS_DOWN) {
        uint64_t t = core->svc_since + core->p.cs_down_delay_ms;
        if (t < next)
            next = t;
    }
    plan(core, now_ms, &p);
    if (p.blocked && !core->op_busy) {
        uint64_t t = fence_deadline(core);
        if (t > now_ms && t < next)
            next = t;
    }
    if (core->retry_at > now_ms && core->retry_at < next)
        next = core->retry_at;
    return next;
}

int srm_core_set_ext(struct srm_core *core, uint64_t now_ms, const void *ext, size_t len)
{
    if (len > SRM_CORE_EXT_MAX || (len && !ext))
        return -EINVAL;
    if (len == core->ext_len && (len == 0 || memcmp(ext, core->ext, len) == 0))
        return 0;
    if (len)
        memcpy(core->ext, ext, len);
    core->ext_len = len;
    core->ext_dirty = true;
    settle(core, now_ms);
    return 0;
}

void srm_core_send(struct srm_core *core, uint64_t now_ms)
{
    (void)now_ms;
    if (core->started)
        send_report(core);
}

void srm_core_set_params(struct srm_core *core, uint64_t now_ms,
                         const struct srm_core_params *params)
{
    core->p = *params;
    settle(core, now_ms);
}

const struct srm_fsm *srm_core_fsm(const struct srm_core *core)
{
    return &core->fsm;
}

unsigned srm_core_serving(const struct srm_core *core)
{
    return core->actual;
}

unsigned srm_core_acquiring(const struct srm_core *core)
{
    return core->op_busy ? core->op_acquire : 0;
}

bool srm_core_settled(const struct srm_core *core, uint64_t now_ms)
{
    struct srm_fsm_own_plan p;

    if (core->op_busy || srm_fsm_state_is_transient(core->fsm.state))
        return false;
    plan(core, now_ms, &p);
    return p.release == 0 && p.acquire == 0 && p.blocked == 0 && p.complete == SRM_FSM_EVENT_MAX;
}

const void *srm_core_peer_ext(const struct srm_core *core, size_t *ret_len)
{
    *ret_len = core->peer_ext_len;
    return core->peer_ext;
}

uint64_t srm_core_peer_incarnation(const struct srm_core *core)
{
    return core->peer_inc;
}
