/*
 * The two-node simulator. See sim.h for what is modelled.
 *
 * The world (power, network sides, engines, critical services, Corosync views) changes
 * through events on a priority queue ordered by (time, sequence). Each node's srmd is the
 * node core srmd runs (ha/core), fed by a model of the heartbeat layer (keepalive timeouts,
 * incarnations, process-down notices, restart announcements) and by the world, with its
 * callbacks carried out on the world. A paused srmd observes nothing until resumed: what
 * Corosync delivers to it queues up in order, messages and membership changes alike (CPG's
 * virtual synchrony).
 */
#include "sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "srm_core.h"
#include "srm_error.h"

enum ev_kind {
    EV_DELIVER,   /* a report reaches a node */
    EV_TICK,      /* keepalive interval */
    EV_HBCHECK,   /* keepalive / initialization timeout check */
    EV_MEMB,      /* the node sees a ring that formed */
    EV_PROCDOWN,  /* CPG: the peer's srmd process left the group */
    EV_LEASE,     /* engines' lease runs out unless srmd renewed it */
    EV_SVC_READY, /* critical services finished starting */
    EV_CSCHECK,   /* a critical service has been down for the delay */
    EV_OPDONE,    /* the engines finished an acquisition or a release */
    EV_WAKE,      /* the core's next deadline, configuration propagation */
    EV_FLUSH,     /* srmd processes what its callbacks queued */
};

#define MSG_MAX 64 /* the simulator attaches no extension: reports are 32 bytes */

struct msg {
    uint64_t incarnation;
    bool restarting; /* the heartbeat envelope's restart announcement */
    uint16_t len;
    uint8_t payload[MSG_MAX];
};

/* What Corosync and the engines deliver to srmd, in order. */
enum inbox_kind { IN_MSG, IN_MEMB, IN_PROCDOWN, IN_ENGINES_STOPPED, IN_OPDONE };
struct inbox_item {
    enum inbox_kind kind;
    struct msg msg;    /* IN_MSG; IN_PROCDOWN: the incarnation that left */
    bool memb_peer;    /* IN_MEMB */
    bool memb_quorate; /* IN_MEMB */
    unsigned parts;    /* IN_ENGINES_STOPPED */
    int err;           /* IN_OPDONE */
};

struct ev {
    int64_t at;
    uint64_t seq;
    enum ev_kind kind;
    int node;
    uint64_t gen;
    int err;
    unsigned parts;
    bool acquire;
    struct msg msg;
};

enum svc_state { SVC_STOPPED, SVC_STARTING, SVC_RUNNING, SVC_FAILED };
enum hb_state { HB_UNKNOWN, HB_VISIBLE, HB_LOST };

struct node {
    int id;
    char name[4];
    bool powered;
    bool running; /* srmd process exists */
    bool paused;  /* SIGSTOP */
    uint64_t incarnation;
    struct srm_core *core;   /* srmd's core while it runs */
    struct srm_fsm last_fsm; /* the machine as srmd left it */

    struct {
        bool present;
        bool corrupt;
        enum srm_fsm_state state;
        enum srm_fsm_reason reason;
        uint32_t epoch;
    } disk;

    /* engines */
    unsigned actual;
    uint64_t lease_gen; /* bumped when srmd renews the lease: cancels a pending expiry */
    bool crashed;       /* srmd went away without announcing it */
    bool lease_pending; /* restarted after a crash: the core says when to renew */

    /* critical services and datastore */
    enum svc_state svc;
    uint64_t svc_gen;
    bool broken;
    int64_t broken_since;
    bool startfail;
    bool db_failed;
    bool takeover_fail;
    bool takeback_fail;

    /* this node's Corosync view */
    bool memb_peer;
    bool memb_quorate;

    /* the heartbeat layer (heartbeat/ in srmd) */
    enum hb_state hb;
    int64_t last_heard;
    int64_t started_at;
    uint64_t peer_inc;
    bool peer_restarting;
    int64_t lost_at;
    int64_t rejoined_at; /* the lost peer's node came back into the membership */
    bool s_memb_peer;    /* the membership as srmd has read it */
    uint64_t hb_gen;
    uint64_t tick_gen;
    struct msg last_sent; /* what the heartbeat layer resends every interval */

    struct inbox_item *inbox;
    size_t ninbox, capinbox;

    /* the engines' side of an acquisition or release */
    uint64_t op_gen;
    uint64_t wake_gen;

    bool syncing;
    bool resync;
};

struct sim {
    struct sim_params p;
    uint64_t rng;
    int64_t now;
    uint64_t seq;
    struct ev *heap;
    size_t n, cap;
    struct node nodes[SIM_NODES];
    int side[SIM_NODES];
    uint64_t topo_gen; /* counts topology changes */
    struct ring {
        int64_t at;     /* when it forms */
        bool cancelled; /* a further change came before it formed */
        bool peer;      /* the two nodes are in it together */
        bool quorate[SIM_NODES];
    } * rings;
    size_t nrings, caprings;
    bool ha;
    int64_t spike_until;
    int64_t spike_ms;
    int64_t last_deliver[SIM_NODES]; /* keeps CPG order per direction */
    FILE *timeline;
    FILE *trace;
    bool violated;
    char violation[512];
    struct sim_stats stats;
};

/* ---- parameters ------------------------------------------------------------------- */

void sim_params_default(struct sim_params *p)
{
    *p = (struct sim_params){
        .keepalive_interval = 15000,
        .keepalive_timeout = 60000,
        .init_timeout = 120000,
        .cs_down_delay = 90000,
        .auto_fallback = false,
        .auto_fallback_delay = 30 * 60000,
        .detect = 2200,
        .merge = 1400,
        .procdown = 5,
        .net_delay = 1,
        .net_jitter = 2,
        .lease = 5000,
        .fence_node = 500,
        .fence_process = 6000,
        .svc_start = 2000,
        .release_time = 100,
        .acquire_time = 50,
        .ha_propagation = 300,
        .others = 2,
    };
}

