/* hv.c: the hypervisor service over libvirt.
 *
 * Each host has a connection, opened lazily, and a thread pool of its own:
 * every libvirt call runs as a job on that pool while the caller waits on the
 * job's condition with a deadline.  libvirt calls cannot be cancelled, so a
 * caller that gives up leaves the job to finish (or hang) alone: the job is
 * refcounted and owns copies of everything it reads and writes.  A hung host
 * fills only its own pool.  libvirt's event loop runs in one thread and turns
 * lifecycle and device events into short words for the handler.
 */
#include "hv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "error.h"

#define HV_RETRY_US (2 * G_USEC_PER_SEC)        /* a failed host is not tried again sooner */
#define HV_HOST_THREADS 8                       /* libvirt calls in flight per host */
#define HV_KEEPALIVE_INTERVAL 5                 /* seconds between keepalive probes */
#define HV_KEEPALIVE_COUNT 3                    /* unanswered probes before the link is dropped */
#define HV_DEFAULT_TIMEOUT 10.0                 /* [epfs] timeout when not set */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainSnapshot, virDomainSnapshotFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

/* The domain events registered on every connection, in hv_host.callbacks order. */
enum { CB_LIFECYCLE, CB_DEVICE_ADDED, CB_DEVICE_REMOVED, CB_COUNT };

struct hv_host {
	gatomicrefcount refs;
	char *id;                       /* immutable */
	char *uri;                      /* immutable */
	GMutex connect_lock;            /* serialises opening and closing the connection */
	GMutex lock;                    /* the fields below; never held across a libvirt call */
	GThreadPool *pool;              /* NULL once the host is retired */
	bool retired;                   /* removed: no new connection may be opened */
	virConnectPtr conn;
	int callbacks[CB_COUNT];        /* event callback ids on conn, -1 if none */
	bool close_registered;          /* on_close is registered on conn */
	bool dead;                      /* conn was closed under us: reopen on next use */
	gint64 failed_at;               /* monotonic time of the last failure, 0 while up */
	char *failure;                  /* why it failed */
};

/* What a job does on the host's connection; NULL closes the connection. */
struct hv_job;
typedef int (*hv_job_fn)(virConnectPtr conn, struct hv_job *job);

/* One libvirt call, shared by the caller and the worker thread. */
typedef struct hv_job {
	gatomicrefcount refs;
	hv_job_fn fn;
	const char *what;               /* "start", for messages (static) */
	bool idempotent;                /* safe to run again on a fresh connection */
	int op;                         /* which lifecycle operation, for job_lifecycle */
	struct hv_host *host;           /* a reference */
	char *name;                     /* the domain, or NULL */
	char *arg;                      /* snapshot name or XML */
	xmlDocPtr doc;                  /* parsed XML argument, or NULL */
	/* results, read by the caller only once done is set */
	int r;
	char *message;
	bool conn_error;
	char *text;
	GPtrArray *list;
	struct hv_host_info info;
	enum hv_state state;
	/* the handshake */
	GMutex lock;
	GCond cond;
	bool done;
	bool abandoned;                 /* the caller timed out: nobody reads the results */
} hv_job;

static struct {
	GMutex lock;                    /* hosts, timeout_us */
	GHashTable *hosts;              /* id -> struct hv_host *, NULL when not started */
	gint64 timeout_us;
	GThread *loop;
	gint quit;
	int wake_timer;
	GMutex handler_lock;            /* held while the handler runs */
	hv_event_fn handler;
	void *handler_data;
} hv;

/* ---- hosts ---- */

static struct hv_host *host_ref(struct hv_host *h)
{
	g_atomic_ref_count_inc(&h->refs);
	return h;
}

static void host_unref(void *p)
{
	struct hv_host *h = p;

	if (!h || !g_atomic_ref_count_dec(&h->refs))
		return;
	g_free(h->id);
	g_free(h->uri);
	g_free(h->failure);
	g_mutex_clear(&h->connect_lock);
	g_mutex_clear(&h->lock);
	g_free(h);
}

/* The host called id, with a reference, or NULL. */
static struct hv_host *host_lookup(const char *id)
{
	struct hv_host *h = NULL;

	g_mutex_lock(&hv.lock);
	if (hv.hosts && id)
		h = g_hash_table_lookup(hv.hosts, id);
	if (h)
		host_ref(h);
	g_mutex_unlock(&hv.lock);
	return h;
}

static bool hv_started(void)
{
	bool started;

	g_mutex_lock(&hv.lock);
	started = hv.hosts != NULL;
	g_mutex_unlock(&hv.lock);
	return started;
}

/* Remember that h failed, and why; callers fail fast for HV_RETRY_US. */
static void host_failed(struct hv_host *h, const char *why)
{
	g_mutex_lock(&h->lock);
	g_free(h->failure);
	h->failure = g_strdup(why);
	h->failed_at = g_get_monotonic_time();
	g_mutex_unlock(&h->lock);
}

/* h answered: forget its last failure. */
static void host_answered(struct hv_host *h)
{
	g_mutex_lock(&h->lock);
	g_clear_pointer(&h->failure, g_free);
	h->failed_at = 0;
	g_mutex_unlock(&h->lock);
}

/* Why h failed less than HV_RETRY_US ago (a copy), or NULL. */
static char *host_recent_failure(struct hv_host *h)
{
	char *why = NULL;

	g_mutex_lock(&h->lock);
	if (h->failure && g_get_monotonic_time() - h->failed_at < HV_RETRY_US)
		why = g_strdup(h->failure);
	g_mutex_unlock(&h->lock);
	return why;
}

/* ---- events ---- */

static void emit(struct hv_host *h, virDomainPtr dom, const char *event)
{
	/* virDomainGetName reads the local object: no call to the host */
	const char *name = virDomainGetName(dom);

	g_mutex_lock(&hv.handler_lock);
	if (hv.handler && name)
		hv.handler(h->id, name, event, hv.handler_data);
	g_mutex_unlock(&hv.handler_lock);
}

static const char *lifecycle_word(int event)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED: return "defined";
	case VIR_DOMAIN_EVENT_UNDEFINED: return "undefined";
	case VIR_DOMAIN_EVENT_STARTED: return "started";
	case VIR_DOMAIN_EVENT_SUSPENDED: return "suspended";
	case VIR_DOMAIN_EVENT_RESUMED: return "resumed";
	case VIR_DOMAIN_EVENT_STOPPED: return "stopped";
	case VIR_DOMAIN_EVENT_SHUTDOWN: return "shutdown";
	case VIR_DOMAIN_EVENT_PMSUSPENDED: return "pmsuspended";
	case VIR_DOMAIN_EVENT_CRASHED: return "crashed";
	}
	return NULL;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	const char *word = lifecycle_word(event);

	(void)conn;
	(void)detail;
	if (word)
		emit(opaque, dom, word);
	return 0;
}

static void on_device_added(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	g_autofree char *word = g_strdup_printf("device-added:%s", alias ? alias : "");

	(void)conn;
	emit(opaque, dom, word);
}

