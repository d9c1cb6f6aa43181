/* storage_dir.c: the `dir` storage backend, images as sparse files in a directory.
 *
 * DIR/<pool>/<image>              the image, a sparse raw file
 * DIR/<pool>/<image>@<snap>       a snapshot, a read-only sparse copy; mtime = when taken
 * DIR/<pool>/.meta.<image>.json   protected snapshots and the clone parent
 * DIR/<pool>/.tmp.*               files being written; removed by open()
 *
 * Names are ids (no '/', '@' or leading '.'), so these never collide.
 * See docs/storage.md.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "value.h"

#define DIR_DEFAULT_PATH "/var/lib/epfs/storage"
#define TMP_PREFIX ".tmp."
#define META_PREFIX ".meta."
#define META_SUFFIX ".json"
#define IMAGE_MODE 0600
#define SNAP_MODE 0400
#define COPY_CHUNK (1 << 20)
#define COPY_STEP (64 << 20)

struct dir_backend {
	char *path;                 /* absolute path of DIR */
	bool qcow2_clones;          /* clones as qcow2 overlays (clone_format=qcow2) */
	GMutex locks_mutex;         /* guards locks and every dir_lock.users */
	GHashTable *locks;          /* "pool/image" -> struct dir_lock */
};

/* Serialises the changes to one image, its snapshots and its sidecar. */
struct dir_lock {
	GMutex mutex;
	int users;                  /* threads holding or waiting for mutex */
	char *key;                  /* "pool/image", also the hash table key */
	struct dir_backend *db;
};

typedef struct dir_lock DirLock;

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define auto_fd __attribute__((cleanup(fd_close))) int

static struct dir_backend *backend(struct storage *st)
{
	return st->priv;
}

/* Record errno from a failed system call on path and return it negated. */
static int sys_error(const char *what, const char *path)
{
	int err = errno;

	return ep_errorf(err, "%s %s: %s", what, path, g_strerror(err));
}

static char *pool_path(struct dir_backend *db, const char *pool)
{
	return g_build_filename(db->path, pool, NULL);
}

static char *image_path(struct dir_backend *db, const char *pool, const char *image)
{
	return g_build_filename(db->path, pool, image, NULL);
}

static char *snap_path(struct dir_backend *db, const char *pool, const char *image, const char *snap)
{
	g_autofree char *name = g_strdup_printf("%s@%s", image, snap);

	return g_build_filename(db->path, pool, name, NULL);
}

static char *meta_path(struct dir_backend *db, const char *pool, const char *image)
{
	g_autofree char *name = g_strconcat(META_PREFIX, image, META_SUFFIX, NULL);

	return g_build_filename(db->path, pool, name, NULL);
}

static void dir_lock_free(gpointer data)
{
	struct dir_lock *l = data;

	g_mutex_clear(&l->mutex);
	g_free(l->key);
	g_free(l);
}

/* Take the lock of pool/image, creating it on first use. */
static struct dir_lock *image_lock(struct dir_backend *db, const char *pool, const char *image)
{
	g_autofree char *key = g_strdup_printf("%s/%s", pool, image);
	struct dir_lock *l;

	g_mutex_lock(&db->locks_mutex);
	l = g_hash_table_lookup(db->locks, key);
	if (!l) {
		l = g_new0(struct dir_lock, 1);
		g_mutex_init(&l->mutex);
		l->key = g_steal_pointer(&key);
		l->db = db;
		g_hash_table_insert(db->locks, l->key, l);
	}
	l->users++;
	g_mutex_unlock(&db->locks_mutex);
	g_mutex_lock(&l->mutex);
	return l;
}

/* Release the lock; the last user frees it so the table stays small. */
static void image_unlock(struct dir_lock *l)
{
	struct dir_backend *db = l->db;

	g_mutex_unlock(&l->mutex);
	g_mutex_lock(&db->locks_mutex);
	if (--l->users == 0)
		g_hash_table_remove(db->locks, l->key);
	g_mutex_unlock(&db->locks_mutex);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DirLock, image_unlock)

/* 0 if path exists; -ENOENT with message "<what> does not exist" if not. */
static int check_exists(const char *path, struct stat *sb, const char *what)
{
	struct stat ignored;

	if (stat(path, sb ? sb : &ignored) == 0)
		return 0;
	if (errno == ENOENT)
		return ep_errorf(ENOENT, "%s does not exist", what);
	return sys_error("stat", path);
}

static int check_image(struct dir_backend *db, const char *pool, const char *image, struct stat *sb)
{
	g_autofree char *path = image_path(db, pool, image);
	g_autofree char *what = g_strdup_printf("image %s/%s", pool, image);

	return check_exists(path, sb, what);
}

