#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2317  # write_config takes optional args; resize and dicom_complete are run by ok
# t-disk-full: outputs on a filesystem too small for them.  dicom_dir
# filling up mid-download, zip_dir filling up while archives are written
# (with an older archive of the patient in place), and the file size limit
# (RLIMIT_FSIZE, ulimit -f) hit by an archive and by the state itself.
# Each time: exit 2, one line per failed job naming the file and saying
# "No space left on device" / "File too large" and what to do; nothing
# partial under a final name; no temp files left; -q says stale; and once
# there is room the next run builds every archive right.
# The small filesystems are tmpfs mounts in a private mount namespace
# (tests/mountns.sh), gone with the script; where no namespace can be had,
# only the ulimit -f parts run.
# shellcheck source-path=SCRIPTDIR source=../mountns.sh
source "$(dirname "$0")/../mountns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

# 4 patients x 2 series x 10 CT instances of ~40 KB: 3.2 MB of series and
# four archives of ~0.5 MB (~0.8 MB stored).  The source stays on $T's
# filesystem, apart from the small ones, so the instances are copied.
for i in 1 2 3 4; do
	gen --patient "TH-D$i" --series 2 --instances 10 --seed "d$i"
done

MOUNTED=
# mount_small DIR SIZE : a tmpfs of SIZE (as mount says it: 768k, 1m) at DIR.
mount_small() {
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0755" thlhp-t-disk-full "$1" &&
		MOUNTED="$1 $MOUNTED"
}
# resize DIR SIZE : give the tmpfs at DIR another size (free space, as a
# user would).  Only the size: the options mount(8) would take from
# /proc/mounts (uid=, gid=) are refused in a user namespace.
resize() { mount --options-mode=ignore -o "remount,size=$2" "$1"; }
unmount_all() {
	local m
	for m in $MOUNTED; do umount "$m" 2>/dev/null || umount -l "$m"; done
	MOUNTED=
}
trap 'unmount_all; lib_cleanup' EXIT

MOUNTS=0
if [ "${THLHP_MOUNTNS:-}" = 1 ] && mount_small "$T/probe" 64k; then
	unmount_all
	MOUNTS=1
fi

# run_limited KB ARGS... : run, under ulimit -f KB (1024-byte blocks).
run_limited() {
	local kb=$1
	shift
	LASTCMD="thlhp-make $* (ulimit -f $kb)"
	(ulimit -f "$kb" && exec "$THLHP" "$@") >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	say "  \$ $LASTCMD -> exit $RC"
}

# Where each instance comes from: data/dicom/<patient>/<study>/<series>/<sop>.dcm
# -> its source file (the IDs here need no encoding).
declare -A SRCOF
index_sources() {
	local kind p st se sop src
	SRCOF=()
	while IFS=$'\t' read -r kind p st se sop src; do
		[ "$kind" = instance ] && SRCOF[data/dicom/$p/$st/$se/$sop.dcm]=$src
	done <"$MANIFEST"
}
index_sources

# dicom_complete : every *.dcm under a final name in data/dicom has its
# source's bytes.
dicom_complete() {
	local f bad=0 n=0
	while IFS= read -r -d '' f; do
		n=$((n + 1))
		if [ -z "${SRCOF[$f]:-}" ] || ! cmp -s "$f" "${SRCOF[$f]}"; then
			say "    $f is not its source's bytes"
			bad=1
		fi
	done < <(find data/dicom -type f -name '*.dcm' ! -name '.*' -print0 2>/dev/null)
	say "    ($n instance files compared with the source)"
	return "$bad"
}

# failed_jobs : N of the last run's "N jobs failed" line, 0 without one.
failed_jobs() {
	local n
	n=$(sed -En 's/.* ([0-9]+) jobs? failed.*/\1/p' "$ERR" | tail -n 1)
	echo "${n:-0}"
}

# one_line_per_failure LABEL WHAT : the last run said WHAT once for every
# job that failed, in a line naming the instance file or the archive, and
# said no line twice.
one_line_per_failure() {
	local n
	n=$(failed_jobs)
	ok "$1: some job failed and the run says how many" test "$n" -ge 1
	check "$1: one line saying '$2' per failed job ($n failed)" "$(grep -c -- "$2" "$ERR")" "$n"
	check "$1: each of them names the instance file or the archive" \
		"$(grep -- "$2" "$ERR" | grep -Evc 'data/dicom/TH-D[0-9]/[0-9.]+/[0-9.]+/[0-9.]+\.dcm: |zip data/zip/TH-D[0-9]__seriesCount[0-9]+\.zip: ')" 0
	check "$1: each of them says what to do" "$(grep -- "$2" "$ERR" | grep -vc 'then run again')" 0
	no_line "$1: no message names a temp file" "$ERR" '\.thlhp-tmp-'
	check "$1: no line on stderr is repeated" "$(sort "$ERR" | uniq -d)" ""
}

