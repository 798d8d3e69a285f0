"""Latency-table benchmark on this machine: per-layer table sum vs whole-network onnxruntime latency.

For mobilenet-c10, fp32 and int8 (W8A8 static QDQ), 1 thread:
  1. draw calibration architectures (seed 1) and 50 evaluation architectures (seed 2), disjoint draws;
  2. profile only the signatures those architectures need (`nas lut profile --archs`, resumable), timing it;
  3. `validate --calibrate` on the calibration set, then `validate` on the 50 evaluation architectures:
     raw table sum and calibrated prediction vs end-to-end measurement (MAPE, share within ±10 %, Spearman).

Usage: .venv/bin/python experiments/latency_benchmark.py [--n-cal 20] [--n-eval 50] [--stat p10]
Writes experiments/results/latency_benchmark.{json,md} and per-architecture CSVs; the profiled table goes
to experiments/results/latency_tables/ (a re-run reuses it: delete it to re-profile).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd

from nas.latency.profile import ProfileConfig, profile_space
from nas.latency.validate import validate
from nas.space import load_space

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SPACE = "mobilenet-c10"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cal", type=int, default=20)
    p.add_argument("--n-eval", type=int, default=50)
    p.add_argument("--stat", default="p10", choices=("median", "p10", "min"))
    p.add_argument("--device-name", default="bench-cpu")
    p.add_argument("--dtypes", default="fp32,int8")
    args = p.parse_args()

    space = load_space(SPACE)
    cal = space.sample_many(args.n_cal, seed=1)
    ev = space.sample_many(args.n_eval, seed=2)
    assert not {space.format(a) for a in cal} & {space.format(a) for a in ev}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = RESULTS / "latency_tables"
    files = {}
    for name, archs in (("cal", cal), ("eval", ev), ("all", cal + ev)):
        files[name] = RESULTS / f"latency_{name}_archs.csv"
        pd.DataFrame({"arch": [space.format(a) for a in archs]}).to_csv(files[name], index=False)

    dtypes = args.dtypes.split(",")
    cfg = ProfileConfig(threads=1, warmup=10, repeats=20, rounds=2, stat=args.stat)
    t0 = time.perf_counter()
    table = profile_space(SPACE, args.device_name, dtypes=dtypes, archs_csv=str(files["all"]), config=cfg,
                          out_dir=tables, description="benchmark table for experiments/latency_benchmark.py")
    profile_s = time.perf_counter() - t0
    n_rows = sum(1 for _ in open(table)) - 1

    results = {"space": SPACE, "threads": 1, "stat": args.stat, "n_cal": args.n_cal, "n_eval": args.n_eval,
               "profile_seconds_this_run": profile_s, "table_rows": n_rows,
               "host": f"{platform.machine()} {platform.processor()}", "dtypes": {}}
    for dtype in dtypes:
        c = validate(str(table), SPACE, dtype=dtype, threads=1, calibrate=True, archs_csv=str(files["cal"]),
                     output=str(RESULTS / f"latency_cal_{dtype}.csv"))
        print(c.summary())
        e = validate(str(table), SPACE, dtype=dtype, threads=1, archs_csv=str(files["eval"]),
                     output=str(RESULTS / f"latency_eval_{dtype}.csv"))
        print(e.summary())
        results["dtypes"][dtype] = {"raw": e.raw, "calibrated": e.calibrated,
                                    "calibration": c.calibration.to_dict(), "validate_seconds": e.seconds}

    lines = ["| dtype | predictor | MAPE % | within ±10 % | Spearman | mean pred/measured |", "|---|---|---|---|---|---|"]
    for dtype, r in results["dtypes"].items():
        for kind in ("raw", "calibrated"):
            m = r[kind]
            lines.append(f"| {dtype} | {'table sum' if kind == 'raw' else 'calibrated'} | {m['mape_pct']:.1f} | "
                         f"{m['within10_pct']:.0f} % | {m['spearman']:.3f} | {m['mean_ratio']:.3f} |")
    table_md = "\n".join(lines)
    print(table_md)
    print(f"profiling: {n_rows} signatures in the table; this run measured for {profile_s:.0f} s")
    (RESULTS / "latency_benchmark.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latency_benchmark.md").write_text(
        f"# Latency table benchmark ({SPACE}, 1 thread, stat={args.stat})\n\n"
        f"Command: `.venv/bin/python experiments/latency_benchmark.py --n-cal {args.n_cal} --n-eval {args.n_eval} "
        f"--stat {args.stat}`\n\n{table_md}\n\nEvaluation on {args.n_eval} architectures (seed 2) not used for the "
        f"calibration ({args.n_cal} architectures, seed 1). Profiling: {n_rows} signatures, "
        f"{profile_s:.0f} s in this run. Machine: 2 vCPUs shared with other jobs, timings are noisy.\n")


if __name__ == "__main__":
    main()
