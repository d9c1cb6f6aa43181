/* kind.c: generic records, attributes, values and info.json. */
#include "kind.h"
#include "cache.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "tree.h"
#include "value.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#define TEXT_MAX 65535
#define LINE_MAX_LEN 255

const struct ep_kind *kind_by_name(const struct ep_kind *parent, const char *name)
{
	for (guint i = 0; ep_kinds[i]; i++)
		if (ep_kinds[i]->parent == parent && !strcmp(ep_kinds[i]->name, name))
			return ep_kinds[i];
	return NULL;
}

const struct ep_attr *kind_attr(const struct ep_kind *k, const char *name)
{
	for (const struct ep_attr *a = k->attrs; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

struct ep_obj *obj_ref(struct ep_obj *o)
{
	return g_atomic_rc_box_acquire(o);
}

static void obj_clear(gpointer p)
{
	struct ep_obj *o = p;

	g_free(o->key);
	g_free(o->id);
	g_free(o->parent_key);
	g_free(o->errors);
	if (o->row)
		g_hash_table_destroy(o->row);
}

void obj_unref(struct ep_obj *o)
{
	if (o)
		g_atomic_rc_box_release_full(o, obj_clear);
}

const char *obj_get(const struct ep_obj *o, const char *column)
{
	return g_hash_table_lookup(o->row, column);
}

/* The SQL expression of a record's key ("id" or "parent/id"). */
static char *key_expr(const struct ep_kind *k)
{
	if (k->parent_column)
		return g_strdup_printf("CONCAT(t.`%s`, '/', t.id)", k->parent_column);
	return g_strdup("t.id");
}

/* SELECT of whole records with their error logs, one query for any number. */
static char *select_sql(const struct ep_kind *k, const char *where)
{
	g_autofree char *ke = key_expr(k);

	return g_strdup_printf("SELECT t.*, e.text AS _errors FROM `%s` t"
	                       " LEFT JOIN error_text e ON e.kind = '%s' AND e.obj_key = %s %s ORDER BY t.id",
	                       k->table, k->name, ke, where);
}

static struct ep_obj *obj_from_row(const struct ep_kind *k, const struct db_result *r, guint i)
{
	struct ep_obj *o = g_atomic_rc_box_new0(struct ep_obj);
	char **row = r->rows->pdata[i];

	o->kind = k;
	o->row = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	for (guint c = 0; c < r->ncols; c++) {
		const char *name = g_intern_string(r->names[c]);

		if (!strcmp(name, "_errors"))
			o->errors = g_strdup(row[c]);
		else
			g_hash_table_insert(o->row, (gpointer)name, g_strdup(row[c]));
	}
	o->id = g_strdup(obj_get(o, "id"));
	if (k->parent_column) {
		o->parent_key = g_strdup(obj_get(o, k->parent_column));
		o->key = g_strconcat(o->parent_key, "/", o->id, NULL);
	} else {
		o->key = g_strdup(o->id);
	}
	o->mtime_us = value_db_time(obj_get(o, "mtime"));
	o->ctime_us = value_db_time(obj_get(o, "create_time"));
	return o;
}

int kind_load(const struct ep_kind *k, const char *key, struct ep_obj **out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *sql = NULL;
	g_autofree char *parent = NULL;
	const char *id = key;
	int ret;

	*out = cache_get(k, key);
	if (*out)
		return 0;
	if (k->parent_column) {
		const char *slash = strrchr(key, '/');
		if (!slash)
			return -ENOENT;
		parent = g_strndup(key, slash - key);
		id = slash + 1;
		g_autofree char *where = g_strdup_printf("WHERE t.`%s` = ? AND t.id = ?", k->parent_column);
		sql = select_sql(k, where);
		ret = db_query(sql, &r, DB_PARAMS(parent, id));
	} else {
		sql = select_sql(k, "WHERE t.id = ?");
		ret = db_query(sql, &r, DB_PARAMS(id));
	}
	if (ret < 0)
		return ret;
	if (r->rows->len == 0)
		return -ENOENT;
	*out = obj_from_row(k, r, 0);
	cache_put(*out);
	return 0;
}

struct ep_obj *kind_blank(const struct ep_kind *k, const char *key)
{
	struct ep_obj *o = g_atomic_rc_box_new0(struct ep_obj);

	o->kind = k;
	o->row = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	g_hash_table_insert(o->row, (gpointer)g_intern_string("id"), g_strdup(key));
	o->id = g_strdup(key);
	o->key = g_strdup(key);
	return o;
}

int kind_list(const struct ep_kind *k, const char *parent_key, GPtrArray *out)
{
	g_autoptr(db_result) r = NULL;
	g_autoptr(GPtrArray) objs = NULL;
	g_autofree char *sql = NULL;
	int ret;

	if (cache_get_list(k, parent_key, out))
		return 0;
	if (k->parent_column) {
		g_autofree char *where = g_strdup_printf("WHERE t.`%s` = ?", k->parent_column);
		sql = select_sql(k, where);
		ret = db_query(sql, &r, DB_PARAMS(parent_key));
	} else {
		sql = select_sql(k, "");
		ret = db_query(sql, &r, DB_NOPARAMS);
	}
	if (ret < 0)
		return ret;
	objs = g_ptr_array_new_full(r->rows->len, (GDestroyNotify)obj_unref);
	for (guint i = 0; i < r->rows->len; i++)
		g_ptr_array_add(objs, obj_from_row(k, r, i));
	cache_put_list(k, parent_key, objs);
	for (guint i = 0; i < objs->len; i++)
		g_ptr_array_add(out, obj_ref(objs->pdata[i]));
	return 0;
}

/* ---- rendering ---- */

/* The value of a plain attribute as shown, without the newline. */
static int render_value(struct ep_obj *o, const struct ep_attr *a, GString *out)
{
	const char *v;

	if (a->render)
		return a->render(o, out);
	v = a->column ? obj_get(o, a->column) : NULL;
	if (!v)
		return 0;
	if (a->type == AT_TIME) {
		g_autofree char *t = value_format_time(value_db_time(v));
		g_string_append(out, t);
	} else {
		g_string_append(out, v);
	}
	return 0;
}

static json_t *json_value(struct ep_obj *o, const struct ep_attr *a)
{
	g_autoptr(GString) s = g_string_new(NULL);
	gint64 n;

	/* a link is named by the id it points at */
	if (a->type == AT_LINK) {
		const char *v = a->column ? obj_get(o, a->column) : NULL;
		return v && *v ? json_string(v) : json_null();
	}
	if (render_value(o, a, s) < 0)
		return json_null();
	switch (a->type) {
	case AT_SIZE:
	case AT_INT:
		if (s->len == 0)
			return json_null();
		n = g_ascii_strtoll(s->str, NULL, 10);
		return json_integer(n);
	case AT_BOOL:
		return json_boolean(!strcmp(s->str, "1"));
	case AT_LINK:
	case AT_ID:
	case AT_TIME:
		return s->len ? json_string(s->str) : json_null();
	default:
		return json_stringn(s->str, s->len);
	}
}

static int render_info(struct ep_obj *o, GString *out)
{
	json_t *obj = json_object();
	char *text;

	json_object_set_new(obj, "id", json_string(o->id));
	for (const struct ep_attr *a = o->kind->attrs; a->name; a++) {
		if (a->type == AT_INFO || a->type == AT_ERROR || a->type == AT_EVENTS || (a->flags & ATTR_NOINFO))
			continue;
		json_object_set_new(obj, a->name, json_value(o, a));
	}
	text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text)
		return ep_errorf(ENOMEM, "info.json: cannot render");
	g_string_append(out, text);
	g_string_append_c(out, '\n');
	free(text);
	return 0;
}

int attr_render(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, GString *out)
{
	(void)ctx;
	switch (a->type) {
	case AT_INFO:
		return render_info(o, out);
	case AT_ERROR:
		if (o->errors && *o->errors)
			g_string_append_printf(out, "%s\n", o->errors);
		return 0;
	case AT_EVENTS:
		events_render(o->kind, o->key, out);
		return 0;
	case AT_LINK: {
		const char *v = a->column ? obj_get(o, a->column) : NULL;
		if (!v || !*v)
			return -ENOENT;
		g_autofree char *up = obj_path_to_root(o);
		if (a->link_nested) {
			g_autofree char *to = tree_object_path(a->link_nested, v);
			g_string_append_printf(out, "%s/%s", up, to);
			return 0;
		}
		g_string_append_printf(out, "%s/%s/%s", up, a->link_kind, v);
		return 0;
	}
	default: {
		int r = render_value(o, a, out);
		if (r < 0)
			return r;
		g_string_append_c(out, '\n');
		return 0;
	}
	}
}

/* ---- writing ---- */

bool kind_may_write(struct ep_ctx *ctx, const struct ep_kind *k, struct ep_obj *o)
{
	if (k->may_write)
		return k->may_write(ctx, o);
	return ctx->admin;
}

bool ctx_in_group(struct ep_ctx *ctx, gid_t gid)
{
	if (gid == ctx->gid)
		return true;
	if (ctx->ngroups < 0)
		ctx->ngroups = ctx->read_groups ? ctx->read_groups(ctx, ctx->groups, G_N_ELEMENTS(ctx->groups)) : 0;
	for (int i = 0; i < ctx->ngroups && i < (int)G_N_ELEMENTS(ctx->groups); i++)
		if (ctx->groups[i] == gid)
			return true;
	return false;
}

bool kind_visible(struct ep_ctx *ctx, const struct ep_kind *k, struct ep_obj *o)
{
	if (ctx->admin)
		return true;
	if (k->visible)
		return k->visible(ctx, o);
	/* below a record one may see, everything is visible */
	return k->parent || ctx->teacher;
}

uid_t kind_owner(const struct ep_kind *k, struct ep_obj *o)
{
	return k->owner && o ? k->owner(o) : 0;
}

mode_t attr_mode(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a)
{
	(void)ctx;
	(void)o;
	if (a->type == AT_ERROR || a->type == AT_EVENTS || (a->flags & ATTR_RO))
		return 0444;
	return 0644;
}

/* True if canon is what the attribute already holds. */
static bool unchanged(struct ep_obj *o, const struct ep_attr *a, const char *canon)
{
	g_autoptr(GString) cur = g_string_new(NULL);
	const char *v;

	if (a->column) {
		v = obj_get(o, a->column);
		/* times are shown to the second: what was read back is unchanged */
		if (a->type == AT_TIME)
			return (v ? value_db_time(v) : 0) / G_USEC_PER_SEC ==
			       (*canon ? value_db_time(canon) : 0) / G_USEC_PER_SEC;
		return !g_strcmp0(v ? v : "", canon);
	}
	if (render_value(o, a, cur) < 0)
		return false;
	return !strcmp(cur->str, canon);
}

/* Turn a written value into the form stored in the column. */
static int canonicalize(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *v,
                        char **canon)
{
	uint64_t size;
	int64_t n, us;
	bool b;

	switch (a->type) {
	case AT_LINE:
		if (!value_is_line(v) || strlen(v) > LINE_MAX_LEN)
			return ep_errorf(EINVAL, "%s: must be one line of at most %d characters",
			                 a->name, LINE_MAX_LEN);
		*canon = g_strdup(v);
		break;
	case AT_TEXT:
		if (!g_utf8_validate(v, -1, NULL) || strlen(v) > (size_t)(a->max ? a->max : TEXT_MAX))
			return ep_errorf(EINVAL, "%s: must be UTF-8 text of at most %" G_GINT64_FORMAT " bytes",
			                 a->name, a->max ? a->max : TEXT_MAX);
		*canon = g_strdup(v);
		break;
	case AT_ID:
		if (*v && !value_id_valid(v))
			return ep_errorf(EINVAL, "%s: '%s' is not a valid id", a->name, v);
		*canon = g_strdup(v);
		break;
	case AT_LINK:
		if (a->link_nested) {
			g_auto(GStrv) ids = g_strsplit(v, "/", -1);
			if (*v && (g_strv_length(ids) != 2 || !value_id_valid(ids[0]) || !value_id_valid(ids[1])))
				return ep_errorf(EINVAL, "%s: '%s' is not <%s>/<id>", a->name, v,
				                 a->link_nested->parent->name);
		} else if (*v && !value_id_valid(v)) {
			return ep_errorf(EINVAL, "%s: '%s' is not a valid id", a->name, v);
		}
		*canon = g_strdup(v);
		if (*v && !unchanged(o, a, v)) {
			g_autoptr(ep_obj) t = NULL;
			int r = kind_load(a->link_nested ? a->link_nested : kind_by_name(NULL, a->link_kind), v, &t);
			if (r < 0) {
				g_clear_pointer(canon, g_free);
				return r == -ENOENT ? ep_errorf(ENOENT, "%s: %s/%s does not exist", a->name,
				                                a->link_kind, v) : r;
			}
		}
		break;
	case AT_SIZE:
		if (value_parse_size(v, &size) < 0)
			return ep_errorf(EINVAL, "%s: '%s' is not a size (bytes, or with K M G T)", a->name, v);
		if (size < (uint64_t)a->min || (a->max && size > (uint64_t)a->max))
			return ep_errorf(EINVAL, "%s: %" G_GUINT64_FORMAT " is out of range", a->name, size);
		*canon = g_strdup_printf("%" G_GUINT64_FORMAT, size);
		break;
	case AT_INT:
		if (value_parse_int(v, a->min, a->max ? a->max : INT64_MAX, &n) < 0)
			return ep_errorf(EINVAL, "%s: '%s' is not an integer from %" G_GINT64_FORMAT
			                 " to %" G_GINT64_FORMAT, a->name, v, a->min, a->max);
		*canon = g_strdup_printf("%" G_GINT64_FORMAT, n);
		break;
	case AT_BOOL:
		if (value_parse_bool(v, &b) < 0)
			return ep_errorf(EINVAL, "%s: '%s' is not a boolean (0 1 true false yes no)", a->name, v);
		*canon = g_strdup(b ? "1" : "0");
		break;
	case AT_TIME:
		if (!*v) {
			*canon = g_strdup("");
			break;
		}
		if (value_parse_time(v, &us) < 0)
			return ep_errorf(EINVAL, "%s: '%s' is not an ISO-8601 time", a->name, v);
		{
			g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);
			g_autofree char *s = g_date_time_format(dt, "%Y-%m-%d %H:%M:%S");
			*canon = g_strdup_printf("%s.%06" G_GINT64_FORMAT, s, us % G_USEC_PER_SEC);
		}
		break;
	case AT_ENUM: {
		g_autofree char *low = g_ascii_strdown(v, -1);
		for (guint i = 0; a->choices[i]; i++)
			if (!strcmp(low, a->choices[i])) {
				*canon = g_strdup(a->choices[i]);
				goto validate;
			}
		g_autofree char *all = g_strjoinv(" ", (char **)a->choices);
		return ep_errorf(EINVAL, "%s: '%s' is not one of: %s", a->name, v, all);
	}
	default:
		return ep_errorf(EACCES, "%s: cannot be written", a->name);
	}
validate:
	/* writing back what is there is a no-op, whatever the record's state */
	if (unchanged(o, a, *canon))
		return 0;
	if (a->validate) {
		char *c2 = NULL;
		int r = a->validate(ctx, o, *canon, &c2);
		if (r < 0) {
			g_clear_pointer(canon, g_free);
			return r;
		}
		if (c2) {
			g_free(*canon);
			*canon = c2;
		}
	}
	return 0;
}

