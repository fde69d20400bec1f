#!/usr/bin/env bash
# t-digest: digests by mail and webhook, against a real SMTP server
# (aiosmtpd, writing what it receives to a Maildir) and an HTTP receiver
# on loopback.  digest = run: one mail and one POST per run that built or
# failed something, nothing on a no-op; the mail is well formed (Date,
# Message-ID, MIME, UTF-8, short lines) and lists each archive with its
# series and size.  include_ids = no: no PatientID in anything received,
# counts instead, a failure's reason with the ID replaced.  digest = daily
# (digest_time a few seconds ahead): nothing until it passes, failures at
# once with errors = immediate, then one digest of everything since.
# STARTTLS with a throwaway certificate; an untrusted certificate, a
# closed port and a server that never answers are warnings (exit 0), and
# the digest they could not send comes with the next run.  A server that
# wants a login (STARTTLS, then AUTH): a wrong password is a warning.  The
# same notices kept in PostgreSQL, two workers at once: each archive once.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# smtp_start NAME [AIOSMTPD-ARGS]... : aiosmtpd on a free port into the
# Maildir $LOG/NAME; its port in SMTP_PORT.
smtp_start() {
	local name=$1 i
	shift
	SMTP_PORT=$(free_port)
	aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" "$@" -c aiosmtpd.handlers.Mailbox "$LOG/$name" \
		>"$LOG/$name.log" 2>&1 &
	BGPIDS="$BGPIDS $!"
	for i in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	say "FAIL: aiosmtpd did not start"; cat "$LOG/$name.log"; exit 1
}
mails() { "$PY" "$TESTS/maildir.py" "$LOG/$1" count; }
mail_header() { "$PY" "$TESTS/maildir.py" "$LOG/$1" header "$2" "$3"; }
mail_body() { "$PY" "$TESTS/maildir.py" "$LOG/$1" body "$2"; }
mail_raw() { "$PY" "$TESTS/maildir.py" "$LOG/$1" raw "$2"; }

# The webhook: every request and its body recorded.
"$PY" "$TESTS/pingserver.py" --log "$LOG/hook" --ready "$LOG/hook.port" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 50); do [ -s "$LOG/hook.port" ] && break; sleep 0.1; done
HOOK="http://127.0.0.1:$(cat "$LOG/hook.port")/hook"
posts() { if [ -f "$LOG/hook" ]; then wc -l <"$LOG/hook"; else echo 0; fi; }
post_text() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["text"])' "$LOG/hook.body.$1"; }

smtp_start box
gen --patient TH-01-AA --studies 1 --series 2 --instances 2 --seed a
gen --patient TH-02-BB --studies 1 --series 1 --instances 2 --seed b
NOTIFY=(notify.mail_to='lab@example.org, pi@example.org' notify.mail_from=thlhp@example.org
	notify.smtp_url="smtp://127.0.0.1:$SMTP_PORT" notify.webhook_url="$HOOK" notify.timeout=5)

section "digest = run, include_ids = yes: one mail and one post for a run that built"
write_config "${NOTIFY[@]}" notify.include_ids=yes
run all
exit_is "all succeeds" 0
check "one mail arrived" "$(mails box)" 1
ok "it is well formed: Date, Message-ID, MIME, UTF-8 text, lines under 998 bytes" \
	"$PY" "$TESTS/maildir.py" "$LOG/box" check 1
check "From is mail_from" "$(mail_header box 1 From)" thlhp@example.org
check "To names both addresses" "$(mail_header box 1 To)" 'lab@example.org, pi@example.org'
has_line "Subject counts what happened" <(mail_header box 1 Subject) \
	'^thlhp-make proj: 2 archives built, 3 new series, 0 failures$'
mail_body box 1 >"$LOG/body1"
has_line "the body lists TH-01-AA's archive with its 2 series" "$LOG/body1" \
	'^  TH-01-AA__seriesCount2\.zip +2 series +[0-9.]+ kB$'
