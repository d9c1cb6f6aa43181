/* cache.h: the record cache, a layer of its own (as sshfs keeps its cache).
 *
 * Records and collection listings loaded from the database are kept for the
 * attribute timeout, so a directory walk costs one query per directory and an
 * open right after a stat costs none.  Every change made through the mount
 * drops the affected entries at once; changes made elsewhere are seen when the
 * change_log poller drops them, or when they expire.
 */
#pragma once

#include "kind.h"

void cache_init(double ttl_seconds);
void cache_shutdown(void);

/* A fresh cached record (a new reference), or NULL. */
struct ep_obj *cache_get(const struct ep_kind *k, const char *key);
void cache_put(struct ep_obj *o);

/* A fresh cached listing of a collection (new references appended to out): true if found. */
bool cache_get_list(const struct ep_kind *k, const char *parent_key, GPtrArray *out);
void cache_put_list(const struct ep_kind *k, const char *parent_key, GPtrArray *objs);

/* Forget a record and the listing of its collection. */
void cache_drop(const struct ep_kind *k, const char *key);
/* Forget everything. */
void cache_clear(void);
