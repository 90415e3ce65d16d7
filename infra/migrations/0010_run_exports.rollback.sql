-- Undoes 0010_run_exports.

DROP TABLE run_exports;
