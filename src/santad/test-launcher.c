/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for santad's launcher, with a stand-in service (test-launcher-stub,
 * argv[1]) copied under each service's name into a TrustedExecutables
 * directory. Needs root: it starts children as root and as nobody.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher.h"

#define MSEC 1000ULL

static const char *stub_path;

typedef struct fixture {
	char dir[PATH_MAX];
	char bin[PATH_MAX + 8];
	char rundir[64];          /* short: socket paths fit in sun_path */
	char run[PATH_MAX + 8];
	char *trusted[2];
	santa_config cfg;
	sd_event *ev;
	launcher *l;
} fixture;

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	assert_true(in >= 0);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, n), n);
	close(in);
	close(out);
	assert_int_equal(chmod(to, mode), 0);
}

static void install_stub(fixture *f, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", f->bin, name);
	copy_file(stub_path, path, 0755);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	/* Beside the stub, in the build tree: the launcher refuses an
	 * executable below a directory others may write, such as /tmp. */
	snprintf(f->dir, sizeof(f->dir), "%s.XXXXXX", stub_path);
	assert_non_null(mkdtemp(f->dir));
	/* nobody must reach the stub through it. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(f->bin, sizeof(f->bin), "%s/bin/", f->dir);
	/* The sockets live apart, under /tmp: beside the stub, a long build
	 * path would not fit a socket's 108 bytes. The launcher makes "run"
	 * itself; the directory above it is root's and closed to writes. */
	snprintf(f->rundir, sizeof(f->rundir), "/tmp/santa-launcher.XXXXXX");
	assert_non_null(mkdtemp(f->rundir));
	assert_int_equal(chmod(f->rundir, 0755), 0);
	snprintf(f->run, sizeof(f->run), "%s/run", f->rundir);
	assert_int_equal(mkdir(f->bin, 0755), 0);
	install_stub(f, "santasyncservice");
	install_stub(f, "santametricservice");
	install_stub(f, "santabundleservice");

	santa_config_init(&f->cfg);
	free(f->cfg.run_directory);
	f->cfg.run_directory = strdup(f->run);
	f->trusted[0] = f->bin;
	f->cfg.trusted_executables = f->trusted;
	f->cfg.n_trusted_executables = 1;
	assert_int_equal(sd_event_new(&f->ev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[PATH_MAX + 96];

	launcher_free(f->l);
	sd_event_unref(f->ev);
	f->cfg.trusted_executables = NULL;
	f->cfg.n_trusted_executables = 0;
	santa_config_done(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->rundir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void start(fixture *f, const launcher_opts *opts)
{
	launcher_opts o = opts ? *opts : (launcher_opts){ 0 };
	char libexec[PATH_MAX + 16];

	/* Not the installed services: a machine where Santa is installed
	 * would otherwise fill in what a test removed. */
	snprintf(libexec, sizeof(libexec), "%s/libexec", f->dir);
	if (!o.libexec_dir)
		o.libexec_dir = libexec;

	o.mode = LAUNCHER_MODE_SANTAD;
	assert_int_equal(launcher_new(f->ev, &f->cfg, &o, &f->l), 0);
}

/* Connect to SVC's socket and run the loop until the service answers with
 * its report, or TIMEOUT. Returns the connected socket (or -1) and the
 * report in BUF. */
static int ask(fixture *f, launcher_service svc, char *buf, size_t size,
	       uint64_t timeout)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = now_usec() + timeout;
	const char *path = launcher_socket_path(f->l, svc);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_non_null(path);
	assert_true(fd >= 0);
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	while (now_usec() < deadline) {
		ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);

		if (n > 0) {
			buf[n] = '\0';
			return fd;
		}
		sd_event_run(f->ev, 20 * MSEC);
	}
	close(fd);
	return -1;
}

/* Ask and close; fail the test if no answer. */
static void ask_once(fixture *f, launcher_service svc, char *buf, size_t size)
{
	int fd = ask(f, svc, buf, size, 3000 * MSEC);

	assert_true(fd >= 0);
	close(fd);
}

static void run_for(fixture *f, uint64_t usec)
{
	uint64_t deadline = now_usec() + usec;

	while (now_usec() < deadline)
		sd_event_run(f->ev, 20 * MSEC);
}

/* Run the loop until SVC has a pid other than OLD (0: any), or TIMEOUT. */
static pid_t wait_new_pid(fixture *f, launcher_service svc, pid_t old,
			  uint64_t timeout)
{
	uint64_t deadline = now_usec() + timeout;

	while (now_usec() < deadline) {
		pid_t p = launcher_service_pid(f->l, svc);

		if (p != 0 && p != old)
			return p;
		sd_event_run(f->ev, 20 * MSEC);
	}
	return 0;
}

static bool has_line(const char *report, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = report; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return true;
	return false;
}

static size_t count_prefix(const char *report, const char *prefix)
{
	size_t n = 0;

	for (const char *p = report; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

static void assert_line(const char *report, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void assert_line(const char *report, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!has_line(report, line))
		fail_msg("missing \"%s\" in:\n%s", line, report);
}

static bool pid_alive(pid_t pid)
{
	char path[64], state = '?';
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	/* A zombie is dead for our purpose. */
	if (fscanf(fp, "%*d (%*[^)]) %c", &state) != 1)
		state = '?';
	fclose(fp);
	return state != 'Z' && state != '?';
}

static void assert_socket_mode(const char *path, mode_t mode)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, mode);
}

/* --- Tests --- */

static void test_metric_starts_as_nobody(void **state)
{
	fixture *f = *state;
	struct passwd *pw = getpwnam("nobody");
	char r[8192];
	pid_t pid;

	assert_non_null(pw);
	start(f, NULL);
	pid = launcher_service_pid(f->l, LAUNCHER_METRIC);
	assert_true(pid > 0);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_METRIC), "running");

	ask_once(f, LAUNCHER_METRIC, r, sizeof(r));
	assert_line(r, "pid=%d", (int)pid);
	assert_line(r, "ppid=%d", (int)getpid());
	assert_line(r, "sid=%d", (int)pid);
	assert_line(r, "uid=%d,%d,%d", pw->pw_uid, pw->pw_uid, pw->pw_uid);
	assert_line(r, "gid=%d,%d,%d", pw->pw_gid, pw->pw_gid, pw->pw_gid);
	assert_line(r, "groups=0");
	assert_line(r, "nnp=1");
	assert_line(r, "pdeathsig=%d", SIGKILL);
	assert_line(r, "fds=0,1,2,3,");
	/* The environment is exactly what systemd would give, nothing of ours. */
	assert_int_equal(count_prefix(r, "env="), 4);
	assert_line(r, "env=LISTEN_FDS=1");
	assert_line(r, "env=LISTEN_PID=%d", (int)pid);
	assert_line(r, "env=LISTEN_FDNAMES=santametricservice");
	assert_int_equal(count_prefix(r, "env=PATH="), 1);

	assert_socket_mode(launcher_socket_path(f->l, LAUNCHER_METRIC), 0600);
}

