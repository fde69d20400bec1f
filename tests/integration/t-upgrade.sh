#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # `thlhp-make query` is literal message text; write_config takes optional args
# t-upgrade: a state written by the previously released thlhp-make (commit
# 7aa1874, state schema 3), built here from the repository's own history,
# is upgraded by this thlhp-make: in SQLite and in PostgreSQL the upgrading
# `all` rebuilds nothing and the next run is a no-op; the old validate and
# archive records move into the target table; and a patient the old state
# already knew to be stale is still stale after the upgrade (upgraded and
# planned with the source moved away) and is rebuilt.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

OLD_REV=7aa1874               # the last release: state schema 3
OLD_SCHEMA=3
SCHEMA=8                      # the schema version this thlhp-make makes (state.c)
TOP=$(cd "$TESTS/.." && pwd)
OLD=$LOG/old/thlhp-make

# run_old ARGS... : like run, with the thlhp-make of $OLD_REV.
run_old() {
	local THLHP=$OLD
	say "  (thlhp-make of $OLD_REV:)"
	run "$@"
	LASTCMD="thlhp-make@$OLD_REV $*"
}
# lite SQL : a query on this project's SQLite state; rows "a|b", no header.
lite() { sqlite3 .thlhp/state.db "$1"; }
# A job run, as `all` prints it ("[2/3] validate TH-01-AA #3 ..."), and a
# stale target, as -n prints it ("validate  TH-01-AA 2.25.... never validated").
RAN='^\[[0-9]+/[0-9]+\] +(download|validate|zip) '
STALE='^(query|download|validate|zip)[[:space:]]'
NOTHING='^thlhp-make: nothing to do: everything is up to date$'
# What this thlhp-make says about a state of schema 3.
OLDER="schema version $OLD_SCHEMA, older than this thlhp-make.s \\($SCHEMA\\): run \`thlhp-make query\` once"

section "thlhp-make $OLD_REV, built from the repository's history"
if ! git -C "$TOP" cat-file -e "$OLD_REV^{commit}" 2>/dev/null; then
	fail "commit $OLD_REV is not in the repository at $TOP: this test needs the repository history (git fetch --unshallow)"
	finish
fi
mkdir -p "$LOG/old"
if ! (set -o pipefail
	git -C "$TOP" archive "$OLD_REV" | tar -x -C "$LOG/old" &&
	cd "$LOG/old" && autoreconf -fi && ./configure CFLAGS=-O1 CXXFLAGS=-O1 &&
	make -j2 thlhp-make) >"$LOG/old-build.log" 2>&1 || [ ! -x "$OLD" ]; then
	fail "building thlhp-make $OLD_REV (autoreconf, configure, make); the end of its log:"
	tail -n 30 "$LOG/old-build.log" | sed 's/^/    /'
	finish
fi
pass "thlhp-make $OLD_REV builds (git archive, autoreconf, configure, make thlhp-make)"

# ---- SQLite: an up-to-date state -----------------------------------------

section "SQLite: thlhp-make $OLD_REV builds everything"
standard_source
write_config
run_old -j2 all
exit_is "thlhp-make $OLD_REV all" 0
[ "$RC" -eq 0 ] || finish
check "it made one archive per selected patient" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount2.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
check "its state has schema version $OLD_SCHEMA" "$(lite 'SELECT version FROM schema_version')" "$OLD_SCHEMA"
check "its state has no target table yet" \
	"$(lite "SELECT count(*) FROM sqlite_master WHERE name = 'target'")" 0
old_zip=$(lite "SELECT id || '|' || ar_path || '|' || ar_hash FROM patient ORDER BY id")
old_valid=$(lite "SELECT uid || '|' || valid_sig FROM series WHERE valid_sig IS NOT NULL ORDER BY uid")
check "it recorded an archive per patient (patient.ar_path)" \
	"$(printf '%s\n' "$old_zip" | cut -d'|' -f2 | sed 's|.*/||')" "$(zip_names)"
