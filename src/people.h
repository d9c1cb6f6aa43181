/* people.h: what the people-and-data kinds (users, projects, datasets) share. */
#pragma once

#include "kind.h"

extern const struct ep_kind kind_users;
extern const struct ep_kind kind_projects;
extern const struct ep_kind kind_datasets;

/* The Unix uid of a platform user (0 if unknown). */
uid_t user_uid(const char *user);

/* For the kinds below a user: may ctx change o (its user, or an admin)? */
bool user_owns(struct ep_ctx *ctx, struct ep_obj *o);
/* ... make one under user (that user herself)? */
bool user_is(struct ep_ctx *ctx, const char *user);
/* ... and its owner's uid. */
uid_t user_owner_of(struct ep_obj *o);

/* mkdir -p in the file store. */
int store_mkdirs(const char *path);

/* public.c: sharing projects and datasets under public/. */
extern const struct ep_kind kind_public_projects;
extern const struct ep_kind kind_public_datasets;
/* shared (an action): "1" publishes o (a project or dataset) by a background
 * copy to the public area, "0" withdraws it and removes the copy. */
int share_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon);
/* share_progress: "<copying|ready|error> <percent>", or nothing. */
int share_render_progress(struct ep_obj *o, GString *out);
/* A record's recover() for the journaled publish copies. */
int share_recover(const char *op, const char *key, const char *step, const char *data);
/* rmdir of a shared record: its public copy goes too. */
int share_forget(struct ep_obj *o);
/* ... and of a user: the copies of all she shares (in ctx->db's transaction). */
int share_forget_user(struct ep_ctx *ctx, const char *user);

/* datasets.c: preview/ of a files/ directory at path in the store. */
int dataset_preview_list_at(const char *files, GPtrArray *out);
int dataset_preview_render_at(const char *files, const char *name, GString *out);
/* The total bytes below files (a dataset's size). */
int dataset_size_render_at(const char *files, GString *out);
