/* filestore_local.c: the `local` file store backend, a directory on this host.
 *
 * Every path is resolved relative to a descriptor of the root, never as a
 * string: with openat2(RESOLVE_BENEATH) where the kernel has it (symlinks are
 * followed only while they stay inside the root), otherwise one component at
 * a time with O_NOFOLLOW (symlinks in a path are refused).  Operations on a
 * name (unlink, rename, lstat...) use the *at() call on the resolved parent
 * directory, so a symlink as the last component is acted on, not followed.
 * See docs/filestore.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "filestore.h"

#include <dirent.h>
#include <errno.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"

#define LOCAL_DEFAULT_PATH "/var/lib/epfs/files"
/* openat2 may ask for a retry when a concurrent rename races a lookup */
#define RESOLVE_RETRIES 16

struct local {
	char *path;                 /* the root, as configured */
	int root;                   /* O_PATH descriptor of the root */
	bool beneath;               /* openat2(RESOLVE_BENEATH) works */
};

struct local_file {
	struct filestore_file base;
	int fd;
};

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define auto_fd __attribute__((cleanup(fd_close))) int

static struct local *backend(struct filestore *fs)
{
	return fs->priv;
}

static struct local_file *local_file(struct filestore_file *f)
{
	return (struct local_file *)f;
}

/* Record err from a failed call on path and return it negated. */
static int fail(int err, const char *what, const char *path)
{
	if (err == EXDEV)
		return ep_errorf(EACCES, "%s %s: leads outside the file store (a symlink points out of it)",
		                 what, path);
	return ep_errorf(err, "%s %s: %s", what, path[0] ? path : "/", g_strerror(err));
}

static int sys_fail(const char *what, const char *path)
{
	return fail(errno, what, path);
}

static long sys_openat2(int dirfd, const char *path, struct open_how *how)
{
#ifdef SYS_openat2
	return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
#else
	(void)dirfd, (void)path, (void)how;
	errno = ENOSYS;
	return -1;
#endif
}

/* Open path without openat2: each directory with O_NOFOLLOW, so no symlink is
 * ever followed; a symlink in the way is ELOOP. */
