/* The datastore on a real LMDB environment in a temporary directory: environment,
 * ownership and fencing, the three datastores, log read / apply / trim, horizon,
 * convergence, snapshots, digests, verification, map growth and map full, failed
 * transactions, notifications and sync waits (one process). */
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ds_test.h"
#include "internal.h"

struct fx {
    char *dir;
    uint64_t clock;
    struct srm_ds_env *env;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->dir = ds_test_mkdtemp();
    f->clock = 1700000000000ull;
    f->env = ds_test_open(f->dir, 1, &f->clock);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    srm_ds_env_close(f->env);
    ds_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Collects log entries (copies). */
struct coll {
    size_t n, cap;
    struct srm_ds_entry *e;
    uint8_t **bufs;
};

static int coll_cb(const struct srm_ds_entry *e, void *data)
{
    struct coll *c = data;
    uint8_t *b;

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->e = realloc(c->e, c->cap * sizeof(*c->e));
        c->bufs = realloc(c->bufs, c->cap * sizeof(*c->bufs));
    }
    b = malloc(e->key_len + e->val_len + 1);
    memcpy(b, e->key, e->key_len);
    if (e->val_len)
        memcpy(b + e->key_len, e->val, e->val_len);
    c->e[c->n] = *e;
    c->e[c->n].key = b;
    c->e[c->n].val = e->val_len ? b + e->key_len : NULL;
    c->bufs[c->n] = b;
    c->n++;
    return 0;
}

static void coll_free(struct coll *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->bufs[i]);
    free(c->e);
    free(c->bufs);
    memset(c, 0, sizeof(*c));
}

static void read_log(struct srm_ds_env *env, uint32_t part, uint64_t from, uint32_t exclude,
                     struct coll *c, uint64_t *ret_next, uint64_t *ret_gen)
{
    struct srm_ds_txn *t = ds_test_begin(env, SRM_DS_TXN_RDONLY);

    assert_int_equal(srm_ds_log_read(t, part, from, exclude, 0, 0, coll_cb, c, ret_next, ret_gen),
                     0);
    srm_ds_txn_abort(t);
}

static void put_presence(struct srm_ds_env *env, uint32_t part, uint64_t epoch, const char *user,
                         const char *res, const char *status)
{
    struct srm_ds_txn *t = ds_test_begin(env, 0);
    struct srm_ds_presence p = ds_test_presence(user, res, status);

    assert_int_equal(srm_ds_presence_put(t, part, epoch, &p), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
}

static void digest_of(struct srm_ds_env *env, uint32_t part, struct srm_ds_digest d[3])
{
    struct srm_ds_txn *t = ds_test_begin(env, SRM_DS_TXN_RDONLY);

    for (int k = 0; k < SRM_DS_KIND_MAX; k++)
        assert_int_equal(srm_ds_digest_get(t, part, (enum srm_ds_kind)k, &d[k]), 0);
    assert_int_equal(srm_ds_verify(t, part), 0);
    srm_ds_txn_abort(t);
}

static void assert_same_digests(struct srm_ds_env *a, struct srm_ds_env *b, uint32_t part)
{
    struct srm_ds_digest da[3], db[3];

    digest_of(a, part, da);
    digest_of(b, part, db);
    assert_memory_equal(da, db, sizeof(da));
}

/* ---- environment ---- */

static void test_env_open_close(void **state)
{
    struct fx *f = *state;
    struct srm_ds_env_info info;
    struct srm_ds_open_opts o = {.node_id = 0};
    struct srm_ds_env *e2 = NULL;

    assert_int_equal(srm_ds_env_info(f->env, &info), 0);
    assert_int_equal(info.node_id, 1);
    assert_true(info.map_size >= (32ull << 20));
    assert_int_equal(srm_ds_env_open(f->dir, &o, &e2), -EINVAL); /* node 0 */
    o.node_id = 1;
    o.map_size = 8 << 20;
    o.map_size_max = 4 << 20;
    assert_int_equal(srm_ds_env_open(f->dir, &o, &e2), -EINVAL); /* max < size */
    assert_int_equal(srm_ds_env_open(NULL, &o, &e2), -EINVAL);
}

static void test_env_second_handle(void **state)
{
    struct fx *f = *state;
    struct srm_ds_env *e2 = ds_test_open(f->dir, 1, NULL);
    struct srm_ds_txn *t;
    struct srm_ds_presence p;

    ds_test_own(f->env, 7, 1, 1);
    put_presence(f->env, 7, 1, "alice", "pc", "hello");
    t = ds_test_begin(e2, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 7, "alice", "pc", &p), 0);
    assert_string_equal(p.status, "hello");
    srm_ds_txn_abort(t);
    srm_ds_env_close(e2);
    srm_ds_env_close(NULL);
    srm_ds_txn_abort(NULL);
    assert_int_equal(srm_ds_env_flush(f->env), 0);

    /* read-only handle (tools): reads work, writes are refused */
    struct srm_ds_open_opts ro = {.node_id = 1, .sync = SRM_DS_SYNC_NONE, .read_only = true};
    assert_int_equal(srm_ds_env_open(f->dir, &ro, &e2), 0);
    assert_int_equal(srm_ds_txn_begin(e2, 0, &t), -EINVAL);
    t = ds_test_begin(e2, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 7, "alice", "pc", &p), 0);
    srm_ds_txn_abort(t);
    srm_ds_env_close(e2);
    /* read-only on a directory without a store */
    char *empty = ds_test_mkdtemp();
    assert_true(srm_ds_env_open(empty, &ro, &e2) < 0);
    ds_test_rmdir(empty);
}

static void test_env_corrupt(void **state)
{
    (void)state;
    char *dir = ds_test_mkdtemp();
    char path[512];
    struct srm_ds_env *env = NULL;
    struct srm_ds_open_opts o = {.node_id = 1, .sync = SRM_DS_SYNC_NONE};
    uint8_t junk[65536];
    int fd;

    /* random bytes as data.mdb */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7919 + 13);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(write(fd, junk, sizeof(junk)) == sizeof(junk));
    close(fd);
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);

    /* a foreign LMDB file: another program's named database */
    dir = ds_test_mkdtemp();
    {
        MDB_env *m;
        MDB_txn *t;
        MDB_dbi d;
        MDB_val k = {3, "key"}, v = {3, "val"};

        assert_int_equal(mdb_env_create(&m), 0);
        mdb_env_set_maxdbs(m, 4);
        assert_int_equal(mdb_env_open(m, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(m, NULL, 0, &t), 0);
        assert_int_equal(mdb_dbi_open(t, "theirs", MDB_CREATE, &d), 0);
        assert_int_equal(mdb_put(t, d, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(t), 0);
        mdb_env_close(m);
    }
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);

    /* a foreign LMDB file: plain keys in the main database */
    dir = ds_test_mkdtemp();
    {
        MDB_env *m;
        MDB_txn *t;
        MDB_dbi d;
        MDB_val k = {4, "rec1"}, v = {3, "val"};

        assert_int_equal(mdb_env_create(&m), 0);
        assert_int_equal(mdb_env_open(m, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(m, NULL, 0, &t), 0);
        assert_int_equal(mdb_dbi_open(t, NULL, 0, &d), 0);
        assert_int_equal(mdb_put(t, d, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(t), 0);
        mdb_env_close(m);
    }
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);

    /* our file with another layout version */
    dir = ds_test_mkdtemp();
    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    {
        MDB_txn *t;
        MDB_val k = {6, "format"}, v;
        char rec[16] = "srm-ds";

        rec[8] = 99;
        v.mv_data = rec;
        v.mv_size = sizeof(rec);
        assert_int_equal(mdb_txn_begin(env->mdb, NULL, 0, &t), 0);
        assert_int_equal(mdb_put(t, env->dbi_fmt, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(t), 0);
    }
    srm_ds_env_close(env);
    env = NULL;
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);

    /* a truncated file: committed pages are missing */
    dir = ds_test_mkdtemp();
    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    ds_test_own(env, 1, 1, 1);
    {
        struct srm_ds_txn *t = ds_test_begin(env, 0);
        static char status[1000];
        char u[32];

        memset(status, 'x', sizeof(status) - 1);
        for (int i = 0; i < 200; i++) {
            snprintf(u, sizeof(u), "t%d", i);
            struct srm_ds_presence p = ds_test_presence(u, "r", status);
            assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
        }
        assert_int_equal(srm_ds_txn_commit(t), 0);
    }
    srm_ds_env_close(env);
    env = NULL;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(truncate(path, st.st_size / 2), 0);
    }
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);

    /* a foreign srm-ds.shm */
    dir = ds_test_mkdtemp();
    snprintf(path, sizeof(path), "%s/srm-ds.shm", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(write(fd, junk, 100) == 100);
    close(fd);
    assert_int_equal(srm_ds_env_open(dir, &o, &env), SRM_ECORRUPT);
    ds_test_rmdir(dir);
}