has_line "and TH-02-BB's with its 1" "$LOG/body1" '^  TH-02-BB__seriesCount1\.zip +1 series'
has_line "the total of the archives" "$LOG/body1" '^Archives built: 2, [0-9.]+ kB in all$'
has_line "the new series, with their patients" "$LOG/body1" '^New series: 3, of 2 patients$'
count_is "each new series on a line" "$LOG/body1" '^  TH-0[12]-[A-Z]{2} +CT +2\.25\.' 3
has_line "the run and how long it took" "$LOG/body1" '^1 run from .* of work; the last succeeded\.$'
check "the webhook got one POST" "$(posts)" 1
has_line "a JSON POST to the webhook's path" "$LOG/hook" '^POST /hook [0-9]+$'
post_text 1 >"$LOG/post1"
check "its text is the digest" "$(cat "$LOG/post1")" "$(cat "$LOG/body1")"

section "a run with nothing to do sends nothing"
run all
exit_is "all succeeds" 0
check "no mail" "$(mails box)" 1
check "no POST" "$(posts)" 1

section "include_ids = no: counts, no PatientID anywhere"
gen --patient TH-03-CC --studies 1 --series 1 --instances 2 --seed c
gen --patient TH-04-DD --studies 1 --series 1 --instances 2 --seed d
# TH-04-DD's folder is a link out of dicom_dir: its download is refused,
# and the reason names the folder, PatientID and all.
mkdir -p data/dicom "$LOG/elsewhere"
ln -s "$LOG/elsewhere" data/dicom/TH-04-DD
write_config "${NOTIFY[@]}"
run -k all
exit_is "all -k fails (TH-04-DD)" 2
has_line "stderr names TH-04-DD's folder" "$ERR" 'TH-04-DD'
check "one more mail" "$(mails box)" 2
check "one more POST" "$(posts)" 2
mail_raw box 2 >"$LOG/raw2"
mail_body box 2 >"$LOG/body2"
post_text 2 >"$LOG/post2"
for f in "$LOG/raw2" "$LOG/body2" "$LOG/post2"; do
	no_line "no PatientID in $(basename "$f")" "$f" 'TH-0[1-4]-[A-Z]{2}'
done
has_line "the archive is counted, with its series and size" "$LOG/body2" '^  patient 1 +1 series +[0-9.]+ kB$'
has_line "the new series are counted by modality" "$LOG/body2" '^  CT +1$'
has_line "the failure is there, its stage and a patient number" "$LOG/body2" \
	'^  download \(patient 2\): .*patient 2.*'
has_line "the Subject counts the failure" <(mail_header box 2 Subject) '1 failure$'
has_line "the body says why no IDs" "$LOG/body2" 'include_ids = yes names them'
rm data/dicom/TH-04-DD

section "an untrusted certificate, a closed port, a silent server: warnings, exit 0"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$LOG/key.pem" -out "$LOG/cert.pem" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
	{ say "FAIL: openssl cannot make a certificate"; exit 1; }
smtp_start tls --tlscert "$LOG/cert.pem" --tlskey "$LOG/key.pem"
TLS_PORT=$SMTP_PORT
gen --patient TH-05-EE --studies 1 --series 1 --instances 2 --seed e
# The server insists on STARTTLS; its certificate is not trusted yet.
write_config "${NOTIFY[@]}" notify.smtp_url="smtp://127.0.0.1:$TLS_PORT" notify.webhook_url=
run all
exit_is "all succeeds all the same" 0
has_line "the warning names the server and the reason" "$ERR" \
	"^thlhp-make: mail through smtp://127\.0\.0\.1:$TLS_PORT/?: .*(certificate|SSL).*kept for the next run"
check "nothing arrived" "$(mails tls)" 0
CLOSED=$(free_port)
write_config "${NOTIFY[@]}" notify.smtp_url="smtp://127.0.0.1:$CLOSED" notify.webhook_url=
run all
exit_is "a closed port: exit 0" 0
has_line "the warning names it" "$ERR" "mail through smtp://127\.0\.0\.1:$CLOSED/?: .*(connect|Connection refused)"
# A server that takes the connection and never says a word.
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(600)' "$LOG/silent.port" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 50); do [ -s "$LOG/silent.port" ] && break; sleep 0.1; done
write_config "${NOTIFY[@]}" notify.smtp_url="smtp://127.0.0.1:$(cat "$LOG/silent.port")" \
	notify.webhook_url= notify.timeout=2
