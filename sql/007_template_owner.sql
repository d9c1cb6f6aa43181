-- Who made a template: teachers change only their own.
ALTER TABLE template ADD COLUMN owner_id VARCHAR(63) NULL AFTER kind;
