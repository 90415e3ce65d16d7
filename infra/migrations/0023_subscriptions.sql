-- depends: 0022_alert_history
--
-- Subscriptions: a dashboard, visualization or query delivered on a cron as pictures and files to
-- destinations, run as its owner. Each firing is a delivery row (an outbox the scheduler's tick works
-- through: it starts the runs, waits for them, draws, sends, and retries what failed with a backoff).

CREATE TABLE subscriptions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    owner_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    resource_type text NOT NULL CHECK (resource_type IN ('dashboard', 'visualization', 'query')),
    resource_id uuid NOT NULL,
    cron text NOT NULL CHECK (char_length(cron) BETWEEN 1 AND 200),
    timezone text NOT NULL DEFAULT 'UTC',
    filters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(filters) = 'object'),
    formats jsonb NOT NULL CHECK (jsonb_typeof(formats) = 'array'),
    destination_ids jsonb NOT NULL CHECK (jsonb_typeof(destination_ids) = 'array'),
    enabled boolean NOT NULL DEFAULT true,
    next_run_at timestamptz,
    last_status text CHECK (last_status IN ('delivered', 'failed')),
    last_error text CHECK (char_length(last_error) <= 2000),
    last_delivered_at timestamptz,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX subscriptions_due_idx ON subscriptions (next_run_at) WHERE enabled;

CREATE INDEX subscriptions_organization_id_created_at_idx ON subscriptions (organization_id, created_at);

CREATE INDEX subscriptions_organization_id_updated_at_idx ON subscriptions (organization_id, updated_at);

CREATE TRIGGER subscriptions_touch_updated_at BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

CREATE TABLE subscription_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    subscription_id uuid NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    run_ids jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(run_ids) = 'array'),
    destinations jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(destinations) = 'object'),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    error text CHECK (char_length(error) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX subscription_deliveries_pending_idx ON subscription_deliveries (next_attempt_at)
    WHERE status = 'pending';

CREATE INDEX subscription_deliveries_subscription_id_idx
    ON subscription_deliveries (subscription_id, created_at);

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE subscription_deliveries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON subscriptions TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON subscriptions TO loupe_system USING (true) WITH CHECK (true);

CREATE POLICY tenant_isolation ON subscription_deliveries TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON subscription_deliveries TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE subscriptions, subscription_deliveries TO loupe_app, loupe_system;
