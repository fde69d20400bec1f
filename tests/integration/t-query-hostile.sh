#!/usr/bin/env bash
# t-query-hostile: the DIMSE query against a PACS that answers badly
# (tests/fakepacs.py, a C-FIND SCP that says exactly what a JSON description
# says).  Only the query and the dry run are used (-n, query, -t status):
# no C-GET.  What a user must see:
#   (a) a series whose instances cannot be counted (no
#       NumberOfSeriesRelatedInstances, IMAGE-level C-FIND fails 0xC000) is
#       never silently dropped: exit 2 naming it, or, when a retry gets the
#       count, it is planned; never an archive one series short;
#   (b) with max_associations = 1 against a PACS that takes one association
#       at a time, every series is counted and planned;
#   (c) NumberOfSeriesRelatedInstances = 0 is not trusted when IMAGE level
#       lists instances; a series really empty is left out, with a warning;
#   (d) bad records (a 300-byte PatientID, a 65-character UID, a count of
#       -1) are named, do not fail the whole run, and never make an archive
#       of a patient whose series list is incomplete;
#   (e) one StudyInstanceUID under two PatientIDs is reported;
#   (f) SERIES- and IMAGE-level requests are hierarchical: above their
#       level only unique keys, nothing of a level below.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

DB=$T/db.json

# fake_start NAME [fakepacs.py options] : start a fake PACS serving $DB with
# log $LOG/NAME.log; sets PORT_NAME (the port it listens on).
fake_start() {
	local name=$1 pid i
	shift
	"$PY" "$TESTS/fakepacs.py" --db "$DB" --log "$LOG/$name.log" --ready "$T/$name.ready" "$@" \
		2>>"$LOG/$name.err" &
	pid=$!
	BGPIDS="$BGPIDS $pid"
	for ((i = 0; i < 100; i++)); do
		[ -s "$T/$name.ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$T/$name.ready" ] || { say "FAIL: fakepacs.py did not start:"; cat "$LOG/$name.err"; exit 1; }
	printf -v "PORT_$name" '%s' "$(cat "$T/$name.ready")"
}

# fresh PORT [KEY=VALUE]... : no state, no data, a thlhp.ini for that fake.
fresh() {
	local port=$1
	shift
	rm -rf .thlhp data
	write_config pacs.protocol=dimse pacs.path= pacs.host=127.0.0.1 "pacs.port=$port" \
		pacs.called_aet=FAKEPACS pacs.calling_aet=THLHP pacs.timeout=5 pacs.retries=1 "$@"
}

# finds LOGFILE LEVEL : the FIND lines of that level
finds() { grep -E "^[0-9.]+ [0-9]+ FIND [A-Z]+-ROOT $2( |\$)" "$1"; }

# both DESC ERE1 ERE2 : some line of stderr matches both.
both() {
	if grep -E -- "$2" "$ERR" | grep -Eq -- "$3"; then pass "$1"; else
		fail "$1"; say "    no stderr line matches both: $2 / $3"; show_run
	fi
}

fake_start F
fake_start F1 --max-assoc 1

# series UID COUNT INSTANCES [EXTRA JSON] : one series record (COUNT - : none)
series() {
	local c=
	[ "$2" = - ] || c="\"NumberOfSeriesRelatedInstances\": \"$2\", "
	printf '{"SeriesInstanceUID": "%s", "Modality": "CT", %s"instances": %s%s}' "$1" "$c" "$3" "${4:-}"
}

section "(a) a series whose instances cannot be counted"
A1=1.2.826.0.1.3680043.8.498.1001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-A1", "studies": [{"StudyInstanceUID": "$A1", "StudyDate": "20240101", "series": [
   $(series "$A1.1" 3 3),
   $(series "$A1.2" - 4 ', "fail": {"IMAGE": "0xC000"}')]}]},
 {"PatientID": "TH-A2", "studies": [{"StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1002",
   "series": [$(series 1.2.826.0.1.3680043.8.498.1002.1 2 2)]}]}]}
