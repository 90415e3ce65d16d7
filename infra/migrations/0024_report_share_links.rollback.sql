-- Undoes 0024_report_share_links.

ALTER TABLE subscriptions
    DROP COLUMN share_secret_ciphertext,
    DROP COLUMN share_id;
