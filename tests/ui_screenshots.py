"""The real Dagster UI in headless Chromium: start the webserver, open pages, take screenshots.

    python -m tests.ui_screenshots    # current screenshots of the built warehouse into docs/screenshots/

Runs on the configuration of ``make run`` (``CRM_DATA_DIR``, ``DAGSTER_HOME``), so the
screenshots show its runs and materialisations. The browser is Debian's ``chromium``
(``scripts/browser.sh``) driven by the playwright package; nothing is downloaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
STARTUP_SECONDS = 180
PAGE_TIMEOUT_MS = 60_000
MART_PATH = "marts/dim_customers"


@dataclass(frozen=True)
class Page:
    """A page to capture: its URL path, the file name, text that proves it rendered, what to click."""

    path: str
    file_name: str
    must_show: tuple[str, ...]
    click: str | None = None


PAGES = (
    Page(
        "/asset-groups",
        "asset_lineage.png",
        ("ingestion", "staging", "intermediate", "marts", "analytics", "scored", "publish"),
    ),
    Page(
        f"/assets/{MART_PATH}?view=checks",
        "mart_dim_customers_checks.png",
        ("dim_customers", "gx_suite"),
        click="gx_suite",
    ),
    # The group graph opens on its middle: lifecycle_patterns with its checks (the layout is deterministic).
    Page("/locations/crm_warehouse/asset-groups/marts", "marts_group.png", ("lifecycle_patterns", "Asset checks")),
    Page("/runs", "runs.png", ("full_pipeline",)),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_webserver(data_dir: Path, dagster_home: Path) -> Iterator[str]:
    """The real ``dagster-webserver`` on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    env = {**os.environ, "CRM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)}
    log_path = dagster_home / "webserver.log"
    with open(log_path, "w") as log_file:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "workspace.yaml",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_up(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"dagster-webserver did not answer within {STARTUP_SECONDS} s:\n{log_path.read_text()[-2000:]}")


def capture(url: str, out_dir: Path, pages: tuple[Page, ...] = PAGES) -> dict[str, str]:
    """Open each page in headless Chromium, wait for its text, save a PNG; page text by file name."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"no browser at {CHROMIUM}: run `bash scripts/browser.sh`")
    out_dir.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="crm_chromium_") as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            for target in pages:
                page.goto(f"{url}{target.path}", wait_until="domcontentloaded")
                for text in target.must_show:
                    page.get_by_text(text, exact=False).first.wait_for(state="attached")
                _skip_community_dialog(page)
                if target.click:
                    page.get_by_text(target.click, exact=True).first.click()
                page.wait_for_load_state("networkidle")
                # The lineage graph animates its layout after the data arrives.
                page.wait_for_timeout(1500)
                texts[target.file_name] = page.locator("body").inner_text()
                page.screenshot(path=str(out_dir / target.file_name))
        finally:
            browser.close()
    return texts


def _skip_community_dialog(page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # A fresh profile gets Dagster's newsletter dialog once; "Skip" remembers it for the session.
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=3000)
    except PlaywrightTimeout:
        return
    skip.click()


def main() -> int:
    from crm_warehouse.settings import load_settings

    settings = load_settings()
    if not settings.serving_path.exists():
        print(f"No built warehouse under {settings.data_dir}: run `make run` first.")
        return 2
    out_dir = PROJECT_ROOT / "docs" / "screenshots"
    with dagster_webserver(settings.data_dir, settings.dagster_home) as url:
        capture(url, out_dir)
    for target in PAGES:
        path = out_dir / target.file_name
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
