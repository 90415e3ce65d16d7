"""Benchmarks of the Lambda handlers against baselines measured in the same run (`make bench`)."""
