/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's launcher: socket activation and supervision of the services
 * when systemd does not do it. See launcher.h for what it promises.
 *
 * Children are watched through pidfds polled by the event loop rather than
 * sd_event_add_child(): that one needs SIGCHLD blocked in every thread of
 * santad before any thread starts, a promise this module cannot keep for
 * the fanotify and hashing threads; a pidfd needs no signal at all, and
 * cannot name a reused pid when we signal it.
 */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "ipc.h"
#include "log.h"
#include "santa-build.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

#define LAUNCHER_RESTART_USEC (250 * USEC_PER_MSEC)
#define LAUNCHER_RESTART_MAX_USEC (30 * USEC_PER_SEC)
#define LAUNCHER_STOP_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* A service that ran this long before it died is not crash-looping: its
 * next restart is quick again. */
#define LAUNCHER_STABLE_USEC (10 * USEC_PER_SEC)
/* EX_CONFIG: the service cannot work with its configuration. Starting it
 * again would only fail again; it stays down, as RestartPreventExitStatus
 * keeps it down in the units. */
#define LAUNCHER_EXIT_CONFIG 78
/* A clean exit of an on-demand service after this long is going idle. */
#define LAUNCHER_IDLE_EXIT_USEC (1 * USEC_PER_SEC)
/* What we wait for a SIGKILLed child to be gone before giving up on it. */
#define LAUNCHER_KILL_WAIT_USEC (2 * USEC_PER_SEC)

/* Where the socket units in dist/ listen. */
#define LAUNCHER_SYSTEMD_RUN_DIR "/run/santa"

/* The only environment a service gets, besides LISTEN_*. */
#define LAUNCHER_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Exit statuses of a child that failed before exec, one per step, so that
 * the parent's log line says which step failed (as systemd's 2xx do). */
enum {
	LAUNCHER_EXIT_SIGNALS = 230,
	LAUNCHER_EXIT_SESSION,
	LAUNCHER_EXIT_FDS,
	LAUNCHER_EXIT_USER,
	LAUNCHER_EXIT_PDEATHSIG,
	LAUNCHER_EXIT_PARENT_GONE,
	LAUNCHER_EXIT_NO_NEW_PRIVS,
	LAUNCHER_EXIT_EXEC,
};

static const char *const launcher_exit_steps[] = {
	"resetting signals", "starting a session", "setting up descriptors",
	"dropping to its user", "setting the parent-death signal",
	"finding santad gone", "setting no_new_privs", "executing",
};

typedef struct launcher_def {
	const char *name;
	/* Who may open the socket file. The IPC layer authenticates every
	 * peer, so this is defense in depth: santactl users reach the sync
	 * service, GUI users the bundle service, only root the metrics. */
	mode_t socket_mode;
	bool as_root;          /* runs as root, not ServiceUser */
	bool on_demand;        /* started on the first connection */
	bool needs_sync_url;   /* exists only when SyncBaseURL is set */
} launcher_def;

static const launcher_def launcher_defs[LAUNCHER_SERVICE_MAX] = {
	[LAUNCHER_SYNC] = { "santasyncservice", 0666, false, true, true },
	[LAUNCHER_METRIC] = { "santametricservice", 0600, false, false, false },
	[LAUNCHER_BUNDLE] = { "santabundleservice", 0666, true, true, false },
};

typedef enum launcher_state {
	LAUNCHER_STATE_UNCONFIGURED = 0,
	LAUNCHER_STATE_MISSING,
	LAUNCHER_STATE_WAITING,
	LAUNCHER_STATE_RUNNING,
	LAUNCHER_STATE_BACKOFF,
	LAUNCHER_STATE_SYSTEMD,
	LAUNCHER_STATE_CONFIG_ERROR,
} launcher_state;

static const char *const launcher_state_names[] = {
	[LAUNCHER_STATE_UNCONFIGURED] = "not configured",
	[LAUNCHER_STATE_MISSING] = "not installed",
	[LAUNCHER_STATE_WAITING] = "waiting for a connection",
	[LAUNCHER_STATE_RUNNING] = "running",
	[LAUNCHER_STATE_BACKOFF] = "restarting",
	[LAUNCHER_STATE_SYSTEMD] = "managed by systemd",
	[LAUNCHER_STATE_CONFIG_ERROR] = "stopped: configuration error",
};

