/* SPDX-License-Identifier: Apache-2.0 */
#include "syncstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define SYNCSTATE_MAX_SIZE (1u << 20)

/* One table drives loading, saving and updating: each setting's has_ flag,
 * its value and its JSON type. */
enum field_type { FT_BOOL, FT_UINT32, FT_INT64, FT_ENUM, FT_STRING };

struct field {
	const char *name;
	enum field_type type;
	size_t has_off;
	size_t val_off;
};

#define FIELD(name, type, f) \
	{ name, type, offsetof(Santa__SyncSettings, has_##f), offsetof(Santa__SyncSettings, f) }

static const struct field fields[] = {
	FIELD("client_mode", FT_ENUM, client_mode),
	FIELD("allowed_path_regex", FT_STRING, allowed_path_regex),
	FIELD("blocked_path_regex", FT_STRING, blocked_path_regex),
	FIELD("enable_bundles", FT_BOOL, enable_bundles),
	FIELD("enable_transitive_rules", FT_BOOL, enable_transitive_rules),
	FIELD("enable_all_event_upload", FT_BOOL, enable_all_event_upload),
	FIELD("disable_unknown_event_upload", FT_BOOL, disable_unknown_event_upload),
	FIELD("full_sync_interval", FT_UINT32, full_sync_interval),
	FIELD("last_full_sync", FT_INT64, last_full_sync),
	FIELD("last_rule_sync", FT_INT64, last_rule_sync),
	FIELD("sync_type_required", FT_ENUM, sync_type_required),
	FIELD("batch_size", FT_UINT32, batch_size),
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static protobuf_c_boolean *has_of(Santa__SyncSettings *s, const struct field *f)
{
	return (protobuf_c_boolean *)((char *)s + f->has_off);
}

static void *val_of(Santa__SyncSettings *s, const struct field *f)
{
	return (char *)s + f->val_off;
}

static void settings_free_strings(Santa__SyncSettings *s)
{
	for (size_t i = 0; i < N_FIELDS; i++) {
		char **p = val_of(s, &fields[i]);

		if (fields[i].type == FT_STRING && *p != protobuf_c_empty_string)
			free(*p);
	}
}

void syncstate_done(syncstate *st)
{
	if (!st)
		return;
	settings_free_strings(&st->s);
	free(st->path);
	memset(st, 0, sizeof(*st));
}

/* Copy field F's value from SRC to DST (strings duplicated). */
static int copy_field(Santa__SyncSettings *dst, const Santa__SyncSettings *src,
		      const struct field *f)
{
	const void *from = (const char *)src + f->val_off;
	void *to = val_of(dst, f);
	char *s;

	switch (f->type) {
	case FT_BOOL:
		*(protobuf_c_boolean *)to = *(const protobuf_c_boolean *)from;
		break;
	case FT_UINT32:
		*(uint32_t *)to = *(const uint32_t *)from;
		break;
	case FT_INT64:
		*(int64_t *)to = *(const int64_t *)from;
		break;
	case FT_ENUM:
		*(int *)to = *(const int *)from;
		break;
	case FT_STRING:
		s = strdup(*(char *const *)from ? *(char *const *)from : "");
		if (!s)
			return -ENOMEM;
		if (*(char **)to != protobuf_c_empty_string)
			free(*(char **)to);
		*(char **)to = s;
		break;
	}
	return 0;
}

static int settings_copy(Santa__SyncSettings *dst, const Santa__SyncSettings *src)
{
	santa__sync_settings__init(dst);
	for (size_t i = 0; i < N_FIELDS; i++) {
		*has_of(dst, &fields[i]) = *(const protobuf_c_boolean *)((const char *)src +
									 fields[i].has_off);
		if (*has_of(dst, &fields[i]) && copy_field(dst, src, &fields[i]) < 0) {
			settings_free_strings(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

static int field_from_json(Santa__SyncSettings *s, const struct field *f, json_object *v)
{
	void *to = val_of(s, f);

	switch (f->type) {
	case FT_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return -EINVAL;
		*(protobuf_c_boolean *)to = json_object_get_boolean(v);
		break;
	case FT_UINT32:
	case FT_INT64:
	case FT_ENUM:
		if (!json_object_is_type(v, json_type_int))
			return -EINVAL;
		if (f->type == FT_UINT32)
			*(uint32_t *)to = (uint32_t)json_object_get_int64(v);
		else if (f->type == FT_INT64)
			*(int64_t *)to = json_object_get_int64(v);
		else
			*(int *)to = (int)json_object_get_int64(v);
		break;
	case FT_STRING:
		if (!json_object_is_type(v, json_type_string))
			return -EINVAL;
		if (!(*(char **)to = strdup(json_object_get_string(v))))
			return -ENOMEM;
		break;
	}
	*has_of(s, f) = 1;
	return 0;
}

static int parse_state(Santa__SyncSettings *s, const char *text, const char *path,
		       char *errbuf, size_t errsize)
{
	json_object *root = json_tokener_parse(text), *v;
	int err = 0;

	if (!root || !json_object_is_type(root, json_type_object)) {
		snprintf(errbuf, errsize, "%s: not a JSON object", path);
		json_object_put(root);
		return -EINVAL;
	}
	for (size_t i = 0; i < N_FIELDS && !err; i++) {
		if (!json_object_object_get_ex(root, fields[i].name, &v))
			continue;
		err = field_from_json(s, &fields[i], v);
		if (err)
			snprintf(errbuf, errsize, "%s: %s: wrong type", path, fields[i].name);
	}
	json_object_put(root);
	return err;
}

static char *read_text(const char *path, int *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		*err = -errno;
		return NULL;
	}
	buf = malloc(SYNCSTATE_MAX_SIZE + 1);
	if (buf) {
		len = fread(buf, 1, SYNCSTATE_MAX_SIZE + 1, f);
		buf[len > SYNCSTATE_MAX_SIZE ? SYNCSTATE_MAX_SIZE : len] = '\0';
	}
	*err = !buf ? -ENOMEM : len > SYNCSTATE_MAX_SIZE ? -EFBIG : ferror(f) ? -EIO : 0;
	fclose(f);
	if (*err) {
		free(buf);
		return NULL;
	}
	return buf;
}

int syncstate_load(syncstate *st, const char *path, char *errbuf, size_t errsize)
{
	char *text;
	int err;

	memset(st, 0, sizeof(*st));
	santa__sync_settings__init(&st->s);
	st->path = strdup(path);
	if (!st->path)
		return -ENOMEM;
	text = read_text(path, &err);
	if (!text) {
		if (err == -ENOENT)
			return 0;
		snprintf(errbuf, errsize, "%s: %s", path, strerror(-err));
		return err;
	}
	err = parse_state(&st->s, text, path, errbuf, errsize);
	free(text);
	if (err) {
		settings_free_strings(&st->s);
		santa__sync_settings__init(&st->s);
	}
	return err;
}

static json_object *field_to_json(Santa__SyncSettings *s, const struct field *f)
{
	void *v = val_of(s, f);

	switch (f->type) {
	case FT_BOOL:
		return json_object_new_boolean(*(protobuf_c_boolean *)v);
	case FT_UINT32:
		return json_object_new_int64(*(uint32_t *)v);
	case FT_INT64:
		return json_object_new_int64(*(int64_t *)v);
	case FT_ENUM:
		return json_object_new_int64(*(int *)v);
	default:
		return json_object_new_string(*(char **)v ? *(char **)v : "");
	}
}

static int write_state(const char *path, Santa__SyncSettings *s)
{
	json_object *root = json_object_new_object();
	char tmp[4096];
	const char *text;
	int fd, err = 0;
	size_t len;

	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < N_FIELDS; i++)
		if (*has_of(s, &fields[i]))
			json_object_object_add(root, fields[i].name, field_to_json(s, &fields[i]));
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
	} else {
		if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
			err = errno ? -errno : -EIO;
		close(fd);
		if (!err && rename(tmp, path) < 0)
			err = -errno;
		if (err)
			unlink(tmp);
	}
	json_object_put(root);
	return err;
}

int syncstate_update(syncstate *st, const Santa__SyncSettings *upd, char *errbuf,
		     size_t errsize)
{
	Santa__SyncSettings next;
	int err = settings_copy(&next, &st->s);

	if (err)
		goto fail;
	for (size_t i = 0; i < N_FIELDS && !err; i++) {
		const struct field *f = &fields[i];

		if (!*(const protobuf_c_boolean *)((const char *)upd + f->has_off))
			continue;
		err = copy_field(&next, upd, f);
		*has_of(&next, f) = 1;
		/* An empty regex removes the server's: the file's applies. */
		if (f->type == FT_STRING && !**(char **)val_of(&next, f)) {
			free(*(char **)val_of(&next, f));
			*(char **)val_of(&next, f) = (char *)protobuf_c_empty_string;
			*has_of(&next, f) = 0;
		}
	}
	if (!err)
		err = write_state(st->path, &next);
	if (err) {
		settings_free_strings(&next);
		goto fail;
	}
	settings_free_strings(&st->s);
	st->s = next;
	return 0;
fail:
	snprintf(errbuf, errsize, "saving sync settings to %s: %s", st->path, strerror(-err));
	return err;
}