struct change {
	const struct ep_attr *attr;
	char *canon;
};

static void change_clear(gpointer p)
{
	g_free(((struct change *)p)->canon);
}

/* Validate raw for a, and queue it in changes unless it changes nothing. */
static int plan_change(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *raw,
                       GArray *changes)
{
	struct change c = { a, NULL };
	int r;

	if (a->type == AT_INFO || a->type == AT_ERROR || a->type == AT_EVENTS)
		return ep_errorf(EINVAL, "%s cannot be set this way", a->name);
	/* what reads back as it is written is unchanged, whatever its type accepts */
	if (a->type != AT_LINK && a->type != AT_TEXT) {
		g_autoptr(GString) cur = g_string_new(NULL);
		if (render_value(o, a, cur) == 0 && !strcmp(cur->str, raw))
			return 0;
	}
	if ((r = canonicalize(ctx, o, a, raw, &c.canon)) < 0)
		return r;
	if (unchanged(o, a, c.canon)) {
		g_free(c.canon);
		return 0;
	}
	if ((a->flags & ATTR_RO) || (!a->column && !a->apply)) {
		g_free(c.canon);
		return ep_errorf(EACCES, "%s is read-only", a->name);
	}
	if ((a->flags & ATTR_ADMIN) && !ctx->admin) {
		g_free(c.canon);
		return ep_errorf(EACCES, "%s is changed by admins only", a->name);
	}
	g_array_append_val(changes, c);
	return 0;
}

