/*
 * dimse-move.cc - dimse_move(): C-MOVE to a destination AE, normally our
 * own storage SCP (dimse-scp.cc).
 *
 * C-MOVE: our own response loop (DcmSCU::sendMOVERequest gives up at the
 * first DIMSE timeout).  Pending responses are optional in C-MOVE, so a
 * PACS may stay silent while it stores a big series: a DIMSE timeout on
 * the C-MOVE association counts as a timeout only if C-STORE data reached
 * this process's SCP since the last one (any C-MOVE's: there is no telling
 * them apart; DCMTK reports progress by PDV, up to 128 KB).  When a C-MOVE
 * fails, its message ends with the SCP's last trouble meanwhile (an
 * instance refused or not stored, an association rejected), or says that
 * nothing reached the SCP at all.
 *
 * Orthanc (1.10.1) ends a C-MOVE at the first C-STORE we do not answer
 * with success: final status 0xC000, every count 0, the rest not sent.
 * It answers 0xC000, not 0xA801, to a destination it does not know.
 */
#include "dimse-scu.h"

#include <dcmtk/dcmnet/scpthrd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace dimse_scu;
namespace {

class MoveSCU : public DcmSCU {
public:
	struct dimse_counts last = { 0, 0, 0, 0, 0 };
	bool got_final = false;
	bool timed_out = false;
	bool cancelled = false;	/* the caller wanted out: C-CANCEL sent */
	bool stored = false;	/* some C-STORE reached the SCP meanwhile */
	unsigned long notes = note_seq.load();	/* to see the SCP's trouble */
	Uint16 final_status = 0;
	std::string final_comment;