static int check_snap(struct dir_backend *db, const char *pool, const char *image, const char *snap,
                      struct stat *sb)
{
	g_autofree char *path = snap_path(db, pool, image, snap);
	g_autofree char *what = g_strdup_printf("snapshot %s/%s@%s", pool, image, snap);
	int r = check_image(db, pool, image, NULL);

	return r < 0 ? r : check_exists(path, sb, what);
}

/* True if path exists (any error other than ENOENT counts as existing). */
static bool path_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 || errno != ENOENT;
}

/* Create the directory of pool if it is missing. */
static int make_pool(struct dir_backend *db, const char *pool)
{
	g_autofree char *path = pool_path(db, pool);

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return sys_error("mkdir", path);
	return 0;
}

static int fsync_dir(const char *path)
{
	auto_fd fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return sys_error("open", path);
	if (fsync(fd) < 0)
		return sys_error("fsync", path);
	return 0;
}

/* Open a new temp file for name in dir; *tmp gets its path. */
static int tmp_create(const char *dir, const char *name, int mode, char **tmp)
{
	g_autofree char *path = g_strdup_printf("%s/" TMP_PREFIX "%s.XXXXXX", dir, name);
	int fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, mode);

	if (fd < 0)
		return sys_error("create temp file in", dir);
	*tmp = g_steal_pointer(&path);
	return fd;
}

/* Give the finished temp file tmp (already fsync'd) its final name, atomically.
 * Unless replace, an existing final name is an error (EEXIST). */
static int publish(const char *tmp, const char *final, bool replace)
{
	g_autofree char *dir = g_path_get_dirname(final);
	int r;

	if (replace) {
		r = rename(tmp, final);
	} else {
		r = renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE);
		/* not every filesystem has RENAME_NOREPLACE; link() never replaces either */
		if (r < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			r = link(tmp, final);
			if (r == 0)
				unlink(tmp);
		}
	}
	if (r < 0)
		return sys_error("rename to", final);
	/* the new name must survive a crash as well as the bytes */
	return fsync_dir(dir);
}

static int write_all(int fd, const char *buf, size_t len, off_t off, const char *path)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sys_error("write", path);
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

