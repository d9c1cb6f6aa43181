#!/bin/bash
# hv.t: the hypervisor service against two private libvirtd daemons serving the
# test driver, checked from outside with virsh.
#
# Runs tests/hv-test (from $HV_TEST, $EPFS_BUILDDIR/tests/hv-test, or built here
# with gcc), first its own TAP suite, then as a long-lived "--shell" process that
# this script drives one call at a time while it stops, freezes and restarts the
# daemons.  When the QEMU driver is installed, a QEMU domain is defined, started
# (BIOS only, no guest) and given a disk live, in-process (qemu:///embed).
set -u

EPFS_SRCDIR=${EPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
EPFS_BUILDDIR=${EPFS_BUILDDIR:-$EPFS_SRCDIR}
. "$EPFS_SRCDIR/scripts/backends.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hv-t.XXXXXX") || exit 1
lv1=$tmp/lv1
lv2=$tmp/lv2
uri1="test+unix:///default?socket=$lv1/libvirt-sock"
uri2="test+unix:///default?socket=$lv2/libvirt-sock"
shell_pids=()
event_pid=

cleanup() {
	local pid
	# a frozen daemon must be thawed before it can be stopped
	[ -f "$lv1/libvirtd.pid" ] && kill -CONT "$(cat "$lv1/libvirtd.pid")" 2>/dev/null
	[ -f "$lv2/libvirtd.pid" ] && kill -CONT "$(cat "$lv2/libvirtd.pid")" 2>/dev/null
	for pid in "${shell_pids[@]}" $event_pid; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	backend_libvirt_stop "$lv1"
	backend_libvirt_stop "$lv2"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0

# ok STATUS DESCRIPTION: one TAP line, passing if STATUS is 0.
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

# is GOT EXPECTED DESCRIPTION
is() {
	[ "$1" = "$2" ]
	ok $? "$3"
	[ "$1" = "$2" ] || printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
}

# like GOT REGEX DESCRIPTION
like() {
	printf '%s' "$1" | grep -Eq -- "$2"
	ok $? "$3"
	printf '%s' "$1" | grep -Eq -- "$2" || printf '#   got:      %s\n#   expected: /%s/\n' "$1" "$2"
}

diag() { echo "# $*"; }

# ---- hv-test ----

hv_test=${HV_TEST:-$EPFS_BUILDDIR/tests/hv-test}
if [ ! -x "$hv_test" ]; then
	hv_test=$tmp/hv-test
	flags="-std=gnu11 -Wall -Wextra -g -I$EPFS_SRCDIR/src $(pkg-config --cflags glib-2.0 libvirt libxml-2.0)"
	libs=$(pkg-config --libs glib-2.0 libvirt libxml-2.0)
	sources="$EPFS_SRCDIR/src/hv.c $EPFS_SRCDIR/src/error.c $EPFS_SRCDIR/tests/hv-test.c"
	# shellcheck disable=SC2086
	gcc $flags -fsanitize=address,undefined $sources $libs -o "$hv_test" 2>"$tmp/build.log" ||
		gcc $flags $sources $libs -o "$hv_test" 2>>"$tmp/build.log" || {
		echo "Bail out! cannot build hv-test:"
		sed 's/^/# /' "$tmp/build.log"
		exit 1
	}
fi
# libvirt keeps global state for the life of the process: leaks are not ours to find
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

sanitizer_clean() {  # sanitizer_clean FILE WHAT
	! grep -q "ERROR: AddressSanitizer\|runtime error:" "$1"
	ok $? "$2 ran without sanitizer reports"
	grep -A30 "ERROR: AddressSanitizer\|runtime error:" "$1" | head -40 | sed 's/^/#   /'
}

# ---- the shell: one hv-test --shell process per name ----

declare -A shell_in shell_out

# detached CMD ARGS...: run CMD without the shells' pipes, so that a daemon
# started meanwhile does not hold a shell's input open after we close it
detached() {
	(
		for fd in "${shell_in[@]}" "${shell_out[@]}"; do
			eval "exec $fd>&-"
		done
		"$@"
	)
}

# shell_start NAME TIMEOUT: start hv-test --shell with [epfs] timeout=TIMEOUT
shell_start() {
	local name=$1 fd
	mkfifo "$tmp/$name.in" "$tmp/$name.out"
	detached exec "$hv_test" --shell "$2" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	shell_pids+=($!)
	exec {fd}>"$tmp/$name.in"
	shell_in[$name]=$fd
	exec {fd}<"$tmp/$name.out"
	shell_out[$name]=$fd
}

# shell_stop NAME: end of input; the shell shuts the service down and exits
shell_stop() {
	local fd=${shell_in[$1]}
	exec {fd}>&-
	fd=${shell_out[$1]}
	cat <&"$fd" >/dev/null
	exec {fd}<&-
}

# hv SHELL COMMAND ARGS...: one call; sets $status (ok or ERRNO), $ms and $reply
hv() {
	local name=$1 IFS=$'\t'
	shift
	printf '%s\n' "$*" >&"${shell_in[$name]}"
	IFS=' ' read -r -t 120 status ms reply <&"${shell_out[$name]}" || {
		status=NOREPLY ms=0 reply="no answer from hv-test"
	}
}

# hv_ok DESCRIPTION SHELL COMMAND ARGS...: the call succeeds
hv_ok() {
	local what=$1
	shift
	hv "$@"
	[ "$status" = ok ]
	ok $? "$what"
	[ "$status" = ok ] || echo "#   $status: $reply"
}

# hv_fails ERRNO DESCRIPTION SHELL COMMAND ARGS...: the call fails with ERRNO
hv_fails() {
	local err=$1 what=$2
	shift 2
	hv "$@"
	[ "$status" = "$err" ]
	ok $? "$what ($err)"
	echo "#   $status ($ms ms): $reply"
}

vsh() {  # vsh URI ARGS...: virsh, quiet
	local uri=$1
	shift
	virsh -q -c "$uri" "$@" 2>&1
}

# ---- the daemons ----

backend_libvirt_start "$lv1" || { echo "Bail out! cannot start libvirtd"; exit 1; }
backend_libvirt_start "$lv2" || { echo "Bail out! cannot start a second libvirtd"; exit 1; }
# an open connection also keeps the daemon's test driver state alive between clients
virsh -c "$uri1" event --all --loop >"$tmp/events.log" 2>&1 &
event_pid=$!
for _ in $(seq 1 100); do
	vsh "$uri1" list --all >/dev/null && break
	sleep 0.05
done

# ---- the API suite ----

"$hv_test" "$uri1" "$uri2" >"$tmp/tap" 2>"$tmp/suite.err"
suite_status=$?
while IFS= read -r line; do
	case $line in
	"ok "*) ok 0 "api: ${line#* - }" ;;
	"not ok "*) ok 1 "api: ${line#* - }" ;;
	"1.."*) ;;
	"#"*) echo "$line" ;;
	*) echo "# $line" ;;
	esac
