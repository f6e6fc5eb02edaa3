#!/bin/bash
# End to end, with real Redis, PostgreSQL 15 and bullmq: the daily_bonus
# plugin grants Nova's cohort of a day once, with exact balances.
#   1. a scheduler-style job (id repeat:daily-bonus-grant:<slot>) grants the
#      eligible users and nobody else: every balance and point_transactions
#      row is checked, before and after;
#   2. a second run (a manual {"day": ...}) grants nobody;
#   3. two workers running the same day concurrently grant each user once;
#   4. a worker killed with kill -9 in the middle of a batch leaves whole
#      batches only, and the job, given back by the stall sweep, finishes
#      the day on another worker: everybody once;
#   5. the days of a time zone; refused days; a user the database refuses
#      fails alone; the runtime's scheduler;
# and every worker exits 0 on SIGTERM without sanitizer reports.
set -euo pipefail
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$PL_SRC/tests/plugins/lib.sh"

fail() {
    echo "e2e_daily_bonus: FAIL: $*" >&2
    exit 1
}
field() {
    node -e '
const v = process.argv[2].split(".").reduce((a, k) => a[k], JSON.parse(process.argv[1]));
console.log(typeof v === "object" ? JSON.stringify(v) : v);' "$1" "$2"
}
# expect_done RESULT_OF_jobs.js WANTED_RETURNVALUE
expect_done() {
    [ "$(field "$1" state)" = completed ] && [ "$(field "$1" returnvalue)" = "$2" ] ||
        fail "job result $1, expected $2"
}

pl_setup
unset DAILY_BONUS_POINTS
PL_METRICS_PORT=$(nova_free_port)
conf=$PL_TMP/bonus.conf
pl_config "$conf" daily_bonus nova "schedule ="
pl_migrate "$conf"
PL_METRICS_PORT=0

# The day of the runs: today in UTC; its window is yesterday.
D=$(pl_psql -c "SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')")
SLOT=$(pl_psql -c "SELECT (extract(epoch FROM '$D'::date::timestamp AT TIME ZONE 'UTC') * 1000)::bigint")

# ---- 1. one run: exactly the eligible users, exact balances ---------------
# Balances come the way the API makes them: an earned row, whose trigger
# sets user_balance to its balance_after.
pl_psql >/dev/null <<SQL
INSERT INTO users (id, wallet_address, is_deleted, last_login_at, daily_bonus_granted_at) VALUES
    (1,  'GU01', false, '$D'::date - 1 + time '08:00', NULL),             -- eligible, no balance
    (2,  'GU02', false, '$D'::date - 1 + time '12:00', NULL),             -- eligible, balance 250
    (3,  'GU03', true,  '$D'::date - 1 + time '09:00', NULL),             -- deleted
    (4,  'GU04', false, '$D'::date + time '00:30', NULL),                 -- logged in today
    (5,  'GU05', false, '$D'::date - 2 + time '12:00', NULL),             -- two days ago
    (6,  'GU06', false, '$D'::date - 1 + time '10:00', '$D'::date + time '00:00:05'), -- granted
    (7,  'GU07', false, '$D'::date - 1 + time '11:00', '$D'::date - 1 + time '00:00:05'), -- the day before's
    (8,  'GU08', false, NULL, NULL),                                      -- never logged in
    (9,  'GU09', false, '$D'::date - 1 + time '13:00', NULL),             -- eligible, balance row of 0
    (10, 'GU10', false, '$D'::date - 1 + time '00:00', NULL),             -- first instant of the window
    (11, 'GU11', false, '$D'::date + time '00:00', NULL),                 -- first instant after it
    (12, 'GU12', false, '$D'::date - 1 + time '14:00', NULL),             -- eligible, balance 1000000
    (13, 'GU13', false, '$D'::date - 1 + time '23:59:59.999', NULL);      -- last instant of the window
INSERT INTO point_transactions (user_id, type, amount, balance_before, balance_after) VALUES
    (2, 'earned', 250, 0, 250), (3, 'earned', 40, 0, 40), (4, 'earned', 15, 0, 15),
    (6, 'earned', 70, 0, 70), (7, 'earned', 5, 0, 5), (12, 'earned', 1000000, 0, 1000000);
INSERT INTO user_balance (user_id, balance) VALUES (9, 0);
SQL

