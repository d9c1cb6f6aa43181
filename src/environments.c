/* environments.c: a student's environment for an experiment (seed 004),
 * seen two ways: by the teacher as courses/<c>/experiments/<e>/students/<u>/
 * and by the student as users/<u>/experiments/<c>.<e>/.  Both are views of
 * the course's members joined with their `environment` rows; writes go to
 * that table.  Entering creates the instance from the experiment's template
 * (or image) and starts it; reset makes a fresh one (one attempt more). */
#include "cache.h"
#include "clock.h"
#include "compute.h"
#include "db.h"
#include "error.h"
#include "people.h"
#include "teaching.h"
#include "templates.h"
#include "tree.h"
#include "value.h"

#include <errno.h>
#include <string.h>

/* The teacher's view changed (a grade, a completion): so did the student's. */
static void exp_student_changed(const char *key)
{
	g_auto(GStrv) p = g_strsplit(key, "/", 3);

	if (g_strv_length(p) != 3)
		return;
	g_autofree char *student_key = g_strdup_printf("%s/%s.%s", p[2], p[0], p[1]);
	cache_drop(&kind_student_experiments, student_key);
	tree_changed(&kind_student_experiments, student_key);
}

void course_views_changed(const char *course, const char *user)
{
	g_autoptr(db_result) x = NULL;
	g_autoptr(db_result) m = NULL;

	if (db_query("SELECT id FROM experiment WHERE course_id = ?", &x, DB_PARAMS(course)) < 0)
		return;
	if (!user && db_query("SELECT user_id FROM course_member WHERE course_id = ?", &m, DB_PARAMS(course)) < 0)
		return;
	for (guint i = 0; i < x->rows->len; i++) {
		if (user) {
			environment_changed(course, db_get(x, i, "id"), user);
			continue;
		}
		for (guint j = 0; j < m->rows->len; j++)
			environment_changed(course, db_get(x, i, "id"), db_get(m, j, "user_id"));
		/* and the teacher's list of students */
		g_autofree char *key = g_strdup_printf("%s/%s/-", course, db_get(x, i, "id"));
		cache_drop(&kind_exp_students, key);
	}
}

void environment_changed(const char *course, const char *exp, const char *user)
{
	g_autofree char *teacher_key = g_strdup_printf("%s/%s/%s", course, exp, user);
	g_autofree char *student_key = g_strdup_printf("%s/%s.%s", user, course, exp);

	kind_changed(&kind_exp_students, teacher_key);
	kind_changed(&kind_student_experiments, student_key);
}

/* The instance of an environment: "<course>.<exp>.<user>", or a hash of it
 * when that is too long for an id. */
static char *environment_instance_id(const char *course, const char *exp, const char *user)
{
	g_autofree char *id = g_strdup_printf("%s.%s.%s", course, exp, user);

	if (strlen(id) <= 63)
		return g_steal_pointer(&id);
	g_autofree char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, id, -1);
	return g_strdup_printf("env-%.40s", h);
}

/* One environment at a time, across mounts: a named database lock. */
struct env_lock {
	struct db_conn *c;
	char *name;
};

static int env_lock(const char *course, const char *exp, const char *user, struct env_lock *l)
{
	g_autofree char *key = g_strdup_printf("%s/%s/%s", course, exp, user);
	g_autofree char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA1, key, -1);
	int ret;

	l->name = g_strconcat("epfs-env-", h, NULL);
	/* on a connection of its own: provisioning under it needs the pool */
	if ((ret = db_lock(l->name, 30, &l->c)) < 0) {
		g_clear_pointer(&l->name, g_free);
		return ret == -ETIMEDOUT ? ep_errorf(ETIMEDOUT, "environment %s is busy", key) : ret;
	}
	return 0;
}

static void env_unlock(struct env_lock *l)
{
	db_unlock(l->c);
	g_free(l->name);
}