done <"$tmp/tap"
ok $suite_status "hv-test passes against the test driver"
sanitizer_clean "$tmp/suite.err" "hv-test"
life=$(sed -n 's/^# domain names start with //p' "$tmp/tap")life
for ev in "Defined Added" "Defined Updated" "Started Booted" "Suspended Paused" "Resumed Unpaused" \
          "Stopped Shutdown" "Stopped Destroyed" "Undefined Removed"; do
	grep -q "for domain '$life': $ev" "$tmp/events.log"
	ok $? "virsh event saw '$ev' for $life"
done

# ---- one call at a time, checked with virsh ----

shell_start a 5
dom=hvt-sh-$$
hv_ok "host h1" a host h1 "$uri1"
hv a host-state h1
is "$reply" up "h1 is up"
hv_ok "define $dom with a disk and a NIC" a define h1 "$dom" memory=64 disk=vda:/var/tmp/$dom.img \
	nic=52:54:00:aa:00:01:default
diag "define: $ms ms (first call, connects)"
like "$(vsh "$uri1" list --all)" "$dom +shut off" "virsh list --all shows $dom shut off"
like "$(vsh "$uri1" dumpxml "$dom")" "<target dev='vda' bus='virtio'/>" "virsh dumpxml shows the disk"
like "$(vsh "$uri1" dumpxml "$dom")" "<mac address='52:54:00:aa:00:01'/>" "and the NIC"
hv_ok "start" a start h1 "$dom"
diag "start: $ms ms"
is "$(vsh "$uri1" domstate "$dom")" running "virsh domstate: running"
hv_ok "the handler got 'started'" a wait-event h1 "$dom" started 5
hv_ok "suspend" a suspend h1 "$dom"
is "$(vsh "$uri1" domstate "$dom")" paused "virsh domstate: paused"
hv a state h1 "$dom"
is "$reply" paused "hv_state agrees"
hv_ok "resume" a resume h1 "$dom"
is "$(vsh "$uri1" domstate "$dom")" running "virsh domstate: running again"
hv_fails EBUSY "start of a running domain" a start h1 "$dom"

