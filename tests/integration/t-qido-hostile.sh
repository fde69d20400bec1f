#!/usr/bin/env bash
# t-qido-hostile: the DICOMweb (QIDO-RS) query against a server that answers
# badly (tests/fakeqido.py, a QIDO-RS server that says exactly what a JSON
# description says); the QIDO twin of t-query-hostile.  Only the query and
# the dry run are used (-n, query, -t status, --offline -n): no WADO-RS.
# What a user must see:
#   (a) NumberOfSeriesRelatedInstances = 0 is not trusted when /instances
#       lists instances (planned 0/3); a series whose /instances is really
#       empty is left out, with a warning naming it, and the archive's
#       count leaves it out;
#   (b) a count that is not a number ("-1", "abc") is counted from
#       /instances;
#   (c) bad records: a study of a 300-byte PatientID is skipped and named;
#       a 65-character SeriesInstanceUID makes that patient's answer
#       incomplete: exit 2 naming it, no archive of it planned (neither
#       now nor by --offline -n after `query`; -t status says so), every
#       other patient planned;
#   (d) one StudyInstanceUID under two PatientIDs: named with both, exit 2,
#       neither archived;
#   (e) an /instances count that always fails (HTTP 500) is retried per
#       [pacs] retries, then makes that patient's answer incomplete (exit
#       2 naming it, no archive of it planned, -t status says so), every
#       other patient planned: never an archive one series short; failing
#       once, the retry counts it.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

DB=$T/db.json
QLOG=$LOG/qido.log

echo '{"patients": []}' >"$DB"
"$PY" "$TESTS/fakeqido.py" --db "$DB" --log "$QLOG" --ready "$T/qido.ready" 2>"$LOG/qido.err" &
QPID=$!
BGPIDS="$BGPIDS $QPID"
for ((i = 0; i < 100; i++)); do
	[ -s "$T/qido.ready" ] && break
	kill -0 "$QPID" 2>/dev/null || break
	sleep 0.05
done
[ -s "$T/qido.ready" ] || { say "FAIL: fakeqido.py did not start:"; cat "$LOG/qido.err"; exit 1; }
URL=http://127.0.0.1:$(cat "$T/qido.ready")/dicom-web

# fresh : no state, no data, a thlhp.ini for the fake.
fresh() {
	rm -rf .thlhp data
	write_config pacs.protocol=dicomweb pacs.path= "pacs.url=$URL" pacs.timeout=2 \
		pacs.retries=1
}

# both DESC ERE1 ERE2 : some line of stderr matches both.
both() {
	if grep -E -- "$2" "$ERR" | grep -Eq -- "$3"; then pass "$1"; else
		fail "$1"; say "    no stderr line matches both: $2 / $3"; show_run
	fi
}

# series UID COUNT INSTANCES [EXTRA JSON] : one series record (COUNT - :
# none; a number as a JSON number, anything else as a string)
series() {
	local c=
	case $2 in
	-) ;;
	[0-9]*) c="\"NumberOfSeriesRelatedInstances\": $2, " ;;
	*) c="\"NumberOfSeriesRelatedInstances\": \"$2\", " ;;
	esac
	printf '{"SeriesInstanceUID": "%s", "Modality": "CT", %s"instances": %s%s}' "$1" "$c" "$3" "${4:-}"
}
# instances_asked SERIESUID : how many /instances requests of that series the fake logged
instances_asked() { grep -c "/series/$1/instances[?]" "$QLOG"; }

OK9=1.2.826.0.1.3680043.8.498.9009
good9='{"PatientID": "TH-Z9", "studies": [{"StudyInstanceUID": "'$OK9'", "series": ['$(series "$OK9.1" 2 2)']}]}'

section "(a) NumberOfSeriesRelatedInstances = 0"
A1=1.2.826.0.1.3680043.8.498.1001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-A1", "studies": [{"StudyInstanceUID": "$A1", "series": [
   $(series "$A1.1" 0 3), $(series "$A1.2" 0 0), $(series "$A1.3" - 0), $(series "$A1.4" 2 2)]}]}]}
