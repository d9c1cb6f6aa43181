# tests/people.sh: people and data through the mount, run as real Unix users.
# Sourced by people-local.t and people-sftp.t, which choose the file store.
. "$(dirname "$0")/lib.sh"

epfs_setup_filestore
mkdir -p "$T/defaults/notebooks" && echo "# Welcome" > "$T/defaults/README.md" && echo '{}' > "$T/defaults/notebooks/start.ipynb"
printf '\n[projects]\ndefault_files=%s\n' "$T/defaults" >> "$EPFS_CONF"
epfs_umount; epfs_mount
like "$(cat "$MNT/.epfs/health")" "filestore ok ${EPFS_FILESTORE:-local}" "the file store is ${EPFS_FILESTORE:-local}"

for u in epfs-alice epfs-bob; do id "$u" >/dev/null 2>&1 || useradd -M -s /bin/sh "$u"; done
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
U=$MNT/users

# users, made by the admin and mapped to Unix uids
mkdir "$U/alice" "$U/bob"; ok $? "an admin makes users"
write "$(id -u epfs-alice)" "$U/alice/uid"; write "$(id -u epfs-bob)" "$U/bob/uid"
write "Alice Liddell" "$U/alice/display_name"
is "$(sql "SELECT uid, role FROM \`user\` WHERE id='alice'")" "$(id -u epfs-alice)	student" "the record maps alice to her uid"
fails_with EEXIST "a uid maps to one user" write "$(id -u epfs-alice)" "$U/bob/uid"
is "$(stat -c %U "$U/alice")" epfs-alice "users/alice belongs to epfs-alice"
is "$(stat -c '%U %a' "$U/alice/uid")" "root 644" "her uid is root's to change"

# what a student sees and may do
is "$(as epfs-alice ls "$MNT" | tr '\n' ' ')" "instances public users " "a student sees instances/ (her own), public/ and users/ only"
is "$(as epfs-alice ls "$U")" alice "and only herself in it"
fails_with ENOENT "bob's directory is absent for her" as epfs-alice ls "$U/bob"
fails_with EACCES "a student cannot make users" as epfs-alice mkdir "$U/carol"
fails_with ENOENT "nor images" as epfs-alice mkdir "$MNT/images/x"
fails_with EACCES "nor change her uid" as epfs-alice bash -c "echo 4242 > $U/alice/uid"
fails_with EACCES "nor remove herself" as epfs-alice rmdir "$U/alice"
is "$(stat -c %U "$U/alice/projects")" epfs-alice "her projects/ is hers"
as epfs-alice sh -c "echo alice@example.org > $U/alice/email"; ok $? "she changes her email"
is "$(sql "SELECT email FROM \`user\` WHERE id='alice'")" alice@example.org "stored"

# projects and work/
P=$U/alice/projects/p1
as epfs-alice mkdir "$P"; ok $? "alice makes a project"
is "$(sql "SELECT COUNT(*) FROM project WHERE user_id='alice' AND id='p1'")" 1 "the record"
is "$(as epfs-alice cat "$P/work/README.md")" "# Welcome" "the default files are in work/"
ok "$([ -f "$T/files/projects/alice/p1/work/notebooks/start.ipynb" ]; echo $?)" "in the file store too"
fails_with ENOENT "bob cannot make projects for alice: he does not see her" as epfs-bob mkdir "$U/alice/projects/p2"
fails_with ENOENT "bob cannot read alice's files" as epfs-bob cat "$P/work/README.md"
W=$P/work
as epfs-alice sh -c "echo one > $W/a.txt && echo two >> $W/a.txt"; ok $? "create and append"
is "$(cat "$T/files/projects/alice/p1/work/a.txt")" "one
two" "the store has both lines"
as epfs-alice perl -e 'open(my $f, "+<", $ARGV[0]) or die $!; seek($f, 0, 0); print $f "ONE"; close $f or die' "$W/a.txt"
is "$(as epfs-alice head -1 "$W/a.txt")" ONE "O_RDWR writes in place"
as epfs-alice truncate -s 3 "$W/a.txt"; is "$(as epfs-alice cat "$W/a.txt")" ONE "truncate"
# a Jupyter save: temp file, fsync, rename over the notebook
as epfs-alice sh -c "echo '{\"v\": 1}' > $W/nb.ipynb"
as epfs-alice perl -MIO::Handle -e 'open(my $f, ">", "$ARGV[0]/.~nb.ipynb") or die $!; print $f "{\"v\": 2}\n";
	$f->flush; $f->sync or die "fsync: $!"; close $f; rename("$ARGV[0]/.~nb.ipynb", "$ARGV[0]/nb.ipynb") or die $!' "$W"
ok $? "a Jupyter-style save (write, fsync, rename over)"
is "$(as epfs-alice cat "$W/nb.ipynb")" '{"v": 2}' "keeps the new content"
ok "$([ ! -e "$W/.~nb.ipynb" ]; echo $?)" "and leaves no temporary file"
as epfs-alice mkdir -p "$W/src/lib"; ok $? "mkdir -p"
as epfs-alice ln -s ../a.txt "$W/src/link"; is "$(as epfs-alice readlink "$W/src/link")" ../a.txt "symlinks"
as epfs-alice touch -d 2020-01-02T03:04:05Z "$W/a.txt"; is "$(stat -c %Y "$W/a.txt")" 1577934245 "utimens"
as epfs-alice chmod 600 "$W/a.txt"; is "$(stat -c %a "$W/a.txt")" 600 "chmod"
is "$(stat -c %U "$W/a.txt")" epfs-alice "files show their owner"
as epfs-alice chmod 400 "$W/a.txt"
fails_with EACCES "the mode holds for the owner" as epfs-alice sh -c "echo x >> $W/a.txt"
as epfs-alice chmod 644 "$W/a.txt"
as epfs-alice flock "$W/a.txt" true; ok $? "flock"
as epfs-alice perl -MFcntl -e 'open(my $f, ">>", $ARGV[0]) or die; my $l = pack("s s l l i", F_WRLCK, 0, 0, 0, 0);
	fcntl($f, F_SETLK, $l) or die "fcntl: $!"' "$W/a.txt"; ok $? "fcntl locks"
as epfs-alice dd if=/dev/urandom of="$T/big" bs=1M count=64 status=none 2>/dev/null || dd if=/dev/urandom of="$T/big" bs=1M count=64 status=none
as epfs-alice cp "$T/big" "$W/big"; ok $? "a 64 MiB file"
cmp -s "$T/big" "$T/files/projects/alice/p1/work/big"; ok $? "arrives whole in the store"
as epfs-alice cmp -s "$T/big" "$W/big"; ok $? "and reads back the same"
as epfs-alice rm "$W/big" "$W/src/link"; as epfs-alice rmdir "$W/src/lib" "$W/src"; ok $? "unlink and rmdir"
fails_with EROFS "input/ is read-only" as epfs-alice sh -c "echo x > $P/input/f"
fails_with EPERM "work/ itself stays" as epfs-alice rmdir "$W"

# snippets: a tree in the database
S=$U/alice/snippets
as epfs-alice mkdir -p "$S/python/io"; ok $? "mkdir -p in snippets/"; tail -2 "$MNT/.epfs/errors" | sed "s/^/# /"
as epfs-alice sh -c "printf 'print(1)\n' > $S/python/hello.py"; ok $? "a snippet"
is "$(as epfs-alice cat "$S/python/hello.py")" "print(1)" "reads back"
is "$(sql "SELECT REPLACE(content, '\n', '|') FROM snippet WHERE name='hello.py'")" "print(1)|" "stored in the database"
is "$(stat -c %s "$S/python/hello.py")" 9 "st_size"
as epfs-alice sh -c "echo 'x = 2' >> $S/python/hello.py"; is "$(as epfs-alice cat "$S/python/hello.py" | wc -l)" 2 "append"
as epfs-alice mv "$S/python/hello.py" "$S/python/io/hi.py"; ok $? "rename"
is "$(as epfs-alice ls "$S/python/io")" hi.py "moved"
as epfs-alice touch -d 2021-02-03T04:05:06Z "$S/python/io/hi.py"; is "$(stat -c %Y "$S/python/io/hi.py")" 1612325106 "utimens"
fails_with ENOENT "bob does not see alice's snippets" as epfs-bob ls "$S"
as epfs-alice rm -r "$S/python"; ok $? "rm -r removes a subtree"
is "$(sql "SELECT COUNT(*) FROM snippet WHERE user_id='alice'")" 0 "the subtree is gone from the database"
as epfs-alice mkdir -p "$S/a/b" && as epfs-alice sh -c "echo 1 > $S/a/b/c"
as epfs-alice rmdir "$S/a"; ok $? "rmdir of a node deletes its subtree"
is "$(sql "SELECT COUNT(*) FROM snippet WHERE user_id='alice'")" 0 "all of it"

# rsync out and back reproduces the project
mkdir "$T/out" && chown epfs-alice "$T/out"
as epfs-alice rsync -a "$W/" "$T/out/"; ok $? "rsync -a out"
as epfs-alice sh -c "rm -rf $W/* $W/.[!.]*" 2>/dev/null
as epfs-alice rsync -a "$T/out/" "$W/"; ok $? "rsync -a back"
diff -r "$T/out" "$W" >/dev/null; ok $? "the same files"
is "$(cd "$T/out" && find . -mindepth 1 ! -type d -printf '%P %s %m %T@\n' | sort)" "$(cd "$W" && find . -mindepth 1 ! -type d -printf '%P %s %m %T@\n' | sort)" \
	"the same sizes, modes and times of files"

# datasets
D=$U/alice/datasets/d1
as epfs-alice mkdir "$D"; ok $? "a dataset"
printf 'a,b\n1,2\n' > "$T/data.csv"; chmod 644 "$T/data.csv"
as epfs-alice cp "$T/data.csv" "$D/files/"; ok $? "upload by copying into files/"
fails_with EEXIST "cp -n of the same name" as epfs-alice sh -c "set -o noclobber; cat $T/data.csv > $D/files/data.csv"
is "$(as epfs-alice cat "$D/size")" 8 "size is the total of the files"
seq 1 50 > "$T/long.txt"; chmod 644 "$T/long.txt"; as epfs-alice cp "$T/long.txt" "$D/files/"
is "$(as epfs-alice ls "$D/preview")" "data.csv
long.txt" "preview/ lists the files"
is "$(as epfs-alice cat "$D/preview/long.txt")" "$(seq 1 10; echo '-- long.txt: 141 bytes')" \
	"preview shows the first 10 lines and the size"
is "$(stat -c %s "$D/preview/long.txt")" "$(as epfs-alice cat "$D/preview/long.txt" | wc -c)" "with an honest st_size"
fails_with EACCES "previews are read-only" as epfs-alice bash -c "echo x > $D/preview/long.txt"
as epfs-alice rm "$D/files/long.txt"
is "$(cat "$T/files/datasets/alice/d1/files/data.csv")" "$(cat "$T/data.csv")" "in the store"
# linking a dataset into a project copies it into input/ as a job
as epfs-alice ln -s ../../../datasets/d1 "$P/datasets/d1"; ok $? "ln -s links the dataset"
is "$(as epfs-alice readlink "$P/datasets/d1")" ../../../datasets/d1 "the link reads back"
for _ in $(seq 100); do as epfs-alice cat "$P/progress" | grep -q "d1 ready 100" && break; sleep 0.1; done
is "$(as epfs-alice cat "$P/progress")" "d1 ready 100" "progress reaches 100"
is "$(as epfs-alice cat "$P/input/d1/data.csv")" "$(cat "$T/data.csv")" "the files are in input/d1/"
ok "$([ -f "$T/files/projects/alice/p1/input/d1/data.csv" ]; echo $?)" "in the file store"
fails_with EROFS "the copy is read-only" as epfs-alice bash -c "echo x > $P/input/d1/data.csv"
fails_with EBUSY "a linked dataset cannot be removed" as epfs-alice rmdir "$D"
fails_with ENOENT "linking a dataset that does not exist" as epfs-alice ln -s ../../../datasets/nope "$P/datasets/nope"
fails_with EINVAL "a link not named after its dataset" as epfs-alice ln -s ../../../datasets/d1 "$P/datasets/other"
fails_with EEXIST "linking twice" as epfs-alice ln -sT ../../../datasets/d1 "$P/datasets/d1"
fails_with EINVAL "a link that only ends like a dataset" as epfs-alice ln -s ../../../../bob/datasets/d1 "$P/datasets/d1x"
as epfs-alice rm "$P/datasets/d1"; ok $? "rm unlinks"
ok "$([ ! -e "$P/input/d1" ] && [ ! -e "$T/files/projects/alice/p1/input/d1" ]; echo $?)" "and removes the copy"
as epfs-alice rmdir "$D"; ok $? "rmdir of a dataset"
ok "$([ ! -e "$T/files/datasets/alice/d1" ]; echo $?)" "removes its files"
as epfs-alice rmdir "$P"; ok $? "rmdir of a project"
ok "$([ ! -e "$T/files/projects/alice/p1" ]; echo $?)" "removes its files"

# public sharing: a project and a dataset published by alice, read by bob
PUB=$MNT/public
PA=$U/alice/projects/shown
DA=$U/alice/datasets/iris
as epfs-alice mkdir "$PA" "$DA"
as epfs-alice sh -c "echo 'print(42)' > $PA/work/main.py && chmod 600 $PA/work/main.py"
as epfs-alice cp "$T/data.csv" "$DA/files/"
as epfs-alice ln -s ../../../datasets/iris "$PA/datasets/iris"
for _ in $(seq 100); do as epfs-alice cat "$PA/progress" | grep -q "iris ready 100" && break; sleep 0.1; done
is "$(as epfs-alice cat "$PA/shared") $(as epfs-alice cat "$PA/share_progress")" "0 " "a project is private at first"
is "$(as epfs-bob ls "$PUB/projects" | wc -l)" 0 "public/projects/ is empty"
as epfs-alice sh -c "echo 1 > $PA/shared"; ok $? "echo 1 > shared publishes"
for _ in $(seq 100); do [ -d "$PUB/projects/shown" ] && break; sleep 0.1; done
is "$(as epfs-alice cat "$PA/shared") $(as epfs-alice cat "$PA/share_progress")" "1 ready 100" "the public copy is made (a job, with progress)"
is "$(sql "SELECT shared, share_status FROM project WHERE user_id='alice' AND id='shown'")" "1	ready" "the record says so"
ok "$([ -f "$T/files/public/projects/shown/work/main.py" ] && [ -f "$T/files/public/projects/shown/input/iris/data.csv" ]; echo $?)" \
	"the work files and the datasets are copied to the public area of the file store"
is "$(as epfs-bob ls "$PUB" | tr '\n' ' ')" "datasets projects " "public/ holds projects/ and datasets/"
is "$(as epfs-bob ls "$PUB/projects")" shown "another student sees the project in public/projects/"
is "$(as epfs-bob ls "$PUB/projects/shown" | tr '\n' ' ')" "input owner work " "with owner@, work/ and input/"
is "$(as epfs-bob readlink "$PUB/projects/shown/owner")" ../../../users/alice "owner@ names alice"
is "$(as epfs-bob cat "$PUB/projects/shown/work/main.py")" "print(42)" "he reads the work files"
is "$(as epfs-bob cat "$PUB/projects/shown/input/iris/data.csv")" "$(cat "$T/data.csv")" "and the datasets in input/"
is "$(stat -c '%a %U' "$PUB/projects/shown/work/main.py")" "644 epfs-alice" "a file shows its mode readable by all, owned by alice"
is "$(stat -c %a "$PUB" "$PUB/projects" "$PUB/projects/shown" | tr '\n' ' ')" "555 555 555 " "the public directories are 0555"
fails_with EROFS "bob cannot change the public copy" as epfs-bob sh -c "echo x > $PUB/projects/shown/work/main.py"
fails_with EROFS "nor can alice" as epfs-alice sh -c "echo x >> $PUB/projects/shown/work/main.py"
fails_with EROFS "nobody creates files in it" as epfs-bob touch "$PUB/projects/shown/work/new"
fails_with EROFS "nor removes them" as epfs-alice rm "$PUB/projects/shown/work/main.py"
fails_with EROFS "not even root" rm "$PUB/projects/shown/input/iris/data.csv"
fails_with EACCES "nobody makes projects in public/" as epfs-bob mkdir "$PUB/projects/x"
fails_with EACCES "root neither" mkdir "$PUB/projects/x"
fails_with EACCES "nor directories in public/ itself" mkdir "$PUB/x"
fails_with EACCES "nobody removes a public project" as epfs-alice rmdir "$PUB/projects/shown"
ok "$([ "$(sql "SELECT COUNT(*) FROM change_log WHERE kind='public/projects' AND obj_key='shown'")" -gt 0 ]; echo $?)" \
	"the change is logged for other mounts"
as epfs-alice sh -c "echo 'print(43)' > $PA/work/main.py"
as epfs-alice sh -c "echo 1 > $PA/shared"; ok $? "writing 1 again is a no-op"
is "$(as epfs-bob cat "$PUB/projects/shown/work/main.py")" "print(42)" "the public copy is a snapshot of the moment it was published"

# one public name per project
as epfs-bob mkdir "$U/bob/projects/shown"
fails_with EEXIST "bob cannot publish a project under a name that is public" as epfs-bob bash -c "echo 1 > $U/bob/projects/shown/shared"
like "$(as epfs-bob cat "$U/bob/projects/shown/error")" "EEXIST .*public/projects/shown is taken: alice shares one of that name" \
	"the reason is in his project's error file"
is "$(as epfs-bob cat "$U/bob/projects/shown/shared")" 0 "his project stays private"
as epfs-bob rmdir "$U/bob/projects/shown"

# a private copy: cp -a into your own projects/ makes the project (mkdir), which has its own
# work/ and input/ already; cp -a of work/. then copies the files in
as epfs-bob cp -a "$PUB/projects/shown" "$U/bob/projects/" 2> "$T/cp.err"
is "$?:$(sed 's/.*: //' "$T/cp.err" | sort | tr '\n' '|')" \
	"1:File exists|File exists|Operation not permitted|Operation not permitted|" \
	"cp -a of the project makes it, and reports work/, input/, owner and the directory's mode"
sed 's/^/#   /' "$T/cp.err"
ok "$([ -d "$U/bob/projects/shown/work" ]; echo $?)" "the project is made"
as epfs-bob cp -a "$PUB/projects/shown/work/." "$U/bob/projects/shown/work/"; ok $? "cp -a of work/. copies the files"
is "$(as epfs-bob cat "$U/bob/projects/shown/work/main.py")" "print(42)" "bob's copy has the work files"
is "$(stat -c '%a %U' "$U/bob/projects/shown/work/main.py")" "644 epfs-bob" "his, with the mode shown in public/"
as epfs-bob sh -c "echo 'print(44)' >> $U/bob/projects/shown/work/main.py"; ok $? "and he edits them"
is "$(as epfs-alice cat "$PA/work/main.py")" "print(43)" "alice's project is untouched"
as epfs-bob rmdir "$U/bob/projects/shown"

# withdraw, and publish again; a second mount of the same platform follows within a second
MNT2=$T/mnt2; mkdir -p "$MNT2"
"$EPFS_BIN" -f -o "config=$EPFS_CONF,allow_other" "$MNT2" >>"$T/epfs2.log" 2>&1 &
PID2=$!
for _ in $(seq 100); do mountpoint -q "$MNT2" && break; sleep 0.05; done
is "$(as epfs-bob cat "$MNT2/public/projects/shown/work/main.py")" "print(42)" "a second mount shows the public project"
as epfs-alice sh -c "echo 0 > $PA/shared"; ok $? "echo 0 > shared withdraws"
fails_with ENOENT "it is gone from public/ at once" as epfs-bob ls "$PUB/projects/shown"
ok "$([ ! -e "$T/files/public/projects/shown" ]; echo $?)" "with its copy"
sleep 1.5
is "$(as epfs-bob ls "$MNT2/public/projects" | wc -l)" 0 "and from the other mount within the attribute timeout"
as epfs-alice sh -c "echo 1 > $PA/shared"
for _ in $(seq 100); do [ -d "$PUB/projects/shown" ] && break; sleep 0.1; done
is "$(as epfs-bob cat "$PUB/projects/shown/work/main.py")" "print(43)" "0 then 1 publishes the project as it is now"
sleep 1.5
is "$(as epfs-bob cat "$MNT2/public/projects/shown/work/main.py")" "print(43)" "the other mount shows it again"
fusermount3 -u "$MNT2"; wait $PID2

# public datasets
as epfs-alice sh -c "echo 'three rows' > $DA/describe && echo 1 > $DA/shared"; ok $? "alice publishes a dataset"
for _ in $(seq 100); do [ -d "$PUB/datasets/iris" ] && break; sleep 0.1; done
is "$(as epfs-bob ls "$PUB/datasets")" iris "bob sees it in public/datasets/"
is "$(as epfs-bob ls "$PUB/datasets/iris" | tr '\n' ' ')" "create_time describe files info.json owner preview size " \
	"with its attributes, files/ and preview/"
is "$(as epfs-bob cat "$PUB/datasets/iris/describe") $(as epfs-bob cat "$PUB/datasets/iris/size")" "three rows 8" "describe and size"
is "$(as epfs-bob readlink "$PUB/datasets/iris/owner")" ../../../users/alice "owner@"
is "$(as epfs-bob cat "$PUB/datasets/iris/files/data.csv")" "$(cat "$T/data.csv")" "the files"
like "$(as epfs-bob cat "$PUB/datasets/iris/preview/data.csv")" "-- data.csv: 8 bytes" "a preview"
fails_with EACCES "its attributes are read-only" as epfs-bob sh -c "echo x > $PUB/datasets/iris/describe"
fails_with EROFS "and so are its files" as epfs-bob cp "$T/data.csv" "$PUB/datasets/iris/files/new.csv"
as epfs-bob mkdir "$U/bob/projects/bp"
as epfs-bob ln -s ../../../../../public/datasets/iris "$U/bob/projects/bp/datasets/iris"; ok $? "bob links the public dataset"
is "$(as epfs-bob readlink "$U/bob/projects/bp/datasets/iris")" ../../../../../public/datasets/iris "the link reads back"
for _ in $(seq 100); do as epfs-bob cat "$U/bob/projects/bp/progress" | grep -q "iris ready 100" && break; sleep 0.1; done
is "$(as epfs-bob cat "$U/bob/projects/bp/input/iris/data.csv")" "$(cat "$T/data.csv")" "it is copied into his input/"
fails_with ENOENT "a public dataset that does not exist" as epfs-bob ln -s ../../../../../public/datasets/nope "$U/bob/projects/bp/datasets/nope"
fails_with EBUSY "a public dataset linked by a project is not withdrawn" as epfs-alice bash -c "echo 0 > $DA/shared"
as epfs-bob rm "$U/bob/projects/bp/datasets/iris"; ok $? "bob unlinks it"
as epfs-alice sh -c "echo 0 > $DA/shared"; ok $? "then alice withdraws it"
is "$(as epfs-bob ls "$PUB/datasets" | wc -l)" 0 "public/datasets/ is empty again"
as epfs-alice rm "$PA/datasets/iris"
as epfs-alice rmdir "$PA"; ok $? "rmdir of a shared project"
ok "$([ ! -e "$PUB/projects/shown" ] && [ ! -e "$T/files/public/projects/shown" ]; echo $?)" "takes its public copy along"
as epfs-alice rmdir "$DA"

done_testing
