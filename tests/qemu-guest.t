#!/bin/bash
# A real QEMU guest (TCG) through a private libvirtd with the QEMU driver: the
# infrastructure later tests boot instances with (docs/real-guests.md).
# Boots the tiny guest of scripts/tiny-guest.sh, hot-plugs a disk and a NIC and
# reads the guest's protocol lines on its serial log, takes and reverts an
# internal snapshot, and shuts it down with the ACPI power button.
#
# Installs what is missing (root, Debian).  Skips when real guests cannot run
# here (qemu_usable).  The kernel and initramfs are cached in
# $TINY_GUEST_CACHE (default /var/cache/epfs-tiny-guest).
. "$(dirname "$0")/lib.sh"
. "$EPFS_SRCDIR/scripts/tiny-guest.sh"
. "$EPFS_SRCDIR/scripts/qemu-libvirt.sh"

QEMU_GUEST_PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils cpio kmod iproute2"
LV=$T/libvirt-qemu
DOM=epfs-tiny-$$
LOG=$T/serial.log

skip_all() { echo "1..0 # SKIP $*"; rm -rf "$T"; exit 0; }

cleanup() {
	if [ -n "${QEMU_LIBVIRT_URI:-}" ]; then
		virsh -c "$QEMU_LIBVIRT_URI" destroy "$DOM" >/dev/null 2>&1
		virsh -c "$QEMU_LIBVIRT_URI" undefine --snapshots-metadata "$DOM" >/dev/null 2>&1
	fi
	qemu_libvirt_stop "$LV"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }   # secs MILLISECONDS

