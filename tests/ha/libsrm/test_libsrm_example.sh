#!/usr/bin/env bash
# libsrm as a protocol daemon gets it: `cmake --install --component libsrm` into a private
# prefix, pkg-config finds libsrm.pc, ha/libsrm/example.c compiles against the installed
# header and library (which exports nothing but srm_* symbols), and runs against srmd's IPC
# side (ipc-server-probe): it serves a partition, writes to the datastore under the granted
# epoch, reports the write refused once ownership moved, and draws re-login delays on
# RELEASE.
TEST=libsrm-example
# shellcheck source=../ipc/lib.sh
. "$SRM_SOURCE_DIR/tests/ha/ipc/lib.sh"

PREFIX="$RUN/prefix"
cmake --install "$BIN" --prefix "$PREFIX" --component libsrm >"$RUN/install.log" 2>&1 ||
    fail "cmake --install --component libsrm failed"
LIBDIR=$(dirname "$(find "$PREFIX" -name libsrm.pc | head -1)")/..
LIBDIR=$(cd "$LIBDIR" && pwd)
for f in "$LIBDIR/libsrm.so" "$LIBDIR/libsrm.so.1" "$LIBDIR/pkgconfig/libsrm.pc" \
    "$PREFIX/include/srm/srm.h" "$PREFIX/include/srm/srm_ds.h" "$PREFIX/include/srm/srm_error.h"; do
    [ -e "$f" ] || fail "not installed: $f"
done
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
[ "$(pkg-config --modversion libsrm)" = 1.0.0 ] || fail "libsrm.pc: version $(pkg-config --modversion libsrm)"
[ "$(readelf -d "$LIBDIR/libsrm.so.1" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')" = libsrm.so.1 ] ||
    fail "SONAME is not libsrm.so.1"
others=$(nm -D --defined-only "$LIBDIR/libsrm.so.1" | awk '{print $3}' | grep -v '^srm_' |
    grep -v '^LIBSRM_1$' || true)
[ -z "$others" ] || fail "libsrm exports more than srm_*: $others"
exported=$(nm -D --defined-only "$LIBDIR/libsrm.so.1")
grep -q ' srm_client_new@@LIBSRM_1$' <<<"$exported" || fail "srm_client_new is not exported"
grep -q ' srm_ds_env_open@@LIBSRM_1$' <<<"$exported" || fail "srm_ds_env_open is not exported"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$RUN/srm-example" "$SRC/ha/libsrm/example.c" \
    $(pkg-config --cflags --libs libsrm) || fail "example.c does not build against the installed libsrm"
log "installed, pkg-config and the example build: ok"

DATA="$RUN/data"
"$DS_PROBE" "$DATA" 1 owner 1 1 3 >/dev/null
server srv --ping 200 --allow-uid 0
spawn ex env LD_LIBRARY_PATH="$LIBDIR" SRM_QUORUM=off "$RUN/srm-example" --ipc "$IPC" \
    --data-dir "$DATA" --node-id 1
wait_for ex "connected node=1 peer=2" 10 >/dev/null
wait_for srv "service name=example-service client=[0-9]+ critical=1 up=1" 5 >/dev/null
to srv autolease 5000
to srv serve srm-example 1 3 5000 n1
wait_for ex "serve part=1 epoch=3" 5 >/dev/null
wait_for srv "ack .*name=srm-example .*type=SERVE result=0" 5 >/dev/null
for _ in $(seq 1 100); do
    stats=$("$DS_PROBE" "$DATA" 1 stats 1)
    [ "$(field "$stats" presence)" -ge 1 ] && break
    sleep 0.05
done
[ "$(field "$stats" epochs)" = 3:1 ] || fail "expected one presence record under epoch 3: $stats"
log "serves and writes under the granted epoch: ok"

# Ownership moves to node 2 behind the example's back: its next write is refused.
"$DS_PROBE" "$DATA" 1 owner 1 2 9 >/dev/null
wait_for ex "stale part=1 epoch=3: partition is not owned by this node" 10 >/dev/null
wait_for srv "stale .*name=srm-example part=1 epoch=3 error=SRM_ENOTOWNER" 5 >/dev/null
"$DS_PROBE" "$DATA" 1 owner 1 1 10 >/dev/null
to srv serve srm-example 1 10 5000
wait_for ex "serve part=1 epoch=10" 5 >/dev/null
to srv release srm-example 1 1000 1 3
line=$(wait_for ex "release part=1 relogin=\[1,3\]s drawn=" 5)
drawn=$(sed 's/.*drawn=\[\([0-9]*\),\([0-9]*\)\]ms/\1 \2/' <<<"$line")
read -r lo hi <<<"$drawn"
[ "$lo" -ge 1000 ] && [ "$hi" -le 3000 ] && [ "$lo" -lt "$hi" ] || fail "delays [$lo, $hi] ms outside [1000, 3000]"
wait_for srv "ack .*name=srm-example .*type=RELEASE result=0" 5 >/dev/null
kill -TERM "$PID_ex"
line=$(wait_for ex "exit writes=" 10)
[ "$(field "$line" writes)" -ge 1 ] || fail "the example wrote nothing"
gone "$PID_ex"
log "stale refusal and release: ok"
to srv quit
gone "$PID_srv"
