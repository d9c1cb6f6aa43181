#!/bin/bash
# scripts/demo: up gives a browsable tree with sample data (a course with a
# published experiment among it), up twice is safe, down stops everything it
# started.
. "$(dirname "$0")/lib.sh"
trap 'for s in "$T/state" "$T/state-rbd"; do [ -d "$s" ] && EPFS_STATE=$s "$EPFS_SRCDIR/scripts/demo" down >/dev/null 2>&1; done; rm -rf "$T"' EXIT

export EPFS_STATE=$T/state
# the demo runs the build the tests run (not one of its own)
export EPFS_BUILDDIR
"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up.log" 2>&1; ok $? "demo up"
mountpoint -q "$T/ep"; ok $? "the tree is mounted"
like "$(cat "$T/up.log")" "A short tour" "it prints a tour"
like "$(cat "$T/up.log")" "storage 'dir' at $EPFS_STATE/storage" "the tour says storage is dir (the default)"
is "$(cat "$EPFS_STATE/storage-backend")" dir "the choice is recorded"
[ "$(ls "$T/ep/images" | wc -l)" -ge 3 ]; ok $? "sample images"
[ "$(ls "$T/ep/volumes" | wc -l)" -ge 2 ]; ok $? "sample volumes"
is "$(cat "$T/ep/images/debian-12/status")" available "sample images have bytes"
is "$(stat -c %s "$EPFS_STATE/storage/images/debian-12")" $((20 << 30)) "in the dir storage backend"
is "$(cat "$T/ep/images/.unregistered")" alpine-3.19 "and one image waits for registration"
like "$(cat "$T/ep/.epfs/health")" "database ok" "the private MariaDB serves it"
virsh -c "test+unix:///default?socket=$EPFS_STATE/libvirt/libvirt-sock" list --all >/dev/null 2>&1
ok $? "libvirtd serves the test driver"

# the hypervisor: real QEMU when it works here, the test driver otherwise
HV=$(cat "$EPFS_STATE/hypervisor" 2>/dev/null)
like "$HV" "^(qemu|test)$" "the hypervisor chosen is recorded ($HV)"
if [ "$HV" = qemu ]; then
	like "$(cat "$T/up.log")" "hypervisor: real QEMU guests" "the tour says the guests are real"
else
	like "$(cat "$T/up.log")" "hypervisor: libvirt's test driver" "the tour says it is the test driver"
fi
is "$(ls "$T/ep/hosts" | tr '\n' ' ')" "h1 h2 " "two hosts"
is "$(cat "$T/ep/hosts/h1/state" "$T/ep/hosts/h2/state" | tr '\n' ' ')" "up up " "both up"
is "$(cat "$T/ep/instances/demo-vm/state")" running "the sample instance runs"
is "$(readlink "$T/ep/instances/demo-vm/host")" ../../hosts/h1 "on h1"
# libvirt's own lifecycle events reach epfs (they did not when FUSE daemonized it)
like "$(cat "$T/ep/instances/demo-vm/events")" "started" "its events show libvirt's 'started'"
if [ "$HV" = qemu ]; then
	QURI="qemu:///system?socket=$EPFS_STATE/qemu/libvirt-sock"
	is "$(virsh -c "$QURI" domstate demo-vm 2>&1)" running "a real QEMU domain"
	like "$(cat "$T/ep/images/tiny/kernel")" "vmlinuz" "booted from the tiny guest's kernel"
else
	is "$(virsh -c "test+unix:///default?socket=$EPFS_STATE/libvirt/libvirt-sock" domstate demo-vm 2>&1)" \
		running "a test-driver domain"
fi
keepers=$(cat "$EPFS_STATE"/libvirt*/keeper.pid 2>/dev/null)
[ -n "$keepers" ]; ok $? "the test-driver hosts have keepers"