typedef struct launcher_svc {
	launcher *l;
	const launcher_def *def;
	launcher_state state;
	char *path;               /* the socket */
	char *exe;                /* the executable, when found */
	int listen_fd;
	dev_t sock_dev;           /* the socket file we made, to remove */
	ino_t sock_ino;           /*   only that one at the end */
	pid_t pid;
	int pidfd;
	uint64_t started_usec;
	unsigned quick_deaths;
	sd_event_source *listen_src;
	sd_event_source *child_src;
	sd_event_source *timer_src;
} launcher_svc;

struct launcher {
	sd_event *ev;
	const santa_config *cfg;
	launcher_mode mode;
	uid_t uid;                /* ServiceUser */
	gid_t gid;
	uint64_t restart_usec;
	uint64_t restart_max_usec;
	uint64_t stop_timeout_usec;
	launcher_svc svc[LAUNCHER_SERVICE_MAX];
};

static int launcher_spawn(launcher_svc *s);

/* --- Small helpers --- */

static uint64_t launcher_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static char *launcher_join(const char *dir, const char *name, const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
		     name, suffix) < 0)
		return NULL;
	return p;
}

static const char *launcher_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

const char *launcher_service_name(launcher_service svc)
{
	return svc < LAUNCHER_SERVICE_MAX ? launcher_defs[svc].name : "unknown";
}

/* --- Mode --- */

launcher_mode launcher_mode_detect(void)
{
	const char *e = getenv("SANTA_SERVICE_LAUNCHER");

	if (e && strcmp(e, "systemd") == 0)
		return LAUNCHER_MODE_SYSTEMD;
	if (e && strcmp(e, "santad") == 0)
		return LAUNCHER_MODE_SANTAD;
	/* Run by hand on a systemd machine, santad launches its own: the
	 * units' sockets are for the santad that systemd runs. */
	if (sd_booted() > 0 && getenv("INVOCATION_ID"))
		return LAUNCHER_MODE_SYSTEMD;
	return LAUNCHER_MODE_SANTAD;
}

/* --- Finding what to run, as whom --- */

/* The executable must be what the IPC layer would trust: a regular file
 * owned by root that nobody else may rewrite, in directories nobody else
 * may rewrite (or they could swap the file), since the bundle service runs
 * it as root. */
static int launcher_check_exe(const char *path)
{
	char why[PATH_MAX + 64];
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
		return -EACCES;
	if (ipc_path_is_root_held(path, why, sizeof(why)) < 0) {
		log_debug("Refusing to run \"%s\": %s", path, why);
		return -EPERM;
	}
	return 0;
}

/* TrustedExecutables first (how tests and a build tree are run), then the
 * install directory. */
static int launcher_find_exe(const launcher *l, const char *name,
			     const char *libexec_dir, char **ret)
{
	char *const *te = l->cfg->trusted_executables;

	for (size_t i = 0; te && te[i]; i++) {
		size_t len = strlen(te[i]);
		char *p = NULL;

		if (len > 0 && te[i][len - 1] == '/')
			p = launcher_join(te[i], name, "");
		else if (strcmp(launcher_basename(te[i]), name) == 0)
			p = strdup(te[i]);
		else
			continue;
		if (!p)
			return -ENOMEM;
		if (access(p, F_OK) == 0) {
			*ret = p;
			return 0;
		}
		free(p);
	}
	*ret = launcher_join(libexec_dir, name, "");
	return *ret ? 0 : -ENOMEM;
}

static int launcher_resolve_user(launcher *l)
{
	const char *user = l->cfg->service_user ? l->cfg->service_user : "nobody";
	char where[PATH_MAX + 32];
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	santa_config_where(l->cfg, "ServiceUser", where, sizeof(where));
	if (!pw) {
		return log_error_errno(errno ? -errno : -ENOENT,
				       "%sLooking up ServiceUser \"%s\" failed", where, user);
	}
	/* The point of the user is not being root: refuse rather than run the
	 * network-facing services with every privilege. */
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("%sServiceUser \"%s\" is root or in group root; the sync and "
			  "metric services must run unprivileged", where, user);
		return -EPERM;
	}
	l->uid = pw->pw_uid;
	l->gid = pw->pw_gid;
	return 0;
}

/* --- Sockets --- */

