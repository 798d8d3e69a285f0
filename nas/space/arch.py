"""The Architecture value: what a trial stores, what export rebuilds from, and the key of every cache.

An Architecture is plain data with every block field resolved (fixed fields included), so it can be built,
hashed and compared without its space. Its canonical *text* form only spells out the choices the space
leaves open; that form is produced and parsed by :class:`nas.space.SearchSpace` (``space.format`` /
``space.parse``). The JSON form is self-contained and checked against the space when read back.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

from nas.errors import NasError

BLOCK_FIELDS = ("op", "kernel", "expand", "groups", "se", "act", "wbits", "abits", "dw_wbits", "dw_abits")
OPS = ("ir", "skip")
ACTIVATIONS = ("relu", "relu6", "hswish", "silu")
LAYER_ACTIVATIONS = ACTIVATIONS + ("none",)
STRIDES = (1, 2)
BLOCK_DEFAULTS = {"op": "ir", "groups": 1, "se": False, "act": "relu", "wbits": 32, "abits": 32}
# fields that apply to an ``ir`` block; a ``skip`` block has none of them
IR_FIELDS = ("kernel", "expand", "groups", "se", "act", "wbits", "abits", "dw_wbits", "dw_abits")
# per-role bits: a space that lists them lets the depth-wise conv choose its own weight / activation bits;
# otherwise (None) the depth-wise conv runs at the block's wbits / abits like the point-wise convs
ROLE_FIELDS = ("dw_wbits", "dw_abits")


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet rounding: nearest multiple of ``divisor``, never below 90% of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def normalize_number(value: Any) -> Any:
    """6.0 -> 6 so that equal expansions hash, print and serialise identically."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGER_KEYS = ("resolution", "width", "kernel", "groups", "wbits", "abits", "dw_wbits", "dw_abits")


def _json_value(key: str, value: Any, where: str) -> Any:
    """One value of the JSON form, checked for its kind: integers are whole, finite numbers (2.0 reads as 2;
    NaN, Infinity, 32.9, true and "32" are errors naming the key), expand a finite positive number, se a
    boolean, the others strings; null is a field left out."""
    if value is None and key not in ("space", "resolution", "width", "op"):
        return None
    if key in INTEGER_KEYS or key == "expand":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NasError(f"'{key}' must be a {'whole' if key != 'expand' else 'positive'} number, got {value!r}",
                           where=where)
        if key == "expand":
            if not (math.isfinite(value) and value > 0):
                raise NasError(f"'expand' must be a finite positive number, got {value!r}", where=where)
            return value
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise NasError(f"'{key}' must be a finite whole number, got {value!r}", where=where)
        return int(value)
    if key == "se":
        if not isinstance(value, bool):
            raise NasError(f"'se' must be true or false, got {value!r}", where=where)
        return value
    if not isinstance(value, str):
        raise NasError(f"'{key}' must be a string, got {value!r}", where=where)
    return value


@dataclass(frozen=True)
class Block:
    """One block. ``op`` is ``ir`` (inverted residual / MBConv; e=1 is depthwise-separable) or ``skip``.

    Fields that do not apply to the op (everything but ``op`` for ``skip``) are ``None``. ``wbits`` /
    ``abits`` are the point-wise convs' (expand, project, squeeze-excite) and, unless ``dw_wbits`` /
    ``dw_abits`` say otherwise (None: same), the depth-wise conv's.
    """

    op: str
    kernel: int | None = None
    expand: float | None = None
    groups: int | None = None
    se: bool | None = None
    act: str | None = None
    wbits: int | None = None
    abits: int | None = None
    dw_wbits: int | None = None
    dw_abits: int | None = None

    def __post_init__(self):
        if self.expand is not None:
            object.__setattr__(self, "expand", normalize_number(self.expand))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Stage:
    """A run of blocks with one output width; depth is ``len(blocks)``."""

    width: int
    blocks: tuple[Block, ...]

    @property
    def depth(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class Architecture:
    """A frozen, hashable network description inside one named search space."""

    space: str
    resolution: int
    stages: tuple[Stage, ...]

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(b for s in self.stages for b in s.blocks)

    # --- JSON form -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "resolution": self.resolution,
            "stages": [{"width": s.width, "blocks": [b.to_dict() for b in s.blocks]} for s in self.stages],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "architecture JSON") -> "Architecture":
        """Build from the JSON form; the result is *not* yet checked against its space (``space.validate``)."""
        if not isinstance(data, dict):
            raise NasError("expected a JSON object", where=where)
        unknown = set(data) - {"space", "resolution", "stages"}
        if unknown:
            raise NasError(f"unknown key(s) {sorted(unknown)}", where=where,
                           fix="allowed keys are space, resolution, stages")
        for key in ("space", "resolution", "stages"):
            if key not in data:
                raise NasError(f"missing key '{key}'", where=where)
        if not isinstance(data["stages"], list):
            raise NasError(f"'stages' must be a list, got {data['stages']!r}", where=where)
        stages = []
        for i, st in enumerate(data["stages"]):
            here = f"{where}: stages[{i}]"
            if not isinstance(st, dict) or set(st) != {"width", "blocks"} or not isinstance(st["blocks"], list):
                raise NasError("each stage must be an object with exactly 'width' and 'blocks' (a list)", where=here)
            blocks = []
            for j, b in enumerate(st["blocks"]):
                bad = set(b) - set(BLOCK_FIELDS) if isinstance(b, dict) else {"<not an object>"}
                if bad or "op" not in b:
                    raise NasError(f"block {j}: unknown or missing keys {sorted(bad) or ['op']}", where=here,
                                   fix=f"block keys are {', '.join(BLOCK_FIELDS)}")
                blocks.append(Block(**{k: _json_value(k, v, f"{here} block {j}") for k, v in b.items()}))
            stages.append(Stage(width=_json_value("width", st["width"], here), blocks=tuple(blocks)))
        return cls(space=_json_value("space", data["space"], where),
                   resolution=_json_value("resolution", data["resolution"], where), stages=tuple(stages))

    @classmethod
    def from_json(cls, text: str, *, where: str = "architecture JSON") -> "Architecture":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NasError(f"not valid JSON ({exc.msg} at char {exc.pos})", where=where) from None
        return cls.from_dict(data, where=where)
