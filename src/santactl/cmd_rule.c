/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl rule`: add, remove, check, import and export rules, with the
 * original's flags and messages.
 *
 * Changes go to santad's AddRules in one transaction. A large import is
 * sent in several calls that share a batch id (santad stages them and
 * applies them together on the last), so that no single message nears
 * the IPC size limit while the import stays all or nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "rule_io.h"
#include "santactl.h"
#include "santad.pb-c.h"
#include "sha256.h"

/* One AddRules call carries at most this many rules or bytes of them. */
#define RULE_BATCH_MAX_RULES 10000
#define RULE_BATCH_MAX_BYTES (1u << 20)
/* RetrieveAllRules page size (santad caps it at 1000). */
#define RULE_EXPORT_PAGE 1000

typedef struct rule_opts {
	int policy;                /* Santa__Policy, 0 = none given */
	int type;                  /* Santa__RuleType */
	bool check;
	int cleanup;               /* Santa__RuleCleanup */
	const char *identifier;
	const char *path;
	const char *message;
	const char *import_file;
	const char *export_file;
} rule_opts;

enum {
	RULE_OPT_ALLOW = 1, RULE_OPT_BLOCK, RULE_OPT_SILENT_BLOCK, RULE_OPT_COMPILER,
	RULE_OPT_REMOVE, RULE_OPT_CHECK, RULE_OPT_CERTIFICATE, RULE_OPT_TEAMID,
	RULE_OPT_SIGNINGID, RULE_OPT_CDHASH, RULE_OPT_PATH, RULE_OPT_IDENTIFIER,
	RULE_OPT_MESSAGE, RULE_OPT_IMPORT, RULE_OPT_EXPORT, RULE_OPT_CLEAN,
	RULE_OPT_CLEAN_ALL,
};

static const santactl_opt rule_opts_table[] = {
	{ "--allow", NULL, false, RULE_OPT_ALLOW },
	{ "--whitelist", NULL, false, RULE_OPT_ALLOW },
	{ "--block", NULL, false, RULE_OPT_BLOCK },
	{ "--blacklist", NULL, false, RULE_OPT_BLOCK },
	{ "--silent-block", NULL, false, RULE_OPT_SILENT_BLOCK },
	{ "--silent-blacklist", NULL, false, RULE_OPT_SILENT_BLOCK },
	{ "--compiler", NULL, false, RULE_OPT_COMPILER },
	{ "--remove", NULL, false, RULE_OPT_REMOVE },
	{ "--check", NULL, false, RULE_OPT_CHECK },
	{ "--certificate", NULL, false, RULE_OPT_CERTIFICATE },
	{ "--teamid", NULL, false, RULE_OPT_TEAMID },
	{ "--signingid", NULL, false, RULE_OPT_SIGNINGID },
	{ "--cdhash", NULL, false, RULE_OPT_CDHASH },
	{ "--path", NULL, true, RULE_OPT_PATH },
	{ "--identifier", NULL, true, RULE_OPT_IDENTIFIER },
	{ "--sha256", NULL, true, RULE_OPT_IDENTIFIER },
	{ "--message", NULL, true, RULE_OPT_MESSAGE },
	{ "--import", NULL, true, RULE_OPT_IMPORT },
	{ "--export", NULL, true, RULE_OPT_EXPORT },
	{ "--clean", NULL, false, RULE_OPT_CLEAN },
	{ "--clean-all", NULL, false, RULE_OPT_CLEAN_ALL },
	{ 0 },
};

/* What each flag sets: a policy, a rule type or a cleanup. */
static const struct {
	int opt;
	int policy;
	int type;
	int cleanup;
} rule_flag_effects[] = {
	{ RULE_OPT_ALLOW, SANTA__POLICY__ALLOWLIST, 0, 0 },
	{ RULE_OPT_BLOCK, SANTA__POLICY__BLOCKLIST, 0, 0 },
	{ RULE_OPT_SILENT_BLOCK, SANTA__POLICY__SILENT_BLOCKLIST, 0, 0 },
	{ RULE_OPT_COMPILER, SANTA__POLICY__ALLOWLIST_COMPILER, 0, 0 },
	{ RULE_OPT_REMOVE, SANTA__POLICY__REMOVE, 0, 0 },
	{ RULE_OPT_CERTIFICATE, 0, SANTA__RULE_TYPE__CERTIFICATE, 0 },
	{ RULE_OPT_TEAMID, 0, SANTA__RULE_TYPE__TEAMID, 0 },
	{ RULE_OPT_SIGNINGID, 0, SANTA__RULE_TYPE__SIGNINGID, 0 },
	{ RULE_OPT_CDHASH, 0, SANTA__RULE_TYPE__CDHASH, 0 },
	{ RULE_OPT_CLEAN, 0, 0, SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE },
	{ RULE_OPT_CLEAN_ALL, 0, 0, SANTA__RULE_CLEANUP__CLEANUP_ALL },
};

static int rule_apply_flag(rule_opts *o, int id, const char *val)
{
	for (size_t i = 0; i < sizeof(rule_flag_effects) / sizeof(rule_flag_effects[0]); i++) {
		if (rule_flag_effects[i].opt != id)
			continue;
		if (rule_flag_effects[i].policy)
			o->policy = rule_flag_effects[i].policy;
		if (rule_flag_effects[i].type)
			o->type = rule_flag_effects[i].type;
		if (rule_flag_effects[i].cleanup)
			o->cleanup = rule_flag_effects[i].cleanup;
		return 0;
	}
	switch (id) {
	case RULE_OPT_CHECK:
		o->check = true;
		break;
	case RULE_OPT_PATH:
		o->path = val;
		break;
	case RULE_OPT_IDENTIFIER:
		o->identifier = val;
		break;
	case RULE_OPT_MESSAGE:
		o->message = val;
		break;
	case RULE_OPT_IMPORT:
	case RULE_OPT_EXPORT:
		if (o->import_file || o->export_file)
			return -1;
		*(id == RULE_OPT_IMPORT ? &o->import_file : &o->export_file) = val;
		break;
	}
	return 0;
}

static int rule_parse(int argc, char **argv, rule_opts *o)
{
	santactl_args a;
	const char *val;
	char err[256];
	int id;

	o->type = SANTA__RULE_TYPE__BINARY;
	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, rule_opts_table, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_ERROR)
			return santactl_usage_error(&santactl_cmd_rule, "%s", err);
		if (id == SANTACTL_ARGS_POSITIONAL)
			return santactl_usage_error(&santactl_cmd_rule,
						    "Unknown argument: %s", val);
		if (rule_apply_flag(o, id, val) < 0)
			return santactl_usage_error(&santactl_cmd_rule,
						    "--import and --export are mutually exclusive");
	}
	if ((o->import_file || o->export_file) && (o->identifier || o->path || o->check))
		return santactl_usage_error(&santactl_cmd_rule, "%s can only be used by itself",
					    o->import_file ? "--import" : "--export");
	if (o->export_file && o->cleanup)
		return santactl_usage_error(&santactl_cmd_rule,
					    "--clean and --clean-all only go with --import");
	return 0;
}

/* The original refuses local rule changes when a sync server or static
 * rules own the policy; santad says which is configured. */
static int rule_check_managed(santactl_ctx *ctx)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	Santa__StatusReply *st;
	ProtobufCMessage *reply;
	char *errmsg;
	bool managed;
	int r;

	r = santactl_call(ctx, "Status", &req.base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report("Failed to get status", r, errmsg);
		return 1;
	}
	st = (Santa__StatusReply *)reply;
	managed = (st->sync_server && *st->sync_server) || st->static_rule_count > 0;
	protobuf_c_message_free_unpacked(reply, NULL);
	if (managed) {
		printf("(SyncBaseURL/StaticRules is set, rules are managed centrally.)\n");
		return 1;
	}
	return 0;
}

/* One AddRules call. Returns 0, or -1 after printing WHAT and why. */
static int rule_add_call(santactl_ctx *ctx, Santa__AddRulesRequest *req,
			 const char *what)
{
	ProtobufCMessage *reply;
	char *errmsg;
	int r;

	r = santactl_call(ctx, "AddRules", &req->base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report(what, r, errmsg);
		return -1;
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

static int rule_clean_only(santactl_ctx *ctx, int cleanup)
{
	Santa__AddRulesRequest req = SANTA__ADD_RULES_REQUEST__INIT;

	req.cleanup = cleanup;
	req.final = true;
	return rule_add_call(ctx, &req, "Failed to delete rules") < 0 ? 1 : 0;
}

/* A nonzero id shared by the calls of one import. */
static uint64_t rule_batch_id(void)
{
	uint64_t id = 0;

	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	return id;
}

/* Send RS in calls of bounded size, all in one santad transaction. */
static int rule_send_batches(santactl_ctx *ctx, const santactl_rules *rs, int cleanup)
{
	Santa__AddRulesRequest req = SANTA__ADD_RULES_REQUEST__INIT;
	uint64_t batch_id = 0;
	size_t start = 0;

	req.cleanup = cleanup;
	do {
		size_t end = start, bytes = 0;

		while (end < rs->n && end - start < RULE_BATCH_MAX_RULES &&
		       bytes < RULE_BATCH_MAX_BYTES)
			bytes += santa__rule__get_packed_size(rs->rules[end++]) + 8;
		if (start == 0 && end < rs->n)
			batch_id = rule_batch_id();
		req.rules = rs->rules + start;
		req.n_rules = end - start;
		req.batch_id = batch_id;
		req.final = end == rs->n;
		if (rule_add_call(ctx, &req, "Failed to modify rules") < 0)
			return 1;
		start = end;
	} while (start < rs->n);
	return 0;
}

/* The whole of FILE as a string: a regular file, or a pipe such as
 * /dev/stdin, up to SANTACTL_IMPORT_MAX_BYTES. */
static char *rule_read_file(const char *file, size_t *ret_len)
{
	size_t len = 0, cap = 0;
	char *text = NULL;
	ssize_t n;
	int fd;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	for (;;) {
		if (len == cap) {
			/* One byte past the limit tells a file at the limit from
			 * a larger one. */
			size_t want = cap ? 2 * cap : 1u << 16;
			char *bigger;

			if (want > SANTACTL_IMPORT_MAX_BYTES + 1)
				want = SANTACTL_IMPORT_MAX_BYTES + 1;
			if (want == cap) {
				errno = EFBIG;
				goto fail;
			}
			bigger = realloc(text, want + 1);
			if (!bigger)
				goto fail;
			text = bigger;
			cap = want;
		}
		n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (n < 0)
		goto fail;
	text[len] = '\0';
	close(fd);
	*ret_len = len;
	return text;
fail:
	fprintf(stderr, "Failed to read %s: %s\n", file, strerror(errno));
	free(text);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Read and check FILE into RS before santad is asked anything. Returns 0,
 * or 1 (the exit status) after saying what is wrong. */
static int rule_load_import(const char *file, santactl_rules *rs)
{
	char err[768], *text;
	size_t len;
	int r;

	text = rule_read_file(file, &len);
	if (!text)
		return 1;
	r = santactl_rules_parse(text, len, rs, err, sizeof(err));
	free(text);
	if (r < 0) {
		fprintf(stderr, "Failed to import %s: %s; no rules were imported\n", file, err);
		return 1;
	}
	return 0;
}

/* Pages of RetrieveAllRules, kept until written out. */
typedef struct rule_pages {
	ProtobufCMessage **replies;
	size_t n_replies;
	Santa__Rule **rules;
	size_t n_rules;
} rule_pages;

static void rule_pages_done(rule_pages *p)
{
	for (size_t i = 0; i < p->n_replies; i++)
		protobuf_c_message_free_unpacked(p->replies[i], NULL);
	free(p->replies);
	free(p->rules);
}

static int rule_pages_add(rule_pages *p, ProtobufCMessage *reply)
{
	Santa__RuleList *list = (Santa__RuleList *)reply;
	ProtobufCMessage **replies;
	Santa__Rule **rules;

	replies = realloc(p->replies, (p->n_replies + 1) * sizeof(*replies));
	if (!replies)
		return -ENOMEM;
	p->replies = replies;
	p->replies[p->n_replies++] = reply;
	rules = realloc(p->rules, (p->n_rules + list->n_rules + 1) * sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	p->rules = rules;
	if (list->n_rules)   /* an empty page has no array */
		memcpy(p->rules + p->n_rules, list->rules, list->n_rules * sizeof(*rules));
	p->n_rules += list->n_rules;
	return 0;
}

static int rule_fetch_all(santactl_ctx *ctx, rule_pages *p)
{
	Santa__RuleListRequest req = SANTA__RULE_LIST_REQUEST__INIT;
	char cursor[64] = "";
	int r;

	req.limit = RULE_EXPORT_PAGE;
	do {
		ProtobufCMessage *reply;
		Santa__RuleList *list;
		char *errmsg;

		req.cursor = cursor;
		r = santactl_call(ctx, "RetrieveAllRules", &req.base, -1, false, &reply,
				  &errmsg);
		if (r < 0) {
			santactl_report("Failed to get rules", r, errmsg);
			return -1;
		}
		list = (Santa__RuleList *)reply;
		/* A cursor that does not move would loop forever. */
		if (strcmp(list->cursor, cursor) == 0 || strlen(list->cursor) >= sizeof(cursor))
			cursor[0] = '\0';
		else
			snprintf(cursor, sizeof(cursor), "%s", list->cursor);
		if (rule_pages_add(p, reply) < 0) {
			protobuf_c_message_free_unpacked(reply, NULL);
			fprintf(stderr, "Failed to get rules: out of memory\n");
			return -1;
		}
	} while (cursor[0]);
	return 0;
}

static int rule_write_file(const char *file, const char *text)
{
	FILE *f = fopen(file, "we");

	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "Failed to write %s: %s\n", file, strerror(errno));
		return 1;
	}
	return 0;
}

static int rule_export(santactl_ctx *ctx, const char *file)
{
	rule_pages pages = { 0 };
	size_t count;
	char *text;
	int r = 1;

	if (rule_fetch_all(ctx, &pages) < 0)
		goto out;
	text = santactl_rules_to_json(pages.rules, pages.n_rules, &count);
	if (!text) {
		fprintf(stderr, "Failed to jsonify rules: out of memory\n");
		goto out;
	}
	if (count == 0)
		printf("No rules to export.\n");
	else
		r = rule_write_file(file, text);
	free(text);
out:
	rule_pages_done(&pages);
	return r;
}

/* The SHA-256 of the file at PATH, for --path. */
static int rule_hash_path(const char *path, char hex[SANTA_SHA256_HEX_LEN + 1])
{
	uint8_t sha[SANTA_SHA256_LEN];
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	r = santa_hash_fd(fd, sha, NULL);
	close(fd);
	if (r < 0)
		return -1;
	santa_hex(sha, sizeof(sha), hex);
	return 0;
}

static int rule_check(santactl_ctx *ctx, const char *identifier, int type)
{
	Santa__RuleQuery req = SANTA__RULE_QUERY__INIT;
	Santa__Rule key = SANTA__RULE__INIT, *keys[1] = { &key };
	Santa__RuleList *list;
	ProtobufCMessage *reply;
	char *errmsg, buf[128];
	int r;

	key.identifier = (char *)identifier;
	key.rule_type = type;
	req.identifiers = keys;
	req.n_identifiers = 1;
	r = santactl_call(ctx, "RuleForIdentifiers", &req.base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report("Failed to check rules", r, errmsg);
		return 1;
	}
	list = (Santa__RuleList *)reply;
	printf("%s\n", santactl_rule_describe(list->n_rules ? list->rules[0] : NULL,
					      isatty(STDOUT_FILENO), buf, sizeof(buf)));
	protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

static int rule_add_one(santactl_ctx *ctx, const rule_opts *o, const char *identifier)
{
	Santa__AddRulesRequest req = SANTA__ADD_RULES_REQUEST__INIT;
	Santa__Rule *rule;
	int r;

	rule = santactl_rule_new(identifier, o->policy, o->type, o->message, NULL);
	if (!rule)
		return 1;
	req.rules = &rule;
	req.n_rules = 1;
	req.final = true;
	r = rule_add_call(ctx, &req, "Failed to modify rules");
	santa__rule__free_unpacked(rule, NULL);
	if (r < 0)
		return 1;
	printf("%s rule for %s: %s.\n", o->policy == SANTA__POLICY__REMOVE ? "Removed" : "Added",
	       santactl_rule_type_label(o->type), identifier);
	return 0;
}

/* The identifier of --check or of a single rule, from --identifier or
 * --path, checked before santad is asked anything. Returns 0 with
 * *RET_IDENT (free()), or 1 (the exit status) after a usage error. */
static int rule_target(const rule_opts *o, char **ret_ident)
{
	char hex[SANTA_SHA256_HEX_LEN + 1], err[256], *ident;

	*ret_ident = NULL;
	if (o->path) {
		if (o->type != SANTA__RULE_TYPE__BINARY)
			return santactl_usage_error(&santactl_cmd_rule,
				"--path makes only BINARY (SHA-256) rules: Linux executables carry "
				"no signature to take another identifier from");
		if (rule_hash_path(o->path, hex) < 0)
			return santactl_usage_error(&santactl_cmd_rule,
						    "Provided path was not a plain file");
	}
	if (o->check && !o->path && !o->identifier)
		return santactl_usage_error(&santactl_cmd_rule,
					    "--check requires --identifier or --path");
	if (!o->check && !o->policy)
		return santactl_usage_error(&santactl_cmd_rule, "No state specified");
	if (!o->path && !o->identifier)
		return santactl_usage_error(&santactl_cmd_rule,
			"A valid SHA-256, CDHash, Signing ID, team ID, or path to file must be "
			"specified");

	ident = strdup(o->path ? hex : o->identifier);
	if (!ident) {
		fprintf(stderr, "Failed to modify rules: out of memory\n");
		return 1;
	}
	if (santactl_rule_check_identifier(o->type, ident, err, sizeof(err)) < 0) {
		free(ident);
		return santactl_usage_error(&santactl_cmd_rule, "%s", err);
	}
	*ret_ident = ident;
	return 0;
}

/* What the command line asks for, checked and read in full. */
typedef struct rule_plan {
	rule_opts o;
	char *ident;              /* --check or a single rule */
	santactl_rules import;    /* --import */
	bool have_import;
	bool clean_only;          /* --clean or --clean-all alone */
} rule_plan;

/* Every argument error, a bad --path and a bad import file are reported
 * here, before santad is contacted, so that they show without santad. */
static int rule_prepare(int argc, char **argv, rule_plan *p)
{
	const rule_opts *o = &p->o;
	int r;

	r = rule_parse(argc, argv, &p->o);
	if (r)
		return r;
	if (o->export_file)
		return 0;
	if (o->import_file) {
		r = rule_load_import(o->import_file, &p->import);
		p->have_import = r == 0;
		return r;
	}
	if (o->cleanup && !o->identifier && !o->path && !o->check) {
		p->clean_only = true;
		return 0;
	}
	return rule_target(o, &p->ident);
}

static int rule_execute(santactl_ctx *ctx, rule_plan *p)
{
	const rule_opts *o = &p->o;
	int r;

	if (!o->check) {
		r = rule_check_managed(ctx);
		if (r)
			return r;
	}
	if (p->have_import)
		return rule_send_batches(ctx, &p->import, o->cleanup);
	if (o->export_file)
		return rule_export(ctx, o->export_file);
	if (p->clean_only)
		return rule_clean_only(ctx, o->cleanup);
	return o->check ? rule_check(ctx, p->ident, o->type) : rule_add_one(ctx, o, p->ident);
}

static int rule_run(santactl_ctx *ctx, int argc, char **argv)
{
	rule_plan p = { 0 };
	int r;

	r = rule_prepare(argc, argv, &p);
	if (r == 0)
		r = rule_execute(ctx, &p);
	free(p.ident);
	if (p.have_import)
		santactl_rules_done(&p.import);
	return r;
}

const santactl_cmd santactl_cmd_rule = {
	.name = "rule",
	.short_help = "Manually add/remove/check rules.",
	.long_help =
		"Usage: santactl rule [options]\n"
		"  One of:\n"
		"    --allow: add to allow\n"
		"    --block: add to block\n"
		"    --silent-block: add to silent block\n"
		"    --compiler: allow and mark as a compiler\n"
		"    --remove: remove existing rule\n"
		"    --check: check for an existing rule\n"
		"    --import {path}: import rules from a JSON file\n"
		"    --export {path}: export rules to a JSON file\n"
		"\n"
		"  One of:\n"
		"    --path {path}: path of binary to add/remove/check.\n"
		"                   Will add the SHA-256 of the file currently at that path.\n"
		"    --identifier {sha256|teamID|signingID|cdhash}: identifier to add/remove/check\n"
		"    --sha256 {sha256}: hash to add/remove/check [deprecated]\n"
		"\n"
		"  Optionally:\n"
		"    --teamid: add or check a team ID rule instead of binary\n"
		"    --signingid: add or check a signing ID rule instead of binary (see notes)\n"
		"    --certificate: add or check a certificate sha256 rule instead of binary\n"
		"    --cdhash: add or check a cdhash rule instead of binary\n"
		"    --message {message}: custom message to show when binary is blocked\n"
		"    --clean: clear all non-transitive rules\n"
		"        Can be combined with --import to clear existing rules before importing.\n"
		"    --clean-all: clear all rules\n"
		"        Can be combined with --import to clear existing rules before importing.\n"
		"\n"
		"  Notes:\n"
		"    The format of `identifier` when adding/checking a `signingid` rule is:\n"
		"\n"
		"      `TeamID:SigningID`\n"
		"\n"
		"    On Linux only BINARY rules match executables so far; the other types are\n"
		"    stored and exchanged with the sync server as the original does.\n"
		"\n"
		"  Importing / Exporting Rules:\n"
		"    If santa is not configured to use a sync server one can export\n"
		"    & import its non-static rules to and from JSON files using the\n"
		"    --export/--import flags. These files have the following form:\n"
		"\n"
		"    {\"rules\": [{rule-dictionaries}]}\n"
		"    e.g. {\"rules\": [\n"
		"                      {\"policy\": \"BLOCKLIST\",\n"
		"                       \"rule_type\": \"BINARY\",\n"
		"                       \"identifier\": "
		"\"84de9c61777ca36b13228e2446d53e966096e78db7a72c632b5c185b2ffe68a6\",\n"
		"                       \"custom_url\" : \"\",\n"
		"                       \"custom_msg\": \"/bin/ls block for demo\"}\n"
		"                      ]}\n"
		"\n"
		"    By default rules are not cleared when importing. To clear the\n"
		"    database you must use either --clean or --clean-all\n",
	.requires_root = true,
	.run = rule_run,
};
