/* instances.c: instances/<id>/ — virtual machines: the record, the live
 * state and the actions written to `state`. */
#include "compute.h"
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "events.h"
#include "jobs.h"
#include "people.h"
#include "storage.h"
#include "templates.h"

#include <errno.h>
#include <string.h>

/* What `state` accepts: the states one may want, and the verbs as aliases. */
static const char *const state_words[] = {
	"running", "shutoff", "paused", "destroyed",
	"start", "stop", "shutdown", "reboot", "destroy", "suspend", "resume", NULL
};

enum want { WANT_RUN, WANT_OFF, WANT_DESTROY, WANT_PAUSE, WANT_REBOOT };

static enum want want_of(const char *w)
{
	if (!strcmp(w, "running") || !strcmp(w, "start") || !strcmp(w, "resume"))
		return WANT_RUN;
	if (!strcmp(w, "shutoff") || !strcmp(w, "stop") || !strcmp(w, "shutdown"))
		return WANT_OFF;
	if (!strcmp(w, "destroyed") || !strcmp(w, "destroy"))
		return WANT_DESTROY;
	if (!strcmp(w, "paused") || !strcmp(w, "suspend"))
		return WANT_PAUSE;
	return WANT_REBOOT;
}

bool instance_provisioned(struct ep_obj *inst)
{
	const char *st = obj_get(inst, "status");
	const char *host = obj_get(inst, "host_id");

	return host && *host && !strcmp(st, "created");
}

char *instance_root_disk(const char *id)
{
	return g_strconcat(id, ".root", NULL);
}

static int operation_timeout_ms(void)
{
	int s = g_key_file_get_integer(epfs_config, "hypervisor", "operation_timeout", NULL);

	return (s > 0 ? s : 60) * 1000;
}

/* The live state as shown: the record's status until a domain exists. */
static int live_state(struct ep_obj *o, enum hv_state *st, const char **word)
{
	const char *host = obj_get(o, "host_id");
	int r;

	*st = HV_STATE_NONE;
	if (!instance_provisioned(o)) {
		*word = obj_get(o, "status");
		return 0;
	}
	if ((r = host_prepare(host)) < 0 || (r = hv_state(host, o->id, st)) < 0)
		return r;
	switch (*st) {
	case HV_STATE_NONE:
		*word = "missing";      /* the domain was removed behind our back */
		break;
	case HV_STATE_BLOCKED:
	case HV_STATE_SHUTDOWN:
		*word = "running";
		break;
	default:
		*word = hv_state_name(*st);
	}
	return 0;
}

static int render_state(struct ep_obj *o, GString *out)
{
	enum hv_state st;
	const char *word;
	int r = live_state(o, &st, &word);

	if (r == 0)
		g_string_append(out, word);
	return r;
}

/* Wait until the domain is off, up to ms milliseconds. */
static bool wait_off(const char *host, const char *id, int ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;
	enum hv_state st;

	while (g_get_monotonic_time() < until) {
		if (hv_state(host, id, &st) == 0 && (st == HV_STATE_SHUTOFF || st == HV_STATE_NONE))
			return true;
		g_usleep(100 * 1000);
	}
	return false;
}

struct action {
	char *id;
	enum want want;
};

static void action_free(gpointer p)
{
	struct action *a = p;

	g_free(a->id);
	g_free(a);
}

/* Bring a provisioned instance to the state wanted (runs as a job). */
static int action_job(void *data)
{
	struct action *a = data;
	g_autoptr(ep_obj) o = NULL;
	enum hv_state st;
	const char *host, *word;
	int r, shutdown_ms;

	if ((r = kind_load(&kind_instances, a->id, &o)) < 0)
		return r;
	host = obj_get(o, "host_id");
	if ((r = live_state(o, &st, &word)) < 0)
		return r;
	switch (a->want) {
	case WANT_RUN:
		if (st == HV_STATE_PAUSED || st == HV_STATE_PMSUSPENDED)
			r = hv_resume(host, o->id);
		else if (st == HV_STATE_SHUTOFF || st == HV_STATE_CRASHED)
			r = hv_start(host, o->id);
		else if (st == HV_STATE_NONE)
			r = ep_errorf(EIO, "the domain of %s is missing on host %s", o->id, host);
		break;
	case WANT_OFF:
		if (st == HV_STATE_PAUSED || st == HV_STATE_CRASHED || st == HV_STATE_PMSUSPENDED) {
			r = hv_destroy(host, o->id);
		} else if (st == HV_STATE_RUNNING || st == HV_STATE_BLOCKED || st == HV_STATE_SHUTDOWN) {
			shutdown_ms = g_key_file_get_integer(epfs_config, "hypervisor", "shutdown_timeout", NULL);
			shutdown_ms = (shutdown_ms > 0 ? shutdown_ms : 10) * 1000;
			r = hv_shutdown_domain(host, o->id);
			/* a guest that ignores the request (or is too young to listen) is switched off */
			if (r < 0 || !wait_off(host, o->id, shutdown_ms)) {
				events_post(&kind_instances, o->id, "shutdown timed out: destroying");
				r = hv_destroy(host, o->id);
			}
		}
		break;
	case WANT_DESTROY:
		if (st != HV_STATE_SHUTOFF && st != HV_STATE_NONE)
			r = hv_destroy(host, o->id);
		break;
	case WANT_PAUSE:
		if (st == HV_STATE_RUNNING || st == HV_STATE_BLOCKED)
			r = hv_suspend(host, o->id);
		else if (st != HV_STATE_PAUSED)
			r = ep_errorf(EINVAL, "state: %s is %s; only a running instance can be paused", o->id, word);
		break;
	case WANT_REBOOT:
		if (st == HV_STATE_RUNNING || st == HV_STATE_BLOCKED)
			r = hv_reboot(host, o->id);
		else
			r = ep_errorf(EINVAL, "state: %s is %s; only a running instance can be rebooted", o->id, word);
		break;
	}
	kind_changed(&kind_instances, o->id);
	return r;
}

