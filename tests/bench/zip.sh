#!/usr/bin/env bash
# tests/bench/zip.sh - archives of generated CT series (512x512x16 bit,
# gen_ct.py), three scenarios, each printing its own markdown section:
#
# throughput  one archive per patient from ~1 GB (8 patients x 4 series x 64
#     slices; BENCH_SCALE=small: 2 x 2 x 8), by
#
#       Info-ZIP `zip -r -L`            one patient after the other
#       Info-ZIP, 2 at once             the same under `xargs -P2`
#       Python zipfile                  as a Snakemake rule's run: block does it
#       thlhp-make -j1 zip, -j2 zip     the zip stage alone (see below)
#
#     at each level of LEVELS (default "1 6").  Levels above 1 run on the
#     first SUBSET patients only (default 4 of 8 at full size: deflate -6
#     on noisy CT is ~5x slower).  What is timed for thlhp-make is only its
#     zip stage: the series are downloaded (hard links from the folder
#     "PACS") and validated by an untimed `thlhp-make -j2 validate` first,
#     then each timed run starts with the archives deleted, so every
#     patient's archive is stale ("archive missing") and nothing else is:
#     the run walks the folder source (stat only), plans, and archives.
#     That fixed cost is measured on its own (a no-op `thlhp-make zip`).
#
# append      a new series for each of 8 patients (8 x 8 series x 64 slices,
#     ~2.1 GB; small: 2 x 3 x 8), level 1.  Set up once, untimed: each
#     patient's last series (SeriesNumber 8) held back, `thlhp-make -j2 all`
#     builds the 7-series archives, and that state (.thlhp/, data/zip,
#     data/dicom, the source folder) is saved.  Before each timed append
#     the state is restored from the copy, the 8th series put into the
#     source folder (hard links) and `thlhp-make -j2 validate` run, all
#     untimed; then timed:
#
#       thlhp-make -jN zip              the append (N = 1, 2)
#       thlhp-make -jN -B zip           the full rebuild of the same archives
#       Info-ZIP `zip -1 -r`            each whole patient from scratch, one
#                                       after the other, and 2 at once
#       Info-ZIP update                 per patient: cp old.zip new.tmp.zip,
#                                       zip -1 -r new.tmp.zip <new series>,
#                                       mv, rm old.zip; serial and 2 at once
#
#     The append's archives must be byte-identical to the full rebuild's.
#
# big         one patient's ~2 GB archive (1 x 16 series x 256 slices;
#     small: 1 x 4 x 16), level 1: `thlhp-make -j1 -B zip` and `-j2 -B zip`
#     (the threads inside one archive), 7-Zip `7z a -tzip -mx=1` with
#     -mmt=1 and -mmt=2, and Info-ZIP `zip -1 -r`.
#
# In every scenario RUNS rounds (default 3 here), the contenders
# interleaved within a round, medians; each output is checked (entry
# counts; unzip -t in the first round), untimed.  Data is generated once
# and cached in BENCH_DIR; the work dirs are made anew on each run.  All
# scenarios' data is made and their untimed setup done before the first
# timed run.  Full size takes ~35 minutes on 2 CPUs (throughput ~15,
# append ~10, big ~10), ~15 GB of disk at most.  Prints the markdown
# sections on stdout; progress on stderr.
#
#   tests/bench/zip.sh     # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
#
#   SCENARIOS   which scenarios to run, in the order given (default
#               "throughput append big")
#   LEVELS      throughput: the deflate levels (default "1 6")
#   SUBSET      throughput: how many patients the levels above 1 run on (4)
RUNS=${RUNS:-3}   # its rounds are long: 3 unless RUNS is given
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

SCENARIOS=${SCENARIOS:-throughput append big}
for s in $SCENARIOS; do
	case $s in throughput | append | big) ;; *) die "SCENARIOS: no scenario $s (throughput, append, big)" ;; esac
done
[ -n "${SCENARIOS// /}" ] || die "SCENARIOS is empty (throughput, append, big)"
wanted() { [[ " $SCENARIOS " == *" $1 "* ]]; }

bench_install zip unzip time python3-pydicom python3-numpy
wanted big && bench_install 7zip
thlhp_binary
LEVELS=${LEVELS:-1 6}
SUBSET=${SUBSET:-4}
# Debian 12's 7zip package names its command 7zz; later ones 7z as well.
SEVENZ=$(command -v 7z || command -v 7zz || true)

# need_space PREFIX P S K OUT : before `ct_data PREFIX P S K`: die unless
# the file system of BENCH_DIR has room for that data (unless it is made
# already) and for OUT times its size in archives (deflate -1 makes CT
# about 0.43 of its size), plus the archives of the scenarios set up
# before (written only in their timed runs), with 2 GB to spare.
ARCHIVES_AHEAD=0
need_space() {
	local d=$BENCH_DIR/ct-${1,,}-$2-$3-$4 data need avail
	data=$(($2 * $3 * $4 * 526000))   # the bytes of a 512x512 16-bit slice
	ARCHIVES_AHEAD=$((ARCHIVES_AHEAD + data * $5 / 2))
	need=$((ARCHIVES_AHEAD + 2000000000))
	[ -f "$d.complete" ] || need=$((need + data))
	avail=$(df -B1 --output=avail "$BENCH_DIR" | tail -n 1)
	[ "$avail" -ge "$need" ] ||
		die "$1: needs ~$((need / 1000000000)) GB free in $BENCH_DIR, has $((avail / 1000000000)) GB"
}