static void on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	g_autofree char *word = g_strdup_printf("device-removed:%s", alias ? alias : "");

	(void)conn;
	emit(opaque, dom, word);
}

/* The connection went away (daemon gone, keepalive timeout): reopen on next use. */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct hv_host *h = opaque;

	(void)reason;
	g_mutex_lock(&h->lock);
	if (h->conn == conn)
		h->dead = true;
	g_mutex_unlock(&h->lock);
}

void hv_set_event_handler(hv_event_fn fn, void *data)
{
	g_mutex_lock(&hv.handler_lock);
	hv.handler = fn;
	hv.handler_data = data;
	g_mutex_unlock(&hv.handler_lock);
}

/* ---- connections (worker threads only: these talk to the host) ---- */

/* A connection taken from a host, to be closed. */
struct hv_link {
	virConnectPtr conn;
	int callbacks[CB_COUNT];
	bool close_registered;
};

/* Take h's connection out of h (h->lock held). */
static struct hv_link host_take_link(struct hv_host *h)
{
	struct hv_link l = { .conn = h->conn, .close_registered = h->close_registered };

	memcpy(l.callbacks, h->callbacks, sizeof(l.callbacks));
	h->conn = NULL;
	h->close_registered = false;
	h->dead = false;
	for (int i = 0; i < CB_COUNT; i++)
		h->callbacks[i] = -1;
	return l;
}

/* Deregister everything (which drops the callbacks' host references) and close. */
static void link_close(struct hv_link *l)
{
	if (!l->conn)
		return;
	for (int i = 0; i < CB_COUNT; i++)
		if (l->callbacks[i] >= 0)
			virConnectDomainEventDeregisterAny(l->conn, l->callbacks[i]);
	if (l->close_registered)
		virConnectUnregisterCloseCallback(l->conn, on_close);
	virConnectClose(l->conn);
	l->conn = NULL;
}

/* Register the domain events; a driver without some of them still serves calls. */
static void register_events(virConnectPtr conn, struct hv_host *h, int callbacks[CB_COUNT])
{
	static const struct {
		int id;
		virConnectDomainEventGenericCallback cb;
	} events[CB_COUNT] = {
		[CB_LIFECYCLE] = { VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle) },
		[CB_DEVICE_ADDED] = { VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_device_added) },
		[CB_DEVICE_REMOVED] = { VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_device_removed) },
	};

	for (int i = 0; i < CB_COUNT; i++) {
		callbacks[i] = virConnectDomainEventRegisterAny(conn, NULL, events[i].id, events[i].cb,
		                                                host_ref(h), host_unref);
		if (callbacks[i] < 0)
			host_unref(h);  /* not registered: libvirt did not keep the reference */
	}
}

/* A reference to h's connection, opened (with events) if there is none or it died. */
static int host_connect(struct hv_host *h, virConnectPtr *out, bool *fresh)
{
	struct hv_link old, link = { .callbacks = { -1, -1, -1 } };
	g_autofree char *why = NULL;
	int r;

	*out = NULL;
	*fresh = false;
	g_mutex_lock(&h->connect_lock);
	g_mutex_lock(&h->lock);
	if (h->conn && !h->dead) {
		*out = h->conn;
		virConnectRef(*out);
		g_mutex_unlock(&h->lock);
		g_mutex_unlock(&h->connect_lock);
		return 0;
	}
	old = host_take_link(h);
	if (h->retired)
		r = ep_errorf(ENOENT, "host %s was removed", h->id);
	else if (h->failure && g_get_monotonic_time() - h->failed_at < HV_RETRY_US)
		r = ep_errorf(EIO, "host %s is down: %s", h->id, h->failure);
	else
		r = 0;
	g_mutex_unlock(&h->lock);
	link_close(&old);
	if (r < 0)
		goto out;

	link.conn = virConnectOpen(h->uri);
	if (!link.conn) {
		why = g_strdup(virGetLastErrorMessage());
		goto failed;
	}
	/* keepalive notices a daemon that stopped answering; in-process drivers say 1 (unsupported) */
	virConnectSetKeepAlive(link.conn, HV_KEEPALIVE_INTERVAL, HV_KEEPALIVE_COUNT);
	/* without it, a dead connection is still noticed by the call that fails on it */
	if (virConnectRegisterCloseCallback(link.conn, on_close, host_ref(h), host_unref) == 0)
		link.close_registered = true;
	else
		host_unref(h);
	register_events(link.conn, h, link.callbacks);

	g_mutex_lock(&h->lock);
	h->conn = link.conn;
	h->close_registered = link.close_registered;
	memcpy(h->callbacks, link.callbacks, sizeof(h->callbacks));
	h->dead = false;
	g_clear_pointer(&h->failure, g_free);
	h->failed_at = 0;
	virConnectRef(link.conn);
	*out = link.conn;
	*fresh = true;
	g_mutex_unlock(&h->lock);
	r = 0;
	goto out;

failed:
	link_close(&link);
	host_failed(h, why);
	r = ep_errorf(EIO, "host %s is down: %s", h->id, why);
out:
	g_mutex_unlock(&h->connect_lock);
	return r;
}

/* conn failed under a job: have the next job reopen it. */
static void host_drop(struct hv_host *h, virConnectPtr conn)
{
	g_mutex_lock(&h->lock);
	if (h->conn == conn)
		h->dead = true;
	g_mutex_unlock(&h->lock);
}

/* Close h's connection (the job run by hv_host_remove and hv_shutdown). */
static void host_close(struct hv_host *h)
{
	struct hv_link l;

	g_mutex_lock(&h->connect_lock);
	g_mutex_lock(&h->lock);
	l = host_take_link(h);
	g_mutex_unlock(&h->lock);
	link_close(&l);
	g_mutex_unlock(&h->connect_lock);
}

/* ---- libvirt errors ---- */

static void lv_quiet(void *data, virErrorPtr error)
{
	(void)data;
	(void)error;
}

/* The errno for a libvirt error code; invalid is used for "operation invalid". */
static int lv_errno(int code, int invalid)
{
	switch (code) {
	case VIR_ERR_NO_DOMAIN:
	case VIR_ERR_NO_DOMAIN_SNAPSHOT:
	case VIR_ERR_NO_NETWORK:
	case VIR_ERR_NO_STORAGE_POOL:
	case VIR_ERR_NO_STORAGE_VOL:
	case VIR_ERR_NO_SECRET:
	case VIR_ERR_DEVICE_MISSING:
		return ENOENT;
	case VIR_ERR_DOM_EXIST:
		return EEXIST;
	case VIR_ERR_OPERATION_INVALID:
		return invalid;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_OPERATION_UNSUPPORTED:
	case VIR_ERR_CONFIG_UNSUPPORTED:
		return ENOTSUP;
	case VIR_ERR_XML_ERROR:
	case VIR_ERR_XML_DETAIL:
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_INVALID_MAC:
		return EINVAL;
	case VIR_ERR_OPERATION_DENIED:
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_ACCESS_DENIED:
		return EACCES;
	case VIR_ERR_OPERATION_TIMEOUT:
	case VIR_ERR_AGENT_UNRESPONSIVE:
		return ETIMEDOUT;
	case VIR_ERR_RESOURCE_BUSY:
		return EBUSY;
	}
	return EIO;
}

