/* service.c: users/<u>/service/ — the user's personal environment (seed
 * 001): an instance made from the configured template with a persistent
 * volume of its own, started on demand and stopped when idle.
 *
 * Idle means: [service] idle_minutes have passed (by ep_now()) since the last
 * `echo running > state`, and the service was not stopped since.  Starting
 * it again renews it (`start` while it runs).  The check is a step of each pass of the teaching
 * scheduler (scheduler.c); it stops the instance (the volume stays attached
 * and kept). */
#include "templates.h"
#include "clock.h"
#include "db.h"
#include "epfs.h"
#include "errlog.h"
#include "error.h"
#include "events.h"
#include "people.h"
#include "storage.h"
#include "value.h"

#include <errno.h>
#include <string.h>

static const char *const service_words[] = {
	"none", "building", "running", "shutoff", "error", "start", "stop", NULL
};

/* The id of the user's instance and volume: "svc-<u>" (shortened for long names). */
static char *service_resource_id(const char *user)
{
	g_autofree char *sum = NULL;

	if (strlen(user) <= 59)
		return g_strconcat("svc-", user, NULL);
	sum = g_compute_checksum_for_string(G_CHECKSUM_SHA1, user, -1);
	return g_strdup_printf("svc-%.40s-%.16s", user, sum);
}

static int render_state(struct ep_obj *o, GString *out)
{
	const char *id = obj_get(o, "instance_id");
	g_autoptr(ep_obj) inst = NULL;
	g_autoptr(GString) live = g_string_new(NULL);
	const char *status;
	int r;

	if (!id || (r = kind_load(&kind_instances, id, &inst)) == -ENOENT) {
		g_string_append(out, "none");
		return 0;
	}
	if (r < 0)
		return r;
	status = obj_get(inst, "status");
	if (!strcmp(status, "building") || !strcmp(status, "error")) {
		g_string_append(out, status);
		return 0;
	}
	if (!instance_provisioned(inst)) {
		g_string_append(out, "shutoff");
		return 0;
	}
	if ((r = attr_render(NULL, inst, kind_attr(&kind_instances, "state"), live)) < 0)
		return r;
	g_strchomp(live->str);
	g_string_append(out, !strcmp(live->str, "running") || !strcmp(live->str, "paused") ||
	                             !strcmp(live->str, "pmsuspended") ? "running" : "shutoff");
	return 0;
}

/* The service's row as it is in the database now (not as cached). */
static int service_row(const char *user, db_result **out)
{
	int r = db_query("INSERT IGNORE INTO service (id) VALUES (?)", NULL, DB_PARAMS(user));

	if (r < 0)
		return r;
	return db_query("SELECT instance_id, volume_id FROM service WHERE id = ?", out, DB_PARAMS(user));
}

/* The instance, made from [service] template if there is none (one left by
 * an interrupted start, owned by the user, is taken over). */
static int ensure_instance(struct ep_ctx *ctx, const char *user, const char *have, const char *id)
{
	g_autofree char *tpl = g_key_file_get_string(epfs_config, "service", "template", NULL);
	g_autoptr(db_result) owner = NULL;
	g_autoptr(ep_obj) inst = NULL;
	int r;

	if (have && kind_load(&kind_instances, have, &inst) == 0)
		return 0;
	if (!tpl || !*tpl)
		return ep_errorf(EINVAL, "state: no [service] template= is configured");
	r = template_instantiate(ctx, tpl, id, user);
	if (r == -EEXIST) {
		if ((r = db_query("SELECT owner_id FROM instance WHERE id = ?", &owner, DB_PARAMS(id))) < 0)
			return r;
		if (!owner->rows->len || g_strcmp0(db_get(owner, 0, "owner_id"), user))
			return ep_errorf(EEXIST, "state: instances/%s exists and is not %s's", id, user);
		r = 0;
	}
	if (r < 0)
		return r;
	return db_query("UPDATE service SET instance_id = ? WHERE id = ?", NULL, DB_PARAMS(id, user));
}

/* The volume, [service] volume_size bytes, made if there is none. */
static int ensure_volume(const char *user, const char *have, const char *id)
{
	g_autofree char *size_s = g_key_file_get_string(epfs_config, "service", "volume_size", NULL);
	g_autofree char *size = NULL;
	g_autoptr(ep_obj) vol = NULL;
	uint64_t bytes = 1ULL << 30;
	int r;

	if (have && kind_load(&kind_volumes, have, &vol) == 0)
		return 0;
	if (size_s && (value_parse_size(size_s, &bytes) < 0 || bytes == 0))
		return ep_errorf(EINVAL, "state: [service] volume_size '%s' is not a size", size_s);
	size = g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
	/* bytes first: a record never names bytes that are not there */
	r = storage_create(epfs_storage, epfs_storage->volume_pool, id, bytes);
	if (r < 0 && r != -EEXIST)
		return r;
	r = db_query("INSERT INTO volume (id, name, size, status) VALUES (?, ?, ?, 'available')", NULL,
	             DB_PARAMS(id, user, size));
	if (r < 0 && r != -EEXIST)
		return r;
	kind_changed(&kind_volumes, id);
	return db_query("UPDATE service SET volume_id = ? WHERE id = ?", NULL, DB_PARAMS(id, user));
}

