-- Public sharing (SPEC sections 2 and 4, seed 001's public tables).
--
-- A project or dataset is shared while `shared` = 1.  Its files are copied to
-- the public area of the file store (public/projects/<p>, public/datasets/<ds>)
-- by a background job: share_status is copying, then ready (or error), and
-- share_progress counts 0 to 100.  Public names are one namespace per kind:
-- public_id is the id while shared and NULL otherwise, so its unique key makes
-- a second user's publish of the same name fail (EEXIST).
ALTER TABLE project
	ADD COLUMN share_status   VARCHAR(16) NOT NULL DEFAULT '' AFTER shared,
	ADD COLUMN share_progress TINYINT UNSIGNED NOT NULL DEFAULT 0 AFTER share_status,
	ADD COLUMN share_time     DATETIME(6) NULL AFTER share_progress,
	ADD COLUMN public_id      VARCHAR(63) AS (IF(shared = 1, id, NULL)) STORED,
	ADD UNIQUE KEY public_id (public_id);
ALTER TABLE dataset
	ADD COLUMN share_status   VARCHAR(16) NOT NULL DEFAULT '' AFTER shared,
	ADD COLUMN share_progress TINYINT UNSIGNED NOT NULL DEFAULT 0 AFTER share_status,
	ADD COLUMN share_time     DATETIME(6) NULL AFTER share_progress,
	ADD COLUMN public_id      VARCHAR(63) AS (IF(shared = 1, id, NULL)) STORED,
	ADD UNIQUE KEY public_id (public_id);

-- A project may link a public dataset (its copy in input/ comes from the
-- public copy); dataset_user_id still names the dataset's owner.
ALTER TABLE project_dataset ADD COLUMN public TINYINT(1) NOT NULL DEFAULT 0 AFTER dataset_id;

-- What public/projects/ and public/datasets/ list: the shared records whose
-- copy is complete.  create_time is when they were published.
CREATE VIEW public_project AS
	SELECT id, user_id AS owner_id, `describe`, share_time AS create_time, mtime
	FROM project WHERE shared = 1 AND share_status = 'ready';
CREATE VIEW public_dataset AS
	SELECT id, user_id AS owner_id, `describe`, share_time AS create_time, mtime
	FROM dataset WHERE shared = 1 AND share_status = 'ready';

-- Other mounts see the public area change with its records.
CREATE TRIGGER project_public_update_log AFTER UPDATE ON project FOR EACH ROW
	INSERT INTO change_log (kind, obj_key)
	SELECT 'public/projects', NEW.id FROM DUAL WHERE NEW.shared = 1 OR OLD.shared = 1;
CREATE TRIGGER project_public_delete_log AFTER DELETE ON project FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) SELECT 'public/projects', OLD.id FROM DUAL WHERE OLD.shared = 1;
CREATE TRIGGER dataset_public_update_log AFTER UPDATE ON dataset FOR EACH ROW
	INSERT INTO change_log (kind, obj_key)
	SELECT 'public/datasets', NEW.id FROM DUAL WHERE NEW.shared = 1 OR OLD.shared = 1;
CREATE TRIGGER dataset_public_delete_log AFTER DELETE ON dataset FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) SELECT 'public/datasets', OLD.id FROM DUAL WHERE OLD.shared = 1;
