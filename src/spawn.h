/*
 * spawn.h - run one program for a [rule NAME] job: posix_spawn (no shell,
 * no system()), in its own process group, stdin from /dev/null, stdout
 * and stderr into one log file, with a timeout and a cancel flag; the
 * whole group is killed on timeout, on cancel and when it is abandoned.
 * Safe to call from many worker threads at once.
 */
#ifndef THLHP_SPAWN_H
#define THLHP_SPAWN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spawn_opts {
	char *const *argv;        /* argv[0] is looked up in PATH as execvp does
	                           * (our PATH, not one in env); one with a
	                           * '/' is taken from dir */
	char *const *env;         /* "NAME=value" added to (or replacing in) the
	                           * environment; NULL-terminated, or NULL */
	const char *dir;          /* working directory; NULL: ours */
	const char *log;          /* stdout and stderr go here: created (O_NOFOLLOW,
	                           * mode 0600, truncated), its folder must exist */
	int64_t timeout_ns;       /* killed past it; 0: no limit */
	atomic_int *cancel;       /* non-zero: kill it now (Ctrl-C); may be NULL */
};

struct spawn_result {
	int status;               /* exit status when it exited, else -1; may
	                           * be 0 with timed_out or cancelled set (it
	                           * caught our SIGTERM): a failure still */
	int signal;               /* the signal that ended it, else 0 */
	int timed_out;            /* we killed it: the timeout */
	int cancelled;            /* we killed it: cancel */
	int64_t elapsed_ns;       /* from the start to the end of its first process */
	pid_t pgid;               /* the process group it ran in (its first
	                           * process's PID), 0 if none started; gone
	                           * when spawn_run returns, for the tests */
	char tail[2048];          /* the last lines of the log (up to 20), one
	                           * line per \n, control bytes shown as '?' */
};

/* Run o->argv and wait for it.  0 when it ran (whatever its status: look
 * at r), -1 with err when it could not be started ("dcm2niix: not found
 * in PATH", "...: Permission denied", a log that cannot be created; the
 * caller puts the rule's name first: "nifti: dcm2niix: ...").
 * On timeout or cancel the process group gets SIGTERM (and SIGCONT, for
 * a stopped one), then SIGKILL 2 s later if any of it is left, and is
 * reaped before return.  Whatever of the group is left when its first
 * process has exited (a background child, one slower to obey SIGTERM) is
 * killed with SIGKILL at once, also after a normal exit: no process of
 * the group outlives the call (one that left the group, with setsid, is
 * not ours to kill).  The first spawn_run or spawn_reap_orphans makes
 * this process a child subreaper (prctl), so that the killed are reaped
 * at once, not when init gets to it; a daemon that left the group is then
 * reparented to this process when its own parent ends, and is a zombie of
 * ours from its end to ours. */
int spawn_run(const struct spawn_opts *o, struct spawn_result *r, char *err, size_t errlen);

/* Kill (SIGKILL) every process group a spawn_run of this process has
 * running: for fatal exits and signal handlers (async-signal-safe).  A
 * spawn_run that starts its program after it kills it at once. */
void spawn_kill_all(void);

/* Every program spawn_run starts has THLHP_SPAWN=<pid>:<start> in its
 * environment: this process's PID and its start time (field 22 of
 * /proc/<pid>/stat), which its own children inherit.  Kill (SIGKILL)
 * every process of ours (same uid) whose THLHP_SPAWN names a process
 * that is no longer running (or a PID now of another start time): what
 * a thlhp-make killed with -9 left behind.  Returns how many were
 * killed; called when a run starts. */
int spawn_reap_orphans(void);

#endif
