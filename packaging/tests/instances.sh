#!/bin/sh
# Checks the instance scheme of nova-worker@.service with the real binary:
# an instance file made from instance.conf.example includes the common
# configuration and overrides it (a plugin disabled in the common file is
# enabled by the instance), and a missing instance file fails `check`
# naming the file.
set -u
: "${NOVA_BUILDDIR:?run through make check}" "${NOVA_SRCDIR:?run through make check}"

fail=0
bad() { echo "FAIL: $*"; fail=1; }
bin="$NOVA_BUILDDIR/nova-worker"
plugins="$NOVA_BUILDDIR/plugins/skeleton/.libs"
# The package builds run this outside make check: the service modules the
# shipped file needs ([http] listen) are in the build tree.
NOVA_MODULE_DIR=${NOVA_MODULE_DIR:-$NOVA_BUILDDIR/runtime/.libs}
export NOVA_MODULE_DIR
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
[ -f "$plugins/skeleton.so" ] || { echo "FAIL: $plugins/skeleton.so not built"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# The shipped common file, with the skeleton plugin disabled in it.
mkdir -p "$tmp/etc/conf.d" "$tmp/etc/instances"
cp "$NOVA_SRCDIR/etc/nova-worker.conf" "$tmp/etc/nova-worker.conf"
grep -q '^\[plugin skeleton\]' "$tmp/etc/nova-worker.conf" ||
    printf '\n[plugin skeleton]\nenabled = no\n' >>"$tmp/etc/nova-worker.conf"

# The instance: the shipped example, pointed at the temporary tree, with
# the plugin enabled.
sed "s|^include = /etc/nova-worker/nova-worker.conf$|include = $tmp/etc/nova-worker.conf|" \
    "$NOVA_SRCDIR/packaging/systemd/instance.conf.example" >"$tmp/etc/instances/a.conf"
grep -q "^include = $tmp/" "$tmp/etc/instances/a.conf" || bad "instance.conf.example has no include of the common file"
printf '\n[plugin skeleton]\nenabled = yes\n' >>"$tmp/etc/instances/a.conf"

export NOVA_PLUGIN_DIR="$plugins"
out=$("$bin" check -c "$tmp/etc/nova-worker.conf" 2>&1) || bad "check of the common file failed: $out"
echo "$out" | grep -q '(0 plugin(s) enabled)' || bad "common file: expected 0 plugins enabled: $out"
out=$("$bin" check -c "$tmp/etc/instances/a.conf" 2>&1) || bad "check of the instance failed: $out"
echo "$out" | grep -q '(1 plugin(s) enabled)' || bad "instance does not override the common file: $out"

# A bad value in the instance is reported with the instance's file and line.
printf '[redis]\nlock_duration = soon\n' >>"$tmp/etc/instances/a.conf"
out=$("$bin" check -c "$tmp/etc/instances/a.conf" 2>&1) && bad "check accepted lock_duration = soon"
echo "$out" | grep -q "instances/a.conf:[0-9]*:" || bad "error does not name instances/a.conf:LINE: $out"

out=$("$bin" check -c "$tmp/etc/instances/missing.conf" 2>&1) && bad "check accepted a missing instance file"
echo "$out" | grep -q 'instances/missing.conf' || bad "error does not name the missing file: $out"
exit $fail
