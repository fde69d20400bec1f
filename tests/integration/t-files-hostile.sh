#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-files-hostile: what others can plant in the folders we write and read.
# A symlinked lock file is not truncated through; a symlinked patient folder
# in dicom_dir is refused, nothing is written through it; a FIFO named
# <sop>.dcm is reported, never opened blocking; -t qc copies are copies; the
# folder source follows a link inside its tree and refuses one leading out of
# it, on any filesystem alike; many non-DICOM files make one summary line, once;
# a zero-filled file is refused at its first bytes; a .dcm swapped for a
# symlink of the same size and mtime is a change.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

shm=$(mktemp -d /dev/shm/thlhp-t-files-hostile.XXXXXX) || { say "FAIL: no /dev/shm"; exit 1; }
trap 'rm -rf "$shm"; lib_cleanup' EXIT

# run_limited ARGS... : like run, but killed after 60 s (exit 124, or 137
# when it ignored SIGTERM for 5 s more).
run_limited() {
	LASTCMD="timeout 60 thlhp-make $*" LASTOUT=$OUT LASTERR=$ERR
	timeout -k 5 60 "$THLHP" "$@" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	say "  \$ $LASTCMD -> exit $RC"
}

gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed a
gen --patient TH-02-BB --studies 1 --series 1 --instances 2 --seed b
write_config

section "the state's lock file replaced by a symlink"
mkdir -p .thlhp
printf 'precious\n' >"$LOG/precious"
ln -s "$LOG/precious" .thlhp/state.db.lock
run all
exit_is "all with .thlhp/state.db.lock a symlink stops" 2
check "the file the lock link points to is left as it was" "$(cat "$LOG/precious")" precious
has_line "stderr names the lock file and says it is a symbolic link" "$ERR" 'state\.db\.lock.*symbolic link'
rm .thlhp/state.db.lock

section "a first run"
run -j2 all
exit_is "all" 0
[ "$RC" -eq 0 ] || finish

section "a patient folder in dicom_dir replaced by a symlink"
mkdir "$T/outside"
rm -rf data/dicom/TH-02-BB
ln -s "$T/outside" data/dicom/TH-02-BB
run all
exit_is "all with data/dicom/TH-02-BB a symlink to a folder elsewhere fails" 2
check "nothing was written through the link" "$(find "$T/outside" -mindepth 1 | wc -l)" 0
has_line "stderr names the linked folder and says it is a symbolic link" "$ERR" 'TH-02-BB.*symbolic link'
rm data/dicom/TH-02-BB
run all
exit_is "with the link removed, all fetches TH-02-BB again" 0
ok "TH-02-BB's files are the source's" dicom_matches_source TH-02-BB

section "a FIFO named <sop>.dcm in a series folder"
IFS=$'\t' read -r st se sop src < <(instances_of TH-01-AA | sed -n 2p)
f=data/dicom/TH-01-AA/$st/$se/$sop.dcm
rm "$f" && mkfifo "$f"
run_limited all
exit_is "all ends (not blocked in open()) and fails" 2
has_line "stderr names the FIFO's file and says it is not a regular file" "$ERR" "$sop\.dcm.*not a regular file"
run_limited all
exit_is "the next all fetches the file again" 0
ok "the FIFO is a regular file again, with the source's bytes" \
	sh -c 'test -f "$2" && ! test -L "$2" && cmp -s "$1" "$2"' sh "$src" "$f"
# So that what follows tests what it says even when the above failed.
if [ ! -f "$f" ] || [ -L "$f" ]; then rm -f "$f" && cp "$src" "$f"; fi

section "-t qc copies are copies"
run -t qc --since 48h "$T/qc"
exit_is "-t qc --since 48h" 0
q=$T/qc/TH-01-AA/$st/$se/$sop.dcm
ok "the QC copy exists" test -f "$q"
before=$(sha256sum <"$f")
printf 'EDITED' | dd of="$q" bs=1 seek=200 conv=notrunc status=none
check "editing the QC copy in place leaves the download as it was" "$(sha256sum <"$f")" "$before"
IFS=$'\t' read -r _ _ sop2 src2 < <(instances_of TH-01-AA | sed -n 1p)
q2=$T/qc/TH-01-AA/$st/$se/$sop2.dcm
before=$(sha256sum <"$src2")
printf 'EDITED' | dd of="$q2" bs=1 seek=200 conv=notrunc status=none
check "... and leaves the folder source's original as it was" "$(sha256sum <"$src2")" "$before"
run -q
exit_is "-q after editing QC copies: everything still up to date" 0

