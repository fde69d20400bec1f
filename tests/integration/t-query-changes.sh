#!/usr/bin/env bash
# t-query-changes: the query asks the PACS only about what changed (one
# STUDY-level request per glob, a study's series walked only when it is new
# or its NumberOfStudyRelatedSeries/Instances changed), and still finds
# every kind of change, against real servers: Orthanc over DIMSE and over
# DICOMweb (one Orthanc, two projects run side by side), and DCMTK's
# dcmqrscp, which gives no counts (every study walked).  Each change is made
# once in the PACS and looked for by both projects: a new series in a known
# study, a new study of a known patient, a new patient (one outside the
# glob is not asked for), series deleted, an instance added to a series.
# What the counts cannot see, a series replaced by another with the same
# counts, is documented: the cheap check misses it, -B query finds it.
# full_query_every = 0 walks every study on every run.  An Orthanc capping
# its answers (LimitFindResults) loses studies silently over QIDO without
# [pacs] max_results, and with it every series is found, over both
# protocols.  Request counts come from -v's "query: N requests" line.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"
# shellcheck source-path=SCRIPTDIR source=../dcmqrscp.sh
source "$TESTS/dcmqrscp.sh"

PROTOS="dimse dicomweb"

# config PROTO [KEY=VALUE]... : thlhp.ini in the cwd for this Orthanc over PROTO.
config() {
	local p=$1
	shift
	if [ "$p" = dimse ]; then
		write_dimse_config "$@"
	else
		write_config pacs.protocol=dicomweb pacs.path= \
			"pacs.url=http://127.0.0.1:$OR_HTTP/dicom-web/" pacs.timeout=10 pacs.retries=1 "$@"
	fi
}
# proj PROTO : cd into that protocol's project.
proj() { mkdir -p "$T/$1" && cd "$T/$1" || exit 1; }

# qline : the last run's -v line about the query's requests.
qline() { grep -E '^thlhp-make: query: [0-9]+ requests? ' "$ERR"; }
# nreq : how many requests that line counts.
nreq() { qline | sed -E 's/^thlhp-make: query: ([0-9]+) .*/\1/'; }
# qline_is DESC ERE : the query line matches ERE (after "query: "), and is
# said for the report.
qline_is() {
	local l
	l=$(qline)
	say "    $l"
	if printf '%s\n' "$l" | grep -Eq -- "^thlhp-make: query: $2\$"; then pass "$1"; else
		fail "$1"; say "    want: thlhp-make: query: $2"; show_run
	fi
}
T_=' [0-9]+\.[0-9] s'   # the line's time

# oid SERIES-UID : Orthanc's ID of the series.
oid() {
	or_curl /tools/lookup -X POST -d "$1" |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["ID"])'
}
# or_delete SERIES-UID : delete the series from Orthanc.
or_delete() {
	or_curl "/series/$(oid "$1")" -X DELETE >/dev/null || { say "FAIL: deleting $1 from Orthanc"; exit 1; }
}
NEW=0
# gen_new ARGS... : gen into a new folder, upload it to Orthanc.
gen_new() {
	NEW=$((NEW + 1))
	gen --outdir "$T/new$NEW" "$@"
	orthanc_upload "$T/new$NEW"
}

# ---- the PACS --------------------------------------------------------------
#   TH-01-AA  1 study  x 2 series x 2 instances
#   TH-02-BB  2 studies x 1 series x 2 instances (MR)
#   TH-03-CC  1 study  x 1 series x 3 instances
#   OTHER-1   not selected (patient_id = TH-*)
gen --patient TH-01-AA --studies 1 --series 2 --instances 2 --seed c1
gen --patient TH-02-BB --studies 2 --series 1 --instances 2 --seed c2 --modality MR
gen --patient TH-03-CC --studies 1 --series 1 --instances 3 --seed c3
gen --patient OTHER-1 --studies 1 --series 1 --instances 2 --seed co
OR_PLUGINS='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
OR_EXTRA='"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }'
orthanc_start
orthanc_upload "$SRC"
for p in $PROTOS; do proj "$p"; config "$p"; done

