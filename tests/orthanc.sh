# tests/orthanc.sh - a throwaway Orthanc on 127.0.0.1 for one scenario,
# sourced after lib.sh: orthanc_start, orthanc_upload, orthanc_stop.
# Its storage lives in $T and it is stopped by PID when the scenario ends.
# It uses lib.sh's T, LOG, PY, BGPIDS and say (tests/bench/download.sh,
# which does not source lib.sh, sets them itself).
# shellcheck shell=bash

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# orthanc_start : start Orthanc (DICOM AE ORTHANC on $OR_DICOM, HTTP on
# $OR_HTTP) that knows thlhp-make as AE THLHP at 127.0.0.1:$STORE_PORT.
# Optional: OR_PLUGINS (JSON strings of plugin paths), OR_EXTRA (more JSON
# members), OR_USERS (JSON members "user": "password": HTTP basic auth on;
# set OR_CURL_USER=user:password for the helpers' own requests), OR_TLS_DIR
# (its DICOM port speaks TLS only, with the certificate orthanc.crt and key
# orthanc.key of that folder, and wants a client certificate signed by its
# ca.crt; it sends C-MOVE'd instances to THLHP over TLS too, presenting the
# same certificate), OR_CACERT (when OR_EXTRA turns HTTPS on: the CA the
# helpers' own requests verify it with), OR_MODALITIES (more JSON members of
# DicomModalities, after thlhp), OR_DIR (its config and storage; default
# $T/orthanc, removed with $T: set it to keep the storage between runs).
orthanc_start() {
	local auth=false tls='' thlhp
	[ -z "${OR_USERS:-}" ] || auth=true
	OR_DIR=${OR_DIR:-$T/orthanc}
	mkdir -p "$OR_DIR/db"
	OR_DICOM=${OR_DICOM:-$(free_port)}
	OR_HTTP=${OR_HTTP:-$(free_port)}
	STORE_PORT=${STORE_PORT:-$(free_port)}
	thlhp="[ \"THLHP\", \"127.0.0.1\", $STORE_PORT ]"
	if [ -n "${OR_TLS_DIR:-}" ]; then
		tls="
  \"DicomTlsEnabled\": true,
  \"DicomTlsCertificate\": \"$OR_TLS_DIR/orthanc.crt\",
  \"DicomTlsPrivateKey\": \"$OR_TLS_DIR/orthanc.key\",
  \"DicomTlsTrustedCertificates\": \"$OR_TLS_DIR/ca.crt\",
  \"DicomTlsRemoteCertificateRequired\": true,"
		thlhp="{ \"AET\": \"THLHP\", \"Host\": \"127.0.0.1\", \"Port\": $STORE_PORT, \"UseDicomTls\": true }"
	fi
	cat >"$OR_DIR/config.json" <<JSON
{
  "Name": "thlhp-test",
  "StorageDirectory": "$OR_DIR/db",
  "IndexDirectory": "$OR_DIR/db",
  "HttpPort": $OR_HTTP,
  "DicomPort": $OR_DICOM,
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": $auth,
  "RegisteredUsers": { ${OR_USERS:-} },
  "DicomCheckCalledAet": true,$tls
  "DicomModalities": { "thlhp": $thlhp${OR_MODALITIES:+,
    $OR_MODALITIES} },
  "Plugins": [ ${OR_PLUGINS:-} ]${OR_EXTRA:+,
  $OR_EXTRA}
}
JSON
	TCP_NODELAY=1 Orthanc "$OR_DIR/config.json" >"$LOG/orthanc.log" 2>&1 &
	OR_PID=$!
	BGPIDS="$BGPIDS $OR_PID"
	for _ in $(seq 1 100); do
		or_curl /system >/dev/null 2>&1 && return 0
		kill -0 "$OR_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "FAIL: Orthanc did not start; its log:"
	tail -n 20 "$LOG/orthanc.log"
	exit 1
}

# or_curl PATH [CURL-ARGS]... : a request to Orthanc's REST API.
or_curl() {
	local path=$1
	shift
	if [ -n "${OR_CACERT:-}" ]; then
		curl -sf ${OR_CURL_USER:+-u "$OR_CURL_USER"} --cacert "$OR_CACERT" "$@" \
			"https://127.0.0.1:$OR_HTTP$path"
	else
		curl -sf ${OR_CURL_USER:+-u "$OR_CURL_USER"} "$@" "http://127.0.0.1:$OR_HTTP$path"
	fi
}

# orthanc_upload DIR : store every .dcm below DIR in Orthanc.
orthanc_upload() {
	local f
	while IFS= read -r f; do
		or_curl /instances -X POST --data-binary @"$f" >/dev/null ||
			{ say "FAIL: upload of $f to Orthanc"; exit 1; }
	done < <(find "$1" -name '*.dcm' -type f)
}

