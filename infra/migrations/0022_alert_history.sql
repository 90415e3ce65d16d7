-- depends: 0021_destinations
--
-- Alert history: besides its firings, a rule's resolutions (true, then false again) are listed where its
-- firings are; a firing while the rule is muted is kept, marked, and not notified; and each firing's
-- delivery to the rule's destinations has a status per destination.

ALTER TABLE alert_firings
    ADD COLUMN kind text NOT NULL DEFAULT 'fired' CHECK (kind IN ('fired', 'resolved')),
    ADD COLUMN muted boolean NOT NULL DEFAULT false,
    ADD COLUMN destinations jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(destinations) = 'object');
