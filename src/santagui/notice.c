/* SPDX-License-Identifier: Apache-2.0 */
#include "notice.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NOTICE_DEFAULT_BLOCK \
	"The following application has been blocked from executing."
#define NOTICE_DEFAULT_ACTION "Open..."

/* A growing string; on allocation failure it stays failed and returns
 * NULL at the end, so that callers check once. */
typedef struct notice_buf {
	char *s;
	size_t len, cap;
	bool failed;
} notice_buf;

static void buf_append(notice_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 128;
		char *ns;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_puts(notice_buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void buf_printf(notice_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static char *buf_take(notice_buf *b)
{
	if (b->failed || !b->s) {
		free(b->s);
		return b->failed ? NULL : strdup("");
	}
	return b->s;
}

void notice_done(notice *n)
{
	if (!n)
		return;
	free(n->summary);
	free(n->message);
	free(n->body);
	free(n->url);
	free(n->action_label);
	free(n->path);
	free(n->sha256);
	free(n->reason);
	memset(n, 0, sizeof(*n));
}

char *notice_plain_text(const char *s)
{
	notice_buf b = { 0 };

	while (s && *s) {
		if (strncmp(s, "<br />", 6) == 0 || strncmp(s, "<br/>", 5) == 0 ||
		    strncmp(s, "<br>", 4) == 0) {
			buf_puts(&b, "\n");
			s += s[3] == '>' ? 4 : s[3] == '/' ? 5 : 6;
			continue;
		}
		if ((unsigned char)*s >= 0x20 || *s == '\n')
			buf_append(&b, s, 1);
		s++;
	}
	return buf_take(&b);
}

char *notice_markup_escape(const char *s)
{
	notice_buf b = { 0 };

	for (; s && *s; s++) {
		if (*s == '&')
			buf_puts(&b, "&amp;");
		else if (*s == '<')
			buf_puts(&b, "&lt;");
		else if (*s == '>')
			buf_puts(&b, "&gt;");
		else
			buf_append(&b, s, 1);
	}
	return buf_take(&b);
}

/* --- Detail URL --- */

static const char *notice_placeholder(const char *name, size_t len, const notice_url_values *v)
{
	static const struct {
		const char *name;
		size_t offset;
	} table[] = {
		{ "file_sha", offsetof(notice_url_values, file_sha) },
		{ "file_identifier", offsetof(notice_url_values, file_sha) },
		{ "file_bundle_id", offsetof(notice_url_values, bundle_id) },
		{ "username", offsetof(notice_url_values, username) },
		{ "machine_id", offsetof(notice_url_values, machine_id) },
		{ "hostname", offsetof(notice_url_values, hostname) },
		{ "serial", offsetof(notice_url_values, serial) },
		{ "uuid", offsetof(notice_url_values, uuid) },
	};

	if (len == 25 && memcmp(name, "bundle_or_file_identifier", 25) == 0)
		return v->bundle_hash && v->bundle_hash[0] ? v->bundle_hash : v->file_sha;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
			return *(const char *const *)((const char *)v + table[i].offset);
	return NULL;   /* unknown, or team_id & co.: empty */
}

static void notice_url_encode(notice_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			buf_append(b, s, 1);
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

			buf_append(b, esc, 3);
		}
	}
}

/* Length of the placeholder name at S (after a '%'), if S holds one
 * closed by '%'; else 0. */
static size_t notice_placeholder_len(const char *s)
{
	size_t n = 0;

	if (*s < 'a' || *s > 'z')
		return 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_')
		n++;
	return s[n] == '%' ? n : 0;
}

int notice_expand_url(const char *tmpl, const notice_url_values *v, char **ret)
{
	notice_buf b = { 0 };
	const char *p = tmpl;

	while (*p) {
		size_t n = *p == '%' ? notice_placeholder_len(p + 1) : 0;

		if (n) {
			notice_url_encode(&b, notice_placeholder(p + 1, n, v));
			p += n + 2;
		} else {
			buf_append(&b, p, 1);
			p++;
		}
		if (b.len > NOTICE_URL_MAX) {
			free(b.s);
			return -E2BIG;
		}
	}
	*ret = buf_take(&b);
	return *ret ? 0 : -ENOMEM;
}

/* --- Notices --- */

static const char *nz(const char *s)
{
	return s ? s : "";
}

static void notice_reason_line(notice_buf *b, const Santa__BlockNotification *n)
{
	const Santa__Rule *rule = n->rule;
	const char *reason = nz(n->reason);

	if (rule && rule->identifier && rule->identifier[0]) {
		const char *type = santa_rule_type_name(rule->rule_type);
		const char *policy = santa_policy_name(rule->policy);

		buf_printf(b, "Rule: %s %s rule, identifier %s\n", type ? type : "unknown",
			   policy ? policy : "unknown", rule->identifier);
	} else if (strcmp(reason, "SCOPE") == 0) {
		buf_puts(b, "Reason: its path is blocked (BlockedPathRegex)\n");
	} else if (strcmp(reason, "UNKNOWN") == 0 || !reason[0]) {
		buf_puts(b, "Reason: unknown application in Lockdown mode\n");
	} else {
		buf_printf(b, "Reason: %s\n", reason);
	}
}

static void notice_facts(notice_buf *b, const Santa__BlockNotification *n, const char *path)
{
	const Santa__Event *e = n->event;

	buf_printf(b, "\n\nApplication: %s\n", nz(e->file_name));
	buf_puts(b, "Path: ");
	buf_puts(b, path);
	buf_printf(b, "\nIdentifier: %s\n", nz(e->file_sha256));
	if (e->file_bundle_hash && e->file_bundle_hash[0])
		buf_printf(b, "Bundle identifier: %s\n", e->file_bundle_hash);
	if (e->parent_name && e->parent_name[0])
		buf_printf(b, "Parent: %s (pid %d)\n", e->parent_name, e->ppid);
	if (e->executing_user && e->executing_user[0])
		buf_printf(b, "User: %s\n", e->executing_user);
	notice_reason_line(b, n);
	if (n->dropped_before)
		buf_printf(b, "(%u earlier notifications were dropped while no GUI was "
			   "connected)\n", n->dropped_before);
}

static char *notice_join_path(const Santa__Event *e)
{
	const char *dir = nz(e->file_path), *name = nz(e->file_name);
	char *p;

	if (asprintf(&p, "%s%s%s", dir, dir[0] && strcmp(dir, "/") != 0 ? "/" : "", name) < 0)
		return NULL;
	return p;
}

static int notice_block_url(const Santa__BlockNotification *b, notice *ret)
{
	const Santa__Event *e = b->event;
	notice_url_values v = {
		.file_sha = e->file_sha256,
		.bundle_hash = e->file_bundle_hash,
		.bundle_id = e->file_bundle_id,
		.username = e->executing_user,
		.machine_id = b->machine_id,
		.hostname = b->hostname,
		.serial = b->serial,
		.uuid = b->uuid,
	};
	int r;

	if (!b->url_template || !b->url_template[0])
		return 0;
	r = notice_expand_url(b->url_template, &v, &ret->url);
	if (r == -E2BIG) {
		/* The block is still worth showing, without its link. */
		ret->url_too_long = true;
		return 0;
	}
	if (r < 0)
		return r;
	ret->action_label = strdup(b->detail_text && b->detail_text[0] ? b->detail_text
									: NOTICE_DEFAULT_ACTION);
	return ret->action_label ? 0 : -ENOMEM;
}

int notice_block(const Santa__BlockNotification *b, notice *ret)
{
	static const Santa__Event empty = SANTA__EVENT__INIT;
	Santa__BlockNotification copy = *b;
	notice_buf body = { 0 };
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!copy.event)
		copy.event = (Santa__Event *)&empty;
	ret->kind = NOTICE_BLOCK;
	ret->raised_at = b->raised_at;
	ret->dropped_before = b->dropped_before;
	ret->path = notice_join_path(copy.event);
	ret->sha256 = strdup(nz(copy.event->file_sha256));
	ret->reason = strdup(nz(b->reason));
	ret->message = notice_plain_text(b->message && b->message[0] ? b->message
								  : NOTICE_DEFAULT_BLOCK);
	if (asprintf(&ret->summary, "Santa blocked %s", nz(copy.event->file_name)) < 0)
		ret->summary = NULL;
	if (!ret->path || !ret->sha256 || !ret->reason || !ret->message || !ret->summary)
		goto nomem;

	buf_puts(&body, ret->message);
	notice_facts(&body, &copy, ret->path);
	ret->body = buf_take(&body);
	if (!ret->body)
		goto nomem;
	r = notice_block_url(&copy, ret);
	if (r < 0) {
		notice_done(ret);
		return r;
	}
	return 0;
nomem:
	notice_done(ret);
	return -ENOMEM;
}

