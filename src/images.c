/* images.c: images/<id>/ — VM images and their bytes in the image pool. */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "compute.h"
#include "kind.h"
#include "storage.h"
#include "value.h"

#include <errno.h>
#include <string.h>

static const char *const os_types[] = { "linux", "windows", "other", NULL };
static const char *const image_states[] = { "draft", "available", "error", NULL };

int sized_check(struct ep_obj *o, const char *v)
{
	uint64_t want = g_ascii_strtoull(v, NULL, 10);
	uint64_t have = g_ascii_strtoull(obj_get(o, "size"), NULL, 10);

	if (want == 0)
		return ep_errorf(EINVAL, "size: must be more than 0");
	if (strcmp(obj_get(o, "status"), "draft") && want < have)
		return ep_errorf(EINVAL, "size: shrinking from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
		                 " bytes would destroy data", have, want);
	return 0;
}

int sized_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon, const char *pool)
{
	uint64_t size = g_ascii_strtoull(canon, NULL, 10);
	bool draft = !strcmp(obj_get(o, "status"), "draft");
	int r;

	if ((r = obj_set(ctx, o, "size", canon)) < 0)
		return r;
	if (draft) {
		if ((r = obj_set(ctx, o, "status", "available")) < 0)
			return r;
		return storage_create(epfs_storage, pool, o->id, size);
	}
	return storage_resize(epfs_storage, pool, o->id, size);
}

static int size_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)canon;
	return sized_check(o, v);
}

static int size_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	return sized_apply(ctx, o, canon, epfs_storage->image_pool);
}

/* cpu, memory, gpu and vgpu are the flavour: snapshots made under the old one go stale. */
static int flavour_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *column, const char *canon)
{
	g_autoptr(db_result) snaps = NULL;
	int r = obj_set(ctx, o, column, canon);

	if (r < 0 ||
	    (r = db_run(ctx->db, "SELECT CONCAT(instance_id, '/', id) AS k FROM snapshot WHERE image_id = ? AND "
	                         "stale = 0 FOR UPDATE", &snaps, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "UPDATE snapshot SET stale = 1 WHERE image_id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return r;
	/* the snapshots' own files change too (change_log tells other mounts) */
	for (guint i = 0; i < snaps->rows->len; i++)
		kind_changed(&kind_snapshots, db_get(snaps, i, "k"));
	return 0;
}

static int cpu_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v) { return flavour_apply(ctx, o, "cpu", v); }
static int memory_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v) { return flavour_apply(ctx, o, "memory", v); }
static int gpu_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v) { return flavour_apply(ctx, o, "gpu", v); }
static int vgpu_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v) { return flavour_apply(ctx, o, "vgpu", v); }

static int vgpu_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)o;
	(void)canon;
	for (const char *p = v; *p; p++)
		if (!g_ascii_isalnum(*p) && !strchr("._-", *p))
			return ep_errorf(EINVAL, "vgpu: '%s' is not a profile name (letters, digits, . _ -)", v);
	return 0;
}

static int path_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)o;
	(void)canon;
	if (*v && (v[0] != '/' || strstr(v, "/../")))
		return ep_errorf(EINVAL, "'%s' must be an absolute path on the hypervisor host", v);
	return 0;
}

static const struct ep_attr image_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "os_type", .column = "os_type", .type = AT_ENUM, .choices = os_types },
	{ .name = "size", .column = "size", .type = AT_SIZE, .validate = size_validate, .apply = size_apply },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "gpu", .column = "gpu", .type = AT_BOOL, .apply = gpu_apply },
	{ .name = "vgpu", .column = "vgpu", .type = AT_LINE, .validate = vgpu_validate, .apply = vgpu_apply },
	{ .name = "cpu", .column = "cpu", .type = AT_INT, .min = 1, .max = 1024, .apply = cpu_apply },
	{ .name = "memory", .column = "memory", .type = AT_SIZE, .min = 16 << 20, .apply = memory_apply },
	{ .name = "status", .column = "status", .type = AT_ENUM, .flags = ATTR_RO, .choices = image_states },
	{ .name = "purge", .column = "purge", .type = AT_BOOL },
	{ .name = "kernel", .column = "kernel", .type = AT_LINE, .validate = path_validate },
	{ .name = "initrd", .column = "initrd", .type = AT_LINE, .validate = path_validate },
	{ .name = "cmdline", .column = "cmdline", .type = AT_LINE },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