mkdir "$T/ep/images/mine" && write 1G "$T/ep/images/mine/size"
"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up2.log" 2>&1; ok $? "demo up again"
is "$(cat "$T/ep/images/mine/size")" 1073741824 "keeps what was there"
is "$(cat "$T/ep/images/debian-12/size")" $((20 << 30)) "and does not load the samples twice"
is "$(ls "$T/ep/instances")" demo-vm "still one sample instance"
is "$(cat "$T/ep/instances/demo-vm/state")" running "demo-vm still runs"
is "$(cat "$EPFS_STATE"/libvirt*/keeper.pid 2>/dev/null)" "$keepers" "and the keepers are the same"
NETNS=$(cat "$EPFS_STATE/qemu/netns" 2>/dev/null)
QPIDS=$(cat "$EPFS_STATE"/qemu/run/qemu/*.pid 2>/dev/null)

is "$(ls "$T/ep/users" | tr '\n' ' ')" "alice bob teacher1 " "sample users: a teacher and two students"
is "$(cat "$T/ep/users/teacher1/role")" teacher "the teacher"
for _ in $(seq 50); do [ -f "$T/ep/users/alice/projects/intro/input/iris/iris.csv" ] && break; sleep 0.1; done
ok "$([ -f "$T/ep/users/alice/projects/intro/input/iris/iris.csv" ]; echo $?)" "a project with a linked dataset"
for _ in $(seq 50); do [ -f "$T/ep/public/projects/intro/work/hello.py" ] && break; sleep 0.1; done
is "$(cat "$T/ep/public/projects/intro/work/hello.py" 2>&1)" 'print("hello from epfs")' "alice's project is public"
is "$(readlink "$T/ep/public/projects/intro/owner")" ../../../users/alice "shared by alice"
ok "$([ -f "$T/ep/public/projects/intro/input/iris/iris.csv" ]; echo $?)" "with its dataset"
# teaching: a course with one published experiment
C=$T/ep/courses/linux101
is "$(readlink "$C/teacher")" ../../users/teacher1 "a course taught by teacher1"
is "$(ls "$C/students" | tr '\n' ' ')" "alice bob " "alice and bob are enrolled"
is "$(readlink "$T/ep/templates/tiny-vm/image")" ../../images/tiny "a template over the sample image"
X=$C/experiments/lab1
is "$(cat "$X/published")" 1 "the experiment is published"
is "$(readlink "$X/template")" ../../../../templates/tiny-vm "made from the template"
now=$(date +%s)
st=$(date -d "$(cat "$X/start")" +%s) en=$(date -d "$(cat "$X/end")" +%s)
[ "$st" -le $((now - 3500)) ] && [ "$st" -gt $((now - 3700)) ]; ok $? "it opened an hour ago ($(cat "$X/start"))"
[ "$en" -gt $((now + 29 * 86400)) ] && [ "$en" -le $((now + 30 * 86400 + 100)) ]; ok $? "and closes in 30 days ($(cat "$X/end"))"
like "$(cat "$X/content.md")" "^# Lab 1" "with content.md"
is "$(ls "$X/attachments")" sheet.md "and an attachment"
is "$(ls "$T/ep/users/alice/experiments")" linux101.lab1 "alice sees it under users/alice/experiments/"
is "$(cat "$T/ep/users/alice/experiments/linux101.lab1/state")" none "she has not entered it yet"
like "$(cat "$T/ep/users/alice/experiments/linux101.lab1/content.md")" "^# Lab 1" "and reads its content"
like "$(cat "$T/up.log")" "teacher1 teaches courses/linux101" "the tour shows the course"
"$EPFS_SRCDIR/scripts/demo" down > "$T/down.log" 2>&1; ok $? "demo down"
! mountpoint -q "$T/ep"; ok $? "unmounted"
! pgrep -f "config=$EPFS_STATE/epfs.conf" >/dev/null; ok $? "epfs has exited"
pgrep -af "config=$EPFS_STATE/epfs.conf" | sed 's/^/#   left: /'
! pgrep -f "datadir=$EPFS_STATE/db/data" >/dev/null; ok $? "MariaDB has stopped"
! pgrep -f "$EPFS_STATE/libvirt/libvirtd.conf" >/dev/null; ok $? "libvirtd has stopped"
left=$(pgrep -af "$EPFS_STATE" | grep -E "libvirtd|virsh|qemu")
is "$left" "" "no libvirtd, virsh or qemu process of the state dir is left"
for k in $keepers $QPIDS; do
	if [ -d "/proc/$k" ] && ! grep -q '^State:.*Z' "/proc/$k/status" 2>/dev/null; then
		ok 1 "process $k (a keeper or a QEMU guest) has exited"
	fi
done
if [ -n "$NETNS" ]; then
	! ip netns list | grep -q "^$NETNS\b"; ok $? "the QEMU libvirtd's network namespace is gone"
fi

"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up3.log" 2>&1; ok $? "up after down"
is "$(cat "$T/ep/images/mine/size")" 1073741824 "the data survived"
is "$(cat "$T/ep/instances/demo-vm/state")" running "demo-vm runs again"
is "$(ls "$T/ep/users/bob/experiments")" linux101.lab1 "the course survives too"


# ---- --storage rbd: a micro Ceph cluster (bluestore) in $EPFS_STATE/ceph ----
if command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v rbd >/dev/null; then
	"$EPFS_SRCDIR/scripts/demo" down > "$T/down.log" 2>&1
	export EPFS_STATE=$T/state-rbd
	CEPH=$EPFS_STATE/ceph
	"$EPFS_SRCDIR/scripts/demo" up --storage rbd "$T/ep" > "$T/up-rbd.log" 2>&1
	rc=$?
	ok $rc "demo up --storage rbd (the option before the mount point)"
	[ $rc -eq 0 ] || tail -5 "$T/up-rbd.log" | sed 's/^/#   /'
	is "$(cat "$EPFS_STATE/storage-backend" 2>/dev/null)" rbd "the choice is recorded"
	like "$(cat "$T/up-rbd.log")" "storage 'rbd': a micro Ceph cluster \\(bluestore\\) in $CEPH" "the tour says so"
	like "$(cat "$T/ep/.epfs/health")" "storage ok rbd" "epfs uses the rbd backend"
	rbd_ls=$(timeout 30 rbd -c "$CEPH/ceph.conf" ls images 2>&1)
	like "$rbd_ls" "debian-12" "rbd ls images lists the sample images"
	like "$rbd_ls" "alpine-3.19" "and the unregistered one"
	is "$(cat "$T/ep/images/.unregistered")" alpine-3.19 "which waits for registration"
	is "$(cat "$T/ep/instances/demo-vm/state")" running "the sample instance runs"
	like "$(timeout 30 rbd -c "$CEPH/ceph.conf" info volumes/demo-vm.root 2>&1)" "parent: images/tiny@" \
		"its root disk is an RBD clone"
	if [ "$(cat "$EPFS_STATE/hypervisor" 2>/dev/null)" = qemu ]; then
		! [ -e "$EPFS_STATE/qemu/netns" ]
		ok $? "the QEMU libvirtd has no network namespace (its guests reach the monitor on 127.0.0.1)"
	fi
	"$EPFS_SRCDIR/scripts/demo" up "$T/ep" --storage dir > "$T/up-dir.log" 2>&1
	[ $? -ne 0 ] && grep -q "made with --storage rbd" "$T/up-dir.log"
	ok $? "up --storage dir on an rbd state dir is refused"
	CEPH_PIDS=$(cat "$CEPH"/run/*.pid 2>/dev/null)
	"$EPFS_SRCDIR/scripts/demo" down > "$T/down-rbd.log" 2>&1; ok $? "demo down"
	! mountpoint -q "$T/ep"; ok $? "unmounted"
	[ -n "$CEPH_PIDS" ]; ok $? "the cluster had daemons"
	left=
	for k in $CEPH_PIDS; do
		[ -d "/proc/$k" ] && ! grep -q '^State:.*Z' "/proc/$k/status" 2>/dev/null && left="$left $k"
	done
	is "$left" "" "down stops the Ceph daemons"
	is "$(pgrep -af "$EPFS_STATE" | grep -E "ceph-|libvirtd|virsh|qemu")" "" "no process of the state dir is left"
else
	diag "no ceph-mon, ceph-osd or rbd: the --storage rbd checks are left out"
fi

done_testing
