#!/bin/bash
# Images: create, size, registration, attributes, info.json, removal and purge.
. "$(dirname "$0")/lib.sh"
epfs_setup

I=$MNT/images

# mkdir + size creates a sparse raw file in the image pool
mkdir "$I/ubuntu"; ok $? "mkdir images/ubuntu"
is "$(cat "$I/ubuntu/status")" draft "a new image is a draft"
is "$(sql "SELECT status FROM image WHERE id='ubuntu'")" draft "the draft is in the database"
ok "$([ ! -e "$STORAGE/images/ubuntu" ]; echo $?)" "a draft has no bytes yet"
write 20G "$I/ubuntu/size"; ok $? "echo 20G > size"
is "$(cat "$I/ubuntu/size")" 21474836480 "size reads back in bytes"
is "$(cat "$I/ubuntu/status")" available "the image is available"
is "$(stat -c %s "$STORAGE/images/ubuntu")" 21474836480 "the backing file has the size"
is "$(stat -c %b "$STORAGE/images/ubuntu")" 0 "the backing file is sparse"
is "$(sql "SELECT size, status FROM image WHERE id='ubuntu'")" "21474836480	available" "the record holds size and status"

# size suffixes, growing, refusing to shrink
write 21G "$I/ubuntu/size"; ok $? "growing works"
is "$(stat -c %s "$STORAGE/images/ubuntu")" $((21 << 30)) "the file grew"
fails_with EINVAL "shrinking is refused" write 1G "$I/ubuntu/size"
is "$(stat -c %s "$STORAGE/images/ubuntu")" $((21 << 30)) "a refused shrink changes nothing"
like "$(tail -1 "$I/ubuntu/error")" '^[0-9T:-]+Z EINVAL write size: .*shrink' "the refusal is in error"
for bad in abc -5 12X 0 ''; do
	fails_with EINVAL "size '$bad' is refused" write "$bad" "$I/ubuntu/size"
done
is "$(sql "SELECT size FROM image WHERE id='ubuntu'")" $((21 << 30)) "refused sizes change nothing"

# plain attributes
write "Ubuntu 24.04" "$I/ubuntu/name"; ok $? "set name"
is "$(cat "$I/ubuntu/name")" "Ubuntu 24.04" "name reads back"
is "$(sql "SELECT name FROM image WHERE id='ubuntu'")" "Ubuntu 24.04" "name is stored"
write WINDOWS "$I/ubuntu/os_type"; ok $? "os_type accepts any case"
is "$(cat "$I/ubuntu/os_type")" windows "enums read lower-case"
fails_with EINVAL "unknown os_type refused" write beos "$I/ubuntu/os_type"
write yes "$I/ubuntu/gpu"; is "$(cat "$I/ubuntu/gpu")" 1 "gpu accepts yes, reads 1"
fails_with EINVAL "gpu refuses maybe" write maybe "$I/ubuntu/gpu"
write 4 "$I/ubuntu/cpu"; is "$(sql "SELECT cpu FROM image WHERE id='ubuntu'")" 4 "cpu is stored"
fails_with EINVAL "cpu 0 refused" write 0 "$I/ubuntu/cpu"
write 2G "$I/ubuntu/memory"; is "$(cat "$I/ubuntu/memory")" 2147483648 "memory in bytes"
write nvidia-a100_1g.5gb "$I/ubuntu/vgpu"; is "$(cat "$I/ubuntu/vgpu")" nvidia-a100_1g.5gb "vgpu profile"
fails_with EINVAL "vgpu refuses spaces" write "a b" "$I/ubuntu/vgpu"
printf 'first line\nsecond line\n' > "$I/ubuntu/describe"
is "$(cat "$I/ubuntu/describe")" "first line
second line" "describe keeps several lines"
fails_with EINVAL "kernel must be an absolute path" write vmlinuz "$I/ubuntu/kernel"
write /boot/vmlinuz "$I/ubuntu/kernel"; is "$(cat "$I/ubuntu/kernel")" /boot/vmlinuz "kernel path"
like "$(cat "$I/ubuntu/create_time")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "create_time is ISO-8601 UTC"

# read-only files
is "$(stat -c %a "$I/ubuntu/status")" 444 "status is 0444"
fails_with EACCES "status refuses writes" write available "$I/ubuntu/status"
fails_with EACCES "create_time refuses writes" write 2020-01-01 "$I/ubuntu/create_time"
fails_with EACCES "error refuses writes" write x "$I/ubuntu/error"

# writing the current value back is a no-op that succeeds
before=$(sql "SELECT mtime FROM image WHERE id='ubuntu'")
sleep 0.01
write "$(cat "$I/ubuntu/name")" "$I/ubuntu/name"; ok $? "writing name back succeeds"
write "$(cat "$I/ubuntu/size")" "$I/ubuntu/size"; ok $? "writing size back succeeds"
is "$(sql "SELECT mtime FROM image WHERE id='ubuntu'")" "$before" "writing back changes nothing"

# info.json: read, write several attributes atomically
info=$(cat "$I/ubuntu/info.json")
is "$(printf '%s' "$info" | perl -MJSON::PP -e 'local $/; my $j = decode_json(<>); print "$j->{id} $j->{size} $j->{gpu}"')" \
	"ubuntu $((21 << 30)) 1" "info.json is the record as JSON"
