/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bundle rules (dpkg package, application directory, none), which
 * files count as executables, and the bundle hash, on trees made in a
 * temporary directory and a fake dpkg database.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "bundle.h"
#include "dpkg.h"

static char tmpdir[64];

static const char elf_a[] = "\177ELF first program";
static const char elf_b[] = "\177ELF second program";
static const char script[] = "#!/bin/sh\necho hello\n";

static void make_dirs(const char *rel)
{
	char path[PATH_MAX], *p;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	for (p = path + strlen(tmpdir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
}

static void write_file(const char *rel, const char *content, size_t len, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	make_dirs(rel);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static char *abs_path(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, rel);
	return p;
}

static void sha_hex(const char *content, size_t len, char out[65])
{
	uint8_t d[32];

	assert_true(EVP_Digest(content, len, d, NULL, EVP_sha256(), NULL));
	santa_hex(d, sizeof(d), out);
}

static int make_tree(void **state)
{
	const char *desktop = "[Desktop Entry]\nName[fr]=Mon App\nName=My App\nExec=main\n";

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-bundle-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));

	/* An application directory: three executables (one also reached
	 * by a hard link and a symlink) and three files that are not. */
	write_file("App/app.desktop", desktop, strlen(desktop), 0644);
	write_file("App/bin/main", elf_a, sizeof(elf_a), 0755);
	write_file("App/bin/helper.sh", script, strlen(script), 0755);
	write_file("App/lib/deep/er/tool", elf_b, sizeof(elf_b), 0700);
	write_file("App/lib/plugin.so", elf_b, sizeof(elf_b), 0644);
	write_file("App/README", "not a program\n", 14, 0755);
	write_file("App/empty", "", 0, 0755);
	assert_int_equal(link(abs_path("App/bin/main"), abs_path("App/bin/main-again")), 0);
	assert_int_equal(symlink("main", abs_path("App/bin/link")), 0);
	assert_int_equal(mkfifo(abs_path("App/bin/fifo"), 0755), 0);
	/* A nested AppDir: the outer directory is the bundle. */
	write_file("App/plugins/Inner/AppRun", script, strlen(script), 0755);
	write_file("App/plugins/Inner/inner", elf_a, sizeof(elf_a), 0755);

	/* An application root like /opt. */
	write_file("opt/Tool/bin/tool", elf_a, sizeof(elf_a), 0755);
	write_file("opt/Tool/share/x.sh", script, strlen(script), 0755);
	write_file("opt/loose", elf_a, sizeof(elf_a), 0755);

	/* Nothing marks this one. */
	write_file("plain/dir/prog", elf_a, sizeof(elf_a), 0755);
	return 0;
}