static int lv_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_INTERNAL_ERROR;
}

/* Record the last libvirt error of the job's call and return its -errno.
 * Call it before any other libvirt function: each one resets the error. */
static int lv_error(struct hv_job *job, int invalid)
{
	int code = lv_code();

	if (code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INVALID_CONN || code == VIR_ERR_RPC)
		job->conn_error = true;
	return ep_errorf(lv_errno(code, invalid), "host %s: %s%s%s: %s", job->host->id, job->what,
	                 job->name ? " " : "", job->name ? job->name : "", virGetLastErrorMessage());
}

/* ---- jobs ---- */

static struct hv_job *job_new(hv_job_fn fn, const char *what, const char *name, const char *arg)
{
	struct hv_job *job = g_new0(struct hv_job, 1);

	g_atomic_ref_count_init(&job->refs);
	job->fn = fn;
	job->what = what;
	job->name = g_strdup(name);
	job->arg = g_strdup(arg);
	g_mutex_init(&job->lock);
	g_cond_init(&job->cond);
	return job;
}

static struct hv_job *job_ref(struct hv_job *job)
{
	g_atomic_ref_count_inc(&job->refs);
	return job;
}

static void job_unref(struct hv_job *job)
{
	if (!job || !g_atomic_ref_count_dec(&job->refs))
		return;
	if (job->host)
		host_unref(job->host);
	g_free(job->name);
	g_free(job->arg);
	if (job->doc)
		xmlFreeDoc(job->doc);
	g_free(job->message);
	g_free(job->text);
	if (job->list)
		g_ptr_array_unref(job->list);
	hv_host_info_clear(&job->info);
	g_mutex_clear(&job->lock);
	g_cond_clear(&job->cond);
	g_free(job);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_job, job_unref)

/* Run the job on the host's connection; retries idempotent jobs once on a fresh one. */
static int job_execute(struct hv_job *job)
{
	struct hv_host *h = job->host;
	virConnectPtr conn;
	bool fresh;
	int r;

	if (!job->fn) {
		host_close(h);
		return 0;
	}
	for (int attempt = 0;; attempt++) {
		ep_error_clear();
		job->conn_error = false;
		r = host_connect(h, &conn, &fresh);
		if (r < 0)
			return r;
		r = job->fn(conn, job);
		/* virConnectIsAlive is local: false once the client saw the socket close */
		if (r < 0 && (job->conn_error || virConnectIsAlive(conn) != 1)) {
			host_drop(h, conn);
			virConnectClose(conn);
			if (job->idempotent && !fresh && attempt == 0)
				continue;
			job->conn_error = true;
			return r == -ENOENT ? r : -EIO;
		}
		virConnectClose(conn);
		host_answered(h);
		return r;
	}
}

static void job_work(void *data, void *unused)
{
	struct hv_job *job = data;
	bool abandoned;
	int r;

	(void)unused;
	g_mutex_lock(&job->lock);
	abandoned = job->abandoned;
	g_mutex_unlock(&job->lock);
	/* a job whose caller gave up while it was queued is not worth starting */
	r = abandoned ? -ETIMEDOUT : job_execute(job);

	g_mutex_lock(&job->lock);
	job->r = r;
	if (r < 0)
		job->message = g_strdup(ep_error_message());
	job->done = true;
	g_cond_signal(&job->cond);
	g_mutex_unlock(&job->lock);
	job_unref(job);
}

/* Hand job to h's pool (h->lock held); false if h is retired. */
static bool host_push(struct hv_host *h, struct hv_job *job)
{
	if (!h->pool)
		return false;
	g_thread_pool_push(h->pool, job_ref(job), NULL);
	return true;
}

/* Wait for job until deadline; false (and the job abandoned) if it did not finish. */
static bool job_wait(struct hv_job *job, gint64 deadline)
{
	bool done;

	g_mutex_lock(&job->lock);
	while (!job->done)
		if (!g_cond_wait_until(&job->cond, &job->lock, deadline))
			break;
	done = job->done;
	if (!done)
		job->abandoned = true;
	g_mutex_unlock(&job->lock);
	return done;
}

/* Run job on host host_id within the timeout: its result, or -errno with the
 * worker's message recorded again on this thread. */
static int job_call(const char *host_id, struct hv_job *job)
{
	struct hv_host *h = host_lookup(host_id);
	g_autofree char *why = NULL;
	double seconds = hv.timeout_us / (double)G_USEC_PER_SEC;
	bool pushed;

	if (!h)
		return hv_started() ? ep_errorf(ENOENT, "no host '%s'", host_id ? host_id : "")
		                    : ep_errorf(EINVAL, "the hypervisor service is not started");
	job->host = h;
	why = host_recent_failure(h);
	if (why)
		return ep_errorf(EIO, "host %s is down: %s", h->id, why);

	g_mutex_lock(&h->lock);
	pushed = host_push(h, job);
	g_mutex_unlock(&h->lock);
	if (!pushed)
		return ep_errorf(ENOENT, "host %s was removed", h->id);

	if (!job_wait(job, g_get_monotonic_time() + hv.timeout_us)) {
		g_autofree char *failure = g_strdup_printf("not answering (no reply within %g s)", seconds);

		host_failed(h, failure);
		return ep_errorf(ETIMEDOUT, "host %s: %s%s%s: no reply within %g s", h->id, job->what,
		                 job->name ? " " : "", job->name ? job->name : "", seconds);
	}
	if (job->r < 0)
		return ep_errorf(-job->r, "%s", job->message && job->message[0] ? job->message : "failed");
	return job->r;
}

/* ---- the service ---- */

/* [epfs] timeout in seconds (fractions allowed), default 10. */
static int config_timeout(GKeyFile *config, gint64 *out_us)
{
	g_autoptr(GError) error = NULL;
	double seconds = HV_DEFAULT_TIMEOUT;

	if (config && g_key_file_has_key(config, "epfs", "timeout", NULL)) {
		seconds = g_key_file_get_double(config, "epfs", "timeout", &error);
		if (error)
			return ep_errorf(EINVAL, "[epfs] timeout: %s", error->message);
	}
	if (!(seconds > 0 && seconds <= 86400))
		return ep_errorf(EINVAL, "[epfs] timeout must be more than 0 and at most 86400 seconds, not %g",
		                 seconds);
	*out_us = (gint64)(seconds * G_USEC_PER_SEC);
	return 0;
}

static gpointer event_loop(gpointer unused)
{
	(void)unused;
	while (!g_atomic_int_get(&hv.quit))
		if (virEventRunDefaultImpl() < 0)
			g_usleep(100 * 1000);   /* do not spin on a broken loop */
	return NULL;
}

/* Fired by hv_shutdown to make the loop return and see hv.quit. */
static void loop_wake(int timer, void *opaque)
{
	(void)opaque;
	virEventUpdateTimeout(timer, -1);
}

