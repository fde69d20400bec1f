#!/usr/bin/env bash
# t-scp-hostile: our storage SCP (retrieve = move) against what else can
# reach store_port: a C-STORE from a foreign AE title, or posing as the PACS
# and quoting a Move Originator Message ID, is refused and never stored or
# zipped; five idle TCP connections do not stall the C-MOVEs; the SCP
# listens on loopback only when the PACS is on loopback (store_bind); and an
# instance the PACS sends beyond what its query counted is refused and named,
# the series listed, and only what the PACS lists taken.
# Orthanc sends to THLHP through dimseproxy (route scp), which logs each
# C-STORE and its status; thlhp-make queries through it too (route pacs).
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

gen --patient TH-01-AA --studies 1 --series 3 --instances 3 --seed h1
gen --patient TH-02-BB --studies 1 --series 1 --instances 3 --seed h2
# The forged instance: a new SOP instance in TH-01-AA's first series.
st=$(study_of TH-01-AA)
se=$(series_of TH-01-AA | head -n 1)
"$PY" "$TESTS/gen_series.py" "$T/evil" --patient TH-01-AA --instances 1 --seed evil \
	--study-uid "$st" >"$LOG/evil.tsv" || exit 1
evil=$(find "$T/evil" -name '*.dcm' | head -n 1)
"$PY" "$TESTS/gen_series.py" --patch "$evil" "SeriesInstanceUID=$se"
evil_sop=$(awk -F'\t' '$1 == "instance" { print $5 }' "$LOG/evil.tsv")

OR_DICOM=$(free_port) STORE_PORT=$(free_port) SCP_PORT=$(free_port) PX_PACS=$(free_port)
proxy_start "pacs:$PX_PACS:127.0.0.1:$OR_DICOM" "scp:$STORE_PORT:127.0.0.1:$SCP_PORT"
orthanc_start
orthanc_upload "$SRC"
RETRIEVE=move
# 30 requests a minute: one every 2 s, so the C-MOVEs come one by one.
write_dimse_config "pacs.port=$PX_PACS" "pacs.store_port=$SCP_PORT" \
	pacs.max_requests_per_minute=30

# listening : what listens on the SCP's port ("ADDRESS:PORT"), if anything.
listening() { ss -ltnH "sport = :$SCP_PORT" | awk '{ print $4 }'; }

section "a run with strangers at store_port"
run_bg all
for _ in $(seq 1 300); do
	[ -n "$(listening)" ] && break
	kill -0 "$BGPID" 2>/dev/null || break
	sleep 0.1
done
check "the SCP listens on loopback only, the PACS being on loopback" "$(listening)" \
	"127.0.0.1:$SCP_PORT"
# Five connections that say nothing, held for 40 s: more than
# max_associations (4), and each longer than the timeout (10 s).
"$PY" -c '
import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(5)]
time.sleep(40)' "$SCP_PORT" &
BGPIDS="$BGPIDS $!"
sleep 0.5
"$PY" "$TESTS/cstore.py" --calling EVIL --move-aet THLHP --move-id 1 \
	127.0.0.1 "$SCP_PORT" "$evil" >"$LOG/evil1" 2>&1
has_line "a C-STORE from calling AE EVIL is rejected at A-ASSOCIATE (permanent, calling AE)" \
	"$LOG/evil1" '^rejected 1 1 3$'
for id in 1 2 3; do
	"$PY" "$TESTS/cstore.py" --calling ORTHANC --move-aet THLHP --move-id "$id" \
		127.0.0.1 "$SCP_PORT" "$evil" >"$LOG/evil2.$id" 2>&1
done
check "posing as the PACS, quoting Move Originator IDs 1, 2 and 3: each C-STORE refused" \
	"$(cat "$LOG/evil2."*)" "$(printf 'status 0xC000\n%.0s' 1 2 3)"
bg_wait 60
exit_is "the run rides out the strangers" 0
ok "every archive holds exactly what the PACS has" archives_match
check "the forged instance is nowhere under data/dicom" \
	"$(find data/dicom -name "$evil_sop*" | wc -l)" 0
