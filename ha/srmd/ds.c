/*
 * srmd and its datastore: opening it, a periodic health probe (a failing datastore is the
 * node's Database Failure, SPEC §4 row 13), replication events, and the extension srmd
 * attaches to its reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srm_error.h"
#include "srm_log.h"
#include "srmd_internal.h"

#define PROBE_MS 1000

/* ---- the report extension ------------------------------------------------------------ */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Layout: u64 epoch_own, u64 epoch_of_mine, u32 active, u32 inactive, u16 up, u16 total,
 * u32 reserved (little endian). */
void srmd_ext_encode(const struct srmd_ext *e, uint8_t buf[SRMD_EXT_SIZE])
{
    memset(buf, 0, SRMD_EXT_SIZE);
    put64(buf, e->epoch_own);
    put64(buf + 8, e->epoch_of_mine);
    put64(buf + 16, (uint64_t)e->users_active | (uint64_t)e->users_inactive << 32);
    put64(buf + 24, (uint64_t)e->services_up | (uint64_t)e->services_total << 16);
}

void srmd_ext_decode(const void *buf, size_t len, struct srmd_ext *ret)
{
    const uint8_t *b = buf;

    memset(ret, 0, sizeof(*ret));
    if (!buf || len < SRMD_EXT_SIZE)
        return;
    ret->epoch_own = get64(b);
    ret->epoch_of_mine = get64(b + 8);
    uint64_t u = get64(b + 16), s = get64(b + 24);
    ret->users_active = (uint32_t)u;
    ret->users_inactive = (uint32_t)(u >> 32);
    ret->services_up = (uint16_t)s;
    ret->services_total = (uint16_t)(s >> 16);
}

/* ---- the datastore -------------------------------------------------------------------- */

/* Reads ownership of both partitions and writes nothing: a datastore that cannot do that
 * (I/O error, corruption, a full disk that broke a commit) has failed. Debug builds also
 * honour a fault point: the file <dir>/fault-datastore. */
static int probe(struct srmd *d)
{
    struct srm_ds_txn *txn;
    struct srm_ds_owner o;
    int r;

#ifdef SRM_FAULT_POINTS
    char *fp = NULL;
    if (asprintf(&fp, "%s/fault-datastore", d->conf->dir) >= 0) {
        bool fault = access(fp, F_OK) == 0;
        free(fp);
        if (fault)
            return -EIO;
    }
#endif
    r = srm_ds_txn_begin(d->ds, SRM_DS_TXN_RDONLY, &txn);
    if (r < 0)
        return r;
    r = srm_ds_owner_get(txn, d->self_part, &o);
    if (r == SRM_ENOTFOUND)
        r = 0;
    srm_ds_txn_abort(txn);
    return r;
}

static void probe_cb(uv_timer_t *t)
{
    struct srmd *d = t->data;
    int r = probe(d);

    if (r == 0)
        r = srm_ds_env_flush(d->ds);
    bool ok = r == 0;

    if (ok != d->ds_ok) {
        if (ok)
            srm_log_notice("+datastore: working again");
        else
            srm_log_error("-datastore: %s", srm_strerror(r));
        d->ds_ok = ok;
        if (d->core) {
            srm_core_datastore(d->core, uv_now(d->loop), ok);
            srmd_core_kick(d);
        }
    }
}

int srmd_datastore_open(struct srmd *d, char *err, size_t errlen)
{
    char *dir = NULL;
    struct srm_ds_open_opts o = {
        .node_id = d->conf->node_id,
        /* The engines' mode (every process of an environment uses the same one): commits
         * reach the page cache at once and survive a crash of any process; srmd flushes
         * them to disk every second, and sync replication covers the loss of the node. */
        .sync = SRM_DS_SYNC_NONE,
        .map_size = 256ull << 20,
        .map_size_max = 16ull << 30,
    };
    int r;

    if (asprintf(&dir, "%s/datastore", d->conf->dir) < 0)
        return -ENOMEM;
    r = srm_ds_env_open(dir, &o, &d->ds);
    if (r < 0) {
        snprintf(err, errlen, "datastore %s: %s", dir, srm_strerror(r));
        free(dir);
        return r;
    }
    free(dir);
    d->ds_ok = probe(d) == 0;
    uv_timer_start(&d->ds_timer, probe_cb, PROBE_MS, PROBE_MS);
    return 0;
}

void srmd_datastore_close(struct srmd *d)
{
    srm_ds_env_close(d->ds);
    d->ds = NULL;
}

void srmd_repl_event_cb(struct srm_repl *r, const struct srm_repl_event *ev, void *data)
{
    struct srmd *d = data;

    (void)r;
    (void)d;
    switch (ev->type) {
    case SRM_REPL_EV_REFUSED:
    case SRM_REPL_EV_ERROR:
    case SRM_REPL_EV_CONFLICT:
        srm_log_warn("%s partition %" PRIu32 ": %s%s%s", srm_repl_event_name(ev->type), ev->part,
                     ev->err ? srm_strerror(ev->err) : "", ev->detail ? " " : "",
                     ev->detail ? ev->detail : "");
        break;
    case SRM_REPL_EV_DEGRADED:
        srm_log_warn("%s partition %" PRIu32, srm_repl_event_name(ev->type), ev->part);
        break;
    default:
        srm_log_info("%s partition %" PRIu32 "%s%s", srm_repl_event_name(ev->type), ev->part,
                     ev->detail ? ": " : "", ev->detail ? ev->detail : "");
        break;
    }
}
