#!/usr/bin/env bash
# t-dimse-tls: [pacs] tls = yes against a real Orthanc that speaks DICOM
# over TLS only and requires client certificates: C-GET and C-MOVE (Orthanc
# connecting back to our storage SCP over TLS) build archives holding
# exactly the instances stored in the PACS; plain DICOM against it, a PACS
# certificate from another CA, a missing or mismatched client key, and a
# PACS that sends C-MOVE'd instances in the clear all stop with exit 2 and
# say what failed.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

if ! command -v openssl >/dev/null; then
	say "FAIL: openssl is not installed (apt-get install openssl)"
	exit 1
fi

# make_ca DIR CN : a throwaway CA, DIR/ca.crt and DIR/ca.key.
make_ca() {
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$1/ca.key" -out "$1/ca.crt" >>"$LOG/openssl.log" 2>&1 ||
		{ say "FAIL: openssl could not make the CA $2"; exit 1; }
}

# make_cert DIR NAME CN : DIR/NAME.crt and DIR/NAME.key (unencrypted),
# signed by DIR's CA, for 127.0.0.1, as TLS server and client.
make_cert() {
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$1/$2.ext"
	openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$3" \
		-keyout "$1/$2.key" -out "$1/$2.csr" >>"$LOG/openssl.log" 2>&1 &&
	openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial \
		-days 2 -sha256 -extfile "$1/$2.ext" -out "$1/$2.crt" >>"$LOG/openssl.log" 2>&1 ||
		{ say "FAIL: openssl could not make the certificate $2"; exit 1; }
}

PKI=$T/pki            # the CA of this test: Orthanc's and our certificates
OTHER=$T/other-ca     # a CA nobody here uses
make_ca "$PKI" "thlhp test CA"
make_cert "$PKI" orthanc "Orthanc test PACS"
make_cert "$PKI" thlhp "thlhp-make test client"
make_ca "$OTHER" "another CA"
make_cert "$OTHER" stranger "somebody else"

gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed t1
gen --patient TH-02-BB --studies 1 --series 1 --instances 2 --seed t2 --modality MR
OR_TLS_DIR=$PKI orthanc_start
orthanc_upload "$SRC"

# tls_config [KEY=VALUE]... : write_dimse_config with TLS and our certificate.
tls_config() {
	write_dimse_config pacs.tls=yes "pacs.tls_ca=$PKI/ca.crt" "pacs.tls_cert=$PKI/thlhp.crt" \
		"pacs.tls_key=$PKI/thlhp.key" "$@"
}

# archives_match : each patient's archive holds exactly its instances.
archives_match() {
	local p a
	for p in TH-01-AA TH-02-BB; do
		a=$(archive_of "$p")
		check "$a holds exactly the instances stored in the PACS" "$(zip_list "$a")" "$(entries_of "$p")"
	done
}

section "C-GET over TLS"
RETRIEVE=get tls_config
run -j2 all
exit_is "all with C-GET over TLS" 0
archives_match
check "no temp files left under data/" "$(temp_files data)" ""

section "C-MOVE over TLS: Orthanc connects to our storage SCP with TLS"
rm -rf data .thlhp
RETRIEVE=move tls_config
run -j2 all
exit_is "all with C-MOVE over TLS" 0
archives_match
check "no temp files left under data/" "$(temp_files data)" ""

section "plain DICOM against the TLS-only PACS"
rm -rf data .thlhp
RETRIEVE=get write_dimse_config pacs.tls=no
run all
exit_is "tls = no against a TLS PACS is exit 2" 2
has_line "stderr names the PACS and says the connection failed" "$ERR" \
	"^thlhp-make: .*127\.0\.0\.1:$OR_DICOM"
check "nothing was downloaded" "$(find data -name '*.dcm' 2>/dev/null | wc -l)" 0

