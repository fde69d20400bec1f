#!/usr/bin/env bash
# noop.sh - the no-op check: an up-to-date tree of 1,000
# patients x 10 series x 20 instances with its archives built; how long each
# contender takes to say "nothing to do" on the same graph.
#
#   tests/bench/noop.sh            # THLHP, BENCH_DIR, BENCH_SCALE, RUNS: see lib.sh
#
# Contenders, all run in the project dir on the same files:
#   thlhp-make --offline -q all   the stored catalog, one stat per series folder and archive
#   thlhp-make -q all             the same plus the folder source's walk (a stat per source file)
#   ninja -n                      one edge per archive, every instance file an input
#   make -q                       the same graph as a Makefile
#   snakemake -n                  the same graph as a Snakefile, capped at SNAKEMAKE_TIMEOUT s
#   find, every file              the stat floor: a stat of every file and folder
#   find, series folders          the floor of thlhp-make's way: a stat per series folder and archive
# Prints a markdown section on stdout; progress on stderr.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

bench_install time python3-pydicom ninja-build make snakemake zip strace
thlhp_binary

if [ "$BENCH_SCALE" = small ]; then
	NP=20 NS=10 NI=20
	SNAKEMAKE_TIMEOUT=${SNAKEMAKE_TIMEOUT:-120}
else
	NP=1000 NS=10 NI=20
	SNAKEMAKE_TIMEOUT=${SNAKEMAKE_TIMEOUT:-300}
fi
TITLE="No-op check: $NP patients x $NS series x $NI instances"
D=$(bench_tree "$NP" "$NS" "$NI") || exit 2
cd "$D" || exit 2

# The peers' build files, and their outputs built once by each of them so
# that their own records (.ninja_log, .snakemake/) are in place.
if [ ! -f peers/built ] || [ built -nt peers/built ]; then
	rm -rf peers .ninja_log .snakemake
	"$PY" "$BENCH/gen_peers.py" . || die "gen_peers.py failed"
	log "building the peers' archives once: ninja -j2, make -j2, snakemake --touch"
	ninja -f peers/build.ninja -j2 >peers/ninja-build.log 2>&1 || die "ninja build failed: see $D/peers/ninja-build.log"
	make -f peers/Makefile -j2 >peers/make-build.log 2>&1 || die "make build failed: see $D/peers/make-build.log"
	# Snakemake spends about a second on each job it runs: its archives are
	# make's (the same recipe), taken over with --touch.
	mkdir -p peers/snake && cp -al peers/make/. peers/snake/ &&
		snakemake -s peers/Snakefile -j1 --touch --quiet >peers/snake-build.log 2>&1 ||
		die "snakemake --touch failed: see $D/peers/snake-build.log"
	date >peers/built
fi
# Everything newer than every input: -newer REF is false for all, so find
# prints nothing yet has to stat each entry.
touch peers/ref

nseries=$(find data/dicom -mindepth 3 -maxdepth 3 -type d | wc -l)
nfiles=$(find data/dicom -type f | wc -l)
narch=$(find data/zip -name '*.zip' | wc -l)

# Each contender: a label and its command; the expected exit status and a
# line its output must hold to count as "up to date".
labels=(
	"thlhp-make --offline -q all"
	"thlhp-make -q all (walks the folder source)"
	"ninja -n"
	"make -q"
	"snakemake -n"
	"find, every file (stat floor)"
	"find, series folders + archives (floor, directories only)"
)
cmds=(
	"$THLHP --offline -q all"
	"$THLHP -q all"
	"ninja -f peers/build.ninja -n"
	"make -f peers/Makefile -q all"
	"timeout $SNAKEMAKE_TIMEOUT snakemake -s peers/Snakefile -n -j1"
	"find data/dicom data/zip -newer peers/ref"
	"find data/zip data/dicom -maxdepth 3 ( -path data/zip/* -o -path data/dicom/*/*/* ) -newer peers/ref"
)
expect_rc=(0 0 0 0 0 0 0)
expect_out=("" "" "no work to do" "" "Nothing to be done" "" "")
FIND_FLOOR=6 SNAKE=4

# check_noop I : contender I says "up to date" (exit status and output).
check_noop() {
	local i=$1 rc
	# shellcheck disable=SC2086  # the commands are word lists
	${cmds[$i]} >peers/check.out 2>&1
	rc=$?
	if [ "$rc" -ne "${expect_rc[$i]}" ]; then
		[ "$i" -eq "$SNAKE" ] && [ "$rc" -eq 124 ] && return 0   # timed out: reported as such
		log "${labels[$i]}: exit $rc, not ${expect_rc[$i]}: it does not see the tree as up to date:"
		head -20 peers/check.out >&2
		exit 2
	fi
	if [ -n "${expect_out[$i]}" ] && ! grep -q "${expect_out[$i]}" peers/check.out; then
		log "${labels[$i]}: its output lacks '${expect_out[$i]}':"
		head -20 peers/check.out >&2
		exit 2
	fi
}

