/*
 * test-spawn.c - src/spawn.c with real programs (sh, true, false, sleep,
 * cat, pwd): the exit status or signal is reported; stdout and stderr
 * land in one log and the tail holds its last 20 lines; stdin is
 * /dev/null; the environment gets the entries asked for and THLHP_SPAWN;
 * the folder is honoured; a program that cannot start is -1 with a
 * message naming it; on timeout and cancel the whole group is killed
 * (SIGKILL for one that ignores SIGTERM) and gone when spawn_run returns,
 * as is what a normal exit leaves behind; the log is never written
 * through a link; threads spawn at once; spawn_reap_orphans kills what a
 * dead thlhp-make left and nothing of a live one.  Time bounds are loose:
 * the machine is shared.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "spawn.h"
#include "util.h"
#include "rmtree.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

struct fx {
	char root[64];
	char log[128];
	char err[512];
	struct spawn_result r;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	strcpy(f->root, "/tmp/thlhp-spawn-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/log", f->root);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	rmtree(f->root);
	free(f);
	return 0;
}

/* spawn_run argv (NULL-terminated) with env, dir and timeout, into f->r. */
static int
run(struct fx *f, char *const *env, const char *dir, int64_t timeout, atomic_int *cancel,
    char *const *argv)
{
	struct spawn_opts o = { .argv = argv, .env = env, .dir = dir, .log = f->log,
		.timeout_ns = timeout, .cancel = cancel };

	f->err[0] = '\0';
	return spawn_run(&o, &f->r, f->err, sizeof(f->err));
}

#define ARGV(...) ((char *const[]){ __VA_ARGS__, NULL })

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *s = xcalloc(1, 65536);

	if (fp) {
		s[fread(s, 1, 65535, fp)] = '\0';
		fclose(fp);
	}
	return s;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* No process is left in group pgid. */
static void
assert_group_gone(pid_t pgid)
{
	assert_true(pgid > 0);
	assert_int_equal(kill(-pgid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/* Field 22 of /proc/self/stat, parsed here on its own. */
static unsigned long long
my_start(void)
{
	char *s = slurp("/proc/self/stat"), *p = strrchr(s, ')');
	unsigned long long v = 0;

	assert_non_null(p);
	p += 2;
	for (int f = 3; f < 22; f++)
		p = strchr(p, ' ') + 1;
	v = strtoull(p, NULL, 10);
	free(s);
	return v;
}

static void
test_status(void **state)
{
	struct fx *f = *state;

	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("/bin/true")), 0);
	assert_int_equal(f->r.status, 0);
	assert_int_equal(f->r.signal, 0);
	assert_false(f->r.timed_out || f->r.cancelled);
	assert_true(f->r.pgid > 0);
	assert_group_gone(f->r.pgid);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("false")), 0);
	assert_int_equal(f->r.status, 1);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "exit 3")), 0);
	assert_int_equal(f->r.status, 3);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "kill -USR1 $$")), 0);
	assert_int_equal(f->r.status, -1);
	assert_int_equal(f->r.signal, SIGUSR1);
	assert_true(f->r.elapsed_ns > 0 && f->r.elapsed_ns < 10 * SEC);
}

