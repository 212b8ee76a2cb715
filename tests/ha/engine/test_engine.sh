#!/usr/bin/env bash
# srm-engine against srmd's IPC side (ipc-server-probe) with a real datastore and users from
# a file. ds-probe plays srmd's part for ownership and reads what the engine wrote. Shows:
# users loaded; logins, presence and SIP registrations written under the granted epoch;
# inactive sessions of the peer's users (dual connection) kept in this node's own
# partition; a takeover accepted at once with the counters moved by the bulk rule and the
# sessions activated lazily; a stale epoch refused by the datastore, reported, and the
# partition stopped; RELEASE with re-login delays; lease expiry; the control interface
# (service down/up, failed start); the counters srmd receives; an orderly stop.
TEST=engine
# shellcheck source=../ipc/lib.sh
. "$SRM_SOURCE_DIR/tests/ha/ipc/lib.sh"

N=2000
DATA="$RUN/data"
ERUN="$RUN/engine"
[ -x "$ENGINE" ] && [ -x "$DS_PROBE" ] || fail "srm-engine or ds-probe not built in $BIN"
for i in $(seq 1 $N); do
    echo "u$i@example.org 1"
    echo "p$i@example.org 2"
done >"$RUN/users.txt"
echo "# not ours" >>"$RUN/users.txt"
echo "x1@example.org 3" >>"$RUN/users.txt"

ctl() { "$ENGINE" ctl --dir "$ERUN" "$@"; }
stats() { "$DS_PROBE" "$DATA" 1 stats "$1"; }

# srmd's part: node 1 owns partition 1 (epoch 5), node 2 owns partition 2 (epoch 3).
"$DS_PROBE" "$DATA" 1 owner 1 1 5 >/dev/null
"$DS_PROBE" "$DATA" 1 owner 2 2 3 >/dev/null
server srv --ping 200 --misses 5 --allow-uid 0
spawn eng "$ENGINE" --node n1 --node-id 1 --dir "$ERUN" --data-dir "$DATA" --ipc "$IPC" \
    --users-from-file "$RUN/users.txt" --quorum off --login-rate 20000 --presence-rate 2000 \
    --sip-expiry 60 --log-level info
wait_for srv "connected id=[0-9]+ name=srm-engine " 10 >/dev/null
wait_for srv "service name=xcp-router client=[0-9]+ critical=1 up=1" 5 >/dev/null
wait_for srv "service name=presence-engine client=[0-9]+ critical=1 up=1" 5 >/dev/null
wait_for eng "partition 1 \(n1\): $N users loaded" 10 >/dev/null
wait_for eng "partition 2 \(n2\): $N users loaded" 10 >/dev/null
log "engine up, users loaded"

# ---- serving its own partition; backing up the peer's
to srv autolease 3000
to srv serve srm-engine 1 5 3000 n1
line=$(wait_for srv "ack .*name=srm-engine .*type=SERVE result=0" 5)
measure serve_ack_rtt "$(field "$line" rtt_us)" us
until_ok 20 '[ "$(pv 1 client)" = $N ] && [ "$(pv 1 active)" = $N ]'
until_ok 20 '[ "$(pv 2 inactive)" = $N ] && [ "$(pv 2 client_inactive)" = $N ] && [ "$(pv 2 backup)" = 1 ]'
s=$(stats 1)
[ "$(field "$s" active)" = $N ] && [ "$(field "$s" inactive)" = $N ] || fail "partition 1: $s"
[ "$(field "$s" sip)" = $N ] && [ "$(field "$s" presence)" = $N ] || fail "partition 1: $s"
[ "$(field "$s" epochs)" = "5:$((4 * N))" ] || fail "partition 1: writes not all under epoch 5: $s"
[ "$(field "$s" sessions)" = "backup-1:inactive:$N,node-1:active:$N" ] ||
    [ "$(field "$s" sessions)" = "node-1:active:$N,backup-1:inactive:$N" ] || fail "partition 1 sessions: $s"
[ "$(field "$(stats 2)" login)" = 0 ] || fail "the engine wrote to partition 2 without a grant"
wait_for srv "counters id=[0-9]+ name=srm-engine p1=$N/0/$N/0 p2=0/$N/0/$N users_served=$N " 5 >/dev/null
log "serving partition 1, inactive sessions for partition 2: ok"

