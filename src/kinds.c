/* kinds.c: the table of every resource kind, in the order of the root directory. */
#include "compute.h"
#include "people.h"

const struct ep_kind *const ep_kinds[] = {
	&kind_images,
	&kind_volumes,
	&kind_nics,
	&kind_hosts,
	&kind_instances,
	&kind_snapshots,
	&kind_users,
	&kind_projects,
	&kind_datasets,
	NULL,
};
