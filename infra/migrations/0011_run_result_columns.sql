-- depends: 0010_run_exports
--
-- The columns of a succeeded run's result ({name, type} in order), recorded when it finishes, so that a
-- visualization can be checked against its query's latest result without reading the result itself.
-- Null for runs that did not succeed and for runs from before.

ALTER TABLE runs ADD COLUMN result_columns jsonb;
