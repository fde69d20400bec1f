#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-workers: several thlhp-make processes share one PostgreSQL state and one
# output folder (the shared storage of a multi-host site), against a real
# PACS (Orthanc) behind tests/dimseproxy.py, which logs every C-STORE it
# carries.  Each job is claimed by one worker with a lease:
#  - three `-j2 all` workers at once: correct archives, no SOP instance
#    retrieved twice, each archive built by exactly one worker;
#  - the role split: two `download` workers and a `zip` worker at once;
#    then `--offline zip` builds what the downloaders fetched without
#    asking the PACS anything;
#  - a worker killed (-9) mid-download: the others wait for its lease to
#    lapse, take its jobs over, and fetch only what it had not written;
#  - a worker frozen (SIGSTOP) past its lease: another finishes its job;
#    thawed, its result is refused by the fence, nothing counted twice;
#  - a worker frozen inside a transaction, holding a row another must
#    write: the server ends the transaction after the lease, the other
#    finishes, the thawed one reconnects and records nothing twice;
#  - PostgreSQL restarted mid-run: the worker reconnects and completes.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

RETRIEVE=get
for i in 1 2 3 4 5 6; do
	gen --patient "TH-0$i-WK" --studies 1 --series 2 --instances 5 --seed "w$i"
done
ALL=$(awk -F'\t' '$1 == "instance"' "$MANIFEST" | wc -l)
NPAT=6

pg_start
orthanc_start
orthanc_upload "$SRC"
PX_PACS=$(free_port)
proxy_start "pacs:$PX_PACS:127.0.0.1:$OR_DICOM"

# project NAME : a fresh project dir and database NAME; the config points
# at both.  Every worker of a scenario runs in it: one shared disk.
project() {
	pg_sql "CREATE DATABASE $1 OWNER thlhp" || { say "FAIL: CREATE DATABASE $1"; exit 1; }
	mkdir -p "$T/$1" && cd "$T/$1" || exit 1
	DBURL="postgresql:///$1?host=$PG_DIR&user=thlhp"
	write_dimse_config "pacs.port=$PX_PACS" "state.url=$DBURL" state.lease=3 \
		'select.patient_id=TH-*' "$@"
	MARK=$(log_mark)
}
# worker N ARGS... : start thlhp-make ARGS in the background as worker N
# (own process group, like a process on its own host); output in wN.out/err.
declare -A WPID
worker() {
	local n=$1; shift
	setsid "$THLHP" "$@" >"w$n.out" 2>"w$n.err" </dev/null &
	WPID[$n]=$!
	BGPIDS="$BGPIDS $!"
}
# worker_exit N DESC WANT : wait for worker N (at most 120 s, then it is
# killed: exit 124) and check its exit status.
worker_exit() {
	local i p=${WPID[$1]}
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		kill -9 -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; RC=124
	else
		wait "$p"; RC=$?
	fi
	LASTCMD="worker $1" LASTOUT=$PWD/w$1.out LASTERR=$PWD/w$1.err
	exit_is "$2" "$3"
}
# sent_since N : C-STORE requests carried after proxy log line N, one UID a line.
sent_since() {
	tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk '$4 == "C-STORE-RQ" { print $5 }' | sort
}
# built_by FILES... : archive names the workers' outputs say they built.
built_by() {
	cat "$@" | sed -n 's|^\[[0-9]*/[0-9]*\] zip  *data/zip/\([^ ]*\.zip\)  .*|\1|p' | sort
}
expected_zips() {
	for p in $(patients); do printf '%s__seriesCount2.zip\n' "$p"; done | sort
}
# leases_held : claims the database still shows as held.
leases_held() { pg_sql "SELECT count(*) FROM lease WHERE owner <> ''" "$1"; }

section "three -j2 all workers at once"
project w3 pacs.max_requests_per_minute=300
for n in 1 2 3; do worker "$n" -j2 all; done
for n in 1 2 3; do worker_exit "$n" "worker $n: thlhp-make -j2 all" 0; done
check "one archive per patient" "$(zip_names)" "$(expected_zips)"
ok "every archive holds its patient's instances, same DICOM content" archives_match
check "all $ALL instances were sent by the PACS, none of them twice" \
	"$(sent_since "$MARK" | uniq -c | awk '{ print $1 }' | sort -u)" 1