/* The environment's row (NULL values when it has none yet). */
static int env_row(const char *course, const char *exp, const char *user, db_result **out)
{
	return db_query("SELECT instance_id, attempts FROM environment WHERE course_id = ? AND experiment_id = ? "
	                "AND user_id = ?", out, DB_PARAMS(course, exp, user));
}

/* May one enter now?  The experiment is published and its window open. */
static int window_check(struct ep_obj *x)
{
	int64_t now = ep_now_us();
	const char *start = obj_get(x, "start_time");
	const char *end = obj_get(x, "end_time");

	if (strcmp(obj_get(x, "published"), "1"))
		return ep_errorf(EACCES, "experiment %s is not published", x->key);
	if (start && now < value_db_time(start)) {
		g_autofree char *t = value_format_time(value_db_time(start));
		return ep_errorf(EACCES, "experiment %s opens at %s", x->key, t);
	}
	if (end && now >= value_db_time(end)) {
		g_autofree char *t = value_format_time(value_db_time(end));
		return ep_errorf(EACCES, "experiment %s ended at %s", x->key, t);
	}
	return 0;
}

/* An instance of this environment's name, owned by user, that no environment records. */
static bool environment_instance_orphan(const char *inst, const char *user)
{
	g_autoptr(db_result) r = NULL;

	if (db_query("SELECT i.owner_id, e.user_id FROM instance i LEFT JOIN environment e ON e.instance_id = i.id "
	             "WHERE i.id = ?", &r, DB_PARAMS(inst)) < 0 || r->rows->len != 1)
		return false;
	return !g_strcmp0(db_get(r, 0, "owner_id"), user) && !db_get(r, 0, "user_id");
}

/* Make the instance (attempt one more) and record it; the lock is held. */
static int env_create(struct ep_ctx *ctx, struct ep_obj *x, const char *user, guint attempts)
{
	const char *course = x->parent_key, *exp = x->id;
	const char *tmpl = obj_get(x, "template_id");
	const char *image = obj_get(x, "image_id");
	guint64 max = g_ascii_strtoull(obj_get(x, "max_attempts"), NULL, 10);
	g_autofree char *inst = environment_instance_id(course, exp, user);
	g_autofree char *n = NULL;
	int r;

	if (max && attempts >= max)
		return ep_errorf(ENOSPC, "no attempts left: %u of %" G_GUINT64_FORMAT " used", attempts, max);
	if (tmpl && *tmpl) {
		r = template_instantiate(ctx, tmpl, inst, user);
	} else if (image && *image) {
		r = db_query("INSERT INTO instance (id, image_id, owner_id) VALUES (?, ?, ?)", NULL,
		             DB_PARAMS(inst, image, user));
		if (r == -EEXIST)
			r = ep_errorf(EEXIST, "instance %s exists already", inst);
		kind_changed(&kind_instances, inst);
	} else {
		r = ep_errorf(EINVAL, "experiment %s has neither template nor image", x->key);
	}
	/* made before a crash, before the environment recorded it: this student's, so taken on */
	if (r == -EEXIST && environment_instance_orphan(inst, user))
		r = 0;
	if (r < 0)
		return r;
	n = g_strdup_printf("%u", attempts + 1);
	r = db_query("INSERT INTO environment (course_id, experiment_id, user_id, instance_id, attempts) "
	             "VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE instance_id = VALUES(instance_id), "
	             "attempts = VALUES(attempts)", NULL, DB_PARAMS(course, exp, user, inst, n));
	environment_changed(course, exp, user);
	return r;
}

static int env_start(struct ep_ctx *ctx, const char *course, const char *exp, const char *user, const char *inst)
{
	g_autofree char *now = clock_db_time(ep_now_us());
	int r = instance_set_state(ctx, inst, "running");

	if (r < 0)
		return r;
	r = db_query("UPDATE environment SET last_start = ?, stop_reason = '' WHERE course_id = ? AND "
	             "experiment_id = ? AND user_id = ?", NULL, DB_PARAMS(now, course, exp, user));
	environment_changed(course, exp, user);
	return r;
}