printf '%s\n' "$info" > "$I/ubuntu/info.json"; ok $? "info.json written back as read succeeds"
printf '{"name": "Jammy", "cpu": 2, "describe": "lts"}\n' > "$I/ubuntu/info.json"; ok $? "info.json sets several"
is "$(sql "SELECT name, cpu, \`describe\` FROM image WHERE id='ubuntu'")" "Jammy	2	lts" "all of them are stored"
fails_with EINVAL "info.json with a bad value" bash -c "printf '{\"name\": \"X\", \"cpu\": 0}\n' > '$I/ubuntu/info.json'"
is "$(sql "SELECT name, cpu FROM image WHERE id='ubuntu'")" "Jammy	2" "a refused info.json changes nothing"
fails_with EINVAL "info.json with an unknown key" bash -c "printf '{\"colour\": 1}\n' > '$I/ubuntu/info.json'"
fails_with EINVAL "info.json that is not JSON" bash -c "printf 'name=x\n' > '$I/ubuntu/info.json'"
fails_with EACCES "info.json cannot change status" bash -c "printf '{\"status\": \"error\"}\n' > '$I/ubuntu/info.json'"
mkdir "$I/fedora"
printf '{"size": "1G", "os_type": "linux", "name": "Fedora"}\n' > "$I/fedora/info.json"; ok $? "size through info.json"
is "$(sql "SELECT size, status, name FROM image WHERE id='fedora'")" "1073741824	available	Fedora" "creates the bytes with the rest"
is "$(stat -c %s "$STORAGE/images/fedora")" 1073741824 "the file exists"

mkdir "$I/draft"
write "$(cat "$I/draft/size")" "$I/draft/size"; ok $? "a draft's size 0 can be written back"
cat "$I/draft/info.json" > "$T/draft.json" && cp "$T/draft.json" "$I/draft/info.json"; ok $? "and its info.json"
is "$(cat "$I/draft/status")" draft "it stays a draft"
rmdir "$I/draft"

# names
fails_with EINVAL "upper case ids refused" mkdir "$I/Ubuntu"
fails_with EINVAL "spaces refused" mkdir "$I/a b"
fails_with EINVAL "ids with .. refused" mkdir "$I/a..b"
fails_with EINVAL "ids longer than 63 refused" mkdir "$I/$(printf 'a%.0s' $(seq 64))"
fails_with EEXIST "mkdir of an existing image" mkdir "$I/ubuntu"
like "$(tail -1 "$MNT/.epfs/errors")" "EINVAL mkdir: 'aaaa+' is not a valid id" "bad names are logged globally, visible at once"
fails_with EINVAL "no unknown files in an image" touch "$I/ubuntu/colour"

# registration of bytes already in the pool
truncate -s 3G "$STORAGE/images/legacy"
is "$(cat "$I/.unregistered")" legacy ".unregistered lists pool images without a record"
mkdir "$I/legacy"; ok $? "mkdir registers it"
is "$(cat "$I/legacy/size") $(cat "$I/legacy/status")" "$((3 << 30)) available" "with its real size"
is "$(cat "$I/.unregistered")" "" "and it is no longer unregistered"

# rmdir unregisters and keeps the bytes; purge deletes them
rmdir "$I/legacy"; ok $? "rmdir legacy"
is "$(sql "SELECT COUNT(*) FROM image WHERE id='legacy'")" 0 "the record is gone"
ok "$([ -f "$STORAGE/images/legacy" ]; echo $?)" "the bytes are kept"
is "$(cat "$I/.unregistered")" legacy "and listed as unregistered again"
mkdir "$I/legacy"; write 1 "$I/legacy/purge"; rmdir "$I/legacy"; ok $? "rmdir with purge"
ok "$([ ! -e "$STORAGE/images/legacy" ]; echo $?)" "purge deletes the bytes"

# in use
sql "INSERT INTO instance (id, image_id) VALUES ('vm1', 'ubuntu')"
fails_with EBUSY "an image used by an instance cannot be removed" rmdir "$I/ubuntu"
like "$(tail -1 "$I/ubuntu/error")" "EBUSY rmdir: .*instances/vm1" "the error names the user"
is "$(sql "SELECT COUNT(*) FROM image WHERE id='ubuntu'")" 1 "the image is kept"
sql "DELETE FROM instance"

# a flavour change marks snapshots of the image stale
sql "INSERT INTO snapshot (instance_id, id, image_id, status) VALUES ('vm1', 's1', 'ubuntu', 'available')"
write 8G "$I/ubuntu/memory"
is "$(sql "SELECT stale FROM snapshot WHERE id='s1'")" 1 "changing memory marks snapshots stale"

# the error log keeps the last 100 lines
for i in $(seq 1 105); do write "bad$i" "$I/fedora/cpu" 2>/dev/null; done
is "$(wc -l < "$I/fedora/error")" 100 "error keeps 100 lines"
like "$(tail -1 "$I/fedora/error")" "bad105" "the newest last"

done_testing
