/* projects.c: users/<u>/projects/<p>/ — a project: work/ (the user's own
 * files, full POSIX), input/ (read-only copies of linked datasets). */
#include "db.h"
#include "epfs.h"
#include "errlog.h"
#include "error.h"
#include "jobs.h"
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

/* ---- linked datasets: datasets/<d>@ and their copies in input/<d>/ ---- */

static int linked_list(struct ep_obj *o, GPtrArray *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT dataset_id FROM project_dataset WHERE user_id = ? AND project_id = ? "
	                   "ORDER BY dataset_id", &r, DB_PARAMS(o->parent_key, o->id));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_ptr_array_add(out, g_strdup(db_get(r, i, "dataset_id")));
	return 0;
}

/* Where a link to dataset name points: one of the user's, or a public one. */
static char *linked_target(const char *name, bool public)
{
	return g_strconcat(public ? "../../../../../public/datasets/" : "../../../datasets/", name, NULL);
}

static int linked_render(struct ep_obj *o, const char *name, GString *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT public FROM project_dataset WHERE user_id = ? AND project_id = ? AND dataset_id = ?",
	                   &r, DB_PARAMS(o->parent_key, o->id, name));
	g_autofree char *target = NULL;

	if (ret < 0)
		return ret;
	if (!r->rows->len)
		return -ENOENT;
	target = linked_target(name, !g_strcmp0(db_get(r, 0, "public"), "1"));
	g_string_append(out, target);
	return 0;
}

struct copy_job {
	char *src;              /* the dataset's files/ in the store (its own, or the public copy) */
	char *user, *project, *dataset;
	char *journal;          /* its journal row: a crash restarts the copy */
	int percent;
};

static void copy_job_free(gpointer p)
{
	struct copy_job *j = p;

	g_free(j->src);
	g_free(j->user);
	g_free(j->project);
	g_free(j->dataset);
	g_free(j->journal);
	g_free(j);
}

static bool copy_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct copy_job *j = opaque;
	int percent = total ? (int)(done * 99 / total) : 99;

	/* one update per percent is plenty */
	if (percent != j->percent) {
		g_autofree char *p = g_strdup_printf("%d", percent);
		j->percent = percent;
		db_query("UPDATE project_dataset SET progress = ? WHERE user_id = ? AND project_id = ? AND dataset_id = ?",
		         NULL, DB_PARAMS(p, j->user, j->project, j->dataset));
	}
	return true;
}

/* The copy of a linked dataset into input/, in the background. */
static int copy_job_run(void *data)
{
	struct copy_job *j = data;
	const char *src = j->src;
	g_autofree char *dst = g_strdup_printf("projects/%s/%s/input/%s", j->user, j->project, j->dataset);
	g_autofree char *key = g_strdup_printf("%s/%s", j->user, j->project);
	int r;

	if ((r = filestore_remove_tree(epfs_files, dst)) < 0 && r != -ENOENT)
		goto out;
	r = filestore_copy_tree(epfs_files, src, dst, copy_progress, j);
out:
	db_query("UPDATE project_dataset SET status = ?, progress = ? WHERE user_id = ? AND project_id = ? "
	         "AND dataset_id = ?", NULL,
	         DB_PARAMS(r < 0 ? "error" : "ready", r < 0 ? "0" : "100", j->user, j->project, j->dataset));
	if (r < 0)
		errlog_append(&kind_projects, key, "copy dataset", -r, ep_error_message());
	if (j->journal)
		journal_end(j->journal);
	kind_changed(&kind_projects, key);
	return r;
}

static void copy_start(const char *user, const char *project, const char *dataset, bool public, bool journal)
{
	struct copy_job *j = g_new0(struct copy_job, 1);
	g_autofree char *key = g_strdup_printf("%s/%s", user, project);

	j->src = public ? g_strdup_printf("public/datasets/%s/files", dataset)
	                : g_strdup_printf("datasets/%s/%s/files", user, dataset);
	j->user = g_strdup(user);
	j->project = g_strdup(project);
	j->dataset = g_strdup(dataset);
	j->percent = -1;
	if (journal && journal_begin("copy-dataset", &kind_projects, key, dataset, &j->journal) < 0)
		j->journal = NULL;
	jobs_run(copy_job_run, j, copy_job_free);
}

/* A copy a crash interrupted starts again from the beginning. */
static int project_recover(const char *op, const char *key, const char *step, const char *data)
{
	g_auto(GStrv) parts = g_strsplit(key, "/", 2);
	g_autoptr(db_result) r = NULL;

	(void)step;
	if (g_str_has_prefix(op, "publish-"))
		return share_recover(op, key, step, data);
	if (strcmp(op, "copy-dataset") || g_strv_length(parts) != 2)
		return 0;
	db_query("UPDATE project_dataset SET status = 'copying', progress = 0 WHERE user_id = ? AND project_id = ? "
	         "AND dataset_id = ?", NULL, DB_PARAMS(parts[0], parts[1], data));
	if (db_query("SELECT public FROM project_dataset WHERE user_id = ? AND project_id = ? AND dataset_id = ?", &r,
	             DB_PARAMS(parts[0], parts[1], data)) < 0 || !r->rows->len)
		return 0;   /* unlinked meanwhile */
	copy_start(parts[0], parts[1], data, !g_strcmp0(db_get(r, 0, "public"), "1"), true);
	return 0;
}

