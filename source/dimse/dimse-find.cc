/* dimse-find.cc - dimse_find(): C-FIND through a DcmSCU subclass. */
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

using namespace dimse_scu;

namespace {

/* ---------------------------------------------------------------- C-FIND */

class FindSCU : public DcmSCU {
public:
	explicit FindSCU(const struct dimse_peer *p) : peer(p)
	{
	}

	/* Before each request on the association. */
	void begin(enum dimse_level level, dimse_match_fn *fn, void *arg)
	{
		lvl = level;
		match_fn = fn;
		match_arg = arg;
		cancelled = got_final = oom = interrupted = false;
		final_status = 0;
		final_comment.clear();
	}

	bool cancelled = false;
	bool got_final = false;
	Uint16 final_status = 0;
	std::string final_comment;
	bool oom = false;
	bool interrupted = false;

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
		if (stopping(peer)) {
			interrupted = cancelled = true;
			waitForNextResponse = OFFalse;
			sendCANCELRequest(presID);
			return EC_Normal;
		}
		struct dimse_match m;
		if (fill(response->m_dataset, &m) != 0) {
			oom = cancelled = true;
			waitForNextResponse = OFFalse;
			sendCANCELRequest(presID);
			return EC_Normal;
		}
		int stop = match_fn(match_arg, &m);
		dcm_header_free(&m.h);
		if (stop != 0) {
			cancelled = true;
			waitForNextResponse = OFFalse;
			/* The PACS may have more responses in flight; the
			 * caller aborts the association after this. */
			sendCANCELRequest(presID);
		}
		return EC_Normal;
	}

private:
	const struct dimse_peer *peer;
	enum dimse_level lvl = DIMSE_PATIENT;
	dimse_match_fn *match_fn = NULL;
	void *match_arg = NULL;

	/* tag's value, trimmed, into *out: malloc'd, NULL when missing or
	 * empty.  -1 when out of memory. */
	static int dup_value(DcmDataset *ds, const DcmTagKey &tag, char **out)
	{
		OFString raw;
		*out = NULL;
		if (ds->findAndGetOFStringArray(tag, raw).bad())
			return 0;
		std::string v = trim(raw);
		if (v.empty())
			return 0;
		*out = strdup(v.c_str());
		return *out == NULL ? -1 : 0;
	}

	/* m from ds, as far as it can be read: a value too long leaves its
	 * field "" and says so in m->bad (the first such); a malformed count
	 * is no count.  -1 only when out of memory. */
	int fill(DcmDataset *ds, struct dimse_match *m)
	{
		memset(m, 0, sizeof *m);
		m->nrelated = m->nseries = -1;
		struct dcm_header *h = &m->h;
		char e[DCM_ERR_MAX];
		auto spoil = [&](int rc) {
			if (rc != 0 && m->bad[0] == '\0')
				OFStandard::strlcpy(m->bad, e, sizeof m->bad);
		};
		if (ds == NULL) {
			snprintf(m->bad, sizeof m->bad, "a pending C-FIND response without identifier");
			return 0;
		}
		spoil(get(ds, DCM_PatientID, "PatientID", h->patient_id, sizeof h->patient_id, e));
		spoil(get(ds, DCM_StudyInstanceUID, "StudyInstanceUID", h->study_uid,
			sizeof h->study_uid, e));
		spoil(get(ds, DCM_SeriesInstanceUID, "SeriesInstanceUID", h->series_uid,
			sizeof h->series_uid, e));
		spoil(get(ds, DCM_SOPInstanceUID, "SOPInstanceUID", h->sop_uid, sizeof h->sop_uid, e));
		spoil(get(ds, DCM_SOPClassUID, "SOPClassUID", h->sop_class, sizeof h->sop_class, e));
		spoil(get(ds, DCM_Modality, "Modality", h->modality, sizeof h->modality, e));
		spoil(get(ds, DCM_StudyDate, "StudyDate", h->study_date, sizeof h->study_date, e));
		if (lvl == DIMSE_SERIES &&
		    get_count(ds, DCM_NumberOfSeriesRelatedInstances,
			      "NumberOfSeriesRelatedInstances", &m->nrelated, e) != 0)
			m->nrelated = -1;
		if (lvl == DIMSE_STUDY &&
		    get_count(ds, DCM_NumberOfStudyRelatedInstances,
			      "NumberOfStudyRelatedInstances", &m->nrelated, e) != 0)
			m->nrelated = -1;
		if (lvl == DIMSE_STUDY &&
		    get_count(ds, DCM_NumberOfStudyRelatedSeries,
			      "NumberOfStudyRelatedSeries", &m->nseries, e) != 0)
			m->nseries = -1;
		/* Too many classes to keep: as if not said (the fetch then asks
		 * instance by instance). */
		if (lvl == DIMSE_STUDY &&
		    get(ds, DCM_SOPClassesInStudy, "SOPClassesInStudy", m->sop_classes,
			sizeof m->sop_classes, e) != 0)
			m->sop_classes[0] = '\0';
		/* Shown, never matched: whole however long (dicom.h). */
		if (lvl == DIMSE_SERIES &&
		    (dup_value(ds, DCM_SeriesNumber, &h->series_number) ||
		     dup_value(ds, DCM_SeriesDescription, &h->series_desc))) {
			dcm_header_free(h);
			return -1;
		}
		return 0;
	}
};

bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The C-FIND identifier: QueryRetrieveLevel, the level's return keys
 * (empty, or the matching value), and every matching key given that
 * belongs to the level; above it only the unique keys of the model
 * (patient_root: Patient Root, where PatientID is the patient level's;
 * else Study Root, where the study is the top level). */
OFCondition build_query(DcmDataset &q, enum dimse_level level, bool patient_root,
	const struct dimse_keys *k)
{
	static const char *const names[] = { "PATIENT", "STUDY", "SERIES", "IMAGE" };
	const char *patient_id = k ? k->patient_id : NULL;
	const char *study_uid = k ? k->study_uid : NULL;
	const char *series_uid = k ? k->series_uid : NULL;
	const char *study_date = k ? k->study_date : NULL;
	const char *modality = k ? k->modality : NULL;

	OFCondition c = q.putAndInsertString(DCM_QueryRetrieveLevel, names[level]);
	auto key = [&](const DcmTagKey &tag, const char *v, bool ret) {
		if (c.good() && (ret || set(v)))
			c = q.putAndInsertString(tag, set(v) ? v : "");
	};
	switch (level) {
	case DIMSE_PATIENT:
		key(DCM_PatientID, patient_id, true);
		break;
	case DIMSE_STUDY:
		key(DCM_PatientID, patient_id, true);
		key(DCM_StudyInstanceUID, study_uid, true);
		key(DCM_StudyDate, study_date, true);
		/* Modality is a series attribute; at STUDY level the same
		 * filter is ModalitiesInStudy. */
		key(DCM_ModalitiesInStudy, modality, false);
		key(DCM_NumberOfStudyRelatedSeries, NULL, true);
		key(DCM_NumberOfStudyRelatedInstances, NULL, true);
		key(DCM_SOPClassesInStudy, NULL, true);
		break;
	case DIMSE_SERIES:
		if (patient_root)
			key(DCM_PatientID, patient_id, false);
		key(DCM_StudyInstanceUID, study_uid, false);
		key(DCM_SeriesInstanceUID, series_uid, true);
		key(DCM_Modality, modality, true);
		key(DCM_NumberOfSeriesRelatedInstances, NULL, true);
		key(DCM_SeriesNumber, NULL, true);
		key(DCM_SeriesDescription, NULL, true);
		break;
	case DIMSE_IMAGE:
		if (patient_root)
			key(DCM_PatientID, patient_id, false);
		key(DCM_StudyInstanceUID, study_uid, false);
		key(DCM_SeriesInstanceUID, series_uid, false);
		key(DCM_SOPInstanceUID, NULL, true);
		key(DCM_SOPClassUID, NULL, true);
		break;
	}
	return c;
}

} /* namespace */

/* One association for many C-FINDs: opened at the first, kept while it
 * works, opened again after the PACS ended it. */
struct dimse_finder {
	struct dimse_peer peer;	/* the caller's, strings borrowed */
	tls_layer tls;		/* declared first: outlives scu */
	std::unique_ptr<FindSCU> scu;
	int requests = 0;	/* made on this association */
	unsigned status = 0;	/* the last request's final status */
};

