#!/bin/bash
# End to end with a real SMTP server (tests/lib/smtp_peer.py on aiosmtpd,
# AUTH required): a scheduled run queues one mail job per file; each mail
# goes to every recipient of mail_to with a text summary and the CSV
# attached, whose base64 decodes to the file's bytes (Python's email
# package reads it); the password comes from the SMTP_PASSWORD secret. With
# the SMTP server down the run still writes its files and completes, the
# mail job is retried, and the mail is sent once the server is back, the
# files still there. A file larger than max_attachment is named in the body,
# not attached. smtp:// without STARTTLS is refused unless smtp_starttls = no.
set -euo pipefail
. "$NOVA_SRCDIR/tests/reports/lib.sh"

rp_setup
out=$PL_TMP/out
smtp_port=$(nova_free_port)
rp_smtp_start "$smtp_port" --mode plain --auth reports:pa55word
mail_conf=("daily = user, transaction" "daily_schedule = 0 0 1 1 *" "output_dir = $out"
    "smtp_url = smtp://127.0.0.1:$smtp_port" "smtp_starttls = no" "smtp_username = reports"
    "mail_from = reports@nova.test" "mail_to = ops@nova.test, cfo@nova.test"
    "mail_backoff = 100ms" "mail_attempts = 30")
rp_config "${mail_conf[@]}"
SMTP_PASSWORD=pa55word pl_start_worker w1 "$RP_CONF"

