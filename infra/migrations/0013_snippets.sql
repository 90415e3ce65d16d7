-- depends: 0012_calendar_time_presets
--
-- Snippets: reusable SQL fragments of an organization, written into a query's SQL as {{> name }} and
-- expanded before the SQL guard sees it (a run records the SQL as expanded).

CREATE TABLE snippets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$'),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    sql text NOT NULL CHECK (char_length(sql) BETWEEN 1 AND 100000),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT snippets_organization_id_name_key UNIQUE (organization_id, name)
);

CREATE INDEX snippets_organization_id_created_at_idx ON snippets (organization_id, created_at);

CREATE INDEX snippets_organization_id_updated_at_idx ON snippets (organization_id, updated_at);

CREATE TRIGGER snippets_touch_updated_at BEFORE UPDATE ON snippets
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

ALTER TABLE snippets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON snippets TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON snippets TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE snippets TO loupe_app, loupe_system;