# measure I MODE : RUNS timed runs of contender I, warm or cold; sets RES_*
declare -A RES RSS CPU
measure() {
	local i=$1 mode=$2 t=() c=() n=$RUNS k
	[ "$mode" = cold ] || [ "$i" -eq "$SNAKE" ] && n=3
	for ((k = 0; k < n; k++)); do
		[ "$mode" = cold ] && drop_caches
		# shellcheck disable=SC2086
		time_cmd any ${cmds[$i]}
		t+=("$WALL_LAST")
		if [ "$i" -eq "$SNAKE" ] && [ "$RC_LAST" -eq 124 ]; then
			RES[$i,$mode]="> $SNAKEMAKE_TIMEOUT"
			RSS[$i,$mode]=$RSS_LAST
			log "${labels[$i]} ($mode): timed out after $SNAKEMAKE_TIMEOUT s"
			return
		fi
		RSS[$i,$mode]=$RSS_LAST
		c+=("$CPU_LAST")
		if [ -n "${expect_out[$i]}" ] && ! grep -q "${expect_out[$i]}" "$LAST_LOG"; then
			log "${labels[$i]}: its output lacks '${expect_out[$i]}':"
			head -20 "$LAST_LOG" >&2
			exit 2
		fi
	done
	RES[$i,$mode]=$(median "${t[@]}")
	CPU[$i,$mode]=$(median "${c[@]}")
	log "${labels[$i]} ($mode): median $(fmt_s "${RES[$i,$mode]}") s of ${t[*]}"
}

set -f   # the commands are split into words, never globbed
log "checking that every contender sees the tree as up to date"
for i in "${!cmds[@]}"; do [ "$i" -eq "$SNAKE" ] || check_noop "$i"; done

wait_idle "$TITLE"
modes="warm"
[ "$CAN_DROP" = 1 ] && modes="warm cold"
for mode in $modes; do
	for i in "${!cmds[@]}"; do
		# A cold run of Snakemake would take as long again as a warm one,
		# which already shows how it compares; it is skipped when slow.
		if [ "$mode" = cold ] && [ "$i" -eq "$SNAKE" ]; then
			case ${RES[$i,warm]} in ">"*) continue ;; esac
			awk -v t="${RES[$i,warm]}" 'BEGIN { exit !(t > 20) }' && continue
		fi
		# The warm-up run (Snakemake's are slow, and checked as they go).
		[ "$mode" = warm ] && [ "$i" -ne "$SNAKE" ] && check_noop "$i"
		measure "$i" "$mode"
	done
done
load=$(load_note)

# What each does to the file system: stat-family and total system calls,
# counted once by strace -c (not timed).
declare -A NSTAT NSYS
for i in 0 2 3 "$FIND_FLOOR" 5; do
	# shellcheck disable=SC2086
	strace -f -c -o peers/strace.out ${cmds[$i]} >/dev/null 2>&1
	NSTAT[$i]=$(awk '$NF ~ /^(newfstatat|statx|stat|lstat|fstat|fstatat64)$/ { s += $4 } END { print s + 0 }' peers/strace.out)
	NSYS[$i]=$(awk '$NF == "total" { print $4 }' peers/strace.out)
done

# ---- the table --------------------------------------------------------------

ratio_x() { # ratio_x T BASE : T / BASE as "12.3x"
	case $1 in ">"*) awk -v a="${1#> }" -v b="$2" 'BEGIN { printf "> %.0fx", a / b }' ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r >= 100) printf "%.0fx", r; else if (r >= 10) printf "%.1fx", r; else printf "%.2fx", r }' ;;
	esac
}
cell() {    # cell SECONDS
	case $1 in ">"*) printf '> %s s' "${1#> }" ;; "") printf 'not run' ;; *) printf '%s s' "$(fmt_s "$1")" ;; esac
}

base_w=${RES[0,warm]}
peer_versions="thlhp-make $("$THLHP" --version 2>/dev/null | head -1 | awk '{ print $NF }'),
ninja $(ninja --version), $(make --version | head -1), snakemake $(snakemake --version),
$(find --version | head -1)"