section "folder source: symlinks inside the tree are followed, out of it refused"
gen --patient TH-03-CC --studies 1 --series 1 --instances 2 --seed c
gen --outdir "$T/elsewhere" --patient TH-04-DD --studies 1 --series 1 --instances 1 --seed d
gen --outdir "$shm/elsewhere" --patient TH-05-EE --studies 1 --series 1 --instances 1 --seed e
IFS=$'\t' read -r _ _ csop csrc < <(instances_of TH-03-CC | sed -n 1p)
# Names that sort first, so that the link is met before the file it names.
ln -s "${csrc#"$SRC"/}" "$SRC/0-inside.dcm"
ln -s "$(instances_of TH-04-DD | cut -f4)" "$SRC/0-out-samefs.dcm"
ln -s "$(instances_of TH-05-EE | cut -f4)" "$SRC/0-out-tmpfs.dcm"
for i in 1 2; do
	run all
	exit_is "run $i: all with links in the source succeeds" 0
	ok "run $i: TH-03-CC's files are the source's (the link inside the tree read as its target)" \
		dicom_matches_source TH-03-CC
	no_line "run $i: the link inside the tree draws no warning" "$ERR" '0-inside\.dcm'
	check "run $i: the files the links out of the tree name are not taken" \
		"$(find data/dicom -maxdepth 1 \( -name 'TH-04-DD' -o -name 'TH-05-EE' \) | wc -l)" 0
	has_line "run $i: the link to the same filesystem is named as outside the source" "$ERR" \
		'0-out-samefs\.dcm: symbolic link to .* outside the source folder, skipped'
	has_line "run $i: the link to another filesystem says the same" "$ERR" \
		'0-out-tmpfs\.dcm: symbolic link to .* outside the source folder, skipped'
	no_line "run $i: no message names a temp file" "$ERR" '\.thlhp-tmp-'
done
ok "the data/dicom file of the linked instance is a regular file" \
	test ! -L "data/dicom/TH-03-CC/$(study_of TH-03-CC)/$(series_of TH-03-CC)/$csop.dcm"

section "many non-DICOM files"
mkdir "$SRC/noise"
for i in $(seq 1 3000); do printf 'not an image %d\n' "$i" >"$SRC/noise/n$i.txt"; done
run all
exit_is "all with 3000 non-DICOM files" 0
count_is "one line says how many non-DICOM files were skipped" "$ERR" \
	'skipped 3000 non-DICOM files, e\.g\. .*noise/n' 1
count_is "no line per file" "$ERR" 'noise/n[0-9]+\.txt: ' 0
run all
exit_is "a second all" 0
no_line "the second run does not warn about them again" "$ERR" 'non-DICOM|noise/'
printf 'one more\n' >"$SRC/noise/new.txt"
run all
has_line "a new non-DICOM file is warned about" "$ERR" 'noise/new\.txt'
no_line "... and only it" "$ERR" 'noise/n[0-9]+\.txt'

section "a zero-filled 64 MB file"
head -c 64M /dev/zero >"$SRC/zeros.dcm"
run_limited all
exit_is "all with a 64 MB zero-filled file" 0
has_line "it is reported as not DICOM, from its first bytes" "$ERR" \
	'zeros\.dcm: not a DICOM file \(starts with neither'

section "a .dcm swapped for a symlink of the same size and mtime"
IFS=$'\t' read -r st se sop src < <(instances_of TH-01-AA | sed -n 3p)
f=data/dicom/TH-01-AA/$st/$se/$sop.dcm
cp "$f" "$LOG/evil.dcm"
size=$(stat -c %s "$f")
printf 'EVIL' | dd of="$LOG/evil.dcm" bs=1 seek=$((size - 8)) conv=notrunc status=none
touch -r "$f" "$LOG/evil.dcm"
ln -s "$LOG/evil.dcm" "$(dirname "$f")/.swap" && mv -T "$(dirname "$f")/.swap" "$f"
check "the link and the file had the same size and mtime through the link" \
	"$(stat -L -c '%s %Y' "$f")" "$(stat -c '%s %Y' "$src")"
run -n
has_line "-n says the series' validation is stale" "$OUT" "^validate .*$se"
run all
exit_is "all with a .dcm that is a symlink fails" 2
has_line "stderr names the file and says it is not a regular file" "$ERR" "$sop\.dcm.*not a regular file"
run -B TH-01-AA
exit_is "-B TH-01-AA fetches the file again and rebuilds the archive" 0
ok "the .dcm is a regular file again" test ! -L "$f"
ok "TH-01-AA's archive holds the source's bytes, not the link's" zip_matches_source "$(archive_of TH-01-AA)" TH-01-AA

check "no temp files left under data/" "$(temp_files data)" ""
finish
