#!/usr/bin/env bash
# The quorum self-fence of libsrm with real Corosync: a 3-node cluster in network namespaces
# (scripts/cluster); on n1, srmd's IPC side (ipc-server-probe, renewing a long lease all
# along) and a libsrm client following n1's quorum. n1 is cut off by nft: the client stops
# serving by itself within Corosync's detection time, whatever srmd says, and refuses
# SERVE; after healing, quorum is back but it serves nothing until srmd grants again. Then
# n1's corosync is killed: unreachable counts as not quorate.
TEST=libsrm-quorum
# shellcheck source=../ipc/lib.sh
. "$SRM_SOURCE_DIR/tests/ha/ipc/lib.sh"

export SRM_CLUSTER_PREFIX="lq$$-"
export SRM_CLUSTER_DIR="$RUN/cluster"
export SRM_CLUSTER_NET=10.246.0
# No srmd or engine of a build tree on the nodes: this test runs its own processes.
mkdir -p "$RUN/nobuild"
export SRM_BUILD_DIR="$RUN/nobuild"
CLUSTER="$SRC/scripts/cluster"

cluster_down() {
    [ -f "$SRM_CLUSTER_DIR/cluster.env" ] || return 0
    "$CLUSTER" down --purge >"$RUN/cluster-down.log" 2>&1 || echo "$TEST: cluster down failed" >&2
}
CLEANUP_HOOKS+=(cluster_down)

command -v corosync >/dev/null || fail "corosync is not installed (scripts/install-deps)"
"$CLUSTER" up --nodes 3 --no-pg >"$RUN/cluster.log" 2>&1 || fail "cluster up failed: $(tail -5 "$RUN/cluster.log")"
log "3-node cluster up"

spawn srv "$CLUSTER" exec n1 "$SERVER_PROBE" --name "$IPC" --node-id 1 --peer-id 2 \
    --node-name n1 --peer-name n2 --ping 500 --misses 4 --allow-uid 0
wait_for srv "listening" 10 >/dev/null
spawn c "$CLUSTER" exec n1 "$CLIENT_PROBE" --ipc "$IPC" --name eng --service xcp-router \
    --quorum corosync
wait_for c "connected node=1 peer=2" 10 >/dev/null
wait_for c "quorum quorate=1 peer_present=1" 10 >/dev/null
# A lease far longer than the test: only the fence can stop the client.
to srv autolease 60000
to srv serve eng 1 5 60000 n1
wait_for c "serving-set parts=1:5$" 10 >/dev/null
log "serving with quorum"

t=$(now_ms)
"$CLUSTER" partition n1 >>"$RUN/cluster.log" 2>&1
wait_for c "stop-serving part=0 reason=quorum-lost" 15 >/dev/null
measure fence_after_partition $(($(now_ms) - t)) ms
wait_for c "serving-set parts=-$" 5 >/dev/null
wait_for srv "serving id=[0-9]+ name=eng reason=quorum-lost fenced=1" 5 >/dev/null
# srmd, on the cut-off node, still renews and even grants: refused.
to srv serve eng 1 5 60000 n1
wait_for srv "ack .*name=eng .*type=SERVE result=SRM_ENO_QUORUM" 5 >/dev/null
log "cut off: stopped serving, serve refused"

"$CLUSTER" heal n1 >>"$RUN/cluster.log" 2>&1
wait_for c "quorum quorate=1 peer_present=1" 15 1 >/dev/null
absent c "serving-set parts=1" 1.5 1
to c status
wait_for c "status connected=1 .*quorate=1 peer_present=1 fenced=0 .*grants=0 .*quorum_fences=1" 5 >/dev/null
to srv serve eng 1 6 60000 n1
wait_for c "serving-set parts=1:6$" 5 >/dev/null
log "healed: served again only after a new grant"

pid=$("$CLUSTER" pid n1 corosync)
kill -KILL "$pid"
wait_for c "quorum quorate=0 peer_present=0" 10 >/dev/null
wait_for c "stop-serving part=0 reason=quorum-lost" 10 1 >/dev/null
log "corosync unreachable: stopped serving"

to c quit
to srv quit
log "done"
