/* filestore.h: the file store service (project, dataset and public files).
 *
 * A tree of ordinary files behind one small POSIX-shaped interface, so the
 * FUSE layer can pass operations on users/<u>/projects/<p>/work/... straight
 * through.  Two backends: `local` (a directory on this host, the default) and
 * `sftp` (a directory on a storage host, over libssh2).  See docs/filestore.md.
 *
 * Paths are relative to the store's root: "" is the root itself, otherwise
 * names joined by single '/', none empty, "." or ".." (EINVAL otherwise), so a
 * path can never name anything outside the root.  Symlinks inside the store
 * are data: path operations act on the link itself; only filestore_file_open(),
 * filestore_readdir(), filestore_truncate() and filestore_statvfs() follow
 * one, and only while it stays inside the root (EACCES otherwise).
 *
 * Every function returns 0 (or a count) on success, or a negative errno with a
 * message recorded through ep_errorf().  A remote store's calls return within
 * its timeout; while it is down they fail with EAGAIN, ETIMEDOUT or EIO, and
 * work again once it is back.  All functions are thread-safe; one open file
 * may be used by several threads at once.
 */
#pragma once

#include <fcntl.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

/* rename flags, as renameat2(2) (the same values as <stdio.h> with _GNU_SOURCE) */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

struct filestore;

/* An open file; backends embed it as the first member of their own struct. */
struct filestore_file {
	struct filestore *fs;
	int flags;                  /* the open flags, after filtering */
};

/* One directory entry: its name and lstat(). */
struct filestore_dirent {
	char *name;
	struct stat st;
};

/* Progress of a long operation: bytes done of total (total may grow if
 * files grow meanwhile).  Return true to go on, false to cancel (ECANCELED). */
typedef bool (*filestore_progress_fn)(uint64_t done, uint64_t total, void *opaque);

/* What a backend can do, in struct filestore.caps. */
enum {
	FILESTORE_CAP_FOLLOW_SYMLINKS = 1 << 0,  /* open/readdir follow symlinks inside the root */
	FILESTORE_CAP_RENAME_EXCHANGE = 1 << 1,  /* rename with RENAME_EXCHANGE */
	FILESTORE_CAP_CHOWN = 1 << 2,            /* chown changes owners */
	FILESTORE_CAP_SYMLINK_TIMES = 1 << 3,    /* utimens on a symlink itself */
	FILESTORE_CAP_INODES = 1 << 4,           /* lstat's st_ino names an object for its lifetime */
};

/* The open flags filestore_file_open() honours; others are dropped. */
#define FILESTORE_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NOFOLLOW)

/* Names starting with this are a store's own temporary files (copies in
 * progress, renames being replaced); callers may hide them. */
#define FILESTORE_TEMP_PREFIX ".epfs-tmp."

/* A backend: one vtable per kind of store.  The filestore_* wrappers have
 * checked the paths and flags, and cleared the outputs, before these run. */
struct filestore_ops {
	const char *name;
	/* Open the backend from the [filestore] group of the config. */
	int (*open)(struct filestore *fs, GKeyFile *config);
	void (*close)(struct filestore *fs);
	/* Cheap liveness probe for .epfs/health. */
	int (*ping)(struct filestore *fs);

	int (*lstat)(struct filestore *fs, const char *path, struct stat *out);
	/* Entries of a directory, without "." and "..", appended to out. */
	int (*readdir)(struct filestore *fs, const char *path, GPtrArray *out);
	int (*mkdir)(struct filestore *fs, const char *path, mode_t mode);
	int (*rmdir)(struct filestore *fs, const char *path);
	int (*unlink)(struct filestore *fs, const char *path);
	int (*rename)(struct filestore *fs, const char *from, const char *to, unsigned flags);
	int (*symlink)(struct filestore *fs, const char *target, const char *path);
	int (*readlink)(struct filestore *fs, const char *path, char **out);
	int (*chmod)(struct filestore *fs, const char *path, mode_t mode);
	int (*chown)(struct filestore *fs, const char *path, uid_t uid, gid_t gid);
	int (*utimens)(struct filestore *fs, const char *path, const struct timespec times[2]);
	int (*truncate)(struct filestore *fs, const char *path, off_t size);
	int (*statvfs)(struct filestore *fs, const char *path, struct statvfs *out);
	/* Optional: fifos and sockets, hard links (ENOTSUP/EPERM when missing). */
	int (*mknod)(struct filestore *fs, const char *path, mode_t mode);
	int (*link)(struct filestore *fs, const char *from, const char *to);

	int (*file_open)(struct filestore *fs, const char *path, int flags, mode_t mode,
	                 struct filestore_file **out);
	ssize_t (*pread)(struct filestore_file *f, void *buf, size_t size, off_t offset);
	ssize_t (*pwrite)(struct filestore_file *f, const void *buf, size_t size, off_t offset);
	int (*fsync)(struct filestore_file *f, bool datasync);
	int (*ftruncate)(struct filestore_file *f, off_t size);
	int (*fstat)(struct filestore_file *f, struct stat *out);
	/* Optional: fallocate(2) (EOPNOTSUPP when missing). */
	int (*fallocate)(struct filestore_file *f, int mode, off_t offset, off_t length);
	/* Release f, also when closing fails. */
	int (*file_close)(struct filestore_file *f);
};

