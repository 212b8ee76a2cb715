/*
 * The engine's model: partitions and their users, what libsrm tells it, and the writes it
 * makes for them. Every write names the epoch srm_client_serving() gives right before the
 * transaction; a refusal of the datastore (stale epoch, not owner) stops the partition and
 * is reported to srmd.
 *
 * Dual connection (SPEC.md §5). The inactive second session of a user of the peer's
 * partition P is a login record {user, "backup-<this node>", active = false} stored in this
 * node's OWN partition O: the ownership rules let a node write only partitions it owns, and
 * O is the one it owns while it backs P up. On a SERVE of P, P's counters move in O(1)
 * (active += inactive, inactive = 0: the bulk rule) and each user is activated lazily, at
 * the activation rate: an active session {user, "node-<this node>"} written in P under the
 * new epoch, the user's old session of the peer deleted from P and its inactive record
 * deleted from O. Accepting the SERVE never touches a user.
 */
#include "internal.h"
#include "srm_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX      2048 /* user operations per transaction */
#define SIP_SCAN_TICK  512  /* users examined for SIP re-registration per tick and partition */
#define SESSION_PREFIX "node-"
#define BACKUP_PREFIX  "backup-"

/* ------------------------------------------------------------------------ partitions */

struct part *engine_part(struct engine *e, uint32_t id, bool create)
{
    struct part *p;

    for (size_t i = 0; i < e->n_parts; i++)
        if (e->parts[i]->id == id)
            return e->parts[i];
    if (!create || id == 0 || e->n_parts == ENGINE_PARTS_MAX)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->id = id;
    e->parts[e->n_parts++] = p;
    return p;
}

uint64_t engine_users_served(const struct engine *e)
{
    uint64_t n = 0;

    for (size_t i = 0; i < e->n_parts; i++)
        if (e->parts[i]->served)
            n += e->parts[i]->active;
    return n;
}

static bool is_backup(const struct engine *e, const struct part *p)
{
    return e->o.dual && e->peer_id != 0 && p->id == e->peer_id && !p->served;
}

void engine_part_users(struct engine *e, struct part *p, struct user *users, size_t n, char *arena,
                       int err, uint64_t load_ms)
{
    (void)e;
    p->loading = false;
    p->load_error = err;
    if (err < 0) {
        srm_log_error("partition %u (%s): cannot load its users: %s; retrying on the next SERVE",
                      p->id, p->home[0] ? p->home : "?", srm_strerror(err));
        return;
    }
    free(p->users);
    free(p->arena);
    p->users = users;
    p->n_users = n;
    p->arena = arena;
    p->loaded = true;
    p->load_ms = load_ms;
    p->login_cursor = p->sip_cursor = p->backup_cursor = 0;
    p->login_idle_until = p->backup_idle_until = 0;
    p->login_pass_min = p->backup_pass_min = UINT64_MAX;
    p->active = p->inactive = p->client = p->client_inactive = 0;
    srm_log_notice("partition %u (%s): %zu users loaded in %llu ms (%.0f users/s)", p->id,
                   p->home[0] ? p->home : "?", n, (unsigned long long)load_ms,
                   load_ms ? (double)n * 1000.0 / (double)load_ms : (double)n);
}

void engine_datastore_open(struct engine *e)
{
    struct srm_ds_open_opts o = {
        .node_id = e->node_id,
        .sync = e->o.sync,
        .map_size = 256ull << 20,
        .map_size_max = 16ull << 30,
    };
    int r;

    if (e->env || !e->o.data_dir || e->node_id == 0)
        return;
    r = srm_ds_env_open(e->o.data_dir, &o, &e->env);
    if (r < 0) {
        srm_log_error("cannot open the datastore %s as node %u: %s", e->o.data_dir, e->node_id,
                      srm_strerror(r));
        e->env = NULL;
        return;
    }
    srm_log_info("datastore %s open (node %u)", e->o.data_dir, e->node_id);
}

/* ------------------------------------------------------------------------ stopping */

/* The partition is no longer served here. Users with an active session lose it; those of
 * a released partition get their re-login delay (relogin false: no window, e.g. a fence). */
