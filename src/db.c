/* db.c: connection pool, prepared statements and migrations. */
#include "db.h"
#include "error.h"

#include <errno.h>
#include <gio/gio.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <stdbool.h>
#include <string.h>

struct db_conn {
	MYSQL *mysql;
	GHashTable *stmts;      /* sql text -> MYSQL_STMT * */
	bool in_transaction;
};

static struct {
	char *host, *socket, *user, *password, *database;
	unsigned port;
	unsigned timeout;       /* seconds */
	GAsyncQueue *idle;
	guint size;
	struct db_conn *lock_conn;  /* holds this mount's named lock */
} pool;

static void stmt_close(gpointer p)
{
	mysql_stmt_close(p);
}

static bool is_connection_error(unsigned e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONN_HOST_ERROR ||
	       e == CR_CONNECTION_ERROR || e == ER_CONNECTION_KILLED || e == CR_SERVER_LOST_EXTENDED;
}

/* MariaDB's error for a failed CHECK constraint (ER_CONSTRAINT_FAILED) */
#define DB_ER_CONSTRAINT_FAILED 4025

/* Map a server or client error to an errno, recording the message. */
static int db_fail(unsigned e, const char *what)
{
	int err = EIO;

	if (is_connection_error(e))
		err = EAGAIN;
	else if (e == ER_DUP_ENTRY)
		err = EEXIST;
	else if (e == ER_ROW_IS_REFERENCED_2 || e == ER_ROW_IS_REFERENCED)
		err = EBUSY;
	else if (e == ER_NO_REFERENCED_ROW_2 || e == ER_NO_REFERENCED_ROW)
		err = ENOENT;
	else if (e == ER_LOCK_WAIT_TIMEOUT)
		err = ETIMEDOUT;
	else if (e == DB_ER_CONSTRAINT_FAILED)
		err = EINVAL;   /* a CHECK constraint: the value, with the others, is not allowed */
	return ep_errorf(err, "database: %s", what);
}

static int conn_connect(struct db_conn *c, const char *database, unsigned long flags)
{
	unsigned timeout = pool.timeout;

	c->mysql = mysql_init(NULL);
	if (!c->mysql)
		return ep_errorf(ENOMEM, "database: out of memory");
	mysql_options(c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c->mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
	mysql_options(c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
	mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(c->mysql, pool.host, pool.user, pool.password, database, pool.port,
	                        pool.socket, flags)) {
		int r = ep_errorf(EAGAIN, "database: cannot connect: %s", mysql_error(c->mysql));
		mysql_close(c->mysql);
		c->mysql = NULL;
		return r;
	}
	/* all times in the database are UTC */
	if (mysql_query(c->mysql, "SET time_zone = '+00:00'")) {
		int r = db_fail(mysql_errno(c->mysql), mysql_error(c->mysql));
		mysql_close(c->mysql);
		c->mysql = NULL;
		return r;
	}
	return 0;
}

static void conn_disconnect(struct db_conn *c)
{
	g_hash_table_remove_all(c->stmts);
	if (c->mysql)
		mysql_close(c->mysql);
	c->mysql = NULL;
	c->in_transaction = false;
}

static struct db_conn *conn_new(void)
{
	struct db_conn *c = g_new0(struct db_conn, 1);

	c->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, stmt_close);
	return c;
}

static void conn_free(struct db_conn *c)
{
	conn_disconnect(c);
	g_hash_table_destroy(c->stmts);
	g_free(c);
}

int db_acquire(struct db_conn **out)
{
	struct db_conn *c = g_async_queue_timeout_pop(pool.idle, (guint64)pool.timeout * G_USEC_PER_SEC);
	int r;

	*out = NULL;
	if (!c)
		return ep_errorf(ETIMEDOUT, "database: no free connection within %u s", pool.timeout);
	if (!c->mysql && (r = conn_connect(c, pool.database, 0)) < 0) {
		g_async_queue_push(pool.idle, c);
		return r;
	}
	*out = c;
	return 0;
}

