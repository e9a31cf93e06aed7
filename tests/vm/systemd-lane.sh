#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The installed service under systemd as PID 1, run INSIDE the guest by the
# meson test 'systemd-guest' (suite 'vm'):
#   tests/vm/run-in-guest --systemd -- tests/vm/systemd-lane.sh
# The guest's only cgroup hierarchy is cgroup2 and its PID 1 is Debian's
# systemd from the host's tree; this script runs as the service
# sandpool-vm-job.service. What README's "The service" section tells an
# operator to do, in that order:
#   meson install, systemd-sysusers, systemd-tmpfiles --create,
#   systemctl start sandpool.socket, a request that starts the service,
# then what the unit promises: Delegate=yes (the daemon in its leaf, the
# sandboxes below the unit with their limits), reload, the watchdog, a
# draining stop that leaves nothing behind, the journal with priorities;
# and `sandpoold run` and a hand-started daemon from a login-like scope,
# which get a delegated transient scope from systemd over D-Bus.
# TAP output; exit 1 on any failure. Outside such a guest: exit 77.

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${SANDPOOL_BUILD_DIR:-$here/../../build}
build=$(cd "$build" && pwd)

CG=/sys/fs/cgroup
SOCK=/run/sandpool/sandpool.sock
UNIT_CG=$CG/system.slice/sandpool.service
CONF=/usr/local/etc/sandpool/sandpool.conf
SBIN=/usr/local/sbin
IMAGE=${SANDPOOL_VM_SCRATCH:-/scratch}/test-rootfs
n=0
failed=0
last=$(date +%s%N)

elapsed() {
        local now
        now=$(date +%s%N)
        took=$(printf '%d.%d s' $(((now - last) / 1000000000)) $(((now - last) / 100000000 % 10)))
        last=$now
}
ok() {
        n=$((n + 1))
        elapsed
        echo "ok $n - $1 ($took)"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        elapsed
        echo "not ok $n - $1 ($took)"
        shift
        for line in "$@"; do
                echo "#   $line"
        done
}
# check DESC CMD...: ok when CMD succeeds.
check() {
        local desc=$1 out
        shift
        if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "failed: $*" "$out"; fi
}
# wait_until SECONDS CMD...: poll CMD every 0.2 s.
wait_until() {
        local end=$((SECONDS + $1))
        shift
        while [ $SECONDS -lt $end ]; do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.2
        done
        "$@" >/dev/null 2>&1
}
api() { # api METHOD PATH [curl args...]
        local m=$1 p=$2
        shift 2
        curl -sS --max-time 60 --unix-socket "${API_SOCK:-$SOCK}" -X "$m" "$@" "http://sandpool$p"
}
main_pid() { systemctl show -p MainPID --value sandpool.service; }
show() { systemctl show -p "$1" --value "${2:-sandpool.service}"; }
# lines of the unit's journal (this boot) as JSON
journal_json() { journalctl -b -u sandpool.service -o json --no-pager; }

if [ "$(cat /proc/1/comm)" != systemd ] || [ "$(stat -f -c %T $CG)" != cgroup2fs ]; then
        echo "1..0 # SKIP needs systemd as PID 1 on a cgroup2-only kernel: tests/vm/run-in-guest --systemd"
        exit 77
fi

# --- install, as README's service section says -------------------------------
check "meson install into the guest's writable layer" meson install -C "$build" --no-rebuild --quiet
check "systemd-sysusers creates the groups sandpool and sandpool-admin" \
        sh -c 'systemd-sysusers && getent group sandpool && getent group sandpool-admin'
# shellcheck disable=SC2016 # expanded by sh -c
check "systemd-tmpfiles --create makes /run/sandpool/stage and /run/sandpool/ids" \
        sh -c 'systemd-tmpfiles --create && test -d /run/sandpool/stage && test "$(stat -c %a /run/sandpool/ids)" = 700'

