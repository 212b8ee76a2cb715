/*
 * Internals of the heartbeat module, shared by its files:
 *   hb_envelope.c  the wire envelope (pure codec; fuzzed)
 *   hb.c           the public API: peer tracking, timers, sending, reconnection
 *   hb_corosync.c  the Corosync adapter: CPG and quorum handles, error conversion
 */
#ifndef SRM_HB_INTERNAL_H
#define SRM_HB_INTERNAL_H

#include "srm_hb.h"

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

/*
 * Envelope, version 1 (integers big-endian):
 *   0  4  magic "SRMH"
 *   4  1  version (SRM_HB_PROTOCOL_VERSION)
 *   5  1  flags (SRM_HB_FLAG_*; unknown bits are rejected)
 *   6  1  group name length G (1..SRM_HB_GROUP_MAX)
 *   7  1  reserved, 0
 *   8  4  sender node id (must equal the CPG sender)
 *  12  4  payload length P (<= SRM_HB_PAYLOAD_MAX)
 *  16  8  incarnation (!= 0)
 *  24  8  sequence number (!= 0)
 *  32  G  group name (printable ASCII, no space)
 *  32+G P payload
 * The message is exactly 32 + G + P bytes.
 */
#define SRM__HB_MAGIC        "SRMH"
#define SRM__HB_HEADER_LEN   32
#define SRM__HB_FLAGS_KNOWN  SRM_HB_FLAG_RESTARTING
#define SRM__HB_ENVELOPE_MAX (SRM__HB_HEADER_LEN + SRM_HB_GROUP_MAX + SRM_HB_PAYLOAD_MAX)

struct srm__hb_envelope {
    uint8_t version;
    uint8_t flags;
    uint32_t sender;
    uint64_t incarnation;
    uint64_t seq;
    const char *group; /* not NUL-terminated; borrowed from the decoded buffer */
    size_t group_len;
    const void *payload; /* borrowed from the decoded buffer; NULL when payload_len is 0 */
    size_t payload_len;
};

/* Whether name[0..len) is a valid group name (1..SRM_HB_GROUP_MAX bytes, 0x21..0x7e). */
bool srm__hb_group_valid(const char *name, size_t len);

/*
 * Encodes env (version is forced to SRM_HB_PROTOCOL_VERSION) into buf. Returns 0 and sets
 * *ret_len, or -EINVAL (bad group, zero incarnation or sequence, unknown flags),
 * SRM_ETOOBIG (payload too long) or -ENOBUFS (cap too small).
 */
int srm__hb_envelope_encode(const struct srm__hb_envelope *env, void *buf, size_t cap,
                            size_t *ret_len);

/*
 * Decodes and validates buf[0..len). When group is not NULL the envelope must belong to it.
 * Returns 0 and fills *ret_env (pointers into buf), or SRM_EBADENVELOPE, SRM_EBADVERSION,
 * SRM_ETOOBIG or SRM_EFOREIGN; *ret_env is untouched on failure.
 */
int srm__hb_envelope_decode(const void *buf, size_t len, const char *group, size_t group_len,
                            struct srm__hb_envelope *ret_env);

/* Bounds of the internal loops (no clock inside: they count, not time). */
#define SRM__HB_FLOW_RETRIES     8  /* dispatch + resend rounds per tick under flow control */
#define SRM__HB_RETRY_MS         50 /* next tick after a send or join held back */
#define SRM__HB_ANNOUNCE_WAITS   20 /* polls of SRM__HB_ANNOUNCE_POLL_MS for the announcement */
#define SRM__HB_ANNOUNCE_POLL_MS 50
#define SRM__HB_RETIRED          8 /* superseded peer incarnations remembered */

struct srm_hb {
    /* options */
    char group[SRM_HB_GROUP_MAX + 1];
    size_t group_len;
    char node_name[64];
    uint32_t node_id;
    uint32_t opt_node_id; /* as given: 0 = learn from Corosync */
    uint32_t peer_id;
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t init_timeout_ms;
    /* Corosync's token + consensus timeouts (read at connect; 0: unknown): how long a ring
     * change can hold every message back. The timeouts in force are never shorter than it
     * plus a keepalive interval and a margin (srm__hb_timeout, srm__hb_init_timeout). */
    uint32_t ring_change_ms;
    uint32_t reconnect_ms;
    uint64_t incarnation;
    struct srm_hb_callbacks cb;
    void *data;

