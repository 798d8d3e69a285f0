"""``qnaswot``: a quantization-aware accuracy score (naswot of the float network, less what its bits cost).

naswot alone is blind to bit-widths: it reads only the sign pattern of the activations, which 4-bit weights
barely move (a 4-bit twin scores within +-0.03 of its float twin, with no consistent sign). ``qnaswot`` runs the
same batch through the float network and through its fake-quantized copy (``nas.nn.fakequant``: the weights
and activations the deployed ONNX model computes with) and measures, after every layer, how much of the
signal the quantization noise has become. That noise is what costs accuracy, so

    qnaswot = naswot(float network) - n * log(1 + m)

with m the noise-to-signal power ratio averaged over the layers and n the batch's images (16): naswot is
log det K of the n x n agreement kernel, and if quantization leaves each image's features only 1 / (1 + m) of
their signal, log det (K / (1 + m)) = log det K - n log(1 + m). No constant is fitted. It is exactly naswot for a
float architecture and lower the more (and the more sensitive) of its layers are quantized. How well the
predicted drop follows what our quantizer deploys: ``experiments/quant_score_benchmark.py``.
"""
from __future__ import annotations

import math

import torch

from nas.bits import FLOAT_BITS
from nas.proxies.registry import register_proxy
from nas.proxies.zero_cost import NaswotKernel


def is_float(specs) -> bool:
    """Whether every layer of the plan runs at 32 bits (nothing to fake-quantize)."""
    return all(b == FLOAT_BITS for s in specs for b in (s.wbits, s.abits, s.dw_wbits, s.dw_abits))


def _layer_outputs(model, x) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, o: out.append(o.detach().double())) for layer in model.layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def noise_profile(probe) -> tuple[float, list[float]]:
    """(naswot of the float network, noise-to-signal power ratio after each layer of the fake-quantized one).

    One batch (the naswot batch), BN in train mode for both passes; an all-float architecture has no noise
    (an empty list) and costs one pass, as naswot does."""

    def compute():
        x, _ = probe.batch(probe.n(16))
        model = probe.model(bn="train", quantize=False)
        with NaswotKernel(model, x.shape[0]) as kernel:
            reference = _layer_outputs(model, x)
        if is_float(probe.specs):
            return kernel.logdet(), []
        quantized = _layer_outputs(probe.model(bn="train"), x)
        ratios = []
        for f, q in zip(reference, quantized):
            signal = float(f.pow(2).mean())
            ratios.append(float((f - q).pow(2).mean()) / signal if signal > 0 else 0.0)
        return kernel.logdet(), ratios

    return probe.memo("quant-noise", compute)


def quantization_cost(ratios: list[float], n: int) -> float:
    """The score's penalty, in naswot's units, for a noise profile measured on ``n`` images (0 when float)."""
    if not ratios:
        return 0.0
    return n * math.log1p(sum(ratios) / len(ratios))


@register_proxy("qnaswot", input="batch", batch_size=16, bn="train")
def qnaswot(probe) -> float:
    """Quantization-aware naswot: float naswot - n log(1 + mean noise/signal after each quantized-pass layer).

    One real batch (16) through the float network and through its fake-quantized copy (``nas.nn.fakequant``,
    the deployed weights' rounding), BN in train mode; m = the noise-to-signal power ratio after each layer,
    averaged; equal to naswot for float architectures, lower the more the bits cost. About 2x naswot's time.
    """
    logdet, ratios = noise_profile(probe)
    return logdet - quantization_cost(ratios, probe.n(16))
