/* fs.c: the FUSE low-level operations. */
#include "fs.h"
#include "errlog.h"
#include "events.h"
#include "filestore.h"
#include "snippets.h"
#include "error.h"
#include "stats.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#define WRITE_MAX (1 << 20)     /* the largest value one may write to a file */

/* An inode the kernel knows about.
 *
 * Records and everything the platform generates have path-derived numbers
 * (the same on every mount and after a remount; the top bit clear).  A file
 * or directory of the file store has the store's identity instead (the top
 * bit set): the local store's own inode number, or a number allocated here
 * for a store that has none (SFTP).  It keeps that identity when renamed, a
 * new object at an old name gets a new one, and a hard link is the same
 * inode.  path is where the object is now; NULL once it is unlinked or
 * replaced (an open file still works through its handles). */
struct node {
	fuse_ino_t ino;
	char *path;
	GPtrArray *aliases;     /* the other names of a hard-linked store file */
	mode_t fmt;             /* S_IFMT bits of a store object */
	bool store;             /* a node of the file store: its modes are checked here */
	struct stat attr;       /* the attributes last replied */
	uint64_t nlookup;
	GArray *open;           /* fh numbers of open store files on this inode */
	GString *snap;          /* content rendered at the last stat, served at open */
	gint64 snap_time;
};

#define INO_STORE (1ULL << 63)          /* a file-store object */
#define INO_ALLOCATED (1ULL << 62)      /* ... numbered here, the store having no inodes */
#define INO_SNIP (1ULL << 62)           /* without INO_STORE: a snippet, by its id */

/* An open file. */
struct handle {
	GMutex lock;            /* writes, flushes and truncation of one handle in turn */
	char *path;
	fuse_ino_t ino;
	struct filestore_file *sf;  /* a file of the file store: reads and writes go to it */
	bool snippet;           /* a snippet: what is written is stored whole at flush */
	uint64_t snip_id;
	GString *buf;           /* content rendered at open */
	GString *wbuf;          /* what has been written */
	bool dirty;             /* wbuf holds a value not yet applied */
	bool writable;
	bool events;            /* an events file: re-rendered at offset 0 after news */
	bool live;              /* a live value (a console log): re-rendered when read past its end */
	uint64_t events_seq;    /* the newest event in buf */
};

/* An open directory: its listing, taken at opendir. */
struct dir_entry {
	char *name;
	struct stat st;
};
struct dir_handle {
	GArray *entries;        /* struct dir_entry, starting with . and .. */
	bool store;             /* the entries are file-store objects */
	bool gated;             /* each entry's visibility depends on who asks */
};

/* Open files and directories by number: a request that races with release
 * (the kernel sends release when a reader was interrupted) finds nothing
 * instead of freed memory. */
struct fh_entry {
	gint refs;
	void *obj;
	GDestroyNotify free;
};

enum inval_kind { INVAL_INODE, INVAL_ENTRY };
struct inval {
	enum inval_kind kind;
	fuse_ino_t ino;
	char *name;
};

static struct {
	struct fs_options opt;
	GMutex lock;
	GHashTable *nodes;      /* ino -> struct node */
	GHashTable *paths;      /* path -> struct node at that path */
	GHashTable *busy;       /* directory ino -> requests that may hold its lock */
	GHashTable *handles;    /* fh -> struct fh_entry */
	uint64_t next_fh;
	uint64_t next_ino;      /* for stores without inode numbers */
	struct fuse_session *se;
	GAsyncQueue *invals;
	GThread *notifier;
	gint dropped;           /* notifications dropped on a full queue */
} fs;

static struct inval stop_marker;

/* ---- inodes ---- */

fuse_ino_t fs_ino(const char *path)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 digest[32];
	gsize len = sizeof(digest);
	fuse_ino_t ino = 0;

	if (!*path)
		return FUSE_ROOT_ID;
	g_checksum_update(sum, (const guchar *)path, strlen(path));
	g_checksum_get_digest(sum, digest, &len);
	for (int i = 0; i < 8; i++)
		ino = (ino << 8) | digest[i];
	ino &= ~(INO_STORE | INO_SNIP);
	/* 0 is invalid and 1 is the root */
	if (ino <= FUSE_ROOT_ID)
		ino += 2;
	return ino;
}

/* The inode number of the store object at path, whose lstat is st. */
static fuse_ino_t store_ino(const char *path, const struct stat *st)
{
	struct node *n;
	fuse_ino_t ino;

	if (tree_store_inodes())
		return INO_STORE | (st->st_ino & ~INO_STORE);
	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.paths, path);
	if (n && (n->ino & INO_STORE) && n->fmt == (st->st_mode & S_IFMT))
		ino = n->ino;
	else
		ino = INO_STORE | INO_ALLOCATED | ++fs.next_ino;
	g_mutex_unlock(&fs.lock);
	return ino;
}

static void node_free(gpointer p)
{
	struct node *n = p;

	g_free(n->path);
	if (n->aliases)
		g_ptr_array_free(n->aliases, TRUE);
	if (n->open)
		g_array_free(n->open, TRUE);
	if (n->snap)
		g_string_free(n->snap, TRUE);
	g_free(n);
}

/* n is no longer at its path (with fs.lock held); a hard link's other name takes over. */
static void node_detach(struct node *n)
{
	if (!n->path)
		return;
	if (g_hash_table_lookup(fs.paths, n->path) == n)
		g_hash_table_remove(fs.paths, n->path);
	g_clear_pointer(&n->path, g_free);
	if (n->aliases && n->aliases->len)
		n->path = g_ptr_array_steal_index_fast(n->aliases, n->aliases->len - 1);
}

/* Forget every name of n (with fs.lock held), before it is freed. */
static void node_detach_all(struct node *n)
{
	while (n->path)
		node_detach(n);
	if (n->aliases)
		g_ptr_array_set_size(n->aliases, 0);
}

/* Drop name from n's other names (with fs.lock held); true if it was one. */
static bool node_drop_alias(struct node *n, const char *path)
{
	if (n->aliases)
		for (guint i = 0; i < n->aliases->len; i++)
			if (!strcmp(n->aliases->pdata[i], path)) {
				g_ptr_array_remove_index_fast(n->aliases, i);
				if (g_hash_table_lookup(fs.paths, path) == n)
					g_hash_table_remove(fs.paths, path);
				return true;
			}
	return false;
}

/* n is now at path (with fs.lock held): whatever was there is not.  A file
 * with more than one link keeps its other name as an alias. */
static void node_attach(struct node *n, const char *path, bool linked)
{
	struct node *old = g_hash_table_lookup(fs.paths, path);

	if (old == n && n->path && !strcmp(n->path, path))
		return;
	if (old && old != n && !node_drop_alias(old, path) && old->path && !strcmp(old->path, path))
		node_detach(old);
	node_drop_alias(n, path);
	if (n->path && linked) {
		if (!n->aliases)
			n->aliases = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(n->aliases, g_steal_pointer(&n->path));
	} else if (n->path) {
		if (g_hash_table_lookup(fs.paths, n->path) == n)
			g_hash_table_remove(fs.paths, n->path);
		g_clear_pointer(&n->path, g_free);
	}
	n->path = g_strdup(path);
	n->snap_time = 0;
	g_hash_table_insert(fs.paths, g_strdup(path), n);
}

/* The path of a known inode (a copy), or NULL. */
static char *node_path(fuse_ino_t ino)
{
	struct node *n;
	char *path = NULL;

	if (ino == FUSE_ROOT_ID)
		return g_strdup("");
	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n && n->path)
		path = g_strdup(n->path);
	g_mutex_unlock(&fs.lock);
	return path;
}

/* The inode at path, or 0. */
static fuse_ino_t path_ino(const char *path)
{
	struct node *n;
	fuse_ino_t ino = 0;

	if (!*path)
		return FUSE_ROOT_ID;
	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.paths, path);
	if (n)
		ino = n->ino;
	g_mutex_unlock(&fs.lock);
	return ino;
}