# scenario_begin TITLE : right before a scenario's timed runs.  The first
# waits for an idle machine (wait_idle); later ones only note the load,
# which is then this script's own.
IDLE_WAITED=0
scenario_begin() {
	if [ "$IDLE_WAITED" = 0 ]; then
		wait_idle "$1"
		IDLE_WAITED=1
	else
		LOAD_BEFORE=$(load1)
	fi
}

# The new scenarios' timings: XT[scenario.contender] the wall seconds of
# each round, XC the CPU seconds, XSIZE the bytes of its archives.
declare -A XT XC XSIZE

# rounds SCEN NAME... : RUNS rounds of the contenders in this order.  Each
# is prepared (SCEN_prep NAME), `sync` run so that no earlier writes are
# still going to disk, timed (SCEN_NAME), then checked (SCEN_check NAME
# ROUND, which sets CHECKED_BYTES); only the middle step is timed.
rounds() {
	local s=$1 r c
	shift
	for r in $(seq 1 "$RUNS"); do
		for c in "$@"; do
			log "$s, round $r: $c"
			"${s}_prep" "$c"
			sync
			time_sh "${s}_$c"
			XT[$s.$c]+=" $WALL_LAST" XC[$s.$c]+=" $CPU_LAST"
			"${s}_check" "$c" "$r"
			XSIZE[$s.$c]=$CHECKED_BYTES
		done
	done
}

# archives_ok WHAT DIR NAMES PER ROUND : DIR holds exactly the archives
# NAMES (sorted, space-separated) and each has PER .dcm entries; in round 1
# each also passes unzip -t.  Sets CHECKED_BYTES to their total size.
archives_ok() {
	local what=$1 dir=$2 names=$3 per=$4 r=$5 z n has
	has=$(cd "$dir" && ls | sort | tr '\n' ' ')
	[ "$has" = "$names " ] || die "$what: $dir holds ${has:-nothing}, expected $names"
	for z in $names; do
		n=$(unzip -Z1 "$dir/$z" | grep -c '\.dcm$')
		[ "$n" = "$per" ] || die "$what: $z holds $n .dcm entries, expected $per"
		[ "$r" -gt 1 ] || unzip -tqq "$dir/$z" >/dev/null 2>&1 || die "$what: $z fails unzip -t"
	done
	CHECKED_BYTES=$(cd "$dir" && stat -c %s $names | awk '{ s += $1 } END { printf "%d", s }')
}

# jobs_ok WHAT LOG JOBS : LOG, thlhp-make's output, ends saying it did
# exactly JOBS (as it counts them: "8 zip", "2 download, 2 validate").
jobs_ok() {
	local n
	n=$(echo "$3" | awk -F', ' '{ for (i = 1; i <= NF; i++) { split($i, w, " "); s += w[1] } } END { print s }')
	grep -q "thlhp-make: $n jobs\{0,1\} done in [^ ]* ($3)" "$2" ||
		{ tail -n 3 "$2" >&2; die "$1: thlhp-make should have done $3 jobs, no other"; }
}

# mb BYTES : in MB, no decimals
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
# med SCEN.NAME : the median wall seconds of a contender; medc its CPU seconds
# shellcheck disable=SC2086
med() { median ${XT[$1]}; }
# shellcheck disable=SC2086
medc() { median ${XC[$1]}; }

# Versions, thlhp-make, the machine and the load: the last notes of a section.
versions_note() {
	echo "- $(zip -v 2>/dev/null | sed -n 's/^This is \(Zip [^ ]*\).*/Info-ZIP \1/p' | head -1)${SEVENZ:+, $("$SEVENZ" i 2>/dev/null | sed -n 's/^\(7-Zip[^:]*\) :.*/\1/p' | head -1) (\`$(basename "$SEVENZ")\`)}, libzip $(pkg-config --modversion libzip 2>/dev/null || echo '?'), libdeflate $(pkg-config --modversion libdeflate 2>/dev/null || echo '?')"
	echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), $THLHP"
	echo "- $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM: the inputs are in the page cache; $1"
}

# ---- scenario throughput ---------------------------------------------------

write_ini() {  # write_ini LEVEL PATIENTS...
	local level=$1
	shift
	cat >"$PROJ/thlhp.ini" <<INI
[pacs]
protocol = folder
path = $DATA

[select]
patient_id = $*

[output]
dicom_dir = data/dicom
zip_dir = data/zip
compression = deflate
level = $level

[state]
url = sqlite:.thlhp/state.db
INI
}

throughput_setup() {
	if [ "$BENCH_SCALE" = small ]; then
		NP=2 NS=2 NK=8
	else
		NP=8 NS=4 NK=64
	fi
	need_space ZIP "$NP" "$NS" "$NK" 4
	ct_data ZIP "$NP" "$NS" "$NK"
	Z_DATA=$DATA Z_BYTES=$BYTES Z_NFILES=$NFILES
	ALL_PATIENTS=$(cd "$DATA" && ls -d ZIP-* | sort)

	W=$BENCH_DIR/zip-work
	rm -rf "$W"
	mkdir -p "$W/out"

	# The thlhp-make project: folder source, series hard-linked into data/dicom.
	PROJ=$W/proj
	mkdir -p "$PROJ"
	write_ini 1 'ZIP-*'
	log "download (hard links) and validate $NFILES files, untimed"
	(cd "$PROJ" && "$THLHP" -j2 validate >"$W/validate.log" 2>&1) ||
		{ tail "$W/validate.log" >&2; die "thlhp-make -j2 validate failed"; }
	[ "$(find "$PROJ/data/dicom" -name '*.dcm' | wc -l)" = "$NFILES" ] ||
		die "thlhp-make validate did not bring all $NFILES files"
}