t0=$(date +%s)
run all
t1=$(date +%s)
exit_is "a silent server: exit 0" 0
has_line "the warning says it timed out" "$ERR" 'mail through .*(timed out|Timeout)'
ok "it gave up within the timeout (2 s; took $((t1 - t0)) s)" test $((t1 - t0)) -le 6

section "STARTTLS with the certificate trusted: the kept digest arrives"
write_config "${NOTIFY[@]}" notify.smtp_url="smtp://127.0.0.1:$TLS_PORT" notify.webhook_url= \
	notify.smtp_ca="$LOG/cert.pem"
run all
exit_is "all succeeds" 0
is_empty "no warning" "$ERR"
check "one mail arrived over TLS" "$(mails tls)" 1
mail_body tls 1 >"$LOG/tls1"
has_line "it is the digest the failed attempt kept: TH-04-DD's and TH-05-EE's archives" \
	"$LOG/tls1" '^Archives built: 2, '
has_line "of the one run that built something (the two after it had nothing to do)" \
	"$LOG/tls1" '^1 run from'

section "a server that wants a login (STARTTLS, then AUTH)"
export SMTP_USER=thlhp SMTP_PASSWORD=pw-$RANDOM-$RANDOM
"$PY" "$TESTS/smtpauth.py" --cert "$LOG/cert.pem" --key "$LOG/key.pem" --user "$SMTP_USER" \
	--password "$SMTP_PASSWORD" --maildir "$LOG/auth" --ready "$LOG/auth.port" 2>"$LOG/auth.err" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 100); do [ -s "$LOG/auth.port" ] && break; sleep 0.05; done
[ -s "$LOG/auth.port" ] || { say "FAIL: smtpauth.py did not start"; cat "$LOG/auth.err"; exit 1; }
gen --patient TH-05-EF --studies 1 --series 1 --instances 2 --seed ef
write_config "${NOTIFY[@]}" notify.smtp_url="smtp://127.0.0.1:$(cat "$LOG/auth.port")" \
	notify.webhook_url= notify.smtp_ca="$LOG/cert.pem" notify.smtp_user='${SMTP_USER}' \
	notify.smtp_password='${SMTP_PASSWORD}'
SMTP_PASSWORD=wrong run all
exit_is "a wrong password: exit 0 all the same" 0
has_line "the warning says the login was refused" "$ERR" 'mail through .*(Login denied|authentication|535)'
no_line "and never shows the password" "$ERR" 'wrong'
check "the server refused one login" "$(wc -l <"$LOG/auth.port.refused")" 1
run all
exit_is "the right password" 0
is_empty "no warning" "$ERR"
check "the kept digest arrived" "$(mails auth)" 1
has_line "with TH-05-EF's archive" <(mail_body auth 1) '^Archives built: 1, '

section "digest = daily: nothing before digest_time, failures at once, then one digest"
at=$(date -d '+6 sec' +%H:%M:%S)
gen --patient TH-06-FF --studies 1 --series 1 --instances 2 --seed f
gen --patient TH-07-GG --studies 1 --series 1 --instances 2 --seed g
mkdir -p data/dicom
ln -s "$LOG/elsewhere" data/dicom/TH-07-GG
write_config "${NOTIFY[@]}" notify.digest=daily notify.digest_time="$at" notify.errors=immediate
before=$(mails box) posted=$(posts)
run all
exit_is "all fails (TH-07-GG)" 2
check "one mail: the failure, at once" "$(mails box)" $((before + 1))
has_line "its Subject says so" <(mail_header box $((before + 1)) Subject) '^thlhp-make proj: 1 failure$'
mail_body box $((before + 1)) >"$LOG/fail1"
has_line "it gives the reason, without the PatientID" "$LOG/fail1" '^  download \(patient 1\): '
no_line "no PatientID in it" "$LOG/fail1" 'TH-0[1-7]-[A-Z]{2}'
check "and one POST, the failure" "$(posts)" $((posted + 1))
rm data/dicom/TH-07-GG
while [ "$(date +%H:%M:%S)" \< "$at" ]; do sleep 0.5; done
sleep 1
run all
exit_is "past digest_time: all succeeds" 0
check "one mail: the digest" "$(mails box)" $((before + 2))
mail_body box $((before + 2)) >"$LOG/daily"
has_line "of both runs" "$LOG/daily" '^2 runs from .*the last succeeded\.$'
has_line "with both archives" "$LOG/daily" '^Archives built: 2, '
has_line "and the failure of the first" "$LOG/daily" '^Failures: 1$'
check "and the webhook got the digest" "$(posts)" $((posted + 2))
run all
exit_is "another run" 0
check "sends nothing: the next digest is tomorrow's" "$(mails box)" $((before + 2))

