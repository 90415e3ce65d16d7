-- Undoes 0006_rate_limits.

DROP TABLE rate_limit_hits;