/* Writing `state`: provision a draft, or act on the domain. */
static int state_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *word)
{
	enum want want = want_of(word);
	struct action *a;

	if (!instance_provisioned(o)) {
		const char *status = obj_get(o, "status");

		if (want == WANT_RUN)
			return instance_provision(ctx, o);
		if (!strcmp(status, "building"))
			return ep_errorf(EBUSY, "state: %s is being provisioned", o->id);
		if (want == WANT_OFF || want == WANT_DESTROY)
			return 0;       /* nothing runs: already what was asked */
		return ep_errorf(EINVAL, "state: %s is %s; echo running > state first", o->id, status);
	}
	a = g_new0(struct action, 1);
	a->id = g_strdup(o->id);
	a->want = want;
	return jobs_run_wait(action_job, a, action_free, operation_timeout_ms(), word);
}

/* Only a draft's image and flavour can change freely. */
static int draft_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)v;
	(void)canon;
	if (strcmp(obj_get(o, "status"), "draft") && strcmp(obj_get(o, "status"), "error"))
		return ep_errorf(EBUSY, "%s is provisioned: image, cpu and memory are set when it is a draft",
		                 o->id);
	return 0;
}

/* ln -s ../../templates/<t> template: the draft takes the template's image (or
 * snapshot base), cpu and memory; rm forgets the template and its base. */
static int template_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	if (!*canon)
		return db_run(ctx->db, "UPDATE instance SET template_id = NULL, base_instance_id = NULL, "
		                       "base_snapshot_id = NULL WHERE id = ?", NULL, DB_PARAMS(o->id));
	return template_apply_to(ctx->db, canon, o->id);
}

/* A new image replaces the base snapshot a template gave. */
static int image_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	return db_run(ctx->db, "UPDATE instance SET image_id = ?, base_instance_id = NULL, base_snapshot_id = NULL "
	                       "WHERE id = ?", NULL, DB_PARAMS(*canon ? canon : NULL, o->id));
}

static int render_domain_xml(struct ep_obj *o, GString *out)
{
	g_autofree char *xml = NULL;
	const char *host = obj_get(o, "host_id");
	int r;

	if (!instance_provisioned(o))
		return 0;
	if ((r = host_prepare(host)) < 0 || (r = hv_xml(host, o->id, &xml)) < 0)
		return r == -ENOENT ? 0 : r;
	g_string_append(out, xml);
	if (out->len && out->str[out->len - 1] == '\n')
		g_string_truncate(out, out->len - 1);   /* the file's newline is added after */
	return 0;
}

static char *console_path(const char *id)
{
	g_autofree char *dir = g_key_file_get_string(epfs_config, "hypervisor", "console_dir", NULL);

	return g_strdup_printf("%s/%s.log", dir ? dir : "/var/lib/epfs/console", id);
}

/* The serial console log, as QEMU writes it on this host. */
static int render_console(struct ep_obj *o, GString *out)
{
	g_autofree char *path = console_path(o->id);
	g_autofree char *text = NULL;
	gsize len = 0;

	if (g_file_get_contents(path, &text, &len, NULL)) {
		g_string_append_len(out, text, len);
		/* the file's own newline; render adds one */
		if (out->len && out->str[out->len - 1] == '\n')
			g_string_truncate(out, out->len - 1);
	}
	return 0;
}

static const char *const status_words[] = { "draft", "building", "created", "error", "deleting", NULL };

