# scripts/qemu-libvirt.sh: a private libvirtd with the QEMU driver, for tests
# and the demo that run real guests (TCG).  Source it:
#
#   qemu_usable [--boot CACHE_DIR]  real QEMU guests can run here (see below)
#   qemu_libvirt_start DIR          start (or find running) the daemon of DIR
#   qemu_libvirt_stop DIR           destroy its guests, stop it, drop its netns
#   qemu_libvirt_exec DIR CMD...    run CMD in the daemon's network namespace
#
# After qemu_libvirt_start:
#   QEMU_LIBVIRT_URI     qemu:///system?socket=DIR/libvirt-sock
#   QEMU_LIBVIRT_NETNS   the daemon's network namespace ("" when none)
#   QEMU_LIBVIRT_BRIDGE  an empty bridge in that namespace, for
#                        <interface type='bridge'><source bridge=.../>
#
# Isolation.  libvirtd keeps its QEMU driver's state in fixed places:
# /run/libvirt (with a driver.pid lock per driver: a second root libvirtd on
# the machine fails with "Failed to acquire pid file
# '/run/libvirt/network/driver.pid'"), /etc/libvirt (persistent domains,
# networks, qemu.conf), /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt.
# So the daemon runs in a private mount namespace where those five are bind
# mounts of DIR/run, DIR/etc, DIR/lib, DIR/cache and DIR/log: any number of
# these daemons, the system libvirtd and the test-driver libvirtd of
# scripts/backends.sh run side by side, and nothing under /etc/libvirt on the
# host is read or written.  It also runs in a private network namespace (when
# `ip netns` works) so its taps, bridges and firewall rules never touch the
# host; and without the cgroup mounts, so two daemons never fight over one
# machine cgroup.  Unix sockets work across network namespaces: clients in
# the host namespace connect with $QEMU_LIBVIRT_URI as usual.
#
# What the daemon's QEMU processes see: the host's files, except the five
# directories above (keep disks and logs elsewhere), and only the mounts that
# existed when the daemon started (the host's / is a private mount here).

QEMU_LIBVIRT_URI=
QEMU_LIBVIRT_NETNS=
QEMU_LIBVIRT_BRIDGE=epfsbr0

# _ql_pid_alive PIDFILE: the process in PIDFILE runs (a zombie counts as gone)
_ql_pid_alive() {
	local pid
	[ -f "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# _ql_kill_wait PID: TERM, wait up to 10 s, then KILL
_ql_kill_wait() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 200); do
		[ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
}

# _ql_vars DIR: set the variables for DIR (absolute)
_ql_vars() {
	QEMU_LIBVIRT_URI="qemu:///system?socket=$1/libvirt-sock"
	if [ -f "$1/netns" ]; then
		QEMU_LIBVIRT_NETNS=$(cat "$1/netns")
	else
		QEMU_LIBVIRT_NETNS=
	fi
}

_ql_abs() { mkdir -p "$1" && (cd "$1" && pwd); }

# qemu_usable [--boot CACHE_DIR]: whether real QEMU guests can run here:
# qemu-system-x86_64, libvirtd and its QEMU driver are installed, QEMU starts
# with TCG (KVM is never used), and there is memory for a guest.  With
# --boot, also boot the tiny guest of CACHE_DIR (scripts/tiny-guest.sh) with
# plain QEMU and wait for its READY line (costs ~3-8 s and ~4 CPU-seconds).
# Says why not on stderr.
qemu_usable() {
	local avail d rc i
	command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo "qemu_usable: no qemu-system-x86_64" >&2; return 1; }
	command -v libvirtd >/dev/null 2>&1 || { echo "qemu_usable: no libvirtd" >&2; return 1; }
	command -v virsh >/dev/null 2>&1 || { echo "qemu_usable: no virsh" >&2; return 1; }
	ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
		{ echo "qemu_usable: no libvirt QEMU driver (libvirt-daemon-driver-qemu)" >&2; return 1; }
	avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
	[ "${avail:-0}" -ge 512 ] || { echo "qemu_usable: only ${avail} MiB available" >&2; return 1; }
	echo quit | timeout 30 qemu-system-x86_64 -machine none,accel=tcg -nodefaults -display none \
		-monitor stdio >/dev/null 2>&1 || { echo "qemu_usable: QEMU does not start with TCG" >&2; return 1; }
	[ "${1:-}" = --boot ] || return 0
	[ -s "$2/vmlinuz" ] && [ -s "$2/initrd.img" ] || { echo "qemu_usable: no tiny guest in $2" >&2; return 1; }
	d=$(mktemp -d /tmp/qemu-usable.XXXXXX) || return 1
	timeout 90 qemu-system-x86_64 -machine pc,accel=tcg -m 128 -nodefaults -display none -no-reboot \
		-kernel "$2/vmlinuz" -initrd "$2/initrd.img" -append "${TINY_GUEST_CMDLINE:-console=ttyS0 no_timer_check panic=-1 quiet}" \
		-serial "file:$d/serial.log" </dev/null >/dev/null 2>&1 &
	local qpid=$!
	rc=1
	for i in $(seq 1 600); do
		grep -q "EPFS-GUEST READY" "$d/serial.log" 2>/dev/null && { rc=0; break; }
		[ -d "/proc/$qpid" ] || break
		sleep 0.1
	done
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	[ $rc -eq 0 ] || echo "qemu_usable: the tiny guest did not boot" >&2
	rm -rf "$d"
	return $rc
}