# The contenders.
# Each writes one archive per patient into $W/out/<name>, entries
# <study>/<series>/<file>.dcm, at level $LEVEL.

fresh() { rm -rf "$W/out/$1"; mkdir -p "$W/out/$1"; }

c_infozip() {
	local p
	fresh infozip
	for p in $PATIENTS; do
		(cd "$DATA/$p" && zip -q -r -D "-$LEVEL" "$W/out/infozip/$p.zip" .) || return 1
	done
}

c_infozip_p2() {
	fresh infozip2
	printf '%s\n' $PATIENTS | xargs -P2 -I{} sh -c \
		'cd "$1/$2" && zip -q -r -D "-$3" "$4/$2.zip" .' sh "$DATA" {} "$LEVEL" "$W/out/infozip2"
}

c_python() {
	fresh python
	"$PY" - "$DATA" "$W/out/python" "$LEVEL" $PATIENTS <<'PYEOF'
import os, sys, zipfile
data, out, level = sys.argv[1], sys.argv[2], int(sys.argv[3])
for p in sys.argv[4:]:
    root = os.path.join(data, p)
    with zipfile.ZipFile(os.path.join(out, p + ".zip"), "w", zipfile.ZIP_DEFLATED,
                         compresslevel=level) as z:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                path = os.path.join(d, f)
                z.write(path, os.path.relpath(path, root))
PYEOF
}