/* ---- ownership and fencing ---- */

static void test_ownership(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_owner own;
    struct srm_ds_presence p = ds_test_presence("alice", "pc", "s");
    uint64_t ep;

    /* no partition: nobody owns it */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_presence_put(t, 5, 0, &p), SRM_ENOTOWNER);
    assert_int_equal(srm_ds_owner_get(t, 5, &own), SRM_ENOTFOUND);
    assert_int_equal(srm_ds_owner_set(t, 0, 1, 0, &ep), -EINVAL);
    /* owned by the peer */
    assert_int_equal(srm_ds_owner_set(t, 5, 2, 0, &ep), 0);
    assert_int_equal(ep, 1);
    assert_int_equal(srm_ds_presence_put(t, 5, 1, &p), SRM_ENOTOWNER);
    /* the refusal did not fail the transaction */
    assert_int_equal(srm_ds_owner_set(t, 5, 1, 0, &ep), 0);
    assert_int_equal(ep, 2);
    assert_int_equal(srm_ds_presence_put(t, 5, 1, &p), SRM_ESTALE_EPOCH);
    assert_int_equal(srm_ds_presence_put(t, 5, 3, &p), SRM_ESTALE_EPOCH);
    assert_int_equal(srm_ds_presence_put(t, 5, 2, &p), 0);
    assert_int_equal(srm_ds_presence_put(t, 5, SRM_DS_EPOCH_ANY, &p), 0);
    assert_int_equal(srm_ds_owner_set(t, 5, 1, 2, &ep), SRM_ESTALE_EPOCH); /* not greater */
    assert_int_equal(srm_ds_owner_set(t, 5, 1, 10, &ep), 0);
    assert_int_equal(ep, 10);
    assert_int_equal(srm_ds_owner_get(t, 5, &own), 0);
    assert_int_equal(own.node, 1);
    assert_int_equal(own.epoch, 10);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    /* a record written under a later epoch (replicated) refuses a local overwrite */
    t = ds_test_begin(f->env, 0);
    struct srm_ds_entry e = {
        .seq = 1, .kind = SRM_DS_PRESENCE, .stamp = {20, 1, 2}, .key = "bob\0pc\0", .key_len = 7};
    uint8_t *buf = NULL;
    size_t cap = 0, klen, blen;
    uint8_t key[SRM_DS_KEY_MAX];
    struct srm_ds_presence pb = ds_test_presence("bob", "pc", "from peer");
    assert_int_equal(srm__ds_presence_encode(&pb, key, &klen, &buf, &cap, &blen), 0);
    e.val = buf;
    e.val_len = blen;
    assert_int_equal(srm_ds_log_apply(t, 5, 2, 99, &e, 1, 0, NULL), 0);
    pb.status = "local";
    assert_int_equal(srm_ds_presence_put(t, 5, 10, &pb), SRM_ESTALE_EPOCH);
    assert_int_equal(srm_ds_presence_del(t, 5, 10, "bob", "pc"), SRM_ESTALE_EPOCH);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    free(buf);

    /* a read-only transaction refuses writes */
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_put(t, 5, 10, &p), -EINVAL);
    assert_int_equal(srm_ds_owner_set(t, 5, 1, 0, NULL), -EINVAL);
    srm_ds_txn_abort(t);
}

/* The takeover is one record: its cost does not depend on the number of users. */
static void test_owner_flip_is_one_record(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_log_info li;
    char u[32];

    ds_test_own(f->env, 3, 1, 1);
    t = ds_test_begin(f->env, 0);
    for (int i = 0; i < 500; i++) {
        snprintf(u, sizeof(u), "user%d", i);
        struct srm_ds_presence p = ds_test_presence(u, "r", "s");
        assert_int_equal(srm_ds_presence_put(t, 3, 1, &p), 0);
    }
    assert_int_equal(srm_ds_txn_commit(t), 0);
    MDB_stat before, after;
    MDB_txn *mt;
    assert_int_equal(mdb_txn_begin(f->env->mdb, NULL, MDB_RDONLY, &mt), 0);
    mdb_stat(mt, f->env->dbi_rec, &before);
    mdb_txn_abort(mt);
    ds_test_own(f->env, 3, 2, 2);
    assert_int_equal(mdb_txn_begin(f->env->mdb, NULL, MDB_RDONLY, &mt), 0);
    mdb_stat(mt, f->env->dbi_rec, &after);
    mdb_txn_abort(mt);
    /* no user row was rewritten: the records' pages are untouched */
    assert_int_equal(before.ms_entries, after.ms_entries);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 3, &li), 0);
    assert_int_equal(li.last_seq, 500); /* no log entries either */
    srm_ds_txn_abort(t);
}

/* ---- datastores ---- */

static int count_presence(const struct srm_ds_presence *p, void *data)
{
    (void)p;
    (*(int *)data)++;
    return 0;
}

static int stop_presence(const struct srm_ds_presence *p, void *data)
{
    (void)p;
    (void)data;
    return 7;
}

static void test_presence(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_presence p, out;
    int n = 0;

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    p = ds_test_presence("alice", "pc", "busy");
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    p.resource = "phone";
    p.availability = SRM_DS_AVAIL_DND;
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    p.user = "alicia";
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    p.user = "bob";
    p.resource = "";
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    /* read your own writes */
    assert_int_equal(srm_ds_presence_get(t, 1, "alice", "phone", &out), 0);
    assert_int_equal(out.availability, SRM_DS_AVAIL_DND);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "alice", "pc", &out), 0);
    assert_string_equal(out.status, "busy");
    assert_string_equal(out.user, "alice");
    assert_int_equal(srm_ds_presence_get(t, 1, "alice", "tablet", &out), -ENOENT);
    assert_int_equal(srm_ds_presence_get(t, 2, "alice", "pc", &out), -ENOENT);
    assert_int_equal(srm_ds_presence_get(t, 1, "bob", NULL, &out), 0);
    assert_int_equal(srm_ds_presence_list(t, 1, "alice", count_presence, &n), 0);
    assert_int_equal(n, 2); /* not alicia's */
    n = 0;
    assert_int_equal(srm_ds_presence_list(t, 1, NULL, count_presence, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(srm_ds_presence_list(t, 1, NULL, stop_presence, NULL), 7);
    char big[SRM_DS_USER_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(srm_ds_presence_get(t, 1, big, "pc", &out), SRM_ETOOBIG);
    {
        char u[SRM_DS_USER_MAX + 1], r[SRM_DS_RESOURCE_MAX + 1];
        memset(u, 'u', sizeof(u) - 1);
        u[sizeof(u) - 1] = 0;
        memset(r, 'r', sizeof(r) - 1);
        r[sizeof(r) - 1] = 0;
        assert_int_equal(srm_ds_presence_get(t, 1, u, r, &out), SRM_ETOOBIG);
    }
    assert_int_equal(srm_ds_presence_get(t, 1, "", "pc", &out), -EINVAL);
    srm_ds_txn_abort(t);

    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_presence_del(t, 1, 1, "alice", "pc"), 0);
    assert_int_equal(srm_ds_presence_del(t, 1, 1, "alice", "pc"), -ENOENT);
    assert_int_equal(srm_ds_presence_get(t, 1, "alice", "pc", &out), -ENOENT);
    assert_int_equal(srm_ds_presence_del(t, 1, 1, "nobody", "pc"), -ENOENT);
    /* a bad record is refused and the transaction goes on */
    p.status = "\xff";
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), SRM_EBADUTF8);
    p.status = "ok";
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    struct srm_ds_part_stats st;
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_PRESENCE], 3);
    assert_int_equal(st.tombstones, 1);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
}

struct login_count {
    int n, active;
};

static int count_login(const struct srm_ds_login *l, void *data)
{
    struct login_count *c = data;

    c->n++;
    c->active += l->active;
    return 0;
}