/* Apply planned changes in one transaction: one UPDATE for the plain
 * columns, then the attributes with actions. */
static int commit_changes(struct ep_ctx *ctx, struct ep_obj *o, GArray *changes)
{
	g_autoptr(db_conn) c = NULL;
	g_autoptr(GString) sql = g_string_new(NULL);
	g_autoptr(GPtrArray) params = g_ptr_array_new();
	int r;

	if (changes->len == 0)
		return 0;
	if (!kind_may_write(ctx, o->kind, o))
		return ep_errorf(EACCES, "not allowed to change %s/%s", o->kind->name, o->key);
	/* a lone action needs no transaction */
	if (changes->len == 1 && (g_array_index(changes, struct change, 0).attr->flags & ATTR_ACTION)) {
		struct change *ch = &g_array_index(changes, struct change, 0);
		r = ch->attr->apply(ctx, o, ch->canon);
		kind_changed(o->kind, o->key);
		return r;
	}
	if ((r = db_acquire(&c)) < 0)
		return r;
	if ((r = db_begin(c)) < 0)
		return r;
	ctx->db = c;
	g_string_printf(sql, "UPDATE `%s` SET ", o->kind->table);
	for (guint i = 0; i < changes->len; i++) {
		struct change *ch = &g_array_index(changes, struct change, i);
		if (ch->attr->apply)
			continue;
		if (params->len)
			g_string_append(sql, ", ");
		g_string_append_printf(sql, "`%s` = ?", ch->attr->column);
		/* empty times and ids are stored as NULL */
		g_ptr_array_add(params, (!*ch->canon && (ch->attr->type == AT_TIME || ch->attr->type == AT_ID ||
		                                         ch->attr->type == AT_LINK))
		                                ? NULL : ch->canon);
	}
	if (params->len) {
		g_string_append(sql, " WHERE id = ?");
		g_ptr_array_add(params, o->id);
		if (o->kind->parent_column) {
			g_string_append_printf(sql, " AND `%s` = ?", o->kind->parent_column);
			g_ptr_array_add(params, o->parent_key);
		}
		if ((r = db_run(c, sql->str, NULL, params->len, (const char *const *)params->pdata)) < 0)
			goto fail;
	}
	for (guint i = 0; i < changes->len; i++) {
		struct change *ch = &g_array_index(changes, struct change, i);
		if (ch->attr->apply && !(ch->attr->flags & ATTR_ACTION) &&
		    (r = ch->attr->apply(ctx, o, ch->canon)) < 0)
			goto fail;
	}
	r = db_commit(c);
	ctx->db = NULL;
	kind_changed(o->kind, o->key);
	if (r < 0)
		return r;
	/* actions run once the values they depend on are stored */
	for (guint i = 0; i < changes->len; i++) {
		struct change *ch = &g_array_index(changes, struct change, i);
		if (ch->attr->flags & ATTR_ACTION) {
			g_autoptr(ep_obj) fresh = NULL;
			if ((r = kind_load(o->kind, o->key, &fresh)) < 0 ||
			    (r = ch->attr->apply(ctx, fresh, ch->canon)) < 0)
				break;
		}
	}
	kind_changed(o->kind, o->key);
	return r;
fail:
	db_rollback(c);
	ctx->db = NULL;
	kind_changed(o->kind, o->key);
	return r;
}

