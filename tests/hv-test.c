/* hv-test.c: TAP tests of the hypervisor service against libvirt's test driver.
 *
 *   hv-test URI [URI2]        run every test: URI (and URI2, a second daemon) serve
 *                             the test driver, e.g. test+unix:///default?socket=DIR/libvirt-sock
 *   hv-test --shell [TIMEOUT] read commands from standard input, one per line with
 *                             tab-separated fields, and answer each with one line
 *                             "ok|ERRNO MILLISECONDS TEXT" (for tests/hv.t); the
 *                             commands are in shell_command()
 *
 * Names start with a random prefix and everything created is removed, so the
 * tests may share a daemon with other users.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "error.h"
#include "tap.h"
#include "hv.h"

#define MiB (UINT64_C(1) << 20)

static char prefix[32];         /* "hvt-<random>-", starts every domain name */

/* ---- TAP ---- */

static bool is_state(const char *host, const char *name, enum hv_state want, const char *what)
{
	enum hv_state s = HV_STATE_NONE;
	int r = hv_state(host, name, &s);
	bool pass = r == 0 && s == want;

	ok(pass, "%s: state is %s", what, hv_state_name(want));
	if (!pass)
		printf("#   got %s (%s: %s)\n", hv_state_name(s), r ? ep_errno_name(-r) : "ok",
		       ep_error_message());
	return pass;
}

static double now(void)
{
	return g_get_monotonic_time() / 1e6;
}

/* ---- events ---- */

static GMutex events_lock;
static GCond events_cond;
static GPtrArray *events;       /* "host domain event" received and not yet waited for */

static void on_event(const char *host, const char *domain, const char *event, void *data)
{
	(void)data;
	g_mutex_lock(&events_lock);
	g_ptr_array_add(events, g_strdup_printf("%s %s %s", host, domain, event));
	g_cond_broadcast(&events_cond);
	g_mutex_unlock(&events_lock);
}

/* Wait up to seconds for the event and consume it; other events stay. */
static bool wait_event(const char *host, const char *domain, const char *event, double seconds)
{
	g_autofree char *want = g_strdup_printf("%s %s %s", host, domain, event);
	gint64 deadline = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
	bool found = false;

	g_mutex_lock(&events_lock);
	for (;;) {
		for (guint i = 0; i < events->len && !found; i++)
			if (strcmp(events->pdata[i], want) == 0) {
				g_ptr_array_remove_index(events, i);
				found = true;
			}
		if (found || !g_cond_wait_until(&events_cond, &events_lock, deadline))
			break;
	}
	g_mutex_unlock(&events_lock);
	return found;
}

static bool got_event(const char *host, const char *domain, const char *event)
{
	bool pass = ok(wait_event(host, domain, event, 5), "event '%s' for %s on %s", event, domain, host);

	if (!pass) {
		g_mutex_lock(&events_lock);
		for (guint i = 0; i < events->len; i++)
			printf("#   seen: %s\n", (char *)events->pdata[i]);
		g_mutex_unlock(&events_lock);
	}
	return pass;
}

static void events_clear(void)
{
	g_mutex_lock(&events_lock);
	g_ptr_array_set_size(events, 0);
	g_mutex_unlock(&events_lock);
}

/* ---- helpers ---- */

static GPtrArray *string_array(void)
{
	return g_ptr_array_new_with_free_func(g_free);
}

static GKeyFile *config_with(const char *text)
{
	GKeyFile *config = g_key_file_new();

	g_key_file_load_from_data(config, text, -1, G_KEY_FILE_NONE, NULL);
	return config;
}

/* The string value of an XPath expression over xml ("" if none, NULL if xml is not XML). */
static char *xpath(const char *xml, const char *expr)
{
	xmlDocPtr doc = xml ? xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL, XML_PARSE_NONET) : NULL;
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	char *value;

	if (!doc)
		return NULL;
	ctx = xmlXPathNewContext(doc);
	obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	if (obj && obj->type != XPATH_STRING) {
		xmlXPathObjectPtr s = xmlXPathConvertString(obj);

		obj = s;
	}
	value = g_strdup(obj && obj->stringval ? (const char *)obj->stringval : "");
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return value;
}

static bool xpath_is(const char *xml, const char *expr, const char *want, const char *what)
{
	g_autofree char *got = xpath(xml, expr);
	bool pass = got && strcmp(got, want) == 0;

	ok(pass, "%s", what);
	if (!pass)
		printf("#   %s: got '%s', expected '%s'\n", expr, got ? got : "(not XML)", want);
	return pass;
}

static char *name(const char *what)
{
	return g_strconcat(prefix, what, NULL);
}

/* Build the XML for a small domain and define it. */
static int define_simple(const char *host, const char *dom, uint64_t memory, const struct hv_disk *disks,
                         unsigned ndisks, const struct hv_nic *nics, unsigned nnics)
{
	struct hv_domain_spec spec = {
		.name = dom, .vcpus = 1, .memory = memory,
		.disks = disks, .ndisks = ndisks, .nics = nics, .nnics = nnics,
	};
	g_autofree char *xml = NULL;
	int r = hv_domain_xml(host, &spec, &xml);

	return r < 0 ? r : hv_define(host, xml);
}

/* ---- the tests ---- */

