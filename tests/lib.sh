# tests/lib.sh: the test harness.  Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   epfs_setup            # private MariaDB, storage dir, epfs on $MNT
#   mkdir "$MNT/images/x"; echo 1G > "$MNT/images/x/size"
#   is "$(sql "SELECT size FROM image WHERE id='x'")" 1073741824 "size is stored"
#   done_testing
#
# Everything lives under one temporary directory ($T) and is torn down from
# an EXIT trap, also when a test fails half-way.  Output is TAP.

set -u

EPFS_SRCDIR=${EPFS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
EPFS_BUILDDIR=${EPFS_BUILDDIR:-$EPFS_SRCDIR}
EPFS_BIN=${EPFS_BIN:-$EPFS_BUILDDIR/epfs}

T=$(mktemp -d /tmp/epfs-test.XXXXXX)
MNT=$T/mnt
STORAGE=$T/storage
DB_SOCKET=$T/db/mysqld.sock
DB_NAME=epfs
EPFS_CONF=$T/epfs.conf
EPFS_PID=
_TAP_N=0
_TAP_FAILED=0

# ---- TAP ----

ok() {  # ok CONDITION-EXIT-STATUS DESCRIPTION  (use: cmd; ok $? "desc")
	_TAP_N=$((_TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_TAP_N - $2"
	else
		echo "not ok $_TAP_N - $2"
		_TAP_FAILED=$((_TAP_FAILED + 1))
	fi
}

is() {  # is GOT EXPECTED DESCRIPTION
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#   got:      %s\n#   expected: %s\n' "$1" "$2" | head -20
	fi
}

like() {  # like GOT REGEX DESCRIPTION
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#   got:      %s\n#   expected: /%s/\n' "$1" "$2" | head -20
	fi
}

diag() { echo "# $*"; }

# fails_with ERRNO DESCRIPTION COMMAND...: the command fails with that errno's message
fails_with() {
	local errno=$1 desc=$2 msg out rc
	shift 2
	msg=$(perl -MPOSIX -e "\$! = POSIX::$errno(); print \"\$!\"")
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -qF -- "$msg"; then
		ok 0 "$desc ($errno)"
	else
		ok 1 "$desc ($errno)"
		diag "exit $rc, output: $out"
	fi
}

# write VALUE FILE: echo VALUE > FILE, as a shell would (its errors on stderr)
write() { printf '%s\n' "$1" > "$2"; }

done_testing() {
	# unmount first: a sanitizer report found at exit is one more failed test
	[ -z "$EPFS_PID" ] || epfs_umount
	echo "1..$_TAP_N"
	[ "$_TAP_FAILED" -eq 0 ]
	exit $?
}

# ---- backends ----

. "$EPFS_SRCDIR/scripts/backends.sh"

db_start() { backend_db_start "$T/db"; }
db_stop() { backend_db_stop "$T/db"; }

# sql STATEMENT: run it on the test database, print rows tab-separated
sql() { mariadb --no-defaults -S "$DB_SOCKET" -uroot -N -B "$DB_NAME" -e "$1"; }

write_config() {
	cat > "$EPFS_CONF" <<CONF
[epfs]
attr_timeout=${EPFS_ATTR_TIMEOUT:-1.0}
entry_timeout=${EPFS_ATTR_TIMEOUT:-1.0}
timeout=10
admin_group=root
${EPFS_SYNC_INTERVAL:+sync_interval=$EPFS_SYNC_INTERVAL}

[database]
socket=$DB_SOCKET
user=root
database=$DB_NAME

[storage]
backend=dir
path=$STORAGE

[filestore]
backend=${EPFS_FILESTORE:-local}
path=$T/files
${EPFS_FILESTORE_CONF:-}

[hypervisor]
console_dir=$T/console
shutdown_timeout=${EPFS_SHUTDOWN_TIMEOUT:-5}
operation_timeout=60
${EPFS_EXTRA_CONF:-}
CONF
}

# libvirt_start [NAME]: a private libvirtd (test driver) in $T/NAME; prints its URI
libvirt_start() {
	local name=${1:-libvirt}
	local uri="test+unix:///default?socket=$T/$name/libvirt-sock"
	backend_libvirt_start "$T/$name" </dev/null >/dev/null 2>&1 || return 1
	# the test driver forgets its domains when its last client goes: one stays
	# connected, as a real hypervisor keeps its domains when epfs restarts
	virsh -c "$uri" event --all --loop </dev/null >"$T/$name/events.log" 2>&1 &
	echo $! > "$T/$name/keeper.pid"
	echo "$uri"
}

epfs_mount() {
	mkdir -p "$MNT"
	"$EPFS_BIN" -f -o "config=$EPFS_CONF,allow_other" ${EPFS_OPTS:-} "$MNT" >>"$T/epfs.log" 2>&1 &
	EPFS_PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$EPFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# epfs did not mount:"; sed 's/^/# /' "$T/epfs.log"
	return 1
}

epfs_umount() {
	[ -n "$EPFS_PID" ] || return 0
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$EPFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$EPFS_PID" 2>/dev/null
	wait "$EPFS_PID" 2>/dev/null
	local rc=$?
	EPFS_PID=
	# a sanitizer report makes the daemon exit non-zero: that fails the test
	if grep -q "ERROR: AddressSanitizer\|runtime error:" "$T/epfs.log" 2>/dev/null; then
		ok 1 "epfs ran without sanitizer reports"
		grep -A30 "ERROR: AddressSanitizer\|runtime error:" "$T/epfs.log" | sed 's/^/# /' | head -60
	fi
	return $rc
}

epfs_teardown() {
	local d
	epfs_umount
	# libvirt_start runs in $(...): find its daemons by their pid files
	for d in "$T"/*/; do
		[ -f "$d/libvirtd.pid" ] || continue
		kill "$(cat "$d/keeper.pid" 2>/dev/null)" 2>/dev/null
		backend_libvirt_stop "${d%/}"
	done
	db_stop
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}

# epfs_setup_filestore: epfs_setup on the file store $EPFS_FILESTORE (local,
# or sftp against a real sshd of its own)
epfs_setup_filestore() {
	if [ "${EPFS_FILESTORE:-local}" != sftp ]; then
		epfs_setup
		return
	fi
	. "$EPFS_SRCDIR/scripts/sshd-test.sh"
	mkdir -p "$T/sshd" "$T/files"
	sshd_test_start "$T/sshd" >/dev/null 2>&1 || { echo "Bail out! cannot start sshd"; exit 1; }
	EPFS_FILESTORE_CONF="host=$SSHD_TEST_HOST
port=$SSHD_TEST_PORT
user=$SSHD_TEST_USER
key=$SSHD_TEST_KEY
known_hosts=$SSHD_TEST_KNOWN_HOSTS
root=$T/files
owners=${EPFS_SFTP_OWNERS:-true}"
	trap 'epfs_teardown_sftp' EXIT
	epfs_teardown_sftp() { epfs_umount; sshd_test_stop "$T/sshd" >/dev/null 2>&1; db_stop; rm -rf "$T"; }
	db_start || { echo "Bail out! cannot start MariaDB"; exit 1; }
	mkdir -p "$STORAGE" "$T/console"; chmod 755 "$T"
	write_config; epfs_mount || { echo "Bail out! cannot mount"; exit 1; }
}

epfs_setup() {
	trap epfs_teardown EXIT
	db_start || { echo "Bail out! cannot start MariaDB"; exit 1; }
	mkdir -p "$STORAGE" "$T/console" "$T/files"
	chmod 755 "$T"
	write_config
	epfs_mount || { echo "Bail out! cannot mount epfs"; exit 1; }
}
