-- The roles are deliberately not dropped: roles are cluster-wide, and other Loupe databases in the
-- same cluster share them (DROP ROLE would also fail while any database still grants them
-- privileges). Only what 0001 granted is revoked. Membership is cluster-wide too, so this also
-- takes it away for other databases of this cluster; re-applying 0001 anywhere grants it again.

REVOKE loupe_system FROM CURRENT_USER;

REVOKE loupe_app FROM CURRENT_USER;
