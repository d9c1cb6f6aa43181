/* tree.c: paths to nodes, and what each operation means for them. */
#include "tree.h"
#include "error.h"
#include "epfs.h"
#include "filestore.h"
#include "fs.h"
#include "snippets.h"
#include "tree_store.h"
#include "value.h"

#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <string.h>

struct timespec tree_mount_time;
gid_t tree_admin_gid;

void node_info_clear(struct ep_node_info *n)
{
	g_clear_pointer(&n->key, g_free);
	g_clear_pointer(&n->obj, obj_unref);
	g_clear_pointer(&n->target, obj_unref);
	g_clear_pointer(&n->store_root, g_free);
	g_clear_pointer(&n->store_path, g_free);
	g_clear_pointer(&n->gen_name, g_free);
	g_clear_pointer(&n->snip, g_free);
	memset(n, 0, sizeof(*n));
}

static const struct meta_file *meta_by_name(const char *name)
{
	for (const struct meta_file *m = meta_files; m->name; m++)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

static const struct ep_special *special_by_name(const struct ep_kind *k, const char *name)
{
	if (!k->specials)
		return NULL;
	for (const struct ep_special *s = k->specials; s->name; s++)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

/* The length of the grouping directory a top-level kind sits in ("public" of
 * "public/projects"), or 0. */
static size_t group_len(const struct ep_kind *k)
{
	const char *slash = k->parent ? NULL : strchr(k->name, '/');

	return slash ? (size_t)(slash - k->name) : 0;
}

static bool group_is(const struct ep_kind *k, const char *group)
{
	size_t len = group_len(k);

	return len && len == strlen(group) && !strncmp(k->name, group, len);
}

/* A grouping directory is there for whoever sees one of its kinds. */
static bool group_visible(struct ep_ctx *ctx, const char *group)
{
	for (guint i = 0; ep_kinds[i]; i++)
		if (group_is(ep_kinds[i], group) && kind_visible(ctx, ep_kinds[i], NULL))
			return true;
	return false;
}

int tree_resolve(struct ep_ctx *ctx, const char *path, struct ep_node_info *out)
{
	g_auto(GStrv) parts = NULL;
	int r;

	(void)ctx;
	memset(out, 0, sizeof(*out));
	out->type = N_ROOT;
	if (!*path)
		return 0;
	parts = g_strsplit(path, "/", -1);
	for (guint i = 0; parts[i]; i++) {
		const char *name = parts[i];

		out->gated = false;
		switch (out->type) {
		case N_ROOT:
			/* who may see a top-level directory depends on the role */
			out->gated = true;
			if (!strcmp(name, ".epfs")) {
				if (!ctx->admin)
					goto enoent;
				out->type = N_META_DIR;
				break;
			}
			if (!kind_by_name(NULL, name) && group_visible(ctx, name)) {
				out->key = g_strdup(name);
				out->type = N_GROUP;
				break;
			}
			out->kind = kind_by_name(NULL, name);
			if (!out->kind || !kind_visible(ctx, out->kind, NULL))
				goto enoent;
			out->type = N_COLLECTION;
			break;
		case N_GROUP: {
			g_autofree char *full = g_strconcat(out->key, "/", name, NULL);

			out->kind = kind_by_name(NULL, full);
			out->gated = true;
			if (!out->kind || !kind_visible(ctx, out->kind, NULL))
				goto enoent;
			g_clear_pointer(&out->key, g_free);
			out->type = N_COLLECTION;
			break;
		}
		case N_META_DIR:
			out->meta = meta_by_name(name);
			if (!out->meta)
				goto enoent;
			out->type = N_META_FILE;
			break;
		case N_COLLECTION: {
			const struct ep_special *s = special_by_name(out->kind, name);
			g_autofree char *key = NULL;

			if (s) {
				out->special = s;
				out->type = N_SPECIAL;
				break;
			}
			if (!value_id_valid(name))
				goto enoent;
			key = out->key ? g_strconcat(out->key, "/", name, NULL) : g_strdup(name);
			if ((r = kind_load(out->kind, key, &out->obj)) < 0)
				goto fail;
			out->gated = out->kind->visible != NULL;
			if (!kind_visible(ctx, out->kind, out->obj))
				goto enoent;
			g_free(out->key);
			out->key = g_steal_pointer(&key);
			out->type = N_OBJECT;
			break;
		}
		case N_OBJECT: {
			const struct ep_kind *sub = kind_by_name(out->kind, name);
			const struct ep_relation *rel = kind_relation(out->kind, name);

			if (rel) {
				out->rel = rel;
				out->type = N_RELDIR;
				break;
			}
			if (out->kind->store_dirs)
				for (const struct ep_store_dir *sd = out->kind->store_dirs; sd->name; sd++)
					if (!strcmp(sd->name, name)) {
						out->store = sd;
						out->store_root = sd->path(out->obj);
						out->store_path = g_strdup(out->store_root);
						out->owner = kind_owner(out->kind, out->obj);
						out->type = N_STORE;
					}
			if (out->kind->gen_dirs)
				for (const struct ep_gen_dir *g = out->kind->gen_dirs; g->name; g++)
					if (!strcmp(g->name, name)) {
						out->gen = g;
						out->type = N_GENDIR;
					}
			if (out->kind->has_snippets && !strcmp(name, "snippets")) {
				out->snip = g_new0(struct snip, 1);
				out->snip->dir = true;
				out->snip->mtime_us = out->obj->mtime_us;
				out->type = N_SNIP;
			}
			if (out->type == N_STORE || out->type == N_GENDIR || out->type == N_SNIP)
				break;
			if (sub && sub->singleton) {
				/* users/<u>/service: the one record keyed like its parent */
				struct ep_obj *one = NULL;

				if ((r = kind_load(sub, out->key, &one)) == -ENOENT)
					one = kind_blank(sub, out->key);
				else if (r < 0)
					goto fail;
				g_clear_pointer(&out->obj, obj_unref);
				out->obj = one;
				out->kind = sub;
				out->gated = sub->visible != NULL;
				if (!kind_visible(ctx, sub, one))
					goto enoent;
				out->type = N_OBJECT;
				break;
			}
			if (sub) {
				out->kind = sub;
				g_clear_pointer(&out->obj, obj_unref);
				out->type = N_COLLECTION;   /* key stays: it is the parent key */
				break;
			}
			out->attr = kind_attr(out->kind, name);
			if (!out->attr)
				goto enoent;
			if (out->attr->type == AT_LINK) {
				/* an unset link is absent */
				const char *v = out->attr->column ? obj_get(out->obj, out->attr->column) : NULL;
				if (!v || !*v)
					goto enoent;
			}
			out->type = N_ATTR;
			break;
		}
		case N_RELDIR: {
			g_autoptr(GPtrArray) linked = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);

			if ((r = relation_list(out->rel, out->obj, linked)) < 0)
				goto fail;
			for (guint j = 0; j < linked->len; j++)
				if (!strcmp(((struct ep_obj *)linked->pdata[j])->id, name))
					out->target = obj_ref(linked->pdata[j]);
			if (!out->target)
				goto enoent;
			out->type = N_RELLINK;
			break;
		}
		case N_GENDIR:
			out->gen_name = g_strdup(name);
			out->type = N_GENFILE;
			break;
		case N_SNIP: {
			struct snip next;

			if (!out->snip->dir)
				goto enoent;
			if ((r = snip_lookup(out->obj->id, out->snip->id, name, &next)) < 0)
				goto fail;
			*out->snip = next;
			break;
		}
		case N_STORE: {
			/* the store's own temporary files are not shown */
			if (g_str_has_prefix(name, FILESTORE_TEMP_PREFIX) || !strcmp(name, ".") || !strcmp(name, ".."))
				goto enoent;
			char *p = g_strconcat(out->store_path, "/", name, NULL);
			g_free(out->store_path);
			out->store_path = p;
			break;
		}
		default:
			goto enoent;    /* files have no children */
		}
	}
	return 0;
enoent:
	r = -ENOENT;
fail:
	node_info_clear(out);
	return r;
}

bool tree_children_gated(struct ep_node_info *dir)
{
	switch (dir->type) {
	case N_ROOT:
	case N_GROUP:
		return true;
	case N_COLLECTION:
		return dir->kind->visible != NULL;
	case N_OBJECT:
		for (guint i = 0; ep_kinds[i]; i++)
			if (ep_kinds[i]->parent == dir->kind && ep_kinds[i]->singleton && ep_kinds[i]->visible)
				return true;
		return false;
	default:
		return false;
	}
}

static void stat_dir(struct stat *st, int64_t mtime_us)
{
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = 0;
	st->st_gid = tree_admin_gid;
	if (mtime_us) {
		st->st_mtim.tv_sec = mtime_us / G_USEC_PER_SEC;
		st->st_mtim.tv_nsec = (mtime_us % G_USEC_PER_SEC) * 1000;
	} else {
		st->st_mtim = tree_mount_time;
	}
	st->st_atim = st->st_ctim = st->st_mtim;
	st->st_blksize = 4096;
}

static void stat_file(struct stat *st, mode_t mode, size_t size, int64_t mtime_us)
{
	stat_dir(st, mtime_us);
	st->st_mode = S_IFREG | mode;
	st->st_nlink = 1;
	st->st_size = size;
	st->st_blocks = (size + 511) / 512;
}

static int collection_mtime(struct ep_node_info *n, int64_t *mtime)
{
	g_autoptr(GPtrArray) objs = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r = kind_list(n->kind, n->key, objs);

	*mtime = 0;
	if (r < 0)
		return r;
	for (guint i = 0; i < objs->len; i++)
		*mtime = MAX(*mtime, ((struct ep_obj *)objs->pdata[i])->mtime_us);
	return 0;
}

int tree_render(struct ep_ctx *ctx, struct ep_node_info *n, GString *out)
{
	switch (n->type) {
	case N_ATTR:
		return attr_render(ctx, n->obj, n->attr, out);
	case N_SPECIAL:
		return n->special->render(ctx, out);
	case N_META_FILE:
		return n->meta->render(ctx, out);
	case N_GENFILE:
		return n->gen->render(n->obj, n->gen_name, out);
	case N_SNIP:
		return n->snip->dir ? -EISDIR : snip_read(n->snip->id, out);
	case N_STORE: {
		g_autofree char *target = NULL;
		int r = filestore_readlink(epfs_files, n->store_path, &target);
		if (r == 0)
			g_string_append(out, target);
		return r;
	}
	case N_RELLINK: {
		g_autofree char *up = obj_path_to_root(n->obj);
		g_string_append_printf(out, "../%s/%s/%s", up, n->rel->target, n->target->id);
		return 0;
	}
	default:
		return -EISDIR;
	}
}

/* The sub-directories every record of k has (its st_nlink is 2 more). */
static nlink_t object_subdirs(const struct ep_kind *k)
{
	nlink_t n = k->has_snippets ? 1 : 0;

	if (k->store_dirs)
		for (const struct ep_store_dir *sd = k->store_dirs; sd->name; sd++)
			n++;
	if (k->gen_dirs)
		for (const struct ep_gen_dir *g = k->gen_dirs; g->name; g++)
			n++;
	if (k->relations)
		for (const struct ep_relation *rel = k->relations; rel->name; rel++)
			n++;
	for (guint i = 0; ep_kinds[i]; i++)
		if (ep_kinds[i]->parent == k)
			n++;
	return n;
}

int tree_stat(struct ep_ctx *ctx, struct ep_node_info *n, struct stat *st, GString *content)
{
	int64_t mtime = 0;
	int r;

	memset(st, 0, sizeof(*st));
	switch (n->type) {
	case N_ROOT:
	case N_META_DIR:
		stat_dir(st, 0);
		return 0;
	case N_GROUP:
		stat_dir(st, 0);
		st->st_mode = S_IFDIR | 0555;
		return 0;
	case N_COLLECTION:
		if ((r = collection_mtime(n, &mtime)) < 0)
			return r;
		stat_dir(st, mtime);
		/* as btrfs: 1 says "not counted" (find then looks at every entry) */
		st->st_nlink = 1;
		if (n->kind->read_only)
			st->st_mode = S_IFDIR | 0555;
		/* users/<u>/projects/ is the user's, as what she makes in it */
		if (n->kind->parent && n->key) {
			g_autoptr(ep_obj) parent = NULL;
			if (kind_load(n->kind->parent, n->key, &parent) == 0)
				st->st_uid = kind_owner(n->kind->parent, parent);
		}
		return 0;
	case N_OBJECT:
	case N_RELDIR:
		stat_dir(st, n->obj->mtime_us);
		st->st_uid = kind_owner(n->kind, n->obj);
		if (n->kind->read_only)
			st->st_mode = S_IFDIR | 0555;
		if (n->type == N_OBJECT)
			st->st_nlink = 2 + object_subdirs(n->kind);
		return 0;
	case N_RELLINK:
		g_string_truncate(content, 0);
		tree_render(ctx, n, content);
		stat_file(st, 0777, content->len, MAX(n->obj->mtime_us, n->target->mtime_us));
		st->st_mode = S_IFLNK | 0777;
		return 0;
	case N_ATTR:
		g_string_truncate(content, 0);
		if ((r = attr_render(ctx, n->obj, n->attr, content)) < 0)
			return r;
		if (n->attr->type == AT_LINK) {
			stat_file(st, 0777, content->len, n->obj->mtime_us);
			st->st_mode = S_IFLNK | 0777;
			return 0;
		}
		stat_file(st, attr_mode(ctx, n->obj, n->attr), content->len, n->obj->mtime_us);
		/* what only admins change belongs to root; the rest to the record's owner */
		if (!(n->attr->flags & ATTR_ADMIN))
			st->st_uid = kind_owner(n->kind, n->obj);
		return 0;
	case N_SPECIAL:
		g_string_truncate(content, 0);
		if ((r = n->special->render(ctx, content)) < 0)
			return r;
		if ((r = collection_mtime(n, &mtime)) < 0)
			return r;
		stat_file(st, 0444, content->len, mtime);
		return 0;
	case N_STORE:
		if ((r = filestore_lstat(epfs_files, n->store_path, st)) < 0)
			return r;
		store_stat_fix(n, st);
		return 0;
	case N_GENDIR:
		stat_dir(st, n->obj->mtime_us);
		st->st_uid = kind_owner(n->kind, n->obj);
		if (n->kind->read_only)
			st->st_mode = S_IFDIR | 0555;
		return 0;
	case N_SNIP:
		if (n->snip->dir) {
			stat_dir(st, n->snip->mtime_us);
		} else {
			/* the bytes, for the open that follows (fs keeps what stat rendered) */
			g_string_truncate(content, 0);
			if ((r = snip_read(n->snip->id, content)) < 0)
				return r;
			stat_file(st, 0644, content->len, n->snip->mtime_us);
		}
		st->st_uid = kind_owner(n->kind, n->obj);
		st->st_ino = n->snip->id;   /* its identity (fs.c numbers the inode from it) */
		return 0;
	case N_GENFILE:
		g_string_truncate(content, 0);
		if ((r = n->gen->render(n->obj, n->gen_name, content)) < 0)
			return r;
		stat_file(st, 0444, content->len, n->obj->mtime_us);
		if (n->gen->symlinks)
			st->st_mode = S_IFLNK | 0777;
		st->st_uid = kind_owner(n->kind, n->obj);
		return 0;
	case N_META_FILE:
		g_string_truncate(content, 0);
		if ((r = n->meta->render(ctx, content)) < 0)
			return r;
		stat_file(st, 0444, content->len, 0);
		st->st_mtim = st->st_ctim = st->st_atim = (struct timespec){ g_get_real_time() / G_USEC_PER_SEC, 0 };
		return 0;
	}
	return -ENOENT;
}

/* List the children of dir by resolving each name (cheap: records are cached). */
static int list_child(struct ep_ctx *ctx, const char *dirpath, const char *name, tree_entry_cb cb,
                      void *data)
{
	g_autofree char *path = *dirpath ? g_strconcat(dirpath, "/", name, NULL) : g_strdup(name);
	g_autoptr(GString) content = g_string_new(NULL);
	struct ep_node_info n;
	struct stat st;
	bool fallback = false;
	int r;

	if ((r = tree_resolve(ctx, path, &n)) < 0)
		return r == -ENOENT ? 0 : r;
	r = tree_stat(ctx, &n, &st, content);
	/* a live value its backend cannot give now is still listed: a walk goes on,
	 * and reading the file itself reports the failure */
	if (r < 0 && r != -ENOENT && (n.type == N_ATTR || n.type == N_SPECIAL)) {
		memset(&st, 0, sizeof(st));
		stat_file(&st, n.type == N_ATTR ? attr_mode(ctx, n.obj, n.attr) : 0444, 0,
		          n.type == N_ATTR ? n.obj->mtime_us : 0);
		/* no bytes to remember: the open that follows asks again */
		fallback = true;
		r = 0;
	}
	node_info_clear(&n);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	cb(data, name, &st, S_ISDIR(st.st_mode) || fallback ? NULL : content);
	return 0;
}

static char *node_path(struct ep_node_info *n)
{
	switch (n->type) {
	case N_ROOT:
		return g_strdup("");
	case N_META_DIR:
		return g_strdup(".epfs");
	case N_GROUP:
		return g_strdup(n->key);
	case N_COLLECTION: {
		if (!n->key)
			return g_strdup(n->kind->name);
		g_autofree char *parent = tree_object_path(n->kind->parent, n->key);
		return g_strconcat(parent, "/", n->kind->name, NULL);
	}
	case N_OBJECT:
		return tree_object_path(n->kind, n->key);
	case N_RELDIR: {
		g_autofree char *obj = tree_object_path(n->kind, n->key);
		return g_strconcat(obj, "/", n->rel->name, NULL);
	}
	case N_STORE: {
		g_autofree char *obj = tree_object_path(n->kind, n->key);
		const char *rest = n->store_path + strlen(n->store_root);
		return g_strconcat(obj, "/", n->store->name, rest, NULL);
	}
	case N_GENDIR: {
		g_autofree char *obj = tree_object_path(n->kind, n->key);
		return g_strconcat(obj, "/", n->gen->name, NULL);
	}
	default:
		return NULL;
	}
}

int tree_list(struct ep_ctx *ctx, struct ep_node_info *dir, tree_entry_cb cb, void *data)
{
	g_autofree char *path = node_path(dir);
	int r = 0;

	switch (dir->type) {
	case N_ROOT:
		for (guint i = 0; ep_kinds[i] && r >= 0; i++) {
			size_t glen = group_len(ep_kinds[i]);
			bool first = true;

			if (ep_kinds[i]->parent)
				continue;
			if (!glen) {
				r = list_child(ctx, path, ep_kinds[i]->name, cb, data);
				continue;
			}
			/* a grouping directory, once, at its first kind */
			g_autofree char *group = g_strndup(ep_kinds[i]->name, glen);
			for (guint j = 0; j < i; j++)
				first &= !group_is(ep_kinds[j], group);
			if (first)
				r = list_child(ctx, path, group, cb, data);
		}
		if (r >= 0)
			r = list_child(ctx, path, ".epfs", cb, data);
		return r;
	case N_GROUP:
		for (guint i = 0; ep_kinds[i] && r >= 0; i++)
			if (group_is(ep_kinds[i], dir->key))
				r = list_child(ctx, path, ep_kinds[i]->name + strlen(dir->key) + 1, cb, data);
		return r;
	case N_META_DIR:
		for (const struct meta_file *m = meta_files; m->name && r >= 0; m++)
			r = list_child(ctx, path, m->name, cb, data);
		return r;
	case N_COLLECTION: {
		g_autoptr(GPtrArray) objs = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);

		if (dir->kind->specials)
			for (const struct ep_special *s = dir->kind->specials; s->name && r >= 0; s++)
				r = list_child(ctx, path, s->name, cb, data);
		if (r < 0 || (r = kind_list(dir->kind, dir->key, objs)) < 0)
			return r;
		for (guint i = 0; i < objs->len && r >= 0; i++)
			r = list_child(ctx, path, ((struct ep_obj *)objs->pdata[i])->id, cb, data);
		return r;
	}
	case N_SNIP: {
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GArray) snips = g_array_new(FALSE, FALSE, sizeof(struct snip));

		if (!dir->snip->dir)
			return -ENOTDIR;
		if ((r = snip_list(dir->obj->id, dir->snip->id, names, snips)) < 0)
			return r;
		for (guint i = 0; i < names->len; i++) {
			struct snip *sn = &g_array_index(snips, struct snip, i);
			struct stat st = { 0 };
			if (sn->dir)
				stat_dir(&st, sn->mtime_us);
			else
				stat_file(&st, 0644, sn->size, sn->mtime_us);
			st.st_uid = kind_owner(dir->kind, dir->obj);
			cb(data, names->pdata[i], &st, NULL);
		}
		return 0;
	}
	case N_GENDIR: {
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

		if ((r = dir->gen->list(dir->obj, names)) < 0)
			return r;
		for (guint i = 0; i < names->len && r >= 0; i++)
			r = list_child(ctx, path, names->pdata[i], cb, data);
		return r;
	}
	case N_STORE: {
		g_autoptr(GPtrArray) ents = filestore_dirents_new();

		if ((r = filestore_readdir(epfs_files, dir->store_path, ents)) < 0)
			return r;
		for (guint i = 0; i < ents->len; i++) {
			struct filestore_dirent *e = ents->pdata[i];
			if (g_str_has_prefix(e->name, FILESTORE_TEMP_PREFIX))
				continue;
			store_stat_fix(dir, &e->st);
			cb(data, e->name, &e->st, NULL);
		}
		return 0;
	}
	case N_RELDIR: {
		g_autoptr(GPtrArray) linked = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);

		if ((r = relation_list(dir->rel, dir->obj, linked)) < 0)
			return r;
		for (guint i = 0; i < linked->len && r >= 0; i++)
			r = list_child(ctx, path, ((struct ep_obj *)linked->pdata[i])->id, cb, data);
		return r;
	}
	case N_OBJECT:
		for (const struct ep_attr *a = dir->kind->attrs; a->name && r >= 0; a++)
			r = list_child(ctx, path, a->name, cb, data);
		if (dir->kind->store_dirs)
			for (const struct ep_store_dir *sd = dir->kind->store_dirs; sd->name && r >= 0; sd++)
				r = list_child(ctx, path, sd->name, cb, data);
		if (dir->kind->gen_dirs)
			for (const struct ep_gen_dir *g = dir->kind->gen_dirs; g->name && r >= 0; g++)
				r = list_child(ctx, path, g->name, cb, data);
		if (dir->kind->has_snippets && r >= 0)
			r = list_child(ctx, path, "snippets", cb, data);
		if (dir->kind->relations)
			for (const struct ep_relation *rel = dir->kind->relations; rel->name && r >= 0; rel++)
				r = list_child(ctx, path, rel->name, cb, data);
		for (guint i = 0; ep_kinds[i] && r >= 0; i++)
			if (ep_kinds[i]->parent == dir->kind)
				r = list_child(ctx, path, ep_kinds[i]->name, cb, data);
		return r;
	default:
		return -ENOTDIR;
	}
}