static void test_sync_needs_url(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX + 64];

	start(f, NULL);
	assert_null(launcher_socket_path(f->l, LAUNCHER_SYNC));
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_SYNC), "not configured");
	snprintf(path, sizeof(path), "%s/santasyncservice.sock", f->run);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_sync_on_demand_as_nobody(void **state)
{
	fixture *f = *state;
	struct passwd *pw = getpwnam("nobody");
	char r[8192];

	f->cfg.sync_base_url = strdup("http://127.0.0.1:1/");
	start(f, NULL);
	assert_socket_mode(launcher_socket_path(f->l, LAUNCHER_SYNC), 0666);
	run_for(f, 300 * MSEC);
	/* Nobody connected: not started. */
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_SYNC), 0);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_SYNC),
			    "waiting for a connection");

	ask_once(f, LAUNCHER_SYNC, r, sizeof(r));
	assert_line(r, "uid=%d,%d,%d", pw->pw_uid, pw->pw_uid, pw->pw_uid);
	assert_line(r, "env=LISTEN_FDNAMES=santasyncservice");
	assert_line(r, "fds=0,1,2,3,");
	assert_true(launcher_service_pid(f->l, LAUNCHER_SYNC) > 0);
}

static void test_bundle_on_demand_as_root(void **state)
{
	fixture *f = *state;
	char r[8192];

	start(f, NULL);
	assert_socket_mode(launcher_socket_path(f->l, LAUNCHER_BUNDLE), 0666);
	run_for(f, 200 * MSEC);
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_BUNDLE), 0);

	ask_once(f, LAUNCHER_BUNDLE, r, sizeof(r));
	assert_line(r, "uid=0,0,0");
	assert_line(r, "groups=0");
	assert_line(r, "pdeathsig=%d", SIGKILL);
	assert_line(r, "env=LISTEN_FDNAMES=santabundleservice");
}

static void test_config_path_passed(void **state)
{
	fixture *f = *state;
	char r[8192];

	f->cfg.path = strdup("/etc/santa/test.json");
	start(f, NULL);
	ask_once(f, LAUNCHER_METRIC, r, sizeof(r));
	assert_line(r, "arg=--config");
	assert_line(r, "arg=/etc/santa/test.json");
}

