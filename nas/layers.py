"""Layer plan: an Architecture unrolled into LayerSpecs, the one description shared by everything downstream.

A LayerSpec is a *layer signature*: the op with its input shape, output channels and every choice that
changes its cost. The model builder turns it into modules, the analytic counter into params and MACs,
latency tables use its ``signature`` as their key. Counting here is pure arithmetic (no torch), so it is
exact and fast enough to run inside a search loop.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from nas.arch import Architecture
from nas.space import SearchSpace, load_space


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet rounding: nearest multiple of ``divisor``, never below 90% of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a 'same'-padded convolution (padding kernel // 2)."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


# signature fields, in the order latency tables store them
SIGNATURE_FIELDS = ("op", "h", "w", "cin", "cout", "kernel", "stride", "expand", "mid", "groups", "se", "act",
                    "wbits", "abits")


@dataclass(frozen=True)
class LayerSpec:
    """One layer (stem conv, block, pool, linear) of a concrete network.

    op: ``conv`` (kxk conv + BN + act), ``ir`` (inverted residual), ``skip`` (identity, or 1x1 conv + BN
    where stride or width change), ``pool`` (global average), ``linear`` (fully connected).
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
    expand_conv: bool = False  # ir: whether the 1x1 expansion conv exists
    residual: bool = False  # ir/skip: whether the input is added back
    bn: bool = True  # conv: followed by BatchNorm
    bias: bool = False  # conv/linear: has a bias

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
    def signature(self) -> tuple:
        return tuple(getattr(self, f) for f in SIGNATURE_FIELDS)

    @property
    def key(self) -> str:
        """Readable one-string form of the signature."""
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
        return s + f"-w{self.wbits}a{self.abits}"

    # --- analytic cost ---------------------------------------------------------------------------------
    def params(self) -> int:
        return sum(p for p, _ in self._parts())

    def macs(self) -> int:
        return sum(m for _, m in self._parts())

    def _parts(self) -> list[tuple[int, int]]:
        """(params, MACs) of each conv/linear/BN inside the layer. MACs count conv and linear only."""
        ho, wo = self.out_hw
        if self.op == "conv":
            wp = self.cout * (self.cin // self.groups) * self.kernel * self.kernel
            extra = 2 * self.cout if self.bn else 0
            extra += self.cout if self.bias else 0
            return [(wp + extra, wp * ho * wo)]
        if self.op == "linear":
            wp = self.cin * self.cout
            return [(wp + (self.cout if self.bias else 0), wp)]
        if self.op == "pool":
            return []
        if self.op == "skip":
            if not self.projects:
                return []
            wp = self.cin * self.cout
            return [(wp + 2 * self.cout, wp * ho * wo)]
        # inverted residual
        parts = []
        if self.expand_conv:
            wp = self.mid * self.cin // self.groups
            parts.append((wp + 2 * self.mid, wp * self.h * self.w))
        wp = self.mid * self.kernel * self.kernel
        parts.append((wp + 2 * self.mid, wp * ho * wo))
        if self.se:
            sq = self.se_channels
            parts.append((self.mid * sq + sq + sq * self.mid + self.mid, 2 * self.mid * sq))
        wp = self.cout * self.mid // self.groups
        parts.append((wp + 2 * self.cout, wp * ho * wo))
        return parts

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def plan(arch: Architecture, space: SearchSpace | None = None) -> list[LayerSpec]:
    """Unroll an Architecture into its layers, in execution order."""
    space = space or load_space(arch.space)
    space.validate(arch)
    layers: list[LayerSpec] = []
    h = w = arch.resolution
    c = space.in_channels

    def fixed(name: str, layer) -> None:
        nonlocal h, w, c
        if layer.op == "pool":
            spec = LayerSpec(name=name, op="pool", h=h, w=w, cin=c, cout=c)
        elif layer.op == "linear":
            spec = LayerSpec(name=name, op="linear", h=1, w=1, cin=c, cout=layer.width, act=layer.act,
                             bias=layer.bias, bn=False, wbits=layer.wbits, abits=layer.abits)
        else:
            spec = LayerSpec(name=name, op="conv", h=h, w=w, cin=c, cout=layer.width, kernel=layer.kernel,
                             stride=layer.stride, groups=layer.groups, act=layer.act, bn=layer.bn,
                             bias=layer.bias, wbits=layer.wbits, abits=layer.abits)
        layers.append(spec)
        h, w = spec.out_hw
        c = spec.cout

    for i, layer in enumerate(space.stem):
        fixed(f"stem.{i}", layer)
    for i, (st_space, st) in enumerate(zip(space.stages, arch.stages)):
        for j, b in enumerate(st.blocks):
            stride = st_space.stride if j == 0 else 1
            name = f"stage{i}.block{j}"
            if b.op == "skip":
                spec = LayerSpec(name=name, op="skip", h=h, w=w, cin=c, cout=st.width, stride=stride,
                                 residual=(stride == 1 and c == st.width))
            else:
                mid = int(round(c * b.expand))
                spec = LayerSpec(
                    name=name, op="ir", h=h, w=w, cin=c, cout=st.width, kernel=b.kernel, stride=stride,
                    expand=b.expand, mid=mid, groups=b.groups, se=b.se, act=b.act, wbits=b.wbits, abits=b.abits,
                    expand_conv=(space.expand_conv == "always" or b.expand != 1),
                    residual=(stride == 1 and c == st.width),
                )
            layers.append(spec)
            h, w = spec.out_hw
            c = spec.cout
    for i, layer in enumerate(space.head):
        fixed(f"head.{i}", layer)
    return layers


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def count(arch: Architecture, space: SearchSpace | None = None) -> Cost:
    layers = plan(arch, space)
    return Cost(params=sum(l.params() for l in layers), macs=sum(l.macs() for l in layers))
