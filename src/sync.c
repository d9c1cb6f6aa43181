/* sync.c: the change_log poller. */
#include "sync.h"
#include "db.h"
#include "kind.h"

#include <string.h>

#define PRUNE_EVERY_US (60 * G_USEC_PER_SEC)

static struct {
	GThread *thread;
	GMutex lock;
	GCond cond;
	bool stop;
	gint64 interval_us;
	char *last_seq;
} sync_state;

/* A change to records called name: two kinds may share a directory name
 * (courses/<c>/experiments and users/<u>/experiments), so each is told; a key
 * that is not one of its records costs a cache miss. */
static void changed_named(const char *name, const char *key)
{
	for (guint i = 0; ep_kinds[i]; i++)
		if (!strcmp(ep_kinds[i]->name, name))
			kind_changed(ep_kinds[i], key);
}

static void poll_once(void)
{
	g_autoptr(db_result) r = NULL;

	if (db_query("SELECT seq, kind, obj_key FROM change_log WHERE seq > ? ORDER BY seq LIMIT 10000", &r,
	             DB_PARAMS(sync_state.last_seq)) < 0)
		return;
	for (guint i = 0; i < r->rows->len; i++) {
		changed_named(db_get(r, i, "kind"), db_get(r, i, "obj_key"));
	}
	if (r->rows->len) {
		g_free(sync_state.last_seq);
		sync_state.last_seq = g_strdup(db_get(r, r->rows->len - 1, "seq"));
	}
}

static gpointer sync_main(gpointer data)
{
	gint64 last_prune = g_get_monotonic_time();

	(void)data;
	g_mutex_lock(&sync_state.lock);
	while (!sync_state.stop) {
		gint64 until = g_get_monotonic_time() + sync_state.interval_us;

		while (!sync_state.stop && g_cond_wait_until(&sync_state.cond, &sync_state.lock, until))
			;
		if (sync_state.stop)
			break;
		g_mutex_unlock(&sync_state.lock);
		poll_once();
		if (g_get_monotonic_time() - last_prune > PRUNE_EVERY_US) {
			/* other mounts poll every second or so: ten minutes of history is plenty */
			db_query("DELETE FROM change_log WHERE at < NOW(6) - INTERVAL 10 MINUTE", NULL, DB_NOPARAMS);
			last_prune = g_get_monotonic_time();
		}
		g_mutex_lock(&sync_state.lock);
	}
	g_mutex_unlock(&sync_state.lock);
	return NULL;
}

int sync_start(double interval)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT COALESCE(MAX(seq), 0) AS seq FROM change_log", &r, DB_NOPARAMS);

	if (ret < 0)
		return ret;
	sync_state.last_seq = g_strdup(db_get(r, 0, "seq"));
	sync_state.interval_us = MAX((gint64)(interval * G_USEC_PER_SEC), 100000);
	sync_state.stop = false;
	sync_state.thread = g_thread_new("epfs-sync", sync_main, NULL);
	return 0;
}

void sync_stop(void)
{
	if (!sync_state.thread)
		return;
	g_mutex_lock(&sync_state.lock);
	sync_state.stop = true;
	g_cond_signal(&sync_state.cond);
	g_mutex_unlock(&sync_state.lock);
	g_thread_join(sync_state.thread);
	sync_state.thread = NULL;
	g_clear_pointer(&sync_state.last_seq, g_free);
}
