"""Sampler + storage overhead per trial at scale: a 10,000-trial study on a journal file, and `nas pareto` on it.

A study with a cheap proxy (``params``) isolates what the search itself costs: per trial, the wall time between
consecutive trial callbacks minus the time spent in ``Evaluator.evaluate`` (latency lookup and the proxy) is the
sampler's and the storage's share. Reported as the median over windows of 500 trials (first, middle, last).

- fbnet-c100 x raspi4, 10,000 trials (the default sampler, ``front``);
- mobilenet-c10 x x86-2vcpu, 2,000 trials (~100 choices a trial, each a storage write);
- then ``write_report`` (what `nas pareto` runs) on the 10,000-trial study.

Usage: python -m experiments.search.search_scale_benchmark [--trials 10000] [--mobilenet-trials 2000]
       [--sampler front] [--out-dir DIR] [--name STEM]
Writes <out-dir>/<name>.{md,json} and the per-trial times (.csv) (out-dir: experiments/search/results, name:
search_scale_benchmark). Timing: give it the machine (the load average is recorded).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import add_out_dir, write_results


def timed_study(space: str, device: str, trials: int, sampler: str, storage: str) -> pd.DataFrame:
    """Run one study; per trial: wall seconds since the previous trial ended and seconds inside evaluate."""
    import optuna

    from nas.search import SearchConfig
    from nas.search.run import build_evaluator, search_from_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = SearchConfig(space=space, devices=[device], trials=trials, proxy="params", data="noise", sampler=sampler,
                       storage=storage, study="scale")
    evaluator = build_evaluator(cfg)
    inner = evaluator.evaluate
    spent: list[float] = []

    def evaluate(arch):
        t0 = time.perf_counter()
        try:
            return inner(arch)
        finally:
            spent.append(time.perf_counter() - t0)

    evaluator.evaluate = evaluate
    run = search_from_config(cfg, evaluator=evaluator)
    stamps: list[float] = []
    evals: list[float] = []
    last = [time.perf_counter()]

    def callback(_frozen) -> None:
        now = time.perf_counter()
        stamps.append(now - last[0])
        evals.append(sum(spent))
        spent.clear()
        last[0] = now

    run.optimize(trials, callback=callback)
    wall = np.array(stamps)
    ev = np.array(evals)
    return pd.DataFrame({"space": space, "trial": np.arange(len(wall)), "wall_ms": 1e3 * wall,
                         "evaluate_ms": 1e3 * ev, "overhead_ms": 1e3 * (wall - ev)})


def windows(df: pd.DataFrame, size: int = 500) -> list[dict]:
    n = len(df)
    out = []
    for name, lo in (("first", 0), ("middle", max(0, n // 2 - size // 2)), ("last", max(0, n - size))):
        w = df.iloc[lo:lo + size]
        out.append({"space": df["space"].iloc[0], "window": f"{name} (trials {lo}-{lo + len(w) - 1})",
                    "overhead_ms_median": round(float(w["overhead_ms"].median()), 2),
                    "wall_ms_median": round(float(w["wall_ms"].median()), 2),
                    "evaluate_ms_median": round(float(w["evaluate_ms"].median()), 2)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--mobilenet-trials", type=int, default=2_000)
    p.add_argument("--sampler", default="front")
    add_out_dir(p, "search", name="search_scale_benchmark")
    args = p.parse_args()
    import torch

    from nas.search.report import write_report

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    load_before = open("/proc/loadavg").read().split()[:3]
    t0 = time.time()
    big = f"journal:///{tmp}/fbnet.journal"
    frames = [timed_study("fbnet-c100", "raspi4", args.trials, args.sampler, big)]
    if args.mobilenet_trials:
        frames.append(timed_study("mobilenet-c10", "x86-2vcpu", args.mobilenet_trials, args.sampler,
                                  f"journal:///{tmp}/mobilenet.journal"))
    r0 = time.perf_counter()
    write_report(big, "scale", tmp / "report")
    report_s = time.perf_counter() - r0
    rows = [w for f in frames for w in windows(f)]
    table = pd.DataFrame(rows)
    load_after = open("/proc/loadavg").read().split()[:3]
    meta = {"sampler": args.sampler, "storage": "journal file",
            "trials": {"fbnet-c100": args.trials, "mobilenet-c10": args.mobilenet_trials},
            "pareto_report_seconds": round(report_s, 1), "minutes": round((time.time() - t0) / 60, 1),
            "load_average_before": load_before, "load_average_after": load_after, "windows": rows}
    md = ["# Search scale benchmark\n",
          f"Sampler {args.sampler}, journal storage, "
          f"1 worker, proxy params; load average before {' '.join(load_before)}, after {' '.join(load_after)}.\n",
          "Overhead = wall time per trial minus the time in Evaluator.evaluate (latency lookup + proxy): what the "
          "sampler and the storage cost.\n", table.to_markdown(index=False), "",
          f"`write_report` (`nas pareto`) on the {args.trials}-trial study: {report_s:.1f} s.", ""]
    write_results(args.out_dir, args.name, rows=pd.concat(frames), md="\n".join(md), summary=meta)
    print("\n".join(md))


if __name__ == "__main__":
    main()