static void
test_log_and_tail(void **state)
{
	struct fx *f = *state;
	char want[2048] = "", *log;

	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c",
	    "i=1; while [ $i -le 100 ]; do echo line $i; i=$((i+1)); done; echo oops >&2")), 0);
	assert_int_equal(f->r.status, 0);
	log = slurp(f->log);
	assert_non_null(strstr(log, "line 1\nline 2\n"));
	assert_non_null(strstr(log, "line 100\noops\n"));
	free(log);
	for (int i = 82; i <= 100; i++)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "line %d\n", i);
	strcat(want, "oops\n");
	assert_string_equal(f->r.tail, want);

	/* Control bytes as '?', a last line without '\n' kept. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c",
	    "printf 'a\\033[31mred\\tx\\r\\nlast'")), 0);
	assert_string_equal(f->r.tail, "a?[31mred?x?\nlast");

	/* Longer than the tail holds: its end, from a line's start. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c",
	    "i=0; while [ $i -lt 30 ]; do printf '%0200d\\n' $i; i=$((i+1)); done")), 0);
	assert_true(strlen(f->r.tail) < sizeof(f->r.tail));
	assert_int_equal(strlen(f->r.tail) % 201, 0);
	assert_int_equal(f->r.tail[strlen(f->r.tail) - 1], '\n');
	assert_non_null(strstr(f->r.tail, "00029\n"));

	/* Nothing said: an empty tail; the log is created 0600. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("true")), 0);
	assert_string_equal(f->r.tail, "");
	{
		struct stat sb;

		assert_int_equal(stat(f->log, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		assert_int_equal(sb.st_size, 0);
	}
}

/* How many descriptors this process has open. */
static int
count_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void
test_fds(void **state)
{
	struct fx *f = *state;
	char cmd[64];
	int before, leak = open("/dev/null", O_RDONLY);   /* no O_CLOEXEC */

	assert_true(leak > 2);
	before = count_fds();
	/* Not passed on: another thread's descriptor is none of its business. */
	snprintf(cmd, sizeof(cmd), "test -e /proc/self/fd/%d", leak);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", cmd)), 0);
	assert_int_equal(f->r.status, 1);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "test -e /proc/self/fd/2")), 0);
	assert_int_equal(f->r.status, 0);
	/* Nothing left open here, after a run or a failure to start. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("thlhp-no-such-program")), -1);
	assert_int_equal(count_fds(), before);
	close(leak);
}

static void
test_stdin_null(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns();

	/* cat of a terminal or a pipe of ours would wait: /dev/null ends it. */
	assert_int_equal(run(f, NULL, NULL, 10 * SEC, NULL, ARGV("cat")), 0);
	assert_int_equal(f->r.status, 0);
	assert_false(f->r.timed_out);
	assert_true(mono_ns() - t0 < 5 * SEC);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "readlink /proc/self/fd/0")), 0);
	assert_string_equal(f->r.tail, "/dev/null\n");
}

static void
test_env(void **state)
{
	struct fx *f = *state;
	char want[128];

	assert_int_equal(setenv("THLHP_TEST_KEPT", "kept", 1), 0);
	assert_int_equal(setenv("THLHP_TEST_REPLACED", "old", 1), 0);
	assert_int_equal(run(f, ARGV("FOO=bar baz", "THLHP_TEST_REPLACED=new"), NULL, 0, NULL,
	    ARGV("sh", "-c", "echo \"$FOO|$THLHP_TEST_KEPT|$THLHP_TEST_REPLACED|$THLHP_SPAWN\"; "
	    "env | grep -c '^THLHP_TEST_REPLACED='")), 0);
	snprintf(want, sizeof(want), "bar baz|kept|new|%ld:%llu\n1\n", (long)getpid(), my_start());
	assert_string_equal(f->r.tail, want);
	unsetenv("THLHP_TEST_KEPT");
	unsetenv("THLHP_TEST_REPLACED");
}

static void
test_dir(void **state)
{
	struct fx *f = *state;
	char real[PATH_MAX], want[PATH_MAX + 2], sub[160];

	snprintf(sub, sizeof(sub), "%s/sub", f->root);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_non_null(realpath(sub, real));
	assert_int_equal(run(f, NULL, sub, 0, NULL, ARGV("sh", "-c", "pwd -P")), 0);
	snprintf(want, sizeof(want), "%s\n", real);
	assert_string_equal(f->r.tail, want);
	/* A program named relative to the folder is found there. */
	snprintf(want, sizeof(want), "%s/hello.sh", sub);
	write_file(want, "#!/bin/sh\necho hello from \"$(basename \"$PWD\")\"\n", 0755);
	assert_int_equal(run(f, NULL, sub, 0, NULL, ARGV("./hello.sh")), 0);
	assert_int_equal(f->r.status, 0);
	assert_string_equal(f->r.tail, "hello from sub\n");
}

