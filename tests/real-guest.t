#!/bin/bash
# A real QEMU guest (TCG) booted THROUGH THE MOUNT: a host on a private
# libvirtd with the QEMU driver, an image that is the tiny guest's kernel,
# initrd and command line, an instance started with `echo running > state`,
# a volume and a NIC hot-plugged by symlink (the guest reports them on its
# serial console, read back through instances/<id>/console.log), an internal
# snapshot and its revert, an ACPI shutdown, and rmdir.  Every step is also
# checked with virsh on the daemon.  Then, once g1 is gone, a student's
# environment: a template over the same image, a course, a published
# experiment; the student (a real Unix user) enters it, the guest boots,
# progress.csv shows her running, and she stops it.  docs/real-guests.md
# explains it.
#
# Skips when real guests cannot run here (qemu_usable), or without root.  The
# kernel and initramfs are cached in $EPFS_TINY_GUEST_CACHE (default
# $TINY_GUEST_CACHE, /var/cache/epfs-tiny-guest).  One guest only.
. "$(dirname "$0")/lib.sh"
. "$EPFS_SRCDIR/scripts/tiny-guest.sh"
. "$EPFS_SRCDIR/scripts/qemu-libvirt.sh"
export PATH=$PATH:/usr/sbin:/sbin

CACHE=${EPFS_TINY_GUEST_CACHE:-$TINY_GUEST_CACHE}
LV=$T/libvirt-qemu
I=$MNT/instances/g1
# the domain the console and state helpers watch, and its console through the mount
DOM=g1
CONSOLE=$I/console.log
# epfs's ACPI shutdown waits this long before it destroys the domain: long
# enough that the guest's own power-off is what the test sees
export EPFS_SHUTDOWN_TIMEOUT=${EPFS_SHUTDOWN_TIMEOUT:-20}

skip_all() { echo "1..0 # SKIP $*"; rm -rf "$T"; exit 0; }

# ---- teardown: epfs first (lib.sh's own teardown), then the QEMU libvirtd ----
# epfs_setup installs `trap epfs_teardown EXIT`, also when it bails out, so the
# daemon is stopped from inside epfs_teardown; $T goes only after both.
eval "_lib_epfs_teardown() $(declare -f epfs_teardown | tail -n +2)"
epfs_teardown() {
	local keep=${KEEP_TMP:-}
	KEEP_TMP=1 _lib_epfs_teardown
	qemu_libvirt_stop "$LV"
	[ -n "$keep" ] || rm -rf "$T"
}

# the storage pool clones root disks as qcow2 overlays: internal snapshots
# of a running domain need every disk to be qcow2
eval "_lib_write_config() $(declare -f write_config | tail -n +2)"
write_config() {
	_lib_write_config
	sed -i "s|^path=$STORAGE\$|&\\nclone_format=qcow2|" "$EPFS_CONF"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }   # secs MILLISECONDS
since() { secs $(($(now_ms) - $1)); }                           # since START_MS

v() { virsh -q -c "$QEMU_LIBVIRT_URI" "$@" 2>&1; }

# the console through the mount: a fresh open each time serves the log as it
# is; the guest's tty writes CRLF
console() { tr -d '\r' < "$CONSOLE" 2>/dev/null; }

# wait_console REGEX SECONDS [N]: console.log gets N (default 1) lines matching
# REGEX; RAW_MS is when the host's log file (what QEMU writes) had them, for
# comparison (0 if never seen)
wait_console() {
	local deadline=$(($(now_ms) + $2 * 1000)) n=${3:-1}
	RAW_MS=0
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ $RAW_MS -eq 0 ] && [ "$(tr -d '\r' < "$T/console/$DOM.log" 2>/dev/null | grep -Ec -- "$1")" -ge "$n" ] &&
			RAW_MS=$(now_ms)
		[ "$(console | grep -Ec -- "$1")" -ge "$n" ] && { [ $RAW_MS -ne 0 ] || RAW_MS=$(now_ms); return 0; }
		sleep 0.05
	done
	return 1
}
# raw START_MS: when the host's file had the line, relative to START_MS
raw() { [ "$RAW_MS" -gt 0 ] && secs $((RAW_MS - $1)) || echo "-"; }