namespace {

void finder_close(struct dimse_finder *f, bool abort)
{
	if (f->scu && f->scu->isConnected()) {
		if (abort)
			f->scu->abortAssociation();
		else
			f->scu->releaseAssociation();
	}
	f->scu.reset();
	f->tls.layer.reset();
	f->requests = 0;
}

int finder_open(struct dimse_finder *f, char *err)
{
	finder_close(f, true);
	f->scu.reset(new FindSCU(&f->peer));
	configure(*f->scu, &f->peer);
	f->scu->setProgressNotificationMode(OFFalse);
	/* Both models on one association: each request takes the one its
	 * keys fit. */
	propose_models(*f->scu, find_models, true);
	int rc = associate(*f->scu, &f->peer, f->tls, "C-FIND", err);
	if (rc != 0)
		finder_close(f, true);
	return rc;
}

int do_find(struct dimse_finder *f, enum dimse_level level,
	const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char *err)
{
	const struct dimse_peer *peer = &f->peer;

	if (init(err) != 0 || check_peer(peer, err) != 0)
		return -1;
	if (fn == NULL || level < DIMSE_PATIENT || level > DIMSE_IMAGE) {
		dcm_errf(err, "dimse_find: bad arguments");
		return -1;
	}
	bool patient_root = patient_root_fits(level, keys ? keys->patient_id : NULL);
	f->status = 0;
	for (int attempt = 0;; attempt++) {
		bool reused = f->scu != NULL && f->scu->isConnected();
		if (!reused) {
			int rc = finder_open(f, err);
			if (rc != 0)
				return rc;
		}
		FindSCU &scu = *f->scu;
		const char *model;
		T_ASC_PresentationContextID pc = model_context(scu, peer, find_models, patient_root,
			&model, "C-FIND", err);
		if (pc == 0)
			return -1;
		if (level == DIMSE_PATIENT && model != find_models.patient_root) {
			dcm_errf(err, "%s:%d (%s) refused the Patient Root model", peer->host,
				peer->port, peer->called_aet);
			return DIMSE_NO_PATIENT_ROOT;
		}
		DcmDataset q;
		OFCondition c = build_query(q, level, model == find_models.patient_root, keys);
		if (c.bad()) {
			dcm_errf(err, "cannot build the C-FIND identifier: %s", c.text());
			return -1;
		}
		scu.begin(level, fn, arg);
		f->requests++;
		c = scu.sendFINDRequest(pc, &q, NULL);
		if (scu.cancelled) {
			/* The PACS may still be answering: the association is
			 * out of step. */
			bool oom = scu.oom, interrupted = scu.interrupted;
			finder_close(f, true);
			dcm_errf(err, oom ? "out of memory" : interrupted ? "interrupted" : "cancelled");
			return -1;
		}
		if (c.bad() && reused && attempt == 0 && !scu.got_final) {
			/* The PACS may have ended an association idle too
			 * long for it: once on a new one. */
			finder_close(f, true);
			continue;
		}
		if (c.bad()) {
			dcm_errf(err, "C-FIND with %s:%d: %s%s", peer->host, peer->port, c.text(),
				abort_hint(c));
			finder_close(f, true);
			return -1;
		}
		if (!scu.got_final) {
			dcm_errf(err, "C-FIND with %s:%d: no final response", peer->host, peer->port);
			finder_close(f, true);
			return -1;
		}
		f->status = scu.final_status;
		if (scu.final_status != STATUS_Success) {
			dcm_errf(err, "C-FIND failed: status 0x%04X (%s)%s%s",
				(unsigned)scu.final_status, DU_cfindStatusString(scu.final_status),
				scu.final_comment.empty() ? "" : ": ", scu.final_comment.c_str());
			return DIMSE_FIND_REFUSED;
		}
		return 0;
	}
}

} /* namespace */

extern "C" struct dimse_finder *dimse_finder_new(const struct dimse_peer *peer)
{
	try {
		struct dimse_finder *f = new dimse_finder;
		f->peer = *peer;
		return f;
	} catch (...) {
		return NULL;
	}
}

extern "C" void dimse_finder_free(struct dimse_finder *f)
{
	if (f == NULL)
		return;
	try {
		finder_close(f, false);
	} catch (...) {
	}
	delete f;
}

extern "C" int dimse_finder_find(struct dimse_finder *f, enum dimse_level level,
	const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	try {
		return do_find(f, level, keys, fn, arg, err);
	} catch (const std::exception &e) {
		dcm_errf(err, "DCMTK error: %s", e.what());
	} catch (...) {
		dcm_errf(err, "DCMTK error: unknown exception");
	}
	try {
		finder_close(f, true);
	} catch (...) {
	}
	return -1;
}

extern "C" unsigned dimse_finder_status(const struct dimse_finder *f)
{
	return f->status;
}

extern "C" int dimse_find(const struct dimse_peer *peer, enum dimse_level level,
	const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	struct dimse_finder *f = dimse_finder_new(peer);

	if (f == NULL) {
		snprintf(err, DCM_ERR_MAX, "out of memory");
		return -1;
	}
	int rc = dimse_finder_find(f, level, keys, fn, arg, err);
	dimse_finder_free(f);
	return rc;
}
