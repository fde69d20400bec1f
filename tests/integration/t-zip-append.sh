#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-zip-append: a new series for a patient makes the new archive by copying
# the entries it already had from the archive it replaces, still compressed,
# and compressing only the new ones; the result is byte for byte the archive
# a forced full rebuild makes, for every compression and for AES-256
# (stored and encrypted entries are the exception: made afresh each time).
# A series deselected: the rest is copied.  An older archive that is not what was written (a byte changed, its mtime
# and size kept), or whose entries were never recorded, is not copied from:
# every entry is compressed again and the job's line says why.  -j2 on one
# archive gives the same bytes as -j1.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

command -v 7zz >/dev/null || { say "FAIL: 7zz not found (apt-get install 7zip)"; exit 1; }
export THLHP_ZIP_PASSWORD='append, not again'

# new_series PID SEED N : one more series of 3 instances in PID's first study.
new_series() {
	gen --patient "$1" --study-uid "$(study_of "$1")" --series 1 --instances 3 --seed "$2" \
		--series-number-base "$3"
}
# Its job line: "zip  data/zip/...  N instances, S; K copied from OLD".
zip_line() { grep -E '^\[[0-9]+/[0-9]+\] zip ' "$OUT"; }

for setting in deflate:1 deflate:6 bzip2:9 store: deflate:1:aes256 bzip2:9:aes256 store::aes256; do
	IFS=: read -r comp level crypt <<<"$setting"
	section "compression = $comp${level:+, level $level}${crypt:+, encrypt = $crypt}"
	rm -rf data .thlhp "$SRC" && mkdir -p "$SRC" && : >"$MANIFEST"
	gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed "a$level$comp"
	gen --patient TH-02-BB --studies 1 --series 1 --instances 2 --seed "b$level$comp"
	args=(output.compression="$comp" output.level="$level")
	[ -z "$crypt" ] || args+=(output.encrypt="$crypt" 'output.password=${THLHP_ZIP_PASSWORD}')
	write_config "${args[@]}"
	run -j2 all
	exit_is "the first build" 0
	new_series TH-01-AA "n$level$comp" 3
	A=$(archive_of TH-01-AA)
	run all
	exit_is "all after a new series for TH-01-AA" 0
	if [ "$comp:$crypt" = store:aes256 ]; then
		has_line "... stored and encrypted: every entry made again, and the line says why" "$OUT" \
			"^\\[[0-9]+/[0-9]+\\] zip +$A +9 instances, .*; all compressed: stored entries are encrypted afresh"
	else
		has_line "... the line says the 6 entries of the older archive were copied" "$OUT" \
			"^\\[[0-9]+/[0-9]+\\] zip +$A +9 instances, .*; 6 copied from TH-01-AA__seriesCount2\\.zip\$"
	fi
	check "... and only the new archive is left of TH-01-AA's" "$(zip_names)" \
		"$(printf '%s\n' TH-01-AA__seriesCount3.zip TH-02-BB__seriesCount1.zip)"
	if [ -z "$crypt" ]; then
		ok "... the archive passes unzip -t" zip_ok "$A"
		ok "... and holds the source's bytes" zip_matches_source "$A" TH-01-AA
	else
		ok "... 7-Zip reads it with the password (CRCs and HMACs)" \
			7zz t -p"$THLHP_ZIP_PASSWORD" "$A"
	fi
	cp "$A" "$LOG/appended.zip"
	run -B zip:TH-01-AA
	exit_is "-B zip:TH-01-AA: a full rebuild" 0
	no_line "... copies nothing" "$OUT" 'copied from'
	if [ "$comp:$crypt" = store:aes256 ]; then
		fails "... not the same bytes (libzip draws a random salt for stored, encrypted entries)" \
			cmp -s "$A" "$LOG/appended.zip"
	else
		ok "... byte-identical to the appended archive" cmp "$A" "$LOG/appended.zip"
	fi
done

section "a series deselected: the rest is copied"
rm -rf data .thlhp "$SRC" && mkdir -p "$SRC" && : >"$MANIFEST"
gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed r
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 2 --seed r2 \
	--series-number-base 3 --modality MR
write_config
run -j2 all
exit_is "two CT series and an MR series built" 0
write_config select.modality=CT
run all
exit_is "all with modality = CT" 0
has_line "the two-series archive copies its 6 entries from the three-series one" "$OUT" \
	'zip +data/zip/TH-01-AA__seriesCount2\.zip +6 instances, .*; 6 copied from TH-01-AA__seriesCount3\.zip$'
cp data/zip/TH-01-AA__seriesCount2.zip "$LOG/appended.zip"
run -B zip
ok "... byte-identical to a full rebuild" cmp data/zip/TH-01-AA__seriesCount2.zip "$LOG/appended.zip"

section "the older archive changed on disk, its size and mtime kept"
rm -rf data .thlhp "$SRC" && mkdir -p "$SRC" && : >"$MANIFEST"
gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed t
write_config
run -j2 all
exit_is "two series built" 0
old=$(archive_of TH-01-AA)
cp -p "$old" "$LOG/orig.zip"
# A byte inside the first entry's compressed data (after its 30-byte local
# header and name): zip's own directory still says all is well.
printf '\xa5' | dd of="$old" bs=1 seek=200 conv=notrunc 2>/dev/null
touch -r "$LOG/orig.zip" "$old"
check "... same size and mtime as written" "$(stat -c '%s %Y' "$old")" "$(stat -c '%s %Y' "$LOG/orig.zip")"
new_series TH-01-AA t2 3
run all
exit_is "all after a new series" 0
has_line "the line says every entry was compressed again, and why" "$OUT" \
	"zip +$(archive_of TH-01-AA) +9 instances, .*; all compressed: TH-01-AA__seriesCount2\\.zip: entry .*\\.dcm is not what was written$"
ok "... the new archive passes unzip -t" zip_ok "$(archive_of TH-01-AA)"
ok "... and holds the source's bytes" zip_matches_source "$(archive_of TH-01-AA)" TH-01-AA
check "... no temp file is left" "$(temp_files data)" ""

section "entries never recorded (an archive made before the records)"
sqlite3 .thlhp/state.db 'DELETE FROM archive_entry'
new_series TH-01-AA t3 4
run all
exit_is "all after a new series" 0
has_line "the line says nothing of the older archive is recorded" "$OUT" \
	"zip +$(archive_of TH-01-AA) +12 instances, .*; all compressed: no entry of TH-01-AA__seriesCount3\\.zip recorded as written$"
check "... and records the entries of the new one" \
	"$(sqlite3 .thlhp/state.db "SELECT count(*) FROM archive_entry WHERE patient_id = 'TH-01-AA'")" 12
new_series TH-01-AA t4 5
run all
has_line "... so the next new series copies them" "$OUT" \
	"zip +$(archive_of TH-01-AA) +15 instances, .*; 12 copied from TH-01-AA__seriesCount4\\.zip$"

section "one archive on two threads"
rm -rf data .thlhp "$SRC" && mkdir -p "$SRC" && : >"$MANIFEST"
gen --patient TH-01-AA --studies 1 --series 4 --instances 8 --seed j
write_config
run -j1 all
exit_is "-j1 all" 0
cp "$(archive_of TH-01-AA)" "$LOG/j1.zip"
run -j2 -B zip
exit_is "-j2 -B zip" 0
ok "... byte-identical to -j1's" cmp "$(archive_of TH-01-AA)" "$LOG/j1.zip"

finish
