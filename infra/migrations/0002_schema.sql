-- depends: 0001_roles
--
-- Loupe's metadata tables, their constraints, indexes and updated_at triggers.
--
-- Every tenant table carries organization_id. Child rows point at their parent through a composite
-- key (organization_id, parent_id), so a row can never reference another organization's resource:
-- foreign-key checks bypass row-level security, the composite key does not.
-- CHECK constraints mirror the API validation; rules that need more than one row (tile overlap, the
-- last admin of an organization) live in the services.

CREATE FUNCTION loupe_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER organizations_touch_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CONSTRAINT users_email_key UNIQUE
        CONSTRAINT users_email_check
        CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL CHECK (password_hash <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER users_touch_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);

CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TRIGGER memberships_touch_updated_at BEFORE UPDATE ON memberships
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

-- A session lives inside one membership: removing a user from an organization ends their sessions
-- there.
CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    user_agent text CHECK (char_length(user_agent) <= 512),
    ip inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    UNIQUE (organization_id, id),
    CONSTRAINT sessions_membership_fkey FOREIGN KEY (organization_id, user_id)
        REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE INDEX sessions_live_idx ON sessions (user_id, expires_at) WHERE revoked_at IS NULL;

CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    session_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    spent_at timestamptz,
    CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (organization_id, session_id)
        REFERENCES sessions (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

-- No tenant: attempts are counted per email before anyone is authenticated.
CREATE TABLE login_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    ip inet,
    succeeded boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_attempts_email_created_at_idx ON login_attempts (email, created_at);

CREATE INDEX login_attempts_created_at_idx ON login_attempts (created_at);

-- No tenant: a user asks for a reset before choosing an organization.
CREATE TABLE password_resets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

CREATE INDEX password_resets_expires_at_idx ON password_resets (expires_at);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    prefix text NOT NULL CHECK (char_length(prefix) BETWEEN 1 AND 32),
    key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    last_used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_keys_organization_id_created_at_idx ON api_keys (organization_id, created_at);

CREATE TRIGGER api_keys_touch_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    email text NOT NULL
        CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    invited_by uuid REFERENCES users ON DELETE SET NULL,
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invitations_organization_id_created_at_idx ON invitations (organization_id, created_at);

CREATE TABLE datasources (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    type text NOT NULL CHECK (type IN ('postgres', 'mysql', 'duckdb')),
    connection_ciphertext bytea NOT NULL,
    connection_display text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT datasources_organization_id_name_key UNIQUE (organization_id, name),
    UNIQUE (organization_id, id)
);

CREATE INDEX datasources_organization_id_created_at_idx ON datasources (organization_id, created_at);

CREATE INDEX datasources_organization_id_updated_at_idx ON datasources (organization_id, updated_at);

CREATE TRIGGER datasources_touch_updated_at BEFORE UPDATE ON datasources
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

-- A datasource with saved queries cannot be deleted (deleting the organization still cascades).
CREATE TABLE queries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text CHECK (char_length(description) <= 10000),
    datasource_id uuid NOT NULL,
    sql text NOT NULL CHECK (char_length(sql) BETWEEN 1 AND 100000),
    parameters jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(parameters) = 'array'),
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT queries_datasource_id_fkey FOREIGN KEY (organization_id, datasource_id)
        REFERENCES datasources (organization_id, id) ON DELETE RESTRICT
);

CREATE INDEX queries_organization_id_created_at_idx ON queries (organization_id, created_at);

CREATE INDEX queries_organization_id_updated_at_idx ON queries (organization_id, updated_at);

CREATE INDEX queries_tags_idx ON queries USING gin (tags);

CREATE INDEX queries_datasource_id_idx ON queries (datasource_id);

CREATE TRIGGER queries_touch_updated_at BEFORE UPDATE ON queries
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE visualizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    query_id uuid NOT NULL,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    type text NOT NULL CHECK (type IN ('table', 'line', 'bar', 'area', 'pie', 'scatter', 'counter', 'pivot')),
    options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT visualizations_query_id_fkey FOREIGN KEY (organization_id, query_id)
        REFERENCES queries (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX visualizations_organization_id_created_at_idx ON visualizations (organization_id, created_at);

CREATE INDEX visualizations_organization_id_updated_at_idx ON visualizations (organization_id, updated_at);

CREATE INDEX visualizations_tags_idx ON visualizations USING gin (tags);

CREATE INDEX visualizations_query_id_idx ON visualizations (query_id);

CREATE TRIGGER visualizations_touch_updated_at BEFORE UPDATE ON visualizations
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE dashboards (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text CHECK (char_length(description) <= 10000),
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id)
);

CREATE INDEX dashboards_organization_id_created_at_idx ON dashboards (organization_id, created_at);

CREATE INDEX dashboards_organization_id_updated_at_idx ON dashboards (organization_id, updated_at);

CREATE INDEX dashboards_tags_idx ON dashboards USING gin (tags);

CREATE TRIGGER dashboards_touch_updated_at BEFORE UPDATE ON dashboards
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

