/*
 * words.c - a [rule NAME] command as words; see words.h.
 *
 * Quoting and placeholders are layers that never mix: words_split only
 * groups bytes into words and keeps every brace, so words_check and
 * words_expand see no quotes.  A brace in '...' or "..." is a placeholder
 * like any other, '{{' is the literal-brace escape as {{ is (awk
 * '{{print $1}}'), \{ is a lone brace, and "{in}" is a whole-word {in}
 * that becomes one word per value, as "$@" does in sh.
 */
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "util.h"
#include "words.h"

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

char **
words_split(const char *s, char *err, size_t errlen)
{
	size_t n = strlen(s), nw = 0, len = 0, i = 0, at;
	/* A word takes a byte and a blank after it, '' two bytes: at most
	 * n / 2 + 1 words. */
	char **w = xreallocarray(NULL, n / 2 + 2, sizeof(*w));
	char *buf = xmalloc(n + 1);
	int inword = 0;

	for (;;) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == ' ' || c == '\t') {
			if (inword) {
				buf[len] = '\0';
				w[nw++] = xstrdup(buf);
			}
			len = 0;
			inword = 0;
			if (c == '\0')
				break;
			i++;
			continue;
		}
		inword = 1;
		at = i++;
		if (c == '\'' || c == '"') {
			while (s[i] && s[i] != (char)c) {
				/* In "...", a backslash-newline is sh's line
				 * continuation: both go. */
				if (c == '"' && s[i] == '\\' && s[i + 1] == '\n') {
					i += 2;
					continue;
				}
				if (c == '"' && s[i] == '\\' && s[i + 1] && strchr("\"\\$`", s[i + 1]))
					i++;
				buf[len++] = s[i++];
			}
			if (!s[i]) {
				errf(err, errlen, "unterminated %c quote at column %zu", c, at + 1);
				goto err;
			}
			i++;
			continue;
		}
		if (c == '\\') {
			if (!s[i]) {
				errf(err, errlen, "trailing backslash at column %zu", at + 1);
				goto err;
			}
			c = (unsigned char)s[at = i++];
		}
		/* A C0 control or DEL, escaped or not, is a mistake (a
		 * multi-line value, a pasted escape sequence); an escaped tab
		 * is a blank in the word, as an escaped space is. */
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			errf(err, errlen, "control byte 0x%02x at column %zu (outside quotes)", c, at + 1);
			goto err;
		}
		buf[len++] = (char)c;
	}
	if (nw > 0) {
		w[nw] = NULL;
		free(buf);
		return w;
	}
	errf(err, errlen, "empty command");
err:
	w[nw] = NULL;
	strv_free(w);
	free(buf);
	return NULL;
}

/* What a word holds at p, and how many bytes of it (*len). */
enum tok {
	TOK_TEXT,   /* bytes without a brace */
	TOK_BRACE,  /* {{ or }}: the literal brace p[0] */
	TOK_NAME,   /* {name}: the name is p + 1, *len - 2 bytes */
	TOK_LONE,   /* a { with no } before the next {, or a } alone */
};

static enum tok
word_tok(const char *p, size_t *len)
{
	size_t n;

	*len = 1;
	if (*p != '{' && *p != '}') {
		*len = strcspn(p, "{}");
		return TOK_TEXT;
	}
	if (p[1] == p[0]) {
		*len = 2;
		return TOK_BRACE;
	}
	n = strcspn(p + 1, "{}");
	if (*p == '}' || p[1 + n] != '}')
		return TOK_LONE;
	*len = n + 2;
	return TOK_NAME;
}

int
words_check(char *const *argv, const char *const *known, char *err, size_t errlen)
{
	for (size_t i = 0; argv[i]; i++) {
		const char *p = argv[i];
		size_t len, k;
		char *list;

		for (; *p; p += len) {
			switch (word_tok(p, &len)) {
			case TOK_TEXT:
			case TOK_BRACE:
				continue;
			case TOK_LONE:
				errf(err, errlen, "'%c' without '%c' in word %zu: write %c%c for a literal brace",
				    *p, *p == '{' ? '}' : '{', i + 1, *p, *p);
				return -1;
			case TOK_NAME:
				break;
			}
			for (k = 0; known[k]; k++)
				if (strncmp(known[k], p + 1, len - 2) == 0 && !known[k][len - 2])
					break;
			if (known[k])
				continue;
			list = xstrdup("");
			for (k = 0; known[k]; k++) {
				char *t = xasprintf("%s {%s}", list, known[k]);

				free(list);
				list = t;
			}
			/* {print $1} is no name mistyped but braces meant (awk);
			 * ${HOME} is the shell's, which never sees the command. */
			errf(err, errlen, "unknown placeholder %.*s; known:%s%s", (int)len, p, list,
			    p > argv[i] && p[-1] == '$' ?
			    "; ${NAME} is not expanded in a command (it has the environment: "
			    "inside sh -c '...' write $NAME)" :
			    len == 2 || strspn(p + 1, ALNUM "_") != len - 2 ?
			    "; write {{ and }} for literal braces" : "");
			free(list);
			return -1;
		}
	}
	return 0;
}

