"""Crash recovery: what a dead run still holds is released before the next run starts.

A run whose process is killed (SIGKILL, out of memory, a reboot) never reports its
end: the Dagster instance still lists it as started, its step keeps the one slot of
the ``duckdb_warehouse`` pool, and every later run waits for that slot forever.
:func:`recover_dead_runs` (called by ``orchestration.run`` before each run, and by
``python -m orchestration.recovery``) finds such runs, marks them failed, frees
their pool slots and removes the serving file they were half-way writing. DuckDB's
own lock dies with the process, and its write-ahead log is replayed on the next
open, so the warehouse needs nothing more.

A run is known dead when the process that ran it is gone: runs started by
``orchestration.run`` carry their process id and its start time as tags
(:func:`process_tags`); runs the Dagster daemon launched name their process in the
"Started process for run" engine event. Runs of another host are left alone.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

PID_TAG = "crm/pid"
PID_START_TAG = "crm/pid_start"
HOST_TAG = "crm/host"

_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _process_start(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its ")" are plain.
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Tags that let a later run tell whether this process still runs."""
    pid = os.getpid() if pid is None else pid
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    start = _process_start(pid)
    if start is not None:
        tags[PID_START_TAG] = start
    return tags


def process_alive(pid: int, start: str | None = None) -> bool:
    """True while process ``pid`` runs (and, given ``start``, is the same process, not a reused id)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is not None and Path("/proc").is_dir():
        return _process_start(pid) == start
    return True


def _launched_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process id a launched run reported in its engine events, if any."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None:
            value = getattr(pid, "value", pid)
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None


def run_is_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether ``run``, listed as in progress, has lost its process (False when that cannot be told)."""
    tags: Mapping[str, str] = run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) not in (None, socket.gethostname()):
            return False
        return not process_alive(int(tags[PID_TAG]), tags.get(PID_START_TAG))
    pid = _launched_pid(instance, run.run_id)
    if pid is None:
        return False
    return not process_alive(pid)


@dataclass
class Recovery:
    """What :func:`recover_dead_runs` released."""

    failed_runs: list[str] = field(default_factory=list)
    freed_slot_runs: list[str] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.failed_runs:
            out.append(
                f"Recovered from a crash: marked {len(self.failed_runs)} run(s) whose process died as failed "
                f"({', '.join(r[:8] for r in self.failed_runs)})"
            )
        if self.freed_slot_runs:
            out.append(f"Released the warehouse slot(s) held by {len(self.freed_slot_runs)} ended run(s)")
        if self.removed_files:
            out.append(f"Removed {len(self.removed_files)} half-written serving file(s)")
        return out


def recover_dead_runs(instance: dg.DagsterInstance, serving_path: Path | None = None) -> Recovery:
    """Mark runs whose process died as failed, free every pool slot no live run holds, drop half-written files."""
    recovery = Recovery()
    for run in instance.get_runs(dg.RunsFilter(statuses=_IN_PROGRESS)):
        if run_is_dead(instance, run):
            instance.report_run_failed(
                run, message="The process running this run died (killed or crashed); marked failed at the next start."
            )
            recovery.failed_runs.append(run.run_id)
    storage = instance.event_log_storage
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            recovery.freed_slot_runs.append(run_id)
    if serving_path is not None:
        live = {r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=_IN_PROGRESS))}
        for stray in Path(serving_path).parent.glob(f".{Path(serving_path).name}.*.building"):
            run_id = stray.name[len(Path(serving_path).name) + 2 : -len(".building")]
            if run_id not in live:
                stray.unlink(missing_ok=True)
                recovery.removed_files.append(stray)
    return recovery


RECOVERY_SENSOR = "dead_run_recovery"


def build_recovery_sensor(serving_path: Path | None = None) -> dg.SensorDefinition:
    """A sensor of the daemon that releases what dead runs hold, so schedules never wait on a crash.

    ``make run`` does the same before each run; this covers a deployment where only the
    daemon starts runs (a reboot or an out-of-memory kill would otherwise stop the
    daily schedule silently).
    """

    @dg.sensor(
        name=RECOVERY_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks runs whose process died as failed and frees the warehouse slot they held.",
    )
    def dead_run_recovery(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        lines = recover_dead_runs(context.instance, serving_path).lines()
        for line in lines:
            context.log.warning(line)
        return dg.SkipReason("; ".join(lines) or "no dead run holds anything")

    return dead_run_recovery


def main() -> int:
    """``python -m orchestration.recovery``: release what dead runs hold, and say what was done."""
    from crm_warehouse.settings import load_settings

    settings = load_settings()
    with dg.DagsterInstance.get() as instance:
        recovery = recover_dead_runs(instance, settings.serving_path)
    for line in recovery.lines() or ["Nothing to recover: no run holds anything it should not."]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
