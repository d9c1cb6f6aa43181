/* stats.c: lock-free counters per operation. */
#include "stats.h"

static const char *const op_names[OP_COUNT] = {
	"lookup", "forget", "getattr", "setattr", "readlink", "mkdir", "rmdir", "unlink",
	"symlink", "rename", "open", "read", "write", "flush", "release", "opendir",
	"readdir", "releasedir", "statfs", "access", "create", "mknod", "link", "fsync", "poll",
};

static struct {
	gint64 count, errors, total_us, max_us;
} counters[OP_COUNT];

const char *stats_op_name(enum stats_op op)
{
	return op_names[op];
}

void stats_record(enum stats_op op, gint64 us, int err)
{
	gint64 max;

	__atomic_add_fetch(&counters[op].count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&counters[op].total_us, us, __ATOMIC_RELAXED);
	if (err)
		__atomic_add_fetch(&counters[op].errors, 1, __ATOMIC_RELAXED);
	max = __atomic_load_n(&counters[op].max_us, __ATOMIC_RELAXED);
	while (us > max && !__atomic_compare_exchange_n(&counters[op].max_us, &max, us, TRUE,
	                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void stats_render(GString *out)
{
	g_string_append_printf(out, "%-12s %10s %8s %12s %10s\n", "operation", "count", "errors",
	                       "mean_us", "max_us");
	for (int i = 0; i < OP_COUNT; i++) {
		gint64 n = __atomic_load_n(&counters[i].count, __ATOMIC_RELAXED);
		if (!n)
			continue;
		g_string_append_printf(out, "%-12s %10" G_GINT64_FORMAT " %8" G_GINT64_FORMAT
		                       " %12.1f %10" G_GINT64_FORMAT "\n",
		                       op_names[i], n, __atomic_load_n(&counters[i].errors, __ATOMIC_RELAXED),
		                       (double)__atomic_load_n(&counters[i].total_us, __ATOMIC_RELAXED) / n,
		                       __atomic_load_n(&counters[i].max_us, __ATOMIC_RELAXED));
	}
}
