# tests/workflows.sh: work/ as a local disk, tried with the tools people use
# there (git, vim, python, tar, cp, df), as the files' owner, a real Unix user.
# Sourced by workflows-local.t and workflows-sftp.t, which choose the file store.
. "$(dirname "$0")/lib.sh"

epfs_setup_filestore
store=${EPFS_FILESTORE:-local}
id epfs-wanda >/dev/null 2>&1 || useradd -M -s /bin/sh epfs-wanda
getent group epfs-lab >/dev/null || groupadd epfs-lab
usermod -a -G epfs-lab epfs-wanda
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"; }
mkdir "$MNT/users/wanda" && write "$(id -u epfs-wanda)" "$MNT/users/wanda/uid"
as epfs-wanda mkdir "$MNT/users/wanda/projects/lab"
W=$MNT/users/wanda/projects/lab/work
S=$T/files/projects/wanda/lab/work
wanda() { as epfs-wanda env HOME="$T/home" GIT_CONFIG_NOSYSTEM=1 "$@"; }
mkdir -p "$T/home" && chown epfs-wanda "$T/home"
timeout=$(( ${EPFS_ATTR_TIMEOUT:-1} + 1 ))

# a name freed by a rename can be used again at once, and after the timeouts
wanda sh -c "cd $W && touch p && mv p q && echo hi > p"; ok $? "touch p; mv p q; echo hi > p"
is "$(wanda cat "$W/p")" hi "p holds the new content"
is "$(wanda cat "$W/q")" "" "q is the renamed, empty file"
wanda sh -c "cd $W && mkdir build && mv build build.old && mkdir build"; ok $? "mkdir build; mv build build.old; mkdir build"
wanda sh -c "cd $W && echo old > a && echo new > a.new && mv a a.old && mv a.new a"
sleep "$timeout"
is "$(wanda cat "$W/a") $(wanda cat "$W/a.old")" "new old" "mv a a.old; mv a.new a: a is the new file after the timeouts"
ino=$(stat -c %i "$W/q")
mv "$W/q" "$W/q2"
is "$(stat -c %i "$W/q2")" "$ino" "a renamed file keeps its inode number"
touch "$W/q"
ok "$([ "$(stat -c %i "$W/q")" != "$ino" ]; echo $?)" "a new file at the old name has a new one"
! grep -q "inode collision" "$T/epfs.log"; ok $? "no inode collision in the log"

# a listing never leaves out what is in the store
wanda sh -c "cd $W && mkdir churn && cd churn && for i in \$(seq 200); do touch f\$i; mv f\$i g\$((i % 37)); ls >/dev/null; done; for i in \$(seq 50); do touch n\$i; done"
is "$(ls -A "$W/churn" | sort | tr '\n' ' ')" "$(ls -A "$S/churn" | sort | tr '\n' ' ')" "after renames over one another, ls shows every file in the store"
wanda rm -rf "$W/churn"; ok $? "rm -rf removes them all"
ok "$([ ! -e "$S/churn" ]; echo $?)" "from the store too"

# git
wanda git -C "$W" init -q repo; ok $? "git init in work/"
wanda sh -c "cd $W/repo && git config user.email w@example.org && git config user.name Wanda && printf 'print(1)\n' > main.py && git add main.py && git commit -qm first && echo '# x' >> main.py && git commit -qam second && git gc -q"
ok $? "git add, commit, commit -a, gc"
is "$(wanda git -C "$W/repo" log --format=%s | tr '\n' ' ')" "second first " "the history"
is "$(wanda git -C "$W/repo" status --porcelain)" "" "git status is clean"
ok "$([ ! -e "$W/repo/.git/index.lock" ] && [ ! -e "$W/repo/.git/config.lock" ]; echo $?)" "no stale lock files"
wanda git clone -q "$W/repo" "$W/clone"; ok $? "git clone within work/"
is "$(wanda cat "$W/clone/main.py")" "print(1)
# x" "the clone has the file"
out=$(wanda git -C "$W/repo" fsck 2>&1); ok $? "git fsck finds the repository whole" || diag "$out"

