"""Layer plan: an Architecture unrolled into LayerSpecs, the one description shared by everything downstream.

A LayerSpec is a *layer signature*: the op with its input shape, output channels and every choice that
changes its cost. The model builder turns it into modules, the analytic counter into params and MACs,
latency tables use its ``signature`` as their key. Counting here is pure arithmetic (no torch), so it is
exact and fast enough to run inside a search loop.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

from nas.space import Architecture, Block, SearchSpace, load_space
from nas.space.arch import make_divisible  # noqa: F401 (re-exported: the MobileNet rounding)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded convolution (padding kernel // 2)."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


# signature fields, in the order latency tables store them
SIGNATURE_FIELDS = ("op", "h", "w", "cin", "cout", "kernel", "stride", "expand", "mid", "groups", "se", "act",
                    "wbits", "abits", "dw_wbits", "dw_abits")
BIT_FIELDS = ("wbits", "abits", "dw_wbits", "dw_abits")  # the last four signature fields


@dataclass(frozen=True)
class LayerSpec:
    """One layer (stem conv, block, pool, linear) of a concrete network.

    op: ``conv`` (kxk conv + BN + act), ``ir`` (inverted residual), ``skip`` (identity, or 1x1 conv + BN
    where stride or width change), ``pool`` (global average), ``linear`` (fully connected); ``boundary`` is no
    layer but the tensor between two (:func:`boundary_spec`), priced where a table has boundary rows.
    ``wbits`` / ``abits``: the layer's bits (an ``ir`` block's point-wise convs); ``dw_wbits`` / ``dw_abits``:
    an ``ir`` block's depth-wise conv (0 when created = the same as ``wbits`` / ``abits``; always resolved).
    """

    name: str
    op: str
    h: int
    w: int
    cin: int
    cout: int
    kernel: int = 0
    stride: int = 1
    expand: float = 0
    mid: int = 0
    groups: int = 1
    se: bool = False
    act: str = "none"
    wbits: int = 32
    abits: int = 32
    dw_wbits: int = 0
    dw_abits: int = 0
    expand_conv: bool = False  # ir: whether the 1x1 expansion conv exists
    residual: bool = False  # ir/skip: whether the input is added back
    bn: bool = True  # conv: followed by BatchNorm
    bias: bool = False  # conv/linear: has a bias

    def __post_init__(self):
        if not self.dw_wbits:
            object.__setattr__(self, "dw_wbits", self.wbits)
        if not self.dw_abits:
            object.__setattr__(self, "dw_abits", self.abits)

    @property
    def per_role(self) -> bool:
        """Whether the depth-wise conv runs at other bits than the point-wise convs."""
        return (self.dw_wbits, self.dw_abits) != (self.wbits, self.abits)

    def role_bits(self, depthwise: bool) -> tuple[int, int]:
        """(weight bits, activation bits) of one conv of the layer: its depth-wise conv's or the others'."""
        return (self.dw_wbits, self.dw_abits) if depthwise else (self.wbits, self.abits)

    # --- derived shapes --------------------------------------------------------------------------------
    @property
    def out_hw(self) -> tuple[int, int]:
        if self.op in ("pool", "linear"):
            return 1, 1
        if self.op == "skip" and self.stride == 1:
            return self.h, self.w
        k = self.kernel if self.op in ("conv", "ir") else 1
        return conv_out(self.h, k, self.stride), conv_out(self.w, k, self.stride)

    @property
    def se_channels(self) -> int:
        return make_divisible(self.mid // 4, 8) if self.se else 0

    @property
    def projects(self) -> bool:
        """A skip that cannot be an identity becomes a 1x1 conv + BN projection."""
        return self.op == "skip" and (self.stride != 1 or self.cin != self.cout)

    @property
    def computes(self) -> bool:
        """Whether the layer runs anything in a whole network (an identity skip does not)."""
        return not (self.op == "skip" and not self.projects)

    @cached_property
    def signature(self) -> tuple:
        """The fields a latency table keys on (computed once: tables and duplicate checks ask for it often)."""
        return tuple(getattr(self, f) for f in SIGNATURE_FIELDS)

    @property
    def key(self) -> str:
        """Readable one-string form of the signature."""
        if self.op == "boundary":
            return f"boundary-{self.h}x{self.w}x{self.cin}-w{self.wbits}a{self.abits}>w{self.dw_wbits}a{self.dw_abits}"
        s = f"{self.op}-i{self.h}x{self.w}x{self.cin}-o{self.cout}"
        if self.op in ("conv", "ir"):
            s += f"-k{self.kernel}-s{self.stride}"
        elif self.op == "skip":
            s += f"-s{self.stride}"
        if self.op == "ir":
            s += f"-e{self.expand}-m{self.mid}-g{self.groups}-se{int(self.se)}"
        elif self.groups != 1:
            s += f"-g{self.groups}"
        if self.op in ("conv", "ir", "linear") and self.act != "none":
            s += f"-{self.act}"
        s += f"-w{self.wbits}a{self.abits}"
        return s + (f"-dw{self.dw_wbits}a{self.dw_abits}" if self.per_role else "")

    # --- analytic cost ---------------------------------------------------------------------------------
    def params(self) -> int:
        return sum(wp + other for wp, other, _ in self.parts())

    def macs(self) -> int:
        return sum(m for _, _, m in self.parts())

    def weight_params(self) -> int:
        """Conv/linear weights only: the tensors that ``wbits`` quantizes."""
        return sum(wp for wp, _, _ in self.parts())

    def size_bytes(self) -> float:
        """Deployed size: weights at their conv's bits (a 6-bit weight counts 0.75 byte, as a bit-flexible
        accelerator stores it; the ONNX file holds it in a byte); biases (BN folds into them) and scales 32-bit."""
        dw = self.depthwise_index
        return sum(wp * self.role_bits(i == dw)[0] / 8 + 4 * other for i, (wp, other, _) in enumerate(self.parts()))

    @property
    def depthwise_index(self) -> int:
        """Index in :meth:`parts` of the depth-wise conv (an ``ir`` block's), -1 for other layers."""
        return (1 if self.expand_conv else 0) if self.op == "ir" else -1

    def parts(self) -> list[tuple[int, int, int]]:
        """(weight params, other params, MACs) of each conv/linear inside the layer.

        Other params are BN affine pairs and biases; MACs count conv and linear only.
        """
        ho, wo = self.out_hw
        if self.op == "conv":
            wp = self.cout * (self.cin // self.groups) * self.kernel * self.kernel
            other = (2 * self.cout if self.bn else 0) + (self.cout if self.bias else 0)
            return [(wp, other, wp * ho * wo)]
        if self.op == "linear":
            wp = self.cin * self.cout
            return [(wp, self.cout if self.bias else 0, wp)]
        if self.op in ("pool", "boundary") or (self.op == "skip" and not self.projects):
            return []
        if self.op == "skip":
            wp = self.cin * self.cout
            return [(wp, 2 * self.cout, wp * ho * wo)]
        # inverted residual
        parts = []
        if self.expand_conv:
            wp = self.mid * self.cin // self.groups
            parts.append((wp, 2 * self.mid, wp * self.h * self.w))
        wp = self.mid * self.kernel * self.kernel
        parts.append((wp, 2 * self.mid, wp * ho * wo))
        if self.se:
            sq = self.se_channels
            parts.append((2 * self.mid * sq, sq + self.mid, 2 * self.mid * sq))
        wp = self.cout * self.mid // self.groups
        parts.append((wp, 2 * self.cout, wp * ho * wo))
        return parts

    def convs(self) -> list["LayerSpec"]:
        """The layer as single convs, for tables keyed per conv (APQ's BitFusion table): an ``ir`` block is its
        1x1 expand (if any), depth-wise and 1x1 project convs, each at its role's bits; other layers are
        themselves. Squeeze-excite and the residual add are not convs: a per-conv table prices neither."""
        if self.op != "ir":
            return [self]
        ho, wo = self.out_hw
        out = []
        if self.expand_conv:
            out.append(LayerSpec(name=f"{self.name}.expand", op="conv", h=self.h, w=self.w, cin=self.cin,
                                 cout=self.mid, kernel=1, groups=self.groups, act=self.act, wbits=self.wbits,
                                 abits=self.abits))
        out.append(LayerSpec(name=f"{self.name}.dw", op="conv", h=self.h, w=self.w, cin=self.mid, cout=self.mid,
                             kernel=self.kernel, stride=self.stride, groups=self.mid, act=self.act,
                             wbits=self.dw_wbits, abits=self.dw_abits))
        out.append(LayerSpec(name=f"{self.name}.project", op="conv", h=ho, w=wo, cin=self.mid, cout=self.cout,
                             kernel=1, groups=self.groups, wbits=self.wbits, abits=self.abits))
        return out

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fixed_layer_spec(name: str, layer, h: int, w: int, c: int) -> LayerSpec:
    """A stem/head layer (``nas.space.FixedLayer``) applied to an h x w x c input."""
    if layer.op == "pool":
        return LayerSpec(name=name, op="pool", h=h, w=w, cin=c, cout=c)
    if layer.op == "linear":
        return LayerSpec(name=name, op="linear", h=1, w=1, cin=c, cout=layer.width, act=layer.act,
                         bias=layer.bias, bn=False, wbits=layer.wbits, abits=layer.abits)
    return LayerSpec(name=name, op="conv", h=h, w=w, cin=c, cout=layer.width, kernel=layer.kernel,
                     stride=layer.stride, groups=layer.groups, act=layer.act, bn=layer.bn, bias=layer.bias,
                     wbits=layer.wbits, abits=layer.abits)


def block_spec(space: SearchSpace, name: str, h: int, w: int, c: int, width: int, stride: int,
               block: Block) -> LayerSpec:
    """A block placed on an h x w x c input, producing ``width`` channels at ``stride``."""
    residual = stride == 1 and c == width
    if block.op == "skip":
        return LayerSpec(name=name, op="skip", h=h, w=w, cin=c, cout=width, stride=stride, residual=residual)
    return LayerSpec(
        name=name, op="ir", h=h, w=w, cin=c, cout=width, kernel=block.kernel, stride=stride,
        expand=block.expand, mid=int(round(c * block.expand)), groups=block.groups, se=block.se, act=block.act,
        wbits=block.wbits, abits=block.abits, dw_wbits=block.dw_wbits or 0, dw_abits=block.dw_abits or 0,
        expand_conv=(space.expand_conv == "always" or block.expand != 1),
        residual=residual,
    )


def output_bits(spec: LayerSpec) -> tuple[int, int]:
    """(weight, activation) bits of the op that writes a layer's output (an ``ir`` block's project conv)."""
    return spec.wbits, spec.abits


def input_bits(spec: LayerSpec) -> tuple[int, int]:
    """(weight, activation) bits of the op that reads a layer's input: an ``ir`` block's expand conv, or its
    depth-wise conv when it has none."""
    return spec.role_bits(spec.op == "ir" and not spec.expand_conv)


def boundary_spec(producer: LayerSpec, consumer: LayerSpec) -> LayerSpec:
    """The tensor between two computing layers: op ``boundary``, the tensor's h, w and channels, the bits of the
    conv that writes it (``wbits`` / ``abits``) and of the conv that reads it (``dw_wbits`` / ``dw_abits``).

    Where precision changes between layers, a whole network pays a quantize / dequantize (or saves one) that
    no layer measured alone shows; tables with boundary rows price it (``nas.latency.measure.profile``)."""
    (wo, ao), (wi, ai) = output_bits(producer), input_bits(consumer)
    return LayerSpec(name=f"{producer.name}>{consumer.name}", op="boundary", h=consumer.h, w=consumer.w,
                     cin=consumer.cin, cout=consumer.cin, wbits=wo, abits=ao, dw_wbits=wi, dw_abits=ai)


def boundaries(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The boundaries between consecutive computing layers (identity skips pass their tensor through)."""
    computing = [l for l in layers if l.computes]
    return [boundary_spec(a, b) for a, b in zip(computing, computing[1:])]


def plan(arch: Architecture, space: SearchSpace | None = None) -> list[LayerSpec]:
    """Unroll an Architecture into its layers, in execution order."""
    space = space or load_space(arch.space)
    space.validate(arch)
    layers: list[LayerSpec] = []
    h = w = arch.resolution
    c = space.in_channels

    def add(spec: LayerSpec) -> None:
        nonlocal h, w, c
        layers.append(spec)
        (h, w), c = spec.out_hw, spec.cout

    for i, layer in enumerate(space.stem):
        add(fixed_layer_spec(f"stem.{i}", layer, h, w, c))
    for i, (st_space, st) in enumerate(zip(space.stages, arch.stages)):
        for j, b in enumerate(st.blocks):
            add(block_spec(space, f"stage{i}.block{j}", h, w, c, st.width, st_space.stride if j == 0 else 1, b))
    for i, layer in enumerate(space.head):
        add(fixed_layer_spec(f"head.{i}", layer, h, w, c))
    return layers


def network_key(layers: list[LayerSpec]) -> bytes:
    """What a network computes: a 128-bit digest of its computing layers' signatures in order. Architectures that
    differ only in where identity skips sit (a NAS-Bench-Macro identity that keeps the shape) build the same
    network. A digest, not the signatures themselves (~4 KB for a mobilenet-c10 network): a search keeps one per
    network it screened, scored or took (a collision is ~1e-26 likely at a million networks)."""
    import hashlib

    signatures = tuple(layer.signature for layer in layers if layer.computes)
    return hashlib.blake2b(repr(signatures).encode(), digest_size=16).digest()


def bit_mix(layers: list[LayerSpec]) -> dict:
    """How a network spends its bits: convs per ``w<W>a<A>`` label, weight bits averaged over the weights
    (what size sees), activation bits averaged over the MACs (what compute sees)."""
    from collections import Counter

    from nas.bits import Bits

    labels: Counter = Counter()
    wsum = wbits = msum = abits = 0.0
    for layer in layers:
        for i, (wp, _, macs) in enumerate(layer.parts()):
            w, a = layer.role_bits(i == layer.depthwise_index)
            labels[Bits(w, a).label] += 1
            wsum, wbits = wsum + wp, wbits + wp * w
            msum, abits = msum + macs, abits + macs * a
    return {"convs": dict(sorted(labels.items())), "mean_wbits": wbits / wsum if wsum else float("nan"),
            "mean_abits": abits / msum if msum else float("nan")}


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    size_bytes: float  # deployed model size at the architecture's bit-widths


def count(arch_or_layers, space: SearchSpace | None = None) -> Cost:
    """Exact params, MACs and deployed size of an Architecture (planned in ``space``) or of a list of
    LayerSpecs: the one place these sums are taken."""
    layers = arch_or_layers if isinstance(arch_or_layers, (list, tuple)) else plan(arch_or_layers, space)
    return Cost(params=sum(l.params() for l in layers), macs=sum(l.macs() for l in layers),
                size_bytes=sum(l.size_bytes() for l in layers))
