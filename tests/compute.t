#!/bin/bash
# Compute through the mount only, checked against virsh and the database:
# hosts, an instance from an image, start, wait with poll(2) on events,
# attach a volume and a NIC, snapshot, stop, detach, delete.
. "$(dirname "$0")/lib.sh"
epfs_setup
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
POLLWAIT=$EPFS_BUILDDIR/tests/pollwait
virsh_() { virsh -q -c "$URI" "$@" 2>&1; }
I=$MNT/instances/vm1

# a host
mkdir "$MNT/hosts/h1"; ok $? "mkdir hosts/h1"
fails_with EINVAL "a uri must look like one" write "not a uri" "$MNT/hosts/h1/uri"
write "$URI" "$MNT/hosts/h1/uri"; ok $? "echo URI > uri"
is "$(sql "SELECT uri FROM host WHERE id='h1'")" "$URI" "the host is registered"
[ "$(cat "$MNT/hosts/h1/cpus")" -gt 0 ]; ok $? "cpus are read live"
[ "$(cat "$MNT/hosts/h1/memory")" -gt $((1 << 30)) ]; ok $? "memory in bytes"
is "$(cat "$MNT/hosts/h1/state")" up "state up"

# an image and a draft instance
mkdir "$MNT/images/deb" && write 64M "$MNT/images/deb/size"
mkdir "$I"; ok $? "mkdir instances/vm1"
is "$(cat "$I/state")" draft "a new instance is a draft"
fails_with EINVAL "a draft without image cannot start" write running "$I/state"
fails_with ENOENT "an image that does not exist cannot be linked" ln -s ../../images/nope "$I/image"
ln -s ../../images/deb "$I/image"; ok $? "ln -s ../../images/deb image"
is "$(readlink "$I/image")" ../../images/deb "image@ points at the image"
is "$(sql "SELECT image_id FROM instance WHERE id='vm1'")" deb "the record names it"
write 2 "$I/cpu"; write 256M "$I/memory"; write "first vm" "$I/name"
is "$(sql "SELECT cpu, memory, name FROM instance WHERE id='vm1'")" "2	268435456	first vm" "cpu, memory, name stored"
fails_with EINVAL "state refuses nonsense" write flying "$I/state"

# start: provisioning as a journaled job; wait with poll on events
"$POLLWAIT" "$I/events" "state running" 30 > "$T/poll.out" &
POLLER=$!
sleep 0.3
write running "$I/state"; ok $? "echo running > state provisions and starts"
wait $POLLER; ok $? "poll(2) on events woke up for the change ($(cat "$T/poll.out"))"
is "$(cat "$I/state")" running "state reads running"
is "$(virsh_ domstate vm1)" running "virsh sees it running"
is "$(cat "$I/progress")" 100 "progress 100"
is "$(readlink "$I/host")" ../../hosts/h1 "host@ links to where it runs"
is "$(cat "$MNT/hosts/h1/instances")" vm1 "the host lists it"
ok "$([ -f "$STORAGE/volumes/vm1.root" ]; echo $?)" "the root disk was cloned into the volume pool"
like "$(cat "$I/domain.xml")" "<name>vm1</name>" "domain.xml is the live XML"
like "$(cat "$I/events")" "progress 40" "events show the steps"
is "$(sql "SELECT COUNT(*) FROM journal")" 0 "the journal is empty once done"
fails_with EBUSY "a running instance cannot be removed" rmdir "$I"
fails_with EBUSY "nor its image" rmdir "$MNT/images/deb"
fails_with EBUSY "its cpu is fixed once provisioned" write 4 "$I/cpu"
write running "$I/state"; ok $? "echo running again is a no-op"
write start "$I/state"; ok $? "and so is the verb"

# verbs
write suspend "$I/state"; is "$(virsh_ domstate vm1)" paused "suspend"
is "$(cat "$I/state")" paused "state paused"
write resume "$I/state"; is "$(virsh_ domstate vm1)" running "resume"
write reboot "$I/state"; ok $? "reboot"

# a volume, attached by symlink
mkdir "$MNT/volumes/data" && write 16M "$MNT/volumes/data/size"
ln -s ../../../volumes/data "$I/volumes/data"; ok $? "ln -s attaches a volume"
is "$(cat "$MNT/volumes/data/status")" in-use "the volume is in-use"
is "$(readlink "$MNT/volumes/data/instance")" ../../instances/vm1 "and links back"
# the test driver cannot hot-plug: epfs rewrites the persistent definition
like "$(virsh_ dumpxml --inactive vm1)" "volumes/data'" "the domain has the disk"
is "$(sql "SELECT status, instance_id, device FROM volume WHERE id='data'")" "in-use	vm1	vdb" "the record"
fails_with EBUSY "an attached volume cannot be removed" rmdir "$MNT/volumes/data"
mkdir "$MNT/instances/vm2"
fails_with EBUSY "nor attached twice" ln -s ../../../volumes/data "$MNT/instances/vm2/volumes/data"
fails_with ENOENT "a link to a missing volume is refused" ln -s ../../../volumes/nope "$I/volumes/nope"
fails_with EINVAL "a link not named after its volume is refused" ln -s ../../../volumes/data "$I/volumes/other"
fails_with EINVAL "a link to something else is refused" ln -s ../../../images/deb "$I/volumes/deb"
mkdir "$MNT/volumes/empty"
fails_with EINVAL "a volume without bytes cannot be attached" ln -s ../../../volumes/empty "$I/volumes/empty"

