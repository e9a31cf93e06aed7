#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Smoke test of the cgroup2 guest lane, run INSIDE the guest by
#   tests/vm/run-in-guest -- tests/vm/smoke.sh
# It checks that the guest is what the cgroup v2 tests need, with the kernel
# alone (no sandpool code): cgroup2 is the only cgroup hierarchy and has
# memory, cpu and pids; the memory, cpu and pids limits bite; cgroup.kill
# empties a cgroup; user namespaces work. TAP output, exit 1 on any failure.
# Outside a cgroup2-only system it refuses to run (exit 77, skipped).

set -u

cg=/sys/fs/cgroup
n=0
failed=0
created=()

last=$(date +%s%N)

# Seconds since the previous result: under TCG everything is ~40x slower
# than on the host, and this shows where the lane's time goes.
# Sets $took (not a $(...) subshell, which could not update $last).
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

check() {
        local desc=$1
        shift
        if "$@"; then ok "$desc"; else not_ok "$desc" "failed: $*"; fi
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
        local d
        for d in "${created[@]}"; do
                [ -d "$d" ] || continue
                [ -e "$d/cgroup.kill" ] && echo 1 > "$d/cgroup.kill" 2>/dev/null
                for _ in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
        done
}
trap cleanup EXIT

# A fresh child cgroup of the root, with a name no one else uses.
new_cgroup() {
        local d="$cg/sandpool-smoke-$$-$1"
        mkdir "$d" || return 1
        created+=("$d")
        echo "$d"
}

# Value of KEY in a flat-keyed file such as memory.events or cpu.stat.
key() {
        awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "missing" }' "$1"
}

if [ "$(stat -f -c %T "$cg" 2>/dev/null)" != cgroup2fs ]; then
        echo "1..0 # SKIP $cg is not a cgroup2 mount: run this inside the guest (tests/vm/run-in-guest)"
        exit 77
fi

# --- the layout --------------------------------------------------------------
cmdline=$(cat /proc/cmdline)
case " $cmdline " in
*" cgroup_no_v1=all "*) ok "kernel command line has cgroup_no_v1=all" ;;
*) not_ok "kernel command line has cgroup_no_v1=all" "cmdline: $cmdline" ;;
esac

v1=$(awk '$3 == "cgroup" { print $2 }' /proc/self/mounts)
v2=$(awk '$3 == "cgroup2" { print $2 }' /proc/self/mounts)
if [ -z "$v1" ] && [ "$v2" = "$cg" ]; then
        ok "cgroup2 on $cg is the only cgroup mount"
else
        not_ok "cgroup2 on $cg is the only cgroup mount" "v1 mounts: ${v1:-none}" "cgroup2 mounts: ${v2:-none}"
fi

controllers=$(cat "$cg/cgroup.controllers")
missing=
for c in memory cpu pids; do
        case " $controllers " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
if [ -z "$missing" ]; then
        ok "cgroup2 controllers include memory cpu pids ($controllers)"
else
        not_ok "cgroup2 controllers include memory cpu pids" "missing:$missing" "available: $controllers"
fi

# Children of the root get the controllers only once the root delegates them.
check "enable +memory +cpu +pids for the root's children" \
        sh -c "echo '+memory +cpu +pids' > $cg/cgroup.subtree_control"

# --- memory.max: an allocation beyond it is OOM-killed ------------------------
if d=$(new_cgroup mem); then
        echo 32M > "$d/memory.max"
        [ -e "$d/memory.swap.max" ] && echo 0 > "$d/memory.swap.max"
        # dd fills one 64 MiB buffer from /dev/zero, so it touches every page.
        # The shell moves itself into the cgroup ("0" = the writer); dd, its
        # child, is the biggest task there and the one the OOM killer picks.
        # The shell passes on its status (128 + SIGKILL) without the "Killed"
        # notice bash would print.
        sh -c "echo 0 > $d/cgroup.procs && dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null"
        rc=$?
        kills=$(key "$d/memory.events" oom_kill)
        if [ "$rc" -eq 137 ] && [ "$kills" != missing ] && [ "$kills" -gt 0 ]; then
                ok "memory.max=32M: a 64 MiB dd is OOM-killed (status $rc, oom_kill $kills)"
        else
                not_ok "memory.max=32M: a 64 MiB dd is OOM-killed" "dd status $rc (want 137 = SIGKILL)" \
                        "memory.events: $(tr '\n' ' ' < "$d/memory.events")"
        fi
