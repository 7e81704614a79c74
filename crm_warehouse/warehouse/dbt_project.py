"""What Python reads of the dbt project: vars and seeds (typed), and the profile of a configuration.

The thresholds live in ``dbt_project/dbt_project.yml`` and the label tables in
``dbt_project/seeds/``; Python code that must agree with the models reads them here
instead of repeating them.
"""

from __future__ import annotations

import csv
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml  # a dependency of dbt and Dagster

from crm_warehouse.warehouse.duckdb_connection import duckdb_settings

if TYPE_CHECKING:
    from crm_warehouse.settings import Settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
#: The dbt profile of the project; its warehouse path comes from the environment
#: (CRM_WAREHOUSE_PATH) when dbt is run by hand.
PROJECT_PROFILES = DBT_PROJECT_DIR / "profiles.yml"
PROFILE_NAME = "crm_warehouse"


@cache
def _vars() -> dict[str, Any]:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def dbt_var_int(name: str) -> int:
    """A whole-number var of ``dbt_project.yml``."""
    value = _vars()[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"dbt var {name}={value!r} is not a whole number")
    return value


def _seed_rows(seed: str) -> list[dict[str, str]]:
    with (DBT_PROJECT_DIR / "seeds" / f"{seed}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def relationship_stages() -> tuple[str, ...]:
    """Stages in which a customer has a relationship to lose (seed ``lifecycle_stages``, in lifecycle order)."""
    rows = sorted(_seed_rows("lifecycle_stages"), key=lambda row: int(row["lifecycle_order"]))
    return tuple(row["stage_code"] for row in rows if row["is_relationship_stage"] == "true")


#: The output of the project's profile each engine (settings.engine) builds with.
ENGINE_TARGETS = {"duckdb": "dev", "spark": "spark"}


def write_profile(settings: Settings) -> Path:
    """Write the project's dbt profile for a configuration; returns the folder (``settings.dbt_profiles_dir``).

    The target is the output of ``settings.engine``: DuckDB with the configured
    warehouse path and memory bounds, or Spark's Thrift server with the configured
    host, port and user. Orchestrated dbt steps point ``--profiles-dir`` here, so the
    configuration reaches dbt without going through the process environment.
    """
    profiles = yaml.safe_load(PROJECT_PROFILES.read_text(encoding="utf-8"))
    profile = profiles[PROFILE_NAME]
    profile["target"] = ENGINE_TARGETS[settings.engine]
    duckdb = profile["outputs"][ENGINE_TARGETS["duckdb"]]
    # config_options reach duckdb.connect once; dbt-duckdb runs `settings` as SET on every new
    # cursor, and DuckDB refuses to SET temp_directory again once it has spilled there.
    duckdb.update(path=str(settings.warehouse_path), config_options=duckdb_settings(settings))
    spark = profile["outputs"][ENGINE_TARGETS["spark"]]
    spark.update(host=settings.spark_thrift_host, port=settings.spark_thrift_port)
    if settings.spark_thrift_user:
        spark["user"] = settings.spark_thrift_user
    profiles_dir = settings.dbt_profiles_dir
    profiles_dir.mkdir(parents=True, exist_ok=True)
    target = profiles_dir / "profiles.yml"
    text = "# Written by crm_warehouse.warehouse.dbt_project.write_profile from dbt_project/profiles.yml.\n"
    text += yaml.safe_dump(profiles, sort_keys=False)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return profiles_dir


def run_vars(as_of: date, **more: str) -> dict[str, str]:
    """The run-time dbt vars of an orchestrated build: the resolved as-of date and any extras."""
    return {"as_of_date": as_of.isoformat(), **more}
