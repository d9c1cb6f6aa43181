#!/bin/bash
# storage-rbd.t: the storage interface on the rbd backend, against a real Ceph.
#
# Starts a one-monitor, one-OSD cluster (scripts/ceph-micro.sh, memstore) in a
# scratch directory, runs tests/storage-test on it (the program the dir backend
# passes), then drives it one operation at a time and looks at the cluster with
# `rbd`: formats, parents, children, snapshots, copies, libvirt's source, cephx
# with a restricted user.  Then the faults: the cluster stops and comes back
# under a running process, and an OSD restarts in the middle of a copy
# (bluestore, so the data survives).  Finds tests/storage-test through
# $STORAGE_TEST, else $BUILDDIR or $EPFS_BUILDDIR.
set -u

srcdir=${EPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${BUILDDIR:-${EPFS_BUILDDIR:-.}}
storage_test=${STORAGE_TEST:-$builddir/tests/storage-test}
if [ ! -x "$storage_test" ]; then
	echo "Bail out! $storage_test is not built (set STORAGE_TEST or BUILDDIR)"
	exit 1
fi
for cmd in ceph-mon ceph-osd monmaptool ceph rbd rados; do
	if ! command -v "$cmd" >/dev/null; then
		echo "Bail out! $cmd is missing (install ceph-mon ceph-osd ceph-common)"
		exit 1
	fi
done
. "$srcdir/scripts/ceph-micro.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/storage-rbd.XXXXXX") || exit 1
ceph=$tmp/ceph            # memstore: the interface, outside checks, faults
cephx=$tmp/cephx          # memstore with cephx: a restricted client
blue=$tmp/blue            # bluestore: an OSD restart during a copy
shell_pid=
teardown() {
	[ -z "$shell_pid" ] || kill "$shell_pid" 2>/dev/null
	ceph_micro_stop "$blue"
	ceph_micro_stop "$cephx"
	ceph_micro_stop "$ceph"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap teardown EXIT

conf=$tmp/epfs.conf
cat > "$conf" <<EOF
[storage]
backend=rbd
ceph_conf=$ceph/ceph.conf
timeout=3
EOF

. "$(dirname "$0")/programs.sh"

diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# Every call opens the storage afresh, as a restarted daemon would.
st() {
	"$storage_test" "$conf" "$@"
}

# The cluster as an administrator sees it.
rbdc() {
	timeout 30 rbd -c "$ceph/ceph.conf" "$@"
}

# interface CONFIG LABEL: storage-test's own TAP, renumbered into this plan.
interface() {
	local status line
	"$storage_test" "$1" > "$tmp/tap" 2>&1
	status=$?
	while IFS= read -r line; do
		case $line in
		"ok "*) ok 0 "$2: ${line#* - }" ;;
		"not ok "*) ok 1 "$2: ${line#* - }" ;;
		"1.."*) ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done < "$tmp/tap"
	ok $status "storage-test passes on the rbd backend ($2)"
}

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

started=$(now_ms)
ceph_micro_start "$ceph" memstore
status=$?
ok $status "a memstore micro cluster starts ($(($(now_ms) - started)) ms)"
if [ $status -ne 0 ]; then
	echo "Bail out! no Ceph cluster"
	exit 1
fi
port=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$ceph/ceph.conf")
ceph_micro_start "$ceph" memstore
ok $? "starting it again is a no-op"

# ---- the backend-agnostic tests ----

interface "$conf" interface

rbdc ls images > "$tmp/out" && rbdc ls volumes >> "$tmp/out"
! grep -q '^st-' "$tmp/out"
ok $? "storage-test left nothing in the pools"

# ---- what the cluster holds, seen with rbd ----

check "create images/base 64M" st create images base 64M
rbdc info images/base > "$tmp/info"
grep -q 'size 64 MiB' "$tmp/info" && grep -q 'format: 2' "$tmp/info" &&
	grep -q 'features: layering$' "$tmp/info"
