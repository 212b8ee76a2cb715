#!/usr/bin/env bash
# Two-node cluster with a tie-breaker: corosync-qnetd in a third namespace, corosync-qdevice
# (model net, algorithm ffsplit, tls off) on both nodes; no two_node, so each node has one
# vote, the qdevice one, and quorum is 2 of 3. hb-probe members of srm.g1 on n1 and n2.
# Isolating n1 (nft drop of its corosync and qnetd traffic) must leave exactly one quorate
# side: n2 keeps quorum (it still reaches qnetd) and reports NODE loss; n1 learns that it lost
# quorum no later than it loses its peer. Healing brings both back, quorate.
TEST=hbq
NET=10.243.0
# shellcheck source=tests/heartbeat/lib.sh
. "$(dirname "$0")/lib.sh"

OPTS=(--interval 300 --timeout 8000 --init-timeout 10000 --reconnect 300)

log "up: 2 nodes with qdevice"
cluster up --nodes 2 --qdevice --no-pg | sed "s/^/$TEST   /"
for n in n1 n2; do
    cluster exec "$n" corosync-quorumtool -s | grep -q 'Flags:.*Qdevice' ||
        fail "$n: no Qdevice flag in corosync-quorumtool -s"
done

probe p1 n1 2 "${OPTS[@]}"
probe p2 n2 1 "${OPTS[@]}"
wait_event p1 'event=peer_back kind=first' 10 >/dev/null
wait_event p2 'event=peer_back kind=first' 10 >/dev/null
wait_event p1 'event=quorum quorate=1' 10 >/dev/null
wait_event p2 'event=quorum quorate=1' 10 >/dev/null
log "both probes quorate and see each other"

t=$(now_ms)
cluster partition n1 | sed "s/^/$TEST   /"
line1=$(wait_event p1 'event=peer_lost' 20)
line2=$(wait_event p2 'event=peer_lost' 20)
grep -q 'kind=node during_init=0 quorate=0' <<<"$line1" || fail "isolated n1: $line1"
grep -q 'kind=node during_init=0 quorate=1' <<<"$line2" || fail "n2: $line2"
q=$(grep -nE 'event=quorum quorate=0' "$SRM_CLUSTER_DIR/p1.log" | tail -1 | cut -d: -f1)
l=$(grep -nE 'event=peer_lost' "$SRM_CLUSTER_DIR/p1.log" | tail -1 | cut -d: -f1)
[ -n "$q" ] && [ "$q" -lt "$l" ] || fail "n1 reported the peer loss before its quorum loss"
measure isolated_node_quorum_loss "$t" "$(grep -E 'event=quorum quorate=0' "$SRM_CLUSTER_DIR/p1.log" | tail -1)"
measure peer_sees_isolated_node_loss "$t" "$line2"
wait_quorum n1 no 15
wait_quorum n2 yes 15
# Exactly one side quorate, and it stays so.
for k in 1 2 3 4 5; do
    rc1=0 rc2=0
    quorate n1 || rc1=$?
    quorate n2 || rc2=$?
    [ $rc1 = 2 ] && [ $rc2 = 0 ] || fail "sample $k: n1 quorumtool=$rc1 n2 quorumtool=$rc2"
    sleep 0.3
done
[ "$(count p1 'event=quorum quorate=1')" = 1 ] || fail "isolated n1 regained quorum"
[ "$(count p2 'event=quorum quorate=0')" = 0 ] || fail "n2 lost quorum on the way"
log "n1 isolated: only n2 quorate (qdevice vote went to n2)"

quorate1=$(count p1 'event=quorum quorate=1')
back1=$(count p1 'event=peer_back')
back2=$(count p2 'event=peer_back')
t=$(now_ms)
cluster heal n1 | sed "s/^/$TEST   /"
line1=$(wait_event p1 'event=peer_back' 20 "$back1")
line2=$(wait_event p2 'event=peer_back' 20 "$back2")
grep -q 'kind=returned' <<<"$line1" || fail "heal, n1: $line1"
grep -q 'kind=returned' <<<"$line2" || fail "heal, n2: $line2"
wait_event p1 'event=quorum quorate=1' 20 "$quorate1" >/dev/null
wait_quorum n1 yes 20
wait_quorum n2 yes 5
measure merge_after_heal "$t" "$line2"
log "healed: both back and quorate"

kill -TERM "$PID_p1" "$PID_p2"
gone "$PID_p1"
gone "$PID_p2"
log "down"
cluster down | sed "s/^/$TEST   /"
assert_clean
log "PASS"