static int snip_may_write(struct ep_ctx *ctx, struct ep_node_info *n)
{
	if (!kind_may_write(ctx, n->kind, n->obj))
		return ep_errorf(EACCES, "only the owner changes these snippets");
	return 0;
}

int tree_may_write(struct ep_ctx *ctx, struct ep_node_info *n)
{
	switch (n->type) {
	case N_STORE:
		return store_may_write(ctx, n);
	case N_SNIP:
		return n->snip->dir ? -EISDIR : snip_may_write(ctx, n);
	case N_ATTR:
		if (attr_mode(ctx, n->obj, n->attr) == 0444 || n->attr->type == AT_LINK)
			return ep_errorf(EACCES, "%s is read-only", n->attr->name);
		if ((n->attr->flags & ATTR_ADMIN) && !ctx->admin)
			return ep_errorf(EACCES, "%s is changed by admins only", n->attr->name);
		if (!kind_may_write(ctx, n->kind, n->obj))
			return ep_errorf(EACCES, "not allowed to change %s/%s", n->kind->name, n->key);
		return 0;
	case N_SPECIAL:
		return ep_errorf(EACCES, "%s is read-only", n->special->name);
	case N_GENFILE:
		return ep_errorf(EACCES, "%s/%s is generated and read-only", n->gen->name, n->gen_name);
	case N_META_FILE:
		return ep_errorf(EACCES, ".epfs/%s is read-only", n->meta->name);
	default:
		return -EISDIR;
	}
}

