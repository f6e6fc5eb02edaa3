#!/bin/sh
# Metrics as documented are metrics as exported. Starts a real redis-server
# and nova-worker with every plugin that runs without PostgreSQL and a
# Stellar network (echo, skeleton, and the needs_http / needs_stellar
# fixtures that load the HTTP and Stellar clients; [postgres] points at a
# dead port so the pool registers its metrics, [stellar] at a plain HTTP
# server so the clients count a response and an error), runs jobs that
# complete, fail, retry until dead and stall, scrapes /metrics and checks
# that every metric named
#   - in docs/operations.md (its metrics table, any other mention, the
#     expressions in its examples),
#   - in any metrics table or NAME{labels} mention of docs/ and docs/plugins/,
#   - in packaging/man/*.in,
#   - in packaging/prometheus/nova-worker.rules.yml,
#   - in packaging/grafana/nova-worker.json,
# exists with the documented labels (a NAME{a,b} list must be the exact
# label set; a NAME{a="x"} matcher, a by (...) clause must use labels the
# metric has). A metric of a plugin that cannot run here (PostgreSQL,
# Stellar) must be registered by that plugin's source (plugins/NAME/*.c,
# its metric_new calls) with those labels and listed in the metrics table
# of docs/plugins/NAME.md. Also: every core metric the worker exports is in
# the table of docs/operations.md, each plugin's metrics table matches its
# source, the rules pass `promtool check rules` and their unit tests, and
# the dashboard's queries parse. The checker is shown to fail on a
# documented metric that does not exist. With JOURNAL_STREAM naming its
# stderr, every line the worker writes carries its syslog priority.
set -eu
: "${NOVA_BUILDDIR:?}" "${NOVA_SRCDIR:?}" "${NOVA_MODULE_DIR:?}"
B=$NOVA_BUILDDIR
S=$NOVA_SRCDIR
bin=$B/nova-worker
work=$(mktemp -d)
redis_pid=
worker_pid=
http_pid=
cleanup() {
    [ -z "$worker_pid" ] || kill -9 "$worker_pid" 2>/dev/null || true
    [ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
for tool in redis-server redis-cli curl python3; do
    command -v $tool >/dev/null 2>&1 || fail "$tool not found (scripts/deps.sh installs it)"
done
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the plugins that can run here, in one directory --------------------------
plugins=$work/plugins
mkdir -p "$plugins"
for so in "$B/plugins/echo/.libs/echo.so" "$B/plugins/skeleton/.libs/skeleton.so" \
    "$B/tests/fixtures/.libs/needs_http.so" "$B/tests/fixtures/.libs/needs_stellar.so"; do
    [ -f "$so" ] || fail "$so was not built (make check builds it)"
    ln -s "$so" "$plugins/"
done
running_plugins="echo skeleton needs_http needs_stellar"

# ---- servers -----------------------------------------------------------------------
port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
rcli() { redis-cli -p "$port" "$@" >/dev/null; }
# "Horizon": answers every request, with something that is not Horizon.
hport=$(free_port)
mkdir -p "$work/www"
(cd "$work/www" && exec python3 -m http.server "$hport" --bind 127.0.0.1) >"$work/http.log" 2>&1 &
http_pid=$!
mport=$(free_port)

cat >"$work/nova.conf" <<EOF
[worker]
name = metrics-docs
log_level = info
plugin_dir = $plugins
shutdown_timeout = 5s
[redis]
url = redis://127.0.0.1:$port
stalled_interval = 1s
[http]
listen = 127.0.0.1:$mport
[postgres]
dsn = postgresql://nova@127.0.0.1:$(free_port)/nova?connect_timeout=1
[stellar]
horizon_url = http://127.0.0.1:$hport
[plugin echo]
enabled = yes
queue = echo
concurrency = 4
[plugin skeleton]
enabled = yes
interval = 100ms
[plugin needs_http]
enabled = yes
[plugin needs_stellar]
enabled = yes
EOF

# ---- jobs ----------------------------------------------------------------------------
add() { "$bin" queue -c "$work/nova.conf" add echo "$@" >/dev/null || fail "queue add $*"; }
# Two jobs a dead worker left active, already suspects of the stall sweep;
# the second has stalled before, so this sweep makes it fail (max 1).
add orphan '{}'
add orphan '{}'
rcli LREM bull:echo:wait 0 1
rcli LREM bull:echo:wait 0 2
rcli DEL bull:echo:marker
rcli RPUSH bull:echo:active 1 2
rcli SADD bull:echo:stalled 1 2
rcli HSET bull:echo:2 stc 1
add ok '{"return":{"ok":true}}'
add slow '{"sleep_ms":50}'
add fatal '{"fatal":"refused"}' --attempts 3
add flaky '{"fail":"still flaky"}' --attempts 2

# ---- the worker, its stderr as its journal stream -------------------------------------
: >"$work/worker.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$work/worker.log")
export JOURNAL_STREAM
unset NOVA_LOG_SYSLOG_PREFIX
"$bin" run -c "$work/nova.conf" 2>>"$work/worker.log" &
worker_pid=$!
unset JOURNAL_STREAM

scrape() { curl -sf "http://127.0.0.1:$mport/metrics" >"$work/metrics" 2>/dev/null; }
has() { grep -qF "$1" "$work/metrics"; }
want() { # want SERIES VALUE: a sample line "SERIES VALUE" appears within 20 s
    for _ in $(seq 200); do
        if scrape && grep -qxF "$1 $2" "$work/metrics"; then return 0; fi
        kill -0 "$worker_pid" 2>/dev/null || fail "worker exited: $(cat "$work/worker.log")"
        sleep 0.1
    done
    scrape || true
    fail "no '$1 $2' on /metrics: $(grep -F "${1%%\{*}" "$work/metrics" 2>/dev/null)"
}
jobs='nova_worker_jobs_total{queue="echo",plugin="echo",outcome'
want "$jobs=\"completed\"}" 3
want "$jobs=\"failed\"}" 1
want "$jobs=\"retried\"}" 1
want "$jobs=\"dead\"}" 1
want "$jobs=\"stalled\"}" 3 # two given back by the sweep, one failed for it
want "$jobs=\"lost\"}" 0
want 'nova_worker_job_duration_seconds_count{queue="echo",plugin="echo"}' 7
want 'nova_worker_lock_renewal_failures_total{queue="echo"}' 0
# Counts are refreshed every 15 s: these show the refresh after the jobs.
want 'bullmq_job_count{queue="echo",state="failed"}' 3
want 'bullmq_job_count{queue="echo",state="completed"}' 3
want 'bullmq_job_count{queue="echo",state="waiting"}' 0
for m in 'nova_worker_job_wait_seconds_count{queue="echo",plugin="echo"}' \
    'nova_worker_http_requests_total{host="127.0.0.1",code_class="2xx"}' \
    '# TYPE nova_worker_http_errors_total counter' 'nova_worker_stellar_request_duration_seconds_count{api=' \
    'nova_skeleton_ticks_total' '# TYPE nova_worker_pg_pool_in_use gauge'; do
    has "$m" || fail "/metrics lacks $m"
done
grep -q "^[^#].*merchant_id=" "$work/metrics" && fail "a merchant_id label is exported"

# The exposition parses (promtool is the reference parser when installed)
# and passes its lint, but for the one name kept for BullMQ's sake: lint
# findings exit 3, parse errors 1.
if command -v promtool >/dev/null 2>&1; then
    rc=0
    promtool check metrics <"$work/metrics" >"$work/promtool.out" 2>&1 || rc=$?
    grep -v '^bullmq_job_count non-histogram and non-summary metrics should not have "_count" suffix$' \
        "$work/promtool.out" >"$work/promtool.rest" || true
    if [ "$rc" -ne 0 ] && { [ "$rc" -ne 3 ] || [ -s "$work/promtool.rest" ]; }; then
        fail "promtool check metrics (exit $rc): $(cat "$work/promtool.out")"
    fi
fi

# ---- journald: every line is "<priority>" + the JSON line ------------------------------
python3 - "$work/worker.log" <<'EOF' || fail "log lines without their syslog priority (see above)"
import json, sys
want = {"error": "<3>", "warn": "<4>", "info": "<6>", "debug": "<7>"}
bad = 0
seen = set()
for n, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="replace"), 1):
    line = line.rstrip("\n")
    try:
        prefix, rec = line[:3], json.loads(line[3:])
        ok = want.get(rec.get("level")) == prefix
    except ValueError:
        ok = False
    if not ok:
        print(f"worker.log:{n}: {line[:200]}")
        bad += 1
    else:
        seen.add(rec["level"])
