/*
 * srm_ha_db: the cluster configuration in PostgreSQL.
 *
 * One shared database holds the configuration of the whole cluster (SPEC.md §2, §6):
 * presence redundancy groups, nodes, service parameters, users and their home node, the
 * user assignment mode, the state each srmd reports for its node and the history of every
 * transition. ha/db/README.md documents the schema, the rules, the NOTIFY payload, the
 * cache file and the assignment algorithms; this header documents the C interface.
 *
 * Three ways in:
 *
 *  - Validation and the parameter table, pure functions usable without a database
 *    (srmctl checks its input with them before sending anything).
 *  - The blocking API, srm_db_sync_*: one libpq connection, one call one round trip.
 *    For tests, tools and the startup of srmd (migrations, first configuration load).
 *  - The asynchronous API, srm_db_*: a connection manager on the daemon's uv_loop_t. It
 *    connects without blocking, reconnects with a bounded backoff, LISTENs for changes,
 *    queues operations and delivers their results by callback, keeps node state reports
 *    while the database is down and sends them when it returns, and writes the local cache.
 *
 * Both APIs send the same statements and parse results with the same code: every
 * operation is one call of a server-side function (migrations/002_rules.sql), so each runs
 * in one transaction and the rules are checked inside it.
 *
 * Errors. Every function returning int returns >= 0 on success and a negative code on
 * failure: a negative errno or a project code of common/srm_error.h. Codes used here:
 *   -EINVAL            invalid argument or value (bad name, unknown enum, malformed value)
 *   -ERANGE            parameter value out of its range, or a rule between parameters
 *   -ENOMEM            out of memory
 *   -ENOENT            cache file does not exist
 *   -ETIMEDOUT         no answer from the database within the operation timeout
 *   -ECANCELED         operation cancelled by srm_db_close()
 *   -ENOBUFS           the queue of node state reports overflowed (oldest dropped)
 *   -EAGAIN            serialization failure or deadlock; retrying may succeed
 *   SRM_ENOTFOUND      no such group, node, user or parameter
 *   SRM_EEXISTS        group, node or user already exists
 *   SRM_EREFUSED       refused by a rule of SPEC.md §2 (HA needs two nodes, node removal...)
 *   SRM_EFAILED_OVER   refused because a node is failed over (adding or moving users)
 *   SRM_ETOOBIG        a name, description or cause is longer than its bound
 *   SRM_EBADUTF8       a text is not valid UTF-8
 *   SRM_ECORRUPT       corrupt cache file or malformed snapshot
 *   SRM_EDB_DOWN       the database is unreachable (or the connection broke)
 *   SRM_EDB_SCHEMA     the database schema is newer than this program
 *   SRM_EDB            any other database failure
 * Alongside the code comes a message for humans that says what failed, on what, and what
 * to do ("users add: adding users refused: node "n2" is failed over (state Idle, reason
 * Admin Request); fall back or recover until every node is Normal, then retry").
 *
 * Threads: none. A struct srm_db_sync or struct srm_db is used from one thread at a time.
 * The library does not log above debug level.
 */
#ifndef SRM_DB_H
#define SRM_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ------------------------------------------------------------------------------------ */
/* Limits                                                                                */
/* ------------------------------------------------------------------------------------ */

#define SRM_DB_NAME_MAX        128   /* group and node names, characters */
#define SRM_DB_DESCRIPTION_MAX 128   /* group descriptions, characters */
#define SRM_DB_ADDRESS_MAX     255   /* node addresses, characters */
#define SRM_DB_USER_NAME_MAX   255   /* user names, characters */
#define SRM_DB_CAUSE_MAX       512   /* cause text of a transition, characters */
#define SRM_DB_ERRMSG_MAX      512   /* error messages, bytes including the NUL */
#define SRM_DB_LIST_MAX        10000 /* largest page of users or history events */

/* ------------------------------------------------------------------------------------ */
/* Validation (SPEC.md §2). Each returns 0 if the text is acceptable, else a negative     */
/* code and, if errbuf is not NULL, a message in errbuf (always NUL-terminated,          */
/* truncated to errlen). The database enforces the same rules with CHECK constraints.     */
/* ------------------------------------------------------------------------------------ */

/*
 * Group name: 1 to 128 characters, each a letter, a digit, '_' or '-'.
 * Errors: -EINVAL (NULL, empty or a character outside the set), SRM_ETOOBIG.
 */
int srm_db_validate_group_name(const char *name, char *errbuf, size_t errlen);

/*
 * Group description: valid UTF-8, at most 128 characters (code points), none of
 * '"' '%' '&' '\' '<' '>' and no control character. May be empty.
 * Errors: -EINVAL (NULL or a forbidden character), SRM_EBADUTF8, SRM_ETOOBIG.
 */
int srm_db_validate_description(const char *description, char *errbuf, size_t errlen);

/*
 * Node name: 1 to 128 letters, digits, '_', '-' or '.' (host names fit).
 * Errors: -EINVAL, SRM_ETOOBIG.
 */