int sim_parse_duration(const char *s, int64_t *ret_ms)
{
    char *end;
    double v = strtod(s, &end);
    double mult = 1;

    if (end == s || v < 0)
        return -EINVAL;
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -EINVAL;
    *ret_ms = (int64_t)(v * mult + 0.5);
    return 0;
}

int sim_params_set(struct sim_params *p, const char *name, const char *value)
{
    static const struct {
        const char *name;
        size_t off;
    } durations[] = {
#define D(f) {#f, offsetof(struct sim_params, f)}
        D(keepalive_interval),
        D(keepalive_timeout),
        D(init_timeout),
        D(cs_down_delay),
        D(auto_fallback_delay),
        D(detect),
        D(merge),
        D(procdown),
        D(net_delay),
        D(net_jitter),
        D(lease),
        D(fence_node),
        D(fence_process),
        D(svc_start),
        D(release_time),
        D(acquire_time),
        D(ha_propagation),
#undef D
    };

    if (strcmp(name, "auto_fallback") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "on") == 0)
            p->auto_fallback = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "off") == 0)
            p->auto_fallback = false;
        else
            return -EINVAL;
        return 0;
    }
    if (strcmp(name, "others") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 0 || v > 100)
            return -EINVAL;
        p->others = (int)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(name, durations[i].name) == 0)
            return sim_parse_duration(value, (int64_t *)((char *)p + durations[i].off));
    }
    return -EINVAL;
}

/* ---- utilities ---------------------------------------------------------------------- */

uint64_t sim_rand(struct sim *sim)
{
    /* splitmix64: small, good enough, and the same everywhere */
    uint64_t z = (sim->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    int64_t s = ms / 1000;
    snprintf(buf, size, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64, s / 3600,
             (s / 60) % 60, s % 60, ms % 1000);
}

static void out(struct sim *sim, FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void out(struct sim *sim, FILE *f, const char *fmt, ...)
{
    char t[32];
    va_list ap;

    if (!f)
        return;
    fmt_time(sim->now, t, sizeof(t));
    fprintf(f, "[%s] ", t);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

static void violate(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violate(struct sim *sim, const char *fmt, ...)
{
    char t[32];
    va_list ap;
    int off;

    if (sim->violated)
        return;
    sim->violated = true;
    fmt_time(sim->now, t, sizeof(t));
    off = snprintf(sim->violation, sizeof(sim->violation), "at %s: ", t);
    va_start(ap, fmt);
    vsnprintf(sim->violation + off, sizeof(sim->violation) - (size_t)off, fmt, ap);
    va_end(ap);
    out(sim, sim->timeline, "VIOLATION %s", sim->violation);
}

/* ---- event queue -------------------------------------------------------------------- */

static bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push_ev(struct sim *sim, struct ev e)
{
    if (sim->n == sim->cap) {
        sim->cap = sim->cap ? sim->cap * 2 : 256;
        sim->heap = realloc(sim->heap, sim->cap * sizeof(*sim->heap));
        if (!sim->heap)
            abort();
    }
    e.seq = sim->seq++;
    size_t i = sim->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&e, &sim->heap[parent]))
            break;
        sim->heap[i] = sim->heap[parent];
        i = parent;
    }
    sim->heap[i] = e;
}

static void push(struct sim *sim, int64_t at, enum ev_kind kind, int node, uint64_t gen,
                 const struct msg *msg)
{
    struct ev e = {.at = at, .kind = kind, .node = node, .gen = gen};
    if (msg)
        e.msg = *msg;
    push_ev(sim, e);
}

static struct ev pop(struct sim *sim)
{
    struct ev top = sim->heap[0];
    struct ev last = sim->heap[--sim->n];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *best = &last;
        if (l < sim->n && ev_before(&sim->heap[l], best)) {
            m = l;
            best = &sim->heap[l];
        }
        if (r < sim->n && ev_before(&sim->heap[r], best))
            m = r;
        if (m == i)
            break;
        sim->heap[i] = sim->heap[m];
        i = m;
    }
    if (sim->n)
        sim->heap[i] = last;
    return top;
}

/* ---- topology ----------------------------------------------------------------------- */

static struct node *peer_of(struct sim *sim, struct node *n)
{
    return &sim->nodes[1 - n->id];
}

static bool connected(const struct sim *sim)
{
    return sim->nodes[0].powered && sim->nodes[1].powered && sim->side[0] == sim->side[1];
}

static bool quorate_now(const struct sim *sim, int i)
{
    int votes = 0, total = SIM_NODES + sim->p.others;

    if (!sim->nodes[i].powered)
        return false;
    for (int j = 0; j < SIM_NODES; j++)
        if (sim->nodes[j].powered && sim->side[j] == sim->side[i])
            votes++;
    if (sim->side[i] == 0)
        votes += sim->p.others;
    return 2 * votes > total;
}

static bool active(const struct node *n)
{
    return n->powered && n->running && !n->paused;
}

/* Both srmds run and the network joins them. */
static bool can_talk(const struct sim *sim)
{
    return connected(sim) && active(&sim->nodes[0]) && active(&sim->nodes[1]);
}

/*
 * A topology change makes Corosync form a new ring: after the detection delay when a node
 * loses members or quorum, after the merge delay when it only gains. Every node sees the
 * new ring at about the same moment (within 50 ms); a further change before then replaces
 * the pending ring formation.
 */