# attach and detach on the test driver rewrite the persistent definition
hv_ok "attach a disk to the running domain" a attach-disk h1 "$dom" vdb "/var/tmp/$dom & data.img"
diag "attach (redefinition): $ms ms"
like "$(vsh "$uri1" dumpxml --inactive "$dom")" "<source file='/var/tmp/$dom &amp; data.img'/>" \
	"virsh dumpxml --inactive shows the escaped disk path"
hv_ok "attach a NIC" a attach-nic h1 "$dom" 52:54:00:aa:00:02 default
like "$(vsh "$uri1" dumpxml --inactive "$dom")" "<mac address='52:54:00:aa:00:02'/>" \
	"virsh dumpxml --inactive shows the NIC"
hv_fails EEXIST "attach the same NIC again" a attach-nic h1 "$dom" 52:54:00:aa:00:02 default
hv_ok "detach the disk" a detach-disk h1 "$dom" vdb "/var/tmp/$dom & data.img"
hv_ok "detach the NIC" a detach-nic h1 "$dom" 52:54:00:aa:00:02 default
xml=$(vsh "$uri1" dumpxml --inactive "$dom")
! printf '%s' "$xml" | grep -q "dev='vdb'\|52:54:00:aa:00:02"
ok $? "virsh dumpxml --inactive: both are gone"
like "$xml" "<target dev='vda'" "the root disk stayed"
hv_fails ENOENT "detach the NIC again" a detach-nic h1 "$dom" 52:54:00:aa:00:02 default

# snapshots
hv_ok "snapshot s1" a snap-create h1 "$dom" s1
hv_ok "snapshot s2" a snap-create h1 "$dom" s2
is "$(vsh "$uri1" snapshot-list "$dom" --name | sort | xargs)" "s1 s2" "virsh snapshot-list: s1 s2"
hv a snap-list h1 "$dom"
is "$reply" "s1 s2" "hv_snapshot_list agrees"
hv_ok "revert to s1" a snap-revert h1 "$dom" s1
is "$(vsh "$uri1" snapshot-current "$dom" --name)" s1 "virsh snapshot-current: s1"
hv_ok "delete s2" a snap-delete h1 "$dom" s2
is "$(vsh "$uri1" snapshot-list "$dom" --name | xargs)" s1 "virsh snapshot-list: s1"
hv_fails ENOENT "delete s2 again" a snap-delete h1 "$dom" s2

hv_ok "destroy" a destroy h1 "$dom"
is "$(vsh "$uri1" domstate "$dom")" "shut off" "virsh domstate: shut off"
hv_fails EINVAL "suspend of a stopped domain" a suspend h1 "$dom"
hv_ok "attach a disk to the stopped domain" a attach-disk h1 "$dom" vdc /var/tmp/c.img
like "$(vsh "$uri1" dumpxml "$dom")" "<target dev='vdc'" "virsh dumpxml shows it"
hv_ok "undefine a domain with a snapshot" a undefine h1 "$dom"
! vsh "$uri1" list --all --name | grep -qx "$dom"
ok $? "virsh list --all no longer shows $dom"
is "$(virsh -q -c "$uri1" snapshot-list "$dom" --name 2>/dev/null | grep -c .)" 0 "nor any snapshot of it"
hv a state h1 "$dom"
is "$status $reply" "ok none" "hv_state: none"
hv a events
for ev in defined started suspended resumed stopped undefined; do
	like "$reply" "(^| )h1/$dom/$ev( |$)" "the handler got '$ev' for $dom"
done
grep -q "for domain '$dom': Started Booted" "$tmp/events.log"
ok $? "virsh event saw $dom start"

# escaping: the name and paths are data
odd="hvt-odd'\"&<$$>"
hv_ok "define a domain named $odd" a define h1 "$odd" "cmdline=console=ttyS0 x=\"a&b\" y='<c>'" \
	"console=/var/log/con & 'sole'.log" "disk=vda:/var/tmp/a&b'c.img"
