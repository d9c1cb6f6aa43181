-- Templates based on a snapshot (homework, seed 000), instances made from
-- them, and the per-user service (seed 001).

-- templates/<t>/snapshot@ reads the snapshot's key "<instance>/<snapshot>"
ALTER TABLE template
	ADD COLUMN snapshot_key VARCHAR(127) AS (CONCAT(snapshot_instance_id, '/', snapshot_id)) VIRTUAL,
	ADD KEY (snapshot_instance_id, snapshot_id);

-- an instance made from a template based on a snapshot: its root disk is a
-- clone of <base_instance_id>.root@<base_snapshot_id>
ALTER TABLE instance
	ADD COLUMN base_instance_id VARCHAR(63) NULL AFTER template_id,
	ADD COLUMN base_snapshot_id VARCHAR(63) NULL AFTER base_instance_id,
	ADD KEY (base_instance_id, base_snapshot_id),
	ADD KEY (template_id);

-- users/<u>/service/: one row per user that has started it (id = the user)
CREATE TABLE service (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	instance_id VARCHAR(63) NULL,
	volume_id   VARCHAR(63) NULL,
	last_start  DATETIME(6) NULL,
	stop_reason VARCHAR(64) NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TRIGGER service_insert_log AFTER INSERT ON `service` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('service', NEW.id);
CREATE TRIGGER service_update_log AFTER UPDATE ON `service` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('service', NEW.id);
CREATE TRIGGER service_delete_log AFTER DELETE ON `service` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('service', OLD.id);
