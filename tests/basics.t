#!/bin/bash
# The daemon itself: options, the root, .epfs/, refusals of the fixed tree.
. "$(dirname "$0")/lib.sh"

like "$("$EPFS_BIN" --version)" '^epfs [0-9]+\.[0-9]+' "--version prints the version"
like "$("$EPFS_BIN" --help 2>&1)" 'config=FILE' "--help lists -o config=FILE"
out=$("$EPFS_BIN" -f -o config=/nonexistent/epfs.conf "$T" 2>&1); rc=$?
[ $rc -ne 0 ]; ok $? "a missing config file is an error"
like "$out" "nonexistent/epfs.conf" "that names the file"

epfs_setup

is "$(ls "$MNT" | tr '\n' ' ')" "classes course-types courses hosts images instances nics public templates users volumes " "the root lists the resource directories"
is "$(ls -A "$MNT" | head -1)" .epfs ".epfs is there too"
is "$(cat "$MNT/.epfs/version")" "$("$EPFS_BIN" --version | sed -n 's/^epfs //p')" ".epfs/version"

# config shows effective settings, defaults included, secrets masked
printf '\n[sftp]\npassword=s3cret\n' >> "$EPFS_CONF"   # a secret the mount does not use yet
epfs_umount; epfs_mount
conf=$(cat "$MNT/.epfs/config")
like "$conf" "socket=$DB_SOCKET" "config shows the settings in effect"
like "$conf" "pool_size=4" "including defaults"
like "$conf" 'password=\*+' "secrets are masked"
! printf '%s' "$conf" | grep -q s3cret; ok $? "the password does not appear"

like "$(cat "$MNT/.epfs/health")" '^database ok [0-9.]+ ms' "health: database ok"
like "$(cat "$MNT/.epfs/health")" 'storage ok dir' "health: storage ok"
ls "$MNT/images" > /dev/null
like "$(cat "$MNT/.epfs/stats")" 'opendir +[0-9]+' "stats counts operations"
is "$(stat -c %a "$MNT/.epfs/stats")" 444 ".epfs files are read-only"
fails_with EACCES ".epfs/stats refuses writes" write 0 "$MNT/.epfs/stats"

# the fixed tree
fails_with EPERM "no new top-level directories" mkdir "$MNT/other"
fails_with EPERM "the top-level directories stay" rmdir "$MNT/images"
mkdir "$MNT/images/a"
fails_with EINVAL "no unknown sub-directories in a resource" mkdir "$MNT/images/a/sub"
fails_with EPERM "attributes cannot be removed" rm -f "$MNT/images/a/name"
fails_with EPERM "ids cannot be renamed" mv "$MNT/images/a" "$MNT/images/b"
fails_with EPERM "owners cannot be changed" chown nobody "$MNT/images/a/name"
fails_with EPERM "modes cannot be changed" chmod 600 "$MNT/images/a/name"
fails_with ENOENT "missing resources are ENOENT" cat "$MNT/images/nope/name"
fails_with EEXIST "a generated file is not a resource" mkdir "$MNT/images/.unregistered"
touch "$MNT/images/a/name"; ok $? "touch of an attribute is accepted"

done_testing
