/* grades.c: scores, and the generated progress.csv, grades.csv and
 * grades.svg of an experiment.
 *
 * score = completion/100 × 50 + points(grade) × weight, clamped to 0..100
 * (SPEC, from the patent's final = completion × 50 ± grade × weight); the
 * points of each grade and the weight come from the [grading] group of the
 * configuration (defaults A=2 B=1 C=0 D=-1, weight 25). */
#include "db.h"
#include "epfs.h"
#include "teaching.h"
#include "value.h"

#include <math.h>
#include <string.h>

static const char grades[] = "ABCD";
static const int default_points[] = { 2, 1, 0, -1 };

static double grading_double(const char *key, double def)
{
	g_autoptr(GError) err = NULL;
	double v = epfs_config ? g_key_file_get_double(epfs_config, "grading", key, &err) : def;

	return !epfs_config || err ? def : v;
}

int grade_points(const char *grade)
{
	const char *p = grade && *grade ? strchr(grades, *grade) : NULL;

	if (!p)
		return 0;
	g_autofree char *key = g_strdup_printf("points_%c", g_ascii_tolower(*p));
	return (int)lround(grading_double(key, default_points[p - grades]));
}

int grade_score(struct ep_obj *env)
{
	const char *grade = obj_get(env, "grade");
	const char *completion = obj_get(env, "completion");
	double c, s;

	if (!grade || !*grade)
		return -1;
	c = completion ? g_ascii_strtod(completion, NULL) : 0;
	s = c / 100.0 * 50.0 + grade_points(grade) * grading_double("weight", 25);
	return (int)lround(CLAMP(s, 0.0, 100.0));
}

/* Every student of the experiment, as the teacher's view has them. */
static int students_of(struct ep_obj *x, GPtrArray *out)
{
	return kind_list(&kind_exp_students, x->key, out);
}

/* A CSV field: quoted when it must be. */
static void csv_field(GString *out, const char *v)
{
	if (!v)
		v = "";
	if (!strpbrk(v, ",\"\n\r")) {
		g_string_append(out, v);
		return;
	}
	g_string_append_c(out, '"');
	for (const char *p = v; *p; p++) {
		if (*p == '"')
			g_string_append_c(out, '"');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

static void csv_time(GString *out, const char *db_time)
{
	if (db_time) {
		g_autofree char *t = value_format_time(value_db_time(db_time));
		g_string_append(out, t);
	}
}

int experiment_progress_csv(struct ep_obj *x, GString *out)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	struct ep_ctx root = { .admin = true };
	int r;

	if ((r = students_of(x, all)) < 0)
		return r;
	g_string_append(out, "student,instance,state,last_start,attempts,completion");
	for (guint i = 0; i < all->len; i++) {
		struct ep_obj *s = all->pdata[i];
		g_autoptr(GString) state = g_string_new(NULL);

		attr_render(&root, s, kind_attr(s->kind, "state"), state);
		g_strchomp(state->str);
		g_string_append_c(out, '\n');
		csv_field(out, s->id);
		g_string_append_c(out, ',');
		csv_field(out, obj_get(s, "instance_id"));
		g_string_append_printf(out, ",%s,", state->str);
		csv_time(out, obj_get(s, "last_start"));
		g_string_append_printf(out, ",%s,%s", obj_get(s, "attempts"),
		                       obj_get(s, "completion") ? obj_get(s, "completion") : "");
	}
	return 0;
}

int experiment_grades_csv(struct ep_obj *x, GString *out)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r;

	if ((r = students_of(x, all)) < 0)
		return r;
	g_string_append(out, "student,completion,grade,score,comment");
	for (guint i = 0; i < all->len; i++) {
		struct ep_obj *s = all->pdata[i];
		int score = grade_score(s);

		g_string_append_c(out, '\n');
		csv_field(out, s->id);
		g_string_append_printf(out, ",%s,%s,", obj_get(s, "completion") ? obj_get(s, "completion") : "",
		                       obj_get(s, "grade") ? obj_get(s, "grade") : "");
		if (score >= 0)
			g_string_append_printf(out, "%d", score);
		g_string_append_c(out, ',');
		csv_field(out, obj_get(s, "comment"));
	}
	return 0;
}

/* A pie chart of how many students got each grade (and how many are not
 * graded yet), with a legend: plain SVG 1.1 that any browser renders. */
int experiment_grades_svg(struct ep_obj *x, GString *out)
{
	static const char *const labels[] = { "A", "B", "C", "D", "not graded" };
	static const char *const colours[] = { "#2e7d32", "#1565c0", "#f9a825", "#c62828", "#9e9e9e" };
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	guint count[5] = { 0 }, total;
	const double cx = 150, cy = 150, rad = 120;
	double angle = -M_PI / 2;
	g_autofree char *title = g_markup_printf_escaped("Grades of %s", x->key);
	int r;

	if ((r = students_of(x, all)) < 0)
		return r;
	for (guint i = 0; i < all->len; i++) {
		const char *g = obj_get(all->pdata[i], "grade");
		const char *p = g && *g ? strchr(grades, *g) : NULL;
		count[p ? p - grades : 4]++;
	}
	total = all->len;
	g_string_append_printf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"480\" height=\"300\" "
		"viewBox=\"0 0 480 300\">\n"
		"<title>%s</title>\n"
		"<rect width=\"480\" height=\"300\" fill=\"#ffffff\"/>\n", title);
	for (guint i = 0; i < 5; i++) {
		double frac, a2;

		if (!count[i])
			continue;
		frac = (double)count[i] / total;
		if (count[i] == total) {
			g_string_append_printf(out, "<circle class=\"slice\" data-grade=\"%s\" data-count=\"%u\" "
			                       "cx=\"%.0f\" cy=\"%.0f\" r=\"%.0f\" fill=\"%s\"/>\n",
			                       labels[i], count[i], cx, cy, rad, colours[i]);
			continue;
		}
		a2 = angle + frac * 2 * M_PI;
		g_string_append_printf(out,
			"<path class=\"slice\" data-grade=\"%s\" data-count=\"%u\" d=\"M %.0f %.0f L %.2f %.2f "
			"A %.0f %.0f 0 %d 1 %.2f %.2f Z\" fill=\"%s\" stroke=\"#ffffff\"/>\n",
			labels[i], count[i], cx, cy, cx + rad * cos(angle), cy + rad * sin(angle), rad, rad,
			frac > 0.5 ? 1 : 0, cx + rad * cos(a2), cy + rad * sin(a2), colours[i]);
		angle = a2;
	}
	if (!total)
		g_string_append_printf(out, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"%.0f\" fill=\"none\" "
		                       "stroke=\"#9e9e9e\"/>\n", cx, cy, rad);
	g_string_append(out, "<g class=\"legend\" font-family=\"sans-serif\" font-size=\"14\">\n");
	for (guint i = 0; i < 5; i++) {
		double y = 40 + i * 28;
		g_string_append_printf(out,
			"<rect x=\"300\" y=\"%.0f\" width=\"16\" height=\"16\" fill=\"%s\"/>"
			"<text x=\"324\" y=\"%.0f\">%s: %u</text>\n",
			y, colours[i], y + 13, labels[i], count[i]);
	}
	g_string_append(out, "</g>\n</svg>");
	return 0;
}
