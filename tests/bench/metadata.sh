#!/usr/bin/env bash
# tests/bench/metadata.sh - the metadata stage: every instance's header as
# DICOM JSON in the state, one row each, for SQL.  100 patients x 10 series x
# 100 instances (100,000 small CT files, gen_tree.py --vary: pydicom's
# CT_small.dcm with per-series SliceThickness, ConvolutionKernel and per-slice
# positions; BENCH_SCALE=small: 5 patients) as a folder source (hard links,
# no network), the state in SQLite (the default, a file) and in PostgreSQL
# (a throwaway server on a unix socket, started as tests/pg.sh does).
#
# Each backend, RUNS rounds (default 3 here) interleaved, medians:
#   (a) thlhp-make -j2 validate     fresh state, no [metadata]: the query
#                                   (every header read once), the download
#                                   (hard links), validate
#   (b) thlhp-make -j2 metadata     fresh state, [metadata]: the same plus
#                                   the metadata stage; (b) - (a) is its cost
#   (c) the no-op rerun of (b)      walking the folder source, and --offline;
#                                   and the no-op of (a) for comparison
#   PostgreSQL only: (b) with synchronous_commit = on (its default; the
#   rows above run with it off, as durable as the SQLite state in WAL mode
#   with synchronous=NORMAL: a crash may lose the last commits, never
#   corrupts)
# with wall time, thlhp-make's CPU, the PostgreSQL server's CPU (backends
# ended during the run), peak RSS, and the state's size; then three SQL
# queries on the stored headers, in both (json_extract in SQLite, ->> and
# the GIN index's @> in PostgreSQL), and, for PostgreSQL, where its time
# goes: the same rows inserted server-side (INSERT ... SELECT) as text, as
# jsonb, as jsonb with the GIN index, one round trip (pgbench SELECT 1),
# and each statement's calls and execution time in the server in one run
# of (a) and of (b) (pg_stat_statements).
# Prints a markdown section on stdout; progress on stderr.
#
#   tests/bench/metadata.sh    # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
# shellcheck disable=SC2016  # backquotes in single quotes are markdown
RUNS=${RUNS:-3}   # its rounds are long: 3 unless RUNS is given
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
T0_ALL=$EPOCHREALTIME

bench_install time python3-pydicom sqlite3 postgresql
thlhp_binary

if [ "$BENCH_SCALE" = small ]; then
	NP=5 NS=10 NI=100
else
	NP=100 NS=10 NI=100