static void test_config(void)
{
	g_autoptr(GKeyFile) zero = config_with("[epfs]\ntimeout=0\n");
	g_autoptr(GKeyFile) word = config_with("[epfs]\ntimeout=soon\n");

	is_err(hv_init(zero), EINVAL, "hv_init refuses timeout=0");
	is_err(hv_init(word), EINVAL, "hv_init refuses timeout=soon");
	is_err(hv_host_set("h", "test:///default"), EINVAL, "hv_host_set before hv_init");
	is_err(hv_start("h", "x"), EINVAL, "a call before hv_init");
	ok(strcmp(hv_state_name(HV_STATE_RUNNING), "running") == 0 &&
	   strcmp(hv_state_name(HV_STATE_BLOCKED), "running") == 0 &&
	   strcmp(hv_state_name(HV_STATE_SHUTDOWN), "running") == 0 &&
	   strcmp(hv_state_name(HV_STATE_PAUSED), "paused") == 0 &&
	   strcmp(hv_state_name(HV_STATE_SHUTOFF), "shutoff") == 0 &&
	   strcmp(hv_state_name(HV_STATE_CRASHED), "crashed") == 0 &&
	   strcmp(hv_state_name(HV_STATE_PMSUSPENDED), "pmsuspended") == 0 &&
	   strcmp(hv_state_name(HV_STATE_NONE), "none") == 0, "hv_state_name names every state");
}

static void test_host(const char *host)
{
	struct hv_host_info info;
	g_autofree char *state = NULL;
	g_autoptr(GPtrArray) domains = string_array();
	double t = now();
	int r;

	state = hv_host_state(host);
	ok(state && strcmp(state, "up") == 0, "host %s is up (connected in %.0f ms)", host, (now() - t) * 1000);
	if (ok_r(hv_host_info(host, &info), "hv_host_info %s", host)) {
		ok(info.driver && g_ascii_strcasecmp(info.driver, "test") == 0, "the driver is TEST (%s)",
		   info.driver);
		ok(info.cpus > 0 && info.memory > 0, "cpus %u, memory %" PRIu64 " bytes, free %" PRIu64,
		   info.cpus, info.memory, info.free_memory);
		ok(info.hostname && *info.hostname, "hostname '%s'", info.hostname);
	}
	hv_host_info_clear(&info);
	r = hv_host_domains(host, domains);
	ok_r(r, "hv_host_domains %s (%u domains)", host, domains->len);
	is_err(hv_host_info("nosuch", &info), ENOENT, "an unknown host is ENOENT");
	is_err(hv_host_set("", "test:///default"), EINVAL, "a host without an id");
}

struct hammer {
	const char *host;
	const char *dom;
	int calls;
	int failures;
};

static gpointer hammer_thread(gpointer data)
{
	struct hammer *h = data;
	enum hv_state s;

	for (int i = 0; i < h->calls; i++)
		if (hv_state(h->host, h->dom, &s) < 0 || s != HV_STATE_RUNNING)
			h->failures++;
	return NULL;
}

/* Many threads at once, as FUSE calls in: more than one pool's worth. */
static void test_concurrency(const char *host)
{
	g_autofree char *dom = name("busy");
	struct hammer work[16];
	GThread *threads[G_N_ELEMENTS(work)];
	enum hv_state s;
	int failures = 0;
	double t;

	ok_r(define_simple(host, dom, 64 * MiB, NULL, 0, NULL, 0), "define %s", dom);
	ok_r(hv_start(host, dom), "start it");
	t = now();
	for (int i = 0; i < 200; i++)
		hv_state(host, dom, &s);
	printf("# hv_state: %.2f ms per call, one caller\n", (now() - t) / 200 * 1000);
	t = now();
	for (size_t i = 0; i < G_N_ELEMENTS(work); i++) {
		work[i] = (struct hammer){ .host = host, .dom = dom, .calls = 50 };
		threads[i] = g_thread_new("hammer", hammer_thread, &work[i]);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(work); i++) {
		g_thread_join(threads[i]);
		failures += work[i].failures;
	}
	t = now() - t;
	ok(failures == 0, "16 threads x 50 hv_state calls: %d failures, %.2f ms per call overall", failures,
	   t / (16 * 50) * 1000);
	ok_r(hv_undefine(host, dom), "undefine it");
}