# wait_log REGEX SECONDS: the serial log gets a line matching REGEX
wait_log() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		grep -Eq -- "$1" "$LOG" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_count REGEX N SECONDS: the serial log gets N lines matching REGEX
wait_count() {
	local deadline=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(grep -Ec -- "$1" "$LOG" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_state STATE SECONDS
wait_state() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(virsh -c "$QEMU_LIBVIRT_URI" domstate "$DOM" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

v() { virsh -c "$QEMU_LIBVIRT_URI" "$@"; }

show_log() { sed 's/^/#   serial: /' "$LOG" 2>/dev/null | tail -15; }

# okl STATUS DESCRIPTION: ok, and the end of the serial log when it failed
okl() { ok "$1" "$2"; [ "$1" -eq 0 ] || show_log; }

[ "$(id -u)" -eq 0 ] || skip_all "needs root (libvirtd, network namespaces)"

# ---- install what is missing ----
missing=
for c in libvirtd:libvirt-daemon virsh:libvirt-clients qemu-system-x86_64:qemu-system-x86 \
	qemu-img:qemu-utils cpio:cpio modinfo:kmod depmod:kmod ip:iproute2; do
	PATH=$PATH:/usr/sbin:/sbin command -v "${c%%:*}" >/dev/null 2>&1 || missing="$missing ${c#*:}"
done
ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
	missing="$missing libvirt-daemon-driver-qemu"
if [ -n "$missing" ]; then
	diag "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $QEMU_GUEST_PACKAGES \
		>"$T/apt.log" 2>&1 ||
		{ apt-get update -q >>"$T/apt.log" 2>&1 &&
		  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $QEMU_GUEST_PACKAGES \
			>>"$T/apt.log" 2>&1; } ||
		{ sed 's/^/# /' "$T/apt.log" | tail -10; skip_all "cannot install $QEMU_GUEST_PACKAGES"; }
fi
export PATH=$PATH:/usr/sbin:/sbin

qemu_usable 2>"$T/usable.log" || skip_all "no real QEMU guests here: $(head -1 "$T/usable.log")"

# ---- the tiny guest ----
t0=$(now_ms)
tiny_guest_build "$TINY_GUEST_CACHE" 2>"$T/build.log"
ok $? "the tiny guest builds from Debian packages"
[ -s "$TINY_GUEST_CACHE/vmlinuz" ] && [ -s "$TINY_GUEST_CACHE/initrd.img" ] ||
	{ sed 's/^/# /' "$T/build.log"; echo "Bail out! no tiny guest"; cleanup; exit 1; }
diag "tiny guest: $(cat "$TINY_GUEST_CACHE/kernel-version"), $(secs $(($(now_ms) - t0))) s to build or find"
t0=$(now_ms)
tiny_guest_build "$TINY_GUEST_CACHE"
[ $(($(now_ms) - t0)) -lt 1000 ]; ok $? "a second build returns at once (cached)"

# ---- the daemon ----
trap cleanup EXIT
t0=$(now_ms)
qemu_libvirt_start "$LV"; ok $? "a private libvirtd with the QEMU driver starts"
diag "libvirtd up in $(secs $(($(now_ms) - t0))) s, netns '${QEMU_LIBVIRT_NETNS}'"
qemu_libvirt_start "$LV"; ok $? "starting it again is a no-op"
like "$(v uri 2>&1)" "^qemu:///system" "it serves qemu:///system on $LV/libvirt-sock"
like "$(v domcapabilities --virttype qemu 2>&1)" "<domain>qemu</domain>" "with TCG (type='qemu')"

# ---- define and start ----
qemu-img create -q -f qcow2 "$T/root.qcow2" 16M
truncate -s 1M "$T/extra.raw"
NIC_TYPE=user
[ -n "$QEMU_LIBVIRT_NETNS" ] && NIC_TYPE=bridge
if [ $NIC_TYPE = bridge ]; then
	NIC_XML="<interface type='bridge'><mac address='52:54:00:e9:f5:01'/><source bridge='$QEMU_LIBVIRT_BRIDGE'/><model type='virtio'/></interface>"
else
	NIC_XML="<interface type='user'><mac address='52:54:00:e9:f5:01'/><model type='virtio'/></interface>"
fi
echo "$NIC_XML" > "$T/nic.xml"
cat > "$T/disk.xml" <<XML
<disk type='file' device='disk'>
  <driver name='qemu' type='raw'/>
  <source file='$T/extra.raw'/>
  <target dev='vdb' bus='virtio'/>
  <serial>epfs-extra</serial>
</disk>
XML
cat > "$T/domain.xml" <<XML
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$TINY_GUEST_CACHE/vmlinuz</kernel>
    <initrd>$TINY_GUEST_CACHE/initrd.img</initrd>
    <cmdline>$TINY_GUEST_CMDLINE</cmdline>
  </os>
  <!-- acpi: the power button and PCI hot-plug; a 16 MiB TCG translation
       cache instead of QEMU's default saves ~40 MiB per guest -->
  <features>
    <acpi/>
    <tcg><tb-cache unit='MiB'>16</tb-cache></tcg>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$T/root.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>epfs-root</serial>
    </disk>
    <!-- append: a snapshot revert restarts QEMU (-loadvm), which would
         truncate the log otherwise -->
    <serial type='pty'>
      <log file='$LOG' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
XML
v define "$T/domain.xml" >/dev/null; ok $? "define a type='qemu' domain with direct kernel boot"
t0=$(now_ms)
v start "$DOM" >/dev/null; ok $? "start it"
t_run=$(($(now_ms) - t0))
is "$(v domstate "$DOM" 2>&1)" running "it runs"
wait_log "^EPFS-GUEST READY" 60; okl $? "the guest says READY on its serial log"
diag "start: $(secs $t_run) s to running, $(secs $(($(now_ms) - t0))) s to READY"
like "$(cat "$LOG")" "EPFS-GUEST DISK vda 16777216 epfs-root" "and lists its root disk with size and serial"
qpid=$(cat "$LV/run/qemu/$DOM.pid" 2>/dev/null)
if [ -n "$qpid" ] && [ -r "/proc/$qpid/stat" ]; then
	diag "QEMU at READY: $(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$qpid/stat") CPU-seconds," \
		"$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$qpid/status") MiB resident"
fi

# ---- disk hot-plug ----
t0=$(now_ms)
v attach-device "$DOM" "$T/disk.xml" --live --config >/dev/null; ok $? "attach a disk, live"
t_cmd=$(($(now_ms) - t0))
wait_log "^EPFS-GUEST DISK\\+ vd[a-z]+ 1048576 epfs-extra" 20; okl $? "the guest sees DISK+"
diag "disk attach: $(secs $t_cmd) s for virsh, $(secs $(($(now_ms) - t0))) s to DISK+"
t0=$(now_ms)
v detach-device "$DOM" "$T/disk.xml" --live --config >/dev/null; ok $? "detach it"
t_cmd=$(($(now_ms) - t0))
wait_log "^EPFS-GUEST DISK- vd[a-z]+ epfs-extra" 20; okl $? "the guest sees DISK-"
diag "disk detach: $(secs $t_cmd) s for virsh, $(secs $(($(now_ms) - t0))) s to DISK-"

# ---- NIC hot-plug ----
t0=$(now_ms)
v attach-device "$DOM" "$T/nic.xml" --live --config >/dev/null; ok $? "attach a NIC (type='$NIC_TYPE'), live"
t_cmd=$(($(now_ms) - t0))
wait_log "^EPFS-GUEST NIC\\+ [a-z0-9]+ 52:54:00:e9:f5:01" 20; okl $? "the guest sees NIC+"
diag "NIC attach: $(secs $t_cmd) s for virsh, $(secs $(($(now_ms) - t0))) s to NIC+"
if [ -n "$QEMU_LIBVIRT_NETNS" ]; then
	like "$(qemu_libvirt_exec "$LV" ip -o link show master "$QEMU_LIBVIRT_BRIDGE" 2>&1)" "vnet" \
		"its tap is on the bridge, in the daemon's network namespace"
fi
t0=$(now_ms)
v detach-device "$DOM" "$T/nic.xml" --live --config >/dev/null; ok $? "detach it"
t_cmd=$(($(now_ms) - t0))
wait_log "^EPFS-GUEST NIC- [a-z0-9]+ 52:54:00:e9:f5:01" 20; okl $? "the guest sees NIC-"
diag "NIC detach: $(secs $t_cmd) s for virsh, $(secs $(($(now_ms) - t0))) s to NIC-"

# ---- internal snapshot ----
t0=$(now_ms)
v snapshot-create-as "$DOM" s1 >/dev/null; ok $? "take an internal snapshot (qcow2 root disk)"
diag "snapshot: $(secs $(($(now_ms) - t0))) s"
is "$(v snapshot-list "$DOM" --name 2>&1 | sed '/^$/d')" s1 "it is listed"
t0=$(now_ms)
v snapshot-revert "$DOM" s1 >/dev/null; ok $? "revert to it"
diag "revert: $(secs $(($(now_ms) - t0))) s"
is "$(v domstate "$DOM" 2>&1)" running "the guest runs after the revert"
t0=$(now_ms)
v attach-device "$DOM" "$T/disk.xml" --live >/dev/null &&
	wait_count "^EPFS-GUEST DISK\\+ vd[a-z]+ 1048576 epfs-extra" 2 20
okl $? "and it still answers hot-plug"
v detach-device "$DOM" "$T/disk.xml" --live >/dev/null &&
	wait_count "^EPFS-GUEST DISK- vd[a-z]+ epfs-extra" 2 20
okl $? "and unplug"

# ---- ACPI shutdown ----
t0=$(now_ms)
v shutdown "$DOM" >/dev/null; ok $? "virsh shutdown"
if wait_state "shut off" 20; then
	ok 0 "the guest powers off on the ACPI button"
else
	ok 1 "the guest powers off on the ACPI button"
	show_log
	v destroy "$DOM" >/dev/null 2>&1
fi
diag "shutdown: $(secs $(($(now_ms) - t0))) s to shut off"
like "$(tail -3 "$LOG")" "EPFS-GUEST POWEROFF" "after saying POWEROFF"

v undefine --snapshots-metadata "$DOM" >/dev/null; ok $? "undefine it with its snapshots"
qemu_libvirt_stop "$LV"; ok $? "stop the daemon"
! pgrep -f "guest=$DOM" >/dev/null; ok $? "no QEMU process is left"
if [ -n "$QEMU_LIBVIRT_NETNS" ]; then
	! ip netns list | grep -q "^$QEMU_LIBVIRT_NETNS\\b"; ok $? "its network namespace is gone"
fi
done_testing
