#!/usr/bin/env bash
# `nova-worker check` through the real binary: every problem of a config
# spread over a file and two drop-ins is reported, each at its FILE:LINE,
# with exit 1 and no secret in the output; `check --print` shows every
# key's effective value and where it came from (file, drop-in, environment,
# a $CREDENTIALS_DIRECTORY credential, a KEY_file, the default), secrets
# masked, in the same order every time.
set -euo pipefail
: "${NOVA_BUILDDIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
bin="$NOVA_BUILDDIR/nova-worker"
fixtures="$NOVA_BUILDDIR/tests/fixtures/.libs"
export NOVA_MODULE_DIR="${NOVA_MODULE_DIR:-$NOVA_BUILDDIR/runtime/.libs}"
unset REDIS_URL DATABASE_URL LOG_LEVEL STELLAR_NETWORK HORIZON_URL SOROBAN_RPC_URL \
    SOROBAN_RPC_URL_FALLBACK ISSUER_PUBLIC DISTRIBUTION_SECRET NOVA_PLUGIN_DIR \
    CREDENTIALS_DIRECTORY NOVA_WORKER_CONFIG REDIS_SENTINEL_NODES REDIS_SENTINEL_NAME \
    REDIS_CLUSTER_NODES || true

# A valid secret seed and public key (tests/fixtures/stellar-vectors.json).
seed=SBYHXU63OLJOEGCWK6KDJORCHOGNWC6KVKQDNW6SEFJ7GWKVL5HK6SWJ
issuer=GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT

# ---- every problem, each at its file and line --------------------------------

