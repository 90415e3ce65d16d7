-- depends: 0006_rate_limits
--
-- Per datasource: the functions its admin allows beyond the SQL guard's own, the login findings the
-- admin accepts, and the latest inspection of its login (status, findings, when). Datasources that
-- exist already start `not_inspected`: the runner inspects before their next run.

ALTER TABLE datasources
    ADD COLUMN allowed_functions text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(allowed_functions) <= 100),
    ADD COLUMN accepted_risks text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(accepted_risks) <= 50),
    ADD COLUMN login_audit_status text NOT NULL DEFAULT 'not_inspected'
        CHECK (login_audit_status IN ('passed', 'accepted', 'refused', 'not_inspected')),
    ADD COLUMN login_findings jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(login_findings) = 'array'),
    ADD COLUMN login_inspected_at timestamptz;