int tree_write(struct ep_ctx *ctx, struct ep_node_info *n, const char *value)
{
	int r = tree_may_write(ctx, n);

	if (r < 0)
		return r;
	return attr_write(ctx, n->obj, n->attr, value);
}

bool tree_write_incomplete(struct ep_node_info *n, const char *buf, size_t len)
{
	return n->type == N_ATTR && attr_incomplete(n->attr, buf, len);
}

int tree_mkdir(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, mode_t mode)
{
	int r;

	switch (parent->type) {
	case N_STORE: {
		g_autofree char *p = store_child(parent, name, &r);
		if (!p || (r = store_may_write(ctx, parent)) < 0)
			return r;
		if ((r = filestore_mkdir(epfs_files, p, mode & 07777)) == 0)
			store_made(ctx, p, mode, false);
		return r;
	}
	case N_SNIP: {
		uint64_t id;
		if (!parent->snip->dir)
			return -ENOTDIR;
		if ((r = snip_may_write(ctx, parent)) < 0)
			return r;
		return snip_create(parent->obj->id, parent->snip->id, name, true, &id);
	}
	case N_COLLECTION:
		if (special_by_name(parent->kind, name))
			return ep_errorf(EEXIST, "%s/%s is a generated file", parent->kind->name, name);
		return kind_create(ctx, parent->kind, parent->key, name);
	case N_OBJECT:
		return ep_errorf(EINVAL, "%s/%s: attributes and sub-directories are fixed; '%s' is not one",
		                 parent->kind->name, parent->key, name);
	case N_RELDIR:
		return ep_errorf(EPERM, "%s holds links: ln -s ../../../%s/<id> creates one", parent->rel->name,
		                 parent->rel->target);
	case N_ROOT:
		return ep_errorf(EPERM, "the top-level directories are fixed");
	case N_GROUP:
		return ep_errorf(EACCES, "%s/ lists what users share: echo 1 > shared publishes", parent->key);
	default:
		return ep_errorf(EPERM, "cannot create directories here");
	}
}

