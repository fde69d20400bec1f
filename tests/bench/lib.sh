# tests/bench/lib.sh - sourced by every script of tests/bench/.
#
# Every bench script prints one markdown section (## title, a table, notes)
# on stdout and nothing else there; progress goes to stderr (log).  It exits
# 0 when it printed its section, 2 when it failed (die), 3 when the machine
# never became idle (wait_idle).  run-all.sh collects the sections into
# BENCHMARKS.md.
#
# Environment:
#   THLHP        the binary to measure.  Default: an optimized build (-O2, no
#                sanitizers) of this checkout in $BENCH_DIR/build, made or
#                brought up to date by `make` on every run.
#   BENCH_DIR    work dir for generated data (trees, CT series, Orthanc's
#                storage), cached between runs (default /tmp/thlhp-bench).
#   BENCH_SCALE  full (default) or small (a quick pass for development; its
#                numbers are not the benchmark).
#   RUNS         timed runs per contender, the median reported (at least 3).
#                Default 5; a script whose runs are long sets its own default
#                before sourcing this file (zip.sh, download.sh: 3).
#   IDLE_LOAD    1-minute load average under which the machine counts as
#                idle (default 0.7); IDLE_WAIT seconds to wait for it (2400).
#   BENCH_BUSY_OK  1: time even when the machine never became idle, the
#                numbers marked as such (default: exit 3, see wait_idle).
# shellcheck shell=bash

set -u
export LC_ALL=C.UTF-8 TZ=UTC

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/../.." && pwd)
PY=/usr/bin/python3
SCRIPT=$(basename "$0" .sh)
BENCH_DIR=${BENCH_DIR:-/tmp/thlhp-bench}
BENCH_SCALE=${BENCH_SCALE:-full}
RUNS=${RUNS:-5}
IDLE_LOAD=${IDLE_LOAD:-0.7}
IDLE_WAIT=${IDLE_WAIT:-2400}
[ "$RUNS" -ge 3 ] 2>/dev/null || RUNS=3
case $BENCH_SCALE in full | small) ;; *) echo "BENCH_SCALE is full or small" >&2; exit 2 ;; esac
mkdir -p "$BENCH_DIR"

log() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }
die() { log "$*"; exit 2; }

# ---- what the benchmarks need ---------------------------------------------

# bench_install PKG... : apt-get install those of the Debian packages that
# dpkg does not list as installed (as tests/run.sh).  Installing orthanc
# starts its system service: it is stopped, the benchmarks start their own.
bench_install() {
	local p missing=() sudo=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -gt 0 ] || return 0
	log "installing ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	{ $sudo apt-get update -qq >/dev/null &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		die "apt-get install ${missing[*]} failed"
	case " ${missing[*]}" in *" orthanc"*) $sudo service orthanc stop >/dev/null 2>&1 ;; esac
	return 0
}

# thlhp_binary : the binary to measure in THLHP: the one given, or an
# optimized build of this checkout in $BENCH_DIR/build (configured once,
# brought up to date by make).  Warns when it has AddressSanitizer in it.
thlhp_binary() {
	if [ -n "${THLHP:-}" ]; then
		[ -x "$THLHP" ] || die "THLHP=$THLHP is not an executable"
	else
		local b=$BENCH_DIR/build
		bench_install autoconf automake pkg-config
		if [ ! -x "$TOP/configure" ]; then
			log "autoreconf -fi in $TOP"
			(cd "$TOP" && autoreconf -fi) >&2 || die "autoreconf failed"
		fi
		mkdir -p "$b"
		if [ ! -f "$b/Makefile" ]; then
			log "configuring an optimized build in $b (CFLAGS=-O2, no sanitizers)"
			(cd "$b" && CFLAGS=-O2 CXXFLAGS=-O2 "$TOP/configure") >"$b/configure.log" 2>&1 ||
				die "configure failed: see $b/configure.log"
		fi
		(cd "$b" && make -j2 thlhp-make) >"$b/make.log" 2>&1 || die "make failed: see $b/make.log"
		THLHP=$b/thlhp-make
	fi
	if nm -D "$THLHP" 2>/dev/null | grep -q __asan_init; then
		log "warning: $THLHP is built with sanitizers; its numbers mean little"
	fi
}

# ---- an idle machine -------------------------------------------------------

# Load average over the last minute.
load1() { cut -d' ' -f1 /proc/loadavg; }

