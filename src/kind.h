/* kind.h: resource kinds, declared as tables of attributes.
 *
 * A kind (images, volumes, ...) is one source file that fills a struct
 * ep_kind: its table, its attributes (one row each: name, column, type,
 * flags) and its actions (create on mkdir, remove on rmdir).  The generic
 * code here renders attributes, parses and validates written values, builds
 * info.json and applies writes as one transaction.  The FUSE core knows
 * nothing about tables or backends; it calls the tree (tree.h), which calls
 * this.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct db_conn;
struct ep_kind;

/* Who is asking, and the database transaction a write runs in. */
struct ep_ctx {
	uid_t uid;
	gid_t gid;
	bool admin;             /* root, a member of the admin group, or a user of role admin */
	bool teacher;           /* a user of role teacher */
	char user[64];          /* the platform user the uid maps to ("" if none) */
	struct db_conn *db;     /* set while a write transaction is open */
	/* the caller's supplementary groups, read on first use (ctx_in_group) */
	int ngroups;            /* -1 until read */
	gid_t groups[64];
	int (*read_groups)(struct ep_ctx *ctx, gid_t *out, int max);
	void *source;           /* what read_groups reads them from (the FUSE request) */
};

/* Is gid ctx's group, or one of its supplementary groups? */
bool ctx_in_group(struct ep_ctx *ctx, gid_t gid);

/* Who is asking: maps ctx->uid to a platform user and its role (users.c). */
void ctx_identify(struct ep_ctx *ctx);

/* One loaded record. */
struct ep_obj {
	const struct ep_kind *kind;
	char *key;              /* "id", or "parent/id" for nested kinds */
	char *id;               /* the last component of key */
	char *parent_key;       /* NULL for top-level kinds */
	GHashTable *row;        /* column -> value (interned names; NULL value = SQL NULL) */
	char *errors;           /* the rendered error log */
	int64_t mtime_us;       /* last change of the record */
	int64_t ctime_us;       /* create_time */
};

enum attr_type {
	AT_LINE,                /* one line of text */
	AT_TEXT,                /* free text, may span lines */
	AT_ID,                  /* an id or empty */
	AT_SIZE,                /* bytes; writes accept K/M/G/T */
	AT_INT,
	AT_BOOL,
	AT_TIME,                /* ISO-8601 UTC */
	AT_ENUM,
	AT_LINK,                /* a symlink to another resource (column holds its id) */
	AT_INFO,                /* info.json */
	AT_ERROR,               /* the error log */
	AT_EVENTS,              /* what happened lately; poll(2) wakes on news */
};

enum attr_flags {
	ATTR_RO = 1 << 0,       /* mode 0444, writes are EACCES */
	ATTR_LIVE = 1 << 1,     /* value from a backend, not the record: no page caching */
	ATTR_NOINFO = 1 << 2,   /* not part of info.json */
	ATTR_ADMIN = 1 << 4,    /* only admins write it, even in a record its owner may change */
	ATTR_ACTION = 1 << 3,   /* apply() is an action (start, attach...): it runs after the
	                         * record's transaction, with ctx->db NULL, and may take long */
	ATTR_WHOLE = 1 << 6,    /* applied once, when the file is closed, to all that was
	                         * written (a batch that must not be cut into pieces) */
};

struct ep_attr {
	const char *name;
	const char *column;             /* backing column, or NULL when rendered */
	enum attr_type type;
	unsigned flags;
	const char *const *choices;     /* AT_ENUM: the accepted words */
	int64_t min, max;               /* AT_INT, AT_SIZE (max 0 = none) */
	/* AT_LINK: the top-level kind the column names ("instances"); the link
	 * points at it relative to the object's directory */
	const char *link_kind;
	/* AT_LINK to a nested kind instead (templates/<t>/snapshot@ -> instances/<i>/snapshots/<s>):
	 * the column holds the record's key "<parent>/<id>" */
	const struct ep_kind *link_nested;
	/* Append the value (without the newline) to out, instead of the column. */
	int (*render)(struct ep_obj *o, GString *out);
	/* Check and canonicalise a written value beyond its type (may be NULL). */
	int (*validate)(struct ep_ctx *ctx, struct ep_obj *o, const char *value, char **canon);
	/* Carry out the write of a canonical value (instead of updating the
	 * column): runs inside the write transaction on ctx->db. */
	int (*apply)(struct ep_ctx *ctx, struct ep_obj *o, const char *canon);
};