int tree_symlink(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, const char *target)
{
	const struct ep_attr *a;
	int r;

	switch (parent->type) {
	case N_STORE: {
		g_autofree char *p = store_child(parent, name, &r);
		if (!p || (r = store_may_write(ctx, parent)) < 0)
			return r;
		if ((r = filestore_symlink(epfs_files, target, p)) == 0)
			store_made(ctx, p, 0777, true);
		return r;
	}
	case N_GENDIR:
		if (!parent->gen->link)
			return ep_errorf(EPERM, "%s/ holds generated files", parent->gen->name);
		if (!kind_may_write(ctx, parent->kind, parent->obj))
			return ep_errorf(EACCES, "not allowed to change %s/%s", parent->kind->name, parent->key);
		r = parent->gen->link(ctx, parent->obj, name, target);
		kind_changed(parent->kind, parent->key);
		return r;
	case N_RELDIR:
		return relation_link(ctx, parent->rel, parent->obj, name, target);
	case N_OBJECT:
		a = kind_attr(parent->kind, name);
		if (a && a->type == AT_LINK)
			return link_attr_set(ctx, parent->obj, a, target);
		return ep_errorf(EPERM, "%s: no relation of that name here", name);
	default:
		return ep_errorf(EPERM, "%s: no relation can be made here", name);
	}
}

