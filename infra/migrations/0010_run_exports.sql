-- depends: 0009_run_provenance
--
-- Exports of a run's stored result, built in the background by the export function: one row per run
-- and format (asking again reuses it; a failed one is queued again), its file beside the result, gone
-- with it (expires_at is when the organization's result retention removes the result).

CREATE TABLE run_exports (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations ON DELETE CASCADE,
    run_id uuid NOT NULL REFERENCES runs ON DELETE CASCADE,
    format text NOT NULL CHECK (format IN ('csv', 'json', 'xlsx', 'parquet')),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    error jsonb CHECK (jsonb_typeof(error) = 'object'),
    object_key text CHECK (char_length(object_key) <= 1024),
    byte_size bigint CHECK (byte_size >= 0),
    row_count bigint CHECK (row_count >= 0),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_by uuid REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    expires_at timestamptz,
    CONSTRAINT run_exports_finished_after_started_check CHECK (finished_at >= started_at),
    CONSTRAINT run_exports_succeeded_has_file_check CHECK (status <> 'succeeded' OR object_key IS NOT NULL),
    CONSTRAINT run_exports_run_id_format_key UNIQUE (run_id, format)
);

CREATE INDEX run_exports_organization_id_created_at_idx ON run_exports (organization_id, created_at);

ALTER TABLE run_exports ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON run_exports TO loupe_app
    USING (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('loupe.organization_id', true), '')::uuid);

CREATE POLICY system_access ON run_exports TO loupe_system USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE run_exports TO loupe_app, loupe_system;
