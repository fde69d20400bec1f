/* config.c - thlhp.ini: a table of keys, checked strictly as they are read. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <ini.h>
#include "config.h"
#include "util.h"

enum ktype { K_STR, K_INT, K_BOOL, K_ENUM, K_AE, K_PATH, K_SIZE };

struct key {
	const char *section, *name;
	enum ktype type;
	size_t off;               /* offsetof(struct config, ...) */
	long min, max;            /* K_INT and K_SIZE range */
	const char *const *names; /* K_ENUM values, index = enum value */
};

static const char *const protocols[] = { "dimse", "dicomweb", "folder", NULL };
static const char *const retrieves[] = { "move", "get", NULL };
static const char *const compressions[] = { "store", "deflate", "bzip2", NULL };
static const char *const encrypts[] = { "no", "aes256", NULL };

#define O(f) offsetof(struct config, f)
/* Every key; struct config's lines[] is indexed like this table. */
static const struct key keys[] = {
	{ "pacs", "protocol", K_ENUM, O(pacs.protocol), 0, 0, protocols },
	{ "pacs", "host", K_STR, O(pacs.host), 0, 0, NULL },
	{ "pacs", "port", K_INT, O(pacs.port), 1, 65535, NULL },
	{ "pacs", "called_aet", K_AE, O(pacs.called_aet), 0, 0, NULL },
	{ "pacs", "calling_aet", K_AE, O(pacs.calling_aet), 0, 0, NULL },
	{ "pacs", "retrieve", K_ENUM, O(pacs.retrieve), 0, 0, retrieves },
	{ "pacs", "move_destination", K_AE, O(pacs.move_destination), 0, 0, NULL },
	{ "pacs", "store_port", K_INT, O(pacs.store_port), 1, 65535, NULL },
	{ "pacs", "store_bind", K_STR, O(pacs.store_bind), 0, 0, NULL },
	{ "pacs", "peer_aet", K_AE, O(pacs.peer_aet), 0, 0, NULL },
	{ "pacs", "max_associations", K_INT, O(pacs.max_associations), 1, 64, NULL },
	{ "pacs", "max_requests_per_minute", K_INT, O(pacs.max_requests_per_minute), 1, 1000000, NULL },
	{ "pacs", "timeout", K_INT, O(pacs.timeout), 1, 86400, NULL },
	{ "pacs", "retries", K_INT, O(pacs.retries), 0, 100, NULL },
	{ "pacs", "tls", K_BOOL, O(pacs.tls), 0, 0, NULL },
	{ "pacs", "tls_ca", K_PATH, O(pacs.tls_ca), 0, 0, NULL },
	{ "pacs", "tls_cert", K_PATH, O(pacs.tls_cert), 0, 0, NULL },
	{ "pacs", "tls_key", K_PATH, O(pacs.tls_key), 0, 0, NULL },
	{ "pacs", "url", K_STR, O(pacs.url), 0, 0, NULL },
	{ "pacs", "auth", K_STR, O(pacs.auth), 0, 0, NULL },
	{ "pacs", "path", K_PATH, O(pacs.path), 0, 0, NULL },
	{ "pacs", "max_instance_size", K_SIZE, O(pacs.max_instance_size), 1, 1L << 40, NULL },
	{ "select", "patient_id", K_STR, O(select.patient_id), 0, 0, NULL },
	{ "select", "patient_id_regex", K_STR, O(select.patient_id_regex), 0, 0, NULL },
	{ "select", "patients_file", K_STR, O(select.patients_file), 0, 0, NULL },
	{ "select", "modality", K_STR, O(select.modality), 0, 0, NULL },
	{ "select", "study_date", K_STR, O(select.study_date), 0, 0, NULL },
	{ "output", "dicom_dir", K_PATH, O(output.dicom_dir), 0, 0, NULL },
	{ "output", "zip_dir", K_PATH, O(output.zip_dir), 0, 0, NULL },
	{ "output", "delimiter", K_STR, O(output.delimiter), 0, 0, NULL },
	{ "output", "compression", K_ENUM, O(output.compression), 0, 0, compressions },
	{ "output", "level", K_INT, O(output.level), 1, 9, NULL },
	{ "output", "keep_old", K_BOOL, O(output.keep_old), 0, 0, NULL },
	{ "output", "checksums", K_BOOL, O(output.checksums), 0, 0, NULL },
	{ "output", "encrypt", K_ENUM, O(output.encrypt), 0, 0, encrypts },
	{ "output", "password", K_STR, O(output.password), 0, 0, NULL },
	{ "state", "url", K_STR, O(state.url), 0, 0, NULL },
	{ "state", "lease", K_INT, O(state.lease), 2, 86400, NULL },
	{ "notify", "ping_url", K_STR, O(notify.ping_url), 0, 0, NULL },
	{ "notify", "include_ids", K_BOOL, O(notify.include_ids), 0, 0, NULL },
};
#undef O

