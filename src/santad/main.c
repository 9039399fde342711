/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad: the root daemon that authorizes every exec.
 *
 * The main thread runs an sd-event loop: signals, configuration reloads,
 * new mounts, the control socket, the services it launches, and storing
 * sync events. Execs are decided on the authorizer's own threads (auth.h)
 * and recorded on the recorder's (recorder.h); nothing the main loop does
 * can delay an answer to the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "daemon.h"
#include "gui.h"
#include "ipc.h"
#include "launcher.h"
#include "log.h"
#include "santa-build.h"
#include "synclink.h"
#include "userns.h"
#ifdef SANTAD_HAVE_METRICS
#include "metrics.h"
#endif

#define ERRBUF 1024

typedef struct main_ctx {
	santad d;
	launcher *launcher;
	ipc_trust *trust;
	control *control;
	char control_path[PATH_MAX];    /* the socket we bound; "" if none */
	int mountinfo_fd;
	char *config_watch_name;        /* basename of the config file */
	/* Not floating: libsystemd 252's floating inotify sources keep their
	 * event loop alive after its last unref. */
	sd_event_source *config_watch;
	bool bad_config;                /* exit EX_CONFIG: restarting cannot help */
} main_ctx;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: santad [--config FILE] [--debug]\n"
		"\n"
		"Santa's daemon: authorizes every program that runs on this machine by\n"
		"its SHA-256, its rules, the path regexes and the client mode, and logs\n"
		"each decision. Runs as root, in the foreground.\n"
		"\n"
		"  -c, --config FILE  read FILE (default $SANTA_CONFIG, else\n"
		"                     %s; a missing default file means\n"
		"                     all defaults)\n"
		"  -d, --debug        log debug messages\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Signals: SIGHUP reloads the configuration and reopens the event log;\n"
		"SIGTERM (or SIGINT, Ctrl-C) answers every pending exec and stops.\n"
		"Exits 78 when its configuration is bad, 1 on other failures.\n",
		SANTA_DEFAULT_CONFIG);
}

/* 0 to go on, 1 to exit successfully (help, version), -1 on a usage error. */
static int parse_args(int argc, char **argv, santad *d)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d->config_file = optarg;
			break;
		case 'd':
			log_set_level(SANTA_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("santad %s\n", SANTA_VERSION);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "santad: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* --- start-up steps --- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int prepare_directories(const santa_config *cfg)
{
	char logdir[PATH_MAX];
	int r;

	if ((r = mkdir_p(cfg->run_directory, 0755)) < 0)
		return log_error_errno(r, "Creating RunDirectory \"%s\" failed",
				       cfg->run_directory);
	if ((r = mkdir_p(cfg->state_directory, 0700)) < 0)
		return log_error_errno(r, "Creating StateDirectory \"%s\" failed",
				       cfg->state_directory);
	if (cfg->event_log_type != SANTA_LOG_FILE && cfg->event_log_type != SANTA_LOG_JSON)
		return 0;
	snprintf(logdir, sizeof(logdir), "%s", cfg->event_log_path);
	/* 0750, as the package and santad.service make it: the log names
	 * every program every user ran. */
	if ((r = mkdir_p(dirname(logdir), 0750)) < 0)
		return log_error_errno(r, "Creating the directory of EventLogPath \"%s\" failed",
				       cfg->event_log_path);
	return 0;
}

/* One santad at a time: two would each answer half the events with their
 * own rules and caches. The lock dies with the process. */
static int take_lock(santad *d)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/santad.lock", d->cfg.run_directory);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_error_errno(-errno, "Opening the lock file \"%s\" failed", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = -errno;

		close(fd);
		if (err == -EWOULDBLOCK) {
			log_error("Another santad is running (it holds \"%s\"); not starting",
				  path);
			return -EBUSY;
		}
		return log_error_errno(err, "Locking \"%s\" failed", path);
	}
	d->lock_fd = fd;
	return 0;
}

