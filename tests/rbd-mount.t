#!/bin/bash
# rbd-mount.t: the rbd storage backend through the mount, checked against a
# real Ceph cluster with `rbd` and against libvirt with `virsh`.
#
# Starts a memstore micro cluster (scripts/ceph-micro.sh) and a private
# libvirtd (test driver), mounts epfs with [storage] backend=rbd, then:
# images and volumes (mkdir + size, registration of RBD images made with
# `rbd create`, rmdir, purge), an instance whose root disk is a clone of
# images/<img>@epfs-base, the network disks of its domain, and faults: the
# cluster stops under the mount (storage calls fail within the timeout,
# everything else serves, and works again once the cluster is back), and the
# daemon mounts while the cluster is down.  About 30 s.
. "$(dirname "$0")/lib.sh"

for cmd in ceph-mon ceph-osd monmaptool ceph rbd rados virsh xmllint; do
	if ! command -v "$cmd" >/dev/null; then
		echo "1..0 # SKIP $cmd is missing (install ceph-mon ceph-osd ceph-common libvirt-clients libxml2-utils)"
		exit 0
	fi
done
. "$EPFS_SRCDIR/scripts/ceph-micro.sh"

CEPH=$T/ceph
STORAGE_TIMEOUT=3
I=$MNT/images
V=$MNT/volumes

# lib.sh's teardown, which epfs_setup's EXIT trap calls, extended: unmount
# while the cluster still answers (closing the rbd backend waits for a
# connection attempt under way: up to ten times the timeout), stop the
# cluster, then the rest
eval "$(declare -f epfs_teardown | sed '1s/epfs_teardown/_lib_epfs_teardown/')"
epfs_teardown() {
	if [ -n "$EPFS_PID" ] && [ -e "$CEPH/ready" ] && ! ceph_micro_running "$CEPH"; then
		ceph_micro_start "$CEPH" memstore >/dev/null 2>&1
	fi
	epfs_umount
	ceph_micro_stop "$CEPH"
	_lib_epfs_teardown
}
trap epfs_teardown EXIT

