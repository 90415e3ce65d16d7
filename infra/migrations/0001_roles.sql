-- Roles the application switches to inside each transaction.
--
-- loupe_app     request handling (SET LOCAL ROLE loupe_app); row-level security confines it to the
--               organization named by the setting loupe.organization_id.
-- loupe_system  pre-authentication and cross-tenant jobs (login, register, refresh, session check,
--               scheduler, janitor). It is not BYPASSRLS (RDS cannot grant that): every table with
--               row-level security gives it an explicit allow-all policy instead.
--
-- Roles belong to the whole cluster, not to this database, so they are created only when missing:
-- another Loupe database in the same cluster may have created them already.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'loupe_app') THEN
        CREATE ROLE loupe_app NOLOGIN;
    END IF;
EXCEPTION
    -- a concurrent migration of another database created it between the check and CREATE ROLE
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'loupe_system') THEN
        CREATE ROLE loupe_system NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The migrating login must be a member to SET ROLE to them.
GRANT loupe_app TO CURRENT_USER;

GRANT loupe_system TO CURRENT_USER;