static int json_to_string(const char *key, json_t *v, char **out)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		*out = g_strdup(json_string_value(v));
		return 0;
	case JSON_INTEGER:
		*out = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return 0;
	case JSON_TRUE:
		*out = g_strdup("1");
		return 0;
	case JSON_FALSE:
		*out = g_strdup("0");
		return 0;
	case JSON_NULL:
		*out = g_strdup("");
		return 0;
	default:
		return ep_errorf(EINVAL, "info.json: \"%s\" must be a string, number, boolean or null", key);
	}
}

static int write_info(struct ep_ctx *ctx, struct ep_obj *o, const char *text)
{
	g_autoptr(GArray) changes = g_array_new(FALSE, FALSE, sizeof(struct change));
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int r = 0;

	g_array_set_clear_func(changes, change_clear);
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return ep_errorf(EINVAL, "info.json: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return ep_errorf(EINVAL, "info.json: must be a JSON object");
	}
	json_object_foreach(root, key, v) {
		const struct ep_attr *a = kind_attr(o->kind, key);
		g_autofree char *raw = NULL;

		if (!strcmp(key, "id")) {
			if (!json_is_string(v) || strcmp(json_string_value(v), o->id)) {
				r = ep_errorf(EINVAL, "info.json: \"id\" cannot be changed (rename is not supported)");
				break;
			}
			continue;
		}
		if (!a || a->type == AT_INFO || a->type == AT_ERROR || a->type == AT_EVENTS ||
		    (a->flags & ATTR_NOINFO)) {
			r = ep_errorf(EINVAL, "info.json: unknown attribute \"%s\"", key);
			break;
		}
		if ((r = json_to_string(key, v, &raw)) < 0)
			break;
		if ((r = plan_change(ctx, o, a, raw, changes)) < 0)
			break;
	}
	json_decref(root);
	if (r < 0)
		return r;
	return commit_changes(ctx, o, changes);
}