# wait_domstate STATE SECONDS: virsh says STATE of $DOM
wait_domstate() {
	local deadline=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(v domstate "$DOM")" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

show_console() { console | tail -15 | sed 's/^/#   console: /'; }
# okc STATUS DESCRIPTION: ok, and the end of the console when it failed
okc() { ok "$1" "$2"; [ "$1" -eq 0 ] || show_console; }
# tell what went wrong on the epfs side of a failed write
show_error() { tail -3 "$1/error" 2>/dev/null | sed 's/^/#   error: /'; }

[ "$(id -u)" -eq 0 ] || skip_all "needs root (libvirtd, FUSE, network namespaces)"
qemu_usable 2>"$T/usable.log" || skip_all "no real QEMU guests here: $(head -1 "$T/usable.log")"
t0=$(now_ms)
tiny_guest_build "$CACHE" 2>"$T/build.log" ||
	skip_all "cannot build the tiny guest: $(tail -1 "$T/build.log")"
KERNEL=$CACHE/vmlinuz
INITRD=$CACHE/initrd.img
diag "tiny guest $(cat "$CACHE/kernel-version" 2>/dev/null) in $CACHE ($(since $t0) s to build or find)"

# ---- the QEMU libvirtd first: its mount namespace must not hold the FUSE mount ----
t0=$(now_ms)
qemu_libvirt_start "$LV" 2>"$T/qemu-libvirt.log" ||
	{ sed 's/^/# /' "$T/qemu-libvirt.log"; qemu_libvirt_stop "$LV"; echo "Bail out! the QEMU libvirtd does not start"; rm -rf "$T"; exit 1; }
diag "QEMU libvirtd up in $(since $t0) s, netns '${QEMU_LIBVIRT_NETNS}'"
epfs_setup
ok 0 "a QEMU libvirtd, then epfs with clone_format=qcow2"
like "$(v uri)" "^qemu:///system" "virsh reaches the QEMU libvirtd"
# a new daemon probes QEMU's capabilities (~4 s) on its first define: pay that
# here, so that the start below measures what epfs and libvirt do per instance
t0=$(now_ms)
like "$(v domcapabilities --virttype qemu)" "<domain>qemu</domain>" "it offers TCG (type='qemu')"
diag "the daemon's first QEMU capabilities probe: $(since $t0) s"

# ---- a host, an image that boots by direct kernel boot ----
mkdir "$MNT/hosts/q1"; ok $? "mkdir hosts/q1"
write "$QEMU_LIBVIRT_URI" "$MNT/hosts/q1/uri"; ok $? "echo QEMU_LIBVIRT_URI > uri"
is "$(cat "$MNT/hosts/q1/state")" up "the host is up"
[ "$(cat "$MNT/hosts/q1/memory" 2>/dev/null || echo 0)" -gt $((256 << 20)) ]; ok $? "its memory is read live"

mkdir "$MNT/images/tiny"; ok $? "mkdir images/tiny"
write 64M "$MNT/images/tiny/size"; ok $? "echo 64M > size (the guest never mounts its root disk)"
write "$KERNEL" "$MNT/images/tiny/kernel"; ok $? "echo KERNEL > kernel"
write "$INITRD" "$MNT/images/tiny/initrd"; ok $? "echo INITRD > initrd"
write "$TINY_GUEST_CMDLINE" "$MNT/images/tiny/cmdline"; ok $? "echo CMDLINE > cmdline"
is "$(cat "$MNT/images/tiny/kernel")" "$KERNEL" "kernel reads back"
is "$(cat "$MNT/images/tiny/status")" available "the image is available"

# ---- the instance ----
mkdir "$I"; ok $? "mkdir instances/g1"
ln -s ../../images/tiny "$I/image"; ok $? "ln -s ../../images/tiny image"
write 128M "$I/memory"; ok $? "echo 128M > memory"
t0=$(now_ms)
write running "$I/state"
rc=$?; ok $rc "echo running > state"
[ $rc -eq 0 ] || show_error "$I"
t_run=$(($(now_ms) - t0))
is "$(cat "$I/state")" running "state reads running"
is "$(v domstate g1)" running "virsh: g1 runs"
xml=$(v dumpxml g1)
like "$xml" "<domain type='qemu'" "virsh: a TCG domain"
like "$xml" "<kernel>$KERNEL</kernel>" "booted from the image's kernel"
like "$xml" "<cmdline>$TINY_GUEST_CMDLINE</cmdline>" "with its command line"
like "$xml" "<driver name='qemu' type='qcow2'/>" "the root disk is a qcow2 overlay"
like "$xml" "<log file='$T/console/g1.log'" "the serial console is logged in console_dir"
is "$(readlink "$I/host")" ../../hosts/q1 "placed on q1"
wait_console "^EPFS-GUEST READY" 90; okc $? "console.log (through the mount) says EPFS-GUEST READY"
diag "start: $(secs $t_run) s for echo running > state, $(since $t0) s to READY in console.log ($(raw $t0) s in the host's file)"
like "$(console)" "EPFS-GUEST DISK vda 67108864 root" "the guest has its 64M root disk, serial 'root'"
like "$(cat "$I/events")" "started" "events has libvirt's own 'started'"
qpid=$(cat "$LV/run/qemu/g1.pid" 2>/dev/null)
if [ -n "$qpid" ] && [ -r "/proc/$qpid/stat" ]; then
	diag "QEMU at READY: $(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$qpid/stat") CPU-seconds," \
		"$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$qpid/status") MiB resident"
