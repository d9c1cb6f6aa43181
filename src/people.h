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
