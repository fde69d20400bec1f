/*
 * dimse-scu.h - what dimse.cc, dimse-find.cc and dimse-get.cc share: C++
 * only, internal to the DCMTK shim (see dimse.h for the C interface).
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

#include <string>

namespace dimse_scu {

/* Format a one-line message into err (DCM_ERR_MAX bytes). */
void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Once per process: TCP_NODELAY and the data dictionary; -1 with err. */
int init(char *err);
/* A value without padding. */
std::string trim(const OFString &v);
/* Copy tag's value into out (len bytes); -1 with err when too long. */
int get(DcmItem *item, const DcmTagKey &tag, const char *name, char *out, size_t len, char *err);
/* An IS count; -1 when absent; -1 return with err when malformed. */
int get_count(DcmItem *item, const DcmTagKey &tag, const char *name, int *n, char *err);
/* Check a peer's fields; -1 with err. */
int check_peer(const struct dimse_peer *p, char *err);
/* AE titles, host, port, timeouts and DIMSE mode of scu from p. */
void configure(DcmSCU &scu, const struct dimse_peer *p);
/* initNetwork + negotiateAssociation, then the accepted presentation
 * context of the Q/R class; 0 and a message on failure. */
T_ASC_PresentationContextID associate(DcmSCU &scu, const struct dimse_peer *p,
	const char *qr_class, const char *what, char *err);
/* The Error Comment (0000,0902) of a status detail, or "". */
std::string error_comment(DcmDataset *detail);

} /* namespace dimse_scu */

#endif
