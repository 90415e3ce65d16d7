-- Undoes 0009_run_provenance.

ALTER TABLE runs DROP COLUMN notices, DROP COLUMN origin, DROP COLUMN parameter_types, DROP COLUMN query_revision;

ALTER TABLE queries DROP COLUMN revision;
