/* public.c: public/projects/<p>/ and public/datasets/<ds>/ — what users share.
 *
 * `echo 1 > shared` in a user's project or dataset copies its folder of the
 * file store (work/ and input/, or files/) to public/<area>/<id> in the store,
 * as a journaled background job (share_progress shows it).  Once the copy is
 * complete the record is listed under public/, read-only for everybody: a
 * snapshot of the moment it was published.  `echo 0 > shared` withdraws it
 * and removes the copy.  Public names are one namespace per kind; the
 * database's unique key on public_id refuses a second one (EEXIST).
 */
#include "db.h"
#include "epfs.h"
#include "errlog.h"
#include "error.h"
#include "filestore.h"
#include "jobs.h"
#include "people.h"

#include <errno.h>
#include <string.h>

/* A kind that can be shared, and where its records and copies live. */
struct share_kind {
	const struct ep_kind *kind;     /* users/<u>/projects */
	const struct ep_kind *pub;      /* public/projects */
	const char *area;               /* "projects": the store folder of both */
	const char *op;                 /* the journal's name for the copy */
};

static const struct share_kind share_kinds[] = {
	{ &kind_projects, &kind_public_projects, "projects", "publish-project" },
	{ &kind_datasets, &kind_public_datasets, "datasets", "publish-dataset" },
};

static const struct share_kind *share_kind_of(const struct ep_kind *k)
{
	for (guint i = 0; i < G_N_ELEMENTS(share_kinds); i++)
		if (share_kinds[i].kind == k)
			return &share_kinds[i];
	return NULL;
}

static char *private_base(const struct share_kind *sk, const char *user, const char *id)
{
	return g_strdup_printf("%s/%s/%s", sk->area, user, id);
}

static char *public_base(const struct share_kind *sk, const char *id)
{
	return g_strdup_printf("public/%s/%s", sk->area, id);
}

/* ---- the copy ---- */

struct share_job {
	const struct share_kind *sk;
	char *user, *id;
	char *journal;
	int percent;
};

static void share_job_free(gpointer p)
{
	struct share_job *j = p;

	g_free(j->user);
	g_free(j->id);
	g_free(j->journal);
	g_free(j);
}

static bool share_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct share_job *j = opaque;
	int percent = total ? (int)(done * 99 / total) : 99;

	if (percent != j->percent) {
		g_autofree char *sql = g_strdup_printf("UPDATE `%s` SET share_progress = ? WHERE user_id = ? AND id = ? "
		                                       "AND share_status = 'copying'", j->sk->kind->table);
		g_autofree char *p = g_strdup_printf("%d", percent);
		j->percent = percent;
		db_query(sql, NULL, DB_PARAMS(p, j->user, j->id));
	}
	return true;
}

static int share_job_run(void *data)
{
	struct share_job *j = data;
	const char *table = j->sk->kind->table;
	g_autofree char *src = private_base(j->sk, j->user, j->id);
	g_autofree char *dst = public_base(j->sk, j->id);
	g_autofree char *area = g_strconcat("public/", j->sk->area, NULL);
	g_autofree char *key = g_strdup_printf("%s/%s", j->user, j->id);
	g_autoptr(db_result) res = NULL;
	g_autofree char *sql = NULL;
	int r;

	/* the area first: the sftp store's lstat of a path below a missing
	 * directory is not safe; then what a crash or an earlier publish left */
	if ((r = store_mkdirs(area)) < 0)
		goto out;
	if ((r = filestore_remove_tree(epfs_files, dst)) < 0 && r != -ENOENT)
		goto out;
	r = filestore_copy_tree(epfs_files, src, dst, share_progress, j);
out:
	if (r >= 0) {
		sql = g_strdup_printf("UPDATE `%s` SET share_status = 'ready', share_progress = 100, share_time = NOW(6) "
		                      "WHERE user_id = ? AND id = ? AND shared = 1 AND share_status = 'copying'", table);
		/* the record went away meanwhile: so does its copy */
		if (db_query(sql, &res, DB_PARAMS(j->user, j->id)) == 0 && res->affected == 0)
			filestore_remove_tree(epfs_files, dst);
	} else {
		g_autofree char *msg = g_strdup(ep_error_message());
		sql = g_strdup_printf("UPDATE `%s` SET shared = 0, share_status = 'error', share_progress = 0 "
		                      "WHERE user_id = ? AND id = ? AND share_status = 'copying'", table);
		db_query(sql, NULL, DB_PARAMS(j->user, j->id));
		errlog_append(j->sk->kind, key, "publish", -r, msg);
		filestore_remove_tree(epfs_files, dst);
	}
	if (j->journal)
		journal_end(j->journal);
	kind_changed(j->sk->kind, key);
	kind_changed(j->sk->pub, j->id);
	return r;
}

/* Copy in the background; journal: the job's journal row (NULL: make one). */
static void share_start(const struct share_kind *sk, const char *user, const char *id, char *journal)
{
	struct share_job *j = g_new0(struct share_job, 1);
	g_autofree char *key = g_strdup_printf("%s/%s", user, id);

	j->sk = sk;
	j->user = g_strdup(user);
	j->id = g_strdup(id);
	j->percent = -1;
	j->journal = journal;
	if (!j->journal && journal_begin(sk->op, sk->kind, key, NULL, &j->journal) < 0)
		j->journal = NULL;
	jobs_run(share_job_run, j, share_job_free);
}

