#!/bin/bash
# Environment templates and homework snapshots (seed 000): a template on an
# image, instances made from it, a teacher's snapshot as a template's base
# whose disk the students' instances start from (raw and qcow2 clones on the
# dir backend), stale snapshots refused, what is in use kept, and a crash in
# the middle of provisioning from a snapshot rolled back.
. "$(dirname "$0")/lib.sh"
epfs_setup
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
POLLWAIT=$EPFS_BUILDDIR/tests/pollwait
virsh_() { virsh -q -c "$URI" "$@" 2>&1; }
T1=$MNT/templates/t1

mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"
mkdir "$MNT/images/deb" && write 64M "$MNT/images/deb/size"

# a template on an image
mkdir "$T1"; ok $? "mkdir templates/t1"
is "$(ls "$T1" | tr '\n' ' ')" "cpu describe error info.json kind memory " "its files (no base yet)"
is "$(cat "$T1/kind")" vm "kind is vm by default"
fails_with EINVAL "kind is vm, desktop or jupyter" write flying "$T1/kind"
write desktop "$T1/kind"; write 2 "$T1/cpu"; write 256M "$T1/memory"; write "lab 1" "$T1/describe"
is "$(sql "SELECT kind, cpu, memory, \`describe\` FROM template WHERE id='t1'")" "desktop	2	268435456	lab 1" "kind, cpu, memory, describe stored"
fails_with ENOENT "a missing image cannot be linked" ln -s ../../images/nope "$T1/image"
ln -s ../../images/deb "$T1/image"; ok $? "ln -s ../../images/deb templates/t1/image"
is "$(readlink "$T1/image")" ../../images/deb "image@ points at the image"
fails_with EBUSY "an image a template uses cannot be removed" rmdir "$MNT/images/deb"
like "$(cat "$MNT/images/deb/error")" "templates/t1" "and the image's error says which"
like "$(cat "$T1/info.json")" '"image": "deb"' "info.json names the image"
fails_with EINVAL "a template without a base makes no instance" \
	sh -c "mkdir '$MNT/templates/empty' && mkdir '$MNT/instances/x0' && ln -s ../../templates/empty '$MNT/instances/x0/template'"

# an instance from the template
mkdir "$MNT/instances/a1"
ln -s ../../templates/t1 "$MNT/instances/a1/template"; ok $? "ln -s ../../templates/t1 instances/a1/template"
is "$(readlink "$MNT/instances/a1/template")" ../../templates/t1 "template@ shows it"
is "$(cat "$MNT/instances/a1/cpu") $(cat "$MNT/instances/a1/memory")" "2 268435456" "cpu and memory come from the template"
is "$(readlink "$MNT/instances/a1/image")" ../../images/deb "and the image"
fails_with EBUSY "a template an instance was made from cannot be removed" rmdir "$T1"
rm "$MNT/instances/a1/template"; ok $? "rm template@ on a draft"
is "$(sql "SELECT IFNULL(template_id, '-') FROM instance WHERE id='a1'")" - "the record forgets it"
rmdir "$MNT/instances/a1" "$MNT/instances/x0"

# the teacher's homework: an instance, marker bytes in its disk, a snapshot
mkdir "$MNT/instances/teach" && ln -s ../../images/deb "$MNT/instances/teach/image" &&
	write 128M "$MNT/instances/teach/memory" && write running "$MNT/instances/teach/state"
is "$(cat "$MNT/instances/teach/state")" running "the teacher's instance runs"
printf 'HOMEWORK-MARKER' | dd of="$STORAGE/volumes/teach.root" bs=1 seek=4096 conv=notrunc status=none
mkdir "$MNT/instances/teach/snapshots/hw1"; ok $? "mkdir snapshots/hw1"
ok "$([ -f "$STORAGE/volumes/teach.root@hw1" ]; echo $?)" "the snapshot took the root disk too (teach.root@hw1)"
like "$(virsh_ snapshot-list --name teach)" hw1 "and the domain snapshot"
printf 'AFTER-SNAPSHOT' | dd of="$STORAGE/volumes/teach.root" bs=1 seek=8192 conv=notrunc status=none

H=$MNT/templates/hw
mkdir "$H" && write 128M "$H/memory"
fails_with EINVAL "a snapshot link must point at instances/<i>/snapshots/<s>" \
	ln -s ../../instances/teach "$H/snapshot"
fails_with ENOENT "a missing snapshot cannot be linked" ln -s ../../instances/teach/snapshots/nope "$H/snapshot"
ln -s ../../instances/teach/snapshots/hw1 "$H/snapshot"; ok $? "ln -s ../../instances/teach/snapshots/hw1 templates/hw/snapshot"
is "$(readlink "$H/snapshot")" ../../instances/teach/snapshots/hw1 "snapshot@ points at it"
is "$(sql "SELECT snapshot_instance_id, snapshot_id FROM template WHERE id='hw'")" "teach	hw1" "the record"
like "$(cat "$H/info.json")" '"snapshot": "teach/hw1"' "info.json names it by key"
fails_with EBUSY "a template has one base: no image besides the snapshot" ln -s ../../images/deb "$H/image"
fails_with EBUSY "a snapshot a template is based on cannot be deleted" rmdir "$MNT/instances/teach/snapshots/hw1"
write destroyed "$MNT/instances/teach/state"
fails_with EBUSY "nor the instance it belongs to" rmdir "$MNT/instances/teach"
write running "$MNT/instances/teach/state"

# a student's instance from it starts from the teacher's disk
mkdir "$MNT/instances/stu1"
ln -s ../../templates/hw "$MNT/instances/stu1/template"; ok $? "an instance from the homework template"
is "$(sql "SELECT image_id, base_instance_id, base_snapshot_id, memory FROM instance WHERE id='stu1'")" \
	"deb	teach	hw1	134217728" "its record names the base snapshot and the snapshot's image"
write running "$MNT/instances/stu1/state"; ok $? "echo running > state provisions it"
is "$(cat "$MNT/instances/stu1/state")" running "it runs"
is "$(dd if="$STORAGE/volumes/stu1.root" bs=1 skip=4096 count=15 status=none)" HOMEWORK-MARKER \
	"its root disk has the teacher's bytes"
is "$(dd if="$STORAGE/volumes/stu1.root" bs=1 skip=8192 count=14 status=none | tr -d '\0')" "" \
	"as they were at the snapshot"
fails_with EBUSY "a snapshot an instance was made from cannot be deleted" rmdir "$MNT/instances/teach/snapshots/hw1"

# one more instance from it, made before the snapshot goes stale
mkdir "$MNT/instances/stu3" && ln -s ../../templates/hw "$MNT/instances/stu3/template"

# stale: the image's flavour changed after the snapshot
write 1G "$MNT/images/deb/memory"
is "$(cat "$MNT/instances/teach/snapshots/hw1/status")" stale "the snapshot is stale"
mkdir "$MNT/instances/stu2"
fails_with EINVAL "a template on a stale snapshot makes no instance" ln -s ../../templates/hw "$MNT/instances/stu2/template"
like "$(cat "$MNT/instances/stu2/error")" "stale" "the instance's error says why"
fails_with EINVAL "an instance made before cannot be provisioned from it now" write running "$MNT/instances/stu3/state"
like "$(cat "$MNT/instances/stu3/error")" "base snapshot teach/hw1 .*stale" "and says so"
mkdir "$MNT/templates/hw2"
fails_with EINVAL "a stale snapshot cannot be linked as a base" \
	ln -s ../../instances/teach/snapshots/hw1 "$MNT/templates/hw2/snapshot"
like "$(cat "$MNT/templates/hw2/error")" "stale" "the template's error says why"

# removing in order
write destroyed "$MNT/instances/stu1/state"; rmdir "$MNT/instances/stu1"; ok $? "rmdir the student's instance"
ok "$([ ! -e "$STORAGE/volumes/stu1.root" ]; echo $?)" "its disk is gone"
rmdir "$MNT/instances/stu2" "$MNT/instances/stu3"
rm "$H/snapshot"; ok $? "rm snapshot@"
rmdir "$H"; ok $? "rmdir templates/hw"
rmdir "$MNT/instances/teach/snapshots/hw1"; ok $? "now the snapshot can be deleted"
ok "$([ ! -e "$STORAGE/volumes/teach.root@hw1" ]; echo $?)" "with its disk snapshot"

# a crash while provisioning from a snapshot is rolled back
write 128M "$MNT/images/deb/memory"
mkdir "$MNT/instances/teach/snapshots/hw2" && mkdir "$H" && write 128M "$H/memory" &&
	ln -s ../../instances/teach/snapshots/hw2 "$H/snapshot"
printf '\n[debug]\nstep_delay_ms=400\n' >> "$EPFS_CONF"
epfs_umount; epfs_mount
mkdir "$MNT/instances/stu4" && ln -s ../../templates/hw "$MNT/instances/stu4/template"
(write running "$MNT/instances/stu4/state" 2>/dev/null) &
WRITER=$!
"$POLLWAIT" "$MNT/instances/stu4/events" "progress 40" 30 > /dev/null; ok $? "stu4 was cloned from the snapshot"
kill -9 "$EPFS_PID"; wait "$EPFS_PID" 2>/dev/null; EPFS_PID=
wait "$WRITER" 2>/dev/null
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
sed -i 's/^step_delay_ms=400$/step_delay_ms=0/' "$EPFS_CONF"
epfs_mount; ok $? "epfs restarts after SIGKILL"
is "$(cat "$MNT/instances/stu4/state")" draft "the instance is a draft again"
ok "$([ ! -e "$STORAGE/volumes/stu4.root" ]; echo $?)" "its clone is gone"
ok "$([ -f "$STORAGE/volumes/teach.root@hw2" ]; echo $?)" "the teacher's snapshot is kept"
is "$(sql 'SELECT COUNT(*) FROM journal')" 0 "the journal is empty"
write running "$MNT/instances/stu4/state"; ok $? "provisioning again works"
is "$(dd if="$STORAGE/volumes/stu4.root" bs=1 skip=4096 count=15 status=none)" HOMEWORK-MARKER "from the same bytes"

# qcow2 clones: the snapshot of a qcow2 root disk is qcow2, and so is the base it gives
sed -i 's/^backend=dir$/backend=dir\nclone_format=qcow2/' "$EPFS_CONF"
epfs_umount; epfs_mount
mkdir "$MNT/instances/qteach" && ln -s ../../images/deb "$MNT/instances/qteach/image" &&
	write 128M "$MNT/instances/qteach/memory" && write running "$MNT/instances/qteach/state"
is "$(qemu-img info --output=json "$STORAGE/volumes/qteach.root" | grep -o '"format": "[a-z0-9]*"' | head -1)" \
	'"format": "qcow2"' "the teacher's root disk is a qcow2 overlay"
qemu-io -f qcow2 -c "write -P 0x5a 65536 4096" "$STORAGE/volumes/qteach.root" > /dev/null; ok $? "marker written with qemu-io"
mkdir "$MNT/instances/qteach/snapshots/q1"; ok $? "snapshot of a qcow2 root disk"
mkdir "$MNT/templates/qhw" && write 128M "$MNT/templates/qhw/memory" &&
	ln -s ../../instances/qteach/snapshots/q1 "$MNT/templates/qhw/snapshot"
mkdir "$MNT/instances/qstu" && ln -s ../../templates/qhw "$MNT/instances/qstu/template" &&
	write running "$MNT/instances/qstu/state"; ok $? "a student's instance from it"
like "$(qemu-img info "$STORAGE/volumes/qstu.root")" "backing file format: qcow2" "its overlay is on the qcow2 snapshot"
like "$(qemu-io -r -f qcow2 -c "read -P 0x5a 65536 4096" "$STORAGE/volumes/qstu.root" 2>&1)" "^read 4096/4096" \
	"its disk has the teacher's bytes"

done_testing
