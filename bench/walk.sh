#!/bin/bash
# bench/walk.sh: how fast can a backup tool walk epfs, compared with the
# same tree served from local disk by libfuse's passthrough_ll example?
#
#   make bench                 (from a build directory)
#   bash bench/walk.sh         (from a directory holding the epfs binary)
#
# Environment:
#   EPFS_BUILDDIR        where the epfs binary is (default: the current
#                        directory if it holds ./epfs, else /work/main)
#   EPFS_BENCH_OBJECTS   images + volumes in the tree (default 10000, half each)
#   EPFS_BENCH_RUNS      repetitions of each measurement (default 5)
#   KEEP_TMP=1           keep the temporary directory
#
# Needs root (FUSE mounts, drop_caches), MariaDB, libfuse3-dev, gcc.
# See bench/README.md for how to read the output.  Not part of `make check`.

set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EPFS_BUILDDIR:-}" ]; then
	if [ -x "$PWD/epfs" ]; then EPFS_BUILDDIR=$PWD; else EPFS_BUILDDIR=/work/main; fi
fi
export EPFS_BUILDDIR
export EPFS_BIN=$EPFS_BUILDDIR/epfs

OBJECTS=${EPFS_BENCH_OBJECTS:-10000}
RUNS=${EPFS_BENCH_RUNS:-5}
EACH=$((OBJECTS / 2))            # images, and as many volumes
[ "$EACH" -ge 1 ] || { echo "walk.sh: EPFS_BENCH_OBJECTS must be at least 2" >&2; exit 1; }
[ "$EACH" -le 99999 ] || { echo "walk.sh: EPFS_BENCH_OBJECTS must be below 200000" >&2; exit 1; }

if [ ! -x "$EPFS_BIN" ]; then
	echo "walk.sh: no epfs binary at $EPFS_BIN (build it, or set EPFS_BUILDDIR)" >&2
	exit 1
fi

# passthrough_ll keeps an O_PATH descriptor open for every inode the kernel
# knows, so the tree it serves must fit under RLIMIT_NOFILE.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
FD_LIMIT=$(ulimit -n)
[ "$FD_LIMIT" = unlimited ] && FD_LIMIT=100000000

# The test harness: private MariaDB ($DB_SOCKET), epfs on $MNT, all under $T.
# shellcheck source-path=SCRIPTDIR source=../tests/lib.sh
. "$BENCH_DIR/../tests/lib.sh"

PT=$T/pt                 # passthrough_ll mount point
COPY=$T/copy             # the plain on-disk copy it serves
PT_BIN=$T/passthrough_ll
PT_PID=
DROP_FAILED=0

log() { printf '%s\n' "$*" >&2; }
die() { log "walk.sh: $*"; exit 1; }
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

pt_mount() {
	mkdir -p "$PT"
	"$PT_BIN" -f -o "source=$COPY" "$PT" >>"$T/pt.log" 2>&1 &
	PT_PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$PT" && return 0
		kill -0 "$PT_PID" 2>/dev/null || break
		sleep 0.05
	done
	sed 's/^/# /' "$T/pt.log" >&2
	die "passthrough_ll did not mount"
}

pt_umount() {
	[ -n "$PT_PID" ] || return 0
	fusermount3 -u "$PT" 2>/dev/null || umount -l "$PT" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$PT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$PT_PID" 2>/dev/null
	wait "$PT_PID" 2>/dev/null
	PT_PID=
}

epfs_remount() { epfs_umount; epfs_mount || die "cannot mount epfs"; }

cleanup() {
	pt_umount
	epfs_teardown
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
	sync
	echo 3 2>/dev/null > /proc/sys/vm/drop_caches || DROP_FAILED=1
}

