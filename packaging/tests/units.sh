#!/bin/sh
# Checks the generated systemd units and sysusers file offline (no root, no
# running systemd): `systemd-analyze verify` must print nothing, the sandbox
# must score 2.0 or better, both services must share one sandbox, the stop
# timeout must outlast the default drain, and sysusers must create the user.
set -u
: "${NOVA_BUILDDIR:?run through make check}" "${NOVA_SRCDIR:?run through make check}"

fail=0
bad() { echo "FAIL: $*"; fail=1; }

for tool in systemd-analyze systemd-sysusers; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL: $tool not found (Debian package systemd)"; exit 1; }
done

units="$NOVA_BUILDDIR/packaging/systemd"
bin="$NOVA_BUILDDIR/nova-worker"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# verify checks that ExecStart= binaries exist: point them at the build tree.
for f in nova-worker.service nova-worker@.service; do
    [ -f "$units/$f" ] || { echo "FAIL: $units/$f not generated"; exit 1; }
    sed "s|^\(Exec[A-Za-z]*=\)[^ ]*/nova-worker |\1$bin |" "$units/$f" >"$tmp/$f"
    grep -q "^ExecStart=$bin run " "$tmp/$f" || bad "$f: ExecStart= is not '<sbindir>/nova-worker run ...'"
done
cp "$NOVA_SRCDIR/packaging/systemd/nova-worker.target" "$tmp/"

# Templates are verified through an instance name.
for u in nova-worker.service nova-worker@test.service nova-worker.target; do
    out=$(cd "$tmp" && systemd-analyze verify --man=no "./$u" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        bad "systemd-analyze verify $u (exit $rc):"
        printf '%s\n' "$out"
    fi
done

for u in nova-worker.service nova-worker@test.service; do
    out=$(cd "$tmp" && systemd-analyze security --offline=yes --threshold=20 "./$u" 2>&1)
    rc=$?
    score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "$u: exposure $score"
    [ $rc -eq 0 ] || { bad "$u: exposure ${score:-?} is above 2.0"; printf '%s\n' "$out" | grep '✗'; }
done

# Both services must carry the same sandbox (the block after "# Sandbox.").
sandbox() { sed -n '/^# Sandbox\./,/^\[Install\]/p' "$1"; }
sandbox "$tmp/nova-worker.service" >"$tmp/a.sb"
sandbox "$tmp/nova-worker@.service" >"$tmp/b.sb"
diff -u "$tmp/a.sb" "$tmp/b.sb" || bad "the sandboxes of nova-worker.service and nova-worker@.service differ"
[ -n "$(sandbox "$tmp/nova-worker.service")" ] || bad "no '# Sandbox.' block in nova-worker.service"

for f in nova-worker.service nova-worker@.service; do
    grep -q '^Type=notify$' "$tmp/$f" || bad "$f: not Type=notify"
    grep -q '^KillMode=mixed$' "$tmp/$f" || bad "$f: not KillMode=mixed"
    grep -q '^WatchdogSec=' "$tmp/$f" || bad "$f: no WatchdogSec="
    grep -q '^ExecStartPre=.* check ' "$tmp/$f" || bad "$f: no ExecStartPre= running check"
    grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$tmp/$f" || bad "$f: reload is not SIGHUP"
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$tmp/$f")
    # 30 s is the default [worker] shutdown_timeout; leave room for children.
    [ -n "$stop" ] && [ "$stop" -ge 45 ] || bad "$f: TimeoutStopSec='$stop' is not >= 45s"
done
grep -q '^ExecStart=.* run -c /.*/instances/%i\.conf$' "$tmp/nova-worker@.service" ||
    bad "template does not run with instances/%i.conf"
grep -q '^PartOf=nova-worker.target$' "$tmp/nova-worker@.service" || bad "template is not PartOf= the target"

# The sysusers file creates the account and its group in an empty root.
mkdir -p "$tmp/root/etc"
if systemd-sysusers --root="$tmp/root" "$NOVA_BUILDDIR/packaging/sysusers.d/nova-worker.conf" >/dev/null 2>&1; then
    grep -q '^nova-worker:x:[0-9]*:[0-9]*:[^:]*:/var/lib/nova-worker:/usr/sbin/nologin$' "$tmp/root/etc/passwd" ||
        bad "sysusers did not create nova-worker with home /var/lib/nova-worker"
    grep -q '^nova-worker:x:' "$tmp/root/etc/group" || bad "sysusers did not create group nova-worker"
else
    bad "systemd-sysusers failed on nova-worker.conf"
fi

exit $fail
