# shellcheck shell=bash
# Helpers for the heartbeat integration tests (sourced). They run scripts/cluster with a
# private prefix, base directory and subnet, start hb-probe members, wait for their events
# (every wait is bounded), and tear everything down on exit, failed or not.
#
# The caller sets, before sourcing: TEST (a short name) and NET (e.g. 10.242.0).
set -euo pipefail

SRC=${SRM_SOURCE_DIR:?SRM_SOURCE_DIR must name the source tree}
BIN=${SRM_BINARY_DIR:?SRM_BINARY_DIR must name the build tree}
export SRM_BUILD_DIR=$BIN
# Unique per run, so that this test can run beside others (and beside another build tree).
export SRM_CLUSTER_PREFIX="${TEST}$$-"
export SRM_CLUSTER_DIR="$BIN/tests/heartbeat/_run-$TEST-$$"
export SRM_CLUSTER_NET=$NET
export SRM_CLUSTER_PG_PORT=$((56000 + $$ % 1000))
CLUSTER="$SRC/scripts/cluster"
T0=${EPOCHREALTIME/./}
PROBES=()
FAILED=0

log() { printf '%s [%6.2fs] %s\n' "$TEST" "$(bc_s "${EPOCHREALTIME/./}")" "$*"; }
bc_s() { local us=$(($1 - T0)); printf '%d.%02d' $((us / 1000000)) $((us / 10000 % 100)); }
fail() {
    FAILED=1
    echo "$TEST: FAIL: $*" >&2
    exit 1
}
cluster() { "$CLUSTER" "$@"; }

cleanup() {
    local rc=$?
    local pid
    for pid in "${PROBES[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ -f "$SRM_CLUSTER_DIR/cluster.env" ]; then
        "$CLUSTER" down >/dev/null 2>&1 || echo "$TEST: cluster down failed" >&2
    fi
    if [ $rc != 0 ] || [ $FAILED = 1 ]; then
        echo "$TEST: logs kept in $SRM_CLUSTER_DIR" >&2
        for f in "$SRM_CLUSTER_DIR"/*.log; do
            [ -f "$f" ] || continue
            echo "----- $f" >&2
            tail -n 30 "$f" >&2
        done
    else
        # Retried: a process that exited a moment ago may still have been closing a log.
        for _ in 1 2 3; do
            rm -rf "$SRM_CLUSTER_DIR" 2>/dev/null && break
            sleep 0.5
        done
        [ ! -e "$SRM_CLUSTER_DIR" ] || echo "$TEST: could not remove $SRM_CLUSTER_DIR" >&2
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "$TEST: needs root (network namespaces)"; exit 1; }
[ -x "$BIN/tests/heartbeat/hb-probe" ] || fail "hb-probe not built in $BIN"

# probe NAME NODE PEER [ARGS...]: starts hb-probe on NODE, log in $SRM_CLUSTER_DIR/NAME.log;
# sets PID_<NAME> (declared here for the scripts that read them).
# shellcheck disable=SC2034
PID_p1="" PID_p2=""
probe() {
    local name=$1 node=$2 peer=$3
    shift 3
    "$CLUSTER" exec "$node" hb-probe --group srm.g1 --peer "$peer" "$@" \
        >>"$SRM_CLUSTER_DIR/$name.log" 2>&1 </dev/null &
    PROBES+=($!)
    printf -v "PID_$name" '%s' $!
    disown $! # no "Killed" job reports; gone() checks the end instead
}

# gone PID: waits (bounded) until PID has exited.
gone() {
    for _ in $(seq 1 100); do
        [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null || return 0
        sleep 0.05
    done
    fail "process $1 did not exit"
}

# count NAME PATTERN: how many lines of NAME's log match the extended regex.
count() { grep -Ec -- "$2" "$SRM_CLUSTER_DIR/$1.log" 2>/dev/null || true; }

# wait_event NAME PATTERN SECONDS [AFTER]: waits until NAME's log has more than AFTER (default
# 0) lines matching PATTERN; prints the first new matching line. Fails after SECONDS.
wait_event() {
    local name=$1 pat=$2 secs=$3 after=${4:-0}
    for _ in $(seq 1 $((secs * 20))); do
        if [ "$(count "$name" "$pat")" -gt "$after" ]; then
            grep -E -- "$pat" "$SRM_CLUSTER_DIR/$name.log" | sed -n "$((after + 1))p"
            return 0
        fi
        sleep 0.05
    done
    fail "$name: no '$pat' within ${secs}s"
}

# now_ms: wall clock in ms (the probes print wall=<s.ms> for the same clock).
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# event_ms LINE: the wall time of a probe line, in ms.
event_ms() {
    local w
    w=$(sed -n 's/.* wall=\([0-9]*\)\.\([0-9]*\) .*/\1\2/p' <<<"$1")
    echo "$w"
}
# measure NAME SINCE_MS LINE: prints how long after SINCE_MS the event LINE happened.
measure() {
    echo "MEASURE $TEST $1 $(($(event_ms "$3") - $2)) ms"
}

# quorate NODE: 0 when corosync on NODE says quorate, 2 when not, 1 when unreachable.
quorate() {
    local rc=0
    "$CLUSTER" exec "$1" corosync-quorumtool -s >/dev/null 2>&1 || rc=$?
    return $rc
}
# wait_quorum NODE yes|no SECONDS
wait_quorum() {
    local node=$1 want=$2 secs=$3 rc
    for _ in $(seq 1 $((secs * 10))); do
        rc=0
        quorate "$node" || rc=$?
        if { [ "$want" = yes ] && [ $rc = 0 ]; } || { [ "$want" = no ] && [ $rc = 2 ]; }; then
            return 0
        fi
        sleep 0.1
    done
    fail "$node: quorate is not '$want' within ${secs}s"
}

# assert_clean: nothing of this cluster is left (after `cluster down`).
assert_clean() {
    local left pids pid
    left=$(ip netns list | awk '{print $1}' | grep -F -- "$SRM_CLUSTER_PREFIX" || true)
    [ -z "$left" ] || fail "namespaces left: $left"
    pids=$(cat "$SRM_CLUSTER_DIR"/n*/pids.all "$SRM_CLUSTER_DIR"/qnetd/qnetd.pid 2>/dev/null || true)
    for pid in $pids "${PROBES[@]}"; do
        # A zombie waiting for its reaper is gone for every purpose but the process table.
        if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            fail "process $pid ($(cat /proc/$pid/comm 2>/dev/null)) left"
        fi
        if ls /dev/shm/qb-"$pid"-* /dev/shm/qb-*-"$pid"-* >/dev/null 2>&1; then
            fail "/dev/shm files of process $pid left: $(cd /dev/shm && echo qb-*"$pid"-*)"
        fi
    done
    if grep -qsF -- "$SRM_CLUSTER_DIR" /proc/self/mountinfo /proc/1/mountinfo; then
        fail "mounts under $SRM_CLUSTER_DIR left"
    fi
    if pgrep -f -- "$SRM_CLUSTER_DIR" >/dev/null; then
        fail "processes using $SRM_CLUSTER_DIR left: $(pgrep -af -- "$SRM_CLUSTER_DIR")"
    fi
}
