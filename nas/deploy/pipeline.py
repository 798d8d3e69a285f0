"""`nas export`: train, quantize and export chosen architectures, verified and timed in onnxruntime.

For each target (an architecture given directly, the top-k of a study's Pareto front, or one trial):

1. build it (``nas.nn.build``) and train it ``epochs`` on the data with ``nas.data.train`` (E=0: untrained);
2. export fp32 ONNX (``nas.nn.onnx``, one file, opset 21) and check onnxruntime against PyTorch;
3. quantize it at the architecture's per-layer bit-widths with :mod:`nas.nn.quantize`, calibrated on
   ``calib_samples`` images of the training split;
4. evaluate fp32 (PyTorch) and quantized (onnxruntime) accuracy on the same test images; time both files end to
   end with the profiler's protocol (``nas.latency.validate.measure_onnx``: interleaved, batch 1, overhead
   subtracted) and compare with the latency table(s) of the study's device(s);
5. write ``DIR/<name>/model.onnx``, ``model.quant.onnx``, ``card.json`` and rewrite ``DIR/summary.csv``.

Each model is written as soon as it is done; a failing model is recorded in summary.csv (status ``error``) and
the others go on. :func:`export` returns the rows; the CLI exits non-zero when any row failed.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.deploy.card import CARD_NAME, FP32_NAME, QUANT_NAME, SUMMARY_NAME, _bit_histogram, summary_row
from nas.deploy.targets import Target, _plain, _trial_attrs

CARD_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    epochs: int = 0
    data: str = "fashion-mnist"
    calib_samples: int = 128
    n_train: int | None = 5000  # training examples per epoch (None: the whole split), as nas.data.train
    bn_samples: int = 512  # after training: BatchNorm statistics recomputed on this many training images (0: off)
    test_samples: int | None = None  # test images for accuracy (None: the whole test split)
    seed: int = 0
    dtype: str = "arch"  # deployment: arch (each layer at its bits), int8 (every layer w8a8) or fp32
    threads: int = 1  # onnxruntime threads for latency (the table's setting is used when a table is known)
    rounds: int = 5
    warmup: int = 5
    repeats: int = 20
    progress: bool = True


# --------------------------------------------------------------------------------------------------------
# choosing targets
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------------------
def _ort_accuracy(session, data, idx: np.ndarray, desc: str, progress: bool) -> float:
    from tqdm import tqdm

    from nas.nn.onnx import run_onnx

    correct = 0
    for start in tqdm(range(0, len(idx), 256), desc=desc, unit="batch", disable=not progress, leave=False):
        x, y = data.batch(idx[start:start + 256])
        x = x.numpy()
        pred = np.array([int(np.argmax(run_onnx(session, x[i:i + 1]))) for i in range(len(x))])
        correct += int((pred == y.numpy()).sum())
    return correct / max(1, len(idx))


def _predict(target: Target, arch, space, dtype: str) -> dict:
    from nas.latency.load import load as load_latency

    out = {}
    for device in target.devices:
        entry = {}
        for key, d in (("quantized_ms", dtype), ("fp32_ms", "fp32")):
            try:
                entry[key] = float(load_latency(device, dtype=d).predict(arch, space).latency_ms)
            except NasError as exc:
                entry[key] = None
                entry[key.replace("_ms", "_error")] = str(exc)
        out[device] = entry
    return out


def _table_protocol(devices: list[str], threads: int) -> tuple[int, str]:
    """(threads, statistic) of the first readable table, so measured and predicted are comparable."""
    from nas.latency import read_table

    for d in devices:
        try:
            meta = read_table(d).meta
        except (NasError, OSError, ValueError):
            continue
        t = str(meta.get("threads", ""))
        return (int(t) if t.isdigit() else threads), str(meta.get("stat", "median"))
    return threads, "median"


_TRAINED: dict[tuple, tuple[dict, dict]] = {}  # same arch + recipe in one process: train once (e.g. int8 and arch)


def export_one(target: Target, out_dir: Path, cfg: ExportConfig) -> dict:
    """Export one target into ``out_dir/target.name``; returns its card (also written as card.json)."""
    import torch

    from nas.data import datasets as datamod
    from nas.nn import quantize as Q
    from nas.latency.measure.profile import runtime_info
    from nas.latency.signatures import check_dtype, deploy
    from nas.latency.measure.validate import measure_onnx
    from nas.layers import plan
    from nas.nn.build import build_model
    from nas.nn.onnx import export_onnx, ort_session, run_onnx
    from nas.space import load_space
    from nas.data.train import evaluate, train

    check_dtype(cfg.dtype)
    space = load_space(target.space)
    arch = space.parse(target.arch)
    specs = [deploy(s, cfg.dtype) for s in plan(arch, space)]
    train_data = datamod.for_space(space, cfg.data, split="train", seed=cfg.seed)
    test_data = datamod.for_space(space, cfg.data, split="test", seed=cfg.seed)
    folder = out_dir / target.name
    folder.mkdir(parents=True, exist_ok=True)

    model = build_model(arch, space, seed=cfg.seed)
    training: dict[str, Any] = {"epochs": cfg.epochs, "data": cfg.data, "seed": cfg.seed}
    key = (space.name, target.arch, cfg.epochs, cfg.data, cfg.n_train, cfg.seed)
    if cfg.epochs > 0 and key in _TRAINED:
        model.load_state_dict(_TRAINED[key][0])
        training.update(_TRAINED[key][1])
    elif cfg.epochs > 0:
        result = train(model, epochs=cfg.epochs, data=train_data, seed=cfg.seed, n_train=cfg.n_train,
                       progress=cfg.progress)
        training.update(val_accuracy=result["accuracy"], loss=result["loss"], steps=result["steps"],
                        n_train=result["n_train"], n_val=result["n_val"], seconds=round(result["seconds"], 2))
        if cfg.bn_samples > 0:
            recalibrate_bn(model, train_data, cfg.bn_samples, seed=cfg.seed)
            training["bn_recalibration_samples"] = cfg.bn_samples
        _TRAINED[key] = ({k: v.clone() for k, v in model.state_dict().items()}, dict(training))
    model.eval()

    fp32_path, quant_path = folder / FP32_NAME, folder / QUANT_NAME
    export_onnx(model, fp32_path)
    x_check, _ = test_data.sample(8, seed=cfg.seed)
    with torch.no_grad():
        ref = model(x_check).numpy()
    session = ort_session(fp32_path)
    got = np.concatenate([run_onnx(session, x_check[i:i + 1].numpy()) for i in range(len(x_check))])
    max_diff = float(np.abs(got - ref).max())
    tol = 1e-4 + 1e-3 * float(np.abs(ref).max())
    if not max_diff <= tol:
        raise NasError(f"onnxruntime output differs from PyTorch by {max_diff:.3g} (tolerance {tol:.3g})",
                       where=str(fp32_path), fix="report this architecture: an op does not export faithfully")

    calib, _ = train_data.sample(cfg.calib_samples, seed=cfg.seed + 1)
    t0 = time.perf_counter()
    qsummary = Q.quantize(fp32_path, quant_path, specs,
                          _progress(Q.calibration_batches(calib.numpy()), "calibrate", cfg.progress))
    q_seconds = time.perf_counter() - t0

    n_test = len(test_data) if cfg.test_samples is None else min(cfg.test_samples, len(test_data))
    idx = np.sort(np.random.default_rng(cfg.seed).choice(len(test_data), size=n_test, replace=False))
    fp32_acc = evaluate(model, test_data, indices=idx)
    quant_acc = _ort_accuracy(ort_session(quant_path), test_data, idx, "evaluate quantized", cfg.progress)

    threads, stat = _table_protocol(target.devices, cfg.threads)
    shape = (1, *model.input_shape)
    measured = measure_onnx([(fp32_path, shape), (quant_path, shape)], threads=threads, rounds=cfg.rounds,
                            warmup=cfg.warmup, repeats=cfg.repeats, stat=stat, progress=cfg.progress)
    (fp_ms, fp_iqr), (q_ms, q_iqr) = measured.values
    predicted = _predict(target, arch, space, cfg.dtype)
    info = runtime_info(threads)

    sizes = {FP32_NAME: fp32_path.stat().st_size, QUANT_NAME: quant_path.stat().st_size}
    provenance = dict(target.provenance)
    if provenance.get("source") == "study":
        try:
            provenance["trial_attrs"] = _trial_attrs(provenance["storage"], provenance["study"], provenance["trial"])
        except Exception as exc:  # provenance is best effort; the export itself is valid
            provenance["trial_attrs_error"] = str(exc)
    card = {
        "card_version": CARD_VERSION,
        "name": target.name,
        "space": space.name,
        "arch": space.format(arch),
        "deployment": cfg.dtype,
        "arch_json": json.loads(arch.to_json()),
        "params": sum(s.params() for s in specs),
        "macs": sum(s.macs() for s in specs),
        "size_bytes_analytic": sum(s.size_bytes() for s in specs),
        "layers": [{"name": s.name, "op": s.op, "key": s.key, "wbits": s.wbits, "abits": s.abits,
                    "deployed": Q.Bits(s.wbits, s.abits).label if s.weight_params() or s.op != "skip" else "-"}
                   for s in specs],
        "bit_widths": _bit_histogram(specs),
        "files": {**sizes, "size_ratio": sizes[QUANT_NAME] / sizes[FP32_NAME]},
        "training": training,
        "onnx_check": {"samples": int(len(x_check)), "max_abs_diff": max_diff, "tolerance": tol},
        "quantization": {"method": "onnxruntime static quantization, QDQ, per-channel symmetric weights, "
                                   "QUInt8 activations, MinMax calibration", "calib_samples": cfg.calib_samples,
                         "calib_data": f"{cfg.data} train split", "seconds": round(q_seconds, 2), **qsummary},
        "accuracy": {"split": "test", "data": cfg.data, "n": int(n_test), "fp32": fp32_acc, "quantized": quant_acc,
                     "drop_points": 100 * (fp32_acc - quant_acc), "fp32_runtime": "pytorch",
                     "quantized_runtime": "onnxruntime"},
        "latency": {"measured_ms": {"fp32": fp_ms, "quantized": q_ms},
                    "measured_iqr_ms": {"fp32": fp_iqr, "quantized": q_iqr},
                    "speedup": fp_ms / q_ms if q_ms > 0 else None,
                    "predicted_ms": predicted,
                    "conditions": {**info, "batch": 1, "rounds": cfg.rounds, "repeats": cfg.repeats,
                                   "warmup": cfg.warmup, "stat": stat,
                                   "reference_kernel_ms": measured.session_reference_ms,
                                   "protocol": "nas.latency.validate.measure_onnx: interleaved rounds, I/O binding, "
                                               "calls paired with the reference kernel (this session's speed), "
                                               "per-call overhead subtracted"}},
        "provenance": {**provenance, "exported": _dt.datetime.now().isoformat(timespec="seconds")},
    }
    (folder / CARD_NAME).write_text(json.dumps(card, indent=2, default=_plain) + "\n")
    return card


def recalibrate_bn(model, data, n: int, *, seed: int = 0, batch: int = 128) -> None:
    """Recompute every BatchNorm's running mean/variance as a plain average over ``n`` training images.

    BN folds into the convs on export, so its running statistics *are* deployed weights. After a short run at a
    high learning rate the exponential averages lag the final weights (a few-epoch mobilenet-c10 member then
    scores near chance in eval mode although it trains); recomputing them on the final weights fixes that.
    """
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    idx = np.random.default_rng(seed + 17).choice(len(data), size=min(n, len(data)), replace=False)
    with torch.no_grad():
        for start in range(0, len(idx), batch):
            model(data.batch(idx[start:start + batch])[0])
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.eval()


def _progress(items, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not progress, leave=False)


# --------------------------------------------------------------------------------------------------------
# many models
# --------------------------------------------------------------------------------------------------------


def export(targets: list[Target], out_dir: str | Path, cfg: ExportConfig = ExportConfig()) -> list[dict]:
    """Export every target; summary.csv is rewritten after each one. Returns the summary rows."""
    import pandas as pd
    from tqdm import tqdm

    from nas.data import datasets as datamod

    from nas.latency.signatures import check_dtype

    datamod.check_name(cfg.data)
    check_dtype(cfg.dtype)
    if cfg.epochs < 0:
        raise NasError(f"--epochs must be 0 or more, got {cfg.epochs}", where="--epochs")
    if cfg.calib_samples < 1:
        raise NasError(f"--calib-samples must be at least 1, got {cfg.calib_samples}", where="--calib-samples")
    if cfg.data == "noise":
        raise NasError("noise has no meaningful accuracy", where="--data", fix="use fashion-mnist or digits")
    datamod.load(cfg.data, split="train", resolution=8, channels=1)  # a missing dataset fails before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    bar = tqdm(targets, desc="export", unit="model", disable=not cfg.progress)
    for target in bar:
        bar.set_postfix_str(target.name)
        card, error = None, None
        try:
            card = export_one(target, out, cfg)
        except NasError as exc:
            error = str(exc)
        except Exception as exc:  # one broken model must not lose the others
            error = f"{type(exc).__name__}: {exc}"
            (out / target.name).mkdir(parents=True, exist_ok=True)
            (out / target.name / "error.txt").write_text(traceback.format_exc())
        rows.append(summary_row(target, card, error))
        pd.DataFrame(rows).to_csv(out / SUMMARY_NAME, index=False)
    bar.close()
    return rows
