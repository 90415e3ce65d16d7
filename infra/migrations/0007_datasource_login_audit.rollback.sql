-- Undoes 0007_datasource_login_audit.

ALTER TABLE datasources
    DROP COLUMN login_inspected_at,
    DROP COLUMN login_findings,
    DROP COLUMN login_audit_status,
    DROP COLUMN accepted_risks,
    DROP COLUMN allowed_functions;
