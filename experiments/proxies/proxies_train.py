"""The higher-fidelity proxy train:E against NAS-Bench-Macro accuracy, on a small bounded sample.

Trains each sampled dev architecture for E = 1 and E = 3 epochs on a Fashion-MNIST subset (n_train images
of the train split, n_val held-out train images for validation; 32x32x3, CPU) with nas.train.loop.train and
reports Spearman / Kendall of the validation accuracy against CIFAR-10 test accuracy, and seconds per
architecture. Bounded on purpose (CPU only): the sample is every (400 // k)-th dev row.

    python -m experiments.proxies.proxies_train --k 12 --n-train 1000 --n-val 1000 --threads 1

Writes <out-dir>/proxies_train_<data>.{md,json} and proxies_train_scores_<data>.csv (out-dir:
experiments/proxies/results).
"""
from __future__ import annotations

import argparse
import sys
import time

import pandas as pd
from scipy import stats

from experiments.harness import ROOT, add_out_dir, write_results

DEV = ROOT.parent / "shared" / "data" / "dev" / "nas_bench_macro_dev.csv"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=12, help="number of architectures")
    ap.add_argument("--epochs", default="1,3")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    add_out_dir(ap, "proxies")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from nas.proxies import Scorer

    dev = pd.read_csv(DEV, dtype={"arch": str})
    sample = dev.iloc[:: max(1, len(dev) // args.k)].head(args.k).reset_index(drop=True)
    rows = []
    out = pd.DataFrame({"arch": sample["arch"], "test_acc_mean": sample["test_acc_mean"]})
    for e in [int(x) for x in args.epochs.split(",")]:
        name = f"train:{e}"
        s = Scorer("nas-bench-macro", [name], data=args.data, seed=args.seed,
                   train_options={"n_train": args.n_train, "n_val": args.n_val})
        t0 = time.perf_counter()
        out[name] = s.score_many(sample["arch"], progress=True)[name].to_numpy()
        sec = (time.perf_counter() - t0) / len(sample)
        ok = out[name].notna()
        rows.append({"proxy": name, "n": len(sample),
                     "spearman": stats.spearmanr(out["test_acc_mean"][ok], out[name][ok]).statistic,
                     "kendall": stats.kendalltau(out["test_acc_mean"][ok], out[name][ok]).statistic,
                     "mean_val_acc": out[name].mean(), "s_per_arch": sec})
        print(f"{name}: {sec:.1f} s/arch", file=sys.stderr, flush=True)
    for base in ("flops",):
        rows.append({"proxy": f"{base} (same sample)", "n": len(sample),
                     "spearman": stats.spearmanr(sample["test_acc_mean"], sample[base]).statistic,
                     "kendall": stats.kendalltau(sample["test_acc_mean"], sample[base]).statistic})
    table = pd.DataFrame(rows)
    fmt = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    print(fmt)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    scores = args.out_dir / f"proxies_train_scores_{args.data}.csv"
    out.to_csv(scores, index=False)
    write_results(args.out_dir, f"proxies_train_{args.data}", files=[scores], threads=args.threads,
                  summary={"rows": table.to_dict("records")}, md=(
        f"# train:E on NAS-Bench-Macro dev sample ({len(sample)} archs, every {len(dev) // args.k}th row)\n\n"
        f"Data {args.data}: {args.n_train} training images, {args.n_val} held-out validation images, 32x32x3,"
        f" CPU, torch threads {args.threads} (machine shared: timings noisy).\n\n```\n{fmt}\n```\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