check "it recorded every series as validated (series.valid_sig)" \
	"$(printf '%s\n' "$old_valid" | wc -l)" 7
files_before=$(file_state data)
tree_before=$(tree_state data)

section "SQLite: this thlhp-make on the old state"
state_before=$(state_sum)
for args in -q -n "-t status"; do
	# shellcheck disable=SC2086  # two words for -t status
	run $args
	exit_is "thlhp-make $args on a schema-$OLD_SCHEMA state is refused" 2
	has_line "... stderr says the state is older and to run \`thlhp-make query\` once" "$ERR" "$OLDER"
	is_empty "... and nothing on stdout" "$OUT"
done
check "-q, -n and -t status left the state as it was (sha256)" "$(state_sum)" "$state_before"
check "... still at schema version $OLD_SCHEMA" "$(lite 'SELECT version FROM schema_version')" "$OLD_SCHEMA"

run -j2 all
exit_is "thlhp-make all on the old state" 0
check "... upgrades it to schema version $SCHEMA" "$(lite 'SELECT version FROM schema_version')" "$SCHEMA"
no_line "... and runs no download, validate or zip job" "$OUT" "$RAN"
has_line "... saying 'nothing to do: everything is up to date'" "$OUT" "$NOTHING"
check "... rewrites no file under data/ (inode, size, mtime to the ns)" "$(file_state data)" "$files_before"
check "... touches no folder under data/" "$(tree_state data)" "$tree_before"
ok "every archive still holds exactly its patient's instances" archives_match

section "SQLite: the old records, in the target table"
check "target has one validate record per series and one zip record per patient" \
	"$(lite 'SELECT stage, count(*) FROM target GROUP BY stage ORDER BY stage')" \
	"$(printf '%s\n' 'validate|7' 'zip|3')"
check "each zip record is the archive the old state recorded (path and hash)" \
	"$(lite "SELECT key || '|' || out_path || '|' || out_hash FROM target WHERE stage = 'zip' ORDER BY key")" \
	"$old_zip"
check "each validate record is the old series.valid_sig" \
	"$(lite "SELECT key || '|' || input_sig FROM target WHERE stage = 'validate' ORDER BY key")" \
	"$old_valid"
check "the old per-patient archive columns are emptied" \
	"$(lite 'SELECT count(*) FROM patient WHERE ar_path IS NOT NULL OR ar_hash IS NOT NULL OR ar_sig IS NOT NULL')" 0
check "the old series.valid_sig column is emptied" \
	"$(lite 'SELECT count(*) FROM series WHERE valid_sig IS NOT NULL')" 0

section "SQLite: the next runs are no-ops"
run -q
exit_is "thlhp-make -q after the upgrade" 0
is_empty "-q prints nothing on stdout" "$OUT"
is_empty "-q prints nothing on stderr" "$ERR"
run -n
exit_is "thlhp-make -n after the upgrade" 0
no_line "-n lists no stale target" "$OUT" "$STALE"
has_line "-n: 'nothing to do: everything is up to date'" "$OUT" "$NOTHING"
run -t status
exit_is "thlhp-make -t status after the upgrade" 0
for p in TH-01-AA TH-02-BB TH-03-CC; do
	has_line "-t status: $p is up to date, in $(basename "$(archive_of "$p")")" "$OUT" \
		"^$p +[0-9]+ +[0-9]+ +[0-9]+ +$(basename "$(archive_of "$p")") +up to date\$"
done
has_line "-t status: 3 patients, 3 up to date, 0 not" "$OUT" '^3 patients, 3 up to date, 0 not$'
run -j2 all
exit_is "thlhp-make all again" 0
no_line "... runs no download, validate or zip job" "$OUT" "$RAN"
has_line "... nothing to do" "$OUT" "$NOTHING"
check "... rewrites no file under data/" "$(file_state data)" "$files_before"
check "... touches no folder under data/" "$(tree_state data)" "$tree_before"
# What the old columns say no longer counts: nonsense in them changes nothing.
lite "UPDATE patient SET ar_path = 'data/zip/nonsense.zip', ar_hash = '0000000000000000',
	ar_sig = 'x', ar_size = 1; UPDATE series SET valid_sig = 'x'"