void db_release(struct db_conn *c)
{
	if (!c)
		return;
	if (c->in_transaction) {
		/* a transaction left open by an error path is rolled back */
		if (c->mysql && mysql_query(c->mysql, "ROLLBACK"))
			conn_disconnect(c);
		c->in_transaction = false;
	}
	g_async_queue_push(pool.idle, c);
}

void db_result_free(struct db_result *r)
{
	if (!r)
		return;
	g_strfreev(r->names);
	if (r->rows)
		g_ptr_array_free(r->rows, TRUE);
	g_free(r);
}

static void row_free(gpointer p)
{
	char **row = p;

	/* rows hold NULLs, so g_strfreev would stop early: free by count */
	for (guint i = 0; row[i] != (char *)row; i++)
		g_free(row[i]);
	g_free(row);
}

/* Execute once on c; returns 0, or -errno; *mysql_err gets the server error. */
static int run_once(struct db_conn *c, const char *sql, struct db_result **out, guint n,
                    const char *const *params, unsigned *mysql_err)
{
	MYSQL_STMT *st = g_hash_table_lookup(c->stmts, sql);
	g_autofree MYSQL_BIND *pb = NULL, *rb = NULL;
	g_autofree unsigned long *plen = NULL, *rlen = NULL;
	g_autofree my_bool *pnull = NULL, *rnull = NULL, *rerr = NULL;
	MYSQL_RES *meta = NULL;
	struct db_result *res = NULL;
	int ret = 0;

	*mysql_err = 0;
	if (!st) {
		st = mysql_stmt_init(c->mysql);
		if (!st)
			return ep_errorf(ENOMEM, "database: out of memory");
		if (mysql_stmt_prepare(st, sql, strlen(sql))) {
			*mysql_err = mysql_stmt_errno(st);
			ret = db_fail(*mysql_err, mysql_stmt_error(st));
			mysql_stmt_close(st);
			return ret;
		}
		g_hash_table_insert(c->stmts, g_strdup(sql), st);
	}
	if (mysql_stmt_param_count(st) != n)
		return ep_errorf(EIO, "database: statement takes %lu parameters, %u given",
		                 mysql_stmt_param_count(st), n);
	if (n) {
		pb = g_new0(MYSQL_BIND, n);
		plen = g_new0(unsigned long, n);
		pnull = g_new0(my_bool, n);
		for (guint i = 0; i < n; i++) {
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = (void *)params[i];
			plen[i] = params[i] ? strlen(params[i]) : 0;
			pb[i].buffer_length = plen[i];
			pb[i].length = &plen[i];
			pnull[i] = params[i] == NULL;
			pb[i].is_null = &pnull[i];
		}
		if (mysql_stmt_bind_param(st, pb))
			goto stmt_error;
	}
	if (mysql_stmt_execute(st))
		goto stmt_error;

	res = g_new0(struct db_result, 1);
	res->affected = mysql_stmt_affected_rows(st);
	res->insert_id = mysql_stmt_insert_id(st);
	meta = mysql_stmt_result_metadata(st);
	if (meta) {
		my_bool update_max = 1;
		guint nc = mysql_num_fields(meta);
		MYSQL_FIELD *fields = mysql_fetch_fields(meta);

		mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
		if (mysql_stmt_store_result(st))
			goto stmt_error;
		res->ncols = nc;
		res->names = g_new0(char *, nc + 1);
		res->rows = g_ptr_array_new_with_free_func(row_free);
		rb = g_new0(MYSQL_BIND, nc);
		rlen = g_new0(unsigned long, nc);
		rnull = g_new0(my_bool, nc);
		rerr = g_new0(my_bool, nc);
		for (guint i = 0; i < nc; i++) {
			res->names[i] = g_strdup(fields[i].name);
			rb[i].buffer_type = MYSQL_TYPE_STRING;
			rb[i].buffer_length = MAX(fields[i].max_length, 64) + 1;
			rb[i].buffer = g_malloc(rb[i].buffer_length);
			rb[i].length = &rlen[i];
			rb[i].is_null = &rnull[i];
			rb[i].error = &rerr[i];
		}
		if (mysql_stmt_bind_result(st, rb)) {
			for (guint i = 0; i < nc; i++)
				g_free(rb[i].buffer);
			goto stmt_error;
		}
		for (;;) {
			int f = mysql_stmt_fetch(st);
			if (f == 1 || f == MYSQL_NO_DATA)
				break;
			/* one extra slot holds the row pointer itself as an end marker */
			char **row = g_new0(char *, nc + 1);
			row[nc] = (char *)row;
			for (guint i = 0; i < nc; i++) {
				if (rnull[i])
					continue;
				if (rlen[i] >= rb[i].buffer_length) {
					MYSQL_BIND one = { 0 };
					unsigned long l2 = 0;
					row[i] = g_malloc0(rlen[i] + 1);
					one.buffer_type = MYSQL_TYPE_STRING;
					one.buffer = row[i];
					one.buffer_length = rlen[i] + 1;
					one.length = &l2;
					mysql_stmt_fetch_column(st, &one, i, 0);
				} else {
					row[i] = g_strndup(rb[i].buffer, rlen[i]);
				}
			}
			g_ptr_array_add(res->rows, row);
		}
		for (guint i = 0; i < nc; i++)
			g_free(rb[i].buffer);
		mysql_free_result(meta);
		meta = NULL;
	}
	mysql_stmt_free_result(st);
	mysql_stmt_reset(st);
	if (out)
		*out = res;
	else
		db_result_free(res);
	return 0;

stmt_error:
	*mysql_err = mysql_stmt_errno(st);
	ret = db_fail(*mysql_err, mysql_stmt_error(st));
	if (meta)
		mysql_free_result(meta);
	db_result_free(res);
	mysql_stmt_reset(st);
	return ret;
}