int hv_init(GKeyFile *config)
{
	g_autoptr(GError) error = NULL;
	gint64 timeout_us = 0;
	int r;

	r = config_timeout(config, &timeout_us);
	if (r < 0)
		return r;
	g_mutex_lock(&hv.lock);
	if (hv.hosts) {
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EBUSY, "the hypervisor service is already started");
	}
	if (virInitialize() < 0) {
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EIO, "cannot initialise libvirt: %s", virGetLastErrorMessage());
	}
	xmlInitParser();
	virSetErrorFunc(NULL, lv_quiet);
	/* before any connection, or connections get no events */
	if (virEventRegisterDefaultImpl() < 0) {
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EIO, "cannot start libvirt's event loop: %s", virGetLastErrorMessage());
	}
	hv.wake_timer = virEventAddTimeout(-1, loop_wake, NULL, NULL);
	if (hv.wake_timer < 0) {
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EIO, "cannot add an event loop timer: %s", virGetLastErrorMessage());
	}
	g_atomic_int_set(&hv.quit, 0);
	hv.loop = g_thread_try_new("hv-events", event_loop, NULL, &error);
	if (!hv.loop) {
		virEventRemoveTimeout(hv.wake_timer);
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EAGAIN, "cannot start the event thread: %s", error->message);
	}
	hv.timeout_us = timeout_us;
	hv.hosts = g_hash_table_new(g_str_hash, g_str_equal);
	g_mutex_unlock(&hv.lock);
	return 0;
}

/* Take h out of service: no more jobs, and a last one that closes its connection.
 * Returns that job (a reference) when keep_job, so the caller may wait for it. */
static struct hv_job *host_retire(struct hv_host *h, bool keep_job, GThreadPool **pool_out)
{
	struct hv_job *job = job_new(NULL, "close", NULL, NULL);
	GThreadPool *pool;

	job->host = host_ref(h);
	g_mutex_lock(&h->lock);
	h->retired = true;
	if (!host_push(h, job))
		job->done = true;       /* already retired: nothing to close */
	pool = g_steal_pointer(&h->pool);
	g_mutex_unlock(&h->lock);
	if (pool_out)
		*pool_out = pool;
	else if (pool)
		/* queued jobs still run (and find the host retired); the pool goes when they are done */
		g_thread_pool_free(pool, FALSE, FALSE);
	if (keep_job)
		return job;
	job_unref(job);
	return NULL;
}

void hv_shutdown(void)
{
	g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(host_unref);
	g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_unref);
	g_autoptr(GPtrArray) pools = g_ptr_array_new();
	GHashTableIter it;
	gpointer value;
	gint64 deadline;

	g_mutex_lock(&hv.lock);
	if (!hv.hosts) {
		g_mutex_unlock(&hv.lock);
		return;
	}
	g_hash_table_iter_init(&it, hv.hosts);
	while (g_hash_table_iter_next(&it, NULL, &value))
		g_ptr_array_add(hosts, value);          /* the table's reference */
	g_clear_pointer(&hv.hosts, g_hash_table_unref);
	deadline = g_get_monotonic_time() + hv.timeout_us;
	g_mutex_unlock(&hv.lock);

	/* close every connection at once, waiting at most one timeout for them all */
	for (guint i = 0; i < hosts->len; i++) {
		GThreadPool *pool = NULL;

		g_ptr_array_add(jobs, host_retire(hosts->pdata[i], true, &pool));
		g_ptr_array_add(pools, pool);
	}
	for (guint i = 0; i < jobs->len; i++) {
		bool done = job_wait(jobs->pdata[i], deadline);

		/* a hung host keeps its threads: let them finish in the background */
		if (pools->pdata[i])
			g_thread_pool_free(pools->pdata[i], FALSE, done);
	}

	g_atomic_int_set(&hv.quit, 1);
	virEventUpdateTimeout(hv.wake_timer, 0);
	g_thread_join(hv.loop);
	hv.loop = NULL;
	virEventRemoveTimeout(hv.wake_timer);
	hv.wake_timer = -1;
}

int hv_host_set(const char *host, const char *uri)
{
	struct hv_host *h, *old;

	if (!host || !*host || !uri || !*uri)
		return ep_errorf(EINVAL, "a host needs an id and a URI");
	g_mutex_lock(&hv.lock);
	if (!hv.hosts) {
		g_mutex_unlock(&hv.lock);
		return ep_errorf(EINVAL, "the hypervisor service is not started");
	}
	old = g_hash_table_lookup(hv.hosts, host);
	if (old && strcmp(old->uri, uri) == 0) {
		g_mutex_unlock(&hv.lock);
		return 0;
	}
	h = g_new0(struct hv_host, 1);
	g_atomic_ref_count_init(&h->refs);
	h->id = g_strdup(host);
	h->uri = g_strdup(uri);
	g_mutex_init(&h->connect_lock);
	g_mutex_init(&h->lock);
	for (int i = 0; i < CB_COUNT; i++)
		h->callbacks[i] = -1;
	/* not exclusive: threads are shared with other pools, at most HV_HOST_THREADS busy here */
	h->pool = g_thread_pool_new(job_work, NULL, HV_HOST_THREADS, FALSE, NULL);
	if (old)
		g_hash_table_steal(hv.hosts, host);
	g_hash_table_insert(hv.hosts, h->id, h);
	g_mutex_unlock(&hv.lock);
	if (old) {
		host_retire(old, false, NULL);
		host_unref(old);
	}
	return 0;
}

void hv_host_remove(const char *host)
{
	struct hv_host *h = NULL;

	g_mutex_lock(&hv.lock);
	if (hv.hosts && host && g_hash_table_steal_extended(hv.hosts, host, NULL, (gpointer *)&h)) {
		g_mutex_unlock(&hv.lock);
		host_retire(h, false, NULL);
		host_unref(h);
		return;
	}
	g_mutex_unlock(&hv.lock);
}

/* ---- host jobs ---- */

void hv_host_info_clear(struct hv_host_info *i)
{
	g_free(i->hostname);
	g_free(i->driver);
	memset(i, 0, sizeof(*i));
}

static int job_host_info(virConnectPtr conn, struct hv_job *job)
{
	virNodeInfo node;
	unsigned long long free_memory;
	const char *type;
	char *hostname;

	if (virNodeGetInfo(conn, &node) < 0)
		return lv_error(job, EINVAL);
	free_memory = virNodeGetFreeMemory(conn);
	/* 0 is also the error value: a host that cannot tell (the test driver's
	 * host files without NUMA cells) reports 0 free rather than no facts at all */
	if (free_memory == 0)
		virResetLastError();
	type = virConnectGetType(conn);
	if (!type)
		return lv_error(job, EINVAL);
	hostname = virConnectGetHostname(conn);
	if (!hostname)
		return lv_error(job, EINVAL);
	job->info.hostname = g_strdup(hostname);
	free(hostname);
	job->info.driver = g_strdup(type);
	job->info.cpus = node.cpus;
	job->info.memory = (uint64_t)node.memory * 1024;
	job->info.free_memory = free_memory;
	return 0;
}

