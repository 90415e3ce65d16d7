-- Undoes 0021_destinations.

DROP TABLE destinations;