ok $? "rbd info: 64 MiB, format 2, layering only"
refused EEXIST "create images/base again" st create images base 1M

# data written before a snapshot is the clone's; written after, not
head -c 4M /dev/urandom > "$tmp/data"
rbdc import --no-progress "$tmp/data" images/seed >/dev/null 2>&1 &&
	rbdc resize --no-progress --size 64M images/seed >/dev/null 2>&1
ok $? "rbd import images/seed (4 MiB of data, 64 MiB image)"
check "snap-create images/seed@gold" st snap-create images seed gold
check "snap-protect images/seed@gold" st snap-protect images seed gold
rbdc snap ls images/seed > "$tmp/out"
grep -Eq '^ +[0-9]+ +gold +64 MiB +yes' "$tmp/out"
ok $? "rbd snap ls: gold, 64 MiB, protected"
head -c 1M /dev/urandom | rbdc import --no-progress - images/seed-tail >/dev/null 2>&1
check "clone images/seed@gold to volumes/vm1" st clone images seed gold volumes vm1
rbdc info volumes/vm1 > "$tmp/info"
grep -q 'parent: images/seed@gold' "$tmp/info"
ok $? "rbd info volumes/vm1: parent images/seed@gold"
check "clone images/seed@gold to images/vm2" st clone images seed gold images vm2
rbdc children images/seed@gold > "$tmp/out"
printf 'images/vm2\nvolumes/vm1\n' | cmp -s - <(sort "$tmp/out")
ok $? "rbd children images/seed@gold: images/vm2 and volumes/vm1"
check "children of images/seed@gold" st children images seed gold
printf 'images/vm2\nvolumes/vm1\n' | cmp -s - "$tmp/out"
ok $? "children lists both clones, sorted"
check "stat volumes/vm1" st stat volumes vm1
grep -qx 'parent images/seed@gold' "$tmp/out" && grep -qx "size $((64 << 20))" "$tmp/out"
ok $? "stat shows the parent and the size"
rbdc export volumes/vm1 - 2>/dev/null | head -c 4M | cmp -s - "$tmp/data"
ok $? "the clone reads the parent's data"
refused EBUSY "remove of an image with snapshots and clones" st remove images seed
grep -q 'gold' "$tmp/err" && grep -q 'volumes/vm1' "$tmp/err"
ok $? "the refusal names the snapshot and the clones"
refused EBUSY "snap-unprotect with clones" st snap-unprotect images seed gold
grep -q 'volumes/vm1' "$tmp/err"
ok $? "the refusal names the clone"
refused EBUSY "snap-remove of a protected snapshot" st snap-remove images seed gold

# an image made with the object map reports what it allocates
rbdc create --size 64M --image-feature layering,exclusive-lock,object-map,fast-diff images/mapped \
	>/dev/null 2>&1 && rbdc bench --io-type write --io-size 4M --io-total 8M images/mapped >/dev/null 2>&1
check "stat an image with fast-diff" st stat images mapped
grep -qx "used $((8 << 20))" "$tmp/out"
ok $? "its used is the 8 MiB written ($(grep used "$tmp/out"))"
check "stat an image without it" st stat images base
grep -qx "used 0" "$tmp/out"
ok $? "without an object map, used is 0 (unknown)"

# snapshots are listed oldest first, like rbd snap ls
for s in b a c; do st snap-create images base "$s"; done
check "snap-list images/base" st snap-list images base
cut -d' ' -f1 "$tmp/out" | paste -sd' ' | grep -qx 'b a c'
ok $? "snap-list is in creation order: b a c ($(cut -d' ' -f1 "$tmp/out" | paste -sd' '))"
rbdc snap ls images/base | awk 'NR > 1 { print $2 }' | paste -sd' ' | grep -qx 'b a c'
ok $? "so is rbd snap ls"
for s in b a c; do st snap-remove images base "$s"; done