int hv_host_info(const char *host, struct hv_host_info *out)
{
	g_autoptr(hv_job) job = job_new(job_host_info, "host info", NULL, NULL);
	int r;

	memset(out, 0, sizeof(*out));
	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;
	*out = job->info;
	memset(&job->info, 0, sizeof(job->info));
	return 0;
}

/* Move the strings of job->list to out. */
static void job_take_list(struct hv_job *job, GPtrArray *out)
{
	gsize n = 0;
	g_autofree gpointer *strings = NULL;

	if (!job->list)
		return;
	strings = g_ptr_array_steal(job->list, &n);
	for (gsize i = 0; i < n; i++)
		g_ptr_array_add(out, strings[i]);
}

static int job_host_domains(virConnectPtr conn, struct hv_job *job)
{
	virDomainPtr *domains = NULL;
	int n = virConnectListAllDomains(conn, &domains, 0);

	if (n < 0)
		return lv_error(job, EINVAL);
	job->list = g_ptr_array_new_with_free_func(g_free);
	for (int i = 0; i < n; i++) {
		g_ptr_array_add(job->list, g_strdup(virDomainGetName(domains[i])));
		virDomainFree(domains[i]);
	}
	free(domains);
	return 0;
}

int hv_host_domains(const char *host, GPtrArray *out)
{
	g_autoptr(hv_job) job = job_new(job_host_domains, "list domains", NULL, NULL);
	int r;

	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;
	job_take_list(job, out);
	return 0;
}

/* A call that needs an answer from the daemon, not only the local client. */
static int job_ping(virConnectPtr conn, struct hv_job *job)
{
	unsigned long version;

	if (virConnectGetLibVersion(conn, &version) < 0)
		return lv_error(job, EINVAL);
	return 0;
}

char *hv_host_state(const char *host)
{
	g_autoptr(hv_job) job = job_new(job_ping, "ping", NULL, NULL);
	struct hv_host *h = host_lookup(host);
	g_autofree char *why = NULL;

	if (!h)
		return g_strdup("down: no such host");
	why = host_recent_failure(h);
	host_unref(h);
	if (why)
		return g_strdup_printf("down: %s", why);
	job->idempotent = true;
	if (job_call(host, job) == 0)
		return g_strdup("up");
	why = job->host ? host_recent_failure(job->host) : NULL;
	return g_strdup_printf("down: %s", why ? why : ep_error_message());
}

/* ---- domain XML ---- */

/* Append fmt to s with every %s argument escaped for XML. */
static void xml_add(GString *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void xml_add(GString *s, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *text = NULL;

	va_start(ap, fmt);
	text = g_markup_vprintf_escaped(fmt, ap);
	va_end(ap);
	g_string_append(s, text);
}

static const char *disk_bus(const char *target)
{
	if (g_str_has_prefix(target, "sd"))
		return "scsi";
	if (g_str_has_prefix(target, "hd"))
		return "ide";
	return "virtio";
}

static void disk_xml(GString *s, const struct hv_disk *d, const char *indent)
{
	const char *target = d->target ? d->target : "";

	xml_add(s, "%s<disk type='%s' device='disk'>\n", indent, d->type ? d->type : "file");
	xml_add(s, "%s  <driver name='qemu' type='%s'/>\n", indent, d->format ? d->format : "raw");
	/* already escaped by the storage backend that made it */
	if (d->source_xml)
		g_string_append_printf(s, "%s  %s\n", indent, d->source_xml);
	xml_add(s, "%s  <target dev='%s' bus='%s'/>\n", indent, target, disk_bus(target));
	if (d->serial)
		xml_add(s, "%s  <serial>%s</serial>\n", indent, d->serial);
	xml_add(s, "%s</disk>\n", indent);
}

static void nic_xml(GString *s, const struct hv_nic *n, const char *indent)
{
	const char *network = n->network ? n->network : "";

	xml_add(s, "%s<interface type='%s'>\n", indent, n->bridge ? "bridge" : "network");
	if (n->mac)
		xml_add(s, "%s  <mac address='%s'/>\n", indent, n->mac);
	if (n->bridge)
		xml_add(s, "%s  <source bridge='%s'/>\n", indent, network);
	else
		xml_add(s, "%s  <source network='%s'/>\n", indent, network);
	xml_add(s, "%s  <model type='virtio'/>\n", indent);
	xml_add(s, "%s</interface>\n", indent);
}

char *hv_disk_xml(const struct hv_disk *d)
{
	GString *s = g_string_new(NULL);

	disk_xml(s, d, "");
	return g_string_free(s, FALSE);
}

char *hv_nic_xml(const struct hv_nic *n)
{
	GString *s = g_string_new(NULL);

	nic_xml(s, n, "");
	return g_string_free(s, FALSE);
}

static int job_driver(virConnectPtr conn, struct hv_job *job)
{
	const char *type = virConnectGetType(conn);

	if (!type)
		return lv_error(job, EINVAL);
	job->text = g_strdup(type);
	return 0;
}

int hv_domain_xml(const char *host, const struct hv_domain_spec *spec, char **xml)
{
	g_autoptr(hv_job) job = job_new(job_driver, "driver", NULL, NULL);
	GString *s;
	int r;

	*xml = NULL;
	if (!spec->name || !*spec->name)
		return ep_errorf(EINVAL, "a domain needs a name");
	if (spec->vcpus == 0 || spec->memory < 1024 * 1024)
		return ep_errorf(EINVAL, "domain %s: needs at least 1 vcpu and 1 MiB of memory", spec->name);
	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;

	s = g_string_new(NULL);
	/* KVM does not work on these hosts: every real guest is TCG */
	xml_add(s, "<domain type='%s'>\n", g_ascii_strcasecmp(job->text, "test") == 0 ? "test" : "qemu");
	xml_add(s, "  <name>%s</name>\n", spec->name);
	if (spec->uuid)
		xml_add(s, "  <uuid>%s</uuid>\n", spec->uuid);
	g_string_append_printf(s, "  <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n",
	                       (spec->memory + 1023) / 1024);
	g_string_append_printf(s, "  <vcpu>%u</vcpu>\n", spec->vcpus);
	g_string_append(s, "  <os>\n    <type>hvm</type>\n");
	if (spec->kernel)
		xml_add(s, "    <kernel>%s</kernel>\n", spec->kernel);
	if (spec->initrd)
		xml_add(s, "    <initrd>%s</initrd>\n", spec->initrd);
	if (spec->cmdline)
		xml_add(s, "    <cmdline>%s</cmdline>\n", spec->cmdline);
	if (!spec->kernel)
		g_string_append(s, "    <boot dev='hd'/>\n");
	g_string_append(s, "  </os>\n");
	/* ACPI, or shutdown cannot reach the guest */
	g_string_append(s, "  <features>\n    <acpi/>\n  </features>\n");
	g_string_append(s, "  <on_poweroff>destroy</on_poweroff>\n"
	                   "  <on_reboot>restart</on_reboot>\n"
	                   "  <on_crash>destroy</on_crash>\n"
	                   "  <devices>\n");
	for (unsigned i = 0; i < spec->ndisks; i++)
		disk_xml(s, &spec->disks[i], "    ");
	for (unsigned i = 0; i < spec->nnics; i++)
		nic_xml(s, &spec->nics[i], "    ");
	if (spec->console_log)
		xml_add(s, "    <serial type='pty'>\n      <log file='%s' append='on'/>\n    </serial>\n",
		        spec->console_log);
	else
		g_string_append(s, "    <serial type='pty'/>\n");
	g_string_append(s, "    <console type='pty'/>\n"
	                   "  </devices>\n"
	                   "</domain>\n");
	*xml = g_string_free(s, FALSE);
	return 0;
}

/* ---- XML editing (libxml2) ---- */

/* Parse xml, whose root must be an element called root. */
static int xml_parse(const char *xml, const char *root, xmlDocPtr *out)
{
	xmlDocPtr doc;
	xmlNodePtr top;

	*out = NULL;
	if (!xml)
		return ep_errorf(EINVAL, "no XML given");
	doc = xmlReadMemory(xml, (int)strlen(xml), "hv.xml", NULL,
	                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return ep_errorf(EINVAL, "not well-formed XML");
	top = xmlDocGetRootElement(doc);
	if (!top || (root && xmlStrcmp(top->name, BAD_CAST root) != 0)) {
		xmlFreeDoc(doc);
		return ep_errorf(EINVAL, "the XML is not a <%s> element", root ? root : "?");
	}
	*out = doc;
	return 0;
}

/* The first child element of parent called name, or NULL. */
static xmlNodePtr xml_child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0)
			return n;
	return NULL;
}

