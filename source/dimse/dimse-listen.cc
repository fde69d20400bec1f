/*
 * dimse-listen.cc - the storage SCP's front door (dimse_scp_start,
 * dimse_scp_stop): the listening socket, a thread per connection, the AE
 * title gate and the association slots; dimse-scp.cc serves what gets in.
 *
 * The SCP listens for C-MOVE sub-operations of one PACS, and anybody who
 * can reach the port could otherwise store instances, or hold the port
 * with idle connections.  So:
 *
 *  - We bind the socket ourselves, on bind (DCMTK 3.6.7 binds every
 *    interface), before dimse_scp_start returns, so a bind failure is
 *    reported.  A listener thread polls it and a wake-up pipe (a stop is
 *    seen at once) and accepts.
 *  - Each connection gets a thread at once, so a silent one holds up no
 *    other.  It has greet seconds (min(timeout, 5)) to send its whole
 *    A-ASSOCIATE-RQ (with TLS: its first handshake record), peeked at,
 *    not read, so that DCMTK then reads it without waiting.  DCMTK takes
 *    a connected socket only through a process-wide global
 *    (dcmExternalSocketHandle, its inetd mode), so the hand-over,
 *    ASC_receiveAssociation, runs under g_handover; it is quick for plain
 *    DICOM.  With TLS it includes the handshake, which a peer that stalls
 *    in it can draw out to greet seconds (the socket's receive timeout
 *    then), holding up other handshakes as long.
 *  - Only the PACS gets in: an association whose calling AE title is not
 *    peer_aet, or whose called AE title is not ours, is rejected
 *    (permanent; the calling or called AE title not recognized) and noted,
 *    so the C-MOVE that fails meanwhile says so.  An AE title is no
 *    secret: bind the SCP where only the PACS reaches it (store_bind), or
 *    use TLS, where the PACS's certificate must verify against tls_ca.
 *  - Only the PACS's associations count against max_assoc.  Unauthenticated
 *    connections are capped at MAX_PENDING; one more shuts the oldest.  A
 *    PACS association beyond max_assoc evicts one that has been idle for
 *    greet seconds (it ends once idle, within a second); when none has,
 *    it is rejected (transient, local limit exceeded), as DcmSCPPool does.
 *
 * Threads are joined by the listener as they end, and all of them when the
 * SCP stops: connections not yet in are shut down, associations end once
 * idle (dimse-scp.cc).
 */
#include "dimse-scp.h"

#include <dcmtk/dcmnet/dcmtrans.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace dimse_scu;

