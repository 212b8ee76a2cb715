/*
 * Volatile shared state in srm-ds.shm: the subscriber registry for change notifications
 * (abstract unix datagram sockets) and the per-partition replicated positions that sync
 * writers wait on (futex).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SHM_MAGIC  0x316d73642d6d7273ULL /* "srm-dsm1" */
#define SHM_LAYOUT 1u

#define SUB_FREE    0u
#define SUB_CLAIMED 1u
#define SUB_LIVE    2u

#define DGRAM_MAGIC 0x5344u
#define DGRAM_LEN   16

struct shm_part {
    _Atomic uint32_t part;
    _Atomic uint32_t degraded;
    _Atomic uint64_t acked;
};

struct shm_sub {
    _Atomic uint64_t word; /* nonce << 32 | state */
    _Atomic uint32_t overflow;
    _Atomic uint32_t pid;
};

struct ds_shm {
    _Atomic uint64_t magic;
    uint32_t layout;
    uint32_t pad;
    _Atomic uint32_t futex; /* bumped on every ack / degraded change */
    _Atomic uint32_t waiters;
    _Atomic uint32_t nsubs; /* hint: 0 means nobody to notify */
    uint32_t pad2;
    struct shm_part parts[SRM_DS_SYNC_PARTS_MAX];
    struct shm_sub subs[SRM_DS_SUBSCRIBERS_MAX];
};

int srm__ds_shm_open(struct srm_ds_env *env, const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    void *p;
    int fd, rc = 0;

    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    if (stat(path, &st) < 0)
        return -errno;
    snprintf(env->sock_base, sizeof(env->sock_base), "srm-ds:%llx:%llx",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    snprintf(path, sizeof(path), "%s/srm-ds.shm", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX) < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size == 0) {
        if (ftruncate(fd, sizeof(struct ds_shm)) < 0) {
            rc = -errno;
            goto out;
        }
    } else if ((size_t)st.st_size != sizeof(struct ds_shm)) {
        rc = SRM_ECORRUPT;
        goto out;
    }
    p = mmap(NULL, sizeof(struct ds_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    env->shm = p;
    env->shm_len = sizeof(struct ds_shm);
    if (atomic_load(&env->shm->magic) == 0) {
        env->shm->layout = SHM_LAYOUT;
        atomic_store(&env->shm->magic, SHM_MAGIC);
    } else if (atomic_load(&env->shm->magic) != SHM_MAGIC || env->shm->layout != SHM_LAYOUT) {
        munmap(p, env->shm_len);
        env->shm = NULL;
        rc = SRM_ECORRUPT;
    }
out:
    flock(fd, LOCK_UN); /* explicitly: the mapping keeps the open file alive */
    close(fd);
    return rc;
}

void srm__ds_shm_close(struct srm_ds_env *env)
{
    if (env->shm)
        munmap(env->shm, env->shm_len);
    env->shm = NULL;
    if (env->send_fd >= 0)
        close(env->send_fd);
    env->send_fd = -1;
}

static socklen_t sub_addr(struct srm_ds_env *env, unsigned slot, uint32_t nonce,
                          struct sockaddr_un *a)
{
    int n;

    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s:%u:%08x", env->sock_base, slot,
                 nonce);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int send_fd(struct srm_ds_env *env)
{
    int fd;

    pthread_mutex_lock(&env->mu);
    if (env->send_fd < 0)
        env->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fd = env->send_fd;
    pthread_mutex_unlock(&env->mu);
    return fd;
}

static void free_slot(struct ds_shm *shm, unsigned i, uint64_t word)
{
    uint64_t w = word;

    if (atomic_compare_exchange_strong(&shm->subs[i].word, &w, 0))
        atomic_fetch_sub(&shm->nsubs, 1);
}

void srm__ds_notify(struct srm_ds_env *env, enum srm_ds_event_kind kind, uint32_t part,
                    uint64_t seq)
{
    struct ds_shm *shm = env->shm;
    uint8_t d[DGRAM_LEN];
    int fd;

    if (!shm || atomic_load_explicit(&shm->nsubs, memory_order_acquire) == 0)
        return;
    if ((fd = send_fd(env)) < 0)
        return;
    srm__ds_le16(d, DGRAM_MAGIC);
    d[2] = 1;
    d[3] = (uint8_t)kind;
    srm__ds_le32(d + 4, part);
    srm__ds_le64(d + 8, seq);
    for (unsigned i = 0; i < SRM_DS_SUBSCRIBERS_MAX; i++) {
        uint64_t w = atomic_load(&shm->subs[i].word);
        struct sockaddr_un a;
        socklen_t alen;

        if ((uint32_t)w != SUB_LIVE)
            continue;
        alen = sub_addr(env, i, (uint32_t)(w >> 32), &a);
        for (int attempt = 0; attempt < 2; attempt++) {
            if (sendto(fd, d, sizeof(d), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a,
                       alen) == (ssize_t)sizeof(d))
                break;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                /* Full: mark the loss, then try once more so that a subscriber that drained
                 * meanwhile is woken and sees the mark. */
                atomic_store(&shm->subs[i].overflow, 1);
                continue;
            }
            if (errno == ECONNREFUSED || errno == ENOENT)
                free_slot(shm, i, w); /* its process is gone */
            break;
        }
    }
}

/* ---- subscribers ---- */

struct srm_ds_sub {
    struct srm_ds_env *env;
    unsigned slot;
    uint64_t word;
    int fd;
};

static bool pid_dead(uint32_t pid)
{
    return pid != 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int srm_ds_sub_open(struct srm_ds_env *env, struct srm_ds_sub **ret_sub)
{
    struct ds_shm *shm;
    struct srm_ds_sub *sub;
    uint32_t nonce;
    int rc;

    if (!env || !ret_sub)
        return -EINVAL;
    if (!(shm = env->shm))
        return -ENOTSUP;
    sub = calloc(1, sizeof(*sub));
    if (!sub)
        return -ENOMEM;
    sub->env = env;
    sub->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sub->fd < 0) {
        rc = -errno;
        free(sub);
        return rc;
    }
    nonce = (uint32_t)srm__ds_random64();
    atomic_fetch_add(&shm->nsubs, 1);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < SRM_DS_SUBSCRIBERS_MAX; i++) {
            uint64_t w = atomic_load(&shm->subs[i].word);
            uint64_t claimed = (uint64_t)nonce << 32 | SUB_CLAIMED;

            /* Second pass: take over slots of dead processes. */
            if (w != 0 && !(pass == 1 && pid_dead(atomic_load(&shm->subs[i].pid))))
                continue;
            if (!atomic_compare_exchange_strong(&shm->subs[i].word, &w, claimed))
                continue;
            if (w != 0)
                atomic_fetch_sub(&shm->nsubs, 1); /* the dead one's count */
            atomic_store(&shm->subs[i].pid, (uint32_t)getpid());
            atomic_store(&shm->subs[i].overflow, 0);
            {
                struct sockaddr_un a;
                socklen_t alen = sub_addr(env, i, nonce, &a);

                if (bind(sub->fd, (struct sockaddr *)&a, alen) < 0) {
                    rc = -errno;
                    atomic_store(&shm->subs[i].word, 0);
                    atomic_fetch_sub(&shm->nsubs, 1);
                    close(sub->fd);
                    free(sub);
                    return rc;
                }
            }
            sub->slot = i;
            sub->word = (uint64_t)nonce << 32 | SUB_LIVE;
            atomic_store(&shm->subs[i].word, sub->word);
            *ret_sub = sub;
            return 0;
        }
    }
    atomic_fetch_sub(&shm->nsubs, 1);
    close(sub->fd);
    free(sub);
    return -ENOSPC;
}