/* Count one more kernel reference to the inode st->st_ino, found at path
 * (a store node if store); remember its attributes and content. */
static void node_ref(const char *path, const struct stat *st, GString *content, bool store)
{
	fuse_ino_t ino = st->st_ino;
	struct node *n;

	if (ino == FUSE_ROOT_ID)
		return;
	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (!n) {
		n = g_new0(struct node, 1);
		n->ino = ino;
		g_hash_table_insert(fs.nodes, &n->ino, n);
	}
	n->fmt = st->st_mode & S_IFMT;
	n->store = store;
	n->attr = *st;
	node_attach(n, path, store && S_ISREG(st->st_mode) && st->st_nlink > 1);
	n->nlookup++;
	if (content) {
		if (!n->snap)
			n->snap = g_string_new(NULL);
		g_string_truncate(n->snap, 0);
		g_string_append_len(n->snap, content->str, content->len);
		n->snap_time = g_get_monotonic_time();
	}
	g_mutex_unlock(&fs.lock);
}

/* The attributes last replied for ino; false if it is not known. */
static bool node_attr(fuse_ino_t ino, struct stat *out, bool *store)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n) {
		*out = n->attr;
		*store = n->store;
	}
	g_mutex_unlock(&fs.lock);
	return n != NULL;
}

static void node_set_attr(fuse_ino_t ino, const struct stat *st)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n)
		n->attr = *st;
	g_mutex_unlock(&fs.lock);
}

static void node_unref(fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n) {
		n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
		if (n->nlookup == 0 && (!n->open || !n->open->len)) {
			node_detach_all(n);
			g_hash_table_remove(fs.nodes, &ino);
		}
	}
	g_mutex_unlock(&fs.lock);
}

/* The object at path went away (unlink, rmdir, replaced by a rename). */
static void node_gone(const char *path)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.paths, path);
	if (n && !node_drop_alias(n, path)) {
		node_detach(n);
		if (n->attr.st_nlink > 0)
			n->attr.st_nlink--;
	}
	g_mutex_unlock(&fs.lock);
}

/* An open store file on ino: its handle number, for getattr once the name is gone. */
static void node_open_add(fuse_ino_t ino, uint64_t fh)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n) {
		if (!n->open)
			n->open = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		g_array_append_val(n->open, fh);
	}
	g_mutex_unlock(&fs.lock);
}

static void node_open_remove(fuse_ino_t ino, uint64_t fh)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n && n->open) {
		for (guint i = 0; i < n->open->len; i++)
			if (g_array_index(n->open, uint64_t, i) == fh) {
				g_array_remove_index_fast(n->open, i);
				break;
			}
		if (!n->open->len && n->nlookup == 0) {
			node_detach_all(n);
			g_hash_table_remove(fs.nodes, &ino);
		}
	}
	g_mutex_unlock(&fs.lock);
}

/* A handle number of an open store file on ino, or 0. */
static uint64_t node_open_any(fuse_ino_t ino)
{
	struct node *n;
	uint64_t fh = 0;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n && n->open && n->open->len)
		fh = g_array_index(n->open, uint64_t, 0);
	g_mutex_unlock(&fs.lock);
	return fh;
}

/* Keep the content just rendered for ino, so an open right after a stat sees the same bytes. */
static void node_set_snap(fuse_ino_t ino, GString *content)
{
	struct node *n;

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n) {
		if (!n->snap)
			n->snap = g_string_new(NULL);
		g_string_truncate(n->snap, 0);
		g_string_append_len(n->snap, content->str, content->len);
		n->snap_time = g_get_monotonic_time();
	}
	g_mutex_unlock(&fs.lock);
}

/* The content remembered for ino if still fresh (a copy), or NULL. */
static GString *node_get_snap(fuse_ino_t ino)
{
	struct node *n;
	GString *copy = NULL;
	gint64 ttl = (gint64)(fs.opt.attr_timeout * G_USEC_PER_SEC);

	g_mutex_lock(&fs.lock);
	n = g_hash_table_lookup(fs.nodes, &ino);
	if (n && n->snap && g_get_monotonic_time() - n->snap_time < ttl)
		copy = g_string_new_len(n->snap->str, n->snap->len);
	g_mutex_unlock(&fs.lock);
	return copy;
}

/* ---- open handles ---- */

static uint64_t fh_add(void *obj, GDestroyNotify free_fn)
{
	struct fh_entry *e = g_new0(struct fh_entry, 1);
	uint64_t fh;

	e->refs = 1;
	e->obj = obj;
	e->free = free_fn;
	g_mutex_lock(&fs.lock);
	fh = ++fs.next_fh;
	g_hash_table_insert(fs.handles, g_memdup2(&fh, sizeof(fh)), e);
	g_mutex_unlock(&fs.lock);
	return fh;
}

static void fh_put(struct fh_entry *e)
{
	if (e && g_atomic_int_dec_and_test(&e->refs)) {
		e->free(e->obj);
		g_free(e);
	}
}

static void fh_putp(struct fh_entry **e)
{
	fh_put(*e);
}
#define FH_AUTO __attribute__((cleanup(fh_putp)))

/* The open object fh, with a reference the caller puts; NULL if released. */
static struct fh_entry *fh_get(uint64_t fh)
{
	struct fh_entry *e;

	g_mutex_lock(&fs.lock);
	e = g_hash_table_lookup(fs.handles, &fh);
	if (e)
		g_atomic_int_inc(&e->refs);
	g_mutex_unlock(&fs.lock);
	return e;
}

/* Release: forget fh; the object goes when the last request using it ends. */
static void fh_remove(uint64_t fh)
{
	struct fh_entry *e = NULL;
	gpointer key = NULL;

	g_mutex_lock(&fs.lock);
	if (g_hash_table_steal_extended(fs.handles, &fh, &key, (gpointer *)&e))
		g_free(key);
	g_mutex_unlock(&fs.lock);
	fh_put(e);
}

/* ---- invalidation ---- */

#define INVAL_QUEUE_MAX 65536   /* past this, notifications are dropped (the timeouts still hold) */

static void inval_push(struct inval *iv)
{
	if (!fs.invals || g_async_queue_length(fs.invals) >= INVAL_QUEUE_MAX) {
		g_atomic_int_inc(&fs.dropped);
		g_free(iv->name);
		g_free(iv);
		return;
	}
	g_async_queue_push(fs.invals, iv);
}

void fs_invalidate(const char *path)
{
	struct node *n;
	struct inval *iv;
	fuse_ino_t ino = 0;

	g_mutex_lock(&fs.lock);
	n = *path ? g_hash_table_lookup(fs.paths, path) : NULL;
	if (n) {
		n->snap_time = 0;
		ino = n->ino;
	}
	g_mutex_unlock(&fs.lock);
	if (!ino || !fs.invals)
		return;
	iv = g_new0(struct inval, 1);
	iv->kind = INVAL_INODE;
	iv->ino = ino;
	inval_push(iv);
}

void fs_invalidate_entry(const char *parent, const char *name)
{
	fuse_ino_t ino = path_ino(parent);
	struct inval *iv;

	if (!ino || !fs.invals)
		return;
	iv = g_new0(struct inval, 1);
	iv->kind = INVAL_ENTRY;
	iv->ino = ino;
	iv->name = g_strdup(name);
	inval_push(iv);
}

/* A request that may hold directory ino's lock in the kernel runs. */
static void busy_enter(fuse_ino_t ino)
{
	g_mutex_lock(&fs.lock);
	g_hash_table_insert(fs.busy, g_memdup2(&ino, sizeof(ino)),
	                    GINT_TO_POINTER(GPOINTER_TO_INT(g_hash_table_lookup(fs.busy, &ino)) + 1));
	g_mutex_unlock(&fs.lock);
}

static void busy_leave(fuse_ino_t ino)
{
	int n;

	g_mutex_lock(&fs.lock);
	n = GPOINTER_TO_INT(g_hash_table_lookup(fs.busy, &ino)) - 1;
	if (n > 0)
		g_hash_table_insert(fs.busy, g_memdup2(&ino, sizeof(ino)), GINT_TO_POINTER(n));
	else
		g_hash_table_remove(fs.busy, &ino);
	g_mutex_unlock(&fs.lock);
}

