/*
 * A fake Corosync for the heartbeat unit tests, linked with -Wl,--wrap=cpg_...,quorum_...
 * (tests/heartbeat/CMakeLists.txt). It keeps one CPG handle and one quorum handle, queues
 * CPG events (deliveries, configuration changes) and quorum notifications that the next
 * cpg_dispatch / quorum_dispatch runs through the library's real callbacks, loops our own
 * multicasts back as CPG does, and lets a test script the answers: corosync down, flow
 * control, dispatch failures, the quorum a synchronous query returns.
 */
#ifndef FAKE_COROSYNC_H
#define FAKE_COROSYNC_H

#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_MSG_MAX 8192

struct fake_cs {
    /* scripted answers */
    bool up;                   /* initialize succeeds (else CS_ERR_LIBRARY) */
    uint32_t local_nodeid;     /* cpg_local_get */
    uint32_t local_pid;        /* the pid our own messages come back with */
    int quorate;               /* quorum_getquorate */
    int join_try_again;        /* the next N cpg_join answer CS_ERR_TRY_AGAIN */
    int mcast_try_again;       /* the next N cpg_mcast_joined answer CS_ERR_TRY_AGAIN */
    cs_error_t mcast_error;    /* when not CS_OK, every cpg_mcast_joined answers it */
    cs_error_t dispatch_error; /* when not CS_OK, every cpg_dispatch answers it */
    bool loopback;             /* deliver our multicasts back to us (default true) */
    uint32_t token_ms;         /* cmap runtime.config.totem.token; 0: cmap unavailable */
    uint32_t consensus_ms;     /* cmap runtime.config.totem.consensus */

    /* observations */
    int inits, finalizes, joins, leaves, dispatches, quorum_dispatches, quorum_queries;
    bool cpg_open, quorum_open;
    int cpg_fd, quorum_fd;
    size_t n_sent;
    uint8_t last_sent[FAKE_MSG_MAX];
    size_t last_sent_len;
};

extern struct fake_cs fake;

/* Resets everything (closes the fake's descriptors) and the shared event log. */
void fake_reset(void);

/* Queue CPG events for the next cpg_dispatch, and a quorum notification for quorum_dispatch. */
void fake_queue_deliver(uint32_t nodeid, uint32_t pid, const void *msg, size_t len);
void fake_queue_left(uint32_t nodeid, uint32_t pid, uint32_t reason);
void fake_queue_joined(uint32_t nodeid, uint32_t pid);
void fake_queue_quorum(int quorate);
/* A quorum notification carrying a membership view of n node ids. */
void fake_queue_view(int quorate, const uint32_t *nodes, size_t n);
/* Drops queued CPG events (e.g. our own looped-back keepalives). */
void fake_drop_queue(void);

/* A shared log of what happened, in order: the tests' callbacks and the fake append to it. */
extern char fake_log[4096];
void fake_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fake_log_clear(void);

#endif
