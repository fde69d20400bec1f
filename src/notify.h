/*
 * notify.h - healthchecks-style heartbeats ([notify] ping_url): GET
 * url/start when a run starts, GET url when it succeeds, POST url/fail
 * with the run's last lines when it fails, or (those lines name patients)
 * only how many there were, unless [notify] include_ids = yes.  A ping
 * that fails is a warning, never the run's failure; each takes at most
 * NOTIFY_TIMEOUT s.
 */
#ifndef THLHP_NOTIFY_H
#define THLHP_NOTIFY_H

enum { NOTIFY_TIMEOUT = 10 };

enum notify_event { NOTIFY_START, NOTIFY_OK, NOTIFY_FAIL };

/* Ping url for event, with the last lines when include_ids; does
 * nothing when url is NULL or empty. */
void notify_ping(const char *url, int include_ids, enum notify_event event);

#endif
