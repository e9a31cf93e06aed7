#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package, built and installed for real, into a scratch root:
#   1. dpkg-buildpackage -us -uc -b in a copy of the source tree
#      (sandpool_*.deb and sandpool-dbgsym_*.deb);
#   2. lintian --pedantic: no error and no warning (what is left is info,
#      explained in debian/README.source);
#   3. dpkg --root=SCRATCH -i, with the maintainer scripts run against the
#      scratch root (--force-script-chrootless, DPKG_ROOT): the files in their
#      FHS places, the groups made by systemd-sysusers, the directories by
#      systemd-tmpfiles, sandpool.socket enabled by deb-systemd-helper and
#      sandpool.service not; the installed sandpoolctl and
#      sandpool-build-image say how to build a missing image;
#   4. dpkg --root -r keeps /var/lib/sandpool and the conffile; -P removes them.
# The machine's own / is never installed into. Exit 77 when the tools are missing.
set -euo pipefail
# "check && ok || fail" is meant: ok and fail both return 0
# shellcheck disable=SC2015

SRC=$(cd "$(dirname "$0")/../.." && pwd)
for t in dpkg-buildpackage dh lintian systemd-sysusers systemd-tmpfiles deb-systemd-helper unshare; do
	command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (tools/install-deps package)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (dpkg --root, chown in the scratch root)"; exit 77; }

W=$(mktemp -d /tmp/sandpool-package.XXXXXX)
trap 'rm -rf --one-file-system "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# --- 1. build ---------------------------------------------------------------
mkdir "$W/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$SRC" && git ls-files -co --exclude-standard -z | grep -zv '^tests/mcp/node_modules/' |
		tar --null -cf - -T -) | tar -xf - -C "$W/src"
else
	tar -C "$SRC" --exclude='./build*' --exclude=node_modules -cf - . | tar -xf - -C "$W/src"
fi
t0=$SECONDS
if ! (cd "$W/src" && dpkg-buildpackage -us -uc -b) >"$W/build.log" 2>&1; then
	tail -40 "$W/build.log"
	echo "FAIL: dpkg-buildpackage"
	exit 1
fi
echo "dpkg-buildpackage: $((SECONDS - t0)) s"
deb=$(echo "$W"/sandpool_*_*.deb)
dbg=$(echo "$W"/sandpool-dbgsym_*_*.deb)
[ -f "$deb" ] && ok "built $(basename "$deb")" || { echo "FAIL: no sandpool_*.deb"; exit 1; }
[ -f "$dbg" ] && ok "built $(basename "$dbg")" || fail "no sandpool-dbgsym_*.deb"
dpkg-deb -c "$dbg" >"$W/dbgsym.txt"
grep -q '/usr/lib/debug/.build-id/.*\.debug$' "$W/dbgsym.txt" && ok "dbgsym has debug files" ||
	fail "dbgsym without .debug files"

# --- 2. lintian -------------------------------------------------------------
t0=$SECONDS
lintian --pedantic "$W"/sandpool_*.changes >"$W/lintian.txt" 2>&1 || true
echo "lintian: $((SECONDS - t0)) s"
sed 's/^/  lintian: /' "$W/lintian.txt"
grep -q '^E: ' "$W/lintian.txt" && fail "lintian errors"
grep -q '^W: ' "$W/lintian.txt" && fail "lintian warnings (fix them, or explain and override them in debian/)"
grep -qE '^(E|W): ' "$W/lintian.txt" || ok "lintian: no errors, no warnings"

# --- maintainer scripts, as built -------------------------------------------
mkdir "$W/control"
dpkg-deb -e "$deb" "$W/control"
has() { # FILE REGEX WHAT
	grep -qE -- "$2" "$W/control/$1" && ok "$1: $3" || fail "$1: $3 (no /$2/)"
}
has postinst 'systemd-sysusers .*sandpool\.conf' "systemd-sysusers sandpool.conf"
has postinst 'systemd-tmpfiles .*--create sandpool\.conf' "systemd-tmpfiles --create sandpool.conf"
has postinst "deb-systemd-helper enable 'sandpool\.socket'" "deb-systemd-helper enables sandpool.socket"
has postinst "deb-systemd-invoke \\\$_dh_action 'sandpool\.socket'" "starts sandpool.socket"
grep -q "enable 'sandpool.service'" "$W/control/postinst" && fail "postinst enables sandpool.service"
has prerm "deb-systemd-invoke stop 'sandpool\.socket'" "stops the socket on removal"
has prerm 'deb-systemd-invoke stop sandpool\.service' "stops the service on removal"
has postrm "deb-systemd-helper purge 'sandpool\.socket'" "purges the socket's state"
# sysusers before tmpfiles: the directories may name the groups
[ "$(grep -n systemd-sysusers "$W/control/postinst" | cut -d: -f1)" -lt \
  "$(grep -n systemd-tmpfiles "$W/control/postinst" | head -1 | cut -d: -f1)" ] &&
	ok "groups before directories" || fail "systemd-tmpfiles runs before systemd-sysusers"
grep -qx '/etc/sandpool/sandpool.conf' "$W/control/conffiles" && ok "the example config is a conffile" ||
	fail "/etc/sandpool/sandpool.conf is not a conffile"

# --- 3. install into a scratch root -----------------------------------------
R="$W/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/etc"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
# A host running systemd would see its own /run/systemd/system from the
# maintainer scripts (the generated postinst reloads and starts units there
# without looking at DPKG_ROOT): hide it, in a private mount namespace only.
dpkg_root() {
	unshare --mount --propagation private sh -c '
		if [ -d /run/systemd/system ]; then mount -t tmpfs -o size=1M sandpool-test /run/systemd; fi
		exec "$@"' sh dpkg --root="$R" --log=/dev/null --force-script-chrootless --force-depends "$@"
}
dpkg_root -i "$deb" >"$W/install.log" 2>&1 || fail "dpkg --root -i"
sed 's/^/  dpkg -i: /' "$W/install.log"

