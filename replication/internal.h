/*
 * Internals of the replication module, shared by its files and its unit tests:
 *   - the wire format (wire.c): frames and message codecs;
 *   - the log store interface the protocol core uses (store.c binds it to the datastore;
 *     unit tests bind it to memory);
 *   - the transport table (tls.c: TLS over libuv TCP; unit tests: an in-memory pipe);
 *   - the endpoint and partition structures of the protocol core (repl.c).
 */
#ifndef SRM_REPL_INTERNAL_H
#define SRM_REPL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "srm_repl.h"

/* ------------------------------------------------------------------------------------ */
/* Wire format (replication/README.md)                                                   */

#define SRM__REPL_MAGIC         0x524d5253u /* "SRMR" little-endian */
#define SRM__REPL_HDR           12          /* u32 len, u8 type, u8 flags, u16 reserved, u32 crc */
#define SRM__REPL_FRAME_MAX     (2u << 20)  /* largest payload accepted */
#define SRM__REPL_BATCH_MAX     (1u << 20)  /* largest batch_bytes */
#define SRM__REPL_PARTREC_SIZE  29
#define SRM__REPL_ENTRIES_HEAD  56
#define SRM__REPL_ACK_SIZE      28
#define SRM__REPL_SNAP_HEAD     32
#define SRM__REPL_SNAPINFO_SIZE 112
#define SRM__REPL_ERRMSG_MAX    256

#define SRM__REPL_MSG_MAP(X)                                                                       \
    X(HELLO, 1, "HELLO")                                                                           \
    X(PART, 2, "PART")                                                                             \
    X(ENTRIES, 3, "ENTRIES")                                                                       \
    X(ACK, 4, "ACK")                                                                               \
    X(SNAP_BEGIN, 5, "SNAP_BEGIN")                                                                 \
    X(SNAP_CHUNK, 6, "SNAP_CHUNK")                                                                 \
    X(SNAP_END, 7, "SNAP_END")                                                                     \
    X(SNAP_ACK, 8, "SNAP_ACK")                                                                     \
    X(PING, 9, "PING")                                                                             \
    X(PONG, 10, "PONG")                                                                            \
    X(ERROR, 11, "ERROR")

enum {
#define SRM__REPL_MSG_ENUM(name, val, str) SRM__REPL_MSG_##name = val,
    SRM__REPL_MSG_MAP(SRM__REPL_MSG_ENUM)
#undef SRM__REPL_MSG_ENUM
        SRM__REPL_MSG_FIRST = SRM__REPL_MSG_HELLO,
    SRM__REPL_MSG_LAST = SRM__REPL_MSG_ERROR,
};

struct srm__repl_frame {
    uint8_t type;
    const uint8_t *payload; /* borrowed from the decoded buffer */
    size_t len;
};

/* Per-partition record of HELLO and PART. Source: its log's generation and last sequence;
 * sink: the generation and sequence of the peer's log it applied up to (0, 0: nothing). */
struct srm__repl_partrec {
    uint32_t part;
    uint8_t role; /* enum srm_repl_role */
    uint64_t epoch;
    uint64_t gen;
    uint64_t seq;
};

struct srm__repl_hello {
    uint16_t version_min, version_max;
    char cluster[SRM_REPL_NAME_MAX + 1];
    uint32_t node_id;  /* sender */
    uint32_t peer_id;  /* the node the sender expects to talk to */
    uint64_t instance; /* random per endpoint: tells a restart from a reconnect */
    unsigned nparts;
    struct srm__repl_partrec parts[SRM_REPL_PARTS_MAX];
};

/* A batch covering the sender's log positions first_seq..through_seq of generation gen:
 * count entries (the others were skipped: the receiver's own writes coming back). */
struct srm__repl_entries {
    uint32_t part;
    uint64_t epoch; /* sender's ownership epoch */
    uint64_t gen;
    uint64_t first_seq, through_seq;
    uint64_t head_seq;   /* sender's log head when sent */
    uint32_t count;      /* <= through - first + 1; 0 with no data */
    const uint8_t *data; /* count encoded entries (srm_ds_entry_encode); borrowed */
    size_t len;
};

struct srm__repl_ack {
    uint32_t part;
    uint64_t gen;
    uint64_t seq; /* applied up to */
    uint64_t epoch;
};

/* What a snapshot install needs before the first chunk (SNAP_BEGIN carries it). */
struct srm__repl_snapinfo {
    uint32_t source; /* node that made the snapshot */
    uint64_t gen;    /* its log generation at the snapshot point */
    uint64_t hlc;
    uint32_t owner_node;
    uint64_t owner_epoch;
    uint64_t digest[3][3]; /* per datastore: lo, hi, count */
    uint64_t entries;
};