section "1. the first run: a full walk, everything built"
for p in $PROTOS; do
	proj "$p"
	run -v all
	exit_is "$p: the first all" 0
	qline_is "$p: its query is a full walk, as none is recorded yet" \
		"[0-9]+ requests \(.*\),$T_; 0 studies unchanged, 4 walked \(a full walk: no full walk recorded yet\)"
	for pt in TH-01-AA TH-02-BB TH-03-CC; do
		check "$p: $(archive_of "$pt") holds exactly its instances in the PACS" \
			"$(zip_list "$(archive_of "$pt")")" "$(entries_of "$pt")"
	done
	check "$p: OTHER-1 (not selected) has nothing on disk" "$(find data -name 'OTHER*' | wc -l)" 0
done

# nothing_changed WHAT N : -q says up to date, and -v -n (which writes
# nothing) asked one STUDY-level request and took the N studies as they
# were; sets BASE (its request count).
nothing_changed() {
	run -q
	exit_is "$p: $1: -q says up to date" 0
	run -v -n
	exit_is "$p: $1: -v -n" 0
	qline_is "$p: $1: one request, one study-level, every study unchanged" \
		"1 request \(1 study-level\),$T_; $2 studies unchanged, 0 walked"
	BASE=$(nreq)
}

section "2. nothing changed: one request"
for p in $PROTOS; do proj "$p"; nothing_changed "nothing changed" 4; done

# found WHAT ERE : -q says stale, -n lists a download matching ERE.
found() {
	run -q
	exit_is "$p: $1: -q sees it" 1
	run -n
	has_line "$p: $1: -n lists its download" "$OUT" "$2"
}
# cheap WHAT WALKED UNCHANGED : the last run's query was no full walk, made
# at most 3 requests more than nothing changed did, walked WALKED studies.
cheap() {
	qline_is "$p: $1: the query walked $2 stud$([ "$2" = 1 ] && echo y || echo ies), no full walk" \
		"[0-9]+ requests? \(.*\),$T_; $3 studies unchanged, $2 walked"
	ok "$p: $1: at most 3 requests more than when nothing changed ($(nreq) vs $BASE)" \
		test "$(nreq)" -le $((BASE + 3))
}

section "3. a new series in a known study"
gen_new --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 2 --seed c1new \
	--series-number-base 3
s3=$(series_of TH-01-AA | tail -n 1)
for p in $PROTOS; do
	proj "$p"
	found "new series" "^download +TH-01-AA $s3 +new series \(0/2 instances\)$"
	bb=$(ident "$(archive_of TH-02-BB)")
	run -v all
	exit_is "$p: new series: all" 0
	cheap "new series" 1 3
	check "$p: TH-01-AA__seriesCount3.zip replaces __seriesCount2.zip" "$(zip_names)" \
		"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount2.zip TH-03-CC__seriesCount1.zip)"
	check "$p: TH-01-AA__seriesCount3.zip holds the 3 series' 6 instances" \
		"$(zip_list data/zip/TH-01-AA__seriesCount3.zip)" "$(entries_of TH-01-AA)"
	check "$p: TH-02-BB's archive was not rewritten" "$(ident "$(archive_of TH-02-BB)")" "$bb"
	nothing_changed "after it" 4
done

section "4. a new study of a known patient"
gen_new --patient TH-03-CC --studies 1 --series 1 --instances 2 --seed c3new --study-date 20240601
s4=$(series_of TH-03-CC | tail -n 1)
for p in $PROTOS; do
	proj "$p"
	found "new study" "^download +TH-03-CC $s4 +new series \(0/2 instances\)$"
	run -v all
	exit_is "$p: new study: all" 0
	cheap "new study" 1 4
	check "$p: TH-03-CC__seriesCount2.zip holds both studies" \
		"$(zip_list data/zip/TH-03-CC__seriesCount2.zip)" "$(entries_of TH-03-CC)"
done