else
        not_ok "create a memory cgroup"
fi

# --- cpu.max: a busy loop is throttled ----------------------------------------
if d=$(new_cgroup cpu); then
        echo "20000 100000" > "$d/cpu.max"
        start=$(date +%s%N)
        sh -c "echo 0 > $d/cgroup.procs && exec timeout 2 sh -c 'while :; do :; done'"
        wall_us=$((($(date +%s%N) - start) / 1000))
        usage=$(key "$d/cpu.stat" usage_usec)
        throttled=$(key "$d/cpu.stat" nr_throttled)
        # 20% quota: allow up to 35% for accounting granularity.
        if [ "$throttled" != missing ] && [ "$throttled" -gt 0 ] && [ "$usage" -le $((wall_us * 35 / 100)) ]; then
                ok "cpu.max=20%: a 2 s spin used ${usage} us of ${wall_us} us, throttled $throttled times"
        else
                not_ok "cpu.max=20%: a 2 s spin is throttled" "usage_usec $usage of wall $wall_us us" \
                        "cpu.stat: $(tr '\n' ' ' < "$d/cpu.stat")"
        fi
else
        not_ok "create a cpu cgroup"
fi

# --- pids.max and cgroup.kill ---------------------------------------------------
if d=$(new_cgroup pids); then
        echo 4 > "$d/pids.max"
        # The shell counts as one; of 8 background sleeps at most 3 can
        # start. A shell may give up at the first failed fork, which is why
        # the sleeps are long: cgroup.kill ends them below.
        sh -c "echo 0 > $d/cgroup.procs; for i in 1 2 3 4 5 6 7 8; do sleep 600 & done; wait" 2>/dev/null &
        holder=$!
        for _ in $(seq 300); do
                [ "$(key "$d/pids.events" max)" != 0 ] && break
                sleep 0.1
        done
        current=$(cat "$d/pids.current")
        hits=$(key "$d/pids.events" max)
        if [ "$current" -ge 1 ] && [ "$current" -le 4 ] && [ "$hits" != missing ] && [ "$hits" -gt 0 ]; then
                ok "pids.max=4: forks beyond it fail (pids.current $current, pids.events max $hits)"
        else
                not_ok "pids.max=4: forks beyond it fail" "pids.current $current" "pids.events max $hits"
        fi
        echo 1 > "$d/cgroup.kill"
        wait "$holder" 2>/dev/null
        for _ in $(seq 50); do
                [ -z "$(cat "$d/cgroup.procs")" ] && break
                sleep 0.1
        done
        if [ -z "$(cat "$d/cgroup.procs")" ] && rmdir "$d"; then
                ok "cgroup.kill empties the cgroup and it can be removed"
        else
                not_ok "cgroup.kill empties the cgroup" "left: $(tr '\n' ' ' < "$d/cgroup.procs")"
        fi
else
        not_ok "create a pids cgroup"
fi

# --- user namespaces ----------------------------------------------------------
# Fails with EPERM when the guest chroot()ed instead of pivoting its root.
uid=$(unshare --user --map-root-user id -u 2>&1)
if [ "$uid" = 0 ]; then
        ok "unshare -U: root in a new user namespace"
else
        not_ok "unshare -U: root in a new user namespace" "got: $uid"
fi
out=$(unshare --user --map-root-user --mount --pid --fork --mount-proc sh -c 'echo $$' 2>&1)
if [ "$out" = 1 ]; then
        ok "unshare -Umpf: PID 1 of a new pid namespace with its own /proc"
else
        not_ok "unshare -Umpf: PID 1 of a new pid namespace with its own /proc" "got: $out"
fi

echo "1..$n"
if [ "$failed" -gt 0 ]; then
        echo "# $failed of $n checks failed"
        exit 1
fi
exit 0
