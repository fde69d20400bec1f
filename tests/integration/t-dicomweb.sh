#!/usr/bin/env bash
# t-dicomweb: a real DICOMweb server (Orthanc with Debian's orthanc-dicomweb
# plugin, basic auth) over HTTP, behind tests/dimseproxy.py, which logs
# every HTTP request and plays the link's faults.  QIDO-RS builds the
# catalog, WADO-RS fetches each series as multipart/related streamed to
# disk: archives hold what was loaded (same content, same transfer syntax);
# patients outside [select] are never asked for; requests stay under
# max_requests_per_minute; a new series gives __seriesCount<N+1> and only
# that patient is rebuilt; a partly downloaded series fetches only its
# missing instances; kill -9 mid-download, then the rerun fetches exactly
# what is not on disk; the link blackholed and the server restarted mid-run
# are ridden out; a wrong password is exit 2 with the HTTP status, no retry.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

for i in 1 2 3 4; do
	gen --patient "TH-0$i-WW" --studies 1 --series 2 --instances 4 --seed "w$i"
done
gen --patient OTHER-1 --studies 1 --series 1 --instances 3 --seed wo
OR_PLUGINS='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
OR_EXTRA='"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }'
OR_USERS='"thlhp": "s3cret"'
OR_CURL_USER=thlhp:s3cret
orthanc_start
orthanc_upload "$SRC"
PX=$(free_port)
proxy_start "pacs:$PX:127.0.0.1:$OR_HTTP"

# config [KEY=VALUE]... : thlhp.ini for the DICOMweb server.
config() {
	write_config pacs.protocol=dicomweb pacs.path= \
		"pacs.url=http://127.0.0.1:$PX/dicom-web/" 'pacs.auth=basic ${DW_USER}' \
		pacs.timeout=5 pacs.retries=4 "$@"
}
export DW_USER=thlhp:s3cret
# sent_since N : instances the server was asked for after log line N: a
# whole series' worth for each series GET, one for each instance GET.
sent_since() {
	tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk -v m="$MANIFEST" '
		BEGIN { FS = "\t"; while ((getline l < m) > 0) { split(l, f, "\t"); if (f[1] == "instance") n[f[4]]++ } FS = " " }
		$4 == "GET" && $5 ~ /\/series\/[0-9.]+$/ { k = split($5, p, "/"); s += n[p[k]] }
		$4 == "GET" && $5 ~ /\/instances\/[0-9.]+$/ { s++ }
		END { print s + 0 }'
}
MAIN="TH-01-WW TH-02-WW TH-03-WW TH-04-WW"    # the patients of the first run

section "first run against the DICOMweb server"
config
run -n
exit_is "-n against the server" 0
count_is "-n lists a download for each of the 8 selected series" "$OUT" \
	'^download +TH-0[1-4]-WW [0-9.]+ +new series \(0/4 instances\)$' 8
config pacs.max_requests_per_minute=300
mark=$(log_mark)
run -j4 all
exit_is "all -j4" 0
ok "every archive holds the instances loaded, same content and transfer syntax" archives_match $MAIN
check "OTHER-1 (not selected) has nothing on disk" "$(find data -name 'OTHER*' | wc -l)" 0
ost=$(study_of OTHER-1)
check "nothing of OTHER-1's study was ever asked for" "$(grep -c "$ost" "$PROXY_LOG")" 0
check "each selected instance was asked for once" "$(sent_since "$mark")" 32
tail -n +"$((mark + 1))" "$PROXY_LOG" >"$LOG/run.log"
if "$PY" "$TESTS/rate_check.py" "$LOG/run.log" 300 >"$LOG/rate.txt"; then
	pass "requests stay under max_requests_per_minute: $(cat "$LOG/rate.txt")"
else
	fail "requests exceed max_requests_per_minute"; sed 's/^/    /' "$LOG/rate.txt"
fi
config
check "no temp files left" "$(temp_files data)" ""
run -q
exit_is "-q right after: up to date" 0

section "a new series arrives"
st=$(study_of TH-01-WW)
gen --outdir "$T/new" --patient TH-01-WW --studies 1 --series 1 --instances 2 --seed wnew --study-uid "$st"
orthanc_upload "$T/new"
run -q
exit_is "-q sees the new series" 1
others=$(for p in TH-02-WW TH-03-WW TH-04-WW; do ident "$(archive_of "$p")"; done)
run all
exit_is "all fetches it" 0
check "the other patients' archives are left alone" \
	"$(for p in TH-02-WW TH-03-WW TH-04-WW; do ident "$(archive_of "$p")"; done)" "$others"
