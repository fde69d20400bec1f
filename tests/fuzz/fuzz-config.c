/*
 * fuzz-config.c - libFuzzer target for src/config.c: the input (up to its
 * first NUL) is a thlhp.ini, read by config_load_string and, written to a
 * file, by config_load.  A few THLHP_FUZZ_* variables are set for ${NAME}.
 * What must hold: both readers give the same result and the same message;
 * a failure is one line "NAME:LINE: ..." or "NAME: ...", with no control
 * character but tab, and leaves the config zeroed; a success holds only what the README allows (every key
 * a protocol needs, numbers in range, AE titles of 1-16 characters DICOM
 * allows, a delimiter of letters, '.', '_' and '-', dicom_dir != zip_dir,
 * tls_ca with tls, tls_cert with tls_key, a password exactly with
 * encrypt); config_where names the file; nothing leaks.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-config.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

static char path[4096];       /* the file config_load reads; also the name */

static void
cleanup(void)
{
	unlink(path);
}

static void
setup(void)
{
	static char long_value[301];
	int fd;

	memset(long_value, 'v', sizeof(long_value) - 1);
	setenv("THLHP_FUZZ_A", "/srv/in", 1);
	setenv("THLHP_FUZZ_EMPTY", "", 1);
	setenv("THLHP_FUZZ_AE", "ORTHANC", 1);
	setenv("THLHP_FUZZ_NUM", "104", 1);
	setenv("THLHP_FUZZ_LONG", long_value, 1);
	setenv("THLHP_FUZZ_DOLLAR", "${THLHP_FUZZ_A}", 1);
	setenv("THLHP_ZIP_PASSWORD", "s3cret", 1);
	unsetenv("THLHP_FUZZ_UNSET");
	snprintf(path, sizeof(path), "%s/fuzz-config-XXXXXX",
	    getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		perror("fuzz-config.c: mkstemp");
		abort();
	}
	close(fd);
	atexit(cleanup);
}

static int
ae_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 16)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '\\' || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* What a config that loaded must hold. */
static void
check_loaded(const struct config *c)
{
	const char *sections[] = { "pacs", "select", "output", "state", "notify" };
	char *w;

	CHECK(c->file && strcmp(c->file, path) == 0);
	CHECK(c->pacs.protocol && source_find(c->pacs.protocol));
	if (strcmp(c->pacs.protocol, "dimse") == 0) {
		CHECK(c->pacs.host && *c->pacs.host && ae_ok(c->pacs.called_aet));
		CHECK(c->pacs.port >= 1 && c->pacs.port <= 65535);
		CHECK(ae_ok(c->pacs.move_destination) && ae_ok(c->pacs.peer_aet) && c->pacs.store_bind);
	} else if (strcmp(c->pacs.protocol, "dicomweb") == 0) {
		CHECK(c->pacs.url && *c->pacs.url);
	} else {
		CHECK(strcmp(c->pacs.protocol, "folder") == 0 && c->pacs.path && *c->pacs.path);
	}
	CHECK(c->pacs.protocol_line >= 1);
	CHECK(ae_ok(c->pacs.calling_aet) && (!c->pacs.move_destination || ae_ok(c->pacs.move_destination)));
	CHECK(!c->pacs.called_aet || ae_ok(c->pacs.called_aet));
	CHECK(c->pacs.retrieve == RETRIEVE_MOVE || c->pacs.retrieve == RETRIEVE_GET);
	CHECK(c->pacs.store_port >= 1 && c->pacs.store_port <= 65535);
	CHECK(c->pacs.max_associations >= 1 && c->pacs.max_associations <= 64);
	CHECK(c->pacs.max_requests_per_minute >= 1 && c->pacs.max_requests_per_minute <= 1000000);
	CHECK(c->pacs.timeout >= 1 && c->pacs.timeout <= 86400);
	CHECK(c->pacs.retries >= 0 && c->pacs.retries <= 100);
	CHECK(c->pacs.tls == 0 || c->pacs.tls == 1);
	CHECK(!c->pacs.tls || (c->pacs.tls_ca && *c->pacs.tls_ca));
	CHECK(!c->pacs.tls_cert == !c->pacs.tls_key);
	CHECK(!c->pacs.tls_cert || *c->pacs.tls_cert);
	CHECK(!c->pacs.path || *c->pacs.path);
	CHECK(c->output.dicom_dir && *c->output.dicom_dir && c->output.zip_dir && *c->output.zip_dir);
	CHECK(strcmp(c->output.dicom_dir, c->output.zip_dir) != 0);
	CHECK(c->output.delimiter && *c->output.delimiter);
	CHECK(strspn(c->output.delimiter, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-") ==
	    strlen(c->output.delimiter));
	CHECK(c->output.compression >= COMP_STORE && c->output.compression <= COMP_BZIP2);
	CHECK(c->output.level >= 1 && c->output.level <= 9);
	CHECK(c->output.keep_old == 0 || c->output.keep_old == 1);
	CHECK(c->output.encrypt == ENC_NO || c->output.encrypt == ENC_AES256);
	CHECK((c->output.encrypt == ENC_AES256) == (c->output.password != NULL));
	CHECK(!c->output.password || *c->output.password);
	CHECK(c->state.url && c->state.lease >= 2 && c->state.lease <= 86400);
	for (size_t i = 0; i < sizeof(c->lines) / sizeof(c->lines[0]); i++)
		CHECK(c->lines[i] >= 0);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		w = config_where(c, sections[i], "url");
		CHECK(strncmp(w, path, strlen(path)) == 0 && w[strlen(path)] == ':');
		free(w);
	}
	w = config_zip_settings(c);
	CHECK(strncmp(w, "compression=", 12) == 0);
	free(w);
}