static void topology_changed(struct sim *sim)
{
    bool loss = false;

    sim->topo_gen++;
    /* Rings still gathering are replaced; one that formed stays formed. */
    for (size_t r = 0; r < sim->nrings; r++)
        if (sim->rings[r].at > sim->now)
            sim->rings[r].cancelled = true;
    for (int i = 0; i < SIM_NODES; i++) {
        struct node *n = &sim->nodes[i];
        if (!n->powered)
            continue;
        if ((n->memb_peer && !connected(sim)) || (n->memb_quorate && !quorate_now(sim, i)))
            loss = true;
    }
    if (sim->nrings == sim->caprings) {
        sim->caprings = sim->caprings ? sim->caprings * 2 : 16;
        sim->rings = realloc(sim->rings, sim->caprings * sizeof(*sim->rings));
        if (!sim->rings)
            abort();
    }
    struct ring *ring = &sim->rings[sim->nrings];
    ring->at = sim->now + (loss ? sim->p.detect : sim->p.merge);
    ring->cancelled = false;
    ring->peer = connected(sim);
    for (int i = 0; i < SIM_NODES; i++)
        ring->quorate[i] = quorate_now(sim, i);
    for (int i = 0; i < SIM_NODES; i++)
        if (sim->nodes[i].powered)
            push(sim, ring->at + (int64_t)(sim_rand(sim) % 51), EV_MEMB, i, sim->nrings, NULL);
    sim->nrings++;
}

/* ---- srmd: the heartbeat model around the node core ----------------------------------- */

static void srmd_sync(struct sim *sim, struct node *n);

static void enqueue(struct node *n, const struct inbox_item *item)
{
    if (n->ninbox == n->capinbox) {
        n->capinbox = n->capinbox ? n->capinbox * 2 : 16;
        n->inbox = realloc(n->inbox, n->capinbox * sizeof(*n->inbox));
        if (!n->inbox)
            abort();
    }
    n->inbox[n->ninbox++] = *item;
}

static void start_services(struct sim *sim, struct node *n)
{
    if (n->svc == SVC_RUNNING || n->svc == SVC_STARTING)
        return;
    n->svc = SVC_STARTING;
    push(sim, sim->now + sim->p.svc_start, EV_SVC_READY, n->id, ++n->svc_gen, NULL);
}

/* The engines stop serving (lease ran out, quorum fence, services stopped): whatever they
 * were being granted or drained is moot. srmd learns it in order with the rest. */
static void stop_serving(struct sim *sim, struct node *n)
{
    unsigned had = n->actual;

    n->actual = 0;
    n->op_gen++;
    if (n->running) {
        enqueue(n, &(struct inbox_item){.kind = IN_ENGINES_STOPPED, .parts = SRM_FSM_PART_ALL});
        if (had)
            push(sim, sim->now, EV_FLUSH, n->id, 0, NULL);
    }
}

static enum srm_core_svc svc_view(const struct node *n, uint64_t *ret_since)
{
    *ret_since = (uint64_t)n->broken_since;
    switch (n->svc) {
    case SVC_RUNNING:
        return n->broken ? SRM_CORE_SVC_DOWN : SRM_CORE_SVC_UP;
    case SVC_STARTING:
        return SRM_CORE_SVC_STARTING;
    case SVC_FAILED:
        return SRM_CORE_SVC_START_FAILED;
    default:
        return SRM_CORE_SVC_STOPPED;
    }
}

/* -- the core's callbacks: they act on the world, never call the core back -- */

static struct node *node_of(void *data)
{
    return data;
}

static struct sim *sim_of(struct node *n)
{
    return (struct sim *)((char *)(n - n->id) - offsetof(struct sim, nodes));
}

static void deliver(struct sim *sim, struct node *n, const struct msg *m)
{
    struct node *p = peer_of(sim, n);

    sim->stats.messages++;
    if (!connected(sim) || !n->memb_peer)
        return; /* CPG delivers only within the membership */
    int64_t d = sim->p.net_delay;
    if (sim->p.net_jitter > 0)
        d += (int64_t)(sim_rand(sim) % (uint64_t)(sim->p.net_jitter + 1));
    if (sim->now < sim->spike_until)
        d += sim->spike_ms;
    int64_t at = sim->now + d;
    if (at < sim->last_deliver[p->id])
        at = sim->last_deliver[p->id];
    sim->last_deliver[p->id] = at;
    push(sim, at, EV_DELIVER, p->id, 0, m);
}

static void send_cb(struct srm_core *core, const void *payload, size_t len, void *data)
{
    struct node *n = node_of(data);
    struct sim *sim = sim_of(n);

    (void)core;
    if (len > MSG_MAX)
        abort();
    if (sim->trace) {
        struct srm_core_wire w;
        if (srm_core_wire_decode(payload, len, &w) == 0)
            out(sim, sim->trace, "%s sends %s serves %u wants %u seq %u ack %u", n->name,
                srm_fsm_state_name((enum srm_fsm_state)w.report.state), w.report.serves,
                w.report.wants, w.seq, w.ack);
    }
    n->last_sent.incarnation = n->incarnation;
    n->last_sent.restarting = false;
    n->last_sent.len = (uint16_t)len;
    memcpy(n->last_sent.payload, payload, len);
    deliver(sim, n, &n->last_sent);
}

static void op_cb(struct node *n, unsigned parts, bool acquire)
{
    struct sim *sim = sim_of(n);
    const struct srm_fsm *f = srm_core_fsm(n->core);
    struct ev e = {
        .kind = EV_OPDONE, .node = n->id, .gen = ++n->op_gen, .parts = parts, .acquire = acquire};

    if (acquire) {
        bool takeover =
            f->state == SRM_FSM_STATE_TAKING_OVER || f->state == SRM_FSM_STATE_BACKUP_ACTIVATED;
        if (f->peer_status != SRM_FSM_PEER_VISIBLE) {
            sim->stats.takeovers++;
            /* Quorum is what Corosync's current membership says on this node: within the
             * detection window after a cut, the previous membership still stands. */
            if (!n->memb_quorate)
                violate(sim, "%s takes over partitions %u of a peer it cannot see without quorum",
                        n->name, parts);
        }
        if ((n->takeover_fail && takeover) ||
            (n->takeback_fail && f->state == SRM_FSM_STATE_TAKING_BACK)) {
            n->takeover_fail = n->takeover_fail && !takeover;
            n->takeback_fail = n->takeback_fail && takeover;
            e.err = -EIO;
        }
        out(sim, sim->trace, "%s acquires %u (peer %s)%s", n->name, parts,
            f->peer_status == SRM_FSM_PEER_VISIBLE ? "in sight" : "out of sight",
            e.err ? ": fails" : "");
    } else {
        out(sim, sim->trace, "%s releases %u", n->name, parts);
    }
    e.at = sim->now + (acquire ? sim->p.acquire_time : sim->p.release_time);
    push_ev(sim, e);
}

