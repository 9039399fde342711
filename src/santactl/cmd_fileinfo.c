/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl fileinfo PATH...`: what santad would see of a file (its
 * hashes and kind) and the decision it would make for it now.
 *
 * santactl hashes the file itself, as the caller; only the Rule field
 * asks santad (DecisionForFile), which evaluates the rules, path regexes
 * and mode exactly as for an exec, without running or caching anything.
 *
 * --filter KEY=REGEX shows only the files whose KEY matches REGEX
 * (case-insensitive, anywhere in the value); several filters must all
 * match, or any one with --filter-inclusive, as in the original. Of the
 * original's other flags, --localtz is accepted and changes nothing (no
 * key here is a time); --cert-index, --bundleinfo and --entitlements are
 * about macOS code signatures and bundles, and are unknown arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "args.h"
#include "filetype.h"
#include "rule_io.h"
#include "santactl.h"
#include "santad.pb-c.h"
#include "sha256.h"

enum fileinfo_key {
	KEY_PATH,
	KEY_SHA256,
	KEY_SHA1,
	KEY_TYPE,
	KEY_RULE,
	KEY_COUNT,
};

static const char *const fileinfo_key_names[KEY_COUNT] = {
	"Path", "SHA-256", "SHA-1", "Type", "Rule",
};

typedef struct fileinfo_filter {
	enum fileinfo_key key;
	pcre2_code *re;
} fileinfo_filter;

typedef struct fileinfo_opts {
	bool json;
	bool recursive;
	bool inclusive;                 /* --filter-inclusive: any filter */
	enum fileinfo_key keys[KEY_COUNT];
	size_t n_keys;
	int key_width;
	fileinfo_filter *filters;       /* one per --filter, at most argc */
	size_t n_filters;
	unsigned need;                  /* 1 << key: shown or filtered on */
} fileinfo_opts;

typedef struct fileinfo_run {
	santactl_ctx *ctx;
	fileinfo_opts opts;
	bool color;
	bool daemon_unreachable;   /* ask santad once, not per file */
	size_t printed;
	int status;
} fileinfo_run;

/* The values of one file, each filled only when a key asks for it. */
typedef struct fileinfo_item {
	char path[PATH_MAX];
	char sha256[SANTA_SHA256_HEX_LEN + 1];
	char sha1[2 * SANTA_SHA1_LEN + 1];
	char type[64];
	char rule[256];
	char rule_plain[256];           /* a decision without colour, for --filter */
} fileinfo_item;

enum {
	FILEINFO_OPT_JSON = 1,
	FILEINFO_OPT_KEY,
	FILEINFO_OPT_RECURSIVE,
	FILEINFO_OPT_FILTER,
	FILEINFO_OPT_FILTER_INCLUSIVE,
	FILEINFO_OPT_LOCALTZ,
};

static const santactl_opt fileinfo_opts_table[] = {
	{ "--json", NULL, false, FILEINFO_OPT_JSON },
	{ "--key", NULL, true, FILEINFO_OPT_KEY },
	{ "--recursive", "-r", false, FILEINFO_OPT_RECURSIVE },
	{ "--filter", NULL, true, FILEINFO_OPT_FILTER },
	{ "--filter-inclusive", NULL, false, FILEINFO_OPT_FILTER_INCLUSIVE },
	{ "--localtz", NULL, false, FILEINFO_OPT_LOCALTZ },
	{ 0 },
};

/* The key named by the LEN bytes at NAME, or -1. */
static int fileinfo_key_find(const char *name, size_t len)
{
	for (int k = 0; k < KEY_COUNT; k++)
		if (strlen(fileinfo_key_names[k]) == len &&
		    strncmp(name, fileinfo_key_names[k], len) == 0)
			return k;
	return -1;
}

static int fileinfo_add_key(fileinfo_opts *o, const char *name)
{
	int k = fileinfo_key_find(name, strlen(name));

	if (k < 0)
		return -1;
	for (size_t i = 0; i < o->n_keys; i++)
		if (o->keys[i] == (enum fileinfo_key)k)
			return 0;
	o->keys[o->n_keys++] = k;
	return 0;
}

/* --filter KEY=REGEX. */
static int fileinfo_add_filter(fileinfo_opts *o, const char *arg)
{
	const santactl_cmd *cmd = &santactl_cmd_fileinfo;
	const char *eq = strchr(arg, '=');
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE off;
	int k, err;
	pcre2_code *re;

	k = eq ? fileinfo_key_find(arg, (size_t)(eq - arg)) : -1;
	if (k < 0)
		return santactl_usage_error(cmd, "Invalid filter predicate: %s (expected "
					    "key=regex with a valid key)", arg);
	re = pcre2_compile((PCRE2_SPTR)(eq + 1), PCRE2_ZERO_TERMINATED,
			   PCRE2_CASELESS | PCRE2_UTF, &err, &off, NULL);
	if (!re) {
		pcre2_get_error_message(err, msg, sizeof(msg));
		return santactl_usage_error(cmd, "Invalid regular expression in filter %s at "
					    "offset %zu: %s", arg, (size_t)off, (char *)msg);
	}
	o->filters[o->n_filters++] = (fileinfo_filter){ .key = k, .re = re };
	o->need |= 1u << k;
	return 0;
}

static void fileinfo_opts_free(fileinfo_opts *o)
{
	for (size_t i = 0; i < o->n_filters; i++)
		pcre2_code_free(o->filters[i].re);
	free(o->filters);
}

static bool fileinfo_wants(const fileinfo_opts *o, enum fileinfo_key k)
{
	return o->need & (1u << k);
}

/* Fill OPTS and collect the paths (pointers into ARGV) into PATHS. */
static int fileinfo_parse(int argc, char **argv, fileinfo_opts *o,
			  const char **paths, size_t *ret_n)
{
	const santactl_cmd *cmd = &santactl_cmd_fileinfo;
	santactl_args a;
	const char *val;
	char err[256];
	int id;

	*ret_n = 0;
	o->filters = calloc(argc ? argc : 1, sizeof(*o->filters));
	if (!o->filters)
		return 1;
	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, fileinfo_opts_table, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_ERROR)
			return santactl_usage_error(cmd, "%s", err);
		if (id == SANTACTL_ARGS_POSITIONAL)
			paths[(*ret_n)++] = val;
		else if (id == FILEINFO_OPT_JSON)
			o->json = true;
		else if (id == FILEINFO_OPT_RECURSIVE)
			o->recursive = true;
		else if (id == FILEINFO_OPT_FILTER_INCLUSIVE)
			o->inclusive = true;
		else if (id == FILEINFO_OPT_LOCALTZ)
			continue;
		else if (id == FILEINFO_OPT_FILTER) {
			int r = fileinfo_add_filter(o, val);

			if (r)
				return r;
		} else if (fileinfo_add_key(o, val) < 0)
			return santactl_usage_error(cmd, "\"%s\" is an invalid key", val);
	}
	if (*ret_n == 0)
		return santactl_usage_error(cmd, "at least one file-path is needed");
	if (o->n_keys == 0)
		for (int k = 0; k < KEY_COUNT; k++)
			o->keys[o->n_keys++] = k;
	for (size_t i = 0; i < o->n_keys; i++) {
		int len = (int)strlen(fileinfo_key_names[o->keys[i]]);

		o->need |= 1u << o->keys[i];
		if (len > o->key_width)
			o->key_width = len;
	}
	return 0;
}

static const char *fileinfo_no_daemon(const fileinfo_run *run)
{
	return santactl_daemon_refused(run->ctx) ?
	       "Could not communicate with daemon (it refused this santactl)" :
	       "Could not communicate with daemon";
}

/* fileinfo's Rule field: santad's dry-run decision for the file. */
static void fileinfo_rule(fileinfo_run *run, int fd, fileinfo_item *it)
{
	Santa__DecisionRequest req = SANTA__DECISION_REQUEST__INIT;
	Santa__DecisionReply *rep;
	ProtobufCMessage *reply;
	char *errmsg;
	int r;

	if (run->daemon_unreachable) {
		snprintf(it->rule, sizeof(it->rule), "%s", fileinfo_no_daemon(run));
		return;
	}
	req.path = it->path;
	req.sha256 = it->sha256;
	/* With the file hashed: santad tells its own executables by the
	 * file's identity, and resolves no path for us. */
	r = santactl_call(run->ctx, "DecisionForFile", &req.base, fd, true, &reply,
			  &errmsg);
	if (r < 0) {
		run->daemon_unreachable = santactl_err_is_daemon_gone(r);
		/* Said once, on stderr: the fields go on. */
		if (santactl_daemon_refused(run->ctx))
			santactl_print_refusal(run->ctx, stderr);
		snprintf(it->rule, sizeof(it->rule), "%s", run->daemon_unreachable ?
			 fileinfo_no_daemon(run) :
			 errmsg ? errmsg : "Could not get a decision from santad");
		free(errmsg);
		return;
	}
	rep = (Santa__DecisionReply *)reply;
	santactl_decision_describe(rep->decision, rep->reason, run->color, it->rule,
				   sizeof(it->rule));
	santactl_decision_describe(rep->decision, rep->reason, false, it->rule_plain,
				   sizeof(it->rule_plain));
	protobuf_c_message_free_unpacked(reply, NULL);
}

/* Read what the keys ask for from the open file FD. */
static int fileinfo_collect(fileinfo_run *run, int fd, fileinfo_item *it)
{
	const fileinfo_opts *o = &run->opts;
	uint8_t sha256[SANTA_SHA256_LEN], sha1[SANTA_SHA1_LEN];

	if (fileinfo_wants(o, KEY_SHA256) || fileinfo_wants(o, KEY_SHA1) ||
	    fileinfo_wants(o, KEY_RULE)) {
		int r = santa_hash_fd(fd, sha256, sha1);

		if (r < 0)
			return r;
		santa_hex(sha256, sizeof(sha256), it->sha256);
		santa_hex(sha1, sizeof(sha1), it->sha1);
	}
	if (fileinfo_wants(o, KEY_TYPE))
		santactl_file_type(fd, it->type, sizeof(it->type));
	if (fileinfo_wants(o, KEY_RULE))
		fileinfo_rule(run, fd, it);
	return 0;
}

static const char *fileinfo_value(const fileinfo_item *it, enum fileinfo_key k)
{
	switch (k) {
	case KEY_PATH:
		return it->path;
	case KEY_SHA256:
		return it->sha256;
	case KEY_SHA1:
		return it->sha1;
	case KEY_TYPE:
		return it->type;
	default:
		return it->rule;
	}
}

/* Whether the file passes the filters: all of them, or any one with
 * --filter-inclusive. The Rule is matched without its colour. */
static bool fileinfo_passes(const fileinfo_opts *o, const fileinfo_item *it)
{
	pcre2_match_data *md;
	bool pass = !o->inclusive;

	if (o->n_filters == 0)
		return true;
	md = pcre2_match_data_create(1, NULL);
	if (!md)
		return false;
	for (size_t i = 0; i < o->n_filters; i++) {
		const fileinfo_filter *f = &o->filters[i];
		const char *v = f->key == KEY_RULE && it->rule_plain[0] ? it->rule_plain :
				fileinfo_value(it, f->key);
		bool match = pcre2_match(f->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL) >= 0;

		if (match == o->inclusive) {
			pass = match;
			break;
		}
	}
	pcre2_match_data_free(md);
	return pass;
}

static void fileinfo_print_json(fileinfo_run *run, const fileinfo_item *it)
{
	json_object *o = json_object_new_object();
	const char *text;

	for (size_t i = 0; o && i < run->opts.n_keys; i++) {
		enum fileinfo_key k = run->opts.keys[i];

		json_object_object_add(o, fileinfo_key_names[k],
				       json_object_new_string(fileinfo_value(it, k)));
	}
	text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
		JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	if (!text) {
		fprintf(stderr, "Failed to format '%s': out of memory\n", it->path);
		run->status = 1;
	} else {
		printf("%s%s", run->printed++ ? ",\n" : "", text);
	}
	json_object_put(o);
}

static void fileinfo_print(fileinfo_run *run, const fileinfo_item *it)
{
	const fileinfo_opts *o = &run->opts;

	if (o->json) {
		fileinfo_print_json(run, it);
		return;
	}
	if (o->n_keys == 1) {
		printf("%s\n", fileinfo_value(it, o->keys[0]));
		return;
	}
	for (size_t i = 0; i < o->n_keys; i++)
		printf("%-*s: %s\n", o->key_width, fileinfo_key_names[o->keys[i]],
		       fileinfo_value(it, o->keys[i]));
	printf("\n");
}

/* One file: open it as the caller, check it is a non-empty regular file,
 * gather and print. */
static void fileinfo_file(fileinfo_run *run, const char *path)
{
	fileinfo_item it = { 0 };
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "Invalid or empty file: %s%s%s\n", path,
			fd < 0 ? ": " : "", fd < 0 ? strerror(errno) : "");
		run->status = 1;
		goto out;
	}
	if (!realpath(path, it.path))
		snprintf(it.path, sizeof(it.path), "%s", path);

	r = fileinfo_collect(run, fd, &it);
	if (r < 0) {
		fprintf(stderr, "Cannot read '%s': %s\n", path, strerror(-r));
		run->status = 1;
		goto out;
	}
	if (fileinfo_passes(&run->opts, &it))
		fileinfo_print(run, &it);
out:
	if (fd >= 0)
		close(fd);
}

static int fileinfo_fts_compare(const FTSENT **a, const FTSENT **b)
{
	return strcmp((*a)->fts_name, (*b)->fts_name);
}

/* Every file under DIR, in name order; symlinks are followed to files
 * but not into directories, so that a link loop cannot trap the walk. */
static void fileinfo_walk(fileinfo_run *run, const char *dir)
{
	char *const roots[] = { (char *)dir, NULL };
	struct stat st;
	FTSENT *e;
	FTS *fts;

	fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, fileinfo_fts_compare);
	if (!fts) {
		fprintf(stderr, "Cannot walk '%s': %s\n", dir, strerror(errno));
		run->status = 1;
		return;
	}
	while ((e = fts_read(fts))) {
		if (e->fts_info == FTS_F ||
		    (e->fts_info == FTS_SL && stat(e->fts_path, &st) == 0 &&
		     S_ISREG(st.st_mode))) {
			fileinfo_file(run, e->fts_path);
		} else if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR) {
			fprintf(stderr, "Cannot read '%s': %s\n", e->fts_path,
				strerror(e->fts_errno));
			run->status = 1;
		}
	}
	fts_close(fts);
}

static void fileinfo_path(fileinfo_run *run, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "File does not exist: %s\n", path);
		run->status = 1;
	} else if (!S_ISDIR(st.st_mode)) {
		fileinfo_file(run, path);
	} else if (run->opts.recursive) {
		fileinfo_walk(run, path);
	} else {
		fprintf(stderr, "%s is a directory.  Use the -r flag to search recursively.\n",
			path);
		run->status = 1;
	}
}

static int fileinfo_main(santactl_ctx *ctx, int argc, char **argv)
{
	fileinfo_run run = { .ctx = ctx };
	const char **paths;
	size_t n;
	int r;

	paths = calloc(argc ? argc : 1, sizeof(*paths));
	if (!paths)
		return 1;
	r = fileinfo_parse(argc, argv, &run.opts, paths, &n);
	if (r) {
		fileinfo_opts_free(&run.opts);
		free(paths);
		return r;
	}
	run.color = isatty(STDOUT_FILENO) && !run.opts.json;

	if (run.opts.json)
		printf("[\n");
	for (size_t i = 0; i < n; i++)
		fileinfo_path(&run, paths[i]);
	if (run.opts.json)
		printf("\n]\n");
	fileinfo_opts_free(&run.opts);
	free(paths);
	return run.status;
}

const santactl_cmd santactl_cmd_fileinfo = {
	.name = "fileinfo",
	.short_help = "Prints information about a file.",
	.long_help =
		"The details provided will be the same ones Santa uses to make a decision\n"
		"about executables. This includes SHA-256, SHA-1, the type of file and the\n"
		"decision santad would make for it now.\n"
		"\n"
		"Usage: santactl fileinfo [options] [file-paths]\n"
		"    --recursive (-r): Search directories recursively.\n"
		"    --json: Output in JSON format.\n"
		"    --key: Search and return this one piece of information.\n"
		"           You may specify multiple keys by repeating this flag.\n"
		"           Valid Keys:\n"
		"                       \"Path\"\n"
		"                       \"SHA-256\"\n"
		"                       \"SHA-1\"\n"
		"                       \"Type\"\n"
		"                       \"Rule\"\n"
		"    --filter: Show only the files whose value of a key matches a regular\n"
		"              expression, given as 'key=regex': keys as for --key, the\n"
		"              expression case-insensitive (PCRE2) and matched anywhere in\n"
		"              the value. Repeat it to add filters; a file must match all.\n"
		"    --filter-inclusive: A file must match any one of the filters instead.\n"
		"    --localtz: Accepted for the original's scripts; no key is a time.\n"
		"\n"
		"Examples: santactl fileinfo --key SHA-256 --json /usr/bin/yes\n"
		"          santactl fileinfo /usr/bin/yes /bin/*\n"
		"          santactl fileinfo /usr/bin -r --key Path --key SHA-256 --key Rule\n"
		"          santactl fileinfo /usr/bin -r --key Path --filter Type=Script\n",
	.run = fileinfo_main,
};
