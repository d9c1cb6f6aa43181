/* hosts.c: hosts/<id>/ — hypervisor hosts, each a libvirt URI. */
#include "compute.h"
#include "db.h"
#include "error.h"

#include <errno.h>
#include <string.h>

int host_prepare(const char *host)
{
	g_autoptr(ep_obj) h = NULL;
	const char *uri;
	int r;

	if ((r = kind_load(&kind_hosts, host, &h)) < 0)
		return r == -ENOENT ? ep_errorf(ENOENT, "host %s does not exist", host) : r;
	uri = obj_get(h, "uri");
	if (!uri || !*uri)
		return ep_errorf(EINVAL, "host %s has no uri yet", host);
	return hv_host_set(host, uri);
}

/* Memory of the instances placed on each host, by host id. */
static int allocated_memory(GHashTable *by_host)
{
	g_autoptr(db_result) r = NULL;
	int ret = db_query("SELECT host_id, SUM(memory) AS mem FROM instance WHERE host_id IS NOT NULL "
	                   "GROUP BY host_id", &r, DB_NOPARAMS);

	if (ret < 0)
		return ret;
	for (guint i = 0; i < r->rows->len; i++)
		g_hash_table_insert(by_host, g_strdup(db_get(r, i, "host_id")),
		                    GSIZE_TO_POINTER(g_ascii_strtoull(db_get(r, i, "mem"), NULL, 10)));
	return 0;
}

int host_place(uint64_t memory, char **host)
{
	g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GString) why = g_string_new(NULL);
	uint64_t best_free = 0;
	int r;

	*host = NULL;
	if ((r = kind_list(&kind_hosts, NULL, hosts)) < 0 || (r = allocated_memory(used)) < 0)
		return r;
	for (guint i = 0; i < hosts->len; i++) {
		struct ep_obj *h = hosts->pdata[i];
		struct hv_host_info info = { 0 };
		uint64_t taken, free_mem;

		if (host_prepare(h->id) < 0 || hv_host_info(h->id, &info) < 0) {
			g_string_append_printf(why, "; %s: %s", h->id, ep_error_message());
			continue;
		}
		/* free is what the host has and epfs has not promised to its instances yet */
		taken = GPOINTER_TO_SIZE(g_hash_table_lookup(used, h->id));
		free_mem = info.memory > taken ? info.memory - taken : 0;
		hv_host_info_clear(&info);
		if (free_mem >= memory && free_mem > best_free) {
			best_free = free_mem;
			g_free(*host);
			*host = g_strdup(h->id);
		} else if (free_mem < memory) {
			g_string_append_printf(why, "; %s: %" G_GUINT64_FORMAT " bytes free", h->id, free_mem);
		}
	}
	if (!*host)
		return ep_errorf(ENOSPC, "no host has %" G_GUINT64_FORMAT " bytes of memory free%s",
		                 memory, hosts->len ? why->str : " (no hosts: mkdir hosts/<id> and write its uri)");
	return 0;
}

static int uri_validate(struct ep_ctx *ctx, struct ep_obj *o, const char *v, char **canon)
{
	(void)ctx;
	(void)o;
	(void)canon;
	if (!*v || !strstr(v, ":/"))
		return ep_errorf(EINVAL, "uri: '%s' is not a libvirt URI (like qemu+ssh://host/system)", v);
	return 0;
}

static int uri_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon)
{
	int r;

	if (obj_get(o, "uri") && *obj_get(o, "uri")) {
		g_autoptr(db_result) res = NULL;
		if ((r = db_run(ctx->db, "SELECT id FROM instance WHERE host_id = ? LIMIT 1", &res,
		                DB_PARAMS(o->id))) < 0)
			return r;
		if (res->rows->len)
			return ep_errorf(EBUSY, "uri: instances run on %s (e.g. %s); move them first", o->id,
			                 db_get(res, 0, "id"));
	}
	if ((r = obj_set(ctx, o, "uri", canon)) < 0)
		return r;
	return hv_host_set(o->id, canon);
}

