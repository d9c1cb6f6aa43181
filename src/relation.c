/* relation.c: symlinks as relations — link attributes (instances/<i>/image@)
 * and directories of links (instances/<i>/volumes/<v>@). */
#include "error.h"
#include "kind.h"
#include "tree.h"
#include "value.h"

#include <errno.h>
#include <string.h>

char *obj_path_to_root(const struct ep_obj *o)
{
	g_autofree char *path = tree_object_path(o->kind, o->key);
	g_autoptr(GString) up = g_string_new("..");

	for (const char *p = path; *p; p++)
		if (*p == '/')
			g_string_append(up, "/..");
	return g_string_free(g_steal_pointer(&up), FALSE);
}

const struct ep_relation *kind_relation(const struct ep_kind *k, const char *name)
{
	if (!k->relations)
		return NULL;
	for (const struct ep_relation *r = k->relations; r->name; r++)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

int relation_list(const struct ep_relation *rel, struct ep_obj *o, GPtrArray *out)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r = kind_list(kind_by_name(NULL, rel->target), NULL, all);

	if (r < 0)
		return r;
	for (guint i = 0; i < all->len; i++) {
		struct ep_obj *t = all->pdata[i];
		if (!g_strcmp0(obj_get(t, rel->column), o->id))
			g_ptr_array_add(out, obj_ref(t));
	}
	return 0;
}

/* The id a symlink target names, if it points into kind_name: ".../<kind>/<id>". */
static int target_id(const char *target, const char *kind_name, char **id)
{
	g_auto(GStrv) parts = g_strsplit(target, "/", -1);
	guint n = g_strv_length(parts);

	/* a trailing slash is harmless */
	while (n > 0 && !*parts[n - 1])
		n--;
	if (n < 2 || strcmp(parts[n - 2], kind_name) || !value_id_valid(parts[n - 1]))
		return ep_errorf(EINVAL, "'%s' does not point at %s/<id>", target, kind_name);
	*id = g_strdup(parts[n - 1]);
	return 0;
}

int relation_link(struct ep_ctx *ctx, const struct ep_relation *rel, struct ep_obj *o, const char *name,
                  const char *target)
{
	const struct ep_kind *tk = kind_by_name(NULL, rel->target);
	g_autofree char *id = NULL;
	g_autoptr(ep_obj) t = NULL;
	const char *cur;
	int r;

	if ((r = target_id(target, rel->target, &id)) < 0)
		return r;
	if (strcmp(id, name))
		return ep_errorf(EINVAL, "the link must be named after what it points at: %s, not %s", id, name);
	if (!kind_may_write(ctx, o->kind, o))
		return ep_errorf(EACCES, "not allowed to change %s/%s", o->kind->name, o->key);
	if ((r = kind_load(tk, id, &t)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "%s/%s does not exist", rel->target, id) : r;
	/* the link changes both ends: a volume is attached by who may change it */
	if (!kind_may_write(ctx, tk, t))
		return ep_errorf(EACCES, "not allowed to change %s/%s", rel->target, id);
	cur = obj_get(t, rel->column);
	if (cur && !strcmp(cur, o->id))
		return ep_errorf(EEXIST, "%s/%s is already linked", rel->target, id);
	if (cur && *cur)
		return ep_errorf(EBUSY, "%s/%s is in use by %s/%s", rel->target, id, o->kind->name, cur);
	r = rel->link(ctx, o, t);
	kind_changed(o->kind, o->key);
	kind_changed(tk, t->key);
	return r;
}

int relation_unlink(struct ep_ctx *ctx, const struct ep_relation *rel, struct ep_obj *o, const char *name)
{
	const struct ep_kind *tk = kind_by_name(NULL, rel->target);
	g_autoptr(ep_obj) t = NULL;
	int r;

	if (!kind_may_write(ctx, o->kind, o))
		return ep_errorf(EACCES, "not allowed to change %s/%s", o->kind->name, o->key);
	if ((r = kind_load(tk, name, &t)) < 0)
		return r;
	if (!kind_may_write(ctx, tk, t))
		return ep_errorf(EACCES, "not allowed to change %s/%s", rel->target, name);
	if (g_strcmp0(obj_get(t, rel->column), o->id))
		return ep_errorf(ENOENT, "%s/%s is not linked here", rel->target, name);
	r = rel->unlink(ctx, o, t);
	kind_changed(o->kind, o->key);
	kind_changed(tk, t->key);
	return r;
}

int link_attr_set(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *target)
{
	g_autofree char *id = NULL;
	int r;

	if (a->type != AT_LINK || (a->flags & ATTR_RO))
		return ep_errorf(EPERM, "%s is not a link that can be set", a->name);
	if (a->link_nested) {
		/* .../<parent kind>/<p>/<kind>/<id>: the key is "<p>/<id>" */
		g_auto(GStrv) parts = g_strsplit(target, "/", -1);
		guint n = g_strv_length(parts);
		g_autofree char *key = NULL;

		while (n > 0 && !*parts[n - 1])
			n--;
		if (n < 4 || strcmp(parts[n - 4], a->link_nested->parent->name) || !value_id_valid(parts[n - 3]) ||
		    strcmp(parts[n - 2], a->link_nested->name) || !value_id_valid(parts[n - 1]))
			return ep_errorf(EINVAL, "'%s' does not point at %s/<id>/%s/<id>", target,
			                 a->link_nested->parent->name, a->link_nested->name);
		if (obj_get(o, a->column))
			return ep_errorf(EEXIST, "%s is set already: rm it first", a->name);
		key = g_strconcat(parts[n - 3], "/", parts[n - 1], NULL);
		return attr_write(ctx, o, a, key);
	}
	if ((r = target_id(target, a->link_kind, &id)) < 0)
		return r;
	if (obj_get(o, a->column))
		return ep_errorf(EEXIST, "%s is set already: rm it first", a->name);
	return attr_write(ctx, o, a, id);
}

int link_attr_clear(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a)
{
	if (a->type != AT_LINK || (a->flags & ATTR_RO))
		return ep_errorf(EPERM, "%s cannot be removed", a->name);
	return attr_write(ctx, o, a, "");
}
