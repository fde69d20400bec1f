/*
 * dimse.cc - C-FIND and C-GET through DCMTK's DcmSCU.  Implements dimse.h:
 * plain C in, plain C out, no exception ever leaves this file, nothing is
 * printed (dcm_init switches DCMTK's logger off).
 *
 * Every call builds its own DcmSCU (its own T_ASC_Network and association),
 * so calls from several threads are independent.  What is shared:
 *  - the environment variable TCP_NODELAY, set once (see net_init);
 *  - DCMTK's global connect timeout dcmConnectionTimeout (a mutex-guarded
 *    OFGlobal; DCMTK 3.6.7 has no per-association connect timeout), which
 *    every call sets to its peer->timeout: calls with different timeouts
 *    would share whichever was set last;
 *  - DCMTK's socket send/receive timeouts (dcmSocketSendTimeout,
 *    dcmSocketReceiveTimeout, 60 s by default), left alone.
 *
 * Timeouts: DCMTK ignores the DIMSE timeout in DIMSE_BLOCKING mode (the
 * read just blocks), so we use DIMSE_NONBLOCKING, in which every DIMSE read
 * waits at most peer->timeout seconds for data.  A peer that stops
 * answering in mid-operation costs up to two timeouts: the DIMSE read, then
 * DCMTK's A-ABORT waiting for the peer to close.
 *
 * C-GET storage: DcmSCU's bit-preserving mode.  Each arriving dataset is
 * streamed to <tmp_prefix><n> as it came over the network, behind a meta
 * header naming the presentation context's transfer syntax; nothing is
 * decoded or re-encoded.  DcmSCU in that mode cannot answer a C-STORE with
 * anything but success (or "cannot understand" and end the session), so
 * sendSTOREResponse is overridden to put in the status we chose.
 *
 * TLS (peer->tls.on): each association gets its own DcmTLSTransportLayer
 * (an OpenSSL SSL_CTX, the files loaded anew), built by tls_new and handed
 * to DcmSCU between initNetwork and negotiateAssociation.  Sharing one per
 * process would also work (DCMTK only calls SSL_new on it per connection,
 * which OpenSSL allows from several threads), but would tie the process to
 * one set of files and their lifetime to static destruction; building one
 * costs about 2 ms, next to a TLS handshake per association anyway.  What
 * it enforces:
 *  - DICOM's BCP 195 non-downgrading profile (TSP_Profile_BCP195_ND; of
 *    the profiles 3.6.7 offers, the strictest that still speaks TLS 1.3,
 *    and Orthanc 1.10.1 takes it): TLS 1.2 or 1.3 only, TLS 1.2 with the
 *    four ECDHE/DHE-RSA AES-GCM suites; never the retired Basic and AES
 *    profiles' TLS 1.0 and 3DES (TSP_Profile_BCP195 would fall back);
 *  - DCV_requireCertificate: the other side must present a certificate
 *    that verifies against tls->ca, or the handshake fails.  There is no
 *    fallback to plain DICOM and no unverified mode.  DCMTK does not
 *    match the certificate's names against the host: any certificate
 *    tls->ca signed is taken for any PACS;
 *  - our certificate, when given, is presented (as client certificate to
 *    the PACS), after checking that the key matches it.
 * initializeOpenSSL, which DCMTK says is not thread-safe, runs once, in
 * the first tls_new (dimse_tls_check, on the main thread); plain DICOM
 * never touches OpenSSL.  The handshake waits on DCMTK's socket timeouts
 * (60 s), not peer->timeout.
 */
#include "dimse-scu.h"

#include <dcmtk/dcmnet/cond.h>
#include <dcmtk/dcmtls/tlscond.h>
/* Only the SSL_R_* reason numbers dcmtls puts in its conditions. */
#include <openssl/sslerr.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace dimse_scu {

std::once_flag net_once;
bool net_dict_ok = false;
std::once_flag tls_once;