# One line per user: balance (- for no row), granted for day D (t/f), the
# bonus rows as amount:before:after.
state() {
    pl_psql -F ' ' -c "
      SELECT u.id, coalesce(b.balance::text, '-'),
             coalesce(u.daily_bonus_granted_at >= '$D'::date::timestamp AT TIME ZONE 'UTC', false),
             coalesce((SELECT string_agg(p.amount || ':' || p.balance_before || ':' || p.balance_after, ',' ORDER BY p.id)
                       FROM point_transactions p WHERE p.user_id = u.id AND p.type = 'bonus'), '-')
      FROM users u LEFT JOIN user_balance b ON b.user_id = u.id WHERE u.id $1 ORDER BY u.id"
}
before=$(state "<= 13")
want_before="1 - f -
2 250 f -
3 40 f -
4 15 f -
5 - f -
6 70 t -
7 5 f -
8 - f -
9 0 f -
10 - f -
11 - f -
12 1000000 f -
13 - f -"
[ "$before" = "$want_before" ] || fail "seed: $before"
granted6=$(pl_psql -c "SELECT daily_bonus_granted_at FROM users WHERE id = 6")

pl_start_worker w1 "$conf"
# the scheduler's job of the slot D 00:00: its data is {}, its timestamp
# when it was made; the plugin takes the day from the slot in its id
r=$(pl_job run daily-bonus grant '{}' --id "repeat:daily-bonus-grant:$SLOT") || fail "run 1: $r"
expect_done "$r" '{"credited":7,"skipped":1,"failed":0}'
after=$(state "<= 13")
want_after="1 10 t 10:0:10
2 260 t 10:250:260
3 40 f -
4 15 f -
5 - f -
6 70 t -
7 15 t 10:5:15
8 - f -
9 10 t 10:0:10
10 10 t 10:0:10
11 - f -
12 1000010 t 10:1000000:1000010
13 10 t 10:0:10"
[ "$after" = "$want_after" ] || fail "after run 1:
$after
expected:
$want_after"
[ "$(pl_psql -c "SELECT daily_bonus_granted_at FROM users WHERE id = 6")" = "$granted6" ] ||
    fail "user 6 (granted already) was marked again"
n=$(pl_psql -c "SELECT count(*) FROM point_transactions WHERE type = 'bonus' AND description = 'Daily login bonus $D'")
[ "$n" = 7 ] || fail "$n bonus rows described as the bonus of $D"
n=$(pl_psql -c "SELECT count(*) FROM point_transactions WHERE type = 'earned'")
[ "$n" = 6 ] || fail "earned rows changed: $n"

# ---- 2. a second run of the day grants nobody ---------------------------------
r=$(pl_job run daily-bonus grant "{\"day\":\"$D\"}") || fail "run 2: $r"
expect_done "$r" '{"credited":0,"skipped":8,"failed":0}'
[ "$(state "<= 13")" = "$want_after" ] || fail "run 2 changed something: $(state "<= 13")"

m=$(curl -sf "http://127.0.0.1:$(sed -n 's/^listen = 127.0.0.1://p' "$conf")/metrics") || fail "no /metrics"
echo "$m" | grep -E '^nova_daily_bonus_users_total\{.*result="credited".*\} 7$' >/dev/null ||
    fail "metrics: $(echo "$m" | grep nova_daily_bonus_users)"
echo "$m" | grep -E '^nova_daily_bonus_users_total\{.*result="skipped".*\} 9$' >/dev/null ||
    fail "metrics: $(echo "$m" | grep nova_daily_bonus_users)"
echo "$m" | grep -E '^nova_daily_bonus_runs_total\{.*outcome="ok".*\} 2$' >/dev/null ||
    fail "metrics: $(echo "$m" | grep nova_daily_bonus_runs)"

# refused days: not a date, not begun yet
r=$(pl_job run daily-bonus grant '{"day":"tomorrow"}') || fail "bad day: $r"
[ "$(field "$r" state)" = failed ] && echo "$r" | grep -q 'YYYY-MM-DD' || fail "a bad day was not refused: $r"
future=$(pl_psql -c "SELECT to_char('$D'::date + 3, 'YYYY-MM-DD')")
r=$(pl_job run daily-bonus grant "{\"day\":\"$future\"}") || fail "future day: $r"
[ "$(field "$r" state)" = failed ] && echo "$r" | grep -q 'has not begun' ||
    fail "a day 3 days ahead was not refused: $r"
[ "$(state "<= 13")" = "$want_after" ] || fail "a refused run changed something"
pl_finish_worker w1 || fail "worker w1 shutdown"

