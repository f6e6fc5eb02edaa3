#!/bin/bash
# End to end through the daemon, with real Redis, PostgreSQL 15 and bullmq:
#   - the runtime's scheduler (schedule "every 2s") with two workers makes
#     exactly one backup per slot: each job repeat:backups:<slot> ran once,
#     on one worker, and named its backup after its slot;
#   - `nova-worker queue add backups backup '{}'` makes a backup too, and
#     retention then deletes what the policy does not keep;
#   - a pg_dump failure (bad DSN) fails the job with pg_dump's reason, is
#     retried, and leaves no file; a failed verification is retried, marks
#     the backup FAILED and counts in nova_backup_verify_failures_total;
#   - the metrics; workers exit 0 on SIGTERM without sanitizer reports.
set -euo pipefail
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
BK_TEST=e2e_schedule
. "$PL_SRC/tests/backups/lib.sh"

pl_setup
T=$PL_TMP
pl_psql -c "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g" >/dev/null
bk_cli keygen "$T/key"
[ "$BK_RC" = 0 ] || bk_fail "keygen: $BK_ERR"
DSN=$(bk_dsn_of nova)

field() {
    node -e 'const v = process.argv[2].split(".").reduce((a, k) => a == null ? a : a[k], JSON.parse(process.argv[1]));
console.log(typeof v === "object" ? JSON.stringify(v) : v)' "$1" "$2"
}
metrics() {
    curl -sf "http://127.0.0.1:$1/metrics" || bk_fail "no /metrics on $1"
}
# attemptsMade of a job, through bullmq
attempts() {
    node -e '
const { Queue, Job } = require("bullmq");
const u = new URL(process.argv[1]);
const q = new Queue("backups", { connection: { host: u.hostname, port: Number(u.port) } });
Job.fromId(q, process.argv[2]).then((j) => { console.log(j.attemptsMade); return q.close(); });' "$PL_REDIS_URL" "$1"
}

# ---- two workers, one schedule: one backup per slot ------------------------------------
M1=$(nova_free_port)
PL_METRICS_PORT=$M1 bk_config "$T/w1.conf" "$T/dir1" "$T/key" "$DSN" "schedule = every 2s" "keep_last = 1000"
PL_METRICS_PORT=0 bk_config "$T/w2.conf" "$T/dir2" "$T/key" "$DSN" "schedule = every 2s" "keep_last = 1000"
pl_start_worker w1 "$T/w1.conf"
pl_start_worker w2 "$T/w2.conf"
done_slots=
for _ in $(seq 150); do
    done_slots=$(pl_job finished backups | grep -c '"id":"repeat:backups:' || true)
    [ "$done_slots" -ge 4 ] && break
    sleep 0.1
