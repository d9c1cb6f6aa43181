/* storage-test.c: TAP tests of the storage interface, for any backend.
 *
 *   storage-test CONFIG                  run every test against [storage] of CONFIG
 *   storage-test CONFIG COMMAND ARGS...  run one operation, for backend-specific scripts
 *   storage-test CONFIG shell            run operations read from stdin on one open storage
 *   storage-test CONFIG timing COUNT     time create, clone and remove, COUNT calls each
 *
 * The tests use names with a random suffix and remove everything they create,
 * so they can run against a shared Ceph cluster as well as a scratch directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "tap.h"
#include "storage.h"
#include "value.h"

#define MiB (UINT64_C(1) << 20)
#define THREADS 8

static struct storage *st;
static char prefix[32];         /* "st-<random>-", starts every name created */
static GPtrArray *created;      /* "pool/image" of everything created, for cleanup */

static char *name(const char *what)
{
	return g_strconcat(prefix, what, NULL);
}

static char *pool_image(const char *pool, const char *image)
{
	return g_strdup_printf("%s/%s", pool, image);
}

/* Remember pool/image so the cleanup removes it even if a test fails. */
static void remember(const char *pool, const char *image)
{
	g_ptr_array_add(created, pool_image(pool, image));
}

static bool sorted(GPtrArray *strings)
{
	for (guint i = 1; i < strings->len; i++)
		if (strcmp(strings->pdata[i - 1], strings->pdata[i]) >= 0)
			return false;
	return true;
}

static char *joined(GPtrArray *strings)
{
	g_ptr_array_add(strings, NULL);
	g_autofree char *s = g_strjoinv(",", (char **)strings->pdata);
	g_ptr_array_remove_index(strings, strings->len - 1);
	return g_steal_pointer(&s);
}

static struct storage_snap *find_snap(GPtrArray *snaps, const char *snap)
{
	for (guint i = 0; i < snaps->len; i++) {
		struct storage_snap *s = snaps->pdata[i];

		if (strcmp(s->name, snap) == 0)
			return s;
	}
	return NULL;
}

static GPtrArray *snap_array(void)
{
	return g_ptr_array_new_with_free_func((GDestroyNotify)storage_snap_free);
}

static GPtrArray *string_array(void)
{
	return g_ptr_array_new_with_free_func(g_free);
}

static void test_names(const char *pool, const char *base)
{
	g_autoptr(GPtrArray) out = string_array();
	g_autoptr(GString) xml = g_string_new(NULL);
	const char *type = NULL;

	is_err(storage_create(st, pool, "Upper", MiB), EINVAL, "create refuses an upper-case name");
	is_err(storage_create(st, pool, "a/b", MiB), EINVAL, "create refuses a name with '/'");
	is_err(storage_create(st, pool, "..", MiB), EINVAL, "create refuses '..'");
	is_err(storage_create(st, pool, ".hidden", MiB), EINVAL, "create refuses a leading '.'");
	is_err(storage_create(st, pool, "", MiB), EINVAL, "create refuses an empty name");
	is_err(storage_create(st, "../etc", base, MiB), EINVAL, "create refuses a pool '../etc'");
	is_err(storage_stat(st, pool, "x@y", &(struct storage_stat){0}), EINVAL,
	       "stat refuses a name with '@'");
	is_err(storage_snap_create(st, pool, base, "a@b"), EINVAL, "snap_create refuses an invalid snapshot name");
	is_err(storage_clone(st, pool, base, "s1", pool, "Bad"), EINVAL, "clone refuses an invalid destination");
	is_err(storage_clone(st, pool, base, "s1", "a/b", "x"), EINVAL, "clone refuses an invalid destination pool");
	is_err(storage_list(st, "A", out), EINVAL, "list refuses an invalid pool");
	is_err(storage_disk_source(st, pool, "/etc/passwd", xml, &type), EINVAL,
	       "disk_source refuses a path");
	ok(out->len == 0 && xml->len == 0, "refused calls return nothing");
}

static void test_missing(const char *pool, const char *missing)
{
	g_autoptr(GPtrArray) out = string_array();
	g_autoptr(GPtrArray) snaps = snap_array();
	g_autoptr(GString) xml = g_string_new(NULL);
	struct storage_stat s;
	const char *type = NULL;

	is_err(storage_stat(st, pool, missing, &s), ENOENT, "stat of a missing image");
	storage_stat_clear(&s);
	is_err(storage_resize(st, pool, missing, MiB), ENOENT, "resize of a missing image");
	is_err(storage_remove(st, pool, missing), ENOENT, "remove of a missing image");
	is_err(storage_snap_create(st, pool, missing, "s1"), ENOENT, "snap_create on a missing image");
	is_err(storage_snap_list(st, pool, missing, snaps), ENOENT, "snap_list of a missing image");
	is_err(storage_snap_protect(st, pool, missing, "s1"), ENOENT, "snap_protect on a missing image");
	is_err(storage_snap_remove(st, pool, missing, "s1"), ENOENT, "snap_remove on a missing image");
	is_err(storage_clone(st, pool, missing, "s1", pool, missing), ENOENT, "clone of a missing image");
	is_err(storage_children(st, pool, missing, "s1", out), ENOENT, "children of a missing image");
	is_err(storage_disk_source(st, pool, missing, xml, &type), ENOENT, "disk_source of a missing image");
	ok(out->len == 0 && snaps->len == 0 && xml->len == 0, "failed calls return nothing");
}

