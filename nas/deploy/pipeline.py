"""`nas export`: train, quantize and export chosen architectures, verified and timed in onnxruntime.

For each target (an architecture given directly, the top-k of a study's Pareto front, or one trial):

1. build it (``nas.nn.build``) at the architecture's own resolution and train it ``epochs`` on the data with
   ``nas.train`` (:mod:`~nas.train.loop`, then :mod:`~nas.train.batchnorm` and, with ``qat_epochs``,
   :mod:`~nas.train.qat`; E=0: untrained) — :func:`train_model`;
2. export fp32 ONNX (``nas.nn.onnx``, one file, opset 21) and check onnxruntime against PyTorch —
   :func:`export_checked`;
3. quantize it at the architecture's per-layer bit-widths with :mod:`nas.nn.quantize`, calibrated on
   ``calib_samples`` images of the training split — :func:`quantize_model`;
4. evaluate fp32 (PyTorch) and quantized (onnxruntime) accuracy on the same test images with the one accuracy
   loop ``nas.train.loop.accuracy`` — :func:`evaluate_both`;
5. time both files end to end with the profiler's protocol (``nas.latency.measure.timing.measure_onnx``:
   interleaved, batch 1, overhead subtracted) and compare with the latency table(s) of the study's device(s) —
   :func:`measure_latency`;
6. write ``DIR/<name>/model.onnx``, ``model.quant.onnx``, ``card.json`` (:mod:`nas.deploy.card`) as one set
   (made in ``DIR/<name>.partial``, then put in place whole) and merge its row into ``DIR/summary.csv``.
   ``<name>`` is the target's (``<study>-trial<N>``, ``arch-<hash>``, a baseline's) and the deployment:
   ``fbnet-c100-raspi4-trial12-int8``; a folder holding another model's export is not overwritten.

Each model is written as soon as it is done; a failing model is recorded in summary.csv (status ``error``) and
the others go on. :func:`export` returns the rows; the CLI exits non-zero when any row failed. Within one
:func:`export` call the same architecture trained with the same recipe is trained once (a ``trained`` dict
passed to several calls shares it between them, e.g. one deployment as ``arch`` and one as ``int8``).
"""
from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.deploy.card import (CARD_NAME, FP32_NAME, QUANT_NAME, SUMMARY_NAME, build_card, read_summary, summary_row,
                             write_card, write_summary)
from nas.fileio import atomic_write_text, replace_folder
from nas.deploy.targets import Target

QUANT_METHOD = ("onnxruntime static quantization, QDQ, per-channel symmetric weights, QUInt8 activations, "
                "MinMax calibration")
ERROR_NAME = "error.txt"  # an unexpected failure's traceback, in the model's .partial folder
TIMING_PROTOCOL = ("nas.latency.measure.timing.measure_onnx: interleaved rounds, I/O binding, calls paired with "
                   "the reference kernel (this session's speed), per-call overhead subtracted")


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    epochs: int = 0
    data: str = "fashion-mnist"
    calib_samples: int = 128
    n_train: int | None = 5000  # training examples per epoch (None: the whole split), as nas.train.loop
    bn_samples: int = 512  # after training: BatchNorm statistics recomputed on this many training images (0: off)
    qat_epochs: int = 0  # quantization-aware fine-tuning at the architecture's bits after float training (0: off)
    qat_lr: float = 0.01  # its peak learning rate (cosine schedule, as float training; a tenth of train()'s)
    qat_n_train: int | None = None  # training examples per QAT epoch (None: as n_train; 0: the whole split)
    train_device: str = "auto"  # auto (CUDA when there is one), cpu or cuda
    test_samples: int | None = None  # test images for accuracy (None: the whole test split)
    seed: int = 0
    dtype: str = "arch"  # deployment: arch (each layer at its bits), int8 (every layer w8a8) or fp32
    threads: int = 1  # onnxruntime threads for latency (the table's setting is used when a table is known)
    rounds: int = 5
    warmup: int = 5
    repeats: int = 20
    progress: bool = True


# trained weights of one export() call: training_key -> (state dict, the card's training section)
TrainedModels = dict[tuple, tuple[dict, dict]]


