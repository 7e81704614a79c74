"""Build a small simulated company into a DuckDB warehouse with the dbt project.

The dbt project builds in two steps, as Dagster runs it: everything that does not
read the Python analytics tables, then those tables are written (here by the
stand-in ``analytics_stub.sql``, plausible scores computed from the marts), then
the models that read them. Every file lives under the given root folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig
from crm_warehouse.ingest import ingest_all
from crm_warehouse.settings import DBT_PROJECT_DIR, load_settings
from crm_warehouse.warehouse.analytics_tables import TABLE_COLUMNS, ensure_table

HERE = Path(__file__).parent
CUSTOMERS = 1500
DAYS = 730
SEED = 7
DBT = Path(sys.executable).parent / "dbt"


@dataclass
class Company:
    """Paths of the built company and the results of its dbt build."""

    root: Path
    landing: Path
    truth: Path
    warehouse: Path
    env: dict[str, str]
    results: list[dict] = field(default_factory=list)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """Read-only connection to the warehouse."""
        return duckdb.connect(str(self.warehouse), read_only=True)

    def dbt(self, args: list[str]) -> subprocess.CompletedProcess:
        """Run a dbt command against this company's warehouse."""
        return run_dbt(args, self.env)[0]

    def copy_to(self, root: Path) -> Company:
        """A copy of the warehouse under ``root`` (same file name, so dbt's catalog name holds)."""
        warehouse = root / "warehouse" / self.warehouse.name
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.warehouse, warehouse)
        return Company(
            root=root, landing=self.landing, truth=self.truth, warehouse=warehouse, env=dbt_env(root, warehouse)
        )


def dbt_env(root: Path, warehouse: Path) -> dict[str, str]:
    """Environment for dbt and sqlfluff: the warehouse, and target/logs kept under ``root``."""
    env = dict(os.environ)
    env.update(
        CRM_WAREHOUSE_PATH=str(warehouse),
        DBT_TARGET_PATH=str(root / "dbt_target"),
        DBT_LOG_PATH=str(root / "dbt_logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return env


def run_dbt(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run a dbt command in the project; returns the process and its run results."""
    process = subprocess.run(
        [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    results_file = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return process, results


class DbtBuildError(RuntimeError):
    """A dbt build of the test company failed."""


def _build(args: list[str], env: dict[str, str]) -> list[dict]:
    process, results = run_dbt(["build", *args], env)
    if process.returncode != 0:
        failed = [f"{r['unique_id']}: {r.get('message')}" for r in results if r["status"] not in ("success", "pass")]
        raise DbtBuildError(f"dbt build {' '.join(args)} failed:\n" + "\n".join(failed or [process.stdout[-3000:]]))
    return results


def build_company(root: Path, customers: int = CUSTOMERS) -> Company:
    """Simulate ``customers`` customers over two years, ingest them and build the dbt project."""
    landing, truth = root / "landing", root / "truth"
    warehouse = root / "warehouse" / "crm.duckdb"
    simulate_company(SimulationConfig(customers=customers, days=DAYS, seed=SEED), landing, truth)
    ingest_all(load_settings({"CRM_DATA_DIR": str(root)}))
    env = dbt_env(root, warehouse)
    built = Company(root=root, landing=landing, truth=truth, warehouse=warehouse, env=env)
    built.results += _build(["--exclude", "source:analytics+"], env)
    with duckdb.connect(str(warehouse)) as con:
        for table in TABLE_COLUMNS:
            ensure_table(con, table)
        con.execute((HERE / "analytics_stub.sql").read_text())
    built.results += _build(["--select", "source:analytics+"], env)
    return built
