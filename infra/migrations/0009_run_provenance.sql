-- depends: 0008_service_keys_and_key_runs
--
-- Runs say what produced them. A saved query counts its versions (`revision`, from 1, up by one on each
-- change of its SQL or parameters) and a run records the revision it ran; a run records the declared
-- type of each value, so the runner binds a date as a date wherever it is used; its origin; and the
-- notices the datasource raised, bounded in count and length by the runner.

ALTER TABLE queries
    ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1);

ALTER TABLE runs
    ADD COLUMN query_revision integer CHECK (query_revision >= 1),
    ADD COLUMN parameter_types jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameter_types) = 'object'),
    ADD COLUMN origin text NOT NULL DEFAULT 'interactive'
        CHECK (origin IN ('interactive', 'schedule', 'dashboard', 'refresh', 'subscription', 'embed', 'share')),
    ADD COLUMN notices jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(notices) = 'array' AND jsonb_array_length(notices) <= 20);

-- Runs from before: a schedule's runs say so; the others were started by someone.
UPDATE runs SET origin = 'schedule' WHERE schedule_id IS NOT NULL;
