/* templates.c: templates/<id>/ — environment templates: an image or a
 * snapshot (a homework base, seed 000) and a flavour, and instances made
 * from them. */
#include "templates.h"
#include "db.h"
#include "error.h"
#include "people.h"
#include "value.h"

#include <errno.h>
#include <string.h>

static const char *const template_kinds[] = { "vm", "desktop", "jupyter", NULL };

/* A snapshot may be a base unless it is stale (its image's flavour changed). */
static int snapshot_usable(struct db_conn *db, const char *inst, const char *snap, char **image)
{
	g_autoptr(db_result) res = NULL;
	int r;

	if ((r = db_run(db, "SELECT image_id, stale FROM snapshot WHERE instance_id = ? AND id = ?", &res,
	                DB_PARAMS(inst, snap))) < 0)
		return r;
	if (res->rows->len == 0)
		return ep_errorf(ENOENT, "instances/%s/snapshots/%s does not exist", inst, snap);
	if (!g_strcmp0(db_get(res, 0, "stale"), "1"))
		return ep_errorf(EINVAL, "snapshot %s/%s is stale: the flavour of image %s changed since it was "
		                 "taken; take a new snapshot", inst, snap,
		                 db_get(res, 0, "image_id") ? db_get(res, 0, "image_id") : "?");
	if (!db_get(res, 0, "image_id"))
		return ep_errorf(EINVAL, "snapshot %s/%s has no image", inst, snap);
	if (image)
		*image = g_strdup(db_get(res, 0, "image_id"));
	return 0;
}

int template_apply_to(struct db_conn *db, const char *template_id, const char *instance_id)
{
	g_autoptr(db_result) t = NULL;
	g_autofree char *image = NULL;
	const char *binst, *bsnap;
	int r;

	if ((r = db_run(db, "SELECT image_id, snapshot_instance_id, snapshot_id, cpu, memory FROM template "
	                    "WHERE id = ?", &t, DB_PARAMS(template_id))) < 0)
		return r;
	if (t->rows->len == 0)
		return ep_errorf(ENOENT, "templates/%s does not exist", template_id);
	binst = db_get(t, 0, "snapshot_instance_id");
	bsnap = db_get(t, 0, "snapshot_id");
	if (binst && bsnap) {
		if ((r = snapshot_usable(db, binst, bsnap, &image)) < 0)
			return r;
	} else if (db_get(t, 0, "image_id")) {
		image = g_strdup(db_get(t, 0, "image_id"));
		binst = bsnap = NULL;
	} else {
		return ep_errorf(EINVAL, "templates/%s has neither image nor snapshot: ln -s one first", template_id);
	}
	return db_run(db, "UPDATE instance SET template_id = ?, image_id = ?, cpu = ?, memory = ?, "
	                  "base_instance_id = ?, base_snapshot_id = ? WHERE id = ?", NULL,
	              DB_PARAMS(template_id, image, db_get(t, 0, "cpu"), db_get(t, 0, "memory"), binst, bsnap,
	                        instance_id));
}

int template_check(const char *template_id)
{
	g_autoptr(db_conn) c = NULL;
	int r;

	if ((r = db_acquire(&c)) < 0 || (r = db_begin(c)) < 0)
		return r;
	/* the checks of a real instantiation, on no instance, undone */
	r = template_apply_to(c, template_id, "");
	db_rollback(c);
	return r < 0 ? r : 0;
}

int template_instantiate(struct ep_ctx *ctx, const char *template_id, const char *instance_id,
                         const char *owner_user)
{
	g_autoptr(db_conn) c = NULL;
	int r;

	(void)ctx;
	if (!value_id_valid(instance_id))
		return ep_errorf(EINVAL, "'%s' is not a valid instance id", instance_id);
	if (!template_id || !value_id_valid(template_id))
		return ep_errorf(EINVAL, "'%s' is not a valid template id", template_id ? template_id : "");
	if ((r = db_acquire(&c)) < 0 || (r = db_begin(c)) < 0)
		return r;
	r = db_run(c, "INSERT INTO instance (id, owner_id) VALUES (?, ?)", NULL,
	           DB_PARAMS(instance_id, owner_user && *owner_user ? owner_user : NULL));
	if (r == -EEXIST)
		r = ep_errorf(EEXIST, "instances/%s already exists", instance_id);
	if (r >= 0)
		r = template_apply_to(c, template_id, instance_id);
	if (r >= 0)
		r = db_commit(c);
	else
		db_rollback(c);
	kind_changed(&kind_instances, instance_id);
	return r < 0 ? r : 0;
}

