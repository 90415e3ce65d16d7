-- Undoes 0005_alerts.

DROP INDEX runs_stored_result_idx;

DROP INDEX runs_finished_at_idx;

DROP TABLE alert_firings;

ALTER TABLE schedules DROP COLUMN alert_state;
