#!/usr/bin/env bash
# t-dimse: a real PACS (Orthanc) over DICOM: C-FIND builds the catalog,
# C-GET (or C-MOVE with RETRIEVE=move, see t-dimse-move.sh) fetches the series, archives match what was stored in the PACS; a
# new series in the PACS gives __seriesCount<N+1>; a partly downloaded series
# fetches only its missing instances; a wrong AE title or a stopped PACS is
# exit 2 with a clear message.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

gen --patient TH-01-AA --studies 1 --series 2 --instances 4 --seed d1
gen --patient TH-02-BB --studies 2 --series 1 --instances 3 --seed d2 --modality MR
gen --patient OTHER-9 --studies 1 --series 1 --instances 2 --seed d9
orthanc_start
orthanc_upload "$SRC"
write_dimse_config

section "first run against the PACS"
run -n
exit_is "-n against the PACS" 0
count_is "-n lists a download for each of TH-01-AA's 2 and TH-02-BB's 2 series" "$OUT" \
	'^download +TH-0[12]-.. [0-9.]+ +new series \(0/[34] instances\)$' 4
run -j2 all
exit_is "all against the PACS" 0
# Orthanc re-encodes what it sends (explicit sequence lengths, no trailing
# padding), so compare entries, not bytes.
for p in TH-01-AA TH-02-BB; do
	a=$(archive_of "$p")
	check "$a holds exactly the instances stored in the PACS" "$(zip_list "$a")" "$(entries_of "$p")"
	ok "$a passes unzip -t" zip_ok "$a"
done
check "OTHER-9 (not selected) has no archive" "$(find data -name 'OTHER*' | wc -l)" 0
check "no temp files left under data/" "$(temp_files data)" ""
run -q
exit_is "-q right after: up to date" 0

section "a new series arrives in the PACS"
st=$(study_of TH-01-AA)
gen --outdir "$T/new" --patient TH-01-AA --studies 1 --series 1 --instances 2 --seed d1new --study-uid "$st"
orthanc_upload "$T/new"
run -q
exit_is "-q sees the new series" 1
other=$(ident "$(archive_of TH-02-BB)")
run all
exit_is "all fetches it" 0
check "only that patient is rebuilt: TH-02-BB's archive is left alone" \
	"$(ident "$(archive_of TH-02-BB)")" "$other"
ok "TH-01-AA__seriesCount3.zip is built" test -f "data/zip/TH-01-AA__seriesCount3.zip"
ok "TH-01-AA__seriesCount2.zip is removed" test ! -e "data/zip/TH-01-AA__seriesCount2.zip"

section "resume: only the missing instances are fetched"
IFS=$'\t' read -r st se sop _ < <(instances_of TH-02-BB | head -n 1)
rm "data/dicom/TH-02-BB/$st/$se/$sop.dcm"
run -n
has_line "-n: instances missing (2/3)" "$OUT" "^download +TH-02-BB $se +instances missing \(2/3 instances\)"
run -v all
exit_is "all restores it" 0
has_line "the download fetched 1 instance, not the whole series" "$OUT" "download +TH-02-BB (#[0-9]+ )?$se .*[^0-9]1 instance,"
check "TH-02-BB's archive is still complete" "$(zip_list "$(archive_of TH-02-BB)")" "$(entries_of TH-02-BB)"

section "a series of 13 SOP classes: more than one C-GET association can offer"
# 13 classes x 11 transfer syntaxes = 143 presentation contexts, past the
# 128 one association may carry: a C-GET must be split by class.
gen --outdir "$T/many" --patient TH-04-DD --studies 1 --series 1 --instances 13 --seed d4
classes="1.2.840.10008.5.1.4.1.1.2 1.2.840.10008.5.1.4.1.1.4 1.2.840.10008.5.1.4.1.1.7
	1.2.840.10008.5.1.4.1.1.1 1.2.840.10008.5.1.4.1.1.1.1 1.2.840.10008.5.1.4.1.1.6.1
	1.2.840.10008.5.1.4.1.1.20 1.2.840.10008.5.1.4.1.1.128 1.2.840.10008.5.1.4.1.1.12.1
	1.2.840.10008.5.1.4.1.1.12.2 1.2.840.10008.5.1.4.1.1.481.1 1.2.840.10008.5.1.4.1.1.77.1.4
	1.2.840.10008.5.1.4.1.1.1.2"
