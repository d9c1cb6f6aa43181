-- epfs schema, version 1.
-- Table and column names follow the source documents (seed 002's api_web
-- tables: image, volume, network_interface, instance) where they exist.
-- Every record carries create_time and mtime (its last change, kept by the
-- server itself so changes made directly in SQL are seen too).  All times
-- are UTC.  Triggers append every change to change_log, which other mounts
-- poll to invalidate their caches.

CREATE TABLE image (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	os_type     VARCHAR(16) NOT NULL DEFAULT 'linux',
	size        BIGINT UNSIGNED NOT NULL DEFAULT 0,
	`describe`  TEXT NOT NULL DEFAULT '',
	gpu         TINYINT(1) NOT NULL DEFAULT 0,
	vgpu        VARCHAR(63) NOT NULL DEFAULT '',
	cpu         INT UNSIGNED NOT NULL DEFAULT 1,
	memory      BIGINT UNSIGNED NOT NULL DEFAULT 536870912,
	status      VARCHAR(16) NOT NULL DEFAULT 'draft',
	`purge`     TINYINT(1) NOT NULL DEFAULT 0,
	kernel      VARCHAR(4096) NOT NULL DEFAULT '',
	initrd      VARCHAR(4096) NOT NULL DEFAULT '',
	cmdline     VARCHAR(4096) NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE host (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	uri         VARCHAR(1024) NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE `user` (
	id           VARCHAR(63) NOT NULL PRIMARY KEY,
	uid          INT UNSIGNED NULL UNIQUE,
	role         VARCHAR(16) NOT NULL DEFAULT 'student',
	display_name VARCHAR(255) NOT NULL DEFAULT '',
	email        VARCHAR(255) NOT NULL DEFAULT '',
	create_time  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime        DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE instance (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	status      VARCHAR(16) NOT NULL DEFAULT 'draft',
	ip          VARCHAR(64) NOT NULL DEFAULT '',
	host_id     VARCHAR(63) NULL,
	cpu         INT UNSIGNED NOT NULL DEFAULT 1,
	memory      BIGINT UNSIGNED NOT NULL DEFAULT 536870912,
	`describe`  TEXT NOT NULL DEFAULT '',
	image_id    VARCHAR(63) NULL,
	template_id VARCHAR(63) NULL,
	owner_id    VARCHAR(63) NULL,
	progress    TINYINT UNSIGNED NOT NULL DEFAULT 0,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY (image_id), KEY (host_id)
) ENGINE=InnoDB;

CREATE TABLE volume (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	size        BIGINT UNSIGNED NOT NULL DEFAULT 0,
	`describe`  TEXT NOT NULL DEFAULT '',
	status      VARCHAR(16) NOT NULL DEFAULT 'draft',
	instance_id VARCHAR(63) NULL,
	device      VARCHAR(16) NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY (instance_id)
) ENGINE=InnoDB;

CREATE TABLE network_interface (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	mac         CHAR(17) NOT NULL UNIQUE,
	ip          VARCHAR(64) NOT NULL DEFAULT '',
	network     VARCHAR(255) NOT NULL DEFAULT 'default',
	status      VARCHAR(16) NOT NULL DEFAULT 'available',
	instance_id VARCHAR(63) NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY (instance_id)
) ENGINE=InnoDB;

CREATE TABLE snapshot (
	instance_id VARCHAR(63) NOT NULL,
	id          VARCHAR(63) NOT NULL,
	image_id    VARCHAR(63) NULL,
	status      VARCHAR(16) NOT NULL DEFAULT 'creating',
	stale       TINYINT(1) NOT NULL DEFAULT 0,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (instance_id, id), KEY (image_id)
) ENGINE=InnoDB;

CREATE TABLE template (
	id                   VARCHAR(63) NOT NULL PRIMARY KEY,
	image_id             VARCHAR(63) NULL,
	snapshot_instance_id VARCHAR(63) NULL,
	snapshot_id          VARCHAR(63) NULL,
	cpu                  INT UNSIGNED NOT NULL DEFAULT 1,
	memory               BIGINT UNSIGNED NOT NULL DEFAULT 536870912,
	kind                 VARCHAR(16) NOT NULL DEFAULT 'vm',
	`describe`           TEXT NOT NULL DEFAULT '',
	create_time          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime                DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY (image_id)
) ENGINE=InnoDB;

CREATE TABLE project (
	user_id     VARCHAR(63) NOT NULL,
	id          VARCHAR(63) NOT NULL,
	`describe`  TEXT NOT NULL DEFAULT '',
	shared      TINYINT(1) NOT NULL DEFAULT 0,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (user_id, id)
) ENGINE=InnoDB;

CREATE TABLE dataset (
	user_id     VARCHAR(63) NOT NULL,
	id          VARCHAR(63) NOT NULL,
	`describe`  TEXT NOT NULL DEFAULT '',
	shared      TINYINT(1) NOT NULL DEFAULT 0,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (user_id, id)
) ENGINE=InnoDB;

CREATE TABLE project_dataset (
	user_id         VARCHAR(63) NOT NULL,
	project_id      VARCHAR(63) NOT NULL,
	dataset_user_id VARCHAR(63) NOT NULL,
	dataset_id      VARCHAR(63) NOT NULL,
	status          VARCHAR(16) NOT NULL DEFAULT 'copying',
	progress        TINYINT UNSIGNED NOT NULL DEFAULT 0,
	create_time     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime           DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (user_id, project_id, dataset_id),
	KEY (dataset_user_id, dataset_id)
) ENGINE=InnoDB;

CREATE TABLE snippet (
	id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	user_id     VARCHAR(63) NOT NULL,
	parent_id   BIGINT UNSIGNED NULL,
	name        VARCHAR(255) NOT NULL,
	is_dir      TINYINT(1) NOT NULL DEFAULT 0,
	content     MEDIUMBLOB NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	UNIQUE KEY (user_id, parent_id, name)
) ENGINE=InnoDB;

CREATE TABLE course_type (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	`describe`  TEXT NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE course (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	number      VARCHAR(63) NOT NULL DEFAULT '',
	type_id     VARCHAR(63) NULL,
	teacher_id  VARCHAR(63) NULL,
	enrol_key   VARCHAR(255) NOT NULL DEFAULT '',
	`describe`  TEXT NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY (type_id), KEY (teacher_id)
) ENGINE=InnoDB;

CREATE TABLE course_student (
	course_id   VARCHAR(63) NOT NULL,
	user_id     VARCHAR(63) NOT NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (course_id, user_id)
) ENGINE=InnoDB;

CREATE TABLE class (
	id          VARCHAR(63) NOT NULL PRIMARY KEY,
	name        VARCHAR(255) NOT NULL DEFAULT '',
	`describe`  TEXT NOT NULL DEFAULT '',
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime       DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE class_student (
	class_id    VARCHAR(63) NOT NULL,
	user_id     VARCHAR(63) NOT NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (class_id, user_id)
) ENGINE=InnoDB;

CREATE TABLE experiment (
	course_id    VARCHAR(63) NOT NULL,
	id           VARCHAR(63) NOT NULL,
	name         VARCHAR(255) NOT NULL DEFAULT '',
	template_id  VARCHAR(63) NULL,
	image_id     VARCHAR(63) NULL,
	content      MEDIUMTEXT NOT NULL DEFAULT '',
	start_time   DATETIME(6) NULL,
	end_time     DATETIME(6) NULL,
	published    TINYINT(1) NOT NULL DEFAULT 0,
	kind         VARCHAR(16) NOT NULL DEFAULT 'vm',
	max_minutes  INT UNSIGNED NOT NULL DEFAULT 0,
	max_attempts INT UNSIGNED NOT NULL DEFAULT 0,
	create_time  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime        DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (course_id, id), KEY (template_id)
) ENGINE=InnoDB;

CREATE TABLE environment (
	course_id     VARCHAR(63) NOT NULL,
	experiment_id VARCHAR(63) NOT NULL,
	user_id       VARCHAR(63) NOT NULL,
	instance_id   VARCHAR(63) NULL,
	attempts      INT UNSIGNED NOT NULL DEFAULT 0,
	last_start    DATETIME(6) NULL,
	completion    TINYINT UNSIGNED NULL,
	grade         CHAR(1) NULL,
	comment       TEXT NULL,
	create_time   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	mtime         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (course_id, experiment_id, user_id)
) ENGINE=InnoDB;

-- The per-resource error logs (SPEC rule 5); kind '' is the global log.
CREATE TABLE error_log (
	seq        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	kind       VARCHAR(32) NOT NULL,
	obj_key    VARCHAR(255) NOT NULL,
	at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	errno_name VARCHAR(16) NOT NULL,
	op         VARCHAR(64) NOT NULL,
	message    VARCHAR(1024) NOT NULL,
	KEY (kind, obj_key, seq)
) ENGINE=InnoDB;

-- Every change to a record, in order: other mounts read it to invalidate.
CREATE TABLE change_log (
	seq     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	kind    VARCHAR(32) NOT NULL,
	obj_key VARCHAR(255) NOT NULL,
	at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	KEY (at)
) ENGINE=InnoDB;

-- Multi-step operations in flight (SPEC rule 6), resumed or rolled back at start-up.
CREATE TABLE journal (
	id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	op         VARCHAR(64) NOT NULL,
	kind       VARCHAR(32) NOT NULL,
	obj_key    VARCHAR(255) NOT NULL,
	step       VARCHAR(64) NOT NULL DEFAULT 'start',
	data       TEXT NOT NULL DEFAULT '{}',
	created    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	updated    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

-- change_log triggers: one per table and event, for records keyed by id.
CREATE TRIGGER image_insert_log AFTER INSERT ON `image` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('images', NEW.id);
CREATE TRIGGER image_update_log AFTER UPDATE ON `image` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('images', NEW.id);
CREATE TRIGGER image_delete_log AFTER DELETE ON `image` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('images', OLD.id);
CREATE TRIGGER host_insert_log AFTER INSERT ON `host` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('hosts', NEW.id);
CREATE TRIGGER host_update_log AFTER UPDATE ON `host` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('hosts', NEW.id);
CREATE TRIGGER host_delete_log AFTER DELETE ON `host` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('hosts', OLD.id);
CREATE TRIGGER user_insert_log AFTER INSERT ON `user` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('users', NEW.id);
CREATE TRIGGER user_update_log AFTER UPDATE ON `user` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('users', NEW.id);
CREATE TRIGGER user_delete_log AFTER DELETE ON `user` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('users', OLD.id);
CREATE TRIGGER instance_insert_log AFTER INSERT ON `instance` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('instances', NEW.id);
CREATE TRIGGER instance_update_log AFTER UPDATE ON `instance` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('instances', NEW.id);
CREATE TRIGGER instance_delete_log AFTER DELETE ON `instance` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('instances', OLD.id);
CREATE TRIGGER volume_insert_log AFTER INSERT ON `volume` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('volumes', NEW.id);
CREATE TRIGGER volume_update_log AFTER UPDATE ON `volume` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('volumes', NEW.id);
CREATE TRIGGER volume_delete_log AFTER DELETE ON `volume` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('volumes', OLD.id);
CREATE TRIGGER network_interface_insert_log AFTER INSERT ON `network_interface` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('nics', NEW.id);
CREATE TRIGGER network_interface_update_log AFTER UPDATE ON `network_interface` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('nics', NEW.id);
CREATE TRIGGER network_interface_delete_log AFTER DELETE ON `network_interface` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('nics', OLD.id);
CREATE TRIGGER template_insert_log AFTER INSERT ON `template` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('templates', NEW.id);
CREATE TRIGGER template_update_log AFTER UPDATE ON `template` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('templates', NEW.id);
CREATE TRIGGER template_delete_log AFTER DELETE ON `template` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('templates', OLD.id);
CREATE TRIGGER course_type_insert_log AFTER INSERT ON `course_type` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('course-types', NEW.id);
CREATE TRIGGER course_type_update_log AFTER UPDATE ON `course_type` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('course-types', NEW.id);
CREATE TRIGGER course_type_delete_log AFTER DELETE ON `course_type` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('course-types', OLD.id);
CREATE TRIGGER course_insert_log AFTER INSERT ON `course` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', NEW.id);
CREATE TRIGGER course_update_log AFTER UPDATE ON `course` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', NEW.id);
CREATE TRIGGER course_delete_log AFTER DELETE ON `course` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', OLD.id);
CREATE TRIGGER class_insert_log AFTER INSERT ON `class` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('classes', NEW.id);
CREATE TRIGGER class_update_log AFTER UPDATE ON `class` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('classes', NEW.id);
CREATE TRIGGER class_delete_log AFTER DELETE ON `class` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('classes', OLD.id);
CREATE TRIGGER snapshot_insert_log AFTER INSERT ON `snapshot` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('snapshots', CONCAT(NEW.instance_id, '/', NEW.id));
CREATE TRIGGER snapshot_update_log AFTER UPDATE ON `snapshot` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('snapshots', CONCAT(NEW.instance_id, '/', NEW.id));
CREATE TRIGGER snapshot_delete_log AFTER DELETE ON `snapshot` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('snapshots', CONCAT(OLD.instance_id, '/', OLD.id));
CREATE TRIGGER project_insert_log AFTER INSERT ON `project` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('projects', CONCAT(NEW.user_id, '/', NEW.id));
CREATE TRIGGER project_update_log AFTER UPDATE ON `project` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('projects', CONCAT(NEW.user_id, '/', NEW.id));
CREATE TRIGGER project_delete_log AFTER DELETE ON `project` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('projects', CONCAT(OLD.user_id, '/', OLD.id));
CREATE TRIGGER dataset_insert_log AFTER INSERT ON `dataset` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('datasets', CONCAT(NEW.user_id, '/', NEW.id));
CREATE TRIGGER dataset_update_log AFTER UPDATE ON `dataset` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('datasets', CONCAT(NEW.user_id, '/', NEW.id));
CREATE TRIGGER dataset_delete_log AFTER DELETE ON `dataset` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('datasets', CONCAT(OLD.user_id, '/', OLD.id));
CREATE TRIGGER experiment_insert_log AFTER INSERT ON `experiment` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('experiments', CONCAT(NEW.course_id, '/', NEW.id));
CREATE TRIGGER experiment_update_log AFTER UPDATE ON `experiment` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('experiments', CONCAT(NEW.course_id, '/', NEW.id));
CREATE TRIGGER experiment_delete_log AFTER DELETE ON `experiment` FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('experiments', CONCAT(OLD.course_id, '/', OLD.id));
