/* SPDX-License-Identifier: Apache-2.0 */
#include "userns.h"

#include <stdio.h>
#include <stdlib.h>

/* The value of the sysctl NAME (dotted), or -1 when it is missing or
 * unreadable. */
static long read_sysctl(const char *proc, const char *name)
{
	char path[256], buf[32];
	long v = -1;
	FILE *f;
	int n = snprintf(path, sizeof(path), "%s/sys/", proc);

	for (const char *c = name; *c && n < (int)sizeof(path) - 1; c++)
		path[n++] = *c == '.' ? '/' : *c;
	path[n] = '\0';
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

int santa_userns_unprivileged(const char *proc, char *why, size_t size)
{
	/* Each closes the door its own way: no user namespaces at all; no
	 * unprivileged ones (Debian's patch); unprivileged ones without the
	 * capabilities that mounting needs (AppArmor, as Ubuntu sets it). */
	static const struct {
		const char *name;
		long closed;
	} knobs[] = {
		{ "user.max_user_namespaces", 0 },
		{ "kernel.unprivileged_userns_clone", 0 },
		{ "kernel.apparmor_restrict_unprivileged_userns", 1 },
	};

	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		if (read_sysctl(proc, knobs[i].name) == knobs[i].closed) {
			snprintf(why, size, "unprivileged users cannot mount filesystems of their "
				 "own (sysctl %s = %ld)", knobs[i].name, knobs[i].closed);
			return 0;
		}
	}
	snprintf(why, size, "unprivileged users may create user namespaces and mount "
		 "filesystems in them that santad never watches, so programs run from there "
		 "unchecked even in Lockdown; set the sysctl kernel.unprivileged_userns_clone=0 "
		 "(Debian) or user.max_user_namespaces=0 where Lockdown must hold");
	return 1;
}
