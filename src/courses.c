/* courses.c: courses/<id>/ — a course with its teacher, type, enrolment key
 * and members.  students/<u>@ enrols one student, classes/<cls>@ a whole class
 * (seed 003); a student enrols herself by writing "<course> <key>" to
 * users/<me>/enrol. */
#include "cache.h"
#include "db.h"
#include "error.h"
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

static int members_list(const char *sql, struct ep_obj *o, GPtrArray *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query(sql, &r, DB_PARAMS(o->id));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_ptr_array_add(out, g_strdup(db_get(r, i, "m")));
	return 0;
}

static int members_render(const char *sql, const char *kind, struct ep_obj *o, const char *name, GString *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query(sql, &r, DB_PARAMS(o->id, name));

	if (ret < 0)
		return ret;
	if (!r->rows->len)
		return -ENOENT;
	g_string_append_printf(out, "../../../%s/%s", kind, name);
	return 0;
}

/* The id a link names, which must be the link's own name. */
static int member_target(const char *kind, const char *name, const char *target)
{
	g_autofree char *want = g_strdup_printf("../../../%s/%s", kind, name);
	g_autofree char *want_slash = g_strconcat(want, "/", NULL);

	if (strcmp(target, want) && strcmp(target, want_slash))
		return ep_errorf(EINVAL, "'%s' does not point at %s/%s: ln -s %s", target, kind, name, want);
	return 0;
}

static int students_list(struct ep_obj *o, GPtrArray *out)
{
	return members_list("SELECT user_id AS m FROM course_member WHERE course_id = ? ORDER BY user_id", o, out);
}

static int students_render(struct ep_obj *o, const char *name, GString *out)
{
	return members_render("SELECT 1 FROM course_member WHERE course_id = ? AND user_id = ?", "users", o, name,
	                      out);
}

static int students_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	g_autoptr(ep_obj) u = NULL;
	int r;

	(void)ctx;
	if ((r = member_target("users", name, target)) < 0)
		return r;
	if ((r = kind_load(&kind_users, name, &u)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "users/%s does not exist", name) : r;
	if ((r = db_query("INSERT INTO course_student (course_id, user_id) VALUES (?, ?)", NULL,
	                  DB_PARAMS(o->id, name))) < 0)
		return r == -EEXIST ? ep_errorf(EEXIST, "%s is enrolled in %s already", name, o->id) : r;
	kind_changed(&kind_users, name);
	course_views_changed(o->id, name);
	return 0;
}

static int students_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	g_autoptr(db_result) res = NULL;
	int r;

	(void)ctx;
	if ((r = db_query("DELETE FROM course_student WHERE course_id = ? AND user_id = ?", &res,
	                  DB_PARAMS(o->id, name))) < 0)
		return r;
	if (res->affected == 0)
		return course_member(o->id, name)
		               ? ep_errorf(EBUSY, "%s is in %s through a class: rm the class from classes/", name, o->id)
		               : ep_errorf(ENOENT, "%s is not enrolled in %s", name, o->id);
	kind_changed(&kind_users, name);
	course_views_changed(o->id, name);
	return 0;
}

static int classes_list(struct ep_obj *o, GPtrArray *out)
{
	return members_list("SELECT class_id AS m FROM course_class WHERE course_id = ? ORDER BY class_id", o, out);
}

static int classes_render(struct ep_obj *o, const char *name, GString *out)
{
	return members_render("SELECT 1 FROM course_class WHERE course_id = ? AND class_id = ?", "classes", o, name,
	                      out);
}

static int classes_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	g_autoptr(ep_obj) cls = NULL;
	int r;

	(void)ctx;
	if ((r = member_target("classes", name, target)) < 0)
		return r;
	if ((r = kind_load(&kind_classes, name, &cls)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "classes/%s does not exist", name) : r;
	if ((r = db_query("INSERT INTO course_class (course_id, class_id) VALUES (?, ?)", NULL,
	                  DB_PARAMS(o->id, name))) < 0)
		return r == -EEXIST ? ep_errorf(EEXIST, "class %s is in %s already", name, o->id) : r;
	cache_clear();  /* many students' views: rare enough to start afresh */
	return 0;
}

static int classes_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	g_autoptr(db_result) res = NULL;
	int r;

	(void)ctx;
	if ((r = db_query("DELETE FROM course_class WHERE course_id = ? AND class_id = ?", &res,
	                  DB_PARAMS(o->id, name))) < 0)
		return r;
	if (res->affected == 0)
		return ep_errorf(ENOENT, "class %s is not in %s", name, o->id);
	cache_clear();
	return 0;
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