static void acquire_cb(struct srm_core *core, unsigned parts, void *data)
{
    (void)core;
    op_cb(node_of(data), parts, true);
}

static void release_cb(struct srm_core *core, unsigned parts, void *data)
{
    (void)core;
    op_cb(node_of(data), parts, false);
}

static void services_cb(struct srm_core *core, bool start, void *data)
{
    struct node *n = node_of(data);
    struct sim *sim = sim_of(n);

    (void)core;
    out(sim, sim->trace, "%s services: %s", n->name, start ? "start" : "stop");
    if (start) {
        start_services(sim, n);
        return;
    }
    n->svc = SVC_STOPPED;
    n->svc_gen++;
    stop_serving(sim, n); /* engines stop with their services */
}

static void step_cb(struct srm_core *core, enum srm_fsm_event_type type, int rc,
                    const struct srm_fsm_step *st, void *data)
{
    struct node *n = node_of(data);
    struct sim *sim = sim_of(n);

    if (rc == SRM_EREFUSED) {
        sim->stats.refusals++;
        if (sim->trace)
            out(sim, sim->trace, "%s refused %s in %s: %s", n->name, srm_fsm_event_name(type),
                srm_fsm_state_name(st->from), st->why);
        return;
    }
    if (rc < 0)
        return;
    if (st->effects & SRM_FSM_EFFECT(PERSIST)) {
        n->disk.present = true;
        n->disk.corrupt = false;
        n->disk.state = st->to;
        n->disk.reason = st->to_reason;
        n->disk.epoch = srm_core_fsm(core)->epoch;
    }
    if (st->from == st->to && st->from_reason == st->to_reason)
        return;
    sim->stats.transitions++;
    out(sim, sim->timeline, "%s  %s / %s  ->  %s / %s   [%s: %s]", n->name,
        srm_fsm_state_name(st->from), srm_fsm_reason_name(st->from_reason),
        srm_fsm_state_name(st->to), srm_fsm_reason_name(st->to_reason), srm_fsm_event_name(type),
        st->why);
}

static void lease_cb(struct srm_core *core, void *data)
{
    struct node *n = node_of(data);

    (void)core;
    if (n->lease_pending) {
        n->lease_pending = false;
        n->lease_gen++; /* renewed: the pending expiry no longer applies */
    }
}

/* -- the heartbeat layer -- */

static void hb_lost(struct sim *sim, struct node *n, enum srm_fsm_loss kind)
{
    n->hb = HB_LOST;
    n->lost_at = sim->now;
    n->peer_restarting = false;
    out(sim, sim->trace, "%s lost its peer (%s)", n->name, srm_fsm_loss_name(kind));
    srm_core_peer_lost(n->core, (uint64_t)sim->now, kind);
}

static void hb_report(struct sim *sim, struct node *n, const struct msg *m)
{
    bool back = n->hb == HB_LOST || (n->peer_inc != 0 && n->peer_inc != m->incarnation);

    if (n->peer_inc != m->incarnation)
        n->peer_restarting = false;
    if (m->restarting)
        n->peer_restarting = true;
    n->peer_inc = m->incarnation;
    n->hb = HB_VISIBLE;
    n->last_heard = sim->now;
    push(sim, sim->now + sim->p.keepalive_timeout, EV_HBCHECK, n->id, ++n->hb_gen, NULL);
    if (m->len && srm_core_peer_report(n->core, (uint64_t)sim->now, m->incarnation, back,
                                       m->payload, m->len) < 0)
        violate(sim, "%s received a report it could not decode", n->name);
}

static void hb_membership(struct sim *sim, struct node *n, const struct inbox_item *it)
{
    n->s_memb_peer = it->memb_peer;
    srm_core_membership(n->core, (uint64_t)sim->now, it->memb_peer, it->memb_quorate);
    /* The peer's node rejoined but its srmd is not heard yet: a new keepalive timeout. */
    if (n->hb == HB_LOST && it->memb_peer) {
        n->rejoined_at = sim->now;
        push(sim, sim->now + sim->p.keepalive_timeout, EV_HBCHECK, n->id, ++n->hb_gen, NULL);
    }
    if (n->hb == HB_VISIBLE && !it->memb_peer) {
        n->hb = HB_LOST; /* the core saw the node loss in the same membership */
        n->lost_at = sim->now;
        out(sim, sim->trace, "%s lost its peer (node)", n->name);
    }
}

static void hb_timeouts(struct sim *sim, struct node *n)
{
    if (n->hb == HB_VISIBLE && sim->now - n->last_heard >= sim->p.keepalive_timeout)
        hb_lost(sim, n, SRM_FSM_LOSS_TIMEOUT);
    else if (n->hb == HB_UNKNOWN && sim->now - n->started_at >= sim->p.init_timeout)
        hb_lost(sim, n, SRM_FSM_LOSS_TIMEOUT);
    else if (n->hb == HB_LOST && n->rejoined_at > n->lost_at && n->s_memb_peer &&
             sim->now - n->rejoined_at >= sim->p.keepalive_timeout)
        hb_lost(sim, n, SRM_FSM_LOSS_TIMEOUT); /* its node came back, its srmd did not */
}

