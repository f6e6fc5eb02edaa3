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
echo "test.sh: all suites passed"
