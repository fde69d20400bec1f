# tests/bench/lib.sh - sourced by the benchmark scripts of tests/bench/.
#
# Every bench script prints one markdown section (## title, a table, notes)
# on stdout and nothing else there; progress goes to stderr (log).
# run-all.sh collects the sections into BENCHMARKS.md.
#
# Environment:
#   THLHP        the binary to measure.  Default: an optimized build (-O2, no
#                sanitizers) of this checkout in $BENCH_DIR/build, made or
#                brought up to date by `make` on every run.
#   BENCH_DIR    work dir for generated data, cached between runs
#                (default /tmp/thlhp-bench).
#   BENCH_SCALE  full (default) or small (a quick pass for development; its
#                numbers are not the benchmark).
#   RUNS         timed runs per contender (default 5, at least 3).
#   IDLE_LOAD    1-minute load average under which the machine counts as
#                idle (default 0.7); IDLE_WAIT seconds to wait for it (2400).
# shellcheck shell=bash

set -u
export LC_ALL=C.UTF-8 TZ=UTC

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/../.." && pwd)
PY=/usr/bin/python3
BENCH_DIR=${BENCH_DIR:-/tmp/thlhp-bench}
BENCH_SCALE=${BENCH_SCALE:-full}
RUNS=${RUNS:-5}
IDLE_LOAD=${IDLE_LOAD:-0.7}
IDLE_WAIT=${IDLE_WAIT:-2400}
[ "$RUNS" -ge 3 ] 2>/dev/null || RUNS=3
case $BENCH_SCALE in full | small) ;; *) echo "BENCH_SCALE is full or small" >&2; exit 2 ;; esac
mkdir -p "$BENCH_DIR"

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "$*"; exit 2; }

# need CMD PACKAGE... : install the Debian packages when CMD is missing.
need() {
	local cmd=$1; shift
	command -v "$cmd" >/dev/null 2>&1 || need_pkg "$@"
}

need_pkg() {
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	log "installing $*"
	$sudo apt-get update -qq >/dev/null &&
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		die "apt-get install $* failed"
}

need_common() {
	need /usr/bin/time time
	"$PY" -c 'import pydicom' 2>/dev/null || need_pkg python3-pydicom
}

# Build (or bring up to date) the optimized binary unless THLHP is given.
thlhp_binary() {
	if [ -n "${THLHP:-}" ]; then
		[ -x "$THLHP" ] || die "THLHP=$THLHP is not an executable"
		return 0
	fi
	local b=$BENCH_DIR/build
	need autoreconf autoconf automake
	need pkg-config pkg-config
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
}

# ---- data ---------------------------------------------------------------

# bench_tree P S I : a project dir for P patients x S series x I instances, built
# once by thlhp-make (folder source) and cached; prints its path.
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


# ---- measuring ----------------------------------------------------------

sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
fmt_s() { awk -v a="$1" 'BEGIN { if (a < 0.1) printf "%.4f", a; else if (a < 10) printf "%.3f", a; else printf "%.1f", a }'; }

# median X... : the median of the numbers.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Load average over the last minute.
load1() { cut -d' ' -f1 /proc/loadavg; }

# wait_idle : wait until the 1-minute load is under IDLE_LOAD (checking
# every 60 s, up to IDLE_WAIT s); sets LOAD_BEFORE.  Fails if never idle.
wait_idle() {
	local waited=0
	while awk -v l="$(load1)" -v m="$IDLE_LOAD" 'BEGIN { exit !(l > m) }'; do
		if [ "$waited" -ge "$IDLE_WAIT" ]; then
			LOAD_BEFORE=$(load1)
			log "load average $(load1) after ${waited}s of waiting: the machine is not idle"
			return 1
		fi
		log "load average $(load1) > $IDLE_LOAD: waiting 60 s for the machine to be idle"
		sleep 60
		waited=$((waited + 60))
	done
	LOAD_BEFORE=$(load1)
	return 0
}

# not_idle TITLE : the machine stayed busy.  With BENCH_BUSY_OK=1 the timings
# go on, marked as taken on a busy machine; else the section says that the
# full-size run is still to be done, and the script stops (exit 3).
not_idle() {
	if [ "${BENCH_BUSY_OK:-0}" = 1 ]; then
		IDLE=no
		log "timing anyway (BENCH_BUSY_OK=1); the numbers are marked as taken on a busy machine"
		return 0
	fi
	printf '## %s\n\nNot measured: the 1-minute load average stayed above %s for %s s\n' \
		"$1" "$IDLE_LOAD" "$IDLE_WAIT"
	printf '(last %s); the full-size run is still to be done on an idle machine.\n' "$LOAD_BEFORE"
	exit 3
}

CAN_DROP=0
[ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/drop_caches ] && CAN_DROP=1
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# timeit OUT EXPECT CMD... : run CMD once in the current dir; append its wall
# seconds to the list named OUT and remember its peak RSS (KB, from
# /usr/bin/time -v) in RSS_LAST.  EXPECT is the exit status that means "up to
# date" ("any" for no check).  Wall time is taken around /usr/bin/time
# (about 1 ms of its own, the same for every contender).
TIMEIT_OUT=$BENCH_DIR/.timeit.$$
timeit() {
	local out=$1 expect=$2 t0 t1 rc
	shift 2
	t0=$EPOCHREALTIME
	/usr/bin/time -v -o "$TIMEIT_OUT.time" "$@" >"$TIMEIT_OUT.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	# /usr/bin/time exits with the command's status.
	if [ "$expect" != any ] && [ "$rc" -ne "$expect" ]; then
		log "$* exited $rc (expected $expect); its output:"
		head -20 "$TIMEIT_OUT.out" >&2
		return 1
	fi
	RC_LAST=$rc
	RSS_LAST=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TIMEIT_OUT.time")
	# CPU seconds (user + system): on a busy machine the wall time is
	# mostly waiting for a CPU, this is not.
	CPU_LAST=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$TIMEIT_OUT.time")
	eval "$out+=(\"\$(sub \"\$t1\" \"\$t0\")\")"
}

# ---- describing the machine ----------------------------------------------

machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
	printf '%s, %s online CPUs, %s RAM, Linux %s, %s on %s\n' "${cpu:-unknown CPU}" \
		"$(nproc)" "$mem" "$(uname -r)" \
		"$(stat -f -c %T "$BENCH_DIR")" "$(df --output=source "$BENCH_DIR" | tail -1)"
}