c_thlhp() {
	rm -f "$PROJ"/data/zip/*.zip
	(cd "$PROJ" && "$THLHP" "-j$1" zip)
}
c_thlhp1() { c_thlhp 1; }
c_thlhp2() { c_thlhp 2; }
c_noop() { (cd "$PROJ" && "$THLHP" -j1 zip); }

NAMES="infozip infozip_p2 python thlhp1 thlhp2"
declare -A LABEL=(
	[infozip]='Info-ZIP `zip -r -LEVEL`, one patient after the other'
	[infozip_p2]='Info-ZIP `zip -r -LEVEL`, 2 at once (`xargs -P2`)'
	[python]='Python `zipfile` (ZIP_DEFLATED, compresslevel=LEVEL), as a Snakemake rule'
	[thlhp1]='**thlhp-make -j1 zip**'
	[thlhp2]='**thlhp-make -j2 zip**'
)
declare -A OUTDIR=([infozip]=infozip [infozip_p2]=infozip2 [python]=python
	[thlhp1]=../proj/data/zip [thlhp2]=../proj/data/zip)
declare -A PEER=([infozip]=thlhp1 [infozip_p2]=thlhp2 [python]=thlhp1 [thlhp1]=thlhp1 [thlhp2]=thlhp1)

# zipped_ok NAME : the archives of NAME hold every input file and pass unzip -t.
zipped_ok() {
	local d=$W/out/${OUTDIR[$1]} z n=0 want
	want=$(cd "$DATA" && find $PATIENTS -name '*.dcm' | wc -l)
	for z in "$d"/*.zip; do
		unzip -tqq "$z" >/dev/null 2>&1 || die "$1: $z fails unzip -t"
		n=$((n + $(unzip -Z1 "$z" | grep -c '\.dcm$')))
	done
	[ "$n" = "$want" ] || die "$1: archives hold $n of $want files"
}

throughput_run() {
	local TITLE="Archive throughput (zip)"
	DATA=$Z_DATA BYTES=$Z_BYTES NFILES=$Z_NFILES
	scenario_begin "$TITLE"
	declare -A T C V SIZE LBYTES LNP
	NOOP=
	for LEVEL in $LEVELS; do
		PATIENTS=$ALL_PATIENTS
		[ "$LEVEL" = 1 ] || PATIENTS=$(printf '%s\n' $ALL_PATIENTS | head -n "$SUBSET")
		LNP[$LEVEL]=$(echo $PATIENTS | wc -w)
		LBYTES[$LEVEL]=$(cd "$DATA" && find $PATIENTS -name '*.dcm' -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
		# shellcheck disable=SC2086
		write_ini "$LEVEL" $PATIENTS
		# settings changed: one untimed build at this level, so the timed runs
		# find only the archives missing
		rm -f "$PROJ"/data/zip/*.zip
		(cd "$PROJ" && "$THLHP" -j2 zip >"$W/settle.log" 2>&1) || { tail "$W/settle.log" >&2; die "thlhp-make zip failed"; }
		for r in $(seq 1 "$RUNS"); do
			for c in $NAMES; do
				log "level $LEVEL, round $r: $c"
				key="$LEVEL.$c"
				time_sh "c_$c"
				T[$key]+=" $WALL_LAST" C[$key]+=" $CPU_LAST"
				[ "$r" -gt 1 ] || { zipped_ok "$c"; SIZE[$key]=$(cat "$W/out/${OUTDIR[$c]}"/*.zip | wc -c); }
			done
			time_sh c_noop
			NOOP+=" $WALL_LAST"
		done
		# What thlhp-make's verify does (read every entry back, inflate, CRC),
		# done by zlib through Python on its archives: its CPU cost alone.
		time_sh "$PY" -c 'import sys, zipfile
for a in sys.argv[1:]:
    assert zipfile.ZipFile(a).testzip() is None, a' "$PROJ"/data/zip/*.zip
		V[$LEVEL]=$CPU_LAST
	done
	load=$(load_note)

	# the report

	echo "## $TITLE"
	echo
	printf '%d patients x %d series x %d slices of 512x512 16-bit CT (%s files, %.0f MB), one archive per patient, deflate at the level shown; median of %d runs. Ratio: the contender'"'"'s MB/s divided by thlhp-make'"'"'s at the same parallelism (-j1, or -j2 for the parallel rows); above 1 the contender is faster.\n' \
		"$NP" "$NS" "$NK" "$NFILES" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$RUNS"
	[ "$(echo $LEVELS)" = 1 ] || echo "Levels above 1 run on the first $SUBSET patients only (deflate -6 is several times slower on noisy CT; this keeps the scenario under ~15 minutes)."
	echo
	echo "| level | patients (MB) | contender | median s | MB/s of input | CPU s | archives MB | ratio to thlhp-make |"
	echo "|---|---|---|---:|---:|---:|---:|---:|"
	for LEVEL in $LEVELS; do
		BYTES=${LBYTES[$LEVEL]}
		for c in $NAMES; do
			key="$LEVEL.$c"
			# shellcheck disable=SC2086
			m=$(median ${T[$key]})
			# shellcheck disable=SC2086
			mp=$(median ${T[$LEVEL.${PEER[$c]}]})
			# shellcheck disable=SC2086
			printf '| %s | %s (%.0f) | %s | %.3f | %s | %.3f | %.0f | %s |\n' "$LEVEL" "${LNP[$LEVEL]}" \
				"$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "${LABEL[$c]//LEVEL/$LEVEL}" "$m" \
				"$(mbps "$BYTES" "$m")" "$(median ${C[$key]})" "$(awk -v b="${SIZE[$key]}" 'BEGIN { print b / 1e6 }')" \
				"$(ratio "$(mbps "$BYTES" "$m")" "$(mbps "$BYTES" "$mp")")"
		done
	done
	echo
	for LEVEL in $LEVELS; do
		# shellcheck disable=SC2086
		printf -- '- level %s: thlhp-make -j2 / -j1 = %sx; thlhp-make -j1 / Info-ZIP = %sx (wall clock), %sx (CPU). Its own check of every entry (inflated by libdeflate right after it is compressed, and compared) is inside its CPU s (%.3f); a read-back of the archives through zlib (Python'"'"'s `testzip`) takes %s CPU s\n' "$LEVEL" \
			"$(ratio "$(median ${T[$LEVEL.thlhp1]})" "$(median ${T[$LEVEL.thlhp2]})")" \
			"$(ratio "$(median ${T[$LEVEL.infozip]})" "$(median ${T[$LEVEL.thlhp1]})")" \
			"$(ratio "$(median ${C[$LEVEL.infozip]})" "$(median ${C[$LEVEL.thlhp1]})")" \
			"$(median ${C[$LEVEL.thlhp1]})" "${V[$LEVEL]}"
	done
	# shellcheck disable=SC2086
	printf -- '- fixed cost inside the thlhp-make rows: a no-op `thlhp-make zip` (walk and stat the folder source, plan, nothing to build) takes %.3f s (median of %d)\n' \
		"$(median $NOOP)" "$(echo $NOOP | wc -w)"
	echo '- thlhp-make does more than write: its DEFLATE is libdeflate'"'"'s (libzip writes the archive), each entry is inflated again right after it is compressed and compared with the file, the archive goes to disk past the page cache (O_DIRECT) and is hashed (XXH3, the whole file and each entry'"'"'s bytes against what was handed to libzip) as it is written, then fsynced and renamed into place; the others only write (no fsync)'
	echo "- the inputs are in the page cache for every contender ($(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, data read before); archives are written to the same disk"
	echo "- $(zip -v 2>/dev/null | sed -n 's/^This is \(Zip [^ ]*\).*/Info-ZIP \1/p' | head -1), Python $("$PY" -c 'import sys, zlib; print(sys.version.split()[0], "with zlib", zlib.ZLIB_RUNTIME_VERSION)'), libzip $(pkg-config --modversion libzip 2>/dev/null || echo '?'), libdeflate $(pkg-config --modversion libdeflate 2>/dev/null || echo '?'), zlib $(pkg-config --modversion zlib 2>/dev/null || echo '?')"
	echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), $THLHP"
	echo "- $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)); $load"
	echo
}

# ---- scenario append -------------------------------------------------------