/* A directory of symlinks to records of another kind, made with ln -s and
 * removed with rm (instances/<i>/volumes/<v>@ -> ../../../volumes/<v>). */
struct ep_relation {
	const char *name;                   /* "volumes" */
	const char *target;                 /* the top-level kind linked to: "volumes" */
	const char *column;                 /* the target's column naming us: "instance_id" */
	/* ln -s: relate o and t (t is not related to anything yet) */
	int (*link)(struct ep_ctx *ctx, struct ep_obj *o, struct ep_obj *t);
	/* rm: undo it */
	int (*unlink)(struct ep_ctx *ctx, struct ep_obj *o, struct ep_obj *t);
};

/* A directory whose files live in the file store (users/<u>/projects/<p>/work/). */
struct ep_store_dir {
	const char *name;                   /* "work" */
	bool read_only;                     /* input/: copies nobody edits in place */
	/* The directory's path in the file store for record o (newly allocated). */
	char *(*path)(struct ep_obj *o);
};

/* A directory of generated read-only files in a record (datasets' preview/). */
struct ep_gen_dir {
	const char *name;                   /* "preview" */
	/* The names of its files (char *, appended to out). */
	int (*list)(struct ep_obj *o, GPtrArray *out);
	/* The content of file name (ENOENT if there is none); for symlinks, the target. */
	int (*render)(struct ep_obj *o, const char *name, GString *out);
	/* Its entries are symlinks, made with ln -s and removed with rm. */
	bool symlinks;
	int (*link)(struct ep_ctx *ctx, struct ep_obj *o, const char *name, const char *target);
	int (*unlink)(struct ep_ctx *ctx, struct ep_obj *o, const char *name);
};

/* A generated file that belongs to a collection (e.g. images/.unregistered). */
struct ep_special {
	const char *name;
	int (*render)(struct ep_ctx *ctx, GString *out);
};

struct ep_kind {
	const char *name;               /* directory name: "images" */
	const char *table;              /* "image" */
	const struct ep_kind *parent;   /* NULL for top-level kinds */
	const char *parent_column;      /* column holding the parent's id */
	const struct ep_attr *attrs;    /* terminated by an entry with name NULL */
	const struct ep_special *specials;  /* collection files, terminated by NULL name */
	const struct ep_relation *relations;/* symlink directories, terminated by NULL name */
	/* mkdir: create the record (and whatever else) in ctx->db's transaction */
	int (*create)(struct ep_ctx *ctx, const char *parent_key, const char *id);
	/* rmdir: remove it */
	int (*remove)(struct ep_ctx *ctx, struct ep_obj *o);
	/* Who may write (default: admins); o is NULL for creating one. */
	bool (*may_write)(struct ep_ctx *ctx, struct ep_obj *o);
	/* Who may mkdir one under parent_key (default: may_write(ctx, NULL)). */
	bool (*may_create)(struct ep_ctx *ctx, const char *parent_key);
	/* Who may see it (o NULL: the collection); the rest is absent (default: admins
	 * and teachers see everything, students nothing). */
	bool (*visible)(struct ep_ctx *ctx, struct ep_obj *o);
	/* The uid that owns it, as stat shows (default root). */
	uid_t (*owner)(struct ep_obj *o);
	/* Directories of files in the file store, by name (projects/<p>/work...). */
	const struct ep_store_dir *store_dirs;
	/* The record has snippets/, a tree of text files kept in the database. */
	bool has_snippets;
	/* Directories of generated files, by name. */
	const struct ep_gen_dir *gen_dirs;
	/* A view nobody changes through it (public/): its directories show 0555, its
	 * store dirs are read by everybody and changed by nobody (EROFS). */
	bool read_only;
	/* One record per parent, shown as a directory named after the kind right in
	 * the parent's (users/<u>/service/), keyed by the parent's key; parent_column
	 * is NULL and the table's id is that key.  A parent without one shows a
	 * blank record (every column NULL but id). */
	bool singleton;
	/* After a record changed (here or, through change_log, elsewhere): drop
	 * other views built from it (may be NULL). */
	void (*changed)(const char *key);
	/* At start-up: finish or undo an operation a crash interrupted (jobs.h). */
	int (*recover)(const char *op, const char *key, const char *step, const char *data);
};