if "warn" not in seen or "info" not in seen:
    print("expected warn and info lines, saw", sorted(seen))
    bad += 1
sys.exit(1 if bad else 0)
EOF

# ---- the documented names against the scrape and the sources -------------------------
cat >"$work/check.py" <<'EOF'
"""Checks metric names and labels of the docs, man pages, rules and
dashboard against a scrape and the sources (see test_metrics_docs.sh)."""
import glob, json, os, re, sys

src, scrape_path, running = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
extra = sys.argv[4:]
errors = []
quiet = [False]   # lookups made only to learn labels report nothing
def err(where, msg):
    if not quiet[0] and f"{where}: {msg}" not in errors:
        errors.append(f"{where}: {msg}")

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
METRIC_TOKEN = re.compile(r"\b((?:bullmq|nova|reward|process)_[a-z0-9_]*[a-z0-9])\b")
TARGET_LABELS = {"instance", "job"}   # added by Prometheus to every series
PLUGINS = {os.path.basename(d) for d in glob.glob(f"{src}/plugins/*") if os.path.isdir(d)}

# ---- the scrape: families, types, label sets -----------------------------------
types, labelsets = {}, {}
for line in open(scrape_path):
    m = re.match(rf"# TYPE ({NAME}) (\w+)", line)
    if m:
        types[m.group(1)] = m.group(2)
        labelsets.setdefault(m.group(1), set())
        continue
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(rf"({NAME})(?:\{{(.*)\}})? ", line)
    name, body = m.group(1), m.group(2) or ""
    fam = name
    if fam not in types:
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
                fam = name[: -len(suf)]
    keys = frozenset(k for k in re.findall(r'([a-zA-Z_]\w*)="', body) if k != "le")
    labelsets.setdefault(fam, set()).add(keys)