# vim, with its default backup (rename-style) and its swap file, twice
for round in 1 2; do
	wanda vim -N -u NONE -i NONE -es -c 'set backup writebackup backupcopy=auto' \
		-c "normal Goline $round" -c wq "$W/notes.txt" </dev/null
done
is "$(wanda cat "$W/notes.txt" | tr '\n' ' ')" " line 1 line 2 " "vim :w with backups, twice: the file reads back"
for round in 1 2; do
	wanda sh -c "cd $W && vim -N -u NONE -i NONE -es -c 'set swapfile directory=.' -c 'normal Gaswap $round' -c wq swap.txt </dev/null"
done
like "$(wanda cat "$W/swap.txt")" "swap 2" "an editor's swap-file save works twice"
ok "$([ ! -e "$W/.swap.txt.swp" ]; echo $?)" "and its swap file is gone"

# files that are open but unlinked, as Python's tempfile makes them
out=$(wanda python3 - "$W" <<'PY'
import os, sys, tempfile
with tempfile.TemporaryFile(dir=sys.argv[1]) as f:
    f.write(b"x" * 10000); f.flush(); os.fsync(f.fileno())
    f.seek(0); data = f.read()
    st = os.fstat(f.fileno())
    f.truncate(10)
    print(len(data), st.st_size, os.fstat(f.fileno()).st_size)
PY
)
is "$out" "10000 10000 10" "an unlinked open file is read, fstat-ed and truncated through its descriptor"

# ownership and modes
wanda sh -c "umask 002 && touch $W/shared && mkdir $W/shared.d"
is "$(stat -c %a "$W/shared") $(stat -c %a "$W/shared.d")" "664 775" "the caller's umask 002 holds exactly"
is "$(stat -c %U "$W/shared")" epfs-wanda "new files belong to who made them"
chown epfs-wanda "$W/shared"; ok $? "root chowns a file to the owner it has"
wanda chown epfs-wanda "$W/shared"; ok $? "so does the owner"
wanda chgrp epfs-lab "$W/shared"; ok $? "the owner gives the file to a group she is in"
is "$(stat -c %G "$W/shared")" epfs-lab "the group is kept"
fails_with EPERM "but not to a group she is not in" wanda chgrp root "$W/shared"
fails_with EPERM "nor the file to someone else" wanda chown root "$W/shared"
wanda mkdir "$W/ro" && wanda chmod 555 "$W/ro"
fails_with EACCES "a 0555 directory refuses new files" wanda touch "$W/ro/x"
wanda sh -c "echo keep > $W/locked && chmod 444 $W/locked"
fails_with EACCES "a 0444 file refuses writes" wanda sh -c "echo no > $W/locked"
is "$(cat "$W/locked")" keep "and keeps its content"
wanda sh -c "test -w $MNT/users/wanda/projects && test -w $W && test ! -w $W/ro"; ok $? "access(2) agrees: projects/ and work/ writable, ro/ not"
wanda mkdir -p "$W/tree/a" "$W/tree/b"
if [ "$store" = local ]; then
	is "$(stat -c %h "$W/tree")" 4 "a directory's st_nlink counts its sub-directories"
else
	is "$(stat -c %h "$W/tree")" 1 "SFTP has no link counts: 1, 'not counted', as sshfs shows"
fi

