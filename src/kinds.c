/* kinds.c: the table of every resource kind, in the order of the root directory. */
#include "compute.h"
#include "people.h"
#include "teaching.h"
#include "templates.h"

const struct ep_kind *const ep_kinds[] = {
	&kind_images,
	&kind_volumes,
	&kind_nics,
	&kind_hosts,
	&kind_instances,
	&kind_snapshots,
	&kind_templates,
	&kind_users,
	&kind_projects,
	&kind_datasets,
	&kind_public_projects,
	&kind_public_datasets,
	&kind_service,
	&kind_classes,
	&kind_course_types,
	&kind_courses,
	&kind_experiments,
	&kind_exp_students,
	&kind_student_experiments,
	NULL,
};
