"""The real Dagster UI in headless Chromium on a built test warehouse (tests/ui_screenshots.py)."""

from __future__ import annotations

import os

import pytest
from pipeline_support import clone_pipeline
from ui_screenshots import CHROMIUM, PAGES, capture, dagster_webserver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_texts(built_pipeline, tmp_path_factory) -> tuple[dict[str, str], object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no browser at {CHROMIUM} in CI: run `bash scripts/browser.sh`")
        pytest.skip(f"no browser at {CHROMIUM}: run `bash scripts/browser.sh`")
    root = clone_pipeline(built_pipeline, tmp_path_factory.mktemp("ui") / "data")
    shots = root.parent / "screenshots"
    with dagster_webserver(root, root / "dagster_home") as url:
        texts = capture(url, shots)
    return texts, shots


def test_lineage_page_shows_every_layer_group(ui_texts):
    texts, _ = ui_texts
    lineage = texts["asset_lineage.png"]
    assert "Global asset lineage" in lineage
    for group in ("ingestion", "staging", "intermediate", "marts", "analytics", "scored", "publish"):
        assert group in lineage, group


def test_mart_page_shows_its_quality_checks_passed(ui_texts):
    texts, _ = ui_texts
    mart = texts["mart_dim_customers_checks.png"]
    assert "dim_customers" in mart
    assert "gx_suite" in mart
    assert "blocking" in mart
    assert "Passed" in mart
    # The check list beside it: dbt tests and the GX suite, all succeeded.
    assert "Checks (" in mart and "Succeeded" in mart and "Failed" not in mart


def test_marts_group_and_runs_pages_show_the_pipeline(ui_texts, built_pipeline):
    texts, _ = ui_texts
    # The graph renders only the nodes in view: the middle mart and its checks.
    group = texts["marts_group.png"]
    for text in ("lifecycle_patterns", "Asset checks", "Passed", "Materialized"):
        assert text in group, text
    assert "full_pipeline" in texts["runs.png"]
    assert built_pipeline.run_id[:8] in texts["runs.png"]
    assert "Success" in texts["runs.png"]


def test_screenshots_are_real_images(ui_texts):
    _, shots = ui_texts
    for page in PAGES:
        png = (shots / page.file_name).read_bytes()
        assert png.startswith(b"\x89PNG"), page.file_name
        assert 20_000 < len(png) < 600_000, (page.file_name, len(png))