section "5. a new patient (and one outside the glob)"
gen_new --patient TH-04-DD --studies 1 --series 1 --instances 2 --seed c4
gen_new --patient OTHER-2 --studies 1 --series 1 --instances 2 --seed co2
for p in $PROTOS; do
	proj "$p"
	found "new patient" "^download +TH-04-DD $(series_of TH-04-DD) +new series \(0/2 instances\)$"
	no_line "$p: new patient: nothing of OTHER-2" "$OUT" 'OTHER'
	run -v all
	exit_is "$p: new patient: all" 0
	cheap "new patient" 1 5
	check "$p: TH-04-DD__seriesCount1.zip holds its instances" \
		"$(zip_list data/zip/TH-04-DD__seriesCount1.zip)" "$(entries_of TH-04-DD)"
	check "$p: OTHER-1 and OTHER-2 have nothing on disk" "$(find data -name 'OTHER*' | wc -l)" 0
	nothing_changed "after it" 6
done

section "6. series deleted at the PACS: one of a study that stays, one whose study goes with it"
gone1=$(series_of TH-01-AA | sed -n 2p)    # TH-01-AA's study keeps 2 series
gone2=$(series_of TH-02-BB | sed -n 2p)    # TH-02-BB's second study is left empty
or_delete "$gone1"
or_delete "$gone2"
for p in $PROTOS; do
	proj "$p"
	a1=$(ident data/zip/TH-01-AA__seriesCount3.zip)
	a2=$(ident data/zip/TH-02-BB__seriesCount2.zip)
	run -v all
	exit_is "$p: deleted series: all" 0
	has_line "$p: stderr says $gone1 is no longer at the source" "$ERR" \
		"series $gone1 of patient TH-01-AA is no longer at the source; what was downloaded is kept"
	has_line "$p: stderr says $gone2 is no longer at the source" "$ERR" \
		"series $gone2 of patient TH-02-BB is no longer at the source; what was downloaded is kept"
	cheap "deleted series" 1 4
	check "$p: the archives holding them are kept as they were" \
		"$(ident data/zip/TH-01-AA__seriesCount3.zip; ident data/zip/TH-02-BB__seriesCount2.zip)" \
		"$(printf '%s\n' "$a1" "$a2")"
	nothing_changed "after it" 5
done

section "7. an instance added to a known series"
IFS=$'\t' read -r st7 se7 _ src7 < <(instances_of TH-03-CC | head -n 1)
sop7=$se7.99
mkdir -p "$T/inst"
cp "$src7" "$T/inst/extra.dcm"
"$PY" "$TESTS/gen_series.py" --patch "$T/inst/extra.dcm" "SOPInstanceUID=$sop7" InstanceNumber=4
printf 'instance\tTH-03-CC\t%s\t%s\t%s\t%s\n' "$st7" "$se7" "$sop7" "$T/inst/extra.dcm" >>"$MANIFEST"
orthanc_upload "$T/inst"
for p in $PROTOS; do
	proj "$p"
	found "added instance" "^download +TH-03-CC $se7 +instances missing \(3/4 instances\)$"
	run -v all
	exit_is "$p: added instance: all" 0
	cheap "added instance" 1 4
	check "$p: TH-03-CC__seriesCount2.zip holds the new instance" \
		"$(zip_list data/zip/TH-03-CC__seriesCount2.zip)" "$(entries_of TH-03-CC)"
done

section "8. full_query_every = 0, and -B query"
for p in $PROTOS; do
	proj "$p"
	config "$p" pacs.full_query_every=0
	for i in 1 2; do
		run -v query
		exit_is "$p: full_query_every = 0: query $i" 0
		qline_is "$p: full_query_every = 0: query $i walks every study" \
			"[0-9]+ requests \(.*\),$T_; 0 studies unchanged, 5 walked \(a full walk: full_query_every = 0\)"
	done
	config "$p"
	run -v query
	qline_is "$p: back to the default (1d): one request" \
		"1 request \(1 study-level\),$T_; 5 studies unchanged, 0 walked"
	run -v -B query
	exit_is "$p: -B query" 0
	qline_is "$p: -B query walks every study" \
		"[0-9]+ requests \(.*\),$T_; 0 studies unchanged, 5 walked \(a full walk: -B query\)"
	nothing_changed "the run after -B query" 5
