#!/bin/sh
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# straight from the runtime sources and runs each for N seconds.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (default: 10 s, every target)
#
# Needs clang and libclang-rt-<ver>-dev (Debian: apt-get install clang
# libclang-rt-14-dev on bookworm) plus libsodium-dev and libcjson-dev.
# Not part of `make check`. Exits non-zero when a target finds a crash;
# the reproducer is left in $FUZZ_OUT (printed at the end).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-10}
[ $# -gt 0 ] && shift
targets=${*:-"fuzz_xdr fuzz_strkey fuzz_scval fuzz_amount"}
cc=${FUZZ_CC:-clang}
out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/nova-fuzz.XXXXXX")}
mkdir -p "$out/include"
: >"$out/include/config.h" # the Stellar sources need no configure results

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 -I$out/include -I$top/include -I$top/runtime $(pkg-config --cflags libsodium libcjson)"
libs=$(pkg-config --libs libsodium libcjson)
srcs=""
for s in stellar_err stellar_strkey stellar_amount stellar_xdr stellar_tx stellar_scval; do
    srcs="$srcs $top/runtime/$s.c"
done

status=0
for t in $targets; do
    echo "== $t: building"
    # shellcheck disable=SC2086
    $cc $cflags -o "$out/$t" "$here/$t.c" $srcs $libs
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
