#!/bin/bash
# teaching.t: a whole term through the mount, each role as the real Unix user
# it maps to.  The admin makes a course type, a course and a class of 30
# students by import; the teacher publishes an experiment with a window;
# students enter, reset, hit the attempt limit and are stopped by the
# scheduler; the teacher grades; grades.csv and grades.svg match.  Time moves
# by editing [teaching] clock_offset in the configuration: nothing sleeps
# for a window or a limit.
. "$(dirname "$0")/lib.sh"
EPFS_EXTRA_CONF='[teaching]
scheduler_interval=0.2
cleanup_grace=3600
clock_offset=0'
epfs_setup
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
virsh_() { virsh -q -c "$URI" "$@" 2>&1; }

N=30
students=$(seq -f 'epfs-s%02g' 1 $N)
for u in epfs-teach epfs-teach2 $students epfs-late; do
	id "$u" >/dev/null 2>&1 || useradd -M -s /bin/sh "$u"
done
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
# as_write USER VALUE FILE: echo VALUE > FILE as USER (bash reports the errno's own message)
as_write() { as "$1" bash -c 'printf "%s\n" "$1" > "$2"' _ "$2" "$3"; }
uid_of() { id -u "$1"; }
# move the platform's clock: seconds from now
clock() { sed -i "s/^clock_offset=.*/clock_offset=$1/" "$EPFS_CONF"; }
# wait until FILE reads WANT (up to 10 s)
wait_for() {
	for _ in $(seq 1 100); do [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.1; done
	return 1
}
iso() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }

# ---- the platform: a host, an image and a template ----
mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"
mkdir "$MNT/images/lab-base" && write 64M "$MNT/images/lab-base/size"
mkdir "$MNT/templates/lab-vm" && ln -s ../../images/lab-base "$MNT/templates/lab-vm/image" &&
	write 128M "$MNT/templates/lab-vm/memory"
ok $? "a template over an image"

# ---- the admin: course type, teacher, course, class ----
mkdir "$MNT/course-types/lab"; ok $? "mkdir course-types/lab"
write "Laboratory course" "$MNT/course-types/lab/name"
mkdir "$MNT/users/teach" && write "$(uid_of epfs-teach)" "$MNT/users/teach/uid" &&
	write teacher "$MNT/users/teach/role"
ok $? "a teacher"
fails_with EINVAL "a course id may not hold '.' (it separates course and experiment)" mkdir "$MNT/courses/os.101"
mkdir "$MNT/courses/os101"; ok $? "mkdir courses/os101"
write "Operating systems" "$MNT/courses/os101/name"
write OS-101 "$MNT/courses/os101/number"
ln -s ../../course-types/lab "$MNT/courses/os101/type"; ok $? "ln -s the course type"
fails_with ENOENT "the teacher must exist" ln -s ../../users/nobody "$MNT/courses/os101/teacher"
ln -s ../../users/teach "$MNT/courses/os101/teacher"; ok $? "ln -s the teacher"
write s3cret "$MNT/courses/os101/key"
is "$(readlink "$MNT/courses/os101/type")" ../../course-types/lab "type@ reads back"
fails_with EBUSY "a course type in use cannot go" rmdir "$MNT/course-types/lab"
like "$(tail -1 "$MNT/course-types/lab/error")" "EBUSY rmdir: course type lab is used by course os101" \
	"and the error file says why"

mkdir "$MNT/classes/y2026"; ok $? "mkdir classes/y2026"
{
	echo "id,display_name,email,uid"
	i=0
	for u in $students; do
		i=$((i + 1))
		printf 's%02d,"Student %d, of 2026",s%02d@example.org,%s\n' $i $i $i "$(uid_of "$u")"
	done
} > "$T/class.csv"
# a bad line refuses the whole import
sed '17s/.*/s16,Bad Line,not-an-email,12345/' "$T/class.csv" > "$T/bad.csv"
fails_with EINVAL "a bad line refuses the import" cp "$T/bad.csv" "$MNT/classes/y2026/import"
like "$(tail -1 "$MNT/classes/y2026/error")" "line 17: 'not-an-email' is not an email address" \
	"the error names the line"
