# tests/backups/lib.sh - helpers of the backups e2e tests, on top of the
# throw-away world of tests/plugins/lib.sh (PostgreSQL 15 and Redis on free
# ports in a temp dir, nova-worker processes, bullmq through jobs.js).
#
# Needs: PL_SRC, PL_BUILD (set by the test from NOVA_SRCDIR/NOVA_BUILDDIR).

. "$PL_SRC/tests/plugins/lib.sh"

BK_PGBIN=$(dirname "$(nova_pg_bin pg_dump)")
# the command runs without the daemon: it finds the HTTP module here
export NOVA_MODULE_DIR=${NOVA_MODULE_DIR:-$PL_BUILD/runtime/.libs}
# `backup keygen FILE` without -c finds the plugin here
export NOVA_PLUGIN_DIR=${NOVA_PLUGIN_DIR:-$PL_BUILD/plugins/backups/.libs}

bk_fail() {
    echo "${BK_TEST:-backups}: FAIL: $*" >&2
    exit 1
}

# bk_cli ARGS...: nova-worker backup ARGS, output in $BK_OUT / $BK_ERR,
# status in $BK_RC (never fails by itself).
bk_cli() {
    BK_RC=0
    "$PL_BUILD/nova-worker" backup "$@" >"$PL_TMP/cli.out" 2>"$PL_TMP/cli.err" || BK_RC=$?
    BK_OUT=$(cat "$PL_TMP/cli.out")
    BK_ERR=$(cat "$PL_TMP/cli.err")
    cat "$PL_TMP/cli.out" "$PL_TMP/cli.err" >>"$PL_TMP/cli-all.log"
}

# bk_config FILE DIR KEYFILE DSN ["key = value"...]: a worker config with
# the backups plugin enabled, its backups in DIR.
bk_config() {
    local file=$1 dir=$2 key=$3 dsn=$4
    shift 4
    pl_config "$file" backups nova \
        "backup_dir = $dir" "key_file = $key" "dsn = $dsn" \
        "pg_dump = $BK_PGBIN/pg_dump" "pg_restore = $BK_PGBIN/pg_restore" "psql = $BK_PGBIN/psql" \
        "$@"
}

bk_dsn_of() { # DB [USER[:PASSWORD]]
    echo "postgresql://${2:-postgres}@127.0.0.1:$PL_PG_PORT/$1"
}

# bk_sums DB: one line per user table, "schema.table rows md5", sorted:
# every row of every table, in a stable order, as text.
bk_sums() {
    local db=$1 t
    for t in $(pl_psql -d "$db" -c "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
                                    FROM information_schema.tables
                                    WHERE table_type = 'BASE TABLE'
                                      AND table_schema NOT IN ('pg_catalog', 'information_schema')
                                    ORDER BY 1"); do
        echo "$t $(pl_psql -d "$db" -c "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '-') FROM $t x")"
    done
}

# bk_relations DB: user relations in DB (0 = empty database).
bk_relations() {
    pl_psql -d "$1" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                          AND n.nspname !~ '^pg_(toast|temp)'"
}

# bk_json FILE FIELD: one field of a JSON file ("" for null).
bk_json() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print("" if v is None else (str(v).lower() if isinstance(v, bool) else v))' "$1" "$2"
}

# Nova-like data: several types, NULLs, quotes and newlines, a second
# schema, a sequence, a view, rows enough for several 64 KiB records.
bk_seed() {
    pl_psql -d "$1" >/dev/null <<'SQL'
CREATE TABLE users (id serial PRIMARY KEY, wallet_address varchar(56) NOT NULL,
                    email text, is_deleted boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE point_transactions (id bigserial PRIMARY KEY, user_id int REFERENCES users(id),
                    type text, amount numeric(20, 7), meta jsonb, note text, raw bytea,
                    created_at timestamptz);
CREATE SCHEMA audit;
CREATE TABLE audit.events (id int PRIMARY KEY, payload text, at date);
CREATE VIEW active_users AS SELECT id, wallet_address FROM users WHERE NOT is_deleted;
INSERT INTO users (wallet_address, email, is_deleted, created_at)
SELECT 'G' || lpad(g::text, 55, '0'), CASE WHEN g % 7 = 0 THEN NULL ELSE 'u' || g || '@example.com' END,
       g % 11 = 0, timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes'
FROM generate_series(1, 3000) g;
INSERT INTO point_transactions (user_id, type, amount, meta, note, raw, created_at)
SELECT 1 + g % 3000, (ARRAY['earned', 'redeemed', 'bonus'])[1 + g % 3], (g * 1.0000001)::numeric(20, 7),
       jsonb_build_object('k', g, 's', 'x"y\z'), CASE WHEN g % 5 = 0 THEN NULL ELSE E'line\n''quoted''\t' || g END,
       decode(md5(g::text), 'hex'), timestamptz '2026-02-01 00:00:00+00' + g * interval '1 second'
FROM generate_series(1, 40000) g;
INSERT INTO audit.events SELECT g, repeat(chr(65 + g % 26), g % 200), date '2026-01-01' + g FROM generate_series(1, 500) g;
SELECT setval('users_id_seq', 5000);
SQL
}
