/* storage_rbd.c: the `rbd` storage backend, images as RBD images in a Ceph cluster.
 *
 * Every call goes through librados and librbd: one cluster handle shared by
 * all threads, an I/O context and an image handle per call.  The handle is
 * made by a worker thread, started at open and again whenever a call finds
 * none, so a cluster that is down does not stop the daemon: every call then
 * fails within [storage] timeout, and works again once it is back.
 * See docs/storage.md.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "storage.h"

#include <errno.h>
#include <inttypes.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>

#include "error.h"
#include "value.h"

#define RBD_DEFAULT_CONF "/etc/ceph/ceph.conf"
#define RBD_DEFAULT_CLIENT "admin"
/* copies are written under this prefix, which is no valid id, so list hides them */
#define RBD_TMP_PREFIX ".tmp."

/* A cluster handle; the last of its users shuts it down. */
struct rbd_conn {
	rados_t cluster;
	gint refs;
};

struct rbd_backend {
	char *conf;                 /* path of ceph.conf */
	char *client_id;            /* the Ceph user is client.<client_id> */
	char *keyring;              /* NULL: the one ceph.conf names */
	char *secret_usage;         /* the libvirt secret holding the cephx key */
	bool cephx;                 /* clients authenticate: disk sources need <auth> */
	int timeout_s;
	const char *pools[2];       /* image_pool and volume_pool of the storage */

	GMutex mutex;               /* guards everything below */
	GCond cond;                 /* an attempt or a worker ended */
	struct rbd_conn *conn;      /* the connected cluster, or NULL */
	bool connecting;            /* a worker is connecting */
	int workers;                /* worker threads still running */
	unsigned attempts;          /* connection attempts finished */
	int last_errno;             /* outcome of the last failed attempt */
	char *last_error;
	bool failing;               /* the last attempt failed (it was logged) */
	bool cleaned;               /* temps of interrupted copies were removed */
	bool closing;
};

/* What one call holds; released by call_end() whatever happened. */
struct rbd_call {
	struct rbd_backend *rb;
	struct rbd_conn *conn;
	rados_ioctx_t io;           /* the pool of the image */
	rados_ioctx_t dst_io;       /* the destination pool of clone and copy */
	rbd_image_t image;
	bool lost;                  /* the cluster stopped answering: reconnect next time */
};

typedef struct rbd_call RbdCall;

static struct rbd_backend *backend(struct storage *st)
{
	return st->priv;
}

static void conn_unref(struct rbd_conn *conn)
{
	if (conn && g_atomic_int_dec_and_test(&conn->refs)) {
		rados_shutdown(conn->cluster);
		g_free(conn);
	}
}

/* Read ceph.conf into cluster and apply the [storage] settings. */
static int conf_load(struct rbd_backend *rb, rados_t cluster)
{
	g_autofree char *timeout = g_strdup_printf("%d", rb->timeout_s);
	static const char *const timeouts[] = {
		"client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout",
	};
	int r = rados_conf_read_file(cluster, rb->conf);

	if (r < 0)
		return ep_errorf(-r == ENOENT ? ENOENT : EINVAL, "cannot read %s: %s", rb->conf,
		                 g_strerror(-r));
	if (rb->keyring && (r = rados_conf_set(cluster, "keyring", rb->keyring)) < 0)
		return ep_errorf(EINVAL, "keyring %s: %s", rb->keyring, g_strerror(-r));
	/* without these a call waits for an absent cluster forever */
	for (size_t i = 0; i < G_N_ELEMENTS(timeouts); i++) {
		r = rados_conf_set(cluster, timeouts[i], timeout);
		if (r < 0)
			return ep_errorf(EINVAL, "cannot set %s: %s", timeouts[i], g_strerror(-r));
	}
	return 0;
}

/* A new cluster handle for client.<id>, connected. */
static int conn_new(struct rbd_backend *rb, struct rbd_conn **out)
{
	g_autofree char *name = g_strdup_printf("client.%s", rb->client_id);
	rados_t cluster;
	int r = rados_create2(&cluster, "ceph", name, 0);

	if (r < 0)
		return ep_errorf(-r == ENOMEM ? ENOMEM : EINVAL, "cannot create a Ceph handle for %s: %s",
		                 name, g_strerror(-r));
	r = conf_load(rb, cluster);
	if (r == 0) {
		r = rados_connect(cluster);
		if (r == -ETIMEDOUT)
			r = ep_errorf(ETIMEDOUT, "cannot reach the Ceph cluster of %s within %d s", rb->conf,
			              rb->timeout_s);
		else if (r == -EACCES || r == -EPERM)
			r = ep_errorf(EACCES, "the Ceph cluster refused %s: %s", name, g_strerror(-r));
		else if (r < 0)
			r = ep_errorf(EIO, "cannot connect to the Ceph cluster of %s as %s: %s", rb->conf,
			              name, g_strerror(-r));
	}
	/* a handle whose connect failed cannot connect again (EINPROGRESS) */
	if (r < 0) {
		rados_shutdown(cluster);
		return r;
	}
	*out = g_new0(struct rbd_conn, 1);
	(*out)->cluster = cluster;
	(*out)->refs = 1;
	return 0;
}

