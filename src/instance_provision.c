/* instance_provision.c: making a draft into a running domain — clone the
 * image to a root disk, place, define, start — as a journaled job, and
 * undoing it after a failure or a crash. */
#include "compute.h"
#include "db.h"
#include "epfs.h"
#include "errlog.h"
#include "error.h"
#include "events.h"
#include "jobs.h"
#include "storage.h"

#include <errno.h>
#include <string.h>

/* The protected snapshot of an image that root disks are cloned from; named
 * after the image's size, so a grown image gets a new one. */
#define BASE_SNAP_PREFIX "epfs-base-"

static int set_progress(const char *id, int percent)
{
	g_autofree char *p = g_strdup_printf("%d", percent);
	int r = db_query("UPDATE instance SET progress = ? WHERE id = ?", NULL, DB_PARAMS(p, id));
	int delay = g_key_file_get_integer(epfs_config, "debug", "step_delay_ms", NULL);

	kind_changed(&kind_instances, id);
	events_post(&kind_instances, id, "progress %d", percent);
	/* tests slow the steps down to kill the daemon in the middle of each */
	if (delay > 0)
		g_usleep((gulong)delay * 1000);
	return r;
}

/* The image's base snapshot, made and protected on first use. */
static int ensure_base(const char *image, const char *snap)
{
	const char *pool = epfs_storage->image_pool;
	int r = storage_snap_create(epfs_storage, pool, image, snap);

	if (r < 0 && r != -EEXIST)
		return r;
	r = storage_snap_protect(epfs_storage, pool, image, snap);
	/* protecting twice is refused, and harmless */
	return r == -EBUSY ? 0 : r;
}

/* A homework base: the teacher's root disk snapshot, protected on first use. */
static int ensure_snapshot_base(const char *inst, const char *snap)
{
	g_autofree char *root = instance_root_disk(inst);
	int r = storage_snap_protect(epfs_storage, epfs_storage->volume_pool, root, snap);

	if (r == -ENOENT)
		return ep_errorf(ENOENT, "the root disk of %s has no snapshot %s to start from", inst, snap);
	return r == -EBUSY ? 0 : r;
}

/* The base snapshot of an instance made from a template based on one: EINVAL
 * if it went stale (the flavour of its image changed) or is gone. */
static int base_snapshot_check(struct ep_obj *inst)
{
	const char *binst = obj_get(inst, "base_instance_id"), *bsnap = obj_get(inst, "base_snapshot_id");
	g_autofree char *key = NULL;
	g_autoptr(ep_obj) snap = NULL;
	int r;

	if (!binst || !bsnap)
		return 0;
	key = g_strconcat(binst, "/", bsnap, NULL);
	if ((r = kind_load(&kind_snapshots, key, &snap)) < 0)
		return r == -ENOENT ? ep_errorf(EINVAL, "state: the base snapshot %s of %s is gone", key, inst->id) : r;
	if (!strcmp(obj_get(snap, "stale"), "1"))
		return ep_errorf(EINVAL, "state: the base snapshot %s of %s is stale: the flavour of image %s "
		                 "changed since it was taken", key, inst->id,
		                 obj_get(snap, "image_id") ? obj_get(snap, "image_id") : "?");
	return 0;
}

/* Add the disk pool/name as target to disks (the source XML is kept in strings). */
static int add_disk(GArray *disks, GPtrArray *strings, const char *name, const char *target,
                    const char *serial)
{
	GString *src = g_string_new(NULL);
	struct hv_disk d = { 0 };
	int r = storage_disk_source(epfs_storage, epfs_storage->volume_pool, name, src, &d.type);

	if (r < 0) {
		g_string_free(src, TRUE);
		return r;
	}
	d.source_xml = g_string_free(src, FALSE);
	g_ptr_array_add(strings, (char *)d.source_xml);
	d.format = storage_format(epfs_storage, epfs_storage->volume_pool, name);
	d.target = target;
	d.serial = serial;
	g_array_append_val(disks, d);
	return 0;
}

