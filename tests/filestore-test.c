/* filestore-test.c: TAP tests of the file store interface, for any backend.
 *
 *   filestore-test CONFIG                  every test against [filestore] of CONFIG
 *   filestore-test CONFIG COMMAND ARGS...  one operation, for backend-specific scripts
 *   filestore-test CONFIG fault CTLDIR     the reconnection test, in phases that a
 *                                          script drives through files in CTLDIR
 *
 * Everything happens under a directory with a random name in the store's root,
 * removed at the end, so a shared store can be used.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "tap.h"
#include "filestore.h"
#include "value.h"

#define KiB (1 << 10)
#define MiB (1 << 20)
#define THREADS 8
#define BIG_SIZE (64 * MiB)
#define CHUNK (128 * KiB)

static struct filestore *fs;
static char base[32];           /* "ft-<random>", holds everything a run creates */

static GPtrArray *garbage;      /* strings p() made, freed at the end */

/* base/<printf>, valid until the end of the run. */
static const char *pf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pf(const char *fmt, ...)
{
	va_list ap;
	g_autofree char *what = NULL;
	char *path;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	path = g_strconcat(base, "/", what, NULL);
	g_ptr_array_add(garbage, path);
	return path;
}

/* base/what, valid until the end of the run. */
static const char *p(const char *what)
{
	char *path = g_strconcat(base, "/", what, NULL);

	g_ptr_array_add(garbage, path);
	return path;
}

static double seconds_since(gint64 start)
{
	return (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

/* Deterministic bytes: the stream seeded by seed, from byte offset (a multiple of 8). */
static void fill_pattern(void *buf, size_t size, uint64_t seed, uint64_t offset)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < size / 8; i++) {
		/* splitmix64 of the position: any chunk can be regenerated alone */
		uint64_t z = seed + (offset / 8 + i) * UINT64_C(0x9e3779b97f4a7c15);

		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		w[i] = z ^ (z >> 31);
	}
}

/* Create (or replace) path holding size bytes of data. */
static int write_file(const char *path, const void *data, size_t size, int flags)
{
	struct filestore_file *f;
	ssize_t n;
	int r = filestore_file_open(fs, path, O_WRONLY | O_CREAT | flags, 0644, &f);

	if (r < 0)
		return r;
	n = filestore_pwrite(f, data, size, 0);
	r = filestore_file_close(f);
	return n < 0 ? (int)n : r;
}

static int write_string(const char *path, const char *s)
{
	return write_file(path, s, strlen(s), O_TRUNC);
}

/* The whole of a small file as a string (NULL on failure, the error recorded). */
static char *read_string(const char *path)
{
	struct filestore_file *f;
	char buf[64 * KiB];
	ssize_t n;

	if (filestore_file_open(fs, path, O_RDONLY, 0, &f) < 0)
		return NULL;
	n = filestore_pread(f, buf, sizeof(buf) - 1, 0);
	filestore_file_close(f);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return g_strdup(buf);
}

static bool has_content(const char *path, const char *expected)
{
	g_autofree char *got = read_string(path);

	if (g_strcmp0(got, expected) != 0) {
		printf("#   %s holds '%s', expected '%s' (%s)\n", path, got ? got : "(unreadable)",
		       expected, got ? "" : ep_error_message());
		return false;
	}
	return true;
}

static bool exists(const char *path)
{
	struct stat st;
	int r = filestore_lstat(fs, path, &st);

	ep_error_clear();
	return r == 0;
}

/* True if no name in dir starts with the store's temp prefix. */
static bool no_temp_files(const char *dir)
{
	g_autoptr(GPtrArray) list = filestore_dirents_new();

	if (filestore_readdir(fs, dir, list) < 0)
		return false;
	for (guint i = 0; i < list->len; i++) {
		struct filestore_dirent *d = list->pdata[i];

		if (g_str_has_prefix(d->name, FILESTORE_TEMP_PREFIX)) {
			printf("#   temp file %s/%s left\n", dir, d->name);
			return false;
		}
	}
	return true;
}

static void test_paths(void)
{
	struct filestore_file *f = NULL;
	struct stat st;
	char *target = NULL;
	g_autofree char *long_name = g_strnfill(300, 'x');

	is_err(filestore_lstat(fs, "../x", &st), EINVAL, "lstat ../x is refused");
	is_err(filestore_lstat(fs, "/etc/passwd", &st), EINVAL, "lstat /etc/passwd is refused");
	is_err(filestore_file_open(fs, "/etc/passwd", O_RDONLY, 0, &f), EINVAL,
	       "open /etc/passwd is refused");
	is_err(filestore_file_open(fs, "a/../../etc/passwd", O_RDONLY, 0, &f), EINVAL,
	       "open a/../../etc/passwd is refused");
	is_err(filestore_mkdir(fs, "x/..", 0755), EINVAL, "mkdir x/.. is refused");
	is_err(filestore_mkdir(fs, "a//b", 0755), EINVAL, "mkdir a//b is refused");
	is_err(filestore_mkdir(fs, "a/", 0755), EINVAL, "mkdir with a trailing slash is refused");
	is_err(filestore_mkdir(fs, ".", 0755), EINVAL, "mkdir . is refused");
	is_err(filestore_mkdir(fs, "", 0755), EINVAL, "mkdir of the root is refused");
	is_err(filestore_rmdir(fs, ""), EINVAL, "rmdir of the root is refused");
	is_err(filestore_remove_tree(fs, ""), EINVAL, "remove_tree of the root is refused");
	is_err(filestore_mkdir(fs, long_name, 0755), ENAMETOOLONG, "a 300-byte name is refused");
	is_err(filestore_rename(fs, "x", "../x", 0), EINVAL, "rename to ../x is refused");
	is_err(filestore_symlink(fs, "x", "/tmp/x"), EINVAL, "symlink at /tmp/x is refused");
	is_err(filestore_readlink(fs, "../x", &target), EINVAL, "readlink ../x is refused");
	is_err(filestore_copy_tree(fs, "x", "../y", NULL, NULL), EINVAL, "copy_tree to ../y is refused");
	is_err(filestore_copy_tree(fs, "/etc", "y", NULL, NULL), EINVAL, "copy_tree from /etc is refused");
	is_err(filestore_rename(fs, "x", "y", 0x100), EINVAL, "rename with unknown flags is refused");
	ok(f == NULL && target == NULL, "refused calls return nothing");
}

