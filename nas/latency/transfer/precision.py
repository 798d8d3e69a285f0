"""A source table split by precision for a transferred model: its float, int8 and other quantized layers as three
features, so a host whose int8 kernels are relatively faster (or slower) than the table's host's is learnt.

Why: a table profiled on one x86 host and adapted to another with one coefficient per table keeps the table's
ratio of int8 to fp32 cost. On a host with AVX-512 VNNI the int8 kernels gain while the fp32 ones follow the
reference kernel; the shipped ``x86-2vcpu`` (AVX2) priced quantizing one network 21 % slower where the host ran
it 7 % faster. The parts follow how onnxruntime runs a layer (``nas.nn.quantize``): ``float`` (every conv w32a32:
float kernels), ``int8`` (every conv w8a8: fused integer kernels, QLinearConv, what VNNI / AMX / dot-product
instructions speed up) and ``other`` (any other mix: 4-bit or weight-only weights, float convs between Q/DQ; float
kernels plus (de)quantization). Measured at the architectures' own bits (``nas lut adapt --measure-here``, which
also measures all-w8a8 and all-w32a32 networks of the space), the three are separable.

:class:`PrecisionPart` wraps a :class:`~nas.latency.predict.TableLatencyModel` and prices only the layers of its
part as deployed at the model's dtype (the other layers are 0 ms in it): the transferred model's document lists a
split source once per part, each with ``part``; predicting at ``fp32`` puts every layer in the float column, at
``int8`` in the int8 one.
"""
from __future__ import annotations

from nas.latency.predict import TableLatencyModel
from nas.latency.signatures import deploy
from nas.layers import LayerSpec

PARTS = ("float", "int8", "other")


def part_of(spec: LayerSpec) -> str:
    """``float`` for a layer whose convs all run w32a32 (or that runs nothing), ``int8`` for one whose convs all
    run w8a8, ``other`` for any other mix."""
    bits = {spec.wbits, spec.abits, spec.dw_wbits, spec.dw_abits}
    if not spec.computes or bits == {32}:
        return "float"
    return "int8" if bits == {8} else "other"


class PrecisionPart(TableLatencyModel):
    """The layers of one precision ``part`` of a source table (others 0 ms): a source of
    :class:`~nas.latency.transfer.model.Features` named ``<device>:<part>``. Only :meth:`layer_ms` and
    :meth:`estimate` (what features read) are split; the rest is the table's."""

    def __init__(self, source: TableLatencyModel, part: str):
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        super().__init__(source.table, dtype=source.dtype, use_calibration=False)
        self.source, self.part = source, part
        self.device = f"{source.device}:{part}"

    @property
    def identity(self) -> dict:
        return {**super().identity, "part": self.part}

    def _mine(self, spec: LayerSpec) -> bool:
        return part_of(deploy(spec, self.dtype)) == self.part

    def layer_ms(self, spec: LayerSpec, space_name: str, resolution: int) -> float | None:
        ms = super().layer_ms(spec, space_name, resolution)
        return ms if ms is None or self._mine(spec) else 0.0

    def estimate(self, spec: LayerSpec) -> float:
        return super().estimate(spec) if self._mine(spec) else 0.0


def split(sources: list[TableLatencyModel]) -> list[PrecisionPart]:
    """Each source as its float, int8 and other part."""
    return [PrecisionPart(s, p) for s in sources for p in PARTS]


def wrap(source: TableLatencyModel, doc: dict):
    """A source as a transferred model's document lists it: the table itself, or one part of it (``part``)."""
    return PrecisionPart(source, doc["part"]) if doc.get("part") else source


def parts_seen(sources: list[TableLatencyModel], archs, space) -> set[str]:
    """The parts the architectures' computing layers fall in, as deployed at the sources' dtype (a split is
    fitted only when every part is seen: an unseen part's coefficient would be unknown)."""
    from nas.layers import plan

    dtype = sources[0].dtype
    return {part_of(deploy(s, dtype)) for a in archs for s in plan(a, space) if s.computes}
