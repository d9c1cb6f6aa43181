/* filestore.c: the backend registry, filestore_open(), the checking wrappers
 * and the helpers every backend shares (copy_tree, remove_tree, du). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "filestore.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "error.h"

#define COPY_CHUNK (1 << 20)
#define DEFAULT_TIMEOUT 10

/* Every backend, by the name used in [filestore] backend=. */
static const struct filestore_ops *const filestore_backends[] = {
	&filestore_local_ops,
	&filestore_sftp_ops,
};

const struct filestore_ops *filestore_backend(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(filestore_backends); i++)
		if (strcmp(filestore_backends[i]->name, name) == 0)
			return filestore_backends[i];
	return NULL;
}

/* An integer key of config, def when missing; -EINVAL when malformed. */
static int config_int(GKeyFile *config, const char *group, const char *key, int def, int *out)
{
	g_autoptr(GError) error = NULL;
	int value = g_key_file_get_integer(config, group, key, &error);

	if (error) {
		if (!g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
		    !g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
			return ep_errorf(EINVAL, "[%s] %s: %s", group, key, error->message);
		value = def;
	}
	*out = value;
	return 0;
}

/* [filestore] timeout, else [epfs] timeout, else 10 seconds. */
static int config_timeout(GKeyFile *config, int *out_ms)
{
	int fallback, seconds;
	int r = config_int(config, "epfs", "timeout", DEFAULT_TIMEOUT, &fallback);

	if (r == 0)
		r = config_int(config, "filestore", "timeout", fallback, &seconds);
	if (r < 0)
		return r;
	/* an upper bound keeps timeout_ms far from int overflow */
	if (seconds <= 0 || seconds > 86400)
		return ep_errorf(EINVAL, "[filestore] timeout must be 1..86400 seconds, not %d", seconds);
	*out_ms = seconds * 1000;
	return 0;
}

int filestore_open(GKeyFile *config, struct filestore **out)
{
	g_autofree char *backend = g_key_file_get_string(config, "filestore", "backend", NULL);
	const struct filestore_ops *ops = filestore_backend(backend ? backend : "local");
	struct filestore *fs;
	int timeout_ms = 0;
	int r;

	*out = NULL;
	if (!ops)
		return ep_errorf(EINVAL, "[filestore] backend: unknown file store backend '%s'", backend);
	r = config_timeout(config, &timeout_ms);
	if (r < 0)
		return r;
	fs = g_new0(struct filestore, 1);
	fs->ops = ops;
	fs->timeout_ms = timeout_ms;
	fs->time_gran = 1;
	r = ops->open(fs, config);
	if (r < 0) {
		/* the backend did not open, so it must not be closed */
		fs->ops = NULL;
		filestore_close(fs);
		return r;
	}
	if (!fs->description)
		fs->description = g_strdup(ops->name);
	*out = fs;
	return 0;
}

void filestore_close(struct filestore *fs)
{
	if (!fs)
		return;
	if (fs->ops && fs->ops->close)
		fs->ops->close(fs);
	g_free(fs->description);
	g_free(fs);
}

int filestore_check_path(const char *path, bool allow_root)
{
	const char *p, *end;

	if (!path)
		return ep_errorf(EINVAL, "no path given");
	if (path[0] == '\0') {
		if (allow_root)
			return 0;
		return ep_errorf(EINVAL, "the root of the file store cannot be used here");
	}
	if (path[0] == '/')
		return ep_errorf(EINVAL, "'%s': absolute paths are not allowed in the file store", path);
	if (strlen(path) >= PATH_MAX)
		return ep_errorf(ENAMETOOLONG, "path of %zu bytes is too long", strlen(path));
	for (p = path; ; p = end + 1) {
		size_t len;

		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (len == 0)
			return ep_errorf(EINVAL, "'%s': empty path component", path);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return ep_errorf(EINVAL, "'%s': '.' and '..' are not allowed in the file store", path);
		if (len > NAME_MAX)
			return ep_errorf(ENAMETOOLONG, "'%.*s...': name longer than %d bytes", 32, p, NAME_MAX);
		if (*end == '\0')
			return 0;
	}
}

void filestore_dirent_free(struct filestore_dirent *d)
{
	if (!d)
		return;
	g_free(d->name);
	g_free(d);
}

GPtrArray *filestore_dirents_new(void)
{
	return g_ptr_array_new_with_free_func((GDestroyNotify)filestore_dirent_free);
}

/* True if fs is open and its backend implements op. */
#define HAS_OP(fs, op) ((fs) && (fs)->ops && (fs)->ops->op)

/* 0 if fs implements the operation, so the wrapper may call it. */
static int check_op(struct filestore *fs, bool has_op, const char *what)
{
	if (!fs || !fs->ops)
		return ep_errorf(EINVAL, "file store %s: the file store is not open", what);
	if (!has_op)
		return ep_errorf(ENOSYS, "file store backend '%s' does not support %s", fs->ops->name, what);
	return 0;
}

/* check_op() and filestore_check_path(). */
static int check(struct filestore *fs, bool has_op, const char *what, const char *path,
                 bool allow_root)
{
	int r = check_op(fs, has_op, what);

	return r < 0 ? r : filestore_check_path(path, allow_root);
}

int filestore_ping(struct filestore *fs)
{
	int r = check_op(fs, HAS_OP(fs, ping), "ping");

	return r < 0 ? r : fs->ops->ping(fs);
}

int filestore_lstat(struct filestore *fs, const char *path, struct stat *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = check(fs, HAS_OP(fs, lstat), "lstat", path, true);
	return r < 0 ? r : fs->ops->lstat(fs, path, out);
}

static gint dirent_compare(gconstpointer a, gconstpointer b)
{
	const struct filestore_dirent *x = *(struct filestore_dirent *const *)a;
	const struct filestore_dirent *y = *(struct filestore_dirent *const *)b;

	return strcmp(x->name, y->name);
}

int filestore_readdir(struct filestore *fs, const char *path, GPtrArray *out)
{
	g_autoptr(GPtrArray) entries = filestore_dirents_new();
	int r = check(fs, HAS_OP(fs, readdir), "readdir", path, true);

	if (r == 0)
		r = fs->ops->readdir(fs, path, entries);
	if (r < 0)
		return r;
	g_ptr_array_sort(entries, dirent_compare);
	/* appended only on success, so callers never see half a listing */
	for (guint i = 0; i < entries->len; i++)
		g_ptr_array_add(out, g_steal_pointer(&entries->pdata[i]));
	g_ptr_array_set_free_func(entries, NULL);
	return 0;
}

int filestore_mkdir(struct filestore *fs, const char *path, mode_t mode)
{
	int r = check(fs, HAS_OP(fs, mkdir), "mkdir", path, false);

	return r < 0 ? r : fs->ops->mkdir(fs, path, mode & 07777);
}

int filestore_rmdir(struct filestore *fs, const char *path)
{
	int r = check(fs, HAS_OP(fs, rmdir), "rmdir", path, false);

	return r < 0 ? r : fs->ops->rmdir(fs, path);
}

int filestore_unlink(struct filestore *fs, const char *path)
{
	int r = check(fs, HAS_OP(fs, unlink), "unlink", path, false);

	return r < 0 ? r : fs->ops->unlink(fs, path);
}

int filestore_rename(struct filestore *fs, const char *from, const char *to, unsigned flags)
{
	int r = check(fs, HAS_OP(fs, rename), "rename", from, false);

	if (r == 0)
		r = filestore_check_path(to, false);
	if (r < 0)
		return r;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return ep_errorf(EINVAL, "rename %s: unknown flags 0x%x", from, flags);
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return ep_errorf(EINVAL, "rename %s: RENAME_NOREPLACE and RENAME_EXCHANGE exclude each other",
		                 from);
	if ((flags & RENAME_EXCHANGE) && !(fs->caps & FILESTORE_CAP_RENAME_EXCHANGE))
		return ep_errorf(ENOTSUP, "rename %s: the %s file store cannot exchange two names",
		                 from, fs->ops->name);
	return fs->ops->rename(fs, from, to, flags);
}

int filestore_symlink(struct filestore *fs, const char *target, const char *path)
{
	int r = check(fs, HAS_OP(fs, symlink), "symlink", path, false);

	if (r < 0)
		return r;
	if (!target || !target[0])
		return ep_errorf(ENOENT, "symlink %s: empty target", path);
	if (strlen(target) >= PATH_MAX)
		return ep_errorf(ENAMETOOLONG, "symlink %s: target too long", path);
	return fs->ops->symlink(fs, target, path);
}

int filestore_readlink(struct filestore *fs, const char *path, char **out)
{
	int r;

	*out = NULL;
	r = check(fs, HAS_OP(fs, readlink), "readlink", path, false);
	return r < 0 ? r : fs->ops->readlink(fs, path, out);
}

int filestore_chmod(struct filestore *fs, const char *path, mode_t mode)
{
	int r = check(fs, HAS_OP(fs, chmod), "chmod", path, true);

	return r < 0 ? r : fs->ops->chmod(fs, path, mode & 07777);
}

int filestore_chown(struct filestore *fs, const char *path, uid_t uid, gid_t gid)
{
	int r = check(fs, true, "chown", path, true);

	if (r < 0)
		return r;
	if (!(fs->caps & FILESTORE_CAP_CHOWN))
		return ep_errorf(ENOTSUP, "chown %s: the %s file store keeps no owners of its own", path,
		                 fs->ops->name);
	r = check_op(fs, HAS_OP(fs, chown), "chown");
	return r < 0 ? r : fs->ops->chown(fs, path, uid, gid);
}

/* 0 if ts is a valid utimensat(2) time. */
static int check_time(const char *path, const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW || ts->tv_nsec == UTIME_OMIT)
		return 0;
	if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return ep_errorf(EINVAL, "utimens %s: nanoseconds out of range (%ld)", path,
		                 (long)ts->tv_nsec);
	return 0;
}