check "... and every one of them arrived" "$(sent_since "$MARK" | wc -l)" "$ALL"
check "each archive was built by exactly one worker" "$(built_by w1.out w2.out w3.out)" "$(expected_zips)"
say "    downloads per worker: $(for n in 1 2 3; do printf '%s ' "$(grep -c '\] download' "w$n.out")"; done)"
check "three catalog refreshes at once: each series and patient once in the database" \
	"$(pg_sql 'SELECT count(*), count(DISTINCT uid) FROM series' w3) $(pg_sql 'SELECT count(*) FROM patient' w3)" \
	"12|12 $NPAT"
check "... and each instance once" "$(pg_sql 'SELECT count(*) FROM instance' w3)" "$ALL"
check "no claim is left held when the workers are done" "$(leases_held w3)" 0
check "no temp files left" "$(temp_files data)" ""
run -q
exit_is "thlhp-make -q afterwards" 0

section "role split: two download workers and a zip worker, then --offline zip"
project split pacs.max_requests_per_minute=300
worker 1 -j2 download
worker 2 -j2 download
sleep 0.5
worker 3 -j2 zip
worker_exit 1 "worker 1: thlhp-make -j2 download" 0
worker_exit 2 "worker 2: thlhp-make -j2 download" 0
worker_exit 3 "worker 3: thlhp-make -j2 zip" 0
check "one archive per patient" "$(zip_names)" "$(expected_zips)"
ok "every archive holds its patient's instances" archives_match
check "no instance was sent twice" "$(sent_since "$MARK" | uniq -d)" ""
check "the download workers built no archive" "$(built_by w1.out w2.out)" ""
check "the zip worker built every archive" "$(built_by w3.out)" "$(expected_zips)"
# A zip host that cannot reach the PACS: downloads done elsewhere first.
rm -rf data/zip
pg_sql "UPDATE target SET out_path = NULL WHERE stage = 'zip'" split
worker 1 -j2 download
worker_exit 1 "a download worker once more (nothing new to fetch)" 0
MARK=$(log_mark)
run --offline -j2 zip
exit_is "thlhp-make --offline -j2 zip on the disk host" 0
check "it built every archive" "$(zip_names)" "$(expected_zips)"
ok "... with the right content" archives_match
check "... and sent nothing to the PACS" "$(tail -n +"$((MARK + 1))" "$PROXY_LOG" | wc -l)" 0

section "a worker killed mid-download: the others take its jobs over after the lease"
project kill pacs.max_requests_per_minute=300 pacs.max_associations=2 state.lease=8
worker 1 -j2 -v all
BGPID=${WPID[1]}
wait_disk 3 || { say "FAIL: worker 1 wrote nothing"; show_run; }
held=$(leases_held kill)
kill -9 -- "-${WPID[1]}"
wait "${WPID[1]}" 2>/dev/null
killed_at=$(date +%s.%N)
have=$(on_disk)
MARK=$(log_mark)
check "worker 1 held claims when it was killed" "$([ "$held" -gt 0 ] && echo yes)" yes
worker 2 -j2 -v all
worker 3 -j2 -v all
for n in 2 3; do worker_exit "$n" "worker $n after worker 1 was killed" 0; done
check "one archive per patient" "$(zip_names)" "$(expected_zips)"
ok "every archive holds its patient's instances" archives_match
check "only the $((ALL - have)) instances worker 1 had not written were sent again, once each" \
	"$(sent_since "$MARK" | wc -l) $(sent_since "$MARK" | uniq -d | wc -l)" "$((ALL - have)) 0"
has_line "a survivor waited for a job held by worker 1 (pid ${WPID[1]})" <(cat w2.err w3.err) \
	"wait download .*held by pid ${WPID[1]} on host"
took=$(awk -v k="$killed_at" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - k }')
say "    the survivors finished ${took}s after the kill (lease: 8 s)"
check "no claim is left held" "$(leases_held kill)" 0
check "no temp files left" "$(temp_files data)" ""

section "a worker frozen past its lease: its late result is not committed twice"
# Over a slow link a series takes seconds, so worker 1 is frozen in the
# middle of one, holding its claim, and not between two jobs.
project frozen pacs.max_requests_per_minute=300 pacs.max_associations=1
proxy_mode slow 50000
worker 1 -j1 all
BGPID=${WPID[1]}
wait_disk 2 || { say "FAIL: worker 1 wrote nothing"; }
kill -STOP "${WPID[1]}"
check "worker 1 is frozen in the middle of a job, holding its claim" \
	"$(pg_sql "SELECT count(*) FROM lease WHERE owner LIKE '% ${WPID[1]} %'" frozen)" 1
