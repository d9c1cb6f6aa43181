#!/bin/bash
# bench/compute.sh: how long does creating and starting an instance through
# epfs take, compared with making the same libvirt calls directly with virsh?
#
#   bash bench/compute.sh      (from a directory holding the epfs binary)
#
# Through epfs, one run is what a user types:
#   mkdir instances/X; ln -s ../../images/img instances/X/image
#   echo 128M > instances/X/memory; echo running > instances/X/state
#   until [ "$(cat instances/X/state)" = running ]; do ...; done
# which makes epfs clone the root disk (a qcow2 overlay), place the instance,
# define the domain and start it.  Directly, one run defines and starts a
# domain with the same XML (what epfs defined, renamed):
#   virsh define X.xml; virsh start X           (two processes: "virsh x2")
#   virsh 'define X.xml; start X'               (one process, one connection)
# On libvirt's test driver (a private libvirtd, tests/lib.sh's libvirt_start),
# EPFS_BENCH_RUNS runs each way, interleaved; the medians and their ratio are
# printed.  When real QEMU guests can run here (scripts/qemu-libvirt.sh's
# qemu_usable), the same on a private QEMU libvirtd with the tiny guest of
# scripts/tiny-guest.sh: EPFS_BENCH_QEMU_RUNS runs each way (TCG; also the
# time to the guest's READY line).
#
# Environment:
#   EPFS_BUILDDIR          where the epfs binary is (default: the current
#                          directory if it holds ./epfs, else /work/main)
#   EPFS_BENCH_RUNS        runs each way on the test driver (default 10)
#   EPFS_BENCH_QEMU        auto (default), 1 (fail without QEMU), 0 (skip it)
#   EPFS_BENCH_QEMU_RUNS   runs each way on QEMU (default 1)
#   EPFS_TINY_GUEST_CACHE  the tiny guest's cache (default /var/cache/epfs-tiny-guest)
#   KEEP_TMP=1             keep the temporary directory
#
# Needs root, MariaDB and libvirtd (+ QEMU for the second part).  Progress on
# stderr, the report on stdout.  Not part of `make check` or `make bench`.

set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EPFS_BUILDDIR:-}" ]; then
	if [ -x "$PWD/epfs" ]; then EPFS_BUILDDIR=$PWD; else EPFS_BUILDDIR=/work/main; fi
