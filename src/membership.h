/* membership.h: directories of links that make one record a member of
 * another (courses/<c>/students/<u>@, courses/<c>/classes/<cls>@,
 * classes/<cls>/students/<u>@), kept in a table of (owner, member) pairs. */
#pragma once

#include "kind.h"

struct membership {
	const char *table;              /* "course_student": where links are made and removed */
	const char *listed_from;        /* what is listed (a view may add members), or NULL: table */
	const char *owner_column;       /* "course_id" */
	const char *member_column;      /* "user_id" */
	const struct ep_kind *target;   /* the members' kind (top-level): &kind_users */
	const char *what;               /* in messages: "enrolled in", "in class" */
};

int membership_list(const struct membership *m, struct ep_obj *o, GPtrArray *out);
/* The link's target, ../../../<kind>/<name>; ENOENT if name is no member. */
int membership_render(const struct membership *m, struct ep_obj *o, const char *name, GString *out);
/* ln -s ../../../<kind>/<name> <name>: EINVAL for another target, ENOENT for a
 * missing member, EEXIST for one already in. */
int membership_link(const struct membership *m, struct ep_obj *o, const char *name, const char *target);
/* rm <name>: ENOENT if it is not linked. */
int membership_unlink(const struct membership *m, struct ep_obj *o, const char *name);
