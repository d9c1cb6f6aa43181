#!/bin/bash
# scripts/tiny-guest.sh: build a tiny real guest (kernel + initramfs) from
# Debian packages only, for tests that boot real QEMU domains.
#
#   . scripts/tiny-guest.sh
#   tiny_guest_build CACHE_DIR     # -> CACHE_DIR/vmlinuz, CACHE_DIR/initrd.img
#   echo "$TINY_GUEST_CMDLINE"     # the kernel command line the guest needs
#
# or run it:  scripts/tiny-guest.sh [CACHE_DIR]   (default $TINY_GUEST_CACHE)
#
# The kernel is Debian's cloud kernel (linux-image-*-cloud-amd64 of the
# release apt is set up for), the initramfs is busybox-static, the virtio
# modules (and their dependencies), the ACPI button and evdev modules, and an
# /init that speaks a line protocol on ttyS0 (docs/real-guests.md):
#
#   EPFS-GUEST DISK vda 16777216 [SERIAL] once per disk, just before READY
#   EPFS-GUEST NIC eth0 52:54:00:12:34:56 once per NIC, just before READY
#   EPFS-GUEST READY
#   EPFS-GUEST DISK+ vdb 1048576 [SERIAL] a disk appeared (size in bytes)
#   EPFS-GUEST DISK~ vdb 2097152 [SERIAL] a disk changed size
#   EPFS-GUEST DISK- vdb [SERIAL]         a disk went away
#   EPFS-GUEST NIC+ eth1 52:54:00:...     a NIC appeared
#   EPFS-GUEST NIC- eth1 52:54:00:...     a NIC went away
#   EPFS-GUEST POWEROFF                   the ACPI power button was pressed
#
# SERIAL is the disk's <serial> (virtio-blk keeps 20 characters), when set.
#
# A second call with both outputs present returns at once (a cache made by
# another version of this file is rebuilt); concurrent calls on one CACHE_DIR
# are serialised with flock.  Needs root (apt-get download
# into a writable directory), dpkg-deb, depmod/modinfo (kmod), cpio, gzip.

TINY_GUEST_CACHE=${TINY_GUEST_CACHE:-/var/cache/epfs-tiny-guest}
# console on the first serial port; no_timer_check: TCG's timer is too slow
# for the kernel's IO-APIC timer check; panic=-1: reboot at once on a panic;
# quiet: keep kernel messages from cutting into the protocol lines;
# mitigations=off: a throw-away guest, and TCG boots it ~30% faster.
TINY_GUEST_CMDLINE="console=ttyS0 no_timer_check panic=-1 quiet mitigations=off"
TINY_GUEST_MODULES="virtio_pci virtio_blk virtio_net button evdev"
# a cache built by another version of this script is rebuilt
_TG_STAMP=$(cksum < "${BASH_SOURCE[0]}" | cut -d' ' -f1)

# _tg_stamp: what a cache must have been built with
_tg_stamp() { echo "$_TG_STAMP"; }

# _tg_cached CACHE_DIR: the outputs are there and up to date
_tg_cached() {
	[ -s "$1/vmlinuz" ] && [ -s "$1/initrd.img" ] &&
		[ "$(cat "$1/stamp" 2>/dev/null)" = "$(_tg_stamp)" ]
}

# _tg_kernel_package: the versioned cloud kernel package of this release
_tg_kernel_package() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -1
}