static gpointer conn_worker(gpointer data);

/* Start a connection attempt in a worker thread; the mutex is held. */
static void start_attempt(struct rbd_backend *rb)
{
	rb->connecting = true;
	rb->workers++;
	g_thread_unref(g_thread_new("rbd-connect", conn_worker, rb));
}

/* The connected cluster, connecting if needed; the caller owns a reference.
 * One attempt runs at a time, in a worker: rados_connect retries up to ten
 * times client_mount_timeout, so a call waits for it only up to timeout, and
 * calls that arrive meanwhile share the attempt's outcome. */
static int conn_get(struct rbd_backend *rb, struct rbd_conn **out)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)rb->timeout_s * G_USEC_PER_SEC;
	unsigned seen;
	int r;

	g_mutex_lock(&rb->mutex);
	seen = rb->attempts;
	if (!rb->conn && !rb->connecting)
		start_attempt(rb);
	while (!rb->conn && rb->attempts == seen)
		if (!g_cond_wait_until(&rb->cond, &rb->mutex, deadline))
			break;
	if (rb->conn) {
		g_atomic_int_inc(&rb->conn->refs);
		*out = rb->conn;
		r = 0;
	} else if (rb->attempts != seen) {
		r = ep_errorf(rb->last_errno, "%s", rb->last_error);
	} else {
		r = ep_errorf(ETIMEDOUT, "cannot reach the Ceph cluster of %s within %d s", rb->conf,
		              rb->timeout_s);
	}
	g_mutex_unlock(&rb->mutex);
	return r;
}

/* Forget conn as the shared handle, so the next call makes a new one: it may
 * be blocklisted, or the cluster may answer at another address now. */
static void conn_drop(struct rbd_backend *rb, struct rbd_conn *conn)
{
	bool dropped = false;

	g_mutex_lock(&rb->mutex);
	if (rb->conn == conn) {
		rb->conn = NULL;
		dropped = true;
	}
	g_mutex_unlock(&rb->mutex);
	if (dropped)
		conn_unref(conn);
}

static void call_end(RbdCall *c)
{
	if (c->image)
		rbd_close(c->image);
	if (c->io)
		rados_ioctx_destroy(c->io);
	if (c->dst_io)
		rados_ioctx_destroy(c->dst_io);
	if (c->conn && c->lost)
		conn_drop(c->rb, c->conn);
	conn_unref(c->conn);
	memset(c, 0, sizeof(*c));
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RbdCall, call_end)

/* Record the failure r (a negative errno from librados or librbd) of what
 * and return the errno epfs reports: the usual ones as they are, EAGAIN when
 * the cluster went away, EIO for anything a file system caller cannot use. */
static int call_fail(RbdCall *c, int r, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static int call_fail(RbdCall *c, int r, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list ap;
	int err = -r;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	switch (err) {
	case ETIMEDOUT:
		c->lost = true;
		return ep_errorf(ETIMEDOUT, "%s: the Ceph cluster did not answer within %d s", what,
		                 c->rb->timeout_s);
	case ESHUTDOWN:         /* librados's EBLOCKLISTED */
	case ENOTCONN:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
		c->lost = true;
		return ep_errorf(EAGAIN, "%s: lost the Ceph cluster: %s", what, g_strerror(err));
	case ENOENT:
	case EEXIST:
	case EBUSY:
	case EINVAL:
	case ENOSPC:
	case EDQUOT:
	case EPERM:
	case EACCES:
	case EROFS:
	case ENOMEM:
	case EFBIG:
	case EAGAIN:
	case ENOTSUP:
		return ep_errorf(err, "%s: %s", what, g_strerror(err));
	default:
		return ep_errorf(EIO, "%s: %s (%s)", what, g_strerror(err), ep_errno_name(err));
	}
}

/* Connect if needed and open pool into *io. */
static int call_pool(RbdCall *c, const char *pool, rados_ioctx_t *io)
{
	int r;

	if (!c->conn && (r = conn_get(c->rb, &c->conn)) < 0)
		return r;
	r = rados_ioctx_create(c->conn->cluster, pool, io);
	if (r == 0)
		return 0;
	*io = NULL;
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "pool %s does not exist", pool);
	return call_fail(c, r, "open pool %s", pool);
}

/* Open pool/image, at snap unless it is NULL, into c->io and c->image. */
static int call_image(RbdCall *c, const char *pool, const char *image, const char *snap,
                      bool read_only)
{
	rbd_image_t head;
	int r = call_pool(c, pool, &c->io);

	if (r < 0)
		return r;
	r = read_only ? rbd_open_read_only(c->io, image, &c->image, snap) :
	                rbd_open(c->io, image, &c->image, snap);
	if (r == 0)
		return 0;
	c->image = NULL;
	if (r == -ENOENT && snap && rbd_open_read_only(c->io, image, &head, NULL) == 0) {
		rbd_close(head);
		return ep_errorf(ENOENT, "snapshot %s/%s@%s does not exist", pool, image, snap);
	}
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "image %s/%s does not exist", pool, image);
	return call_fail(c, r, "open image %s/%s", pool, image);
}