static void srmd_sync(struct sim *sim, struct node *n)
{
    uint64_t now = (uint64_t)sim->now;

    if (!active(n))
        return;
    if (n->syncing) {
        n->resync = true;
        return;
    }
    n->syncing = true;
    for (int rounds = 0; rounds < 64; rounds++) {
        n->resync = false;
        for (size_t i = 0; i < n->ninbox; i++) {
            const struct inbox_item it = n->inbox[i];
            switch (it.kind) {
            case IN_MSG:
                hb_report(sim, n, &it.msg);
                break;
            case IN_PROCDOWN:
                /* CPG names the process that left: a restarted peer's old process leaving
                 * says nothing about the new one; an announced restart waits for the
                 * keepalive timeout. */
                if (n->hb == HB_VISIBLE && !n->peer_restarting && it.msg.incarnation == n->peer_inc)
                    hb_lost(sim, n, SRM_FSM_LOSS_PROCESS);
                break;
            case IN_MEMB:
                hb_membership(sim, n, &it);
                break;
            case IN_ENGINES_STOPPED:
                srm_core_engines_stopped(n->core, now, it.parts);
                break;
            case IN_OPDONE:
                srm_core_op_done(n->core, now, it.err);
                break;
            }
        }
        n->ninbox = 0;
        hb_timeouts(sim, n);
        uint64_t since;
        enum srm_core_svc svc = svc_view(n, &since);
        srm_core_services(n->core, now, svc, since);
        srm_core_datastore(n->core, now, !n->db_failed);
        srm_core_ha(n->core, now, sim->ha);
        if (!n->resync && n->ninbox == 0)
            break;
    }
    n->syncing = false;
    uint64_t next = srm_core_tick(n->core, now);
    if (next != UINT64_MAX)
        push(sim, (int64_t)next, EV_WAKE, n->id, ++n->wake_gen, NULL);
}

static void srmd_start(struct sim *sim, struct node *n)
{
    struct srm_core_params cp;
    struct srm_core_io io = {.send_cb = send_cb,
                             .acquire_cb = acquire_cb,
                             .release_cb = release_cb,
                             .services_cb = services_cb,
                             .step_cb = step_cb,
                             .lease_cb = lease_cb,
                             .data = n};
    struct srm_core_start st = {0};
    uint64_t since;

    n->running = true;
    n->paused = false;
    n->incarnation = sim_rand(sim) | 1;
    n->started_at = sim->now;
    n->hb = HB_UNKNOWN;
    n->peer_inc = 0;
    n->peer_restarting = false;
    n->ninbox = 0;
    n->s_memb_peer = n->memb_peer;
    n->op_gen++;
    /* After an announced restart the peer did not start a fence: renew the engines' lease
     * at once. After a crash the peer may be about to take over: the core says when. */
    n->lease_pending = n->crashed;
    if (!n->crashed)
        n->lease_gen++;

    srm_core_params_default(&cp);
    cp.cs_down_delay_ms = (uint64_t)sim->p.cs_down_delay;
    cp.auto_fallback = sim->p.auto_fallback;
    cp.auto_fallback_delay_ms = (uint64_t)sim->p.auto_fallback_delay;
    cp.fence_node_ms = (uint64_t)sim->p.fence_node;
    cp.fence_process_ms = (uint64_t)sim->p.fence_process;
    cp.fence_timeout_ms = 0;
    srm_core_free(n->core);
    n->core = NULL;
    if (srm_core_new(&cp, &io, n->incarnation, &n->core) < 0)
        abort();

    if (!n->disk.present)
        st.kind = SRM_FSM_START_FRESH;
    else if (n->disk.corrupt)
        st.kind = SRM_FSM_START_CORRUPT;
    else {
        st.kind = SRM_FSM_START_RESUME;
        st.state = n->disk.state;
        st.reason = n->disk.reason;
        st.epoch = n->disk.epoch;
    }
    st.after_crash = n->crashed;
    st.ha_enabled = sim->ha;
    st.quorate = n->memb_quorate;
    st.peer_present = n->memb_peer;
    st.db_ok = !n->db_failed;
    st.svc = svc_view(n, &since);
    st.svc_down_since_ms = since;
    st.serving = n->actual;
    n->crashed = false;
    out(sim, sim->timeline, "%s  srmd starts (%s)", n->name,
        st.kind == SRM_FSM_START_FRESH     ? "fresh"
        : st.kind == SRM_FSM_START_CORRUPT ? "persisted state unreadable"
                                           : srm_fsm_state_name(n->disk.state));
    if (srm_core_start(n->core, (uint64_t)sim->now, &st) < 0)
        abort();
    push(sim, sim->now + sim->p.keepalive_interval, EV_TICK, n->id, ++n->tick_gen, NULL);
    push(sim, sim->now + sim->p.init_timeout, EV_HBCHECK, n->id, ++n->hb_gen, NULL);
    srmd_sync(sim, n);
}

static void srmd_stop(struct sim *sim, struct node *n, bool announce)
{
    struct node *p = peer_of(sim, n);
    int64_t lease = sim->p.lease;

    if (!n->running)
        return;
    if (announce && !n->paused) {
        struct msg m = n->last_sent;
        m.restarting = true;
        deliver(sim, n, &m);
        /* An announced restart extends the engines' lease up to just before the peer's
         * keepalive timeout, so users stay served while srmd comes back. */
        lease = sim->p.keepalive_timeout > 6000 ? sim->p.keepalive_timeout - 5000 : lease;
    }
    n->last_fsm = *srm_core_fsm(n->core);
    srm_core_free(n->core);
    n->core = NULL;
    n->running = false;
    n->paused = false;
    n->ninbox = 0;
    n->op_gen++;
    if (!announce)
        n->crashed = true;
    push(sim, sim->now + lease, EV_LEASE, n->id, ++n->lease_gen, NULL);
    if (connected(sim) && p->running) {
        struct msg gone = {.incarnation = n->incarnation};
        push(sim, sim->now + sim->p.procdown, EV_PROCDOWN, p->id, 0, &gone);
    }
}

