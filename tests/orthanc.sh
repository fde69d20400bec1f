# tests/orthanc.sh - a throwaway Orthanc on 127.0.0.1 for one scenario,
# sourced after lib.sh: orthanc_start, orthanc_upload, orthanc_stop.
# Its storage lives in $T and it is stopped by PID when the scenario ends.
# shellcheck shell=bash

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# orthanc_start : start Orthanc (DICOM AE ORTHANC on $OR_DICOM, HTTP on
# $OR_HTTP) that knows thlhp-make as AE THLHP at 127.0.0.1:$STORE_PORT.
orthanc_start() {
	OR_DIR=$T/orthanc
	mkdir -p "$OR_DIR/db"
	OR_DICOM=${OR_DICOM:-$(free_port)}
	OR_HTTP=${OR_HTTP:-$(free_port)}
	STORE_PORT=${STORE_PORT:-$(free_port)}
	cat >"$OR_DIR/config.json" <<JSON
{
  "Name": "thlhp-test",
  "StorageDirectory": "$OR_DIR/db",
  "IndexDirectory": "$OR_DIR/db",
  "HttpPort": $OR_HTTP,
  "DicomPort": $OR_DICOM,
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomCheckCalledAet": true,
  "DicomModalities": { "thlhp": [ "THLHP", "127.0.0.1", $STORE_PORT ] },
  "Plugins": []
}
JSON
	TCP_NODELAY=1 Orthanc "$OR_DIR/config.json" >"$LOG/orthanc.log" 2>&1 &
	OR_PID=$!
	BGPIDS="$BGPIDS $OR_PID"
	for _ in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$OR_HTTP/system" >/dev/null 2>&1 && return 0
		kill -0 "$OR_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "FAIL: Orthanc did not start; its log:"
	tail -n 20 "$LOG/orthanc.log"
	exit 1
}

# orthanc_upload DIR : store every .dcm below DIR in Orthanc.
orthanc_upload() {
	local f
	while IFS= read -r f; do
		curl -sf -X POST "http://127.0.0.1:$OR_HTTP/instances" --data-binary @"$f" >/dev/null ||
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