/* Every kind, in the order of the root directory. */
extern const struct ep_kind *const ep_kinds[];

const struct ep_kind *kind_by_name(const struct ep_kind *parent, const char *name);
const struct ep_attr *kind_attr(const struct ep_kind *k, const char *name);

/* Load one record (one query, served from the cache when fresh).  ENOENT if missing. */
int kind_load(const struct ep_kind *k, const char *key, struct ep_obj **out);
/* A record of k with only its id set (a singleton nobody has written yet). */
struct ep_obj *kind_blank(const struct ep_kind *k, const char *key);
/* Load every record of a collection (one query) into out (GPtrArray of ep_obj*). */
int kind_list(const struct ep_kind *k, const char *parent_key, GPtrArray *out);
struct ep_obj *obj_ref(struct ep_obj *o);
void obj_unref(struct ep_obj *o);
typedef struct ep_obj ep_obj;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ep_obj, obj_unref)

/* A column's value in o, or NULL. */
const char *obj_get(const struct ep_obj *o, const char *column);

/* Render attribute a of o into out (with its trailing newline).  For AT_LINK,
 * the symlink target.  -ENOENT if the attribute is absent (unset link). */
int attr_render(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, GString *out);

/* Write value (as written to the file) to attribute a.  Refused writes change
 * nothing.  0 or -errno. */
int attr_write(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *value);

/* True when a written buffer is not yet a complete value (an info.json
 * object still being written in several chunks). */
bool attr_incomplete(const struct ep_attr *a, const char *buf, size_t len);

/* mkdir / rmdir of a record, in one transaction.  0 or -errno. */
int kind_create(struct ep_ctx *ctx, const struct ep_kind *k, const char *parent_key, const char *id);
int kind_remove(struct ep_ctx *ctx, struct ep_obj *o);

/* The mode of an attribute file for ctx (0644 or 0444). */
mode_t attr_mode(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a);
bool kind_may_write(struct ep_ctx *ctx, const struct ep_kind *k, struct ep_obj *o);
bool kind_visible(struct ep_ctx *ctx, const struct ep_kind *k, struct ep_obj *o);
uid_t kind_owner(const struct ep_kind *k, struct ep_obj *o);

/* The relative path from o's directory up to the mount root ("../.." for images/x). */
char *obj_path_to_root(const struct ep_obj *o);

/* The relation of k called name, or NULL. */
const struct ep_relation *kind_relation(const struct ep_kind *k, const char *name);
/* Records of rel->target related to o (new references into out). */
int relation_list(const struct ep_relation *rel, struct ep_obj *o, GPtrArray *out);
/* ln -s target name: relate o and the record target names. */
int relation_link(struct ep_ctx *ctx, const struct ep_relation *rel, struct ep_obj *o, const char *name,
                  const char *target);
/* rm name: undo it. */
int relation_unlink(struct ep_ctx *ctx, const struct ep_relation *rel, struct ep_obj *o, const char *name);

/* ln -s target attr (a writable AT_LINK attribute), and rm attr. */
int link_attr_set(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *target);
int link_attr_clear(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a);

/* Generic helpers for kinds: run an UPDATE of one column of o in ctx->db. */
int obj_set(struct ep_ctx *ctx, struct ep_obj *o, const char *column, const char *value);

/* Drop o's cached record and tell the kernel (after a change). */
void kind_changed(const struct ep_kind *k, const char *key);
