#!/usr/bin/env bash
# t-proxy: the test proxy tests/dimseproxy.py itself, against Orthanc with
# DCMTK's tools: it logs C-ECHO/C-FIND/C-GET/C-MOVE/C-STORE with their SOP
# instance UIDs and statuses (C-MOVE's sub-association through a second
# route), streams a large dataset and a half-closed raw stream unchanged,
# takes many connections at once, and its faults do what they say: drop N,
# reset P SEED, refuse (ECONNREFUSED, then listening again), and blackhole
# (held connections, no CPU, reset when the link comes back).
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

export TCP_NODELAY=1
PPACS=$(free_port) PSTORE=$(free_port) PRAW=$(free_port)
SCP_PORT=$(free_port) RAW_PORT=$(free_port)
STORE_PORT=$PSTORE              # Orthanc's C-MOVE destination THLHP is the proxy's store route

gen --patient TH-PX-01 --studies 1 --series 2 --instances 3 --seed px
ST=$(study_of TH-PX-01)
{ read -r SE1; read -r SE2; } < <(series_of TH-PX-01)
orthanc_start
orthanc_upload "$SRC"

# dcmtk's storescp as the C-MOVE destination, behind the store route.
mkdir -p "$T/move"
storescp -aet THLHP -od "$T/move" "$SCP_PORT" >"$LOG/storescp.log" 2>&1 &
BGPIDS="$BGPIDS $!"

# A raw TCP peer behind the raw route: per connection, read until EOF, then
# send back the sha256 of what came, a newline and the bytes themselves;
# append "ok N" or "error N <exception>" to $LOG/raw.out.
"$PY" - "$RAW_PORT" "$LOG/raw.out" >"$LOG/raw-server.log" 2>&1 <<'PYEOF' &
import hashlib, socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
def serve(c):
    data = bytearray()
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.sendall(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
        c.close()
        res = "ok %d" % len(data)
    except OSError as e:
        res = "error %d %s" % (len(data), type(e).__name__)
    with open(sys.argv[2], "a") as f:
        f.write(res + "\n")
while True:
    threading.Thread(target=serve, args=(ls.accept()[0],), daemon=True).start()
PYEOF
BGPIDS="$BGPIDS $!"

# raw_client big PORT N : send N bytes (starting 0xFF, not DICOM), half-close,
# check the answer.  raw_client hold PORT GOFILE : send 1000 bytes, wait for
# GOFILE, half-close, print what the read then gives (reset, eof or data).
raw_client() {
	"$PY" - "$@" <<'PYEOF'
import hashlib, os, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
if mode == "big":
    data = b"\xff" + os.urandom(int(sys.argv[3]) - 1)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        got += b
    want = hashlib.sha256(data).hexdigest().encode() + b"\n" + data
    print("ok" if got == want else "mismatch: %d bytes back, want %d" % (len(got), len(want)))
else:
    s.sendall(b"\x01" * 1000)
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.05)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    try:
        print("data" if s.recv(100) else "eof")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("timeout")
PYEOF
}

proxy_start "pacs:$PPACS:127.0.0.1:$OR_DICOM" "store:$PSTORE:127.0.0.1:$SCP_PORT" \
	"raw:$PRAW:127.0.0.1:$RAW_PORT"
for _ in $(seq 1 50); do echoscu -aec THLHP 127.0.0.1 "$SCP_PORT" >/dev/null 2>&1 && break; sleep 0.1; done

AE=(-aet THLHP -aec ORTHANC)
# dcmtk TOOL ARGS... : run a DCMTK tool, its output to a new $LOG/TOOL.*.log; sets RC
dcmtk() {
	LASTCMD="$*"
	OUT=$LOG/$1.$BASHPID.$RANDOM.log ERR=$OUT
	"$@" >"$OUT" 2>&1 </dev/null
	RC=$?
	say "  \$ $LASTCMD -> exit $RC"
}
KEYS1=(-S -k QueryRetrieveLevel=SERIES -k "StudyInstanceUID=$ST" -k "SeriesInstanceUID=$SE1")
KEYS2=(-S -k QueryRetrieveLevel=SERIES -k "StudyInstanceUID=$ST" -k "SeriesInstanceUID=$SE2")
sops_of() { instances_of_series "$1" | cut -f3 | sort; }
find_series() { dcmtk findscu "${AE[@]}" "$@" -S -k QueryRetrieveLevel=SERIES -k PatientID=TH-PX-01 \
	-k "StudyInstanceUID=$ST" -k SeriesInstanceUID 127.0.0.1 "$PPACS"; }
