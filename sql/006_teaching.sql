-- Teaching: courses take whole classes, environments know why they stopped,
-- and views give the per-student rows the tree shows.

-- courses/<c>/classes/<cls>@: every student of the class is in the course
CREATE TABLE course_class (
	course_id   VARCHAR(63) NOT NULL,
	class_id    VARCHAR(63) NOT NULL,
	create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (course_id, class_id), KEY (class_id)
) ENGINE=InnoDB;

ALTER TABLE environment
	ADD COLUMN stop_reason VARCHAR(64) NOT NULL DEFAULT '' AFTER last_start,
	ADD COLUMN graded_time DATETIME(6) NULL AFTER comment,
	ADD KEY (instance_id);
ALTER TABLE experiment MODIFY content MEDIUMTEXT NOT NULL DEFAULT '';

-- who is in a course: enrolled one by one, or through a class
CREATE VIEW course_member AS
	SELECT course_id, user_id, MIN(create_time) AS create_time FROM (
		SELECT course_id, user_id, create_time FROM course_student
		UNION ALL
		SELECT cc.course_id, s.user_id, GREATEST(cc.create_time, s.create_time)
		FROM course_class cc JOIN class_student s ON s.class_id = cc.class_id
	) m GROUP BY course_id, user_id;

-- courses/<c>/experiments/<e>/students/<u>/: every member, with its environment if any
CREATE VIEW experiment_student AS
	SELECT CONCAT(x.course_id, '/', x.id) AS experiment_key, m.user_id AS id,
	       x.course_id, x.id AS experiment_id, x.template_id, x.image_id,
	       x.start_time, x.end_time, x.published, x.max_minutes, x.max_attempts,
	       e.instance_id, COALESCE(e.attempts, 0) AS attempts, e.last_start, e.stop_reason,
	       e.completion, e.grade, e.comment, e.graded_time,
	       COALESCE(e.create_time, m.create_time) AS create_time,
	       GREATEST(COALESCE(e.mtime, m.create_time), x.mtime) AS mtime
	FROM experiment x
	JOIN course_member m ON m.course_id = x.course_id
	LEFT JOIN environment e ON e.course_id = x.course_id AND e.experiment_id = x.id AND e.user_id = m.user_id;

-- users/<u>/experiments/<course>.<exp>/: the published experiments of one's courses
CREATE VIEW student_experiment AS
	SELECT m.user_id, CONCAT(x.course_id, '.', x.id) AS id,
	       x.course_id, x.id AS experiment_id, x.name, x.content, x.kind, x.template_id, x.image_id,
	       x.start_time, x.end_time, x.published, x.max_minutes, x.max_attempts,
	       e.instance_id, COALESCE(e.attempts, 0) AS attempts, e.last_start, e.stop_reason,
	       e.completion, e.grade, e.comment, e.graded_time,
	       COALESCE(e.create_time, x.create_time) AS create_time,
	       GREATEST(COALESCE(e.mtime, m.create_time), x.mtime) AS mtime
	FROM experiment x
	JOIN course_member m ON m.course_id = x.course_id
	LEFT JOIN environment e ON e.course_id = x.course_id AND e.experiment_id = x.id AND e.user_id = m.user_id
	WHERE x.published = 1;

-- change_log: an environment row shows in both views
CREATE TRIGGER environment_insert_log AFTER INSERT ON environment FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES
		('students', CONCAT(NEW.course_id, '/', NEW.experiment_id, '/', NEW.user_id)),
		('experiments', CONCAT(NEW.user_id, '/', NEW.course_id, '.', NEW.experiment_id));
CREATE TRIGGER environment_update_log AFTER UPDATE ON environment FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES
		('students', CONCAT(NEW.course_id, '/', NEW.experiment_id, '/', NEW.user_id)),
		('experiments', CONCAT(NEW.user_id, '/', NEW.course_id, '.', NEW.experiment_id));
CREATE TRIGGER environment_delete_log AFTER DELETE ON environment FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES
		('students', CONCAT(OLD.course_id, '/', OLD.experiment_id, '/', OLD.user_id)),
		('experiments', CONCAT(OLD.user_id, '/', OLD.course_id, '.', OLD.experiment_id));

-- an experiment's change shows in every member's view of it
CREATE TRIGGER experiment_update_members_log AFTER UPDATE ON experiment FOR EACH ROW FOLLOWS experiment_update_log
	INSERT INTO change_log (kind, obj_key)
		SELECT 'experiments', CONCAT(m.user_id, '/', NEW.course_id, '.', NEW.id)
		FROM course_member m WHERE m.course_id = NEW.course_id;

-- enrolment changes the course (its students/) and the members' views
CREATE TRIGGER course_student_insert_log AFTER INSERT ON course_student FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', NEW.course_id), ('users', NEW.user_id);
CREATE TRIGGER course_student_delete_log AFTER DELETE ON course_student FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', OLD.course_id), ('users', OLD.user_id);
CREATE TRIGGER course_class_insert_log AFTER INSERT ON course_class FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', NEW.course_id), ('classes', NEW.class_id);
CREATE TRIGGER course_class_delete_log AFTER DELETE ON course_class FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('courses', OLD.course_id), ('classes', OLD.class_id);
CREATE TRIGGER class_student_insert_log AFTER INSERT ON class_student FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('classes', NEW.class_id), ('users', NEW.user_id);
CREATE TRIGGER class_student_delete_log AFTER DELETE ON class_student FOR EACH ROW
	INSERT INTO change_log (kind, obj_key) VALUES ('classes', OLD.class_id), ('users', OLD.user_id);
