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
