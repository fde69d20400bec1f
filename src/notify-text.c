/*
 * notify-text.c - what a digest and a failure notice say, made from the
 * notices alone.  Without include_ids no PatientID is written: archives
 * and series are counted, a failure names its stage and a patient number
 * of this text (its reason with that patient's ID replaced).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "names.h"
#include "notify.h"
#include "units.h"
#include "util.h"

/* Items listed per section; the rest are counted. */
enum { LIST_MAX = 200, LINE_MAX_BYTES = 900 };

/* One line of at most LINE_MAX_BYTES (cut on a UTF-8 boundary), text
 * being escaped already (no control bytes: str_escape). */
static void
line(FILE *fp, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t n;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	if ((n = strlen(s)) > LINE_MAX_BYTES) {
		n = LINE_MAX_BYTES - 3;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		memcpy(s + n, "...", 4);
	}
	fputs(s, fp);
	fputc('\n', fp);
	free(s);
}

/* s with every occurrence of word (not inside a longer run of letters
 * and digits) replaced by with; malloc'd. */
static char *
replace_word(const char *s, const char *word, const char *with)
{
	size_t wl = strlen(word), out = 0, cap = strlen(s) + 1;
	char *r;

	if (!wl)
		return xstrdup(s);
	r = xmalloc(cap);
	for (const char *p = s; *p;) {
		const char *m = strstr(p, word);
		int alnum_before, alnum_after;

		if (!m) {
			m = p + strlen(p);
		} else {
			alnum_before = m > s && ((m[-1] >= '0' && m[-1] <= '9') ||
			    ((m[-1] | 0x20) >= 'a' && (m[-1] | 0x20) <= 'z'));
			alnum_after = (m[wl] >= '0' && m[wl] <= '9') ||
			    ((m[wl] | 0x20) >= 'a' && (m[wl] | 0x20) <= 'z');
			if (alnum_before || alnum_after)
				m++;	/* not this one: copy past its first byte */
			else {
				size_t n = (size_t)(m - p), wn = strlen(with);

				cap += wn + n;
				r = xrealloc(r, cap);
				memcpy(r + out, p, n);
				memcpy(r + out + n, with, wn);
				out += n + wn;
				p = m + wl;
				continue;
			}
		}
		r = xrealloc(r, cap += (size_t)(m - p));
		memcpy(r + out, p, (size_t)(m - p));
		out += (size_t)(m - p);
		p = m;
	}
	r[out] = '\0';
	return r;
}

/* reason without the ID of patient (its file-name form and the PatientID
 * it encodes), as "patient N"; malloc'd. */
static char *
scrub(const char *reason, const char *patient, int num)
{
	char with[32], *a, *b, *id;

	snprintf(with, sizeof(with), "patient %d", num);
	if (!patient || !*patient)
		return xstrdup(reason);
	a = replace_word(reason, patient, with);
	if ((id = name_decode(patient)) && strcmp(id, patient) != 0) {
		b = replace_word(a, id, with);
		free(a);
		a = b;
	}
	free(id);
	return a;
}

/* The number of patient among the distinct patients seen so far (1, 2,
 * ...), adding it when new. */
static int
patient_num(const char ***seen, int *n, const char *patient)
{
	for (int i = 0; i < *n; i++)
		if (strcmp((*seen)[i], patient) == 0)
			return i + 1;
	*seen = xreallocarray(*seen, (size_t)*n + 1, sizeof(**seen));
	(*seen)[(*n)++] = patient;
	return *n;
}

static void
stamp(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm))
		snprintf(buf, len, "?");
}

static void
duration(int64_t ms, char *buf, size_t len)
{
	int64_t s = (ms + 500) / 1000;

	if (s < 60)
		snprintf(buf, len, "%lld s", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, len, "%lld h %lld min", (long long)(s / 3600), (long long)(s / 60 % 60));
}

