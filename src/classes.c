/* classes.c: classes/<id>/ — a group of students (seed 003), filled one by
 * one with students/<u>@ or in bulk by writing CSV or JSON lines to import. */
#include "cache.h"
#include "db.h"
#include "error.h"
#include "membership.h"
#include "people.h"
#include "teaching.h"
#include "value.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static const struct membership class_students = {
	.table = "class_student", .owner_column = "class_id", .member_column = "user_id",
	.target = &kind_users, .what = "in class",
};

static int students_list(struct ep_obj *o, GPtrArray *out)
{
	return membership_list(&class_students, o, out);
}

static int students_render(struct ep_obj *o, const char *name, GString *out)
{
	return membership_render(&class_students, o, name, out);
}

/* the class's courses, and their views, change with it */
static int students_link(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target)
{
	int r = membership_link(&class_students, o, name, target);

	(void)ctx;
	if (r == 0)
		cache_clear();
	return r;
}

static int students_unlink(struct ep_ctx *ctx, struct ep_obj *o, const char *name)
{
	int r = membership_unlink(&class_students, o, name);

	(void)ctx;
	if (r == 0)
		cache_clear();
	return r;
}

static const struct ep_gen_dir class_gen_dirs[] = {
	{ .name = "students", .list = students_list, .render = students_render, .symlinks = true,
	  .link = students_link, .unlink = students_unlink },
	{ NULL },
};

/* ---- import ---- */

struct person {
	char *id, *display_name, *email, *uid;
};

static void person_clear(struct person *p)
{
	g_free(p->id);
	g_free(p->display_name);
	g_free(p->email);
	g_free(p->uid);
}

static bool blank(const GString *f)
{
	for (gsize i = 0; i < f->len; i++)
		if (!g_ascii_isspace(f->str[i]))
			return false;
	return true;
}

/* One CSV line of id,display_name,email,uid (fields may be "quoted", "" is a quote). */
static int csv_fields(const char *line, GPtrArray *out)
{
	GString *f = g_string_new(NULL);
	bool quoted = false;

	for (const char *p = line;; p++) {
		if (quoted) {
			if (!*p) {
				g_string_free(f, TRUE);
				return -1;
			}
			if (*p == '"' && p[1] == '"') {
				g_string_append_c(f, '"');
				p++;
			} else if (*p == '"') {
				quoted = false;
			} else {
				g_string_append_c(f, *p);
			}
		} else if (*p == '"' && blank(f)) {
			g_string_truncate(f, 0);        /* blanks before a quoted field */
			quoted = true;
		} else if (*p == ',' || !*p) {
			g_ptr_array_add(out, g_strstrip(g_string_free(f, FALSE)));
			if (!*p)
				return 0;
			f = g_string_new(NULL);
		} else {
			g_string_append_c(f, *p);
		}
	}
}

static char *json_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_string(v))
		return g_strdup(json_string_value(v));
	if (json_is_integer(v))
		return g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return g_strdup("");
}

/* Parse one line into p; a message (newly allocated) if it is wrong. */
static char *parse_line(const char *line, struct person *p)
{
	if (*line == '{') {
		json_error_t err;
		json_t *o = json_loads(line, 0, &err);
		if (!json_is_object(o)) {
			json_decref(o);
			return g_strdup_printf("not a JSON object: %s", err.text);
		}
		p->id = json_field(o, "id");
		p->display_name = json_field(o, "display_name");
		p->email = json_field(o, "email");
		p->uid = json_field(o, "uid");
		json_decref(o);
	} else {
		g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func(g_free);
		if (csv_fields(line, f) < 0)
			return g_strdup("unterminated quote");
		if (f->len != 4)
			return g_strdup_printf("%u fields, want 4: id,display_name,email,uid", f->len);
		p->id = g_strdup(f->pdata[0]);
		p->display_name = g_strdup(f->pdata[1]);
		p->email = g_strdup(f->pdata[2]);
		p->uid = g_strdup(f->pdata[3]);
	}
	if (!value_id_valid(p->id))
		return g_strdup_printf("'%s' is not a valid user id", p->id);
	if (!value_is_line(p->display_name) || strlen(p->display_name) > 255)
		return g_strdup("display_name must be one line");
	if (*p->email && (!strchr(p->email, '@') || strchr(p->email, ' ')))
		return g_strdup_printf("'%s' is not an email address", p->email);
	if (*p->uid) {
		int64_t n;
		if (value_parse_int(p->uid, 1, 4294967294LL, &n) < 0)
			return g_strdup_printf("uid '%s' is not a number from 1 to 4294967294", p->uid);
	}
	return NULL;
}

/* The header line of a CSV file is recognised and skipped. */
static bool is_header(const char *line)
{
	return g_str_has_prefix(line, "id,");
}

