/* tree.h: the shape of the mounted tree.
 *
 * Turns paths ("images/foo/size") into nodes (a collection, a record, an
 * attribute, a generated file) and carries out what each operation means for
 * them.  Paths are relative to the mount root, without leading slash; the
 * root is "".  The FUSE core (fs.c) deals in inodes and handles and calls
 * only these functions.
 */
#pragma once

#include "kind.h"

#include <sys/stat.h>

enum node_type {
	N_ROOT,
	N_COLLECTION,           /* images/, instances/i1/snapshots/ */
	N_OBJECT,               /* images/foo/ */
	N_ATTR,                 /* images/foo/size, or a symlink attribute */
	N_SPECIAL,              /* images/.unregistered */
	N_META_DIR,             /* .epfs/ */
	N_META_FILE,            /* .epfs/stats */
	N_RELDIR,               /* instances/i1/volumes/: a directory of relation links */
	N_RELLINK,              /* instances/i1/volumes/v1 -> ../../../volumes/v1 */
	N_STORE,                /* users/u/projects/p/work/...: a file in the file store */
	N_GENDIR,               /* users/u/datasets/d/preview/ */
	N_GENFILE,              /* users/u/datasets/d/preview/data.csv */
	N_SNIP,                 /* users/u/snippets/...: a node of the snippet tree */
	N_GROUP,                /* public/: a directory grouping top-level kinds named "public/..." */
};

/* A file under .epfs/. */
struct meta_file {
	const char *name;
	int (*render)(struct ep_ctx *ctx, GString *out);
};
extern const struct meta_file meta_files[];

struct ep_node_info {
	enum node_type type;
	const struct ep_kind *kind;
	char *key;              /* record key (N_OBJECT, N_ATTR), parent key (N_COLLECTION, N_SPECIAL),
	                         * the group's name (N_GROUP) */
	const struct ep_attr *attr;
	const struct ep_special *special;
	const struct meta_file *meta;
	struct ep_obj *obj;     /* the record (N_OBJECT, N_ATTR, N_RELDIR, N_RELLINK) */
	const struct ep_relation *rel;  /* N_RELDIR, N_RELLINK */
	struct ep_obj *target;  /* N_RELLINK: the record linked to */
	const struct ep_store_dir *store;  /* N_STORE: the store directory it is under */
	char *store_root;       /* N_STORE: that directory's path in the file store */
	char *store_path;       /* N_STORE: this file's path in the file store */
	uid_t owner;            /* N_STORE: who owns the files (the record's owner) */
	const struct ep_gen_dir *gen;   /* N_GENDIR, N_GENFILE */
	char *gen_name;         /* N_GENFILE */
	struct snip *snip;      /* N_SNIP: the node (id 0: snippets/ itself) */
	bool gated;             /* whether one may see this entry depends on who asks */
};

void node_info_clear(struct ep_node_info *n);

/* Resolve a path; -ENOENT if it names nothing, or nothing ctx may see. */
int tree_resolve(struct ep_ctx *ctx, const char *path, struct ep_node_info *out);

/* Fill st for a node.  For files, also render their content into content
 * (so st_size is exact and the same bytes can be served at open). */
int tree_stat(struct ep_ctx *ctx, struct ep_node_info *n, struct stat *st, GString *content);

/* Render a file's content (or a symlink's target). */
int tree_render(struct ep_ctx *ctx, struct ep_node_info *n, GString *out);

/* Called for each entry of a directory listing; content is the file's bytes (or NULL). */
typedef void (*tree_entry_cb)(void *data, const char *name, const struct stat *st, GString *content);
int tree_list(struct ep_ctx *ctx, struct ep_node_info *dir, tree_entry_cb cb, void *data);

/* May ctx open this file for writing?  0, or -EACCES / -EISDIR. */
int tree_may_write(struct ep_ctx *ctx, struct ep_node_info *n);
/* Write a value to a file. */
int tree_write(struct ep_ctx *ctx, struct ep_node_info *n, const char *value);
/* True while a partially written buffer cannot be applied yet. */
bool tree_write_incomplete(struct ep_node_info *n, const char *buf, size_t len);

int tree_mkdir(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, mode_t mode);
/* rename(2) of n to newname in newparent (the file store only). */
int tree_rename(struct ep_ctx *ctx, struct ep_node_info *n, struct ep_node_info *newparent,
                const char *newname, unsigned flags);
/* Snippets: create a file, read it, write it back whole, and set its size or time. */
int tree_snip_create(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, uint64_t *id);
int tree_snip_setattr(struct ep_ctx *ctx, struct ep_node_info *n, const struct stat *attr, int to_set);

/* Open (or with O_CREAT create) a file of the file store. */
struct filestore_file;
int tree_store_open(struct ep_ctx *ctx, struct ep_node_info *n, int flags, mode_t mode,
                    struct filestore_file **out);
/* chmod, chown, truncate, utimens of a file of the file store (f: its open
 * file, or NULL; cur: its attributes as shown).  Setting the current values
 * succeeds for whoever may see the file. */
int tree_store_setattr(struct ep_ctx *ctx, struct ep_node_info *n, const struct stat *attr, int to_set,
                       struct filestore_file *f, const struct stat *cur);
/* May ctx do mask (R_OK, W_OK, X_OK) on a store object shown as st?  As the
 * kernel's permission check: owner, group or other bits; root and admins pass. */
int tree_store_permits(struct ep_ctx *ctx, const struct stat *st, int mask);
/* True if a store object's st_ino is its identity (hard links share it). */
bool tree_store_inodes(void);
/* mknod(2) in a store directory: regular files, fifos and sockets. */
int tree_mknod(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, mode_t mode);
/* link(2) of the store file n as newparent/newname. */
int tree_link(struct ep_ctx *ctx, struct ep_node_info *n, struct ep_node_info *newparent, const char *newname);
/* statfs(2): the file store's capacity (the record tree has no size of its own). */
#include <sys/statvfs.h>
int tree_statfs(struct statvfs *out);
/* Whether the entries of dir are each gated (see ep_node_info.gated). */
bool tree_children_gated(struct ep_node_info *dir);
/* ln -s target parent/name. */
int tree_symlink(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, const char *target);
/* rm of the node n, whose name is name. */
int tree_unlink(struct ep_ctx *ctx, struct ep_node_info *n, const char *name);
int tree_rmdir(struct ep_ctx *ctx, struct ep_node_info *n);

/* The path of a record's directory ("instances/i1/snapshots/s1"). */
char *tree_object_path(const struct ep_kind *k, const char *key);

/* The resource a node belongs to, for its error log: kind and key, or NULLs. */
void tree_error_target(struct ep_node_info *n, const char **kind, const char **key);

/* A record changed: invalidate every cached view of it. */
void tree_changed(const struct ep_kind *k, const char *key);

/* The time the mount started, for nodes without a record. */
extern struct timespec tree_mount_time;
/* The group that owns admin-managed resources. */
extern gid_t tree_admin_gid;
