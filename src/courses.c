/* courses.c: courses/<id>/ — a course with its teacher, type, enrolment key
 * and members.  students/<u>@ enrols one student, classes/<cls>@ a whole class
 * (seed 003); a student enrols herself by writing "<course> <key>" to
 * users/<me>/enrol. */
#include "cache.h"
#include "db.h"
#include "error.h"
#include "membership.h"
#include "people.h"
#include "teaching.h"
#include "value.h"

#include <errno.h>
#include <string.h>

bool course_teaches(struct ep_ctx *ctx, const char *course)
{
	g_autoptr(ep_obj) c = NULL;

	if (ctx->admin)
		return true;
	if (!ctx->teacher || !course || kind_load(&kind_courses, course, &c) < 0)
		return false;
	return !g_strcmp0(obj_get(c, "teacher_id"), ctx->user);
}

bool course_member(const char *course, const char *user)
{
	g_autoptr(db_result) r = NULL;

	if (db_query("SELECT 1 FROM course_member WHERE course_id = ? AND user_id = ?", &r,
	             DB_PARAMS(course, user)) < 0)
		return false;
	return r->rows->len > 0;
}

/* A record's own id may be the course (courses/<c>) or the key of a sub-record (c/e). */
static bool course_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && course_teaches(ctx, o->id));
}

/* ---- students/ and classes/: links to members ---- */

static const struct membership course_students = {
	.table = "course_student", .listed_from = "course_member", .owner_column = "course_id",
	.member_column = "user_id", .target = &kind_users, .what = "enrolled in",
};

static const struct membership course_classes = {
	.table = "course_class", .owner_column = "course_id", .member_column = "class_id",
	.target = &kind_classes, .what = "a class of",
};

static int students_list(struct ep_obj *o, GPtrArray *out)
{
	return membership_list(&course_students, o, out);
}

static int students_render(struct ep_obj *o, const char *name, GString *out)
{
	return membership_render(&course_students, o, name, out);
}

static int students_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	int r;

	(void)ctx;
	if ((r = membership_link(&course_students, o, name, target)) < 0)
		return r;
	kind_changed(&kind_users, name);
	course_views_changed(o->id, name);
	return 0;
}

static int students_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	int r;

	(void)ctx;
	if ((r = membership_unlink(&course_students, o, name)) == -ENOENT && course_member(o->id, name))
		return ep_errorf(EBUSY, "%s is in %s through a class: rm the class from classes/", name, o->id);
	if (r < 0)
		return r;
	kind_changed(&kind_users, name);
	course_views_changed(o->id, name);
	return 0;
}

static int classes_list(struct ep_obj *o, GPtrArray *out)
{
	return membership_list(&course_classes, o, out);
}

static int classes_render(struct ep_obj *o, const char *name, GString *out)
{
	return membership_render(&course_classes, o, name, out);
}

/* A class brings or takes many students' views: rare enough to start afresh. */
static int classes_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	int r = membership_link(&course_classes, o, name, target);

	(void)ctx;
	if (r == 0)
		cache_clear();
	return r;
}

static int classes_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	int r = membership_unlink(&course_classes, o, name);

	(void)ctx;
	if (r == 0)
		cache_clear();
	return r;
}

static const struct ep_gen_dir course_gen_dirs[] = {
	{ .name = "students", .list = students_list, .render = students_render, .symlinks = true,
	  .link = students_link, .unlink = students_unlink },
	{ .name = "classes", .list = classes_list, .render = classes_render, .symlinks = true,
	  .link = classes_link, .unlink = classes_unlink },
	{ NULL },
};

/* ---- the record ---- */

static int teacher_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	g_autoptr(ep_obj) u = NULL;
	const char *role;

	(void)ctx;
	(void)o;
	(void)canon;
	if (!*v)
		return 0;
	if (kind_load(&kind_users, v, &u) < 0)
		return ep_errorf(ENOENT, "teacher: users/%s does not exist", v);
	role = obj_get(u, "role");
	if (strcmp(role, "teacher") && strcmp(role, "admin"))
		return ep_errorf(EINVAL, "teacher: %s is a %s, not a teacher", v, role);
	return 0;
}

