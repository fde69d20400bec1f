#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-encrypt: [output] encrypt = aes256 with the password from the
# environment: archives are WinZip AES-256, read back by another tool (7-Zip)
# with the password and refused without it; the entries are the source's
# bytes; turning encryption on or off rebuilds the archives; a missing
# password is a config error that names the key.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

command -v 7zz >/dev/null || { say "FAIL: 7zz not found (apt-get install 7zip)"; exit 1; }
standard_source
export THLHP_ZIP_PASSWORD='correct horse, battery staple'

# sz_ok ZIP [PASSWORD] : 7-Zip tests every entry (CRC after decryption).
sz_ok() { 7zz t -p"${2-$THLHP_ZIP_PASSWORD}" "$1" >"$LOG/7z.out" 2>&1; }
# sz_matches_source ZIP PID : extracted with 7-Zip, every entry is the source file.
sz_matches_source() {
	local d=$LOG/x.$$ st se sop src bad=0
	rm -rf "$d" && mkdir -p "$d"
	7zz x -p"$THLHP_ZIP_PASSWORD" -o"$d" "$1" >"$LOG/7z.out" 2>&1 || { say "    7zz x failed"; return 1; }
	[ "$(cd "$d" && find . -type f | sed 's|^\./||' | sort)" = "$(entries_of "$2")" ] ||
		{ say "    entries differ"; bad=1; }
	while IFS=$'\t' read -r st se sop src; do
		cmp -s "$src" "$d/$st/$se/$sop.dcm" || { say "    $st/$se/$sop.dcm differs"; bad=1; }
	done < <(instances_of "$2")
	return $bad
}

section "encrypt = aes256, password from \${THLHP_ZIP_PASSWORD}"
write_config output.encrypt=aes256 'output.password=${THLHP_ZIP_PASSWORD}'
chmod 644 thlhp.ini
run -j2 all
exit_is "thlhp-make -j2 all with encrypt = aes256" 0
no_line "no warning about a password in a readable file (it comes from the environment)" "$ERR" 'readable by others'
A=$(archive_of TH-01-AA)
check "one archive per selected patient" "$(zip_names)" \
	"$(printf '%s\n' TH-01-AA__seriesCount2.zip TH-02-BB__seriesCount3.zip TH-03-CC__seriesCount2.zip)"
ok "7-Zip reads $A back with the password: every entry's CRC holds" sz_ok "$A"
has_line "7-Zip says the entries are AES-256" <(7zz l -slt -p"$THLHP_ZIP_PASSWORD" "$A") '^Method = .*AES-256'
for p in TH-01-AA TH-02-BB TH-03-CC; do
	ok "$p: extracted with 7-Zip, the entries are the source's bytes" sz_matches_source "$(archive_of "$p")" "$p"
done
fails "without the password 7-Zip cannot read $A" sz_ok "$A" ""
fails "... nor with a wrong one" sz_ok "$A" "wrong"
no_line "the password is in no archive's clear text" <(cat data/zip/*.zip | strings) "correct horse"
run -q
exit_is "-q: up to date" 0

section "turning encryption off and on rebuilds"
write_config
run all
exit_is "all with encrypt dropped" 0
ok "$A is a plain zip again: unzip -t passes" zip_ok "$A"
ok "... and holds the source's bytes" zip_matches_source "$A" TH-01-AA
write_config output.encrypt=aes256 'output.password=${THLHP_ZIP_PASSWORD}'
run -n
has_line "-n with encrypt back on: every archive stale, 'settings changed'" "$OUT" \
	"^zip +data/zip/TH-01-AA__seriesCount2.zip +settings changed"
run all
exit_is "all with encrypt back on" 0
ok "$A is encrypted again" sz_ok "$A"
fails "... which unzip -t cannot read without the password" zip_ok "$A"

section "bad encryption settings"
write_config output.encrypt=aes256
run -n
exit_is "encrypt = aes256 without a password" 2
has_line "the error names [output] encrypt and says where the password goes" "$ERR" \
	'thlhp\.ini:[0-9]+: \[output\] encrypt = aes256 needs \[output\] password'
write_config 'output.password=${THLHP_ZIP_PASSWORD}'
run -n
exit_is "a password with encrypt = no" 2
has_line "the error names [output] password" "$ERR" 'thlhp\.ini:[0-9]+: \[output\] password is set but encrypt = no'
write_config output.encrypt=aes256 'output.password=${THLHP_NO_SUCH_VAR}'
run -n
exit_is "the password's variable is not set" 2
has_line "the error names the variable" "$ERR" 'THLHP_NO_SUCH_VAR is not set'
write_config output.encrypt=des
run -n
exit_is "encrypt = des" 2
has_line "the error lists what encrypt takes" "$ERR" "'des' is not one of no \| aes256"

finish