/* SNAP_BEGIN (index 0, total 0, data = encoded snapinfo), SNAP_CHUNK (index, data),
 * SNAP_END (index = number of chunks, total = bytes), SNAP_ACK (index = chunks received). */
struct srm__repl_snap {
    uint32_t part;
    uint64_t epoch;
    uint64_t seq; /* the log position the snapshot stands for */
    uint32_t index;
    uint64_t total;
    const uint8_t *data;
    size_t len;
};

/* CRC32C of data, continuing crc (0 to start). The hardware instruction when the CPU has
 * one (srm__repl_crc32c_hw() != 0), else tables (srm__repl_crc32c_sw); same results. */
uint32_t srm__repl_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t srm__repl_crc32c_sw(uint32_t crc, const void *data, size_t len);
int srm__repl_crc32c_hw(void);
const char *srm__repl_msg_name(unsigned type);
int srm__repl_name_valid(const char *s, size_t len);

/* Writes the 12-byte header of a frame whose payload is payload[0..len). */
void srm__repl_frame_header(uint8_t hdr[SRM__REPL_HDR], uint8_t type, const void *payload,
                            size_t len);
/*
 * Decodes one frame at the start of buf[0..len). Returns the frame's total size (> 0) and
 * fills *ret_frame, 0 if more bytes are needed, SRM_EBADFRAME (length above max_payload,
 * unknown type, nonzero flags) or SRM_EBADCHECKSUM.
 */
int srm__repl_frame_decode(const void *buf, size_t len, size_t max_payload,
                           struct srm__repl_frame *ret_frame);

size_t srm__repl_hello_size(const struct srm__repl_hello *h);
size_t srm__repl_hello_encode(const struct srm__repl_hello *h, uint8_t *p);
/* SRM_EHANDSHAKE on any malformed field. */
int srm__repl_hello_decode(const void *buf, size_t len, struct srm__repl_hello *ret);
size_t srm__repl_part_encode(const struct srm__repl_partrec *pr, uint8_t *p);
int srm__repl_part_decode(const void *buf, size_t len, struct srm__repl_partrec *ret);
/* Writes the fixed head of ENTRIES; the batch bytes follow it. */
size_t srm__repl_entries_encode_head(const struct srm__repl_entries *e, uint8_t *p);
int srm__repl_entries_decode(const void *buf, size_t len, struct srm__repl_entries *ret);
size_t srm__repl_ack_encode(const struct srm__repl_ack *a, uint8_t *p);
int srm__repl_ack_decode(const void *buf, size_t len, struct srm__repl_ack *ret);
size_t srm__repl_snap_encode_head(const struct srm__repl_snap *s, uint8_t *p);
int srm__repl_snap_decode(uint8_t type, const void *buf, size_t len, struct srm__repl_snap *ret);
size_t srm__repl_snapinfo_encode(const struct srm__repl_snapinfo *i, uint8_t *p);
int srm__repl_snapinfo_decode(const void *buf, size_t len, struct srm__repl_snapinfo *ret);
size_t srm__repl_ping_encode(uint64_t token, uint8_t *p);
int srm__repl_ping_decode(const void *buf, size_t len, uint64_t *ret_token);
/* ERROR: u32 code (positive), u16 length, printable ASCII message (<= 256 bytes). */
size_t srm__repl_error_encode(int err, const char *msg, uint8_t *p);
int srm__repl_error_decode(const void *buf, size_t len, int *ret_err, char *msg, size_t msgcap);

/* ------------------------------------------------------------------------------------ */
/* Log store interface                                                                   */

/*
 * What the protocol core needs from a datastore. ctx is the store's. All calls are made on
 * the loop thread and must not block for long (bounded batches).
 */