# ---- the sources: metric_new calls, their labels, who registers them ------------
registered = {}  # name -> (owner, type, labels)
CALL = re.compile(r'metric_new\(\s*(?:[\w>.\-]+\s*,\s*)?NOVA_METRIC_(COUNTER|GAUGE|HISTOGRAM)\s*,\s*"([^"]+)"\s*,'
                  r'(?:\s*"(?:[^"\\]|\\.)*")+\s*,\s*([A-Za-z_]\w*)', re.S)
for path in glob.glob(f"{src}/runtime/**/*.c", recursive=True) + glob.glob(f"{src}/plugins/*/*.c"):
    text = open(path, encoding="utf-8", errors="replace").read()
    rel = os.path.relpath(path, src)
    owner = rel.split("/")[1] if rel.startswith("plugins/") else "core"
    for m in CALL.finditer(text):
        kind, name, ident = m.group(1).lower(), m.group(2), m.group(3)
        labels = frozenset()
        if ident != "NULL":
            defs = [d for d in re.finditer(rf"\b{ident}\[\]\s*=\s*\{{([^}}]*)\}}", text) if d.start() < m.start()]
            if not defs:
                err(rel, f"{name}: cannot find the label array {ident}")
                continue
            labels = frozenset(re.findall(r'"([^"]*)"', defs[-1].group(1)))
        registered[name] = (owner, kind, labels)

