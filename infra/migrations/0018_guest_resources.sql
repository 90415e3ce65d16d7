-- depends: 0017_membership_last_used
--
-- A guest may be given a visualization or a query's result as well as a dashboard, and a share link or
-- embed token may let its guest download the rows it shows.

ALTER TABLE embed_tokens DROP CONSTRAINT embed_tokens_resource_type_check;

ALTER TABLE embed_tokens ADD CONSTRAINT embed_tokens_resource_type_check
    CHECK (resource_type IN ('dashboard', 'visualization', 'query'));

ALTER TABLE embed_tokens ADD COLUMN downloads boolean NOT NULL DEFAULT false;