struct srm__repl_store_ops {
    /* part's local log: generation and last sequence (0, 0 if the partition is unknown). */
    int (*log_head)(void *ctx, uint32_t part, uint64_t *ret_gen, uint64_t *ret_seq);
    /* How far part was applied from source's log: generation and sequence (0, 0: nothing). */
    int (*applied)(void *ctx, uint32_t part, uint32_t source, uint64_t *ret_gen, uint64_t *ret_seq);
    /* Reads entries from position from (>= 1), skipping those of origin exclude, encoding at
     * most cap bytes into buf (at least one entry if any; cap must hold the largest).
     * *ret_next: the position to read next; *ret_gen: the log's generation.
     * SRM_EHORIZON if from is not in the log any more. */
    int (*log_read)(void *ctx, uint32_t part, uint64_t from, uint32_t exclude, void *buf,
                    size_t cap, size_t *ret_len, uint32_t *ret_count, uint64_t *ret_next,
                    uint64_t *ret_gen);
    /* Applies count encoded entries of source's log (generation gen) idempotently in one
     * transaction and sets the applied position to at least through. Validates everything
     * before changing anything. */
    int (*log_apply)(void *ctx, uint32_t part, uint32_t source, uint64_t gen, const void *buf,
                     size_t len, uint32_t count, uint64_t through);
    /* Trims part's log up to and including seq. */
    int (*log_trim)(void *ctx, uint32_t part, uint64_t seq);
    /* Opens a point-in-time snapshot of part; *ret_seq = the log position it stands for. */
    int (*snap_open)(void *ctx, uint32_t part, void **ret_snap, uint64_t *ret_seq,
                     struct srm__repl_snapinfo *ret_info);
    /* Next chunk of at most cap bytes into buf; *ret_len 0 at the end. */
    int (*snap_next)(void *snap, void *buf, size_t cap, size_t *ret_len);
    void (*snap_close)(void *snap);
    int (*install_begin)(void *ctx, uint32_t part, uint64_t seq,
                         const struct srm__repl_snapinfo *info, void **ret_inst);
    int (*install_chunk)(void *inst, const void *buf, size_t len);
    /* Installs atomically and frees inst (also on failure). */
    int (*install_commit)(void *inst);
    void (*install_abort)(void *inst);
    /* Durability: what sync writers wait on. reset: may lower the position (new log). */
    int (*set_replicated)(void *ctx, uint32_t part, uint64_t seq, bool reset);
    int (*set_degraded)(void *ctx, uint32_t part, bool degraded);
    /* Change notifications: a pollable fd (-1 if none); drain calls cb for each partition
     * whose log advanced (part 0: any may have). */
    int (*notify_fd)(void *ctx);
    void (*notify_drain)(void *ctx, void (*cb)(void *arg, uint32_t part, uint64_t seq), void *arg);
    /* Frees ctx (the endpoint owns it). */
    void (*close)(void *ctx);
};

/* The binding of the store interface to datastore/srm_ds.h (store.c). */
extern const struct srm__repl_store_ops srm__repl_ds_ops;
struct srm_ds_env;
int srm__repl_ds_store_new(struct srm_ds_env *env, uint32_t node_id, void **ret_ctx);

/* ------------------------------------------------------------------------------------ */
/* Transport table                                                                       */

/*
 * A link carries the plaintext byte stream of frames. The core appends frames to r->out and
 * calls flush; the transport reports input with srm__repl_input(), loss with
 * srm__repl_link_down(), and write completion with srm__repl_pump().
 */
struct srm__repl_transport {
    /* Takes r->out's bytes (consuming them). < 0: the link failed. */
    int (*flush)(struct srm_repl *r, void *link);
    /* Bytes accepted by flush and not yet written to the network. */
    size_t (*backlog)(struct srm_repl *r, void *link);
    /* Closes the link; the transport later calls nothing more for it. */
    void (*close)(struct srm_repl *r, void *link);
};

/* ------------------------------------------------------------------------------------ */
/* Endpoint                                                                              */

struct srm__repl_buf {
    uint8_t *data;
    size_t off; /* consumed prefix */
    size_t len; /* end of valid bytes */
    size_t cap;
};

struct srm__repl_inflight {
    uint64_t last_seq;
    uint32_t bytes;
};

struct srm__repl_mark {
    uint64_t seq;
    uint64_t ms;
};

#define SRM__REPL_MARKS 64

enum { SRM__REPL_SNAP_NONE, SRM__REPL_SNAP_SENDING, SRM__REPL_SNAP_WAITING };

struct srm__repl_part {
    uint32_t part;
    uint8_t role;
    uint64_t epoch;
    uint64_t gen;       /* source: local log generation; sink: generation applied from */
    uint64_t head;      /* source: local log head; sink: last applied */
    uint64_t peer_head; /* sink: head the peer announced (in gen) */

    /* what the peer said about this partition on the current link */
    bool peer_known;
    uint8_t peer_role;
    uint64_t peer_epoch;
    uint64_t peer_gen;
    uint64_t peer_seq;

    /* source stream state, per link */
    bool streaming;
    uint64_t sent, acked;
    uint64_t inflight_bytes;
    struct srm__repl_inflight *ring; /* unacknowledged batches, oldest first */
    size_t ring_cap, ring_head, ring_len;
    uint64_t trimmed; /* highest sequence trimmed */
    uint64_t ack_ms;  /* when the last acknowledgement arrived (or streaming began) */

    /* source snapshot */
    int snap_state;
    void *snap;
    uint64_t snap_seq;
    struct srm__repl_snapinfo snap_info;
    uint32_t snap_sent, snap_acked;
    uint64_t snap_bytes;

