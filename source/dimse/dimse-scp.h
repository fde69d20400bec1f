/*
 * dimse-scp.h - what the two halves of our storage SCP share (C++ only,
 * internal): dimse-listen.cc (the listening socket, a thread per
 * connection, the AE title gate and the association slots;
 * dimse_scp_start, dimse_scp_stop) and dimse-scp.cc (one association:
 * negotiation and C-STORE).
 */
#ifndef THLHP_DIMSE_SCP_H
#define THLHP_DIMSE_SCP_H

#include "dimse-scu.h"

#include <dcmtk/dcmnet/scpthrd.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

/* One accepted TCP connection, on a thread of its own. */
struct scp_conn {
	int fd = -1;              /* ours, closed when the thread ends; -1 then */
	std::thread thread;
	std::atomic<bool> done{false};	/* the thread has ended: join it */
	bool serving = false;     /* an accepted association of the PACS; else
	                           * still unauthenticated (under dimse_scp.mu) */
	bool counted = false;     /* holds one of max_assoc (under dimse_scp.mu) */
	std::atomic<bool> evict{false};	/* end the association once idle */
	std::atomic<bool> busy{false};	/* a command is being handled */
	std::atomic<long long> idle_ms{0};	/* steady clock (ms) it went idle */
};

struct dimse_scp {
	std::string aet;          /* ours: the called AE title */
	std::string peer_aet;     /* the only calling AE title taken */
	int port = 0;
	int timeout = 0;          /* seconds: DIMSE, and an idle association */
	int greet = 0;            /* seconds a connection has to present its
	                           * A-ASSOCIATE-RQ (and TLS handshake) */
	size_t max_assoc = 0;     /* associations of the PACS at once */
	dimse_route_fn *route = NULL;
	void *arg = NULL;
	std::set<std::string> classes;	/* storage SOP classes */
	T_ASC_Network *net = NULL;	/* without a listening socket: ours is fd */
	int listen_fd = -1;
	int wake[2] = { -1, -1 };	/* dimse_scp_stop writes to wake[1] */
	std::unique_ptr<DcmTLSTransportLayer> tls;	/* with TLS; outlives the workers */
	std::unique_ptr<DcmTransportLayer> layer;	/* tls with a short handshake */
	DcmSharedSCPConfig cfg;
	std::atomic<bool> stop{false};
	std::thread listener;
	std::mutex mu;            /* guards conns' serving and counted, nassoc */
	std::list<std::unique_ptr<scp_conn>> conns;	/* the listener's */
	size_t nassoc = 0;        /* counted connections */

	~dimse_scp();
};

/* Milliseconds of the steady clock, for scp_conn.idle_ms. */
long long scp_now_ms();
/* Serve an association of the PACS already received on c (negotiate,
 * acknowledge or reject, C-STOREs, release or abort) until it ends, the
 * SCP stops or c is evicted; assoc is then freed.  false when it could not
 * start: assoc is still the caller's. */
bool scp_serve(struct dimse_scp *s, struct scp_conn *c, T_ASC_Association *assoc);

#endif
