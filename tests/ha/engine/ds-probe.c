/*
 * ds-probe: what the engine tests need from a node's datastore, from the shell. It plays
 * srmd's part for ownership (srm_ds_owner_set) and reads what the engine wrote.
 *
 *   ds-probe DIR NODE_ID owner PART OWNER EPOCH   set the owner and epoch of PART
 *   ds-probe DIR NODE_ID stats PART               one line of key=value:
 *       owner, epoch, presence, login, sip (live records), active, inactive (sessions),
 *       epochs=E:n,... (records of every datastore by the epoch they were written under),
 *       sessions=SESSION_ID:active|inactive:n,... (login records by session id)
 */
#include "srm_ds.h"
#include "srm_error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 64

struct tally {
    uint64_t key[MAX_KEYS];
    char name[MAX_KEYS][64];
    uint64_t n[MAX_KEYS];
    size_t used;
};

static void count_epoch(struct tally *t, uint64_t epoch)
{
    for (size_t i = 0; i < t->used; i++)
        if (t->key[i] == epoch) {
            t->n[i]++;
            return;
        }
    if (t->used < MAX_KEYS) {
        t->key[t->used] = epoch;
        t->n[t->used++] = 1;
    }
}

static void count_name(struct tally *t, const char *name)
{
    for (size_t i = 0; i < t->used; i++)
        if (strcmp(t->name[i], name) == 0) {
            t->n[i]++;
            return;
        }
    if (t->used < MAX_KEYS) {
        snprintf(t->name[t->used], sizeof(t->name[0]), "%s", name);
        t->n[t->used++] = 1;
    }
}

static int epoch_cb(const struct srm_ds_entry *e, void *data)
{
    if (!(e->flags & SRM_DS_ENTRY_TOMBSTONE))
        count_epoch(data, e->stamp.epoch);
    return 0;
}

static int login_cb(const struct srm_ds_login *l, void *data)
{
    char key[64];

    snprintf(key, sizeof(key), "%s:%s", l->session_id, l->active ? "active" : "inactive");
    count_name(data, key);
    return 0;
}

int main(int argc, char **argv)
{
    struct srm_ds_open_opts o = {
        .sync = SRM_DS_SYNC_NONE, .map_size = 256ull << 20, .map_size_max = 16ull << 30};
    struct srm_ds_env *env = NULL;
    struct srm_ds_txn *txn = NULL;
    uint32_t part;
    int r;

    if (argc < 5)
        goto usage;
    o.node_id = (uint32_t)strtoul(argv[2], NULL, 10);
    part = (uint32_t)strtoul(argv[4], NULL, 10);
    r = srm_ds_env_open(argv[1], &o, &env);
    if (r < 0) {
        fprintf(stderr, "ds-probe: %s: %s\n", argv[1], srm_strerror(r));
        return 1;
    }
    if (strcmp(argv[3], "owner") == 0 && argc == 7) {
        uint64_t epoch = 0;
        r = srm_ds_txn_begin(env, 0, &txn);
        if (r == 0)
            r = srm_ds_owner_set(txn, part, (uint32_t)strtoul(argv[5], NULL, 10),
                                 strtoull(argv[6], NULL, 10), &epoch);
        if (r == 0)
            r = srm_ds_txn_commit(txn);
        else
            srm_ds_txn_abort(txn);
        if (r == 0)
            printf("owner part=%u owner=%s epoch=%" PRIu64 "\n", part, argv[5], epoch);
    } else if (strcmp(argv[3], "stats") == 0 && argc == 5) {
        struct srm_ds_part_stats st;
        struct tally epochs = {0}, sessions = {0};
        r = srm_ds_txn_begin(env, SRM_DS_TXN_RDONLY, &txn);
        if (r == 0)
            r = srm_ds_part_stats(txn, part, &st);
        for (int k = 0; r == 0 && k < SRM_DS_KIND_MAX; k++)
            for (unsigned b = 0; r == 0 && b < SRM_DS_DIGEST_BUCKETS; b++)
                r = srm_ds_digest_bucket_list(txn, part, (enum srm_ds_kind)k, b, epoch_cb, &epochs);
        if (r == 0)
            r = srm_ds_login_list(txn, part, NULL, login_cb, &sessions);
        if (r == 0) {
            printf("part=%u owner=%u epoch=%" PRIu64 " presence=%" PRIu64 " login=%" PRIu64
                   " sip=%" PRIu64 " active=%" PRIu64 " inactive=%" PRIu64 " epochs=",
                   part, st.owner.node, st.owner.epoch, st.records[SRM_DS_PRESENCE],
                   st.records[SRM_DS_LOGIN], st.records[SRM_DS_SIP], st.sessions_active,
                   st.sessions_inactive);
            for (size_t i = 0; i < epochs.used; i++)
                printf("%s%" PRIu64 ":%" PRIu64, i ? "," : "", epochs.key[i], epochs.n[i]);
            printf(" sessions=");
            for (size_t i = 0; i < sessions.used; i++)
                printf("%s%s:%" PRIu64, i ? "," : "", sessions.name[i], sessions.n[i]);
            printf("\n");
        }
        srm_ds_txn_abort(txn);
    } else {
        srm_ds_env_close(env);
        goto usage;
    }
    srm_ds_env_close(env);
    if (r < 0) {
        fprintf(stderr, "ds-probe: %s %u: %s\n", argv[3], part, srm_strerror(r));
        return 1;
    }
    return 0;

usage:
    fprintf(stderr, "usage: ds-probe DIR NODE_ID owner PART OWNER EPOCH | stats PART\n");
    return 2;
}