/* ---- invariants ----------------------------------------------------------------------- */

static void check_invariants(struct sim *sim)
{
    const struct node *a = &sim->nodes[0], *b = &sim->nodes[1];
    bool a_users = (a->actual & SRM_FSM_PART_OWN) && (b->actual & SRM_FSM_PART_PEER);
    bool b_users = (a->actual & SRM_FSM_PART_PEER) && (b->actual & SRM_FSM_PART_OWN);

    if (a_users || b_users) {
        const struct srm_fsm *fa = sim_fsm(sim, 0), *fb = sim_fsm(sim, 1);
        violate(sim, "%s's users are served by both nodes%s (n1 %s/%s, n2 %s/%s)",
                a_users ? "n1" : "n2", can_talk(sim) ? " while they can talk" : "",
                srm_fsm_state_name(fa->state), srm_fsm_reason_name(fa->reason),
                srm_fsm_state_name(fb->state), srm_fsm_reason_name(fb->reason));
    }
}

/* ---- event dispatch --------------------------------------------------------------------- */

static void dispatch(struct sim *sim, const struct ev *e)
{
    struct node *n = &sim->nodes[e->node];

    switch (e->kind) {
    case EV_DELIVER:
        if (!connected(sim) || !n->memb_peer || !n->running)
            break; /* lost with the membership, or nobody listens */
        enqueue(n, &(struct inbox_item){.kind = IN_MSG, .msg = e->msg});
        srmd_sync(sim, n);
        break;
    case EV_TICK:
        if (e->gen != n->tick_gen || !n->running)
            break;
        if (active(n))
            srm_core_send(n->core, (uint64_t)sim->now);
        push(sim, sim->now + sim->p.keepalive_interval, EV_TICK, n->id, n->tick_gen, NULL);
        break;
    case EV_HBCHECK:
        if (e->gen == n->hb_gen)
            srmd_sync(sim, n);
        break;
    case EV_MEMB: {
        const struct ring *ring = &sim->rings[e->gen];
        if (!n->powered || ring->cancelled)
            break; /* replaced by a later change before it formed */
        n->memb_peer = ring->peer;
        n->memb_quorate = ring->quorate[n->id];
        if (n->running)
            enqueue(n, &(struct inbox_item){.kind = IN_MEMB,
                                            .memb_peer = n->memb_peer,
                                            .memb_quorate = n->memb_quorate});
        /* The engines fence themselves, whatever srmd is doing: libsrm follows the node's
         * quorum and stops serving when the node is cut off from its peer without it. */
        if (!n->memb_quorate && !n->memb_peer && n->actual) {
            out(sim, sim->trace, "%s engines: quorum and peer lost: stop serving", n->name);
            stop_serving(sim, n);
        }
        srmd_sync(sim, n);
        break;
    }
    case EV_PROCDOWN:
        if (!n->running)
            break;
        enqueue(n, &(struct inbox_item){.kind = IN_PROCDOWN, .msg = e->msg});
        srmd_sync(sim, n);
        break;
    case EV_LEASE:
        if (e->gen == n->lease_gen && (!n->running || n->paused || n->lease_pending)) {
            if (n->actual)
                out(sim, sim->trace, "%s engines' lease expired: stop serving", n->name);
            stop_serving(sim, n);
            srmd_sync(sim, n);
        }
        break;
    case EV_SVC_READY:
        if (e->gen != n->svc_gen || n->svc != SVC_STARTING)
            break;
        n->svc = (n->startfail || n->broken) ? SVC_FAILED : SVC_RUNNING;
        srmd_sync(sim, n);
        break;
    case EV_WAKE:
        if (e->gen && e->gen != n->wake_gen)
            break;
        srmd_sync(sim, n);
        break;
    case EV_CSCHECK:
    case EV_FLUSH:
        srmd_sync(sim, n);
        break;
    case EV_OPDONE:
        if (e->gen != n->op_gen || !n->running)
            break;
        if (!e->err) {
            if (e->acquire)
                n->actual |= e->parts;
            else
                n->actual &= ~e->parts;
        }
        enqueue(n, &(struct inbox_item){.kind = IN_OPDONE, .err = e->err});
        srmd_sync(sim, n);
        break;
    }
}

static bool run_one(struct sim *sim, int64_t until)
{
    if (sim->n == 0 || sim->heap[0].at > until)
        return false;
    struct ev e = pop(sim);
    sim->now = e.at;
    sim->stats.events++;
    dispatch(sim, &e);
    check_invariants(sim);
    return true;
}

void sim_run_for(struct sim *sim, int64_t ms)
{
    int64_t until = sim->now + ms;

    while (run_one(sim, until))
        ;
    sim->now = until;
}

static bool node_settled(struct sim *sim, struct node *n)
{
    if (!n->powered || !n->running)
        return true;
    if (n->paused || n->ninbox || n->svc == SVC_STARTING)
        return false;
    return srm_core_settled(n->core, (uint64_t)sim->now);
}

/* A ring is still forming, or some node has not seen the last one yet. */
static bool ring_pending(const struct sim *sim)
{
    for (size_t r = 0; r < sim->nrings; r++)
        if (!sim->rings[r].cancelled && sim->rings[r].at + 51 > sim->now)
            return true;
    return false;
}

int sim_settle(struct sim *sim, int64_t max_ms)
{
    int64_t until = sim->now + max_ms;

    while (sim->now < until) {
        sim_run_for(sim, 100);
        if (!ring_pending(sim) && node_settled(sim, &sim->nodes[0]) &&
            node_settled(sim, &sim->nodes[1]))
            return 0;
    }
    return -ETIMEDOUT;
}

