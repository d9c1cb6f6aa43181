/* jobs.h: long operations in the background, and the journal that makes
 * multi-step operations crash-safe (SPEC rules 6 and 7).
 *
 * A multi-step operation records itself in the `journal` table before its
 * first step, updates its step as it goes and removes itself at the end.  At
 * start-up every row left behind by a crash is handed to its kind's
 * recover(), which finishes or undoes it. */
#pragma once

#include "kind.h"

/* Start the worker threads. */
int jobs_init(GKeyFile *config);
/* Wait for running jobs (up to the timeout) and stop. */
void jobs_shutdown(void);

typedef int (*job_fn)(void *data);

/* Run fn(data) in the background; free_fn(data) afterwards. */
void jobs_run(job_fn fn, void *data, GDestroyNotify free_fn);

/* Run fn(data) in the background and wait for it up to timeout_ms: its result,
 * or -ETIMEDOUT (with a message) while it goes on. */
int jobs_run_wait(job_fn fn, void *data, GDestroyNotify free_fn, int timeout_ms, const char *what);

/* Journal an operation on record (k, key) about to start; *id names it. */
int journal_begin(const char *op, const struct ep_kind *k, const char *key, const char *data, char **id);
int journal_step(const char *id, const char *step);
int journal_end(const char *id);

/* Finish or undo what a crash interrupted: calls each kind's recover(). */
int journal_recover(void);