void net_init()
{
	dcm_init();
	/*
	 * DCMTK 3.6.7 disables Nagle's algorithm on its sockets only when the
	 * environment variable TCP_NODELAY is set to non-zero (dulfsm.cc reads
	 * it at every connect; the compile-time default is "leave Nagle on").
	 * With Nagle on, each small PDU (C-FIND responses, C-STORE responses,
	 * the tail of a dataset) can wait for the peer's delayed ACK, ~40 ms a
	 * message.  overwrite=0: a TCP_NODELAY the user set wins.  setenv is
	 * not safe against a concurrent getenv in another thread; this runs
	 * once, before this process opens its first association.
	 */
	setenv("TCP_NODELAY", "1", 0);
	net_dict_ok = dcmDataDict.isDictionaryLoaded();
}

int init(char *err)
{
	std::call_once(net_once, net_init);
	if (!net_dict_ok) {
		dcm_errf(err, "DICOM data dictionary not loaded (check DCMDICTPATH)");
		return -1;
	}
	return 0;
}

std::string trim(const OFString &v)
{
	size_t b = 0, e = v.length();
	while (b < e && (v[b] == ' ' || v[b] == '\0'))
		b++;
	while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\0'))
		e--;
	return std::string(v.data() + b, e - b);
}

/* Fetch tag from item as a trimmed string (all values, backslash-joined)
 * into buf; missing or empty gives "".  -1 if it does not fit. */
int get(DcmItem *item, const DcmTagKey &tag, const char *name,
	char *buf, size_t size, char *err)
{
	buf[0] = '\0';
	OFString raw;
	if (item == NULL || item->findAndGetOFStringArray(tag, raw).bad())
		return 0;
	std::string v = trim(raw);
	/* Retired ACR-NEMA date "YYYY.MM.DD" -> "YYYYMMDD", as dicom.cc. */
	if (tag == DCM_StudyDate && v.length() == 10 && v[4] == '.' && v[7] == '.')
		v = v.substr(0, 4) + v.substr(5, 2) + v.substr(8, 2);
	if (v.length() >= size) {
		dcm_errf(err, "%s too long (%zu bytes)", name, v.length());
		return -1;
	}
	memcpy(buf, v.data(), v.length());
	buf[v.length()] = '\0';
	return 0;
}

/* An IS attribute as an int; absent or empty gives -1. */
int get_count(DcmItem *item, const DcmTagKey &tag, const char *name, int *n, char *err)
{
	*n = -1;
	OFString raw;
	if (item == NULL || item->findAndGetOFStringArray(tag, raw).bad())
		return 0;
	std::string v = trim(raw);
	if (v.empty())
		return 0;
	size_t i = v[0] == '+' ? 1 : 0;
	long long x = 0;
	bool ok = i < v.length();
	for (; ok && i < v.length(); i++) {
		if (v[i] < '0' || v[i] > '9' || x > INT_MAX / 10)
			ok = false;
		else
			x = x * 10 + (v[i] - '0');
	}
	if (!ok || x > INT_MAX) {
		dcm_errf(err, "%s is not a count: \"%.40s\"", name, v.c_str());
		return -1;
	}
	*n = (int)x;
	return 0;
}

bool aet_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 16;
}

int check_peer(const struct dimse_peer *p, char *err)
{
	if (p == NULL || p->host == NULL || !p->host[0]) {
		dcm_errf(err, "no PACS host");
		return -1;
	}
	if (p->port < 1 || p->port > 65535) {
		dcm_errf(err, "bad PACS port %d", p->port);
		return -1;
	}
	if (!aet_ok(p->called_aet) || !aet_ok(p->calling_aet)) {
		dcm_errf(err, "AE titles must be 1-16 characters");
		return -1;
	}
	if (p->timeout < 1) {
		dcm_errf(err, "bad timeout %d", p->timeout);
		return -1;
	}
	return 0;
}

