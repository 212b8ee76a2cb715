#!/usr/bin/env bash
# scripts/cluster on 4 nodes with PostgreSQL: up (every node quorate), exec (namespace, PATH,
# PostgreSQL reachable), partition n1 (n1 not quorate, the others quorate), heal, kill n3 (the
# other three stay quorate with 3 of 4), start n3 again, status, pause and resume of srmd,
# the refusals of commands that do not apply, then down: no namespace, process, mount or /dev/shm file is left.
TEST=hbc
NET=10.244.0
# shellcheck source=tests/heartbeat/lib.sh
. "$(dirname "$0")/lib.sh"

nodes_seen() { # nodes_seen NODE: the "Nodes:" count of NODE's quorum view
    cluster exec "$1" corosync-quorumtool -s 2>/dev/null | sed -n 's/^Nodes: *\([0-9]*\).*/\1/p'
}
wait_nodes() { # wait_nodes NODE COUNT SECONDS
    for _ in $(seq 1 $(($3 * 10))); do
        [ "$(nodes_seen "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 does not see $2 nodes within $3 s (sees '$(nodes_seen "$1")')"
}

t=$(now_ms)
cluster up --nodes 4 | sed "s/^/$TEST   /"
echo "MEASURE $TEST up_4_nodes_with_pg $(($(now_ms) - t)) ms"
for n in n1 n2 n3 n4; do
    wait_quorum "$n" yes 5
    [ "$(nodes_seen "$n")" = 4 ] || fail "$n does not see 4 nodes"
done
log "all 4 nodes quorate"

status=$(cluster status)
echo "$status" | sed "s/^/$TEST   /"
[ "$(grep -c 'quorate=yes nodes=4' <<<"$status")" = 4 ] || fail "status does not show 4 quorate nodes"
grep -q '^n3 *g2 ' <<<"$status" || fail "status: n3 is not in group g2"

# exec: inside the namespace, with the node's /run, the build on PATH and PostgreSQL.
addr=$(cluster exec n2 ip -4 -o addr show dev eth0 | awk '{print $4}')
[ "$addr" = "$NET.2/24" ] || fail "exec n2: eth0 has '$addr'"
[ -n "$(cluster exec n1 sh -c 'command -v hb-probe')" ] || fail "exec: hb-probe not on PATH"
[ "$(cluster exec n1 cat /run/corosync.pid)" = "$(cluster pid n1 corosync)" ] ||
    fail "exec n1: /run is not the node's private /run"
[ "$(cluster exec n3 psql -Atc 'select 40 + 2')" = 42 ] || fail "exec n3: PostgreSQL unreachable"
grep -q '"node": {"name": "n3", "id": 3}' "$SRM_CLUSTER_DIR/n3/srmd.conf" || fail "n3/srmd.conf lacks the node"
grep -q '"peer": {"name": "n4", "id": 4}' "$SRM_CLUSTER_DIR/n3/srmd.conf" || fail "n3/srmd.conf lacks the peer"
log "exec: namespace, /run, PATH and PostgreSQL as expected"

# Commands that do not apply are refused with a message, and change nothing.
if cluster pause n1 nosuchservice 2>/dev/null; then fail "pause of an unknown service succeeded"; fi
if cluster pause n9 2>/dev/null; then fail "pause n9 succeeded"; fi
if cluster heal n1 2>/dev/null; then fail "heal n1 succeeded without a partition"; fi
if cluster exec n9 true 2>/dev/null; then fail "exec n9 succeeded"; fi
if cluster up --nodes 2 2>/dev/null; then fail "a second up succeeded"; fi

srmd_stopped() { # srmd_stopped NODE yes|no: waits up to 2 s for srmd's state
    local st
    for _ in $(seq 1 40); do
        st=$(ps -o stat= -p "$(cluster pid "$1" srmd)" | cut -c1)
        if [ "$st" = T ]; then [ "$2" = yes ] && return 0; else [ "$2" = no ] && return 0; fi
        sleep 0.05
    done
    fail "srmd of $1: stopped should be $2 (state '$st')"
}
# pause: srmd of n2 stopped (state T), resume: running again.
cluster pause n2 | sed "s/^/$TEST   /"
srmd_stopped n2 yes
status=$(cluster status)
grep -q '^n2 .*srmd=paused' <<<"$status" || fail "status does not show srmd paused on n2"
cluster resume n2 | sed "s/^/$TEST   /"
srmd_stopped n2 no
log "pause and resume of srmd on n2"

t=$(now_ms)
cluster partition n1 | sed "s/^/$TEST   /"
wait_quorum n1 no 15
for n in n2 n3 n4; do
    wait_nodes "$n" 3 10
    wait_quorum "$n" yes 2
done
echo "MEASURE $TEST partition_to_n1_not_quorate $(($(now_ms) - t)) ms"
status=$(cluster status)
grep -q '^n1 .*PARTITIONED' <<<"$status" || fail "status does not show n1 partitioned"
grep -q '^n1 .*quorate=no nodes=1' <<<"$status" || fail "status does not show n1 alone"
log "n1 partitioned: n1 not quorate; n2, n3, n4 quorate"

cluster heal n1 | sed "s/^/$TEST   /"
for n in n1 n2 n3 n4; do
    wait_nodes "$n" 4 15
    wait_quorum "$n" yes 5
done
log "healed: all 4 quorate"

t=$(now_ms)
cluster kill n3 | sed "s/^/$TEST   /"
for n in n1 n2 n4; do
    wait_nodes "$n" 3 15
    wait_quorum "$n" yes 2
done
echo "MEASURE $TEST kill_to_3_of_4 $(($(now_ms) - t)) ms"
[ -z "$(ip netns pids "${SRM_CLUSTER_PREFIX}n3")" ] || fail "processes left in n3 after kill"
log "n3 killed: n1, n2, n4 quorate with 3 of 4"

cluster start n3 | sed "s/^/$TEST   /"
for n in n1 n2 n3 n4; do
    wait_nodes "$n" 4 15
    wait_quorum "$n" yes 5
done
log "n3 started again: all 4 quorate"

t=$(now_ms)
cluster down | sed "s/^/$TEST   /"
echo "MEASURE $TEST down $(($(now_ms) - t)) ms"
assert_clean
[ ! -d "$SRM_CLUSTER_DIR/pg" ] || fail "PostgreSQL directory left"
log "down: nothing left"
log "PASS"