/* Attribute attr of the child element child of node (a copy), or NULL. */
static char *xml_child_attr(xmlNodePtr node, const char *child, const char *attr)
{
	xmlNodePtr c = xml_child(node, child);
	xmlChar *v = c ? xmlGetProp(c, BAD_CAST attr) : NULL;
	char *copy = v ? g_strdup((const char *)v) : NULL;

	xmlFree(v);
	return copy;
}

/* Text of the child element child of node (a copy), or NULL. */
static char *xml_child_text(xmlNodePtr node, const char *child)
{
	xmlNodePtr c = xml_child(node, child);
	xmlChar *v = c ? xmlNodeGetContent(c) : NULL;
	char *copy = v ? g_strdup((const char *)v) : NULL;

	xmlFree(v);
	return copy;
}

static char *xml_dump(xmlDocPtr doc)
{
	xmlChar *buf = NULL;
	int len = 0;
	char *copy;

	xmlDocDumpMemory(doc, &buf, &len);
	copy = g_strndup((const char *)buf, len);
	xmlFree(buf);
	return copy;
}

/* What identifies a device for attach/detach by redefinition: a disk by its
 * target, an interface by its MAC address.  -errno if dev has neither. */
static int device_key(xmlNodePtr dev, char **key)
{
	*key = NULL;
	if (xmlStrcmp(dev->name, BAD_CAST "disk") == 0)
		*key = xml_child_attr(dev, "target", "dev");
	else if (xmlStrcmp(dev->name, BAD_CAST "interface") == 0)
		*key = xml_child_attr(dev, "mac", "address");
	else
		return ep_errorf(ENOTSUP, "only <disk> and <interface> can be changed on this driver, not <%s>",
		                 (const char *)dev->name);
	if (!*key)
		return ep_errorf(EINVAL, "<%s> has no %s", (const char *)dev->name,
		                 dev->name[0] == 'd' ? "<target dev=...>" : "<mac address=...>");
	return 0;
}

/* The device in devices of the same kind as dev with the same key, or NULL. */
static xmlNodePtr device_find(xmlNodePtr devices, xmlNodePtr dev, const char *key)
{
	for (xmlNodePtr n = devices->children; n; n = n->next) {
		g_autofree char *k = NULL;

		if (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, dev->name) != 0)
			continue;
		if (device_key(n, &k) == 0 && g_ascii_strcasecmp(k, key) == 0)
			return n;
	}
	return NULL;
}

/* ---- domain jobs ---- */

static int dom_get(virConnectPtr conn, struct hv_job *job, virDomainPtr *out)
{
	*out = virDomainLookupByName(conn, job->name);
	return *out ? 0 : lv_error(job, EINVAL);
}

static int job_define(virConnectPtr conn, struct hv_job *job)
{
	xmlNodePtr root = xmlDocGetRootElement(job->doc);
	xmlNodePtr name = xml_child(root, "name");
	g_autofree char *xml = NULL;
	virDomainPtr dom;

	/* an update must carry the domain's UUID, or libvirt sees a second domain */
	if (!xml_child(root, "uuid")) {
		g_autoptr(virDomain) old = virDomainLookupByName(conn, job->name);
		char uuid[VIR_UUID_STRING_BUFLEN];

		if (old) {
			if (virDomainGetUUIDString(old, uuid) < 0)
				return lv_error(job, EINVAL);
			xmlAddNextSibling(name, xmlNewDocNode(job->doc, NULL, BAD_CAST "uuid", BAD_CAST uuid));
		} else if (lv_code() != VIR_ERR_NO_DOMAIN) {
			return lv_error(job, EINVAL);
		}
	}
	xml = xml_dump(job->doc);
	dom = virDomainDefineXML(conn, xml);
	if (!dom)
		return lv_error(job, EINVAL);
	virDomainFree(dom);
	return 0;
}

int hv_define(const char *host, const char *xml)
{
	g_autoptr(hv_job) job = job_new(job_define, "define", NULL, NULL);
	g_autofree char *name = NULL;
	int r;

	r = xml_parse(xml, "domain", &job->doc);
	if (r < 0) {
		g_autofree char *why = g_strdup(ep_error_message());

		return ep_errorf(-r, "define: %s", why);
	}
	name = xml_child_text(xmlDocGetRootElement(job->doc), "name");
	if (!name || !*name)
		return ep_errorf(EINVAL, "define: the domain XML has no <name>");
	job->name = g_steal_pointer(&name);
	return job_call(host, job);
}

static int job_undefine(virConnectPtr conn, struct hv_job *job)
{
	/* the fullest cleanup first; drivers refuse flags they do not know (test: NVRAM) */
	static const unsigned flag_sets[] = {
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
			VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
			VIR_DOMAIN_UNDEFINE_NVRAM,
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
	};
	g_autoptr(virDomain) dom = NULL;
	int r = dom_get(conn, job, &dom);

	if (r < 0)
		return r;
	/* OPERATION_INVALID: it stopped on its own meanwhile */
	if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0 &&
	    lv_code() != VIR_ERR_OPERATION_INVALID)
		return lv_error(job, EBUSY);
	for (size_t i = 0; i < G_N_ELEMENTS(flag_sets); i++) {
		int code;

		if (virDomainUndefineFlags(dom, flag_sets[i]) == 0)
			return 0;
		code = lv_code();
		if (code != VIR_ERR_INVALID_ARG && code != VIR_ERR_NO_SUPPORT)
			break;
	}
	return lv_error(job, EBUSY);
}

