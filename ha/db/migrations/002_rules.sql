-- The rules of SPEC.md §2 and the operations the library calls, as functions. Each
-- operation is one statement (SELECT srm_...), so it runs in one transaction and the
-- asynchronous and blocking clients send the same text.
--
-- Errors are raised with project SQLSTATEs that the library maps to its codes:
--   SRMNF not found, SRMEX already exists, SRMRF refused by a rule, SRMFO refused because a
--   node is failed over, SRMIV invalid value, SRMRG value out of range.
-- MESSAGE says what failed and on what; HINT says what to do.

CREATE FUNCTION srm_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

CREATE FUNCTION srm_from_us(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$;

-- Every operation that changes groups, nodes, parameters or user assignment takes this
-- lock first, so that automatic rebalancing never runs twice at once.
CREATE FUNCTION srm_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7368052) $$;

CREATE FUNCTION srm_raise(code text, msg text, hint text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg, HINT = hint;
END $$;

------------------------------------------------------------------------------------------
-- The failed-over predicate (README.md "Failed over"). A node is failed over when the
-- state its srmd last reported is anything but Normal or Initializing: its users are
-- served by its peer, a transition is under way, or the state is not known. A node that
-- never reported a state is not failed over. Mirrored by srm_db_state_is_failed_over().
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_state_is_failed_over(p_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_state NOT IN ('Normal', 'Initializing'), true)
$$;

CREATE FUNCTION srm_failed_over_nodes() RETURNS TABLE (node_name text, state text, reason text)
LANGUAGE sql STABLE AS $$
    SELECT n.name, s.state, s.reason
    FROM node_state s JOIN nodes n ON n.id = s.node_id
    WHERE srm_state_is_failed_over(s.state)
    ORDER BY n.name
$$;

-- Checked inside the transaction of the operation it guards. The SHARE lock makes every
-- concurrent state report wait until that transaction ends, so a node cannot fail over
-- between the check and the commit.
CREATE FUNCTION srm_refuse_if_failed_over(p_what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    LOCK TABLE node_state IN SHARE MODE;
    SELECT * INTO r FROM srm_failed_over_nodes() LIMIT 1;
    IF FOUND THEN
        PERFORM srm_raise('SRMFO',
            format('%s refused: node "%s" is failed over (state %s, reason %s)',
                   p_what, r.node_name, r.state, r.reason),
            'users cannot be added or moved while a node is failed over; fall back or '
            'recover until every node is Normal, then retry');
    END IF;
END $$;

------------------------------------------------------------------------------------------
-- Lookups
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_group_find(p_name text) RETURNS groups
LANGUAGE plpgsql AS $$
DECLARE
    g groups;
BEGIN
    SELECT * INTO g FROM groups WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM srm_raise('SRMNF', format('no group named "%s"', p_name),
                          'check the name in srmctl status');
    END IF;
    RETURN g;
END $$;

CREATE FUNCTION srm_node_find(p_name text) RETURNS nodes
LANGUAGE plpgsql AS $$
DECLARE
    n nodes;
BEGIN
    SELECT * INTO n FROM nodes WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM srm_raise('SRMNF', format('no node named "%s"', p_name),
                          'check the name in srmctl status');
    END IF;
    RETURN n;
END $$;

------------------------------------------------------------------------------------------
-- Assignment (README.md "User assignment"). Users are spread over buckets: in balanced mode
-- a bucket is a node that takes users (assignable); in active-standby mode it is a group
-- with such a node, and all of its users live on its active node (the first assignable
-- one by position). With U users and B buckets every bucket gets floor(U/B), and the
-- U mod B buckets that hold the most users now get one more. Buckets above target give up
-- their newest users; those, the unassigned users and the users outside every bucket form
-- a pool that fills the buckets below target. Only pool users change bucket: the fewest
-- moves that make the totals even. The planner's JIT is off: compiling these statements
-- costs more than running them.
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_buckets(p_mode text) RETURNS TABLE (bucket integer, node_id integer)
LANGUAGE sql STABLE AS $$
    SELECT n.id, n.id FROM nodes n WHERE p_mode = 'balanced' AND n.assignable
    UNION ALL
    SELECT * FROM (SELECT DISTINCT ON (n.group_id) n.group_id, n.id
                   FROM nodes n WHERE p_mode = 'active-standby' AND n.assignable
                   ORDER BY n.group_id, n.position) a
$$;

-- Every user with its bucket (NULL: in none).
CREATE FUNCTION srm_user_buckets(p_mode text)
RETURNS TABLE (user_id bigint, home_node_id integer, bucket integer)
LANGUAGE sql STABLE AS $$
    SELECT u.id, u.home_node_id, b.bucket
    FROM users u
    LEFT JOIN nodes n ON n.id = u.home_node_id
    LEFT JOIN srm_buckets(p_mode) b
           ON b.bucket = CASE WHEN p_mode = 'balanced' THEN n.id ELSE n.group_id END
$$;

-- The target arithmetic, over buckets given as parallel arrays (ids, current counts) and
-- the number of users to place. Buckets below target get slot numbers
-- first_slot..last_slot, consecutive in bucket order, one per missing user.
CREATE FUNCTION srm_targets(p_ids integer[], p_cnts bigint[], p_total bigint)
RETURNS TABLE (bucket integer, cnt bigint, tgt bigint, first_slot bigint, last_slot bigint)
LANGUAGE sql IMMUTABLE AS $$
    WITH b AS (
        SELECT * FROM unnest(p_ids, p_cnts) AS b(bucket, cnt)
    ), t AS (
        SELECT b.bucket, b.cnt,
               p_total / cardinality(p_ids)
               + CASE WHEN row_number() OVER (ORDER BY b.cnt DESC, b.bucket)
                           <= p_total % cardinality(p_ids) THEN 1 ELSE 0 END AS tgt
        FROM b
    ), s AS (
        SELECT t.*, greatest(t.tgt - t.cnt, 0) AS need,
               sum(greatest(t.tgt - t.cnt, 0)) OVER (ORDER BY t.bucket)::bigint AS upto
        FROM t
    )
    SELECT s.bucket, s.cnt, s.tgt, s.upto - s.need + 1, s.upto FROM s
$$;

-- Current count per bucket, as the arrays srm_targets() takes.
CREATE FUNCTION srm_bucket_counts(p_mode text, OUT ids integer[], OUT cnts bigint[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(b.bucket ORDER BY b.bucket), array_agg(coalesce(c.n, 0) ORDER BY b.bucket)
    FROM srm_buckets(p_mode) b
    LEFT JOIN (SELECT ub.bucket, count(*) AS n FROM srm_user_buckets(p_mode) ub
               WHERE ub.bucket IS NOT NULL GROUP BY ub.bucket) c USING (bucket)
$$;

-- Applies the assignment mode to every user; returns how many users changed home node
-- (unassigned users that got one included).
CREATE FUNCTION srm_assign() RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_mode text;
    v_ids integer[];
    v_cnts bigint[];
    moved bigint;
BEGIN
    SELECT assignment_mode INTO v_mode FROM cluster;
    SELECT * INTO v_ids, v_cnts FROM srm_bucket_counts(v_mode);
    IF v_mode = 'none' OR v_ids IS NULL THEN
        RETURN 0;
    END IF;
    WITH t AS (
        SELECT * FROM srm_targets(v_ids, v_cnts, (SELECT count(*) FROM users))
    ), ub AS (
        SELECT * FROM srm_user_buckets(v_mode)
    ), pool AS (
        SELECT ub.user_id FROM ub WHERE ub.bucket IS NULL
        UNION ALL
        SELECT x.user_id FROM (
            SELECT ub.user_id, t.cnt - t.tgt AS surplus,
                   row_number() OVER (PARTITION BY ub.bucket ORDER BY ub.user_id DESC) AS r
            FROM ub JOIN t USING (bucket)
            WHERE t.cnt > t.tgt
        ) x WHERE x.r <= x.surplus
    ), numbered AS (
        SELECT pool.user_id, row_number() OVER (ORDER BY pool.user_id) AS pn FROM pool
    ), slots AS (
        SELECT t.bucket, generate_series(t.first_slot, t.last_slot) AS pn FROM t
        WHERE t.tgt > t.cnt
    ), dest AS (
        SELECT p.user_id, b.node_id
        FROM numbered p JOIN slots USING (pn) JOIN srm_buckets(v_mode) b USING (bucket)
        UNION ALL
        -- active-standby: the users that stay in their group live on its active node
        SELECT ub.user_id, b.node_id
        FROM ub JOIN srm_buckets(v_mode) b USING (bucket)
        WHERE v_mode = 'active-standby'
          AND NOT EXISTS (SELECT 1 FROM pool WHERE pool.user_id = ub.user_id)
    )
    UPDATE users u SET home_node_id = d.node_id
    FROM dest d
    WHERE u.id = d.user_id AND u.home_node_id IS DISTINCT FROM d.node_id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END $$;

-- Home nodes for p_new users about to be added: slot k (1..p_new) of the targets computed
-- as if they were already counted. Adding users then writes each row once.
CREATE FUNCTION srm_new_user_slots(p_new bigint) RETURNS TABLE (pn bigint, node_id integer)
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_mode text;
    v_ids integer[];
    v_cnts bigint[];
BEGIN
    SELECT assignment_mode INTO v_mode FROM cluster;
    SELECT * INTO v_ids, v_cnts FROM srm_bucket_counts(v_mode);
    IF v_mode = 'none' OR v_ids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.pn, b.node_id
    FROM (SELECT t.bucket, generate_series(t.first_slot, t.last_slot) AS pn
          FROM srm_targets(v_ids, v_cnts, (SELECT count(*) FROM users) + p_new) t
          WHERE t.tgt > t.cnt) s
    JOIN srm_buckets(v_mode) b USING (bucket)
    WHERE s.pn <= p_new;
END $$;

-- After a change of users or nodes: keep the totals even, unless a node is failed over
-- (moving users then is refused; the next rebalance catches up).
CREATE FUNCTION srm_assign_auto() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE node_state IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM srm_failed_over_nodes()) THEN
        RETURN 0;
    END IF;
    RETURN srm_assign();
END $$;

------------------------------------------------------------------------------------------
-- Groups
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_group_create(p_name text, p_description text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM srm_lock();
    IF EXISTS (SELECT 1 FROM groups WHERE name = p_name) THEN
        PERFORM srm_raise('SRMEX', format('group "%s" already exists', p_name),
                          'choose another name');
    END IF;
    INSERT INTO groups (name, description) VALUES (p_name, coalesce(p_description, ''))
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

CREATE FUNCTION srm_group_update(p_name text, p_new_name text, p_description text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    g groups;
BEGIN
    PERFORM srm_lock();
    g := srm_group_find(p_name);
    IF p_new_name IS NOT NULL AND p_new_name <> p_name
       AND EXISTS (SELECT 1 FROM groups WHERE name = p_new_name) THEN
        PERFORM srm_raise('SRMEX', format('group "%s" already exists', p_new_name),
                          'choose another name');
    END IF;
    UPDATE groups SET name = coalesce(p_new_name, name),
                      description = coalesce(p_description, description)
    WHERE id = g.id;
    RETURN g.id;
END $$;

CREATE FUNCTION srm_group_delete(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    g groups;
    members text;
BEGIN
    PERFORM srm_lock();
    g := srm_group_find(p_name);
    SELECT string_agg(name, ', ' ORDER BY position) INTO members FROM nodes WHERE group_id = g.id;
    IF members IS NOT NULL THEN
        PERFORM srm_raise('SRMRF', format('group "%s" still has nodes (%s)', p_name, members),
                          'remove its nodes first');
    END IF;
    DELETE FROM groups WHERE id = g.id;
    RETURN g.id;
END $$;

CREATE FUNCTION srm_group_set_ha(p_name text, p_enabled boolean) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    g groups;
    c integer;
BEGIN
    PERFORM srm_lock();
    g := srm_group_find(p_name);
    SELECT count(*) INTO c FROM nodes WHERE group_id = g.id;
    IF p_enabled AND c <> 2 THEN
        PERFORM srm_raise('SRMRF',
            format('cannot enable HA on group "%s": HA needs two nodes and it has %s',
                   p_name, c),
            'add a second node to the group first');
    END IF;
    UPDATE groups SET ha_enabled = p_enabled WHERE id = g.id AND ha_enabled <> p_enabled;
    RETURN g.id;
END $$;

------------------------------------------------------------------------------------------
-- Nodes
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_node_add(p_name text, p_address text, p_group text)
RETURNS TABLE (id bigint, moved bigint)
LANGUAGE plpgsql AS $$
DECLARE
    g groups;
    members text;
    v_pos smallint;
    v_pub boolean;
BEGIN
    PERFORM srm_lock();
    IF EXISTS (SELECT 1 FROM nodes n WHERE n.name = p_name) THEN
        PERFORM srm_raise('SRMEX', format('node "%s" already exists', p_name),
                          'choose another name, or remove the node first');
    END IF;
    g := srm_group_find(p_group);
    SELECT string_agg(n.name, ', ' ORDER BY n.position) INTO members
    FROM nodes n WHERE n.group_id = g.id;
    IF (SELECT count(*) FROM nodes n WHERE n.group_id = g.id) >= 2 THEN
        PERFORM srm_raise('SRMRF',
            format('group "%s" already has two nodes (%s)', p_group, members),
            'a presence redundancy group holds at most two nodes; use another group');
    END IF;
    v_pos := CASE WHEN EXISTS (SELECT 1 FROM nodes n WHERE n.group_id = g.id AND n.position = 1)
                  THEN 2 ELSE 1 END;
    v_pub := NOT EXISTS (SELECT 1 FROM nodes);
    INSERT INTO nodes (name, address, group_id, position, is_publisher)
    VALUES (p_name, p_address, g.id, v_pos, v_pub)
    RETURNING nodes.id INTO id;
    moved := srm_assign_auto();
    RETURN NEXT;
END $$;

CREATE FUNCTION srm_node_update(p_name text, p_address text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n nodes;
BEGIN
    PERFORM srm_lock();
    n := srm_node_find(p_name);
    UPDATE nodes SET address = coalesce(p_address, address) WHERE nodes.id = n.id;
    RETURN n.id;
END $$;

-- A node that is not assignable takes no users: its users move to the other nodes as the
-- mode says (mode none: they become unassigned). Returns how many users moved.
CREATE FUNCTION srm_node_set_assignable(p_name text, p_assignable boolean) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n nodes;
    moved bigint := 0;
BEGIN
    PERFORM srm_lock();
    n := srm_node_find(p_name);
    UPDATE nodes SET assignable = p_assignable WHERE nodes.id = n.id;
    IF p_assignable THEN
        RETURN srm_assign_auto();
    END IF;
    IF EXISTS (SELECT 1 FROM users WHERE home_node_id = n.id) THEN
        PERFORM srm_refuse_if_failed_over(format('moving the users of node "%s"', p_name));
        IF (SELECT assignment_mode FROM cluster) = 'none' THEN
            UPDATE users SET home_node_id = NULL WHERE home_node_id = n.id;
            GET DIAGNOSTICS moved = ROW_COUNT;
        ELSE
            moved := srm_assign();
        END IF;
    END IF;
    RETURN moved;
END $$;

CREATE FUNCTION srm_node_remove(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n nodes;
    g groups;
    peer text;
    c bigint;
BEGIN
    PERFORM srm_lock();
    n := srm_node_find(p_name);
    SELECT * INTO g FROM groups WHERE groups.id = n.group_id FOR UPDATE;
    IF g.ha_enabled THEN
        PERFORM srm_raise('SRMRF',
            format('cannot remove node "%s": HA is enabled on its group "%s"', p_name, g.name),
            format('disable HA first (srmctl ha disable %s)', g.name));
    END IF;
    SELECT count(*) INTO c FROM users WHERE home_node_id = n.id;
    IF c > 0 THEN
        PERFORM srm_raise('SRMRF',
            format('cannot remove node "%s": %s users are assigned to it', p_name, c),
            'unassign its users first (mark the node not assignable, or assign them to '
            'other nodes)');
    END IF;
    SELECT name INTO peer FROM nodes WHERE group_id = n.group_id AND nodes.id <> n.id;
    IF n.is_publisher AND peer IS NOT NULL THEN
        PERFORM srm_raise('SRMRF',
            format('cannot remove node "%s": it is the database publisher and its group "%s" '
                   'is live (node "%s" is still in it)', p_name, g.name, peer),
            format('remove "%s" first; the publisher can leave only a group it is alone in',
                   peer));
    END IF;
    DELETE FROM nodes WHERE nodes.id = n.id;
    IF n.is_publisher THEN
        -- the oldest remaining node inherits the role
        UPDATE nodes SET is_publisher = true
        WHERE nodes.id = (SELECT min(m.id) FROM nodes m);
    END IF;
    RETURN n.id;
END $$;

------------------------------------------------------------------------------------------
-- Users. Names travel as one text, one name per line, so a bulk operation is one
-- statement whatever its size.
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_names(p_names text) RETURNS TABLE (name text, ord bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT x.name, row_number() OVER (ORDER BY x.i)
    FROM unnest(string_to_array(p_names, E'\n')) WITH ORDINALITY AS x(name, i)
    WHERE x.name <> ''
$$;

CREATE FUNCTION srm_users_add(p_names text, p_node text)
RETURNS TABLE (count bigint, moved bigint)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    n nodes;
    v_names text[];
    v_dup text;
    v_mode text;
BEGIN
    PERFORM srm_lock();
    PERFORM srm_refuse_if_failed_over('adding users');
    IF p_node IS NOT NULL THEN
        n := srm_node_find(p_node);
        IF NOT n.assignable THEN
            PERFORM srm_raise('SRMRF',
                format('node "%s" does not take users (it is marked not assignable)', p_node),
                'choose another node, or mark it assignable again');
        END IF;
    END IF;
    v_names := ARRAY(SELECT x.name FROM srm_names(p_names) x ORDER BY x.ord);
    SELECT x.name INTO v_dup FROM unnest(v_names) WITH ORDINALITY AS x(name, ord)
    GROUP BY x.name HAVING count(*) > 1 ORDER BY min(x.ord) LIMIT 1;
    IF v_dup IS NOT NULL THEN
        PERFORM srm_raise('SRMIV', format('user "%s" appears twice in the list', v_dup),
                          'list each user once; nothing was added');
    END IF;
    SELECT x.name INTO v_dup FROM unnest(v_names) WITH ORDINALITY AS x(name, ord)
    JOIN users u ON u.name = x.name ORDER BY x.ord LIMIT 1;
    IF v_dup IS NOT NULL THEN
        PERFORM srm_raise('SRMEX', format('user "%s" already exists', v_dup),
                          'leave existing users out of the list; nothing was added');
    END IF;
    moved := 0;
    IF p_node IS NOT NULL THEN
        INSERT INTO users (name, home_node_id) SELECT x, n.id FROM unnest(v_names) x;
        GET DIAGNOSTICS count = ROW_COUNT;
    ELSE
        INSERT INTO users (name, home_node_id)
        SELECT x.name, s.node_id
        FROM unnest(v_names) WITH ORDINALITY AS x(name, ord)
        LEFT JOIN srm_new_user_slots(cardinality(v_names)) s ON s.pn = x.ord
        ORDER BY x.ord;
        GET DIAGNOSTICS count = ROW_COUNT;
        SELECT assignment_mode INTO v_mode FROM cluster;
        IF EXISTS (SELECT 1 FROM srm_buckets(v_mode)) THEN
            -- every new user found a slot; place whatever else is off target
            moved := count + srm_assign();
        END IF;
    END IF;
    RETURN NEXT;
END $$;

CREATE FUNCTION srm_users_remove(p_names text) RETURNS TABLE (count bigint, moved bigint)
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM srm_lock();
    DELETE FROM users u USING srm_names(p_names) x WHERE u.name = x.name;
    GET DIAGNOSTICS count = ROW_COUNT;
    moved := srm_assign_auto();
    RETURN NEXT;
END $$;

-- Assigns the users to a node by hand (p_node NULL: unassigns them).
CREATE FUNCTION srm_users_assign(p_names text, p_node text) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    n nodes;
    v_missing text;
    c bigint;
BEGIN
    PERFORM srm_lock();
    PERFORM srm_refuse_if_failed_over('assigning users');
    IF p_node IS NOT NULL THEN
        n := srm_node_find(p_node);
        IF NOT n.assignable THEN
            PERFORM srm_raise('SRMRF',
                format('node "%s" does not take users (it is marked not assignable)', p_node),
                'choose another node, or mark it assignable again');
        END IF;
    END IF;
    SELECT x.name INTO v_missing FROM srm_names(p_names) x
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.name = x.name) ORDER BY x.ord LIMIT 1;
    IF v_missing IS NOT NULL THEN
        PERFORM srm_raise('SRMNF', format('no user named "%s"', v_missing),
                          'add the user first; nothing was assigned');
    END IF;
    UPDATE users u SET home_node_id = n.id
    FROM srm_names(p_names) x
    WHERE u.name = x.name AND u.home_node_id IS DISTINCT FROM n.id;
    GET DIAGNOSTICS c = ROW_COUNT;
    RETURN c;
END $$;

CREATE FUNCTION srm_users_list(p_after text, p_node text, p_unassigned boolean, p_limit integer)
RETURNS TABLE (id bigint, name text, node text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_node integer;
BEGIN
    IF p_node IS NOT NULL THEN
        SELECT n.id INTO v_node FROM nodes n WHERE n.name = p_node;
        IF NOT FOUND THEN
            PERFORM srm_raise('SRMNF', format('no node named "%s"', p_node),
                              'check the name in srmctl status');
        END IF;
    END IF;
    RETURN QUERY
    SELECT u.id, u.name, n.name
    FROM users u LEFT JOIN nodes n ON n.id = u.home_node_id
    WHERE (p_after IS NULL OR u.name > p_after)
      AND (v_node IS NULL OR u.home_node_id = v_node)
      AND (NOT p_unassigned OR u.home_node_id IS NULL)
    ORDER BY u.name
    LIMIT p_limit;
END $$;

CREATE FUNCTION srm_rebalance() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srm_lock();
    PERFORM srm_refuse_if_failed_over('rebalancing users');
    RETURN srm_assign();
END $$;

CREATE FUNCTION srm_assignment_mode_set(p_mode text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srm_lock();
    UPDATE cluster SET assignment_mode = p_mode, updated_at = now()
    WHERE assignment_mode <> p_mode;
    RETURN 0;
END $$;

------------------------------------------------------------------------------------------
-- Parameters
------------------------------------------------------------------------------------------
-- Row checks: the parameter may be set at this scope, and the value is in range.
CREATE FUNCTION srm_param_row_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d param_defs;
BEGIN
    SELECT * INTO d FROM param_defs WHERE name = NEW.name;
    IF NEW.node_id IS NOT NULL AND NOT d.per_node THEN
        PERFORM srm_raise('SRMIV',
            format('parameter %s is cluster-wide and cannot be set per node', NEW.name),
            'set it without a node');
    END IF;
    IF NEW.value < d.min_value OR NEW.value > d.max_value THEN
        PERFORM srm_raise('SRMRG',
            format('%s = %s is out of range: allowed %s to %s%s', NEW.name, NEW.value,
                   d.min_value, d.max_value, CASE WHEN d.unit = '' THEN '' ELSE ' ' || d.unit END),
            'choose a value in the allowed range');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER params_row_check BEFORE INSERT OR UPDATE ON params
FOR EACH ROW EXECUTE FUNCTION srm_param_row_check();

-- Effective value: per-node value, else cluster-wide value, else the default.
CREATE FUNCTION srm_param_effective(p_name text, p_node_id integer) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT value FROM params WHERE name = p_name AND node_id = p_node_id),
        (SELECT value FROM params WHERE name = p_name AND node_id IS NULL),
        (SELECT default_value FROM param_defs WHERE name = p_name))
$$;

-- Rules between parameters (README.md "Parameters").
CREATE FUNCTION srm_params_check() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ki bigint := srm_param_effective('keepalive_interval', NULL);
    kt bigint := srm_param_effective('keepalive_timeout', NULL);
    it bigint := srm_param_effective('init_keepalive_timeout', NULL);
    r record;
BEGIN
    IF kt < 2 * ki THEN
        PERFORM srm_raise('SRMRG',
            format('keepalive_timeout (%s s) must be at least twice keepalive_interval (%s s)',
                   kt, ki),
            'raise keepalive_timeout or lower keepalive_interval first');
    END IF;
    IF it < 2 * ki THEN
        PERFORM srm_raise('SRMRG',
            format('init_keepalive_timeout (%s s) must be at least twice keepalive_interval '
                   '(%s s)', it, ki),
            'raise init_keepalive_timeout or lower keepalive_interval first');
    END IF;
    FOR r IN
        SELECT NULL::text AS node, srm_param_effective('relogin_lower', NULL) AS lo,
               srm_param_effective('relogin_upper', NULL) AS hi
        UNION ALL
        SELECT n.name, srm_param_effective('relogin_lower', n.id),
               srm_param_effective('relogin_upper', n.id)
        FROM nodes n
    LOOP
        IF r.lo > r.hi THEN
            PERFORM srm_raise('SRMRG',
                format('relogin_lower (%s s) must not exceed relogin_upper (%s s)%s', r.lo, r.hi,
                       CASE WHEN r.node IS NULL THEN ' (cluster-wide)'
                            ELSE format(' on node "%s"', r.node) END),
                'change them in an order that keeps relogin_lower <= relogin_upper');
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION srm_params_check_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srm_params_check();
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER params_rules AFTER INSERT OR UPDATE OR DELETE ON params
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION srm_params_check_trigger();

CREATE FUNCTION srm_param_def_find(p_name text) RETURNS param_defs
LANGUAGE plpgsql AS $$
DECLARE
    d param_defs;
BEGIN
    SELECT * INTO d FROM param_defs WHERE name = p_name;
    IF NOT FOUND THEN
        PERFORM srm_raise('SRMNF', format('no parameter named "%s"', p_name),
            'known parameters: ' || (SELECT string_agg(name, ', ' ORDER BY name) FROM param_defs));
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION srm_param_set(p_name text, p_node text, p_value bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    d param_defs;
    n nodes;
BEGIN
    PERFORM srm_lock();
    d := srm_param_def_find(p_name);
    IF p_node IS NULL THEN
        INSERT INTO params (name, node_id, value) VALUES (p_name, NULL, p_value)
        ON CONFLICT (name) WHERE node_id IS NULL
        DO UPDATE SET value = EXCLUDED.value, updated_at = now();
    ELSE
        n := srm_node_find(p_node);
        INSERT INTO params (name, node_id, value) VALUES (p_name, n.id, p_value)
        ON CONFLICT (name, node_id) WHERE node_id IS NOT NULL
        DO UPDATE SET value = EXCLUDED.value, updated_at = now();
    END IF;
    PERFORM srm_params_check();
    RETURN p_value;
END $$;

-- Removes the value set at this scope: the parameter falls back to the wider one.
CREATE FUNCTION srm_param_reset(p_name text, p_node text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    d param_defs;
    n nodes;
BEGIN
    PERFORM srm_lock();
    d := srm_param_def_find(p_name);
    IF p_node IS NULL THEN
        DELETE FROM params WHERE name = p_name AND node_id IS NULL;
    ELSE
        n := srm_node_find(p_node);
        DELETE FROM params WHERE name = p_name AND node_id = n.id;
    END IF;
    PERFORM srm_params_check();
    RETURN 0;
END $$;

CREATE FUNCTION srm_param_get(p_name text, p_node text)
RETURNS TABLE (value bigint, source text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d param_defs;
    v_node integer;
BEGIN
    d := srm_param_def_find(p_name);
    IF p_node IS NOT NULL THEN
        SELECT n.id INTO v_node FROM nodes n WHERE n.name = p_node;
        IF NOT FOUND THEN
            PERFORM srm_raise('SRMNF', format('no node named "%s"', p_node),
                              'check the name in srmctl status');
        END IF;
        SELECT p.value, 'node' INTO value, source
        FROM params p WHERE p.name = p_name AND p.node_id = v_node;
        IF FOUND THEN
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    SELECT p.value, 'cluster' INTO value, source
    FROM params p WHERE p.name = p_name AND p.node_id IS NULL;
    IF NOT FOUND THEN
        value := d.default_value;
        source := 'default';
    END IF;
    RETURN NEXT;
END $$;

------------------------------------------------------------------------------------------
-- Node state and history
------------------------------------------------------------------------------------------
-- Records one transition: the node's current state and a history row, in one transaction.
-- A report already recorded under (p_source, p_seq) is not recorded again: the library
-- re-sends reports whose outcome it did not learn.
CREATE FUNCTION srm_node_state_report(p_node text, p_old_state text, p_old_reason text,
                                      p_new_state text, p_new_reason text, p_cause text,
                                      p_at_us bigint, p_source text, p_seq bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n nodes;
    g groups;
    v_at timestamptz := srm_from_us(p_at_us);
    hid bigint;
BEGIN
    SELECT * INTO n FROM nodes WHERE name = p_node FOR KEY SHARE;
    IF NOT FOUND THEN
        PERFORM srm_raise('SRMNF', format('no node named "%s"', p_node),
                          'add the node to the configuration (srmctl) before starting srmd on it');
    END IF;
    IF p_source IS NOT NULL THEN
        SELECT h.id INTO hid FROM history h WHERE h.source = p_source AND h.source_seq = p_seq;
        IF FOUND THEN
            RETURN hid;
        END IF;
    END IF;
    SELECT * INTO g FROM groups WHERE id = n.group_id;
    INSERT INTO node_state AS s (node_id, state, reason, since)
    VALUES (n.id, p_new_state, p_new_reason, v_at)
    ON CONFLICT (node_id) DO UPDATE
        SET state = EXCLUDED.state, reason = EXCLUDED.reason, since = EXCLUDED.since,
            updated_at = now()
        WHERE s.since <= EXCLUDED.since;
    INSERT INTO history (at, node_id, node_name, group_id, group_name, old_state, old_reason,
                         new_state, new_reason, cause, source, source_seq)
    VALUES (v_at, n.id, n.name, g.id, g.name, p_old_state, p_old_reason, p_new_state,
            p_new_reason, coalesce(p_cause, ''), p_source, p_seq)
    RETURNING id INTO hid;
    RETURN hid;
END $$;

-- History rows after p_after (oldest first, at most p_limit), or the last p_last rows
-- (oldest first). Both walk the primary key index: the history only grows.
CREATE FUNCTION srm_history_rows(p_after bigint, p_last integer, p_limit integer)
RETURNS TABLE (id bigint, at_us bigint, node_id integer, node_name text, group_name text,
               old_state text, old_reason text, new_state text, new_reason text, cause text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_last IS NOT NULL THEN
        RETURN QUERY
        SELECT x.* FROM (
            SELECT h.id, srm_us(h.at), h.node_id, h.node_name, h.group_name, h.old_state::text,
                   h.old_reason::text, h.new_state::text, h.new_reason::text, h.cause
            FROM history h ORDER BY h.id DESC LIMIT p_last
        ) x ORDER BY x.id;
    ELSE
        RETURN QUERY
        SELECT h.id, srm_us(h.at), h.node_id, h.node_name, h.group_name, h.old_state::text,
               h.old_reason::text, h.new_state::text, h.new_reason::text, h.cause
        FROM history h WHERE h.id > coalesce(p_after, 0) ORDER BY h.id LIMIT p_limit;
    END IF;
END $$;

------------------------------------------------------------------------------------------
-- The configuration snapshot: one statement, so one consistent view, returned as the JSON
-- document that the library parses (and that the local cache stores, README.md).
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_config_snapshot() RETURNS text
LANGUAGE sql STABLE SET jit = off AS $$
    WITH counts AS (
        SELECT home_node_id AS node_id, count(*) AS n FROM users GROUP BY home_node_id
    ), eff AS (
        SELECT n.id AS node_id,
               jsonb_object_agg(d.name, coalesce(pn.value, pc.value, d.default_value)) AS params
        FROM nodes n CROSS JOIN param_defs d
        LEFT JOIN params pn ON pn.name = d.name AND pn.node_id = n.id
        LEFT JOIN params pc ON pc.name = d.name AND pc.node_id IS NULL
        GROUP BY n.id
    )
    SELECT jsonb_build_object(
        'schema_version', (SELECT max(version) FROM schema_version),
        'taken_at_us', srm_us(now()),
        'assignment_mode', (SELECT assignment_mode FROM cluster),
        'params', (SELECT jsonb_object_agg(d.name, coalesce(pc.value, d.default_value))
                   FROM param_defs d
                   LEFT JOIN params pc ON pc.name = d.name AND pc.node_id IS NULL),
        'groups', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'id', g.id, 'name', g.name, 'description', g.description,
                                'ha_enabled', g.ha_enabled) ORDER BY g.name)
                            FROM groups g), '[]'::jsonb),
        'nodes', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                'id', n.id, 'name', n.name, 'address', n.address,
                                'group_id', n.group_id, 'position', n.position,
                                'is_publisher', n.is_publisher, 'assignable', n.assignable,
                                'users', coalesce(c.n, 0), 'state', s.state,
                                'reason', s.reason, 'state_since_us', srm_us(s.since),
                                'params', e.params)) ORDER BY n.name)
                           FROM nodes n
                           LEFT JOIN counts c ON c.node_id = n.id
                           LEFT JOIN node_state s ON s.node_id = n.id
                           LEFT JOIN eff e ON e.node_id = n.id), '[]'::jsonb),
        'users_total', (SELECT coalesce(sum(n), 0) FROM counts),
        'users_unassigned', coalesce((SELECT n FROM counts WHERE node_id IS NULL), 0)
    )::text
$$;

------------------------------------------------------------------------------------------
-- Invariants that span rows, checked at commit whatever client made the change.
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_check_invariants() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
    pubs bigint;
    total bigint;
BEGIN
    SELECT g.name, count(n.id) AS c INTO bad
    FROM groups g LEFT JOIN nodes n ON n.group_id = g.id
    WHERE g.ha_enabled GROUP BY g.id, g.name HAVING count(n.id) <> 2 LIMIT 1;
    IF FOUND THEN
        PERFORM srm_raise('SRMRF',
            format('HA is enabled on group "%s" but it has %s node(s); HA needs two nodes',
                   bad.name, bad.c),
            'disable HA on the group before removing one of its nodes');
    END IF;
    SELECT count(*) FILTER (WHERE is_publisher), count(*) INTO pubs, total FROM nodes;
    IF total > 0 AND pubs <> 1 THEN
        PERFORM srm_raise('SRMRF',
            format('the cluster must have exactly one publisher node, it has %s', pubs),
            'remove and add nodes through srmctl, which keeps the publisher');
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER nodes_invariants AFTER INSERT OR UPDATE OR DELETE ON nodes
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION srm_check_invariants();
CREATE CONSTRAINT TRIGGER groups_invariants AFTER INSERT OR UPDATE ON groups
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION srm_check_invariants();

-- SPEC.md §2: a node with users cannot be removed, nor the publisher from a live group (one
-- that still has its other node).
CREATE FUNCTION srm_node_delete_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srm_lock(); -- no user can be assigned to it until this transaction ends
    IF EXISTS (SELECT 1 FROM users WHERE home_node_id = OLD.id) THEN
        PERFORM srm_raise('SRMRF', format('cannot remove node "%s": users are assigned to it',
                                          OLD.name),
                          'unassign its users first');
    END IF;
    IF OLD.is_publisher AND EXISTS (SELECT 1 FROM nodes
                                    WHERE group_id = OLD.group_id AND id <> OLD.id) THEN
        PERFORM srm_raise('SRMRF',
            format('cannot remove node "%s": it is the database publisher and its group is live',
                   OLD.name),
            'remove the other node of its group first');
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER nodes_delete_check BEFORE DELETE ON nodes
FOR EACH ROW EXECUTE FUNCTION srm_node_delete_check();

------------------------------------------------------------------------------------------
-- Change notification (README.md "NOTIFY"). One channel, srm_config; the payload is a
-- small JSON object: {"table": ..., "op": ..., "id": ..., "node": ..., "group": ...}.
-- TG_ARGV names the columns that give id, node and group ('' for none).
------------------------------------------------------------------------------------------
CREATE FUNCTION srm_notify_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    p jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := to_jsonb(OLD);
    ELSE
        r := to_jsonb(NEW);
    END IF;
    p := jsonb_build_object('table', TG_TABLE_NAME, 'op', lower(TG_OP));
    IF TG_ARGV[0] <> '' THEN
        p := p || jsonb_build_object('id', r -> TG_ARGV[0]);
    END IF;
    IF TG_ARGV[1] <> '' THEN
        p := p || jsonb_build_object('node', r -> TG_ARGV[1]);
    END IF;
    IF TG_ARGV[2] <> '' THEN
        p := p || jsonb_build_object('group', r -> TG_ARGV[2]);
    END IF;
    PERFORM pg_notify('srm_config', jsonb_strip_nulls(p)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER cluster_notify AFTER INSERT OR UPDATE OR DELETE ON cluster
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('', '', '');
CREATE TRIGGER groups_notify AFTER INSERT OR UPDATE OR DELETE ON groups
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('id', '', 'id');
CREATE TRIGGER nodes_notify AFTER INSERT OR UPDATE OR DELETE ON nodes
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('id', 'id', 'group_id');
CREATE TRIGGER params_notify AFTER INSERT OR UPDATE OR DELETE ON params
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('', 'node_id', '');
CREATE TRIGGER node_state_notify AFTER INSERT OR UPDATE OR DELETE ON node_state
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('', 'node_id', '');
CREATE TRIGGER history_notify AFTER INSERT ON history
FOR EACH ROW EXECUTE FUNCTION srm_notify_row('id', 'node_id', 'group_id');

-- Users change in bulk, so their triggers run once per statement over the set of changed
-- rows: they check that every home node exists (the foreign key, set-based) and send one
-- notification per node concerned (a payload without "node" means unassigned users).
CREATE FUNCTION srm_users_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    nid integer;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM srm_lock(); -- no node can be removed until this transaction ends
        SELECT r.home_node_id INTO nid FROM new_rows r
        WHERE r.home_node_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.home_node_id)
        LIMIT 1;
        IF FOUND THEN
            PERFORM srm_raise('23503', format('users refer to node id %s, which does not exist',
                                              nid),
                              'assign users only to existing nodes');
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        FOR nid IN SELECT DISTINCT home_node_id FROM new_rows LOOP
            PERFORM pg_notify('srm_config', jsonb_strip_nulls(jsonb_build_object(
                'table', 'users', 'op', 'insert', 'node', nid))::text);
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR nid IN SELECT DISTINCT home_node_id FROM old_rows LOOP
            PERFORM pg_notify('srm_config', jsonb_strip_nulls(jsonb_build_object(
                'table', 'users', 'op', 'delete', 'node', nid))::text);
        END LOOP;
    ELSE
        FOR nid IN SELECT home_node_id FROM new_rows UNION SELECT home_node_id FROM old_rows
        LOOP
            PERFORM pg_notify('srm_config', jsonb_strip_nulls(jsonb_build_object(
                'table', 'users', 'op', 'update', 'node', nid))::text);
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_changed_insert AFTER INSERT ON users
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION srm_users_changed();
CREATE TRIGGER users_changed_update AFTER UPDATE ON users
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION srm_users_changed();
CREATE TRIGGER users_changed_delete AFTER DELETE ON users
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION srm_users_changed();
