-- Undoes 0018_guest_resources: guests of visualizations and queries lose their access.

DELETE FROM embed_tokens WHERE resource_type <> 'dashboard';

ALTER TABLE embed_tokens DROP COLUMN downloads;

ALTER TABLE embed_tokens DROP CONSTRAINT embed_tokens_resource_type_check;

ALTER TABLE embed_tokens ADD CONSTRAINT embed_tokens_resource_type_check CHECK (resource_type IN ('dashboard'));