ok "TH-01-WW__seriesCount3.zip is built" test -f data/zip/TH-01-WW__seriesCount3.zip
ok "TH-01-WW__seriesCount2.zip is removed" test ! -e data/zip/TH-01-WW__seriesCount2.zip

section "resume: only the missing instance is fetched"
IFS=$'\t' read -r st se sop _ < <(instances_of TH-02-WW | head -n 1)
rm "data/dicom/TH-02-WW/$st/$se/$sop.dcm"
run -v all
exit_is "all restores it" 0
has_line "the download fetched 1 instance, not the whole series" "$OUT" "download +TH-02-WW (#[0-9]+ )?$se .*[^0-9]1 instance,"
check "TH-02-WW's archive is complete" "$(zip_list "$(archive_of TH-02-WW)")" "$(entries_of TH-02-WW)"

section "kill -9 mid-download, then a rerun completes"
rm -rf data .thlhp
config pacs.max_requests_per_minute=120
run_bg -j2 all
wait_disk 4
kill_bg
have=$(on_disk)
ok "killed mid-download ($have instances on disk)" test "$have" -lt 34
config
mark=$(log_mark)
run -j4 all
exit_is "the rerun completes" 0
check "the rerun fetched exactly the $((34 - have)) instances not on disk" "$(sent_since "$mark")" "$((34 - have))"
ok "with every archive complete" archives_match $MAIN
check "no temp files left" "$(temp_files data)" ""

section "the nightly link drop: blackholed mid-run for 7 s"
rm -rf data .thlhp
config pacs.max_requests_per_minute=120 pacs.timeout=3 pacs.retries=6
run_bg -j4 all
wait_disk 4
proxy_mode blackhole
sleep 7
proxy_mode pass
bg_wait 180
LASTCMD="thlhp-make -j4 all (link blackholed for 7 s)"
exit_is "the run rides out the blackhole" 0
ok "with every archive complete" archives_match $MAIN

section "the server restarted mid-run"
rm -rf data .thlhp
config pacs.max_requests_per_minute=120
run_bg -j4 all
wait_disk 4
orthanc_stop
sleep 3
orthanc_start
bg_wait 120
LASTCMD="thlhp-make -j4 all (server down for 3 s)"
exit_is "the run completes after the server comes back" 0
ok "with every archive complete" archives_match $MAIN