section "the notices in PostgreSQL"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"
pg_start
gen --patient TH-08-HH --studies 1 --series 1 --instances 2 --seed h
write_config "${NOTIFY[@]}" notify.webhook_url= state.url="$PG_URL"
before=$(mails box)
run all
exit_is "all into a PostgreSQL state" 0
check "one mail" "$(mails box)" $((before + 1))
has_line "the digest of that run: every archive, as the state is new" \
	<(mail_body box $((before + 1))) '^Archives built: 9, '
check "nothing kept once sent" "$(pg_sql 'SELECT count(*) FROM notice' thlhp)" 0
run all
check "a run with nothing to do: no mail" "$(mails box)" $((before + 1))
# Two workers on the same store at once: each archive in exactly one mail.
for p in 09-II 10-JJ 11-KK 12-LL; do gen --patient "TH-$p" --studies 1 --series 1 --instances 2 --seed "$p"; done
write_config "${NOTIFY[@]}" notify.webhook_url= state.url="$PG_URL" notify.include_ids=yes
before=$(mails box)
"$THLHP" -j2 all >"$LOG/w1.out" 2>&1 &
w1=$!
"$THLHP" -j2 all >"$LOG/w2.out" 2>&1 &
w2=$!
wait $w1; r1=$?
wait $w2; r2=$?
check "both workers succeed" "$r1 $r2" "0 0"
# The one that ended second may have found the first sending: it waits,
# then sends what the first did not read.  Nothing is left for a later run.
after=$(mails box)
ok "one or two mails ($((after - before)))" test $((after - before)) -ge 1 -a $((after - before)) -le 2
for i in $(seq $((before + 1)) "$after"); do mail_body box "$i"; done >"$LOG/both"
count_is "the four new archives, each listed once across them, as the workers end" "$LOG/both" \
	'^  TH-(09-II|10-JJ|11-KK|12-LL)__seriesCount1\.zip ' 4
check "nothing kept unsent" "$(pg_sql 'SELECT count(*) FROM notice' thlhp)" 0
run all
check "the next run, with nothing to do, sends nothing" "$(mails box)" "$after"

section "bad [notify] settings are refused"
write_config "${NOTIFY[@]}" notify.mail_to='lab@example.org, not-an-address'
run all
exit_is "a bad address" 2
has_line "is named with its line" "$ERR" "thlhp\.ini:[0-9]+: \[notify\] mail_to: 'not-an-address' is not a mail address"
long=$(printf 'x%.0s' $(seq 1 250))@example.org
write_config "${NOTIFY[@]}" notify.mail_to="lab@example.org $long"
run all
exit_is "an address past 254 bytes" 2
has_line "is refused too" "$ERR" "\[notify\] mail_to: 'x{250}@example\.org' is not a mail address"
write_config "${NOTIFY[@]}" notify.smtp_url=
run all
exit_is "mail_to without smtp_url" 2
has_line "says what is missing" "$ERR" 'mail_to: needs smtp_url'
write_config "${NOTIFY[@]}" notify.digest_time=25:00
run all
exit_is "digest_time 25:00" 2
has_line "says how to write it" "$ERR" 'digest_time: .25:00.: use HH:MM'

finish