int srm_ds_sub_fd(struct srm_ds_sub *sub)
{
    return sub ? sub->fd : -EINVAL;
}

int srm_ds_sub_read(struct srm_ds_sub *sub, struct srm_ds_event *evs, size_t cap, size_t *ret_n)
{
    struct ds_shm *shm;
    size_t n = 0;

    if (!sub || !ret_n || (cap && !evs))
        return -EINVAL;
    shm = sub->env->shm;
    if (cap == 0) {
        *ret_n = 0;
        return 0;
    }
    /* A slot freed by a sender that wrongly thought us dead is taken back. */
    if (atomic_load(&shm->subs[sub->slot].word) != sub->word) {
        uint64_t z = 0;

        if (atomic_compare_exchange_strong(&shm->subs[sub->slot].word, &z, sub->word))
            atomic_fetch_add(&shm->nsubs, 1);
    }
    while (n < cap) {
        uint8_t d[DGRAM_LEN + 1];
        ssize_t r = recv(sub->fd, d, sizeof(d), MSG_DONTWAIT);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            /* The queue is empty: now the loss mark. A sender marks, then sends once more;
             * a mark set after this exchange is followed by that datagram (or by a full,
             * readable queue), so it is seen at the next read. */
            if (atomic_exchange(&shm->subs[sub->slot].overflow, 0)) {
                evs[n].kind = SRM_DS_EV_OVERFLOW;
                evs[n].part = 0;
                evs[n].seq = 0;
                n++;
            }
            break;
        }
        if (r != DGRAM_LEN || srm__ds_get_le16(d) != DGRAM_MAGIC || d[2] != 1 || d[3] < 1 ||
            d[3] > SRM_DS_EV_OVERFLOW)
            continue; /* not ours */
        evs[n].kind = (enum srm_ds_event_kind)d[3];
        evs[n].part = srm__ds_get_le32(d + 4);
        evs[n].seq = srm__ds_get_le64(d + 8);
        n++;
    }
    *ret_n = n;
    return 0;
}