fi
export EPFS_BUILDDIR
export EPFS_BIN=$EPFS_BUILDDIR/epfs
RUNS=${EPFS_BENCH_RUNS:-10}
QEMU_MODE=${EPFS_BENCH_QEMU:-auto}
QEMU_RUNS=${EPFS_BENCH_QEMU_RUNS:-1}
[ -x "$EPFS_BIN" ] || { echo "compute.sh: no epfs binary at $EPFS_BIN (build it, or set EPFS_BUILDDIR)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "compute.sh: needs root" >&2; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin

# shellcheck source-path=SCRIPTDIR source=../tests/lib.sh
. "$BENCH_DIR/../tests/lib.sh"
. "$EPFS_SRCDIR/scripts/tiny-guest.sh"
. "$EPFS_SRCDIR/scripts/qemu-libvirt.sh"
CACHE=${EPFS_TINY_GUEST_CACHE:-$TINY_GUEST_CACHE}
LV=$T/libvirt-qemu
QEMU=0

log() { printf '%s\n' "$*" >&2; }
die() { log "compute.sh: $*"; exit 1; }

# teardown: epfs and the test-driver libvirtd (lib.sh), then the QEMU libvirtd
eval "_lib_epfs_teardown() $(declare -f epfs_teardown | tail -n +2)"
epfs_teardown() {
	local keep=${KEEP_TMP:-}
	KEEP_TMP=1 _lib_epfs_teardown
	[ "$QEMU" = 1 ] && qemu_libvirt_stop "$LV"
	[ -n "$keep" ] || rm -rf "$T"
}
trap epfs_teardown EXIT
# root disks are qcow2 overlays, as for real guests (docs/real-guests.md)
eval "_lib_write_config() $(declare -f write_config | tail -n +2)"
write_config() {
	_lib_write_config
	sed -i "s|^path=$STORAGE\$|&\\nclone_format=qcow2|" "$EPFS_CONF"
}

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }   # ms START_NS END_NS
median() {
	printf '%s\n' "$@" | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

# epfs_create ID MEMORY: the user's steps; sets E_MKDIR E_LINK E_MEM E_RUN E_TOTAL (ms)
epfs_create() {
	local i=$MNT/instances/$1 t0 t1 t2 t3 t5
	t0=$(now_ns)
	mkdir "$i" || return 1
	t1=$(now_ns)
	ln -s ../../images/img "$i/image" || return 1
	t2=$(now_ns)
	write "$2" "$i/memory" || return 1
	t3=$(now_ns)
	write running "$i/state" || { tail -2 "$i/error" | sed 's/^/  /' >&2; return 1; }
	until [ "$(cat "$i/state")" = running ]; do sleep 0.01; done
	t5=$(now_ns)
	E_MKDIR=$(ms "$t0" "$t1") E_LINK=$(ms "$t1" "$t2") E_MEM=$(ms "$t2" "$t3")
	E_RUN=$(ms "$t3" "$t5") E_TOTAL=$(ms "$t0" "$t5")
}

# epfs_remove ID: untimed
epfs_remove() {
	write destroy "$MNT/instances/$1/state" && rmdir "$MNT/instances/$1"
}

# direct_xml FROM NAME OUT: the inactive XML epfs defined for FROM, renamed
# NAME, without its UUID, with its own console log and ($4) root disk
direct_xml() {
	virsh -q -c "$URI_NOW" dumpxml --inactive "$1" |
		sed -e "s|<name>$1</name>|<name>$2</name>|" -e '/<uuid>/d' \
		    -e "s|$T/console/$1.log|$T/console/$2.log|" \
		    -e "s|$STORAGE/volumes/$1.root|${4:-$STORAGE/volumes/$1.root}|" > "$3"
}

# direct_two NAME XML / direct_one NAME XML: define + start; sets D_TOTAL (ms)
direct_two() {
	local t0 t1
	t0=$(now_ns)
	virsh -q -c "$URI_NOW" define "$2" >/dev/null && virsh -q -c "$URI_NOW" start "$1" >/dev/null || return 1
	t1=$(now_ns)
	D_TOTAL=$(ms "$t0" "$t1")
}
direct_one() {
	local t0 t1
	t0=$(now_ns)
	virsh -q -c "$URI_NOW" "define $2; start $1" >/dev/null || return 1
	t1=$(now_ns)
	D_TOTAL=$(ms "$t0" "$t1")
}
direct_remove() {
	virsh -q -c "$URI_NOW" destroy "$1" >/dev/null 2>&1
	virsh -q -c "$URI_NOW" undefine "$1" >/dev/null 2>&1
}

# wait_ready LOG SECONDS: the tiny guest's READY line is in LOG
wait_ready() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		grep -q "EPFS-GUEST READY" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# ---- QEMU, when it works here: its libvirtd must start before epfs mounts ----
case $QEMU_MODE in
0) log "QEMU: skipped (EPFS_BENCH_QEMU=0)" ;;
*)
	if qemu_usable 2>"$T/usable.log" && tiny_guest_build "$CACHE" 2>"$T/build.log" &&
		qemu_libvirt_start "$LV" 2>"$T/qemu-libvirt.log"; then
		QEMU=1
		log "QEMU libvirtd up; probing its capabilities once (a new daemon does that on first use)"
		t0=$(now_ns)
		virsh -c "$QEMU_LIBVIRT_URI" domcapabilities --virttype qemu >/dev/null || die "QEMU capabilities"
		QEMU_PROBE=$(ms "$t0" "$(now_ns)")
	else
		qemu_libvirt_stop "$LV"
		why=$(cat "$T/usable.log" "$T/build.log" "$T/qemu-libvirt.log" 2>/dev/null | head -1)
		[ "$QEMU_MODE" = 1 ] && die "no QEMU: $why"
		log "QEMU: not usable here ($why)"
	fi
	;;
esac

log "mounting epfs (private MariaDB, dir storage with qcow2 clones)"
epfs_setup >/dev/null
TURI=$(libvirt_start) || die "cannot start the test-driver libvirtd"
mkdir "$MNT/hosts/t1" && write "$TURI" "$MNT/hosts/t1/uri" || die "cannot register the test host"
mkdir "$MNT/images/img" && write 64M "$MNT/images/img/size" || die "cannot make the image"
if [ "$QEMU" = 1 ]; then
	write "$CACHE/vmlinuz" "$MNT/images/img/kernel" && write "$CACHE/initrd.img" "$MNT/images/img/initrd" &&
		write "$TINY_GUEST_CMDLINE" "$MNT/images/img/cmdline" || die "cannot set the image's kernel"
fi

# ---- the test driver ----
URI_NOW=$TURI
log "test driver: warming up (one instance each way, not counted)"
epfs_create w0 128M || die "epfs cannot start an instance on the test driver"
direct_xml w0 dw0 "$T/dw0.xml"
direct_two dw0 "$T/dw0.xml" || die "virsh cannot start a domain on the test driver"
direct_remove dw0
epfs_remove w0 || die "cannot remove the warm-up instance"
E=() TWO=() ONE=() M=() L=() W=() R=()
for n in $(seq 1 "$RUNS"); do
	log "test driver: run $n/$RUNS"
	epfs_create "e$n" 128M || die "epfs run $n failed"
	E+=("$E_TOTAL") M+=("$E_MKDIR") L+=("$E_LINK") W+=("$E_MEM") R+=("$E_RUN")
	direct_xml "e$n" "d$n" "$T/d$n.xml"
	epfs_remove "e$n" || die "cannot remove e$n"
	direct_two "d$n" "$T/d$n.xml" || die "virsh x2 run $n failed"
	TWO+=("$D_TOTAL")
	direct_remove "d$n"
	direct_one "d$n" "$T/d$n.xml" || die "virsh session run $n failed"
	ONE+=("$D_TOTAL")
	direct_remove "d$n"