is "$(sql "SELECT COUNT(*) FROM user WHERE role='student'")" 0 "and nothing was created"
ok "$([ ! -e "$T/files/projects/s01" ]; echo $?)" "not even the users' folders"
# written line by line (a shell loop), the batch is still one: applied when the file is closed
{ head -20 "$T/class.csv"; echo 's20,Twenty,s20@example.org,notanumber'; } | while IFS= read -r line; do
	printf '%s\n' "$line"; done > "$MNT/classes/y2026/import"
is "$(sql "SELECT COUNT(*) FROM user WHERE role='student'")" 0 "a batch written line by line is refused whole"
like "$(tail -1 "$MNT/classes/y2026/error")" "line 21: uid 'notanumber' is not a number" "naming its bad line"
cp "$T/class.csv" "$MNT/classes/y2026/import"; ok $? "import 30 students (CSV)"
is "$(ls "$MNT/classes/y2026/students" | wc -l)" $N "all 30 in the class"
is "$(cat "$MNT/users/s01/display_name")" "Student 1, of 2026" "quoted CSV fields"
is "$(cat "$MNT/users/s07/role")" student "imported users are students"
is "$(cat "$MNT/users/s07/uid")" "$(uid_of epfs-s07)" "with their uid"
printf '{"id":"s30","display_name":"Student 30, of 2026","email":"s30@example.org","uid":%s}\n{"id":"x1","display_name":"Guest","email":"","uid":""}\n' \
	"$(uid_of epfs-s30)" > "$T/more.jsonl"
cp "$T/more.jsonl" "$MNT/classes/y2026/import"; ok $? "import JSON lines (one known, one new)"
is "$(ls "$MNT/classes/y2026/students" | wc -l)" $((N + 1)) "the new one joins, the known one stays once"
rm "$MNT/classes/y2026/students/x1"; ok $? "rm a student link leaves the class"
# what spreadsheets write: a byte order mark, CRLF line ends, blanks before quoted fields
mkdir "$MNT/classes/guests"
printf '\xef\xbb\xbfid,display_name,email,uid\r\ng1, "Guest, One" ,g1@example.org,\r\ng2,Guest Two,,\r\n' > "$T/excel.csv"
cp "$T/excel.csv" "$MNT/classes/guests/import"; ok $? "a spreadsheet's CSV imports"
is "$(ls "$MNT/classes/guests/students" | tr '\n' ' ')" "g1 g2 " "with both its users"
is "$(cat "$MNT/users/g1/display_name")" "Guest, One" "and its quoted field"
ln -s ../../../classes/y2026 "$MNT/courses/os101/classes/y2026"; ok $? "the class joins the course"
is "$(ls "$MNT/courses/os101/students" | wc -l)" $N "the course has its 30 students"
is "$(readlink "$MNT/courses/os101/students/s05")" ../../../users/s05 "students/<u>@ points at the user"
fails_with ENOENT "enrolling a user who does not exist" ln -s ../../../users/nobody "$MNT/courses/os101/students/nobody"
like "$(tail -1 "$MNT/courses/os101/error")" "ENOENT symlink: users/nobody does not exist" "says so in the course's error file"
fails_with EINVAL "a link named after someone else" ln -s ../../../users/s02 "$MNT/courses/os101/students/someone"
is "$(ls "$MNT/courses/os101/students" | wc -l)" $N "and nothing changed"
fails_with EBUSY "a class in a course cannot go" rmdir "$MNT/classes/y2026"
rm "$MNT/courses/os101/teacher"
fails_with EINVAL "only teachers teach" ln -s ../../users/s01 "$MNT/courses/os101/teacher"
ln -s ../../users/teach "$MNT/courses/os101/teacher"