static bool busy(fuse_ino_t ino)
{
	bool b;

	g_mutex_lock(&fs.lock);
	b = g_hash_table_contains(fs.busy, &ino);
	g_mutex_unlock(&fs.lock);
	return b;
}

/* The kernel must not be told from inside a request about the inodes that
 * request holds: notifications go through this thread.  Inodes are
 * invalidated for their attributes only (offset -1 touches no page; a
 * changed mtime then drops the pages, FUSE_CAP_AUTO_INVAL_DATA), which takes
 * no lock.  An entry needs its directory's lock, which a request in flight
 * may hold while it waits for our reply: entries of a directory wait until
 * no request that may hold it runs (lookups, listings, changes).  Should the
 * daemon die while this thread waits all the same, the watchdog aborts the
 * connection (fs_start), so the mount never freezes. */
static gpointer notifier_main(gpointer data)
{
	(void)data;
	for (;;) {
		struct inval *iv = g_async_queue_pop(fs.invals);

		if (iv == &stop_marker)
			break;
		if (iv->kind == INVAL_ENTRY && busy(iv->ino)) {
			g_usleep(2000);
			g_async_queue_push(fs.invals, iv);
			continue;
		}
		if (iv->kind == INVAL_INODE)
			fuse_lowlevel_notify_inval_inode(fs.se, iv->ino, -1, 0);
		else
			fuse_lowlevel_notify_inval_entry(fs.se, iv->ino, iv->name, strlen(iv->name));
		g_free(iv->name);
		g_free(iv);
	}
	return NULL;
}

/* ---- request context and errors ---- */

struct op_scope {
	enum stats_op op;
	gint64 start;
	struct ep_ctx ctx;
};

static int read_groups(struct ep_ctx *ctx, gid_t *out, int max)
{
	int n = fuse_req_getgroups(ctx->source, max, out);

	return n < 0 ? 0 : MIN(n, max);
}

static void scope_begin(struct op_scope *s, fuse_req_t req, enum stats_op op)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);

	ep_error_clear();
	s->op = op;
	s->start = g_get_monotonic_time();
	memset(&s->ctx, 0, sizeof(s->ctx));
	s->ctx.uid = fc->uid;
	s->ctx.gid = fc->gid;
	s->ctx.ngroups = -1;
	s->ctx.read_groups = read_groups;
	s->ctx.source = req;
	/* admins are root and who the configuration names, never any gid 0 */
	s->ctx.admin = fc->uid == 0 || (fs.opt.admin_gid != 0 && ctx_in_group(&s->ctx, fs.opt.admin_gid));
	ctx_identify(&s->ctx);
}

static void scope_end(struct op_scope *s, int err)
{
	stats_record(s->op, g_get_monotonic_time() - s->start, err);
}

/* Reply with an error, logging it against the resource at path (if any). */
static void reply_fail(fuse_req_t req, struct op_scope *s, const char *path, const char *opname, int err)
{
	const char *msg = ep_error_message();

	if (err < 0)
		err = -err;
	scope_end(s, err);
	/* a missing name is an answer, not a failure worth a log line */
	if (!(err == ENOENT && (s->op == OP_LOOKUP || s->op == OP_GETATTR || !*msg))) {
		struct ep_node_info n = { 0 };
		const char *kind = NULL, *key = NULL;
		const struct ep_kind *k = NULL;

		if (path && tree_resolve(&s->ctx, path, &n) == 0) {
			tree_error_target(&n, &kind, &key);
			k = kind ? n.kind : NULL;
		}
		errlog_append(k, key, opname, err, *msg ? msg : strerror(err));
		node_info_clear(&n);
	}
	fuse_reply_err(req, err);
}

static char *child_path(const char *parent, const char *name)
{
	return *parent ? g_strconcat(parent, "/", name, NULL) : g_strdup(name);
}

/* ---- operations ---- */

static void fs_init_op(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* always plus: the listing already has every attribute */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
}

static void fill_entry(struct fuse_entry_param *e, const struct stat *st, bool gated)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->attr = *st;
	/* an entry not everyone may see is not cached: the kernel asks again for
	 * each caller (rule 9 holds within the timeouts too) */
	e->attr_timeout = gated ? 0 : fs.opt.attr_timeout;
	e->entry_timeout = gated ? 0 : fs.opt.entry_timeout;
}

/* A file-store object below a store directory (the directory itself is part of its record). */
static bool store_object(const struct ep_node_info *n)
{
	return n->type == N_STORE && strcmp(n->store_path, n->store_root);
}

/* The inode number of the node n at path, whose attributes are st. */
static fuse_ino_t node_ino(const char *path, const struct ep_node_info *n, const struct stat *st)
{
	if (store_object(n))
		return store_ino(path, st);
	if (n->type == N_SNIP && n->snip && n->snip->id)
		return INO_SNIP | n->snip->id;
	return fs_ino(path);
}

/* Stat the resolved node n at path; content gets a file's bytes. */
static int stat_node(struct ep_ctx *ctx, const char *path, struct ep_node_info *n, struct stat *st,
                     GString *content)
{
	int r = tree_stat(ctx, n, st, content);

	st->st_ino = node_ino(path, n, st);
	return r;
}

/* Resolve path and stat it; content gets a file's bytes. */
static int stat_path(struct ep_ctx *ctx, const char *path, struct stat *st, GString *content)
{
	struct ep_node_info n;
	int r = tree_resolve(ctx, path, &n);

	if (r < 0)
		return r;
	r = stat_node(ctx, path, &n, st, content);
	node_info_clear(&n);
	return r;
}

/* May the caller do mask on the inode ino?  The modes of store nodes are
 * checked as the kernel would with the attributes last replied; other
 * nodes follow the platform's rules (tree.c). */
static int may(struct op_scope *s, fuse_ino_t ino, int mask)
{
	struct stat st;
	bool store = false;

	if (!node_attr(ino, &st, &store) || !store)
		return 0;
	if (tree_store_permits(&s->ctx, &st, mask) < 0)
		return ep_errorf(EACCES, "permission denied by the mode %o of %s", st.st_mode & 07777,
		                 S_ISDIR(st.st_mode) ? "the directory" : "the file");
	return 0;
}

static void do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	g_autoptr(GString) content = g_string_new(NULL);
	struct fuse_entry_param e;
	struct ep_node_info n;
	struct stat st;
	int r;

	scope_begin(&s, req, OP_LOOKUP);
	if (!(ppath = node_path(parent)))
		return reply_fail(req, &s, NULL, "lookup", ENOENT);
	if ((r = may(&s, parent, X_OK)) < 0)
		return reply_fail(req, &s, NULL, "lookup", r);
	path = child_path(ppath, name);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, NULL, "lookup", r);
	if ((r = stat_node(&s.ctx, path, &n, &st, content)) < 0) {
		node_info_clear(&n);
		return reply_fail(req, &s, NULL, "lookup", r);
	}
	node_ref(path, &st, S_ISDIR(st.st_mode) ? NULL : content, n.type == N_STORE);
	fill_entry(&e, &st, n.gated);
	node_info_clear(&n);
	scope_end(&s, 0);
	fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct op_scope s;

	scope_begin(&s, req, OP_FORGET);
	node_unref(ino, nlookup);
	scope_end(&s, 0);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct op_scope s;

	scope_begin(&s, req, OP_FORGET);
	for (size_t i = 0; i < count; i++)
		node_unref(forgets[i].ino, forgets[i].nlookup);
	scope_end(&s, 0);
	fuse_reply_none(req);
}

