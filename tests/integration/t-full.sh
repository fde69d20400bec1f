#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-full: `thlhp-make all` from scratch on a folder source with three selected
# patients, one patient outside [select] and two files that are not DICOM.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config

section "full run from scratch"
src_before=$(tree_state "$SRC")
run -j2 all
exit_is "thlhp-make -j2 all builds everything from scratch" 0

check "data/zip holds exactly one archive per selected patient, named <PatientID>__seriesCount<N>.zip" \
	"$(zip_names)" "$(printf '%s\n' TH-01-AA__seriesCount2.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"

for p in TH-01-AA TH-02-BB TH-03-CC; do
	z=$(archive_of "$p")
	ok "$z passes unzip -t" zip_ok "$z"
	check "$z holds exactly <StudyUID>/<SeriesUID>/<SOPUID>.dcm for each of $p's instances" \
		"$(zip_list "$z")" "$(entries_of "$p")"
	ok "every entry of $z is byte-identical to the source file of that SOP" zip_matches_source "$z" "$p"
	ok "data/dicom/$p holds <Study>/<Series>/<SOP>.dcm for every instance, same bytes as the source" \
		dicom_matches_source "$p"
done

check "the patient outside [select] (OTHER-1) gets no archive" "$(find data/zip -name 'OTHER*')" ""
check "the patient outside [select] (OTHER-1) gets no dicom folder" "$(find data/dicom -name 'OTHER*')" ""
check "data/dicom holds one folder per selected patient and nothing else" \
	"$(find data/dicom -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)" \
	"$(printf '%s\n' TH-01-AA TH-02-BB TH-03-CC)"

count_is "stderr has exactly one warning naming the non-DICOM notes.txt" "$ERR" 'notes\.txt' 1
count_is "stderr has exactly one warning naming the non-DICOM junk.dcm" "$ERR" 'junk\.dcm' 1
has_line "warnings on stderr are prefixed 'thlhp-make: '" "$ERR" '^thlhp-make: .*notes\.txt'
for p in TH-01-AA TH-02-BB TH-03-CC; do
	has_line "stdout (not a terminal) reports the finished jobs for $p" "$OUT" "$p"
done
check "no temp files (.thlhp-* or *.tmp*) are left under data/" "$(temp_files data)" ""
check "the source folder is left exactly as it was (no file changed, added or removed)" \
	"$(tree_state "$SRC")" "$src_before"

section "-q right after the full run"
run -q
exit_is "thlhp-make -q says everything is up to date" 0

finish
