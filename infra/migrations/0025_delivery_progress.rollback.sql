-- Undoes 0025_delivery_progress.

ALTER TABLE subscription_deliveries DROP COLUMN run_plan_digest;
