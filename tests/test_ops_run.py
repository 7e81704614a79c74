"""``make run`` / ``python -m orchestration.run`` as a user meets it: mistakes, demo data, the as-of date.

Every test here starts the real command in a subprocess with a bad setting and reads
what it prints; none of them runs the pipeline (the command stops before any work).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from pipeline_support import PROJECT_ROOT

from crm_warehouse import preflight
from crm_warehouse.contracts import CRM_CUSTOMERS, ORDERS_ORDERS
from crm_warehouse.preflight import (
    DEMO_LANDING_DIR,
    as_of_problems,
    check_configuration,
    data_problems,
    demo_landing_needed,
    serving_problems,
)
from crm_warehouse.settings import load_settings

CRM_VARIABLES = [name for name in os.environ if name.startswith("CRM_") or name == "DAGSTER_HOME"]


def run_command(env: dict[str, str], *args: str, make: bool = False) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in CRM_VARIABLES}
    command = ["make", "--no-print-directory", "run"] if make else [sys.executable, "-m", "orchestration.run", *args]
    return subprocess.run(
        command, env={**base, **env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def own_lines(completed: subprocess.CompletedProcess) -> list[str]:
    """What the command printed, without make's own "Error 2" line."""
    text = completed.stdout + completed.stderr
    return [line for line in text.splitlines() if line.strip() and not line.startswith("make: ***")]


def landing_with_orders(root: Path, first: str = "2025-01-01", last: str = "2025-01-31") -> Path:
    """A landing folder holding one customers file and two orders files (only names and headers matter)."""
    landing = root / "landing"
    for relative in (CRM_CUSTOMERS.file_name(first), ORDERS_ORDERS.file_name(first), ORDERS_ORDERS.file_name(last)):
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_text("header\n")
    return landing


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("CRM_AS_OF_DATE", "2025-13-45", "CRM_AS_OF_DATE=2025-06-30"),
        ("CRM_LOCK_TIMEOUT_SECONDS", "ten", "CRM_LOCK_TIMEOUT_SECONDS=600"),
        ("CRM_MAX_QUARANTINE_RATE", "5%", "CRM_MAX_QUARANTINE_RATE=0.05"),
        ("CRM_MAX_QUARANTINE_RATE", "5", "CRM_MAX_QUARANTINE_RATE=0.05"),
    ],
)
def test_a_bad_setting_is_one_line_with_the_fix_and_no_traceback(tmp_path, variable, value, fix):
    completed = run_command({"CRM_DATA_DIR": str(tmp_path), variable: value})
    assert completed.returncode == 2
    lines = own_lines(completed)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Configuration problem, nothing was run:") and repr(value) in lines[0]
    assert fix in lines[0]
    assert "Traceback" not in completed.stderr


def test_make_run_never_simulates_into_a_mistyped_landing_folder(tmp_path):
    typo = tmp_path / "landnig"
    completed = run_command(
        {"CRM_DATA_DIR": str(tmp_path / "data"), "CRM_LANDING_DIR": str(typo)},
        make=True,
    )
    assert completed.returncode != 0
    out = "\n".join(own_lines(completed))
    assert "simulating" not in out.lower()
    assert f"landing folder {typo} does not exist" in out and "CRM_LANDING_DIR" in out
    assert "Traceback" not in out
    assert not typo.exists(), "nothing was written into the folder the user named"
    assert not (tmp_path / "data" / "warehouse").exists(), "nothing was built"


def test_the_demo_company_goes_only_into_the_projects_empty_demo_folder(tmp_path, monkeypatch):
    assert load_settings({}).landing_dir == DEMO_LANDING_DIR, "the default landing folder is the demo folder"
    assert not demo_landing_needed(tmp_path / "landing"), "a folder the user named is never filled"
    assert not demo_landing_needed(tmp_path), "nor an empty data folder"
    # The project's own folder (here moved to tmp_path) is filled only while it holds no source files.
    demo = tmp_path / "project" / "data" / "landing"
    monkeypatch.setattr(preflight, "DEMO_LANDING_DIR", demo)
    assert demo_landing_needed(demo), "missing: simulate"
    demo.mkdir(parents=True)
    assert demo_landing_needed(demo), "empty: simulate"
    landing_with_orders(demo.parent)
    assert not demo_landing_needed(demo), "holds files: never simulate over them"