/* mkdir: a draft, or the registration of bytes already in the pool. */
static int image_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	struct storage_stat st = { 0 };
	int r;

	(void)parent_key;
	r = storage_stat(epfs_storage, epfs_storage->image_pool, id, &st);
	if (r == -ENOENT)
		return db_run(ctx->db, "INSERT INTO image (id) VALUES (?)", NULL, DB_PARAMS(id));
	if (r < 0)
		return r;
	g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, st.size);
	storage_stat_clear(&st);
	return db_run(ctx->db, "INSERT INTO image (id, size, status) VALUES (?, ?, 'available')", NULL,
	              DB_PARAMS(id, size));
}

/* The ids of the instances and templates using image id, or NULL if none. */
static char *image_users(struct ep_ctx *ctx, const char *id)
{
	g_autoptr(db_result) r = NULL;
	g_autoptr(GString) s = g_string_new(NULL);

	if (db_run(ctx->db, "SELECT CONCAT('instances/', id) AS who FROM instance WHERE image_id = ? "
	                    "UNION ALL SELECT CONCAT('templates/', id) FROM template WHERE image_id = ? "
	                    "ORDER BY 1 LIMIT 20", &r, DB_PARAMS(id, id)) < 0 || r->rows->len == 0)
		return NULL;
	for (guint i = 0; i < r->rows->len; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", db_get(r, i, "who"));
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The base snapshots root disks were cloned from, once no clone needs them
 * (a clone still there keeps its base, and the removal then names it). */
static void drop_bases(const char *image)
{
	g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func((GDestroyNotify)storage_snap_free);
	const char *pool = epfs_storage->image_pool;

	if (storage_snap_list(epfs_storage, pool, image, snaps) < 0)
		return;
	for (guint i = 0; i < snaps->len; i++) {
		struct storage_snap *sn = snaps->pdata[i];
		g_autoptr(GPtrArray) kids = g_ptr_array_new_with_free_func(g_free);

		if (!g_str_has_prefix(sn->name, "epfs-base-") ||
		    storage_children(epfs_storage, pool, image, sn->name, kids) < 0 || kids->len)
			continue;
		if (sn->protected_)
			storage_snap_unprotect(epfs_storage, pool, image, sn->name);
		storage_snap_remove(epfs_storage, pool, image, sn->name);
	}
}

/* rmdir: unregister; with purge=1 also delete the bytes. */
static int image_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autofree char *users = image_users(ctx, o->id);
	int r;

	if (users)
		return ep_errorf(EBUSY, "image %s is in use by %s", o->id, users);
	if ((r = db_run(ctx->db, "DELETE FROM image WHERE id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return r;
	if (!strcmp(obj_get(o, "purge"), "1") && strcmp(obj_get(o, "status"), "draft")) {
		drop_bases(o->id);
		r = storage_remove(epfs_storage, epfs_storage->image_pool, o->id);
		if (r == -ENOENT)
			r = 0;
	}
	return r;
}

extern const struct ep_kind kind_images;

/* images/.unregistered: ids in the image pool that no record names. */
static int render_unregistered(struct ep_ctx *ctx, GString *out)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
	int ret;

	(void)ctx;
	if ((ret = storage_list(epfs_storage, epfs_storage->image_pool, names)) < 0)
		return ret;
	/* the listing the directory read loaded already */
	if ((ret = kind_list(&kind_images, NULL, images)) < 0)
		return ret;
	for (guint i = 0; i < images->len; i++)
		g_hash_table_add(known, ((struct ep_obj *)images->pdata[i])->id);
	for (guint i = 0; i < names->len; i++)
		if (!g_hash_table_contains(known, names->pdata[i]))
			g_string_append_printf(out, "%s\n", (char *)names->pdata[i]);
	return 0;
}

static const struct ep_special image_specials[] = {
	{ ".unregistered", render_unregistered },
	{ NULL, NULL },
};

const struct ep_kind kind_images = {
	.name = "images",
	.table = "image",
	.attrs = image_attrs,
	.specials = image_specials,
	.create = image_create,
	.remove = image_remove,
};
