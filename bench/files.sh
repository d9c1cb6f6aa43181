#!/bin/bash
# bench/files.sh: read and write throughput of a large file through a project's
# work/ directory, against the same file on the backing store directly (local
# file store) and against sshfs on the same sshd (SFTP file store).
#
#   bash bench/files.sh            (EPFS_BENCH_MIB=1024 by default)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export EPFS_SRCDIR=$top
export EPFS_BUILDDIR=${EPFS_BUILDDIR:-$PWD}
[ -x "$EPFS_BUILDDIR/epfs" ] || EPFS_BUILDDIR=$top
MIB=${EPFS_BENCH_MIB:-1024}
command -v sshfs >/dev/null || { apt-get install -y -qq --no-install-recommends sshfs >/dev/null 2>&1 || true; }

. "$top/tests/lib.sh"
. "$top/scripts/sshd-test.sh"

# rate SECONDS -> MiB/s
rate() { awk -v s="$1" -v m="$MIB" 'BEGIN { printf "%.0f", m / s }'; }
now() { date +%s.%N; }
# write_read DIR: prints "write_MiBs read_MiBs" for a MIB file in DIR
write_read() {
	local f=$1/bench.bin t0 t1 t2
	sync; echo 3 > /proc/sys/vm/drop_caches
	t0=$(now)
	dd if=/dev/zero of="$f" bs=1M count="$MIB" conv=fsync status=none
	t1=$(now)
	sync; echo 3 > /proc/sys/vm/drop_caches
	dd if="$f" of=/dev/null bs=1M status=none
	t2=$(now)
	rm -f "$f"
	echo "$(rate "$(echo "$t1 - $t0" | bc -l)") $(rate "$(echo "$t2 - $t1" | bc -l)")"
}

trap 'fusermount3 -u "$T/sshfs" 2>/dev/null; epfs_umount; sshd_test_stop "$T/sshd" >/dev/null 2>&1; db_stop; rm -rf "$T"' EXIT
db_start >/dev/null || exit 1
mkdir -p "$STORAGE" "$T/console" "$T/files"
write_config; epfs_mount || exit 1
mkdir "$MNT/users/u" "$MNT/users/u/projects/p"
W=$MNT/users/u/projects/p/work
read -r ew er < <(write_read "$W")
read -r dw dr < <(write_read "$T/files/projects/u/p/work")
epfs_umount

mkdir -p "$T/sshd"
sshd_test_start "$T/sshd" >/dev/null 2>&1 || exit 1
EPFS_FILESTORE=sftp EPFS_FILESTORE_CONF="host=$SSHD_TEST_HOST
port=$SSHD_TEST_PORT
user=$SSHD_TEST_USER
key=$SSHD_TEST_KEY
known_hosts=$SSHD_TEST_KNOWN_HOSTS
root=$T/files"
write_config; epfs_mount || exit 1
mkdir "$MNT/users/v" "$MNT/users/v/projects/p"
read -r sw sr < <(write_read "$MNT/users/v/projects/p/work")
if command -v sshfs >/dev/null; then
	mkdir -p "$T/sshfs"
	sshfs -F "$SSHD_TEST_SSH_CONFIG" "epfs-test:$T/files" "$T/sshfs"
	read -r fw fr < <(write_read "$T/sshfs/projects/v/p/work")
else
	fw=0 fr=0
fi

printf '%s MiB, MiB/s (higher is better); ratio = through epfs / baseline\n' "$MIB"
printf '%-34s %8s %8s %8s %8s\n' "" write read "w ratio" "r ratio"
printf '%-34s %8s %8s\n' "local: work/ through epfs" "$ew" "$er"
printf '%-34s %8s %8s %8.2f %8.2f\n' "local: the store directly" "$dw" "$dr" "$(echo "$ew / $dw" | bc -l)" "$(echo "$er / $dr" | bc -l)"
printf '%-34s %8s %8s\n' "sftp: work/ through epfs" "$sw" "$sr"
if [ "$fw" != 0 ]; then
	printf '%-34s %8s %8s %8.2f %8.2f\n' "sftp: sshfs on the same sshd" "$fw" "$fr" "$(echo "$sw / $fw" | bc -l)" "$(echo "$sr / $fr" | bc -l)"
else
	echo "sshfs not available: no SFTP baseline"
fi