fi

# ---- a volume, hot-plugged by symlink ----
mkdir "$MNT/volumes/v1" && write 16M "$MNT/volumes/v1/size"; ok $? "mkdir volumes/v1, 16M"
t0=$(now_ms)
ln -s ../../../volumes/v1 "$I/volumes/v1"
rc=$?; ok $rc "ln -s ../../../volumes/v1 instances/g1/volumes/v1"
[ $rc -eq 0 ] || show_error "$I"
t_cmd=$(($(now_ms) - t0))
wait_console "^EPFS-GUEST DISK\\+ vd[a-z]+ 16777216 v1\$" 20; okc $? "the guest sees DISK+ ... v1 (the serial is the volume id)"
diag "volume attach: $(secs $t_cmd) s for ln -s, $(since $t0) s to DISK+ in console.log ($(raw $t0) s in the host's file)"
is "$(cat "$MNT/volumes/v1/status")" in-use "the volume is in-use"
like "$(v domblklist g1)" "vdb +.*/v1" "virsh: the live domain has vdb"
like "$(v dumpxml --inactive g1)" "<serial>v1</serial>" "virsh: and so does its persistent definition"
t0=$(now_ms)
rm "$I/volumes/v1"
rc=$?; ok $rc "rm instances/g1/volumes/v1"
[ $rc -eq 0 ] || show_error "$I"
t_cmd=$(($(now_ms) - t0))
wait_console "^EPFS-GUEST DISK- vd[a-z]+ v1\$" 20; okc $? "the guest sees DISK- ... v1"
diag "volume detach: $(secs $t_cmd) s for rm, $(since $t0) s to DISK- in console.log ($(raw $t0) s in the host's file)"
is "$(cat "$MNT/volumes/v1/status")" available "the volume is available again"
! v domblklist g1 | grep -q vdb; ok $? "virsh: vdb is gone"

