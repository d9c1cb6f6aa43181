/* scheduler.c: the teaching scheduler.  One mount of the cluster runs it: the
 * one holding the database lock 'epfs-scheduler' (when that mount goes, the
 * lock frees and another takes over at its next tick).  Each pass stops
 * environments past their experiment's max_minutes or end, and removes the
 * instances of experiments ended more than [teaching] cleanup_grace seconds
 * ago (attempts, completion and grades stay). */
#include "clock.h"
#include "db.h"
#include "error.h"
#include "teaching.h"
#include "templates.h"

#include <errno.h>

static GThread *thread;
static GMutex lock;
static GCond wake;
static bool stopping;
static double interval_s = 30;
static gint64 grace_s = 7 * 24 * 3600;

static bool stop_requested(void)
{
	bool r;

	g_mutex_lock(&lock);
	r = stopping;
	g_mutex_unlock(&lock);
	return r;
}

/* The environments for which cond holds (SQL over environment v and
 * experiment x, one ? for now) get what (max_minutes, end: stopped with that
 * reason; cleanup: removed); each is checked again under its lock. */
static int sweep(const char *cond, const char *now, const char *what)
{
	g_autofree char *sql = g_strdup_printf(
		"SELECT v.course_id, v.experiment_id, v.user_id FROM environment v JOIN experiment x "
		"ON x.course_id = v.course_id AND x.id = v.experiment_id WHERE %s", cond);
	g_autoptr(db_result) r = NULL;
	int n = 0;

	if (db_query(sql, &r, DB_PARAMS(now)) < 0) {
		g_warning("scheduler: %s: %s", what, ep_error_message());
		return 0;
	}
	for (guint i = 0; i < r->rows->len && !stop_requested(); i++) {
		const char *c = db_get(r, i, "course_id"), *e = db_get(r, i, "experiment_id");
		const char *u = db_get(r, i, "user_id");
		int ret = g_str_equal(what, "cleanup") ? environment_clean_if(c, e, u, cond, now)
		                                       : environment_stop_if(NULL, c, e, u, what, cond, now);
		if (ret < 0)
			g_warning("scheduler: %s of %s/%s/%s: %s", what, c, e, u, ep_error_message());
		else
			n += ret;
	}
	return n;
}

/* Environments of experiments that are gone (an rmdir racing an enter):
 * their instances are removed, and so are they. */
static int sweep_orphans(void)
{
	g_autoptr(db_result) r = NULL;
	int n = 0;

	if (db_query("SELECT v.course_id, v.experiment_id, v.user_id FROM environment v LEFT JOIN experiment x "
	             "ON x.course_id = v.course_id AND x.id = v.experiment_id WHERE x.id IS NULL", &r,
	             DB_NOPARAMS) < 0)
		return 0;
	for (guint i = 0; i < r->rows->len && !stop_requested(); i++) {
		const char *c = db_get(r, i, "course_id"), *e = db_get(r, i, "experiment_id");
		const char *u = db_get(r, i, "user_id");

		if (environment_clean(c, e, u) < 0 ||
		    db_query("DELETE FROM environment WHERE course_id = ? AND experiment_id = ? AND user_id = ? AND "
		             "instance_id IS NULL AND NOT EXISTS (SELECT 1 FROM experiment x WHERE x.course_id = ? "
		             "AND x.id = ?)", NULL, DB_PARAMS(c, e, u, c, e)) < 0)
			g_warning("scheduler: orphan environment %s/%s/%s: %s", c, e, u, ep_error_message());
		else
			n++;
	}
	return n;
}

int scheduler_pass(void)
{
	g_autofree char *now = clock_db_time(ep_now_us());
	g_autofree char *cleanup = g_strdup_printf(
		"v.instance_id IS NOT NULL AND x.end_time + INTERVAL %" G_GINT64_FORMAT " SECOND <= ?", grace_s);
	int n = 0, s;

	/* running (started and not stopped since) past max_minutes */
	n += sweep("v.instance_id IS NOT NULL AND v.stop_reason = '' AND v.last_start IS NOT NULL "
	           "AND x.max_minutes > 0 AND v.last_start + INTERVAL x.max_minutes MINUTE <= ?",
	           now, "max_minutes");
	/* running after the end */
	n += sweep("v.instance_id IS NOT NULL AND v.stop_reason = '' AND x.end_time <= ?", now, "end");
	/* finished experiments: their instances go after the grace period */
	n += sweep(cleanup, now, "cleanup");
	n += sweep_orphans();
	if (!stop_requested() && (s = service_idle_sweep(ep_now())) > 0)
		n += s;
	return n;
}

static gpointer scheduler_main(gpointer data)
{
	bool leader = false;

	(void)data;
	g_mutex_lock(&lock);
	while (!stopping) {
		g_mutex_unlock(&lock);
		/* the lock goes with its connection: a lost connection is lost leadership */
		if (leader && !db_lock_held("epfs-scheduler")) {
			leader = false;
			g_message("scheduler: lost the scheduler's lock");
		}
		if (!leader && db_hold_lock("epfs-scheduler") == 0) {
			leader = true;
			g_message("scheduler: this mount runs the teaching scheduler");
		}
		if (leader)
			scheduler_pass();
		g_mutex_lock(&lock);
		if (!stopping)
			g_cond_wait_until(&wake, &lock, g_get_monotonic_time() + (gint64)(interval_s * G_USEC_PER_SEC));
	}
	g_mutex_unlock(&lock);
	return NULL;
}

void scheduler_start(GKeyFile *config)
{
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	double iv = g_key_file_get_double(config, "teaching", "scheduler_interval", &e1);
	gint64 grace = g_key_file_get_int64(config, "teaching", "cleanup_grace", &e2);

	if (!e1 && iv > 0)
		interval_s = iv;
	if (!e2 && grace >= 0)
		grace_s = grace;
	if (!e1 && iv == 0)
		return;         /* scheduler_interval = 0: this mount never schedules */
	stopping = false;
	thread = g_thread_new("scheduler", scheduler_main, NULL);
}

void scheduler_stop(void)
{
	if (!thread)
		return;
	g_mutex_lock(&lock);
	stopping = true;
	g_cond_signal(&wake);
	g_mutex_unlock(&lock);
	g_thread_join(thread);
	thread = NULL;
}
