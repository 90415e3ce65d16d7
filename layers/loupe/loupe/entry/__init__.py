"""The Lambda entry points, one builder per kind of event source: `http`, `sqs`, `scheduled` and the
deploy-time `custom_resource`. A function's app.py is a few lines that call one of them."""
