# shellcheck shell=bash
# Helpers for the IPC, libsrm and engine integration tests (sourced). Each test runs
# ipc-server-probe (srmd's IPC side), libsrm clients and engines as separate processes that
# read commands from FIFOs and print one line per event into logs under a private run
# directory; it waits for events (every wait bounded) and tears everything down on exit,
# failed or not (its processes by PID, their /dev/shm leftovers, the run directory).
#
# The caller sets TEST (a short name) before sourcing. SRM_TEST_KEEP=1 keeps the logs.
set -euo pipefail

SRC=${SRM_SOURCE_DIR:?SRM_SOURCE_DIR must name the source tree}
BIN=${SRM_BINARY_DIR:?SRM_BINARY_DIR must name the build tree}
RUN="$BIN/tests/ha/_run-$TEST-$$"
IPC="srmt-$TEST-$$"
SERVER_PROBE="$BIN/tests/ha/ipc/ipc-server-probe"
CLIENT_PROBE="$BIN/tests/ha/libsrm/srm-client-probe"
ENGINE="$BIN/ha/engine/srm-engine"
DS_PROBE="$BIN/tests/ha/engine/ds-probe"
T0=${EPOCHREALTIME/./}
PIDS=()
FAILED=0
CLEANUP_HOOKS=()

mkdir -p "$RUN"

log() { printf '%s [%6.2fs] %s\n' "$TEST" "$(elapsed)" "$*"; }
elapsed() { local us=$((${EPOCHREALTIME/./} - T0)); printf '%d.%02d' $((us / 1000000)) $((us / 10000 % 100)); }
fail() {
    FAILED=1
    echo "$TEST: FAIL: $*" >&2
    exit 1
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

cleanup() {
    local rc=$?
    local pid hook
    for hook in "${CLEANUP_HOOKS[@]}"; do
        "$hook" || true
    done
    for pid in "${PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || break
            sleep 0.05
        done
        rm -rf /dev/shm/qb-"$pid"-* /dev/shm/qb-*-"$pid"-* 2>/dev/null || true
    done
    if [ $rc != 0 ] || [ $FAILED = 1 ] || [ "${SRM_TEST_KEEP:-0}" = 1 ]; then
        echo "$TEST: logs kept in $RUN" >&2
        for f in "$RUN"/*.log; do
            [ -f "$f" ] || continue
            echo "----- $f" >&2
            tail -n 40 "$f" >&2
        done
    else
        rm -rf "$RUN"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# spawn NAME CMD...: starts CMD with stdin from the FIFO $RUN/NAME.in (kept open on fd
# FD_<NAME>) and output in $RUN/NAME.log; sets PID_<NAME>.
spawn() {
    local name=$1 fd
    shift
    rm -f "$RUN/$name.in"
    mkfifo "$RUN/$name.in"
    "$@" <"$RUN/$name.in" >>"$RUN/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    disown "$pid"
    exec {fd}>"$RUN/$name.in"
    printf -v "FD_$name" '%s' "$fd"
    printf -v "PID_$name" '%s' "$pid"
}

# to NAME LINE: sends a command line to NAME's stdin.
to() {
    local fdvar="FD_$1"
    shift
    echo "$*" >&"${!fdvar}"
}

# pid_of NAME
pid_of() {
    local v="PID_$1"
    echo "${!v}"
}

# count NAME PATTERN: lines of NAME's log matching the extended regex.
count() { grep -Ec -- "$2" "$RUN/$1.log" 2>/dev/null || true; }

# wait_for NAME PATTERN SECONDS [AFTER]: waits until NAME's log has more than AFTER (default
# 0) matching lines; prints the first new one. Fails after SECONDS.
wait_for() {
    local name=$1 pat=$2 secs=$3 after=${4:-0} i
    for ((i = 0; i < secs * 50; i++)); do
        if [ "$(count "$name" "$pat")" -gt "$after" ]; then
            grep -E -- "$pat" "$RUN/$name.log" | sed -n "$((after + 1))p"
            return 0
        fi
        sleep 0.02
    done
    fail "$name: no '$pat' within ${secs}s"
}

# absent NAME PATTERN SECONDS [AFTER]: no new matching line for SECONDS.
absent() {
    local name=$1 pat=$2 secs=$3 after=${4:-0}
    sleep "$secs"
    [ "$(count "$name" "$pat")" -le "$after" ] || fail "$name: unexpected '$pat': $(grep -E -- "$pat" "$RUN/$name.log" | tail -1)"
}

# field LINE KEY: the value of key=value in an event line.
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# gone PID: waits (bounded) until PID has exited.
gone() {
    for _ in $(seq 1 250); do
        [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null || return 0
        sleep 0.02
    done
    fail "process $1 did not exit"
}

# server NAME [ARGS...]: an ipc-server-probe serving $IPC as node 1 (peer 2).
server() {
    local name=$1
    shift
    spawn "$name" "$SERVER_PROBE" --name "$IPC" --node-id 1 --peer-id 2 --node-name n1 \
        --peer-name n2 "$@"
    wait_for "$name" "listening" 10 >/dev/null
}

# client NAME [ARGS...]: a srm-client-probe (libsrm) named NAME connecting to $IPC.
client() {
    local name=$1
    shift
    spawn "$name" "$CLIENT_PROBE" --ipc "$IPC" --name "$name" "$@"
}

measure() { echo "MEASURE $TEST $1 $2 $3"; }

# Engine status (srm-engine ctl status-text), for tests that run one with --dir "$ERUN":
# ev KEY: a value of the engine line; pv PART KEY: a value of partition PART's line.
ev() { field "$("$ENGINE" ctl --dir "$ERUN" status-text | grep '^engine ')" "$1"; }
pv() { field "$("$ENGINE" ctl --dir "$ERUN" status-text | grep "^part id=$1 ")" "$2"; }
# until_ok SECONDS CONDITION: waits until the shell condition holds (evaluated every 0.1 s).
until_ok() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        eval "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "not ($2) within $1 s: $("$ENGINE" ctl --dir "$ERUN" status-text 2>&1 | tr '\n' ' ')"
}

for b in "$SERVER_PROBE" "$CLIENT_PROBE"; do
    [ -x "$b" ] || fail "$b is not built in $BIN"
done
[ "$(id -u)" = 0 ] || { echo "$TEST: needs root"; exit 1; }
