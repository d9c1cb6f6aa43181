#!/bin/bash
# Database cost: reading a directory costs one query whatever its size, and
# opening an attribute file at most one.  Counted with the server's own
# statement counter; the change_log poller is off so nothing else runs.
. "$(dirname "$0")/lib.sh"
EPFS_SYNC_INTERVAL=0
epfs_setup

executed() { sql "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'" | cut -f2; }

sql "INSERT INTO image (id, name, size, status)
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
     SELECT CONCAT('img', i), CONCAT('Image ', i), i * 1048576, 'available' FROM n"
mkdir "$MNT/volumes/v1"
sleep 1.2   # nothing cached

a=$(executed); ls "$MNT/images" > /dev/null; b=$(executed)
is "$((b - a))" 1 "listing 300 images costs one query"
sleep 1.2
a=$(executed); ls -l "$MNT/images" > /dev/null; b=$(executed)
is "$((b - a))" 1 "ls -l of 300 images too"
a=$(executed); find "$MNT/images" -type f -printf '%s\n' > /dev/null; b=$(executed)
[ $((b - a)) -le 1 ]; ok $? "so does the walk of every attribute of them ($((b - a)) queries)"
sleep 1.2
a=$(executed); ls -l "$MNT/images/img7" > /dev/null; b=$(executed)
[ $((b - a)) -le 2 ]; ok $? "ls -l of one image: at most a query for it and one for its directory ($((b - a)))"
sleep 1.2
a=$(executed); cat "$MNT/volumes/v1/name" > /dev/null; b=$(executed)
[ $((b - a)) -le 2 ]; ok $? "open and read of an attribute from cold: lookups plus at most one ($((b - a)))"
a=$(executed); cat "$MNT/volumes/v1/size" "$MNT/volumes/v1/status" "$MNT/volumes/v1/info.json" > /dev/null; b=$(executed)
is "$((b - a))" 0 "files of a record just read cost no more queries"

done_testing
