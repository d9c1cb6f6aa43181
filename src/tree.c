/* tree.c: paths to nodes, and what each operation means for them. */
#include "tree.h"
#include "error.h"
#include "fs.h"
#include "value.h"

#include <errno.h>
#include <string.h>

struct timespec tree_mount_time;
gid_t tree_admin_gid;

void node_info_clear(struct ep_node_info *n)
{
	g_clear_pointer(&n->key, g_free);
	g_clear_pointer(&n->obj, obj_unref);
	g_clear_pointer(&n->target, obj_unref);
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

		switch (out->type) {
		case N_ROOT:
			if (!strcmp(name, ".epfs")) {
				out->type = N_META_DIR;
				break;
			}
			out->kind = kind_by_name(NULL, name);
			if (!out->kind)
				goto enoent;
			out->type = N_COLLECTION;
			break;
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

/* Newest change among a collection's records (its mtime). */
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
	case N_RELLINK: {
		g_autofree char *up = obj_path_to_root(n->obj);
		g_string_append_printf(out, "../%s/%s/%s", up, n->rel->target, n->target->id);
		return 0;
	}
	default:
		return -EISDIR;
	}
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
	case N_COLLECTION:
		if ((r = collection_mtime(n, &mtime)) < 0)
			return r;
		stat_dir(st, mtime);
		return 0;
	case N_OBJECT:
	case N_RELDIR:
		stat_dir(st, n->obj->mtime_us);
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
		return 0;
	case N_SPECIAL:
		g_string_truncate(content, 0);
		if ((r = n->special->render(ctx, content)) < 0)
			return r;
		if ((r = collection_mtime(n, &mtime)) < 0)
			return r;
		stat_file(st, 0444, content->len, mtime);
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
	int r;

	if ((r = tree_resolve(ctx, path, &n)) < 0)
		return r == -ENOENT ? 0 : r;
	r = tree_stat(ctx, &n, &st, content);
	/* a live value its backend cannot give now is still listed: a walk goes on,
	 * and reading the file itself reports the failure */
	if (r < 0 && r != -ENOENT && n.type == N_ATTR) {
		memset(&st, 0, sizeof(st));
		stat_file(&st, attr_mode(ctx, n.obj, n.attr), 0, n.obj->mtime_us);
		g_string_truncate(content, 0);
		r = 0;
	}
	node_info_clear(&n);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	cb(data, name, &st, S_ISDIR(st.st_mode) ? NULL : content);
	return 0;
}

static char *node_path(struct ep_node_info *n)
{
	switch (n->type) {
	case N_ROOT:
		return g_strdup("");
	case N_META_DIR:
		return g_strdup(".epfs");
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
		for (guint i = 0; ep_kinds[i] && r >= 0; i++)
			if (!ep_kinds[i]->parent)
				r = list_child(ctx, path, ep_kinds[i]->name, cb, data);
		if (r >= 0)
			r = list_child(ctx, path, ".epfs", cb, data);
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

int tree_may_write(struct ep_ctx *ctx, struct ep_node_info *n)
{
	switch (n->type) {
	case N_ATTR:
		if (attr_mode(ctx, n->obj, n->attr) == 0444 || n->attr->type == AT_LINK)
			return ep_errorf(EACCES, "%s is read-only", n->attr->name);
		if (!kind_may_write(ctx, n->kind, n->obj))
			return ep_errorf(EACCES, "not allowed to change %s/%s", n->kind->name, n->key);
		return 0;
	case N_SPECIAL:
		return ep_errorf(EACCES, "%s is read-only", n->special->name);
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

int tree_mkdir(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name)
{
	switch (parent->type) {
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
	default:
		return ep_errorf(EPERM, "cannot create directories here");
	}
}

int tree_symlink(struct ep_ctx *ctx, struct ep_node_info *parent, const char *name, const char *target)
{
	const struct ep_attr *a;

	switch (parent->type) {
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
	switch (n->type) {
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
	switch (n->type) {
	case N_OBJECT:
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
	if ((n->type == N_OBJECT || n->type == N_ATTR) && kind_attr(n->kind, "error")) {
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
