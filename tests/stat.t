#!/bin/bash
# Honest stat (SPEC rule 3): sizes, blocks, times, owners and stable inodes,
# checked by walking the whole tree the way backup tools do.
. "$(dirname "$0")/lib.sh"
epfs_setup

mkdir "$MNT/images/img1" "$MNT/images/img2" "$MNT/volumes/vol1"
write 1G "$MNT/images/img1/size"
write "An image with a longer description" "$MNT/images/img1/describe"
write 64M "$MNT/volumes/vol1/size"
write bad "$MNT/volumes/vol1/size" 2>/dev/null   # gives vol1 an error line

# every regular file's st_size equals the length of what read returns
bad=0 n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	s=$(stat -c %s "$f"); c=$(wc -c < "$f")
	[ "$s" = "$c" ] || { bad=$((bad + 1)); diag "$f: st_size $s, read $c bytes"; }
	b=$(stat -c %b "$f"); [ "$b" = $(( (s + 511) / 512 )) ] || { bad=$((bad + 1)); diag "$f: st_blocks $b for $s bytes"; }
done < <(find "$MNT" -path "$MNT/.epfs" -prune -o -type f -print0)
ok $((bad)) "st_size and st_blocks match the content of all $n files"
[ "$n" -ge 40 ]; ok $? "the walk saw the files ($n)"

# .epfs files change all the time, yet a stat followed by a read agrees
s=$(stat -c %s "$MNT/.epfs/stats"); c=$(wc -c < "$MNT/.epfs/stats")
is "$c" "$s" ".epfs/stats: stat then read agree"

# times come from the record
is "$(stat -c %Y "$MNT/images/img1/size")" "$(sql "SELECT UNIX_TIMESTAMP(mtime) DIV 1 FROM image WHERE id='img1'")" \
	"st_mtime of an attribute is the record's change time"
is "$(stat -c %Y "$MNT/images/img1")" "$(stat -c %Y "$MNT/images/img1/name")" "the directory has the same time"

# owners and modes
is "$(stat -c '%U %a' "$MNT/images/img1/name")" "root 644" "writable attributes are 0644 root"
is "$(stat -c '%a' "$MNT/images/img1/status")" 444 "read-only ones 0444"
is "$(stat -c '%F %a' "$MNT/images/img1")" "directory 755" "resource directories are 0755"

# inode numbers survive a remount
find "$MNT" -printf '%i %p\n' | sort > "$T/inodes.1"
epfs_umount; epfs_mount
find "$MNT" -printf '%i %p\n' | sort > "$T/inodes.2"
cmp -s "$T/inodes.1" "$T/inodes.2"; ok $? "inode numbers are identical after a remount"
is "$(cut -d' ' -f1 "$T/inodes.1" | sort | uniq -d | wc -l)" 0 "inode numbers are unique"
is "$(stat -c %i "$MNT/images/img1/size")" "$(stat -c %i "$MNT/images/img1/size")" "and stable between lookups"

# tar: a faithful copy
(cd "$MNT" && tar --exclude=./.epfs -cf "$T/tree.tar" .); ok $? "tar -cf of the tree"
tar -tvf "$T/tree.tar" | awk '$1 ~ /^-/ {print $3, $6}' | sort -k2 > "$T/tar.sizes"
(cd "$MNT" && find . -path ./.epfs -prune -o -type f -printf '%s %p\n') | sort -k2 > "$T/real.sizes"
cmp -s "$T/tar.sizes" "$T/real.sizes"; ok $? "tar -tvf shows the same sizes as the tree"
mkdir "$T/x" && tar -xf "$T/tree.tar" -C "$T/x"
diff -r --exclude=.epfs "$T/x" "$MNT" >/dev/null; ok $? "the extracted copy has the same content"

# reads have no side effects
before=$(sql "SELECT (SELECT COUNT(*) FROM change_log), (SELECT COUNT(*) FROM error_log), (SELECT MAX(mtime) FROM image)")
find "$MNT" -type f -exec cat {} + > /dev/null
ls -lR "$MNT" > /dev/null
after=$(sql "SELECT (SELECT COUNT(*) FROM change_log), (SELECT COUNT(*) FROM error_log), (SELECT MAX(mtime) FROM image)")
is "$after" "$before" "walking and reading everything changes nothing"

done_testing
