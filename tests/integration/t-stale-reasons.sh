#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-stale-reasons: each way an output can go stale is noticed, named by -n
# with the SPEC's reason, and repaired by `all`; --offline never reads the
# source.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run succeeds" 0
[ "$RC" -eq 0 ] || finish

A=$(archive_of TH-01-AA) B=$(archive_of TH-02-BB) C=$(archive_of TH-03-CC)

section "archive deleted"
rm -f "$B"
run -q
exit_is "-q notices a deleted archive" 1
run -n
exit_is "-n with a deleted archive" 0
has_line "-n says 'zip  data/zip/TH-02-BB__seriesCount3.zip  archive missing'" "$OUT" \
	'^zip[[:space:]]+data/zip/TH-02-BB__seriesCount3\.zip[[:space:]]+archive missing'
count_is "-n lists only that archive" "$OUT" '^(download|validate|zip)[[:space:]]' 1
run all
exit_is "all after deleting an archive" 0
ok "all rebuilt $B" test -f "$B"
ok "the rebuilt $B passes unzip -t" zip_ok "$B"
check "the rebuilt $B holds every instance" "$(zip_list "$B")" "$(entries_of TH-02-BB)"

section "archive overwritten"
printf 'not a zip any more\n' >"$A"
run -q
exit_is "-q notices an archive overwritten with other bytes" 1
run -n
has_line "-n says 'zip  data/zip/TH-01-AA__seriesCount2.zip  archive modified on disk'" "$OUT" \
	'^zip[[:space:]]+data/zip/TH-01-AA__seriesCount2\.zip[[:space:]]+archive modified on disk'
run all
exit_is "all after overwriting an archive" 0
ok "the rebuilt $A passes unzip -t" zip_ok "$A"
ok "the rebuilt $A holds TH-01-AA's instances, byte for byte" zip_matches_source "$A" TH-01-AA

section "archive altered, same size"
size=$(stat -c %s "$A")
sleep 0.02
head -c "$size" /dev/urandom >"$LOG/garbage" && cat "$LOG/garbage" >"$A"
run -n
has_line "-n says 'archive modified on disk' for an archive altered in place at the same size" "$OUT" \
	'^zip[[:space:]]+data/zip/TH-01-AA__seriesCount2\.zip[[:space:]]+archive modified on disk'
run all
exit_is "all after altering an archive in place" 0
ok "the rebuilt $A passes unzip -t" zip_ok "$A"

section "archive touched only"
ida=$(ident "$A")
sleep 0.02
touch "$A"
run -q
exit_is "-q: an archive whose mtime changed but whose bytes did not is still up to date (hash checked)" 0
run all
exit_is "all after touching an archive" 0
check "all does not rewrite a merely touched archive (same inode and size)" \
	"$(stat -c '%i %s' "$A")" "$(echo "$ida" | cut -d' ' -f1,2)"

section "a DICOM file deleted from dicom_dir"
IFS=$'\t' read -r st se sop src < <(instances_of TH-03-CC | head -n 1)
f=data/dicom/TH-03-CC/$st/$se/$sop.dcm
rm -f "$f"
run -q
exit_is "-q notices a missing DICOM file" 1
run -n
has_line "-n says 'download  TH-03-CC $se  instances missing (1/2 instances)'" "$OUT" \
	"^download[[:space:]]+TH-03-CC ${se}[[:space:]]+instances missing \\(1/2 instances\\)"
run all
exit_is "all after deleting a DICOM file" 0
ok "all fetched the deleted file again from the source" cmp -s "$src" "$f"
ok "TH-03-CC's archive passes unzip -t" zip_ok "$C"
check "TH-03-CC's archive holds every instance" "$(zip_list "$C")" "$(entries_of TH-03-CC)"
run -q
exit_is "-q after restoring the file" 0

section "a DICOM file replaced by a changed but valid one"
IFS=$'\t' read -r st se sop src < <(instances_of TH-02-BB | tail -n 1)
f=data/dicom/TH-02-BB/$st/$se/$sop.dcm
cp "$src" "$LOG/changed.dcm"
"$PY" "$TESTS/gen_series.py" --patch "$LOG/changed.dcm" InstanceNumber=99 PatientName=Changed^Name
replace_file "$LOG/changed.dcm" "$f"
run -q
exit_is "-q notices a DICOM file replaced on disk" 1
run -n
has_line "-n names series $se with the reason 'file changed on disk'" "$OUT" \
	"^(download|validate)[[:space:]]+TH-02-BB ${se}[[:space:]]+file changed on disk"
run all
exit_is "all after a DICOM file changed on disk" 0
x=$LOG/entry.dcm
unzip -p "$B" "$st/$se/$sop.dcm" >"$x" 2>/dev/null
ok "TH-02-BB's archive now holds the same bytes as $f on disk" cmp -s "$x" "$f"
ok "TH-02-BB's archive passes unzip -t" zip_ok "$B"
run -q
exit_is "-q after the change was taken in" 0

section "zip settings changed"
write_config output.level=6
run -q
exit_is "-q notices a changed [output] level" 1
run -n
for z in "$A" "$B" "$C"; do
	has_line "-n says '$z  settings changed' after level 1 -> 6" "$OUT" \
		"^zip[[:space:]]+${z//./\\.}[[:space:]]+settings changed"
done
no_line "-n lists no download for a zip setting" "$OUT" '^download'
before_dicom=$(file_state data/dicom)
run -j2 all
exit_is "all after changing level" 0
check "a changed zip level downloads nothing" "$(file_state data/dicom)" "$before_dicom"
run -q
exit_is "-q after rebuilding with level 6" 0

write_config output.compression=store
run -n
count_is "-n lists all 3 archives with 'settings changed' after compression deflate -> store" "$OUT" \
	'^zip[[:space:]].*[[:space:]]settings changed' 3
run all
exit_is "all with compression = store" 0
stored() { unzip -Zv "$1" | grep -E '^  compression method:' | grep -vc 'none (stored)'; }
check "with compression = store every entry of $A is stored" "$(stored "$A")" 0
ok "the stored archive $A passes unzip -t" zip_ok "$A"

write_config output.compression=bzip2 output.level=9
run all
exit_is "all with compression = bzip2" 0
bz() { unzip -Zv "$1" | grep -E '^  compression method:' | grep -vc 'bzipped'; }
check "with compression = bzip2 every entry of $B is bzip2-compressed" "$(bz "$B")" 0
ok "the bzip2 archive $B passes unzip -t" zip_ok "$B"
write_config
run all
exit_is "all back to deflate level 1" 0
deflated() { unzip -Zv "$1" | grep -E '^  compression method:' | grep -vc 'deflated'; }
check "with compression = deflate every entry of $C is deflated" "$(deflated "$C")" 0

section "--offline"
tree_before=$(tree_state data)
mv "$SRC" "$T/source-away"
run -q
exit_is "-q with the source folder gone is an error (the PACS is unreachable)" 2
run --offline -q
exit_is "--offline -q on an up-to-date tree never looks at the (missing) source" 0
run --offline -n
exit_is "--offline -n with the source folder gone" 0
no_line "--offline -n lists nothing on an up-to-date tree" "$OUT" '^(query|download|validate|zip)[[:space:]]'
check "nothing under data/ changed while the source was away" "$(tree_state data)" "$tree_before"
mv "$T/source-away" "$SRC"
gen --patient TH-03-CC --series 1 --instances 1 --seed c9 --modality MR
run --offline -q
exit_is "--offline -q does not see a series that only the source knows about" 0
run -q
exit_is "-q (online) sees that new series" 1

check "no temp files left under data/" "$(temp_files data)" ""
finish