static void part_stop(struct engine *e, struct part *p, const char *why, bool relogin,
                      uint32_t lower_s, uint32_t upper_s)
{
    uint64_t now = engine_now_ms(), lo = UINT64_MAX, hi = 0, sum = 0, moved = 0;

    if (!p->served)
        return;
    p->served = false;
    p->inactive = 0;
    for (size_t i = 0; i < p->n_users; i++) {
        struct user *u = &p->users[i];
        if (u->state == USER_INACTIVE) {
            /* Counted active by the bulk rule but never activated: its inactive session is
             * still here. */
            p->inactive++;
            continue;
        }
        if (u->state != USER_ACTIVE)
            continue;
        u->state = USER_NEW;
        u->due_ms = now;
        if (relogin) {
            /* The user is told to come back after its own delay: to its home node, and
             * (dual connection) with an inactive session here if this node backs it up. */
            uint64_t d = srm_relogin_delay_ms(&e->rng, lower_s, upper_s);
            u->due_ms = now + d;
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += d;
        }
        moved++;
    }
    p->active = 0;
    p->client = 0;
    p->login_cursor = p->sip_cursor = p->backup_cursor = 0;
    p->login_idle_until = p->backup_idle_until = 0;
    snprintf(e->last_stop, sizeof(e->last_stop), "partition %u: %s", p->id, why);
    if (relogin && moved)
        srm_log_notice("stopped serving partition %u (%s): %llu users told to re-login after "
                       "a delay in [%u, %u] s (drawn %.1f..%.1f s, mean %.1f s)",
                       p->id, why, (unsigned long long)moved, lower_s, upper_s, lo / 1000.0,
                       hi / 1000.0, (double)sum / (double)moved / 1000.0);
    else
        srm_log_notice("stopped serving partition %u: %s (%llu sessions closed)", p->id, why,
                       (unsigned long long)moved);
}

void engine_shutdown_serving(struct engine *e)
{
    for (size_t i = 0; i < e->n_parts; i++)
        part_stop(e, e->parts[i], "engine shutting down", false, 0, 0);
}

/* ------------------------------------------------------------------------ libsrm callbacks */

static int serve_cb(struct srm_client *c, const struct srm_serve *s, void *data)
{
    struct engine *e = data;
    struct part *p = engine_part(e, s->part, true);
    uint64_t now = engine_now_ms();

    (void)c;
    if (!p)
        return -ENOSPC;
    if (s->home_name[0] && !p->home[0])
        snprintf(p->home, sizeof(p->home), "%s", s->home_name);
    if (s->renewed && p->served) {
        srm_log_info("partition %u: grant renewed (epoch %llu)", p->id,
                     (unsigned long long)s->epoch);
        return 0;
    }
    /* O(1) in the number of users: flags and counters only (the bulk rule); users are
     * logged in or activated lazily by the tick. */
    p->served = true;
    p->epoch = s->epoch;
    p->gen++;
    p->active += p->inactive;
    p->inactive = 0;
    p->served_since_ms = now;
    p->first_write_ms = 0;
    p->all_clients_ms = 0;
    p->first_write_seen = p->all_clients_seen = false;
    p->login_cursor = 0;
    p->login_idle_until = 0;
    srm_log_notice("serving partition %u (%s) under epoch %llu: %zu users known, %llu "
                   "sessions activated by the bulk rule",
                   p->id, p->home[0] ? p->home : "?", (unsigned long long)s->epoch, p->n_users,
                   (unsigned long long)p->active);
    if (!p->loaded)
        engine_load(e, p);
    return 0;
}

static int release_cb(struct srm_client *c, const struct srm_release *r, void *data)
{
    struct engine *e = data;
    struct part *p = engine_part(e, r->part, false);

    (void)c;
    if (p)
        part_stop(e, p, "released by srmd", true, r->relogin_lower_s, r->relogin_upper_s);
    return 0; /* drained: users were told, no write of ours is in flight */
}

static void stop_serving_cb(struct srm_client *c, uint32_t part, enum srm_stop_reason reason,
                            void *data)
{
    struct engine *e = data;
    char why[128];

    (void)c;
    snprintf(why, sizeof(why), "libsrm stopped it: %s", srm_stop_reason_name(reason));
    if (part == SRM_PART_ALL) {
        srm_log_warn("libsrm took every partition away: %s", srm_stop_reason_name(reason));
        for (size_t i = 0; i < e->n_parts; i++)
            part_stop(e, e->parts[i], why, false, 0, 0);
    } else {
        struct part *p = engine_part(e, part, false);
        if (p)
            part_stop(e, p, why, false, 0, 0);
    }
}

