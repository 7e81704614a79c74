"""Time and measure every step of the whole pipeline at several company sizes, against DuckDB's floor.

Not a test: prints a table and writes ``benchmarks/results/pipeline.json``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline.py                  # 100k and 1M customers
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline.py --sizes 1000000 --memory-limit 2GiB
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline.py --engine spark --sizes 100000

Each size runs in a fresh process in a temp folder: simulate the company (730 days,
in a process of its own), then the real ``full_pipeline`` job in process (``build_definitions`` +
``job.execute_in_process`` on an ephemeral instance). Step seconds are the gaps
between each step's start and success events; peak memory is the highest resident
set of the process and its children (dbt runs as one) sampled every 50 ms within the
step. Then the floors, on the same files: DuckDB reading the landing files into one
table per source (``read_csv`` / ``read_json`` with the contract's columns and types,
``read_parquet``; one connection);
the SQL dbt executed (``target/<invocation>/run`` of both dbt steps, models and data
tests, in run order, one connection); a bare ``create table as`` of the published
tables into a new file. Ingestion is also run once more through the pure function
:func:`crm_warehouse.ingest.ingest_all` with its internal steps timed, to show where
its time goes. Results of earlier sizes in the JSON file are kept.

``--engine spark`` runs the same job with ``CRM_ENGINE=spark`` on a local Spark that
``scripts/spark.sh`` starts under the temp folder (local mode, ``CRM_SPARK_MASTER``,
two cores by default): step seconds and the peak memory of the job's process and of
Spark's JVM, sampled apart (the JVM is not the job's child). DuckDB's floors are not
Spark's, so that row has none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    RssSampler,
    bench_settings,
    mib,
    pipeline_environment,
    remove_dbt_targets,
    replay_dbt_sql,
    run_job,
    timed,
)
from crm_warehouse.settings import Settings
from crm_warehouse.warehouse.duckdb_connection import connect

if TYPE_CHECKING:
    from crm_warehouse.contracts import SourceContract

DEFAULT_SIZES = (100_000, 1_000_000)
DAYS = 730
RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
#: Internal steps of crm_warehouse.ingest timed in the profile run (inclusive times).
INGEST_PARTS = (
    "_scan_file",
    "_load_batch",
    "_read_batch",
    "_read_with_reader",
    "_insert_grouped",
    "_add_quarantined_lines",
    "_account",
    "_expected_rows",
)


def step_group(step: str) -> str:
    """Report group of a Dagster step key."""
    if "gx_suite" in step:
        return "checks"
    if step.startswith("raw__"):
        return "ingest"
    if step.startswith("dbt_"):
        return "dbt"
    if step.startswith("analytics__"):
        return "analytics"
    if step.startswith("serving__"):
        return "publish"
    return "other"


def floor_reader_sql(contract: SourceContract) -> str:
    """DuckDB's reader of ``$files`` of ``contract``, told its columns and types: the floor's read.

    The columns and types are the contract's, given to the reader, as ingestion knows
    them: DuckDB's sniffer guessing them anew on each of hundreds of small files
    measures the sniffer, not reading (it took 10× longer in an earlier run).
    """
    columns = "{" + ", ".join(f"'{c.name}': '{c.type}'" for c in contract.columns) + "}"
    return {
        "csv": f"read_csv($files, header = true, auto_detect = false, columns = {columns})",
        "jsonl": f"read_json($files, format = 'newline_delimited', columns = {columns})",
        "parquet": "read_parquet($files, union_by_name = true)",
    }[contract.format]


def floor_ingest(settings: Settings, database: Path) -> dict[str, float]:
    """Seconds DuckDB needs to read each source's landing files into a typed table (one connection)."""
    from crm_warehouse.contracts import CONTRACTS

    seconds = {}
    with connect(settings, database) as con:
        for contract in CONTRACTS:
            files = sorted(str(p) for p in settings.landing_dir.glob(contract.file_glob))
            start = time.perf_counter()
            con.execute(
                f"create table {contract.table} as select * from {floor_reader_sql(contract)}", {"files": files}
            )
            seconds[contract.table] = time.perf_counter() - start
    return seconds


