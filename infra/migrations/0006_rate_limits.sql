-- depends: 0005_alerts
--
-- Application rate limits shared by every Lambda instance: one row per counted request in a sliding
-- window, per bucket (`auth-ip:<address>`, `runs-user:<id>`, ...). Appending never waits on a lock;
-- the janitor removes rows older than a day. No tenant: only loupe_system touches it.

CREATE TABLE rate_limit_hits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket text NOT NULL CHECK (char_length(bucket) BETWEEN 1 AND 400),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX rate_limit_hits_bucket_created_at_idx ON rate_limit_hits (bucket, created_at);

CREATE INDEX rate_limit_hits_created_at_idx ON rate_limit_hits (created_at);

ALTER TABLE rate_limit_hits ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY system_access ON rate_limit_hits TO loupe_system USING (true) WITH CHECK (true);

-- UPDATE only for the janitor's FOR UPDATE SKIP LOCKED.
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE rate_limit_hits TO loupe_system;

GRANT USAGE, SELECT ON SEQUENCE rate_limit_hits_id_seq TO loupe_system;
