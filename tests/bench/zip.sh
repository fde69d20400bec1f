#!/usr/bin/env bash
# tests/bench/zip.sh - archive throughput: one archive per patient from
# ~1 GB of generated CT series (8 patients x 4 series x 64 slices of
# 512x512x16 bit; BENCH_SCALE=small: 2 x 2 x 8), by
#
#   Info-ZIP `zip -r -L`            one patient after the other
#   Info-ZIP, 2 at once             the same under `xargs -P2`
#   Python zipfile                  as a Snakemake rule's run: block does it
#   thlhp-make -j1 zip, -j2 zip     the zip stage alone (see below)
#
# at each level of LEVELS (default "1 6"), RUNS rounds (default 3 here)
# interleaved, medians.  Levels above 1 run on the first SUBSET patients
# only (default 2 of 8 at full size: deflate -6 on noisy CT is ~5x slower,
# and the script has to stay under ~15 minutes on 2 CPUs).  What is timed
# for thlhp-make is only its zip stage: the series are downloaded (hard
# links from the folder "PACS") and validated by an untimed `thlhp-make -j2
# validate` first, then each timed run starts with the archives deleted, so
# every patient's archive is stale ("archive missing") and nothing else is:
# the run walks the folder source (stat only), plans, and archives.  That
# fixed cost is measured on its own (a no-op `thlhp-make zip`) and reported.
# Prints a markdown section on stdout; progress on stderr.
#
#   tests/bench/zip.sh     # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
RUNS=${RUNS:-3}   # its rounds are long: 3 unless RUNS is given
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

bench_install zip unzip time python3-pydicom python3-numpy
thlhp_binary
LEVELS=${LEVELS:-1 6}
SUBSET=${SUBSET:-4}

if [ "$BENCH_SCALE" = small ]; then
	NP=2 NS=2 NK=8
else
	NP=8 NS=4 NK=64
fi
ct_data ZIP "$NP" "$NS" "$NK"
ALL_PATIENTS=$(cd "$DATA" && ls -d ZIP-* | sort)

W=$BENCH_DIR/zip-work
rm -rf "$W"
mkdir -p "$W/out"

# The thlhp-make project: folder source, series hard-linked into data/dicom.
PROJ=$W/proj
mkdir -p "$PROJ"
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
write_ini 1 'ZIP-*'
log "download (hard links) and validate $NFILES files, untimed"
(cd "$PROJ" && "$THLHP" -j2 validate >"$W/validate.log" 2>&1) ||
	{ tail "$W/validate.log" >&2; die "thlhp-make -j2 validate failed"; }
[ "$(find "$PROJ/data/dicom" -name '*.dcm' | wc -l)" = "$NFILES" ] ||
	die "thlhp-make validate did not bring all $NFILES files"

# ---- the contenders --------------------------------------------------------
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

TITLE="Archive throughput (zip)"
wait_idle "$TITLE"
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

# ---- the report ------------------------------------------------------------

echo "## $TITLE"
echo
printf '%d patients x %d series x %d slices of 512x512 16-bit CT (%s files, %.0f MB), one archive per patient, deflate at the level shown; median of %d runs. Ratio: the contender'"'"'s MB/s divided by thlhp-make'"'"'s at the same parallelism (-j1, or -j2 for the parallel rows); above 1 the contender is faster.\n' \
	"$NP" "$NS" "$NK" "$NFILES" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$RUNS"
[ "$(echo $LEVELS)" = 1 ] || echo "Levels above 1 run on the first $SUBSET patients only (deflate -6 is several times slower on noisy CT; this keeps the script under ~15 minutes)."
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
	printf -- '- level %s: thlhp-make -j2 / -j1 = %sx; thlhp-make -j1 / Info-ZIP = %sx (wall clock), %sx (CPU). Its own read-back of every entry (libdeflate inflate + CRC-32) is inside its CPU s (%.3f); the same read-back through zlib (Python'"'"'s `testzip`) takes %s CPU s\n' "$LEVEL" \
		"$(ratio "$(median ${T[$LEVEL.thlhp1]})" "$(median ${T[$LEVEL.thlhp2]})")" \
		"$(ratio "$(median ${T[$LEVEL.infozip]})" "$(median ${T[$LEVEL.thlhp1]})")" \
		"$(ratio "$(median ${C[$LEVEL.infozip]})" "$(median ${C[$LEVEL.thlhp1]})")" \
		"$(median ${C[$LEVEL.thlhp1]})" "${V[$LEVEL]}"
done
# shellcheck disable=SC2086
printf -- '- fixed cost inside the thlhp-make rows: a no-op `thlhp-make zip` (walk and stat the folder source, plan, nothing to build) takes %.3f s (median of %d)\n' \
	"$(median $NOOP)" "$(echo $NOOP | wc -w)"
echo '- thlhp-make does more than write: its DEFLATE is libdeflate'"'"'s (libzip writes the archive), every archive is reopened and each entry inflated and checked against its CRC, then the archive is hashed (XXH3), fsynced and renamed into place; the others only write (no fsync)'
echo "- the inputs are in the page cache for every contender ($(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, data read before); archives are written to the same disk"
echo "- $(zip -v 2>/dev/null | sed -n 's/^This is \(Zip [^ ]*\).*/Info-ZIP \1/p' | head -1), Python $("$PY" -c 'import sys, zlib; print(sys.version.split()[0], "with zlib", zlib.ZLIB_RUNTIME_VERSION)'), libzip $(pkg-config --modversion libzip 2>/dev/null || echo '?'), libdeflate $(pkg-config --modversion libdeflate 2>/dev/null || echo '?'), zlib $(pkg-config --modversion zlib 2>/dev/null || echo '?')"
echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), $THLHP"
echo "- $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)); $load"
echo