# ---- the teacher: an experiment with a window ----
E=$MNT/courses/os101/experiments/lab1
fails_with ENOENT "students do not see courses/" as epfs-s01 mkdir "$E"
as epfs-teach mkdir "$E"; ok $? "the teacher makes experiments/lab1"
mkdir "$MNT/users/teach2" && write "$(uid_of epfs-teach2)" "$MNT/users/teach2/uid" && write teacher "$MNT/users/teach2/role"
is "$(as epfs-teach2 ls "$MNT/courses")" "" "another teacher does not see the course"
fails_with ENOENT "nor change it" as_write epfs-teach2 x "$E/name"
fails_with ENOENT "nor make experiments in it" as epfs-teach2 mkdir "$MNT/courses/os101/experiments/x"
is "$(as epfs-teach ls "$MNT/courses")" os101 "its teacher sees it"
as epfs-teach mkdir "$MNT/templates/teach-own" && as_write epfs-teach 256M "$MNT/templates/teach-own/memory"
ok $? "a teacher makes a template of her own and changes it"
fails_with EACCES "but not another's" as_write epfs-teach 256M "$MNT/templates/lab-vm/memory"
fails_with EACCES "nor another teacher hers" as_write epfs-teach2 512M "$MNT/templates/teach-own/memory"
is "$(stat -c %U "$MNT/templates/teach-own")" epfs-teach "a template belongs to who made it"
as epfs-teach sh -c "echo 'Processes' > $E/name && ln -s ../../../../templates/lab-vm $E/template &&
	printf '# Lab 1\nFork a process.\n' > $E/content.md && echo $(iso 3600) > $E/start &&
	echo $(iso 6000) > $E/end && echo 30 > $E/max_minutes && echo 2 > $E/max_attempts"
ok $? "name, template@, content.md, window, limits"
fails_with EINVAL "the end comes after the start" as_write epfs-teach "$(iso 60)" "$E/end"
fails_with EINVAL "also when both move at once (info.json)" as_write epfs-teach \
	"{\"start\": \"$(iso 5000)\", \"end\": \"$(iso 4000)\"}" "$E/info.json"
like "$(cat "$E/start")" "^$(iso 3600 | cut -c1-13)" "and the window is unchanged"
printf 'step 1\nstep 2\n' > "$T/sheet.txt"
as epfs-teach cp "$T/sheet.txt" "$E/attachments/sheet.txt"; ok $? "the teacher attaches a file"
S1=$MNT/users/s01/experiments
is "$(as epfs-s01 ls "$S1")" "" "unpublished: students see nothing"
as epfs-teach sh -c "echo 1 > $E/published"; ok $? "the teacher publishes"
is "$(as epfs-s01 ls "$S1")" os101.lab1 "students see it as <course>.<exp>"
X=$S1/os101.lab1
is "$(as epfs-s01 cat "$X/content.md")" "# Lab 1
Fork a process." "and read its content"
is "$(as epfs-s01 cat "$X/attachments/sheet.txt")" "step 1
step 2" "and its attachments"
fails_with EROFS "attachments are read-only to students" as epfs-s01 sh -c "echo x > $X/attachments/sheet.txt"
fails_with ENOENT "one student does not see another's" as epfs-s02 ls "$S1"
is "$(as epfs-s01 cat "$X/state")" none "no environment yet"
fails_with EACCES "before start, entering is refused" as_write epfs-s01 running "$X/state"
like "$(tail -1 "$X/error")" "EACCES .*opens at" "the error says when it opens"

