-- Per-resource error logs as one text per resource, read with a plain join
-- (the GROUP_CONCAT over error_log made a temporary table per record read).
-- error_log keeps the global log (kind '').
CREATE TABLE error_text (
	kind    VARCHAR(32) NOT NULL,
	obj_key VARCHAR(255) NOT NULL,
	text    MEDIUMTEXT NOT NULL,
	mtime   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (kind, obj_key)
) ENGINE=InnoDB;

INSERT INTO error_text (kind, obj_key, text)
	SELECT kind, obj_key, GROUP_CONCAT(CONCAT(DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%sZ'), ' ', errno_name, ' ', op, ': ',
	                                          message) ORDER BY seq SEPARATOR '\n')
	FROM error_log WHERE kind <> '' GROUP BY kind, obj_key;
DELETE FROM error_log WHERE kind <> '';

-- other mounts see new error lines like any other change
CREATE TRIGGER error_text_insert_log AFTER INSERT ON error_text FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES (NEW.kind, NEW.obj_key);
CREATE TRIGGER error_text_update_log AFTER UPDATE ON error_text FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES (NEW.kind, NEW.obj_key);
