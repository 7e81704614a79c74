"""A simulated company's warehouse for the analytics tests: simulate, ingest, dbt run.

Building takes about a minute, so it is built once per test session (see
:func:`simulated_warehouse`) and only read; tests that write copy the file first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig
from crm_warehouse.ingest import ingest_all
from crm_warehouse.settings import DBT_PROJECT_DIR, load_settings

#: The simulated company of the analytics tests (fixed seed; big enough for stable churn figures).
COMPANY = SimulationConfig(customers=3000, days=730, seed=7)
#: The dbt models the analytics assets read, with everything upstream of them.
DBT_SELECTION = (
    "+int_customer_months__staged",
    "+int_customer_months__activity",
    "+int_order_days__sequenced",
    "+fct_orders",
)


@dataclass(frozen=True)
class SimulatedWarehouse:
    """Paths of a built warehouse and the simulator's ground truth."""

    warehouse_path: Path
    truth_dir: Path
    config: SimulationConfig


def build_warehouse(root: Path, config: SimulationConfig = COMPANY) -> SimulatedWarehouse:
    """Simulate ``config`` under ``root``, ingest it and run the dbt models the analytics read."""
    landing, truth, warehouse = root / "landing", root / "truth", root / "warehouse.duckdb"
    simulate_company(config, landing, truth)
    ingest_all(load_settings({"CRM_DATA_DIR": str(root), "CRM_WAREHOUSE_PATH": str(warehouse)}))
    dbt = Path(sys.executable).parent / "dbt"
    command = [
        str(dbt),
        "run",
        "--quiet",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(root / "dbt_target"),
        "--log-path",
        str(root / "dbt_logs"),
        "--select",
        *DBT_SELECTION,
    ]
    # Target and logs go under root; without usage stats dbt writes no .user.yml beside the profile.
    env = {**os.environ, "CRM_WAREHOUSE_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{done.stdout}\n{done.stderr}")
    return SimulatedWarehouse(warehouse_path=warehouse, truth_dir=truth, config=config)


_BUILT: dict[SimulationConfig, SimulatedWarehouse] = {}


def simulated_warehouse(factory: pytest.TempPathFactory, config: SimulationConfig = COMPANY) -> SimulatedWarehouse:
    """The warehouse of ``config``, built on first use in this session (shared by the test modules)."""
    if config not in _BUILT:
        _BUILT[config] = build_warehouse(factory.mktemp("simulated_company"), config)
    return _BUILT[config]
