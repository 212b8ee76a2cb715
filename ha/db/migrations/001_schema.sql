-- Tables of the cluster configuration (ha/db/README.md describes each one).
-- Every rule that can be written as a CHECK constraint is written here, so that a client
-- other than srm_ha_db cannot store what the library would refuse. Character rules are
-- written as "no character outside the set" plus a length check: a bounded regular
-- expression ({1,255}) costs 20 times more per row, which matters for 75,000 users.

-- SPEC.md §3: the state and reason names, spelled exactly as srmctl shows them.
CREATE DOMAIN srm_state AS text CHECK (VALUE IN (
    'Initializing', 'Idle', 'Normal', 'Running in Backup Mode', 'Taking Over',
    'Failing Over', 'Failed Over', 'Failed Over with Critical Services not Running',
    'Taking Back', 'Falling Back', 'Running in Failed Mode', 'Backup Activated',
    'Failing Over Affected Services', 'Unknown'));

CREATE DOMAIN srm_reason AS text CHECK (VALUE IN (
    'Normal', 'Admin Request', 'Initialization', 'Critical Service Down', 'Database Failure',
    'Peer Down', 'Peer Reboot', 'Peer Down During Initialization',
    'Critical Service Startup Failure', 'Takeover User Failure', 'Takeback User Failure',
    'Automatic Fallback', 'Auto Recover Database Failure', 'Auto Recover Critical Service Down',
    'Unknown'));

