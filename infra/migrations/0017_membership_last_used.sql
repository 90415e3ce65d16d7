-- depends: 0016_embed_tokens
--
-- People in many organizations: a session acts in one membership at a time, and a login enters the one
-- used last.

ALTER TABLE memberships ADD COLUMN last_used_at timestamptz;