# a NIC
mkdir "$MNT/nics/n1"; ok $? "mkdir nics/n1"
like "$(cat "$MNT/nics/n1/mac")" '^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$' "a MAC is allocated"
mkdir "$MNT/nics/n2"
[ "$(cat "$MNT/nics/n1/mac")" != "$(cat "$MNT/nics/n2/mac")" ]; ok $? "unique"
fails_with EINVAL "a bad MAC is refused" write 01:02:03:04:05:06 "$MNT/nics/n2/mac"
write 52:54:00:AA:BB:CC "$MNT/nics/n2/mac"; is "$(cat "$MNT/nics/n2/mac")" 52:54:00:aa:bb:cc "a written MAC is taken"
fails_with EEXIST "a MAC in use is refused" write "$(cat "$MNT/nics/n1/mac")" "$MNT/nics/n2/mac"
ln -s ../../../nics/n1 "$I/nics/n1"; ok $? "ln -s attaches a NIC"
like "$(virsh_ domiflist --inactive vm1)" "$(cat "$MNT/nics/n1/mac")" "the domain has the interface"
is "$(cat "$MNT/nics/n1/status")" in-use "the NIC is in-use"
fails_with EBUSY "an attached NIC cannot be removed" rmdir "$MNT/nics/n1"

# snapshots
mkdir "$I/snapshots/s1"; ok $? "mkdir snapshots/s1 takes a snapshot"
like "$(virsh_ snapshot-list --name vm1)" s1 "virsh lists it"
is "$(cat "$I/snapshots/s1/status")" available "it is available"
write revert "$I/snapshots/s1/state"; ok $? "echo revert > state reverts"
write 2G "$MNT/images/deb/memory"
is "$(cat "$I/snapshots/s1/status")" stale "changing the image's flavour makes it stale"
fails_with EINVAL "a stale snapshot is not reverted to" write revert "$I/snapshots/s1/state"
rmdir "$I/snapshots/s1"; ok $? "rmdir deletes it"
is "$(virsh_ snapshot-list --name vm1)" "" "virsh agrees"

# stop, detach, delete
write shutoff "$I/state"; ok $? "echo shutoff > state"
is "$(virsh_ domstate vm1)" "shut off" "virsh sees it off"
is "$(cat "$I/state")" shutoff "state reads shutoff"
rm "$I/volumes/data"; ok $? "rm detaches the volume"
is "$(sql "SELECT status, IFNULL(instance_id, '-') FROM volume WHERE id='data'")" "available	-" "it is available again"
! virsh_ dumpxml --inactive vm1 | grep -q "volumes/data'"; ok $? "the domain no longer has it"
rm "$I/nics/n1"; ok $? "rm detaches the NIC"
! virsh_ domiflist --inactive vm1 | grep -q "$(cat "$MNT/nics/n1/mac")"; ok $? "the interface is gone"
ln -s ../../../volumes/data "$I/volumes/data"; ok $? "attach to a stopped instance (config only)"
rmdir "$I"; ok $? "rmdir of a stopped instance"
is "$(virsh_ list --all --name | grep -c '^vm1$')" 0 "the domain is undefined"
ok "$([ ! -e "$STORAGE/volumes/vm1.root" ]; echo $?)" "the root disk is removed"
is "$(sql "SELECT status, IFNULL(instance_id, '-') FROM volume WHERE id='data'")" "available	-" "its volumes are let go"
ok "$([ -f "$STORAGE/volumes/data" ]; echo $?)" "and keep their bytes"
is "$(sql "SELECT COUNT(*) FROM instance WHERE id='vm1'")" 0 "the record is gone"

# a dead host: its files fail within the timeout, the rest of the tree serves on
mkdir "$MNT/instances/vm3" && ln -s ../../images/deb "$MNT/instances/vm3/image" && write 128M "$MNT/instances/vm3/memory"
write running "$MNT/instances/vm3/state"
kill -STOP "$(cat "$T/libvirt/libvirtd.pid")"
sleep 1.2   # let cached values expire
start=$(date +%s)
out=$(timeout 60 cat "$MNT/instances/vm3/state" 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ]; ok $? "reading the state of an instance on a hung host fails"
like "$out" "Connection timed out|Input/output error|Resource temporarily unavailable" "with ETIMEDOUT, EIO or EAGAIN"
[ $(( $(date +%s) - start )) -le 15 ]; ok $? "within the timeout ($(( $(date +%s) - start )) s)"
ls -l "$MNT/instances/vm3" > /dev/null; ok $? "the instance's directory still lists"
is "$(cat "$MNT/images/deb/size")" 67108864 "and the rest of the tree serves"
like "$(cat "$MNT/hosts/h1/state")" '^down' "the host reads down"
kill -CONT "$(cat "$T/libvirt/libvirtd.pid")"
for _ in $(seq 50); do [ "$(cat "$MNT/hosts/h1/state" 2>/dev/null)" = up ] && break; sleep 0.2; done
for _ in $(seq 50); do [ "$(cat "$MNT/instances/vm3/state" 2>/dev/null)" = running ] && break; sleep 0.2; done
is "$(cat "$MNT/instances/vm3/state" 2>&1)" running "back when the host is"

done_testing