# ---- the term: time moves into the window ----
clock 3660
as epfs-s01 sh -c "echo running > $X/state"; ok $? "s01 enters: instance created and started"
is "$(as epfs-s01 cat "$X/state")" running "state running"
INST=$(sql "SELECT instance_id FROM environment WHERE user_id='s01'")
is "$INST" os101.lab1.s01 "the instance is named after course, experiment and student"
is "$(virsh_ domstate "$INST")" running "libvirt runs it"
is "$(as epfs-s01 readlink "$X/instance")" ../../../../instances/os101.lab1.s01 "instance@ points at it"
is "$(as epfs-s01 cat "$X/attempts")" 1 "first attempt"
is "$(as epfs-s01 ls "$MNT/instances")" os101.lab1.s01 "in instances/ a student sees her own instance only"
is "$(as epfs-s01 cat "$X/instance/state")" running "through instance@"
as epfs-s01 cat "$X/instance/console.log" > /dev/null; ok $? "and reads its console.log"
fails_with EACCES "but changes it only through her environment" as_write epfs-s01 shutoff "$MNT/instances/os101.lab1.s01/state"
is "$(sql "SELECT template_id, owner_id FROM instance WHERE id='$INST'")" "lab-vm	s01" "made from the template, owned by s01"
as epfs-s01 sh -c "echo reset > $X/state"; ok $? "reset recreates it"
is "$(as epfs-s01 cat "$X/attempts")" 2 "attempts 2"
is "$(virsh_ domstate "$INST")" running "running again"
fails_with ENOSPC "past max_attempts, reset is refused" as_write epfs-s01 reset "$X/state"
like "$(tail -1 "$X/error")" "no attempts left: 2 of 2 used" "with the reason"
is "$(virsh_ domstate "$INST")" running "and the environment is untouched"
as epfs-s01 sh -c "echo running > $X/state"; ok $? "writing the current state is a no-op"
as epfs-s01 sh -c "echo shutoff > $X/state"; ok $? "s01 stops it"
is "$(virsh_ domstate "$INST")" "shut off" "shut off"
as epfs-s01 sh -c "echo running > $X/state"; ok $? "and starts it again (no new attempt)"
is "$(as epfs-s01 cat "$X/attempts")" 2 "attempts still 2"

# the others enter 20 minutes later
clock $((3660 + 20 * 60))
for i in 02 03 04 05; do
	as "epfs-s$i" sh -c "echo running > $MNT/users/s$i/experiments/os101.lab1/state" || echo "# s$i failed"
done
is "$(sql "SELECT COUNT(*) FROM environment WHERE instance_id IS NOT NULL")" 5 "five environments"
# a crash between making s04's instance and recording it leaves an instance no environment names
sql "UPDATE environment SET instance_id = NULL, attempts = 0 WHERE user_id = 's04'"
as_write epfs-s04 running "$MNT/users/s04/experiments/os101.lab1/state"; ok $? "s04 enters again after the crash"
is "$(sql "SELECT instance_id, attempts FROM environment WHERE user_id = 's04'")" "os101.lab1.s04	1" \
	"her instance is taken on, as one attempt"
T3=$E/students/s03
is "$(as epfs-teach cat "$T3/state")" running "the teacher sees s03's environment"
as epfs-teach sh -c "echo shutoff > $T3/state"; ok $? "and force-stops it"
is "$(virsh_ domstate os101.lab1.s03)" "shut off" "stopped"
is "$(cat "$T3/stop_reason")" teacher "stop_reason teacher"
fails_with ENOENT "students do not see the teacher's files" as_write epfs-s02 100 "$T3/completion"

# the scheduler stops environments past max_minutes (30): s01 restarted at +3660
clock $((3660 + 31 * 60))
wait_for "$X/state" shutoff; ok $? "the scheduler stopped s01 after max_minutes"
is "$(cat "$X/stop_reason")" max_minutes "stop_reason max_minutes"
is "$(cat "$MNT/users/s02/experiments/os101.lab1/state")" running "s02, started later, still runs"
# the end (+6000): everything still running stops, entering is refused
clock 6060
for i in 02 04 05; do
	wait_for "$MNT/users/s$i/experiments/os101.lab1/state" shutoff || echo "# s$i still $(cat "$MNT/users/s$i/experiments/os101.lab1/state")"