static void test_image(const char *pool, const char *base, const char *other)
{
	g_autoptr(GPtrArray) list = string_array();
	g_autofree char *names = NULL;
	struct storage_stat s;
	bool clean = true;

	if (ok_r(storage_create(st, pool, base, 64 * MiB), "create %s/%s 64M", pool, base))
		remember(pool, base);
	is_err(storage_create(st, pool, base, MiB), EEXIST, "create of an existing image");
	ok_r(storage_stat(st, pool, base, &s), "stat %s", base);
	ok(s.size == 64 * MiB, "size is 64M (%" PRIu64 ")", s.size);
	ok(s.used <= s.size, "used (%" PRIu64 ") is at most the size", s.used);
	ok(!s.parent_pool && !s.parent_image && !s.parent_snap, "a new image has no parent");
	storage_stat_clear(&s);

	if (ok_r(storage_create(st, pool, other, MiB), "create %s/%s 1M", pool, other))
		remember(pool, other);
	ok_r(storage_list(st, pool, list), "list %s", pool);
	ok(contains(list, base) && contains(list, other), "list shows both images");
	ok(sorted(list), "list is sorted");
	for (guint i = 0; i < list->len; i++)
		clean &= value_id_valid(list->pdata[i]);
	names = joined(list);
	ok(clean, "list shows only image names (%s)", names);

	ok_r(storage_resize(st, pool, base, 128 * MiB), "resize grows");
	ok_r(storage_stat(st, pool, base, &s), "stat after growing");
	ok(s.size == 128 * MiB, "size is 128M (%" PRIu64 ")", s.size);
	storage_stat_clear(&s);
	ok_r(storage_resize(st, pool, base, 32 * MiB), "resize shrinks");
	ok_r(storage_stat(st, pool, base, &s), "stat after shrinking");
	ok(s.size == 32 * MiB, "size is 32M (%" PRIu64 ")", s.size);
	storage_stat_clear(&s);
	ok_r(storage_resize(st, pool, base, 64 * MiB), "resize back to 64M");
}

static void test_snapshots(const char *pool, const char *base)
{
	g_autoptr(GPtrArray) snaps = snap_array();
	struct storage_snap *s1;
	struct storage_stat s;

	ok_r(storage_snap_create(st, pool, base, "s1"), "snap_create %s@s1", base);
	is_err(storage_snap_create(st, pool, base, "s1"), EEXIST, "snap_create of an existing snapshot");
	ok_r(storage_snap_list(st, pool, base, snaps), "snap_list");
	s1 = find_snap(snaps, "s1");
	ok(snaps->len == 1 && s1, "snap_list shows s1 only");
	ok(s1 && s1->size == 64 * MiB, "s1 is 64M");
	ok(s1 && !s1->protected_, "s1 is not protected");

	is_err(storage_snap_protect(st, pool, base, "nope"), ENOENT, "snap_protect of a missing snapshot");
	is_err(storage_snap_unprotect(st, pool, base, "nope"), ENOENT, "snap_unprotect of a missing snapshot");
	is_err(storage_snap_remove(st, pool, base, "nope"), ENOENT, "snap_remove of a missing snapshot");
	is_err(storage_clone(st, pool, base, "nope", pool, "x"), ENOENT, "clone of a missing snapshot");

	ok(storage_remove(st, pool, base) == -EBUSY && message_has("s1"),
	   "remove of an image with snapshots is EBUSY naming them");
	ep_error_clear();

	ok_r(storage_resize(st, pool, base, 128 * MiB), "resize an image that has snapshots");
	ok_r(storage_stat(st, pool, base, &s), "stat after resize");
	ok(s.size == 128 * MiB, "image is 128M");
	storage_stat_clear(&s);
	g_ptr_array_set_size(snaps, 0);
	ok_r(storage_snap_list(st, pool, base, snaps), "snap_list after resize");
	s1 = find_snap(snaps, "s1");
	ok(s1 && s1->size == 64 * MiB, "the snapshot keeps its size");
}