static const struct ep_attr instance_attrs[] = {
	{ .name = "state", .type = AT_ENUM, .flags = ATTR_LIVE | ATTR_ACTION, .choices = state_words,
	  .render = render_state, .apply = state_apply },
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "cpu", .column = "cpu", .type = AT_INT, .min = 1, .max = 1024, .validate = draft_validate },
	{ .name = "memory", .column = "memory", .type = AT_SIZE, .min = 16 << 20, .validate = draft_validate },
	{ .name = "image", .column = "image_id", .type = AT_LINK, .link_kind = "images", .validate = draft_validate,
	  .apply = image_apply },
	{ .name = "template", .column = "template_id", .type = AT_LINK, .link_kind = "templates",
	  .validate = draft_validate, .apply = template_apply },
	{ .name = "host", .column = "host_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "hosts" },
	{ .name = "ip", .column = "ip", .type = AT_LINE, .flags = ATTR_RO },
	{ .name = "describe", .column = "describe", .type = AT_TEXT },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "status", .column = "status", .type = AT_ENUM, .flags = ATTR_RO, .choices = status_words },
	{ .name = "progress", .column = "progress", .type = AT_INT, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "events", .type = AT_EVENTS },
	{ .name = "domain.xml", .type = AT_TEXT, .flags = ATTR_RO | ATTR_LIVE | ATTR_NOINFO,
	  .render = render_domain_xml },
	{ .name = "console.log", .type = AT_TEXT, .flags = ATTR_RO | ATTR_LIVE | ATTR_NOINFO,
	  .render = render_console },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static const struct ep_relation instance_relations[] = {
	{ .name = "volumes", .target = "volumes", .column = "instance_id",
	  .link = instance_attach_volume, .unlink = instance_detach_volume },
	{ .name = "nics", .target = "nics", .column = "instance_id",
	  .link = instance_attach_nic, .unlink = instance_detach_nic },
	{ NULL },
};

/* The storage snapshots of an instance's root disk (homework bases), all of
 * them: also one a crash left without its record. */