EOF
fresh "$PORT_F"
run -n
exit_is "-n: the uncountable series of TH-A1 fails the run" 2
both "stderr names the patient and the series" "TH-A1" "$A1\\.2"
no_line "TH-A1 is never planned one series short" "$OUT" 'TH-A1__seriesCount1\.zip'
has_line "TH-A2 is still planned" "$OUT" '^zip +data/zip/TH-A2__seriesCount1\.zip'
run query
exit_is "query: the same failure" 2
run -t status
if grep -E '^TH-A1 +1 ' "$OUT" | grep -Evq 'incomplete|fail'; then
	fail "-t status never shows TH-A1 as a patient of 1 series, unless failed or incomplete"; show_run
else
	pass "-t status never shows TH-A1 as a patient of 1 series, unless failed or incomplete"
fi
no_line "-t status never names TH-A1__seriesCount1.zip" "$OUT" 'TH-A1__seriesCount1'
say "    (TH-A1 in -t status: $(grep -E '^TH-A1 ' "$OUT" | tr -s ' '))"
run --offline -n
no_line "--offline -n after that query never plans TH-A1__seriesCount1.zip" "$OUT" 'TH-A1__seriesCount1\.zip'
# The count fails once only: a retry may get it.
sed -i 's/"fail": {"IMAGE": "0xC000"}/"fail": {"IMAGE": {"status": "0xC000", "times": 1}}/' "$DB"
fresh "$PORT_F"
run -n
if [ "$RC" -eq 0 ]; then
	has_line "failing once, then counted: planned 0/4" "$OUT" "^download +TH-A1 $A1\\.2 +new series \\(0/4 instances\\)"
	has_line "and TH-A1__seriesCount2.zip is planned" "$OUT" '^zip +data/zip/TH-A1__seriesCount2\.zip'
else
	exit_is "failing once: exit 2 (not retried)" 2
	both "stderr names the patient and the series" "TH-A1" "$A1\\.2"
fi
no_line "failing once: never TH-A1__seriesCount1" "$OUT" 'TH-A1__seriesCount1\.zip'
run -n
exit_is "the next run, the PACS answering again" 0
has_line "it plans the series 0/4" "$OUT" "^download +TH-A1 $A1\\.2 +new series \\(0/4 instances\\)"
has_line "and TH-A1__seriesCount2.zip" "$OUT" '^zip +data/zip/TH-A1__seriesCount2\.zip'

section "(b) one association at a time"
B1=1.2.826.0.1.3680043.8.498.2001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-B1", "studies": [{"StudyInstanceUID": "$B1", "series": [
   $(series "$B1.1" - 2), $(series "$B1.2" - 3)]}]},
 {"PatientID": "TH-B2", "studies": [{"StudyInstanceUID": "1.2.826.0.1.3680043.8.498.2002",
   "series": [$(series 1.2.826.0.1.3680043.8.498.2002.1 - 1)]}]}]}
EOF
fresh "$PORT_F1" pacs.max_associations=1
: >"$LOG/F1.log"
run -n
exit_is "-n against a PACS of one association, max_associations = 1" 0
has_line "TH-B1's first series: 0/2" "$OUT" "^download +TH-B1 $B1\\.1 +new series \\(0/2 instances\\)"
has_line "TH-B1's second series: 0/3" "$OUT" "^download +TH-B1 $B1\\.2 +new series \\(0/3 instances\\)"
has_line "TH-B1__seriesCount2.zip planned" "$OUT" '^zip +data/zip/TH-B1__seriesCount2\.zip'
has_line "TH-B2__seriesCount1.zip planned" "$OUT" '^zip +data/zip/TH-B2__seriesCount1\.zip'
count_is "each series counted at IMAGE level" <(finds "$LOG/F1.log" IMAGE) . 3
no_line "the PACS never had to reject an association" "$LOG/F1.log" ' REJECT '
count_is "the whole query walk used one association" "$LOG/F1.log" ' ASSOCIATE ' 1
run query
exit_is "query against it" 0
has_line "query: 3 series at the source" "$OUT" '[^0-9]3 series at the source'
no_line "query: never '0 series at the source'" "$OUT" '[^0-9]0 series at the source'

