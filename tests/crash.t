#!/bin/bash
# SPEC rule 6: provisioning is journaled.  epfs is killed with SIGKILL in the
# middle of each step of provisioning; after a restart every instance has a
# domain and a root disk, or neither, and nothing is left behind.
. "$(dirname "$0")/lib.sh"
epfs_setup
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
printf '\n[debug]\nstep_delay_ms=400\n' >> "$EPFS_CONF"
epfs_umount; epfs_mount
POLLWAIT=$EPFS_BUILDDIR/tests/pollwait

mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"
mkdir "$MNT/images/deb" && write 64M "$MNT/images/deb/size"

# check_consistent: every instance has a domain and a root disk, or neither
check_consistent() {
	local what=$1 bad=0 id status dom disk
	while read -r id status; do
		dom=0; virsh -q -c "$URI" dominfo "$id" >/dev/null 2>&1 && dom=1
		disk=0; [ -e "$STORAGE/volumes/$id.root" ] && disk=1
		if [ "$dom" != "$disk" ] || { [ "$status" = created ] && [ "$dom" = 0 ]; } ||
		   { [ "$status" != created ] && [ "$dom" = 1 ]; }; then
			diag "$what: $id is $status, domain $dom, root disk $disk"
			bad=1
		fi
	done < <(sql "SELECT id, status FROM instance")
	# nothing without a record
	for f in "$STORAGE"/volumes/*.root; do
		[ -e "$f" ] || continue
		id=$(basename "$f" .root)
		[ "$(sql "SELECT COUNT(*) FROM instance WHERE id='$id'")" = 1 ] || { diag "$what: orphan disk $f"; bad=1; }
	done
	for d in $(virsh -q -c "$URI" list --all --name); do
		[ "$d" = test ] && continue
		[ "$(sql "SELECT COUNT(*) FROM instance WHERE id='$d'")" = 1 ] || { diag "$what: orphan domain $d"; bad=1; }
	done
	is "$(sql 'SELECT COUNT(*) FROM journal')" 0 "$what: the journal is empty"
	ok $bad "$what: instances, domains and root disks agree"
}

n=0
for step in "progress 10" "progress 40" "progress 60" "progress 80"; do
	n=$((n + 1))
	mkdir "$MNT/instances/c$n"
	ln -s ../../images/deb "$MNT/instances/c$n/image"
	write 128M "$MNT/instances/c$n/memory"
	(write running "$MNT/instances/c$n/state" 2>/dev/null) &
	WRITER=$!
	"$POLLWAIT" "$MNT/instances/c$n/events" "$step" 30 > /dev/null; ok $? "c$n reached '$step'"
	kill -9 "$EPFS_PID"
	wait "$EPFS_PID" 2>/dev/null
	EPFS_PID=
	wait "$WRITER" 2>/dev/null
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	epfs_mount; ok $? "epfs restarts after SIGKILL at '$step'"
	check_consistent "killed at '$step'"
	like "$(cat "$MNT/instances/c$n/state")" '^(draft|running)$' "c$n is a draft again (or finished)"
done

# and what was rolled back can be provisioned again
write running "$MNT/instances/c1/state"; ok $? "a rolled-back instance starts"
is "$(virsh -q -c "$URI" domstate c1)" running "and runs"
check_consistent "after a restart"

done_testing
