# tests/bench/lib-data.sh - sourced by tests/bench/zip.sh and download.sh.
#
# The work dir ($BENCH_DIR, default /tmp/thlhp-bench, kept between runs so
# the generated data and Orthanc's storage are made once), the size
# (BENCH_SCALE=small for a quick try, full otherwise), the number of runs
# per contender (RUNS or BENCH_RUNS, default 3, medians reported), the binary
# ($THLHP), installing what the benchmarks need, waiting for an idle
# machine before a full-size series, timing, medians and the markdown
# table.  stdout is the report; progress goes to stderr (note).
# shellcheck shell=bash

set -u
export LC_ALL=C.UTF-8 TZ=UTC

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/../.." && pwd)
PY=/usr/bin/python3
BENCH_DIR=${BENCH_DIR:-/tmp/thlhp-bench}
BENCH_SCALE=${BENCH_SCALE:-full}
BENCH_RUNS=${BENCH_RUNS:-${RUNS:-3}}     # RUNS: as tests/bench/lib.sh and run-all.sh
[ "$BENCH_RUNS" -ge 1 ] 2>/dev/null || BENCH_RUNS=3
THLHP=${THLHP:-$TOP/build/thlhp-make}
IDLE_LOAD=${BENCH_IDLE_LOAD:-${IDLE_LOAD:-0.7}}   # 1-minute load average counted as idle
IDLE_WAIT=${BENCH_IDLE_WAIT:-${IDLE_WAIT:-2400}}  # seconds to wait for it at most
mkdir -p "$BENCH_DIR"

note() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { note "$*"; exit 1; }

# bench_install PKG... : apt-get install what is missing (as tests/run.sh).
bench_install() {
	local p missing='' sudo=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	note "installing:$missing"
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null ||
		die "apt-get install$missing failed"
	case "$missing" in *orthanc*) $sudo service orthanc stop >/dev/null 2>&1 ;; esac
	return 0
}

bench_check_thlhp() {
	[ -x "$THLHP" ] || die "$THLHP is not an executable: build an optimized one
  (mkdir /tmp/b && cd /tmp/b && CFLAGS=-O2 CXXFLAGS=-O2 $TOP/configure && make) and set THLHP"
	if nm -D "$THLHP" 2>/dev/null | grep -q __asan_init; then
		note "warning: $THLHP is built with sanitizers; its numbers mean little"
	fi
}

# gen_data DIR PATIENTS SERIES SLICES PREFIX : CT series under DIR (cached:
# made once; files already there are kept), two generators at once.
gen_data() {
	local dir=$1 np=$2 ns=$3 nk=$4 prefix=$5 stamp
	stamp="$np x $ns x $nk v1"
	if [ "$(cat "$dir.complete" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	note "generating $np patients x $ns series x $nk slices of 512x512 CT into $dir"
	mkdir -p "$dir"
	"$PY" "$BENCH/gen_ct.py" "$dir" --patients "$np" --series "$ns" --slices "$nk" \
		--prefix "$prefix" --part 0/2 >/dev/null &
	"$PY" "$BENCH/gen_ct.py" "$dir" --patients "$np" --series "$ns" --slices "$nk" \
		--prefix "$prefix" --part 1/2 >/dev/null || die "gen_ct.py failed"
	wait $! || die "gen_ct.py failed"
	printf '%s\n' "$stamp" >"$dir.complete"
}

# ---- an idle machine ----------------------------------------------------

load1() { cut -d' ' -f1 /proc/loadavg; }

# wait_idle TITLE : at full size, wait until the 1-minute load average is
# at most IDLE_LOAD (checking every 60 s, up to IDLE_WAIT seconds); sets
# LOAD_BEFORE.  When it never gets there, as tests/bench/lib.sh does: with
# BENCH_BUSY_OK=1 the timings go on (IDLE_OK=0, the notes say so); else the
# section TITLE says the full-size run is still to be done and the script
# stops with exit 3.
IDLE_OK=1 LOAD_BEFORE=
wait_idle() {
	local waited=0
	LOAD_BEFORE=$(load1)
	[ "$BENCH_SCALE" = full ] || return 0
	while awk -v l="$LOAD_BEFORE" -v m="$IDLE_LOAD" 'BEGIN { exit !(l > m) }'; do
		if [ "$waited" -ge "$IDLE_WAIT" ]; then
			IDLE_OK=0
			note "the machine did not get idle in ${IDLE_WAIT}s (load $LOAD_BEFORE)"
			[ "${BENCH_BUSY_OK:-0}" = 1 ] && { note "timing anyway (BENCH_BUSY_OK=1)"; return 0; }
			printf '## %s\n\nNot measured: the 1-minute load average stayed above %s for %s s\n' \
				"$1" "$IDLE_LOAD" "$IDLE_WAIT"
			printf '(last %s); the full-size run is still to be done on an idle machine.\n\n' "$LOAD_BEFORE"
			exit 3
		fi
		note "load average $LOAD_BEFORE > $IDLE_LOAD: waiting 60 s for an idle machine"
		sleep 60
		waited=$((waited + 60))
		LOAD_BEFORE=$(load1)
	done
}

# load_note : one line for the notes: load before and after the series.
load_note() {
	local s="load average (1 min) before the series $LOAD_BEFORE, after $(load1)"
	[ "$IDLE_OK" = 1 ] || s="$s; **the machine never got idle (> $IDLE_LOAD): numbers are disturbed**"
	printf '%s\n' "$s"
}

# ---- timing --------------------------------------------------------------

now() { date +%s.%N; }

# cpu_of FILE : user + system CPU seconds of the waited-for children in
# FILE, the output of bash's `times` (run in the shell itself: a subshell
# has children of its own).
cpu_of() {
	sed -n 2p "$1" | tr -d 's' | awk '{ split($1, u, "m"); split($2, y, "m")
		printf "%.3f\n", u[1] * 60 + u[2] + y[1] * 60 + y[2] }'
}

# timed VAR CMD... : run CMD (its stdout and stderr to $BENCH_DIR/last.log),
# add its wall-clock seconds to the list in VAR and the CPU seconds its
# processes used (user + system) to the list in VAR_cpu.  A failing CMD
# stops the benchmark: a number for work not done would be a lie.
timed() {
	local var=$1 t0 t1 c0 c1 cv
	shift
	cv=${var}_cpu
	times >"$BENCH_DIR/.times0"
	t0=$(now)
	"$@" >"$BENCH_DIR/last.log" 2>&1 || { tail -n 20 "$BENCH_DIR/last.log" >&2; die "failed: $*"; }
	t1=$(now)
	times >"$BENCH_DIR/.times1"
	c0=$(cpu_of "$BENCH_DIR/.times0") c1=$(cpu_of "$BENCH_DIR/.times1")
	printf -v "$var" '%s %s' "${!var:-}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	printf -v "$cv" '%s %s' "${!cv:-}" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')"
}

# median N... : the median.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# mbps BYTES SECONDS
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }

# ratio A B : A / B with 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# bytes_of DIR : total size of the regular files below DIR
bytes_of() { find "$1" -type f -name '*.dcm' -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'; }