# ---- a NIC on the daemon's bridge ----
if [ -n "$QEMU_LIBVIRT_NETNS" ]; then
	mkdir "$MNT/nics/n1"; ok $? "mkdir nics/n1"
	write "bridge:$QEMU_LIBVIRT_BRIDGE" "$MNT/nics/n1/network"; ok $? "echo bridge:$QEMU_LIBVIRT_BRIDGE > network"
	MAC=$(cat "$MNT/nics/n1/mac")
	t0=$(now_ms)
	ln -s ../../../nics/n1 "$I/nics/n1"
	rc=$?; ok $rc "ln -s ../../../nics/n1 instances/g1/nics/n1"
	[ $rc -eq 0 ] || show_error "$I"
	t_cmd=$(($(now_ms) - t0))
	wait_console "^EPFS-GUEST NIC\\+ [a-z0-9]+ $MAC\$" 20; okc $? "the guest sees NIC+ ... $MAC"
	diag "NIC attach: $(secs $t_cmd) s for ln -s, $(since $t0) s to NIC+ in console.log ($(raw $t0) s in the host's file)"
	like "$(v domiflist g1)" "bridge +$QEMU_LIBVIRT_BRIDGE +virtio +$MAC" "virsh: the live domain has it"
	like "$(qemu_libvirt_exec "$LV" ip -o link show master "$QEMU_LIBVIRT_BRIDGE" 2>&1)" "vnet" \
		"its tap is on the bridge, in the daemon's network namespace"
	t0=$(now_ms)
	rm "$I/nics/n1"
	rc=$?; ok $rc "rm instances/g1/nics/n1"
	[ $rc -eq 0 ] || show_error "$I"
	t_cmd=$(($(now_ms) - t0))
	wait_console "^EPFS-GUEST NIC- [a-z0-9]+ $MAC\$" 20; okc $? "the guest sees NIC- ... $MAC"
	diag "NIC detach: $(secs $t_cmd) s for rm, $(since $t0) s to NIC- in console.log ($(raw $t0) s in the host's file)"
	! v domiflist g1 | grep -q "$MAC"; ok $? "virsh: the NIC is gone"
else
	diag "no network namespace here: the bridge NIC steps are left out"
fi

# ---- an internal snapshot (no raw volume attached: every disk is qcow2) ----
t0=$(now_ms)
mkdir "$I/snapshots/s1"
rc=$?; ok $rc "mkdir instances/g1/snapshots/s1"
[ $rc -eq 0 ] || show_error "$I"
diag "snapshot: $(since $t0) s"
is "$(v snapshot-list g1 --name | sed '/^$/d')" s1 "virsh: the domain has snapshot s1"
is "$(cat "$I/snapshots/s1/status" 2>/dev/null)" available "the snapshot is available"
t0=$(now_ms)
write revert "$I/snapshots/s1/state"
rc=$?; ok $rc "echo revert > snapshots/s1/state"
[ $rc -eq 0 ] || show_error "$I/snapshots/s1"
diag "revert: $(since $t0) s"
is "$(v domstate g1)" running "virsh: g1 runs after the revert (QEMU restarted with -loadvm)"
is "$(cat "$I/state")" running "state reads running"

# ---- ACPI shutdown ----
t0=$(now_ms)
write shutoff "$I/state"
rc=$?; ok $rc "echo shutoff > state"
[ $rc -eq 0 ] || show_error "$I"
wait_domstate "shut off" 30; okc $? "virsh: g1 is shut off"
diag "shutdown: $(since $t0) s to shut off"
is "$(cat "$I/state")" shutoff "state reads shutoff"
wait_console "^EPFS-GUEST POWEROFF" 5; okc $? "the guest powered itself off on the ACPI button"
! grep -q "shutdown timed out" "$I/events"; ok $? "epfs did not have to destroy it"

# ---- rmdir ----
t0=$(now_ms)
rmdir "$I"
rc=$?; ok $rc "rmdir instances/g1"
[ $rc -eq 0 ] || show_error "$I"
diag "rmdir: $(since $t0) s"
! v dominfo g1 >/dev/null; ok $? "virsh: the domain is gone"
! [ -e "$STORAGE/volumes/g1.root" ]; ok $? "so is its root disk"
is "$(v list --all --name | sed '/^$/d')" "" "virsh: the daemon has no domain left"
rmdir "$MNT/volumes/v1" && { [ -z "$QEMU_LIBVIRT_NETNS" ] || rmdir "$MNT/nics/n1"; }
ok $? "the volume and the NIC can be removed"

# ---- teaching: a student's environment boots (g1 is gone: one guest at a time) ----
# the roles are real Unix users, as in tests/teaching.t; the window is around
# the real time (no clock_offset)
TEACH=epfs-rg-teach STUD=epfs-rg-stud
for u in $TEACH $STUD; do
	id "$u" >/dev/null 2>&1 || useradd -M -s /bin/sh "$u"