EOF
fresh
run -n
exit_is "-n: series that are empty at the source do not fail the run" 0
has_line "a count of 0 with 3 instances listed: planned 0/3" "$OUT" "^download +TH-A1 $A1\\.1 +new series \\(0/3 instances\\)"
has_line "a count of 2: planned 0/2" "$OUT" "^download +TH-A1 $A1\\.4 +new series \\(0/2 instances\\)"
no_line "the really empty series are not planned" "$OUT" "$A1\\.[23]( |$)"
both "stderr warns of the empty series (count 0), naming the patient" "TH-A1" "$A1\\.2( |$|[^0-9])"
both "stderr warns of the empty series (no count), naming the patient" "TH-A1" "$A1\\.3( |$|[^0-9])"
has_line "the archive counts the 2 series with instances" "$OUT" '^zip +data/zip/TH-A1__seriesCount2\.zip'
no_line "never an archive counting the empty ones" "$OUT" 'TH-A1__seriesCount[34]\.zip'
ok "the count of 0 was checked at /instances" test "$(instances_asked "$A1.1")" -ge 1
ok "a count of 2 was trusted (no /instances request)" test "$(instances_asked "$A1.4")" -eq 0

section "(b) a count that is not a number"
B1=1.2.826.0.1.3680043.8.498.2001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-B1", "studies": [{"StudyInstanceUID": "$B1", "series": [
   $(series "$B1.1" -1 3), $(series "$B1.2" abc 4), $(series "$B1.3" 2 2)]}]}, $good9]}
EOF
fresh
: >"$QLOG"
run -n
exit_is "counts of \"-1\" and \"abc\" do not fail the run" 0
has_line "\"-1\": counted from /instances, 0/3" "$OUT" "^download +TH-B1 $B1\\.1 +new series \\(0/3 instances\\)"
has_line "\"abc\": counted from /instances, 0/4" "$OUT" "^download +TH-B1 $B1\\.2 +new series \\(0/4 instances\\)"
has_line "TH-B1__seriesCount3.zip planned" "$OUT" '^zip +data/zip/TH-B1__seriesCount3\.zip'
ok "the fake was asked both series' /instances" \
	test "$(instances_asked "$B1.1")" -ge 1 -a "$(instances_asked "$B1.2")" -ge 1
has_line "TH-Z9 is planned" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'

section "(c) bad records: a 300-byte PatientID"
LONGPID=TH-C0$(printf 'X%.0s' $(seq 295))
C0=1.2.826.0.1.3680043.8.498.3000
[ "${#LONGPID}" -eq 300 ] || { say "FAIL: LONGPID is ${#LONGPID} bytes"; exit 1; }
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-C0", "studies": [{"StudyInstanceUID": "$C0", "PatientID": "$LONGPID", "series": [
   $(series "$C0.1" 2 2)]}]}, $good9]}
EOF
fresh
run -n
say "    (300-byte PatientID: exit $RC)"
has_line "the skipped study record is named in a warning" "$ERR" "$C0([^0-9.]|$)"
has_line "and it says why (its PatientID is too long)" "$ERR" "PatientID.*(300|long)"
no_line "nothing is planned under the 300-byte PatientID" "$OUT" 'XXXXXXXXXX'
has_line "TH-Z9 is still planned" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'

section "(c) bad records: a 65-character SeriesInstanceUID"
C2=1.2.826.0.1.3680043.8.498.3002
UID65=$C2.$(printf '9%.0s' $(seq $((64 - ${#C2}))))
[ "${#UID65}" -eq 65 ] || { say "FAIL: UID65 is ${#UID65} characters"; exit 1; }
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-C2", "studies": [{"StudyInstanceUID": "$C2", "series": [
   $(series "$C2.1" 2 2), $(series "$UID65" 2 2)]}]}, $good9]}
