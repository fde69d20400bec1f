#!/usr/bin/env bash
# t-quickstart: what the README promises a newcomer, run as a newcomer
# would: examples/quickstart.sh on a copy of the source tree (no build in
# it) builds thlhp-make into build/, pulls the demo PACS's three patients,
# adds a series and shows __seriesCount3 replaced by __seriesCount4, ends
# up to date, stops its Orthanc, and writes nothing but build/ and
# examples/demo/.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

TOP=$(cd "$TESTS/.." && pwd)
SRC=$T/src
mkdir -p "$SRC"
# The tree as a clone has it: tracked files, and new ones not ignored.
if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$TOP" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 cp --parents -t "$SRC" 2>/dev/null)
else
	tar -C "$TOP" --exclude=./_build --exclude=./_build-valgrind --exclude=./build \
		--exclude=./examples/demo -cf - . | tar -C "$SRC" -xf -
fi
[ -x "$SRC/examples/quickstart.sh" ] || { say "FAIL: could not copy the tree to $SRC"; exit 1; }
(cd "$SRC" && find . -type f | sort) >"$LOG/before"

section "examples/quickstart.sh on a fresh tree"
bash "$SRC/examples/quickstart.sh" >"$LOG/quickstart.out" 2>&1
rc=$?
check "quickstart.sh exits 0" "$rc" 0
[ "$rc" = 0 ] || tail -n 30 "$LOG/quickstart.out"
has_line "it builds into build/" "$LOG/quickstart.out" '^quickstart: building into build/'
ok "build/thlhp-make is built" test -x "$SRC/build/thlhp-make"
has_line "the first run builds the three archives" "$LOG/quickstart.out" \
	'thlhp-make: .* 3 archives built'
has_line "the new series is stale, and why" "$LOG/quickstart.out" \
	'^zip +data/zip/TH-01-AA__seriesCount4\.zip  series added .*; replaces TH-01-AA__seriesCount3\.zip$'
ZIPS=$SRC/examples/demo/data/zip
ok "TH-01-AA__seriesCount4.zip is there" test -f "$ZIPS/TH-01-AA__seriesCount4.zip"
ok "and __seriesCount3.zip is gone" test ! -e "$ZIPS/TH-01-AA__seriesCount3.zip"
check "three archives in all" "$(find "$ZIPS" -name '*.zip' | wc -l)" 3
for z in "$ZIPS"/*.zip; do
	ok "$(basename "$z") passes unzip -t" unzip -tq "$z"
done
has_line "it ends up to date" "$LOG/quickstart.out" '^quickstart: thlhp-make -q: exit 0, everything is up to date$'
# Its Orthanc ran in examples/demo/ (other tests' Orthancs run elsewhere).
check "its Orthanc is stopped" "$(for p in $(pgrep -x Orthanc); do readlink "/proc/$p/cwd"; done |
	grep -c "^$SRC/examples/demo")" 0
# Besides those two, only what autoreconf makes at the top (all ignored by git).
(cd "$SRC" && find . -type f ! -path './build/*' ! -path './examples/demo/*' | sort) >"$LOG/after"
comm -13 "$LOG/before" "$LOG/after" | grep -Ev '^\./(configure|Makefile\.in|aclocal\.m4|config\.h\.in|(autom4te\.cache|build-aux|m4)/.*)$' >"$LOG/added"
is_empty "nothing else written outside build/ and examples/demo/" "$LOG/added"
check "no file of the tree removed" "$(comm -23 "$LOG/before" "$LOG/after")" ""

finish
