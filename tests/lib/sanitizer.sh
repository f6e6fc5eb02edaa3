# tests/lib/sanitizer.sh - reading a worker's exit and log in the e2e tests
# the same way everywhere (sourced; POSIX sh and bash).
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