/* What the reader and the handler share while one file is parsed. */
struct parse {
	struct config *cfg;
	const char *name;     /* file name for messages */
	const char *text;     /* config_load_string: remaining text */
	FILE *fp;
	int line;             /* line the reader handed out last */
	int seen[LEN(keys)];  /* line each key was set on, 0 if not */
	char *err;            /* first error */
	int err_line;         /* its line */
	int secret_line;      /* a password written in the file itself, or 0 */
	const struct key *secret;
	char *whole;          /* the line read last, whole (getline's buffer) */
	size_t wholecap;
	const char *rest;     /* the part of a long line inih was not handed, or NULL */
	const char *cut;      /* where inih's copy of that line was cut */
};

static void
perr(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (p->err)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	p->err = xasprintf("%s:%d: %s", p->name, p->line, msg);
	p->err_line = p->line;
	free(msg);
	/* A value quoted back may hold a stray CR or an escape: keep the
	 * message one line of text on the terminal. */
	for (char *c = p->err; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			*c = '?';
}

static void
check_section_line(struct parse *p, const char *line)
{
	const char *s = line + strspn(line, " \t"), *e;
	size_t i, n;

	if (*s != '[' || !(e = strchr(s, ']')))
		return;
	s++;
	n = (size_t)(e - s);
	for (i = 0; i < LEN(keys); i++)
		if (strlen(keys[i].section) == n && strncmp(keys[i].section, s, n) == 0)
			return;
	perr(p, "[%.*s]: unknown section (known: pacs, select, output, state, notify)", (int)n, s);
}

/* ini_reader: one line at a time, so the handler knows the line number.
 * Debian's inih reads lines of at most 200 bytes into a fixed buffer, yet
 * URLs and ID lists are longer: a longer line is handed to inih cut after
 * a non-blank byte, and the handler joins the rest back to its value. */
static char *
reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	size_t n, cut;

	p->rest = p->cut = NULL;
	if (p->fp) {
		ssize_t got = getline(&p->whole, &p->wholecap, p->fp);

		if (got < 0)
			return NULL;
		n = (size_t)got;
	} else {
		const char *nl;

		if (!*p->text)
			return NULL;
		nl = strchr(p->text, '\n');
		n = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
		if (n + 1 > p->wholecap) {
			p->wholecap = n + 1;
			p->whole = xrealloc(p->whole, p->wholecap);
		}
		memcpy(p->whole, p->text, n);
		p->whole[n] = '\0';
		p->text += n;
	}
	p->line++;
	if (n < (size_t)size - 1 || (n == (size_t)size - 1 && p->whole[n - 1] == '\n')) {
		memcpy(buf, p->whole, n + 1);
		check_section_line(p, buf);
		return buf;
	}
	for (cut = (size_t)size - 2; cut > 0 && strchr(" \t\r\n", p->whole[cut - 1]); cut--)
		;
	memcpy(buf, p->whole, cut);
	buf[cut] = '\n';
	buf[cut + 1] = '\0';
	p->rest = p->whole + cut;
	p->cut = buf + cut;
	check_section_line(p, buf);
	return buf;
}

/* value, which inih took from a line cut by reader, with the rest of
 * that line joined as inih would have read it: up to an inline comment
 * (';' after a blank), trailing blanks dropped.  Malloc'd. */
static char *
long_value(const struct parse *p, const char *value)
{
	const char *r = p->rest, *end = r;
	int was_space = 0;

	while (*end && !(was_space && *end == ';')) {
		was_space = strchr(" \t\r\n\v\f", *end) != NULL;
		end++;
	}
	while (end > r && strchr(" \t\r\n\v\f", end[-1]))
		end--;
	return xasprintf("%s%.*s", value, (int)(end - r), r);
}

/* Does the raw value (before ${NAME} is replaced) of section.name hold a
 * secret written out in the file: a credential after "bearer"/"basic", or
 * the password of a URL's user:password@ or password= part? */
