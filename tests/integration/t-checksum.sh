#!/usr/bin/env bash
# shellcheck disable=SC2119  # write_config takes optional args
# t-checksum: the checksum stage, added as one file under rules/ and one
# line of the rule table ([output] checksums = yes): each archive gets a
# <id>__seriesCount<N>.sha256 manifest that `sha256sum -c` checks in the
# unpacked archive.  -n gives its reasons, -B checksum:P and checksum:P
# work, -t status, -t dag and -t targets know it, a new series replaces
# the manifest with the archive, it is off unless asked for, and with the
# state in PostgreSQL two workers make each manifest once; killed (-9) at
# any moment a manifest is whole or absent.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

gen --patient TH-01-CK --studies 1 --series 2 --instances 3 --seed k1
gen --patient TH-02-CK --studies 1 --series 1 --instances 2 --seed k2

# sums_ok ZIP : the manifest next to ZIP checks every entry of it, unpacked.
sums_ok() {
	local dir=$LOG/unpacked.$$ m=${1%.zip}.sha256 rc
	rm -rf "$dir" && mkdir -p "$dir" && (cd "$dir" && unzip -q "$PROJ/$1") || return 1
	[ "$(grep -vc '^#' "$m")" -eq "$(zip_list "$1" | wc -l)" ] || return 1
	(cd "$dir" && sha256sum -c --quiet "$PROJ/$m")
	rc=$?
	rm -rf "$dir"
	return $rc
}

section "off unless asked for"
write_config
run all
exit_is "all without checksums" 0
check "no manifest is made" "$(find data/zip -name '*.sha256' | wc -l)" 0
run -n checksum:TH-01-CK
exit_is "checksum:P while the stage is off" 2
has_line "... says the stage is off" "$ERR" 'checksum.* off'

section "[output] checksums = yes"
write_config output.checksums=yes
run -n
exit_is "-n" 0
has_line "-n: a manifest missing for TH-01-CK" "$OUT" \
	'^checksum +data/zip/TH-01-CK__seriesCount2\.sha256 +manifest missing$'
has_line "-n ends with the count of stale targets by stage" "$OUT" '^2 targets stale: 2 checksum$'
run -t status
has_line "-t status names the stage as stale" "$OUT" 'TH-01-CK .*stale \(checksum\): manifest missing'
run -t dag
has_line "-t dag draws the checksum targets" "$OUT" 'checksum\\n'
run -t targets
has_line "-t targets lists the stage" "$OUT" '^checksum$'
has_line "... and checksum:P" "$OUT" '^checksum:TH-02-CK$'
run all
exit_is "all makes the manifests" 0
for p in TH-01-CK TH-02-CK; do
	a=$(archive_of "$p")
	ok "${a%.zip}.sha256 checks every entry of $a (sha256sum -c)" sums_ok "$a"
done
check "no temp file left" "$(temp_files data)" ""
run -q
exit_is "-q afterwards: up to date" 0
check "each manifest has its target record (no migration, no catalog column)" \
	"$(sqlite3 .thlhp/state.db "SELECT key || ' ' || out_path FROM target WHERE stage = 'checksum' ORDER BY key")" \
	"$(printf 'TH-01-CK %s\nTH-02-CK %s' "$(ls data/zip/TH-01-CK*.sha256)" "$(ls data/zip/TH-02-CK*.sha256)")"
m=$(ls data/zip/TH-01-CK*.sha256)
sed -i '1s/(xxh3 ./(xxh3 z/' "$m"
run -n
has_line "a manifest edited (its stat no longer the recorded one): read again, stale" "$OUT" \
	'^checksum +data/zip/TH-01-CK__seriesCount2\.sha256 +archive changed$'
run all
exit_is "all makes it again" 0
ok "... right" sums_ok "$(archive_of TH-01-CK)"

