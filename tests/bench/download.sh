#!/usr/bin/env bash
# tests/bench/download.sh - download throughput from Orthanc over DIMSE on
# loopback: ~540 MB of generated CT (4 patients x 4 series x 64 slices of
# 512x512x16 bit; BENCH_SCALE=small: 2 x 2 x 8), every series fetched into
# an empty folder by
#
#   getscu, one series after the other       (a shell loop)
#   getscu, 4 at once                         (the same loop under xargs -P4)
#   movescu + storescp, one after the other   (storescp on its own port)
#   movescu + storescp --fork, 4 at once
#   thlhp-make download -j1 and -j4, retrieve = get and = move
#   the disk's part alone: the same files copied into an empty folder by
#     4 threads, each written, fsynced and renamed (durable_copy.py)
#
# RUNS rounds (default 3 here), every contender once a round, medians.
# Orthanc (tests/orthanc.sh's orthanc_start), getscu, movescu and storescp
# run with TCP_NODELAY=1 (without it DCMTK leaves Nagle's algorithm on) and
# 128 KB PDUs, their best settings; thlhp-make runs without TCP_NODELAY in
# its environment: it turns Nagle off itself.  Orthanc's storage is loaded
# once and kept in $BENCH_DIR.  As root the whole script runs in a private
# network namespace (only loopback), like the tests.  Prints a markdown
# section on stdout; progress on stderr.
#
#   tests/bench/download.sh    # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
RUNS=${RUNS:-3}   # its rounds are long: 3 unless RUNS is given
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# before the private network namespace, which has no way out
bench_install gcc dcmtk orthanc curl time iproute2 util-linux strace python3-pydicom python3-numpy
thlhp_binary
export THLHP
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$BENCH/../netns.sh"
unset TCP_NODELAY

if [ "$BENCH_SCALE" = small ]; then
	NP=2 NS=2 NK=8
else
	NP=4 NS=4 NK=64
fi
ct_data DL "$NP" "$NS" "$NK"
# "study series" of every series
SERIES=$(cd "$DATA" && find . -mindepth 3 -maxdepth 3 -type d | awk -F/ '{ print $3, $4 }' | sort)
NSER=$(printf '%s\n' "$SERIES" | wc -l)

W=$BENCH_DIR/dl-work
rm -rf "$W"
mkdir -p "$W/out"