done

section "9. the limit: a series replaced by one with the same counts"
# TH-01-AA's study holds 2 series of 2 instances; one of them is replaced
# by another series of 2 instances: the study's counts are the same.
old9=$(series_of TH-01-AA | head -n 1)
or_delete "$old9"
gen_new --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 2 --seed c1swap \
	--series-number-base 9
new9=$(series_of TH-01-AA | tail -n 1)
for p in $PROTOS; do
	proj "$p"
	run -q
	exit_is "$p: same counts: -q does not see it (the cheap check's limit)" 0
	run -v query
	qline_is "$p: same counts: one request, every study unchanged" \
		"1 request \(1 study-level\),$T_; 5 studies unchanged, 0 walked"
	run -v -B query
	exit_is "$p: same counts: -B query" 0
	qline_is "$p: same counts: -B query walks every study" \
		"[0-9]+ requests \(.*\),$T_; 0 studies unchanged, 5 walked \(a full walk: -B query\)"
	has_line "$p: -B query says the replaced series is no longer at the source" "$ERR" \
		"series $old9 of patient TH-01-AA is no longer at the source"
	run -n
	has_line "$p: after -B query, -n lists the new series' download" "$OUT" \
		"^download +TH-01-AA $new9 +new series \(0/2 instances\)$"
	run all
	exit_is "$p: all fetches it" 0
	# The series the PACS no longer has stay in the archive they were in.
	check "$p: TH-01-AA__seriesCount4.zip holds the new series, and the 2 the PACS deleted" \
		"$(zip_list data/zip/TH-01-AA__seriesCount4.zip)" "$(entries_of TH-01-AA)"
	ok "$p: TH-01-AA__seriesCount3.zip is removed" test ! -e data/zip/TH-01-AA__seriesCount3.zip
	run -q
	exit_is "$p: -q after: up to date" 0
done

section "9b. a patients_file: one request for all its IDs"
for p in $PROTOS; do
	proj "$p"
	printf '%s\n' TH-01-AA TH-02-BB TH-09-NOTHERE >ids.txt
	config "$p" select.patient_id= select.patients_file=ids.txt
	run -v -n
	exit_is "$p: patients_file: -v -n" 0
	qline_is "$p: patients_file: one STUDY-level request (TH-0*) for the 3 IDs, not one each" \
		"1 request \(1 study-level\),$T_; [0-9]+ studies unchanged, 0 walked"
	no_line "$p: patients_file: nothing of TH-04-DD (not in the file) is planned" "$OUT" 'TH-04-DD'
	config "$p"
done

section "10. dcmqrscp: no counts, every study walked"
# Its own patients (TH-1*), its own project.
qr_start -XF
gen --outdir "$T/qrsrc" --patient TH-11-QA --studies 1 --series 2 --instances 2 --seed q1
gen --outdir "$T/qrsrc" --patient TH-12-QB --studies 2 --series 1 --instances 1 --seed q2
gen --outdir "$T/qrsrc" --patient OTHER-Q --studies 1 --series 1 --instances 1 --seed qo
qr_upload "$T/qrsrc"
p=dcmqrscp
proj qr
write_qr_config select.patient_id='TH-1*'
NOCOUNTS='the PACS listed 3 studies without NumberOfStudyRelatedSeries and NumberOfStudyRelatedInstances: their series are asked for on every run'
run -v all
exit_is "dcmqrscp: the first all" 0
has_line "dcmqrscp: -v says the PACS gives no counts" "$ERR" "^thlhp-make: query: $NOCOUNTS\$"
qline_is "dcmqrscp: a full walk of the 3 studies" \
	"[0-9]+ requests \(.*\),$T_; 0 studies unchanged, 3 walked \(a full walk: no full walk recorded yet\)"
