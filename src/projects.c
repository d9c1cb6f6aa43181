/* projects.c: users/<u>/projects/<p>/ — a project: work/ (the user's own
 * files, full POSIX), input/ (read-only copies of linked datasets). */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "filestore.h"
#include "people.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static char *work_path(struct ep_obj *o)
{
	return g_strdup_printf("projects/%s/%s/work", o->parent_key, o->id);
}

static char *input_path(struct ep_obj *o)
{
	return g_strdup_printf("projects/%s/%s/input", o->parent_key, o->id);
}

static const struct ep_store_dir project_dirs[] = {
	{ .name = "work", .path = work_path },
	{ .name = "input", .read_only = true, .path = input_path },
	{ NULL },
};

static const struct ep_attr project_attrs[] = {
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

/* Copy the local directory src (the default files) into the store at dst. */
static int copy_defaults(const char *src, const char *dst)
{
	g_autoptr(GDir) dir = g_dir_open(src, 0, NULL);
	const char *name;
	int r;

	if (!dir)
		return 0;
	while ((name = g_dir_read_name(dir))) {
		g_autofree char *from = g_build_filename(src, name, NULL);
		g_autofree char *to = g_strconcat(dst, "/", name, NULL);
		g_autofree char *data = NULL;
		struct filestore_file *f = NULL;
		gsize len;

		if (g_file_test(from, G_FILE_TEST_IS_DIR)) {
			if ((r = filestore_mkdir(epfs_files, to, 0755)) < 0 && r != -EEXIST)
				return r;
			if ((r = copy_defaults(from, to)) < 0)
				return r;
			continue;
		}
		if (!g_file_get_contents(from, &data, &len, NULL))
			continue;
		if ((r = filestore_file_open(epfs_files, to, O_WRONLY | O_CREAT | O_TRUNC, 0644, &f)) < 0)
			return r;
		r = filestore_pwrite(f, data, len, 0) < 0 ? -EIO : 0;
		filestore_file_close(f);
		if (r < 0)
			return r;
	}
	return 0;
}

/* mkdir: the record, its folders, and the default files in work/. */
static int project_create(struct ep_ctx *ctx, const char *user, const char *id)
{
	g_autofree char *base = g_strdup_printf("projects/%s/%s", user, id);
	g_autofree char *work = g_strconcat(base, "/work", NULL);
	g_autofree char *input = g_strconcat(base, "/input", NULL);
	g_autofree char *defaults = g_key_file_get_string(epfs_config, "projects", "default_files", NULL);
	int r;

	if ((r = db_run(ctx->db, "INSERT INTO project (user_id, id) VALUES (?, ?)", NULL, DB_PARAMS(user, id))) < 0)
		return r;
	/* leftovers of an earlier project of that name are not inherited */
	if ((r = filestore_remove_tree(epfs_files, base)) < 0 && r != -ENOENT)
		return r;
	if ((r = store_mkdirs(work)) < 0 || (r = store_mkdirs(input)) < 0)
		return r;
	if (defaults && (r = copy_defaults(defaults, work)) < 0)
		return r;
	return 0;
}

static int project_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autofree char *base = g_strdup_printf("projects/%s/%s", o->parent_key, o->id);
	int r;

	if ((r = db_run(ctx->db, "DELETE FROM project_dataset WHERE user_id = ? AND project_id = ?", NULL,
	                DB_PARAMS(o->parent_key, o->id))) < 0 ||
	    (r = db_run(ctx->db, "DELETE FROM project WHERE user_id = ? AND id = ?", NULL,
	                DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if ((r = filestore_remove_tree(epfs_files, base)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

static bool owner_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && ctx->user[0] && !strcmp(o->parent_key, ctx->user));
}

static bool owner_may_create(struct ep_ctx *ctx, const char *user)
{
	return ctx->user[0] && !g_strcmp0(user, ctx->user);
}

static uid_t parent_owner(struct ep_obj *o)
{
	return user_uid(o->parent_key);
}

const struct ep_kind kind_projects = {
	.name = "projects",
	.table = "project",
	.parent = &kind_users,
	.parent_column = "user_id",
	.attrs = project_attrs,
	.store_dirs = project_dirs,
	.create = project_create,
	.remove = project_remove,
	.may_write = owner_may_write,
	.may_create = owner_may_create,
	.owner = parent_owner,
};