# the libvirt source: the monitor of ceph.conf, no <auth> without cephx
check "disk-source volumes/vm1" st disk-source volumes vm1
printf "network\n<source protocol='rbd' name='volumes/vm1'><host name='127.0.0.1' port='%s'/></source>\n" \
	"$port" | cmp -s - "$tmp/out"
ok $? "a network source naming the monitor 127.0.0.1:$port"
sed 's/^/#   /' "$tmp/out"
if command -v qemu-img >/dev/null && qemu-img --help | grep -qw rbd; then
	host=$(sed -n "s/.*<host name='\([^']*\)' port='\([0-9]*\)'.*/\1/p" "$tmp/out")
	hport=$(sed -n "s/.*<host name='\([^']*\)' port='\([0-9]*\)'.*/\2/p" "$tmp/out")
	timeout 30 qemu-img info --output=json "json:{\"file\":{\"driver\":\"rbd\",\"pool\":\"volumes\",
		\"image\":\"vm1\",\"conf\":\"/dev/null\",\"server\":[{\"host\":\"$host\",\"port\":\"$hport\"}]}}" \
		2>&1 | grep -q "\"virtual-size\": $((64 << 20))"
	ok $? "qemu-img opens volumes/vm1 with only that host and port"
else
	ok 0 "# SKIP qemu-img has no rbd driver (install qemu-utils qemu-block-extra)"
fi

# copies: the data, no snapshots, no parent, and a name only once complete
check "copy volumes/vm1 to images/golden" st copy volumes vm1 images golden
tail -n 1 "$tmp/out" | grep -qx "progress $((64 << 20)) $((64 << 20))"
ok $? "the copy's progress ends at 64 MiB of 64 MiB"
rbdc info images/golden > "$tmp/info"
! grep -q parent "$tmp/info" && grep -q 'size 64 MiB' "$tmp/info"
ok $? "rbd info images/golden: 64 MiB, no parent"
cmp -s <(rbdc export volumes/vm1 - 2>/dev/null) <(rbdc export images/golden - 2>/dev/null)
ok $? "rbd export: the copy has the clone's bytes"
refused EEXIST "copy onto an existing image" st copy images seed images golden
# a temp that a crash left is hidden, then removed when the storage opens
rbdc create --size 1M volumes/.tmp.vm9.0badc0de >/dev/null 2>&1
check "list volumes" st list volumes
! grep -q tmp "$tmp/out"
ok $? "list hides the temp of an interrupted copy"
! rbdc ls volumes | grep -q '^\.tmp\.'
ok $? "opening the storage removed it"

# tear down in the only order rbd allows, then check it is gone
check "remove volumes/vm1" st remove volumes vm1
check "remove images/vm2" st remove images vm2
check "snap-unprotect images/seed@gold" st snap-unprotect images seed gold
check "snap-remove images/seed@gold" st snap-remove images seed gold
for image in seed seed-tail golden base mapped; do
	st remove images "$image" || echo "# cannot remove images/$image"
done
rbdc ls images > "$tmp/out" && rbdc ls volumes >> "$tmp/out"
test ! -s "$tmp/out"
ok $? "rbd ls: the pools are empty"
refused ENOENT "list of a pool that does not exist" st list nopool
refused ENOENT "create in a pool that does not exist" st create nopool x 1M

# configuration errors stop open; a cluster that is down does not (below)
printf '[storage]\nbackend=rbd\nceph_conf=%s/none.conf\n' "$tmp" > "$tmp/bad.conf"
refused ENOENT "open with a ceph.conf that does not exist" "$storage_test" "$tmp/bad.conf" ping
printf '[storage]\nbackend=rbd\nceph_conf=%s\nclient_id=client.admin\n' "$ceph/ceph.conf" > "$tmp/bad.conf"
refused EINVAL "open with client_id=client.admin (the id is admin)" "$storage_test" "$tmp/bad.conf" ping
printf '[storage]\nbackend=rbd\nceph_conf=%s\ncephx=maybe\n' "$ceph/ceph.conf" > "$tmp/bad.conf"
refused EINVAL "open with cephx=maybe" "$storage_test" "$tmp/bad.conf" ping

