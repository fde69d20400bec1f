#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-state-nonsense: a state database edited by hand into nonsense, or not a
# database at all.  Every run ends with exit 0 (what is nonsense is
# ignored, checked again on disk and rebuilt) or exit 2 with one clear line
# naming the state; never a crash, never a file touched outside the outputs.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run" 0
cp .thlhp/state.db "$LOG/good.db"
ref=$(zip_names)
touch "$LOG/outside"
outside=$(ident "$LOG/outside")

# edit SQL DESC WANT : the good state with SQL applied, then all and -q.
# WANT is "ok" (all exits 0 and the archives are right) or "refused" (exit 2
# with a message naming [state] url).
edit() {
	local sql=$1 d=$2 want=$3
	rm -f .thlhp/state.db-wal .thlhp/state.db-shm
	cp "$LOG/good.db" .thlhp/state.db
	sqlite3 .thlhp/state.db "$sql" 2>>"$LOG/sqlite3.err" || { fail "$d: sqlite3 could not apply the edit"; return; }
	run -q
	case $RC in 0|1|2) pass "$d: -q ends normally (exit $RC)" ;; *) fail "$d: -q crashed (exit $RC)"; show_run ;; esac
	run -j2 all
	if [ "$want" = ok ]; then
		exit_is "$d: all" 0
		check "$d: the same archives" "$(zip_names)" "$ref"
		ok "$d: each holds its patient's instances" archives_match
	else
		exit_is "$d: all is refused" 2
		count_is "$d: one line on stderr, naming [state] url" "$ERR" '\[state\] url: ' 1
	fi
	no_line "$d: no sanitizer or runtime error" "$ERR" 'runtime error|Sanitizer|Assertion'
}

section "nonsense values"
edit "UPDATE series SET expected = 'abc'" "expected instances not a number" ok
edit "UPDATE series SET expected = -5, ninst = 99999999999999999999" "counts negative or past 64 bits" ok
edit "UPDATE series SET set_sig = 'zz'; UPDATE target SET input_sig = 'not hex'" "signatures not hex" ok
edit "UPDATE instance SET hash = 'nothex', size = -1, mtime = 'x'" "instance rows garbled" ok
edit "UPDATE series SET uid = '../../../etc' WHERE rowid = (SELECT min(rowid) FROM series)" "a series UID that is a path" ok
edit "UPDATE patient SET id = '%zz' WHERE id = 'TH-02-BB'" "a patient id that does not decode" ok
edit "UPDATE target SET out_path = '$LOG/outside' WHERE stage = 'zip'" "an archive path outside zip_dir" ok
check "the file the archive record pointed at is untouched" "$(ident "$LOG/outside")" "$outside"
edit "UPDATE target SET detail = NULL, settings_sig = NULL, out_size = -1 WHERE stage = 'zip'" "an archive record with holes" ok
edit "DELETE FROM instance" "the hash index emptied" ok
edit "INSERT INTO lease VALUES ('zip:TH-01-AA', 'someone 1 x', 99999999999999, 7)" "a stray claim" ok

section "a broken schema"
edit "UPDATE schema_version SET version = 'x'" "schema version not a number" refused
has_line "... the message says what to do" "$ERR" 'invalid schema version but holds tables: edited by hand\? Move it away'
edit "DELETE FROM schema_version" "no schema version" refused
edit "DROP TABLE series" "a table gone" refused
has_line "... the message names the state file and the table" "$ERR" '\.thlhp/state\.db: .*no such table: series'

section "not a database at all"
for kind in text random; do
	rm -f .thlhp/state.db-wal .thlhp/state.db-shm
	if [ "$kind" = text ]; then echo "this is not a database" >.thlhp/state.db
	else head -c 8192 /dev/urandom >.thlhp/state.db; fi
	for args in -q all; do
		run $args
		exit_is "a $kind file as the state: $args" 2
		has_line "$kind, $args: the message names the file and says it is not a database" "$ERR" \
			'\.thlhp/state\.db: .*(not a database|file is encrypted)'
	done
done
check "the archives were never touched by the refused runs" "$(zip_names)" "$ref"

finish