int filestore_utimens(struct filestore *fs, const char *path, const struct timespec times[2])
{
	static const struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	int r = check(fs, HAS_OP(fs, utimens), "utimens", path, true);

	if (r < 0)
		return r;
	if (!times)
		times = now;
	r = check_time(path, &times[0]);
	if (r == 0)
		r = check_time(path, &times[1]);
	return r < 0 ? r : fs->ops->utimens(fs, path, times);
}

int filestore_truncate(struct filestore *fs, const char *path, off_t size)
{
	int r = check(fs, HAS_OP(fs, truncate), "truncate", path, false);

	if (r < 0)
		return r;
	if (size < 0)
		return ep_errorf(EINVAL, "truncate %s: negative size", path);
	return fs->ops->truncate(fs, path, size);
}

int filestore_statvfs(struct filestore *fs, const char *path, struct statvfs *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = check(fs, HAS_OP(fs, statvfs), "statvfs", path, true);
	return r < 0 ? r : fs->ops->statvfs(fs, path, out);
}

int filestore_mknod(struct filestore *fs, const char *path, mode_t mode)
{
	int r = check(fs, true, "mknod", path, false);

	if (r < 0)
		return r;
	if (!S_ISFIFO(mode) && !S_ISSOCK(mode))
		return ep_errorf(EPERM, "mknod %s: only fifos and sockets can be made here, "
		                 "device nodes never", path);
	if (!HAS_OP(fs, mknod))
		return ep_errorf(EPERM, "mknod %s: the %s file store holds no fifos or sockets", path,
		                 fs->ops->name);
	return fs->ops->mknod(fs, path, mode);
}

