"""Shared parts of the pipeline benchmarks: RSS sampling, Dagster step timings, floors.

Not a test and not product code: imported by ``benchmarks/pipeline.py`` and
``benchmarks/incremental.py`` only.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from crm_warehouse.settings import Settings, load_settings

SAMPLE_SECONDS = 0.05


def _tree_pids(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError):
        return 0


class RssSampler:
    """Samples the resident memory of a process (this one) and all its children (dbt runs as one).

    Each sample is (time, whole tree, this process alone): the difference is the
    children, so a peak can be told apart into the job's process and dbt's.
    """

    def __init__(self, root: int | None = None) -> None:
        """``root``: the process whose tree is sampled (default: this one)."""
        self.samples: list[tuple[float, int, int]] = []
        self._root = root or os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self._root
        while not self._stop.is_set():
            own = _rss_bytes(me)
            children = sum(_rss_bytes(p) for p in _tree_pids(me) if p != me)
            self.samples.append((time.time(), own + children, own))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        """Highest resident memory of the whole tree between two times."""
        return max((tree for t, tree, _ in self.samples if start <= t <= end), default=0)

    def own_at_peak_between(self, start: float, end: float) -> int:
        """This process's share of the tree at the tree's peak between two times (the rest: children)."""
        inside = [(tree, own) for t, tree, own in self.samples if start <= t <= end]
        return max(inside, default=(0, 0))[1]


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def timed(step: Callable[[], Any], sampler: RssSampler | None = None) -> dict[str, float]:
    """Wall seconds and (with a sampler) peak tree RSS of ``step``."""
    start = time.time()
    step()
    end = time.time()
    row = {"seconds": end - start}
    if sampler is not None:
        row["peak_rss_mib"] = mib(sampler.peak_between(start, end))
    return row


def step_timings(instance: Any, run_id: str, sampler: RssSampler) -> list[dict[str, Any]]:
    """Per Dagster step: start, seconds from the step-start to step-success event, peak tree RSS."""
    import dagster as dg

    starts: dict[str, float] = {}
    rows = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            start = starts[event.step_key]
            rows.append(
                {
                    "step": event.step_key,
                    "start": start,
                    "seconds": entry.timestamp - start,
                    "peak_rss_mib": mib(sampler.peak_between(start, entry.timestamp)),
                    "own_rss_at_peak_mib": mib(sampler.own_at_peak_between(start, entry.timestamp)),
                    "ok": event.event_type == dg.DagsterEventType.STEP_SUCCESS,
                }
            )
    return rows


def run_dbt_targets(run_id: str) -> list[Path]:
    """dbt invocation folders of one run (``orchestration.dbt_runs.invocation_target_path``), oldest first."""
    from orchestration.dbt_runs import DBT_RUNS_DIR

    found = [p.parent for p in DBT_RUNS_DIR.glob(f"*-{run_id[:8]}-*/run_results.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def dbt_node_seconds(target: Path) -> dict[str, float]:
    """Seconds dbt itself spent per resource type (model, test, unit_test, seed) in one invocation."""
    results = json.loads((target / "run_results.json").read_text())
    totals: dict[str, float] = {"elapsed": results["elapsed_time"]}
    for r in results["results"]:
        kind = r["unique_id"].split(".")[0]
        totals[kind] = totals.get(kind, 0.0) + r["execution_time"]
    return totals


def dbt_model_seconds(target: Path) -> dict[str, float]:
    """Seconds dbt spent per model in one invocation, slowest first."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    models = [
        (r["unique_id"].split(".")[-1], r["execution_time"]) for r in results if r["unique_id"].startswith("model.")
    ]
    return dict(sorted(models, key=lambda item: -item[1]))


