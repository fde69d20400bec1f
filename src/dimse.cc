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
 */
#include "dimse-scu.h"

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

void set_err(char *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void set_err(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, DCM_ERR_MAX, fmt, ap);
	va_end(ap);
	/* DCMTK condition texts may span lines; keep the message on one. */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

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
		set_err(err, "DICOM data dictionary not loaded (check DCMDICTPATH)");
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
		set_err(err, "%s too long (%zu bytes)", name, v.length());
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
		set_err(err, "%s is not a count: \"%.40s\"", name, v.c_str());
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
		set_err(err, "no PACS host");
		return -1;
	}
	if (p->port < 1 || p->port > 65535) {
		set_err(err, "bad PACS port %d", p->port);
		return -1;
	}
	if (!aet_ok(p->called_aet) || !aet_ok(p->calling_aet)) {
		set_err(err, "AE titles must be 1-16 characters");
		return -1;
	}
	if (p->timeout < 1) {
		set_err(err, "bad timeout %d", p->timeout);
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

/* initNetwork + negotiateAssociation; -1 and a message on failure. */
int associate(DcmSCU &scu, const struct dimse_peer *p, const char *what, char *err)
{
	OFCondition c = scu.initNetwork();
	if (c.bad()) {
		set_err(err, "%s to %s:%d: cannot set up the association: %s",
			what, p->host, p->port, c.text());
		return -1;
	}
	c = scu.negotiateAssociation();
	if (c == DUL_ASSOCIATIONREJECTED) {
		set_err(err, "%s:%d rejected the association (called AE \"%s\", calling AE \"%s\"): %s",
			p->host, p->port, p->called_aet, p->calling_aet, c.text());
		return -1;
	}
	if (c == NET_EC_NoAcceptablePresentationContexts) {
		set_err(err, "%s:%d (%s) accepted no presentation context for %s",
			p->host, p->port, p->called_aet, what);
		return -1;
	}
	if (c.bad()) {
		set_err(err, "cannot connect to %s:%d (%s): %s",
			p->host, p->port, p->called_aet, c.text());
		return -1;
	}
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
		set_err(err, "%s:%d (%s) accepted neither Patient Root nor Study Root %s",
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