static void test_clones(const char *ipool, const char *vpool, const char *base,
                        const char *clone, const char *clone2)
{
	g_autoptr(GPtrArray) snaps = snap_array();
	g_autoptr(GPtrArray) children = string_array();
	g_autoptr(GPtrArray) list = string_array();
	g_autoptr(GString) xml = g_string_new(NULL);
	g_autofree char *child1 = pool_image(vpool, clone);
	g_autofree char *child2 = pool_image(ipool, clone2);
	g_autofree char *names = NULL;
	const char *type = NULL;
	struct storage_snap *s1;
	struct storage_stat s;

	is_err(storage_clone(st, ipool, base, "s1", vpool, clone), EINVAL, "clone of an unprotected snapshot");
	is_err(storage_snap_unprotect(st, ipool, base, "s1"), EINVAL, "snap_unprotect of an unprotected snapshot");
	ok_r(storage_snap_protect(st, ipool, base, "s1"), "snap_protect s1");
	ok_r(storage_snap_list(st, ipool, base, snaps), "snap_list");
	s1 = find_snap(snaps, "s1");
	ok(s1 && s1->protected_, "s1 is protected");
	is_err(storage_snap_protect(st, ipool, base, "s1"), EBUSY, "snap_protect of a protected snapshot");
	is_err(storage_snap_remove(st, ipool, base, "s1"), EBUSY, "snap_remove of a protected snapshot");

	if (ok_r(storage_clone(st, ipool, base, "s1", vpool, clone), "clone s1 to %s", child1))
		remember(vpool, clone);
	is_err(storage_clone(st, ipool, base, "s1", vpool, clone), EEXIST, "clone onto an existing image");
	is_err(storage_create(st, vpool, clone, MiB), EEXIST, "create onto a clone");
	if (ok_r(storage_clone(st, ipool, base, "s1", ipool, clone2), "clone s1 to %s", child2))
		remember(ipool, clone2);

	ok_r(storage_stat(st, vpool, clone, &s), "stat the clone");
	ok(s.size == 64 * MiB, "the clone has the snapshot's size (%" PRIu64 ")", s.size);
	ok(g_strcmp0(s.parent_pool, ipool) == 0 && g_strcmp0(s.parent_image, base) == 0 &&
	   g_strcmp0(s.parent_snap, "s1") == 0,
	   "the clone's parent is %s/%s@s1 (%s/%s@%s)", ipool, base, s.parent_pool, s.parent_image,
	   s.parent_snap);
	storage_stat_clear(&s);

	ok_r(storage_children(st, ipool, base, "s1", children), "children of s1");
	names = joined(children);
	ok(children->len == 2 && contains(children, child1) && contains(children, child2) &&
	   sorted(children), "children are %s and %s, sorted (%s)", child2, child1, names);

	ok(storage_snap_unprotect(st, ipool, base, "s1") == -EBUSY && message_has(child1),
	   "snap_unprotect with clones is EBUSY naming them");
	ep_error_clear();
	ok(storage_remove(st, ipool, base) == -EBUSY, "remove of a parent is EBUSY");
	ep_error_clear();

	ok_r(storage_disk_source(st, vpool, clone, xml, &type), "disk_source of the clone");
	ok(type && *type, "disk_source sets a disk type (%s)", type ? type : "NULL");
	ok(strstr(xml->str, "<source") != NULL, "disk_source appends a <source> (%s)", xml->str);

	ok_r(storage_list(st, vpool, list), "list %s", vpool);
	ok(contains(list, clone), "list shows the clone");

	ok_r(storage_snap_create(st, vpool, clone, "c1"), "snapshot of a clone");
	ok_r(storage_snap_remove(st, vpool, clone, "c1"), "snap_remove of an unprotected snapshot");
	ok_r(storage_remove(st, vpool, clone), "remove the clone");
	ok_r(storage_remove(st, ipool, clone2), "remove the second clone");
	g_ptr_array_set_size(children, 0);
	ok_r(storage_children(st, ipool, base, "s1", children), "children after removing the clones");
	ok(children->len == 0, "no children are left");

	ok_r(storage_snap_unprotect(st, ipool, base, "s1"), "snap_unprotect s1");
	g_ptr_array_set_size(snaps, 0);
	ok_r(storage_snap_list(st, ipool, base, snaps), "snap_list");
	s1 = find_snap(snaps, "s1");
	ok(s1 && !s1->protected_, "s1 is no longer protected");
	ok_r(storage_snap_remove(st, ipool, base, "s1"), "snap_remove s1");
	g_ptr_array_set_size(snaps, 0);
	ok_r(storage_snap_list(st, ipool, base, snaps), "snap_list");
	ok(snaps->len == 0, "no snapshots are left");
	ok_r(storage_remove(st, ipool, base), "remove %s", base);
	is_err(storage_stat(st, ipool, base, &s), ENOENT, "the removed image is gone");
	storage_stat_clear(&s);
	g_ptr_array_set_size(list, 0);
	ok_r(storage_list(st, ipool, list), "list %s", ipool);
	ok(!contains(list, base), "list no longer shows it");
}

static void test_snap_order(const char *pool, const char *image)
{
	static const char *const order[] = { "zeta", "alpha", "mid" };
	g_autoptr(GPtrArray) snaps = snap_array();
	g_autoptr(GPtrArray) names = string_array();
	g_autofree char *joined_names = NULL;
	bool all_ok = true;

	if (ok_r(storage_create(st, pool, image, MiB), "create %s", image))
		remember(pool, image);
	for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
		all_ok &= storage_snap_create(st, pool, image, order[i]) == 0;
	ok(all_ok, "snapshots zeta, alpha and mid, in that order");
	ok_r(storage_snap_list(st, pool, image, snaps), "snap_list");
	for (guint i = 0; i < snaps->len; i++)
		g_ptr_array_add(names, g_strdup(((struct storage_snap *)snaps->pdata[i])->name));
	joined_names = joined(names);
	ok(g_strcmp0(joined_names, "zeta,alpha,mid") == 0,
	   "snap_list lists them oldest first (%s)", joined_names);
	for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
		storage_snap_remove(st, pool, image, order[i]);
	ok_r(storage_remove(st, pool, image), "remove %s", image);
}