void configure(DcmSCU &scu, const struct dimse_peer *p)
{
	scu.setAETitle(p->calling_aet);
	scu.setPeerHostName(p->host);
	scu.setPeerPort((Uint16)p->port);
	scu.setPeerAETitle(p->called_aet);
	scu.setMaxReceivePDULength(ASC_MAXIMUMPDUSIZE);
	scu.setACSETimeout((Uint32)p->timeout);
	scu.setDIMSETimeout((Uint32)p->timeout);
	/* Non-blocking: the only DIMSE mode in which the timeout is used. */
	scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
	/* A DCMTK global (see the top of the file). */
	scu.setConnectionTimeout((Sint32)p->timeout);
}

/* Can path be read?  -1 with err naming it as what. */
static int tls_readable(const char *what, const char *path, char *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		dcm_errf(err, "TLS: %s %s: cannot read it: %s", what, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

std::unique_ptr<DcmTLSTransportLayer> tls_new(const struct dimse_tls *t, T_ASC_NetworkRole role,
	char *err)
{
	bool have_ca = t->ca != NULL && t->ca[0];
	bool have_cert = t->cert != NULL && t->cert[0], have_key = t->key != NULL && t->key[0];
	if (!have_ca) {
		dcm_errf(err, "TLS: no CA file to verify the other side's certificate with");
		return NULL;
	}
	if (have_cert != have_key) {
		dcm_errf(err, "TLS: %s given without %s: give both or neither",
			have_cert ? "a certificate" : "a private key",
			have_cert ? "its private key" : "its certificate");
		return NULL;
	}
	if (role == NET_ACCEPTOR && !have_cert) {
		dcm_errf(err, "TLS: our storage SCP needs our certificate and private key "
			"(the PACS connects to it)");
		return NULL;
	}
	if (tls_readable("CA file", t->ca, err) != 0 ||
	    (have_cert && (tls_readable("certificate file", t->cert, err) != 0 ||
			   tls_readable("private key file", t->key, err) != 0)))
		return NULL;

	std::call_once(tls_once, DcmTLSTransportLayer::initializeOpenSSL);
	std::unique_ptr<DcmTLSTransportLayer> l(new DcmTLSTransportLayer(role, NULL, OFFalse));
	if (!*l) {
		dcm_errf(err, "TLS: cannot set up OpenSSL");
		return NULL;
	}
	/* DICOM's BCP 195 non-downgrading profile: see the top of the file. */
	OFCondition c = l->setTLSProfile(TSP_Profile_BCP195_ND);
	if (c.good())
		c = l->activateCipherSuites();
	if (c.bad()) {
		dcm_errf(err, "TLS: cannot set the BCP 195 profile: %s", c.text());
		return NULL;
	}
	if (l->addTrustedCertificateFile(t->ca, DCF_Filetype_PEM).bad()) {
		dcm_errf(err, "TLS: CA file %s: holds no PEM certificate", t->ca);
		return NULL;
	}
	/* Our SCP names the CAs it trusts when it asks the PACS for its
	 * certificate. */
	if (role == NET_ACCEPTOR && l->addTrustedClientCertificateFile(t->ca).bad()) {
		dcm_errf(err, "TLS: CA file %s: cannot read the CA names in it", t->ca);
		return NULL;
	}
	if (have_cert) {
		/* An encrypted key then fails to load instead of OpenSSL
		 * asking for its password on the terminal. */
		l->setPrivateKeyPasswd("");
		/* The key first: OpenSSL refuses a key that does not match a
		 * certificate already loaded but drops the key when the
		 * certificate comes second, so a mismatch shows as one. */
		if (l->setPrivateKeyFile(t->key, DCF_Filetype_PEM).bad()) {
			dcm_errf(err, "TLS: private key file %s: not an unencrypted PEM private key",
				t->key);
			return NULL;
		}
		if (l->setCertificateFile(t->cert, DCF_Filetype_PEM).bad()) {
			dcm_errf(err, "TLS: certificate file %s: not a PEM certificate", t->cert);
			return NULL;
		}
		if (!l->checkPrivateKeyMatchesCertificate()) {
			dcm_errf(err, "TLS: private key file %s does not match certificate file %s",
				t->key, t->cert);
			return NULL;
		}
	}
	/* The strictest mode (see the top of the file; dimse-scp.cc for our
	 * SCP). */
	l->setCertificateVerification(DCV_requireCertificate);
	return l;
}

/* Is c dcmtls's condition for OpenSSL's SSL error reason? */
static bool tls_reason(const OFCondition &c, int reason)
{
	return c.module() == OFM_dcmtls && c.code() == DCMTLS_EC_SSL_Offset + reason;
}

/* An association that could not be set up: say why, and with TLS which
 * side's certificate was the trouble when we can tell.  -1, or
 * DIMSE_UNVERIFIED when the PACS's certificate did not verify. */
static int connect_failed(const struct dimse_peer *p, const OFCondition &c, char *err)
{
	/* The connection closed without a DICOM answer (no A-ASSOCIATE-AC,
	 * -RJ or A-ABORT). */
	bool dropped = c == DUL_PEERABORTEDASSOCIATION ||
		(c.module() == OFM_dcmnet && c.code() == DULC_TCPIOERROR);
	const char *hint = "";

	if (p->tls.on && tls_reason(c, SSL_R_CERTIFICATE_VERIFY_FAILED)) {
		dcm_errf(err, "TLS handshake with %s:%d (%s) failed: certificate verification failed: "
			"the PACS's certificate does not verify against the CA file %s (%s)",
			p->host, p->port, p->called_aet, p->tls.ca, c.text());
		return DIMSE_UNVERIFIED;
	}
	if (p->tls.on && c.module() == OFM_dcmtls) {
		/* TLS 1.2 ends the handshake when the PACS refuses our
		 * certificate; TLS 1.3 only afterwards (dropped, below). */
		if (tls_reason(c, SSL_R_TLSV1_ALERT_UNKNOWN_CA) ||
		    tls_reason(c, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) ||
		    tls_reason(c, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED))
			hint = "; the PACS refused our certificate (tls_cert) or wants one";
		dcm_errf(err, "TLS handshake with %s:%d (%s) failed: %s%s", p->host, p->port,
			p->called_aet, c.text(), hint);
		return -1;
	}
	if (dropped)
		hint = !p->tls.on ? "; it closed the connection without a DICOM answer: "
				    "does it expect DICOM over TLS (tls = yes)?"
		     : p->tls.cert ? "; it closed the TLS connection: does it trust the CA "
				     "that signed our certificate (tls_cert)?"
				   : "; it closed the TLS connection: does it want a client "
				     "certificate (tls_cert, tls_key)?";
	dcm_errf(err, "cannot connect to %s:%d (%s): %s%s", p->host, p->port, p->called_aet,
		c.text(), hint);
	return -1;
}

const char *abort_hint(const OFCondition &c)
{
	/* Orthanc, among others, accepts an association from an AE title
	 * it does not know and aborts it at the first request. */
	return c == DUL_PEERABORTEDASSOCIATION ?
		" (a PACS aborts so when it does not know the calling AE title: is [pacs] "
		"calling_aet known to it, with this host's address?)" : "";
}

/* DCMTK 3.6.7 has DcmSCU::useSecureConnection protected, for subclasses;
 * every DcmSCU here is a subclass of ours, but associate() takes any. */
struct SecureSCU : DcmSCU {
	static OFCondition use_tls(DcmSCU &scu, DcmTransportLayer *tls)
	{
		return (scu.*&SecureSCU::useSecureConnection)(tls);
	}
};

/* initNetwork (+ TLS) + negotiateAssociation; -1 and a message on
 * failure. */
int associate(DcmSCU &scu, const struct dimse_peer *p, tls_layer &tls, const char *what,
	char *err)
{
	OFCondition c = scu.initNetwork();
	if (c.bad()) {
		dcm_errf(err, "%s to %s:%d: cannot set up the association: %s",
			what, p->host, p->port, c.text());
		return -1;
	}
	if (p->tls.on) {
		tls.layer = tls_new(&p->tls, NET_REQUESTOR, err);
		if (!tls.layer)
			return -1;
		c = SecureSCU::use_tls(scu, tls.layer.get());
		if (c.bad()) {
			dcm_errf(err, "%s to %s:%d: cannot set up TLS: %s", what, p->host, p->port,
				c.text());
			return -1;
		}
	}
	c = scu.negotiateAssociation();
	if (c == DUL_ASSOCIATIONREJECTED) {
		dcm_errf(err, "%s:%d rejected the association (called AE \"%s\", calling AE \"%s\")",
			p->host, p->port, p->called_aet, p->calling_aet);
		return DIMSE_REJECTED;
	}
	if (c == NET_EC_NoAcceptablePresentationContexts) {
		dcm_errf(err, "%s:%d (%s) accepted no presentation context for %s",
			p->host, p->port, p->called_aet, what);
		return -1;
	}
	if (c.bad())
		return connect_failed(p, c, err);
	return 0;
}

const struct qr_models find_models = {
	UID_FINDPatientRootQueryRetrieveInformationModel,
	UID_FINDStudyRootQueryRetrieveInformationModel,
};
const struct qr_models get_models = {
	UID_GETPatientRootQueryRetrieveInformationModel,
	UID_GETStudyRootQueryRetrieveInformationModel,
};
const struct qr_models move_models = {
	UID_MOVEPatientRootQueryRetrieveInformationModel,
	UID_MOVEStudyRootQueryRetrieveInformationModel,
};

bool patient_root_fits(enum dimse_level level, const char *patient_id)
{
	if (level == DIMSE_PATIENT)
		return true;
	/* Below the patient, Patient Root's hierarchy needs its unique key:
	 * one PatientID, matched exactly (no wildcard, no second value). */
	return patient_id != NULL && patient_id[0] != '\0' &&
		strpbrk(patient_id, "*?\\") == NULL;
}

void propose_models(DcmSCU &scu, const struct qr_models &m, bool patient_root)
{
	OFList<OFString> ts;
	ts.push_back(UID_LittleEndianExplicitTransferSyntax);
	ts.push_back(UID_LittleEndianImplicitTransferSyntax);
	if (patient_root)
		scu.addPresentationContext(m.patient_root, ts);
	scu.addPresentationContext(m.study_root, ts);
}

T_ASC_PresentationContextID model_context(DcmSCU &scu, const struct dimse_peer *p,
	const struct qr_models &m, bool patient_root, const char **model, const char *what,
	char *err)
{
	T_ASC_PresentationContextID pc = 0;
	*model = NULL;
	if (patient_root && (pc = scu.findAnyPresentationContextID(m.patient_root, "")) != 0)
		*model = m.patient_root;
	else if ((pc = scu.findAnyPresentationContextID(m.study_root, "")) != 0)
		*model = m.study_root;
	else
		dcm_errf(err, "%s:%d (%s) accepted neither Patient Root nor Study Root %s",
			p->host, p->port, p->called_aet, what);
	return pc;
}

/* The Error Comment (0000,0902) of a status detail, or "". */
std::string error_comment(DcmDataset *detail)
{
	OFString s;
	if (detail == NULL || detail->findAndGetOFString(DCM_ErrorComment, s).bad())
		return "";
	return trim(s);
}
} /* namespace dimse_scu */

using namespace dimse_scu;

extern "C" int dimse_tls_check(const struct dimse_tls *tls, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	if (tls == NULL || !tls->on)
		return 0;
	try {
		if (init(err) != 0)
			return -1;
		return tls_new(tls, NET_REQUESTOR, err) ? 0 : -1;
	} catch (const std::exception &e) {
		dcm_errf(err, "TLS: %s", e.what());
	} catch (...) {
		dcm_errf(err, "TLS: unknown exception");
	}
	return -1;
}
