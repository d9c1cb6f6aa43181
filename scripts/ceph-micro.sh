# scripts/ceph-micro.sh: a real one-monitor, one-OSD Ceph cluster on 127.0.0.1,
# everything under one directory, for the rbd storage tests and the demo.
# Source it (bash):
#
#   ceph_micro_start DIR [memstore|bluestore]  create or restart the cluster; writes DIR/ceph.conf
#   ceph_micro_stop DIR                        stop it (OSD first); the data stays in DIR
#   ceph_micro_osd_restart DIR                 stop and start the OSD, wait until usable
#   ceph_micro_running DIR                     true if both daemons run
#
# The cluster has the pools `images` and `volumes`, rbd-initialised, no mgr,
# and cephx off (CEPH_MICRO_AUTH=cephx turns it on: DIR/keyring then holds
# client.admin, and DIR/client.epfs.keyring a client.epfs with `profile rbd`).
# memstore is fast and keeps its data in RAM, written to DIR/osd.0 on a clean
# stop (osd fast shutdown is off) and lost if the OSD is killed; bluestore
# keeps it in a sparse file, DIR/osd.0/block.  Starting a running cluster is a
# no-op; starting a stopped one restarts its daemons on the same port with the
# same data, so clients configured with DIR/ceph.conf reconnect by themselves.
# Needs ceph-mon, ceph-osd and ceph-common; no ceph-mgr (commands that need
# one would hang, so every CLI call here runs under timeout).

# Every CLI call goes through timeout: without a mgr some commands hang forever.
_ceph_micro_cli_timeout=${CEPH_MICRO_TIMEOUT:-60}

# _ceph_micro_alive PIDFILE: the process in PIDFILE runs (a zombie counts as gone)
_ceph_micro_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# _ceph_micro_kill PIDFILE: TERM, wait up to 10 s, then KILL; waits until gone
_ceph_micro_kill() {
	local pid i
	_ceph_micro_alive "$1" || { rm -f "$1"; return 0; }
	pid=$(cat "$1")
	kill "$pid" 2>/dev/null
	for i in $(seq 1 200); do
		_ceph_micro_alive "$1" || break
		sleep 0.05
	done
	if _ceph_micro_alive "$1"; then
		kill -9 "$pid" 2>/dev/null
		for i in $(seq 1 100); do
			_ceph_micro_alive "$1" || break
			sleep 0.05
		done
	fi
	rm -f "$1"
}

# _ceph_micro_wait_pidfile PIDFILE SECONDS: daemons write it after they detach
_ceph_micro_wait_pidfile() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		_ceph_micro_alive "$1" && return 0
		sleep 0.05
	done
	return 1
}

# _ceph_micro_ceph DIR ARGS...: the ceph CLI on this cluster, bounded in time
_ceph_micro_ceph() {
	local dir=$1
	shift
	timeout "$_ceph_micro_cli_timeout" ceph -c "$dir/ceph.conf" --connect-timeout 20 "$@"
}

_ceph_micro_rbd() {
	local dir=$1
	shift
	timeout "$_ceph_micro_cli_timeout" rbd -c "$dir/ceph.conf" "$@"
}

# _ceph_micro_port_free PORT: nothing listens on 127.0.0.1:PORT
_ceph_micro_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _ceph_micro_log DIR MESSAGE: say why start failed, with the daemons' last words
_ceph_micro_fail() {
	local dir=$1
	shift
	echo "ceph-micro: $*" >&2
	tail -n 15 "$dir"/log/mon.a.log "$dir"/log/osd.0.log 2>/dev/null | sed 's/^/ceph-micro:   /' >&2
	return 1
}

# _ceph_micro_write_conf DIR PORT FSID STORE AUTH
_ceph_micro_write_conf() {
	local dir=$1 port=$2 fsid=$3 store=$4 auth=$5
	cat > "$dir/ceph.conf" <<CONF
# a micro Ceph cluster made by scripts/ceph-micro.sh ($store, auth $auth)
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = $auth
auth service required = $auth
auth client required = $auth
auth allow insecure global id reclaim = false
run dir = $dir/run
crash dir = $dir/crash
tmp dir = $dir/tmp
mon data = $dir/mon.\$id
osd data = $dir/osd.\$id
osd objectstore = $store
memstore device bytes = 2147483648
bluestore block create = true
bluestore block size = 10737418240
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.01
mon warn on pool no redundancy = false
mon mgr mkfs grace = 31536000
mon data avail crit = 0
mon data avail warn = 0
osd fast shutdown = false
osd fast shutdown notify mon = false
osd memory target = 1073741824
osd max object name len = 256
osd max object namespace len = 64

[mon]
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log

[osd]
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
$([ "$auth" = cephx ] && echo "keyring = $dir/osd.\$id/keyring")

[client]
log file = $dir/log/client.log
admin socket =
$([ "$auth" = cephx ] && echo "keyring = $dir/keyring")
CONF
}