/* target with or without a trailing slash */
static bool target_is(const char *target, const char *want)
{
	size_t len = strlen(want);

	return !strncmp(target, want, len) && (!target[len] || !strcmp(target + len, "/"));
}

static int linked_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	g_autofree char *dkey = g_strdup_printf("%s/%s", o->parent_key, name);
	g_autofree char *rel = linked_target(name, false);
	g_autofree char *pub = linked_target(name, true);
	bool public = target_is(target, pub);
	const char *owner = o->parent_key;
	g_autoptr(ep_obj) ds = NULL;
	int r;

	(void)ctx;
	/* the link is relative, as ls -l shows it: ../../../datasets/<d>, or
	 * ../../../../../public/datasets/<d> for a public one */
	if (!public && !target_is(target, rel))
		return ep_errorf(EINVAL, "'%s' does not point at one of your datasets or a public one: ln -s %s (or %s)",
		                 target, rel, pub);
	if (public) {
		if ((r = kind_load(&kind_public_datasets, name, &ds)) < 0)
			return r == -ENOENT ? ep_errorf(ENOENT, "public/datasets/%s does not exist", name) : r;
		owner = obj_get(ds, "owner_id");
	} else if ((r = kind_load(&kind_datasets, dkey, &ds)) < 0) {
		return r == -ENOENT ? ep_errorf(ENOENT, "users/%s/datasets/%s does not exist", o->parent_key, name) : r;
	}
	if ((r = db_query("INSERT INTO project_dataset (user_id, project_id, dataset_user_id, dataset_id, public) "
	                  "VALUES (?, ?, ?, ?, ?)", NULL,
	                  DB_PARAMS(o->parent_key, o->id, owner, name, public ? "1" : "0"))) < 0)
		return r == -EEXIST ? ep_errorf(EEXIST, "dataset %s is linked already", name) : r;
	/* copies return at once; progress tells how far they are */
	copy_start(o->parent_key, o->id, name, public, true);
	return 0;
}

static int linked_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	g_autofree char *dst = g_strdup_printf("projects/%s/%s/input/%s", o->parent_key, o->id, name);
	g_autoptr(db_result) res = NULL;
	int r;

	(void)ctx;
	if ((r = db_query("DELETE FROM project_dataset WHERE user_id = ? AND project_id = ? AND dataset_id = ?",
	                  &res, DB_PARAMS(o->parent_key, o->id, name))) < 0)
		return r;
	if (res->affected == 0)
		return ep_errorf(ENOENT, "dataset %s is not linked", name);
	r = filestore_remove_tree(epfs_files, dst);
	return r == -ENOENT ? 0 : r;
}

static const struct ep_gen_dir project_gen_dirs[] = {
	{ .name = "datasets", .list = linked_list, .render = linked_render, .symlinks = true,
	  .link = linked_link, .unlink = linked_unlink },
	{ NULL },
};

/* progress: one line per linked dataset: "<dataset> <copying|ready|error> <percent>". */
static int render_progress(struct ep_obj *o, GString *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT dataset_id, status, progress FROM project_dataset WHERE user_id = ? "
	                   "AND project_id = ? ORDER BY dataset_id", &r, DB_PARAMS(o->parent_key, o->id));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_string_append_printf(out, "%s%s %s %s", i ? "\n" : "", db_get(r, i, "dataset_id"),
		                       db_get(r, i, "status"), db_get(r, i, "progress"));
	return 0;
}

static const struct ep_attr project_attrs[] = {
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "shared", .column = "shared", .type = AT_BOOL, .flags = ATTR_ACTION, .apply = share_apply },
	{ .name = "share_progress", .type = AT_TEXT, .flags = ATTR_RO | ATTR_NOINFO, .render = share_render_progress },
	{ .name = "progress", .type = AT_TEXT, .flags = ATTR_RO | ATTR_LIVE | ATTR_NOINFO, .render = render_progress },
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
	                DB_PARAMS(o->parent_key, o->id))) < 0 ||
	    (r = share_forget(o)) < 0)
		return r;
	if ((r = filestore_remove_tree(epfs_files, base)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

const struct ep_kind kind_projects = {
	.name = "projects",
	.table = "project",
	.parent = &kind_users,
	.parent_column = "user_id",
	.attrs = project_attrs,
	.store_dirs = project_dirs,
	.gen_dirs = project_gen_dirs,
	.create = project_create,
	.remove = project_remove,
	.may_write = user_owns,
	.may_create = user_is,
	.owner = user_owner_of,
	.recover = project_recover,
};