def profile_ingest(settings: Settings, database: Path) -> dict[str, Any]:
    """Pure-function ingestion with its internal steps timed, per table."""
    from crm_warehouse import ingest
    from crm_warehouse.contracts import CONTRACTS

    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    calls: dict[str, int] = defaultdict(int)
    current = {"table": ""}
    originals = {name: getattr(ingest, name) for name in INGEST_PARTS}

    def wrap(name: str, function: Callable) -> Callable:
        @wraps(function)
        def timed_part(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[current["table"]][name] += time.perf_counter() - start
                calls[name] += 1

        return timed_part

    for name, function in originals.items():
        setattr(ingest, name, wrap(name, function))
    try:
        with connect(settings, database) as con:
            for contract in CONTRACTS:
                current["table"] = contract.table
                start = time.perf_counter()
                ingest.ingest_table(con, contract, settings.landing_dir)
                totals[contract.table]["total"] = time.perf_counter() - start
    finally:
        for name, function in originals.items():
            setattr(ingest, name, function)
    return {"seconds": {t: dict(parts) for t, parts in totals.items()}, "calls": dict(calls)}


def floor_publish(settings: Settings, out: Path) -> float:
    """Seconds for a bare ``create table as`` of the published tables into a new file."""
    from crm_warehouse.publish import publishable_tables

    warehouse = settings.warehouse_path
    with connect(settings, warehouse, read_only=True) as con:
        tables = publishable_tables(con)
    with connect(settings) as con:
        start = time.perf_counter()
        con.execute(f"attach '{warehouse}' as source (read_only)")
        con.execute(f"attach '{out}' as floor_target")
        for schema in sorted({s for s, _ in tables}):
            con.execute(f'create schema floor_target."{schema}"')
        for schema, table in tables:
            con.execute(f'create table floor_target."{schema}"."{table}" as select * from source."{schema}"."{table}"')
        con.execute("checkpoint floor_target")
        con.execute("detach floor_target")
        return time.perf_counter() - start


def floor_dbt(settings: Settings, work: Path, targets: list[str]) -> dict[str, dict[str, float]]:
    """Replay each dbt invocation's SQL on a copy of the built warehouse."""
    warehouse = settings.warehouse_path
    copy = work / "floor_dbt" / warehouse.name  # same file stem: the SQL names the database
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse, copy)
    out = {}
    with connect(settings, copy) as con:
        for target in targets:
            start = time.perf_counter()
            parts = replay_dbt_sql(con, Path(target))
            parts["total"] = time.perf_counter() - start
            out[Path(target).name.split("-")[0]] = parts
    copy.unlink()
    return out