# Slow bonus inserts (5 ms a row), so that runs overlap and a kill lands
# inside a batch.
slow() {
    pl_psql >/dev/null <<SQL
SET client_min_messages = warning;
CREATE OR REPLACE FUNCTION test_slow_bonus() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.type = 'bonus' THEN PERFORM pg_sleep($1); END IF;
    RETURN NEW;
END
\$\$;
DROP TRIGGER IF EXISTS test_slow_bonus ON point_transactions;
CREATE TRIGGER test_slow_bonus BEFORE INSERT ON point_transactions
    FOR EACH ROW EXECUTE FUNCTION test_slow_bonus();
SQL
}
# seed FROM TO: eligible users; the even ones have a balance of their id
seed() {
    pl_psql >/dev/null <<SQL
INSERT INTO users (id, wallet_address, last_login_at)
SELECT g, 'GU' || g, '$D'::date - 1 + (g % 1440) * interval '1 minute' FROM generate_series($1, $2) g;
INSERT INTO point_transactions (user_id, type, amount, balance_before, balance_after)
SELECT g, 'earned', g, 0, g FROM generate_series($1, $2) g WHERE g % 2 = 0;
SQL
}
# exactly_once FROM TO: prints how many users of the range hold exactly one
# bonus row with the true balances, the balance matching, granted for D
exactly_once() {
    pl_psql -c "
      SELECT count(*) FROM users u JOIN user_balance b ON b.user_id = u.id
      WHERE u.id BETWEEN $1 AND $2
        AND u.daily_bonus_granted_at >= '$D'::date::timestamp AT TIME ZONE 'UTC'
        AND b.balance = CASE WHEN u.id % 2 = 0 THEN u.id ELSE 0 END + 10
        AND (SELECT count(*) FROM point_transactions p WHERE p.user_id = u.id AND p.type = 'bonus') = 1
        AND EXISTS (SELECT 1 FROM point_transactions p WHERE p.user_id = u.id AND p.type = 'bonus'
                    AND p.amount = 10 AND p.balance_before = b.balance - 10 AND p.balance_after = b.balance)"
}
# untouched FROM TO: users of the range with no bonus row, no mark, and
# their balance as seeded
untouched() {
    pl_psql -c "
      SELECT count(*) FROM users u LEFT JOIN user_balance b ON b.user_id = u.id
      WHERE u.id BETWEEN $1 AND $2 AND u.daily_bonus_granted_at IS NULL
        AND coalesce(b.balance, 0) = CASE WHEN u.id % 2 = 0 THEN u.id ELSE 0 END
        AND NOT EXISTS (SELECT 1 FROM point_transactions p WHERE p.user_id = u.id AND p.type = 'bonus')"
}

# ---- 3. two workers, the same day, at the same time --------------------------
seed 1001 1300
slow 0.005
race=$PL_TMP/race.conf
pl_config "$race" daily_bonus nova "schedule =" "batch_size = 10"
pl_start_worker r1 "$race"
pl_start_worker r2 "$race"
pl_job add daily-bonus grant "{\"day\":\"$D\"}" --id race-a >/dev/null
pl_job add daily-bonus grant "{\"day\":\"$D\"}" --id race-b >/dev/null
ra=$(pl_job wait daily-bonus race-a) || fail "race-a: $ra"
rb=$(pl_job wait daily-bonus race-b) || fail "race-b: $rb"
echo "race: $ra $rb"
ca=$(field "$ra" returnvalue.credited)
cb=$(field "$rb" returnvalue.credited)
[ "$(field "$ra" state)" = completed ] && [ "$(field "$rb" state)" = completed ] || fail "race: $ra $rb"
[ "$((ca + cb))" = 300 ] || fail "race: $ca + $cb credited, expected 300"
[ "$ca" -gt 0 ] && [ "$cb" -gt 0 ] || fail "race: one worker did all ($ca, $cb): no race happened"
[ "$(field "$ra" returnvalue.failed)" = 0 ] && [ "$(field "$rb" returnvalue.failed)" = 0 ] || fail "race failures"
n=$(exactly_once 1001 1300)
[ "$n" = 300 ] || fail "race: $n of 300 users granted exactly once with the true balances"
grep -q '"job":"race-' "$PL_TMP/r1.log" && grep -q '"job":"race-' "$PL_TMP/r2.log" ||
    fail "race: the two jobs did not run on two workers"
pl_finish_worker r1 || fail "worker r1 shutdown"
pl_finish_worker r2 || fail "worker r2 shutdown"