static int root_snaps_remove(const char *root)
{
	g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func((GDestroyNotify)storage_snap_free);
	const char *pool = epfs_storage->volume_pool;
	int r = storage_snap_list(epfs_storage, pool, root, snaps);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (guint i = 0; i < snaps->len; i++) {
		struct storage_snap *sn = snaps->pdata[i];

		if (sn->protected_ && (r = storage_snap_unprotect(epfs_storage, pool, root, sn->name)) < 0)
			return r;
		if ((r = storage_snap_remove(epfs_storage, pool, root, sn->name)) < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

/* rmdir: the domain, its root disk and snapshots go; volumes and NICs are let go. */
static int remove_steps(struct db_conn *db, const char *id, const char *host)
{
	g_autofree char *root = instance_root_disk(id);
	int r;

	if (host && *host) {
		if ((r = host_prepare(host)) < 0)
			return r;
		if ((r = hv_undefine(host, id)) < 0 && r != -ENOENT)
			return r;
	}
	if ((r = root_snaps_remove(root)) < 0)
		return r;
	if ((r = storage_remove(epfs_storage, epfs_storage->volume_pool, root)) < 0 && r != -ENOENT)
		return r;
	if ((r = db_run(db, "UPDATE volume SET instance_id = NULL, device = NULL, status = 'available' "
	                    "WHERE instance_id = ?", NULL, DB_PARAMS(id))) < 0 ||
	    (r = db_run(db, "UPDATE network_interface SET instance_id = NULL, status = 'available' "
	                    "WHERE instance_id = ?", NULL, DB_PARAMS(id))) < 0 ||
	    (r = db_run(db, "DELETE FROM snapshot WHERE instance_id = ?", NULL, DB_PARAMS(id))) < 0 ||
	    (r = db_run(db, "DELETE FROM instance WHERE id = ?", NULL, DB_PARAMS(id))) < 0)
		return r;
	return 0;
}

static int instance_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autofree char *jid = NULL;
	enum hv_state st;
	const char *word;
	int r;

	g_autoptr(db_result) based = NULL;

	if (!strcmp(obj_get(o, "status"), "building"))
		return ep_errorf(EBUSY, "%s is being provisioned", o->id);
	/* its snapshots are homework bases: their clones need them */
	if ((r = db_run(ctx->db, "SELECT CONCAT('templates/', id) AS who FROM template WHERE snapshot_instance_id = ? "
	                         "UNION ALL SELECT CONCAT('instances/', id) FROM instance WHERE base_instance_id = ? "
	                         "LIMIT 1", &based, DB_PARAMS(o->id, o->id))) < 0)
		return r;
	if (based->rows->len)
		return ep_errorf(EBUSY, "%s: a snapshot of it is the base of %s", o->id, db_get(based, 0, "who"));
	if ((r = live_state(o, &st, &word)) < 0)
		return r;
	if (st != HV_STATE_NONE && st != HV_STATE_SHUTOFF && st != HV_STATE_CRASHED)
		return ep_errorf(EBUSY, "%s is %s: echo destroyed > state first", o->id, word);
	if ((r = journal_begin("remove", &kind_instances, o->id, NULL, &jid)) < 0)
		return r;
	r = remove_steps(ctx->db, o->id, obj_get(o, "host_id"));
	/* the journal row goes once the transaction is in; until then recovery redoes it */
	if (r == 0 && (r = db_commit(ctx->db)) == 0) {
		db_begin(ctx->db);
		journal_end(jid);
	}
	return r;
}

int instance_set_state(struct ep_ctx *ctx, const char *id, const char *word)
{
	struct ep_ctx sys = { .admin = true };
	g_autoptr(ep_obj) o = NULL;
	bool known = false;
	int r;

	for (guint i = 0; state_words[i]; i++)
		known |= !strcmp(state_words[i], word);
	if (!known)
		return ep_errorf(EINVAL, "state: '%s' is not a state or verb of an instance", word);
	if ((r = kind_load(&kind_instances, id, &o)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "instances/%s does not exist", id) : r;
	r = state_apply(ctx ? ctx : &sys, o, word);
	kind_changed(&kind_instances, id);
	return r;
}

int instance_delete(struct ep_ctx *ctx, const char *id)
{
	struct ep_ctx sys = { .admin = true };
	g_autoptr(ep_obj) o = NULL;
	int r;

	(void)ctx;
	if ((r = kind_load(&kind_instances, id, &o)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "instances/%s does not exist", id) : r;
	if (instance_provisioned(o) && (r = instance_set_state(&sys, id, "destroyed")) < 0)
		return r;
	/* the record as it is now, not as the cache had it before the destroy */
	kind_changed(&kind_instances, id);
	g_clear_pointer(&o, obj_unref);
	if ((r = kind_load(&kind_instances, id, &o)) < 0)
		return r == -ENOENT ? 0 : r;
	return kind_remove(&sys, o);
}

int instance_recover(const char *op, const char *key, const char *step, const char *data)
{
	(void)step;
	(void)data;
	if (!strcmp(op, "provision"))
		return instance_unprovision(key, "draft", "provisioning was interrupted by a restart and rolled back");
	if (!strcmp(op, "remove")) {
		g_autoptr(db_conn) c = NULL;
		g_autoptr(db_result) r = NULL;
		int ret;

		if ((ret = db_acquire(&c)) < 0)
			return ret;
		if ((ret = db_run(c, "SELECT host_id FROM instance WHERE id = ?", &r, DB_PARAMS(key))) < 0)
			return ret;
		return remove_steps(c, key, r->rows->len ? db_get(r, 0, "host_id") : NULL);
	}
	return 0;
}

/* Admins and teachers see every instance; everyone sees, read-only, the
 * instances they own (a student's experiment environments and service), so
 * that instance@ links lead somewhere and console.log can be followed. */
static bool instance_visible(struct ep_ctx *ctx, struct ep_obj *o)
{
	if (!o || ctx->teacher)
		return true;
	return ctx->user[0] && !g_strcmp0(obj_get(o, "owner_id"), ctx->user);
}

bool instance_teacher_owns(struct ep_ctx *ctx, const char *id)
{
	g_autoptr(ep_obj) o = NULL;

	if (!ctx->teacher || !ctx->user[0] || !id || kind_load(&kind_instances, id, &o) < 0)
		return false;
	return !g_strcmp0(obj_get(o, "owner_id"), ctx->user);
}

/* Admins change every instance; teachers, who prepare homework machines
 * (seed 000), make instances and change the ones they own; everyone else
 * reads, at most, their own. */
static bool instance_may_write(struct ep_ctx *ctx, struct ep_obj *o)
{
	if (ctx->admin)
		return true;
	if (!ctx->teacher || !ctx->user[0])
		return false;
	return !o || !g_strcmp0(obj_get(o, "owner_id"), ctx->user);
}

/* mkdir: a draft; a teacher's belongs to her. */
static int instance_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	(void)parent_key;
	return db_run(ctx->db, "INSERT INTO instance (id, owner_id) VALUES (?, ?)", NULL,
	              DB_PARAMS(id, !ctx->admin && ctx->user[0] ? ctx->user : NULL));
}

/* ls -l shows whose it is: a teacher's or student's own, else root's. */
static uid_t instance_owner(struct ep_obj *o)
{
	return user_uid(obj_get(o, "owner_id"));
}

const struct ep_kind kind_instances = {
	.name = "instances",
	.table = "instance",
	.attrs = instance_attrs,
	.relations = instance_relations,
	.remove = instance_remove,
	.recover = instance_recover,
	.visible = instance_visible,
	.create = instance_create,
	.may_write = instance_may_write,
	.owner = instance_owner,
};
