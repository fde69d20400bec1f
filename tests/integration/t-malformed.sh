#!/usr/bin/env bash
# shellcheck disable=SC2317  # final_files_ok and mp_check are run by ok
# t-malformed: a DICOMweb server (Orthanc with its plugin, behind
# tests/dimseproxy.py) that sends bad instances.  The proxy alters one
# instance of each of three patients in flight (mangle): cut to half
# (truncate), text instead of DICOM (notdicom), the SeriesInstanceUID of
# another series (series); a fourth patient is clean.  Each bad instance is
# rejected with its SOP UID and what is wrong, the run is exit 2, no
# archive is built for those patients and no file sits under a final name
# that is not what the server holds; -k builds the clean patient's archive.
# While the server keeps sending them bad, every run reports them again,
# asks for nothing but them and never zips them; once it sends them right,
# the next run fetches only the bad instances and every archive holds what
# was loaded.  First, the proxy's mangle mode itself, on Orthanc's answers
# and on a chunked one.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

gen --patient TH-01-MT --studies 1 --series 2 --instances 3 --seed mt
gen --patient TH-02-MN --studies 1 --series 2 --instances 3 --seed mn
gen --patient TH-03-MS --studies 1 --series 2 --instances 3 --seed ms
gen --patient TH-04-MC --studies 1 --series 2 --instances 3 --seed mc
OR_PLUGINS='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
OR_EXTRA='"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }'
orthanc_start
orthanc_upload "$SRC"
PX=$(free_port) PC=$(free_port) CS=$(free_port)
proxy_start "pacs:$PX:127.0.0.1:$OR_HTTP" "chunk:$PC:127.0.0.1:$CS"

# bad PID : "study series sop srcpath" of the instance of PID that goes bad:
# the second of its first series.
bad() { instances_of "$1" | sed -n 2p; }
IFS=$'\t' read -r ST_T SE_T SOP_T _ < <(bad TH-01-MT)
IFS=$'\t' read -r _ SE_N SOP_N _ < <(bad TH-02-MN)
IFS=$'\t' read -r _ SE_S SOP_S _ < <(bad TH-03-MS)
# The SeriesInstanceUID the proxy writes into SOP_S: the last digit plus one.
OTHER_S=${SE_S%?}$(( (${SE_S: -1} + 1) % 10 ))
MANGLE="mangle truncate $SOP_T notdicom $SOP_N series $SOP_S"
ACCEPT='Accept: multipart/related; type="application/dicom"; transfer-syntax=*'

# wado_since N : the WADO-RS retrieves (a series or an instance, not the
# QIDO listings) after proxy log line N, "series UID" or "instance UID" a
# line, sorted.
wado_since() {
	tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk '
		$4 == "GET" && $5 ~ /\/series\/[0-9.]+$/ { n = split($5, p, "/"); print "series " p[n] }
		$4 == "GET" && $5 ~ /\/instances\/[0-9.]+$/ { n = split($5, p, "/"); print "instance " p[n] }' | sort
}
# mangled_since N : the FAULT mangle-KIND lines after log line N, as
# "KIND SOP" lines, sorted and unique.
mangled_since() {
	tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk '$4 == "FAULT" && $5 ~ /^mangle-/ { print substr($5, 8) " " $6 }' | sort -u
}
# final_files_ok : every instance file under its final name in dicom_dir
# is byte for byte what was loaded into the server.
final_files_ok() {
	local f bad=0 sop src
	while IFS= read -r f; do
		sop=$(basename "$f" .dcm)
		src=$(awk -F'\t' -v s="$sop" '$1 == "instance" && $5 == s { print $6 }' "$MANIFEST")
		cmp -s "$src" "$f" || { say "    $f is not what the server holds"; bad=1; }
	done < <(find data/dicom -name '*.dcm' ! -name '.*' 2>/dev/null)
	return "$bad"
}
# bad_zips : archives (or temp archives) of the patients with a bad instance.
bad_zips() { find data/zip -name '*TH-0[123]-M*' 2>/dev/null; }
# reasons : each bad instance is named on stderr with what is wrong with it.
reasons() {
	has_line "$SOP_T is named as truncated" "$ERR" "^thlhp-make: .*$SOP_T.*truncated"
	has_line "$SOP_N is named as not DICOM" "$ERR" "^thlhp-make: .*$SOP_N.*not (a )?DICOM"
	has_line "$SOP_S is named as belonging to series $OTHER_S" "$ERR" \
		"^thlhp-make: .*$SOP_S.*series $OTHER_S"
}

# mp_check ORIG GOT SOP KIND : GOT is the multipart body ORIG with the part
# of SOP altered as KIND says (truncate: its first half; notdicom: as many
# bytes, without DICM; series: as many bytes, SeriesInstanceUID of another
# series; none: no part altered), every other byte of it the same: same
# parts (each answer has its own boundary), each part's Content-Length its
# length.
mp_check() {
	"$PY" - "$@" <<'PYEOF'
import io, re, sys
import pydicom
orig, got, sop, kind = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3], sys.argv[4]
def parts(b):
    delim = b"\r\n" + b.split(b"\r\n", 1)[0]
    return [p.split(b"\r\n\r\n", 1) for p in (b"\r\n" + b).split(delim)[1:-1]], b.rsplit(delim, 1)[1]