int tree_unlink(struct ep_ctx *ctx, struct ep_node_info *n, const char *name)
{
	int r;

	switch (n->type) {
	case N_SNIP:
		if (n->snip->dir)
			return -EISDIR;
		if ((r = snip_may_write(ctx, n)) < 0)
			return r;
		return snip_remove(n->obj->id, n->snip->id);
	case N_GENFILE:
		if (!n->gen->unlink)
			return ep_errorf(EPERM, "%s/%s is generated", n->gen->name, name);
		if (!kind_may_write(ctx, n->kind, n->obj))
			return ep_errorf(EACCES, "not allowed to change %s/%s", n->kind->name, n->key);
		r = n->gen->unlink(ctx, n->obj, name);
		kind_changed(n->kind, n->key);
		return r;
	case N_STORE:
		if (!strcmp(n->store_path, n->store_root))
			return ep_errorf(EPERM, "%s/ is part of the record", name);
		if ((r = store_may_write(ctx, n)) < 0)
			return r;
		return filestore_unlink(epfs_files, n->store_path);
	case N_RELLINK:
		return relation_unlink(ctx, n->rel, n->obj, name);
	case N_ATTR:
		if (n->attr->type == AT_LINK && !(n->attr->flags & ATTR_RO))
			return link_attr_clear(ctx, n->obj, n->attr);
		return ep_errorf(EPERM, "%s: attributes cannot be removed (rmdir removes the resource)", name);
	case N_SPECIAL:
	case N_META_FILE:
		return ep_errorf(EPERM, "%s: generated files cannot be removed", name);
	default:
		return -EISDIR;
	}
}

