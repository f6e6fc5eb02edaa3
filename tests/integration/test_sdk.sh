#!/usr/bin/env bash
# The plugin SDK as a plugin author uses it: install nova-worker into a
# staging root, build plugins/skeleton out of tree with `pkg-config
# nova-worker` and plugins/skeleton/Makefile.example, then have the installed
# daemon list, describe and check it.
set -euo pipefail
: "${NOVA_BUILDDIR:?}" "${NOVA_SRCDIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

make -s -C "$NOVA_BUILDDIR" MAKEFLAGS= install DESTDIR="$work/root" >/dev/null

pc=$(find "$work/root" -name nova-worker.pc | head -n1)
[ -n "$pc" ] || fail "nova-worker.pc was not installed"
bin=$(find "$work/root" -path '*/sbin/nova-worker' | head -n1)
[ -x "$bin" ] || fail "sbin/nova-worker was not installed"
[ -f "$(find "$work/root" -path '*/include/nova/plugin.h' | head -n1)" ] || fail "nova/plugin.h missing"
[ -n "$(find "$work/root" -path '*/etc/nova-worker/nova-worker.conf')" ] || fail "sample config missing"

export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$work/root"
plugindir=$(pkg-config --variable=plugindir nova-worker)
[ -f "$plugindir/skeleton.so" ] || [ -f "$work/root$plugindir/skeleton.so" ] || fail "plugindir $plugindir lacks skeleton.so"

mkdir "$work/myplugin"
cp "$NOVA_SRCDIR/plugins/skeleton/skeleton.c" "$NOVA_SRCDIR/plugins/skeleton/Makefile.example" "$work/myplugin/"
grep -q '^Requires: *libcjson' "$pc" || fail "nova-worker.pc does not require libcjson"
case "$(pkg-config --variable=localplugindir nova-worker)" in
  */usr/local/lib/nova-worker/plugins) ;; # (pkgconf may prefix the sysroot)
  *) fail "nova-worker.pc lacks localplugindir" ;;
esac
# The skeleton uses cJSON (host->job_data()): pkg-config must bring it in.
make -s -C "$work/myplugin" -f Makefile.example CFLAGS="-O2 -Wall -Wextra -Werror -Wl,-z,defs" >/dev/null \
  || fail "out-of-tree build failed"
# (output captured, not piped into grep -q: an early grep exit is a SIGPIPE under pipefail)
grep -q libcjson <<<"$(ldd "$work/myplugin/skeleton.so")" || fail "the plugin does not link libcjson"

exported=$(nm -D --defined-only "$work/myplugin/skeleton.so" | awk '$2 == "T" {print $3}')
[ "$exported" = nova_plugin_entry ] || fail "plugin exports more than nova_plugin_entry: $exported"

out=$("$bin" plugins --plugin-dir "$work/myplugin")
grep -q 'skeleton *1.0.0 *ABI 1.3' <<<"$out" || fail "plugins listing: $out"
"$bin" plugins --plugin-dir "$work/myplugin" --help skeleton | grep -q 'greeting' \
  || fail "plugins --help skeleton lacks its keys"

cat >"$work/nova.conf" <<CONF
[worker]
plugin_dir = $work/myplugin
[plugin skeleton]
enabled = yes
greeting = from-out-of-tree
CONF
"$bin" check -c "$work/nova.conf" | grep -q 'configuration ok (1 plugin(s) enabled)' \
  || fail "check did not accept the out-of-tree plugin"
echo "PASS: out-of-tree skeleton builds with pkg-config and loads"
