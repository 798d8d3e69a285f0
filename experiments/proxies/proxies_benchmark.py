"""Benchmark the training-free proxies against NAS-Bench-Macro CIFAR-10 accuracy (the 400 dev architectures).

For every proxy (and the ensemble): Spearman and Kendall rank correlation with ``test_acc_mean``, a 95%
bootstrap interval of Spearman, split-half values (even / odd rows), and seconds per architecture when the
proxy runs alone (fresh Scorer: model build, inputs and, for the ensemble, its reference sample included).
Prints one table and writes (out-dir: experiments/proxies/results):

    <out-dir>/proxies_scores_<data>.csv          per-architecture scores (re-used with --reuse)
    <out-dir>/proxies_timing_<data>.csv          seconds per architecture per proxy (re-used with --reuse)
    <out-dir>/proxies_benchmark_<data>.{md,json}  the table, stamped with the command and environment

Reproduce (about 15-25 min on 2 busy cores for all proxies and 400 architectures):

    python -m experiments.proxies.proxies_benchmark --data fashion-mnist --threads 2
    python -m experiments.proxies.proxies_benchmark --data noise --proxies synflow,naswot,ensemble
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments.harness import ROOT, add_out_dir, write_results

DEV = ROOT.parent / "shared" / "data" / "dev" / "nas_bench_macro_dev.csv"


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


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist", choices=("fashion-mnist", "digits", "noise"))
    ap.add_argument("--proxies", default="params,macs,synflow,naswot,naswot@32,zen,meco,snip+grad_norm+zico,ensemble",
                    help="comma-separated; 'a+b' scores a and b in one Scorer (shared gradients), 'name@B' at batch B")
    ap.add_argument("--n", type=int, default=400, help="first N dev architectures (per run; --reuse keeps others)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="reuse scores already in the scores CSV")
    add_out_dir(ap, "proxies")
    args = ap.parse_args(argv)
    results = args.out_dir

    import torch

    torch.set_num_threads(args.threads)
    from nas.proxies import ENSEMBLE_COMPONENTS, PROXIES, Scorer

    full = pd.read_csv(DEV, dtype={"arch": str})
    dev = full.head(args.n)
    results.mkdir(parents=True, exist_ok=True)
    scores_path = results / f"proxies_scores_{args.data}.csv"
    scores = pd.read_csv(scores_path, dtype={"arch": str}) if args.reuse and scores_path.exists() else \
        pd.DataFrame({"arch": full["arch"]})
    timing_path = results / f"proxies_timing_{args.data}.csv"
    timing = pd.read_csv(timing_path, index_col=0)["s_per_arch"].to_dict() if args.reuse and timing_path.exists() else {}
    timed_with: dict[str, str] = {}
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    for token in proxies:
        # "a+b+c": one Scorer computes them together (snip/grad_norm/zico share one backward pass), each
        # member's time is the group's; "name@B": the proxy at batch size B, column "name@B"
        group = token.split("+")
        names = [g.split("@")[0] for g in group]
        batch = {int(g.split("@")[1]) for g in group if "@" in g}
        if len(batch) > 1:
            raise SystemExit(f"{token}: one batch size per group")
        batch_size = batch.pop() if batch else None
        cols = group
        if args.reuse and all(c in scores.columns and c in timing and scores[c].head(len(dev)).notna().all()
                              for c in cols):
            continue
        scorer = Scorer("nas-bench-macro", names, data=args.data, seed=args.seed, batch_size=batch_size)
        t0 = time.perf_counter()
        if names == ["ensemble"] and all(c in scores.columns and scores[c].head(len(dev)).notna().all()
                                         for c in ENSEMBLE_COMPONENTS):
            # same formula as the proxy, from the component scores already computed (saves a re-run):
            # mean over components of (value - reference mean) / reference std
            z = 0
            for c in ENSEMBLE_COMPONENTS:
                mean, std = scorer.reference(c)
                v = scores[c].head(len(dev)).to_numpy()
                z = z + ((np.log(v) if PROXIES[c].log_scale else v) - mean) / std
            if "ensemble" not in scores.columns:
                scores["ensemble"] = np.nan
            scores.loc[: len(dev) - 1, "ensemble"] = z / len(ENSEMBLE_COMPONENTS)
            timing["ensemble"] = sum(timing[c] for c in ENSEMBLE_COMPONENTS) + (time.perf_counter() - t0) / len(dev)
            timed_with["ensemble"] = "+".join(ENSEMBLE_COMPONENTS) + " (+ reference sample)"
            scores.to_csv(scores_path, index=False)
            pd.Series(timing, name="s_per_arch").to_csv(timing_path)
            continue
        df = scorer.score_many(dev["arch"], progress=False)
        sec = (time.perf_counter() - t0) / len(dev)
        for c, nm in zip(cols, names):
            timing[c] = sec
            timed_with[c] = token if len(group) > 1 else ""
            if c not in scores.columns:
                scores[c] = np.nan
            scores.loc[: len(dev) - 1, c] = df[nm].to_numpy()
        scores.to_csv(scores_path, index=False)
        pd.Series(timing, name="s_per_arch").to_csv(timing_path)
        print(f"{token}: {sec * 1000:.0f} ms/arch (load {load()})", file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    rows = []
    for name in [p for p in scores.columns if p != "arch"]:
        # a proxy is evaluated on the first n rows it was run on (NaN there = degenerate, ranked last)
        n = int(scores[name].notna()[::-1].cumsum()[::-1].gt(0).sum())
        truth = full["test_acc_mean"].to_numpy()[:n]
        c = {"n": n, **correlations(truth, scores[name].to_numpy()[:n], rng)}
        t = timing.get(name, float("nan"))
        rows.append({"proxy": name, **c, "ms_per_arch": t * 1000, "archs_per_s": 1 / t if t else float("nan"),
                     "timed_with": timed_with.get(name, "")})
    table = pd.DataFrame(rows).sort_values("spearman", ascending=False)
    fmt = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    print(fmt)
    name = f"proxies_benchmark_{args.data}"
    write_results(results, name, files=[scores_path, timing_path], threads=args.threads,
                  summary={"rows": table.to_dict("records")}, md=(
        f"# Proxy benchmark: NAS-Bench-Macro dev (first n of {len(full)} archs), data = {args.data}, seed {args.seed}\n\n"
        f"Ground truth: CIFAR-10 test accuracy (mean of 3 seeds). n: first n dev rows scored. NaN scores ranked last. sp_lo/sp_hi: 95% bootstrap\n"
        f"interval of Spearman; sp_even/sp_odd: Spearman on the even / odd rows (split-half stability).\n"
        f"Time: ms per architecture for a fresh Scorer running that proxy alone over all n archs (model build, fake\n"
        f"quantization, inputs included; timed_with names the group when several proxies shared one Scorer and its\n"
        f"gradients: each member shows the group's time), torch threads = {args.threads}; the machine may be shared\n"
        f"with other jobs (the load average is in the stamp): timings are noisy.\n\n```\n{fmt}\n```\n"))
    print(f"wrote {results / name}.md and {scores_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
