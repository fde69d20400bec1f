/*
 * dimse-get.cc - dimse_get(): C-GET with the storage role on the same
 * association; what arrives is streamed to temp files (see dimse.cc).
 * Also the retrieval helpers dimse-move.cc shares (dimse-scu.h): the
 * storage transfer syntaxes, the identifier, and the checks of an
 * instance received into a file.
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

bool uid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 64 && strchr(s, '\\') == NULL;
}

int retrieve_identifier(DcmDataset &q, const char *patient_id, const char *study_uid,
	const char *series_uid, const char *const *sops, int nsops, const char *fn,
	const char *op, char *err)
{
	if (!uid_ok(study_uid) || !uid_ok(series_uid)) {
		dcm_errf(err, "%s: bad study or series UID", fn);
		return -1;
	}
	OFCondition c = q.putAndInsertString(DCM_QueryRetrieveLevel, sops ? "IMAGE" : "SERIES");
	if (c.good() && patient_id != NULL)
		c = q.putAndInsertString(DCM_PatientID, patient_id);
	if (c.good())
		c = q.putAndInsertString(DCM_StudyInstanceUID, study_uid);
	if (c.good())
		c = q.putAndInsertString(DCM_SeriesInstanceUID, series_uid);
	if (c.good() && sops != NULL) {
		if (nsops < 1) {
			dcm_errf(err, "%s: empty SOP instance list", fn);
			return -1;
		}
		std::string list;
		for (int i = 0; i < nsops; i++) {
			if (!uid_ok(sops[i])) {
				dcm_errf(err, "%s: bad SOP instance UID \"%.70s\"", fn,
					sops[i] ? sops[i] : "(null)");
				return -1;
			}
			if (i > 0)
				list += '\\';
			list += sops[i];
		}
		/* UI has a 16-bit length in explicit VR. */
		if (list.length() > 65534) {
			dcm_errf(err, "%s: %d SOP instances are too many for one %s", fn, nsops, op);
			return -1;
		}
		c = q.putAndInsertString(DCM_SOPInstanceUID, list.c_str());
	}
	if (c.bad()) {
		dcm_errf(err, "cannot build the %s identifier: %s", op, c.text());
		return -1;
	}
	return 0;
}

T_ASC_PresentationContextID retrieve_context(DcmSCU &scu, const struct dimse_peer *p,
	const struct qr_models &m, bool patient_root, const char *patient_id,
	const char *study_uid, const char *series_uid, const char *const *sops, int nsops,
	const char *fn, const char *op, DcmDataset &q, const char **model, char *err)
{
	T_ASC_PresentationContextID pc = model_context(scu, p, m, patient_root, model, op, err);

	if (pc == 0 || retrieve_identifier(q, *model == m.patient_root ? patient_id : NULL,
			study_uid, series_uid, sops, nsops, fn, op, err) != 0)
		return 0;
	return pc;
}

/* Check that all of the file was written: DCMTK checks its writes but not
 * the final flush when it closes the file, so a full disk could leave it
 * short.  The size must be preamble + meta header (its group length says
 * how long) + the dataset bytes received.  No fsync here, on the way of
 * every C-STORE: the callee fsyncs before it gives the file its name
 * (dimse-fetch.c, on a thread of its own while the next one arrives). */
static int finish_file(const std::string &path, unsigned long rx_bytes, char *e)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		dcm_errf(e, "cannot open %s: %s", path.c_str(), strerror(errno));
		return -1;
	}
	struct stat st;
	unsigned char m[144];
	if (fstat(fd, &st) != 0) {
		dcm_errf(e, "cannot stat %s: %s", path.c_str(), strerror(errno));
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
			dcm_errf(e, "%s has %lld bytes, expected %llu (write failed?)",
				path.c_str(), (long long)st.st_size, want);
			return -1;
		}
	}
	return 0;
}