int filestore_link(struct filestore *fs, const char *from, const char *to)
{
	int r = check(fs, true, "link", from, false);

	if (r == 0)
		r = filestore_check_path(to, false);
	if (r < 0)
		return r;
	if (!HAS_OP(fs, link))
		return ep_errorf(EPERM, "link %s: the %s file store has no hard links", to, fs->ops->name);
	return fs->ops->link(fs, from, to);
}

int filestore_file_open(struct filestore *fs, const char *path, int flags, mode_t mode,
                        struct filestore_file **out)
{
	int r;

	*out = NULL;
	r = check(fs, HAS_OP(fs, file_open), "open", path, false);
	if (r < 0)
		return r;
	if ((flags & O_ACCMODE) == O_ACCMODE)
		return ep_errorf(EINVAL, "open %s: invalid access mode", path);
	/* O_CLOEXEC, O_LARGEFILE, O_NOCTTY... mean nothing to a store */
	flags &= FILESTORE_OPEN_FLAGS;
	r = fs->ops->file_open(fs, path, flags, mode & 07777, out);
	if (r == 0) {
		(*out)->fs = fs;
		(*out)->flags = flags;
	}
	return r;
}

/* 0 if f is an open file whose backend has op. */
static int check_file(struct filestore_file *f, bool has_op, const char *what)
{
	if (!f)
		return ep_errorf(EBADF, "%s: no open file", what);
	return check_op(f->fs, has_op, what);
}

