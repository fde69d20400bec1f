/*
 * test-kobo.c - the KPI v2 client (source/kobo.c) against tests/fakekobo.py
 * on loopback.  What callers rely on: the forms, every page of them, in
 * uid order, only those [kobo] forms names and an error naming one the
 * server lacks; a pull gives every submission once, in _id order, and
 * with since only the newer ones; a refused token (401, or a 403 for a
 * form its account may not see) is KOBO_AUTH at once, a 429 is waited
 * out; each hostile answer (huge, with a length or chunked, deep,
 * \u0000, not JSON, a count that lies, a next that loops, a server that
 * stalls) fails the pull quickly with a message saying why, never with
 * the token in it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "kobo.h"
#include "util.h"

extern char **environ;

#define TOKEN "f00dfacecafe0123456789abcdef0123456789ab"
#define NFORMS 120                /* empty forms: more than a page of 100 */
#define NFULL 2500                /* submissions of aFull */

static char dir[] = "/tmp/test-kobo.XXXXXX";
static char base[64];             /* http://127.0.0.1:PORT */
static pid_t server;

/* Start fakekobo.py on the forms of forms.json, wait for its port. */
static int
setup(void **state)
{
	char forms[128], ready[128], port[16] = "";
	char *argv[] = { "/usr/bin/python3", TOP_SRCDIR "/tests/fakekobo.py", "--token", TOKEN,
		"--forms", forms, "--ready", ready, NULL };
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(forms, sizeof(forms), "%s/forms.json", dir);
	snprintf(ready, sizeof(ready), "%s/port", dir);
	assert_non_null(f = fopen(forms, "w"));
	fprintf(f, "{");
	for (int i = 0; i < NFORMS; i++)
		fprintf(f, "\"e%03dEmpty\": {\"name\": \"Empty %d\", \"submissions\": 0}, ", i, i);
	fprintf(f, "\"aFull\": {\"name\": \"Baseline visit\", \"submissions\": %d}, ", NFULL);
	fprintf(f, "\"bSmall\": {\"name\": \"Follow-up\", \"submissions\": 5}, ");
	fprintf(f, "\"cHostile\": {\"name\": \"Hostile\", \"submissions\": 3}}\n");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(posix_spawn(&server, argv[0], NULL, NULL, argv, environ), 0);
	for (int i = 0; i < 200 && !port[0]; i++) {
		if ((f = fopen(ready, "r"))) {
			if (!fgets(port, sizeof(port), f))
				port[0] = '\0';
			fclose(f);
		}
		if (!port[0])
			usleep(50000);
	}
	assert_true(port[0] != '\0');
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", atoi(port));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static size_t
keep_body(char *p, size_t size, size_t n, void *arg)
{
	FILE *f = arg;

	return fwrite(p, size, n, f);
}

/* POST (or GET, when post is 0) a /_test/ path; its JSON answer. */
static json_t *
control(int post, const char *fmt, ...)
{
	char url[256], *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	CURL *c = curl_easy_init();
	va_list ap;
	json_t *x;
	long status = 0;

	va_start(ap, fmt);
	snprintf(url, sizeof(url), "%s", base);
	vsnprintf(url + strlen(url), sizeof(url) - strlen(url), fmt, ap);
	va_end(ap);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	fclose(f);
	assert_int_equal(status, 200);
	x = json_loadb(body, len, 0, NULL);
	free(body);
	assert_non_null(x);
	return x;
}

static void
post(const char *fmt, const char *arg)
{
	json_decref(control(1, fmt, arg));
}

/* A stat of fakekobo: "requests", ..., or by uid ("data_requests.aFull"). */
static long long
stat_of(const char *key, const char *uid)
{
	json_t *s = control(0, "/_test/stats"), *v = json_object_get(s, key);
	long long n;

	if (uid)
		v = json_object_get(v, uid);
	n = json_integer_value(v);
	json_decref(s);
	return n;
}

/* A client of the fake server, with [kobo] as given. */
static struct kobo *
client(const char *token, const char *forms, int timeout, int retries, char *err)
{
	static struct config cfg;
	struct kobo *k;

	memset(&cfg, 0, sizeof(cfg));
	cfg.file = "test.ini";
	cfg.kobo.on = 1;
	cfg.kobo.url = base;
	cfg.kobo.token = (char *)token;
	cfg.kobo.forms = (char *)forms;
	cfg.kobo.timeout = timeout;
	cfg.kobo.retries = retries;
	cfg.kobo.max_requests_per_minute = 60000;
	k = kobo_new(&cfg, err, KOBO_ERR_MAX);
	return k;
}

/* What a pull gave fn. */
struct got {
	int n;
	int64_t first, last;      /* _id */
	int ordered;              /* each _id above the one before */
	char submitted[32];       /* the last one's */
	char since[32];           /* the _submission_time of the since_at-th */
	int since_at;
	int stop_at;              /* fn says stop at this one (from 1); 0: never */
	char *err;                /* where fn writes why it stopped */
	int bad;                  /* a sub not as kobo.h says */
};

static int
on_sub(void *arg, const struct kobo_sub *s)
{
	struct got *g = arg;
	json_t *x = json_loads(s->json, 0, NULL);

	/* The JSON is the object itself, its _id and time the same. */
	if (!json_is_object(x) || json_integer_value(json_object_get(x, "_id")) != s->id ||
	    !s->submitted || strcmp(s->submitted, json_string_value(json_object_get(x,
	    "_submission_time"))) != 0 || strchr(s->json, '\n'))
		g->bad++;
	json_decref(x);
	if (g->n > 0 && s->id <= g->last)
		g->ordered = 0;
	if (g->n == 0)
		g->first = s->id;
	g->last = s->id;
	snprintf(g->submitted, sizeof(g->submitted), "%s", s->submitted ? s->submitted : "");
	if (++g->n == g->since_at)
		snprintf(g->since, sizeof(g->since), "%s", s->submitted);
	if (g->n == g->stop_at) {
		snprintf(g->err, KOBO_ERR_MAX, "stopped by fn at %lld", (long long)s->id);
		return 1;
	}
	return 0;
}

static double
secs_since(int64_t t0)
{
	return (double)(mono_ns() - t0) / 1e9;
}

static void
test_forms(void **state)
{
	char err[KOBO_ERR_MAX] = "";
	struct kobo *k = client(TOKEN, " all\t", 10, 2, err);
	struct kobo_form *v;
	atomic_int cancel = 0;
	int n;

	assert_non_null(k);
	post("/_test/reset_stats", NULL);
	assert_int_equal(kobo_forms(k, &cancel, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, NFORMS + 3);
	/* Two pages of 100: the listing followed next. */
	assert_int_equal(stat_of("requests", NULL), 2);
	assert_string_equal(v[0].uid, "aFull");
	assert_string_equal(v[0].name, "Baseline visit");
	assert_int_equal(v[0].count, NFULL);
	assert_string_equal(v[1].uid, "bSmall");
	assert_int_equal(v[1].count, 5);
	assert_string_equal(v[3].uid, "e000Empty");
	assert_int_equal(v[3].count, 0);
	for (int i = 1; i < n; i++)
		assert_true(strcmp(v[i - 1].uid, v[i].uid) < 0);
	kobo_forms_free(v, n);
	kobo_free(k);

	/* Only those named, in uid order; one unknown is an error naming it. */
	k = client(TOKEN, " e007Empty\taFull  e007Empty ", 10, 2, err);
	assert_non_null(k);
	assert_int_equal(kobo_forms(k, &cancel, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].uid, "aFull");
	assert_string_equal(v[1].uid, "e007Empty");
	kobo_forms_free(v, n);
	kobo_free(k);
	k = client(TOKEN, "aFull zNoSuchForm", 10, 2, err);
	assert_int_equal(kobo_forms(k, &cancel, &v, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "zNoSuchForm"));
	assert_null(v);
	kobo_free(k);
}

static void
test_config(void **state)
{
	char err[KOBO_ERR_MAX] = "";

	assert_null(client(TOKEN, "aFull a/b", 10, 2, err));
	assert_non_null(strstr(err, "test.ini: [kobo] forms: \"a/b\" is not an asset uid"));
	assert_null(client(TOKEN, "all aFull", 10, 2, err));
	assert_non_null(strstr(err, "[kobo] forms: \"all\" or asset uids, not both"));
	assert_null(client(TOKEN, "  ", 10, 2, err));
	assert_non_null(strstr(err, "[kobo] forms: empty"));
	assert_null(client("", "all", 10, 2, err));
	assert_non_null(strstr(err, "[kobo] token: not set"));
	assert_null(client("abc\r\nX-Evil: 1", "all", 10, 2, err));
	assert_non_null(strstr(err, "[kobo] token: "));
	assert_null(strstr(err, "Evil"));
}

static void
test_full_and_since(void **state)
{
	char err[KOBO_ERR_MAX] = "";
	struct kobo *k = client(TOKEN, "all", 10, 2, err);
	struct got g = { .ordered = 1, .since_at = 2000 }, g2 = { .ordered = 1 };
	atomic_int cancel = 0;
	json_t *ids;
	const char *q;

	post("/_test/reset_stats", NULL);
	assert_int_equal(kobo_pull(k, "aFull", NULL, &cancel, on_sub, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, NFULL);
	assert_true(g.ordered);
	assert_int_equal(g.bad, 0);
	assert_int_equal(g.last - g.first + 1, NFULL);
	/* Pages of 1000: three requests. */
	assert_int_equal(stat_of("data_requests", "aFull"), 3);
	assert_int_equal(stat_of("served", "aFull"), NFULL);

	/* Newer than the 2000th: the last 500, asked of the server. */
	assert_int_equal(kobo_pull(k, "aFull", g.since, &cancel, on_sub, &g2, err,
	    sizeof(err)), 0);
	assert_int_equal(g2.n, NFULL - 2000);
	assert_int_equal(g2.first, g.first + 2000);
	assert_int_equal(g2.last, g.last);
	assert_true(g2.ordered);
	assert_int_equal(g2.bad, 0);
	{
		json_t *s = control(0, "/_test/stats");

		q = json_string_value(json_object_get(json_object_get(s, "last_query"), "aFull"));
		assert_non_null(q);
		assert_true(strncmp(q, "{\"_submission_time\":{\"$gt\":\"", 28) == 0);
		json_decref(s);
	}

	/* New ones since the last pull: only they come. */
	ids = control(1, "/_test/forms/aFull/add?n=3");
	memset(&g2, 0, sizeof(g2));
	g2.ordered = 1;
	assert_int_equal(kobo_pull(k, "aFull", g.submitted, &cancel, on_sub, &g2, err,
	    sizeof(err)), 0);
	assert_int_equal(g2.n, 3);
	assert_int_equal(g2.first, json_integer_value(json_array_get(json_object_get(ids, "ids"), 0)));
	json_decref(ids);

	/* fn stops it: -1, err as fn left it. */
	memset(&g2, 0, sizeof(g2));
	g2.stop_at = 1500;
	g2.err = err;
	assert_int_equal(kobo_pull(k, "aFull", NULL, &cancel, on_sub, &g2, err, sizeof(err)), -1);
	assert_int_equal(g2.n, 1500);
	assert_true(strncmp(err, "stopped by fn at ", 17) == 0);

	/* Cancelled: at once. */
	cancel = 1;
	memset(&g2, 0, sizeof(g2));
	assert_int_equal(kobo_pull(k, "aFull", NULL, &cancel, on_sub, &g2, err, sizeof(err)), -1);
	assert_string_equal(err, "interrupted");
	assert_int_equal(g2.n, 0);
	kobo_free(k);
}

static void
test_auth(void **state)
{
	char err[KOBO_ERR_MAX] = "";
	struct kobo *k = client("wrongtoken42", "all", 10, 5, err);
	struct kobo_form *v;
	struct got g = { 0 };
	atomic_int cancel = 0;
	int64_t t0 = mono_ns();
	int n;

	post("/_test/reset_stats", NULL);
	assert_int_equal(kobo_forms(k, &cancel, &v, &n, err, sizeof(err)), KOBO_AUTH);
	assert_non_null(strstr(err, "the server refused the token (HTTP 401: Invalid token.); "
	    "check [kobo] token"));
	assert_null(strstr(err, "wrongtoken42"));
	assert_int_equal(kobo_pull(k, "bSmall", NULL, &cancel, on_sub, &g, err, sizeof(err)),
	    KOBO_AUTH);
	/* No retries: one request each. */
	assert_int_equal(stat_of("unauthorized", NULL), 2);
	assert_true(secs_since(t0) < 2);
	/* A token the server echoes (here: in the URL) is not shown. */
	assert_int_equal(kobo_pull(k, "wrongtoken42", NULL, &cancel, on_sub, &g, err,
	    sizeof(err)), KOBO_AUTH);
	assert_null(strstr(err, "wrongtoken42"));
	assert_non_null(strstr(err, "(the token)"));
	kobo_free(k);

	/* A good token whose account may not see the form: 403, KOBO_AUTH
	 * too, after one request, saying what helps. */
	k = client(TOKEN, "all", 10, 5, err);
	post("/_test/reset_stats", NULL);
	post("/_test/hostile?mode=forbidden&uid=bSmall", NULL);
	assert_int_equal(kobo_pull(k, "bSmall", NULL, &cancel, on_sub, &g, err, sizeof(err)),
	    KOBO_AUTH);
	assert_non_null(strstr(err, "/api/v2/assets/bSmall/data/"));
	assert_non_null(strstr(err, "the account of [kobo] token may not see this (HTTP 403: "
	    "You do not have permission to perform this action.); share the form with it"));
	assert_null(strstr(err, TOKEN));
	assert_int_equal(stat_of("data_requests", "bSmall"), 1);
	post("/_test/hostile?mode=off", NULL);
	kobo_free(k);
}

static void
test_ratelimit(void **state)
{
	char err[KOBO_ERR_MAX] = "";
	struct kobo *k = client(TOKEN, "all", 10, 5, err);
	struct got g = { .ordered = 1 };
	atomic_int cancel = 0;
	int64_t t0;

	post("/_test/reset_stats", NULL);
	post("/_test/ratelimit?n=2", NULL);
	t0 = mono_ns();
	assert_int_equal(kobo_pull(k, "bSmall", NULL, &cancel, on_sub, &g, err, sizeof(err)), 0);
	assert_int_equal(g.n, 5);
	assert_int_equal(stat_of("throttled", NULL), 2);
	/* Retry-After: 1, twice. */
	assert_true(secs_since(t0) >= 1.9);

	/* More 429s than retries: given up, saying after how many. */
	kobo_free(k);
	k = client(TOKEN, "all", 10, 1, err);
	post("/_test/ratelimit?n=5", NULL);
	assert_int_equal(kobo_pull(k, "bSmall", NULL, &cancel, on_sub, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HTTP 429"));
	assert_non_null(strstr(err, "given up after 2 attempts"));
	post("/_test/ratelimit?n=0", NULL);
	kobo_free(k);
}

/* A pull of cHostile with the server in mode: -1 within secs, err
 * holding want. */
static void
hostile(const char *mode, int timeout, double secs, const char *want)
{
	char err[KOBO_ERR_MAX] = "", path[64];
	struct kobo *k = client(TOKEN, "all", timeout, mode[0] == 's' ? 1 : 5, err);
	struct got g = { 0 };
	atomic_int cancel = 0;
	int64_t t0;

	snprintf(path, sizeof(path), "/_test/hostile?mode=%s&uid=cHostile", mode);
	post(path, NULL);
	t0 = mono_ns();
	assert_int_equal(kobo_pull(k, "cHostile", NULL, &cancel, on_sub, &g, err, sizeof(err)),
	    -1);
	printf("hostile %s: %.1f s: %s\n", mode, secs_since(t0), err);
	if (!strstr(err, want) || secs_since(t0) > secs)
		fail_msg("mode %s: %.1f s: %s", mode, secs_since(t0), err);
	assert_null(strstr(err, TOKEN));
	assert_null(strchr(err, '\n'));
	post("/_test/hostile?mode=off", NULL);
	kobo_free(k);
}

static void
test_hostile(void **state)
{
	hostile("huge", 10, 3, "the answer is larger than 64 MiB; refused");
	/* No Content-Length: refused at 64 MiB read, as it streams. */
	hostile("hugechunked", 10, 10, "the answer is larger than 64 MiB; refused");
	hostile("deep", 10, 3, "submission 1 is nested deeper than 64; refused");
	hostile("nul", 10, 3, "submission 1 holds \\u0000 (a NUL character); refused");
	hostile("notjson", 10, 3, "not a JSON object: it does not start with '{'");
	hostile("countlie", 10, 3, "the first page counted 1003 submissions, but 3 came");
	hostile("loop", 10, 3, "the next page is one followed already");
	/* One retry: two stalls of 2 s and a backoff of at most 1 s. */
	hostile("slow", 2, 8, "too slow");
}

static void
test_next_elsewhere(void **state)
{
	char err[KOBO_ERR_MAX] = "", url[64];
	struct kobo *k;
	struct got g = { 0 };
	atomic_int cancel = 0;

	/* [kobo] url names the server localhost; its next pages say
	 * 127.0.0.1: another server as far as the token is concerned. */
	snprintf(url, sizeof(url), "%s", base);
	snprintf(base, sizeof(base), "http://localhost:%s", strrchr(url, ':') + 1);
	k = client(TOKEN, "all", 10, 2, err);
	snprintf(base, sizeof(base), "%s", url);
	assert_non_null(k);
	assert_int_equal(kobo_pull(k, "aFull", NULL, &cancel, on_sub, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "the next page is not on the server of [kobo] url"));
	assert_int_equal(g.n, 1000);
	kobo_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_full_and_since),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_next_elsewhere),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
