-- Undoes 0003_rls in reverse order: privileges, then policies and row-level security.

REVOKE USAGE, SELECT ON SEQUENCE login_attempts_id_seq FROM loupe_system;

REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLE login_attempts, password_resets FROM loupe_system;

REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLE
    organizations, users, memberships, sessions, refresh_tokens, api_keys, invitations,
    datasources, queries, visualizations, dashboards, dashboard_tiles, schedules, runs, canvases,
    audit_events
FROM loupe_app, loupe_system;

REVOKE USAGE ON SCHEMA public FROM loupe_app, loupe_system;

DROP POLICY system_access ON password_resets;

ALTER TABLE password_resets NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON login_attempts;

ALTER TABLE login_attempts NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON audit_events;

DROP POLICY tenant_isolation ON audit_events;

ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON canvases;

DROP POLICY tenant_isolation ON canvases;

ALTER TABLE canvases NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON runs;

DROP POLICY tenant_isolation ON runs;

ALTER TABLE runs NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON schedules;

DROP POLICY tenant_isolation ON schedules;

ALTER TABLE schedules NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON dashboard_tiles;

DROP POLICY tenant_isolation ON dashboard_tiles;

ALTER TABLE dashboard_tiles NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON dashboards;

DROP POLICY tenant_isolation ON dashboards;

ALTER TABLE dashboards NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON visualizations;

DROP POLICY tenant_isolation ON visualizations;

ALTER TABLE visualizations NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON queries;

DROP POLICY tenant_isolation ON queries;

ALTER TABLE queries NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON datasources;

DROP POLICY tenant_isolation ON datasources;

ALTER TABLE datasources NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON invitations;

DROP POLICY tenant_isolation ON invitations;

ALTER TABLE invitations NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON api_keys;

DROP POLICY tenant_isolation ON api_keys;

ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON refresh_tokens;

DROP POLICY tenant_isolation ON refresh_tokens;

ALTER TABLE refresh_tokens NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON sessions;

DROP POLICY tenant_isolation ON sessions;

ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON memberships;

DROP POLICY tenant_isolation ON memberships;

ALTER TABLE memberships NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON users;

DROP POLICY tenant_isolation ON users;

ALTER TABLE users NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

DROP POLICY system_access ON organizations;

DROP POLICY tenant_isolation ON organizations;

ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
