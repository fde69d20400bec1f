#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-pg: the state in PostgreSQL ([state] url = postgresql://...) on a folder
# source: the same archives as with SQLite, a no-op second run, a new series,
# -n and -q writing nothing, "no state yet" in an empty database, a store
# of schema 2 upgraded, a schema newer than the binary, the server stopped
# and started again, and a password that never shows in a message.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

SCHEMA=8                      # the schema version this thlhp-make makes (state.c)
pg_start
standard_source

# zips_of DIR : "name entry" for every archive in DIR/data/zip.
zips_of() {
	local z
	for z in "$1"/data/zip/*.zip; do
		zip_list "$z" | sed "s|^|$(basename "$z") |"
	done
}

section "a full run with the state in PostgreSQL, and one with SQLite"
write_config "state.url=$PG_URL"
run -j2 all
exit_is "thlhp-make -j2 all with [state] url = postgresql://... builds everything" 0
check "one archive per selected patient" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount2.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
ok "every archive holds exactly its patient's instances, same DICOM content" archives_match
fails "no SQLite file is made when the state is in PostgreSQL" test -e .thlhp/state.db
check "the database has schema version $SCHEMA" "$(pg_sql 'SELECT version FROM schema_version' thlhp)" "$SCHEMA"
check "the database knows the 3 selected patients" "$(pg_sql 'SELECT count(*) FROM patient' thlhp)" 3
check "the database indexes all 19 instances of the selected patients" \
	"$(pg_sql 'SELECT count(*) FROM instance' thlhp)" 19

mkdir -p "$T/lite" && cd "$T/lite" && write_config
run -j2 all
exit_is "the same source with the default SQLite state in a second project dir" 0
check "both stores give the same archive names and entries" "$(zips_of "$T/lite")" "$(zips_of "$PROJ")"
for z in $(zip_names); do
	ok "$z is byte-identical in both projects" cmp -s "data/zip/$z" "$PROJ/data/zip/$z"
done
cd "$PROJ" || exit 1

section "a second run is a no-op"
data_before=$(file_state data)
run -q
exit_is "thlhp-make -q right after the full run" 0
run -j2 all
exit_is "thlhp-make all again" 0
check "the second run rewrote no file under data/ (inode, size, mtime ns)" "$(file_state data)" "$data_before"

section "a new series; -n and -q write nothing to the database"
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 3 --seed a2 --series-number-base 3
new=$(series_of TH-01-AA | tail -n 1)
dump_before=$(pg_dump_data)
has_line "the dump to compare holds the instance rows" <(printf '%s\n' "$dump_before") '^COPY public\.instance '
tree_before=$(tree_state data)
run -q
exit_is "thlhp-make -q sees the new series as stale" 1
run -n
exit_is "thlhp-make -n with a new series" 0
has_line "-n lists the download of the new series" "$OUT" \
	"^download[[:space:]]+TH-01-AA ${new}[[:space:]]+new series \\(0/3 instances\\)"
has_line "-n lists the zip of TH-01-AA__seriesCount3.zip" "$OUT" '^zip[[:space:]]+data/zip/TH-01-AA__seriesCount3\.zip'
check "-n and -q left every row of the database as it was (pg_dump --data-only)" "$(pg_dump_data)" "$dump_before"
check "-n wrote nothing under data/" "$(tree_state data)" "$tree_before"
run -j2 all
exit_is "thlhp-make all with the new series" 0
check "TH-01-AA__seriesCount3.zip replaces __seriesCount2.zip" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
check "TH-01-AA__seriesCount3.zip holds all 9 instances" "$(zip_list data/zip/TH-01-AA__seriesCount3.zip)" \
	"$(entries_of TH-01-AA)"
check "the database now holds the 3 series of TH-01-AA" \
	"$(pg_sql "SELECT count(*) FROM series WHERE patient_id = 'TH-01-AA'" thlhp)" 3
run -q
exit_is "thlhp-make -q after the rebuild" 0

section "an empty database: no state yet, and -n creates nothing"
pg_sql "CREATE DATABASE thlhp_empty OWNER thlhp"
mkdir -p "$T/empty" && cd "$T/empty" && write_config "state.url=${PG_URL/\/thlhp?//thlhp_empty?}"
run -q
exit_is "thlhp-make -q on an empty database: everything is stale" 1
run -n
exit_is "thlhp-make -n on an empty database" 0
has_line "-n lists a download for TH-02-BB's series" "$OUT" '^download[[:space:]]+TH-02-BB '
check "-n and -q created no table in the empty database" \
	"$(pg_sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" thlhp_empty)" 0
cd "$PROJ" || exit 1

section "a store of schema 2 (before SeriesNumber and SeriesDescription) is upgraded"
pg_sql "UPDATE series SET valid_sig = (SELECT input_sig FROM target
		WHERE stage = 'validate' AND key = series.uid);
	UPDATE patient SET (ar_path, ar_sig, ar_settings, ar_series, ar_size, ar_mtime, ar_hash,
		ar_error) = (SELECT out_path, input_sig, settings_sig, detail, out_size, out_mtime,
		out_hash, error FROM target WHERE stage = 'zip' AND key = patient.id);
	DROP TABLE target; DROP TABLE metadata; DROP TABLE omop_id; DROP TABLE omop_row;
	DROP TABLE archive_entry; DROP TABLE notice; DROP TABLE form_sub;
	ALTER TABLE series DROP COLUMN series_number; ALTER TABLE series DROP COLUMN series_desc;
	ALTER TABLE src_file DROP COLUMN series_number; ALTER TABLE src_file DROP COLUMN series_desc;
	ALTER TABLE patient DROP COLUMN ar_error; ALTER TABLE patient DROP COLUMN query_error;
	UPDATE schema_version SET version = 2" thlhp
# numbers PID : the SeriesNumber column of PID's -t inventory rows, sorted.
numbers() {
	"$PY" -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))[1:]
print(",".join(sorted(r[4] for r in rows if r[0] == sys.argv[2])))' "$OUT" "$1"
}
run --offline query
exit_is "thlhp-make --offline query on it" 0
check "... upgrades it to schema $SCHEMA" "$(pg_sql 'SELECT version FROM schema_version' thlhp)" "$SCHEMA"
run -t inventory
exit_is "-t inventory" 0
check "TH-01-AA's series are there, their SeriesNumbers not yet" "$(numbers TH-01-AA)" ",,"
run query
exit_is "the next query" 0
run -t inventory
check "... fills them in" "$(numbers TH-01-AA)" "1,2,3"
run -q
exit_is "and everything is still up to date" 0

section "a schema newer than this thlhp-make"
pg_sql "UPDATE schema_version SET version = $((SCHEMA + 1))" thlhp
for args in all -q -n; do
	run $args
	exit_is "thlhp-make $args on a database with schema version $((SCHEMA + 1))" 2
	has_line "$args: stderr says the state is newer than this thlhp-make and what to do" "$ERR" \
		"schema version $((SCHEMA + 1)), newer than this thlhp-make knows \\($SCHEMA\\): use a newer thlhp-make"
done
check "the newer schema version was left alone" "$(pg_sql 'SELECT version FROM schema_version' thlhp)" \
	"$((SCHEMA + 1))"
pg_sql "UPDATE schema_version SET version = $SCHEMA" thlhp
run -q
exit_is "thlhp-make -q once the version is back" 0

section "PostgreSQL stopped, then started again"
pg_stop
for args in all -q -n; do
	run $args
	exit_is "thlhp-make $args with PostgreSQL stopped" 2
	count_is "$args: stderr has exactly one line" "$ERR" '' 1
	has_line "$args: the message names the database and where it is" "$ERR" \
		"\\[state\\] url: postgresql database 'thlhp' on $PG_DIR:5432: cannot connect: "
done
pg_run_server
gen --patient TH-03-CC --study-uid "$(study_of TH-03-CC)" --series 1 --instances 2 --seed c2 --modality MR
run -j2 all
exit_is "started again, the next run completes" 0
check "it built TH-03-CC__seriesCount3.zip" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount3.zip)"
ok "every archive holds exactly its patient's instances" archives_match
run -q
exit_is "thlhp-make -q after it" 0

section "a password in the URL never shows"
mkdir -p "$T/pw" && cd "$T/pw" && write_config "state.url=$PG_PW_URL"
run -j2 all
exit_is "the role with a password, given in the URL, builds everything" 0
run -q
exit_is "thlhp-make -q with the password in the URL" 0
no_line "its stderr does not hold the password" "$ERR" "$PG_PW"
bad=wrong-$PG_PW
write_config "state.url=${PG_PW_URL/:$PG_PW@/:$bad@}"
run -q
exit_is "a wrong password in the URL" 2
has_line "the message says the password was refused" "$ERR" 'password authentication failed for user "thlhp_pw"'
no_line "... and does not hold the password given" "$ERR" "$bad"
write_config "state.url=${PG_PW_URL/:$PG_PW@/:$PG_PW%zz@}"
run -q
exit_is "a URL libpq cannot parse (bad %-escape in the password)" 2
no_line "... and its message does not hold the password" "$ERR" "$PG_PW"
write_config "state.url=${PG_PW_URL/:$PG_PW@/@}"
export PGPASSWORD=$PG_PW
run -q
exit_is "the password from PGPASSWORD instead of the URL (libpq's variables work)" 0
unset PGPASSWORD
run -q
exit_is "without it, the role cannot log in" 2
write_config "state.url=$PG_PW_URL"
pg_stop
run all
exit_is "the password URL with PostgreSQL stopped" 2
has_line "the message names the database" "$ERR" "postgresql database 'thlhp_pw' on "
no_line "... and does not hold the password" "$ERR" "$PG_PW"

finish
