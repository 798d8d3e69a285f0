"""Bit-widths: what a layer may choose, how each (weights, activations) pair is named and deployed, and the one
symmetric per-channel weight rounding that both fake quantization (scoring) and the ONNX quantizer (deployment)
use, so the score sees exactly the weights that ship.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nas.errors import NasError

FLOAT_BITS = 32
# 6-bit weights and 4/6-bit activations are deployed in 8-bit containers holding 6 / 4 bits of levels (onnxruntime
# has no 6-bit type and runs 4-bit activations unfused); 4-bit weights as QInt4 (see nas.nn.quantize)
WEIGHT_BITS = (4, 6, 8, 16, 32)
ACT_BITS = (4, 6, 8, 16, 32)
# deployment precisions that put every layer at one pair of bit-widths (``arch`` keeps each layer's own)
PRECISION_BITS = {"fp32": (FLOAT_BITS, FLOAT_BITS), "int8": (8, 8)}


@dataclass(frozen=True)
class Bits:
    """A layer's (weight bits, activation bits); 32 = float."""

    wbits: int
    abits: int

    @property
    def label(self) -> str:
        """'fp32', 'int8' or 'w<W>a<A>'."""
        return "fp32" if self.is_float else ("int8" if (self.wbits, self.abits) == (8, 8) else
                                              f"w{self.wbits}a{self.abits}")

    @property
    def is_float(self) -> bool:
        return self.wbits == FLOAT_BITS and self.abits == FLOAT_BITS


def check_bits(wbits: int, abits: int, where: str = "bit-widths") -> Bits:
    if wbits not in WEIGHT_BITS or abits not in ACT_BITS:
        raise NasError(f"w{wbits}a{abits} cannot be deployed", where=where,
                       fix=f"weights {'/'.join(map(str, WEIGHT_BITS))}, activations {'/'.join(map(str, ACT_BITS))} bits")
    return Bits(wbits, abits)


def parse_label(label: str) -> Bits:
    """'fp32', 'int8' or 'w<W>a<A>' -> Bits."""
    if label in PRECISION_BITS:
        return Bits(*PRECISION_BITS[label])
    m = re.fullmatch(r"w(\d+)a(\d+)", label)
    if not m:
        raise NasError(f"unknown precision '{label}'", where="precision", fix="use fp32, int8 or w<W>a<A>")
    return check_bits(int(m.group(1)), int(m.group(2)))


def symmetric_weights(w, bits: int, axis: int = 0):
    """Per-channel symmetric rounding: (integer levels in ``[-qmax, qmax]``, scale per channel along ``axis``).

    ``qmax = 2**(bits-1) - 1`` and scale = max|w| of the channel / qmax, so a channel's largest weight is exact
    and small weights round to zero at 4 bits. ``levels * scale`` (broadcast along ``axis``) is the deployed weight.
    (numpy is imported here, not at module level: the space schema imports this module at CLI start-up.)
    """
    import numpy as np

    w = np.asarray(w, dtype=np.float32)
    qmax = 2 ** (bits - 1) - 1
    red = tuple(d for d in range(w.ndim) if d != axis)
    scale = (np.maximum(np.abs(w).max(axis=red), 1e-12) / qmax).astype(np.float32)
    levels = np.clip(np.round(w / np.expand_dims(scale, red)), -qmax, qmax).astype(np.int32)
    return levels, scale
