#!/bin/bash
# layout.t: fs-layout/tree.txt, the mounted tree and docs/epfs-layout.5 describe the same thing.
#
# Every path of a mount holding one resource of each kind must be a `now` row of the layout
# file with the same type and mode (symlinks: the same target pattern), and every `now` row
# must exist, except the conditional `now?` ones.  The man page's tree section must be what
# fs-layout/to-man makes of the layout file.
. "$(dirname "$0")/lib.sh"

LAYOUT=$EPFS_SRCDIR/fs-layout/tree.txt
TO_MAN=$EPFS_SRCDIR/fs-layout/to-man
MANPAGE=$EPFS_SRCDIR/docs/epfs-layout.5

# The layout rows as "PATH TYPE MODE STATUS FORMAT", one per line; problems go to stderr.
layout_rows() {
	perl -ne '
		next if /^#/ || /^\s*$/ || /^\s/;
		my @f = split " ";
		if (@f != 5) { print STDERR "line $.: not five fields: $_"; next }
		print join("\t", @f), "\n";' "$LAYOUT"
}

# ---- the layout file itself ----

rows=$(layout_rows 2>"$T/layout.err")
is "$(cat "$T/layout.err")" "" "every row of fs-layout/tree.txt has five fields"
is "$(printf '%s\n' "$rows" | awk -F'\t' '
	$2 !~ /^(dir|file|symlink|any)$/ { print "type " $2 " of " $1 }
	$3 !~ /^(0[0-7][0-7][0-7]|-)$/ { print "mode " $3 " of " $1 }
	$4 !~ /^(now|planned)\??$/ { print "status " $4 " of " $1 }
	$2 == "symlink" && ($3 != "0777" || $5 !~ /^(\.\.\/)+/) { print "symlink " $1 " needs 0777 and a ../ target" }
	$2 == "dir" && $5 != "-" { print "dir " $1 " has format " $5 }
	seen[$1]++ { print "duplicate " $1 }')" "" "types, modes, statuses and formats are well-formed; paths are unique"

# ---- the man page ----

"$TO_MAN" "$LAYOUT" > "$T/tree.man" 2>&1
ok $? "fs-layout/to-man renders the layout file"
sed -n '/^\.\\" BEGIN TREE/,/^\.\\" END TREE/p' "$MANPAGE" > "$T/page.man"
diff -u "$T/tree.man" "$T/page.man" > "$T/man.diff"
rc=$?
ok $rc "docs/epfs-layout.5 holds the tree fs-layout/to-man makes (fix: fs-layout/to-man --update docs/epfs-layout.5)"
[ $rc -eq 0 ] || sed 's/^/# /' "$T/man.diff" | head -30
if command -v groff >/dev/null; then
	for page in docs/epfs-layout.5 docs/epfs.8; do
		is "$(groff -man -ww -z "$EPFS_SRCDIR/$page" 2>&1)" "" "$page renders without warnings"
	done
else
	ok 0 "man pages render without warnings # SKIP groff is not installed"
fi

# ---- the mounted tree ----

# One resource of each kind, and each conditional path in both states: a provisioned instance
# (image, host, attached volume and NIC, a snapshot) and a draft without image; a volume and a
# NIC that are not attached; a user with a project, a dataset, files and snippets of their own.
# The walk runs as root, who sees everything.  libvirtd starts before the mount: it runs in a
# mount namespace copied from ours when it starts, and a FUSE mount copied into it would outlive
# our unmount (epfs would not exit until it is killed).
trap epfs_teardown EXIT
URI=$(libvirt_start) || { echo "Bail out! cannot start libvirtd"; exit 1; }
epfs_setup
mkdir "$MNT/hosts/h1" && write "$URI" "$MNT/hosts/h1/uri"
ok $? "a host (libvirt test driver)"
mkdir "$MNT/images/img1" && write 64M "$MNT/images/img1/size"
ok $? "an image"
mkdir "$MNT/volumes/vol1" && write 1M "$MNT/volumes/vol1/size" &&
	mkdir "$MNT/volumes/vol2" && write 1M "$MNT/volumes/vol2/size"