static int load_experiment(const char *course, const char *exp, struct ep_obj **x)
{
	g_autofree char *key = g_strdup_printf("%s/%s", course, exp);
	int r = kind_load(&kind_experiments, key, x);

	return r == -ENOENT ? ep_errorf(ENOENT, "experiment %s does not exist", key) : r;
}

int environment_enter(struct ep_ctx *ctx, const char *course, const char *exp, const char *user)
{
	g_autoptr(ep_obj) x = NULL;
	g_autoptr(db_result) row = NULL;
	struct env_lock l;
	const char *inst;
	int r;

	if ((r = load_experiment(course, exp, &x)) < 0 || (r = window_check(x)) < 0)
		return r;
	if ((r = env_lock(course, exp, user, &l)) < 0)
		return r;
	if ((r = env_row(course, exp, user, &row)) < 0)
		goto out;
	inst = row->rows->len ? db_get(row, 0, "instance_id") : NULL;
	if (inst) {
		/* an instance removed behind the environment's back (by hand, or a crash in a
		 * reset) is made again */
		g_autoptr(ep_obj) i = NULL;
		if (kind_load(&kind_instances, inst, &i) == -ENOENT)
			inst = NULL;
	}
	if (!inst) {
		guint attempts = row->rows->len ? (guint)g_ascii_strtoull(db_get(row, 0, "attempts"), NULL, 10) : 0;
		if ((r = env_create(ctx, x, user, attempts)) < 0)
			goto out;
		g_clear_pointer(&row, db_result_free);
		if ((r = env_row(course, exp, user, &row)) < 0)
			goto out;
		inst = db_get(row, 0, "instance_id");
	}
	r = env_start(ctx, course, exp, user, inst);
out:
	env_unlock(&l);
	return r;
}

int environment_reset(struct ep_ctx *ctx, const char *course, const char *exp, const char *user)
{
	g_autoptr(ep_obj) x = NULL;
	g_autoptr(db_result) row = NULL;
	g_autofree char *inst = NULL;
	struct env_lock l;
	guint attempts;
	guint64 max;
	int r;

	if ((r = load_experiment(course, exp, &x)) < 0 || (r = window_check(x)) < 0)
		return r;
	if ((r = env_lock(course, exp, user, &l)) < 0)
		return r;
	if ((r = env_row(course, exp, user, &row)) < 0)
		goto out;
	attempts = row->rows->len ? (guint)g_ascii_strtoull(db_get(row, 0, "attempts"), NULL, 10) : 0;
	max = g_ascii_strtoull(obj_get(x, "max_attempts"), NULL, 10);
	/* refused before anything is destroyed */
	if (max && attempts >= max) {
		r = ep_errorf(ENOSPC, "reset: no attempts left: %u of %" G_GUINT64_FORMAT " used", attempts, max);
		goto out;
	}
	/* nothing is destroyed unless a fresh one can be made */
	if (obj_get(x, "template_id") && (r = template_check(obj_get(x, "template_id"))) < 0)
		goto out;
	if (row->rows->len && db_get(row, 0, "instance_id")) {
		if ((r = instance_delete(ctx, db_get(row, 0, "instance_id"))) < 0 && r != -ENOENT)
			goto out;
		db_query("UPDATE environment SET instance_id = NULL WHERE course_id = ? AND experiment_id = ? AND "
		         "user_id = ?", NULL, DB_PARAMS(course, exp, user));
	}
	if ((r = env_create(ctx, x, user, attempts)) < 0)
		goto out;
	inst = environment_instance_id(course, exp, user);
	r = env_start(ctx, course, exp, user, inst);
out:
	env_unlock(&l);
	return r;
}

/* Does cond (SQL over environment v and experiment x, one ? for now) still
 * hold for this environment?  The scheduler's choice, checked again under
 * the environment's lock: what changed since (a restart, a later end) wins. */