int db_run(struct db_conn *c, const char *sql, struct db_result **out, guint n,
           const char *const *params)
{
	unsigned e;
	int r;

	if (out)
		*out = NULL;
	if (!c->mysql && (r = conn_connect(c, pool.database, 0)) < 0)
		return r;
	r = run_once(c, sql, out, n, params, &e);
	/* a dropped connection outside a transaction is retried once */
	if (r < 0 && is_connection_error(e) && !c->in_transaction) {
		conn_disconnect(c);
		if ((r = conn_connect(c, pool.database, 0)) < 0)
			return r;
		r = run_once(c, sql, out, n, params, &e);
	}
	if (r < 0 && is_connection_error(e))
		conn_disconnect(c);
	return r;
}

int db_query(const char *sql, struct db_result **out, guint n, const char *const *params)
{
	g_autoptr(db_conn) c = NULL;
	int r;

	if (out)
		*out = NULL;
	if ((r = db_acquire(&c)) < 0)
		return r;
	return db_run(c, sql, out, n, params);
}

static int simple(struct db_conn *c, const char *sql)
{
	if (!c->mysql) {
		int r = conn_connect(c, pool.database, 0);
		if (r < 0)
			return r;
	}
	if (mysql_query(c->mysql, sql)) {
		unsigned e = mysql_errno(c->mysql);
		int r = db_fail(e, mysql_error(c->mysql));
		if (!is_connection_error(e))
			return r;
		/* outside a transaction a dropped connection is retried once */
		bool retry = !c->in_transaction;
		conn_disconnect(c);
		if (!retry || (r = conn_connect(c, pool.database, 0)) < 0)
			return r;
		if (mysql_query(c->mysql, sql)) {
			r = db_fail(mysql_errno(c->mysql), mysql_error(c->mysql));
			conn_disconnect(c);
			return r;
		}
	}
	return 0;
}

int db_begin(struct db_conn *c)
{
	int r = simple(c, "START TRANSACTION");

	if (r == 0)
		c->in_transaction = true;
	return r;
}

int db_commit(struct db_conn *c)
{
	int r = simple(c, "COMMIT");

	c->in_transaction = false;
	return r;
}

int db_rollback(struct db_conn *c)
{
	int r = simple(c, "ROLLBACK");

	c->in_transaction = false;
	return r;
}

int db_column(const struct db_result *r, const char *name)
{
	for (guint i = 0; i < r->ncols; i++)
		if (!strcmp(r->names[i], name))
			return i;
	return -1;
}

