-- depends: 0004_run_cancellation
--
-- Alerts on scheduled runs: each schedule's rules (schedules.alert_rules) keep their state, and every
-- firing is kept with how its notifications went; a firing not yet delivered is an outbox row.
-- Organizations choose how long run records are kept (run_retention_days, a setting): the janitor's
-- lookup of old finished runs and of results to expire use the indexes below.

ALTER TABLE schedules ADD COLUMN alert_state jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(alert_state) = 'object');

CREATE TABLE alert_firings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    schedule_id uuid NOT NULL,
    run_id uuid,
    rule_id uuid NOT NULL,
    rule jsonb NOT NULL CHECK (jsonb_typeof(rule) = 'object'),
    value jsonb,
    webhook_url text CHECK (char_length(webhook_url) <= 2048),
    sns_status text NOT NULL DEFAULT 'pending' CHECK (sns_status IN ('pending', 'sent', 'failed', 'skipped')),
    webhook_status text CHECK (webhook_status IN ('pending', 'sent', 'failed')),
    delivery_attempts integer NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    delivery_error text CHECK (char_length(delivery_error) <= 1000),
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_firings_schedule_id_fkey FOREIGN KEY (organization_id, schedule_id)
        REFERENCES schedules (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT alert_firings_run_id_fkey FOREIGN KEY (run_id) REFERENCES runs ON DELETE SET NULL
);

CREATE INDEX alert_firings_schedule_id_created_at_idx ON alert_firings (schedule_id, created_at);

CREATE INDEX alert_firings_organization_id_created_at_idx ON alert_firings (organization_id, created_at);

CREATE INDEX alert_firings_run_id_idx ON alert_firings (run_id);

-- The delivery outbox: firings whose notifications are not all done.
CREATE INDEX alert_firings_undelivered_idx ON alert_firings (created_at) WHERE delivered_at IS NULL;

-- The janitor: finished runs by age, and succeeded runs whose result is still stored. IF NOT EXISTS: on a
-- large table, build them first with CREATE INDEX CONCURRENTLY (docs/operations.md).
CREATE INDEX IF NOT EXISTS runs_finished_at_idx ON runs (finished_at) WHERE finished_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS runs_stored_result_idx ON runs (finished_at) WHERE result_location IS NOT NULL;

ALTER TABLE alert_firings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON alert_firings TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON alert_firings TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE alert_firings TO loupe_app, loupe_system;