int tree_rmdir(struct ep_ctx *ctx, struct ep_node_info *n)
{
	int r;

	switch (n->type) {
	case N_SNIP:
		/* a node goes with its subtree (SPEC: deleting a node deletes its subtree) */
		if (!n->snip->id)
			return ep_errorf(EPERM, "snippets/ is part of the user");
		if (!n->snip->dir)
			return -ENOTDIR;
		if ((r = snip_may_write(ctx, n)) < 0)
			return r;
		return snip_remove(n->obj->id, n->snip->id);
	case N_STORE:
		if (!strcmp(n->store_path, n->store_root))
			return ep_errorf(EPERM, "%s/ is part of the record: rmdir the record itself", n->store->name);
		if ((r = store_may_write(ctx, n)) < 0)
			return r;
		return filestore_rmdir(epfs_files, n->store_path);
	case N_OBJECT:
		if (n->kind->singleton)
			return ep_errorf(EPERM, "%s/ is part of its %s record", n->kind->name, n->kind->parent->name);
		return kind_remove(ctx, n->obj);
	case N_ATTR:
	case N_SPECIAL:
	case N_META_FILE:
		return -ENOTDIR;
	default:
		return ep_errorf(EPERM, "this directory is part of the fixed tree");
	}
}

char *tree_object_path(const struct ep_kind *k, const char *key)
{
	const char *slash;

	if (!k->parent)
		return g_strconcat(k->name, "/", key, NULL);
	if (k->singleton) {
		g_autofree char *parent = tree_object_path(k->parent, key);
		return g_strconcat(parent, "/", k->name, NULL);
	}
	slash = strrchr(key, '/');
	if (!slash)
		return g_strconcat(k->name, "/", key, NULL);
	g_autofree char *parent_key = g_strndup(key, slash - key);
	g_autofree char *parent = tree_object_path(k->parent, parent_key);
	return g_strconcat(parent, "/", k->name, "/", slash + 1, NULL);
}