/* The attributes of an open store file through its handle (its name may be gone). */
static int stat_open(fuse_ino_t ino, uint64_t fh, struct stat *st)
{
	FH_AUTO struct fh_entry *e = fh ? fh_get(fh) : NULL;
	struct handle *h = e ? e->obj : NULL;
	struct stat shown;
	bool store;
	int r;

	if (!h || !h->sf)
		return -ENOENT;
	if ((r = filestore_fstat(h->sf, st)) < 0)
		return r;
	/* owners and read-only modes as shown when it still had a name */
	if (node_attr(ino, &shown, &store)) {
		st->st_uid = shown.st_uid;
		st->st_gid = shown.st_gid;
	}
	st->st_ino = ino;
	return 0;
}

/* The attributes of inode ino as the caller may see them. */
static int stat_ino(struct op_scope *s, fuse_ino_t ino, uint64_t fh, struct stat *st, GString *content,
                    bool *gated)
{
	g_autofree char *path = node_path(ino);
	struct ep_node_info n;
	int r = -ENOENT;

	*gated = false;
	if (path && (r = tree_resolve(&s->ctx, path, &n)) == 0) {
		r = stat_node(&s->ctx, path, &n, st, content);
		*gated = n.gated;
		node_info_clear(&n);
		/* another object is at the name now (renamed behind our back) */
		if (r == 0 && ino != FUSE_ROOT_ID && st->st_ino != ino)
			r = -ENOENT;
	}
	if (r == -ENOENT && (ino & INO_STORE))
		r = stat_open(ino, fh ? fh : node_open_any(ino), st);
	return r;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op_scope s;
	g_autoptr(GString) content = g_string_new(NULL);
	struct stat st;
	bool gated;
	int r;

	scope_begin(&s, req, OP_GETATTR);
	if ((r = stat_ino(&s, ino, fi ? fi->fh : 0, &st, content, &gated)) < 0)
		return reply_fail(req, &s, NULL, "getattr", r);
	if (!S_ISDIR(st.st_mode))
		node_set_snap(ino, content);
	node_set_attr(ino, &st);
	scope_end(&s, 0);
	fuse_reply_attr(req, &st, gated ? 0 : fs.opt.attr_timeout);
}

/* Reply to setattr with the attributes of ino now. */
static void reply_attr_now(fuse_req_t req, struct op_scope *s, fuse_ino_t ino, uint64_t fh, const char *path)
{
	g_autoptr(GString) content = g_string_new(NULL);
	struct stat st;
	bool gated;
	int r;

	if ((r = stat_ino(s, ino, fh, &st, content, &gated)) < 0)
		return reply_fail(req, s, path, "setattr", r);
	node_set_attr(ino, &st);
	scope_end(s, 0);
	fuse_reply_attr(req, &st, gated ? 0 : fs.opt.attr_timeout);
}

/* setattr of a file-store node: chmod, chown, truncate, utimens as on a disk. */
static void setattr_store(fuse_req_t req, struct op_scope *s, fuse_ino_t ino, const char *path,
                          struct ep_node_info *n, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	FH_AUTO struct fh_entry *e = fi ? fh_get(fi->fh) : NULL;
	struct handle *h = e ? e->obj : NULL;
	g_autoptr(GString) content = g_string_new(NULL);
	struct stat cur;
	int r;

	if ((r = stat_node(&s->ctx, path, n, &cur, content)) == 0)
		r = tree_store_setattr(&s->ctx, n, attr, to_set, h ? h->sf : NULL, &cur);
	node_info_clear(n);
	if (r < 0)
		return reply_fail(req, s, path, "setattr", r);
	reply_attr_now(req, s, ino, fi ? fi->fh : 0, path);
}

/* setattr of an open store file whose name is gone: what its handle can do. */
static void setattr_unlinked(fuse_req_t req, struct op_scope *s, fuse_ino_t ino, struct stat *attr, int to_set,
                             struct fuse_file_info *fi)
{
	uint64_t fh = fi ? fi->fh : node_open_any(ino);
	FH_AUTO struct fh_entry *e = fh ? fh_get(fh) : NULL;
	struct handle *h = e ? e->obj : NULL;
	int r = 0;

	if (!h || !h->sf)
		return reply_fail(req, s, NULL, "setattr", ENOENT);
	if (to_set & FUSE_SET_ATTR_SIZE)
		r = filestore_ftruncate(h->sf, attr->st_size);
	if (r < 0)
		return reply_fail(req, s, NULL, "setattr", r);
	reply_attr_now(req, s, ino, fh, NULL);
}

/* setattr of a snippet: size through an open handle, or the stored value. */
static void setattr_snip(fuse_req_t req, struct op_scope *s, fuse_ino_t ino, const char *path,
                         struct ep_node_info *n, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	FH_AUTO struct fh_entry *e = fi ? fh_get(fi->fh) : NULL;
	struct handle *h = e ? e->obj : NULL;
	g_autoptr(GString) content = g_string_new(NULL);
	struct stat st;
	int r;

	if (h && h->wbuf && (to_set & FUSE_SET_ATTR_SIZE) && !(to_set & ~(FUSE_SET_ATTR_SIZE))) {
		if ((size_t)attr->st_size <= h->wbuf->len)
			g_string_truncate(h->wbuf, attr->st_size);
		else
			g_string_set_size(h->wbuf, attr->st_size);
		h->dirty = true;
		r = 0;
	} else {
		r = tree_snip_setattr(&s->ctx, n, attr, to_set);
	}
	node_info_clear(n);
	if (r < 0)
		return reply_fail(req, s, path, "setattr", r);
	if ((r = stat_path(&s->ctx, path, &st, content)) < 0)
		return reply_fail(req, s, path, "setattr", r);
	if (h && h->wbuf && (to_set & FUSE_SET_ATTR_SIZE)) {
		st.st_size = h->wbuf->len;
		st.st_blocks = (st.st_size + 511) / 512;
	}
	node_set_attr(ino, &st);
	scope_end(s, 0);
	fuse_reply_attr(req, &st, fs.opt.attr_timeout);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct op_scope s;
	g_autofree char *path = node_path(ino);
	g_autoptr(GString) content = g_string_new(NULL);
	struct ep_node_info n;
	struct stat st;
	int r;

	scope_begin(&s, req, OP_SETATTR);
	if (!path && (ino & INO_STORE))
		return setattr_unlinked(req, &s, ino, attr, to_set, fi);
	if (!path)
		return reply_fail(req, &s, NULL, "setattr", ENOENT);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, path, "setattr", r);
	if (n.type == N_SNIP)
		return setattr_snip(req, &s, ino, path, &n, attr, to_set, fi);
	if (n.type == N_STORE)
		return setattr_store(req, &s, ino, path, &n, attr, to_set, fi);
	if ((r = stat_node(&s.ctx, path, &n, &st, content)) < 0) {
		node_info_clear(&n);
		return reply_fail(req, &s, path, "setattr", r);
	}
	/* owners and modes come from the platform: setting them to what they are succeeds */
	if (((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (st.st_mode & 07777)) ||
	    ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != st.st_uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != st.st_gid)) {
		node_info_clear(&n);
		return reply_fail(req, &s, path, "setattr",
		                  ep_errorf(EPERM, "owner and mode come from the platform and cannot be changed"));
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		r = tree_may_write(&s.ctx, &n);
		struct fh_entry *e = r == 0 && fi ? fh_get(fi->fh) : NULL;
		if (e) {
			/* truncating an open value: the next write replaces it */
			struct handle *h = e->obj;
			g_mutex_lock(&h->lock);
			if (h->wbuf && (size_t)attr->st_size < h->wbuf->len)
				g_string_truncate(h->wbuf, attr->st_size);
			g_mutex_unlock(&h->lock);
			fh_put(e);
		}
	}
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, path, "truncate", r);
	/* times are the record's change time: setting them is accepted and changes nothing */
	scope_end(&s, 0);
	fuse_reply_attr(req, &st, fs.opt.attr_timeout);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct op_scope s;
	g_autofree char *path = node_path(ino);
	g_autoptr(GString) target = g_string_new(NULL);
	struct ep_node_info n;
	int r;

	scope_begin(&s, req, OP_READLINK);
	if (!path)
		return reply_fail(req, &s, NULL, "readlink", ENOENT);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, path, "readlink", r);
	if (n.type != N_RELLINK && n.type != N_STORE && !(n.type == N_GENFILE && n.gen->symlinks) &&
	    (n.type != N_ATTR || n.attr->type != AT_LINK))
		r = -EINVAL;
	else
		r = tree_render(&s.ctx, &n, target);
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, path, "readlink", r);
	scope_end(&s, 0);
	fuse_reply_readlink(req, target->str);
}

