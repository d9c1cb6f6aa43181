/* tree_store.c: the file-store nodes: owners, modes and the calls a disk has. */
#include "tree_store.h"
#include "epfs.h"
#include "error.h"
#include "filestore.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pwd.h>
#include <string.h>

static bool store_keeps_owners(void)
{
	return epfs_files && (epfs_files->caps & FILESTORE_CAP_CHOWN);
}

void store_stat_fix(struct ep_node_info *n, struct stat *st)
{
	struct passwd pw, *found = NULL;
	char buf[1024];
	gid_t owner_gid = tree_admin_gid;

	/* the owner's own group, as their home directory would show */
	if (n->owner && getpwuid_r(n->owner, &pw, buf, sizeof(buf), &found) == 0 && found)
		owner_gid = pw.pw_gid;
	/* what epfs itself made (uid 0 on the store) belongs to the record's owner;
	 * a store that keeps no owners shows the record's owner throughout */
	if (!store_keeps_owners() || st->st_uid == 0)
		st->st_uid = n->owner;
	if (!store_keeps_owners() || st->st_gid == 0)
		st->st_gid = owner_gid;
	if (n->kind->read_only)
		/* as on a read-only mount: the copied modes, readable by all */
		st->st_mode |= S_ISDIR(st->st_mode) ? 0555 : 0444;
	else if (n->store->read_only)
		st->st_mode &= ~(mode_t)0222;
	if (!st->st_nlink)
		st->st_nlink = 1;
}

int store_may_write(struct ep_ctx *ctx, struct ep_node_info *n)
{
	if (n->kind->read_only)
		return ep_errorf(EROFS, "%s/ is read-only: cp -a makes a private copy", n->kind->name);
	if (n->store->read_only)
		return ep_errorf(EROFS, "%s/ is read-only: it holds copies", n->store->name);
	if (!ctx->admin && ctx->uid != n->owner)
		return ep_errorf(EACCES, "only the owner changes these files");
	return 0;
}

char *store_child(struct ep_node_info *n, const char *name, int *r)
{
	*r = 0;
	if (g_str_has_prefix(name, FILESTORE_TEMP_PREFIX)) {
		*r = ep_errorf(EINVAL, "names starting with %s are the store's own", FILESTORE_TEMP_PREFIX);
		return NULL;
	}
	return g_strconcat(n->store_path, "/", name, NULL);
}

void store_made(struct ep_ctx *ctx, const char *path, mode_t mode, bool symlink)
{
	/* the kernel applied the caller's umask already; undo the daemon's own */
	if (!symlink && (mode & 0022))
		filestore_chmod(epfs_files, path, mode & 07777);
	if (store_keeps_owners() && ctx->uid != 0)
		filestore_chown(epfs_files, path, ctx->uid, ctx->gid);
	ep_error_clear();
}

bool tree_store_inodes(void)
{
	return epfs_files && (epfs_files->caps & FILESTORE_CAP_INODES);
}

int tree_statfs(struct statvfs *out)
{
	int r = epfs_files ? filestore_statvfs(epfs_files, "", out) : -ENOSYS;

	if (r < 0) {
		memset(out, 0, sizeof(*out));
		out->f_bsize = 4096;
		out->f_frsize = 4096;
	}
	out->f_namemax = 255;
	return 0;
}

int tree_store_permits(struct ep_ctx *ctx, const struct stat *st, int mask)
{
	mode_t bits;

	mask &= R_OK | W_OK | X_OK;
	/* root and the platform's admins pass, as root on a disk: execute needs an x bit */
	if (ctx->uid == 0 || ctx->admin) {
		if ((mask & X_OK) && !S_ISDIR(st->st_mode) && !(st->st_mode & 0111))
			return -EACCES;
		return 0;
	}
	if (ctx->uid == st->st_uid)
		bits = (st->st_mode >> 6) & 7;
	else if (ctx_in_group(ctx, st->st_gid))
		bits = (st->st_mode >> 3) & 7;
	else
		bits = st->st_mode & 7;
	return ((mode_t)mask & ~bits) ? -EACCES : 0;
}

int tree_store_open(struct ep_ctx *ctx, struct ep_node_info *n, int flags, mode_t mode,
                    struct filestore_file **out)
{
	int acc = flags & O_ACCMODE;
	struct stat st;
	bool created = false;
	int r;

	if (n->type != N_STORE)
		return -EINVAL;
	if ((acc != O_RDONLY || (flags & (O_CREAT | O_TRUNC))) && (r = store_may_write(ctx, n)) < 0)
		return r;
	if (flags & O_CREAT)
		created = filestore_lstat(epfs_files, n->store_path, &st) == -ENOENT;
	ep_error_clear();
	r = filestore_file_open(epfs_files, n->store_path, flags & FILESTORE_OPEN_FLAGS, mode & 07777, out);
	if (r == 0 && created)
		store_made(ctx, n->store_path, mode, false);
	return r;
}

