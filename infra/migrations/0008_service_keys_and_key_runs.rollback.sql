-- Undoes 0008_service_keys_and_key_runs.

DROP INDEX runs_api_key_id_active_idx;

ALTER TABLE runs DROP COLUMN api_key_id;

DROP INDEX invitations_invited_by_api_key_id_pending_idx, invitations_invited_by_pending_idx;

ALTER TABLE invitations DROP COLUMN invited_by_api_key_id;

DROP INDEX api_keys_created_by_api_key_id_idx, api_keys_created_by_idx;

ALTER TABLE api_keys DROP COLUMN created_by_api_key_id;

ALTER TABLE api_keys DROP CONSTRAINT api_keys_organization_id_id_key, DROP COLUMN kind;