static bool is_zero(const char *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

/* Where a copy tells how far it got (fn may be NULL). */
struct copy_progress {
	storage_progress_fn *fn;
	void *data;
	uint64_t total;
};

/* Report that the copy reached offset done. */
static void progress_at(const struct copy_progress *p, uint64_t done)
{
	if (p && p->fn)
		p->fn(MIN(done, p->total), p->total, p->data);
}

/* Copy [off, off+len) with read and write, leaving zero chunks as holes. */
static int copy_rw(int src, int dst, off_t off, off_t len, const char *path,
                   const struct copy_progress *p)
{
	g_autofree char *buf = g_malloc(COPY_CHUNK);

	while (len > 0) {
		ssize_t n = pread(src, buf, MIN(len, COPY_CHUNK), off);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sys_error("read", path);
		if (n == 0)
			break;
		if (!is_zero(buf, n)) {
			r = write_all(dst, buf, n, off, path);
			if (r < 0)
				return r;
		}
		off += n;
		len -= n;
		progress_at(p, off);
	}
	return 0;
}

/* Copy the extent [off, off+len) of src to the same place in dst. */
static int copy_extent(int src, int dst, off_t off, off_t len, const char *path,
                       const struct copy_progress *p)
{
	while (len > 0) {
		loff_t in = off, out = off;
		/* in steps, so that progress moves during one large extent */
		ssize_t n = copy_file_range(src, &in, dst, &out, MIN(len, COPY_STEP), 0);

		if (n < 0 && errno == EINTR)
			continue;
		/* older kernels and some filesystems cannot; plain copying always can */
		if (n < 0 && (errno == ENOSYS || errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL))
			return copy_rw(src, dst, off, len, path, p);
		if (n < 0)
			return sys_error("copy_file_range from", path);
		/* the source shrank under us; the final ftruncate fixes the size */
		if (n == 0)
			break;
		off += n;
		len -= n;
		progress_at(p, off);
	}
	return 0;
}

/* Make dst a sparse copy of the first size bytes of src: a reflink when the
 * filesystem has them, else only the data extents of src. */
static int copy_sparse(int src, int dst, off_t size, const char *path,
                       const struct copy_progress *p)
{
	off_t off = 0;
	int r;

	if (ioctl(dst, FICLONE, src) == 0) {
		progress_at(p, size);
		return 0;
	}
	while (off < size) {
		off_t data = lseek(src, off, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return sys_error("seek data in", path);
		if (data >= size)
			break;
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return sys_error("seek hole in", path);
		r = copy_extent(src, dst, data, MIN(hole, size) - data, path, p);
		if (r < 0)
			return r;
		off = hole;
	}
	if (ftruncate(dst, size) < 0)
		return sys_error("truncate", path);
	progress_at(p, size);
	return 0;
}

/* Write a sparse copy of the file src_path to a new temp file in dir_path,
 * named after name, fsync'd; *tmp gets the temp file's path.  progress (may
 * be NULL) is told how far the copy got. */
static int copy_to_tmp(const char *src_path, const char *dir_path, const char *name, int mode,
                       char **tmp, storage_progress_fn *progress, void *data)
{
	g_autofree char *tmp_path = NULL;
	auto_fd src = open(src_path, O_RDONLY | O_CLOEXEC);
	auto_fd dst = -1;
	struct copy_progress p = { .fn = progress, .data = data };
	struct stat sb;
	int r;

	if (src < 0)
		return sys_error("open", src_path);
	if (fstat(src, &sb) < 0)
		return sys_error("stat", src_path);
	p.total = sb.st_size;
	dst = tmp_create(dir_path, name, mode, &tmp_path);
	if (dst < 0)
		return dst;
	r = copy_sparse(src, dst, sb.st_size, src_path, &p);
	if (r == 0 && fsync(dst) < 0)
		r = sys_error("fsync", tmp_path);
	if (r < 0) {
		unlink(tmp_path);
		return r;
	}
	*tmp = g_steal_pointer(&tmp_path);
	return 0;
}

/* Load the sidecar of pool/image; a missing sidecar is an empty object. */
static int meta_load(struct dir_backend *db, const char *pool, const char *image, json_t **out)
{
	g_autofree char *path = meta_path(db, pool, image);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	json_error_t jerr;
	gsize len;
	json_t *meta;

	if (!g_file_get_contents(path, &text, &len, &error)) {
		if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return ep_errorf(EIO, "metadata of %s/%s: %s", pool, image, error->message);
		*out = json_object();
		return 0;
	}
	meta = json_loadb(text, len, 0, &jerr);
	if (!meta || !json_is_object(meta)) {
		json_decref(meta);
		return ep_errorf(EIO, "metadata of %s/%s is corrupt: %s", pool, image,
		                 meta ? "not an object" : jerr.text);
	}
	*out = meta;
	return 0;
}

/* Replace the sidecar of pool/image atomically; an empty meta removes it. */
static int meta_save(struct dir_backend *db, const char *pool, const char *image, json_t *meta)
{
	g_autofree char *path = meta_path(db, pool, image);
	g_autofree char *dir = pool_path(db, pool);
	g_autofree char *name = g_path_get_basename(path);
	g_autofree char *tmp = NULL;
	g_autofree char *text = NULL;
	auto_fd fd = -1;
	char *json;
	int r;

	if (json_object_size(meta) == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			return sys_error("remove", path);
		return 0;
	}
	json = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!json)
		return ep_errorf(ENOMEM, "cannot format metadata of %s/%s", pool, image);
	text = g_strconcat(json, "\n", NULL);
	free(json);
	fd = tmp_create(dir, name, 0644, &tmp);
	if (fd < 0)
		return fd;
	r = write_all(fd, text, strlen(text), 0, tmp);
	if (r == 0 && fsync(fd) < 0)
		r = sys_error("fsync", tmp);
	if (r == 0)
		r = publish(tmp, path, true);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The index of snap in the sidecar's "protected" array, or -1. */
static int meta_protected_index(json_t *meta, const char *snap)
{
	json_t *list = json_object_get(meta, "protected");
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), snap) == 0)
			return i;
	return -1;
}

static int meta_set_protected(json_t *meta, const char *snap, bool protect)
{
	json_t *list = json_object_get(meta, "protected");
	int i = meta_protected_index(meta, snap);

	if (protect && i < 0) {
		if (!json_is_array(list)) {
			list = json_array();
			json_object_set_new(meta, "protected", list);
		}
		if (json_array_append_new(list, json_string(snap)) < 0)
			return ep_errorf(ENOMEM, "cannot record protected snapshot %s", snap);
	} else if (!protect && i >= 0) {
		json_array_remove(list, i);
		/* keep the sidecar minimal, so an image without state has none */
		if (json_array_size(list) == 0)
			json_object_del(meta, "protected");
	}
	return 0;
}

/* The "pool/image@snap" parent of a clone, split; 0 and NULLs if none. */
static int meta_parent(json_t *meta, const char *what, char **pool, char **image, char **snap)
{
	const char *parent = json_string_value(json_object_get(meta, "parent"));
	g_auto(GStrv) a = NULL;
	g_auto(GStrv) b = NULL;

	*pool = *image = *snap = NULL;
	if (!json_object_get(meta, "parent"))
		return 0;
	if (parent) {
		a = g_strsplit(parent, "/", 2);
		if (g_strv_length(a) == 2)
			b = g_strsplit(a[1], "@", 2);
	}
	if (!b || g_strv_length(b) != 2 || !value_id_valid(a[0]) || !value_id_valid(b[0]) ||
	    !value_id_valid(b[1]))
		return ep_errorf(EIO, "metadata of %s has a malformed parent", what);
	*pool = g_strdup(a[0]);
	*image = g_strdup(b[0]);
	*snap = g_strdup(b[1]);
	return 0;
}