# walk MOUNT: the timed walk; prints elapsed seconds
walk() {
	local t0 t1
	t0=$(now)
	find "$1" -printf '%i %s %T@ %p\n' > /dev/null 2>>"$T/find.err"
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# listing MOUNT FILE: an untimed walk kept for the checks: "inode relative-path"
listing() { find "$1" -printf '%i ./%P\n' 2>>"$T/find.err" | sort -k2 > "$2"; }

median() {
	printf '%s\n' "$@" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }
# sql_counters: "statements-executed SELECTs temp-tables on-disk-temp-tables"
sql_counters() {
	sql "SHOW GLOBAL STATUS WHERE Variable_name IN
	     ('Com_stmt_execute', 'Com_select', 'Created_tmp_tables', 'Created_tmp_disk_tables')" |
		awk '{ v[$1] = $2 } END { print v["Com_stmt_execute"], v["Com_select"], v["Created_tmp_tables"], v["Created_tmp_disk_tables"] }'
}
# sql_delta BEFORE AFTER: the difference, in words
sql_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
		printf "%d prepared executions, %d SELECTs, %d temporary tables (%d on disk)",
			y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4] }'
}
# stats_delta COLD CUMULATIVE: the .epfs/stats table of the cold walk with the
# counts of the warm walk that followed next to it
stats_delta() {
	awk -v cold="$1" -v cum="$2" 'BEGIN {
		n = split(cold, c, "\n"); split(cum, w, "\n");
		for (i in w) { split(w[i], f, " "); warm[f[1]] = f[2] }
		printf "%-12s %10s %12s %10s %12s\n", "operation", "cold:count", "mean_us", "max_us", "warm:count";
		skip["open"] = skip["read"] = skip["flush"] = skip["release"] = 1;  # reading stats itself
		for (i = 2; i <= n; i++) { split(c[i], f, " "); if (f[1] == "" || f[1] in skip) continue;
			printf "%-12s %10s %12s %10s %12s\n", f[1], f[2], f[4], f[5], warm[f[1]] - f[2] }
		for (op in warm) if (op != "operation" && !(op in skip) && index(cold, op " ") == 0)
			printf "%-12s %10s %12s %10s %12s\n", op, 0, "-", "-", warm[op] }'
}