/* A failure: one line naming the file, the config zeroed. */
static void
check_failed(const struct config *c, const char *err)
{
	static const struct config zero;
	size_t n = strlen(path);

	CHECK(err && strncmp(err, path, n) == 0 && err[n] == ':');
	for (const char *e = err; *e; e++)
		CHECK(((unsigned char)*e >= 0x20 || *e == '\t') && *e != 0x7f);
	CHECK(err[n + 1] == ' ' || (err[n + 1] >= '1' && err[n + 1] <= '9'));
	CHECK(memcmp(c, &zero, sizeof(zero)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config a, b;
	char *text, *ea = NULL, *eb = NULL;
	size_t n;
	int ra, rb, fd;

	if (!path[0])
		setup();
	text = malloc(size + 1);
	CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';
	n = strlen(text);

	ra = config_load_string(&a, path, text, &ea);
	CHECK(ra == 0 || ra == -1);
	if (ra == 0) {
		CHECK(ea == NULL);
		check_loaded(&a);
	} else {
		check_failed(&a, ea);
	}

	/* The same bytes from a file; 0600, so no warning about a password.
	 * Overwritten, then cut: truncating to 0 first makes ext4 flush on
	 * close, ~1 ms each time. */
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, text, n, 0) == (ssize_t)n && ftruncate(fd, (off_t)n) == 0 &&
	    close(fd) == 0);
	rb = config_load(&b, path, &eb);
	if (ra != rb || (ra < 0 && strcmp(ea, eb) != 0)) {
		fprintf(stderr, "fuzz-config.c: config_load_string: %d %s\nconfig_load: %d %s\n",
		    ra, ea ? ea : "", rb, eb ? eb : "");
		abort();
	}
	if (ra == 0) {
		CHECK(strcmp(a.pacs.protocol, b.pacs.protocol) == 0 && a.output.level == b.output.level);
		CHECK(memcmp(a.lines, b.lines, sizeof(a.lines)) == 0);
		CHECK(strcmp(a.output.delimiter, b.output.delimiter) == 0);
		config_free(&a);
		config_free(&b);
	}
	free(ea);
	free(eb);
	free(text);
	return 0;
}
