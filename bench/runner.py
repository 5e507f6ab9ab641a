"""One runner for every benchmark: fixed data size per benchmark, a warm-up, several runs,
medians; each figure stored with its unit and the baseline measured in the same run.

    python -m bench.runner [name ...]     # all benchmarks when no name is given

Results are merged into bench/results.json:
{"machine": {...}, "figures": {"<area>.<name>": {"value", "unit", "baseline", "ratio", "note"}}}
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TABLE_START, TABLE_END = "<!-- figures:start -->", "<!-- figures:end -->"


@dataclass
class Figure:
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    note: str = ""


def timed(function: Callable[[], object], *, runs: int) -> float:
    """Median wall time of `runs` calls, in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def compared(value: float, baseline: float, unit: str, note: str) -> Figure:
    return Figure(
        round(value, 3),
        unit,
        round(baseline, 3),
        round(value / baseline, 3) if baseline else None,
        note,
    )


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(figures: dict[str, Figure]) -> None:
    """Merge into bench/results.json (each figure dated), then rewrite the table of
    docs/benchmarks.md from it, so the page always shows what the file holds."""
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"figures": {}}
    existing["machine"] = machine()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    existing["figures"].update(
        {name: {**asdict(figure), "measured_on": today} for name, figure in figures.items()}
    )
    existing["figures"] = dict(sorted(existing["figures"].items()))
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    if DOCS.exists():
        DOCS.write_text(docs_with_table(DOCS.read_text(), existing["figures"]))


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def docs_with_table(text: str, figures: dict[str, dict]) -> str:
    """`text` with the lines between the table markers replaced by a table of `figures`."""
    rows = [
        "| figure | value | baseline | ratio | date | reproduce |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, figure in figures.items():
        rows.append(
            f"| `{name}` | {_number(figure['value'])} {figure['unit']} "
            f"| {_number(figure['baseline'])} | {_number(figure['ratio'])} "
            f"| {figure.get('measured_on', '–')} | `make bench BENCH={name.split('.')[0]}` |"
        )
    before, start, rest = text.partition(TABLE_START)
    _, end, after = rest.partition(TABLE_END)
    if not start or not end:
        return text
    return before + start + "\n" + "\n".join(rows) + "\n" + end + after


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    from bench import database

    database.ensure()
    import django

    django.setup()
    from bench import campaigns, pages, preorders, search

    benchmarks = {
        "search": search.run,
        "pages": pages.run,
        "preorders": preorders.run,
        "campaigns": campaigns.run,
    }
    chosen = argv or list(benchmarks)
    for name in chosen:
        print(f"== {name}", flush=True)
        figures = benchmarks[name]()
        for key, figure in figures.items():
            print(
                f"  {key:<40} {figure.value:>10} {figure.unit:<8} baseline {figure.baseline} "
                f"ratio {figure.ratio}",
                flush=True,
            )
        write(figures)
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