ssize_t filestore_pread(struct filestore_file *f, void *buf, size_t size, off_t offset)
{
	int r = check_file(f, f && HAS_OP(f->fs, pread), "read");

	if (r < 0)
		return r;
	if ((f->flags & O_ACCMODE) == O_WRONLY)
		return ep_errorf(EBADF, "read: the file is open for writing only");
	if (offset < 0)
		return ep_errorf(EINVAL, "read: negative offset");
	if (size == 0)
		return 0;
	return f->fs->ops->pread(f, buf, MIN(size, (size_t)SSIZE_MAX), offset);
}

ssize_t filestore_pwrite(struct filestore_file *f, const void *buf, size_t size, off_t offset)
{
	int r = check_file(f, f && HAS_OP(f->fs, pwrite), "write");

	if (r < 0)
		return r;
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return ep_errorf(EBADF, "write: the file is open for reading only");
	if (offset < 0)
		return ep_errorf(EINVAL, "write: negative offset");
	if (size == 0)
		return 0;
	return f->fs->ops->pwrite(f, buf, MIN(size, (size_t)SSIZE_MAX), offset);
}

int filestore_fsync(struct filestore_file *f, bool datasync)
{
	int r = check_file(f, f && HAS_OP(f->fs, fsync), "fsync");

	return r < 0 ? r : f->fs->ops->fsync(f, datasync);
}

int filestore_ftruncate(struct filestore_file *f, off_t size)
{
	int r = check_file(f, f && HAS_OP(f->fs, ftruncate), "ftruncate");

	if (r < 0)
		return r;
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return ep_errorf(EBADF, "ftruncate: the file is open for reading only");
	if (size < 0)
		return ep_errorf(EINVAL, "ftruncate: negative size");
	return f->fs->ops->ftruncate(f, size);
}

int filestore_fstat(struct filestore_file *f, struct stat *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = check_file(f, f && HAS_OP(f->fs, fstat), "fstat");
	return r < 0 ? r : f->fs->ops->fstat(f, out);
}

int filestore_fallocate(struct filestore_file *f, int mode, off_t offset, off_t length)
{
	int r = check_file(f, true, "fallocate");

	if (r < 0)
		return r;
	if (!HAS_OP(f->fs, fallocate))
		return ep_errorf(EOPNOTSUPP, "fallocate: the %s file store cannot", f->fs->ops->name);
	return f->fs->ops->fallocate(f, mode, offset, length);
}

int filestore_file_close(struct filestore_file *f)
{
	if (!f)
		return 0;
	return f->fs->ops->file_close(f);
}

/* ---- helpers built on the operations ---- */

/* Keep the first failure's message while cleanup calls record their own. */
struct saved_error {
	int r;
	char *message;
};

static void error_save(struct saved_error *e, int r)
{
	e->r = r;
	e->message = g_strdup(ep_error_message());
}

static int error_restore(struct saved_error *e)
{
	int r = ep_errorf(-e->r, "%s", e->message);

	g_free(e->message);
	return r;
}

/* path/name, or name at the root. */
static char *child_path(const char *path, const char *name)
{
	return path[0] ? g_strconcat(path, "/", name, NULL) : g_strdup(name);
}

