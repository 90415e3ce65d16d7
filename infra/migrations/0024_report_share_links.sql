-- depends: 0023_subscriptions
--
-- A report's chat messages link to its resource through a share link of its own: the subscription keeps
-- which one (revoked, expired or gone, it is replaced at the next delivery) and its secret, sealed under
-- the organization's key, so that every message can carry the same link.

ALTER TABLE subscriptions
    ADD COLUMN share_id uuid REFERENCES embed_tokens ON DELETE SET NULL,
    ADD COLUMN share_secret_ciphertext bytea;
