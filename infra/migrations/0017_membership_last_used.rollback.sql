-- Undoes 0017_membership_last_used.

ALTER TABLE memberships DROP COLUMN last_used_at;
