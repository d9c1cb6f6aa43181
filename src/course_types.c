/* course_types.c: course-types/<id>/ — kinds of course (seed 003); one in
 * use by a course cannot be removed. */
#include "db.h"
#include "error.h"
#include "teaching.h"

#include <errno.h>

static const struct ep_attr course_type_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int course_type_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if ((ret = db_run(ctx->db, "SELECT id FROM course WHERE type_id = ? ORDER BY id LIMIT 1 FOR UPDATE", &r,
	                  DB_PARAMS(o->id))) < 0)
		return ret;
	if (r->rows->len)
		return ep_errorf(EBUSY, "course type %s is used by course %s", o->id, db_get(r, 0, "id"));
	return db_run(ctx->db, "DELETE FROM course_type WHERE id = ?", NULL, DB_PARAMS(o->id));
}

const struct ep_kind kind_course_types = {
	.name = "course-types",
	.table = "course_type",
	.attrs = course_type_attrs,
	.remove = course_type_remove,
};
