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
#include "dimse.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scu.h>

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

namespace {

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

/* initNetwork + negotiateAssociation, then the accepted presentation
 * context of the Q/R class; 0 and a message on failure. */
T_ASC_PresentationContextID associate(DcmSCU &scu, const struct dimse_peer *p,
	const char *qr_class, const char *what, char *err)
{
	OFCondition c = scu.initNetwork();
	if (c.bad()) {
		set_err(err, "%s to %s:%d: cannot set up the association: %s",
			what, p->host, p->port, c.text());
		return 0;
	}
	c = scu.negotiateAssociation();
	if (c == DUL_ASSOCIATIONREJECTED) {
		set_err(err, "%s:%d rejected the association (called AE \"%s\", calling AE \"%s\"): %s",
			p->host, p->port, p->called_aet, p->calling_aet, c.text());
		return 0;
	}
	if (c == NET_EC_NoAcceptablePresentationContexts) {
		set_err(err, "%s:%d (%s) accepted no presentation context for %s",
			p->host, p->port, p->called_aet, what);
		return 0;
	}
	if (c.bad()) {
		set_err(err, "cannot connect to %s:%d (%s): %s",
			p->host, p->port, p->called_aet, c.text());
		return 0;
	}
	T_ASC_PresentationContextID pc = scu.findAnyPresentationContextID(qr_class, "");
	if (pc == 0)
		set_err(err, "%s:%d (%s) does not offer %s (%s)",
			p->host, p->port, p->called_aet, what, qr_class);
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

/* ---------------------------------------------------------------- C-FIND */

class FindSCU : public DcmSCU {
public:
	FindSCU(enum dimse_level level, dimse_match_fn *fn, void *arg)
		: lvl(level), match_fn(fn), match_arg(arg)
	{
	}

	bool cancelled = false;
	bool got_final = false;
	Uint16 final_status = 0;
	std::string final_comment;
	unsigned long skipped = 0;
	std::string first_skip;

protected:
	OFCondition handleFINDResponse(const T_ASC_PresentationContextID presID,
		QRResponse *response, OFBool &waitForNextResponse) override
	{
		waitForNextResponse = OFFalse;
		if (response == NULL)
			return DIMSE_NULLKEY;
		if (!DICOM_PENDING_STATUS(response->m_status)) {
			got_final = true;
			final_status = response->m_status;
			final_comment = error_comment(response->m_statusDetail);
			return EC_Normal;
		}
		waitForNextResponse = OFTrue;
		if (cancelled)
			return EC_Normal;
		struct dimse_match m;
		char e[DCM_ERR_MAX];
		if (fill(response->m_dataset, &m, e) != 0) {
			if (skipped++ == 0)
				first_skip = e;
			return EC_Normal;
		}
		if (match_fn(match_arg, &m) != 0) {
			cancelled = true;
			waitForNextResponse = OFFalse;
			/* The PACS may have more responses in flight; the
			 * caller aborts the association after this. */
			sendCANCELRequest(presID);
		}
		return EC_Normal;
	}

private:
	enum dimse_level lvl;
	dimse_match_fn *match_fn;
	void *match_arg;

	int fill(DcmDataset *ds, struct dimse_match *m, char *e)
	{
		memset(m, 0, sizeof *m);
		m->nrelated = -1;
		struct dcm_header *h = &m->h;
		if (ds == NULL) {
			set_err(e, "pending C-FIND response without identifier");
			return -1;
		}
		if (get(ds, DCM_PatientID, "PatientID", h->patient_id, sizeof h->patient_id, e) ||
		    get(ds, DCM_StudyInstanceUID, "StudyInstanceUID", h->study_uid, sizeof h->study_uid, e) ||
		    get(ds, DCM_SeriesInstanceUID, "SeriesInstanceUID", h->series_uid, sizeof h->series_uid, e) ||
		    get(ds, DCM_SOPInstanceUID, "SOPInstanceUID", h->sop_uid, sizeof h->sop_uid, e) ||
		    get(ds, DCM_SOPClassUID, "SOPClassUID", h->sop_class, sizeof h->sop_class, e) ||
		    get(ds, DCM_Modality, "Modality", h->modality, sizeof h->modality, e) ||
		    get(ds, DCM_StudyDate, "StudyDate", h->study_date, sizeof h->study_date, e))
			return -1;
		if (lvl == DIMSE_SERIES &&
		    get_count(ds, DCM_NumberOfSeriesRelatedInstances,
			      "NumberOfSeriesRelatedInstances", &m->nrelated, e))
			return -1;
		if (lvl == DIMSE_STUDY &&
		    (get_count(ds, DCM_NumberOfStudyRelatedInstances,
			       "NumberOfStudyRelatedInstances", &m->nrelated, e) ||
		     get(ds, DCM_SOPClassesInStudy, "SOPClassesInStudy",
			 m->sop_classes, sizeof m->sop_classes, e)))
			return -1;
		return 0;
	}
};

bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The C-FIND identifier: QueryRetrieveLevel, the level's return keys
 * (empty, or the matching value), and every matching key given. */
OFCondition build_query(DcmDataset &q, enum dimse_level level, const struct dimse_keys *k)
{
	static const char *const names[] = { "PATIENT", "STUDY", "SERIES", "IMAGE" };
	const char *patient_id = k ? k->patient_id : NULL;
	const char *study_uid = k ? k->study_uid : NULL;
	const char *series_uid = k ? k->series_uid : NULL;
	const char *study_date = k ? k->study_date : NULL;
	const char *modality = k ? k->modality : NULL;
	bool study = level != DIMSE_PATIENT;
	bool series = level == DIMSE_SERIES || level == DIMSE_IMAGE;

	OFCondition c = q.putAndInsertString(DCM_QueryRetrieveLevel, names[level]);
	auto key = [&](const DcmTagKey &tag, const char *v, bool ret) {
		if (c.good() && (ret || set(v)))
			c = q.putAndInsertString(tag, set(v) ? v : "");
	};
	key(DCM_PatientID, patient_id, true);
	key(DCM_StudyInstanceUID, study_uid, study);
	key(DCM_StudyDate, study_date, study);
	key(DCM_SeriesInstanceUID, series_uid, series);
	/* Modality is a series attribute; at STUDY level the same filter
	 * is ModalitiesInStudy. */
	if (level == DIMSE_STUDY)
		key(DCM_ModalitiesInStudy, modality, false);
	else
		key(DCM_Modality, modality, level == DIMSE_SERIES);
	switch (level) {
	case DIMSE_STUDY:
		key(DCM_NumberOfStudyRelatedInstances, NULL, true);
		key(DCM_SOPClassesInStudy, NULL, true);
		break;
	case DIMSE_SERIES:
		key(DCM_NumberOfSeriesRelatedInstances, NULL, true);
		break;
	case DIMSE_IMAGE:
		key(DCM_SOPInstanceUID, NULL, true);
		key(DCM_SOPClassUID, NULL, true);
		break;
	case DIMSE_PATIENT:
		break;
	}
	return c;
}

int do_find(const struct dimse_peer *peer, enum dimse_level level,
	const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char *err)
{
	if (init(err) != 0 || check_peer(peer, err) != 0)
		return -1;
	if (fn == NULL || level < DIMSE_PATIENT || level > DIMSE_IMAGE) {
		set_err(err, "dimse_find: bad arguments");
		return -1;
	}
	DcmDataset q;
	OFCondition c = build_query(q, level, keys);
	if (c.bad()) {
		set_err(err, "cannot build the C-FIND identifier: %s", c.text());
		return -1;
	}

	const char *model = level == DIMSE_PATIENT
		? UID_FINDPatientRootQueryRetrieveInformationModel
		: UID_FINDStudyRootQueryRetrieveInformationModel;
	FindSCU scu(level, fn, arg);
	configure(scu, peer);
	scu.setProgressNotificationMode(OFFalse);
	OFList<OFString> ts;
	ts.push_back(UID_LittleEndianExplicitTransferSyntax);
	ts.push_back(UID_LittleEndianImplicitTransferSyntax);
	scu.addPresentationContext(model, ts);

	T_ASC_PresentationContextID pc = associate(scu, peer, model, "C-FIND", err);
	if (pc == 0)
		return -1;	/* ~DcmSCU aborts an open association */
	c = scu.sendFINDRequest(pc, &q, NULL);
	if (scu.cancelled) {
		scu.abortAssociation();
		set_err(err, "cancelled");
		return -1;
	}
	if (c.bad()) {
		set_err(err, "C-FIND with %s:%d: %s", peer->host, peer->port, c.text());
		return -1;
	}
	scu.releaseAssociation();
	if (!scu.got_final) {
		set_err(err, "C-FIND with %s:%d: no final response", peer->host, peer->port);
		return -1;
	}
	if (scu.final_status != STATUS_Success) {
		set_err(err, "C-FIND failed: status 0x%04X (%s)%s%s",
			(unsigned)scu.final_status, DU_cfindStatusString(scu.final_status),
			scu.final_comment.empty() ? "" : ": ", scu.final_comment.c_str());
		return -1;
	}
	if (scu.skipped > 0) {
		set_err(err, "C-FIND: %lu match%s skipped: %s", scu.skipped,
			scu.skipped == 1 ? "" : "es", scu.first_skip.c_str());
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------- C-GET */

/* Offered for every SOP class, one presentation context each, so that the
 * PACS finds the one its stored file is in and sends it unchanged (one
 * context with all of them would let the PACS pick one syntax per class
 * and transcode the rest).  A PACS holding a syntax not listed here
 * transcodes or fails the sub-operation.  11 syntaxes + the C-GET context
 * in 128: at most 11 SOP classes per C-GET. */
const char *const store_syntaxes[] = {
	UID_LittleEndianExplicitTransferSyntax,
	UID_LittleEndianImplicitTransferSyntax,
	UID_JPEGProcess1TransferSyntax,		/* JPEG baseline */
	UID_JPEGProcess2_4TransferSyntax,	/* JPEG extended (12-bit lossy) */
	UID_JPEGProcess14SV1TransferSyntax,	/* JPEG lossless SV1 */
	UID_JPEGLSLosslessTransferSyntax,
	UID_JPEG2000LosslessOnlyTransferSyntax,
	UID_JPEG2000TransferSyntax,
	UID_RLELosslessTransferSyntax,
	UID_DeflatedExplicitVRLittleEndianTransferSyntax,
	UID_BigEndianExplicitTransferSyntax,
};
const size_t nstore_syntaxes = sizeof store_syntaxes / sizeof store_syntaxes[0];
const size_t max_contexts = 128;

class GetSCU : public DcmSCU {
public:
	GetSCU(const char *prefix, dimse_store_fn *fn, void *arg)
		: tmp_prefix(prefix), store_fn(fn), store_arg(arg)
	{
	}

	bool got_final = false;
	Uint16 final_status = 0;
	std::string final_comment;
	struct dimse_counts last = { 0, 0, 0, 0, 0 };
	unsigned long nerrors = 0;	/* instances we could not store */
	std::string first_error;

protected:
	OFCondition handleCGETResponse(const T_ASC_PresentationContextID,
		RetrieveResponse *response, OFBool &continueCGETSession) override
	{
		continueCGETSession = OFFalse;
		if (response == NULL)
			return DIMSE_NULLKEY;
		last.completed = response->m_numberOfCompletedSubops;
		last.failed = response->m_numberOfFailedSubops;
		last.warning = response->m_numberOfWarningSubops;
		last.remaining = response->m_numberOfRemainingSubops;
		last.status = response->m_status;
		if (DICOM_PENDING_STATUS(response->m_status)) {
			continueCGETSession = OFTrue;
			return EC_Normal;
		}
		got_final = true;
		final_status = response->m_status;
		final_comment = error_comment(response->m_statusDetail);
		return EC_Normal;
	}

	/* Called in bit-preserving mode with a file name made from the SOP
	 * Instance UID the PACS sent; we use our own. */
	OFCondition handleSTORERequestFile(T_ASC_PresentationContextID *presID,
		const OFString &, T_DIMSE_C_StoreRQ *request) override
	{
		have_status = false;
		std::string path = tmp_prefix + std::to_string(++counter);
		char e[DCM_ERR_MAX];

		/* Create it ourselves first: if that fails, the dataset can
		 * still be skipped and the C-STORE refused, and the session
		 * goes on.  (DcmSCU would end it.) */
		int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			set_err(e, "cannot create %s: %s", path.c_str(), strerror(errno));
			failed(e, STATUS_STORE_Refused_OutOfResources);
			return ignoreSTORERequest(*presID, *request);
		}
		close(fd);

		rx_bytes = 0;
		OFCondition c = DcmSCU::handleSTORERequestFile(presID, OFString(path.c_str()), request);
		if (c == DIMSE_OUTOFRESOURCES) {
			/* A write failed; DCMTK read the rest of the dataset
			 * off the wire, so the association is still in step. */
			unlink(path.c_str());
			set_err(e, "cannot write %s: %s", path.c_str(), c.text());
			failed(e, STATUS_STORE_Refused_OutOfResources);
			return EC_Normal;
		}
		if (c.bad()) {
			/* Network trouble, or a write that failed on the
			 * dataset's last PDV: DCMTK 3.6.7 then waits for more
			 * of a dataset that has ended, and reports the DIMSE
			 * timeout.  DcmSCU ends the session. */
			unlink(path.c_str());
			set_err(e, "receiving instance %s into %s: %s",
				request->AffectedSOPInstanceUID, path.c_str(), c.text());
			failed(e, STATUS_STORE_Error_CannotUnderstand);
			return c;
		}
		if (finish_file(path, e) != 0) {
			unlink(path.c_str());
			failed(e, STATUS_STORE_Refused_OutOfResources);
			return EC_Normal;
		}

		struct dcm_header h;
		char he[DCM_ERR_MAX];
		if (dcm_read_header(path.c_str(), &h, he) != 0) {
			unlink(path.c_str());
			set_err(e, "instance %s as received: %s", request->AffectedSOPInstanceUID, he);
			failed(e, STATUS_STORE_Error_CannotUnderstand);
			return EC_Normal;
		}
		if (strcmp(h.sop_uid, trim(request->AffectedSOPInstanceUID).c_str()) != 0) {
			unlink(path.c_str());
			set_err(e, "C-STORE announced SOP instance %s but sent %s",
				request->AffectedSOPInstanceUID, h.sop_uid);
			failed(e, STATUS_STORE_Error_CannotUnderstand);
			return EC_Normal;
		}
		if (store_fn(store_arg, &h, path.c_str()) != 0) {
			/* Refused by the caller: not our error, the PACS
			 * counts it as a failed sub-operation. */
			unlink(path.c_str());
			set_status(STATUS_STORE_Error_CannotUnderstand);
		} else {
			set_status(STATUS_Success);
		}
		return EC_Normal;
	}

	OFCondition sendSTOREResponse(T_ASC_PresentationContextID presID, Uint16 status,
		const T_DIMSE_C_StoreRQ &request) override
	{
		/* DcmSCU passes success unless it gave up on the request. */
		if (have_status && status == STATUS_Success)
			status = store_status;
		have_status = false;
		return DcmSCU::sendSTOREResponse(presID, status, request);
	}

	void notifyRECEIVEProgress(const unsigned long byteCount) override
	{
		rx_bytes = byteCount;
	}

private:
	std::string tmp_prefix;
	dimse_store_fn *store_fn;
	void *store_arg;
	unsigned long counter = 0;
	bool have_status = false;
	Uint16 store_status = 0;
	unsigned long rx_bytes = 0;	/* dataset bytes of the current instance */

	void set_status(Uint16 s)
	{
		have_status = true;
		store_status = s;
	}

	void failed(const char *e, Uint16 s)
	{
		if (nerrors++ == 0)
			first_error = e;
		set_status(s);
	}

	/* fsync the file (DCMTK does not) and check that all of it reached
	 * the disk: DCMTK checks its writes but not the final flush when it
	 * closes the file, so a full disk could leave it short.  The size
	 * must be preamble + meta header (its group length says how long) +
	 * the dataset bytes received. */
	int finish_file(const std::string &path, char *e)
	{
		int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			set_err(e, "cannot open %s: %s", path.c_str(), strerror(errno));
			return -1;
		}
		struct stat st;
		unsigned char m[144];
		if (fsync(fd) != 0 || fstat(fd, &st) != 0) {
			set_err(e, "cannot sync %s: %s", path.c_str(), strerror(errno));
			close(fd);
			return -1;
		}
		ssize_t n = pread(fd, m, sizeof m, 0);
		close(fd);
		/* "DICM", then (0002,0000) UL, length 4, explicit VR LE. */
		static const unsigned char gl[] = { 'D', 'I', 'C', 'M', 2, 0, 0, 0, 'U', 'L', 4, 0 };
		if (n == (ssize_t)sizeof m && memcmp(m + 128, gl, sizeof gl) == 0 && rx_bytes > 0) {
			unsigned long long meta = (unsigned long long)m[140] | (unsigned long long)m[141] << 8 |
				(unsigned long long)m[142] << 16 | (unsigned long long)m[143] << 24;
			unsigned long long want = 144 + meta + rx_bytes;
			if ((unsigned long long)st.st_size != want) {
				set_err(e, "%s has %lld bytes, expected %llu (write failed?)",
					path.c_str(), (long long)st.st_size, want);
				return -1;
			}
		}
		return 0;
	}
};

bool uid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 64 && strchr(s, '\\') == NULL;
}

int do_get(const struct dimse_peer *peer, const char *study_uid, const char *series_uid,
	const char *const *sops, int nsops, const char *const *sop_classes, int nclasses,
	const char *tmp_prefix, dimse_store_fn *fn, void *arg, struct dimse_counts *counts,
	char *err)
{
	if (counts != NULL)
		memset(counts, 0, sizeof *counts);
	if (init(err) != 0 || check_peer(peer, err) != 0)
		return -1;
	if (fn == NULL || tmp_prefix == NULL || !tmp_prefix[0]) {
		set_err(err, "dimse_get: bad arguments");
		return -1;
	}
	if (!uid_ok(study_uid) || !uid_ok(series_uid)) {
		set_err(err, "dimse_get: bad study or series UID");
		return -1;
	}

	/* The identifier. */
	DcmDataset q;
	OFCondition c = q.putAndInsertString(DCM_QueryRetrieveLevel, sops ? "IMAGE" : "SERIES");
	if (c.good())
		c = q.putAndInsertString(DCM_StudyInstanceUID, study_uid);
	if (c.good())
		c = q.putAndInsertString(DCM_SeriesInstanceUID, series_uid);
	if (c.good() && sops != NULL) {
		if (nsops < 1) {
			set_err(err, "dimse_get: empty SOP instance list");
			return -1;
		}
		std::string list;
		for (int i = 0; i < nsops; i++) {
			if (!uid_ok(sops[i])) {
				set_err(err, "dimse_get: bad SOP instance UID \"%.70s\"",
					sops[i] ? sops[i] : "(null)");
				return -1;
			}
			if (i > 0)
				list += '\\';
			list += sops[i];
		}
		/* UI has a 16-bit length in explicit VR. */
		if (list.length() > 65534) {
			set_err(err, "dimse_get: %d SOP instances are too many for one C-GET", nsops);
			return -1;
		}
		c = q.putAndInsertString(DCM_SOPInstanceUID, list.c_str());
	}
	if (c.bad()) {
		set_err(err, "cannot build the C-GET identifier: %s", c.text());
		return -1;
	}

	/* Presentation contexts: C-GET, then every (class, syntax) with us
	 * as storage SCP. */
	std::set<std::string> classes;
	for (int i = 0; sop_classes != NULL && i < nclasses; i++) {
		if (!uid_ok(sop_classes[i])) {
			set_err(err, "dimse_get: bad SOP class UID \"%.70s\"",
				sop_classes[i] ? sop_classes[i] : "(null)");
			return -1;
		}
		classes.insert(sop_classes[i]);
	}
	if (classes.empty()) {
		set_err(err, "dimse_get: no SOP class to retrieve");
		return -1;
	}
	if (1 + classes.size() * nstore_syntaxes > max_contexts) {
		set_err(err, "C-GET: %zu SOP classes need %zu presentation contexts, more than %zu",
			classes.size(), 1 + classes.size() * nstore_syntaxes, max_contexts);
		return -1;
	}

	GetSCU scu(tmp_prefix, fn, arg);
	configure(scu, peer);
	scu.setStorageMode(DCMSCU_STORAGE_BIT_PRESERVING);
	scu.setProgressNotificationMode(OFTrue);	/* for the size check */
	OFList<OFString> ts;
	ts.push_back(UID_LittleEndianExplicitTransferSyntax);
	ts.push_back(UID_LittleEndianImplicitTransferSyntax);
	scu.addPresentationContext(UID_GETStudyRootQueryRetrieveInformationModel, ts);
	for (const std::string &cls : classes)
		for (size_t i = 0; i < nstore_syntaxes; i++) {
			OFList<OFString> one;
			one.push_back(store_syntaxes[i]);
			scu.addPresentationContext(cls.c_str(), one, ASC_SC_ROLE_SCP);
		}

	T_ASC_PresentationContextID pc = associate(scu, peer,
		UID_GETStudyRootQueryRetrieveInformationModel, "C-GET", err);
	if (pc == 0)
		return -1;
	bool any = false;
	for (const std::string &cls : classes)
		if (scu.findAnyPresentationContextID(cls.c_str(), "") != 0)
			any = true;
	if (!any) {
		set_err(err, "%s:%d (%s) accepted none of the storage classes for C-GET (%s...)",
			peer->host, peer->port, peer->called_aet, classes.begin()->c_str());
		return -1;
	}

	c = scu.sendCGETRequest(pc, &q, NULL);
	if (c.bad() || !scu.got_final) {
		if (scu.nerrors > 0)
			set_err(err, "C-GET from %s:%d: %s", peer->host, peer->port,
				scu.first_error.c_str());
		else if (c.bad())
			set_err(err, "C-GET from %s:%d: %s", peer->host, peer->port, c.text());
		else
			set_err(err, "C-GET from %s:%d: no final response", peer->host, peer->port);
		return -1;	/* ~DcmSCU aborts */
	}
	scu.releaseAssociation();
	if (counts != NULL)
		*counts = scu.last;
	/* Our own failures come first: they are usually why the PACS
	 * reports failed sub-operations. */
	std::string local;
	if (scu.nerrors > 0)
		local = std::to_string(scu.nerrors) + (scu.nerrors == 1 ? " instance" : " instances") +
			" not stored: " + scu.first_error;
	Uint16 st = scu.final_status;
	if (st != STATUS_Success && (st & 0xF000) != 0xB000) {
		set_err(err, "C-GET failed: %s%sstatus 0x%04X (%s)%s%s", local.c_str(),
			local.empty() ? "" : "; ", (unsigned)st, DU_cgetStatusString(st),
			scu.final_comment.empty() ? "" : ": ", scu.final_comment.c_str());
		return -1;
	}
	if (!local.empty()) {
		set_err(err, "C-GET: %s", local.c_str());
		return -1;
	}
	return 0;
}

} /* namespace */

extern "C" int dimse_find(const struct dimse_peer *peer, enum dimse_level level,
	const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	try {
		return do_find(peer, level, keys, fn, arg, err);
	} catch (const std::exception &e) {
		set_err(err, "DCMTK error: %s", e.what());
	} catch (...) {
		set_err(err, "DCMTK error: unknown exception");
	}
	return -1;
}

extern "C" int dimse_get(const struct dimse_peer *peer, const char *study_uid,
	const char *series_uid, const char *const *sops, int nsops,
	const char *const *sop_classes, int nclasses, const char *tmp_prefix,
	dimse_store_fn *fn, void *arg, struct dimse_counts *counts, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	try {
		return do_get(peer, study_uid, series_uid, sops, nsops, sop_classes, nclasses,
			      tmp_prefix, fn, arg, counts, err);
	} catch (const std::exception &e) {
		set_err(err, "DCMTK error: %s", e.what());
	} catch (...) {
		set_err(err, "DCMTK error: unknown exception");
	}
	return -1;
}