static int walk_open(struct local *l, const char *path, int flags, mode_t mode)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	guint n = g_strv_length(parts);
	auto_fd dir = fcntl(l->root, F_DUPFD_CLOEXEC, 0);
	int fd;

	if (dir < 0)
		return -1;
	if (path[0] == '\0')
		return openat(l->root, ".", flags | O_CLOEXEC);
	for (guint i = 0; i + 1 < n; i++) {
		int next = openat(dir, parts[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (next < 0) {
			struct stat st;

			if ((errno == ENOTDIR || errno == ELOOP) &&
			    fstatat(dir, parts[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				errno = ELOOP;
			return -1;
		}
		close(dir);
		dir = next;
	}
	fd = openat(dir, parts[n - 1], flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 && errno == ENOTDIR && (flags & O_DIRECTORY)) {
		struct stat st;

		if (fstatat(dir, parts[n - 1], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			errno = ELOOP;
	}
	return fd;
}

/* Open path below the root with flags, following a symlink as the last
 * component only if follow; -1 with errno on failure (EXDEV: escape). */
static int resolve(struct local *l, const char *path, int flags, mode_t mode, bool follow)
{
	struct open_how how = {
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -1;

	/* strict: no symlink anywhere (the walk without openat2 refuses those in a path) */
	if (filestore_strict())
		how.resolve |= RESOLVE_NO_SYMLINKS;     /* ELOOP for any, the last one too */
	how.flags = (uint64_t)(flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));

	if (!l->beneath)
		return walk_open(l, path, flags | (follow && !filestore_strict() ? 0 : O_NOFOLLOW), mode);
	for (int i = 0; i < RESOLVE_RETRIES; i++) {
		fd = (int)sys_openat2(l->root, path[0] ? path : ".", &how);
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd;
}

/* The directory holding path's last component (a new O_PATH descriptor) and
 * that component, pointing into path; the root is "." in the root. */
static int resolve_parent(struct local *l, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	g_autofree char *dir = NULL;

	if (!slash) {
		*name = path[0] ? path : ".";
		return fcntl(l->root, F_DUPFD_CLOEXEC, 0);
	}
	*name = slash + 1;
	dir = g_strndup(path, (size_t)(slash - path));
	return resolve(l, dir, O_PATH | O_DIRECTORY, 0, true);
}

static int local_open(struct filestore *fs, GKeyFile *config)
{
	g_autofree char *path = g_key_file_get_string(config, "filestore", "path", NULL);
	g_autoptr(GError) error = NULL;
	bool use_openat2 = g_key_file_get_boolean(config, "filestore", "openat2", &error);
	struct local *l;

	if (error) {
		if (!g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
		    !g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
			return ep_errorf(EINVAL, "[filestore] openat2: %s", error->message);
		use_openat2 = true;
	}
	if (!path || !path[0]) {
		g_free(path);
		path = g_strdup(LOCAL_DEFAULT_PATH);
	}
	if (!g_path_is_absolute(path))
		return ep_errorf(EINVAL, "[filestore] path must be absolute, not '%s'", path);
	/* private: only epfs (and root) read students' files on the store host */
	if (g_mkdir_with_parents(path, 0700) < 0)
		return ep_errorf(errno, "file store %s: cannot create it: %s", path, g_strerror(errno));
	if (chmod(path, 0700) < 0)
		return ep_errorf(errno, "file store %s: cannot make it private: %s", path, g_strerror(errno));

	l = g_new0(struct local, 1);
	l->path = g_steal_pointer(&path);
	l->root = open(l->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->root < 0) {
		int r = ep_errorf(errno, "file store %s: %s", l->path, g_strerror(errno));

		g_free(l->path);
		g_free(l);
		return r;
	}
	if (use_openat2) {
		/* old kernels lack openat2 and some seccomp filters refuse it */
		struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
		int fd = (int)sys_openat2(l->root, ".", &how);

		l->beneath = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	fs->priv = l;
	fs->description = g_strdup_printf("local %s", l->path);
	fs->caps = FILESTORE_CAP_RENAME_EXCHANGE | FILESTORE_CAP_CHOWN | FILESTORE_CAP_SYMLINK_TIMES |
	           FILESTORE_CAP_INODES | (l->beneath ? FILESTORE_CAP_FOLLOW_SYMLINKS : 0);
	fs->time_gran = 1;
	return 0;
}

static void local_close(struct filestore *fs)
{
	struct local *l = backend(fs);

	if (!l)
		return;
	close(l->root);
	g_free(l->path);
	g_free(l);
	fs->priv = NULL;
}

static int local_ping(struct filestore *fs)
{
	struct stat st;

	if (fstat(backend(fs)->root, &st) < 0)
		return sys_fail("stat", "");
	return 0;
}

static int local_lstat(struct filestore *fs, const char *path, struct stat *out)
{
	struct local *l = backend(fs);
	const char *name;
	auto_fd dir = -1;

	if (path[0] == '\0')
		return fstat(l->root, out) < 0 ? sys_fail("lstat", path) : 0;
	dir = resolve_parent(l, path, &name);
	if (dir < 0 || fstatat(dir, name, out, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_fail("lstat", path);
	return 0;
}

static int local_readdir(struct filestore *fs, const char *path, GPtrArray *out)
{
	int fd = resolve(backend(fs), path, O_RDONLY | O_DIRECTORY, 0, true);
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (fd < 0)
		return sys_fail("readdir", path);
	d = fdopendir(fd);
	if (!d) {
		r = sys_fail("readdir", path);
		close(fd);
		return r;
	}
	for (;;) {
		struct filestore_dirent *entry;
		struct stat st;

		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno)
				r = sys_fail("readdir", path);
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			/* removed since readdir saw it */
			if (errno == ENOENT)
				continue;
			r = sys_fail("readdir: lstat in", path);
			break;
		}
		entry = g_new0(struct filestore_dirent, 1);
		entry->name = g_strdup(e->d_name);
		entry->st = st;
		g_ptr_array_add(out, entry);
	}
	closedir(d);
	return r;
}

static int local_mkdir(struct filestore *fs, const char *path, mode_t mode)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);

	if (dir < 0 || mkdirat(dir, name, mode) < 0)
		return sys_fail("mkdir", path);
	return 0;
}

static int local_rmdir(struct filestore *fs, const char *path)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);

	if (dir < 0 || unlinkat(dir, name, AT_REMOVEDIR) < 0)
		return sys_fail("rmdir", path);
	return 0;
}

static int local_unlink(struct filestore *fs, const char *path)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);

	if (dir < 0 || unlinkat(dir, name, 0) < 0)
		return sys_fail("unlink", path);
	return 0;
}

static int local_rename(struct filestore *fs, const char *from, const char *to, unsigned flags)
{
	struct local *l = backend(fs);
	const char *from_name, *to_name;
	auto_fd from_dir = resolve_parent(l, from, &from_name);
	auto_fd to_dir = -1;

	if (from_dir < 0)
		return sys_fail("rename", from);
	to_dir = resolve_parent(l, to, &to_name);
	if (to_dir < 0)
		return sys_fail("rename to", to);
	if (renameat2(from_dir, from_name, to_dir, to_name, flags) < 0) {
		int err = errno;

		if (err == EXDEV)
			return ep_errorf(EXDEV, "rename %s: %s is on another file system", from, to);
		/* the file system below the store lacks the flag */
		if (err == EINVAL && flags)
			return ep_errorf(ENOTSUP, "rename %s: the file system under the store does not "
			                 "support %s", from,
			                 flags & RENAME_EXCHANGE ? "RENAME_EXCHANGE" : "RENAME_NOREPLACE");
		return fail(err, "rename", err == EEXIST || err == ENOTEMPTY ? to : from);
	}
	return 0;
}

static int local_symlink(struct filestore *fs, const char *target, const char *path)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);

	if (dir < 0 || symlinkat(target, dir, name) < 0)
		return sys_fail("symlink", path);
	return 0;
}

static int local_mknod(struct filestore *fs, const char *path, mode_t mode)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);

	if (dir < 0 || mknodat(dir, name, mode, 0) < 0)
		return sys_fail("mknod", path);
	return 0;
}