echo "## $TITLE"
echo
echo "An up-to-date tree: $nseries series folders, $nfiles instance files (small"
echo "valid DICOM files, $(stat -c %s "$(find data/dicom -type f -print -quit)") bytes each), $narch archives, all built."
echo "Every contender checks the same graph (one archive per patient, every"
echo "instance file an input of its archive) and says \"nothing to do\"."
echo
if [ "$CAN_DROP" = 1 ]; then
	echo "| contender | warm: median of $RUNS | x thlhp-make | CPU (user+sys) | cold: median of 3 | x thlhp-make | peak RSS |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
else
	echo "| contender | warm: median of $RUNS | x thlhp-make | CPU (user+sys) | peak RSS |"
	echo "|---|---:|---:|---:|---:|"
fi
for i in "${!cmds[@]}"; do
	row="| \`${labels[$i]}\` | $(cell "${RES[$i,warm]}") | $(ratio_x "${RES[$i,warm]}" "$base_w") | ${CPU[$i,warm]:-?} s"
	if [ "$CAN_DROP" = 1 ]; then
		if [ -n "${RES[$i,cold]:-}" ]; then
			row="$row | $(cell "${RES[$i,cold]}") | $(ratio_x "${RES[$i,cold]}" "${RES[0,cold]}")"
		else
			row="$row | not run (see notes) | "
		fi
	fi
	echo "$row | $((${RSS[$i,warm]:-0} / 1024)) MB |"
done
echo
echo "System calls of one run (\`strace -f -c\`): $(for i in 0 2 3 "$FIND_FLOOR" 5; do
	printf '%s: %s stat calls of %s in all; ' "\`${labels[$i]%% (*}\`" "${NSTAT[$i]}" "${NSYS[$i]}"
done | sed 's/; $//')."
echo
# The targets this benchmark is held to.
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }
sn=${RES[$SNAKE,warm]#> }
echo "Targets (warm): thlhp-make at or below ninja: $(verdict "$base_w <= ${RES[2,warm]}")"
echo "($(ratio_x "${RES[2,warm]}" "$base_w") faster);"
echo "at least 100x faster than Snakemake: $(verdict "$sn / $base_w >= 100") ($(ratio_x "${RES[$SNAKE,warm]}" "$base_w"));"
echo "within 3x of the directories-only stat floor: $(verdict "$base_w <= 3 * ${RES[$FIND_FLOOR,warm]}")"
echo "($(ratio_x "$base_w" "${RES[$FIND_FLOOR,warm]}") of it)."
echo
echo "Notes:"
echo
echo "- Wall time of each command, taken around \`/usr/bin/time -v\` (which gives"
echo "  the peak RSS; it adds about 1 ms to every contender). Warm: after a"
echo "  warm-up run, everything in the page cache. Cold: \`echo 3 >"
echo "  /proc/sys/vm/drop_caches\` before each run. CPU: the median of user + system"
echo "  seconds (\`/usr/bin/time\`) over the warm runs, which a busy machine does not inflate.$([ "$CAN_DROP" = 1 ] || echo " Not run: not root.")"
echo "- The $load."
echo "- thlhp-make: folder source, SQLite state; \`--offline -q\` reads the stored"
echo "  catalog and stats each series folder and archive. \`-q\` without"
echo "  \`--offline\` also runs the query, which for a folder source walks the"
echo "  source tree and stats each of its $nfiles files (no DICOM is read)."
echo "- ninja, make: \`peers/build.ninja\`, \`peers/Makefile\` written by"
echo "  \`tests/bench/gen_peers.py\`, one edge per archive with the instance files"
echo "  as inputs, built once with \`-j2\` (a \`zip -1 -r\` per patient); each parses"
echo "  its manifest and stats every input on each run."
echo "- snakemake: \`peers/Snakefile\`, rule \`all\` and one \`zip\` rule with an input"
echo "  function (the file lists read once from JSON); its archives are make's,"
echo "  taken over with \`snakemake --touch\`; \`snakemake -n -j1\` under"
echo "  \`timeout $SNAKEMAKE_TIMEOUT\`, 3 runs, each checked to say \"Nothing to be done\".$([ -z "${RES[$SNAKE,cold]:-}" ] && [ "$CAN_DROP" = 1 ] && echo " No cold run: a warm one already takes ${sn} s.")"
echo "- Stat floors: \`find data/dicom data/zip -newer REF\` (REF newer than"
echo "  everything, so nothing is printed but every entry is stat'ed) and the"
echo "  same limited to the series folders (depth 3) and the archives."
echo "- Versions: $(echo "$peer_versions" | tr '\n' ' ')."
echo "- Machine: $(machine)."
echo "- Scale: BENCH_SCALE=$BENCH_SCALE; data in $D."
