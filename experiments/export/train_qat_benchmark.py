"""Real accuracy for exported models (issue 15): training time, float / PTQ / QAT accuracy of 3 front members.

1. The README main job's study (mobilenet-c10 on x86-2vcpu, 200 trials, objectives proxy, latency, size; made
   here with the same settings if ``--storage`` has no such study). Its first ``--k`` Pareto members by latency.
2. Training speed of each member (images/s over ``--speed-steps`` steps of the export recipe, at ``--threads`` torch threads).
3. Each member trained on the full Fashion-MNIST training split with ``nas export``'s recipe for as many epochs as
   fit in ``--minutes`` at its measured speed (at least 1), then deployed at its own bits; float (PyTorch) and
   deployed (onnxruntime) accuracy on the full 10,000-image test split. The issue's target: the fastest-training
   member >= 90 % float and >= 89.5 % deployed within 30 minutes on 2 cores.
4. QAT: each member (float-trained once, above) deployed with every block at w8a8, at w4a8 by PTQ, and at w4a8
   after ``--qat-epochs`` of quantization-aware fine-tuning; target: QAT w4a8 within 1 point of w8a8 for
   members trained to >= 85 % float.

Resumable: one results row per (member, deployment) in ``<out-dir>/<name>.csv`` (out-dir:
experiments/export/results, name: train_qat_benchmark), finished rows are skipped; trained float weights are kept
in ``experiments/work/train_qat/`` (not committed), so a restart does not train a member again.

    python -m experiments.export.train_qat_benchmark [--k 3] [--minutes 30] [--qat-epochs 2] [--qat-n-train N] [--threads 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time

import pandas as pd

from experiments import harness

WORK = harness.WORK / "train_qat"
SPACE, DEVICE, STUDY = "mobilenet-c10", "x86-2vcpu", "mobilenet-c10-x86-2vcpu"
TRAIN_IMAGES = 60_000 - 2_000  # the export recipe holds 2,000 training images out for validation


def at_bits(space, text: str, wbits: int, abits: int) -> str:
    """``text`` with every block at (wbits, abits); stem and head keep the space's fixed bits."""
    arch = space.parse(text)
    stages = tuple(dataclasses.replace(s, blocks=tuple(dataclasses.replace(b, wbits=wbits, abits=abits)
                                                       for b in s.blocks)) for s in arch.stages)
    return space.format(dataclasses.replace(arch, stages=stages))


def front_members(storage: str, k: int, seed: int, trials: int):
    """The study's first ``k`` Pareto members (made with the README main job's settings if missing)."""
    from nas.deploy import targets_from_study
    from nas.search import SearchConfig, search
    from nas.search.storage import stored_config

    if stored_config(storage, STUDY) is None:
        search(SearchConfig(space=SPACE, devices=[DEVICE], trials=trials, objectives=["proxy", "latency", "size"],
                            storage=storage, study=STUDY, seed=seed))
    return targets_from_study(storage, STUDY, top_k=k)


