/* clock.h: the platform's notion of "now".
 *
 * Experiment windows, attempt limits and idle timeouts are judged against
 * ep_now(): the real time plus [teaching] clock_offset seconds from the
 * configuration.  The offset is read again whenever the configuration file
 * changes, so a test (or a rehearsal of a term) moves time by editing the file,
 * without sleeping and without remounting.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <time.h>

/* Take the offset from config, and follow the file at path (may be NULL). */
void clock_init(const char *path, GKeyFile *config);
/* Seconds since the epoch, offset applied. */
time_t ep_now(void);
/* Microseconds since the epoch, offset applied. */
int64_t ep_now_us(void);
/* The offset in seconds now in force. */
int64_t clock_offset(void);
/* A time as MariaDB DATETIME(6) text, UTC ("2026-11-22 10:00:00.000000"). */
char *clock_db_time(int64_t us);
