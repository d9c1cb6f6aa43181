/* kinds.c: the table of every resource kind, in the order of the root directory. */
#include "kind.h"

extern const struct ep_kind kind_images;
extern const struct ep_kind kind_volumes;

const struct ep_kind *const ep_kinds[] = {
	&kind_images,
	&kind_volumes,
	NULL,
};
