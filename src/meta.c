/* meta.c: the files of .epfs/: version, config, stats, health, errors. */
#include "settings.h"
#include "db.h"
#include "epfs.h"
#include "errlog.h"
#include "filestore.h"
#include "stats.h"
#include "storage.h"
#include "tree.h"

#include "error.h"

static int render_version(struct ep_ctx *ctx, GString *out)
{
	(void)ctx;
	g_string_append(out, PACKAGE_VERSION "\n");
	return 0;
}

static int render_config(struct ep_ctx *ctx, GString *out)
{
	(void)ctx;
	settings_render(epfs_config, out);
	return 0;
}

static int render_stats(struct ep_ctx *ctx, GString *out)
{
	(void)ctx;
	stats_render(out);
	return 0;
}

static int render_health(struct ep_ctx *ctx, GString *out)
{
	gint64 t0;
	int r;

	(void)ctx;
	g_string_append(out, "database ");
	db_health(out);
	g_string_append(out, "\nstorage ");
	t0 = g_get_monotonic_time();
	r = storage_ping(epfs_storage);
	if (r < 0)
		g_string_append_printf(out, "down %s %s", epfs_storage->ops->name, ep_error_message());
	else
		g_string_append_printf(out, "ok %s %.3f ms", epfs_storage->ops->name,
		                       (g_get_monotonic_time() - t0) / 1000.0);
	g_string_append(out, "\nfilestore ");
	t0 = g_get_monotonic_time();
	if (filestore_ping(epfs_files) < 0)
		g_string_append_printf(out, "down %s %s", epfs_files->description, ep_error_message());
	else
		g_string_append_printf(out, "ok %s %.3f ms", epfs_files->description,
		                       (g_get_monotonic_time() - t0) / 1000.0);
	g_string_append_c(out, '\n');
	return 0;
}

static int render_errors(struct ep_ctx *ctx, GString *out)
{
	(void)ctx;
	return errlog_render_global(out);
}

const struct meta_file meta_files[] = {
	{ "version", render_version },
	{ "config", render_config },
	{ "stats", render_stats },
	{ "health", render_health },
	{ "errors", render_errors },
	{ NULL, NULL },
};
