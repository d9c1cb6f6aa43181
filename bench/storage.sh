#!/bin/bash
# bench/storage.sh: what the rbd storage backend costs through the mount,
# compared with the same librbd calls made directly.
#
#   bash bench/storage.sh      (from a directory holding the epfs binary)
#
# Starts a memstore micro Ceph cluster (scripts/ceph-micro.sh), a private
# libvirtd (test driver) and MariaDB, mounts epfs with [storage] backend=rbd,
# and times, BENCH_N times each (the report shows medians):
#
#   through epfs                                  direct (tests/storage-test timing N)
#   mkdir images/bN + echo SIZE > images/bN/size  create (+ stat: mkdir looks for bytes to adopt)
#   echo 1 > purge; rmdir images/bN               remove
#   provisioning's clone step (progress 10 -> 40) clone
#   echo running > instances/iN/state (whole)     clone (+ libvirt: no direct counterpart)
#   rmdir instances/iN (stopped)                  remove_clone
#   echo x > images/bN/name (no storage: floor)   -
#
# The file system calls are made by a small Python program (one process, no
# fork per call), so a figure is the system call: open/write/close, mkdir or
# rmdir. The direct figures come from `tests/storage-test CONFIG timing N`,
# the same librbd calls through src/storage_rbd.c without FUSE or MariaDB,
# run once before and once after the calls through the mount: the direct
# column is the mean of the two medians.
#
# Environment:
#   EPFS_BUILDDIR   where epfs and tests/storage-test are (default: the current
#                   directory if it holds ./epfs, else /work/main)
#   BENCH_N         calls of each kind (default 20)
#   BENCH_SIZE      size of the images (default 1G, storage-test's size: rbd
#                   remove visits every object, so its cost grows with the size)
#   KEEP_TMP=1      keep the temporary directory (logs, ceph.conf)
#
# Needs root (FUSE), ceph-mon, ceph-osd, ceph-common, libvirt-daemon, MariaDB,
# python3.  Progress goes to stderr, the report to stdout.  About 30-60 s.

set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EPFS_BUILDDIR:-}" ]; then
	if [ -x "$PWD/epfs" ]; then EPFS_BUILDDIR=$PWD; else EPFS_BUILDDIR=/work/main; fi
fi
export EPFS_BUILDDIR
export EPFS_BIN=$EPFS_BUILDDIR/epfs
STORAGE_TEST=$EPFS_BUILDDIR/tests/storage-test
N=${BENCH_N:-20}
SIZE=${BENCH_SIZE:-1G}

log() { printf '%s\n' "$*" >&2; }
die() { log "storage.sh: $*"; exit 1; }

[ -x "$EPFS_BIN" ] || die "no epfs binary at $EPFS_BIN (build it, or set EPFS_BUILDDIR)"
[ -x "$STORAGE_TEST" ] || die "no $STORAGE_TEST (make check-programs)"
case $N in '' | *[!0-9]*) die "BENCH_N must be a number" ;; esac
[ "$N" -ge 3 ] && [ "$N" -le 200 ] || die "BENCH_N must be 3..200"
for cmd in ceph-mon ceph-osd rbd rados python3 virsh; do
	command -v "$cmd" >/dev/null || die "$cmd is missing"
done

# shellcheck source-path=SCRIPTDIR source=../tests/lib.sh
. "$BENCH_DIR/../tests/lib.sh"
# shellcheck source=../scripts/ceph-micro.sh
. "$EPFS_SRCDIR/scripts/ceph-micro.sh"
CEPH=$T/ceph

eval "$(declare -f epfs_teardown | sed '1s/epfs_teardown/_lib_epfs_teardown/')"
epfs_teardown() {
	epfs_umount
	ceph_micro_stop "$CEPH"
	_lib_epfs_teardown
}
trap epfs_teardown EXIT
trap 'exit 130' INT TERM

# lib.sh's configuration, with [storage] on the micro cluster
eval "$(declare -f write_config | sed '1s/write_config/_dir_write_config/')"
write_config() {
	_dir_write_config
	awk '/^\[/ { skip = ($0 == "[storage]") } !skip' "$EPFS_CONF" > "$EPFS_CONF.new"
	printf '\n[storage]\nbackend=rbd\nceph_conf=%s\nimage_pool=images\nvolume_pool=volumes\ntimeout=10\n' \
		"$CEPH/ceph.conf" >> "$EPFS_CONF.new"
	mv "$EPFS_CONF.new" "$EPFS_CONF"
}

