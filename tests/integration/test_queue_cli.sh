#!/usr/bin/env bash
# `nova-worker queue` through the real binary against a private
# redis-server: every command (text and --json, read back with python3),
# -c FILE before and after the command, refusals and exit codes (unknown
# id, wrong state, bad duration, usage), a connection error naming the
# address and not the password, progress only on a terminal; and the
# synopses, which must read the same in `queue --help`, each command's
# --help, docs/operations.md and nova-worker(8).
set -euo pipefail
: "${NOVA_BUILDDIR:?}" "${NOVA_SRCDIR:?}"
bin="$NOVA_BUILDDIR/nova-worker"
work=$(mktemp -d)
redis_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
rcli() { redis-cli -p "$port" "$@"; }
conf="$work/nova.conf"
printf '[redis]\nurl = redis://127.0.0.1:%s\n' "$port" >"$conf"
q() { "$bin" queue "$@" -c "$conf"; }
# expect STATUS CMD...: runs the command, checks its exit status
expect() {
    local want=$1 rc=0
    shift
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want: $(cat "$work/out" "$work/err")"
}

# ---- the synopses, the same everywhere ------------------------------------
"$bin" queue --help >"$work/help"
grep -E '^  [a-z]+ ' "$work/help" | sed 's/^  //' >"$work/synopses"
[ "$(wc -l <"$work/synopses")" = 12 ] || fail "queue --help lists $(wc -l <"$work/synopses") commands"
groff -man -Tascii -P-c "$NOVA_BUILDDIR/packaging/man/nova-worker.8" 2>/dev/null | col -bx |
    sed 's/^ *//' >"$work/man.txt"
while read -r syn; do
    cmd=${syn%% *}
    first=$("$bin" queue "$cmd" --help | head -1)
    [ "$first" = "usage: nova-worker queue $syn" ] ||
        fail "queue $cmd --help says '$first', queue --help '$syn'"
    grep -qxF "nova-worker queue $syn" "$NOVA_SRCDIR/docs/operations.md" ||
        fail "docs/operations.md lacks the line: nova-worker queue $syn"
    grep -qxF "nova-worker queue $syn" "$work/man.txt" ||
        fail "nova-worker(8) lacks the line: nova-worker queue $syn"
done <"$work/synopses"
n=$(grep -c '^nova-worker queue [a-z]' "$NOVA_SRCDIR/docs/operations.md")
[ "$n" = 12 ] || fail "docs/operations.md has $n queue synopses, the binary 12"
echo "PASS: 12 queue synopses read the same in --help, docs/operations.md and nova-worker(8)"

# ---- -c before and after the command ---------------------------------------
"$bin" queue add mail send '{"to":"a"}' -c "$conf" >/dev/null
"$bin" -c "$conf" queue add mail send '{"to":"b"}' --job-id m-2 >/dev/null
"$bin" --config="$conf" queue add mail later '{}' --job-id m-3 --delay 600000 >/dev/null
"$bin" queue -c "$conf" stats mail --json >"$work/out"
[ "$(json 'd["mail"]["waiting"], d["mail"]["delayed"]' <"$work/out")" = "2 1" ] ||
    fail "stats: $(cat "$work/out")"
"$bin" -c "$conf" queue stats --json | json 'd["mail"]["waiting"]' | grep -qx 2 || fail "-c before the command"
echo "PASS: -c FILE before and after the command"

# ---- reads ---------------------------------------------------------------------
q list mail waiting --json >"$work/out"
[ "$(json '[j["id"] for j in d["jobs"]], d["total"]' <"$work/out")" = "['m-2', '1'] 2" ] ||
    fail "list: $(cat "$work/out")"
q list mail waiting --limit 1 2>"$work/err" | grep -c . | grep -qx 1 || fail "list --limit 1"
grep -q '^1 of 2 waiting jobs of mail' "$work/err" || fail "list footer: $(cat "$work/err")"
q show m-3 --json >"$work/out"
[ "$(json 'd["queue"], d["state"], d["name"], d["opts"]["delay"], d["timestamp"][-1]' <"$work/out")" = \
  "mail delayed later 600000 Z" ] || fail "show: $(cat "$work/out")"
q show mail m-2 | grep -qx 'data             {"to":"b"}' || fail "show (text)"
expect 1 q show nope
grep -q "job 'nope' not found in any queue under the prefix 'bull'" "$work/err" || fail "show nope: $(cat "$work/err")"
expect 2 q list mail someday
expect 2 q frobnicate
expect 2 q list mail waiting --bogus
echo "PASS: stats, list, show"

# ---- changes ---------------------------------------------------------------------
expect 1 q promote m-2
grep -q "job 'm-2' of mail is not delayed (it is waiting)" "$work/err" || fail "promote m-2: $(cat "$work/err")"
q promote m-3 --json | json 'd["promoted"][0]["id"]' | grep -qx m-3 || fail "promote m-3"
[ "$(rcli hget bull:mail:m-3 delay)" = 0 ] || fail "promoted job's delay"
q pause mail --json | json 'd["paused"], d["wasPaused"]' | grep -qx 'True False' || fail "pause"
[ "$(rcli hget bull:mail:meta paused)" = 1 ] || fail "meta paused"
[ "$(rcli llen bull:mail:paused)" = 3 ] || fail "paused list"
q resume mail | grep -qx 'mail resumed' || fail "resume"
[ "$(rcli llen bull:mail:wait)" = 3 ] || fail "resumed wait list"
q remove 1 m-2 --json >"$work/out"
[ "$(json 'sorted(j["id"] for j in d["removed"]), d["errors"]' <"$work/out")" = "['1', 'm-2'] []" ] ||
    fail "remove: $(cat "$work/out")"
