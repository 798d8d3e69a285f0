"""The training loop (CPU, or CUDA when asked): the ``train:E`` proxy, and what ``nas export`` trains a chosen
network with (then :mod:`nas.train.batchnorm` and :mod:`nas.train.qat`).

    from nas.train.loop import train, evaluate
    result = train(model, epochs=3, data="fashion-mnist", n_train=5000, seed=0)
    result["accuracy"]        # validation accuracy in [0, 1]

Recipe: SGD (momentum 0.9, Nesterov), weight decay 5e-4 on conv/linear weights only, batch 128, peak
learning rate 0.1 with a linear warm-up over the first 3% of steps and a cosine decay to 0 (per step),
label smoothing 0.1; channels-last memory format (1.8x the images/s of the default layout for a
mobilenet-c10 network on one CPU thread, measured). Augmentation: random crop with zero padding of 1/8 of the side (4 px at 32) and, for
Fashion-MNIST only, horizontal flips (digits are not mirror-symmetric; noise has nothing to augment).
Validation is a held-out part of the *train* split (fixed, seeded), so the test split stays untouched for
a final ``evaluate(model, data, split="test")``. Same seed, same result (single process, CPU).

``accuracy(predict, data, indices, batch_size)`` is the one accuracy loop: ``evaluate`` passes the model, ``nas
export`` also an onnxruntime session wrapped as a function of a torch batch (``nas.deploy.pipeline.ort_predictor``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from nas.data import datasets as datamod
from nas.errors import NasError, first_line
from nas.fileio import atomic_write


def split_indices(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of a split of size ``n``: a seeded permutation, the last ``n_val`` held out."""
    order = np.random.default_rng(seed + 7919).permutation(n)
    return order[: n - n_val], order[n - n_val:]


