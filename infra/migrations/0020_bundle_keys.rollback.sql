-- Undoes 0020_bundle_keys: objects lose their bundle keys, and datasources never configured go (with
-- what uses them).

DELETE FROM datasources WHERE connection_ciphertext IS NULL;

ALTER TABLE datasources DROP COLUMN configured;

ALTER TABLE datasources ALTER COLUMN connection_ciphertext SET NOT NULL;

DROP TABLE bundle_keys;
