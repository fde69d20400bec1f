#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-notify: [notify] ping_url heartbeats against a recording HTTP server on
# loopback: GET url/start and GET url around a good run, GET url/start and
# POST url/fail with the run's last lines around a failed one, nothing for
# -n, -q and the tools, and a ping that fails never fails the run.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
PLOG=$LOG/pings
"$PY" "$TESTS/pingserver.py" --log "$PLOG" --ready "$T/ping.port" 2>"$LOG/ping.err" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 100); do [ -s "$T/ping.port" ] && break; sleep 0.05; done
[ -s "$T/ping.port" ] || { say "FAIL: the ping server did not start"; cat "$LOG/ping.err"; exit 1; }
URL="http://127.0.0.1:$(cat "$T/ping.port")/ping/5d1b-uuid"
pings() { cut -d' ' -f1,2 "$PLOG" 2>/dev/null; }

section "a good run"
write_config "notify.ping_url=$URL"
run -j2 all
exit_is "all with ping_url" 0
check "GET /ping/5d1b-uuid/start, then GET /ping/5d1b-uuid" "$(pings)" \
	"$(printf 'GET /ping/5d1b-uuid/start\nGET /ping/5d1b-uuid')"
: >"$PLOG"
for args in -n -q "-t status"; do
	# shellcheck disable=SC2086  # the tool's two words
	run $args
done
check "-n, -q and -t status send no ping" "$(pings)" ""

section "a failed run"
IFS=$'\t' read -r st se sop _ < <(instances_of TH-01-AA | head -n 1)
head -c 100 "data/dicom/TH-01-AA/$st/$se/$sop.dcm" >"$LOG/bad.dcm"
replace_file "$LOG/bad.dcm" "data/dicom/TH-01-AA/$st/$se/$sop.dcm"
run all
exit_is "all with a damaged file" 2
check "GET .../start, then POST .../fail" "$(pings)" \
	"$(printf 'GET /ping/5d1b-uuid/start\nPOST /ping/5d1b-uuid/fail')"
body=$(ls "$PLOG".body.* | sort -t. -k3 -n | tail -n 1)
no_line "by default no PatientID leaves the host in the fail ping" "$body" "TH-0|$sop"
has_line "... it says how many lines it withheld, and how to send them" "$body" \
	'last [0-9]+ lines \([0-9]+ of them errors\) name patients .*include_ids = yes'
: >"$PLOG"
write_config "notify.ping_url=$URL" notify.include_ids=yes
replace_file "$LOG/bad.dcm" "data/dicom/TH-01-AA/$st/$se/$sop.dcm"
run all
exit_is "all again, with include_ids = yes" 2
body=$(ls "$PLOG".body.* | sort -t. -k3 -n | tail -n 1)
has_line "the fail ping's body holds the run's error, naming the bad file" "$body" "thlhp-make: .*$sop"
has_line "... and the summary line" "$body" 'job.* failed'
check "... at most 100 lines" "$([ "$(wc -l <"$body")" -le 100 ] && echo yes)" yes
run all
exit_is "the next all repairs it" 0

section "a ping that fails never fails the run"
write_config "notify.ping_url=http://127.0.0.1:1/nobody-listens"
run -B zip:TH-02-BB
exit_is "a run whose pings cannot connect" 0
has_line "a warning says the ping failed and the run went on" "$ERR" \
	'ping http://127.0.0.1:1/nobody-listens/start failed \(the run goes on\)'
ok "the archive was rebuilt all the same" zip_ok "$(archive_of TH-02-BB)"

finish