/* Live facts; 1 (and nothing) when the host has no uri yet. */
static int host_info(struct ep_obj *o, struct hv_host_info *info)
{
	int r;

	if (!obj_get(o, "uri") || !*obj_get(o, "uri"))
		return 1;
	r = host_prepare(o->id);
	return r < 0 ? r : hv_host_info(o->id, info);
}

static int render_cpus(struct ep_obj *o, GString *out)
{
	struct hv_host_info info = { 0 };
	int r = host_info(o, &info);

	if (r == 0)
		g_string_append_printf(out, "%u", info.cpus);
	hv_host_info_clear(&info);
	return MIN(r, 0);
}

static int render_memory(struct ep_obj *o, GString *out)
{
	struct hv_host_info info = { 0 };
	int r = host_info(o, &info);

	if (r == 0)
		g_string_append_printf(out, "%" G_GUINT64_FORMAT, info.memory);
	hv_host_info_clear(&info);
	return MIN(r, 0);
}

static int render_free_memory(struct ep_obj *o, GString *out)
{
	struct hv_host_info info = { 0 };
	int r = host_info(o, &info);

	if (r == 0)
		g_string_append_printf(out, "%" G_GUINT64_FORMAT, info.free_memory);
	hv_host_info_clear(&info);
	return MIN(r, 0);
}

static int render_state(struct ep_obj *o, GString *out)
{
	g_autofree char *state = NULL;

	if (!obj_get(o, "uri") || !*obj_get(o, "uri")) {
		g_string_append(out, "down: no uri");
		return 0;
	}
	if (host_prepare(o->id) < 0) {
		g_string_append_printf(out, "down: %s", ep_error_message());
		return 0;
	}
	state = hv_host_state(o->id);
	g_string_append(out, state);
	return 0;
}

static int render_instances(struct ep_obj *o, GString *out)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)obj_unref);
	int r = kind_list(&kind_instances, NULL, all);

	if (r < 0)
		return r;
	for (guint i = 0; i < all->len; i++) {
		struct ep_obj *inst = all->pdata[i];
		if (!g_strcmp0(obj_get(inst, "host_id"), o->id))
			g_string_append_printf(out, "%s%s", out->len ? "\n" : "", inst->id);
	}
	return 0;
}

static const struct ep_attr host_attrs[] = {
	{ .name = "uri", .column = "uri", .type = AT_LINE, .validate = uri_validate, .apply = uri_apply },
	{ .name = "cpus", .type = AT_INT, .flags = ATTR_RO | ATTR_LIVE, .render = render_cpus },
	{ .name = "memory", .type = AT_SIZE, .flags = ATTR_RO | ATTR_LIVE, .render = render_memory },
	{ .name = "free_memory", .type = AT_SIZE, .flags = ATTR_RO | ATTR_LIVE, .render = render_free_memory },
	{ .name = "state", .type = AT_LINE, .flags = ATTR_RO | ATTR_LIVE, .render = render_state },
	{ .name = "instances", .type = AT_LINE, .flags = ATTR_RO, .render = render_instances },
	{ .name = "create_time", .column = "create_time", .type = AT_TIME, .flags = ATTR_RO },
	{ .name = "error", .type = AT_ERROR },
	{ .name = "info.json", .type = AT_INFO },
	{ NULL },
};

static int host_remove(struct ep_ctx *ctx, struct ep_obj *o)
{
	g_autoptr(db_result) r = NULL;
	int ret;

	if ((ret = db_run(ctx->db, "SELECT id FROM instance WHERE host_id = ? LIMIT 1", &r, DB_PARAMS(o->id))) < 0)
		return ret;
	if (r->rows->len)
		return ep_errorf(EBUSY, "instances are placed on host %s (e.g. %s)", o->id, db_get(r, 0, "id"));
	if ((ret = db_run(ctx->db, "DELETE FROM host WHERE id = ?", NULL, DB_PARAMS(o->id))) < 0)
		return ret;
	hv_host_remove(o->id);
	return 0;
}

const struct ep_kind kind_hosts = {
	.name = "hosts",
	.table = "host",
	.attrs = host_attrs,
	.remove = host_remove,
};