const char *db_get(const struct db_result *r, guint row, const char *column)
{
	int i;

	if (!r || !r->rows || row >= r->rows->len || (i = db_column(r, column)) < 0)
		return NULL;
	return ((char **)g_ptr_array_index(r->rows, row))[i];
}

int db_health(GString *out)
{
	g_autoptr(db_conn) c = NULL;
	gint64 t0 = g_get_monotonic_time();
	int r;

	if (db_acquire(&c) < 0) {
		g_string_append_printf(out, "down %s", ep_error_message());
		return -EAGAIN;
	}
	r = db_run(c, "SELECT 1", NULL, DB_NOPARAMS);
	if (r < 0)
		g_string_append_printf(out, "down %s", ep_error_message());
	else
		g_string_append_printf(out, "ok %.3f ms", (g_get_monotonic_time() - t0) / 1000.0);
	return r;
}

/* Run every statement of a migration script (multi-statement text). */
static int run_script(MYSQL *m, const char *text)
{
	int status = mysql_real_query(m, text, strlen(text));

	do {
		if (status)
			return ep_errorf(EIO, "database: migration failed: %s", mysql_error(m));
		MYSQL_RES *r = mysql_store_result(m);
		if (r)
			mysql_free_result(r);
		status = mysql_next_result(m);
	} while (status == 0);
	if (status > 0)
		return ep_errorf(EIO, "database: migration failed: %s", mysql_error(m));
	return 0;
}

static int migration_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Apply the embedded sql/NNN_*.sql scripts not yet recorded in schema_migrations. */
static int db_migrate(void)
{
	g_autoptr(GError) gerr = NULL;
	g_auto(GStrv) names = g_resources_enumerate_children("/epfs/sql", 0, &gerr);
	struct db_conn *c = conn_new();
	g_autofree char *create = NULL;
	int r;

	if (!names) {
		conn_free(c);
		return ep_errorf(EIO, "database: no embedded migrations: %s", gerr->message);
	}
	qsort(names, g_strv_length(names), sizeof(char *), migration_cmp);

	/* connect without a database first, so a fresh server works */
	if ((r = conn_connect(c, NULL, CLIENT_MULTI_STATEMENTS)) < 0)
		goto out;
	create = g_strdup_printf("CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 "
	                         "COLLATE utf8mb4_bin", pool.database);
	if (mysql_query(c->mysql, create) || mysql_select_db(c->mysql, pool.database)) {
		r = db_fail(mysql_errno(c->mysql), mysql_error(c->mysql));
		goto out;
	}
	/* one mount migrates at a time; the others wait for it */
	if ((r = run_script(c->mysql, "DO GET_LOCK('epfs_migrate', 60)")) < 0)
		goto out;
	if ((r = run_script(c->mysql, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                              " version INT PRIMARY KEY,"
	                              " name VARCHAR(255) NOT NULL,"
	                              " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")) < 0)
		goto unlock;
	for (guint i = 0; names[i]; i++) {
		int version = atoi(names[i]);
		g_autofree char *path = g_strconcat("/epfs/sql/", names[i], NULL);
		g_autoptr(GBytes) script = NULL;
		g_autofree char *check = NULL, *record = NULL, *text = NULL;
		MYSQL_RES *res;
		bool done;

		if (version <= 0 || !g_str_has_suffix(names[i], ".sql"))
			continue;
		check = g_strdup_printf("SELECT 1 FROM schema_migrations WHERE version = %d", version);
		if (mysql_query(c->mysql, check) || !(res = mysql_store_result(c->mysql))) {
			r = db_fail(mysql_errno(c->mysql), mysql_error(c->mysql));
			goto unlock;
		}
		done = mysql_num_rows(res) > 0;
		mysql_free_result(res);
		if (done)
			continue;
		script = g_resources_lookup_data(path, 0, &gerr);
		if (!script) {
			r = ep_errorf(EIO, "database: %s: %s", path, gerr->message);
			goto unlock;
		}
		text = g_strndup(g_bytes_get_data(script, NULL), g_bytes_get_size(script));
		if ((r = run_script(c->mysql, text)) < 0)
			goto unlock;
		record = g_strdup_printf("INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')",
		                         version, names[i]);
		if ((r = run_script(c->mysql, record)) < 0)
			goto unlock;
		g_message("database: applied migration %s", names[i]);
	}
unlock:
	run_script(c->mysql, "DO RELEASE_LOCK('epfs_migrate')");
out:
	conn_free(c);
	return r;
}

