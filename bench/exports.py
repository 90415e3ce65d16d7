"""Benchmarks of background exports: a stored result exported to CSV in S3 by the export function (in
a process of its own) against `psql \\copy (...) to stdout csv | gzip` of the same rows in the same run,
and the function's peak memory as the rows grow. `python -m bench.exports` runs this section alone.

BENCH_EXPORT_ROWS lists the row counts (default 200000,1000000; add 10000000 for the large figure).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import out, runs
from loupe.api.prefix import API_PREFIX

RESULTS = Path(__file__).resolve().parent / "exports.json"
# The export function's memory: its peak must not grow with the rows (within 10% from the smallest).
MEMORY_GROWTH_TARGET = 1.1


@dataclass(frozen=True)
class ExportFigure:
    rows: int
    export_s: float
    baseline_s: float
    peak_rss_mb: float
    file_bytes: int

    @property
    def ratio(self) -> float:
        return self.export_s / self.baseline_s


def row_counts() -> list[int]:
    configured = os.environ.get("BENCH_EXPORT_ROWS", "200000,1000000")
    counts = sorted({int(part) for part in configured.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise runs.RunsBenchError("BENCH_EXPORT_ROWS must list positive row counts")
    return counts


def exported(session: runs.BenchSession, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A CSV export of the run, built by the export function in a process of its own."""
    api = session.api
    asked = api.call("POST", f"{API_PREFIX}/runs/{run_id}/exports", {"format": "csv"})
    child = runs._child(session.variables["LOUPE_EXPORTS_QUEUE_URL"], "ExportFunction")
    export = api.call("GET", f"{API_PREFIX}/runs/{run_id}/exports/{asked['id']}")
    if export["status"] != "succeeded":
        raise runs.RunsBenchError(f"the export ended {export['status']}: {export['error']}")
    return export, child


def measure(server_url: str, database_url: str) -> list[ExportFigure]:
    counts = row_counts()
    figures = []
    with ExitStack() as stack:
        session = runs.open_session(stack, server_url, database_url, counts[-1])
        for rows in counts:
            run, _ = runs.stored_run(session, rows)
            baseline_s, _ = runs.baseline_copy(session.source_url, rows)
            export, child = exported(session, run["id"])
            if export["rows"] != rows:
                raise runs.RunsBenchError(f"the export wrote {export['rows']} rows, not {rows}")
            figures.append(
                ExportFigure(rows, child["seconds"], baseline_s, child["peak_rss_mb"], export["bytes"])
            )
    return figures


def table(figures: list[ExportFigure], figure: Any) -> list[Any]:
    """`make bench`'s rows (bench.run.Figure): each export against psql | gzip, and the peak memory of
    the largest against the smallest."""
    rows = [
        figure(f"{item.rows:,} rows x 6 export to CSV", "s", item.export_s, item.baseline_s, None)
        for item in figures
    ]
    smallest, largest = figures[0], figures[-1]
    if largest is not smallest:
        label = f"export peak RSS {largest.rows:,} vs {smallest.rows:,}"
        rows.append(figure(label, "MB", largest.peak_rss_mb, smallest.peak_rss_mb, MEMORY_GROWTH_TARGET))
    return rows


def details(figures: list[ExportFigure]) -> dict[str, Any]:
    return {
        "baseline": 'psql -c "\\copy (same SQL) to stdout csv" | gzip, same server and port',
        "exports": [asdict(item) | {"ratio": item.ratio} for item in figures],
    }


def report(figures: list[ExportFigure]) -> bool:
    """Prints the table; True when the memory stays flat as the rows grow."""
    out(f"{'rows':>12} {'export s':>9} {'psql|gzip s':>12} {'ratio':>6} {'peak RSS MB':>12} {'file MB':>9}")
    for item in figures:
        out(
            f"{item.rows:>12,} {item.export_s:>9.2f} {item.baseline_s:>12.2f} {item.ratio:>6.2f}"
            f" {item.peak_rss_mb:>12.1f} {item.file_bytes / 1024**2:>9.1f}"
        )
    growth = figures[-1].peak_rss_mb / figures[0].peak_rss_mb
    out(f"peak RSS growth {figures[0].rows:,} -> {figures[-1].rows:,} rows: {growth:.2f}x")
    return growth <= MEMORY_GROWTH_TARGET


def main() -> int:
    """This section alone, on its own migrated database."""
    from bench.run import bench_database, configure_environment, postgres_server

    with postgres_server() as server_url, bench_database(server_url) as database_url:
        configure_environment(database_url)
        figures = measure(server_url, database_url)
    flat = report(figures)
    RESULTS.write_text(json.dumps(details(figures), indent=2) + "\n")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
