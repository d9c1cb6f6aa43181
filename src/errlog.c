/* errlog.c: error lines in the database, and in syslog. */
#include "errlog.h"
#include "db.h"
#include "error.h"
#include "fs.h"
#include "value.h"

#include <syslog.h>

#define ERRLOG_KEEP "100"
#define ERRLOG_KEEP_N 100

static void append_one(const char *kind, const char *key, const char *errname, const char *op,
                       const char *message)
{
	if (db_query("INSERT INTO error_log (kind, obj_key, errno_name, op, message) VALUES (?, ?, ?, ?, ?)",
	             NULL, DB_PARAMS(kind, key, errname, op, message)) < 0)
		return;
	/* keep the newest lines only */
	db_query("DELETE FROM error_log WHERE kind = ? AND obj_key = ? AND seq <= "
	         "(SELECT seq FROM (SELECT seq FROM error_log WHERE kind = ? AND obj_key = ? "
	         "ORDER BY seq DESC LIMIT 1 OFFSET " ERRLOG_KEEP ") AS oldest)",
	         NULL, DB_PARAMS(kind, key, kind, key));
}

/* Append line to the error text of (kind, key), keeping the last lines only. */
static void append_text(const char *kind, const char *key, const char *line)
{
	g_autoptr(db_conn) c = NULL;
	g_autoptr(db_result) r = NULL;
	g_autoptr(GString) text = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	guint n, first;

	if (db_acquire(&c) < 0 || db_begin(c) < 0)
		return;
	if (db_run(c, "SELECT text FROM error_text WHERE kind = ? AND obj_key = ? FOR UPDATE", &r,
	           DB_PARAMS(kind, key)) < 0)
		return;
	if (r->rows->len)
		g_string_append_printf(text, "%s\n", db_get(r, 0, "text"));
	g_string_append(text, line);
	lines = g_strsplit(text->str, "\n", -1);
	n = g_strv_length(lines);
	first = n > ERRLOG_KEEP_N ? n - ERRLOG_KEEP_N : 0;
	g_autofree char *kept = g_strjoinv("\n", lines + first);
	if (db_run(c, "INSERT INTO error_text (kind, obj_key, text) VALUES (?, ?, ?) "
	              "ON DUPLICATE KEY UPDATE text = VALUES(text)", NULL, DB_PARAMS(kind, key, kept)) < 0)
		return;
	db_commit(c);
}

void errlog_append(const struct ep_kind *k, const char *key, const char *op, int err,
                   const char *message)
{
	const char *errname = ep_errno_name(err);
	g_autofree char *msg = g_strndup(message, 1000);

	syslog(LOG_WARNING, "%s %s%s%s: %s", errname, op, k ? " " : "",
	       k ? key : "", msg);
	if (k) {
		g_autofree char *now = value_format_time(g_get_real_time());
		g_autofree char *line = g_strdup_printf("%s %s %s: %s", now, errname, op, msg);
		append_text(k->name, key, line);
		kind_changed(k, key);
	}
	g_autofree char *where = k ? g_strdup_printf("%s %s/%s", op, k->name, key) : g_strdup(op);
	append_one("", "", errname, where, msg);
	fs_invalidate(".epfs/errors");
}

int errlog_render_global(GString *out)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%sZ') AS t, errno_name, op, message "
	                   "FROM error_log WHERE kind = '' AND obj_key = '' ORDER BY seq",
	                   &r, DB_NOPARAMS);

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_string_append_printf(out, "%s %s %s: %s\n", db_get(r, i, "t"), db_get(r, i, "errno_name"),
		                       db_get(r, i, "op"), db_get(r, i, "message"));
	return 0;
}