# _tg_modules KROOT KVER MODULE...: the modules and their dependencies, as
# paths under KROOT, in a load order (dependencies first)
_tg_modules() {
	local root=$1 kver=$2 m d
	shift 2
	local -A seen=()
	_tg_visit() {
		local m=$1 d
		m=${m//-/_}
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		for d in $(modinfo -b "$root" -k "$kver" -F depends "$m" | tr ',' ' '); do
			_tg_visit "$d" || return 1
		done
		modinfo -b "$root" -k "$kver" -n "$m" || return 1
	}
	for m in "$@"; do
		_tg_visit "$m" || return 1
	done
}

# _tg_write_init ROOT: ROOT/init and its helper
_tg_write_init() {
	cat > "$1/init" <<'INIT'
#!/bin/sh
# /init of the epfs tiny guest: see docs/real-guests.md for the protocol.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# only emergencies on the console from now on: the protocol lines stay whole
echo 1 > /proc/sys/kernel/printk
for m in $(cat /lib/modules/load-order); do
	insmod "/lib/modules/$m" || echo "EPFS-GUEST ERROR insmod $m"
done
exec < /dev/null > /dev/ttyS0 2>&1
ip link set lo up 2>/dev/null

# Power button: every "Power Button" input device gets a reader; the first
# event it delivers (the key press, 24 bytes on x86_64) powers off.
for dev in /sys/class/input/input*; do
	read -r name 2>/dev/null < "$dev/name" || continue
	[ "$name" = "Power Button" ] || continue
	for ev in "$dev"/event*; do
		[ -e "$ev" ] || continue
		(
			dd if="/dev/input/${ev##*/}" of=/dev/null bs=24 count=1 2>/dev/null &&
				{ echo "EPFS-GUEST POWEROFF"; sync; poweroff -f; }
		) &
	done
done

# disks: "name bytes [serial]" lines; NICs: "name mac" lines
disks() {
	local d s id
	for d in /sys/block/vd*; do
		[ -e "$d/size" ] || continue
		read -r s 2>/dev/null < "$d/size" || continue
		id=
		[ -r "$d/serial" ] && read -r id 2>/dev/null < "$d/serial"
		echo "${d##*/} $((s * 512))${id:+ $id}"
	done
}
nics() {
	local d a
	for d in /sys/class/net/*; do
		[ "${d##*/}" = lo ] && continue
		read -r a 2>/dev/null < "$d/address" || continue
		echo "${d##*/} $a"
	done
}
# changes KIND OLD NEW: one protocol line per name that appeared, changed or
# went away; a disk that went away is told with its serial, a NIC with its MAC
changes() {
	local kind=$1 old=$2 new=$3 n v ov
	echo "$new" | while read -r n v; do
		[ -n "$n" ] || continue
		ov=$(echo "$old" | sed -n "s/^$n //p")
		if [ -z "$ov" ]; then
			echo "EPFS-GUEST $kind+ $n $v"
		elif [ "$ov" != "$v" ]; then
			echo "EPFS-GUEST $kind~ $n $v"
		fi
	done
	echo "$old" | while read -r n v; do
		[ -n "$n" ] || continue
		echo "$new" | grep -q "^$n " && continue
		[ "$kind" = DISK ] && v=$(echo "$v" | sed 's/^[0-9]* *//')
		echo "EPFS-GUEST $kind- $n${v:+ $v}"
	done
}
# fixed-feature power button presses since boot (counted once the button
# module is in): a fallback for the readers above
pwr() {
	PWR=0
	read -r PWR _ 2>/dev/null < /sys/firmware/acpi/interrupts/ff_pwr_btn
}

# Hot-plug: the kernel's uevents (busybox uevent runs /bin/epfs-uevent for
# each) wake the loop through a FIFO; after an event it rescans every 0.2 s
# for 2 s (a removal is announced before sysfs lets go of the device), and
# otherwise every 2 s, so an idle guest costs little CPU.
mkdir -p /run
mkfifo /run/uevents
exec 3<>/run/uevents
uevent /bin/epfs-uevent &

D=$(disks)
N=$(nics)
echo "$D" | while read -r n v; do [ -n "$n" ] && echo "EPFS-GUEST DISK $n $v"; done
echo "$N" | while read -r n v; do [ -n "$n" ] && echo "EPFS-GUEST NIC $n $v"; done
echo "EPFS-GUEST READY"
fast=0
while :; do
	if [ $fast -gt 0 ]; then
		fast=$((fast - 1))
		t=0.2
	else
		t=2
	fi
	read -t $t -r ev <&3 && fast=10
	D2=$(disks)
	N2=$(nics)
	[ "$D2" = "$D" ] || { changes DISK "$D" "$D2"; D=$D2; }
	[ "$N2" = "$N" ] || { changes NIC "$N" "$N2"; N=$N2; }
	pwr
	if [ "$PWR" != 0 ]; then
		# pressed before the readers above were ready
		echo "EPFS-GUEST POWEROFF"
		sync
		poweroff -f
	fi
done
INIT
	chmod 755 "$1/init"
	cat > "$1/bin/epfs-uevent" <<'UEVENT'
#!/bin/sh
# run by busybox uevent for each kernel uevent: wake /init's loop
case $SUBSYSTEM in
block|net) echo "$ACTION $SUBSYSTEM $DEVPATH" > /run/uevents ;;
esac
UEVENT
	chmod 755 "$1/bin/epfs-uevent"
}