static gint name_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the strings of from and move them to the end of out. */
static void move_sorted(GPtrArray *from, GPtrArray *out)
{
	g_ptr_array_sort(from, name_cmp);
	for (guint i = 0; i < from->len; i++)
		g_ptr_array_add(out, g_steal_pointer(&from->pdata[i]));
}

/* Append the names of the snapshots of pool/image to out, sorted. */
static int snap_names(struct dir_backend *db, const char *pool, const char *image, GPtrArray *out)
{
	g_autofree char *dir_path = pool_path(db, pool);
	g_autofree char *prefix = g_strdup_printf("%s@", image);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, &error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	if (!dir)
		return ep_errorf(error->code == G_FILE_ERROR_NOENT ? ENOENT : EIO, "pool %s: %s",
		                 pool, error->message);
	while ((name = g_dir_read_name(dir)))
		if (g_str_has_prefix(name, prefix) && value_id_valid(name + strlen(prefix)))
			g_ptr_array_add(names, g_strdup(name + strlen(prefix)));
	move_sorted(names, out);
	return 0;
}

/* Append "pool/image" of every clone of pool/image@snap to out, sorted.
 * Clones name their parent in their own sidecar, so this scans every pool;
 * a sidecar whose image is gone (a crash mid-clone or mid-remove) is no clone. */
static int clone_names(struct dir_backend *db, const char *pool, const char *image,
                       const char *snap, GPtrArray *out)
{
	g_autofree char *parent = g_strdup_printf("%s/%s@%s", pool, image, snap);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) top = g_dir_open(db->path, 0, &error);
	g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
	const size_t affixes = strlen(META_PREFIX) + strlen(META_SUFFIX);
	const char *p;
	int r;

	if (!top)
		return ep_errorf(EIO, "%s: %s", db->path, error->message);
	while ((p = g_dir_read_name(top))) {
		g_autofree char *dir_path = pool_path(db, p);
		g_autoptr(GDir) dir = NULL;
		const char *name;

		/* anything that is not a pool directory is none of ours */
		if (!value_id_valid(p) || !(dir = g_dir_open(dir_path, 0, NULL)))
			continue;
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *child = NULL;
			g_autofree char *child_path = NULL;
			json_auto_t *meta = NULL;

			if (strlen(name) <= affixes || !g_str_has_prefix(name, META_PREFIX) ||
			    !g_str_has_suffix(name, META_SUFFIX))
				continue;
			child = g_strndup(name + strlen(META_PREFIX), strlen(name) - affixes);
			child_path = image_path(db, p, child);
			if (!value_id_valid(child) || !path_exists(child_path))
				continue;
			r = meta_load(db, p, child, &meta);
			if (r < 0)
				return r;
			if (g_strcmp0(json_string_value(json_object_get(meta, "parent")), parent) == 0)
				g_ptr_array_add(found, g_strdup_printf("%s/%s", p, child));
		}
	}
	move_sorted(found, out);
	return 0;
}

