"""Search benchmark: candidates per second, and NSGA-II vs TPE vs random on NAS-Bench-Macro.

    python -m experiments.search.search_benchmark          # full run (prints tables, writes results)
    python -m experiments.search.search_benchmark --quick  # smaller budgets, for a smoke test

Part A: candidates (trials) per second of `nas search`, in-process, 1 worker, for fbnet-c100 on the shipped
raspi4 table and mobilenet-c10 on this machine's table (x86-2vcpu, fp32), with a cheap proxy (params)
and with the default proxy, on SQLite (the default storage) and on a journal file. Wall time includes
the sampler, the storage writes, latency prediction and scoring; it excludes process start-up.

Part B: search quality on nas-bench-macro (6,561 architectures) with the x86-2vcpu table: each sampler at
an equal budget of trials, several seeds; hypervolume in (proxy, latency) space with one reference point
for all runs; and the true CIFAR-10 accuracy (NAS-Bench-Macro dev slice) of the Pareto-front members that
are in the slice. Results: <out-dir>/search_benchmark.{json,md} and search_benchmark_trials.csv (out-dir:
experiments/search/results).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import ROOT, add_out_dir, write_results
from nas.search.front import front, load_trials
from nas.search.hypervolume import hypervolume
from nas.proxies import DEFAULT_PROXY
from nas.search import SearchConfig, search
from nas.search.run import build_evaluator
from nas.space import load_space

DEV = ROOT / "tests" / "data" / "nas_bench_macro_dev.csv"


def rate(space: str, device: str, proxy: str, storage_kind: str, trials: int, dtype: str | None, tmp: Path) -> dict:
    storage = f"sqlite:///{tmp}/{space}-{proxy}.db" if storage_kind == "sqlite" else f"journal:///{tmp}/{space}-{proxy}.journal"
    cfg = SearchConfig(space=space, devices=[device], trials=trials, proxy=proxy, data="digits", seed=0,
                       storage=storage, study="rate", dtype=dtype).resolved()
    evaluator = build_evaluator(cfg)
    if proxy != "params":  # one-off set-up (e.g. the ensemble's reference sample) is not a per-candidate cost
        evaluator.scorer.score(load_space(space).sample_many(1, seed=999)[0])
    t0 = time.perf_counter()
    summary = search(cfg, evaluator=evaluator)
    wall = time.perf_counter() - t0
    return {"space": space, "device": device, "dtype": dtype or "arch", "proxy": proxy, "storage": storage_kind,
            "trials": summary.trials, "seconds": round(wall, 2), "candidates_per_s": round(summary.trials / wall, 2)}


def quality(samplers, seeds, trials, proxy, tmp: Path) -> tuple[list[dict], pd.DataFrame]:
    dev = pd.read_csv(DEV, dtype={"arch": str})
    space = load_space("nas-bench-macro")
    acc = {space.format(space.parse(a)): v for a, v in zip(dev["arch"], dev["test_acc_mean"])}
    base = SearchConfig(space="nas-bench-macro", devices=["x86-2vcpu"], trials=trials, proxy=proxy, data="digits",
                        dtype="fp32")
    evaluator = build_evaluator(base)  # one scorer for all runs: each architecture scored once
    runs, frames = [], []
    for sampler in samplers:
        for seed in seeds:
            cfg = SearchConfig(**{**base.__dict__, "sampler": sampler, "seed": seed,
                                  "storage": f"journal:///{tmp}/q-{sampler}-{seed}.journal", "study": "q"})
            t0 = time.perf_counter()
            search(cfg, evaluator=evaluator)
            _, stored_cfg, df = load_trials(cfg.storage, "q")
            best, cols, dirs = front(df, stored_cfg)
            df["sampler"], df["seed"] = sampler, seed
            frames.append(df)
            in_dev = [acc[a] for a in best["arch"] if a in acc]
            runs.append({"sampler": sampler, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
                         "unique_archs": int(df["arch"].nunique()), "front": len(best),
                         "front_in_dev": len(in_dev),
                         "front_mean_true_acc": round(float(np.mean(in_dev)), 3) if in_dev else None,
                         "front_best_true_acc": round(float(np.max(in_dev)), 3) if in_dev else None,
                         "_values": df[cols].to_numpy(dtype=float).tolist(), "_dirs": dirs})
    # one reference point for every run: worst value of each objective over all runs, 5% further out
    allv = np.array([v for r in runs for v in r["_values"]])
    dirs = runs[0]["_dirs"]
    ref = []
    for j, d in enumerate(dirs):
        lo, hi = allv[:, j].min(), allv[:, j].max()
        span = hi - lo or 1.0
        ref.append(lo - 0.05 * span if d == "maximize" else hi + 0.05 * span)
    scale = np.prod([(allv[:, j].max() - allv[:, j].min()) or 1.0 for j in range(len(dirs))])
    for r in runs:
        r["hypervolume"] = round(hypervolume(np.array(r.pop("_values")), dirs, np.array(ref)) / scale, 4)
        r.pop("_dirs")
    return runs, pd.concat(frames, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller budgets, for a smoke test (default off)")
    add_out_dir(ap, "search")
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the library leaves Optuna's logging alone
    n_cheap, n_default = (60, 10) if args.quick else (300, 40)
    seeds = [0, 1] if args.quick else [0, 1, 2]
    q_trials = 40 if args.quick else 100
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rates = []
        for space, device, dtype in (("fbnet-c100", "raspi4", None), ("mobilenet-c10", "x86-2vcpu", "fp32")):
            for storage in ("sqlite", "journal"):
                rates.append(rate(space, device, "params", storage, n_cheap, dtype, tmp / f"{storage}-cheap"))
            rates.append(rate(space, device, DEFAULT_PROXY, "journal", n_default, dtype, tmp / "default"))
        for r in rates:
            print(r)
        runs, trials = quality(["nsga2", "tpe", "random"], seeds, q_trials, DEFAULT_PROXY, tmp)
    summary = (pd.DataFrame(runs).groupby("sampler")
               .agg(hypervolume=("hypervolume", "median"), front=("front", "median"),
                    front_mean_true_acc=("front_mean_true_acc", "mean"),
                    front_best_true_acc=("front_best_true_acc", "mean"), unique_archs=("unique_archs", "median"))
               .reset_index())
    lines = ["# Search benchmark", "", f"1 worker, default proxy = `{DEFAULT_PROXY}`, data = digits.", "",
             "## A. Candidates per second (in-process, start-up excluded)", "",
             pd.DataFrame(rates).to_markdown(index=False), "",
             f"## B. NAS-Bench-Macro, {q_trials} trials per run, seeds {seeds}, objectives ({DEFAULT_PROXY}, latency on x86-2vcpu fp32)", "",
             "Hypervolume is normalised by the objective ranges over all runs (one reference point for all). True accuracy: "
             "CIFAR-10 test accuracy of front members that are in the 400-architecture dev slice.", "",
             "### Median over seeds", "", summary.to_markdown(index=False), "", "### Every run", "",
             pd.DataFrame(runs).to_markdown(index=False), ""]
    text = "\n".join(lines)
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    trials.to_csv(args.out_dir / "search_benchmark_trials.csv", index=False)
    write_results(args.out_dir, "search_benchmark", md=text, summary={"rates": rates, "quality": runs},
                  files=[args.out_dir / "search_benchmark_trials.csv"])


if __name__ == "__main__":
    main()
