"""Fake quantization of a built Network at each layer's ``wbits`` / ``abits`` (a depth-wise conv at the layer's
``dw_wbits`` / ``dw_abits``), for scoring.

What it simulates is what integer kernels (onnxruntime QLinearConv, see the guide) compute:

- **weights**: per-output-channel symmetric, ``2**(wbits-1) - 1`` levels each side, scale = max|w| of the
  channel (so a channel's largest weight is exact and small weights round to zero at 4 bits). Applied to
  every Conv2d / Linear inside a layer whose ``wbits < 32``. BatchNorm stays float (it folds on export).
- **activations**: per-tensor, on the *input* of every Conv2d / Linear inside a layer whose ``abits < 32``
  (the tensor an integer kernel consumes). Unsigned ``[0, max]`` when the tensor has no negative values
  (after ReLU / ReLU6), otherwise asymmetric ``[min, max]``; the range is the observed one of the current
  batch (dynamic calibration). Rounding uses a straight-through estimator so gradient proxies still work.

Which activations suffer at 8 bits: ReLU6 least (bounded, non-negative: 255 levels over [0, 6]); ReLU next
(non-negative, but one outlier stretches the range); h-swish and SiLU most: their small negative lobe
(min -0.375 and -0.278) forces an asymmetric range, so part of the 256 levels is spent on values that carry
little signal, and the curved region near zero is where most values lie. 4-bit weights cost far more than
8-bit activations for any activation.

Only torch is needed; this module is imported by the proxies, never by the CLI at start-up.
"""
from __future__ import annotations

import torch
from torch import nn

from nas.bits import FLOAT_BITS, symmetric_weights

def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel symmetric fake quantization (dimension 0 is the output channel): the weights
    :mod:`nas.nn.quantize` deploys (one rounding, :func:`nas.bits.symmetric_weights`)."""
    if bits >= FLOAT_BITS:
        return w
    levels, scale = symmetric_weights(w.detach().cpu().numpy(), bits, axis=0)
    shape = (-1,) + (1,) * (w.dim() - 1)
    return (torch.from_numpy(levels).float() * torch.from_numpy(scale).reshape(shape)).to(w.dtype)


def quantize_activation(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-tensor fake quantization over the observed range; straight-through gradient."""
    if bits >= FLOAT_BITS or x.numel() == 0:
        return x
    levels = 2 ** bits - 1
    with torch.no_grad():
        lo = torch.clamp(x.min(), max=0.0)  # the range always contains 0 (exact zero padding)
        hi = torch.clamp(x.max(), min=0.0)
        scale = ((hi - lo) / levels).clamp_min(1e-12)
        zero = torch.round(-lo / scale)
        q = (torch.clamp(torch.round(x / scale) + zero, 0, levels) - zero) * scale
    return x + (q - x).detach()


def _act_hook(bits: int):
    def hook(_module, inputs):
        return (quantize_activation(inputs[0], bits),) + tuple(inputs[1:])

    return hook



def apply(model, *, weights: bool = True, activations: bool = True) -> list:
    """Fake-quantize ``model`` (a ``nas.model.Network``) in place; returns the activation hook handles.

    Weights are rounded once (their data are replaced); activation quantizers are forward pre-hooks and stay
    until the handles are removed. A float network (all 32 bits) is left untouched.
    """
    handles = []
    for spec, layer in zip(model.specs, model.layers):
        for m in layer.modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                continue
            depthwise = isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
            wbits, abits = spec.role_bits(depthwise)
            if weights and wbits < FLOAT_BITS:
                with torch.no_grad():
                    m.weight.copy_(quantize_weight(m.weight, wbits))
            if activations and abits < FLOAT_BITS:
                handles.append(m.register_forward_pre_hook(_act_hook(abits)))
    return handles


def fake_quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """:func:`quantize_weight` in torch, differentiable (straight-through): the forward value is exactly the
    deployed weight (the same float32 division and round-half-to-even as :func:`nas.bits.symmetric_weights`),
    the gradient passes to the float weight. What quantization-aware training runs on."""
    qmax = 2 ** (bits - 1) - 1
    dims = tuple(range(1, w.dim()))
    with torch.no_grad():
        scale = (w.detach().abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / qmax).to(torch.float32)
        q = torch.clamp(torch.round(w.detach().float() / scale), -qmax, qmax) * scale
    return w + (q.to(w.dtype) - w).detach()


def _qat_forward(module, bits: int):
    """A forward that convolves (or multiplies) with the fake-quantized weight; the float weight stays the
    parameter, so the optimiser, weight decay and the state dict see it unchanged."""
    if isinstance(module, nn.Conv2d):
        return lambda x: module._conv_forward(x, fake_quantize_weight(module.weight, bits), module.bias)
    return lambda x: nn.functional.linear(x, fake_quantize_weight(module.weight, bits), module.bias)


class QuantAware:
    """Quantization-aware training of a ``nas`` Network at its own bits: while attached, every Conv2d / Linear of
    a layer below 32 bits computes with its fake-quantized weight (:func:`fake_quantize_weight`) and
    fake-quantized input activations, per role (a depth-wise conv at ``dw_wbits`` / ``dw_abits``), both
    straight-through. Detach to get the plain network back, its float weights trained to round well::

        with QuantAware(model):
            train(model, ...)
    """

    def __init__(self, model, specs=None):
        self.model = model
        self.specs = model.specs if specs is None else specs  # e.g. the plan at the deployment's bits
        self._patched: list = []
        self._hooks: list = []
        self.weight_layers = self.activation_layers = 0  # convs / linears with fake-quantized weights, inputs

    def attach(self) -> "QuantAware":
        for spec, layer in zip(self.specs, self.model.layers):
            for m in layer.modules():
                if not isinstance(m, (nn.Conv2d, nn.Linear)):
                    continue
                depthwise = isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
                wbits, abits = spec.role_bits(depthwise)
                if wbits < FLOAT_BITS:
                    m.forward = _qat_forward(m, wbits)
                    self._patched.append(m)
                if abits < FLOAT_BITS:
                    self._hooks.append(m.register_forward_pre_hook(_act_hook(abits)))
        self.weight_layers, self.activation_layers = len(self._patched), len(self._hooks)
        return self

    def detach(self) -> None:
        for m in self._patched:
            del m.forward  # back to the class's forward
        for h in self._hooks:
            h.remove()
        self._patched, self._hooks = [], []

    def __enter__(self) -> "QuantAware":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()


def output_sqnr(float_model, quant_model, x: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio (dB) of the logits; +inf when the two agree exactly."""
    with torch.no_grad():
        a = float_model(x).double()
        b = quant_model(x).double()
    noise = (a - b).pow(2).mean().item()
    signal = a.pow(2).mean().item()
    if noise == 0:
        return float("inf")
    return 10.0 * torch.log10(torch.tensor(signal / noise)).item()