static void test_lifecycle(const char *host)
{
	g_autofree char *dom = name("life");
	g_autofree char *xml = NULL, *xml2 = NULL, *uuid = NULL;
	g_autoptr(GPtrArray) domains = string_array();
	struct hv_disk disk = { .type = "file", .source_xml = "<source file='/var/tmp/hv-test.img'/>",
	                        .format = "raw", .target = "vda", .serial = "root" };
	struct hv_nic nic = { .mac = "52:54:00:00:10:01", .network = "default" };
	enum hv_state s;
	double t, t_define, t_start;

	events_clear();
	t = now();
	ok_r(define_simple(host, dom, 64 * MiB, &disk, 1, &nic, 1), "define %s", dom);
	t_define = now() - t;
	got_event(host, dom, "defined");
	is_state(host, dom, HV_STATE_SHUTOFF, "after define");
	ok_r(hv_host_domains(host, domains), "list domains");
	ok(contains(domains, dom), "the domain is listed");
	ok_r(hv_xml(host, dom, &xml), "hv_xml");
	xpath_is(xml, "string(/domain/@type)", "test", "<domain type='test'> on the test driver");
	xpath_is(xml, "string(/domain/memory)", "65536", "memory is 64 MiB in KiB");
	xpath_is(xml, "string(/domain/devices/disk/target/@dev)", "vda", "the disk is vda");
	xpath_is(xml, "string(/domain/devices/disk/serial)", "root", "the disk has its serial");
	xpath_is(xml, "string(/domain/devices/interface/mac/@address)", "52:54:00:00:10:01", "the NIC's MAC");
	xpath_is(xml, "string(/domain/on_poweroff)", "destroy", "on_poweroff is destroy");
	uuid = xpath(xml, "string(/domain/uuid)");

	/* a second define is an update that keeps the UUID */
	ok_r(define_simple(host, dom, 128 * MiB, &disk, 1, &nic, 1), "define again with 128 MiB");
	got_event(host, dom, "defined");
	ok_r(hv_xml(host, dom, &xml2), "hv_xml after the update");
	xpath_is(xml2, "string(/domain/memory)", "131072", "the update changed the memory");
	xpath_is(xml2, "string(/domain/uuid)", uuid ? uuid : "?", "the update kept the UUID");
	g_clear_pointer(&xml2, g_free);

	t = now();
	ok_r(hv_start(host, dom), "start");
	t_start = now() - t;
	printf("# define %.1f ms, start %.1f ms\n", t_define * 1000, t_start * 1000);
	got_event(host, dom, "started");
	is_state(host, dom, HV_STATE_RUNNING, "after start");
	is_err(hv_start(host, dom), EBUSY, "start of a running domain");

	ok_r(hv_suspend(host, dom), "suspend");
	got_event(host, dom, "suspended");
	is_state(host, dom, HV_STATE_PAUSED, "after suspend");
	ok_r(hv_resume(host, dom), "resume");
	got_event(host, dom, "resumed");
	is_state(host, dom, HV_STATE_RUNNING, "after resume");
	is_err(hv_resume(host, dom), EINVAL, "resume of a running domain");

	ok_r(hv_reboot(host, dom), "reboot");
	is_state(host, dom, HV_STATE_RUNNING, "after reboot");

	ok_r(hv_shutdown_domain(host, dom), "shutdown (ACPI)");
	for (int i = 0; i < 50 && hv_state(host, dom, &s) == 0 && s != HV_STATE_SHUTOFF; i++)
		g_usleep(100 * 1000);
	is_state(host, dom, HV_STATE_SHUTOFF, "after shutdown");
	got_event(host, dom, "stopped");
	is_err(hv_shutdown_domain(host, dom), EINVAL, "shutdown of a stopped domain");
	is_err(hv_destroy(host, dom), EINVAL, "destroy of a stopped domain");
	is_err(hv_suspend(host, dom), EINVAL, "suspend of a stopped domain");
	is_err(hv_reboot(host, dom), EINVAL, "reboot of a stopped domain");

	ok_r(hv_start(host, dom), "start again");
	ok_r(hv_destroy(host, dom), "destroy");
	got_event(host, dom, "stopped");
	is_state(host, dom, HV_STATE_SHUTOFF, "after destroy");

	ok_r(hv_start(host, dom), "start before undefine");
	ok_r(hv_undefine(host, dom), "undefine a running domain");
	got_event(host, dom, "undefined");
	is_state(host, dom, HV_STATE_NONE, "after undefine");
	g_ptr_array_set_size(domains, 0);
	hv_host_domains(host, domains);
	ok(!contains(domains, dom), "the domain is no longer listed");

	is_err(hv_undefine(host, dom), ENOENT, "undefine of a missing domain");
	is_err(hv_start(host, dom), ENOENT, "start of a missing domain");
	is_err(hv_xml(host, dom, &xml2), ENOENT, "xml of a missing domain");
	is_err(hv_define(host, "<domain><name>x"), EINVAL, "define of broken XML");
	is_err(hv_define(host, "<domain type='test'/>"), EINVAL, "define of XML without a name");
	is_err(hv_define(host, "<network><name>x</name></network>"), EINVAL, "define of a <network>");
}

