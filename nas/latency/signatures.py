"""Which layer signatures a space (or a set of architectures) needs, and deployment dtypes.

``space_signatures`` enumerates every LayerSpec any architecture of a space can contain, without listing
architectures: it walks the stages keeping the set of reachable input shapes, building layers with the same
``fixed_layer_spec`` / ``block_spec`` that ``nas.layers.plan`` uses (a test also checks it against plan).

A *deployment dtype* says at which bit-widths the layers run: ``arch`` (as each block says; the default),
``fp32`` (everything float: how an fp32 ONNX export runs, whatever bits the architecture chose) or ``int8``
(everything W8A8: onnxruntime static QDQ quantization). The signature's bit fields (``wbits``, ``abits``, ``dw_wbits``,
``dw_abits``) are always the bit-widths the layer was *measured* at.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from nas.space.arch import Architecture
from nas.errors import NasError
from nas.layers import LayerSpec, block_spec, boundary_spec, fixed_layer_spec, input_bits, output_bits, plan
from nas.space import SearchSpace

DTYPES = ("arch", "fp32", "int8")
_DTYPE_BITS = {"fp32": (32, 32), "int8": (8, 8)}


def check_dtype(dtype: str | None, *, argument: str = "dtype") -> str:
    """``dtype`` (None = ``arch``) checked against :data:`DTYPES`; ``argument``: the API argument it came in."""
    dtype = dtype or "arch"
    if dtype not in DTYPES:
        raise NasError(f"unknown dtype '{dtype}'", argument=argument, fix=f"use one of {', '.join(DTYPES)}")
    return dtype


def deploy(spec: LayerSpec, dtype: str | None) -> LayerSpec:
    """The layer as it runs under a deployment dtype (bit-widths rewritten for fp32 / int8)."""
    if not dtype or dtype == "arch":
        return spec
    w, a = _DTYPE_BITS[dtype]
    if (spec.wbits, spec.abits, spec.dw_wbits, spec.dw_abits) == (w, a, w, a):
        return spec
    return replace(spec, wbits=w, abits=a, dw_wbits=w, dw_abits=a)


def deploy_signature(sig: tuple, dtype: str | None) -> tuple:
    """Fast form of :func:`deploy` on signature tuples (the four bit fields are the last ones)."""
    if not dtype or dtype == "arch":
        return sig
    return sig[:-4] + _DTYPE_BITS[dtype] * 2


def arch_layers(archs: Iterable[Architecture], space: SearchSpace, dtype: str | None) -> dict[tuple, LayerSpec]:
    """Signature -> LayerSpec for every layer of the given architectures (first occurrence kept)."""
    out: dict[tuple, LayerSpec] = {}
    for arch in archs:
        for spec in plan(arch, space):
            spec = deploy(spec, dtype)
            out.setdefault(spec.signature, spec)
    return out


def space_signatures(space: SearchSpace, dtype: str | None = None,
                     resolutions: Iterable[int] | None = None) -> dict[tuple, LayerSpec]:
    """Signature -> LayerSpec for every layer any architecture of ``space`` (at ``resolutions``) can contain."""
    out: dict[tuple, LayerSpec] = {}

    def add(spec: LayerSpec) -> LayerSpec:
        spec = deploy(spec, dtype)
        out.setdefault(spec.signature, spec)
        return spec

    for r in (space.resolutions if resolutions is None else resolutions):
        state = {(r, r, space.in_channels)}
        for i, layer in enumerate(space.stem):
            state = {_fixed_out(add(fixed_layer_spec(f"stem.{i}", layer, *s))) for s in state}
        for i, st in enumerate(space.stages):
            nxt = set()
            for (h, w, c) in state:
                for width in st.widths:
                    for block in st.block_space(0).blocks():
                        spec = add(block_spec(space, f"stage{i}.block0", h, w, c, width, st.stride, block))
                        nxt.add((*spec.out_hw, width))
            if max(st.depths) > 1:
                for (h, w, c) in set(nxt):
                    for block in st.block_space(1).blocks():
                        add(block_spec(space, f"stage{i}.block1", h, w, c, c, 1, block))
            state = nxt
        for i, layer in enumerate(space.head):
            state = {_fixed_out(add(fixed_layer_spec(f"head.{i}", layer, *s))) for s in state}
    return out


def _fixed_out(spec: LayerSpec) -> tuple[int, int, int]:
    return (*spec.out_hw, spec.cout)


def space_boundaries(space: SearchSpace, resolutions: Iterable[int] | None = None) -> dict[tuple, LayerSpec]:
    """Signature -> boundary LayerSpec for every precision change any architecture of ``space`` can have: each
    tensor shape with every (writer bits, reader bits) pair that layers writing / reading that shape allow
    (a superset of the adjacent pairs, at most a few hundred rows)."""
    writers: dict[tuple, dict[tuple, LayerSpec]] = {}
    readers: dict[tuple, dict[tuple, LayerSpec]] = {}
    for r in (space.resolutions if resolutions is None else resolutions):
        for spec in space_signatures(space, "arch", [r]).values():
            if not spec.computes:
                continue
            writers.setdefault((*spec.out_hw, spec.cout), {}).setdefault(output_bits(spec), spec)
            readers.setdefault((spec.h, spec.w, spec.cin), {}).setdefault(input_bits(spec), spec)
    out: dict[tuple, LayerSpec] = {}
    for shape, ws in writers.items():
        for a in ws.values():
            for b in readers.get(shape, {}).values():
                spec = boundary_spec(a, b)
                out.setdefault(spec.signature, spec)
    return out