_ql_write_conf() {
	local dir=$1
	mkdir -p "$dir/etc" "$dir/run" "$dir/lib" "$dir/cache" "$dir/log"
	cat > "$dir/libvirtd.conf" <<CONF
unix_sock_dir = "$dir"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:file:$dir/libvirtd.log"
CONF
	# this is /etc/libvirt/qemu.conf for the daemon (bind mount)
	cat > "$dir/etc/qemu.conf" <<CONF
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
# no virtlogd: QEMU writes its own logs (and <serial><log file=.../>)
stdio_handler = "file"
# no per-guest mount namespace and no cgroups: nothing to clash with another daemon
namespaces = [ ]
cgroup_controllers = [ ]
CONF
}

# qemu_libvirt_start DIR: idempotent; DIR holds the sockets, the logs and all
# of the daemon's state (domain definitions included)
qemu_libvirt_start() {
	local dir ns i
	dir=$(_ql_abs "$1") || return 1
	if _ql_pid_alive "$dir/libvirtd.pid"; then
		_ql_vars "$dir"
		return 0
	fi
	# libvirtd refuses to start its QEMU driver without this account
	getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
	getent passwd libvirt-qemu >/dev/null ||
		useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	_ql_write_conf "$dir"
	# mount points for the bind mounts (the packages make them too)
	mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
	rm -f "$dir/libvirt-sock" "$dir/libvirt-sock-ro" "$dir/libvirt-admin-sock"

	# a network namespace of its own, named after DIR
	ns=epfs-qemu-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
	rm -f "$dir/netns"
	if ip netns list 2>/dev/null | grep -q "^$ns\\b" || ip netns add "$ns" 2>/dev/null; then
		if ip netns exec "$ns" ip link set lo up 2>/dev/null; then
			echo "$ns" > "$dir/netns"
			ip netns exec "$ns" sh -c "ip link show $QEMU_LIBVIRT_BRIDGE >/dev/null 2>&1 ||
				ip link add $QEMU_LIBVIRT_BRIDGE type bridge; ip link set $QEMU_LIBVIRT_BRIDGE up" 2>/dev/null
		else
			ip netns del "$ns" 2>/dev/null
		fi
	fi
	_ql_vars "$dir"

	local setup="
		set -e
		mount --bind '$dir/etc' /etc/libvirt
		mount --bind '$dir/run' /run/libvirt
		mount --bind '$dir/lib' /var/lib/libvirt
		mount --bind '$dir/cache' /var/cache/libvirt
		mount --bind '$dir/log' /var/log/libvirt
		umount -l /sys/fs/cgroup 2>/dev/null || true
		exec libvirtd -d -f '$dir/libvirtd.conf' -p '$dir/libvirtd.pid'"
	if [ -n "$QEMU_LIBVIRT_NETNS" ]; then
		ip netns exec "$QEMU_LIBVIRT_NETNS" unshare -m --propagation slave sh -c "$setup" \
			</dev/null >"$dir/stderr.log" 2>&1
	else
		unshare -m --propagation slave sh -c "$setup" </dev/null >"$dir/stderr.log" 2>&1
	fi
	for i in $(seq 1 400); do
		[ -S "$dir/libvirt-sock" ] && virsh -c "$QEMU_LIBVIRT_URI" uri >/dev/null 2>&1 && return 0
		[ $i -gt 40 ] && ! _ql_pid_alive "$dir/libvirtd.pid" && break
		sleep 0.05
	done
	echo "libvirtd (QEMU) did not start; its log:" >&2
	tail -20 "$dir/libvirtd.log" "$dir/stderr.log" >&2 2>/dev/null
	qemu_libvirt_stop "$dir"
	return 1
}

# qemu_libvirt_exec DIR CMD...: run CMD in the daemon's network namespace
# (or here when it has none), e.g. to look at its taps and bridge
qemu_libvirt_exec() {
	local dir ns
	dir=$(_ql_abs "$1") || return 1
	shift
	ns=$(cat "$dir/netns" 2>/dev/null)
	if [ -n "$ns" ]; then
		ip netns exec "$ns" "$@"
	else
		"$@"
	fi
}

# qemu_libvirt_stop DIR: destroy the running guests of the daemon (they would
# outlive it), stop it, and delete its network namespace.  Definitions stay in
# DIR/etc; remove DIR to forget them.
qemu_libvirt_stop() {
	local dir uri d pid ns
	[ -d "$1" ] || return 0
	dir=$(cd "$1" && pwd)
	uri="qemu:///system?socket=$dir/libvirt-sock"
	if _ql_pid_alive "$dir/libvirtd.pid"; then
		for d in $(virsh -c "$uri" list --name 2>/dev/null); do
			virsh -c "$uri" destroy "$d" >/dev/null 2>&1
		done
		_ql_kill_wait "$(cat "$dir/libvirtd.pid")"
	fi
	rm -f "$dir/libvirtd.pid"
	# QEMU processes left behind (the daemon was killed, or died)
	for pid in $(cat "$dir"/run/qemu/*.pid 2>/dev/null); do
		[ -n "$pid" ] && grep -qa qemu "/proc/$pid/cmdline" 2>/dev/null && _ql_kill_wait "$pid"
	done
	ns=$(cat "$dir/netns" 2>/dev/null)
	if [ -n "$ns" ]; then
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			_ql_kill_wait "$pid"
		done
		ip netns del "$ns" 2>/dev/null
		rm -f "$dir/netns"
	fi
	return 0
}
