-- Undoes 0008_service_keys_and_key_runs.

ALTER TABLE runs DROP COLUMN api_key_id;

ALTER TABLE invitations DROP COLUMN invited_by_api_key_id;

ALTER TABLE api_keys DROP COLUMN created_by_api_key_id;

ALTER TABLE api_keys DROP CONSTRAINT api_keys_organization_id_id_key, DROP COLUMN kind;
