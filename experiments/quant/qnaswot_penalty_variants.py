"""qnaswot's penalty: the per-layer quantization noise summed over layers (before 2026-12-06) or averaged (now),
and the last layer's or the largest layer's, on the quantization ground truth (``quant_truth.csv``, today's
quantizer's rows, as ``quant_score_benchmark`` reads them).

One float pass and one fake-quantized pass per (network, assignment) give naswot's kernel and every layer's
noise ratio (``nas.proxies.quant.noise_profile``); each variant's score is ``logdet - 16 log(1 + m)`` with m the
variant's reduction of the ratios. Within one network the sum and the mean order assignments identically (same
number of layers); they differ across networks, where the sum grows with depth. Reported per seed and split
(dev = the units qnaswot's choices were made on, held-out = the others): Spearman of the predicted drop with the
measured drop, the median within-network Spearman, the share of bit-twin pairs (drops more than 1 point apart)
ordered, and Spearman of the score with deployed accuracy.

Usage: python -m experiments.quant.qnaswot_penalty_variants [--seeds 0 1 2] [--reuse]
Writes experiments/quant/results/qnaswot_penalty_variants.{csv,json,md}.
"""
from __future__ import annotations

import argparse
import math

import pandas as pd

from experiments.harness import add_out_dir, results_dir, write_results
from experiments.quant.common import DEV_UNITS, QUANTIZER, ordered, spearman, twin_pairs, within_network
from experiments.quant.quant_score_benchmark import truth_probes

VARIANTS = {"sum": sum, "mean": lambda r: sum(r) / len(r), "last": lambda r: r[-1], "max": max}
N_IMAGES = 16


def profiles(truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per (unit, assignment): naswot's log det and each variant's reduction of the noise ratios."""
    from nas.proxies.quant import noise_profile

    rows = []
    for _, fields, probe_of in truth_probes(truth, seed):
        logdet, ratios = noise_profile(probe_of())
        rows.append({"seed": seed, **fields, "logdet": logdet, "layers": len(ratios),
                     **{v: (fn(ratios) if ratios else 0.0) for v, fn in VARIANTS.items()}})
    return pd.DataFrame(rows)


def figures(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    split = frame["unit"].isin(DEV_UNITS).map({True: "dev", False: "held-out"})  # by unit, as the benchmark splits
    for (seed, split), part in frame.assign(split=split).groupby(["seed", "split"]):
        for variant in VARIANTS:
            part = part.assign(score=part["logdet"] - N_IMAGES * part[variant].map(math.log1p))
            float_score = part[part["assignment"] == "fp32"].set_index("unit")["score"]
            part = part.assign(pred=part["unit"].map(float_score) - part["score"])
            quantized = part[part["assignment"] != "fp32"]
            ok, total = ordered(twin_pairs(part), "pred", 1.0)
            rows.append({"seed": seed, "split": split, "variant": variant,
                         "spearman_drop": spearman(quantized["pred"], quantized["drop"]),
                         "within_network": within_network(quantized, "pred"),
                         "twins_ordered": ok / total if total else float("nan"), "twin_pairs": total,
                         "spearman_accuracy": spearman(part["score"], part["accuracy"])})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--reuse", action="store_true", help="recompute the tables from the profiles of an earlier run "
                                                        "(<out-dir>/qnaswot_penalty_variants.csv)")
    add_out_dir(p, "quant")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    truth = pd.read_csv(results_dir("quant") / "quant_truth.csv")
    truth = truth[truth["quantizer"] == QUANTIZER]  # today's quantizer's rows, as quant_score_benchmark reads them
    if args.reuse:
        frame = pd.read_csv(args.out_dir / "qnaswot_penalty_variants.csv")
        frame = frame[frame["seed"].isin(args.seeds)]
    else:
        frame = pd.concat([profiles(truth, s) for s in args.seeds], ignore_index=True)
    per_seed = figures(frame)
    median = per_seed.groupby(["split", "variant"], sort=False).median(numeric_only=True).drop(columns="seed")
    md = "\n".join(["# qnaswot's penalty: sum, mean, last or largest layer's noise", "",
                    f"{len(truth)} (network, bits) pairs, seeds {args.seeds}; median over seeds:", "",
                    median.reset_index().to_markdown(index=False, floatfmt=".3f"), "", "Per seed:", "",
                    per_seed.to_markdown(index=False, floatfmt=".3f")])
    write_results(args.out_dir, "qnaswot_penalty_variants", rows=frame, md=md,
                  summary={"median": median.reset_index().to_dict("records")})
    print(md)


if __name__ == "__main__":
    main()
