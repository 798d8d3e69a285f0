"""``qnaswot``: a quantization-aware accuracy score (naswot of the float network, less what its bits cost).

naswot alone is blind to bit-widths: it reads only the sign pattern of the activations, which 4-bit weights
barely move (a 4-bit twin scores within +-0.03 of its float twin, with no consistent sign). ``qnaswot`` runs the
same batch through the float network and through its fake-quantized copy (``nas.nn.fakequant``: the weights
and activations the deployed ONNX model computes with) and measures, after every layer, how much of the
signal the quantization noise has become. That noise is what costs accuracy, so

    qnaswot = naswot(float network) - PENALTY * log1p(NOISE_GAIN * mean over layers of noise / signal)

which is exactly naswot for a float architecture, and lower the more (and the more sensitive) of its layers
are quantized. The calibration (``PENALTY``, ``NOISE_GAIN``) and the measured agreement with deployed accuracy
are in ``experiments/quant_score_benchmark.py`` and its results file.
"""
from __future__ import annotations

import math

import torch

from nas.bits import FLOAT_BITS
from nas.proxies.registry import register_proxy
from nas.proxies.zero_cost import NaswotKernel

PENALTY = 1.0
NOISE_GAIN = 1.0


def is_float(specs) -> bool:
    """Whether every layer of the plan runs at 32 bits (nothing to fake-quantize)."""
    return all(max(s.wbits, s.abits, s.dw_wbits, s.dw_abits) == min(s.wbits, s.abits, s.dw_wbits, s.dw_abits)
               == FLOAT_BITS for s in specs)


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


def quantization_cost(ratios: list[float]) -> float:
    """The score's penalty for a noise profile (0 for a float network)."""
    if not ratios:
        return 0.0
    return PENALTY * math.log1p(NOISE_GAIN * sum(ratios) / len(ratios))


@register_proxy("qnaswot", input="batch", batch_size=16, bn="train")
def qnaswot(probe) -> float:
    """Quantization-aware naswot: naswot of the float network minus a penalty for the quantization noise its
    bits put in every layer's output (float pass vs fake-quantized pass on one real batch of 16, BN in train
    mode); equal to naswot for float architectures. About 1.5x naswot's cost for a quantized network."""
    logdet, ratios = noise_profile(probe)
    return logdet - quantization_cost(ratios)
