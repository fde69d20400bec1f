#!/usr/bin/env bash
# scaling.sh - the no-op check as the tree grows:
# `thlhp-make --offline -q all` at 1k, 10k and 100k series (10 series a
# patient, SCALE_INSTANCES instances a series, default 2), its peak RSS, and
# at a fixed series count with more and more instances per series, to show
# that the time follows the series, not the instances.
#
#   tests/bench/scaling.sh         # THLHP, BENCH_DIR, BENCH_SCALE, RUNS: see lib.sh
#
# Prints a markdown section on stdout; writes $BENCH_DIR/scaling.dat
# (series, instances, seconds, floor seconds, RSS MB) for run-all.sh's chart.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

bench_install time python3-pydicom gdb
thlhp_binary

NI=${SCALE_INSTANCES:-2}
TITLE="Scaling of the no-op check"
if [ "$BENCH_SCALE" = small ]; then
	sizes="10 100 1000"           # patients, 10 series each
	sweep_p=10 sweep_i="2 20 50"  # 100 series, more and more instances
else
	sizes="100 1000 10000"
	sweep_p=100 sweep_i="2 20 100"
fi

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }   # KiB -> MiB, not truncated

# One measurement: RUNS warm runs (after a warm-up) of thlhp-make and of the
# directories-only stat floor, in project dir D.  Sets T_MED, F_MED, C_MED
# (CPU), RSS_MAX.
measure_tree() {
	local d=$1 t=() f=() c=() k
	RSS_MAX=0
	cd "$d" || exit 2
	touch "$d/ref"
	set -f
	"$THLHP" --offline -q all || die "$d: not up to date"
	for ((k = 0; k < RUNS; k++)); do
		time_cmd 0 "$THLHP" --offline -q all
		t+=("$WALL_LAST") c+=("$CPU_LAST")
		[ "$RSS_LAST" -gt "$RSS_MAX" ] && RSS_MAX=$RSS_LAST
		time_cmd 0 find data/zip data/dicom -maxdepth 3 "(" -path "data/zip/*" -o \
			-path "data/dicom/*/*/*" ")" -newer "$d/ref"
		f+=("$WALL_LAST")
	done
	set +f
	T_MED=$(median "${t[@]}")
	F_MED=$(median "${f[@]}")
	C_MED=$(median "${c[@]}")
	log "$d: thlhp-make median $(fmt_s "$T_MED") s (${t[*]}), floor $(fmt_s "$F_MED") s, peak RSS $(mb "$RSS_MAX") MB"
	cd - >/dev/null || exit 2
}

# Build every tree first (slow, cached), then time them all on an idle machine.
trees=() desc=()
for p in $sizes; do
	trees+=("$(bench_tree "$p" 10 "$NI")") || exit 2
	desc+=("$((p * 10)) $NI")
done
sweep=()
for i in $sweep_i; do
	sweep+=("$(bench_tree "$sweep_p" 10 "$i")") || exit 2
done
# The no-op tree of noop.sh (1,000 x 10 x 20) is the 10k-series point with
# 20 instances; measured here too when present (noop.sh builds it).
big=$BENCH_DIR/tree-1000-10-20
[ "$BENCH_SCALE" = small ] && big=$BENCH_DIR/tree-100-10-20
[ -f "$big/built" ] || big=

wait_idle "$TITLE"

dat=$BENCH_DIR/scaling.dat
echo "# series instances_per_series seconds floor_seconds peak_rss_mb cpu_seconds" >"$dat"
rows=()
for k in "${!trees[@]}"; do
	measure_tree "${trees[$k]}"
	read -r ns ni <<<"${desc[$k]}"
	echo "$ns $ni $T_MED $F_MED $(mb "$RSS_MAX") $C_MED" >>"$dat"
	rows+=("| $ns | $ni | $((ns * ni)) | $(fmt_s "$T_MED") s | $C_MED s | $(awk -v t="$T_MED" -v n="$ns" 'BEGIN { printf "%.1f", t / n * 1e6 }') us | $(fmt_s "$F_MED") s | $(mb "$RSS_MAX") MB |")
