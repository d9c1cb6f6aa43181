/* errlog.c: error lines in the database, and in syslog. */
#include "errlog.h"
#include "db.h"
#include "error.h"
#include "fs.h"

#include <syslog.h>

#define ERRLOG_KEEP "100"

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

void errlog_append(const struct ep_kind *k, const char *key, const char *op, int err,
                   const char *message)
{
	const char *errname = ep_errno_name(err);
	g_autofree char *msg = g_strndup(message, 1000);

	syslog(LOG_WARNING, "%s %s%s%s: %s", errname, op, k ? " " : "",
	       k ? key : "", msg);
	if (k) {
		append_one(k->name, key, errname, op, msg);
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
