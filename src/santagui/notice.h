/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What santagui shows for each notification santad posts: a summary line,
 * a plain-text body, and for blocks the detail URL and its button label.
 * The desktop and terminal displays show the same notice.
 *
 * The detail URL is EventDetailURL (or the rule's custom URL) with the
 * original's placeholders replaced, each value percent-encoded:
 *   %file_sha%, %file_identifier%   the file's SHA-256
 *   %bundle_or_file_identifier%     the bundle hash if known, else the SHA-256
 *   %file_bundle_id%                the bundle id (package name), if known
 *   %username%                      the user who ran the program
 *   %machine_id%, %hostname%, %serial%, %uuid%   the machine, from santad
 *   %team_id%, %signing_id%, %cdhash%             empty: no Linux meaning yet
 * A placeholder is '%', a lower-case letter, then letters and '_', then
 * '%'; unknown placeholders are replaced by nothing. Anything else,
 * including a '%' that starts no placeholder ("%20"), is copied as is.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "notifier.pb-c.h"

typedef enum notice_kind {
	NOTICE_BLOCK = 1,
	NOTICE_MODE,
	NOTICE_RULE_SYNC,
} notice_kind;

/* The longest detail URL a notice carries, expanded. */
#define NOTICE_URL_MAX 8192u

typedef struct notice {
	notice_kind kind;
	char *summary;        /* one line */
	char *message;        /* the admin's or default message, plain text */
	char *body;           /* message, then the facts, plain text */
	char *url;            /* expanded detail URL, or NULL */
	bool url_too_long;    /* the template expanded past its bound: no URL */
	char *action_label;   /* EventDetailText or "Open...", when url */
	char *path;           /* blocks: the file's full path */
	char *sha256;
	char *reason;
	double raised_at;
	unsigned dropped_before;
} notice;

void notice_done(notice *n);

/* Build the notice for each kind of notification. -ENOMEM or 0. */
int notice_block(const Santa__BlockNotification *b, notice *ret);
int notice_mode(const Santa__ClientModeNotification *m, notice *ret);
int notice_rule_sync(const Santa__RuleSyncNotification *s, notice *ret);

/* Values for the detail URL's placeholders (NULL = empty). */
typedef struct notice_url_values {
	const char *file_sha;
	const char *bundle_hash;
	const char *bundle_id;
	const char *username;
	const char *machine_id;
	const char *hostname;
	const char *serial;
	const char *uuid;
} notice_url_values;

/* TEMPLATE with its placeholders replaced, in *RET (malloc'd). Output is
 * bounded (-E2BIG past 8 KiB). */
int notice_expand_url(const char *tmpl, const notice_url_values *v, char **ret);

/* The original's messages use "<br />" for line breaks: plain text with
 * newlines instead, control characters other than newline dropped. */
char *notice_plain_text(const char *s);

/* S with &, < and > escaped, for a notification server's body markup. */
char *notice_markup_escape(const char *s);