set -- $classes
while IFS=$'\t' read -r _ _ _ src; do
	"$PY" "$TESTS/gen_series.py" --patch "$src" "SOPClassUID=$1"
	shift
done < <(instances_of TH-04-DD)
orthanc_upload "$T/many"
run -j2 all
exit_is "all fetches a series of 13 SOP classes" 0
check "TH-04-DD's archive holds all 13 instances" "$(zip_list "$(archive_of TH-04-DD)")" \
	"$(entries_of TH-04-DD)"

section "two runs on one SQLite state: the second stops at once, -n still looks"
# 6 requests a minute and a full walk (-B query: every study's series):
# the first run is still querying when the second starts.
write_dimse_config pacs.max_requests_per_minute=6
run_bg -B query
# Until it holds the state (its lock file names it): a second under
# valgrind may not be enough.
for _ in $(seq 1 300); do
	grep -q "^pid $BGPID on host " .thlhp/state.db.lock 2>/dev/null && break
	sleep 0.1
done
write_dimse_config
run all
exit_is "a second run while the first holds the state" 2
has_line "stderr says who holds it" "$ERR" "state in use by pid $BGPID on host $(hostname)"
run -n
ok "-n works meanwhile (exit $RC)" test "$RC" -le 1
kill_bg
run all
exit_is "after the first was killed (-9), the next run goes on" 0
check "no archive lost or damaged" "$(all_zips_ok data/zip && echo ok)" ok

section "wrong called AE title"
write_dimse_config pacs.called_aet=NOBODY
run -n
exit_is "a PACS that rejects the AE title is exit 2" 2
has_line "stderr names the PACS and says what failed" "$ERR" "^thlhp-make: .*(127.0.0.1|NOBODY)"
has_line "stderr names the keys to check" "$ERR" "rejected the association .*check \[pacs\] called_aet"
no_line "a rejection is not retried (5 retries were 23 s of silence)" "$ERR" "retrying"

section "wrong calling AE title: Orthanc aborts at the first request"
write_dimse_config pacs.calling_aet=STRANGER pacs.retries=1
run all
exit_is "a PACS that does not know our AE title is exit 2" 2
has_line "stderr says which key to check" "$ERR" "calling AE title: is \[pacs\] calling_aet known to it"
has_line "each retry is said as it happens" "$ERR" "retrying in [0-9]+ s \(1/1\): "

section "the PACS is down"
write_dimse_config
orthanc_stop
run -q
exit_is "-q with the PACS unreachable is exit 2" 2
run all
exit_is "all with the PACS unreachable is exit 2" 2
has_line "stderr says the source could not be read" "$ERR" "^thlhp-make: .*127.0.0.1:$OR_DICOM"
run --offline -q
exit_is "--offline -q works from the stored catalog" 0

section "the link drops and comes back within the retries"
gen --outdir "$T/late" --patient TH-03-CC --studies 1 --series 1 --instances 2 --seed d3
orthanc_start
orthanc_upload "$T/late"
orthanc_stop
write_dimse_config pacs.retries=4
run_bg all
sleep 2
orthanc_start
wait "$BGPID"
RC=$?
LASTCMD="thlhp-make all (PACS down at the start, back after ~2 s)"
exit_is "a run that starts while the PACS is down rides it out with its retries" 0
check "TH-03-CC's archive holds its instances" "$(zip_list "$(archive_of TH-03-CC)")" "$(entries_of TH-03-CC)"
finish