done
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
iso() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }

mkdir "$MNT/templates/tiny-vm" && ln -s ../../images/tiny "$MNT/templates/tiny-vm/image" &&
	write 128M "$MNT/templates/tiny-vm/memory"
ok $? "a template over the tiny guest's image (128M)"
mkdir "$MNT/users/rgteach" && write "$(id -u $TEACH)" "$MNT/users/rgteach/uid" &&
	write teacher "$MNT/users/rgteach/role"
ok $? "a teacher, uid $(id -u $TEACH)"
mkdir "$MNT/users/rgstud" && write "$(id -u $STUD)" "$MNT/users/rgstud/uid" &&
	write student "$MNT/users/rgstud/role"
ok $? "a student, uid $(id -u $STUD)"
C=$MNT/courses/os101
mkdir "$C" && write "Operating systems" "$C/name" && ln -s ../../users/rgteach "$C/teacher"
ok $? "a course taught by rgteach"
ln -s ../../../users/rgstud "$C/students/rgstud"; ok $? "the student is enrolled"
E=$C/experiments/boot
as $TEACH mkdir "$E"; ok $? "the teacher makes experiments/boot"
as $TEACH sh -c "echo 'Boot a guest' > $E/name && ln -s ../../../../templates/tiny-vm $E/template &&
	echo $(iso -3600) > $E/start && echo $(iso 3600) > $E/end && echo 1 > $E/published"
rc=$?; ok $rc "template@, a window from now-1h to now+1h, published"
[ $rc -eq 0 ] || show_error "$E"
X=$MNT/users/rgstud/experiments/os101.boot
is "$(as $STUD ls "$MNT/users/rgstud/experiments")" os101.boot "the student sees it"
is "$(as $STUD cat "$X/state")" none "no environment yet"

INST=os101.boot.rgstud
DOM=$INST
CONSOLE=$MNT/instances/$INST/console.log
t0=$(now_ms)
as $STUD sh -c "echo running > $X/state"
rc=$?; ok $rc "the student enters: echo running > state"
[ $rc -eq 0 ] || show_error "$X"
t_run=$(($(now_ms) - t0))
is "$(as $STUD cat "$X/state")" running "state reads running"
is "$(as $STUD readlink "$X/instance")" "../../../../instances/$INST" "instance@ is $INST"
is "$(v domstate "$INST")" running "virsh: $INST runs"
xml=$(v dumpxml "$INST")
like "$xml" "<domain type='qemu'" "virsh: a TCG domain"
like "$xml" "<kernel>$KERNEL</kernel>" "booted from the template's image's kernel"
like "$xml" "<memory unit='KiB'>131072</memory>" "with the template's memory"
wait_console "^EPFS-GUEST READY" 90; okc $? "instances/$INST/console.log says EPFS-GUEST READY"
diag "environment: $(secs $t_run) s for echo running > state, $(since $t0) s to READY in console.log ($(raw $t0) s in the host's file)"
as $STUD grep -q "^EPFS-GUEST READY" "$X/instance/console.log"
ok $? "the student reads her guest's console through instance@"
like "$(grep '^rgstud,' "$E/progress.csv")" "^rgstud,$INST,running,20[0-9-]+T[0-9:]+Z,1,\$" \
	"progress.csv: the student is running, attempt 1"

t0=$(now_ms)
as $STUD sh -c "echo shutoff > $X/state"
rc=$?; ok $rc "the student stops it: echo shutoff > state"
[ $rc -eq 0 ] || show_error "$X"
wait_domstate "shut off" 30; okc $? "virsh: $INST is shut off"
diag "environment shutdown: $(since $t0) s to shut off"
wait_console "^EPFS-GUEST POWEROFF" 5; okc $? "the guest powered itself off on the ACPI button"
is "$(as $STUD cat "$X/state")" shutoff "the student's state reads shutoff"
is "$(cat "$E/students/rgstud/stop_reason")" student "stop_reason student"
like "$(grep '^rgstud,' "$E/progress.csv")" "^rgstud,$INST,shutoff," "progress.csv: shutoff"

done_testing