/* echo running > state: make what is missing, attach the volume, start. */
static int service_up(struct ep_ctx *ctx, const char *user)
{
	g_autoptr(db_result) row = NULL;
	g_autoptr(ep_obj) inst = NULL, vol = NULL;
	g_autofree char *id = service_resource_id(user);
	g_autofree char *now = NULL;
	const char *attached;
	int r;

	if ((r = service_row(user, &row)) < 0 ||
	    (r = ensure_instance(ctx, user, db_get(row, 0, "instance_id"), id)) < 0 ||
	    (r = ensure_volume(user, db_get(row, 0, "volume_id"), id)) < 0)
		return r;
	g_clear_pointer(&row, db_result_free);
	if ((r = db_query("SELECT instance_id, volume_id FROM service WHERE id = ?", &row, DB_PARAMS(user))) < 0)
		return r;
	kind_changed(&kind_instances, db_get(row, 0, "instance_id"));
	kind_changed(&kind_volumes, db_get(row, 0, "volume_id"));
	if ((r = kind_load(&kind_instances, db_get(row, 0, "instance_id"), &inst)) < 0 ||
	    (r = kind_load(&kind_volumes, db_get(row, 0, "volume_id"), &vol)) < 0)
		return r;
	attached = obj_get(vol, "instance_id");
	if (!attached) {
		if ((r = instance_attach_volume(ctx, inst, vol)) < 0)
			return r;
		kind_changed(&kind_volumes, vol->id);
	} else if (strcmp(attached, inst->id)) {
		return ep_errorf(EBUSY, "state: volumes/%s is attached to instances/%s", vol->id, attached);
	}
	/* the idle clock starts now, also when it was running already */
	now = clock_db_time(ep_now_us());
	if ((r = db_query("UPDATE service SET last_start = ?, stop_reason = '' WHERE id = ?", NULL,
	                  DB_PARAMS(now, user))) < 0)
		return r;
	return instance_set_state(ctx, inst->id, "running");
}

static int service_down(struct ep_ctx *ctx, struct ep_obj *o, const char *reason)
{
	const char *id = obj_get(o, "instance_id");
	int r;

	if (!id)
		return 0;
	if ((r = instance_set_state(ctx, id, "shutoff")) < 0 && r != -ENOENT)
		return r;
	return db_query("UPDATE service SET stop_reason = ? WHERE id = ?", NULL, DB_PARAMS(reason, o->id));
}

static int state_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *word)
{
	int r;

	if (!strcmp(word, "running") || !strcmp(word, "start"))
		r = service_up(ctx, o->id);
	else if (!strcmp(word, "shutoff") || !strcmp(word, "stop"))
		r = service_down(ctx, o, "user");
	else
		return ep_errorf(EINVAL, "state: write running (or start) or shutoff (or stop)");
	kind_changed(&kind_service, o->id);
	return r;
}

int service_idle_sweep(time_t now)
{
	g_autoptr(db_result) res = NULL;
	int idle = g_key_file_get_integer(epfs_config, "service", "idle_minutes", NULL);
	int stopped = 0, r;

	if (idle <= 0)
		return 0;
	if ((r = db_query("SELECT id, instance_id, last_start FROM service WHERE instance_id IS NOT NULL "
	                  "AND last_start IS NOT NULL AND stop_reason = ''", &res, DB_NOPARAMS)) < 0)
		return r;
	for (guint i = 0; i < res->rows->len; i++) {
		const char *user = db_get(res, i, "id"), *id = db_get(res, i, "instance_id");
		time_t since = value_db_time(db_get(res, i, "last_start")) / G_USEC_PER_SEC;
		g_autoptr(ep_obj) inst = NULL;

		if (now - since < (time_t)idle * 60)
			continue;
		g_autoptr(db_result) claim = NULL;

		if (kind_load(&kind_instances, id, &inst) < 0 || !instance_provisioned(inst))
			continue;
		/* claimed first: a renewal since the SELECT (a new last_start) wins */
		if (db_query("UPDATE service SET stop_reason = 'idle' WHERE id = ? AND stop_reason = '' AND "
		             "last_start = ?", &claim, DB_PARAMS(user, db_get(res, i, "last_start"))) < 0 ||
		    claim->affected != 1)
			continue;
		if ((r = instance_set_state(NULL, id, "shutoff")) < 0) {
			errlog_append(&kind_service, user, "idle", -r, ep_error_message());
			db_query("UPDATE service SET stop_reason = '' WHERE id = ? AND stop_reason = 'idle'", NULL,
			         DB_PARAMS(user));
			continue;
		}
		events_post(&kind_instances, id, "service of %s idle for %d minutes: stopped", user, idle);
		kind_changed(&kind_service, user);
		stopped++;
	}
	return stopped;
}

static bool service_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	return ctx->admin || (o && ctx->user[0] && !strcmp(o->id, ctx->user));
}

static uid_t service_owner(struct ep_obj *o)
{
	return user_uid(o->id);
}

static const struct ep_attr service_attrs[] = {
	{ .name = "state", .type = AT_ENUM, .flags = ATTR_LIVE | ATTR_ACTION, .choices = service_words,
	  .render = render_state, .apply = state_apply },
	{ .name = "instance", .column = "instance_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "instances" },
	{ .name = "volume", .column = "volume_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "volumes" },
	{ .name = "last_start", .column = "last_start", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "stop_reason", .column = "stop_reason", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

const struct ep_kind kind_service = {
	.name = "service",
	.table = "service",
	.parent = &kind_users,
	.singleton = true,
	.attrs = service_attrs,
	.may_write = service_may_write,
	.owner = service_owner,
};
