/* clock.c: real time plus a configurable offset (clock.h). */
#include "clock.h"

#include <sys/stat.h>

static GMutex lock;
static char *config_path;
static struct timespec config_mtime;
static off_t config_size;
static int64_t offset_s;

static int64_t offset_from(GKeyFile *kf)
{
	g_autoptr(GError) err = NULL;
	gint64 v = g_key_file_get_int64(kf, "teaching", "clock_offset", &err);

	return err ? 0 : v;
}

void clock_init(const char *path, GKeyFile *config)
{
	struct stat st;

	g_mutex_lock(&lock);
	g_free(config_path);
	config_path = path ? g_canonicalize_filename(path, NULL) : NULL;
	offset_s = offset_from(config);
	if (path && stat(path, &st) == 0) {
		config_mtime = st.st_mtim;
		config_size = st.st_size;
	}
	g_mutex_unlock(&lock);
}

int64_t clock_offset(void)
{
	struct stat st;
	int64_t v;

	g_mutex_lock(&lock);
	if (config_path && stat(config_path, &st) == 0 &&
	    (st.st_mtim.tv_sec != config_mtime.tv_sec || st.st_mtim.tv_nsec != config_mtime.tv_nsec ||
	     st.st_size != config_size)) {
		g_autoptr(GKeyFile) kf = g_key_file_new();
		config_mtime = st.st_mtim;
		config_size = st.st_size;
		if (g_key_file_load_from_file(kf, config_path, G_KEY_FILE_NONE, NULL))
			offset_s = offset_from(kf);
	}
	v = offset_s;
	g_mutex_unlock(&lock);
	return v;
}

int64_t ep_now_us(void)
{
	return g_get_real_time() + clock_offset() * G_USEC_PER_SEC;
}

time_t ep_now(void)
{
	return (time_t)(ep_now_us() / G_USEC_PER_SEC);
}

char *clock_db_time(int64_t us)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);
	g_autofree char *s = g_date_time_format(t, "%Y-%m-%d %H:%M:%S");

	return g_strdup_printf("%s.%06d", s, (int)(us % G_USEC_PER_SEC));
}
