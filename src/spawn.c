/* spawn.c - run a [rule NAME] program: posix_spawnp into a process group
 * of its own, waited for by its PID alone (other threads spawn too: no
 * SIGCHLD handler, no wait(-1)), and its whole group killed and gone
 * before spawn_run returns.  Each program carries THLHP_SPAWN=<pid>:<start>
 * so that what a thlhp-make killed with -9 left behind can be found. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "spawn.h"
#include "util.h"

extern char **environ;

#define MS ((int64_t)1000000)
#define KILL_GRACE (2000 * MS)   /* from SIGTERM to SIGKILL */
#define GONE_WAIT (5000 * MS)    /* for SIGKILLed members to go */
#define NAP_MAX (50 * MS)        /* how late a cancel is seen, at worst */

enum {
	SPAWN_MAX = 1024,         /* groups running at once: -j's limit */
	TAIL_LINES = 20,          /* lines of the log in spawn_result.tail */
};

/* The running groups for spawn_kill_all, which may run in a signal
 * handler: no lock there, only atomic loads.  0 is a free slot, -1 one
 * taken by a spawn_run that has not started its program yet; a slot is
 * taken with compare-and-swap, so no lock is needed here either. */
static atomic_int running[SPAWN_MAX];
static atomic_int stopping;   /* spawn_kill_all has run */

static char tag[64];          /* "THLHP_SPAWN=<pid>:<start>" */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Field 22 of /proc/<pid>/stat: the start time, in clock ticks since
 * boot, which with the PID names one process for good; 0 when there is
 * no such process.  Field 2 is "(comm)", which may hold spaces and
 * parentheses: count from the last ')'. */
static unsigned long long
spawn_start(pid_t pid)
{
	char path[64], buf[1024], *p, *save, *tok;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')))
		return 0;
	tok = strtok_r(p + 1, " ", &save);   /* field 3: the state */
	/* Dead but not yet reaped (by an init that takes its time) is dead. */
	if (tok && (*tok == 'Z' || *tok == 'X'))
		return 0;
	for (int f = 3; tok && f < 22; f++)
		tok = strtok_r(NULL, " ", &save);
	return tok ? strtoull(tok, NULL, 10) : 0;
}

static void
spawn_init(void)
{
	snprintf(tag, sizeof(tag), "THLHP_SPAWN=%ld:%llu", (long)getpid(), spawn_start(getpid()));
#ifdef PR_SET_CHILD_SUBREAPER
	/* What is left of a group when its leader has died comes to us, not
	 * to init, and spawn_wait reaps it at once: init may take seconds (2
	 * here), or never (a shell as PID 1 in a container). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
}

/* Does environment entry e set the variable that s ("NAME=value") sets? */
static int
spawn_same_name(const char *e, const char *s)
{
	size_t n = strcspn(s, "=");

	return strncmp(e, s, n) == 0 && e[n] == '=';
}

/* environ with add's entries in place of those of their names, and our
 * tag in place of any THLHP_SPAWN (ours may come from a thlhp-make that
 * started us).  malloc'd; the strings are not copied. */
static char **
spawn_env(char *const *add)
{
	size_t n = 0, m = 0, k = 0;
	char **v;

	while (environ && environ[n])
		n++;
	while (add && add[m])
		m++;
	v = xreallocarray(NULL, n + m + 2, sizeof(*v));
	for (size_t i = 0; i < n + m; i++) {
		char *s = i < n ? environ[i] : add[i - n];
		int replaced = spawn_same_name(s, tag);

		/* By any entry of add, or by a later one of add itself. */
		for (size_t j = i < n ? 0 : i - n + 1; !replaced && j < m; j++)
			replaced = spawn_same_name(s, add[j]);
		if (!replaced)
			v[k++] = s;
	}
	v[k++] = tag;
	v[k] = NULL;
	return v;
}

/* Take a free slot of running[], or -1. */
static int
spawn_slot(void)
{
	for (int i = 0; i < SPAWN_MAX; i++) {
		int free_slot = 0;

		if (atomic_compare_exchange_strong(&running[i], &free_slot, -1))
			return i;
	}
	return -1;
}

/* Is there a file prog where posix_spawnp looked for it: in our PATH, or
 * prog itself (in dir) when it has a '/'?  For the message only: ENOENT
 * is also what a program whose #! interpreter is missing gives. */
static int
spawn_found(const char *prog, const char *dir)
{
	int slash = strchr(prog, '/') != NULL, found;
	const char *p = slash ? (prog[0] == '/' ? "" : dir ? dir : ".") : getenv("PATH"), *end;

	for (p = p ? p : "/bin:/usr/bin";; p = end + 1) {   /* glibc's default PATH */
		char *f;

		end = slash ? p + strlen(p) : strchrnul(p, ':');
		f = xasprintf("%.*s%s%s", (int)(end - p), p, end > p ? "/" : "", prog);
		found = access(f, F_OK) == 0;
		free(f);
		if (found || !*end)
			return found;
	}
}

/* Why posix_spawnp said e, into err: a chdir or an exec that failed give
 * the same errno, so look at the folder first. */
static void
spawn_why(const struct spawn_opts *o, int e, char *err, size_t errlen)
{
	const char *prog = o->argv[0];
	struct stat sb;
	int de = 0;

	if (o->dir)
		de = stat(o->dir, &sb) < 0 ? errno : !S_ISDIR(sb.st_mode) ? ENOTDIR :
		    access(o->dir, X_OK) < 0 ? errno : 0;
	if (de)
		errf(err, errlen, "%s: cannot run it in %s: %s", prog, o->dir, strerror(de));
	else if (e == ENOENT && spawn_found(prog, o->dir))
		errf(err, errlen, "%s: cannot be run: %s (is its #! interpreter missing?)", prog,
		    strerror(e));
	else if (e == ENOENT)
		errf(err, errlen, strchr(prog, '/') ? "%s: not found" : "%s: not found in PATH", prog);
	else
		errf(err, errlen, "%s: %s", prog, strerror(e));
}

/* Has pid ended?  Not reaped: while it is a zombie its PID, which names
 * the group, cannot be another process's, so kill(-pid) hits no stranger. */
static int
spawn_ended(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno != EINTR;   /* ECHILD: nothing left to wait for */
	return si.si_pid == pid;
}

/* Wait up to ns for pidfd to turn readable (its process has ended), or
 * sleep without one. */
static void
spawn_nap(int pidfd, int64_t ns)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	struct timespec ts = { 0, (long)ns };

	if (pidfd >= 0)
		poll(&pfd, 1, (int)((ns + MS - 1) / MS));
	else
		nanosleep(&ts, NULL);
}