log "storage.sh: a memstore micro cluster in $CEPH"
ceph_micro_start "$CEPH" memstore || die "no Ceph cluster"
URI=$(libvirt_start) || die "cannot start libvirtd"
_LIBVIRT_DIRS=$T/libvirt    # libvirt_start ran in a subshell
EPFS_ATTR_TIMEOUT=${EPFS_ATTR_TIMEOUT:-1.0}
epfs_setup >/dev/null
mountpoint -q "$MNT" || die "epfs did not mount"
write_config                # (for storage-test: the same [storage])

# ---- direct: tests/storage-test timing N, before and after (the load drifts) ----

# direct_run NAME: storage-test timing N into $T/NAME.txt
direct_run() {
	log "storage.sh: direct librbd calls: storage-test timing $N ($1)"
	"$STORAGE_TEST" "$EPFS_CONF" timing "$N" > "$T/$1.txt" 2>&1 || {
		cat "$T/$1.txt" >&2
		die "storage-test timing failed"
	}
}
# direct OP: the mean of its two medians (before, after) in ms
direct() {
	awk -v op="$1" '$1 == op { for (i = 2; i < NF; i++) if ($i == "median") { s += $(i + 1); n++ } }
		END { if (n) printf "%.2f\n", s / n }' "$T/direct-before.txt" "$T/direct-after.txt"
}
direct_run direct-before

# ---- through the mount ----

mkdir "$MNT/hosts/h1" && printf '%s\n' "$URI" > "$MNT/hosts/h1/uri" || die "cannot add the host"
mkdir "$MNT/images/base" && printf '%s\n' "$SIZE" > "$MNT/images/base/size" || die "cannot create images/base"

cat > "$T/measure.py" <<'PY'
"""Time file system calls on an epfs mount; print "name ms" lines."""
import os, select, statistics, sys, threading, time

mnt, n, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = sys.stdout

def now():
    return time.monotonic() * 1000.0

