/* config.c - thlhp.ini: a table of keys, checked strictly as they are
 * read (what no single key can check: config-check.c). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ini.h>
#include "config-int.h"
#include "source.h"
#include "units.h"
#include "util.h"

static const char *const retrieves[] = { "move", "get", NULL };
static const char *const compressions[] = { "store", "deflate", "bzip2", NULL };
const char *const config_encrypts[] = { "no", "aes256", NULL };
static const char *const missings[] = { "skip", "zero", NULL };
static const char *const digests[] = { "run", "daily", NULL };
static const char *const errorses[] = { "digest", "immediate", NULL };

#define O(f) offsetof(struct config, f)
/* Every key; struct config's lines[] is indexed like this table. */
const struct key config_keys[] = {
	{ "pacs", "protocol", K_PROTO, O(pacs.protocol), 0, 0, NULL },
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
	{ "pacs", "full_query_every", K_DUR, O(pacs.full_query_every), 0, 0, NULL },
	{ "pacs", "max_results", K_INT, O(pacs.max_results), 0, 10000000, NULL },
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
	{ "output", "encrypt", K_ENUM, O(output.encrypt), 0, 0, config_encrypts },
	{ "output", "password", K_STR, O(output.password), 0, 0, NULL },
	{ "state", "url", K_STR, O(state.url), 0, 0, NULL },
	{ "state", "lease", K_INT, O(state.lease), 2, 86400, NULL },
	{ "notify", "ping_url", K_STR, O(notify.ping_url), 0, 0, NULL },
	{ "notify", "include_ids", K_BOOL, O(notify.include_ids), 0, 0, NULL },
	{ "notify", "timeout", K_INT, O(notify.timeout), 1, 3600, NULL },
	{ "notify", "mail_to", K_STR, O(notify.mail_to), 0, 0, NULL },
	{ "notify", "mail_from", K_STR, O(notify.mail_from), 0, 0, NULL },
	{ "notify", "smtp_url", K_STR, O(notify.smtp_url), 0, 0, NULL },
	{ "notify", "smtp_user", K_STR, O(notify.smtp_user), 0, 0, NULL },
	{ "notify", "smtp_password", K_STR, O(notify.smtp_password), 0, 0, NULL },
	{ "notify", "smtp_ca", K_PATH, O(notify.smtp_ca), 0, 0, NULL },
	{ "notify", "webhook_url", K_STR, O(notify.webhook_url), 0, 0, NULL },
	{ "notify", "digest", K_ENUM, O(notify.digest), 0, 0, digests },
	{ "notify", "digest_time", K_STR, O(notify.digest_time), 0, 0, NULL },
	{ "notify", "errors", K_ENUM, O(notify.errors), 0, 0, errorses },
	{ "metadata", "max_value_bytes", K_SIZE, O(metadata.max_value), 16, 1L << 30, NULL },
	{ "omop", "url", K_STR, O(omop.url), 0, 0, NULL },
	{ "omop", "schema", K_STR, O(omop.schema), 0, 0, NULL },
	{ "omop", "dir", K_PATH, O(omop.dir), 0, 0, NULL },
	{ "omop", "person_map", K_STR, O(omop.person_map), 0, 0, NULL },
	{ "omop", "missing_person", K_ENUM, O(omop.missing_person), 0, 0, missings },
	{ "omop", "vocabulary", K_PATH, O(omop.vocabulary), 0, 0, NULL },
	{ "kobo", "url", K_STR, O(kobo.url), 0, 0, NULL },
	{ "kobo", "token", K_STR, O(kobo.token), 0, 0, NULL },
	{ "kobo", "forms", K_STR, O(kobo.forms), 0, 0, NULL },
	{ "kobo", "timeout", K_INT, O(kobo.timeout), 1, 86400, NULL },
	{ "kobo", "retries", K_INT, O(kobo.retries), 0, 100, NULL },
	{ "kobo", "max_requests_per_minute", K_INT, O(kobo.max_requests_per_minute), 1, 1000000, NULL },
	{ "kobo", "tls_ca", K_PATH, O(kobo.tls_ca), 0, 0, NULL },
};
#undef O
const size_t config_nkeys = LEN(config_keys);

