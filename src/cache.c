/* cache.c: records and listings kept for the attribute timeout. */
#include "cache.h"

#include <string.h>

struct entry {
	gint64 loaded;          /* monotonic time */
	struct ep_obj *obj;     /* a record, or */
	GPtrArray *list;        /* a listing: ep_obj * */
};

static struct {
	GMutex lock;
	GHashTable *records;    /* "kind\nkey" -> entry */
	GHashTable *lists;      /* "kind\nparent" -> entry */
	gint64 ttl_us;
} cache;

static void entry_free(gpointer p)
{
	struct entry *e = p;

	if (e->obj)
		obj_unref(e->obj);
	if (e->list)
		g_ptr_array_unref(e->list);
	g_free(e);
}

void cache_init(double ttl_seconds)
{
	cache.ttl_us = (gint64)(ttl_seconds * G_USEC_PER_SEC);
	cache.records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
	cache.lists = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
}

void cache_shutdown(void)
{
	g_clear_pointer(&cache.records, g_hash_table_destroy);
	g_clear_pointer(&cache.lists, g_hash_table_destroy);
}

static char *record_key(const struct ep_kind *k, const char *key)
{
	return g_strconcat(k->table, "\n", key, NULL);  /* tables are unique, names not */
}

static char *list_key(const struct ep_kind *k, const char *parent_key)
{
	return g_strconcat(k->table, "\n", parent_key ? parent_key : "", NULL);
}

static bool fresh(const struct entry *e)
{
	return g_get_monotonic_time() - e->loaded < cache.ttl_us;
}

struct ep_obj *cache_get(const struct ep_kind *k, const char *key)
{
	g_autofree char *ck = record_key(k, key);
	struct ep_obj *o = NULL;
	struct entry *e;

	if (cache.ttl_us <= 0)
		return NULL;
	g_mutex_lock(&cache.lock);
	e = g_hash_table_lookup(cache.records, ck);
	if (e && fresh(e))
		o = obj_ref(e->obj);
	g_mutex_unlock(&cache.lock);
	return o;
}

void cache_put(struct ep_obj *o)
{
	struct entry *e;

	if (cache.ttl_us <= 0)
		return;
	e = g_new0(struct entry, 1);
	e->loaded = g_get_monotonic_time();
	e->obj = obj_ref(o);
	g_mutex_lock(&cache.lock);
	g_hash_table_replace(cache.records, record_key(o->kind, o->key), e);
	g_mutex_unlock(&cache.lock);
}

bool cache_get_list(const struct ep_kind *k, const char *parent_key, GPtrArray *out)
{
	g_autofree char *ck = list_key(k, parent_key);
	struct entry *e;
	bool found = false;

	if (cache.ttl_us <= 0)
		return false;
	g_mutex_lock(&cache.lock);
	e = g_hash_table_lookup(cache.lists, ck);
	if (e && fresh(e)) {
		for (guint i = 0; i < e->list->len; i++)
			g_ptr_array_add(out, obj_ref(e->list->pdata[i]));
		found = true;
	}
	g_mutex_unlock(&cache.lock);
	return found;
}

void cache_put_list(const struct ep_kind *k, const char *parent_key, GPtrArray *objs)
{
	struct entry *e;
	gint64 now = g_get_monotonic_time();

	if (cache.ttl_us <= 0)
		return;
	e = g_new0(struct entry, 1);
	e->loaded = now;
	e->list = g_ptr_array_new_full(objs->len, (GDestroyNotify)obj_unref);
	g_mutex_lock(&cache.lock);
	for (guint i = 0; i < objs->len; i++) {
		struct ep_obj *o = objs->pdata[i];
		struct entry *r = g_new0(struct entry, 1);

		g_ptr_array_add(e->list, obj_ref(o));
		/* the listing loaded whole records: the walk that follows needs no query */
		r->loaded = now;
		r->obj = obj_ref(o);
		g_hash_table_replace(cache.records, record_key(k, o->key), r);
	}
	g_hash_table_replace(cache.lists, list_key(k, parent_key), e);
	g_mutex_unlock(&cache.lock);
}

void cache_drop(const struct ep_kind *k, const char *key)
{
	g_autofree char *rk = record_key(k, key);
	const char *slash = strrchr(key, '/');
	g_autofree char *parent = slash ? g_strndup(key, slash - key) : NULL;
	g_autofree char *lk = list_key(k, parent);

	if (!cache.records)
		return;
	g_mutex_lock(&cache.lock);
	g_hash_table_remove(cache.records, rk);
	g_hash_table_remove(cache.lists, lk);
	g_mutex_unlock(&cache.lock);
}

void cache_clear(void)
{
	if (!cache.records)
		return;
	g_mutex_lock(&cache.lock);
	g_hash_table_remove_all(cache.records);
	g_hash_table_remove_all(cache.lists);
	g_mutex_unlock(&cache.lock);
}
