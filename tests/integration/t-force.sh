#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-force: -B rebuilds exactly the named targets; naming an up-to-date target
# without -B does nothing.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run succeeds" 0
[ "$RC" -eq 0 ] || finish

A=$(archive_of TH-01-AA) B=$(archive_of TH-02-BB) C=$(archive_of TH-03-CC)
idents() { printf '%s\n' "A $(ident "$A")" "B $(ident "$B")" "C $(ident "$C")"; }
ida=$(ident "$A") idb=$(ident "$B") idc=$(ident "$C")
dicom_before=$(file_state data/dicom)
files_before=$(file_state data)
entries_b=$(zip_list "$B")

section "-n -B zip:TH-02-BB"
run -n -B zip:TH-02-BB
exit_is "thlhp-make -n -B zip:TH-02-BB" 0
has_line "-n -B lists TH-02-BB's archive with the reason 'forced'" "$OUT" \
	"^zip[[:space:]]+data/zip/TH-02-BB__seriesCount3\\.zip[[:space:]]+forced"
no_line "-n -B zip:TH-02-BB lists nothing else" "$OUT" 'TH-01-AA|TH-03-CC|^download|^validate'
check "-n -B rewrites nothing" "$(file_state data)" "$files_before"

section "-B zip:TH-02-BB"
sleep 0.05
run -B zip:TH-02-BB
exit_is "thlhp-make -B zip:TH-02-BB" 0
if [ "$(ident "$B")" != "$idb" ]; then pass "-B zip:TH-02-BB rewrote $B (inode/mtime changed)"; else fail "-B zip:TH-02-BB rewrote $B (inode/mtime changed)"; fi
ok "the rebuilt $B passes unzip -t" zip_ok "$B"
check "the rebuilt $B has the same entries" "$(zip_list "$B")" "$entries_b"
check "-B zip:TH-02-BB leaves TH-01-AA's archive alone" "$(ident "$A")" "$ida"
check "-B zip:TH-02-BB leaves TH-03-CC's archive alone" "$(ident "$C")" "$idc"
check "-B zip:TH-02-BB downloads nothing (DICOM files untouched)" "$(file_state data/dicom)" "$dicom_before"
idb=$(ident "$B")

section "-B TH-02-BB (the patient target)"
sleep 0.05
run -B TH-02-BB
exit_is "thlhp-make -B TH-02-BB" 0
if [ "$(ident "$B")" != "$idb" ]; then pass "-B TH-02-BB rewrote $B"; else fail "-B TH-02-BB rewrote $B"; fi
ok "the rebuilt $B passes unzip -t" zip_ok "$B"
check "-B TH-02-BB leaves TH-01-AA's archive alone" "$(ident "$A")" "$ida"
check "-B TH-02-BB leaves TH-03-CC's archive alone" "$(ident "$C")" "$idc"
check "-B TH-02-BB re-validates from disk and fetches nothing (DICOM files untouched)" \
	"$(file_state data/dicom)" "$dicom_before"
idb=$(ident "$B")

section "zip:TH-01-AA without -B when up to date"
before=$(idents)
run zip:TH-01-AA
exit_is "thlhp-make zip:TH-01-AA on an up-to-date archive" 0
check "zip:TH-01-AA without -B rewrites nothing" "$(idents)" "$before"
run TH-01-AA
exit_is "thlhp-make TH-01-AA on an up-to-date patient" 0
check "TH-01-AA without -B rewrites nothing" "$(idents)" "$before"

section "-B with the archive path as target"
sleep 0.05
run -B "$A"
exit_is "thlhp-make -B $A" 0
if [ "$(ident "$A")" != "$ida" ]; then pass "-B $A rewrote that archive"; else fail "-B $A rewrote that archive"; fi
ok "the rebuilt $A passes unzip -t" zip_ok "$A"
check "-B $A leaves TH-02-BB's archive alone" "$(ident "$B")" "$idb"
check "-B $A leaves TH-03-CC's archive alone" "$(ident "$C")" "$idc"
ida=$(ident "$A")
run "$A"
exit_is "thlhp-make $A (path target, up to date)" 0
check "the path target without -B rewrites nothing" "$(ident "$A")" "$ida"

section "--quiet"
run --quiet -B zip:TH-03-CC
exit_is "thlhp-make --quiet -B zip:TH-03-CC" 0
is_empty "--quiet prints nothing on stdout for a successful job" "$OUT"
ok "the archive rebuilt under --quiet passes unzip -t" zip_ok "$C"
idc=$(ident "$C")

section "-B download:TH-03-CC"
run -B download:TH-03-CC
exit_is "thlhp-make -B download:TH-03-CC fetches the series again" 0
ok "data/dicom/TH-03-CC is complete after the forced download" dicom_matches_source TH-03-CC
check "-B download:TH-03-CC leaves TH-01-AA's archive alone" "$(ident "$A")" "$ida"
check "-B download:TH-03-CC leaves TH-02-BB's archive alone" "$(ident "$B")" "$idb"
ok "TH-03-CC's archive still passes unzip -t" zip_ok "$C"
# download:PID stops at the download stage (make builds only what is named),
# so validate may be stale now; `all` finishes the job.
run all
exit_is "thlhp-make all after the forced download" 0
ok "TH-03-CC's archive passes unzip -t after all" zip_ok "$C"
check "TH-03-CC's archive holds every instance after all" "$(zip_list "$C")" "$(entries_of TH-03-CC)"

run -q
exit_is "thlhp-make -q after the forced rebuilds" 0
check "no temp files left under data/" "$(temp_files data)" ""

finish