def _augment(x: torch.Tensor, flip: bool, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n x w
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        mask = torch.rand(n, generator=g) < 0.5
        out[mask] = out[mask].flip(-1)
    return out


def _image_data(model, data, split: str, seed: int):
    if isinstance(data, datamod.ImageData):
        return data
    c, h, _ = model.input_shape
    return datamod.load(data, split=split, resolution=h, channels=c, num_classes=model.specs[-1].cout, seed=seed)


def accuracy(predict, data, indices=None, batch_size: int = 256, *, progress: bool = False,
             desc: str = "evaluate") -> float:
    """Top-1 accuracy of ``predict`` on ``data`` (an ImageData), the one accuracy loop of the package.

    ``predict`` maps an input batch (a torch tensor, N x C x H x W) to logits (N x classes) or predicted labels
    (N), as a torch tensor or a numpy array: a model in eval mode, or an onnxruntime session wrapped by the
    caller. ``indices`` (default: the whole split) are taken in batches of ``batch_size``.
    """
    idx = np.arange(len(data)) if indices is None else np.asarray(indices)
    correct = 0
    starts = range(0, len(idx), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    for start in starts:
        x, y = data.batch(idx[start:start + batch_size])
        with torch.no_grad():  # a torch model would otherwise keep every activation for a backward pass
            out = torch.as_tensor(predict(x))
        pred = out.argmax(1) if out.ndim == 2 else out
        correct += int((pred == y).sum())
    return correct / max(1, len(idx))


@torch.no_grad()
def evaluate(model: nn.Module, data="fashion-mnist", *, split: str = "test", indices=None, batch_size: int = 256,
             seed: int = 0) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on a split (or the given indices of it)."""
    d = _image_data(model, data, split, seed)
    model.eval()
    return accuracy(model, d, indices, batch_size)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """SGD parameter groups: weight decay on conv/linear weights only (not on BN affine pairs or biases)."""
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            (decay if name == "weight" and isinstance(m, (nn.Conv2d, nn.Linear)) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}]


def lr_schedule(lr: float, total: int):
    """Per-step learning rate: linear warm-up over the first 3% of ``total`` steps, then cosine decay to 0."""
    warm = max(1, int(0.03 * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return 0.5 * lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return lr_at


def train_epoch(model: nn.Module, d, order: np.ndarray, opt, lr_at, step: int, *, batch_size: int,
                label_smoothing: float, augment: bool, flip: bool, g: torch.Generator, bar=None,
                channels_last: bool = False, device: torch.device | None = None, start: int = 0,
                loss_sum: float = 0.0, seen: int = 0, after_batch=None) -> tuple[int, float, int]:
    """One pass over ``order`` (indices of ``d``) from global step ``step``; stops early at a non-finite loss.
    ``start`` (images of ``order`` already done), ``loss_sum`` and ``seen`` resume an epoch part-way;
    ``after_batch(images done, step, loss_sum, seen)`` runs after every batch (the mid-epoch checkpoint).
    Returns (step after the epoch, summed loss, examples seen)."""
    model.train()
    for start in range(start, len(order), batch_size):
        x, y = d.batch(order[start:start + batch_size])
        if augment and d.x is not None:
            x = _augment(x, flip, g)
        if device is not None and device.type != "cpu":
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
        if bar is not None:
            bar.update(len(y))  # images: tqdm shows images/s and the ETA
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
        if not math.isfinite(float(loss.detach())):
            break
        if after_batch is not None:
            after_batch(start + len(y), step, loss_sum, seen)
    return step, loss_sum, seen


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when this machine has it, else CPU), ``cpu`` or ``cuda``; CUDA asked for but absent fails."""
    if device not in ("auto", "cpu", "cuda"):
        raise NasError(f"unknown training device '{device}'", argument="train_device", fix="use auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise NasError("CUDA was asked for but torch sees no GPU", argument="train_device",
                       fix="use cpu (or auto), or install a CUDA build of torch on a GPU machine")
    return torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")


def _fingerprint(model: nn.Module, recipe: dict) -> dict:
    """What a checkpoint must match to be resumed: the network's tensors (names and shapes) and the recipe."""
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    return {"tensors": shapes, **recipe}


def train(model: nn.Module, *, epochs: int, data="fashion-mnist", seed: int = 0,
          n_train: int | None = 5000, n_val: int = 2000, batch_size: int = 128, lr: float = 0.1,
          weight_decay: float = 5e-4, label_smoothing: float = 0.1, augment: bool = True,
          progress: bool = False, channels_last: bool = True, device: str = "cpu",
          checkpoint: str | Path | None = None, checkpoint_seconds: float = 300.0,
          identity: dict | None = None) -> dict:
    """Train ``model`` in place for ``epochs`` on ``data`` (name or ImageData of the train split).

    ``n_train`` caps the training examples (None: the whole split minus validation); ``n_val`` examples of the
    train split are held out for validation. Returns accuracy (validation, 0..1), final train loss, epochs,
    steps, seconds, n_train, n_val, device and the epoch it resumed from. ``seconds`` is the time of every
    finished epoch summed over the runs a checkpoint resumed (``seconds_before_resume``: the earlier runs'; None
    for a checkpoint written before 2026-12-06, which did not keep it: ``seconds`` is then this run's alone).
    ``channels_last`` trains in that memory format (the model is returned in the default one, on the CPU).
    ``device``: cpu, cuda or auto.
    ``checkpoint``: a file written after every epoch and, within an epoch, after the first batch that ends
    ``checkpoint_seconds`` after the last write (model, optimiser and random states, the epoch's order and
    position); a later call with the same network and recipe resumes where it was written, to the same weights
    as an uninterrupted run (on the same device), so a run stopped by Ctrl-C or a kill loses at most about
    ``checkpoint_seconds`` of training, whatever an epoch costs. ``identity``: whatever else decides
    the weights that the network's tensors and the recipe do not show (QAT: the bits it fake-quantizes at), part
    of the checkpoint's fingerprint.
    """
    if epochs < 1:
        raise NasError(f"epochs must be at least 1, got {epochs}", argument="epochs")
    dev = resolve_device(device)
    d = _image_data(model, data, "train", seed)
    n_val = min(n_val, len(d) // 5)
    tr_idx, val_idx = split_indices(len(d), n_val, seed)
    if n_train is not None:
        tr_idx = tr_idx[:n_train]
    flip = augment and d.name == "fashion-mnist"
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(dev)
    opt = torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True)
    total = epochs * max(1, math.ceil(len(tr_idx) / batch_size))
    lr_at = lr_schedule(lr, total)
    recipe = {"epochs": epochs, "data": d.name, "n": len(d), "seed": seed, "n_train": len(tr_idx), "n_val": n_val,
              "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
              "augment": augment, "device": dev.type, **({"identity": identity} if identity else {})}
    fingerprint = _fingerprint(model, recipe)

    t0 = time.perf_counter()
    state = _load_checkpoint(checkpoint, fingerprint)
    step, loss_sum, seen, first, before = _resume(state, model, opt, rng, g)
    order, pos = _epoch_position(state)
    earlier = before or 0.0  # seconds of the runs this one resumes
    bar = _progress_bar(epochs * len(tr_idx), first * len(tr_idx) + pos, dev) if progress else None
    saver = _Checkpointer(checkpoint, checkpoint_seconds, fingerprint, (model, opt, rng, g), earlier, t0)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if state is not None:
                torch.set_rng_state(state["torch_rng"])
            for epoch in range(first, epochs):
                if order is None:
                    order, loss_sum, seen = rng.permutation(tr_idx), 0.0, 0
                step, loss_sum, seen = train_epoch(model, d, order, opt, lr_at, step, batch_size=batch_size,
                                                   label_smoothing=label_smoothing, augment=augment, flip=flip,
                                                   g=g, bar=bar, channels_last=channels_last, device=dev,
                                                   start=pos, loss_sum=loss_sum, seen=seen,
                                                   after_batch=saver.within(epoch, order))
                order, pos = None, 0
                saver.write(epoch + 1, 0, None, step, loss_sum, seen)
    finally:
        model.to(memory_format=torch.contiguous_format)
        model.to("cpu")
    if bar is not None:
        bar.close()
    acc = evaluate(model, d, indices=val_idx)
    loss = loss_sum / max(1, seen)
    return {"accuracy": acc if math.isfinite(loss) else math.nan, "loss": loss, "epochs": epochs, "steps": step,
            "seconds": earlier + time.perf_counter() - t0, "seconds_before_resume": before,
            "n_train": len(tr_idx), "n_val": len(val_idx), "device": dev.type, "resumed_from_epoch": first}


def _resume(state: dict | None, model, opt, rng, g) -> tuple:
    """Put a checkpoint's model, optimiser and random states back; (step, loss sum, images seen, epochs done,
    seconds of the earlier runs: None for a checkpoint written before they were kept), zeros without one."""
    if state is None:
        return 0, 0.0, 0, 0, 0.0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    rng.bit_generator.state = state["numpy_rng"]
    g.set_state(state["augment_rng"])
    return state["step"], state["loss_sum"], state["seen"], state["epoch"], state.get("seconds")


def _progress_bar(total: int, initial: int, dev: torch.device):
    """Images trained out of ``total``: tqdm shows images/s and the ETA."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"training ({dev.type})", unit="img", unit_scale=True,
                leave=False)


class _Checkpointer:
    """Writes :func:`train`'s checkpoint after every epoch and, within one, after the first batch that ends
    ``every`` seconds after the last write; nothing without a path. ``states``: the model, optimiser, numpy
    generator (epoch orders) and torch generator (augmentation) whose states resume the run."""

    def __init__(self, path, every: float, fingerprint: dict, states: tuple, earlier: float, t0: float):
        self.path, self.every, self.fingerprint, self.states = path, every, fingerprint, states
        self.earlier, self.t0, self.last = earlier, t0, time.perf_counter()

    def write(self, epoch_done: int, pos: int, order, step: int, loss_sum: float, seen: int) -> None:
        """``epoch_done`` finished epochs and ``pos`` images of the next one, taken in ``order``."""
        if self.path is None:
            return
        model, opt, rng, g = self.states
        _save_checkpoint(self.path, {
            "fingerprint": self.fingerprint, "epoch": epoch_done, "pos": pos,
            "order": torch.from_numpy(order) if pos else None, "step": step, "loss_sum": loss_sum,
            "seen": seen, "seconds": self.earlier + time.perf_counter() - self.t0,
            "model": model.state_dict(), "opt": opt.state_dict(), "numpy_rng": rng.bit_generator.state,
            "augment_rng": g.get_state(), "torch_rng": torch.get_rng_state()})
        self.last = time.perf_counter()

    def within(self, epoch: int, order: np.ndarray):
        """The ``after_batch`` of :func:`train_epoch` for ``epoch`` (None without a path)."""
        if self.path is None:
            return None

        def after_batch(done: int, step: int, loss_sum: float, seen: int) -> None:
            if done < len(order) and time.perf_counter() - self.last >= self.every:
                self.write(epoch, done, order, step, loss_sum, seen)
        return after_batch


def _epoch_position(state: dict | None) -> tuple[np.ndarray | None, int]:
    """The order and images done of the epoch a mid-epoch checkpoint stopped in; (None, 0) at an epoch's end
    (and for a checkpoint written before mid-epoch ones existed, 2026-12-06)."""
    if state is None or not state.get("pos"):
        return None, 0
    return state["order"].numpy(), int(state["pos"])


def _load_checkpoint(path, fingerprint: dict) -> dict | None:
    """The checkpoint at ``path`` if it was written by this network and recipe (another one is ignored and will
    be overwritten); None if there is none.

    Loaded with ``weights_only=True``: tensors and plain values only, so a planted or downloaded ``train.ckpt``
    cannot run code. A file that cannot be read or is not such a checkpoint is an error naming it, never a
    silent restart (our own writes are atomic, so a half-written checkpoint does not happen)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise NasError(f"cannot read the training checkpoint: {first_line(exc)}", where=str(path),
                       fix="fix the file's permissions, or delete it to train from the start") from None
    except Exception as exc:  # noqa: BLE001 (torch raises UnpicklingError, RuntimeError, ... for foreign files)
        raise NasError(f"not a training checkpoint that can be loaded safely ({type(exc).__name__}: "
                       f"{first_line(exc)[:200]})", where=str(path),
                       fix="delete it to train from the start; checkpoints hold tensors and plain values only") \
            from None
    if not isinstance(state, dict):
        raise NasError(f"not a training checkpoint (holds a {type(state).__name__})", where=str(path),
                       fix="delete it to train from the start")
    return state if state.get("fingerprint") == fingerprint else None


def _save_checkpoint(path, state: dict) -> None:
    """Atomic and synced: a Ctrl-C or power cut mid-save leaves the previous epoch's checkpoint."""
    atomic_write(path, lambda f: torch.save(state, f))
