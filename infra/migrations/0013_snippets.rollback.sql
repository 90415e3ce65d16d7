-- Undoes 0013_snippets.

DROP TABLE snippets;
