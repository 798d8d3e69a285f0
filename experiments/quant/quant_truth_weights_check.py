"""Can a network's own trained weights tell how much quantization will cost it? A check of qnaswot's mechanism.

qnaswot sees only the untrained architecture (Laplace-drawn "trained-like" weights). The ground-truth retest
(``experiments.quant.quant_truth_retest``) found that two training runs of the same architecture do not agree on which
network is fragile at 4 bits. This script asks whether the *trained weights themselves* carry that fragility,
and whether qnaswot's measurement would see it if it had them. For every unit trained by
``experiments.quant.quant_truth --train-seed S`` (weights kept under ``experiments/work/quant_truth/``), with that run's own
weights and at every bit assignment of the run:

- ``noise_bn_train``: qnaswot's noise term (``nas.proxies.quant.noise_ratios`` summed over layers: quantization
  noise over the images' signal after each layer, 16 test images, BN in train mode as qnaswot runs it);
- ``noise_bn_eval``: the same with BN in eval mode (running statistics, as deployed);
- ``noise_laplace``: the same as ``noise_bn_train`` on the Laplace-drawn weights qnaswot uses (seed 0);
- ``fakequant_drop``: the accuracy drop (points) of the torch fake-quantized network (``nas.nn.fakequant``,
  the rounding the score simulates; activation ranges from each batch of 250) on the first ``--n-test`` of the
  run's own test images;

and sets each against the run's onnxruntime drop (``drop_points`` in its CSV): pooled Spearman over every
(unit, assignment), the median within one network, and between networks (the units ordered by their mean).

Usage: python -m experiments.quant.quant_truth_weights_check [--retrain CSV ...] [--n-test 1000] [--jobs 2]
       [--out-dir DIR] [--name STEM]
Writes <out-dir>/<name>.csv / .md / .json (out-dir: experiments/quant/results, name: quant_truth_weights_check).
Needs the run's trained weights (a unit whose weights are missing is named and skipped: ``quant_truth`` with the
same settings trains it again). About 2 min a unit at one thread; ``--jobs`` runs units in parallel processes.
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from experiments.harness import add_out_dir, repo_path, results_dir, write_results
from experiments.quant.common import (SPACE, WORK, assignments, between_networks, deployed_layers, hash_unit,
                                      spearman, unit_folder, within_network)

MEASURES = ("noise_bn_train", "noise_bn_eval", "noise_laplace", "fakequant_drop")


def weights_path(unit: str, settings: dict) -> Path:
    s = settings
    return unit_folder(unit, s["epochs"], s["n_train"], s["seed"], s["train_seed"]) / "weights.pt"


def measure_unit(unit: str, arch_text: str, settings: dict, n_test: int) -> list[dict]:
    """One row per quantized assignment of the unit: the four measures with the run's own weights."""
    import copy

    import torch

    from nas.data.datasets import for_space
    from nas.deploy.pipeline import accuracy_indices
    from nas.layers import plan
    from nas.nn import fakequant
    from nas.nn.build import build_model
    from nas.proxies.quant import noise_ratios
    from nas.proxies.registry import laplace_init
    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(SPACE)
    arch = space.parse(arch_text)
    specs = plan(arch, space)
    trained = build_model(arch, space, seed=0)
    trained.load_state_dict(torch.load(weights_path(unit, settings)))
    laplace = build_model(arch, space, seed=0)
    laplace_init(laplace, 0)
    test = for_space(space, "fashion-mnist", split="test", resolution=arch.resolution, seed=settings["seed"])
    idx = accuracy_indices(len(test), settings["test"], settings["seed"])[:n_test]
    x16, _ = test.batch(idx[:16])

    def at_bits(model, bits, bn_train: bool):
        m = copy.deepcopy(model)
        m.specs = deployed_layers(specs, bits)
        return m.train(bn_train)

    def accuracy(model) -> float:
        hits = 0
        with torch.no_grad():
            for i in range(0, len(idx), 250):
                x, y = test.batch(idx[i:i + 250])
                hits += int((model(x).argmax(1) == y).sum())
        return hits / len(idx)

    float_acc = accuracy(trained.eval())
    rows = []
    seed = settings["seed"] * 1000 + hash_unit(unit)
    for name, bits in assignments(space, specs, settings["mixed"], seed=seed).items():
        if name == "fp32":
            continue
        quantized = at_bits(trained, bits, False)
        fakequant.apply(quantized)
        rows.append({"unit": unit, "assignment": name,
                     "noise_bn_train": sum(noise_ratios(at_bits(trained, bits, True), x16)),
                     "noise_bn_eval": sum(noise_ratios(at_bits(trained, bits, False), x16)),
                     "noise_laplace": sum(noise_ratios(at_bits(laplace, bits, True), x16)),
                     "fakequant_drop": 100 * (float_acc - accuracy(quantized.eval()))})
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([{"measure": m, "pooled": spearman(rows[m], rows["drop_points"]),
                          "within_network_median": within_network(rows, m, "drop_points"),
                          "between_networks": between_networks(rows, m, "drop_points")} for m in MEASURES])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--retrain", nargs="+",
                   default=[str(f) for f in sorted(results_dir("quant").glob("quant_truth_retrain*.csv"))],
                   help="the runs' CSVs (their .json holds the training settings; default: the retrain runs, "
                        "experiments/quant/results/quant_truth_retrain*.csv)")
    p.add_argument("--n-test", type=int, default=1000, help="test images for the fake-quantized accuracy")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", nargs="*", default=None, help="unit names to check (default: every unit)")
    add_out_dir(p, "quant", name="quant_truth_weights_check")
    args = p.parse_args()
    truth, jobs, missing = [], [], []
    for csv in args.retrain:
        frame = pd.read_csv(csv)
        settings = json.loads(Path(csv).with_suffix(".json").read_text())["settings"]
        truth.append(frame[["unit", "assignment", "drop_points"]])

        for unit, g in frame.groupby("unit"):
            if args.only and unit not in args.only:
                continue
            if weights_path(unit, settings).is_file():
                jobs.append((unit, g["arch"].iloc[0], settings, args.n_test))
            else:
                missing.append(unit)
    if missing:
        print(f"skipped (no trained weights under {WORK}): {', '.join(missing)}")
    if not jobs:
        raise SystemExit("no unit has its trained weights: run python -m experiments.quant.quant_truth with the "
                         "CSV's settings")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        measured = [r for rows in pool.map(measure_unit, *zip(*jobs)) for r in rows]
    rows = pd.DataFrame(measured).merge(pd.concat(truth), on=["unit", "assignment"])
    table = summary(rows)
    text = "\n".join([
        "# Do a network's own trained weights show its quantization cost? "
        "(experiments/quant/quant_truth_weights_check.py)",
        "", f"{len(rows)} (unit, assignment) pairs of {rows['unit'].nunique()} trained networks "
        f"({', '.join(Path(a).name for a in args.retrain)}); Spearman of each measure with the run's onnxruntime drop; "
        f"fake-quantized accuracy on {args.n_test} of the run's test images. "
        f"{time.perf_counter() - t0:.0f} s with {args.jobs} processes.", "",
        table.to_markdown(index=False, floatfmt=".3f"), ""])
    write_results(args.out_dir, args.name, rows=rows, md=text, summary={
        "retrain": [repo_path(f) for f in args.retrain], "n_test": args.n_test, "skipped": missing,
        "rows": table.to_dict("records")})
    print(text)


if __name__ == "__main__":
    main()