xml=$(vsh "$uri1" dumpxml "$odd")
like "$xml" "<name>hvt-odd&apos;&quot;&amp;&lt;$$&gt;</name>" "virsh dumpxml of the odd name"
like "$xml" "<cmdline>console=ttyS0 x=&quot;a&amp;b&quot; y=&apos;&lt;c&gt;&apos;</cmdline>" \
	"the command line is intact"
like "$xml" "<log file='/var/log/con &amp; &apos;sole&apos;.log'" "the console log path is intact"
like "$xml" "<source file='/var/tmp/a&amp;b&apos;c.img'/>" "the disk path is intact"
hv_ok "start it" a start h1 "$odd"
is "$(vsh "$uri1" domstate "$odd")" running "virsh domstate of the odd name"
hv_ok "undefine it" a undefine h1 "$odd"

# two hosts are two daemons
hv_ok "host h2" a host h2 "$uri2"
hv_ok "define $dom on h2" a define h2 "$dom"
vsh "$uri2" list --all --name | grep -qx "$dom"
ok $? "virsh on the second daemon lists it"
! vsh "$uri1" list --all --name | grep -qx "$dom"
ok $? "virsh on the first does not"
hv a domains h2
like "$reply" "(^| )$dom( |$)" "hv_host_domains h2 lists it"
hv a host-info h2
like "$reply" "^driver=TEST cpus=[1-9]" "host-info h2: $reply"

# ---- a daemon that goes away and comes back ----

hv_ok "state on h2 while its daemon runs" a state h2 "$dom"
backend_libvirt_stop "$lv2"
hv a state h2 "$dom"
like "$status" "^(EIO|EAGAIN|ETIMEDOUT)$" "with the daemon stopped, a call fails ($status: $reply)"
[ "$ms" -lt 5000 ]
ok $? "within the timeout ($ms ms)"
hv a start h2 "$dom"
is "$status" EIO "the next call fails at once, without connecting"
[ "$ms" -lt 50 ]
ok $? "in $ms ms"
hv a host-state h2
like "$reply" "^down: " "host-state: $reply"
detached backend_libvirt_start "$lv2" || echo "# cannot restart libvirtd"
sleep 2.2       # past the retry interval
hv a state h2 "$dom"
is "$status $reply" "ok none" "with the daemon back, h2 answers again (a fresh daemon: no domain)"
diag "reconnect: $ms ms"
hv a host-state h2
is "$reply" up "host-state h2: up"
# a restart between two calls: the old connection is dead, the next call reopens it
backend_libvirt_stop "$lv2"
detached backend_libvirt_start "$lv2" || echo "# cannot restart libvirtd"
hv a state h2 "$dom"
is "$status $reply" "ok none" "a restart between two calls: the next call reconnects at once"
hv a events
hv_ok "and events come from the new connection" a define h2 "$dom"
hv_ok "the handler got 'defined' from the restarted daemon" a wait-event h2 "$dom" defined 5

# ---- a daemon that stops answering ----

shell_start b 2
hv_ok "shell with timeout=2: host h1" b host h1 "$uri1"
hv_ok "state on h1 (connects)" b state h1 "$dom"
hv_ok "host hx on the same daemon, not connected yet" b host hx "$uri1"
pid1=$(cat "$lv1/libvirtd.pid")
kill -STOP "$pid1"
hv b state h1 "$dom"
is "$status" ETIMEDOUT "a frozen daemon: the call times out ($reply)"
[ "$ms" -ge 1900 ] && [ "$ms" -lt 3000 ]
ok $? "after the 2 s timeout ($ms ms)"
hv b state h1 "$dom"
is "$status" EIO "the next call fails at once ($reply)"
[ "$ms" -lt 50 ]
ok $? "in $ms ms"
hv b host-state h1
like "$reply" "^down: not answering" "host-state: $reply"
hv b state hx "$dom"
is "$status" ETIMEDOUT "connecting to a frozen daemon times out too"
[ "$ms" -lt 3000 ]
ok $? "after the timeout ($ms ms)"
kill -CONT "$pid1"
for _ in $(seq 1 50); do
	hv b state h1 "$dom"
	[ "$status" = ok ] && break
	sleep 0.1
