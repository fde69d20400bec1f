#!/usr/bin/env bash
# t-copy: a source on another filesystem (tmpfs) than the output is copied,
# not hard-linked; copies are byte-identical, hashed as written, and a second
# run changes nothing.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

shm=$(mktemp -d /dev/shm/thlhp-t-copy.XXXXXX) || { say "FAIL: no /dev/shm"; exit 1; }
trap 'rm -rf "$shm"; lib_cleanup' EXIT
SRC=$shm/source
mkdir -p "$SRC"
ok "the source (tmpfs) and the project are on different filesystems" \
	test "$(stat -f -c %i "$SRC")" != "$(stat -f -c %i .)"
gen --patient TH-C1 --studies 1 --series 2 --instances 4 --seed c1
gen --patient TH-C2 --studies 2 --series 1 --instances 3 --seed c2
write_config
run -j2 all
exit_is "all from a source on another filesystem succeeds" 0
for p in TH-C1 TH-C2; do
	ok "$p: data/dicom holds byte-identical copies" dicom_matches_source "$p"
	ok "$p: its archive holds every instance" zip_matches_source "$(archive_of "$p")" "$p"
done
check "every copied file has one link (a copy, not a hard link)" \
	"$(find data/dicom -name '*.dcm' -links +1 | wc -l)" 0
check "no temp files left under data/" "$(temp_files data)" ""
before=$(tree_state data)
run all
exit_is "a second run succeeds" 0
check "a second run changes nothing under data/" "$(tree_state data)" "$before"
run -q
exit_is "-q: up to date" 0
rm -rf "$shm"
finish
