/* fs.h: the FUSE core (libfuse3 low-level API).
 *
 * Inodes, lookup/forget accounting, per-open handles with the content
 * rendered once at open, kernel caching and its explicit invalidation.  It
 * knows nothing of databases or hypervisors: every operation goes to tree.h.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>

struct fs_options {
	double entry_timeout;
	double attr_timeout;
	gid_t admin_gid;
};

/* The operation table handed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_ops;

/* Set up the inode table; call before the session starts. */
void fs_init(const struct fs_options *opts);
/* Start the invalidation thread for session se (after mounting). */
void fs_start(struct fuse_session *se);
/* Stop the invalidation thread and free everything. */
void fs_shutdown(void);

/* The stable inode number of a path: the same on every host and mount. */
fuse_ino_t fs_ino(const char *path);

/* The content or attributes at path changed: drop what we and the kernel cache. */
void fs_invalidate(const char *path);
/* The entry name in directory parent appeared or went away. */
void fs_invalidate_entry(const char *parent, const char *name);
