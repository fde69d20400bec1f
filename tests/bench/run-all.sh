#!/usr/bin/env bash
# run-all.sh - run every benchmark of tests/bench/ and write BENCHMARKS.md at
# the top of the checkout, with the chart tests/bench/scaling.png (gnuplot).
#
#   tests/bench/run-all.sh         # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
#   tests/bench/run-all.sh noop    # run only these; the others' sections are
#                                  # their last ones, from $BENCH_DIR/run-all/
#
# Runs each tests/bench/*.sh but itself and the shared lib.sh, in name
# order.  Each prints one markdown section on stdout (## title, a table,
# notes) and its progress on stderr; the sections are collected as they
# are.  A script that fails leaves a line saying so and the others go on;
# the exit status is then 1.  A script finding the machine busy for
# IDLE_WAIT seconds prints a section saying so and exits 3.
# BENCH_SCALE=small writes $BENCH_DIR/BENCHMARKS-small.md and
# scaling-small.png instead, leaving the checkout alone.  Not part of
# tests/run.sh: run it by hand on an otherwise idle machine (each script
# takes up to ~15 minutes on 2 cores, metadata.sh ~20, zip.sh ~35 with its
# three scenarios).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

bench_install gnuplot-nox
thlhp_binary
# Not RUNS: a script has its own default unless one is given (then it is in
# the environment already).
export THLHP BENCH_DIR BENCH_SCALE IDLE_LOAD IDLE_WAIT

OUT=$TOP/BENCHMARKS.md
PNG=$BENCH/scaling.png
[ "$BENCH_SCALE" = small ] && OUT=$BENCH_DIR/BENCHMARKS-small.md PNG=$BENCH_DIR/scaling-small.png
work=$BENCH_DIR/run-all
mkdir -p "$work"
only=" $* "

failed=0 sections=()
for s in "$BENCH"/*.sh; do
	b=$(basename "$s")
	case $b in run-all.sh | lib.sh) continue ;; esac
	if [ "$only" != "  " ] && [[ $only != *" ${b%.sh} "* ]]; then
		if [ -s "$work/${b%.sh}.md" ]; then
			log "$b: not run; its section from $(date -u -r "$work/${b%.sh}.md" '+%Y-%m-%d %H:%M UTC')"
			sections+=("$work/${b%.sh}.md")
		else
			log "$b: not run, and never run before: no section"
		fi
		continue
	fi
	[ "$b" = scaling.sh ] && rm -f "$BENCH_DIR/scaling.dat"
	log "running $b"
	t0=$EPOCHREALTIME
	if bash "$s" >"$work/${b%.sh}.md" 2> >(tee "$work/${b%.sh}.log" >&2); then
		log "$b done in $(fmt_s "$(sub "$EPOCHREALTIME" "$t0")") s"
	else
		rc=$?
		failed=1
		log "$b failed (exit $rc): see $work/${b%.sh}.log"
		# 3: the machine never became idle, and the section says so.
		[ "$rc" -eq 3 ] || printf '## %s\n\nNot measured: `tests/bench/%s` failed with exit %s (its log: %s).\n' \
			"$b" "$b" "$rc" "$work/${b%.sh}.log" >>"$work/${b%.sh}.md"
	fi
	sections+=("$work/${b%.sh}.md")
done

# The chart: no-op time and peak RSS against the number of series.
chart=
if [ -s "$BENCH_DIR/scaling.dat" ]; then
	gnuplot <<-EOF || log "gnuplot failed; BENCHMARKS.md has no chart"
	set terminal pngcairo size 900,540 noenhanced font ",11"
	set output "$PNG"
	set title "thlhp-make --offline -q all on an up-to-date tree (median of $RUNS warm runs)"
	set xlabel "series (10 a patient)"
	set ylabel "seconds"
	set y2label "peak RSS (MB)"
	set logscale x
	set logscale y
	set ytics nomirror
	set y2tics
	set y2range [0:*]
	set grid
	set key top left
	plot "$BENCH_DIR/scaling.dat" using 1:3 with linespoints lw 2 pt 7 title "thlhp-make (wall)", \
	     "" using 1:6 with linespoints lw 2 pt 6 title "thlhp-make (CPU: user + system)", \
	     "" using 1:4 with linespoints lw 2 pt 5 dt 2 title "find: series folders + archives (floor)", \
	     "" using 1:5 axes x1y2 with linespoints lw 1 pt 9 title "thlhp-make peak RSS (MB)"
	EOF
	[ -s "$PNG" ] && chart=$PNG
fi

{
	echo "# Benchmarks"
	echo
	echo "Written by \`tests/bench/run-all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Each section comes from one script of \`tests/bench/\`, which generates its data"
	echo "(cached in \`BENCH_DIR\`, default \`/tmp/thlhp-bench\`), runs every contender on it"
	echo "and prints medians; rerun one with \`tests/bench/NAME.sh\`."
	echo
	echo "- Machine: $(machine)"
	echo "- thlhp-make: $THLHP ($("$THLHP" --version | head -1)), built with -O2, no sanitizers;"
	echo "  commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$TOP" diff --quiet HEAD -- src rules state source 2>/dev/null || echo ' plus uncommitted changes')"
	echo "- Peers: ninja $(ninja --version 2>/dev/null || echo -), $(make --version 2>/dev/null | head -1),"
	echo "  snakemake $(snakemake --version 2>/dev/null || echo -), $(zip -v 2>/dev/null | sed -n 2p | sed 's/^ *//; s/, by .*//' || echo zip), $(find --version | head -1),"
	echo "  DCMTK $(dpkg-query -W -f '${Version}' dcmtk 2>/dev/null || echo -), $(gnuplot --version 2>/dev/null),"
	echo "  PostgreSQL $(dpkg-query -W -f '${Version}' postgresql 2>/dev/null || echo -), SQLite $(sqlite3 --version 2>/dev/null | awk '{ print $1 }')"
	[ "$BENCH_SCALE" = small ] && echo "- **BENCH_SCALE=small: a development pass, not the benchmark.**"
	echo
	if [ -n "$chart" ]; then
		echo "![no-op time against series]($(realpath --relative-to="$TOP" "$chart"))"
		echo
	fi
	for f in "${sections[@]}"; do
		cat "$f"
		echo
	done
} >"$OUT"
log "wrote $OUT${chart:+ and $chart}"
exit "$failed"