def write(path, text):
    """What `echo text > path` does: open, write, close."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)

def timed(name, fn, *args):
    t0 = now()
    fn(*args)
    out.write("%s %.3f\n" % (name, now() - t0))

class Watch(threading.Thread):
    """Note when lines first appear in an events file, woken by poll(2)."""
    def __init__(self, path):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY)
        self.seen = {}
        self.stop = False
    def run(self):
        p = select.poll()
        p.register(self.fd, select.POLLIN | select.POLLPRI)
        while not self.stop:
            os.lseek(self.fd, 0, os.SEEK_SET)
            data = b""
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                data += chunk
            t = now()
            for line in data.decode().splitlines():
                event = line.split(" ", 1)[1] if " " in line else line
                self.seen.setdefault(event, t)
            p.poll(200)

# images: create (mkdir + size), a DB-only write, remove (purge + rmdir)
for i in range(n):
    d = "%s/images/b%d" % (mnt, i)
    t0 = now()
    timed("mkdir", os.mkdir, d)
    timed("size", write, d + "/size", size)
    out.write("create %.3f\n" % (now() - t0))
    timed("name", write, d + "/name", "bench image %d" % i)
for i in range(n):
    d = "%s/images/b%d" % (mnt, i)
    t0 = now()
    timed("purge", write, d + "/purge", "1")
    timed("rmdir", os.rmdir, d)
    out.write("remove %.3f\n" % (now() - t0))

# instances: the first provisioning makes images/base@epfs-base (not counted)
for i in range(n + 1):
    d = "%s/instances/i%d" % (mnt, i)
    os.mkdir(d)
    os.symlink("../../images/base", d + "/image")
    write(d + "/memory", "64M")
    w = Watch(d + "/events")
    w.start()
    t0 = now()
    write(d + "/state", "running")
    total = now() - t0
    time.sleep(0.05)
    w.stop = True
    if i == 0:
        continue
    out.write("provision %.3f\n" % total)
    if "progress 10" in w.seen and "progress 40" in w.seen:
        out.write("clone_step %.3f\n" % (w.seen["progress 40"] - w.seen["progress 10"]))
    if "progress 40" in w.seen and "state running" in w.seen:
        out.write("libvirt_steps %.3f\n" % (w.seen["state running"] - w.seen["progress 40"]))
for i in range(n + 1):
    write("%s/instances/i%d/state" % (mnt, i), "destroyed")
for i in range(n + 1):
    t0 = now()
    os.rmdir("%s/instances/i%d" % (mnt, i))
    if i:
        out.write("rmdir_instance %.3f\n" % (now() - t0))
PY

log "storage.sh: through the mount: $N creates, removes, provisionings"
python3 "$T/measure.py" "$MNT" "$N" "$SIZE" > "$T/epfs.txt" || die "the measurements through the mount failed"
direct_run direct-after

# what provisioning's clone step and mkdir call, made directly on one open
# storage (storage-test shell), timed round trip from here
cat > "$T/shell.py" <<'PY'
"""Time storage-test shell commands; print "name ms" lines."""
import subprocess, sys, time

prog, conf, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sh = subprocess.Popen([prog, conf, "shell"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      text=True, bufsize=1)

def ask(cmd):
    t0 = time.monotonic()
    sh.stdin.write(cmd + "\n")
    sh.stdin.flush()
    while True:
        line = sh.stdout.readline()
        if not line or line.startswith("= "):
            return line.split()[1] if line else "EOF", (time.monotonic() - t0) * 1000.0

def timed(name, cmd, want):
    got, ms = ask(cmd)
    if got != want:
        sys.exit("%s: %s, not %s" % (cmd, got, want))
    print("%s %.3f" % (name, ms))

ask("ping")
for i in range(n):
    timed("stat_missing", "stat images nosuch%d" % i, "ENOENT")
    timed("snap_create_exists", "snap-create images base epfs-base", "EEXIST")
    timed("snap_protect_again", "snap-protect images base epfs-base", "EBUSY")
    timed("clone", "clone images base epfs-base volumes sh%d" % i, "ok")
for i in range(n):
    ask("remove volumes sh%d" % i)
sh.stdin.close()
sh.wait()
PY
log "storage.sh: direct: what mkdir and the clone step call (storage-test shell)"
python3 "$T/shell.py" "$STORAGE_TEST" "$EPFS_CONF" "$N" > "$T/shell.txt" || die "storage-test shell failed"

# median_of FILE NAME: the median of NAME's figures in FILE, in ms
median_of() {
	awk -v k="$2" '$1 == k { print $2 }' "$1" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
epfs() { median_of "$T/epfs.txt" "$1"; }
shell() { median_of "$T/shell.txt" "$1"; }
count() { awk -v k="$1" '$1 == k' "$T/epfs.txt" | wc -l; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "-" }'; }
sum() { awk 'BEGIN { for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.2f", s }' "$@"; }

row() {  # row LABEL EPFS DIRECT DIRECT-LABEL
	printf '%-44s %9s %9s %7s   %s\n' "$1" "${2:--}" "${3:--}" "$(ratio "$2" "$3")" "$4"
}

echo "epfs rbd backend, through the mount vs direct librbd"
echo "memstore micro cluster, images of $SIZE, $N calls each, medians in ms"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '%-44s %9s %9s %7s   %s\n' "operation" "epfs" "direct" "ratio" "direct call(s)"
row "mkdir images/bN (looks for bytes)" "$(epfs mkdir)" "$(shell stat_missing)" "stat of a missing image (shell)"
row "echo $SIZE > images/bN/size (creates)" "$(epfs size)" "$(direct create)" "create"
row "create: mkdir + size" "$(epfs create)" "$(direct create)" "create"
row "  the same, against what it calls" "$(epfs create)" "$(sum "$(shell stat_missing)" "$(direct create)")" \
	"stat (missing) + create"
row "echo 1 > purge" "$(epfs purge)" "" ""
row "rmdir images/bN (purge=1: removes)" "$(epfs rmdir)" "$(direct remove)" "remove"
row "remove: purge + rmdir" "$(epfs remove)" "$(direct remove)" "remove"
row "clone step of provisioning (progress 10->40)" "$(epfs clone_step)" "$(direct clone)" "clone"
row "  the same, against what it calls" "$(epfs clone_step)" \
	"$(sum "$(shell snap_create_exists)" "$(shell snap_protect_again)" "$(shell clone)")" \
	"snap_create (EEXIST) + snap_protect (EBUSY) + clone (shell)"
row "echo running > state (whole provisioning)" "$(epfs provision)" "$(direct clone)" "clone"
row "  of which place, define, start (libvirt)" "$(epfs libvirt_steps)" "" ""
row "rmdir instances/iN (undefine, remove clone)" "$(epfs rmdir_instance)" "$(direct remove_clone)" "remove_clone"
row "echo x > images/bN/name (no storage call)" "$(epfs name)" "" ""
echo
echo "clone step measured on $(count clone_step) of $N provisionings (poll(2) on events)"
echo
echo "direct, storage-test shell (medians of $N, ms): stat of a missing image $(shell stat_missing)," \
	"snap_create EEXIST $(shell snap_create_exists), snap_protect EBUSY $(shell snap_protect_again)," \
	"clone $(shell clone)"
echo
echo "direct: tests/storage-test CONFIG timing $N, before and after (the direct column is the mean of the two medians)"
sed 's/^/  /' "$T/direct-before.txt"
sed 's/^/  /' "$T/direct-after.txt"