# $A: proj/ the thlhp-make project (thlhp.ini; src/ its folder "PACS", hard
# links to $A_DATA; .thlhp/, data/ as thlhp-make leaves them), saved/ the
# 7-series state (.thlhp/, data/zip, data/dicom, src/) and Info-ZIP's 7-series
# archives (infozip/), held the series held back ("patient study series" a
# line), out/ the Info-ZIP contenders' archives, cmp/ the append's archives
# kept for the comparison with the full rebuild.
append_setup() {
	local p st se
	if [ "$BENCH_SCALE" = small ]; then
		A_NP=2 A_NS=3 A_NK=8
	else
		A_NP=8 A_NS=8 A_NK=64
	fi
	need_space APP "$A_NP" "$A_NS" "$A_NK" 7
	ct_data APP "$A_NP" "$A_NS" "$A_NK"
	A_DATA=$DATA A_BYTES=$BYTES A_NFILES=$NFILES
	A=$BENCH_DIR/zip-append
	rm -rf "$A"
	mkdir -p "$A/proj" "$A/saved/data" "$A/out"
	# Each patient's newest series (gen_ct.py's last: SeriesNumber A_NS).
	"$PY" - "$BENCH" "$A_NP" "$A_NS" >"$A/held" <<'PYEOF' || die "listing the held-back series failed"
import sys
sys.path.insert(0, sys.argv[1])
from gen_ct import make_uid
for p in range(int(sys.argv[2])):
    pid = "APP-%02d" % (p + 1)
    print(pid, make_uid("bench", pid, "study"), make_uid("bench", pid, "series", int(sys.argv[3]) - 1))
PYEOF
	A_NEW_BYTES=0
	while read -r p st se; do
		[ -d "$A_DATA/$p/$st/$se" ] || die "$A_DATA/$p/$st/$se: no such series"
		A_NEW_BYTES=$((A_NEW_BYTES + $(bytes_of "$A_DATA/$p/$st/$se")))
	done <"$A/held"
	A_PATIENTS=$(cut -d' ' -f1 "$A/held" | sort | tr '\n' ' ')
	A_OLD=$(for p in $A_PATIENTS; do echo "${p}__seriesCount$((A_NS - 1)).zip"; done | sort | tr '\n' ' ')
	A_OLD=${A_OLD% }
	A_NEW=$(for p in $A_PATIENTS; do echo "${p}__seriesCount$A_NS.zip"; done | sort | tr '\n' ' ')
	A_NEW=${A_NEW% }
	cat >"$A/proj/thlhp.ini" <<-EOF
	[pacs]
	protocol = folder
	path = src

	[select]
	patient_id = APP-*

	[output]
	dicom_dir = data/dicom
	zip_dir = data/zip
	compression = deflate
	level = 1

	[state]
	url = sqlite:.thlhp/state.db
	EOF
	cp -al "$A_DATA" "$A/proj/src" || die "cp -al $A_DATA failed"
	while read -r p st se; do rm -r "$A/proj/src/$p/$st/$se"; done <"$A/held"
	log "append: $A_NP patients x $((A_NS - 1)) series: thlhp-make -j2 all, untimed"
	(cd "$A/proj" && "$THLHP" -j2 all >"$A/setup.log" 2>&1) ||
		{ tail "$A/setup.log" >&2; die "append: thlhp-make -j2 all failed"; }
	archives_ok "the $((A_NS - 1))-series archives" "$A/proj/data/zip" "$A_OLD" $(((A_NS - 1) * A_NK)) 1
	cp -a "$A/proj/.thlhp" "$A/saved/" && cp -a "$A/proj/data/zip" "$A/saved/data/" &&
		cp -al "$A/proj/data/dicom" "$A/saved/data/" && cp -al "$A/proj/src" "$A/saved/" ||
		die "append: saving the $((A_NS - 1))-series state failed"
	log "append: Info-ZIP's $((A_NS - 1))-series archives, for its update mode, untimed"
	mkdir -p "$A/saved/infozip"
	for p in $A_PATIENTS; do
		(cd "$A/saved/src/$p" && zip -q -r -D -1 "$A/saved/infozip/${p}__seriesCount$((A_NS - 1)).zip" .) ||
			die "append: zip of $p failed"
	done
	archives_ok "Info-ZIP's $((A_NS - 1))-series archives" "$A/saved/infozip" "$A_OLD" $(((A_NS - 1) * A_NK)) 1
}

# append_arrive : back to the saved 7-series state, then the new series
# arrive: hard-linked into the source folder, downloaded and validated by
# `thlhp-make -j2 validate`.  Checks that what the zip stage then has to do
# (its dry run) is one "series added" archive per patient, and the same in
# every round.
append_arrive() {
	local p st se n
	rm -rf "$A/proj/.thlhp" "$A/proj/data" "$A/proj/src"
	mkdir "$A/proj/data"
	cp -a "$A/saved/.thlhp" "$A/proj/" && cp -a "$A/saved/data/zip" "$A/proj/data/" &&
		cp -al "$A/saved/data/dicom" "$A/proj/data/" && cp -al "$A/saved/src" "$A/proj/" ||
		die "append: restoring the $((A_NS - 1))-series state failed"
	while read -r p st se; do
		cp -al "$A_DATA/$p/$st/$se" "$A/proj/src/$p/$st/" || die "append: adding $p's new series failed"
	done <"$A/held"
	(cd "$A/proj" && "$THLHP" -j2 validate >"$A/validate.log" 2>&1) ||
		{ tail "$A/validate.log" >&2; die "append: thlhp-make -j2 validate failed"; }
	n=$(find "$A/proj/data/dicom" -name '*.dcm' | wc -l)
	[ "$n" = "$A_NFILES" ] || die "append: data/dicom holds $n files after validate, expected $A_NFILES"
	jobs_ok "append: validate" "$A/validate.log" "$A_NP download, $A_NP validate"
	(cd "$A/proj" && "$THLHP" --offline -n zip >"$A/dry-run" 2>&1) || die "append: thlhp-make -n zip failed"
	if [ ! -f "$A/dry-run.first" ]; then
		n=$(grep -c "^zip .*__seriesCount$A_NS\.zip  series added .*; replaces .*__seriesCount$((A_NS - 1))\.zip\$" "$A/dry-run")
		[ "$n" = "$A_NP" ] && [ "$(grep -c '^zip ' "$A/dry-run")" = "$A_NP" ] ||
			{ cat "$A/dry-run" >&2; die "append: thlhp-make -n zip should list $A_NP archives, each 'series added'"; }
		cp "$A/dry-run" "$A/dry-run.first"
	fi
	cmp -s "$A/dry-run" "$A/dry-run.first" ||
		{ diff "$A/dry-run.first" "$A/dry-run" >&2; die "append: the restored state is not the one of the first round"; }
}