void srm_ds_sub_close(struct srm_ds_sub *sub)
{
    if (!sub)
        return;
    free_slot(sub->env->shm, sub->slot, sub->word);
    close(sub->fd);
    free(sub);
}

/* ---- sync replication positions ---- */

static struct shm_part *part_slot(struct ds_shm *shm, uint32_t part, bool create)
{
    unsigned h = (part * 2654435761u) % SRM_DS_SYNC_PARTS_MAX;

    for (unsigned i = 0; i < SRM_DS_SYNC_PARTS_MAX; i++) {
        struct shm_part *s = &shm->parts[(h + i) % SRM_DS_SYNC_PARTS_MAX];
        uint32_t cur = atomic_load(&s->part);

        if (cur == part)
            return s;
        if (cur == 0) {
            if (!create)
                return NULL;
            if (atomic_compare_exchange_strong(&s->part, &cur, part) || cur == part)
                return s;
        }
    }
    return NULL;
}

static void wake(struct srm_ds_env *env)
{
    atomic_fetch_add(&env->shm->futex, 1);
    if (atomic_load(&env->shm->waiters))
        syscall(SYS_futex, &env->shm->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int srm_ds_sync_ack(struct srm_ds_env *env, uint32_t part, uint64_t seq)
{
    struct shm_part *s;
    uint64_t cur;

    if (!env || part == 0)
        return -EINVAL;
    if (!env->shm)
        return -ENOTSUP;
    if (!(s = part_slot(env->shm, part, true)))
        return -ENOSPC;
    cur = atomic_load(&s->acked);
    while (cur < seq && !atomic_compare_exchange_weak(&s->acked, &cur, seq))
        ;
    wake(env);
    srm__ds_notify(env, SRM_DS_EV_ACK, part, atomic_load(&s->acked));
    return 0;
}

int srm_ds_sync_reset(struct srm_ds_env *env, uint32_t part, uint64_t seq)
{
    struct shm_part *s;

    if (!env || part == 0)
        return -EINVAL;
    if (!env->shm)
        return -ENOTSUP;
    if (!(s = part_slot(env->shm, part, true)))
        return -ENOSPC;
    atomic_store(&s->acked, seq);
    wake(env);
    srm__ds_notify(env, SRM_DS_EV_ACK, part, seq);
    return 0;
}

int srm_ds_sync_set_degraded(struct srm_ds_env *env, uint32_t part, bool degraded)
{
    struct shm_part *s;

    if (!env || part == 0)
        return -EINVAL;
    if (!env->shm)
        return -ENOTSUP;
    if (!(s = part_slot(env->shm, part, true)))
        return -ENOSPC;
    atomic_store(&s->degraded, degraded ? 1 : 0);
    wake(env);
    srm__ds_notify(env, SRM_DS_EV_DEGRADED, part, degraded ? 1 : 0);
    return 0;
}

int srm_ds_sync_get(struct srm_ds_env *env, uint32_t part, uint64_t *ret_seq, bool *ret_degraded)
{
    struct shm_part *s;

    if (!env || part == 0)
        return -EINVAL;
    if (!env->shm)
        return -ENOTSUP;
    s = part_slot(env->shm, part, false);
    if (ret_seq)
        *ret_seq = s ? atomic_load(&s->acked) : 0;
    if (ret_degraded)
        *ret_degraded = s ? atomic_load(&s->degraded) != 0 : false;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int srm_ds_sync_wait(struct srm_ds_env *env, uint32_t part, uint64_t seq, int timeout_ms)
{
    struct ds_shm *shm;
    int64_t deadline;

    if (!env || part == 0)
        return -EINVAL;
    if (!(shm = env->shm))
        return -ENOTSUP;
    deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
    for (;;) {
        uint32_t f = atomic_load(&shm->futex);
        struct shm_part *s = part_slot(shm, part, false);
        struct timespec ts, *tsp = NULL;
        int64_t left;

        if (s && atomic_load(&s->acked) >= seq)
            return 0;
        if (s && atomic_load(&s->degraded))
            return SRM_ESYNC_DEGRADED;
        if (timeout_ms >= 0) {
            left = deadline - mono_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            ts.tv_sec = left / 1000;
            ts.tv_nsec = (left % 1000) * 1000000;
            tsp = &ts;
        }
        atomic_fetch_add(&shm->waiters, 1);
        syscall(SYS_futex, &shm->futex, FUTEX_WAIT, f, tsp, NULL, 0);
        atomic_fetch_sub(&shm->waiters, 1);
    }
}