static void test_devices(const char *host)
{
	g_autofree char *dom = name("dev");
	g_autofree char *xml = NULL, *disk_xml = NULL, *nic_xml = NULL, *bad_nic = NULL;
	struct hv_disk disk = { .type = "file", .source_xml = "<source file='/var/tmp/hv-test-data.img'/>",
	                        .format = "qcow2", .target = "vdb", .serial = "vol-1" };
	struct hv_nic nic = { .mac = "52:54:00:00:20:02", .network = "br-lab", .bridge = true };
	struct hv_nic no_mac = { .network = "default" };

	ok_r(define_simple(host, dom, 64 * MiB, NULL, 0, NULL, 0), "define %s without devices", dom);
	disk_xml = hv_disk_xml(&disk);
	nic_xml = hv_nic_xml(&nic);
	xpath_is(disk_xml, "string(/disk/target/@bus)", "virtio", "hv_disk_xml: vdb is on virtio");
	xpath_is(nic_xml, "string(/interface/@type)", "bridge", "hv_nic_xml: a bridge interface");

	ok_r(hv_attach(host, dom, disk_xml), "attach a disk to a stopped domain (redefinition)");
	ok_r(hv_xml(host, dom, &xml), "xml after the attach");
	xpath_is(xml, "string(/domain/devices/disk[target/@dev='vdb']/source/@file)",
	         "/var/tmp/hv-test-data.img", "the disk is in the definition");
	xpath_is(xml, "string(/domain/devices/disk[target/@dev='vdb']/driver/@type)", "qcow2",
	         "with its format");
	g_clear_pointer(&xml, g_free);
	is_err(hv_attach(host, dom, disk_xml), EEXIST, "attach of the same target again");

	ok_r(hv_attach(host, dom, nic_xml), "attach a NIC");
	ok_r(hv_xml(host, dom, &xml), "xml after the NIC attach");
	xpath_is(xml, "string(/domain/devices/interface[mac/@address='52:54:00:00:20:02']/source/@bridge)",
	         "br-lab", "the NIC is in the definition");
	g_clear_pointer(&xml, g_free);
	is_err(hv_attach(host, dom, nic_xml), EEXIST, "attach of the same MAC again");

	ok_r(hv_detach(host, dom, disk_xml), "detach the disk");
	ok_r(hv_detach(host, dom, nic_xml), "detach the NIC");
	ok_r(hv_xml(host, dom, &xml), "xml after the detaches");
	xpath_is(xml, "count(/domain/devices/disk)", "0", "no disk is left");
	xpath_is(xml, "count(/domain/devices/interface)", "0", "no interface is left");
	g_clear_pointer(&xml, g_free);
	is_err(hv_detach(host, dom, disk_xml), ENOENT, "detach of a disk that is not there");
	is_err(hv_detach(host, dom, nic_xml), ENOENT, "detach of a NIC that is not there");
	bad_nic = hv_nic_xml(&no_mac);
	is_err(hv_detach(host, dom, bad_nic), EINVAL, "detach of a NIC without a MAC");
	is_err(hv_attach(host, dom, "<disk"), EINVAL, "attach of broken XML");
	is_err(hv_attach(host, dom, "<hostdev mode='subsystem'/>"), ENOTSUP,
	       "attach of a device the fallback cannot match");

	/* on a running test domain only the persistent definition changes */
	ok_r(hv_start(host, dom), "start");
	ok_r(hv_attach(host, dom, disk_xml), "attach a disk to a running domain");
	ok_r(hv_destroy(host, dom), "destroy");
	ok_r(hv_xml(host, dom, &xml), "xml after the stop");
	xpath_is(xml, "count(/domain/devices/disk[target/@dev='vdb'])", "1",
	         "the disk attached while running is in the definition");
	g_clear_pointer(&xml, g_free);

	is_err(hv_attach(host, "nosuch-domain", disk_xml), ENOENT, "attach to a missing domain");
	ok_r(hv_undefine(host, dom), "undefine");
}

static void test_snapshots(const char *host)
{
	g_autofree char *dom = name("snap");
	g_autoptr(GPtrArray) snaps = string_array();
	double t;

	ok_r(define_simple(host, dom, 64 * MiB, NULL, 0, NULL, 0), "define %s", dom);
	ok_r(hv_start(host, dom), "start");
	t = now();
	ok_r(hv_snapshot_create(host, dom, "s1"), "snapshot s1");
	printf("# snapshot create %.1f ms\n", (now() - t) * 1000);
	is_err(hv_snapshot_create(host, dom, "s1"), EEXIST, "snapshot s1 again");
	ok_r(hv_suspend(host, dom), "suspend");
	ok_r(hv_snapshot_create(host, dom, "s2 & 'more'"), "snapshot with a quote and an ampersand");
	ok_r(hv_snapshot_list(host, dom, snaps), "snapshot list");
	ok(snaps->len == 2 && contains(snaps, "s1") && contains(snaps, "s2 & 'more'"),
	   "both snapshots are listed (%u)", snaps->len);
	ok_r(hv_snapshot_revert(host, dom, "s1"), "revert to s1");
	is_state(host, dom, HV_STATE_RUNNING, "s1 was taken running");
	ok_r(hv_snapshot_delete(host, dom, "s2 & 'more'"), "delete the second snapshot");
	g_ptr_array_set_size(snaps, 0);
	ok_r(hv_snapshot_list(host, dom, snaps), "snapshot list again");
	ok(snaps->len == 1 && contains(snaps, "s1"), "only s1 is left");
	is_err(hv_snapshot_delete(host, dom, "nosuch"), ENOENT, "delete a missing snapshot");
	is_err(hv_snapshot_revert(host, dom, "nosuch"), ENOENT, "revert to a missing snapshot");
	is_err(hv_snapshot_create(host, dom, ""), EINVAL, "a snapshot without a name");
	is_err(hv_snapshot_list(host, "nosuch-domain", snaps), ENOENT, "snapshots of a missing domain");
	ok_r(hv_undefine(host, dom), "undefine a running domain with a snapshot");
	is_state(host, dom, HV_STATE_NONE, "after undefine");
}