/* "a, b, c" from an array of strings, for messages. */
static char *join(GPtrArray *names)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < names->len; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", (char *)names->pdata[i]);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static gint name_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every image name in the pool of io, including temps, unsorted. */
static int image_names(RbdCall *c, rados_ioctx_t io, const char *pool, GPtrArray *out)
{
	g_autofree rbd_image_spec_t *specs = NULL;
	size_t n = 64;
	int r;

	for (;;) {
		specs = g_renew(rbd_image_spec_t, specs, n);
		r = rbd_list2(io, specs, &n);
		if (r != -ERANGE)
			break;
	}
	if (r < 0)
		return call_fail(c, r, "list pool %s", pool);
	for (size_t i = 0; i < n; i++)
		g_ptr_array_add(out, g_strdup(specs[i].name));
	rbd_image_spec_list_cleanup(specs, n);
	return 0;
}

/* Snapshots of c->image, oldest first: rbd_snap_list's ids grow with time. */
static int snap_infos(RbdCall *c, const char *what, rbd_snap_info_t **out, int *count)
{
	g_autofree rbd_snap_info_t *snaps = NULL;
	int n = 16;
	int r;

	for (;;) {
		snaps = g_renew(rbd_snap_info_t, snaps, n);
		r = rbd_snap_list(c->image, snaps, &n);
		if (r != -ERANGE)
			break;
	}
	if (r < 0)
		return call_fail(c, r, "list snapshots of %s", what);
	for (int i = 1; i < r; i++)
		for (int j = i; j > 0 && snaps[j - 1].id > snaps[j].id; j--) {
			rbd_snap_info_t t = snaps[j];

			snaps[j] = snaps[j - 1];
			snaps[j - 1] = t;
		}
	*count = r;
	*out = g_steal_pointer(&snaps);
	return 0;
}

/* "pool/image" of the clones of the snapshot image is open at, sorted; at
 * the head, of all its snapshots. */
static int child_names(RbdCall *c, rbd_image_t image, const char *what, GPtrArray *out)
{
	g_autofree rbd_linked_image_spec_t *specs = NULL;
	g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
	size_t n = 16;
	int r;

	for (;;) {
		specs = g_renew(rbd_linked_image_spec_t, specs, n);
		r = rbd_list_children3(image, specs, &n);
		if (r != -ERANGE)
			break;
	}
	if (r < 0)
		return call_fail(c, r, "list clones of %s", what);
	/* a clone in the trash is on its way out; epfs never puts one there */
	for (size_t i = 0; i < n; i++)
		if (!specs[i].trash)
			g_ptr_array_add(found, g_strdup_printf("%s/%s", specs[i].pool_name,
			                                       specs[i].image_name));
	rbd_linked_image_spec_list_cleanup(specs, n);
	g_ptr_array_sort(found, name_cmp);
	for (guint i = 0; i < found->len; i++)
		g_ptr_array_add(out, g_steal_pointer(&found->pdata[i]));
	return 0;
}

/* The options every image epfs makes gets: format 2 with layering, so it can be
 * cloned; nothing that needs the exclusive lock, so a running guest and epfs
 * may both change it. */
static rbd_image_options_t image_options(void)
{
	rbd_image_options_t opts;

	rbd_image_options_create(&opts);
	rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FORMAT, 2);
	rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURE_LAYERING);
	return opts;
}

/* Remove temps that a crash or a lost cluster left from copies.  One that a
 * copy still writes has a watcher, and rbd_remove refuses it (EBUSY). */
static int remove_temps(RbdCall *c, const char *pool)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	rados_ioctx_t io = NULL;
	int r = call_pool(c, pool, &io);

	if (r < 0)
		return r;
	r = image_names(c, io, pool, names);
	for (guint i = 0; r == 0 && i < names->len; i++) {
		const char *name = names->pdata[i];

		if (g_str_has_prefix(name, RBD_TMP_PREFIX) && rbd_remove(io, name) == 0)
			syslog(LOG_NOTICE, "storage rbd: removed %s/%s, left by an interrupted copy", pool,
			       name);
	}
	rados_ioctx_destroy(io);
	return r;
}

/* One connection attempt; after the first success, removes the temps. */
static gpointer conn_worker(gpointer data)
{
	struct rbd_backend *rb = data;
	struct rbd_conn *conn = NULL;
	bool clean = false;
	int r = conn_new(rb, &conn);

	g_mutex_lock(&rb->mutex);
	rb->connecting = false;
	rb->attempts++;
	if (r == 0) {
		rb->conn = conn;
		if (rb->failing)
			syslog(LOG_NOTICE, "storage rbd: reached the Ceph cluster of %s", rb->conf);
		rb->failing = false;
		clean = !rb->cleaned && !rb->closing;
		rb->cleaned = true;
		if (clean)
			g_atomic_int_inc(&conn->refs);
	} else {
		rb->last_errno = -r;
		g_free(rb->last_error);
		rb->last_error = g_strdup(ep_error_message());
		if (!rb->failing)
			syslog(LOG_WARNING, "storage rbd: %s; storage calls fail until it answers",
			       rb->last_error);
		rb->failing = true;
	}
	g_cond_broadcast(&rb->cond);
	g_mutex_unlock(&rb->mutex);

	if (clean) {
		g_auto(RbdCall) c = { .rb = rb, .conn = conn };

		for (size_t i = 0; i < G_N_ELEMENTS(rb->pools); i++)
			remove_temps(&c, rb->pools[i]);
	}

	g_mutex_lock(&rb->mutex);
	rb->workers--;
	g_cond_broadcast(&rb->cond);
	g_mutex_unlock(&rb->mutex);
	return NULL;
}

