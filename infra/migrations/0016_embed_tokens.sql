-- depends: 0015_row_policies
--
-- Embed tokens: a guest's signed token names one of these rows (its jti), which says what the guest may
-- see (one dashboard), with which values locked, which filters editable, which claims bind the row
-- policies naming embed tokens, from which origins; revoked one by one or per resource. Runs started by
-- a guest record the token.

CREATE TABLE embed_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    resource_type text NOT NULL CHECK (resource_type IN ('dashboard')),
    resource_id uuid NOT NULL,
    locked jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(locked) = 'object'),
    editable_filters text[] NOT NULL DEFAULT '{}',
    claims jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object'),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_by_api_key_id uuid REFERENCES api_keys ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX embed_tokens_organization_id_resource_idx ON embed_tokens (organization_id, resource_type, resource_id);

CREATE INDEX embed_tokens_expires_at_idx ON embed_tokens (expires_at);

CREATE TRIGGER embed_tokens_touch_updated_at BEFORE UPDATE ON embed_tokens
    FOR EACH ROW EXECUTE FUNCTION loupe_touch_updated_at();

ALTER TABLE embed_tokens ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON embed_tokens TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON embed_tokens TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE embed_tokens TO loupe_app, loupe_system;

ALTER TABLE runs ADD COLUMN embed_token_id uuid REFERENCES embed_tokens ON DELETE SET NULL;

CREATE INDEX runs_embed_token_id_active_idx ON runs (embed_token_id)
    WHERE embed_token_id IS NOT NULL AND status IN ('queued', 'running');
