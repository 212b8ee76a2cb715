#!/usr/bin/env bash
# Heartbeats on a real 3-node Corosync cluster in network namespaces (token 1000 ms,
# token_coefficient 0): hb-probe members of group srm.g1 on n1 and n2 (n3 only adds a vote,
# so that an isolated node loses quorum). Shows, with real processes and real faults:
#   kill -9 of the probe            -> PROCESS loss, at once
#   a new probe                     -> peer back, RESTARTED (new incarnation)
#   SIGSTOP of the probe            -> TIMEOUT after the keepalive timeout; SIGCONT -> RETURNED
#   announced restart, back in time -> no loss at all, RESTARTED
#   announced restart, not back     -> TIMEOUT (never PROCESS)
#   kill -9 of corosync on n1       -> NODE loss on n2; n1 loses quorum and its connection,
#                                      reconnects when corosync is back
#   nft partition of n1             -> n1 learns it lost quorum before (or with) losing its
#                                      peer; n2 stays quorate and reports NODE loss; heal -> back
# Membership detection times are printed (MEASURE lines), never asserted.
TEST=hbi
NET=10.242.0
# shellcheck source=tests/heartbeat/lib.sh
. "$(dirname "$0")/lib.sh"

# Keepalive timeout 4 s: longer than Corosync's membership detection (~2.2 s with token
# 1000), as in production (60 s), so membership faults are seen as NODE/PROCESS, not TIMEOUT.
OPTS=(--interval 300 --timeout 4000 --init-timeout 10000 --reconnect 300)

log "up: 3 nodes"
cluster up --nodes 3 --no-pg | sed "s/^/$TEST   /"

probe p1 n1 2 "${OPTS[@]}"
probe p2 n2 1 "${OPTS[@]}"
wait_event p1 'event=peer_back kind=first' 10 >/dev/null
wait_event p2 'event=peer_back kind=first' 10 >/dev/null
log "both probes see each other"

# --- kill -9 of the probe: PROCESS loss
t=$(now_ms)
kill -KILL "$PID_p1"
line=$(wait_event p2 'event=peer_lost' 10)
grep -q 'kind=process' <<<"$line" || fail "kill -9 of the probe: expected PROCESS loss: $line"
measure process_loss_after_kill9 "$t" "$line"
gone "$PID_p1"

# --- a new process: RESTARTED, after a loss
probe p1 n1 2 "${OPTS[@]}"
line=$(wait_event p2 'event=peer_back kind=restarted' 10)
grep -q 'was_lost=1' <<<"$line" || fail "restart after kill: $line"
log "restart seen with a new incarnation"

# --- SIGSTOP: TIMEOUT after the keepalive timeout; SIGCONT: RETURNED
lost_before=$(count p2 'event=peer_lost')
t=$(now_ms)
kill -STOP "$PID_p1"
line=$(wait_event p2 'event=peer_lost' 15 "$lost_before")
grep -q 'kind=timeout during_init=0' <<<"$line" || fail "SIGSTOP: expected TIMEOUT: $line"
measure timeout_after_sigstop "$t" "$line"
kill -CONT "$PID_p1"
wait_event p2 'event=peer_back kind=returned' 10 >/dev/null
log "SIGCONT: peer returned, same incarnation"

# --- announced restart, back before the timeout: no loss
lost_before=$(count p2 'event=peer_lost')
restarted_before=$(count p2 'kind=restarted')
kill -USR1 "$PID_p1"
wait_event p1 'event=announce r=0' 10 >/dev/null
gone "$PID_p1"
probe p1 n1 2 "${OPTS[@]}"
line=$(wait_event p2 'event=peer_back kind=restarted' 10 "$restarted_before")
grep -q 'was_lost=0' <<<"$line" || fail "announced restart: $line"
sleep 0.5
[ "$(count p2 'event=peer_lost')" = "$lost_before" ] || fail "announced restart was seen as a loss"
log "announced restart: no loss, new incarnation"