EOF
fresh
run -n
exit_is "-n: TH-C2's answer is incomplete" 2
both "stderr names the patient and the bad series record" "TH-C2" "$C2"
no_line "no archive of TH-C2 is planned" "$OUT" 'TH-C2__seriesCount'
has_line "TH-Z9 is still planned" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'
run query
exit_is "query: the same" 2
both "query: stderr names the patient" "TH-C2" "incomplete|$C2"
run --offline -n
no_line "--offline -n after that query plans no archive of TH-C2" "$OUT" 'TH-C2__seriesCount'
has_line "--offline -n plans TH-Z9" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'
run -t status
say "    (TH-C2 in -t status: $(grep -E '^TH-C2 ' "$OUT" | tr -s ' '))"
if grep -E '^TH-C2 ' "$OUT" | grep -Eiq 'incomplete'; then
	pass "-t status says TH-C2 is incomplete at the source"
else
	fail "-t status says TH-C2 is incomplete at the source"; show_run
fi
no_line "-t status never names TH-C2__seriesCount1.zip" "$OUT" 'TH-C2__seriesCount1'

section "(d) one StudyInstanceUID under two PatientIDs"
D=1.2.826.0.1.3680043.8.498.4000
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-D1", "studies": [{"StudyInstanceUID": "$D", "series": [$(series "$D.1" 2 2)]}]},
 {"PatientID": "TH-D2", "studies": [{"StudyInstanceUID": "$D", "series": [$(series "$D.2" 2 2)]}]},
 $good9]}
EOF
fresh
run -n
exit_is "-n: a study under two patients fails the run" 2
if grep -F "$D" "$ERR" | grep -F TH-D1 | grep -Fq TH-D2; then
	pass "a stderr line names the study and both patients"
else
	fail "a stderr line names the study and both patients"; show_run
fi
no_line "neither patient's archive is planned" "$OUT" 'TH-D[12]__seriesCount'
has_line "TH-Z9 is still planned" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'

section "(e) an /instances count that always fails (HTTP 500)"
E1=1.2.826.0.1.3680043.8.498.5001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-E1", "studies": [{"StudyInstanceUID": "$E1", "series": [
   $(series "$E1.1" 3 3), $(series "$E1.2" - 4 ', "fail": {"instances": 500}')]}]}, $good9]}
EOF
fresh
: >"$QLOG"
SECONDS=0
run -n
say "    (took $SECONDS s)"
exit_is "-n: the uncountable series fails the run" 2
both "stderr names the patient, the series and HTTP 500" "TH-E1.*$E1\\.2.*500" "incomplete"
no_line "TH-E1 is never planned one series short" "$OUT" 'TH-E1__seriesCount1\.zip'
no_line "no archive of TH-E1 is planned" "$OUT" 'TH-E1__seriesCount'
has_line "TH-Z9 is still planned" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'
ok "the count was retried ([pacs] retries = 1: asked twice)" test "$(instances_asked "$E1.2")" -eq 2
run query
exit_is "query: the same failure" 2
run --offline -n
no_line "--offline -n after that query plans no archive of TH-E1" "$OUT" 'TH-E1__seriesCount'
has_line "--offline -n plans TH-Z9" "$OUT" '^zip +data/zip/TH-Z9__seriesCount1\.zip'
run -t status
say "    (TH-E1 in -t status: $(grep -E '^TH-E1 ' "$OUT" | tr -s ' '))"
if grep -E '^TH-E1 ' "$OUT" | grep -Eiq 'incomplete'; then
	pass "-t status says TH-E1 is incomplete at the source"
else
	fail "-t status says TH-E1 is incomplete at the source"; show_run
fi
no_line "-t status never names TH-E1__seriesCount1.zip" "$OUT" 'TH-E1__seriesCount1'
# Failing once only: the retry gets the count.
sed -i 's/"fail": {"instances": 500}/"fail": {"instances": {"status": 500, "times": 1}}/' "$DB"
fresh
run -n
exit_is "failing once: the retry counts it" 0
has_line "planned 0/4" "$OUT" "^download +TH-E1 $E1\\.2 +new series \\(0/4 instances\\)"
has_line "and TH-E1__seriesCount2.zip" "$OUT" '^zip +data/zip/TH-E1__seriesCount2\.zip'

finish
