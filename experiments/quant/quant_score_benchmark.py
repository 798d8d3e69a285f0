"""Does the accuracy score see bit-widths? Scores against what our own quantizer deploys (quant_truth.csv).

For every (trained network, bit assignment) of ``experiments/quant/results/quant_truth.csv`` (rows measured with
today's quantizer), each score is computed on the *untrained* network (the proxies never see the trained
weights) at that assignment's bits, on the same seed and batch as a search would use:

- ``qnaswot`` (the quantization-aware score), ``naswot`` (on the fake-quantized network, as before);
- the simple baselines the issue names: the number of blocks with 4-bit weights, and the share of the block
  weights / MACs that are 4-bit (higher = more damage predicted).

A score's predicted drop is (score of the float twin) - (score at the bits); a baseline's is its value. Reported:

1. Spearman of predicted drop vs measured drop (float accuracy - deployed accuracy, points) over all pairs, and
   the median over networks of the same Spearman within one network's assignments (``within_network``);
2. bit twins: of the pairs of one network's assignments whose deployed accuracies differ by more than
   ``--margin`` points, the share the score orders correctly (a tie is not an order);
3. activation twins: of the pairs of one base architecture's activation variants (relu6 / h-swish / SiLU in
   every block, each trained) at the same uniform or per-role assignment whose drops differ by more than
   ``--margin``, the share ordered correctly (the baselines cannot tell them apart: same structure, same bits);
4. Spearman of the score with deployed accuracy over all pairs (across networks: it depends on how long the
   ground truth trained, so it is reported, not tuned to);
5. the cost of each score (seconds per scored assignment, one thread).

The scores draw their weights under a seed, so each is computed under ``--seeds`` (default 0 1 2) and reported
per seed, with the median over seeds. qnaswot's choices (trained-like Laplace weights, batch-centred signal, the
sum over layers) were made on units arch0-arch4 (``DEV_UNITS``); ``--split dev`` reports those, ``--split held-out``
the others (arch5-arch7 and the activation twins arch<i>-<act>), ``--only`` any units. The float twin is the
space's: every block at w32a32, stem and head at the space's fixed 8 bits (the truth's fp32 row is the fully
float ONNX file; scoring a fully float reference instead was tried and lowered the held-out drop Spearman).

Usage: python -m experiments.quant.quant_score_benchmark --split dev|held-out|all [--truth CSV] [--margin 1.0]
       [--seeds 0 1 2] [--only arch5 ...] [--out-dir DIR] [--name STEM] [--reuse]
Writes <out-dir>/<name>.md / .json (the table) and .csv (one row per pair and seed, every score and baseline);
out-dir: experiments/quant/results, name: quant_score_benchmark_<split>.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from experiments.harness import add_out_dir, repo_path, results_dir, write_results
from experiments.quant.common import (BASELINES, DEV_UNITS, QUANTIZER, SPACE, activation_pairs, ordered,
                                      parse_bits, spearman, twin_pairs, within_network)

SCORES = ("qnaswot", "naswot")


def with_bits(arch, bits):
    """The architecture with each block at its (wbits, abits, dw_wbits, dw_abits) (per-role bits are outside the
    mobilenet-c10 grammar, so the Architecture is built directly, not parsed)."""
    it = iter(bits)
    stages = []
    for stage in arch.stages:
        blocks = []
        for b in stage.blocks:
            w, a, dw, da = next(it)
            blocks.append(dataclasses.replace(b, wbits=w, abits=a, dw_wbits=None if dw == w else dw,
                                              dw_abits=None if da == a else da))
        stages.append(dataclasses.replace(stage, blocks=tuple(blocks)))
    return dataclasses.replace(arch, stages=tuple(stages))


def truth_probes(truth: pd.DataFrame, seed: int):
    """For every (unit, assignment) of ``truth``: its row (the truth fields every results row carries) and a
    function giving a fresh Probe of the network at that assignment's bits, on the seed's fashion-mnist batch."""
    import functools

    from nas.proxies.registry import Inputs, Probe
    from nas.space import load_space

    space = load_space(SPACE)
    inputs = Inputs(space, "fashion-mnist", seed)
    for _, r in truth.iterrows():
        arch = with_bits(space.parse(r["arch"]), parse_bits(r["bits"]))
        fields = {"unit": r["unit"], "base": r["base"], "act_variant": r["act_variant"],
                  "assignment": r["assignment"], "accuracy": 100 * r["accuracy"], "drop": r["drop_points"]}
        yield r, fields, functools.partial(Probe, arch, space, inputs, seed=seed)


def score_pairs(truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per (unit, assignment) with every score at that assignment's bits."""
    rows = []
    for r, fields, probe_of in truth_probes(truth, seed):
        row = {**fields, **{b: r[b] for b in BASELINES}}
        for name in SCORES:
            probe = probe_of()  # a fresh probe per score: each is timed alone
            t0 = time.perf_counter()
            row[name] = probe.value(name)
            row[f"{name}_seconds"] = time.perf_counter() - t0
        rows.append(row)
    out = pd.DataFrame(rows)
    for name in SCORES:
        float_score = out[out["assignment"] == "fp32"].set_index("unit")[name]
        out[f"{name}_drop"] = out["unit"].map(float_score) - out[name]
    return out


