#!/bin/bash
# A real QEMU guest (TCG) booted THROUGH THE MOUNT with the rbd storage
# backend: a memstore micro Ceph cluster (scripts/ceph-micro.sh), a private
# QEMU libvirtd, epfs with [storage] backend=rbd.  The root disk is an RBD
# clone (raw: no snapshots here); a volume is hot-plugged by symlink as an
# RBD network disk, and the guest reports it (and its removal) on its serial
# console, read back through instances/<id>/console.log.  docs/real-guests.md
# explains it.
#
# QEMU's rbd driver connects to the monitor on 127.0.0.1: a QEMU in a private
# network namespace would reach its own loopback, not the cluster's.  So this
# test's QEMU libvirtd runs WITHOUT a network namespace (no bridge NIC steps).
#
# Skips without root, when real guests cannot run here (qemu_usable), when
# QEMU has no rbd driver (qemu-block-extra), or without the Ceph daemons.
. "$(dirname "$0")/lib.sh"
. "$EPFS_SRCDIR/scripts/tiny-guest.sh"
. "$EPFS_SRCDIR/scripts/qemu-libvirt.sh"
export PATH=$PATH:/usr/sbin:/sbin

CACHE=${EPFS_TINY_GUEST_CACHE:-$TINY_GUEST_CACHE}
LV=$T/libvirt-qemu
CEPH=$T/ceph
I=$MNT/instances/g1
CONSOLE=$I/console.log
export EPFS_SHUTDOWN_TIMEOUT=${EPFS_SHUTDOWN_TIMEOUT:-20}

skip_all() { echo "1..0 # SKIP $*"; rm -rf "$T"; exit 0; }

[ "$(id -u)" -eq 0 ] || skip_all "needs root (libvirtd, FUSE)"
for cmd in ceph-mon ceph-osd monmaptool ceph rbd rados virsh xmllint qemu-img; do
	command -v "$cmd" >/dev/null || skip_all "$cmd is missing"
done
qemu_usable 2>"$T/usable.log" || skip_all "no real QEMU guests here: $(head -1 "$T/usable.log")"
qemu-img --help 2>/dev/null | grep -qw rbd || skip_all "QEMU has no rbd driver (install qemu-block-extra)"
. "$EPFS_SRCDIR/scripts/ceph-micro.sh"

# ---- teardown: epfs (lib.sh's teardown), then QEMU, then the cluster ----
# QEMU holds RBD images open: it goes before the cluster
eval "_lib_epfs_teardown() $(declare -f epfs_teardown | tail -n +2)"
epfs_teardown() {
	local keep=${KEEP_TMP:-}
	KEEP_TMP=1 _lib_epfs_teardown
	qemu_libvirt_stop "$LV"
	ceph_micro_stop "$CEPH"
	[ -n "$keep" ] || rm -rf "$T"
}
trap epfs_teardown EXIT