for f in /usr/sbin/sandpoold /usr/bin/sandpoolctl /usr/sbin/sandpool-build-image; do
	[ -x "$R$f" ] && ok "$f" || fail "$f missing or not executable"
done
for f in /usr/share/sandpool/policies/default.policy /usr/share/sandpool/image.conf \
	/lib/systemd/system/sandpool.service /lib/systemd/system/sandpool.socket \
	/usr/lib/sysusers.d/sandpool.conf /usr/lib/tmpfiles.d/sandpool.conf /etc/sandpool/sandpool.conf \
	/usr/share/man/man1/sandpoolctl.1.gz /usr/share/man/man8/sandpoold.8.gz \
	/usr/share/man/man8/sandpool-build-image.8.gz \
	/usr/share/bash-completion/completions/sandpoolctl /usr/share/bash-completion/completions/sandpoold \
	/usr/share/doc/sandpool/README.Debian /usr/share/doc/sandpool/README.md \
	/usr/share/doc/sandpool/api.md /usr/share/doc/sandpool/copyright; do
	[ -f "$R$f" ] && ok "$f" || fail "$f missing"
done
# nothing under /usr/local, nothing of the build tree
dpkg-deb -c "$deb" | awk '{print $6}' >"$W/files.txt"
stray=$(grep -E '^\./usr/local|/build/|\.a$|test' "$W/files.txt" || true)
[ -z "$stray" ] && ok "no stray files" || fail "stray files: $stray"
grep -q 'ExecStart=/usr/sbin/sandpoold$' "$R/lib/systemd/system/sandpool.service" &&
	ok "the unit runs /usr/sbin/sandpoold" || fail "sandpool.service ExecStart"
grep -q 'file:///usr/share/doc/sandpool/README.md' "$R/lib/systemd/system/sandpool.service" &&
	ok "the unit's Documentation= exists" || fail "sandpool.service Documentation="

# what the maintainer scripts did, in the scratch root only
grep -q '^sandpool:' "$R/etc/group" && grep -q '^sandpool-admin:' "$R/etc/group" &&
	ok "groups sandpool and sandpool-admin created (systemd-sysusers)" || fail "groups not created"
[ -d "$R/var/lib/sandpool/images" ] && [ -d "$R/run/sandpool/ids" ] &&
	ok "/var/lib/sandpool/images and /run/sandpool made (systemd-tmpfiles)" || fail "tmpfiles directories"
[ -L "$R/etc/systemd/system/sockets.target.wants/sandpool.socket" ] &&
	ok "sandpool.socket enabled (deb-systemd-helper)" || fail "sandpool.socket not enabled"
[ -e "$R/etc/systemd/system/multi-user.target.wants/sandpool.service" ] &&
	fail "sandpool.service enabled (it should start from its socket)"

# the installed binaries run, and say how to build the missing image
out=$(SANDPOOL_ROOTFS="$R/var/lib/sandpool/images/default" "$R/usr/bin/sandpoolctl" \
	--socket "$R/run/sandpool/sandpool.sock" status 2>&1) && rc=0 || rc=$?
[ "$rc" -eq 5 ] && grep -q 'sandpool-build-image --install' <<<"$out" &&
	ok "sandpoolctl status names sandpool-build-image when the image is missing" ||
	fail "sandpoolctl status (rc $rc): $out"
"$R/usr/sbin/sandpool-build-image" --help | grep -q "instead of $R/usr/share/sandpool/image.conf" &&
	ok "sandpool-build-image finds its inputs in /usr/share/sandpool" || fail "sandpool-build-image --help"
"$R/usr/sbin/sandpoold" --version >/dev/null && ok "sandpoold --version" || fail "sandpoold --version"
grep -q 'sandpool-build-image --install' "$R/usr/share/doc/sandpool/README.Debian" &&
	ok "README.Debian says how to build the image" || fail "README.Debian"

# --- 4. remove, then purge ---------------------------------------------------
mkdir -p "$R/var/lib/sandpool/images/default"
echo image >"$R/var/lib/sandpool/images/default/marker"
dpkg_root -r sandpool >"$W/remove.log" 2>&1 || { cat "$W/remove.log"; fail "dpkg --root -r"; }
[ ! -e "$R/usr/sbin/sandpoold" ] && ok "removed: sandpoold gone" || fail "sandpoold left after removal"
[ -f "$R/var/lib/sandpool/images/default/marker" ] && ok "removed: /var/lib/sandpool kept" ||
	fail "removal deleted /var/lib/sandpool"
[ -f "$R/etc/sandpool/sandpool.conf" ] && ok "removed: the conffile kept" || fail "removal deleted the conffile"
dpkg_root -P sandpool >"$W/purge.log" 2>&1 || { cat "$W/purge.log"; fail "dpkg --root -P"; }
[ ! -e "$R/var/lib/sandpool" ] && ok "purged: /var/lib/sandpool gone" || fail "purge left /var/lib/sandpool"
[ ! -e "$R/etc/sandpool/sandpool.conf" ] && ok "purged: the conffile gone" || fail "purge left the conffile"
[ ! -e "$R/etc/systemd/system/sockets.target.wants/sandpool.socket" ] &&
	ok "purged: the socket's enable link gone" || fail "purge left the socket enabled"

if [ "$fails" -gt 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all package checks passed"