void tree_error_target(struct ep_node_info *n, const char **kind, const char **key)
{
	*kind = NULL;
	*key = NULL;
	/* what is below a record (links, generated files, its file-store and
	 * snippet trees) reports to the record's error file */
	if (n->type != N_OBJECT && n->type != N_ATTR && n->type != N_RELDIR && n->type != N_RELLINK &&
	    n->type != N_GENDIR && n->type != N_GENFILE && n->type != N_STORE && n->type != N_SNIP)
		return;
	if (n->kind && n->key && kind_attr(n->kind, "error")) {
		*kind = n->kind->name;
		*key = n->key;
	}
}

void tree_changed(const struct ep_kind *k, const char *key)
{
	g_autofree char *path = tree_object_path(k, key);
	const char *slash = strrchr(path, '/');
	g_autofree char *collection = g_strndup(path, slash - path);

	fs_invalidate(path);
	for (const struct ep_attr *a = k->attrs; a->name; a++) {
		g_autofree char *ap = g_strconcat(path, "/", a->name, NULL);
		fs_invalidate(ap);
	}
	if (k->relations)
		for (const struct ep_relation *rel = k->relations; rel->name; rel++) {
			g_autofree char *rp = g_strconcat(path, "/", rel->name, NULL);
			fs_invalidate(rp);
		}
	if (k->specials)
		for (const struct ep_special *s = k->specials; s->name; s++) {
			g_autofree char *sp = g_strconcat(collection, "/", s->name, NULL);
			fs_invalidate(sp);
		}
	fs_invalidate(collection);
	fs_invalidate_entry(collection, slash + 1);
}