# stale_as_on_disk LABEL : -n lists a download for every series not all on
# disk and a zip for every archive missing: the state claims nothing that
# is not there.
stale_as_on_disk() {
	local p se have want a bad=0
	run -n
	exit_is "$1: -n" 0
	for p in $(patients); do
		for se in $(series_of "$p"); do
			want=$(instances_of_series "$se" | wc -l)
			have=$(find data/dicom/"$p"/*/"$se" -name '*.dcm' ! -name '.*' 2>/dev/null | wc -l)
			if [ "$have" -lt "$want" ] && ! grep -Eq "^download +$p $se " "$OUT"; then
				say "    $p $se: $have/$want instances on disk, and -n lists no download"
				bad=1
			fi
		done
		a=$(archive_of "$p")
		if [ ! -f "$a" ] && ! grep -Eq "^zip +$a " "$OUT"; then
			say "    $a is missing, and -n lists no zip for it"
			bad=1
		fi
	done
	check "$1: -n lists a download for each series not all on disk, a zip for each archive missing" "$bad" 0
}

# after_failure LABEL : what a user checks once a run failed for lack of
# room: nothing partial under a final name, no temp files, still stale.
after_failure() {
	local z p bad=0
	ok "$1: every .dcm under data/dicom is complete (its source's bytes)" dicom_complete
	ok "$1: every *.zip under data/zip passes unzip -t" all_zips_ok data/zip
	for z in $(zip_names); do
		p=${z%__seriesCount*}
		[ "data/zip/$z" = "$(archive_of "$p")" ] || continue
		zip_matches_source "data/zip/$z" "$p" || bad=1
	done
	check "$1: every archive under a final name holds all its instances ($(zip_names | wc -l) there)" "$bad" 0
	check "$1: no temp files (.thlhp-tmp-*) left" "$(temp_files data)" ""
	run -q
	exit_is "$1: -q says stale" 1
	stale_as_on_disk "$1"
}

# completes LABEL : the next run, with room, builds every archive right.
completes() {
	local p
	run -j2 all
	exit_is "$1: all completes" 0
	ok "$1: every archive holds the source's DICOM content and transfer syntax" archives_match
	for p in $(patients); do
		ok "$1: $(archive_of "$p") holds $p's instances, byte for byte" \
			zip_matches_source "$(archive_of "$p")" "$p"
	done
	ok "$1: every .dcm under data/dicom is complete" dicom_complete
	check "$1: no temp files left" "$(temp_files data)" ""
	run -q
	exit_is "$1: -q says up to date" 0
}

if [ "$MOUNTS" = 1 ]; then
	section "A: dicom_dir fills up mid-download (data/ is a 1 MB tmpfs; the series need 3.2 MB)"
	mkdir -p "$T/A" && cd "$T/A" && write_config
	ok "data/ is a 1 MB tmpfs" mount_small "$T/A/data" 1m
	ok "the source is on another filesystem, so instances are copied" \
		test "$(stat -f -c %i "$SRC")" != "$(stat -f -c %i data)"
	run -j2 all
	exit_is "all on a disk that fills up" 2
	has_line "stderr names the instance file and says No space left on device" "$ERR" \
		'^thlhp-make: download TH-D[0-9] (#[0-9]+ )?[0-9.]+: data/dicom/TH-D[0-9]/[0-9.]+/[0-9.]+/[0-9.]+\.dcm: cannot write: No space left on device'
	one_line_per_failure "A" "No space left on device"
	after_failure "A"

	section "A: -k on the full disk: every job that needs room fails, once each"
	run -k -j2 all
	exit_is "all -k on the full disk" 2
	one_line_per_failure "A -k" "No space left on device"
	after_failure "A -k"

	section "A: data/ remounted at 64 MB"
	ok "remount data/ bigger" resize "$T/A/data" 64m
	completes "A after the remount"

	section "B: zip_dir fills up while archives are written (data/zip: 768 KB, room for one ~0.5 MB archive)"
	mkdir -p "$T/B" && cd "$T/B" && write_config
	ok "data/dicom is a 16 MB tmpfs" mount_small "$T/B/data/dicom" 16m
	ok "data/zip is a 768 KB tmpfs" mount_small "$T/B/data/zip" 768k
	run -j2 all
	exit_is "all with a zip_dir too small" 2
	has_line "stderr names the archive and says No space left on device" "$ERR" \
		'^thlhp-make: zip data/zip/TH-D[0-9]__seriesCount2\.zip: cannot write the archive: No space left on device; nothing was put under its name'
	one_line_per_failure "B" "No space left on device"
	after_failure "B"
	run -t status
	has_line "B: -t status says the zip failed, and why" "$OUT" "failed: .*No space left on device"
	run -t dag
	has_line "B: the DAG draws the failed zip red" "$OUT" 'zip.*fillcolor="#f4a6a6"'
	ok "remount data/zip at 16 MB" resize "$T/B/data/zip" 16m
	completes "B after the remount"
	run -t status
	no_line "B: once built, no failure is shown" "$OUT" "failed"

	section "B: a new series while zip_dir is full: the older archive stays"
	old=data/zip/TH-D1__seriesCount2.zip
	sum_old=$(sha256sum "$old" | cut -d' ' -f1)
	gen --patient TH-D1 --series 1 --instances 10 --seed d1new
	index_sources
	avail=$(df -B1 --output=avail data/zip | tail -n 1)
	head -c $((avail - 256 * 1024)) /dev/zero >data/zip/filler
	say "  data/zip: $(df -k --output=avail data/zip | tail -n 1) KB left by a filler file"
	run -j2 all
	exit_is "all: TH-D1__seriesCount3.zip (~0.75 MB) does not fit" 2
	has_line "stderr names TH-D1__seriesCount3.zip and says No space left on device" "$ERR" \
		'^thlhp-make: zip data/zip/TH-D1__seriesCount3\.zip: cannot write the archive: No space left on device'
	one_line_per_failure "B new series" "No space left on device"
	check "TH-D1__seriesCount2.zip is left as it was" "$(sha256sum "$old" | cut -d' ' -f1)" "$sum_old"
	ok "no TH-D1__seriesCount3.zip under its final name" test ! -e data/zip/TH-D1__seriesCount3.zip
	after_failure "B new series"
	has_line "-n: the zip of TH-D1__seriesCount3.zip replaces TH-D1__seriesCount2.zip" "$OUT" \
		'^zip +data/zip/TH-D1__seriesCount3\.zip  series added .*; replaces TH-D1__seriesCount2\.zip'
	rm -f data/zip/filler
	completes "B after the filler file is deleted"
	ok "TH-D1__seriesCount2.zip is removed once 3 is in place" test ! -e "$old"
else
	say "  no private mount namespace here (not root, no user namespaces): only the ulimit -f parts run"
fi

section "C: the file size limit (ulimit -f 512): stored archives (~0.8 MB) are too large, instances (~40 KB) are not"
mkdir -p "$T/C" && cd "$T/C" && write_config select.patient_id='TH-D2 TH-D3' output.compression=store
run_limited 512 -k -j2 all
exit_is "all -k under ulimit -f 512: not killed by SIGXFSZ" 2
has_line "stderr names the archive and says File too large, and the limit" "$ERR" \
	'^thlhp-make: zip data/zip/TH-D[23]__seriesCount2\.zip: cannot write the archive: File too large; nothing was put under its name \(the file size limit, ulimit -f, is 524288 bytes'
check "both archives failed" "$(failed_jobs)" 2
one_line_per_failure "C" "File too large"
check "no archive under a final name" "$(zip_names)" ""
ok "C: every .dcm under data/dicom is complete" dicom_complete
check "C: no temp files left" "$(temp_files data)" ""
run -q
exit_is "C: -q says stale" 1
run -j2 all
exit_is "C: all without the limit completes" 0
ok "C: both archives hold the source's DICOM" archives_match TH-D2 TH-D3
run -q
exit_is "C: -q says up to date" 0

section "D: the file size limit hit by the state itself (ulimit -f 48): an error, not death by SIGXFSZ"
mkdir -p "$T/D" && cd "$T/D" && write_config
run_limited 48 -j2 all
exit_is "all whose state cannot grow past 48 KB stops with an error (SIGXFSZ would be exit 153)" 2
has_line "stderr names the state file" "$ERR" '\.thlhp/state\.db'
ok "D: every .dcm under data/dicom is complete" dicom_complete
check "D: no temp files left" "$(temp_files data)" ""
completes "D without the limit"

finish