static void test_login_and_counters(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_login l = {.user = "carol",
                             .session_id = "s1",
                             .resource = "pc",
                             .client_type = "jabber",
                             .client_version = "14",
                             .node = 1,
                             .login_ms = 5,
                             .active = true},
                        out;
    struct srm_ds_part_stats st;
    struct login_count c = {0, 0};

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_login_put(t, 1, 1, &l), 0);
    l.session_id = "s2"; /* the inactive second session of dual connection */
    l.node = 2;
    l.active = false;
    assert_int_equal(srm_ds_login_put(t, 1, 1, &l), 0);
    l.user = "dan";
    l.session_id = "s1";
    l.active = true;
    assert_int_equal(srm_ds_login_put(t, 1, 1, &l), 0);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.sessions_active, 2);
    assert_int_equal(st.sessions_inactive, 1);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    /* failover: the inactive one becomes active */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_login_get(t, 1, "carol", "s2", &out), 0);
    assert_false(out.active);
    assert_int_equal(out.node, 2);
    struct srm_ds_login copy = out;
    copy.active = true;
    assert_int_equal(srm_ds_login_put(t, 1, 1, &copy), 0);
    assert_int_equal(srm_ds_login_del(t, 1, 1, "carol", "s1"), 0);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.sessions_active, 2);
    assert_int_equal(st.sessions_inactive, 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_login_list(t, 1, "carol", count_login, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.active, 1);
    c.n = c.active = 0;
    assert_int_equal(srm_ds_login_list(t, 1, NULL, count_login, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(srm_ds_login_get(t, 1, "carol", "s1", &out), -ENOENT);
    assert_int_equal(srm_ds_login_get(t, 1, "carol", NULL, &out), -EINVAL);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
}

static struct srm_ds_sip_reg sip_reg(const char *aor, uint64_t e1, uint64_t e2)
{
    struct srm_ds_sip_reg r = {.aor = aor, .n_contacts = 2};

    r.contacts[0] = (struct srm_ds_sip_contact){
        .uri = "sip:a@10.0.0.1", .expires_ms = e1, .call_id = "c1", .cseq = 1, .q = 1000};
    r.contacts[1] = (struct srm_ds_sip_contact){.uri = "sip:a@10.0.0.2",
                                                .expires_ms = e2,
                                                .call_id = "c2",
                                                .cseq = 2,
                                                .q = 500,
                                                .path = "<sip:edge;lr>",
                                                .received = "192.0.2.1:5060"};
    return r;
}

static int count_sip(const struct srm_ds_sip_reg *r, void *data)
{
    *(unsigned *)data += r->n_contacts;
    return 0;
}

static void test_sip_expiry(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_sip_reg r, out;
    size_t n;
    unsigned contacts = 0;
    struct srm_ds_part_stats st;

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    r = sip_reg("sip:a@example.com", 1000, 2000);
    assert_int_equal(srm_ds_sip_put(t, 1, 1, &r, 100), 0);
    r = sip_reg("sip:b@example.com", 1500, 1500);
    assert_int_equal(srm_ds_sip_put(t, 1, 1, &r, 100), 0);
    r = sip_reg("sip:c@example.com", 50, 60); /* already expired: nothing stored */
    assert_int_equal(srm_ds_sip_put(t, 1, 1, &r, 100), 0);
    assert_int_equal(srm_ds_sip_get(t, 1, "sip:c@example.com", 100, &out), -ENOENT);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_sip_get(t, 1, "sip:a@example.com", 100, &out), 0);
    assert_int_equal(out.n_contacts, 2);
    assert_string_equal(out.contacts[1].path, "<sip:edge;lr>");
    /* reads never return an expired contact, even before any sweep */
    assert_int_equal(srm_ds_sip_get(t, 1, "sip:a@example.com", 1000, &out), 0);
    assert_int_equal(out.n_contacts, 1);
    assert_string_equal(out.contacts[0].uri, "sip:a@10.0.0.2");
    assert_int_equal(srm_ds_sip_get(t, 1, "sip:b@example.com", 1500, &out), -ENOENT);
    assert_int_equal(srm_ds_sip_list(t, 1, 1200, count_sip, &contacts), 0);
    assert_int_equal(contacts, 3);
    contacts = 0;
    assert_int_equal(srm_ds_sip_list(t, 1, 1600, count_sip, &contacts), 0);
    assert_int_equal(contacts, 1);
    srm_ds_txn_abort(t);

    /* the owner's sweep removes them for good (and logs it) */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_sip_sweep(t, 1, 1, 1600, 0, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_SIP], 1);
    assert_int_equal(srm_ds_sip_sweep(t, 1, 1, 1600, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(srm_ds_sip_sweep(t, 1, 7, 1600, 0, &n), SRM_ESTALE_EPOCH);
    assert_int_equal(srm_ds_sip_sweep(t, 9, 1, 1600, 0, &n), SRM_ENOTOWNER);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    /* a put sweeps a few others as it goes */
    t = ds_test_begin(f->env, 0);
    r = sip_reg("sip:d@example.com", 5000, 5000);
    assert_int_equal(srm_ds_sip_put(t, 1, 1, &r, 2500), 0);
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_SIP], 1); /* a@ (expired at 2000) went */
    assert_int_equal(srm_ds_sip_del(t, 1, 1, "sip:d@example.com"), 0);
    assert_int_equal(srm_ds_sip_del(t, 1, 1, "sip:d@example.com"), -ENOENT);
    r.n_contacts = 0;
    assert_int_equal(srm_ds_sip_put(t, 1, 1, &r, 2500), -EINVAL);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
}

/* ---- log ---- */

static void test_log_read_trim_horizon(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_log_info li;
    struct coll c = {0};
    uint64_t next, gen;
    char u[32];

    ds_test_own(f->env, 1, 1, 1);
    for (int i = 0; i < 20; i++) {
        snprintf(u, sizeof(u), "u%02d", i);
        put_presence(f->env, 1, 1, u, "r", "s");
    }
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.first_seq, 1);
    assert_int_equal(li.last_seq, 20);
    assert_true(li.bytes > 0);
    /* bounded by count */
    assert_int_equal(srm_ds_log_read(t, 1, 1, 0, 5, 0, coll_cb, &c, &next, &gen), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(next, 6);
    assert_int_equal(gen, li.gen);
    assert_int_equal(c.e[0].seq, 1);
    assert_int_equal(c.e[4].seq, 5);
    assert_memory_equal(c.e[0].key, "u00\0r\0", 6);
    assert_int_equal(c.e[0].stamp.origin, 1);
    assert_int_equal(c.e[0].stamp.epoch, 1);
    assert_true(c.e[1].stamp.hlc > c.e[0].stamp.hlc);
    /* bounded by bytes: always one at least */
    coll_free(&c);
    assert_int_equal(srm_ds_log_read(t, 1, 6, 0, 0, 1, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(next, 7);
    coll_free(&c);
    size_t one = DS_WIRE_HDR + 6 + 1 + 1 + 1 + 8 + 2 + 2 + 2;
    assert_int_equal(srm_ds_log_read(t, 1, 6, 0, 0, 3 * one, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 3);
    coll_free(&c);
    /* at the end: nothing, position unchanged */
    assert_int_equal(srm_ds_log_read(t, 1, 21, 0, 0, 0, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(next, 21);
    /* beyond the end: the log was reset */
    assert_int_equal(srm_ds_log_read(t, 1, 22, 0, 0, 0, coll_cb, &c, &next, NULL), SRM_EHORIZON);
    assert_int_equal(srm_ds_log_read(t, 9, 1, 0, 0, 0, coll_cb, &c, &next, NULL), SRM_ENOTFOUND);
    /* excluding our own origin gives nothing but advances */
    assert_int_equal(srm_ds_log_read(t, 1, 1, 1, 0, 0, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(next, 21);
    srm_ds_txn_abort(t);

    /* trim what the peer acknowledged */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_trim(t, 1, 10), 0);
    assert_int_equal(srm_ds_log_trim(t, 9, 10), SRM_ENOTFOUND);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.first_seq, 11);
    assert_int_equal(srm_ds_log_read(t, 1, 10, 0, 0, 0, coll_cb, &c, &next, NULL), SRM_EHORIZON);
    assert_int_equal(srm_ds_log_read(t, 1, 11, 0, 0, 0, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 10);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    coll_free(&c);

    /* trim beyond the end stops at the end */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_trim(t, 1, 1000), 0);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.first_seq, 21);
    assert_int_equal(li.last_seq, 20);
    assert_int_equal(li.bytes, 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
}

static void test_log_bound(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_log_info li;
    struct coll c = {0};
    char u[32];

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_set_max(t, 1, 100), -EINVAL);
    assert_int_equal(srm_ds_log_set_max(t, 1, 8192), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(u, sizeof(u), "user-%04d", i);
        put_presence(f->env, 1, 1, u, "desk", "a status text of a few dozen bytes");
    }
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_true(li.bytes <= 8192);
    assert_true(li.first_seq > 1);
    assert_int_equal(li.last_seq, 300);
    /* the slow reader is told, explicitly */
    assert_int_equal(srm_ds_log_read(t, 1, 1, 0, 0, 0, coll_cb, &c, NULL, NULL), SRM_EHORIZON);
    assert_int_equal(srm_ds_log_read(t, 1, li.first_seq, 0, 0, 0, coll_cb, &c, NULL, NULL), 0);
    assert_int_equal(c.n, li.last_seq - li.first_seq + 1);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    coll_free(&c);
}

/* The entries of one transaction are stored together (several per LMDB record): reads
 * start anywhere inside such a run, trims cut through one exactly, a transaction reads its
 * own entries before commit, superseded entries within one transaction are skipped. */
static void test_log_runs(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_log_info li;
    struct coll c = {0};
    uint64_t next;
    char u[32];

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    for (int i = 0; i < 120; i++) { /* more than one record's worth */
        snprintf(u, sizeof(u), "user-%03d", i);
        struct srm_ds_presence p = ds_test_presence(u, "desk", "status");
        assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    }
    struct srm_ds_presence again = ds_test_presence("user-007", "desk", "newer");
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &again), 0); /* seq 121 supersedes 8 */
    /* the transaction sees its own entries */
    assert_int_equal(srm_ds_log_read(t, 1, 100, 0, 0, 0, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 22);
    assert_int_equal(c.e[0].seq, 100);
    assert_int_equal(next, 122);
    coll_free(&c);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    /* more writes after that read, in the same transaction */
    for (int i = 120; i < 130; i++) {
        snprintf(u, sizeof(u), "user-%03d", i);
        struct srm_ds_presence p = ds_test_presence(u, "desk", "status");
        assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    }
    assert_int_equal(srm_ds_txn_commit(t), 0);

    /* from the middle of a run; the superseded entry is skipped but passed */
    read_log(f->env, 1, 5, 0, &c, &next, NULL);
    assert_int_equal(c.n, 131 - 4 - 1);
    assert_int_equal(c.e[0].seq, 5);
    assert_int_equal(c.e[3].seq, 9); /* 8 was superseded by 121 */
    assert_int_equal(next, 132);
    coll_free(&c);
    /* a trim through the middle of a run */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_trim(t, 1, 37), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.first_seq, 38);
    assert_int_equal(li.last_seq, 131);
    assert_int_equal(srm_ds_log_read(t, 1, 37, 0, 0, 0, coll_cb, &c, &next, NULL), SRM_EHORIZON);
    assert_int_equal(srm_ds_log_read(t, 1, 38, 0, 3, 0, coll_cb, &c, &next, NULL), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.e[0].seq, 38);
    assert_int_equal(next, 41);
    assert_memory_equal(c.e[0].key, "user-037\0desk\0", 14);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    coll_free(&c);
    /* trims at and beyond a run's end, then everything; writes go on after */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_trim(t, 1, 121), 0);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.first_seq, 122);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    assert_int_equal(srm_ds_log_trim(t, 1, 1000), 0);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_int_equal(li.bytes, 0);
    assert_int_equal(li.first_seq, 132);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    put_presence(f->env, 1, 1, "late", "r", "s");
    read_log(f->env, 1, 132, 0, &c, &next, NULL);
    assert_int_equal(c.n, 1);
    assert_int_equal(next, 133);
    coll_free(&c);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    /* a bound below one transaction's run keeps the newest run whole */
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_set_max(t, 1, 4096), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(u, sizeof(u), "bulk-%03d", i);
        struct srm_ds_presence p = ds_test_presence(u, "desk", "status");
        assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    }
    assert_int_equal(srm_ds_txn_commit(t), 0);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
    assert_true(li.bytes <= 4096);
    assert_int_equal(li.last_seq, 332);
    assert_true(li.first_seq > 133 && li.first_seq < 332);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
}

