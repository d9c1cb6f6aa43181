/* membership.c: links that make a record a member of another (membership.h). */
#include "membership.h"
#include "db.h"
#include "error.h"

#include <errno.h>
#include <string.h>

int membership_list(const struct membership *m, struct ep_obj *o, GPtrArray *out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *sql = g_strdup_printf("SELECT `%s` AS m FROM `%s` WHERE `%s` = ? ORDER BY `%s`",
	                                       m->member_column, m->listed_from ? m->listed_from : m->table,
	                                       m->owner_column, m->member_column);
	int ret = db_query(sql, &r, DB_PARAMS(o->id));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_ptr_array_add(out, g_strdup(db_get(r, i, "m")));
	return 0;
}

int membership_render(const struct membership *m, struct ep_obj *o, const char *name, GString *out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *sql = g_strdup_printf("SELECT 1 FROM `%s` WHERE `%s` = ? AND `%s` = ?",
	                                       m->listed_from ? m->listed_from : m->table, m->owner_column,
	                                       m->member_column);
	int ret = db_query(sql, &r, DB_PARAMS(o->id, name));

	if (ret < 0)
		return ret;
	if (!r->rows->len)
		return -ENOENT;
	g_string_append_printf(out, "../../../%s/%s", m->target->name, name);
	return 0;
}

int membership_link(const struct membership *m, struct ep_obj *o, const char *name, const char *target)
{
	g_autofree char *want = g_strdup_printf("../../../%s/%s", m->target->name, name);
	g_autofree char *want_slash = g_strconcat(want, "/", NULL);
	g_autofree char *sql = g_strdup_printf("INSERT INTO `%s` (`%s`, `%s`) VALUES (?, ?)", m->table,
	                                       m->owner_column, m->member_column);
	g_autoptr(ep_obj) t = NULL;
	int r;

	/* the link is relative, as ls -l shows it, and named after its member */
	if (strcmp(target, want) && strcmp(target, want_slash))
		return ep_errorf(EINVAL, "'%s' does not point at %s/%s: ln -s %s %s", target, m->target->name, name,
		                 want, name);
	if ((r = kind_load(m->target, name, &t)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "%s/%s does not exist", m->target->name, name) : r;
	if ((r = db_query(sql, NULL, DB_PARAMS(o->id, name))) < 0)
		return r == -EEXIST ? ep_errorf(EEXIST, "%s is %s %s already", name, m->what, o->id) : r;
	return 0;
}

int membership_unlink(const struct membership *m, struct ep_obj *o, const char *name)
{
	g_autoptr(db_result) res = NULL;
	g_autofree char *sql = g_strdup_printf("DELETE FROM `%s` WHERE `%s` = ? AND `%s` = ?", m->table,
	                                       m->owner_column, m->member_column);
	int r;

	if ((r = db_query(sql, &res, DB_PARAMS(o->id, name))) < 0)
		return r;
	if (res->affected == 0)
		return ep_errorf(ENOENT, "%s is not %s %s", name, m->what, o->id);
	return 0;
}