# ---- 4. kill -9 inside a batch, then the job finishes elsewhere -------------------
seed 2001 2200
slow 0.01
kill=$PL_TMP/kill.conf
pl_config "$kill" daily_bonus nova "schedule =" "batch_size = 5" "lock_duration = 5s"
pl_start_worker k1 "$kill"
pl_job add daily-bonus grant "{\"day\":\"$D\"}" --id kill-run >/dev/null
# kill while a batch is inserting, after some batches committed
inserting=
for _ in $(seq 400); do
    done_n=$(pl_psql -c "SELECT count(*) FROM users WHERE id BETWEEN 2001 AND 2200 AND daily_bonus_granted_at IS NOT NULL")
    if [ "$done_n" -ge 30 ]; then
        inserting=$(pl_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'nova'
                                AND state = 'active' AND query LIKE 'INSERT INTO point_transactions%'")
        [ "$inserting" = 1 ] && break
    fi
    sleep 0.01
done
[ "$inserting" = 1 ] || fail "never caught the worker inside a batch ($done_n granted)"
pl_kill_worker k1 KILL
# the server ends the dead worker's sessions, rolling the open batch back
for _ in $(seq 100); do
    open=$(pl_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'nova' AND pid <> pg_backend_pid()
                       AND (state <> 'idle' OR xact_start IS NOT NULL)")
    [ "$open" = 0 ] && break
    sleep 0.05
done
[ "$open" = 0 ] || fail "the killed worker's sessions are still open"
g=$(pl_psql -c "SELECT count(*) FROM users WHERE id BETWEEN 2001 AND 2200 AND daily_bonus_granted_at IS NOT NULL")
echo "kill -9 after $g of 200 users"
[ "$g" -gt 0 ] && [ "$g" -lt 200 ] || fail "killed after $g of 200: not in the middle"
[ $((g % 5)) = 0 ] || fail "$g users granted: not whole batches of 5"
n=$(pl_psql -c "SELECT count(*) FROM point_transactions WHERE type = 'bonus' AND user_id BETWEEN 2001 AND 2200")
[ "$n" = "$g" ] || fail "$n bonus rows for $g marked users"
[ "$(exactly_once 2001 2200)" = "$g" ] || fail "after the kill: granted users with wrong rows"
[ "$(untouched 2001 2200)" = $((200 - g)) ] || fail "after the kill: half-granted users"
# the job is still active, its lock lapses (5 s), the stall sweep gives it
# back, and a new worker finishes the day
pl_start_worker k2 "$kill"
r=$(pl_job wait daily-bonus kill-run --timeout 60000) || fail "kill-run after restart: $r"
total=$(pl_psql -c "SELECT count(*) FROM users WHERE is_deleted = false AND daily_bonus_granted_at >= '$D'::date::timestamp AT TIME ZONE 'UTC'
                    AND last_login_at >= ('$D'::date - 1)::timestamp AT TIME ZONE 'UTC' AND last_login_at < '$D'::date::timestamp AT TIME ZONE 'UTC'")
expect_done "$r" "{\"credited\":$((200 - g)),\"skipped\":$((total - 200 + g)),\"failed\":0}"
grep -q '"job":"kill-run"' "$PL_TMP/k2.log" || fail "kill-run did not finish on the new worker"
[ "$(exactly_once 2001 2200)" = 200 ] || fail "after the rerun: not everybody exactly once"
[ "$(exactly_once 1001 1300)" = 300 ] || fail "after the rerun: the race's users changed"
[ "$(state "<= 13")" = "$want_after" ] || fail "after the rerun: the first users changed"
n=$(pl_psql -c "SELECT count(*) FROM point_transactions WHERE type = 'bonus'")
[ "$n" = 507 ] || fail "$n bonus rows in all, expected 7 + 300 + 200"
pl_finish_worker k2 || fail "worker k2 shutdown"

# ---- 5. the days of a time zone ---------------------------------------------------
# Day D in New York begins at 04:00 or 05:00 UTC: a login at D 03:00 UTC
# is of D-1 there, one at D-1 02:00 UTC of D-2.
pl_create_db nova_tz
tz=$PL_TMP/tz.conf
pl_config "$tz" daily_bonus nova_tz "schedule =" "timezone = America/New_York" "points = 7"
pl_migrate "$tz"
pl_psql -d nova_tz >/dev/null <<SQL
INSERT INTO users (id, wallet_address, last_login_at) VALUES
    (1, 'GT1', '$D'::date + time '03:00'),
    (2, 'GT2', '$D'::date - 1 + time '02:00'),
    (3, 'GT3', '$D'::date - 1 + time '12:00');
SQL
NYSLOT=$(pl_psql -c "SELECT (extract(epoch FROM '$D'::date::timestamp AT TIME ZONE 'America/New_York') * 1000)::bigint")
pl_start_worker t1 "$tz"
r=$(pl_job run daily-bonus grant '{}' --id "repeat:daily-bonus-grant:$NYSLOT") || fail "New York run: $r"
expect_done "$r" '{"credited":2,"skipped":0,"failed":0}'
got=$(pl_psql -d nova_tz -F ' ' -c "SELECT u.id, coalesce(b.balance::text, '-') FROM users u LEFT JOIN user_balance b ON b.user_id = u.id ORDER BY u.id" | tr '\n' ';')
[ "$got" = "1 7;2 -;3 7;" ] || fail "New York day: $got"
pl_finish_worker t1 || fail "worker t1 shutdown"

# ---- 6. a user the database refuses fails alone ---------------------------------------
# User 5's balance would overflow INT: its batch (5..8, batch_size 4) is
# refused and redone one user per transaction; 5 fails, the others are
# granted; a second run tries 5 again, and grants nobody else twice.
pl_create_db nova_fail
bad=$PL_TMP/fail.conf
pl_config "$bad" daily_bonus nova_fail "schedule =" "batch_size = 4"
pl_migrate "$bad"
pl_psql -d nova_fail >/dev/null <<SQL
INSERT INTO users (id, wallet_address, last_login_at)
SELECT g, 'GF' || g, '$D'::date - 1 + time '12:00' FROM generate_series(1, 12) g;
INSERT INTO user_balance (user_id, balance) VALUES (5, 2147483645), (6, 3);
SQL
pl_start_worker f1 "$bad"
r=$(pl_job run daily-bonus grant "{\"day\":\"$D\"}") || fail "refused user, run 1: $r"
expect_done "$r" '{"credited":11,"skipped":0,"failed":1}'
got=$(pl_psql -d nova_fail -F ' ' -c "SELECT u.id, coalesce(b.balance::text, '-'), u.daily_bonus_granted_at IS NOT NULL,
             (SELECT count(*) FROM point_transactions p WHERE p.user_id = u.id AND p.type = 'bonus')
      FROM users u LEFT JOIN user_balance b ON b.user_id = u.id ORDER BY u.id" | tr '\n' ';')
want="1 10 t 1;2 10 t 1;3 10 t 1;4 10 t 1;5 2147483645 f 0;6 13 t 1;7 10 t 1;8 10 t 1;9 10 t 1;10 10 t 1;11 10 t 1;12 10 t 1;"
[ "$got" = "$want" ] || fail "refused user: $got"
grep -q 'user 5 not granted: 22003' "$PL_TMP/f1.log" || fail "the refused user is not logged: $(grep 'not granted' "$PL_TMP/f1.log")"
r=$(pl_job run daily-bonus grant "{\"day\":\"$D\"}") || fail "refused user, run 2: $r"
expect_done "$r" '{"credited":0,"skipped":11,"failed":1}'
[ "$(pl_psql -d nova_fail -c "SELECT count(*) FROM point_transactions WHERE type = 'bonus'")" = 11 ] ||
    fail "refused user: the second run granted again"
pl_finish_worker f1 || fail "worker f1 shutdown"

# ---- the runtime's scheduler ---------------------------------------------------------
pl_config "$conf" daily_bonus nova "schedule = every 2s"
pl_start_worker s1 "$conf"
pl_wait_log s1 'schedules: ' 10 || fail "the runtime synced no schedule within 10 s"
grep -q 'upsert daily-bonus-grant on daily-bonus' "$PL_TMP/s1.log" ||
    fail "the schedule was not registered: $(grep 'schedules' "$PL_TMP/s1.log" | tail -3)"
sched=$(pl_wait_finished daily-bonus repeat:daily-bonus-grant: 10 ":$SLOT\"")
[ -n "$sched" ] || fail "no scheduled grant ran within 10 s"
[ "$(field "$sched" state)" = completed ] && [ "$(field "$sched" returnvalue.failed)" = 0 ] ||
    fail "scheduled grant: $sched"
pl_finish_worker s1 || fail "worker s1 shutdown"

echo "e2e_daily_bonus: ok"
