"""What ``make run`` shows: progress per step on the terminal, everything else in a log file.

:class:`RunConsole` sends the process's output (Dagster's DEBUG event log, dbt's
lines, warnings of libraries, subprocesses' output) to a log file at the file
descriptor level, and keeps a handle on the terminal for short lines: one per
step started and finished, dbt's progress (nodes done of total), failed checks and
tests as they happen. :class:`StepProgress` reads the run's events from the
Dagster instance to say which step runs.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import dagster as dg

#: Run logs kept in the logs folder (one file per ``make run``).
KEEP_RUN_LOGS = 30

# dbt's result line of a node: "12 of 250 OK created sql table model marts.x ... [OK in 0.31s]".
_DBT_RESULT = re.compile(
    r"(?:^|\s)(?P<done>\d+) of (?P<total>\d+) (?P<status>OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b(?P<rest>.*)$"
)
_DBT_NODE = re.compile(r"(?:model|test|seed|snapshot|unit_test)\s+(?P<name>[\w.]+)")


def run_log_path(logs_dir: Path, run_id: str, keep: int = KEEP_RUN_LOGS) -> Path:
    """A new log file for run ``run_id`` in ``logs_dir``, the oldest files beyond ``keep`` removed."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    old = sorted(logs_dir.glob("run-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[max(keep - 1, 0) :]:
        path.unlink(missing_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return logs_dir / f"run-{stamp}-{run_id[:8]}.log"


class DbtProgress:
    """Counts dbt's result lines and reports each tenth of the nodes, and every failure."""

    def __init__(self, say: Callable[[str], None]):
        self._say = say
        self._reported = -1
        self._total = 0
        self._done = 0
        self.failures: list[str] = []

    def line(self, text: str) -> None:
        match = _DBT_RESULT.search(text)
        if not match:
            return
        # dbt numbers nodes in start order and finishes them out of order: count the results.
        total, status = int(match["total"]), match["status"]
        if match["rest"].lstrip().startswith("hook:"):  # on-run-end hooks are counted apart ("1 of 1")
            if status in ("ERROR", "FAIL"):
                self.failures.append(f"error in {match['rest'].split()[1]}")
                self._say(f"    dbt {self.failures[-1]}")
            return
        if total != self._total:
            self._total, self._done, self._reported = total, 0, -1
        self._done += 1
        done = self._done
        if status in ("ERROR", "FAIL"):
            node = _DBT_NODE.search(match["rest"])
            words = [w for w in match["rest"].split() if not w.isdigit()]
            name = node["name"] if node else (words[0] if words else "?")
            what = "test failed" if status == "FAIL" else "error in"
            self.failures.append(f"{what} {name}")
            self._say(f"    dbt {what} {name}")
        tenth = min(done * 10 // max(total, 1), 10)
        if tenth != self._reported:
            self._reported = tenth
            self._say(f"    dbt: {done}/{total} models and tests done")
        if done >= total:  # the next invocation counts afresh
            self._total = 0


class _LineTap(io.TextIOBase):
    """A text stream that writes through to ``target`` and hands every complete line to ``on_line``."""

    def __init__(self, target: TextIO, on_line: Callable[[str], None]):
        self._target = target
        self._on_line = on_line
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self._target.write(text)
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            try:
                self._on_line(line)
            except Exception:  # progress must never break a run
                pass
        return written

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class RunConsole:
    """Within ``with``: stdout and stderr (of this process and its children) go to ``log_path``.

    ``say`` writes a line to the terminal (and to the log). dbt's result lines written
    to ``sys.stdout`` (dagster-dbt echoes them there) feed :attr:`dbt`.
    """

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self._terminal: TextIO | None = None
        self._lock = threading.Lock()
        self.dbt = DbtProgress(self.say)

    def say(self, text: str) -> None:
        with self._lock:
            if self._terminal is not None:
                self._terminal.write(text + "\n")
                self._terminal.flush()
                sys.stdout.write(f"[make run] {text}\n")
            else:
                print(text, flush=True)

    def __enter__(self) -> RunConsole:
        sys.stdout.flush()
        sys.stderr.flush()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8", buffering=1)
        self._saved = (os.dup(1), os.dup(2))
        self._terminal = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _LineTap(sys.stdout, self.dbt.line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._streams
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        terminal, self._terminal = self._terminal, None
        if terminal is not None:
            terminal.close()
        self._log.close()


_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


class StepProgress:
    """Reads a run's step events from the instance and says one line per step started and finished.

    ``poll()`` reports what is new; ``start()`` polls in a background thread until ``stop()``.
    """

    def __init__(self, instance: dg.DagsterInstance, run_id: str, say: Callable[[str], None], total_steps: int):
        self._instance = instance
        self._run_id = run_id
        self._say = say
        self._total = total_steps
        self._cursor: str | None = None
        self._finished = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()

    def poll(self) -> None:
        with self._poll_lock:
            while True:
                connection = self._instance.get_records_for_run(
                    self._run_id, cursor=self._cursor, of_type=_STEP_EVENTS, limit=200
                )
                for record in connection.records:
                    self._report(record.event_log_entry.dagster_event)
                self._cursor = connection.cursor
                if not connection.has_more:
                    return

    def _report(self, event: dg.DagsterEvent) -> None:
        step = event.step_key
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            if step.startswith("dbt_"):  # minutes long: dbt's progress lines follow
                self._say(f"[{self._finished + 1}/{self._total}] {step} started")
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self._finished += 1
            seconds = event.event_specific_data.duration_ms / 1000
            self._say(f"[{self._finished}/{self._total}] {step} done in {seconds:.0f} s")
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            self._say(f"    {step} failed; Dagster retries it (the error may pass): {event.message}")
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            self._finished += 1
            self._say(f"[{self._finished}/{self._total}] {step} FAILED")
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.event_specific_data
            if not check.passed:
                level = "FAILED" if check.severity == dg.AssetCheckSeverity.ERROR else "warned"
                self._say(f"    check {level}: {check.asset_key.to_user_string()}:{check.check_name}")

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll()
            except Exception:  # the storage may be busy; the next poll catches up
                pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="run-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