static int
literal_secret(const char *section, const char *name, const char *v)
{
	const char *at, *colon, *pw;

	v += strspn(v, " \t");
	if (strcmp(section, "output") == 0 && strcmp(name, "password") == 0)
		return *v && strncmp(v, "${", 2) != 0;
	if (strcmp(section, "pacs") == 0 && strcmp(name, "auth") == 0) {
		v += strcspn(v, " \t");
		v += strspn(v, " \t");
		return *v && strncmp(v, "${", 2) != 0;
	}
	if (strcmp(name, "url") != 0)
		return 0;
	if ((pw = strstr(v, "password=")) != NULL)
		return strncmp(pw + 9, "${", 2) != 0 && pw[9] && pw[9] != '&';
	if ((colon = strstr(v, "://")) == NULL)
		return 0;
	colon += 3;
	at = strchr(colon, '@');
	if (!at || memchr(colon, '/', (size_t)(at - colon)))
		return 0;
	colon = memchr(colon, ':', (size_t)(at - colon));
	return colon && colon + 1 < at && strncmp(colon + 1, "${", 2) != 0;
}

/* Replace ${NAME} with the environment variable NAME. */
static char *
expand(struct parse *p, const char *key, const char *v)
{
	size_t cap = strlen(v) + 1, len = 0;
	char *out = xmalloc(cap);

	while (*v) {
		const char *end, *val;
		char name[256];
		size_t n;

		if (v[0] != '$' || v[1] != '{') {
			out[len++] = *v++;
			continue;
		}
		end = strchr(v + 2, '}');
		n = end ? (size_t)(end - v - 2) : 0;
		if (!end || n == 0 || n >= sizeof(name)) {
			perr(p, "%s: unterminated or empty ${...}", key);
			free(out);
			return NULL;
		}
		memcpy(name, v + 2, n);
		name[n] = '\0';
		val = getenv(name);
		if (!val) {
			perr(p, "%s: environment variable %s is not set", key, name);
			free(out);
			return NULL;
		}
		cap += strlen(val);
		out = xrealloc(out, cap);
		memcpy(out + len, val, strlen(val));
		len += strlen(val);
		v = end + 1;
	}
	out[len] = '\0';
	return out;
}

/* A byte count: a whole number, with K, M, G or T for powers of 1024. */
static int
parse_size(const char *s, long min, long max, long long *out)
{
	static const char units[] = "KMGT";
	const char *u;
	char *num = xstrdup(s);
	size_t n = strlen(num);
	long v, mult = 1;
	int rc;

	if (n > 1 && (u = strchr(units, num[n - 1]))) {
		mult = 1L << (10 * (u - units + 1));
		num[n - 1] = '\0';
	}
	rc = parse_int(num, 0, max / mult, &v);
	free(num);
	if (rc < 0 || v * mult < min)
		return -1;
	*out = (long long)v * mult;
	return 0;
}