/* [storage] key, or NULL when missing or empty. */
static char *config_get(GKeyFile *config, const char *key)
{
	char *s = g_key_file_get_string(config, "storage", key, NULL);

	if (s && !*s)
		g_clear_pointer(&s, g_free);
	return s;
}

static void rbd_close_backend(struct storage *st)
{
	struct rbd_backend *rb = backend(st);

	if (!rb)
		return;
	/* a worker still in rados_connect may take a while: it uses rb */
	g_mutex_lock(&rb->mutex);
	rb->closing = true;
	while (rb->workers > 0)
		g_cond_wait(&rb->cond, &rb->mutex);
	g_mutex_unlock(&rb->mutex);
	conn_unref(rb->conn);
	g_mutex_clear(&rb->mutex);
	g_cond_clear(&rb->cond);
	g_free(rb->conf);
	g_free(rb->client_id);
	g_free(rb->keyring);
	g_free(rb->secret_usage);
	g_free(rb->last_error);
	g_free(rb);
	st->priv = NULL;
}

/* Whether clients authenticate with cephx: [storage] cephx, else ceph.conf's
 * auth client required (which allows cephx unless it says otherwise). */
static int config_cephx(struct rbd_backend *rb, GKeyFile *config, rados_t probe)
{
	g_autofree char *cephx = config_get(config, "cephx");
	char auth[256];
	int r;

	if (cephx) {
		if (value_parse_bool(cephx, &rb->cephx) < 0)
			return ep_errorf(EINVAL, "[storage] cephx must be true or false, not '%s'", cephx);
		return 0;
	}
	r = rados_conf_get(probe, "auth_client_required", auth, sizeof(auth));
	rb->cephx = r < 0 || strstr(auth, "cephx") != NULL;
	return 0;
}

static int rbd_open_backend(struct storage *st, GKeyFile *config)
{
	struct rbd_backend *rb = g_new0(struct rbd_backend, 1);
	g_autofree char *name = NULL;
	rados_t probe;
	int r;

	g_mutex_init(&rb->mutex);
	g_cond_init(&rb->cond);
	st->priv = rb;
	rb->conf = config_get(config, "ceph_conf");
	if (!rb->conf)
		rb->conf = g_strdup(RBD_DEFAULT_CONF);
	rb->client_id = config_get(config, "client_id");
	if (!rb->client_id)
		rb->client_id = g_strdup(RBD_DEFAULT_CLIENT);
	rb->keyring = config_get(config, "keyring");
	rb->secret_usage = config_get(config, "secret_usage");
	if (!rb->secret_usage)
		rb->secret_usage = g_strdup_printf("client.%s secret", rb->client_id);
	rb->timeout_s = st->timeout_ms / 1000;
	rb->pools[0] = st->image_pool;
	rb->pools[1] = st->volume_pool;

	/* Ceph names users type.id; the id is used as is in libvirt's XML too */
	if (!value_is_line(rb->client_id) || strpbrk(rb->client_id, " '\"<>&") ||
	    g_str_has_prefix(rb->client_id, "client.")) {
		r = ep_errorf(EINVAL, "[storage] client_id '%s' is not a Ceph user id (without 'client.')",
		              rb->client_id);
		goto fail;
	}
	/* a wrong ceph.conf is a configuration error; a cluster that is down is not */
	name = g_strdup_printf("client.%s", rb->client_id);
	r = rados_create2(&probe, "ceph", name, 0);
	if (r < 0) {
		r = ep_errorf(EINVAL, "cannot create a Ceph handle for %s: %s", name, g_strerror(-r));
		goto fail;
	}
	r = conf_load(rb, probe);
	if (r == 0)
		r = config_cephx(rb, config, probe);
	rados_shutdown(probe);
	if (r < 0)
		goto fail;
	/* connect in the background: a cluster that is down must not stop the daemon */
	g_mutex_lock(&rb->mutex);
	start_attempt(rb);
	g_mutex_unlock(&rb->mutex);
	return 0;

fail:
	rbd_close_backend(st);
	return r;
}

/* A round trip to the monitor and to the OSD of each pool's directory. */
static int rbd_ping(struct storage *st)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	const char *pools[] = { st->image_pool, st->volume_pool };

	for (size_t i = 0; i < G_N_ELEMENTS(pools); i++) {
		rados_ioctx_t io = NULL;
		uint64_t size;
		time_t mtime;
		int r = call_pool(&c, pools[i], &io);

		if (r < 0)
			return r;
		r = rados_stat(io, "rbd_directory", &size, &mtime);
		rados_ioctx_destroy(io);
		if (r < 0 && r != -ENOENT)
			return call_fail(&c, r, "ping pool %s", pools[i]);
	}
	return 0;
}