static void
test_cannot_start(void **state)
{
	struct fx *f = *state;
	char path[160], nodir[160];

	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("thlhp-no-such-program", "x")), -1);
	assert_string_equal(f->err, "thlhp-no-such-program: not found in PATH");
	snprintf(path, sizeof(path), "%s/no-such", f->root);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV(path)), -1);
	assert_non_null(strstr(f->err, "no-such: not found"));

	snprintf(path, sizeof(path), "%s/notexec", f->root);
	write_file(path, "#!/bin/sh\nexit 0\n", 0644);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV(path)), -1);
	assert_non_null(strstr(f->err, "notexec: Permission denied"));

	/* ENOENT from exec though the file is there: its interpreter. */
	snprintf(path, sizeof(path), "%s/badinterp", f->root);
	write_file(path, "#!/nonexistent/interpreter\n", 0755);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV(path)), -1);
	assert_non_null(strstr(f->err, "badinterp: cannot be run"));
	assert_non_null(strstr(f->err, "interpreter"));

	/* A folder that is not there is named, not the program. */
	snprintf(nodir, sizeof(nodir), "%s/gone", f->root);
	assert_int_equal(run(f, NULL, nodir, 0, NULL, ARGV("true")), -1);
	assert_non_null(strstr(f->err, "true: cannot run it in"));
	assert_non_null(strstr(f->err, "No such file or directory"));

	/* A log folder that is not there. */
	snprintf(f->log, sizeof(f->log), "%s/gone/log", f->root);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("true")), -1);
	assert_non_null(strstr(f->err, "cannot create the log"));
	assert_int_equal(run(f, NULL, NULL, 0, NULL, (char *const[]){ NULL }), -1);
}

static void
test_log_symlink(void **state)
{
	struct fx *f = *state;
	char target[160];
	struct stat sb;

	snprintf(target, sizeof(target), "%s/target", f->root);
	write_file(target, "precious\n", 0644);
	assert_int_equal(symlink(target, f->log), 0);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "echo overwritten")), -1);
	assert_non_null(strstr(f->err, "symbolic link"));
	assert_int_equal(stat(target, &sb), 0);
	assert_int_equal(sb.st_size, 9);
}

static void
test_timeout(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns();

	assert_int_equal(run(f, NULL, NULL, 200 * MS, NULL, ARGV("sleep", "30")), 0);
	assert_true(f->r.timed_out);
	assert_false(f->r.cancelled);
	assert_int_equal(f->r.signal, SIGTERM);
	assert_int_equal(f->r.status, -1);
	assert_true(f->r.elapsed_ns >= 200 * MS);
	assert_true(mono_ns() - t0 < 3 * SEC);
	assert_group_gone(f->r.pgid);
}

static void
test_timeout_group(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns();

	assert_int_equal(run(f, NULL, NULL, 300 * MS, NULL,
	    ARGV("sh", "-c", "sleep 30 & sleep 30 & echo started; wait")), 0);
	assert_true(f->r.timed_out);
	assert_string_equal(f->r.tail, "started\n");
	assert_true(mono_ns() - t0 < 5 * SEC);
	assert_group_gone(f->r.pgid);
}

static void
test_leftovers_killed(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns();

	/* Exits 0 at once, leaving a child behind in its group. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "sleep 30 & exit 0")), 0);
	assert_int_equal(f->r.status, 0);
	assert_false(f->r.timed_out || f->r.cancelled);
	assert_true(mono_ns() - t0 < 5 * SEC);
	assert_group_gone(f->r.pgid);
}

static void *
cancel_later(void *arg)
{
	struct timespec ts = { 0, 100 * MS };

	nanosleep(&ts, NULL);
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void
test_cancel(void **state)
{
	struct fx *f = *state;
	atomic_int cancel = 0;
	int64_t t0 = mono_ns();
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, cancel_later, &cancel), 0);
	assert_int_equal(run(f, NULL, NULL, 0, &cancel, ARGV("sleep", "30")), 0);
	pthread_join(t, NULL);
	assert_true(f->r.cancelled);
	assert_false(f->r.timed_out);
	assert_int_equal(f->r.signal, SIGTERM);
	assert_true(mono_ns() - t0 < 3 * SEC);
	assert_group_gone(f->r.pgid);
	/* Already set: killed at once. */
	assert_int_equal(run(f, NULL, NULL, 0, &cancel, ARGV("sleep", "30")), 0);
	assert_true(f->r.cancelled);
}

static void
test_term_ignored(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns(), took;

	/* The ignored SIGTERM is inherited by sleep too. */
	assert_int_equal(run(f, NULL, NULL, 200 * MS, NULL,
	    ARGV("sh", "-c", "trap '' TERM; sleep 30 & sleep 30; wait")), 0);
	took = mono_ns() - t0;
	assert_true(f->r.timed_out);
	assert_int_equal(f->r.signal, SIGKILL);
	assert_true(took >= 2 * SEC);
	assert_true(took < 8 * SEC);
	assert_group_gone(f->r.pgid);
}

