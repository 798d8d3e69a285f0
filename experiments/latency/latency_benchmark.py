"""Latency-table benchmark on this machine: per-layer table sum vs whole-network onnxruntime latency.

For mobilenet-c10, fp32 and int8 (W8A8 static QDQ), 1 thread:
  1. draw calibration architectures (seed 1) and 50 evaluation architectures (seed 2), disjoint draws;
  2. profile only the signatures those architectures need (`nas lut profile --archs`, resumable), timing it;
  3. "separate sessions" (the user's workflow): `validate --calibrate` on the calibration set, then `validate`
     on the 50 evaluation architectures: raw table sum and calibrated prediction vs end-to-end measurement
     (MAPE, share within ±10 %, Spearman);
  4. "one session": `validate` on calibration + evaluation architectures together (one interleaved measurement),
     the calibration fitted on the calibration rows only (`Calibration.fit`, same model selection) and scored on
     the evaluation rows. The difference between 3 and 4 is how much this machine's speed drifted between
     measurement sessions, not the table.
Every timed call (layers and networks) is paired with the profiler's reference kernel (protocol 2).

Usage: python -m experiments.latency.latency_benchmark [--n-cal 20] [--n-eval 50] [--stat median] [--out-dir DIR]
Writes <out-dir>/latency_benchmark.{json,md} and per-architecture CSVs (out-dir: experiments/latency/results);
the profiled table goes to <out-dir>/latency_tables/ (a re-run reuses it: delete it to re-profile).
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from experiments.harness import add_out_dir, write_results
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.latency import Calibration
from nas.latency.measure.validate import validate
from nas.latency.metrics import metrics
from nas.space import load_space

SPACE = "mobilenet-c10"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cal", type=int, default=20)
    p.add_argument("--n-eval", type=int, default=50)
    p.add_argument("--stat", default="median", choices=("median", "p10", "min"))
    p.add_argument("--device-name", default="bench-cpu")
    p.add_argument("--dtypes", default="fp32,int8")
    add_out_dir(p, "latency")
    args = p.parse_args()
    results_dir = args.out_dir
    import torch

    torch.set_num_threads(1)  # exports for profiling and timing: one thread, as the tables are measured

    space = load_space(SPACE)
    cal = space.sample_many(args.n_cal, seed=1)
    ev = space.sample_many(args.n_eval, seed=2)
    assert not {space.format(a) for a in cal} & {space.format(a) for a in ev}
    results_dir.mkdir(parents=True, exist_ok=True)
    tables = results_dir / "latency_tables"
    files = {}
    for name, archs in (("cal", cal), ("eval", ev), ("all", cal + ev)):
        files[name] = results_dir / f"latency_{name}_archs.csv"
        pd.DataFrame({"arch": [space.format(a) for a in archs]}).to_csv(files[name], index=False)

    dtypes = args.dtypes.split(",")
    cfg = ProfileConfig(threads=1, warmup=10, repeats=20, rounds=2, stat=args.stat)
    t0 = time.perf_counter()
    table = profile_space(SPACE, args.device_name, dtypes=dtypes, archs=str(files["all"]), config=cfg,
                          out_dir=tables, description="benchmark table for experiments/latency/latency_benchmark.py").path
    profile_s = time.perf_counter() - t0
    n_rows = sum(1 for _ in open(table)) - 1

    results = {"space": SPACE, "threads": 1, "stat": args.stat, "n_cal": args.n_cal, "n_eval": args.n_eval,
               "profile_seconds_this_run": profile_s, "table_rows": n_rows, "dtypes": {}}
    for dtype in dtypes:
        c = validate(str(table), SPACE, dtype=dtype, threads=1, calibrate=True, archs=str(files["cal"]),
                     output=str(results_dir / f"latency_cal_{dtype}.csv"))
        print(c.summary())
        e = validate(str(table), SPACE, dtype=dtype, threads=1, archs=str(files["eval"]),
                     output=str(results_dir / f"latency_eval_{dtype}.csv"))
        print(e.summary())
        both = validate(str(table), SPACE, dtype=dtype, threads=1, archs=str(files["all"]),
                        output=str(results_dir / f"latency_all_{dtype}.csv"))
        print(both.summary())
        rows_cal, rows_ev = both.rows[:args.n_cal], both.rows[args.n_cal:]
        same = Calibration.fit([r["table_ms"] for r in rows_cal], [r["n_layers"] for r in rows_cal],
                               [r["measured_ms"] for r in rows_cal], dtype=dtype)
        meas_ev = [r["measured_ms"] for r in rows_ev]
        results["dtypes"][dtype] = {
            "separate sessions": {"raw": e.raw, "calibrated": e.calibrated, "calibration": c.calibration.to_dict()},
            "one session": {"raw": metrics([r["table_ms"] for r in rows_ev], meas_ev),
                            "calibrated": metrics([same.apply(r["table_ms"], r["n_layers"]) for r in rows_ev],
                                                  meas_ev),
                            "calibration": same.to_dict()},
            "validate_seconds": e.seconds,
            "notes": {"calibration set": c.notes, "evaluation set": e.notes, "one session": both.notes}}

    lines = ["| dtype | calibration measured | predictor | MAPE % | within ±10 % | Spearman | mean pred/measured |",
             "|---|---|---|---|---|---|---|"]
    for dtype, r in results["dtypes"].items():
        for session in ("separate sessions", "one session"):
            for kind in ("raw", "calibrated"):
                m = r[session][kind]
                label = "table sum" if kind == "raw" else f"calibrated ({r[session]['calibration']['form']})"
                lines.append(f"| {dtype} | {session} | {label} | {m['mape_pct']:.1f} | {m['within10_pct']:.0f} % | "
                             f"{m['spearman']:.3f} | {m['mean_ratio']:.3f} |")
    table_md = "\n".join(lines)
    print(table_md)
    print(f"profiling: {n_rows} signatures in the table; this run measured for {profile_s:.0f} s")
    written = [*files.values(), table, *(results_dir / f"latency_{s}_{d}.csv" for s in ("cal", "eval", "all")
                                         for d in dtypes)]
    write_results(results_dir, "latency_benchmark", summary=results, files=written, md=(
        f"# Latency table benchmark ({SPACE}, 1 thread, stat={args.stat})\n\n"
        f"{table_md}\n\nEvaluation on {args.n_eval} architectures (seed 2) not used for the "
        f"calibration ({args.n_cal} architectures, seed 1). Profiling: {n_rows} signatures, "
        f"{profile_s:.0f} s in this run. Every timed call is paired with the reference kernel (a machine's speed "
        f"drifts). 'separate sessions': calibration fitted by `validate --calibrate` on the "
        f"calibration set, evaluation set measured in a later session; 'one session': both sets measured together, "
        f"calibration fitted on the calibration rows only.\n"))


if __name__ == "__main__":
    main()