# The image must be on a filesystem that takes idmapped mounts (ext4
# scratch disk); a small pool for the emulated CPU.
rm -rf "$IMAGE" && cp -a "$build/test-rootfs" "$IMAGE"
cat > "$CONF" <<EOF
[images]
rootfs = $IMAGE
[pool]
pool_size = 2
min_pool_size = 1
max_pool_size = 8
EOF
# The watchdog test: a short WatchdogSec, and a quick SIGKILL after the
# watchdog's SIGABRT (which a stopped process cannot act on).
mkdir -p /run/systemd/system/sandpool.service.d
cat > /run/systemd/system/sandpool.service.d/50-lane-watchdog.conf <<EOF
[Service]
WatchdogSec=5s
TimeoutAbortSec=2s
EOF
systemctl daemon-reload

# --- socket activation ---------------------------------------------------------
check "systemctl start sandpool.socket" systemctl start sandpool.socket
sock_stat=$(stat -c '%a %G' "$SOCK" 2>&1)
state=$(show ActiveState)
if [ "$sock_stat" = "660 sandpool" ] && [ "$state" = inactive ]; then
        ok "the socket is 0660 root:sandpool and the service is not running yet"
else
        not_ok "the socket is 0660 root:sandpool and the service is not running yet" "socket: $sock_stat" "service: $state"
fi
health=$(api GET /v1/health)
if [ "$(jq -r .status <<<"$health" 2>/dev/null)" = ok ] && [ "$(show ActiveState)" = active ] &&
   [ "$(jq -r .cgroup.mode <<<"$health")" = v2 ]; then
        ok "a request on the socket starts the service; health answers (cgroup v2)"
else
        not_ok "a request on the socket starts the service; health answers" "health: $health" \
                "service: $(show ActiveState)/$(show SubState)" "$(journalctl -b -u sandpool --no-pager | tail -n 15)"
fi

# --- Delegate=yes: the daemon in its leaf, the sandboxes below the unit ---------
pid=$(main_pid)
cg=$(cat "/proc/$pid/cgroup" 2>&1)
if [ "$cg" = "0::/system.slice/sandpool.service/supervisor" ]; then
        ok "the daemon (pid $pid) sits in its delegated leaf: $cg"
else
        not_ok "the daemon sits in /system.slice/sandpool.service/supervisor" "got: $cg"
fi
sandboxes() { find "$UNIT_CG/sandboxes" -mindepth 1 -maxdepth 1 -type d -name 'sb-*' 2>/dev/null; }
wait_until 30 sh -c "[ \"\$(curl -s --unix-socket $SOCK http://sandpool/v1/health | jq .pool.available)\" = 2 ]"
bad=
count=0
for d in $(sandboxes); do
        count=$((count + 1))
        mem=$(cat "$d/memory.max") cpu=$(cat "$d/cpu.max") swap=$(cat "$d/memory.swap.max") pids=$(cat "$d/pids.max")
        [ "$mem" = 268435456 ] && [ "$cpu" = "25000 100000" ] && [ "$swap" = 0 ] && [ "$pids" = 256 ] ||
                bad="$bad ${d##*/}: memory.max=$mem cpu.max='$cpu' memory.swap.max=$swap pids.max=$pids"
done
if [ "$count" = 2 ] && [ -z "$bad" ]; then
        ok "2 warm sandboxes in $UNIT_CG/sandboxes, each memory.max 256 MiB, cpu.max 25%, no swap, pids 256"
else
        not_ok "2 warm sandboxes below the unit with 256 MiB / 25%" "found $count:$(sandboxes | tr '\n' ' ')" "$bad" \
                "health: $(api GET /v1/health)"
fi
# shellcheck disable=SC2016 # expanded inside the sandbox
out=$(api POST /v1/run -d '{"argv":["/bin/sh","-c","echo hello from $(hostname)"]}')
if [ "$(jq -r .stdout <<<"$out" 2>/dev/null)" = "hello from sandbox" ]; then
        ok "POST /v1/run runs a command in a sandbox of the service"