ok $? "two volumes"
mkdir "$MNT/nics/nic1" "$MNT/nics/nic2"
ok $? "two NICs"
I=$MNT/instances/vm1
mkdir "$I" && ln -s ../../images/img1 "$I/image" && write 256M "$I/memory" && write running "$I/state"
ok $? "an instance, provisioned and running"
is "$(cat "$I/state") $(readlink "$I/host")" "running ../../hosts/h1" "it runs, placed on h1"
ln -s ../../../volumes/vol2 "$I/volumes/vol2" && ln -s ../../../nics/nic1 "$I/nics/nic1"
ok $? "a volume and a NIC attached to it"
mkdir "$I/snapshots/s1"
ok $? "a snapshot of it"
mkdir "$MNT/instances/vm2"
ok $? "a draft instance without image"
mkdir "$MNT/templates/t1" && ln -s ../../images/img1 "$MNT/templates/t1/image" &&
	mkdir "$MNT/templates/t2" && ln -s ../../instances/vm1/snapshots/s1 "$MNT/templates/t2/snapshot"
ok $? "a template on the image and one on the snapshot"
mkdir "$MNT/instances/vm3" && ln -s ../../templates/t2 "$MNT/instances/vm3/template"
ok $? "a draft instance made from a template"

# People and data: a user (root is an admin), a project with files of its own in work/, a
# dataset with files, linked into the project (its copy in input/ is waited for), and snippets.
U=$MNT/users/u1
mkdir "$U" && write 4711 "$U/uid"
ok $? "a user, mapped to a uid"
mkdir "$U/projects/p1" && write hello "$U/projects/p1/work/notes.txt" &&
	mkdir "$U/projects/p1/work/src" && ln -s ../notes.txt "$U/projects/p1/work/src/notes"
ok $? "a project with a file, a directory and a symlink in work/"
mkdir "$U/datasets/d1" && printf 'a,b\n1,2\n' > "$U/datasets/d1/files/data.csv" &&
	mkdir "$U/datasets/d1/files/more" && write 3 "$U/datasets/d1/files/more/n.txt"
ok $? "a dataset with files"
ln -s ../../../datasets/d1 "$U/projects/p1/datasets/d1"
ok $? "the dataset linked into the project"
for _ in $(seq 1 100); do [ "$(cat "$U/projects/p1/progress")" = "d1 ready 100" ] && break; sleep 0.1; done
is "$(cat "$U/projects/p1/progress")" "d1 ready 100" "its copy in input/ is ready"
mkdir "$U/snippets/py" && write 'print("hello")' "$U/snippets/py/hello.py"
ok $? "a snippet in a directory of snippets"
# public/: the project (with its dataset copy) and the dataset, published and copied
write 1 "$U/projects/p1/shared" && write 1 "$U/datasets/d1/shared"
ok $? "the project and the dataset are shared"
for _ in $(seq 1 100); do [ -d "$MNT/public/projects/p1" ] && [ -d "$MNT/public/datasets/d1" ] && break; sleep 0.1; done
is "$(cat "$U/projects/p1/share_progress") $(cat "$U/datasets/d1/share_progress")" "ready 100 ready 100" \
	"their public copies are ready"
# the per-user service needs [service] template: a remount with it
printf '\n[service]\ntemplate=t1\nvolume_size=1M\n' >> "$EPFS_CONF"
epfs_umount && epfs_mount && write running "$U/service/state"
ok $? "the user's service, started"

# Teaching: a course type, a teacher, a course with a class and an experiment over the image;
# u1 (a student) is in the course through the class, has entered the experiment and is graded.
mkdir "$MNT/course-types/ct1" && mkdir "$MNT/users/t1" && write 4712 "$MNT/users/t1/uid" &&
	write teacher "$MNT/users/t1/role" && mkdir "$MNT/courses/c1" &&
	ln -s ../../course-types/ct1 "$MNT/courses/c1/type" && ln -s ../../users/t1 "$MNT/courses/c1/teacher"
ok $? "a course type, a teacher and a course"
mkdir "$MNT/classes/cl1" && ln -s ../../../users/u1 "$MNT/classes/cl1/students/u1" &&
	ln -s ../../../classes/cl1 "$MNT/courses/c1/classes/cl1"