(po, eo), (pg, eg) = parts(orig), parts(got)
bad = []
if len(po) != len(pg) or eo != eg:
    bad.append("%d parts, %d sent" % (len(pg), len(po)))
for (ho, bo), (hg, bg) in zip(po, pg):
    m = re.search(rb"Content-Length: *(\d+)", hg, re.I)
    if m and int(m.group(1)) != len(bg):
        bad.append("a part's Content-Length is %s, its body %d bytes" % (m.group(1).decode(), len(bg)))
    if pydicom.dcmread(io.BytesIO(bo)).SOPInstanceUID != sop:
        if (ho, bo) != (hg, bg):
            bad.append("a part of another instance changed")
        continue
    if re.sub(rb"Content-Length: *\d+", b"", ho) != re.sub(rb"Content-Length: *\d+", b"", hg):
        bad.append("the part's headers changed")
    if kind == "truncate" and bg != bo[:len(bo) // 2]:
        bad.append("the part is not the first half of the instance")
    if kind == "notdicom" and (len(bg) != len(bo) or b"DICM" in bg):
        bad.append("the part is not %d bytes of something else" % len(bo))
    if kind == "series":
        a, b = pydicom.dcmread(io.BytesIO(bo)), pydicom.dcmread(io.BytesIO(bg))
        if len(bg) != len(bo) or a.SeriesInstanceUID == b.SeriesInstanceUID or \
                len(a.SeriesInstanceUID) != len(b.SeriesInstanceUID) or b.SOPInstanceUID != sop:
            bad.append("the part is not the instance with another series UID of the same length")
bad and print("; ".join(bad))
sys.exit(1 if bad else 0)
PYEOF
}

section "the proxy's mangle mode on Orthanc's answers"
or_curl "/dicom-web/studies/$ST_T/series/$SE_T" -H "$ACCEPT" -o "$LOG/series.orig"
or_curl "/dicom-web/studies/$ST_T/series/$SE_T/instances/$SOP_T" -H "$ACCEPT" -o "$LOG/inst.orig"
proxy_mode "$MANGLE"
for k in truncate notdicom series; do
	[ $k = truncate ] || proxy_mode mangle $k "$SOP_T"
	curl -sf -H "$ACCEPT" -o "$LOG/series.$k" "http://127.0.0.1:$PX/dicom-web/studies/$ST_T/series/$SE_T" &&
		curl -sf -H "$ACCEPT" -D "$LOG/inst.head.$k" -o "$LOG/inst.$k" \
			"http://127.0.0.1:$PX/dicom-web/studies/$ST_T/series/$SE_T/instances/$SOP_T"
	check "$k: curl reads both answers" "$?" 0
	ok "$k: the series answer has only that instance altered" mp_check "$LOG/series.orig" "$LOG/series.$k" "$SOP_T" $k
	ok "$k: so has the single-instance answer" mp_check "$LOG/inst.orig" "$LOG/inst.$k" "$SOP_T" $k
	check "$k: whose Content-Length is its length" \
		"$(tr -d '\r' <"$LOG/inst.head.$k" | awk 'tolower($1) == "content-length:" { print $2 }')" \
		"$(stat -c %s "$LOG/inst.$k")"
done
proxy_mode pass
curl -sf -H "$ACCEPT" -o "$LOG/series.pass" "http://127.0.0.1:$PX/dicom-web/studies/$ST_T/series/$SE_T"
ok "pass: the answer goes through unchanged" mp_check "$LOG/series.orig" "$LOG/series.pass" - none

section "the proxy's mangle mode on a chunked answer"
# A server that sends the series answer saved above, chunked (chunks of
# 1 to 9000 bytes, some with an extension, and a trailer), keeping the
# connection open for the next request.
ctype="multipart/related; type=\"application/dicom\"; boundary=$(head -n 1 "$LOG/series.orig" | tr -d '\r' | cut -c3-)"
"$PY" - "$CS" "$LOG/series.orig" "$ctype" >"$LOG/chunk-server.log" 2>&1 <<'PYEOF' &
import random, socket, sys, threading
body, ctype = open(sys.argv[2], "rb").read(), sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(8)
def serve(c):
    rng, buf = random.Random(1), b""
    while True:
        while b"\r\n\r\n" not in buf:
            more = c.recv(65536)
            if not more:
                return c.close()
            buf += more
        buf = buf.split(b"\r\n\r\n", 1)[1]
        out, i = [b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % ctype.encode()], 0
        while i < len(body):
            n = rng.randint(1, 9000)
            out.append(b"%x%s\r\n%s\r\n" % (len(body[i:i + n]), b";x=1" if n % 3 == 0 else b"", body[i:i + n]))
            i += n
        c.sendall(b"".join(out) + b"0\r\nX-Trailer: 1\r\n\r\n")