/* After mkdir, symlink, mknod or link made path: reply with its entry (and count the lookup). */
static void reply_made(fuse_req_t req, struct op_scope *s, const char *path, const char *opname)
{
	g_autoptr(GString) content = g_string_new(NULL);
	struct fuse_entry_param e;
	struct ep_node_info n;
	struct stat st;
	int r;

	if ((r = tree_resolve(&s->ctx, path, &n)) < 0)
		return reply_fail(req, s, NULL, opname, r);
	if ((r = stat_node(&s->ctx, path, &n, &st, content)) < 0) {
		node_info_clear(&n);
		return reply_fail(req, s, NULL, opname, r);
	}
	node_ref(path, &st, NULL, n.type == N_STORE);
	fill_entry(&e, &st, n.gated);
	node_info_clear(&n);
	scope_end(s, 0);
	fuse_reply_entry(req, &e);
}

/* Resolve the directory parent for a request that changes it: its path and
 * node, with write and search permission checked. */
static int changing(struct op_scope *s, fuse_ino_t parent, char **ppath, struct ep_node_info *pn)
{
	int r;

	memset(pn, 0, sizeof(*pn));
	if (!(*ppath = node_path(parent)))
		return -ENOENT;
	if ((r = tree_resolve(&s->ctx, *ppath, pn)) < 0)
		return r;
	/* a read-only copy says EROFS before its modes say EACCES */
	if (pn->type == N_STORE && (r = tree_may_write(&s->ctx, pn)) < 0)
		return r;
	return may(s, parent, W_OK | X_OK);
}

static void do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	struct ep_node_info n;
	int r;

	scope_begin(&s, req, OP_MKDIR);
	if ((r = changing(&s, parent, &ppath, &n)) < 0)
		return reply_fail(req, &s, NULL, "mkdir", r);
	path = child_path(ppath, name);
	r = tree_mkdir(&s.ctx, &n, name, mode);
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, r == -EEXIST ? path : NULL, "mkdir", r);
	reply_made(req, &s, path, "mkdir");
}

/* rmdir and unlink: the name is gone once they succeed. */
static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	const char *opname = dir ? "rmdir" : "unlink";
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	struct ep_node_info pn, n;
	int r;

	scope_begin(&s, req, dir ? OP_RMDIR : OP_UNLINK);
	r = changing(&s, parent, &ppath, &pn);
	node_info_clear(&pn);
	if (r < 0)
		return reply_fail(req, &s, NULL, opname, r);
	path = child_path(ppath, name);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, NULL, opname, r);
	r = dir ? tree_rmdir(&s.ctx, &n) : tree_unlink(&s.ctx, &n, name);
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, path, opname, r);
	node_gone(path);
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	busy_enter(parent);
	remove_entry(req, parent, name, true);
	busy_leave(parent);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	busy_enter(parent);
	remove_entry(req, parent, name, false);
	busy_leave(parent);
}

static void do_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	struct ep_node_info n;
	int r;

	scope_begin(&s, req, OP_SYMLINK);
	if ((r = changing(&s, parent, &ppath, &n)) < 0)
		return reply_fail(req, &s, NULL, "symlink", r);
	path = child_path(ppath, name);
	r = tree_symlink(&s.ctx, &n, name, link);
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, ppath, "symlink", r);
	reply_made(req, &s, path, "symlink");
}

static void do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	struct ep_node_info n;
	int r;

	(void)rdev;
	scope_begin(&s, req, OP_MKNOD);
	if ((r = changing(&s, parent, &ppath, &n)) < 0)
		return reply_fail(req, &s, NULL, "mknod", r);
	path = child_path(ppath, name);
	r = tree_mknod(&s.ctx, &n, name, mode);
	node_info_clear(&n);
	if (r < 0)
		return reply_fail(req, &s, ppath, "mknod", r);
	reply_made(req, &s, path, "mknod");
}

static void do_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL, *from = node_path(ino);
	struct ep_node_info np, n = { 0 };
	int r;

	scope_begin(&s, req, OP_LINK);
	if ((r = changing(&s, parent, &ppath, &np)) < 0)
		return reply_fail(req, &s, NULL, "link", r);
	path = child_path(ppath, name);
	if (!from)
		r = ep_errorf(ENOENT, "%s: the file has no name left to link to", name);
	else if ((r = tree_resolve(&s.ctx, from, &n)) == 0)
		r = tree_link(&s.ctx, &n, &np, name);
	node_info_clear(&n);
	node_info_clear(&np);
	if (r < 0)
		return reply_fail(req, &s, ppath, "link", r);
	reply_made(req, &s, path, "link");
}

/* Paths at or below from, with fs.lock held: the nodes there, and their names. */
static void nodes_under(const char *from, GPtrArray *nodes)
{
	GHashTableIter it;
	struct node *n;
	size_t len = strlen(from);

	g_hash_table_iter_init(&it, fs.nodes);
	while (g_hash_table_iter_next(&it, NULL, (gpointer *)&n)) {
		bool under = n->path && !strncmp(n->path, from, len) && (n->path[len] == '\0' || n->path[len] == '/');
		if (!under && n->aliases)
			for (guint i = 0; i < n->aliases->len && !under; i++) {
				const char *a = n->aliases->pdata[i];
				under = !strncmp(a, from, len) && (a[len] == '\0' || a[len] == '/');
			}
		if (under)
			g_ptr_array_add(nodes, n);
	}
}

/* Move the names of nodes from prefix from to prefix to (with fs.lock held). */
static void nodes_move(GPtrArray *nodes, const char *from, const char *to)
{
	size_t len = strlen(from);

	for (guint i = 0; i < nodes->len; i++) {
		struct node *n = nodes->pdata[i];
		char **names[1 + (n->aliases ? n->aliases->len : 0)];
		guint count = 0;

		if (n->path)
			names[count++] = &n->path;
		for (guint j = 0; n->aliases && j < n->aliases->len; j++)
			names[count++] = (char **)&n->aliases->pdata[j];
		for (guint j = 0; j < count; j++) {
			char *p = *names[j];
			if (strncmp(p, from, len) || (p[len] != '\0' && p[len] != '/'))
				continue;
			*names[j] = g_strconcat(to, p + len, NULL);
			g_hash_table_insert(fs.paths, g_strdup(*names[j]), n);
			g_free(p);
		}
		n->snap_time = 0;
	}
}

/* Drop the paths entries of nodes (with fs.lock held), before their names move. */
static void nodes_unmap(GPtrArray *nodes)
{
	for (guint i = 0; i < nodes->len; i++) {
		struct node *n = nodes->pdata[i];
		if (n->path && g_hash_table_lookup(fs.paths, n->path) == n)
			g_hash_table_remove(fs.paths, n->path);
		for (guint j = 0; n->aliases && j < n->aliases->len; j++)
			if (g_hash_table_lookup(fs.paths, n->aliases->pdata[j]) == n)
				g_hash_table_remove(fs.paths, n->aliases->pdata[j]);
	}
}

/* A rename happened: the objects keep their inodes under their new names. */
static void nodes_renamed(const char *from, const char *to, bool exchange)
{
	g_autoptr(GPtrArray) a = g_ptr_array_new();
	g_autoptr(GPtrArray) b = g_ptr_array_new();

	g_mutex_lock(&fs.lock);
	nodes_under(from, a);
	if (exchange)
		nodes_under(to, b);
	else {
		/* what was at the new name is gone */
		struct node *gone = g_hash_table_lookup(fs.paths, to);
		if (gone && !node_drop_alias(gone, to))
			node_detach(gone);
	}
	nodes_unmap(a);
	nodes_unmap(b);
	nodes_move(a, from, to);
	nodes_move(b, to, from);
	g_mutex_unlock(&fs.lock);
}

