"""Named hand-designed baselines: MobileNetV2 x0.35 / x0.5 / x0.75 / x1.0 and MobileNetV3-Small / -Large in the
CIFAR layout of ``mobilenet-c10`` (32 px, 10 classes, total stride 8), each an Architecture of a shipped space.

    from nas.space import baseline, list_baselines, load_space
    b = baseline("mobilenetv2-0.5")                       # b.arch lives in space b.space
    load_space(b.space).parse("mobilenetv2-0.5") == b.arch  # every architecture reader takes the name

CIFAR layout: the first two stride-2 layers of the ImageNet network run at stride 1, everything else is as
published (MobileNetV2: the stem and the 24-channel stage, as mobilenet-c10 and the usual CIFAR MobileNetV2 do;
MobileNetV3-Large: the stem and the 24-channel stage; MobileNetV3-Small: the stem and its first block). Blocks
run at 32 bits; int8 is a deployment choice (``dtype``). ``mobilenetv2-1.0`` is a member of ``mobilenet-c10``
(whose stem and head are fixed at 8 bits); the others have spaces of their own that hold exactly them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from nas.errors import NasError, did_you_mean
from nas.space.arch import OPS, Architecture, Block, Stage, make_divisible

RESOLUTION = 32

# MobileNetV2 (Sandler et al., CVPR 2018, Table 2; torchvision/models/mobilenetv2.py, inverted_residual_setting):
# expansion t, output channels c, blocks n per stage (strides live in the space files)
MOBILENETV2 = ((1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1))
MOBILENETV2_WIDTHS = (0.35, 0.5, 0.75, 1.0)
MOBILENETV2_NAMES = ("mobilenetv2-0.35", "mobilenetv2-0.5", "mobilenetv2-0.75", "mobilenetv2-1.0")

# MobileNetV3 (Howard et al., ICCV 2019, Tables 1 and 2; torchvision/models/mobilenetv3.py, _mobilenet_v3_conf):
# per stage of the space file, its output channels and per block (kernel, expanded channels, SE, activation).
# The expansion is the published channel count; the Architecture stores it as expanded / input channels (the
# ratio the apq space uses for its mid channels), so 88 / 24 is 3.666... and 184 / 80 is 2.3.
STEM_V3 = 16
MOBILENETV3_SMALL = (
    (16, ((3, 16, True, "relu"),)),
    (24, ((3, 72, False, "relu"), (3, 88, False, "relu"))),
    (40, ((5, 96, True, "hswish"), (5, 240, True, "hswish"), (5, 240, True, "hswish"))),
    (48, ((5, 120, True, "hswish"), (5, 144, True, "hswish"))),
    (96, ((5, 288, True, "hswish"), (5, 576, True, "hswish"), (5, 576, True, "hswish"))),
)
MOBILENETV3_LARGE = (
    (16, ((3, 16, False, "relu"),)),
    (24, ((3, 64, False, "relu"), (3, 72, False, "relu"))),
    (40, ((5, 72, True, "relu"), (5, 120, True, "relu"), (5, 120, True, "relu"))),
    # the 80-channel stage expands 240, 200, 184, 184: three runs in the space file, so that it fixes every block
    (80, ((3, 240, False, "hswish"),)),
    (80, ((3, 200, False, "hswish"),)),
    (80, ((3, 184, False, "hswish"), (3, 184, False, "hswish"))),
    (112, ((3, 480, True, "hswish"), (3, 672, True, "hswish"))),
    (160, ((5, 672, True, "hswish"), (5, 960, True, "hswish"), (5, 960, True, "hswish"))),
)


@dataclass(frozen=True)
class Baseline:
    """A named architecture: ``arch`` (an Architecture of space ``space``) and what it is."""

    name: str
    arch: Architecture
    description: str

    @property
    def space(self) -> str:
        return self.arch.space


def _block(kernel: int, expand: float, se: bool, act: str) -> Block:
    return Block(op="ir", kernel=kernel, expand=expand, groups=1, se=se, act=act, wbits=32, abits=32)


def mobilenetv2(width: float) -> Architecture:
    """MobileNetV2 at a width multiplier. Channels are ``make_divisible(c * width, 8)`` (nearest multiple of 8,
    never 10 % below), as torchvision's ``_make_divisible`` (from tensorflow/models slim mobilenet.py); the last
    1x1 conv keeps 1280 channels below x1.0 (torchvision: ``_make_divisible(1280 * max(1.0, width_mult))``;
    the paper applies the multiplier to every layer but the last conv; slim: finegrain_classification_mode) and
    the stem's ``make_divisible(32 * width)``: both are fixed layers of the space file."""
    stages = tuple(Stage(width=make_divisible(c * width, 8), blocks=(_block(3, t, False, "relu6"),) * n)
                   for t, c, n in MOBILENETV2)
    space = "mobilenet-c10" if width == 1.0 else f"mobilenetv2-{width:g}-c10"
    return Architecture(space=space, resolution=RESOLUTION, stages=stages)


