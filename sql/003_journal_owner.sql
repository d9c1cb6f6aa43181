-- Which mount runs a journaled operation: its rows are recovered only once
-- that mount's lock (GET_LOCK('epfs-mount-<owner>')) is free, i.e. the mount
-- is gone, so one mount never undoes another's work in flight.
ALTER TABLE journal ADD COLUMN owner VARCHAR(64) NOT NULL DEFAULT '' AFTER id;