# ---- Orthanc, loaded once ------------------------------------------------------
# tests/orthanc.sh wants tests/lib.sh's T (scratch), LOG (its log), BGPIDS
# (stopped at exit) and say; tests/lib.sh itself is for the tests (a temp
# dir of its own, THLHP checked before any build, kill -9 at exit), not here.
T=$W LOG=$W BGPIDS=
say() { log "$*"; }
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$BENCH/../orthanc.sh"
cleanup() {
	local p
	for p in $BGPIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SCP_PORT=$(free_port)
OR_DIR=$BENCH_DIR/orthanc-dl-$NP-$NS-$NK   # its storage, kept for the next run
OR_MODALITIES='"storescp": [ "STORESCP", "127.0.0.1", '$SCP_PORT' ],
    "getscu": [ "GETSCU", "127.0.0.1", 9 ],
    "movescu": [ "MOVESCU", "127.0.0.1", 9 ]'
OR_EXTRA='"DicomThreadsCount": 8,
  "MaximumPduLength": 131072,
  "SaveJobs": false'
orthanc_start >&2   # its failure report (the tail of its log) goes to stderr
n=$(or_curl /statistics | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["CountInstances"])')
if [ "$n" != "$NFILES" ]; then
	log "loading $NFILES instances into Orthanc ($OR_DIR, kept for the next run)"
	find "$DATA" -name '*.dcm' -print0 | xargs -0 -P2 -n 16 sh -c \
		'for f; do curl -sf -X POST --data-binary @"$f" "$0" >/dev/null || exit 1; done' \
		"http://127.0.0.1:$OR_HTTP/instances" || die "upload to Orthanc failed"
	n=$(or_curl /statistics | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["CountInstances"])')
	[ "$n" = "$NFILES" ] || die "Orthanc holds $n instances, not $NFILES"
fi
cat "$OR_DIR"/db/*/*/* >/dev/null 2>&1   # its files in the page cache, as after the upload

# ---- the contenders ------------------------------------------------------------
# Each fetches every series into the empty folder $W/out/<name> (durable4
# copies the same files there: the disk's part of the work, alone).

PEER_OPTS="-pdu 131072"
fresh() { rm -rf "$W/out/$1"; mkdir -p "$W/out/$1"; }

getscu_one() {  # getscu_one OUTDIR STUDY SERIES
	mkdir -p "$1/$3" &&
	TCP_NODELAY=1 getscu $PEER_OPTS -aet GETSCU -aec ORTHANC -S -k QueryRetrieveLevel=SERIES \
		-k StudyInstanceUID="$2" -k SeriesInstanceUID="$3" -od "$1/$3" 127.0.0.1 "$OR_DICOM"
}
movescu_one() { # movescu_one STUDY SERIES
	TCP_NODELAY=1 movescu $PEER_OPTS -aet MOVESCU -aec ORTHANC -aem STORESCP -S \
		-k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$1" -k SeriesInstanceUID="$2" \
		127.0.0.1 "$OR_DICOM"
}
export -f getscu_one movescu_one
export OR_DICOM PEER_OPTS

c_getscu() {
	local st se
	fresh getscu
	while read -r st se; do
		getscu_one "$W/out/getscu" "$st" "$se" || return 1
	done <<<"$SERIES"
}
c_getscu4() {
	fresh getscu4
	printf '%s\n' "$SERIES" | xargs -P4 -L1 bash -c 'getscu_one "$0" "$1" "$2"' "$W/out/getscu4"
}
storescp_start() { # storescp_start OUTDIR [--fork]
	TCP_NODELAY=1 storescp $PEER_OPTS -aet STORESCP -dhl ${2:-} -od "$1" "$SCP_PORT" \
		>"$W/storescp.log" 2>&1 &
	SCP_PID=$!
	for _ in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$SCP_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
storescp_stop() {
	local p=$SCP_PID
	pkill -P "$p" 2>/dev/null           # --fork's children of this storescp
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}
c_movescu() {
	local st se rc=0
	fresh movescu
	storescp_start "$W/out/movescu" || return 1
	while read -r st se; do
		movescu_one "$st" "$se" || { rc=1; break; }
	done <<<"$SERIES"
	storescp_stop
	return $rc
}
c_movescu4() {
	local rc=0
	fresh movescu4
	storescp_start "$W/out/movescu4" --fork || return 1
	printf '%s\n' "$SERIES" | xargs -P4 -L1 bash -c 'movescu_one "$0" "$1"' || rc=1
	storescp_stop
	return $rc
}

thlhp_ini() {  # thlhp_ini DIR JOBS RETRIEVE [PATIENTS]
	cat >"$1/thlhp.ini" <<INI
[pacs]
protocol = dimse
host = 127.0.0.1
port = $OR_DICOM
called_aet = ORTHANC
calling_aet = THLHP
retrieve = $3
move_destination = THLHP
store_port = $STORE_PORT
max_associations = 4
max_requests_per_minute = 1000000
timeout = 30
retries = 1

[select]
patient_id = ${4:-DL-*}

[output]
dicom_dir = data/dicom
zip_dir = data/zip

[state]
url = sqlite:.thlhp/state.db
INI
}
c_thlhp() {    # c_thlhp NAME JOBS RETRIEVE
	local p=$W/out/$1
	fresh "$1"
	thlhp_ini "$p" "$2" "$3"
	(cd "$p" && env -u TCP_NODELAY "$THLHP" "-j$2" download)
}
# The loops again, until what they wrote is on disk (`sync`), as thlhp-make's
# files are before they get their names.
c_getscu_sync() { c_getscu && sync; }
c_getscu4_sync() { c_getscu4 && sync; }
c_movescu_sync() { c_movescu && sync; }
c_movescu4_sync() { c_movescu4 && sync; }
# What durability costs: thlhp-make with fsync, fdatasync, syncfs and
# sync_file_range made no-ops by an LD_PRELOAD shim (built here; no
# setting of thlhp-make does this, and none should).
NOFSYNC=$BENCH_DIR/nofsync.so
printf '%s\n' '#include <sys/types.h>' 'int fsync(int fd) { (void)fd; return 0; }' \
	'int fdatasync(int fd) { (void)fd; return 0; }' \
	'int syncfs(int fd) { (void)fd; return 0; }' \
	'int sync_file_range(int fd, off_t o, off_t n, unsigned f) { (void)fd; (void)o; (void)n; (void)f; return 0; }' \
	>"$BENCH_DIR/nofsync.c"
gcc -shared -fPIC -O2 -o "$NOFSYNC" "$BENCH_DIR/nofsync.c" || die "cannot build the no-fsync shim"
c_thlhp_nofsync() {    # c_thlhp_nofsync NAME JOBS RETRIEVE
	local p=$W/out/$1
	fresh "$1"
	thlhp_ini "$p" "$2" "$3"
	(cd "$p" && env -u TCP_NODELAY LD_PRELOAD="$NOFSYNC" "$THLHP" "-j$2" download)
}
c_get1_nofsync() { c_thlhp_nofsync get1_nofsync 1 get; }
c_get4_nofsync() { c_thlhp_nofsync get4_nofsync 4 get; }
# What the disk alone takes: the same files written durably by 4 threads.
c_durable4() { "$PY" "$BENCH/durable_copy.py" "$DATA" "$W/out/durable4" 4 >/dev/null; }
c_get1() { c_thlhp get1 1 get; }
c_get4() { c_thlhp get4 4 get; }
c_move1() { c_thlhp move1 1 move; }
c_move4() { c_thlhp move4 4 move; }

NAMES="getscu getscu_sync getscu4 getscu4_sync get1 get4 get1_nofsync get4_nofsync durable4 movescu movescu_sync movescu4 movescu4_sync move1 move4"
declare -A LABEL=(
	[getscu]='`getscu` (C-GET), one series after the other'
	[getscu_sync]='... the same, then `sync`'
	[getscu4]='`getscu` (C-GET), 4 at once (`xargs -P4`)'
	[getscu4_sync]='... the same, then `sync`'
	[movescu]='`movescu` (C-MOVE) to `storescp`, one series after the other'
	[movescu_sync]='... the same, then `sync`'
	[movescu4]='`movescu` (C-MOVE) to `storescp --fork`, 4 at once (`xargs -P4`)'
	[movescu4_sync]='... the same, then `sync`'
	[get1_nofsync]='thlhp-make -j1, get, with fsync made a no-op (`LD_PRELOAD`; to show its cost)'
	[get4_nofsync]='thlhp-make -j4, get, with fsync made a no-op (`LD_PRELOAD`; to show its cost)'
	[durable4]='the same files copied from the page cache into an empty folder, each written, fsynced and renamed, 4 threads (`durable_copy.py`: the disk'"'"'s part alone, no network, no DICOM)'
	[get1]='**thlhp-make -j1 download**, retrieve = get'
	[get4]='**thlhp-make -j4 download**, retrieve = get'
	[move1]='**thlhp-make -j1 download**, retrieve = move'
	[move4]='**thlhp-make -j4 download**, retrieve = move'
)
declare -A PEER=([getscu]=get1 [getscu4]=get4 [get1]=get1 [get4]=get4
	[movescu]=move1 [movescu4]=move4 [move1]=move1 [move4]=move4
	[getscu_sync]=get1 [getscu4_sync]=get4 [movescu_sync]=move1 [movescu4_sync]=move4
	[get1_nofsync]=get1 [get4_nofsync]=get4 [durable4]=get4)

# fetched_ok NAME : NAME's folder holds NFILES DICOM files of the right total size
# (the .dcm files for thlhp-make, whatever storescp/getscu name them otherwise).
fetched_ok() {
	local d=$W/out/$1 n b
	case $1 in get[14] | move[14] | get[14]_nofsync) d=$d/data/dicom ;; *_sync) d=$W/out/${1%_sync} ;; esac
	[ "$1" = durable4 ] && d=$W/out/durable4
	n=$(find "$d" -type f ! -name '.*' ! -name '*.ini' | wc -l)
	b=$(find "$d" -type f ! -name '.*' ! -name '*.ini' -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
	[ "$n" = "$NFILES" ] || die "$1: $n files fetched, $NFILES expected (in $d)"
	# Orthanc may add or reorder a few header bytes; the pixel data dominates
	awk -v a="$b" -v e="$BYTES" 'BEGIN { exit !(a > e * 0.98 && a < e * 1.02) }' ||
		die "$1: $b bytes fetched, about $BYTES expected"
}

# Is Nagle off on thlhp-make's own sockets?  One -j1 get on one patient under strace.
NODELAY=unknown
if command -v strace >/dev/null; then
	fresh probe
	thlhp_ini "$W/out/probe" 1 get DL-01
	(cd "$W/out/probe" && env -u TCP_NODELAY strace -f -e trace=setsockopt "$THLHP" -j1 download \
		>/dev/null 2>"$W/strace.log") || true
	if grep -q 'TCP_NODELAY, \[1\]' "$W/strace.log"; then NODELAY=yes; else NODELAY=no; fi
fi

TITLE="Download from Orthanc over DIMSE (loopback)"
wait_idle "$TITLE"
declare -A SECS CPUS PCPUS   # contender -> its wall, CPU, Orthanc's CPU seconds, one per run (not T: the scratch dir)
# or_cpu : Orthanc's CPU seconds (user + system) so far.
or_cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$OR_PID/stat"; }
for r in $(seq 1 "$RUNS"); do
	for c in $NAMES; do
		log "round $r: $c"
		# Its folder from the round before goes first, and nobody pays
		# for the writeback of the one before, or for that deletion.
		rm -rf "$W/out/${c%_sync}"
		sync
		p0=$(or_cpu)
		time_sh "c_$c"
		PCPUS[$c]+=" $(awk -v a="$p0" -v b="$(or_cpu)" 'BEGIN { printf "%.2f", b - a }')"
		SECS[$c]+=" $WALL_LAST" CPUS[$c]+=" $CPU_LAST"
		[ "$r" -gt 1 ] || fetched_ok "$c"
	done
done
load=$(load_note)
# One stream: the same bytes written once, in one file, to disk.
sync
time_sh dd if=/dev/zero of="$W/floor" bs=1M count=$((BYTES / 1048576)) conv=fsync status=none
FLOOR=$WALL_LAST
rm -f "$W/floor"

# ---- the report ------------------------------------------------------------------

echo "## $TITLE"
echo
printf '%d patients x %d series x %d slices of 512x512 16-bit CT (%d series, %d instances, %.0f MB) from Orthanc on 127.0.0.1, each contender into an empty folder; median of %d runs. Ratio: the contender'"'"'s MB/s divided by thlhp-make'"'"'s with the same retrieve and parallelism (-j1 or -j4); above 1 the contender is faster.\n' \
	"$NP" "$NS" "$NK" "$NSER" "$NFILES" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$RUNS"
echo
echo "| contender | median s | MB/s | client CPU s | Orthanc CPU s | ratio to thlhp-make |"
echo "|---|---:|---:|---:|---:|---:|"
for c in $NAMES; do
	# shellcheck disable=SC2086
	m=$(median ${SECS[$c]})
	# shellcheck disable=SC2086
	mp=$(median ${SECS[${PEER[$c]}]})
	# shellcheck disable=SC2086
	printf '| %s | %.3f | %s | %.3f | %.2f | %s |\n' "${LABEL[$c]}" "$m" "$(mbps "$BYTES" "$m")" \
		"$(median ${CPUS[$c]})" "$(median ${PCPUS[$c]})" \
		"$(ratio "$(mbps "$BYTES" "$m")" "$(mbps "$BYTES" "$mp")")"
done
echo
# The targets this benchmark is held to.
# shellcheck disable=SC2086
med() { median ${SECS[$1]}; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f%%", (a / b - 1) * 100 }'; }
for j in 1 4; do
	loop=getscu; [ $j = 4 ] && loop=getscu4
	printf 'Target: thlhp-make -j%s at least the %s getscu loop: get %s (%.3f s against %.3f s), move %s (%.3f s; `movescu` the same way: %.3f s).' \
		$j "$([ $j = 1 ] && echo serial || echo 4-way)" "$(verdict "$(med get$j) <= $(med $loop)")" \
		"$(med get$j)" "$(med $loop)" "$(verdict "$(med move$j) <= $(med $loop)")" "$(med move$j)" \
		"$(med "$([ $j = 1 ] && echo movescu || echo movescu4)")"
	if awk "BEGIN { exit !($(med get$j) > $(med $loop)) }"; then
		printf ' The loop leaves its files in the page cache: with fsync made a no-op, thlhp-make -j%s takes %.3f s (%s), and the loop followed by `sync` %.3f s.' \
			$j "$(med get${j}_nofsync)" "$(verdict "$(med get${j}_nofsync) <= $(med $loop)")" "$(med ${loop}_sync)"
	fi
	echo
	echo
done
# shellcheck disable=SC2086
printf -- '- thlhp-make -j4 / -j1: get %sx, move %sx\n' \
	"$(ratio "$(median ${SECS[get1]})" "$(median ${SECS[get4]})")" \
	"$(ratio "$(median ${SECS[move1]})" "$(median ${SECS[move4]})")"
printf -- '- the disk: every thlhp-make file is on disk before it gets its name, the loops leave theirs in the page cache unless followed by `sync` (each contender starts after a `sync`). The durable copy row writes the same files so with nothing else to do (one fsync per file, 4 at once; thlhp-make starts the writeback of each file as it arrives, then one syncfs per series). Writing the same %.0f MB once, in one file, then fsync (`dd conv=fsync`) takes %.3f s here (%s MB/s)\n' \
	"$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$FLOOR" "$(mbps "$BYTES" "$FLOOR")"
echo '- thlhp-make runs the whole `download` target from an empty state: the C-FIND walk (patients, studies, series), then per series the retrieve of the whole series (checked against the count the query got; C-MOVE: routed by its Message ID, which Orthanc quotes), and for each instance a temp file, a size and header check, its writeback started at once and its hash taken (on a thread of the job, while the next arrives); at the end of the series (or every 1000 instances or 1 GiB) one syncfs, then each renamed, the folder fsynced, and only then counted; the loops are handed the study and series UIDs and write without fsync'
echo "- CPU: client and Orthanc share the machine's $(nproc) cores; client CPU + Orthanc CPU near $(nproc) x the wall time means the run was bound by CPU"
echo "- thlhp-make: protocol = dimse, max_associations = 4 (-j1 and -j4), max_requests_per_minute = 1000000 (the limit, so the token bucket never waits), timeout 30, no TCP_NODELAY in its environment; it disables Nagle itself: setsockopt(TCP_NODELAY, 1) seen under strace: $NODELAY"
echo '- client CPU: user + system seconds of the contender'"'"'s processes (getscu/movescu and storescp, or thlhp-make with its storage SCP); Orthanc CPU: the same of the Orthanc process over the run'
echo "- Orthanc $(or_curl /system | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["Version"])'), DicomThreadsCount 8, MaximumPduLength 131072, TCP_NODELAY=1; storage in the page cache"
echo "- DCMTK $(getscu --version 2>/dev/null | sed -n 's/.*getscu \(v[0-9.]*\).*/\1/p' | head -1) getscu, movescu, storescp with TCP_NODELAY=1 and -pdu 131072 (thlhp-make proposes 131072 too)"
echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), $THLHP"
echo "- $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), everything on one host; $load"
echo