int share_recover(const char *op, const char *key, const char *step, const char *data)
{
	g_auto(GStrv) parts = g_strsplit(key, "/", 2);
	g_autoptr(db_result) res = NULL;

	(void)step;
	(void)data;
	for (guint i = 0; i < G_N_ELEMENTS(share_kinds); i++) {
		const struct share_kind *sk = &share_kinds[i];
		g_autofree char *sql = NULL;
		int r;

		if (strcmp(op, sk->op) || g_strv_length(parts) != 2)
			continue;
		/* the copy starts again from the beginning */
		sql = g_strdup_printf("UPDATE `%s` SET share_status = 'copying', share_progress = 0 "
		                      "WHERE user_id = ? AND id = ? AND shared = 1", sk->kind->table);
		if ((r = db_query(sql, &res, DB_PARAMS(parts[0], parts[1]))) < 0)
			return r;
		if (res->affected)
			share_start(sk, parts[0], parts[1], NULL);
		return 0;
	}
	return 0;
}

/* ---- shared: publish and withdraw ---- */

static int share_publish(const struct share_kind *sk, struct ep_obj *o)
{
	g_autofree char *sql = g_strdup_printf("UPDATE `%s` SET shared = 1, share_status = 'copying', share_progress = 0 "
	                                       "WHERE user_id = ? AND id = ? AND shared = 0", sk->kind->table);
	g_autofree char *key = g_strdup_printf("%s/%s", o->parent_key, o->id);
	g_autofree char *journal = NULL;
	g_autoptr(db_result) res = NULL;
	int r;

	/* journaled before it is recorded: a crash in between restarts the copy at start-up */
	if ((r = journal_begin(sk->op, sk->kind, key, NULL, &journal)) < 0)
		return r;
	if ((r = db_query(sql, &res, DB_PARAMS(o->parent_key, o->id))) < 0 || !res->affected)
		journal_end(journal);
	if (r == -EEXIST) {
		g_autofree char *who_sql = g_strdup_printf("SELECT user_id FROM `%s` WHERE public_id = ?", sk->kind->table);
		g_autoptr(db_result) who = NULL;
		const char *other = db_query(who_sql, &who, DB_PARAMS(o->id)) == 0 && who->rows->len
		                    ? db_get(who, 0, "user_id") : "another user";
		return ep_errorf(EEXIST, "public/%s/%s is taken: %s shares one of that name (public names are unique)",
		                 sk->area, o->id, other);
	}
	if (r < 0)
		return r;
	if (res->affected)
		share_start(sk, o->parent_key, o->id, g_steal_pointer(&journal));
	return 0;
}