int instance_domain_xml(struct ep_obj *inst, char **xml)
{
	g_autoptr(GPtrArray) vols = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	g_autoptr(GPtrArray) nics = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GArray) disks = g_array_new(FALSE, TRUE, sizeof(struct hv_disk));
	g_autoptr(GArray) ifaces = g_array_new(FALSE, TRUE, sizeof(struct hv_nic));
	g_autoptr(ep_obj) image = NULL;
	g_autofree char *root = instance_root_disk(inst->id);
	g_autofree char *console_dir = g_key_file_get_string(epfs_config, "hypervisor", "console_dir", NULL);
	struct hv_domain_spec spec = { 0 };
	int r;

	if ((r = kind_load(&kind_images, obj_get(inst, "image_id"), &image)) < 0)
		return r;
	/* the root disk, then the volumes and NICs related to the instance */
	if ((r = add_disk(disks, strings, root, "vda", "root")) < 0 ||
	    (r = relation_list(&kind_instances.relations[0], inst, vols)) < 0)
		return r;
	for (guint i = 0; i < vols->len; i++) {
		struct ep_obj *v = vols->pdata[i];
		if ((r = add_disk(disks, strings, v->id, obj_get(v, "device"), v->id)) < 0)
			return r;
	}
	if ((r = relation_list(&kind_instances.relations[1], inst, nics)) < 0)
		return r;
	for (guint i = 0; i < nics->len; i++) {
		struct hv_nic n = { 0 };
		const char *net = obj_get(nics->pdata[i], "network");

		n.mac = obj_get(nics->pdata[i], "mac");
		n.bridge = g_str_has_prefix(net, "bridge:");
		n.network = n.bridge ? net + strlen("bridge:") : net;
		g_array_append_val(ifaces, n);
	}
	spec.name = inst->id;
	spec.vcpus = g_ascii_strtoull(obj_get(inst, "cpu"), NULL, 10);
	spec.memory = g_ascii_strtoull(obj_get(inst, "memory"), NULL, 10);
	if (*obj_get(image, "kernel")) {
		spec.kernel = obj_get(image, "kernel");
		spec.initrd = *obj_get(image, "initrd") ? obj_get(image, "initrd") : NULL;
		spec.cmdline = *obj_get(image, "cmdline") ? obj_get(image, "cmdline") : NULL;
	}
	g_autofree char *console = g_strdup_printf("%s/%s.log", console_dir ? console_dir : "/var/lib/epfs/console",
	                                           inst->id);
	spec.console_log = console;
	spec.disks = (const struct hv_disk *)disks->data;
	spec.ndisks = disks->len;
	spec.nics = (const struct hv_nic *)ifaces->data;
	spec.nnics = ifaces->len;
	return hv_domain_xml(obj_get(inst, "host_id"), &spec, xml);
}

int instance_unprovision(const char *id, const char *status, const char *why)
{
	g_autoptr(db_result) res = NULL;
	g_autofree char *root = instance_root_disk(id);
	const char *host;
	int r;

	if ((r = db_query("SELECT host_id FROM instance WHERE id = ?", &res, DB_PARAMS(id))) < 0)
		return r;
	host = res->rows->len ? db_get(res, 0, "host_id") : NULL;
	if (host && *host) {
		if ((r = host_prepare(host)) < 0)
			return r;
		if ((r = hv_undefine(host, id)) < 0 && r != -ENOENT)
			return r;
	}
	if ((r = storage_remove(epfs_storage, epfs_storage->volume_pool, root)) < 0 && r != -ENOENT)
		return r;
	if ((r = db_query("UPDATE instance SET status = ?, host_id = NULL, progress = 0 WHERE id = ?", NULL,
	                  DB_PARAMS(status, id))) < 0)
		return r;
	if (why)
		errlog_append(&kind_instances, id, "provision", EIO, why);
	events_post(&kind_instances, id, "state %s", status);
	kind_changed(&kind_instances, id);
	return 0;
}

/* Choose a host and record the choice, one placement at a time across every
 * mount (a named lock), so two instances never take the same free memory. */
static int place(const char *id, uint64_t memory, char **host)
{
	g_autoptr(db_conn) c = NULL;
	g_autoptr(db_result) got = NULL;
	int r;

	if ((r = db_acquire(&c)) < 0)
		return r;
	if ((r = db_run(c, "SELECT GET_LOCK('epfs-placement', 10) AS got", &got, DB_NOPARAMS)) < 0)
		return r;
	if (g_strcmp0(db_get(got, 0, "got"), "1"))
		return ep_errorf(ETIMEDOUT, "placement: another placement took too long");
	r = host_place(memory, host);
	if (r == 0)
		r = db_run(c, "UPDATE instance SET host_id = ? WHERE id = ?", NULL, DB_PARAMS(*host, id));
	db_run(c, "DO RELEASE_LOCK('epfs-placement')", NULL, DB_NOPARAMS);
	return r;
}

