-- depends: 0020_bundle_keys
--
-- Destinations: where reports and alerts are delivered (a mail list, a Slack-compatible incoming
-- webhook, a generic webhook, a prefix of the deployment's delivery bucket), shared by an
-- organization's subscriptions and alert rules. A webhook's
-- URL and its signing secrets are sealed together (secrets_ciphertext, KMS per organization): the API
-- shows the URL's scheme and host only, and a signing secret once.

CREATE TABLE destinations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    type text NOT NULL CHECK (type IN ('email', 'slack', 'webhook', 's3')),
    recipients jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(recipients) = 'array'),
    prefix text CHECK (char_length(prefix) BETWEEN 1 AND 512),
    url_display text CHECK (char_length(url_display) <= 300),
    secrets_ciphertext bytea,
    -- A rotated signing secret still signs, beside the new one, until then.
    previous_secret_until timestamptz,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name),
    CHECK ((type IN ('slack', 'webhook')) = (secrets_ciphertext IS NOT NULL)),
    CHECK ((type = 's3') = (prefix IS NOT NULL)),
    CHECK (type <> 'email' OR jsonb_array_length(recipients) BETWEEN 1 AND 50)
);

CREATE INDEX destinations_organization_id_created_at_idx ON destinations (organization_id, created_at);

CREATE INDEX destinations_organization_id_updated_at_idx ON destinations (organization_id, updated_at);

CREATE TRIGGER destinations_touch_updated_at BEFORE UPDATE ON destinations
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

ALTER TABLE destinations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON destinations TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON destinations TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE destinations TO loupe_app, loupe_system;