static void test_files(void)
{
	const char *a = p("a.txt");
	const char *missing = p("missing/x");
	struct filestore_file *f = NULL, *g = NULL;
	struct stat st;
	char buf[64];
	ssize_t n;

	ok_r(filestore_lstat(fs, "", &st), "lstat of the root");
	ok(S_ISDIR(st.st_mode), "the root is a directory");
	ok_r(filestore_mkdir(fs, base, 0755), "mkdir %s", base);
	is_err(filestore_mkdir(fs, base, 0755), EEXIST, "mkdir of an existing directory");
	ok_r(filestore_lstat(fs, base, &st), "lstat %s", base);
	ok(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755, "it is a directory, mode 0755 (%o)",
	   st.st_mode & 07777);
	is_err(filestore_lstat(fs, "no-such-dir/deeper/x", &st), ENOENT, "lstat under a missing directory");

	ok_r(filestore_file_open(fs, a, O_WRONLY | O_CREAT | O_EXCL, 0644, &f), "create %s", a);
	ok_r(filestore_pwrite(f, "hello\n", 6, 0), "write hello");
	is_err(filestore_pread(f, buf, sizeof(buf), 0), EBADF, "read from a write-only file");
	ok_r(filestore_file_close(f), "close");
	is_err(filestore_file_open(fs, a, O_WRONLY | O_CREAT | O_EXCL, 0644, &f), EEXIST,
	       "O_CREAT|O_EXCL of an existing file");
	ok(has_content(a, "hello\n"), "it reads back hello");
	ok_r(filestore_lstat(fs, a, &st), "lstat %s", a);
	ok(S_ISREG(st.st_mode) && st.st_size == 6 && (st.st_mode & 0777) == 0644,
	   "a regular file of 6 bytes, mode 0644 (%o, %jd)", st.st_mode & 07777, (intmax_t)st.st_size);

	ok_r(filestore_file_open(fs, a, O_RDONLY, 0, &f), "open read-only");
	n = filestore_pread(f, buf, sizeof(buf), 2);
	ok(n == 4 && memcmp(buf, "llo\n", 4) == 0, "pread at offset 2 reads the rest (%zd)", n);
	n = filestore_pread(f, buf, sizeof(buf), 6);
	ok(n == 0, "pread at the end reads nothing (%zd)", n);
	n = filestore_pread(f, buf, sizeof(buf), 1000);
	ok(n == 0, "pread past the end reads nothing (%zd)", n);
	is_err(filestore_pwrite(f, "x", 1, 0), EBADF, "write to a read-only file");
	ok_r(filestore_fstat(f, &st), "fstat");
	ok(st.st_size == 6 && S_ISREG(st.st_mode), "fstat says 6 bytes");

	ok_r(filestore_file_open(fs, a, O_WRONLY | O_APPEND, 0, &g), "open O_APPEND");
	ok_r(filestore_pwrite(g, "world\n", 6, 0), "write at offset 0 with O_APPEND");
	ok_r(filestore_pwrite(g, "!\n", 2, 0), "and again");
	ok_r(filestore_file_close(g), "close");
	ok(has_content(a, "hello\nworld\n!\n"), "O_APPEND wrote at the end, twice");
	n = filestore_pread(f, buf, sizeof(buf), 6);
	ok(n == 8 && memcmp(buf, "world\n!\n", 8) == 0, "an open reader sees the appended bytes");
	ok_r(filestore_file_close(f), "close the reader");

	ok_r(filestore_file_open(fs, a, O_RDWR, 0, &f), "open O_RDWR");
	ok_r(filestore_pwrite(f, "J", 1, 0), "overwrite the first byte");
	n = filestore_pread(f, buf, 5, 0);
	ok(n == 5 && memcmp(buf, "Jello", 5) == 0, "read back through the same handle");
	ok_r(filestore_pwrite(f, "Z", 1, 20), "write past the end");
	ok_r(filestore_fstat(f, &st), "fstat");
	ok(st.st_size == 21, "the file grew to 21 bytes (%jd)", (intmax_t)st.st_size);
	n = filestore_pread(f, buf, sizeof(buf), 14);
	ok(n == 7 && memcmp(buf, "\0\0\0\0\0\0Z", 7) == 0, "the gap reads as zeros");
	ok_r(filestore_ftruncate(f, 3), "ftruncate to 3");
	ok_r(filestore_fsync(f, false), "fsync");
	ok_r(filestore_fsync(f, true), "fdatasync");
	ok_r(filestore_file_close(f), "close");
	ok(has_content(a, "Jel"), "ftruncate cut the file");

	ok_r(filestore_file_open(fs, a, O_WRONLY | O_TRUNC, 0, &f), "open O_TRUNC");
	ok_r(filestore_fstat(f, &st), "fstat");
	ok(st.st_size == 0, "O_TRUNC emptied the file (%jd)", (intmax_t)st.st_size);
	ok_r(filestore_file_close(f), "close");
	ok_r(write_string(a, "0123456789"), "write 10 bytes");
	ok_r(filestore_truncate(fs, a, 1000), "truncate to 1000");
	ok_r(filestore_lstat(fs, a, &st), "lstat");
	ok(st.st_size == 1000, "it is 1000 bytes (%jd)", (intmax_t)st.st_size);
	ok_r(filestore_truncate(fs, a, 4), "truncate to 4");
	ok(has_content(a, "0123"), "it holds 0123");

	is_err(filestore_file_open(fs, missing, O_RDONLY, 0, &f), ENOENT, "open of a missing file");
	is_err(filestore_file_open(fs, missing, O_WRONLY | O_CREAT, 0644, &f), ENOENT,
	       "create in a missing directory");
	is_err(filestore_file_open(fs, base, O_RDONLY, 0, &f), EISDIR, "open of a directory");
	is_err(filestore_file_open(fs, base, O_WRONLY, 0, &f), EISDIR, "open of a directory for writing");
	is_err(filestore_truncate(fs, missing, 0), ENOENT, "truncate of a missing file");
	ok(f == NULL, "failed opens return no file");
}

/* What Jupyter does on save: write a temp file, fsync, rename over the notebook. */
static void test_rename(void)
{
	const char *nb = p("notebook.ipynb");
	const char *tmp = p(".~notebook.ipynb");
	const char *other = p("other.txt");
	const char *moved = p("moved.txt");
	const char *d1 = p("d1");
	const char *d2 = p("d2");
	const char *d2f = p("d2/f");
	struct filestore_file *f = NULL, *reader = NULL;
	char buf[16] = "";
	ssize_t n;

	ok_r(write_string(nb, "{\"v\": 1}\n"), "write the notebook");
	ok_r(filestore_file_open(fs, nb, O_RDONLY, 0, &reader), "a reader opens it");
	ok_r(filestore_file_open(fs, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, &f), "create the temp file");
	ok_r(filestore_pwrite(f, "{\"v\": 2}\n", 9, 0), "write the new version");
	ok_r(filestore_fsync(f, false), "fsync it");
	ok_r(filestore_file_close(f), "close it");
	ok_r(filestore_rename(fs, tmp, nb, 0), "rename it over the notebook");
	ok(has_content(nb, "{\"v\": 2}\n"), "the notebook has the new content");
	ok(!exists(tmp), "the temp file is gone");
	n = filestore_pread(reader, buf, sizeof(buf), 0);
	ok(n == 9 && memcmp(buf, "{\"v\": 1}\n", 9) == 0,
	   "the reader opened before still reads the old version (atomic replace)");
	ok_r(filestore_file_close(reader), "close the reader");

	ok_r(write_string(other, "other\n"), "write other.txt");
	is_err(filestore_rename(fs, other, nb, RENAME_NOREPLACE), EEXIST,
	       "RENAME_NOREPLACE over an existing file");
	ok(has_content(nb, "{\"v\": 2}\n") && has_content(other, "other\n"), "both files are unchanged");
	ok_r(filestore_rename(fs, other, moved, RENAME_NOREPLACE), "RENAME_NOREPLACE to a new name");
	ok(!exists(other) && has_content(moved, "other\n"), "the file moved");
	if (fs->caps & FILESTORE_CAP_RENAME_EXCHANGE) {
		ok_r(filestore_rename(fs, moved, nb, RENAME_EXCHANGE), "RENAME_EXCHANGE");
		ok(has_content(nb, "other\n") && has_content(moved, "{\"v\": 2}\n"), "the contents swapped");
	} else {
		is_err(filestore_rename(fs, moved, nb, RENAME_EXCHANGE), ENOTSUP,
		       "RENAME_EXCHANGE is not supported by %s", fs->ops->name);
	}
	is_err(filestore_rename(fs, other, moved, 0), ENOENT, "rename of a missing file");

	ok_r(filestore_mkdir(fs, d1, 0755), "mkdir d1");
	ok_r(filestore_mkdir(fs, d2, 0755), "mkdir d2");
	ok_r(write_string(d2f, "f\n"), "a file in d2");
	is_err2(filestore_rename(fs, d1, d2, 0), ENOTEMPTY, EEXIST, "rename over a non-empty directory");
	is_err(filestore_rename(fs, d1, d2, RENAME_NOREPLACE), EEXIST,
	       "RENAME_NOREPLACE of a directory over a directory");
	is_err(filestore_rename(fs, moved, d2, 0), EISDIR, "rename of a file over a directory");
	ok_r(filestore_rename(fs, d2, d1, 0), "rename a directory over an empty one");
	ok(!exists(d2) && has_content(p("d1/f"), "f\n"), "the directory moved with its file");
}

