#!/usr/bin/env bash
# examples/quickstart.sh - on a fresh Debian 12 machine (root or sudo):
# install what is needed, build thlhp-make into build/, start a demo PACS
# (Orthanc on 127.0.0.1) holding generated DICOM series, and let thlhp-make
# pull them over DIMSE (C-FIND, C-MOVE) and zip them per patient; then add a
# series in the PACS and watch __seriesCount3 become __seriesCount4.
# Everything it writes stays under examples/demo/ (removed at the start),
# which is left for you to look at; Orthanc is stopped when the script ends.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

# 1. Packages and build (before any network namespace: apt-get needs the net).
# What builds it (build-deps.txt, shared with tests/run.sh), then what the
# demo runs.
pkgs="$(sed 's/#.*//' build-deps.txt)
      dcmtk python3-pydicom unzip orthanc curl iproute2 util-linux"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "quickstart: installing:$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
	# The package may start a system-wide Orthanc; the demo runs its own.
	case "$missing" in *orthanc*) $SUDO service orthanc stop >/dev/null 2>&1 || true ;; esac
fi
echo "quickstart: building into build/ (log: build/build.log)"
mkdir -p build
# make alone when build/ is configured: it rebuilds what changed since.
if ! { { [ -x configure ] || autoreconf -fi; } &&
       (cd build && { [ -f Makefile ] || ../configure; } && make -j"$(nproc)"); } >build/build.log 2>&1; then
	tail -n 30 build/build.log; echo "quickstart: build failed"; exit 1
fi
thlhp=$top/build/thlhp-make

# 2. A private network namespace: Orthanc 1.10 binds its DICOM port on every
# interface, so as root the rest of the script runs where only loopback exists.
if [ "$(id -u)" = 0 ] && [ -z "${QUICKSTART_NETNS:-}" ]; then
	echo "quickstart: re-running in a private network namespace (unshare --net, only lo):"
	echo "quickstart:   Orthanc 1.10 binds its DICOM port on every interface; here nothing outside can reach it"
	exec unshare --net env QUICKSTART_NETNS=1 bash -c 'ip link set lo up && exec bash "$@"' \
		bash "$top/examples/quickstart.sh" "$@"
fi
[ -n "${QUICKSTART_NETNS:-}" ] ||
	echo "quickstart: not root: Orthanc's DICOM port is reachable from other hosts while the demo runs"

demo=$top/examples/demo
echo "quickstart: starting clean in $demo"
rm -rf "$demo"
mkdir -p "$demo/orthanc/db" "$demo/source"
cd "$demo"

or_pid=
stop_orthanc() {
	if [ -n "$or_pid" ]; then kill "$or_pid" 2>/dev/null || true; wait "$or_pid" 2>/dev/null || true; fi
	or_pid=
}
trap 'stop_orthanc' EXIT
trap 'exit 130' INT TERM

