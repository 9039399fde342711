/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What preflight tells the server about this machine, gathered the Linux
 * way: os_version from os-release (Debian's point release when it has one),
 * os_build from the kernel release, model and serial from DMI, the primary
 * user from the active seat. ROOT prefixes every path read (NULL or "" for
 * the real system), so that tests can point it at a fake tree.
 */
#pragma once

typedef struct sync_sysinfo {
	char *serial_num;
	char *hostname;
	char *os_version;
	char *os_build;
	char *model_identifier;
	char *primary_user;
	char *machine_id;
} sync_sysinfo;

/* Fill INFO; MACHINE_ID is the configured one, or NULL to read
 * ROOT/etc/machine-id. Fields never end up NULL. Returns 0 or -ENOMEM. */
int sync_sysinfo_gather(const char *root, const char *machine_id, sync_sysinfo *info);
void sync_sysinfo_done(sync_sysinfo *info);

/* The os_version preflight sends, from an os-release file's contents and a
 * /etc/debian_version file's (either may be NULL): malloc'd, "" if none. */
char *sync_sysinfo_os_version(const char *os_release, const char *debian_version);
