-- Undoes 0015_row_policies.

ALTER TABLE runs DROP COLUMN policy_key, DROP COLUMN claims, DROP COLUMN row_filters;

ALTER TABLE api_keys DROP COLUMN claims;

ALTER TABLE memberships DROP COLUMN claims;

DROP TABLE row_policies;