/* "a, b, c" from an array of strings, for messages. */
static char *join(GPtrArray *names)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < names->len; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", (char *)names->pdata[i]);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Remove what a crash left: temp files, and sidecars whose image is gone. */
static int cleanup_pool(struct dir_backend *db, const char *pool)
{
	g_autofree char *dir_path = pool_path(db, pool);
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
	const size_t affixes = strlen(META_PREFIX) + strlen(META_SUFFIX);
	const char *name;

	if (!dir)
		return 0;
	while ((name = g_dir_read_name(dir))) {
		g_autofree char *path = g_build_filename(dir_path, name, NULL);
		g_autofree char *image = NULL;
		g_autofree char *image_file = NULL;

		if (g_str_has_prefix(name, META_PREFIX) && g_str_has_suffix(name, META_SUFFIX) &&
		    strlen(name) > affixes) {
			image = g_strndup(name + strlen(META_PREFIX), strlen(name) - affixes);
			image_file = image_path(db, pool, image);
			if (path_exists(image_file))
				continue;
		} else if (!g_str_has_prefix(name, TMP_PREFIX)) {
			continue;
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return sys_error("remove leftover", path);
	}
	return 0;
}

static int dir_open(struct storage *st, GKeyFile *config)
{
	g_autofree char *path = g_key_file_get_string(config, "storage", "path", NULL);
	g_autofree char *abs = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) top = NULL;
	struct dir_backend *db;
	const char *name;
	int r;

	if (!path)
		path = g_strdup(DIR_DEFAULT_PATH);
	if (g_mkdir_with_parents(path, 0755) < 0)
		return sys_error("create storage directory", path);
	abs = realpath(path, NULL);
	if (!abs)
		return sys_error("resolve", path);

	db = g_new0(struct dir_backend, 1);
	db->path = g_steal_pointer(&abs);
	{
		g_autofree char *fmt = g_key_file_get_string(config, "storage", "clone_format", NULL);
		if (fmt && strcmp(fmt, "raw") && strcmp(fmt, "qcow2")) {
			g_free(db->path);
			g_free(db);
			return ep_errorf(EINVAL, "[storage] clone_format: '%s' is not raw or qcow2", fmt);
		}
		db->qcow2_clones = fmt && !strcmp(fmt, "qcow2");
	}
	g_mutex_init(&db->locks_mutex);
	db->locks = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, dir_lock_free);
	st->priv = db;

	r = make_pool(db, st->image_pool);
	if (r == 0)
		r = make_pool(db, st->volume_pool);
	if (r == 0 && !(top = g_dir_open(db->path, 0, &error)))
		r = ep_errorf(EIO, "%s: %s", db->path, error->message);
	while (r == 0 && (name = g_dir_read_name(top)))
		if (value_id_valid(name))
			r = cleanup_pool(db, name);
	if (r < 0) {
		storage_dir_ops.close(st);
		return r;
	}
	return 0;
}

static void dir_close(struct storage *st)
{
	struct dir_backend *db = backend(st);

	if (!db)
		return;
	g_hash_table_destroy(db->locks);
	g_mutex_clear(&db->locks_mutex);
	g_free(db->path);
	g_free(db);
	st->priv = NULL;
}

static int dir_ping(struct storage *st)
{
	struct dir_backend *db = backend(st);

	if (access(db->path, R_OK | W_OK | X_OK) < 0)
		return sys_error("access", db->path);
	return 0;
}

static int check_size(uint64_t size)
{
	if (size > INT64_MAX)
		return ep_errorf(EFBIG, "size %" PRIu64 " is too large for a file", size);
	return 0;
}

static int dir_create(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	struct dir_backend *db = backend(st);
	g_autofree char *path = image_path(db, pool, image);
	g_autofree char *meta = meta_path(db, pool, image);
	g_autofree char *dir = pool_path(db, pool);
	g_autofree char *tmp = NULL;
	g_autoptr(DirLock) lock = NULL;
	auto_fd fd = -1;
	int r;

	r = check_size(size);
	if (r == 0)
		r = make_pool(db, pool);
	if (r < 0)
		return r;
	lock = image_lock(db, pool, image);
	if (path_exists(path))
		return ep_errorf(EEXIST, "image %s/%s already exists", pool, image);
	fd = tmp_create(dir, image, IMAGE_MODE, &tmp);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		r = sys_error("truncate", tmp);
	if (r == 0 && fsync(fd) < 0)
		r = sys_error("fsync", tmp);
	/* a sidecar left by a crash must not give the new image a parent */
	if (r == 0 && unlink(meta) < 0 && errno != ENOENT)
		r = sys_error("remove", meta);
	if (r == 0)
		r = publish(tmp, path, false);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int dir_stat(struct storage *st, const char *pool, const char *image, struct storage_stat *out)
{
	struct dir_backend *db = backend(st);
	g_autofree char *what = g_strdup_printf("%s/%s", pool, image);
	json_auto_t *meta = NULL;
	struct stat sb;
	int r;

	r = check_image(db, pool, image, &sb);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r == 0)
		r = meta_parent(meta, what, &out->parent_pool, &out->parent_image, &out->parent_snap);
	if (r < 0)
		return r;
	out->size = sb.st_size;
	out->used = (uint64_t)sb.st_blocks * 512;
	return 0;
}

static int dir_resize(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	struct dir_backend *db = backend(st);
	g_autofree char *path = image_path(db, pool, image);
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	int r;

	r = check_size(size);
	if (r == 0)
		r = check_image(db, pool, image, NULL);
	if (r < 0)
		return r;
	if (truncate(path, size) < 0)
		return sys_error("truncate", path);
	return 0;
}