# --- announced restart, not back in time: TIMEOUT, not PROCESS
t=$(now_ms)
kill -USR1 "$PID_p1"
line=$(wait_event p2 'event=peer_lost' 15 "$lost_before")
grep -q 'kind=timeout' <<<"$line" || fail "announced restart not back: expected TIMEOUT: $line"
measure timeout_after_announced_restart "$t" "$line"
gone "$PID_p1"
first1=$(count p1 'event=peer_back kind=first')
probe p1 n1 2 "${OPTS[@]}"
wait_event p2 'event=peer_back kind=restarted' 10 "$((restarted_before + 1))" >/dev/null
wait_event p1 'event=peer_back kind=first' 10 "$first1" >/dev/null

# --- kill -9 of corosync on n1: NODE loss on n2; n1 disconnected, not quorate, reconnects
lost_before=$(count p2 'event=peer_lost')
p1_quorum0=$(count p1 'event=quorum quorate=0')
t=$(now_ms)
kill -KILL "$(cluster pid n1 corosync)"
line=$(wait_event p1 'event=error err=SRM_EDISCONNECTED' 10)
measure local_corosync_loss_seen "$t" "$line"
wait_event p1 'event=quorum quorate=0' 5 "$p1_quorum0" >/dev/null
line=$(wait_event p2 'event=peer_lost' 15 "$lost_before")
grep -q 'kind=node during_init=0 quorate=1' <<<"$line" || fail "corosync killed: $line"
measure node_loss_after_corosync_kill9 "$t" "$line"
back_before=$(count p2 'event=peer_back')
connected_before=$(count p1 'event=connected')
cluster start n1 | sed "s/^/$TEST   /"
wait_event p1 'event=connected' 15 "$connected_before" >/dev/null
line=$(wait_event p2 'event=peer_back' 15 "$back_before")
grep -q 'kind=returned' <<<"$line" || fail "after corosync restart: $line"
wait_quorum n1 yes 15
log "corosync restarted on n1: probe reconnected, peer back"

# --- partition n1: quorum before loss on n1; n2 quorate with NODE loss
lost1=$(count p1 'event=peer_lost')
lost2=$(count p2 'event=peer_lost')
back1=$(count p1 'event=peer_back')
back2=$(count p2 'event=peer_back')
t=$(now_ms)
cluster partition n1 | sed "s/^/$TEST   /"
line1=$(wait_event p1 'event=peer_lost' 15 "$lost1")
line2=$(wait_event p2 'event=peer_lost' 15 "$lost2")
grep -q 'kind=node during_init=0 quorate=0' <<<"$line1" || fail "isolated n1: $line1"
grep -q 'kind=node during_init=0 quorate=1' <<<"$line2" || fail "n2 after n1 cut off: $line2"
# On n1 the quorum loss is reported no later than the peer loss (same or earlier line).
q=$(grep -nE 'event=quorum quorate=0' "$SRM_CLUSTER_DIR/p1.log" | tail -1 | cut -d: -f1)
l=$(grep -nE 'event=peer_lost' "$SRM_CLUSTER_DIR/p1.log" | tail -1 | cut -d: -f1)
[ -n "$q" ] && [ "$q" -lt "$l" ] || fail "n1 reported the peer loss before its quorum loss"
qline=$(grep -E 'event=quorum quorate=0' "$SRM_CLUSTER_DIR/p1.log" | tail -1)
measure isolated_node_quorum_loss "$t" "$qline"
measure isolated_node_peer_loss "$t" "$line1"
measure peer_sees_isolated_node_loss "$t" "$line2"
wait_quorum n1 no 5
wait_quorum n2 yes 5
wait_quorum n3 yes 5
log "n1 isolated: n1 not quorate, n2 and n3 quorate"

quorate1=$(count p1 'event=quorum quorate=1')
t=$(now_ms)
cluster heal n1 | sed "s/^/$TEST   /"
line1=$(wait_event p1 'event=peer_back' 15 "$back1")
line2=$(wait_event p2 'event=peer_back' 15 "$back2")
grep -q 'kind=returned' <<<"$line1" || fail "heal, n1: $line1"
grep -q 'kind=returned' <<<"$line2" || fail "heal, n2: $line2"
wait_event p1 'event=quorum quorate=1' 15 "$quorate1" >/dev/null
wait_quorum n1 yes 10
measure merge_after_heal "$t" "$line2"
log "healed: both back, n1 quorate"

kill -TERM "$PID_p1" "$PID_p2"
gone "$PID_p1"
gone "$PID_p2"
log "down"
cluster down | sed "s/^/$TEST   /"
assert_clean
log "PASS"
