/*
 * What the files of ha/ipc share: the pure watchdog tracker and stall detector the server
 * uses (unit-tested with a fake clock), and the codec's text checks.
 */
#ifndef SRM_IPC_INTERNAL_H
#define SRM_IPC_INTERNAL_H

#include "srm_ipc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "SRMI" */
#define SRM__IPC_MAGIC "SRMI"

/*
 * Watchdog of one client. The client must ping at least every ping_ms; it is judged dead
 * when more than ping_ms x misses passed since its last ping (or since it was armed). A
 * change of parameters never brings the deadline closer than one full new window from the
 * change: the client may not have heard of it yet.
 */
struct srm__ipc_wd {
    uint64_t last_ms;  /* last ping (or arming) */
    uint64_t floor_ms; /* the deadline is never before this */
    uint32_t ping_ms;
    uint8_t misses;
};

void srm__ipc_wd_init(struct srm__ipc_wd *wd, uint64_t now_ms, uint32_t ping_ms, uint8_t misses);
void srm__ipc_wd_ping(struct srm__ipc_wd *wd, uint64_t now_ms);
void srm__ipc_wd_set(struct srm__ipc_wd *wd, uint64_t now_ms, uint32_t ping_ms, uint8_t misses);
/* The instant after which the client is dead. */
uint64_t srm__ipc_wd_deadline(const struct srm__ipc_wd *wd);
/* True when now_ms is past the deadline. */
bool srm__ipc_wd_expired(const struct srm__ipc_wd *wd, uint64_t now_ms);
/* Full pings missed at now_ms (0 while the client is on time). */
uint32_t srm__ipc_wd_missed(const struct srm__ipc_wd *wd, uint64_t now_ms);
/* After a stall of the observer: give the client a full window from now. */
void srm__ipc_wd_grace(struct srm__ipc_wd *wd, uint64_t now_ms);

/*
 * Stall detection: a timer due at due_ms ran at now_ms. Returns how late it ran when that
 * exceeds threshold_ms (the loop was stopped or starved), else 0.
 */
uint64_t srm__ipc_stall(uint64_t due_ms, uint64_t now_ms, uint64_t threshold_ms);

#endif