/* What a copy reported through its progress callback. */
struct progress_log {
	GMutex mutex;
	unsigned calls;
	uint64_t done;
	uint64_t total;
	bool backwards;             /* done went down, or past total */
};

static void log_progress(uint64_t done, uint64_t total, void *data)
{
	struct progress_log *p = data;

	g_mutex_lock(&p->mutex);
	if (done < p->done || done > total || (p->calls && total != p->total))
		p->backwards = true;
	p->calls++;
	p->done = done;
	p->total = total;
	g_mutex_unlock(&p->mutex);
}

static void test_copy(const char *ipool, const char *vpool, const char *src, const char *copy,
                      const char *clone, const char *copy2)
{
	g_autoptr(GPtrArray) snaps = snap_array();
	g_autoptr(GPtrArray) list = string_array();
	g_autoptr(GPtrArray) children = string_array();
	g_autofree char *child = pool_image(vpool, clone);
	struct progress_log log = { 0 };
	struct storage_stat s;

	g_mutex_init(&log.mutex);
	if (ok_r(storage_create(st, ipool, src, 8 * MiB), "create %s 8M", src))
		remember(ipool, src);
	ok_r(storage_snap_create(st, ipool, src, "s1"), "snapshot %s@s1", src);
	ok_r(storage_snap_protect(st, ipool, src, "s1"), "protect %s@s1", src);
	if (ok_r(storage_clone(st, ipool, src, "s1", vpool, clone), "clone it to %s", child))
		remember(vpool, clone);

	if (ok_r(storage_copy(st, ipool, src, vpool, copy, log_progress, &log), "copy %s to %s/%s",
	         src, vpool, copy))
		remember(vpool, copy);
	ok(log.calls > 0 && log.done == 8 * MiB && log.total == 8 * MiB,
	   "progress ends at 8M of 8M (%u calls, %" PRIu64 " of %" PRIu64 ")", log.calls, log.done,
	   log.total);
	ok(!log.backwards, "progress never goes back or past the total");
	ok_r(storage_stat(st, vpool, copy, &s), "stat the copy");
	ok(s.size == 8 * MiB, "the copy has the source's size (%" PRIu64 ")", s.size);
	ok(!s.parent_pool, "the copy has no parent");
	storage_stat_clear(&s);
	ok_r(storage_snap_list(st, vpool, copy, snaps), "snap_list of the copy");
	ok(snaps->len == 0, "the copy has no snapshots (%u)", snaps->len);
	ok_r(storage_list(st, vpool, list), "list %s", vpool);
	ok(contains(list, copy), "list shows the copy");

	ok_r(storage_resize(st, vpool, copy, 16 * MiB), "resize the copy to 16M");
	is_err(storage_copy(st, ipool, src, vpool, copy, NULL, NULL), EEXIST, "copy onto an existing image");
	ok_r(storage_stat(st, vpool, copy, &s), "stat the existing image");
	ok(s.size == 16 * MiB, "a refused copy leaves it alone (%" PRIu64 ")", s.size);
	storage_stat_clear(&s);
	is_err(storage_copy(st, ipool, src, ipool, src, NULL, NULL), EEXIST, "copy onto itself");
	is_err(storage_copy(st, ipool, "nope", vpool, "nope", NULL, NULL), ENOENT, "copy of a missing image");
	is_err(storage_stat(st, vpool, "nope", &s), ENOENT, "a failed copy leaves no image");
	storage_stat_clear(&s);
	is_err(storage_copy(st, ipool, src, vpool, "Bad", NULL, NULL), EINVAL, "copy to an invalid name");

	if (ok_r(storage_copy(st, vpool, clone, ipool, copy2, NULL, NULL),
	         "copy the clone, without progress"))
		remember(ipool, copy2);
	ok_r(storage_stat(st, ipool, copy2, &s), "stat the copy of the clone");
	ok(!s.parent_pool && s.size == 8 * MiB, "a copy of a clone is independent, 8M");
	storage_stat_clear(&s);
	ok_r(storage_children(st, ipool, src, "s1", children), "children of %s@s1", src);
	ok(children->len == 1 && contains(children, child), "copies are not clones");

	ok_r(storage_remove(st, vpool, copy), "remove the copy");
	ok_r(storage_remove(st, ipool, copy2), "remove the copy of the clone");
	ok_r(storage_remove(st, vpool, clone), "remove the clone");
	ok_r(storage_snap_unprotect(st, ipool, src, "s1"), "unprotect %s@s1", src);
	ok_r(storage_snap_remove(st, ipool, src, "s1"), "remove %s@s1", src);
	ok_r(storage_remove(st, ipool, src), "remove %s", src);
	g_mutex_clear(&log.mutex);
}

struct worker {
	GThread *thread;
	const char *pool;
	const char *image;
	char snap[16];
	const char *clone_pool;
	char *clone;
	int r[2];
};

static gpointer snap_worker(gpointer data)
{
	struct worker *w = data;

	w->r[0] = storage_snap_create(st, w->pool, w->image, w->snap);
	w->r[1] = w->r[0] < 0 ? w->r[0] : storage_snap_protect(st, w->pool, w->image, w->snap);
	return NULL;
}

