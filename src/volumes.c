/* volumes.c: volumes/<id>/ — data volumes in the volume pool. */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "compute.h"
#include "kind.h"
#include "storage.h"

#include <errno.h>
#include <string.h>

static const char *const volume_states[] = {
	"draft", "creating", "available", "attaching", "in-use", "detaching", "deleting", "error", NULL
};

static bool attached(struct ep_obj *o)
{
	const char *inst = obj_get(o, "instance_id");
	const char *st = obj_get(o, "status");

	return (inst && *inst) || !strcmp(st, "in-use") || !strcmp(st, "attaching") ||
	       !strcmp(st, "detaching");
}

static int size_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)canon;
	if (attached(o))
		return ep_errorf(EBUSY, "size: volume %s is attached to instance %s; detach it first", o->id,
		                 obj_get(o, "instance_id") ? obj_get(o, "instance_id") : "?");
	return sized_check(o, v);
}

/* Writing size creates the bytes of a draft volume, or grows them. */
static int size_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	return sized_apply(ctx, o, canon, epfs_storage->volume_pool);
}

static const struct ep_attr volume_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "size", .column = "size", .type = AT_SIZE, .validate = size_validate, .apply = size_apply },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "status", .column = "status", .type = AT_ENUM, .flags = ATTR_RO, .choices = volume_states },
	{ .name = "instance", .column = "instance_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "instances" },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

/* mkdir: a draft; bytes already in the pool under this id are adopted. */
static int volume_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	struct storage_stat st = { 0 };
	int r;

	(void)parent_key;
	/* instances keep their root disks in the volume pool under these names */
	if (g_str_has_suffix(id, ".root"))
		return ep_errorf(EINVAL, "'%s': ids ending in .root are reserved for root disks", id);
	r = storage_stat(epfs_storage, epfs_storage->volume_pool, id, &st);
	if (r == -ENOENT)
		return db_run(ctx->db, "INSERT INTO volume (id) VALUES (?)", NULL, DB_PARAMS(id));
	if (r < 0)
		return r;
	g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, st.size);
	storage_stat_clear(&st);
	return db_run(ctx->db, "INSERT INTO volume (id, size, status) VALUES (?, ?, 'available')", NULL,
	              DB_PARAMS(id, size));
}

/* rmdir: delete the record and the bytes; refused while attached. */
static int volume_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	int r;

	if (attached(o))
		return ep_errorf(EBUSY, "volume %s is attached to instance %s; rm the link first", o->id,
		                 obj_get(o, "instance_id") ? obj_get(o, "instance_id") : "?");
	if ((r = db_run(ctx->db, "DELETE FROM volume WHERE id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return r;
	if (strcmp(obj_get(o, "status"), "draft")) {
		r = storage_remove(epfs_storage, epfs_storage->volume_pool, o->id);
		if (r == -ENOENT)
			r = 0;
	}
	return r;
}

const struct ep_kind kind_volumes = {
	.name = "volumes",
	.table = "volume",
	.attrs = volume_attrs,
	.create = volume_create,
	.remove = volume_remove,
};
