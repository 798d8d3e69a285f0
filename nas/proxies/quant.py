"""``qnaswot``: a quantization-aware accuracy score (naswot less what the network's bits cost).

naswot alone is blind to bit-widths: it reads only the sign pattern of the activations, which 4-bit weights
barely move (a 4-bit twin scores within +-0.03 of its float twin, with no consistent sign). ``qnaswot`` gives the
network trained-like weights (``laplace_init``: heavy-tailed, so a layer's rounding error grows with its fan-in,
as after training), runs one batch through it in float and through its fake-quantized copy (``nas.nn.fakequant``:
the rounding the deployed ONNX model computes with), and measures after every layer how large the quantization
noise has grown against the signal that tells the images apart (its power around the batch mean):

    qnaswot = naswot(float pass) - n * log(1 + m)

with m the mean over layers of those noise-to-signal ratios (each layer's ratio holds the noise of the layers
before it, so noise made early weighs on every layer it passes) and n the batch's images (16): naswot is log det K
of the n x n agreement kernel, and if quantization leaves each image's features 1 / (1 + m) of their signal,
log det (K / (1 + m)) = log det K - n log(1 + m). No constant is fitted. On a float architecture the penalty is 0
and the score is naswot on the trained-like weights (NAS-Bench-Macro dev, fashion-mnist: Spearman 0.894, naswot
0.890). The weights and the signal's centring were chosen on development ground truth (five trained networks;
``experiments/quant/quant_score_benchmark.py`` gives the figures and which units were held out).

Mean, not sum (2026-12-06): within one network the two order bit assignments identically, but the sum grows with
depth, so across networks it priced 8 bits like a large accuracy loss in deep networks: MobileNetV2-1.0 at w8a8
paid 18.8 (fashion-mnist batch; naswot's whole gap from x0.35 to x1.0 is 15) for an int8 deployment that costs
it 0.04 point when trained (``experiments/end_to_end``), and the search's front avoided deep 8-bit networks.
"""
from __future__ import annotations

import copy
import math

import torch

from nas.bits import FLOAT_BITS
from nas.nn import fakequant
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


def noise_ratios(model, x, reference: list[torch.Tensor] | None = None) -> list[float]:
    """Quantization noise over the images' signal after each layer: ``model`` (a built Network, at its specs'
    bits) run on batch ``x`` in float and as a fake-quantized copy, in the model's current BN mode. The signal is
    each output's power around the batch mean (what separates the images); ``reference`` reuses a float pass
    already made (``_layer_outputs(model, x)``)."""
    if reference is None:
        reference = _layer_outputs(model, x)
    quantized = copy.deepcopy(model)  # the same weights, fake-quantized (as Probe.model would)
    fakequant.apply(quantized)
    outputs = _layer_outputs(quantized.train(model.training), x)
    ratios = []
    for f, q in zip(reference, outputs):
        signal = float((f - f.mean(dim=0, keepdim=True)).pow(2).mean())
        ratios.append(float((f - q).pow(2).mean()) / signal if signal > 0 else 0.0)
    return ratios


def noise_profile(probe) -> tuple[float, list[float]]:
    """(naswot of the float pass, quantization noise over the images' signal after each layer).

    One batch (the naswot batch) through the trained-like float network and its fake-quantized copy, BN in
    train mode; the signal is each output's power around the batch mean (what separates the images). An
    all-float architecture has no noise (an empty list) and costs one pass, as naswot does."""

    def compute():
        x, _ = probe.batch(probe.n(16))
        model = probe.model(bn="train", quantize=False, init="laplace")
        with NaswotKernel(model, x.shape[0]) as kernel:
            reference = _layer_outputs(model, x)
        if is_float(probe.specs):
            return kernel.logdet(), []
        return kernel.logdet(), noise_ratios(model, x, reference)

    return probe.memo("quant-noise", compute)


def quantization_cost(ratios: list[float], n: int) -> float:
    """The score's penalty, in naswot's units, for a noise profile measured on ``n`` images (0 when float): the
    mean noise over the layers, so a deeper network with the same noise at each layer pays the same."""
    return n * math.log1p(sum(ratios) / len(ratios)) if ratios else 0.0


@register_proxy("qnaswot", input="batch", batch_size=16, bn="train", version=2,
                changed="its penalty now takes the mean of the per-layer noise ratios, not their sum "
                        "(the sum grew with depth and priced deep 8-bit networks as a large accuracy loss; nas 3ceca80)")
def qnaswot(probe) -> float:
    """Quantization-aware naswot: naswot - n log(1 + mean noise/signal over the layers), trained-like weights.

    One real batch (16) through the network with Laplace-drawn weights (``laplace_init``) in float and through
    its fake-quantized copy (``nas.nn.fakequant``, the deployed rounding), BN in train mode; the penalty is 0 for
    float architectures and grows the more, and the more sensitive, layers are quantized. About 2x naswot's time.
    """
    logdet, ratios = noise_profile(probe)
    return logdet - quantization_cost(ratios, probe.n(16))