done
[ "$done_slots" -ge 4 ] || bk_fail "only $done_slots scheduled backups in 15 s"
m=$(metrics "$M1")
pl_finish_worker w1 || bk_fail "worker w1 shutdown"
pl_finish_worker w2 || bk_fail "worker w2 shutdown"
pl_job finished backups >"$T/finished"
grep '"id":"repeat:backups:' "$T/finished" >"$T/slots" || true
if grep -v '"state":"completed"' "$T/slots" >&2; then bk_fail "a scheduled backup did not complete"; fi
n_jobs=$(wc -l <"$T/slots")
ids=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$T/slots" | sort)
[ "$(echo "$ids" | sort -u | wc -l)" = "$n_jobs" ] || bk_fail "a slot ran twice: $ids"
ls "$T/dir1" "$T/dir2" 2>/dev/null | grep -h '\.dump\.enc$' | sort >"$T/files" || true
[ "$(wc -l <"$T/files")" = "$n_jobs" ] || bk_fail "$n_jobs scheduled jobs but backups: $(cat "$T/files")"
[ "$(sort -u "$T/files" | wc -l)" = "$n_jobs" ] || bk_fail "one backup in both directories"
in1=$(ls "$T/dir1" | grep -c '\.dump\.enc$' || true)
in2=$(ls "$T/dir2" | grep -c '\.dump\.enc$' || true)
while read -r line; do
    id=$(field "$line" id)
    slot=${id##*:}
    name=$(field "$line" returnvalue.name)
    want=nova-nova-$(date -u -d "@$((slot / 1000))" +%Y%m%dT%H%M%SZ)
    [ "$name" = "$want" ] || bk_fail "job $id made $name, expected $want (its slot)"
    [ "$(field "$line" returnvalue.verified)" = true ] || bk_fail "job $id: not verified: $line"
    grep -qx "$name.dump.enc" "$T/files" || bk_fail "job $id: no file $name"
done <"$T/slots"
echo "schedule: $n_jobs slots, one backup each ($in1 by w1, $in2 by w2)"
# metrics of w1
echo "$m" | grep -qE '^nova_backup_last_success_timestamp_seconds(\{[^}]*\})? [1-9]' ||
    bk_fail "nova_backup_last_success_timestamp_seconds: $(echo "$m" | grep last_success)"
echo "$m" | grep -qE '^nova_backup_verify_failures_total(\{[^}]*\})? 0$' ||
    bk_fail "nova_backup_verify_failures_total: $(echo "$m" | grep verify_failures)"
echo "$m" | grep -qE '^nova_backup_size_bytes(\{[^}]*\})? [1-9]' || bk_fail "nova_backup_size_bytes"
echo "$m" | grep -qE '^nova_backup_duration_seconds_count(\{[^}]*\})? [1-9]' || bk_fail "nova_backup_duration_seconds"
[ "$in1" = 0 ] || echo "$m" | grep -qE '^nova_backup_runs_total\{.*outcome="ok".*\} [1-9]' ||
    bk_fail "nova_backup_runs_total: $(echo "$m" | grep runs_total)"

# ---- a job added by hand; retention deletes what it does not keep -----------------------
M3=$(nova_free_port)
PL_METRICS_PORT=$M3 bk_config "$T/w3.conf" "$T/dir1" "$T/key" "$DSN" "schedule =" "keep_last = 0"
pl_start_worker w3 "$T/w3.conf"
id=$("$PL_BUILD/nova-worker" queue add backups backup '{}' -c "$T/w3.conf") || bk_fail "queue add: $id"
r=$(pl_job wait backups "$id" --timeout 30000)
[ "$(field "$r" state)" = completed ] || bk_fail "manual backup job: $r"
name=$(field "$r" returnvalue.name)
[ -f "$T/dir1/$name.dump.enc" ] && [ -f "$T/dir1/$name.json" ] || bk_fail "manual job: no $name"
# all of dir1's backups are of today: keep_daily keeps today's newest only
[ "$(ls "$T/dir1")" = "$(printf '%s\n%s' "$name.dump.enc" "$name.json")" ] ||
    bk_fail "retention kept: $(ls "$T/dir1")"
m=$(metrics "$M3")
echo "$m" | grep -qE "^nova_backup_retention_deleted_total\{.*location=\"local\".*\} $in1\$" ||
    bk_fail "nova_backup_retention_deleted_total: $(echo "$m" | grep retention_deleted) (expected $in1)"
echo "$m" | grep -qE '^nova_backup_kept\{.*location="local".*\} 1$' || bk_fail "nova_backup_kept: $(echo "$m" | grep backup_kept)"
pl_finish_worker w3 || bk_fail "worker w3 shutdown"
echo "manual job: $name; retention removed $in1 older backups"

# ---- failures are retried with their reason and leave no file ---------------------------
M4=$(nova_free_port)
PL_METRICS_PORT=$M4 bk_config "$T/w4.conf" "$T/dir4" "$T/key" "postgresql://postgres@127.0.0.1:1/nova" "schedule ="
pl_start_worker w4 "$T/w4.conf"
id=$("$PL_BUILD/nova-worker" queue add backups backup '{}' --attempts 3 -c "$T/w4.conf") || bk_fail "queue add: $id"
r=$(pl_job wait backups "$id" --timeout 30000)
[ "$(field "$r" state)" = failed ] || bk_fail "bad DSN: $r"
field "$r" failedReason | grep -q 'pg_dump exited 1: .*Connection refused' || bk_fail "bad DSN reason: $r"
[ "$(attempts "$id")" = 3 ] || bk_fail "bad DSN: $(attempts "$id") attempts, expected 3 (retried)"
[ -z "$(ls -A "$T/dir4" 2>/dev/null)" ] || bk_fail "files left: $(ls "$T/dir4")"
m=$(metrics "$M4")
echo "$m" | grep -qE '^nova_backup_runs_total\{.*outcome="retry".*\} 3$' || bk_fail "runs_total after retries: $(echo "$m" | grep runs_total)"
pl_finish_worker w4 || bk_fail "worker w4 shutdown"
echo "pg_dump failure: $(field "$r" failedReason | cut -c1-120)"

# a pg_restore that rejects every dump: the verification fails
cat >"$T/bad_pg_restore" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "pg_restore: error: did not find magic string in file header" >&2
exit 1
EOF
chmod +x "$T/bad_pg_restore"
M5=$(nova_free_port)
PL_METRICS_PORT=$M5 bk_config "$T/w5.conf" "$T/dir5" "$T/key" "$DSN" "schedule =" "pg_restore = $T/bad_pg_restore"
pl_start_worker w5 "$T/w5.conf"
id=$("$PL_BUILD/nova-worker" queue add backups backup '{}' --attempts 2 -c "$T/w5.conf") || bk_fail "queue add: $id"
r=$(pl_job wait backups "$id" --timeout 30000)
[ "$(field "$r" state)" = failed ] || bk_fail "bad verification: $r"
field "$r" failedReason | grep -q 'verification of nova-nova-.* failed: pg_restore --list exited 1: pg_restore: error: did not find magic' ||
    bk_fail "verification reason: $r"
m=$(metrics "$M5")
echo "$m" | grep -qE '^nova_backup_verify_failures_total(\{[^}]*\})? 2$' ||
    bk_fail "nova_backup_verify_failures_total: $(echo "$m" | grep verify_failures)"
man=$(ls "$T/dir5"/*.json)
[ "$(bk_json "$man" verified)" = false ] && bk_json "$man" verify_error | grep -q 'did not find magic' ||
    bk_fail "the manifest does not record the failed verification: $(cat "$man")"
pl_finish_worker w5 || bk_fail "worker w5 shutdown"
echo "failed verification: $(field "$r" failedReason | cut -c1-120)"

# the key is in no log line of any worker
key=$(cat "$T/key")
for f in "$T"/w*.log; do
    grep -qF "$key" "$f" && bk_fail "the key is in $f"
done
echo "e2e_schedule: ok"