section "a series deleted at the server is reported, and kept in its archive"
config
a=$(archive_of TH-03-WW)
before=$(ident "$a")
se=$(series_of TH-03-WW | head -n 1)
oid=$(or_curl /tools/lookup -X POST -d "$se" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')
or_curl "/series/$oid" -X DELETE >/dev/null
run all
exit_is "all after the series left the server" 0
has_line "stderr names the series that is no longer at the source" "$ERR" "$se.*no longer at the source"
check "TH-03-WW's archive is left as it was" "$(ident "$a")" "$before"
instances_of_series "$se" | while IFS=$'\t' read -r _ _ _ src; do
	or_curl /instances -X POST --data-binary @"$src" >/dev/null
done

section "QIDO paging: 101 studies of one patient come in two pages of 100"
gen --outdir "$T/many" --patient TH-09-WW --studies 101 --series 1 --instances 1 --seed wmany
orthanc_upload "$T/many"
config select.patient_id=TH-09-WW pacs.max_requests_per_minute=100000
mark=$(log_mark)
run -n
exit_is "-n for a patient with 101 studies" 0
count_is "-n lists a download for each of the 101 series" "$OUT" '^download +TH-09-WW ' 101
check "the studies were asked in two pages" \
	"$(tail -n +"$((mark + 1))" "$PROXY_LOG" | grep -c 'GET /dicom-web/studies?PatientID=TH-09-WW.*offset=')" 2

section "the link stays down: exit 2 in bounded time, then the next run completes"
config pacs.timeout=2 pacs.retries=2
proxy_mode refuse
start=$(date +%s)
run all
exit_is "all with the link down stops cleanly" 2
ok "within its retry budget ($(( $(date +%s) - start )) s)" test $(( $(date +%s) - start )) -lt 30
has_line "stderr names the server it could not reach" "$ERR" "127.0.0.1:$PX"
proxy_mode pass
config
run -j4 all
exit_is "the next run completes" 0

section "a wrong password"
export DW_USER=thlhp:wrong
config
start=$(date +%s)
run -n
exit_is "-n with a refused login is exit 2" 2
has_line "stderr gives the HTTP status and says to check auth" "$ERR" "HTTP 401.*check \[pacs\] auth"
ok "no retries on a refused login ($(( $(date +%s) - start )) s)" test $(( $(date +%s) - start )) -lt 3
section "HTTPS: the server's certificate is verified against tls_ca"
pki=$T/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=thlhp test CA" \
	-keyout "$pki/ca.key" -out "$pki/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$pki/server.key" -out "$pki/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
	-days 2 -extfile "$pki/san.ext" -out "$pki/server.pem" >/dev/null 2>&1
cat "$pki/server.pem" "$pki/server.key" >"$pki/orthanc.pem"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
	-keyout "$pki/other.key" -out "$pki/other.pem" >/dev/null 2>&1
# Orthanc 1.10.1's own HTTPS crashes on OpenSSL 3 (Debian 12): serve it
# the way sites do, behind nginx terminating TLS, with HTTP/2 offered.
NG=$T/nginx HTTPS=$(free_port)
mkdir -p "$NG"
cat >"$NG/nginx.conf" <<NGINX
daemon off;
master_process off;   # one process: stopping it by PID leaves no worker behind
pid $NG/nginx.pid;
error_log $LOG/nginx.err;
events {}
http {
	access_log $LOG/nginx.access;
	client_body_temp_path $NG; proxy_temp_path $NG; fastcgi_temp_path $NG;
	uwsgi_temp_path $NG; scgi_temp_path $NG;
	log_format proto '\$server_protocol \$status \$request_uri';
	server {
		listen 127.0.0.1:$HTTPS ssl http2;
		ssl_certificate $pki/server.pem;
		ssl_certificate_key $pki/server.key;
		access_log $LOG/nginx.access proto;
		# A bearer token in front, Orthanc's basic login behind.
		location / {
			if (\$http_authorization != "Bearer tok-5e1f") { return 401; }
			proxy_set_header Authorization "Basic $(printf %s "$OR_CURL_USER" | base64)";
			proxy_pass http://127.0.0.1:$OR_HTTP;
			proxy_buffering off;
		}
	}
}
NGINX
nginx -p "$NG" -c "$NG/nginx.conf" &
BGPIDS="$BGPIDS $!"
for _ in $(seq 1 50); do
	curl -sf --cacert "$pki/ca.pem" -H "Authorization: Bearer tok-5e1f" "https://127.0.0.1:$HTTPS/system" >/dev/null && break
	sleep 0.1
done
export DW_TOKEN=tok-5e1f
rm -rf data .thlhp
config "pacs.url=https://127.0.0.1:$HTTPS/dicom-web" "pacs.tls_ca=$pki/ca.pem" 'pacs.auth=bearer ${DW_TOKEN}' \
	select.patient_id='TH-0[1-4]-WW'
run -j4 all
exit_is "all over HTTPS with a bearer token, the server verified against tls_ca" 0
ok "every archive complete" archives_match $MAIN
has_line "over HTTP/2, as the server offered it" "$LOG/nginx.access" "^HTTP/2.0 200 /dicom-web/studies/"
rm -rf data .thlhp
config "pacs.url=https://127.0.0.1:$HTTPS/dicom-web" "pacs.tls_ca=$pki/other.pem" \
	'pacs.auth=bearer ${DW_TOKEN}'
t0=$(date +%s)
run -n
t1=$(date +%s)
exit_is "a server whose certificate does not verify is exit 2" 2
has_line "stderr says the certificate could not be verified" "$ERR" "certificate"
ok "at once, not tried again ($((t1 - t0)) s; [pacs] retries is 5)" test $((t1 - t0)) -le 3
export DW_TOKEN=tok-wrong
config "pacs.url=https://127.0.0.1:$HTTPS/dicom-web" "pacs.tls_ca=$pki/ca.pem" 'pacs.auth=bearer ${DW_TOKEN}'
run -n
exit_is "a wrong bearer token is exit 2" 2
has_line "stderr gives the HTTP status and says to check auth" "$ERR" "HTTP 401.*check \[pacs\] auth"
finish
