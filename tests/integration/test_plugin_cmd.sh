#!/usr/bin/env bash
# Plugins' command-line tools (struct nova_command, ABI 1.3), through the
# real binary and the `good` fixture's `fixture-copy`: found by name, -c
# before or after the command, the plugin's section applied (enabled or
# not), a child process and the file API on the command's loop, the exit
# code passed through, --help, listings, an unknown command still refused,
# and a command that never reports its result failing rather than hanging.
set -euo pipefail
: "${NOVA_BUILDDIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
bin="$NOVA_BUILDDIR/nova-worker"
fixtures="$NOVA_BUILDDIR/tests/fixtures/.libs"
export NOVA_MODULE_DIR="${NOVA_MODULE_DIR:-$NOVA_BUILDDIR/runtime/.libs}"

cat >"$work/nova.conf" <<CONF
[worker]
plugin_dir = $fixtures
[http]
listen =
[plugin good]
enabled = no
word = from-the-config
CONF

# -c after the command; the section's value reaches the command
out=$("$bin" fixture-copy "$work/a.txt" -c "$work/nova.conf") || fail "fixture-copy failed: $out"
[ "$(cat "$work/a.txt")" = from-the-config ] || fail "a.txt holds '$(cat "$work/a.txt")'"
grep -q "wrote 15 bytes to $work/a.txt" <<<"$out" || fail "output: $out"
[ ! -e "$work/a.txt.tmp" ] || fail "the temp file stayed"

# the command's exit code passed through
set +e
"$bin" fixture-copy -c "$work/nova.conf" "$work/b.txt" 7 >/dev/null
rc=$?
set -e
[ "$rc" = 7 ] || fail "exit code $rc, expected 7"
[ -f "$work/b.txt" ] || fail "b.txt missing"

# no config file: defaults (word = hi) and NOVA_PLUGIN_DIR
NOVA_WORKER_CONFIG="$work/absent.conf" NOVA_PLUGIN_DIR="$fixtures" "$bin" fixture-copy "$work/c.txt" >/dev/null \
  || fail "fixture-copy without a config file"
[ "$(cat "$work/c.txt")" = hi ] || fail "c.txt holds '$(cat "$work/c.txt")'"

# usage errors, a failing write, --help, listings
set +e
"$bin" fixture-copy -c "$work/nova.conf" >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "usage error exit $rc"
set +e
"$bin" fixture-copy -c "$work/nova.conf" "$work/no/such/dir/x" 2>"$work/err" >/dev/null; rc=$?
set -e
[ "$rc" = 1 ] || fail "write into a missing directory exit $rc"
grep -q "No such file or directory" "$work/err" || fail "error text: $(cat "$work/err")"
grep -q 'usage: nova-worker fixture-copy OUT' <<<"$("$bin" fixture-copy --help -c "$work/nova.conf")" \
  || fail "--help"
grep -q 'fixture-copy .*(plugin good)' <<<"$(NOVA_PLUGIN_DIR="$fixtures" "$bin" --help)" || fail "--help lists plugin commands"
grep -q 'fixture-copy' <<<"$("$bin" plugins --plugin-dir "$fixtures" --help good)" || fail "plugins --help good"

# an unknown command is still an error
set +e
"$bin" no-such-command -c "$work/nova.conf" >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown command exit $rc"
grep -q "unknown command 'no-such-command'" "$work/err" || fail "unknown: $(cat "$work/err")"

# a command that never calls done() fails instead of hanging or passing
set +e
timeout 20 "$bin" fixture-copy --never -c "$work/nova.conf" >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "--never exit $rc"
grep -q "ended without reporting its result" "$work/err" || fail "never: $(cat "$work/err")"
echo "test_plugin_cmd: ok"
