#!/usr/bin/env bash
# shellcheck disable=SC2119  # write_config takes optional args
# t-omop: the omop stage ([omop], after [metadata]) on a folder source,
# into a throwaway PostgreSQL loaded with the shipped DDL
# (examples/omop/*.sql): one image_occurrence row per series and one
# procedure_occurrence row per study, person_id from a CSV person_map (or
# a table), an unmapped patient skipped or given person 0, modality and
# body part concepts from a small Athena CONCEPT.csv, a new series adding
# exactly one row and touching no other, a rerun writing nothing; [omop]
# dir giving the same rows as CSV files, left byte-identical by a no-op
# run; a person_map that is wrong failing the run (exit 2) before any job.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

DDL=$TESTS/../examples/omop

# Three patients: TH-01-OM (CT, 1 study x 2 series), TH-02-OM (MR, 2
# studies x 1 series; its first series' BodyPartExamined is BRAIN) and
# TH-03-OM, whom person_map does not know.
gen --patient TH-01-OM --studies 1 --series 2 --instances 2 --seed o1
gen --patient TH-02-OM --studies 2 --series 1 --instances 1 --seed o2 --modality MR
gen --patient TH-03-OM --studies 1 --series 1 --instances 1 --seed o3
brain=$(series_of TH-02-OM | head -n 1)
"$PY" "$TESTS/gen_series.py" --patch "$(instances_of_series "$brain" | cut -f4)" BodyPartExamined=BRAIN

