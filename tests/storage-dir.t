#!/bin/bash
# storage-dir.t: the storage interface on the dir backend, then its bytes on disk.
#
# Runs tests/storage-test (found through $STORAGE_TEST, or $BUILDDIR/tests/storage-test)
# against a scratch directory, then drives it one operation at a time and looks
# at the files: sparseness, snapshot and clone contents, sidecars, leftovers.
set -u

builddir=${BUILDDIR:-${EPFS_BUILDDIR:-.}}
storage_test=${STORAGE_TEST:-$builddir/tests/storage-test}
if [ ! -x "$storage_test" ]; then
	echo "Bail out! $storage_test is not built (set STORAGE_TEST or BUILDDIR)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/storage-dir.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dir=$tmp/storage
conf=$tmp/epfs.conf
cat > "$conf" <<EOF
[storage]
backend=dir
path=$dir
EOF

. "$(dirname "$0")/programs.sh"

# Every call opens the storage afresh, as a restarted daemon would.
st() {
	"$storage_test" "$conf" "$@"
}

bytes() {
	stat -c %s "$1"
}

allocated() {
	echo $(($(stat -c '%b * %B' "$1")))
}

# The backend-agnostic tests first, renumbered into this script's plan.
"$storage_test" "$conf" > "$tmp/tap" 2>&1
status=$?
while IFS= read -r line; do
	case $line in
	"ok "*)
		ok 0 "interface: ${line#* - }" ;;
	"not ok "*)
		ok 1 "interface: ${line#* - }" ;;
	"1.."*)
		;;
	"#"*)
		echo "$line" ;;
	*)
		echo "# $line" ;;
	esac
done < "$tmp/tap"
ok $status "storage-test passes on the dir backend"

test -d "$dir/images" && test -d "$dir/volumes"
ok $? "open creates the pools images/ and volumes/"
test -z "$(find "$dir" -mindepth 2)"
ok $? "storage-test left nothing behind"

# A 1 GiB image is a sparse file.
check "create images/big 1G" st create images big 1G
test "$(bytes "$dir/images/big")" -eq $((1 << 30))
ok $? "images/big is a 1 GiB file"
test "$(allocated "$dir/images/big")" -le $((1 << 20))
ok $? "a new 1 GiB image uses almost no blocks ($(allocated "$dir/images/big") bytes)"
refused EEXIST "create images/big again" st create images big 1G
check "stat images/big" st stat images big
grep -qx "size $((1 << 30))" "$tmp/out"
ok $? "stat reports the size"

# Data written before a snapshot is in the snapshot, and not what comes after.
for mib in 0 100 1000; do
	dd if=/dev/urandom of="$dir/images/big" bs=1M count=1 seek=$mib conv=notrunc status=none
done
cp --sparse=always "$dir/images/big" "$tmp/expected"
check "snap-create images/big@s1" st snap-create images big s1
cmp -s "$dir/images/big@s1" "$tmp/expected"
ok $? "the snapshot file has the image's bytes"
test "$(stat -c %a "$dir/images/big@s1")" = 400
ok $? "the snapshot file is read-only"
test "$(allocated "$dir/images/big@s1")" -le $((8 << 20))
ok $? "the snapshot stays sparse ($(allocated "$dir/images/big@s1") bytes)"
dd if=/dev/urandom of="$dir/images/big" bs=1M count=1 seek=500 conv=notrunc status=none
cmp -s "$dir/images/big@s1" "$tmp/expected"
ok $? "writing the image after the snapshot leaves the snapshot alone"
refused EEXIST "snap-create images/big@s1 again" st snap-create images big s1

# Clones copy a protected snapshot, sparsely, and remember their parent.
refused EINVAL "clone of an unprotected snapshot" st clone images big s1 volumes child
check "snap-protect images/big@s1" st snap-protect images big s1
grep -q '"s1"' "$dir/images/.meta.big.json"
ok $? "the sidecar .meta.big.json records the protected snapshot"
check "clone images/big@s1 to volumes/child" st clone images big s1 volumes child
cmp -s "$dir/volumes/child" "$tmp/expected"
ok $? "the clone has the snapshot's bytes"
test "$(allocated "$dir/volumes/child")" -le $((8 << 20))
ok $? "the clone stays sparse ($(allocated "$dir/volumes/child") bytes)"
grep -q '"images/big@s1"' "$dir/volumes/.meta.child.json"
ok $? "the clone's sidecar names its parent"
check "clone images/big@s1 to images/sibling" st clone images big s1 images sibling
test -z "$(find "$dir" -name '.tmp.*')"
ok $? "no temp files are left"