section "(c) NumberOfSeriesRelatedInstances = 0"
C1=1.2.826.0.1.3680043.8.498.3001
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-C1", "studies": [{"StudyInstanceUID": "$C1", "series": [
   $(series "$C1.1" 0 3), $(series "$C1.2" 0 0), $(series "$C1.3" - 0), $(series "$C1.4" 2 2)]}]}]}
EOF
fresh "$PORT_F"
run -n
has_line "a count of 0 with 3 instances listed: planned 0/3" "$OUT" "^download +TH-C1 $C1\\.1 +new series \\(0/3 instances\\)"
no_line "the really empty series are not planned" "$OUT" "$C1\\.[23]( |$)"
has_line "stderr warns of the empty series (count 0)" "$ERR" "$C1\\.2"
has_line "stderr warns of the empty series (no count)" "$ERR" "$C1\\.3"
has_line "the archive counts the 2 series with instances" "$OUT" '^zip +data/zip/TH-C1__seriesCount2\.zip'

section "(d) bad records"
LONGPID=TH-D0$(printf 'X%.0s' $(seq 295))
D0=1.2.826.0.1.3680043.8.498.4000
D2=1.2.826.0.1.3680043.8.498.4002
UID65=$D2.$(printf '9%.0s' $(seq $((64 - ${#D2}))))
D3=1.2.826.0.1.3680043.8.498.4003
OK9=1.2.826.0.1.3680043.8.498.4009
good9='{"PatientID": "TH-D9", "studies": [{"StudyInstanceUID": "'$OK9'", "series": ['$(series "$OK9.1" 2 2)']}]}'
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-D0", "studies": [{"StudyInstanceUID": "$D0", "PatientID": "$LONGPID", "series": [
   $(series "$D0.1" 2 2)]}]}, $good9]}
EOF
fresh "$PORT_F"
run -n
say "    (${#LONGPID}-byte PatientID: exit $RC)"
has_line "the study record with a 300-byte PatientID is named (its study or the patient asked)" \
	"$ERR" "$D0|TH-D0([^X]|$)"
has_line "TH-D9 is still planned" "$OUT" '^zip +data/zip/TH-D9__seriesCount1\.zip'
no_line "nothing is planned under the 300-byte PatientID" "$OUT" 'XXXXXXXXXX'
[ "${#UID65}" -eq 65 ] || { say "FAIL: UID65 is ${#UID65} characters"; exit 1; }
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-D2", "studies": [{"StudyInstanceUID": "$D2", "series": [
   $(series "$D2.1" 2 2), $(series "$UID65" 2 2)]}]}, $good9]}
EOF
fresh "$PORT_F"
run -n
exit_is "a 65-character SeriesInstanceUID: that patient's query failed" 2
both "stderr names the patient and the bad series record" "TH-D2" "$D2"
no_line "TH-D2 is not planned for zipping" "$OUT" 'TH-D2__seriesCount'
has_line "TH-D9 is still planned" "$OUT" '^zip +data/zip/TH-D9__seriesCount1\.zip'
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-D3", "studies": [{"StudyInstanceUID": "$D3", "series": [
   $(series "$D3.1" -1 3), $(series "$D3.2" 2 2)]}]}, $good9]}
EOF
fresh "$PORT_F"
: >"$LOG/F.log"
run -n
exit_is "a count of -1 does not fail the run" 0
has_line "it is counted at IMAGE level: 0/3" "$OUT" "^download +TH-D3 $D3\\.1 +new series \\(0/3 instances\\)"
has_line "TH-D3__seriesCount2.zip planned" "$OUT" '^zip +data/zip/TH-D3__seriesCount2\.zip'
has_line "the fake saw that IMAGE-level count" "$LOG/F.log" "FIND [A-Z]+-ROOT IMAGE .*SeriesInstanceUID=$D3\\.1( |$)"
has_line "TH-D9 is still planned" "$OUT" '^zip +data/zip/TH-D9__seriesCount1\.zip'