def replay_dbt_sql(con: duckdb.DuckDBPyConnection, target: Path) -> dict[str, float]:
    """Run the SQL one dagster-dbt invocation executed, model by model in its order, in ``con``.

    Models: the ``target/<invocation>/run`` statement (``create table|view ... as``); the
    relation name gets a suffix so the replay does not touch the relations dbt built,
    which the downstream SQL reads. Data tests: the compiled query, counted. Unit tests
    are left out (they check SQL logic on fixtures, not data). Returns seconds per kind.
    """
    results = json.loads((target / "run_results.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    seconds = {"model": 0.0, "test": 0.0, "seed": 0.0}
    for r in results["results"]:
        uid = r["unique_id"]
        kind = uid.split(".")[0]
        node = manifest["nodes"].get(uid)
        if node is None or kind not in seconds or r["status"] not in ("success", "pass"):
            continue
        if kind == "model":
            statement = (target / "run" / node["package_name"] / node["original_file_path"]).read_text()
            sql = _suffixed(statement)
            if sql is None:
                continue
        elif kind == "test":
            compiled = target / "compiled" / node["package_name"] / node["original_file_path"]
            path = compiled / node["path"].split("/")[-1] if compiled.is_dir() else compiled
            if not path.exists():
                continue
            sql = f"select count(*) from ({path.read_text()}) as failures"
        else:
            continue
        start = time.perf_counter()
        con.execute(sql)
        seconds[kind] += time.perf_counter() - start
    return seconds


def _suffixed(statement: str) -> str | None:
    """``create ... "db"."schema"."name" as (...)`` with the relation renamed to ``name__floor``."""
    import re

    match = re.search(r'create\s+(?:or replace\s+)?(table|view)\s+("[^"]+"\."[^"]+"\.)"([^"]+)"', statement, re.I)
    if not match:
        return None
    name = match.group(3).removesuffix("__dbt_tmp")
    # A model with an enforced contract is a `create table (columns)` and an `insert into`
    # the same relation: every mention of it is renamed.
    relation = f'{match.group(2)}"{match.group(3)}"'
    floor_relation = f'{match.group(2)}"{name}__floor"'
    return (
        statement[: match.start()]
        + f"create or replace {match.group(1)} {floor_relation}"
        + statement[match.end() :].replace(relation, floor_relation)
    )


@contextmanager
def pipeline_environment(work: Path) -> Iterator[dict[str, Path]]:
    """Point every ``CRM_*`` path and ``DAGSTER_HOME`` into ``work`` for this process.

    Other ``CRM_*`` variables of the environment (e.g. ``CRM_DUCKDB_MEMORY_LIMIT``) hold.
    """
    settings = bench_settings(work)
    paths = {
        "data_dir": settings.data_dir,
        "landing": settings.landing_dir,
        "truth": settings.truth_dir,
        "warehouse": settings.warehouse_path,
        "serving": settings.serving_path,
        "models": settings.models_dir,
        "dq_docs": settings.dq_docs_dir,
        "dagster_home": settings.dagster_home,
    }
    # The Dagster instance of this process, and dbt run by hand for the floors, read these.
    env = {"CRM_DATA_DIR": work, "CRM_WAREHOUSE_PATH": paths["warehouse"], "DAGSTER_HOME": paths["dagster_home"]}
    os.environ.update({k: str(v) for k, v in env.items()})
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    paths["dagster_home"].mkdir(parents=True, exist_ok=True)
    yield paths


def bench_settings(work: Path) -> Settings:
    """The configuration of a benchmark run: this process's ``CRM_*`` variables, every path under ``work``."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("CRM_") and not k.endswith(("_DIR", "_PATH"))}
    return load_settings({**environ, "CRM_DATA_DIR": str(work)})


def warehouse_resource(paths: dict[str, Path]) -> Any:
    from orchestration.resources import WarehouseResource

    return WarehouseResource.from_settings(bench_settings(paths["data_dir"]))


def run_job(
    job_name: str, paths: dict[str, Path], run_config: dict | None = None, assets: list[Any] | None = None
) -> dict[str, Any]:
    """Execute ``job_name`` (only ``assets``, asset keys, when given) in process on the real definitions;
    per-step seconds and peak RSS."""
    import dagster as dg

    from orchestration.definitions import build_definitions

    defs = build_definitions(warehouse_resource(paths))
    job = defs.resolve_job_def(job_name)
    with dg.DagsterInstance.ephemeral() as instance, RssSampler() as sampler:
        start = time.time()
        result = job.execute_in_process(
            instance=instance, run_config=run_config or {}, raise_on_error=False, asset_selection=assets
        )
        end = time.time()
        steps = step_timings(instance, result.run_id, sampler)
    targets = run_dbt_targets(result.run_id)
    return {
        "success": result.success,
        "seconds": end - start,
        "peak_rss_mib": mib(sampler.peak_between(start, end)),
        "own_rss_at_peak_mib": mib(sampler.own_at_peak_between(start, end)),
        "steps": steps,
        "dbt_targets": [str(t) for t in targets],
        "dbt_node_seconds": {t.name.split("-")[0]: dbt_node_seconds(t) for t in targets},
        "dbt_model_seconds": {t.name.split("-")[0]: dbt_model_seconds(t) for t in targets},
    }


def record_run(results: Path, label: str, run: dict[str, Any]) -> None:
    """Store ``run`` under ``label`` in the JSON file ``results``, replacing an earlier run of that label."""
    recorded = json.loads(results.read_text()) if results.exists() else {}
    recorded[label] = run
    results.write_text(json.dumps(recorded, indent=2) + "\n")


def remove_dbt_targets(targets: list[str]) -> None:
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
