#!/bin/sh
# Checks the generated man pages: they format without groff/man warnings
# (what lintian runs, at its 120 columns), contain no unreplaced @placeholders@, and
# nova-worker.conf(5) documents every core key of `nova-worker keys` with its
# default and environment variable, and no key that does not exist.
set -u
: "${NOVA_BUILDDIR:?run through make check}" "${NOVA_SRCDIR:?run through make check}"

fail=0
bad() { echo "FAIL: $*"; fail=1; }
command -v man >/dev/null 2>&1 || { echo "FAIL: man not found (Debian package man-db)"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

conf5="$NOVA_BUILDDIR/packaging/man/nova-worker.conf.5"
for page in "$NOVA_BUILDDIR/packaging/man/nova-worker.8" "$conf5"; do
    [ -f "$page" ] || { bad "$page not generated"; continue; }
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=120 \
        man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 0 ] || [ -s "$tmp/err" ]; then
        bad "$page: man exited $rc with warnings:"
        cat "$tmp/err"
    fi
    grep -n '@[a-zA-Z_]*@' "$page" && bad "$page: placeholder left"
done

# The core keys as the binary knows them (`nova-worker keys`): lines
# "[section]", then "  key  type  default VALUE, env VAR, ..." (help lines
# are indented further). Written as: section key default env ("-" = none).
bin="$NOVA_BUILDDIR/nova-worker"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
"$bin" keys >"$tmp/keys" || { echo "FAIL: nova-worker keys exited $?"; exit 1; }
awk '
    /^\[[a-z]+\]$/ { sec = substr($0, 2, length($0) - 2); next }
    sec != "" && /^  [a-z_]+ / {
        key = $1; def = "-"; env = "-"
        rest = $0
        if (match(rest, /default [^,]*/)) def = substr(rest, RSTART + 8, RLENGTH - 8)
        if (match(rest, /env [A-Z_]+/)) env = substr(rest, RSTART + 4, RLENGTH - 4)
        sub(/[ \t]+$/, "", def)
        print sec, key, def, env
    }
' "$tmp/keys" >"$tmp/code"
[ -s "$tmp/code" ] || { echo "FAIL: could not read the output of nova-worker keys (format changed?)"; exit 1; }

# Keys documented in nova-worker.conf(5): ".SS [section]", then ".TP" and
# "\fBkey\fR = ..." lines; the paragraph holds "Default \fB...\fR" and
# "Environment \fB...\fR".
awk '
    /^\.SH / { inkeys = ($2 == "KEYS") }
    !inkeys { next }
    /^\.SS \[[a-z]+\]/ { sec = $2; gsub(/[][]/, "", sec); next }
    /^\.SS / { sec = ""; next }
    sec != "" && prev == ".TP" && /^\\fB[a-z_]+\\fR = / {
        key = $0; sub(/^\\fB/, "", key); sub(/\\fR.*/, "", key)
        print "key", sec, key
    }
    sec != "" && /Default \\fB/ {
        d = $0; sub(/.*Default \\fB/, "", d); sub(/\\fR.*/, "", d); gsub(/\\-/, "-", d)
        print "def", sec, key, d
    }
    sec != "" && /Environment \\fB/ {
        e = $0; sub(/.*Environment \\fB/, "", e); sub(/\\fR.*/, "", e)
        print "env", sec, key, e
    }
    { prev = $0 }
' "$conf5" >"$tmp/doc"

while read -r sec key def env; do
    grep -qx "key $sec $key" "$tmp/doc" || { bad "[$sec] $key is not documented in nova-worker.conf(5)"; continue; }
    if [ "$def" != "-" ]; then
        grep -qxF "def $sec $key $def" "$tmp/doc" || bad "[$sec] $key: default '$def' not documented"
    fi
    if [ "$env" != "-" ]; then
        grep -qxF "env $sec $key $env" "$tmp/doc" || bad "[$sec] $key: environment variable $env not documented"
    fi
done <"$tmp/code"
while read -r _ sec key; do
    grep -q "^$sec $key " "$tmp/code" || bad "nova-worker.conf(5) documents [$sec] $key, which nova-worker keys does not list"
done <<EOF2
$(grep '^key ' "$tmp/doc")
EOF2
echo "$(wc -l <"$tmp/code") core keys checked"
exit $fail
