"""Command line: ``python -m crm_simulator --customers 10000 --days 730 --seed 7 --out data/landing``."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crm_simulator",
        description="Simulate one retailer's source systems; write their daily export files and the ground truth.",
    )
    parser.add_argument(
        "--customers", type=int, default=SimulationConfig.customers, help="customers created over the window"
    )
    parser.add_argument("--days", type=int, default=SimulationConfig.days, help="length of the export window in days")
    parser.add_argument("--seed", type=int, default=SimulationConfig.seed, help="random seed (same seed, same files)")
    parser.add_argument("--out", type=Path, required=True, help="landing folder to write")
    parser.add_argument(
        "--truth-out", type=Path, default=None, help='ground-truth folder (default: sibling "truth" of --out)'
    )
    parser.add_argument(
        "--start-date",
        type=date.fromisoformat,
        default=SimulationConfig.start_date,
        help="first export day, YYYY-MM-DD",
    )
    parser.add_argument(
        "--dirty-rate", type=float, default=SimulationConfig.dirty_rate, help="fraction of rows added as bad records"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SimulationConfig(
            customers=args.customers,
            days=args.days,
            seed=args.seed,
            start_date=args.start_date,
            dirty_rate=args.dirty_rate,
        )
        summary = simulate_company(config, args.out, args.truth_out, progress=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