static int dir_list(struct storage *st, const char *pool, GPtrArray *out)
{
	struct dir_backend *db = backend(st);
	g_autofree char *dir_path = pool_path(db, pool);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, &error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	if (!dir && g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
		return ep_errorf(ENOENT, "pool %s does not exist", pool);
	if (!dir)
		return ep_errorf(EIO, "pool %s: %s", pool, error->message);
	/* ids have no '@' and no leading '.': snapshots, sidecars and temps are not */
	while ((name = g_dir_read_name(dir))) {
		g_autofree char *path = g_build_filename(dir_path, name, NULL);

		if (value_id_valid(name) && g_file_test(path, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(names, g_strdup(name));
	}
	move_sorted(names, out);
	return 0;
}

static int dir_remove(struct storage *st, const char *pool, const char *image)
{
	struct dir_backend *db = backend(st);
	g_autofree char *path = image_path(db, pool, image);
	g_autofree char *meta = meta_path(db, pool, image);
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *names = NULL;
	int r;

	r = check_image(db, pool, image, NULL);
	if (r == 0)
		r = snap_names(db, pool, image, snaps);
	if (r < 0)
		return r;
	if (snaps->len > 0) {
		names = join(snaps);
		return ep_errorf(EBUSY, "image %s/%s has snapshots: %s", pool, image, names);
	}
	/* the image goes first: a sidecar without its image is cleaned up by open */
	if (unlink(path) < 0)
		return sys_error("remove", path);
	if (unlink(meta) < 0 && errno != ENOENT)
		return sys_error("remove", meta);
	return 0;
}

/* Set the modification time of path to now, and later than any this process
 * set before, so snapshots list in the order they were taken even within one
 * clock tick. */
static int stamp_taken(const char *path)
{
	static GMutex mutex;
	static struct timespec last;
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT } };

	clock_gettime(CLOCK_REALTIME, &times[1]);
	g_mutex_lock(&mutex);
	if (times[1].tv_sec < last.tv_sec ||
	    (times[1].tv_sec == last.tv_sec && times[1].tv_nsec <= last.tv_nsec)) {
		times[1] = last;
		if (++times[1].tv_nsec == 1000000000) {
			times[1].tv_sec++;
			times[1].tv_nsec = 0;
		}
	}
	last = times[1];
	g_mutex_unlock(&mutex);
	if (utimensat(AT_FDCWD, path, times, 0) < 0)
		return sys_error("set the time of", path);
	return 0;
}

static int dir_snap_create(struct storage *st, const char *pool, const char *image, const char *snap)
{
	struct dir_backend *db = backend(st);
	g_autofree char *src = image_path(db, pool, image);
	g_autofree char *path = snap_path(db, pool, image, snap);
	g_autofree char *dir = pool_path(db, pool);
	g_autofree char *name = g_path_get_basename(path);
	g_autofree char *tmp = NULL;
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	int r;

	r = check_image(db, pool, image, NULL);
	if (r < 0)
		return r;
	if (path_exists(path))
		return ep_errorf(EEXIST, "snapshot %s/%s@%s already exists", pool, image, snap);
	r = copy_to_tmp(src, dir, name, SNAP_MODE, &tmp, NULL, NULL);
	if (r < 0)
		return r;
	/* the file's mtime is when the snapshot was taken: snap_list sorts by it */
	r = stamp_taken(tmp);
	if (r == 0)
		r = publish(tmp, path, false);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int dir_snap_protect(struct storage *st, const char *pool, const char *image, const char *snap)
{
	struct dir_backend *db = backend(st);
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	json_auto_t *meta = NULL;
	int r;

	r = check_snap(db, pool, image, snap, NULL);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r < 0)
		return r;
	if (meta_protected_index(meta, snap) >= 0)
		return ep_errorf(EBUSY, "snapshot %s/%s@%s is already protected", pool, image, snap);
	r = meta_set_protected(meta, snap, true);
	return r < 0 ? r : meta_save(db, pool, image, meta);
}

static int dir_snap_unprotect(struct storage *st, const char *pool, const char *image,
                              const char *snap)
{
	struct dir_backend *db = backend(st);
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *names = NULL;
	json_auto_t *meta = NULL;
	int r;

	r = check_snap(db, pool, image, snap, NULL);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r < 0)
		return r;
	if (meta_protected_index(meta, snap) < 0)
		return ep_errorf(EINVAL, "snapshot %s/%s@%s is not protected", pool, image, snap);
	/* clone holds this lock until its child is in place, so none can appear now */
	r = clone_names(db, pool, image, snap, children);
	if (r < 0)
		return r;
	if (children->len > 0) {
		names = join(children);
		return ep_errorf(EBUSY, "snapshot %s/%s@%s has clones: %s", pool, image, snap, names);
	}
	r = meta_set_protected(meta, snap, false);
	return r < 0 ? r : meta_save(db, pool, image, meta);
}

static int dir_snap_remove(struct storage *st, const char *pool, const char *image, const char *snap)
{
	struct dir_backend *db = backend(st);
	g_autofree char *path = snap_path(db, pool, image, snap);
	g_autoptr(DirLock) G_GNUC_UNUSED lock = image_lock(db, pool, image);
	json_auto_t *meta = NULL;
	int r;

	r = check_snap(db, pool, image, snap, NULL);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r < 0)
		return r;
	if (meta_protected_index(meta, snap) >= 0)
		return ep_errorf(EBUSY, "snapshot %s/%s@%s is protected", pool, image, snap);
	if (unlink(path) < 0)
		return sys_error("remove", path);
	return 0;
}