bool attr_incomplete(const struct ep_attr *a, const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *root;

	if (a->flags & ATTR_WHOLE)
		return true;
	if (a->type != AT_INFO)
		return false;
	root = json_loadb(buf, len, 0, &jerr);
	if (root) {
		json_decref(root);
		return false;
	}
	return json_error_code(&jerr) == json_error_premature_end_of_input;
}

int attr_write(struct ep_ctx *ctx, struct ep_obj *o, const struct ep_attr *a, const char *value)
{
	g_autoptr(GArray) changes = NULL;
	int r;

	if (a->type == AT_INFO)
		return write_info(ctx, o, value);
	if (a->type == AT_ERROR || a->type == AT_EVENTS)
		return ep_errorf(EACCES, "%s is read-only", a->name);
	changes = g_array_new(FALSE, FALSE, sizeof(struct change));
	g_array_set_clear_func(changes, change_clear);
	if ((r = plan_change(ctx, o, a, value, changes)) < 0)
		return r;
	return commit_changes(ctx, o, changes);
}

int obj_set(struct ep_ctx *ctx, struct ep_obj *o, const char *column, const char *value)
{
	g_autofree char *sql = NULL;

	if (o->kind->parent_column) {
		sql = g_strdup_printf("UPDATE `%s` SET `%s` = ? WHERE id = ? AND `%s` = ?", o->kind->table,
		                      column, o->kind->parent_column);
		return db_run(ctx->db, sql, NULL, DB_PARAMS(value, o->id, o->parent_key));
	}
	sql = g_strdup_printf("UPDATE `%s` SET `%s` = ? WHERE id = ?", o->kind->table, column);
	return db_run(ctx->db, sql, NULL, DB_PARAMS(value, o->id));
}