section "(e) one StudyInstanceUID under two PatientIDs"
E=1.2.826.0.1.3680043.8.498.5000
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-E1", "studies": [{"StudyInstanceUID": "$E", "series": [$(series "$E.1" 2 2)]}]},
 {"PatientID": "TH-E2", "studies": [{"StudyInstanceUID": "$E", "series": [$(series "$E.2" 2 2)]}]}]}
EOF
fresh "$PORT_F"
run -n
say "    (exit $RC)"
if grep -F "$E" "$ERR" | grep -F TH-E1 | grep -Fq TH-E2; then
	pass "a stderr line names the study and both patients"
else
	fail "a stderr line names the study and both patients"; show_run
fi
for s in 1 2; do
	if grep -Eq "TH-E$s $E\\.$s " "$OUT" || grep -Fq "TH-E$s" "$ERR"; then
		pass "TH-E$s is planned or named on stderr"
	else
		fail "TH-E$s is planned or named on stderr"
	fi
done

section "(f) hierarchical keys"
F=1.2.826.0.1.3680043.8.498.6000
cat >"$DB" <<EOF
{"patients": [
 {"PatientID": "TH-F1", "studies": [{"StudyInstanceUID": "$F", "StudyDate": "20240101", "series": [
   $(series "$F.1" - 2), $(series "$F.2" 2 2)]}]}]}
EOF
fresh "$PORT_F" select.study_date=20200101- select.modality=CT
: >"$LOG/F.log"
run -n
exit_is "-n with study_date and modality selected" 0
has_line "the series are found" "$OUT" '^zip +data/zip/TH-F1__seriesCount2\.zip'
ok "the fake logged SERIES- and IMAGE-level requests" \
	test "$(finds "$LOG/F.log" SERIES | wc -l)" -ge 1 -a "$(finds "$LOG/F.log" IMAGE | wc -l)" -ge 1
PAT_KEYS='PatientName|PatientBirthDate|PatientSex|NumberOfPatientRelated[A-Za-z]*'
STUDY_KEYS='StudyDate|StudyTime|AccessionNumber|StudyID|StudyDescription|ModalitiesInStudy|SOPClassesInStudy|NumberOfStudyRelated[A-Za-z]*'
SERIES_KEYS='Modality|SeriesNumber|SeriesDescription|NumberOfSeriesRelatedInstances'
IMAGE_KEYS='SOPInstanceUID|SOPClassUID|InstanceNumber'
finds "$LOG/F.log" STUDY >"$T/study.keys"
finds "$LOG/F.log" SERIES >"$T/series.keys"
finds "$LOG/F.log" IMAGE >"$T/image.keys"
finds "$LOG/F.log" PATIENT >"$T/patient.keys"
no_line "PATIENT level: no key of a lower level" "$T/patient.keys" \
	" (StudyInstanceUID|SeriesInstanceUID|$STUDY_KEYS|$SERIES_KEYS|$IMAGE_KEYS)="
no_line "STUDY level: no series or image key" "$T/study.keys" " (SeriesInstanceUID|$SERIES_KEYS|$IMAGE_KEYS)="
no_line "SERIES level: no StudyDate" "$T/series.keys" " StudyDate="
no_line "SERIES level: above it only unique keys, no image key" "$T/series.keys" \
	" ($PAT_KEYS|$STUDY_KEYS|$IMAGE_KEYS)="
no_line "IMAGE level: no StudyDate" "$T/image.keys" " StudyDate="
no_line "IMAGE level: above it only unique keys" "$T/image.keys" " ($PAT_KEYS|$STUDY_KEYS|$SERIES_KEYS)="
finish