-- A 12-column grid. Overlapping tiles are rejected by the dashboard service, not here.
CREATE TABLE dashboard_tiles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    dashboard_id uuid NOT NULL,
    visualization_id uuid,
    text text CHECK (char_length(text) <= 10000),
    x integer NOT NULL CHECK (x >= 0),
    y integer NOT NULL CHECK (y >= 0),
    w integer NOT NULL CHECK (w >= 1),
    h integer NOT NULL CHECK (h BETWEEN 1 AND 24),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dashboard_tiles_width_check CHECK (x + w <= 12),
    CONSTRAINT dashboard_tiles_content_check CHECK (visualization_id IS NOT NULL OR text IS NOT NULL),
    CONSTRAINT dashboard_tiles_dashboard_id_fkey FOREIGN KEY (organization_id, dashboard_id)
        REFERENCES dashboards (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT dashboard_tiles_visualization_id_fkey FOREIGN KEY (organization_id, visualization_id)
        REFERENCES visualizations (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX dashboard_tiles_dashboard_id_idx ON dashboard_tiles (dashboard_id);

CREATE INDEX dashboard_tiles_visualization_id_idx ON dashboard_tiles (visualization_id);

CREATE TABLE schedules (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    query_id uuid NOT NULL,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    cron text NOT NULL CHECK (char_length(cron) BETWEEN 1 AND 200),
    timezone text NOT NULL DEFAULT 'UTC' CHECK (char_length(timezone) BETWEEN 1 AND 64),
    parameters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    enabled boolean NOT NULL DEFAULT true,
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
    next_run_at timestamptz,
    last_run_at timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    disabled_reason text CHECK (char_length(disabled_reason) <= 1000),
    alert_rules jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(alert_rules) = 'array'),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT schedules_query_id_fkey FOREIGN KEY (organization_id, query_id)
        REFERENCES queries (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX schedules_organization_id_created_at_idx ON schedules (organization_id, created_at);

CREATE INDEX schedules_organization_id_updated_at_idx ON schedules (organization_id, updated_at);

CREATE INDEX schedules_tags_idx ON schedules USING gin (tags);

CREATE INDEX schedules_query_id_idx ON schedules (query_id);

-- The scheduler's due lookup: enabled schedules with next_run_at <= now().
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;

CREATE TRIGGER schedules_touch_updated_at BEFORE UPDATE ON schedules
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

-- A run keeps its own copy of the SQL and parameter values, so it outlives the query or schedule
-- that started it (their ids become NULL). enqueued_at is the outbox mark: NULL means the run is
-- not yet sent to the queue. cache_key hashes the datasource, the normalized SQL and the values.
CREATE TABLE runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    query_id uuid,
    schedule_id uuid,
    datasource_id uuid NOT NULL,
    sql text NOT NULL CHECK (char_length(sql) BETWEEN 1 AND 100000),
    parameters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    cache_key text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    error jsonb CHECK (jsonb_typeof(error) = 'object'),
    row_count bigint CHECK (row_count >= 0),
    byte_size bigint CHECK (byte_size >= 0),
    truncated boolean NOT NULL DEFAULT false,
    result_location text,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_expires_at timestamptz,
    enqueued_at timestamptz,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT runs_finished_after_started_check CHECK (finished_at >= started_at),
    CONSTRAINT runs_query_id_fkey FOREIGN KEY (organization_id, query_id)
        REFERENCES queries (organization_id, id) ON DELETE SET NULL (query_id),
    CONSTRAINT runs_schedule_id_fkey FOREIGN KEY (organization_id, schedule_id)
        REFERENCES schedules (organization_id, id) ON DELETE SET NULL (schedule_id),
    CONSTRAINT runs_datasource_id_fkey FOREIGN KEY (organization_id, datasource_id)
        REFERENCES datasources (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX runs_organization_id_created_at_idx ON runs (organization_id, created_at);

CREATE INDEX runs_organization_id_status_idx ON runs (organization_id, status);

CREATE INDEX runs_query_id_created_at_idx ON runs (query_id, created_at);

CREATE INDEX runs_schedule_id_created_at_idx ON runs (schedule_id, created_at);

CREATE INDEX runs_datasource_id_idx ON runs (datasource_id);

-- The reaper: running runs whose lease has lapsed.
CREATE INDEX runs_lease_idx ON runs (lease_expires_at) WHERE status = 'running';

-- The outbox relay: runs not yet sent to the queue.
CREATE INDEX runs_outbox_idx ON runs (created_at) WHERE enqueued_at IS NULL;

-- max_age_seconds: the newest succeeded run with the same cache key.
CREATE INDEX runs_cache_idx ON runs (organization_id, cache_key, finished_at) WHERE status = 'succeeded';

CREATE TABLE canvases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    time_preset text NOT NULL
        CHECK (time_preset IN ('last_1h', 'last_24h', 'last_7d', 'last_30d', 'last_90d', 'custom')),
    time_from timestamptz,
    time_to timestamptz,
    nodes jsonb NOT NULL DEFAULT '[]'
        CHECK (CASE WHEN jsonb_typeof(nodes) = 'array' THEN jsonb_array_length(nodes) <= 500 ELSE false END),
    edges jsonb NOT NULL DEFAULT '[]'
        CHECK (CASE WHEN jsonb_typeof(edges) = 'array' THEN jsonb_array_length(edges) <= 2000 ELSE false END),
    tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT canvases_time_range_check
        CHECK (time_preset <> 'custom' OR (time_from IS NOT NULL AND time_to IS NOT NULL)),
    CONSTRAINT canvases_time_order_check CHECK (time_from < time_to)
);

CREATE INDEX canvases_organization_id_created_at_idx ON canvases (organization_id, created_at);

CREATE INDEX canvases_organization_id_updated_at_idx ON canvases (organization_id, updated_at);

CREATE INDEX canvases_tags_idx ON canvases USING gin (tags);

CREATE TRIGGER canvases_touch_updated_at BEFORE UPDATE ON canvases
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE audit_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    actor_id uuid REFERENCES users ON DELETE SET NULL,
    action text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 100),
    target_type text CHECK (char_length(target_type) BETWEEN 1 AND 100),
    target_id uuid,
    ip inet,
    metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_organization_id_created_at_idx ON audit_events (organization_id, created_at DESC);

CREATE INDEX audit_events_organization_id_action_idx ON audit_events (organization_id, action);

CREATE INDEX audit_events_organization_id_actor_id_idx ON audit_events (organization_id, actor_id);
