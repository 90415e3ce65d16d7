-- Undoes 0022_alert_history: resolutions go, firings lose their muting and destination statuses.

DELETE FROM alert_firings WHERE kind = 'resolved';

ALTER TABLE alert_firings DROP COLUMN kind, DROP COLUMN muted, DROP COLUMN destinations;
