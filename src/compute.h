/* compute.h: what the compute kinds (hosts, instances, nics, snapshots,
 * volumes) share: hosts as the hypervisor service knows them, the instance
 * lifecycle, and device attach/detach. */
#pragma once

#include "hv.h"
#include "kind.h"

extern const struct ep_kind kind_hosts;
extern const struct ep_kind kind_instances;
extern const struct ep_kind kind_nics;
extern const struct ep_kind kind_snapshots;
extern const struct ep_kind kind_volumes;
extern const struct ep_kind kind_images;

/* Make sure the hypervisor service knows host id under its current URI. */
int host_prepare(const char *host);

/* Pick the host with the most free memory that fits memory bytes (*host is newly
 * allocated); free is the host's memory less that of the instances placed on it. */
int host_place(uint64_t memory, char **host);

/* Is ctx a teacher who owns instance id (and so manages it and its snapshots)? */
bool instance_teacher_owns(struct ep_ctx *ctx, const char *id);

/* True once the instance has a domain (provisioned, not draft/building/error). */
bool instance_provisioned(struct ep_obj *inst);

/* The name of an instance's root disk in the volume pool ("<id>.root"). */
char *instance_root_disk(const char *id);

/* Volume and NIC attach/detach (the instances' volumes/ and nics/ relations). */
int instance_attach_volume(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *vol);
int instance_detach_volume(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *vol);
int instance_attach_nic(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *nic);
int instance_detach_nic(struct ep_ctx *ctx, struct ep_obj *inst, struct ep_obj *nic);

/* The domain XML for an instance as its record, its volumes and NICs say. */
int instance_domain_xml(struct ep_obj *inst, char **xml);

/* Provisioning (clone, place, define, start) as a journaled job; waits up to the timeout. */
int instance_provision(struct ep_ctx *ctx, struct ep_obj *inst);
/* Undo whatever provisioning left (domain, root disk, placement); for failures and recovery. */
int instance_unprovision(const char *id, const char *status, const char *why);
/* Bring instance id to the state word names, as `echo word > instances/<id>/state`
 * does (running provisions a draft; shutoff, destroyed, paused, the verbs...);
 * waits up to the operation timeout.  No permission checks. */
int instance_set_state(struct ep_ctx *ctx, const char *id, const char *word);
/* Remove instance id as `echo destroyed > state; rmdir` does: the domain, its
 * root disk and snapshots, the record; volumes and NICs are let go.  ENOENT if
 * there is none.  No permission checks. */
int instance_delete(struct ep_ctx *ctx, const char *id);

/* Journal recovery for instances. */
int instance_recover(const char *op, const char *key, const char *step, const char *data);

/* Images and volumes: a written size must be positive and may not shrink
 * existing bytes; writing it creates a draft's bytes in pool, or grows them. */
int sized_check(struct ep_obj *o, const char *v);
int sized_apply(struct ep_ctx *ctx, struct ep_obj *o, const char *canon, const char *pool);

/* The hypervisor event handler: keeps files and pollers up to date. */
void compute_event(const char *host, const char *domain, const char *event, void *data);
