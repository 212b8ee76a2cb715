/*
 * The records that repl-node's writers write, shared with the benchmark's raw LMDB ceiling
 * (bench/replication/lmdb_raw.c) so that both sides store byte-for-byte the same records in
 * the same order.
 *
 * Write number i (0-based) of a run of n writes names user PREFIX + wl_index(i, n, random):
 * with random order, wl_index is a permutation of 0..n-1 (a fixed bijection of the next
 * power of two, cycle-walked into range), so every write inserts a new key and keys arrive
 * in an order unrelated to their sort order, like users of a real population; otherwise it
 * is i. n = 0 means "endless": the permutation is taken over 2^32.
 */
#ifndef SRM_REPL_WORKLOAD_H
#define SRM_REPL_WORKLOAD_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "srm_ds.h"

#define WL_RESOURCE "r"

/* A bijection of 0..mask (mask = 2^m - 1): multiplications by odd constants, additions
 * and right xor-shifts are each invertible modulo 2^m. */
static inline uint64_t wl_mix(uint64_t x, uint64_t mask, unsigned shift)
{
    x = (x * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) & mask;
    x ^= x >> shift;
    x = (x * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull) & mask;
    x ^= x >> shift;
    return x;
}

static inline uint64_t wl_index(uint64_t i, uint64_t n, bool random)
{
    if (!random)
        return i;
    unsigned m = 2;
    while (m < 32 && (n == 0 || (1ull << m) < n))
        m++;
    uint64_t mask = (1ull << m) - 1, x = i & mask;
    do
        x = wl_mix(x, mask, (m + 1) / 2);
    while (n && x >= n);
    return x;
}

/* PREFIX followed by idx in decimal (what snprintf "%s%llu" gives, at a fraction of its
 * cost: the writer's own work should not weigh on what the benchmark measures). */
static inline void wl_user(char *buf, size_t cap, const char *prefix, uint64_t idx)
{
    char digits[20];
    size_t nd = 0, np = strlen(prefix);
    do
        digits[nd++] = (char)('0' + idx % 10);
    while ((idx /= 10) != 0);
    if (np + nd + 1 > cap) {
        if (cap)
            buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, np);
    for (size_t k = 0; k < nd; k++)
        buf[np + k] = digits[nd - 1 - k];
    buf[np + nd] = '\0';
}

/* The presence record of a user; status is the caller's (value size). */
static inline struct srm_ds_presence wl_presence(const char *user, const char *status)
{
    struct srm_ds_presence p = {.user = user,
                                .resource = WL_RESOURCE,
                                .availability = SRM_DS_AVAIL_AVAILABLE,
                                .priority = 1,
                                .status = status,
                                .updated_ms = 1};
    return p;
}

#endif
