/* datasets.c: users/<u>/datasets/<d>/ — data files uploaded into files/. */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "filestore.h"
#include "people.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static char *files_path(struct ep_obj *o)
{
	return g_strdup_printf("datasets/%s/%s/files", o->parent_key, o->id);
}

static const struct ep_store_dir dataset_dirs[] = {
	{ .name = "files", .path = files_path },
	{ NULL },
};

int dataset_size_render_at(const char *dir, GString *out)
{
	uint64_t bytes = 0;
	int r = filestore_du(epfs_files, dir, &bytes);

	if (r < 0)
		return r;
	g_string_append_printf(out, "%" G_GUINT64_FORMAT, bytes);
	return 0;
}

/* size: the bytes of every file, from the store. */
static int render_size(struct ep_obj *o, GString *out)
{
	g_autofree char *path = files_path(o);

	return dataset_size_render_at(path, out);
}

/* preview/<file>: the names of the regular files at the top of files/. */
int dataset_preview_list_at(const char *path, GPtrArray *out)
{
	g_autoptr(GPtrArray) ents = filestore_dirents_new();
	int r = filestore_readdir(epfs_files, path, ents);

	if (r < 0)
		return r;
	for (guint i = 0; i < ents->len; i++) {
		struct filestore_dirent *e = ents->pdata[i];
		if (S_ISREG(e->st.st_mode) && !g_str_has_prefix(e->name, FILESTORE_TEMP_PREFIX))
			g_ptr_array_add(out, g_strdup(e->name));
	}
	return 0;
}

static int preview_list(struct ep_obj *o, GPtrArray *out)
{
	g_autofree char *path = files_path(o);

	return dataset_preview_list_at(path, out);
}

/* preview/<file>: its first 10 lines (head -n 10) and its size (du), as the seed's preview. */
int dataset_preview_render_at(const char *dir, const char *name, GString *out)
{
	g_autofree char *path = g_strconcat(dir, "/", name, NULL);
	g_autofree char *buf = g_malloc(65536);
	struct filestore_file *f = NULL;
	struct stat st;
	ssize_t n;
	int r, lines = 0;

	bool was;

	if ((r = filestore_lstat(epfs_files, path, &st)) < 0)
		return r;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	/* the file may be swapped for a symlink meanwhile: follow none */
	was = filestore_set_strict(true);
	r = filestore_file_open(epfs_files, path, O_RDONLY | O_NOFOLLOW, 0, &f);
	filestore_set_strict(was);
	if (r < 0)
		return r;
	n = filestore_pread(f, buf, 65536, 0);
	filestore_file_close(f);
	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n && lines < 10; i++) {
		g_string_append_c(out, buf[i]);
		if (buf[i] == '\n')
			lines++;
	}
	if (out->len && out->str[out->len - 1] != '\n')
		g_string_append_c(out, '\n');
	g_string_append_printf(out, "-- %s: %" G_GUINT64_FORMAT " bytes\n", name, (guint64)st.st_size);
	return 0;
}

static int preview_render(struct ep_obj *o, const char *name, GString *out)
{
	g_autofree char *dir = files_path(o);

	return dataset_preview_render_at(dir, name, out);
}

static const struct ep_gen_dir dataset_gen_dirs[] = {
	{ .name = "preview", .list = preview_list, .render = preview_render },
	{ NULL },
};

static const struct ep_attr dataset_attrs[] = {
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "shared", .column = "shared", .type = AT_BOOL, .flags = ATTR_ACTION, .apply = share_apply },
	{ .name = "share_progress", .type = AT_TEXT, .flags = ATTR_RO | ATTR_NOINFO, .render = share_render_progress },
	{ .name = "size", .type = AT_SIZE, .flags = ATTR_RO | ATTR_LIVE, .render = render_size },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int dataset_create(struct ep_ctx *ctx, const char *user, const char *id)
{
	g_autofree char *base = g_strdup_printf("datasets/%s/%s", user, id);
	g_autofree char *files = g_strconcat(base, "/files", NULL);
	int r;

	if ((r = db_run(ctx->db, "INSERT INTO dataset (user_id, id) VALUES (?, ?)", NULL, DB_PARAMS(user, id))) < 0)
		return r;
	if ((r = filestore_remove_tree(epfs_files, base)) < 0 && r != -ENOENT)
		return r;
	return store_mkdirs(files);
}

/* rmdir: refused while projects use it; its files go with it. */
static int dataset_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autofree char *base = g_strdup_printf("datasets/%s/%s", o->parent_key, o->id);
	g_autoptr(db_result) users = NULL;
	int r;

	if ((r = db_run(ctx->db, "SELECT user_id, project_id FROM project_dataset WHERE dataset_user_id = ? "
	                         "AND dataset_id = ? LIMIT 1", &users, DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if (users->rows->len)
		return ep_errorf(EBUSY, "dataset %s is linked from users/%s/projects/%s", o->id,
		                 db_get(users, 0, "user_id"), db_get(users, 0, "project_id"));
	if ((r = db_run(ctx->db, "DELETE FROM dataset WHERE user_id = ? AND id = ?", NULL,
	                DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if ((r = share_forget(o)) < 0)
		return r;
	if ((r = filestore_remove_tree(epfs_files, base)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

const struct ep_kind kind_datasets = {
	.name = "datasets",
	.table = "dataset",
	.parent = &kind_users,
	.parent_column = "user_id",
	.attrs = dataset_attrs,
	.store_dirs = dataset_dirs,
	.gen_dirs = dataset_gen_dirs,
	.create = dataset_create,
	.remove = dataset_remove,
	.may_write = user_owns,
	.may_create = user_is,
	.owner = user_owner_of,
	.recover = share_recover,
};