static int rbd_create_image(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	rbd_image_options_t opts;
	int r = call_pool(&c, pool, &c.io);

	if (r < 0)
		return r;
	opts = image_options();
	r = rbd_create4(c.io, image, size, opts);
	rbd_image_options_destroy(opts);
	if (r == -EEXIST)
		return ep_errorf(EEXIST, "image %s/%s already exists", pool, image);
	if (r < 0)
		return call_fail(&c, r, "create %s/%s", pool, image);
	return 0;
}

static int add_extent(uint64_t offset, size_t len, int exists, void *data)
{
	(void)offset;
	if (exists)
		*(uint64_t *)data += len;
	return 0;
}

/* Bytes allocated, when the object map makes that cheap (fast-diff), else 0. */
static uint64_t image_used(rbd_image_t image, uint64_t size)
{
	uint64_t features = 0, flags = 0, used = 0;

	if (rbd_get_features(image, &features) < 0 || !(features & RBD_FEATURE_FAST_DIFF) ||
	    rbd_get_flags(image, &flags) < 0 || (flags & RBD_FLAG_FAST_DIFF_INVALID))
		return 0;
	if (rbd_diff_iterate2(image, NULL, 0, size, 0, 1, add_extent, &used) < 0)
		return 0;
	return MIN(used, size);
}

static int rbd_stat_image(struct storage *st, const char *pool, const char *image,
                          struct storage_stat *out)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t parent_snap;
	rbd_image_info_t info;
	int r = call_image(&c, pool, image, NULL, true);

	if (r < 0)
		return r;
	r = rbd_stat(c.image, &info, sizeof(info));
	if (r < 0)
		return call_fail(&c, r, "stat %s/%s", pool, image);
	r = rbd_get_parent(c.image, &parent, &parent_snap);
	if (r < 0 && r != -ENOENT)
		return call_fail(&c, r, "parent of %s/%s", pool, image);
	if (r == 0) {
		out->parent_pool = g_strdup(parent.pool_name);
		out->parent_image = g_strdup(parent.image_name);
		out->parent_snap = g_strdup(parent_snap.name);
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&parent_snap);
	}
	out->size = info.size;
	out->used = image_used(c.image, info.size);
	return 0;
}

static int rbd_resize_image(struct storage *st, const char *pool, const char *image, uint64_t size)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	int r = call_image(&c, pool, image, NULL, false);

	if (r < 0)
		return r;
	r = rbd_resize(c.image, size);
	if (r < 0)
		return call_fail(&c, r, "resize %s/%s", pool, image);
	return 0;
}

static int rbd_list_images(struct storage *st, const char *pool, GPtrArray *out)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	int r = call_pool(&c, pool, &c.io);

	if (r == 0)
		r = image_names(&c, c.io, pool, names);
	if (r < 0)
		return r;
	g_ptr_array_sort(names, name_cmp);
	/* temps of copies, and images epfs could not name, are not listed */
	for (guint i = 0; i < names->len; i++)
		if (value_id_valid(names->pdata[i]))
			g_ptr_array_add(out, g_steal_pointer(&names->pdata[i]));
	return 0;
}

static int rbd_remove_image(struct storage *st, const char *pool, const char *image)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) clones = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *what = g_strdup_printf("%s/%s", pool, image);
	g_autofree rbd_snap_info_t *infos = NULL;
	g_autofree char *snap_list = NULL;
	g_autofree char *clone_list = NULL;
	int n = 0;
	int r = call_image(&c, pool, image, NULL, true);

	if (r == 0)
		r = snap_infos(&c, what, &infos, &n);
	if (r < 0)
		return r;
	for (int i = 0; i < n; i++)
		g_ptr_array_add(snaps, g_strdup(infos[i].name));
	if (n > 0)
		rbd_snap_list_end(infos);
	if (snaps->len > 0) {
		/* at the head, librbd lists the clones of every snapshot */
		child_names(&c, c.image, what, clones);
		snap_list = join(snaps);
		clone_list = join(clones);
		return ep_errorf(EBUSY, "image %s has snapshots: %s%s%s", what, snap_list,
		                 clones->len ? "; and clones: " : "", clone_list);
	}
	rbd_close(c.image);
	c.image = NULL;
	r = rbd_remove(c.io, image);
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "image %s does not exist", what);
	if (r == -ENOTEMPTY)
		return ep_errorf(EBUSY, "image %s has snapshots", what);
	if (r == -EBUSY)
		return ep_errorf(EBUSY, "image %s is in use (open by a client such as a running instance)",
		                 what);
	if (r < 0)
		return call_fail(&c, r, "remove %s", what);
	return 0;
}

/* How a snapshot call's refusals read: librbd's -errno, ours, and why. */
struct snap_refusal {
	int rbd_err, err;
	const char *why;        /* after "snapshot <pool>/<image>@<snap> " */
};

