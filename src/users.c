/* users.c: users/<id>/ — the people of the platform, and who is asking. */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "filestore.h"
#include "people.h"
#include "teaching.h"

#include <errno.h>
#include <string.h>

static const char *const roles[] = { "admin", "teacher", "student", NULL };

/* Who each uid is: built from the users' listing, kept for a second and
 * dropped at once when a user changes (here, or through change_log), so a
 * request costs one hash lookup whatever the number of users. */
static struct {
	GMutex lock;
	GHashTable *by_uid;     /* uid (GUINT_TO_POINTER) -> ep_obj * of the user */
	gint64 built;
} uids;

static void uids_drop(const char *key)
{
	(void)key;
	g_mutex_lock(&uids.lock);
	g_clear_pointer(&uids.by_uid, g_hash_table_destroy);
	g_mutex_unlock(&uids.lock);
}

/* The user with uid (a new reference), or NULL. */
static struct ep_obj *user_by_uid(uid_t uid)
{
	struct ep_obj *u = NULL;

	g_mutex_lock(&uids.lock);
	if (uids.by_uid && g_get_monotonic_time() - uids.built > G_USEC_PER_SEC)
		g_clear_pointer(&uids.by_uid, g_hash_table_destroy);
	if (!uids.by_uid) {
		g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
		if (kind_list(&kind_users, NULL, all) == 0) {
			uids.by_uid = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)obj_unref);
			uids.built = g_get_monotonic_time();
			for (guint i = 0; i < all->len; i++) {
				struct ep_obj *o = all->pdata[i];
				const char *v = obj_get(o, "uid");
				if (v)
					g_hash_table_insert(uids.by_uid, GUINT_TO_POINTER(g_ascii_strtoull(v, NULL, 10)),
					                    obj_ref(o));
			}
		}
	}
	if (uids.by_uid && (u = g_hash_table_lookup(uids.by_uid, GUINT_TO_POINTER(uid))))
		obj_ref(u);
	g_mutex_unlock(&uids.lock);
	return u;
}

void ctx_identify(struct ep_ctx *ctx)
{
	g_autoptr(ep_obj) u = NULL;
	const char *role;

	ctx->user[0] = '\0';
	ctx->teacher = false;
	if (ctx->uid == 0 || !(u = user_by_uid(ctx->uid)))
		return;
	role = obj_get(u, "role");
	g_strlcpy(ctx->user, u->id, sizeof(ctx->user));
	ctx->admin |= !g_strcmp0(role, "admin");
	ctx->teacher = !g_strcmp0(role, "teacher");
}

uid_t user_uid(const char *user)
{
	g_autoptr(ep_obj) u = NULL;
	const char *uid;

	if (!user || kind_load(&kind_users, user, &u) < 0 || !(uid = obj_get(u, "uid")))
		return 0;
	return (uid_t)g_ascii_strtoull(uid, NULL, 10);
}

bool user_owns(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && ctx->user[0] && !strcmp(o->parent_key, ctx->user));
}

bool user_is(struct ep_ctx *ctx, const char *user)
{
	return ctx->user[0] && !g_strcmp0(user, ctx->user);
}

uid_t user_owner_of(struct ep_obj *o)
{
	return user_uid(o->parent_key);
}

int store_mkdirs(const char *path)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	g_autoptr(GString) p = g_string_new(NULL);
	int r;

	for (guint i = 0; parts[i]; i++) {
		g_string_append_printf(p, "%s%s", i ? "/" : "", parts[i]);
		if ((r = filestore_mkdir(epfs_files, p->str, 0755)) < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

static int uid_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r;

	(void)ctx;
	(void)canon;
	if (!strcmp(v, "0"))
		return ep_errorf(EINVAL, "uid: 0 is root, who is an admin already");
	if ((r = kind_list(&kind_users, NULL, all)) < 0)
		return r;
	for (guint i = 0; i < all->len; i++) {
		struct ep_obj *u = all->pdata[i];
		if (strcmp(u->id, o->id) && !g_strcmp0(obj_get(u, "uid"), v))
			return ep_errorf(EEXIST, "uid: %s is users/%s already", v, u->id);
	}
	return 0;
}

static int email_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)o;
	(void)canon;
	if (*v && (!strchr(v, '@') || strchr(v, ' ')))
		return ep_errorf(EINVAL, "email: '%s' is not an address", v);
	return 0;
}

