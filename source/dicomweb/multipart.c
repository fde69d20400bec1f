/*
 * multipart.c - a streaming multipart parser; see multipart.h.
 *
 * Data runs through scan(), which jumps from LF to LF and checks whether
 * "\n--boundary" follows; the CR before that LF belongs to the delimiter.
 * What could still become a delimiter when a chunk ends waits in hold[],
 * never more than the delimiter's length.  A boundary has no CR or LF, so
 * a failed match can only restart at the byte that failed: every byte is
 * looked at a bounded number of times.  The body, and the data after each
 * header block, are scanned as if the CRLF before them were held, so a
 * delimiter at their very start is found as RFC 2046 wants.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "multipart.h"
#include "util.h"

enum state {
	MP_SCAN,	/* preamble or part data, looking for a delimiter */
	MP_TAIL,	/* right after a delimiter */
	MP_DASH,	/* one '-' of a close delimiter seen */
	MP_PAD,		/* transport padding after a delimiter */
	MP_CR,		/* the CR ending a delimiter line */
	MP_HEADERS,	/* a part's header block */
	MP_EPILOGUE,	/* after the close delimiter, ignored */
	MP_FAILED,	/* an error, for good */
};

struct multipart {
	struct multipart_cb cb;	/* the caller's callbacks */
	void *arg;		/* and their argument */
	enum state st;		/* where in the body we are */
	char delim[4 + MULTIPART_BOUNDARY_MAX];	/* "\r\n--" boundary */
	size_t dlen;		/* its length */
	char hold[4 + MULTIPART_BOUNDARY_MAX];	/* a prefix of delim or delim + 1 */
	size_t nhold;		/* its length */
	size_t nvirt;		/* leading hold bytes that are not data */
	char *hdr;		/* the header block, MULTIPART_HEADER_MAX + 1 */
	size_t nhdr;		/* its length so far */
	size_t line;		/* where its last line starts */
	int inpart;		/* begin said 0 and end was not called yet */
	int parts;		/* parts ended complete */
	const char *base;	/* the chunk being fed, for offsets */
	unsigned long long pos;	/* bytes fed before it */
	char err[128];		/* why it failed */
};

/* An RFC 2045 token's characters; or an unquoted value's, which may also
 * hold tspecials, as servers send them (Orthanc: type=application/dicom). */
static int
tchar(int c, int value)
{
	return c > 32 && c < 127 && !strchr(value ? ";\"\\" : "()<>@,;:\\\"/[]?=", c);
}

/* What a boundary is, for boundary_ok and its messages. */
#define BOUNDARY_RULE "1 to %d of RFC 2046's bchars, not ending in a space"

static int
boundary_ok(const char *b)
{
	size_t n = strlen(b);

	return n > 0 && n <= MULTIPART_BOUNDARY_MAX && b[n - 1] != ' ' && strspn(b,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? ") == n;
}

static const char *
skipws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* A parameter value at *s, quoted-string or not, unescaped; NULL if
 * malformed.  *s moves past it. */
static char *
param_value(const char **s)
{
	const char *p = *s;
	int quoted = *p == '"';
	char *v = xmalloc(strlen(p) + 1), *w = v;

	for (p += quoted; quoted ? *p != '"' : tchar((unsigned char)*p, 1); p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (quoted && (*p == '\0' || *p == '\r' || *p == '\\'))
			break;
		*w++ = *p;
	}
	if (quoted ? *p != '"' : w == v) {
		free(v);
		return NULL;
	}
	*w = '\0';
	*s = p + quoted;
	return v;
}

char *
multipart_boundary(const char *content_type, char *err, size_t errlen)
{
	const char *s = skipws(content_type), *name;
	char *b = NULL, *v;
	size_t n;

	if (strncasecmp(s, "multipart/", 10) != 0 || !tchar((unsigned char)s[10], 0)) {
		errf(err, errlen, "Content-Type \"%s\": not multipart", content_type);
		return NULL;
	}
	for (s += 10; tchar((unsigned char)*s, 0); s++)
		;
	/* "; name=value" each, a ';' at the end tolerated. */
	while (*(s = skipws(s)) != '\0') {
		if (*s != ';')
			goto bad;
		for (name = s = skipws(s + 1); tchar((unsigned char)*s, 0); s++)
			;
		if ((n = (size_t)(s - name)) == 0 && *s == '\0')
			break;
		s = skipws(s);
		if (n == 0 || *s != '=')
			goto bad;
		s = skipws(s + 1);
		if (!(v = param_value(&s)))
			goto bad;
		if (n != 8 || strncasecmp(name, "boundary", 8) != 0) {
			free(v);
		} else if (b) {
			free(v);
			errf(err, errlen, "Content-Type \"%s\": boundary given twice", content_type);
			goto out;
		} else {
			b = v;
		}
	}
	if (b && boundary_ok(b))
		return b;
	if (b)
		errf(err, errlen, "Content-Type \"%s\": the boundary is not " BOUNDARY_RULE,
		    content_type, MULTIPART_BOUNDARY_MAX);
	else
		errf(err, errlen, "Content-Type \"%s\": no boundary parameter", content_type);
	goto out;
bad:
	errf(err, errlen, "Content-Type \"%s\": malformed parameter at \"%s\"", content_type, s);
out:
	free(b);
	return NULL;
}

/* Fail for good; a part in progress ends incomplete.  Returns -1. */
static int
fail(struct multipart *mp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mp->err, sizeof(mp->err), fmt, ap);
	va_end(ap);
	mp->st = MP_FAILED;
	if (mp->inpart) {
		mp->inpart = 0;
		mp->cb.end(mp->arg, 0);
	}
	return -1;
}

