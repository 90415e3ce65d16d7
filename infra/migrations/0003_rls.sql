-- depends: 0002_schema
--
-- Row-level security and the privileges of loupe_app and loupe_system.
--
-- loupe_app sees the rows of one organization: the one named by the transaction-local setting
-- loupe.organization_id (set_config('loupe.organization_id', <id>, true)). With the setting unset
-- or empty it sees nothing. loupe_system sees everything through an explicit allow-all policy on
-- every table. FORCE makes the table owner obey the policies too; superusers never do.
-- The tables without a tenant (login_attempts, password_resets) have no loupe_app policy and no
-- loupe_app privileges: only loupe_system touches them.

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON organizations TO loupe_app
    USING (id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON organizations TO loupe_system USING (true) WITH CHECK (true);

-- A user is visible to loupe_app only through a membership in the current organization.
ALTER TABLE users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON users TO loupe_app
    USING (EXISTS (
        SELECT FROM memberships m
        WHERE m.user_id = users.id
          AND m.organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid
    ))
    WITH CHECK (EXISTS (
        SELECT FROM memberships m
        WHERE m.user_id = users.id
          AND m.organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid
    ));

CREATE POLICY system_access ON users TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON memberships TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON memberships TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON sessions TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON sessions TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON refresh_tokens TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON refresh_tokens TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON api_keys TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON api_keys TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON invitations TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON invitations TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE datasources ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON datasources TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON datasources TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE queries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON queries TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON queries TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE visualizations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON visualizations TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON visualizations TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE dashboards ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON dashboards TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON dashboards TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE dashboard_tiles ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON dashboard_tiles TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON dashboard_tiles TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE schedules ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON schedules TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON schedules TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE runs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON runs TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON runs TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE canvases ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON canvases TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON canvases TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON audit_events TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON audit_events TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE login_attempts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY system_access ON login_attempts TO loupe_system USING (true) WITH CHECK (true);

ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY system_access ON password_resets TO loupe_system USING (true) WITH CHECK (true);

GRANT USAGE ON SCHEMA public TO loupe_app, loupe_system;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE
    organizations, users, memberships, sessions, refresh_tokens, api_keys, invitations,
    datasources, queries, visualizations, dashboards, dashboard_tiles, schedules, runs, canvases,
    audit_events
TO loupe_app, loupe_system;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE login_attempts, password_resets TO loupe_system;

GRANT USAGE, SELECT ON SEQUENCE login_attempts_id_seq TO loupe_system;
