/*
 * config-check.c - what no single key of thlhp.ini can check: the keys a
 * protocol needs, and combinations (TLS for C-MOVE, the storage SCP's
 * address, the delimiter, encryption and its password, the two folders).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "config-int.h"
#include "util.h"

static int
seen(const struct parse *p, const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
			return p->seen[i];
	return 0;
}

/* What no single key can check: keys a protocol needs, and combinations. */
void
config_check(struct parse *p)
{
	struct config *c = p->cfg;
	const char *need[4] = { NULL };
	const char *proto = config_protocols[c->pacs.protocol];

	if (p->err)
		return;
	p->line = c->pacs.protocol_line;
	if (!seen(p, "pacs", "protocol")) {
		p->err = xasprintf("%s: [pacs] protocol: required (dimse, dicomweb or folder)", p->name);
		return;
	}
	switch (c->pacs.protocol) {
	case PROTO_DIMSE:
		need[0] = "host"; need[1] = "port"; need[2] = "called_aet";
		break;
	case PROTO_DICOMWEB:
		need[0] = "url";
		break;
	case PROTO_FOLDER:
		need[0] = "path";
		break;
	}
	for (int i = 0; need[i]; i++) {
		const char *v = NULL;

		for (size_t k = 0; k < config_nkeys; k++)
			if (strcmp(config_keys[k].section, "pacs") == 0 && strcmp(config_keys[k].name, need[i]) == 0 &&
			    config_keys[k].type != K_INT)
				v = *(char **)((char *)c + config_keys[k].off);
		if (!seen(p, "pacs", need[i])) {
			config_perr(p, "[pacs] %s: required for protocol = %s", need[i], proto);
			return;
		}
		if (v && !*v) {
			p->line = seen(p, "pacs", need[i]);
			config_perr(p, "[pacs] %s: empty, but protocol = %s needs it", need[i], proto);
			return;
		}
	}
	if (!c->pacs.move_destination)
		c->pacs.move_destination = xstrdup(c->pacs.calling_aet);
	/* Our storage SCP takes associations from the PACS only. */
	if (!c->pacs.peer_aet && c->pacs.called_aet)
		c->pacs.peer_aet = xstrdup(c->pacs.called_aet);
	if (c->pacs.store_bind) {
		struct in_addr a;

		if (inet_pton(AF_INET, c->pacs.store_bind, &a) != 1) {
			p->line = seen(p, "pacs", "store_bind");
			config_perr(p, "[pacs] store_bind: '%s': not an IPv4 address (our storage SCP "
			    "listens on IPv4 only; 0.0.0.0 is every interface)", c->pacs.store_bind);
			return;
		}
	} else {
		/* A PACS on this host reaches us on loopback: nobody else
		 * needs to. */
		const char *h = c->pacs.host ? c->pacs.host : "";
		struct in_addr a;
		int lo = strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
		    (inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);

		c->pacs.store_bind = xstrdup(lo ? "127.0.0.1" : "0.0.0.0");
	}
	if (c->pacs.tls && !c->pacs.tls_ca) {
		p->line = seen(p, "pacs", "tls");
		config_perr(p, "[pacs] tls: tls = yes needs tls_ca");
		return;
	}
	/* Our certificate and its key come together. */
	if (!c->pacs.tls_cert != !c->pacs.tls_key) {
		const char *given = c->pacs.tls_cert ? "tls_cert" : "tls_key";

		p->line = seen(p, "pacs", given);
		config_perr(p, "[pacs] %s: given without %s (give our certificate and its private key, "
		    "or neither)", given, c->pacs.tls_cert ? "tls_key" : "tls_cert");
		return;
	}
	/* For C-MOVE the PACS connects to our storage SCP, which then serves
	 * TLS only and must present a certificate. */
	if (c->pacs.protocol == PROTO_DIMSE && c->pacs.tls && c->pacs.retrieve == RETRIEVE_MOVE &&
	    !c->pacs.tls_cert) {
		p->line = seen(p, "pacs", "tls");
		config_perr(p, "[pacs] tls: tls = yes with retrieve = move needs tls_cert and tls_key "
		    "(our storage SCP on store_port serves the PACS over TLS)");
		return;
	}
	/* No digits: the count after the delimiter must read back unambiguously;
	 * no '%': PatientIDs are percent-encoded before it. */
	if (!*c->output.delimiter ||
	    strspn(c->output.delimiter, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-") !=
	    strlen(c->output.delimiter)) {
		p->line = seen(p, "output", "delimiter");
		config_perr(p, "[output] delimiter: '%s': use letters, '.', '_' and '-' only", c->output.delimiter);
		return;
	}
	/* An encoded PatientID takes up to 160 bytes of a 255-byte name. */
	if (strlen(c->output.delimiter) > 32) {
		p->line = seen(p, "output", "delimiter");
		config_perr(p, "[output] delimiter: longer than 32 characters (archive names must fit "
		    "in 255 bytes)");
		return;
	}
	if (c->output.encrypt != ENC_NO && (!c->output.password || !*c->output.password)) {
		p->line = seen(p, "output", "encrypt");
		config_perr(p, "[output] encrypt = %s needs [output] password, best from the environment: "
		    "password = ${THLHP_ZIP_PASSWORD}", config_encrypts[c->output.encrypt]);
		return;
	}
	if (c->output.encrypt == ENC_NO && c->output.password) {
		p->line = seen(p, "output", "password");
		config_perr(p, "[output] password is set but encrypt = no: say encrypt = aes256, "
		    "or drop the password");
		return;
	}
	if (strcmp(c->output.dicom_dir, c->output.zip_dir) == 0) {
		int zl = seen(p, "output", "zip_dir");

		p->line = zl ? zl : seen(p, "output", "dicom_dir");
		config_perr(p, "[output] %s: dicom_dir and zip_dir must differ", zl ? "zip_dir" : "dicom_dir");
		return;
	}
}

