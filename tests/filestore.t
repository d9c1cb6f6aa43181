#!/bin/bash
# filestore.t: the file store interface on the local and sftp backends, then
# what it did, seen from outside: the files in the local root and in the
# directory a private sshd serves.  Also: host keys that must be refused, and
# an SFTP server that is killed, frozen, stopped and restarted under a running
# file store, which must fail within its timeout and then work again.
#
# Runs tests/filestore-test (found through $FILESTORE_TEST, else
# $EPFS_BUILDDIR/tests/filestore-test); the sshd comes from scripts/sshd-test.sh.
set -u

srcdir=${EPFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${BUILDDIR:-${EPFS_BUILDDIR:-.}}
fst=${FILESTORE_TEST:-$builddir/tests/filestore-test}
if [ ! -x "$fst" ]; then
	echo "Bail out! $fst is not built (set FILESTORE_TEST or EPFS_BUILDDIR)"
	exit 1
fi
. "$srcdir/scripts/sshd-test.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/filestore.XXXXXX") || exit 1
sshd_dir=$tmp/sshd
fault_pid=
cleanup() {
	[ -n "$fault_pid" ] && kill "$fault_pid" 2> /dev/null
	sshd_test_stop "$sshd_dir"
	rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/programs.sh"

is() {  # is GOT EXPECTED DESCRIPTION
	[ "$1" = "$2" ]
	ok $? "$3"
	[ "$1" = "$2" ] || printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
}

# tap LABEL STATUS FILE: a TAP stream from filestore-test, renumbered into ours.
tap() {
	local label=$1 status=$2 file=$3 line
	while IFS= read -r line; do
		case $line in
		"ok "*) ok 0 "$label: ${line#* - }" ;;
		"not ok "*) ok 1 "$label: ${line#* - }" ;;
		"1.."*) ;;
		"Bail out!"*) echo "# $line"; ok 1 "$label: bailed out" ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done < "$file"
	ok "$status" "$label: filestore-test exits 0"
}

# What a listing looks like from outside: path, type, mode, size, mtime, link target.
listing() {
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %T@ %l\n' | sort)
}

