/*
 * dimse-scp.cc - one association of the storage SCP a PACS sends C-MOVE'd
 * instances to (scp_serve); dimse-listen.cc accepts the connections and
 * lets only the PACS's AE title in, dimse-move.cc asks for the instances.
 *
 * Each association runs in a DcmThreadSCP (DcmSCP's association handling:
 * A-ASSOCIATE checks, acknowledge or reject, release, abort, C-ECHO) on
 * its connection's thread.  DCMTK 3.6.7's DcmSCPPool does not fit (see
 * dimse-listen.cc); its workers could not see their T_ASC_Association,
 * needed to negotiate and to discard a dataset.
 *
 * Presentation contexts: every storage SOP class DCMTK knows and
 * Verification.  For each context the PACS proposes we take the first of
 * its transfer syntaxes that is in store_syntaxes: the PACS's own order,
 * in which its stored syntax normally comes first; choosing by our order
 * could make a PACS that proposes several syntaxes in one context
 * transcode (lossy JPEG, even) what it holds.
 *
 * Each C-STORE: route() picks the sink before any data is read; the
 * dataset is then streamed bit-preserving (DcmSCP::receiveSTORERequest
 * with a file name: meta header + the dataset as it came over the wire)
 * to <sink.tmp_prefix><n>, n from a process-wide counter, and finished as
 * dimse-get.cc does (store_received: size check, header, SOP instance
 * check, the sink's verdict; the sink fsyncs before it renames).  A
 * C-STORE nobody asked for (route() returns -1) is read off the wire and
 * discarded.
 *
 * Statuses of our C-STORE responses (with an Error Comment when ours):
 *  0x0000 the sink took the instance;
 *  0xC000 (Error: Cannot understand) the sink refused it, route() refused
 *         it, or it did not parse / was not the announced instance.  For
 *         route()'s refusal 0xC000 rather than 0xA900 (data set does not
 *         match SOP class): the data set was never looked at, 0xA900
 *         would name a fault it does not have, and 0xC000 is what
 *         dimse-get.cc answers when the callee refuses.  (0xA801 is a
 *         C-MOVE status, never a C-STORE one.)
 *  0xA700 (Refused: Out of resources) the temp file could not be created,
 *         written, synced or came out short.
 *
 * An association ends when the PACS releases or aborts it; when it sits
 * idle (no command for a second) once the SCP stops or the listener
 * evicted it to make room for another association of the PACS; and when
 * idle for the timeout (DcmSCP would do the latter only, waiting up to the
 * timeout).  DCMTK's A-ABORT waits for the peer to close the connection:
 * a peer that does not costs up to the timeout more.
 */
#include "dimse-scp.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace dimse_scu;

/* Shared with dimse-move.cc: C-STORE activity and the SCP's last trouble. */
namespace dimse_scu {

std::atomic<unsigned long long> store_activity(0);
std::atomic<unsigned long> note_seq(0);

static std::mutex note_mu;
static std::string note_text;

void note(const char *msg)
{
	std::lock_guard<std::mutex> lock(note_mu);
	note_text = msg;
	note_seq++;
}

std::string last_note()
{
	std::lock_guard<std::mutex> lock(note_mu);
	return note_text;
}

} /* namespace dimse_scu */

namespace {

/* Temp file numbers, for every sink of every SCP in the process. */
std::atomic<unsigned long> tmp_counter(0);

} /* namespace */

namespace {

bool in(const char *uid, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(uid, list[i]) == 0)
			return true;
	return false;
}

const char *const echo_syntaxes[] = {
	UID_LittleEndianImplicitTransferSyntax,
	UID_LittleEndianExplicitTransferSyntax,
	UID_BigEndianExplicitTransferSyntax,
};

/* One association, on its own thread. */
class StoreSCP : public DcmThreadSCP {
public:
	StoreSCP(struct dimse_scp *s, struct scp_conn *c, T_ASC_Association *a)
		: scp(s), conn(c), assoc(a)
	{
	}

protected:
	OFBool checkCalledAETitleAccepted(const OFString &called) override
	{
		return trim(called) == scp->aet;
	}