/*
 * Bind under a temporary name, set owner and mode, listen, then rename into
 * place: the socket appears at PATH only once it has its final mode (a
 * chmod after bind would leave a moment where anyone may connect), and a
 * stale socket from an earlier run is replaced in one step.
 */
static int launcher_listen(launcher_svc *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char tmp[sizeof(sa.sun_path)];
	struct stat st;
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", s->path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chown(tmp, 0, 0) < 0 || chmod(tmp, s->def->socket_mode) < 0 ||
	    listen(fd, SOMAXCONN) < 0 || rename(tmp, s->path) < 0 ||
	    stat(s->path, &st) < 0) {
		r = -errno;
		(void)unlink(tmp);
		close(fd);
		return r;
	}
	s->sock_dev = st.st_dev;
	s->sock_ino = st.st_ino;
	s->listen_fd = fd;
	return 0;
}

static void launcher_unlink_socket(launcher_svc *s)
{
	struct stat st;

	/* Only if it is still the one we made, not a newer santad's. */
	if (s->sock_ino && stat(s->path, &st) == 0 && st.st_dev == s->sock_dev &&
	    st.st_ino == s->sock_ino)
		(void)unlink(s->path);
}

/* --- The child, between fork and exec: async-signal-safe calls only, as
 * santad has other threads whose locks the child inherits held. --- */

typedef struct launcher_child_args {
	const char *exe;
	char *const *argv;
	char **envp;
	char *listen_pid_env;   /* "LISTEN_PID=" + room for the pid */
	int listen_fd;
	bool drop;
	uid_t uid;
	gid_t gid;
	pid_t parent;
} launcher_child_args;

static void launcher_format_pid(char *dst, pid_t pid)
{
	char digits[16];
	int n = 0;

	do {
		digits[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0 && n < (int)sizeof(digits));
	while (n > 0)
		*dst++ = digits[--n];
	*dst = '\0';
}

static bool launcher_child_signals(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	/* sd-event blocks the signals it handles; a mask and ignored signals
	 * survive exec, and the service must start with neither. */
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL) == 0;
}

static bool launcher_child_fds(int listen_fd)
{
	int nul;

	if (listen_fd == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			return false;
	} else if (dup2(listen_fd, 3) != 3) {
		return false;
	}
	/* Not O_CLOEXEC: it may land on descriptor 0 itself. */
	nul = open("/dev/null", O_RDWR);
	if (nul < 0 || dup2(nul, STDIN_FILENO) != STDIN_FILENO)
		return false;
	/* stdout and stderr stay: they are santad's log, or the journal. */
	return close_range(4, ~0U, 0) == 0;
}

static bool launcher_child_user(bool drop, uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!drop)
		return setgroups(0, NULL) == 0;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return false;
	/* Verify, rather than trust, that root is gone for good. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid || getgroups(0, NULL) != 0)
		return false;
	return setresuid(0, 0, 0) < 0 && setegid(0) < 0;
}

static _Noreturn void launcher_child_fail(const char *exe, int status)
{
	static const char prefix[] = "launcher: child failed before executing ";

	(void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
	(void)!write(STDERR_FILENO, exe, strlen(exe));
	(void)!write(STDERR_FILENO, "\n", 1);
	_exit(status);
}

static _Noreturn void launcher_child(const launcher_child_args *a)
{
	if (!launcher_child_signals())
		launcher_child_fail(a->exe, LAUNCHER_EXIT_SIGNALS);
	/* Its own session: santad's terminal's ^C is santad's to handle. */
	if (setsid() < 0)
		launcher_child_fail(a->exe, LAUNCHER_EXIT_SESSION);
	if (!launcher_child_fds(a->listen_fd))
		launcher_child_fail(a->exe, LAUNCHER_EXIT_FDS);
	if (!launcher_child_user(a->drop, a->uid, a->gid))
		launcher_child_fail(a->exe, LAUNCHER_EXIT_USER);
	/* After the user change: changing credentials clears the signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		launcher_child_fail(a->exe, LAUNCHER_EXIT_PDEATHSIG);
	/* santad may have died before the signal was armed. */
	if (getppid() != a->parent)
		launcher_child_fail(a->exe, LAUNCHER_EXIT_PARENT_GONE);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		launcher_child_fail(a->exe, LAUNCHER_EXIT_NO_NEW_PRIVS);
	umask(022);
	if (chdir("/") < 0)
		launcher_child_fail(a->exe, LAUNCHER_EXIT_FDS);

	launcher_format_pid(a->listen_pid_env + strlen("LISTEN_PID="), getpid());
	execve(a->exe, a->argv, a->envp);
	launcher_child_fail(a->exe, LAUNCHER_EXIT_EXEC);
}