/* Appends over the bound drop the oldest entries a few at a time, in the same transaction:
 * the log never exceeds its bound after a commit and a transaction drops about as much as
 * it adds, never a large slice at once. Two partitions interleaved in one transaction, and
 * a trim between appends, keep every counter exact. */
static void test_log_bound_steady(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_log_info li, l2;
    char u[32];

    ds_test_own(f->env, 1, 1, 1);
    ds_test_own(f->env, 2, 1, 1);
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_log_set_max(t, 1, 16384), 0);
    assert_int_equal(srm_ds_log_set_max(t, 2, 8192), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    uint64_t first = 1;
    for (int b = 0; b < 40; b++) {
        t = ds_test_begin(f->env, 0);
        for (int i = 0; i < 50; i++) {
            snprintf(u, sizeof(u), "user-%d-%d", b, i);
            struct srm_ds_presence p = ds_test_presence(u, "desk", "some status text");
            assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
            assert_int_equal(srm_ds_presence_put(t, 2, 1, &p), 0);
            if (i == 25)
                assert_int_equal(srm_ds_log_trim(t, 2, first + 3), 0);
        }
        assert_int_equal(srm_ds_txn_commit(t), 0);
        t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
        assert_int_equal(srm_ds_log_info(t, 1, &li), 0);
        assert_int_equal(srm_ds_log_info(t, 2, &l2), 0);
        assert_true(li.bytes <= 16384);
        assert_true(l2.bytes <= 8192);
        assert_int_equal(li.last_seq, (uint64_t)(b + 1) * 50);
        /* entries are all of one size: a transaction of 50 appends drops about 50 */
        if (li.first_seq > 1 && first > 1)
            assert_true(li.first_seq - first <= 52);
        first = li.first_seq;
        assert_int_equal(srm_ds_verify(t, 1), 0);
        assert_int_equal(srm_ds_verify(t, 2), 0);
        srm_ds_txn_abort(t);
    }
    assert_true(first > 1000); /* the bound was reached and held */
}

/* A read transaction kept reset between uses (a replication endpoint's, a subscriber's)
 * does not prevent the map from growing; an active one defers growth until it ends. */
static void test_map_grows_with_reset_reader(void **state)
{
    (void)state;
    char *dir = ds_test_mkdtemp();
    struct srm_ds_open_opts o = {
        .node_id = 1, .sync = SRM_DS_SYNC_NONE, .map_size = 1 << 20, .map_size_max = 16 << 20};
    struct srm_ds_env *env;
    struct srm_ds_env_info info;
    struct srm_ds_txn *reader, *t;
    struct srm_ds_log_info li;
    static char status[1000];
    char u[32];
    int grew = 0, deferred = 0;

    memset(status, 's', sizeof(status) - 1);
    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    ds_test_own(env, 1, 1, 1);
    reader = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    srm_ds_txn_reset(reader);
    for (int b = 0; b < 200 && grew < 2; b++) {
        int rc = 0;

        t = ds_test_begin(env, 0);
        for (int i = 0; i < 20 && rc == 0; i++) {
            snprintf(u, sizeof(u), "user%d-%d", b, i);
            struct srm_ds_presence p = ds_test_presence(u, "r", status);
            rc = srm_ds_presence_put(t, 1, 1, &p);
        }
        rc = rc == 0 ? srm_ds_txn_commit(t) : (srm_ds_txn_abort(t), rc);
        if (rc == -EAGAIN) {
            /* once with the reader active: growth waits for it */
            if (deferred == 0) {
                assert_int_equal(srm_ds_txn_renew(reader), 0);
                t = ds_test_begin(env, 0);
                struct srm_ds_presence p = ds_test_presence("x", "r", status);
                assert_int_equal(srm_ds_env_info(env, &info), 0);
                uint64_t before = info.map_size;
                (void)srm_ds_presence_put(t, 1, 1, &p);
                srm_ds_txn_abort(t);
                assert_int_equal(srm_ds_env_info(env, &info), 0);
                assert_int_equal(info.map_size, before);
                srm_ds_txn_reset(reader);
                deferred++;
            }
            grew++;
            b--; /* the same batch again, after growth */
            continue;
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(grew, 2);
    assert_int_equal(srm_ds_env_info(env, &info), 0);
    assert_true(info.map_size >= (4u << 20));
    /* the reset reader renews on the grown map and sees every write */
    assert_int_equal(srm_ds_txn_renew(reader), 0);
    assert_int_equal(srm_ds_log_info(reader, 1, &li), 0);
    assert_true(li.last_seq > 40);
    assert_int_equal(srm_ds_verify(reader, 1), 0);
    srm_ds_txn_abort(reader);
    srm_ds_env_close(env);
    ds_test_rmdir(dir);
}

/* Replicates part from src to dst: reads what dst has not applied yet. */
static void replicate(struct srm_ds_env *src, uint32_t src_node, struct srm_ds_env *dst,
                      uint32_t dst_node, uint32_t part, struct srm_ds_apply_result *res)
{
    struct srm_ds_txn *t = ds_test_begin(dst, SRM_DS_TXN_RDONLY);
    uint64_t gen, seq, next, sgen;
    struct coll c = {0};

    assert_int_equal(srm_ds_log_pos(t, part, src_node, &gen, &seq), 0);
    srm_ds_txn_abort(t);
    t = ds_test_begin(src, SRM_DS_TXN_RDONLY);
    struct srm_ds_log_info li;
    assert_int_equal(srm_ds_log_info(t, part, &li), 0);
    if (gen != li.gen)
        seq = li.first_seq - 1;
    assert_int_equal(srm_ds_log_read(t, part, seq + 1, dst_node, 0, 0, coll_cb, &c, &next, &sgen),
                     0);
    srm_ds_txn_abort(t);
    t = ds_test_begin(dst, 0);
    assert_int_equal(srm_ds_log_apply(t, part, src_node, sgen, c.e, c.n, next - 1, res), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    coll_free(&c);
}

static void test_apply_idempotent(void **state)
{
    struct fx *f = *state;
    char *dir2 = ds_test_mkdtemp();
    uint64_t clock2 = f->clock;
    struct srm_ds_env *b = ds_test_open(dir2, 2, &clock2);
    struct srm_ds_apply_result r;
    struct srm_ds_txn *t;
    struct coll c = {0};
    uint64_t next, gen, pseq, pgen;
    struct srm_ds_presence out;

    ds_test_own(f->env, 1, 1, 1);
    put_presence(f->env, 1, 1, "alice", "pc", "one");
    put_presence(f->env, 1, 1, "bob", "pc", "two");
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_presence_del(t, 1, 1, "bob", "pc"), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    read_log(f->env, 1, 1, 0, &c, &next, &gen);
    /* bob's put is superseded by his delete: the log gives alice's put and bob's delete */
    assert_int_equal(c.n, 2);
    assert_int_equal(next, 4);
    assert_int_equal(c.e[0].seq, 1);
    assert_int_equal(c.e[1].seq, 3);
    assert_true(c.e[1].flags & SRM_DS_ENTRY_TOMBSTONE);
    t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen, c.e, c.n, 0, &r), 0);
    assert_int_equal(r.applied, 2);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    assert_same_digests(f->env, b, 1);
    /* again: nothing changes */
    t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen, c.e, c.n, 0, &r), 0);
    assert_int_equal(r.applied, 0);
    assert_int_equal(r.duplicate, 2);
    assert_int_equal(srm_ds_log_pos(t, 1, 1, &pgen, &pseq), 0);
    assert_int_equal(pgen, gen);
    assert_int_equal(pseq, 3);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    /* again under another generation: positions restart, the stamps still dedupe */
    t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen + 1, c.e, c.n, 0, &r), 0);
    assert_int_equal(r.applied, 0);
    assert_int_equal(r.duplicate, 2); /* the stamps are already there */
    assert_int_equal(srm_ds_txn_commit(t), 0);
    assert_same_digests(f->env, b, 1);
    t = ds_test_begin(b, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "alice", "pc", &out), 0);
    assert_string_equal(out.status, "one");
    assert_int_equal(srm_ds_presence_get(t, 1, "bob", "pc", &out), -ENOENT);
    struct srm_ds_owner own;
    assert_int_equal(srm_ds_owner_get(t, 1, &own), 0);
    assert_int_equal(own.node, SRM_DS_NODE_NONE); /* apply does not make an owner */
    srm_ds_txn_abort(t);

    /* a batch with one bad entry changes nothing */
    uint8_t bad[4] = {9, 0, 0, 0};
    struct srm_ds_entry e2[2] = {c.e[0], c.e[0]};
    e2[0].seq = 10;
    e2[0].stamp.hlc += 1000;
    e2[1].seq = 11;
    e2[1].val = bad;
    e2[1].val_len = sizeof(bad);
    t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen + 1, e2, 2, 0, &r), SRM_EBADFORMAT);
    e2[1] = c.e[0];
    e2[1].stamp.origin = 0;
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen + 1, e2, 2, 0, &r), -EINVAL);
    assert_int_equal(srm_ds_log_apply(t, 0, 1, gen, e2, 1, 0, &r), -EINVAL);
    /* through_seq advances the position past filtered entries */
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen + 1, NULL, 0, 50, &r), 0);
    assert_int_equal(srm_ds_log_pos(t, 1, 1, &pgen, &pseq), 0);
    assert_int_equal(pseq, 50);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    assert_same_digests(f->env, b, 1);

    coll_free(&c);
    srm_ds_env_close(b);
    ds_test_rmdir(dir2);
}

