#!/bin/bash
# Placement: an instance goes to the host with the most free memory that fits
# it (free = the host's memory less that of the instances placed on it).  Two
# hosts are libvirt test-driver host files of 2 GiB and 8 GiB.
. "$(dirname "$0")/lib.sh"
epfs_setup

host_file() {  # host_file PATH KiB
	cat > "$1" <<XML
<node>
  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><active>2</active></cpu>
  <memory>$2</memory>
</node>
XML
}
host_file "$T/small.xml" $((2 << 20))
host_file "$T/big.xml" $((8 << 20))
mkdir "$MNT/hosts/small" "$MNT/hosts/big"
write "test://$T/small.xml" "$MNT/hosts/small/uri"
write "test://$T/big.xml" "$MNT/hosts/big/uri"
is "$(cat "$MNT/hosts/small/memory") $(cat "$MNT/hosts/big/memory")" "$((2 << 30)) $((8 << 30))" "two hosts, 2 and 8 GiB"
mkdir "$MNT/images/deb" && write 64M "$MNT/images/deb/size"

start() {  # start ID MEMORY
	mkdir "$MNT/instances/$1" && ln -s ../../images/deb "$MNT/instances/$1/image" &&
		write "$2" "$MNT/instances/$1/memory" && write running "$MNT/instances/$1/state"
}
start a 1G; is "$(readlink "$MNT/instances/a/host")" ../../hosts/big "1 GiB goes to the host with most free (big: 8 free)"
start b 6G; is "$(readlink "$MNT/instances/b/host")" ../../hosts/big "6 GiB fits only big (7 free)"
start c 1536M; is "$(readlink "$MNT/instances/c/host")" ../../hosts/small "1.5 GiB: small has more free now (2 against 1)"
is "$(sql "SELECT host_id FROM instance WHERE id='c'")" small "the record says so"
fails_with ENOSPC "4 GiB fits nowhere" start d 4G
like "$(tail -1 "$MNT/instances/d/error")" "no host has 4294967296 bytes of memory free" "the reason names the need"
is "$(cat "$MNT/instances/d/state")" error "the instance stays unprovisioned"
like "$(cat "$MNT/hosts/big/instances")" "^a
b$" "hosts list what runs on them"
write destroyed "$MNT/instances/b/state"; rmdir "$MNT/instances/b"
write running "$MNT/instances/d/state"; ok $? "once b is gone, 4 GiB fits"
is "$(readlink "$MNT/instances/d/host")" ../../hosts/big "on big"

done_testing