static int
set_key(struct parse *p, const struct key *k, const char *key, char *v)
{
	void *field = (char *)p->cfg + k->off;
	long n;
	int i;

	switch (k->type) {
	case K_SIZE:
		if (parse_size(v, k->min, k->max, (long long *)field) < 0) {
			perr(p, "%s: '%s' is not a size from %ld bytes to %ldT (a whole number, "
			    "K, M, G or T for KiB, MiB, GiB, TiB)", key, v, k->min, k->max >> 40);
			return -1;
		}
		return 0;
	case K_INT:
		if (parse_int(v, k->min, k->max, &n) < 0) {
			perr(p, "%s: '%s' is not a whole number from %ld to %ld", key, v, k->min, k->max);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case K_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*(int *)field = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*(int *)field = 0;
		else {
			perr(p, "%s: '%s' is not yes or no", key, v);
			return -1;
		}
		return 0;
	case K_ENUM:
		for (i = 0; k->names[i]; i++)
			if (strcmp(v, k->names[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		perr(p, "%s: '%s' is not one of %s%s%s%s%s", key, v, k->names[0],
		    k->names[1] ? " | " : "", k->names[1] ? k->names[1] : "",
		    k->names[1] && k->names[2] ? " | " : "", k->names[1] && k->names[2] ? k->names[2] : "");
		return -1;
	case K_AE:
		if (!*v || strlen(v) > 16) {
			perr(p, "%s: AE title '%s' must be 1 to 16 characters", key, v);
			return -1;
		}
		for (const char *c = v; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == '\\' || (unsigned char)*c > 0x7e) {
				perr(p, "%s: AE title '%s' has a character DICOM does not allow", key, v);
				return -1;
			}
		/* fallthrough */
	case K_STR:
	case K_PATH:
		if (k->type == K_PATH && !*v) {
			perr(p, "%s: empty path", key);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	}
	return -1;
}

static int
handle(struct parse *p, const char *section, const char *name, const char *value);

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char *whole;
	int rc;

	/* Only when the value ran up to the cut: else a comment took the rest. */
	if (!name || !p->rest || value + strlen(value) != p->cut)
		return handle(p, section, name, value);
	whole = long_value(p, value);
	rc = handle(p, section, name, whole);
	free(whole);
	return rc;
}

static int
handle(struct parse *p, const char *section, const char *name, const char *value)
{
	size_t i;
	int known_section = 0;
	char *key, *v;

	if (!name)
		return 1;
	key = xasprintf("[%s] %s", section, name);
	for (i = 0; i < LEN(keys); i++) {
		if (strcmp(keys[i].section, section) != 0)
			continue;
		known_section = 1;
		if (strcmp(keys[i].name, name) == 0)
			break;
	}
	if (i == LEN(keys)) {
		if (known_section)
			perr(p, "%s: unknown key", key);
		else if (!*section)
			perr(p, "%s: key outside any section", name);
		else
			perr(p, "%s: unknown section [%s]", key, section);
		goto bad;
	}
	if (p->seen[i]) {
		perr(p, "%s: given twice (first on line %d)", key, p->seen[i]);
		goto bad;
	}
	p->seen[i] = p->line;
	p->cfg->lines[i] = p->line;
	if (strcmp(keys[i].section, "pacs") == 0 && strcmp(keys[i].name, "protocol") == 0)
		p->cfg->pacs.protocol_line = p->line;
	if (!p->secret_line && literal_secret(section, name, value)) {
		p->secret_line = p->line;
		p->secret = &keys[i];
	}
	v = expand(p, key, value);
	if (!v || set_key(p, &keys[i], key, v) < 0) {
		free(v);
		goto bad;
	}
	free(v);
	free(key);
	return 1;
bad:
	free(key);
	return 0;
}

static void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->pacs.protocol = PROTO_DIMSE;
	cfg->pacs.calling_aet = xstrdup("THLHP");
	cfg->pacs.retrieve = RETRIEVE_MOVE;
	cfg->pacs.store_port = 11113;
	cfg->pacs.max_associations = 4;
	cfg->pacs.max_requests_per_minute = 600;
	cfg->pacs.timeout = 30;
	cfg->pacs.max_instance_size = 4LL << 30;
	cfg->pacs.retries = 5;
	cfg->output.dicom_dir = xstrdup("data/dicom");
	cfg->output.zip_dir = xstrdup("data/zip");
	cfg->output.delimiter = xstrdup("__seriesCount");
	cfg->output.compression = COMP_DEFLATE;
	cfg->output.level = 1;
	cfg->state.url = xstrdup("sqlite:.thlhp/state.db");
	cfg->state.lease = 60;
}

static int
seen(const struct parse *p, const char *section, const char *name)
{
	for (size_t i = 0; i < LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return p->seen[i];
	return 0;
}

/* What no single key can check: keys a protocol needs, and combinations. */
static void
config_check(struct parse *p)
{
	struct config *c = p->cfg;
	const char *need[4] = { NULL };
	const char *proto = protocols[c->pacs.protocol];

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

		for (size_t k = 0; k < LEN(keys); k++)
			if (strcmp(keys[k].section, "pacs") == 0 && strcmp(keys[k].name, need[i]) == 0 &&
			    keys[k].type != K_INT)
				v = *(char **)((char *)c + keys[k].off);
		if (!seen(p, "pacs", need[i])) {
			perr(p, "[pacs] %s: required for protocol = %s", need[i], proto);
			return;
		}
		if (v && !*v) {
			p->line = seen(p, "pacs", need[i]);
			perr(p, "[pacs] %s: empty, but protocol = %s needs it", need[i], proto);
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
			perr(p, "[pacs] store_bind: '%s': not an IPv4 address (our storage SCP "
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
		perr(p, "[pacs] tls: tls = yes needs tls_ca");
		return;
	}
	/* Our certificate and its key come together. */
	if (!c->pacs.tls_cert != !c->pacs.tls_key) {
		const char *given = c->pacs.tls_cert ? "tls_cert" : "tls_key";

		p->line = seen(p, "pacs", given);
		perr(p, "[pacs] %s: given without %s (give our certificate and its private key, "
		    "or neither)", given, c->pacs.tls_cert ? "tls_key" : "tls_cert");
		return;
	}
	/* For C-MOVE the PACS connects to our storage SCP, which then serves
	 * TLS only and must present a certificate. */
	if (c->pacs.protocol == PROTO_DIMSE && c->pacs.tls && c->pacs.retrieve == RETRIEVE_MOVE &&
	    !c->pacs.tls_cert) {
		p->line = seen(p, "pacs", "tls");
		perr(p, "[pacs] tls: tls = yes with retrieve = move needs tls_cert and tls_key "
		    "(our storage SCP on store_port serves the PACS over TLS)");
		return;
	}
	/* No digits: the count after the delimiter must read back unambiguously;
	 * no '%': PatientIDs are percent-encoded before it. */
	if (!*c->output.delimiter ||
	    strspn(c->output.delimiter, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-") !=
	    strlen(c->output.delimiter)) {
		p->line = seen(p, "output", "delimiter");
		perr(p, "[output] delimiter: '%s': use letters, '.', '_' and '-' only", c->output.delimiter);
		return;
	}
	/* An encoded PatientID takes up to 160 bytes of a 255-byte name. */
	if (strlen(c->output.delimiter) > 32) {
		p->line = seen(p, "output", "delimiter");
		perr(p, "[output] delimiter: longer than 32 characters (archive names must fit "
		    "in 255 bytes)");
		return;
	}
	if (c->output.encrypt != ENC_NO && (!c->output.password || !*c->output.password)) {
		p->line = seen(p, "output", "encrypt");
		perr(p, "[output] encrypt = %s needs [output] password, best from the environment: "
		    "password = ${THLHP_ZIP_PASSWORD}", encrypts[c->output.encrypt]);
		return;
	}
	if (c->output.encrypt == ENC_NO && c->output.password) {
		p->line = seen(p, "output", "password");
		perr(p, "[output] password is set but encrypt = no: say encrypt = aes256, "
		    "or drop the password");
		return;
	}
	if (strcmp(c->output.dicom_dir, c->output.zip_dir) == 0) {
		int zl = seen(p, "output", "zip_dir");

		p->line = zl ? zl : seen(p, "output", "dicom_dir");
		perr(p, "[output] %s: dicom_dir and zip_dir must differ", zl ? "zip_dir" : "dicom_dir");
		return;
	}
}

static int
config_parse(struct config *cfg, struct parse *p, char **err)
{
	int rc;

	_Static_assert(LEN(keys) <= LEN(cfg->lines), "struct config: lines[] too small");
	config_defaults(cfg);
	cfg->file = xstrdup(p->name);
	rc = ini_parse_stream(reader, p, handler, p);
	free(p->whole);
	p->whole = NULL;
	if (rc > 0 && (!p->err || rc < p->err_line)) {
		/* inih's syntax error came first: report it instead. */
		free(p->err);
		p->err = NULL;
		p->line = rc;
		perr(p, "syntax error (expected [section] or key = value)");
	}
	config_check(p);
	if (p->err) {
		*err = p->err;
		config_free(cfg);
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, const char *file, char **err)
{
	struct parse p = { .cfg = cfg, .name = file };
	struct stat sb;
	int rc;

	p.fp = fopen(file, "r");
	if (!p.fp) {
		*err = xasprintf("%s: cannot read config: %s%s", file, strerror(errno),
		    errno == ENOENT ? " (write a sample with: thlhp-make -t init)" : "");
		memset(cfg, 0, sizeof(*cfg));
		return -1;
	}
	rc = config_parse(cfg, &p, err);
	if (rc == 0 && p.secret_line && fstat(fileno(p.fp), &sb) == 0 &&
	    (sb.st_mode & (S_IRGRP | S_IROTH)))
		warn("%s:%d: [%s] %s holds a password and %s is readable by others (mode %04o): "
		    "chmod 600 %s, or take the password from the environment with ${NAME}",
		    file, p.secret_line, p.secret->section, p.secret->name, file,
		    (unsigned)(sb.st_mode & 07777), file);
	fclose(p.fp);
	return rc;
}

int
config_load_string(struct config *cfg, const char *name, const char *text, char **err)
{
	struct parse p = { .cfg = cfg, .name = name, .text = text };

	return config_parse(cfg, &p, err);
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < LEN(keys); i++)
		if (keys[i].type == K_STR || keys[i].type == K_PATH || keys[i].type == K_AE)
			free(*(char **)((char *)cfg + keys[i].off));
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

char *
config_where(const struct config *cfg, const char *section, const char *key)
{
	for (size_t i = 0; i < LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, key) == 0 &&
		    cfg->lines[i])
			return xasprintf("%s:%d: [%s] %s", cfg->file, cfg->lines[i], section, key);
	return xasprintf("%s: [%s] %s", cfg->file, section, key);
}

char *
config_zip_settings(const struct config *cfg)
{
	/* The password is not part of it: a new one takes -B. */
	return xasprintf("compression=%s level=%d%s", compressions[cfg->output.compression],
	    cfg->output.compression == COMP_STORE ? 0 : cfg->output.level,
	    cfg->output.encrypt == ENC_AES256 ? " encrypt=aes256" : "");
}