get_series() { local d=$1; shift; mkdir -p "$d"
	dcmtk getscu "${AE[@]}" "$@" "${KEYS1[@]}" -od "$d" 127.0.0.1 "$PPACS"; }
nfiles() { find "$1" -type f | wc -l; }
uids_in() { find "$1" -type f -printf '%f\n' | sed 's/^CT\.//' | sort; }   # dcmtk names files CT.<SOP UID>

section "C-ECHO and C-FIND through the proxy"
dcmtk echoscu "${AE[@]}" 127.0.0.1 "$PPACS"
exit_is "echoscu through the proxy" 0
check "one C-ECHO-RQ and one C-ECHO-RSP 0x0000" \
	"$(proxy_count C-ECHO-RQ pacs c2s) $(grep -c 'pacs s2c C-ECHO-RSP - 0x0000$' "$PROXY_LOG")" "1 1"
find_series
exit_is "findscu through the proxy" 0
find_series
exit_is "findscu again" 0
check "one C-FIND-RQ per findscu" "$(proxy_count C-FIND-RQ pacs c2s)" 2
count_is "a pending C-FIND-RSP per series per findscu" "$PROXY_LOG" '^[0-9]+\.[0-9]{6} pacs s2c C-FIND-RSP - 0xFF00$' 4
count_is "a final C-FIND-RSP 0x0000 per findscu" "$PROXY_LOG" ' pacs s2c C-FIND-RSP - 0x0000$' 2
ok "the three associations are logged closed" proxy_wait CLOSE 3 pacs
check "CONNECT lines" "$(proxy_count CONNECT pacs)" 3

section "C-GET through the proxy"
get_series "$T/get"
exit_is "getscu of series 1 through the proxy" 0
check "getscu wrote the 3 instances" "$(uids_in "$T/get")" "$(sops_of "$SE1")"
check "a C-STORE-RQ (s2c) per instance, with the generated SOP UIDs" \
	"$(proxy_uids C-STORE-RQ pacs)" "$(sops_of "$SE1")"
check "every C-STORE-RQ is Orthanc -> getscu" "$(proxy_count C-STORE-RQ pacs s2c)" 3
count_is "a C-STORE-RSP 0x0000 from getscu per instance" "$PROXY_LOG" ' pacs c2s C-STORE-RSP 2\.25\.[0-9]+ 0x0000$' 3
count_is "one C-GET-RQ, naming its information model" "$PROXY_LOG" ' pacs c2s C-GET-RQ 1\.2\.840\.10008\.5\.1\.4\.1\.2\.[12]\.3 -$' 1
count_is "a final C-GET-RSP 0x0000" "$PROXY_LOG" ' pacs s2c C-GET-RSP - 0x0000$' 1

section "C-MOVE through the proxy: the sub-association takes the store route"
dcmtk movescu "${AE[@]}" -aem THLHP "${KEYS2[@]}" 127.0.0.1 "$PPACS"
exit_is "movescu of series 2 through the proxy" 0
check "storescp received the 3 instances" "$(uids_in "$T/move")" "$(sops_of "$SE2")"
check "the store route logged a C-STORE-RQ (c2s: Orthanc -> storescp) per instance" \
	"$(proxy_uids C-STORE-RQ store)" "$(sops_of "$SE2")"