run -v query
has_line "dcmqrscp: nothing changed: -v says it again" "$ERR" "^thlhp-make: query: $NOCOUNTS\$"
qline_is "dcmqrscp: nothing changed: every study walked (no full walk: no count to compare)" \
	"[0-9]+ requests \(1 study-level, 3 series-level, 4 image-level\),$T_; 0 studies unchanged, 3 walked"
gen --outdir "$T/qrnew" --patient TH-11-QA --study-uid "$(study_of TH-11-QA)" --series 1 --instances 2 \
	--seed q1new --series-number-base 3
qr_upload "$T/qrnew"
found "new series" "^download +TH-11-QA $(series_of TH-11-QA | tail -n 1) +new series \(0/2 instances\)$"
run -v all
exit_is "dcmqrscp: new series: all" 0
qline_is "dcmqrscp: new series: every study walked again, the new series counted too" \
	"9 requests \(1 study-level, 3 series-level, 5 image-level\),$T_; 0 studies unchanged, 3 walked"
check "dcmqrscp: TH-11-QA__seriesCount3.zip replaces __seriesCount2.zip" "$(zip_names)" \
	"$(printf '%s\n' TH-11-QA__seriesCount3.zip TH-12-QB__seriesCount2.zip)"
check "dcmqrscp: it holds the 3 series' 6 instances" \
	"$(zip_list data/zip/TH-11-QA__seriesCount3.zip)" "$(entries_of TH-11-QA)"
qr_stop

section "11. a PACS that caps its answers: LimitFindResults = 2, and [pacs] max_results"
orthanc_stop
# TH-50-LL: 5 studies on 5 days, one series each.
for d in 1 2 3 4 5; do
	gen --outdir "$T/capsrc" --patient TH-50-LL --studies 1 --series 1 --instances 1 --seed "l$d" \
		--study-date "2024010$d"
done
OR_DIR=$T/orthanc-cap OR_DICOM='' OR_HTTP=''
OR_EXTRA='"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }, "LimitFindResults": 2'
orthanc_start
orthanc_upload "$T/capsrc"
CAPNOTE="PatientID TH-5\\*: the PACS's answer held [0-9]+ matches, at least \\[pacs\\] max_results \\(2\\)"

# Orthanc 1.10.1 answers a QIDO-RS query past LimitFindResults with
# LimitFindResults + 1 matches and no sign of the cap: studies are lost.
p=dicomweb
proj cap-dicomweb
config "$p" select.patient_id='TH-5*'
run -n
exit_is "dicomweb, no max_results: -n" 0
count_is "dicomweb, no max_results: the capped answer loses studies: 3 downloads of 5 (the PACS's fault)" \
	"$OUT" '^download +TH-50-LL ' 3
# Over DIMSE it ends the answer with status 0xFE00 (Cancel): the patient's
# answer is known to be incomplete, and its archive is not built.
p=dimse
proj cap-dimse
config "$p" select.patient_id='TH-5*'
run all
exit_is "dimse, no max_results: the capped C-FIND answer fails the run" 2
has_line "dimse, no max_results: stderr gives the PACS's status and says to set max_results" "$ERR" \
	"patient TH-50-LL: the PACS's answer about it is incomplete: .*status 0xFE00 .*set \\[pacs\\] max_results"
check "dimse, no max_results: no archive is built from an answer known to be incomplete" "$(zip_names)" ""
for p in $PROTOS; do
	proj "cap-$p"
	rm -rf data .thlhp
	config "$p" select.patient_id='TH-5*' pacs.max_results=2
	for i in 1 2; do
		run -v all
		exit_is "$p, max_results = 2: all ($i)" 0
		has_line "$p, max_results = 2: the note says the answer was capped and asked again by StudyDate ranges ($i)" \
			"$ERR" "$CAPNOTE: asked again by StudyDate ranges"
		say "    $(qline)"
		check "$p, max_results = 2: TH-50-LL__seriesCount5.zip holds all 5 series ($i)" \
			"$(zip_list data/zip/TH-50-LL__seriesCount5.zip)" "$(entries_of TH-50-LL)"
	done
done

finish
