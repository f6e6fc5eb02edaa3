#!/bin/bash
# Schedules fire once per fleet: four nova-worker processes on one Redis
# run the echo plugin with `schedule = every 1s`. Over 10 slots there must
# be exactly one job per slot, each run once; the four workers' upserts
# leave one scheduler; Node's Queue.getJobSchedulers() (the real bullmq)
# lists it with its next run; `nova-worker schedules` shows it; removing
# the schedule from the config removes it from Redis.
set -euo pipefail
src=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
build=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
fail() {
    echo "schedules: FAIL: $*" >&2
    for f in "$tmp"/w*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}
command -v node >/dev/null 2>&1 || { echo "schedules: node is not installed" >&2; exit 1; }
modules=${NOVA_NODE_ROOT:-$src}/tests/interop/node_modules
[ -d "$modules/bullmq" ] || { echo "schedules: run 'npm ci' in tests/interop" >&2; exit 1; }
export NODE_PATH=$modules

tmp=$(mktemp -d /tmp/nova-sched.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

config() { # config SCHEDULE
    cat >"$tmp/w.conf" <<EOF
[worker]
plugin_dir = $build/plugins/echo/.libs
shutdown_timeout = 2s
[redis]
url = redis://127.0.0.1:$port
[http]
listen =
[plugin echo]
enabled = yes
concurrency = 2
schedule = $1
EOF
}
config "every 1s"
"$build/nova-worker" check -c "$tmp/w.conf" | grep -q 'schedule echo-tick every 1s' ||
    fail "check does not show the schedule: $("$build/nova-worker" check -c "$tmp/w.conf" 2>&1)"
for i in 1 2 3 4; do
    "$build/nova-worker" run -c "$tmp/w.conf" >"$tmp/w$i.log" 2>&1 &
    pids+=($!)
done

# Wait until 10 slots have run after the first one we see.
runs() {
    redis-cli -p "$port" zrange bull:echo:completed 0 -1 | grep -c '^repeat:echo-tick:' || true
}
for _ in $(seq 200); do
    [ "$(runs)" -ge 11 ] && break
    sleep 0.1
done
[ "$(runs)" -ge 11 ] || fail "only $(runs) runs in 20 s"
node -e '
const { Queue } = require("bullmq");
(async () => {
  const q = new Queue("echo", { connection: { host: "127.0.0.1", port: +process.argv[1] } });
  const s = await q.getJobSchedulers();
  const counts = await q.getJobCounts();
  await q.close();
  if (s.length !== 1 || s[0].key !== "echo-tick" || s[0].every !== 1000 || s[0].name !== "tick" ||
      !(s[0].next > Date.now() - 1500)) { console.error(JSON.stringify(s)); process.exit(1); }
  if (counts.failed !== 0) { console.error("failed runs", counts); process.exit(1); }
})();' "$port" || fail "Node's getJobSchedulers does not list the schedule"

# Stop the fleet, then check: one job per slot, consecutive slots, each run once.
for p in "${pids[@]}"; do kill -TERM "$p" || fail "a worker was gone before the end"; done
for p in "${pids[@]}"; do wait "$p" || fail "a worker exited non-zero"; done
pids=()
redis-cli -p "$port" zrange bull:echo:completed 0 -1 | sed -n 's/^repeat:echo-tick://p' | sort -n >"$tmp/slots"
n=$(wc -l <"$tmp/slots")
first=$(head -1 "$tmp/slots")
last=$(tail -1 "$tmp/slots")
expect=$(((last - first) / 1000 + 1))
[ "$n" = "$expect" ] || fail "$n runs for $expect slots ($first..$last)"
[ "$(sort -u "$tmp/slots" | wc -l)" = "$n" ] || fail "a slot ran twice"
for id in $(redis-cli -p "$port" zrange bull:echo:completed 0 -1 | grep '^repeat:echo-tick:'); do
    a=$(redis-cli -p "$port" hget "bull:echo:$id" ats)
    [ "$a" = 1 ] || fail "$id was started $a times"
done
runners=$(cat "$tmp"/w*.log | grep -c '"msg":"schedules: upsert echo-tick on echo: created' || true)
[ "$runners" = 1 ] || fail "$runners workers created the scheduler (expected exactly one)"
echo "schedules: $n slots, $n runs, by 4 workers"

out=$("$build/nova-worker" schedules -c "$tmp/w.conf")
echo "$out" | grep -q '^echo-tick  (plugin echo, queue echo, job tick)' || fail "schedules list: $out"
echo "$out" | grep -q 'in Redis:  next ' || fail "schedules list without the Redis state: $out"
"$build/nova-worker" schedules run echo-tick -c "$tmp/w.conf" | grep -q '^added job echo-tick-run-' ||
    fail "schedules run"

# Taking the schedule out of the config removes it from Redis.
config ""
"$build/nova-worker" run -c "$tmp/w.conf" >"$tmp/w5.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    [ "$(redis-cli -p "$port" zcard bull:echo:repeat)" = 0 ] && break
    sleep 0.1
done
[ "$(redis-cli -p "$port" zcard bull:echo:repeat)" = 0 ] || fail "the dropped schedule is still in Redis"
[ "$(redis-cli -p "$port" exists bull:echo:repeat:echo-tick)" = 0 ] || fail "its template is still there"
echo "schedules: ok"
