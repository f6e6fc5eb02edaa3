#!/usr/bin/env bash
# docs/configuration.md lists the core keys exactly as the binary knows them.
set -euo pipefail
: "${NOVA_BUILDDIR:?}" "${NOVA_SRCDIR:?}"
real=$("$NOVA_BUILDDIR/nova-worker" keys | sed -E "s#default [^ ,:]*/nova-worker/plugins#default PLUGINDIR#")
documented=$(awk '/^## Core keys/{on=1} on && /^```$/{n++; next} on && n==1' "$NOVA_SRCDIR/docs/configuration.md")
if [ "$real" != "$documented" ]; then
  echo "FAIL: docs/configuration.md is out of date; regenerate it from 'nova-worker keys':" >&2
  diff <(echo "$documented") <(echo "$real") >&2 || true
  exit 1
fi
echo "PASS: docs/configuration.md matches nova-worker keys"

# One include rule, stated in the same words in the sample config, the two
# docs and nova-worker.conf(5) (comment marks, Markdown and roff aside).
rule="include = PATTERN may stand on any line; the files it matches are read right there, in name order, a relative pattern being relative to the including file's directory, and a pattern that matches nothing is not an error. A key set more than once takes the value read last. So the packaged nova-worker.conf includes conf.d/*.conf on its last line (drop-ins override it), and an instance file includes nova-worker.conf on its first line (its own keys override the common ones)."
for f in etc/nova-worker.conf docs/configuration.md docs/operations.md packaging/man/nova-worker.conf.5.in; do
  flat=$(sed -e 's/^#//' -e 's/\\-/-/g' -e 's/`//g' "$NOVA_SRCDIR/$f" | tr '\n' ' ' | tr -s ' ')
  case "$flat" in
    *"$rule"*) ;;
    *) echo "FAIL: $f does not state the include rule in the shared words" >&2; exit 1 ;;
  esac
done
echo "PASS: the include rule reads the same in the sample config, the docs and nova-worker.conf(5)"
