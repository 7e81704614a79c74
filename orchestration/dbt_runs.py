"""Where a dbt step's files go, and what its failure says.

Every ``dbt build`` of a run writes a target folder (compiled SQL, run results, its
``dbt.log``; 6-23 MB each). dagster-dbt would create a new one under
``dbt_project/target`` per step and never remove it; :func:`invocation_target_path`
puts them under ``dbt_project/target/runs`` and keeps the newest
:data:`KEEP_TARGET_FOLDERS` only, so the folder stays bounded and the last runs'
logs stay readable.

:func:`dbt_failure` turns dagster-dbt's generic "the dbt CLI process failed" into
one line naming the failed models and tests with dbt's first error message, and
allows Dagster's retry only for failures a retry can fix (a lock held by another
process, a full disk); a failed data test or a compile error would fail the same way
again and is raised with ``allow_retries=False``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from crm_warehouse.settings import DBT_PROJECT_DIR

DBT_RUNS_DIR = DBT_PROJECT_DIR / "target" / "runs"
#: dbt's saved parse state in a target folder.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
#: Target folders kept (two dbt steps a run: the last few runs).
KEEP_TARGET_FOLDERS = 6

#: Words of dbt or DuckDB errors that can pass on a retry.
TRANSIENT_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "database is locked",
    "resource temporarily unavailable",
    "no space left",
    "disk full",
    "connection refused",
    "timed out",
)


def prune_target_folders(runs_dir: Path = DBT_RUNS_DIR, keep: int = KEEP_TARGET_FOLDERS) -> list[Path]:
    """Remove all but the newest ``keep`` target folders of ``runs_dir``; returns what was removed."""
    if not runs_dir.is_dir():
        return []
    folders = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    # A folder without run_results.json may belong to a dbt still running (another run of
    # another Dagster instance): it is left alone unless far beyond the newest `keep`.
    removed = [
        folder
        for number, folder in enumerate(folders)
        if number >= keep and ((folder / "run_results.json").exists() or number >= 2 * keep + 2)
    ]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def invocation_target_path(context: dg.AssetExecutionContext, runs_dir: Path = DBT_RUNS_DIR) -> Path:
    """A fresh target folder for one dbt invocation, after pruning the old ones.

    It starts with the newest earlier invocation's parse state (:func:`reuse_parse_state`).
    """
    prune_target_folders(runs_dir, KEEP_TARGET_FOLDERS - 1)
    path = runs_dir / f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True, exist_ok=True)
    reuse_parse_state(runs_dir, path)
    return path


def reuse_parse_state(runs_dir: Path, target: Path) -> Path | None:
    """Copy the newest ``partial_parse.msgpack`` of ``runs_dir`` into ``target``; returns the one copied.

    dbt parses the whole project (about 5 s) unless its target folder holds the parse
    state of an earlier invocation with the same vars and profile: the second dbt step
    of a run (same as-of date, same warehouse) then parses only what changed. dbt checks
    the state itself and parses in full when it does not match, so any earlier state
    is safe to offer. dagster-dbt only copies ``dbt_project/target``'s, written by
    ``make manifest`` with another profile, which never matches a run's.
    """
    states = [
        state for folder in runs_dir.iterdir() if folder != target and (state := folder / PARTIAL_PARSE_FILE).is_file()
    ]
    try:  # another run may prune a folder meanwhile: then dbt just parses in full
        newest = max(states, key=lambda state: state.stat().st_mtime, default=None)
        if newest is not None:
            shutil.copyfile(newest, target / PARTIAL_PARSE_FILE)
    except OSError:
        return None
    return newest


def failed_nodes(run_results: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(status, node name, first message line) of every failed or errored node in dbt's run results."""
    if not run_results:
        return []
    found = []
    for result in run_results.get("results", []):
        if result.get("status") in ("error", "fail"):
            parts = result.get("unique_id", "?").split(".")
            name = parts[2] if len(parts) > 2 else parts[-1]
            message = (result.get("message") or "").strip().splitlines()
            found.append((result["status"], name, message[0] if message else ""))
    return found


def first_error_line(messages: Sequence[str]) -> str:
    """The first line of dbt's error messages that says something (not a blank or a banner)."""
    for message in messages:
        for line in message.splitlines():
            text = line.strip()
            if text and not text.lower().startswith(("encountered an error", "completed with")):
                return text
    return ""


def is_transient(texts: Sequence[str]) -> bool:
    joined = " ".join(texts).lower()
    return any(marker in joined for marker in TRANSIENT_MARKERS)


def describe_dbt_failure(
    run_results: Mapping[str, Any] | None, error_messages: Sequence[str], log_path: Path | None
) -> tuple[str, bool]:
    """One description of a failed dbt invocation, and whether a retry may pass."""
    nodes = failed_nodes(run_results)
    first = first_error_line(error_messages)
    parts = []
    if nodes:
        shown = ", ".join(f"{'test' if status == 'fail' else 'error in'} {name}" for status, name, _ in nodes[:5])
        more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
        parts.append(f"dbt build failed: {shown}{more}")
        detail = next((m for _, _, m in nodes if m), "")
        if detail:
            parts.append(detail)
    else:
        parts.append("dbt failed before building anything")
    if first and first not in parts:
        parts.append(first)
    if log_path is not None:
        parts.append(f"dbt log: {log_path}")
    retry = is_transient([*error_messages, *(m for _, _, m in nodes)])
    return ". ".join(parts), retry


def dbt_failure(invocation: Any, error: BaseException) -> BaseException:
    """The exception to raise for a failed dbt invocation (dagster-dbt's ``DbtCliInvocation``)."""
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    if not isinstance(error, DagsterDbtCliRuntimeError):
        return error
    try:
        run_results = invocation.get_artifact("run_results.json")
    except Exception:
        run_results = None
    messages = list(getattr(invocation, "_error_messages", []) or [])
    log_path = Path(invocation.target_path) / "dbt.log"
    description, retry = describe_dbt_failure(run_results, messages, log_path if log_path.exists() else None)
    return dg.Failure(description=description, allow_retries=retry)
