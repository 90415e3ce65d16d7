-- Drops what 0002_schema created, in reverse order; indexes, constraints and triggers go with
-- their tables.

DROP TABLE audit_events;

DROP TABLE canvases;

DROP TABLE runs;

DROP TABLE schedules;

DROP TABLE dashboard_tiles;

DROP TABLE dashboards;

DROP TABLE visualizations;

DROP TABLE queries;

DROP TABLE datasources;

DROP TABLE invitations;

DROP TABLE api_keys;

DROP TABLE password_resets;

DROP TABLE login_attempts;

DROP TABLE refresh_tokens;

DROP TABLE sessions;

DROP TABLE memberships;

DROP TABLE users;

DROP TABLE organizations;

DROP FUNCTION loupe_touch_updated_at();