# _ceph_micro_start_mon DIR: start the monitor; 0 once it answers
_ceph_micro_start_mon() {
	local dir=$1 i
	_ceph_micro_alive "$dir/run/mon.a.pid" && return 0
	rm -f "$dir/run/mon.a.pid"
	ceph-mon -i a -c "$dir/ceph.conf" </dev/null >>"$dir/log/mon.a.stderr" 2>&1 || return 1
	_ceph_micro_wait_pidfile "$dir/run/mon.a.pid" 10 || return 1
	# it may still fail to bind its port: a dead pid file tells
	for i in $(seq 1 100); do
		_ceph_micro_alive "$dir/run/mon.a.pid" || return 1
		CEPH_MICRO_TIMEOUT=10 _ceph_micro_ceph "$dir" mon stat >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# _ceph_micro_start_osd DIR: start the OSD (made already) and wait until usable
_ceph_micro_start_osd() {
	local dir=$1
	if ! _ceph_micro_alive "$dir/run/osd.0.pid"; then
		rm -f "$dir/run/osd.0.pid"
		ceph-osd -i 0 -c "$dir/ceph.conf" </dev/null >>"$dir/log/osd.0.stderr" 2>&1 ||
			return 1
		_ceph_micro_wait_pidfile "$dir/run/osd.0.pid" 30 || return 1
	fi
	_ceph_micro_wait_usable "$dir"
}

# _ceph_micro_wait_usable DIR: client I/O to both pools works: listing visits
# every placement group, so it returns once all of them are active
_ceph_micro_wait_usable() {
	local dir=$1 pool
	for pool in images volumes; do
		timeout "$_ceph_micro_cli_timeout" rados -c "$dir/ceph.conf" -p "$pool" ls \
			>/dev/null 2>&1 || return 1
	done
}

# _ceph_micro_new_mon DIR STORE AUTH: a new monitor on a random free port
_ceph_micro_new_mon() {
	local dir=$1 store=$2 auth=$3 fsid port try keyring=()
	[ "$auth" = cephx ] && keyring=(--keyring "$dir/mon.keyring")
	fsid=$(cat /proc/sys/kernel/random/uuid)
	for try in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 30000))
		_ceph_micro_port_free "$port" || continue
		rm -rf "$dir/mon.a" "$dir/monmap"
		_ceph_micro_write_conf "$dir" "$port" "$fsid" "$store" "$auth"
		monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" \
			>/dev/null || return 1
		ceph-mon --mkfs -i a --monmap "$dir/monmap" -c "$dir/ceph.conf" "${keyring[@]}" \
			>>"$dir/log/mkfs.log" 2>&1 || return 1
		_ceph_micro_start_mon "$dir" && return 0
		# most likely the port was taken meanwhile: try another
		_ceph_micro_kill "$dir/run/mon.a.pid"
	done
	_ceph_micro_fail "$dir" "no monitor after $try tries"
}

# _ceph_micro_keys DIR: cephx keys for mon., client.admin (in DIR/keyring) and the OSD
_ceph_micro_keys() {
	local dir=$1
	ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' \
		>/dev/null || return 1
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null || return 1
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" >/dev/null
}