fi
N=$((NP * NS * NI))
commas() { printf '%s\n' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
TITLE="Metadata: $(commas "$N") headers in the state"
PATIENT=$(printf 'BP%06d' $(((NP + 1) / 2)))   # Q2's patient

SRC=$BENCH_DIR/meta-src-$NP-$NS-$NI
"$PY" "$BENCH/gen_tree.py" "$SRC" --patients "$NP" --series "$NS" --instances "$NI" --vary >&2 ||
	die "gen_tree.py failed for $SRC"

W=$BENCH_DIR/metadata-work
rm -rf "$W"
mkdir -p "$W/sqlite" "$W/pg" || die "cannot make $W"

# ---- PostgreSQL, as tests/pg.sh starts it ----------------------------------
# pg.sh wants tests/lib.sh's T (scratch), LOG, BGPIDS and say.
T=$W/pgserver LOG=$W/pgserver BGPIDS=
mkdir -p "$T"
say() { log "$*"; }
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$BENCH/../pg.sh"
cleanup() {
	local rc=$?
	if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then pg_stop; fi
	# pg.sh's failures exit 1; a benchmark's are 2.
	[ "$rc" -eq 1 ] && exit 2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pg_start
# pg.sh's server is for tests (fsync off).  Here: durable, as the SQLite
# state is (WAL, synchronous=NORMAL): WAL flushed by the WAL writer, not at
# each commit.  No autovacuum during the timed runs (it would land in the
# next one); VACUUM ANALYZE before the queries.  pg_stat_statements loaded,
# tracking nothing but in the one run of each that it is for.
$PG_AS tee -a "$PG_DATA/postgresql.conf" >/dev/null <<CONF
# tests/bench/metadata.sh
fsync = on
full_page_writes = on
synchronous_commit = off
autovacuum = off
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = none
CONF
pg_restart
PG_VERSION=$("$PG_BIN/postgres" --version | awk '{ print $3 }')
psql_thlhp() { "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U thlhp -d thlhp "$@"; }
# CPU seconds of the server's processes that ended (backends, reaped by the
# postmaster: its children's times).
CLK_TCK=$(getconf CLK_TCK)
pg_cpu() { awk -v hz="$CLK_TCK" '{ printf "%.2f\n", ($16 + $17) / hz }' "/proc/$PG_PID/stat"; }

# ---- the two projects ------------------------------------------------------

write_ini() { # write_ini FILE STATE_URL METADATA(0|1)
	cat >"$1" <<-EOF
	[pacs]
	protocol = folder
	path = $SRC

	[select]
	patient_id = BP*

	[output]
	dicom_dir = data/dicom
	zip_dir = data/zip

	[state]
	url = $2
	EOF
	[ "$3" = 0 ] || printf '\n[metadata]\n' >>"$1"
}
for on in 0 1; do
	ini=plain.ini
	[ "$on" = 1 ] && ini=meta.ini
	write_ini "$W/sqlite/$ini" "sqlite:.thlhp/state.db" "$on"
	write_ini "$W/pg/$ini" "$PG_URL" "$on"
done
SQLITE_DB=$W/sqlite/.thlhp/state.db

# fresh BACKEND : an empty state and no data/ (untimed), the disk quiet.
fresh() {
	rm -rf "$W/$1/data" "$W/$1/.thlhp"
	if [ "$1" = pg ]; then
		{ pg_sql "DROP DATABASE IF EXISTS thlhp" && pg_sql "CREATE DATABASE thlhp OWNER thlhp"; } ||
			die "cannot make database thlhp afresh"
	fi
	sync
	[ "$1" = pg ] && pg_sql CHECKPOINT
	return 0
}

# run BACKEND INI ARGS... : thlhp-make -v -f INI ARGS in that project,
# timed (time_cmd: WALL_LAST, CPU_LAST, RSS_LAST); PGCPU_LAST: the server's.
run() {
	local b=$1 ini=$2 c0=
	shift 2
	cd "$W/$b" || die "no $W/$b"
	[ "$b" = pg ] && c0=$(pg_cpu)
	time_cmd 0 "$THLHP" -f "$ini" -v "$@"
	PGCPU_LAST=
	if [ "$b" = pg ]; then
		sleep 0.5   # its backend ends after it, and is reaped
		PGCPU_LAST=$(sub "$(pg_cpu)" "$c0")
	fi
	cd "$W" || exit 2
}

# sql BACKEND SQL : one value from the state
sql() {
	if [ "$1" = pg ]; then psql_thlhp -c "$2"; else sqlite3 "$SQLITE_DB" "$2"; fi
}

# What a run did: N instances recorded, and for (b) N rows of metadata.
check_built() { # check_built BACKEND META(0|1)
	local n
	n=$(sql "$1" "SELECT count(*) FROM instance")
	[ "$n" = "$N" ] || die "$1: $n instances in the state after the run, not $N (see $LAST_LOG)"
	[ "$2" = 1 ] || return 0
	n=$(sql "$1" "SELECT count(*) FROM metadata")
	[ "$n" = "$N" ] || die "$1: $n metadata rows after the run, not $N (see $LAST_LOG)"
	grep -q "jobs done.*$((NP * NS)) metadata" "$LAST_LOG" ||
		die "$1: the run did not say $((NP * NS)) metadata jobs (see $LAST_LOG)"
}
check_noop() {
	{ grep -q 'nothing to do' "$LAST_LOG" && ! grep -q 'jobs done' "$LAST_LOG"; } ||
		die "the rerun ran jobs: it was no no-op (see $LAST_LOG)"
}

# State sizes, bytes: the whole state, and the metadata table with its indexes.
state_size() {
	if [ "$1" = pg ]; then
		pg_sql "SELECT pg_database_size('thlhp')"
	else
		cat "$SQLITE_DB" "$SQLITE_DB-wal" 2>/dev/null | wc -c
	fi
}
meta_size() {
	if [ "$1" = pg ]; then
		psql_thlhp -c "SELECT pg_total_relation_size('metadata')"
	else
		sqlite3 "$SQLITE_DB" "SELECT sum(pgsize) FROM dbstat WHERE name IN ('metadata', 'sqlite_autoindex_metadata_1')"
	fi
}

# The metadata table's parts: "table index [GIN]", bytes.
meta_parts() {
	if [ "$1" = pg ]; then
		psql_thlhp -F' ' -c "SELECT pg_table_size('metadata'), pg_relation_size('metadata_pkey'), pg_relation_size('metadata_header')"
	else
		sqlite3 "$SQLITE_DB" "SELECT (SELECT sum(pgsize) FROM dbstat WHERE name = 'metadata'), (SELECT sum(pgsize) FROM dbstat WHERE name = 'sqlite_autoindex_metadata_1')" | tr '|' ' '
	fi
}

# ---- the timed runs --------------------------------------------------------

declare -A WT CT PT RS SZ
add() { WT[$1]+=" $WALL_LAST" CT[$1]+=" $CPU_LAST" PT[$1]+=" ${PGCPU_LAST:-0}" RS[$1]=$RSS_LAST; }
NREAD=

# Not timed: one pass of each, so that the binary, the source tree and the
# server are warm, and a run that fails does so before the waiting.
log "warm-up: (b) in SQLite and PostgreSQL"
for b in sqlite pg; do
	fresh "$b"
	[ "$b" = pg ] && EMPTY_PG=$(state_size pg)
	run "$b" meta.ini -j2 metadata
	check_built "$b" 1
done

wait_idle "$TITLE"
for ((r = 1; r <= RUNS; r++)); do
	for b in sqlite pg; do
		log "round $r of $RUNS, $b: (a) validate"
		fresh "$b"
		run "$b" plain.ini -j2 validate
		check_built "$b" 0
		add "$b.a"
		SZ[$b.a]=$(state_size "$b")
		run "$b" plain.ini -j2 validate
		check_noop
		add "$b.noop_a"
		log "round $r of $RUNS, $b: (b) metadata"
		fresh "$b"
		run "$b" meta.ini -j2 metadata
		check_built "$b" 1
		add "$b.b"
		SZ[$b.b]=$(state_size "$b") SZ[$b.meta]=$(meta_size "$b") SZ[$b.parts]=$(meta_parts "$b")
		NREAD+=" $(awk '/^\[[0-9]+\/[0-9]+\] metadata / { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^headers?$/) s += $i } END { print s + 0 }' "$LAST_LOG")"
		run "$b" meta.ini -j2 metadata
		check_noop
		add "$b.noop_b"
		run "$b" meta.ini --offline -j2 metadata
		check_noop
		add "$b.noop_off"
	done
	log "round $r of $RUNS, pg: (b) with synchronous_commit = on"
	pg_sql "ALTER ROLE thlhp SET synchronous_commit = on" >/dev/null
	fresh pg
	run pg meta.ini -j2 metadata
	pg_sql "ALTER ROLE thlhp RESET synchronous_commit" >/dev/null
	check_built pg 1
	add pg.bsync
done
load=$(load_note)
for k in "${!WT[@]}"; do log "$k: wall${WT[$k]}; CPU${CT[$k]}; server CPU${PT[$k]}"; done

# ---- the queries -----------------------------------------------------------
#
# Each in one client session: a warm-up, then RUNS times, the client's own
# timer (sqlite3 .timer: the statement; psql \timing: the statement's round
# trip), output to /dev/null.  Both states hold the same N rows (the last
# round's (b)).

Q_LABEL=(
	"Q1: instances with SliceThickness <= 1 mm (count, every row)"
	"Q2: the CT instances of one patient ($PATIENT), with their ConvolutionKernel"
	"Q3: the series reconstructed with the BONE kernel (count, every row)"
)
Q_SQLITE=(
	"SELECT count(*) FROM metadata WHERE json_extract(header, '\$.\"00180050\".Value[0]') <= 1;"
	"SELECT sop_uid, json_extract(header, '\$.\"00181210\".Value[0]') FROM metadata WHERE patient_id = '$PATIENT' AND json_extract(header, '\$.\"00080060\".Value[0]') = 'CT';"
	"SELECT count(DISTINCT series_uid) FROM metadata WHERE json_extract(header, '\$.\"00181210\".Value[0]') = 'BONE';"
)
Q_PG=(
	"SELECT count(*) FROM metadata WHERE (header->'00180050'->'Value'->>0)::numeric <= 1;"
	"SELECT sop_uid, header->'00181210'->'Value'->>0 FROM metadata WHERE patient_id = '$PATIENT' AND header->'00080060'->'Value'->>0 = 'CT';"
	"SELECT count(DISTINCT series_uid) FROM metadata WHERE header->'00181210'->'Value'->>0 = 'BONE';"
)
# The same with jsonb containment, which the GIN index on header serves
# (Q1 is a range: no containment form).
Q_GIN=(
	""
	"SELECT sop_uid, header->'00181210'->'Value'->>0 FROM metadata WHERE header @> '{\"00100020\": {\"Value\": [\"$PATIENT\"]}, \"00080060\": {\"Value\": [\"CT\"]}}';"
	"SELECT count(DISTINCT series_uid) FROM metadata WHERE header @> '{\"00181210\": {\"Value\": [\"BONE\"]}}';"
)
Q_FLOOR="SELECT 1;"

q_sqlite() { # q_sqlite SQL : the median of RUNS timed runs, seconds
	local k
	{ printf '.timer on\n.output /dev/null\n'; for ((k = 0; k <= RUNS; k++)); do printf '%s\n' "$1"; done; } |
		sqlite3 "$SQLITE_DB" >"$W/q.out" 2>&1 || { cat "$W/q.out" >&2; die "sqlite3 failed: $1"; }
	# shellcheck disable=SC2046
	median $(awk '/^Run Time:/ { print $4 }' "$W/q.out" | tail -n +2)
}
q_pg() {
	local k
	{ printf '\\timing on\n\\o /dev/null\n'; for ((k = 0; k <= RUNS; k++)); do printf '%s\n' "$1"; done; } |
		psql_thlhp >"$W/q.out" 2>&1 || { cat "$W/q.out" >&2; die "psql failed: $1"; }
	# shellcheck disable=SC2046
	median $(awk '/^Time:/ { printf "%.6f\n", $2 / 1000 }' "$W/q.out" | tail -n +2)
}
# q_rows BACKEND SQL : the answer of a count, else the number of rows
q_rows() {
	local out
	out=$(sql "$1" "$2") || die "$1 failed: $2"
	case $2 in "SELECT count("*) printf '%s\n' "$out" ;; *) printf '%s\n' "$out" | grep -c . ;; esac
}

log "VACUUM ANALYZE metadata (PostgreSQL; not timed)"
pg_sql "VACUUM ANALYZE metadata" thlhp >/dev/null
declare -A QS QP QG QR
for i in "${!Q_LABEL[@]}"; do
	QR[$i]=$(q_rows sqlite "${Q_SQLITE[$i]}")
	a=$(q_rows pg "${Q_PG[$i]}")
	[ "$a" = "${QR[$i]}" ] || die "${Q_LABEL[$i]}: SQLite says ${QR[$i]}, PostgreSQL $a"
	if [ -n "${Q_GIN[$i]}" ]; then
		a=$(q_rows pg "${Q_GIN[$i]}")
		[ "$a" = "${QR[$i]}" ] || die "${Q_LABEL[$i]}: ->> says ${QR[$i]}, @> $a"
		QG[$i]=$(q_pg "${Q_GIN[$i]}")
		psql_thlhp -c "EXPLAIN ${Q_GIN[$i]}" | grep -q 'Index Scan on metadata_header' &&
			QG[$i,idx]="index" || QG[$i,idx]="no index (seq scan)"
	fi
	QS[$i]=$(q_sqlite "${Q_SQLITE[$i]}")
	QP[$i]=$(q_pg "${Q_PG[$i]}")
	log "${Q_LABEL[$i]}: ${QR[$i]}; SQLite $(fmt_s "${QS[$i]}") s, PostgreSQL $(fmt_s "${QP[$i]}") s${QG[$i]:+, @> $(fmt_s "${QG[$i]}") s}"
done
# Q1's answer is known: two series in five have slices of at most 1 mm.
[ $((NS % 5)) -ne 0 ] || [ "${QR[0]}" = $((N * 2 / 5)) ] ||
	die "Q1 found ${QR[0]} instances, not $((N * 2 / 5))"
[ "${QR[1]}" = $((NS * NI)) ] || die "Q2 found ${QR[1]} instances, not $((NS * NI))"
QS_FLOOR=$(q_sqlite "$Q_FLOOR") QP_FLOOR=$(q_pg "$Q_FLOOR")

# ---- where PostgreSQL's time goes ------------------------------------------
#
# The server alone: the N stored headers, as text, inserted again by one
# INSERT ... SELECT (no client, no round trips) into a table like metadata
# (1) with header as text, (2) as jsonb, (3) as jsonb with the GIN index,
# (4) as jsonb with a GIN index of the other operator class, jsonb_path_ops
# (smaller; serves @> but not the key operators), and (5) metadata's GIN
# index built afterwards on (2).  RUNS times, medians.
log "PostgreSQL, server side: the same rows by INSERT ... SELECT"
pg_sql "CREATE TABLE split_src AS SELECT series_uid, sop_uid, patient_id, study_uid, header::text AS h FROM metadata" thlhp
declare -A SP
for ((r = 1; r <= RUNS; r++)); do
	"$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U postgres -d thlhp >"$W/split.out" 2>&1 <<-'EOF' ||
	DROP TABLE IF EXISTS split_text, split_jsonb, split_gin, split_path;
	CREATE TABLE split_text (series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL, patient_id TEXT NOT NULL,
	 study_uid TEXT NOT NULL, header TEXT NOT NULL, PRIMARY KEY (series_uid, sop_uid));
	CREATE TABLE split_jsonb (series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL, patient_id TEXT NOT NULL,
	 study_uid TEXT NOT NULL, header JSONB NOT NULL, PRIMARY KEY (series_uid, sop_uid));
	CREATE TABLE split_gin (LIKE metadata INCLUDING ALL);
	CREATE TABLE split_path (LIKE split_jsonb INCLUDING ALL);
	CREATE INDEX ON split_path USING GIN (header jsonb_path_ops);
	CHECKPOINT;
	\timing on
	INSERT INTO split_text SELECT series_uid, sop_uid, patient_id, study_uid, h FROM split_src;
	INSERT INTO split_jsonb SELECT series_uid, sop_uid, patient_id, study_uid, h::jsonb FROM split_src;
	INSERT INTO split_gin SELECT series_uid, sop_uid, patient_id, study_uid, h::jsonb FROM split_src;
	INSERT INTO split_path SELECT series_uid, sop_uid, patient_id, study_uid, h::jsonb FROM split_src;
	CREATE INDEX ON split_jsonb USING GIN (header);
	EOF
		{ cat "$W/split.out" >&2; die "the server-side inserts failed"; }
	k=0
	while read -r t; do
		SP[$k]+=" $t"
		k=$((k + 1))
	done < <(awk '/^Time:/ { printf "%.6f\n", $2 / 1000 }' "$W/split.out")
	[ "$k" = 5 ] || die "psql printed $k timings, not 5: see $W/split.out"
done
for k in 0 1 2 3 4; do
	# shellcheck disable=SC2086
	SP[$k]=$(median ${SP[$k]})
done
SPLIT_GIN=$(psql_thlhp -c "SELECT pg_indexes_size('split_gin') - pg_relation_size('split_gin_pkey')")
SPLIT_PATH=$(psql_thlhp -c "SELECT pg_indexes_size('split_path') - pg_relation_size('split_path_pkey')")
pg_sql "DROP TABLE split_src, split_text, split_jsonb, split_gin, split_path" thlhp

# One round trip on the socket, as thlhp-make makes one per row: pgbench,
# a prepared SELECT 1 per transaction, N of them.
log "PostgreSQL: pgbench, $N x SELECT 1"
printf 'SELECT 1;\n' >"$W/select1.sql"
RTT=$("$PG_BIN/pgbench" -n -M prepared -f "$W/select1.sql" -t "$N" -h "$PG_DIR" -U thlhp thlhp 2>&1 |
	awk '/^latency average/ { print $4 / 1000 }')
[ -n "$RTT" ] || die "pgbench printed no latency"

# Inside the server: each statement's calls and execution time, in one more
# run of (a) and of (b) (not timed; pg_stat_statements tracks thlhp's
# sessions in these alone).  Each call of a statement is a round trip.
pg_sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
declare -A PSS
for run in a:plain.ini:validate b:meta.ini:metadata; do
	IFS=: read -r k ini target <<<"$run"
	log "pg_stat_statements of ($k)"
	fresh pg
	pg_sql "SELECT pg_stat_statements_reset()" >/dev/null
	pg_sql "ALTER ROLE thlhp SET pg_stat_statements.track = top" >/dev/null
	run pg "$ini" -j2 "$target"
	pg_sql "ALTER ROLE thlhp RESET pg_stat_statements.track" >/dev/null
	check_built pg "$([ "$k" = b ] && echo 1 || echo 0)"
	# calls, seconds, and the statement (its first words)
	pg_sql "SELECT s.calls, round((s.total_exec_time / 1000)::numeric, 3),
		regexp_replace(left(s.query, 60), '\s+', ' ', 'g')
		FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
		WHERE r.rolname = 'thlhp' ORDER BY s.total_exec_time DESC" >"$W/pss-$k.out" ||
		die "reading pg_stat_statements failed"
	PSS[$k.calls]=$(awk -F'|' '{ s += $1 } END { print s + 0 }' "$W/pss-$k.out")
	PSS[$k.secs]=$(awk -F'|' '{ s += $2 } END { printf "%.3f\n", s }' "$W/pss-$k.out")
done
PSS[ins.calls]=$(awk -F'|' '$3 ~ /^INSERT INTO metadata/ { print $1 }' "$W/pss-b.out")
PSS[ins.secs]=$(awk -F'|' '$3 ~ /^INSERT INTO metadata/ { print $2 }' "$W/pss-b.out")
[ "${PSS[ins.calls]}" = "$N" ] || die "pg_stat_statements: ${PSS[ins.calls]:-no} INSERT INTO metadata, not $N"

# ---- the report ------------------------------------------------------------

# shellcheck disable=SC2086  # the lists are words
m() { median ${WT[$1]}; }
# shellcheck disable=SC2086
mc() { median ${CT[$1]}; }
# shellcheck disable=SC2086
mp() { median ${PT[$1]}; }
us() { awk -v s="$1" -v n="$N" 'BEGIN { u = s / n * 1e6; printf (u < 10 ? "%.1f µs" : "%.0f µs"), u }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
per() { awk -v b="$1" -v n="$N" 'BEGIN { printf "%.0f B", b / n }'; }
ms() { awk -v s="$1" 'BEGIN { if (s == 0) printf "< 1 ms"; else if (s < 0.01) printf "%.2f ms", s * 1000; else if (s < 1) printf "%.1f ms", s * 1000; else printf "%.2f s", s }'; }
declare -A BLABEL=([sqlite]="SQLite" [pg]="PostgreSQL $PG_VERSION")

row() { # row KEY LABEL SIZE : a table row from the medians of KEY
	local k=$1 pg=-
	# shellcheck disable=SC2086
	[ "${k%%.*}" = pg ] && pg="$(median ${PT[$k]} | awk '{ printf "%.2f", $1 }') s"
	printf '| %s | %s | %s s | %s | %s s | %s | %s MB | %s |\n' "$2" "${BLABEL[${k%%.*}]}" \
		"$(fmt_s "$(m "$k")")" "$(us "$(m "$k")")" "$(mc "$k")" "$pg" "$((${RS[$k]} / 1024))" "$3"
}

echo "## $TITLE"
echo
echo "$(commas "$N") instances ($NP patients x $NS series x $NI instances) of small CT files"
echo "($(stat -c %s "$SRC/BP000001/se1/1.dcm") bytes each, $(sqlite3 "$SQLITE_DB" "SELECT avg(length(header)) FROM metadata" | awk '{ printf "%.0f", $1 }') bytes of DICOM JSON a header) in a folder source;"
echo "each run below starts from an empty state and no downloaded files"
echo "(but the no-op rows, reruns of the run above them). Median of $RUNS rounds,"
echo "SQLite and PostgreSQL interleaved."
echo
echo "| run | state | median | per instance | thlhp-make CPU | PostgreSQL CPU | peak RSS | state size (per instance) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for b in sqlite pg; do
	# shellcheck disable=SC2086
	row "$b.a" '(a) `thlhp-make -j2 validate`, no `[metadata]`' "$(mb "$(median ${SZ[$b.a]})")"
	row "$b.b" '(b) `thlhp-make -j2 metadata`, `[metadata]`' "$(mb "${SZ[$b.b]}")"
	d=$(sub "$(m "$b.b")" "$(m "$b.a")")
	dc=$(sub "$(mc "$b.b")" "$(mc "$b.a")")
	dp=-
	[ "$b" = pg ] && dp="$(awk -v a="$(mp "$b.b")" -v c="$(mp "$b.a")" 'BEGIN { printf "%.2f", a - c }') s"
	printf '| **the metadata stage: (b) - (a)** | %s | **%s s** | **%s** | %s s | %s | | table + indexes: %s (**%s**) |\n' \
		"${BLABEL[$b]}" "$(fmt_s "$d")" "$(us "$d")" "$(awk -v a="$dc" 'BEGIN { printf "%.2f", a }')" "$dp" \
		"$(mb "${SZ[$b.meta]}")" "$(per "${SZ[$b.meta]}")"
	[ "$b" = pg ] && row pg.bsync '(b) with `synchronous_commit = on`' ""
	row "$b.noop_b" '(c) no-op rerun of (b): `thlhp-make -j2 metadata`' ""
	row "$b.noop_off" '(c) the same `--offline`' ""
	row "$b.noop_a" 'no-op rerun of (a): `thlhp-make -j2 validate`' ""
done
echo
echo "Queries on the stored headers (the last round's (b) state: the same $(commas "$N") rows in both),"
printf '%s\n' "each timed by its client in one session (\`sqlite3\` \`.timer\`, \`psql\` \`\\timing\`), median of $RUNS after a warm-up:"
echo
echo "| query | rows | SQLite, \`json_extract\` | PostgreSQL, \`->>\` | PostgreSQL, \`@>\` (GIN index) |"
echo "|---|---:|---:|---:|---:|"
for i in "${!Q_LABEL[@]}"; do
	g=-
	[ -n "${Q_GIN[$i]}" ] && g="$(ms "${QG[$i]}") (${QG[$i,idx]})"
	printf '| %s | %s | %s | %s | %s |\n' "${Q_LABEL[$i]}" "$(commas "${QR[$i]}")" "$(ms "${QS[$i]}")" "$(ms "${QP[$i]}")" "$g"
done
printf '| `SELECT 1` (the client'"'"'s floor) | 1 | %s | %s | |\n' "$(ms "$QS_FLOOR")" "$(ms "$QP_FLOOR")"
echo
echo "The SQL:"
echo
for i in "${!Q_LABEL[@]}"; do
	echo "- Q$((i + 1)), SQLite: \`${Q_SQLITE[$i]}\`"
	echo "  PostgreSQL: \`${Q_PG[$i]}\`"
	[ -z "${Q_GIN[$i]}" ] || echo "  with \`@>\`: \`${Q_GIN[$i]}\`"
done
echo

# Where the time goes, from the numbers above.
pa=$(m pg.a) pb=$(m pg.b) sa=$(m sqlite.a) sb=$(m sqlite.b)
pd=$(sub "$pb" "$pa") sd=$(sub "$sb" "$sa")
pdc=$(sub "$(mc pg.b)" "$(mc pg.a)") pds=$(sub "$(mp pg.b)" "$(mp pg.a)")
st_meta=$((${PSS[b.calls]} - ${PSS[a.calls]}))
echo "Where PostgreSQL's time goes (the metadata stage: $(fmt_s "$pd") s, against $(fmt_s "$sd") s in SQLite, $(awk -v a="$pd" -v b="$sd" 'BEGIN { printf "%.1fx", a / b }')):"
echo
echo "- the stage's CPU ((b) - (a)): the server $(awk -v a="$pds" 'BEGIN { printf "%.2f", a }') s ($(us "$pds"), $(awk -v a="$pds" -v d="$pd" 'BEGIN { printf "%.0f%%", a / d * 100 }') of the stage's wall time), thlhp-make $(awk -v a="$pdc" 'BEGIN { printf "%.2f", a }') s ($(us "$pdc"); in SQLite $(us "$(sub "$(mc sqlite.b)" "$(mc sqlite.a)")"), the insert included). The rows go over one connection, one \`INSERT\` a row, each a round trip, in the series' job's finish on the scheduler's thread (one transaction a series): the server's share is one backend, one core"
echo "- the server alone, the same $(commas "$N") rows by one \`INSERT ... SELECT\` (median of $RUNS): as text $(fmt_s "${SP[0]}") s ($(us "${SP[0]}")), as jsonb $(fmt_s "${SP[1]}") s ($(us "${SP[1]}")), as jsonb with the GIN index (as \`metadata\`) $(fmt_s "${SP[2]}") s ($(us "${SP[2]}")); the same GIN index built afterwards on the jsonb table $(fmt_s "${SP[4]}") s. So of the server's part, parsing the jsonb is about $(us "$(sub "${SP[1]}" "${SP[0]}")") an instance and the GIN index (every key and every value of the header) $(us "$(sub "${SP[2]}" "${SP[1]}")"). With a \`jsonb_path_ops\` GIN index instead (serves \`@>\`, not the key operators \`?\`, \`?|\`, \`?&\`): $(fmt_s "${SP[3]}") s ($(us "${SP[3]}"), the index $(us "$(sub "${SP[3]}" "${SP[1]}")")), index $(mb "$SPLIT_PATH") against $(mb "$SPLIT_GIN")"
echo "- the statements (pg_stat_statements, one run of each): $(commas "${PSS[b.calls]}") in a (b) run, $(commas "${PSS[a.calls]}") in an (a) run: the stage's $(commas "$st_meta"), $(awk -v a="$st_meta" -v n="$N" 'BEGIN { printf "%.2f", a / n }') an instance (an \`INSERT\` a row; a \`DELETE\`, the target record, \`BEGIN\` and \`COMMIT\` a series), each a round trip; their execution in the server: $(fmt_s "${PSS[b.secs]}") s in (b), $(fmt_s "${PSS[a.secs]}") s in (a); \`INSERT INTO metadata\` alone $(fmt_s "${PSS[ins.secs]}") s, $(us "${PSS[ins.secs]}") a row. A round trip on the unix socket (pgbench, a prepared \`SELECT 1\` a transaction) takes $(awk -v s="$RTT" 'BEGIN { printf "%.0f µs", s * 1e6 }'): $(awk -v s="$RTT" -v n="$st_meta" 'BEGIN { printf "%.1f s", s * n }') for the stage's"
echo "- commits: with \`synchronous_commit = on\` (PostgreSQL's default; a WAL flush at every commit, one a series and stage) (b) takes $(fmt_s "$(m pg.bsync)") s, $(fmt_s "$(sub "$(m pg.bsync)" "$pb")") s more"
echo "- the statements of (b) that took the server longest:"
echo
echo "  | statement | calls | server s | µs a call |"
echo "  |---|---:|---:|---:|"
head -n 6 "$W/pss-b.out" | awk -F'|' '{ printf "  | `%s...` | %d | %.2f | %.0f |\n", $3, $1, $2, $2 / $1 * 1e6 }' 
echo
echo "Notes:"
echo
echo "- The files: \`tests/bench/gen_tree.py --vary\`: pydicom's \`CT_small.dcm\` without private elements, 8x8 pixels, its own UIDs, and per series SeriesNumber, SeriesDescription, SliceThickness and SpacingBetweenSlices (0.625, 1, 1.25, 2.5 or 5 mm), ConvolutionKernel (STANDARD, BONE, LUNG, SOFT), per instance InstanceNumber, ImagePositionPatient and SliceLocation. Folder source: the query reads each new file's header once, the download hard-links; \`[metadata]\` with its default \`max_value_bytes = 4096\` (Pixel Data and longer values left out)."
# shellcheck disable=SC2086
nread=$(printf '%s\n' $NREAD | sort -n | tail -1)
echo "- The metadata stage read $nread headers itself in the worst round (validate hands over what it parsed: 0 means every header was parsed once, by validate)."
echo "- Wall time around \`/usr/bin/time -v\` (peak RSS; CPU: thlhp-make's user + system). PostgreSQL CPU: user + system of the server processes that ended during the run (the postmaster's children's times: the run's backend), after a 0.5 s wait for it to be reaped."
# shellcheck disable=SC2086  # the parts are words
echo "- State size: SQLite: \`state.db\` (with its \`-wal\`, if any) after the run; the metadata table with its primary key from \`dbstat\`: $(set -- ${SZ[sqlite.parts]}; echo "rows $(mb "$1") ($(per "$1") an instance; the JSON as text), primary key $(mb "$2")"). PostgreSQL: \`pg_database_size('thlhp')\` (the empty database alone: $(mb "$EMPTY_PG")); the metadata table \`pg_total_relation_size('metadata')\`: $(set -- ${SZ[pg.parts]}; echo "heap and TOAST $(mb "$1") ($(per "$1") an instance: jsonb, compressed by TOAST), primary key $(mb "$2"), GIN index $(mb "$3") ($(per "$3") an instance)")."
echo "- PostgreSQL $PG_VERSION started as \`tests/pg.sh\` does (initdb, unix socket only, in \`$T\`), but durable: \`fsync = on\`, \`full_page_writes = on\`, \`synchronous_commit = off\` (the rows but one; as safe as the SQLite state: WAL, synchronous=NORMAL); \`autovacuum = off\` (it would land in the next run); \`VACUUM ANALYZE metadata\` before the queries; other settings the defaults (\`shared_buffers\` 128 MB, \`max_wal_size\` 1 GB). A fresh state is \`DROP DATABASE\`, \`CREATE DATABASE\`, \`CHECKPOINT\`, not timed."
echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), $THLHP; commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$TOP" diff --quiet HEAD -- src rules state source 2>/dev/null || echo ' plus uncommitted changes'); SQLite $(sqlite3 --version | awk '{ print $1 }') (the \`sqlite3\` shell)."
echo "- Machine: $(machine). The $load."
echo "- Rerun: \`tests/bench/metadata.sh\` (\`BENCH_SCALE=small\`: 5 patients; \`THLHP\`, \`BENCH_DIR\`, \`RUNS\`: see \`tests/bench/README.md\`)."
echo "- Scale: BENCH_SCALE=$BENCH_SCALE; the source tree in $SRC. The whole script took $(awk -v s="$(sub "$EPOCHREALTIME" "$T0_ALL")" 'BEGIN { printf "%.0f s", s }') (generating the files included when they were not cached)."