static void do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *npath = NULL;
	g_autofree char *from = NULL, *to = NULL;
	struct ep_node_info n = { 0 }, np = { 0 }, pn = { 0 };
	int r;

	scope_begin(&s, req, OP_RENAME);
	r = changing(&s, parent, &ppath, &pn);
	node_info_clear(&pn);
	if (r == 0)
		r = changing(&s, newparent, &npath, &np);
	if (r < 0) {
		node_info_clear(&np);
		return reply_fail(req, &s, NULL, "rename", r);
	}
	from = child_path(ppath, name);
	to = child_path(npath, newname);
	if ((r = tree_resolve(&s.ctx, from, &n)) == 0)
		r = tree_rename(&s.ctx, &n, &np, newname, flags);
	node_info_clear(&n);
	node_info_clear(&np);
	if (r < 0)
		return reply_fail(req, &s, ppath, "rename", r);
	nodes_renamed(from, to, flags & RENAME_EXCHANGE);
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

static void handle_free(struct handle *h);

/* A new handle for the open file at path. */
static struct handle *handle_new(const char *path, fuse_ino_t ino, int flags)
{
	struct handle *h = g_new0(struct handle, 1);

	g_mutex_init(&h->lock);
	h->path = g_strdup(path);
	h->ino = ino;
	h->writable = (flags & O_ACCMODE) != O_RDONLY;
	return h;
}

static void do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct op_scope s;
	g_autofree char *ppath = NULL, *path = NULL;
	g_autoptr(GString) content = g_string_new(NULL);
	struct ep_node_info n = { 0 }, pn = { 0 };
	struct filestore_file *sf = NULL;
	struct fuse_entry_param e;
	struct handle *h;
	struct stat st;
	uint64_t snip_id = 0;
	bool snippet = false;
	int r;

	scope_begin(&s, req, OP_CREATE);
	if ((r = changing(&s, parent, &ppath, &pn)) < 0) {
		/* nothing to create in */
	} else if (path = child_path(ppath, name), pn.type == N_SNIP) {
		snippet = true;
		r = tree_snip_create(&s.ctx, &pn, name, &snip_id);
	} else if (pn.type != N_STORE) {
		r = ep_errorf(EINVAL, "%s: not an attribute here: attributes are fixed, mkdir creates resources", name);
	} else if ((r = tree_resolve(&s.ctx, path, &n)) == 0) {
		r = tree_store_open(&s.ctx, &n, fi->flags | O_CREAT, mode, &sf);
	}
	node_info_clear(&pn);
	if (r < 0) {
		node_info_clear(&n);
		return reply_fail(req, &s, ppath, "create", r);
	}
	if (!snippet)
		r = stat_node(&s.ctx, path, &n, &st, content);
	else
		r = stat_path(&s.ctx, path, &st, content);
	node_info_clear(&n);
	if (r < 0) {
		filestore_file_close(sf);
		return reply_fail(req, &s, NULL, "create", r);
	}
	node_ref(path, &st, NULL, !snippet);
	h = handle_new(path, st.st_ino, fi->flags);
	h->sf = sf;
	if (snippet) {
		h->snippet = true;
		h->snip_id = snip_id;
		h->buf = g_string_new(NULL);
		h->wbuf = g_string_new(NULL);
	}
	fi->fh = fh_add(h, (GDestroyNotify)handle_free);
	if (sf)
		node_open_add(st.st_ino, fi->fh);
	fill_entry(&e, &st, false);
	scope_end(&s, 0);
	fuse_reply_create(req, &e, fi);
}

/* The requests the kernel may send while it holds the directory's lock,
 * marked busy while they run (see notifier_main). */
static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	busy_enter(parent);
	do_lookup(req, parent, name);
	busy_leave(parent);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	busy_enter(parent);
	do_mkdir(req, parent, name, mode);
	busy_leave(parent);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	busy_enter(parent);
	do_symlink(req, link, parent, name);
	busy_leave(parent);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	busy_enter(parent);
	do_mknod(req, parent, name, mode, rdev);
	busy_leave(parent);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	busy_enter(parent);
	do_link(req, ino, parent, name);
	busy_leave(parent);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	busy_enter(parent);
	busy_enter(newparent);
	do_rename(req, parent, name, newparent, newname, flags);
	busy_leave(parent);
	busy_leave(newparent);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	busy_enter(parent);
	do_create(req, parent, name, mode, fi);
	busy_leave(parent);
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	if (h->sf)
		filestore_file_close(h->sf);
	g_mutex_clear(&h->lock);
	g_free(h->path);
	if (h->buf)
		g_string_free(h->buf, TRUE);
	if (h->wbuf)
		g_string_free(h->wbuf, TRUE);
	g_free(h);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op_scope s;
	g_autofree char *path = node_path(ino);
	struct ep_node_info n;
	struct handle *h;
	int acc = fi->flags & O_ACCMODE;
	int r;

	scope_begin(&s, req, OP_OPEN);
	if (!path)
		return reply_fail(req, &s, NULL, "open", ENOENT);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, path, "open", r);
	h = handle_new(path, ino, fi->flags);
	if (n.type == N_STORE) {
		/* a real file: reads and writes go straight to the store */
		int mask = (acc != O_WRONLY ? R_OK : 0) | (acc != O_RDONLY || (fi->flags & O_TRUNC) ? W_OK : 0);
		if (((mask & W_OK) && (r = tree_may_write(&s.ctx, &n)) < 0) || (r = may(&s, ino, mask)) < 0 ||
		    (r = tree_store_open(&s.ctx, &n, fi->flags, 0, &h->sf)) < 0)
			goto fail;
		fi->keep_cache = 0;
		node_info_clear(&n);
		fi->fh = fh_add(h, (GDestroyNotify)handle_free);
		node_open_add(ino, fi->fh);
		scope_end(&s, 0);
		fuse_reply_open(req, fi);
		return;
	}
	if (n.type == N_SNIP) {
		if (n.snip->dir) {
			r = -EISDIR;
			goto fail;
		}
		h->snippet = true;
		h->snip_id = n.snip->id;
		fi->keep_cache = 0;
	}
	if (h->writable && (r = tree_may_write(&s.ctx, &n)) < 0)
		goto fail;
	if (acc != O_WRONLY || !(fi->flags & O_TRUNC)) {
		/* a live value is read as it is now, not as the last stat saw it */
		bool live = n.type == N_ATTR && (n.attr->flags & ATTR_LIVE);
		h->buf = live ? NULL : node_get_snap(ino);
		if (!h->buf) {
			h->buf = g_string_new(NULL);
			if ((r = tree_render(&s.ctx, &n, h->buf)) < 0)
				goto fail;
		}
	}
	if (h->writable)
		h->wbuf = (fi->flags & O_TRUNC) || !h->buf ? g_string_new(NULL)
		                                           : g_string_new_len(h->buf->str, h->buf->len);
	/* `> snippet` empties it even if nothing is written */
	h->dirty = h->snippet && h->writable && (fi->flags & O_TRUNC);
	h->events = n.type == N_ATTR && n.attr->type == AT_EVENTS;
	h->live = n.type == N_ATTR && (n.attr->flags & ATTR_LIVE) && acc == O_RDONLY;
	if (h->events)
		h->events_seq = events_seq(n.kind, n.key);
	/* live values change without a record change: never keep their pages */
	fi->keep_cache = !(n.type == N_META_FILE || n.type == N_SNIP || n.type == N_GENFILE || h->events ||
	                   (n.type == N_ATTR && (n.attr->flags & ATTR_LIVE)));
	/* generated from other files, or changed whole at close: their size is not the cached one */
	fi->direct_io = n.type == N_META_FILE || n.type == N_GENFILE || n.type == N_SNIP || h->events || h->live;
	fi->nonseekable = 0;
	node_info_clear(&n);
	fi->fh = fh_add(h, (GDestroyNotify)handle_free);
	scope_end(&s, 0);
	fuse_reply_open(req, fi);
	return;
