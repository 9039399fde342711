/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <utmpx.h>

#include <systemd/sd-login.h>

#include "sync_sysinfo.h"

#define SYSINFO_MAX_FILE 4096

/* The first SYSINFO_MAX_FILE bytes of ROOT/PATH with trailing whitespace
 * removed, or NULL if it cannot be read or is empty. */
static char *sysinfo_read(const char *root, const char *path)
{
	char full[512], *buf;
	ssize_t n;
	int fd;

	snprintf(full, sizeof(full), "%s%s", root ? root : "", path);
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	buf = malloc(SYSINFO_MAX_FILE + 1);
	n = buf ? read(fd, buf, SYSINFO_MAX_FILE) : -1;
	close(fd);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	if (n == 0 || strlen(buf) != (size_t)n) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* VALUE of KEY=VALUE in an os-release text, unquoted, into OUT. */
static bool sysinfo_os_release_value(const char *text, const char *key, char *out,
				     size_t size)
{
	size_t klen = strlen(key), n = 0;
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		const char *v = line + klen + 1;

		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			if (*v == '"' || *v == '\'')
				v++;
			while (*v && *v != '\n' && *v != '"' && *v != '\'' && n + 1 < size)
				out[n++] = *v++;
			out[n] = '\0';
			return n > 0;
		}
		line = eol ? eol + 1 : NULL;
	}
	return false;
}

static bool sysinfo_is_version(const char *s)
{
	if (!isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != '.')
			return false;
	return true;
}

char *sync_sysinfo_os_version(const char *os_release, const char *debian_version)
{
	char id[64] = "";
	size_t n;

	if (os_release)
		sysinfo_os_release_value(os_release, "VERSION_ID", id, sizeof(id));
	/* Debian's VERSION_ID is "12"; its point release ("12.5") is what
	 * servers that compare versions expect, like macOS's "12.5". */
	n = strlen(id);
	if (debian_version && n && strncmp(debian_version, id, n) == 0 &&
	    debian_version[n] == '.' && sysinfo_is_version(debian_version) &&
	    strlen(debian_version) < 64)
		return strdup(debian_version);
	return strdup(id);
}

static char *sysinfo_os_version(const char *root)
{
	char *rel = sysinfo_read(root, "/etc/os-release");
	char *deb, *v;

	if (!rel)
		rel = sysinfo_read(root, "/usr/lib/os-release");
	deb = sysinfo_read(root, "/etc/debian_version");
	v = sync_sysinfo_os_version(rel, deb);
	free(rel);
	free(deb);
	return v;
}

static char *sysinfo_os_build(const char *root)
{
	char *v = sysinfo_read(root, "/proc/sys/kernel/osrelease");
	struct utsname u;

	if (v || (root && *root))
		return v;
	return uname(&u) == 0 ? strdup(u.release) : NULL;
}

static char *sysinfo_hostname(const char *root)
{
	char buf[256];

	if (root && *root)
		return sysinfo_read(root, "/etc/hostname");
	if (gethostname(buf, sizeof(buf)) < 0)
		return NULL;
	buf[sizeof(buf) - 1] = '\0';
	return strdup(buf);
}

/* DMI placeholders that firmware vendors leave instead of a serial. */
static bool sysinfo_placeholder(const char *s)
{
	static const char *const junk[] = {
		"To be filled by O.E.M.", "Not Specified", "System Serial Number",
		"Default string", "None", "0",
	};

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (strcasecmp(s, junk[i]) == 0)
			return true;
	return false;
}

static char *sysinfo_user_name(uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return NULL;
	return strdup(res->pw_name);
}

/* The user of the active session on seat0, else the first user logged in
 * on a terminal. */
static char *sysinfo_primary_user(const char *root)
{
	struct utmpx *u;
	char *name = NULL;
	uid_t uid;

	if (root && *root)
		return sysinfo_read(root, "/primary_user");
	if (sd_seat_get_active("seat0", NULL, &uid) >= 0)
		name = sysinfo_user_name(uid);
	if (name)
		return name;
	setutxent();
	while ((u = getutxent()) != NULL) {
		if (u->ut_type == USER_PROCESS && u->ut_user[0]) {
			name = strndup(u->ut_user, sizeof(u->ut_user));
			break;
		}
	}
	endutxent();
	return name;
}

static int sysinfo_default(char **field, const char *fallback)
{
	if (*field)
		return 0;
	*field = strdup(fallback ? fallback : "");
	return *field ? 0 : -ENOMEM;
}

int sync_sysinfo_gather(const char *root, const char *machine_id, sync_sysinfo *info)
{
	int r = 0;

	memset(info, 0, sizeof(*info));
	info->machine_id = machine_id && *machine_id ? strdup(machine_id) :
						       sysinfo_read(root, "/etc/machine-id");
	info->hostname = sysinfo_hostname(root);
	info->os_version = sysinfo_os_version(root);
	info->os_build = sysinfo_os_build(root);
	info->model_identifier = sysinfo_read(root, "/sys/class/dmi/id/product_name");
	info->primary_user = sysinfo_primary_user(root);
	/* product_serial is readable by root only; as nobody, or when the
	 * firmware left a placeholder, the machine id stands in for it. */
	info->serial_num = sysinfo_read(root, "/sys/class/dmi/id/product_serial");
	if (info->serial_num && sysinfo_placeholder(info->serial_num)) {
		free(info->serial_num);
		info->serial_num = NULL;
	}

	r |= sysinfo_default(&info->machine_id, "");
	r |= sysinfo_default(&info->serial_num, info->machine_id);
	r |= sysinfo_default(&info->hostname, "");
	r |= sysinfo_default(&info->os_version, "");
	r |= sysinfo_default(&info->os_build, "");
	r |= sysinfo_default(&info->model_identifier, "");
	r |= sysinfo_default(&info->primary_user, "");
	if (r) {
		sync_sysinfo_done(info);
		return -ENOMEM;
	}
	return 0;
}

void sync_sysinfo_done(sync_sysinfo *info)
{
	if (!info)
		return;
	free(info->serial_num);
	free(info->hostname);
	free(info->os_version);
	free(info->os_build);
	free(info->model_identifier);
	free(info->primary_user);
	free(info->machine_id);
	memset(info, 0, sizeof(*info));
}
