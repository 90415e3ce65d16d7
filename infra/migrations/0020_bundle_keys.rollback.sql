-- Undoes 0020_bundle_keys: objects lose their bundle keys.

DROP TABLE bundle_keys;
