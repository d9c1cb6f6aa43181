/* tree_store.h: the file-store nodes of the tree, inside the tree layer.
 *
 * users/<u>/projects/<p>/work/, datasets' files/, input/ and public copies:
 * the platform decides who may reach them (rule 9, read-only copies), and
 * below that they behave like a local disk: modes checked as the kernel
 * would, owners kept on the store where it can keep them, the caller's
 * exact mode.
 */
#pragma once

#include "tree.h"

/* A store file as shown: owners, and modes where the store is read-only. */
void store_stat_fix(struct ep_node_info *n, struct stat *st);
/* May ctx change files of this store directory at all (the platform's rule)?  0 or -errno. */
int store_may_write(struct ep_ctx *ctx, struct ep_node_info *n);
/* path/name in the store, for a new entry of directory n (NULL and *r set if refused). */
char *store_child(struct ep_node_info *n, const char *name, int *r);
/* After ctx made path with mode: the exact mode and the caller as owner. */
void store_made(struct ep_ctx *ctx, const char *path, mode_t mode, bool symlink);
