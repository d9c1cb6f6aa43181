/* stats.h: operation counts and latencies, shown in .epfs/stats. */
#pragma once

#include <glib.h>

enum stats_op {
	OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKDIR, OP_RMDIR, OP_UNLINK,
	OP_SYMLINK, OP_RENAME, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_OPENDIR,
	OP_READDIR, OP_RELEASEDIR, OP_STATFS, OP_ACCESS, OP_CREATE, OP_MKNOD, OP_LINK, OP_FSYNC,
	OP_POLL, OP_COUNT
};

/* Count one operation that took us microseconds and failed with err (0 if not). */
void stats_record(enum stats_op op, gint64 us, int err);
/* Render the table: one line per operation that ran. */
void stats_render(GString *out);
const char *stats_op_name(enum stats_op op);