# ---- takeover of the peer's partition: O(1) accept, bulk counters, lazy activation
"$DS_PROBE" "$DATA" 1 owner 2 1 7 >/dev/null
to srv serve srm-engine 2 7 3000 n2
line=$(wait_for srv "ack .*name=srm-engine .*type=SERVE result=0" 5 1)
measure takeover_serve_ack_rtt "$(field "$line" rtt_us)" us
until_ok 5 '[ "$(pv 2 served)" = 1 ] && [ "$(pv 2 active)" = $N ] && [ "$(pv 2 inactive)" = 0 ]'
until_ok 20 '[ "$(pv 2 client)" = $N ] && [ "$(pv 2 client_inactive)" = 0 ]'
measure takeover_all_sessions_active "$(pv 2 all_clients_ms)" ms
s=$(stats 2)
[ "$(field "$s" active)" = $N ] || fail "partition 2 after takeover: $s"
[ "$(field "$s" sessions)" = "node-1:active:$N" ] || fail "partition 2 sessions: $s"
[ "$(field "$(stats 1)" inactive)" = 0 ] || fail "inactive sessions left in partition 1: $(stats 1)"
case "$(field "$s" epochs)" in 7:*) ;; *) fail "partition 2 written under another epoch: $s" ;; esac
log "takeover: ok"

# ---- ownership moves on behind the engine's back: refused, reported, stopped
"$DS_PROBE" "$DATA" 1 owner 2 2 8 >/dev/null
wait_for srv "stale id=[0-9]+ name=srm-engine part=2 epoch=7 error=SRM_ENOTOWNER" 10 >/dev/null
wait_for eng "partition 2: the datastore refused a write under epoch 7 \(SRM_ENOTOWNER\)" 5 >/dev/null
wait_for srv "serving id=[0-9]+ name=srm-engine reason=stale-epoch .*parts=1:5:serving$" 5 >/dev/null
until_ok 5 '[ "$(pv 2 served)" = 0 ] && [ "$(ev stale_refusals)" -ge 1 ]'
case "$(field "$(stats 2)" epochs)" in 7:*) ;; *) fail "partition 2: $(stats 2)" ;; esac
log "stale epoch: ok"

# ---- RELEASE: users told to re-login within the window
to srv release srm-engine 1 2000 1 2
wait_for srv "ack .*name=srm-engine .*type=RELEASE result=0" 5 >/dev/null
wait_for eng "stopped serving partition 1 \(released by srmd\): $N users told to re-login after a delay in \[1, 2\] s" 5 >/dev/null
until_ok 5 '[ "$(pv 1 served)" = 0 ] && [ "$(pv 1 active)" = 0 ]'
log "release: ok"

# ---- lease expiry: srmd stops renewing
to srv autolease 0
to srv serve srm-engine 1 5 1000 n1
wait_for srv "ack .*name=srm-engine .*type=SERVE result=0" 5 2 >/dev/null
wait_for eng "libsrm took every partition away: lease-expired" 10 >/dev/null
until_ok 5 '[ "$(pv 1 served)" = 0 ] && [ "$(ev lease_expiries)" = 1 ]'
log "lease expiry: ok"

# ---- control interface: a critical service dies and comes back, a start fails
ctl service-down xcp-router "killed by test" >/dev/null
wait_for srv 'health name=xcp-router client=[0-9]+ up=0 detail="killed by test"' 5 >/dev/null
ctl service-up xcp-router >/dev/null
wait_for srv 'health name=xcp-router client=[0-9]+ up=1' 5 >/dev/null
to srv stop srm-engine
wait_for srv "ack .*name=srm-engine .*type=STOP_SERVICES result=0" 5 >/dev/null
wait_for srv 'health name=presence-engine client=[0-9]+ up=0 detail="stopped by srmd"' 5 >/dev/null
ctl fail-next-start >/dev/null
to srv start srm-engine
wait_for srv "ack .*name=srm-engine .*type=START_SERVICES result=EIO" 5 >/dev/null
to srv start srm-engine
wait_for srv "ack .*name=srm-engine .*type=START_SERVICES result=0" 5 >/dev/null
wait_for srv 'health name=xcp-router client=[0-9]+ up=1' 5 1 >/dev/null
! ctl no-such-command 2>/dev/null || fail "ctl accepted an unknown command"
[ -s "$ERUN/status.json" ] || fail "no status file"
ctl status | grep -q '"ActiveJsmSessions":' || fail "status: no JSON counters"
log "control interface: ok"

# ---- an orderly stop: srmd hears that nothing is served
to srv autolease 3000
to srv serve srm-engine 1 5 3000 n1
wait_for srv "serving id=[0-9]+ name=srm-engine reason=granted .*parts=1:5:serving" 5 1 >/dev/null
kill -TERM "$PID_eng"
wait_for srv "serving id=[0-9]+ name=srm-engine reason=closed .*parts=-" 5 >/dev/null
wait_for srv "disconnected id=[0-9]+ name=srm-engine .*reason=0" 5 >/dev/null
gone "$PID_eng"
wait_for eng "srm-engine stopped" 5 >/dev/null
to srv quit
gone "$PID_srv"
log "done"