int srm_db_validate_node_name(const char *name, char *errbuf, size_t errlen);

/*
 * Node address: 1 to 255 characters among letters, digits and "_.:%[]-" (a host name, an
 * IPv4 or IPv6 address, optionally with a port or a zone).
 * Errors: -EINVAL, SRM_ETOOBIG.
 */
int srm_db_validate_address(const char *address, char *errbuf, size_t errlen);

/*
 * User name: 1 to 255 letters, digits, '.', '_', '@', '+' or '-' (case-sensitive).
 * Errors: -EINVAL, SRM_ETOOBIG.
 */
int srm_db_validate_user_name(const char *name, char *errbuf, size_t errlen);

/*
 * Cause text of a transition: valid UTF-8, at most 512 characters, no control character.
 * May be empty. Errors: -EINVAL, SRM_EBADUTF8, SRM_ETOOBIG.
 */
int srm_db_validate_cause(const char *cause, char *errbuf, size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Node states and reasons (SPEC.md §3), spelled exactly as the spec and srmctl spell     */
/* them. The database stores these strings.                                             */
/* ------------------------------------------------------------------------------------ */

/* True if state is one of the 14 state names of SPEC.md §3. */
bool srm_db_state_valid(const char *state);

/* True if reason is one of the 15 reason names of SPEC.md §3. */
bool srm_db_reason_valid(const char *reason);

/*
 * The failed-over predicate (README.md "Failed over"): true when a node that reported
 * this state counts as failed over, that is for every state but "Normal" and
 * "Initializing" (also for NULL or an unknown name: not knowing is not safe). While any
 * node is failed over, users cannot be added, assigned or rebalanced (SPEC.md §2). The
 * database applies the same predicate, srm_state_is_failed_over(), inside the
 * transaction of each such operation; a node that never reported a state is not failed
 * over.
 */
bool srm_db_state_is_failed_over(const char *state);

/* ------------------------------------------------------------------------------------ */
/* User assignment mode (SPEC.md §2)                                                     */
/* ------------------------------------------------------------------------------------ */

enum srm_db_assign_mode {
    SRM_DB_ASSIGN_BALANCED = 0,   /* "balanced": even totals over every node */
    SRM_DB_ASSIGN_ACTIVE_STANDBY, /* "active-standby": all of a group's users on its first node */
    SRM_DB_ASSIGN_NONE,           /* "none": nobody is assigned automatically */
    SRM_DB_ASSIGN_MAX,
};

/* "balanced", "active-standby", "none"; NULL for a value out of range. */
const char *srm_db_assign_mode_name(enum srm_db_assign_mode mode);

/* Parses a mode name. Errors: -EINVAL (message lists the valid names). */
int srm_db_assign_mode_parse(const char *name, enum srm_db_assign_mode *ret_mode, char *errbuf,
                             size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Service parameters (SPEC.md §6)                                                      */
/* ------------------------------------------------------------------------------------ */

/*
 * X(ID, name, kind, unit, default, min, max, per_node, description)
 * Values are int64: seconds for unit "s", 0 or 1 for booleans. Rules between parameters
 * (srm_db_params_check): keepalive_timeout >= 2 x keepalive_interval,
 * init_keepalive_timeout >= 2 x keepalive_interval, relogin_lower <= relogin_upper (for the
 * cluster-wide values and for every node's effective values). migrations/001_schema.sql
 * holds the same table (param_defs); a test checks that both agree.
 */
#define SRM_DB_PARAM_MAP(X)                                                                        \
    X(SERVICE_PORT, "service_port", INT, "", 22001, 1, 65535, false,                               \
      "port the SRM uses to talk to its peer")                                                     \
    X(ADMIN_RPC_PORT, "admin_rpc_port", INT, "", 20075, 1, 65535, false,                           \
      "port for admin RPC requests")                                                               \
    X(CRITICAL_SERVICE_DOWN_DELAY, "critical_service_down_delay", INT, "s", 90, 1, 3600, false,    \
      "how long a critical service may be down before failover")                                   \
    X(AUTOMATIC_FALLBACK, "automatic_fallback", BOOL, "", 0, 0, 1, false,                          \
      "fall back automatically once the primary has been healthy for "                             \
      "automatic_fallback_delay")                                                                  \
    X(AUTOMATIC_FALLBACK_DELAY, "automatic_fallback_delay", INT, "s", 1800, 1, 86400, false,       \
      "how long the primary must be healthy before an automatic fallback")                         \
    X(INIT_KEEPALIVE_TIMEOUT, "init_keepalive_timeout", INT, "s", 120, 2, 3600, false,             \
      "heartbeat loss tolerated during initialization before failover")                            \
    X(KEEPALIVE_TIMEOUT, "keepalive_timeout", INT, "s", 60, 2, 3600, false,                        \
      "heartbeat loss tolerated before failover")                                                  \
    X(KEEPALIVE_INTERVAL, "keepalive_interval", INT, "s", 15, 1, 300, false,                       \
      "time between heartbeats to the peer")                                                       \
    X(MONITOR_XCP_AUTH, "monitor_xcp_auth", BOOL, "", 0, 0, 1, false,                              \
      "treat the XCP authentication service as critical")                                          \
    X(RELOGIN_LOWER, "relogin_lower", INT, "s", 120, 0, 3600, true, "client re-login lower limit") \
    X(RELOGIN_UPPER, "relogin_upper", INT, "s", 537, 1, 3600, true, "client re-login upper limit")

enum srm_db_param {
#define SRM__DB_PARAM_ENUM(id, ...) SRM_DB_PARAM_##id,
    SRM_DB_PARAM_MAP(SRM__DB_PARAM_ENUM)
#undef SRM__DB_PARAM_ENUM
        SRM_DB_PARAM_MAX
};

enum srm_db_param_kind {
    SRM_DB_PARAM_KIND_INT = 0,
    SRM_DB_PARAM_KIND_BOOL,
};

struct srm_db_param_def {
    const char *name;            /* "keepalive_interval" */
    enum srm_db_param_kind kind; /* integer or boolean */
    const char *unit;            /* "s" or "" */
    int64_t default_value;
    int64_t min_value;
    int64_t max_value;
    bool per_node; /* may also be set for one node */
    const char *description;
};

/* The definition of a parameter; NULL if param is out of range. Static storage. */
const struct srm_db_param_def *srm_db_param_def(enum srm_db_param param);

/* Looks a parameter up by name. Errors: -EINVAL (message lists the known names). */
int srm_db_param_lookup(const char *name, enum srm_db_param *ret_param, char *errbuf,
                        size_t errlen);

/*
 * Parses a value given as text: a decimal integer for INT parameters; true/false, on/off,
 * yes/no or 1/0 for BOOL parameters. Checks the range.
 * Errors: -EINVAL (not a number / not a boolean), -ERANGE (out of range; the message
 * gives the allowed range, e.g. "keepalive_interval = 0 is out of range: allowed 1 to 300
 * s").
 */
int srm_db_param_parse_value(enum srm_db_param param, const char *text, int64_t *ret_value,
                             char *errbuf, size_t errlen);

/* Fills values[] with every parameter's default. */
void srm_db_params_defaults(int64_t values[SRM_DB_PARAM_MAX]);

/*
 * Checks a full set of parameter values: each in range, and the rules between them.
 * Errors: -ERANGE with the first violation in errbuf.
 */
int srm_db_params_check(const int64_t values[SRM_DB_PARAM_MAX], char *errbuf, size_t errlen);

/* Where the value of a parameter comes from. */
enum srm_db_param_source {
    SRM_DB_PARAM_SOURCE_DEFAULT = 0, /* nobody set it */
    SRM_DB_PARAM_SOURCE_CLUSTER,     /* set cluster-wide */
    SRM_DB_PARAM_SOURCE_NODE,        /* set for this node */
};

struct srm_db_param_value {
    enum srm_db_param param;
    int64_t value;
    enum srm_db_param_source source;
};

/* ------------------------------------------------------------------------------------ */
/* Configuration snapshot                                                                */
/* ------------------------------------------------------------------------------------ */

struct srm_db_node {
    int64_t id; /* database id, > 0 */
    char *name;
    char *address;
    int64_t group_id;
    size_t group_index;     /* index of its group in config->groups */
    int position;           /* 1: first node of its group, 2: second */
    bool is_publisher;      /* the database publisher (first node added, SPEC.md §2) */
    bool assignable;        /* takes users; false once an admin unassigned its users */
    int64_t users;          /* users whose home node this is */
    char *state;            /* last state its srmd reported; NULL if it never did */
    char *reason;           /* reason beside that state; NULL iff state is NULL */
    int64_t state_since_us; /* when that state began, microseconds since the epoch; 0 if none */
    int64_t params[SRM_DB_PARAM_MAX]; /* effective values: node, else cluster, else default */
};

struct srm_db_group {
    int64_t id;
    char *name;
    char *description;
    bool ha_enabled;
    size_t n_nodes;  /* 0, 1 or 2 */
    size_t nodes[2]; /* indices in config->nodes, by position; valid below n_nodes */
};

enum srm_db_config_source {
    SRM_DB_SOURCE_DATABASE = 0, /* loaded from the database just now */
    SRM_DB_SOURCE_CACHE,        /* loaded from the local cache file */
};

/*
 * The whole configuration at one instant (one statement, so one consistent view). Built
 * by srm_db_sync_config_load(), srm_db_config_load() (result->config) or
 * srm_db_cache_load(); owned by the caller, freed with srm_db_config_free(), which frees
 * every string and array it points to. Groups and nodes are sorted by name.
 */
struct srm_db_config {
    int schema_version;  /* schema of the database it came from */
    int64_t taken_at_us; /* database clock when it was taken */
    enum srm_db_config_source source;
    enum srm_db_assign_mode assignment_mode;
    int64_t params[SRM_DB_PARAM_MAX]; /* cluster-wide effective values */
    size_t n_groups;
    struct srm_db_group *groups;
    size_t n_nodes;
    struct srm_db_node *nodes;
    int64_t users_total;
    int64_t users_unassigned;
};

/* Frees the snapshot and everything it owns. Accepts NULL. */
void srm_db_config_free(struct srm_db_config *config);

/* Lookups by name; NULL if absent. The pointer is valid as long as config is. */
const struct srm_db_node *srm_db_config_node(const struct srm_db_config *config, const char *name);
const struct srm_db_group *srm_db_config_group(const struct srm_db_config *config,
                                               const char *name);

/* The peer of a node (the other node of its group), or NULL. */
const struct srm_db_node *srm_db_config_peer(const struct srm_db_config *config,
                                             const struct srm_db_node *node);

/* The first node, by name, that is failed over (srm_db_state_is_failed_over()), or NULL. */
const struct srm_db_node *srm_db_config_failed_over(const struct srm_db_config *config);

/* Age of the snapshot in milliseconds at now_us (microseconds since the epoch). */
int64_t srm_db_config_age_ms(const struct srm_db_config *config, int64_t now_us);

/* ------------------------------------------------------------------------------------ */
/* Local cache (README.md "Cache file")                                                   */
/* ------------------------------------------------------------------------------------ */

/*
 * Writes the snapshot to path atomically: a temporary file in the same directory
 * (path.tmp.XXXXXX, mode 0600), fsync, rename over path, fsync of the directory. A reader sees the
 * old file or the new one, never a mix. Blocking (disk I/O). Errors: negative errno of the failed
 * system call (the message names the file and the call), -ENOMEM.
 */
int srm_db_cache_save(const struct srm_db_config *config, const char *path, char *errbuf,
                      size_t errlen);

/*
 * Reads a snapshot written by srm_db_cache_save(). On success *ret_config is a new
 * snapshot with source SRM_DB_SOURCE_CACHE (its taken_at_us says how old it is), owned by
 * the caller. Everything is checked as when loading from the database: a file that is not
 * JSON, not a cache file, of an unknown version, or whose content breaks a rule (bad
 * name, parameter out of range, node in a missing group...) is refused.
 * Errors: -ENOENT (no cache file), other negative errno (cannot read), SRM_ECORRUPT
 * (the message says what is wrong and where), -ENOMEM.
 */
int srm_db_cache_load(const char *path, struct srm_db_config **ret_config, char *errbuf,
                      size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Lists returned by operations                                                         */
/* ------------------------------------------------------------------------------------ */

struct srm_db_user {
    int64_t id;
    char *name;
    char *node; /* home node name; NULL if unassigned */
};

struct srm_db_user_list {
    size_t n;
    struct srm_db_user *users; /* sorted by name */
};

/* Frees the list and its strings. Accepts NULL. */
void srm_db_user_list_free(struct srm_db_user_list *list);

/* One transition of one node, as the history table holds it. */
struct srm_db_event {
    int64_t id;    /* increasing; pass the last one seen to history_since */
    int64_t at_us; /* when the transition happened (srmd's clock), µs since the epoch */
    int64_t node_id;
    char *node;       /* node name at the time */
    char *group;      /* group name at the time; NULL if unknown */
    char *old_state;  /* NULL for the first report of a node */
    char *old_reason; /* NULL iff old_state is NULL */
    char *new_state;
    char *new_reason;
    char *cause; /* free text, possibly empty */
};

struct srm_db_event_list {
    size_t n;
    struct srm_db_event *events; /* by increasing id */
};

/* Frees the list and its strings. Accepts NULL. */
void srm_db_event_list_free(struct srm_db_event_list *list);

/* A transition to record (input of node_state_report). Strings are copied. */
struct srm_db_transition {
    const char *node;       /* node name */
    const char *old_state;  /* NULL for the first report after start */
    const char *old_reason; /* NULL iff old_state is NULL */
    const char *new_state;
    const char *new_reason;
    const char *cause; /* NULL or free text (srm_db_validate_cause) */
    int64_t at_us;     /* when it happened, µs since the epoch, > 0 */
};

/* ------------------------------------------------------------------------------------ */
/* Result of an operation                                                                */
/* ------------------------------------------------------------------------------------ */

/*
 * What an operation produced. Which fields are set depends on the operation (see each
 * one); the others are 0 / NULL.
 *
 * In an asynchronous callback the result and everything it points to belong to the
 * library and are valid until the callback returns. To keep config, users or events, copy
 * the pointer and set the field to NULL: the library frees only what is still there.
 */
struct srm_db_result {
    int status;                       /* >= 0 success, else a negative code */
    const char *errmsg;               /* "" on success, else what failed and what to do */
    int64_t id;                       /* id of the object created or changed */
    int64_t count;                    /* users added, removed or assigned */
    int64_t moved;                    /* users whose home node the assignment mode changed */
    struct srm_db_param_value param;  /* param_get */
    struct srm_db_config *config;     /* config_load */
    struct srm_db_user_list *users;   /* users_list */
    struct srm_db_event_list *events; /* history_since, history_last */
};

/* ------------------------------------------------------------------------------------ */
/* Change notifications (README.md "NOTIFY")                                             */
/* ------------------------------------------------------------------------------------ */

enum srm_db_table {
    SRM_DB_TABLE_UNKNOWN = 0, /* a payload this version does not know: reload everything */
    SRM_DB_TABLE_CLUSTER,     /* the assignment mode */
    SRM_DB_TABLE_GROUPS,
    SRM_DB_TABLE_NODES,
    SRM_DB_TABLE_PARAMS,
    SRM_DB_TABLE_USERS,
    SRM_DB_TABLE_NODE_STATE,
    SRM_DB_TABLE_HISTORY,
    SRM_DB_TABLE_MAX,
};

enum srm_db_change_op {
    SRM_DB_CHANGE_UNKNOWN = 0,
    SRM_DB_CHANGE_INSERT,
    SRM_DB_CHANGE_UPDATE,
    SRM_DB_CHANGE_DELETE,
};

struct srm_db_change {
    enum srm_db_table table;
    enum srm_db_change_op op;
    int64_t id;       /* row id (groups, nodes, history); 0 if none */
    int64_t node_id;  /* node concerned; 0 if none (for users: unassigned users changed) */
    int64_t group_id; /* group concerned; 0 if none */
};

/* Table name as in the payload ("nodes"); NULL out of range. */
const char *srm_db_table_name(enum srm_db_table table);

/*
 * Parses a notification payload. A well-formed payload naming a table this version does
 * not know gives table SRM_DB_TABLE_UNKNOWN and returns 0.
 * Errors: SRM_ECORRUPT (not a JSON object, or a field of the wrong type).
 */
int srm_db_change_parse(const char *payload, size_t len, struct srm_db_change *ret_change);

/* ------------------------------------------------------------------------------------ */
/* Blocking API                                                                         */
/* ------------------------------------------------------------------------------------ */

struct srm_db_sync;

/*
 * Connects (blocking). conninfo is a libpq connection string or URI; NULL or "" uses the
 * libpq defaults and the PG* environment variables. Add connect_timeout=N to bound the
 * wait. On success *ret_db is a new handle to close with srm_db_sync_close(). If the
 * connection breaks later, the next call tries once to reconnect before failing with
 * SRM_EDB_DOWN.
 * Errors: SRM_EDB_DOWN (cannot connect; errbuf has libpq's reason), -ENOMEM.
 */
int srm_db_sync_open(const char *conninfo, struct srm_db_sync **ret_db, char *errbuf,
                     size_t errlen);

/* Closes the connection and frees the handle. Accepts NULL. */
void srm_db_sync_close(struct srm_db_sync *db);

/*
 * Message of the last failed call on db ("" after a success). Valid until the next call
 * on db. Never NULL.
 */
const char *srm_db_sync_errmsg(const struct srm_db_sync *db);

/*
 * Brings the schema up to date: applies, in order, each embedded migration
 * (migrations/NNN_name.sql) newer than the version recorded in schema_version, each in
 * its own transaction under an advisory lock (two srmd starting at once do not race).
 * Running it again does nothing. *ret_version (may be NULL) receives the resulting schema
 * version. Errors: SRM_EDB_SCHEMA (the database has a newer schema than this program
 * knows; nothing is changed), SRM_EDB_DOWN, SRM_EDB (a migration failed; it was rolled
 * back).
 */
int srm_db_sync_migrate(struct srm_db_sync *db, int *ret_version);

/* Version of the newest embedded migration (what srm_db_sync_migrate() brings a database to). */
int srm_db_schema_version_known(void);

/*
 * Every operation below exists twice with the same arguments and meaning: blocking
 * (srm_db_sync_OP, results through ret_* parameters, untouched on failure) and
 * asynchronous (srm_db_OP, results in struct srm_db_result). Names identify groups, nodes,
 * users and parameters. "node" arguments that may be NULL mean "none" as documented.
 * Every argument is validated in C before anything is sent; the database checks again.
 */

/* Loads the whole configuration. *ret_config: new snapshot owned by the caller. */
int srm_db_sync_config_load(struct srm_db_sync *db, struct srm_db_config **ret_config);

/* Creates a group (HA disabled, no nodes). Errors: SRM_EEXISTS. */
int srm_db_sync_group_create(struct srm_db_sync *db, const char *name, const char *description,
                             int64_t *ret_id);

/*
 * Renames a group and/or changes its description; NULL keeps the current value.
 * Errors: SRM_ENOTFOUND, SRM_EEXISTS (new name taken).
 */
int srm_db_sync_group_update(struct srm_db_sync *db, const char *name, const char *new_name,
                             const char *description);

/* Deletes an empty group. Errors: SRM_ENOTFOUND, SRM_EREFUSED (it still has nodes). */
int srm_db_sync_group_delete(struct srm_db_sync *db, const char *name);

/*
 * Enables or disables HA on a group. Enabling needs two nodes in the group (SPEC.md §2).
 * Errors: SRM_ENOTFOUND, SRM_EREFUSED.
 */
int srm_db_sync_group_set_ha(struct srm_db_sync *db, const char *name, bool enabled);

/*
 * Adds a node to a group, at the first free position. The first node of the cluster
 * becomes the publisher. In balanced mode users then move to it to keep the totals even
 * (unless a node is failed over). *ret_moved (may be NULL): users moved.
 * Errors: SRM_EEXISTS, SRM_ENOTFOUND (group), SRM_EREFUSED (group already has two nodes).
 */
int srm_db_sync_node_add(struct srm_db_sync *db, const char *name, const char *address,
                         const char *group, int64_t *ret_id, int64_t *ret_moved);

/* Changes a node's address. Errors: SRM_ENOTFOUND. */
int srm_db_sync_node_update(struct srm_db_sync *db, const char *name, const char *address);

/*
 * Marks a node as taking users or not. Marking it not assignable unassigns its users:
 * they move to the other nodes as the mode says (mode none: they become unassigned).
 * Marking it assignable again rebalances. *ret_moved (may be NULL): users moved.
 * Errors: SRM_ENOTFOUND, SRM_EFAILED_OVER (its users would move while a node is failed
 * over).
 */
int srm_db_sync_node_set_assignable(struct srm_db_sync *db, const char *name, bool assignable,
                                    int64_t *ret_moved);

/*
 * Removes a node (SPEC.md §2): only once HA is disabled on its group and no user is
 * assigned to it, and the publisher only from a group it is alone in (the oldest remaining
 * node becomes the publisher). Its state and per-node parameters go with it; its history
 * stays. Errors: SRM_ENOTFOUND, SRM_EREFUSED (the message says which rule).
 */
int srm_db_sync_node_remove(struct srm_db_sync *db, const char *name);

/*
 * Reads a parameter: the value for node (NULL: cluster-wide) and where it comes from.
 * Errors: -EINVAL (unknown parameter), SRM_ENOTFOUND (node).
 */
int srm_db_sync_param_get(struct srm_db_sync *db, const char *name, const char *node,
                          struct srm_db_param_value *ret_value);

/*
 * Sets a parameter cluster-wide (node NULL) or for one node (per-node parameters only).
 * value is text, parsed by srm_db_param_parse_value(). The rules between parameters are
 * checked against the values in the database, in the same transaction.
 * Errors: -EINVAL, -ERANGE (out of range or breaks a rule; the message says which and
 * what to change first), SRM_ENOTFOUND (node).
 */
int srm_db_sync_param_set(struct srm_db_sync *db, const char *name, const char *node,
                          const char *value);

/* Removes the value set at that scope, so the wider one applies. Errors: as param_set. */
int srm_db_sync_param_reset(struct srm_db_sync *db, const char *name, const char *node);

/*
 * Adds n users in one statement (75,000 take well under a second). With node NULL they
 * are placed by the assignment mode (balanced: onto the nodes below the even share;
 * active-standby: onto the first node of the groups below their share; none:
 * unassigned); with a node, all go to that node. All or nothing.
 * *ret_added, *ret_moved (may be NULL): users added; users placed by the mode.
 * Errors: SRM_EFAILED_OVER (a node is failed over, SPEC.md §2), SRM_EEXISTS (a user
 * exists; the message names it), -EINVAL (bad or duplicate name), SRM_ENOTFOUND (node),
 * SRM_EREFUSED (node not assignable).
 */
int srm_db_sync_users_add(struct srm_db_sync *db, const char *const *names, size_t n,
                          const char *node, int64_t *ret_added, int64_t *ret_moved);

/*
 * Removes users (names not found are ignored), then keeps the totals even as the mode
 * says (not while a node is failed over). *ret_removed, *ret_moved may be NULL.
 */
int srm_db_sync_users_remove(struct srm_db_sync *db, const char *const *names, size_t n,
                             int64_t *ret_removed, int64_t *ret_moved);

/*
 * Assigns users to a node by hand (node NULL: unassigns them). The next automatic
 * rebalance of balanced or active-standby mode may move them again.
 * *ret_changed (may be NULL): users whose home node changed.
 * Errors: SRM_EFAILED_OVER, SRM_ENOTFOUND (node or a user; all or nothing),
 * SRM_EREFUSED (node not assignable).
 */
int srm_db_sync_users_assign(struct srm_db_sync *db, const char *const *names, size_t n,
                             const char *node, int64_t *ret_changed);

/*
 * One page of users sorted by name: those after `after` (NULL: from the start), at most
 * limit (1..SRM_DB_LIST_MAX), only those of node (NULL: any), only unassigned ones if
 * unassigned_only. *ret_list: new list owned by the caller (n == 0 at the end).
 */
int srm_db_sync_users_list(struct srm_db_sync *db, const char *after, const char *node,
                           bool unassigned_only, unsigned limit,
                           struct srm_db_user_list **ret_list);

/*
 * Applies the assignment mode to every user with the fewest moves (README.md).
 * *ret_moved (may be NULL). Errors: SRM_EFAILED_OVER.
 */
int srm_db_sync_users_rebalance(struct srm_db_sync *db, int64_t *ret_moved);

/* Sets the assignment mode. Moves nobody: rebalance to apply it to existing users. */
int srm_db_sync_assignment_mode_set(struct srm_db_sync *db, enum srm_db_assign_mode mode);

/*
 * Records a transition of a node: its current state (node_state) and a history row, in
 * one transaction. *ret_event_id (may be NULL): id of the history row.
 * Errors: -EINVAL (unknown state or reason, bad cause), SRM_ENOTFOUND (node).
 */
int srm_db_sync_node_state_report(struct srm_db_sync *db, const struct srm_db_transition *t,
                                  int64_t *ret_event_id);

/*
 * History events with id > after_id, oldest first, at most limit (1..SRM_DB_LIST_MAX):
 * what `srmctl events --follow` polls (or reads on each history notification).
 */
int srm_db_sync_history_since(struct srm_db_sync *db, int64_t after_id, unsigned limit,
                              struct srm_db_event_list **ret_list);

/* The last n (1..SRM_DB_LIST_MAX) history events, oldest first. */
int srm_db_sync_history_last(struct srm_db_sync *db, unsigned n,
                             struct srm_db_event_list **ret_list);

/*
 * Startup of srmd: the configuration from the database if it answers, else from the
 * cache. Connects with conninfo (add connect_timeout=N to bound the wait); if that works,
 * runs the migrations when migrate is true, loads the snapshot and writes it to
 * cache_path (when not NULL) and returns 0. If the database cannot be reached, loads
 * cache_path and returns 1: *ret_config->source is SRM_DB_SOURCE_CACHE and note says why
 * and how old the cache is, for srmd to log ("working from cache" ...). note (may be
 * NULL) also reports a cache that could not be written.
 * Errors: SRM_EDB_DOWN when neither works (note has both reasons), SRM_EDB_SCHEMA,
 * SRM_EDB, -ENOMEM.
 */
int srm_db_config_bootstrap(const char *conninfo, const char *cache_path, bool migrate,
                            struct srm_db_config **ret_config, char *note, size_t notelen);

/* ------------------------------------------------------------------------------------ */
/* Asynchronous API on libuv                                                            */
/* ------------------------------------------------------------------------------------ */

struct srm_db;

/* Result of an operation; see struct srm_db_result for ownership. */
typedef void srm_db_result_cb(struct srm_db *db, struct srm_db_result *result, void *data);

/*
 * The database is reachable (again) and the manager LISTENs. Changes made while it was
 * down were not notified: reload what you need (the configuration) now.
 */
typedef void srm_db_up_cb(struct srm_db *db, void *data);

/*
 * The database became unreachable: at start if the first connection fails, or when an
 * established connection breaks. Called once per up-to-down change, not on every failed
 * retry. err is SRM_EDB_DOWN or -ETIMEDOUT; errmsg says why and when the next attempt is.
 * Non-report operations fail with SRM_EDB_DOWN until up_cb.
 */
typedef void srm_db_down_cb(struct srm_db *db, int err, const char *errmsg, void *data);

/* Something changed in the configuration (any client, this one included). */
typedef void srm_db_change_cb(struct srm_db *db, const struct srm_db_change *change, void *data);

/* A cache write finished (status >= 0) or failed. */
typedef void srm_db_cache_cb(struct srm_db *db, int status, const char *errmsg, void *data);

typedef void srm_db_close_cb(struct srm_db *db, void *data);

struct srm_db_options {
    const char *conninfo;        /* libpq string; NULL or "": PG* environment. Copied. */
    unsigned connect_timeout_ms; /* one connection attempt; 0: 5000 */
    unsigned reconnect_min_ms;   /* first retry delay; 0: 100 */
    unsigned reconnect_max_ms;   /* the delay doubles up to this; 0: 5000 */
    unsigned op_timeout_ms;      /* an operation without answer breaks the connection; 0: 60000 */
    unsigned ping_interval_ms;   /* idle health check; 0: 5000 */
    size_t report_queue_max;     /* node state reports kept while down; 0: 4096 */
    const char *cache_path;      /* write each loaded snapshot here; NULL: don't. Copied. */
    srm_db_up_cb *up_cb;         /* each may be NULL */
    srm_db_down_cb *down_cb;
    srm_db_change_cb *change_cb;
    srm_db_cache_cb *cache_cb;
    void *data; /* passed to the four callbacks above */
};

/*
 * Creates a connection manager on loop. Nothing happens until srm_db_start(). *ret_db is
 * owned by the library: release it with srm_db_close().
 * Errors: -EINVAL (loop or opts NULL), -ENOMEM, negative errno of libuv.
 */
int srm_db_new(uv_loop_t *loop, const struct srm_db_options *opts, struct srm_db **ret_db);

/* Starts connecting (non-blocking). Errors: -EALREADY (started), -ECANCELED (closing). */
int srm_db_start(struct srm_db *db);

/* True between up_cb and down_cb. */
bool srm_db_is_up(const struct srm_db *db);

/* Node state reports waiting to be written (kept while the database is down). */
size_t srm_db_reports_pending(const struct srm_db *db);

/*
 * Closes the manager: every queued operation's callback is called with -ECANCELED before
 * this returns (reports not yet written are lost: their callbacks say so), the connection
 * is closed, and once the libuv handles are closed and a cache write in progress has
 * finished, close_cb (may be NULL) is called and the memory freed. Do not use db after
 * calling this. Safe to call from any callback of db.
 */
void srm_db_close(struct srm_db *db, srm_db_close_cb *close_cb, void *data);

/*
 * Asynchronous operations. Each returns 0 when the operation is accepted: cb (may be NULL)
 * is then called exactly once, later, from the loop, never from within this call, with
 * the outcome; invalid arguments are reported that way too, with their message. A
 * negative return (-ENOMEM, or -ECANCELED after srm_db_close()) means the operation was
 * not accepted and cb will not be called.
 *
 * While the database is down (after down_cb), operations fail with SRM_EDB_DOWN, except
 * node_state_report, which is queued (up to report_queue_max, oldest dropped with
 * -ENOBUFS) and written in order when the database returns, before any other operation.
 * A report is never recorded twice, even if the connection broke before its answer came.
 * Before the first connection attempt ends, operations wait for it.
 *
 * Arguments and results are those of the blocking twin above; result fields:
 *   config_load: config           group_create: id          node_add: id, moved
 *   users_add: count, moved       users_remove: count, moved
 *   users_assign: count           users_rebalance, node_set_assignable: moved
 *   param_get: param              users_list: users         history_*: events
 *   node_state_report: id (the history row)
 * When cache_path was given, each successful config_load also writes the cache (in the
 * libuv thread pool); cache_cb reports the outcome.
 */
int srm_db_config_load(struct srm_db *db, srm_db_result_cb *cb, void *data);
int srm_db_group_create(struct srm_db *db, const char *name, const char *description,
                        srm_db_result_cb *cb, void *data);
int srm_db_group_update(struct srm_db *db, const char *name, const char *new_name,
                        const char *description, srm_db_result_cb *cb, void *data);
int srm_db_group_delete(struct srm_db *db, const char *name, srm_db_result_cb *cb, void *data);
int srm_db_group_set_ha(struct srm_db *db, const char *name, bool enabled, srm_db_result_cb *cb,
                        void *data);
int srm_db_node_add(struct srm_db *db, const char *name, const char *address, const char *group,
                    srm_db_result_cb *cb, void *data);
int srm_db_node_update(struct srm_db *db, const char *name, const char *address,
                       srm_db_result_cb *cb, void *data);
int srm_db_node_set_assignable(struct srm_db *db, const char *name, bool assignable,
                               srm_db_result_cb *cb, void *data);
int srm_db_node_remove(struct srm_db *db, const char *name, srm_db_result_cb *cb, void *data);
int srm_db_param_get(struct srm_db *db, const char *name, const char *node, srm_db_result_cb *cb,
                     void *data);
int srm_db_param_set(struct srm_db *db, const char *name, const char *node, const char *value,
                     srm_db_result_cb *cb, void *data);
int srm_db_param_reset(struct srm_db *db, const char *name, const char *node, srm_db_result_cb *cb,
                       void *data);
int srm_db_users_add(struct srm_db *db, const char *const *names, size_t n, const char *node,
                     srm_db_result_cb *cb, void *data);
int srm_db_users_remove(struct srm_db *db, const char *const *names, size_t n, srm_db_result_cb *cb,
                        void *data);
int srm_db_users_assign(struct srm_db *db, const char *const *names, size_t n, const char *node,
                        srm_db_result_cb *cb, void *data);
int srm_db_users_list(struct srm_db *db, const char *after, const char *node, bool unassigned_only,
                      unsigned limit, srm_db_result_cb *cb, void *data);
int srm_db_users_rebalance(struct srm_db *db, srm_db_result_cb *cb, void *data);
int srm_db_assignment_mode_set(struct srm_db *db, enum srm_db_assign_mode mode,
                               srm_db_result_cb *cb, void *data);
int srm_db_node_state_report(struct srm_db *db, const struct srm_db_transition *t,
                             srm_db_result_cb *cb, void *data);
int srm_db_history_since(struct srm_db *db, int64_t after_id, unsigned limit, srm_db_result_cb *cb,
                         void *data);
int srm_db_history_last(struct srm_db *db, unsigned n, srm_db_result_cb *cb, void *data);

#endif