count_is "and storescp's C-STORE-RSP 0x0000" "$PROXY_LOG" ' store s2c C-STORE-RSP 2\.25\.[0-9]+ 0x0000$' 3
count_is "one C-MOVE-RQ on the pacs route, naming its information model" "$PROXY_LOG" ' pacs c2s C-MOVE-RQ 1\.2\.840\.10008\.5\.1\.4\.1\.2\.[12]\.2 -$' 1
count_is "a final C-MOVE-RSP 0x0000" "$PROXY_LOG" ' pacs s2c C-MOVE-RSP - 0x0000$' 1
check "no C-STORE on the pacs route for the move" "$(proxy_count C-STORE-RQ pacs)" 3

section "a large dataset, a half-closed raw stream"
big=$T/big.dcm
"$PY" - "$(instances_of_series "$SE1" | head -n 1 | cut -f4)" "$big" <<'PYEOF'
import os, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID + ".9"
ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".9"     # a series of its own
ds.add_new(0x00420011, "OB", os.urandom(12 << 20))     # EncapsulatedDocument, 12 MiB
ds.save_as(sys.argv[2], write_like_original=False)
PYEOF
BIGUID=$("$PY" "$TESTS/gen_series.py" --show "$big" | cut -f4)
cpu0=$(proxy_cpu)
dcmtk storescu "${AE[@]}" 127.0.0.1 "$PPACS" "$big"
exit_is "storescu of a 12 MiB instance through the proxy" 0
count_is "its C-STORE-RQ is logged with its UID" "$PROXY_LOG" " pacs c2s C-STORE-RQ $BIGUID -$" 1
count_is "and Orthanc's C-STORE-RSP 0x0000" "$PROXY_LOG" " pacs s2c C-STORE-RSP $BIGUID 0x0000$" 1
mkdir -p "$T/big"
dcmtk getscu "${AE[@]}" -S -k QueryRetrieveLevel=IMAGE -k "StudyInstanceUID=$ST" \
	-k "SeriesInstanceUID=$SE1.9" -k "SOPInstanceUID=$BIGUID" -od "$T/big" 127.0.0.1 "$PPACS"
exit_is "getscu of it back through the proxy" 0
ok "the 12 MiB element came back intact" "$PY" -c '
import sys, pydicom
a, b = (pydicom.dcmread(f)[0x00420011].value for f in sys.argv[1:])
sys.exit(a != b or len(a) != 12 << 20)' "$big" "$(find "$T/big" -type f | head -n 1)"
say "    proxy CPU for 2 x 12 MiB of DICOM: $(awk -v a="$cpu0" -v b="$(proxy_cpu)" 'BEGIN { printf "%.2f", b - a }') s"
check "raw: 20 MiB sent, half-closed, answered and echoed back intact" "$(raw_client big "$PRAW" $((20 << 20)))" ok
check "the raw peer saw all of it and the EOF" "$(tail -n 1 "$LOG/raw.out")" "ok $((20 << 20))"
check "not DICOM: one PARSE-ERROR for that connection" "$(proxy_count PARSE-ERROR raw)" 1
ok "the raw connection is logged closed" proxy_wait CLOSE 1 raw

section "many connections at once"
n0=$(proxy_count C-FIND-RQ pacs)
pids=
for i in $(seq 1 16); do find_series >/dev/null & pids="$pids $!"; done
for i in $(seq 1 6); do get_series "$T/par$i" >/dev/null & pids="$pids $!"; done
bad=0
for p in $pids; do wait "$p" || bad=$((bad + 1)); done
check "16 findscu and 6 getscu at once all succeed" "$bad" 0
check "16 more C-FIND-RQ" "$(($(proxy_count C-FIND-RQ pacs) - n0))" 16
check "each getscu got its 3 instances" "$(for i in $(seq 1 6); do nfiles "$T/par$i"; done | sort -u)" 3

section "drop N: the link closes after N bytes"
ok "proxy_mode drop 60000" proxy_mode drop 60000
get_series "$T/drop"
fails "getscu through a link that drops after 60000 bytes fails" test "$RC" -eq 0
ok "it did not get the whole series" test "$(nfiles "$T/drop")" -lt 3
count_is "the proxy logged the drop" "$PROXY_LOG" ' pacs - FAULT drop - -$' 1
ok "proxy_mode pass" proxy_mode pass
get_series "$T/drop2"
exit_is "after pass, getscu works again" 0