	OFCondition negotiateAssociation() override
	{
		T_ASC_Parameters *params = assoc->params;
		int n = ASC_countPresentationContexts(params);
		for (int i = 0; i < n; i++) {
			T_ASC_PresentationContext pc;
			OFCondition c = ASC_getPresentationContext(params, i, &pc);
			if (c.bad())
				return c;
			bool echo = strcmp(pc.abstractSyntax, UID_VerificationSOPClass) == 0;
			bool store = !echo && scp->classes.count(pc.abstractSyntax) > 0;
			const char *ts = NULL;
			for (int j = 0; (echo || store) && ts == NULL && j < pc.transferSyntaxCount; j++) {
				const char *p = pc.proposedTransferSyntaxes[j];
				if (echo ? in(p, echo_syntaxes, sizeof echo_syntaxes / sizeof *echo_syntaxes)
					 : in(p, store_syntaxes, nstore_syntaxes))
					ts = p;
			}
			if (ts != NULL)
				c = ASC_acceptPresentationContext(params, pc.presentationContextID, ts);
			else
				c = ASC_refusePresentationContext(params, pc.presentationContextID,
					echo || store ? ASC_P_TRANSFERSYNTAXESNOTSUPPORTED
						      : ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
			if (c.bad())
				return c;
		}
		return EC_Normal;
	}

	/* DcmSCP's loop, but waiting for each command in 1-s slices so that
	 * an idle association ends when the SCP stops or it is evicted. */
	void handleAssociation() override
	{
		OFCondition c = EC_Normal;
		conn->idle_ms = scp_now_ms();
		while (c.good()) {
			/* Only the socket is polled: between messages DCMTK
			 * holds no unread PDU (it reads PDUs exactly, and the
			 * peer waits for our response before its next
			 * request). */
			if (!ASC_dataWaiting(assoc, 1)) {
				if (scp->stop || conn->evict ||
				    scp_now_ms() - conn->idle_ms >= 1000LL * scp->timeout)
					c = DIMSE_NODATAAVAILABLE;
				continue;
			}
			conn->busy = true;
			T_DIMSE_Message msg;
			T_ASC_PresentationContextID id = 0;
			c = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, scp->timeout, &id, &msg, NULL);
			if (c.good()) {
				DcmPresentationContextInfo info;
				getPresentationContextInfo(assoc, id, info);
				c = handleIncomingCommand(&msg, info);
			}
			conn->idle_ms = scp_now_ms();
			conn->busy = false;
		}
		if (c == DUL_PEERREQUESTEDRELEASE) {
			notifyReleaseRequest();
			ASC_acknowledgeRelease(assoc);
		} else if (c == DUL_PEERABORTEDASSOCIATION) {
			notifyAbortRequest();
		} else {
			notifyDIMSEError(c);
			ASC_abortAssociation(assoc);
		}
	}

	OFCondition handleIncomingCommand(T_DIMSE_Message *msg,
		const DcmPresentationContextInfo &info) override
	{
		if (msg->CommandField == DIMSE_C_STORE_RQ)
			return store(msg->msg.CStoreRQ, info.presentationContextID);
		return DcmThreadSCP::handleIncomingCommand(msg, info);	/* C-ECHO */
	}

	void notifyRECEIVEProgress(const unsigned long byteCount) override
	{
		rx_bytes = byteCount;
		store_activity.fetch_add(1, std::memory_order_relaxed);
	}

private:
	struct dimse_scp *scp;
	struct scp_conn *conn;
	T_ASC_Association *assoc;
	unsigned long rx_bytes = 0;	/* dataset bytes of the current instance */

