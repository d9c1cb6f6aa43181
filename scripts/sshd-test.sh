# scripts/sshd-test.sh: a private OpenSSH server for the SFTP file store tests.
#
#   . scripts/sshd-test.sh
#   sshd_test_start "$dir"     # keys, sshd_config, sshd on 127.0.0.1:<free port>
#   sftp -F "$SSHD_TEST_SSH_CONFIG" epfs-test ...
#   sshd_test_stop "$dir"      # the server and every session it started
#
# Everything lives in DIR: host and user keys (ed25519), authorized_keys,
# known_hosts ("[127.0.0.1]:PORT ssh-ed25519 ..."), sshd_config, sshd.pid,
# sshd.log and an ssh_config for the ssh/sftp/sshfs command-line tools.
# The server runs as the calling user (root in CI) with `internal-sftp`.
#
# After sshd_test_start these are exported:
#   SSHD_TEST_HOST SSHD_TEST_PORT SSHD_TEST_USER    where to connect, as whom
#   SSHD_TEST_KEY SSHD_TEST_PUBKEY                  the user's key pair
#   SSHD_TEST_KNOWN_HOSTS                           the server's host key
#   SSHD_TEST_SSH_CONFIG                            ssh -F FILE epfs-test
#
# Fault injection, for the reconnection tests:
#   sshd_test_freeze DIR / sshd_test_thaw DIR   SIGSTOP / SIGCONT the server and its sessions
#   sshd_test_kill_sessions DIR                 end the open sessions, keep listening
#   sshd_test_stop DIR; sshd_test_restart DIR   down, then up again on the same port

SSHD_TEST_SSHD=${SSHD_TEST_SSHD:-/usr/sbin/sshd}

# Install the OpenSSH server and client if they are missing (Debian; root only).
sshd_test_install() {
	[ -x "$SSHD_TEST_SSHD" ] && command -v ssh-keygen > /dev/null && return 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
		echo "sshd-test: $SSHD_TEST_SSHD or ssh-keygen is missing" >&2
		return 1
	fi
	# the package lists may be missing on a fresh machine: update once, then retry
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		openssh-server openssh-client > /dev/null 2>&1 ||
	{ apt-get update -qq > /dev/null 2>&1 &&
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		openssh-server openssh-client > /dev/null; } ||
		{ echo "sshd-test: cannot install openssh-server" >&2; return 1; }
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
_sshd_test_free_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
		                              LocalPort => 0, ReuseAddr => 1) or die "$!\n";
		print $s->sockport, "\n";'
}

# True once something on 127.0.0.1:PORT answers with an SSH banner.
_sshd_test_answers() {
	local port=$1 banner
	banner=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2> /dev/null)
	[ "$banner" = "SSH-" ]
}

# PID and every descendant of PID, parents first.
_sshd_test_tree() {
	local pid=$1 child
	echo "$pid"
	for child in $(ps -o pid= --ppid "$pid" 2> /dev/null); do
		_sshd_test_tree "$child"
	done
}

_sshd_test_pid() {
	local dir=$1 pid
	pid=$(cat "$dir/sshd.pid" 2> /dev/null) || return 1
	kill -0 "$pid" 2> /dev/null || return 1
	echo "$pid"
}

# Start sshd from DIR/sshd_config and wait until it answers (at most 10 s).
_sshd_test_run() {
	local dir=$1 i
	# sshd refuses to start without its privilege separation directory
	[ -d /run/sshd ] || mkdir -p /run/sshd 2> /dev/null
	rm -f "$dir/sshd.pid"
	# -D: no daemon, so it stays our child; setsid: off the test's terminal and process group
	# (a subshell, so the server is not a job of the caller's shell)
	(setsid "$SSHD_TEST_SSHD" -D -f "$dir/sshd_config" -E "$dir/sshd.log" < /dev/null > /dev/null 2>&1 &)
	for i in $(seq 100); do
		_sshd_test_answers "$SSHD_TEST_PORT" && return 0
		sleep 0.1
	done
	echo "sshd-test: sshd on port $SSHD_TEST_PORT did not start:" >&2
	tail -5 "$dir/sshd.log" >&2
	return 1
}

