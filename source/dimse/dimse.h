/*
 * dimse.h - DICOM networking through DCMTK (C-FIND, C-GET), behind plain C.
 * Every function returns 0 on success or -1 with a one-line message in err
 * (network error, association rejected, or the PACS status in hex).
 * Each call opens its own association and closes it (but for a
 * dimse_finder's C-FINDs), so calls from several threads at once are
 * independent.
 */
#ifndef THLHP_DIMSE_H
#define THLHP_DIMSE_H

#include <stdint.h>
#include "dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * DICOM TLS (DCMTK's dcmtls, OpenSSL), PEM files.  With on, every
 * connection is TLS or fails: never plain DICOM, never unverified.  The
 * other side's certificate must verify against ca.  cert and key are
 * ours, both or neither; our storage SCP needs them.
 */
struct dimse_tls {
	int on;                   /* 0: plain DICOM, the rest unused */
	const char *ca;           /* CA(s) that signed the other side's certificate */
	const char *cert;         /* our certificate (chain), or NULL */
	const char *key;          /* its private key, unencrypted, or NULL */
};

/* Who we talk to. */
struct dimse_peer {
	const char *host;
	int port;
	const char *called_aet;   /* the PACS */
	const char *calling_aet;  /* us */
	int timeout;              /* seconds, for connect, ACSE and DIMSE */
	struct dimse_tls tls;     /* DICOM TLS, or plain when tls.on is 0 */
	/* When stop(stop_arg) returns non-zero, a request in flight is
	 * cancelled (C-CANCEL) at its next response or instance and its
	 * association aborted; the call fails with "interrupted".  Asked from
	 * the calling thread.  NULL: never. */
	int (*stop)(void *stop_arg);
	void *stop_arg;
};

/* Load tls's files as a connection would (readable, PEM, key matches
 * cert), contacting nobody: for errors before the first job.  0 when
 * tls->on is 0. */
int dimse_tls_check(const struct dimse_tls *tls, char err[DCM_ERR_MAX]);

enum dimse_level { DIMSE_PATIENT, DIMSE_STUDY, DIMSE_SERIES, DIMSE_IMAGE };

/* Matching keys of a C-FIND; NULL or "" = universal (return the attribute). */
struct dimse_keys {
	const char *patient_id;   /* may hold DICOM wildcards * and ? */
	const char *study_uid;
	const char *series_uid;
	const char *study_date;   /* DICOM range, e.g. "20200101-" */
	const char *modality;     /* series level */
};

/* One C-FIND match.  Fields the PACS did not return are "" (nrelated -1),
 * or NULL for h's series_number and series_desc (SERIES level), which are
 * freed when the callback returns.  A count that is not a whole number is
 * no count (-1).  A record with a value we cannot hold (too long) still
 * reaches the callback, with bad saying why and that field "": the caller
 * decides what it spoils (one record never fails the whole C-FIND). */
struct dimse_match {
	struct dcm_header h;      /* patient_id, study_uid, series_uid, sop_uid,
	                           * sop_class, modality, study_date, series_number,
	                           * series_desc */
	int nrelated;             /* NumberOfSeriesRelatedInstances (series) or
	                           * NumberOfStudyRelatedInstances (study) */
	int nseries;              /* NumberOfStudyRelatedSeries (study) */
	char sop_classes[1024];   /* SOPClassesInStudy, backslash-separated */
	char bad[128];            /* "" or why this record cannot be used */
};

/* Called for each match; a non-zero return cancels the C-FIND. */
typedef int dimse_match_fn(void *arg, const struct dimse_match *m);

/* dimse_find's return when a PATIENT-level C-FIND was asked of a PACS
 * that refused the Patient Root model: query at STUDY level instead. */
enum { DIMSE_NO_PATIENT_ROOT = -2 };
/* dimse_find's return when the PACS answered the request with a failure
 * status (the association itself worked): an answer about these keys,
 * not about the link. */
enum { DIMSE_FIND_REFUSED = -3 };
/* dimse_find's return when the PACS rejected the association
 * (A-ASSOCIATE-RJ): our AE titles are wrong, unless it is only busy. */
enum { DIMSE_REJECTED = -4 };
/* dimse_find's return when the PACS's TLS certificate did not verify
 * against tls_ca: the same each time, no retry changes it. */
enum { DIMSE_UNVERIFIED = -5 };

/* C-FIND at level.  Both information models are proposed; Patient Root is
 * used when the PACS accepts it and the query fits its hierarchy (PATIENT
 * level, or an exact patient_id below it), else Study Root.  Above the
 * level only the model's unique keys are sent (what a PACS checking
 * hierarchical queries accepts): keys' study_date and modality are used
 * at STUDY and SERIES level only.  -1 with err, DIMSE_NO_PATIENT_ROOT or
 * DIMSE_FIND_REFUSED. */
int dimse_find(const struct dimse_peer *peer, enum dimse_level level,
    const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);

/* One association for a series of C-FINDs (a query walk: one
 * association, not one per request, which PACSes that limit associations
 * per AE refuse while the last is being closed).  Opened at the first
 * request with both models, kept while it works, opened again when the
 * PACS ended it; a request cancelled or failed on the wire aborts it.
 * peer is copied, its strings are borrowed.  NULL when out of memory. */
