/* SPDX-License-Identifier: Apache-2.0 */
#include "args.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void santactl_args_init(santactl_args *a, int argc, char **argv)
{
	a->argc = argc;
	a->argv = argv;
	a->index = 0;
	a->only_positional = false;
}

/* The option ARG names, and where its inline "=value" starts, if any. */
static const santactl_opt *args_match(const santactl_opt *opts, const char *arg,
				      const char **ret_inline)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

	*ret_inline = NULL;
	for (const santactl_opt *o = opts; o->name; o++) {
		if (o->alias && strcasecmp(arg, o->alias) == 0)
			return o;
		if (strlen(o->name) == len && strncasecmp(arg, o->name, len) == 0) {
			*ret_inline = eq ? eq + 1 : NULL;
			return o;
		}
	}
	return NULL;
}

int santactl_args_next(santactl_args *a, const santactl_opt *opts,
		       const char **ret_value, char *errbuf, size_t errsize)
{
	const santactl_opt *o;
	const char *arg, *inl;

	*ret_value = NULL;
	if (a->index >= a->argc)
		return SANTACTL_ARGS_END;
	arg = a->argv[a->index++];

	if (!a->only_positional && strcmp(arg, "--") == 0) {
		a->only_positional = true;
		return santactl_args_next(a, opts, ret_value, errbuf, errsize);
	}
	if (a->only_positional || arg[0] != '-' || arg[1] == '\0') {
		*ret_value = arg;
		return SANTACTL_ARGS_POSITIONAL;
	}

	o = args_match(opts, arg, &inl);
	if (!o) {
		snprintf(errbuf, errsize, "Unknown argument: %s", arg);
		return SANTACTL_ARGS_ERROR;
	}
	if (!o->has_arg) {
		if (inl) {
			snprintf(errbuf, errsize, "%s takes no argument", o->name);
			return SANTACTL_ARGS_ERROR;
		}
		return o->id;
	}
	if (inl) {
		*ret_value = inl;
		return o->id;
	}
	if (a->index >= a->argc) {
		snprintf(errbuf, errsize, "%s requires an argument", o->name);
		return SANTACTL_ARGS_ERROR;
	}
	*ret_value = a->argv[a->index++];
	return o->id;
}

bool santactl_args_want_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcasecmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}