# ---- plugin docs: the metrics table of docs/plugins/NAME.md ----------------------
def tables(path):
    """Yields (line number, {column: cell}) for rows of tables whose header
    has a metric/name column and a labels column, or a Metric column."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")] if lines[i].lstrip().startswith("|") else None
        if cells and i + 1 < len(lines) and re.match(r"^\s*\|[\s\-:|]+\|\s*$", lines[i + 1]):
            head = [c.lower() for c in cells]
            if head and head[0] in ("metric", "name") and (head[0] == "metric" or "labels" in head):
                i += 2
                while i < len(lines) and lines[i].lstrip().startswith("|"):
                    row = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                    yield i + 1, dict(zip(head, row))
                    i += 1
                continue
        i += 1

def leading_labels(cell):
    """`a`, `b` (values...) -> {a, b}: the run of backticked names the
    labels cell starts with; "—" or empty: none."""
    m = re.match(r"^\s*((?:`[a-zA-Z_]\w*`\s*,?\s*)+)", cell or "")
    return frozenset(re.findall(r"`([a-zA-Z_]\w*)`", m.group(1))) if m else frozenset()

def table_refs(path):
    """(line, name, labels or None) from the metrics tables of a doc."""
    for n, row in tables(path):
        first = row.get("metric", row.get("name", ""))
        for m in re.finditer(rf"`({NAME})(\{{([^}}]*)\}})?`", first):
            name = m.group(1)
            if "__" in name or not METRIC_TOKEN.fullmatch(name):
                continue
            if m.group(2) is not None:
                labels = frozenset(x.strip() for x in m.group(3).split(",") if x.strip())
            elif "labels" in row:
                labels = leading_labels(row["labels"])
            else:
                labels = frozenset()
            yield n, name, labels

plugin_docs = {}
for p in PLUGINS:
    path = f"{src}/docs/plugins/{p}.md"
    if os.path.exists(path):
        plugin_docs[p] = {name: (n, labels) for n, name, labels in table_refs(path)}

# ---- resolving one reference ---------------------------------------------------------
def family(name):
    if name in types:
        return name, types[name]
    for suf in ("_bucket", "_sum", "_count"):
        base = name[: -len(suf)] if name.endswith(suf) else None
        if base and types.get(base) == "histogram":
            return base, "histogram"
        if base and base in registered and registered[base][1] == "histogram" and base not in types:
            return base, "histogram"
    return name, types.get(name) or (registered[name][1] if name in registered else None)

def actual_labels(where, name):
    """The metric's label names, or None (reported) when it does not exist."""
    fam, kind = family(name)
    if name.endswith(("_bucket", "_sum", "_count")) and fam != name and kind != "histogram":
        err(where, f"{name}: {fam} is not a histogram")
        return None
    if fam in types:
        sets = labelsets.get(fam) or set()
        if sets:
            return frozenset().union(*sets)
        if fam in registered:   # registered, no series yet: the code says
            return registered[fam][2]
        return frozenset()
    if fam in registered:
        owner, _, labels = registered[fam]
        if owner == "core":
            err(where, f"{fam} is registered by the runtime but not on /metrics")
            return None
        if owner in running:
            err(where, f"{fam}: plugin {owner} ran in this test but did not export it")
            return None
        doc = plugin_docs.get(owner, {})
        if fam not in doc:
            err(where, f"{fam} (plugin {owner}, not run here) is not in the metrics table of docs/plugins/{owner}.md")
        elif doc[fam][1] != labels:
            err(where, f"{fam}: docs/plugins/{owner}.md lists labels {sorted(doc[fam][1])}, "
                       f"plugins/{owner}/ registers {sorted(labels)}")
        return labels
    err(where, f"{name} does not exist: not on /metrics and registered by no plugin")
    return None

def check_ref(where, name, labels, exact):
    """labels: the documented set (exact) or the set used (subset); None = name only."""
    if name == "up":   # Prometheus's own per target
        return
    have = actual_labels(where, name)
    if have is None or labels is None:
        return
    if exact and set(labels) != set(have):
        err(where, f"{name}: documented labels {sorted(labels)}, the metric has {sorted(have)}")
    if not exact:
        allowed = set(have) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        for l in sorted(set(labels) - allowed):
            err(where, f"{name}: no label {l} (it has {sorted(have)})")

def brace_refs(where, text):
    """NAME{a,b} (exact) and NAME{a="x"} (matchers: subset) in free text."""
    for m in re.finditer(rf"\b({NAME})\{{([^}}]*)\}}", text):
        name, body = m.group(1), m.group(2)
        if "__" in name or not METRIC_TOKEN.fullmatch(name):
            continue
        if re.search(r"[=~!]", body):
            keys = re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body)
            check_ref(where, name, frozenset(keys), False)
        else:
            check_ref(where, name, frozenset(x.strip() for x in body.split(",") if x.strip()), True)

