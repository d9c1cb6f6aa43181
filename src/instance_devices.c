/* instance_devices.c: volumes and NICs attached by symlink
 * (instances/<i>/volumes/<v>@, instances/<i>/nics/<n>@). */
#include "compute.h"
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "events.h"
#include "storage.h"

#include <errno.h>
#include <string.h>

/* The first free disk name after vda among the instance's volumes. */
static int free_device(struct ep_obj *inst, char **dev)
{
	g_autoptr(GPtrArray) vols = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r = relation_list(&kind_instances.relations[0], inst, vols);

	if (r < 0)
		return r;
	for (char c = 'b'; c <= 'z'; c++) {
		g_autofree char *name = g_strdup_printf("vd%c", c);
		bool used = false;

		for (guint i = 0; i < vols->len; i++)
			used |= !g_strcmp0(obj_get(vols->pdata[i], "device"), name);
		if (!used) {
			*dev = g_steal_pointer(&name);
			return 0;
		}
	}
	return ep_errorf(ENOSPC, "instance %s has no free disk slot (vdb to vdz are used)", inst->id);
}

static char *volume_disk_xml(const char *vol, const char *dev, int *r)
{
	g_autoptr(GString) src = g_string_new(NULL);
	struct hv_disk d = { 0 };

	if ((*r = storage_disk_source(epfs_storage, epfs_storage->volume_pool, vol, src, &d.type)) < 0)
		return NULL;
	d.source_xml = src->str;
	d.format = storage_format(epfs_storage, epfs_storage->volume_pool, vol);
	d.target = dev;
	d.serial = vol;
	return hv_disk_xml(&d);
}

static int set_volume(const char *vol, const char *status, const char *inst, const char *dev)
{
	int r = db_query("UPDATE volume SET status = ?, instance_id = ?, device = ? WHERE id = ?", NULL,
	                 DB_PARAMS(status, inst, dev, vol));

	kind_changed(&kind_volumes, vol);
	return r;
}

/* Devices change with the domain's definition: not while it is being made. */
static int not_building(struct ep_obj *inst)
{
	if (!strcmp(obj_get(inst, "status"), "building"))
		return ep_errorf(EBUSY, "instance %s is being provisioned; try again when it is done", inst->id);
	return 0;
}

int instance_attach_volume(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *vol)
{
	g_autofree char *dev = NULL, *xml = NULL;
	const char *host = obj_get(inst, "host_id");
	int r;

	(void)ctx;
	if ((r = not_building(inst)) < 0)
		return r;
	if (strcmp(obj_get(vol, "status"), "available"))
		return ep_errorf(strcmp(obj_get(vol, "status"), "draft") ? EBUSY : EINVAL,
		                 "volume %s is %s, not available%s", vol->id, obj_get(vol, "status"),
		                 strcmp(obj_get(vol, "status"), "draft") ? "" : ": write its size first");
	if ((r = free_device(inst, &dev)) < 0)
		return r;
	if (!instance_provisioned(inst)) {
		/* a draft takes it when it is provisioned */
		r = set_volume(vol->id, "in-use", inst->id, dev);
		events_post(&kind_instances, inst->id, "volume %s attached as %s", vol->id, dev);
		return r;
	}
	if ((r = set_volume(vol->id, "attaching", inst->id, dev)) < 0)
		return r;
	if (!(xml = volume_disk_xml(vol->id, dev, &r)) || (r = host_prepare(host)) < 0 ||
	    (r = hv_attach(host, inst->id, xml)) < 0) {
		g_autofree char *msg = g_strdup(ep_error_message());
		set_volume(vol->id, "available", NULL, NULL);
		return ep_errorf(-r, "attach %s: %s", vol->id, msg);
	}
	r = set_volume(vol->id, "in-use", inst->id, dev);
	events_post(&kind_instances, inst->id, "volume %s attached as %s", vol->id, dev);
	return r;
}

int instance_detach_volume(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *vol)
{
	g_autofree char *xml = NULL;
	const char *host = obj_get(inst, "host_id");
	const char *dev = obj_get(vol, "device");
	int r;

	(void)ctx;
	if (instance_provisioned(inst)) {
		if ((r = set_volume(vol->id, "detaching", inst->id, dev)) < 0)
			return r;
		if (!(xml = volume_disk_xml(vol->id, dev ? dev : "vdb", &r)) || (r = host_prepare(host)) < 0 ||
		    ((r = hv_detach(host, inst->id, xml)) < 0 && r != -ENOENT)) {
			g_autofree char *msg = g_strdup(ep_error_message());
			set_volume(vol->id, "in-use", inst->id, dev);
			return ep_errorf(-r, "detach %s: %s", vol->id, msg);
		}
	}
	r = set_volume(vol->id, "available", NULL, NULL);
	events_post(&kind_instances, inst->id, "volume %s detached", vol->id);
	return r;
}

static char *nic_xml(struct ep_obj *nic)
{
	struct hv_nic n = { 0 };
	const char *net = obj_get(nic, "network");

	n.mac = obj_get(nic, "mac");
	n.bridge = g_str_has_prefix(net, "bridge:");
	n.network = n.bridge ? net + strlen("bridge:") : net;
	return hv_nic_xml(&n);
}

static int set_nic(const char *nic, const char *status, const char *inst)
{
	int r = db_query("UPDATE network_interface SET status = ?, instance_id = ? WHERE id = ?", NULL,
	                 DB_PARAMS(status, inst, nic));

	kind_changed(&kind_nics, nic);
	return r;
}

int instance_attach_nic(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *nic)
{
	g_autofree char *xml = nic_xml(nic);
	const char *host = obj_get(inst, "host_id");
	int r;

	(void)ctx;
	if ((r = not_building(inst)) < 0)
		return r;
	if (strcmp(obj_get(nic, "status"), "available"))
		return ep_errorf(EBUSY, "nic %s is %s, not available", nic->id, obj_get(nic, "status"));
	if (!instance_provisioned(inst)) {
		r = set_nic(nic->id, "in-use", inst->id);
		events_post(&kind_instances, inst->id, "nic %s attached", nic->id);
		return r;
	}
	if ((r = set_nic(nic->id, "attaching", inst->id)) < 0)
		return r;
	if ((r = host_prepare(host)) < 0 || (r = hv_attach(host, inst->id, xml)) < 0) {
		g_autofree char *msg = g_strdup(ep_error_message());
		set_nic(nic->id, "available", NULL);
		return ep_errorf(-r, "attach %s: %s", nic->id, msg);
	}
	r = set_nic(nic->id, "in-use", inst->id);
	events_post(&kind_instances, inst->id, "nic %s attached", nic->id);
	return r;
}

int instance_detach_nic(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *nic)
{
	g_autofree char *xml = nic_xml(nic);
	const char *host = obj_get(inst, "host_id");
	int r;

	(void)ctx;
	if (instance_provisioned(inst)) {
		if ((r = set_nic(nic->id, "detaching", inst->id)) < 0)
			return r;
		/* a device the domain no longer has is detached already */
		if ((r = host_prepare(host)) < 0 || ((r = hv_detach(host, inst->id, xml)) < 0 && r != -ENOENT)) {
			g_autofree char *msg = g_strdup(ep_error_message());
			set_nic(nic->id, "in-use", inst->id);
			return ep_errorf(-r, "detach %s: %s", nic->id, msg);
		}
	}
	r = set_nic(nic->id, "available", NULL);
	events_post(&kind_instances, inst->id, "nic %s detached", nic->id);
	return r;
}