static bool cond_holds(const char *course, const char *exp, const char *user, const char *cond, const char *now)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *sql = g_strdup_printf(
		"SELECT 1 FROM environment v JOIN experiment x ON x.course_id = v.course_id AND x.id = v.experiment_id "
		"WHERE v.course_id = ? AND v.experiment_id = ? AND v.user_id = ? AND (%s)", cond);

	return db_query(sql, &r, DB_PARAMS(course, exp, user, now)) == 0 && r->rows->len > 0;
}

/* What the scheduler (or a teacher, or the student) does to an environment
 * whose instance is inst (NULL: none), under its lock. */
typedef int (*env_action)(struct ep_ctx *ctx, const char *course, const char *exp, const char *user,
                          const char *inst, const char *reason);

static int act_stop(struct ep_ctx *ctx, const char *course, const char *exp, const char *user, const char *inst,
                    const char *reason)
{
	int r;

	if (!inst)
		return 0;       /* nothing runs: stopped already */
	if ((r = instance_set_state(ctx, inst, "shutoff")) < 0 && r != -ENOENT)
		return r;
	return db_query("UPDATE environment SET stop_reason = ? WHERE course_id = ? AND experiment_id = ? AND "
	                "user_id = ?", NULL, DB_PARAMS(reason, course, exp, user));
}

static int act_clean(struct ep_ctx *ctx, const char *course, const char *exp, const char *user, const char *inst,
                     const char *reason)
{
	int r;

	(void)reason;
	if (inst && (r = instance_delete(ctx, inst)) < 0 && r != -ENOENT)
		return r;
	return db_query("UPDATE environment SET instance_id = NULL, stop_reason = IF(stop_reason = '', 'cleaned', "
	                "stop_reason) WHERE course_id = ? AND experiment_id = ? AND user_id = ?",
	                NULL, DB_PARAMS(course, exp, user));
}

/* act on the environment if cond (NULL: always) still holds once it is locked;
 * 1 if it acted on a condition, 0 if not (or acted unconditionally), -errno */
static int env_act_if(struct ep_ctx *ctx, const char *course, const char *exp, const char *user, const char *cond,
                      const char *now, env_action act, const char *reason)
{
	g_autoptr(db_result) row = NULL;
	struct env_lock l;
	int r;

	if ((r = env_lock(course, exp, user, &l)) < 0)
		return r;
	if (cond && !cond_holds(course, exp, user, cond, now)) {
		env_unlock(&l);
		return 0;
	}
	if ((r = env_row(course, exp, user, &row)) == 0) {
		r = act(ctx, course, exp, user, row->rows->len ? db_get(row, 0, "instance_id") : NULL, reason);
		environment_changed(course, exp, user);
	}
	env_unlock(&l);
	return r == 0 && cond ? 1 : r;
}

int environment_stop_if(struct ep_ctx *ctx, const char *course, const char *exp, const char *user,
                        const char *reason, const char *cond, const char *now)
{
	return env_act_if(ctx, course, exp, user, cond, now, act_stop, reason);
}

int environment_stop(struct ep_ctx *ctx, const char *course, const char *exp, const char *user,
                     const char *reason)
{
	return env_act_if(ctx, course, exp, user, NULL, NULL, act_stop, reason);
}

int environment_clean_if(const char *course, const char *exp, const char *user, const char *cond, const char *now)
{
	return env_act_if(NULL, course, exp, user, cond, now, act_clean, NULL);
}

int environment_clean(const char *course, const char *exp, const char *user)
{
	return env_act_if(NULL, course, exp, user, NULL, NULL, act_clean, NULL);
}

/* ---- what both views show ---- */

static const char *const env_words[] = {
	"none", "running", "shutoff", "reset", "destroyed",
	"start", "stop", "shutdown", "destroy", NULL
};