yesterday=$(date -u -d yesterday +%F)
r=$(pl_job run reports scheduled '{"period":"daily"}' --timeout 30000) || rp_fail "run: $r"
[ "$(rp_field "$r" state)" = completed ] || rp_fail "run: $r"
res=$(rp_field "$r" returnvalue)
for i in 0 1; do
    type=$(rp_field "$res" "reports.$i.type")
    file=$(rp_field "$res" "reports.$i.file")
    mail=$(rp_field "$res" "reports.$i.mail")
    [ -n "$mail" ] && [ "$mail" != undefined ] || rp_fail "no mail job for $type: $res"
    m=$(pl_job wait reports "$mail" --timeout 20000) || rp_fail "mail job $mail: $m"
    [ "$(rp_field "$m" state)" = completed ] || rp_fail "mail job $mail: $m"
    eml=
    for e in "$PL_TMP"/mail/*.eml; do grep -q "$(basename "$file")" "$e" && eml=$e; done
    [ -n "$eml" ] || rp_fail "no mail holds $(basename "$file"): $(ls "$PL_TMP/mail")"
    grep -q '"to": \["ops@nova.test", "cfo@nova.test"\]' "${eml%.eml}.json" ||
        rp_fail "recipients: $(cat "${eml%.eml}.json")"
    grep -q '"auth": true' "${eml%.eml}.json" || rp_fail "the mail was sent without AUTH"
    s=$(python3 "$PL_SRC/tests/reports/check_mail.py" "$eml" "$file") || rp_fail "$eml"
    [ "$s" = "Nova daily $type report $yesterday" ] || rp_fail "subject: $s"
    echo "  $type: mailed, attachment equals $file"
done
[ "$(ls "$PL_TMP"/mail/*.eml | wc -l)" = 2 ] || rp_fail "$(ls "$PL_TMP/mail" | wc -l) messages, expected 2"

# the SMTP server goes down: the run still writes and completes, the mail
# job is retried, and sent once the server is back
rp_smtp_stop
rm -f "$out"/*.csv
r=$(pl_job run reports scheduled '{"period":"daily","types":"transaction"}' --timeout 30000) || rp_fail "run: $r"
[ "$(rp_field "$r" state)" = completed ] || rp_fail "run with SMTP down: $r"
res=$(rp_field "$r" returnvalue)
file=$(rp_field "$res" reports.0.file)
mail=$(rp_field "$res" reports.0.mail)
[ -s "$file" ] || rp_fail "no file while SMTP is down"
attempts=0
for _ in $(seq 100); do
    attempts=$(redis-cli -p "$PL_REDIS_PORT" hget "bull:reports:$mail" atm)
    [ "${attempts:-0}" -ge 3 ] && break
    sleep 0.1
done
[ "${attempts:-0}" -ge 3 ] || rp_fail "the mail job was not retried: attemptsMade ${attempts:-none}"
grep -q "mail of .*$(basename "$file").*Connection refused\|mail of .*connection failed" "$PL_TMP/w1.log" ||
    rp_fail "no log line for the failed mail"
[ -s "$file" ] || rp_fail "the file went away while the mail failed"
rp_smtp_start "$smtp_port" --mode plain --auth reports:pa55word
m=$(pl_job wait reports "$mail" --timeout 20000) || rp_fail "mail job $mail after SMTP came back: $m"
[ "$(rp_field "$m" state)" = completed ] || rp_fail "mail job after SMTP came back: $m"
eml=$(ls -t "$PL_TMP"/mail/*.eml | head -1)
python3 "$PL_SRC/tests/reports/check_mail.py" "$eml" "$file" >/dev/null || rp_fail "$eml after the retry"
[ -s "$file" ] || rp_fail "the file went away"
echo "  SMTP down: mail retried $attempts+ times, sent when the server came back"
m=$(curl -sf "http://127.0.0.1:$PL_METRICS_PORT/metrics") || rp_fail "no /metrics"
echo "$m" | grep -E '^nova_reports_mail_failures_total(\{.*\})? [0-9]+$' | grep -qv ' 0$' ||
    rp_fail "nova_reports_mail_failures_total: $(echo "$m" | grep mail_failures)"
echo "$m" | grep -E '^nova_reports_mails_total\{.*outcome="sent".*\} 3$' >/dev/null ||
    rp_fail "nova_reports_mails_total: $(echo "$m" | grep nova_reports_mails_total)"
pl_finish_worker w1 || rp_fail "worker shutdown"

# a file larger than max_attachment is named, not attached
rp_config "${mail_conf[@]}" "max_attachment = 100"
SMTP_PASSWORD=pa55word pl_start_worker w2 "$RP_CONF"
r=$(pl_job run reports scheduled '{"period":"daily","types":"transaction"}' --timeout 30000) || rp_fail "run: $r"
mail=$(rp_field "$(rp_field "$r" returnvalue)" reports.0.mail)
file=$(rp_field "$(rp_field "$r" returnvalue)" reports.0.file)
m=$(pl_job wait reports "$mail" --timeout 20000) || rp_fail "mail job $mail: $m"
[ "$(rp_field "$m" state)" = completed ] || rp_fail "mail job (max_attachment): $m"
eml=$(ls -t "$PL_TMP"/mail/*.eml | head -1)
python3 "$PL_SRC/tests/reports/check_mail.py" "$eml" "$file" --no-attachment >/dev/null ||
    rp_fail "the large file was attached"
pl_finish_worker w2 || rp_fail "worker shutdown"

# smtp:// to a server without STARTTLS: refused unless smtp_starttls = no
rp_config "daily = user" "daily_schedule = 0 0 1 1 *" "output_dir = $out" \
    "smtp_url = smtp://127.0.0.1:$smtp_port" "smtp_username = reports" \
    "mail_from = reports@nova.test" "mail_to = ops@nova.test" "mail_attempts = 1"
SMTP_PASSWORD=pa55word pl_start_worker w3 "$RP_CONF"
r=$(pl_job run reports scheduled '{"period":"daily"}' --timeout 30000) || rp_fail "run: $r"
mail=$(rp_field "$(rp_field "$r" returnvalue)" reports.0.mail)
m=$(pl_job wait reports "$mail" --timeout 20000) || rp_fail "mail job $mail: $m"
[ "$(rp_field "$m" state)" = failed ] || rp_fail "plain-text SMTP was used: $m"
rp_field "$m" failedReason | grep -q STARTTLS || rp_fail "reason: $(rp_field "$m" failedReason)"
pl_finish_worker w3 || rp_fail "worker shutdown"
rp_smtp_stop

echo "e2e_mail: ok"