def bench_spark(customers: int, days: int, work: Path, paths: dict[str, Path], simulate: dict) -> dict[str, Any]:
    """The job on a local Spark started for this run (tests/dbt/spark_engine.py: free ports, its own metastore)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "dbt"))
    from spark_engine import local_spark

    if not os.environ.get("CRM_POSTGRES_DSN"):  # the job on Spark publishes to PostgreSQL
        started = subprocess.run(
            ["bash", "scripts/postgres.sh"],
            env={**os.environ, "CRM_POSTGRES_DB": "crm_bench"},
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
            capture_output=True,
            text=True,
        )
        os.environ["CRM_POSTGRES_DSN"] = started.stdout.strip().splitlines()[-1]
        os.environ.setdefault("CRM_POSTGRES_BI_PASSWORD", "bi-reader-bench")
    with local_spark(work, driver_memory=None) as spark:
        os.environ.update({k: v for k, v in spark.env.items() if k.startswith("CRM_SPARK_") or k == "CRM_ENGINE"})
        jvm = int((spark.settings.spark_metastore_dir / "thriftserver.pid").read_text())
        with RssSampler(root=jvm) as jvm_sampler:
            run = run_job("full_pipeline", paths)
        run["spark_jvm_peak_rss_mib"] = mib(max((tree for _, tree, _ in jvm_sampler.samples), default=0))
        print(f"  full_pipeline on Spark {'succeeded' if run['success'] else 'FAILED'} in {run['seconds']:.0f} s")
    warehouse_mib = mib(sum(f.stat().st_size for f in spark.settings.spark_warehouse_dir.rglob("*") if f.is_file()))
    remove_dbt_targets(run["dbt_targets"])
    return {
        "engine": "spark",
        "customers": customers,
        "days": days,
        "spark_master": os.environ.get("CRM_SPARK_MASTER", "local[2]"),
        "memory_limit": bench_settings(work).duckdb_memory_limit,
        "landing_mib": mib(sum(f.stat().st_size for f in paths["landing"].rglob("*") if f.is_file())),
        "warehouse_mib": warehouse_mib,
        "simulate": simulate,
        "run": run,
        "floors": {},
    }


def bench_size(customers: int, days: int, work: Path, profile: bool, engine: str = "duckdb") -> dict[str, Any]:
    """Everything for one size, in this process."""
    with pipeline_environment(work) as paths:
        # The simulator runs in its own process: the job then starts in a process that
        # holds none of the simulator's memory, as a Dagster run worker would.
        command = [sys.executable, "-m", "crm_simulator", "--customers", str(customers), "--days", str(days)]
        command += ["--out", str(paths["landing"]), "--truth-out", str(paths["truth"])]
        with RssSampler() as sampler:
            simulate = timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL), sampler)
        landing_mib = mib(sum(p.stat().st_size for p in paths["landing"].rglob("*") if p.is_file()))
        print(f"  simulated {customers:,} customers in {simulate['seconds']:.0f} s ({landing_mib:.0f} MiB)", flush=True)
        if engine == "spark":
            return bench_spark(customers, days, work, paths, simulate)
        run = run_job("full_pipeline", paths)
        print(f"  full_pipeline {'succeeded' if run['success'] else 'FAILED'} in {run['seconds']:.0f} s", flush=True)
        settings = bench_settings(work)
        floors: dict[str, Any] = {"ingest": floor_ingest(settings, work / "floor_ingest.duckdb")}
        (work / "floor_ingest.duckdb").unlink()
        print(f"  floor: reading the landing files took {sum(floors['ingest'].values()):.0f} s", flush=True)
        floors["dbt"] = floor_dbt(settings, work, run["dbt_targets"])
        floors["publish"] = floor_publish(settings, work / "floor_publish.duckdb")
        if profile:
            floors["ingest_profile"] = profile_ingest(settings, work / "profile.duckdb")
        with connect(settings, paths["warehouse"], read_only=True) as con:
            rows = dict(
                con.execute(
                    "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
                    "where schema_name in ('raw', 'marts', 'analytics')"
                ).fetchall()
            )
        warehouse_mib = mib(paths["warehouse"].stat().st_size)
        remove_dbt_targets(run["dbt_targets"])
    return {
        "customers": customers,
        "days": days,
        "memory_limit": settings.duckdb_memory_limit,
        "landing_mib": landing_mib,
        "warehouse_mib": warehouse_mib,
        "rows": rows,
        "simulate": simulate,
        "run": run,
        "floors": floors,
    }


def _summary(result: dict[str, Any]) -> list[tuple[str, float, float, float | None]]:
    """(step, seconds, peak MiB, floor seconds) rows for the table."""
    steps = result["run"]["steps"]
    floors = result["floors"]  # none on Spark
    ingest_floor = {f"raw__{t}": s for t, s in floors.get("ingest", {}).items()}
    dbt_floor = {f"{name}": parts["total"] for name, parts in floors.get("dbt", {}).items()}
    rows: list[tuple[str, float, float, float | None]] = [
        ("simulate", result["simulate"]["seconds"], result["simulate"]["peak_rss_mib"], None)
    ]
    checks = [s for s in steps if step_group(s["step"]) == "checks"]
    for s in steps:
        group = step_group(s["step"])
        if group == "checks":
            continue
        floor = ingest_floor.get(s["step"]) if group == "ingest" else dbt_floor.get(s["step"])
        if group == "publish":
            floor = floors.get("publish")
        rows.append((s["step"], s["seconds"], s["peak_rss_mib"], floor))
    if checks:
        rows.append(
            (
                f"checks ({len(checks)} GX suites)",
                sum(s["seconds"] for s in checks),
                max(s["peak_rss_mib"] for s in checks),
                None,
            )
        )
    ingest = [s for s in steps if step_group(s["step"]) == "ingest"]
    rows.append(
        (
            "= ingest total",
            sum(s["seconds"] for s in ingest),
            max(s["peak_rss_mib"] for s in ingest),
            sum(floors["ingest"].values()) if "ingest" in floors else None,
        )
    )
    rows.append(("= sum of steps", sum(s["seconds"] for s in steps), 0.0, None))
    rows.append(("= job wall (execute_in_process)", result["run"]["seconds"], result["run"]["peak_rss_mib"], None))
    return rows


def print_table(result: dict[str, Any]) -> None:
    load = os.getloadavg()
    engine = f"Spark {result['spark_master']}" if result.get("engine") == "spark" else "DuckDB"
    print(
        f"\n{engine}, {result['customers']:,} customers, {result['days']} days: landing {result['landing_mib']:.0f} MiB, "
        f"warehouse {result['warehouse_mib']:.0f} MiB, DuckDB memory_limit {result['memory_limit']} "
        f"(load average {load[0]:.1f}, {os.cpu_count()} cores, shared machine)"
    )
    print(f"{'step':<44} {'seconds':>9} {'peak MiB':>9} {'floor s':>8} {'ratio':>6}")
    for step, seconds, peak, floor in _summary(result):
        ratio = f"{seconds / floor:6.1f}" if floor else ""
        floor_text = f"{floor:8.1f}" if floor is not None else ""
        peak_text = f"{peak:9.0f}" if peak else ""
        print(f"{step:<44} {seconds:9.1f} {peak_text:>9} {floor_text:>8} {ratio:>6}")
    if result.get("engine") == "spark":
        jvm = result["run"]["spark_jvm_peak_rss_mib"]
        print(f"  Spark's JVM (driver and executors, not the job's child): peak {jvm:.0f} MiB")
    else:
        ingest = [r for r in _summary(result) if r[0] == "= ingest total"][0]
        print(
            f"issue 15 targets: job {result['run']['seconds']:.0f} s (<= 600), "
            f"peak {result['run']['peak_rss_mib']:.0f} MiB (<= 4096), "
            f"ingestion {ingest[1] / ingest[3]:.2f} x its floor (<= 1.5)"
        )
    own = result["run"].get("own_rss_at_peak_mib")
    if own is not None:
        print(
            f"  at the peak: the job's process {own:.0f} MiB, its children (dbt) {result['run']['peak_rss_mib'] - own:.0f} MiB"
        )
    for name, nodes in result["run"]["dbt_node_seconds"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in nodes.items())
        print(f"  dbt {name}: seconds inside dbt: {parts}")
    for name, parts in result["floors"].get("dbt", {}).items():
        print(f"  floor {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    profile = result["floors"].get("ingest_profile")
    if profile:
        print("  ingest_all profile (inclusive seconds):")
        for table, parts in profile["seconds"].items():
            print(f"    {table:<22} " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
        print(f"    calls: {profile['calls']}")


def _child(customers: int, days: int, out: Path, profile: bool, engine: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"pipeline_bench_{customers}_"))
    try:
        result = bench_size(customers, days, work, profile, engine)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.write_text(json.dumps(result, indent=1))


def _result_key(result: dict[str, Any]) -> str:
    """One result per engine, size and memory limit (runs with another limit are kept beside it)."""
    engine = "spark:" if result.get("engine") == "spark" else ""
    return f"{engine}{result['customers']}@{result.get('memory_limit', 'default')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="customers per run")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--no-profile", action="store_true", help="skip the second, profiled ingestion")
    parser.add_argument(
        "--memory-limit", help="CRM_DUCKDB_MEMORY_LIMIT of the runs (default: the configuration's, from the machine)"
    )
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="CRM_ENGINE of the runs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.sizes[0], args.days, args.child, not args.no_profile, args.engine)
        return 0
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    sizes = {_result_key(r): r for r in previous.get("results", [])}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    if args.memory_limit:
        env["CRM_DUCKDB_MEMORY_LIMIT"] = args.memory_limit
    for customers in args.sizes:
        print(f"{customers:,} customers on {args.engine}: simulating and running full_pipeline ...", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [
                sys.executable,
                __file__,
                "--child",
                out.name,
                "--sizes",
                str(customers),
                "--days",
                str(args.days),
                "--engine",
                args.engine,
            ]
            if args.no_profile:
                command.append("--no-profile")
            with open(f"{out.name}.log", "w") as log:  # Dagster's event log; the table is what matters
                subprocess.run(command, env=env, check=True, stderr=log)
            result = json.loads(Path(out.name).read_text())
        result["load_average"] = os.getloadavg()
        print_table(result)
        sizes[_result_key(result)] = result
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "duckdb": duckdb.__version__,
                        "note": "shared machine; each size records its load average",
                    },
                    "results": sorted(
                        sizes.values(),
                        key=lambda r: (r.get("engine", "duckdb"), r["customers"], r.get("memory_limit", "")),
                    ),
                },
                indent=1,
            )
        )
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
