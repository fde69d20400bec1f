#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-kill9: kill -9 at random moments of `all -jN`, then run again: every
# *.zip on disk passes unzip -t at all times (a watcher reads them all while
# the runs go), nothing partial ever sits under a final name, and the end
# result equals an uninterrupted run's, byte for byte.
#
# KILL9_SOURCE=folder (default) or dimse (Orthanc, C-GET: t-kill9-pacs.sh);
# KILL9_TRIALS (3), KILL9_JOBS (2); tests/long/kill9.sh runs 100 trials.
if [ "${KILL9_SOURCE:-folder}" != folder ]; then
	# shellcheck source-path=SCRIPTDIR source=../netns.sh
	source "$(dirname "${BASH_SOURCE[0]}")/../netns.sh"
fi
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

NP=${KILL9_PATIENTS:-6} NS=${KILL9_SERIES:-3} NI=${KILL9_INSTANCES:-20}
TRIALS=${KILL9_TRIALS:-3} J=${KILL9_JOBS:-2} KSRC=${KILL9_SOURCE:-folder}
SRC=$T/source
mkdir -p "$SRC"
for i in $(seq 1 "$NP"); do
	m=CT; [ $((i % 3)) -eq 0 ] && m=MR
	gen --patient "TH-K$i" --series "$NS" --instances "$NI" --seed "k$i" --modality "$m"
done
say "  source ($KSRC): $NP patients x $NS series x $NI instances; $TRIALS trials at -j$J"
if [ "$KSRC" = dimse ]; then
	# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
	source "$TESTS/orthanc.sh"
	RETRIEVE=get
	orthanc_start
	orthanc_upload "$SRC"
	conf() { write_dimse_config 'select.patient_id=TH-K*' output.level=6 pacs.max_associations=4; }
else
	conf() { write_config output.level=6; }
fi

