#!/bin/sh
# The layout docs/architecture.md describes, checked on the sources and on
# the built objects:
#  - runtime/ holds service folders and .am glue only;
#  - every runtime include names its folder ("queue/queue.h");
#  - no cycle between runtime folders, neither in the includes nor in the
#    calls the objects make (a symbol used by one folder's object and
#    defined in another's is an edge);
#  - no cycle between the objects of a plugin (a plugin's lane or logic
#    never calls back up into the plugin's entry module).
set -eu
: "${NOVA_SRCDIR:?}" "${NOVA_BUILDDIR:?}"
command -v python3 >/dev/null 2>&1 || { echo "FAIL: python3 not found"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "FAIL: nm not found (binutils)"; exit 1; }
exec python3 - "$NOVA_SRCDIR" "$NOVA_BUILDDIR" <<'EOF'
import os, re, subprocess, sys

src, build = sys.argv[1], sys.argv[2]
runtime = os.path.join(src, "runtime")
errors = []

folders = sorted(d for d in os.listdir(runtime) if os.path.isdir(os.path.join(runtime, d)))
for f in sorted(os.listdir(runtime)):
    if not os.path.isdir(os.path.join(runtime, f)) and not f.endswith(".am"):
        errors.append(f"runtime/{f}: outside a service folder (only .am glue may stay at runtime/)")

def find_cycle(graph):
    """A list of nodes forming a cycle, or None."""
    state = {}
    stack = []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None
    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None

# Includes.
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
inc_graph, inc_why = {}, {}
for folder in folders:
    for dirpath, _, files in os.walk(os.path.join(runtime, folder)):
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)
            for target in inc_re.findall(open(path, encoding="utf-8").read()):
                if target in ("config.h",) or target.startswith("nova/"):
                    continue
                parts = target.split("/")
                if len(parts) != 2 or parts[0] not in folders or not os.path.exists(
                        os.path.join(runtime, target)):
                    errors.append(f'{rel}: #include "{target}" does not name a runtime folder '
                                  f'and header ("queue/queue.h")')
                    continue
                if parts[0] != folder:
                    inc_graph.setdefault(folder, set()).add(parts[0])
                    inc_why.setdefault((folder, parts[0]), rel + " includes " + target)
cycle = find_cycle(inc_graph)
if cycle:
    steps = [inc_why[(a, b)] for a, b in zip(cycle, cycle[1:])]
    errors.append("include cycle between folders " + " -> ".join(cycle) + ": " + "; ".join(steps))

# Calls, from the objects the build made. Each link unit (the binary, each
# service module, each plugin) resolves its symbols on its own; the test
# runtime (libnova_full, services linked in) is not a unit that ships.
def objects(top):
    for dirpath, _, files in os.walk(top):
        for name in files:
            if name.endswith(".o"):
                yield os.path.join(dirpath, name)

def unit_of(obj):
    """The link unit an object belongs to, from libtool's name prefix."""
    base = os.path.basename(obj)
    for prefix in ("libnova_runtime_la-", "nova_worker-"):
        if base.startswith(prefix):
            return "nova-worker"
    m = re.match(r"(nova_[a-z]+_la)-", base)
    if m:
        return m.group(1)
    return None

def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] == "U":
            used.add(f[0])
        elif f[1] in ("T", "D", "B", "R"):
            defined.add(f[0])
    return defined, used

def add_calls(objs, node_of, graph, why):
    owner, uses = {}, {}
    for o in objs:
        d, u = symbols(o)
        for s in d:
            owner.setdefault(s, node_of(o))
        uses[o] = u
    for o, u in uses.items():
        a = node_of(o)
        for s in sorted(u):
            b = owner.get(s)
            if b is not None and b != a:
                graph.setdefault(a, set()).add(b)
                why.setdefault((a, b), f"{os.path.relpath(o, build)} calls {s}")

def report_cycle(graph, why, what):
    cycle = find_cycle(graph)
    if cycle:
        steps = [why[(a, b)] for a, b in zip(cycle, cycle[1:])]
        errors.append(f"call cycle {what} " + " -> ".join(cycle) + ": " + "; ".join(steps))

units, seen = {}, set()
for o in sorted(objects(os.path.join(build, "runtime"))):
    u = unit_of(o)
    rel = os.path.relpath(o, os.path.join(build, "runtime")).split(os.sep)
    # Objects of a folder only (a build tree may hold stale ones elsewhere),
    # each once (libtool may build it with and without -fPIC).
    if u is None or len(rel) < 2 or rel[0] not in folders or (u, rel[-1]) in seen:
        continue
    seen.add((u, rel[-1]))
    units.setdefault(u, []).append(o)
if "nova-worker" not in units:
    errors.append("no runtime objects under the build tree; build first")
else:
    def folder_of(o):
        return os.path.relpath(o, os.path.join(build, "runtime")).split(os.sep)[0]
    graph, why = {}, {}
    for u in sorted(units):
        add_calls(units[u], folder_of, graph, why)
    report_cycle(graph, why, "between runtime folders")
    print("runtime folders call (binary and modules): " + "; ".join(
        f"{a} -> {' '.join(sorted(graph[a]))}" for a in sorted(graph)))

plugins = os.path.join(build, "plugins")
for name in sorted(os.listdir(plugins)) if os.path.isdir(plugins) else []:
    objs, names = [], set()
    for o in sorted(objects(os.path.join(plugins, name))):
        base = os.path.basename(o)
        if base.startswith(name + "_la-") and base not in names:
            names.add(base)
            objs.append(o)
    def module_of(o):
        base = os.path.basename(o)[:-2]
        return base.split("-", 1)[1] if "-" in base else base
    graph, why = {}, {}
    add_calls(objs, module_of, graph, why)
    report_cycle(graph, why, f"in plugins/{name}:")

for e in errors:
    print("FAIL: " + e)
if errors:
    sys.exit(1)
print(f"PASS: runtime/ is {len(folders)} folders with one-way includes and calls; plugins have no call cycles")
EOF