-- Cluster-wide settings that are not numeric service parameters: one row.
CREATE TABLE cluster (
    id smallint PRIMARY KEY DEFAULT 1 CONSTRAINT cluster_single_row CHECK (id = 1),
    assignment_mode text NOT NULL DEFAULT 'balanced'
        CONSTRAINT cluster_assignment_mode_valid
        CHECK (assignment_mode IN ('balanced', 'active-standby', 'none')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cluster DEFAULT VALUES;

-- Presence redundancy groups (SPEC.md §2).
CREATE TABLE groups (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE
        CONSTRAINT group_name_valid
        CHECK (char_length(name) BETWEEN 1 AND 128 AND name !~ '[^A-Za-z0-9_-]'),
    description text NOT NULL DEFAULT ''
        CONSTRAINT group_description_valid
        CHECK (char_length(description) <= 128 AND description !~ '[[:cntrl:]"%&\\<>]'),
    ha_enabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Nodes. A node is in exactly one group (group_id NOT NULL) at position 1 or 2, so a group
-- never holds more than two. The first node ever added is the database publisher.
CREATE TABLE nodes (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE
        CONSTRAINT node_name_valid
        CHECK (char_length(name) BETWEEN 1 AND 128 AND name !~ '[^A-Za-z0-9_.-]'),
    address text NOT NULL
        CONSTRAINT node_address_valid
        CHECK (char_length(address) BETWEEN 1 AND 255 AND address !~ '[^A-Za-z0-9_.:%\[\]-]'),
    group_id integer NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    position smallint NOT NULL CONSTRAINT node_position_valid CHECK (position IN (1, 2)),
    is_publisher boolean NOT NULL DEFAULT false,
    assignable boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT node_group_position_unique UNIQUE (group_id, position)
);
CREATE UNIQUE INDEX nodes_one_publisher ON nodes ((true)) WHERE is_publisher;

-- Service parameters (SPEC.md §6): their definitions, then the values set by admins.
-- A parameter without a row in params takes its default.
CREATE TABLE param_defs (
    name text PRIMARY KEY
        CONSTRAINT param_def_name_valid
        CHECK (char_length(name) BETWEEN 1 AND 64 AND name !~ '[^a-z0-9_]'),
    kind text NOT NULL CONSTRAINT param_def_kind_valid CHECK (kind IN ('int', 'bool')),
    unit text NOT NULL DEFAULT '',
    default_value bigint NOT NULL,
    min_value bigint NOT NULL,
    max_value bigint NOT NULL,
    per_node boolean NOT NULL DEFAULT false,
    description text NOT NULL,
    CONSTRAINT param_def_default_in_range
        CHECK (min_value <= default_value AND default_value <= max_value),
    CONSTRAINT param_def_bool_range CHECK (kind <> 'bool' OR (min_value = 0 AND max_value = 1))
);

INSERT INTO param_defs (name, kind, unit, default_value, min_value, max_value, per_node,
                        description) VALUES
    ('service_port', 'int', '', 22001, 1, 65535, false,
     'port the SRM uses to talk to its peer'),
    ('admin_rpc_port', 'int', '', 20075, 1, 65535, false,
     'port for admin RPC requests'),
    ('critical_service_down_delay', 'int', 's', 90, 1, 3600, false,
     'how long a critical service may be down before failover'),
    ('automatic_fallback', 'bool', '', 0, 0, 1, false,
     'fall back automatically once the primary has been healthy for automatic_fallback_delay'),
    ('automatic_fallback_delay', 'int', 's', 1800, 1, 86400, false,
     'how long the primary must be healthy before an automatic fallback'),
    ('init_keepalive_timeout', 'int', 's', 120, 2, 3600, false,
     'heartbeat loss tolerated during initialization before failover'),
    ('keepalive_timeout', 'int', 's', 60, 2, 3600, false,
     'heartbeat loss tolerated before failover'),
    ('keepalive_interval', 'int', 's', 15, 1, 300, false,
     'time between heartbeats to the peer'),
    ('monitor_xcp_auth', 'bool', '', 0, 0, 1, false,
     'treat the XCP authentication service as critical'),
    ('relogin_lower', 'int', 's', 120, 0, 3600, true,
     'client re-login lower limit'),
    ('relogin_upper', 'int', 's', 537, 1, 3600, true,
     'client re-login upper limit');

CREATE TABLE params (
    name text NOT NULL REFERENCES param_defs (name) ON DELETE CASCADE,
    node_id integer REFERENCES nodes (id) ON DELETE CASCADE, -- NULL: cluster-wide
    value bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX params_cluster_unique ON params (name) WHERE node_id IS NULL;
CREATE UNIQUE INDEX params_node_unique ON params (name, node_id) WHERE node_id IS NOT NULL;

-- Users and their home (assigned) node; NULL means unassigned.
-- Moving users must stay cheap at 75,000 rows, so home_node_id has no index (an update then
-- stays on its page, a HOT update, and touches no index; fillfactor leaves the room) and no
-- per-row foreign key: statement-level triggers in 002 check the reference once per
-- statement, against the whole set of changed rows.
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE
        CONSTRAINT user_name_valid
        CHECK (char_length(name) BETWEEN 1 AND 255 AND name !~ '[^A-Za-z0-9._@+-]'),
    home_node_id integer,
    created_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

-- Runtime state each srmd reports for its node.
CREATE TABLE node_state (
    node_id integer PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    state srm_state NOT NULL,
    reason srm_reason NOT NULL,
    since timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every transition of every node. Names are copied so that the history outlives the
-- nodes and groups it mentions. (source, source_seq) makes a re-sent report a no-op.
CREATE TABLE history (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    node_id integer,
    node_name text NOT NULL,
    group_id integer,
    group_name text,
    old_state srm_state,
    old_reason srm_reason,
    new_state srm_state NOT NULL,
    new_reason srm_reason NOT NULL,
    cause text NOT NULL DEFAULT ''
        CONSTRAINT history_cause_valid
        CHECK (char_length(cause) <= 512 AND cause !~ '[[:cntrl:]]'),
    source text,
    source_seq bigint,
    CONSTRAINT history_old_pair CHECK ((old_state IS NULL) = (old_reason IS NULL)),
    CONSTRAINT history_source_unique UNIQUE (source, source_seq)
);
CREATE INDEX history_node ON history (node_id, id);