done
rmdir "$MNT/hosts/t1" || die "cannot remove the test host"

# ---- QEMU ----
if [ "$QEMU" = 1 ]; then
	URI_NOW=$QEMU_LIBVIRT_URI
	mkdir "$MNT/hosts/q1" && write "$QEMU_LIBVIRT_URI" "$MNT/hosts/q1/uri" || die "cannot register the QEMU host"
	QE=() QTWO=() QER=() QTR=()
	for n in $(seq 1 "$QEMU_RUNS"); do
		log "QEMU: run $n/$QEMU_RUNS through epfs"
		epfs_create "qe$n" 128M || die "epfs cannot start a QEMU instance"
		QE+=("$E_TOTAL")
		t_end=$(now_ns)
		wait_ready "$T/console/qe$n.log" 90 || die "qe$n did not say READY"
		QER+=("$(awk -v a="$E_TOTAL" -v b="$(ms "$t_end" "$(now_ns)")" 'BEGIN { printf "%.1f", a + b }')")
		qemu-img create -q -f qcow2 -F raw -b "$STORAGE/images/img@epfs-base" "$T/qd$n.qcow2" ||
			die "qemu-img create"
		direct_xml "qe$n" "qd$n" "$T/qd$n.xml" "$T/qd$n.qcow2"
		epfs_remove "qe$n" || die "cannot remove qe$n"
		log "QEMU: run $n/$QEMU_RUNS with virsh define + start"
		direct_two "qd$n" "$T/qd$n.xml" || die "virsh cannot start a QEMU domain"
		QTWO+=("$D_TOTAL")
		t_end=$(now_ns)
		wait_ready "$T/console/qd$n.log" 90 || die "qd$n did not say READY"
		QTR+=("$(awk -v a="$D_TOTAL" -v b="$(ms "$t_end" "$(now_ns)")" 'BEGIN { printf "%.1f", a + b }')")
		direct_remove "qd$n"
		rm -f "$T/qd$n.qcow2"
	done
fi

# ---- report ----
me=$(median "${E[@]}") mt=$(median "${TWO[@]}") mo=$(median "${ONE[@]}")
cat <<REPORT

compute: create + start one instance (median of $RUNS runs, milliseconds)

  test driver                           median     min     max
    epfs: mkdir, ln, memory, running   $(printf '%8s %7s %7s' "$me" "$(printf '%s\n' "${E[@]}" | sort -g | head -1)" "$(printf '%s\n' "${E[@]}" | sort -g | tail -1)")
    virsh define + virsh start         $(printf '%8s %7s %7s' "$mt" "$(printf '%s\n' "${TWO[@]}" | sort -g | head -1)" "$(printf '%s\n' "${TWO[@]}" | sort -g | tail -1)")
    one virsh: 'define; start'         $(printf '%8s %7s %7s' "$mo" "$(printf '%s\n' "${ONE[@]}" | sort -g | head -1)" "$(printf '%s\n' "${ONE[@]}" | sort -g | tail -1)")
    epfs / (virsh define + start)      $(printf '%8s' "$(ratio "$me" "$mt")")
    epfs / (one virsh session)         $(printf '%8s' "$(ratio "$me" "$mo")")
    epfs by step (medians): mkdir $(median "${M[@]}"), ln $(median "${L[@]}"), memory $(median "${W[@]}"), running $(median "${R[@]}")
REPORT
if [ "$QEMU" = 1 ]; then
	qe=$(median "${QE[@]}") qt=$(median "${QTWO[@]}")
	cat <<REPORT

  QEMU (TCG, tiny guest; median of $QEMU_RUNS run(s))   to running   to READY
    epfs: mkdir, ln, memory, running   $(printf '%8s %10s' "$qe" "$(median "${QER[@]}")")
    virsh define + virsh start         $(printf '%8s %10s' "$qt" "$(median "${QTR[@]}")")
    epfs / (virsh define + start)      $(printf '%8s' "$(ratio "$qe" "$qt")")
    (the daemon's first QEMU capabilities probe, paid once beforehand: $QEMU_PROBE ms)
REPORT
else
	printf '\n  QEMU: not measured (%s)\n' "$([ "$QEMU_MODE" = 0 ] && echo "EPFS_BENCH_QEMU=0" || echo "qemu_usable says no")"
fi
cat <<REPORT

  all runs, epfs:          ${E[*]}
  all runs, virsh x2:      ${TWO[*]}
  all runs, one virsh:     ${ONE[*]}
REPORT
[ "$QEMU" = 1 ] && echo "  QEMU runs, epfs / virsh: ${QE[*]} / ${QTWO[*]}"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
