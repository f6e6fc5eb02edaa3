#!/bin/sh
# pg_bench.sh - the runtime pool vs pgbench on the same PostgreSQL 15.
#
# Starts a throwaway server (temp dir, free port, as user postgres when
# run as root), loads pgbench data, then runs for SECONDS each:
#   pgbench -n -M extended -c 10 -j 2 -f pg_bench_select.sql  (a -S style script)
#   pg_bench --pool 10 --inflight 64                          (this pool)
# and prints both rates and their ratio.
#
# usage: bench/pg_bench.sh [BUILDDIR] [SECONDS] [SCALE]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
builddir=${1:-.}
seconds=${2:-10}
scale=${3:-5}
bin=/usr/lib/postgresql/15/bin
bench="$builddir/bench/pg_bench"
[ -x "$bench" ] || { echo "pg_bench.sh: $bench not built (make check or make bench/pg_bench)" >&2; exit 1; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

dir=$(mktemp -d /tmp/nova-pgbench-XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -N -E UTF8 --locale=C >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
shared_buffers = 128MB
max_connections = 50
CONF
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
rows=$((scale * 100000))
cp "$here/pg_bench_select.sql" "$dir/select.sql"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/select.sql"

pgb=$(as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -M extended -c 10 -j 2 \
      -T "$seconds" -D rows="$rows" -f "$dir/select.sql" postgres 2>/dev/null |
      sed -n 's/^tps = \([0-9.]*\).*/\1/p')
ours=$("$bench" --dsn "postgresql://postgres@127.0.0.1:$port/postgres" --pool 10 --inflight 64 \
       --seconds "$seconds" --rows "$rows")
qps=$(echo "$ours" | sed -n 's/.*qps=\([0-9]*\).*/\1/p')

echo "pgbench (10 conns, 2 threads, extended protocol): $pgb tps"
echo "nova pool (10 conns, 1 loop thread, 64 in flight): $qps qps  [$ours]"
python3 -c "print('ratio pool/pgbench: %.2f' % ($qps / $pgb))"