# watch_zips : in the background until stop_watch, read every *.zip in
# data/zip over and over; a zip that fails unzip -t is logged (a file may
# vanish between the listing and the read: that is a rename, not a failure).
watch_zips() {
	: >"$LOG/watch.bad"
	(
		while [ ! -e "$LOG/watch.stop" ]; do
			for z in data/zip/*.zip; do
				[ -e "$z" ] || continue
				unzip -tqq "$z" >/dev/null 2>&1 || { [ -e "$z" ] && echo "$z" >>"$LOG/watch.bad"; }
			done
			sleep 0.02
		done
	) &
	WATCH=$!
}
stop_watch() {
	touch "$LOG/watch.stop"
	wait "$WATCH" 2>/dev/null
	rm -f "$LOG/watch.stop"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# A: the reference, never interrupted.
mkdir -p "$T/A" && cd "$T/A" && conf
t0=$(now_ms)
run -j"$J" all
D=$(( $(now_ms) - t0 ))
exit_is "the uninterrupted reference run in A succeeds (${D} ms)" 0
[ "$RC" -eq 0 ] || finish
ref_names=$(zip_names)
check "the reference run built one archive per patient" "$(printf '%s\n' "$ref_names" | grep -c .)" "$NP"

# partial_check DIR LABEL : after a kill, everything under a final name in
# DIR is complete: each *.zip passes unzip -t and equals A's archive of the
# same name; each .dcm equals A's file.
partial_check() {
	local d=$1 label=$2 bad=0 f
	ok "$label: every *.zip in data/zip passes unzip -t" all_zips_ok "$d/data/zip"
	while IFS= read -r f; do
		[ -n "$f" ] || continue
		cmp -s "$d/data/zip/$f" "$T/A/data/zip/$f" || { say "    $f differs from the reference"; bad=1; }
	done < <(cd "$d" && zip_names)
	check "$label: every archive under a final name is the finished one (equals the reference)" "$bad" 0
	bad=0
	while IFS= read -r -d '' f; do
		cmp -s "$d/$f" "$T/A/$f" || { say "    $f is not complete"; bad=1; }
	done < <(cd "$d" && find data/dicom -type f -name '*.dcm' ! -name '.*' -print0 2>/dev/null)
	check "$label: every .dcm under a final name in data/dicom is complete" "$bad" 0
}

# same_as_ref DIR LABEL : DIR's archives equal A's, entry for entry.
same_as_ref() {
	local d=$1 label=$2 z bad=0 same=0
	cd "$d" || return
	check "$label: the same archive names as the uninterrupted run" "$(zip_names)" "$ref_names"
	for z in $ref_names; do
		[ -f "data/zip/$z" ] || continue
		check "$label: $z has the same entry list" "$(zip_list "data/zip/$z")" "$(zip_list "$T/A/data/zip/$z")"
		rm -rf "$LOG/xa" "$LOG/xb"
		unzip -qq "$T/A/data/zip/$z" -d "$LOG/xa" && unzip -qq "data/zip/$z" -d "$LOG/xb"
		ok "$label: every entry of $z has the same bytes" diff -r "$LOG/xa" "$LOG/xb"
		if cmp -s "data/zip/$z" "$T/A/data/zip/$z"; then same=$((same + 1)); else bad=1; fi
	done
	check "$label: every archive is byte-identical to the reference (cmp; $same identical)" "$bad" 0
	ok "$label: the interrupted tree ends with -q exit 0" "$THLHP" -q
}

interrupted=0
trial() { # trial N : kill during the first run and during the rerun
	local n=$1 d1 d2 dir
	dir=$T/B$n
	mkdir -p "$dir" && cd "$dir" && conf
	d1=$(( D * (10 + RANDOM % 80) / 100 ))
	d2=$(( d1 / 2 ))
	section "trial $n: kill -9 after ${d1} ms, then after ${d2} ms of the rerun"
	for d in $d1 $d2; do
		watch_zips
		run_bg -j"$J" all
		sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
		if kill_bg; then
			interrupted=$((interrupted + 1)); say "  killed pid $BGPID at ${d} ms"
		else
			say "  pid $BGPID had already finished at ${d} ms"
		fi
		stop_watch
		check "trial $n, kill at ${d} ms: unzip -t never failed on a *.zip in data/zip while it ran" \
			"$(sort -u "$LOG/watch.bad")" ""
		say "  temp files left by the kill: $(temp_files data | wc -l)"
		partial_check "$dir" "trial $n after kill at ${d} ms"
	done
	cd "$dir" && run -j"$J" all
	exit_is "trial $n: all after the kills runs to completion" 0
	same_as_ref "$dir" "trial $n"
	check "trial $n: no temp files left after the completing run" "$(temp_files "$dir/data")" ""
}

for n in $(seq 1 "$TRIALS"); do trial "$n"; done
if [ "$interrupted" -gt 0 ]; then pass "kill -9 hit a running thlhp-make $interrupted times"; else
	fail "kill -9 hit a running thlhp-make at least once (the runs were too short to interrupt)"; fi

section "-t clean after a kill"
dir=$T/C
mkdir -p "$dir" && cd "$dir" && conf
run_bg -j"$J" all
d=$(( D / 2 ))
sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
kill_bg || say "  (it had already finished)"
say "  temp files before clean: $(temp_files . | wc -l)"
run -t clean
exit_is "thlhp-make -t clean after a kill" 0
check "-t clean leaves no temp files (.thlhp-* / *.tmp*) anywhere in the project" "$(temp_files . | grep -v '^\./\.thlhp$')" ""
run -j"$J" all
exit_is "all after -t clean" 0
same_as_ref "$dir" "after clean"
cd "$T/B1" && run -t clean
exit_is "thlhp-make -t clean on a finished tree" 0
check "-t clean on a finished tree leaves no temp files" "$(temp_files . | grep -v '^\./\.thlhp$')" ""

finish
