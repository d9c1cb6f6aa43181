#!/bin/bash
# The database layer: migrations once and under a lock, reconnection, and a
# dead server failing fast instead of hanging.
. "$(dirname "$0")/lib.sh"

trap epfs_teardown EXIT
db_start || { echo "Bail out! cannot start MariaDB"; exit 1; }
mkdir -p "$STORAGE"; write_config

# two mounts start at once on an empty database: one migrates, both work
M1=$T/m1 M2=$T/m2; mkdir -p "$M1" "$M2"
"$EPFS_BIN" -f -o "config=$EPFS_CONF" "$M1" >>"$T/e1.log" 2>&1 & P1=$!
"$EPFS_BIN" -f -o "config=$EPFS_CONF" "$M2" >>"$T/e2.log" 2>&1 & P2=$!
for _ in $(seq 200); do mountpoint -q "$M1" && mountpoint -q "$M2" && break; sleep 0.05; done
mountpoint -q "$M1" && mountpoint -q "$M2"; ok $? "two mounts started together on a fresh database"
is "$(sql 'SELECT COUNT(*) FROM schema_migrations')" "$(ls "$EPFS_SRCDIR"/sql/[0-9]*.sql | wc -l)" "each migration is recorded once"
fusermount3 -u "$M1"; fusermount3 -u "$M2"; wait $P1 $P2

epfs_mount
is "$(sql 'SELECT COUNT(*) FROM schema_migrations')" "$(ls "$EPFS_SRCDIR"/sql/[0-9]*.sql | wc -l)" "a restart applies nothing again"
mkdir "$MNT/images/a"; ok $? "works after migration"

# every statement is prepared: names with quotes are data
write "it's \"quoted\"; DROP TABLE image; --" "$MNT/images/a/name"
is "$(cat "$MNT/images/a/name")" "it's \"quoted\"; DROP TABLE image; --" "quotes are stored as data"
is "$(sql "SELECT COUNT(*) FROM image")" 1 "and nothing else happened"

# the server restarts: the pool reconnects
db_stop; db_start
sleep 1.2   # let cached records expire
is "$(cat "$MNT/images/a/name")" "it's \"quoted\"; DROP TABLE image; --" "reads work after a server restart"
write renamed "$MNT/images/a/name"; ok $? "writes too"

# the server is down: operations fail within the timeout, never hang
db_stop
sleep 1.2
start=$(date +%s)
out=$(timeout 30 cat "$MNT/images/a/describe" 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ]; ok $? "a read with the database down fails"
like "$out" "Resource temporarily unavailable|Connection timed out|Input/output error" "with EAGAIN, ETIMEDOUT or EIO"
[ $(( $(date +%s) - start )) -lt 15 ]; ok $? "within the timeout"
like "$(cat "$MNT/.epfs/health")" '^database down' "health says the database is down"
db_start
sleep 0.5
is "$(cat "$MNT/images/a/name")" renamed "and everything is back when the server is"

done_testing
