-- Undoes 0011_run_result_columns.

ALTER TABLE runs DROP COLUMN result_columns;