/* none while there is no instance, else the instance's own state. */
static int render_state(struct ep_obj *o, GString *out)
{
	const char *inst = obj_get(o, "instance_id");
	g_autoptr(ep_obj) i = NULL;
	struct ep_ctx root = { .admin = true };
	gsize len = out->len;
	int r;

	if (!inst || kind_load(&kind_instances, inst, &i) < 0) {
		g_string_append(out, "none");
		return 0;
	}
	if ((r = attr_render(&root, i, kind_attr(&kind_instances, "state"), out)) < 0)
		return r;
	if (out->len > len && out->str[out->len - 1] == '\n')
		g_string_truncate(out, out->len - 1);
	return 0;
}

static int render_score(struct ep_obj *o, GString *out)
{
	int s = grade_score(o);

	if (s >= 0)
		g_string_append_printf(out, "%d", s);
	return 0;
}

/* The parts of an environment's key, for either view. */
static void env_parts(struct ep_obj *o, const char **course, const char **exp, const char **user)
{
	*course = obj_get(o, "course_id");
	*exp = obj_get(o, "experiment_id");
	*user = o->kind == &kind_exp_students ? o->id : o->parent_key;
}

static int state_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *word)
{
	const char *c, *e, *u;
	bool teacher;

	env_parts(o, &c, &e, &u);
	teacher = course_teaches(ctx, c);
	if (!strcmp(word, "running") || !strcmp(word, "start"))
		return environment_enter(ctx, c, e, u);
	if (!strcmp(word, "reset"))
		return environment_reset(ctx, c, e, u);
	if (!strcmp(word, "shutoff") || !strcmp(word, "stop") || !strcmp(word, "shutdown"))
		return environment_stop(ctx, c, e, u, teacher && !user_is(ctx, u) ? "teacher" : "student");
	if (!teacher)
		return ep_errorf(EACCES, "state: %s is for the course's teacher", word);
	return environment_clean(c, e, u);
}

/* ---- the teacher's view: courses/<c>/experiments/<e>/students/<u>/ ---- */

static int upsert(struct ep_ctx *ctx, struct ep_obj *o, const char *column, const char *value)
{
	const char *c, *e, *u;
	g_autofree char *sql = g_strdup_printf(
		"INSERT INTO environment (course_id, experiment_id, user_id, `%s`) VALUES (?, ?, ?, ?) "
		"ON DUPLICATE KEY UPDATE `%s` = VALUES(`%s`)", column, column, column);

	env_parts(o, &c, &e, &u);
	return db_run(ctx->db, sql, NULL, DB_PARAMS(c, e, u, *value ? value : NULL));
}

static int completion_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v)
{
	return upsert(ctx, o, "completion", v);
}

static int grade_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)o;
	if (*v && (strlen(v) != 1 || !strchr("ABCDabcd", *v)))
		return ep_errorf(EINVAL, "grade: '%s' is not one of A B C D", v);
	*canon = g_ascii_strup(v, -1);
	return 0;
}

static int grade_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v)
{
	g_autofree char *now = clock_db_time(ep_now_us());
	int r = upsert(ctx, o, "grade", v);

	if (r < 0)
		return r;
	return upsert(ctx, o, "graded_time", *v ? now : "");
}

static int comment_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *v)
{
	return upsert(ctx, o, "comment", v);
}

static const struct ep_attr exp_student_attrs[] = {
	{ .name = "instance", .column = "instance_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "instances" },
	{ .name = "state", .type = AT_ENUM, .flags = ATTR_LIVE | ATTR_ACTION, .choices = env_words,
	  .render = render_state, .apply = state_apply },
	{ .name = "completion", .column = "completion", .type = AT_INT, .min = 0, .max = 100,
	  .apply = completion_apply },
	{ .name = "attempts", .column = "attempts", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "last_start", .column = "last_start", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "stop_reason", .column = "stop_reason", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "grade", .column = "grade", .type = AT_LINE, .validate = grade_validate, .apply = grade_apply },
	{ .name = "comment", .column = "comment", .type = AT_TEXT, .apply = comment_apply },
	{ .name = "score", .type = AT_INT, .flags = ATTR_RO, .render = render_score },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static bool exp_student_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && course_teaches(ctx, obj_get(o, "course_id")));
}