/* The steps after the record says `building`; the journal row exists. */
static int provision_steps(const char *id, const char *jid)
{
	g_autoptr(ep_obj) inst = NULL;
	g_autofree char *root = instance_root_disk(id);
	g_autofree char *host = NULL, *xml = NULL;
	const char *image, *binst, *bsnap;
	int r;

	if ((r = kind_load(&kind_instances, id, &inst)) < 0)
		return r;
	image = obj_get(inst, "image_id");
	binst = obj_get(inst, "base_instance_id");
	bsnap = obj_get(inst, "base_snapshot_id");
	set_progress(id, 10);
	if (binst && bsnap) {
		/* homework: the teacher's disk as it was at the snapshot */
		g_autofree char *from = instance_root_disk(binst);
		if ((r = base_snapshot_check(inst)) < 0 || (r = ensure_snapshot_base(binst, bsnap)) < 0)
			return r;
		journal_step(jid, "clone");
		if ((r = storage_clone(epfs_storage, epfs_storage->volume_pool, from, bsnap,
		                       epfs_storage->volume_pool, root)) < 0)
			return r;
	} else {
		g_autoptr(ep_obj) img = NULL;
		if ((r = kind_load(&kind_images, image, &img)) < 0)
			return r;
		g_autofree char *base = g_strconcat(BASE_SNAP_PREFIX, obj_get(img, "size"), NULL);
		if ((r = ensure_base(image, base)) < 0)
			return r;
		journal_step(jid, "clone");
		if ((r = storage_clone(epfs_storage, epfs_storage->image_pool, image, base,
		                       epfs_storage->volume_pool, root)) < 0)
			return r;
	}
	set_progress(id, 40);
	journal_step(jid, "place");
	if ((r = place(id, g_ascii_strtoull(obj_get(inst, "memory"), NULL, 10), &host)) < 0)
		return r;
	kind_changed(&kind_instances, id);
	g_clear_pointer(&inst, obj_unref);
	if ((r = kind_load(&kind_instances, id, &inst)) < 0)
		return r;
	set_progress(id, 60);
	journal_step(jid, "define");
	if ((r = host_prepare(host)) < 0 || (r = instance_domain_xml(inst, &xml)) < 0 ||
	    (r = hv_define(host, xml)) < 0)
		return r;
	set_progress(id, 80);
	journal_step(jid, "start");
	if ((r = hv_start(host, id)) < 0)
		return r;
	if ((r = db_query("UPDATE instance SET status = 'created', progress = 100 WHERE id = ?", NULL,
	                  DB_PARAMS(id))) < 0)
		return r;
	return 0;
}

struct provision {
	char *id;
	char *jid;      /* its journal row, written before the record said building */
};

static void provision_free(gpointer p)
{
	struct provision *pv = p;

	g_free(pv->id);
	g_free(pv->jid);
	g_free(pv);
}

static int provision_job(void *data)
{
	struct provision *pv = data;
	const char *id = pv->id, *jid = pv->jid;
	int r;

	r = provision_steps(id, jid);
	if (r < 0) {
		g_autofree char *msg = g_strdup(ep_error_message());
		/* what cannot be undone now is undone by rmdir (or the next start-up's recovery) */
		if (instance_unprovision(id, "error", NULL) < 0) {
			db_query("UPDATE instance SET status = 'error' WHERE id = ?", NULL, DB_PARAMS(id));
			kind_changed(&kind_instances, id);
		}
		errlog_append(&kind_instances, id, "provision", -r, msg);
		ep_errorf(-r, "%s", msg);
	} else {
		events_post(&kind_instances, id, "state running");
		kind_changed(&kind_instances, id);
	}
	journal_end(jid);
	return r;
}

int instance_provision(struct ep_ctx *ctx, struct ep_obj *inst)
{
	g_autoptr(db_result) res = NULL;
	g_autoptr(ep_obj) image = NULL;
	const char *img = obj_get(inst, "image_id");
	struct provision *pv;
	int r, timeout;

	(void)ctx;
	if (!img || !*img)
		return ep_errorf(EINVAL, "state: %s has no image: ln -s ../../images/<id> instances/%s/image",
		                 inst->id, inst->id);
	if ((r = kind_load(&kind_images, img, &image)) < 0)
		return r;
	if (strcmp(obj_get(image, "status"), "available"))
		return ep_errorf(EINVAL, "state: image %s is %s, not available", img, obj_get(image, "status"));
	if ((r = base_snapshot_check(inst)) < 0)
		return r;
	/* journaled before the record says building: a crash in between is rolled
	 * back at start-up, never left building */
	pv = g_new0(struct provision, 1);
	pv->id = g_strdup(inst->id);
	if ((r = journal_begin("provision", &kind_instances, inst->id, NULL, &pv->jid)) < 0) {
		provision_free(pv);
		return r;
	}
	/* one provisioning at a time: the record moves from draft (or error) to building once */
	if ((r = db_query("UPDATE instance SET status = 'building', progress = 0 WHERE id = ? "
	                  "AND status IN ('draft', 'error')", &res, DB_PARAMS(inst->id))) < 0 || res->affected != 1) {
		journal_end(pv->jid);
		provision_free(pv);
		return r < 0 ? r : ep_errorf(EBUSY, "state: %s is already being provisioned", inst->id);
	}
	kind_changed(&kind_instances, inst->id);
	events_post(&kind_instances, inst->id, "state building");
	timeout = g_key_file_get_integer(epfs_config, "hypervisor", "operation_timeout", NULL);
	return jobs_run_wait(provision_job, pv, provision_free, (timeout > 0 ? timeout : 60) * 1000, "provisioning");
}

void compute_event(const char *host, const char *domain, const char *event, void *data)
{
	(void)data;
	(void)host;
	/* the event may concern a domain epfs does not know: then nobody listens */
	events_post(&kind_instances, domain, "%s", event);
	kind_changed(&kind_instances, domain);
}
