#!/bin/bash
# End to end with a real PostgreSQL 15 and the real pg_dump/pg_restore, through
# `nova-worker backup`:
#   - keygen writes 64 hex digits with mode 0600 and never overwrites a key;
#   - `backup now` makes <name>.dump.enc (encrypted: no plaintext of the dump
#     in it) and <name>.json (created_at, database, pg_dump version, sizes,
#     sha256 of the file, key id, encryption, verified) and nothing else;
#   - the database password reaches pg_dump through its environment only: it
#     is in no command line (/proc/PID/cmdline of the running pg_dump, caught
#     while a lock holds it) and in no output, nor is the key;
#   - restore into a new database gives every table the same row count and
#     checksum of its rows; a non-empty target is refused unless --force;
#   - a wrong key, a truncated file and one flipped byte (header, middle,
#     last record) are each refused with a clear error, and nothing is
#     restored; verify records the failure;
#   - a pg_dump failure (bad DSN) and a full disk leave no file under a final
#     name; stale .tmp files go on the next run; the key also comes from the
#     credential backups-key or BACKUP_ENCRYPTION_KEY.
set -euo pipefail
PL_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
PL_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
BK_TEST=e2e_backup
. "$PL_SRC/tests/backups/lib.sh"

pl_setup
T=$PL_TMP
PW='pw-Zq8x-not-in-argv'
bk_seed nova
# a role with a password, which PostgreSQL checks (scram) on TCP
pl_psql -c "SET password_encryption = 'scram-sha-256'; CREATE ROLE bk LOGIN SUPERUSER PASSWORD '$PW'" >/dev/null
hba=$PL_PGDATA/pg_hba.conf
{ echo "host all bk 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$T/hba" && cat "$T/hba" >"$hba"
pl_psql -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
DSN="postgresql://bk:$PW@127.0.0.1:$PL_PG_PORT/nova"

# ---- keygen -------------------------------------------------------------------
bk_cli keygen "$T/key"
[ "$BK_RC" = 0 ] || bk_fail "keygen: $BK_ERR"
[ "$(stat -c %a "$T/key")" = 600 ] || bk_fail "key mode $(stat -c %a "$T/key")"
grep -qxE '[0-9a-f]{64}' "$T/key" && [ "$(wc -c <"$T/key")" = 65 ] || bk_fail "key file content"
keyid=$(echo "$BK_OUT" | sed -n 's/.*key id \([0-9a-f]*\).*/\1/p')
[ ${#keyid} = 32 ] || bk_fail "keygen printed no key id: $BK_OUT"
cp "$T/key" "$T/key.copy"
bk_cli keygen "$T/key"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'refusing to overwrite' || bk_fail "keygen overwrote: $BK_RC $BK_ERR"
cmp -s "$T/key" "$T/key.copy" || bk_fail "keygen changed an existing key"
KEY=$(cat "$T/key")

# ---- backup now, with the password only in pg_dump's environment -----------------
conf=$T/b.conf
bk_config "$conf" "$T/dir" "$T/key" "$DSN"
# stale leftovers of a crashed run: an old .tmp goes, a fresh one stays
mkdir -p "$T/dir"
touch -d '2 hours ago' "$T/dir/nova-nova-20200101T000000Z.dump.enc.tmp"
touch "$T/dir/nova-nova-20200102T000000Z.dump.enc.tmp"
# a lock makes pg_dump wait, so its command line can be read while it runs
pl_psql -c "BEGIN; LOCK TABLE point_transactions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT" >/dev/null &
locker=$!
sleep 0.3
"$PL_BUILD/nova-worker" backup now -c "$conf" >"$T/now.out" 2>"$T/now.err" &
now_pid=$!
dump_pid=
for _ in $(seq 50); do
    dump_pid=$(pgrep -P "$now_pid" -x pg_dump || true)
    [ -n "$dump_pid" ] && break
    sleep 0.05
done
[ -n "$dump_pid" ] || bk_fail "pg_dump never ran under nova-worker backup now: $(cat "$T/now.err")"
tr '\0' ' ' <"/proc/$dump_pid/cmdline" >"$T/cmdline"
tr '\0' '\n' <"/proc/$dump_pid/environ" >"$T/environ"
grep -q -- '--format=custom' "$T/cmdline" || bk_fail "pg_dump argv: $(cat "$T/cmdline")"
grep -qF "$PW" "$T/cmdline" && bk_fail "the password is on pg_dump's command line: $(cat "$T/cmdline")"
grep -qF "$KEY" "$T/cmdline" && bk_fail "the key is on pg_dump's command line"
grep -qxF "PGPASSWORD=$PW" "$T/environ" || bk_fail "pg_dump did not get PGPASSWORD in its environment"
grep -qF "$KEY" "$T/environ" && bk_fail "the key is in pg_dump's environment"
grep -qF "$PW" "/proc/$now_pid/cmdline" && bk_fail "the password is on nova-worker's command line"
wait "$locker"
rc=0
wait "$now_pid" || rc=$?
[ "$rc" = 0 ] || bk_fail "backup now exited $rc: $(cat "$T/now.err")"
name=$(cat "$T/now.out")
echo "$name" | grep -qxE 'nova-nova-[0-9]{8}T[0-9]{6}Z' || bk_fail "backup now printed '$name'"
enc=$T/dir/$name.dump.enc
man=$T/dir/$name.json
[ -f "$enc" ] && [ -f "$man" ] || bk_fail "missing $name files: $(ls "$T/dir")"
[ ! -e "$T/dir/nova-nova-20200101T000000Z.dump.enc.tmp" ] || bk_fail "the stale .tmp is still there"
[ -e "$T/dir/nova-nova-20200102T000000Z.dump.enc.tmp" ] || bk_fail "a fresh .tmp (someone's running backup) was removed"
rm -f "$T/dir/nova-nova-20200102T000000Z.dump.enc.tmp"
[ "$(ls "$T/dir" | wc -l)" = 2 ] || bk_fail "unexpected files: $(ls "$T/dir")"
[ "$(stat -c %a "$enc")" = 600 ] || bk_fail "dump mode $(stat -c %a "$enc")"
head -c 7 "$enc" | grep -q NOVABK1 || bk_fail "no NOVABK1 header"
! grep -qaF 'point_transactions' "$enc" || bk_fail "plaintext of the dump in the encrypted file"
# the manifest
[ "$(bk_json "$man" name)" = "$name" ] || bk_fail "manifest name"
[ "$(bk_json "$man" database)" = nova ] || bk_fail "manifest database"
bk_json "$man" pg_dump_version | grep -q '^pg_dump (PostgreSQL) 15' || bk_fail "manifest pg_dump_version"
[ "$(bk_json "$man" size_bytes)" = "$(stat -c %s "$enc")" ] || bk_fail "manifest size_bytes"
[ "$(bk_json "$man" dump_size_bytes)" -gt 100000 ] || bk_fail "manifest dump_size_bytes"
[ "$(bk_json "$man" sha256)" = "$(sha256sum "$enc" | cut -c1-64)" ] || bk_fail "manifest sha256"
[ "$(bk_json "$man" key_id)" = "$keyid" ] || bk_fail "manifest key_id"
bk_json "$man" encryption | grep -q xchacha20poly1305 || bk_fail "manifest encryption"
[ "$(bk_json "$man" verified)" = true ] || bk_fail "not verified after the backup (verify = yes)"
bk_json "$man" created_at | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' || bk_fail "manifest created_at"
grep -qF "$KEY" "$man" && bk_fail "the key is in the manifest"
for f in "$T/now.out" "$T/now.err" "$conf"; do
    grep -qF "$KEY" "$f" && bk_fail "the key is in $f"
done
grep -qF "$PW" "$T/now.err" && bk_fail "the password is in the output"

bk_cli list -c "$conf"
echo "$BK_OUT" | grep -qE "^$name .* yes +local$" || bk_fail "list: $BK_OUT"

# ---- restore into a new database: equal, table by table ---------------------------------
pl_create_db r1
bk_cli restore "$name" --into "$(bk_dsn_of r1)" -c "$conf"
[ "$BK_RC" = 0 ] || bk_fail "restore: $BK_ERR"
bk_sums nova >"$T/sums.nova"
bk_sums r1 >"$T/sums.r1"
[ "$(wc -l <"$T/sums.nova")" = 3 ] || bk_fail "seed: $(cat "$T/sums.nova")"
diff "$T/sums.nova" "$T/sums.r1" >&2 || bk_fail "restored tables differ"
[ "$(pl_psql -d r1 -c "SELECT last_value FROM users_id_seq")" = 5000 ] || bk_fail "sequence not restored"
[ "$(pl_psql -d r1 -c "SELECT count(*) FROM active_users")" = "$(pl_psql -c "SELECT count(*) FROM active_users")" ] ||
    bk_fail "view not restored"
echo "restored: $(tr '\n' ';' <"$T/sums.r1")"

# a non-empty target: refused, untouched; --force replaces what the backup has
pl_psql -d r1 -c "DELETE FROM audit.events WHERE id > 100" >/dev/null
bk_sums r1 >"$T/sums.r1.before"
bk_cli restore "$name" --into "$(bk_dsn_of r1)" -c "$conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'not empty' || bk_fail "restore into a non-empty database: $BK_RC $BK_ERR"
bk_sums r1 | diff "$T/sums.r1.before" - >&2 || bk_fail "the refused restore changed the target"
bk_cli restore "$name" --into "$(bk_dsn_of r1)" --force -c "$conf"
[ "$BK_RC" = 0 ] || bk_fail "restore --force: $BK_ERR"
bk_sums r1 | diff "$T/sums.nova" - >&2 || bk_fail "restore --force did not bring the backup back"

# ---- refusals: wrong key, truncated, flipped byte; nothing restored -----------------------
refused() { # WHAT PATTERN CONF
    local db=r_$1
    pl_create_db "$db"
    bk_cli verify "$name" -c "$3"
    [ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -qE "$2" || bk_fail "$1: verify said $BK_RC: $BK_OUT $BK_ERR"
    bk_cli restore "$name" --into "$(bk_dsn_of "$db")" -c "$3"
    [ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -qE "$2" && echo "$BK_ERR" | grep -q 'nothing was restored' ||
        bk_fail "$1: restore said $BK_RC: $BK_ERR"
    [ "$(bk_relations "$db")" = 0 ] || bk_fail "$1: something was restored into $db"
    echo "refused ($1): $(echo "$BK_ERR" | tail -1)"
}
bk_cli keygen "$T/key2"
bk_config "$T/wrong.conf" "$T/dir" "$T/key2" "$DSN"
refused wrongkey 'wrong key: .*key id' "$T/wrong.conf"

# damaged copies in their own directories; the manifest is made to match the
# damaged file (as if rewritten), so decryption alone has to catch it
damaged() { # WHAT: copies the backup into $T/WHAT, to be damaged
    mkdir -p "$T/$1"
    cp "$enc" "$man" "$T/$1/"
    bk_config "$T/$1.conf" "$T/$1" "$T/key" "$DSN"
}
rematch() { # DIR: the manifest's size and sha256 follow the file
    python3 - "$1/$name.json" "$1/$name.dump.enc" <<'PY'
import hashlib, json, os, sys
m = json.load(open(sys.argv[1]))
m["sha256"] = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
m["size_bytes"] = os.path.getsize(sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
PY
}
size=$(stat -c %s "$enc")
damaged trunc
truncate -s $((size - 1000)) "$T/trunc/$name.dump.enc"
rematch "$T/trunc"
refused truncated 'truncated' "$T/trunc.conf"
damaged trunc2
truncate -s $((56 + 2 * 65553)) "$T/trunc2/$name.dump.enc"
rematch "$T/trunc2"
refused truncated_at_record 'truncated: the file ends after record 2' "$T/trunc2.conf"
for off in 20 70000 $((size / 2)) $((size - 3)); do
    damaged "flip$off"
    python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[o] ^= 0x10; open(p, "wb").write(b)' "$T/flip$off/$name.dump.enc" "$off"
    rematch "$T/flip$off"
    refused "flip$off" 'modified or corrupted|does not authenticate' "$T/flip$off.conf"
done
# without rematching, the sha256 of the manifest catches a changed byte too
damaged flipsha
python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-1] ^= 1; open(p, "wb").write(b)' "$T/flipsha/$name.dump.enc"
bk_cli verify "$name" -c "$T/flipsha.conf"
[ "$BK_RC" = 1 ] || bk_fail "a flipped last byte verified"
bk_cli list -c "$T/flipsha.conf"
echo "$BK_OUT" | grep -qE "^$name .* FAILED +local$" || bk_fail "list after a failed verify: $BK_OUT"

# ---- other key sources: credential, environment -----------------------------------------
bk_config "$T/nokey.conf" "$T/dir" "" "$DSN"
mkdir -p "$T/creds"
cp "$T/key" "$T/creds/backups-key"
CREDENTIALS_DIRECTORY=$T/creds bk_cli verify "$name" -c "$T/nokey.conf"
[ "$BK_RC" = 0 ] || bk_fail "key from the credential backups-key: $BK_ERR"
BACKUP_ENCRYPTION_KEY=$KEY bk_cli verify "$name" -c "$T/nokey.conf"
[ "$BK_RC" = 0 ] || bk_fail "key from BACKUP_ENCRYPTION_KEY: $BK_ERR"
bk_cli verify "$name" -c "$T/nokey.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'no backup key' || bk_fail "no key: $BK_ERR"
echo "not hex at all" >"$T/badkey"
bk_config "$T/badkey.conf" "$T/dir" "$T/badkey" "$DSN"
bk_cli verify "$name" -c "$T/badkey.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q '64 hexadecimal digits' || bk_fail "bad key file: $BK_ERR"

# ---- failures leave no file under a final name ------------------------------------------
bk_config "$T/baddsn.conf" "$T/faildir" "$T/key" "postgresql://bk:$PW@127.0.0.1:1/nova"
bk_cli now -c "$T/baddsn.conf"
[ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'pg_dump exited 1' || bk_fail "bad DSN: $BK_RC $BK_ERR"
echo "$BK_ERR" | grep -qF "$PW" && bk_fail "the password is in the error"
[ -z "$(ls -A "$T/faildir")" ] || bk_fail "files left by a failed pg_dump: $(ls "$T/faildir")"
echo "pg_dump failure: $(echo "$BK_ERR" | tail -1)"
# a full disk, where a small tmpfs can be mounted (root)
mkdir -p "$T/full"
if mount -t tmpfs -o size=64k tmpfs "$T/full" 2>/dev/null; then
    bk_config "$T/full.conf" "$T/full" "$T/key" "$DSN"
    bk_cli now -c "$T/full.conf"
    files=$(ls -A "$T/full")
    umount "$T/full"
    [ "$BK_RC" = 1 ] && echo "$BK_ERR" | grep -q 'No space left on device' || bk_fail "disk full: $BK_RC $BK_ERR"
    [ -z "$files" ] || bk_fail "files left on a full disk: $files"
    echo "disk full: $(echo "$BK_ERR" | tail -1)"
else
    echo "e2e_backup: cannot mount a tmpfs here: disk-full part skipped"
fi

for f in "$PL_TMP"/cli-all.log; do
    grep -qF "$KEY" "$f" && bk_fail "the key is in the command output"
done
echo "e2e_backup: ok"
