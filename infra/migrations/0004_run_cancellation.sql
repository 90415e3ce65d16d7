-- depends: 0003_rls
--
-- Cancelling a running run: the API records the request, the runner's watchdog sees it and cancels
-- the statement inside the datasource.

ALTER TABLE runs ADD COLUMN cancel_requested_at timestamptz;