/* One librbd call on a snapshot of an open image, its refusals said in words. */
static int snap_call(struct storage *st, const char *pool, const char *image, const char *snap,
                     int (*op)(rbd_image_t, const char *), const char *opname,
                     const struct snap_refusal *refusals)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	int r = call_image(&c, pool, image, NULL, false);

	if (r < 0)
		return r;
	r = op(c.image, snap);
	for (const struct snap_refusal *f = refusals; r < 0 && f->why; f++)
		if (r == f->rbd_err)
			return ep_errorf(f->err, "snapshot %s/%s@%s %s", pool, image, snap, f->why);
	if (r < 0)
		return call_fail(&c, r, "%s %s/%s@%s", opname, pool, image, snap);
	return 0;
}

static int rbd_snap_create_image(struct storage *st, const char *pool, const char *image,
                                 const char *snap)
{
	static const struct snap_refusal refusals[] = {
		{ -EEXIST, EEXIST, "already exists" },
		{ 0 },
	};

	return snap_call(st, pool, image, snap, rbd_snap_create, "snapshot", refusals);
}

static int rbd_snap_protect_image(struct storage *st, const char *pool, const char *image,
                                  const char *snap)
{
	static const struct snap_refusal refusals[] = {
		{ -ENOENT, ENOENT, "does not exist" },
		{ -EBUSY, EBUSY, "is already protected" },
		{ 0 },
	};

	return snap_call(st, pool, image, snap, rbd_snap_protect, "protect", refusals);
}

static int rbd_snap_unprotect_image(struct storage *st, const char *pool, const char *image,
                                    const char *snap)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autoptr(GPtrArray) clones = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *what = g_strdup_printf("%s/%s@%s", pool, image, snap);
	g_autofree char *names = NULL;
	rbd_image_t at_snap;
	int r = call_image(&c, pool, image, NULL, false);

	if (r < 0)
		return r;
	r = rbd_snap_unprotect(c.image, snap);
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "snapshot %s does not exist", what);
	if (r == -EINVAL)
		return ep_errorf(EINVAL, "snapshot %s is not protected", what);
	if (r == -EBUSY) {
		if (rbd_open_read_only(c.io, image, &at_snap, snap) == 0) {
			child_names(&c, at_snap, what, clones);
			rbd_close(at_snap);
		}
		names = join(clones);
		return ep_errorf(EBUSY, "snapshot %s has clones: %s", what,
		                 clones->len ? names : "(being made)");
	}
	if (r < 0)
		return call_fail(&c, r, "unprotect %s", what);
	return 0;
}

static int rbd_snap_remove_image(struct storage *st, const char *pool, const char *image,
                                 const char *snap)
{
	static const struct snap_refusal refusals[] = {
		{ -ENOENT, ENOENT, "does not exist" },
		{ -EBUSY, EBUSY, "is protected" },
		{ 0 },
	};

	return snap_call(st, pool, image, snap, rbd_snap_remove, "remove snapshot", refusals);
}

static int rbd_snap_list_image(struct storage *st, const char *pool, const char *image,
                               GPtrArray *out)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func((GDestroyNotify)storage_snap_free);
	g_autofree char *what = g_strdup_printf("%s/%s", pool, image);
	g_autofree rbd_snap_info_t *infos = NULL;
	int n = 0;
	int r = call_image(&c, pool, image, NULL, true);

	if (r == 0)
		r = snap_infos(&c, what, &infos, &n);
	if (r < 0)
		return r;
	for (int i = 0; r == 0 && i < n; i++) {
		struct storage_snap *s;
		int protected_ = 0;

		r = rbd_snap_is_protected(c.image, infos[i].name, &protected_);
		/* removed since the list was read */
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0) {
			r = call_fail(&c, r, "protection of %s@%s", what, infos[i].name);
			break;
		}
		s = g_new0(struct storage_snap, 1);
		s->name = g_strdup(infos[i].name);
		s->size = infos[i].size;
		s->protected_ = protected_ != 0;
		g_ptr_array_add(snaps, s);
	}
	if (n > 0)
		rbd_snap_list_end(infos);
	if (r < 0)
		return r;
	for (guint i = 0; i < snaps->len; i++)
		g_ptr_array_add(out, g_steal_pointer(&snaps->pdata[i]));
	return 0;
}

static int rbd_clone_image(struct storage *st, const char *pool, const char *image, const char *snap,
                           const char *dst_pool, const char *dst_image)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autofree char *what = g_strdup_printf("%s/%s@%s", pool, image, snap);
	rbd_image_options_t opts;
	int protected_ = 0;
	int r = call_image(&c, pool, image, NULL, true);

	if (r < 0)
		return r;
	r = rbd_snap_is_protected(c.image, snap, &protected_);
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "snapshot %s does not exist", what);
	if (r < 0)
		return call_fail(&c, r, "protection of %s", what);
	if (!protected_)
		return ep_errorf(EINVAL, "snapshot %s is not protected; protect it before cloning", what);
	r = call_pool(&c, dst_pool, &c.dst_io);
	if (r < 0)
		return r;
	opts = image_options();
	/* format 1 clones need the protection, which makes a clone racing an
	 * unprotect fail one of them, in any process */
	rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 1);
	r = rbd_clone3(c.io, image, snap, c.dst_io, dst_image, opts);
	rbd_image_options_destroy(opts);
	if (r == -EEXIST)
		return ep_errorf(EEXIST, "image %s/%s already exists", dst_pool, dst_image);
	if (r == -EINVAL)
		return ep_errorf(EINVAL, "snapshot %s is not protected; protect it before cloning", what);
	if (r == -ENOENT)
		return ep_errorf(ENOENT, "snapshot %s does not exist", what);
	if (r < 0)
		return call_fail(&c, r, "clone %s to %s/%s", what, dst_pool, dst_image);
	return 0;
}

