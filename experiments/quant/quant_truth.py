"""Ground truth for a quantization-aware score: trained mobilenet-c10 networks deployed by our own quantizer at
many bit-width assignments, their onnxruntime accuracy on the same test images.

Units (one trained network each):
- ``arch<i>``: ``--archs`` random mobilenet-c10 architectures (seeded), trained in float;
- ``arch<i>-<act>``: for the first ``--twins`` of them, activation twins: the same architecture with relu6,
  hswish and silu in every block (stem and head keep the space's fixed relu6), each trained.

Each unit is trained on Fashion-MNIST with the project's loop (``nas.train.loop.train``, its recipe, then
``nas.train.batchnorm.recalibrate_bn_checked``: BN statistics recomputed on 512 images, kept only if validation
accuracy does not drop; units trained before 2026-12-04 04:15 were recalibrated unconditionally, and only
arch2-relu6 lost accuracy by it, 82 % validation -> 54 % test, so it was trained again), exported to fp32
ONNX, and deployed with ``nas.nn.quantize`` at every
assignment below (stem and head stay at the space's fixed w8a8):

- uniform over the blocks: w8a8, w4a8, w8a32, w4a32, w32a8;
- per role (``LayerSpec.dw_wbits``): point-wise w4 / depth-wise w8 and point-wise w8 / depth-wise w4, all a8;
- ``--mixed`` random per-block assignments from the space's own choices (wbits 4/8/32, abits 8/32), seeded
  per unit.

Accuracy is onnxruntime's on the same ``--test`` test images for every assignment of every unit (float: the
fp32 ONNX file, also run in onnxruntime). One CSV row per (unit, assignment) with the bits per block, the
simple baselines (count / parameter share / MAC share of 4-bit weights), float and deployed accuracy.

Usage: python -m experiments.quant.quant_truth [--archs 8 --twins 3 --epochs 3 --n-train 10000 --test 2000]
       [--train-seed S --only UNIT ... --name quant_truth_retrain]  (a second training run, for quant_truth_retest)
Writes <out-dir>/<name>.csv (out-dir: experiments/quant/results, name: quant_truth; one unit's rows at a time; a
unit whose rows are all there, measured with today's ``QUANTIZER``, is skipped: resumable, and a quantizer change
re-deploys every unit without training it again), <name>.json (settings, per-unit training time and accuracy, the
stamps of every run that added units). Trained weights are kept under experiments/work/quant_truth/ (not
committed), so a unit interrupted after training is not trained again.
One torch thread; a unit takes ~16 min on this CPU (training ~11, onnxruntime accuracy ~5). Two epochs left
a pilot run's first network at 79.8 % float, below the 80 % the ground truth asks for, so three it is.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pandas as pd

from experiments.harness import add_out_dir, write_results
from experiments.quant.common import (QUANTIZER, SPACE, assignments, bits_text, deployed_layers, hash_unit,
                                      unit_folder)

TWIN_ACTS = ("relu6", "hswish", "silu")


def float_arch(arch):
    """The architecture with every block at w32a32: what is trained (bits are a deployment choice)."""
    stages = tuple(dataclasses.replace(s, blocks=tuple(dataclasses.replace(b, wbits=32, abits=32) for b in s.blocks))
                   for s in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def with_activation(arch, act: str):
    stages = tuple(dataclasses.replace(s, blocks=tuple(dataclasses.replace(b, act=act) for b in s.blocks))
                   for s in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def units(space, n_archs: int, n_twins: int, seed: int) -> list[dict]:
    """The trained networks: random architectures, then activation twins of the first ``n_twins``."""
    out = []
    base = [float_arch(a) for a in space.sample_many(n_archs, seed=seed)]
    for i, arch in enumerate(base):
        out.append({"unit": f"arch{i}", "base": f"arch{i}", "act_variant": "sampled", "arch": space.format(arch)})
    for i, arch in enumerate(base[:n_twins]):
        for act in TWIN_ACTS:
            out.append({"unit": f"arch{i}-{act}", "base": f"arch{i}", "act_variant": act,
                        "arch": space.format(with_activation(arch, act))})
    return out


def baselines(layers) -> dict:
    """The simple predictors of a drop: count, parameter share and MAC share of 4-bit weights (block convs)."""
    n4 = 0
    w_all = w4 = m_all = m4 = 0
    for spec in layers:
        if spec.op != "ir":
            continue
        n4 += int(spec.wbits == 4 or spec.dw_wbits == 4)
        for i, (params, _, macs) in enumerate(spec.parts()):
            wb, _ = spec.role_bits(i == spec.depthwise_index)
            w_all, m_all = w_all + params, m_all + macs
            if wb == 4:
                w4, m4 = w4 + params, m4 + macs
    return {"n_w4_blocks": n4, "w4_param_share": w4 / w_all, "w4_mac_share": m4 / m_all}


def train_unit(unit: dict, space, args, weights: Path):
    """The unit's trained model (from ``weights`` if an earlier run got that far) and its training record."""
    import torch

    from nas.data.datasets import for_space
    from nas.train.loop import train
    from nas.train.batchnorm import recalibrate_bn_checked
    from nas.nn.build import build_model

    arch = space.parse(unit["arch"])
    model = build_model(arch, space, seed=args.train_seed)
    record_path = weights.with_suffix(".json")
    if weights.is_file() and record_path.is_file():
        model.load_state_dict(torch.load(weights))
        return model, json.loads(record_path.read_text())
    data = for_space(space, "fashion-mnist", split="train", resolution=arch.resolution, seed=args.seed)
    result = train(model, epochs=args.epochs, data=data, seed=args.train_seed, n_train=args.n_train, progress=True)
    bn = recalibrate_bn_checked(model, data, 512, seed=args.train_seed, result=result)
    record = {"val_accuracy": result["accuracy"], "bn_recalibrated": bn["kept"],
              "val_accuracy_recalibrated": bn["val_accuracy"], "train_seconds": round(result["seconds"], 1),
              "steps": result["steps"], "n_train": result["n_train"], "epochs": args.epochs}
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)
    record_path.write_text(json.dumps(record))
    return model, record