/* ---- public API ------------------------------------------------------------------------ */

int sim_new(const struct sim_params *p, uint64_t seed, struct sim **ret_sim)
{
    struct sim *sim = calloc(1, sizeof(*sim));

    if (!sim)
        return -ENOMEM;
    sim->p = *p;
    sim->rng = seed * 0x2545f4914f6cdd1dull + 1;
    sim->ha = true;
    for (int i = 0; i < SIM_NODES; i++) {
        struct node *n = &sim->nodes[i];
        n->id = i;
        snprintf(n->name, sizeof(n->name), "n%d", i + 1);
        srm_fsm_init(&n->last_fsm);
        n->svc = SVC_STOPPED;
    }
    *ret_sim = sim;
    return 0;
}

void sim_free(struct sim *sim)
{
    if (!sim)
        return;
    for (int i = 0; i < SIM_NODES; i++) {
        free(sim->nodes[i].inbox);
        srm_core_free(sim->nodes[i].core);
    }
    free(sim->heap);
    free(sim->rings);
    free(sim);
}

void sim_set_timeline(struct sim *sim, FILE *f)
{
    sim->timeline = f;
}

void sim_set_trace(struct sim *sim, FILE *f)
{
    sim->trace = f;
}

int64_t sim_now(const struct sim *sim)
{
    return sim->now;
}

const struct srm_fsm *sim_fsm(const struct sim *sim, int node)
{
    const struct node *n = &sim->nodes[node];
    return n->core ? srm_core_fsm(n->core) : &n->last_fsm;
}

unsigned sim_serving(const struct sim *sim, int node)
{
    return sim->nodes[node].actual;
}

bool sim_srm_running(const struct sim *sim, int node)
{
    return sim->nodes[node].running;
}

bool sim_node_powered(const struct sim *sim, int node)
{
    return sim->nodes[node].powered;
}

const char *sim_violation(const struct sim *sim)
{
    return sim->violated ? sim->violation : NULL;
}

void sim_stats(const struct sim *sim, struct sim_stats *ret)
{
    *ret = sim->stats;
}

static const char *const action_names[SIM_ACTION_MAX] = {
    [SIM_POWER_ON] = "power-on",
    [SIM_POWER_OFF] = "power-off",
    [SIM_CRASH_SRM] = "crash-srm",
    [SIM_STOP_SRM] = "stop-srm",
    [SIM_START_SRM] = "start-srm",
    [SIM_RESTART_SRM] = "restart-srm",
    [SIM_PAUSE] = "pause",
    [SIM_RESUME] = "resume",
    [SIM_ISOLATE] = "isolate",
    [SIM_HEAL] = "heal",
    [SIM_CS_DOWN] = "cs-down",
    [SIM_CS_REPAIR] = "cs-up",
    [SIM_START_SERVICES] = "start-services",
    [SIM_STARTFAIL_ON] = "cs-startfail-on",
    [SIM_STARTFAIL_OFF] = "cs-startfail-off",
    [SIM_DB_FAIL] = "db-fail",
    [SIM_DB_OK] = "db-ok",
    [SIM_TAKEOVER_FAIL] = "takeover-fail",
    [SIM_TAKEBACK_FAIL] = "takeback-fail",
    [SIM_INTERNAL_ERROR] = "internal-error",
    [SIM_CORRUPT_STATE] = "corrupt-state",
    [SIM_DELAY_SPIKE] = "delay-spike",
    [SIM_HA_ON] = "ha-on",
    [SIM_HA_OFF] = "ha-off",
};

const char *sim_action_name(enum sim_action a)
{
    return (unsigned)a < SIM_ACTION_MAX ? action_names[a] : "?";
}

int sim_action_parse(const char *s, enum sim_action *ret)
{
    for (int i = 0; i < SIM_ACTION_MAX; i++) {
        if (strcmp(s, action_names[i]) == 0) {
            *ret = (enum sim_action)i;
            return 0;
        }
    }
    return -EINVAL;
}

void sim_set_persisted(struct sim *sim, int node, enum srm_fsm_state state,
                       enum srm_fsm_reason reason, uint32_t epoch)
{
    struct node *n = &sim->nodes[node];

    n->disk.present = true;
    n->disk.corrupt = false;
    n->disk.state = state;
    n->disk.reason = reason;
    n->disk.epoch = epoch;
}

static void set_ha(struct sim *sim, bool on)
{
    sim->ha = on;
    for (int i = 0; i < SIM_NODES; i++)
        push(sim, sim->now + sim->p.ha_propagation, EV_WAKE, i, 0, NULL);
}

