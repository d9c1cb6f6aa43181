#!/bin/bash
# SPEC rule 8: changes through the mount show at once; changes made elsewhere
# (by SQL, by another mount) within the attribute timeout, by invalidation.
. "$(dirname "$0")/lib.sh"
epfs_setup

mkdir "$MNT/images/img"
cat "$MNT/images/img/name" "$MNT/images/img/info.json" > /dev/null   # now in the kernel's caches
write "first" "$MNT/images/img/name"
is "$(cat "$MNT/images/img/name")" first "a write through the mount is visible at once"
like "$(cat "$MNT/images/img/info.json")" '"name": "first"' "in every file that shows it"
is "$(stat -c %s "$MNT/images/img/name")" 6 "and in stat"

# a change in the database, by hand
sql "UPDATE image SET name='changed in sql' WHERE id='img'"
sleep 1.5
is "$(cat "$MNT/images/img/name")" "changed in sql" "an SQL change shows within the timeout"
is "$(stat -c %s "$MNT/images/img/name")" 15 "with the right size"
sql "INSERT INTO image (id) VALUES ('from-sql')"
sleep 1.5
ok "$([ -d "$MNT/images/from-sql" ]; echo $?)" "a record inserted by SQL appears"
sql "DELETE FROM image WHERE id='from-sql'"
sleep 1.5
ok "$([ ! -e "$MNT/images/from-sql" ]; echo $?)" "and disappears when deleted"

# a second mount of the same database
MNT2=$T/mnt2; mkdir -p "$MNT2"
"$EPFS_BIN" -f -o "config=$EPFS_CONF" "$MNT2" >>"$T/epfs2.log" 2>&1 &
PID2=$!
for _ in $(seq 100); do mountpoint -q "$MNT2" && break; sleep 0.05; done
mountpoint -q "$MNT2"; ok $? "a second mount"
cat "$MNT2/images/img/name" > /dev/null
write "from mount one" "$MNT/images/img/name"
sleep 1.5
is "$(cat "$MNT2/images/img/name")" "from mount one" "the other mount sees the change"
mkdir "$MNT2/volumes/v2"
sleep 1.5
ok "$([ -d "$MNT/volumes/v2" ]; echo $?)" "and its new resources"
is "$(stat -c %i "$MNT/images/img/name")" "$(stat -c %i "$MNT2/images/img/name")" "the same inode numbers on both mounts"
fusermount3 -u "$MNT2"; wait $PID2

# the kernel's caches are on: repeated stats do not reach the daemon
EPFS_OPTS=""
stat "$MNT/images/img/name" > /dev/null
n1=$(awk '$1 == "getattr" {print $2}' "$MNT/.epfs/stats")
for _ in $(seq 20); do stat "$MNT/images/img/name" > /dev/null; done
n2=$(awk '$1 == "getattr" {print $2}' "$MNT/.epfs/stats")
[ $((n2 - n1)) -lt 5 ]; ok $? "twenty stats within the timeout are served by the kernel ($((n2 - n1)) reached epfs)"

# with a long cache timeout only explicit invalidation can show changes
epfs_umount
EPFS_ATTR_TIMEOUT=60 EPFS_SYNC_INTERVAL=0.3
write_config; epfs_mount
write aaaaa "$MNT/images/img/name"
cat "$MNT/images/img/name" "$MNT/images/img/info.json" > /dev/null
write bbbbb "$MNT/images/img/name"
is "$(cat "$MNT/images/img/name")" bbbbb "a same-length change shows at once with a 60 s cache (the page cache is invalidated)"
like "$(cat "$MNT/images/img/info.json")" '"name": "bbbbb"' "in info.json too"
sql "UPDATE image SET name='ccccc' WHERE id='img'"
sleep 1
is "$(cat "$MNT/images/img/name")" ccccc "an SQL change shows within a second with a 60 s cache (change_log invalidation)"
sql "INSERT INTO volume (id) VALUES ('late')"
sleep 1
ok "$([ -d "$MNT/volumes/late" ]; echo $?)" "a new record shows in its directory too"

done_testing