done
is "$(sql "SELECT GROUP_CONCAT(DISTINCT stop_reason) FROM environment WHERE user_id IN ('s02','s04','s05')")" end \
	"after the end every environment is stopped (reason end)"
fails_with EACCES "after the end, entering is refused" as_write epfs-s06 running "$MNT/users/s06/experiments/os101.lab1/state"

# ---- progress and grades ----
as epfs-teach sh -c "echo 100 > $E/students/s01/completion; echo 80 > $E/students/s02/completion;
	echo 40 > $E/students/s03/completion; echo 0 > $E/students/s04/completion"
ok $? "the check script reports completion"
fails_with EINVAL "completion is 0-100" as_write epfs-teach 101 "$E/students/s05/completion"
P=$(cat "$E/progress.csv")
is "$(printf '%s\n' "$P" | head -1)" "student,instance,state,last_start,attempts,completion" "progress.csv header"
is "$(printf '%s\n' "$P" | wc -l)" $((N + 1)) "one row per enrolled student"
like "$(printf '%s\n' "$P" | grep '^s01,')" "^s01,os101.lab1.s01,shutoff,20[0-9-]+T[0-9:]+Z,2,100$" "s01's row"
is "$(printf '%s\n' "$P" | grep '^s07,')" "s07,,none,,0," "s07 never entered"

G=$MNT/users/s01/experiments/os101.lab1
fails_with ENOENT "no grade before the teacher sets it" as epfs-s01 cat "$G/grade"
fails_with ENOENT "nor a score" as epfs-s01 cat "$G/score"
as epfs-teach sh -c "echo A > $E/students/s01/grade; echo 'well done' > $E/students/s01/comment;
	echo b > $E/students/s02/grade; echo C > $E/students/s03/grade; echo D > $E/students/s04/grade"
ok $? "the teacher grades"
fails_with EINVAL "grades are A-D" as_write epfs-teach E "$E/students/s05/grade"
fails_with EACCES "a student cannot grade herself" as_write epfs-s01 B "$G/grade"
is "$(as epfs-s01 cat "$G/grade")" A "s01 reads her grade"
is "$(as epfs-s01 cat "$G/comment")" "well done" "and the comment"
is "$(as epfs-s01 cat "$G/score")" 100 "score = 100/100*50 + 2*25 = 100"
is "$(cat "$E/students/s02/grade")" B "grades are stored upper-case"
is "$(cat "$E/students/s02/score")" 65 "80/100*50 + 1*25 = 65"
is "$(cat "$E/students/s03/score")" 20 "40/100*50 + 0 = 20"
is "$(cat "$E/students/s04/score")" 0 "0 - 25 is clamped to 0"
is "$(grep -c '^s[0-9]' "$E/grades.csv")" $N "grades.csv: one row per student"
is "$(grep -E '^s0[1-4],' "$E/grades.csv")" "s01,100,A,100,well done
s02,80,B,65,
s03,40,C,20,
s04,0,D,0," "grades.csv rows match the scores"
xmllint --noout "$E/grades.svg"; ok $? "grades.svg is well-formed XML"
rsvg-convert -o "$T/grades.png" "$E/grades.svg"; ok $? "and renders (rsvg-convert)"
is "$(od -An -tx1 -N8 "$T/grades.png" | tr -d ' ')" 89504e470d0a1a0a "to a PNG"
is "$(od -An -tu1 -j16 -N8 "$T/grades.png" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }')" 480x300 \
	"of the chart's size"
