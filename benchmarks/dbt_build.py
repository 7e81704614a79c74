"""Time a full dbt build of a simulated company: ``python benchmarks/dbt_build.py --customers 100000``.

Simulates and ingests into ``--work`` (reusing a warehouse already there), then builds the
dbt project in the two steps Dagster runs (everything not reading the analytics tables;
stand-in analytics tables from tests/dbt/analytics_stub.sql; the rest), then an
incremental re-run. Prints the seconds of each step, row counts and the stage agreement
with the simulator's truth.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig
from crm_warehouse.ingest import ingest_all
from crm_warehouse.settings import DBT_PROJECT_DIR, PROJECT_ROOT, load_settings

STUB_SQL = PROJECT_ROOT / "tests" / "dbt" / "analytics_stub.sql"
DBT = Path(sys.executable).parent / "dbt"


def timed(label: str, step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:8.1f} s", flush=True)
    return seconds


def dbt(args: list[str], env: dict[str, str]) -> None:
    command = [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    process = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{process.stdout[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for landing, truth and warehouse (default: a temp folder)"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dbt_bench_"))
    landing, truth, warehouse = work / "landing", work / "truth", work / "crm.duckdb"
    env = dict(os.environ)
    env.update(
        CRM_WAREHOUSE_PATH=str(warehouse),
        DBT_TARGET_PATH=str(work / "dbt_target"),
        DBT_LOG_PATH=str(work / "dbt_logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    print(f"{args.customers:,} customers, {args.days} days, in {work}")
    if not warehouse.exists():
        config = SimulationConfig(customers=args.customers, days=args.days)
        timed("simulate", lambda: simulate_company(config, landing, truth))
        settings = load_settings(
            {"CRM_DATA_DIR": str(work), "CRM_WAREHOUSE_PATH": str(warehouse), "CRM_LANDING_DIR": str(landing)}
        )
        timed("ingest", lambda: ingest_all(settings))

    def stub() -> None:
        with duckdb.connect(str(warehouse)) as con:
            con.execute(STUB_SQL.read_text())

    total = timed(
        "dbt build --full-refresh (without analytics)",
        lambda: dbt(["build", "--full-refresh", "--exclude", "source:analytics+"], env),
    )
    total += timed("analytics stand-in tables", stub)
    total += timed("dbt build (models reading analytics)", lambda: dbt(["build", "--select", "source:analytics+"], env))
    print(f"{'full dbt build, all steps':<44} {total:8.1f} s")
    timed("dbt build, incremental re-run (all)", lambda: dbt(["build"], env))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in ("marts.fct_order_lines", "intermediate.int_customer_months__panel", "marts.dim_customers"):
            print(f"{table:<44} {con.execute(f'select count(*) from {table}').fetchone()[0]:>12,} rows")
        agreement = con.execute(
            """select avg(case when h.stage_code = t.true_stage then 1.0 else 0.0 end)
               from read_parquet($path) as t
               left join marts.customer_lifecycle_history as h
                 on h.customer_id = t.customer_id and h.month_start = date_trunc('month', t.month_end)""",
            {"path": str(truth / "stages_monthly.parquet")},
        ).fetchone()[0]
    print(f"{'stage agreement with truth':<44} {agreement:8.1%}")


if __name__ == "__main__":
    main()