struct job {
	struct fx *f;
	int n, rc;
	struct spawn_result r;
	char log[160], err[256];
};

static void *
run_job(void *arg)
{
	struct job *j = arg;
	char n[16];
	struct spawn_opts o = { .argv = ARGV("sh", "-c", "sleep 0.$1; echo job $1; exit $1",
		"sh", n), .log = j->log, .timeout_ns = 20 * SEC };

	snprintf(n, sizeof(n), "%d", j->n);
	j->rc = spawn_run(&o, &j->r, j->err, sizeof(j->err));
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx *f = *state;
	struct job j[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].f = f;
		j[i].n = i + 1;
		snprintf(j[i].log, sizeof(j[i].log), "%s/log%d", f->root, i);
		assert_int_equal(pthread_create(&t[i], NULL, run_job, &j[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		char want[32];

		pthread_join(t[i], NULL);
		assert_int_equal(j[i].rc, 0);
		assert_int_equal(j[i].r.status, i + 1);
		snprintf(want, sizeof(want), "job %d\n", i + 1);
		assert_string_equal(j[i].r.tail, want);
		assert_group_gone(j[i].r.pgid);
	}
}

/* Start sleep 30 (not through spawn_run) with THLHP_SPAWN=tag. */
static pid_t
start_tagged(const char *tag)
{
	char env[128];
	pid_t pid;

	snprintf(env, sizeof(env), "THLHP_SPAWN=%s", tag);
	assert_int_equal(posix_spawnp(&pid, "sleep", NULL, NULL, ARGV("sleep", "30"),
	    ARGV(env, "PATH=/usr/bin:/bin")), 0);
	return pid;
}

/* Did pid end by SIGKILL within 5 s (1), or still run (0)? */
static int
killed_soon(pid_t pid)
{
	int st;

	for (int i = 0; i < 500; i++) {
		struct timespec ts = { 0, 10 * MS };

		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void
test_reap_orphans(void **state)
{
	char ours[64], wrong[64];
	pid_t dead, reused, alive;
	int st;

	(void)state;
	snprintf(ours, sizeof(ours), "%ld:%llu", (long)getpid(), my_start());
	snprintf(wrong, sizeof(wrong), "%ld:%llu", (long)getpid(), my_start() + 1);
	dead = start_tagged("999999:1");      /* its thlhp-make is gone */
	reused = start_tagged(wrong);         /* our PID, another start: not us */
	alive = start_tagged(ours);           /* ours: running */
	/* posix_spawnp returns once exec is done: environ is sleep's now. */
	assert_true(spawn_reap_orphans() >= 2);
	assert_true(killed_soon(dead));
	assert_true(killed_soon(reused));
	assert_int_equal(waitpid(alive, &st, WNOHANG), 0);
	assert_int_equal(kill(alive, SIGKILL), 0);
	assert_int_equal(waitpid(alive, &st, 0), alive);
}

static void *
kill_all_later(void *arg)
{
	struct timespec ts = { 0, 300 * MS };

	(void)arg;
	nanosleep(&ts, NULL);
	spawn_kill_all();
	return NULL;
}

/* Last: spawn_kill_all is for the end of a run, and stays in force. */
static void
test_kill_all(void **state)
{
	struct fx *f = *state;
	int64_t t0 = mono_ns();
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, kill_all_later, NULL), 0);
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sh", "-c", "sleep 30 & sleep 30")), 0);
	pthread_join(t, NULL);
	assert_int_equal(f->r.signal, SIGKILL);
	assert_true(mono_ns() - t0 < 5 * SEC);
	assert_group_gone(f->r.pgid);
	/* Started after it: killed at once. */
	assert_int_equal(run(f, NULL, NULL, 0, NULL, ARGV("sleep", "30")), 0);
	assert_int_equal(f->r.signal, SIGKILL);
	assert_true(f->r.cancelled);
	assert_true(mono_ns() - t0 < 10 * SEC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_and_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cannot_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_term_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test(test_reap_orphans),
		cmocka_unit_test_setup_teardown(test_kill_all, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