# lib.sh's configuration with the dir backend's [storage] replaced by rbd
eval "_lib_write_config() $(declare -f write_config | tail -n +2)"
write_config() {
	_lib_write_config
	awk '/^\[/ { skip = ($0 == "[storage]") } !skip' "$EPFS_CONF" > "$EPFS_CONF.new"
	cat >> "$EPFS_CONF.new" <<CONF

[storage]
backend=rbd
ceph_conf=$CEPH/ceph.conf
image_pool=images
volume_pool=volumes
timeout=10
CONF
	mv "$EPFS_CONF.new" "$EPFS_CONF"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
since() { secs $(($(now_ms) - $1)); }
v() { virsh -q -c "$QEMU_LIBVIRT_URI" "$@" 2>&1; }
rbdc() { timeout 30 rbd -c "$CEPH/ceph.conf" "$@" 2>&1; }
console() { tr -d '\r' < "$CONSOLE" 2>/dev/null; }

# wait_console REGEX SECONDS: console.log has a line matching REGEX
wait_console() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		console | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
wait_domstate() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(v domstate g1)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
show_console() { console | tail -15 | sed 's/^/#   console: /'; }
okc() { ok "$1" "$2"; [ "$1" -eq 0 ] || show_console; }
show_error() { tail -3 "$1/error" 2>/dev/null | sed 's/^/#   error: /'; }

t0=$(now_ms)
tiny_guest_build "$CACHE" 2>"$T/build.log" ||
	skip_all "cannot build the tiny guest: $(tail -1 "$T/build.log")"
KERNEL=$CACHE/vmlinuz
INITRD=$CACHE/initrd.img

# ---- the cluster, then the QEMU libvirtd (no netns), then epfs ----
t0=$(now_ms)
ceph_micro_start "$CEPH" memstore 2>"$T/ceph-start.log"
rc=$?
ok $rc "a memstore micro cluster starts ($(since $t0) s)"
[ $rc -eq 0 ] || { sed 's/^/# /' "$T/ceph-start.log"; echo "Bail out! no Ceph cluster"; exit 1; }
PORT=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CEPH/ceph.conf")

# qemu_libvirt_start puts the daemon in a network namespace of its own when
# `ip netns` works; here it must not: `ip netns` fails for that one call
ip() { [ "$1" = netns ] && return 1; command ip "$@"; }
qemu_libvirt_start "$LV" 2>"$T/qemu-libvirt.log"
rc=$?
unset -f ip
[ $rc -eq 0 ] ||
	{ sed 's/^/# /' "$T/qemu-libvirt.log"; echo "Bail out! the QEMU libvirtd does not start"; exit 1; }
is "$QEMU_LIBVIRT_NETNS" "" "the QEMU libvirtd runs in the host's network namespace"
epfs_setup
trap epfs_teardown EXIT
like "$(cat "$MNT/.epfs/health")" 'storage ok rbd' "epfs with backend=rbd: storage ok"
like "$(v domcapabilities --virttype qemu)" "<domain>qemu</domain>" "the QEMU libvirtd offers TCG"

# ---- host, image, instance ----
mkdir "$MNT/hosts/q1" && write "$QEMU_LIBVIRT_URI" "$MNT/hosts/q1/uri"; ok $? "host q1 is the QEMU libvirtd"
is "$(cat "$MNT/hosts/q1/state")" up "the host is up"
mkdir "$MNT/images/tiny" && write 64M "$MNT/images/tiny/size" &&
	write "$KERNEL" "$MNT/images/tiny/kernel" && write "$INITRD" "$MNT/images/tiny/initrd" &&
	write "$TINY_GUEST_CMDLINE" "$MNT/images/tiny/cmdline"
ok $? "images/tiny: 64M, the tiny guest's kernel, initrd and cmdline"
is "$(cat "$MNT/images/tiny/status")" available "the image is available"
like "$(rbdc ls images)" '^tiny$' "rbd ls images: tiny"

mkdir "$I" && ln -s ../../images/tiny "$I/image" && write 128M "$I/memory"; ok $? "instance g1 of tiny, 128M"
t0=$(now_ms)
write running "$I/state"
rc=$?; ok $rc "echo running > state"
[ $rc -eq 0 ] || show_error "$I"
is "$(v domstate g1)" running "virsh: g1 runs"
like "$(rbdc info volumes/g1.root)" 'parent: images/tiny@epfs-base' "its root disk volumes/g1.root is a clone"
v dumpxml g1 > "$T/g1.xml"
disk() { xmllint --xpath "string(/domain/devices/disk[target/@dev='$1']/$2)" "$T/g1.xml" 2>/dev/null; }
is "$(disk vda @type) $(disk vda source/@protocol) $(disk vda source/@name)" "network rbd volumes/g1.root" \
	"virsh dumpxml: vda is a network disk, protocol rbd, volumes/g1.root"
is "$(disk vda source/host/@name):$(disk vda source/host/@port)" "127.0.0.1:$PORT" "naming the monitor"
wait_console "^EPFS-GUEST READY" 120; okc $? "console.log (through the mount) says EPFS-GUEST READY"
diag "$(since $t0) s from echo running to READY"
like "$(console)" "EPFS-GUEST DISK vda 67108864 root" "the guest reads its 64M RBD root disk, serial 'root'"

# ---- a volume (an RBD image), hot-plugged by symlink ----
mkdir "$MNT/volumes/v1" && write 16M "$MNT/volumes/v1/size"; ok $? "mkdir volumes/v1, 16M"
like "$(rbdc ls volumes)" '^v1$' "rbd ls volumes: v1"
t0=$(now_ms)
ln -s ../../../volumes/v1 "$I/volumes/v1"
rc=$?; ok $rc "ln -s ../../../volumes/v1 instances/g1/volumes/v1"
[ $rc -eq 0 ] || show_error "$I"
wait_console "^EPFS-GUEST DISK\\+ vd[a-z]+ 16777216 v1\$" 30; okc $? "the guest sees DISK+ ... v1 (the serial is the volume id)"
diag "volume attach: $(since $t0) s to DISK+"
is "$(cat "$MNT/volumes/v1/status")" in-use "the volume is in-use"
v dumpxml g1 > "$T/g1.xml"
is "$(disk vdb @type) $(disk vdb source/@protocol) $(disk vdb source/@name)" "network rbd volumes/v1" \
	"virsh dumpxml (live): vdb is a network disk, protocol rbd, volumes/v1"
is "$(disk vdb serial)" v1 "with serial v1"
t0=$(now_ms)
rm "$I/volumes/v1"
rc=$?; ok $rc "rm instances/g1/volumes/v1"
[ $rc -eq 0 ] || show_error "$I"
wait_console "^EPFS-GUEST DISK- vd[a-z]+ v1\$" 30; okc $? "the guest sees DISK- ... v1"
diag "volume detach: $(since $t0) s to DISK-"
is "$(cat "$MNT/volumes/v1/status")" available "the volume is available again"
! v domblklist g1 | grep -q vdb; ok $? "virsh: vdb is gone"

# ---- shutdown, rmdir ----
write shutoff "$I/state"
rc=$?; ok $rc "echo shutoff > state"
[ $rc -eq 0 ] || show_error "$I"
wait_domstate "shut off" 40; okc $? "virsh: g1 is shut off"
rmdir "$I"
rc=$?; ok $rc "rmdir instances/g1"
[ $rc -eq 0 ] || show_error "$I"
! v dominfo g1 >/dev/null; ok $? "virsh: the domain is gone"
! rbdc ls volumes | grep -qx g1.root; ok $? "rbd: the clone volumes/g1.root is removed"
rmdir "$MNT/volumes/v1"; ok $? "rmdir volumes/v1"
! rbdc ls volumes | grep -qx v1; ok $? "rbd: volumes/v1 is removed"

done_testing