/* Wait for pid, the leader of its group, killing the group on timeout or
 * cancel; then kill what is left of the group, reap pid, and wait for the
 * group to be gone. */
static void
spawn_wait(const struct spawn_opts *o, pid_t pid, int64_t t0, struct spawn_result *r)
{
	int64_t nap, term_at = 0, now, left;
	int pidfd = -1, st, killed = 0;

#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);   /* Linux 5.3; else look every nap */
#endif
	nap = pidfd >= 0 ? NAP_MAX : 10 * MS;
	while (!spawn_ended(pid)) {
		now = mono_ns();
		if (!term_at) {
			if (o->cancel && atomic_load(o->cancel))
				r->cancelled = 1;
			else if (o->timeout_ns > 0 && now - t0 >= o->timeout_ns)
				r->timed_out = 1;
			if (r->cancelled || r->timed_out) {
				kill(-pid, SIGTERM);
				kill(-pid, SIGCONT);   /* a stopped process cannot act on SIGTERM */
				term_at = now;
			}
		} else if (!killed && now - term_at >= KILL_GRACE) {
			kill(-pid, SIGKILL);
			killed = 1;
		}
		left = term_at ? (killed ? nap : term_at + KILL_GRACE - now) :
		    o->timeout_ns > 0 ? t0 + o->timeout_ns - now : nap;
		spawn_nap(pidfd, left > 0 && left < nap ? left : nap);
		if (nap < NAP_MAX)
			nap += 5 * MS;   /* a quick program is seen soon, a slow one costs little */
	}
	r->elapsed_ns = mono_ns() - t0;
	if (pidfd >= 0)
		close(pidfd);
	/* What is left of the group (a background child, one slow to obey
	 * SIGTERM) ends with its leader, which still holds the group's PID. */
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			goto gone;
	if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		r->signal = WTERMSIG(st);
gone:
	/* The killed go at once unless stuck in the kernel (D state).  Their
	 * parent is now us (spawn_init): reap them, only of this group, so
	 * no other thread's child. */
	for (int64_t end = mono_ns() + GONE_WAIT; kill(-pid, 0) == 0 && mono_ns() < end;) {
		while (waitpid(-pid, NULL, WNOHANG) > 0)
			;
		spawn_nap(-1, MS);
	}
}

/* The last TAIL_LINES lines of the log, at most size - 1 bytes of its
 * end (starting at a line's start when there is one to start at),
 * control bytes but '\n' as '?'. */
static void
spawn_tail(int fd, char *tail, size_t size)
{
	struct stat sb;
	off_t off = 0;
	ssize_t n;
	size_t len, start = 0;
	int lines = 0;
	char *nl;

	tail[0] = '\0';
	if (fstat(fd, &sb) < 0)
		return;
	if (sb.st_size > (off_t)size - 1)
		off = sb.st_size - (off_t)(size - 1);
	if ((n = pread(fd, tail, size - 1, off)) <= 0)
		return;
	len = (size_t)n;
	tail[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)tail[i] < 0x20 && tail[i] != '\n') || tail[i] == 0x7f)
			tail[i] = '?';
	/* The TAIL_LINES-th '\n' from the end, not counting a last one. */
	for (size_t i = len - 1; i-- > 0;)
		if (tail[i] == '\n' && ++lines == TAIL_LINES) {
			start = i + 1;
			break;
		}
	if (lines < TAIL_LINES && off > 0 && (nl = strchr(tail, '\n')) && nl < tail + len - 1)
		start = (size_t)(nl - tail) + 1;   /* not the end of a line cut short */
	memmove(tail, tail + start, len - start + 1);
}

