"""How much of a trained network's quantization fragility is its training run? The retest of the ground truth.

``python -m experiments.quant.quant_truth --train-seed 1 --only arch0 arch7 arch5 --name quant_truth_retrain``
trains the same architectures again with the same recipe, data, test images, calibration images and bit
assignments; only the initialisation and the training order differ. This script sets each retrained unit's
deployed drops beside the first training's and beside the scores ``experiments.quant.quant_score_benchmark`` wrote
for those units (the scores see only the untrained network and its bits, so they are the same for both runs):

- per unit: the w4a8 drop of each run, and the Spearman between the two runs' drops over the unit's
  quantized assignments (how reproducible the *order* of assignments within a network is);
- pooled over the retested units: the Spearman between the two runs' drops (how well one training run of the
  same architectures predicts another: what the architecture and its bits alone determine), and qnaswot's and
  the 4-bit block count's drop Spearman against each run and against the mean of the two runs' drops (a truth
  less tied to one training run);
- ordered pairs (bit twins, activation variants): how often the second run orders the first run's pairs alike,
  and qnaswot's share on the pairs both runs separate alike.

Usage: python -m experiments.quant.quant_truth_retest [--first CSV] [--retrain CSV ...] [--scores CSV ...]
       [--out-dir DIR] [--name STEM]
Writes <out-dir>/<name>.md / .json (out-dir: experiments/quant/results, name: quant_truth_retest).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from experiments.harness import add_out_dir, repo_path, results_dir, write_results
from experiments.quant.common import BASELINES, DEV_UNITS, activation_pairs, spearman, twin_pairs

RESULTS = results_dir("quant")
KEY = ["unit", "assignment"]


def paired(first: pd.DataFrame, retrain: pd.DataFrame) -> pd.DataFrame:
    """One row per (unit, assignment) measured in both runs: the drop of each (points) and the baselines."""
    a = first[KEY + ["base", "bits", "drop_points", "float_accuracy"] + list(BASELINES)]
    b = retrain[KEY + ["bits", "drop_points", "float_accuracy"]]
    out = a.merge(b, on=KEY, suffixes=("_first", "_retrain"))
    if (out["bits_first"] != out["bits_retrain"]).any():
        raise SystemExit("the two runs deployed different bits for one assignment: same --seed needed")
    return out


def qnaswot_drops(paths: list[Path]) -> pd.DataFrame:
    """Median over seeds of qnaswot's predicted drop per (unit, assignment), from the benchmark's CSVs."""
    frames = [pd.read_csv(p) for p in paths if p.is_file()]
    if not frames:
        raise SystemExit("no quant_score_benchmark CSV: run python -m experiments.quant.quant_score_benchmark first")
    scores = pd.concat(frames, ignore_index=True)
    return scores.groupby(KEY, as_index=False)["qnaswot_drop"].median()


def report(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    quantized = pairs[pairs["assignment"] != "fp32"]
    per_unit = []
    for unit, g in quantized.groupby("unit"):
        w4 = g[g["assignment"] == "w4a8"].iloc[0]
        per_unit.append({"unit": unit, "float_first": 100 * w4["float_accuracy_first"],
                         "float_retrain": 100 * w4["float_accuracy_retrain"],
                         "w4a8_drop_first": w4["drop_points_first"], "w4a8_drop_retrain": w4["drop_points_retrain"],
                         "max_drop_first": g["drop_points_first"].max(),
                         "max_drop_retrain": g["drop_points_retrain"].max(),
                         "runs_spearman": spearman(g["drop_points_first"], g["drop_points_retrain"]),
                         "qnaswot_first": spearman(g["qnaswot_drop"], g["drop_points_first"]),
                         "qnaswot_retrain": spearman(g["qnaswot_drop"], g["drop_points_retrain"])})
    pooled = [{"predictor": "the other training run's drop", "vs_first": spearman(
        quantized["drop_points_retrain"], quantized["drop_points_first"]), "vs_retrain": float("nan")}]
    mean_drop = (quantized["drop_points_first"] + quantized["drop_points_retrain"]) / 2
    for name in ("qnaswot_drop",) + BASELINES:
        pooled.append({"predictor": name, "vs_first": spearman(quantized[name], quantized["drop_points_first"]),
                       "vs_retrain": spearman(quantized[name], quantized["drop_points_retrain"]),
                       "vs_mean_of_runs": spearman(quantized[name], mean_drop)})
    return pd.DataFrame(per_unit), pd.DataFrame(pooled)


def by_split(pairs: pd.DataFrame, dev_units) -> pd.DataFrame:
    """Pooled drop Spearman against the mean of the two runs, on qnaswot's development units and on the others
    (the truth least tied to one training run, split as quant_score_benchmark splits it)."""
    quantized = pairs[pairs["assignment"] != "fp32"]
    mean_drop = (quantized["drop_points_first"] + quantized["drop_points_retrain"]) / 2
    rows = []
    for name in ("qnaswot_drop",) + BASELINES:
        row = {"predictor": name}
        dev = quantized["unit"].isin(dev_units)
        for split, mask in (("dev", dev), ("held-out", ~dev)):
            row[f"{split}_vs_mean_of_runs"] = (spearman(quantized.loc[mask, name], mean_drop[mask]) if mask.any()
                                               else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def between_networks(pairs: pd.DataFrame) -> pd.DataFrame:
    """Which *network* is fragile: Spearman over the units of the two runs' w4a8 drops and of their mean drops
    over the quantized assignments, and of qnaswot's (mean) predicted drop against each. A score that sees only
    the architecture can order networks no better than a second training run of them does."""
    quantized = pairs[pairs["assignment"] != "fp32"]
    means = quantized.groupby("unit")[["drop_points_first", "drop_points_retrain", "qnaswot_drop"]].mean()
    w4 = quantized[quantized["assignment"] == "w4a8"].set_index("unit")
    rows = []
    for label, t in (("w4a8 drop", w4), ("mean drop over the assignments", means)):
        rows.append({"networks ordered by": label,
                     "first vs second run": spearman(t["drop_points_first"], t["drop_points_retrain"]),
                     "qnaswot vs first": spearman(t["qnaswot_drop"], t["drop_points_first"]),
                     "qnaswot vs second": spearman(t["qnaswot_drop"], t["drop_points_retrain"])})
    return pd.DataFrame(rows)


def pair_agreement(pairs: pd.DataFrame, margin: float = 1.0) -> pd.DataFrame:
    """Ordered pairs (drops more than ``margin`` points apart), chosen as quant_score_benchmark chooses them
    among the quantized assignments: bit twins and activation variants (the sampled-activation original
    included). For each kind: how often the second run orders the first run's pairs the same way, and qnaswot's
    share on the pairs that *both* runs separate in the same direction (what the architecture and its bits
    decide, not the training run)."""
    quantized = pairs[pairs["assignment"] != "fp32"]
    rows = []
    for kind, kind_pairs in (("bit twins", twin_pairs(quantized)), ("activation variants", activation_pairs(pairs))):
        first = same = both = q_first = q_both = 0
        for a, b in kind_pairs:
            d1 = a["drop_points_first"] - b["drop_points_first"]
            d2 = a["drop_points_retrain"] - b["drop_points_retrain"]
            dq = a["qnaswot_drop"] - b["qnaswot_drop"]
            if abs(d1) > margin:
                first += 1
                same += d1 * d2 > 0
                q_first += d1 * dq > 0
                if abs(d2) > margin and d1 * d2 > 0:
                    both += 1
                    q_both += d1 * dq > 0
        rows.append({"pairs": kind, "apart in the first run": first,
                     "second run orders them alike": same / first if first else float("nan"),
                     "qnaswot orders them alike": q_first / first if first else float("nan"),
                     "apart alike in both runs": both,
                     "qnaswot on those": q_both / both if both else float("nan")})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--first", default=str(RESULTS / "quant_truth.csv"),
                   help="the first run's CSV (default experiments/quant/results/quant_truth.csv)")
    p.add_argument("--retrain", nargs="+",
                   default=[str(f) for f in sorted(RESULTS.glob("quant_truth_retrain*.csv"))],
                   help="the second runs' CSVs (default: every experiments/quant/results/quant_truth_retrain*.csv; "
                        "two processes re-training at once write one each)")
    p.add_argument("--scores", nargs="+", default=[str(RESULTS / f"quant_score_benchmark_{s}.csv")
                                                   for s in ("dev", "held-out")],
                   help="quant_score_benchmark's CSVs (default: its dev and held-out CSVs in experiments/quant/results)")
    add_out_dir(p, "quant", name="quant_truth_retest")
    args = p.parse_args()
    pairs = paired(pd.read_csv(args.first), pd.concat([pd.read_csv(f) for f in args.retrain], ignore_index=True))
    pairs = pairs.merge(qnaswot_drops([Path(s) for s in args.scores]), on=KEY, how="left")
    unscored = sorted(set(pairs.loc[pairs["qnaswot_drop"].isna(), "unit"]))
    if unscored:
        raise SystemExit(f"no qnaswot scores for {', '.join(unscored)} in --scores: run "
                         "python -m experiments.quant.quant_score_benchmark over those units")
    per_unit, pooled = report(pairs)
    between = between_networks(pairs)
    splits = by_split(pairs, DEV_UNITS)
    agreement = pair_agreement(pairs)
    units = ", ".join(per_unit["unit"])
    text = "\n".join([
        "# Ground truth retest (experiments/quant/quant_truth_retest.py)", "",
        f"Units {units} trained a second time (`quant_truth --train-seed 1`): same architecture, recipe, data, "
        f"test and calibration images, bit assignments; another initialisation and training order. Drops in "
        f"points on the same 2,000 test images. First run {repo_path(args.first)}, second "
        f"{', '.join(repo_path(f) for f in args.retrain)}.", "",
        "Per unit (Spearman over the unit's quantized assignments):", "",
        per_unit.to_markdown(index=False, floatfmt=".2f"), "",
        f"Pooled over the {len(pairs[pairs['assignment'] != 'fp32'])} (unit, assignment) pairs: drop Spearman "
        "of each predictor against each run:", "",
        pooled.to_markdown(index=False, floatfmt=".3f"), "",
        f"The same against the mean of the two runs, by split (dev: {', '.join(DEV_UNITS)}, where qnaswot's "
        "choices were made; held-out: the other units):", "",
        splits.to_markdown(index=False, floatfmt=".3f"), "",
        f"Between networks ({len(per_unit)} units; Spearman over the units):", "",
        between.to_markdown(index=False, floatfmt=".3f"), "",
        "Ordered pairs (drops more than 1 point apart; activation variants: one base architecture at the same "
        "uniform or per-role bits):", "",
        agreement.to_markdown(index=False, floatfmt=".3f"), ""])
    write_results(args.out_dir, args.name, md=text, summary={
        "first": repo_path(args.first), "retrain": [repo_path(f) for f in args.retrain],
        "scores": [repo_path(f) for f in args.scores], "per_unit": per_unit.to_dict("records"),
        "pooled": pooled.to_dict("records"), "between_networks": between.to_dict("records"),
        "by_split": splits.to_dict("records"), "pair_agreement": agreement.to_dict("records")})
    print(text)


if __name__ == "__main__":
    main()