/* A snapshot and when it was taken, for sorting. */
struct snap_entry {
	struct storage_snap *snap;
	struct timespec taken;
};

static gint snap_entry_cmp(gconstpointer a, gconstpointer b)
{
	const struct snap_entry *x = a, *y = b;

	if (x->taken.tv_sec != y->taken.tv_sec)
		return x->taken.tv_sec < y->taken.tv_sec ? -1 : 1;
	if (x->taken.tv_nsec != y->taken.tv_nsec)
		return x->taken.tv_nsec < y->taken.tv_nsec ? -1 : 1;
	return strcmp(x->snap->name, y->snap->name);
}

/* Oldest first, like rbd: a snapshot file's mtime is when it was taken. */
static int dir_snap_list(struct storage *st, const char *pool, const char *image, GPtrArray *out)
{
	struct dir_backend *db = backend(st);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GArray) snaps = g_array_new(FALSE, FALSE, sizeof(struct snap_entry));
	json_auto_t *meta = NULL;
	int r;

	r = check_image(db, pool, image, NULL);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r == 0)
		r = snap_names(db, pool, image, names);
	if (r < 0)
		return r;
	for (guint i = 0; i < names->len; i++) {
		const char *name = names->pdata[i];
		g_autofree char *path = snap_path(db, pool, image, name);
		struct snap_entry e;
		struct stat sb;

		/* removed since the directory was read */
		if (stat(path, &sb) < 0)
			continue;
		e.snap = g_new0(struct storage_snap, 1);
		e.snap->name = g_strdup(name);
		e.snap->size = sb.st_size;
		e.snap->protected_ = meta_protected_index(meta, name) >= 0;
		e.taken = sb.st_mtim;
		g_array_append_val(snaps, e);
	}
	g_array_sort(snaps, snap_entry_cmp);
	for (guint i = 0; i < snaps->len; i++)
		g_ptr_array_add(out, g_array_index(snaps, struct snap_entry, i).snap);
	return 0;
}

/* "qcow2" for a file with qcow2's magic, "raw" otherwise. */
static const char *file_format(const char *path)
{
	char magic[4] = { 0 };
	auto_fd fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && read(fd, magic, sizeof(magic)) == sizeof(magic) && !memcmp(magic, "QFI\xfb", 4))
		return "qcow2";
	return "raw";
}

/* A qcow2 overlay on the snapshot file, made by qemu-img (no shell: the
 * arguments are paths built from validated names).  The snapshot of a
 * qcow2 clone is qcow2 itself (a homework base): the overlay says so. */
static int overlay_to_tmp(const char *src_path, const char *dir_path, const char *name, char **tmp)
{
	g_autofree char *path = g_strdup_printf("%s/" TMP_PREFIX "%s.%08x", dir_path, name, g_random_int());
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) gerr = NULL;
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", file_format(src_path), "-b", src_path,
	                       path, NULL };
	int status = 0;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &gerr))
		return ep_errorf(EIO, "qemu-img: %s", gerr->message);
	if (!g_spawn_check_wait_status(status, NULL)) {
		unlink(path);
		return ep_errorf(EIO, "qemu-img create of an overlay on %s failed: %s", src_path, g_strstrip(err));
	}
	*tmp = g_steal_pointer(&path);
	return 0;
}

