"""Which proxy ranks *trained mobilenet-c10 networks* best? Chosen on networks the end-to-end benchmark never saw.

The end-to-end benchmark (``experiments/end_to_end``) found its searches' picks barely ordered by qnaswot (Spearman
0.35 with float accuracy over its 17 trained models), and a look at those same models favoured ZiCo. Choosing the
next search's proxy on them would fit the test. This script asks the question on other networks: the quantization
ground truth's units (``experiments/quant/results/quant_truth*.csv``: 8 random mobilenet-c10 architectures and 9
activation twins of three of them, trained on Fashion-MNIST for 3 epochs x 10,000 images, each 2-4 times with
another training seed), their float accuracy (onnxruntime, 2,000 test images; mean over trainings).

For every registered proxy, on the search's proxy data (``digits``, SearchConfig's default) and on
``fashion-mnist``, three proxy seeds (median reported): Spearman with float accuracy, its 95 % bootstrap interval
over architectures (proxy seed 0), and the partial Spearman given log MACs (does the proxy rank networks *of
similar cost*, which is what a search along a latency front needs, or only size?).

    python -m experiments.proxies.proxies_on_trained [--seeds 3] [--data digits,fashion-mnist] [--reuse]

Writes (experiments/proxies/results): proxies_on_trained.csv (one row per data, proxy), proxies_on_trained_scores.csv
(per architecture and seed; re-used with --reuse), .json, .md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import pandas as pd
from scipy import stats

from experiments.harness import ROOT, add_out_dir, write_results

TRUTH_DIR = ROOT / "experiments" / "quant" / "results"
SPACE = "mobilenet-c10"
EPOCHS = 3  # the ground truth's recipe kept (its 6-epoch runs train the same 8 architectures longer)


def float_rows() -> pd.DataFrame:
    """The ground truth's float rows (one per training) of the EPOCHS recipe, with their training seed."""
    frames = [pd.read_csv(p) for p in sorted(TRUTH_DIR.glob("quant_truth*.csv"))
              if p.with_suffix(".json").exists()
              and json.loads(p.with_suffix(".json").read_text()).get("settings", {}).get("epochs") == EPOCHS]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows["assignment"] == "fp32"].copy()
    rows["train_seed"] = rows["train_seed"].fillna(0) if "train_seed" in rows else 0
    return rows


def retest_spearman() -> float:
    """Spearman between two trainings (seed 0, seed 1) of the same architectures: how far any proxy could go."""
    wide = float_rows().pivot_table(index="arch", columns="train_seed", values="float_accuracy", aggfunc="mean")
    return float(stats.spearmanr(wide[0], wide[1]).statistic)


def trained_networks() -> pd.DataFrame:
    """One row per distinct architecture: its mean float accuracy over training seeds, how many seeds."""
    rows = float_rows()
    per_arch = rows.groupby("arch").agg(acc=("float_accuracy", "mean"), seeds=("float_accuracy", "size"),
                                        unit=("unit", "first")).reset_index()
    return per_arch.sort_values("unit", kind="stable").reset_index(drop=True)


def macs(archs: list[str]) -> np.ndarray:
    from nas.layers import plan
    from nas.space import load_space

    space = load_space(SPACE)
    return np.array([sum(s.macs() for s in plan(space.parse(a), space)) for a in archs], dtype=float)


def score(archs: list[str], proxies: list[str], data: str, seed: int) -> pd.DataFrame:
    from nas.proxies import Scorer

    frame = Scorer(SPACE, proxies, data=data, seed=seed).score_many(archs, progress=False)
    return frame.assign(data=data, seed=seed)


def partial_spearman(truth, score, control) -> float:
    """Spearman of truth and score with the ranks of ``control`` partialled out of both."""
    r = [stats.rankdata(v) for v in (truth, score, control)]
    c = np.corrcoef(r)
    rxy, rxz, ryz = c[0, 1], c[0, 2], c[1, 2]
    return float((rxy - rxz * ryz) / math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2)))