static gpointer unsnap_worker(gpointer data)
{
	struct worker *w = data;

	w->r[0] = storage_snap_unprotect(st, w->pool, w->image, w->snap);
	w->r[1] = w->r[0] < 0 ? w->r[0] : storage_snap_remove(st, w->pool, w->image, w->snap);
	return NULL;
}

static gpointer clone_worker(gpointer data)
{
	struct worker *w = data;

	w->r[0] = storage_clone(st, w->pool, w->image, w->snap, w->clone_pool, w->clone);
	return NULL;
}

static gpointer unprotect_worker(gpointer data)
{
	struct worker *w = data;

	w->r[0] = storage_snap_unprotect(st, w->pool, w->image, w->snap);
	return NULL;
}

/* Run fn on every worker at once. */
static void run_workers(struct worker *w, int n, GThreadFunc fn)
{
	for (int i = 0; i < n; i++)
		w[i].thread = g_thread_new("worker", fn, &w[i]);
	for (int i = 0; i < n; i++)
		g_thread_join(w[i].thread);
}

static void test_threads(const char *pool, const char *vpool, const char *image)
{
	g_autoptr(GPtrArray) snaps = snap_array();
	struct worker w[THREADS] = {0};
	bool all_ok = true, all_protected = true;
	int races_ok = 0;

	if (ok_r(storage_create(st, pool, image, 4 * MiB), "create %s", image))
		remember(pool, image);
	for (int i = 0; i < THREADS; i++) {
		w[i].pool = pool;
		w[i].image = image;
		snprintf(w[i].snap, sizeof(w[i].snap), "p%d", i);
	}
	run_workers(w, THREADS, snap_worker);
	for (int i = 0; i < THREADS; i++)
		all_ok &= w[i].r[0] == 0 && w[i].r[1] == 0;
	ok(all_ok, "%d threads snapshot and protect one image at once", THREADS);
	ok_r(storage_snap_list(st, pool, image, snaps), "snap_list");
	for (guint i = 0; i < snaps->len; i++)
		all_protected &= ((struct storage_snap *)snaps->pdata[i])->protected_;
	ok(snaps->len == THREADS && all_protected, "every snapshot is there and protected (%u)",
	   snaps->len);

	/* a clone racing an unprotect: exactly one of them may win */
	for (int i = 0; i < THREADS; i++) {
		struct worker pair[2] = { w[i], w[i] };
		g_autofree char *clone = g_strdup_printf("%srace%d", prefix, i);

		pair[0].clone_pool = vpool;
		pair[0].clone = clone;
		remember(vpool, clone);
		pair[0].thread = g_thread_new("clone", clone_worker, &pair[0]);
		pair[1].thread = g_thread_new("unprotect", unprotect_worker, &pair[1]);
		g_thread_join(pair[0].thread);
		g_thread_join(pair[1].thread);
		/* both winning would be a clone of an unprotected snapshot; both losing
		 * happens on a loaded Ceph cluster (the unprotect sees the clone being
		 * made, the clone then times out) and leaves nothing wrong */
		if (!(pair[0].r[0] == 0 && pair[1].r[0] == 0))
			races_ok++;
		if ((pair[0].r[0] == 0) == (pair[1].r[0] == 0))
			printf("#   race %d: clone %s, unprotect %s\n", i,
			       pair[0].r[0] ? ep_errno_name(-pair[0].r[0]) : "ok",
			       pair[1].r[0] ? ep_errno_name(-pair[1].r[0]) : "ok");
		if (pair[0].r[0] == 0) {
			storage_remove(st, vpool, clone);
			storage_snap_unprotect(st, pool, image, w[i].snap);
		}
	}
	ok(races_ok == THREADS, "clone racing snap_unprotect: never both win");

	for (int i = 0; i < THREADS; i++)
		storage_snap_protect(st, pool, image, w[i].snap);
	run_workers(w, THREADS, unsnap_worker);
	all_ok = true;
	for (int i = 0; i < THREADS; i++)
		all_ok &= w[i].r[0] == 0 && w[i].r[1] == 0;
	ok(all_ok, "%d threads unprotect and remove snapshots at once", THREADS);
	g_ptr_array_set_size(snaps, 0);
	ok_r(storage_snap_list(st, pool, image, snaps), "snap_list");
	ok(snaps->len == 0, "no snapshots are left (%u)", snaps->len);
	ok_r(storage_remove(st, pool, image), "remove %s", image);
}

/* Remove pool/image and its snapshots, whatever state a failed test left. */
static void cleanup_image(const char *key)
{
	g_auto(GStrv) part = g_strsplit(key, "/", 2);
	g_autoptr(GPtrArray) snaps = snap_array();
	g_autoptr(GPtrArray) children = string_array();

	if (storage_snap_list(st, part[0], part[1], snaps) < 0)
		return;
	for (guint i = 0; i < snaps->len; i++) {
		struct storage_snap *s = snaps->pdata[i];

		storage_children(st, part[0], part[1], s->name, children);
		for (guint j = 0; j < children->len; j++)
			cleanup_image(children->pdata[j]);
		g_ptr_array_set_size(children, 0);
		storage_snap_unprotect(st, part[0], part[1], s->name);
		storage_snap_remove(st, part[0], part[1], s->name);
	}
	storage_remove(st, part[0], part[1]);
}

