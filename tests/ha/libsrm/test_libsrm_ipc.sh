#!/usr/bin/env bash
# srmd's IPC server (ipc-server-probe, srm_ha_ipc) against libsrm clients (srm-client-probe,
# libsrm.so) in separate processes: registration and health, SERVE/RELEASE with
# acknowledgements and the drain timeout, counters and stale reports, the watchdog
# (SIGSTOP of a client), kill -9 of a client, the access list (a client running as nobody),
# lease expiry while the server is SIGSTOPped (the client stops by its own clock, and the
# server, resumed, does not blame its clients for its own stall), and reconnection after a
# server restart.
TEST=libsrm-ipc
# shellcheck source=../ipc/lib.sh
. "$SRM_SOURCE_DIR/tests/ha/ipc/lib.sh"

# ---- registration and health
server srv --ping 200 --misses 3 --allow-uid 0
client c1 --service svcA --service svcB:normal --quorum off
wait_for srv "connected id=[0-9]+ name=c1 " 10 >/dev/null
wait_for srv "service name=svcA client=[0-9]+ critical=1 up=1" 5 >/dev/null
wait_for srv "service name=svcB client=[0-9]+ critical=0 up=1" 5 >/dev/null
wait_for c1 "connected node=1 peer=2" 5 >/dev/null
to c1 health svcA down broken
wait_for srv 'health name=svcA client=[0-9]+ up=0 detail="broken"' 5 >/dev/null
to c1 health svcA up
wait_for srv 'health name=svcA client=[0-9]+ up=1' 5 >/dev/null
log "registration and health: ok"

# ---- SERVE, counters, stale
to srv autolease 3000
to srv serve c1 1 5 3000 n1
line=$(wait_for srv "ack id=[0-9]+ name=c1 cmd=[0-9]+ type=SERVE result=0" 5)
measure serve_ack_rtt "$(field "$line" rtt_us)" us
wait_for c1 "serve part=1 epoch=5 renewed=0 .*home=n1" 5 >/dev/null
wait_for c1 "serving-set parts=1:5$" 5 >/dev/null
to srv serve c1 1 4 3000
wait_for srv "ack .*name=c1 .*type=SERVE result=SRM_ESTALE_EPOCH" 5 >/dev/null
to c1 counters 1 10 2 9 1
wait_for srv "counters id=[0-9]+ name=c1 p1=10/2/9/1 probe_counter=7" 5 >/dev/null
to c1 stale 1 5
wait_for srv "stale id=[0-9]+ name=c1 part=1 epoch=5 error=SRM_ESTALE_EPOCH" 5 >/dev/null
wait_for srv "serving id=[0-9]+ name=c1 reason=stale-epoch .*parts=-" 5 >/dev/null
wait_for c1 "serving-set parts=-$" 5 >/dev/null
log "serve, counters, stale: ok"