static int share_withdraw(const struct share_kind *sk, struct ep_obj *o)
{
	g_autofree char *dst = public_base(sk, o->id);
	g_autofree char *sql = NULL;
	g_autoptr(db_result) res = NULL;
	int r;

	if (!g_strcmp0(obj_get(o, "share_status"), "copying"))
		return ep_errorf(EBUSY, "public/%s/%s is still being copied (share_progress): withdraw it once ready",
		                 sk->area, o->id);
	if (sk->kind == &kind_datasets) {
		g_autoptr(db_result) users = NULL;
		if ((r = db_query("SELECT user_id, project_id FROM project_dataset WHERE dataset_user_id = ? "
		                  "AND dataset_id = ? AND public = 1 LIMIT 1", &users,
		                  DB_PARAMS(o->parent_key, o->id))) < 0)
			return r;
		if (users->rows->len)
			return ep_errorf(EBUSY, "public/datasets/%s is linked from users/%s/projects/%s", o->id,
			                 db_get(users, 0, "user_id"), db_get(users, 0, "project_id"));
	}
	sql = g_strdup_printf("UPDATE `%s` SET shared = 0, share_status = '', share_progress = 0, share_time = NULL "
	                      "WHERE user_id = ? AND id = ? AND share_status <> 'copying'", sk->kind->table);
	if ((r = db_query(sql, &res, DB_PARAMS(o->parent_key, o->id))) < 0)
		return r;
	if (!res->affected)
		return ep_errorf(EBUSY, "public/%s/%s is being copied: withdraw it once ready", sk->area, o->id);
	kind_changed(sk->pub, o->id);
	if ((r = filestore_remove_tree(epfs_files, dst)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

int share_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	const struct share_kind *sk = share_kind_of(o->kind);
	int r;

	(void)ctx;
	if (!sk)
		return ep_errorf(EINVAL, "%s cannot be shared", o->kind->name);
	r = !strcmp(canon, "1") ? share_publish(sk, o) : share_withdraw(sk, o);
	kind_changed(sk->pub, o->id);
	return r;
}

int share_render_progress(struct ep_obj *o, GString *out)
{
	const char *status = obj_get(o, "share_status");

	if (status && *status)
		g_string_append_printf(out, "%s %s", status, obj_get(o, "share_progress"));
	return 0;
}

int share_forget(struct ep_obj *o)
{
	const struct share_kind *sk = share_kind_of(o->kind);
	g_autofree char *dst = NULL;
	int r;

	if (!sk)
		return 0;
	/* the job would finish into a record that is gone */
	if (!g_strcmp0(obj_get(o, "share_status"), "copying"))
		return ep_errorf(EBUSY, "%s/%s is being copied to public/%s: remove it once share_progress is ready",
		                 o->kind->name, o->id, sk->area);
	/* only a copy that is ours: after a failed publish the name may be another's */
	if (g_strcmp0(obj_get(o, "shared"), "1") || g_strcmp0(obj_get(o, "share_status"), "ready"))
		return 0;
	dst = public_base(sk, o->id);
	kind_changed(sk->pub, o->id);
	if ((r = filestore_remove_tree(epfs_files, dst)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

int share_forget_user(struct ep_ctx *ctx, const char *user)
{
	for (guint i = 0; i < G_N_ELEMENTS(share_kinds); i++) {
		const struct share_kind *sk = &share_kinds[i];
		g_autofree char *sql = g_strdup_printf("SELECT id FROM `%s` WHERE user_id = ? AND shared = 1",
		                                       sk->kind->table);
		g_autoptr(db_result) res = NULL;
		int r;

		if ((r = db_run(ctx->db, sql, &res, DB_PARAMS(user))) < 0)
			return r;
		for (guint j = 0; j < res->rows->len; j++) {
			g_autofree char *dst = public_base(sk, db_get(res, j, "id"));
			kind_changed(sk->pub, db_get(res, j, "id"));
			if ((r = filestore_remove_tree(epfs_files, dst)) < 0 && r != -ENOENT)
				return r;
		}
	}
	return 0;
}

/* ---- the public kinds: views of the shared records ---- */

static bool public_visible(struct ep_ctx *ctx, struct ep_obj *o)
{
	(void)ctx;
	(void)o;
	return true;        /* SPEC rule 9: everybody sees what is public */
}

static bool public_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	(void)ctx;
	(void)o;
	return false;       /* published through users/<u>/.../shared, never here */
}

static uid_t public_owner(struct ep_obj *o)
{
	return user_uid(obj_get(o, "owner_id"));
}

static char *public_work(struct ep_obj *o)
{
	return g_strdup_printf("public/projects/%s/work", o->id);
}

static char *public_input(struct ep_obj *o)
{
	return g_strdup_printf("public/projects/%s/input", o->id);
}

static const struct ep_store_dir public_project_dirs[] = {
	{ .name = "work", .read_only = true, .path = public_work },
	{ .name = "input", .read_only = true, .path = public_input },
	{ NULL },
};

/* Only owner@, work/ and input/: cp -a of the directory copies the files, and
 * no attribute files it could not write back into a private project. */
static const struct ep_attr public_project_attrs[] = {
	{ .name = "owner", .column = "owner_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "users" },
	{ NULL },
};

const struct ep_kind kind_public_projects = {
	.name = "public/projects",
	.table = "public_project",
	.attrs = public_project_attrs,
	.store_dirs = public_project_dirs,
	.may_write = public_may_write,
	.visible = public_visible,
	.owner = public_owner,
	.read_only = true,
};

static char *public_files(struct ep_obj *o)
{
	return g_strdup_printf("public/datasets/%s/files", o->id);
}

static const struct ep_store_dir public_dataset_dirs[] = {
	{ .name = "files", .read_only = true, .path = public_files },
	{ NULL },
};

static int public_size(struct ep_obj *o, GString *out)
{
	g_autofree char *path = public_files(o);

	return dataset_size_render_at(path, out);
}

static int public_preview_list(struct ep_obj *o, GPtrArray *out)
{
	g_autofree char *path = public_files(o);

	return dataset_preview_list_at(path, out);
}

static int public_preview_render(struct ep_obj *o, const char *name, GString *out)
{
	g_autofree char *path = public_files(o);

	return dataset_preview_render_at(path, name, out);
}

static const struct ep_gen_dir public_dataset_gen_dirs[] = {
	{ .name = "preview", .list = public_preview_list, .render = public_preview_render },
	{ NULL },
};

static const struct ep_attr public_dataset_attrs[] = {
	{ .name = "owner", .column = "owner_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "users" },
	{ .name = "describe", .column = "describe", .type = AT_TEXT, .flags = ATTR_RO },
	{ .name = "size", .type = AT_SIZE, .flags = ATTR_RO | ATTR_LIVE, .render = public_size },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "info.json", .type = AT_INFO, .flags = ATTR_RO },
	{ NULL },
};

const struct ep_kind kind_public_datasets = {
	.name = "public/datasets",
	.table = "public_dataset",
	.attrs = public_dataset_attrs,
	.store_dirs = public_dataset_dirs,
	.gen_dirs = public_dataset_gen_dirs,
	.may_write = public_may_write,
	.visible = public_visible,
	.owner = public_owner,
	.read_only = true,
};