/* --- Supervision --- */

static void launcher_log_exit(const launcher_svc *s, const siginfo_t *si)
{
	const char *name = s->def->name;
	int st = si->si_status;

	if (si->si_code == CLD_EXITED && st >= LAUNCHER_EXIT_SIGNALS &&
	    st <= LAUNCHER_EXIT_EXEC) {
		log_error("Starting %s (pid %d) failed while %s", name, (int)s->pid,
			  launcher_exit_steps[st - LAUNCHER_EXIT_SIGNALS]);
	} else if (si->si_code == CLD_EXITED) {
		log_msg(st == 0 ? SANTA_LOG_INFO : SANTA_LOG_WARNING,
			"%s (pid %d) exited with status %d", name, (int)s->pid, st);
	} else {
		log_warning("%s (pid %d) was killed by signal %s", name, (int)s->pid,
			    sigabbrev_np(st) ? sigabbrev_np(st) : "?");
	}
}

static int launcher_on_restart_timer(sd_event_source *src, uint64_t usec,
				     void *userdata)
{
	launcher_svc *s = userdata;
	int r;

	s->timer_src = sd_event_source_unref(s->timer_src);
	if (s->def->on_demand) {
		/* Pending connections start it again at once. */
		s->state = LAUNCHER_STATE_WAITING;
		r = sd_event_source_set_enabled(s->listen_src, SD_EVENT_ON);
		if (r < 0)
			log_error_errno(r, "Watching the socket of %s failed", s->def->name);
		return 0;
	}
	r = launcher_spawn(s);
	if (r < 0)
		log_error_errno(r, "Restarting %s failed", s->def->name);
	return 0;
}

static uint64_t launcher_backoff(launcher_svc *s, bool clean_exit)
{
	launcher *l = s->l;
	uint64_t delay = l->restart_usec;
	uint64_t ran = launcher_now() - s->started_usec;

	if (ran >= LAUNCHER_STABLE_USEC)
		s->quick_deaths = 0;
	/* An on-demand service that did its work and exited cleanly is simply
	 * idle again: the next connection starts it without delay. One that
	 * exits at once is not working, clean or not. */
	if (clean_exit && s->def->on_demand && ran >= LAUNCHER_IDLE_EXIT_USEC) {
		s->quick_deaths = 0;
		return 0;
	}
	for (unsigned i = 0; i < s->quick_deaths && delay < l->restart_max_usec; i++)
		delay *= 2;
	if (delay > l->restart_max_usec)
		delay = l->restart_max_usec;
	s->quick_deaths++;
	return delay;
}

/* The child is gone (already reaped when SI is NULL): plan the restart. */
static void launcher_child_gone(launcher_svc *s, const siginfo_t *si)
{
	bool clean = si && si->si_code == CLD_EXITED && si->si_status == 0;
	uint64_t delay;
	int r;

	s->child_src = sd_event_source_disable_unref(s->child_src);
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->pidfd = -1;
	s->pid = 0;

	delay = launcher_backoff(s, clean);
	s->state = LAUNCHER_STATE_BACKOFF;
	r = sd_event_add_time_relative(s->l->ev, &s->timer_src, CLOCK_MONOTONIC,
				       delay, 10 * USEC_PER_MSEC,
				       launcher_on_restart_timer, s);
	if (r < 0) {
		log_error_errno(r, "Scheduling the restart of %s failed; it stays down",
				s->def->name);
		return;
	}
	if (delay > 0)
		log_info("Restarting %s in %llu ms", s->def->name,
			 (unsigned long long)(delay / USEC_PER_MSEC));
}

/* The child exited with EX_CONFIG: leave it down until santad restarts,
 * and say so once. Its socket goes too, so that a client (santad's own
 * link, santactl) is told at once that nobody is there instead of waiting
 * in a backlog nobody will accept from. */