proxy_mode pass
worker 2 -j2 all
worker_exit 2 "worker 2, while worker 1 is frozen" 0
check "worker 2 built every archive" "$(zip_names)" "$(expected_zips)"
kill -CONT "${WPID[1]}"
worker_exit 1 "worker 1, thawed after its claim lapsed" 0
has_line "worker 1 says its claim lapsed and was taken over, and records nothing" w1.err \
	"the claim on this job lapsed and another worker took it over; its result is not recorded twice"
ok "the archives are still right" archives_match
check "each archive was built once" "$(built_by w1.out w2.out)" "$(expected_zips)"
check "the database still holds each instance once" "$(pg_sql 'SELECT count(*) FROM instance' frozen)" "$ALL"

section "a worker frozen inside a transaction: the server ends it after the lease"
# Worker 1 is made to wait on a table lock while it records a finished
# series, frozen there, and the lock let go: its INSERT then runs and its
# session sits in the open transaction, holding the instance row another
# worker must write.  Without a limit on idle transactions that worker
# would wait for it for as long as worker 1 stays frozen.
project frozentx pacs.max_requests_per_minute=300 pacs.max_associations=1
worker 1 -j1 all
BGPID=${WPID[1]}
wait_disk 1 || { say "FAIL: worker 1 wrote nothing"; }
PGAPPNAME=t-workers-lock "$PG_BIN/psql" -X -q -h "$PG_DIR" -U postgres -d frozentx \
	-c "BEGIN; LOCK TABLE instance IN SHARE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
LOCKPID=$!
# session_of APP STATE : pid of the session of APP in STATE (a waiting one: 'lock').
session_of() {
	local where="application_name = '$1' AND state = '$2'"
	[ "$2" = lock ] && where="application_name = '$1' AND wait_event_type = 'Lock'"
	pg_sql "SELECT pid FROM pg_stat_activity WHERE datname = 'frozentx' AND $where"
}
for ((i = 0; i < 600; i++)); do
	[ -n "$(session_of thlhp-make lock)" ] && break
	sleep 0.1
done
kill -STOP "${WPID[1]}"
pg_sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 't-workers-lock'" >/dev/null
wait "$LOCKPID" 2>/dev/null
for ((i = 0; i < 50; i++)); do
	[ -n "$(session_of thlhp-make 'idle in transaction')" ] && break
	sleep 0.1
done
check "worker 1 is frozen inside its transaction" "$(session_of thlhp-make 'idle in transaction' | wc -l)" 1
worker 2 -j2 all
worker_exit 2 "worker 2 finishes, though worker 1 holds a row it writes" 0
check "worker 2 built every archive" "$(zip_names)" "$(expected_zips)"
has_line "the server ended worker 1's transaction" "$PG_DIR/server.log" \
	"terminating connection due to idle-in-transaction timeout"
kill -CONT "${WPID[1]}"
worker_exit 1 "worker 1, thawed" 0
has_line "worker 1 says its connection was lost and made again" w1.err "connected again after"
has_line "... and that its result was not recorded, so the job is planned again" w1.err \
	"the connection was lost in the middle of a transaction, which is rolled back"
ok "the archives are still right" archives_match
check "each archive was built once" "$(built_by w1.out w2.out)" "$(expected_zips)"
check "the database still holds each instance once" "$(pg_sql 'SELECT count(*) FROM instance' frozentx)" "$ALL"
check "no claim is left held" "$(leases_held frozentx)" 0

section "PostgreSQL restarted mid-run"
project restart pacs.max_requests_per_minute=120
worker 1 -j2 all
BGPID=${WPID[1]}
wait_disk 5 || { say "FAIL: the worker wrote nothing"; }
pg_restart
worker_exit 1 "the worker rides out the restart" 0
has_line "it says it lost the connection" w1.err "lost the connection; connecting again"
has_line "... and that it is back" w1.err "connected again after"
check "one archive per patient" "$(zip_names)" "$(expected_zips)"
ok "every archive holds its patient's instances" archives_match
run -q
exit_is "thlhp-make -q afterwards" 0

finish