static int dir_clone(struct storage *st, const char *pool, const char *image, const char *snap,
                     const char *dst_pool, const char *dst_image)
{
	struct dir_backend *db = backend(st);
	g_autofree char *src = snap_path(db, pool, image, snap);
	g_autofree char *path = image_path(db, dst_pool, dst_image);
	g_autofree char *meta_file = meta_path(db, dst_pool, dst_image);
	g_autofree char *dir = pool_path(db, dst_pool);
	g_autofree char *tmp = NULL;
	g_autofree char *parent = NULL;
	g_autoptr(DirLock) first = NULL;
	g_autoptr(DirLock) second = NULL;
	json_auto_t *meta = NULL;
	json_auto_t *child = NULL;
	int order = strcmp(pool, dst_pool) ? strcmp(pool, dst_pool) : strcmp(image, dst_image);
	int r;

	r = make_pool(db, dst_pool);
	if (r < 0)
		return r;
	/* always in the same order, so two clones cannot deadlock */
	first = order <= 0 ? image_lock(db, pool, image) : image_lock(db, dst_pool, dst_image);
	if (order != 0)
		second = order < 0 ? image_lock(db, dst_pool, dst_image) : image_lock(db, pool, image);

	r = check_snap(db, pool, image, snap, NULL);
	if (r == 0)
		r = meta_load(db, pool, image, &meta);
	if (r < 0)
		return r;
	if (meta_protected_index(meta, snap) < 0)
		return ep_errorf(EINVAL, "snapshot %s/%s@%s is not protected; protect it before cloning",
		                 pool, image, snap);
	if (path_exists(path))
		return ep_errorf(EEXIST, "image %s/%s already exists", dst_pool, dst_image);

	r = db->qcow2_clones ? overlay_to_tmp(src, dir, dst_image, &tmp)
	                     : copy_to_tmp(src, dir, dst_image, IMAGE_MODE, &tmp, NULL, NULL);
	if (r < 0)
		return r;
	/* the sidecar goes first: until the image appears, no one reads it */
	parent = g_strdup_printf("%s/%s@%s", pool, image, snap);
	child = json_pack("{s:s}", "parent", parent);
	r = child ? meta_save(db, dst_pool, dst_image, child) :
	            ep_errorf(ENOMEM, "cannot format metadata of %s/%s", dst_pool, dst_image);
	if (r == 0)
		r = publish(tmp, path, false);
	if (r < 0) {
		unlink(tmp);
		unlink(meta_file);
	}
	return r;
}

static int dir_children(struct storage *st, const char *pool, const char *image, const char *snap,
                        GPtrArray *out)
{
	struct dir_backend *db = backend(st);
	int r = check_snap(db, pool, image, snap, NULL);

	return r < 0 ? r : clone_names(db, pool, image, snap, out);
}

static int dir_copy(struct storage *st, const char *pool, const char *image, const char *dst_pool,
                    const char *dst_image, storage_progress_fn *progress, void *data)
{
	struct dir_backend *db = backend(st);
	g_autofree char *src = image_path(db, pool, image);
	g_autofree char *path = image_path(db, dst_pool, dst_image);
	g_autofree char *meta_file = meta_path(db, dst_pool, dst_image);
	g_autofree char *dir = pool_path(db, dst_pool);
	g_autofree char *tmp = NULL;
	g_autoptr(DirLock) first = NULL;
	g_autoptr(DirLock) second = NULL;
	int order = strcmp(pool, dst_pool) ? strcmp(pool, dst_pool) : strcmp(image, dst_image);
	int r;

	r = make_pool(db, dst_pool);
	if (r < 0)
		return r;
	/* the same order as clone, so the two cannot deadlock */
	first = order <= 0 ? image_lock(db, pool, image) : image_lock(db, dst_pool, dst_image);
	if (order != 0)
		second = order < 0 ? image_lock(db, dst_pool, dst_image) : image_lock(db, pool, image);

	r = check_image(db, pool, image, NULL);
	if (r < 0)
		return r;
	if (path_exists(path))
		return ep_errorf(EEXIST, "image %s/%s already exists", dst_pool, dst_image);
	r = copy_to_tmp(src, dir, dst_image, IMAGE_MODE, &tmp, progress, data);
	if (r < 0)
		return r;
	/* a copy has no parent, whatever sidecar a crash left under its name */
	if (unlink(meta_file) < 0 && errno != ENOENT)
		r = sys_error("remove", meta_file);
	if (r == 0)
		r = publish(tmp, path, false);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int dir_disk_source(struct storage *st, const char *pool, const char *image, GString *xml,
                           const char **disk_type)
{
	struct dir_backend *db = backend(st);
	g_autofree char *path = image_path(db, pool, image);
	g_autofree char *escaped = g_markup_escape_text(path, -1);
	int r = check_image(db, pool, image, NULL);

	if (r < 0)
		return r;
	g_string_append_printf(xml, "<source file='%s'/>", escaped);
	*disk_type = "file";
	return 0;
}

/* "qcow2" for an overlay, "raw" otherwise, from the file's magic. */
static const char *dir_format(struct storage *st, const char *pool, const char *image)
{
	g_autofree char *path = image_path(backend(st), pool, image);

	return file_format(path);
}

const struct storage_ops storage_dir_ops = {
	.format = dir_format,
	.name = "dir",
	.open = dir_open,
	.close = dir_close,
	.ping = dir_ping,
	.create = dir_create,
	.stat = dir_stat,
	.resize = dir_resize,
	.list = dir_list,
	.remove = dir_remove,
	.snap_create = dir_snap_create,
	.snap_protect = dir_snap_protect,
	.snap_unprotect = dir_snap_unprotect,
	.snap_remove = dir_snap_remove,
	.snap_list = dir_snap_list,
	.clone = dir_clone,
	.children = dir_children,
	.copy = dir_copy,
	.disk_source = dir_disk_source,
};