def run_unit(unit: dict, space, args) -> list[dict]:
    """Train (or reload) one unit, deploy it at every assignment, one row per assignment."""
    from nas.data.datasets import for_space
    from nas.train.loop import accuracy, evaluate
    from nas.deploy.pipeline import accuracy_indices, export_checked, ort_predictor
    from nas.layers import plan
    from nas.nn import quantize as Q
    from nas.nn.onnx import ort_session

    arch = space.parse(unit["arch"])
    folder = unit_folder(unit["unit"], args.epochs, args.n_train, args.seed, args.train_seed)  # this recipe's weights
    model, record = train_unit(unit, space, args, folder / "weights.pt")
    test = for_space(space, "fashion-mnist", split="test", resolution=arch.resolution, seed=args.seed)
    train_data = for_space(space, "fashion-mnist", split="train", resolution=arch.resolution, seed=args.seed)
    idx = accuracy_indices(len(test), args.test, args.seed)
    torch_acc = evaluate(model, test, indices=idx)
    fp32_path = folder / "model.onnx"
    export_checked(model, fp32_path, test.sample(8, seed=args.seed)[0])
    calib = Q.calibration_batches(train_data.sample(args.calib, seed=args.seed + 1)[0].numpy())
    layers = plan(arch, space)
    rows = []
    for name, bits in assignments(space, layers, args.mixed, seed=args.seed * 1000 + hash_unit(unit["unit"])).items():
        t0 = time.perf_counter()
        deployed = deployed_layers(layers, bits)
        if name == "fp32":
            path = fp32_path
        else:
            path = folder / f"{name}.onnx"
            Q.quantize(fp32_path, path, deployed, calib)
        acc = accuracy(ort_predictor(ort_session(path)), test, idx, 256, progress=True, desc=name)
        rows.append({**unit, "train_seed": args.train_seed, "quantizer": QUANTIZER, "assignment": name,
                     "bits": bits_text(bits), **baselines(deployed),
                     "torch_float_accuracy": torch_acc, "accuracy": acc, "n_test": len(idx),
                     "val_accuracy": record["val_accuracy"], "bn_recalibrated": record.get("bn_recalibrated", True),
                     "train_seconds": record["train_seconds"],
                     "eval_seconds": round(time.perf_counter() - t0, 1)})
        if path != fp32_path:
            path.unlink(missing_ok=True)
    float_acc = rows[0]["accuracy"]
    for r in rows:
        r["float_accuracy"] = float_acc
        r["drop_points"] = 100 * (float_acc - r["accuracy"])
    return rows


