/* nics.c: nics/<id>/ — network interfaces with a unique MAC address. */
#include "compute.h"
#include "db.h"
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const nic_states[] = { "available", "attaching", "in-use", "detaching", NULL };

static bool nic_attached(struct ep_obj *o)
{
	const char *inst = obj_get(o, "instance_id");

	return (inst && *inst) || strcmp(obj_get(o, "status"), "available");
}

/* A MAC is six hex pairs, unicast; written in lower case. */
static int mac_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	unsigned b[6];
	char end;

	(void)ctx;
	if (nic_attached(o))
		return ep_errorf(EBUSY, "mac: nic %s is attached; detach it first", o->id);
	if (strlen(v) != 17 || sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
	                              &end) != 6)
		return ep_errorf(EINVAL, "mac: '%s' is not a MAC address (like 52:54:00:12:34:56)", v);
	if (b[0] & 1)
		return ep_errorf(EINVAL, "mac: '%s' is a multicast address", v);
	*canon = g_ascii_strdown(v, -1);
	return 0;
}

static int detached_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)canon;
	if (nic_attached(o))
		return ep_errorf(EBUSY, "nic %s is attached; detach it first", o->id);
	if (!*v)
		return ep_errorf(EINVAL, "network: name a libvirt network, or bridge:<name>");
	return 0;
}

static const struct ep_attr nic_attrs[] = {
	{ .name = "name", .column = "name", .type = AT_LINE },
	{ .name = "mac", .column = "mac", .type = AT_LINE, .validate = mac_validate },
	{ .name = "ip", .column = "ip", .type = AT_LINE },
	{ .name = "network", .column = "network", .type = AT_LINE, .validate = detached_validate },
	{ .name = "status", .column = "status", .type = AT_ENUM, .flags = ATTR_RO, .choices = nic_states },
	{ .name = "instance", .column = "instance_id", .type = AT_LINK, .flags = ATTR_RO, .link_kind = "instances" },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

/* mkdir: a NIC with a fresh locally administered MAC (QEMU's 52:54:00 prefix). */
static int nic_create(struct ep_ctx *ctx, const char *parent_key, const char *id)
{
	int r = -EEXIST;

	(void)parent_key;
	for (int tries = 0; tries < 16 && r == -EEXIST; tries++) {
		guint32 rnd = g_random_int();
		g_autofree char *mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", (rnd >> 16) & 0xff,
		                                       (rnd >> 8) & 0xff, rnd & 0xff);
		g_autoptr(db_result) dup = NULL;

		/* the id is checked first, so EEXIST below can only be the MAC */
		if ((r = db_run(ctx->db, "SELECT 1 FROM network_interface WHERE id = ?", &dup, DB_PARAMS(id))) < 0)
			return r;
		if (dup->rows->len)
			return ep_errorf(EEXIST, "nics/%s already exists", id);
		r = db_run(ctx->db, "INSERT INTO network_interface (id, mac) VALUES (?, ?)", NULL, DB_PARAMS(id, mac));
	}
	return r;
}

static int nic_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	if (nic_attached(o))
		return ep_errorf(EBUSY, "nic %s is attached to instance %s; rm the link first", o->id,
		                 obj_get(o, "instance_id") ? obj_get(o, "instance_id") : "?");
	return db_run(ctx->db, "DELETE FROM network_interface WHERE id = ?", NULL, DB_PARAMS(o->id));
}

const struct ep_kind kind_nics = {
	.name = "nics",
	.table = "network_interface",
	.attrs = nic_attrs,
	.create = nic_create,
	.remove = nic_remove,
};