def mobilenetv3(space: str, table) -> Architecture:
    """MobileNetV3 from its block table: each block's expansion is its expanded channels over its input's."""
    stages, cin = [], STEM_V3
    for width, blocks in table:
        out = []
        for kernel, expanded, se, act in blocks:
            out.append(_block(kernel, expanded / cin, se, act))
            cin = width
        stages.append(Stage(width=width, blocks=tuple(out)))
    return Architecture(space=space, resolution=RESOLUTION, stages=tuple(stages))


def _registry() -> dict[str, Baseline]:
    out = {name: Baseline(name, mobilenetv2(w), f"MobileNetV2 x{name[12:]}, CIFAR layout")
           for name, w in zip(MOBILENETV2_NAMES, MOBILENETV2_WIDTHS)}
    for name, what, table in (("mobilenetv3-small", "Small", MOBILENETV3_SMALL),
                              ("mobilenetv3-large", "Large", MOBILENETV3_LARGE)):
        out[name] = Baseline(name, mobilenetv3(f"{name}-c10", table), f"MobileNetV3-{what}, CIFAR layout")
    return out


BASELINES = MappingProxyType(_registry())
_NAME_LIKE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9.]+)+")


def list_baselines() -> list[Baseline]:
    """Every named baseline, MobileNetV2 by width, then MobileNetV3-Small and -Large."""
    return list(BASELINES.values())


def baseline(name: str) -> Baseline:
    """The baseline called ``name`` (case-insensitive)."""
    found = BASELINES.get(str(name).strip().lower())
    if found is None:
        raise NasError(_unknown(str(name)), argument="name", fix=_FIX)
    return found


def find(text: str) -> Baseline | None:
    """The baseline ``text`` names; None for text that names none (canonical text, JSON, a native encoding).
    Text shaped like a name (``word-word``, not starting with a block op) that names no baseline is an error."""
    key = str(text).strip().lower()
    if key in BASELINES:
        return BASELINES[key]
    if _NAME_LIKE.fullmatch(key) and key.split("-")[0] not in OPS:
        raise NasError(_unknown(key), where=f"architecture '{str(text).strip()}'", fix=_FIX)
    return None


def _unknown(name: str) -> str:
    return f"unknown baseline '{name}'{did_you_mean(name.strip().lower(), list(BASELINES))}"


_FIX = (f"name one of {', '.join(BASELINES)} (`nas arch list`), or write the architecture as canonical text or "
        "JSON")


def implied_space(arch_text: str, space: str | None = None) -> str:
    """The space to read ``arch_text`` in: ``space`` when given, else the space a baseline name implies."""
    if space:
        return str(space)
    found = find(arch_text)
    if found is None:
        raise NasError("a space is needed to read this architecture (it is no baseline name)", argument="space",
                       fix="give space=NAME (`nas spaces list`), or a baseline name (`nas arch list`)")
    return found.space