/* image and snapshot are the two kinds of base: one at a time. */
static int image_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)canon;
	if (*v && obj_get(o, "snapshot_key"))
		return ep_errorf(EBUSY, "image: templates/%s is based on snapshot %s; rm snapshot first", o->id,
		                 obj_get(o, "snapshot_key"));
	return 0;
}

static int snapshot_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	g_auto(GStrv) ids = g_strsplit(v, "/", 2);
	g_autoptr(db_conn) c = NULL;
	int r;

	(void)ctx;
	(void)canon;
	if (!*v)
		return 0;
	if (obj_get(o, "image_id"))
		return ep_errorf(EBUSY, "snapshot: templates/%s is based on image %s; rm image first", o->id,
		                 obj_get(o, "image_id"));
	if ((r = db_acquire(&c)) < 0)
		return r;
	return snapshot_usable(c, ids[0], ids[1], NULL);
}

static int snapshot_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	g_auto(GStrv) ids = g_strsplit(canon, "/", 2);

	if (!*canon)
		return db_run(ctx->db, "UPDATE template SET snapshot_instance_id = NULL, snapshot_id = NULL WHERE id = ?",
		              NULL, DB_PARAMS(o->id));
	return db_run(ctx->db, "UPDATE template SET snapshot_instance_id = ?, snapshot_id = ? WHERE id = ?", NULL,
	              DB_PARAMS(ids[0], ids[1], o->id));
}

static const struct ep_attr template_attrs[] = {
	{ .name = "image", .column = "image_id", .type = AT_LINK, .link_kind = "images", .validate = image_validate },
	{ .name = "snapshot", .column = "snapshot_key", .type = AT_LINK, .link_nested = &kind_snapshots,
	  .validate = snapshot_validate, .apply = snapshot_apply },
	{ .name = "cpu", .column = "cpu", .type = AT_INT, .min = 1, .max = 1024 },
	{ .name = "memory", .column = "memory", .type = AT_SIZE, .min = 16 << 20 },
	{ .name = "kind", .column = "kind", .type = AT_ENUM, .choices = template_kinds },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

/* rmdir: refused while an experiment or an instance was made from it. */
static int template_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) users = NULL;
	int r;

	if ((r = db_run(ctx->db, "SELECT CONCAT('courses/', course_id, '/experiments/', id) AS who FROM experiment "
	                         "WHERE template_id = ? UNION ALL SELECT CONCAT('instances/', id) FROM instance "
	                         "WHERE template_id = ? LIMIT 1", &users, DB_PARAMS(o->id, o->id))) < 0)
		return r;
	if (users->rows->len)
		return ep_errorf(EBUSY, "templates/%s is used by %s", o->id, db_get(users, 0, "who"));
	return db_run(ctx->db, "DELETE FROM template WHERE id = ?", NULL, DB_PARAMS(o->id));
}

/* Admins manage templates; teachers (who prepare homework) make templates
 * and change the ones they made, never another's (a course or the per-user
 * service may be built on it). */
static bool template_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	if (ctx->admin)
		return true;
	return ctx->teacher && (!o || !g_strcmp0(obj_get(o, "owner_id"), ctx->user));
}

static int template_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	(void)parent_key;
	return db_run(ctx->db, "INSERT INTO template (id, owner_id) VALUES (?, ?)", NULL,
	              DB_PARAMS(id, ctx->user[0] ? ctx->user : NULL));
}

static uid_t template_owner(struct ep_obj *o)
{
	return user_uid(obj_get(o, "owner_id"));
}

const struct ep_kind kind_templates = {
	.name = "templates",
	.table = "template",
	.attrs = template_attrs,
	.create = template_create,
	.remove = template_remove,
	.may_write = template_may_write,
	.owner = template_owner,
};