int hv_undefine(const char *host, const char *name)
{
	g_autoptr(hv_job) job = job_new(job_undefine, "undefine", name, NULL);

	return job_call(host, job);
}

/* ---- lifecycle ---- */

enum hv_op { OP_START, OP_SHUTDOWN, OP_DESTROY, OP_REBOOT, OP_SUSPEND, OP_RESUME };

static const char *const op_names[] = {
	[OP_START] = "start", [OP_SHUTDOWN] = "shutdown", [OP_DESTROY] = "destroy",
	[OP_REBOOT] = "reboot", [OP_SUSPEND] = "suspend", [OP_RESUME] = "resume",
};

/* The errno for op refused in libvirt state st, or 0 if the state allows it. */
static int op_refused(enum hv_op op, int st)
{
	bool off = st == VIR_DOMAIN_SHUTOFF || st == VIR_DOMAIN_CRASHED;

	switch (op) {
	case OP_START:
		return off ? 0 : EBUSY;
	case OP_RESUME:
		return st == VIR_DOMAIN_PAUSED ? 0 : EINVAL;
	default:
		return off ? EINVAL : 0;
	}
}

static int op_call(virDomainPtr dom, enum hv_op op)
{
	int rc = -1;

	switch (op) {
	case OP_START:
		return virDomainCreate(dom);
	case OP_DESTROY:
		return virDomainDestroy(dom);
	case OP_SUSPEND:
		return virDomainSuspend(dom);
	case OP_RESUME:
		return virDomainResume(dom);
	case OP_SHUTDOWN:
		rc = virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
		/* drivers without a choice of method (test) refuse the flag */
		if (rc < 0 && (lv_code() == VIR_ERR_INVALID_ARG || lv_code() == VIR_ERR_NO_SUPPORT))
			rc = virDomainShutdown(dom);
		return rc;
	case OP_REBOOT:
		rc = virDomainReboot(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN);
		if (rc < 0 && (lv_code() == VIR_ERR_INVALID_ARG || lv_code() == VIR_ERR_NO_SUPPORT))
			rc = virDomainReboot(dom, 0);
		return rc;
	}
	return rc;
}

static int job_lifecycle(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = NULL;
	g_autofree char *message = NULL;
	int r, st, refused;

	r = dom_get(conn, job, &dom);
	if (r < 0)
		return r;
	if (op_call(dom, job->op) == 0)
		return 0;
	r = lv_error(job, EINVAL);
	if (r == -ENOENT || job->conn_error)
		return r;
	/* drivers disagree on the error for a domain in the wrong state (test: "internal
	 * error: domain not running"), so the state decides */
	message = g_strdup(ep_error_message());
	if (virDomainGetState(dom, &st, NULL, 0) == 0 && (refused = op_refused(job->op, st)))
		return ep_errorf(refused, "%s", message);
	return r;
}

static int lifecycle(const char *host, const char *name, enum hv_op op)
{
	g_autoptr(hv_job) job = job_new(job_lifecycle, op_names[op], name, NULL);

	job->op = op;
	return job_call(host, job);
}

int hv_start(const char *host, const char *name)
{
	return lifecycle(host, name, OP_START);
}

int hv_shutdown_domain(const char *host, const char *name)
{
	return lifecycle(host, name, OP_SHUTDOWN);
}

int hv_destroy(const char *host, const char *name)
{
	return lifecycle(host, name, OP_DESTROY);
}

int hv_reboot(const char *host, const char *name)
{
	return lifecycle(host, name, OP_REBOOT);
}

int hv_suspend(const char *host, const char *name)
{
	return lifecycle(host, name, OP_SUSPEND);
}

int hv_resume(const char *host, const char *name)
{
	return lifecycle(host, name, OP_RESUME);
}

const char *hv_state_name(enum hv_state s)
{
	switch (s) {
	case HV_STATE_NONE: return "none";
	case HV_STATE_RUNNING:
	case HV_STATE_BLOCKED:
	case HV_STATE_SHUTDOWN:
		return "running";
	case HV_STATE_PAUSED: return "paused";
	case HV_STATE_SHUTOFF: return "shutoff";
	case HV_STATE_CRASHED: return "crashed";
	case HV_STATE_PMSUSPENDED: return "pmsuspended";
	}
	return "none";
}

static enum hv_state state_from_libvirt(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING: return HV_STATE_RUNNING;
	case VIR_DOMAIN_BLOCKED: return HV_STATE_BLOCKED;
	case VIR_DOMAIN_PAUSED: return HV_STATE_PAUSED;
	case VIR_DOMAIN_SHUTDOWN: return HV_STATE_SHUTDOWN;
	case VIR_DOMAIN_SHUTOFF: return HV_STATE_SHUTOFF;
	case VIR_DOMAIN_CRASHED: return HV_STATE_CRASHED;
	case VIR_DOMAIN_PMSUSPENDED: return HV_STATE_PMSUSPENDED;
	}
	/* NOSTATE: a domain between states (starting) */
	return HV_STATE_RUNNING;
}

static int job_state(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = virDomainLookupByName(conn, job->name);
	int st, reason;

	if (!dom) {
		if (lv_code() != VIR_ERR_NO_DOMAIN)
			return lv_error(job, EINVAL);
		job->state = HV_STATE_NONE;
		return 0;
	}
	if (virDomainGetState(dom, &st, &reason, 0) < 0) {
		if (lv_code() != VIR_ERR_NO_DOMAIN)
			return lv_error(job, EINVAL);
		job->state = HV_STATE_NONE;     /* undefined meanwhile */
		return 0;
	}
	job->state = state_from_libvirt(st);
	return 0;
}

int hv_state(const char *host, const char *name, enum hv_state *out)
{
	g_autoptr(hv_job) job = job_new(job_state, "state", name, NULL);
	int r;

	*out = HV_STATE_NONE;
	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;
	*out = job->state;
	return 0;
}

static int job_xml(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = NULL;
	char *xml;
	int r = dom_get(conn, job, &dom);

	if (r < 0)
		return r;
	xml = virDomainGetXMLDesc(dom, 0);
	if (!xml)
		return lv_error(job, EINVAL);
	job->text = g_strdup(xml);
	free(xml);
	return 0;
}

int hv_xml(const char *host, const char *name, char **out)
{
	g_autoptr(hv_job) job = job_new(job_xml, "xml", name, NULL);
	int r;

	*out = NULL;
	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;
	*out = g_steal_pointer(&job->text);
	return 0;
}

/* ---- devices ---- */