/* Both nodes wrote the same partition (split brain / backup serving the peer's users): after
 * exchanging logs both ways, they hold the same records, and nothing loops back. */
static void test_convergence_both_writers(void **state)
{
    struct fx *f = *state;
    char *dir2 = ds_test_mkdtemp();
    uint64_t clock2 = f->clock + 5; /* clocks differ */
    struct srm_ds_env *b = ds_test_open(dir2, 2, &clock2);
    struct srm_ds_apply_result r;
    struct srm_ds_presence out;
    struct srm_ds_txn *t;
    struct coll c = {0};
    char u[32];

    /* A owns partition 1 at epoch 1 and writes; B applies */
    ds_test_own(f->env, 1, 1, 1);
    for (int i = 0; i < 30; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        put_presence(f->env, 1, 1, u, "r", "a-e1");
        f->clock++;
    }
    replicate(f->env, 1, b, 2, 1, &r);
    assert_int_equal(r.applied, 30);
    /* split: B takes over at epoch 2 and writes some keys; A, still believing it owns the
     * partition at epoch 1, writes some overlapping keys (later in time) */
    ds_test_own(b, 1, 2, 2);
    for (int i = 0; i < 20; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        put_presence(b, 1, 2, u, "r", "b-e2");
        clock2++;
    }
    t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_presence_del(t, 1, 2, "u0", "r"), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    f->clock += 1000;
    for (int i = 10; i < 40; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        put_presence(f->env, 1, 1, u, "r", "a-e1-late");
    }
    /* heal: exchange both ways, twice, in either order */
    replicate(b, 2, f->env, 1, 1, &r);
    assert_int_equal(r.applied,
                     20); /* B's epoch-2 writes win (u0's put superseded by its delete) */
    replicate(f->env, 1, b, 2, 1, &r); /* A's late writes on keys B also wrote lose */
    assert_int_equal(r.applied, 20);   /* u20..u39 */
    assert_int_equal(r.superseded, 0); /* A's late u10..u19 were superseded on A already */
    replicate(b, 2, f->env, 1, 1, &r); /* what B applied from A is not sent back */
    assert_int_equal(r.applied, 0);
    assert_int_equal(r.duplicate + r.superseded, 0);
    replicate(f->env, 1, b, 2, 1, &r);
    assert_int_equal(r.applied, 0);
    assert_same_digests(f->env, b, 1);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "u0", "r", &out), -ENOENT);
    assert_int_equal(srm_ds_presence_get(t, 1, "u15", "r", &out), 0);
    assert_string_equal(out.status, "b-e2");
    assert_int_equal(srm_ds_presence_get(t, 1, "u25", "r", &out), 0);
    assert_string_equal(out.status, "a-e1-late");
    srm_ds_txn_abort(t);
    /* B's own log still carries A's entries for its local subscribers */
    read_log(b, 1, 1, 0, &c, NULL, NULL);
    assert_int_equal(c.n, 40); /* the current version of u1..u39 and u0's delete */
    coll_free(&c);
    srm_ds_env_close(b);
    ds_test_rmdir(dir2);
}