/* Data of the current part; the preamble goes nowhere. */
static int
give(struct multipart *mp, const char *p, size_t n)
{
	if (!mp->inpart || n == 0)
		return 0;
	if (mp->cb.data(mp->arg, p, n) < 0)
		return fail(mp, "stopped");
	return 0;
}

/* Data up to the next delimiter; returns where scanning stopped. */
static const char *
scan(struct multipart *mp, const char *p, const char *end)
{
	const char *start, *stop, *lf;
	size_t k = 0, cr;

	/* Go on with what the last chunk left. */
	while (mp->nhold > 0 && p < end) {
		size_t off = mp->hold[0] == '\r' ? 0 : 1;

		if (*p != mp->delim[off + mp->nhold]) {
			if (give(mp, mp->hold + mp->nvirt, mp->nhold - mp->nvirt) < 0)
				return end;
			mp->nhold = mp->nvirt = 0;
			break;
		}
		mp->hold[mp->nhold++] = *p++;
		if (off + mp->nhold == mp->dlen) {
			mp->nhold = mp->nvirt = 0;
			mp->st = MP_TAIL;
			return p;
		}
	}
	if (mp->nhold > 0)
		return end;
	start = p;
	for (lf = p; (lf = memchr(lf, '\n', (size_t)(end - lf))); lf += k) {
		for (k = 1; k < mp->dlen - 1 && lf + k < end && lf[k] == mp->delim[k + 1]; k++)
			;
		if (k == mp->dlen - 1 || lf + k == end)
			break;
	}
	/* Data up to that LF, or the end, but for a CR just before. */
	stop = lf ? lf : end;
	cr = stop > start && stop[-1] == '\r';
	if (give(mp, start, (size_t)(stop - start) - cr) < 0)
		return end;
	if (lf && k == mp->dlen - 1) {
		mp->st = MP_TAIL;
		return lf + k;
	}
	/* What may begin a delimiter waits for the next chunk. */
	mp->nhold = (size_t)(end - stop) + cr;
	memcpy(mp->hold, stop - cr, mp->nhold);
	return end;
}

/* The current part ended at its delimiter. */
static int
part_done(struct multipart *mp)
{
	if (!mp->inpart)
		return 0;
	mp->inpart = 0;
	mp->parts++;
	if (mp->cb.end(mp->arg, 1) < 0)
		return fail(mp, "stopped");
	return 0;
}

/* The rest of a delimiter line: "--", or padding and a line end. */
static const char *
tail(struct multipart *mp, const char *p, const char *end)
{
	for (; p < end; p++) {
		char c = *p;

		if (mp->st == MP_DASH && c == '-') {
			mp->st = MP_EPILOGUE;
			part_done(mp);
			return p + 1;
		} else if (mp->st == MP_TAIL && c == '-') {
			mp->st = MP_DASH;
		} else if ((mp->st == MP_TAIL || mp->st == MP_PAD) && (c == ' ' || c == '\t')) {
			mp->st = MP_PAD;
		} else if ((mp->st == MP_TAIL || mp->st == MP_PAD) && c == '\r') {
			mp->st = MP_CR;
		} else if (mp->st != MP_DASH && c == '\n') {
			mp->st = MP_HEADERS;
			mp->nhdr = mp->line = 0;
			part_done(mp);
			return p + 1;
		} else {
			fail(mp, "malformed boundary line at byte %llu",
			    mp->pos + (unsigned long long)(p - mp->base));
			return end;
		}
	}
	return end;
}

/* The Content-Type of the header block, unfolded and trimmed in place,
 * in *ct (NULL when there is none); -1 on a malformed line. */