static void test_escaping(const char *host)
{
	g_autofree char *dom = name("q'u\"o&t<e>");
	g_autofree char *xml = NULL, *live = NULL;
	struct hv_disk disk = { .type = "file", .source_xml = "<source file='/var/tmp/a &amp; b&apos;s.img'/>",
	                        .format = "raw", .target = "vda", .serial = "s&<'\"" };
	struct hv_nic nic = { .mac = "52:54:00:00:30:03", .network = "net'&\"<>" };
	struct hv_domain_spec spec = {
		.name = dom, .vcpus = 2, .memory = 96 * MiB,
		.kernel = "/boot/k & 'v'", .initrd = "/boot/<i>", .cmdline = "console=ttyS0 x=\"a&b\" y='<c>'",
		.console_log = "/var/log/con & \"sole\".log",
		.disks = &disk, .ndisks = 1, .nics = &nic, .nnics = 1,
	};

	ok_r(hv_domain_xml(host, &spec, &xml), "domain XML with quotes, ampersands and brackets");
	xpath_is(xml, "string(/domain/name)", dom, "the name survives the XML");
	xpath_is(xml, "string(/domain/os/cmdline)", spec.cmdline, "the command line survives the XML");
	xpath_is(xml, "string(/domain/devices/serial/log/@file)", spec.console_log, "the console log path too");
	xpath_is(xml, "string(/domain/devices/disk/serial)", disk.serial, "and the disk serial");
	xpath_is(xml, "string(/domain/devices/interface/source/@network)", nic.network, "and the network");
	ok_r(hv_define(host, xml), "define it");
	ok_r(hv_xml(host, dom, &live), "read it back from libvirt");
	xpath_is(live, "string(/domain/name)", dom, "libvirt has the exact name");
	xpath_is(live, "string(/domain/os/kernel)", spec.kernel, "libvirt has the exact kernel path");
	xpath_is(live, "string(/domain/os/initrd)", spec.initrd, "libvirt has the exact initrd path");
	xpath_is(live, "string(/domain/devices/disk/source/@file)", "/var/tmp/a & b's.img",
	         "libvirt has the exact disk path");
	xpath_is(live, "string(/domain/devices/serial/log/@file)", spec.console_log,
	         "libvirt has the exact console log path");
	ok_r(hv_start(host, dom), "start it");
	is_state(host, dom, HV_STATE_RUNNING, "escaped name");
	ok_r(hv_undefine(host, dom), "undefine it");
	spec.memory = 0;
	is_err(hv_domain_xml(host, &spec, &xml), EINVAL, "a domain without memory");
}

/* A test-driver node file with one stopped domain: an independent in-process host. */
static char *write_node(const char *dir, const char *file, const char *dom)
{
	g_autofree char *escaped = g_markup_escape_text(dom, -1);
	g_autofree char *text = g_strdup_printf(
		"<node>\n"
		"  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
		"    <name>%s</name>\n"
		"    <memory>65536</memory>\n"
		"    <os><type>hvm</type></os>\n"
		"    <test:runstate>5</test:runstate>\n"
		"  </domain>\n"
		"</node>\n", escaped);
	char *path = g_build_filename(dir, file, NULL);

	g_file_set_contents(path, text, -1, NULL);
	return path;
}

static void test_two_hosts(const char *h1, const char *h2, const char *dir)
{
	g_autofree char *dom = name("placed");
	g_autofree char *node_a = write_node(dir, "node-a.xml", "seed-a");
	g_autofree char *node_b = write_node(dir, "node-b.xml", "seed-b");
	g_autofree char *uri_a = g_strconcat("test://", node_a, NULL);
	g_autofree char *uri_b = g_strconcat("test://", node_b, NULL);
	g_autoptr(GPtrArray) on_a = string_array();
	g_autoptr(GPtrArray) on_b = string_array();
	g_autoptr(GPtrArray) on_1 = string_array();

	/* two daemons: a domain defined on one is not on the other */
	if (h2) {
		g_autoptr(GPtrArray) on_2 = string_array();

		ok_r(define_simple(h2, dom, 64 * MiB, NULL, 0, NULL, 0), "define %s on %s", dom, h2);
		ok_r(hv_start(h2, dom), "start it on %s", h2);
		got_event(h2, dom, "started");
		is_state(h1, dom, HV_STATE_NONE, "on the other host");
		ok_r(hv_host_domains(h2, on_2), "domains of %s", h2);
		ok_r(hv_host_domains(h1, on_1), "domains of %s", h1);
		ok(contains(on_2, dom) && !contains(on_1, dom), "listed on %s only", h2);
		ok_r(hv_undefine(h2, dom), "undefine on %s", h2);
	}

	/* two custom node files in this process are two more independent hosts */
	ok_r(hv_host_set("file-a", uri_a), "host file-a: %s", uri_a);
	ok_r(hv_host_set("file-b", uri_b), "host file-b: %s", uri_b);
	ok_r(hv_host_domains("file-a", on_a), "domains of file-a");
	ok_r(hv_host_domains("file-b", on_b), "domains of file-b");
	ok(contains(on_a, "seed-a") && !contains(on_a, "seed-b") && contains(on_b, "seed-b"),
	   "each node file has its own domain");
	is_state("file-a", "seed-a", HV_STATE_SHUTOFF, "seed-a (runstate 5)");
	ok_r(hv_start("file-a", "seed-a"), "start seed-a");
	got_event("file-a", "seed-a", "started");
	is_state("file-b", "seed-a", HV_STATE_NONE, "seed-a on file-b");
	ok_r(hv_host_set("file-a", uri_a), "setting the same URI again");
	is_state("file-a", "seed-a", HV_STATE_RUNNING, "the same URI keeps the connection");
	ok_r(hv_host_set("file-a", uri_b), "changing file-a's URI");
	is_state("file-a", "seed-b", HV_STATE_SHUTOFF, "file-a now shows node-b");
	hv_host_remove("file-a");
	is_err(hv_state("file-a", "seed-b", &(enum hv_state){0}), ENOENT, "a removed host is ENOENT");
	hv_host_remove("file-b");
	hv_host_remove("nosuch");
}