mkdir -p "$work/bad/conf.d"
cat >"$work/bad/nova.conf" <<CONF
[worker]
plugin_dir = $fixtures
log_levle = debug
shutdown_timeout = soon
[http]
listen = 127.0.0.1:99999
include = conf.d/*.conf
CONF
cat >"$work/bad/conf.d/10-services.conf" <<'CONF'
[redis]
url = http://:redis-pw-in-file-77@cache:6379
[postgres]
pool_max = lots
this line is not a key
[stellar]
horizon_url = ftp://horizon.example
distribution_secret = SNOTVALIDSEEDsecret-88
CONF
cat >"$work/bad/conf.d/20-plugins.conf" <<CONF
[plugin good]
enabled = yes
count = 99
colour = red
[plugin ghost]
enabled = yes
[plugni echo]
enabled = yes
CONF

set +e
"$bin" check -c "$work/bad/nova.conf" >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "check of a bad config exited $rc: $(cat "$work/out" "$work/err")"
b=$work/bad
expect() { # FILE:LINE: and a part of the message, on one line of stderr
    grep -qF -- "$1: " "$work/err" || fail "no problem reported at $1; stderr:
$(cat "$work/err")"
    grep -F -- "$1: " "$work/err" | grep -qF -- "$2" || fail "the problem at $1 lacks '$2'; stderr:
$(cat "$work/err")"
}
expect "$b/nova.conf:3" "unknown key 'log_levle' in [worker]"
expect "$b/nova.conf:4" "shutdown_timeout: 'soon' is not a duration"
expect "$b/nova.conf:6" "[http] listen '127.0.0.1:99999': bad port"
expect "$b/conf.d/10-services.conf:2" "url: the value (a secret, not shown) is not a redis:// URL"
expect "$b/conf.d/10-services.conf:4" "pool_max: 'lots' is not an integer"
expect "$b/conf.d/10-services.conf:5" "syntax error"
expect "$b/conf.d/10-services.conf:7" "horizon_url: 'ftp://horizon.example' is not a http(s):// URL"
expect "$b/conf.d/10-services.conf:8" "[stellar] distribution_secret is not a valid secret seed (S..., 56 characters, checksum)"
expect "$b/conf.d/20-plugins.conf:3" "count: 99 is out of range (1 to 10)"
expect "$b/conf.d/20-plugins.conf:4" "unknown key 'colour' in [plugin good]"
expect "$b/conf.d/20-plugins.conf:5" "plugin ghost:"
expect "$b/conf.d/20-plugins.conf:8" "unknown section [plugni echo]"
n=$(wc -l <"$work/err")
[ "$n" = 12 ] || fail "expected 12 problems, got $n:
$(cat "$work/err")"
for secret in redis-pw-in-file-77 SNOTVALIDSEEDsecret-88; do
    ! grep -qF "$secret" "$work/out" "$work/err" || fail "check printed the secret $secret"
done
! grep -q 'configuration ok' "$work/out" || fail "check said ok: $(cat "$work/out")"

# `run` refuses the same file with the first problem, saying more follow.
set +e
"$bin" run -c "$work/bad/nova.conf" >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "run of a bad config exited $rc"
grep -q "more problems; \`nova-worker check\` lists them all" "$work/out" ||
    fail "run does not point at check: $(cat "$work/out")"
! grep -qF redis-pw-in-file-77 "$work/out" || fail "run printed the redis password"

# Values the loader accepts but a service would trip on later (a port out
# of range, a public key with a bad checksum): `run` refuses them at once,
# each at its FILE:LINE, as `check` does.
mkdir -p "$work/vals"
printf '[worker]\nname = vals\n[http]\nlisten = 127.0.0.1:99999\n[stellar]\nasset_issuer = GBADKEY\n' \
    >"$work/vals/nova.conf"
set +e
"$bin" run -c "$work/vals/nova.conf" >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "run with a bad listen port exited $rc"
grep -qF "$work/vals/nova.conf:4: [http] listen '127.0.0.1:99999'" "$work/out" ||
    fail "run did not name the listen line: $(cat "$work/out")"
grep -qF "$work/vals/nova.conf:6: [stellar] asset_issuer 'GBADKEY'" "$work/out" ||
    fail "run did not name the asset_issuer line: $(cat "$work/out")"
grep -q "the configuration has 2 problem(s)" "$work/out" || fail "run did not count: $(cat "$work/out")"

# ---- check --print ---------------------------------------------------------------

g=$work/good
mkdir -p "$g/conf.d" "$g/creds"
printf 'postgresql://nova:dsn-cred-pw-99@db.example/nova?sslmode=require\n' >"$g/creds/postgres-dsn"
printf '%s\n' "$seed" >"$g/seed"
cat >"$g/nova.conf" <<CONF
[worker]
plugin_dir = $fixtures
shutdown_timeout = 2m
[http]
listen =
[stellar]
asset_issuer = $issuer
distribution_secret_file = $g/seed
include = conf.d/*.conf
[plugin good]
enabled = yes
word = from-the-file
[plugin echo]
enabled = no
CONF
printf '[redis]\n\nurl = redis://:redis-pw-in-drop-in-55@10.0.0.5:6379\n' >"$g/conf.d/10-redis.conf"

CREDENTIALS_DIRECTORY=$g/creds HORIZON_URL=https://horizon.stellar.org \
    "$bin" check --print -c "$g/nova.conf" >"$work/print" 2>"$work/err" ||
    fail "check --print of a good config failed: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "check --print wrote to stderr: $(cat "$work/err")"
line() { # the exact line
    grep -qxF -- "$1" "$work/print" || fail "no line '$1' in:
$(cat "$work/print")"
}
line "[redis] url = redis://:***@10.0.0.5:6379   # $g/conf.d/10-redis.conf:3"
line "[worker] shutdown_timeout = 2m   # $g/nova.conf:3"
line "[worker] log_level = info   # default"
line "[http] listen =   # $g/nova.conf:5"
line "[postgres] dsn = postgresql://nova:***@db.example/nova?sslmode=require   # credential postgres-dsn"
line "[stellar] horizon_url = https://horizon.stellar.org   # env HORIZON_URL"
line "[stellar] asset_issuer = $issuer   # $g/nova.conf:7"
line "[stellar] distribution_secret = ***   # distribution_secret_file $g/seed ($g/nova.conf:8)"
line "[stellar] soroban_rpc_url =   # unset"
line "[redis] password =   # unset"
line "[postgres] slow_query = 250ms   # default"
line "[plugin good] enabled = yes   # $g/nova.conf:11"
line "[plugin good] word = from-the-file   # $g/nova.conf:12"
line "[plugin good] count = 3   # default"
line "[plugin good] flag = no   # default"
line "[plugin echo] enabled = no   # $g/nova.conf:14"
for secret in redis-pw-in-drop-in-55 dsn-cred-pw-99 "$seed"; do
    ! grep -qF -- "$secret" "$work/print" || fail "check --print printed the secret $secret"
done
# Every core key once (as `nova-worker keys` lists them), then the plugins.
keys=$("$bin" keys | grep -c '^  [a-z_][a-z_]* ')
core=$(grep -c '^\[[a-z]*\] ' "$work/print")
[ "$core" = "$keys" ] || fail "check --print shows $core core keys, nova-worker keys lists $keys"
# Stable: the same output again.
CREDENTIALS_DIRECTORY=$g/creds HORIZON_URL=https://horizon.stellar.org \
    "$bin" check --print -c "$g/nova.conf" >"$work/print2" 2>/dev/null
cmp -s "$work/print" "$work/print2" || fail "check --print is not stable"

# The environment and an unset credential directory: other origins.
DATABASE_URL='postgres://u:env-db-pw-66@h/db' "$bin" check --print -c "$g/nova.conf" \
    >"$work/print" 2>"$work/err" || fail "check --print with DATABASE_URL: $(cat "$work/err")"
line "[postgres] dsn = postgres://u:***@h/db   # env DATABASE_URL"
line "[stellar] horizon_url = https://horizon-testnet.stellar.org   # default"
! grep -qF env-db-pw-66 "$work/print" || fail "check --print printed DATABASE_URL's password"

# --print on a bad config: the values it can show, the problems on stderr, exit 1.
set +e
"$bin" check --print -c "$work/bad/nova.conf" >"$work/print" 2>"$work/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "check --print of a bad config exited $rc"
line "[worker] shutdown_timeout = (invalid)   # $b/nova.conf:4, invalid"
line "[redis] url = (invalid)   # $b/conf.d/10-services.conf:2, invalid"
grep -qF "$b/nova.conf:3: unknown key 'log_levle'" "$work/err" || fail "no problems on stderr"
for secret in redis-pw-in-file-77 SNOTVALIDSEEDsecret-88; do
    ! grep -qF "$secret" "$work/print" "$work/err" || fail "check --print printed the secret $secret"
done

grep -q -- '--print' <<<"$("$bin" check --help)" || fail "check --help does not describe --print"
echo "PASS: check reports every problem at its FILE:LINE; check --print shows values and origins"