fail:
	node_info_clear(&n);
	handle_free(h);
	reply_fail(req, &s, path, "open", r);
}

/* After news, reading an events file from the start shows it (as sysfs does after poll). */
static void handle_refresh_events(struct op_scope *s, struct handle *h)
{
	struct ep_node_info n;

	g_mutex_lock(&h->lock);
	if (tree_resolve(&s->ctx, h->path, &n) == 0) {
		if (events_seq(n.kind, n.key) != h->events_seq) {
			g_string_truncate(h->buf, 0);
			h->events_seq = events_render(n.kind, n.key, h->buf);
		}
		node_info_clear(&n);
	}
	g_mutex_unlock(&h->lock);
}

static void handle_refresh_live(struct op_scope *s, struct handle *h)
{
	struct ep_node_info n;

	g_mutex_lock(&h->lock);
	if (tree_resolve(&s->ctx, h->path, &n) == 0) {
		g_autoptr(GString) fresh = g_string_new(NULL);
		if (tree_render(&s->ctx, &n, fresh) == 0)
			g_string_assign(h->buf, fresh->str);
		node_info_clear(&n);
	}
	g_mutex_unlock(&h->lock);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	GString *b;

	(void)ino;
	scope_begin(&s, req, OP_READ);
	if (h && h->sf) {
		g_autofree char *data = g_malloc(size);
		ssize_t n = filestore_pread(h->sf, data, size, off);
		if (n < 0)
			return reply_fail(req, &s, h->path, "read", (int)n);
		scope_end(&s, 0);
		fuse_reply_buf(req, data, n);
		return;
	}
	if (h && h->events && off == 0)
		handle_refresh_events(&s, h);
	/* tail -f reads on from where it was: a growing log shows what came since */
	if (h && h->live && h->buf && (size_t)off >= h->buf->len)
		handle_refresh_live(&s, h);
	b = h ? h->buf : NULL;
	if (!b) {
		scope_end(&s, EBADF);
		fuse_reply_err(req, EBADF);
		return;
	}
	scope_end(&s, 0);
	if ((size_t)off >= b->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, b->str + off, MIN(size, b->len - off));
}

/* Apply what was written to a handle; 0 or -errno. */
static int handle_apply(struct op_scope *s, struct handle *h)
{
	struct ep_node_info n;
	g_autofree char *value = NULL;
	int r;

	h->dirty = false;
	if (h->snippet) {
		r = snip_write(h->snip_id, h->wbuf->str, h->wbuf->len);
		fs_invalidate(h->path);
		return r;
	}
	if ((r = tree_resolve(&s->ctx, h->path, &n)) < 0)
		return r;
	value = g_strndup(h->wbuf->str, h->wbuf->len);
	if (strlen(value) != h->wbuf->len)
		r = ep_errorf(EINVAL, "values cannot contain NUL bytes");
	else if (n.type == N_ATTR && n.attr->type == AT_TEXT) {
		/* free text keeps its inner lines; one trailing newline is the file's */
		if (g_str_has_suffix(value, "\n"))
			value[strlen(value) - 1] = '\0';
		r = tree_write(&s->ctx, &n, value);
	} else {
		g_strstrip(value);
		r = tree_write(&s->ctx, &n, value);
	}
	node_info_clear(&n);
	return r;
}