static uid_t exp_student_owner(struct ep_obj *o)
{
	return user_uid(o->id);
}

static int exp_student_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	(void)ctx;
	(void)parent_key;
	return ep_errorf(EPERM, "students/%s: enrol students in the course (courses/<c>/students/)", id);
}

static int exp_student_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	(void)ctx;
	return ep_errorf(EPERM, "students/%s: unenrol from the course; echo none > state removes the environment",
	                 o->id);
}

const struct ep_kind kind_exp_students = {
	.name = "students",
	.table = "experiment_student",
	.parent = &kind_experiments,
	.parent_column = "experiment_key",
	.attrs = exp_student_attrs,
	.create = exp_student_create,
	.remove = exp_student_remove,
	.may_write = exp_student_may_write,
	.owner = exp_student_owner,
	.changed = exp_student_changed,
};

/* ---- the student's view: users/<u>/experiments/<c>.<e>/ ---- */

/* Grades, comments and scores show once the teacher has graded. */
static int render_if_graded(struct ep_obj *o, const char *column, GString *out)
{
	const char *v;

	if (!obj_get(o, "graded_time"))
		return -ENOENT;
	v = obj_get(o, column);
	if (v)
		g_string_append(out, v);
	return 0;
}

static int render_grade(struct ep_obj *o, GString *out)
{
	return render_if_graded(o, "grade", out);
}

static int render_comment(struct ep_obj *o, GString *out)
{
	return render_if_graded(o, "comment", out);
}

static int render_graded_score(struct ep_obj *o, GString *out)
{
	if (!obj_get(o, "graded_time"))
		return -ENOENT;
	return render_score(o, out);
}

static char *student_attachments_path(struct ep_obj *o)
{
	return g_strdup_printf("courses/%s/experiments/%s/attachments", obj_get(o, "course_id"),
	                       obj_get(o, "experiment_id"));
}

static const struct ep_store_dir student_experiment_dirs[] = {
	{ .name = "attachments", .read_only = true, .path = student_attachments_path },
	{ NULL },
};

static const struct ep_attr student_experiment_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "content.md", .column = "content", .type = AT_TEXT, .flags = ATTR_RO },
	{ .name = "kind", .column = "kind", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "start", .column = "start_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "deadline", .column = "end_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "max_minutes", .column = "max_minutes", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "max_attempts", .column = "max_attempts", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "state", .type = AT_ENUM, .flags = ATTR_LIVE | ATTR_ACTION, .choices = env_words,
	  .render = render_state, .apply = state_apply },
	{ .name = "instance", .column = "instance_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "instances" },
	{ .name = "attempts", .column = "attempts", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "last_start", .column = "last_start", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "stop_reason", .column = "stop_reason", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "completion", .column = "completion", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "grade", .type = AT_LINE, .flags = ATTR_RO, .render = render_grade },
	{ .name = "comment", .type = AT_TEXT, .flags = ATTR_RO, .render = render_comment },
	{ .name = "score", .type = AT_INT, .flags = ATTR_RO, .render = render_graded_score },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static bool student_experiment_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return user_owns(ctx, o);
}

static int student_experiment_create(struct ep_ctx *ctx, const char *user, const char *id)
{
	(void)ctx;
	(void)user;
	return ep_errorf(ENOENT, "experiments/%s: no published experiment of your courses has that name", id);
}

static int student_experiment_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	(void)ctx;
	return ep_errorf(EPERM, "experiments/%s: write shutoff to state to stop it", o->id);
}

const struct ep_kind kind_student_experiments = {
	.name = "experiments",
	.table = "student_experiment",
	.parent = &kind_users,
	.parent_column = "user_id",
	.attrs = student_experiment_attrs,
	.create = student_experiment_create,
	.remove = student_experiment_remove,
	.may_write = student_experiment_may_write,
	.may_create = user_is,
	.owner = user_owner_of,
	.store_dirs = student_experiment_dirs,
};