static int notice_simple(notice_kind kind, const char *summary, const char *message,
			 const char *fallback, double raised_at, unsigned dropped, notice *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = kind;
	ret->raised_at = raised_at;
	ret->dropped_before = dropped;
	ret->summary = strdup(summary);
	ret->message = notice_plain_text(message && message[0] ? message : fallback);
	if (ret->message) {
		if (dropped) {
			if (asprintf(&ret->body, "%s\n(%u earlier notifications were dropped)",
				     ret->message, dropped) < 0)
				ret->body = NULL;
		} else {
			ret->body = strdup(ret->message);
		}
	}
	if (!ret->summary || !ret->message || !ret->body) {
		notice_done(ret);
		return -ENOMEM;
	}
	return 0;
}

int notice_mode(const Santa__ClientModeNotification *m, notice *ret)
{
	bool lockdown = m->mode == SANTA__CLIENT_MODE__LOCKDOWN;
	const char *fallback = lockdown ? "Switching into Lockdown mode"
					: "Switching into Monitor mode";

	return notice_simple(NOTICE_MODE,
			     lockdown ? "Santa: Lockdown mode" : "Santa: Monitor mode",
			     m->message, fallback, m->raised_at, m->dropped_before, ret);
}

int notice_rule_sync(const Santa__RuleSyncNotification *s, notice *ret)
{
	return notice_simple(NOTICE_RULE_SYNC, "Santa: rules updated", s->message,
			     "Requested application can now be run", s->raised_at,
			     s->dropped_before, ret);
}