struct dimse_finder;
struct dimse_finder *dimse_finder_new(const struct dimse_peer *peer);
/* dimse_find on f's association. */
int dimse_finder_find(struct dimse_finder *f, enum dimse_level level,
    const struct dimse_keys *keys, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);
/* The final status of f's last request (0 when none came): with
 * DIMSE_FIND_REFUSED, which failure. */
unsigned dimse_finder_status(const struct dimse_finder *f);
/* Release f's association, if open, and free f. */
void dimse_finder_free(struct dimse_finder *f);

/* The most SOP classes one dimse_get can take (presentation contexts are
 * at most 128, each class needs one per storage transfer syntax). */
int dimse_get_max_classes(void);

/* Sub-operation counts of the final C-GET response, to be checked against
 * what actually arrived. */
struct dimse_counts {
	int completed, failed, warning, remaining;
	unsigned status;          /* final DIMSE status */
};

/* Called for each instance received by a C-GET, once it is complete in the
 * file tmp_path (written in its transfer syntax, not yet fsynced: the
 * callee fsyncs it before it gives it its name, which it may do later, on
 * a thread of its own); h as read from it, without series_number and
 * series_desc (NULL).  Returns 0 to accept (C-STORE success; tmp_path is
 * then the callee's), non-zero to refuse it (the file is then removed by
 * dimse_get). */
typedef int dimse_store_fn(void *arg, const struct dcm_header *h, const char *tmp_path);

/* C-GET the series (all of it when sops is NULL, else those SOP instances,
 * IMAGE level) of patient patient_id with the storage role negotiated for
 * the given SOP classes (the classes the series holds, from the query;
 * never every storage class: an association carries at most 128
 * presentation contexts; at most dimse_get_max_classes()).  Patient Root
 * or Study Root as dimse_find.  Arriving instances are written under
 * tmp_prefix + a counter. */
int dimse_get(const struct dimse_peer *peer, const char *patient_id,
    const char *study_uid, const char *series_uid,
    const char *const *sops, int nsops, const char *const *sop_classes, int nclasses,
    const char *tmp_prefix, dimse_store_fn *fn, void *arg, struct dimse_counts *counts,
    char err[DCM_ERR_MAX]);

/* Where a received instance goes: the store callback, its argument and
 * the temp file prefix (as for dimse_get).  release, when set, is called
 * with arg exactly once when the SCP is done with the sink: after fn, or
 * instead of it when the instance did not arrive whole.  Until then arg
 * must stay valid. */
struct dimse_sink {
	dimse_store_fn *fn;
	void *arg;
	const char *tmp_prefix;
	void (*release)(void *arg);
};

/* Called by the storage SCP when a C-STORE request arrives, before its
 * data: fill sink for this SOP instance and return 0, or return -1 to
 * refuse it (nobody asked for it).  move_aet and move_id: the C-MOVE it
 * is a sub-operation of, as the PACS names it (Move Originator AE Title
 * and Message ID), or NULL and -1 when it does not.  Called from the
 * SCP's threads. */
typedef int dimse_route_fn(void *arg, const char *sop_class, const char *sop_uid,
    const char *move_aet, int move_id, struct dimse_sink *sink);

struct dimse_scp;

/* Start a storage SCP for C-MOVE on bind_addr (IPv4, "0.0.0.0": every
 * interface) and port, answering to called AE aet and to calling AE
 * peer_aet only (the PACS; any other is rejected), accepting every
 * storage SOP class in the usual transfer syntaxes and writing each
 * instance as it arrived (no transcoding) to a temp file of the sink
 * route() chose, then calling the sink (as for dimse_get's callback);
 * the C-STORE response carries the sink's verdict.  Each connection on
 * its own thread; up to max_assoc associations of the PACS at once (a
 * connection that has not presented itself within a few seconds is
 * closed, and does not count).  With tls->on only TLS connections are
 * taken (tls->cert and tls->key required) and the PACS must present a
 * certificate that verifies against tls->ca.  NULL with err on failure
 * (port in use: say so). */
struct dimse_scp *dimse_scp_start(const char *aet, const char *peer_aet, const char *bind_addr,
    int port, int max_assoc, int timeout, const struct dimse_tls *tls, dimse_route_fn *route,
    void *arg, char err[DCM_ERR_MAX]);
/* Stop accepting, wait for running associations to end, free. */
void dimse_scp_stop(struct dimse_scp *scp);

/* C-MOVE the series (or those SOP instances, IMAGE level) to dest_aet;
 * returns when the PACS sends its final response, by which time every
 * C-STORE it made has been answered.  msg_id (1-65535) is the request's
 * Message ID, which the PACS may quote in those C-STOREs (route()'s
 * move_id).  Model and counts as for dimse_get. */
int dimse_move(const struct dimse_peer *peer, const char *dest_aet, int msg_id,
    const char *patient_id, const char *study_uid,
    const char *series_uid, const char *const *sops, int nsops, struct dimse_counts *counts,
    char err[DCM_ERR_MAX]);

#ifdef __cplusplus
}
#endif

#endif
