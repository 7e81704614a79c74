"""What a Dagster dbt step costs on top of dbt itself, and what each metadata fetch adds.

Not a test: prints a table and writes ``benchmarks/results/dbt_step_overhead.json``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/dbt_step_overhead.py [--customers 1500]

Builds a simulated company once (as the dbt tests do), then on fresh copies of that
warehouse times the first dbt step (``dbt_warehouse_models``: every node not reading
the analytics tables) five ways: the dbt CLI alone; the pipeline's own step (dbt's
events collected while dbt runs, then one row-count query); the Dagster asset
streaming dbt's events as they come; with dagster-dbt's ``fetch_row_counts()``; and
with ``fetch_column_metadata()`` as well. One untimed step first pays the process's
imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "dbt"))

import dagster as dg
from dbt_company import Company, build_company

from benchmarks._harness import remove_dbt_targets, run_dbt_targets, warehouse_resource
from orchestration.assets import dbt as dbt_assets_module

RESULTS = Path(__file__).resolve().parent / "results" / "dbt_step_overhead.json"
FETCHES = {
    "dagster step, events streamed as they come": lambda events: events,
    "+ dagster-dbt fetch_row_counts()": lambda events: events.fetch_row_counts(),
    "+ fetch_row_counts().fetch_column_metadata()": lambda events: events.fetch_row_counts().fetch_column_metadata(),
}
PIPELINE = "the pipeline's step (events collected, one count query)"


def _fresh_copy(company: Company, work: Path, name: str) -> tuple[Company, dict[str, Path]]:
    """A copy of the company's warehouse, and the paths the warehouse resource needs."""
    copy = company.copy_to(work / name)
    folder = copy.root
    return copy, {
        "warehouse": copy.warehouse,
        "landing": folder / "landing",
        "serving": folder / "serving.duckdb",
        "models": folder / "models",
        "dq_docs": folder / "dq_docs",
    }


def _time_cli(copy: Company) -> float:
    start = time.perf_counter()
    process = copy.dbt(["build", "--exclude", dbt_assets_module.ANALYTICS_DOWNSTREAM])
    seconds = time.perf_counter() - start
    assert process.returncode == 0, process.stdout[-2000:]
    return seconds


def _time_dagster_step(paths: dict[str, Path], fetch: Any | None) -> float:
    """Seconds of the dbt_warehouse_models step; ``fetch`` replaces the pipeline's event handling."""

    def build(context, config, dbt, warehouse) -> Iterator[Any]:  # the arguments of the real _build
        yield from fetch(dbt.cli(["build"], context=context).stream())

    warehouse = warehouse_resource(paths)
    real_build = dbt_assets_module._build
    if fetch is not None:
        dbt_assets_module._build = build
    try:
        start = time.perf_counter()
        result = dg.materialize(
            [dbt_assets_module.dbt_warehouse_models],
            resources={"dbt": dbt_assets_module.dbt_resource(warehouse.settings), "warehouse": warehouse},
        )
        seconds = time.perf_counter() - start
    finally:
        dbt_assets_module._build = real_build
    remove_dbt_targets([str(target) for target in run_dbt_targets(result.run_id)])
    assert result.success
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm_dbt_overhead_") as tmp:
        work = Path(tmp)
        print(f"building a company of {args.customers:,} customers ...", flush=True)
        company = build_company(work / "company", customers=args.customers)
        rows = {"dbt CLI alone (dbt build)": _time_cli(_fresh_copy(company, work, "cli")[0])}
        # Warm-up, not reported: the first step in a process also pays imports and manifest loading.
        _time_dagster_step(_fresh_copy(company, work, "warm_up")[1], None)
        rows[PIPELINE] = _time_dagster_step(_fresh_copy(company, work, "pipeline")[1], None)
        for i, (label, fetch) in enumerate(FETCHES.items()):
            rows[label] = _time_dagster_step(_fresh_copy(company, work, f"step{i}")[1], fetch)
    print(f"\nfirst dbt step (dbt_warehouse_models), {args.customers:,} customers, fresh warehouse copy each")
    print(f"{'how':<58} {'s':>7}")
    for label, seconds in rows.items():
        print(f"{label:<58} {seconds:7.1f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"customers": args.customers, "seconds": rows, "load_average": os.getloadavg()[0]}, indent=1)
    )


if __name__ == "__main__":
    main()