static void launcher_config_failed(launcher_svc *s)
{
	log_error("%s (pid %d) exited with status %d (EX_CONFIG): it cannot use the "
		  "configuration (its own log lines above say why); not restarting it "
		  "until santad restarts", s->def->name, (int)s->pid, LAUNCHER_EXIT_CONFIG);
	s->child_src = sd_event_source_disable_unref(s->child_src);
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->pidfd = -1;
	s->pid = 0;
	s->listen_src = sd_event_source_disable_unref(s->listen_src);
	if (s->listen_fd >= 0) {
		launcher_unlink_socket(s);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	s->state = LAUNCHER_STATE_CONFIG_ERROR;
}

static int launcher_on_child(sd_event_source *src, int fd, uint32_t revents,
			     void *userdata)
{
	launcher_svc *s = userdata;
	siginfo_t si = { 0 };

	if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0) {
		/* ECHILD: someone reaped it (SIGCHLD ignored, or a waitpid(-1)
		 * elsewhere). It is gone all the same. */
		log_warning_errno(-errno, "Collecting %s (pid %d) failed, taking it as "
				  "exited", s->def->name, (int)s->pid);
		launcher_child_gone(s, NULL);
		return 0;
	}
	if (si.si_pid == 0)
		return 0;    /* readable but not yet reapable: wait for more */
	if (si.si_code == CLD_EXITED && si.si_status == LAUNCHER_EXIT_CONFIG) {
		launcher_config_failed(s);
		return 0;
	}
	launcher_log_exit(s, &si);
	launcher_child_gone(s, &si);
	return 0;
}

/* Prepare argv and envp in the parent: the child may not allocate. */
static int launcher_fork(launcher_svc *s, char *const *argv, char **envp,
			 char *listen_pid_env)
{
	launcher *l = s->l;
	launcher_child_args a = {
		.exe = s->exe, .argv = argv, .envp = envp,
		.listen_pid_env = listen_pid_env, .listen_fd = s->listen_fd,
		.drop = !s->def->as_root, .uid = l->uid, .gid = l->gid,
		.parent = getpid(),
	};
	pid_t pid;
	int pidfd;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		launcher_child(&a);

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		int r = -errno;

		/* Without a handle we cannot supervise it: do not leave it. */
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return r;
	}
	s->pid = pid;
	s->pidfd = pidfd;
	return 0;
}

static int launcher_spawn(launcher_svc *s)
{
	launcher *l = s->l;
	const char *config = l->cfg->path;
	char *argv[] = { (char *)s->exe, config ? "--config" : NULL, (char *)config,
			 NULL };
	char listen_pid[32] = "LISTEN_PID=";
	char fdnames[64];
	char *envp[] = { LAUNCHER_PATH_ENV, "LISTEN_FDS=1", fdnames, listen_pid,
			 NULL };
	int r;

	snprintf(fdnames, sizeof(fdnames), "LISTEN_FDNAMES=%s", s->def->name);
	r = launcher_fork(s, argv, envp, listen_pid);
	if (r < 0)
		return r;

	s->started_usec = launcher_now();
	s->state = LAUNCHER_STATE_RUNNING;
	r = sd_event_add_io(l->ev, &s->child_src, s->pidfd, EPOLLIN,
			    launcher_on_child, s);
	if (r < 0) {
		(void)pidfd_send_signal(s->pidfd, SIGKILL, NULL, 0);
		(void)waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &(siginfo_t){ 0 },
			     WEXITED);
		close(s->pidfd);
		s->pidfd = -1;
		s->pid = 0;
		return r;
	}
	log_info("Started %s (pid %d) as %s", s->def->name, (int)s->pid,
		 s->def->as_root ? "root" : (l->cfg->service_user ?
					    l->cfg->service_user : "nobody"));
	return 0;
}

/* A connection waits on the socket of a service that does not run. */
static int launcher_on_listen(sd_event_source *src, int fd, uint32_t revents,
			      void *userdata)
{
	launcher_svc *s = userdata;
	int r;

	/* The service accepts from now on; wake us again only after it died. */
	r = sd_event_source_set_enabled(src, SD_EVENT_OFF);
	if (r < 0)
		return log_error_errno(r, "Handing over the socket of %s failed",
				       s->def->name);
	log_debug("Connection pending on %s: starting the service", s->path);
	r = launcher_spawn(s);
	if (r < 0) {
		log_error_errno(r, "Starting %s on demand failed", s->def->name);
		launcher_child_gone(s, NULL);
	}
	return 0;
}

