-- depends: 0013_snippets
--
-- Dashboards people work with: filters declared on the dashboard (shaped as query parameters), each
-- tile's mapping of its query's parameters to them, how old a run may be to serve a tile, and the time
-- zone its relative date ranges are resolved in (null: the organization's).

ALTER TABLE dashboards
    ADD COLUMN filters jsonb NOT NULL DEFAULT '[]'
        CHECK (CASE WHEN jsonb_typeof(filters) = 'array' THEN jsonb_array_length(filters) <= 20 ELSE false END),
    ADD COLUMN max_age_seconds integer NOT NULL DEFAULT 300 CHECK (max_age_seconds BETWEEN 0 AND 86400),
    ADD COLUMN timezone text CHECK (char_length(timezone) BETWEEN 1 AND 64);

ALTER TABLE dashboard_tiles
    ADD COLUMN param_mappings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(param_mappings) = 'object');