int store_received(const std::string &path, unsigned long rx_bytes, const char *sop_uid,
	dimse_store_fn *fn, void *arg, Uint16 *status, char *e)
{
	if (finish_file(path, rx_bytes, e) != 0) {
		unlink(path.c_str());
		*status = STATUS_STORE_Refused_OutOfResources;
		return -1;
	}
	struct dcm_header h;
	char he[DCM_ERR_MAX];
	if (dcm_read_header(path.c_str(), &h, he) != 0) {
		unlink(path.c_str());
		dcm_errf(e, "instance %s as received: %s", sop_uid, he);
		*status = STATUS_STORE_Error_CannotUnderstand;
		return -1;
	}
	/* Only the UIDs are looked at here and in fn. */
	dcm_header_free(&h);
	if (strcmp(h.sop_uid, trim(sop_uid).c_str()) != 0) {
		unlink(path.c_str());
		dcm_errf(e, "C-STORE announced SOP instance %s but sent %s", sop_uid, h.sop_uid);
		*status = STATUS_STORE_Error_CannotUnderstand;
		return -1;
	}
	if (fn(arg, &h, path.c_str()) != 0) {
		/* Refused by the caller: not our error, the PACS counts
		 * it as a failed sub-operation. */
		unlink(path.c_str());
		*status = STATUS_STORE_Error_CannotUnderstand;
		return 1;
	}
	*status = STATUS_Success;
	return 0;
}

} /* namespace dimse_scu */

using namespace dimse_scu;

namespace {

/* ----------------------------------------------------------------- C-GET */

const size_t max_contexts = 128;
/* The C-GET contexts themselves: Patient Root and Study Root. */
const size_t qr_contexts = 2;

class GetSCU : public DcmSCU {
public:
	GetSCU(const struct dimse_peer *p, const char *prefix, dimse_store_fn *fn, void *arg)
		: peer(p), tmp_prefix(prefix), store_fn(fn), store_arg(arg)
	{
	}

	T_ASC_PresentationContextID get_pc = 0;	/* the C-GET's, for C-CANCEL */
	bool cancelled = false;

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
			if (stop())
				return EC_Normal;	/* the session ends here */
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
		if (stop())
			return DIMSE_READPDVFAILED;	/* ends the session; we abort */
		std::string path = tmp_prefix + std::to_string(++counter);
		char e[DCM_ERR_MAX];

		/* Create it ourselves first: if that fails, the dataset can
		 * still be skipped and the C-STORE refused, and the session
		 * goes on.  (DcmSCU would end it.) */
		int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0) {
			dcm_errf(e, "cannot create %s: %s", path.c_str(), strerror(errno));
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
			dcm_errf(e, "cannot write %s: %s", path.c_str(), c.text());
			failed(e, STATUS_STORE_Refused_OutOfResources);
			return EC_Normal;
		}
		if (c.bad()) {
			/* Network trouble, or a write that failed on the
			 * dataset's last PDV: DCMTK 3.6.7 then waits for more
			 * of a dataset that has ended, and reports the DIMSE
			 * timeout.  DcmSCU ends the session. */
			unlink(path.c_str());
			dcm_errf(e, "receiving instance %s into %s: %s",
				request->AffectedSOPInstanceUID, path.c_str(), c.text());
			failed(e, STATUS_STORE_Error_CannotUnderstand);
			return c;
		}
		Uint16 status;
		if (store_received(path, rx_bytes, request->AffectedSOPInstanceUID,
				   store_fn, store_arg, &status, e) < 0)
			failed(e, status);
		else
			set_status(status);
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
	const struct dimse_peer *peer;
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

	/* The caller wants out: ask the PACS to stop sending (C-CANCEL),
	 * once; the association is aborted when the session has ended. */
	bool stop()
	{
		if (!cancelled && stopping(peer)) {
			cancelled = true;
			sendCANCELRequest(get_pc);
		}
		return cancelled;
	}
};

