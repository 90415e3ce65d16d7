-- Undoes 0023_subscriptions.

DROP TABLE subscription_deliveries;

DROP TABLE subscriptions;