# ---- latency per call, to compare with the same operations through FUSE ----

"$storage_test" "$conf" timing 10 > "$tmp/timing" 2>&1
ok $? "timing: 10 creates, clones and removes"
sed 's/^#* */# /' "$tmp/timing"

# ---- cephx with a user that has `profile rbd` on the two pools only ----

CEPH_MICRO_AUTH=cephx ceph_micro_start "$cephx" memstore
ok $? "a micro cluster with cephx starts"
cat > "$tmp/cephx.conf" <<EOF
[storage]
backend=rbd
ceph_conf=$cephx/ceph.conf
client_id=epfs
keyring=$cephx/client.epfs.keyring
secret_usage=epfs-ceph
timeout=3
EOF
interface "$tmp/cephx.conf" cephx
"$storage_test" "$tmp/cephx.conf" create volumes v 1M &&
	"$storage_test" "$tmp/cephx.conf" disk-source volumes v > "$tmp/out"
grep -q "<auth username='epfs'><secret type='ceph' usage='epfs-ceph'/></auth></source>" "$tmp/out"
ok $? "with cephx the source carries <auth> for client.epfs and the libvirt secret"
"$storage_test" "$tmp/cephx.conf" remove volumes v
printf '[client.epfs]\n\tkey = AQBXr/9kAAAAABAAjJ9rTB8mPBTsWQ0sOrNUFA==\n' > "$tmp/wrong.keyring"
sed "s|^keyring=.*|keyring=$tmp/wrong.keyring|" "$tmp/cephx.conf" > "$tmp/wrongkey.conf"
refused EACCES "a wrong key is refused" "$storage_test" "$tmp/wrongkey.conf" list images
ceph_micro_stop "$cephx"

# ---- the cluster goes away under a running process, and comes back ----

# ask COMMAND...: one command to the shell coprocess; its answer line in $reply,
# the wall-clock milliseconds in $took, its output in $tmp/shell.out
ask() {
	local line t0
	t0=$(now_ms)
	echo "$*" >&"${SH[1]}"
	: > "$tmp/shell.out"
	reply="= EOF"
	while IFS= read -r -t 60 line <&"${SH[0]}"; do
		case $line in
		"= "*) reply=$line; break ;;
		*) echo "$line" >> "$tmp/shell.out" ;;
		esac
	done
	took=$(($(now_ms) - t0))
}

# fails_fast DESCRIPTION: the last answer is EAGAIN, EIO or ETIMEDOUT within 6 s (timeout=3)
fails_fast() {
	[[ $reply =~ ^=\ (EAGAIN|EIO|ETIMEDOUT)\  ]] && [ "$took" -lt 6000 ]
	ok $? "$1 fails within 6 s ($took ms: ${reply#= })"
}

coproc SH { exec "$storage_test" "$conf" shell 2>&1; }
shell_pid=$SH_PID
ask create images alive 4M
[[ $reply == "= ok"* ]]
ok $? "a running process creates images/alive (${reply#= })"
ceph_micro_stop "$ceph"
ok $? "the cluster stops"
ask stat images alive
fails_fast "stat with the cluster gone"
ask create images other 1M
fails_fast "create with the cluster gone"
ask ping
fails_fast "ping with the cluster gone"
ceph_micro_start "$ceph" memstore
ok $? "the cluster starts again"
ask stat images alive
[[ $reply == "= ok"* ]] && grep -qx "size $((4 << 20))" "$tmp/shell.out"
ok $? "the same process stats images/alive again, without reopening (${reply#= })"
ask remove images alive
[[ $reply == "= ok"* ]]
ok $? "and removes it (${reply#= })"
exec {SH[1]}>&-
wait "$shell_pid"
shell_pid=

