/*
 * Loading the users of a partition, off the loop thread (uv_queue_work): from a users file
 * ("NAME PARTITION" per line) or from the configuration database (the users whose home node
 * is the partition's node, srm_db_sync_users_list by pages). The loop keeps serving, pinging
 * srmd and enforcing the lease meanwhile; the users arrive at once when the load is done.
 */
#include "internal.h"
#include "srm_db.h"
#include "srm_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct load_req {
    uv_work_t w;
    struct engine *e;
    struct part *p;
    uint32_t part_id;
    char home[SRM_NODE_NAME_MAX + 1];
    char *users_file;
    char *pg;
    struct user *users;
    size_t n;
    char *arena;
    int err;
    uint64_t ms;
    char errmsg[SRM_DB_ERRMSG_MAX];
};

/* Growable arrays for the worker. */
struct acc {
    struct user *users;
    size_t n, cap;
    char *arena;
    size_t len, acap;
};

static int acc_add(struct acc *a, const char *name, size_t len)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        struct user *u = realloc(a->users, cap * sizeof(*u));
        if (!u)
            return -ENOMEM;
        a->users = u;
        a->cap = cap;
    }
    if (a->len + len + 1 > a->acap) {
        size_t cap = a->acap ? a->acap * 2 : 64 * 1024;
        char *p;
        while (cap < a->len + len + 1)
            cap *= 2;
        p = realloc(a->arena, cap);
        if (!p)
            return -ENOMEM;
        a->arena = p;
        a->acap = cap;
    }
    memcpy(a->arena + a->len, name, len);
    a->arena[a->len + len] = '\0';
    /* Offsets for now: the arena may still move. */
    a->users[a->n] = (struct user){.name = (const char *)(uintptr_t)a->len};
    a->len += len + 1;
    a->n++;
    return 0;
}

static void acc_finish(struct acc *a, struct user **ret_users, size_t *ret_n, char **ret_arena)
{
    for (size_t i = 0; i < a->n; i++)
        a->users[i].name = a->arena + (uintptr_t)a->users[i].name;
    *ret_users = a->users;
    *ret_n = a->n;
    *ret_arena = a->arena;
}

static void acc_free(struct acc *a)
{
    free(a->users);
    free(a->arena);
}

static bool user_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > SRM_DS_USER_MAX - 8)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '@' || c == '+' || c == '-'))
            return false;
    }
    return true;
}

int engine_users_file_read(const char *path, uint32_t part, struct user **ret_users, size_t *ret_n,
                           char **ret_arena)
{
    struct acc a = {0};
    char line[1024];
    unsigned lineno = 0;
    FILE *f = fopen(path, "re");
    int r = 0;

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char *s = line, *name, *end;
        size_t len;
        unsigned long id;

        lineno++;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        name = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        len = (size_t)(s - name);
        while (*s == ' ' || *s == '\t')
            s++;
        errno = 0;
        id = strtoul(s, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (!user_name_ok(name, len) || end == s || *end != '\0' || errno || id == 0 ||
            id > UINT32_MAX) {
            srm_log_error("%s:%u: expected \"USER PARTITION\" (user: letters, digits, . _ @ + -;"
                          " partition: the home node id)",
                          path, lineno);
            r = -EINVAL;
            break;
        }
        if (id != part)
            continue;
        r = acc_add(&a, name, len);
        if (r < 0)
            break;
    }
    if (r == 0 && ferror(f))
        r = -EIO;
    fclose(f);
    if (r < 0) {
        acc_free(&a);
        return r;
    }
    acc_finish(&a, ret_users, ret_n, ret_arena);
    return 0;
}

static int db_read(struct load_req *q)
{
    struct srm_db_sync *db = NULL;
    struct acc a = {0};
    char after[SRM_DB_USER_NAME_MAX + 1] = "";
    int r;

    if (!q->home[0]) {
        snprintf(q->errmsg, sizeof(q->errmsg),
                 "the partition's node name is unknown (srmd did not say)");
        return SRM_ENOTFOUND;
    }
    r = srm_db_sync_open(q->pg, &db, q->errmsg, sizeof(q->errmsg));
    if (r < 0)
        return r;
    for (;;) {
        struct srm_db_user_list *list = NULL;
        r = srm_db_sync_users_list(db, after[0] ? after : NULL, q->home, false, SRM_DB_LIST_MAX,
                                   &list);
        if (r < 0) {
            snprintf(q->errmsg, sizeof(q->errmsg), "%s", srm_db_sync_errmsg(db));
            break;
        }
        for (size_t i = 0; i < list->n && r == 0; i++)
            r = acc_add(&a, list->users[i].name, strlen(list->users[i].name));
        if (list->n > 0)
            snprintf(after, sizeof(after), "%s", list->users[list->n - 1].name);
        if (r < 0 || list->n < SRM_DB_LIST_MAX) {
            srm_db_user_list_free(list);
            break;
        }
        srm_db_user_list_free(list);
    }
    srm_db_sync_close(db);
    if (r < 0) {
        acc_free(&a);
        return r;
    }
    acc_finish(&a, &q->users, &q->n, &q->arena);
    return 0;
}

static void work_cb(uv_work_t *w)
{
    struct load_req *q = w->data;
    uint64_t t0 = engine_now_ms();

    if (q->users_file) {
        q->err = engine_users_file_read(q->users_file, q->part_id, &q->users, &q->n, &q->arena);
        if (q->err < 0)
            snprintf(q->errmsg, sizeof(q->errmsg), "%s: %s", q->users_file, srm_strerror(q->err));
    } else {
        q->err = db_read(q);
    }
    q->ms = engine_now_ms() - t0;
}

static void after_cb(uv_work_t *w, int status)
{
    struct load_req *q = w->data;

    if (status < 0 && q->err == 0)
        q->err = status;
    if (q->err < 0 && q->errmsg[0])
        srm_log_error("partition %u: loading users: %s", q->part_id, q->errmsg);
    engine_part_users(q->e, q->p, q->users, q->n, q->arena, q->err, q->ms);
    free(q->users_file);
    free(q->pg);
    free(q);
}

void engine_load(struct engine *e, struct part *p)
{
    struct load_req *q;
    int r;

    if (p->loading || p->loaded)
        return;
    q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->e = e;
    q->p = p;
    q->part_id = p->id;
    snprintf(q->home, sizeof(q->home), "%s", p->home);
    q->users_file = e->o.users_file ? strdup(e->o.users_file) : NULL;
    q->pg = e->o.pg ? strdup(e->o.pg) : NULL;
    q->w.data = q;
    p->loading = true;
    srm_log_info("partition %u (%s): loading users from %s", p->id, p->home[0] ? p->home : "?",
                 e->o.users_file ? e->o.users_file : "the configuration database");
    r = uv_queue_work(e->loop, &q->w, work_cb, after_cb);
    if (r < 0) {
        p->loading = false;
        free(q->users_file);
        free(q->pg);
        free(q);
    }
}