int
spawn_run(const struct spawn_opts *o, struct spawn_result *r, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t none, all;
	struct stat sb;
	char **env = NULL;
	int fd = -1, slot = -1, rc = -1, e;
	int64_t t0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	pthread_once(&init_once, spawn_init);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&sa);
	if (!o->argv || !o->argv[0]) {
		errf(err, errlen, "no program to run");
		goto out;
	}
	/* O_RDWR, not O_WRONLY: the tail is read through this descriptor, not
	 * by a name the program may have replaced; and a FIFO there does not
	 * make the open wait for a reader. */
	fd = open(o->log, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP && lstat(o->log, &sb) == 0 && S_ISLNK(sb.st_mode))
			errf(err, errlen, "%s: a symbolic link; a log is not written through one",
			    o->log);
		else
			errf(err, errlen, "%s: cannot create the log: %s", o->log, strerror(e));
		goto out;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		errf(err, errlen, "%s: not a regular file, cannot be a log", o->log);
		goto out;
	}
	if ((slot = spawn_slot()) < 0) {
		errf(err, errlen, "%s: more than %d programs running at once", o->argv[0], SPAWN_MAX);
		goto out;
	}
	/* A group of its own, so that one kill(-pgid) reaches all it starts;
	 * every signal as a new program expects it (ignored ones stay ignored
	 * across exec: SIGPIPE would), none blocked. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&sa, 0);
	posix_spawnattr_setsigmask(&sa, &none);
	posix_spawnattr_setsigdefault(&sa, &all);
	/* dup2 before the open of 0: the log may be fd 0 if ours was closed. */
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
	/* What another thread opened without O_CLOEXEC stays ours. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	if (o->dir)
		posix_spawn_file_actions_addchdir_np(&fa, o->dir);
	env = spawn_env(o->env);
	t0 = mono_ns();
	if ((e = posix_spawnp(&pid, o->argv[0], &fa, &sa, o->argv, env)) != 0) {
		spawn_why(o, e, err, errlen);
		goto out;
	}
	atomic_store(&running[slot], pid);
	/* spawn_kill_all ran before the store: it could not see this one. */
	if (atomic_load(&stopping)) {
		kill(-pid, SIGKILL);
		r->cancelled = 1;
	}
	r->pgid = pid;
	spawn_wait(o, pid, t0, r);
	spawn_tail(fd, r->tail, sizeof(r->tail));
	rc = 0;
out:
	if (slot >= 0)
		atomic_store(&running[slot], 0);
	if (fd >= 0)
		close(fd);
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	return rc;
}

void
spawn_kill_all(void)
{
	atomic_store(&stopping, 1);
	for (int i = 0; i < SPAWN_MAX; i++) {
		int pgid = atomic_load(&running[i]);

		if (pgid > 0)
			kill(-pgid, SIGKILL);
	}
}

/* The THLHP_SPAWN of process pid (in the environment it started with):
 * 1 with its pid and start, or 0. */
static int
spawn_tag_of(long pid, long *tpid, unsigned long long *tstart)
{
	char path[64], *e = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
	if (!(fp = fopen(path, "re")))
		return 0;
	while (!found && getdelim(&e, &cap, '\0', fp) > 0)
		if (strncmp(e, "THLHP_SPAWN=", 12) == 0)
			found = sscanf(e + 12, "%ld:%llu", tpid, tstart) == 2;
	free(e);
	fclose(fp);
	return found;
}

int
spawn_reap_orphans(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	pthread_once(&init_once, spawn_init);
	/* One pass: /proc lists PIDs in increasing order, so a child an
	 * orphan forks before it is killed is still ahead (but after a PID
	 * wrap-around; the next run finds it). */
	while (d && (de = readdir(d))) {
		unsigned long long tstart;
		struct stat sb;
		long pid, tpid;
		char path[64];

		if (parse_int(de->d_name, 1, INT_MAX, &pid) < 0 || pid == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld", pid);
		if (stat(path, &sb) < 0 || sb.st_uid != getuid() || !spawn_tag_of(pid, &tpid, &tstart))
			continue;
		/* Its thlhp-make (maybe us) still runs: the same PID, started then. */
		if (tpid > 0 && tpid <= INT_MAX && spawn_start((pid_t)tpid) == tstart)
			continue;
		n += kill((pid_t)pid, SIGKILL) == 0;
	}
	if (d)
		closedir(d);
	return n;
}