SVG=$(cat "$E/grades.svg")
like "$SVG" '<svg xmlns="http://www.w3.org/2000/svg"' "an SVG document"
for g in A:1 B:1 C:1 D:1 "not graded:26"; do
	like "$SVG" "data-grade=\"${g%:*}\" data-count=\"${g#*:}\"" "a slice for ${g%:*} (${g#*:})"
	like "$SVG" ">${g%:*}: ${g#*:}</text>" "and a legend entry"
done

# ---- enrolment by key ----
mkdir "$MNT/users/late" && write "$(uid_of epfs-late)" "$MNT/users/late/uid" && write student "$MNT/users/late/role"
is "$(as epfs-late ls "$MNT/users/late/experiments")" "" "not in the course: no experiments"
fails_with EACCES "a wrong key does not enrol" as_write epfs-late "os101 guess" "$MNT/users/late/enrol"
as epfs-late sh -c "echo 'os101 s3cret' > $MNT/users/late/enrol"; ok $? "the right key enrols"
is "$(as epfs-late cat "$MNT/users/late/enrol")" os101 "enrol lists her courses"
is "$(as epfs-late ls "$MNT/users/late/experiments")" os101.lab1 "and she sees the experiment"
is "$(ls "$MNT/courses/os101/students" | wc -l)" $((N + 1)) "the course has one student more"

# ---- clean-up after the grace period ----
clock $((6000 + 3700))
for _ in $(seq 1 100); do
	[ "$(sql "SELECT COUNT(*) FROM environment WHERE instance_id IS NOT NULL")" = 0 ] && break; sleep 0.1
done
is "$(sql "SELECT COUNT(*) FROM environment WHERE instance_id IS NOT NULL")" 0 "the scheduler removed every environment"
is "$(sql "SELECT COUNT(*) FROM instance")" 0 "with their instances"
is "$(virsh_ list --all --name | grep -c os101)" 0 "and their domains"
is "$(ls "$STORAGE/volumes" | grep -c os101)" 0 "and their root disks"
is "$(as epfs-s01 cat "$G/grade")" A "grades stay"
is "$(as epfs-s01 cat "$G/state")" none "the state reads none"

# ---- homework snapshots (seed 000): the teacher prepares an instance, snapshots it ----
H=$MNT/instances/hw-src
as epfs-teach bash -c "mkdir $H && ln -s ../../images/lab-base $H/image && echo 128M > $H/memory &&
	echo running > $H/state"
ok $? "the teacher makes and starts an instance of her own"
is "$(stat -c %U "$H")" epfs-teach "it is hers"
fails_with EACCES "another teacher cannot change it" as_write epfs-teach2 shutoff "$H/state"
mkdir "$MNT/instances/admins-vm"
fails_with EACCES "a teacher cannot change an instance she does not own" as_write epfs-teach 2 \
	"$MNT/instances/admins-vm/cpu"
rmdir "$MNT/instances/admins-vm"
mkdir "$MNT/volumes/spare" && write 1M "$MNT/volumes/spare/size"
fails_with EACCES "nor attach a volume she may not change" as epfs-teach ln -s ../../../volumes/spare "$H/volumes/spare"
printf 'HOMEWORK-MARKER' | dd of="$STORAGE/volumes/hw-src.root" bs=1 seek=4096 conv=notrunc status=none
as epfs-teach bash -c "mkdir $H/snapshots/hw1 && mkdir $MNT/templates/hw &&
	ln -s ../../instances/hw-src/snapshots/hw1 $MNT/templates/hw/snapshot"
ok $? "she snapshots it and makes the snapshot a template's base"
fails_with EACCES "another teacher cannot snapshot it" as epfs-teach2 mkdir "$H/snapshots/x"
as epfs-teach mkdir "$MNT/courses/os101/experiments/hw" &&
	as epfs-teach bash -c "cd $MNT/courses/os101/experiments/hw && ln -s ../../../../templates/hw template && echo 1 > published"