/* True if path is inside (or is) dir. */
static bool path_within(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (len == 0)
		return true;
	return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Total size of the regular files at or under path, whose lstat is st. */
static int du_entry(struct filestore *fs, const char *path, const struct stat *st, uint64_t *bytes)
{
	g_autoptr(GPtrArray) entries = NULL;
	int r;

	if (S_ISREG(st->st_mode))
		*bytes += (uint64_t)st->st_size;
	if (!S_ISDIR(st->st_mode))
		return 0;
	entries = filestore_dirents_new();
	r = filestore_readdir(fs, path, entries);
	for (guint i = 0; r == 0 && i < entries->len; i++) {
		struct filestore_dirent *d = entries->pdata[i];
		g_autofree char *child = child_path(path, d->name);

		r = du_entry(fs, child, &d->st, bytes);
	}
	return r;
}

int filestore_du(struct filestore *fs, const char *path, uint64_t *bytes)
{
	struct stat st;
	uint64_t total = 0;
	int r;

	*bytes = 0;
	r = filestore_lstat(fs, path, &st);
	if (r == 0)
		r = du_entry(fs, path, &st, &total);
	if (r == 0)
		*bytes = total;
	return r;
}

static int remove_entry(struct filestore *fs, const char *path, const struct stat *st)
{
	g_autoptr(GPtrArray) entries = NULL;
	int r;

	if (!S_ISDIR(st->st_mode))
		return filestore_unlink(fs, path);
	entries = filestore_dirents_new();
	r = filestore_readdir(fs, path, entries);
	for (guint i = 0; r == 0 && i < entries->len; i++) {
		struct filestore_dirent *d = entries->pdata[i];
		g_autofree char *child = child_path(path, d->name);

		r = remove_entry(fs, child, &d->st);
		/* something else removed it first: the goal is reached */
		if (r == -ENOENT)
			r = 0;
	}
	return r < 0 ? r : filestore_rmdir(fs, path);
}

int filestore_remove_tree(struct filestore *fs, const char *path)
{
	struct stat st;
	int r = filestore_check_path(path, false);

	if (r == 0)
		r = filestore_lstat(fs, path, &st);
	return r < 0 ? r : remove_entry(fs, path, &st);
}

struct copy {
	struct filestore *fs;
	filestore_progress_fn progress;
	void *opaque;
	uint64_t done;
	uint64_t total;
	char *buf;
};

/* Tell the caller how far the copy is; -ECANCELED if it says stop. */
static int copy_report(struct copy *c)
{
	if (c->done > c->total)
		c->total = c->done;
	if (c->progress && !c->progress(c->done, c->total, c->opaque))
		return ep_errorf(ECANCELED, "copy cancelled after %" G_GUINT64_FORMAT " of %"
		                 G_GUINT64_FORMAT " bytes", c->done, c->total);
	return 0;
}

/* Give dst the mode (unless a symlink) and times of st. */
static int copy_attributes(struct copy *c, const char *dst, const struct stat *st)
{
	const struct timespec times[2] = { st->st_atim, st->st_mtim };
	int r = 0;

	if (!S_ISLNK(st->st_mode))
		r = filestore_chmod(c->fs, dst, st->st_mode & 07777);
	if (r == 0 && (!S_ISLNK(st->st_mode) || (c->fs->caps & FILESTORE_CAP_SYMLINK_TIMES)))
		r = filestore_utimens(c->fs, dst, times);
	return r;
}

static int copy_file_data(struct copy *c, struct filestore_file *in, struct filestore_file *out)
{
	off_t offset = 0;

	for (;;) {
		ssize_t n = filestore_pread(in, c->buf, COPY_CHUNK, offset);
		ssize_t w;
		int r;

		if (n <= 0)
			return (int)n;
		w = filestore_pwrite(out, c->buf, (size_t)n, offset);
		if (w < 0)
			return (int)w;
		offset += n;
		c->done += (uint64_t)n;
		r = copy_report(c);
		if (r < 0)
			return r;
	}
}

static int copy_file(struct copy *c, const char *src, const char *dst)
{
	struct filestore_file *in = NULL, *out = NULL;
	int r, rc;

	r = filestore_file_open(c->fs, src, O_RDONLY | O_NOFOLLOW, 0, &in);
	if (r < 0)
		return r;
	r = filestore_file_open(c->fs, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, &out);
	if (r == 0)
		r = copy_file_data(c, in, out);
	if (r == 0)
		r = filestore_fsync(out, false);
	rc = filestore_file_close(out);
	if (r == 0)
		r = rc;
	rc = filestore_file_close(in);
	return r < 0 ? r : rc;
}

static int copy_entry(struct copy *c, const char *src, const char *dst, const struct stat *st);

static int copy_dir(struct copy *c, const char *src, const char *dst)
{
	g_autoptr(GPtrArray) entries = filestore_dirents_new();
	/* owner-only while it fills; copy_attributes() sets the real mode at the end */
	int r = filestore_mkdir(c->fs, dst, 0700);

	if (r == 0)
		r = filestore_readdir(c->fs, src, entries);
	for (guint i = 0; r == 0 && i < entries->len; i++) {
		struct filestore_dirent *d = entries->pdata[i];
		g_autofree char *from = child_path(src, d->name);
		g_autofree char *to = child_path(dst, d->name);

		r = copy_entry(c, from, to, &d->st);
	}
	return r;
}

static int copy_entry(struct copy *c, const char *src, const char *dst, const struct stat *st)
{
	g_autofree char *target = NULL;
	int r;

	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		r = copy_dir(c, src, dst);
		break;
	case S_IFREG:
		r = copy_file(c, src, dst);
		break;
	case S_IFLNK:
		r = filestore_readlink(c->fs, src, &target);
		if (r == 0)
			r = filestore_symlink(c->fs, target, dst);
		break;
	default:
		/* fifos, sockets and devices cannot be opened through a store: not copied */
		return 0;
	}
	if (r == 0)
		r = copy_attributes(c, dst, st);
	if (r == 0)
		r = copy_report(c);
	return r;
}

