-- depends: 0014_dashboard_filters
--
-- Row policies: a predicate over a datasource table's columns, bound from claims, applied by rewriting a
-- run's SQL for the principals it names. Members and API keys carry claims; a run records the policies
-- and claims it ran under (its identity for the cache and for who may read its rows).

CREATE TABLE row_policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    datasource_id uuid NOT NULL REFERENCES datasources ON DELETE CASCADE,
    table_name text NOT NULL CHECK (char_length(table_name) BETWEEN 3 AND 300),
    predicate text NOT NULL CHECK (char_length(predicate) BETWEEN 1 AND 4000),
    applies_to jsonb NOT NULL CHECK (jsonb_typeof(applies_to) = 'object'),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX row_policies_organization_id_datasource_id_idx ON row_policies (organization_id, datasource_id);

CREATE INDEX row_policies_organization_id_created_at_idx ON row_policies (organization_id, created_at);

CREATE INDEX row_policies_organization_id_updated_at_idx ON row_policies (organization_id, updated_at);

CREATE TRIGGER row_policies_touch_updated_at BEFORE UPDATE ON row_policies
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

ALTER TABLE row_policies ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON row_policies TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON row_policies TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE row_policies TO loupe_app, loupe_system;

ALTER TABLE memberships ADD COLUMN claims jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object');

ALTER TABLE api_keys ADD COLUMN claims jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object');

-- The policies (table and predicate) and claims a run's SQL was rewritten with; `policy_key` digests both
-- (NULL: no policy applied), and only a principal under the same key may read the run's rows.
ALTER TABLE runs
    ADD COLUMN row_filters jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(row_filters) = 'array'),
    ADD COLUMN claims jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object'),
    ADD COLUMN policy_key text CHECK (char_length(policy_key) = 64);