/* --- Set-up and tear-down --- */

static int launcher_setup_svc(launcher *l, launcher_service id,
			      const char *run_dir, const char *libexec_dir)
{
	launcher_svc *s = &l->svc[id];
	int r;

	s->path = launcher_join(run_dir, s->def->name, ".sock");
	if (!s->path)
		return -ENOMEM;
	if (s->def->needs_sync_url && !l->cfg->sync_base_url)
		return 0;   /* stays UNCONFIGURED, and has no socket */
	if (l->mode == LAUNCHER_MODE_SYSTEMD) {
		s->state = LAUNCHER_STATE_SYSTEMD;
		return 0;
	}

	r = launcher_find_exe(l, s->def->name, libexec_dir, &s->exe);
	if (r < 0)
		return r;
	r = launcher_check_exe(s->exe);
	if (r < 0) {
		/* santad's own job, deciding execs, does not need the service:
		 * run without it rather than not at all. */
		log_warning_errno(r, "Checking executable \"%s\" failed; %s will not "
				  "run", s->exe, s->def->name);
		s->state = LAUNCHER_STATE_MISSING;
		return 0;
	}

	r = launcher_listen(s);
	if (r < 0)
		return log_error_errno(r, "Creating socket \"%s\" failed", s->path);
	r = sd_event_add_io(l->ev, &s->listen_src, s->listen_fd, EPOLLIN,
			    launcher_on_listen, s);
	if (r < 0)
		return log_error_errno(r, "Watching socket \"%s\" failed", s->path);

	s->state = LAUNCHER_STATE_WAITING;
	if (s->def->on_demand)
		return 0;
	r = sd_event_source_set_enabled(s->listen_src, SD_EVENT_OFF);
	if (r < 0)
		return log_error_errno(r, "Watching socket \"%s\" failed", s->path);
	r = launcher_spawn(s);
	if (r < 0) {
		/* Try again later, as after a crash: santad runs meanwhile. */
		log_error_errno(r, "Starting %s failed", s->def->name);
		launcher_child_gone(s, NULL);
	}
	return 0;
}

static int launcher_make_run_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "Creating RunDirectory \"%s\" failed", dir);
	if (stat(dir, &st) < 0)
		return log_error_errno(-errno, "Checking RunDirectory \"%s\" failed", dir);
	/* Sockets in a directory others may write could be swapped under us. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_error("RunDirectory \"%s\" must be a directory owned by root and "
			  "writable only by root", dir);
		return -EPERM;
	}
	return 0;
}

static void launcher_set_opts(launcher *l, const launcher_opts *opts)
{
	l->mode = opts ? opts->mode : LAUNCHER_MODE_AUTO;
	if (l->mode == LAUNCHER_MODE_AUTO)
		l->mode = launcher_mode_detect();
	l->restart_usec = opts && opts->restart_usec ? opts->restart_usec :
		LAUNCHER_RESTART_USEC;
	l->restart_max_usec = opts && opts->restart_max_usec ?
		opts->restart_max_usec : LAUNCHER_RESTART_MAX_USEC;
	if (l->restart_max_usec < l->restart_usec)
		l->restart_max_usec = l->restart_usec;
	l->stop_timeout_usec = opts && opts->stop_timeout_usec ?
		opts->stop_timeout_usec : LAUNCHER_STOP_TIMEOUT_USEC;
}

int launcher_new(sd_event *ev, const santa_config *cfg,
		 const launcher_opts *opts, launcher **ret)
{
	const char *run_dir = cfg->run_directory ? cfg->run_directory : "/run/santa";
	const char *libexec = opts && opts->libexec_dir ? opts->libexec_dir :
		SANTA_LIBEXECDIR;
	launcher *l;
	int r = 0;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ev = sd_event_ref(ev);
	l->cfg = cfg;
	launcher_set_opts(l, opts);
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++) {
		l->svc[i] = (launcher_svc){ .l = l, .def = &launcher_defs[i],
					    .listen_fd = -1, .pidfd = -1 };
	}

	if (l->mode == LAUNCHER_MODE_SYSTEMD) {
		if (strcmp(run_dir, LAUNCHER_SYSTEMD_RUN_DIR) != 0)
			log_warning("RunDirectory is \"%s\" but the systemd units listen in "
				    "%s; santad will not reach the services",
				    run_dir, LAUNCHER_SYSTEMD_RUN_DIR);
	} else {
		r = launcher_resolve_user(l);
		if (r >= 0)
			r = launcher_make_run_dir(run_dir);
	}
	for (int i = 0; r >= 0 && i < LAUNCHER_SERVICE_MAX; i++)
		r = launcher_setup_svc(l, i, run_dir, libexec);
	if (r < 0) {
		launcher_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

/* Wait until every child with a pidfd has exited or DEADLINE passes,
 * reaping as they go. Returns how many are left. */
