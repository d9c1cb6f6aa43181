/* jobs.c: the background workers and the journal. */
#include "jobs.h"
#include "db.h"
#include "error.h"

#include <errno.h>
#include <string.h>
#include <syslog.h>

struct job {
	gint refs;
	job_fn fn;
	void *data;
	GDestroyNotify free_fn;
	GMutex lock;
	GCond done_cond;
	bool done;
	int result;
	char message[1024];
};

static struct {
	GThreadPool *pool;
	unsigned timeout_s;
	char *owner;            /* this mount, in the journal */
} jobs;

static void job_unref(struct job *j)
{
	if (!g_atomic_int_dec_and_test(&j->refs))
		return;
	if (j->free_fn)
		j->free_fn(j->data);
	g_mutex_clear(&j->lock);
	g_cond_clear(&j->done_cond);
	g_free(j);
}

static void job_main(gpointer data, gpointer user)
{
	struct job *j = data;
	int r;

	(void)user;
	ep_error_clear();
	r = j->fn(j->data);
	g_mutex_lock(&j->lock);
	j->result = r;
	g_strlcpy(j->message, ep_error_message(), sizeof(j->message));
	j->done = true;
	g_cond_broadcast(&j->done_cond);
	g_mutex_unlock(&j->lock);
	if (r < 0)
		syslog(LOG_WARNING, "background job failed: %s", j->message);
	job_unref(j);
}

int jobs_init(GKeyFile *config)
{
	g_autoptr(GError) err = NULL;

	jobs.timeout_s = g_key_file_get_integer(config, "epfs", "timeout", NULL);
	if (!jobs.timeout_s)
		jobs.timeout_s = 10;
	jobs.pool = g_thread_pool_new(job_main, NULL, 8, FALSE, &err);
	if (!jobs.pool)
		return ep_errorf(EIO, "jobs: %s", err->message);
	/* while this mount lives its lock is taken; once it is free its journal rows are orphans */
	jobs.owner = g_uuid_string_random();
	g_autofree char *lock = g_strconcat("epfs-mount-", jobs.owner, NULL);
	return db_hold_lock(lock);
}

void jobs_shutdown(void)
{
	if (jobs.pool) {
		/* queued jobs are dropped (their journal rows are recovered at the
		 * next start); running ones are waited for */
		g_thread_pool_free(jobs.pool, TRUE, TRUE);
		jobs.pool = NULL;
	}
	g_clear_pointer(&jobs.owner, g_free);
}

static struct job *job_new(job_fn fn, void *data, GDestroyNotify free_fn)
{
	struct job *j = g_new0(struct job, 1);

	j->refs = 1;
	j->fn = fn;
	j->data = data;
	j->free_fn = free_fn;
	g_mutex_init(&j->lock);
	g_cond_init(&j->done_cond);
	return j;
}

void jobs_run(job_fn fn, void *data, GDestroyNotify free_fn)
{
	g_thread_pool_push(jobs.pool, job_new(fn, data, free_fn), NULL);
}

int jobs_run_wait(job_fn fn, void *data, GDestroyNotify free_fn, int timeout_ms, const char *what)
{
	struct job *j = job_new(fn, data, free_fn);
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int r;

	g_atomic_int_inc(&j->refs);      /* one for the worker, one for us */
	g_thread_pool_push(jobs.pool, j, NULL);
	g_mutex_lock(&j->lock);
	while (!j->done)
		if (!g_cond_wait_until(&j->done_cond, &j->lock, deadline))
			break;
	if (j->done) {
		r = j->result;
		if (r < 0)
			ep_errorf(-r, "%s", j->message);
	} else {
		r = ep_errorf(ETIMEDOUT, "%s: still running after %d s; it goes on in the background",
		              what, timeout_ms / 1000);
	}
	g_mutex_unlock(&j->lock);
	job_unref(j);
	return r;
}

int journal_begin(const char *op, const struct ep_kind *k, const char *key, const char *data, char **id)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("INSERT INTO journal (owner, op, kind, obj_key, data) VALUES (?, ?, ?, ?, ?)", &r,
	                   DB_PARAMS(jobs.owner, op, k->name, key, data ? data : "{}"));

	if (ret < 0)
		return ret;
	*id = g_strdup_printf("%" G_GUINT64_FORMAT, r->insert_id);
	return 0;
}

int journal_step(const char *id, const char *step)
{
	return db_query("UPDATE journal SET step = ? WHERE id = ?", NULL, DB_PARAMS(step, id));
}

int journal_end(const char *id)
{
	return db_query("DELETE FROM journal WHERE id = ?", NULL, DB_PARAMS(id));
}

int journal_recover(void)
{
	g_autoptr(db_result) r = NULL;
	/* only what mounts that are gone left behind */
	int ret = db_query("SELECT id, op, kind, obj_key, step, data FROM journal "
	                   "WHERE owner = '' OR IS_FREE_LOCK(CONCAT('epfs-mount-', owner)) ORDER BY id",
	                   &r, DB_NOPARAMS);

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++) {
		const char *kname = db_get(r, i, "kind");
		const struct ep_kind *k = NULL;

		for (guint j = 0; ep_kinds[j]; j++)
			if (!strcmp(ep_kinds[j]->name, kname))
				k = ep_kinds[j];
		syslog(LOG_NOTICE, "recovering %s of %s/%s interrupted at step %s", db_get(r, i, "op"), kname,
		       db_get(r, i, "obj_key"), db_get(r, i, "step"));
		if (k && k->recover)
			ret = k->recover(db_get(r, i, "op"), db_get(r, i, "obj_key"), db_get(r, i, "step"),
			                 db_get(r, i, "data"));
		else
			ret = 0;
		if (ret < 0) {
			syslog(LOG_ERR, "recovery of %s/%s failed: %s", kname, db_get(r, i, "obj_key"),
			       ep_error_message());
			continue;   /* tried again at the next start */
		}
		journal_end(db_get(r, i, "id"));
	}
	return 0;
}