# ---- acknowledgements later, RELEASE with drain, drain timeout
client c2 --service svcC --quorum off --ack-later
wait_for srv "connected id=[0-9]+ name=c2 " 10 >/dev/null
to srv serve c2 3 1 5000
line=$(wait_for c2 "serve part=3 epoch=1 .*cmd=[0-9]+" 5)
absent srv "ack .*name=c2 .*type=SERVE" 0.3
to c2 ack "$(field "$line" cmd)" 0
wait_for srv "ack .*name=c2 .*type=SERVE result=0" 5 >/dev/null
to srv release c2 3 500 1 2
wait_for c2 "release part=3 epoch=1 .*drain=500 lo=1 hi=2" 5 >/dev/null
wait_for c2 "serving-set parts=-$" 5 >/dev/null
# Not acknowledged: libsrm stops the partition itself at the drain timeout.
wait_for srv "ack .*name=c2 .*type=RELEASE result=ETIMEDOUT" 5 >/dev/null
wait_for c2 "stop-serving part=3 reason=drain-timeout" 5 >/dev/null
to srv serve c2 4 1 5000
line=$(wait_for c2 "serve part=4 epoch=1 .*cmd=[0-9]+" 5)
to c2 ack "$(field "$line" cmd)" 0
to srv release c2 4 3000 120 537
line=$(wait_for c2 "release part=4 epoch=1 .*drain=3000 lo=120 hi=537" 5)
delays=$(field "$line" delays)
lo=${delays%..*}
hi=${delays#*..}
[ "$lo" -ge 120000 ] && [ "$hi" -le 537000 ] || fail "re-login delays $delays outside [120, 537] s"
to c2 ack "$(field "$line" cmd)" 0
wait_for srv "ack .*name=c2 .*type=RELEASE result=0" 5 >/dev/null
[ "$(count c2 "stop-serving part=4")" = 0 ] || fail "c2 stopped partition 4 on its own"
to srv release c2 9 100 0 0
wait_for srv 'ack .*name=c2 .*type=RELEASE result=0 .*detail="not served"' 5 >/dev/null
to srv stop c2
line=$(wait_for c2 "stop-services cmd=[0-9]+" 5)
to c2 ack "$(field "$line" cmd)" -5
wait_for srv "ack .*name=c2 .*type=STOP_SERVICES result=EIO" 5 >/dev/null
log "acknowledgements, release, drain timeout: ok"

# ---- watchdog: a stopped client is reported down and disconnected
t=$(now_ms)
kill -STOP "$PID_c2"
line=$(wait_for srv "disconnected id=[0-9]+ name=c2 pid=$PID_c2 reason=ETIMEDOUT" 10)
measure watchdog_detection $(($(now_ms) - t)) ms
wait_for srv 'health name=svcC client=0 up=0 detail="watchdog: no ping for 600 ms"' 5 >/dev/null
kill -CONT "$PID_c2"
wait_for srv "connected id=[0-9]+ name=c2 " 10 1 >/dev/null
wait_for c2 "connected node=1 peer=2 reconnects=1" 10 >/dev/null
wait_for srv "service name=svcC client=[0-9]+ critical=1 up=1" 5 1 >/dev/null
log "watchdog: ok"

# ---- kill -9: reported down at once
t=$(now_ms)
kill -KILL "$PID_c2"
wait_for srv "disconnected id=[0-9]+ name=c2 pid=$PID_c2 reason=0" 10 >/dev/null
measure kill9_detection $(($(now_ms) - t)) ms
wait_for srv 'health name=svcC client=0 up=0 detail="process disconnected"' 5 >/dev/null
log "kill -9: ok"

# ---- the access list: a client running as nobody is refused
spawn nobody runuser -u nobody -- "$CLIENT_PROBE" --ipc "$IPC" --name evil --quorum off \
    --reconnect 100
wait_for srv "refused pid=[0-9]+ uid=65534 gid=65534 err=EPERM" 10 >/dev/null
wait_for srv "refused pid=[0-9]+ uid=65534 gid=65534 err=EPERM" 10 1 >/dev/null
[ "$(count srv "name=evil")" = 0 ] || fail "a client running as nobody got in"
[ "$(count nobody "connected")" = 0 ] || fail "the nobody client says it connected"
to nobody quit
gone "$PID_nobody"
to srv stats
wait_for srv "stats accepted=[0-9]+ refused=[1-9]" 5 >/dev/null
log "access list: ok"

# ---- lease expiry while srmd is stopped; srmd's own stall is not the clients' fault
to srv autolease 1000
to srv serve c1 2 6 1000
wait_for c1 "serving-set parts=2:6$" 5 >/dev/null
sleep 0.5
t=$(now_ms)
kill -STOP "$PID_srv"
wait_for c1 "stop-serving part=0 reason=lease-expired" 10 >/dev/null
measure lease_stop_after_sigstop $(($(now_ms) - t)) ms
wait_for c1 "serving-set parts=-$" 5 1 >/dev/null
sleep 1
kill -CONT "$PID_srv"
to srv stats
wait_for srv "stats .*stalls=[1-9]" 5 >/dev/null
absent srv "disconnected id=[0-9]+ name=c1 " 1
# Renewals resumed, but nothing is served until srmd grants again.
[ "$(count c1 "serving-set parts=2")" = 1 ] || fail "c1 served again without a new SERVE"
to srv serve c1 2 6 1000
wait_for c1 "serving-set parts=2:6$" 5 1 >/dev/null
log "lease expiry: ok"

# ---- srmd restarts: the client serves on while the lease lasts, reconnects, re-registers
old=$PID_srv
kill -KILL "$PID_srv"
gone "$old"
rm -rf /dev/shm/qb-"$old"-*
wait_for c1 "disconnected err=" 5 >/dev/null
wait_for c1 "stop-serving part=0 reason=lease-expired" 5 1 >/dev/null
server srv2 --ping 200 --misses 3 --allow-uid 0
wait_for c1 "connected node=1 peer=2 reconnects=1" 10 >/dev/null
wait_for srv2 "service name=svcA client=[0-9]+ critical=1 up=1" 5 >/dev/null
wait_for srv2 "service name=svcB client=[0-9]+ critical=0 up=1" 5 >/dev/null
to srv2 serve c1 1 9 3000
wait_for srv2 "ack .*name=c1 .*type=SERVE result=0" 5 >/dev/null
wait_for c1 "serving-set parts=1:9$" 5 >/dev/null
log "reconnect after a server restart: ok"

# ---- orderly ends
to c1 quit
gone "$PID_c1"
wait_for srv2 "disconnected id=[0-9]+ name=c1 .*reason=0" 5 >/dev/null
to srv2 quit
gone "$PID_srv2"
log "done"