# outside LABEL CONF ROOT: drive single operations, then look at ROOT directly.
outside() {
	local label=$1 conf=$2 root=$3
	local fs=("$fst" "$conf")

	check "$label: mkdir w" "${fs[@]}" mkdir w
	test -d "$root/w" && [ "$(stat -c %a "$root/w")" = 755 ]
	ok $? "$label: w is a directory on disk, mode 755"

	head -c 300000 /dev/urandom > "$tmp/data"
	check "$label: put w/data < 300 KB" "${fs[@]}" put w/data < "$tmp/data"
	cmp -s "$tmp/data" "$root/w/data"
	ok $? "$label: the file on disk has the bytes written"
	echo "made outside" > "$root/w/outside.txt"
	check "$label: cat a file made outside" "${fs[@]}" cat w/outside.txt
	is "$(cat "$tmp/out")" "made outside" "$label: it reads what is on disk"
	printf 'more\n' | "${fs[@]}" append w/outside.txt
	is "$(cat "$root/w/outside.txt")" "made outside
more" "$label: append lands at the end on disk"
	refused EEXIST "$label: create over an existing file" "${fs[@]}" create w/data < /dev/null

	# the Jupyter save: new content under a temp name, renamed over the notebook
	echo '{"cells": 1}' > "$root/w/nb.ipynb"
	ino=$(stat -c %i "$root/w/nb.ipynb")
	echo '{"cells": 2}' | "${fs[@]}" put w/.~nb.ipynb
	check "$label: mv .~nb.ipynb nb.ipynb (rename over)" "${fs[@]}" mv w/.~nb.ipynb w/nb.ipynb
	is "$(cat "$root/w/nb.ipynb")" '{"cells": 2}' "$label: the notebook on disk has the new content"
	[ "$(stat -c %i "$root/w/nb.ipynb")" != "$ino" ] && [ ! -e "$root/w/.~nb.ipynb" ]
	ok $? "$label: it is the renamed file (a new inode), the temp name is gone"
	refused EEXIST "$label: mv -n over an existing file" "${fs[@]}" mv-n w/data w/nb.ipynb

	check "$label: ln -s data w/link" "${fs[@]}" ln-s data w/link
	is "$(readlink "$root/w/link")" data "$label: the symlink on disk points to data"
	check "$label: readlink a symlink made outside" "${fs[@]}" readlink w/link
	is "$(cat "$tmp/out")" data "$label: readlink gives its target"
	check "$label: chmod 600 w/data" "${fs[@]}" chmod 600 w/data
	is "$(stat -c %a "$root/w/data")" 600 "$label: mode 600 on disk"
	check "$label: touch -m @1234567890.5" "${fs[@]}" touch 1234567890.500000000 w/data
	is "$(stat -c %Y "$root/w/data")" 1234567890 "$label: mtime on disk"
	check "$label: truncate 1000 w/data" "${fs[@]}" truncate 1000 w/data
	is "$(stat -c %s "$root/w/data")" 1000 "$label: 1000 bytes on disk"

	# escapes made outside the store are refused, whoever made them
	ln -s /etc/passwd "$root/w/passwd"
	ln -s ../../../../../../../../.. "$root/w/up"
	refused EACCES "$label: cat a symlink to /etc/passwd made outside" "${fs[@]}" cat w/passwd
	refused EACCES "$label: ls through a symlink out of the root" "${fs[@]}" ls w/up/etc
	refused EACCES "$label: put through a symlink out of the root" "${fs[@]}" put w/up/tmp/epfs-escape < /dev/null
	test ! -e /tmp/epfs-escape
	ok $? "$label: nothing was written outside"
	refused EINVAL "$label: cat ../x" "${fs[@]}" cat ../x
	refused EINVAL "$label: cat /etc/passwd" "${fs[@]}" cat /etc/passwd

	# copy_tree from a tree made outside, checked against the original
	mkdir -p "$root/tree/a/b" "$root/tree/empty"
	head -c 2000000 /dev/urandom > "$root/tree/a/big"
	echo hi > "$root/tree/a/b/hi.txt"
	ln -s b/hi.txt "$root/tree/a/hi"
	chmod 750 "$root/tree/a/b"
	chmod 640 "$root/tree/a/b/hi.txt"
	touch -h -d @1500000000 "$root/tree/a/b/hi.txt" "$root/tree/a/b" "$root/tree/a/big"
	touch -d @1400000000 "$root/tree/empty" "$root/tree/a" "$root/tree"
	check "$label: cp-r tree copy" "${fs[@]}" cp-r tree copy
	tail -1 "$tmp/err" | grep -qx "progress 2000003 2000003"
	ok $? "$label: progress ends at the total ($(tail -1 "$tmp/err"))"
	# symlinks keep their own times only where the store can set them
	diff <(listing "$root/tree" | awk '$2 != "l" {print} $2 == "l" {print $1, $2, $6}') \
	     <(listing "$root/copy" | awk '$2 != "l" {print} $2 == "l" {print $1, $2, $6}') > "$tmp/diff"
	ok $? "$label: the copy on disk has every file, mode, size, mtime and link target"
	sed 's/^/#   /' "$tmp/diff" | head -10
	cmp -s "$root/tree/a/big" "$root/copy/a/big"
	ok $? "$label: the copied bytes are the same"
	check "$label: du copy" "${fs[@]}" du copy
	is "$(cat "$tmp/out")" "$(find "$root/copy" -type f -printf '%s\n' | awk '{s += $1} END {print s}')" \
		"$label: du matches the files on disk"
	refused EEXIST "$label: cp-r onto an existing name" "${fs[@]}" cp-r tree copy
	test -z "$(find "$root" -name '.epfs-tmp.*')"
	ok $? "$label: no temporary copies are left on disk"
	check "$label: rm-r copy" "${fs[@]}" rm-r copy
	test ! -e "$root/copy" && test -e "$root/tree/a/b/hi.txt"
	ok $? "$label: the copy is gone from disk, the original is not"
	check "$label: ls tree" "${fs[@]}" ls tree
	is "$(awk '{print $1, $NF}' "$tmp/out" | tr '\n' ' ')" "d a d empty " "$label: ls lists type and name"
	check "$label: df" "${fs[@]}" df ""
	check "$label: rm-r w" "${fs[@]}" rm-r w
	check "$label: rm-r tree" "${fs[@]}" rm-r tree
	test -z "$(ls -A "$root")"
	ok $? "$label: the root is empty again"
}

# ---- local ----

local_root=$tmp/local
printf '[filestore]\nbackend=local\npath=%s\n' "$local_root" > "$tmp/local.conf"
"$fst" "$tmp/local.conf" > "$tmp/tap" 2>&1
tap local $? "$tmp/tap"
printf '[filestore]\nbackend=local\npath=%s\nopenat2=false\n' "$local_root" > "$tmp/walk.conf"
"$fst" "$tmp/walk.conf" > "$tmp/tap" 2>&1
tap "local without openat2" $? "$tmp/tap"
outside local "$tmp/local.conf" "$local_root"
printf '[filestore]\nbackend=nope\n' > "$tmp/bad.conf"
refused EINVAL "an unknown backend is refused" "$fst" "$tmp/bad.conf" ping
printf '[filestore]\nbackend=local\npath=relative/dir\n' > "$tmp/bad.conf"
refused EINVAL "a relative local path is refused" "$fst" "$tmp/bad.conf" ping

# ---- sftp ----

if ! sshd_test_start "$sshd_dir" > "$tmp/sshd.err" 2>&1; then
	sed 's/^/# /' "$tmp/sshd.err"
	ok 1 "sshd starts (scripts/sshd-test.sh)"
	echo "1..$n"
	exit 1