static void test_dead_host(const char *dir)
{
	g_autofree char *uri = g_strdup_printf("test+unix:///default?socket=%s/no-daemon-sock", dir);
	g_autofree char *state = NULL;
	enum hv_state s;
	double t;
	int r;

	ok_r(hv_host_set("dead", uri), "host dead: a socket nobody listens on");
	t = now();
	r = hv_state("dead", "x", &s);
	t = now() - t;
	ok(r == -EIO, "a call on a dead host is EIO (%s: %s)", r ? ep_errno_name(-r) : "ok", ep_error_message());
	ok(t < 1, "and fails fast (%.0f ms)", t * 1000);
	t = now();
	r = hv_start("dead", "x");
	t = now() - t;
	ok(r == -EIO && strstr(ep_error_message(), "down"), "the next call fails at once: %s",
	   ep_error_message());
	ok(t < 0.05, "without trying again (%.1f ms)", t * 1000);
	state = hv_host_state("dead");
	ok(g_str_has_prefix(state, "down: "), "host state: %s", state);
	hv_host_remove("dead");
	ep_error_clear();
}

static void test_shutdown_restart(const char *uri)
{
	g_autoptr(GKeyFile) config = config_with("[epfs]\ntimeout=5\n");
	g_autofree char *state = NULL;
	double t = now();

	hv_shutdown();
	ok(now() - t < 2, "hv_shutdown returns (%.0f ms)", (now() - t) * 1000);
	is_err(hv_host_info("h1", &(struct hv_host_info){0}), EINVAL, "calls after hv_shutdown");
	ok_r(hv_init(config), "hv_init again");
	is_err(hv_init(config), EBUSY, "hv_init twice");
	ok_r(hv_host_set("h1", uri), "host h1 again");
	state = hv_host_state("h1");
	ok(strcmp(state, "up") == 0, "h1 is up after a restart of the service");
}

/* A daemon that accepts connections and never answers. */
static void test_timeout(const char *dir)
{
	g_autoptr(GKeyFile) config = config_with("[epfs]\ntimeout=1\n");
	g_autofree char *path = g_build_filename(dir, "hang-sock", NULL);
	g_autofree char *uri = g_strdup_printf("test+unix:///default?socket=%s", path);
	g_autofree char *state = NULL;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	enum hv_state s;
	double t;
	int fd, r;

	hv_shutdown();
	ok_r(hv_init(config), "hv_init with timeout=1");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
	ok(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 16) == 0,
	   "a socket that never answers");
	ok_r(hv_host_set("hang", uri), "host hang");
	t = now();
	r = hv_state("hang", "x", &s);
	t = now() - t;
	ok(r == -ETIMEDOUT, "a call to a host that does not answer is ETIMEDOUT (%s: %s)",
	   r ? ep_errno_name(-r) : "ok", ep_error_message());
	ok(t >= 0.9 && t < 1.5, "after the timeout (%.0f ms)", t * 1000);
	t = now();
	state = hv_host_state("hang");
	ok(g_str_has_prefix(state, "down: not answering"), "host state: %s (%.1f ms)", state, (now() - t) * 1000);
	t = now();
	r = hv_start("hang", "x");
	ok(r == -EIO && now() - t < 0.05, "the next call fails at once (%s, %.1f ms)", ep_error_message(),
	   (now() - t) * 1000);
	t = now();
	hv_shutdown();
	ok(now() - t < 1.5, "hv_shutdown gives up on the hung host (%.0f ms)", (now() - t) * 1000);
	/* the worker still in virConnectOpen gets its answer: the socket closes */
	close(fd);
	g_usleep(300 * 1000);
	ep_error_clear();
}

static int run_tests(const char *uri1, const char *uri2)
{
	g_autoptr(GKeyFile) config = g_key_file_new();
	g_autofree char *dir = g_dir_make_tmp("hv-test.XXXXXX", NULL);
	int r;

	snprintf(prefix, sizeof(prefix), "hvt-%06x-", g_random_int() & 0xffffff);
	printf("# domain names start with %s\n", prefix);
	test_config();
	r = hv_init(config);
	if (!ok_r(r, "hv_init with the default timeout")) {
		tap_done();
		return 1;
	}
	hv_set_event_handler(on_event, NULL);
	ok_r(hv_host_set("h1", uri1), "host h1: %s", uri1);
	if (uri2)
		ok_r(hv_host_set("h2", uri2), "host h2: %s", uri2);
	test_host("h1");
	test_lifecycle("h1");
	test_concurrency("h1");
	test_devices("h1");
	test_snapshots("h1");
	test_escaping("h1");
	test_two_hosts("h1", uri2 ? "h2" : NULL, dir);
	test_dead_host(dir);
	test_shutdown_restart(uri1);
	test_timeout(dir);
	hv_set_event_handler(NULL, NULL);

	g_autofree char *rm = g_build_filename(dir, "node-a.xml", NULL);
	g_unlink(rm);
	g_free(rm);
	rm = g_build_filename(dir, "node-b.xml", NULL);
	g_unlink(rm);
	g_free(rm);
	rm = g_build_filename(dir, "hang-sock", NULL);
	g_unlink(rm);
	g_rmdir(dir);
	return tap_done();
}