/* A value quoted back may hold a stray CR or an escape: keep a message
 * one line of text on the terminal. */
static void
one_line(char *msg)
{
	for (char *c = msg; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			*c = '?';
}

void
config_perr(struct parse *p, const char *fmt, ...)
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
	one_line(p->err);
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
	if (n > 4 && strncmp(s, "rule", 4) == 0 && (s[4] == ' ' || s[4] == '\t')) {
		const char *name = s + 4 + strspn(s + 4, " \t");

		config_rule_begin(p, name, (size_t)(e - name));
		return;
	}
	/* Sections that turn a stage on by being there, keys or none. */
	if (n == 8 && strncmp(s, "metadata", n) == 0 && !p->cfg->metadata.on)
		p->cfg->metadata.on = p->line;
	if (n == 4 && strncmp(s, "omop", n) == 0 && !p->cfg->omop.on)
		p->cfg->omop.on = p->line;
	if (n == 4 && strncmp(s, "kobo", n) == 0 && !p->cfg->kobo.on)
		p->cfg->kobo.on = p->line;
	for (i = 0; i < config_nkeys; i++)
		if (strlen(config_keys[i].section) == n && strncmp(config_keys[i].section, s, n) == 0)
			return;
	config_perr(p, "[%.*s]: unknown section (known: pacs, select, output, state, notify, "
	    "metadata, omop, kobo, rule NAME)", (int)n, s);
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
			config_perr(p, "%s: unterminated or empty ${...}", key);
			free(out);
			return NULL;
		}
		memcpy(name, v + 2, n);
		name[n] = '\0';
		val = getenv(name);
		if (!val) {
			config_perr(p, "%s: environment variable %s is not set", key, name);
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
			config_perr(p, "%s: '%s' is not a size from %ld bytes to %ldT (a whole number, "
			    "K, M, G or T for KiB, MiB, GiB, TiB)", key, v, k->min, k->max >> 40);
			return -1;
		}
		return 0;
	case K_DUR:
		if ((n = units_duration(v)) < 0) {
			config_perr(p, "%s: '%s' is not a duration (like 30s, 90m, 12h or 1d, or 0; "
			    "at most a year)", key, v);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case K_INT:
		if (parse_int(v, k->min, k->max, &n) < 0) {
			config_perr(p, "%s: '%s' is not a whole number from %ld to %ld", key, v, k->min, k->max);
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
			config_perr(p, "%s: '%s' is not yes or no", key, v);
			return -1;
		}
		return 0;
	case K_PROTO:
		if (!source_find(v)) {
			config_perr(p, "%s: '%s' is not one of %s", key, v, source_names());
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case K_ENUM:
		for (i = 0; k->names[i]; i++)
			if (strcmp(v, k->names[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		config_perr(p, "%s: '%s' is not one of %s%s%s%s%s", key, v, k->names[0],
		    k->names[1] ? " | " : "", k->names[1] ? k->names[1] : "",
		    k->names[1] && k->names[2] ? " | " : "", k->names[1] && k->names[2] ? k->names[2] : "");
		return -1;
	case K_AE:
		if (!*v || strlen(v) > 16) {
			config_perr(p, "%s: AE title '%s' must be 1 to 16 characters", key, v);
			return -1;
		}
		for (const char *c = v; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == '\\' || (unsigned char)*c > 0x7e) {
				config_perr(p, "%s: AE title '%s' has a character DICOM does not allow", key, v);
				return -1;
			}
		/* fallthrough */
	case K_STR:
	case K_PATH:
		if (k->type == K_PATH && !*v) {
			config_perr(p, "%s: empty path", key);
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
	const char *rname;

	if (!name)
		return 1;
	if (config_rule_section(section, &rname))
		return config_rule_key(p, rname, name, value) < 0 ? 0 : 1;
	key = xasprintf("[%s] %s", section, name);
	for (i = 0; i < config_nkeys; i++) {
		if (strcmp(config_keys[i].section, section) != 0)
			continue;
		known_section = 1;
		if (strcmp(config_keys[i].name, name) == 0)
			break;
	}
	if (i == config_nkeys) {
		if (known_section)
			config_perr(p, "%s: unknown key", key);
		else if (!*section)
			config_perr(p, "%s: key outside any section", name);
		else
			config_perr(p, "%s: unknown section [%s]", key, section);
		goto bad;
	}
	if (p->seen[i]) {
		config_perr(p, "%s: given twice (first on line %d)", key, p->seen[i]);
		goto bad;
	}
	p->seen[i] = p->line;
	p->cfg->lines[i] = p->line;
	if (strcmp(config_keys[i].section, "pacs") == 0 && strcmp(config_keys[i].name, "protocol") == 0)
		p->cfg->pacs.protocol_line = p->line;
	if (!p->secret_line && literal_secret(section, name, value)) {
		p->secret_line = p->line;
		p->secret = &config_keys[i];
	}
	v = expand(p, key, value);
	if (!v || set_key(p, &config_keys[i], key, v) < 0) {
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
	cfg->pacs.calling_aet = xstrdup("THLHP");
	cfg->pacs.retrieve = RETRIEVE_MOVE;
	cfg->pacs.store_port = 11113;
	cfg->pacs.max_associations = 4;
	cfg->pacs.max_requests_per_minute = 600;
	cfg->pacs.timeout = 30;
	cfg->pacs.max_instance_size = 4LL << 30;
	cfg->pacs.retries = 5;
	cfg->pacs.full_query_every = 86400;
	cfg->output.dicom_dir = xstrdup("data/dicom");
	cfg->output.zip_dir = xstrdup("data/zip");
	cfg->output.delimiter = xstrdup("__seriesCount");
	cfg->output.compression = COMP_DEFLATE;
	cfg->output.level = 1;
	cfg->state.url = xstrdup("sqlite:.thlhp/state.db");
	cfg->state.lease = 60;
	cfg->metadata.max_value = 4096;
	cfg->omop.schema = xstrdup("omop");
	cfg->notify.timeout = 30;
	cfg->kobo.forms = xstrdup("all");
	cfg->kobo.timeout = 30;
	cfg->kobo.retries = 5;
	cfg->kobo.max_requests_per_minute = 600;
	cfg->notify.digest_time = xstrdup("07:00");
}

static int
config_parse(struct config *cfg, struct parse *p, char **err)
{
	int rc;

	_Static_assert(LEN(config_keys) <= LEN(cfg->lines), "struct config: lines[] too small");
	_Static_assert(LEN(config_keys) <= CONFIG_MAX_KEYS, "struct parse: seen[] too small");
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
		config_perr(p, "syntax error (expected [section] or key = value)");
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
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].type == K_STR || config_keys[i].type == K_PATH || config_keys[i].type == K_AE ||
		    config_keys[i].type == K_PROTO)
			free(*(char **)((char *)cfg + config_keys[i].off));
	config_rule_free(cfg);
	for (char **a = cfg->notify.rcpt; a && *a; a++)
		free(*a);
	free(cfg->notify.rcpt);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

char *
config_where(const struct config *cfg, const char *section, const char *key)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, key) == 0 &&
		    cfg->lines[i])
			return xasprintf("%s:%d: [%s] %s", cfg->file, cfg->lines[i], section, key);
	return xasprintf("%s: [%s] %s", cfg->file, section, key);
}

char *
config_err(const struct config *cfg, const char *section, const char *key, const char *fmt, ...)
{
	char *where = config_where(cfg, section, key), *msg, *err;
	va_list ap;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	err = xasprintf("%s: %s", where, msg);
	free(where);
	free(msg);
	one_line(err);
	return err;
}

char *
config_zip_settings(const struct config *cfg)
{
	/* The password is not part of it: a new one takes -B. */
	return xasprintf("compression=%s level=%d%s", compressions[cfg->output.compression],
	    cfg->output.compression == COMP_STORE ? 0 : cfg->output.level,
	    cfg->output.encrypt == ENC_AES256 ? " encrypt=aes256" : "");
}
