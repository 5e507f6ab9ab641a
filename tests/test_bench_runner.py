"""The benchmark runner keeps docs/benchmarks.md's table in step with bench/results.json."""

from bench.runner import TABLE_END, TABLE_START, docs_with_table

FIGURES = {
    "pages.home.rps": {
        "value": 1234.5,
        "unit": "per_s",
        "baseline": 3000.0,
        "ratio": 0.412,
        "note": "",
        "measured_on": "2026-12-01",
    },
    "pages.home.queries": {"value": 0, "unit": "queries", "baseline": 0, "ratio": None},
}


def test_the_table_between_the_markers_is_rewritten_and_the_rest_kept():
    text = f"# Benchmarks\n\nintro\n{TABLE_START}\n| old | row |\n{TABLE_END}\n\n## Notes\nkept\n"
    out = docs_with_table(text, FIGURES)
    assert out.startswith("# Benchmarks\n\nintro\n") and out.endswith("## Notes\nkept\n")
    assert "| old | row |" not in out
    assert (
        "| `pages.home.rps` | 1,234.5 per_s | 3,000 | 0.412 | 2026-12-01 "
        "| `make bench BENCH=pages` |" in out
    )
    assert "| `pages.home.queries` | 0 queries | 0 | – | – | `make bench BENCH=pages` |" in out


def test_a_page_without_markers_is_left_alone():
    assert docs_with_table("no table here\n", FIGURES) == "no table here\n"
