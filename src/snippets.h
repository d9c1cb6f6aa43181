/* snippets.h: users/<u>/snippets/ — a user's code-snippet tree, stored in the
 * database: directories are nodes, files are snippets (seed 001). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct snip {
	uint64_t id;            /* 0 is the root, snippets/ itself */
	bool dir;
	uint64_t size;
	int64_t mtime_us;
};

/* The entry name in directory parent of user's tree.  ENOENT if none. */
int snip_lookup(const char *user, uint64_t parent, const char *name, struct snip *out);
/* Every entry of directory parent: names into names, and their struct snip into snips. */
int snip_list(const char *user, uint64_t parent, GPtrArray *names, GArray *snips);
/* A new file or directory; EEXIST if the name is taken. */
int snip_create(const char *user, uint64_t parent, const char *name, bool dir, uint64_t *id);
/* Remove a node and everything below it. */
int snip_remove(const char *user, uint64_t id);
int snip_read(uint64_t id, GString *out);
int snip_write(uint64_t id, const char *data, size_t len);
/* Move node id to newname in newparent, replacing a file there (not a directory). */
int snip_rename(const char *user, uint64_t id, uint64_t newparent, const char *newname, bool noreplace);
int snip_set_mtime(uint64_t id, int64_t us);
