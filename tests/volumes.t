#!/bin/bash
# Volumes: create, size, states, the instance link and removal.
. "$(dirname "$0")/lib.sh"
epfs_setup

V=$MNT/volumes

mkdir "$V/data1"; ok $? "mkdir volumes/data1"
is "$(cat "$V/data1/status")" draft "a new volume is a draft"
write 10G "$V/data1/size"; ok $? "echo 10G > size"
is "$(cat "$V/data1/status")" available "it becomes available"
is "$(stat -c '%s %b' "$STORAGE/volumes/data1")" "$((10 << 30)) 0" "a sparse 10 GiB file in the volume pool"
is "$(sql "SELECT size, status FROM volume WHERE id='data1'")" "$((10 << 30))	available" "the record"
write 512M "$V/data1/size" 2>/dev/null
is "$(cat "$V/data1/size")" $((10 << 30)) "shrinking is refused"
write "scratch space" "$V/data1/name"; is "$(sql "SELECT name FROM volume WHERE id='data1'")" "scratch space" "name"
fails_with EINVAL "a name of two lines is refused" write "$(printf 'a\nb')" "$V/data1/name"
fails_with EACCES "status is read-only" write in-use "$V/data1/status"
ok "$([ ! -e "$V/data1/instance" ]; echo $?)" "no instance link while detached"

# attached (the attach itself comes with instances): links, EBUSY
sql "INSERT INTO instance (id) VALUES ('vm1'); UPDATE volume SET instance_id='vm1', status='in-use' WHERE id='data1'"
sleep 1.2   # a change made elsewhere shows within the attribute timeout
is "$(readlink "$V/data1/instance")" ../../instances/vm1 "instance@ points at the instance"
is "$(cat "$V/data1/status")" in-use "status in-use"
fails_with EBUSY "an attached volume cannot be removed" rmdir "$V/data1"
fails_with EBUSY "an attached volume cannot be resized" write 20G "$V/data1/size"
like "$(cat "$V/data1/error")" "EBUSY rmdir: volume data1 is attached to instance vm1" "the refusal is logged"
ok "$([ -f "$STORAGE/volumes/data1" ]; echo $?)" "the bytes are untouched"
is "$(perl -MJSON::PP -e 'local $/; print decode_json(<STDIN>)->{instance}' < "$V/data1/info.json")" \
	vm1 "info.json names the instance"
cat "$V/data1/info.json" > "$T/v.json" && cp "$T/v.json" "$V/data1/info.json"; ok $? "an attached volume's info.json can be written back"
write "$(cat "$V/data1/size")" "$V/data1/size"; ok $? "and its size"
sql "UPDATE volume SET instance_id=NULL, status='available' WHERE id='data1'"
sleep 1.2

rmdir "$V/data1"; ok $? "rmdir of a detached volume"
is "$(sql "SELECT COUNT(*) FROM volume")" 0 "the record is gone"
ok "$([ ! -e "$STORAGE/volumes/data1" ]; echo $?)" "and the bytes"
ok "$([ ! -e "$V/data1" ]; echo $?)" "and the directory"

# a draft is removed without touching storage; bytes left in the pool are adopted
mkdir "$V/d2" && rmdir "$V/d2"; ok $? "a draft can be removed"
truncate -s 5M "$STORAGE/volumes/orphan"
mkdir "$V/orphan"; is "$(cat "$V/orphan/size") $(cat "$V/orphan/status")" "5242880 available" "bytes in the pool are adopted"

done_testing