static void test_cleanup(void)
{
	const char *pools[] = { st->image_pool, st->volume_pool };
	bool clean = true;

	for (guint i = created->len; i > 0; i--)
		cleanup_image(created->pdata[i - 1]);
	for (guint p = 0; p < G_N_ELEMENTS(pools); p++) {
		g_autoptr(GPtrArray) list = string_array();

		storage_list(st, pools[p], list);
		for (guint i = 0; i < list->len; i++)
			clean &= !g_str_has_prefix(list->pdata[i], prefix);
	}
	ok(clean, "nothing this run created is left");
}

static int run_tests(void)
{
	const char *ipool = st->image_pool;
	const char *vpool = st->volume_pool;
	g_autofree char *base = name("base");
	g_autofree char *other = name("other");
	g_autofree char *clone = name("clone");
	g_autofree char *clone2 = name("clone2");
	g_autofree char *missing = name("missing");
	g_autofree char *threaded = name("threads");
	g_autofree char *ordered = name("order");
	g_autofree char *copy_src = name("copysrc");
	g_autofree char *copy = name("copy");
	g_autofree char *copy_clone = name("copyclone");
	g_autofree char *copy2 = name("copy2");

	created = string_array();
	ok_r(storage_ping(st), "ping");
	test_names(ipool, base);
	test_missing(ipool, missing);
	test_image(ipool, base, other);
	test_snapshots(ipool, base);
	test_clones(ipool, vpool, base, clone, clone2);
	test_snap_order(ipool, ordered);
	test_copy(ipool, vpool, copy_src, copy, copy_clone, copy2);
	test_threads(ipool, vpool, threaded);
	ok_r(storage_remove(st, ipool, other), "remove %s", other);
	test_cleanup();
	ok_r(storage_ping(st), "ping");
	g_ptr_array_unref(created);
	return tap_done();
}

/* One operation from the command line: the backend's own tests script these. */
static int parse_size(const char *s, uint64_t *out)
{
	if (value_parse_size(s, out) < 0)
		return ep_errorf(EINVAL, "invalid size '%s'", s);
	return 0;
}

static int cmd_ping(char **a)
{
	(void)a;
	return storage_ping(st);
}

static int cmd_create(char **a)
{
	uint64_t size;
	int r = parse_size(a[2], &size);

	return r < 0 ? r : storage_create(st, a[0], a[1], size);
}

static int cmd_resize(char **a)
{
	uint64_t size;
	int r = parse_size(a[2], &size);

	return r < 0 ? r : storage_resize(st, a[0], a[1], size);
}

static int cmd_stat(char **a)
{
	struct storage_stat s;
	int r = storage_stat(st, a[0], a[1], &s);

	if (r < 0)
		return r;
	printf("size %" PRIu64 "\nused %" PRIu64 "\n", s.size, s.used);
	if (s.parent_pool)
		printf("parent %s/%s@%s\n", s.parent_pool, s.parent_image, s.parent_snap);
	storage_stat_clear(&s);
	return 0;
}

static void print_lines(GPtrArray *lines)
{
	for (guint i = 0; i < lines->len; i++)
		printf("%s\n", (char *)lines->pdata[i]);
}

static int cmd_list(char **a)
{
	g_autoptr(GPtrArray) out = string_array();
	int r = storage_list(st, a[0], out);

	if (r == 0)
		print_lines(out);
	return r;
}

static int cmd_remove(char **a)
{
	return storage_remove(st, a[0], a[1]);
}

static int cmd_snap_create(char **a)
{
	return storage_snap_create(st, a[0], a[1], a[2]);
}

static int cmd_snap_protect(char **a)
{
	return storage_snap_protect(st, a[0], a[1], a[2]);
}

static int cmd_snap_unprotect(char **a)
{
	return storage_snap_unprotect(st, a[0], a[1], a[2]);
}

static int cmd_snap_remove(char **a)
{
	return storage_snap_remove(st, a[0], a[1], a[2]);
}

static int cmd_snap_list(char **a)
{
	g_autoptr(GPtrArray) out = snap_array();
	int r = storage_snap_list(st, a[0], a[1], out);

	for (guint i = 0; r == 0 && i < out->len; i++) {
		struct storage_snap *s = out->pdata[i];

		printf("%s %" PRIu64 " %s\n", s->name, s->size, s->protected_ ? "protected" : "-");
	}
	return r;
}

static int cmd_clone(char **a)
{
	return storage_clone(st, a[0], a[1], a[2], a[3], a[4]);
}

static int cmd_children(char **a)
{
	g_autoptr(GPtrArray) out = string_array();
	int r = storage_children(st, a[0], a[1], a[2], out);

	if (r == 0)
		print_lines(out);
	return r;
}

static int cmd_disk_source(char **a)
{
	g_autoptr(GString) xml = g_string_new(NULL);
	const char *type = NULL;
	int r = storage_disk_source(st, a[0], a[1], xml, &type);

	if (r == 0)
		printf("%s\n%s\n", type, xml->str);
	return r;
}