# orthanc_stop : stop Orthanc and wait for it.
orthanc_stop() {
	kill "$OR_PID" 2>/dev/null
	wait "$OR_PID" 2>/dev/null
}

# write_dimse_config [KEY=VALUE]... : thlhp.ini for this Orthanc, retrieving
# with $RETRIEVE (get, or move to our storage SCP on $STORE_PORT).
write_dimse_config() {
	write_config pacs.protocol=dimse pacs.path= pacs.host=127.0.0.1 "pacs.port=$OR_DICOM" \
		pacs.called_aet=ORTHANC pacs.calling_aet=THLHP "pacs.retrieve=${RETRIEVE:-get}" \
		pacs.move_destination=THLHP "pacs.store_port=$STORE_PORT" \
		pacs.timeout=10 pacs.retries=1 "$@"
}

# ---- dimseproxy: a logging, fault-injecting proxy (tests/dimseproxy.py) ----
# proxy_start NAME:LISTEN_PORT:TARGET_HOST:TARGET_PORT... : start the proxy
# with those routes and wait until it listens; sets PROXY_PID, PROXY_LOG
# ($LOG/proxy.log, one line per DIMSE command, see dimseproxy.py) and
# PROXY_CTL (its control file).  Its stderr goes to $LOG/proxy.err.
proxy_start() {
	local r args=()
	PROXY_LOG=$LOG/proxy.log PROXY_CTL=$T/proxy.ctl
	for r in "$@"; do args+=(--route "$r"); done
	rm -f "$T/proxy.ready"
	"$PY" "$TESTS/dimseproxy.py" "${args[@]}" --log "$PROXY_LOG" --control "$PROXY_CTL" \
		--ready "$T/proxy.ready" 2>>"$LOG/proxy.err" &
	PROXY_PID=$!
	BGPIDS="$BGPIDS $PROXY_PID"
	for _ in $(seq 1 100); do
		[ -s "$T/proxy.ready" ] && return 0
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	say "FAIL: dimseproxy did not start; its stderr:"
	tail -n 20 "$LOG/proxy.err"
	exit 1
}

# proxy_mode MODE [ARGS...] : pass | drop N | reset P SEED | blackhole |
# refuse | slow RATE | unname | ... (dimseproxy.py's modes).  Replaces the control file by rename, signals the proxy and returns
# once the proxy has logged that it read it (1 if it did not within 3 s).
proxy_mode() {
	local n
	n=$(grep -c ' MODE ' "$PROXY_LOG" 2>/dev/null)
	printf '%s\n' "$*" >"$PROXY_CTL.new" && mv -f "$PROXY_CTL.new" "$PROXY_CTL"
	kill -HUP "$PROXY_PID" 2>/dev/null || return 1
	for _ in $(seq 1 60); do
		[ "$(grep -c ' MODE ' "$PROXY_LOG")" -gt "$n" ] && return 0
		sleep 0.05
	done
	say "    dimseproxy did not acknowledge mode: $*"
	return 1
}

# proxy_stop : SIGTERM the proxy and wait for it.
proxy_stop() {
	kill "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	return 0
}

# proxy_count COMMAND [ROUTE [DIR]] : how many log lines have that COMMAND
# (C-STORE-RQ, CONNECT, FAULT, PARSE-ERROR, ...), on ROUTE, in DIR (c2s/s2c).
proxy_count() {
	awk -v c="$1" -v r="${2:-}" -v d="${3:-}" \
		'$4 == c && (r == "" || $2 == r) && (d == "" || $3 == d) { n++ } END { print n + 0 }' "$PROXY_LOG"
}

# log_mark : the proxy log's length now, for counting what comes after.
log_mark() { wc -l <"$PROXY_LOG"; }

# proxy_uids COMMAND [ROUTE] : the SOP instance UIDs of COMMAND's lines, sorted.
proxy_uids() {
	awk -v c="$1" -v r="${2:-}" '$4 == c && (r == "" || $2 == r) && $5 != "-" { print $5 }' "$PROXY_LOG" | sort
}

# proxy_cpu : CPU seconds (user + system) the proxy has used so far.
proxy_cpu() {
	local tck
	tck=$(getconf CLK_TCK)
	sed 's/.*) //' "/proc/$PROXY_PID/stat" | awk -v t="$tck" '{ printf "%.2f\n", ($12 + $13) / t }'
}

# proxy_wait COMMAND N [ROUTE [DIR]] : wait (up to 5 s) until proxy_count
# COMMAND ROUTE DIR reaches N; 1 if it does not.
proxy_wait() {
	for _ in $(seq 1 100); do
		[ "$(proxy_count "$1" "${3:-}" "${4:-}")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
