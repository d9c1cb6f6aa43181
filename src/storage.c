/* storage.c: the backend registry, storage_open() and the checking wrappers. */
#include "storage.h"

#include <errno.h>
#include <string.h>

#include "error.h"
#include "value.h"

/* Every backend, by the name used in [storage] backend=. */
static const struct storage_ops *const storage_backends[] = {
	&storage_dir_ops,
	&storage_rbd_ops,
};

const struct storage_ops *storage_backend(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(storage_backends); i++)
		if (strcmp(storage_backends[i]->name, name) == 0)
			return storage_backends[i];
	return NULL;
}

/* A string from [storage] key, or def when the key is missing. */
static char *config_string(GKeyFile *config, const char *key, const char *def)
{
	char *s = g_key_file_get_string(config, "storage", key, NULL);

	return s ? s : g_strdup(def);
}

/* [storage] timeout in seconds, default 10. */
static int config_timeout(GKeyFile *config, int *out_ms)
{
	g_autoptr(GError) error = NULL;
	int seconds = g_key_file_get_integer(config, "storage", "timeout", &error);

	if (error) {
		if (!g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
		    !g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
			return ep_errorf(EINVAL, "[storage] timeout: %s", error->message);
		seconds = 10;
	}
	/* an upper bound keeps timeout_ms far from int overflow */
	if (seconds <= 0 || seconds > 86400)
		return ep_errorf(EINVAL, "[storage] timeout must be 1..86400 seconds, not %d", seconds);
	*out_ms = seconds * 1000;
	return 0;
}

int storage_open(GKeyFile *config, struct storage **out)
{
	g_autofree char *backend = config_string(config, "backend", "dir");
	const struct storage_ops *ops = storage_backend(backend);
	struct storage *st;
	int timeout_ms = 0;
	int r;

	*out = NULL;
	if (!ops)
		return ep_errorf(EINVAL, "[storage] backend: unknown storage backend '%s'", backend);
	r = config_timeout(config, &timeout_ms);
	if (r < 0)
		return r;

	st = g_new0(struct storage, 1);
	st->ops = ops;
	st->image_pool = config_string(config, "image_pool", "images");
	st->volume_pool = config_string(config, "volume_pool", "volumes");
	st->timeout_ms = timeout_ms;
	if (!value_id_valid(st->image_pool) || !value_id_valid(st->volume_pool)) {
		r = ep_errorf(EINVAL, "[storage] image_pool '%s' or volume_pool '%s' is not a valid name",
		              st->image_pool, st->volume_pool);
		goto fail;
	}
	if (!ops->open) {
		r = ep_errorf(ENOSYS, "storage backend '%s' cannot be opened", ops->name);
		goto fail;
	}
	r = ops->open(st, config);
	if (r < 0)
		goto fail;
	*out = st;
	return 0;

fail:
	/* the backend did not open, so it must not be closed */
	st->ops = NULL;
	storage_close(st);
	return r;
}

void storage_close(struct storage *st)
{
	if (!st)
		return;
	if (st->ops && st->ops->close)
		st->ops->close(st);
	g_free(st->image_pool);
	g_free(st->volume_pool);
	g_free(st);
}

void storage_stat_clear(struct storage_stat *s)
{
	g_free(s->parent_pool);
	g_free(s->parent_image);
	g_free(s->parent_snap);
	memset(s, 0, sizeof(*s));
}

void storage_snap_free(struct storage_snap *s)
{
	if (!s)
		return;
	g_free(s->name);
	g_free(s);
}

/* True if st is open and its backend implements op. */
#define HAS_OP(st, op) ((st) && (st)->ops && (st)->ops->op)

/* Passed for a name an operation does not take; NULL is a caller's bug. */
static const char NO_NAME[] = "";

/* 0 if name is a valid id, else -EINVAL naming what it was meant to be. */
static int check_name(const char *kind, const char *name)
{
	if (name == NO_NAME)
		return 0;
	if (!name || !value_id_valid(name))
		return ep_errorf(EINVAL, "invalid %s name '%s'", kind, name ? name : "(null)");
	return 0;
}

/* 0 if st implements op and the names are valid, so backends can trust them. */
static int check(struct storage *st, bool has_op, const char *what, const char *pool,
                 const char *image, const char *snap)
{
	int r;

	if (!st || !st->ops)
		return ep_errorf(EINVAL, "storage %s: storage is not open", what);
	if (!has_op)
		return ep_errorf(ENOSYS, "storage backend '%s' does not support %s", st->ops->name, what);
	r = check_name("pool", pool);
	if (r == 0)
		r = check_name("image", image);
	if (r == 0)
		r = check_name("snapshot", snap);
	return r;
}

int storage_ping(struct storage *st)
{
	int r = check(st, HAS_OP(st, ping), "ping", NO_NAME, NO_NAME, NO_NAME);

	return r < 0 ? r : st->ops->ping(st);
}

int storage_create(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	int r = check(st, HAS_OP(st, create), "create", pool, image, NO_NAME);

	return r < 0 ? r : st->ops->create(st, pool, image, size);
}

int storage_stat(struct storage *st, const char *pool, const char *image, struct storage_stat *out)
{
	int r;

	/* callers may storage_stat_clear() whatever happened */
	memset(out, 0, sizeof(*out));
	r = check(st, HAS_OP(st, stat), "stat", pool, image, NO_NAME);
	return r < 0 ? r : st->ops->stat(st, pool, image, out);
}

int storage_resize(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	int r = check(st, HAS_OP(st, resize), "resize", pool, image, NO_NAME);

	return r < 0 ? r : st->ops->resize(st, pool, image, size);
}

int storage_list(struct storage *st, const char *pool, GPtrArray *out)
{
	int r = check(st, HAS_OP(st, list), "list", pool, NO_NAME, NO_NAME);

	return r < 0 ? r : st->ops->list(st, pool, out);
}

int storage_remove(struct storage *st, const char *pool, const char *image)
{
	int r = check(st, HAS_OP(st, remove), "remove", pool, image, NO_NAME);

	return r < 0 ? r : st->ops->remove(st, pool, image);
}

int storage_snap_create(struct storage *st, const char *pool, const char *image, const char *snap)
{
	int r = check(st, HAS_OP(st, snap_create), "snap_create", pool, image, snap);

	return r < 0 ? r : st->ops->snap_create(st, pool, image, snap);
}

int storage_snap_protect(struct storage *st, const char *pool, const char *image, const char *snap)
{
	int r = check(st, HAS_OP(st, snap_protect), "snap_protect", pool, image, snap);

	return r < 0 ? r : st->ops->snap_protect(st, pool, image, snap);
}

int storage_snap_unprotect(struct storage *st, const char *pool, const char *image, const char *snap)
{
	int r = check(st, HAS_OP(st, snap_unprotect), "snap_unprotect", pool, image, snap);

	return r < 0 ? r : st->ops->snap_unprotect(st, pool, image, snap);
}

int storage_snap_remove(struct storage *st, const char *pool, const char *image, const char *snap)
{
	int r = check(st, HAS_OP(st, snap_remove), "snap_remove", pool, image, snap);

	return r < 0 ? r : st->ops->snap_remove(st, pool, image, snap);
}

int storage_snap_list(struct storage *st, const char *pool, const char *image, GPtrArray *out)
{
	int r = check(st, HAS_OP(st, snap_list), "snap_list", pool, image, NO_NAME);

	return r < 0 ? r : st->ops->snap_list(st, pool, image, out);
}

int storage_clone(struct storage *st, const char *pool, const char *image, const char *snap,
                  const char *dst_pool, const char *dst_image)
{
	int r = check(st, HAS_OP(st, clone), "clone", pool, image, snap);

	if (r == 0)
		r = check_name("destination pool", dst_pool);
	if (r == 0)
		r = check_name("destination image", dst_image);
	return r < 0 ? r : st->ops->clone(st, pool, image, snap, dst_pool, dst_image);
}

int storage_children(struct storage *st, const char *pool, const char *image, const char *snap,
                     GPtrArray *out)
{
	int r = check(st, HAS_OP(st, children), "children", pool, image, snap);

	return r < 0 ? r : st->ops->children(st, pool, image, snap, out);
}

int storage_copy(struct storage *st, const char *pool, const char *image, const char *dst_pool,
                 const char *dst_image, storage_progress_fn *progress, void *data)
{
	int r = check(st, HAS_OP(st, copy), "copy", pool, image, NO_NAME);

	if (r == 0)
		r = check_name("destination pool", dst_pool);
	if (r == 0)
		r = check_name("destination image", dst_image);
	return r < 0 ? r : st->ops->copy(st, pool, image, dst_pool, dst_image, progress, data);
}

int storage_disk_source(struct storage *st, const char *pool, const char *image, GString *xml,
                        const char **disk_type)
{
	int r = check(st, HAS_OP(st, disk_source), "disk_source", pool, image, NO_NAME);

	return r < 0 ? r : st->ops->disk_source(st, pool, image, xml, disk_type);
}

const char *storage_format(struct storage *st, const char *pool, const char *image)
{
	if (!st->ops->format || !value_id_valid(pool) || !value_id_valid(image))
		return "raw";
	return st->ops->format(st, pool, image);
}