# _ceph_micro_new_osd DIR AUTH: register osd.0, make its store, start it
_ceph_micro_new_osd() {
	local dir=$1 auth=$2 uuid id secret
	uuid=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$dir/osd.0"
	if [ "$auth" = cephx ]; then
		secret=$(ceph-authtool --gen-print-key) || return 1
		ceph-authtool --create-keyring "$dir/osd.0/keyring" --name osd.0 --add-key "$secret" \
			>/dev/null || return 1
		id=$(echo "{\"cephx_secret\": \"$secret\"}" |
			_ceph_micro_ceph "$dir" osd new "$uuid" -i - 2>>"$dir/log/mkfs.log")
	else
		id=$(_ceph_micro_ceph "$dir" osd new "$uuid" 2>>"$dir/log/mkfs.log")
	fi
	[ "$id" = 0 ] || { _ceph_micro_fail "$dir" "ceph osd new gave '$id', not 0"; return 1; }
	ceph-osd -i 0 --mkfs --osd-uuid "$uuid" -c "$dir/ceph.conf" >>"$dir/log/mkfs.log" 2>&1 ||
		{ _ceph_micro_fail "$dir" "ceph-osd --mkfs failed"; return 1; }
	ceph-osd -i 0 -c "$dir/ceph.conf" </dev/null >>"$dir/log/osd.0.stderr" 2>&1 &&
		_ceph_micro_wait_pidfile "$dir/run/osd.0.pid" 30
}

# _ceph_micro_pools DIR AUTH: the rbd pools; `rbd pool init` waits for active PGs
_ceph_micro_pools() {
	local dir=$1 auth=$2 pool
	for pool in images volumes; do
		_ceph_micro_ceph "$dir" osd pool create "$pool" >>"$dir/log/mkfs.log" 2>&1 || return 1
		_ceph_micro_rbd "$dir" pool init "$pool" >>"$dir/log/mkfs.log" 2>&1 || return 1
	done
	if [ "$auth" = cephx ]; then
		_ceph_micro_ceph "$dir" auth get-or-create client.epfs mon 'profile rbd' \
			osd 'profile rbd pool=images, profile rbd pool=volumes' \
			-o "$dir/client.epfs.keyring" >>"$dir/log/mkfs.log" 2>&1 || return 1
	fi
}

ceph_micro_running() {
	_ceph_micro_alive "$1/run/mon.a.pid" && _ceph_micro_alive "$1/run/osd.0.pid"
}

ceph_micro_start() {
	local dir=$1 store=${2:-memstore} auth=${CEPH_MICRO_AUTH:-none}
	case $store in
	memstore|bluestore) ;;
	*) echo "ceph-micro: unknown object store '$store' (memstore or bluestore)" >&2; return 2 ;;
	esac
	case $auth in
	none|cephx) ;;
	*) echo "ceph-micro: CEPH_MICRO_AUTH must be none or cephx, not '$auth'" >&2; return 2 ;;
	esac
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	mkdir -p "$dir/run" "$dir/log" "$dir/crash" "$dir/tmp"

	# made before: restart what is not running, on the same port and data
	if [ -e "$dir/ready" ]; then
		_ceph_micro_start_mon "$dir" || { _ceph_micro_fail "$dir" "monitor did not restart"; return 1; }
		_ceph_micro_start_osd "$dir" || { _ceph_micro_fail "$dir" "OSD did not restart"; return 1; }
		return 0
	fi

	# a half-made cluster (start was interrupted) is made again from scratch
	ceph_micro_stop "$dir"
	rm -rf "$dir/mon.a" "$dir/osd.0" "$dir/monmap" "$dir/keyring" "$dir/mon.keyring" \
		"$dir/client.epfs.keyring" "$dir/ceph.conf"
	if [ "$auth" = cephx ]; then
		_ceph_micro_keys "$dir" || { _ceph_micro_fail "$dir" "cannot make keys"; return 1; }
	fi
	_ceph_micro_new_mon "$dir" "$store" "$auth" || return 1
	_ceph_micro_new_osd "$dir" "$auth" || { _ceph_micro_fail "$dir" "OSD did not start"; return 1; }
	_ceph_micro_pools "$dir" "$auth" || { _ceph_micro_fail "$dir" "cannot create the pools"; return 1; }
	touch "$dir/ready"
}

ceph_micro_stop() {
	local dir=$1
	[ -d "$dir" ] || return 0
	# the OSD first: a monitor gone first makes it stall on shutdown
	_ceph_micro_kill "$dir/run/osd.0.pid"
	_ceph_micro_kill "$dir/run/mon.a.pid"
}

ceph_micro_osd_restart() {
	local dir=$1
	[ -e "$dir/ready" ] || { echo "ceph-micro: no cluster in $dir" >&2; return 1; }
	_ceph_micro_kill "$dir/run/osd.0.pid"
	_ceph_micro_start_osd "$dir" || _ceph_micro_fail "$dir" "OSD did not restart"
}