append_app1() { (cd "$A/proj" && "$THLHP" -j1 zip); }
append_app2() { (cd "$A/proj" && "$THLHP" -j2 zip); }
append_full1() { (cd "$A/proj" && "$THLHP" -j1 -B zip); }
append_full2() { (cd "$A/proj" && "$THLHP" -j2 -B zip); }

# Info-ZIP, each whole patient from the generated folder (all its series).
append_izip() {
	local p
	for p in $A_PATIENTS; do
		(cd "$A_DATA/$p" && zip -q -r -D -1 "$A/out/izip/${p}__seriesCount$A_NS.zip" .) || return 1
	done
}
append_izip2() {
	printf '%s\n' $A_PATIENTS | xargs -P2 -I{} sh -c \
		'cd "$1/$2" && zip -q -r -D -1 "$3/$2__seriesCount$4.zip" .' sh "$A_DATA" {} "$A/out/izip2" "$A_NS"
}

# Info-ZIP's update mode, as a script would add a patient's new series:
# a copy of the old archive, the new series' files added to it, the copy
# renamed, the old one removed (as thlhp-make removes it).  Arguments: the
# data folder, the output folder, the series count, then patient, study
# and series (the order that lets xargs append the last three).
# shellcheck disable=SC2016
A_UPDATE='old="$2/$4__seriesCount$(($3 - 1)).zip" new="$2/$4__seriesCount$3.zip" &&
	cd "$1/$4" && cp "$old" "$new.tmp.zip" && zip -q -r -D -1 "$new.tmp.zip" "$5/$6" &&
	mv "$new.tmp.zip" "$new" && rm "$old"'
append_upd() {
	local p st se
	while read -r p st se; do
		sh -c "$A_UPDATE" sh "$A_DATA" "$A/out/upd" "$A_NS" "$p" "$st" "$se" || return 1
	done <"$A/held"
}
append_upd2() { xargs -P2 -n3 sh -c "$A_UPDATE" sh "$A_DATA" "$A/out/upd2" "$A_NS" <"$A/held"; }

append_prep() {
	case $1 in
	app*) append_arrive ;;
	full*)
		# right after the append at the same -j, on the state it left:
		# its archives are kept (hard links) for the comparison
		rm -rf "$A/cmp"
		mkdir "$A/cmp"
		archives_ok "the append's archives" "$A/proj/data/zip" "$A_NEW" $((A_NS * A_NK)) 2
		(cd "$A/proj/data/zip" && ln $A_NEW "$A/cmp/") || die "append: ln failed"
		;;
	izip*) rm -rf "$A/out/$1" && mkdir -p "$A/out/$1" ;;
	upd*) rm -rf "$A/out/$1" && cp -a "$A/saved/infozip" "$A/out/$1" ;;
	esac
}

append_check() {
	local z
	case $1 in
	app*)
		jobs_ok "$1" "$LAST_LOG" "$A_NP zip"
		archives_ok "$1" "$A/proj/data/zip" "$A_NEW" $((A_NS * A_NK)) "$2"
		;;
	full*)
		jobs_ok "$1" "$LAST_LOG" "$A_NP zip"
		archives_ok "$1" "$A/proj/data/zip" "$A_NEW" $((A_NS * A_NK)) "$2"
		for z in $A_NEW; do
			cmp -s "$A/cmp/$z" "$A/proj/data/zip/$z" ||
				die "append: $z made by the append differs from the full rebuild's (round $2, ${1#full}: -j${1#full})"
		done
		;;
	*) archives_ok "$1" "$A/out/$1" "$A_NEW" $((A_NS * A_NK)) "$2" ;;
	esac
}