/* The values of the placeholder named by len bytes at name; NULL when
 * it has none in vals. */
static const char *const *
word_values(const struct word_value *vals, size_t n, const char *name, size_t len)
{
	static const char *const none[] = { NULL };

	for (size_t i = 0; i < n; i++)
		if (strncmp(vals[i].name, name, len) == 0 && !vals[i].name[len])
			return vals[i].v ? vals[i].v : none;
	return NULL;
}

/* The values w stands for when it is exactly one placeholder with other
 * than one value (those become as many words); else NULL. */
static const char *const *
word_spread(const char *w, const struct word_value *vals, size_t n)
{
	const char *const *v;
	size_t len;

	if (word_tok(w, &len) != TOK_NAME || w[len] != '\0')
		return NULL;
	v = word_values(vals, n, w + 1, len - 2);
	return v && (!v[0] || v[1]) ? v : NULL;
}

/* Append len bytes at p to the string *s of *n bytes. */
static void
word_add(char **s, size_t *n, const char *p, size_t len)
{
	*s = xrealloc(*s, *n + len + 1);
	memcpy(*s + *n, p, len);
	*n += len;
	(*s)[*n] = '\0';
}

/* One word expanded.  Values are copied in, never scanned: a brace or a
 * $(...) in a PatientID is text.  Lone braces (words_check was not
 * called) stay as written. */
static char *
word_expand(const char *w, const struct word_value *vals, size_t n)
{
	char *s = xstrdup("");
	size_t slen = 0, len;

	for (; *w; w += len) {
		enum tok t = word_tok(w, &len);
		const char *const *v = t == TOK_NAME ? word_values(vals, n, w + 1, len - 2) : NULL;

		if (t != TOK_NAME)
			word_add(&s, &slen, w, t == TOK_BRACE ? 1 : len);
		for (size_t i = 0; v && v[i]; i++) {
			if (i > 0)
				word_add(&s, &slen, " ", 1);
			word_add(&s, &slen, v[i], strlen(v[i]));
		}
	}
	return s;
}

char **
words_expand(char *const *argv, const struct word_value *vals, size_t n)
{
	char **out = NULL;
	size_t nw = 0;

	for (; *argv; argv++) {
		const char *const *v = word_spread(*argv, vals, n);

		if (!v) {
			out = xreallocarray(out, nw + 1, sizeof(*out));
			out[nw++] = word_expand(*argv, vals, n);
		}
		for (; v && *v; v++) {
			out = xreallocarray(out, nw + 1, sizeof(*out));
			out[nw++] = xstrdup(*v);
		}
	}
	out = xreallocarray(out, nw + 1, sizeof(*out));
	out[nw] = NULL;
	return out;
}

/* Does sh read w back as it is?  '=' is plain but in the first word,
 * where sh would take NAME=value for an assignment. */
static int
word_plain(const char *w, int first)
{
	return *w && !w[strspn(w, ALNUM "_./:,+@%=-")] && !(first && strchr(w, '='));
}

char *
words_join(char *const *argv)
{
	size_t n = 1, i;
	char *s, *p;

	/* Worst case a word is all ' (four bytes each), quoted, and a blank. */
	for (i = 0; argv[i]; i++)
		n += 4 * strlen(argv[i]) + 3;
	p = s = xmalloc(n);
	for (i = 0; argv[i]; i++) {
		const char *w = argv[i];

		if (i > 0)
			*p++ = ' ';
		if (word_plain(w, i == 0)) {
			p = stpcpy(p, w);
			continue;
		}
		*p++ = '\'';
		for (; *w; w++) {
			if (*w == '\'')
				p = stpcpy(p, "'\\''");
			else
				*p++ = *w;
		}
		*p++ = '\'';
	}
	*p = '\0';
	return s;
}
