"""Charts drawn from a visualization's options and a stored result: the rule that bounds what is drawn,
the Vega-Lite specification of each type, and a dashboard laid out on one page."""
