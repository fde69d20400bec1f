#!/usr/bin/env bash
# t-dcmqrscp: a second real PACS, DCMTK's dcmqrscp, stricter than Orthanc:
# with -XF/-XM it rejects C-FIND/C-MOVE identifiers that break the
# hierarchical key rules (0xA900), it returns no NumberOf*Related* counts
# (thlhp-make counts at IMAGE level), and past MaxAssociations it refuses an
# association.  A full run with retrieve = get and one with retrieve = move
# build complete archives; a new series gives __seriesCount<N+1> and leaves
# the other patients alone; with MaxAssociations = 1 and max_associations = 1
# every series is still cataloged and archived.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../dcmqrscp.sh
source "$TESTS/dcmqrscp.sh"

gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed q1
gen --patient TH-02-BB --studies 2 --series 1 --instances 2 --seed q2 --modality MR
gen --patient TH-03-CC --studies 1 --series 3 --instances 1 --seed q3
gen --patient OTHER-9 --studies 1 --series 1 --instances 2 --seed q9
qr_start -XF -XM
qr_upload "$SRC"

# full_run_ok WHAT : after `all`, every TH- patient has exactly the archive
# __seriesCount<all its series> holding exactly its instances, and nothing
# else is in data/zip.
full_run_ok() {
	local p a want=
	exit_is "$1: all" 0
	no_line "$1: dcmqrscp rejected no identifier (0xA900)" "$ERR" 'A900|[Ii]dentifier does not match'
	no_line "$1: the query did not say '0 series at the source'" "$OUT" '[^0-9]0 series at the source'
	no_line "$1: no series was reported with 0 instances" "$ERR" ' 0 series|holds no instance|no instances'
	for p in TH-01-AA TH-02-BB TH-03-CC; do
		a=$(archive_of "$p")
		want+="${a#data/zip/}"$'\n'
		check "$1: $a holds exactly the instances stored in dcmqrscp" "$(zip_list "$a")" "$(entries_of "$p")"
	done
	check "$1: data/zip holds one archive per TH- patient, each with all its series" \
		"$(zip_names)" "${want%$'\n'}"
	check "$1: every archive passes unzip -t" "$(all_zips_ok data/zip && echo ok)" ok
	check "$1: no temp files left under data/" "$(temp_files data)" ""
}

# inventory_series : "patient series expected downloaded" per row of the
# last run's output (-t inventory's CSV), sorted.
inventory_series() {
	"$PY" -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(r["PatientID"], r["SeriesInstanceUID"], r["expected"], r["downloaded"])' "$OUT" | sort
}

section "(a) retrieve = get, strict C-FIND keys (-XF)"
write_qr_config pacs.retrieve=get
run -j2 all
full_run_ok get
run -q
exit_is "get: -q right after: up to date" 0

section "(b) retrieve = move: dcmqrscp sends to our storage SCP (-XM)"
mkdir -p "$T/move" && cd "$T/move" || exit 1
write_qr_config pacs.retrieve=move
run -j2 all
full_run_ok move
run -q
exit_is "move: -q right after: up to date" 0
cd "$PROJ" || exit 1

section "(c) a new series for TH-01-AA arrives in dcmqrscp"
gen --outdir "$T/new" --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 \
	--instances 2 --seed q1new --series-number-base 3
qr_upload "$T/new"
id_bb=$(ident "$(archive_of TH-02-BB)")
id_cc=$(ident "$(archive_of TH-03-CC)")
dicom_others=$(file_state data/dicom/TH-02-BB; file_state data/dicom/TH-03-CC)
run -q
exit_is "-q sees the new series" 1
run -n
has_line "-n lists the download of the new series" "$OUT" \
	"^download +TH-01-AA $(series_of TH-01-AA | tail -n 1) +new series \\(0/2 instances\\)"
write_qr_config pacs.retrieve=get
run -j2 all
exit_is "all fetches it" 0
no_line "dcmqrscp rejected no identifier (0xA900)" "$ERR" 'A900|[Ii]dentifier does not match'
check "TH-01-AA__seriesCount3.zip replaces __seriesCount2.zip, the others stay" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount2.zip TH-03-CC__seriesCount3.zip)"
check "TH-01-AA__seriesCount3.zip holds all 8 instances of its 3 series" \
	"$(zip_list data/zip/TH-01-AA__seriesCount3.zip)" "$(entries_of TH-01-AA)"
check "TH-02-BB's archive was not rewritten" "$(ident "$(archive_of TH-02-BB)")" "$id_bb"
check "TH-03-CC's archive was not rewritten" "$(ident "$(archive_of TH-03-CC)")" "$id_cc"
check "the other patients' DICOM files were not fetched again" \
	"$(file_state data/dicom/TH-02-BB; file_state data/dicom/TH-03-CC)" "$dicom_others"
run -q
exit_is "-q after the rebuild: up to date" 0

section "(d) MaxAssociations = 1 at dcmqrscp, max_associations = 1 here"
# dcmqrscp refuses an association while another is open: a query that opened
# one per level would lose series (or their IMAGE-level counts).  It also
# counts a finished association until it reaps its process (about once a
# second), so one opened right after another closes may be refused too: a
# few retries ride that out.  With -ll info its log shows each
# association acknowledged, released and refused.
qr_stop
QR_MAXASSOC=1 qr_start -XF -XM -ll info
mkdir -p "$T/one" && cd "$T/one" || exit 1
want_series=$(awk -F'\t' '$1 == "series" && $2 ~ /^TH-/ { print $2, $4, $5, $5 }' "$MANIFEST" | sort)
# overlaps MARK : the refusals in dcmqrscp's log after line MARK that came
# while an association it had acknowledged was still open (not released or
# aborted): thlhp-make asked for a second association at once.
overlaps() {
	tail -n +"$(($1 + 1))" "$LOG/dcmqrscp.log" | awk '
		/Association Acknowledged/ { open++ }
		/Association Release|Association Aborted|aborting association/ { if (open > 0) open-- }
		/Refusing Association/ && open > 0 { print "refused while " open " open: " $0 }'
}
for RETRIEVE in get move; do
	rm -rf data .thlhp
	mark=$(wc -l <"$LOG/dcmqrscp.log")
	write_qr_config pacs.max_associations=1 pacs.retries=3
	run -j2 all
	full_run_ok "one association, $RETRIEVE"
	check "one association, $RETRIEVE: never a second association while one was open" "$(overlaps "$mark")" ""
	run -t inventory
	check "one association, $RETRIEVE: -t inventory lists every TH- series with its instance count, all downloaded" \
		"$(inventory_series)" "$want_series"
	run -q
	exit_is "one association, $RETRIEVE: -q right after: up to date" 0
done

finish