/* The same entries applied in different orders and batchings give the same digests. */
static void test_digest_order_independent(void **state)
{
    struct fx *f = *state;
    char *d2 = ds_test_mkdtemp(), *d3 = ds_test_mkdtemp();
    struct srm_ds_env *b = ds_test_open(d2, 2, NULL), *c3 = ds_test_open(d3, 3, NULL);
    struct coll c = {0};
    uint64_t gen;
    char u[32], s[32];
    unsigned seed = 12345;

    ds_test_own(f->env, 1, 1, 1);
    for (int i = 0; i < 300; i++) {
        struct srm_ds_txn *t = ds_test_begin(f->env, 0);
        int k = (int)(rand_r(&seed) % 60);

        snprintf(u, sizeof(u), "user%d", k);
        snprintf(s, sizeof(s), "status %d", i);
        if (i % 7 == 3) {
            int rc = srm_ds_presence_del(t, 1, 1, u, "r");
            assert_true(rc == 0 || rc == -ENOENT);
        } else if (i % 5 == 0) {
            struct srm_ds_login l = {
                .user = u, .session_id = "s", .node = 1, .active = (i & 1) != 0};
            assert_int_equal(srm_ds_login_put(t, 1, 1, &l), 0);
        } else {
            struct srm_ds_presence p = ds_test_presence(u, "r", s);
            assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
        }
        assert_int_equal(srm_ds_txn_commit(t), 0);
        f->clock += rand_r(&seed) % 3;
    }
    read_log(f->env, 1, 1, 0, &c, NULL, &gen);
    assert_true(c.n > 0 && c.n <= 300);
    /* B: in order, one batch */
    struct srm_ds_txn *t = ds_test_begin(b, 0);
    assert_int_equal(srm_ds_log_apply(t, 1, 1, gen, c.e, c.n, 0, NULL), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    /* C: shuffled, in random batches, with seq 0 (no position shortcut) */
    for (size_t i = 0; i < c.n; i++)
        c.e[i].seq = 0;
    for (size_t i = c.n - 1; i > 0; i--) {
        size_t j = rand_r(&seed) % (i + 1);
        struct srm_ds_entry tmp = c.e[i];
        c.e[i] = c.e[j];
        c.e[j] = tmp;
    }
    for (size_t i = 0; i < c.n;) {
        size_t n = 1 + rand_r(&seed) % 17;
        if (i + n > c.n)
            n = c.n - i;
        t = ds_test_begin(c3, 0);
        assert_int_equal(srm_ds_log_apply(t, 1, 1, gen, c.e + i, n, 0, NULL), 0);
        assert_int_equal(srm_ds_txn_commit(t), 0);
        i += n;
    }
    assert_same_digests(f->env, b, 1);
    assert_same_digests(f->env, c3, 1);
    /* buckets agree too */
    struct srm_ds_digest ba[SRM_DS_DIGEST_BUCKETS], bc[SRM_DS_DIGEST_BUCKETS];
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_digest_buckets(t, 1, SRM_DS_PRESENCE, ba), 0);
    srm_ds_txn_abort(t);
    t = ds_test_begin(c3, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_digest_buckets(t, 1, SRM_DS_PRESENCE, bc), 0);
    struct srm_ds_part_stats sa, sc;
    assert_int_equal(srm_ds_part_stats(t, 1, &sc), 0);
    srm_ds_txn_abort(t);
    assert_memory_equal(ba, bc, sizeof(ba));
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_part_stats(t, 1, &sa), 0);
    srm_ds_txn_abort(t);
    assert_int_equal(sa.sessions_active, sc.sessions_active);
    assert_int_equal(sa.sessions_inactive, sc.sessions_inactive);
    coll_free(&c);

    /* local writes of the same contents in different orders */
    srm_ds_env_close(b);
    srm_ds_env_close(c3);
    ds_test_rmdir(d2);
    ds_test_rmdir(d3);
    d2 = ds_test_mkdtemp();
    d3 = ds_test_mkdtemp();
    b = ds_test_open(d2, 1, NULL);
    c3 = ds_test_open(d3, 1, NULL);
    ds_test_own(b, 4, 1, 1);
    ds_test_own(c3, 4, 1, 1);
    for (int i = 0; i < 50; i++) {
        snprintf(u, sizeof(u), "x%d", i);
        put_presence(b, 4, 1, u, "r", "v");
        snprintf(u, sizeof(u), "x%d", 49 - i);
        put_presence(c3, 4, 1, u, "r", i % 2 ? "w" : "v");
    }
    for (int i = 0; i < 50; i += 2) { /* fix up what c3 wrote differently */
        snprintf(u, sizeof(u), "x%d", 49 - (i + 1));
        put_presence(c3, 4, 1, u, "r", "v");
    }
    assert_same_digests(b, c3, 4);
    srm_ds_env_close(b);
    srm_ds_env_close(c3);
    ds_test_rmdir(d2);
    ds_test_rmdir(d3);
}

struct find_key {
    const char *key;
    size_t len;
    int found;
};

static int find_key_cb(const struct srm_ds_entry *e, void *data)
{
    struct find_key *fk = data;

    if (e->key_len == fk->len && !memcmp(e->key, fk->key, fk->len))
        fk->found++;
    return 0;
}

static void test_digest_narrowing(void **state)
{
    struct fx *f = *state;
    char *d2 = ds_test_mkdtemp();
    struct srm_ds_env *b = ds_test_open(d2, 1, NULL);
    struct srm_ds_digest ba[SRM_DS_DIGEST_BUCKETS], bb[SRM_DS_DIGEST_BUCKETS];
    struct srm_ds_txn *t;
    char u[32];
    int diff = -1, ndiff = 0;

    ds_test_own(f->env, 1, 1, 1);
    ds_test_own(b, 1, 1, 1);
    for (int i = 0; i < 200; i++) {
        snprintf(u, sizeof(u), "n%d", i);
        put_presence(f->env, 1, 1, u, "r", "same");
        put_presence(b, 1, 1, u, "r", i == 77 ? "different" : "same");
    }
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_digest_buckets(t, 1, SRM_DS_PRESENCE, ba), 0);
    srm_ds_txn_abort(t);
    t = ds_test_begin(b, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_digest_buckets(t, 1, SRM_DS_PRESENCE, bb), 0);
    for (int i = 0; i < SRM_DS_DIGEST_BUCKETS; i++) {
        if (memcmp(&ba[i], &bb[i], sizeof(ba[i]))) {
            diff = i;
            ndiff++;
        }
    }
    assert_int_equal(ndiff, 1);
    assert_int_equal(diff, (int)srm_ds_digest_bucket_of(SRM_DS_PRESENCE, "n77\0r\0", 6));
    struct find_key fk = {"n77\0r\0", 6, 0};
    assert_int_equal(
        srm_ds_digest_bucket_list(t, 1, SRM_DS_PRESENCE, (unsigned)diff, find_key_cb, &fk), 0);
    assert_int_equal(fk.found, 1);
    assert_int_equal(
        srm_ds_digest_bucket_list(t, 1, SRM_DS_PRESENCE, SRM_DS_DIGEST_BUCKETS, find_key_cb, &fk),
        -EINVAL);
    srm_ds_txn_abort(t);
    srm_ds_env_close(b);
    ds_test_rmdir(d2);
}

/* ---- snapshots ---- */

