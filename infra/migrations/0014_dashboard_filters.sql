-- depends: 0013_snippets
--
-- Dashboards people work with: filters declared on the dashboard (shaped as query parameters), each
-- tile's mapping of its query's parameters to them, and how old a run may be to serve a tile.

ALTER TABLE dashboards
    ADD COLUMN filters jsonb NOT NULL DEFAULT '[]'
        CHECK (CASE WHEN jsonb_typeof(filters) = 'array' THEN jsonb_array_length(filters) <= 20 ELSE false END),
    ADD COLUMN max_age_seconds integer NOT NULL DEFAULT 300 CHECK (max_age_seconds BETWEEN 0 AND 86400);

ALTER TABLE dashboard_tiles
    ADD COLUMN param_mappings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(param_mappings) = 'object');