# wait_idle TITLE : call before the timed runs.  At full size, wait until
# the 1-minute load average is at most IDLE_LOAD (checking every 60 s, up
# to IDLE_WAIT s); sets LOAD_BEFORE.  If it never gets there, IDLE=no, and
# with BENCH_BUSY_OK=1 the timings go on (load_note says so); else the
# section TITLE says that the full-size run is still to be done, and the
# script stops (exit 3).  BENCH_SCALE=small does not wait.
IDLE=yes LOAD_BEFORE=
wait_idle() {
	local waited=0
	LOAD_BEFORE=$(load1)
	[ "$BENCH_SCALE" = full ] || return 0
	while awk -v l="$LOAD_BEFORE" -v m="$IDLE_LOAD" 'BEGIN { exit !(l > m) }'; do
		if [ "$waited" -ge "$IDLE_WAIT" ]; then
			IDLE=no
			log "load average $LOAD_BEFORE after ${waited}s of waiting: the machine is not idle"
			if [ "${BENCH_BUSY_OK:-0}" = 1 ]; then
				log "timing anyway (BENCH_BUSY_OK=1); the numbers are marked as taken on a busy machine"
				return 0
			fi
			printf '## %s\n\nNot measured: the 1-minute load average stayed above %s for %s s\n' \
				"$1" "$IDLE_LOAD" "$IDLE_WAIT"
			printf '(last %s); the full-size run is still to be done on an idle machine.\n' "$LOAD_BEFORE"
			exit 3
		fi
		log "load average $LOAD_BEFORE > $IDLE_LOAD: waiting 60 s for the machine to be idle"
		sleep 60
		waited=$((waited + 60))
		LOAD_BEFORE=$(load1)
	done
}

# load_note : for the notes, right after the timed runs: the load average
# before and after them, and whether the machine never became idle.
load_note() {
	printf 'load average (1 min) before the timed runs: %s, after: %s' "$LOAD_BEFORE" "$(load1)"
	[ "$IDLE" = yes ] ||
		printf ' (the machine never became idle: these numbers were taken while other work ran)'
	printf '\n'
}

# CAN_DROP=1: drop_caches works (root), for noop.sh's cold-cache runs.
CAN_DROP=0
# shellcheck disable=SC2034
[ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/drop_caches ] && CAN_DROP=1
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- timing ----------------------------------------------------------------
#
# Two helpers, for two kinds of contender:
#
#   time_cmd EXPECT CMD...  one program (not a shell function), under
#                           /usr/bin/time -v for its peak RSS: the short
#                           checks of noop.sh and scaling.sh.  EXPECT is
#                           the exit status that means "done" ("any": no
#                           check; RC_LAST has it).
#   time_sh CMD...          anything the shell runs: a function with loops,
#                           pipelines, xargs, servers started and stopped;
#                           CPU from bash's `times` (the children waited
#                           for): the long runs of zip.sh and download.sh.
#                           Any failure is a failure.
#
# Both run CMD once in the current dir, its stdout and stderr to $LAST_LOG,
# and set WALL_LAST (seconds, around the whole run) and CPU_LAST (user +
# system seconds of its processes: on a busy machine the wall time is mostly
# waiting for a CPU, this is not); time_cmd also RSS_LAST (peak, KB).  A run
# that fails stops the benchmark: a number for work not done would be a lie.
LAST_LOG=$BENCH_DIR/last-$SCRIPT.log

# shellcheck disable=SC2034  # the *_LAST results are the caller's
time_cmd() {
	local expect=$1 t0
	shift
	t0=$EPOCHREALTIME
	/usr/bin/time -v -o "$LAST_LOG.time" "$@" >"$LAST_LOG" 2>&1
	RC_LAST=$?   # /usr/bin/time exits with the command's status
	WALL_LAST=$(sub "$EPOCHREALTIME" "$t0")   # about 1 ms of /usr/bin/time's own, the same for all
	if [ "$expect" != any ] && [ "$RC_LAST" -ne "$expect" ]; then
		tail -n 20 "$LAST_LOG" >&2
		die "$* exited $RC_LAST (expected $expect)"
	fi
	RSS_LAST=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$LAST_LOG.time")
	CPU_LAST=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$LAST_LOG.time")
}

# cpu_of FILE : user + system CPU seconds of the waited-for children in
# FILE, the output of bash's `times`.
cpu_of() {
	sed -n 2p "$1" | tr -d 's' | awk '{ split($1, u, "m"); split($2, y, "m")
		printf "%.3f\n", u[1] * 60 + u[2] + y[1] * 60 + y[2] }'
}

# shellcheck disable=SC2034
time_sh() {
	local t0
	# `times` in this shell: a subshell would count only children of its own.
	times >"$LAST_LOG.times0"
	t0=$EPOCHREALTIME
	"$@" >"$LAST_LOG" 2>&1 || { tail -n 20 "$LAST_LOG" >&2; die "failed: $*"; }
	WALL_LAST=$(sub "$EPOCHREALTIME" "$t0")
	times >"$LAST_LOG.times1"
	CPU_LAST=$(awk -v a="$(cpu_of "$LAST_LOG.times0")" -v b="$(cpu_of "$LAST_LOG.times1")" \
		'BEGIN { printf "%.3f", b - a }')
}

# ---- numbers ---------------------------------------------------------------

sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
fmt_s() { awk -v a="$1" 'BEGIN { if (a < 0.1) printf "%.4f", a; else if (a < 10) printf "%.3f", a; else printf "%.1f", a }'; }

