#!/bin/bash
# bench/teaching.sh: what do the teaching views cost at the size of a school,
# compared with asking the database for the same rows directly?
#
#   bash bench/teaching.sh      (from a directory holding the epfs binary)
#
# EPFS_BENCH_STUDENTS students (default 3000) in three classes, three courses
# of 1000 members through their class plus 1000 enrolled one by one (course
# c1), 30 published experiments; rows made in SQL.  Then, median of
# EPFS_BENCH_RUNS runs each (warm: the first run of each is discarded), epfs
# against the mariadb client reading the same view:
#   a student's list    ls -l users/u2/experiments         vs SELECT * FROM student_experiment WHERE user_id = ...
#   a teacher's list    ls -l courses/c1/experiments/e3/students   vs SELECT * FROM experiment_student WHERE ...
#   progress.csv        cat .../e3/progress.csv             vs the same SELECT
# Both sides start one process per run.  Needs root and MariaDB; not part of
# `make check` or `make bench`.
set -u
export LC_ALL=C
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${EPFS_BUILDDIR:-}" ]; then
	if [ -x "$PWD/epfs" ]; then EPFS_BUILDDIR=$PWD; else EPFS_BUILDDIR=/work/main; fi
fi
export EPFS_BUILDDIR EPFS_SRCDIR=${EPFS_SRCDIR:-$(dirname "$BENCH_DIR")}
N=${EPFS_BENCH_STUDENTS:-3000}
RUNS=${EPFS_BENCH_RUNS:-9}
. "$EPFS_SRCDIR/tests/lib.sh"
EPFS_EXTRA_CONF='[teaching]
scheduler_interval=0'
epfs_setup >&2

sql "INSERT INTO course (id) VALUES ('c1'),('c2'),('c3')"
sql "INSERT INTO class (id) VALUES ('k1'),('k2'),('k3')"
sql "INSERT INTO user (id, role) SELECT CONCAT('u', seq), 'student' FROM seq_1_to_$N"
sql "INSERT INTO class_student (class_id, user_id) SELECT CONCAT('k', 1 + seq % 3), CONCAT('u', seq) FROM seq_1_to_$N"
sql "INSERT INTO course_class (course_id, class_id) VALUES ('c1','k1'),('c2','k2'),('c3','k3')"
sql "INSERT INTO course_student (course_id, user_id) SELECT 'c1', CONCAT('u', seq) FROM seq_1_to_$N WHERE seq % 3 = 2"
sql "INSERT INTO experiment (course_id, id, published) SELECT CONCAT('c', 1 + seq % 3), CONCAT('e', seq), 1 FROM seq_1_to_30"
members=$(sql "SELECT COUNT(*) FROM course_member WHERE course_id = 'c1'")

# median_ms CMD...: the median wall time of RUNS runs, after one unmeasured run
median_ms() {
	local i t0 all=()
	"$@" > /dev/null 2>&1
	for i in $(seq 1 "$RUNS"); do
		t0=$(date +%s%N)
		"$@" > /dev/null 2>&1
		all+=($(( ($(date +%s%N) - t0) / 1000 )))
	done
	printf '%s\n' "${all[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
}
row() {  # row LABEL EPFS_MS DIRECT_MS
	printf '%-34s %9s ms %9s ms %7.2fx\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN { print a / b }')"
}
q() { mariadb --no-defaults -S "$DB_SOCKET" -uroot -N -B "$DB_NAME" -e "$1"; }

X=$MNT/courses/c1/experiments/e3
echo "teaching views: $N students, $members in course c1, 30 experiments; median of $RUNS warm runs"
printf '%-34s %12s %12s %8s\n' "" epfs "mariadb" ratio
row "a student's experiments (ls -l)" \
	"$(median_ms ls -l "$MNT/users/u2/experiments")" \
	"$(median_ms q "SELECT * FROM student_experiment WHERE user_id = 'u2'")"
row "a teacher's $members students (ls -l)" \
	"$(median_ms ls -l "$X/students")" \
	"$(median_ms q "SELECT * FROM experiment_student WHERE experiment_key = 'c1/e3'")"
row "progress.csv ($members rows)" \
	"$(median_ms cat "$X/progress.csv")" \
	"$(median_ms q "SELECT * FROM experiment_student WHERE experiment_key = 'c1/e3'")"