# Each call below is a new process: the state must come from the files.
check "stat volumes/child after a restart" st stat volumes child
grep -qx "parent images/big@s1" "$tmp/out"
ok $? "the clone still knows its parent"
check "children of images/big@s1 after a restart" st children images big s1
printf 'images/sibling\nvolumes/child\n' | cmp -s - "$tmp/out"
ok $? "children lists both clones, sorted"
check "snap-list images/big after a restart" st snap-list images big
grep -qx "s1 $((1 << 30)) protected" "$tmp/out"
ok $? "the snapshot is still protected"
refused EBUSY "snap-unprotect with clones" st snap-unprotect images big s1
grep -q "volumes/child" "$tmp/err"
ok $? "the refusal names the clone"
refused EBUSY "snap-remove of a protected snapshot" st snap-remove images big s1
refused EBUSY "remove of an image with snapshots" st remove images big
check "list images" st list images
printf 'big\nsibling\n' | cmp -s - "$tmp/out"
ok $? "list shows images only, not snapshots or sidecars"

check "disk-source volumes/child" st disk-source volumes child
printf "file\n<source file='%s'/>\n" "$dir/volumes/child" | cmp -s - "$tmp/out"
ok $? "disk-source is a file source with the absolute path"

# A copy has the bytes, stays sparse, has no parent, and appears only whole.
check "copy volumes/child to images/golden" st copy volumes child images golden
tail -n 1 "$tmp/out" | grep -qx "progress $((1 << 30)) $((1 << 30))"
ok $? "the copy's progress ends at 1 GiB of 1 GiB"
cmp -s "$dir/images/golden" "$dir/volumes/child"
ok $? "the copy has the clone's bytes"
test "$(allocated "$dir/images/golden")" -le $((8 << 20))
ok $? "the copy stays sparse ($(allocated "$dir/images/golden") bytes)"
test ! -e "$dir/images/.meta.golden.json"
ok $? "the copy has no sidecar, so no parent"
refused EEXIST "copy onto an existing image" st copy images big images golden
check "remove images/golden" st remove images golden

# Snapshots list oldest first (as on rbd): a snapshot file's mtime is when it was taken.
for s in b a c; do st snap-create images big "$s"; done
check "snap-list images/big" st snap-list images big
test "$(cut -d' ' -f1 "$tmp/out" | paste -sd' ')" = "s1 b a c"
ok $? "snap-list is in creation order: s1 b a c ($(cut -d' ' -f1 "$tmp/out" | paste -sd' '))"
for s in b a c; do st snap-remove images big "$s"; done

# What a crash leaves behind is removed when the storage is opened.
echo half > "$dir/images/.tmp.big.Ab12Cd"
echo '{"parent": "images/big@s1"}' > "$dir/volumes/.meta.ghost.json"
check "open after a crash" st ping
test ! -e "$dir/images/.tmp.big.Ab12Cd"
ok $? "open removes leftover temp files"
test ! -e "$dir/volumes/.meta.ghost.json"
ok $? "open removes a sidecar whose image is gone"
test -e "$dir/volumes/.meta.child.json"
ok $? "open keeps the sidecars of existing images"

# Shrinking and growing are the caller's policy; the file follows.
check "resize volumes/child 2G" st resize volumes child 2G
test "$(bytes "$dir/volumes/child")" -eq $((2 << 30))
ok $? "the clone file is 2 GiB"
test "$(allocated "$dir/volumes/child")" -le $((8 << 20))
ok $? "growing keeps it sparse"

# Tear down in the only order the backend allows.
check "remove volumes/child" st remove volumes child
check "remove images/sibling" st remove images sibling
check "snap-unprotect images/big@s1" st snap-unprotect images big s1
test ! -e "$dir/images/.meta.big.json"
ok $? "a sidecar with nothing to record is removed"
check "snap-remove images/big@s1" st snap-remove images big s1
check "remove images/big" st remove images big
test -z "$(find "$dir" -mindepth 2)"
ok $? "the pools are empty"

# Pool names come from the config.
cat > "$tmp/pools.conf" <<EOF
[storage]
path=$dir
image_pool=gold
volume_pool=disks
EOF
"$storage_test" "$tmp/pools.conf" ping
ok $? "open with image_pool=gold volume_pool=disks"
test -d "$dir/gold" && test -d "$dir/disks"
ok $? "the configured pools are created"
printf '[storage]\nbackend=nope\npath=%s\n' "$dir" > "$tmp/bad.conf"
refused EINVAL "an unknown backend is refused" "$storage_test" "$tmp/bad.conf" ping

echo "1..$n"
[ "$failed" -eq 0 ]
