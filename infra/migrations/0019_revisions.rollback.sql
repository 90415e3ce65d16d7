-- Undoes 0019_revisions: the history goes.

DROP TABLE revisions;