    /* sink: ENTRIES received and not applied yet. Consecutive batches of one generation
     * are applied together, in one transaction, when the input read in one loop iteration
     * has been taken in (srm__repl_input_flush), and acknowledged with one ACK. */
    struct srm__repl_buf q; /* their encoded entries, back to back */
    uint32_t q_count;       /* entries */
    unsigned q_frames;      /* batches (0: nothing queued) */
    uint64_t q_first, q_through, q_gen, q_epoch;

    /* sink snapshot install */
    void *inst;
    uint64_t inst_seq, inst_epoch, inst_gen;
    uint32_t inst_chunks;
    uint64_t inst_bytes;
    bool ack_pending;
    uint32_t snap_ack_pending; /* chunks received, to acknowledge; 0 none */

    /* caught-up and durability */
    bool caught_up_told;
    bool degraded;
    uint64_t absent_since; /* 0: the peer is receiving */
    struct srm__repl_mark marks[SRM__REPL_MARKS];
    unsigned marks_head, marks_len;

    struct srm_repl_part_stats st;
};

enum { SRM__REPL_LINK_DOWN, SRM__REPL_LINK_HELLO, SRM__REPL_LINK_READY };

struct srm__repl_conn; /* tls.c */

struct srm_repl {
    uv_loop_t *loop;
    struct srm_repl_config cfg; /* strings point into the copies below */
    char *s_cluster, *s_peer_name, *s_ca, *s_cert, *s_key, *s_listen, *s_peer_host;

    const struct srm__repl_store_ops *store;
    void *store_ctx;
    uint64_t (*now_ms)(struct srm_repl *r); /* clock seam */
    uint64_t instance;

    /* link */
    int link;
    const struct srm__repl_transport *tp;
    void *tp_link;
    struct srm__repl_buf out;
    struct srm__repl_buf in;
    uint64_t last_rx_ms, last_tx_ms;
    uint64_t peer_instance;
    bool closing_link; /* flush the ERROR then close */

    struct srm__repl_part *parts;
    unsigned nparts;
    unsigned rr; /* round-robin start for pumping */
    /* Input is taken in by srm__repl_input and finished (queued batches applied, ACKs and
     * replies sent) by srm__repl_input_flush, which the transport calls once per loop
     * iteration; when false (unit tests, fuzzing), srm__repl_input finishes at once. */
    bool defer_flush;
    bool input_pending;

    struct srm_repl_stats st;
    bool in_callback;

    /* TLS over TCP (tls.c) */
    void *ssl_ctx;                /* SSL_CTX */
    struct srm__repl_conn *conns; /* every open connection, attached or not */
    uv_tcp_t listener;
    uv_timer_t timer;
    uv_poll_t notify_poll;
    uv_check_t input_check; /* runs srm__repl_input_flush after the loop's I/O callbacks */
    bool listening, timer_on, poll_on, check_on, started, closing;
    unsigned open_handles;
    uint64_t redial_at;
    uint32_t redial_delay;
    bool dialing;
    srm_repl_close_cb *close_cb;
    void *close_data;
};

/* repl.c: the protocol core */
int srm__repl_new_with_store(uv_loop_t *loop, const struct srm_repl_config *cfg,
                             const struct srm__repl_store_ops *store, void *store_ctx,
                             struct srm_repl **ret_repl);
/* Frees a core that never started (unit tests; srm_repl_close frees started ones). */
void srm__repl_free(struct srm_repl *r);
/* A verified link is up: send HELLO. */
void srm__repl_link_up(struct srm_repl *r, const struct srm__repl_transport *tp, void *link);
/* The link is gone (err: why, 0 for an orderly close). */
void srm__repl_link_down(struct srm_repl *r, int err);
/* Bytes arrived from the link. < 0: fatal; the core already closed the link. With
 * defer_flush, batches of entries are queued and the work ends with srm__repl_input_flush. */
int srm__repl_input(struct srm_repl *r, const void *data, size_t len);
/* Applies the queued batches (one transaction per partition), sends the ACKs and replies,
 * and pumps the streams. */
void srm__repl_input_flush(struct srm_repl *r);
/* Produce more output if the window allows, then flush. */
void srm__repl_pump(struct srm_repl *r);
/* Timers: keepalive, idle timeout, sync degradation, trims. */
void srm__repl_tick(struct srm_repl *r);
/* Raise an event to the daemon. */
void srm__repl_emit(struct srm_repl *r, enum srm_repl_event_type type, uint32_t part, int err,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void srm__repl_notified(struct srm_repl *r);

/* tls.c: TLS over libuv TCP */
int srm__repl_tls_init(struct srm_repl *r);
void srm__repl_tls_free(struct srm_repl *r);
int srm__repl_net_start(struct srm_repl *r);
void srm__repl_net_dial(struct srm_repl *r);
/* Close every connection and handle; calls srm__repl_handle_closed for each. */
void srm__repl_net_close(struct srm_repl *r);
void srm__repl_handle_closed(struct srm_repl *r);

#endif
