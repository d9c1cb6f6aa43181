# scripts/backends.sh: start and stop the embedded backends in a directory of
# their own, on unix sockets only.  Sourced by scripts/demo and tests/lib.sh.
#
#   backend_db_start DIR        private MariaDB: DIR/data, socket DIR/mysqld.sock
#   backend_db_stop DIR
#   backend_libvirt_start DIR   libvirtd serving test+unix:///default?socket=DIR/libvirt-sock
#   backend_libvirt_stop DIR

# _pid_alive PIDFILE: the process in PIDFILE runs (a zombie counts as gone)
_pid_alive() {
	local pid
	[ -f "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# _stop_pidfile PIDFILE: TERM, wait up to 10 s, then KILL
_stop_pidfile() {
	local pid i
	_pid_alive "$1" || { rm -f "$1"; return 0; }
	pid=$(cat "$1")
	kill "$pid" 2>/dev/null
	for i in $(seq 1 200); do
		_pid_alive "$1" || break
		sleep 0.05
	done
	_pid_alive "$1" && kill -9 "$pid" 2>/dev/null
	rm -f "$1"
}

backend_db_start() {
	local dir=$1 i
	_pid_alive "$dir/mysqld.pid" && return 0
	mkdir -p "$dir"
	if [ ! -d "$dir/data/mysql" ]; then
		# seen once under heavy load: the bootstrap failing; a second attempt from scratch works
		for i in 1 2; do
			rm -rf "$dir/data"
			mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
				--skip-test-db --user=root >"$dir/install.log" 2>&1 && break
			[ "$i" = 2 ] && { grep -v '^$' "$dir/install.log" | head -30 >&2; return 1; }
		done
	fi
	# its own tmpdir: at start-up mariadbd deletes every #sql* file in it, which
	# would pull the temporary tables from under other servers sharing /tmp
	mkdir -p "$dir/tmp"
	setsid mariadbd --no-defaults --user=root --datadir="$dir/data" --socket="$dir/mysqld.sock" \
		--tmpdir="$dir/tmp" \
		--skip-networking --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=16M --skip-log-bin \
		--default-time-zone=+00:00 --innodb-flush-log-at-trx-commit=2 \
		</dev/null >"$dir/stderr.log" 2>&1 &
	for i in $(seq 1 400); do
		if [ -S "$dir/mysqld.sock" ] && mariadb --no-defaults -S "$dir/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	echo "mariadbd did not start; its log:" >&2
	tail -20 "$dir/error.log" >&2
	return 1
}

backend_db_stop() {
	_stop_pidfile "$1/mysqld.pid"
}

backend_libvirt_start() {
	local dir=$1 i
	_pid_alive "$dir/libvirtd.pid" && return 0
	mkdir -p "$dir"
	# libvirtd refuses to start its QEMU driver without this account
	getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
	getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	cat > "$dir/libvirtd.conf" <<CONF
unix_sock_dir = "$dir"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:file:$dir/libvirtd.log"
CONF
	# libvirtd keeps driver state and pid files in /run/libvirt and /var/lib/libvirt:
	# give each instance its own in a private mount namespace, so several (the
	# demo, parallel tests, the system's) run side by side
	mkdir -p /run/libvirt /var/lib/libvirt "$dir/lib"
	unshare --mount --propagation private -- sh -c '
		# FUSE mounts copied into the namespace would keep them alive after unmounting
		awk '"'"'$3 ~ /^fuse/ {print $2}'"'"' /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null
		mount -t tmpfs tmpfs /run/libvirt &&
		mount --bind "$1/lib" /var/lib/libvirt &&
		exec libvirtd -d -f "$1/libvirtd.conf" -p "$1/libvirtd.pid"' sh "$dir" >"$dir/stderr.log" 2>&1
	for i in $(seq 1 200); do
		[ -S "$dir/libvirt-sock" ] && virsh -c "test+unix:///default?socket=$dir/libvirt-sock" version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "libvirtd did not start; its log:" >&2
	tail -n 20 "$dir/libvirtd.log" "$dir/stderr.log" >&2
	return 1
}

backend_libvirt_stop() {
	_stop_pidfile "$1/libvirtd.pid"
}