/* The failures of v[0..n), listed; the patients numbered in *seen. */
static void
failures(FILE *fp, const struct notice *v, int n, int include_ids, const char ***seen,
    int *nseen)
{
	int k = 0, total = 0;

	for (int i = 0; i < n; i++)
		total += v[i].kind == NOTICE_FAILURE;
	if (!total)
		return;
	line(fp, "Failures: %d", total);
	for (int i = 0; i < n; i++) {
		const struct notice *x = &v[i];
		char *what, *why;

		if (x->kind != NOTICE_FAILURE)
			continue;
		if (++k > LIST_MAX) {
			line(fp, "  ... and %d more", total - LIST_MAX);
			break;
		}
		what = xescape(x->what ? x->what : "run");
		why = xescape(x->detail ? x->detail : "");
		if (include_ids || !x->patient) {
			line(fp, "  %s: %s", what, why);
		} else {
			int num = patient_num(seen, nseen, x->patient);
			char *clean = scrub(why, x->patient, num);

			/* The target's first word is its stage. */
			line(fp, "  %.*s (patient %d): %s", (int)strcspn(what, " "), what, num, clean);
			free(clean);
		}
		free(what);
		free(why);
	}
	line(fp, "");
}

char *
notify_digest(const struct notice *v, int n, int include_ids, const char *host,
    const char *project, char **subject)
{
	int runs = 0, nprod = 0, nser = 0, nfail = 0, nitem = 0, k, nseen = 0, npat = 0;
	int last_ok = 1;
	int64_t first = 0, last = 0, work = 0, bytes = 0;
	const char **seen = NULL, **pats = NULL;
	char a[64], b[64], c[64], *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (!fp)
		fatal("out of memory");
	for (int i = 0; i < n; i++) {
		const struct notice *x = &v[i];

		if (!first || x->at < first)
			first = x->at;
		if (x->at > last)
			last = x->at;
		switch (x->kind) {
		case NOTICE_RUN:
			runs++;
			work += x->n;
			last_ok = x->detail && strcmp(x->detail, "ok") == 0;
			break;
		case NOTICE_PRODUCT:
			nprod++;
			bytes += x->size;
			break;
		case NOTICE_SERIES:
			nser++;
			if (x->patient)
				(void)patient_num(&pats, &npat, x->patient);
			break;
		case NOTICE_FAILURE:
			nfail++;
			break;
		case NOTICE_ITEM:
			nitem++;
			break;
		}
	}
	snprintf(a, sizeof(a), ", %d pulled", nitem);
	*subject = xasprintf("thlhp-make %s: %d archive%s built, %d new series%s, %d failure%s",
	    project, nprod, nprod == 1 ? "" : "s", nser, nitem ? a : "", nfail,
	    nfail == 1 ? "" : "s");

	stamp(first, a, sizeof(a));
	stamp(last, b, sizeof(b));
	duration(work, c, sizeof(c));
	line(fp, "thlhp-make on %s, project %s", host, project);
	line(fp, "%d run%s from %s to %s, %s of work; the last %s.", runs, runs == 1 ? "" : "s",
	    a, b, c, last_ok ? "succeeded" : "failed");
	line(fp, "");

	line(fp, "Archives built: %d, %s in all", nprod, units_bytes((double)bytes, a, sizeof(a)));
	k = 0;
	for (int i = 0; i < n; i++) {
		const struct notice *x = &v[i];

		if (x->kind != NOTICE_PRODUCT)
			continue;
		if (++k > LIST_MAX) {
			line(fp, "  ... and %d more", nprod - LIST_MAX);
			break;
		}
		units_bytes((double)x->size, a, sizeof(a));
		if (include_ids) {
			char *what = xescape(x->what ? x->what : "");

			line(fp, "  %-40s %4lld series %10s", what, (long long)x->n, a);
			free(what);
		} else {
			line(fp, "  patient %-3d %4lld series %10s", patient_num(&seen, &nseen,
			    x->patient ? x->patient : ""), (long long)x->n, a);
		}
	}
	line(fp, "");

	line(fp, "New series: %d, of %d patient%s", nser, npat, npat == 1 ? "" : "s");
	k = 0;
	for (int i = 0; i < n && include_ids; i++) {
		const struct notice *x = &v[i];
		char *p, *w;

		if (x->kind != NOTICE_SERIES)
			continue;
		if (++k > LIST_MAX) {
			line(fp, "  ... and %d more", nser - LIST_MAX);
			break;
		}
		p = xescape(x->patient ? x->patient : "");
		w = xescape(x->what ? x->what : "");
		line(fp, "  %-16s %-8s %s", p, x->detail ? x->detail : "", w);
		free(p);
		free(w);
	}
	if (!include_ids && nser) {
		/* By modality, which names nobody. */
		const char **mods = NULL;
		int nmods = 0, *count = NULL;

		for (int i = 0; i < n; i++) {
			const char *m;
			int j;

			if (v[i].kind != NOTICE_SERIES)
				continue;
			m = v[i].detail && *v[i].detail ? v[i].detail : "?";
			for (j = 0; j < nmods && strcmp(mods[j], m) != 0; j++)
				;
			if (j == nmods) {
				mods = xreallocarray(mods, (size_t)nmods + 1, sizeof(*mods));
				count = xreallocarray(count, (size_t)nmods + 1, sizeof(*count));
				mods[nmods] = m;
				count[nmods++] = 0;
			}
			count[j]++;
		}
		for (int j = 0; j < nmods; j++) {
			char *m = xescape(mods[j]);

			line(fp, "  %-8s %d", m, count[j]);
			free(m);
		}
		free(mods);
		free(count);
	}
	line(fp, "");
	if (nitem) {
		/* Forms: their titles and counts name nobody. */
		line(fp, "Pulled: %d", nitem);
		k = 0;
		for (int i = 0; i < n; i++) {
			const struct notice *x = &v[i];
			char *w, *d;

			if (x->kind != NOTICE_ITEM)
				continue;
			if (++k > LIST_MAX) {
				line(fp, "  ... and %d more", nitem - LIST_MAX);
				break;
			}
			w = xescape(x->what ? x->what : "");
			d = xescape(x->detail ? x->detail : "");
			line(fp, "  %s: %s", w, d);
			free(w);
			free(d);
		}
		line(fp, "");
	}
	failures(fp, v, n, include_ids, &seen, &nseen);
	if (!include_ids && (nprod || nser || nfail))
		line(fp, "PatientIDs stay on %s: patients are numbered in this mail only "
		    "([notify] include_ids = yes names them).", host);
	fclose(fp);
	free(seen);
	free(pats);
	return text;
}