# tar and cp -a of a tree into work/ by root: owners, modes and times kept, exit 0
mkdir -p "$T/src/dir/sub" && echo data > "$T/src/dir/f" && chmod 640 "$T/src/dir/f" && chmod 750 "$T/src/dir/sub"
chown -R epfs-wanda:epfs-lab "$T/src/dir" && touch -d '2020-01-02 03:04:05' "$T/src/dir/f"
tar -C "$T/src" -cf "$T/tree.tar" dir
tar -C "$W" -xpf "$T/tree.tar"; ok $? "tar -xpf into work/ exits 0"
is "$(stat -c '%U:%G %a %Y' "$W/dir/f")" "epfs-wanda:epfs-lab 640 $(stat -c %Y "$T/src/dir/f")" "owner, group, mode and mtime restored"
tar -C "$W" -xpf "$T/tree.tar" --overwrite; ok $? "and again over itself"
cp -a "$T/src/dir" "$W/copy"; ok $? "cp -a into work/ exits 0"
is "$(stat -c '%U:%G %a' "$W/copy/sub")" "epfs-wanda:epfs-lab 750" "with owners and modes"

# capacity
read -r size avail < <(df -B1 --output=size,avail "$MNT" | tail -1)
ok "$([ "$size" -gt 0 ] && [ "$avail" -gt 0 ]; echo $?)" "df shows the store's size and free space"

# more kinds of files, and calls a disk has
if [ "$store" = local ]; then
	wanda mkfifo "$W/pipe"; ok $? "mkfifo in work/"
	is "$( (wanda sh -c "echo through > $W/pipe" &) ; wanda cat "$W/pipe")" through "and data goes through it"
	wanda ln "$W/p" "$W/p.hard"; ok $? "a hard link"
	is "$(stat -c '%i %h' "$W/p.hard")" "$(stat -c '%i %h' "$W/p")" "the same inode, two links"
	wanda rm "$W/p"
	is "$(wanda cat "$W/p.hard")" hi "the other name still reads after one is removed"
	wanda fallocate -l 1M "$W/big"; ok $? "fallocate"
	is "$(stat -c %s "$W/big")" 1048576 "allocates the size"
	wanda fallocate -p -o 0 -l 4096 "$W/big"; ok $? "and punches a hole"
	is "$(stat -c %a "$T/files")" 700 "the local store is private to epfs (0700)"
	python3 - "$W/a" "$W/a.old" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
PY
	ok $? "renameat2(RENAME_EXCHANGE)"
	is "$(cat "$W/a") $(cat "$W/a.old")" "old new" "swaps the two names at once"
else
	fails_with EPERM "mkfifo is refused on the SFTP store" wanda mkfifo "$W/pipe"
	fails_with EPERM "and so are hard links" wanda ln "$W/p" "$W/p.hard"
fi

# a write through one descriptor is read through another, also once the file grew
out=$(wanda python3 - "$W/grow" <<'PY'
import os, sys
p = sys.argv[1]
w = os.open(p, os.O_CREAT | os.O_RDWR, 0o644); r = os.open(p, os.O_RDONLY)
os.write(w, b"a" * 100)
first = os.pread(r, 4096, 0)
os.pwrite(w, b"b" * 100, 100)
second = os.pread(r, 4096, 0)
os.pwrite(w, b"c" * 10, 0)
third = os.pread(r, 10, 0)
print(len(first), len(second), third.decode())
PY
)
is "$out" "100 200 cccccccccc" "reads through a second descriptor see growth and overwrites"

# two mounts renaming in one directory
MNT1=$MNT

MNT2=$T/mnt2
mkdir -p "$MNT2"
"$EPFS_BIN" -f -o "config=$EPFS_CONF,allow_other" "$MNT2" >>"$T/epfs2.log" 2>&1 &
pid2=$!
for _ in $(seq 100); do mountpoint -q "$MNT2" && break; sleep 0.05; done
MNT=$MNT1
W2=$MNT2/users/wanda/projects/lab/work
wanda sh -c "echo one > $W/m1 && cat $W2/m1 >/dev/null && mv $W2/m1 $W2/m2 && echo two > $W2/m1"
sleep "$timeout"
is "$(wanda cat "$W/m1") $(wanda cat "$W/m2")" "two one" "a rename on another mount is seen after the timeouts"
fusermount3 -u "$MNT2"; wait "$pid2"

done_testing