def table(frame: pd.DataFrame, margin: float) -> pd.DataFrame:
    quantized = frame[frame["assignment"] != "fp32"]
    rows = []
    for name, predicted, score in [*[(s, f"{s}_drop", s) for s in SCORES], *[(b, b, None) for b in BASELINES]]:
        ok, total = ordered(twin_pairs(frame), predicted, margin)
        act_ok, act_total = ordered(activation_pairs(frame), predicted, margin)
        rows.append({"predictor": name,
                     "spearman_drop": spearman(quantized[predicted], quantized["drop"]),
                     "within_network": within_network(quantized, predicted),
                     "twins_ordered": ok / total if total else float("nan"), "twin_pairs": total,
                     "act_twins_ordered": act_ok / act_total if act_total else float("nan"),
                     "act_pairs": act_total,
                     "spearman_accuracy": spearman(frame[score], frame["accuracy"]) if score else float("nan"),
                     "seconds": frame[f"{score}_seconds"].median() if score else 0.0})
    return pd.DataFrame(rows)


def summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per predictor: the median over seeds of each figure, and the per-seed drop Spearman and twin
    share (the baselines do not depend on the seed)."""
    rows = []
    for name, g in per_seed.groupby("predictor", sort=False):
        row = {"predictor": name, **g.drop(columns=["predictor", "seed"]).median().to_dict()}
        row["twin_pairs"] = int(row["twin_pairs"])
        row["act_pairs"] = int(row["act_pairs"])
        row["drop_by_seed"] = " ".join(f"{v:.3f}" for v in g["spearman_drop"])
        row["twins_by_seed"] = " ".join(f"{v:.3f}" for v in g["twins_ordered"])
        rows.append(row)
    return pd.DataFrame(rows)


def reused_scores(path: Path, truth: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """The scored pairs of an earlier run (``--reuse``), checked to cover exactly these truth rows and seeds."""
    if not path.is_file():
        raise SystemExit(f"--reuse: {path} does not exist; run once without --reuse")
    earlier = pd.read_csv(path)
    want = {(u, a, s) for u, a in zip(truth["unit"], truth["assignment"]) for s in seeds}
    have = set(zip(earlier["unit"], earlier["assignment"], earlier["seed"]))
    if want != have:
        raise SystemExit(f"--reuse: {path} scored other (unit, assignment, seed) rows than asked for "
                         f"({len(have)} vs {len(want)}); run without --reuse")
    return earlier


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--truth", type=Path, default=results_dir("quant") / "quant_truth.csv",
                   help="the ground truth (default experiments/quant/results/quant_truth.csv)")
    p.add_argument("--margin", type=float, default=1.0, help="twin pairs count when their drops differ by more")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--split", choices=("dev", "held-out", "all"), default="all",
                   help="the development units (DEV_UNITS), the others, or every unit")
    p.add_argument("--only", nargs="*", default=None, help="units to score (within the split)")
    add_out_dir(p, "quant")
    p.add_argument("--name", default=None, help="stem of the results files (default quant_score_benchmark_<split>)")
    p.add_argument("--reuse", action="store_true",
                   help="read the scores from <out-dir>/<name>.csv of an earlier run (same truth rows and seeds) "
                        "instead of scoring again; the tables are recomputed")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    truth = pd.read_csv(args.truth)
    truth = truth[truth["quantizer"] == QUANTIZER] if "quantizer" in truth else truth.iloc[:0]
    if args.split != "all":
        truth = truth[truth["unit"].isin(DEV_UNITS) == (args.split == "dev")]
    if args.only:
        truth = truth[truth["unit"].isin(args.only)]
    if truth.empty:
        raise SystemExit(f"no rows of quantizer {QUANTIZER} in {args.truth}: run python -m experiments.quant.quant_truth")
    t0 = time.perf_counter()
    name = args.name or f"quant_score_benchmark_{args.split}"
    earlier = reused_scores(args.out_dir / f"{name}.csv", truth, args.seeds) if args.reuse else None
    frames, tables = [], []
    for seed in args.seeds:
        frames.append(earlier[earlier["seed"] == seed] if earlier is not None
                      else score_pairs(truth, seed).assign(seed=seed))
        tables.append(table(frames[-1], args.margin).assign(seed=seed))
    frame = pd.concat(frames, ignore_index=True)
    result = summary(pd.concat(tables, ignore_index=True))
    units = sorted(frame["unit"].unique())
    n_pairs = len(frame) // len(args.seeds)
    text = "\n".join([
        "# Quantization-aware score vs deployed accuracy (experiments/quant/quant_score_benchmark.py)", "",
        f"{n_pairs} (network, bits) pairs of {len(units)} trained mobilenet-c10 networks ({', '.join(units)}; "
        f"split {args.split}: qnaswot's choices were made on {', '.join(DEV_UNITS)}), "
        f"ground truth {repo_path(args.truth)} (quantizer {QUANTIZER}); scores on the untrained "
        f"networks, seeds {' '.join(map(str, args.seeds))} (median, and per seed), fashion-mnist batch; twin "
        f"pairs differ by > {args.margin} points; "
        + ("scores (and their seconds) reused from the earlier run's CSV (--reuse), tables recomputed." if args.reuse
           else f"scored in {time.perf_counter() - t0:.0f} s."), "",
        result.to_markdown(index=False, floatfmt=".3f"), ""])
    write_results(args.out_dir, name, rows=frame, md=text, summary={
        "truth": repo_path(args.truth), "units": units, "margin": args.margin, "seeds": args.seeds,
        "reused_scores": args.reuse, "rows": result.to_dict("records")})
    print(text)



if __name__ == "__main__":
    main()