static void test_restart_with_backoff(void **state)
{
	fixture *f = *state;
	launcher_opts o = { .restart_usec = 200 * MSEC, .restart_max_usec = 800 * MSEC };
	pid_t p1, p2, p3;
	uint64_t t, first, second;

	start(f, &o);
	p1 = launcher_service_pid(f->l, LAUNCHER_METRIC);
	assert_true(p1 > 0);

	t = now_usec();
	assert_int_equal(kill(p1, SIGKILL), 0);
	p2 = wait_new_pid(f, LAUNCHER_METRIC, p1, 3000 * MSEC);
	first = now_usec() - t;
	assert_true(p2 > 0);

	t = now_usec();
	assert_int_equal(kill(p2, SIGKILL), 0);
	p3 = wait_new_pid(f, LAUNCHER_METRIC, p2, 3000 * MSEC);
	second = now_usec() - t;
	assert_true(p3 > 0);

	/* 200 ms, then 400 ms: the second death came quickly. */
	assert_true(first >= 180 * MSEC && first < 400 * MSEC);
	assert_true(second >= 380 * MSEC);
	assert_false(pid_alive(p1));
	assert_false(pid_alive(p2));
}

/* EX_CONFIG (78): the service cannot work with this configuration, and
 * would fail the same way however often it is started. */
static void test_config_error_not_restarted(void **state)
{
	fixture *f = *state;
	launcher_opts o = { .restart_usec = 100 * MSEC, .restart_max_usec = 200 * MSEC };
	char r[8192], path[PATH_MAX + 64];
	pid_t p1;
	int fd;

	start(f, &o);
	p1 = launcher_service_pid(f->l, LAUNCHER_METRIC);
	assert_true(p1 > 0);
	snprintf(path, sizeof(path), "%s", launcher_socket_path(f->l, LAUNCHER_METRIC));
	fd = ask(f, LAUNCHER_METRIC, r, sizeof(r), 3000 * MSEC);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "exit 78", 7, 0), 7);
	close(fd);

	/* Many restart delays later, it is still down, and says why. */
	run_for(f, 1500 * MSEC);
	assert_false(pid_alive(p1));
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_METRIC), 0);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_METRIC),
			    "stopped: configuration error");
	/* No socket to wait on in vain: a client learns at once. */
	assert_int_equal(access(path, F_OK), -1);

	/* Another service is not affected: the bundle service starts. */
	ask_once(f, LAUNCHER_BUNDLE, r, sizeof(r));
	assert_true(launcher_service_pid(f->l, LAUNCHER_BUNDLE) > 0);
}

static void test_on_demand_clean_exit_waits(void **state)
{
	fixture *f = *state;
	char r[8192];
	pid_t p1;
	int fd;

	start(f, NULL);
	fd = ask(f, LAUNCHER_BUNDLE, r, sizeof(r), 3000 * MSEC);
	assert_true(fd >= 0);
	p1 = launcher_service_pid(f->l, LAUNCHER_BUNDLE);
	/* Idle long enough to count as done with its work, then exit 0. */
	run_for(f, 1100 * MSEC);
	assert_int_equal(send(fd, "exit 0", 6, 0), 6);
	close(fd);
	run_for(f, 500 * MSEC);
	assert_false(pid_alive(p1));
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_BUNDLE), 0);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_BUNDLE),
			    "waiting for a connection");
	/* The next connection starts it again at once. */
	ask_once(f, LAUNCHER_BUNDLE, r, sizeof(r));
	assert_true(launcher_service_pid(f->l, LAUNCHER_BUNDLE) > 0);
}

static void test_free_stops_all(void **state)
{
	fixture *f = *state;
	launcher_opts o = { .stop_timeout_usec = 300 * MSEC };
	char r[8192], path[3][PATH_MAX + 64];
	pid_t metric, bundle;
	uint64_t t;
	int fd;

	f->cfg.sync_base_url = strdup("http://127.0.0.1:1/");
	start(f, &o);
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++)
		snprintf(path[i], sizeof(path[i]), "%s", launcher_socket_path(f->l, i));
	/* One that ignores SIGTERM must still go, by SIGKILL. */
	fd = ask(f, LAUNCHER_BUNDLE, r, sizeof(r), 3000 * MSEC);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "ignore-term", 11, 0), 11);
	assert_true(recv(fd, r, sizeof(r), 0) > 0);
	close(fd);
	metric = launcher_service_pid(f->l, LAUNCHER_METRIC);
	bundle = launcher_service_pid(f->l, LAUNCHER_BUNDLE);

	t = now_usec();
	f->l = launcher_free(f->l);
	t = now_usec() - t;
	assert_false(pid_alive(metric));
	assert_false(pid_alive(bundle));
	assert_true(t >= 250 * MSEC && t < 2000 * MSEC);
	for (int i = 0; i < LAUNCHER_SERVICE_MAX; i++)
		assert_int_equal(access(path[i], F_OK), -1);
}