static void raise_fd_limit(void)
{
	/* Every pending exec and every file being hashed holds a descriptor,
	 * and so does every event of a read from either fanotify group until
	 * it is handled (a log record holds none): the kernel denies an event
	 * it cannot give us one for, even in MONITOR. And a little for the
	 * databases, the log and the IPC clients. */
	const rlim_t want = 65536, need = AUTH_MAX_PENDING + AUTH_MAX_JOBS +
					  2 * (AUTH_READ_BUF / FAN_EVENT_METADATA_LEN) + 1024;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need)
		log_warning("RLIMIT_NOFILE is %llu, below the %llu descriptors santad may hold "
			    "under an exec storm; raise the hard limit",
			    (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static int open_state(santad *d)
{
	char path[PATH_MAX], err[ERRBUF];
	int r;

	snprintf(path, sizeof(path), "%s/rules.db", d->cfg.state_directory);
	r = ruledb_open(path, &d->rules, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Opening the rules database failed: %s", err);
	snprintf(path, sizeof(path), "%s/events.db", d->cfg.state_directory);
	r = eventdb_open(path, &d->events, err, sizeof(err));
	if (r < 0)
		log_warning_errno(r, "Opening the events database failed, events for the sync "
				  "server are dropped: %s", err);
	snprintf(path, sizeof(path), "%s/sync-state.json", d->cfg.state_directory);
	r = syncstate_load(&d->sync, path, err, sizeof(err));
	if (r < 0)
		log_warning_errno(r, "Reading the sync state failed, ignoring what the server "
				  "set: %s", err);
	return 0;
}

static int start_recorder(santad *d)
{
	int r = recorder_new(&d->counters, &d->rec);

	if (r < 0)
		return log_error_errno(r, "Creating the recorder failed");
	r = recorder_configure(d->rec, d->cfg.event_log_type, d->cfg.event_log_path);
	if (r < 0)
		return log_error_errno(r, "Opening the event log \"%s\" failed",
				       d->cfg.event_log_path);
	r = recorder_start(d->rec);
	if (r < 0)
		return log_error_errno(r, "Starting the recorder thread failed");
	return 0;
}

static int start_authorizer(santad *d)
{
	char err[ERRBUF];
	ruleset *rs = NULL;
	struct stat st;
	int r;

	/* Status tells the cache entries of files on "/" from the rest. */
	if (stat("/", &st) == 0)
		d->root_dev = st.st_dev;
	r = ruledb_load_ruleset(d->rules, &rs);
	if (r < 0)
		return log_error_errno(r, "Loading the rules failed");
	r = auth_new(&d->counters, d->rec, d->cfg.hash_threads, NULL, rs, &d->auth);
	ruleset_unref(rs);
	if (r < 0)
		return log_error_errno(r, "Setting up fanotify failed (santad needs root and a "
				       "kernel with FAN_OPEN_EXEC_PERM)");
	r = santad_publish_policy(d, "start", err, sizeof(err));
	if (r < 0) {
		log_error("The configuration cannot be used: %s", err);
		return r;
	}
#ifdef SANTAD_HAVE_METRICS
	auth_set_answer_hook(d->auth, metrics_exec);
#endif
	r = auth_start(d->auth);
	if (r < 0)
		return log_error_errno(r, "Starting the decision threads failed");
	r = mounts_new(d->auth, d->cfg.watch_paths, d->cfg.n_watch_paths, &d->mounts);
	if (r < 0)
		return log_error_errno(r, "Setting up the watched mounts failed");
	if (mounts_scan(d->mounts) == 0)
		log_warning("No filesystem is watched: execs are not authorized");
	return 0;
}

/* --- the main loop's handlers --- */

static void reload_recorder(santad *d, const santa_config *old)
{
	int r;

	if (old->event_log_type == d->cfg.event_log_type &&
	    !strcmp(old->event_log_path, d->cfg.event_log_path))
		return;
	r = recorder_configure(d->rec, d->cfg.event_log_type, d->cfg.event_log_path);
	if (r < 0)
		log_error_errno(r, "Switching the event log to \"%s\" failed, keeping the "
				"previous one", d->cfg.event_log_path);
}

static bool strv_equal(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

static void warn_restart_keys(const santa_config *old, const santa_config *cfg)
{
	if (!strv_equal(old->watch_paths, old->n_watch_paths, cfg->watch_paths,
			cfg->n_watch_paths) ||
	    strcmp(old->state_directory, cfg->state_directory) ||
	    strcmp(old->run_directory, cfg->run_directory) ||
	    old->hash_threads != cfg->hash_threads ||
	    !strv_equal(old->trusted_executables, old->n_trusted_executables,
			cfg->trusted_executables, cfg->n_trusted_executables))
		log_warning("WatchPaths, StateDirectory, RunDirectory, HashThreads or "
			    "TrustedExecutables changed: they take effect when santad restarts");
}

/* In LOCKDOWN: say so when users can mount what santad cannot watch. */
static void warn_userns(santad *d)
{
	char why[512];

	if (santad_client_mode(d) == SANTA_MODE_LOCKDOWN &&
	    santa_userns_unprivileged("/proc", why, sizeof(why)) > 0)
		log_warning("Lockdown: %s", why);
}

static void reload_config(santad *d, const char *why)
{
	char err[ERRBUF];
	santa_config next, old;
	int r;

	r = santa_config_load(d->config_file, &next, err, sizeof(err));
	if (r < 0) {
		log_error("Reloading the configuration (%s) failed, keeping the running one: %s",
			  why, err);
		return;
	}
	old = d->cfg;
	d->cfg = next;
	r = santad_publish_policy(d, why, err, sizeof(err));
	if (r < 0) {
		d->cfg = old;
		santa_config_done(&next);
		log_error("Reloading the configuration (%s) failed, keeping the running one: %s",
			  why, err);
		return;
	}
	reload_recorder(d, &old);
	warn_restart_keys(&old, &d->cfg);
	santa_config_done(&old);
	log_info("Configuration reloaded (%s)", why);
	warn_userns(d);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	santad *d = userdata;

	if (si->ssi_signo == SIGHUP) {
		recorder_reopen(d->rec);
		reload_config(d, "SIGHUP");
		return 0;
	}
	log_info("Stopping on signal %u", si->ssi_signo);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_config_change(sd_event_source *s, const struct inotify_event *ie, void *userdata)
{
	main_ctx *m = userdata;

	if (ie->len && !strcmp(ie->name, m->config_watch_name))
		reload_config(&m->d, "configuration file changed");
	return 0;
}

static int on_mountinfo(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	santad *d = userdata;

	(void)mounts_scan(d->mounts);
	return 0;
}

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	santad_store_events(userdata);
	return 0;
}

static int watch_config(main_ctx *m)
{
	const char *file = m->d.config_file ? m->d.config_file : santa_config_default_path();
	char dir[PATH_MAX], base[PATH_MAX];
	int r;

	snprintf(dir, sizeof(dir), "%s", file);
	snprintf(base, sizeof(base), "%s", file);
	m->config_watch_name = strdup(basename(base));
	if (!m->config_watch_name)
		return -ENOMEM;
	/* The directory, not the file: editors replace files by renaming. */
	r = sd_event_add_inotify(m->d.ev, &m->config_watch, dirname(dir),
				 IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE,
				 on_config_change, m);
	if (r < 0)
		log_info("Not watching \"%s\" for changes (%s); SIGHUP reloads it", file,
			 strerror(-r));
	return 0;
}

static int setup_loop(main_ctx *m)
{
	santad *d = &m->d;
	int r;

	if ((r = sd_event_add_signal(d->ev, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGINT, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGHUP, on_signal, d)) < 0)
		return log_error_errno(r, "Setting up signal handling failed");
	r = sd_event_add_io(d->ev, NULL, recorder_event_fd(d->rec), EPOLLIN, on_events, d);
	if (r < 0)
		return log_error_errno(r, "Watching the recorder's events failed");
	m->mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (m->mountinfo_fd < 0 ||
	    (r = sd_event_add_io(d->ev, NULL, m->mountinfo_fd, EPOLLPRI, on_mountinfo, d)) < 0)
		log_warning("Not watching /proc/self/mountinfo: new mounts are not marked");
	return watch_config(m);
}

static int start_trust(main_ctx *m)
{
	int r = ipc_trust_new(&m->trust);

	if (r >= 0)
		r = ipc_trust_add_defaults(m->trust, m->d.cfg.trusted_executables);
	if (r < 0)
		return log_error_errno(r, "Building the table of trusted executables failed");
	m->d.trust = m->trust;
	return 0;
}

static void start_control(main_ctx *m)
{
	char path[PATH_MAX];
	int fd, r;

	snprintf(path, sizeof(path), "%s/santad.sock", m->d.cfg.run_directory);
	/* 0666: every user's santactl may connect; the IPC layer decides
	 * who it is and what it may call. */
	fd = ipc_listen_socket(path, 0666, 0, 0);
	if (fd < 0) {
		log_error("Creating the control socket \"%s\" failed: %s; santactl cannot reach "
			  "santad", path, ipc_strerror(fd));
		return;
	}
	r = control_start(&m->d, m->d.ev, fd, m->trust, &m->control);
	if (r < 0) {
		close(fd);
		log_error_errno(r, "Starting the control service failed; santactl cannot reach "
				"santad");
		return;
	}
	m->d.control = m->control;
	snprintf(m->control_path, sizeof(m->control_path), "%s", path);
}

static void start_services(main_ctx *m)
{
	int r = launcher_new(m->d.ev, &m->d.cfg, NULL, &m->launcher);

	if (r < 0) {
		log_warning_errno(r, "Starting the services (metrics, sync, bundles) failed, "
				  "going on without them");
		return;
	}
	r = synclink_new(m->d.ev, m->trust, launcher_socket_path(m->launcher, LAUNCHER_SYNC),
			 &m->d.sync_link);
	if (r < 0)
		log_warning_errno(r, "Setting up the connection to santasyncservice failed, "
				  "going on without it");
#ifdef SANTAD_HAVE_METRICS
	r = metrics_start(&m->d, m->d.ev, m->trust,
			  launcher_socket_path(m->launcher, LAUNCHER_METRIC));
	if (r < 0)
		log_warning_errno(r, "Starting the metric export failed, going on without it");
#endif
}

static void notify_ready(main_ctx *m)
{
	const char *const *paths;
	size_t n = santad_watch_paths(&m->d, &paths);

	const char *fs = log_plural(n, "filesystem", "filesystems");

	(void)sd_notifyf(0, "READY=1\nSTATUS=Watching %zu %s", n, fs);
	log_notice("santad %s ready: mode %s, %zu %s watched, event log %s \"%s\"",
		   SANTA_VERSION, santa_client_mode_name(santad_client_mode(&m->d)), n, fs,
		   santa_log_type_name(m->d.cfg.event_log_type),
		   m->d.cfg.event_log_type == SANTA_LOG_FILE || m->d.cfg.event_log_type ==
		   SANTA_LOG_JSON ? m->d.cfg.event_log_path : "");
}

/* Each TrustedExecutables entry as ipc_trust_add_defaults() takes it: an
 * absolute directory ending in '/', or a file named like one of ours. */
static int check_trusted(const santa_config *cfg, char *errbuf, size_t errsize)
{
	for (size_t i = 0; cfg->trusted_executables && cfg->trusted_executables[i]; i++) {
		const char *p = cfg->trusted_executables[i], *base = strrchr(p, '/');
		char key[64];

		snprintf(key, sizeof(key), "TrustedExecutables[%zu]", i);
		if (p[0] != '/')
			return santa_config_error(cfg, key, errbuf, errsize,
						  "\"%.200s\" is not an absolute path", p);
		if (base[1] && ipc_role_from_name(base + 1) == IPC_ROLE_NONE)
			return santa_config_error(cfg, key, errbuf, errsize,
						  "\"%.200s\" is neither a directory (ending in "
						  "'/') nor one of this project's executables", p);
	}
	return 0;
}

/* Read the configuration and check what only santad checks (regexes, static
 * rules, trusted executables), before anything is set up: a bad file is
 * EX_CONFIG. */
static int load_config(main_ctx *m)
{
	santad *d = &m->d;
	char err[ERRBUF];
	policy *p = NULL;

	int r;

	if (santa_config_load(d->config_file, &d->cfg, err, sizeof(err)) < 0) {
		log_error("Reading the configuration failed: %s", err);
		m->bad_config = true;
		return -EINVAL;
	}
	r = policy_new(&d->cfg, NULL, &p, err, sizeof(err));
	if (r == 0 && check_trusted(&d->cfg, err, sizeof(err)) < 0)
		r = -EINVAL;
	policy_unref(p);
	if (r < 0) {
		log_error("Reading the configuration failed: %s", err);
		m->bad_config = r == -EINVAL;
		return r;
	}
	return 0;
}

static int start(main_ctx *m)
{
	santad *d = &m->d;
	int r;

	if ((r = load_config(m)) < 0)
		return r;
	if (geteuid() != 0) {
		log_error("santad must run as root (fanotify permission events need "
			  "CAP_SYS_ADMIN)");
		return -EPERM;
	}
	raise_fd_limit();
	if ((r = prepare_directories(&d->cfg)) < 0 || (r = take_lock(d)) < 0 ||
	    (r = open_state(d)) < 0)
		return r;
	d->counters.start_time = time(NULL);
	r = sd_event_new(&d->ev);
	if (r < 0)
		return log_error_errno(r, "Creating the event loop failed");
	if ((r = start_recorder(d)) < 0 || (r = start_authorizer(d)) < 0 ||
	    (r = setup_loop(m)) < 0 || (r = start_trust(m)) < 0)
		return r;
	r = gui_new(d, d->ev, m->trust, &d->gui);
	if (r < 0)
		log_warning_errno(r, "Setting up santagui notifications failed, going on "
				  "without them");
	recorder_set_gui(d->rec, d->gui);
#ifdef SANTAD_HAVE_METRICS
	gui_set_count_hook(d->gui, metrics_set_gui_clients);
#endif
	start_control(m);
	start_services(m);
	notify_ready(m);
	warn_userns(&m->d);
	return 0;
}

static void stop(main_ctx *m)
{
	santad *d = &m->d;

	(void)sd_notify(0, "STOPPING=1");
	/* Answer every pending exec first: the kernel holds those processes. */
	auth_stop(d->auth);
#ifdef SANTAD_HAVE_METRICS
	metrics_stop();
#endif
	m->control = control_free(m->control);
	/* Ours while we hold the lock: nobody is left to answer on it. */
	if (m->control_path[0])
		(void)unlink(m->control_path);
	d->sync_link = synclink_free(d->sync_link);
	m->launcher = launcher_free(m->launcher);
	recorder_stop(d->rec);
	d->gui = gui_free(d->gui);
	if (d->ev)
		santad_store_events(d);
	d->auth = auth_free(d->auth);
	d->mounts = mounts_free(d->mounts);
	d->rec = recorder_free(d->rec);
	d->rules = ruledb_close(d->rules);
	d->events = eventdb_close(d->events);
	syncstate_done(&d->sync);
	m->trust = ipc_trust_free(m->trust);
	if (m->mountinfo_fd >= 0)
		close(m->mountinfo_fd);
	free(m->config_watch_name);
	m->config_watch = sd_event_source_disable_unref(m->config_watch);
	d->ev = sd_event_unref(d->ev);
	santa_config_done(&d->cfg);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
}

int main(int argc, char **argv)
{
	main_ctx m = { .mountinfo_fd = -1, .d.lock_fd = -1 };
	sigset_t mask;
	int r;

	log_open("santad");
	r = parse_args(argc, argv, &m.d);
	if (r != 0)
		return r > 0 ? 0 : 2;
	/* Block the signals before any thread starts, so that only the main
	 * loop's signalfd sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = start(&m);
	if (r == 0)
		r = sd_event_loop(m.d.ev);
	stop(&m);
	if (r < 0)
		log_notice("santad stopped after an error");
	else
		log_info("santad stopped");
	/* 78 is EX_CONFIG, as for the services: santad.service does not
	 * restart a daemon whose configuration it cannot read. */
	if (m.bad_config)
		return 78;
	return r < 0 ? 1 : 0;
}
