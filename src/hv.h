/* hv.h: the hypervisor service (libvirt).
 *
 * One libvirt connection per host, opened lazily on first use and reopened
 * after a failure; libvirt's event loop runs in a thread of its own.  Every
 * call returns within the configured timeout: a call that takes longer fails
 * with -ETIMEDOUT (the libvirt call may go on in the background and its result
 * is dropped).  Like every service, functions return 0 or a negative errno
 * with a message recorded through ep_errorf().
 *
 * Hosts are known by the id epfs gives them (hosts/<id>) and a libvirt URI.
 * Domains are named after the instance id.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* Domain states as epfs shows them (SPEC: running paused shutoff crashed pmsuspended). */
enum hv_state {
	HV_STATE_NONE,          /* no such domain */
	HV_STATE_RUNNING,
	HV_STATE_BLOCKED,       /* shown as running */
	HV_STATE_PAUSED,
	HV_STATE_SHUTDOWN,      /* shutting down: shown as running until it is off */
	HV_STATE_SHUTOFF,
	HV_STATE_CRASHED,
	HV_STATE_PMSUSPENDED,
};

/* "running", "paused", "shutoff", "crashed", "pmsuspended" (NONE: "none"). */
const char *hv_state_name(enum hv_state s);

struct hv_host_info {
	char *hostname;         /* what the host calls itself */
	char *driver;           /* "QEMU", "TEST", ... */
	unsigned cpus;
	uint64_t memory;        /* bytes */
	uint64_t free_memory;   /* bytes */
};
void hv_host_info_clear(struct hv_host_info *i);

/* A disk of a domain being defined or attached. */
struct hv_disk {
	const char *type;       /* <disk type=...>: "file" or "network" (from storage_disk_source) */
	const char *source_xml; /* the <source .../> element(s), already escaped */
	const char *format;     /* "raw" or "qcow2" */
	const char *target;     /* "vda", "vdb", ... */
	const char *serial;     /* optional: shown to the guest (e.g. the volume id) */
};

/* A network interface. */
struct hv_nic {
	const char *mac;        /* "52:54:00:xx:xx:xx" */
	const char *network;    /* a libvirt network name, or a bridge name */
	bool bridge;            /* network names a bridge (<interface type='bridge'>) */
};

/* What a domain is made of. */
struct hv_domain_spec {
	const char *name;       /* the instance id */
	const char *uuid;       /* optional */
	unsigned vcpus;
	uint64_t memory;        /* bytes */
	const char *kernel;     /* optional direct kernel boot: host paths */
	const char *initrd;
	const char *cmdline;
	const char *console_log;/* optional: the serial console is logged to this host file */
	const struct hv_disk *disks;
	unsigned ndisks;
	const struct hv_nic *nics;
	unsigned nnics;
};

/* Start the service: [epfs] timeout, the event loop thread.  0 or -errno. */
int hv_init(GKeyFile *config);
void hv_shutdown(void);

/* Register (or change the URI of) a host; connects on first use. */
int hv_host_set(const char *host, const char *uri);
void hv_host_remove(const char *host);
/* Live facts about a host (connects if needed). */
int hv_host_info(const char *host, struct hv_host_info *out);
/* Names of all domains defined on a host (GPtrArray of char *). */
int hv_host_domains(const char *host, GPtrArray *out);
/* "up" or "down: <reason>", without connecting if the last attempt failed recently. */
char *hv_host_state(const char *host);

/* The domain XML for spec on host (its driver decides <domain type=...>: "test" or "qemu").
 * Every name and path is escaped. */
int hv_domain_xml(const char *host, const struct hv_domain_spec *spec, char **xml);
/* The XML of a <disk> or <interface> device, for attach and detach. */
char *hv_disk_xml(const struct hv_disk *d);
char *hv_nic_xml(const struct hv_nic *n);

int hv_define(const char *host, const char *xml);
/* Undefine (also its snapshots' metadata and managed save); a running domain is destroyed first. */
int hv_undefine(const char *host, const char *name);
int hv_start(const char *host, const char *name);
int hv_shutdown_domain(const char *host, const char *name);     /* ACPI request, returns at once */
int hv_destroy(const char *host, const char *name);
int hv_reboot(const char *host, const char *name);
int hv_suspend(const char *host, const char *name);
int hv_resume(const char *host, const char *name);
/* The domain's state (HV_STATE_NONE if it is not defined there). */
int hv_state(const char *host, const char *name, enum hv_state *out);
/* The live XML. */
int hv_xml(const char *host, const char *name, char **out);

/* Attach or detach a device (hv_disk_xml / hv_nic_xml), live and persistent
 * when the domain runs, persistent otherwise.  Drivers that cannot attach
 * (the test driver) get the persistent definition rewritten instead. */
int hv_attach(const char *host, const char *name, const char *device_xml);
int hv_detach(const char *host, const char *name, const char *device_xml);

int hv_snapshot_create(const char *host, const char *name, const char *snap);
int hv_snapshot_delete(const char *host, const char *name, const char *snap);
int hv_snapshot_revert(const char *host, const char *name, const char *snap);
/* Snapshot names of a domain (GPtrArray of char *). */
int hv_snapshot_list(const char *host, const char *name, GPtrArray *out);

/* Lifecycle and device events: called from the event thread, must not block. */
typedef void (*hv_event_fn)(const char *host, const char *domain, const char *event, void *data);
void hv_set_event_handler(hv_event_fn fn, void *data);