section "-B checksum:P and checksum:P"
m=data/zip/TH-02-CK__seriesCount1.sha256
before=$(ident "$m")
run checksum:TH-02-CK
exit_is "checksum:TH-02-CK when up to date" 0
check "... rewrites nothing" "$(ident "$m")" "$before"
run -n -B checksum:TH-02-CK
has_line "-n -B checksum:TH-02-CK: forced" "$OUT" "^checksum +$m +forced$"
no_line "... and nothing else" "$OUT" '^(download|validate|zip) '
run -B checksum:TH-02-CK
exit_is "-B checksum:TH-02-CK" 0
ok "... rewrote the manifest" test "$(ident "$m")" != "$before"
ok "... which still checks" sums_ok data/zip/TH-02-CK__seriesCount1.zip

section "a new series: the manifest follows the archive"
gen --patient TH-01-CK --study-uid "$(study_of TH-01-CK)" --series 1 --instances 2 --seed k1new
run -n
has_line "-n: the manifest after its archive" "$OUT" \
	'^checksum +data/zip/TH-01-CK__seriesCount3\.sha256 +after zip \('
run all
exit_is "all" 0
ok "TH-01-CK__seriesCount3.sha256 checks the new archive" sums_ok data/zip/TH-01-CK__seriesCount3.zip
check "the older manifest went with the older archive" \
	"$(find data/zip -name 'TH-01-CK__seriesCount2*' | wc -l)" 0
printf '# sha256 of the entries of someone else\n' >"$LOG/bad" &&
	tail -n +2 data/zip/TH-01-CK__seriesCount3.sha256 >>"$LOG/bad" &&
	replace_file "$LOG/bad" data/zip/TH-01-CK__seriesCount3.sha256
run -n
has_line "a manifest that is not this archive's is stale" "$OUT" \
	'^checksum +data/zip/TH-01-CK__seriesCount3\.sha256 +archive changed$'

section "killed (-9) at any moment: a manifest is whole or absent, the next run makes it"
gen --patient TH-03-CK --studies 2 --series 4 --instances 6 --seed k3
run all
exit_is "all with a third patient" 0
whole=0
for delay in 0.02 0.05 0.08 0.12 0.16 0.2 0.3 0.4; do
	run_bg -B checksum
	sleep "$delay"
	kill_bg || true
	for m in data/zip/*.sha256; do
		[ -e "$m" ] || continue
		sums_ok "${m%.sha256}.zip" && whole=$((whole + 1)) || fail "after kill -9 at ${delay}s: $m does not check its archive"
	done
done
pass "after 8 kills at 0.02-0.4 s, each of the $whole manifests present checked its archive"
run all
exit_is "the run after the kills" 0
for p in TH-01-CK TH-02-CK TH-03-CK; do
	a=$(archive_of "$p")
	ok "${a%.zip}.sha256 is there and checks its archive" sums_ok "$a"
done
check "no temp file left" "$(temp_files data)" ""

section "two workers on a PostgreSQL state: each manifest made once"
pg_start
for w in 1 2; do
	mkdir -p "$T/w$w"
done
cd "$T/w1" && write_config "state.url=$PG_URL" output.checksums=yes output.dicom_dir=../shared/dicom \
	output.zip_dir=../shared/zip
cp thlhp.ini "$T/w2/"
mkdir -p "$T/shared"
(cd "$T/w1" && "$THLHP" -j2 all >"$LOG/w1.out" 2>"$LOG/w1.err"; echo $? >"$LOG/w1.rc") &
(cd "$T/w2" && "$THLHP" -j2 all >"$LOG/w2.out" 2>"$LOG/w2.err"; echo $? >"$LOG/w2.rc") &
wait
check "both workers exit 0" "$(cat "$LOG/w1.rc") $(cat "$LOG/w2.rc")" "0 0"
check "each manifest was made by one worker, once" \
	"$(cat "$LOG/w1.out" "$LOG/w2.out" | grep -c '] checksum ')" 3
cd "$T/shared/.." || exit 1
for z in shared/zip/*.zip; do
	PROJ=$T ok "$(basename "${z%.zip}").sha256 checks its archive" sums_ok "$z"
done
finish