struct filestore {
	const struct filestore_ops *ops;
	void *priv;                 /* backend state */
	char *description;          /* "local /var/lib/epfs/files", "sftp epfs@host:/srv/files (port 22)" */
	int timeout_ms;             /* every call returns within this */
	unsigned caps;              /* FILESTORE_CAP_* */
	unsigned time_gran;         /* timestamp granularity in ns (1, or 1000000000) */
};

/* Open the backend named in [filestore] backend= (default "local"). */
int filestore_open(GKeyFile *config, struct filestore **out);
void filestore_close(struct filestore *fs);

/* The backend vtable registered under name, or NULL. */
const struct filestore_ops *filestore_backend(const char *name);

/* 0 if path is a valid store path ("" only if allow_root), else -EINVAL. */
int filestore_check_path(const char *path, bool allow_root);

/* An empty array for filestore_readdir(). */
GPtrArray *filestore_dirents_new(void);
void filestore_dirent_free(struct filestore_dirent *d);

int filestore_ping(struct filestore *fs);

/* Path operations, as their POSIX namesakes (lstat: a symlink is not followed). */
int filestore_lstat(struct filestore *fs, const char *path, struct stat *out);
/* Every entry of a directory with its lstat(), sorted by name, in one call. */
int filestore_readdir(struct filestore *fs, const char *path, GPtrArray *out);
int filestore_mkdir(struct filestore *fs, const char *path, mode_t mode);
int filestore_rmdir(struct filestore *fs, const char *path);
int filestore_unlink(struct filestore *fs, const char *path);
/* rename(2) that atomically replaces an existing file; flags 0,
 * RENAME_NOREPLACE (EEXIST if to exists) or RENAME_EXCHANGE (ENOTSUP
 * without FILESTORE_CAP_RENAME_EXCHANGE). */
int filestore_rename(struct filestore *fs, const char *from, const char *to, unsigned flags);
/* A symlink at path holding target, which is stored as given (data, never resolved here). */
int filestore_symlink(struct filestore *fs, const char *target, const char *path);
/* The target of the symlink at path, newly allocated in *out. */
int filestore_readlink(struct filestore *fs, const char *path, char **out);
int filestore_chmod(struct filestore *fs, const char *path, mode_t mode);
/* uid or gid (uid_t)-1 leaves it; ENOTSUP without FILESTORE_CAP_CHOWN. */
int filestore_chown(struct filestore *fs, const char *path, uid_t uid, gid_t gid);
/* Access and modification times; times NULL, UTIME_NOW and UTIME_OMIT as utimensat(2). */
int filestore_utimens(struct filestore *fs, const char *path, const struct timespec times[2]);
int filestore_truncate(struct filestore *fs, const char *path, off_t size);
int filestore_statvfs(struct filestore *fs, const char *path, struct statvfs *out);
/* A fifo or a socket at path (mode holds the type); EPERM for device nodes. */
int filestore_mknod(struct filestore *fs, const char *path, mode_t mode);
/* A hard link to is the file from; EPERM where the store has none. */
int filestore_link(struct filestore *fs, const char *from, const char *to);

/* Open a regular file (EISDIR for a directory, EINVAL for other kinds) with
 * FILESTORE_OPEN_FLAGS and mode (subject to the server's umask). */
int filestore_file_open(struct filestore *fs, const char *path, int flags, mode_t mode,
                        struct filestore_file **out);
/* Read up to size bytes at offset; fewer only at the end of the file. */
ssize_t filestore_pread(struct filestore_file *f, void *buf, size_t size, off_t offset);
/* Write all size bytes at offset (at the end of the file with O_APPEND). */
ssize_t filestore_pwrite(struct filestore_file *f, const void *buf, size_t size, off_t offset);
int filestore_fsync(struct filestore_file *f, bool datasync);
int filestore_ftruncate(struct filestore_file *f, off_t size);
int filestore_fstat(struct filestore_file *f, struct stat *out);
/* fallocate(2) on an open file; EOPNOTSUPP where the store cannot. */
int filestore_fallocate(struct filestore_file *f, int mode, off_t offset, off_t length);
/* Close and free f (NULL is a no-op); a failure is reported, f is freed anyway. */
int filestore_file_close(struct filestore_file *f);

/* Helpers built on the operations above, the same for every backend. */

/* Strict mode, for this thread: no symlink is followed anywhere in a path
 * (ELOOP).  For epfs's own walks over trees users change while they run (the
 * copies of datasets and public projects, previews): a directory swapped for
 * a symlink mid-walk must not lead into someone else's files.  Returns the
 * previous setting, to restore. */
bool filestore_set_strict(bool on);
bool filestore_strict(void);

/* Copy the tree at src (a directory, file or symlink) to dst, which must not
 * exist: files, directories, symlinks, modes and mtimes, every file fsync'd.
 * The copy is made under a temporary name beside dst and renamed into place,
 * so dst appears whole or not at all.  progress (may be NULL) sees the bytes
 * copied and the total; returning false cancels with ECANCELED. */
int filestore_copy_tree(struct filestore *fs, const char *src, const char *dst,
                        filestore_progress_fn progress, void *opaque);
/* Remove path and everything under it; symlinks are removed, never followed. */
int filestore_remove_tree(struct filestore *fs, const char *path);
/* Total size in bytes of the regular files at or under path. */
int filestore_du(struct filestore *fs, const char *path, uint64_t *bytes);

extern const struct filestore_ops filestore_local_ops;
extern const struct filestore_ops filestore_sftp_ops;
