/*
 * config-check.c - what no single key of thlhp.ini can check: the keys a
 * protocol needs and its own checks (source_ops), and combinations (our
 * certificate and key, the delimiter, encryption and its password, the
 * two folders).
 */
#include <stdlib.h>
#include <string.h>
#include "config-int.h"
#include "notify.h"
#include "source.h"
#include "util.h"

static int
seen(const struct parse *p, const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
			return p->seen[i];
	return 0;
}

/* [omop]: where its rows go, and whose they are; 1 when fine. */
static int
check_omop(struct parse *p)
{
	struct config *c = p->cfg;

	p->line = c->omop.on;
	if (!c->metadata.on) {
		config_perr(p, "[omop]: needs a [metadata] section (its rows are made from the "
		    "stored headers)");
		return 0;
	}
	if (!c->omop.url == !c->omop.dir) {
		if (c->omop.url)
			p->line = seen(p, "omop", "url");
		config_perr(p, "[omop] %s", c->omop.url ? "url and dir: give one (a PostgreSQL URI "
		    "to write into, or a folder for CSV files)" : "url or dir: required (a "
		    "PostgreSQL URI to write into, or a folder for CSV files)");
		return 0;
	}
	if (c->omop.url && strncmp(c->omop.url, "postgresql://", 13) != 0 &&
	    strncmp(c->omop.url, "postgres://", 11) != 0) {
		p->line = seen(p, "omop", "url");
		config_perr(p, "[omop] url: '%s' is not a postgresql:// URI", c->omop.url);
		return 0;
	}
	if (!*c->omop.schema || strspn(c->omop.schema, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
	    strlen(c->omop.schema) || (*c->omop.schema >= '0' && *c->omop.schema <= '9')) {
		p->line = seen(p, "omop", "schema");
		config_perr(p, "[omop] schema: '%s': use lower-case letters, digits and '_'",
		    c->omop.schema);
		return 0;
	}
	if (!c->omop.person_map && c->omop.missing_person == MISSING_SKIP) {
		config_perr(p, "[omop] person_map: required unless missing_person = zero (without "
		    "it every patient would be skipped)");
		return 0;
	}
	return 1;
}

/* An address as mail takes it in angle brackets: one '@', no blanks,
 * brackets, quotes or control bytes, at most 254 bytes (RFC 5321's path,
 * brackets included, is 256). */
static int
mail_addr_ok(const char *a, size_t n)
{
	const char *at = memchr(a, '@', n);

	if (!n || n > 254 || !at || at == a || at == a + n - 1 ||
	    memchr(at + 1, '@', (size_t)(a + n - at - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == 0x7f || strchr("<>\"(),;\\", a[i]))
			return 0;
	return 1;
}

/* [notify]: where mail goes (mail_to's addresses, separated by commas or
 * blanks, into n->rcpt), and from whom; 1 when fine. */
static int
check_notify(struct parse *p)
{
	struct config_notify *n = &p->cfg->notify;

	if (n->mail_to) {
		const char *s = n->mail_to;
		int count = 0;

		p->line = seen(p, "notify", "mail_to");
		while (*(s += strspn(s, " \t,"))) {
			size_t len = strcspn(s, " \t,");

			if (!mail_addr_ok(s, len)) {
				config_perr(p, "[notify] mail_to: '%.*s' is not a mail address", (int)len, s);
				return 0;
			}
			n->rcpt = xreallocarray(n->rcpt, (size_t)count + 2, sizeof(*n->rcpt));
			n->rcpt[count++] = xasprintf("%.*s", (int)len, s);
			n->rcpt[count] = NULL;
			s += len;
		}
		if (!count) {
			config_perr(p, "[notify] mail_to: no address given");
			return 0;
		}
		if (!n->smtp_url || !n->mail_from) {
			config_perr(p, "[notify] mail_to: needs %s too", !n->smtp_url ? "smtp_url "
			    "(smtp://host:25, or smtps://host:465)" : "mail_from (the sender's address)");
			return 0;
		}
	}
	if (n->mail_from && !mail_addr_ok(n->mail_from, strlen(n->mail_from))) {
		p->line = seen(p, "notify", "mail_from");
		config_perr(p, "[notify] mail_from: '%s' is not a mail address", n->mail_from);
		return 0;
	}
	if (n->smtp_url && strncmp(n->smtp_url, "smtp://", 7) != 0 &&
	    strncmp(n->smtp_url, "smtps://", 8) != 0) {
		p->line = seen(p, "notify", "smtp_url");
		config_perr(p, "[notify] smtp_url: '%s': use smtp://host[:port] (STARTTLS when the "
		    "server offers it) or smtps://host[:port]", n->smtp_url);
		return 0;
	}
	if (n->smtp_password && !n->smtp_user) {
		p->line = seen(p, "notify", "smtp_password");
		config_perr(p, "[notify] smtp_password: needs smtp_user");
		return 0;
	}
	if (n->webhook_url && strncmp(n->webhook_url, "http://", 7) != 0 &&
	    strncmp(n->webhook_url, "https://", 8) != 0) {
		p->line = seen(p, "notify", "webhook_url");
		config_perr(p, "[notify] webhook_url: '%s' is not an http:// or https:// URL",
		    n->webhook_url);
		return 0;
	}
	if (notify_last_time(n->digest_time, 3 * 86400) < 0) {
		p->line = seen(p, "notify", "digest_time");
		config_perr(p, "[notify] digest_time: '%s': use HH:MM or HH:MM:SS (local time)",
		    n->digest_time);
		return 0;
	}
	return 1;
}

/* [kobo]: a server and a token; 1 when fine. */
static int
check_kobo(struct parse *p)
{
	struct config_kobo *k = &p->cfg->kobo;

	p->line = k->on;
	if (!k->url || !*k->url) {
		config_perr(p, "[kobo] url: required (the KPI server, e.g. https://kf.kobotoolbox.org)");
		return 0;
	}
	if (strncmp(k->url, "http://", 7) != 0 && strncmp(k->url, "https://", 8) != 0) {
		p->line = seen(p, "kobo", "url");
		config_perr(p, "[kobo] url: '%s' is not an http:// or https:// URL", k->url);
		return 0;
	}
	if (!k->token || !*k->token) {
		if (seen(p, "kobo", "token"))
			p->line = seen(p, "kobo", "token");
		config_perr(p, "[kobo] token: required: the API token, best from the environment "
		    "(token = ${KOBO_TOKEN})");
		return 0;
	}
	if (k->forms[strspn(k->forms, " \t")] == '\0') {
		p->line = seen(p, "kobo", "forms");
		config_perr(p, "[kobo] forms: 'all' or the forms' asset uids");
		return 0;
	}
	return 1;
}

/* What no single key can check: keys a protocol needs, and combinations. */
void
config_check(struct parse *p)
{
	struct config *c = p->cfg;
	const struct source_ops *ops;
	const char *proto = c->pacs.protocol;
	char *why;

	if (p->err)
		return;
	p->line = c->pacs.protocol_line;
	if (!seen(p, "pacs", "protocol") || !(ops = source_find(proto))) {
		p->err = xasprintf("%s: [pacs] protocol: required (%s)", p->name, source_names());
		return;
	}
	for (const char *const *need = ops->needs; need && *need; need++) {
		const char *v = NULL;

		for (size_t k = 0; k < config_nkeys; k++)
			if (strcmp(config_keys[k].section, "pacs") == 0 && strcmp(config_keys[k].name, *need) == 0 &&
			    config_keys[k].type != K_INT)
				v = *(char **)((char *)c + config_keys[k].off);
		if (!seen(p, "pacs", *need)) {
			config_perr(p, "[pacs] %s: required for protocol = %s", *need, proto);
			return;
		}
		if (v && !*v) {
			p->line = seen(p, "pacs", *need);
			config_perr(p, "[pacs] %s: empty, but protocol = %s needs it", *need, proto);
			return;
		}
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
	/* The protocol's own keys and defaults. */
	if (ops->check && (why = ops->check(c))) {
		p->err = why;
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
	if (c->omop.on && !check_omop(p))
		return;
	if (!check_notify(p))
		return;
	if (c->kobo.on && !check_kobo(p))
		return;
	config_rule_check(p);
}