done
srows=()
for k in "${!sweep[@]}"; do
	i=$(echo "$sweep_i" | cut -d' ' -f$((k + 1)))
	measure_tree "${sweep[$k]}"
	srows+=("| $((sweep_p * 10)) | $i | $((sweep_p * 10 * i)) | $(fmt_s "$T_MED") s | $C_MED s | $(fmt_s "$F_MED") s | $(mb "$RSS_MAX") MB |")
done
if [ -n "$big" ]; then
	mid=$(($(echo "$sizes" | cut -d' ' -f2) * 10))
	measure_tree "${trees[1]}"
	srows+=("| $mid | $NI | $((mid * NI)) | $(fmt_s "$T_MED") s | $C_MED s | $(fmt_s "$F_MED") s | $(mb "$RSS_MAX") MB |")
	measure_tree "$big"
	srows+=("| $mid | 20 | $((mid * 20)) | $(fmt_s "$T_MED") s | $C_MED s | $(fmt_s "$F_MED") s | $(mb "$RSS_MAX") MB |")
fi
load=$(load_note)

# What the peak is made of, at the largest tree: the process is stopped
# under gdb when the run frees its catalog (planning done, everything still
# allocated) and /proc/PID/smaps_rollup is read.
split=$(cd "${trees[-1]}" && gdb -q -batch -ex 'break catalog_free' -ex run \
	-ex 'python import gdb; print(open("/proc/%d/smaps_rollup" % gdb.selected_inferior().pid).read())' \
	--args "$THLHP" --offline -q all 2>/dev/null |
	awk '/^Rss:/ { r = $2 } /^Shared_Clean:/ { sc = $2 } /^Private_Dirty:/ { pd = $2 }
	END { if (r) printf "%.1f MB resident: %.1f MB of shared library pages (Shared_Clean), %.1f MB private (Private_Dirty: heap, relocated data)", r / 1024, sc / 1024, pd / 1024 }')
base=$(cd "${trees[0]}" && /usr/bin/time -f %M "$THLHP" --version 2>&1 >/dev/null | tail -1)

# Growth between the first and the last size, per series.
first=$(sed -n 2p "$dat") last=$(tail -1 "$dat")
growth=$(awk -v a="$first" -v b="$last" 'BEGIN { split(a, x, " "); split(b, y, " ");
	printf "%.0fx the series, %.1fx the time", y[1] / x[1], y[3] / x[3] }')
rss_big=$(tail -1 "$dat" | awk '{ print $5 }')   # MiB, one decimal

echo "## $TITLE"
echo
echo "\`thlhp-make --offline -q all\` on up-to-date trees (folder source, SQLite"
echo "state, every archive built), 10 series a patient; median of $RUNS warm runs."
echo "The floor is \`find\` stat'ing only the series folders and the archives."
echo
echo "| series | instances/series | files | thlhp-make | CPU (user+sys) | per series | floor (dirs only) | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "From the smallest to the largest tree: $growth."
echo "Peak RSS at the largest: $rss_big MB (target: at most 64 MB):"
echo "$(awk -v r="$rss_big" 'BEGIN { print (r <= 64.0 ? "met" : "**missed**") }') (MB here are MiB, 1024 x 1024 bytes, as /usr/bin/time counts KiB)."
echo "At the end of its planning it holds ${split:-(gdb gave nothing)}."
echo "\`thlhp-make --version\` alone peaks at $((base / 1024)) MB: the shared libraries it is linked"
echo "with (DCMTK, libcurl and GnuTLS, libpq, SQLite, libstdc++), mapped and relocated."
echo
echo "The same series count, more instances per series:"
echo
echo "| series | instances/series | files | thlhp-make | CPU (user+sys) | floor (dirs only) | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${srows[@]}"
echo
echo "Notes:"
echo
echo "- Wall time around \`/usr/bin/time -v\` (peak RSS and CPU, user + system, from it),"
echo "  warm page cache; CPU is what a busy machine does not inflate."
echo "- The $load."
echo "- Trees from \`tests/bench/gen_tree.py\` (small DICOM files), built once by"
echo "  \`thlhp-make -j2\` 500 patients a run (one run over 100k series is quadratic in"
echo "  its scheduler's status scan) and cached in $BENCH_DIR (BENCH_SCALE=$BENCH_SCALE)."
echo "- Machine: $(machine)."
