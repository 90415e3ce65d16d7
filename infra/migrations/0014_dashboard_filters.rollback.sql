-- Undoes 0014_dashboard_filters.

ALTER TABLE dashboard_tiles DROP COLUMN param_mappings;

ALTER TABLE dashboards DROP COLUMN timezone, DROP COLUMN max_age_seconds, DROP COLUMN filters;
