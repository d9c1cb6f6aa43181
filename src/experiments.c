/* experiments.c: courses/<c>/experiments/<e>/ — a lab of a course (seed 004):
 * the environment it runs (a template, or an image), its text, its window
 * (start, end), its limits, the teacher's attachments, and the generated
 * progress.csv, grades.csv and grades.svg. */
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "filestore.h"
#include "people.h"
#include "teaching.h"
#include "value.h"

#include <errno.h>
#include <string.h>

static const char *const exp_kinds[] = { "vm", "desktop", "jupyter", NULL };

static char *attachments_path(struct ep_obj *o)
{
	return g_strdup_printf("courses/%s/experiments/%s/attachments", o->parent_key, o->id);
}

static const struct ep_store_dir experiment_dirs[] = {
	{ .name = "attachments", .path = attachments_path },
	{ NULL },
};

static int end_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	const char *start = obj_get(o, "start_time");

	(void)ctx;
	(void)canon;
	if (*v && start && value_db_time(v) <= value_db_time(start))
		return ep_errorf(EINVAL, "end: must be after start (%s)", start);
	return 0;
}

static int start_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	const char *end = obj_get(o, "end_time");

	(void)ctx;
	(void)canon;
	if (*v && end && value_db_time(v) >= value_db_time(end))
		return ep_errorf(EINVAL, "start: must be before end (%s)", end);
	return 0;
}

static int render_progress(struct ep_obj *o, GString *out)
{
	return experiment_progress_csv(o, out);
}

static int render_grades_csv(struct ep_obj *o, GString *out)
{
	return experiment_grades_csv(o, out);
}

static int render_grades_svg(struct ep_obj *o, GString *out)
{
	return experiment_grades_svg(o, out);
}

static const struct ep_attr experiment_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "template", .column = "template_id", .type = AT_LINK, .link_kind = "templates" },
	{ .name = "image", .column = "image_id", .type = AT_LINK, .link_kind = "images" },
	{ .name = "content.md", .column = "content", .type = AT_TEXT },
	{ .name = "start", .column = "start_time", .type = AT_TIME, .validate = start_validate },
	{ .name = "end", .column = "end_time", .type = AT_TIME, .validate = end_validate },
	{ .name = "published", .column = "published", .type = AT_BOOL },
	{ .name = "kind", .column = "kind", .type = AT_ENUM, .choices = exp_kinds },
	{ .name = "max_minutes", .column = "max_minutes", .type = AT_INT, .min = 0, .max = 4294967295LL },
	{ .name = "max_attempts", .column = "max_attempts", .type = AT_INT, .min = 0, .max = 4294967295LL },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "progress.csv", .type = AT_TEXT, .flags = ATTR_RO | ATTR_NOINFO | ATTR_LIVE,
	  .render = render_progress },
	{ .name = "grades.csv", .type = AT_TEXT, .flags = ATTR_RO | ATTR_NOINFO | ATTR_LIVE,
	  .render = render_grades_csv },
	{ .name = "grades.svg", .type = AT_TEXT, .flags = ATTR_RO | ATTR_NOINFO | ATTR_LIVE,
	  .render = render_grades_svg },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static bool experiment_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && course_teaches(ctx, o->parent_key));
}

static bool experiment_may_create(struct ep_ctx *ctx, const char *course)
{
	return course_teaches(ctx, course);
}

/* The attachments belong to the course's teacher (root when there is none). */
static uid_t experiment_owner(struct ep_obj *o)
{
	g_autoptr(ep_obj) c = NULL;

	if (kind_load(&kind_courses, o->parent_key, &c) < 0)
		return 0;
	return user_uid(obj_get(c, "teacher_id"));
}

static int experiment_create(struct ep_ctx *ctx, const char *course, const char *id)
{
	g_autofree char *dir = g_strdup_printf("courses/%s/experiments/%s/attachments", course, id);
	int r;

	if (strchr(id, '.'))
		return ep_errorf(EINVAL, "'%s': experiment ids may not contain '.'", id);
	if ((r = db_run(ctx->db, "INSERT INTO experiment (course_id, id) VALUES (?, ?)", NULL,
	                DB_PARAMS(course, id))) < 0)
		return r;
	return store_mkdirs(dir);
}

/* rmdir: refused while environments run; their instances go with it. */
static int experiment_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *dir = g_strdup_printf("courses/%s/experiments/%s", o->parent_key, o->id);
	int ret;

	if ((ret = db_run(ctx->db, "SELECT user_id FROM environment WHERE course_id = ? AND experiment_id = ? "
	                           "AND instance_id IS NOT NULL ORDER BY user_id LIMIT 1",
	                  &r, DB_PARAMS(o->parent_key, o->id))) < 0)
		return ret;
	if (r->rows->len)
		return ep_errorf(EBUSY, "experiment %s: %s still has an environment (stop and clean it, or wait for "
		                 "the scheduler after the end)", o->id, db_get(r, 0, "user_id"));
	if ((ret = db_run(ctx->db, "DELETE FROM environment WHERE course_id = ? AND experiment_id = ?", NULL,
	                  DB_PARAMS(o->parent_key, o->id))) < 0 ||
	    (ret = db_run(ctx->db, "DELETE FROM experiment WHERE course_id = ? AND id = ?", NULL,
	                  DB_PARAMS(o->parent_key, o->id))) < 0)
		return ret;
	ret = filestore_remove_tree(epfs_files, dir);
	return ret == -ENOENT ? 0 : ret;
}

/* Every member's view of the experiment changes with it. */
static void experiment_changed(const char *key)
{
	g_autofree char *course = g_strdup(key);
	char *slash = strchr(course, '/');

	if (!slash)
		return;
	*slash = '\0';
	course_views_changed(course, NULL);
}

const struct ep_kind kind_experiments = {
	.name = "experiments",
	.table = "experiment",
	.parent = &kind_courses,
	.parent_column = "course_id",
	.attrs = experiment_attrs,
	.create = experiment_create,
	.remove = experiment_remove,
	.may_write = experiment_may_write,
	.may_create = experiment_may_create,
	.owner = experiment_owner,
	.store_dirs = experiment_dirs,
	.changed = experiment_changed,
};