# --------------------------------------------------------------------------------------------------------
# 1. train
# --------------------------------------------------------------------------------------------------------
def training_key(space_name: str, arch_text: str, cfg: ExportConfig) -> tuple:
    """Everything that decides the float-trained weights: the network and the float recipe. Give the
    architecture with its bits stripped (:func:`float_text`): bits do not change float training, so the twins of
    one network at several bit-widths train once. QAT is keyed on top of it (:func:`train_model`)."""
    return (space_name, arch_text, cfg.epochs, cfg.data, cfg.n_train, cfg.bn_samples, cfg.seed)


def float_text(arch) -> str:
    """The architecture with every block at 32 bits, as JSON: the network float training sees (a space that
    offers no float blocks still has this key)."""
    import dataclasses

    stages = tuple(dataclasses.replace(st, blocks=tuple(dataclasses.replace(b, wbits=32, abits=32, dw_wbits=None,
                                                                            dw_abits=None) for b in st.blocks))
                   for st in arch.stages)
    return dataclasses.replace(arch, stages=stages).to_json()


def train_model(model, train_data, cfg: ExportConfig, *, key: tuple, trained: TrainedModels, specs=None,
                folder: Path | None = None) -> dict:
    """Train ``model`` in place by ``cfg`` with :mod:`nas.train` (E=0: leave it untrained) and recompute its
    BatchNorm statistics, then fine-tune it quantization-aware at ``specs``' bits (the plan it deploys at) if
    ``cfg.qat_epochs`` (:func:`fine_tune_model`); returns the card's training section. Weights whose key is
    already in ``trained`` are loaded instead: the float training under ``key``, the QAT under ``key`` + the QAT
    recipe and the deployed bits. With ``folder``, each run checkpoints there after every epoch (``train.ckpt``,
    ``qat.ckpt``), so an export stopped by Ctrl-C resumes where it stopped when run again."""
    from nas.train.batchnorm import recalibrate_bn_checked
    from nas.train.loop import train

    training: dict[str, Any] = {"epochs": cfg.epochs, "data": cfg.data, "seed": cfg.seed}
    if cfg.epochs > 0 and key in trained:
        state, record = trained[key]
        model.load_state_dict(state)
        training.update(record)
    elif cfg.epochs > 0:
        result = train(model, epochs=cfg.epochs, data=train_data, seed=cfg.seed, n_train=cfg.n_train,
                       progress=cfg.progress, device=cfg.train_device,
                       checkpoint=None if folder is None else folder / "train.ckpt")
        training.update(val_accuracy=result["accuracy"], loss=result["loss"], steps=result["steps"],
                        n_train=result["n_train"], n_val=result["n_val"], seconds=round(result["seconds"], 2),
                        device=result["device"], resumed_from_epoch=result["resumed_from_epoch"])
        if cfg.bn_samples > 0:
            training["bn_recalibration"] = recalibrate_bn_checked(model, train_data, cfg.bn_samples, seed=cfg.seed,
                                                                  result=result)
        trained[key] = ({k: v.clone() for k, v in model.state_dict().items()}, dict(training))
    if cfg.qat_epochs > 0:
        bits = tuple((s.wbits, s.abits, s.dw_wbits, s.dw_abits) for s in (specs or model.specs))
        qat_key = (*key, "qat", cfg.qat_epochs, cfg.qat_lr, qat_examples(cfg), bits)
        if qat_key in trained:
            state, training["qat"] = trained[qat_key]
            model.load_state_dict(state)
        else:
            training["qat"] = fine_tune_model(model, train_data, cfg, specs,
                                              None if folder is None else folder / "qat.ckpt")
            trained[qat_key] = ({k: v.clone() for k, v in model.state_dict().items()}, training["qat"])
    model.eval()
    return training


def fine_tune_model(model, train_data, cfg: ExportConfig, specs, checkpoint: Path | None = None) -> dict:
    """:func:`nas.train.qat.quantization_aware` by ``cfg`` (``cfg.qat_epochs`` at ``cfg.qat_lr`` on
    :func:`qat_examples` images, seeded by ``cfg.seed``) at the bits of ``specs``: the card's ``training.qat``
    section, which also names the deployment those bits are."""
    from nas.train.qat import quantization_aware

    record = quantization_aware(model, train_data, specs, epochs=cfg.qat_epochs, lr=cfg.qat_lr, seed=cfg.seed,
                                n_train=qat_examples(cfg), bn_samples=cfg.bn_samples, device=cfg.train_device,
                                progress=cfg.progress, checkpoint=checkpoint)
    if "skipped" in record:
        return record
    recipe = {k: record.pop(k) for k in ("epochs", "lr")}
    return {**recipe, "deployment": cfg.dtype, **record}  # the cards' order of keys


