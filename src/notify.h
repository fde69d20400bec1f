/*
 * notify.h - telling people what happened ([notify]).
 *
 * Heartbeats (ping_url): GET url/start when a build starts, GET url when it
 * succeeds, POST url/fail with the run's last lines when it fails.
 *
 * News: a build that made or failed something records what it did as
 * notices in the state (table notice); each channel (mail to mail_to
 * through smtp_url, a JSON POST {"text": ...} to webhook_url) sends the
 * notices it has not sent yet as one digest when one is due: at the end of
 * every such run with digest = run, at the first run past digest_time
 * since the oldest unsent notice with digest = daily.  A channel that
 * cannot send keeps its notices for the next run.  Processes sharing a
 * store record their own news only (not what another made) and take turns
 * by a claim on the channel, so no notice is sent twice.  Failures go out at once
 * too: to the webhook always, by mail with errors = immediate (with
 * digest = daily; with digest = run the digest itself goes at once).
 *
 * PatientIDs leave the host only with include_ids = yes; otherwise every
 * text sent counts patients instead of naming them, and a failure's reason
 * has its patient's ID replaced.  Nothing here fails a run: a notification
 * that cannot be sent is a warning naming the server and the reason, each
 * attempt bounded by [notify] timeout.
 */
#ifndef THLHP_NOTIFY_H
#define THLHP_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct state;

enum notify_event { NOTIFY_START, NOTIFY_OK, NOTIFY_FAIL };

/* Ping url for event with at most timeout s, the last lines sent only
 * with include_ids; does nothing when url is NULL or empty. */
void notify_ping(const char *url, int include_ids, int timeout, enum notify_event event);

/* One thing a run did (a row of table notice).  Strings borrowed. */
enum notice_kind {
	NOTICE_RUN,               /* a run that made or failed something */
	NOTICE_PRODUCT,           /* a deliverable made: an archive */
	NOTICE_SERIES,            /* a series fetched for the first time */
	NOTICE_FAILURE,           /* a job that failed, or the run itself */
	NOTICE_ITEM,              /* an item pulled: a form's submissions */
};
struct notice {
	int64_t id;               /* the store's order; 0 before it is recorded */
	int64_t at;               /* when, ns since the epoch */
	enum notice_kind kind;
	const char *patient;      /* PatientID as the PACS has it; NULL for a run */
	const char *what;         /* run: the targets asked for; product: its file
	                           * name; series: its UID; failure, item: the
	                           * target */
	const char *detail;       /* run: "ok" or "failed"; product: its label
	                           * ("archive"); series: its modality; failure:
	                           * the reason; item: what its job pulled */
	int64_t n;                /* run: its duration in ms; product: the series
	                           * it was made from */
	int64_t size;             /* product: its bytes */
};

/* The channels a notice waits for (the notice table's pending bits). */
enum { NOTIFY_MAIL = 1, NOTIFY_HOOK = 2 };

/* At the end of a build that may write: record v[0..n) for the channels
 * cfg configures, then send what is due (see above).  failed: the run
 * failed.  Warnings only. */
void notify_news(const struct config *cfg, struct state *st, const struct notice *v, int n,
    int failed);

/*
 * What is sent, made from notices alone (notify-text.c), so a test can
 * check it without a server.  Both malloc'd, UTF-8, lines shorter than
 * 998 bytes; no PatientID in them unless include_ids.
 */
/* The digest of v[0..n): its one-line summary (a mail's Subject) into
 * *subject, its text (a plain-text mail body, a webhook's text) returned.
 * host: the host the runs ran on; project: the config file's folder. */
char *notify_digest(const struct notice *v, int n, int include_ids, const char *host,
    const char *project, char **subject);
/* The same for the failures of one run alone (errors = immediate and the
 * webhook's failure post). */
char *notify_failures(const struct notice *v, int n, int include_ids, const char *host,
    const char *project, char **subject);

/* The last occurrence of the local time of day hms ("HH:MM" or
 * "HH:MM:SS") at or before now (seconds since the epoch); -1 when hms is
 * not such a time.  A daily digest is due once this passes its oldest
 * notice. */
int64_t notify_last_time(const char *hms, int64_t now);

/* Send one mail with libcurl (SMTP; STARTTLS when the server offers it
 * with smtp://, TLS from the start with smtps://): from, to (addresses
 * separated by spaces or commas), subject and a plain-text UTF-8 body,
 * with Date and Message-ID headers, quoted-printable.  0, or -1 with err
 * naming the server and the reason. */
int notify_mail(const struct config *cfg, const char *subject, const char *body, char *err,
    size_t errlen);
/* POST {"text": text} to url.  0, or -1 with err. */
int notify_hook(const char *url, int timeout, const char *text, char *err, size_t errlen);

#endif