static char *key_string(GKeyFile *kf, const char *key, const char *def)
{
	char *v = g_key_file_get_string(kf, "database", key, NULL);

	return v ? v : g_strdup(def);
}

int db_open(GKeyFile *config)
{
	int r;

	pool.host = key_string(config, "host", NULL);
	pool.socket = key_string(config, "socket", NULL);
	pool.user = key_string(config, "user", "root");
	pool.password = key_string(config, "password", NULL);
	pool.database = key_string(config, "database", "epfs");
	pool.port = g_key_file_get_integer(config, "database", "port", NULL);
	pool.timeout = g_key_file_get_integer(config, "epfs", "timeout", NULL);
	if (pool.timeout == 0)
		pool.timeout = 10;
	pool.size = g_key_file_get_integer(config, "database", "pool_size", NULL);
	if (pool.size == 0)
		pool.size = 4;

	for (const char *p = pool.database; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '_')
			return ep_errorf(EINVAL, "database: invalid database name '%s'", pool.database);
	if (mysql_library_init(0, NULL, NULL))
		return ep_errorf(EIO, "database: cannot initialise the client library");
	if ((r = db_migrate()) < 0)
		return r;
	pool.idle = g_async_queue_new();
	for (guint i = 0; i < pool.size; i++)
		g_async_queue_push(pool.idle, conn_new());
	return 0;
}

int db_hold_lock(const char *name)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if (!pool.lock_conn)
		pool.lock_conn = conn_new();
	if ((ret = db_run(pool.lock_conn, "SELECT GET_LOCK(?, 0) AS got", &r, DB_PARAMS(name))) < 0)
		return ret;
	if (g_strcmp0(db_get(r, 0, "got"), "1"))
		return ep_errorf(EBUSY, "database: lock %s is held elsewhere", name);
	return 0;
}

bool db_lock_held(const char *name)
{
	g_autoptr(db_result) r = NULL;

	if (!pool.lock_conn ||
	    db_run(pool.lock_conn, "SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine", &r, DB_PARAMS(name)) < 0)
		return false;
	return !g_strcmp0(db_get(r, 0, "mine"), "1");
}

int db_lock(const char *name, int timeout_s, struct db_conn **out)
{
	g_autoptr(db_result) r = NULL;
	g_autofree char *t = g_strdup_printf("%d", timeout_s);
	struct db_conn *c = conn_new();
	int ret;

	*out = NULL;
	if ((ret = db_run(c, "SELECT GET_LOCK(?, ?) AS got", &r, DB_PARAMS(name, t))) < 0) {
		conn_free(c);
		return ret;
	}
	if (g_strcmp0(db_get(r, 0, "got"), "1")) {
		conn_free(c);
		return ep_errorf(ETIMEDOUT, "database: lock %s stayed busy for %d s", name, timeout_s);
	}
	*out = c;
	return 0;
}

void db_unlock(struct db_conn *c)
{
	if (c)
		conn_free(c);   /* closing the connection frees its locks */
}

void db_close(void)
{
	if (pool.lock_conn) {
		conn_free(pool.lock_conn);
		pool.lock_conn = NULL;
	}
	struct db_conn *c;

	if (pool.idle) {
		while ((c = g_async_queue_try_pop(pool.idle)))
			conn_free(c);
		g_async_queue_unref(pool.idle);
		pool.idle = NULL;
	}
	g_clear_pointer(&pool.host, g_free);
	g_clear_pointer(&pool.socket, g_free);
	g_clear_pointer(&pool.user, g_free);
	g_clear_pointer(&pool.password, g_free);
	g_clear_pointer(&pool.database, g_free);
	mysql_library_end();
}