static int launcher_wait_all(launcher *l, uint64_t deadline)
{
	for (;;) {
		struct pollfd pfd[LAUNCHER_SERVICE_MAX];
		launcher_svc *owner[LAUNCHER_SERVICE_MAX];
		uint64_t now = launcher_now();
		int n = 0;

		for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++) {
			if (l->svc[i].pidfd < 0)
				continue;
			pfd[n] = (struct pollfd){ .fd = l->svc[i].pidfd, .events = POLLIN };
			owner[n++] = &l->svc[i];
		}
		if (n == 0 || now >= deadline)
			return n;
		if (poll(pfd, n, (int)((deadline - now + 999) / 1000)) < 0 && errno != EINTR)
			return n;
		for (int i = 0; i < n; i++) {
			siginfo_t si = { 0 };

			if (!(pfd[i].revents & POLLIN))
				continue;
			if (waitid((idtype_t)P_PIDFD, (id_t)owner[i]->pidfd, &si,
				   WEXITED | WNOHANG) == 0 && si.si_pid == 0)
				continue;
			close(owner[i]->pidfd);
			owner[i]->pidfd = -1;
		}
	}
}

static void launcher_signal_all(launcher *l, int sig)
{
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++) {
		launcher_svc *s = &l->svc[i];

		if (s->pidfd < 0)
			continue;
		if (sig == SIGKILL)
			log_warning("%s (pid %d) did not stop in time: killing it",
				    s->def->name, (int)s->pid);
		(void)pidfd_send_signal(s->pidfd, sig, NULL, 0);
		/* A stopped process does not act on SIGTERM until continued. */
		if (sig == SIGTERM)
			(void)pidfd_send_signal(s->pidfd, SIGCONT, NULL, 0);
	}
}

static void launcher_stop_all(launcher *l)
{
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++)
		l->svc[i].child_src = sd_event_source_disable_unref(l->svc[i].child_src);

	launcher_signal_all(l, SIGTERM);
	if (launcher_wait_all(l, launcher_now() + l->stop_timeout_usec) == 0)
		return;
	launcher_signal_all(l, SIGKILL);
	if (launcher_wait_all(l, launcher_now() + LAUNCHER_KILL_WAIT_USEC) > 0)
		log_error("Some services did not exit after SIGKILL; leaving them");
}

launcher *launcher_free(launcher *l)
{
	if (!l)
		return NULL;
	launcher_stop_all(l);
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++) {
		launcher_svc *s = &l->svc[i];

		s->listen_src = sd_event_source_disable_unref(s->listen_src);
		s->timer_src = sd_event_source_disable_unref(s->timer_src);
		if (s->pidfd >= 0)
			close(s->pidfd);
		if (s->listen_fd >= 0) {
			launcher_unlink_socket(s);
			close(s->listen_fd);
		}
		free(s->path);
		free(s->exe);
	}
	sd_event_unref(l->ev);
	free(l);
	return NULL;
}

/* --- Queries --- */

const char *launcher_socket_path(const launcher *l, launcher_service svc)
{
	if (!l || svc >= LAUNCHER_SERVICE_MAX)
		return NULL;
	if (l->svc[svc].def->needs_sync_url && !l->cfg->sync_base_url)
		return NULL;
	return l->svc[svc].path;
}

launcher_mode launcher_get_mode(const launcher *l)
{
	return l->mode;
}

const char *launcher_service_state(const launcher *l, launcher_service svc)
{
	if (!l || svc >= LAUNCHER_SERVICE_MAX)
		return "unknown";
	return launcher_state_names[l->svc[svc].state];
}

pid_t launcher_service_pid(const launcher *l, launcher_service svc)
{
	if (!l || svc >= LAUNCHER_SERVICE_MAX)
		return 0;
	return l->svc[svc].pid;
}