else
        not_ok "POST /v1/run runs a command in a sandbox of the service" "answer: $out"
fi

# --- reload --------------------------------------------------------------------
# pool_size takes effect; id_base does not (it says so, as a warning).
sed -i 's/^pool_size = 2/pool_size = 3/' "$CONF"
printf '[server]\nid_base = 1100000000\n' >> "$CONF"
old_pid=$(main_pid)
check "systemctl reload sandpool" systemctl reload sandpool
if wait_until 30 sh -c "[ \"\$(curl -s --unix-socket $SOCK http://sandpool/v1/health | jq .pool.available)\" = 3 ]" &&
   [ "$(main_pid)" = "$old_pid" ] && [ "$(sandboxes | wc -l)" = 3 ]; then
        ok "after reload the same daemon keeps 3 warm sandboxes (pool_size 2 -> 3)"
else
        not_ok "reload applies pool_size 3" "health: $(api GET /v1/health)" "pid $old_pid -> $(main_pid)"
fi

# --- the journal, with the daemon's priorities --------------------------------------
prio_of() { journal_json | jq -r --arg re "$1" 'select(._PID != "1" and (.MESSAGE | type == "string") and (.MESSAGE | test($re))) | .PRIORITY' | tail -n 1; }
p_ready=$(prio_of 'sandpoold .* ready: rootfs')
p_warn=$(prio_of 'take effect on restart only')
p_reload=$(prio_of 'Reloaded configuration: pool_size=3')
raw=$(journal_json | jq -r 'select(.MESSAGE | type == "string") | .MESSAGE' | grep -c '^<[0-7]>' || true)
if [ "$p_ready" = 6 ] && [ "$p_reload" = 6 ] && [ "$p_warn" = 4 ] && [ "$raw" = 0 ]; then
        ok "journalctl -u sandpool: 'ready' and 'Reloaded' at info (6), the restart-only warning at warning (4)"
else
        not_ok "journalctl -u sandpool has the daemon's lines at their priorities" \
                "ready=$p_ready reloaded=$p_reload warning=$p_warn, lines with a raw <N> prefix: $raw" \
                "$(journalctl -b -u sandpool --no-pager -o short-monotonic | tail -n 8)"
fi

# --- the watchdog ------------------------------------------------------------------
# By now the daemon has outlived WatchdogSec=5s many times over: its loop
# pings. Stopped, it stops pinging, and systemd restarts it.
pid=$(main_pid)
restarts=$(show NRestarts)
if [ "$restarts" = 0 ]; then
        ok "the daemon has run past WatchdogSec=5s with no restart (it pings)"
else
        not_ok "no watchdog restart while the daemon runs" "NRestarts=$restarts" \
                "$(journalctl -b -u sandpool --no-pager | grep -i watchdog | tail -n 3)"
