/* config.h - thlhp.ini, read strictly with inih. */
#ifndef THLHP_CONFIG_H
#define THLHP_CONFIG_H

enum retrieve { RETRIEVE_MOVE, RETRIEVE_GET };
enum compression { COMP_STORE, COMP_DEFLATE, COMP_BZIP2 };
enum encrypt { ENC_NO, ENC_AES256 };
enum missing_person { MISSING_SKIP, MISSING_ZERO };

/* A [rule NAME] section: a stage that runs a program (config-rule.c). */
struct rule_decl {
	char *name;
	int line;                   /* of its [rule NAME] line */
	int per_patient;            /* for = patient; else series */
	char *after;                /* a stage's or a rule's name */
	char *command;              /* as written */
	char **argv;                /* command split into words (words.h) */
	char *output;               /* its template, or NULL: a stamp */
	int jobs;                   /* at most this many at once; 0: -j */
	int timeout;                /* seconds; 0: none */
	int lines[6];               /* line of for, after, command, output, jobs, timeout */
};

struct config {
	char *file;                 /* path it was read from */
	struct {
		char *protocol;         /* a source's name (source/source.c) */
		char *host;
		int port;
		char *called_aet, *calling_aet;
		enum retrieve retrieve;
		char *move_destination;
		int store_port;
		char *store_bind;       /* IPv4 address our storage SCP listens on */
		char *peer_aet;         /* the only calling AE it takes; called_aet */
		int max_associations;
		int max_requests_per_minute;
		int timeout;            /* seconds */
		int retries;
		int tls;
		char *tls_ca, *tls_cert, *tls_key;
		char *url;              /* dicomweb */
		char *auth;             /* dicomweb: "bearer TOKEN" or "basic USER:PASS" */
		char *path;             /* folder */
		long long max_instance_size; /* dicomweb: bytes of one WADO-RS part */
		int full_query_every;   /* seconds between full query walks; 0: every run */
		int max_results;        /* the most matches the PACS answers; 0: no cap */
		int protocol_line;      /* where protocol was set, for messages */
	} pacs;
	struct {
		char *patient_id;       /* space-separated globs */
		char *patient_id_regex;
		char *patients_file;
		char *modality;         /* space-separated */
		char *study_date;       /* DICOM range */
	} select;
	struct {
		char *dicom_dir, *zip_dir, *delimiter;
		enum compression compression;
		int level;              /* 1-9 */
		int keep_old;
		int checksums;          /* a .sha256 manifest next to each archive */
		enum encrypt encrypt;   /* archives that leave the site */
		char *password;         /* for encrypt; from ${NAME} */
	} output;
	struct {
		char *url;
		int lease;              /* seconds a claim lasts without renewal */
	} state;
	struct config_notify {
		char *ping_url;
		int include_ids;        /* PatientIDs may leave the host */
		int timeout;            /* seconds, each attempt to send */
		char *mail_to, *mail_from, *smtp_url, *smtp_user, *smtp_password, *smtp_ca;
		char **rcpt;            /* mail_to's addresses, split and checked */
		char *webhook_url;
		enum digest { DIGEST_RUN, DIGEST_DAILY } digest;
		char *digest_time;      /* "HH:MM" or "HH:MM:SS", local time */
		enum errors_mail { ERRORS_DIGEST, ERRORS_IMMEDIATE } errors;
	} notify;
	struct {
		int on;                 /* [metadata]'s line: the metadata stage; 0: none */
		long long max_value;    /* max_value_bytes: longer values are left out */
	} metadata;
	struct {
		int on;                 /* [omop]'s line: the omop stage; 0: none */
		char *url;              /* a PostgreSQL URI to write into, or NULL */
		char *schema;           /* its schema (default "omop") */
		char *dir;              /* or a folder for CSV files, or NULL */
		char *person_map;       /* a CSV file, or a PostgreSQL schema.table */
		enum missing_person missing_person;
		char *vocabulary;       /* an OMOP CONCEPT.csv, or NULL */
	} omop;
	struct config_kobo {
		int on;                 /* [kobo]'s line: the forms stage; 0: none */
		char *url;              /* the KPI server, e.g. https://kf.kobotoolbox.org */
		char *token;            /* its API token, from ${NAME} */
		char *forms;            /* "all", or asset uids separated by blanks */
		int timeout;            /* seconds */
		int retries;            /* per request, with backoff */
		int max_requests_per_minute;
		char *tls_ca;           /* a CA file for its certificate, or NULL */
	} kobo;
	int lines[96];              /* line each key was set on, by key table index */
	struct rule_decl *rules;    /* [rule NAME] sections, in file order */
	int nrules;
};

/* Read file into cfg (defaults first).  0, or -1 with "file:line: key: what"
 * in err (malloc'd). */
int config_load(struct config *cfg, const char *file, char **err);
/* As config_load, from a string (for tests); name is used in messages. */
int config_load_string(struct config *cfg, const char *name, const char *text, char **err);
void config_free(struct config *cfg);
/* "file:line: [section] key" of a key, for messages about its value (the
 * line is left out when the key was not in the file); malloc'd. */
char *config_where(const struct config *cfg, const char *section, const char *key);
/* "file:line: [section] key: message", one line of text (control bytes
 * of a value quoted back shown as '?'); malloc'd.  For the checks a
 * source makes of its own keys. */
char *config_err(const struct config *cfg, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A commented sample config, as `-t init` writes it. */
extern const char config_sample[];
/* The zip settings as one string, part of every archive's signature. */
char *config_zip_settings(const struct config *cfg);

#endif
