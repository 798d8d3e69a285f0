"""BatchNorm statistics recomputed after training: :func:`recalibrate_bn`, and :func:`recalibrate_bn_checked`,
which keeps them only where they do not lower the validation accuracy of the run that just trained the network.

BN folds into the convs on export, so its running statistics *are* deployed weights."""
from __future__ import annotations

import numpy as np
import torch

from nas.train.loop import evaluate, split_indices


def recalibrate_bn(model, data, n: int, *, seed: int = 0, batch: int = 128) -> None:
    """Recompute every BatchNorm's running mean/variance as a plain average over ``n`` training images.

    After a short run at a high learning rate the exponential averages lag the final weights (a few-epoch
    mobilenet-c10 member then scores near chance in eval mode although it trains); recomputing them on the final
    weights fixes that.
    """
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


def recalibrate_bn_checked(model, data, n: int, *, seed: int, result: dict) -> dict:
    """:func:`recalibrate_bn` on ``model`` just trained by :func:`nas.train.loop.train` (its ``result``, with the
    same ``seed`` and ``data``), kept only if it does not lower the accuracy on that run's validation split.

    Recomputed statistics repair the lagging averages of a short high-rate run, but they can also break a
    network that works with its training-time statistics: a trained relu6 mobilenet-c10 (quant_truth's
    arch2-relu6) went from 82 % validation accuracy to 54-74 % test accuracy with 512-10,000 recomputed images.
    Both are measured on the validation images and the better statistics kept; the record says which."""
    before = {k: v.clone() for k, v in model.state_dict().items()
              if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    recalibrate_bn(model, data, n, seed=seed)
    val_idx = split_indices(len(data), result["n_val"], seed)[1]
    after = evaluate(model, data, indices=val_idx)
    kept = not after < result["accuracy"]  # a NaN training accuracy keeps the recomputed statistics
    if not kept:
        model.load_state_dict(before, strict=False)
    return {"samples": n, "val_accuracy": after, "val_accuracy_training_stats": result["accuracy"], "kept": kept}
