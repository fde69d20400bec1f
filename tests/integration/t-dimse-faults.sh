#!/usr/bin/env bash
# t-dimse-faults: a real PACS (Orthanc) behind tests/dimseproxy.py, which
# logs every DIMSE command on the wire and plays the site link's faults.
# Retrieve with C-GET (RETRIEVE=move: t-dimse-faults-move.sh).
#  - a full -j4 run: archives hold what was loaded, same content and
#    transfer syntax; patients outside [select] are never retrieved; the
#    requests stay under max_requests_per_minute; Patient Root is used,
#    and Study Root when the PACS refuses Patient Root;
#  - (C-MOVE) a PACS that does not name its C-MOVEs in its C-STOREs: the
#    series are listed and moved by SOP Instance UID;
#  - a series deleted from the PACS is reported and stays in its archive;
#  - a PACS that lost a file delivers less than its C-FIND lists: the series
#    is incomplete, not done; once mended only the missing instance comes;
#  - kill -9 mid-download: the rerun fetches exactly what is not on disk;
#  - the link blackholed mid-run (the nightly drop), Orthanc stopped and
#    started mid-run: the run rides it out, idle while it waits;
#  - the link down for good: exit 2 in bounded time, a clear message, and
#    the next run completes.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

RETRIEVE=${RETRIEVE:-get}
for i in 1 2 3 4 5 6; do
	gen --patient "TH-0$i-XX" --studies 1 --series 2 --instances 4 --seed "f$i"
done
gen --patient OTHER-1 --studies 1 --series 1 --instances 3 --seed fo
# Instances of the selected patients.
ALL=$(awk -F'\t' '$1 == "instance" && $2 ~ /^TH-/' "$MANIFEST" | wc -l)

# Orthanc sends C-MOVE'd instances to the proxy's store route, which
# forwards them to thlhp-make's storage SCP on SCP_PORT.
SCP_PORT=$(free_port) PX_PACS=$(free_port) STORE_PORT=$(free_port)
orthanc_start
orthanc_upload "$SRC"
proxy_start "pacs:$PX_PACS:127.0.0.1:$OR_DICOM" "store:$STORE_PORT:127.0.0.1:$SCP_PORT"

# config [KEY=VALUE]... : thlhp.ini through the proxy.
config() {
	write_dimse_config "pacs.port=$PX_PACS" "pacs.store_port=$SCP_PORT" "$@"
}
# stores_since N : C-STORE requests the PACS made after log line N.
stores_since() {
	tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk '$4 == "C-STORE-RQ"' | wc -l
}
# cpu_of PID : CPU seconds (user + system) it used so far.
cpu_of() {
	sed 's/.*) //' "/proc/$1/stat" | awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / t }'
}
fresh() { rm -rf data .thlhp; }
# against NAME DESC JOBS MODE... : a fresh full run with -jJOBS while the
# proxy plays MODE, checked (exit 0, archives right); what the proxy
# logged meanwhile in $LOG/NAME.log.  The proxy passes again after it.
against() {
	local name=$1 desc=$2 jobs=$3 mark
	shift 3
	mark=$(log_mark)
	proxy_mode "$@"
	fresh
	config pacs.max_requests_per_minute=600
	run "-j$jobs" all
	exit_is "all against $desc" 0
	ok "every archive holds the instances loaded" archives_match
	tail -n +"$((mark + 1))" "$PROXY_LOG" >"$LOG/$name.log"
	proxy_mode pass
}

section "full run with -j4 through the proxy, at most 240 requests a minute"
config pacs.max_requests_per_minute=240 pacs.max_associations=4
run -j4 all
exit_is "all -j4" 0
ok "every archive holds the instances loaded, same content and transfer syntax" archives_match
check "no file of OTHER-1 (not selected) anywhere" "$(find data -name 'OTHER*' | wc -l)" 0
check "no instance of OTHER-1 was ever sent" \
	"$(comm -12 <(proxy_uids C-STORE-RQ) <(awk -F'\t' '$1 == "instance" && $2 == "OTHER-1" { print $5 }' "$MANIFEST" | sort) | wc -l)" 0
check "each selected instance was sent once" "$(proxy_count C-STORE-RQ)" "$ALL"
check "... and taken: no C-STORE refused (a C-MOVE's are routed by its Message ID)" \
	"$(awk '$4 == "C-STORE-RSP" && $6 != "0x0000"' "$PROXY_LOG" | wc -l)" 0
if "$PY" "$TESTS/rate_check.py" "$PROXY_LOG" 240 >"$LOG/rate.txt"; then
	pass "requests stay under max_requests_per_minute: $(cat "$LOG/rate.txt")"
else
	fail "requests exceed max_requests_per_minute"; sed 's/^/    /' "$LOG/rate.txt"
fi

PR=1.2.840.10008.5.1.4.1.2.1 SR=1.2.840.10008.5.1.4.1.2.2   # Patient Root, Study Root
if [ "$RETRIEVE" = get ]; then op=C-GET-RQ n=3; else op=C-MOVE-RQ n=2; fi
check "every C-FIND used Patient Root" "$(proxy_uids C-FIND-RQ pacs | sort -u)" "$PR.1"
check "every retrieve used Patient Root" "$(proxy_uids "$op" pacs | sort -u)" "$PR.$n"