check "nor in any archive" "$(for z in data/zip/*.zip; do unzip -Z1 "$z"; done | grep -c "$evil_sop")" 0
check "no temp files left under data/" "$(temp_files data)" ""

section "store_bind"
write_dimse_config "pacs.port=$PX_PACS" "pacs.store_port=$SCP_PORT" pacs.store_bind=127.0.0.2 \
	pacs.max_requests_per_minute=30
gen --outdir "$T/b" --patient TH-04-DD --studies 1 --series 1 --instances 2 --seed h4
orthanc_upload "$T/b"
run_bg all
for _ in $(seq 1 300); do
	[ -n "$(listening)" ] && break
	kill -0 "$BGPID" 2>/dev/null || break
	sleep 0.1
done
check "store_bind = 127.0.0.2: the SCP listens there only" "$(listening)" "127.0.0.2:$SCP_PORT"
bg_wait 60
exit_is "the PACS sends to 127.0.0.1, where nobody listens: the C-MOVE fails" 2
has_line "stderr says the C-MOVE failed" "$ERR" 'C-MOVE'
write_dimse_config "pacs.port=$PX_PACS" "pacs.store_port=$SCP_PORT" pacs.store_bind=0.0.0.0
printf '[pacs]\nprotocol = dimse\nhost = h\nport = 1\ncalled_aet = A\nstore_bind = localhost\n' \
	>"$LOG/bad.ini"
run -f "$LOG/bad.ini" -n
exit_is "store_bind must be an IPv4 address" 2
has_line "the error names the file, line and key" "$ERR" 'bad.ini:6: \[pacs\] store_bind'

section "the PACS sends more than its query counted"
# TH-03-CC is queried (3 instances), and a fourth is added to its series
# in the PACS before the C-MOVE (20 requests a minute: 3 s in between).
gen --outdir "$T/c" --patient TH-03-CC --studies 1 --series 1 --instances 3 --seed h3
orthanc_upload "$T/c"
st3=$(study_of TH-03-CC) se3=$(series_of TH-03-CC)
"$PY" "$TESTS/gen_series.py" "$T/c4" --patient TH-03-CC --instances 1 --seed h3x \
	--study-uid "$st3" >"$LOG/c4.tsv" || exit 1
extra=$(find "$T/c4" -name '*.dcm')
"$PY" "$TESTS/gen_series.py" --patch "$extra" "SeriesInstanceUID=$se3"
extra_sop=$(awk -F'\t' '$1 == "instance" { print $5 }' "$LOG/c4.tsv")
printf 'instance\tTH-03-CC\t%s\t%s\t%s\t%s\n' "$st3" "$se3" "$extra_sop" "$extra" >>"$MANIFEST"
write_dimse_config "pacs.port=$PX_PACS" "pacs.store_port=$SCP_PORT" \
	pacs.max_requests_per_minute=20 select.patient_id=TH-03-CC
mark=$(log_mark)
run_bg all
# The query is two C-FINDs (the runs before recorded a full walk: the
# cheap check's STUDY level, then the new study's SERIES level): the
# C-MOVE follows the second's final response after 3 s.
for _ in $(seq 1 300); do
	[ "$(tail -n +"$((mark + 1))" "$PROXY_LOG" | awk '$4 == "C-FIND-RSP" && $6 == "0x0000"' | wc -l)" -ge 2 ] && break
	sleep 0.1
done
orthanc_upload "$T/c4"
bg_wait 90
exit_is "the run ends well" 0
has_line "the instance beyond the count is named" "$ERR" \
	"series .* of patient TH-03-CC: the PACS sent SOP instance [0-9.]+ beyond the 3 instances its query counted; refused, listing the series"
check "the SCP refused one C-STORE of the whole-series C-MOVE" \
	"$(tail -n +"$((mark + 1))" "$PROXY_LOG" | awk '$2 == "scp" && $4 == "C-STORE-RSP" && $6 == "0xC000"' | wc -l)" 1
ok "TH-03-CC's archive holds the 4 instances the PACS lists now" archives_match TH-03-CC
finish
