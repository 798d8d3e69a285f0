"""Quantization-aware fine-tuning: a trained network fine-tuned with fake quantization at the bits it deploys at.

    from nas.train.qat import quantization_aware
    record = quantization_aware(model, train_data, specs, epochs=2, lr=0.01, seed=0, n_train=5000)

The weights are rounded exactly as the quantizer will round them, per role (:class:`nas.nn.fakequant.QuantAware`),
and trained with the loop of :mod:`nas.train.loop` (its recipe, at its own peak learning rate); BatchNorm
statistics are then recomputed on the quantized forward pass (:mod:`nas.train.batchnorm`)."""
from __future__ import annotations

from pathlib import Path

from nas.nn.fakequant import QuantAware
from nas.train import loop
from nas.train.batchnorm import recalibrate_bn_checked


def quantization_aware(model, data, specs, *, epochs: int, lr: float = 0.01, seed: int = 0,
                       n_train: int | None = 5000, bn_samples: int = 512, device: str = "cpu",
                       progress: bool = False, checkpoint: str | Path | None = None) -> dict:
    """Fine-tune ``model`` (trained in float) in place ``epochs`` on ``data`` (an ImageData of the train split)
    with fake quantization at ``specs``' bits (the layer specs it deploys at), then recompute its BatchNorm
    statistics on ``bn_samples`` images (0: off), kept only where they do not lower the validation accuracy.

    ``seed`` is the network's (its float training's): the fine-tuning draws its order, augmentation and BN
    images with ``seed + 1``, so it does not replay the float run. ``lr`` is the peak of the loop's schedule (a
    tenth of float training's); ``n_train`` the training examples per epoch (None: the whole split); ``device``
    cpu, cuda or auto. ``checkpoint``: a file written after every epoch, resumed only by a run at the same bits.
    Returns the record of the fine-tuning (a card's ``training.qat``); a network that deploys wholly in float
    has nothing to fine-tune and is left as it is."""
    with QuantAware(model, specs) as qat:
        if not qat.weight_layers and not qat.activation_layers:
            return {"epochs": 0, "skipped": "every layer deploys in float: nothing to fine-tune"}
        # the bits are not in the tensors' shapes or the recipe: a checkpoint at other bits must not resume
        bits = [list(s.role_bits(False)) + list(s.role_bits(True)) for s in qat.specs]
        result = loop.train(model, epochs=epochs, data=data, seed=seed + 1, n_train=n_train, lr=lr,
                            progress=progress, device=device, checkpoint=checkpoint, identity={"qat_bits": bits})
        bn = (recalibrate_bn_checked(model, data, bn_samples, seed=seed + 1, result=result)
              if bn_samples > 0 else None)
    return {"epochs": epochs, "lr": lr, "bn_recalibration": bn,
            "fake_quantized": {"weights": qat.weight_layers, "inputs": qat.activation_layers},
            "val_accuracy_fake_quant": result["accuracy"], "loss": result["loss"], "steps": result["steps"],
            "n_train": result["n_train"], "seconds": round(result["seconds"], 2),
            "resumed_from_epoch": result["resumed_from_epoch"]}
