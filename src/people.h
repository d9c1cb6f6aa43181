/* people.h: what the people-and-data kinds (users, projects, datasets) share. */
#pragma once

#include "kind.h"

extern const struct ep_kind kind_users;
extern const struct ep_kind kind_projects;
extern const struct ep_kind kind_datasets;

/* The Unix uid of a platform user (0 if unknown). */
uid_t user_uid(const char *user);

/* mkdir -p in the file store. */
int store_mkdirs(const char *path);