def promql(where, expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    used = {}   # metric -> labels in its matchers
    for m in re.finditer(rf"({NAME})\s*\{{([^}}]*)\}}", expr):
        used.setdefault(m.group(1), set()).update(
            re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    clause = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
    grouping = set()
    for c in clause.finditer(bare):
        grouping.update(x.strip() for x in c.group(1).split(",") if x.strip())
    bare = clause.sub("", bare)
    for m in re.finditer(rf"\b({NAME})\b", bare):
        if METRIC_TOKEN.fullmatch(m.group(1)) or m.group(1) == "up":
            used.setdefault(m.group(1), set())
    if not used:
        err(where, f"no metric in expression: {expr}")
    union = set(TARGET_LABELS)
    for name, labels in used.items():
        check_ref(where, name, frozenset(labels), False)
        quiet[0] = True
        have = actual_labels(where, name) if name != "up" else frozenset()
        quiet[0] = False
        union |= set(have or ()) | ({"le"} if name.endswith("_bucket") else set())
    for l in sorted(grouping - union):
        err(where, f"by/without/on ({l}): none of {sorted(used)} has that label")

# ---- the references ------------------------------------------------------------------
ops = f"{src}/docs/operations.md"
docs = sorted(glob.glob(f"{src}/docs/*.md") + glob.glob(f"{src}/docs/plugins/*.md")) + extra
ops_table = set()
for path in docs:
    rel = os.path.relpath(path, src) if path.startswith(src) else path
    for n, name, labels in table_refs(path):
        check_ref(f"{rel}:{n}", name, labels, True)
        if path == ops:
            ops_table.add(name)
    text = open(path, encoding="utf-8").read()
    for n, line in enumerate(text.split("\n"), 1):
        brace_refs(f"{rel}:{n}", line)
        if path in (ops,) + tuple(extra):
            # Every name operations.md mentions exists; its alert examples parse.
            m = re.match(r"^\s*(?:-\s*)?expr:\s*(.+)$", line)
            if m:
                promql(f"{rel}:{n}", m.group(1))
            for t in METRIC_TOKEN.findall(re.sub(r"\{[^}]*\}", "", line)):
                if "__" not in t and t not in PLUGINS:
                    check_ref(f"{rel}:{n}", t, None, False)

for path in sorted(glob.glob(f"{src}/packaging/man/*.in")):
    rel = os.path.relpath(path, src)
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.replace("\\fB", "").replace("\\fR", "").replace("\\fI", "").replace("\\-", "-")
        brace_refs(f"{rel}:{n}", line)
        for t in METRIC_TOKEN.findall(re.sub(r"\{[^}]*\}", "", line)):
            if "__" not in t and t not in PLUGINS:
                check_ref(f"{rel}:{n}", t, None, False)

rules = f"{src}/packaging/prometheus/nova-worker.rules.yml"
lines = open(rules).read().split("\n")
count = 0
for i, line in enumerate(lines):
    m = re.match(r"^(\s*)expr:\s*(.*)$", line)
    if not m:
        continue
    expr, indent = m.group(2), len(m.group(1))
    if expr.strip() in ("|", ">", "|-", ">-"):
        body = []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt.strip())
        expr = " ".join(body)
    count += 1
    promql(f"packaging/prometheus/nova-worker.rules.yml:{i + 1}", expr)
if count == 0:
    err(rules, "no expr found")

dash = json.load(open(f"{src}/packaging/grafana/nova-worker.json"))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
count = 0
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        if t.get("expr"):
            count += 1
            promql(f"grafana '{p.get('title')}' {t.get('refId')}", t["expr"])
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.match(rf"label_values\(({NAME}),\s*(\w+)\)", q or "")
    if m:
        check_ref(f"grafana variable {v['name']}", m.group(1), frozenset([m.group(2)]), False)
if count == 0:
    err("grafana", "no panel queries")

# ---- bounded labels: no per-entity label anywhere (one series per merchant,
# user, job or wallet grows without bound; that detail belongs in logs) ------------------
UNBOUNDED = {"merchant_id", "merchant", "user_id", "user", "job_id", "job_name", "wallet",
             "wallet_address", "account", "campaign_id", "issuance_id", "tx_hash"}
for name, (owner, _, labels) in sorted(registered.items()):
    for l in sorted(labels & UNBOUNDED):
        err(f"{'runtime' if owner == 'core' else 'plugins/' + owner}", f"{name} has the unbounded label {l}")
for fam, sets in sorted(labelsets.items()):
    for l in sorted(frozenset().union(*sets) & UNBOUNDED if sets else ()):
        err("/metrics", f"{fam} has the unbounded label {l}")

# ---- the other way: what is exported or registered is documented ----------------------
for fam in sorted(types):
    owner = registered.get(fam, ("?",))[0]
    if (owner == "core" or fam.startswith("process_")) and fam not in ops_table:
        err("docs/operations.md", f"{fam} is exported but not in the metrics table")
for name, (owner, _, labels) in sorted(registered.items()):
    if owner in plugin_docs and name not in plugin_docs[owner]:
        err(f"docs/plugins/{owner}.md", f"{name} (plugins/{owner}/) is not in the metrics table")
for owner, doc in sorted(plugin_docs.items()):
    for name, (n, labels) in sorted(doc.items()):
        if registered.get(name, (None,))[0] != owner:
            err(f"docs/plugins/{owner}.md:{n}", f"{name} is not registered by plugins/{owner}/")

for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
EOF
python3 "$work/check.py" "$S" "$work/metrics" "$running_plugins" >"$work/check.out" 2>&1 ||
    fail "documented metrics do not match /metrics and the sources:
$(cat "$work/check.out")"

# The checker itself: a documented metric that does not exist fails it, and
# so does a wrong label set.
printf '| Metric | Meaning |\n| --- | --- |\n| `nova_worker_bogus_total{queue}` | x |\n' >"$work/bogus.md"
if python3 "$work/check.py" "$S" "$work/metrics" "$running_plugins" "$work/bogus.md" >"$work/check.out" 2>&1; then
    fail "the checker accepted a documented metric that does not exist"
fi
grep -q "nova_worker_bogus_total does not exist" "$work/check.out" || fail "checker: $(cat "$work/check.out")"
printf 'Watch `nova_worker_jobs_total{queue,outcome}`.\n' >"$work/labels.md"
if python3 "$work/check.py" "$S" "$work/metrics" "$running_plugins" "$work/labels.md" >"$work/check.out" 2>&1; then
    fail "the checker accepted a wrong label set"
fi
grep -q "documented labels \['outcome', 'queue'\], the metric has \['outcome', 'plugin', 'queue'\]" \
    "$work/check.out" || fail "checker: $(cat "$work/check.out")"

# ---- rules and dashboard with promtool ------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    promtool check rules "$S/packaging/prometheus/nova-worker.rules.yml" >"$work/promtool.out" 2>&1 ||
        fail "promtool check rules: $(cat "$work/promtool.out")"
    (cd "$S/packaging/prometheus" && promtool test rules nova-worker.rules.test.yml) >"$work/promtool.out" 2>&1 ||
        fail "promtool test rules: $(cat "$work/promtool.out")"
    # The dashboard's queries as recording rules: promtool parses each.
    python3 - "$S/packaging/grafana/nova-worker.json" >"$work/dash.rules.yml" <<'EOF'
import json, sys
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
print("groups:\n  - name: dashboard\n    rules:")
for i, p in enumerate(panels(json.load(open(sys.argv[1]))["panels"])):
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$queue", ".*")
        print(f"      - record: dashboard:panel{i}:{t['refId']}\n        expr: {json.dumps(e)}")
EOF
    promtool check rules "$work/dash.rules.yml" >"$work/promtool.out" 2>&1 ||
        fail "dashboard queries do not parse: $(cat "$work/promtool.out")"
else
    echo "test_metrics_docs: promtool not found; rules and dashboard not parsed (apt-get install prometheus)"
fi

kill -TERM "$worker_pid"
rc=0
wait "$worker_pid" || rc=$?
worker_pid=
[ "$rc" -eq 0 ] || fail "worker exited $rc on SIGTERM: $(tail -5 "$work/worker.log")"
echo "ok: metrics docs"