static const struct ep_attr course_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "number", .column = "number", .type = AT_LINE },
	{ .name = "type", .column = "type_id", .type = AT_LINK, .flags = ATTR_ADMIN, .link_kind = "course-types" },
	{ .name = "teacher", .column = "teacher_id", .type = AT_LINK, .flags = ATTR_ADMIN, .link_kind = "users",
	  .validate = teacher_validate },
	{ .name = "key", .column = "enrol_key", .type = AT_LINE },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int course_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if (!ctx->admin)
		return ep_errorf(EACCES, "only admins remove courses");
	if ((ret = db_run(ctx->db, "SELECT id FROM experiment WHERE course_id = ? ORDER BY id LIMIT 1", &r,
	                  DB_PARAMS(o->id))) < 0)
		return ret;
	if (r->rows->len)
		return ep_errorf(ENOTEMPTY, "course %s has experiment %s: rmdir it first", o->id,
		                 db_get(r, 0, "id"));
	if ((ret = db_run(ctx->db, "DELETE FROM course_student WHERE course_id = ?", NULL, DB_PARAMS(o->id))) < 0 ||
	    (ret = db_run(ctx->db, "DELETE FROM course_class WHERE course_id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return ret;
	return db_run(ctx->db, "DELETE FROM course WHERE id = ?", NULL, DB_PARAMS(o->id));
}

/* Teachers see courses/, and in it the courses they teach (with everything
 * below: experiments, students' environments, grades); students see none. */
static bool course_visible(struct ep_ctx *ctx, struct ep_obj *o)
{
	if (!o)
		return ctx->teacher;
	return course_teaches(ctx, o->id);
}

/* A course's id and its experiments' ids may not hold '.': it separates them
 * in users/<u>/experiments/<course>.<exp> and in instance names. */
static int course_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	(void)parent_key;
	if (strchr(id, '.'))
		return ep_errorf(EINVAL, "'%s': course ids may not contain '.'", id);
	return db_run(ctx->db, "INSERT INTO course (id) VALUES (?)", NULL, DB_PARAMS(id));
}

/* Remote changes to a course (its members) change its students' views. */
static void course_changed(const char *key)
{
	course_views_changed(key, NULL);
}

const struct ep_kind kind_courses = {
	.name = "courses",
	.table = "course",
	.attrs = course_attrs,
	.create = course_create,
	.remove = course_remove,
	.may_write = course_may_write,
	.visible = course_visible,
	.gen_dirs = course_gen_dirs,
	.changed = course_changed,
};

/* ---- users/<u>/enrol ---- */

int enrol_render(struct ep_obj *user, GString *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT course_id FROM course_member WHERE user_id = ? ORDER BY course_id", &r,
	                   DB_PARAMS(user->id));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_string_append_printf(out, "%s%s", i ? "\n" : "", db_get(r, i, "course_id"));
	return 0;
}

/* "<course> <key>": the course must exist and the key match. */
int enrol_validate(struct ep_ctx *ctx, struct ep_obj *user, const char *value, char **canon)
{
	g_auto(GStrv) words = g_strsplit_set(value, " \t\n", -1);
	g_autoptr(GPtrArray) w = g_ptr_array_new();
	g_autoptr(ep_obj) c = NULL;

	(void)canon;
	for (guint i = 0; words[i]; i++)
		if (*words[i])
			g_ptr_array_add(w, words[i]);
	if (w->len != 2)
		return ep_errorf(EINVAL, "enrol: write '<course> <key>' (the key your teacher gave you)");
	if (!ctx->admin && !user_is(ctx, user->id))
		return ep_errorf(EACCES, "enrol: one enrols oneself");
	if (!value_id_valid(w->pdata[0]) || kind_load(&kind_courses, w->pdata[0], &c) < 0)
		return ep_errorf(ENOENT, "enrol: there is no course %s", (char *)w->pdata[0]);
	if (!*obj_get(c, "enrol_key") || strcmp(obj_get(c, "enrol_key"), w->pdata[1]))
		return ep_errorf(EACCES, "enrol: wrong key for course %s", c->id);
	if (course_member(c->id, user->id))
		return ep_errorf(EEXIST, "enrol: you are in %s already", c->id);
	return 0;
}

int enrol_apply(struct ep_ctx *ctx, struct ep_obj *user, const char *value)
{
	g_auto(GStrv) words = g_strsplit_set(value, " \t\n", -1);
	const char *course = NULL;
	int r;

	for (guint i = 0; words[i] && !course; i++)
		if (*words[i])
			course = words[i];
	(void)ctx;
	if ((r = db_query("INSERT INTO course_student (course_id, user_id) VALUES (?, ?)", NULL,
	                  DB_PARAMS(course, user->id))) < 0)
		return r;
	kind_changed(&kind_courses, course);
	course_views_changed(course, user->id);
	return 0;
}