static int local_link(struct filestore *fs, const char *from, const char *to)
{
	struct local *l = backend(fs);
	const char *from_name, *to_name;
	auto_fd from_dir = resolve_parent(l, from, &from_name);
	auto_fd to_dir = -1;

	if (from_dir < 0)
		return sys_fail("link", from);
	to_dir = resolve_parent(l, to, &to_name);
	if (to_dir < 0 || linkat(from_dir, from_name, to_dir, to_name, 0) < 0)
		return sys_fail("link", to);
	return 0;
}

static int local_readlink(struct filestore *fs, const char *path, char **out)
{
	const char *name;
	auto_fd dir = resolve_parent(backend(fs), path, &name);
	size_t size = 256;

	if (dir < 0)
		return sys_fail("readlink", path);
	for (;;) {
		g_autofree char *buf = g_malloc(size);
		ssize_t n = readlinkat(dir, name, buf, size);

		if (n < 0)
			return sys_fail("readlink", path);
		if ((size_t)n < size) {
			buf[n] = '\0';
			*out = g_steal_pointer(&buf);
			return 0;
		}
		size *= 2;
	}
}

static int local_chmod(struct filestore *fs, const char *path, mode_t mode)
{
	const char *name;
	auto_fd dir = -1;

	dir = resolve_parent(backend(fs), path, &name);
	/* a symlink has no mode of its own: glibc refuses it with EOPNOTSUPP */
	if (dir < 0 || fchmodat(dir, name, mode, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_fail("chmod", path);
	return 0;
}

static int local_chown(struct filestore *fs, const char *path, uid_t uid, gid_t gid)
{
	const char *name;
	auto_fd dir = -1;

	dir = resolve_parent(backend(fs), path, &name);
	if (dir < 0 || fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_fail("chown", path);
	return 0;
}

static int local_utimens(struct filestore *fs, const char *path, const struct timespec times[2])
{
	const char *name;
	auto_fd dir = -1;

	dir = resolve_parent(backend(fs), path, &name);
	if (dir < 0 || utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) < 0)
		return sys_fail("utimens", path);
	return 0;
}

/* Open path as a regular file; O_NONBLOCK so a fifo in the store cannot hang us. */
static int open_regular(struct local *l, const char *path, int flags, mode_t mode, const char *what)
{
	bool follow = !(flags & O_NOFOLLOW);
	int fd = resolve(l, path, (flags & ~O_NOFOLLOW) | O_NONBLOCK | O_NOCTTY, mode, follow);
	struct stat st;

	if (fd < 0)
		return sys_fail(what, path);
	if (fstat(fd, &st) < 0) {
		int r = sys_fail(what, path);

		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			return fail(EISDIR, what, path);
		return ep_errorf(EINVAL, "%s %s: not a regular file", what, path);
	}
	/* a regular file: back to exactly the flags asked for */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static int local_truncate(struct filestore *fs, const char *path, off_t size)
{
	int fd = open_regular(backend(fs), path, O_WRONLY, 0, "truncate");
	int r = 0;

	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		r = sys_fail("truncate", path);
	close(fd);
	return r;
}

static int local_statvfs(struct filestore *fs, const char *path, struct statvfs *out)
{
	auto_fd fd = resolve(backend(fs), path, O_PATH, 0, true);

	if (fd < 0 || fstatvfs(fd, out) < 0)
		return sys_fail("statvfs", path);
	return 0;
}

static int local_file_open(struct filestore *fs, const char *path, int flags, mode_t mode,
                           struct filestore_file **out)
{
	int fd = open_regular(backend(fs), path, flags, mode, "open");
	struct local_file *f;

	if (fd < 0)
		return fd;
	f = g_new0(struct local_file, 1);
	f->fd = fd;
	*out = &f->base;
	return 0;
}

static ssize_t local_pread(struct filestore_file *file, void *buf, size_t size, off_t offset)
{
	struct local_file *f = local_file(file);
	size_t done = 0;

	/* short only at the end of the file */
	while (done < size) {
		ssize_t n = pread(f->fd, (char *)buf + done, size - done, offset + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ep_errorf(errno, "read: %s", g_strerror(errno));
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t local_pwrite(struct filestore_file *file, const void *buf, size_t size, off_t offset)
{
	struct local_file *f = local_file(file);
	size_t done = 0;

	while (done < size) {
		/* with O_APPEND, Linux appends whatever the offset */
		ssize_t n = pwrite(f->fd, (const char *)buf + done, size - done, offset + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ep_errorf(errno, "write: %s", g_strerror(errno));
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int local_fsync(struct filestore_file *file, bool datasync)
{
	struct local_file *f = local_file(file);

	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return ep_errorf(errno, "fsync: %s", g_strerror(errno));
	return 0;
}

static int local_ftruncate(struct filestore_file *file, off_t size)
{
	if (ftruncate(local_file(file)->fd, size) < 0)
		return ep_errorf(errno, "ftruncate: %s", g_strerror(errno));
	return 0;
}

static int local_fstat(struct filestore_file *file, struct stat *out)
{
	if (fstat(local_file(file)->fd, out) < 0)
		return ep_errorf(errno, "fstat: %s", g_strerror(errno));
	return 0;
}

static int local_fallocate(struct filestore_file *file, int mode, off_t offset, off_t length)
{
	if (fallocate(local_file(file)->fd, mode, offset, length) < 0)
		return ep_errorf(errno, "fallocate: %s", g_strerror(errno));
	return 0;
}

static int local_file_close(struct filestore_file *file)
{
	struct local_file *f = local_file(file);
	int r = 0;

	/* Linux releases the descriptor even when close reports an error */
	if (close(f->fd) < 0 && errno != EINTR)
		r = ep_errorf(errno, "close: %s", g_strerror(errno));
	g_free(f);
	return r;
}

const struct filestore_ops filestore_local_ops = {
	.name = "local",
	.open = local_open,
	.close = local_close,
	.ping = local_ping,
	.lstat = local_lstat,
	.readdir = local_readdir,
	.mkdir = local_mkdir,
	.rmdir = local_rmdir,
	.unlink = local_unlink,
	.rename = local_rename,
	.symlink = local_symlink,
	.readlink = local_readlink,
	.chmod = local_chmod,
	.chown = local_chown,
	.utimens = local_utimens,
	.truncate = local_truncate,
	.statvfs = local_statvfs,
	.mknod = local_mknod,
	.link = local_link,
	.file_open = local_file_open,
	.pread = local_pread,
	.pwrite = local_pwrite,
	.fsync = local_fsync,
	.ftruncate = local_ftruncate,
	.fstat = local_fstat,
	.fallocate = local_fallocate,
	.file_close = local_file_close,
};
