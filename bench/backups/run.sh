#!/bin/bash
# bench/backups/run.sh BUILDDIR [GIB] - the backups plugin on a database of
# GIB GiB (default 1), not part of `make check`.
#
# A throwaway PostgreSQL 15 and Redis (tests/plugins/lib.sh), a database of
# GIB GiB of rows that do not compress away (random hex, timestamps,
# integers), then one backup job through the daemon (pg_dump, encryption,
# verification with pg_restore --list): the job's time (bullmq add to
# completed), the worker's peak RSS (VmHWM) and the event loop's latency
# while it runs, sampled every 100 ms two ways: the runtime's own
# nova_worker_loop_lag_seconds and the time /healthz takes to answer. The
# same job on a 10 MB database shows that the worker's memory does not
# depend on the size of the database. Prints a markdown report.
set -euo pipefail
PL_BUILD=$(cd "${1:?usage: bench/backups/run.sh BUILDDIR [GIB]}" && pwd)
PL_SRC=$(cd "$(dirname "$0")/../.." && pwd)
GIB=${2:-1}
BK_TEST=bench_backups
. "$PL_SRC/tests/backups/lib.sh"

pl_setup
T=$PL_TMP
say() { echo "bench_backups: $*" >&2; }

bk_cli keygen "$T/key"
[ "$BK_RC" = 0 ] || bk_fail "keygen: $BK_ERR"

gen() { # DB BYTES ROWS_PER_BATCH
    local rows=$3
    pl_create_db "$1"
    pl_psql -d "$1" -c "CREATE TABLE events (id bigint, user_id int, kind text, payload text, at timestamptz)" >/dev/null
    local k=0
    while [ "$(pl_psql -d "$1" -c "SELECT pg_database_size(current_database())")" -lt "$2" ]; do
        pl_psql -d "$1" -c "INSERT INTO events SELECT g, ((g::bigint * 7919) % 100000)::int, (ARRAY['earned','redeemed','bonus'])[1 + g % 3],
                             md5(random()::text) || md5(random()::text), timestamptz '2026-01-01' + g * interval '1 second'
                             FROM generate_series($((k * rows + 1)), $(((k + 1) * rows))) g" >/dev/null
        k=$((k + 1))
    done
}

# measure DB: one backup job of DB through the daemon; prints a result line
# (not "db": pl_config assigns that name)
measure() {
    local mdb=$1 port conf
    port=$(nova_free_port)
    conf=$T/$mdb.conf
    PL_METRICS_PORT=$port bk_config "$conf" "$T/dir-$mdb" "$T/key" "$(bk_dsn_of "$mdb")" "schedule =" "keep_last = 10"
    pl_start_worker "w-$mdb" "$conf"
    local pid=${PL_PID[w-$mdb]}
    local hwm0
    hwm0=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    local id
    id=$("$PL_BUILD/nova-worker" queue add backups backup '{}' -c "$conf")
    local t0
    t0=$(date +%s.%N)
    pl_job wait backups "$id" --timeout 7200000 >"$T/result-$mdb" &
    local waiter=$!
    : >"$T/lag-$mdb"
    while kill -0 "$waiter" 2>/dev/null; do
        lag=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^nova_worker_loop_lag_seconds/ {print $2}')
        hz=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/healthz")
        echo "${lag:-0} $hz" >>"$T/lag-$mdb"
        sleep 0.1
    done
    wait "$waiter"
    local t1
    t1=$(date +%s.%N)
    local hwm
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    grep -q '"state":"completed"' "$T/result-$mdb" || bk_fail "backup of $mdb: $(cat "$T/result-$mdb")"
    pl_finish_worker "w-$mdb" || bk_fail "worker shutdown"
    local man
    man=$(ls "$T/dir-$mdb"/*.json)
    python3 - "$mdb" "$man" "$T/lag-$mdb" "$t0" "$t1" "$hwm0" "$hwm" \
        "$(pl_psql -d "$mdb" -c "SELECT pg_database_size(current_database())")" <<'PY'
import json, sys
db, man, lagf, t0, t1, hwm0, hwm, size = sys.argv[1:]
m = json.load(open(man))
lags, hz = [], []
for line in open(lagf):
    a, b = line.split()
    lags.append(float(a)); hz.append(float(b))
hz.sort()
p99 = hz[min(len(hz) - 1, int(len(hz) * 0.99))] if hz else 0
print(f"{db}|{int(size) / 2**20:.0f} MiB|{m['dump_size_bytes'] / 2**20:.0f} MiB|{m['size_bytes'] / 2**20:.0f} MiB|"
      f"{m['duration_seconds']:.1f} s|{float(t1) - float(t0):.1f} s|{int(hwm0) / 1024:.1f} MiB|{int(hwm) / 1024:.1f} MiB|"
      f"{max(lags) * 1000 if lags else 0:.1f} ms|{max(hz) * 1000 if hz else 0:.1f} ms|{p99 * 1000:.1f} ms|{len(hz)}")
PY
}

say "generating a ${GIB} GiB database (and a 10 MB one)"
g0=$(date +%s)
gen big $((GIB * 1024 * 1024 * 1024)) 250000
gen small $((10 * 1024 * 1024)) 20000
say "generated in $(($(date +%s) - g0)) s"
res_small=$(measure small)
res_big=$(measure big)
# for comparison: pg_dump alone, to a file on the same disk
p0=$(date +%s.%N)
"$BK_PGBIN/pg_dump" --format=custom --no-password --file="$T/plain.dump" "$(bk_dsn_of big)"
p1=$(date +%s.%N)
plain=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s, {int(sys.argv[3]) / 2**20:.0f} MiB')" "$p0" "$p1" "$(stat -c %s "$T/plain.dump")")

cat <<EOF
| database | size (pg_database_size) | pg_dump output | encrypted file | dump + encryption | job (with verification) | worker RSS before | worker peak RSS (VmHWM) | max loop lag | max /healthz | p99 /healthz | samples |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| $(echo "$res_small" | sed 's/|/ | /g') |
| $(echo "$res_big" | sed 's/|/ | /g') |

pg_dump --format=custom of the big database alone, to a file: $plain.
EOF
