/* settings.c: defaults and rendering of the key-file configuration. */
#include "settings.h"
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct setting {
	const char *group, *key, *value;
};

/* Every setting and its default; a setting missing here is still accepted. */
static const struct setting defaults[] = {
	{ "epfs", "entry_timeout", "1.0" },
	{ "epfs", "attr_timeout", "1.0" },
	{ "epfs", "timeout", "10" },
	{ "epfs", "cache_ttl", "10" },
	{ "epfs", "admin_group", "root" },
	{ "database", "socket", "/run/mysqld/mysqld.sock" },
	{ "database", "user", "root" },
	{ "database", "database", "epfs" },
	{ "database", "pool_size", "4" },
	{ "storage", "backend", "dir" },
	{ "storage", "path", "/var/lib/epfs/storage" },
	{ "storage", "image_pool", "images" },
	{ "storage", "volume_pool", "volumes" },
	{ "storage", "timeout", "10" },
	{ "filestore", "backend", "local" },
	{ "filestore", "path", "/var/lib/epfs/files" },
	{ "teaching", "clock_offset", "0" },
	{ "teaching", "scheduler_interval", "30" },
	{ "teaching", "cleanup_grace", "604800" },
	{ "grading", "points_a", "2" },
	{ "grading", "points_b", "1" },
	{ "grading", "points_c", "0" },
	{ "grading", "points_d", "-1" },
	{ "grading", "weight", "25" },
	{ "service", "volume_size", "1G" },
	{ "service", "idle_minutes", "60" },
};

int settings_load(const char *path, GKeyFile **out)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) err = NULL;

	if (path && !g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, &err))
		return ep_errorf(EINVAL, "%s: %s", path, err->message);
	for (size_t i = 0; i < G_N_ELEMENTS(defaults); i++)
		if (!g_key_file_has_key(kf, defaults[i].group, defaults[i].key, NULL))
			g_key_file_set_string(kf, defaults[i].group, defaults[i].key, defaults[i].value);
	/* other mounts' changes are polled for at twice the rate they may be cached */
	if (!g_key_file_has_key(kf, "epfs", "sync_interval", NULL))
		g_key_file_set_double(kf, "epfs", "sync_interval",
		                      settings_double(kf, "epfs", "attr_timeout", 1.0) / 2);
	*out = g_steal_pointer(&kf);
	return 0;
}

static bool is_secret(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token");
}

void settings_render(GKeyFile *kf, GString *out)
{
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

	for (guint g = 0; groups[g]; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);

		g_string_append_printf(out, "%s[%s]\n", g ? "\n" : "", groups[g]);
		for (guint k = 0; keys && keys[k]; k++) {
			g_autofree char *v = g_key_file_get_value(kf, groups[g], keys[k], NULL);
			g_string_append_printf(out, "%s=%s\n", keys[k], is_secret(keys[k]) ? "********" : v);
		}
	}
}

double settings_double(GKeyFile *kf, const char *group, const char *key, double def)
{
	g_autoptr(GError) err = NULL;
	double v = g_key_file_get_double(kf, group, key, &err);

	return err ? def : v;
}