    /* life cycle */
    bool started;
    bool leaving; /* restart announced: silent from now on */
    uint64_t now; /* the caller's clock at the current API call */
    uint64_t started_at;

    /* Corosync connection (hb_corosync.c) */
    bool connected;
    bool joined;
    cpg_handle_t cpg;
    quorum_handle_t quorum;
    int cpg_fd;
    int quorum_fd;
    uint64_t next_connect;
    uint64_t next_join;
    bool error_reported; /* error_cb ran for the current outage */
    bool dispatching;    /* inside cpg_dispatch/quorum_dispatch: no nested dispatch */
    int lost_err;        /* connection failure recorded, not yet acted on (handle_lost) */

    /* sending */
    uint8_t payload[SRM_HB_PAYLOAD_MAX];
    size_t payload_len;
    uint64_t seq; /* last sequence number sent */
    bool send_pending;
    uint64_t next_send;
    uint8_t flags;
    uint64_t announce_seq;
    bool announce_delivered;

    /* quorum */
    bool quorate;
    bool peer_in_view;    /* the peer's node is in the last membership view */
    uint64_t rejoined_at; /* the lost peer's node came back into the view (0: no) */

    /* peer */
    enum srm_hb_peer_state peer_state;
    uint64_t peer_inc;
    uint64_t retired[SRM__HB_RETIRED]; /* superseded incarnations: their messages are ignored */
    size_t retired_next;
    uint64_t peer_seq;
    uint32_t peer_pid;
    uint64_t last_heard;
    uint64_t missed_counted; /* misses already counted for the current silence */

    struct srm_hb_stats stats;
};

/* hb.c: events from the Corosync adapter. */
void srm__hb_on_deliver(struct srm_hb *hb, uint32_t nodeid, uint32_t pid, const void *msg,
                        size_t len);
void srm__hb_on_confchg(struct srm_hb *hb, const struct cpg_address *members, size_t n_members,
                        const struct cpg_address *left, size_t n_left,
                        const struct cpg_address *joined, size_t n_joined);
void srm__hb_on_quorum(struct srm_hb *hb, bool quorate);
uint32_t srm__hb_timeout(const struct srm_hb *hb);
uint32_t srm__hb_init_timeout(const struct srm_hb *hb);
void srm__hb_on_membership(struct srm_hb *hb, bool quorate, bool peer_in_view);

/*
 * hb_corosync.c. Every function converts Corosync codes: CS_ERR_TRY_AGAIN -> -EAGAIN;
 * CS_ERR_LIBRARY and CS_ERR_BAD_HANDLE -> SRM_EDISCONNECTED; CS_ERR_NO_MEMORY -> -ENOMEM;
 * anything else but CS_OK -> SRM_ECOROSYNC.
 */
int srm__hb_cs_error(cs_error_t err);
/* Opens the CPG and quorum handles, checks the local node id (SRM_ECONFIG), starts quorum
 * tracking, sets hb->cpg, hb->quorum, hb->cpg_fd, hb->quorum_fd and hb->node_id. Closes what
 * it opened on failure. Does not join. */
int srm__hb_cs_connect(struct srm_hb *hb);
/* Corosync's token + consensus timeouts from its runtime configuration (cmap), 0 if it
 * cannot be read. */
uint32_t srm__hb_cs_ring_change_ms(void);
/* Leaves the group if joined and finalizes both handles. */
void srm__hb_cs_disconnect(struct srm_hb *hb);
int srm__hb_cs_join(struct srm_hb *hb);
/* Dispatches everything pending on fd (CS_DISPATCH_ALL); events arrive in srm__hb_on_*. */
int srm__hb_cs_dispatch(struct srm_hb *hb, int fd);
int srm__hb_cs_mcast(struct srm_hb *hb, const void *msg, size_t len);
/* Synchronous quorum query. */
int srm__hb_cs_quorate(struct srm_hb *hb, bool *ret_quorate);
/* Waits up to timeout_ms for the CPG descriptor to become readable: 1 readable, 0 not. */
int srm__hb_cs_wait(struct srm_hb *hb, int timeout_ms);

#endif