static void install_from(struct srm_ds_env *src, struct srm_ds_env *dst, uint32_t part,
                         size_t chunk, void (*between)(void *), void *arg)
{
    struct srm_ds_snap *s;
    struct srm_ds_snap_info info;
    struct srm_ds_snap_install *inst;
    uint8_t *buf = malloc(chunk);
    size_t len;
    int rc, chunks = 0;

    assert_int_equal(srm_ds_snap_open(src, part, &s), 0);
    assert_int_equal(srm_ds_snap_info(s, &info), 0);
    if (between)
        between(arg); /* writes after the snapshot point */
    assert_int_equal(srm_ds_snap_install_begin(dst, &info, &inst), 0);
    while ((rc = srm_ds_snap_next(s, buf, chunk, &len)) == 1) {
        assert_true(len <= chunk);
        assert_int_equal(srm_ds_snap_install_chunk(inst, buf, len), 0);
        chunks++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(srm_ds_snap_install_commit(inst), 0);
    srm_ds_snap_close(s);
    free(buf);
}

struct late {
    struct srm_ds_env *env;
};

static void late_writes(void *arg)
{
    struct late *l = arg;

    put_presence(l->env, 1, 1, "late-1", "r", "after the snapshot");
    put_presence(l->env, 1, 1, "u3", "r", "changed after the snapshot");
}

static void test_snapshot_roundtrip(void **state)
{
    struct fx *f = *state;
    char *d2 = ds_test_mkdtemp();
    struct srm_ds_env *b = ds_test_open(d2, 2, NULL);
    struct srm_ds_txn *t;
    struct srm_ds_presence out;
    struct srm_ds_apply_result r;
    struct coll c = {0};
    char u[32];
    uint64_t pgen, pseq, next;

    ds_test_own(f->env, 1, 1, 1);
    t = ds_test_begin(f->env, 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        struct srm_ds_presence p = ds_test_presence(u, "r", "before");
        assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
        if (i % 10 == 0) {
            struct srm_ds_login l = {.user = u, .session_id = "s", .node = 1, .active = i % 20};
            assert_int_equal(srm_ds_login_put(t, 1, 1, &l), 0);
            struct srm_ds_sip_reg reg = sip_reg(u, f->clock + 100000, f->clock + 200000);
            assert_int_equal(srm_ds_sip_put(t, 1, 1, &reg, f->clock), 0);
        }
    }
    assert_int_equal(srm_ds_presence_del(t, 1, 1, "u5", "r"), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    /* B has some old junk in partition 1 that the image replaces */
    ds_test_own(b, 1, 2, 1);
    put_presence(b, 1, 1, "junk", "r", "x");

    struct late l = {f->env};
    install_from(f->env, b, 1, 4096, late_writes, &l);
    t = ds_test_begin(b, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "junk", "r", &out), -ENOENT);
    assert_int_equal(srm_ds_presence_get(t, 1, "late-1", "r", &out), -ENOENT); /* point in time */
    assert_int_equal(srm_ds_presence_get(t, 1, "u3", "r", &out), 0);
    assert_string_equal(out.status, "before");
    assert_int_equal(srm_ds_presence_get(t, 1, "u5", "r", &out), -ENOENT);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    assert_int_equal(srm_ds_log_pos(t, 1, 1, &pgen, &pseq), 0);
    struct srm_ds_owner own;
    assert_int_equal(srm_ds_owner_get(t, 1, &own), 0);
    assert_int_equal(own.node, 2); /* ownership untouched */
    /* local readers of B's old log are told to re-read */
    assert_int_equal(srm_ds_log_read(t, 1, 2, 0, 0, 0, coll_cb, &c, &next, NULL), SRM_EHORIZON);
    srm_ds_txn_abort(t);
    /* continue from the snapshot position with the log */
    replicate(f->env, 1, b, 2, 1, &r);
    assert_int_equal(r.applied, 2);
    assert_same_digests(f->env, b, 1);
    coll_free(&c);

    /* a tiny chunk cannot hold an entry */
    struct srm_ds_snap *s;
    uint8_t small[16];
    size_t len;
    assert_int_equal(srm_ds_snap_open(f->env, 1, &s), 0);
    assert_int_equal(srm_ds_snap_next(s, small, sizeof(small), &len), -ENOBUFS);
    srm_ds_snap_close(s);
    assert_int_equal(srm_ds_snap_open(f->env, 99, &s), SRM_ENOTFOUND);
    srm_ds_env_close(b);
    ds_test_rmdir(d2);
}

static void test_snapshot_refusals(void **state)
{
    struct fx *f = *state;
    char *d2 = ds_test_mkdtemp();
    struct srm_ds_env *b = ds_test_open(d2, 2, NULL);
    struct srm_ds_snap *s;
    struct srm_ds_snap_info info;
    struct srm_ds_snap_install *inst;
    uint8_t buf[65536];
    size_t len;
    struct srm_ds_digest before[3], after[3];

    ds_test_own(f->env, 1, 1, 1);
    for (int i = 0; i < 10; i++) {
        char u[16];
        snprintf(u, sizeof(u), "v%d", i);
        put_presence(f->env, 1, 1, u, "r", "x");
    }
    ds_test_own(b, 1, 2, 1);
    put_presence(b, 1, 1, "mine", "r", "kept");
    digest_of(b, 1, before);

    assert_int_equal(srm_ds_snap_open(f->env, 1, &s), 0);
    assert_int_equal(srm_ds_snap_info(s, &info), 0);
    assert_int_equal(srm_ds_snap_next(s, buf, sizeof(buf), &len), 1);
    assert_int_equal(srm_ds_snap_next(s, buf + len, sizeof(buf) - len, &len), 0);
    srm_ds_snap_close(s);
    assert_int_equal(srm_ds_snap_open(f->env, 1, &s), 0);
    assert_int_equal(srm_ds_snap_next(s, buf, sizeof(buf), &len), 1);
    srm_ds_snap_close(s);

    /* a digest that does not match what arrived: nothing changes */
    struct srm_ds_snap_info wrong = info;
    wrong.digest[SRM_DS_PRESENCE].lo ^= 1;
    assert_int_equal(srm_ds_snap_install_begin(b, &wrong, &inst), 0);
    assert_int_equal(srm_ds_snap_install_chunk(inst, buf, len), 0);
    assert_int_equal(srm_ds_snap_install_commit(inst), SRM_ECORRUPT);
    digest_of(b, 1, after);
    assert_memory_equal(before, after, sizeof(before));
    /* a malformed chunk is refused */
    assert_int_equal(srm_ds_snap_install_begin(b, &info, &inst), 0);
    buf[0] = 0x42;
    assert_int_equal(srm_ds_snap_install_chunk(inst, buf, len), SRM_EBADFORMAT);
    buf[0] = 1;
    assert_int_equal(srm_ds_snap_install_chunk(inst, buf, len - 1), SRM_ECORRUPT);
    srm_ds_snap_install_abort(inst);
    srm_ds_snap_install_abort(NULL);
    digest_of(b, 1, after);
    assert_memory_equal(before, after, sizeof(before));
    info.part = 0;
    assert_int_equal(srm_ds_snap_install_begin(b, &info, &inst), -EINVAL);
    srm_ds_env_close(b);
    ds_test_rmdir(d2);
}

/* ---- verification, tombstones, partitions ---- */

static void test_verify_detects_damage(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    MDB_txn *mt;
    MDB_val k, v;
    uint8_t rk[16];

    ds_test_own(f->env, 1, 1, 1);
    put_presence(f->env, 1, 1, "a", "r", "status");
    /* change a record behind the datastore's back */
    srm__ds_rec_key(rk, 1, SRM_DS_PRESENCE);
    memcpy(rk + 5, "a\0r\0", 4);
    k.mv_data = rk;
    k.mv_size = 9;
    assert_int_equal(mdb_txn_begin(f->env->mdb, NULL, 0, &mt), 0);
    assert_int_equal(mdb_get(mt, f->env->dbi_rec, &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[1 + DS_PRESENCE_HDR] ^= 0x01; /* one letter of the status */
    v.mv_data = copy;
    assert_int_equal(mdb_put(mt, f->env->dbi_rec, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(mt), 0);
    free(copy);
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_verify(t, 1), SRM_ECORRUPT);
    assert_int_equal(srm_ds_verify(t, 2), SRM_ENOTFOUND);
    srm_ds_txn_abort(t);
}

static void test_tombstones_and_parts(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_part_stats st;
    uint32_t ids[4];
    size_t n;

    ds_test_own(f->env, 9, 1, 1);
    ds_test_own(f->env, 3, 2, 1);
    put_presence(f->env, 9, 1, "a", "r", "s");
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_presence_del(t, 9, 1, "a", "r"), 0);
    assert_int_equal(srm_ds_owner_set(t, 5, 1, 0, NULL), 0); /* created in this txn */
    assert_int_equal(srm_ds_part_list(t, ids, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 9);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    t = ds_test_begin(f->env, 0);
    assert_int_equal(srm_ds_part_list(t, ids, 1, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(srm_ds_part_stats(t, 9, &st), 0);
    assert_int_equal(st.tombstones, 1);
    size_t purged;
    assert_int_equal(srm_ds_tombstone_purge(t, 9, 1, &purged), 0); /* older than hlc 1: none */
    assert_int_equal(purged, 0);
    assert_int_equal(srm_ds_tombstone_purge(t, 9, UINT64_MAX, &purged), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(srm_ds_part_stats(t, 9, &st), 0);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(srm_ds_verify(t, 9), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
}

/* ---- map growth, map full and failed transactions ---- */

static void test_map_grow_and_full(void **state)
{
    (void)state;
    char *dir = ds_test_mkdtemp();
    struct srm_ds_open_opts o = {
        .node_id = 1, .sync = SRM_DS_SYNC_NONE, .map_size = 1 << 20, .map_size_max = 4 << 20};
    struct srm_ds_env *env;
    struct srm_ds_env_info info;
    struct srm_ds_txn *t;
    static char status[1000];
    char u[32];
    int committed = 0, grew = 0, full = 0;

    memset(status, 's', sizeof(status) - 1);
    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    ds_test_own(env, 1, 1, 1);
    /* batches of 20 records until the map is full at its maximum */
    for (int b = 0; b < 1000 && !full; b++) {
        int rc = 0;

        t = ds_test_begin(env, 0);
        for (int i = 0; i < 20 && rc == 0; i++) {
            snprintf(u, sizeof(u), "user%d-%d", b, i);
            struct srm_ds_presence p = ds_test_presence(u, "r", status);
            rc = srm_ds_presence_put(t, 1, 1, &p);
        }
        if (rc == 0)
            rc = srm_ds_txn_commit(t);
        else {
            /* a failed transaction refuses everything after */
            struct srm_ds_presence p = ds_test_presence("other", "r", "s");
            assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), SRM_ETXN_FAILED);
            struct srm_ds_owner own;
            assert_int_equal(srm_ds_owner_get(t, 1, &own), SRM_ETXN_FAILED);
            assert_int_equal(srm_ds_txn_commit(t), SRM_ETXN_FAILED);
        }
        if (rc == 0) {
            committed++;
        } else if (rc == -EAGAIN) {
            grew++;
            b--; /* retry the same batch after growth */
        } else {
            assert_int_equal(rc, SRM_EMAPFULL);
            full = 1;
        }
    }
    assert_true(full);
    assert_true(grew >= 1);
    assert_int_equal(srm_ds_env_info(env, &info), 0);
    assert_int_equal(info.map_size, 4 << 20);
    /* everything committed is there and consistent */
    t = ds_test_begin(env, SRM_DS_TXN_RDONLY);
    struct srm_ds_part_stats st;
    assert_int_equal(srm_ds_part_stats(t, 1, &st), 0);
    assert_int_equal(st.records[SRM_DS_PRESENCE], (uint64_t)committed * 20);
    assert_int_equal(srm_ds_verify(t, 1), 0);
    srm_ds_txn_abort(t);
    /* room made by trimming the log lets writes go on */
    t = ds_test_begin(env, 0);
    assert_int_equal(srm_ds_log_trim(t, 1, UINT64_MAX), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    put_presence(env, 1, 1, "after", "r", "room again");
    srm_ds_env_close(env);
    /* reopening keeps the grown size */
    o.map_size_max = 0;
    assert_int_equal(srm_ds_env_open(dir, &o, &env), 0);
    assert_int_equal(srm_ds_env_info(env, &info), 0);
    assert_int_equal(info.map_size, 4 << 20);
    srm_ds_env_close(env);
    ds_test_rmdir(dir);
}

/* ---- read transactions ---- */

static void test_read_txn_reset_renew(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    struct srm_ds_presence out;
    uint64_t seq;

    ds_test_own(f->env, 1, 1, 1);
    put_presence(f->env, 1, 1, "a", "r", "one");
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "a", "r", &out), 0);
    assert_string_equal(out.status, "one");
    put_presence(f->env, 1, 1, "a", "r", "two");
    assert_int_equal(srm_ds_presence_get(t, 1, "a", "r", &out), 0);
    assert_string_equal(out.status, "one"); /* point in time */
    srm_ds_txn_reset(t);
    assert_int_equal(srm_ds_presence_get(t, 1, "a", "r", &out), -EINVAL);
    assert_int_equal(srm_ds_txn_renew(t), 0);
    assert_int_equal(srm_ds_presence_get(t, 1, "a", "r", &out), 0);
    assert_string_equal(out.status, "two");
    assert_int_equal(srm_ds_txn_seq(t, 1, &seq), -ENOENT);
    assert_int_equal(srm_ds_txn_commit(t), 0);

    t = ds_test_begin(f->env, 0);
    struct srm_ds_presence p = ds_test_presence("b", "r", "x");
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    assert_int_equal(srm_ds_presence_put(t, 1, 1, &p), 0);
    assert_int_equal(srm_ds_txn_seq(t, 1, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(srm_ds_txn_renew(t), -EINVAL);
    srm_ds_txn_abort(t); /* nothing of it stays */
    t = ds_test_begin(f->env, SRM_DS_TXN_RDONLY);
    assert_int_equal(srm_ds_presence_get(t, 1, "b", "r", &out), -ENOENT);
    srm_ds_txn_abort(t);
}

/* ---- notifications and sync waits ---- */

/* Events waiting (the commits already sent them: the wait is only a safety net). */
static size_t drain_wait(struct srm_ds_sub *sub, struct srm_ds_event *ev, size_t cap, int ms)
{
    struct pollfd p = {srm_ds_sub_fd(sub), POLLIN, 0};
    size_t n = 0, got;

    if (poll(&p, 1, ms) <= 0)
        return 0;
    assert_int_equal(srm_ds_sub_read(sub, ev, cap, &got), 0);
    n += got;
    return n;
}

static size_t drain(struct srm_ds_sub *sub, struct srm_ds_event *ev, size_t cap)
{
    return drain_wait(sub, ev, cap, 2000);
}

static void test_notifications(void **state)
{
    struct fx *f = *state;
    struct srm_ds_sub *sub, *sub2;
    struct srm_ds_event ev[64];
    size_t n;
    bool seen_overflow = false;

    assert_int_equal(srm_ds_sub_open(f->env, &sub), 0);
    assert_int_equal(srm_ds_sub_open(f->env, &sub2), 0);
    assert_true(srm_ds_sub_fd(sub) >= 0);
    ds_test_own(f->env, 4, 1, 1);
    put_presence(f->env, 4, 1, "a", "r", "s");
    n = drain(sub, ev, 64);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].kind, SRM_DS_EV_COMMIT);
    assert_int_equal(ev[0].part, 4);
    assert_int_equal(ev[0].seq, 1);
    n = drain(sub2, ev, 64);
    assert_int_equal(n, 1);
    srm_ds_sub_close(sub2);
    /* ack and degraded */
    assert_int_equal(srm_ds_sync_ack(f->env, 4, 1), 0);
    n = drain(sub, ev, 64);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].kind, SRM_DS_EV_ACK);
    assert_int_equal(ev[0].seq, 1);
    assert_int_equal(srm_ds_sync_set_degraded(f->env, 4, true), 0);
    n = drain(sub, ev, 64);
    assert_int_equal(ev[0].kind, SRM_DS_EV_DEGRADED);
    assert_int_equal(ev[0].seq, 1);
    assert_int_equal(srm_ds_sync_set_degraded(f->env, 4, false), 0);
    drain(sub, ev, 64);
    /* more commits than the socket queue holds: the loss is reported, nothing is hidden */
    for (int i = 0; i < 200; i++)
        put_presence(f->env, 4, 1, "a", "r", i % 2 ? "x" : "y");
    for (int round = 0; round < 10; round++) {
        n = drain_wait(sub, ev, 64, 0);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (ev[i].kind == SRM_DS_EV_OVERFLOW)
                seen_overflow = true;
    }
    assert_true(seen_overflow);
    srm_ds_sub_close(sub);
    srm_ds_sub_close(NULL);

    /* a subscriber that died is dropped by the next sender, and its slot reused */
    pid_t pid = fork();
    if (pid == 0) {
        struct srm_ds_env *ce;
        struct srm_ds_sub *cs;
        struct srm_ds_open_opts o = {.node_id = 1, .sync = SRM_DS_SYNC_NONE};
        srm_ds_env_close(NULL);
        if (srm_ds_env_open(f->dir, &o, &ce) < 0 || srm_ds_sub_open(ce, &cs) < 0)
            _exit(1);
        _exit(0); /* dies without closing */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    put_presence(f->env, 4, 1, "a", "r", "z");
    struct srm_ds_sub *subs[SRM_DS_SUBSCRIBERS_MAX + 1];
    int opened = 0;
    for (int i = 0; i < SRM_DS_SUBSCRIBERS_MAX + 1; i++) {
        if (srm_ds_sub_open(f->env, &subs[i]) < 0)
            break;
        opened++;
    }
    assert_int_equal(opened, SRM_DS_SUBSCRIBERS_MAX);
    for (int i = 0; i < opened; i++)
        srm_ds_sub_close(subs[i]);
}

struct acker {
    struct srm_ds_env *env;
    uint64_t seq;
    int fd;
};

static void *ack_later(void *arg)
{
    struct acker *a = arg;
    char c;

    /* acks once the waiter told us it is about to wait */
    if (read(a->fd, &c, 1) != 1)
        return NULL;
    usleep(20000);
    srm_ds_sync_ack(a->env, 4, a->seq);
    return NULL;
}

static void test_sync_wait(void **state)
{
    struct fx *f = *state;
    struct srm_ds_txn *t;
    uint64_t seq, acked;
    bool degraded;
    pthread_t th;
    int p[2];

    ds_test_own(f->env, 4, 1, 1);
    t = ds_test_begin(f->env, 0);
    struct srm_ds_presence pr = ds_test_presence("a", "r", "s");
    assert_int_equal(srm_ds_presence_put(t, 4, 1, &pr), 0);
    assert_int_equal(srm_ds_txn_seq(t, 4, &seq), 0);
    assert_int_equal(srm_ds_txn_commit(t), 0);
    assert_int_equal(srm_ds_sync_get(f->env, 4, &acked, &degraded), 0);
    assert_int_equal(acked, 0);
    assert_false(degraded);
    /* nobody acks: timeout */
    assert_int_equal(srm_ds_sync_wait(f->env, 4, seq, 30), -ETIMEDOUT);
    /* acked from another thread while waiting */
    assert_int_equal(pipe(p), 0);
    struct acker a = {f->env, seq, p[0]};
    assert_int_equal(pthread_create(&th, NULL, ack_later, &a), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(srm_ds_sync_wait(f->env, 4, seq, 60000), 0);
    pthread_join(th, NULL);
    close(p[0]);
    close(p[1]);
    /* never lowered by ack, lowered by reset */
    assert_int_equal(srm_ds_sync_ack(f->env, 4, 0), 0);
    assert_int_equal(srm_ds_sync_get(f->env, 4, &acked, NULL), 0);
    assert_int_equal(acked, seq);
    assert_int_equal(srm_ds_sync_reset(f->env, 4, 0), 0);
    assert_int_equal(srm_ds_sync_get(f->env, 4, &acked, NULL), 0);
    assert_int_equal(acked, 0);
    /* degraded: waiters return at once */
    assert_int_equal(srm_ds_sync_set_degraded(f->env, 4, true), 0);
    assert_int_equal(srm_ds_sync_wait(f->env, 4, seq, -1), SRM_ESYNC_DEGRADED);
    assert_int_equal(srm_ds_sync_set_degraded(f->env, 4, false), 0);
    assert_int_equal(srm_ds_sync_wait(f->env, 4, 0, 0), 0);
    assert_int_equal(srm_ds_sync_ack(f->env, 0, 1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_open_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_second_handle, setup, teardown),
        cmocka_unit_test(test_env_corrupt),
        cmocka_unit_test_setup_teardown(test_ownership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_flip_is_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_and_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sip_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_read_trim_horizon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_bound_steady, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_runs, setup, teardown),
        cmocka_unit_test(test_map_grows_with_reset_reader),
        cmocka_unit_test_setup_teardown(test_apply_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_convergence_both_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_order_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_narrowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones_and_parts, setup, teardown),
        cmocka_unit_test(test_map_grow_and_full),
        cmocka_unit_test_setup_teardown(test_read_txn_reset_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_wait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