static void services_health(struct engine *e, bool up, const char *detail)
{
    for (int i = 0; i < ENGINE_SERVICES; i++) {
        e->svc[i].up = up;
        srm_client_service_health(e->client, e->svc[i].name, up, detail);
    }
}

static int stop_services_cb(struct srm_client *c, uint32_t cmd, void *data)
{
    struct engine *e = data;

    (void)c;
    (void)cmd;
    e->services_running = false;
    services_health(e, false, "stopped by srmd");
    srm_log_notice("critical services stopped by srmd");
    return 0;
}

static int start_services_cb(struct srm_client *c, uint32_t cmd, void *data)
{
    struct engine *e = data;

    (void)c;
    (void)cmd;
    if (e->fail_next_start) {
        e->fail_next_start = false;
        services_health(e, false, "start failed (injected by the control interface)");
        srm_log_warn("critical services failed to start (injected failure)");
        return -EIO;
    }
    e->services_running = true;
    services_health(e, true, NULL);
    srm_log_notice("critical services started by srmd");
    return 0;
}

static void connection_cb(struct srm_client *c, bool up, int err, void *data)
{
    struct engine *e = data;
    struct srm_client_status st;

    if (!up) {
        srm_log_warn("lost srmd: %s; serving on while the lease lasts, reconnecting",
                     srm_strerror(err));
        return;
    }
    srm_client_status(c, &st);
    srm_log_notice("connected to srmd: node %u (%s), peer %u (%s)", st.node_id, st.node_name,
                   st.peer_node_id, st.peer_name);
    if (e->node_id == 0)
        e->node_id = st.node_id;
    else if (st.node_id != e->node_id)
        srm_log_error("srmd says this is node %u, the engine was started as node %u", st.node_id,
                      e->node_id);
    e->peer_id = st.peer_node_id;
    snprintf(e->peer_name, sizeof(e->peer_name), "%s", st.peer_name);
    engine_datastore_open(e);
    /* Our users, and the peer's (their inactive sessions), ready before any takeover. */
    {
        struct part *own = engine_part(e, e->node_id, true);
        if (own && !own->home[0])
            snprintf(own->home, sizeof(own->home), "%s",
                     st.node_name[0] ? st.node_name : (e->o.node_name ? e->o.node_name : ""));
        if (own)
            engine_load(e, own);
    }
    if (e->peer_id) {
        struct part *peer = engine_part(e, e->peer_id, true);
        if (peer && !peer->home[0])
            snprintf(peer->home, sizeof(peer->home), "%s", st.peer_name);
        if (peer)
            engine_load(e, peer);
    }
}

static void quorum_cb(struct srm_client *c, bool quorate, bool peer_present, void *data)
{
    (void)c;
    (void)data;
    srm_log_info("quorum: %s, peer %s", quorate ? "quorate" : "NOT quorate",
                 peer_present ? "in the membership" : "not in the membership");
}

static void client_poll_cb(uv_poll_t *h, int status, int events)
{
    struct engine *e = h->data;

    (void)status;
    (void)events;
    srm_client_dispatch(e->client);
}

int engine_client_start(struct engine *e)
{
    struct srm_client_options o = {
        .ipc_name = e->o.ipc_name,
        .name = "srm-engine",
        .quorum = e->o.quorum,
        .peer_node_id = e->o.peer_node_id,
        .callbacks =
            {
                .serve_cb = serve_cb,
                .release_cb = release_cb,
                .stop_serving_cb = stop_serving_cb,
                .stop_services_cb = stop_services_cb,
                .start_services_cb = start_services_cb,
                .connection_cb = connection_cb,
                .quorum_cb = quorum_cb,
            },
        .data = e,
    };
    int r = srm_client_new(&o, &e->client);

    if (r < 0)
        return r;
    e->svc[0] = (struct service){"xcp-router", true};
    e->svc[1] = (struct service){"presence-engine", true};
    e->services_running = true;
    for (int i = 0; i < ENGINE_SERVICES; i++) {
        r = srm_client_service_register(e->client, e->svc[i].name, true);
        if (r < 0)
            return r;
    }
    uv_poll_init(e->loop, &e->client_poll, srm_client_fd(e->client));
    e->client_poll.data = e;
    return uv_poll_start(&e->client_poll, UV_READABLE, client_poll_cb);
}

/* ------------------------------------------------------------------------ writes */