def test_as_of_date_is_checked_against_the_landed_orders(tmp_path):
    landing = landing_with_orders(tmp_path)
    base = load_settings({"CRM_DATA_DIR": str(tmp_path)})
    assert base.landing_dir == landing
    for configured, expected in [
        ("2030-01-01", "is after the latest order loaded or landed (2025-01-31)"),
        ("2024-06-30", "is before the first order loaded or landed (2025-01-01)"),
    ]:
        settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_AS_OF_DATE": configured})
        [problem] = data_problems(settings)
        assert expected in problem and "between 2025-01-01 and 2025-01-31" in problem
    assert data_problems(load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_AS_OF_DATE": "2025-01-15"})) == []
    assert as_of_problems(date(2030, 1, 1), None, None) == [], "nothing loaded: nothing to compare"


def test_as_of_date_is_checked_against_the_warehouse(tmp_path):
    landing_with_orders(tmp_path, "2025-03-01", "2025-03-02")
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw; create schema intermediate")
        con.execute(
            "create table raw.orders_orders as select * from (values (timestamp '2024-02-01 10:00'), "
            "(timestamp '2025-02-27 09:00')) t(ordered_at)"
        )
        con.execute("create table intermediate.int_calendar__as_of as select date '2025-03-02' as as_of_date")
    env = {"CRM_DATA_DIR": str(tmp_path)}
    [early] = data_problems(load_settings({**env, "CRM_AS_OF_DATE": "2024-01-31"}))
    assert "before the first order loaded or landed (2024-02-01)" in early
    [rewound] = data_problems(load_settings({**env, "CRM_AS_OF_DATE": "2025-01-31"}))
    assert "before the date this warehouse was built for (2025-03-02)" in rewound
    assert data_problems(load_settings({**env, "CRM_AS_OF_DATE": "2025-03-02"})) == []


def test_a_future_as_of_date_is_refused_before_any_work_and_the_warehouse_stays_as_it_was(tmp_path):
    landing_with_orders(tmp_path)
    warehouse = tmp_path / "warehouse" / "crm.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw; create table raw.orders_orders as select timestamp '2025-01-20' as ordered_at")
    before = warehouse.read_bytes()
    completed = run_command({"CRM_DATA_DIR": str(tmp_path), "CRM_AS_OF_DATE": "2030-01-01"})
    assert completed.returncode == 2
    lines = own_lines(completed)
    assert lines[0] == "Configuration problems, nothing was run:"
    assert "CRM_AS_OF_DATE=2030-01-01 is after the latest order loaded or landed (2025-01-31)" in lines[1]
    assert "Traceback" not in completed.stderr
    assert warehouse.read_bytes() == before
    assert not (tmp_path / "dagster_home" / "history").exists(), "no run was started"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc, where no one can create files")
def test_an_unwritable_serving_path_fails_preflight(tmp_path):
    [problem] = serving_problems(Path("/proc/crm_serving/crm_serving.duckdb"))
    assert "serving folder /proc/crm_serving is not writable" in problem and "CRM_SERVING_PATH" in problem
    [folder] = serving_problems(tmp_path)
    assert "CRM_SERVING_PATH" in folder and "is a folder" in folder
    landing_with_orders(tmp_path)
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_SERVING_PATH": "/proc/crm_serving/x.duckdb"})
    with pytest.raises(Exception, match="CRM_SERVING_PATH"):
        check_configuration(settings, environ={})


def _default_stop_signals() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_the_printed_dbt_docs_command_serves_the_docs(tmp_path):
    import signal
    import socket
    import time
    import urllib.request

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "Browse them: make docs-serve" in makefile
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["make", "--no-print-directory", "docs-serve", f"DOCS_PORT={port}"],
        env={**{k: v for k, v in os.environ.items() if k not in CRM_VARIABLES}, "CRM_DATA_DIR": str(tmp_path)},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # As in a terminal: a runner that ignores SIGINT/SIGTERM (a background job, some CI
        # launchers) passes that on, and the server then outlived the test (make waits for dbt).
        preexec_fn=_default_stop_signals,
    )
    try:
        while True:
            assert server.poll() is None, server.communicate()[0][-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                    assert response.status == 200 and b"dbt" in response.read()
                    break
            except OSError:
                time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C, as the Makefile's message says
        server.wait(timeout=60)