static void test_dirs(void)
{
	const char *dir = p("dir");
	const char *sub = p("dir/sub");
	const char *file = p("dir/file");

	ok_r(filestore_mkdir(fs, dir, 0750), "mkdir dir");
	ok_r(filestore_mkdir(fs, sub, 0755), "mkdir dir/sub");
	ok_r(write_string(file, "x\n"), "a file in dir");
	is_err(filestore_rmdir(fs, dir), ENOTEMPTY, "rmdir of a non-empty directory");
	is_err(filestore_rmdir(fs, file), ENOTDIR, "rmdir of a file");
	is_err(filestore_unlink(fs, sub), EISDIR, "unlink of a directory");
	is_err(filestore_mkdir(fs, p("dir/file/x"), 0755), ENOTDIR, "mkdir under a file");
	is_err(filestore_rmdir(fs, p("dir/nope")), ENOENT, "rmdir of a missing directory");
	is_err(filestore_unlink(fs, p("dir/nope")), ENOENT, "unlink of a missing file");
	is_err(filestore_mkdir(fs, p("nope/x"), 0755), ENOENT, "mkdir in a missing directory");
	ok_r(filestore_rmdir(fs, sub), "rmdir dir/sub");
	ok(!exists(sub), "dir/sub is gone");
	ok_r(filestore_unlink(fs, file), "unlink dir/file");
	ok(!exists(file), "dir/file is gone");
	ok_r(filestore_rmdir(fs, dir), "rmdir the now empty dir");
}

static void test_readdir(void)
{
	const char *dir = p("list");
	g_autoptr(GPtrArray) list = filestore_dirents_new();
	static const char *const names[] = { "a", "b.txt", "c-dir", "d-link", "Z" };
	bool types = true, sorted = true;

	ok_r(filestore_mkdir(fs, dir, 0755), "mkdir list");
	ok_r(write_string(p("list/a"), ""), "list/a (empty)");
	ok_r(write_string(p("list/b.txt"), "12345"), "list/b.txt (5 bytes)");
	ok_r(write_string(p("list/Z"), "z"), "list/Z");
	ok_r(filestore_mkdir(fs, p("list/c-dir"), 0700), "list/c-dir");
	ok_r(filestore_symlink(fs, "b.txt", p("list/d-link")), "list/d-link -> b.txt");
	ok_r(filestore_readdir(fs, dir, list), "readdir list");
	ok(list->len == G_N_ELEMENTS(names), "5 entries, no . or .. (%u)", list->len);
	for (guint i = 0; i < list->len; i++) {
		struct filestore_dirent *d = list->pdata[i];

		if (i > 0 && strcmp(((struct filestore_dirent *)list->pdata[i - 1])->name, d->name) >= 0)
			sorted = false;
		if (strcmp(d->name, "b.txt") == 0)
			types &= S_ISREG(d->st.st_mode) && d->st.st_size == 5;
		else if (strcmp(d->name, "c-dir") == 0)
			types &= S_ISDIR(d->st.st_mode) && (d->st.st_mode & 0777) == 0700;
		else if (strcmp(d->name, "d-link") == 0)
			types &= S_ISLNK(d->st.st_mode);
		else if (strcmp(d->name, "a") == 0)
			types &= S_ISREG(d->st.st_mode) && d->st.st_size == 0;
	}
	ok(sorted, "entries are sorted by name");
	ok(types, "each entry carries its lstat (type, size, mode)");
	g_ptr_array_set_size(list, 0);
	is_err(filestore_readdir(fs, p("nope"), list), ENOENT, "readdir of a missing directory");
	is_err(filestore_readdir(fs, p("list/b.txt"), list), ENOTDIR, "readdir of a file");
	ok(list->len == 0, "failed readdirs return nothing");
}

static void test_symlinks(void)
{
	const char *target = p("target.txt");
	const char *link = p("link");
	const char *dir = p("realdir");
	const char *dirlink = p("dirlink");
	struct filestore_file *f = NULL;
	char *s = NULL;
	struct stat st;
	ssize_t n;
	char buf[16];

	ok_r(write_string(target, "target\n"), "write target.txt");
	ok_r(filestore_symlink(fs, "target.txt", link), "symlink link -> target.txt");
	is_err(filestore_symlink(fs, "x", link), EEXIST, "symlink over an existing name");
	ok_r(filestore_readlink(fs, link, &s), "readlink");
	ok(g_strcmp0(s, "target.txt") == 0, "readlink gives the target as stored (%s)", s);
	g_clear_pointer(&s, g_free);
	is_err(filestore_readlink(fs, target, &s), EINVAL, "readlink of a regular file");
	ok_r(filestore_lstat(fs, link, &st), "lstat link");
	ok(S_ISLNK(st.st_mode) && st.st_size == 10, "lstat shows the link itself (10 bytes)");

	ok_r(filestore_mkdir(fs, dir, 0755), "mkdir realdir");
	ok_r(write_string(p("realdir/in.txt"), "in\n"), "realdir/in.txt");
	ok_r(filestore_symlink(fs, "realdir", dirlink), "symlink dirlink -> realdir");
	if (fs->caps & FILESTORE_CAP_FOLLOW_SYMLINKS) {
		ok(has_content(link, "target\n"), "open follows a symlink inside the store");
		ok(has_content(p("dirlink/in.txt"), "in\n"), "open through a directory symlink inside the store");
		ok_r(filestore_lstat(fs, p("dirlink/in.txt"), &st), "lstat through a directory symlink");
	} else {
		is_err(filestore_file_open(fs, link, O_RDONLY, 0, &f), ELOOP, "open of a symlink (not followed here)");
		is_err(filestore_lstat(fs, p("dirlink/in.txt"), &st), ELOOP, "a symlink in a path (not followed here)");
	}
	is_err(filestore_file_open(fs, link, O_RDONLY | O_NOFOLLOW, 0, &f), ELOOP,
	       "O_NOFOLLOW refuses a symlink");
	/* strict mode (epfs's own walks): no symlink is followed, wherever it is */
	filestore_set_strict(true);
	is_err(filestore_file_open(fs, link, O_RDONLY, 0, &f), ELOOP, "strict: open of a symlink is refused");
	is_err(filestore_lstat(fs, p("dirlink/in.txt"), &st), ELOOP, "strict: a directory symlink in a path too");
	ok_r(filestore_lstat(fs, p("realdir/in.txt"), &st), "strict: a path without symlinks is served");
	ok_r(filestore_lstat(fs, dirlink, &st), "strict: lstat of the symlink itself is served");
	filestore_set_strict(false);
	ok_r(write_string(p("dangling-target"), ""), "a file for a dangling link to name");
	ok_r(filestore_unlink(fs, p("dangling-target")), "and its removal");
	ok_r(filestore_unlink(fs, link), "unlink the link");
	ok(!exists(link) && exists(target), "the link is gone, its target is not");
	ok_r(filestore_unlink(fs, dirlink), "unlink the directory link");
	ok(exists(p("realdir/in.txt")), "the directory it pointed to is intact");
	n = f ? filestore_pread(f, buf, sizeof(buf), 0) : 0;
	ok(f == NULL && n == 0, "refused opens return no file");
}

