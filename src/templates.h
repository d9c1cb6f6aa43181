/* templates.h: environment templates (templates/<id>/), instances made from
 * them, and the per-user service (users/<u>/service/).
 *
 * The API the teaching code (student environments, the scheduler) calls.
 * Final signatures:
 *
 *   int template_instantiate(struct ep_ctx *ctx, const char *template_id,
 *                            const char *instance_id, const char *owner_user);
 *   int instance_set_state(struct ep_ctx *ctx, const char *id, const char *word);   (compute.h)
 *   int instance_delete(struct ep_ctx *ctx, const char *id);                         (compute.h)
 *   int service_idle_sweep(time_t now);
 *
 * All return 0 or a negative errno with the reason recorded by ep_errorf().
 * None checks permissions: the caller decides who may do what.  ctx may be
 * NULL (the scheduler); when given, ctx->db must be NULL (no open transaction):
 * each call runs its own transactions and may take as long as provisioning.
 */
#pragma once

#include "compute.h"
#include "kind.h"

#include <time.h>

extern const struct ep_kind kind_templates;
extern const struct ep_kind kind_service;

/* Create the draft instance record instance_id from template template_id, in
 * its own transaction: image_id, cpu and memory from the template, its base
 * snapshot (base_instance_id/base_snapshot_id, when the template is based on
 * a snapshot), template_id, and owner_id = owner_user (NULL: none).  It does
 * not provision: instance_set_state(ctx, instance_id, "running") does.
 * ENOENT missing template, EINVAL template without a base or based on a stale
 * snapshot, EEXIST instance_id taken. */
int template_instantiate(struct ep_ctx *ctx, const char *template_id, const char *instance_id,
                         const char *owner_user);

/* Could template_instantiate make an instance from template_id now?  0, or
 * its refusal (ENOENT, EINVAL: no base, a stale snapshot). */
int template_check(const char *template_id);

/* In db's open transaction: draft instance_id takes template_id's base (image,
 * or snapshot and its image), cpu and memory, and names the template. */
struct db_conn;
int template_apply_to(struct db_conn *db, const char *template_id, const char *instance_id);

/* Stop every per-user service running for [service] idle_minutes or more
 * since its last `echo running > state` (judged against now, ep_now()); the
 * volume is kept.  Returns the number stopped, or -errno. */
int service_idle_sweep(time_t now);

