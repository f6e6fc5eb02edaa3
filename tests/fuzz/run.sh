#!/bin/sh
# Builds the libFuzzer targets tests/fuzz/fuzz_*.c with clang
# (-fsanitize=fuzzer,address,undefined) straight from the runtime sources
# and runs each for N seconds. Not part of `make check`.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (default: 10 s, every target)
#
# Each target names what it links in its header comment:
#   fuzz-sources: runtime/a.c runtime/b.c      (relative to the top directory)
#   fuzz-packages: libsodium libcjson          (pkg-config names)
# so new targets need no change here. Seeds come from tests/fuzz/corpus/TARGET/.
#
# Needs clang and the fuzzer runtime (Debian 12: apt-get install clang
# libclang-rt-14-dev; the runtime is only a Recommends of clang). Exits
# non-zero when a target crashes; the reproducer stays in $FUZZ_OUT.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-10}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    targets=$*
else
    targets=$(cd "$here" && ls fuzz_*.c | sed 's/\.c$//')
fi
cc=${FUZZ_CC:-clang}
out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/nova-fuzz.XXXXXX")}
mkdir -p "$out/include"
: >"$out/include/config.h" # the fuzzed sources need no configure results

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
    'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)(n & 0); }' \
    >"$out/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$out/probe" "$out/probe.c" 2>"$out/probe.log"; then
    echo "run.sh: $cc cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev):" >&2
    cat "$out/probe.log" >&2
    exit 1
fi

status=0
for t in $targets; do
    file="$here/$t.c"
    srcs=$(sed -n 's/^.*fuzz-sources: *//p' "$file")
    pkgs=$(sed -n 's/^.*fuzz-packages: *//p' "$file")
    paths=""
    for s in $srcs; do
        paths="$paths $top/$s"
    done
    echo "== $t: building"
    # shellcheck disable=SC2086
    "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$out/include" -I"$top/include" -I"$top/runtime" ${pkgs:+$(pkg-config --cflags $pkgs)} \
        -o "$out/$t" "$file" $paths ${pkgs:+$(pkg-config --libs $pkgs)}
    corpus="$out/corpus-$t"
    mkdir -p "$corpus"
    if [ -d "$here/corpus/$t" ]; then
        cp "$here/corpus/$t/"* "$corpus/"
    fi
    echo "== $t: fuzzing for ${secs}s"
    if ! "$out/$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/$t-" "$corpus" 2>"$out/$t.log"; then
        echo "== $t: FAILED, see $out/$t.log and $out/$t-*" >&2
        tail -n 40 "$out/$t.log" >&2
        status=1
    else
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$out/$t.log" | sed "s/^/   /"
    fi
done
echo "fuzz output: $out"
exit $status