section "a PACS that refuses Patient Root: Study Root instead"
against sr "a PACS without Patient Root" 4 refuse-context "$PR.1" "$PR.2" "$PR.3"
check "every C-FIND used Study Root" \
	"$(awk '$4 == "C-FIND-RQ" { print $5 }' "$LOG/sr.log" | sort -u)" "$SR.1"
check "every retrieve used Study Root" "$(awk -v op="$op" '$4 == op { print $5 }' "$LOG/sr.log" | sort -u)" "$SR.$n"

if [ "$RETRIEVE" = move ]; then
	section "a PACS that does not say which C-MOVE its C-STOREs are for: the series are listed"
	# A whole series is moved only while the PACS quotes each C-MOVE's
	# Message ID in its C-STOREs, which our storage SCP routes by.
	against un "a PACS that does not name its C-MOVEs" 2 unname
	ok "the proxy took the Move Originator out of the C-STOREs" grep -q ' FAULT unname ' "$LOG/un.log"
	refused=$(awk '$2 == "store" && $4 == "C-STORE-RSP" && $6 != "0x0000"' "$LOG/un.log" | wc -l)
	check "at most one C-STORE refused per move running when it was found out ($refused)" \
		"$((refused <= 2))" 1
fi

section "a series deleted from the PACS is reported, and kept in its archive"
a=$(archive_of TH-02-XX)
before=$(ident "$a")
se=$(series_of TH-02-XX | head -n 1)
oid=$(curl -sf -X POST "http://127.0.0.1:$OR_HTTP/tools/lookup" -d "$se" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')
curl -sf -X DELETE "http://127.0.0.1:$OR_HTTP/series/$oid" >/dev/null
config
run all
exit_is "all after the series left the PACS" 0
has_line "stderr names the series that is no longer at the source" "$ERR" "$se.*no longer at the source"
check "TH-02-XX's archive is left as it was" "$(ident "$a")" "$before"
check "and still holds that series" "$(zip_list "$a" | grep -c "/$se/")" 4
run -q
exit_is "-q: nothing is stale because of it" 0
# Put it back, for what follows.
instances_of_series "$se" | while IFS=$'\t' read -r _ _ _ src; do
	curl -sf -X POST "http://127.0.0.1:$OR_HTTP/instances" --data-binary @"$src" >/dev/null
done

section "an instance deleted between the C-FIND and the retrieve: the PACS says success with fewer"
gen --outdir "$T/late" --patient TH-07-XX --studies 1 --series 1 --instances 4 --seed f7
orthanc_upload "$T/late"
IFS=$'\t' read -r _ _ lsop lsrc < <(instances_of TH-07-XX | head -n 1)
iid=$(curl -sf -X POST "http://127.0.0.1:$OR_HTTP/tools/lookup" -d "$lsop" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')
# Only TH-07-XX, 30 requests a minute: a STUDY-level C-FIND (the cheap
# check: earlier runs recorded a full walk) and, the study being new, a
# SERIES-level one (it counts 4 instances), then 2 s later the retrieve of the whole
# series; what arrives is checked against the count, and only then is the
# series listed (an IMAGE-level C-FIND).  Before the retrieve the instance
# goes from the PACS.
config select.patient_id=TH-07-XX pacs.max_requests_per_minute=30 pacs.retries=0
finals() { awk '$2 == "pacs" && $4 == "C-FIND-RSP" && $6 == "0x0000"' "$PROXY_LOG" | wc -l; }
nfind=$(finals)
run_bg -k all
for _ in $(seq 1 300); do
	[ "$(finals)" -ge $((nfind + 2)) ] && break
	sleep 0.05
done
curl -sf -X DELETE "http://127.0.0.1:$OR_HTTP/instances/$iid" >/dev/null
bg_wait 60
LASTCMD="thlhp-make -k all (an instance deleted after the C-FIND)"
exit_is "all with a retrieve that delivers 3 of the 4 instances listed" 2
has_line "stderr says the series is incomplete, with what the PACS reported" "$ERR" \
	"TH-07-XX.*incomplete: 3 of 4 instances arrived \(the PACS reported 3 completed, 0 failed"
ok "no archive for TH-07-XX" test -z "$(find data/zip -name 'TH-07-XX*')"
ok "the other archives are complete" archives_match TH-01-XX TH-02-XX TH-03-XX TH-04-XX TH-05-XX TH-06-XX
# The instance is back at the PACS: only it is fetched.
curl -sf -X POST "http://127.0.0.1:$OR_HTTP/instances" --data-binary @"$lsrc" >/dev/null
config
run -n
has_line "-n lists the series as missing an instance" "$OUT" "^download +TH-07-XX .*instances missing \(3/4 instances\)"
mark=$(log_mark)
run all
exit_is "all once the PACS has it again" 0
check "only the missing instance was sent" "$(stores_since "$mark")" 1
check "TH-07-XX's archive holds its 4 instances" "$(zip_list "$(archive_of TH-07-XX)")" "$(entries_of TH-07-XX)"

section "kill -9 mid-download; the rerun fetches only what is not on disk"
fresh
total=$((ALL + 4))                # TH-07-XX came later
config pacs.max_requests_per_minute=240
run_bg -j2 all
wait_disk 8
if [ "$RETRIEVE" = move ]; then
	# Our storage SCP is up: a stranger is turned away, and an instance
	# nobody asked for is refused even from the PACS's AE title.
	osrc=$(awk -F'\t' '$1 == "instance" && $2 == "OTHER-1" { print $6; exit }' "$MANIFEST")
	TCP_NODELAY=1 storescu -v -aet INTRUDER -aec THLHP 127.0.0.1 "$SCP_PORT" "$osrc" >"$LOG/storescu.out" 2>&1
	has_line "a C-STORE from another AE than the PACS's is rejected at A-ASSOCIATE" "$LOG/storescu.out" "Calling AE Title Not Recognized"
	TCP_NODELAY=1 storescu -v -aet ORTHANC -aec THLHP 127.0.0.1 "$SCP_PORT" "$osrc" >"$LOG/storescu.out" 2>&1
	has_line "an unasked C-STORE to our SCP is refused (0xC000)" "$LOG/storescu.out" "Received Store Response \(Error: CannotUnderstand\)"
fi
kill_bg
[ "$RETRIEVE" = move ] && check "and nothing of it was stored" "$(find data -name 'OTHER*' | wc -l)" 0
have=$(on_disk)
ok "killed mid-download ($have of $total instances on disk)" test "$have" -lt "$total"
config
mark=$(log_mark)
run -j4 all
exit_is "the rerun completes" 0
check "the rerun fetched exactly the $((total - have)) instances not on disk" "$(stores_since "$mark")" "$((total - have))"
check "no temp files left" "$(temp_files data)" ""

section "Ctrl-C mid-retrieve over a slow link: cancelled at once, not recorded as a failure"
fresh
config
proxy_mode slow 50000
mark=$(log_mark)
run_bg -j1 all
wait_disk 1
t0=$(date +%s.%N)
kill -INT "$BGPID"
bg_wait 30
LASTCMD="thlhp-make -j1 all (SIGINT mid-retrieve over a 50 kB/s link)"
proxy_mode pass
exit_is "the run ends as killed by SIGINT" 130
has_line "it says what it is doing" "$ERR" "interrupted: stopping 1 running job"
no_line "the stopped job is not reported as failed" "$ERR" "^thlhp-make: download .*interrupted"
tail -n +"$((mark + 1))" "$PROXY_LOG" >"$LOG/cancel.log"
has_line "the retrieve was cancelled on the wire (C-CANCEL)" "$LOG/cancel.log" " c2s C-CANCEL-RQ "
tc=$(awk '$4 == "C-CANCEL-RQ" { print $1; exit }' "$LOG/cancel.log")
ok "the C-CANCEL went out within 2 s of the signal, not at the end of the series" \
	awk -v a="$t0" -v b="${tc:-0}" 'BEGIN { exit !(b >= a && b - a <= 2) }'
run -t status
no_line "-t status shows no failure" "$OUT" "failed"
run -j4 all
exit_is "the next run completes" 0
ok "with every archive complete" archives_match

section "the nightly link drop: blackholed mid-run for 8 s"
fresh
config pacs.max_requests_per_minute=120 pacs.timeout=3 pacs.retries=6
run_bg -j4 all
wait_disk 4
proxy_mode blackhole
sleep 1
c0=$(cpu_of "$BGPID")
sleep 6
c1=$(cpu_of "$BGPID")
proxy_mode pass
bg_wait 180
LASTCMD="thlhp-make -j4 all (link blackholed for 8 s)"
exit_is "the run rides out the blackhole" 0
ok "idle while the link was dead: $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }') s CPU in 6 s" \
	awk -v a="$c0" -v b="$c1" 'BEGIN { exit !(b - a < 1.0) }'
check "every archive is there" "$(zip_names | wc -l)" 7
ok "and complete" archives_match

section "Orthanc stopped mid-run for 5 s and started again"
fresh
config pacs.max_requests_per_minute=120 pacs.timeout=3 pacs.retries=6
run_bg -j4 all
wait_disk 4
orthanc_stop
sleep 5
orthanc_start
bg_wait 180
LASTCMD="thlhp-make -j4 all (Orthanc down for 5 s)"
exit_is "the run completes after the PACS comes back" 0
ok "with every archive complete" archives_match

section "the link stays down: exit 2 in bounded time, then the next run completes"
fresh
config pacs.timeout=2 pacs.retries=2
proxy_mode refuse
start=$(date +%s)
run_bg all
bg_wait 60
LASTCMD="thlhp-make all (link refused)"
exit_is "all with the link down stops cleanly" 2
ok "within its retry budget ($(( $(date +%s) - start )) s)" test $(( $(date +%s) - start )) -lt 30
has_line "stderr says the PACS could not be reached" "$ERR" "127.0.0.1:$PX_PACS"
proxy_mode pass
run -j4 all
exit_is "the next run completes" 0
ok "with every archive complete" archives_match
finish