static char *write_opname(const char *path)
{
	const char *slash = strrchr(path, '/');

	return g_strconcat("write ", slash ? slash + 1 : path, NULL);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	g_autoptr(GMutexLocker) locker = h ? g_mutex_locker_new(&h->lock) : NULL;
	struct ep_node_info n;
	bool incomplete;
	int r;

	(void)ino;
	scope_begin(&s, req, OP_WRITE);
	if (h && h->sf) {
		ssize_t n = filestore_pwrite(h->sf, buf, size, off);
		if (n < 0)
			return reply_fail(req, &s, h->path, "write", (int)n);
		scope_end(&s, 0);
		fuse_reply_write(req, n);
		return;
	}
	if (!h || !h->wbuf) {
		scope_end(&s, EBADF);
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off + size > (h->snippet ? 16 * WRITE_MAX : WRITE_MAX)) {
		g_autofree char *op = write_opname(h->path);
		return reply_fail(req, &s, h->path, op, ep_errorf(EFBIG, "values are limited to %d bytes", WRITE_MAX));
	}
	if ((size_t)off > h->wbuf->len)
		g_string_set_size(h->wbuf, off);   /* a hole reads as NUL and is refused at apply */
	g_string_overwrite_len(h->wbuf, off, buf, size);
	h->dirty = true;
	/* a value is applied once it is complete, so `echo` reports errors itself */
	if (!h->snippet && h->wbuf->len && h->wbuf->str[h->wbuf->len - 1] == '\n') {
		if (tree_resolve(&s.ctx, h->path, &n) == 0) {
			incomplete = tree_write_incomplete(&n, h->wbuf->str, h->wbuf->len);
			node_info_clear(&n);
			if (!incomplete && (r = handle_apply(&s, h)) < 0) {
				g_autofree char *op = write_opname(h->path);
				return reply_fail(req, &s, h->path, op, r);
			}
		}
	}
	scope_end(&s, 0);
	fuse_reply_write(req, size);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	g_autoptr(GMutexLocker) locker = h ? g_mutex_locker_new(&h->lock) : NULL;
	int r;

	(void)ino;
	scope_begin(&s, req, OP_FLUSH);
	if (h && h->dirty && (r = handle_apply(&s, h)) < 0) {
		g_autofree char *op = write_opname(h->path);
		return reply_fail(req, &s, h->path, op, r);
	}
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	int r;

	(void)ino;
	scope_begin(&s, req, OP_RELEASE);
	if (h) {
		g_mutex_lock(&h->lock);
		if (h->dirty && (r = handle_apply(&s, h)) < 0) {
			g_autofree char *op = write_opname(h->path);
			errlog_append(NULL, NULL, op, -r, ep_error_message());
		}
		g_mutex_unlock(&h->lock);
	}
	if (h && h->sf)
		node_open_remove(h->ino, fi->fh);
	fh_remove(fi->fh);
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	int r;

	if (!h || !h->sf)
		return fs_flush(req, ino, fi);
	scope_begin(&s, req, OP_FSYNC);
	if ((r = filestore_fsync(h->sf, datasync)) < 0)
		return reply_fail(req, &s, h->path, "fsync", r);
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

static void dir_handle_free(struct dir_handle *d)
{
	for (guint i = 0; i < d->entries->len; i++)
		g_free(g_array_index(d->entries, struct dir_entry, i).name);
	g_array_free(d->entries, TRUE);
	g_free(d);
}

struct list_ctx {
	struct dir_handle *d;
	const char *path;
	bool snip;              /* a snippet directory: entries are numbered by id */
};

static void collect_entry(void *data, const char *name, const struct stat *st, GString *content)
{
	struct list_ctx *lc = data;
	struct dir_entry e = { g_strdup(name), *st };
	g_autofree char *path = child_path(lc->path, name);

	if (lc->d->store)
		e.st.st_ino = store_ino(path, st);
	else if (lc->snip && st->st_ino)
		e.st.st_ino = INO_SNIP | st->st_ino;
	else
		e.st.st_ino = fs_ino(path);
	/* the bytes are rendered already: keep them for the open that follows */
	if (content)
		node_set_snap(e.st.st_ino, content);
	g_array_append_val(lc->d->entries, e);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op_scope s;
	g_autofree char *path = node_path(ino);
	g_autofree char *parent = NULL;
	struct ep_node_info n;
	struct dir_handle *d;
	struct list_ctx lc;
	struct dir_entry dot = { 0 }, dotdot = { 0 };
	int r;

	scope_begin(&s, req, OP_OPENDIR);
	if (!path)
		return reply_fail(req, &s, NULL, "opendir", ENOENT);
	if ((r = may(&s, ino, R_OK)) < 0)
		return reply_fail(req, &s, path, "opendir", r);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, path, "opendir", r);
	d = g_new0(struct dir_handle, 1);
	d->store = n.type == N_STORE;
	d->gated = tree_children_gated(&n);
	d->entries = g_array_new(FALSE, FALSE, sizeof(struct dir_entry));
	dot.name = g_strdup(".");
	dot.st.st_ino = ino;
	dot.st.st_mode = S_IFDIR;
	g_array_append_val(d->entries, dot);
	parent = g_strdup(path);
	{
		char *slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		else
			parent[0] = '\0';
	}
	dotdot.name = g_strdup("..");
	dotdot.st.st_ino = path_ino(parent) ? path_ino(parent) : fs_ino(parent);
	dotdot.st.st_mode = S_IFDIR;
	g_array_append_val(d->entries, dotdot);
	lc.d = d;
	lc.path = path;
	lc.snip = n.type == N_SNIP;
	r = tree_list(&s.ctx, &n, collect_entry, &lc);
	node_info_clear(&n);
	if (r < 0) {
		dir_handle_free(d);
		return reply_fail(req, &s, path, "opendir", r);
	}
	fi->fh = fh_add(d, (GDestroyNotify)dir_handle_free);
	scope_end(&s, 0);
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *fe = fh_get(fi->fh);
	struct dir_handle *d = fe ? fe->obj : NULL;
	g_autofree char *path = node_path(ino);
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;

	scope_begin(&s, req, OP_READDIR);
	if (!d) {
		scope_end(&s, EBADF);
		fuse_reply_err(req, EBADF);
		return;
	}
	for (guint i = off; i < d->entries->len; i++) {
		struct dir_entry *e = &g_array_index(d->entries, struct dir_entry, i);
		size_t need;

		if (plus) {
			struct fuse_entry_param ep;
			bool dots = !strcmp(e->name, ".") || !strcmp(e->name, "..");

			fill_entry(&ep, &e->st, d->gated);
			if (dots) {
				/* the kernel takes no reference on . and .. */
				memset(&ep, 0, sizeof(ep));
				ep.attr.st_ino = e->st.st_ino;
				ep.attr.st_mode = e->st.st_mode;
			}
			need = fuse_add_direntry_plus(req, buf + used, size - used, e->name, &ep, i + 1);
			if (need > size - used)
				break;
			if (!dots && path) {
				g_autofree char *cp = child_path(path, e->name);
				node_ref(cp, &e->st, NULL, d->store);
			}
		} else {
			need = fuse_add_direntry(req, buf + used, size - used, e->name, &e->st, i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	scope_end(&s, 0);
	fuse_reply_buf(req, buf, used);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	busy_enter(ino);
	do_readdir(req, ino, size, off, fi, false);
	busy_leave(ino);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	busy_enter(ino);
	do_readdir(req, ino, size, off, fi, true);
	busy_leave(ino);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fh_remove(fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	tree_statfs(&sv);
	fuse_reply_statfs(req, &sv);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct op_scope s;
	g_autofree char *path = node_path(ino);
	g_autoptr(GString) content = g_string_new(NULL);
	struct ep_node_info n;
	struct stat st;
	int r;

	scope_begin(&s, req, OP_ACCESS);
	if (!path)
		return reply_fail(req, &s, NULL, "access", ENOENT);
	if ((r = tree_resolve(&s.ctx, path, &n)) < 0)
		return reply_fail(req, &s, NULL, "access", r);
	if ((r = tree_stat(&s.ctx, &n, &st, content)) == 0) {
		bool dir = S_ISDIR(st.st_mode);

		if (n.type == N_STORE) {
			/* the modes, as the kernel checks them; writing also needs the platform's leave */
			r = tree_store_permits(&s.ctx, &st, mask);
			if (r == 0 && (mask & W_OK))
				r = tree_may_write(&s.ctx, &n);
		} else if (mask & W_OK) {
			if (n.type == N_SNIP && dir)
				r = kind_may_write(&s.ctx, n.kind, n.obj) ? 0 : -EACCES;
			else if (n.type == N_COLLECTION && dir)
				/* one's own projects/ and datasets/: mkdir works there */
				r = s.ctx.admin || (st.st_uid == s.ctx.uid && s.ctx.uid != 0 && !n.kind->read_only) ? 0 : -EACCES;
			else if (dir)
				r = s.ctx.admin ? 0 : -EACCES;
			else
				r = tree_may_write(&s.ctx, &n);
		}
		if (r == 0 && n.type != N_STORE && (mask & X_OK) && !dir && !(st.st_mode & 0111))
			r = -EACCES;
	}
	node_info_clear(&n);
	ep_error_clear();
	scope_end(&s, r);
	fuse_reply_err(req, -r);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	int r;

	(void)ino;
	scope_begin(&s, req, OP_WRITE);
	if (!h || !h->sf)
		return reply_fail(req, &s, h ? h->path : NULL, "fallocate",
		                  ep_errorf(EOPNOTSUPP, "only files of the file store have blocks to allocate"));
	if ((r = filestore_fallocate(h->sf, mode, offset, length)) < 0)
		return reply_fail(req, &s, h->path, "fallocate", r);
	scope_end(&s, 0);
	fuse_reply_err(req, 0);
}

/* poll(2): an events file is readable once something happened since it was read. */
static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct op_scope s;
	FH_AUTO struct fh_entry *e = fh_get(fi->fh);
	struct handle *h = e ? e->obj : NULL;
	struct ep_node_info n;
	unsigned revents = POLLIN | POLLRDNORM;

	(void)ino;
	scope_begin(&s, req, OP_POLL);
	if (h && h->events && tree_resolve(&s.ctx, h->path, &n) == 0) {
		if (ph)
			events_poll_wait(n.kind, n.key, g_steal_pointer(&ph));
		revents = events_seq(n.kind, n.key) != h->events_seq ? POLLIN | POLLRDNORM | POLLPRI : 0;
		node_info_clear(&n);
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	scope_end(&s, 0);
	fuse_reply_poll(req, revents);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init_op,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.access = fs_access,
	.create = fs_create,
	.poll = fs_poll,
	.fallocate = fs_fallocate,
};

static guint ino_hash(gconstpointer p)
{
	fuse_ino_t ino = *(const fuse_ino_t *)p;

	return (guint)(ino ^ (ino >> 32));
}

static gboolean ino_equal(gconstpointer a, gconstpointer b)
{
	return *(const fuse_ino_t *)a == *(const fuse_ino_t *)b;
}

void fs_init(const struct fs_options *opts)
{
	fs.opt = *opts;
	fs.nodes = g_hash_table_new_full(ino_hash, ino_equal, NULL, node_free);
	fs.handles = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	fs.paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	fs.busy = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

void fs_start(struct fuse_session *se)
{
	fs.se = se;
	fs.invals = g_async_queue_new();
	fs.notifier = g_thread_new("epfs-notify", notifier_main, NULL);
}

void fs_shutdown(void)
{
	if (fs.notifier) {
		g_async_queue_push(fs.invals, &stop_marker);
		g_thread_join(fs.notifier);
		fs.notifier = NULL;
	}
	if (fs.invals) {
		struct inval *iv;
		while ((iv = g_async_queue_try_pop(fs.invals))) {
			g_free(iv->name);
			g_free(iv);
		}
		g_async_queue_unref(fs.invals);
		fs.invals = NULL;
	}
	g_clear_pointer(&fs.nodes, g_hash_table_destroy);
	g_clear_pointer(&fs.paths, g_hash_table_destroy);
	g_clear_pointer(&fs.busy, g_hash_table_destroy);
	if (fs.handles) {
		GHashTableIter it;
		gpointer e;
		g_hash_table_iter_init(&it, fs.handles);
		while (g_hash_table_iter_next(&it, NULL, &e))
			fh_put(e);
		g_clear_pointer(&fs.handles, g_hash_table_destroy);
	}
}
