"""The job's two CLV steps on a built warehouse: seconds and peak memory of each.

Not a test: runs ``analytics/clv_model`` (choose, fit and save the models) and
``analytics/customer_clv`` (score every CRM customer, write the rows) of the real
``full_pipeline`` job in process, as ``make bench`` does, on the warehouse of a data
folder a ``pipeline.py`` or ``make run`` built (it writes a model and one scoring run
there). Prints one line per step and records the run in
``benchmarks/results/clv_scale.json`` under ``--label``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/clv_scale.py --data-dir /tmp/bench3m --label 3M
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import pipeline_environment, record_run, run_job

RESULTS = Path(__file__).resolve().parent / "results" / "clv_scale.json"
STEPS = ("analytics__clv_model", "analytics__customer_clv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="CRM_DATA_DIR of a built warehouse")
    parser.add_argument("--label", required=True, help="name of the run in the results file, e.g. 3M")
    args = parser.parse_args()
    import dagster as dg

    load_at_start = os.getloadavg()
    with pipeline_environment(args.data_dir) as paths:
        run = run_job(
            "full_pipeline",
            paths,
            assets=[dg.AssetKey(["analytics", "clv_model"]), dg.AssetKey(["analytics", "customer_clv"])],
        )
    if not run["success"]:
        print(json.dumps(run["steps"], indent=1))
        return 1
    steps = {
        s["step"]: {k: round(s[k], 1) for k in ("seconds", "peak_rss_mib", "own_rss_at_peak_mib")}
        for s in run["steps"]
        if s["step"] in STEPS
    }
    result = {
        "data_dir": str(args.data_dir),
        "steps": steps,
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    for step, figures in steps.items():
        print(f"{step:28s} {figures['seconds']:7.1f} s  peak {figures['peak_rss_mib']:7.0f} MiB")
    record_run(RESULTS, args.label, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
