/* error.h: one error convention end to end.
 *
 * Functions return 0 (or a count) on success and a negative errno on failure;
 * before failing they record a message with ep_errorf().  The message lives in
 * thread-local storage until the FUSE layer turns the failure into a reply
 * and appends it to the resource's `error` file, `.epfs/errors` and syslog.
 */
#pragma once

#include <stdarg.h>

/* Record a formatted message for errno `err` (positive) and return -err. */
int ep_errorf(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message recorded by this thread since the last ep_error_clear(). */
const char *ep_error_message(void);

/* Forget this thread's message (called at the start of every operation). */
void ep_error_clear(void);

/* The symbolic name of a positive errno ("EINVAL"), or "E<number>". */
const char *ep_errno_name(int err);

/* Append `<time> <ERRNO> <op>: <message>` to the error log of resource
 * (kind, key) (kind may be NULL for errors that belong to no resource), to the
 * global log shown in .epfs/errors, and to syslog.  Keeps the last 100 lines
 * of each log. */
void ep_error_log(const char *kind, const char *key, const char *op, int err,
                  const char *message);