# insert FROM TO: images img-FROM..img-TO and volumes vol-FROM..vol-TO
insert() {
	sql "SET SESSION max_recursive_iterations = 10000000;
INSERT INTO image (id, name, os_type, size, \`describe\`, cpu, memory, status)
WITH RECURSIVE seq(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM seq WHERE n < $2)
SELECT CONCAT('img-', LPAD(n, 5, '0')),
       CONCAT(ELT(1 + n % 4, 'Ubuntu 22.04', 'Debian 12', 'Rocky 9', 'Windows 11'), ' lab image #', n),
       IF(n % 4 = 3, 'windows', 'linux'),
       (1 + n * 7919 % 97) * 1073741824 + n * 4096,
       CONCAT('Lab image ', n, ' for course ', 1 + n % 37),
       1 + n % 8, (1 + n % 16) * 536870912,
       ELT(1 + n % 3, 'available', 'draft', 'error')
FROM seq;
INSERT INTO volume (id, name, size, \`describe\`, status)
WITH RECURSIVE seq(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM seq WHERE n < $2)
SELECT CONCAT('vol-', LPAD(n, 5, '0')),
       CONCAT('Student volume ', n),
       (1 + n * 104729 % 53) * 1073741824 + n * 512,
       CONCAT('Scratch space for student ', n),
       ELT(1 + n % 2, 'available', 'draft')
FROM seq" || die "bulk insert failed"
	local got
	got=$(sql "SELECT (SELECT COUNT(*) FROM image) + (SELECT COUNT(*) FROM volume)")
	[ "$got" -eq $((2 * $2)) ] || die "expected $((2 * $2)) records, the database has $got"
}

# measure LABEL WITH_PT: RUNS cold+warm walks of epfs (and of passthrough_ll)
# Results go to R_<field>[LABEL].
declare -A R_ENTRIES R_EC R_EW R_PC R_PW R_DC R_DW R_ALL R_SQL R_STATS
measure() {
	local label=$1 with_pt=$2 i c0 c1 c2 st
	local -a ec=() ew=() pc=() pw=() dc=() dw=()
	for i in $(seq 1 "$RUNS"); do
		epfs_umount; drop_caches; epfs_mount || die "cannot mount epfs"
		if [ "$i" -eq 1 ]; then
			c0=$(sql_counters)
			ec+=("$(walk "$MNT")")
			c1=$(sql_counters)
			st=$(cat "$MNT/.epfs/stats")
			ew+=("$(walk "$MNT")")
			c2=$(sql_counters)
			R_STATS[$label]=$(stats_delta "$st" "$(cat "$MNT/.epfs/stats")")
			R_SQL[$label]="    cold walk: $(sql_delta "$c0" "$c1")
    warm walk: $(sql_delta "$c1" "$c2")"
		else
			ec+=("$(walk "$MNT")")
			ew+=("$(walk "$MNT")")
		fi
		if [ "$with_pt" = 1 ]; then
			pt_umount; drop_caches; pt_mount
			pc+=("$(walk "$PT")")
			pw+=("$(walk "$PT")")
			drop_caches                    # reference: the copy itself, no FUSE
			dc+=("$(walk "$COPY")")
			dw+=("$(walk "$COPY")")
			log "   run $i/$RUNS: epfs ${ec[-1]} s / ${ew[-1]} s, passthrough_ll ${pc[-1]} s / ${pw[-1]} s"
		else
			log "   run $i/$RUNS: epfs ${ec[-1]} s / ${ew[-1]} s"
		fi
	done
	R_EC[$label]=$(median "${ec[@]}"); R_EW[$label]=$(median "${ew[@]}")
	R_ALL[$label]="epfs cold ${ec[*]} | warm ${ew[*]}"
	if [ "$with_pt" = 1 ]; then
		R_PC[$label]=$(median "${pc[@]}"); R_PW[$label]=$(median "${pw[@]}")
		R_DC[$label]=$(median "${dc[@]}"); R_DW[$label]=$(median "${dw[@]}")
		R_ALL[$label]+=" | passthrough_ll cold ${pc[*]} | warm ${pw[*]} | local disk cold ${dc[*]} | warm ${dw[*]}"
	fi
}

# ---- the database, epfs, and the size passthrough_ll can serve ----

T_START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== setup: MariaDB, epfs ($EPFS_BIN)"
mkdir -p "$T/dbtmp" "$STORAGE"
# mariadbd's temporary tables go to a private tmpdir, not the shared /tmp
TMPDIR=$T/dbtmp db_start 2>>"$T/db-stderr.log" || die "cannot start MariaDB"
write_config
epfs_mount || die "cannot mount epfs"          # creates the schema

insert 1 1
epfs_remount
base=$(find "$MNT" | wc -l)
per_pair=$(( $(find "$MNT/images/img-00001" | wc -l) + $(find "$MNT/volumes/vol-00001" | wc -l) ))
base=$((base - per_pair))
fit=$(( (FD_LIMIT - 512 - base) / per_pair ))  # pairs passthrough_ll can hold
[ "$fit" -ge 1 ] || die "RLIMIT_NOFILE $FD_LIMIT is too low for passthrough_ll"
SMALL=$EACH
[ "$fit" -lt "$EACH" ] && SMALL=$fit

# ---- the comparison tree: epfs and passthrough_ll over a copy of it ----

log "== comparison tree: $SMALL images + $SMALL volumes"
[ "$SMALL" -gt 1 ] && insert 2 "$SMALL"
epfs_remount                                   # no waiting for the cache timeout
listing "$MNT" "$T/list.small"

t0=$(now)
mkdir -p "$COPY"
cp -a "$MNT/." "$COPY/" 2>"$T/cp.err" || { sed 's/^/# /' "$T/cp.err" | head >&2; die "cp -a from epfs failed"; }
COPY_SECS=$(secs_since "$t0")

EX=/usr/share/doc/libfuse3-dev/examples
mkdir -p "$T/ptsrc"
for f in passthrough_ll.c passthrough_helpers.h; do
	if [ -f "$EX/$f" ]; then cp "$EX/$f" "$T/ptsrc/"
	elif [ -f "$EX/$f.gz" ]; then gzip -dc "$EX/$f.gz" > "$T/ptsrc/$f"
	else die "$EX/$f not found (install libfuse3-dev)"
	fi
done
PT_DEFS=
grep -q 'define FUSE_USE_VERSION' "$T/ptsrc/passthrough_ll.c" || PT_DEFS=-DFUSE_USE_VERSION=34
# shellcheck disable=SC2046,SC2086
gcc -O2 -w $PT_DEFS -I"$T/ptsrc" $(pkg-config --cflags fuse3) -o "$PT_BIN" \
	"$T/ptsrc/passthrough_ll.c" $(pkg-config --libs fuse3) -lpthread 2>"$T/gcc.log" \
	|| { cat "$T/gcc.log" >&2; die "cannot build passthrough_ll"; }
pt_mount
listing "$PT" "$T/list.pt"

SMALL_LABEL="$((2 * SMALL)) objects"
R_ENTRIES[$SMALL_LABEL]=$(wc -l < "$T/list.small")
measure "$SMALL_LABEL" 1
pt_umount
LABELS=("$SMALL_LABEL")

# ---- the full tree, epfs alone (when passthrough_ll cannot hold it) ----

if [ "$SMALL" -lt "$EACH" ]; then
	log "== full tree: $EACH images + $EACH volumes (epfs only)"
	insert $((SMALL + 1)) "$EACH"
	epfs_remount
	listing "$MNT" "$T/list.full.1"
	FULL_LABEL="$((2 * EACH)) objects"
	R_ENTRIES[$FULL_LABEL]=$(wc -l < "$T/list.full.1")
	measure "$FULL_LABEL" 0
	LABELS+=("$FULL_LABEL")
fi
listing "$MNT" "$T/list.last"

# ---- report ----

echo
printf '%s\n' "epfs walk benchmark: time of  find MOUNT -printf '%i %s %T@ %p\\n' > /dev/null"
echo "  median of $RUNS runs; cold = fresh mount right after drop_caches$([ "$DROP_FAILED" -eq 1 ] && echo ' (FAILED: not root?)'),"
echo "  warm = the same walk repeated at once.  epfs: attr_timeout=entry_timeout=${EPFS_ATTR_TIMEOUT:-1.0} s."
echo "  passthrough_ll: libfuse $(pkg-config --modversion fuse3) example, its default mode (cache=auto: 1.0 s timeouts),"
echo "  over a cp -a copy of the epfs tree on local disk (copied in ${COPY_SECS} s)."
echo
printf '  %-14s %8s | %9s %9s | %9s %9s | %9s %9s | %9s\n' \
	"tree" "entries" "epfs cold" "warm" "pt cold" "warm" "epfs/pt" "epfs/pt" "epfs"
printf '  %-14s %8s | %9s %9s | %9s %9s | %9s %9s | %9s\n' \
	"" "" "(s)" "(s)" "(s)" "(s)" "cold" "warm" "us/entry"
for l in "${LABELS[@]}"; do
	rpc=${R_PC[$l]:-} rpw=${R_PW[$l]:-}
	printf '  %-14s %8s | %9s %9s | %9s %9s | %9s %9s | %9s\n' "$l" "${R_ENTRIES[$l]}" \
		"${R_EC[$l]}" "${R_EW[$l]}" "${rpc:--}" "${rpw:--}" \
		"$([ -n "$rpc" ] && ratio "${R_EC[$l]}" "$rpc" || echo -)" \
		"$([ -n "$rpw" ] && ratio "${R_EW[$l]}" "$rpw" || echo -)" \
		"$(awk -v s="${R_EC[$l]}" -v n="${R_ENTRIES[$l]}" 'BEGIN { printf "%.1f", s * 1e6 / n }')"
done
echo
for l in "${LABELS[@]}"; do
	[ -n "${R_DC[$l]:-}" ] && echo "  $l, reference: find on the copy itself (local disk, no FUSE): cold ${R_DC[$l]} s, warm ${R_DW[$l]} s"
done
for l in "${LABELS[@]}"; do echo "  $l, all runs (s): ${R_ALL[$l]}"; done
echo "  load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other work on the machine skews the figures)"
if [ "$SMALL" -lt "$EACH" ]; then
	echo "  (passthrough_ll holds one open descriptor per inode: with RLIMIT_NOFILE=$FD_LIMIT it can serve"
	echo "   at most ~$((2 * fit)) objects, so it is compared on $SMALL_LABEL; epfs alone walks all $((2 * EACH)).)"
fi
echo

# checks
n_small=$(wc -l < "$T/list.small"); n_pt=$(wc -l < "$T/list.pt")
if [ "$n_small" -eq "$n_pt" ] && cmp -s <(cut -d' ' -f2- "$T/list.small") <(cut -d' ' -f2- "$T/list.pt"); then
	echo "  same tree: epfs and passthrough_ll both walked $n_small entries, with the same paths"
else
	echo "  same tree: NO: epfs walked $n_small entries, passthrough_ll $n_pt; first differences:"
	diff <(cut -d' ' -f2- "$T/list.small") <(cut -d' ' -f2- "$T/list.pt") | head -5 | sed 's/^/    /'
fi
changed=$(join -1 2 -2 2 "$T/list.small" "$T/list.last" | awk '$2 != $3' | wc -l)
missing=$(join -v 1 -1 2 -2 2 "$T/list.small" "$T/list.last" | wc -l)
nmounts=$RUNS
[ "$SMALL" -lt "$EACH" ] && nmounts=$((2 * RUNS + 1))
if [ "$changed" -eq 0 ] && [ "$missing" -eq 0 ]; then
	echo "  inode numbers: stable: all $n_small entries of the first listing kept their %i over $nmounts remounts"
else
	echo "  inode numbers: NOT stable over $nmounts remounts: $changed entries changed inode, $missing vanished, e.g.:"
	join -1 2 -2 2 "$T/list.small" "$T/list.last" | awk '$2 != $3' | head -3 | sed 's/^/    /'
fi
if [ -s "$T/find.err" ]; then
	echo "  find reported $(wc -l < "$T/find.err") errors (timings above are suspect), e.g.:"
	sort -u "$T/find.err" | head -3 | sed 's/^/    /'
else
	echo "  find reported no errors"
fi
echo
for l in "${LABELS[@]}"; do
	echo "  $l, MariaDB's counters over the first cold and warm walks:"
	echo "${R_SQL[$l]}"
	echo "  $l, epfs .epfs/stats over the first cold walk, and the warm walk's counts (operations that reached the daemon):"
	printf '%s\n' "${R_STATS[$l]}" | sed 's/^/    /'
	echo
done
echo "  total benchmark time: $(secs_since "$T_START") s"
