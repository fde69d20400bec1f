#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-newuser: what a first-time user runs into.  -n and -q with the tools
# (-t clean says what it would remove and removes nothing; -t qc and -q
# refuse), file targets that are not the current archive or not under
# zip_dir, a patient [select] leaves out, --offline before any query, a
# series gone from the source reported by -n and -t status on every run,
# config lines longer than inih's 200 bytes, -t targets, the count that
# ends -n, and job lines that name a series by number and description.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

gen --patient TH-01-NU --series 3 --instances 1 --seed a \
	--series-description 'Thorax 1.0 B31f' --series-description 'Abdomen 5.0'
gen --patient TH-02-NU --series 1 --instances 2 --seed b
gen --patient XX-03-NU --series 1 --instances 1 --seed c
write_config

section "--offline before any query"
run --offline -n
exit_is "--offline -n with no catalog yet" 0
has_line "... says there is no catalog yet and to run without --offline" "$OUT" \
	'no catalog yet.*run thlhp-make without --offline first'
no_line "... not that everything is up to date" "$OUT" 'up to date'
run --offline -q
exit_is "--offline -q with no catalog yet cannot answer" 2
has_line "... and says why" "$ERR" 'no catalog yet.*without --offline'

section "-n: one line per stale target, then their count"
run -n
exit_is "-n" 0
has_line "-n ends with the count of stale targets by stage" "$OUT" \
	'^10 targets stale: 4 download, 4 validate, 2 zip$'
check "... as its last line" "$(tail -n 1 "$OUT")" "10 targets stale: 4 download, 4 validate, 2 zip"

section "-t targets"
run -t targets
exit_is "-t targets before any query" 0
check "... lists the stages" "$(cat "$OUT")" "$(printf '%s\n' all query download validate zip)"
run all
exit_is "all" 0
run -t targets
exit_is "-t targets" 0
check "-t targets: the stages, then each selected patient's ID, STAGE:ID and archive" "$(cat "$OUT")" \
	"$(printf '%s\n' all query download validate zip \
		TH-01-NU download:TH-01-NU validate:TH-01-NU zip:TH-01-NU data/zip/TH-01-NU__seriesCount3.zip \
		TH-02-NU download:TH-02-NU validate:TH-02-NU zip:TH-02-NU data/zip/TH-02-NU__seriesCount1.zip)"

section "job lines"
rm -rf data .thlhp
run all
exit_is "all into a pipe" 0
has_line "a download names the series by number and description" "$OUT" \
	'^\[[0-9]+/10\] download +TH-01-NU #1 Thorax 1\.0 B31f  1 instance, [0-9.]+ kB$'
has_line "... a series with no description by its number" "$OUT" \
	'^\[[0-9]+/10\] download +TH-02-NU #1  2 instances, [0-9.]+ kB$'
no_line "... not by its UID" "$OUT" 'download +TH-[0-9]+-NU 2\.25\.'
no_line "one instance is '1 instance'" "$OUT" ' 1 instances,'
has_line "an archive's line gives its size in kB, not 0.1 MB" "$OUT" \
	'^\[[0-9]+/10\] zip +data/zip/TH-02-NU__seriesCount1\.zip  2 instances, [0-9.]+ kB$'
has_line "the last line says when, what ran, and which archives were built" "$OUT" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[-+][0-9]{4} thlhp-make: 10 jobs done in [0-9.]+s \(4 download, 4 validate, 2 zip\); 2 archives built: TH-0[12]-NU__seriesCount[13]\.zip, TH-0[12]-NU__seriesCount[13]\.zip$'
check "... as the last line" "$(tail -n 1 "$OUT" | grep -c 'archives built')" 1
rm -rf data .thlhp
run -v all
exit_is "-v all" 0
has_line "-v adds the UID to the number and description" "$OUT" \
	'^\[[0-9]+/10\] download +TH-01-NU #1 Thorax 1\.0 B31f 2\.25\.[0-9]+  1 instance, '

section "-n and -q with the tools"
before=$(tree_state data)
run -n -t clean
exit_is "-n -t clean" 0
has_line "-n -t clean names each archive it would remove" "$OUT" '^would remove data/zip/TH-01-NU__seriesCount3\.zip$'
has_line "... and says it would remove 2 archives" "$OUT" '^would remove 2 archives, 0 leftover temp files$'
check "... and removes nothing" "$(tree_state data)" "$before"
run -n -t clean download
exit_is "-n -t clean download" 0
count_is "-n -t clean download names each series folder it would empty, with its count" "$OUT" \
	'^would remove 1 downloaded instance in data/dicom/TH-01-NU/2\.25\.[0-9]+/2\.25\.[0-9]+$' 3