	/* Send the C-MOVE and read its responses up to the final one,
	 * looking each second whether peer's caller wants out. */
	OFCondition move(const struct dimse_peer *peer, T_ASC_PresentationContextID pc,
		const char *model, const char *dest, int msg_id, DcmDataset *q)
	{
		T_DIMSE_Message msg;
		memset(&msg, 0, sizeof msg);
		msg.CommandField = DIMSE_C_MOVE_RQ;
		T_DIMSE_C_MoveRQ &req = msg.msg.CMoveRQ;
		/* The only request on this association: its ID is the
		 * caller's, to tell its C-STOREs from other moves'. */
		req.MessageID = (Uint16)msg_id;
		req.DataSetType = DIMSE_DATASET_PRESENT;
		req.Priority = DIMSE_PRIORITY_LOW;	/* as DcmSCU's C-GET */
		OFStandard::strlcpy(req.AffectedSOPClassUID, model, sizeof req.AffectedSOPClassUID);
		OFStandard::strlcpy(req.MoveDestination, dest, sizeof req.MoveDestination);
		unsigned long long before = store_activity.load(), seen = before;
		OFCondition c = sendDIMSEMessage(pc, &msg, q);
		if (c.bad())
			return c;

		for (int idle = 0;;) {
			T_DIMSE_Message rsp;
			memset(&rsp, 0, sizeof rsp);
			DcmDataset *sd = NULL;
			T_ASC_PresentationContextID id = pc;
			if (stopping(peer)) {
				cancel(pc, msg_id);
				return DIMSE_READPDVFAILED;	/* the caller aborts */
			}
			c = receiveDIMSECommand(&id, &rsp, &sd, NULL, 1);
			std::unique_ptr<DcmDataset> detail(sd);
			if (c == DIMSE_NODATAAVAILABLE) {
				unsigned long long now = store_activity.load();
				if (now != seen) {
					seen = now;	/* the PACS is busy sending */
					idle = 0;
					continue;
				}
				if (++idle < peer->timeout)
					continue;
				timed_out = true;
				return c;
			}
			if (c.bad())
				return c;
			if (rsp.CommandField != DIMSE_C_MOVE_RSP)
				return DIMSE_BADCOMMANDTYPE;
			const T_DIMSE_C_MoveRSP &r = rsp.msg.CMoveRSP;
			if (r.DataSetType != DIMSE_DATASET_NULL) {
				/* Failed SOP Instance UID List: the counts
				 * say enough. */
				DcmDataset *ds = NULL;
				c = receiveDIMSEDataset(&id, &ds);
				delete ds;
				if (c.bad())
					return c;
			}
			last.completed = r.opts & O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS
				? r.NumberOfCompletedSubOperations : 0;
			last.failed = r.opts & O_MOVE_NUMBEROFFAILEDSUBOPERATIONS
				? r.NumberOfFailedSubOperations : 0;
			last.warning = r.opts & O_MOVE_NUMBEROFWARNINGSUBOPERATIONS
				? r.NumberOfWarningSubOperations : 0;
			last.remaining = r.opts & O_MOVE_NUMBEROFREMAININGSUBOPERATIONS
				? r.NumberOfRemainingSubOperations : 0;
			last.status = r.DimseStatus;
			if (DICOM_PENDING_STATUS(r.DimseStatus))
				continue;
			got_final = true;
			stored = store_activity.load() != before;
			final_status = r.DimseStatus;
			final_comment = error_comment(detail.get());
			return EC_Normal;
		}
	}

private:
	/* C-CANCEL of our C-MOVE (its Message ID is ours, not DcmSCU's). */
	void cancel(T_ASC_PresentationContextID pc, int msg_id)
	{
		T_DIMSE_Message msg;
		memset(&msg, 0, sizeof msg);
		msg.CommandField = DIMSE_C_CANCEL_RQ;
		msg.msg.CCancelRQ.MessageIDBeingRespondedTo = (Uint16)msg_id;
		msg.msg.CCancelRQ.DataSetType = DIMSE_DATASET_NULL;
		cancelled = true;
		sendDIMSEMessage(pc, &msg, NULL);
	}
};

int do_move(const struct dimse_peer *peer, const char *dest_aet, int msg_id,
	const char *patient_id, const char *study_uid, const char *series_uid, const char *const *sops, int nsops, struct dimse_counts *counts,
	char *err)
{
	if (counts != NULL)
		memset(counts, 0, sizeof *counts);
	if (init(err) != 0 || check_peer(peer, err) != 0)
		return -1;
	if (!aet_ok(dest_aet)) {
		dcm_errf(err, "dimse_move: the destination AE title must be 1-16 characters");
		return -1;
	}
	bool patient_root = patient_root_fits(DIMSE_SERIES, patient_id);
	tls_layer tls;		/* outlives scu */
	MoveSCU scu;
	configure(scu, peer);
	scu.setProgressNotificationMode(OFFalse);
	propose_models(scu, move_models, patient_root);
	if (associate(scu, peer, tls, "C-MOVE", err) != 0)
		return -1;	/* ~DcmSCU aborts an open association */
	const char *model;
	DcmDataset q;
	T_ASC_PresentationContextID pc = retrieve_context(scu, peer, move_models, patient_root,
		patient_id, study_uid, series_uid, sops, nsops, "dimse_move", "C-MOVE", q, &model, err);
	if (pc == 0)
		return -1;

	OFCondition c = scu.move(peer, pc, model, dest_aet, msg_id, &q);
	if (scu.cancelled) {
		scu.abortAssociation();
		dcm_errf(err, "interrupted");
		return -1;
	}
	/* What our SCP had to say meanwhile, usually why the PACS failed;
	 * maybe about a concurrent C-MOVE. */
	std::string why;
	if (note_seq.load() != scu.notes)
		why = "; storage SCP: " + last_note();
	if (c.bad() || !scu.got_final) {
		if (scu.timed_out)
			dcm_errf(err, "C-MOVE from %s:%d: no response and no instance for %d s%s",
				peer->host, peer->port, peer->timeout, why.c_str());
		else if (c.bad())
			dcm_errf(err, "C-MOVE from %s:%d: %s%s", peer->host, peer->port, c.text(),
				why.c_str());
		else
			dcm_errf(err, "C-MOVE from %s:%d: no final response%s", peer->host, peer->port,
				why.c_str());
		return -1;	/* ~DcmSCU aborts */
	}
	scu.releaseAssociation();
	if (counts != NULL)
		*counts = scu.last;
	Uint16 st = scu.final_status;
	if (st == STATUS_MOVE_Failed_MoveDestinationUnknown) {
		dcm_errf(err, "C-MOVE failed: status 0x%04X (%s): the PACS does not know AE %s; "
			"add it to the PACS's DICOM nodes", (unsigned)st, DU_cmoveStatusString(st),
			dest_aet);
		return -1;
	}
	if (st != STATUS_Success && (st & 0xF000) != 0xB000) {
		/* Orthanc answers 0xC000 to an unknown destination too, and
		 * to one it cannot reach.  The hint is left out when another
		 * C-MOVE's instances arrived meanwhile. */
		std::string hint = why;
		if (!scu.stored && why.empty())
			hint = std::string("; nothing reached our storage SCP: does the PACS know AE ") +
				dest_aet + " (this host, the store port)?";
		dcm_errf(err, "C-MOVE failed: status 0x%04X (%s)%s%s%s", (unsigned)st,
			DU_cmoveStatusString(st), scu.final_comment.empty() ? "" : ": ",
			scu.final_comment.c_str(), hint.c_str());
		return -1;
	}
	return 0;
}

} /* namespace */

extern "C" int dimse_move(const struct dimse_peer *peer, const char *dest_aet, int msg_id,
	const char *patient_id, const char *study_uid, const char *series_uid,
	const char *const *sops, int nsops, struct dimse_counts *counts, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	try {
		if (msg_id < 1 || msg_id > 65535) {
			dcm_errf(err, "C-MOVE: message ID %d out of range", msg_id);
			return -1;
		}
		return do_move(peer, dest_aet, msg_id, patient_id, study_uid, series_uid, sops,
			nsops, counts, err);
	} catch (const std::exception &e) {
		dcm_errf(err, "DCMTK error: %s", e.what());
	} catch (...) {
		dcm_errf(err, "DCMTK error: unknown exception");
	}
	return -1;
}