# Three distinct free ports (held open together, then released).
read -r or_dicom or_http store_port < <(/usr/bin/python3 -c '
import socket; ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
echo "quickstart: starting Orthanc (DICOM 127.0.0.1:$or_dicom AE ORTHANC, HTTP 127.0.0.1:$or_http)"
cat >orthanc/config.json <<JSON
{
  "Name": "thlhp-quickstart",
  "StorageDirectory": "$demo/orthanc/db",
  "IndexDirectory": "$demo/orthanc/db",
  "HttpPort": $or_http,
  "DicomPort": $or_dicom,
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomCheckCalledAet": true,
  "DicomModalities": { "thlhp": [ "THLHP", "127.0.0.1", $store_port ] },
  "Plugins": []
}
JSON
TCP_NODELAY=1 Orthanc orthanc/config.json >orthanc/orthanc.log 2>&1 &
or_pid=$!
orthanc=http://127.0.0.1:$or_http
for _ in $(seq 1 100); do
	curl -sf "$orthanc/system" >/dev/null 2>&1 && break
	kill -0 "$or_pid" 2>/dev/null || break
	sleep 0.1
done
curl -sf "$orthanc/system" >/dev/null || { tail -n 20 orthanc/orthanc.log; echo "quickstart: Orthanc did not start"; exit 1; }

# 3. Sample data, stored in the PACS over its REST API.
gen() { /usr/bin/python3 "$top/tests/gen_series.py" "$@" >>source/manifest.tsv; }
upload() {
	find "$1" -name '*.dcm' -type f | sort | while IFS= read -r f; do
		curl -sf -X POST "$orthanc/instances" --data-binary @"$f" >/dev/null ||
			{ echo "quickstart: upload of $f failed"; exit 1; }
	done
}
echo "quickstart: generating DICOM series (tests/gen_series.py) and storing them in Orthanc"
gen source/first --patient TH-01-AA --studies 1 --series 3 --instances 4 --seed qs1
gen source/first --patient TH-02-BB --studies 2 --series 2 --instances 3 --seed qs2 --modality MR
gen source/first --patient TH-03-CC --studies 1 --series 1 --instances 6 --seed qs3
gen source/first --patient OTHER-1 --studies 1 --series 1 --instances 2 --seed qso
upload source/first
curl -sf "$orthanc/statistics" | tr -d '\n ' | sed 's/^/quickstart: Orthanc now holds: /; s/$/\n/'

# 4. thlhp-make against it.
cat >thlhp.ini <<INI
; The demo PACS: Orthanc on 127.0.0.1, asked over DICOM (C-FIND), sending
; each series with C-MOVE to thlhp-make's own storage SCP on store_port.
[pacs]
protocol = dimse
host = 127.0.0.1
port = $or_dicom
called_aet = ORTHANC
calling_aet = THLHP
retrieve = move
move_destination = THLHP
store_port = $store_port
timeout = 10
retries = 2

[select]
patient_id = TH-*            ; OTHER-1 is in the PACS but not in the project

[output]
dicom_dir = data/dicom
zip_dir = data/zip
; [state] is left out: the default is sqlite:.thlhp/state.db
INI
echo "quickstart: what is stale, and why (thlhp-make -n):"
"$thlhp" -n
echo "quickstart: building (thlhp-make -j4 all):"
"$thlhp" -j4 all
echo "quickstart: archives in examples/demo/data/zip, each checked with unzip -tq:"
ls -l data/zip
for z in data/zip/*.zip; do unzip -tq "$z"; done

echo "quickstart: a new series for TH-01-AA arrives in the PACS (same study)"
study=$(awk -F'\t' '$1 == "series" && $2 == "TH-01-AA" { print $3; exit }' source/manifest.tsv)
gen source/new --patient TH-01-AA --series 1 --instances 4 --seed qs1new --study-uid "$study" --series-number-base 4
upload source/new
echo "quickstart: what is stale now (thlhp-make -n):"
"$thlhp" -n
echo "quickstart: building (thlhp-make all):"
"$thlhp" all
echo "quickstart: the new archive replaced the old one:"
ls -l data/zip
for z in data/zip/TH-01-AA__*.zip; do unzip -tq "$z"; done
rc=0; "$thlhp" -q || rc=$?
if [ "$rc" = 0 ]; then
	echo "quickstart: thlhp-make -q: exit 0, everything is up to date"
else
	echo "quickstart: thlhp-make -q: exit $rc, expected 0 (up to date)"; exit 1
fi

stop_orthanc
echo "quickstart: done; Orthanc is stopped. Look at:"
echo "quickstart:   examples/demo/thlhp.ini        the config (in there: ../../build/thlhp-make --offline -n)"
echo "quickstart:   examples/demo/data/zip/        one archive per patient"
echo "quickstart:   examples/demo/data/dicom/      the series as downloaded"
echo "quickstart:   examples/demo/.thlhp/state.db  catalog and signatures (SQLite)"
echo "quickstart:   examples/demo/source/          the generated DICOM; orthanc/ its config, log and storage"