expect 1 q remove mail gone
# a failed job: failed, retry, clean
rcli hset bull:mail:m-3 failedReason boom atm 1 finishedOn 1000 >/dev/null
rcli lrem bull:mail:wait 0 m-3 >/dev/null
rcli zadd bull:mail:failed 1000 m-3 >/dev/null
q failed mail --json | json 'd["jobs"][0]["failedReason"]' | grep -qx boom || fail "failed"
q list mail failed 2>/dev/null | grep -q $'^m-3\tlater\tcreated=.*\treason=boom$' || fail "list failed"
q clean mail failed --older-than 1d --json | json 'd["cleaned"], d["ids"]' | grep -qx "1 \['m-3'\]" ||
    fail "clean"
[ "$(rcli exists bull:mail:m-3)" = 0 ] || fail "cleaned job left"
expect 2 q clean mail failed --older-than soon
grep -q "'soon' is not a duration" "$work/err" || fail "bad duration: $(cat "$work/err")"
expect 2 q clean mail failed
echo "PASS: promote, pause, resume, remove, failed, clean"

# ---- replay ------------------------------------------------------------------------
for i in 1 2 3; do
    q add reward-issuance-dlq dead-letter \
        "{\"issuanceId\":$i,\"idempotencyKey\":\"k$i\",\"campaignId\":1,\"walletAddress\":\"G$i\",\"amount\":\"1.5\",\"failedReason\":\"no_trustline: $i\"}" >/dev/null
done
q replay reward-issuance-dlq --all --dry-run >"$work/out" 2>"$work/err"
[ "$(wc -l <"$work/out")" = 3 ] || fail "dry run: $(cat "$work/out")"
grep -qxF '1 -> 1-replay-1 {"issuanceId":1,"idempotencyKey":"k1","campaignId":1,"walletAddress":"G1","amount":"1.5"}' \
    "$work/out" || fail "dry run line: $(cat "$work/out")"
[ "$(rcli llen bull:reward-issuance-dlq:wait)" = 3 ] || fail "the dry run changed the DLQ"
q replay reward-issuance-dlq 2 2>/dev/null | grep -qx '2 -> 2-replay-1' || fail "replay 2"
# progress on a terminal (script gives the command a pty), none otherwise
script -qfec "'$bin' queue replay reward-issuance-dlq --all -c '$conf'" /dev/null >"$work/tty" </dev/null ||
    fail "replay --all on a terminal: $(cat "$work/tty")"
grep -q 'replayed 2/2' "$work/tty" || fail "no progress on a terminal: $(cat -v "$work/tty")"
grep -aq '1 -> 1-replay-1' "$work/tty" || fail "replay --all: $(cat -v "$work/tty")"
[ "$(rcli llen bull:reward-issuance-dlq:wait)" = 0 ] || fail "DLQ not emptied"
[ "$(rcli hget bull:reward-issuance:3-replay-1 name)" = issue-reward ] || fail "replayed job name"
rcli hget bull:reward-issuance:3-replay-1 opts | python3 -c '
import json, sys
o = json.load(sys.stdin)
assert o == {"attempts": 3, "backoff": {"type": "exponential", "delay": 1000},
             "removeOnComplete": True, "removeOnFail": False, "jobId": "3-replay-1"}, o' ||
    fail "replayed job options"
q add reward-issuance-dlq dead-letter '{"issuanceId":4,"failedReason":"x"}' >/dev/null
q replay reward-issuance-dlq --all >"$work/out" 2>"$work/err"
! grep -q $'\r' "$work/err" || fail "progress written to a non-terminal"
expect 1 q replay reward-issuance-dlq 99
grep -q "job '99' not found in reward-issuance-dlq" "$work/err" || fail "replay 99: $(cat "$work/err")"
expect 2 q replay reward-issuance-dlq
expect 2 q replay reward-issuance-dlq 1 --all
echo "PASS: replay (dry run, ids, --all, progress on a terminal only)"

# ---- a Redis that cannot be reached ---------------------------------------------
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[redis]\nurl = redis://:hunter2secret@127.0.0.1:%s\n' "$dead" >"$work/dead.conf"
rc=0
"$bin" queue list mail waiting -c "$work/dead.conf" >/dev/null 2>"$work/err" || rc=$?
[ "$rc" = 1 ] || fail "unreachable Redis: exit $rc"
grep -q "nova-worker queue list: cannot connect to Redis at 127.0.0.1:$dead" "$work/err" ||
    fail "the error does not name the address: $(cat "$work/err")"
! grep -q hunter2secret "$work/err" || fail "the password was printed"
echo "PASS: an unreachable Redis is named, its password is not"