static int rbd_children_image(struct storage *st, const char *pool, const char *image,
                              const char *snap, GPtrArray *out)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autofree char *what = g_strdup_printf("%s/%s@%s", pool, image, snap);
	int r = call_image(&c, pool, image, snap, true);

	return r < 0 ? r : child_names(&c, c.image, what, out);
}

/* What a copy reports: never backwards, never past the total. */
struct copy_progress {
	storage_progress_fn *fn;
	void *data;
	GMutex mutex;               /* librbd may report from its own threads */
	uint64_t done;
	uint64_t total;
};

static int copy_progress_cb(uint64_t offset, uint64_t total, void *data)
{
	struct copy_progress *p = data;

	g_mutex_lock(&p->mutex);
	if (offset > total)
		offset = total;
	p->total = total;
	if (offset >= p->done && p->fn) {
		p->done = offset;
		p->fn(offset, total, p->data);
	}
	g_mutex_unlock(&p->mutex);
	return 0;
}

static int rbd_copy_image(struct storage *st, const char *pool, const char *image,
                          const char *dst_pool, const char *dst_image,
                          storage_progress_fn *progress, void *data)
{
	g_auto(RbdCall) c = { .rb = backend(st) };
	g_autofree char *tmp = g_strdup_printf(RBD_TMP_PREFIX "%s.%08x", dst_image, g_random_int());
	struct copy_progress p = { .fn = progress, .data = data };
	rbd_image_options_t opts;
	rbd_image_info_t info;
	rbd_image_t existing;
	int r = call_image(&c, pool, image, NULL, true);

	if (r < 0)
		return r;
	r = rbd_stat(c.image, &info, sizeof(info));
	if (r < 0)
		return call_fail(&c, r, "stat %s/%s", pool, image);
	r = call_pool(&c, dst_pool, &c.dst_io);
	if (r < 0)
		return r;
	/* refuse before copying gigabytes; the rename checks again */
	r = rbd_open_read_only(c.dst_io, dst_image, &existing, NULL);
	if (r == 0) {
		rbd_close(existing);
		return ep_errorf(EEXIST, "image %s/%s already exists", dst_pool, dst_image);
	}
	if (r != -ENOENT)
		return call_fail(&c, r, "open image %s/%s", dst_pool, dst_image);

	g_mutex_init(&p.mutex);
	/* the copy gets a name no one lists, and its own only once complete */
	opts = image_options();
	r = rbd_copy_with_progress3(c.image, c.dst_io, tmp, opts, copy_progress_cb, &p);
	rbd_image_options_destroy(opts);
	g_mutex_clear(&p.mutex);
	if (r < 0)
		r = call_fail(&c, r, "copy %s/%s to %s/%s", pool, image, dst_pool, dst_image);
	if (r == 0) {
		r = rbd_rename(c.dst_io, tmp, dst_image);
		if (r == -EEXIST)
			r = ep_errorf(EEXIST, "image %s/%s already exists", dst_pool, dst_image);
		else if (r < 0)
			r = call_fail(&c, r, "rename %s/%s to %s", dst_pool, tmp, dst_image);
	}
	if (r < 0) {
		/* with the cluster gone, the next open removes it instead */
		if (!c.lost)
			rbd_remove(c.dst_io, tmp);
		return r;
	}
	if (progress && p.done < info.size)
		progress(info.size, info.size, data);
	return 0;
}

/* One monitor address of mon_host: "v2:10.0.0.1:3300/0", "[v1:[::1]:6789]",
 * "10.0.0.1", "mon1.example.com:6789".  kind: 2 (msgr2), 1 (legacy), 0 (either). */
struct mon_addr {
	char *host;
	char *port;                 /* NULL: librados tries both default ports */
	int kind;
};

static void mon_addr_clear(struct mon_addr *a)
{
	g_free(a->host);
	g_free(a->port);
}