# median X... : the median of the numbers, at their precision (the middle
# one of an odd count, the mean of the two middle ones to 6 decimals).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# mbps BYTES SECONDS
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }

# ratio A B : A / B with 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ---- data ------------------------------------------------------------------

# bench_tree P S I : a project dir for P patients x S series x I instances
# (small files, gen_tree.py), built once by thlhp-make (folder source) and
# cached; prints its path.
# Inside: src/ (the folder "PACS"), thlhp.ini, data/dicom, data/zip, .thlhp/.
bench_tree() {
	local p=$1 s=$2 i=$3 d
	d=$BENCH_DIR/tree-$p-$s-$i
	mkdir -p "$d"
	"$PY" "$BENCH/gen_tree.py" "$d/src" --patients "$p" --series "$s" --instances "$i" >&2 ||
		die "gen_tree.py failed for $d"
	# A build of an older src/ (regenerated since): start again.  A build
	# that was interrupted is simply run again: it resumes.
	if { [ -f "$d/built" ] && [ "$d/src.complete" -nt "$d/built" ]; } ||
	    { [ ! -f "$d/built" ] && [ -e "$d/.thlhp" ] && [ "$d/src.complete" -nt "$d/building" ]; }; then
		rm -rf "$d/data" "$d/.thlhp" "$d/built" "$d/peers"
	fi
	if [ ! -f "$d/built" ]; then
		touch "$d/building"
		cat >"$d/thlhp.ini" <<-EOF
		[pacs]
		protocol = folder
		path = src

		[select]
		patient_id = BP*

		[output]
		dicom_dir = data/dicom
		zip_dir = data/zip
		compression = deflate
		level = 1

		[state]
		url = sqlite:.thlhp/state.db
		EOF
		# In runs of 500 patients: a run's scheduler scans every node of
		# its graph after each job (sched.c, collect_running, for the
		# status line), so one run over 100k series is quadratic.
		log "first build of $p x $s x $i ($((p * s * i)) files): thlhp-make -j2 PATIENT..., 500 patients a run"
		local t0=$EPOCHREALTIME
		(cd "$d" && ls src | xargs -n 500 "$THLHP" -j2 >"$d/first-build.log" 2>&1) ||
			die "the first build failed: see $d/first-build.log"
		log "first build done in $(fmt_s "$(sub "$EPOCHREALTIME" "$t0")") s"
		date >"$d/built"
	fi
	# Cached by another binary, which may see it otherwise: bring it up to date.
	if ! (cd "$d" && "$THLHP" --offline -q all); then
		log "$d: not up to date for $THLHP; thlhp-make -j2 all"
		(cd "$d" && "$THLHP" -j2 all >"$d/update-build.log" 2>&1) ||
			die "bringing $d up to date failed: see $d/update-build.log"
		(cd "$d" && "$THLHP" --offline -q all) ||
			die "$d is not up to date after thlhp-make all (--offline -q all: exit $?)"
	fi
	printf '%s\n' "$d"
}

# gen_data DIR PATIENTS SERIES SLICES PREFIX : realistic CT series (512x512
# 16-bit, gen_ct.py) under DIR, made once and cached (files already there
# are kept), two generators at once.
gen_data() {
	local dir=$1 np=$2 ns=$3 nk=$4 prefix=$5 stamp
	stamp="$np x $ns x $nk v1"
	if [ "$(cat "$dir.complete" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	log "generating $np patients x $ns series x $nk slices of 512x512 CT into $dir"
	mkdir -p "$dir"
	"$PY" "$BENCH/gen_ct.py" "$dir" --patients "$np" --series "$ns" --slices "$nk" \
		--prefix "$prefix" --part 0/2 >/dev/null &
	"$PY" "$BENCH/gen_ct.py" "$dir" --patients "$np" --series "$ns" --slices "$nk" \
		--prefix "$prefix" --part 1/2 >/dev/null || die "gen_ct.py failed"
	wait $! || die "gen_ct.py failed"
	printf '%s\n' "$stamp" >"$dir.complete"
}

# ct_data PREFIX PATIENTS SERIES SLICES : gen_data into $BENCH_DIR/ct-PREFIX-P-S-K
# (prefix lowercased); sets DATA, BYTES (of its .dcm files) and NFILES.
ct_data() {
	DATA=$BENCH_DIR/ct-${1,,}-$2-$3-$4
	gen_data "$DATA" "$2" "$3" "$4" "$1"
	BYTES=$(bytes_of "$DATA")
	NFILES=$(find "$DATA" -name '*.dcm' | wc -l)
}

# bytes_of DIR : total size of the .dcm files below DIR
bytes_of() { find "$1" -type f -name '*.dcm' -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'; }

# ---- describing the machine ------------------------------------------------

machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
	printf '%s, %s online CPUs, %s RAM, Linux %s, %s on %s\n' "${cpu:-unknown CPU}" \
		"$(nproc)" "$mem" "$(uname -r)" \
		"$(stat -f -c %T "$BENCH_DIR")" "$(df --output=source "$BENCH_DIR" | tail -1)"
}