append_run() {
	local TITLE="New series for $A_NP patients (zip)" c m u names="app1 full1 app2 full2 izip izip2 upd upd2" load
	local -A label=(
		[app1]='**thlhp-make -j1 zip** (the append)'
		[app2]='**thlhp-make -j2 zip** (the append)'
		[full1]='thlhp-make -j1 -B zip (full rebuild)'
		[full2]='thlhp-make -j2 -B zip (full rebuild)'
		[izip]='Info-ZIP `zip -r -1` of each whole patient, one after the other'
		[izip2]='Info-ZIP `zip -r -1` of each whole patient, 2 at once (`xargs -P2`)'
		[upd]='Info-ZIP update: `cp` old, `zip -r -1` the new series into it, `mv`; one patient after the other'
		[upd2]='Info-ZIP update, 2 at once (`xargs -P2`)'
	) at=([app1]=1 [app2]=2 [full1]=1 [full2]=2 [izip]=1 [izip2]=2 [upd]=1 [upd2]=2)
	scenario_begin "$TITLE"
	rm -f "$A/dry-run.first"
	# shellcheck disable=SC2086
	rounds append $names
	load=$(load_note)
	# the bulk: rebuilt on the next run
	rm -rf "$A/out" "$A/cmp"

	echo "## $TITLE"
	echo
	printf '%d patients, each with an archive of %d series, get series %d (%d slices of 512x512 16-bit CT a series: %d files, %s MB in the %d-series archives, of which the new series %s MB), deflate level 1; median of %d rounds. Ratio: the contender'"'"'s time divided by thlhp-make'"'"'s full rebuild at the same parallelism (-j1, or -j2 for the rows doing 2 at once); the target for the append is at most 0.2.\n' \
		"$A_NP" "$((A_NS - 1))" "$A_NS" "$A_NK" "$A_NFILES" "$(mb "$A_BYTES")" "$A_NS" "$(mb "$A_NEW_BYTES")" "$RUNS"
	echo
	echo "| contender | at once | median s | MB/s of input | CPU s | archives MB | ratio to the full rebuild |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for c in $names; do
		m=$(med "append.$c")
		printf '| %s | %s | %.3f | %s | %.3f | %s | %s |\n' "${label[$c]}" "${at[$c]}" "$m" \
			"$(mbps "$A_BYTES" "$m")" "$(medc "append.$c")" "$(mb "${XSIZE[append.$c]}")" \
			"$(ratio "$m" "$(med "append.full${at[$c]}")")"
	done
	echo
	for c in 1 2; do
		m=$(ratio "$(med "append.app$c")" "$(med "append.full$c")")
		u=upd
		[ "$c" = 1 ] || u=upd2
		printf -- '- -j%s: the append takes %sx the full rebuild (target: at most 0.2x: %s); Info-ZIP'"'"'s update mode %sx\n' "$c" "$m" \
			"$(awk -v r="$m" 'BEGIN { print (r <= 0.2 ? "met" : "not met") }')" \
			"$(ratio "$(med "append.$u")" "$(med "append.full$c")")"
	done
	echo "- MB/s of input: the $(mb "$A_BYTES") MB of the $A_NS-series archives' files divided by the time, for every row (the append compresses $(mb "$A_NEW_BYTES") MB of them)"
	echo "- timed, thlhp-make: the append is \`thlhp-make -jN zip\` once the new series are downloaded and validated: it walks the folder source, plans (each archive stale: \"series added ...; replaces X__seriesCount$((A_NS - 1)).zip\"), writes X__seriesCount$A_NS.zip under a temp name (the unchanged entries copied from the older archive, each checked against the hash recorded when it was written; the new ones compressed and checked), hashes what it writes, fsyncs, renames it into place and removes X__seriesCount$((A_NS - 1)).zip. The full rebuild is \`thlhp-make -jN -B zip\` right after the append at the same -j, on the state it left: the same $A_NS-series archives made again, every entry compressed. The append's archives are byte-identical to the full rebuild's (\`cmp\`, every round)"
	echo "- untimed before each append: the state of the $((A_NS - 1))-series archives restored from a copy made after \`thlhp-make -j2 all\` (\`cp -a\` of .thlhp/ and of data/zip, which keeps the archives' mtimes; hard links, \`cp -al\`, for data/dicom and the source folder), each patient's new series hard-linked into the source folder, \`thlhp-make -j2 validate\` (the download: hard links; the validation), then \`sync\`. \`thlhp-make --offline -n zip\` then lists the $A_NP archives as \"series added\", the same in every round (checked)"
	echo "- timed, Info-ZIP: \`cd <patient> && zip -q -r -D -1 X__seriesCount$A_NS.zip .\` from scratch; the update mode, per patient: \`cp X__seriesCount$((A_NS - 1)).zip X__seriesCount$A_NS.tmp.zip && zip -q -r -D -1 X__seriesCount$A_NS.tmp.zip <study>/<new series> && mv X__seriesCount$A_NS.tmp.zip X__seriesCount$A_NS.zip && rm X__seriesCount$((A_NS - 1)).zip\` (zip copies the old entries without recompressing them, into a temp file of its own that it renames over the archive: the old entries are written twice). Info-ZIP's $((A_NS - 1))-series archives are made in the setup and copied back, untimed, before each round; Info-ZIP does not fsync"
	echo "- every contender's archives are checked untimed after each run: the $A_NP names, $((A_NS * A_NK)) .dcm entries in each, unzip -t in the first round; \`sync\` before every timed run"
	versions_note "$load"
	echo
}

# ---- scenario big ----------------------------------------------------------

# $B: proj/ the thlhp-make project (folder source: the generated data),
# out/ the others' archives, cmp/ thlhp-make -j1's archive kept for the
# comparison with -j2's.
big_setup() {
	if [ "$BENCH_SCALE" = small ]; then
		B_NS=4 B_NK=16
	else
		B_NS=16 B_NK=256
	fi
	[ -n "$SEVENZ" ] || die "big: no 7z or 7zz command after installing 7zip"
	need_space BIG 1 "$B_NS" "$B_NK" 4
	ct_data BIG 1 "$B_NS" "$B_NK"
	B_DATA=$DATA B_BYTES=$BYTES B_NFILES=$NFILES B_PID=BIG-01
	B_NAME=${B_PID}__seriesCount$B_NS.zip
	B=$BENCH_DIR/zip-big
	rm -rf "$B"
	mkdir -p "$B/proj" "$B/out"
	cat >"$B/proj/thlhp.ini" <<-EOF
	[pacs]
	protocol = folder
	path = $B_DATA

	[select]
	patient_id = $B_PID

	[output]
	dicom_dir = data/dicom
	zip_dir = data/zip
	compression = deflate
	level = 1

	[state]
	url = sqlite:.thlhp/state.db
	EOF
	log "big: download (hard links), validate and zip $B_NFILES files, untimed"
	(cd "$B/proj" && "$THLHP" -j2 zip >"$B/setup.log" 2>&1) ||
		{ tail "$B/setup.log" >&2; die "big: thlhp-make -j2 zip failed"; }
	archives_ok "big: the first archive" "$B/proj/data/zip" "$B_NAME" "$B_NFILES" 1
}

