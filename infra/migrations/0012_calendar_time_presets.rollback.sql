-- Undoes 0012_calendar_time_presets. Canvases on a calendar preset go back to the rolling range nearest
-- it (the older vocabulary has no calendar periods).

UPDATE canvases SET time_preset = CASE
    WHEN time_preset = 'today' THEN 'last_24h'
    WHEN time_preset IN ('this_month', 'last_month') THEN 'last_30d'
    ELSE 'last_90d' END
WHERE time_preset IN ('today', 'this_month', 'last_month', 'this_quarter', 'last_quarter', 'this_year');
ALTER TABLE canvases DROP CONSTRAINT canvases_time_preset_check;
ALTER TABLE canvases ADD CONSTRAINT canvases_time_preset_check
    CHECK (time_preset IN ('last_1h', 'last_24h', 'last_7d', 'last_30d', 'last_90d', 'custom'));
