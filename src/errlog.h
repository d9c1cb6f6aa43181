/* errlog.h: the error files (SPEC rule 5). */
#pragma once

#include "kind.h"

/* Append `<time> <ERRNO> <op>: <message>` to the error log of the record
 * (k, key) when k is not NULL, to the global log (.epfs/errors) and to
 * syslog, keeping the last 100 lines of each log. */
void errlog_append(const struct ep_kind *k, const char *key, const char *op, int err,
                   const char *message);

/* Render the global log (for .epfs/errors). */
int errlog_render_global(GString *out);
