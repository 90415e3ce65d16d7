-- depends: 0019_revisions
--
-- Bundles: a saved object's stable key, chosen by whoever writes the bundle, names it across
-- organizations and stacks. A key is an organization's; a resource has at most one. A key whose resource
-- is gone names nothing (and is taken over by the next object applied under it).

CREATE TABLE bundle_keys (
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    resource_type text NOT NULL
        CHECK (
            resource_type IN ('datasource', 'snippet', 'query', 'visualization', 'dashboard', 'canvas', 'schedule')
        ),
    key text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    resource_id uuid NOT NULL,
    PRIMARY KEY (organization_id, resource_type, key),
    UNIQUE (resource_type, resource_id)
);

ALTER TABLE bundle_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON bundle_keys TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON bundle_keys TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE bundle_keys TO loupe_app, loupe_system;

-- A bundle applied into an organization that lacks one of its datasources creates it unconfigured: no
-- connection until an admin sets one; its runs fail `datasource_unconfigured` meanwhile.
ALTER TABLE datasources ALTER COLUMN connection_ciphertext DROP NOT NULL;

ALTER TABLE datasources ADD COLUMN configured boolean GENERATED ALWAYS AS (connection_ciphertext IS NOT NULL) STORED;
