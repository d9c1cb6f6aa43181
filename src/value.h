/* value.h: parsing and formatting of the values files hold (SPEC rule 1). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* True if s is a valid id: [a-z0-9][a-z0-9._-]{0,62}, and not containing "..". */
bool value_id_valid(const char *s);

/* Parse "20G", "512M", "1024" (powers of 1024) into bytes.  0 or -EINVAL. */
int value_parse_size(const char *s, uint64_t *out);

/* Parse a signed integer in [min, max].  0 or -EINVAL. */
int value_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parse 0 1 true false yes no (any case).  0 or -EINVAL. */
int value_parse_bool(const char *s, bool *out);

/* Parse an ISO-8601 time ("2026-01-31T12:00:00Z" or with an offset, or a
 * bare date) into microseconds since the epoch.  0 or -EINVAL. */
int value_parse_time(const char *s, int64_t *out_us);

/* Format microseconds since the epoch as ISO-8601 UTC ("2026-01-31T12:00:00Z"). */
char *value_format_time(int64_t us);

/* Convert a database DATETIME(6) string ("2026-01-31 12:00:00.123456", UTC)
 * to microseconds since the epoch; 0 if s is NULL or malformed. */
int64_t value_db_time(const char *s);

/* The value written to a file, without one trailing newline and surrounding
 * blanks.  Returns a newly allocated string. */
char *value_trim(const char *buf, size_t len);

/* True if s is one line of printable text (no control characters). */
bool value_is_line(const char *s);
