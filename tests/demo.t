#!/bin/bash
# scripts/demo: up gives a browsable tree with sample data, up twice is safe,
# down stops everything it started.
. "$(dirname "$0")/lib.sh"
trap 'EPFS_STATE=$T/state "$EPFS_SRCDIR/scripts/demo" down >/dev/null 2>&1; rm -rf "$T"' EXIT

export EPFS_STATE=$T/state
"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up.log" 2>&1; ok $? "demo up"
mountpoint -q "$T/ep"; ok $? "the tree is mounted"
like "$(cat "$T/up.log")" "A short tour" "it prints a tour"
[ "$(ls "$T/ep/images" | wc -l)" -ge 3 ]; ok $? "sample images"
[ "$(ls "$T/ep/volumes" | wc -l)" -ge 2 ]; ok $? "sample volumes"
is "$(cat "$T/ep/images/debian-12/status")" available "sample images have bytes"
is "$(stat -c %s "$EPFS_STATE/storage/images/debian-12")" $((20 << 30)) "in the dir storage backend"
is "$(cat "$T/ep/images/.unregistered")" alpine-3.19 "and one image waits for registration"
like "$(cat "$T/ep/.epfs/health")" "database ok" "the private MariaDB serves it"
virsh -c "test+unix:///default?socket=$EPFS_STATE/libvirt/libvirt-sock" list --all >/dev/null 2>&1
ok $? "libvirtd serves the test driver"

mkdir "$T/ep/images/mine" && write 1G "$T/ep/images/mine/size"
"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up2.log" 2>&1; ok $? "demo up again"
is "$(cat "$T/ep/images/mine/size")" 1073741824 "keeps what was there"
is "$(cat "$T/ep/images/debian-12/size")" $((20 << 30)) "and does not load the samples twice"

"$EPFS_SRCDIR/scripts/demo" down > "$T/down.log" 2>&1; ok $? "demo down"
! mountpoint -q "$T/ep"; ok $? "unmounted"
! pgrep -f "config=$EPFS_STATE/epfs.conf" >/dev/null; ok $? "epfs has exited"
! pgrep -f "datadir=$EPFS_STATE/db/data" >/dev/null; ok $? "MariaDB has stopped"
! pgrep -f "$EPFS_STATE/libvirt/libvirtd.conf" >/dev/null; ok $? "libvirtd has stopped"

"$EPFS_SRCDIR/scripts/demo" up "$T/ep" > "$T/up3.log" 2>&1; ok $? "up after down"
is "$(cat "$T/ep/images/mine/size")" 1073741824 "the data survived"

done_testing
