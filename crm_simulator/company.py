"""Simulate one company and write what its systems export (plus the ground truth)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crm_simulator.catalog import make_catalogue
from crm_simulator.config import Behaviour, SimulationConfig, Window
from crm_simulator.dirty import KeyAllocator
from crm_simulator.exports import (
    catalog_rows,
    crm_rows,
    line_rows,
    order_rows,
    survey_rows,
    ticket_rows,
    touch_rows,
)
from crm_simulator.files import SourceRows, write_source
from crm_simulator.lifecycle import churn_day, make_plan
from crm_simulator.marketing import make_touches
from crm_simulator.orders import COMPLETED, make_orders
from crm_simulator.service import make_surveys, make_tickets
from crm_simulator.truth import (
    write_dirty_manifest,
    write_truth_customers,
    write_truth_stages,
)
from crm_warehouse.contracts import CONTRACTS, SourceContract

TRUTH_FILES = ("customers.parquet", "stages_monthly.parquet", "dirty_records.parquet")
# Independent random stream per component, so changing one leaves the others as they were.
_STREAM = {
    "plan": 1,
    "people": 2,
    "catalog": 3,
    "orders": 4,
    "tickets": 5,
    "surveys": 6,
    "touches": 7,
    "crm": 8,
    "dirty": 9,
}


@dataclass
class SimulationSummary:
    """What a run wrote: file count, rows per raw table (clean and injected), duration."""

    out_dir: Path
    truth_dir: Path
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dirty_rows: dict[str, int] = field(default_factory=dict)
    truth_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [f"wrote {self.files} files to {self.out_dir} (truth: {self.truth_dir}) in {self.seconds:.1f} s"]
        for table, count in self.rows.items():
            dirty = self.dirty_rows.get(table, 0)
            out.append(f"  {table:<22}{count:>13,} rows" + (f" + {dirty:,} dirty" if dirty else ""))
        for name, count in self.truth_rows.items():
            out.append(f"  truth/{name:<16}{count:>13,} rows")
        return out


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[name]])


def _check_dirs(out_dir: Path, truth_dir: Path) -> None:
    out_resolved, truth_resolved = out_dir.resolve(), truth_dir.resolve()
    if truth_resolved == out_resolved or out_resolved in truth_resolved.parents:
        raise ValueError(
            f"truth_dir {truth_dir} must not be inside the landing folder {out_dir}: ingestion would read it"
        )


def _remove_previous(out_dir: Path, truth_dir: Path) -> None:
    """Remove files an earlier run left (only names this simulator writes)."""
    for contract in CONTRACTS:
        for path in sorted(out_dir.glob(contract.file_glob)):
            path.unlink()
    for name in TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)


def simulate_company(
    config: SimulationConfig,
    out_dir: Path,
    truth_dir: Path | None = None,
    behaviour: Behaviour | None = None,
    progress: bool = False,
) -> SimulationSummary:
    """Simulate the company described by ``config``; write landing files to ``out_dir``
    and the ground truth to ``truth_dir`` (default: the sibling folder ``truth``).

    Files an earlier run left in those folders (names this simulator writes) are replaced.
    ``behaviour`` overrides the behavioural defaults; ``progress`` shows a progress bar on
    stderr. Returns what was written.

    Raises
    ------
    ValueError
        If ``truth_dir`` is ``out_dir`` or inside it.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    truth_dir = Path(truth_dir) if truth_dir is not None else out_dir.parent / "truth"
    _check_dirs(out_dir, truth_dir)
    b = behaviour or Behaviour()
    window = Window(config.start_date, config.days)
    seed = config.seed
    summary = SimulationSummary(out_dir=out_dir, truth_dir=truth_dir)
    bar = tqdm(
        total=6 + len(CONTRACTS), desc="simulate", unit="step", disable=not progress, leave=False, postfix="plan"
    )

    def done(next_label: str) -> None:
        bar.set_postfix_str(next_label, refresh=False)
        bar.update()

    catalogue = make_catalogue(_stream(seed, "catalog"), b.catalogue_products)
    plan = make_plan(_stream(seed, "plan"), config.customers, config.days, b)
    done("orders")
    orders = make_orders(_stream(seed, "orders"), plan, catalogue, config.days, window.start_epoch, b)
    completed = orders.status == COMPLETED
    last_completed = np.full(plan.size, -1, dtype=np.int64)
    np.maximum.at(last_completed, orders.customer[completed], orders.day[completed])
    churned_from = churn_day(plan, last_completed, b)
    done("tickets")
    tickets = make_tickets(_stream(seed, "tickets"), plan, orders, config.days, b)
    done("surveys")
    surveys = make_surveys(_stream(seed, "surveys"), plan, churned_from, config.days, b)
    done("touches")
    touches = make_touches(_stream(seed, "touches"), plan, churned_from, window, b)
    done(f"write {CONTRACTS[0].table}")

    builders: dict[str, Callable[[SourceContract], SourceRows]] = {
        "catalog_products": lambda c: catalog_rows(c, catalogue, window),
        "crm_customers": lambda c: crm_rows(c, plan, window, _stream(seed, "crm"), _stream(seed, "people")),
        "orders_orders": lambda c: order_rows(c, orders),
        "orders_order_lines": lambda c: line_rows(c, orders, catalogue),
        "support_tickets": lambda c: ticket_rows(c, tickets, window),
        "surveys_responses": lambda c: survey_rows(c, surveys, window),
        "marketing_touches": lambda c: touch_rows(c, touches, window),
    }
    keys = KeyAllocator(
        {
            "customer": plan.size + 1,
            "order": orders.size + 1,
            "ticket": len(tickets.customer) + 1,
            "response": len(surveys.customer) + 1,
            "touch": len(touches.customer) + 1,
            "product": catalogue.size + 1,
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(out_dir, truth_dir)
    dirty_rng = _stream(seed, "dirty")
    manifests = []
    for index, contract in enumerate(CONTRACTS):
        rows = builders[contract.table](contract)
        files, dirty_count, manifest = write_source(rows, out_dir, window, config.dirty_rate, dirty_rng, keys)
        summary.files += files
        summary.rows[contract.table] = rows.table.num_rows
        summary.dirty_rows[contract.table] = dirty_count
        if manifest is not None:
            manifests.append(manifest)
        done(f"write {CONTRACTS[index + 1].table}" if index + 1 < len(CONTRACTS) else "truth")

    write_truth_customers(truth_dir / "customers.parquet", plan, window, b, churned_from, last_completed)
    summary.truth_rows["customers"] = plan.size
    summary.truth_rows["stages_monthly"] = write_truth_stages(
        truth_dir / "stages_monthly.parquet", plan, window, b, churned_from
    )
    summary.truth_rows["dirty_records"] = write_dirty_manifest(truth_dir / "dirty_records.parquet", manifests)
    done("done")
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