section "the PACS's certificate is not signed by tls_ca"
# Retries allowed, which would wait 1 s, then 2 s: none is made.
RETRIEVE=get tls_config "pacs.tls_ca=$OTHER/ca.crt" pacs.retries=3
t0=$(date +%s)
run all
t1=$(date +%s)
exit_is "a PACS certificate from another CA is exit 2" 2
has_line "stderr says the PACS's certificate did not verify" "$ERR" \
	"^thlhp-make: .*certificate.*(not verify|verification failed)"
ok "at once, not tried again ($((t1 - t0)) s)" test $((t1 - t0)) -le 2
check "nothing was downloaded" "$(find data -name '*.dcm' 2>/dev/null | wc -l)" 0

section "our certificate is not signed by the CA the PACS trusts"
RETRIEVE=get tls_config "pacs.tls_cert=$OTHER/stranger.crt" "pacs.tls_key=$OTHER/stranger.key"
run all
exit_is "a client certificate the PACS does not trust is exit 2" 2
has_line "stderr says the TLS handshake failed" "$ERR" "^thlhp-make: .*TLS"

section "tls = yes with retrieve = move needs our certificate"
RETRIEVE=move write_dimse_config pacs.tls=yes "pacs.tls_ca=$PKI/ca.crt"
run -n
exit_is "move over TLS without tls_cert is exit 2" 2
has_line "stderr names the line and asks for tls_cert and tls_key" "$ERR" \
	"^thlhp-make: .*thlhp\.ini:[0-9]+: \[pacs\] tls: .*tls_cert"
RETRIEVE=get write_dimse_config pacs.tls=yes "pacs.tls_ca=$PKI/ca.crt" "pacs.tls_cert=$PKI/thlhp.crt"
run -n
exit_is "tls_cert without tls_key is exit 2" 2
has_line "stderr names the line and the missing key" "$ERR" \
	"^thlhp-make: .*thlhp\.ini:[0-9]+: \[pacs\] tls_cert: .*tls_key"

section "tls_key does not match tls_cert"
RETRIEVE=get tls_config "pacs.tls_key=$PKI/orthanc.key"
run all
exit_is "a key of another certificate is exit 2" 2
has_line "stderr says the key does not match the certificate" "$ERR" \
	"^thlhp-make: .*thlhp\.ini:[0-9]+: \[pacs\] tls: .*orthanc\.key does not match .*thlhp\.crt"

section "a TLS file that cannot be read"
RETRIEVE=get tls_config "pacs.tls_ca=$T/nowhere/ca.crt"
run all
exit_is "a missing tls_ca is exit 2" 2
has_line "stderr names the file and why" "$ERR" \
	"^thlhp-make: .*thlhp\.ini:[0-9]+: \[pacs\] tls: .*nowhere/ca\.crt: cannot read it: No such file"
printf 'not a certificate\n' >"$T/junk.pem"
RETRIEVE=get tls_config "pacs.tls_cert=$T/junk.pem"
run all
exit_is "a tls_cert that is not a certificate is exit 2" 2
has_line "stderr names the file" "$ERR" "^thlhp-make: .*junk\.pem: not a PEM certificate"

section "a PACS that sends C-MOVE'd instances in the clear is refused"
curl -sf -X PUT "http://127.0.0.1:$OR_HTTP/modalities/thlhp" \
	-d "{ \"AET\": \"THLHP\", \"Host\": \"127.0.0.1\", \"Port\": $STORE_PORT, \"UseDicomTls\": false }" \
	>/dev/null || { say "FAIL: cannot change Orthanc's modality THLHP"; exit 1; }
RETRIEVE=move tls_config
run all
exit_is "C-MOVE whose instances come in the clear is exit 2" 2
has_line "stderr says the C-MOVE failed and why" "$ERR" "^thlhp-make: .*C-MOVE.*storage SCP: .*TLS handshake"
check "nothing was stored" "$(find data -name '*.dcm' 2>/dev/null | wc -l)" 0
finish