/* ---- the shell, for tests/hv.t ---- */

static gint compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One command; its output (or message) goes to out.  0 or -errno. */
static int shell_command(char **f, int n, GString *out)
{
	const char *cmd = f[0];
	enum hv_state s;
	int r;

#define NEED(k) do { if (n < (k)) return ep_errorf(EINVAL, "%s needs %d arguments", cmd, (k) - 1); } while (0)
	if (strcmp(cmd, "host") == 0) {
		NEED(3);
		return hv_host_set(f[1], f[2]);
	}
	if (strcmp(cmd, "remove") == 0) {
		NEED(2);
		hv_host_remove(f[1]);
		return 0;
	}
	if (strcmp(cmd, "host-state") == 0) {
		g_autofree char *state = NULL;

		NEED(2);
		state = hv_host_state(f[1]);
		g_string_append(out, state);
		return 0;
	}
	if (strcmp(cmd, "host-info") == 0) {
		struct hv_host_info i;

		NEED(2);
		r = hv_host_info(f[1], &i);
		if (r == 0)
			g_string_append_printf(out, "driver=%s cpus=%u memory=%" PRIu64 " free=%" PRIu64 " hostname=%s",
			                       i.driver, i.cpus, i.memory, i.free_memory, i.hostname);
		hv_host_info_clear(&i);
		return r;
	}
	if (strcmp(cmd, "domains") == 0 || strcmp(cmd, "snap-list") == 0) {
		g_autoptr(GPtrArray) list = string_array();

		NEED(cmd[0] == 'd' ? 2 : 3);
		r = cmd[0] == 'd' ? hv_host_domains(f[1], list) : hv_snapshot_list(f[1], f[2], list);
		g_ptr_array_sort(list, compare_strings);
		for (guint i = 0; i < list->len; i++)
			g_string_append_printf(out, "%s%s", i ? " " : "", (char *)list->pdata[i]);
		return r;
	}
	if (strcmp(cmd, "define") == 0) {
		/* define HOST NAME [memory=MiB] [kernel=..] [cmdline=..] [console=..] [disk=TARGET:PATH]
		 *        [nic=MAC:NETWORK] [bridge=MAC:BRIDGE] */
		struct hv_domain_spec spec = { .vcpus = 1, .memory = 64 * MiB };
		struct hv_disk disks[8];
		struct hv_nic nics[8];
		g_autoptr(GPtrArray) keep = string_array();
		g_autofree char *xml = NULL;

		NEED(3);
		spec.name = f[2];
		spec.disks = disks;
		spec.nics = nics;
		for (int i = 3; i < n; i++) {
			char *eq = strchr(f[i], '='), *colon;

			if (!eq)
				return ep_errorf(EINVAL, "define: '%s' is not KEY=VALUE", f[i]);
			*eq++ = '\0';
			colon = strchr(eq, ':');
			if (strcmp(f[i], "memory") == 0)
				spec.memory = g_ascii_strtoull(eq, NULL, 10) * MiB;
			else if (strcmp(f[i], "kernel") == 0)
				spec.kernel = eq;
			else if (strcmp(f[i], "cmdline") == 0)
				spec.cmdline = eq;
			else if (strcmp(f[i], "console") == 0)
				spec.console_log = eq;
			else if (strcmp(f[i], "disk") == 0 && colon && spec.ndisks < G_N_ELEMENTS(disks)) {
				g_autofree char *path = g_markup_escape_text(colon + 1, -1);
				char *source = g_strdup_printf("<source file='%s'/>", path);

				*colon = '\0';
				g_ptr_array_add(keep, source);
				disks[spec.ndisks++] = (struct hv_disk){ .type = "file", .source_xml = source,
				                                         .format = "raw", .target = eq };
			} else if ((strcmp(f[i], "nic") == 0 || strcmp(f[i], "bridge") == 0) && colon &&
			           spec.nnics < G_N_ELEMENTS(nics)) {
				/* the MAC holds colons too: the network follows the sixth */
				char *sep = eq;

				for (int k = 0; k < 6 && sep; k++)
					sep = strchr(sep + 1, ':');
				if (!sep)
					return ep_errorf(EINVAL, "define: %s=MAC:NETWORK", f[i]);
				*sep = '\0';
				nics[spec.nnics++] = (struct hv_nic){ .mac = eq, .network = sep + 1,
				                                       .bridge = f[i][0] == 'b' };
			} else {
				return ep_errorf(EINVAL, "define: unknown option '%s'", f[i]);
			}
		}
		r = hv_domain_xml(f[1], &spec, &xml);
		return r < 0 ? r : hv_define(f[1], xml);
	}
	if (strcmp(cmd, "define-file") == 0) {
		g_autofree char *xml = NULL;

		NEED(3);
		if (!g_file_get_contents(f[2], &xml, NULL, NULL))
			return ep_errorf(ENOENT, "cannot read %s", f[2]);
		return hv_define(f[1], xml);
	}
	if (strcmp(cmd, "state") == 0) {
		NEED(3);
		r = hv_state(f[1], f[2], &s);
		if (r == 0)
			g_string_append(out, hv_state_name(s));
		return r;
	}
	if (strcmp(cmd, "xml") == 0) {
		g_autofree char *xml = NULL;

		NEED(3);
		r = hv_xml(f[1], f[2], &xml);
		if (r == 0)
			g_string_append_printf(out, "%zu bytes", strlen(xml));
		return r;
	}
	if (strcmp(cmd, "xpath") == 0) {
		g_autofree char *xml = NULL, *value = NULL;

		NEED(4);
		r = hv_xml(f[1], f[2], &xml);
		if (r == 0) {
			value = xpath(xml, f[3]);
			g_string_append(out, value ? value : "");
		}
		return r;
	}
	if (strcmp(cmd, "attach-disk") == 0 || strcmp(cmd, "detach-disk") == 0) {
		g_autofree char *path = NULL, *source = NULL, *xml = NULL;
		struct hv_disk d = { .type = "file", .format = "raw" };

		NEED(5);
		path = g_markup_escape_text(f[4], -1);
		source = g_strdup_printf("<source file='%s'/>", path);
		d.source_xml = source;
		d.target = f[3];
		xml = hv_disk_xml(&d);
		return cmd[0] == 'a' ? hv_attach(f[1], f[2], xml) : hv_detach(f[1], f[2], xml);
	}
	if (strcmp(cmd, "attach-nic") == 0 || strcmp(cmd, "detach-nic") == 0) {
		g_autofree char *xml = NULL;
		struct hv_nic nic = { 0 };

		NEED(5);
		nic.mac = f[3];
		nic.network = f[4];
		xml = hv_nic_xml(&nic);
		return cmd[0] == 'a' ? hv_attach(f[1], f[2], xml) : hv_detach(f[1], f[2], xml);
	}
	if (strcmp(cmd, "events") == 0) {
		g_mutex_lock(&events_lock);
		for (guint i = 0; i < events->len; i++) {
			g_autofree char *e = g_strdelimit(g_strdup(events->pdata[i]), " ", '/');

			g_string_append_printf(out, "%s%s", i ? " " : "", e);
		}
		g_ptr_array_set_size(events, 0);
		g_mutex_unlock(&events_lock);
		return 0;
	}
	if (strcmp(cmd, "wait-event") == 0) {
		NEED(5);
		if (!wait_event(f[1], f[2], f[3], g_ascii_strtod(f[4], NULL)))
			return ep_errorf(ETIMEDOUT, "no event '%s' for %s on %s", f[3], f[2], f[1]);
		return 0;
	}
	{
		static const struct {
			const char *name;
			int (*fn)(const char *host, const char *name);
		} domain_ops[] = {
			{ "start", hv_start }, { "shutdown", hv_shutdown_domain }, { "destroy", hv_destroy },
			{ "reboot", hv_reboot }, { "suspend", hv_suspend }, { "resume", hv_resume },
			{ "undefine", hv_undefine },
		};
		static const struct {
			const char *name;
			int (*fn)(const char *host, const char *name, const char *snap);
		} snap_ops[] = {
			{ "snap-create", hv_snapshot_create }, { "snap-delete", hv_snapshot_delete },
			{ "snap-revert", hv_snapshot_revert },
		};

		for (size_t i = 0; i < G_N_ELEMENTS(domain_ops); i++)
			if (strcmp(cmd, domain_ops[i].name) == 0) {
				NEED(3);
				return domain_ops[i].fn(f[1], f[2]);
			}
		for (size_t i = 0; i < G_N_ELEMENTS(snap_ops); i++)
			if (strcmp(cmd, snap_ops[i].name) == 0) {
				NEED(4);
				return snap_ops[i].fn(f[1], f[2], f[3]);
			}
	}
#undef NEED
	return ep_errorf(EINVAL, "unknown command '%s'", cmd);
}

