/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether unprivileged users may create user namespaces, in which they can
 * mount filesystems (a tmpfs, say) that santad never sees: its fanotify
 * marks cover the mounts of its own mount namespace, and a superblock made
 * in another namespace carries none. A program run from there is not
 * authorized at all, so LOCKDOWN is a boundary only where the answer is no.
 */
#pragma once

#include <stddef.h>

/* 1 when unprivileged users may create user namespaces, 0 when a sysctl
 * forbids it (WHY names which), with a sentence for the administrator in
 * WHY either way. PROC is "/proc" but for tests. */
int santa_userns_unprivileged(const char *proc, char *why, size_t size);