fi
ok 0 "sshd listens on 127.0.0.1:$SSHD_TEST_PORT"
remote=$tmp/remote
mkdir -p "$remote"
sftp_conf() {  # sftp_conf FILE [KEY=VALUE...]: a [filestore] for the test sshd
	local file=$1
	shift
	{
		echo "[filestore]"
		echo "backend=sftp"
		echo "host=127.0.0.1"
		echo "port=$SSHD_TEST_PORT"
		echo "user=$SSHD_TEST_USER"
		echo "key=$SSHD_TEST_KEY"
		echo "known_hosts=$SSHD_TEST_KNOWN_HOSTS"
		echo "root=$remote"
		echo "timeout=5"
		printf '%s\n' "$@"
	} > "$file"
}
sftp_conf "$tmp/sftp.conf"
start=$(date +%s)
"$fst" "$tmp/sftp.conf" > "$tmp/tap" 2>&1
tap sftp $? "$tmp/tap"
echo "# sftp interface tests took $(($(date +%s) - start)) s"
outside sftp "$tmp/sftp.conf" "$remote"

sftp_conf "$tmp/server.conf" "confine=server"
check "sftp confine=server: ping" "$fst" "$tmp/server.conf" ping
sftp_conf "$tmp/sub.conf" "root=$remote/not/yet/there"
check "sftp: a missing root is created" "$fst" "$tmp/sub.conf" ping
test -d "$remote/not/yet/there"
ok $? "sftp: it exists on disk"
rm -rf "$remote/not"

# host keys: a different key for the same host:port, none at all, no file
ssh-keygen -q -t ed25519 -N '' -f "$tmp/other_host_key" < /dev/null
echo "[127.0.0.1]:$SSHD_TEST_PORT $(cut -d' ' -f1,2 "$tmp/other_host_key.pub")" > "$tmp/wrong_known_hosts"
sftp_conf "$tmp/wrong.conf" "known_hosts=$tmp/wrong_known_hosts"
refused EACCES "sftp: a host key that does not match known_hosts is refused" "$fst" "$tmp/wrong.conf" ping
grep -q "does NOT match" "$tmp/err"
ok $? "sftp: the message says the key does not match"
: > "$tmp/empty_known_hosts"
sftp_conf "$tmp/unknown.conf" "known_hosts=$tmp/empty_known_hosts"
refused EACCES "sftp: a host missing from known_hosts is refused" "$fst" "$tmp/unknown.conf" ping
grep -q "is not in" "$tmp/err"
ok $? "sftp: the message says the host is unknown"
sftp_conf "$tmp/nofile.conf" "known_hosts=$tmp/no_such_file"
refused EINVAL "sftp: a missing known_hosts file is refused" "$fst" "$tmp/nofile.conf" ping
ssh-keygen -q -t ed25519 -N '' -f "$tmp/stranger" < /dev/null
sftp_conf "$tmp/stranger.conf" "key=$tmp/stranger"
refused EACCES "sftp: a key the server does not know is refused" "$fst" "$tmp/stranger.conf" ping
sftp_conf "$tmp/closed.conf" "port=1"
refused EAGAIN "sftp: a port nobody listens on is EAGAIN" "$fst" "$tmp/closed.conf" ping

# ---- the storage host goes away and comes back, under one running file store ----

# wait_for FILE: until FILE exists (at most 120 s)
wait_for() {
	local i
	for i in $(seq 1200); do
		[ -e "$1" ] && return 0
		kill -0 "$fault_pid" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}

ctl=$tmp/ctl
mkdir -p "$ctl"
sftp_conf "$tmp/fault.conf" "timeout=2" "pool_size=2"
start=$(date +%s)
"$fst" "$tmp/fault.conf" fault "$ctl" > "$tmp/fault.tap" 2>&1 &
fault_pid=$!
steps_ok=0
if wait_for "$ctl/ready-kill"; then
	sshd_test_kill_sessions "$sshd_dir"
	touch "$ctl/killed"
	if wait_for "$ctl/ready-freeze"; then
		sshd_test_freeze "$sshd_dir"
		touch "$ctl/frozen"
		if wait_for "$ctl/ready-stop"; then
			sshd_test_stop "$sshd_dir"
			touch "$ctl/stopped"
			if wait_for "$ctl/ready-restart"; then
				sshd_test_restart "$sshd_dir" > /dev/null 2>&1
				touch "$ctl/restarted"
				wait_for "$ctl/done" && steps_ok=1
			fi
		fi
	fi
fi
ok $((1 - steps_ok)) "fault: every phase ran (kill sessions, freeze, stop, restart)"
# whatever happened, the server is thawed so nothing is left stopped
sshd_test_thaw "$sshd_dir"
wait "$fault_pid"
status=$?
fault_pid=
tap fault "$status" "$tmp/fault.tap"
echo "# the fault test took $(($(date +%s) - start)) s"
test -z "$(ls -A "$remote")"
ok $? "sftp: the remote root is empty again"

echo "1..$n"
[ "$failed" -eq 0 ]
