/* teaching.h: what the teaching kinds (course-types, courses, classes,
 * experiments and the students' environments) share. */
#pragma once

#include "kind.h"

extern const struct ep_kind kind_course_types;
extern const struct ep_kind kind_courses;
extern const struct ep_kind kind_classes;
extern const struct ep_kind kind_experiments;
extern const struct ep_kind kind_exp_students;         /* courses/<c>/experiments/<e>/students/<u>/ */
extern const struct ep_kind kind_student_experiments;  /* users/<u>/experiments/<c>.<e>/ */

/* Is ctx an admin or the teacher of course? */
bool course_teaches(struct ep_ctx *ctx, const char *course);
/* Is user a member of course (enrolled, or through a class)? */
bool course_member(const char *course, const char *user);

/* users/<u>/enrol: the courses one is in, one per line; writing
 * "<course> <key>" enrols oneself. */
int enrol_render(struct ep_obj *user, GString *out);
int enrol_validate(struct ep_ctx *ctx, struct ep_obj *user, const char *value, char **canon);
int enrol_apply(struct ep_ctx *ctx, struct ep_obj *user, const char *value);

/* Classes' import: CSV (id,display_name,email,uid) or JSON lines, one transaction. */
int class_import(struct ep_ctx *ctx, struct ep_obj *cls, const char *text);

/* A course's experiments or members changed: drop the views of user (NULL:
 * every member) of each of its experiments. */
void course_views_changed(const char *course, const char *user);
/* An environment (course, experiment, user) changed: drop both views of it. */
void environment_changed(const char *course, const char *exp, const char *user);

/* The score of an environment row (a record of either view): -1 while ungraded. */
int grade_score(struct ep_obj *env);
/* The points a grade gives ([grading] points_<grade> in the config). */
int grade_points(const char *grade);

/* The experiment's generated files. */
int experiment_progress_csv(struct ep_obj *exp, GString *out);
int experiment_grades_csv(struct ep_obj *exp, GString *out);
int experiment_grades_svg(struct ep_obj *exp, GString *out);

/* Enter (create if missing, then start), reset, stop an environment. */
int environment_enter(struct ep_ctx *ctx, const char *course, const char *exp, const char *user);
int environment_reset(struct ep_ctx *ctx, const char *course, const char *exp, const char *user);
int environment_stop(struct ep_ctx *ctx, const char *course, const char *exp, const char *user,
                     const char *reason);
/* Destroy the environment's instance and forget it (attempts and grades stay). */
int environment_clean(const char *course, const char *exp, const char *user);
/* The scheduler's forms: act only if cond (SQL over environment v and
 * experiment x, with one ? for now) still holds once the environment is
 * locked; 1 if it acted, 0 if not, or -errno. */
int environment_stop_if(struct ep_ctx *ctx, const char *course, const char *exp, const char *user,
                        const char *reason, const char *cond, const char *now);
int environment_clean_if(const char *course, const char *exp, const char *user, const char *cond,
                         const char *now);

/* The scheduler: one per cluster (a database lock); stops environments past
 * max_minutes or their experiment's end, and cleans up finished ones. */
void scheduler_start(GKeyFile *config);
void scheduler_stop(void);
/* One pass now (what the scheduler does each interval); returns how many it acted on. */
int scheduler_pass(void);