int do_get(const struct dimse_peer *peer, const char *patient_id, const char *study_uid,
	const char *series_uid,
	const char *const *sops, int nsops, const char *const *sop_classes, int nclasses,
	const char *tmp_prefix, dimse_store_fn *fn, void *arg, struct dimse_counts *counts,
	char *err)
{
	if (counts != NULL)
		memset(counts, 0, sizeof *counts);
	if (init(err) != 0 || check_peer(peer, err) != 0)
		return -1;
	if (fn == NULL || tmp_prefix == NULL || !tmp_prefix[0]) {
		dcm_errf(err, "dimse_get: bad arguments");
		return -1;
	}
	/* Presentation contexts: C-GET, then every (class, syntax) with us
	 * as storage SCP. */
	std::set<std::string> classes;
	for (int i = 0; sop_classes != NULL && i < nclasses; i++) {
		if (!uid_ok(sop_classes[i])) {
			dcm_errf(err, "dimse_get: bad SOP class UID \"%.70s\"",
				sop_classes[i] ? sop_classes[i] : "(null)");
			return -1;
		}
		classes.insert(sop_classes[i]);
	}
	if (classes.empty()) {
		dcm_errf(err, "dimse_get: no SOP class to retrieve");
		return -1;
	}
	if (classes.size() > (size_t)dimse_get_max_classes()) {
		dcm_errf(err, "C-GET: %zu SOP classes need %zu presentation contexts, more than %zu",
			classes.size(), 2 + classes.size() * nstore_syntaxes, max_contexts);
		return -1;
	}

	bool patient_root = patient_root_fits(DIMSE_SERIES, patient_id);
	tls_layer tls;		/* outlives scu */
	GetSCU scu(peer, tmp_prefix, fn, arg);
	configure(scu, peer);
	scu.setStorageMode(DCMSCU_STORAGE_BIT_PRESERVING);
	scu.setProgressNotificationMode(OFTrue);	/* for the size check */
	propose_models(scu, get_models, patient_root);
	for (const std::string &cls : classes)
		for (size_t i = 0; i < nstore_syntaxes; i++) {
			OFList<OFString> one;
			one.push_back(store_syntaxes[i]);
			scu.addPresentationContext(cls.c_str(), one, ASC_SC_ROLE_SCP);
		}

	if (associate(scu, peer, tls, "C-GET", err) != 0)
		return -1;
	const char *model;
	DcmDataset q;
	T_ASC_PresentationContextID pc = retrieve_context(scu, peer, get_models, patient_root,
		patient_id, study_uid, series_uid, sops, nsops, "dimse_get", "C-GET", q, &model, err);
	if (pc == 0)
		return -1;
	bool any = false;
	for (const std::string &cls : classes)
		if (scu.findAnyPresentationContextID(cls.c_str(), "") != 0)
			any = true;
	if (!any) {
		dcm_errf(err, "%s:%d (%s) accepted none of the storage classes for C-GET (%s...)",
			peer->host, peer->port, peer->called_aet, classes.begin()->c_str());
		return -1;
	}

	scu.get_pc = pc;
	OFCondition c = scu.sendCGETRequest(pc, &q, NULL);
	if (scu.cancelled) {
		dcm_errf(err, "interrupted");
		scu.abortAssociation();
		return -1;
	}
	if (c.bad() || !scu.got_final) {
		if (scu.nerrors > 0)
			dcm_errf(err, "C-GET from %s:%d: %s", peer->host, peer->port,
				scu.first_error.c_str());
		else if (c.bad())
			dcm_errf(err, "C-GET from %s:%d: %s%s", peer->host, peer->port, c.text(),
				abort_hint(c));
		else
			dcm_errf(err, "C-GET from %s:%d: no final response", peer->host, peer->port);
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
		dcm_errf(err, "C-GET failed: %s%sstatus 0x%04X (%s)%s%s", local.c_str(),
			local.empty() ? "" : "; ", (unsigned)st, DU_cgetStatusString(st),
			scu.final_comment.empty() ? "" : ": ", scu.final_comment.c_str());
		return -1;
	}
	if (!local.empty()) {
		dcm_errf(err, "C-GET: %s", local.c_str());
		return -1;
	}
	return 0;
}

} /* namespace */

extern "C" int dimse_get_max_classes(void)
{
	return (int)((max_contexts - qr_contexts) / nstore_syntaxes);
}

extern "C" int dimse_get(const struct dimse_peer *peer, const char *patient_id,
	const char *study_uid, const char *series_uid, const char *const *sops, int nsops,
	const char *const *sop_classes, int nclasses, const char *tmp_prefix,
	dimse_store_fn *fn, void *arg, struct dimse_counts *counts, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	try {
		return do_get(peer, patient_id, study_uid, series_uid, sops, nsops, sop_classes, nclasses,
			      tmp_prefix, fn, arg, counts, err);
	} catch (const std::exception &e) {
		dcm_errf(err, "DCMTK error: %s", e.what());
	} catch (...) {
		dcm_errf(err, "DCMTK error: unknown exception");
	}
	return -1;
}
