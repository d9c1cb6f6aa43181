/* storage.h: the block storage service (image and volume bytes).
 *
 * The interface is shaped after librbd: images live in named pools, may have
 * snapshots, a protected snapshot may be cloned (copy-on-write) into another
 * pool, and an image with clones cannot be removed.  Nothing here assumes the
 * bytes are files: the `dir` backend keeps them as sparse files, the `rbd`
 * backend in a Ceph cluster.
 *
 * Every function returns 0 (or a count) on success, or a negative errno with a
 * message recorded through ep_errorf().  Pool, image and snapshot names are
 * validated ids (see value.h); backends may rely on that.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct storage;

struct storage_stat {
	uint64_t size;          /* provisioned size in bytes */
	uint64_t used;          /* bytes actually allocated, when known */
	char *parent_pool;      /* for clones: where the parent lives, else NULL */
	char *parent_image;
	char *parent_snap;
};

struct storage_snap {
	char *name;
	uint64_t size;
	bool protected_;
};

/* Called now and then during a copy, never concurrently: done of total bytes
 * are copied; done never goes back, and is total at the end of a success. */
typedef void storage_progress_fn(uint64_t done, uint64_t total, void *data);

/* A backend: one vtable per kind of storage. */
struct storage_ops {
	const char *name;
	/* Open the backend from the [storage] group of the config. */
	int (*open)(struct storage *st, GKeyFile *config);
	void (*close)(struct storage *st);
	/* Cheap liveness probe for .epfs/health. */
	int (*ping)(struct storage *st);

	int (*create)(struct storage *st, const char *pool, const char *image, uint64_t size);
	int (*stat)(struct storage *st, const char *pool, const char *image, struct storage_stat *out);
	int (*resize)(struct storage *st, const char *pool, const char *image, uint64_t size);
	/* Names of the images in pool, sorted, into out (a GPtrArray of char *). */
	int (*list)(struct storage *st, const char *pool, GPtrArray *out);
	int (*remove)(struct storage *st, const char *pool, const char *image);

	int (*snap_create)(struct storage *st, const char *pool, const char *image, const char *snap);
	int (*snap_protect)(struct storage *st, const char *pool, const char *image, const char *snap);
	int (*snap_unprotect)(struct storage *st, const char *pool, const char *image, const char *snap);
	int (*snap_remove)(struct storage *st, const char *pool, const char *image, const char *snap);
	/* Snapshots of image into out (a GPtrArray of struct storage_snap *),
	 * oldest first (creation order). */
	int (*snap_list)(struct storage *st, const char *pool, const char *image, GPtrArray *out);

	/* Clone pool/image@snap (which must be protected) to dst_pool/dst_image. */
	int (*clone)(struct storage *st, const char *pool, const char *image, const char *snap,
	             const char *dst_pool, const char *dst_image);
	/* "pool/image" of every clone of pool/image@snap into out (GPtrArray of char *). */
	int (*children)(struct storage *st, const char *pool, const char *image, const char *snap,
	                GPtrArray *out);
	/* Copy the data of pool/image into a new, independent dst_pool/dst_image
	 * (no snapshots, no parent; EEXIST if it exists).  The destination
	 * appears under its name only once complete, so an interrupted copy
	 * leaves nothing there; progress (may be NULL) gets data. */
	int (*copy)(struct storage *st, const char *pool, const char *image,
	            const char *dst_pool, const char *dst_image,
	            storage_progress_fn *progress, void *data);

	/* Append the libvirt <disk> source elements for pool/image to xml
	 * (e.g. <source file='...'/> or <source protocol='rbd' ...>), and set
	 * *disk_type to the <disk type=...> value ("file", "network"). */
	/* The image's format for the hypervisor ("raw", "qcow2"); NULL op means raw. */
	const char *(*format)(struct storage *st, const char *pool, const char *image);
	int (*disk_source)(struct storage *st, const char *pool, const char *image,
	                   GString *xml, const char **disk_type);
};

struct storage {
	const struct storage_ops *ops;
	void *priv;                 /* backend state */
	char *image_pool;           /* pool for images ("images") */
	char *volume_pool;          /* pool for volumes and root disks ("volumes") */
	int timeout_ms;             /* every call returns within this */
};

/* Open the backend named in [storage] backend= (default "dir"). */
int storage_open(GKeyFile *config, struct storage **out);
void storage_close(struct storage *st);

/* The backend vtable registered under name, or NULL. */
const struct storage_ops *storage_backend(const char *name);

void storage_stat_clear(struct storage_stat *s);
void storage_snap_free(struct storage_snap *s);

/* Convenience wrappers, so callers never touch the vtable. */
int storage_create(struct storage *st, const char *pool, const char *image, uint64_t size);
int storage_stat(struct storage *st, const char *pool, const char *image, struct storage_stat *out);
int storage_resize(struct storage *st, const char *pool, const char *image, uint64_t size);
int storage_list(struct storage *st, const char *pool, GPtrArray *out);
int storage_remove(struct storage *st, const char *pool, const char *image);
int storage_snap_create(struct storage *st, const char *pool, const char *image, const char *snap);
int storage_snap_protect(struct storage *st, const char *pool, const char *image, const char *snap);
int storage_snap_unprotect(struct storage *st, const char *pool, const char *image, const char *snap);
int storage_snap_remove(struct storage *st, const char *pool, const char *image, const char *snap);
int storage_snap_list(struct storage *st, const char *pool, const char *image, GPtrArray *out);
int storage_clone(struct storage *st, const char *pool, const char *image, const char *snap,
                  const char *dst_pool, const char *dst_image);
int storage_children(struct storage *st, const char *pool, const char *image, const char *snap,
                     GPtrArray *out);
int storage_copy(struct storage *st, const char *pool, const char *image, const char *dst_pool,
                 const char *dst_image, storage_progress_fn *progress, void *data);
/* The format the hypervisor reads pool/image in ("raw" unless the backend says otherwise). */
const char *storage_format(struct storage *st, const char *pool, const char *image);
int storage_disk_source(struct storage *st, const char *pool, const char *image, GString *xml,
                        const char **disk_type);
int storage_ping(struct storage *st);

extern const struct storage_ops storage_dir_ops;
extern const struct storage_ops storage_rbd_ops;