void sim_act(struct sim *sim, enum sim_action a, int node, int64_t arg)
{
    struct node *n = &sim->nodes[node];

    if (a == SIM_HEAL || a == SIM_HA_ON || a == SIM_HA_OFF || a == SIM_DELAY_SPIKE)
        out(sim, sim->timeline, "!! %s", action_names[a]);
    else
        out(sim, sim->timeline, "!! %s %s", action_names[a], n->name);

    switch (a) {
    case SIM_POWER_ON:
        if (n->powered)
            break;
        n->powered = true;
        n->crashed = false;
        n->lease_pending = false;
        n->memb_peer = false;
        n->memb_quorate = false;
        n->actual = 0;
        n->svc = SVC_STOPPED;
        start_services(sim, n); /* the node boots and its services start */
        topology_changed(sim);
        srmd_start(sim, n);
        break;
    case SIM_POWER_OFF:
        if (!n->powered)
            break;
        if (n->core) {
            n->last_fsm = *srm_core_fsm(n->core);
            srm_core_free(n->core);
            n->core = NULL;
        }
        n->powered = false;
        n->running = false;
        n->paused = false;
        n->svc = SVC_STOPPED;
        n->svc_gen++;
        n->memb_peer = false;
        n->memb_quorate = false;
        n->actual = 0;
        n->op_gen++;
        n->ninbox = 0;
        n->lease_gen++;
        topology_changed(sim);
        break;
    case SIM_CRASH_SRM:
        if (n->powered)
            srmd_stop(sim, n, false);
        break;
    case SIM_STOP_SRM:
        if (n->powered)
            srmd_stop(sim, n, false);
        break;
    case SIM_START_SRM:
        if (n->powered && !n->running)
            srmd_start(sim, n);
        break;
    case SIM_RESTART_SRM:
        if (!n->powered)
            break;
        srmd_stop(sim, n, true);
        srmd_start(sim, n);
        break;
    case SIM_PAUSE:
        if (active(n)) {
            n->paused = true;
            push(sim, sim->now + sim->p.lease, EV_LEASE, n->id, ++n->lease_gen, NULL);
        }
        break;
    case SIM_RESUME:
        if (n->running && n->paused) {
            n->paused = false;
            if (!n->lease_pending)
                n->lease_gen++;
            /* Silence heard while stalled proves nothing: the keepalive timeout starts over
             * (a peer that really died left its trace in the queued membership changes);
             * and the core starts its handshake over. */
            if (n->hb == HB_VISIBLE) {
                n->last_heard = sim->now;
                push(sim, sim->now + sim->p.keepalive_timeout, EV_HBCHECK, n->id, ++n->hb_gen,
                     NULL);
            }
            srm_core_resume(n->core, (uint64_t)sim->now, n->actual);
            srmd_sync(sim, n); /* what queued up during the pause */
            srm_core_resume_done(n->core, (uint64_t)sim->now);
            /* timers that fired while paused run now */
            push(sim, sim->now, EV_TICK, n->id, ++n->tick_gen, NULL);
            srmd_sync(sim, n);
        }
        break;
    case SIM_ISOLATE:
        sim->side[node] = node + 1;
        topology_changed(sim);
        break;
    case SIM_HEAL:
        for (int i = 0; i < SIM_NODES; i++)
            sim->side[i] = 0;
        topology_changed(sim);
        break;
    case SIM_CS_DOWN:
        if (!n->broken) {
            n->broken = true;
            n->broken_since = sim->now;
            push(sim, sim->now + sim->p.cs_down_delay, EV_CSCHECK, n->id, 0, NULL);
        }
        srmd_sync(sim, n);
        break;
    case SIM_CS_REPAIR:
        /* The admin repairs the service and starts it (SPEC §4 row 11). */
        n->broken = false;
        if (n->svc == SVC_FAILED && n->powered) {
            n->svc = SVC_STOPPED;
            start_services(sim, n);
        }
        srmd_sync(sim, n);
        break;
    case SIM_START_SERVICES:
        if (n->powered)
            start_services(sim, n);
        break;
    case SIM_STARTFAIL_ON:
        n->startfail = true;
        break;
    case SIM_STARTFAIL_OFF:
        n->startfail = false;
        break;
    case SIM_DB_FAIL:
        n->db_failed = true;
        srmd_sync(sim, n);
        break;
    case SIM_DB_OK:
        n->db_failed = false;
        srmd_sync(sim, n);
        break;
    case SIM_TAKEOVER_FAIL:
        n->takeover_fail = true;
        break;
    case SIM_TAKEBACK_FAIL:
        n->takeback_fail = true;
        break;
    case SIM_INTERNAL_ERROR:
        if (active(n)) {
            srm_core_internal_error(n->core, (uint64_t)sim->now);
            srmd_sync(sim, n);
        }
        break;
    case SIM_CORRUPT_STATE:
        n->disk.present = true;
        n->disk.corrupt = true;
        break;
    case SIM_DELAY_SPIKE:
        sim->spike_until = sim->now + 10000;
        sim->spike_ms = arg > 0 ? arg : 500;
        break;
    case SIM_HA_ON:
        set_ha(sim, true);
        break;
    case SIM_HA_OFF:
        set_ha(sim, false);
        break;
    case SIM_ACTION_MAX:
        break;
    }
    check_invariants(sim);
}

int sim_admin(struct sim *sim, enum srm_fsm_event_type op, int node, const char **ret_why)
{
    const char *why = NULL;
    int r;

    if (op == SRM_FSM_EVENT_ADMIN_RECOVER) {
        int accepted = 0;
        out(sim, sim->timeline, ">> recover");
        for (int i = 0; i < SIM_NODES; i++) {
            struct node *n = &sim->nodes[i];
            const char *w = NULL;
            if (!active(n))
                continue;
            if (srm_core_admin(n->core, (uint64_t)sim->now, op, &w) == 0) {
                accepted++;
                srmd_sync(sim, n);
            } else {
                why = w;
            }
        }
        if (ret_why)
            *ret_why = accepted ? "accepted" : why ? why : "no node reachable";
        if (!accepted)
            out(sim, sim->timeline, ">> recover refused: %s", why ? why : "no node reachable");
        return accepted ? 0 : why ? SRM_EREFUSED : SRM_EUNREACHABLE;
    }

    struct node *n = &sim->nodes[node];
    out(sim, sim->timeline, ">> %s %s",
        op == SRM_FSM_EVENT_ADMIN_FAILOVER ? "failover" : "fallback", n->name);
    if (!active(n)) {
        if (ret_why)
            *ret_why = "the node's recovery manager does not answer";
        out(sim, sim->timeline, ">> refused: %s does not answer", n->name);
        return SRM_EUNREACHABLE;
    }
    r = srm_core_admin(n->core, (uint64_t)sim->now, op, &why);
    if (r == 0)
        srmd_sync(sim, n);
    else
        out(sim, sim->timeline, ">> refused: %s", why);
    if (ret_why)
        *ret_why = why;
    return r;
}
