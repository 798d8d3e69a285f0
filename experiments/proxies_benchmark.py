"""Benchmark the training-free proxies against NAS-Bench-Macro CIFAR-10 accuracy (the 400 dev architectures).

For every proxy (and the ensemble): Spearman and Kendall rank correlation with ``test_acc_mean``, a 95%
bootstrap interval of Spearman, split-half values (even / odd rows), and seconds per architecture when the
proxy runs alone (fresh Scorer: model build, inputs and, for the ensemble, its reference sample included).
Prints one table and writes:

    experiments/results/proxies_scores_<data>.csv     per-architecture scores (re-used with --reuse)
    experiments/results/proxies_benchmark_<data>.md   the table, with the command and environment

Reproduce (about 15-25 min on 2 busy cores for all proxies and 400 architectures):

    .venv/bin/python experiments/proxies_benchmark.py --data fashion-mnist --threads 2
    .venv/bin/python experiments/proxies_benchmark.py --data noise --proxies synflow,naswot,ensemble
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "dev" / "nas_bench_macro_dev.csv"
RESULTS = ROOT / "experiments" / "results"


def correlations(truth: np.ndarray, score: np.ndarray, rng: np.random.Generator) -> dict:
    s = pd.Series(score).replace([np.inf, -np.inf], np.nan)
    ok = s.notna().to_numpy()
    # NaN ranked last (worst), as the search does
    filled = s.fillna(s.min() - 1 if ok.any() else 0).to_numpy()
    rho = stats.spearmanr(truth, filled).statistic
    tau = stats.kendalltau(truth, filled).statistic
    boots = []
    for _ in range(300):
        i = rng.integers(0, len(truth), len(truth))
        boots.append(stats.spearmanr(truth[i], filled[i]).statistic)
    even = stats.spearmanr(truth[0::2], filled[0::2]).statistic
    odd = stats.spearmanr(truth[1::2], filled[1::2]).statistic
    return {"spearman": rho, "kendall": tau, "sp_lo": np.nanpercentile(boots, 2.5),
            "sp_hi": np.nanpercentile(boots, 97.5), "sp_even": even, "sp_odd": odd, "nan": int((~ok).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist", choices=("fashion-mnist", "digits", "noise"))
    ap.add_argument("--proxies", default="params,macs,synflow,naswot,zen,meco,snip,grad_norm,zico,ensemble")
    ap.add_argument("--n", type=int, default=400, help="first N dev architectures (per run; --reuse keeps others)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="reuse scores already in the scores CSV")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from nas.proxies import ENSEMBLE_COMPONENTS, PROXIES, Scorer

    full = pd.read_csv(DEV, dtype={"arch": str})
    dev = full.head(args.n)
    RESULTS.mkdir(parents=True, exist_ok=True)
    scores_path = RESULTS / f"proxies_scores_{args.data}.csv"
    scores = pd.read_csv(scores_path, dtype={"arch": str}) if args.reuse and scores_path.exists() else \
        pd.DataFrame({"arch": full["arch"]})
    timing_path = RESULTS / f"proxies_timing_{args.data}.csv"
    timing = pd.read_csv(timing_path, index_col=0)["s_per_arch"].to_dict() if args.reuse and timing_path.exists() else {}
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    for name in proxies:
        if args.reuse and name in scores.columns and name in timing and scores[name].head(len(dev)).notna().all():
            continue
        scorer = Scorer("nas-bench-macro", [name], data=args.data, seed=args.seed)
        t0 = time.perf_counter()
        if name == "ensemble" and all(c in scores.columns and scores[c].head(len(dev)).notna().all()
                                      for c in ENSEMBLE_COMPONENTS):
            # same formula as the proxy, from the component scores already computed (saves a re-run):
            # mean over components of (value - reference mean) / reference std
            z = 0
            for c in ENSEMBLE_COMPONENTS:
                mean, std = scorer.reference(c)
                v = scores[c].head(len(dev)).to_numpy()
                z = z + ((np.log(v) if PROXIES[c].log_scale else v) - mean) / std
            if name not in scores.columns:
                scores[name] = np.nan
            scores.loc[: len(dev) - 1, name] = z / len(ENSEMBLE_COMPONENTS)
            timing[name] = sum(timing[c] for c in ENSEMBLE_COMPONENTS) + (time.perf_counter() - t0) / len(dev)
            scores.to_csv(scores_path, index=False)
            pd.Series(timing, name="s_per_arch").to_csv(timing_path)
            continue
        df = scorer.score_many(dev["arch"], progress=True)
        timing[name] = (time.perf_counter() - t0) / len(dev)
        if name not in scores.columns:
            scores[name] = np.nan
        scores.loc[: len(dev) - 1, name] = df[name].to_numpy()
        scores.to_csv(scores_path, index=False)
        pd.Series(timing, name="s_per_arch").to_csv(timing_path)
        print(f"{name}: {timing[name] * 1000:.0f} ms/arch", file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    rows = []
    for name in [p for p in scores.columns if p != "arch"]:
        # a proxy is evaluated on the first n rows it was run on (NaN there = degenerate, ranked last)
        n = int(scores[name].notna()[::-1].cumsum()[::-1].gt(0).sum())
        truth = full["test_acc_mean"].to_numpy()[:n]
        c = {"n": n, **correlations(truth, scores[name].to_numpy()[:n], rng)}
        t = timing.get(name, float("nan"))
        rows.append({"proxy": name, **c, "ms_per_arch": t * 1000, "archs_per_s": 1 / t if t else float("nan")})
    table = pd.DataFrame(rows).sort_values("spearman", ascending=False)
    fmt = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    print(fmt)
    cmd = "python experiments/proxies_benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = RESULTS / f"proxies_benchmark_{args.data}.md"
    md.write_text(
        f"# Proxy benchmark: NAS-Bench-Macro dev (first n of {len(full)} archs), data = {args.data}, seed {args.seed}\n\n"
        f"Ground truth: CIFAR-10 test accuracy (mean of 3 seeds). n: first n dev rows scored. NaN scores ranked last. sp_lo/sp_hi: 95% bootstrap\n"
        f"interval of Spearman; sp_even/sp_odd: Spearman on the even / odd rows (split-half stability).\n"
        f"Time: seconds per architecture for a fresh Scorer running that proxy alone, torch threads = {args.threads},\n"
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs shared with other jobs (timings are noisy).\n\n"
        f"Command: `{cmd}`\n\n```\n{fmt}\n```\n")
    print(f"wrote {md} and {scores_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
