/* events.c: per-record event history and poll wake-ups. */
#include "events.h"
#include "fs.h"
#include "tree.h"
#include "value.h"

#include <fuse_lowlevel.h>
#include <stdio.h>

#define EVENTS_KEEP 100

struct record_events {
	GQueue lines;           /* char *, oldest first */
	uint64_t seq;
	GPtrArray *pollers;     /* struct fuse_pollhandle * */
};

static struct {
	GMutex lock;
	GHashTable *records;    /* "kind\nkey" -> struct record_events */
	uint64_t seq;
} ev;

static void record_free(gpointer p)
{
	struct record_events *r = p;

	g_queue_clear_full(&r->lines, g_free);
	g_ptr_array_free(r->pollers, TRUE);
	g_free(r);
}

void events_init(void)
{
	ev.records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, record_free);
}

void events_shutdown(void)
{
	g_clear_pointer(&ev.records, g_hash_table_destroy);
}

static struct record_events *record_get(const struct ep_kind *k, const char *key, bool create)
{
	g_autofree char *rk = g_strconcat(k->name, "\n", key, NULL);
	struct record_events *r = g_hash_table_lookup(ev.records, rk);

	if (!r && create) {
		r = g_new0(struct record_events, 1);
		g_queue_init(&r->lines);
		r->pollers = g_ptr_array_new_with_free_func((GDestroyNotify)fuse_pollhandle_destroy);
		g_hash_table_insert(ev.records, g_steal_pointer(&rk), r);
	}
	return r;
}

void events_post(const struct ep_kind *k, const char *key, const char *fmt, ...)
{
	g_autofree char *text = NULL, *now = value_format_time(g_get_real_time());
	g_autoptr(GPtrArray) wake = NULL;
	struct record_events *r;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (!ev.records)
		return;
	g_mutex_lock(&ev.lock);
	r = record_get(k, key, true);
	g_queue_push_tail(&r->lines, g_strdup_printf("%s %s", now, text));
	while (r->lines.length > EVENTS_KEEP)
		g_free(g_queue_pop_head(&r->lines));
	r->seq = ++ev.seq;
	wake = r->pollers;
	r->pollers = g_ptr_array_new_with_free_func((GDestroyNotify)fuse_pollhandle_destroy);
	g_mutex_unlock(&ev.lock);
	for (guint i = 0; i < wake->len; i++)
		fuse_lowlevel_notify_poll(wake->pdata[i]);
	/* the file's content changed */
	g_autofree char *path = tree_object_path(k, key);
	g_autofree char *file = g_strconcat(path, "/events", NULL);
	fs_invalidate(file);
}

uint64_t events_render(const struct ep_kind *k, const char *key, GString *out)
{
	struct record_events *r;
	uint64_t seq = 0;

	if (!ev.records)
		return 0;
	g_mutex_lock(&ev.lock);
	r = record_get(k, key, false);
	if (r) {
		for (GList *l = r->lines.head; l; l = l->next)
			g_string_append_printf(out, "%s\n", (char *)l->data);
		seq = r->seq;
	}
	g_mutex_unlock(&ev.lock);
	return seq;
}

uint64_t events_seq(const struct ep_kind *k, const char *key)
{
	struct record_events *r;
	uint64_t seq = 0;

	if (!ev.records)
		return 0;
	g_mutex_lock(&ev.lock);
	r = record_get(k, key, false);
	if (r)
		seq = r->seq;
	g_mutex_unlock(&ev.lock);
	return seq;
}

void events_poll_wait(const struct ep_kind *k, const char *key, struct fuse_pollhandle *ph)
{
	if (!ev.records) {
		fuse_pollhandle_destroy(ph);
		return;
	}
	g_mutex_lock(&ev.lock);
	g_ptr_array_add(record_get(k, key, true)->pollers, ph);
	g_mutex_unlock(&ev.lock);
}
