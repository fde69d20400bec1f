/*
 * pgconn.h - a libpq connection to a postgresql:// URL, made one way for
 * the state (pg.c) and for what a stage writes (the omop stage).
 */
#ifndef THLHP_PGCONN_H
#define THLHP_PGCONN_H

#include <stddef.h>
#include <libpq-fe.h>

/* Connect to url, with connect_timeout 10 s and application_name
 * thlhp-make unless PGCONNECT_TIMEOUT or PGAPPNAME say otherwise (what the
 * URL says wins over both).  A URL libpq cannot read is said as key's
 * ("[state] url") without quoting it: it may hold a password.  where
 * names the database for messages ("postgresql database 'db' on
 * host:port", or "postgresql" before libpq read that far).  NULL with err
 * (errno EINVAL or ENOMEM); else the connection, its PQstatus for the
 * caller to check. */
PGconn *pgconn_open(const char *url, const char *key, char *where, size_t wlen,
    char *err, size_t errlen);

#endif