/* ---- create and remove ---- */

int kind_create(struct ep_ctx *ctx, const struct ep_kind *k, const char *parent_key, const char *id)
{
	g_autoptr(db_conn) c = NULL;
	g_autofree char *key = parent_key ? g_strconcat(parent_key, "/", id, NULL) : g_strdup(id);
	int r;

	if (!value_id_valid(id))
		return ep_errorf(EINVAL, "'%s' is not a valid id: use [a-z0-9][a-z0-9._-]{0,62}", id);
	if (k->may_create ? !ctx->admin && !k->may_create(ctx, parent_key) : !kind_may_write(ctx, k, NULL))
		return ep_errorf(EACCES, "not allowed to create %s", k->name);
	if ((r = db_acquire(&c)) < 0)
		return r;
	if ((r = db_begin(c)) < 0)
		return r;
	ctx->db = c;
	if (k->create) {
		r = k->create(ctx, parent_key, id);
	} else if (k->parent_column) {
		g_autofree char *sql = g_strdup_printf("INSERT INTO `%s` (`%s`, id) VALUES (?, ?)", k->table,
		                                       k->parent_column);
		r = db_run(c, sql, NULL, DB_PARAMS(parent_key, id));
	} else {
		g_autofree char *sql = g_strdup_printf("INSERT INTO `%s` (id) VALUES (?)", k->table);
		r = db_run(c, sql, NULL, DB_PARAMS(id));
	}
	if (r == -EEXIST)
		r = ep_errorf(EEXIST, "%s/%s already exists", k->name, id);
	if (r >= 0)
		r = db_commit(c);
	else
		db_rollback(c);
	ctx->db = NULL;
	kind_changed(k, key);
	return r < 0 ? r : 0;
}

