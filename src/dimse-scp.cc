/*
 * dimse-scp.cc - the storage SCP a PACS sends C-MOVE'd instances to
 * (dimse_scp_start, dimse_scp_stop); dimse-move.cc asks for them.
 *
 * The SCP.  DCMTK 3.6.7's DcmSCPPool does not fit: it binds its port in
 * listen(), on the thread that runs it, so nobody hears of a bind failure;
 * its workers are made by a default constructor (route and arg could only
 * be globals) and cannot see their T_ASC_Association (needed to negotiate
 * and to discard a dataset); and a worker that ends is deleted but its
 * thread never joined.  So we do the pool's part ourselves:
 * dimse_scp_start binds (ASC_initializeNetwork) before it returns, a
 * listener thread accepts (ASC_receiveAssociation in DUL_NOBLOCK mode,
 * 1-s slices, so that a stop is seen within a second), and each
 * association runs in a DcmThreadSCP (DcmSCP's association handling:
 * A-ASSOCIATE checks, acknowledge or reject, release, abort, C-ECHO) on a
 * std::thread of ours, joined by the listener when it ends.  Beyond
 * max_assoc associations at once, a new one is rejected (transient, local
 * limit exceeded), as DcmSCPPool does.
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
 * TLS (tls->on): one DcmTLSTransportLayer (tls_new in dimse.cc: BCP 195
 * non-downgrading profile, our certificate and key, tls->ca trusted) is
 * the transport layer of the listening network, and every connection must
 * complete a TLS handshake before its A-ASSOCIATE-RQ is read: a plain
 * DICOM connection fails it and is dropped, never served.  The PACS must
 * present a client certificate that verifies against tls->ca
 * (DCV_requireCertificate, the strictest mode; DCV_checkCertificate would
 * let in a caller with no certificate at all).  Orthanc 1.10.1 presents
 * its DicomTlsCertificate when it connects to us for a C-MOVE, so that
 * works with it.  The handshake runs on the listener thread, inside
 * ASC_receiveAssociation: a caller that stalls in it holds up the others
 * for up to DCMTK's socket timeout (60 s).  A handshake that fails is
 * noted (see below), so the C-MOVE that waited for it says why.
 *
 * Stop: dimse_scp_stop sets a flag and wakes the listener with a
 * connection of its own to the port (closed at once; else the listener
 * would see the flag only when its 1-s slice ends, up to a second added to
 * every run that used C-MOVE), so the listener stops accepting and joins
 * the associations.  An association that is busy is let finish; one that
 * sits idle (no command for a second) once the stop is asked is aborted,
 * and one idle for the timeout is aborted anyway (DcmSCP would do the
 * latter only, waiting up to the timeout).
 * DCMTK's A-ABORT waits for the peer to close the connection: a peer that
 * does not costs up to the timeout more.
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
#include <netinet/in.h>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
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

class StoreSCP;

} /* namespace */

struct dimse_scp {
	std::string aet;
	int port = 0;
	int timeout = 0;
	size_t max_assoc = 0;
	dimse_route_fn *route = NULL;
	void *arg = NULL;
	std::set<std::string> classes;		/* storage SOP classes */
	T_ASC_Network *net = NULL;
	std::unique_ptr<DcmTLSTransportLayer> tls;	/* with TLS; outlives the workers */
	DcmSharedSCPConfig cfg;
	std::atomic<bool> stop{false};
	std::thread listener;
	std::list<std::unique_ptr<StoreSCP>> workers;	/* the listener's */