/* Symlinks that lead out of the store are data: readable as links, never followed. */
static void test_confinement(void)
{
	const char *esc = p("escape");
	const char *abs = p("absolute");
	const char *up = p("up");
	struct filestore_file *f = NULL;
	g_autoptr(GPtrArray) list = filestore_dirents_new();
	struct stat before, after, st;
	char *s = NULL;
	int escape = fs->caps & FILESTORE_CAP_FOLLOW_SYMLINKS ? EACCES : ELOOP;
	bool have_passwd = stat("/etc/passwd", &before) == 0;

	ok_r(filestore_symlink(fs, "../../../../../../../../../../etc/passwd", esc),
	     "symlink escape -> ../../../../../../../../../../etc/passwd");
	ok_r(filestore_symlink(fs, "/etc/passwd", abs), "symlink absolute -> /etc/passwd");
	ok_r(filestore_symlink(fs, "../../../../../../../../../..", up), "symlink up -> ../../..");
	ok_r(filestore_readlink(fs, esc, &s), "readlink escape works (the link is data)");
	g_clear_pointer(&s, g_free);
	ok_r(filestore_lstat(fs, abs, &st), "lstat absolute works (the link itself)");

	is_err(filestore_file_open(fs, esc, O_RDONLY, 0, &f), escape, "open through ../.. out of the store");
	is_err(filestore_file_open(fs, abs, O_RDONLY, 0, &f), escape, "open through /etc/passwd");
	is_err(filestore_file_open(fs, abs, O_WRONLY | O_CREAT, 0644, &f), escape,
	       "open O_CREAT through /etc/passwd");
	is_err(filestore_file_open(fs, p("up/etc/passwd"), O_RDONLY, 0, &f), escape,
	       "open up/etc/passwd (a directory symlink out of the store)");
	is_err(filestore_lstat(fs, p("up/etc"), &st), escape, "lstat up/etc");
	is_err(filestore_readdir(fs, up, list), escape, "readdir up");
	is_err(filestore_mkdir(fs, p("up/epfs-escape-test"), 0755), escape, "mkdir up/x");
	is_err(filestore_truncate(fs, abs, 0), escape, "truncate through /etc/passwd");
	ok(filestore_chmod(fs, abs, 0600) < 0, "chmod of a symlink out of the store fails (%s)",
	   ep_error_message());
	ep_error_clear();
	filestore_utimens(fs, abs, NULL);
	ep_error_clear();
	if (have_passwd && stat("/etc/passwd", &after) == 0)
		ok(before.st_mode == after.st_mode && before.st_size == after.st_size &&
		   before.st_mtim.tv_sec == after.st_mtim.tv_sec, "/etc/passwd is untouched");
	ok(f == NULL && list->len == 0, "refused calls return nothing");
	ok_r(filestore_unlink(fs, esc), "unlink escape");
	ok_r(filestore_unlink(fs, abs), "unlink absolute");
	ok_r(filestore_unlink(fs, up), "unlink up");
}

/* t truncated to the store's timestamp granularity. */
static int64_t gran(const struct timespec *t)
{
	int64_t ns = (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;

	return ns - ns % fs->time_gran;
}

static void test_attributes(void)
{
	const char *file = p("attr.txt");
	const struct timespec times[2] = { { 1000000000, 500000000 }, { 1234567890, 123456789 } };
	const struct timespec omit_atime[2] = { { 0, UTIME_OMIT }, { 1300000000, 0 } };
	struct statvfs sv;
	struct stat st;
	time_t now = time(NULL);

	ok_r(write_string(file, "attr\n"), "write attr.txt");
	ok_r(filestore_chmod(fs, file, 0600), "chmod 0600");
	ok_r(filestore_lstat(fs, file, &st), "lstat");
	ok((st.st_mode & 07777) == 0600, "mode is 0600 (%o)", st.st_mode & 07777);
	ok_r(filestore_chmod(fs, file, 0751), "chmod 0751");
	ok_r(filestore_lstat(fs, file, &st), "lstat");
	ok((st.st_mode & 07777) == 0751, "mode is 0751 (%o)", st.st_mode & 07777);
	is_err(filestore_chmod(fs, p("nope"), 0600), ENOENT, "chmod of a missing file");

	ok_r(filestore_utimens(fs, file, times), "utimens");
	ok_r(filestore_lstat(fs, file, &st), "lstat");
	ok(st.st_mtim.tv_sec == 1234567890 && gran(&st.st_mtim) == gran(&times[1]),
	   "mtime round-trips to %u ns (%jd.%09ld)", fs->time_gran, (intmax_t)st.st_mtim.tv_sec,
	   st.st_mtim.tv_nsec);
	ok(st.st_atim.tv_sec == 1000000000 && gran(&st.st_atim) == gran(&times[0]),
	   "atime round-trips (%jd.%09ld)", (intmax_t)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	ok_r(filestore_utimens(fs, file, omit_atime), "utimens with UTIME_OMIT for atime");
	ok_r(filestore_lstat(fs, file, &st), "lstat");
	ok(st.st_mtim.tv_sec == 1300000000 && st.st_atim.tv_sec == 1000000000,
	   "mtime changed, atime kept (%jd, %jd)", (intmax_t)st.st_mtim.tv_sec,
	   (intmax_t)st.st_atim.tv_sec);
	ok_r(filestore_utimens(fs, file, NULL), "utimens NULL (now)");
	ok_r(filestore_lstat(fs, file, &st), "lstat");
	ok(llabs((long long)(st.st_mtim.tv_sec - now)) <= 5, "mtime is now (%jd vs %jd)",
	   (intmax_t)st.st_mtim.tv_sec, (intmax_t)now);
	ok_r(filestore_utimens(fs, base, times), "utimens on a directory");
	ok_r(filestore_lstat(fs, base, &st), "lstat");
	ok(st.st_mtim.tv_sec == 1234567890, "the directory's mtime is set");
	is_err(filestore_utimens(fs, p("nope"), times), ENOENT, "utimens of a missing file");

	if (fs->caps & FILESTORE_CAP_CHOWN) {
		ok_r(filestore_chown(fs, file, (uid_t)-1, (gid_t)-1), "chown -1 -1 changes nothing");
		if (geteuid() == 0) {
			ok_r(filestore_chown(fs, file, 1, 2), "chown 1:2 (as root)");
			ok_r(filestore_lstat(fs, file, &st), "lstat");
			ok(st.st_uid == 1 && st.st_gid == 2, "owner is 1:2");
		}
	} else {
		is_err(filestore_chown(fs, file, 1, 2), ENOTSUP, "chown is not supported by %s",
		       fs->ops->name);
	}

	ok_r(filestore_statvfs(fs, "", &sv), "statvfs of the root");
	ok(sv.f_bsize > 0 && sv.f_blocks > 0 && sv.f_bavail <= sv.f_blocks,
	   "statvfs has sizes (bsize %lu, blocks %lu)", sv.f_bsize, (unsigned long)sv.f_blocks);
	ok_r(filestore_statvfs(fs, file, &sv), "statvfs of a file");
	is_err(filestore_statvfs(fs, p("nope"), &sv), ENOENT, "statvfs of a missing path");
}

/* A file far bigger than any buffer, written and read in chunks. */
static void test_streaming(void)
{
	const char *big = p("big.bin");
	g_autoptr(GChecksum) written = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GChecksum) read = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree char *buf = g_malloc(CHUNK);
	g_autofree char *expect = g_malloc(CHUNK);
	struct filestore_file *f = NULL;
	uint64_t seed = g_random_int();
	struct stat st;
	off_t off;
	gint64 start;
	bool write_ok = true, read_ok = true, spot_ok = true;

	if (!ok_r(filestore_file_open(fs, big, O_WRONLY | O_CREAT | O_EXCL, 0644, &f), "create big.bin"))
		return;
	start = g_get_monotonic_time();
	for (off = 0; off < BIG_SIZE && write_ok; off += CHUNK) {
		fill_pattern(buf, CHUNK, seed, (uint64_t)off);
		g_checksum_update(written, (guchar *)buf, CHUNK);
		write_ok = filestore_pwrite(f, buf, CHUNK, off) == CHUNK;
	}
	ok(write_ok, "wrote %d MiB in %d KiB chunks", BIG_SIZE / MiB, CHUNK / KiB);
	ok_r(filestore_fsync(f, false), "fsync");
	ok_r(filestore_file_close(f), "close");
	diag("write: %.0f MiB/s", BIG_SIZE / MiB / seconds_since(start));
	ok_r(filestore_lstat(fs, big, &st), "lstat");
	ok(st.st_size == BIG_SIZE, "the file is %d MiB (%jd)", BIG_SIZE / MiB, (intmax_t)st.st_size);

	if (!ok_r(filestore_file_open(fs, big, O_RDONLY, 0, &f), "open big.bin"))
		return;
	start = g_get_monotonic_time();
	for (off = 0; read_ok; off += CHUNK) {
		ssize_t n = filestore_pread(f, buf, CHUNK, off);

		if (n <= 0) {
			read_ok = n == 0 && off == BIG_SIZE;
			break;
		}
		g_checksum_update(read, (guchar *)buf, (gssize)n);
	}
	diag("read: %.0f MiB/s", BIG_SIZE / MiB / seconds_since(start));
	ok(read_ok, "read it back in %d KiB chunks up to the end", CHUNK / KiB);
	ok(strcmp(g_checksum_get_string(written), g_checksum_get_string(read)) == 0,
	   "the sha256 of what was read matches what was written");
	/* random access: chunks out of order, unaligned */
	for (int i = 0; i < 32 && spot_ok; i++) {
		off_t at = (off_t)(g_random_int_range(0, BIG_SIZE / CHUNK - 1)) * CHUNK;
		ssize_t n = filestore_pread(f, buf, 1000, at + 8);

		fill_pattern(expect, CHUNK, seed, (uint64_t)at);
		spot_ok = n == 1000 && memcmp(buf, expect + 8, 1000) == 0;
	}
	ok(spot_ok, "32 reads at random offsets return the right bytes");
	ok_r(filestore_file_close(f), "close");
	ok_r(filestore_unlink(fs, big), "unlink big.bin");
}

struct progress {
	uint64_t last_done;
	uint64_t last_total;
	int calls;
	bool monotonic;
	int cancel_after;           /* cancel on this call, 0: never */
};

static bool on_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct progress *pr = opaque;

	if (done < pr->last_done || done > total)
		pr->monotonic = false;
	pr->last_done = done;
	pr->last_total = total;
	pr->calls++;
	return pr->cancel_after == 0 || pr->calls < pr->cancel_after;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	g_autofree char *ca = NULL, *cb = NULL;

	if (filestore_lstat(fs, a, &sa) < 0 || filestore_lstat(fs, b, &sb) < 0)
		return false;
	/* a symlink's own times are kept only where the store can set them */
	if (sa.st_mode != sb.st_mode || (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec &&
	    (!S_ISLNK(sa.st_mode) || (fs->caps & FILESTORE_CAP_SYMLINK_TIMES)))) {
		printf("#   %s: mode %o mtime %jd, %s: mode %o mtime %jd\n", a, sa.st_mode,
		       (intmax_t)sa.st_mtim.tv_sec, b, sb.st_mode, (intmax_t)sb.st_mtim.tv_sec);
		return false;
	}
	if (S_ISLNK(sa.st_mode)) {
		filestore_readlink(fs, a, &ca);
		filestore_readlink(fs, b, &cb);
	} else if (S_ISREG(sa.st_mode)) {
		ca = read_string(a);
		cb = read_string(b);
	} else {
		return true;
	}
	return ca && cb && strcmp(ca, cb) == 0;
}