static int import_one(struct db_conn *db, struct ep_obj *cls, struct person *p, guint lineno, GPtrArray *created)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if ((ret = db_run(db, "SELECT uid FROM `user` WHERE id = ? FOR UPDATE", &r, DB_PARAMS(p->id))) < 0)
		return ret;
	if (r->rows->len == 0) {
		g_autoptr(db_result) taken = NULL;
		if (*p->uid) {
			if ((ret = db_run(db, "SELECT id FROM `user` WHERE uid = ?", &taken, DB_PARAMS(p->uid))) < 0)
				return ret;
			if (taken->rows->len)
				return ep_errorf(EEXIST, "import: line %u: uid %s is users/%s already", lineno, p->uid,
				                 db_get(taken, 0, "id"));
		}
		if ((ret = db_run(db, "INSERT INTO `user` (id, uid, role, display_name, email) "
		                      "VALUES (?, ?, 'student', ?, ?)", NULL,
		                  DB_PARAMS(p->id, *p->uid ? p->uid : NULL, p->display_name, p->email))) < 0)
			return ret;
		g_ptr_array_add(created, g_strdup(p->id));
	} else if (*p->uid && g_strcmp0(db_get(r, 0, "uid"), p->uid)) {
		return ep_errorf(EEXIST, "import: line %u: users/%s exists with another uid (%s)", lineno, p->id,
		                 db_get(r, 0, "uid") ? db_get(r, 0, "uid") : "none");
	}
	if ((ret = db_run(db, "INSERT IGNORE INTO class_student (class_id, user_id) VALUES (?, ?)", NULL,
	                  DB_PARAMS(cls->id, p->id))) < 0)
		return ret;
	return 0;
}

/* Every line, in the transaction of db; the users made are added to created. */
static int import_lines(struct db_conn *db, struct ep_obj *cls, const char *text, GPtrArray *created)
{
	/* a byte order mark (spreadsheets write one) is not part of the first id */
	g_auto(GStrv) lines = g_strsplit(g_str_has_prefix(text, "\xef\xbb\xbf") ? text + 3 : text, "\n", -1);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	guint done = 0;
	int r;

	for (guint i = 0; lines[i]; i++) {
		char *line = g_strstrip(lines[i]);
		struct person p = { 0 };
		char *why;

		if (!*line || (i == 0 && is_header(line)))
			continue;
		if ((why = parse_line(line, &p))) {
			person_clear(&p);
			r = ep_errorf(EINVAL, "import: line %u: %s", i + 1, why);
			g_free(why);
			return r;
		}
		if (!g_hash_table_add(seen, g_strdup(p.id))) {
			r = ep_errorf(EINVAL, "import: line %u: %s appears twice", i + 1, p.id);
			person_clear(&p);
			return r;
		}
		r = import_one(db, cls, &p, i + 1, created);
		if (r == -EEXIST && !strstr(ep_error_message(), "import:"))
			r = ep_errorf(EEXIST, "import: line %u: %s", i + 1, ep_error_message());
		person_clear(&p);
		if (r < 0)
			return r;
		done++;
	}
	if (!done)
		return ep_errorf(EINVAL, "import: no students in what was written");
	return 0;
}

int class_import(struct ep_ctx *ctx, struct ep_obj *cls, const char *text)
{
	g_autoptr(GPtrArray) created = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(db_conn) db = NULL;
	int r;

	(void)ctx;
	if ((r = db_acquire(&db)) < 0 || (r = db_begin(db)) < 0)
		return r;
	if ((r = import_lines(db, cls, text, created)) < 0) {
		db_rollback(db);
		return r;
	}
	if ((r = db_commit(db)) < 0)
		return r;
	/* the new users' folders, once they exist (as mkdir users/<id> makes them) */
	for (guint i = 0; i < created->len; i++) {
		g_autofree char *projects = g_strconcat("projects/", (char *)created->pdata[i], NULL);
		g_autofree char *datasets = g_strconcat("datasets/", (char *)created->pdata[i], NULL);
		if ((r = store_mkdirs(projects)) < 0 || (r = store_mkdirs(datasets)) < 0)
			g_warning("import: folders of %s: %s", (char *)created->pdata[i], ep_error_message());
	}
	cache_clear();  /* new users, members of the class's courses */
	return 0;
}

static int import_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)o;
	(void)v;
	(void)canon;
	if (!ctx->admin)
		return ep_errorf(EACCES, "import: only admins create users");
	return 0;
}

static int import_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v)
{
	return class_import(ctx, o, v);
}

/* Reads back empty: an import is an action, not a value. */
static int import_render(struct ep_obj *o, GString *out)
{
	(void)o;
	(void)out;
	return 0;
}

static const struct ep_attr class_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	/* one batch, applied when the file is closed, in one transaction */
	{ .name = "import", .type = AT_TEXT, .flags = ATTR_NOINFO | ATTR_ADMIN | ATTR_ACTION | ATTR_WHOLE,
	  .max = 1 << 20, .render = import_render, .validate = import_validate, .apply = import_apply },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int class_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if ((ret = db_run(ctx->db, "SELECT course_id FROM course_class WHERE class_id = ? ORDER BY course_id LIMIT 1",
	                  &r, DB_PARAMS(o->id))) < 0)
		return ret;
	if (r->rows->len)
		return ep_errorf(EBUSY, "class %s is in course %s: rm courses/%s/classes/%s first", o->id,
		                 db_get(r, 0, "course_id"), db_get(r, 0, "course_id"), o->id);
	if ((ret = db_run(ctx->db, "DELETE FROM class_student WHERE class_id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return ret;
	return db_run(ctx->db, "DELETE FROM class WHERE id = ?", NULL, DB_PARAMS(o->id));
}

/* A class changed elsewhere (its students): the courses it is in change. */
static void class_changed(const char *key)
{
	(void)key;
	cache_clear();
}

const struct ep_kind kind_classes = {
	.name = "classes",
	.table = "class",
	.attrs = class_attrs,
	.remove = class_remove,
	.gen_dirs = class_gen_dirs,
	.changed = class_changed,
};