def current_units(out: Path) -> set[str]:
    """Units whose rows were all measured with today's quantizer (the others are re-deployed)."""
    if not out.is_file():
        return set()
    rows = pd.read_csv(out)
    if "quantizer" not in rows:
        return set()
    return set(rows["unit"]) - set(rows.loc[rows["quantizer"] != QUANTIZER, "unit"])


def replace_rows(out: Path, unit: str, frame: pd.DataFrame) -> None:
    """Write ``frame`` as the unit's rows, dropping any older ones (written to a temporary file, then renamed)."""
    old = pd.read_csv(out) if out.is_file() else frame.iloc[:0]
    merged = pd.concat([old[old["unit"] != unit], frame], ignore_index=True)
    tmp = out.with_suffix(".csv.tmp")
    merged[list(frame.columns)].to_csv(tmp, index=False)
    tmp.replace(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=8)
    p.add_argument("--twins", type=int, default=3)
    p.add_argument("--mixed", type=int, default=5, help="random per-block assignments per unit")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--test", type=int, default=2000, help="test images, the same for every assignment")
    p.add_argument("--calib", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-seed", type=int, default=None,
                   help="seed of initialisation and training order only (default: --seed); write to another --name")
    p.add_argument("--only", nargs="*", default=None, help="unit names to run (default: all)")
    add_out_dir(p, "quant", name="quant_truth")
    args = p.parse_args()
    # --train-seed seeds only the initialisation and the training order; architectures, assignments, test and
    # calibration images follow --seed alone, so another train seed is a second training run of the same conditions
    args.train_seed = args.seed if args.train_seed is None else args.train_seed
    import torch

    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(SPACE)
    out = args.out_dir / f"{args.name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = units(space, args.archs, args.twins, args.seed)
    if args.only:
        todo = [u for u in todo if u["unit"] in args.only]
    done = current_units(out)
    meta_path = out.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta = {k: v for k, v in meta.items() if k not in ("stamp", "earlier_stamps", "files")}  # the harness's own
    meta["settings"] = {k: v for k, v in vars(args).items() if k not in ("only", "out_dir", "name")}
    meta["protocol"] = __doc__.split("\n\n")[1].strip()
    for unit in todo:
        if unit["unit"] in done:
            continue
        t0 = time.perf_counter()
        rows = run_unit(unit, space, args)
        replace_rows(out, unit["unit"], pd.DataFrame(rows))
        meta.setdefault("units", {})[unit["unit"]] = {
            "float_accuracy": rows[0]["float_accuracy"], "train_seconds": rows[0]["train_seconds"],
            "unit_seconds": round(time.perf_counter() - t0, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_results(args.out_dir, args.name, summary=meta, files=[out], resumed=True)
        print(f"{unit['unit']}: float {rows[0]['float_accuracy']:.3f}, "
              + ", ".join(f"{r['assignment']} {r['accuracy']:.3f}" for r in rows[1:]), flush=True)


if __name__ == "__main__":
    main()
