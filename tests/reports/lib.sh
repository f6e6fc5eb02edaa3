# tests/reports/lib.sh - the reports e2e world: tests/plugins/lib.sh's
# Redis, PostgreSQL 15 and workers, plus Nova's statements through node-pg
# (tests/reports/node_modules) and the CSV and SMTP helpers.
#
# Needs: NOVA_SRCDIR, NOVA_BUILDDIR.
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$PL_SRC/tests/plugins/lib.sh"

rp_fail() {
    echo "$(basename "$0" .sh): FAIL: $*" >&2
    exit 1
}

# rp_setup: the servers, Nova's schema (migrate) and the seed rows.
rp_setup() {
    pl_setup
    RP_NODE_ROOT=${NOVA_NODE_ROOT:-$PL_SRC}
    [ -d "$RP_NODE_ROOT/tests/reports/node_modules/pg" ] ||
        pl_die "run 'npm ci' in tests/reports (scripts/deps.sh does)"
    NODE_PATH=$RP_NODE_ROOT/tests/reports/node_modules:$NODE_PATH
    export NODE_PATH TZ=UTC
    PL_METRICS_PORT=$(nova_free_port)
    RP_CONF=$PL_TMP/reports.conf
    pl_config "$RP_CONF" reports nova
    pl_migrate "$RP_CONF"
    pl_psql -f "$PL_SRC/tests/reports/seed.sql" >/dev/null || rp_fail "seed"
}

# rp_config "key = value"...: the reports section of $RP_CONF.
rp_config() {
    pl_config "$RP_CONF" reports nova "$@"
}

# rp_check TYPE PARAMS_JSON [ARGS]: the Redis entry equals Nova's value.
rp_check() {
    node "$PL_SRC/tests/reports/nova_reports.js" "$PL_DSN" "$PL_REDIS_URL" check "$@"
}

# rp_key TYPE PARAMS_JSON: Nova's cache key.
rp_key() {
    node "$PL_SRC/tests/reports/nova_reports.js" "$PL_DSN" "$PL_REDIS_URL" key "$@"
}

# rp_field JSON PATH: a field of a JSON document (a.b.0.c).
rp_field() {
    node -e '
const v = process.argv[2].split(".").reduce((a, k) => (a == null ? a : a[k]), JSON.parse(process.argv[1]));
console.log(v !== null && typeof v === "object" ? JSON.stringify(v) : v);' "$1" "$2"
}

# rp_generate TYPE PARAMS_JSON: a generate job through bullmq, waited for.
rp_generate() {
    pl_job run reports generate "{\"type\":\"$1\",\"params\":$2}" --timeout 30000
}

# The python3 that has aiosmtpd (Debian's python3-aiosmtpd is for
# /usr/bin/python3; a python3 earlier on PATH may lack it).
rp_smtp_python() {
    for py in ${NOVA_SMTP_PYTHON:-} python3 /usr/bin/python3; do
        "$py" -c 'import aiosmtpd' 2>/dev/null && { echo "$py"; return; }
    done
    pl_die "python3-aiosmtpd is not installed (scripts/deps.sh installs it)"
}

# rp_smtp_start PORT ARGS...: tests/lib/smtp_peer.py on 127.0.0.1:PORT
# (messages into $PL_TMP/mail), until rp_smtp_stop.
rp_smtp_start() {
    local port=$1
    shift
    mkdir -p "$PL_TMP/mail"
    rm -f "$PL_TMP/smtp.in"
    mkfifo "$PL_TMP/smtp.in"
    "$(rp_smtp_python)" "$PL_SRC/tests/lib/smtp_peer.py" --port "$port" --out "$PL_TMP/mail" "$@" \
        <"$PL_TMP/smtp.in" >"$PL_TMP/smtp.out" 2>>"$PL_TMP/smtp.log" &
    PL_PID[smtp]=$!
    exec 7>"$PL_TMP/smtp.in"
    for _ in $(seq 100); do
        grep -q READY "$PL_TMP/smtp.out" 2>/dev/null && return 0
        sleep 0.1
    done
    pl_die "the SMTP peer did not start: $(cat "$PL_TMP/smtp.log")"
}

rp_smtp_stop() {
    exec 7>&-
    pl_kill_worker smtp TERM
}
