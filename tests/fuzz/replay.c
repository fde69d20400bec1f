/*
 * replay.c - run a libFuzzer target's LLVMFuzzerTestOneInput over every
 * file in the directories (or files) given, or in FUZZ_CORPUS when none
 * is, so `make check` replays the corpus without libFuzzer.  Fails when
 * there was nothing to replay: a test that asserts nothing is a defect.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Under ASan, an allocation past 2 GB is an error here as it is under
 * fuzz.sh (libFuzzer's -rss_limit_mb=2048 limits malloc too), so an
 * input kept for a huge allocation still fails when it comes back.
 * ASAN_OPTIONS from the environment is read after this. */
const char *
__asan_default_options(void)
{
	return "max_allocation_size_mb=2048";
}

/* Run the target on one file: 0, or -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "replay: %s: cannot open\n", path);
		return -1;
	}
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			if (!(buf = realloc(buf, cap)))
				abort();
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

/* Replay path, a file or a directory's files; how many, or -1. */
static int
replay(const char *path)
{
	struct stat st;
	struct dirent *d;
	DIR *dir;
	int n = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: not found\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) < 0 ? -1 : 1;
	if (!(dir = opendir(path)))
		return -1;
	while ((d = readdir(dir))) {
		char *p;

		if (d->d_name[0] == '.')
			continue;
		if (!(p = malloc(strlen(path) + strlen(d->d_name) + 2)))
			abort();
		sprintf(p, "%s/%s", path, d->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(p) < 0)
				n = -1;
			else if (n >= 0)
				n++;
		}
		free(p);
	}
	closedir(dir);
	return n;
}

int
main(int argc, char **argv)
{
	int total = 0;
#ifdef FUZZ_CORPUS
	static char corpus[] = FUZZ_CORPUS, *dflt[] = { NULL, corpus, NULL };

	if (argc < 2) {
		argv = dflt;
		argc = 2;
	}
#endif

	if (argc < 2) {
		fprintf(stderr, "usage: %s corpus-dir-or-file...\n", argv[0] ? argv[0] : "replay");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int n = replay(argv[i]);

		if (n < 0)
			return 1;
		printf("replay: %d inputs from %s\n", n, argv[i]);
		total += n;
	}
	if (total == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	printf("replay: %d inputs, all passed\n", total);
	return 0;
}