static void test_copy_tree(void)
{
	const char *src = p("src");
	const char *dst = p("dst");
	const struct timespec old[2] = { { 1500000000, 0 }, { 1500000000, 0 } };
	const struct timespec older[2] = { { 1400000000, 0 }, { 1400000000, 0 } };
	static const char *const files[] = { "empty", "small.txt", "sub/deeper/note.md", "sub/data.csv",
	                                     "sub/link", "readonly", "sub", "sub/deeper" };
	g_autofree char *data = g_malloc(3 * MiB);
	struct progress pr = { .monotonic = true };
	uint64_t src_bytes = 0, dst_bytes = 0;
	bool same = true;

	fill_pattern(data, 3 * MiB, 7, 0);
	for (size_t i = 0; i < 3 * MiB; i++)
		if (data[i] == '\0')
			data[i] = 'z';      /* read_string() stops at NUL; keep the file comparable */
	ok_r(filestore_mkdir(fs, src, 0755), "mkdir src");
	ok_r(write_string(p("src/empty"), ""), "src/empty");
	ok_r(write_string(p("src/small.txt"), "small\n"), "src/small.txt");
	ok_r(filestore_mkdir(fs, p("src/sub"), 0751), "src/sub (0751)");
	ok_r(filestore_mkdir(fs, p("src/sub/deeper"), 0700), "src/sub/deeper (0700)");
	ok_r(write_string(p("src/sub/deeper/note.md"), "# note\n"), "src/sub/deeper/note.md");
	ok_r(write_file(p("src/sub/data.csv"), data, 60 * KiB, O_TRUNC), "src/sub/data.csv (60 KiB)");
	ok_r(write_file(p("src/big"), data, 3 * MiB, O_TRUNC), "src/big (3 MiB)");
	ok_r(filestore_symlink(fs, "../small.txt", p("src/sub/link")), "src/sub/link -> ../small.txt");
	ok_r(write_string(p("src/readonly"), "ro\n"), "src/readonly");
	ok_r(filestore_chmod(fs, p("src/readonly"), 0444), "chmod 0444 src/readonly");
	for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
		if (strcmp(files[i], "sub/link") != 0 || (fs->caps & FILESTORE_CAP_SYMLINK_TIMES))
			filestore_utimens(fs, pf("src/%s", files[i]), i % 2 ? old : older);
	filestore_utimens(fs, src, old);

	ok_r(filestore_du(fs, src, &src_bytes), "du src");
	ok(src_bytes == 6 + 7 + 60 * KiB + 3 * MiB + 3, "du counts the regular files' bytes (%" PRIu64 ")",
	   src_bytes);
	ok_r(filestore_copy_tree(fs, src, dst, on_progress, &pr), "copy_tree src dst");
	ok(pr.calls >= 2 && pr.monotonic, "progress was reported %d times, never going back", pr.calls);
	ok(pr.last_done == src_bytes && pr.last_total == src_bytes,
	   "progress ends at done == total == %" PRIu64 " (%" PRIu64 "/%" PRIu64 ")", src_bytes,
	   pr.last_done, pr.last_total);
	for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
		if (!same_file(pf("src/%s", files[i]), pf("dst/%s", files[i]))) {
			printf("#   dst/%s differs\n", files[i]);
			same = false;
		}
	ok(same, "every file, directory and symlink is copied with its mode and mtime");
	ok(same_file(src, dst), "the top directory has the source's mode and mtime");
	ok_r(filestore_du(fs, dst, &dst_bytes), "du dst");
	ok(dst_bytes == src_bytes, "du dst equals du src (%" PRIu64 ")", dst_bytes);
	ok(no_temp_files(base), "no temporary copy is left");
	is_err(filestore_copy_tree(fs, src, dst, NULL, NULL), EEXIST, "copy_tree onto an existing name");
	is_err(filestore_copy_tree(fs, src, p("src/sub/again"), NULL, NULL), EINVAL,
	       "copy_tree into itself");
	is_err(filestore_copy_tree(fs, p("nope"), p("dst2"), NULL, NULL), ENOENT,
	       "copy_tree of a missing source");

	pr = (struct progress){ .monotonic = true, .cancel_after = 3 };
	is_err(filestore_copy_tree(fs, src, p("dst2"), on_progress, &pr), ECANCELED,
	       "copy_tree cancelled by its progress callback");
	ok(!exists(p("dst2")), "a cancelled copy leaves no destination");
	ok(no_temp_files(base), "nor a temporary copy");

	ok_r(filestore_copy_tree(fs, p("src/small.txt"), p("single.txt"), NULL, NULL),
	     "copy_tree of a single file");
	ok(same_file(p("src/small.txt"), p("single.txt")), "it is the same file");

	ok_r(filestore_remove_tree(fs, dst), "remove_tree dst");
	ok(!exists(dst), "dst is gone");
	ok(exists(p("src/sub/deeper/note.md")), "src is untouched");
	is_err(filestore_remove_tree(fs, dst), ENOENT, "remove_tree of a missing tree");
	ok_r(filestore_du(fs, "", &dst_bytes), "du of the whole store");
	ok(dst_bytes >= src_bytes, "it counts at least src (%" PRIu64 ")", dst_bytes);
}

