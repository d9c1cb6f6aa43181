/* snippets.c: the snippet tree in the `snippet` table.  The root's children
 * have parent_id 0, so the unique key (user_id, parent_id, name) holds there too. */
#include "snippets.h"
#include "db.h"
#include "error.h"
#include "value.h"

#include <errno.h>
#include <string.h>

#define SNIP_COLUMNS "id, is_dir, LENGTH(IFNULL(content, '')) AS size, mtime"

static void snip_from_row(const struct db_result *r, guint i, struct snip *s)
{
	s->id = g_ascii_strtoull(db_get(r, i, "id"), NULL, 10);
	s->dir = !strcmp(db_get(r, i, "is_dir"), "1");
	s->size = g_ascii_strtoull(db_get(r, i, "size"), NULL, 10);
	s->mtime_us = value_db_time(db_get(r, i, "mtime"));
}

int snip_lookup(const char *user, uint64_t parent, const char *name, struct snip *out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, parent);
	int ret = db_query("SELECT " SNIP_COLUMNS " FROM snippet WHERE user_id = ? AND parent_id = ? AND name = ?",
	                   &r, DB_PARAMS(user, p, name));

	if (ret < 0)
		return ret;
	if (!r->rows->len)
		return -ENOENT;
	snip_from_row(r, 0, out);
	return 0;
}

int snip_list(const char *user, uint64_t parent, GPtrArray *names, GArray *snips)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, parent);
	int ret = db_query("SELECT name, " SNIP_COLUMNS " FROM snippet WHERE user_id = ? AND parent_id = ? ORDER BY name",
	                   &r, DB_PARAMS(user, p));

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++) {
		struct snip s;
		snip_from_row(r, i, &s);
		g_ptr_array_add(names, g_strdup(db_get(r, i, "name")));
		g_array_append_val(snips, s);
	}
	return 0;
}

int snip_create(const char *user, uint64_t parent, const char *name, bool dir, uint64_t *id)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, parent);
	int ret;

	if (strlen(name) > 255)
		return ep_errorf(ENAMETOOLONG, "snippet names are at most 255 bytes");
	ret = db_query("INSERT INTO snippet (user_id, parent_id, name, is_dir, content) VALUES (?, ?, ?, ?, ?)", &r,
	               DB_PARAMS(user, p, name, dir ? "1" : "0", dir ? NULL : ""));
	if (ret == -EEXIST)
		return ep_errorf(EEXIST, "%s exists", name);
	if (ret < 0)
		return ret;
	*id = r->insert_id;
	return 0;
}

/* Remove id and, depth first, everything below it. */
int snip_remove(const char *user, uint64_t id)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GArray) kids = g_array_new(FALSE, FALSE, sizeof(struct snip));
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, id);
	int r;

	if ((r = snip_list(user, id, names, kids)) < 0)
		return r;
	for (guint i = 0; i < kids->len; i++)
		if ((r = snip_remove(user, g_array_index(kids, struct snip, i).id)) < 0)
			return r;
	return db_query("DELETE FROM snippet WHERE user_id = ? AND id = ?", NULL, DB_PARAMS(user, p));
}

int snip_read(uint64_t id, GString *out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, id);
	int ret = db_query("SELECT content FROM snippet WHERE id = ?", &r, DB_PARAMS(p));

	if (ret < 0)
		return ret;
	if (!r->rows->len)
		return -ENOENT;
	if (db_get(r, 0, "content"))
		g_string_append(out, db_get(r, 0, "content"));
	return 0;
}

int snip_write(uint64_t id, const char *data, size_t len)
{
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, id);
	g_autofree char *text = g_strndup(data, len);

	if (strlen(text) != len || !g_utf8_validate(text, -1, NULL))
		return ep_errorf(EINVAL, "snippets are UTF-8 text");
	if (len > 16 * 1024 * 1024)
		return ep_errorf(EFBIG, "snippets are at most 16 MiB");
	return db_query("UPDATE snippet SET content = ? WHERE id = ?", NULL, DB_PARAMS(text, p));
}

int snip_rename(const char *user, uint64_t id, uint64_t newparent, const char *newname, bool noreplace)
{
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, newparent);
	g_autofree char *i = g_strdup_printf("%" G_GUINT64_FORMAT, id);
	struct snip old;
	int r = snip_lookup(user, newparent, newname, &old);

	if (r == 0 && old.id != id) {
		if (noreplace)
			return ep_errorf(EEXIST, "%s exists", newname);
		if (old.dir)
			return ep_errorf(EISDIR, "%s is a directory", newname);
		if ((r = snip_remove(user, old.id)) < 0)
			return r;
	} else if (r < 0 && r != -ENOENT) {
		return r;
	}
	return db_query("UPDATE snippet SET parent_id = ?, name = ? WHERE user_id = ? AND id = ?", NULL,
	                DB_PARAMS(p, newname, user, i));
}

int snip_set_mtime(uint64_t id, int64_t us)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);
	g_autofree char *day = g_date_time_format(dt, "%Y-%m-%d %H:%M:%S");
	g_autofree char *t = g_strdup_printf("%s.%06" G_GINT64_FORMAT, day, us % G_USEC_PER_SEC);
	g_autofree char *p = g_strdup_printf("%" G_GUINT64_FORMAT, id);

	return db_query("UPDATE snippet SET mtime = ? WHERE id = ?", NULL, DB_PARAMS(t, p));
}