while True:
    threading.Thread(target=serve, args=(ls.accept()[0],), daemon=True).start()
PYEOF
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$CS/" && break; sleep 0.1; done
proxy_mode mangle truncate "$SOP_T"
mark=$(log_mark)
curl -sf -H "$ACCEPT" -D "$LOG/chunk.head" -o "$LOG/chunk.1" "http://127.0.0.1:$PC/a" -o "$LOG/chunk.2" "http://127.0.0.1:$PC/b"
check "curl reads two chunked answers on one connection through the proxy" "$?" 0
check "on one connection" "$(tail -n +"$((mark + 1))" "$PROXY_LOG" | awk '$2 == "chunk" && $4 == "CONNECT"' | wc -l)" 1
ok "the first has only that instance cut to half" mp_check "$LOG/series.orig" "$LOG/chunk.1" "$SOP_T" truncate
ok "so has the second" mp_check "$LOG/series.orig" "$LOG/chunk.2" "$SOP_T" truncate
check "both are sent de-chunked, with a Content-Length" \
	"$(tr -d '\r' <"$LOG/chunk.head" | awk 'tolower($1) == "content-length:" { print $2 }')" \
	"$(stat -c %s "$LOG/chunk.1")
$(stat -c %s "$LOG/chunk.2")"
proxy_mode pass
curl -sf -D "$LOG/chunk.head.pass" -o "$LOG/chunk.pass" "http://127.0.0.1:$PC/c"
ok "pass: a chunked answer goes through unchanged" cmp -s "$LOG/series.orig" "$LOG/chunk.pass"
has_line "still chunked" "$LOG/chunk.head.pass" "^Transfer-Encoding: chunked"

section "the server sends three bad instances: all"
write_config pacs.protocol=dicomweb pacs.path= "pacs.url=http://127.0.0.1:$PX/dicom-web" \
	pacs.timeout=5 pacs.retries=1 pacs.max_requests_per_minute=6000
proxy_mode "$MANGLE"
mark=$(log_mark)
run -j4 all
exit_is "all with bad instances from the server fails" 2
# Without -k nothing new starts after the first failure: not every bad
# instance need have been asked for, but what failed failed for it.
why="^thlhp-make: .*($SOP_T.*truncated|$SOP_N.*not (a )?DICOM|$SOP_S.*series $OTHER_S)"
has_line "stderr names a bad instance and what is wrong with it" "$ERR" "$why"
check "and every error on stderr is such a one" \
	"$(grep -Ev "$why|^thlhp-make: [0-9]+ jobs? failed" "$ERR")" ""
check "no archive of a patient with a bad instance" "$(bad_zips)" ""
check "no temp files left" "$(temp_files data)" ""
ok "every file under its final name is what the server holds" final_files_ok

section "-k all: the clean patient is zipped, the bad ones are reported"
mark=$(log_mark)
run -k -j4 all
exit_is "-k all with bad instances still fails" 2
reasons
check "each of them was sent bad" "$(mangled_since "$mark")" \
	"$(printf '%s\n' "notdicom $SOP_N" "series $SOP_S" "truncate $SOP_T" | sort)"
ok "the clean patient's archive is built and holds what was loaded" archives_match TH-04-MC
check "no archive of a patient with a bad instance" "$(bad_zips)" ""
check "no temp files left" "$(temp_files data)" ""
ok "every file under its final name is what the server holds" final_files_ok

section "the server keeps sending them bad: reported on every run, never zipped"
for i in 1 2; do
	mark=$(log_mark)
	run -k -j4 all
	exit_is "run $i more with the same bad instances" 2
	reasons
	check "only the bad instances are asked for, and each is sent bad again" \
		"$(wado_since "$mark" | sort -u) / $(mangled_since "$mark" | cut -d' ' -f2 | sort)" \
		"$(printf 'instance %s\n' "$SOP_T" "$SOP_N" "$SOP_S" | sort) / $(printf '%s\n' "$SOP_T" "$SOP_N" "$SOP_S" | sort)"
	check "no archive of a patient with a bad instance" "$(bad_zips)" ""
	ok "every file under its final name is what the server holds" final_files_ok
done
run -q
exit_is "-q: still stale" 1
run -n
count_is "-n: each bad series misses one instance" "$OUT" \
	"^download +TH-0[123]-M[TNS] ($SE_T|$SE_N|$SE_S) +instances missing \(2/3 instances\)$" 3

section "the server sends them right again: only the bad instances are fetched"
proxy_mode pass
mark=$(log_mark)
run -j4 all
exit_is "all once the server sends them right" 0
check "only the three bad instances were retrieved again, once each" "$(wado_since "$mark")" \
	"$(printf 'instance %s\n' "$SOP_T" "$SOP_N" "$SOP_S" | sort)"
ok "every archive holds what was loaded, same content and transfer syntax" archives_match
check "no temp files left" "$(temp_files data)" ""
run -q
exit_is "-q: up to date" 0
check "the proxy followed every HTTP answer (nothing on its stderr)" "$(cat "$LOG/proxy.err")" ""

finish