static int remove_tree(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const bundle_opts no_dpkg = { .dpkg_admindir = "", .app_root = "" };

static void test_hash_of(void **state)
{
	const char *h[] = { "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" };
	const char *bad[] = { "abc" };
	char out[65];

	/* Computed independently: sha256 of the three sorted
	 * case-insensitively and concatenated as given. */
	assert_int_equal(bundle_hash_of(h, 3, out), 0);
	assert_string_equal(out, "a0c44021303c13010ecf6a10dc8d62d0"
				 "c46dbecad29609d84c3ff6e18e6cee63");
	assert_int_equal(bundle_hash_of(NULL, 0, out), 0);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	assert_int_equal(bundle_hash_of(bad, 1, out), -EINVAL);
}

static void test_desktop_name(void **state)
{
	const char *t1 = "[Other]\nName=No\n[Desktop Entry]\r\nName[de]=Nein\r\nName = Yes \r\n";
	const char *t2 = "[Desktop Entry]\nNameless=1\nComment=x\n";
	const char *t3 = "[Desktop Entry]\nName=a\001b";
	char out[16];

	assert_true(bundle_desktop_name(t1, strlen(t1), out, sizeof(out)));
	assert_string_equal(out, "Yes ");
	assert_false(bundle_desktop_name(t2, strlen(t2), out, sizeof(out)));
	assert_true(bundle_desktop_name(t3, strlen(t3), out, sizeof(out)));
	assert_string_equal(out, "a?b");
	assert_true(bundle_desktop_name(t3, strlen(t3), out, 2));
	assert_string_equal(out, "a");
}

static void test_directory_bundle(void **state)
{
	char ha[65], hb[65], hs[65], want[65];
	bundle b;

	assert_int_equal(bundle_locate(abs_path("App/lib/deep/er/tool"), &no_dpkg, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DIRECTORY);
	assert_string_equal(b.path, abs_path("App"));
	assert_string_equal(b.id, "App");
	assert_string_equal(b.name, "My App");
	assert_string_equal(b.executable_rel_path, "lib/deep/er/tool");
	bundle_done(&b);

	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &no_dpkg, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DIRECTORY);
	/* main (once, with its hard link), helper.sh, tool, and the nested
	 * AppDir's AppRun and inner. */
	assert_int_equal(b.n_binaries, 5);
	sha_hex(elf_a, sizeof(elf_a), ha);
	sha_hex(elf_b, sizeof(elf_b), hb);
	sha_hex(script, strlen(script), hs);
	const char *five[] = { ha, hs, hb, hs, ha };

	assert_int_equal(bundle_hash_of(five, 5, want), 0);
	assert_string_equal(b.hash, want);
	for (size_t i = 1; i < b.n_binaries; i++)
		assert_true(strcmp(b.binaries[i - 1].path, b.binaries[i].path) < 0);
	assert_string_equal(b.binaries[0].path, abs_path("App/bin/helper.sh"));
	assert_string_equal(b.binaries[0].sha256, hs);
	bundle_done(&b);
}

static void test_nested_marker_takes_outermost(void **state)
{
	bundle b;

	assert_int_equal(bundle_locate(abs_path("App/plugins/Inner/inner"), &no_dpkg, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DIRECTORY);
	assert_string_equal(b.path, abs_path("App"));
	assert_string_equal(b.executable_rel_path, "plugins/Inner/inner");
	bundle_done(&b);
}

static void test_app_root(void **state)
{
	char *opt = strdup(abs_path("opt"));
	bundle_opts o = { .dpkg_admindir = "", .app_root = opt };
	bundle b;

	assert_int_equal(bundle_compute(abs_path("opt/Tool/bin/tool"), &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DIRECTORY);
	assert_string_equal(b.path, abs_path("opt/Tool"));
	assert_string_equal(b.id, "Tool");
	assert_string_equal(b.name, "Tool");
	assert_int_equal(b.n_binaries, 2);
	bundle_done(&b);

	/* Directly in the root: not a bundle by this rule. */
	assert_int_equal(bundle_locate(abs_path("opt/loose"), &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_NONE);
	free(opt);
}

static void test_no_bundle(void **state)
{
	bundle b;

	assert_int_equal(bundle_compute(abs_path("plain/dir/prog"), &no_dpkg, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_NONE);
	assert_int_equal(bundle_locate("relative/path", &no_dpkg, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App/../App/bin/main"), &no_dpkg, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App//bin/main"), &no_dpkg, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App/bin"), &no_dpkg, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App/bin/link"), &no_dpkg, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App/missing"), &no_dpkg, &b), -ENOENT);
}

static void test_limits(void **state)
{
	atomic_bool cancel = true;
	bundle_opts o = no_dpkg;
	bundle b;

	o.max_binaries = 2;
	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &o, &b), -E2BIG);
	o.max_binaries = 0;
	o.max_entries = 3;
	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &o, &b), -E2BIG);
	o.max_entries = 0;
	o.deadline_usec = 1;
	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &o, &b), -ETIME);
	o.deadline_usec = 0;
	o.cancel = &cancel;
	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &o, &b), -ECANCELED);
}

static void count_progress(const bundle_progress *p, void *userdata)
{
	bundle_progress *last = userdata;

	assert_true(p->hashed_count <= p->binary_count);
	assert_true(p->hashed_count >= last->hashed_count);
	*last = *p;
}

static void test_progress(void **state)
{
	bundle_progress last = { 0 };
	bundle_opts o = no_dpkg;
	bundle b;

	o.progress = count_progress;
	o.userdata = &last;
	assert_int_equal(bundle_compute(abs_path("App/bin/main"), &o, &b), 0);
	assert_true(last.done);
	assert_int_equal(last.binary_count, 5);
	assert_int_equal(last.hashed_count, 5);
	assert_true(last.file_count >= 14);
	bundle_done(&b);
}

/* A fake dpkg database listing files of the temporary tree. */
static void make_dpkg(void)
{
	char list[4 * PATH_MAX];
	const char *status =
		"Package: other\nStatus: install ok installed\nVersion: 9\n\n"
		"Package: fakepkg\nStatus: deinstall ok config-files\nVersion: 0.1\n\n"
		"Package: fakepkg\nStatus: install ok installed\nArchitecture: amd64\n"
		"Description: a fake\n package\nVersion: 1.2-3\n";

	snprintf(list, sizeof(list), "/.\n%s\n%s\n%s\n%s\n", abs_path("opt"),
		 abs_path("opt/Tool/bin/tool"), abs_path("opt/Tool/share/x.sh"),
		 abs_path("App/README"));
	write_file("dpkg/info/fakepkg:amd64.list", list, strlen(list), 0644);
	write_file("dpkg/info/aaa.list", "/.\n/nothing/here\n", 17, 0644);
	write_file("dpkg/info/fakepkg:amd64.md5sums", "x\n", 2, 0644);
	write_file("dpkg/status", status, strlen(status), 0644);
}