	~dimse_scp();
};

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
	StoreSCP(struct dimse_scp *s, T_ASC_Association *a) : scp(s), assoc(a)
	{
	}

	std::thread thread;
	std::atomic<bool> done{false};

	void serve()
	{
		try {
			run(assoc);	/* ~DcmSCP drops and frees assoc */
		} catch (...) {
		}
		done = true;
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
	 * an idle association ends when the SCP stops. */
	void handleAssociation() override
	{
		OFCondition c = EC_Normal;
		auto last = std::chrono::steady_clock::now();
		while (c.good()) {
			/* Only the socket is polled: between messages DCMTK
			 * holds no unread PDU (it reads PDUs exactly, and the
			 * peer waits for our response before its next
			 * request). */
			if (!ASC_dataWaiting(assoc, 1)) {
				if (scp->stop || std::chrono::steady_clock::now() - last >=
						 std::chrono::seconds(scp->timeout))
					c = DIMSE_NODATAAVAILABLE;
				continue;
			}
			T_DIMSE_Message msg;
			T_ASC_PresentationContextID id = 0;
			c = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, scp->timeout, &id, &msg, NULL);
			if (c.good()) {
				DcmPresentationContextInfo info;
				getPresentationContextInfo(assoc, id, info);
				c = handleIncomingCommand(&msg, info);
			}
			last = std::chrono::steady_clock::now();
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
			set_err(e, "refused SOP instance %s: not asked for", uid.c_str());
			note(e);
			return discard(req, pc, STATUS_STORE_Error_CannotUnderstand,
				("not asked for by " + scp->aet).c_str());
		}

		std::string path = sink.tmp_prefix + std::to_string(++tmp_counter);
		/* Created first, as dimse-get.cc does: if that fails the
		 * dataset is skipped and the C-STORE refused. */
		int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0) {
			set_err(e, "cannot create %s: %s", path.c_str(), strerror(errno));
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
			set_err(e, "cannot write %s: %s", path.c_str(), c.text());
			note(e);
			return respond(req, pc, STATUS_STORE_Refused_OutOfResources, e);
		}
		if (c.bad()) {
			/* Network trouble, or a write that failed on the
			 * dataset's last PDV (DCMTK 3.6.7 then waits for
			 * more of a dataset that has ended, and reports the
			 * DIMSE timeout): handleAssociation aborts. */
			unlink(path.c_str());
			set_err(e, "receiving SOP instance %s into %s: %s", uid.c_str(),
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

dimse_scp::~dimse_scp()
{
	if (net != NULL)
		ASC_dropNetwork(&net);
}

namespace {

void drop(T_ASC_Association *assoc)
{
	if (assoc != NULL) {
		ASC_dropAssociation(assoc);
		ASC_destroyAssociation(&assoc);
	}
}

void reject(T_ASC_Association *assoc, T_ASC_RejectParametersReason why)
{
	T_ASC_RejectParameters rej;
	rej.result = ASC_RESULT_REJECTEDTRANSIENT;
	rej.source = ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED;
	rej.reason = why;
	ASC_rejectAssociation(assoc, &rej);
	drop(assoc);
}

/* Join the associations that have ended (all of them when all). */
void reap(struct dimse_scp *s, bool all)
{
	for (auto it = s->workers.begin(); it != s->workers.end();) {
		if (all || (*it)->done) {
			if ((*it)->thread.joinable())
				(*it)->thread.join();
			it = s->workers.erase(it);
		} else {
			++it;
		}
	}
}

/* Hand an accepted connection to a new StoreSCP on its own thread. */
void start_worker(struct dimse_scp *s, T_ASC_Association *assoc)
{
	if (s->stop || s->workers.size() >= s->max_assoc) {
		if (!s->stop) {
			char e[DCM_ERR_MAX];
			set_err(e, "rejected an association from %s: %zu at once already",
				assoc->params->DULparams.callingAPTitle, s->workers.size());
			note(e);
		}
		reject(assoc, ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
		return;
	}
	std::unique_ptr<StoreSCP> w;
	try {
		w.reset(new StoreSCP(s, assoc));
		if (w->setSharedConfig(s->cfg).bad())
			throw std::runtime_error("setSharedConfig");
		StoreSCP *p = w.get();
		p->thread = std::thread([p] { p->serve(); });
	} catch (...) {
		/* Not started: run() never took assoc. */
		reject(assoc, ASC_REASON_SP_PRES_TEMPORARYCONGESTION);
		return;
	}
	s->workers.push_back(std::move(w));
}

void listen_loop(struct dimse_scp *s)
{
	while (!s->stop) {
		T_ASC_Association *assoc = NULL;
		bool pause = false;
		try {
			OFCondition c = ASC_receiveAssociation(s->net, &assoc, ASC_MAXIMUMPDUSIZE,
				NULL, NULL, s->tls ? OFTrue : OFFalse, DUL_NOBLOCK, 1);
			reap(s, false);
			if (c == DUL_NOASSOCIATIONREQUEST) {
				ASC_destroyAssociation(&assoc);
			} else if (c.bad() && s->stop) {
				drop(assoc);	/* dimse_scp_stop's wake-up call */
			} else if (c.bad()) {
				if (s->tls) {
					char e[DCM_ERR_MAX];
					set_err(e, "refused a connection that failed the TLS handshake "
						"(plain DICOM, or no certificate that verifies against our CA file): %s",
						c.text());
					note(e);
				}
				/* A connection that closed or sent no valid
				 * A-ASSOCIATE-RQ, or accept() failing (out of
				 * descriptors): do not spin on it. */
				drop(assoc);
				pause = true;
			} else {
				start_worker(s, assoc);
			}
		} catch (...) {
			pause = true;
		}
		if (pause)
			std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	reap(s, true);
}

int start(const char *aet, int port, int max_assoc, int timeout, const struct dimse_tls *tls,
	dimse_route_fn *route, void *arg, struct dimse_scp **out, char *err)
{
	if (init(err) != 0)
		return -1;
	if (!aet_ok(aet)) {
		set_err(err, "storage SCP: the AE title must be 1-16 characters");
		return -1;
	}
	if (port < 1 || port > 65535 || max_assoc < 1 || timeout < 1 || route == NULL) {
		set_err(err, "storage SCP: bad arguments (port %d, %d associations, timeout %d)",
			port, max_assoc, timeout);
		return -1;
	}
	std::unique_ptr<struct dimse_scp> s(new dimse_scp);
	s->aet = aet;
	s->port = port;
	s->timeout = timeout;
	s->max_assoc = (size_t)max_assoc;
	s->route = route;
	s->arg = arg;
	for (int i = 0; i < numberOfDcmAllStorageSOPClassUIDs; i++)
		s->classes.insert(dcmAllStorageSOPClassUIDs[i]);
	if (tls != NULL && tls->on) {
		s->tls = tls_new(tls, NET_ACCEPTOR, err);
		if (!s->tls)
			return -1;
	}

	DcmSCPConfig cfg;
	cfg.setAETitle(aet);
	cfg.setPort((Uint16)port);
	cfg.setRespondWithCalledAETitle(OFFalse);
	cfg.setMaxReceivePDULength(ASC_MAXIMUMPDUSIZE);
	cfg.setACSETimeout((Uint32)timeout);
	cfg.setDIMSETimeout((Uint32)timeout);
	/* Non-blocking: the only DIMSE mode in which the timeout is used. */
	cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
	cfg.setConnectionBlockingMode(DUL_NOBLOCK);
	cfg.setConnectionTimeout(1);
	cfg.setHostLookupEnabled(OFFalse);
	cfg.setProgressNotificationMode(OFTrue);	/* for the size check */
	s->cfg = DcmSharedSCPConfig(cfg);
	/* No reverse DNS lookup of each PACS connecting (a DCMTK global;
	 * only accepted associations use it). */
	dcmDisableGethostbyaddr.set(OFTrue);

	OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, port, timeout, &s->net);
	if (c.bad()) {
		s->net = NULL;
		if (strstr(c.text(), strerror(EADDRINUSE)) != NULL)
			set_err(err, "storage SCP: port %d is in use (by another program, "
				"or another thlhp-make?)", port);
		else
			set_err(err, "storage SCP: cannot listen on port %d: %s", port, c.text());
		return -1;
	}
	if (s->tls) {
		/* Not taken over: s->tls outlives the network. */
		c = ASC_setTransportLayer(s->net, s->tls.get(), 0);
		if (c.bad()) {
			set_err(err, "storage SCP: cannot set up TLS: %s", c.text());
			return -1;
		}
	}
	s->listener = std::thread(listen_loop, s.get());
	*out = s.release();
	return 0;
}

} /* namespace */

extern "C" struct dimse_scp *dimse_scp_start(const char *aet, int port, int max_assoc,
	int timeout, const struct dimse_tls *tls, dimse_route_fn *route, void *arg,
	char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	struct dimse_scp *s = NULL;
	try {
		if (start(aet, port, max_assoc, timeout, tls, route, arg, &s, err) != 0)
			s = NULL;
	} catch (const std::exception &e) {
		set_err(err, "storage SCP on port %d: %s", port, e.what());
	} catch (...) {
		set_err(err, "storage SCP on port %d: unknown exception", port);
	}
	return s;
}

namespace {

/* Connect to the SCP's own port and hang up, so that a listener waiting in
 * ASC_receiveAssociation returns now.  Best effort: when it fails, the
 * listener sees the stop at the end of its 1-s slice. */
void wake(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
}

} /* namespace */

extern "C" void dimse_scp_stop(struct dimse_scp *scp)
{
	if (scp == NULL)
		return;
	try {
		scp->stop = true;
		wake(scp->port);
		if (scp->listener.joinable())
			scp->listener.join();
		delete scp;
	} catch (...) {
	}
}