ok $? "a class with u1, in the course"
X=$MNT/courses/c1/experiments/e1
mkdir "$X" && ln -s ../../../../images/img1 "$X/image" && write 1 "$X/published" &&
	write hi "$X/attachments/sheet.txt"
ok $? "a published experiment with an attachment"
write running "$U/experiments/c1.e1/state" && write 90 "$X/students/u1/completion" && write A "$X/students/u1/grade"
ok $? "u1 entered it and is graded"

find "$MNT" -printf '%P\t%y\t%m\t%l\n' > "$T/real" 2>"$T/find.err"
ok $? "find walks the whole tree"
[ -s "$T/find.err" ] && sed 's/^/# /' "$T/find.err"

# Match each real path to the most specific row (fewest placeholders) whose pattern it fits,
# then every `now` row to the real paths.  Prints "ok|not ok<TAB>description" lines.
check_tree() {
	perl -e '
		use strict; use warnings;
		my ($layout, $real) = @ARGV;
		my $ID = q([a-z0-9][a-z0-9._-]{0,62});
		my %TYPE = (d => "dir", f => "file", l => "symlink");
		sub pattern_re {
			my ($p) = @_;
			my $re = join "", map {
				$_ eq "..." ? ".+" : $_ eq "<file>" ? "[^/]+" : /^<\w+>$/ ? $ID : quotemeta
			} split /(<\w+>|\.\.\.$)/, $p;
			return qr/^$re$/;
		}
		my @rows;
		open my $l, "<", $layout or die "$layout: $!";
		while (<$l>) {
			next if /^#/ || /^\s*$/ || /^\s/;
			my ($path, $type, $mode, $status, $format) = split " ";
			my $holes = () = $path =~ /<\w+>|\.\.\./g;
			push @rows, { path => $path, type => $type, mode => $mode, status => $status,
			              format => $format, re => pattern_re($path), holes => $holes, seen => 0 };
		}
		open my $r, "<", $real or die "$real: $!";
		while (<$r>) {
			chomp;
			my ($path, $y, $m, $target) = split /\t/, $_, -1;
			$path = "." if $path eq "";
			my ($row) = sort { $a->{holes} <=> $b->{holes} } grep { $path =~ $_->{re} } @rows;
			my $type = $TYPE{$y} // "type $y";
			my $mode = sprintf "%04o", oct $m;
			my @bad;
			if (!$row) {
				print "not ok\t$path is described in fs-layout/tree.txt\n";
				print "#\tno row matches this $type of mode $mode\n";
				next;
			}
			$row->{seen}++;
			push @bad, "status is $row->{status}, not now" unless $row->{status} =~ /^now\??$/;
			# an "any" row (what users make themselves) takes every type, and mode "-" every mode
			push @bad, "type is $type, the row says $row->{type}" if $row->{type} ne "any" && $type ne $row->{type};
			push @bad, "mode is $mode, the row says $row->{mode}"
				if $row->{type} ne "symlink" && $row->{mode} ne "-" && $mode ne $row->{mode};
			push @bad, "target $target does not fit $row->{format}"
				if $type eq "symlink" && $row->{type} eq "symlink" && $target !~ pattern_re($row->{format});
			print @bad ? "not ok" : "ok", "\t$path is $row->{path} ($row->{type} $row->{mode} $row->{status})\n";
			print "#\t$_\n" for @bad;
		}
		for my $row (grep { $_->{status} eq "now" } @rows) {
			print $row->{seen} ? "ok" : "not ok", "\t$row->{path} ($row->{status}) exists in the mounted tree\n";
		}
		for my $row (grep { $_->{status} eq "now?" } @rows) {
			print "ok\t$row->{path} (now?) exists", $row->{seen} ? "\n" : " # SKIP its condition does not hold here\n";
		}' "$LAYOUT" "$T/real"
}

while IFS=$'\t' read -r result text; do
	case $result in
	ok) ok 0 "$text" ;;
	"not ok") ok 1 "$text" ;;
	"#") diag "  $text" ;;
	esac
done < <(check_tree)

done_testing
