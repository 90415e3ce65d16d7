-- depends: 0015_row_policies
--
-- Guest access: an embed token (a signed, short-lived token naming one of these rows by its jti) or a
-- share link (a long-lived opaque secret, stored as its digest). The row says what the guest may see
-- (one dashboard), with which values locked, which filters editable, which claims bind the row policies
-- naming embed tokens or share links, from which origins; revoked one by one or per resource; a share
-- counts its accesses (no personal data). Runs started by a guest record the row.

CREATE TABLE embed_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    kind text NOT NULL DEFAULT 'embed' CHECK (kind IN ('embed', 'share')),
    secret_hash bytea UNIQUE CHECK (octet_length(secret_hash) = 32),
    resource_type text NOT NULL CHECK (resource_type IN ('dashboard')),
    resource_id uuid NOT NULL,
    locked jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(locked) = 'object'),
    editable_filters text[] NOT NULL DEFAULT '{}',
    claims jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object'),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz,
    revoked_at timestamptz,
    access_count bigint NOT NULL DEFAULT 0,
    last_accessed_at timestamptz,
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_by_api_key_id uuid REFERENCES api_keys ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- An embed token always expires and is signed; a share link is a stored secret, may live on.
    CONSTRAINT embed_tokens_kind_shape CHECK (
        (kind = 'embed' AND secret_hash IS NULL AND expires_at IS NOT NULL)
        OR (kind = 'share' AND secret_hash IS NOT NULL)
    )
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
