/* events.h: the `events` files — a short history of what happened to a
 * record, and poll(2) that wakes when something new happens (like
 * cgroup.events).  Kept in memory: a restart starts a fresh history. */
#pragma once

#include "kind.h"

#include <stdint.h>

struct fuse_pollhandle;

void events_init(void);
void events_shutdown(void);

/* Append "<time> <text>" to the events of record (k, key) and wake its pollers. */
void events_post(const struct ep_kind *k, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The events of (k, key), one per line (the last 100); returns their sequence number. */
uint64_t events_render(const struct ep_kind *k, const char *key, GString *out);

/* The sequence number of the newest event of (k, key) (0 if none). */
uint64_t events_seq(const struct ep_kind *k, const char *key);

/* Wake ph at the next event of (k, key); the events module owns ph from now on. */
void events_poll_wait(const struct ep_kind *k, const char *key, struct fuse_pollhandle *ph);