run -q
exit_is "-q with nonsense in the old archive and validate columns: still up to date" 0
run -j2 all
exit_is "... and all" 0
no_line "... runs no job" "$OUT" "$RAN"
has_line "... nothing to do" "$OUT" "$NOTHING"
check "... rewrites nothing under data/" "$(tree_state data)" "$tree_before"

# ---- SQLite: a patient the old state knew to be stale ---------------------

section "SQLite: thlhp-make $OLD_REV, then a new series it has queried but not built"
mkdir -p "$T/stale" && cd "$T/stale" && write_config
run_old -j2 all
exit_is "thlhp-make $OLD_REV all in a second project" 0
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 3 --seed a2 --series-number-base 3
new=$(series_of TH-01-AA | tail -n 1)
run_old query
exit_is "thlhp-make $OLD_REV query sees the new series" 0
run_old -q
exit_is "thlhp-make $OLD_REV -q: TH-01-AA is stale" 1
check "its state (schema $OLD_SCHEMA) holds TH-01-AA's 3 series" \
	"$(lite "SELECT version FROM schema_version; SELECT count(*) FROM series WHERE patient_id = 'TH-01-AA'")" \
	"$(printf '%s\n' "$OLD_SCHEMA" 3)"
B=$(archive_of TH-02-BB) C=$(archive_of TH-03-CC)
idb=$(ident "$B") idc=$(ident "$C") dicom_b=$(file_state data/dicom/TH-02-BB)

section "SQLite: upgraded without the source, TH-01-AA is still stale"
run -q
exit_is "thlhp-make -q on the old state is refused" 2
has_line "... saying to run \`thlhp-make query\` once" "$ERR" "$OLDER"
# The source moved away: what follows can only come from the old state.
mv "$SRC" "$SRC.away"
run --offline query
exit_is "thlhp-make --offline query, the source moved away" 0
check "... upgrades the state to schema version $SCHEMA" "$(lite 'SELECT version FROM schema_version')" "$SCHEMA"
run --offline -q
exit_is "thlhp-make --offline -q: stale" 1
run --offline -n
exit_is "thlhp-make --offline -n" 0
has_line "-n: download of the new series, 'new series (0/3 instances)'" "$OUT" \
	"^download[[:space:]]+TH-01-AA ${new}[[:space:]]+new series \\(0/3 instances\\)"
has_line "-n: its validate, 'never validated'" "$OUT" "^validate[[:space:]]+TH-01-AA ${new}[[:space:]]+never validated\$"
has_line "-n: zip of data/zip/TH-01-AA__seriesCount3.zip, 'series added ...; replaces TH-01-AA__seriesCount2.zip'" \
	"$OUT" "^zip[[:space:]]+data/zip/TH-01-AA__seriesCount3\\.zip[[:space:]]+series added ${new}; replaces TH-01-AA__seriesCount2\\.zip\$"
count_is "-n lists those 3 targets and nothing else" "$OUT" "$STALE" 3
has_line "-n: '3 targets stale: 1 download, 1 validate, 1 zip'" "$OUT" '^3 targets stale: 1 download, 1 validate, 1 zip$'
run -t status
exit_is "thlhp-make -t status" 0
has_line "-t status: TH-01-AA has 3 series, 2 downloaded and validated, archive __seriesCount2, stale" "$OUT" \
	'^TH-01-AA +3 +2 +2 +TH-01-AA__seriesCount2\.zip +stale'
has_line "-t status: TH-02-BB is up to date" "$OUT" '^TH-02-BB +3 +3 +3 +TH-02-BB__seriesCount3\.zip +up to date$'
has_line "-t status: TH-03-CC is up to date" "$OUT" '^TH-03-CC +2 +2 +2 +TH-03-CC__seriesCount2\.zip +up to date$'
mv "$SRC.away" "$SRC"

