#!/bin/bash
# The per-user service (seed 001), as real Unix users: users/<me>/service/
# starts an instance from the configured template with a volume of its own,
# stops it, keeps the volume, and an idle service is stopped by the periodic
# check (time moved forward with [teaching] clock_offset).
. "$(dirname "$0")/lib.sh"
epfs_setup
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
virsh_() { virsh -q -c "$URI" "$@" 2>&1; }
for u in epfs-alice epfs-bob; do id "$u" >/dev/null 2>&1 || useradd -M -s /bin/sh "$u"; done
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
S=$MNT/users/alice/service

mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"
mkdir "$MNT/images/deb" && write 64M "$MNT/images/deb/size"
mkdir "$MNT/templates/svc" && ln -s ../../images/deb "$MNT/templates/svc/image" && write 128M "$MNT/templates/svc/memory"
for u in alice bob; do
	mkdir "$MNT/users/$u" && write "$(id -u epfs-$u)" "$MNT/users/$u/uid"
done

# before any configuration: the directory is there, starting it says what is missing
is "$(as epfs-alice cat "$S/state")" none "a user's service starts as none"
fails_with EINVAL "without [service] template= it cannot start" as epfs-alice bash -c "echo running > '$S/state'"
like "$(cat "$S/error")" "template" "the error says what is missing"

printf '\n[service]\ntemplate=svc\nvolume_size=32M\nidle_minutes=1\n\n[teaching]\nscheduler_interval=1\n' >> "$EPFS_CONF"
epfs_umount; epfs_mount

like "$(as epfs-alice ls "$MNT/users/alice")" service "service/ is listed in the user's directory"
is "$(as epfs-alice ls "$S" | tr '\n' ' ')" "error info.json last_start state stop_reason " \
	"its files, no links before it exists"
is "$(stat -c %U "$S")" epfs-alice "it is the user's"
fails_with ENOENT "another user does not see it" as epfs-bob cat "$S/state"
fails_with ENOENT "nor can start it" as epfs-bob bash -c "echo running > '$S/state'"
fails_with EPERM "it cannot be removed" rmdir "$S"
fails_with EINVAL "state takes running or shutoff" as epfs-alice bash -c "echo building > '$S/state'"

# start
as epfs-alice bash -c "echo running > '$S/state'"; ok $? "echo running > state, as the user"
is "$(as epfs-alice cat "$S/state")" running "state reads running"
is "$(readlink "$S/instance")" ../../../instances/svc-alice "instance@ links to its instance"
is "$(readlink "$S/volume")" ../../../volumes/svc-alice "volume@ links to its volume"
is "$(virsh_ domstate svc-alice)" running "virsh sees it running"
is "$(sql "SELECT template_id, owner_id, memory FROM instance WHERE id='svc-alice'")" "svc	alice	134217728" \
	"the instance is made from the template and owned by the user"
is "$(sql "SELECT size, status, instance_id FROM volume WHERE id='svc-alice'")" "33554432	in-use	svc-alice" \
	"the volume has volume_size bytes and is attached"
like "$(virsh_ dumpxml svc-alice)" "volumes/svc-alice'" "the domain has the volume"
ok "$([ -f "$STORAGE/volumes/svc-alice" ]; echo $?)" "its bytes are in the volume pool"
is "$(as epfs-alice cat "$S/stop_reason")" "" "no stop reason while it runs"

# stop: the volume stays
as epfs-alice bash -c "echo shutoff > '$S/state'"; ok $? "echo shutoff > state"
is "$(as epfs-alice cat "$S/state")" shutoff "state reads shutoff"
is "$(virsh_ domstate svc-alice)" "shut off" "virsh sees it off"
is "$(as epfs-alice cat "$S/stop_reason")" user "stopped by the user"
is "$(sql "SELECT status, instance_id FROM volume WHERE id='svc-alice'")" "in-use	svc-alice" "the volume is kept attached"
ok "$([ -f "$STORAGE/volumes/svc-alice" ]; echo $?)" "with its bytes"
printf 'USER-DATA' | dd of="$STORAGE/volumes/svc-alice" bs=1 seek=512 conv=notrunc status=none

# start again: the same instance and volume
as epfs-alice bash -c "echo start > '$S/state'"; ok $? "echo start > state (the verb)"
is "$(as epfs-alice cat "$S/state")" running "running again"
is "$(sql "SELECT COUNT(*) FROM instance WHERE owner_id='alice'")" 1 "no second instance"
is "$(dd if="$STORAGE/volumes/svc-alice" bs=1 skip=512 count=9 status=none)" USER-DATA "the volume kept its bytes"

# idle: an hour later (as the platform's clock goes), the check stops it
printf '\n[teaching]\nclock_offset=120\n' >> "$EPFS_CONF"
epfs_umount; epfs_mount
for _ in $(seq 1 50); do [ "$(cat "$S/state")" = shutoff ] && break; sleep 0.2; done
is "$(cat "$S/state")" shutoff "a service running for idle_minutes is stopped"
is "$(cat "$S/stop_reason")" idle "because it was idle"
like "$(cat "$MNT/instances/svc-alice/events")" "idle" "the instance's events say so"
is "$(sql "SELECT status, instance_id FROM volume WHERE id='svc-alice'")" "in-use	svc-alice" "the volume is kept"

# writing running renews it: not stopped again at once
as epfs-alice bash -c "echo running > '$S/state'"; ok $? "echo running > state again"
sleep 2.5
is "$(cat "$S/state")" running "a renewed service is not idle"
like "$(as epfs-alice cat "$S/info.json")" '"instance": "svc-alice"' "info.json names the instance"

# bob's service is his own
as epfs-bob bash -c "echo running > '$MNT/users/bob/service/state'"; ok $? "another user starts his own"
is "$(readlink "$MNT/users/bob/service/instance")" ../../../instances/svc-bob "with his own instance"
is "$(sql "SELECT COUNT(*) FROM service")" 2 "two services"

done_testing