/* One change to apply once its transaction committed. */
enum op_kind { OP_LOGIN, OP_ACTIVATE, OP_BACKUP, OP_SIP, OP_PRESENCE };

struct op {
    struct part *p;
    struct user *u;
    uint8_t kind;
};

struct batch {
    struct srm_ds_txn *txn;
    struct op ops[BATCH_MAX];
    size_t n;
    uint64_t writes;
    int err;
    struct part *err_part;
    uint64_t err_epoch;
    uint64_t now_wall;
    /* sync-datastore writes (login, SIP) per partition in this transaction */
    struct {
        uint32_t part, writes;
    } sync[ENGINE_PARTS_MAX];
    size_t n_sync;
};

static void note_sync(struct batch *b, uint32_t part)
{
    for (size_t i = 0; i < b->n_sync; i++)
        if (b->sync[i].part == part) {
            b->sync[i].writes++;
            return;
        }
    if (b->n_sync < ENGINE_PARTS_MAX) {
        b->sync[b->n_sync].part = part;
        b->sync[b->n_sync++].writes = 1;
    }
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fail(struct batch *b, int r, struct part *p, uint64_t epoch)
{
    if (b->err == 0) {
        b->err = r;
        b->err_part = p;
        b->err_epoch = epoch;
    }
}

static void session_id(char *buf, size_t len, const char *prefix, uint32_t node)
{
    snprintf(buf, len, "%s%u", prefix, node);
}

static int put_login(struct batch *b, uint32_t part, uint64_t epoch, const char *user,
                     const char *sid, uint32_t node, bool active)
{
    struct srm_ds_login l = {
        .user = user,
        .session_id = sid,
        .resource = ENGINE_RESOURCE,
        .client_type = "srm-engine",
        .client_version = "1",
        .node = node,
        .login_ms = b->now_wall,
        .active = active,
    };
    int r = srm_ds_login_put(b->txn, part, epoch, &l);

    b->writes += r == 0;
    if (r == 0)
        note_sync(b, part);
    return r;
}

static int put_presence(struct batch *b, uint32_t part, uint64_t epoch, const char *user,
                        enum srm_ds_availability av)
{
    static const char *const status[] = {"available",     "free to chat",   "away",
                                         "extended away", "do not disturb", "invisible",
                                         "offline"};
    struct srm_ds_presence pr = {
        .user = user,
        .resource = ENGINE_RESOURCE,
        .availability = av,
        .priority = 1,
        .status = status[av % SRM_DS_AVAIL_MAX],
        .updated_ms = b->now_wall,
    };
    int r = srm_ds_presence_put(b->txn, part, epoch, &pr);

    b->writes += r == 0;
    return r;
}

static int put_sip(struct engine *e, struct batch *b, uint32_t part, uint64_t epoch,
                   const char *user)
{
    char aor[SRM_DS_AOR_MAX + 1], contact[300], call_id[96];
    struct srm_ds_sip_reg reg;
    int r;

    snprintf(aor, sizeof(aor), "sip:%s", user);
    snprintf(contact, sizeof(contact), "sip:%s@10.0.%u.1:5060;transport=tcp", user,
             e->node_id & 0xff);
    snprintf(call_id, sizeof(call_id), "%s-%u", user, e->node_id);
    memset(&reg, 0, sizeof(reg));
    reg.aor = aor;
    reg.n_contacts = 1;
    reg.contacts[0] = (struct srm_ds_sip_contact){
        .uri = contact,
        .expires_ms = b->now_wall + (uint64_t)e->o.sip_expiry_s * 1000u,
        .call_id = call_id,
        .cseq = (uint32_t)(b->now_wall / 1000),
        .q = 1000,
        .received = "10.0.0.1",
    };
    r = srm_ds_sip_put(b->txn, part, epoch, &reg, b->now_wall);
    b->writes += r == 0;
    if (r == 0)
        note_sync(b, part);
    return r;
}

static bool room(const struct batch *b)
{
    return b->err == 0 && b->n < BATCH_MAX;
}

static void add_op(struct batch *b, struct part *p, struct user *u, enum op_kind kind)
{
    b->ops[b->n++] = (struct op){p, u, (uint8_t)kind};
}

/* A user of a served partition opens (or re-opens) its active session here. */
static void do_login(struct engine *e, struct batch *b, struct part *p, uint64_t epoch,
                     struct user *u)
{
    char sid[32];
    int r;

    session_id(sid, sizeof(sid), SESSION_PREFIX, e->node_id);
    r = put_login(b, p->id, epoch, u->name, sid, e->node_id, true);
    if (r == 0 && e->peer_id) {
        /* The session the peer held for this user (it served the partition before). */
        session_id(sid, sizeof(sid), SESSION_PREFIX, e->peer_id);
        r = srm_ds_login_del(b->txn, p->id, epoch, u->name, sid);
        if (r == -ENOENT)
            r = 0;
        else
            b->writes += r == 0;
    }
    if (r == 0)
        r = put_presence(b, p->id, epoch, u->name, SRM_DS_AVAIL_AVAILABLE);
    if (r == 0)
        r = put_sip(e, b, p->id, epoch, u->name);
    if (r < 0) {
        fail(b, r, p, epoch);
        return;
    }
    add_op(b, p, u, OP_LOGIN);
}

/* A user whose inactive session was kept here becomes active (after a takeover). */
static void do_activate(struct engine *e, struct batch *b, struct part *p, uint64_t epoch,
                        struct part *own, uint64_t own_epoch, struct user *u)
{
    char sid[32];
    int r;

    session_id(sid, sizeof(sid), SESSION_PREFIX, e->node_id);
    r = put_login(b, p->id, epoch, u->name, sid, e->node_id, true);
    if (r == 0 && e->peer_id) {
        session_id(sid, sizeof(sid), SESSION_PREFIX, e->peer_id);
        r = srm_ds_login_del(b->txn, p->id, epoch, u->name, sid);
        if (r == -ENOENT)
            r = 0;
        else
            b->writes += r == 0;
    }
    if (r < 0) {
        fail(b, r, p, epoch);
        return;
    }
    if (own && own_epoch) {
        session_id(sid, sizeof(sid), BACKUP_PREFIX, e->node_id);
        r = srm_ds_login_del(b->txn, own->id, own_epoch, u->name, sid);
        if (r == -ENOENT)
            r = 0;
        else if (r == 0) {
            b->writes++;
            note_sync(b, own->id);
        }
        if (r < 0) {
            fail(b, r, own, own_epoch);
            return;
        }
    }
    add_op(b, p, u, OP_ACTIVATE);
}

/* The dual connection: an inactive session, kept in this node's own partition, for a user
 * of the partition this node backs up. */
static void do_backup(struct engine *e, struct batch *b, struct part *p, struct part *own,
                      uint64_t own_epoch, struct user *u)
{
    char sid[32];
    int r;

    session_id(sid, sizeof(sid), BACKUP_PREFIX, e->node_id);
    r = put_login(b, own->id, own_epoch, u->name, sid, e->node_id, false);
    if (r < 0) {
        fail(b, r, own, own_epoch);
        return;
    }
    add_op(b, p, u, OP_BACKUP);
}

static void served_work(struct engine *e, struct batch *b, struct part *p, uint64_t epoch,
                        struct part *own, uint64_t own_epoch, uint64_t now, unsigned *logins,
                        unsigned *activations)
{
    size_t scanned = 0;

    /* Sessions to open or activate, in user order. */
    while (now >= p->login_idle_until && p->login_cursor < p->n_users && room(b) &&
           scanned < 4 * BATCH_MAX) {
        struct user *u = &p->users[p->login_cursor];
        scanned++;
        if (u->state == USER_ACTIVE) {
            p->login_cursor++;
            continue;
        }
        if (u->state == USER_INACTIVE) {
            if (*activations == 0)
                break;
            (*activations)--;
            do_activate(e, b, p, epoch, own, own_epoch, u);
        } else {
            if (u->due_ms > now) {
                /* Not back yet (re-login delay): look at it again on a later pass. */
                if (u->due_ms < p->login_pass_min)
                    p->login_pass_min = u->due_ms;
                p->login_cursor++;
                continue;
            }
            if (*logins == 0)
                break;
            (*logins)--;
            do_login(e, b, p, epoch, u);
        }
        p->login_pass_work = true;
        p->login_cursor++;
    }
    if (p->login_cursor >= p->n_users && p->client < p->n_users) {
        /* Another pass for users whose delay was not over; after a pass with nothing to do,
         * none until the earliest of them is due. */
        p->login_cursor = 0;
        p->login_idle_until = p->login_pass_work ? 0 : p->login_pass_min;
        p->login_pass_min = UINT64_MAX;
        p->login_pass_work = false;
    }

    /* SIP re-registrations due. */
    for (size_t k = 0; k < SIP_SCAN_TICK && k < p->n_users && room(b); k++) {
        struct user *u = &p->users[p->sip_cursor];
        p->sip_cursor = (p->sip_cursor + 1) % p->n_users;
        if (u->state != USER_ACTIVE || u->due_ms > now)
            continue;
        int r = put_sip(e, b, p->id, epoch, u->name);
        if (r < 0) {
            fail(b, r, p, epoch);
            return;
        }
        add_op(b, p, u, OP_SIP);
    }
}

static void presence_work(struct engine *e, struct batch *b, struct part **served, uint64_t *epochs,
                          size_t n_served, unsigned count)
{
    for (unsigned k = 0; k < count && room(b) && n_served; k++) {
        size_t i = (size_t)srm_rng_range(&e->rng, 0, n_served - 1);
        struct part *p = served[i];
        struct user *u;
        int r;

        if (p->n_users == 0)
            continue;
        u = &p->users[srm_rng_range(&e->rng, 0, p->n_users - 1)];
        if (u->state != USER_ACTIVE)
            continue;
        r = put_presence(b, p->id, epochs[i], u->name,
                         (enum srm_ds_availability)srm_rng_range(&e->rng, 0, 4));
        if (r < 0) {
            fail(b, r, p, epochs[i]);
            return;
        }
        add_op(b, p, u, OP_PRESENCE);
    }
}

static void backup_work(struct engine *e, struct batch *b, struct part *p, struct part *own,
                        uint64_t own_epoch, uint64_t now, unsigned *logins)
{
    size_t scanned = 0;

    while (now >= p->backup_idle_until && p->backup_cursor < p->n_users && room(b) && *logins > 0 &&
           scanned < 4 * BATCH_MAX) {
        struct user *u = &p->users[p->backup_cursor];
        scanned++;
        if (u->state == USER_NEW) {
            if (u->due_ms <= now) {
                (*logins)--;
                do_backup(e, b, p, own, own_epoch, u);
                p->backup_pass_work = true;
            } else if (u->due_ms < p->backup_pass_min) {
                p->backup_pass_min = u->due_ms;
            }
        }
        p->backup_cursor++;
    }
    if (p->backup_cursor >= p->n_users && p->client_inactive < p->n_users) {
        p->backup_cursor = 0;
        p->backup_idle_until = p->backup_pass_work ? 0 : p->backup_pass_min;
        p->backup_pass_min = UINT64_MAX;
        p->backup_pass_work = false;
    }
}

static void apply(struct engine *e, struct batch *b, uint64_t now, uint64_t done)
{
    uint64_t sip_period = (uint64_t)e->o.sip_expiry_s * 800u; /* 80% of the expiry, in ms */

    for (size_t i = 0; i < b->n; i++) {
        struct op *o = &b->ops[i];
        struct part *p = o->p;
        struct user *u = o->u;

        switch (o->kind) {
        case OP_LOGIN:
            u->state = USER_ACTIVE;
            u->gen = p->gen;
            u->due_ms = now + sip_period;
            p->active++;
            p->client++;
            e->logins_total++;
            break;
        case OP_ACTIVATE:
            /* Counted as active by the bulk rule at SERVE; now materialized. */
            u->state = USER_ACTIVE;
            u->gen = p->gen;
            /* Its registration came from the peer: re-register at a spread-out time. */
            u->due_ms = now + srm_rng_range(&e->rng, 0, sip_period);
            p->client++;
            if (p->client_inactive)
                p->client_inactive--;
            e->activations_total++;
            break;
        case OP_BACKUP:
            u->state = USER_INACTIVE;
            u->gen = p->gen;
            p->inactive++;
            p->client_inactive++;
            e->inactive_total++;
            break;
        case OP_SIP:
            u->due_ms = now + sip_period;
            e->sip_total++;
            break;
        case OP_PRESENCE:
            e->presence_total++;
            break;
        }
        /* SERVE to committed, for the status (done is after the commit). */
        if (p->served && !p->first_write_seen && o->kind != OP_BACKUP) {
            p->first_write_seen = true;
            p->first_write_ms = done - p->served_since_ms;
        }
        if (p->served && !p->all_clients_seen && p->loaded && p->client == p->n_users) {
            p->all_clients_seen = true;
            p->all_clients_ms = done - p->served_since_ms;
        }
    }
}

static void take_tokens(double *tokens, unsigned rate, double dt)
{
    *tokens += rate * dt;
    if (*tokens > rate / 10.0 + 1) /* at most 100 ms of burst */
        *tokens = rate / 10.0 + 1;
}

/* ------------------------------------------------------------------------ sync writes */

static void pending_push(struct engine *e, uint32_t part, uint32_t writes, uint64_t seq,
                         uint64_t wall)
{
    if (e->pending_n == ENGINE_PENDING_MAX) {
        /* Never acknowledged: the oldest waiter is given up (counted), not journaled. */
        e->pending_overflows++;
        e->pending_head = (e->pending_head + 1) % ENGINE_PENDING_MAX;
        e->pending_n--;
    }
    e->pending[(e->pending_head + e->pending_n++) % ENGINE_PENDING_MAX] =
        (struct pending_sync){part, writes, seq, wall};
}

static void journal(struct engine *e, const char *what, const struct pending_sync *p)
{
    /* Bounded: past 16 MiB the journal starts over, the previous one kept as .1. */
    if (e->acked && e->o.acked_file && ftell(e->acked) > (16l << 20)) {
        char old[4200];
        snprintf(old, sizeof(old), "%s.1", e->o.acked_file);
        fclose(e->acked);
        (void)rename(e->o.acked_file, old);
        e->acked = fopen(e->o.acked_file, "a");
    }
    if (e->acked)
        fprintf(e->acked, "%llu %s %u %llu %u\n", (unsigned long long)p->commit_wall_ms, what,
                p->part, (unsigned long long)p->seq, p->writes);
}

/*
 * Acknowledges the sync writes the peer has applied (srmd's replication raises the
 * partition's replicated position in the datastore's shared memory as the peer
 * acknowledges), or that sync replication gave up waiting for (degraded: committed here,
 * not known to be on the peer). Each acknowledgement is journaled before it counts, in
 * commit order per partition.
 */
void engine_sync_poll(struct engine *e)
{
    size_t kept = 0, n = e->pending_n;
    bool wrote = false;

    for (size_t i = 0; i < n; i++) {
        struct pending_sync p = e->pending[(e->pending_head + i) % ENGINE_PENDING_MAX];
        uint64_t acked = 0;
        bool degraded = false;
        /* Positions only grow and a partition's writes queue in commit order, so they are
         * released in that order. */
        if (e->env && srm_ds_sync_get(e->env, p.part, &acked, &degraded) == 0 &&
            (acked >= p.seq || degraded)) {
            journal(e, acked >= p.seq ? "acked" : "degraded", &p);
            if (acked >= p.seq)
                e->acked_writes += p.writes;
            else
                e->degraded_writes += p.writes;
            wrote = true;
            continue;
        }
        e->pending[(e->pending_head + kept++) % ENGINE_PENDING_MAX] = p;
    }
    e->pending_n = kept;
    if (wrote && e->acked)
        fflush(e->acked);
}

uint64_t engine_pending_writes(const struct engine *e)
{
    uint64_t n = 0;

    for (size_t i = 0; i < e->pending_n; i++)
        n += e->pending[(e->pending_head + i) % ENGINE_PENDING_MAX].writes;
    return n;
}

void engine_tick(struct engine *e)
{
    static struct batch b;
    struct part *served[ENGINE_PARTS_MAX];
    uint64_t epochs[ENGINE_PARTS_MAX];
    size_t n_served = 0;
    struct part *own;
    uint64_t own_epoch = 0, now = engine_now_ms();
    double dt = e->last_tick_ms ? (double)(now - e->last_tick_ms) / 1000.0 : 0.01;
    unsigned logins, activations, presence;
    int r;

    e->last_tick_ms = now;
    take_tokens(&e->login_tokens, e->o.login_rate, dt);
    take_tokens(&e->activate_tokens, e->o.activate_rate, dt);
    take_tokens(&e->presence_tokens, e->o.presence_rate, dt);
    if (!e->env || !e->services_running)
        return;

    /* Ask libsrm right before writing: the lease or the fence may have ended. */
    own = e->node_id ? engine_part(e, e->node_id, false) : NULL;
    if (own && !(own->served && srm_client_serving(e->client, own->id, &own_epoch) == 1))
        own_epoch = 0;
    for (size_t i = 0; i < e->n_parts; i++) {
        struct part *p = e->parts[i];
        uint64_t epoch;
        if (!p->served || !p->loaded)
            continue;
        if (srm_client_serving(e->client, p->id, &epoch) != 1 || epoch != p->epoch)
            continue; /* a stop is on its way from libsrm */
        served[n_served] = p;
        epochs[n_served++] = epoch;
    }

    logins = (unsigned)e->login_tokens;
    activations = (unsigned)e->activate_tokens;
    presence = (unsigned)e->presence_tokens;
    engine_sync_poll(e);
    b.n = 0;
    b.n_sync = 0;
    b.writes = 0;
    b.err = 0;
    b.err_part = NULL;
    b.now_wall = wall_ms();
    r = srm_ds_txn_begin(e->env, 0, &b.txn);
    if (r < 0) {
        e->txn_failures++;
        srm_log_debug("datastore: cannot begin a transaction: %s", srm_strerror(r));
        return;
    }
    for (size_t i = 0; i < n_served && room(&b); i++)
        served_work(e, &b, served[i], epochs[i], own_epoch ? own : NULL, own_epoch, now, &logins,
                    &activations);
    presence_work(e, &b, served, epochs, n_served, presence);
    if (own_epoch) {
        for (size_t i = 0; i < e->n_parts && room(&b); i++) {
            struct part *p = e->parts[i];
            if (p->loaded && is_backup(e, p))
                backup_work(e, &b, p, own, own_epoch, now, &logins);
        }
    }

    if (b.err < 0) {
        srm_ds_txn_abort(b.txn);
        if ((b.err == SRM_ESTALE_EPOCH || b.err == SRM_ENOTOWNER) && b.err_part) {
            /* Ownership moved: this partition is not ours to write any more. */
            e->stale_refusals++;
            srm_log_warn("partition %u: the datastore refused a write under epoch %llu (%s): "
                         "stopping it and telling srmd",
                         b.err_part->id, (unsigned long long)b.err_epoch, srm_errname(b.err));
            srm_client_stale(e->client, b.err_part->id, b.err_epoch, b.err);
            part_stop(e, b.err_part, "the datastore refused a write: stale epoch", false, 0, 0);
        } else {
            e->txn_failures++;
            srm_log_warn("datastore write failed: %s; retrying", srm_strerror(b.err));
        }
        return;
    }
    if (b.n == 0) {
        srm_ds_txn_abort(b.txn);
        return;
    }
    /* The commit position of each partition with sync writes: what the peer must apply. */
    uint64_t seqs[ENGINE_PARTS_MAX];
    for (size_t i = 0; i < b.n_sync; i++)
        if (srm_ds_txn_seq(b.txn, b.sync[i].part, &seqs[i]) < 0)
            seqs[i] = 0;
    r = srm_ds_txn_commit(b.txn);
    if (r < 0) {
        e->txn_failures++;
        srm_log_warn("datastore commit failed: %s; retrying", srm_strerror(r));
        return;
    }
    e->login_tokens -= (unsigned)e->login_tokens - logins;
    e->activate_tokens -= (unsigned)e->activate_tokens - activations;
    e->presence_tokens -= presence;
    if (e->presence_tokens < 0)
        e->presence_tokens = 0;
    e->writes_total += b.writes;
    for (size_t i = 0; i < b.n_sync; i++)
        if (seqs[i])
            pending_push(e, b.sync[i].part, b.sync[i].writes, seqs[i], b.now_wall);
    apply(e, &b, now, engine_now_ms());
}

/* ------------------------------------------------------------------------ counters */

void engine_counters_send(struct engine *e)
{
    struct srm_part_counters parts[ENGINE_PARTS_MAX];
    size_t n = 0;
    struct srm_counter extra[] = {
        {"users_served", engine_users_served(e)}, {"writes_per_s", e->writes_per_s},
        {"writes_total", e->writes_total},        {"stale_refusals", e->stale_refusals},
        {"logins_total", e->logins_total},        {"activations_total", e->activations_total},
        {"presence_total", e->presence_total},    {"sip_total", e->sip_total},
    };

    for (size_t i = 0; i < e->n_parts; i++) {
        struct part *p = e->parts[i];
        if (!p->served && p->inactive == 0 && p->client_inactive == 0)
            continue;
        parts[n++] = (struct srm_part_counters){p->id, p->active, p->inactive, p->client,
                                                p->client_inactive};
    }
    (void)srm_client_counters(e->client, parts, n, extra, sizeof(extra) / sizeof(extra[0]));
}
