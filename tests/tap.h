/* tap.h: the TAP helpers of the C test programs (storage-test, filestore-test,
 * hv-test).  Each check prints "ok N - what" or "not ok N - what"; failures
 * also print the errno and the message the code under test recorded with
 * ep_errorf(). */
#pragma once

#include <glib.h>
#include <stdbool.h>

extern int tests_run;
extern int tests_failed;

/* Pass if cond. */
bool ok(bool cond, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Pass if r is 0 or a count; else show the recorded message.  Clears it. */
bool ok_r(long r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Pass if r is -err and a message was recorded.  Clears it. */
bool is_err(long r, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* ... or -err2 (when not 0). */
bool is_err2(long r, int err, int err2, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* The recorded message names needle (check it before is_err clears it). */
bool message_has(const char *needle);
/* A "# " line. */
void diag(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Is s one of strings (char *)? */
bool contains(GPtrArray *strings, const char *s);
/* The plan line and a summary; the exit status (1 if anything failed). */
int tap_done(void);