int tree_rename(struct ep_ctx *ctx, struct ep_node_info *n, struct ep_node_info *newparent,
                const char *newname, unsigned flags)
{
	g_autofree char *to = NULL;
	int r;

	if (n->type == N_SNIP && newparent->type == N_SNIP) {
		if (!n->snip->id || n->obj != newparent->obj || strcmp(n->obj->id, newparent->obj->id))
			return ep_errorf(EXDEV, "snippets move within one user's tree");
		if (!newparent->snip->dir)
			return -ENOTDIR;
		if ((r = snip_may_write(ctx, n)) < 0)
			return r;
		return snip_rename(n->obj->id, n->snip->id, newparent->snip->id, newname, flags & RENAME_NOREPLACE);
	}
	if (n->type != N_STORE || newparent->type != N_STORE)
		return ep_errorf(EPERM, "only files can be renamed; ids cannot");
	if (strcmp(n->store_root, newparent->store_root))
		return ep_errorf(EXDEV, "rename across directories of different records");
	if (!strcmp(n->store_path, n->store_root))
		return ep_errorf(EPERM, "%s/ is part of the record", n->store->name);
	if (!(to = store_child(newparent, newname, &r)) || (r = store_may_write(ctx, n)) < 0)
		return r;
	return filestore_rename(epfs_files, n->store_path, to, flags);
}

int tree_snip_create(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, uint64_t *id)
{
	int r;

	if (parent->type != N_SNIP)
		return -EINVAL;
	if (!parent->snip->dir)
		return -ENOTDIR;
	if ((r = snip_may_write(ctx, parent)) < 0)
		return r;
	return snip_create(parent->obj->id, parent->snip->id, name, false, id);
}

int tree_snip_setattr(struct ep_ctx *ctx, struct ep_node_info *n, const struct stat *attr, int to_set)
{
	int r;

	if (n->type != N_SNIP)
		return -EINVAL;
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		return ep_errorf(EPERM, "snippets have no modes or owners of their own");
	if ((r = snip_may_write(ctx, n)) < 0)
		return r;
	if ((to_set & FUSE_SET_ATTR_SIZE) && !n->snip->dir) {
		g_autoptr(GString) text = g_string_new(NULL);
		if ((r = snip_read(n->snip->id, text)) < 0)
			return r;
		if ((size_t)attr->st_size < text->len)
			g_string_truncate(text, attr->st_size);
		else
			return attr->st_size == (off_t)text->len ? 0 : ep_errorf(EINVAL, "snippets grow by writing");
		if ((r = snip_write(n->snip->id, text->str, text->len)) < 0)
			return r;
	}
	if (to_set & FUSE_SET_ATTR_MTIME) {
		int64_t us = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? g_get_real_time()
		                                                 : (int64_t)attr->st_mtim.tv_sec * G_USEC_PER_SEC +
		                                                   attr->st_mtim.tv_nsec / 1000;
		if ((r = snip_set_mtime(n->snip->id, us)) < 0)
			return r;
	}
	return 0;
}
