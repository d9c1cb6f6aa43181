/* main.c: epfs — the experiment platform as a filesystem. */
#include "cache.h"
#include "compute.h"
#include "db.h"
#include "epfs.h"
#include "error.h"
#include "events.h"
#include "jobs.h"
#include "filestore.h"
#include "fs.h"
#include "settings.h"
#include "storage.h"
#include "sync.h"
#include "teaching.h"
#include "clock.h"
#include "templates.h"
#include "tree.h"

#include <fuse_lowlevel.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

GKeyFile *epfs_config;
struct storage *epfs_storage;
struct filestore *epfs_files;

struct options {
	char *config;
	int show_help;
	int show_version;
};

#define EPFS_OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt option_spec[] = {
	EPFS_OPT("config=%s", config),
	EPFS_OPT("-h", show_help),
	EPFS_OPT("--help", show_help),
	EPFS_OPT("-V", show_version),
	EPFS_OPT("--version", show_version),
	FUSE_OPT_END
};

static void show_help(const char *progname)
{
	printf("usage: %s [options] <mountpoint>\n\n", progname);
	printf("epfs options:\n"
	       "    -o config=FILE         configuration key-file (default: built-in defaults)\n"
	       "    -V, --version          print the version\n"
	       "\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static gid_t admin_gid(GKeyFile *kf)
{
	g_autofree char *name = g_key_file_get_string(kf, "epfs", "admin_group", NULL);
	struct group *g = name ? getgrnam(name) : NULL;
	char *end;
	long n;

	if (g)
		return g->gr_gid;
	n = name ? strtol(name, &end, 10) : 0;
	return name && *name && !*end ? (gid_t)n : 0;
}

/* Fork; the parent waits for the child to mount and exits with its verdict.
 * Returns, in the child, the fd to report readiness on (or -1 on failure). */
static int background(void)
{
	int fds[2];
	pid_t pid;
	char ok = 0;

	if (pipe(fds) < 0) {
		perror("epfs: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("epfs: fork");
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		_exit(read(fds[0], &ok, 1) == 1 && ok == '0' ? 0 : 1);
	}
	close(fds[0]);
	setsid();
	return fds[1];
}

/* In the background child: the mount is up; let the parent exit. */
static void background_ready(int fd)
{
	int null = open("/dev/null", O_RDWR);

	if (write(fd, "0", 1) < 0)
		syslog(LOG_WARNING, "cannot tell the parent we are mounted");
	close(fd);
	if (chdir("/") < 0)
		syslog(LOG_WARNING, "chdir /: %m");
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options opts = { 0 };
	struct fuse_cmdline_opts cl;
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct fs_options fo;
	double sync_interval;
	int ready_fd = -1;
	int ret = 1;

	if (fuse_opt_parse(&args, &opts, option_spec, NULL) == -1)
		return 1;
	if (fuse_parse_cmdline(&args, &cl) != 0)
		return 1;
	if (opts.show_help || cl.show_help) {
		show_help(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (opts.show_version || cl.show_version) {
		printf("epfs %s\n", PACKAGE_VERSION);
		printf("FUSE library version %s\n", fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (!cl.mountpoint) {
		fprintf(stderr, "epfs: no mountpoint given (see %s --help)\n", argv[0]);
		goto out_args;
	}

	/* go to the background before any thread starts (libvirt's event loop,
	 * the workers): a fork keeps only the forking thread */
	if (!cl.foreground && (ready_fd = background()) < 0)
		goto out_args;
	openlog("epfs", LOG_PID | (cl.foreground ? LOG_PERROR : 0), LOG_DAEMON);
	if (settings_load(opts.config, &epfs_config) < 0) {
		fprintf(stderr, "epfs: %s\n", ep_error_message());
		goto out_args;
	}
	if (db_open(epfs_config) < 0) {
		fprintf(stderr, "epfs: %s\n", ep_error_message());
		goto out_config;
	}
	if (storage_open(epfs_config, &epfs_storage) < 0) {
		fprintf(stderr, "epfs: storage: %s\n", ep_error_message());
		goto out_db;
	}

	if (filestore_open(epfs_config, &epfs_files) < 0) {
		fprintf(stderr, "epfs: file store: %s\n", ep_error_message());
		goto out_storage;
	}
	if (hv_init(epfs_config) < 0) {
		fprintf(stderr, "epfs: hypervisor: %s\n", ep_error_message());
		goto out_storage;
	}
	hv_set_event_handler(compute_event, NULL);
	if (jobs_init(epfs_config) < 0) {
		fprintf(stderr, "epfs: %s\n", ep_error_message());
		goto out_storage;
	}
	events_init();
	/* what a crash interrupted is finished or undone before anyone looks */
	if (journal_recover() < 0)
		syslog(LOG_WARNING, "journal recovery: %s", ep_error_message());

	fo.entry_timeout = settings_double(epfs_config, "epfs", "entry_timeout", 1.0);
	fo.attr_timeout = settings_double(epfs_config, "epfs", "attr_timeout", 1.0);
	fo.admin_gid = admin_gid(epfs_config);
	clock_gettime(CLOCK_REALTIME, &tree_mount_time);
	tree_admin_gid = fo.admin_gid;
	sync_interval = settings_double(epfs_config, "epfs", "sync_interval", fo.attr_timeout / 2);
	/* with change_log telling us of every change, records may be kept longer
	 * than the kernel keeps attributes; without it, no longer */
	cache_init(sync_interval > 0 ? MAX(fo.attr_timeout, settings_double(epfs_config, "epfs", "cache_ttl", 10))
	                             : fo.attr_timeout);
	fs_init(&fo);

	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), NULL);
	if (!se)
		goto out_fs;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cl.mountpoint) != 0)
		goto out_signals;
	/* mounted: the parent may go, and stdio is no longer ours */
	if (ready_fd >= 0)
		background_ready(ready_fd);
	fs_start(se);
	if (sync_interval > 0 && sync_start(sync_interval) < 0)
		syslog(LOG_WARNING, "change_log poller not started: %s", ep_error_message());
	clock_init(opts.config, epfs_config);
	scheduler_start(epfs_config);
	syslog(LOG_INFO, "mounted on %s", cl.mountpoint);

	if (cl.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, cl.clone_fd);
		fuse_loop_cfg_set_max_threads(loop, cl.max_threads);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	ret = ret != 0;
	scheduler_stop();
	sync_stop();
	jobs_shutdown();
	fs_shutdown();
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	fs_shutdown();
	cache_shutdown();
	jobs_shutdown();
	events_shutdown();
	hv_shutdown();
out_storage:
	if (epfs_files)
		filestore_close(epfs_files);
	storage_close(epfs_storage);
out_db:
	db_close();
out_config:
	g_key_file_free(epfs_config);
out_args:
	free(cl.mountpoint);
	fuse_opt_free_args(&args);
	free(opts.config);
	return ret;
}
