#!/bin/bash
# End to end, with real Redis, PostgreSQL 15, bullmq and node-pg: a refresh
# job of the leaderboard plugin writes leaderboard:weekly and
# leaderboard:alltime byte for byte as Nova's warmer would (Nova's query
# through node-pg, JSON.stringify), with TTL 300; only 'earned' rows count,
# ties share a rank, the weekly list is the last 7 days; a second run sees
# new rows; a smaller `limit` cuts inside a tie the same way; a database
# without the columns keeps the plugin from starting; the worker exits 0 on
# SIGTERM without sanitizer reports.
set -euo pipefail
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$PL_SRC/tests/plugins/lib.sh"

fail() {
    echo "e2e_leaderboard: FAIL: $*" >&2
    exit 1
}

pl_setup
PL_METRICS_PORT=$(nova_free_port)
conf=$PL_TMP/leaderboard.conf
# no schedule: every refresh of this test is one it adds itself (the last
# part lets the runtime's scheduler add them)
pl_config "$conf" leaderboard nova "schedule ="
pl_migrate "$conf"
n=$(pl_psql -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_nova_worker_pt_earned'")
[ "$n" = 1 ] || fail "migration 103 did not create idx_nova_worker_pt_earned"

# 70 users (66..70 deleted: Nova's ranking still counts them), 5 earned rows
# each but user 65, over 3 weeks; the totals fall in 11 tie groups. Other
# types, large, must not count; user 65 has none earned. Two rows 1 h on
# either side of the 7-day limit.
pl_psql >/dev/null <<'SQL'
INSERT INTO users (id, wallet_address, is_deleted)
SELECT g, 'GUSER' || lpad(g::text, 51, '0'), g > 65 FROM generate_series(1, 70) g;
INSERT INTO point_transactions (user_id, type, amount, created_at)
SELECT u, 'earned', 5 * ((u * 7) % 11 + 1) + k,
       now() - ((u + 3 * k) % 21) * interval '1 day' - (u % 5) * interval '1 hour' - interval '30 minutes'
FROM generate_series(1, 70) u, generate_series(1, 5) k WHERE u <> 65;
INSERT INTO point_transactions (user_id, type, amount, created_at)
SELECT u, t, 1000 + u, now() - (u % 10) * interval '1 day'
FROM generate_series(1, 70) u, unnest(ARRAY['redeemed', 'bonus', 'referral', 'expired']) t
WHERE u % 3 = 0;
INSERT INTO point_transactions (user_id, type, amount, created_at) VALUES
    (65, 'bonus', 99999, now() - interval '1 day'),
    (61, 'earned', 300, now() - interval '7 days' + interval '1 hour'),
    (60, 'earned', 300, now() - interval '7 days' - interval '1 hour');
SQL
rows=$(pl_psql -c "SELECT count(*) FROM point_transactions")
[ "$rows" -ge 300 ] || fail "seeded only $rows point_transactions"

pl_start_worker w1 "$conf"

# refresh: the job's result counts the rows written per period
refresh() {
    pl_job run leaderboard refresh '{}' --timeout 30000
}
check() {
    node "$PL_SRC/tests/plugins/leaderboard_check.js" "$PL_DSN" "$PL_REDIS_URL" "$1"
}
field() {
    node -e '
const v = process.argv[2].split(".").reduce((a, k) => a[k], JSON.parse(process.argv[1]));
console.log(typeof v === "object" ? JSON.stringify(v) : v);' "$1" "$2"
}

r=$(refresh) || fail "refresh job: $r"
[ "$(field "$r" state)" = completed ] || fail "refresh job: $r"
c=$(check 50) || fail "caches differ from Nova's query (limit 50)"
echo "limit 50: $c"
# what the lists must hold: 50 of the 69 users with earned rows, of those
# with earned rows in the last 7 days
groups=$(pl_psql -c "SELECT count(DISTINCT user_id) FROM point_transactions WHERE type = 'earned'")
weekly=$(pl_psql -c "SELECT least(50, count(DISTINCT user_id)) FROM point_transactions
                     WHERE type = 'earned' AND created_at >= now() - interval '7 days'")
[ "$groups" = 69 ] || fail "seed: $groups users with earned rows"
[ "$weekly" -gt 20 ] || fail "seed: $weekly users with earned rows this week"
[ "$(field "$r" returnvalue)" = "{\"weekly\":$weekly,\"alltime\":50}" ] ||
    fail "refresh result $(field "$r" returnvalue), expected weekly $weekly, alltime 50"
[ "$(field "$c" alltime.cut_tie)" = true ] || fail "seed: the limit of 50 does not cut a tie ($c)"
# spot checks against the seed: ties share a rank and the next rank skips;
# other types and deleted users; the 7-day limit
top=$(redis-cli -p "$PL_REDIS_PORT" get leaderboard:alltime |
    node -e 'const l = JSON.parse(require("fs").readFileSync(0)); console.log(l.slice(0, 8).map((r) => r.user_id + ":" + r.total_points + ":" + r.rank).join(" "))')
want=$(pl_psql -c "SELECT string_agg(u || ':' || t || ':' || rk, ' ' ORDER BY rk, u) FROM (
          SELECT u, t, rank() OVER (ORDER BY t DESC) AS rk FROM (
            SELECT g AS u, 25 * ((g * 7) % 11 + 1) + 15 + CASE WHEN g IN (60, 61) THEN 300 ELSE 0 END AS t
            FROM generate_series(1, 70) g WHERE g <> 65) s) r WHERE rk <= 8")
[ "${top}" = "$(echo "$want" | cut -d' ' -f1-8)" ] || fail "top of alltime: $top, expected $want"
for key in weekly alltime; do
    redis-cli -p "$PL_REDIS_PORT" get "leaderboard:$key" | grep -q '"user_id":65,' &&
        fail "$key counts user 65, who has no earned row"
done
redis-cli -p "$PL_REDIS_PORT" get leaderboard:alltime | grep -q '"user_id":69,' ||
    fail "alltime leaves out deleted user 69, of the top group (Nova counts them)"
w=$(redis-cli -p "$PL_REDIS_PORT" get leaderboard:weekly)
echo "$w" | node -e '
const l = JSON.parse(require("fs").readFileSync(0));
const u61 = l.find((r) => r.user_id === 61), u60 = l.find((r) => r.user_id === 60);
if (!u61 || Number(u61.total_points) < 300) { console.error("user 61: the row 1 h inside the week is missing", u61); process.exit(1); }
if (u60 && Number(u60.total_points) >= 300) { console.error("user 60: the row 1 h before the week counts", u60); process.exit(1); }' ||
    fail "the 7-day limit"

# new rows: a second refresh sees them (and breaks a tie)
pl_psql -c "INSERT INTO point_transactions (user_id, type, amount) VALUES (1, 'earned', 1), (2, 'earned', 2000)" >/dev/null
r=$(refresh) || fail "second refresh: $r"
c=$(check 50) || fail "caches differ from Nova's query after new rows"
redis-cli -p "$PL_REDIS_PORT" get leaderboard:weekly | grep -q '^\[{"user_id":2,' ||
    fail "user 2's 2000 new points do not put it first this week"

# metrics: two refreshes, rows per period
m=$(curl -sf "http://127.0.0.1:$PL_METRICS_PORT/metrics") || fail "no /metrics"
echo "$m" | grep -E '^nova_leaderboard_runs_total\{.*outcome="ok".*\} 2$' >/dev/null ||
    fail "nova_leaderboard_runs_total: $(echo "$m" | grep nova_leaderboard_runs)"
echo "$m" | grep -E '^nova_leaderboard_rows\{.*period="alltime".*\} 50$' >/dev/null ||
    fail "nova_leaderboard_rows: $(echo "$m" | grep nova_leaderboard_rows)"
echo "$m" | grep -E '^nova_leaderboard_refresh_seconds_count(\{.*\})? 2$' >/dev/null ||
    fail "nova_leaderboard_refresh_seconds: $(echo "$m" | grep nova_leaderboard_refresh_seconds_count)"
pl_finish_worker w1 || fail "worker shutdown"

# a smaller list, cut inside a tie like Nova's
pl_config "$conf" leaderboard nova "schedule =" "limit = 7"
pl_start_worker w2 "$conf"
r=$(refresh) || fail "refresh with limit 7: $r"
[ "$(field "$r" returnvalue)" = '{"weekly":7,"alltime":7}' ] || fail "limit 7: $r"
c=$(check 7) || fail "caches differ from Nova's query (limit 7)"
echo "limit 7: $c"
[ "$(field "$c" alltime.cut_tie)" = true ] || fail "seed: the limit of 7 does not cut a tie ($c)"
pl_finish_worker w2 || fail "worker shutdown"

# the runtime's scheduler: the schedule the plugin declares for its config
# adds refresh jobs (id repeat:leaderboard-refresh:<slot>) that this worker
# runs.
pl_config "$conf" leaderboard nova "schedule = every 2s"
pl_start_worker w3 "$conf"
pl_wait_log w3 'schedules: ' 10 || fail "the runtime synced no schedule within 10 s"
grep -q 'upsert leaderboard-refresh on leaderboard' "$PL_TMP/w3.log" ||
    fail "the schedule was not registered: $(grep 'schedules' "$PL_TMP/w3.log" | tail -3)"
sched=$(pl_wait_finished leaderboard repeat:leaderboard-refresh: 10)
[ -n "$sched" ] || fail "no scheduled refresh ran within 10 s"
[ "$(field "$sched" state)" = completed ] && [ "$(field "$sched" returnvalue)" = "{\"weekly\":50,\"alltime\":50}" ] ||
    fail "scheduled refresh: $sched"
c=$(check 50) || fail "caches differ from Nova's query after a scheduled refresh"
pl_finish_worker w3 || fail "worker shutdown"

# a database without Nova's tables: the plugin refuses to start, naming
# the columns, before any job runs
pl_create_db empty
pl_config "$PL_TMP/empty.conf" leaderboard empty
"$PL_BUILD/nova-worker" run -c "$PL_TMP/empty.conf" >"$PL_TMP/empty.log" 2>&1 &
PL_PID[empty]=$!
for _ in $(seq 100); do
    grep -q 'missing column' "$PL_TMP/empty.log" && break
    sleep 0.1
done
grep -q 'plugin leaderboard: missing column(s) point_transactions.user_id' "$PL_TMP/empty.log" ||
    fail "no missing-column refusal: $(tail -5 "$PL_TMP/empty.log")"
! grep -q 'plugin leaderboard [0-9.]* started' "$PL_TMP/empty.log" || fail "started without its columns"
pl_finish_worker empty || fail "worker shutdown (database without the columns)"

echo "e2e_leaderboard: ok"