fi
# MainPID 0 (no daemon): `kill -STOP 0` would stop this very script.
if [ "${pid:-0}" -gt 0 ] && kill -STOP "$pid" && wait_until 30 sh -c "[ \"\$(systemctl show -p NRestarts --value sandpool.service)\" = 1 ] &&
                        [ \"\$(systemctl show -p MainPID --value sandpool.service)\" != $pid ] &&
                        [ \"\$(systemctl show -p MainPID --value sandpool.service)\" != 0 ]" &&
   journalctl -b -u sandpool --no-pager | grep -q 'Watchdog timeout' &&
   wait_until 30 sh -c "[ \"\$(curl -s --unix-socket $SOCK http://sandpool/v1/health | jq -r .status)\" = ok ]"; then
        ok "a SIGSTOPped daemon (pid $pid) is killed by the watchdog and restarted (pid $(main_pid)), health answers"
else
        not_ok "the watchdog restarts a SIGSTOPped daemon" "NRestarts=$(show NRestarts) MainPID=$(main_pid) (was $pid)" \
                "$(journalctl -b -u sandpool --no-pager | tail -n 8)"
        [ "${pid:-0}" -gt 0 ] && kill -CONT "$pid" 2>/dev/null
fi
wait_until 30 sh -c "[ \"\$(curl -s --unix-socket $SOCK http://sandpool/v1/health | jq .pool.available)\" = 3 ]"
left=$(sandboxes | grep -v "/sb-$(main_pid)-" || true)
if [ -z "$left" ]; then
        ok "the restarted daemon's sandboxes only (the killed one's are gone)"
else
        not_ok "the killed daemon's sandboxes are gone" "left: $left"
fi

# --- stop: drain, nothing left -----------------------------------------------------------
sid=$(api POST /v1/sessions | jq -r .id)
api POST "/v1/sessions/$sid/exec" -d '{"argv":["sleep","600"]}' > /tmp/lane-exec.out 2>&1 &
exec_curl=$!
wait_until 30 sh -c "ps -eo comm= | grep -qx sleep"
pid=$(main_pid)
t0=$SECONDS
systemctl stop sandpool.service sandpool.socket
stop_s=$((SECONDS - t0))
wait "$exec_curl"
result=$(show Result) status=$(show ExecMainStatus)
if [ "$result" = success ] && [ "$status" = 0 ] && [ "$stop_s" -lt 20 ] &&
   journalctl -b -u sandpool --no-pager _PID="$pid" | grep -q 'Exiting'; then
        ok "systemctl stop: the daemon drains and exits 0 in ${stop_s}s, the running command ended"
else
        not_ok "systemctl stop drains" "Result=$result ExecMainStatus=$status after ${stop_s}s" \
                "exec answer: $(cat /tmp/lane-exec.out)" "$(journalctl -b -u sandpool --no-pager | tail -n 6)"
fi
procs=$(for p in /proc/[0-9]*; do grep -lE '/sandpool\.service|/sandpool-run-|/sandpoold-' "$p/cgroup" 2>/dev/null; done || true)
ids=$(ps -eo uid=,pid=,comm= | awk '$1 >= 1000000000')
mnts=$(grep -E ' (/var/lib/sandpool|/run/sandpool/)' /proc/1/mountinfo /proc/self/mountinfo || true)
if [ ! -e "$UNIT_CG" ] && [ -z "$procs" ] && [ -z "$ids" ] && [ -z "$mnts" ]; then
        ok "after stop: no $UNIT_CG, no process in a sandpool cgroup or with a sandbox uid, no sandpool mount"
else
        not_ok "stop leaves no cgroup, mount or process" "cgroup: $(ls -d "$UNIT_CG" 2>&1)" "procs: $procs" \
                "sandbox uids: $ids" "mounts: $mnts"
fi

# --- sandpoold run from a login-like scope ---------------------------------------------
# A scope that is not delegated and holds other processes, as a login
# shell's session-N.scope does. v2 forbids controllers below it.
scope_cg() { find "$CG/system.slice" -maxdepth 1 -name "$1" 2>/dev/null; }
systemd-run --quiet --scope --unit=lane-login.scope --slice=user.slice -- bash -c \
        "sleep 600 & echo \$! > /run/lane-login.sleep; exec $SBIN/sandpoold run --rootfs $IMAGE -- /bin/sh -c 'sleep 2; echo ran'" \
        > /tmp/lane-run.out 2>&1 &
runner=$!
wait_until 30 sh -c "ls -d $CG/system.slice/sandpool-run-*.scope/sandpool-run/run-* 2>/dev/null | grep -q ."
d=$(find "$CG"/system.slice/sandpool-run-*.scope/sandpool-run -maxdepth 1 -name 'run-*' 2>/dev/null | head -n 1)
limits="$(cat "$d/memory.max" 2>&1) / $(cat "$d/cpu.max" 2>&1)"
wait "$runner"
rc=$?
wait_until 10 sh -c "! ls -d $CG/system.slice/sandpool-run-*.scope 2>/dev/null | grep -q ."
leftover=$(scope_cg 'sandpool-run-*.scope')
if [ "$rc" = 0 ] && [ "$(cat /tmp/lane-run.out)" = ran ] && [ "$limits" = "268435456 / 25000 100000" ] && [ -z "$leftover" ]; then
        ok "sandpoold run from a shared, undelegated scope: a transient delegated scope, ${d#"$CG"}, 256 MiB / 25%, gone after"
else
        not_ok "sandpoold run from a login-like scope" "status $rc, output: $(cat /tmp/lane-run.out)" \
                "sandbox cgroup: ${d:-none} limits: $limits" "left: $leftover"
fi
kill "$(cat /run/lane-login.sleep)" 2>/dev/null

# --- the daemon started by hand, from the same kind of scope ---------------------------
export API_SOCK=/run/lane-hand.sock
systemd-run --quiet --scope --unit=lane-login2.scope --slice=user.slice -- bash -c \
        "sleep 600 & echo \$! > /run/lane-login2.sleep; exec env SANDPOOL_SOCKET=$API_SOCK SANDPOOL_POOL_SIZE=1 $SBIN/sandpoold" \
        > /tmp/lane-hand.out 2>&1 &
hand=$!
wait_until 30 sh -c "[ \"\$(curl -s --unix-socket $API_SOCK http://sandpool/v1/health | jq .pool.available)\" = 1 ]"
cg=$(cat "/proc/$hand/cgroup" 2>&1)
sbs=$(find "$CG/system.slice/sandpoold-$hand.scope/sandboxes" -maxdepth 1 -name 'sb-*' 2>/dev/null | wc -l)
kill -TERM "$hand"
wait "$hand"
rc=$?
wait_until 10 sh -c "[ ! -e $CG/system.slice/sandpoold-$hand.scope ]"
if [ "$cg" = "0::/system.slice/sandpoold-$hand.scope/supervisor" ] && [ "$sbs" = 1 ] && [ "$rc" = 0 ] &&
   [ ! -e "$CG/system.slice/sandpoold-$hand.scope" ]; then
        ok "a daemon started by hand gets sandpoold-$hand.scope (Delegate=yes) and its leaf; gone after SIGTERM"
else
        not_ok "a daemon started by hand gets a delegated scope" "cgroup: $cg, sandboxes: $sbs, exit $rc" \
                "$(tail -n 5 /tmp/lane-hand.out)"
fi
kill "$(cat /run/lane-login2.sleep)" 2>/dev/null
unset API_SOCK

# --- a service without Delegate=yes is refused, by name --------------------------------
# (systemd-run --wait would need the D-Bus daemon, which this guest lacks.)
rm -f /run/lane-nd.err
systemd-run --quiet --unit=lane-nodelegate --setenv=SANDPOOL_SOCKET=/run/lane-nd.sock \
        -p StandardError=file:/run/lane-nd.err $SBIN/sandpoold
# shellcheck disable=SC2016 # expanded by sh -c
wait_until 30 sh -c '[ "$(systemctl show -p ActiveState --value lane-nodelegate.service)" = failed ]'
rc=$(systemctl show -p ExecMainStatus --value lane-nodelegate.service)
msg=$(cat /run/lane-nd.err 2>&1)
systemctl stop lane-nodelegate.service 2>/dev/null
systemctl reset-failed lane-nodelegate.service 2>/dev/null
case "$rc:$msg" in
0:*) not_ok "a service without Delegate=yes is refused by name" "it started: $msg" ;;
*"lane-nodelegate.service does not delegate its cgroup"*"Delegate=yes"*)
        ok "in a service without Delegate=yes the daemon refuses and says to add it" ;;
*) not_ok "a service without Delegate=yes is refused by name" "status $rc: $msg" ;;
esac

echo "1..$n"
if [ "$failed" -gt 0 ]; then
        echo "# $failed of $n checks failed"
        exit 1
fi
exit 0
