#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-new-series: one new series for one patient -> -q says stale, -n lists it
# and writes nothing, `all` builds __seriesCount<N+1>.zip, removes the N one
# and leaves every other archive alone; with keep_old = yes the old one stays.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run succeeds" 0
[ "$RC" -eq 0 ] || finish

id_bb=$(ident "$(archive_of TH-02-BB)")
id_cc=$(ident "$(archive_of TH-03-CC)")
dicom_aa_before=$(file_state data/dicom/TH-01-AA)
dicom_others_before=$(file_state data/dicom/TH-02-BB; file_state data/dicom/TH-03-CC)

section "a new series for TH-01-AA in its existing study"
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 3 --seed a2 --series-number-base 3
new=$(series_of TH-01-AA | tail -n 1)
say "  new series $new"

tree_before=$(tree_state data)
state_before=$(state_sum)

run -q
exit_is "thlhp-make -q sees the new series as stale" 1
is_empty "thlhp-make -q prints nothing" "$OUT"

run -n
exit_is "thlhp-make -n with a new series" 0
has_line "-n prints 'download  TH-01-AA <new series>  new series (0/3 instances)'" "$OUT" \
	"^download[[:space:]]+TH-01-AA ${new}[[:space:]]+new series \\(0/3 instances\\)"
has_line "-n prints a zip line naming the new archive __seriesCount3.zip" "$OUT" '^zip[[:space:]].*__seriesCount3\.zip'
has_line "-n's zip line reads 'zip  data/zip/TH-01-AA__seriesCount3.zip  series added <uid>; replaces TH-01-AA__seriesCount2.zip'" \
	"$OUT" "^zip[[:space:]]+data/zip/TH-01-AA__seriesCount3\\.zip[[:space:]]+series added $new; replaces TH-01-AA__seriesCount2\\.zip[[:space:]]*\$"
no_line "-n lists nothing for the patients that did not change" "$OUT" 'TH-02-BB|TH-03-CC'
no_line "-n lists no series of TH-01-AA other than the new one" "$OUT" \
	"$(series_of TH-01-AA | head -n 2 | paste -sd'|')"
check "-n writes nothing under data/ (no new DICOM file, no archive, no folder touched)" "$(tree_state data)" "$tree_before"
check "-n leaves the state database as it was (sha256 of .thlhp/state.db)" "$(state_sum)" "$state_before"
run -q
exit_is "after -n, thlhp-make -q still sees the new series as stale (-n recorded nothing)" 1

section "all builds __seriesCount3"
run -j2 all
exit_is "thlhp-make all with a new series" 0
check "data/zip now holds TH-01-AA__seriesCount3.zip instead of __seriesCount2.zip, others as before" \
	"$(zip_names)" "$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
z3=data/zip/TH-01-AA__seriesCount3.zip
ok "$z3 passes unzip -t" zip_ok "$z3"
check "$z3 holds all 9 instances of TH-01-AA's 3 series" "$(zip_list "$z3")" "$(entries_of TH-01-AA)"
ok "every entry of $z3 has the bytes of its source file" zip_matches_source "$z3" TH-01-AA
ok "data/dicom/TH-01-AA holds the new series too" dicom_matches_source TH-01-AA
check "TH-02-BB's archive was not rewritten (inode, size, mtime ns)" "$(ident "$(archive_of TH-02-BB)")" "$id_bb"
check "TH-03-CC's archive was not rewritten (inode, size, mtime ns)" "$(ident "$(archive_of TH-03-CC)")" "$id_cc"
check "the other patients' DICOM files were not fetched again" \
	"$(file_state data/dicom/TH-02-BB; file_state data/dicom/TH-03-CC)" "$dicom_others_before"
check "TH-01-AA's two old series were not fetched again" \
	"$(file_state data/dicom/TH-01-AA | grep -v "$new")" "$dicom_aa_before"
check "no temp files left under data/" "$(temp_files data)" ""
run -q
exit_is "thlhp-make -q after the rebuild" 0

section "keep_old = yes"
write_config output.keep_old=yes
run -q
exit_is "switching keep_old on makes no archive stale (it does not change any archive's content)" 0
id_3=$(ident "$z3")
gen --patient TH-01-AA --series 1 --instances 2 --seed a3 --study-date 20240305
newer=$(series_of TH-01-AA | tail -n 1)
run -n
has_line "-n lists the zip of TH-01-AA__seriesCount4.zip for the series in the new study" "$OUT" \
	'^zip[[:space:]]+data/zip/TH-01-AA__seriesCount4\.zip[[:space:]]'
has_line "-n lists the download of the series in the new study" "$OUT" \
	"^download[[:space:]]+TH-01-AA ${newer}[[:space:]]+new series \\(0/2 instances\\)"
run all
exit_is "thlhp-make all with keep_old = yes" 0
check "with keep_old = yes both TH-01-AA__seriesCount3.zip and __seriesCount4.zip remain" \
	"$(zip_names)" "$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-01-AA__seriesCount4.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
check "the kept __seriesCount3.zip was not rewritten" "$(ident "$z3")" "$id_3"
z4=data/zip/TH-01-AA__seriesCount4.zip
ok "$z4 passes unzip -t" zip_ok "$z4"
check "$z4 holds all 11 instances of TH-01-AA's 4 series in 2 studies" "$(zip_list "$z4")" "$(entries_of TH-01-AA)"
run -q
exit_is "thlhp-make -q after the keep_old rebuild" 0

finish