static int
content_type(struct multipart *mp, char **ct)
{
	char *e = mp->hdr + mp->nhdr, *line, *lend, *colon, *r, *w;

	*ct = NULL;
	for (line = mp->hdr; line < e; line = lend + 1) {
		lend = memchr(line, '\n', (size_t)(e - line));
		/* Folded lines, starting with a space or tab, go on this one. */
		while (lend + 1 < e && (lend[1] == ' ' || lend[1] == '\t'))
			lend = memchr(lend + 1, '\n', (size_t)(e - lend - 1));
		colon = memchr(line, ':', (size_t)(lend - line));
		/* A NUL would cut the value short where it cannot be trimmed. */
		if (!colon || colon == line || *line == ' ' || *line == '\t' ||
		    memchr(line, '\0', (size_t)(lend - line)))
			return -1;
		if (*ct || colon - line != 12 || strncasecmp(line, "content-type", 12) != 0)
			continue;
		*ct = w = line;
		for (r = colon + 1; r < lend; r++)
			if (*r != '\n' && !(*r == '\r' && r[1] == '\n'))
				*w++ = *r;
		while (w > *ct && (w[-1] == ' ' || w[-1] == '\t'))
			w--;
		*w = '\0';
		*ct += strspn(*ct, " \t");
	}
	return 0;
}

/* A header line; after the empty one the part begins. */
static const char *
headers(struct multipart *mp, const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n = (size_t)((lf ? lf + 1 : end) - p), len;
	char *ct;

	if (n > MULTIPART_HEADER_MAX - mp->nhdr) {
		fail(mp, "part headers longer than %d bytes", MULTIPART_HEADER_MAX);
		return end;
	}
	memcpy(mp->hdr + mp->nhdr, p, n);
	mp->nhdr += n;
	if (!lf)
		return end;
	len = mp->nhdr - mp->line;
	if (len > 2 || (len == 2 && mp->hdr[mp->line] != '\r')) {
		mp->line = mp->nhdr;
		return lf + 1;
	}
	/* The empty line may be the CRLF of a delimiter: an empty body. */
	memcpy(mp->hold, mp->hdr + mp->line, len);
	mp->nhold = mp->nvirt = len;
	mp->nhdr = mp->line;
	if (content_type(mp, &ct) < 0) {
		fail(mp, "malformed part header line");
		return end;
	}
	mp->st = MP_SCAN;
	if (mp->cb.begin(mp->arg, ct) < 0) {
		fail(mp, "stopped");
		return end;
	}
	mp->inpart = 1;
	return lf + 1;
}

struct multipart *
multipart_new(const char *boundary, const struct multipart_cb *cb, void *arg)
{
	struct multipart *mp = xcalloc(1, sizeof(*mp));

	mp->cb = *cb;
	mp->arg = arg;
	mp->hdr = xmalloc(MULTIPART_HEADER_MAX + 1);
	if (!boundary_ok(boundary)) {
		fail(mp, "the boundary is not " BOUNDARY_RULE, MULTIPART_BOUNDARY_MAX);
		return mp;
	}
	mp->dlen = 4 + strlen(boundary);
	memcpy(mp->delim, "\r\n--", 4);
	memcpy(mp->delim + 4, boundary, mp->dlen - 4);
	/* The body starts as if after a CRLF: a delimiter may open it. */
	memcpy(mp->hold, "\r\n", 2);
	mp->nhold = mp->nvirt = 2;
	mp->st = MP_SCAN;
	return mp;
}

int
multipart_feed(struct multipart *mp, const void *buf, size_t n)
{
	const char *p = buf, *end;

	if (n == 0 || mp->st == MP_FAILED)
		return mp->st == MP_FAILED ? -1 : 0;
	mp->base = p;
	end = p + n;
	while (p < end && mp->st != MP_FAILED) {
		if (mp->st == MP_SCAN)
			p = scan(mp, p, end);
		else if (mp->st == MP_HEADERS)
			p = headers(mp, p, end);
		else if (mp->st == MP_EPILOGUE)
			p = end;
		else
			p = tail(mp, p, end);
	}
	mp->pos += n;
	return mp->st == MP_FAILED ? -1 : 0;
}

int
multipart_finish(struct multipart *mp)
{
	if (mp->st == MP_EPILOGUE)
		return 0;
	if (mp->st != MP_FAILED)
		fail(mp, "missing final boundary");
	return -1;
}

int
multipart_parts(const struct multipart *mp)
{
	return mp->parts;
}

const char *
multipart_error(const struct multipart *mp)
{
	return mp->err;
}

void
multipart_free(struct multipart *mp)
{
	if (!mp)
		return;
	free(mp->hdr);
	free(mp);
}