def qat_examples(cfg: ExportConfig) -> int | None:
    """Training examples per QAT epoch, as ``nas.train.loop.train`` takes them (None: the whole split):
    fine-tuning usually needs far fewer than float training, so it has its own count."""
    if cfg.qat_n_train is None:
        return cfg.n_train
    return cfg.qat_n_train or None


# --------------------------------------------------------------------------------------------------------
# 2. export fp32 + check, 3. quantize
# --------------------------------------------------------------------------------------------------------
def ort_predictor(session):
    """``predict`` for :func:`nas.train.loop.accuracy`: a batch-1 onnxruntime session run image by image."""
    from nas.nn.onnx import run_onnx

    def predict(x):
        x = x.numpy()
        return np.concatenate([run_onnx(session, x[i:i + 1]) for i in range(len(x))])

    return predict


def export_checked(model, path: Path, x_check) -> dict:
    """Export ``model`` (eval mode) to fp32 ONNX at ``path`` and check onnxruntime against PyTorch on the
    images ``x_check``; returns the card's onnx_check section."""
    import torch

    from nas.nn.onnx import export_onnx, ort_session

    export_onnx(model, path)
    with torch.no_grad():
        ref = model(x_check).numpy()
    got = ort_predictor(ort_session(path))(x_check)
    max_diff = float(np.abs(got - ref).max())
    tol = 1e-4 + 1e-3 * float(np.abs(ref).max())
    if not max_diff <= tol:
        raise NasError(f"onnxruntime output differs from PyTorch by {max_diff:.3g} (tolerance {tol:.3g})",
                       where=str(path), fix="report this architecture: an op does not export faithfully")
    return {"samples": int(len(x_check)), "max_abs_diff": max_diff, "tolerance": tol}


def quantize_model(fp32_path: Path, quant_path: Path, specs, calib, cfg: ExportConfig) -> dict:
    """Quantize the fp32 file at the layers' bit-widths, calibrated on the images ``calib``; returns the card's
    quantization section."""
    from nas.nn import quantize as Q

    t0 = time.perf_counter()
    qsummary = Q.quantize(fp32_path, quant_path, specs,
                          _progress(Q.calibration_batches(calib.numpy()), "calibrate", cfg.progress))
    return {"method": QUANT_METHOD, "calib_samples": cfg.calib_samples, "calib_data": f"{cfg.data} train split",
            "seconds": round(time.perf_counter() - t0, 2), **qsummary}


# --------------------------------------------------------------------------------------------------------
# 4. accuracy, 5. latency
# --------------------------------------------------------------------------------------------------------
def accuracy_indices(n: int, test_samples: int | None, seed: int) -> np.ndarray:
    """The sorted test images every accuracy of one model is taken on (all of them when None)."""
    n_test = n if test_samples is None else min(test_samples, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=n_test, replace=False))


def evaluate_both(model, quant_path: Path, test_data, cfg: ExportConfig) -> dict:
    """fp32 (PyTorch) and quantized (onnxruntime) accuracy on the same test images: the card's accuracy section."""
    from nas.train.loop import accuracy, evaluate
    from nas.nn.onnx import ort_session

    idx = accuracy_indices(len(test_data), cfg.test_samples, cfg.seed)
    fp32_acc = evaluate(model, test_data, indices=idx)
    quant_acc = accuracy(ort_predictor(ort_session(quant_path)), test_data, idx, 256, progress=cfg.progress,
                         desc="evaluate quantized")
    return {"split": "test", "data": cfg.data, "n": int(len(idx)), "fp32": fp32_acc, "quantized": quant_acc,
            "drop_points": 100 * (fp32_acc - quant_acc), "fp32_runtime": "pytorch",
            "quantized_runtime": "onnxruntime"}


def predicted_latency(target: Target, arch, space, dtype: str) -> dict:
    """Per device of the target: the tables' predictions for the deployed and the fp32 network (or why not)."""
    from nas.latency.load import load as load_latency

    out = {}
    for device in target.devices:
        entry = {}
        for key, d in (("quantized_ms", dtype), ("fp32_ms", "fp32")):
            try:
                pred = load_latency(device, dtype=d).predict(arch, space)
                entry[key] = float(pred.latency_ms)
                if pred.notes:  # e.g. the classifier priced by scaling the table's row to the data's classes
                    entry[key.replace("_ms", "_notes")] = pred.notes
            except NasError as exc:
                entry[key] = None
                entry[key.replace("_ms", "_error")] = str(exc)
        out[device] = entry
    return out