ok $? "a homework experiment on that template"
as_write epfs-s08 running "$MNT/users/s08/experiments/os101.hw/state"; ok $? "s08 enters the homework"
is "$(dd if="$STORAGE/volumes/os101.hw.s08.root" bs=1 skip=4096 count=15 status=none)" HOMEWORK-MARKER \
	"her disk starts from the snapshot's disk"
is "$(sql "SELECT base_instance_id, base_snapshot_id FROM instance WHERE id='os101.hw.s08'")" "hw-src	hw1" \
	"the instance names its base"
write 2 "$MNT/images/lab-base/cpu"
is "$(cat "$H/snapshots/hw1/status")" stale "changing the image's flavour makes the snapshot stale"
fails_with EINVAL "a stale base makes no environment" as_write epfs-s09 running "$MNT/users/s09/experiments/os101.hw/state"
like "$(tail -1 "$MNT/users/s09/experiments/os101.hw/error")" "stale" "and the error says why"
is "$(sql "SELECT COUNT(*) FROM instance WHERE id='os101.hw.s09'")" 0 "nothing is left of it"
is "$(cat "$MNT/users/s09/experiments/os101.hw/attempts")" 0 "and it cost no attempt"
fails_with EINVAL "a reset on a stale base is refused" as_write epfs-s08 reset "$MNT/users/s08/experiments/os101.hw/state"
is "$(sql "SELECT COUNT(*) FROM instance WHERE id='os101.hw.s08'")" 1 "before anything was destroyed"

# ---- removing users ----
fails_with EBUSY "a user who owns an environment's instance is not removed" rmdir "$MNT/users/s08"
rmdir "$MNT/users/s10"; ok $? "a student without instances is removed"
is "$(ls "$MNT/courses/os101/students" | grep -c '^s10$')" 0 "and leaves the course"
is "$(sql "SELECT COUNT(*) FROM class_student WHERE user_id='s10'")" 0 "and the class"

# an environment whose experiment is gone (an rmdir racing an enter leaves one)
sql "DELETE FROM experiment WHERE course_id = 'os101' AND id = 'hw'"
for _ in $(seq 1 100); do
	[ "$(sql "SELECT COUNT(*) FROM instance WHERE id = 'os101.hw.s08'")" = 0 ] && break; sleep 0.1
done
is "$(sql "SELECT COUNT(*) FROM instance WHERE id = 'os101.hw.s08'")" 0 "the scheduler removes its instance"
is "$(sql "SELECT COUNT(*) FROM environment WHERE experiment_id = 'hw'")" 0 "and the environment"

# ---- one scheduler per cluster ----
MNT2=$T/mnt2; mkdir -p "$MNT2"
"$EPFS_BIN" -f -o "config=$EPFS_CONF" "$MNT2" >>"$T/epfs2.log" 2>&1 &
PID2=$!
for _ in $(seq 100); do mountpoint -q "$MNT2" && break; sleep 0.05; done
mountpoint -q "$MNT2"; ok $? "a second mount of the same database"
as epfs-teach mkdir "$MNT/courses/os101/experiments/lab2" &&
	as epfs-teach bash -c "cd $MNT/courses/os101/experiments/lab2 && ln -s ../../../../templates/lab-vm template &&
		echo 10 > max_minutes && echo 1 > published"
as_write epfs-s06 running "$MNT/users/s06/experiments/os101.lab2/state"; ok $? "s06 enters lab2 (no window)"
sleep 1
! grep -q "runs the teaching scheduler" "$T/epfs2.log"; ok $? "the second mount does not schedule while the first does"
epfs_umount
clock $((6000 + 3700 + 11 * 60))
wait_for "$MNT2/users/s06/experiments/os101.lab2/state" shutoff
ok $? "once the first mount is gone, the second one's scheduler stops s06 after max_minutes"
grep -q "runs the teaching scheduler" "$T/epfs2.log"; ok $? "it took the scheduler's lock"
fusermount3 -u "$MNT2"; wait $PID2
done_testing
