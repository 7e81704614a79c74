"""Great Expectations on DuckDB: SQL path versus pandas DataFrame, time and peak memory.

``python benchmarks/dq_engines.py [--rows 1000000]`` builds an order-lines table with
a few broken rows in a temporary DuckDB file, then validates the same suite twice,
each in a fresh process so peak memory is the engine's own:

- ``sql``: :func:`crm_warehouse.quality.gx_sql.validate_with_gx`, GX's SQLAlchemy
  path through duckdb-engine (what the warehouse uses);
- ``pandas``: the needed columns fetched with DuckDB ``.df()``, validated by GX's
  pandas engine.

Peak memory is the process's maximum resident set size minus the size after imports.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def _expect(kind: str, severity: str = "error", **kwargs: object) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity}}


SUITE = {
    "name": "raw.orders_order_lines",
    "meta": {"key_columns": ["order_id", "line_number"]},
    "expectations": [
        _expect(
            "expect_table_columns_to_match_set",
            column_set=[
                "order_id",
                "line_number",
                "product_id",
                "category",
                "quantity",
                "unit_price",
                "discount_rate",
                "unit_cost",
            ],
            exact_match=True,
        ),
        _expect("expect_column_values_to_not_be_null", column="order_id"),
        _expect("expect_column_values_to_not_be_null", column="product_id"),
        _expect("expect_compound_columns_to_be_unique", column_list=["order_id", "line_number"]),
        _expect("expect_column_values_to_be_between", column="quantity", min_value=1),
        _expect(
            "expect_column_values_to_be_between", column="discount_rate", min_value=0, max_value=1, strict_max=True
        ),
        _expect(
            "expect_column_values_to_be_in_set",
            "warn",
            column="category",
            value_set=["food", "home", "beauty", "electronics"],
        ),
        _expect("expect_column_mean_to_be_between", "warn", column="unit_price", min_value=1, max_value=500),
    ],
}
COLUMNS = ["order_id", "line_number", "product_id", "category", "quantity", "unit_price", "discount_rate"]


def build_table(path: Path, rows: int) -> None:
    """An order-lines table; every 100,000th row breaks quantity, category and the key."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            """create table raw.orders_order_lines as
            select 'O' || lpad((i // 3)::varchar, 9, '0') as order_id,
                   case when i % 100000 = 7 then 1 else (i % 3 + 1) end::integer as line_number,
                   'P' || lpad((i % 500)::varchar, 4, '0') as product_id,
                   case when i % 100000 = 5 then 'toys'
                        else ['food', 'home', 'beauty', 'electronics'][i % 4 + 1] end as category,
                   case when i % 100000 = 3 then 0 else 1 + i % 5 end::integer as quantity,
                   (10 + (i % 1000) / 10)::decimal(12, 2) as unit_price,
                   ((i % 50) / 100)::decimal(5, 4) as discount_rate,
                   (5 + (i % 500) / 10)::decimal(12, 2) as unit_cost
            from range($rows) as r(i)""",
            {"rows": rows},
        )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(engine: str, path: Path) -> dict:
    """Validate once with ``engine``; runs inside the child process."""
    import great_expectations as gx

    from crm_warehouse.quality.gx_sql import gx_suite, result_format, validate_with_gx
    from crm_warehouse.quality.suites import parse_suite

    suite = parse_suite(SUITE)
    baseline = _peak_mb()
    started = time.perf_counter()
    with duckdb.connect(str(path)) as con:
        if engine == "sql":
            results, _ = validate_with_gx(con, suite, "benchmark")
            failed = sorted(r.expectation for r in results if not r.success)
        else:
            frame = con.execute(f"select {', '.join(COLUMNS)} from raw.orders_order_lines").df()
            context = gx.get_context(mode="ephemeral")
            batch = (
                context.data_sources.add_pandas(name="frame")
                .add_dataframe_asset(name=suite.name)
                .add_batch_definition_whole_dataframe("whole frame")
                .get_batch(batch_parameters={"dataframe": frame})
            )
            outcome = batch.validate(gx_suite(suite), result_format=result_format(suite))
            failed = sorted(r.expectation_config.type for r in outcome.results if not r.success)
    return {
        "engine": engine,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mb_above_imports": round(_peak_mb() - baseline),
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        build_table(path, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB DuckDB file")
        print(f"{'engine':<8} {'seconds':>8} {'peak MB':>8}  failed expectations")
        for engine in ("sql", "pandas"):
            child = subprocess.run(
                [sys.executable, __file__, "--child", engine, str(path)], check=True, capture_output=True, text=True
            )
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{engine:<8} {figures['seconds']:>8} {figures['peak_mb_above_imports']:>8}  {figures['failed']}")


if __name__ == "__main__":
    main()