def table_protocol(devices: list[str], threads: int) -> tuple[int, str]:
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


def measure_latency(target: Target, arch, space, paths: tuple[Path, Path], shape: tuple, cfg: ExportConfig
                    ) -> dict:
    """Time the fp32 and the quantized file (``paths``) on input ``shape`` and predict both from the target's
    tables: the card's latency section."""
    from nas.latency.measure.timing import measure_onnx, runtime_info

    threads, stat = table_protocol(target.devices, cfg.threads)
    measured = measure_onnx([(p, shape) for p in paths], threads=threads, rounds=cfg.rounds, warmup=cfg.warmup,
                            repeats=cfg.repeats, stat=stat, progress=cfg.progress)
    (fp_ms, fp_iqr), (q_ms, q_iqr) = measured.values
    return {"measured_ms": {"fp32": fp_ms, "quantized": q_ms},
            "measured_iqr_ms": {"fp32": fp_iqr, "quantized": q_iqr},
            "speedup": fp_ms / q_ms if q_ms > 0 else None,
            "predicted_ms": predicted_latency(target, arch, space, cfg.dtype),
            "conditions": {**runtime_info(threads), "batch": 1, "rounds": cfg.rounds, "repeats": cfg.repeats,
                           "warmup": cfg.warmup, "stat": stat, "reference_kernel_ms": measured.session_reference_ms,
                           "protocol": TIMING_PROTOCOL}}


# --------------------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------------------
def model_name(target: Target, cfg: ExportConfig) -> str:
    """The folder and summary name of ``target`` exported at ``cfg.dtype``: ``<target>-<deployment>`` (one
    architecture deployed as ``arch`` and as ``int8`` are two models)."""
    return f"{target.name}-{cfg.dtype}"


def partial_folder(out_dir: Path, name: str) -> Path:
    """Where a model's files are made (and its training checkpoints kept, so a stopped export resumes) until
    they replace ``out_dir/name`` as a set."""
    return out_dir / f"{name}.partial"