static bool parse_mon_addr(const char *text, struct mon_addr *out)
{
	g_autofree char *copy = g_strstrip(g_strdup(text));
	char *s = copy;
	char *end;

	out->kind = 0;
	out->host = out->port = NULL;
	if (g_str_has_prefix(s, "v2:") || g_str_has_prefix(s, "v1:")) {
		out->kind = s[1] - '0';
		s += 3;
	} else if (g_str_has_prefix(s, "any:")) {
		s += 4;
	}
	/* the nonce after '/' names a process, not a place */
	if ((end = strchr(s, '/')))
		*end = '\0';
	if (*s == '[') {
		end = strchr(s, ']');
		if (!end)
			return false;
		out->host = g_strndup(s + 1, end - s - 1);
		if (end[1] == ':' && end[2])
			out->port = g_strdup(end + 2);
	} else if ((end = strrchr(s, ':')) && end == strchr(s, ':')) {
		out->host = g_strndup(s, end - s);
		if (end[1])
			out->port = g_strdup(end + 1);
	} else {
		out->host = g_strdup(s);        /* a name, or IPv6 without a port */
	}
	if (!out->port && out->kind)
		out->port = g_strdup(out->kind == 2 ? "3300" : "6789");
	if (!*out->host || (out->port && strspn(out->port, "0123456789") != strlen(out->port))) {
		mon_addr_clear(out);
		return false;
	}
	return true;
}

/* The monitors of a mon_host value, one address each: msgr2 where a
 * monitor has several (QEMU's librados speaks both protocols). */
static GArray *parse_mon_host(const char *value)
{
	GArray *mons = g_array_new(FALSE, TRUE, sizeof(struct mon_addr));
	const char *p = value;

	g_array_set_clear_func(mons, (GDestroyNotify)mon_addr_clear);
	while (*p) {
		g_auto(GStrv) addrs = NULL;
		g_autofree char *inside = NULL;
		struct mon_addr best = { 0 };
		const char *start;
		int depth = 0;

		p += strspn(p, " \t,;");
		if (!*p)
			break;
		start = p;
		/* "[v2:a,v1:b]" is one monitor; "[::1]:6789" is one address */
		if (g_str_has_prefix(p, "[v") || g_str_has_prefix(p, "[any:")) {
			for (; *p && !(*p == ']' && --depth == 0); p++)
				depth += *p == '[';
			inside = g_strndup(start + 1, p - start - 1);
			addrs = g_strsplit(inside, ",", -1);
			if (*p)
				p++;
		} else {
			for (; *p && (depth > 0 || !strchr(" \t,;", *p)); p++)
				depth += (*p == '[') - (*p == ']');
			addrs = g_new0(char *, 2);
			addrs[0] = g_strndup(start, p - start);
		}
		for (char **a = addrs; *a; a++) {
			struct mon_addr m;

			if (!parse_mon_addr(*a, &m))
				continue;
			/* msgr2 first, then either, then legacy */
			if (!best.host || (m.kind == 2) > (best.kind == 2) ||
			    (best.kind == 1 && m.kind == 0)) {
				mon_addr_clear(&best);
				best = m;
			} else {
				mon_addr_clear(&m);
			}
		}
		if (best.host)
			g_array_append_val(mons, best);
	}
	return mons;
}

static int rbd_disk_source(struct storage *st, const char *pool, const char *image, GString *xml,
                           const char **disk_type)
{
	struct rbd_backend *rb = backend(st);
	g_auto(RbdCall) c = { .rb = rb };
	g_autoptr(GArray) mons = NULL;
	g_autofree char *name = g_markup_printf_escaped("%s/%s", pool, image);
	char mon_host[4096];
	int r = call_image(&c, pool, image, NULL, true);

	if (r < 0)
		return r;
	r = rados_conf_get(c.conn->cluster, "mon_host", mon_host, sizeof(mon_host));
	if (r < 0)
		return call_fail(&c, r, "mon_host of %s", rb->conf);
	/* without hosts QEMU's librados reads /etc/ceph/ceph.conf itself */
	mons = parse_mon_host(mon_host);
	g_string_append_printf(xml, "<source protocol='rbd' name='%s'>", name);
	for (guint i = 0; i < mons->len; i++) {
		struct mon_addr *m = &g_array_index(mons, struct mon_addr, i);
		g_autofree char *host = g_markup_printf_escaped("%s", m->host);

		if (m->port)
			g_string_append_printf(xml, "<host name='%s' port='%s'/>", host, m->port);
		else
			g_string_append_printf(xml, "<host name='%s'/>", host);
	}
	if (rb->cephx) {
		g_autofree char *usage = g_markup_printf_escaped("%s", rb->secret_usage);

		g_string_append_printf(xml, "<auth username='%s'><secret type='ceph' usage='%s'/></auth>",
		                       rb->client_id, usage);
	}
	g_string_append(xml, "</source>");
	*disk_type = "network";
	return 0;
}

const struct storage_ops storage_rbd_ops = {
	.name = "rbd",
	.open = rbd_open_backend,
	.close = rbd_close_backend,
	.ping = rbd_ping,
	.create = rbd_create_image,
	.stat = rbd_stat_image,
	.resize = rbd_resize_image,
	.list = rbd_list_images,
	.remove = rbd_remove_image,
	.snap_create = rbd_snap_create_image,
	.snap_protect = rbd_snap_protect_image,
	.snap_unprotect = rbd_snap_unprotect_image,
	.snap_remove = rbd_snap_remove_image,
	.snap_list = rbd_snap_list_image,
	.clone = rbd_clone_image,
	.children = rbd_children_image,
	.copy = rbd_copy_image,
	.disk_source = rbd_disk_source,
};