# tiny_guest_build CACHE_DIR: make CACHE_DIR/vmlinuz and CACHE_DIR/initrd.img
tiny_guest_build() {
	local cache=${1:-$TINY_GUEST_CACHE} rc
	_tg_cached "$cache" && return 0
	mkdir -p "$cache" || return 1
	cache=$(cd "$cache" && pwd) || return 1
	(
		flock 9 || exit 1
		# another build may have finished while this one waited
		_tg_cached "$cache" && exit 0
		_tg_build_locked "$cache"
	) 9>"$cache/.lock"
	rc=$?
	return $rc
}

# _tg_fail MESSAGE: say it on stderr and fail (in the build's subshell)
_tg_fail() { echo "tiny-guest: $*" >&2; exit 1; }

_tg_build_locked() {
	local cache=$1 work rc
	work=$(mktemp -d "$cache/.build.XXXXXX") || return 1
	# every step checks its status: set -e would be ignored here when the
	# caller tests tiny_guest_build's status (tiny_guest_build || ...)
	(
		local pkg kver root m mods
		cd "$work" || exit 1
		pkg=$(_tg_kernel_package)
		if [ -z "$pkg" ]; then
			apt-get update -qq >apt-update.log 2>&1 || { cat apt-update.log >&2; _tg_fail "apt-get update failed"; }
			pkg=$(_tg_kernel_package)
		fi
		[ -n "$pkg" ] || _tg_fail "no linux-image-cloud-amd64 in apt's lists"
		if ! apt-get download -q -o APT::Sandbox::User=root "$pkg" busybox-static >download.log 2>&1; then
			# the lists may be older than the archive: refresh once
			rm -f ./*.deb
			apt-get update -qq >apt-update.log 2>&1
			pkg=$(_tg_kernel_package)
			apt-get download -q -o APT::Sandbox::User=root "$pkg" busybox-static >download.log 2>&1 ||
				{ cat download.log >&2; _tg_fail "apt-get download $pkg busybox-static failed"; }
		fi
		dpkg-deb -x "$pkg"_*.deb k || _tg_fail "cannot unpack $pkg"
		dpkg-deb -x busybox-static_*.deb bb || _tg_fail "cannot unpack busybox-static"
		kver=${pkg#linux-image-}
		[ -d "k/lib/modules/$kver" ] || _tg_fail "no modules for $kver in $pkg"
		[ -s "k/boot/vmlinuz-$kver" ] || _tg_fail "no vmlinuz-$kver in $pkg"
		depmod -b k "$kver" || _tg_fail "depmod failed"

		root=$work/root
		mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,lib/modules,etc} || exit 1
		cp bb/bin/busybox "$root/bin/busybox" || exit 1
		for m in $("$root/bin/busybox" --list); do
			[ "$m" = busybox ] || ln -sf busybox "$root/bin/$m" || exit 1
		done
		mods=$(_tg_modules "$work/k" "$kver" $TINY_GUEST_MODULES) || _tg_fail "module dependencies"
		: > "$root/lib/modules/load-order"
		for m in $mods; do
			case $m in *.ko) ;; *) _tg_fail "$m is compressed (busybox insmod wants .ko)" ;; esac
			cp "$m" "$root/lib/modules/" || exit 1
			echo "${m##*/}" >> "$root/lib/modules/load-order"
		done
		_tg_write_init "$root" || exit 1
		(cd "$root" && find . | sort | cpio -o -H newc -R 0:0 --quiet) > initrd.cpio || _tg_fail "cpio failed"
		gzip -9 < initrd.cpio > initrd.img || exit 1
		cp "k/boot/vmlinuz-$kver" vmlinuz || exit 1
		echo "$kver" > kernel-version
		rm -f "$cache/stamp"
		mv initrd.img "$cache/initrd.img" &&
			mv kernel-version "$cache/kernel-version" &&
			mv vmlinuz "$cache/vmlinuz" &&
			_tg_stamp > "$cache/stamp"
	)
	rc=$?
	rm -rf "$work"
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	tiny_guest_build "${1:-$TINY_GUEST_CACHE}" || exit 1
	c=${1:-$TINY_GUEST_CACHE}
	echo "kernel:  $c/vmlinuz ($(cat "$c/kernel-version" 2>/dev/null))"
	echo "initrd:  $c/initrd.img"
	echo "cmdline: $TINY_GUEST_CMDLINE"
fi
