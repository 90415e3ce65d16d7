"""Benchmarks of the Lambda handlers against baselines measured in the same run (`make bench`)."""

import sys


def out(text: str = "") -> None:
    """A line of a benchmark's report, written at once (the next figure may take minutes)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
