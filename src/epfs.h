/* epfs.h: the services every resource kind may use, set up by main(). */
#pragma once

#include <glib.h>

struct storage;
struct filestore;

/* The configuration in effect (defaults filled in). */
extern GKeyFile *epfs_config;
/* Image and volume bytes. */
extern struct storage *epfs_storage;
/* Project, dataset and public files. */
extern struct filestore *epfs_files;