static const struct ep_attr user_attrs[] = {
	{ .name = "uid", .column = "uid", .type = AT_INT, .flags = ATTR_ADMIN, .min = 1, .max = 4294967294LL,
	  .validate = uid_validate },
	{ .name = "role", .column = "role", .type = AT_ENUM, .flags = ATTR_ADMIN, .choices = roles },
	{ .name = "display_name", .column = "display_name", .type = AT_LINE },
	{ .name = "email", .column = "email", .type = AT_LINE, .validate = email_validate },
	{ .name = "enrol", .type = AT_TEXT, .flags = ATTR_NOINFO | ATTR_LIVE | ATTR_ACTION, .render = enrol_render,
	  .validate = enrol_validate, .apply = enrol_apply },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static bool user_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && ctx->user[0] && !strcmp(o->id, ctx->user));
}

/* Everyone sees users/, and in it only themselves (admins: everyone). */
static bool user_visible(struct ep_ctx *ctx, struct ep_obj *o)
{
	return !o || (ctx->user[0] && !strcmp(o->id, ctx->user));
}

static uid_t user_owner(struct ep_obj *o)
{
	const char *uid = obj_get(o, "uid");

	return uid ? (uid_t)g_ascii_strtoull(uid, NULL, 10) : 0;
}

/* mkdir: the record and the user's folders in the file store. */
static int user_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	g_autofree char *projects = g_strconcat("projects/", id, NULL);
	g_autofree char *datasets = g_strconcat("datasets/", id, NULL);
	int r;

	(void)parent_key;
	if ((r = db_run(ctx->db, "INSERT INTO `user` (id) VALUES (?)", NULL, DB_PARAMS(id))) < 0)
		return r;
	if ((r = store_mkdirs(projects)) < 0 || (r = store_mkdirs(datasets)) < 0)
		return r;
	return 0;
}

/* rmdir: the user, their projects and datasets, and their files. */
static int user_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autofree char *projects = g_strconcat("projects/", o->id, NULL);
	g_autofree char *datasets = g_strconcat("datasets/", o->id, NULL);
	int r;

	g_autoptr(db_result) owned = NULL;

	/* a user changes her own record, but only admins remove users */
	if (!ctx->admin)
		return ep_errorf(EACCES, "only admins remove users");
	/* her environments and service are machines with disks: removed on purpose, not by this */
	if ((r = db_run(ctx->db, "SELECT id FROM instance WHERE owner_id = ? ORDER BY id LIMIT 1", &owned,
	                DB_PARAMS(o->id))) < 0)
		return r;
	if (owned->rows->len)
		return ep_errorf(EBUSY, "users/%s owns instance %s (an experiment environment or her service): "
		                 "remove it first (echo none > state)", o->id, db_get(owned, 0, "id"));
	/* her service's volume holds her data: removed on purpose too, never handed to a new namesake */
	g_clear_pointer(&owned, db_result_free);
	if ((r = db_run(ctx->db, "SELECT s.volume_id FROM service s JOIN volume v ON v.id = s.volume_id "
	                         "WHERE s.id = ?", &owned, DB_PARAMS(o->id))) < 0)
		return r;
	if (owned->rows->len)
		return ep_errorf(EBUSY, "users/%s has her service's volume %s: rmdir volumes/%s first", o->id,
		                 db_get(owned, 0, "volume_id"), db_get(owned, 0, "volume_id"));
	if ((r = db_run(ctx->db, "DELETE FROM service WHERE id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return r;
	if ((r = db_run(ctx->db, "DELETE FROM course_student WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM class_student WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM environment WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "UPDATE course SET teacher_id = NULL WHERE teacher_id = ?", NULL,
	                DB_PARAMS(o->id))) < 0)
		return r;
	if ((r = share_forget_user(ctx, o->id)) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM project_dataset WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM project WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM dataset WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM snippet WHERE user_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM `user` WHERE id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return r;
	if ((r = filestore_remove_tree(epfs_files, projects)) < 0 && r != -ENOENT)
		return r;
	if ((r = filestore_remove_tree(epfs_files, datasets)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

const struct ep_kind kind_users = {
	.name = "users",
	.table = "user",
	.attrs = user_attrs,
	.create = user_create,
	.remove = user_remove,
	.may_write = user_may_write,
	.visible = user_visible,
	.owner = user_owner,
	.has_snippets = true,
	.changed = uids_drop,
};