static void test_dpkg_bundle(void **state)
{
	char *admindir = strdup(abs_path("dpkg")), *opt = strdup(abs_path("opt"));
	bundle_opts o = { .dpkg_admindir = admindir, .app_root = opt };
	char version[8];
	bundle b;

	make_dpkg();
	assert_int_equal(bundle_compute(abs_path("opt/Tool/share/x.sh"), &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DEB);
	assert_string_equal(b.id, "fakepkg");
	assert_string_equal(b.name, "fakepkg");
	assert_string_equal(b.version, "1.2-3");
	assert_string_equal(b.path, abs_path("dpkg/info/fakepkg:amd64.list"));
	assert_string_equal(b.executable_rel_path, abs_path("opt/Tool/share/x.sh") + 1);
	assert_int_equal(b.n_binaries, 2);
	bundle_done(&b);

	/* Not listed: the /opt rule applies. */
	assert_int_equal(bundle_locate(abs_path("opt/Tool/bin/../bin/tool"), &o, &b), -EINVAL);
	assert_int_equal(bundle_locate(abs_path("App/bin/main"), &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DIRECTORY);
	bundle_done(&b);

	assert_string_equal(dpkg_package_name("libc6:amd64", version, sizeof(version)), "libc6");
	assert_string_equal(dpkg_package_name("longername", version, sizeof(version)), "longern");
	free(admindir);
	free(opt);
}

/* A package installed below another root, as dpkg --root does. */
static void test_dpkg_root(void **state)
{
	const char *list = "/.\n/usr\n/usr/bin\n/usr/bin/prog\n/usr/bin/helper\n/usr/share/x\n";
	const char *status = "Package: rooted\nStatus: install ok installed\nVersion: 2\n";
	char *root = strdup(abs_path("rooted"));
	bundle_opts o = { .dpkg_root = root, .app_root = "" };
	char want[65], ha[65], hs[65];
	bundle b;

	write_file("rooted/var/lib/dpkg/info/rooted.list", list, strlen(list), 0644);
	write_file("rooted/var/lib/dpkg/status", status, strlen(status), 0644);
	write_file("rooted/usr/bin/prog", elf_a, sizeof(elf_a), 0755);
	write_file("rooted/usr/bin/helper", script, strlen(script), 0755);
	write_file("rooted/usr/share/x", script, strlen(script), 0644);

	assert_int_equal(bundle_compute(abs_path("rooted/usr/bin/prog"), &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DEB);
	assert_string_equal(b.id, "rooted");
	assert_string_equal(b.version, "2");
	assert_string_equal(b.executable_rel_path, "usr/bin/prog");
	assert_string_equal(b.path, abs_path("rooted/var/lib/dpkg/info/rooted.list"));
	assert_int_equal(b.n_binaries, 2);
	assert_string_equal(b.binaries[0].path, abs_path("rooted/usr/bin/helper"));
	sha_hex(elf_a, sizeof(elf_a), ha);
	sha_hex(script, strlen(script), hs);
	const char *two[] = { ha, hs };

	assert_int_equal(bundle_hash_of(two, 2, want), 0);
	assert_string_equal(b.hash, want);
	bundle_done(&b);
	free(root);
}

static void test_real_dpkg(void **state)
{
	bundle_opts o = { 0 };
	bundle b;

	if (access("/var/lib/dpkg/info/coreutils.list", R_OK) != 0) {
		skip();
		return;
	}
	/* /usr/bin/ls is listed as /bin/ls before the /usr merge: found by
	 * identity, not by name. */
	assert_int_equal(bundle_locate("/usr/bin/ls", &o, &b), 0);
	assert_int_equal(b.kind, BUNDLE_KIND_DEB);
	assert_string_equal(b.id, "coreutils");
	assert_true(b.version[0] != '\0');
	bundle_done(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_of),
		cmocka_unit_test(test_desktop_name),
		cmocka_unit_test(test_directory_bundle),
		cmocka_unit_test(test_nested_marker_takes_outermost),
		cmocka_unit_test(test_app_root),
		cmocka_unit_test(test_no_bundle),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_dpkg_bundle),
		cmocka_unit_test(test_dpkg_root),
		cmocka_unit_test(test_real_dpkg),
	};

	return cmocka_run_group_tests(tests, make_tree, remove_tree);
}
