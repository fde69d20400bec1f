/* pgconn.c - see pgconn.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "pgconn.h"
#include "util.h"

PGconn *
pgconn_open(const char *url, const char *key, char *where, size_t wlen, char *err,
    size_t errlen)
{
	const char *kw[4], *val[4], *host, *db, *port;
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	PGconn *c;
	int k = 0;

	snprintf(where, wlen, "postgresql");
	if (!opts) {
		errf(err, errlen, "postgresql: %s is not a URL libpq can read (a bad %%-escape "
		    "or parameter?)", key);
		errno = EINVAL;
		return NULL;
	}
	PQconninfoFree(opts);
	if (!getenv("PGCONNECT_TIMEOUT")) {
		kw[k] = "connect_timeout";
		val[k++] = "10";
	}
	if (!getenv("PGAPPNAME")) {
		kw[k] = "application_name";
		val[k++] = "thlhp-make";
	}
	/* Last, so that what the URL says wins over the two above. */
	kw[k] = "dbname";
	val[k++] = url;
	kw[k] = val[k] = NULL;
	if (!(c = PQconnectdbParams(kw, val, 1))) {
		errf(err, errlen, "postgresql: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	host = PQhost(c);
	db = PQdb(c);
	port = PQport(c);
	/* No database name: libpq did not get as far as reading the URL. */
	if (db && *db)
		snprintf(where, wlen, "postgresql database '%s' on %s%s%s", db,
		    host && *host ? host : "localhost", port && *port ? ":" : "",
		    port && *port ? port : "");
	return c;
}
