#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-config-errors: every bad thlhp.ini is exit 2 with "thlhp.ini:LINE:" and
# the key on stderr; ${NAME} is expanded from the environment.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

gen --patient TH-01-AA --series 1 --instances 2 --seed a

# conf LINE... : write thlhp.ini, one argument a line.
conf() { printf '%s\n' "$@" >thlhp.ini; }

# bad DESC LINE KEY : the config just written is refused with exit 2 and a
# message "thlhp.ini:LINE: ... KEY" (LINE may be an ERE alternative).
bad() {
	local d=$1 line=$2 key=$3
	run -n
	exit_is "$d is refused" 2
	has_line "$d: stderr says thlhp.ini:$line: and names '$key'" "$ERR" "thlhp\\.ini:($line):.*$key"
	no_line "$d: no stale-target line is printed" "$OUT" '^(download|validate|zip)[[:space:]]'
	check "$d: nothing was built" "$(find . -name '*.zip' -o -name state.db)" ""
}

section "the good config first"
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[select]' 'patient_id = TH-*' '' \
	'[output]' 'dicom_dir = data/dicom' 'zip_dir = data/zip' '' '[state]' 'url = sqlite:.thlhp/state.db'
run -n
exit_is "the base config is accepted" 0
rm -rf .thlhp data

section "unknown names"
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'colour = blue'
bad "unknown key 'colour' in [output]" 6 colour
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[bogus]' 'x = 1'
bad "unknown section [bogus]" '5|6' bogus
conf '[pacs]' 'protocol = folder' "path = $SRC" 'this line has no equals sign'
bad "a line that is not key = value" 4 ''

section "bad values"
conf '[pacs]' 'protocol = ftp' "path = $SRC"
bad "protocol = ftp" 2 protocol
conf '[pacs]' 'protocol = folder' "path = $SRC" 'port = 70000'
bad "port = 70000 (out of range)" 4 port
conf '[pacs]' 'protocol = folder' "path = $SRC" 'port = 0'
bad "port = 0 (out of range)" 4 port
conf '[pacs]' 'protocol = folder' "path = $SRC" 'called_aet = ABCDEFGHIJKLMNOPQ'
bad "called_aet of 17 characters (AE titles have at most 16)" 4 called_aet
conf '[pacs]' 'protocol = folder' "path = $SRC" 'calling_aet = THIS_IS_TOO_LONG_1'
bad "calling_aet of 18 characters" 4 calling_aet
conf '[pacs]' 'protocol = folder' "path = $SRC" 'max_associations = x'
bad "max_associations = x (not a number)" 4 max_associations
conf '[pacs]' 'protocol = folder' "path = $SRC" 'timeout = 10s'
bad "timeout = 10s (not a number)" 4 timeout
conf '[pacs]' 'protocol = folder' "path = $SRC" 'retrieve = post'
bad "retrieve = post (move | get)" 4 retrieve
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'level = 12'
bad "level = 12 (1-9)" 6 level
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'level = 0'
bad "level = 0 (1-9)" 6 level
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'compression = zstd'
bad "compression = zstd (store | deflate | bzip2)" 6 compression
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'keep_old = maybe'
bad "keep_old = maybe (yes | no)" 6 keep_old
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[select]' 'patient_id_regex = TH-(' 
bad "patient_id_regex that does not compile" 6 patient_id_regex
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[state]' 'url = mysql://db/x'
bad "state url with an unknown scheme" 6 url

section "missing required key"
conf '[pacs]' 'protocol = folder' '' '[output]' 'zip_dir = data/zip'
run -n
exit_is "protocol = folder without path is refused" 2
has_line "the message names thlhp.ini" "$ERR" 'thlhp\.ini'
has_line "the message names [pacs] path" "$ERR" 'pacs.*path|path.*pacs'

section "\${NAME} expansion"
conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[output]' 'dicom_dir = ${UNSET_VAR_XYZ}/dicom'
unset UNSET_VAR_XYZ
bad "an unset \${UNSET_VAR_XYZ}" 6 UNSET_VAR_XYZ
export THLHP_TEST_ROOT=$PROJ
conf '[pacs]' 'protocol = folder' 'path = ${THLHP_TEST_ROOT}/source' '' '[output]' 'zip_dir = ${THLHP_TEST_ROOT}/zips'
run -n
exit_is "\${THLHP_TEST_ROOT} in path and zip_dir is expanded" 0
has_line "-n with an expanded path lists the source's series" "$OUT" '^download[[:space:]]+TH-01-AA '
run all
exit_is "all with expanded paths" 0
ok "the archive lands in the expanded zip_dir \${THLHP_TEST_ROOT}/zips" test -f "$PROJ/zips/TH-01-AA__seriesCount1.zip"
unset THLHP_TEST_ROOT
rm -rf zips data .thlhp
mkdir -p "$T/home/src" && mv "$SRC"/* "$T/home/src/"
conf '[pacs]' 'protocol = folder' 'path = ${HOME}/src'
HOME=$T/home run -n
exit_is "\${HOME} in path is expanded" 0
has_line "-n with path = \${HOME}/src lists the source's series" "$OUT" '^download[[:space:]]+TH-01-AA '

section "a password in a config others can read"
mv "$T/home/src"/* "$SRC/"
# pw_conf LINE... : a good folder config plus LINE...
pw_conf() {
	conf '[pacs]' 'protocol = folder' "path = $SRC" '' '[state]' "$@"
}
pw_conf 'url = postgresql://thlhp:s3cret@127.0.0.1:1/nodb'
chmod 644 thlhp.ini
run -n
has_line "a password in [state] url, mode 0644: a warning names the file, line and key" "$ERR" \
	'thlhp\.ini:6: \[state\] url holds a password and thlhp\.ini is readable by others \(mode 0644\): chmod 600'
no_line "... and the warning does not show the password" "$ERR" 's3cret'
chmod 600 thlhp.ini
run -n
no_line "mode 0600: no warning" "$ERR" 'readable by others'
chmod 644 thlhp.ini
pw_conf 'url = postgresql://thlhp:${THLHP_TEST_PW}@127.0.0.1:1/nodb'
THLHP_TEST_PW=x run -n
no_line "the password from the environment (\${NAME}), mode 0644: no warning" "$ERR" 'readable by others'
conf '[pacs]' 'protocol = dicomweb' 'url = http://127.0.0.1:1/dicom-web' 'auth = bearer abc123'
chmod 640 thlhp.ini
run -n
has_line "a literal bearer token in [pacs] auth, mode 0640: warned" "$ERR" \
	'thlhp\.ini:4: \[pacs\] auth holds a password .*\(mode 0640\)'
conf '[pacs]' 'protocol = dicomweb' 'url = http://127.0.0.1:1/dicom-web' 'auth = bearer ${THLHP_TEST_PW}'
THLHP_TEST_PW=x run -n
no_line "auth = bearer \${NAME}: no warning" "$ERR" 'readable by others'
rm -rf .thlhp data

section "missing config file"
run -f nope.ini -n
exit_is "-f nope.ini (no such file)" 2
has_line "the error names nope.ini" "$ERR" 'nope\.ini'
rm -f thlhp.ini
run -n
exit_is "no ./thlhp.ini" 2
has_line "the error names thlhp.ini" "$ERR" 'thlhp\.ini'

finish
