#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs the unit,
# integration and interop tests (make check), then the same suites built
# with AddressSanitizer and UndefinedBehaviorSanitizer.
#   NOVA_TEST_SANITIZERS=0  skip the sanitizer pass
#   NOVA_TEST_VALGRIND=1    also run the suites under valgrind memcheck
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null

build() { # build DIR [configure args...]
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && { [ -f Makefile ] || "$top/configure" --quiet "$@"; } && make -j2 >/dev/null)
}
check() { # check DIR [make target]
  local dir=$1 target=${2:-check}
  if ! make -C "$dir" -j2 "$target"; then
    find "$dir" -name '*.log' -path '*tests*' -newer "$dir/Makefile" -exec grep -l -E '^(FAIL|ERROR)|:F:|:E:' {} + \
      | while read -r log; do echo "=== $log"; tail -n 40 "$log"; done
    return 1
  fi
}

build "$top/build"
check "$top/build"
if [ "${NOVA_TEST_SANITIZERS:-1}" != 0 ]; then
  build "$top/build-sanitize" --enable-sanitizers
  check "$top/build-sanitize"
fi
if [ "${NOVA_TEST_VALGRIND:-0}" != 0 ]; then
  check "$top/build" check-valgrind
fi
# One closing line over every suite that ran.
passed=0 failed=0
for log in "$top"/build*/test-suite.log; do
  [ -f "$log" ] || continue
  p=$(sed -n 's/^# PASS: *//p' "$log" | head -n1); f=$(sed -n 's/^# FAIL: *//p' "$log" | head -n1)
  e=$(sed -n 's/^# ERROR: *//p' "$log" | head -n1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
done
echo "test.sh: $passed passed, $failed failed"