/* Progress of the copy command, one line each, for scripts to watch. */
static void print_progress(uint64_t done, uint64_t total, void *data)
{
	(void)data;
	printf("progress %" PRIu64 " %" PRIu64 "\n", done, total);
	fflush(stdout);
}

static int cmd_copy(char **a)
{
	return storage_copy(st, a[0], a[1], a[2], a[3], print_progress, NULL);
}

static gint double_cmp(gconstpointer a, gconstpointer b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One line of figures for the calls of op that took ms[0..n) milliseconds. */
static void print_times(const char *op, GArray *ms)
{
	double sum = 0;
	double *v = (double *)ms->data;

	if (ms->len == 0)
		return;
	g_array_sort(ms, double_cmp);
	for (guint i = 0; i < ms->len; i++)
		sum += v[i];
	printf("%-14s calls %3u  min %7.2f  median %7.2f  mean %7.2f  max %7.2f ms\n", op, ms->len,
	       v[0], v[ms->len / 2], sum / ms->len, v[ms->len - 1]);
}

static double elapsed_ms(gint64 since)
{
	return (g_get_monotonic_time() - since) / 1000.0;
}

/* Time each call into times; return at the first failure. */
#define TIMED(times, call)                                        \
	do {                                                      \
		gint64 t0_ = g_get_monotonic_time();              \
		int r_ = (call);                                  \
		double ms_ = elapsed_ms(t0_);                     \
		if (r_ < 0)                                       \
			return r_;                                \
		g_array_append_val((times), ms_);                 \
	} while (0)

enum { T_CREATE, T_STAT, T_LIST, T_SNAP_CREATE, T_SNAP_PROTECT, T_CLONE, T_CHILDREN,
       T_REMOVE_CLONE, T_SNAP_UNPROTECT, T_SNAP_REMOVE, T_REMOVE, T_COUNT };

static const char *const timing_ops[T_COUNT] = {
	"create", "stat", "list", "snap_create", "snap_protect", "clone", "children",
	"remove_clone", "snap_unprotect", "snap_remove", "remove",
};

/* The usual life of images: base, images[i] and their clones, timed. */
static int timing_run(GArray **t, const char *base, GPtrArray *images)
{
	const char *ipool = st->image_pool, *vpool = st->volume_pool;

	TIMED(t[T_CREATE], storage_create(st, ipool, base, 1024 * MiB));
	for (guint i = 0; i < images->len; i++)
		TIMED(t[T_CREATE], storage_create(st, ipool, images->pdata[i], 1024 * MiB));
	for (guint i = 0; i < images->len; i++) {
		struct storage_stat s;

		TIMED(t[T_STAT], storage_stat(st, ipool, images->pdata[i], &s));
		storage_stat_clear(&s);
	}
	for (int i = 0; i < 3; i++) {
		g_autoptr(GPtrArray) l = string_array();

		TIMED(t[T_LIST], storage_list(st, ipool, l));
	}
	TIMED(t[T_SNAP_CREATE], storage_snap_create(st, ipool, base, "s1"));
	TIMED(t[T_SNAP_PROTECT], storage_snap_protect(st, ipool, base, "s1"));
	for (guint i = 0; i < images->len; i++)
		TIMED(t[T_CLONE], storage_clone(st, ipool, base, "s1", vpool, images->pdata[i]));
	for (int i = 0; i < 3; i++) {
		g_autoptr(GPtrArray) l = string_array();

		TIMED(t[T_CHILDREN], storage_children(st, ipool, base, "s1", l));
	}
	for (guint i = 0; i < images->len; i++)
		TIMED(t[T_REMOVE_CLONE], storage_remove(st, vpool, images->pdata[i]));
	TIMED(t[T_SNAP_UNPROTECT], storage_snap_unprotect(st, ipool, base, "s1"));
	TIMED(t[T_SNAP_REMOVE], storage_snap_remove(st, ipool, base, "s1"));
	for (guint i = 0; i < images->len; i++)
		TIMED(t[T_REMOVE], storage_remove(st, ipool, images->pdata[i]));
	TIMED(t[T_REMOVE], storage_remove(st, ipool, base));
	return 0;
}

/* Latency per call: COUNT images of 1 GiB (sparse), COUNT clones of one
 * snapshot, and their removal; one line of figures per operation. */
static int cmd_timing(char **a)
{
	const char *ipool = st->image_pool, *vpool = st->volume_pool;
	g_autoptr(GPtrArray) images = string_array();
	g_autofree char *base = NULL;
	GArray *t[T_COUNT];
	int64_t n;
	int r;

	if (value_parse_int(a[0], 1, 1000, &n) < 0)
		return ep_errorf(EINVAL, "invalid count '%s'", a[0]);
	snprintf(prefix, sizeof(prefix), "tm-%08x-", g_random_int());
	base = name("base");
	for (int i = 0; i < T_COUNT; i++)
		t[i] = g_array_new(FALSE, FALSE, sizeof(double));
	for (int64_t i = 0; i < n; i++)
		g_ptr_array_add(images, g_strdup_printf("%s%" PRId64, prefix, i));

	r = timing_run(t, base, images);
	printf("# backend %s: %" PRId64 " images of 1 GiB (sparse), %" PRId64 " clones\n",
	       st->ops->name, n, n);
	for (int i = 0; i < T_COUNT; i++) {
		print_times(timing_ops[i], t[i]);
		g_array_unref(t[i]);
	}
	if (r < 0) {
		/* keep the failure's message: the cleanup may record others */
		g_autofree char *message = g_strdup(ep_error_message());

		for (guint i = 0; i < images->len; i++) {
			storage_remove(st, vpool, images->pdata[i]);
			storage_remove(st, ipool, images->pdata[i]);
		}
		storage_snap_unprotect(st, ipool, base, "s1");
		storage_snap_remove(st, ipool, base, "s1");
		storage_remove(st, ipool, base);
		ep_errorf(-r, "%s", message);
	}
	return r;
}

static int cmd_shell(char **a);

static const struct command {
	const char *name;
	const char *args;
	int (*run)(char **args);
} commands[] = {
	{ "ping", "", cmd_ping },
	{ "create", "POOL IMAGE SIZE", cmd_create },
	{ "resize", "POOL IMAGE SIZE", cmd_resize },
	{ "stat", "POOL IMAGE", cmd_stat },
	{ "list", "POOL", cmd_list },
	{ "remove", "POOL IMAGE", cmd_remove },
	{ "snap-create", "POOL IMAGE SNAP", cmd_snap_create },
	{ "snap-protect", "POOL IMAGE SNAP", cmd_snap_protect },
	{ "snap-unprotect", "POOL IMAGE SNAP", cmd_snap_unprotect },
	{ "snap-remove", "POOL IMAGE SNAP", cmd_snap_remove },
	{ "snap-list", "POOL IMAGE", cmd_snap_list },
	{ "clone", "POOL IMAGE SNAP DST_POOL DST_IMAGE", cmd_clone },
	{ "children", "POOL IMAGE SNAP", cmd_children },
	{ "copy", "POOL IMAGE DST_POOL DST_IMAGE", cmd_copy },
	{ "disk-source", "POOL IMAGE", cmd_disk_source },
	{ "timing", "COUNT", cmd_timing },
	{ "shell", "", cmd_shell },
};

static int usage(void)
{
	fprintf(stderr, "usage: storage-test CONFIG [COMMAND ARGS...]\ncommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(stderr, "  %s %s\n", commands[i].name, commands[i].args);
	fprintf(stderr, "shell reads one command a line and answers each with\n"
	        "  = ok MS    or    = ERRNO MS MESSAGE\n");
	return 2;
}

/* The command argv[0] with exactly its arguments, or NULL. */
static const struct command *find_command(int argc, char **argv)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		const struct command *c = &commands[i];
		g_auto(GStrv) words = g_strsplit(c->args, " ", -1);
		int nargs = c->args[0] ? (int)g_strv_length(words) : 0;

		if (strcmp(argv[0], c->name) == 0)
			return argc - 1 == nargs ? c : NULL;
	}
	return NULL;
}