section "reset P SEED"
ok "proxy_mode reset 1 7" proxy_mode reset 1 7
find_series
fails "findscu through a link that resets every chunk fails" test "$RC" -eq 0
has_line "the proxy logged the reset" "$PROXY_LOG" ' pacs - FAULT reset - -$'
ok "proxy_mode reset 0 7" proxy_mode reset 0 7
find_series
exit_is "with P = 0 nothing is reset" 0

section "refuse"
ok "proxy_mode refuse" proxy_mode refuse
find_series
fails "findscu while the proxy refuses fails" test "$RC" -eq 0
has_line "findscu says connection refused" "$OUT" 'Connection refused'
fails "a plain TCP connect is refused" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PPACS" 2>/dev/null
ok "proxy_mode pass" proxy_mode pass
find_series
exit_is "after pass the proxy listens again" 0

section "blackhole: the nightly link drop"
rm -f "$T/go"
raw_client hold "$PRAW" "$T/go" >"$LOG/hold.out" &
hold_pid=$!
nraw=$(wc -l <"$LOG/raw.out")
ok "the held raw connection is up" proxy_wait CONNECT 2 raw
sleep 0.3
cpu0=$(proxy_cpu) t0=$EPOCHREALTIME
ok "proxy_mode blackhole" proxy_mode blackhole
touch "$T/go"                   # the raw client half-closes now: the FIN is held too
t1=$EPOCHREALTIME
find_series -to 1 -ta 1 -td 1
t2=$EPOCHREALTIME
fails "findscu -to 1 -ta 1 -td 1 through the blackhole fails" test "$RC" -eq 0
took=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')
ok "and gives up after its timeout (${took} s), not later" awk -v t="$took" 'BEGIN { exit !(t < 2.5) }'
sleep "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { d = 3 - (b - a); print (d > 0 ? d : 0) }')"
cpu=$(awk -v a="$cpu0" -v b="$(proxy_cpu)" 'BEGIN { printf "%.2f", b - a }')
ok "the proxy used ${cpu} s CPU over a 3 s blackhole (< 0.2)" awk -v c="$cpu" 'BEGIN { exit !(c < 0.2) }'
check "nothing reached the raw peer meanwhile (no EOF)" "$(wc -l <"$LOG/raw.out")" "$nraw"
check "the held raw client is still waiting" "$(cat "$LOG/hold.out")" ""
ok "proxy_mode pass" proxy_mode pass
wait "$hold_pid"
check "when the link comes back the held client is reset" "$(cat "$LOG/hold.out")" reset
for _ in $(seq 1 20); do [ "$(wc -l <"$LOG/raw.out")" -gt "$nraw" ] && break; sleep 0.05; done
has_line "and so is the raw peer" "$LOG/raw.out" '^error 1000 ConnectionResetError$'
check "both held connections (raw, findscu) are logged held-reset" \
	"$(grep -c ' FAULT held-reset - -$' "$PROXY_LOG")" 2
find_series
exit_is "after the blackhole findscu works again" 0

section "the log and SIGTERM"
check "every line has the documented fields" "$(grep -Ev \
	'^[0-9]+\.[0-9]{6} ([a-z]+ (c2s|s2c) [A-Z0-9x-]+ ([0-9.]+|-) (0x[0-9A-F]{4}|-)|[a-z]+ - (CONNECT|CLOSE) - -|[a-z]+ - FAULT [a-z-]+ - -|- - MODE [a-z0-9:.]+ -|[a-z]+ (c2s|s2c) PARSE-ERROR - -)$' \
	"$PROXY_LOG" | head -n 5)" ""
t0=$EPOCHREALTIME
proxy_stop
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
ok "SIGTERM stops the proxy promptly (${took} s)" awk -v t="$took" 'BEGIN { exit !(t < 1) }'
fails "its ports are closed" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PPACS" 2>/dev/null
check "the proxy wrote nothing unexpected to stderr" "$(grep -v 'parse error' "$LOG/proxy.err")" ""
finish
