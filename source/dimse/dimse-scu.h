/*
 * dimse-scu.h - what dimse.cc, dimse-find.cc, dimse-get.cc and
 * dimse-move.cc share: C++ only, internal to the DCMTK shim (see dimse.h
 * for the C interface).
 */
#ifndef THLHP_DIMSE_SCU_H
#define THLHP_DIMSE_SCU_H

#include "dimse.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scu.h>
#include <dcmtk/dcmtls/tlslayer.h>

#include <atomic>
#include <memory>
#include <string>

namespace dimse_scu {

/* Once per process: TCP_NODELAY and the data dictionary; -1 with err. */
int init(char *err);
/* A value without padding. */
std::string trim(const OFString &v);
/* Copy tag's value into out (len bytes); -1 with err when too long. */
int get(DcmItem *item, const DcmTagKey &tag, const char *name, char *out, size_t len, char *err);
/* An IS count; -1 when absent; -1 return with err when malformed. */
int get_count(DcmItem *item, const DcmTagKey &tag, const char *name, int *n, char *err);
/* An AE title: 1-16 characters. */
bool aet_ok(const char *s);
/* Check a peer's fields; -1 with err. */
int check_peer(const struct dimse_peer *p, char *err);
/* AE titles, host, port, timeouts and DIMSE mode of scu from p. */
void configure(DcmSCU &scu, const struct dimse_peer *p);
/* A TLS layer for t (t->on) in role NET_REQUESTOR (us calling the PACS)
 * or NET_ACCEPTOR (our storage SCP, which needs t->cert); NULL with err
 * naming the file or setting that failed. */
std::unique_ptr<DcmTLSTransportLayer> tls_new(const struct dimse_tls *t, T_ASC_NetworkRole role,
	char *err);
/* The TLS layer of one DcmSCU's association, if it has one: declared
 * before the DcmSCU so that it outlives it (DcmSCU only borrows it). */
class tls_layer {
public:
	tls_layer() = default;
	tls_layer(const tls_layer &) = delete;
	tls_layer &operator=(const tls_layer &) = delete;
	std::unique_ptr<DcmTLSTransportLayer> layer;	/* NULL: plain DICOM */
};
/* initNetwork (+ TLS from p->tls, kept in tls) + negotiateAssociation;
 * -1 and a message on failure, DIMSE_REJECTED when the PACS rejected the
 * association, DIMSE_UNVERIFIED when its certificate did not verify. */
int associate(DcmSCU &scu, const struct dimse_peer *p, tls_layer &tls, const char *what,
	char *err);

/* A Q/R service's two information models (Patient Root is tried first,
 * Study Root is the fallback): find_models, get_models, move_models. */
struct qr_models {
	const char *patient_root, *study_root;
};
extern const struct qr_models find_models, get_models, move_models;
/* Whether a request at level for patient_id fits Patient Root's hierarchy. */
bool patient_root_fits(enum dimse_level level, const char *patient_id);
/* Propose Study Root, and Patient Root first when patient_root. */
void propose_models(DcmSCU &scu, const struct qr_models &m, bool patient_root);
/* After associate: the accepted context, Patient Root's when patient_root
 * and the PACS took it, else Study Root's; *model says which.  0 with err
 * when neither was accepted. */
T_ASC_PresentationContextID model_context(DcmSCU &scu, const struct dimse_peer *p,
	const struct qr_models &m, bool patient_root, const char **model, const char *what,
	char *err);
/* What to add to the message of c, a failed request on an association
 * the PACS accepted: when it aborted, the likely reason; else "". */
const char *abort_hint(const OFCondition &c);
/* Whether p's caller wants the request in flight stopped. */
inline bool stopping(const struct dimse_peer *p)
{
	return p->stop != NULL && p->stop(p->stop_arg) != 0;
}
/* The Error Comment (0000,0902) of a status detail, or "". */
std::string error_comment(DcmDataset *detail);

/* Retrieval: C-GET (dimse-get.cc, where these live) and C-MOVE. */

/* The transfer syntaxes instances are taken in, as the PACS holds them. */
extern const char *const store_syntaxes[];
extern const size_t nstore_syntaxes;
/* A UID: 1-64 characters, no backslash. */
bool uid_ok(const char *s);
/* The identifier of a retrieval: the series (sops NULL), or those nsops
 * instances of it at IMAGE level, with PatientID when patient_id is not
 * NULL (Patient Root); fn and op name the caller in messages
 * ("dimse_get", "C-GET").  -1 with err. */
int retrieve_identifier(DcmDataset &q, const char *patient_id, const char *study_uid,
	const char *series_uid, const char *const *sops, int nsops, const char *fn,
	const char *op, char *err);
/* After associate, for a retrieval: the context of the model m the PACS
 * took (model_context) and the identifier for that model in q; 0 with err
 * when either fails. */
T_ASC_PresentationContextID retrieve_context(DcmSCU &scu, const struct dimse_peer *p,
	const struct qr_models &m, bool patient_root, const char *patient_id,
	const char *study_uid, const char *series_uid, const char *const *sops, int nsops,
	const char *fn, const char *op, DcmDataset &q, const char **model, char *err);
/* An instance has been received bit-preserving into path (rx_bytes
 * dataset bytes, from the progress notifications), for a C-STORE that
 * announced SOP instance sop_uid: check its size, read its
 * header, check the SOP instance, hand it to fn.  *status is the C-STORE
 * status to answer.  0: fn took it; 1: fn refused it (not our error);
 * -1: our error, in err.  Unless fn took it, path is removed. */
int store_received(const std::string &path, unsigned long rx_bytes, const char *sop_uid,
	dimse_store_fn *fn, void *arg, Uint16 *status, char *err);

/* Bumped by every C-STORE command and data chunk our storage SCP receives
 * (dimse-scp.cc): a C-MOVE that hears nothing is not timed out while
 * instances still arrive. */
extern std::atomic<unsigned long long> store_activity;
/* The SCP's last trouble, and a counter bumped with each: the message of a
 * C-MOVE that fails meanwhile ends with it. */
extern std::atomic<unsigned long> note_seq;
void note(const char *msg);
std::string last_note();

} /* namespace dimse_scu */

#endif