char *
notify_failures(const struct notice *v, int n, int include_ids, const char *host,
    const char *project, char **subject)
{
	const char **seen = NULL;
	int nseen = 0, nfail = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (!fp)
		fatal("out of memory");
	for (int i = 0; i < n; i++)
		nfail += v[i].kind == NOTICE_FAILURE;
	*subject = xasprintf("thlhp-make %s: %d failure%s", project, nfail, nfail == 1 ? "" : "s");
	line(fp, "thlhp-make on %s, project %s: the run failed.", host, project);
	line(fp, "");
	failures(fp, v, n, include_ids, &seen, &nseen);
	fclose(fp);
	free(seen);
	return text;
}

int64_t
notify_last_time(const char *hms, int64_t now)
{
	int h, m, s = 0, used = 0;
	time_t t = (time_t)now;
	struct tm tm;

	if (!hms || (sscanf(hms, "%2d:%2d%n:%2d%n", &h, &m, &used, &s, &used) < 2) ||
	    hms[used] || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59 ||
	    !localtime_r(&t, &tm))
		return -1;
	for (int back = 0; back < 3; back++) {
		struct tm d = tm;
		time_t at;

		d.tm_mday -= back;
		d.tm_hour = h;
		d.tm_min = m;
		d.tm_sec = s;
		d.tm_isdst = -1;
		if ((at = mktime(&d)) != (time_t)-1 && at <= t)
			return (int64_t)at;
	}
	return -1;
}
