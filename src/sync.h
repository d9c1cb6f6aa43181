/* sync.h: coherence with changes made elsewhere (SPEC rule 8).
 *
 * A thread reads change_log (filled by triggers on every table, so changes by
 * other mounts and by hand in SQL alike) and invalidates our caches and the
 * kernel's for each changed record.
 */
#pragma once

/* Start polling every interval seconds. */
int sync_start(double interval);
void sync_stop(void);