big_thlhp1() { (cd "$B/proj" && "$THLHP" -j1 -B zip); }
big_thlhp2() { (cd "$B/proj" && "$THLHP" -j2 -B zip); }
big_7z() { (cd "$B_DATA/$B_PID" && "$SEVENZ" a -tzip -mx=1 "-mmt=$1" -bd -bso0 -bsp0 "$B/out/$2/$B_NAME" .); }
big_7z1() { big_7z 1 7z1; }
big_7z2() { big_7z 2 7z2; }
big_izip() { (cd "$B_DATA/$B_PID" && zip -q -r -D -1 "$B/out/izip/$B_NAME" .); }

big_prep() {
	case $1 in
	thlhp1) ;;
	thlhp2)
		# right after -j1: its archive is kept for the comparison
		rm -rf "$B/cmp"
		mkdir "$B/cmp"
		ln "$B/proj/data/zip/$B_NAME" "$B/cmp/" || die "big: ln failed"
		;;
	*) rm -rf "$B/out/$1" && mkdir -p "$B/out/$1" ;;
	esac
}

big_check() {
	case $1 in
	thlhp*)
		jobs_ok "$1" "$LAST_LOG" "1 zip"
		archives_ok "$1" "$B/proj/data/zip" "$B_NAME" "$B_NFILES" "$2"
		;;
	*) archives_ok "$1" "$B/out/$1" "$B_NAME" "$B_NFILES" "$2" ;;
	esac
	[ "$1" != thlhp2 ] || cmp -s "$B/cmp/$B_NAME" "$B/proj/data/zip/$B_NAME" ||
		die "big: thlhp-make -j2 made another archive than -j1 (round $2)"
}

big_run() {
	local TITLE c m names="thlhp1 thlhp2 7z1 7z2 izip" load
	local -A label=(
		[thlhp1]='**thlhp-make -j1 -B zip**'
		[thlhp2]='**thlhp-make -j2 -B zip**'
		[7z1]='7-Zip `7z a -tzip -mx=1 -mmt=1`'
		[7z2]='7-Zip `7z a -tzip -mx=1 -mmt=2`'
		[izip]='Info-ZIP `zip -r -1`'
	) threads=([thlhp1]=1 [thlhp2]=2 [7z1]=1 [7z2]=2 [izip]=1)
	TITLE="One patient's $(awk -v b="$B_BYTES" 'BEGIN { if (b >= 1e9) printf "%.0f GB", b / 1e9; else printf "%.0f MB", b / 1e6 }') archive (zip)"
	scenario_begin "$TITLE"
	# shellcheck disable=SC2086
	rounds big $names
	load=$(load_note)
	rm -rf "$B/out" "$B/cmp"

	echo "## $TITLE"
	echo
	printf 'One patient, %d series x %d slices of 512x512 16-bit CT (%d files, %s MB), into one archive, deflate level 1; median of %d rounds. Ratio: thlhp-make -j1'"'"'s time divided by the contender'"'"'s; above 1 the contender is faster. The target for thlhp-make -j2 (the entries of one archive compressed on 2 threads) is at least 1.8.\n' \
		"$B_NS" "$B_NK" "$B_NFILES" "$(mb "$B_BYTES")" "$RUNS"
	echo
	echo "| contender | threads | median s | MB/s of input | CPU s | archive MB | ratio to thlhp-make -j1 |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for c in $names; do
		m=$(med "big.$c")
		printf '| %s | %s | %.3f | %s | %.3f | %s | %s |\n' "${label[$c]}" "${threads[$c]}" "$m" \
			"$(mbps "$B_BYTES" "$m")" "$(medc "big.$c")" "$(mb "${XSIZE[big.$c]}")" \
			"$(ratio "$(med big.thlhp1)" "$m")"
	done
	echo
	m=$(ratio "$(med big.thlhp1)" "$(med big.thlhp2)")
	printf -- '- thlhp-make -j1 / -j2 = %sx (target: at least 1.8x: %s); 7-Zip -mmt=1 / -mmt=2 = %sx; thlhp-make -j2 / 7-Zip -mmt=2 = %sx (wall clock)\n' "$m" \
		"$(awk -v r="$m" 'BEGIN { print (r >= 1.8 ? "met" : "not met") }')" \
		"$(ratio "$(med big.7z1)" "$(med big.7z2)")" "$(ratio "$(med big.7z2)" "$(med big.thlhp2)")"
	echo "- timed, thlhp-make: \`thlhp-make -jN -B zip\`, the series downloaded (hard links) and validated before, untimed: it walks the folder source, plans (the archive stale: \"forced\"), writes the archive under a temp name (every entry compressed and checked by inflating it again), hashes what it writes, fsyncs and renames it over the one before. -j2 runs right after -j1 and must write the same bytes (\`cmp\`, every round)"
	echo "- timed, the others: \`cd <patient> && 7z a -tzip -mx=1 -mmt=N -bd -bso0 -bsp0 X.zip .\` and \`zip -q -r -D -1 X.zip .\` into an empty folder; neither fsyncs. 7-Zip's -mx=1 is its own DEFLATE encoder (fast mode), its -mmt=2 compresses two files at once"
	echo "- each archive is checked untimed after each run: $B_NFILES .dcm entries, unzip -t in the first round; \`sync\` before every timed run"
	versions_note "$load"
	echo
}

# ---- main ------------------------------------------------------------------

# Every scenario's data and untimed setup first, then the timed runs.
for s in $SCENARIOS; do
	"${s}_setup"
done
for s in $SCENARIOS; do
	"${s}_run"
done