namespace {

enum { MAX_PENDING = 32 };	/* unauthenticated connections at once */
enum { MAX_PEEK = 32768 };	/* of a first message */

/* dcmExternalSocketHandle: one hand-over at a time in the process. */
std::mutex g_handover;

void set_rcvtimeo(int fd, int secs)
{
	struct timeval tv = { secs, 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* The transport layer of our network: DCMTK's own, or TLS, with the
 * socket's receive timeout greet seconds while the association is being
 * received (the TLS handshake reads the blocking socket). */
class GreetLayer : public DcmTransportLayer {
public:
	GreetLayer(DcmTransportLayer *in, int secs) : inner(in), greet(secs)
	{
	}

	DcmTransportConnection *createConnection(DcmNativeSocketType fd,
		OFBool secure) override
	{
		DcmTransportConnection *c = inner ? inner->createConnection(fd, secure)
						  : DcmTransportLayer::createConnection(fd, secure);
		if (c != NULL)
			set_rcvtimeo(fd, greet);
		return c;
	}

private:
	DcmTransportLayer *inner;	/* NULL: plain DICOM */
	int greet;
};

void drop(T_ASC_Association *assoc)
{
	if (assoc != NULL) {
		ASC_dropAssociation(assoc);
		ASC_destroyAssociation(&assoc);
	}
}

void reject(T_ASC_Association *assoc, T_ASC_RejectParametersResult result,
	T_ASC_RejectParametersSource source, T_ASC_RejectParametersReason why)
{
	T_ASC_RejectParameters rej;
	rej.result = result;
	rej.source = source;
	rej.reason = why;
	ASC_rejectAssociation(assoc, &rej);
	drop(assoc);
}

/* Wait up to ms for the first message of the connection to be there:
 * the A-ASSOCIATE-RQ PDU, or with TLS the first handshake record (their
 * first MAX_PEEK bytes: a socket buffer may hold no more).  GREET_NONE
 * when it does not come in time, GREET_OTHER when it is neither. */
enum greeting { GREET_OK, GREET_NONE, GREET_OTHER };
enum greeting greeted(int fd, bool tls, int ms)
{
	long long end = scp_now_ms() + ms;
	size_t head = tls ? 5 : 6, want = head;
	bool sized = false;
	unsigned char b[MAX_PEEK];
	for (;;) {
		ssize_t n = recv(fd, b, want, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return GREET_NONE;
		if (n == (ssize_t)want) {
			if (sized)
				return GREET_OK;
			size_t len;
			if (tls && b[0] == 0x16)	/* a handshake record */
				len = head + ((size_t)b[3] << 8 | b[4]);
			else if (!tls && b[0] == 0x01)	/* A-ASSOCIATE-RQ */
				len = head + ((size_t)b[2] << 24 | (size_t)b[3] << 16 |
					      (size_t)b[4] << 8 | b[5]);
			else
				return GREET_OTHER;
			want = len < (size_t)MAX_PEEK ? len : (size_t)MAX_PEEK;
			sized = true;
			continue;
		}
		int left = (int)(end - scp_now_ms());
		if (left <= 0)
			return GREET_NONE;
		/* poll() says readable while a part sits unread: pace the
		 * peeks then. */
		struct pollfd p = { fd, POLLIN, 0 };
		if (n > 0)
			poll(NULL, 0, 20);
		else if (poll(&p, 1, left) < 0 && errno != EINTR)
			return GREET_NONE;
	}
}

std::string addr_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	char s[INET_ADDRSTRLEN] = "?";
	if (getpeername(fd, (struct sockaddr *)&a, &len) == 0 && a.sin_family == AF_INET)
		inet_ntop(AF_INET, &a.sin_addr, s, sizeof s);
	return s;
}

/* A slot for c, which has an association of the PACS: free, or that of an
 * association idle for greet seconds, evicted.  Under s->mu. */
bool take_slot(struct dimse_scp *s, struct scp_conn *c)
{
	if (s->nassoc >= s->max_assoc) {
		struct scp_conn *idlest = NULL;
		for (auto &o : s->conns)
			if (o->counted && !o->busy && o->idle_ms != 0 &&
			    (idlest == NULL || o->idle_ms < idlest->idle_ms))
				idlest = o.get();
		if (idlest == NULL || scp_now_ms() - idlest->idle_ms < 1000LL * s->greet)
			return false;
		idlest->evict = true;
		idlest->counted = false;
		s->nassoc--;
	}
	c->counted = true;
	c->serving = true;
	s->nassoc++;
	return true;
}

/* Receive the association on c->fd through DCMTK; NULL when it failed
 * (noted when that says something). */
T_ASC_Association *receive(struct dimse_scp *s, struct scp_conn *c, int *dfd)
{
	T_ASC_Association *assoc = NULL;
	/* DCMTK closes the socket it was given with the association: give
	 * it a copy, so that c->fd stays ours. */
	*dfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 1);
	if (*dfd < 0)
		return NULL;
	OFCondition cond = EC_Normal;
	{
		std::lock_guard<std::mutex> lock(g_handover);
		dcmExternalSocketHandle.set(*dfd);
		cond = ASC_receiveAssociation(s->net, &assoc, ASC_MAXIMUMPDUSIZE, NULL, NULL,
			s->tls ? OFTrue : OFFalse, DUL_NOBLOCK, s->greet);
		dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
	}
	int rcv = dcmSocketReceiveTimeout.get();
	set_rcvtimeo(c->fd, rcv >= 0 ? rcv : 0);
	if (cond.bad()) {
		if (s->tls) {
			char e[DCM_ERR_MAX];
			dcm_errf(e, "refused a connection from %s that failed the TLS handshake "
				"(plain DICOM, or no certificate that verifies against our CA file): %s",
				addr_of(c->fd).c_str(), cond.text());
			note(e);
		}
		drop(assoc);
		return NULL;
	}
	return assoc;
}

/* The life of one connection, on its own thread. */
void serve_conn(struct dimse_scp *s, struct scp_conn *c)
{
	int dfd = -1;
	T_ASC_Association *assoc = NULL;
	char e[DCM_ERR_MAX];

	try {
		enum greeting g = greeted(c->fd, s->tls != nullptr, 1000 * s->greet);
		if (g == GREET_OTHER) {
			if (s->tls)
				dcm_errf(e, "refused a connection from %s that failed the TLS handshake "
					"(plain DICOM, not a TLS handshake)", addr_of(c->fd).c_str());
			else
				dcm_errf(e, "refused a connection from %s that did not begin with an "
					"A-ASSOCIATE-RQ (TLS? then set [pacs] tls = yes)",
					addr_of(c->fd).c_str());
			note(e);
		}
		if (g != GREET_OK || s->stop || (assoc = receive(s, c, &dfd)) == NULL)
			goto out;
		{
			const T_ASC_Parameters *p = assoc->params;
			std::string calling = trim(p->DULparams.callingAPTitle);
			std::string called = trim(p->DULparams.calledAPTitle);
			if (calling != s->peer_aet || called != s->aet) {
				bool them = calling != s->peer_aet;
				dcm_errf(e, "refused an association from %s, calling AE '%s', called AE "
					"'%s': only the PACS's AE title %s may store to %s here "
					"([pacs] peer_aet)", addr_of(c->fd).c_str(), calling.c_str(),
					called.c_str(), s->peer_aet.c_str(), s->aet.c_str());
				note(e);
				reject(assoc, ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
					them ? ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED
					     : ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED);
				assoc = NULL;
				goto out;
			}
		}
		bool in;
		{
			std::lock_guard<std::mutex> lock(s->mu);
			in = !s->stop && take_slot(s, c);
		}
		if (!in) {
			if (!s->stop) {
				dcm_errf(e, "rejected an association from %s: %zu at once already, "
					"none idle", s->peer_aet.c_str(), s->max_assoc);
				note(e);
			}
			reject(assoc, ASC_RESULT_REJECTEDTRANSIENT,
				ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
				ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
			assoc = NULL;
			goto out;
		}
		if (!scp_serve(s, c, assoc))
			reject(assoc, ASC_RESULT_REJECTEDTRANSIENT,
				ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
				ASC_REASON_SP_PRES_TEMPORARYCONGESTION);
		assoc = NULL;
	} catch (...) {
		drop(assoc);
	}
out:
	{
		std::lock_guard<std::mutex> lock(s->mu);
		if (c->counted)
			s->nassoc--;
		c->counted = false;
		/* DCMTK closed its copy with the association, unless it never
		 * took it: then dfd is still our socket (c->fd keeps the
		 * socket, so no other can have its inode). */
		struct stat a, b;
		if (dfd >= 0 && fstat(dfd, &a) == 0 && fstat(c->fd, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			close(dfd);
		close(c->fd);
		c->fd = -1;
	}
	c->done = true;
}

/* Join the connection threads that have ended (all of them when all). */
void reap(struct dimse_scp *s, bool all)
{
	std::list<std::unique_ptr<scp_conn>> ended;
	{
		std::lock_guard<std::mutex> lock(s->mu);
		for (auto it = s->conns.begin(); it != s->conns.end();) {
			auto next = std::next(it);
			if (all || (*it)->done)
				ended.splice(ended.end(), s->conns, it);
			it = next;
		}
	}
	for (auto &c : ended)
		if (c->thread.joinable())
			c->thread.join();
}

/* A thread for the connection fd; shut the oldest unauthenticated one
 * when there are MAX_PENDING. */
void start_conn(struct dimse_scp *s, int fd)
{
	std::unique_ptr<scp_conn> c(new scp_conn);
	c->fd = fd;
	std::lock_guard<std::mutex> lock(s->mu);
	size_t pending = 0;
	scp_conn *oldest = NULL;
	for (auto &o : s->conns)
		if (!o->serving && o->fd >= 0 && !o->done) {
			pending++;
			if (oldest == NULL)
				oldest = o.get();
		}
	if (pending >= MAX_PENDING && oldest != NULL)
		shutdown(oldest->fd, SHUT_RDWR);
	scp_conn *p = c.get();
	try {
		p->thread = std::thread(serve_conn, s, p);
	} catch (...) {
		close(fd);
		return;
	}
	s->conns.push_back(std::move(c));
}

void listen_loop(struct dimse_scp *s)
{
	while (!s->stop) {
		struct pollfd p[2] = { { s->listen_fd, POLLIN, 0 }, { s->wake[0], POLLIN, 0 } };
		int n = poll(p, 2, 1000);
		reap(s, false);
		if (s->stop || n <= 0 || !(p[0].revents & POLLIN))
			continue;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of descriptors, say: do not spin on it. */
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				poll(NULL, 0, 100);
			continue;
		}
		start_conn(s, fd);
	}
	{
		/* Connections not yet in end now; associations once idle. */
		std::lock_guard<std::mutex> lock(s->mu);
		for (auto &c : s->conns)
			if (!c->serving && c->fd >= 0)
				shutdown(c->fd, SHUT_RDWR);
	}
	reap(s, true);
}

int start(const char *aet, const char *peer_aet, const char *bind_addr, int port, int max_assoc,
	int timeout, const struct dimse_tls *tls, dimse_route_fn *route, void *arg,
	struct dimse_scp **out, char *err)
{
	if (init(err) != 0)
		return -1;
	if (!aet_ok(aet) || !aet_ok(peer_aet)) {
		dcm_errf(err, "storage SCP: the AE titles must be 1-16 characters");
		return -1;
	}
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (bind_addr == NULL || inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
		dcm_errf(err, "storage SCP: '%s' is not an IPv4 address to listen on",
			bind_addr ? bind_addr : "(none)");
		return -1;
	}
	if (port < 1 || port > 65535 || max_assoc < 1 || timeout < 1 || route == NULL) {
		dcm_errf(err, "storage SCP: bad arguments (port %d, %d associations, timeout %d)",
			port, max_assoc, timeout);
		return -1;
	}
	std::unique_ptr<struct dimse_scp> s(new dimse_scp);
	s->aet = aet;
	s->peer_aet = peer_aet;
	s->port = port;
	s->timeout = timeout;
	s->greet = timeout < 5 ? timeout : 5;
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
	s->layer.reset(new GreetLayer(s->tls.get(), s->greet));

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
	/* No reverse DNS lookup of each connection (a DCMTK global). */
	dcmDisableGethostbyaddr.set(OFTrue);

	int one = 1;
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0 ||
	    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
	    listen(s->listen_fd, 64) < 0) {
		if (errno == EADDRINUSE)
			dcm_errf(err, "storage SCP: port %d on %s is in use (by another program, "
				"or another thlhp-make?)", port, bind_addr);
		else if (errno == EADDRNOTAVAIL)
			dcm_errf(err, "storage SCP: cannot listen on %s:%d: %s ([pacs] store_bind "
				"must be an address of this host)", bind_addr, port, strerror(errno));
		else
			dcm_errf(err, "storage SCP: cannot listen on %s:%d: %s", bind_addr, port,
				strerror(errno));
		return -1;
	}
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		dcm_errf(err, "storage SCP: pipe: %s", strerror(errno));
		return -1;
	}
	/* A network without a listening socket of DCMTK's: it takes the
	 * connections we accept (dcmExternalSocketHandle set). */
	OFCondition c = EC_Normal;
	{
		std::lock_guard<std::mutex> lock(g_handover);
		dcmExternalSocketHandle.set(s->listen_fd);
		c = ASC_initializeNetwork(NET_ACCEPTOR, port, timeout, &s->net);
		dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
	}
	if (c.good())
		c = ASC_setTransportLayer(s->net, s->layer.get(), 0);	/* s->layer outlives it */
	if (c.bad()) {
		dcm_errf(err, "storage SCP: cannot set up the network: %s", c.text());
		return -1;
	}
	s->listener = std::thread(listen_loop, s.get());
	*out = s.release();
	return 0;
}

} /* namespace */

dimse_scp::~dimse_scp()
{
	if (net != NULL)
		ASC_dropNetwork(&net);
	if (listen_fd >= 0)
		close(listen_fd);
	for (int fd : wake)
		if (fd >= 0)
			close(fd);
}

extern "C" struct dimse_scp *dimse_scp_start(const char *aet, const char *peer_aet,
	const char *bind_addr, int port, int max_assoc, int timeout, const struct dimse_tls *tls,
	dimse_route_fn *route, void *arg, char err[DCM_ERR_MAX])
{
	err[0] = '\0';
	struct dimse_scp *s = NULL;
	try {
		if (start(aet, peer_aet, bind_addr, port, max_assoc, timeout, tls, route, arg, &s,
			  err) != 0)
			s = NULL;
	} catch (const std::exception &e) {
		dcm_errf(err, "storage SCP on port %d: %s", port, e.what());
	} catch (...) {
		dcm_errf(err, "storage SCP on port %d: unknown exception", port);
	}
	return s;
}

extern "C" void dimse_scp_stop(struct dimse_scp *scp)
{
	if (scp == NULL)
		return;
	try {
		scp->stop = true;
		if (write(scp->wake[1], "", 1) < 0) {
			/* The listener sees the flag within its 1-s poll. */
		}
		if (scp->listener.joinable())
			scp->listener.join();
		delete scp;
	} catch (...) {
	}
}
