#!/usr/bin/env bash
# examples/quickstart.sh - on a fresh Debian machine: install what is needed,
# build thlhp-make, make a demo "PACS" (a folder of real DICOM series made
# from pydicom's test files), and run `thlhp-make all` on it.
# Everything it writes stays under examples/demo/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

pkgs="autoconf automake libtool pkg-config make gcc g++ libdcmtk-dev dcmtk
      libsndfile1-dev libzip-dev libinih-dev libxxhash-dev libsqlite3-dev
      libcurl4-openssl-dev libpq-dev python3-pydicom unzip"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "quickstart: installing:$missing"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ ! -x build/thlhp-make ]; then
	echo "quickstart: building into build/"
	autoreconf -fi >/dev/null
	mkdir -p build
	(cd build && ../configure -q && make -s -j"$(nproc)")
fi
thlhp=$top/build/thlhp-make

demo=$top/examples/demo
rm -rf "$demo"
mkdir -p "$demo/incoming"
gen=$top/tests/gen_series.py
/usr/bin/python3 "$gen" "$demo/incoming/a" --patient TH-01-AA --studies 1 --series 3 --instances 5 --seed 1 >/dev/null
/usr/bin/python3 "$gen" "$demo/incoming/b" --patient TH-02-BB --studies 2 --series 2 --instances 4 --seed 2 --modality MR >/dev/null
/usr/bin/python3 "$gen" "$demo/incoming/c" --patient TH-03-CC --studies 1 --series 1 --instances 8 --seed 3 >/dev/null
cat > "$demo/thlhp.ini" <<'INI'
; The demo's "PACS" is a folder; examples/demo/incoming holds real DICOM series.
[pacs]
protocol = folder
path = incoming

[select]
patient_id = TH-*

[output]
dicom_dir = data/dicom
zip_dir = data/zip
compression = deflate
level = 1
INI

cd "$demo"
echo "quickstart: what is stale (thlhp-make -n):"
"$thlhp" -n
echo "quickstart: building (thlhp-make all):"
"$thlhp" all
echo "quickstart: a second run has nothing to do:"
"$thlhp" all
echo "quickstart: archives in examples/demo/data/zip:"
ls -l data/zip
for z in data/zip/*.zip; do unzip -tq "$z"; done