	OFCondition store(T_DIMSE_C_StoreRQ &req, T_ASC_PresentationContextID pc)
	{
		store_activity.fetch_add(1, std::memory_order_relaxed);
		if (req.DataSetType == DIMSE_DATASET_NULL)
			return DIMSE_BADMESSAGE;	/* as DcmSCP: ends the association */
		std::string cls = trim(req.AffectedSOPClassUID);
		std::string uid = trim(req.AffectedSOPInstanceUID);
		char e[DCM_ERR_MAX];

		struct dimse_sink sink = { NULL, NULL, NULL, NULL };
		std::string move_aet = req.opts & O_STORE_MOVEORIGINATORAETITLE
			? trim(req.MoveOriginatorApplicationEntityTitle) : "";
		int move_id = req.opts & O_STORE_MOVEORIGINATORID ? req.MoveOriginatorID : -1;
		int routed = scp->route(scp->arg, cls.c_str(), uid.c_str(),
			move_aet.empty() ? NULL : move_aet.c_str(), move_id, &sink);
		/* The sink is released on every way out of here. */
		struct release_guard {
			struct dimse_sink &s;
			~release_guard() { if (s.release) s.release(s.arg); }
		} guard{ sink };
		if (routed != 0 || sink.fn == NULL || sink.tmp_prefix == NULL ||
		    !sink.tmp_prefix[0]) {
			dcm_errf(e, "refused SOP instance %s: not asked for", uid.c_str());
			note(e);
			return discard(req, pc, STATUS_STORE_Error_CannotUnderstand,
				("not asked for by " + scp->aet).c_str());
		}

		std::string path = sink.tmp_prefix + std::to_string(++tmp_counter);
		/* Created first, as dimse-get.cc does: if that fails the
		 * dataset is skipped and the C-STORE refused. */
		int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0) {
			dcm_errf(e, "cannot create %s: %s", path.c_str(), strerror(errno));
			note(e);
			return discard(req, pc, STATUS_STORE_Refused_OutOfResources, e);
		}
		close(fd);

		rx_bytes = 0;
		OFCondition c = receiveSTORERequest(req, pc, OFString(path.c_str()));
		if (c == DIMSE_OUTOFRESOURCES) {
			/* A write failed; DCMTK read the rest of the dataset
			 * off the wire, so the association is still in step. */
			unlink(path.c_str());
			dcm_errf(e, "cannot write %s: %s", path.c_str(), c.text());
			note(e);
			return respond(req, pc, STATUS_STORE_Refused_OutOfResources, e);
		}
		if (c.bad()) {
			/* Network trouble, or a write that failed on the
			 * dataset's last PDV (DCMTK 3.6.7 then waits for
			 * more of a dataset that has ended, and reports the
			 * DIMSE timeout): handleAssociation aborts. */
			unlink(path.c_str());
			dcm_errf(e, "receiving SOP instance %s into %s: %s", uid.c_str(),
				path.c_str(), c.text());
			note(e);
			return c;
		}
		Uint16 status;
		int r = store_received(path, rx_bytes, req.AffectedSOPInstanceUID, sink.fn, sink.arg,
			&status, e);
		if (r < 0)
			note(e);
		return respond(req, pc, status, r < 0 ? e : NULL);
	}

	/* Read the dataset off the wire, then answer status. */
	OFCondition discard(T_DIMSE_C_StoreRQ &req, T_ASC_PresentationContextID pc, Uint16 status,
		const char *why)
	{
		DIC_UL bytes = 0, pdvs = 0;
		OFCondition c = DIMSE_ignoreDataSet(assoc, DIMSE_NONBLOCKING, scp->timeout, &bytes, &pdvs);
		if (c.bad())
			return c;
		return respond(req, pc, status, why);
	}

	/* The C-STORE response; why, if any, goes in its Error Comment (LO:
	 * 64 characters, no backslash, plain ASCII; the end of a longer
	 * message, which says what went wrong). */
	OFCondition respond(T_DIMSE_C_StoreRQ &req, T_ASC_PresentationContextID pc, Uint16 status,
		const char *why)
	{
		std::unique_ptr<DcmDataset> detail;
		if (why != NULL && why[0]) {
			std::string s(why);
			if (s.length() > 64)
				s = "..." + s.substr(s.length() - 61);
			for (char &ch : s)
				if (ch < 0x20 || ch > 0x7e || ch == '\\')
					ch = '?';
			detail.reset(new DcmDataset);
			if (detail->putAndInsertString(DCM_ErrorComment, s.c_str()).bad())
				detail.reset();
		}
		return sendSTOREResponse(pc, req.MessageID, req.AffectedSOPClassUID,
			req.AffectedSOPInstanceUID, status, detail.get());
	}
};

} /* namespace */

long long scp_now_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
		std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool scp_serve(struct dimse_scp *s, struct scp_conn *c, T_ASC_Association *assoc)
{
	std::unique_ptr<StoreSCP> w;
	try {
		w.reset(new StoreSCP(s, c, assoc));
		if (w->setSharedConfig(s->cfg).bad())
			return false;
	} catch (...) {
		return false;
	}
	try {
		w->run(assoc);	/* ~DcmSCP drops and frees assoc */
	} catch (...) {
	}
	return true;
}