static int run_shell(const char *timeout)
{
	g_autofree char *text = g_strdup_printf("[epfs]\ntimeout=%s\n", timeout ? timeout : "10");
	g_autoptr(GKeyFile) config = config_with(text);
	char line[8192];
	int r;

	r = hv_init(config);
	if (r < 0) {
		fprintf(stderr, "hv-test: %s: %s\n", ep_errno_name(-r), ep_error_message());
		return 1;
	}
	hv_set_event_handler(on_event, NULL);
	while (fgets(line, sizeof(line), stdin)) {
		g_autoptr(GString) out = g_string_new(NULL);
		g_auto(GStrv) f = NULL;
		double t;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		f = g_strsplit(line, "\t", -1);
		ep_error_clear();
		t = now();
		r = shell_command(f, (int)g_strv_length(f), out);
		t = now() - t;
		if (r < 0)
			printf("%s %.0f %s\n", ep_errno_name(-r), t * 1000, ep_error_message());
		else
			printf("ok %.0f %s\n", t * 1000, out->str);
		fflush(stdout);
	}
	hv_set_event_handler(NULL, NULL);
	hv_shutdown();
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	events = g_ptr_array_new_with_free_func(g_free);
	if (argc >= 2 && strcmp(argv[1], "--shell") == 0)
		r = run_shell(argc > 2 ? argv[2] : NULL);
	else if (argc == 2 || argc == 3)
		r = run_tests(argv[1], argc == 3 ? argv[2] : NULL);
	else {
		fprintf(stderr, "usage: hv-test URI [URI2]\n       hv-test --shell [TIMEOUT]\n");
		r = 2;
	}
	hv_shutdown();
	g_ptr_array_unref(events);
	return r;
}
