-- Undoes 0016_embed_tokens.

ALTER TABLE runs DROP COLUMN embed_token_id;

DROP TABLE embed_tokens;