/* A fresh temporary name beside path. */
static char *temp_sibling(const char *path)
{
	const char *slash = strrchr(path, '/');
	g_autofree char *dir = slash ? g_strndup(path, (size_t)(slash - path)) : g_strdup("");
	g_autofree char *name = g_strdup_printf(FILESTORE_TEMP_PREFIX "%08x%08x", g_random_int(),
	                                        g_random_int());

	return child_path(dir, name);
}

static __thread bool strict_mode;

bool filestore_set_strict(bool on)
{
	bool was = strict_mode;

	strict_mode = on;
	return was;
}

bool filestore_strict(void)
{
	return strict_mode;
}

static int copy_tree(struct filestore *fs, const char *src, const char *dst, filestore_progress_fn progress,
                     void *opaque);

/* The source is a tree its owner may change meanwhile: copied in strict mode. */
int filestore_copy_tree(struct filestore *fs, const char *src, const char *dst,
                        filestore_progress_fn progress, void *opaque)
{
	bool was = filestore_set_strict(true);
	int r = copy_tree(fs, src, dst, progress, opaque);

	filestore_set_strict(was);
	return r;
}

static int copy_tree(struct filestore *fs, const char *src, const char *dst, filestore_progress_fn progress,
                     void *opaque)
{
	struct copy c = { .fs = fs, .progress = progress, .opaque = opaque };
	g_autofree char *tmp = NULL;
	struct saved_error saved;
	struct stat st, ignored;
	int r;

	r = filestore_check_path(src, true);
	if (r == 0)
		r = filestore_check_path(dst, false);
	if (r < 0)
		return r;
	if (path_within(dst, src))
		return ep_errorf(EINVAL, "cannot copy '%s' into itself ('%s')", src, dst);
	r = filestore_lstat(fs, src, &st);
	if (r < 0)
		return r;
	r = filestore_lstat(fs, dst, &ignored);
	if (r == 0)
		return ep_errorf(EEXIST, "copy to %s: it already exists", dst);
	if (r != -ENOENT)
		return r;
	ep_error_clear();
	r = du_entry(fs, src, &st, &c.total);
	if (r == 0)
		r = copy_report(&c);
	if (r < 0)
		return r;

	c.buf = g_malloc(COPY_CHUNK);
	tmp = temp_sibling(dst);
	r = copy_entry(&c, src, tmp, &st);
	g_free(c.buf);
	if (r == 0)
		r = filestore_rename(fs, tmp, dst, RENAME_NOREPLACE);
	if (r < 0) {
		struct stat tst;

		error_save(&saved, r);
		if (filestore_lstat(fs, tmp, &tst) == 0)
			remove_entry(fs, tmp, &tst);
		return error_restore(&saved);
	}
	/* the last report says done == total, also if files shrank meanwhile */
	c.total = c.done;
	if (progress)
		progress(c.done, c.total, opaque);
	return 0;
}
