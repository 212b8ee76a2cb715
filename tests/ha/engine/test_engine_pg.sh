#!/usr/bin/env bash
# srm-engine with its users in PostgreSQL (a throwaway server, scripts/pg-tmp): the users of
# a partition are those whose home node is the partition's node. The engine loads its own
# and its peer's users when srmd says hello, logs them in once granted, and loads a
# partition it never heard of when srmd grants it (SERVE carries the node's name).
TEST=engine-pg
# shellcheck source=../ipc/lib.sh
. "$SRM_SOURCE_DIR/tests/ha/ipc/lib.sh"

N=10000
N3=500
DATA="$RUN/data"
ERUN="$RUN/engine"
PGDIR="$RUN/pg"
DB_FILL="$BIN/tests/ha/engine/db-fill"
[ -x "$ENGINE" ] && [ -x "$DS_PROBE" ] && [ -x "$DB_FILL" ] || fail "test programs not built in $BIN"

pg_stop() { [ -d "$PGDIR" ] && "$SRC/scripts/pg-tmp" stop "$PGDIR" >/dev/null 2>&1; return 0; }
CLEANUP_HOOKS+=(pg_stop)
envline=$("$SRC/scripts/pg-tmp" start "$PGDIR" $((57000 + $$ % 1000))) || fail "PostgreSQL did not start"
for kv in $envline; do export "${kv?}"; done
t=$(now_ms)
"$DB_FILL" $N $N $N3 || fail "db-fill failed"
log "PostgreSQL up with $((2 * N + N3)) users ($(($(now_ms) - t)) ms to add them)"


"$DS_PROBE" "$DATA" 1 owner 1 1 5 >/dev/null
"$DS_PROBE" "$DATA" 1 owner 2 2 3 >/dev/null
"$DS_PROBE" "$DATA" 1 owner 3 1 1 >/dev/null
server srv --ping 200 --misses 5 --allow-uid 0
spawn eng "$ENGINE" --node n1 --node-id 1 --dir "$ERUN" --data-dir "$DATA" --ipc "$IPC" \
    --quorum off --login-rate 50000 --log-level info
line=$(wait_for eng "partition 1 \(n1\): $N users loaded in [0-9]+ ms" 20)
measure users_loaded_from_pg "$(sed 's/.*(\([0-9.]*\) users\/s).*/\1/' <<<"$line")" users/s
wait_for eng "partition 2 \(n2\): $N users loaded" 20 >/dev/null
log "own and peer users loaded from PostgreSQL"

to srv autolease 5000
t=$(now_ms)
to srv serve srm-engine 1 5 5000 n1
until_ok 30 '[ "$(pv 1 client)" = $N ]'
measure logins_per_s $((N * 1000 / ($(now_ms) - t + 1))) users/s
until_ok 30 '[ "$(pv 2 inactive)" = $N ]'
s=$("$DS_PROBE" "$DATA" 1 stats 1)
[ "$(field "$s" active)" = $N ] && [ "$(field "$s" inactive)" = $N ] || fail "partition 1: $s"
log "logged in: ok"

# A partition the engine never loaded: loaded on SERVE, by the node name it carries.
to srv serve srm-engine 3 1 5000 n3
wait_for srv "ack .*name=srm-engine .*type=SERVE result=0" 5 1 >/dev/null
wait_for eng "partition 3 \(n3\): loading users from the configuration database" 5 >/dev/null
wait_for eng "partition 3 \(n3\): $N3 users loaded" 20 >/dev/null
until_ok 20 '[ "$(pv 3 client)" = $N3 ]'
[ "$(field "$("$DS_PROBE" "$DATA" 1 stats 3)" active)" = $N3 ] || fail "partition 3 not logged in"
log "partition loaded on SERVE: ok"

kill -TERM "$PID_eng"
wait_for eng "srm-engine stopped" 10 >/dev/null
gone "$PID_eng"
to srv quit
gone "$PID_srv"
log "done"
