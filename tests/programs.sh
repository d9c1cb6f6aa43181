# tests/programs.sh: TAP helpers for the scripts that drive a test program
# (storage-test, filestore-test) and check what it did.  The caller sets $tmp.
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

# check DESCRIPTION COMMAND...: passes if COMMAND succeeds; its output is in $tmp/out.
check() {
	local what=$1 r
	shift
	"$@" > "$tmp/out" 2> "$tmp/err"
	r=$?
	ok $r "$what"
	[ $r -eq 0 ] || sed 's/^/#   /' "$tmp/err"
}

# refused ERRNO DESCRIPTION COMMAND...: passes if COMMAND fails with ERRNO.
refused() {
	local err=$1 what=$2
	shift 2
	if "$@" > "$tmp/out" 2> "$tmp/err"; then
		ok 1 "$what"
		echo "#   succeeded, expected $err"
		return
	fi
	grep -q "^$err:" "$tmp/err"
	ok $? "$what"
	sed 's/^/#   /' "$tmp/err"
}
