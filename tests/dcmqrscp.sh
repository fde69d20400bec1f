# tests/dcmqrscp.sh - a throwaway DCMTK dcmqrscp on loopback for one
# scenario, sourced after lib.sh (and after netns.sh: dcmqrscp listens on
# every interface): qr_start, qr_upload, qr_stop, write_qr_config.
# A second real PACS next to Orthanc, and a stricter one: with -XF it
# rejects a C-FIND identifier that breaks the hierarchical key rules
# (0xA900), it never returns NumberOf*Related* counts, and past
# MaxAssociations it refuses an association instead of queueing it.
# Its storage lives in $T and it is stopped by PID when the scenario ends.
# shellcheck shell=bash

declare -F free_port >/dev/null || free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# qr_start [DCMQRSCP-ARGS]... : start dcmqrscp as AE DCMQR on $QR_PORT, its
# storage area $QR_DIR/DCMQR, knowing thlhp-make as AE THLHP at
# 127.0.0.1:$STORE_PORT (the C-MOVE destination).  THLHP may query and
# retrieve, LOADER (qr_upload's storescu) may store.  QR_MAXASSOC
# (default 16) is its MaxAssociations: associations at once, one child
# process each; one more is rejected.  Its log: $LOG/dcmqrscp.log.
qr_start() {
	QR_DIR=${QR_DIR:-$T/dcmqrscp}
	mkdir -p "$QR_DIR/DCMQR"
	QR_PORT=${QR_PORT:-$(free_port)}
	STORE_PORT=${STORE_PORT:-$(free_port)}
	cat >"$QR_DIR/dcmqrscp.cfg" <<CFG
# written by tests/dcmqrscp.sh
NetworkTCPPort  = $QR_PORT
MaxPDUSize      = 16384
MaxAssociations = ${QR_MAXASSOC:-16}

HostTable BEGIN
thlhp  = (THLHP, 127.0.0.1, $STORE_PORT)
loader = (LOADER, 127.0.0.1, 0)
peers  = thlhp, loader
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DCMQR  $QR_DIR/DCMQR  RW  (100, 1024mb)  peers
AETable END
CFG
	# -dhl: peers are named by address (its reverse lookup would say "localhost").
	TCP_NODELAY=1 dcmqrscp -dhl -c "$QR_DIR/dcmqrscp.cfg" "$@" "$QR_PORT" >>"$LOG/dcmqrscp.log" 2>&1 &
	QR_PID=$!
	BGPIDS="$BGPIDS $QR_PID"
	for _ in $(seq 1 100); do
		echoscu -to 2 -aet THLHP -aec DCMQR 127.0.0.1 "$QR_PORT" >/dev/null 2>&1 && return 0
		kill -0 "$QR_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "FAIL: dcmqrscp did not start; its log:"
	tail -n 20 "$LOG/dcmqrscp.log"
	exit 1
}

# qr_upload FILE-OR-DIR... : store the files (every file below a DIR) in
# dcmqrscp, as AE LOADER.  dcmqrscp reaps the process of a finished
# association only about once a second and counts it until then, so with
# QR_MAXASSOC=1 an association right after another may be refused: retry.
qr_upload() {
	local i
	for i in 1 2 3 4 5; do
		TCP_NODELAY=1 storescu -aet LOADER -aec DCMQR +sd +r -to 10 \
			127.0.0.1 "$QR_PORT" "$@" >>"$LOG/storescu.log" 2>&1 && return 0
		sleep "$i"
	done
	say "FAIL: storescu $* to dcmqrscp; its log:"
	tail -n 20 "$LOG/storescu.log"
	exit 1
}

# qr_stop : stop dcmqrscp and wait for it.
qr_stop() {
	kill "$QR_PID" 2>/dev/null
	wait "$QR_PID" 2>/dev/null
	return 0
}

# write_qr_config [KEY=VALUE]... : thlhp.ini for this dcmqrscp, retrieving
# with $RETRIEVE (get, or move to our storage SCP on $STORE_PORT).
write_qr_config() {
	write_config pacs.protocol=dimse pacs.path= pacs.host=127.0.0.1 "pacs.port=$QR_PORT" \
		pacs.called_aet=DCMQR pacs.calling_aet=THLHP "pacs.retrieve=${RETRIEVE:-get}" \
		pacs.move_destination=THLHP "pacs.store_port=$STORE_PORT" \
		pacs.timeout=10 pacs.retries=1 "$@"
}
