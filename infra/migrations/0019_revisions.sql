-- depends: 0018_guest_resources
--
-- History: every change to a query, visualization, dashboard (with its tiles and filters) or canvas
-- keeps a revision, its full definition as the API shows it, numbered from 1 per resource, with its
-- author (a member or an API key). History is append-only: a restore adds a revision. The janitor prunes
-- revisions past the organization's retention (a count and an age), never a resource's newest.

CREATE TABLE revisions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    resource_type text NOT NULL CHECK (resource_type IN ('query', 'visualization', 'dashboard', 'canvas')),
    resource_id uuid NOT NULL,
    number integer NOT NULL CHECK (number >= 1),
    definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    author_user_id uuid REFERENCES users ON DELETE SET NULL,
    author_api_key_id uuid REFERENCES api_keys ON DELETE SET NULL,
    restored_from integer CHECK (restored_from >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (resource_type, resource_id, number)
);

CREATE INDEX revisions_organization_id_resource_idx ON revisions (organization_id, resource_type, resource_id, number DESC);

ALTER TABLE revisions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON revisions TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON revisions TO loupe_system USING (true) WITH CHECK (true);

-- Never updated: the janitor's UPDATE is only the row lock (FOR UPDATE SKIP LOCKED) its purge takes.
GRANT SELECT, INSERT, DELETE ON TABLE revisions TO loupe_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE revisions TO loupe_system;