run -j2 all
exit_is "thlhp-make all" 0
count_is "... runs one download, one validate and one zip job" "$OUT" "$RAN" 3
has_line "... the zip is TH-01-AA__seriesCount3.zip" "$OUT" '^\[[0-9]+/3\] zip +data/zip/TH-01-AA__seriesCount3\.zip '
check "TH-01-AA__seriesCount3.zip replaces TH-01-AA__seriesCount2.zip" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
ok "TH-01-AA__seriesCount3.zip holds its 9 instances, byte for byte" \
	zip_matches_source data/zip/TH-01-AA__seriesCount3.zip TH-01-AA
check "TH-02-BB's archive was not rewritten" "$(ident "$B")" "$idb"
check "TH-03-CC's archive was not rewritten" "$(ident "$C")" "$idc"
check "TH-02-BB's DICOM files were not rewritten" "$(file_state data/dicom/TH-02-BB)" "$dicom_b"
run -q
exit_is "thlhp-make -q after the rebuild" 0

# ---- PostgreSQL ------------------------------------------------------------

section "PostgreSQL: thlhp-make $OLD_REV builds everything"
pg_start
mkdir -p "$T/pg-proj" && cd "$T/pg-proj" && write_config "state.url=$PG_URL"
run_old -j2 all
exit_is "thlhp-make $OLD_REV all with [state] url = postgresql://..." 0
check "it made one archive per selected patient" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
check "the database has schema version $OLD_SCHEMA" "$(pg_sql 'SELECT version FROM schema_version' thlhp)" \
	"$OLD_SCHEMA"
check "... and no target table yet" \
	"$(pg_sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'target'" thlhp)" 0
old_zip=$(pg_sql "SELECT id || '|' || ar_path || '|' || ar_hash FROM patient ORDER BY id" thlhp)
files_before=$(file_state data)
tree_before=$(tree_state data)

section "PostgreSQL: this thlhp-make on the old database"
run -q
exit_is "thlhp-make -q on a schema-$OLD_SCHEMA database is refused" 2
has_line "... stderr says the state is older and to run \`thlhp-make query\` once" "$ERR" "$OLDER"
run -j2 all
exit_is "thlhp-make all on the old database" 0
check "... upgrades it to schema version $SCHEMA" "$(pg_sql 'SELECT version FROM schema_version' thlhp)" "$SCHEMA"
check "... its metadata table keeps headers as jsonb" \
	"$(pg_sql "SELECT data_type FROM information_schema.columns WHERE table_name = 'metadata' AND column_name = 'header'" thlhp)" jsonb
no_line "... and runs no download, validate or zip job" "$OUT" "$RAN"
has_line "... saying 'nothing to do: everything is up to date'" "$OUT" "$NOTHING"
check "... rewrites no file under data/ (inode, size, mtime to the ns)" "$(file_state data)" "$files_before"
check "... touches no folder under data/" "$(tree_state data)" "$tree_before"
check "target has one validate record per series and one zip record per patient" \
	"$(pg_sql 'SELECT stage, count(*) FROM target GROUP BY stage ORDER BY stage' thlhp)" \
	"$(printf '%s\n' 'validate|8' 'zip|3')"
check "each zip record is the archive the old state recorded (path and hash)" \
	"$(pg_sql "SELECT key || '|' || out_path || '|' || out_hash FROM target WHERE stage = 'zip' ORDER BY key" thlhp)" \
	"$old_zip"
run -q
exit_is "thlhp-make -q after the upgrade" 0
is_empty "-q prints nothing on stdout" "$OUT"
is_empty "-q prints nothing on stderr" "$ERR"
run -n
exit_is "thlhp-make -n after the upgrade" 0
no_line "-n lists no stale target" "$OUT" "$STALE"
has_line "-n: 'nothing to do: everything is up to date'" "$OUT" "$NOTHING"
run -j2 all
exit_is "thlhp-make all again" 0
no_line "... runs no job" "$OUT" "$RAN"
has_line "... nothing to do" "$OUT" "$NOTHING"
check "... rewrites nothing under data/" "$(tree_state data)" "$tree_before"

finish