done
is "$status" ok "once thawed, h1 answers again"
hv b host-state h1
is "$reply" up "host-state h1: up"
for _ in $(seq 1 50); do
	hv b state hx "$dom"
	[ "$status" = ok ] && break
	sleep 0.1
done
is "$status" ok "and hx connects"
hv_ok "the connection still works for changes" b define h1 "$dom-b"
hv_ok "undefine it" b undefine h1 "$dom-b"
start=$(date +%s%N)
shell_stop b
ok 0 "the timeout=2 shell shut down ($((($(date +%s%N) - start) / 1000000)) ms)"

hv_ok "undefine $dom on h2" a undefine h2 "$dom"
shell_stop a
sanitizer_clean "$tmp/a.err" "shell a"
sanitizer_clean "$tmp/b.err" "shell b"

# ---- the QEMU driver, in this process (qemu:///embed), when installed ----

moddir=$(pkg-config --variable=libdir libvirt 2>/dev/null)/libvirt/connection-driver
if [ -e "$moddir/libvirt_driver_qemu.so" ] && command -v qemu-system-x86_64 >/dev/null; then
	embed=$tmp/embed
	mkdir -p "$embed/etc"
	cat >"$embed/etc/qemu.conf" <<EOF
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
# QEMU writes the console log itself: no virtlogd here
stdio_handler = "file"
EOF
	truncate -s 16M "$tmp/disk & 1.img"
	shell_start q 60
	qdom=hvt-q-$$
	hv_ok "host q: qemu:///embed" q host q "qemu:///embed?root=$embed"
	hv_ok "define a QEMU domain (first call: the driver probes QEMU)" q define q "$qdom" memory=64 \
		"console=$tmp/console & log" nic=52:54:00:aa:00:03:default
	diag "qemu define with connect: $ms ms"
	hv q xpath q "$qdom" "string(/domain/@type)"
	is "$reply" qemu "<domain type='qemu'> (TCG)"
	hv q xpath q "$qdom" "string(/domain/devices/serial/log/@file)"
	is "$reply" "$tmp/console & log" "the serial console is logged to the file"
	hv q xpath q "$qdom" "count(/domain/devices/graphics)"
	is "$reply" 0 "no graphics"
	hv q xpath q "$qdom" "string(/domain/devices/interface/model/@type)"
	is "$reply" virtio "a virtio NIC"
	hv_ok "attach a disk to the stopped domain (the driver's own attach)" q attach-disk q "$qdom" vdb \
		"$tmp/disk & 1.img"
	hv q xpath q "$qdom" "string(/domain/devices/disk[target/@dev='vdb']/source/@file)"
	is "$reply" "$tmp/disk & 1.img" "the disk is in the definition"
	hv_ok "detach it" q detach-disk q "$qdom" vdb "$tmp/disk & 1.img"
	hv q xpath q "$qdom" "count(/domain/devices/disk)"
	is "$reply" 0 "the disk is gone"
	hv_ok "remove the NIC (no network 'default' here)" q detach-nic q "$qdom" 52:54:00:aa:00:03 default
	hv q start q "$qdom"
	if [ "$status" = ok ]; then
		ok 0 "start the QEMU domain (BIOS only)"
		diag "qemu start: $ms ms"
		hv_ok "the handler got 'started'" q wait-event q "$qdom" started 10
		hv_ok "attach a disk live" q attach-disk q "$qdom" vdb "$tmp/disk & 1.img"
		diag "qemu live disk attach: $ms ms"
		hv_ok "the handler got 'device-added:virtio-disk1'" q wait-event q "$qdom" device-added:virtio-disk1 10
		hv q xpath q "$qdom" "string(/domain/devices/disk[target/@dev='vdb']/alias/@name)"
		is "$reply" virtio-disk1 "the live XML has the disk"
		hv_ok "suspend" q suspend q "$qdom"
		hv_ok "resume" q resume q "$qdom"
		hv_ok "destroy" q destroy q "$qdom"
		hv_ok "the handler got 'stopped'" q wait-event q "$qdom" stopped 10
	else
		diag "QEMU cannot start a guest here ($status: $reply)"
	fi
	hv_ok "undefine the QEMU domain" q undefine q "$qdom"
	hv q state q "$qdom"
	is "$reply" none "it is gone"
	shell_stop q
	sanitizer_clean "$tmp/q.err" "shell q"
else
	diag "skipped the QEMU checks: no QEMU driver or qemu-system-x86_64"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
