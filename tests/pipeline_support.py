"""Helpers for tests that run the real pipeline on a data folder (used by conftest fixtures)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from crm_simulator import SimulationConfig
from crm_warehouse.settings import load_settings
from orchestration.definitions import build_definitions
from orchestration.resources import WarehouseResource

PROJECT_ROOT = Path(__file__).parent.parent
HELD_BACK_DAYS = 7


@dataclass(frozen=True)
class Company:
    root: Path
    landing: Path
    truth: Path
    config: SimulationConfig


@dataclass(frozen=True)
class BuiltPipeline:
    """A data folder after one successful ``full_pipeline`` run on the test company.

    ``held_back`` are landing files (relative paths) of the last days, not delivered
    yet, so tests can deliver "new" data. Tests that change anything work on a
    :func:`clone_pipeline` copy.
    """

    root: Path
    company: Company
    held_back: tuple[str, ...]
    run_id: str


def pipeline_instance(root: Path) -> dg.DagsterInstance:
    """A Dagster instance in ``root/dagster_home`` with the project's instance settings."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def pipeline_definitions(root: Path) -> dg.Definitions:
    """The real definitions with every path under the data folder ``root``."""
    return build_definitions(WarehouseResource.from_settings(load_settings({"CRM_DATA_DIR": str(root)})))


def run_job(
    root: Path, job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    """Run a job of the real definitions on the data folder ``root``."""
    with pipeline_instance(root) as instance:
        job = pipeline_definitions(root).resolve_job_def(job_name)
        return job.execute_in_process(instance=instance, run_config=run_config or {}, tags=tags, raise_on_error=False)


def deliver(company: Company, root: Path, relative_paths) -> None:
    """Copy landing files of the test company into the data folder ``root``."""
    for relative in relative_paths:
        target = root / "landing" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(company.landing / relative, target)


def clone_pipeline(built: BuiltPipeline, destination: Path) -> Path:
    """A private copy of the built data folder (same file names: dbt views name their catalog)."""
    shutil.copytree(built.root, destination)
    return destination
