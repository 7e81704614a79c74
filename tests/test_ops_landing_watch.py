"""Landing watcher: which files are complete and new, on hand-made scans and a tmp landing folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crm_warehouse.landing_watch import (
    SUCCESS_MARKER,
    LandingCursor,
    LandingFile,
    LandingScan,
    decide,
    is_temporary,
    scan_landing,
    systems_of,
)

SETTLE = 30
T0 = 1_700_000_000.0
MTIME = 1_699_999_000 * 10**9
CRM = LandingFile("crm/2024-03-01.csv", 100, MTIME)
ORDERS = LandingFile("orders/2024-03-01_orders.csv", 50, MTIME)
NEW_CURSOR = LandingCursor()


def scan(*files: LandingFile, markers: dict[str, int] | None = None) -> LandingScan:
    return LandingScan(files=files, markers=markers or {})


def settled(files: tuple[LandingFile, ...], cursor: LandingCursor = NEW_CURSOR) -> LandingCursor:
    """Cursor after the files were seen at T0 and again, unchanged, at T0 + SETTLE."""
    first = decide(scan(*files), cursor, T0, SETTLE)
    return decide(scan(*files), first.cursor, T0 + SETTLE, SETTLE).cursor


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("2024-03-01.csv", False),
        (".2024-03-01.csv", True),
        ("2024-03-01.csv.tmp", True),
        ("2024-03-01.csv.part", True),
        ("_SUCCESS", False),
    ],
)
def test_hidden_and_partial_names_are_temporary(name: str, temporary: bool) -> None:
    assert is_temporary(name) is temporary


def test_scan_matches_contract_globs_and_skips_temporary_names(tmp_path: Path) -> None:
    for name in [
        "crm/2024-03-01.csv",
        "orders/2024-03-01_orders.csv",
        "orders/2024-03-01_order_lines.csv",
        "crm/.024-03-01.csv",
        "crm/2024-03-02.csv.part",
        "crm/2024-03-02.csv.tmp",
        "crm/notes.txt",
        "unknown/2024-03-01.csv",
        "crm/_SUCCESS",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    os.utime(tmp_path / "crm/2024-03-01.csv", ns=(MTIME, MTIME))

    result = scan_landing(tmp_path)

    assert [f.path for f in result.files] == [
        "crm/2024-03-01.csv",
        "orders/2024-03-01_order_lines.csv",
        "orders/2024-03-01_orders.csv",
    ]
    assert result.files[0] == LandingFile("crm/2024-03-01.csv", 2, MTIME)
    assert set(result.markers) == {"crm"}
    assert systems_of(result.files) == ["crm", "orders"]


def test_scan_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="landing folder .*missing does not exist"):
        scan_landing(tmp_path / "missing")


def test_a_file_is_ready_only_after_settle_seconds_unchanged() -> None:
    first = decide(scan(CRM), LandingCursor(), T0, SETTLE)
    assert first.waiting == (CRM,) and first.to_run == ()
    assert "still being written" in first.explain() and CRM.path in first.explain()

    early = decide(scan(CRM), first.cursor, T0 + SETTLE - 1, SETTLE)
    assert early.waiting == (CRM,)

    on_time = decide(scan(CRM), early.cursor, T0 + SETTLE, SETTLE)
    assert on_time.to_run == (CRM,) and on_time.waiting == ()
    assert on_time.cursor.triggered == {CRM.fingerprint} and not on_time.cursor.settling


def test_a_growing_file_restarts_its_settle_time() -> None:
    first = decide(scan(CRM), LandingCursor(), T0, SETTLE)
    grown = LandingFile(CRM.path, 200, MTIME + 10**9)
    second = decide(scan(grown), first.cursor, T0 + SETTLE, SETTLE)
    assert second.waiting == (grown,)
    assert second.cursor.settling[CRM.path].since == T0 + SETTLE
    assert decide(scan(grown), second.cursor, T0 + 2 * SETTLE, SETTLE).to_run == (grown,)


def test_each_file_triggers_once() -> None:
    cursor = settled((CRM,))
    again = decide(scan(CRM), cursor, T0 + 10 * SETTLE, SETTLE)
    assert again.to_run == () and again.waiting == ()
    assert again.explain() == "no new landing files"


def test_a_redelivered_file_with_new_content_triggers_again() -> None:
    cursor = settled((CRM,))
    corrected = LandingFile(CRM.path, 120, MTIME + 3600 * 10**9)
    first = decide(scan(corrected), cursor, T0 + 100, SETTLE)
    assert first.waiting == (corrected,)
    rerun = decide(scan(corrected), first.cursor, T0 + 100 + SETTLE, SETTLE)
    assert rerun.to_run == (corrected,)
    # the superseded version's fingerprint is gone: the cursor holds only present files
    assert rerun.cursor.triggered == {corrected.fingerprint}


@pytest.mark.parametrize(("marker_offset_ns", "ready"), [(10**9, True), (0, True), (-(10**9), False)])
def test_a_success_marker_not_older_than_the_file_makes_it_ready_at_once(marker_offset_ns: int, ready: bool) -> None:
    decision = decide(scan(CRM, markers={"crm": MTIME + marker_offset_ns}), LandingCursor(), T0, SETTLE)
    assert decision.to_run == ((CRM,) if ready else ())


def test_a_marker_in_another_folder_does_not_count() -> None:
    decision = decide(scan(CRM, markers={"orders": MTIME + 10**9}), LandingCursor(), T0, SETTLE)
    assert decision.waiting == (CRM,)


def test_no_run_while_part_of_a_delivery_is_still_being_written() -> None:
    first = decide(scan(CRM), LandingCursor(), T0, SETTLE)
    # CRM has settled; ORDERS only just appeared
    mixed = decide(scan(CRM, ORDERS), first.cursor, T0 + SETTLE, SETTLE)
    assert mixed.ready == (CRM,) and mixed.waiting == (ORDERS,) and mixed.to_run == ()
    assert "1 ready file(s) wait for them" in mixed.explain()
    assert mixed.cursor.triggered == frozenset()

    together = decide(scan(CRM, ORDERS), mixed.cursor, T0 + 2 * SETTLE, SETTLE)
    assert together.to_run == (CRM, ORDERS)


def test_run_key_names_the_file_versions() -> None:
    one = decide(scan(CRM, markers={"crm": MTIME}), LandingCursor(), T0, SETTLE)
    same = decide(scan(CRM, markers={"crm": MTIME}), LandingCursor(), T0 + 999, SETTLE)
    changed = LandingFile(CRM.path, 101, MTIME)
    other = decide(scan(changed, markers={"crm": MTIME}), LandingCursor(), T0, SETTLE)
    assert one.run_key == same.run_key != other.run_key
    assert one.run_key.startswith("landing-")


def test_an_empty_scan_keeps_the_cursor() -> None:
    cursor = settled((CRM,))
    assert decide(scan(), cursor, T0 + 500, SETTLE).cursor == cursor


def test_a_removed_file_leaves_the_cursor() -> None:
    cursor = settled((CRM, ORDERS))
    assert decide(scan(ORDERS), cursor, T0 + 500, SETTLE).cursor.triggered == {ORDERS.fingerprint}


def test_cursor_round_trips_and_stays_compact() -> None:
    files = tuple(LandingFile(f"crm/{day:04d}.csv", day, MTIME + day) for day in range(5000))
    settling = decide(scan(ORDERS), LandingCursor(), T0, SETTLE).cursor.settling
    cursor = LandingCursor(triggered=frozenset(f.fingerprint for f in files), settling=settling)
    text = cursor.to_json()
    assert LandingCursor.from_json(text) == cursor
    # 5,000 files (seven years of one source) in under 80 KB: 15 bytes a file
    assert len(text) < 80_000


@pytest.mark.parametrize("text", ["not json", '{"v": 99, "done": [], "wait": {}}', '{"v": 1}', "[1, 2]"])
def test_a_foreign_cursor_is_rejected_with_advice(text: str) -> None:
    with pytest.raises(ValueError, match="not a landing-sensor cursor.*clear the cursor"):
        LandingCursor.from_json(text)


def test_empty_cursor_text_is_the_empty_cursor() -> None:
    assert LandingCursor.from_json(None) == LandingCursor.from_json("") == LandingCursor()


def test_negative_settle_time_is_refused() -> None:
    with pytest.raises(ValueError, match="settle_seconds=-1"):
        decide(scan(CRM), LandingCursor(), T0, -1)


def test_skip_message_lists_a_few_paths_and_counts_the_rest() -> None:
    files = tuple(LandingFile(f"crm/2024-03-{day:02d}.csv", 1, MTIME) for day in range(1, 9))
    message = decide(scan(*files), LandingCursor(), T0, SETTLE).explain()
    assert message.startswith("8 new file(s) still being written")
    assert "crm/2024-03-05.csv and 3 more" in message and "2024-03-06" not in message


def test_marker_file_on_disk_releases_files_in_its_folder(tmp_path: Path) -> None:
    data = tmp_path / "crm" / "2024-03-01.csv"
    data.parent.mkdir()
    data.write_text("a\n")
    os.utime(data, ns=(MTIME, MTIME))
    assert decide(scan_landing(tmp_path), LandingCursor(), T0, SETTLE).to_run == ()
    marker = tmp_path / "crm" / SUCCESS_MARKER
    marker.touch()
    os.utime(marker, ns=(MTIME + 10**9, MTIME + 10**9))
    assert [f.path for f in decide(scan_landing(tmp_path), LandingCursor(), T0, SETTLE).to_run] == [
        "crm/2024-03-01.csv"
    ]