/* Attach or detach by rewriting the persistent definition (drivers that cannot attach). */
static int device_redefine(virConnectPtr conn, struct hv_job *job, virDomainPtr dom, bool attach)
{
	xmlNodePtr dev = xmlDocGetRootElement(job->doc);
	g_autoptr(xmlDoc) doc = NULL;
	g_autofree char *key = NULL;
	g_autofree char *xml = NULL;
	xmlNodePtr root, devices, found;
	virDomainPtr defined;
	char *current;
	int r;

	r = device_key(dev, &key);
	if (r < 0) {
		g_autofree char *why = g_strdup(ep_error_message());

		return ep_errorf(-r, "host %s: %s %s: %s", job->host->id, job->what, job->name, why);
	}
	/* SECURE keeps secrets that would otherwise be lost by the redefinition */
	current = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	if (!current)
		return lv_error(job, EINVAL);
	r = xml_parse(current, "domain", &doc);
	free(current);
	if (r < 0) {
		g_autofree char *why = g_strdup(ep_error_message());

		return ep_errorf(EIO, "host %s: %s %s: the domain's XML: %s", job->host->id, job->what,
		                 job->name, why);
	}
	root = xmlDocGetRootElement(doc);
	devices = xml_child(root, "devices");
	if (!devices)
		devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL);
	found = device_find(devices, dev, key);
	if (attach) {
		if (found)
			return ep_errorf(EEXIST, "host %s: %s %s: it already has a <%s> %s", job->host->id,
			                 job->what, job->name, (const char *)dev->name, key);
		xmlAddChild(devices, xmlDocCopyNode(dev, doc, 1));
	} else {
		if (!found)
			return ep_errorf(ENOENT, "host %s: %s %s: it has no <%s> %s", job->host->id,
			                 job->what, job->name, (const char *)dev->name, key);
		xmlUnlinkNode(found);
		xmlFreeNode(found);
	}
	xml = xml_dump(doc);
	defined = virDomainDefineXML(conn, xml);
	if (!defined)
		return lv_error(job, EINVAL);
	virDomainFree(defined);
	return 0;
}

static int job_device(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = NULL;
	bool attach = job->op;
	unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
	int r, active, rc;

	r = dom_get(conn, job, &dom);
	if (r < 0)
		return r;
	active = virDomainIsActive(dom);
	if (active < 0)
		return lv_error(job, EINVAL);
	if (active)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	rc = attach ? virDomainAttachDeviceFlags(dom, job->arg, flags)
	            : virDomainDetachDeviceFlags(dom, job->arg, flags);
	if (rc == 0)
		return 0;
	if (lv_code() != VIR_ERR_NO_SUPPORT)
		return lv_error(job, EBUSY);
	return device_redefine(conn, job, dom, attach);
}

static int device_change(const char *host, const char *name, const char *device_xml, bool attach)
{
	g_autoptr(hv_job) job = job_new(job_device, attach ? "attach" : "detach", name, device_xml);
	int r;

	r = xml_parse(device_xml, NULL, &job->doc);
	if (r < 0) {
		g_autofree char *why = g_strdup(ep_error_message());

		return ep_errorf(EINVAL, "%s %s: the device: %s", job->what, name, why);
	}
	job->op = attach;
	return job_call(host, job);
}

int hv_attach(const char *host, const char *name, const char *device_xml)
{
	return device_change(host, name, device_xml, true);
}

int hv_detach(const char *host, const char *name, const char *device_xml)
{
	return device_change(host, name, device_xml, false);
}

/* ---- snapshots ---- */

static int snap_get(virConnectPtr conn, struct hv_job *job, virDomainSnapshotPtr *out)
{
	g_autoptr(virDomain) dom = NULL;
	int r = dom_get(conn, job, &dom);

	*out = NULL;
	if (r < 0)
		return r;
	*out = virDomainSnapshotLookupByName(dom, job->arg, 0);
	return *out ? 0 : lv_error(job, EINVAL);
}

static int job_snapshot_create(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = NULL;
	g_autoptr(virDomainSnapshot) old = NULL;
	g_autofree char *xml = NULL;
	virDomainSnapshotPtr snap;
	int r = dom_get(conn, job, &dom);

	if (r < 0)
		return r;
	/* drivers report a duplicate as a generic failure: check first */
	old = virDomainSnapshotLookupByName(dom, job->arg, 0);
	if (old)
		return ep_errorf(EEXIST, "host %s: %s %s: snapshot '%s' exists", job->host->id, job->what,
		                 job->name, job->arg);
	xml = g_markup_printf_escaped("<domainsnapshot><name>%s</name></domainsnapshot>", job->arg);
	snap = virDomainSnapshotCreateXML(dom, xml, 0);
	if (!snap)
		return lv_error(job, EBUSY);
	virDomainSnapshotFree(snap);
	return 0;
}

static int job_snapshot_delete(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomainSnapshot) snap = NULL;
	int r = snap_get(conn, job, &snap);

	if (r < 0)
		return r;
	return virDomainSnapshotDelete(snap, 0) == 0 ? 0 : lv_error(job, EBUSY);
}

static int job_snapshot_revert(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomainSnapshot) snap = NULL;
	int r = snap_get(conn, job, &snap);

	if (r < 0)
		return r;
	return virDomainRevertToSnapshot(snap, 0) == 0 ? 0 : lv_error(job, EBUSY);
}

static int job_snapshot_list(virConnectPtr conn, struct hv_job *job)
{
	g_autoptr(virDomain) dom = NULL;
	virDomainSnapshotPtr *snaps = NULL;
	int r = dom_get(conn, job, &dom);
	int n;

	if (r < 0)
		return r;
	n = virDomainListAllSnapshots(dom, &snaps, 0);
	if (n < 0)
		return lv_error(job, EINVAL);
	job->list = g_ptr_array_new_with_free_func(g_free);
	for (int i = 0; i < n; i++) {
		g_ptr_array_add(job->list, g_strdup(virDomainSnapshotGetName(snaps[i])));
		virDomainSnapshotFree(snaps[i]);
	}
	free(snaps);
	return 0;
}

static int snapshot_call(const char *host, const char *name, const char *snap, hv_job_fn fn,
                         const char *what)
{
	g_autoptr(hv_job) job = job_new(fn, what, name, snap);

	if (!snap || !*snap)
		return ep_errorf(EINVAL, "%s %s: no snapshot name", what, name);
	return job_call(host, job);
}

int hv_snapshot_create(const char *host, const char *name, const char *snap)
{
	return snapshot_call(host, name, snap, job_snapshot_create, "snapshot-create");
}

int hv_snapshot_delete(const char *host, const char *name, const char *snap)
{
	return snapshot_call(host, name, snap, job_snapshot_delete, "snapshot-delete");
}

int hv_snapshot_revert(const char *host, const char *name, const char *snap)
{
	return snapshot_call(host, name, snap, job_snapshot_revert, "snapshot-revert");
}

int hv_snapshot_list(const char *host, const char *name, GPtrArray *out)
{
	g_autoptr(hv_job) job = job_new(job_snapshot_list, "snapshot-list", name, NULL);
	int r;

	job->idempotent = true;
	r = job_call(host, job);
	if (r < 0)
		return r;
	job_take_list(job, out);
	return 0;
}