/* chown: root and admins to anything, the owner its group to one of its groups. */
static int store_chown(struct ep_ctx *ctx, struct ep_node_info *n, const struct stat *cur, uid_t uid, gid_t gid)
{
	if (uid == cur->st_uid)
		uid = (uid_t)-1;
	if (gid == cur->st_gid)
		gid = (gid_t)-1;
	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	if (!ctx->admin && ctx->uid != 0) {
		if (uid != (uid_t)-1)
			return ep_errorf(EPERM, "only root gives a file away");
		if (ctx->uid != cur->st_uid || !ctx_in_group(ctx, gid))
			return ep_errorf(EPERM, "the owner changes the group to one of its own groups only");
	}
	if (!store_keeps_owners())
		return ep_errorf(EPERM, "the %s file store keeps no owners: files belong to the record's owner",
		                 epfs_files->ops->name);
	return filestore_chown(epfs_files, n->store_path, uid, gid);
}

int tree_store_setattr(struct ep_ctx *ctx, struct ep_node_info *n, const struct stat *attr, int to_set,
                       struct filestore_file *f, const struct stat *cur)
{
	bool owner = ctx->uid == 0 || ctx->admin || ctx->uid == cur->st_uid;
	int r;

	if (n->type != N_STORE)
		return -EINVAL;
	/* setting what is there already changes nothing, and succeeds */
	if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) == (cur->st_mode & 07777))
		to_set &= ~FUSE_SET_ATTR_MODE;
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid == cur->st_uid)
		to_set &= ~FUSE_SET_ATTR_UID;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid == cur->st_gid)
		to_set &= ~FUSE_SET_ATTR_GID;
	if ((to_set & FUSE_SET_ATTR_SIZE) && !f && attr->st_size == cur->st_size && S_ISREG(cur->st_mode))
		to_set &= ~FUSE_SET_ATTR_SIZE;
	if (!(to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE |
	                FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
		return 0;
	if ((r = store_may_write(ctx, n)) < 0)
		return r;
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		r = store_chown(ctx, n, cur, (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
		                (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1);
		if (r < 0)
			return r;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		mode_t mode = attr->st_mode & 07777;
		if (!owner)
			return ep_errorf(EPERM, "only the file's owner changes its mode");
		/* as the kernel: the set-group-ID bit needs the file's group */
		if (ctx->uid != 0 && !ctx->admin && !S_ISDIR(cur->st_mode) && !ctx_in_group(ctx, cur->st_gid))
			mode &= ~(mode_t)S_ISGID;
		if ((r = filestore_chmod(epfs_files, n->store_path, mode)) < 0)
			return r;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!f && (r = tree_store_permits(ctx, cur, W_OK)) < 0)
			return ep_errorf(EACCES, "permission denied by the file's mode %o", cur->st_mode & 07777);
		r = f ? filestore_ftruncate(f, attr->st_size) : filestore_truncate(epfs_files, n->store_path, attr->st_size);
		if (r < 0)
			return r;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec times[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		bool now = (!(to_set & FUSE_SET_ATTR_ATIME) || (to_set & FUSE_SET_ATTR_ATIME_NOW)) &&
		           (!(to_set & FUSE_SET_ATTR_MTIME) || (to_set & FUSE_SET_ATTR_MTIME_NOW));
		/* as utimensat(2): the owner sets any time, who may write sets "now" */
		if (!owner && (!now || tree_store_permits(ctx, cur, W_OK) < 0))
			return ep_errorf(now ? EACCES : EPERM, "only the file's owner sets its times");
		if (to_set & FUSE_SET_ATTR_ATIME)
			times[0] = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? (struct timespec){ 0, UTIME_NOW } : attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME)
			times[1] = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? (struct timespec){ 0, UTIME_NOW } : attr->st_mtim;
		if ((r = filestore_utimens(epfs_files, n->store_path, times)) < 0)
			return r;
	}
	return 0;
}

int tree_mknod(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, mode_t mode)
{
	g_autofree char *p = NULL;
	int r;

	if (parent->type != N_STORE)
		return ep_errorf(EPERM, "%s: files are attributes and cannot be created here", name);
	if (!(p = store_child(parent, name, &r)) || (r = store_may_write(ctx, parent)) < 0)
		return r;
	if (S_ISREG(mode)) {
		struct filestore_file *f = NULL;
		if ((r = filestore_file_open(epfs_files, p, O_WRONLY | O_CREAT | O_EXCL, mode & 07777, &f)) < 0)
			return r;
		filestore_file_close(f);
	} else if ((r = filestore_mknod(epfs_files, p, mode)) < 0) {
		return r;
	}
	store_made(ctx, p, mode, false);
	return 0;
}

int tree_link(struct ep_ctx *ctx, struct ep_node_info *n, struct ep_node_info *newparent, const char *newname)
{
	g_autofree char *to = NULL;
	int r;

	if (n->type != N_STORE || newparent->type != N_STORE)
		return ep_errorf(EPERM, "%s: hard links are made between files of the file store only", newname);
	if (strcmp(n->store_root, newparent->store_root))
		return ep_errorf(EXDEV, "%s: hard links stay within one record's directory", newname);
	if (!(to = store_child(newparent, newname, &r)) || (r = store_may_write(ctx, newparent)) < 0)
		return r;
	return filestore_link(epfs_files, n->store_path, to);
}
