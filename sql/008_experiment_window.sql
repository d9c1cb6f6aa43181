-- An experiment's window is never inverted, however its start and end are
-- written (one at a time, or both at once through info.json).
ALTER TABLE experiment ADD CONSTRAINT experiment_window
	CHECK (start_time IS NULL OR end_time IS NULL OR start_time < end_time);
