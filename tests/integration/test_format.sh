#!/bin/sh
# Every C file we own follows the committed .clang-format.
set -eu
: "${NOVA_SRCDIR:?}"
command -v clang-format >/dev/null 2>&1 || { echo "FAIL: clang-format not found (Debian: clang-format)"; exit 1; }
cd "$NOVA_SRCDIR"
bad=0
for f in $(find runtime plugins include tests bench -name '*.[ch]' -not -path '*/node_modules/*' | sort); do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: make format)"
        bad=1
    fi
done
[ "$bad" = 0 ] && echo "PASS: all C files follow .clang-format"
exit "$bad"
