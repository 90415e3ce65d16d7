-- Undoes 0004_run_cancellation.

ALTER TABLE runs DROP COLUMN cancel_requested_at;
