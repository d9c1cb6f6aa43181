/* db.h: the database layer (MariaDB/MySQL through Connector/C).
 *
 * A small pool of connections, each with a cache of prepared statements.
 * Every statement is prepared with bound parameters (SPEC rule 10); values go
 * in and come out as strings (NULL for SQL NULL).  Connection failures are
 * retried once on a fresh connection; persistent ones fail with EAGAIN.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;

struct db_result {
	guint ncols;
	char **names;           /* column names */
	GPtrArray *rows;        /* char ** of ncols entries; NULL entries are SQL NULL */
	uint64_t affected;      /* rows changed by INSERT/UPDATE/DELETE */
	uint64_t insert_id;
};

/* The parameter list of a statement: DB_PARAMS(a, b, c). */
#define DB_PARAMS(...) \
	G_N_ELEMENTS(((const char *const[]){ __VA_ARGS__ })), ((const char *const[]){ __VA_ARGS__ })
#define DB_NOPARAMS 0, NULL

/* Connect the pool from the [database] group, create the database if needed
 * and apply the pending migrations under a lock.  0 or -errno. */
int db_open(GKeyFile *config);
void db_close(void);

/* Take a connection from the pool into *out (waits up to the timeout).
 * 0 or -errno (ETIMEDOUT when the pool stays busy, EAGAIN when the server is down). */
int db_acquire(struct db_conn **out);
void db_release(struct db_conn *c);

/* Run one prepared statement on c.  out may be NULL.  0 or -errno. */
int db_run(struct db_conn *c, const char *sql, struct db_result **out, guint nparams,
           const char *const *params);

/* db_run on a pooled connection. */
int db_query(const char *sql, struct db_result **out, guint nparams, const char *const *params);

int db_begin(struct db_conn *c);
int db_commit(struct db_conn *c);
int db_rollback(struct db_conn *c);

/* Cell (row, column name) of r, or NULL. */
const char *db_get(const struct db_result *r, guint row, const char *column);
/* Column index of name in r, or -1. */
int db_column(const struct db_result *r, const char *name);
void db_result_free(struct db_result *r);
typedef struct db_result db_result;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(db_result, db_result_free)

/* Take the named lock (GET_LOCK) on a connection of its own, held until
 * db_close() or the process dies: other mounts see it with IS_FREE_LOCK(). */
int db_hold_lock(const char *name);

/* Does this mount (db_hold_lock) still hold the named lock?  False once its
 * connection was lost (the server then freed the lock). */
bool db_lock_held(const char *name);

/* Take a named lock on a connection of its own, outside the pool (so that
 * holding it while working never starves the pool), waiting up to timeout_s;
 * ETIMEDOUT if it stays busy.  db_unlock() frees it and the connection. */
int db_lock(const char *name, int timeout_s, struct db_conn **out);
void db_unlock(struct db_conn *c);

/* Ping the server and report "ok <latency>" or the failure into out. 0 or -errno. */
int db_health(GString *out);

typedef struct db_conn db_conn;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(db_conn, db_release)