has_line "... and sums it up" "$OUT" '^would remove 2 archives, 0 leftover temp files and the downloaded instances \(5 files\)$'
check "... and removes nothing" "$(tree_state data)" "$before"
run -q -t clean
exit_is "-q -t clean is refused" 2
has_line "... saying -q goes with no tool" "$ERR" '-q .*no tool'
check "... and removes nothing" "$(tree_state data)" "$before"
run -n -t qc --since 1d "$T/qc"
exit_is "-n -t qc is refused" 2
has_line "... saying so" "$ERR" 'qc: -n is not supported'
ok "... and copies nothing" test ! -e "$T/qc"
mkdir -p "$T/fresh"
run -C "$T/fresh" -n -t init
exit_is "-n -t init" 0
has_line "-n -t init says it would write thlhp.ini" "$OUT" '^would write thlhp\.ini'
ok "... and writes nothing" test ! -e "$T/fresh/thlhp.ini"
run -n -t status
exit_is "-n -t status (writes nothing anyway)" 0

section "file targets"
run -n data/zip/TH-01-NU__seriesCount3.zip
exit_is "-n on the current archive" 0
run -B data/zip/TH-01-NU__seriesCount2.zip
exit_is "-B on an archive that is not the current one" 2
has_line "... names the current archive" "$ERR" \
	'TH-01-NU__seriesCount2\.zip: not the current archive .*the target is data/zip/TH-01-NU__seriesCount3\.zip'
check "... and builds nothing" "$(tree_state data)" "$before"
run -B ./data/zip/TH-01-NU__seriesCount3.zip
exit_is "-B ./data/zip/ (the same folder, written otherwise)" 0
run other/TH-01-NU__seriesCount3.zip
exit_is "an archive path that is not under zip_dir" 2
has_line "... says it is not under zip_dir" "$ERR" 'other/TH-01-NU__seriesCount3\.zip: not under zip_dir \(data/zip\)'
no_line "... not 'nothing to do'" "$OUT" 'nothing to do'
run -n XX-03-NU
exit_is "a patient [select] leaves out" 2
has_line "... is 'not selected by [select]'" "$ERR" 'XX-03-NU: not selected by \[select\]'
no_line "... not 'no such patient'" "$ERR" 'no such patient'

section "a series gone from the source"
gone=$(series_of TH-01-NU | head -n 1)
gone_dir=$(dirname "$(instances_of_series "$gone" | head -n 1 | cut -f4)")
mv "$gone_dir" "$T/gone"
run all
exit_is "all after a series left the source" 0
has_line "all reports it" "$ERR" "$gone.* no longer at the source"
for args in -n "-t status" -n; do
	# shellcheck disable=SC2086  # the arguments, split on purpose
	run $args
	exit_is "$args while it stays gone" 0
	has_line "$args reports it too" "$ERR" "TH-01-NU: series $gone \(#1 Thorax 1\.0 B31f\) is no longer at the source"
done
mv "$T/gone" "$gone_dir"

section "config lines longer than 200 bytes"
globs=$(for i in $(seq 10 79); do printf 'TH-%02d-* ' "$i"; done)
write_config "select.patient_id=$globs TH-01-* ; the project's sites, one glob each"
check "the [select] line is longer than 400 bytes" "$(awk 'length($0) > 400' thlhp.ini | wc -l)" 1
run -n -B zip:TH-01-NU
exit_is "-n with a 500-byte patient_id line" 0
has_line "... the glob at its end selects TH-01-NU" "$OUT" '^zip +data/zip/TH-01-NU__seriesCount3\.zip  forced$'
write_config "select.patient_id=XX-* ; $(printf 'a long comment %.0s' $(seq 1 20))TH-*"
run -n XX-03-NU
exit_is "a comment that starts within 200 bytes ends the value" 0
has_line "... XX-03-NU is selected" "$OUT" '^download +XX-03-NU '
run -n TH-01-NU
exit_is "... and the TH-* in the comment's long tail is no glob" 2
has_line "... TH-01-NU is not selected" "$ERR" 'TH-01-NU: not selected'

finish
