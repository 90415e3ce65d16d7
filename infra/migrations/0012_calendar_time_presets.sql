-- depends: 0011_run_result_columns
--
-- Canvases take the calendar presets that date-range parameters share with them (one vocabulary:
-- loupe.models.time_ranges): today, this_month, last_month, this_quarter, last_quarter, this_year.

ALTER TABLE canvases DROP CONSTRAINT canvases_time_preset_check;
ALTER TABLE canvases ADD CONSTRAINT canvases_time_preset_check CHECK (time_preset IN (
    'last_1h', 'last_24h', 'last_7d', 'last_30d', 'last_90d',
    'today', 'this_month', 'last_month', 'this_quarter', 'last_quarter', 'this_year', 'custom'));
