/* snapshots.c: instances/<i>/snapshots/<s>/ — domain snapshots, each with a
 * storage snapshot of the root disk (<i>.root@<s>) that instances made from a
 * template based on it are cloned from (homework, seed 000).  A snapshot
 * goes stale when the flavour of its image changes (seed 000, question 6). */
#include "compute.h"
#include "db.h"
#include "error.h"
#include "epfs.h"
#include "events.h"
#include "storage.h"

#include <errno.h>
#include <string.h>

static const char *const snap_states[] = { "available", "stale", "revert", NULL };
static const char *const snap_status[] = { "available", "stale", NULL };

static int render_status(struct ep_obj *o, GString *out)
{
	g_string_append(out, !strcmp(obj_get(o, "stale"), "1") ? "stale" : "available");
	return 0;
}

/* echo revert > state: go back to the snapshot. */
static int state_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *word)
{
	g_autoptr(ep_obj) inst = NULL;
	const char *host;
	int r;

	(void)ctx;
	if (strcmp(word, "revert"))
		return ep_errorf(EINVAL, "state: write revert to go back to this snapshot");
	if (!strcmp(obj_get(o, "stale"), "1"))
		return ep_errorf(EINVAL, "state: snapshot %s is stale: the flavour of image %s changed since",
		                 o->id, obj_get(o, "image_id") ? obj_get(o, "image_id") : "?");
	if ((r = kind_load(&kind_instances, o->parent_key, &inst)) < 0)
		return r;
	host = obj_get(inst, "host_id");
	if ((r = host_prepare(host)) < 0 || (r = hv_snapshot_revert(host, inst->id, o->id)) < 0)
		return r;
	events_post(&kind_instances, inst->id, "reverted to snapshot %s", o->id);
	kind_changed(&kind_instances, inst->id);
	return 0;
}

static const struct ep_attr snapshot_attrs[] = {
	{ .name = "state", .type = AT_ENUM, .flags = ATTR_ACTION, .choices = snap_states, .render = render_status,
	  .apply = state_apply },
	{ .name = "status", .type = AT_ENUM, .flags = ATTR_RO, .choices = snap_status, .render = render_status },
	{ .name = "image", .column = "image_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "images" },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int snapshot_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	g_autoptr(ep_obj) inst = NULL;
	g_autofree char *root = NULL;
	const char *host;
	int r;

	if ((r = kind_load(&kind_instances, parent_key, &inst)) < 0)
		return r;
	if (!instance_provisioned(inst))
		return ep_errorf(EINVAL, "instance %s is %s: only a provisioned instance has snapshots", inst->id,
		                 obj_get(inst, "status"));
	if ((r = db_run(ctx->db, "INSERT INTO snapshot (instance_id, id, image_id, status) VALUES (?, ?, ?, 'available')",
	                NULL, DB_PARAMS(inst->id, id, obj_get(inst, "image_id")))) < 0)
		return r;
	/* the disk first: it is undone at once if the domain snapshot fails */
	root = instance_root_disk(inst->id);
	if ((r = storage_snap_create(epfs_storage, epfs_storage->volume_pool, root, id)) < 0)
		return r;
	host = obj_get(inst, "host_id");
	if ((r = host_prepare(host)) < 0 || (r = hv_snapshot_create(host, inst->id, id)) < 0) {
		g_autofree char *msg = g_strdup(ep_error_message());
		storage_snap_remove(epfs_storage, epfs_storage->volume_pool, root, id);
		return ep_errorf(-r, "%s", msg);
	}
	events_post(&kind_instances, inst->id, "snapshot %s taken", id);
	return 0;
}

static int snapshot_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(ep_obj) inst = NULL;
	g_autoptr(db_result) users = NULL;
	g_autofree char *root = NULL;
	const char *host;
	int r;

	if ((r = db_run(ctx->db, "SELECT id FROM template WHERE snapshot_instance_id = ? AND snapshot_id = ? LIMIT 1",
	                &users, DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if (users->rows->len)
		return ep_errorf(EBUSY, "snapshot %s is the base of templates/%s", o->id, db_get(users, 0, "id"));
	g_clear_pointer(&users, db_result_free);
	if ((r = db_run(ctx->db, "SELECT id FROM instance WHERE base_instance_id = ? AND base_snapshot_id = ? LIMIT 1",
	                &users, DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if (users->rows->len)
		return ep_errorf(EBUSY, "snapshot %s is the base of instances/%s", o->id, db_get(users, 0, "id"));
	if ((r = db_run(ctx->db, "DELETE FROM snapshot WHERE instance_id = ? AND id = ?", NULL,
	                DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	/* the domain's snapshot first: a host that cannot be reached refuses the
	 * removal before any bytes are gone, and the record stays whole */
	if ((r = kind_load(&kind_instances, o->parent_key, &inst)) < 0)
		return r;
	host = obj_get(inst, "host_id");
	if (instance_provisioned(inst)) {
		if ((r = host_prepare(host)) < 0)
			return r;
		if ((r = hv_snapshot_delete(host, inst->id, o->id)) < 0 && r != -ENOENT)
			return r;
	}
	/* then the root disk's snapshot (unprotected once no clone needs it) */
	root = instance_root_disk(o->parent_key);
	r = storage_snap_unprotect(epfs_storage, epfs_storage->volume_pool, root, o->id);
	if (r == -EBUSY)
		return r;
	r = storage_snap_remove(epfs_storage, epfs_storage->volume_pool, root, o->id);
	return r == -ENOENT ? 0 : r;
}

/* Who changes an instance changes its snapshots. */
static bool snapshot_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && instance_teacher_owns(ctx, o->parent_key));
}

static bool snapshot_may_create(struct ep_ctx *ctx, const char *instance)
{
	return instance_teacher_owns(ctx, instance);
}

const struct ep_kind kind_snapshots = {
	.name = "snapshots",
	.table = "snapshot",
	.parent = &kind_instances,
	.parent_column = "instance_id",
	.attrs = snapshot_attrs,
	.create = snapshot_create,
	.remove = snapshot_remove,
	.may_write = snapshot_may_write,
	.may_create = snapshot_may_create,
};