def images_per_second(space, text: str, steps: int, seed: int) -> float:
    """Training images/s of one network with the export recipe (batch 128, channels-last), after one warm step."""
    import torch

    from nas.data.datasets import for_space
    from nas.train.loop import param_groups, train_epoch, lr_schedule
    from nas.nn.build import build_model

    arch = space.parse(text)
    model = build_model(arch, space, seed=seed).to(memory_format=torch.channels_last)
    data = for_space(space, "fashion-mnist", split="train", resolution=arch.resolution, seed=seed)
    opt = torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9, nesterov=True)
    g = torch.Generator().manual_seed(seed)
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(data))[: 128 * (steps + 1)]
    train_epoch(model, data, order[:128], opt, lr_schedule(0.1, 100), 0, batch_size=128, label_smoothing=0.1,
                augment=True, flip=True, g=g, channels_last=True)
    t0 = time.perf_counter()
    train_epoch(model, data, order[128:], opt, lr_schedule(0.1, 100), 1, batch_size=128, label_smoothing=0.1,
                augment=True, flip=True, g=g, channels_last=True)
    return 128 * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", default=f"sqlite:///{WORK}/studies.db")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--minutes", type=float, default=30.0, help="training budget per member")
    p.add_argument("--speed-steps", type=int, default=10)
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--qat-n-train", type=int, default=None,
                   help="training images per QAT epoch (default: as --n-train; 0: the whole split)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, default=200, help="trials of the study if it must be made (README: 200)")
    p.add_argument("--n-train", type=int, default=None, help="training images per epoch (default: the whole split)")
    p.add_argument("--test", type=int, default=None, help="test images (default: all 10,000)")
    harness.add_out_dir(p, "export", name="train_qat_benchmark")
    args = p.parse_args()
    import optuna
    import torch

    from nas.deploy import ExportConfig, Target, export
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    space = load_space(SPACE)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / args.name
    rows = pd.read_csv(out.with_suffix(".csv")).to_dict("records") if out.with_suffix(".csv").is_file() else []
    done = {(r["member"], r["deployment"]) for r in rows}
    members = front_members(args.storage, args.k, args.seed, args.trials)
    trained_path = WORK / "trained.pt"
    trained = torch.load(trained_path, weights_only=False) if trained_path.is_file() else {}
    for i, target in enumerate(members):
        speed = images_per_second(space, target.arch, args.speed_steps, args.seed)
        epochs = max(1, math.floor(args.minutes * 60 * speed / (args.n_train or TRAIN_IMAGES)))
        cfg = ExportConfig(epochs=epochs, data="fashion-mnist", n_train=args.n_train, test_samples=args.test,
                           seed=args.seed, train_device="auto", progress=True,
                           qat_n_train=args.qat_n_train)
        plan = {"own bits": (target.arch, 0), "w8a8": (at_bits(space, target.arch, 8, 8), 0),
                "w4a8 PTQ": (at_bits(space, target.arch, 4, 8), 0),
                "w4a8 QAT": (at_bits(space, target.arch, 4, 8), args.qat_epochs)}
        for deployment, (text, qat) in plan.items():
            if (i, deployment) in done:
                continue
            name = f"m{i}-{deployment.replace(' ', '-')}"
            t0 = time.perf_counter()
            row = export([Target(name=name, space=SPACE, arch=text, devices=[DEVICE])], WORK / "export",
                         dataclasses.replace(cfg, qat_epochs=qat), trained=trained)[0]
            torch.save(trained, trained_path)  # float weights survive a restart
            card = json.loads((WORK / "export" / row["name"] / "card.json").read_text()) if row["status"] == "ok" else {}
            training = card.get("training", {})
            rows.append({"member": i, "trial": target.provenance.get("trial", ""), "deployment": deployment,
                         "status": row["status"], "error": row["error"], "images_per_s": round(speed, 1),
                         "epochs": epochs, "train_minutes": round(training.get("seconds", 0) / 60, 1),
                         "qat_minutes": round(training.get("qat", {}).get("seconds", 0) / 60, 1),
                         "float_acc": row.get("fp32_acc"), "deployed_acc": row.get("quant_acc"),
                         "drop_points": row.get("drop_points"), "test_images": card.get("accuracy", {}).get("n"),
                         "wall_minutes": round((time.perf_counter() - t0) / 60, 1), "arch": text})
            pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    harness.write_results(args.out_dir, args.name, threads=args.threads, resumed=True,
                          files=[out.with_suffix(".csv")], summary={"settings": vars(args)}, md="\n".join([
        "# Training and QAT benchmark (experiments/export/train_qat_benchmark.py)", "",
        f"Torch threads {args.threads}, budget {args.minutes} min per "
        f"member, QAT {args.qat_epochs} epochs of {args.qat_n_train or 'as many'} images; Fashion-MNIST, {args.n_train or 'all'} training images per epoch, "
        f"{args.test or 'all 10,000'} test images.", "",
        frame.drop(columns=["arch", "error"]).to_markdown(index=False, floatfmt=".4f"), ""]))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