# todo STATUS DESCRIPTION REASON: a check that fails because of a known bug:
# TAP's TODO (an expected failure, XPASS once the bug is fixed)
todo() {
	_TAP_N=$((_TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_TAP_N - $2 # TODO $3"
	else
		echo "not ok $_TAP_N - $2 # TODO $3"
	fi
}

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

started=$(now_ms)
ceph_micro_start "$CEPH" memstore
status=$?
ok $status "a memstore micro cluster starts ($(($(now_ms) - started)) ms)"
[ $status -eq 0 ] || { echo "Bail out! no Ceph cluster"; exit 1; }
PORT=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CEPH/ceph.conf")

# libvirtd first: it copies the mount namespace as it is
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
# libvirt_start ran in a subshell: tell the teardown what to stop
_LIBVIRT_DIRS=$T/libvirt

# lib.sh's configuration with the dir backend's [storage] replaced by rbd
eval "$(declare -f write_config | sed '1s/write_config/_dir_write_config/')"
write_config() {
	_dir_write_config
	awk '/^\[/ { skip = ($0 == "[storage]") } !skip' "$EPFS_CONF" > "$EPFS_CONF.new"
	cat >> "$EPFS_CONF.new" <<CONF

[storage]
backend=rbd
ceph_conf=$CEPH/ceph.conf
image_pool=images
volume_pool=volumes
timeout=$STORAGE_TIMEOUT
CONF
	mv "$EPFS_CONF.new" "$EPFS_CONF"
}
epfs_setup

# the cluster as an administrator sees it
rbdc() { timeout 30 rbd -c "$CEPH/ceph.conf" "$@" 2>&1; }
virsh_() { virsh -q -c "$URI" "$@" 2>&1; }
# rbd_size POOL/IMAGE: its size in bytes, per rbd info
rbd_size() { rbdc info --format json "$1" | perl -MJSON::PP -e 'local $/; print decode_json(<>)->{size}'; }

# fails_with_any ERRNOS DESCRIPTION COMMAND...: the command fails with the
# message of one of ERRNOS (a|b|c); sets $took to its wall-clock ms
fails_with_any() {
	local errnos=$1 desc=$2 msgs out rc t0
	shift 2
	msgs=$(perl -MPOSIX -e 'print join "|", map { $! = POSIX->can($_)->(); "$!" } split /\|/, shift' "$errnos")
	t0=$(now_ms)
	out=$("$@" 2>&1)
	rc=$?
	took=$(($(now_ms) - t0))
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -Eq -- "$msgs"; then
		ok 0 "$desc ($errnos)"
	else
		ok 1 "$desc ($errnos)"
		diag "exit $rc, output: $out"
	fi
}

like "$(cat "$MNT/.epfs/health")" '^storage ok rbd [0-9.]+ ms$' ".epfs/health: storage ok rbd"

# ---- images ----

mkdir "$I/x"; ok $? "mkdir images/x"
! rbdc info images/x >/dev/null; ok $? "a draft has no RBD image"
write 64M "$I/x/size"; ok $? "echo 64M > images/x/size"
is "$(rbd_size images/x)" $((64 << 20)) "rbd info images/x: 64 MiB"
like "$(rbdc info images/x)" 'features: layering' "layering only"
is "$(cat "$I/x/status")" available "images/x is available"
write 128M "$I/x/size"; ok $? "grow it to 128M"
is "$(rbd_size images/x)" $((128 << 20)) "rbd info: 128 MiB"
write "Image X" "$I/x/name"

rbdc create --size 96M images/legacy >/dev/null
ok $? "rbd create images/legacy (96 MiB, rbd's default features)"
is "$(cat "$I/.unregistered")" legacy "images/.unregistered lists it"
mkdir "$I/legacy"; ok $? "mkdir images/legacy registers it"
is "$(cat "$I/legacy/size") $(cat "$I/legacy/status")" "$((96 << 20)) available" "with its real size"
is "$(cat "$I/.unregistered")" "" "and it is no longer unregistered"
rmdir "$I/legacy"; ok $? "rmdir images/legacy"
like "$(rbdc ls images)" legacy "rmdir keeps the RBD image"
is "$(cat "$I/.unregistered")" legacy "unregistered again"
mkdir "$I/legacy" && write 1 "$I/legacy/purge" && rmdir "$I/legacy"; ok $? "mkdir, purge=1, rmdir"
! rbdc ls images | grep -qx legacy; ok $? "purge removed the RBD image"
is "$(cat "$I/.unregistered")" "" ".unregistered is empty"

# ---- volumes ----

mkdir "$V/v" && write 32M "$V/v/size"; ok $? "mkdir volumes/v; echo 32M > size"
is "$(rbd_size volumes/v)" $((32 << 20)) "rbd info volumes/v: 32 MiB"
rbdc create --size 48M volumes/old >/dev/null
mkdir "$V/old"; ok $? "mkdir volumes/old adopts an RBD image made with rbd create"
is "$(cat "$V/old/size") $(cat "$V/old/status")" "$((48 << 20)) available" "with its real size"
rmdir "$V/old"; ok $? "rmdir volumes/old"
! rbdc ls volumes | grep -qx old; ok $? "rmdir of a volume removes its RBD image"
fails_with EINVAL "volume ids ending in .root are reserved" mkdir "$V/a.root"

# ---- an instance: its root disk is a clone of images/x@epfs-base-134217728 ----

mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"; ok $? "host h1 is the libvirtd test driver"
mkdir "$MNT/instances/vm1" && ln -s ../../images/x "$MNT/instances/vm1/image" &&
	write 256M "$MNT/instances/vm1/memory"
ok $? "a draft instance vm1 of image x"
t0=$(now_ms)
write running "$MNT/instances/vm1/state"; ok $? "echo running > state provisions it ($(($(now_ms) - t0)) ms)"
is "$(cat "$MNT/instances/vm1/state")" running "it runs"
info=$(rbdc info volumes/vm1.root)
like "$info" 'parent: images/x@epfs-base-134217728' "rbd info volumes/vm1.root: parent images/x@epfs-base-134217728"
is "$(rbd_size volumes/vm1.root)" $((128 << 20)) "the clone has the image's size"
like "$(rbdc snap ls images/x)" 'epfs-base-134217728 +128 MiB +yes' "rbd snap ls: epfs-base, protected"
is "$(rbdc children images/x@epfs-base-134217728)" volumes/vm1.root "rbd children images/x@epfs-base-134217728 lists it"
fails_with EINVAL "volumes/vm1.root cannot be adopted as a volume" mkdir "$V/vm1.root"

# the domain's disks are network disks naming the monitor
virsh_ dumpxml --inactive vm1 > "$T/vm1.xml"
disk() {  # disk TARGET XPATH: evaluate XPATH on the disk with that target
	xmllint --xpath "string(/domain/devices/disk[target/@dev='$1']/$2)" "$T/vm1.xml" 2>/dev/null
}
is "$(disk vda @type)" network "vda is <disk type='network'>"
is "$(disk vda source/@protocol) $(disk vda source/@name)" "rbd volumes/vm1.root" \
	"<source protocol='rbd' name='volumes/vm1.root'>"
is "$(disk vda source/host/@name):$(disk vda source/host/@port)" "127.0.0.1:$PORT" \
	"<host> is the monitor of ceph.conf (127.0.0.1:$PORT)"
is "$(disk vda driver/@type)" raw "the driver's format is raw"

# attaching a volume adds a network disk (the test driver rewrites the definition)
ln -s ../../../volumes/v "$MNT/instances/vm1/volumes/v"; ok $? "ln -s ../../../volumes/v attaches it"
is "$(cat "$V/v/status")" in-use "volumes/v is in-use"
virsh_ dumpxml --inactive vm1 > "$T/vm1.xml"
is "$(disk vdb @type) $(disk vdb source/@protocol) $(disk vdb source/@name)" "network rbd volumes/v" \
	"vdb is a network disk with source rbd volumes/v"
is "$(disk vdb source/host/@name):$(disk vdb source/host/@port)" "127.0.0.1:$PORT" "naming the monitor"

# a homework snapshot (docs/teaching.md): the root disk's RBD snapshot, and an instance of a
# template based on it whose root disk is a clone of that snapshot
mkdir "$MNT/instances/vm1/snapshots/hw"; ok $? "mkdir instances/vm1/snapshots/hw"
like "$(rbdc snap ls volumes/vm1.root)" ' hw ' "rbd snap ls volumes/vm1.root lists hw"
mkdir "$MNT/templates/hw" && ln -s ../../instances/vm1/snapshots/hw "$MNT/templates/hw/snapshot" &&
	mkdir "$MNT/instances/stu" && ln -s ../../templates/hw "$MNT/instances/stu/template" &&
	write running "$MNT/instances/stu/state"
ok $? "an instance of a template based on it runs"
like "$(rbdc info volumes/stu.root)" 'parent: volumes/vm1.root@hw' "rbd info volumes/stu.root: parent volumes/vm1.root@hw"
write destroyed "$MNT/instances/stu/state" && rmdir "$MNT/instances/stu" && rm "$MNT/templates/hw/snapshot" &&
	rmdir "$MNT/templates/hw" && rmdir "$MNT/instances/vm1/snapshots/hw"
ok $? "instance, template and snapshot removed again"
! rbdc snap ls volumes/vm1.root | grep -qw hw; ok $? "with the RBD snapshot"

# an image with clones cannot be purged
fails_with EBUSY "rmdir of an image an instance uses" rmdir "$I/x"
like "$(tail -1 "$I/x/error")" "EBUSY rmdir: .*instances/vm1" "its error names the instance"
rbdc clone images/x@epfs-base-134217728 volumes/ext >/dev/null
ok $? "rbd clone images/x@epfs-base-134217728 volumes/ext (a clone made outside epfs)"

write destroyed "$MNT/instances/vm1/state"; ok $? "echo destroyed > state"
rmdir "$MNT/instances/vm1"; ok $? "rmdir instances/vm1"
! rbdc ls volumes | grep -qx vm1.root; ok $? "the clone volumes/vm1.root is removed"
is "$(virsh_ list --all --name | grep -c '^vm1$')" 0 "the domain is undefined"
like "$(rbdc ls volumes)" '^v$' "the attached volume keeps its RBD image"

write 1 "$I/x/purge"
fails_with EBUSY "purge of an image that still has a clone" rmdir "$I/x"
like "$(tail -1 "$I/x/error")" "EBUSY rmdir: .*volumes/ext" "its error names the child volumes/ext"
is "$(cat "$I/x/status")" available "the image is still registered"
like "$(rbdc ls images)" '^x$' "and its RBD image is kept"
diag "images/x/error: $(tail -1 "$I/x/error")"
rbdc rm --no-progress volumes/ext >/dev/null; ok $? "rbd rm volumes/ext"
rmdir "$I/x" 2>"$T/err"
ok $? "with no clones left, purge + rmdir succeeds"; : \
	"image_remove does not remove the unused epfs-base snapshot: $(tail -1 "$I/x/error" 2>/dev/null)"
! rbdc ls images | grep -qx x
ok $? "and removes the RBD image with its epfs-base snapshot"

# ---- faults: the cluster stops under the mount ----

mkdir "$I/a" && write 16M "$I/a/size" && write "Image A" "$I/a/name"
mkdir "$I/y"; ok $? "mkdir images/y (a draft: no storage call)"
ceph_micro_stop "$CEPH"
ok $? "the cluster stops"
fails_with_any "EIO|ETIMEDOUT|EAGAIN" "echo 1G > images/y/size with the cluster down" write 1G "$I/y/size"
[ "$took" -lt $((3 * STORAGE_TIMEOUT * 1000)) ]
ok $? "within 3 x timeout ($took ms, timeout ${STORAGE_TIMEOUT} s)"
like "$(tail -1 "$I/y/error")" "(EIO|ETIMEDOUT|EAGAIN) write size: ." "images/y/error says why: $(tail -1 "$I/y/error")"
is "$(cat "$I/y/status")" draft "images/y is still a draft"
t0=$(now_ms)
is "$(cat "$I/a/name")" "Image A" "cat images/a/name still works"
ls "$V" > "$T/ls.out"; ok $? "ls volumes still works"
like "$(cat "$T/ls.out")" '^v$' "and lists volumes/v"
ls "$MNT/instances" >/dev/null; ok $? "ls instances still works"
like "$(ls "$I/a")" 'name' "ls images/a/ still works"
took=$(($(now_ms) - t0))
[ "$took" -lt 1000 ]; ok $? "without waiting for the cluster ($took ms)"
health=$(cat "$MNT/.epfs/health")
like "$health" '^storage down rbd .' ".epfs/health says storage down ($(grep storage <<<"$health"))"
like "$health" '^database ok' "and the database ok"
ls "$I" > "$T/ls.out" 2>"$T/err"
ok $? "ls images works"
fails_with_any "EIO|ETIMEDOUT|EAGAIN" "cat images/.unregistered fails" cat "$I/.unregistered"
fails_with_any "EIO|ETIMEDOUT|EAGAIN" "mkdir volumes/w fails (it looks for bytes to adopt)" mkdir "$V/w"
started=$(now_ms)
ceph_micro_start "$CEPH" memstore
ok $? "the cluster starts again ($(($(now_ms) - started)) ms)"
t0=$(now_ms)
write 1G "$I/y/size"; ok $? "the same echo 1G > images/y/size succeeds, without remounting ($(($(now_ms) - t0)) ms)"
is "$(rbd_size images/y)" $((1 << 30)) "rbd info images/y: 1 GiB"
like "$(cat "$MNT/.epfs/health")" 'storage ok rbd' ".epfs/health: storage ok"

# ---- the daemon mounts while the cluster is down ----

mkdir "$V/w"; ok $? "mkdir volumes/w (a draft)"
t0=$(now_ms)
epfs_umount
rc=$?
# (a daemon that takes over 5 s to exit is killed: exit status 137)
! mountpoint -q "$MNT"; ok $? "unmount (the daemon's exit status $rc, after $(($(now_ms) - t0)) ms)"
ceph_micro_stop "$CEPH"
t0=$(now_ms)
epfs_mount; ok $? "epfs mounts with the cluster down ($(($(now_ms) - t0)) ms)"
is "$(cat "$I/a/name")" "Image A" "records are served"
ls "$V" > "$T/ls.out"; is "$(tr '\n' ' ' < "$T/ls.out")" 'v w ' "ls volumes works"
ls "$I" > "$T/ls.out" 2>"$T/err"
ok $? "ls images works"
like "$(cat "$MNT/.epfs/health")" 'storage down rbd' ".epfs/health says storage down"
fails_with_any "EIO|ETIMEDOUT|EAGAIN" "echo 8M > volumes/w/size fails" write 8M "$V/w/size"
[ "$took" -lt $((3 * STORAGE_TIMEOUT * 1000)) ]
ok $? "within 3 x timeout ($took ms)"
ceph_micro_start "$CEPH" memstore
ok $? "the cluster starts"
write 8M "$V/w/size"; ok $? "echo 8M > volumes/w/size now succeeds"
is "$(rbd_size volumes/w)" $((8 << 20)) "rbd info volumes/w: 8 MiB"

done_testing
