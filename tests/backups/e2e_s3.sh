#!/bin/bash
# The off-site copy against a local S3-compatible server that checks AWS
# SigV4 signatures (tests/backups/s3server.js), with a real PostgreSQL 15:
#   - a dump larger than s3_part_size goes up as a multipart upload, a
#     manifest as one PUT; an independent client (curl's own SigV4) lists
#     and downloads them: the same bytes as the local files;
#   - `backup list` shows the copy; `backup fetch` brings it back into an
#     empty backup_dir (sha256 checked) and it restores, every table equal;
#   - a wrong secret is refused (SignatureDoesNotMatch): the job fails with
#     that reason, the local backup stays, nothing is marked complete on S3;
#     an unreachable endpoint fails the same way;
#   - retention applies on S3: old backups beyond keep_daily and an upload
#     that never completed are deleted, the rest stays.
set -euo pipefail
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
BK_TEST=e2e_s3
. "$PL_SRC/tests/backups/lib.sh"

BK_NODE=${NOVA_NODE_ROOT:-$PL_SRC}/tests/backups/node_modules
[ -d "$BK_NODE/@20minutes/s3rver" ] || pl_die "run 'npm ci' in tests/backups (scripts/deps.sh does)"
pl_setup
T=$PL_TMP

# ~9 MB of dump that does not compress: two parts of 5 MiB
pl_psql >/dev/null <<'SQL'
CREATE TABLE blobs (id int PRIMARY KEY, b bytea);
INSERT INTO blobs SELECT g, decode(md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')
FROM generate_series(1, 150000) g;
CREATE TABLE small (id int PRIMARY KEY, v text);
INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;
SQL
bk_cli keygen "$T/key"
[ "$BK_RC" = 0 ] || bk_fail "keygen: $BK_ERR"
DSN=$(bk_dsn_of nova)

mkdir -p "$T/s3"
NODE_PATH=$BK_NODE node "$PL_SRC/tests/backups/s3server.js" "$T/s3" bk "$T/s3.log" >"$T/s3server.out" 2>&1 &
PL_PID[s3]=$!
S3_PORT=
for _ in $(seq 100); do
    S3_PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/s3server.out")
    [ -n "$S3_PORT" ] && break
    kill -0 "${PL_PID[s3]}" 2>/dev/null || bk_fail "s3server exited: $(cat "$T/s3server.out")"
    sleep 0.1
done
[ -n "$S3_PORT" ] || bk_fail "s3server did not start: $(cat "$T/s3server.out")"
EP=http://127.0.0.1:$S3_PORT
printf 'S3RVER\n' >"$T/s3secret"

s3conf() { # FILE DIR SECRET_FILE ["key = value"...]
    local f=$1 d=$2 s=$3
    shift 3
    bk_config "$f" "$d" "$T/key" "$DSN" "s3_endpoint = $EP" "s3_bucket = bk" "s3_prefix = postgres/" \
        "s3_access_key_id = S3RVER" "s3_secret_access_key_file = $s" "s3_part_size = 5242880" "$@"
}
# An independent S3 client: curl signs by itself.
s3curl() { # METHOD PATH [FILE]: prints the body; PATH is "/KEY" or "?QUERY"
    local sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 up=()
    if [ -n "${3:-}" ]; then
        sha=$(sha256sum "$3" | cut -c1-64)
        up=(-T "$3")
    fi
    curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER -H "x-amz-content-sha256: $sha" \
        -X "$1" "${up[@]}" "$EP/bk$2"
}
s3keys() {
    s3curl GET "?list-type=2&prefix=postgres%2F" | python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
for c in root.iter():
    if c.tag.endswith("Key"): print(c.text)' | sort
}

# ---- upload: multipart, listed and downloaded by another client ---------------------------
s3conf "$T/a.conf" "$T/a" "$T/s3secret"
bk_cli now -c "$T/a.conf"
[ "$BK_RC" = 0 ] || bk_fail "backup now with S3: $BK_ERR"
name=$BK_OUT
size=$(stat -c %s "$T/a/$name.dump.enc")
[ "$size" -gt 5242880 ] || bk_fail "the dump ($size bytes) is not larger than one part"
grep -q "^POST /bk/postgres/$name.dump.enc?uploads= 200" "$T/s3.log" || bk_fail "no multipart upload: $(cat "$T/s3.log")"
parts=$(grep -c "^PUT /bk/postgres/$name.dump.enc?partNumber=[0-9]*&uploadId=[^ ]* 200" "$T/s3.log" || true)
[ "$parts" = $(((size + 5242879) / 5242880)) ] || bk_fail "$parts parts for $size bytes"
grep -q "^POST /bk/postgres/$name.dump.enc?uploadId=[^ ]* 200" "$T/s3.log" || bk_fail "no CompleteMultipartUpload"
grep -q "^GET /bk/postgres/$name.dump.enc 206" "$T/s3.log" || bk_fail "the copy was not read back"
grep -q "^PUT /bk/postgres/$name.json 200" "$T/s3.log" || bk_fail "no manifest PUT"
keys=$(s3keys)
[ "$keys" = "$(printf 'postgres/%s.dump.enc\npostgres/%s.json' "$name" "$name")" ] || bk_fail "S3 holds: $keys"
s3curl GET "/postgres/$name.dump.enc" >"$T/down.enc"
cmp "$T/down.enc" "$T/a/$name.dump.enc" || bk_fail "the S3 copy differs from the local file"
s3curl GET "/postgres/$name.json" >"$T/down.json"
[ "$(bk_json "$T/down.json" sha256)" = "$(sha256sum "$T/down.enc" | cut -c1-64)" ] || bk_fail "S3 manifest sha256"
[ "$(bk_json "$T/down.json" verified)" = true ] || bk_fail "S3 manifest not verified"
echo "uploaded $name: $size bytes in $parts parts, read back"
bk_cli list -c "$T/a.conf"
echo "$BK_OUT" | grep -qE "^$name .* local,s3$" || bk_fail "list: $BK_OUT"

# ---- fetch into an empty backup_dir, then restore ------------------------------------------
s3conf "$T/b.conf" "$T/b" "$T/s3secret"
bk_cli list -c "$T/b.conf"
echo "$BK_OUT" | grep -qE "^$name .* s3$" || bk_fail "list (S3 only): $BK_OUT"
bk_cli verify "$name" -c "$T/b.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'backup fetch' || bk_fail "verify of a backup not fetched: $BK_ERR"
bk_cli fetch "$name" -c "$T/b.conf"
[ "$BK_RC" = 0 ] || bk_fail "fetch: $BK_ERR"
cmp "$T/b/$name.dump.enc" "$T/a/$name.dump.enc" || bk_fail "the fetched file differs"
pl_create_db r1
bk_cli restore "$name" --into "$(bk_dsn_of r1)" -c "$T/b.conf"
[ "$BK_RC" = 0 ] || bk_fail "restore of the fetched backup: $BK_ERR"
diff <(bk_sums nova) <(bk_sums r1) >&2 || bk_fail "restored tables differ"
echo "fetched and restored: $(bk_sums r1 | tr '\n' ';')"

# ---- a wrong secret is refused; so is an unreachable endpoint -----------------------------
printf 'not-the-secret\n' >"$T/wrongsecret"
s3conf "$T/c.conf" "$T/c" "$T/wrongsecret"
sleep 1 # a new name
bk_cli now -c "$T/c.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'SignatureDoesNotMatch' || bk_fail "wrong secret: $BK_RC $BK_ERR"
echo "$BK_ERR" | grep -q 'the local backup is kept' || bk_fail "wrong secret: $BK_ERR"
grep -q 'not-the-secret' "$T/cli-all.log" && bk_fail "the secret is in the output"
cname=$(ls "$T/c" | sed -n 's/\.json$//p')
[ -n "$cname" ] && [ -f "$T/c/$cname.dump.enc" ] || bk_fail "the local backup was not kept: $(ls "$T/c")"
s3keys | grep -q "$cname" && bk_fail "a refused upload left objects: $(s3keys)"
echo "wrong secret: $(echo "$BK_ERR" | tail -1 | cut -c1-160)"
bk_cli list -c "$T/c.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q SignatureDoesNotMatch || bk_fail "list with a wrong secret: $BK_ERR"
bk_config "$T/d.conf" "$T/d" "$T/key" "$DSN" "s3_endpoint = http://127.0.0.1:1" "s3_bucket = bk" \
    "s3_access_key_id = S3RVER" "s3_secret_access_key_file = $T/s3secret"
bk_cli now -c "$T/d.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'S3 copy of .* failed' || bk_fail "S3 down: $BK_RC $BK_ERR"
echo "S3 down: $(echo "$BK_ERR" | tail -1 | cut -c1-160)"

# ---- retention on S3 --------------------------------------------------------------------------
day() { date -u -d "$1 days ago" +%Y%m%dT020000Z; }
echo junk >"$T/junk"
for d in 1 2 3; do
    s3curl PUT "/postgres/nova-nova-$(day "$d").dump.enc" "$T/junk" >/dev/null
    s3curl PUT "/postgres/nova-nova-$(day "$d").json" "$T/junk" >/dev/null
done
s3curl PUT "/postgres/nova-nova-$(day 5).dump.enc" "$T/junk" >/dev/null # never completed
s3curl PUT "/postgres/unrelated.txt" "$T/junk" >/dev/null
s3conf "$T/e.conf" "$T/e" "$T/s3secret" "keep_daily = 2" "keep_weekly = 0" "keep_monthly = 0"
sleep 1
bk_cli now -c "$T/e.conf"
[ "$BK_RC" = 0 ] || bk_fail "backup with S3 retention: $BK_ERR"
ename=$BK_OUT
want=$(printf 'postgres/%s\n' "$ename.dump.enc" "$ename.json" "nova-nova-$(day 1).dump.enc" \
    "nova-nova-$(day 1).json" unrelated.txt | sort)
[ "$(s3keys)" = "$want" ] || bk_fail "S3 after retention:
$(s3keys)
expected:
$want"
echo "S3 retention: kept $(s3keys | tr '\n' ' ')"

kill -TERM "${PL_PID[s3]}" 2>/dev/null || true
wait "${PL_PID[s3]}" 2>/dev/null || true
PL_PID[s3]=
echo "e2e_s3: ok"
