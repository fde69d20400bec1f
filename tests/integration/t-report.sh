#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-report: -t status (a table per patient, and --format csv with real CSV
# quoting) and -t dag (Graphviz DOT that dot renders, coloured by state),
# before a build, after it, with a new series and with a failed one; they
# write nothing.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

command -v dot >/dev/null || { say "FAIL: dot not found (apt-get install graphviz)"; exit 1; }
standard_source
gen --patient 'TH-04-"q",x' --series 1 --instances 2 --seed rq
write_config 'select.patient_id=TH-*'

# row PID : PID's line of the status table.
row() { awk -v p="$1" 'index($0, p " ") == 1' "$OUT"; }
# csv_col PID N : field N of PID's CSV row, parsed by Python's csv module.
csv_col() {
	"$PY" -c 'import csv, sys
for r in csv.reader(open(sys.argv[1], newline="")):
    if r[0] == sys.argv[2]: print(r[int(sys.argv[3])])' "$OUT" "$1" "$2"
}

section "before anything was built"
run -j2 query
exit_is "thlhp-make query fills the catalog" 0
sum=$(state_sum)
run -t status
exit_is "-t status" 0
has_line "a header names the columns" "$OUT" '^patient +series +downloaded +validated +archive +state$'
check "TH-01-AA: 2 series, none downloaded or validated, no archive, stale because new" \
	"$(row TH-01-AA | awk '{ print $2, $3, $4, $5 }')" "2 0 0 -"
has_line "... and its state says why" "$OUT" '^TH-01-AA .*stale \(download, validate, zip\): new series \(0/[0-9]+ instances\)'
has_line "the last line sums up" "$OUT" '^4 patients, 0 up to date, 4 not$'
check "-t status wrote nothing: the state is as it was" "$(state_sum)" "$sum"
check "... and made no folder" "$(find data -type f 2>/dev/null | wc -l)" 0

section "after all"
run -j2 all
exit_is "all" 0
run -t status
exit_is "-t status" 0
check "TH-02-BB: 3 series downloaded and validated, its archive, up to date" \
	"$(row TH-02-BB | awk '{ print $2, $3, $4, $5, $6, $7, $8 }')" "3 3 3 TH-02-BB__seriesCount3.zip up to date"
has_line "every patient up to date" "$OUT" '^4 patients, 4 up to date, 0 not$'
run -t status --format csv
exit_is "-t status --format csv" 0
has_line "the CSV header" "$OUT" '^patient,series,downloaded,validated,archive,state$'
check "a PatientID with a quote and a comma comes back whole through a CSV reader" \
	"$(csv_col 'TH-04-"q",x' 4)" 'TH-04-%22q%22%2Cx__seriesCount1.zip'
check "TH-01-AA in CSV: series, downloaded, validated, state" \
	"$(csv_col TH-01-AA 1),$(csv_col TH-01-AA 2),$(csv_col TH-01-AA 3),$(csv_col TH-01-AA 5)" "2,2,2,up to date"

section "a new series, and a damaged one"
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 2 --seed rn
IFS=$'\t' read -r st se sop _ < <(instances_of TH-03-CC | head -n 1)
head -c 200 "data/dicom/TH-03-CC/$st/$se/$sop.dcm" >"$LOG/bad.dcm"
replace_file "$LOG/bad.dcm" "data/dicom/TH-03-CC/$st/$se/$sop.dcm"
run -k all
exit_is "-k all with a damaged file fails" 2
run --offline -t status
exit_is "-t status" 0
has_line "TH-03-CC is failed, with the last error" "$OUT" "^TH-03-CC .*failed: .*$sop"
check "TH-01-AA now counts 3 series, all downloaded by the -k run, its archive is the new one" \
	"$(row TH-01-AA | awk '{ print $2, $3, $5 }')" "3 3 TH-01-AA__seriesCount3.zip"

section "-t dag"
run -t dag
exit_is "-t dag" 0
ok "dot -Tsvg renders it" dot -Tsvg -o "$LOG/dag.svg" "$OUT"
ok "... into an SVG" grep -q '<svg' "$LOG/dag.svg"
check "one cluster per patient" "$(grep -c 'subgraph "cluster_' "$OUT")" 4
check "one box per target: per series a download and a validate, per patient a zip" \
	"$(grep -c 'fillcolor=' "$OUT")" "$(( 2 * $(awk -F'\t' '$1 == "series" && $2 ~ /^TH-/' "$MANIFEST" | wc -l) + 4 ))"
check "an edge from each download to its validate and from each validate to its zip" \
	"$(grep -c -- ' -> ' "$OUT")" "$(( 2 * $(awk -F'\t' '$1 == "series" && $2 ~ /^TH-/' "$MANIFEST" | wc -l) ))"
has_line "the failed series is red" "$OUT" "validate.*fillcolor=\"#f4a6a6\""
has_line "up-to-date targets are green" "$OUT" 'fillcolor="#b9e4b0"'
has_line "a quote in a PatientID is escaped in the DOT" "$OUT" 'label="TH-04-\\"q\\",x"'
cp "$OUT" "$LOG/dag1.dot"
run -t dag
check "the same catalog draws the same DOT, byte for byte (node names from the graph, not addresses)" \
	"$(cmp -s "$OUT" "$LOG/dag1.dot" && echo same)" same
ok "every edge joins two boxes that are drawn" awk '
	/\[label=/ { split($1, a, "\""); box[a[2]] = 1 }
	/ -> / { split($0, e, "\""); if (!(e[2] in box) || !(e[4] in box)) bad = 1 }
	END { exit bad }' "$OUT"

finish