/* Commands from stdin on the storage opened once, as the daemon holds it:
 * after each, "= ok MS" or "= ERRNO MS MESSAGE" with the time it took. */
static int cmd_shell(char **a)
{
	char line[4096];

	(void)a;
	while (fgets(line, sizeof(line), stdin)) {
		g_auto(GStrv) argv = NULL;
		const struct command *c;
		gint64 t0;
		int argc = 0;
		int r;

		if (!g_shell_parse_argv(line, &argc, &argv, NULL))
			continue;
		c = find_command(argc, argv);
		if (!c || c->run == cmd_shell) {
			printf("= EINVAL 0 usage: %s\n", argv[0]);
			fflush(stdout);
			continue;
		}
		ep_error_clear();
		t0 = g_get_monotonic_time();
		r = c->run(argv + 1);
		if (r < 0)
			printf("= %s %.0f %s\n", ep_errno_name(-r), elapsed_ms(t0), ep_error_message());
		else
			printf("= ok %.0f\n", elapsed_ms(t0));
		fflush(stdout);
	}
	return 0;
}

static int run_command(int argc, char **argv)
{
	const struct command *c = find_command(argc, argv);
	int r;

	if (!c)
		return usage();
	r = c->run(argv + 1);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", ep_errno_name(-r), ep_error_message());
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(GError) error = NULL;
	int r;

	if (argc < 2)
		return usage();
	if (!g_key_file_load_from_file(config, argv[1], G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "storage-test: %s: %s\n", argv[1], error->message);
		return 2;
	}
	r = storage_open(config, &st);
	if (argc > 2) {
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", ep_errno_name(-r), ep_error_message());
			return 1;
		}
		r = run_command(argc - 2, argv + 2);
		storage_close(st);
		return r;
	}

	snprintf(prefix, sizeof(prefix), "st-%08x-", g_random_int());
	printf("# backend %s, names start with %s\n", st ? st->ops->name : "?", prefix);
	if (!ok_r(r, "storage_open")) {
		tap_done();
		return 1;
	}
	r = run_tests();
	storage_close(st);
	return r;
}