struct worker {
	GThread *thread;
	int id;
	struct filestore_file *shared;  /* one handle every worker reads */
	uint64_t seed;
	int failures;
	char message[256];
};

static void worker_fail(struct worker *w, const char *what, long r)
{
	if (w->failures++ == 0)
		snprintf(w->message, sizeof(w->message), "%s: %s %s", what,
		         r < 0 ? ep_errno_name((int)-r) : "wrong data", r < 0 ? ep_error_message() : "");
}

#define WORKER_FILE (4 * MiB)
#define WORKER_CHUNK (64 * KiB)

/* Each worker writes its own file, reads it back, renames it, lists the
 * directory and reads its share of one file every worker has open. */
static gpointer io_worker(gpointer data)
{
	struct worker *w = data;
	g_autofree char *path = g_strdup_printf("%s/threads/w%d.tmp", base, w->id);
	g_autofree char *final = g_strdup_printf("%s/threads/w%d.bin", base, w->id);
	g_autofree char *dir = g_strdup_printf("%s/threads", base);
	g_autofree char *buf = g_malloc(WORKER_CHUNK);
	g_autofree char *expect = g_malloc(WORKER_CHUNK);
	struct filestore_file *f;
	long r;

	r = filestore_file_open(fs, path, O_WRONLY | O_CREAT | O_EXCL, 0644, &f);
	if (r < 0) {
		worker_fail(w, "create", r);
		return NULL;
	}
	for (off_t off = 0; off < WORKER_FILE; off += WORKER_CHUNK) {
		fill_pattern(buf, WORKER_CHUNK, (uint64_t)w->id, (uint64_t)off);
		r = filestore_pwrite(f, buf, WORKER_CHUNK, off);
		if (r != WORKER_CHUNK)
			worker_fail(w, "write", r);
	}
	if ((r = filestore_fsync(f, false)) < 0)
		worker_fail(w, "fsync", r);
	if ((r = filestore_file_close(f)) < 0)
		worker_fail(w, "close", r);
	if ((r = filestore_rename(fs, path, final, 0)) < 0)
		worker_fail(w, "rename", r);
	for (int round = 0; round < 4; round++) {
		g_autoptr(GPtrArray) list = filestore_dirents_new();
		struct stat st;

		if ((r = filestore_readdir(fs, dir, list)) < 0)
			worker_fail(w, "readdir", r);
		if ((r = filestore_lstat(fs, final, &st)) < 0 || st.st_size != WORKER_FILE)
			worker_fail(w, "lstat", r);
	}
	r = filestore_file_open(fs, final, O_RDONLY, 0, &f);
	if (r < 0) {
		worker_fail(w, "open", r);
		return NULL;
	}
	for (off_t off = 0; off < WORKER_FILE; off += WORKER_CHUNK) {
		fill_pattern(expect, WORKER_CHUNK, (uint64_t)w->id, (uint64_t)off);
		r = filestore_pread(f, buf, WORKER_CHUNK, off);
		if (r != WORKER_CHUNK || memcmp(buf, expect, WORKER_CHUNK) != 0)
			worker_fail(w, "read back", r < 0 ? r : 0);
	}
	filestore_file_close(f);
	/* the shared handle: worker i reads chunks i, i+THREADS, ... */
	for (off_t off = (off_t)w->id * WORKER_CHUNK; off < WORKER_FILE; off += THREADS * WORKER_CHUNK) {
		fill_pattern(expect, WORKER_CHUNK, w->seed, (uint64_t)off);
		r = filestore_pread(w->shared, buf, WORKER_CHUNK, off);
		if (r != WORKER_CHUNK || memcmp(buf, expect, WORKER_CHUNK) != 0)
			worker_fail(w, "shared read", r < 0 ? r : 0);
	}
	return NULL;
}

