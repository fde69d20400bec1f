/* names.c - file names derived from DICOM values; see names.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"
#include "util.h"

/* [A-Za-z0-9._-], the bytes a name keeps as they are. */
static const unsigned char plain_byte[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int
plain(unsigned char c)
{
	return plain_byte[c];
}

char *
name_encode(const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(id), i, j = 0;
	char *s;

	if (n == 0)
		return xstrdup("%00");
	s = xmalloc(3 * n + 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (plain(c) && !(i == 0 && c == '.')) {
			s[j++] = (char)c;
		} else {
			s[j++] = '%';
			s[j++] = hex[c >> 4];
			s[j++] = hex[c & 15];
		}
	}
	s[j] = '\0';
	return s;
}

int
name_fits(const char *id)
{
	char *enc = name_encode(id);
	/* Leave room for the delimiter, a count, ".zip" and a temp prefix
	 * within NAME_MAX (255). */
	int ok = strlen(enc) <= 160;

	free(enc);
	return ok;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
name_decode(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *id, *enc;

	if (strcmp(s, "%00") == 0)
		return xstrdup("");
	id = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n)
				goto bad;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			id[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			id[j++] = s[i];
		}
	}
	id[j] = '\0';
	/* Only the canonical encoding is accepted: one ID, one name. */
	enc = name_encode(id);
	if (strcmp(enc, s) != 0) {
		free(enc);
		goto bad;
	}
	free(enc);
	return id;
bad:
	free(id);
	return NULL;
}

char *
archive_name(const char *id, const char *delim, int n)
{
	char *enc = name_encode(id);
	char *s = xasprintf("%s%s%d.zip", enc, delim, n);

	free(enc);
	return s;
}

char *
archive_parse(const char *file, const char *delim, int *n)
{
	size_t len = strlen(file), dl = strlen(delim);
	const char *p, *num = NULL;
	char *enc, *id;

	if (len < 5 || strcmp(file + len - 4, ".zip") != 0)
		return NULL;
	/* The count is the digits between the last delimiter and ".zip"; a
	 * delimiter that ends inside ".zip" (".", "p") is not one. */
	for (p = file; (p = strstr(p, delim)) != NULL && p + dl <= file + len - 4; p++)
		num = p + dl;
	if (!num || num == file + len - 4)
		return NULL;
	for (p = num; p < file + len - 4; p++)
		if (*p < '0' || *p > '9')
			return NULL;
	if (num[0] == '0' || file + len - 4 - num > 9)
		return NULL;
	enc = xmalloc((size_t)(num - dl - file) + 1);
	memcpy(enc, file, (size_t)(num - dl - file));
	enc[num - dl - file] = '\0';
	id = name_decode(enc);
	free(enc);
	if (id)
		*n = atoi(num);
	return id;
}

int
uid_is_safe(const char *uid)
{
	size_t n = strlen(uid);

	if (n == 0 || n > 64 || strcmp(uid, ".") == 0 || strcmp(uid, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!plain((unsigned char)uid[i]))
			return 0;
	return 1;
}
