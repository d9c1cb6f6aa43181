/* value.c: parsing and formatting of file values (SPEC rule 1). */
#include "value.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool value_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	if (!g_ascii_islower(s[0]) && !g_ascii_isdigit(s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!g_ascii_islower(c) && !g_ascii_isdigit(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return strstr(s, "..") == NULL;
}

int value_parse_size(const char *s, uint64_t *out)
{
	char *end;
	guint64 v;
	unsigned shift = 0;

	if (!g_ascii_isdigit(s[0]))
		return -EINVAL;
	errno = 0;
	v = g_ascii_strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		switch (g_ascii_toupper(*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return -EINVAL;
		}
		end++;
		/* accept "20G", "20GB", "20GiB" */
		if (g_ascii_strcasecmp(end, "") && g_ascii_strcasecmp(end, "B") && g_ascii_strcasecmp(end, "iB"))
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int value_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	gint64 v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = g_ascii_strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int value_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (!g_ascii_strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!g_ascii_strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int value_parse_time(const char *s, int64_t *out_us)
{
	g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
	g_autoptr(GDateTime) dt = NULL;

	if (strlen(s) == 10) {                  /* a bare date: midnight UTC */
		g_autofree char *full = g_strconcat(s, "T00:00:00Z", NULL);
		dt = g_date_time_new_from_iso8601(full, utc);
	} else {
		dt = g_date_time_new_from_iso8601(s, utc);
	}
	if (!dt)
		return -EINVAL;
	*out_us = g_date_time_to_unix(dt) * G_USEC_PER_SEC + g_date_time_get_microsecond(dt);
	return 0;
}

char *value_format_time(int64_t us)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);

	if (!dt)
		return g_strdup("");
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

int64_t value_db_time(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	long frac = 0;
	char fracbuf[8] = "";

	if (!s || sscanf(s, "%d-%d-%d %d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return 0;
	if (s[n] == '.') {
		/* pad the fraction to microseconds */
		size_t k = 0;
		for (const char *p = s + n + 1; *p && k < 6 && g_ascii_isdigit(*p); p++)
			fracbuf[k++] = *p;
		while (k < 6)
			fracbuf[k++] = '0';
		frac = strtol(fracbuf, NULL, 10);
	}
	g_autoptr(GDateTime) dt = g_date_time_new_utc(y, mo, d, h, mi, sec);
	if (!dt)
		return 0;
	return g_date_time_to_unix(dt) * G_USEC_PER_SEC + frac;
}

char *value_trim(const char *buf, size_t len)
{
	char *s = g_strndup(buf, len);

	return g_strstrip(s);
}

bool value_is_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return g_utf8_validate(s, -1, NULL);
}
