#!/bin/bash
# bench/reports/run.sh BUILDDIR [ROWS] - the reports plugin on a transaction
# report of ROWS rows (default 1,000,000), not part of `make check`.
#
# Seeds ROWS transactions dated yesterday (UTC) into Nova's schema on a
# throwaway PostgreSQL 15 and Redis (tests/plugins/lib.sh), runs one
# scheduled daily transaction report through the daemon (the cache entry,
# then every row streamed through a cursor into the CSV file), and prints
# the time of the report, the file's size and rows, and the worker's peak
# RSS (VmHWM) before and after. For comparison it then does what a Node
# export of the same rows needs: node-pg reads them whole and Nova's
# reportExporter toCSV() joins them (its peak RSS and time).
set -euo pipefail
BUILD=$(cd "${1:?usage: run.sh BUILDDIR [ROWS]}" && pwd)
ROWS=${2:-1000000}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export NOVA_SRCDIR=$SRC NOVA_BUILDDIR=$BUILD NOVA_MODULE_DIR=$BUILD/runtime/.libs
. "$SRC/tests/reports/lib.sh"

rp_setup
pl_psql -c "TRUNCATE transactions" >/dev/null
echo "seeding $ROWS transactions dated yesterday..." >&2
t0=$(date +%s.%N)
pl_psql >/dev/null <<SQL
INSERT INTO transactions (tx_hash, tx_type, amount, from_wallet, to_wallet, merchant_id,
                          campaign_id, stellar_ledger, created_at, user_id, status,
                          refund_reason, metadata)
SELECT md5('bench' || g),
       (ARRAY['distribution', 'redemption', 'transfer', 'refund'])[1 + g % 4],
       round((g * 12.3456789)::numeric % 1000, 7) + 0.0000001,
       'GFROM' || lpad(g::text, 51, '0'), 'GTO' || lpad(g::text, 53, '0'),
       1 + g % 4, 1 + g % 5, 1000000 + g,
       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'
           + (g % 86400000) * interval '1 millisecond' + (g % 1000) * interval '1 microsecond',
       1 + g % 40, 'completed',
       CASE WHEN g % 10 = 0 THEN E'wrong item, "damaged"\nsecond line' END,
       jsonb_build_object('order', g, 'note', 'caf\u00e9, "x"')
FROM generate_series(1, $ROWS) g;
ANALYZE transactions;
SQL
seed=$(echo "$(date +%s.%N) - $t0" | bc)
echo "seeded in ${seed}s" >&2

out=$PL_TMP/out
rp_config "daily = transaction" "daily_schedule = 0 0 1 1 *" "output_dir = $out" "keep_days = 0"
pl_start_worker w1 "$RP_CONF"
pid=${PL_PID[w1]}
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_before=$(hwm "$pid")
t0=$(date +%s.%N)
r=$(pl_job run reports scheduled '{"period":"daily"}' --timeout 1800000)
t1=$(date +%s.%N)
[ "$(rp_field "$r" state)" = completed ] || rp_fail "bench run: $r"
rss_after=$(hwm "$pid")
res=$(rp_field "$r" returnvalue)
file=$(rp_field "$res" reports.0.file)
rows=$(rp_field "$res" reports.0.rows)
bytes=$(rp_field "$res" reports.0.bytes)
lines=$(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))) - 1)' "$file")
[ "$lines" = "$ROWS" ] && [ "$rows" = "$ROWS" ] || rp_fail "file has $lines rows, result $rows, seeded $ROWS"
secs=$(echo "$t1 - $t0" | bc)
ms=$(grep -o '"msg":"report transaction[^"]*' "$PL_TMP/w1.log" | grep -o '[0-9]* ms$' | tail -1)
pl_finish_worker w1 || rp_fail "worker shutdown"

# Node: node-pg reads the rows whole, Nova's toCSV joins them
node_out=$(node -e '
const { Client } = require("pg");
const t0 = Date.now();
let peak = 0;
const tick = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
(async () => {
  const c = new Client({ connectionString: process.argv[1] });
  await c.connect();
  const r = await c.query(`SELECT * FROM transactions WHERE created_at >= $1 AND created_at <= $2 ORDER BY created_at DESC`, [process.argv[2], process.argv[3]]);
  peak = Math.max(peak, process.memoryUsage().rss);
  const headers = Object.keys(r.rows[0]);
  const esc = (v) => { const s = String(v ?? ""); return s.includes(",") || s.includes("\"") || s.includes("\n") ? `"${s.replace(/"/g, "\"\"")}"` : s; };
  const csv = [headers.join(","), ...r.rows.map((row) => headers.map((h) => esc(row[h])).join(","))].join("\n");
  peak = Math.max(peak, process.memoryUsage().rss);
  await c.end();
  clearInterval(tick);
  console.log(JSON.stringify({ secs: (Date.now() - t0) / 1000, rss_mib: Math.round(peak / 1048576), rows: r.rows.length, bytes: Buffer.byteLength(csv) }));
})().catch((e) => { console.error(e); process.exit(1); });' "$PL_DSN" "$(rp_field "$res" startDate)" "$(rp_field "$res" endDate)" 2>&1) || node_out="failed: $node_out"

cat <<EOF2
| measure | value |
| --- | --- |
| rows in the report (file) | $ROWS |
| CSV file | $bytes bytes |
| time of the job (bullmq add to completed) | ${secs} s |
| time of the report (worker's log line) | ${ms:-?} |
| worker VmHWM before the job | $((rss_before / 1024)) MiB |
| worker VmHWM after the job | $((rss_after / 1024)) MiB |
| Node, node-pg + Nova's toCSV on the same rows | $node_out |
EOF2
