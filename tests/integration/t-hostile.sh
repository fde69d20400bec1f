#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-hostile: PatientIDs that look like paths, hold spaces, UTF-8 or '%', or
# are "." and "..", never put a file outside data/zip and data/dicom, and
# become percent-encoded file names.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

# Run two levels deeper so that anything escaping by "../.." still lands
# inside $T, where the final find sees it.  The source path holds a space.
PROJ=$T/w1/w2/proj
SRC="$PROJ/source dir"
mkdir -p "$SRC" && cd "$PROJ" || exit 1

ids=('TH-../../x' 'TH-a/b' 'TH- sp' 'TH-ü' '.' '..' 'TH-100%' '../../../esc')
i=0
for p in "${ids[@]}"; do
	i=$((i + 1))
	gen --patient "$p" --series 1 --instances 2 --seed "h$i"
done
gen --patient 'TH-two' --studies 2 --series 1 --instances 1 --seed h2s
ids+=('TH-two')

write_config select.patient_id= 'select.patient_id_regex=.*'
run -j2 all
exit_is "thlhp-make all with hostile PatientIDs" 0

expected=$(for p in "${ids[@]}"; do printf '%s__seriesCount%s.zip\n' "$(enc "$p")" "$(nseries "$p")"; done | sort)
check "data/zip holds one percent-encoded archive per patient (e.g. TH-..%2F..%2Fx__seriesCount1.zip, %2E__seriesCount1.zip)" \
	"$(zip_names)" "$expected"
check "data/dicom holds one percent-encoded folder per patient (never '.', '..' or a '/' split)" \
	"$(find data/dicom -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)" \
	"$(for p in "${ids[@]}"; do enc "$p"; done | sort)"
for p in "${ids[@]}"; do
	z=$(archive_of "$p")
	ok "archive for PatientID '$p' is $z and passes unzip -t" zip_ok "$z"
	check "archive for '$p' holds exactly its instances" "$(zip_list "$z")" "$(entries_of "$p")"
	ok "data/dicom/$(enc "$p") holds '$p's instances with the source's bytes" dicom_matches_source "$p"
done
check "nothing was written outside data/zip, data/dicom, the source, thlhp.ini and .thlhp (searched from two levels above the project)" \
	"$(cd "$T/w1" && find . -mindepth 1 \( -type f -o -type l \) \
		! -path './w2/proj/data/zip/*' ! -path './w2/proj/data/dicom/*' \
		! -path './w2/proj/source dir/*' ! -path './w2/proj/.thlhp/*' ! -path './w2/proj/thlhp.ini' | sort)" ""
check "data/zip has no subfolders (a '/' in a PatientID never makes one)" \
	"$(find data/zip -mindepth 1 -type d)" ""
check "data/dicom/<patient> is always <Study>/<Series>/<SOP>.dcm, three levels deep" \
	"$(find data/dicom -type f | awk -F/ 'NF != 6' )" ""

run -q
exit_is "-q after the hostile run" 0
run zip:TH-a/b
exit_is "thlhp-make zip:TH-a/b names a patient whose ID holds a slash" 0
run -B "zip:TH-../../x"
exit_is "thlhp-make -B zip:TH-../../x rebuilds that archive" 0
ok "the rebuilt archive passes unzip -t" zip_ok "data/zip/TH-..%2F..%2Fx__seriesCount1.zip"
check "still nothing outside the output dirs" \
	"$(cd "$T/w1" && find . -mindepth 1 \( -type f -o -type l \) \
		! -path './w2/proj/data/zip/*' ! -path './w2/proj/data/dicom/*' \
		! -path './w2/proj/source dir/*' ! -path './w2/proj/.thlhp/*' ! -path './w2/proj/thlhp.ini' | sort)" ""
check "no temp files left under data/" "$(temp_files data)" ""

finish