_sshd_test_export() {
	local dir=$1
	export SSHD_TEST_HOST=127.0.0.1
	SSHD_TEST_PORT=$(cat "$dir/port")
	export SSHD_TEST_PORT
	SSHD_TEST_USER=$(id -un)
	export SSHD_TEST_USER
	export SSHD_TEST_KEY=$dir/user_ed25519
	export SSHD_TEST_PUBKEY=$dir/user_ed25519.pub
	export SSHD_TEST_KNOWN_HOSTS=$dir/known_hosts
	export SSHD_TEST_SSH_CONFIG=$dir/ssh_config
}

# sshd_test_start DIR: keys, configuration and a running sshd on a free port.
sshd_test_start() {
	local dir=$1 try
	sshd_test_install || return 1
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	ssh-keygen -q -t ed25519 -N '' -C epfs-test-host -f "$dir/host_ed25519" < /dev/null || return 1
	ssh-keygen -q -t ed25519 -N '' -C epfs-test-user -f "$dir/user_ed25519" < /dev/null || return 1
	cp "$dir/user_ed25519.pub" "$dir/authorized_keys"
	for try in 1 2 3 4 5; do
		_sshd_test_free_port > "$dir/port" || return 1
		_sshd_test_export "$dir"
		cat > "$dir/sshd_config" <<-EOF
		Port $SSHD_TEST_PORT
		ListenAddress 127.0.0.1
		HostKey $dir/host_ed25519
		PidFile $dir/sshd.pid
		AuthorizedKeysFile $dir/authorized_keys
		StrictModes no
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		UsePAM no
		UseDNS no
		MaxStartups 100
		MaxSessions 100
		LogLevel ERROR
		Subsystem sftp internal-sftp
		EOF
		_sshd_test_run "$dir" && break
		# the port was taken between the probe and the bind: try another
		sshd_test_stop "$dir"
		[ "$try" -eq 5 ] && return 1
	done
	echo "[127.0.0.1]:$SSHD_TEST_PORT $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
	cat > "$dir/ssh_config" <<-EOF
	Host epfs-test
	    HostName 127.0.0.1
	    Port $SSHD_TEST_PORT
	    User $SSHD_TEST_USER
	    IdentityFile $dir/user_ed25519
	    IdentitiesOnly yes
	    UserKnownHostsFile $dir/known_hosts
	    StrictHostKeyChecking yes
	    BatchMode yes
	EOF
}

# sshd_test_restart DIR: start the server again, same keys and port.
sshd_test_restart() {
	local dir=$1
	_sshd_test_export "$dir"
	_sshd_test_pid "$dir" > /dev/null && return 0
	_sshd_test_run "$dir"
}

# sshd_test_signal DIR SIGNAL [sessions]: signal the server and its sessions
# (or, with "sessions", only the sessions).
sshd_test_signal() {
	local dir=$1 sig=$2 only=${3:-} pid pids
	pid=$(_sshd_test_pid "$dir") || return 0
	# collect the whole tree first: a killed parent's children are reparented
	pids=$(_sshd_test_tree "$pid")
	[ "$only" = sessions ] && pids=$(echo "$pids" | grep -vx "$pid")
	[ -n "$pids" ] && kill -s "$sig" $pids 2> /dev/null
	return 0
}

sshd_test_freeze() { sshd_test_signal "$1" STOP; }
sshd_test_thaw() { sshd_test_signal "$1" CONT; }
sshd_test_kill_sessions() { sshd_test_signal "$1" KILL sessions; }

# sshd_test_stop DIR: stop the server and every session it started.
sshd_test_stop() {
	local dir=$1 pid i
	pid=$(_sshd_test_pid "$dir") || return 0
	sshd_test_signal "$dir" CONT
	sshd_test_signal "$dir" KILL
	for i in $(seq 50); do
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	rm -f "$dir/sshd.pid"
}
