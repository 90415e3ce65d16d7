-- depends: 0007_datasource_login_audit
--
-- API keys of two kinds: a personal key belongs to the member who created it and is revoked when the
-- member leaves the organization; a service key belongs to the organization and outlives its creator.
-- A key or an invitation created with an API key records that key, so removing a member also reaches
-- what their personal keys created. Runs record the API key that started them, so the active-run
-- limit counts per key as it counts per user.

ALTER TABLE api_keys
    ADD COLUMN kind text NOT NULL DEFAULT 'personal' CHECK (kind IN ('personal', 'service')),
    ADD COLUMN created_by_api_key_id uuid,
    ADD CONSTRAINT api_keys_organization_id_id_key UNIQUE (organization_id, id);

ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_created_by_api_key_id_fkey FOREIGN KEY (organization_id, created_by_api_key_id)
        REFERENCES api_keys (organization_id, id) ON DELETE SET NULL (created_by_api_key_id);

CREATE INDEX api_keys_created_by_idx ON api_keys (organization_id, created_by) WHERE kind = 'personal';

CREATE INDEX api_keys_created_by_api_key_id_idx ON api_keys (created_by_api_key_id) WHERE kind = 'personal';

ALTER TABLE invitations
    ADD COLUMN invited_by_api_key_id uuid,
    ADD CONSTRAINT invitations_invited_by_api_key_id_fkey FOREIGN KEY (organization_id, invited_by_api_key_id)
        REFERENCES api_keys (organization_id, id) ON DELETE SET NULL (invited_by_api_key_id);

CREATE INDEX invitations_invited_by_pending_idx ON invitations (organization_id, invited_by)
    WHERE accepted_at IS NULL;

CREATE INDEX invitations_invited_by_api_key_id_pending_idx ON invitations (invited_by_api_key_id)
    WHERE accepted_at IS NULL;

ALTER TABLE runs
    ADD COLUMN api_key_id uuid,
    ADD CONSTRAINT runs_api_key_id_fkey FOREIGN KEY (organization_id, api_key_id)
        REFERENCES api_keys (organization_id, id) ON DELETE SET NULL (api_key_id);

-- The active-run limit counts a key's queued and running runs.
CREATE INDEX runs_api_key_id_active_idx ON runs (api_key_id) WHERE status IN ('queued', 'running');