def summarise(nets: pd.DataFrame, scores: pd.DataFrame, proxies: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    log_macs = np.log(macs(list(nets["arch"])))
    truth = nets["acc"].to_numpy()
    out = []
    for data, by_data in scores.groupby("data"):
        for proxy in proxies:
            per_seed = []
            for _, s in by_data.groupby("seed"):
                v = s.set_index("arch").loc[nets["arch"], proxy].to_numpy(dtype=float)
                v = np.where(np.isfinite(v), v, np.nanmin(v) - 1)  # NaN ranked last, as the search does
                per_seed.append(v)
            rho = [stats.spearmanr(truth, v).statistic for v in per_seed]
            part = [partial_spearman(truth, v, log_macs) for v in per_seed]
            v0 = per_seed[0]
            boots = [stats.spearmanr(truth[i], v0[i]).statistic
                     for i in (rng.integers(0, len(truth), len(truth)) for _ in range(1000))]
            out.append({"data": data, "proxy": proxy, "n": len(truth), "seeds": len(per_seed),
                        "spearman": float(np.median(rho)), "sp_lo": float(np.nanpercentile(boots, 2.5)),
                        "sp_hi": float(np.nanpercentile(boots, 97.5)),
                        "spearman_min": float(np.min(rho)), "spearman_max": float(np.max(rho)),
                        "partial_given_macs": float(np.median(part))})
    return pd.DataFrame(out).sort_values(["data", "spearman"], ascending=[True, False]).reset_index(drop=True)


def main(argv=None) -> int:
    from nas.proxies import PROXIES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="proxy seeds (weights and batches), median reported")
    ap.add_argument("--data", default="digits,fashion-mnist")
    ap.add_argument("--proxies", default=",".join(sorted(PROXIES)))
    ap.add_argument("--reuse", action="store_true", help="keep the scores file's (data, seed) runs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_out_dir(ap, "proxies")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    proxies, datas = args.proxies.split(","), args.data.split(",")
    nets = trained_networks()
    cache = args.out_dir / "proxies_on_trained_scores.csv"
    done = pd.read_csv(cache) if args.reuse and cache.exists() else pd.DataFrame(columns=["data", "seed"])
    parts = [done]
    for data in datas:
        for seed in range(args.seeds):
            have = done[(done["data"] == data) & (done["seed"] == seed)]
            if len(have) == len(nets) and set(proxies) <= set(have.columns):
                continue
            print(f"scoring {len(nets)} networks, data={data}, seed={seed}", file=sys.stderr)
            parts.append(score(list(nets["arch"]), proxies, data, seed))
            pd.concat(parts, ignore_index=True).drop_duplicates(["data", "seed", "arch"], keep="last").to_csv(
                cache, index=False)
    scores = pd.concat(parts, ignore_index=True).drop_duplicates(["data", "seed", "arch"], keep="last")
    scores = scores[scores["data"].isin(datas) & (scores["seed"] < args.seeds)]
    table = summarise(nets, scores, proxies)
    acc, retest = nets["acc"], retest_spearman()
    md = ("# Proxies on trained mobilenet-c10 networks (quantization ground truth units)\n\n"
          f"{len(nets)} architectures (float accuracy {acc.min():.3f}-{acc.max():.3f}, Fashion-MNIST, 3 epochs x "
          f"10,000 images, 2,000 test images, mean over {int(nets['seeds'].sum())} trainings); {args.seeds} proxy "
          "seeds, median Spearman (min / max over seeds), 95 % bootstrap interval (seed 0) and the partial "
          f"Spearman given log MACs. Two trainings of the same architectures agree at Spearman {retest:.2f} "
          "(training seed 0 against 1): the most a proxy could show here.\n\nCommand: `python -m experiments.proxies.proxies_on_trained "
          f"--seeds {args.seeds} --data {args.data}`\n\n```\n{table.round(3).to_string(index=False)}\n```\n")
    write_results(args.out_dir, "proxies_on_trained", rows=table, md=md, files=[cache], threads=args.threads,
                  summary={"networks": nets.to_dict(orient="records"), "retest_spearman": retest})
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