def check_same_model(folder: Path, card: dict) -> None:
    """A folder that already holds an export must hold this model's (space, architecture and deployment): a
    re-export replaces it, another model's export is never overwritten."""
    path = folder / CARD_NAME
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
        same = all(old[k] == card[k] for k in ("space", "arch", "deployment"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NasError(f"cannot read the card of the export already there ({exc})", where=str(path),
                       fix="move that folder away, or export into another folder") from None
    if not same:
        raise NasError(f"the folder holds the export of another model ({old['space']} {old['arch']}, deployed as "
                       f"{old['deployment']})", where=str(folder),
                       fix="export into another folder (out_dir), or move that one away")


def export_one(target: Target, out_dir: Path, cfg: ExportConfig, trained: TrainedModels | None = None) -> dict:
    """Export one target into ``out_dir/<model_name>``; returns its card (also written as card.json).

    The files are made in ``<model_name>.partial`` and replace the model's folder as one set once the card is
    written, so a failed or interrupted re-export leaves the previous model, its quantized file and card whole.
    ``trained``: weights already trained in this export (see :func:`train_model`); None trains afresh.
    """
    from nas.data.datasets import for_space, space_for_data
    from nas.latency.signatures import check_dtype, deploy
    from nas.layers import plan
    from nas.nn.build import build_model

    check_dtype(cfg.dtype)
    space = space_for_data(target.load_space(), cfg.data)  # a user's data: a classifier of its classes
    arch = space.parse(target.arch)
    specs = [deploy(s, cfg.dtype) for s in plan(arch, space)]
    name = model_name(target, cfg)
    check_same_model(out_dir / name, {"space": space.name, "arch": space.format(arch), "deployment": cfg.dtype})
    train_data, test_data = (for_space(space, cfg.data, split=split, resolution=arch.resolution, seed=cfg.seed)
                             for split in ("train", "test"))
    folder = partial_folder(out_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (FP32_NAME, QUANT_NAME, CARD_NAME, ERROR_NAME):  # an earlier attempt's; checkpoints stay
        (folder / stale).unlink(missing_ok=True)

    model = build_model(arch, space, seed=cfg.seed)
    training = train_model(model, train_data, cfg, key=training_key(space.name, float_text(arch), cfg),
                           trained={} if trained is None else trained, specs=specs, folder=folder)
    fp32_path, quant_path = folder / FP32_NAME, folder / QUANT_NAME
    x_check, _ = test_data.sample(8, seed=cfg.seed)
    onnx_check = export_checked(model, fp32_path, x_check)
    calib, _ = train_data.sample(cfg.calib_samples, seed=cfg.seed + 1)
    quantization = quantize_model(fp32_path, quant_path, specs, calib, cfg)
    accuracy = evaluate_both(model, quant_path, test_data, cfg)
    latency = measure_latency(target, arch, space, (fp32_path, quant_path), (1, *model.input_shape), cfg)
    card = build_card(dataclasses.replace(target, name=name), space, arch, specs, deployment=cfg.dtype,
                      folder=folder, sections={"training": training, "onnx_check": onnx_check,
                                               "quantization": quantization, "accuracy": accuracy, "latency": latency})
    write_card(folder, card)
    for ckpt in ("train.ckpt", "qat.ckpt"):  # the model is written: nothing left to resume
        (folder / ckpt).unlink(missing_ok=True)
    replace_folder(folder, out_dir / name)
    return card


def _progress(items, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not progress, leave=False)


# --------------------------------------------------------------------------------------------------------
# many models
# --------------------------------------------------------------------------------------------------------
def check_config(cfg: ExportConfig) -> None:
    """Fail before any work: a bad setting, or a dataset that is not installed."""
    from nas.data import datasets as datamod
    from nas.latency.signatures import check_dtype

    datamod.check_name(cfg.data)
    check_dtype(cfg.dtype)
    if cfg.epochs < 0:
        raise NasError(f"must be 0 or more, got {cfg.epochs}", argument="epochs")
    if cfg.qat_epochs < 0:
        raise NasError(f"must be 0 or more, got {cfg.qat_epochs}", argument="qat_epochs")
    if cfg.qat_epochs and not cfg.epochs:
        raise NasError("quantization-aware fine-tuning starts from a trained network", argument="qat_epochs",
                       fix="give epochs >= 1 as well (e.g. epochs=10, qat_epochs=2)")
    if not cfg.qat_lr > 0:
        raise NasError(f"must be positive, got {cfg.qat_lr}", argument="qat_lr")
    if cfg.qat_n_train is not None and cfg.qat_n_train < 0:
        raise NasError(f"must be 0 (the whole split) or more, got {cfg.qat_n_train}", argument="qat_n_train",
                       fix="or leave it None to fine-tune on as many images as float training saw")
    from nas.train.loop import resolve_device

    resolve_device(cfg.train_device)
    if cfg.calib_samples < 1:
        raise NasError(f"must be at least 1, got {cfg.calib_samples}", argument="calib_samples")
    if cfg.data == "noise":
        raise NasError("noise has no meaningful accuracy", argument="data",
                       fix="use fashion-mnist, digits, or your own images (a folder of class folders or an .npz)")
    datamod.load(cfg.data, split="train", resolution=8, channels=1,  # a missing dataset fails before any work
                 num_classes=datamod.num_classes_of(cfg.data) or 10)


def export(targets: list[Target], out_dir: str | Path, cfg: ExportConfig = ExportConfig(), *,
           trained: TrainedModels | None = None) -> list[dict]:
    """Export every target; summary.csv is rewritten after each one, this run's rows merged by model name into
    the earlier exports' (:func:`nas.deploy.card.write_summary`). Returns this run's rows.

    The same architecture and training recipe is trained once per call; pass one ``trained`` dict to several
    calls to share the trainings between them too (it is filled in place).
    """
    from tqdm import tqdm

    check_config(cfg)
    trained = {} if trained is None else trained
    out = Path(out_dir)
    earlier = read_summary(out / SUMMARY_NAME)  # before any work: an unreadable one is an error now
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    bar = tqdm(targets, desc="export", unit="model", disable=not cfg.progress)
    for target in bar:
        named = dataclasses.replace(target, name=model_name(target, cfg))
        bar.set_postfix_str(named.name)
        card, error = None, None
        try:
            card = export_one(target, out, cfg, trained)
        except NasError as exc:
            error = str(exc)
        except Exception as exc:  # one broken model must not lose the others
            error = f"{type(exc).__name__}: {exc}"
            folder = partial_folder(out, named.name)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / ERROR_NAME, traceback.format_exc())
        rows.append(summary_row(named, card, error))
        write_summary(out / SUMMARY_NAME, earlier, rows)
    bar.close()
    return rows
