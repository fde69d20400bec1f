#!/usr/bin/env bash
# t-http-hostile: a DICOMweb server that never ends its answers, or sends
# too much, or puts terminal escapes in its headers (tests/hostile_http.py).
# Each run ends on its own, exit 2, with one line naming the request and
# what was wrong: a QIDO answer trickled at 2 bytes/s is given up as too
# slow; a 60 MB QIDO page is refused at the page size bound, with or
# without a Content-Length; a server whose pages never end is given up
# after the page bound; a WADO-RS part that never ends stops at
# [pacs] max_instance_size, leaving no file behind; an ESC sequence and a
# CR in a part's Content-Type, and an ESC sequence in an answer's, reach
# stderr escaped (\x1b, \x0d), never raw.  A 30 MB page under the bound,
# of objects full of objects, is read (exit 0).  Memory stays small
# throughout (max RSS from /usr/bin/time, under 300 MB).  `timeout 120` is
# only a safety net: a hang shows as exit 124.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

HP=$(free_port)
HLOG=$LOG/hostile.log
"$PY" "$TESTS/hostile_http.py" "$HP" >"$HLOG" 2>"$LOG/hostile.err" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$HP/" && break
	sleep 0.05
done

# hostile MODE TARGET [KEY=VALUE]... : thlhp-make TARGET in a fresh project
# against the server's MODE, under `timeout 120` and /usr/bin/time (max RSS
# in kB -> $MAXRSS).
hostile() {
	local mode=$1 target=$2
	shift 2
	mkdir -p "$T/$mode" && cd "$T/$mode" || exit 1
	write_config pacs.protocol=dicomweb pacs.path= \
		"pacs.url=http://127.0.0.1:$HP/$mode/dicom-web" pacs.timeout=3 pacs.retries=0 "$@"
	LASTCMD="timeout 120 thlhp-make $target ($mode)" LASTOUT=$OUT LASTERR=$ERR
	# ASan keeps freed memory in a quarantine, 256 MB by default, which
	# would count as RSS: a build with it keeps 16 MB (others ignore this).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16 \
		timeout 120 /usr/bin/time -v -o "$LOG/time" "$THLHP" "$target" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	MAXRSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$LOG/time")
	say "  \$ $LASTCMD -> exit $RC, max RSS ${MAXRSS:-?} kB"
}
URL="http://127.0.0.1:$HP"

section "a QIDO answer trickled at 2 bytes/s"
hostile trickle query
exit_is "a trickling QIDO answer fails the run" 2
has_line "the error names the request and says it is too slow" "$ERR" \
	"GET $URL/trickle/dicom-web/studies\?[^ ]*: too slow: under 1024 bytes/s for 3 s"

section "a QIDO page of 60 MB: [{},{},...]"
hostile huge query
exit_is "a 60 MB QIDO page fails the run" 2
has_line "the error names the request and the page size bound" "$ERR" \
	"GET $URL/huge/dicom-web/studies\?[^ ]*: the answer is larger than 32 MiB; refused"
ok "max RSS stayed under 300 MB (${MAXRSS:-?} kB)" test "${MAXRSS:-999999999}" -lt 300000

section "a QIDO page of 60 MB without a Content-Length"
hostile hugecl query
exit_is "a 60 MB QIDO page fails the run" 2
has_line "the error names the request and the page size bound" "$ERR" \
	"GET $URL/hugecl/dicom-web/studies\?[^ ]*: the answer is larger than 32 MiB; refused"
ok "max RSS stayed under 300 MB (${MAXRSS:-?} kB)" test "${MAXRSS:-999999999}" -lt 300000

section "a QIDO page of 30 MB (under the bound) of objects full of objects"
hostile big query
exit_is "a 30 MB QIDO page is read" 0
ok "max RSS stayed under 300 MB: one result in memory at a time (${MAXRSS:-?} kB)" \
	test "${MAXRSS:-999999999}" -lt 300000

section "QIDO pages that never end"
hostile endless query pacs.max_requests_per_minute=1000000
exit_is "endless QIDO paging fails the run" 2
has_line "the error says the paging was given up after 10000 pages" "$ERR" \
	"GET $URL/endless/dicom-web/studies\?[^ ]*offset=1000000: more results after 10000 pages of 100, given up"
count_is "exactly 10000 pages were asked for" "$HLOG" '^endless ' 10000

section "a WADO-RS part that never ends"
hostile wado all pacs.max_instance_size=1M
exit_is "an endless WADO-RS part fails the run" 2
has_line "the error names the request and [pacs] max_instance_size" "$ERR" \
	"GET $URL/wado/dicom-web/studies/[0-9.]+/series/[0-9.]+: a part grew past \[pacs\] max_instance_size \(1048576 bytes\) without ending"
check "no file is left in data/dicom" "$(find data/dicom -type f 2>/dev/null)" ""

section "an ESC sequence and a CR in a part's Content-Type"
hostile esc all
exit_is "a part of another type fails the run" 2
has_line "the part's type is shown escaped" "$ERR" 'a part of type text/evil\\x1b\[31mRED\\x0dCR'
no_line "no raw ESC or CR byte reaches stderr" "$ERR" $'[\x1b\r]'

section "an ESC sequence in the answer's Content-Type (curl cuts it at the CR)"
hostile escct all
exit_is "a WADO-RS answer that is not multipart fails the run" 2
has_line "the answer's type is shown escaped" "$ERR" 'the server sent text/evil\\x1b\[31mRED, not multipart'
no_line "no raw ESC or CR byte reaches stderr" "$ERR" $'[\x1b\r]'

finish