# opened while the cluster is down: the open succeeds, calls fail, then work
ceph_micro_stop "$ceph"
started=$(now_ms)
coproc SH { exec "$storage_test" "$conf" shell 2>&1; }
shell_pid=$SH_PID
ask ping
fails_fast "ping of a storage opened while the cluster is down"
ask list images
fails_fast "list of it"
ceph_micro_start "$ceph" memstore
ask ping
[[ $reply == "= ok"* ]]
ok $? "once the cluster is up, the same process reaches it (${reply#= })"
ask list volumes
[[ $reply == "= ok"* ]]
ok $? "and lists the pool (${reply#= })"
exec {SH[1]}>&-
wait "$shell_pid"
shell_pid=

# ---- an OSD restart in the middle of a copy (bluestore keeps the data) ----

started=$(now_ms)
ceph_micro_start "$blue" bluestore
ok $? "a bluestore micro cluster starts ($(($(now_ms) - started)) ms)"
head -c 128M /dev/urandom > "$tmp/big.raw"
timeout 60 rbd -c "$blue/ceph.conf" import --no-progress --image-feature layering \
	"$tmp/big.raw" images/big >/dev/null 2>&1
ok $? "rbd import images/big: 128 MiB of random data"

# copy_with_restart TIMEOUT DST: copy images/big to volumes/DST, restarting
# the OSD once an eighth of it is done; either the copy completes and equals
# the source, or it fails and volumes/DST does not exist
copy_with_restart() {
	local timeout=$1 dst=$2 pid done_at=0 rc i
	printf '[storage]\nbackend=rbd\nceph_conf=%s\ntimeout=%s\n' "$blue/ceph.conf" "$timeout" \
		> "$tmp/blue.conf"
	"$storage_test" "$tmp/blue.conf" copy images big volumes "$dst" > "$tmp/copy.out" 2> "$tmp/copy.err" &
	pid=$!
	for i in $(seq 1 1500); do
		done_at=$(tail -n 1 "$tmp/copy.out" 2>/dev/null | awk '/^progress/ { print $2 }')
		[ "${done_at:-0}" -ge $((16 << 20)) ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	ceph_micro_osd_restart "$blue"
	ok $? "timeout=$timeout: the OSD restarts while the copy is at ${done_at:-0} of $((128 << 20)) bytes"
	wait "$pid"
	rc=$?
	if [ $rc -eq 0 ]; then
		diag "timeout=$timeout: the copy outlived the restart"
		cmp -s "$tmp/big.raw" <(timeout 60 rbd -c "$blue/ceph.conf" export volumes/"$dst" - 2>/dev/null)
		ok $? "timeout=$timeout: the copy completed and equals the source"
	else
		diag "timeout=$timeout: the copy failed: $(cat "$tmp/copy.err")"
		grep -Eq '^(ETIMEDOUT|EAGAIN|EIO):' "$tmp/copy.err"
		ok $? "timeout=$timeout: the copy failed cleanly (ETIMEDOUT, EAGAIN or EIO)"
		! timeout 30 rbd -c "$blue/ceph.conf" info volumes/"$dst" >/dev/null 2>&1
		ok $? "timeout=$timeout: no volumes/$dst exists"
	fi
	"$storage_test" "$tmp/blue.conf" list volumes > "$tmp/out"
	! grep -q tmp "$tmp/out"
	ok $? "timeout=$timeout: list shows no half-made copy"
}
copy_with_restart 10 survived
copy_with_restart 1 hurried
cmp -s "$tmp/big.raw" <(timeout 60 rbd -c "$blue/ceph.conf" export images/big - 2>/dev/null)
ok $? "the source is intact after both restarts"
# a temp whose copy died still has that client's watch for 30 s (the OSD's
# watch timeout): rbd_remove refuses it until then, and a later open removes it
diag "after the restarts:" "$(timeout 30 rbd -c "$blue/ceph.conf" ls -l volumes 2>&1)"

echo "1..$n"
[ "$failed" -eq 0 ]