/* santad killed outright: its services must not outlive it. */
static void test_parent_death_kills_children(void **state)
{
	fixture *f = *state;
	int pipefd[2];
	pid_t santad, metric = 0;
	uint64_t deadline;

	/* Orphans come to us, so that we can see them die and reap them. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(pipefd), 0);
	santad = fork();
	assert_true(santad >= 0);
	if (santad == 0) {
		launcher_opts o = { .mode = LAUNCHER_MODE_SANTAD };
		sd_event *ev;

		/* An sd_event does not cross a fork. */
		if (sd_event_new(&ev) < 0 || launcher_new(ev, &f->cfg, &o, &f->l) < 0)
			_exit(1);
		metric = launcher_service_pid(f->l, LAUNCHER_METRIC);
		(void)!write(pipefd[1], &metric, sizeof(metric));
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &metric, sizeof(metric)), sizeof(metric));
	close(pipefd[0]);
	assert_true(metric > 0);
	assert_true(pid_alive(metric));

	assert_int_equal(kill(santad, SIGKILL), 0);
	assert_int_equal(waitpid(santad, NULL, 0), santad);
	deadline = now_usec() + 2000 * MSEC;
	while (pid_alive(metric) && now_usec() < deadline)
		usleep(10000);
	assert_false(pid_alive(metric));
	(void)waitpid(metric, NULL, 0);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

static void test_missing_executable(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/santabundleservice", f->bin);
	assert_int_equal(unlink(path), 0);
	/* A group-writable one is refused, as the IPC layer would refuse it. */
	snprintf(path, sizeof(path), "%s/santametricservice", f->bin);
	assert_int_equal(chmod(path, 0775), 0);

	start(f, NULL);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_BUNDLE), "not installed");
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_METRIC), "not installed");
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_METRIC), 0);
}

static void test_writable_dir_refused(void **state)
{
	fixture *f = *state;

	/* Whoever may write the directory may swap the executable. */
	assert_int_equal(chmod(f->bin, 0777), 0);
	start(f, NULL);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_METRIC), "not installed");
	assert_int_equal(chmod(f->bin, 0755), 0);
}

static void test_bad_service_user(void **state)
{
	fixture *f = *state;
	launcher_opts o = { .mode = LAUNCHER_MODE_SANTAD };

	free(f->cfg.service_user);
	f->cfg.service_user = strdup("root");
	assert_int_equal(launcher_new(f->ev, &f->cfg, &o, &f->l), -EPERM);
	assert_null(f->l);
	free(f->cfg.service_user);
	f->cfg.service_user = strdup("no-such-user-santa");
	assert_int_equal(launcher_new(f->ev, &f->cfg, &o, &f->l), -ENOENT);
}

static void test_systemd_mode(void **state)
{
	fixture *f = *state;
	launcher_opts o = { .mode = LAUNCHER_MODE_SYSTEMD };
	char path[PATH_MAX + 64];

	assert_int_equal(launcher_new(f->ev, &f->cfg, &o, &f->l), 0);
	assert_int_equal(launcher_service_pid(f->l, LAUNCHER_METRIC), 0);
	assert_string_equal(launcher_service_state(f->l, LAUNCHER_METRIC),
			    "managed by systemd");
	snprintf(path, sizeof(path), "%s/santametricservice.sock", f->run);
	assert_string_equal(launcher_socket_path(f->l, LAUNCHER_METRIC), path);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_mode_detect(void **state)
{
	setenv("SANTA_SERVICE_LAUNCHER", "systemd", 1);
	assert_int_equal(launcher_mode_detect(), LAUNCHER_MODE_SYSTEMD);
	setenv("SANTA_SERVICE_LAUNCHER", "santad", 1);
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	assert_int_equal(launcher_mode_detect(), LAUNCHER_MODE_SANTAD);
	unsetenv("SANTA_SERVICE_LAUNCHER");
	unsetenv("INVOCATION_ID");
	/* Not started by systemd: santad launches. */
	assert_int_equal(launcher_mode_detect(), LAUNCHER_MODE_SANTAD);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metric_starts_as_nobody, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_needs_url, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_on_demand_as_nobody, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_on_demand_as_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_path_passed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_with_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_error_not_restarted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_demand_clean_exit_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_stops_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_death_kills_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_executable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_dir_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_service_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_systemd_mode, setup, teardown),
		cmocka_unit_test(test_mode_detect),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s STUB\n", argv[0]);
		return 2;
	}
	stub_path = argv[1];
	if (geteuid() != 0) {
		printf("test-launcher: skipped, needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