# sql SQL : a query in the OMOP database as its owner; rows unaligned.
sql() {
	"$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U thlhp -d thlhp -c "$1"
}
# rows TABLE : every row of omop.TABLE with its xmin (which an UPDATE changes), by id.
rows() {
	sql "SELECT xmin, * FROM omop.$1 ORDER BY 2"
}
# table_csv TABLE : omop.TABLE as CSV with its header, by id.
table_csv() {
	sql "COPY (SELECT * FROM omop.$1 ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER)"
}
# omop_config [KEY=VALUE]... : thlhp.ini with [metadata] and [omop] (url,
# person_map, vocabulary), the arguments overriding or adding [omop] keys.
omop_config() {
	local -A kv=([url]=$PG_URL [person_map]=persons.csv [vocabulary]=CONCEPT.csv)
	local a k
	for a in "$@"; do kv[${a%%=*}]=${a#*=}; done
	write_config
	{
		printf '\n[metadata]\n\n[omop]\n'
		for k in url dir person_map missing_person vocabulary; do
			[ -n "${kv[$k]:-}" ] && printf '%s = %s\n' "$k" "${kv[$k]}"
		done
	} >>thlhp.ini
}

pg_start
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U thlhp -d thlhp \
	-c 'CREATE SCHEMA omop' -c 'SET search_path TO omop' \
	-f "$DDL/image_occurrence.sql" -f "$DDL/procedure_occurrence.sql" >"$LOG/ddl.log" 2>&1 ||
	{ fail "the shipped DDL loads"; cat "$LOG/ddl.log"; finish; }

# person_map: RFC 4180, columns in another order, one more column, quoting.
cat >persons.csv <<'CSV'
"site",person_id,patient_id
"Leiden, ""LUMC""",101,TH-01-OM
x,102,"TH-02-OM"
CSV
# An Athena CONCEPT.csv: tab-separated, a header row, no quoting.  The
# DICOM rows as the MI-CDM's DICOM vocabulary has them; a deprecated CT
# row (invalid_reason D) with a smaller id must not be taken.  Ids made up.
printf '%s\t' concept_id concept_name domain_id vocabulary_id concept_class_id \
	standard_concept concept_code valid_start_date valid_end_date >CONCEPT.csv
printf 'invalid_reason\n' >>CONCEPT.csv
cat >>CONCEPT.csv <<'TSV'
2128000100	Computed Tomography	Meas Value	DICOM	DICOM Value Sets		CT	19930101	20200101	D
2128000101	Computed Tomography	Meas Value	DICOM	DICOM Value Sets		CT	19930101	20991231	
2128000102	Magnetic Resonance	Meas Value	DICOM	DICOM Value Sets		MR	19930101	20991231	
4000001	Brain	Spec Anatomic Site	SNOMED	Body Structure	S	12738006	19700101	20991231	
4000002	Brain	Spec Anatomic Site	SNOMED	Body Structure		12738007	19700101	20991231	
TSV

section "into PostgreSQL: a row per series and per study"
omop_config
run -n
exit_is "-n" 0
has_line "-n: the omop target of TH-01-OM, after metadata" "$OUT" '^omop +TH-01-OM +after metadata \('
run -j2 all
exit_is "all" 0
has_line "TH-03-OM, not in person_map, is skipped (missing_person = skip)" "$OUT" \
	'\] omop +TH-03-OM +skipped: no person_id in person_map'
check "image_occurrence: one row per series of the mapped patients" \
	"$(sql 'SELECT count(*) FROM omop.image_occurrence')" 4
check "procedure_occurrence: one row per study of the mapped patients" \
	"$(sql 'SELECT count(*) FROM omop.procedure_occurrence')" 3
check "the series and studies are those generated" \
	"$(sql 'SELECT image_study_uid, image_series_uid FROM omop.image_occurrence ORDER BY 1, 2' | tr '|' ' ')" \
	"$(awk -F'\t' '$1 == "series" && $2 != "TH-03-OM" { print $3, $4 }' "$MANIFEST" | sort)"
check "person_id from person_map: 101 for TH-01-OM's 2 series, 102 for TH-02-OM's 2" \
	"$(sql 'SELECT person_id, count(*) FROM omop.image_occurrence GROUP BY 1 ORDER BY 1')" \
	"$(printf '101|2\n102|2')"
check "the unmapped TH-03-OM has no row" \
	"$(sql "SELECT count(*) FROM omop.image_occurrence WHERE image_series_uid = '$(series_of TH-03-OM)'")" 0
check "every image row points at its study's procedure row, of the same person" \
	"$(sql 'SELECT count(*) FROM omop.image_occurrence i JOIN omop.procedure_occurrence p
		ON p.procedure_occurrence_id = i.procedure_occurrence_id AND p.person_id = i.person_id')" 4
check "modality_concept_id: the DICOM vocabulary's valid concept of CT, of MR" \
	"$(sql 'SELECT DISTINCT person_id, modality_concept_id FROM omop.image_occurrence ORDER BY 1')" \
	"$(printf '101|2128000101\n102|2128000102')"
check "anatomic_site_concept_id: BRAIN is the standard Spec Anatomic Site concept Brain; else 0" \
	"$(sql 'SELECT image_series_uid, anatomic_site_concept_id FROM omop.image_occurrence
		WHERE anatomic_site_concept_id <> 0')" "$brain|4000001"
check "dates, local_path, the procedure's type (EHR) and datetime (StudyDate, StudyTime)" \
	"$(sql "SELECT DISTINCT image_occurrence_date, local_path LIKE 'data/dicom/TH-0_-OM/%/' || image_series_uid,
		wadors_uri IS NULL, visit_occurrence_id IS NULL FROM omop.image_occurrence")
$(sql 'SELECT DISTINCT procedure_date, procedure_type_concept_id, procedure_concept_id,
		procedure_datetime::date = procedure_date FROM omop.procedure_occurrence')" \
	"$(printf '2024-01-01|t|t|t\n2024-01-01|32817|0|t')"

section "a rerun writes nothing"
img_before=$(rows image_occurrence) proc_before=$(rows procedure_occurrence)
check "(the rows, with their xmin: 4 and 3)" "$(printf "%s\n" "$img_before" | wc -l) $(printf "%s\n" "$proc_before" | wc -l)" "4 3"
run -n
exit_is "-n" 0
has_line "-n: nothing is stale" "$OUT" 'nothing to do: everything is up to date'
run -q
exit_is "-q: up to date" 0
run all
exit_is "all again" 0
no_line "no omop job ran" "$OUT" '\] omop '
check "no image_occurrence row changed (xmin and values)" "$(rows image_occurrence)" "$img_before"
check "no procedure_occurrence row changed" "$(rows procedure_occurrence)" "$proc_before"
run -B omop:TH-01-OM
exit_is "-B omop:TH-01-OM" 0
has_line "... writes TH-01-OM's rows again: all as they are" "$OUT" \
	'\] omop +TH-01-OM +2 image_occurrence, 1 procedure_occurrence, 0 written, 0 removed'
check "... and the database has not one row updated" "$(rows image_occurrence)" "$img_before"

section "a new series adds exactly one row"
gen --patient TH-01-OM --study-uid "$(study_of TH-01-OM)" --series 1 --instances 1 --seed o1new
new=$(series_of TH-01-OM | tail -n 1)
run -n
has_line "-n: TH-01-OM's omop target after its new series' metadata" "$OUT" \
	'^omop +TH-01-OM +after metadata \('
count_is "-n: no other patient's omop target" "$OUT" '^omop ' 1
run all
exit_is "all" 0
check "image_occurrence: one more row, the new series', of person 101 in the same study" \
	"$(sql "SELECT count(*) FROM omop.image_occurrence")
$(sql "SELECT person_id, image_study_uid FROM omop.image_occurrence WHERE image_series_uid = '$new'")" \
	"$(printf '5\n101|%s' "$(study_of TH-01-OM)")"
check "every other image_occurrence row as it was (xmin and values)" \
	"$(rows image_occurrence | grep -v "|$new|")" "$img_before"
check "procedure_occurrence: no row added or changed" "$(rows procedure_occurrence)" "$proc_before"
img_before=$(rows image_occurrence)

section "missing_person = zero, then skip again"
omop_config missing_person=zero
run -n
has_line "-n: TH-03-OM's target, missing_person changed" "$OUT" '^omop +TH-03-OM +missing_person changed$'
count_is "-n: only that one" "$OUT" '^omop ' 1
run all
exit_is "all" 0
check "TH-03-OM's series and study are rows of person 0" \
	"$(sql "SELECT person_id FROM omop.image_occurrence WHERE image_series_uid = '$(series_of TH-03-OM)'
		UNION ALL SELECT DISTINCT person_id FROM omop.procedure_occurrence WHERE person_id = 0")" \
	"$(printf '0\n0')"
omop_config
run all
exit_is "missing_person = skip again" 0
has_line "... TH-03-OM skipped, its earlier rows removed" "$OUT" \
	'\] omop +TH-03-OM +skipped: no person_id in person_map \(its earlier rows removed\)'
check "... none of person 0 is left" \
	"$(sql 'SELECT count(*) FROM omop.image_occurrence WHERE person_id = 0')$(sql \
	'SELECT count(*) FROM omop.procedure_occurrence WHERE person_id = 0')" 00
check "... and the other rows are as they were" "$(rows image_occurrence)" "$img_before"

section "person_map as a table of the OMOP database"
sql "CREATE TABLE omop.persons (patient_id text, person_id bigint);
	INSERT INTO omop.persons VALUES ('TH-01-OM', 101), ('TH-02-OM', 102), ('TH-03-OM', 103)"
omop_config person_map=omop.persons
run -n
has_line "-n: TH-03-OM, now mapped: person_map changed" "$OUT" '^omop +TH-03-OM +person_map changed$'
count_is "-n: only that one" "$OUT" '^omop ' 1
run all
exit_is "all" 0
check "TH-03-OM's series is a row of person 103" \
	"$(sql "SELECT person_id FROM omop.image_occurrence WHERE image_series_uid = '$(series_of TH-03-OM)'")" 103
omop_config
run all
exit_is "back to persons.csv: TH-03-OM skipped again" 0

section "the README's query: image_occurrence joined to person"
# person is the site's CDM table; its columns that may not be NULL (CDM 5.4).
sql "CREATE TABLE omop.person (person_id integer PRIMARY KEY, gender_concept_id integer NOT NULL,
	year_of_birth integer NOT NULL, race_concept_id integer NOT NULL,
	ethnicity_concept_id integer NOT NULL, person_source_value varchar(50));
	INSERT INTO omop.person VALUES (101, 8507, 1961, 0, 0, 'TH-01-OM'), (102, 8532, 1978, 0, 0, 'TH-02-OM')"
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U thlhp -d thlhp \
	-f "$TESTS/integration/omop-queries-pg.sql" >"$LOG/omop-query.out" 2>&1
RC=$?
exit_is "the query in omop-queries-pg.sql runs" 0
check "... one row per series of the mapped patients, each with its person" \
	"$(awk -F'|' 'NR > 2 && NF > 5 { gsub(/ /, "", $1); print $1 }' "$LOG/omop-query.out" | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" \
	"101:3 102:2 "
section "the README's query, its real output"
cat "$LOG/omop-query.out"

section "[omop] dir: the same rows as CSV files"
omop_config url= dir=data/omop
run -n
count_is "-n: every omop target, as the rows go elsewhere now" "$OUT" '^omop +TH-0.-OM +\[omop\] url or dir changed$' 3
run all
exit_is "all" 0
for t in image_occurrence procedure_occurrence; do
	check "data/omop/$t.csv has the rows the database has (CDM columns as header)" \
		"$(tr -d '\r' <"data/omop/$t.csv")" "$(table_csv "$t")"
done
check "RFC 4180: CRLF after every record" \
	"$(grep -c $'\r$' data/omop/image_occurrence.csv)" "$(wc -l <data/omop/image_occurrence.csv)"
csv_before=$(file_state data/omop)
cp data/omop/image_occurrence.csv "$LOG/image.csv"
run -n
has_line "-n: nothing is stale" "$OUT" 'nothing to do: everything is up to date'
run all
exit_is "all again" 0
check "the CSV files are untouched (inode, size, mtime ns)" "$(file_state data/omop)" "$csv_before"
run -B omop
exit_is "-B omop: every patient's rows made again, the same" 0
check "... the files still untouched: their content would not change" "$(file_state data/omop)" "$csv_before"
rm data/omop/image_occurrence.csv
printf 'edited\n' >>data/omop/procedure_occurrence.csv
run all
exit_is "all with one file removed and one edited" 0
ok "... image_occurrence.csv is back, the same" cmp -s "$LOG/image.csv" data/omop/image_occurrence.csv
check "... procedure_occurrence.csv is as the database has it again" \
	"$(tr -d '\r' <data/omop/procedure_occurrence.csv)" "$(table_csv procedure_occurrence)"
check "no temp file left" "$(temp_files data/omop)" ""

section "a person_map that is wrong fails the run before any job"
gen --patient TH-02-OM --study-uid "$(study_of TH-02-OM)" --series 1 --instances 1 --seed o2new
printf 'patient,person_id\nTH-01-OM,101\n' >persons.csv
run all
exit_is "a person_map without a patient_id column" 2
has_line "... says which column is missing, and where" "$ERR" \
	'thlhp\.ini:[0-9]+: \[omop\] person_map: persons\.csv:1: no column patient_id'
no_line "... and no job ran (a new series is waiting)" "$OUT" '\] (download|validate|metadata|zip|omop) '
printf 'patient_id,person_id\nTH-01-OM,101\nTH-02-OM,1.5e3\n' >persons.csv
run all
exit_is "a person_id that is no integer" 2
has_line "... names the line and the value" "$ERR" \
	"persons\.csv:3: person_id '1\.5e3' of patient_id 'TH-02-OM' is not a non-negative integer"
printf 'patient_id,person_id\nTH-01-OM,101\n"TH-01-OM",7\n' >persons.csv
run all
exit_is "a patient_id twice" 2
has_line "... names both lines" "$ERR" "persons\.csv:3: patient_id 'TH-01-OM' again \(first on line 2\)"
printf 'patient_id,person_id\nTH-01-OM,101\nTH-02-OM,102\n' >persons.csv
run all
exit_is "a right person_map again: the waiting series goes through" 0
has_line "... TH-02-OM's rows made" "$OUT" '\] omop +TH-02-OM +3 image_occurrence, 2 procedure_occurrence'
finish
