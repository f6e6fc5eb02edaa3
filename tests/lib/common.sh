# tests/lib/common.sh - what every e2e world (tests/*/lib.sh) needs the
# same way (sourced; POSIX sh and bash): a free port, PostgreSQL's
# binaries run as the postgres user when we are root, and reading a
# worker's exit and log.

nova_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a PostgreSQL binary as the postgres user when we are root (it
# refuses root), as ourselves otherwise.
nova_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# nova_pg_bin NAME: the path of a PostgreSQL 15 program, or a message and
# status 1 when it is not installed.
nova_pg_bin() {
    for d in /usr/lib/postgresql/15/bin /usr/local/bin /usr/bin; do
        [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    command -v "$1" && return 0
    echo "$1 (PostgreSQL 15) is not installed" >&2
    return 1
}

# Reading a worker's exit and log.
#
# Under the sanitizer build a worker's stderr (its log) carries any
# ASan/UBSan/LSan report, and a report makes the exit status non-zero.
# One exception is the tool's own: LeakSanitizer stops every thread with
# ptrace to scan memory at exit, and that tracer now and then crashes
# ("Tracer caught signal 11 ... LeakSanitizer has encountered a fatal
# error"). Nothing was checked then and nothing was found either, so it
# is reported as a skipped leak check on stderr, not as a failure; every
# real finding (a leak report, an ASan or UBSan error) still fails.

# nova_san_findings LOG: prints the sanitizer findings in LOG (empty: none),
# without the lines of a crashed LeakSanitizer tracer.
nova_san_findings() {
    grep -E 'Sanitizer|runtime error:' "$1" 2>/dev/null |
        grep -vE 'LeakSanitizer has encountered a fatal error|HINT: For debugging, try setting environment variable LSAN_OPTIONS|HINT: LeakSanitizer does not work under ptrace|Tracer caught signal' ||
        true
}

# nova_san_exit_ok RC LOG: true when the process exited 0, or exited 1 only
# because the LeakSanitizer tracer crashed (said so on stderr).
nova_san_exit_ok() {
    [ "$1" = 0 ] && return 0
    if [ "$1" = 1 ] && grep -q 'LeakSanitizer has encountered a fatal error' "$2" 2>/dev/null &&
        [ -z "$(nova_san_findings "$2")" ]; then
        echo "note: LeakSanitizer's tracer crashed at the exit of the process logging to $2; its leak check did not run" >&2
        return 0
    fi
    return 1
}