static void test_threads(void)
{
	const char *shared = p("threads/shared.bin");
	g_autofree char *buf = g_malloc(WORKER_FILE);
	struct worker w[THREADS] = { { 0 } };
	struct filestore_file *f = NULL;
	uint64_t seed = 99;
	int failures = 0;
	gint64 start;

	ok_r(filestore_mkdir(fs, p("threads"), 0755), "mkdir threads");
	fill_pattern(buf, WORKER_FILE, seed, 0);
	ok_r(write_file(shared, buf, WORKER_FILE, O_EXCL), "write the shared file");
	if (!ok_r(filestore_file_open(fs, shared, O_RDONLY, 0, &f), "open it once for every thread"))
		return;
	start = g_get_monotonic_time();
	for (int i = 0; i < THREADS; i++) {
		w[i].id = i;
		w[i].shared = f;
		w[i].seed = seed;
		w[i].thread = g_thread_new("io", io_worker, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		g_thread_join(w[i].thread);
		failures += w[i].failures;
		if (w[i].failures)
			diag("worker %d: %d failures, first %s", i, w[i].failures, w[i].message);
	}
	ok(failures == 0, "%d threads write, rename, list, read back and share a handle at once "
	   "(%.1f s)", THREADS, seconds_since(start));
	ok_r(filestore_file_close(f), "close the shared handle");
	ok_r(filestore_remove_tree(fs, p("threads")), "remove_tree threads");
}

static int run_tests(void)
{
	g_autoptr(GPtrArray) root = filestore_dirents_new();
	bool gone = true;

	ok_r(filestore_ping(fs), "ping %s", fs->description);
	test_paths();
	test_files();
	test_rename();
	test_dirs();
	test_readdir();
	test_symlinks();
	test_confinement();
	test_attributes();
	test_streaming();
	test_copy_tree();
	test_threads();
	ok_r(filestore_remove_tree(fs, base), "remove_tree %s", base);
	ok_r(filestore_readdir(fs, "", root), "readdir of the root");
	for (guint i = 0; i < root->len; i++)
		gone &= strcmp(((struct filestore_dirent *)root->pdata[i])->name, base) != 0;
	ok(gone, "nothing this run created is left");
	ok_r(filestore_ping(fs), "ping");
	return tap_done();
}

/* ---- the reconnection test: phases driven by a script through CTLDIR ---- */

static const char *ctl_dir;

/* Tell the script a phase is done: create CTLDIR/name. */
static void ctl_signal(const char *name)
{
	g_autofree char *path = g_build_filename(ctl_dir, name, NULL);

	g_file_set_contents(path, "", 0, NULL);
}

/* Wait (at most 120 s) for the script to create CTLDIR/name. */
static bool ctl_wait(const char *name)
{
	g_autofree char *path = g_build_filename(ctl_dir, name, NULL);

	for (int i = 0; i < 1200; i++) {
		if (g_file_test(path, G_FILE_TEST_EXISTS))
			return true;
		g_usleep(100000);
	}
	printf("Bail out! no %s from the driving script\n", path);
	return false;
}

/* One call per kind: path operations, a new file and the handle opened before. */
static int fault_ops(struct filestore_file *old, int i, double *worst)
{
	g_autoptr(GPtrArray) list = filestore_dirents_new();
	struct filestore_file *f = NULL;
	struct stat st;
	char buf[16];
	int failures = 0;
	long r[5];
	double t[5];
	char *why[5] = { NULL };
	gint64 start;

	/* the handle first: on a frozen server its own read has to time out */
	start = g_get_monotonic_time();
	r[0] = old ? filestore_pread(old, buf, sizeof(buf), 0) : -EBADF;
	t[0] = seconds_since(start);
	why[0] = g_strdup(ep_error_message());
	start = g_get_monotonic_time();
	r[1] = filestore_lstat(fs, p("file"), &st);
	t[1] = seconds_since(start);
	why[1] = g_strdup(ep_error_message());
	start = g_get_monotonic_time();
	r[2] = filestore_readdir(fs, base, list);
	t[2] = seconds_since(start);
	why[2] = g_strdup(ep_error_message());
	start = g_get_monotonic_time();
	r[3] = filestore_mkdir(fs, pf("dir%d", i), 0755);
	t[3] = seconds_since(start);
	why[3] = g_strdup(ep_error_message());
	start = g_get_monotonic_time();
	r[4] = filestore_file_open(fs, p("file"), O_RDONLY, 0, &f);
	if (r[4] == 0) {
		r[4] = filestore_pread(f, buf, sizeof(buf), 0);
		filestore_file_close(f);
	}
	t[4] = seconds_since(start);
	why[4] = g_strdup(ep_error_message());
	for (int k = 0; k < 5; k++) {
		static const char *const names[] = { "read old handle", "lstat", "readdir", "mkdir", "open+read" };

		if (r[k] >= 0)
			failures++;
		*worst = MAX(*worst, t[k]);
		diag("%s: %s after %.2f s: %s", names[k], r[k] >= 0 ? "ok" : ep_errno_name((int)-r[k]), t[k],
		     r[k] >= 0 ? "" : why[k]);
		g_free(why[k]);
	}
	ep_error_clear();
	return failures;
}

static bool transient(long r)
{
	return r == -EIO || r == -ETIMEDOUT || r == -EAGAIN;
}

static int run_fault(const char *dir)
{
	double limit = fs->timeout_ms / 1000.0 + 1.0;
	struct filestore_file *old = NULL, *f = NULL;
	struct stat st;
	char buf[16];
	double worst;
	gint64 start;
	long r = -1;
	int succeeded;

	ctl_dir = dir;
	ok_r(filestore_mkdir(fs, base, 0755), "mkdir %s", base);
	ok_r(write_string(p("file"), "before\n"), "write a file");
	ok_r(filestore_file_open(fs, p("file"), O_RDONLY, 0, &old), "open a handle");
	ok(filestore_pread(old, buf, sizeof(buf), 0) == 7, "read through it");

	/* the script ends the sessions (sshd keeps listening) */
	ctl_signal("ready-kill");
	if (!ctl_wait("killed"))
		return 1;
	g_usleep(300000);
	ok_r(filestore_lstat(fs, p("file"), &st), "after the sessions were killed: lstat works at once");
	ok_r(filestore_mkdir(fs, p("after-kill"), 0755), "mkdir works at once");
	ok(has_content(p("file"), "before\n"), "a new open and read work at once");
	r = old ? filestore_pread(old, buf, sizeof(buf), 0) : 0;
	ok(r == -EIO, "the handle opened before fails with EIO (%s: %s)",
	   r < 0 ? ep_errno_name((int)-r) : "ok", ep_error_message());
	ok_r(filestore_file_close(old), "and can be closed");
	ep_error_clear();
	ok_r(filestore_file_open(fs, p("file"), O_RDONLY, 0, &old), "reopen it");

	/* the script freezes sshd and its sessions with SIGSTOP: nothing answers */
	ctl_signal("ready-freeze");
	if (!ctl_wait("frozen"))
		return 1;
	worst = 0;
	succeeded = fault_ops(old, 1, &worst);
	succeeded += fault_ops(old, 2, &worst);
	ok(succeeded == 0, "with the server frozen, every call fails");
	ok(worst <= limit, "each within the timeout (slowest %.2f s, timeout %d s)", worst,
	   fs->timeout_ms / 1000);

	/* the script kills sshd: connections are refused */
	ctl_signal("ready-stop");
	if (!ctl_wait("stopped"))
		return 1;
	worst = 0;
	succeeded = fault_ops(old, 3, &worst);
	succeeded += fault_ops(old, 4, &worst);
	ok(succeeded == 0, "with the server down, every call fails");
	ok(worst <= limit, "each within the timeout (slowest %.2f s)", worst);
	start = g_get_monotonic_time();
	r = filestore_lstat(fs, p("file"), &st);
	ok(transient(r), "failures are EIO, ETIMEDOUT or EAGAIN (%s: %s)",
	   r < 0 ? ep_errno_name((int)-r) : "ok", ep_error_message());
	ep_error_clear();

	/* the script starts sshd again on the same port */
	ctl_signal("ready-restart");
	if (!ctl_wait("restarted"))
		return 1;
	start = g_get_monotonic_time();
	do {
		r = filestore_lstat(fs, p("file"), &st);
		if (r < 0)
			g_usleep(100000);
	} while (r < 0 && seconds_since(start) < 2 * limit);
	ok_r(r, "the same file store works again after %.2f s", seconds_since(start));
	ok_r(filestore_mkdir(fs, p("after-restart"), 0755), "mkdir");
	ok_r(write_string(p("file"), "after\n"), "write");
	ok(has_content(p("file"), "after\n"), "read");
	ok_r(filestore_file_open(fs, p("file"), O_RDWR, 0, &f), "open");
	ok(filestore_pread(f, buf, sizeof(buf), 0) == 6, "read through a new handle");
	ok_r(filestore_file_close(f), "close it");
	r = filestore_pread(old, buf, sizeof(buf), 0);
	ok(r == -EIO, "the handle from before the outage stays failed with EIO (%s)",
	   r < 0 ? ep_errno_name((int)-r) : "ok");
	filestore_file_close(old);
	ok_r(filestore_remove_tree(fs, base), "remove_tree %s", base);
	ctl_signal("done");
	return tap_done();
}

/* ---- one operation from the command line, for the scripts ---- */

static void print_stat(const char *name, const struct stat *st)
{
	char type = S_ISDIR(st->st_mode) ? 'd' : S_ISLNK(st->st_mode) ? 'l' : S_ISREG(st->st_mode) ? '-' : '?';

	printf("%c %04o %jd %jd.%09ld %s\n", type, st->st_mode & 07777, (intmax_t)st->st_size,
	       (intmax_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, name);
}

static int cmd_ping(char **a)
{
	(void)a;
	return filestore_ping(fs);
}

static int cmd_stat(char **a)
{
	struct stat st;
	int r = filestore_lstat(fs, a[0], &st);

	if (r == 0)
		print_stat(a[0], &st);
	return r;
}

static int cmd_ls(char **a)
{
	g_autoptr(GPtrArray) list = filestore_dirents_new();
	int r = filestore_readdir(fs, a[0], list);

	for (guint i = 0; r == 0 && i < list->len; i++) {
		struct filestore_dirent *d = list->pdata[i];

		print_stat(d->name, &d->st);
	}
	return r;
}

static int cmd_cat(char **a)
{
	struct filestore_file *f;
	g_autofree char *buf = g_malloc(CHUNK);
	off_t off = 0;
	ssize_t n;
	int r = filestore_file_open(fs, a[0], O_RDONLY, 0, &f);

	if (r < 0)
		return r;
	while ((n = filestore_pread(f, buf, CHUNK, off)) > 0) {
		fwrite(buf, 1, (size_t)n, stdout);
		off += n;
	}
	filestore_file_close(f);
	return n < 0 ? (int)n : 0;
}

/* Standard input into path, opened with flags. */
static int put(const char *path, int flags)
{
	struct filestore_file *f;
	g_autofree char *buf = g_malloc(CHUNK);
	off_t off = 0;
	size_t n;
	int r = filestore_file_open(fs, path, O_WRONLY | O_CREAT | flags, 0644, &f);

	if (r < 0)
		return r;
	while (r >= 0 && (n = fread(buf, 1, CHUNK, stdin)) > 0) {
		ssize_t w = filestore_pwrite(f, buf, n, off);

		r = w < 0 ? (int)w : 0;
		off += (off_t)n;
	}
	if (r == 0)
		r = filestore_fsync(f, false);
	if (r == 0)
		return filestore_file_close(f);
	filestore_file_close(f);
	return r;
}

static int cmd_put(char **a)
{
	return put(a[0], O_TRUNC);
}

static int cmd_append(char **a)
{
	return put(a[0], O_APPEND);
}

static int cmd_create(char **a)
{
	return put(a[0], O_EXCL);
}

static int cmd_mkdir(char **a)
{
	return filestore_mkdir(fs, a[0], 0755);
}

static int cmd_rmdir(char **a)
{
	return filestore_rmdir(fs, a[0]);
}

static int cmd_rm(char **a)
{
	return filestore_unlink(fs, a[0]);
}

static int cmd_rm_r(char **a)
{
	return filestore_remove_tree(fs, a[0]);
}

static int cmd_mv(char **a)
{
	return filestore_rename(fs, a[0], a[1], 0);
}

static int cmd_mv_n(char **a)
{
	return filestore_rename(fs, a[0], a[1], RENAME_NOREPLACE);
}

static int cmd_ln_s(char **a)
{
	return filestore_symlink(fs, a[0], a[1]);
}

static int cmd_readlink(char **a)
{
	g_autofree char *target = NULL;
	int r = filestore_readlink(fs, a[0], &target);

	if (r == 0)
		printf("%s\n", target);
	return r;
}

static int cmd_chmod(char **a)
{
	return filestore_chmod(fs, a[1], (mode_t)strtoul(a[0], NULL, 8));
}

/* touch -m -d @SECONDS[.NANOSECONDS] */
static int cmd_touch(char **a)
{
	struct timespec t[2] = { { 0, UTIME_OMIT }, { 0, 0 } };
	char *dot;

	t[1].tv_sec = strtoll(a[0], &dot, 10);
	if (*dot == '.')
		t[1].tv_nsec = strtol(dot + 1, NULL, 10);
	return filestore_utimens(fs, a[1], t);
}

static int cmd_truncate(char **a)
{
	uint64_t size;

	if (value_parse_size(a[0], &size) < 0)
		return ep_errorf(EINVAL, "invalid size '%s'", a[0]);
	return filestore_truncate(fs, a[1], (off_t)size);
}

static int cmd_df(char **a)
{
	struct statvfs sv;
	int r = filestore_statvfs(fs, a[0], &sv);

	if (r == 0)
		printf("bsize %lu blocks %lu bavail %lu files %lu\n", sv.f_bsize, (unsigned long)sv.f_blocks,
		       (unsigned long)sv.f_bavail, (unsigned long)sv.f_files);
	return r;
}

static int cmd_du(char **a)
{
	uint64_t bytes;
	int r = filestore_du(fs, a[0], &bytes);

	if (r == 0)
		printf("%" PRIu64 "\n", bytes);
	return r;
}

static bool print_progress(uint64_t done, uint64_t total, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "progress %" PRIu64 " %" PRIu64 "\n", done, total);
	return true;
}

static int cmd_cp_r(char **a)
{
	return filestore_copy_tree(fs, a[0], a[1], print_progress, NULL);
}

/* Throughput: write SIZE bytes to PATH in CHUNK-sized writes, or read PATH. */
static int bench(const char *path, uint64_t size, size_t chunk, bool writing)
{
	g_autofree char *buf = g_malloc(chunk);
	struct filestore_file *f;
	uint64_t done = 0;
	gint64 start = g_get_monotonic_time();
	int r = filestore_file_open(fs, path, writing ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY, 0644, &f);

	if (r < 0)
		return r;
	fill_pattern(buf, chunk, 1, 0);
	while (r == 0 && (!writing || done < size)) {
		ssize_t n = writing ? filestore_pwrite(f, buf, chunk, (off_t)done)
		                    : filestore_pread(f, buf, chunk, (off_t)done);

		if (n < 0)
			r = (int)n;
		else if (n == 0)
			break;
		else
			done += (uint64_t)n;
	}
	if (r == 0 && writing)
		r = filestore_fsync(f, false);
	if (r == 0)
		r = filestore_file_close(f);
	else
		filestore_file_close(f);
	if (r == 0)
		printf("%s %" PRIu64 " bytes in %.2f s: %.1f MiB/s\n", writing ? "wrote" : "read", done,
		       seconds_since(start), (double)done / MiB / seconds_since(start));
	return r;
}

static int cmd_bench_write(char **a)
{
	uint64_t size, chunk;

	if (value_parse_size(a[1], &size) < 0 || value_parse_size(a[2], &chunk) < 0 || chunk == 0)
		return ep_errorf(EINVAL, "invalid size");
	return bench(a[0], size, (size_t)chunk, true);
}

static int cmd_bench_read(char **a)
{
	uint64_t chunk;

	if (value_parse_size(a[1], &chunk) < 0 || chunk == 0)
		return ep_errorf(EINVAL, "invalid chunk size '%s'", a[1]);
	return bench(a[0], 0, (size_t)chunk, false);
}

static const struct command {
	const char *name;
	const char *args;
	int (*run)(char **args);
} commands[] = {
	{ "ping", "", cmd_ping },
	{ "stat", "PATH", cmd_stat },
	{ "ls", "DIR", cmd_ls },
	{ "cat", "FILE", cmd_cat },
	{ "put", "FILE", cmd_put },
	{ "append", "FILE", cmd_append },
	{ "create", "FILE", cmd_create },
	{ "mkdir", "DIR", cmd_mkdir },
	{ "rmdir", "DIR", cmd_rmdir },
	{ "rm", "FILE", cmd_rm },
	{ "rm-r", "PATH", cmd_rm_r },
	{ "mv", "FROM TO", cmd_mv },
	{ "mv-n", "FROM TO", cmd_mv_n },
	{ "ln-s", "TARGET PATH", cmd_ln_s },
	{ "readlink", "PATH", cmd_readlink },
	{ "chmod", "MODE PATH", cmd_chmod },
	{ "touch", "SECONDS[.NS] PATH", cmd_touch },
	{ "truncate", "SIZE FILE", cmd_truncate },
	{ "df", "PATH", cmd_df },
	{ "du", "PATH", cmd_du },
	{ "cp-r", "SRC DST", cmd_cp_r },
	{ "bench-write", "FILE SIZE CHUNK", cmd_bench_write },
	{ "bench-read", "FILE CHUNK", cmd_bench_read },
};

static int usage(void)
{
	fprintf(stderr, "usage: filestore-test CONFIG [COMMAND ARGS... | fault CTLDIR]\ncommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(stderr, "  %s %s\n", commands[i].name, commands[i].args);
	return 2;
}

static int run_command(int argc, char **argv)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		const struct command *c = &commands[i];
		g_auto(GStrv) words = g_strsplit(c->args, " ", -1);
		int nargs = c->args[0] ? (int)g_strv_length(words) : 0;
		int r;

		if (strcmp(argv[0], c->name) != 0)
			continue;
		if (argc - 1 != nargs)
			return usage();
		r = c->run(argv + 1);
		fflush(stdout);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", ep_errno_name(-r), ep_error_message());
			return 1;
		}
		return 0;
	}
	return usage();
}

int main(int argc, char **argv)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autoptr(GError) error = NULL;
	int status;
	int r;

	if (argc < 2)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* modes in the tests are what was asked for */
	umask(022);
	if (!g_key_file_load_from_file(config, argv[1], G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "EINVAL: %s: %s\n", argv[1], error->message);
		return 1;
	}
	r = filestore_open(config, &fs);
	if (r < 0) {
		if (argc == 2)
			printf("Bail out! cannot open the file store: %s: %s\n", ep_errno_name(-r),
			       ep_error_message());
		else
			fprintf(stderr, "%s: %s\n", ep_errno_name(-r), ep_error_message());
		return 1;
	}
	garbage = g_ptr_array_new_with_free_func(g_free);
	snprintf(base, sizeof(base), "ft-%08x", g_random_int());
	if (argc == 2)
		status = run_tests();
	else if (strcmp(argv[2], "fault") == 0 && argc == 4)
		status = run_fault(argv[3]);
	else
		status = run_command(argc - 2, argv + 2);
	filestore_close(fs);
	g_ptr_array_unref(garbage);
	return status;
}