int kind_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_conn) c = NULL;
	int r;

	if (!kind_may_write(ctx, o->kind, o))
		return ep_errorf(EACCES, "not allowed to remove %s/%s", o->kind->name, o->key);
	if ((r = db_acquire(&c)) < 0)
		return r;
	if ((r = db_begin(c)) < 0)
		return r;
	ctx->db = c;
	if (o->kind->remove) {
		r = o->kind->remove(ctx, o);
	} else {
		g_autofree char *sql = NULL;
		if (o->kind->parent_column) {
			sql = g_strdup_printf("DELETE FROM `%s` WHERE id = ? AND `%s` = ?", o->kind->table,
			                      o->kind->parent_column);
			r = db_run(c, sql, NULL, DB_PARAMS(o->id, o->parent_key));
		} else {
			sql = g_strdup_printf("DELETE FROM `%s` WHERE id = ?", o->kind->table);
			r = db_run(c, sql, NULL, DB_PARAMS(o->id));
		}
	}
	if (r >= 0)
		r = db_run(c, "DELETE FROM error_text WHERE kind = ? AND obj_key = ?", NULL,
		           DB_PARAMS(o->kind->name, o->key));
	if (r >= 0)
		r = db_commit(c);
	else
		db_rollback(c);
	ctx->db = NULL;
	kind_changed(o->kind, o->key);
	return r < 0 ? r : 0;
}

void kind_changed(const struct ep_kind *k, const char *key)
{
	cache_drop(k, key);
	tree_changed(k, key);
	if (k->changed)
		k->changed(key);
}
