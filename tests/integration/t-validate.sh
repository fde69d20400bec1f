#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-validate: a damaged or misplaced file in dicom_dir fails validation with
# a message naming it, no archive is built from it, and the next run fetches
# the series again and succeeds.  -k keeps building the other patients.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run succeeds" 0
[ "$RC" -eq 0 ] || finish

A=$(archive_of TH-01-AA)

section "a truncated file"
IFS=$'\t' read -r st se sop src < <(instances_of TH-01-AA | sed -n 2p)
f=data/dicom/TH-01-AA/$st/$se/$sop.dcm
head -c "$(( $(stat -c %s "$src") / 2 ))" "$src" >"$LOG/truncated.dcm"
replace_file "$LOG/truncated.dcm" "$f"
sum_a=$(sha256sum "$A" | cut -d' ' -f1)
run all
exit_is "all with a truncated DICOM file in dicom_dir fails" 2
has_line "stderr names the truncated file (its SOP UID or path)" "$ERR" "$sop"
has_line "the error is on stderr with the 'thlhp-make: ' prefix" "$ERR" "^thlhp-make: .*$sop"
check "no new archive appears for TH-01-AA" "$(find data/zip -name 'TH-01-AA*' -printf '%f\n')" "$(basename "$A")"
check "TH-01-AA's existing archive is left as it was" "$(sha256sum "$A" | cut -d' ' -f1)" "$sum_a"
check "no temp files left under data/" "$(temp_files data)" ""
run -q
exit_is "-q after a failed validation says stale" 1
run all
exit_is "the next all fetches the series again and succeeds" 0
ok "the truncated file was replaced by the source's bytes" cmp -s "$src" "$f"
ok "$A passes unzip -t" zip_ok "$A"
ok "$A holds every instance with the source's bytes" zip_matches_source "$A" TH-01-AA
run -q
exit_is "-q after the repair" 0

section "a file whose SeriesInstanceUID does not match its folder"
IFS=$'\t' read -r st se sop src < <(instances_of TH-01-AA | tail -n 1)
f=data/dicom/TH-01-AA/$st/$se/$sop.dcm
other=$(series_of TH-01-AA | grep -vx "$se" | head -n 1)
cp "$src" "$LOG/misplaced.dcm"
"$PY" "$TESTS/gen_series.py" --patch "$LOG/misplaced.dcm" SeriesInstanceUID="$other"
replace_file "$LOG/misplaced.dcm" "$f"
sum_a=$(sha256sum "$A" | cut -d' ' -f1)
run all
exit_is "all with a file of series $other sitting in folder $se fails" 2
has_line "stderr names the misplaced file (its SOP UID or path)" "$ERR" "$sop"
has_line "stderr says what is wrong: the series does not match (a line with the file and 'series' or the wrong UID)" "$ERR" \
	"$sop.*([Ss]eries|SERIES|$other)|([Ss]eries|SERIES|$other).*$sop"
check "TH-01-AA's archive is left as it was" "$(sha256sum "$A" | cut -d' ' -f1)" "$sum_a"
run all
exit_is "the next all fetches the series again and succeeds" 0
ok "the misplaced file was replaced by the source's bytes" cmp -s "$src" "$f"
ok "$A holds every instance with the source's bytes" zip_matches_source "$A" TH-01-AA

section "a file of another patient"
IFS=$'\t' read -r st se sop src < <(instances_of TH-03-CC | head -n 1)
f=data/dicom/TH-03-CC/$st/$se/$sop.dcm
cp "$src" "$LOG/wrongpat.dcm"
"$PY" "$TESTS/gen_series.py" --patch "$LOG/wrongpat.dcm" PatientID=TH-02-BB
replace_file "$LOG/wrongpat.dcm" "$f"
run all
exit_is "all with a file whose PatientID does not match its folder fails" 2
has_line "stderr names that file (its SOP UID or path)" "$ERR" "$sop"
run all
exit_is "the next all repairs it" 0
ok "the file has the source's bytes again" cmp -s "$src" "$f"

section "-k: a failure for one patient does not stop another"
IFS=$'\t' read -r st se sop src < <(instances_of TH-01-AA | head -n 1)
f=data/dicom/TH-01-AA/$st/$se/$sop.dcm
head -c 1000 "$src" >"$LOG/short.dcm"
replace_file "$LOG/short.dcm" "$f"
gen --patient TH-02-BB --series 1 --instances 2 --seed b2
id_a=$(ident "$A")
run -k -j2 all
exit_is "all -k with one broken file still reports the failure" 2
has_line "stderr names the broken file" "$ERR" "$sop"
ok "-k still built TH-02-BB__seriesCount4.zip for the new series" test -f data/zip/TH-02-BB__seriesCount4.zip
ok "TH-02-BB__seriesCount4.zip passes unzip -t" zip_ok data/zip/TH-02-BB__seriesCount4.zip
check "TH-02-BB__seriesCount4.zip holds all its instances" "$(zip_list data/zip/TH-02-BB__seriesCount4.zip)" "$(entries_of TH-02-BB)"
check "TH-01-AA's archive is left as it was" "$(ident "$A")" "$id_a"
run all
exit_is "the next all repairs TH-01-AA" 0
ok "the broken file has the source's bytes again" cmp -s "$src" "$f"
run -q
exit_is "-q at the end" 0
check "no temp files left under data/" "$(temp_files data)" ""

finish
