-- depends: 0024_report_share_links
--
-- A delivery keeps a digest of what its runs were started for (each tile's query, its revision and
-- values), so that runs started before a tile's query, mappings or filter defaults changed are started
-- again; and
-- `attempts` now counts an attempt when it begins, so that a tick stopped while drawing or sending
-- (out of time or memory) uses one up.

ALTER TABLE subscription_deliveries ADD COLUMN run_plan_digest text CHECK (char_length(run_plan_digest) = 64);
