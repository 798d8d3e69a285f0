"""Search spaces as data: parse and validate ``search_spaces/*.yaml`` into a SearchSpace.

A list in the YAML means "choose one", a scalar means "fixed". The SearchSpace samples Architectures
(with any ``choose(name, options)`` callback: a seeded RNG or an Optuna trial), formats them in the one
canonical text form, parses that form (and the native encodings of benchmark spaces) and validates
Architectures read from JSON. Every error names the file, the key and what is allowed.
"""
from __future__ import annotations

import difflib
import itertools
import math
import os
import random
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from nas.arch import BLOCK_FIELDS, Architecture, Block, Stage, normalize_number
from nas.errors import NasError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACES_DIR = Path(os.environ.get("NAS_SPACES_DIR", PROJECT_ROOT / "search_spaces"))

OPS = ("ir", "skip")
ACTIVATIONS = ("relu", "relu6", "hswish", "silu")
LAYER_ACTIVATIONS = ACTIVATIONS + ("none",)
WEIGHT_BITS = (4, 8, 16, 32)
ACT_BITS = (8, 16, 32)
STRIDES = (1, 2)
BLOCK_DEFAULTS = {"op": "ir", "groups": 1, "se": False, "act": "relu", "wbits": 32, "abits": 32}
# fields that apply to an ``ir`` block; a ``skip`` block has none of them
IR_FIELDS = ("kernel", "expand", "groups", "se", "act", "wbits", "abits")

TOP_KEYS = {"name", "description", "source", "input", "num_classes", "expand_conv", "presets", "block",
            "stem", "stages", "head", "native"}
INPUT_KEYS = {"resolution", "channels"}
BLOCK_KEYS = set(BLOCK_FIELDS) | {"preset"}
STAGE_KEYS = {"width", "depth", "stride", "block", "first_block"}
LAYER_KEYS = {"op", "kernel", "stride", "width", "act", "groups", "bn", "bias", "wbits", "abits"}
LAYER_OPS = ("conv", "pool", "linear")

Chooser = Callable[[str, Sequence[Any]], Any]


# --------------------------------------------------------------------------------------------------------
# value objects
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alternative:
    """One way to fill a block: an op (or named preset) plus the allowed values of each applicable field."""

    name: str
    op: str
    choices: tuple[tuple[str, tuple], ...]  # (field, allowed values) for every field of the op

    def allowed(self, name: str) -> tuple:
        return dict(self.choices)[name]

    def count(self) -> int:
        return math.prod(len(v) for _, v in self.choices)

    def contains(self, block: Block) -> bool:
        if block.op != self.op:
            return False
        return all(getattr(block, f) in vals for f, vals in self.choices)


@dataclass(frozen=True)
class BlockSpace:
    """The blocks allowed at one position: a union of alternatives."""

    alternatives: tuple[Alternative, ...]

    def count(self) -> int:
        return sum(a.count() for a in self.alternatives)

    @cache
    def varying_fields(self, op: str) -> tuple[str, ...]:
        """Fields that the canonical text must spell out for a block of this op."""
        out = []
        for f in IR_FIELDS:
            values = set()
            for a in self.alternatives:
                if a.op == op:
                    values.update(dict(a.choices).get(f, ()))
            if len(values) > 1:
                out.append(f)
        return tuple(out)

    def contains(self, block: Block) -> bool:
        return any(a.contains(block) for a in self.alternatives)

    def blocks(self) -> list[Block]:
        """Every distinct block allowed here (for enumerating the layer signatures a space needs)."""
        out = []
        for a in self.alternatives:
            names = [f for f, _ in a.choices]
            for values in itertools.product(*(v for _, v in a.choices)):
                out.append(Block(op=a.op, **dict(zip(names, values))))
        return out

    def describe(self) -> str:
        parts = []
        for a in self.alternatives:
            inner = ", ".join(f"{f}={_fmt_choices(v) if len(v) > 1 else v[0]}" for f, v in a.choices)
            parts.append(f"{a.name}({inner})" if inner else a.name)
        return " | ".join(parts)


@dataclass(frozen=True)
class StageSpace:
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    stride: int
    block: BlockSpace
    first_block: BlockSpace

    def block_space(self, index: int) -> BlockSpace:
        return self.first_block if index == 0 else self.block

    def count(self) -> int:
        per_depth = sum(self.first_block.count() * self.block.count() ** (d - 1) for d in self.depths)
        return len(self.widths) * per_depth


@dataclass(frozen=True)
class FixedLayer:
    """A stem or head layer: ``conv`` (conv+BN+act), ``pool`` (global average) or ``linear``."""

    op: str
    width: int = 0
    kernel: int = 1
    stride: int = 1
    act: str = "none"
    groups: int = 1
    bn: bool = True
    bias: bool = False
    wbits: int = 32
    abits: int = 32


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    source: str
    path: str
    resolutions: tuple[int, ...]
    in_channels: int
    num_classes: int
    expand_conv: str  # "when_expanding" (MobileNetV2: e=1 has no 1x1 expand conv) or "always" (FBNet)
    stem: tuple[FixedLayer, ...]
    stages: tuple[StageSpace, ...]
    head: tuple[FixedLayer, ...]
    native: str | None = None  # "digits" (NAS-Bench-Macro) or "names" (FBNet op names joined by '|')
    presets: tuple[str, ...] = field(default=())

    # --- size -------------------------------------------------------------------------------------------
    def count(self) -> int:
        """Exact number of distinct architectures."""
        return len(self.resolutions) * math.prod(s.count() for s in self.stages)

    def log10_count(self) -> float:
        return math.log10(self.count())

    # --- sampling ---------------------------------------------------------------------------------------
    def sample(self, choose: Chooser) -> Architecture:
        """Draw one architecture, asking ``choose(name, options)`` for every open choice (define-by-run)."""

        def pick(name: str, options: Sequence[Any]) -> Any:
            return options[0] if len(options) == 1 else choose(name, list(options))

        resolution = pick("resolution", self.resolutions)
        stages = []
        for i, st in enumerate(self.stages):
            width = pick(f"s{i}.width", st.widths)
            depth = pick(f"s{i}.depth", st.depths)
            blocks = []
            for j in range(depth):
                bs = st.block_space(j)
                names = [a.name for a in bs.alternatives]
                alt = bs.alternatives[names.index(pick(f"s{i}.b{j}.op", names))]
                prefix = f"s{i}.b{j}." + (f"{alt.name}." if len(names) > 1 else "")
                values = {f: pick(prefix + f, vals) for f, vals in alt.choices}
                blocks.append(Block(op=alt.op, **values))
            stages.append(Stage(width=width, blocks=tuple(blocks)))
        return Architecture(space=self.name, resolution=resolution, stages=tuple(stages))

    def random(self, rng: random.Random) -> Architecture:
        return self.sample(lambda _name, options: options[rng.randrange(len(options))])

    def sample_many(self, n: int, seed: int = 0) -> list[Architecture]:
        rng = random.Random(seed)
        return [self.random(rng) for _ in range(n)]

    # --- canonical text ---------------------------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        self.validate(arch)
        segments = []
        if len(self.resolutions) > 1:
            segments.append(f"r{arch.resolution}")
        for st_space, st in zip(self.stages, arch.stages):
            blocks = "-".join(_format_block(st_space.block_space(j), b) for j, b in enumerate(st.blocks))
            segments.append(f"c{st.width}:{blocks}" if len(st_space.widths) > 1 else blocks)
        return "/".join(segments)

    def parse(self, text: str) -> Architecture:
        """Canonical text, JSON, or the space's native encoding -> a validated Architecture."""
        raw = str(text).strip()
        where = f"architecture '{_short(raw)}' (space {self.name})"
        if raw.startswith("{"):
            arch = Architecture.from_json(raw, where=where)
            self.validate(arch, where=where)
            return arch
        if self.native and ("/" not in raw) and (("|" in raw) or (self.native == "digits" and raw.isdigit())):
            return self._parse_native(raw, where)
        segments = raw.split("/")
        resolution = self.resolutions[0]
        if len(self.resolutions) > 1:
            head = segments.pop(0) if segments else ""
            m = re.fullmatch(r"r(\d+)", head)
            if not m:
                raise NasError(f"must start with the resolution 'r<pixels>/', got '{head}'", where=where,
                               fix=f"resolution is one of {_fmt_choices(self.resolutions)}")
            resolution = int(m.group(1))
            if resolution not in self.resolutions:
                raise NasError(f"resolution {resolution} is not in the space", where=where,
                               fix=f"use one of {_fmt_choices(self.resolutions)}")
        if len(segments) != len(self.stages):
            raise NasError(f"has {len(segments)} stage segment(s) separated by '/', the space has "
                           f"{len(self.stages)}", where=where, fix="write one segment per stage, blocks joined by '-'")
        stages = []
        for i, (seg, st_space) in enumerate(zip(segments, self.stages)):
            here = f"{where}: stage {i}"
            width = st_space.widths[0]
            if len(st_space.widths) > 1:
                m = re.fullmatch(r"c(\d+):(.*)", seg)
                if not m:
                    raise NasError(f"must start with its width 'c<channels>:', got '{_short(seg)}'", where=here,
                                   fix=f"width is one of {_fmt_choices(st_space.widths)}")
                width, seg = int(m.group(1)), m.group(2)
                if width not in st_space.widths:
                    raise NasError(f"width {width} is not allowed", where=here,
                                   fix=f"use one of {_fmt_choices(st_space.widths)}")
            block_texts = seg.split("-") if seg else []
            if len(block_texts) not in st_space.depths:
                raise NasError(f"has {len(block_texts)} block(s), depth must be one of "
                               f"{_fmt_choices(st_space.depths)}", where=here)
            blocks = tuple(_parse_block(st_space.block_space(j), bt, f"{here} block {j}")
                           for j, bt in enumerate(block_texts))
            stages.append(Stage(width=width, blocks=blocks))
        arch = Architecture(space=self.name, resolution=resolution, stages=tuple(stages))
        self.validate(arch, where=where)
        return arch

    def _parse_native(self, raw: str, where: str) -> Architecture:
        positions = [(i, j) for i, st in enumerate(self.stages) for j in range(st.depths[0])]
        if self.native == "digits":
            tokens = list(raw)
            names = list(self.presets)
            try:
                tokens = [names[int(t)] for t in tokens]
            except IndexError:
                raise NasError(f"digits must be 0..{len(names) - 1} ({', '.join(names)})", where=where) from None
        else:
            tokens = [t.strip() for t in raw.split("|")]
        if len(tokens) != len(positions):
            raise NasError(f"native encoding has {len(tokens)} layer(s), the space has {len(positions)}",
                           where=where)
        stages: list[list[Block]] = [[] for _ in self.stages]
        for (i, j), tok in zip(positions, tokens):
            bs = self.stages[i].block_space(j)
            alt = next((a for a in bs.alternatives if a.name == tok), None)
            if alt is None:
                names = [a.name for a in bs.alternatives]
                raise NasError(f"layer {len(sum(stages, []))}: unknown op '{tok}'{_suggest(tok, names)}",
                               where=where, fix=f"ops are {', '.join(names)}")
            stages[i].append(Block(op=alt.op, **{f: v[0] for f, v in alt.choices}))
        arch = Architecture(space=self.name, resolution=self.resolutions[0],
                            stages=tuple(Stage(width=st.widths[0], blocks=tuple(b))
                                         for st, b in zip(self.stages, stages)))
        self.validate(arch, where=where)
        return arch

    def to_native(self, arch: Architecture) -> str | None:
        """The benchmark's own encoding (digits or op names), or None if the space has none."""
        if not self.native:
            return None
        names = []
        for st_space, st in zip(self.stages, arch.stages):
            for j, b in enumerate(st.blocks):
                names.append(next(a.name for a in st_space.block_space(j).alternatives if a.contains(b)))
        if self.native == "digits":
            return "".join(str(self.presets.index(n)) for n in names)
        return "|".join(names)

    # --- validation -------------------------------------------------------------------------------------
    def validate(self, arch: Architecture, *, where: str | None = None) -> None:
        where = where or f"architecture in space {self.name}"
        if arch.space != self.name:
            raise NasError(f"belongs to space '{arch.space}', not '{self.name}'", where=where,
                           fix=f"use --space {arch.space}")
        if arch.resolution not in self.resolutions:
            raise NasError(f"resolution {arch.resolution} is not allowed", where=where,
                           fix=f"use one of {_fmt_choices(self.resolutions)}")
        if len(arch.stages) != len(self.stages):
            raise NasError(f"has {len(arch.stages)} stages, the space has {len(self.stages)}", where=where)
        for i, (st_space, st) in enumerate(zip(self.stages, arch.stages)):
            if st.width not in st_space.widths:
                raise NasError(f"stage {i}: width {st.width} is not allowed", where=where,
                               fix=f"use one of {_fmt_choices(st_space.widths)}")
            if st.depth not in st_space.depths:
                raise NasError(f"stage {i}: depth {st.depth} is not allowed", where=where,
                               fix=f"use one of {_fmt_choices(st_space.depths)}")
            for j, b in enumerate(st.blocks):
                bs = st_space.block_space(j)
                if not bs.contains(b):
                    raise NasError(f"stage {i} block {j}: {b.to_dict()} is outside the space", where=where,
                                   fix=f"allowed here: {bs.describe()}")


# --------------------------------------------------------------------------------------------------------
# block text
# --------------------------------------------------------------------------------------------------------
_TOKEN_PATTERNS = (
    ("kernel", re.compile(r"k(\d+)"), int),
    ("expand", re.compile(r"e(\d+(?:\.\d+)?)"), lambda s: normalize_number(float(s))),
    ("groups", re.compile(r"g(\d+)"), int),
    ("se", re.compile(r"se([01])"), lambda s: s == "1"),
    ("wbits", re.compile(r"w(\d+)"), int),
    ("abits", re.compile(r"a(\d+)"), int),
)


def _token(field_name: str, value: Any) -> str:
    if field_name == "act":
        return str(value)
    prefix = {"kernel": "k", "expand": "e", "groups": "g", "se": "se", "wbits": "w", "abits": "a"}[field_name]
    return f"{prefix}{int(value) if isinstance(value, bool) else value}"


def _format_block(bs: BlockSpace, block: Block) -> str:
    return "_".join([block.op] + [_token(f, getattr(block, f)) for f in bs.varying_fields(block.op)])


def _parse_block(bs: BlockSpace, text: str, where: str) -> Block:
    tokens = text.split("_")
    op = tokens[0]
    if op not in {a.op for a in bs.alternatives}:
        ops = sorted({a.op for a in bs.alternatives})
        raise NasError(f"'{text}' must start with the op ({', '.join(ops)}), got '{op}'{_suggest(op, ops)}",
                       where=where)
    given: dict[str, Any] = {}
    for tok in tokens[1:]:
        name, value = _read_token(tok)
        if name is None:
            raise NasError(f"unknown token '{tok}' in '{text}'{_suggest(tok, _example_tokens(bs))}", where=where,
                           fix="tokens are k<kernel> e<expansion> g<groups> se0/se1 "
                               f"{'/'.join(ACTIVATIONS)} w<weight bits> a<activation bits>")
        if name in given:
            raise NasError(f"'{text}' gives {name} twice", where=where)
        given[name] = value
    candidates = []
    for alt in bs.alternatives:
        if alt.op != op:
            continue
        allowed = dict(alt.choices)
        if any(f not in allowed or v not in allowed[f] for f, v in given.items()):
            continue
        open_fields = [f for f, vals in alt.choices if f not in given and len(vals) > 1]
        candidates.append((alt, open_fields))
    if not candidates:
        raise NasError(f"'{text}' is outside the space", where=where, fix=f"allowed here: {bs.describe()}")
    complete = [(a, o) for a, o in candidates if not o]
    if len(complete) != 1:
        missing = sorted({f for _, o in candidates for f in o}) or ["a distinguishing field"]
        raise NasError(f"'{text}' leaves {', '.join(missing)} open", where=where,
                       fix=f"spell out every choice, e.g. '{_format_example(bs)}'")
    alt = complete[0][0]
    values = {f: given.get(f, vals[0]) for f, vals in alt.choices}
    return Block(op=alt.op, **values)


def _read_token(tok: str) -> tuple[str | None, Any]:
    if tok in ACTIVATIONS:
        return "act", tok
    for name, pattern, convert in _TOKEN_PATTERNS:
        m = pattern.fullmatch(tok)
        if m:
            return name, convert(m.group(1))
    return None, None


def _example_tokens(bs: BlockSpace) -> list[str]:
    out = []
    for a in bs.alternatives:
        for f, vals in a.choices:
            out.extend(_token(f, v) for v in vals)
    return out


def _format_example(bs: BlockSpace) -> str:
    a = bs.alternatives[0]
    return _format_block(bs, Block(op=a.op, **{f: v[0] for f, v in a.choices}))


def _fmt_choices(values: Sequence[Any]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(dict.fromkeys(options)), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------------------------------------
# YAML loading
# --------------------------------------------------------------------------------------------------------
class _Reader:
    """Validates one YAML file; every error carries the file and the key path."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str, fix: str | None = None) -> None:
        raise NasError(problem, where=f"{self.path}: {key}" if key else str(self.path), fix=fix)

    def check_keys(self, key: str, data: Any, allowed: set[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(data, dict):
            self.fail(key, f"must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            u = str(unknown[0])
            self.fail(f"{key}.{u}" if key else u, f"unknown key '{u}'{_suggest(u, sorted(allowed))}",
                      f"allowed keys here: {', '.join(sorted(allowed))}")
        for r in required:
            if r not in data:
                self.fail(key, f"missing required key '{r}'")
        return data

    def choices(self, key: str, value: Any, check: Callable[[Any], bool], what: str) -> tuple:
        values = value if isinstance(value, list) else [value]
        if len(values) == 0:
            self.fail(key, "empty choice list", f"give at least one value ({what})")
        out = []
        for v in values:
            if isinstance(v, (list, dict)) or not check(v):
                self.fail(key, f"invalid value {v!r}", f"each value must be {what}")
            v = normalize_number(v)
            if v in out:
                self.fail(key, f"value {v!r} listed twice")
            out.append(v)
        return tuple(out)

    def scalar(self, key: str, value: Any, check: Callable[[Any], bool], what: str) -> Any:
        if isinstance(value, (list, dict)) or not check(value):
            self.fail(key, f"invalid value {value!r}", f"must be {what}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v: Any) -> bool:
    return _is_int(v) and v > 0


FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "op": (lambda v: v in OPS, f"one of {', '.join(OPS)}"),
    "kernel": (lambda v: _pos_int(v) and v % 2 == 1, "an odd positive integer (3, 5, 7)"),
    "expand": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
               "a positive number (expansion ratio)"),
    "groups": (_pos_int, "a positive integer"),
    "se": (lambda v: isinstance(v, bool), "true or false"),
    "act": (lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
    "wbits": (lambda v: v in WEIGHT_BITS and _is_int(v), f"one of {', '.join(map(str, WEIGHT_BITS))} (32 = float)"),
    "abits": (lambda v: v in ACT_BITS and _is_int(v), f"one of {', '.join(map(str, ACT_BITS))} (32 = float)"),
}


def _block_space(r: _Reader, key: str, spec: dict, presets: dict[str, dict]) -> BlockSpace:
    spec = {**BLOCK_DEFAULTS, **spec}
    choices = {f: r.choices(f"{key}.{f}", v, *FIELD_CHECKS[f]) for f, v in spec.items() if f != "preset"}
    alternatives = []
    if "preset" in spec:
        names = r.choices(f"{key}.preset", spec["preset"], lambda v: isinstance(v, str), "a preset name")
        for n in names:
            if n not in presets:
                r.fail(f"{key}.preset", f"unknown preset '{n}'{_suggest(n, list(presets))}",
                       f"define it under 'presets:' or use one of {', '.join(presets) or '(none defined)'}")
            p = {**BLOCK_DEFAULTS, **presets[n]}
            op = p["op"]
            merged = {f: (presets[n][f],) if f in presets[n] else choices.get(f, ()) for f in IR_FIELDS}
            alternatives.append(_alternative(r, f"presets.{n}", n, op, merged))
    else:
        for op in choices["op"]:
            alternatives.append(_alternative(r, key, op, op, choices))
    return BlockSpace(tuple(alternatives))


def _alternative(r: _Reader, key: str, name: str, op: str, choices: dict) -> Alternative:
    if op == "skip":
        return Alternative(name=name, op=op, choices=())
    for f in IR_FIELDS:
        if not choices.get(f):
            r.fail(key, f"an 'ir' block needs '{f}'", f"add {f}: <value or list> to the block")
    return Alternative(name=name, op=op, choices=tuple((f, tuple(choices[f])) for f in IR_FIELDS))


def _fixed_layer(r: _Reader, key: str, data: Any, num_classes: int, is_last: bool) -> FixedLayer:
    data = r.check_keys(key, data, LAYER_KEYS, required=("op",))
    op = r.scalar(f"{key}.op", data["op"], lambda v: v in LAYER_OPS, f"one of {', '.join(LAYER_OPS)}")
    kw: dict[str, Any] = {"op": op}
    if op == "linear":
        kw["bias"], kw["bn"] = True, False
    for k, v in data.items():
        if k == "op":
            continue
        if k in ("kernel",):
            kw[k] = r.scalar(f"{key}.{k}", v, *FIELD_CHECKS["kernel"])
        elif k == "stride":
            kw[k] = r.scalar(f"{key}.{k}", v, lambda x: x in STRIDES and _is_int(x), "1 or 2")
        elif k in ("width", "groups"):
            kw[k] = r.scalar(f"{key}.{k}", v, _pos_int, "a positive integer")
        elif k == "act":
            kw[k] = r.scalar(f"{key}.{k}", v, lambda x: x in LAYER_ACTIVATIONS, f"one of {', '.join(LAYER_ACTIVATIONS)}")
        elif k in ("bn", "bias"):
            kw[k] = r.scalar(f"{key}.{k}", v, lambda x: isinstance(x, bool), "true or false")
        else:
            kw[k] = r.scalar(f"{key}.{k}", v, *FIELD_CHECKS[k])
    if op in ("conv", "linear") and "width" not in kw:
        if op == "linear" and is_last:
            kw["width"] = num_classes
        else:
            r.fail(key, f"a '{op}' layer needs 'width'")
    if op == "pool" and len(kw) > 1:
        r.fail(key, "a 'pool' layer takes no options", "write {op: pool}")
    return FixedLayer(**kw)


def _resolutions(r: _Reader, value: Any) -> tuple[int, ...]:
    if isinstance(value, dict):
        r.check_keys("input.resolution", value, {"min", "max", "step"}, required=("min", "max", "step"))
        lo, hi, step = (r.scalar(f"input.resolution.{k}", value[k], _pos_int, "a positive integer")
                        for k in ("min", "max", "step"))
        if lo > hi:
            r.fail("input.resolution", f"min {lo} > max {hi}")
        return tuple(range(lo, hi + 1, step))
    return r.choices("input.resolution", value, _pos_int, "a positive integer (pixels)")


def load_space_file(path: str | Path) -> SearchSpace:
    """Parse and validate one YAML search-space file."""
    path = Path(path)
    r = _Reader(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NasError("file not found", where=str(path), fix="check the path or run `nas spaces list`") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasError(f"malformed YAML{loc}: {problem}", where=str(path),
                       fix="check indentation and brackets on that line") from None
    data = r.check_keys("", data, TOP_KEYS, required=("name", "input", "num_classes", "block", "stem", "stages", "head"))
    name = r.scalar("name", data["name"], lambda v: isinstance(v, str) and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", v),
                    "a lower-case identifier (letters, digits, '-', '_', '.')")
    inp = r.check_keys("input", data["input"], INPUT_KEYS, required=("resolution",))
    resolutions = _resolutions(r, inp["resolution"])
    in_channels = r.scalar("input.channels", inp.get("channels", 3), _pos_int, "a positive integer")
    num_classes = r.scalar("num_classes", data["num_classes"], _pos_int, "a positive integer")
    expand_conv = r.scalar("expand_conv", data.get("expand_conv", "when_expanding"),
                           lambda v: v in ("when_expanding", "always"), "'when_expanding' or 'always'")
    presets_raw = data.get("presets") or {}
    if not isinstance(presets_raw, dict):
        r.fail("presets", "must be a mapping of name -> block fields")
    presets: dict[str, dict] = {}
    for pname, pdata in presets_raw.items():
        pdata = r.check_keys(f"presets.{pname}", pdata, set(BLOCK_FIELDS))
        for f, v in pdata.items():
            r.scalar(f"presets.{pname}.{f}", v, *FIELD_CHECKS[f])
        presets[str(pname)] = {f: normalize_number(v) for f, v in pdata.items()}
    block_default = r.check_keys("block", data["block"], BLOCK_KEYS)

    stem_raw = data["stem"]
    if not isinstance(stem_raw, list) or not stem_raw:
        r.fail("stem", "must be a non-empty list of layers", "e.g. - {op: conv, kernel: 3, stride: 2, width: 32, act: relu6}")
    stem = tuple(_fixed_layer(r, f"stem[{i}]", l, num_classes, False) for i, l in enumerate(stem_raw))
    if any(l.op != "conv" for l in stem):
        r.fail("stem", "stem layers must be 'conv'")

    stages_raw = data["stages"]
    if not isinstance(stages_raw, list) or not stages_raw:
        r.fail("stages", "must be a non-empty list of stages")
    stages = []
    for i, st in enumerate(stages_raw):
        key = f"stages[{i}]"
        st = r.check_keys(key, st, STAGE_KEYS, required=("width", "depth", "stride"))
        widths = r.choices(f"{key}.width", st["width"], _pos_int, "a positive integer (channels)")
        depths = r.choices(f"{key}.depth", st["depth"], _pos_int, "a positive integer (blocks)")
        stride = r.scalar(f"{key}.stride", st["stride"], lambda v: v in STRIDES and _is_int(v), "1 or 2")
        block_over = r.check_keys(f"{key}.block", st.get("block") or {}, BLOCK_KEYS)
        first_over = r.check_keys(f"{key}.first_block", st.get("first_block") or {}, BLOCK_KEYS)
        stage_block = _merge(block_default, block_over)
        block = _block_space(r, f"{key}.block", stage_block, presets)
        first = _block_space(r, f"{key}.first_block", _merge(stage_block, first_over), presets) if first_over else block
        stages.append(StageSpace(widths=widths, depths=depths, stride=stride, block=block, first_block=first))

    head_raw = data["head"]
    if not isinstance(head_raw, list) or not head_raw:
        r.fail("head", "must be a non-empty list of layers", "e.g. conv 1x1, pool, linear")
    head = tuple(_fixed_layer(r, f"head[{i}]", l, num_classes, i == len(head_raw) - 1) for i, l in enumerate(head_raw))
    ops = [l.op for l in head]
    if ops.count("pool") != 1 or any(o != "conv" for o in ops[: ops.index("pool")]) or \
            any(o != "linear" for o in ops[ops.index("pool") + 1:]) or ops[-1] != "linear":
        r.fail("head", f"layers must be conv*, one pool, then linear+ (got {', '.join(ops)})")
    if head[-1].width != num_classes:
        r.fail(f"head[{len(head) - 1}].width", f"the last linear layer has width {head[-1].width}, "
               f"num_classes is {num_classes}", "make them equal")

    native = data.get("native")
    if native is not None:
        r.scalar("native", native, lambda v: v in ("digits", "names"), "'digits' or 'names'")
        if any(len(s.depths) > 1 or len(s.widths) > 1 for s in stages) or len(resolutions) > 1:
            r.fail("native", "a native encoding needs fixed depths, widths and resolution")
        if native == "digits" and ("preset" not in block_default or len(presets) > 10):
            r.fail("native", "'digits' needs block.preset with at most 10 presets (digit = index)")

    space = SearchSpace(
        name=name, description=str(data.get("description", "")).strip(), source=str(data.get("source", "")).strip(),
        path=str(path), resolutions=resolutions, in_channels=in_channels, num_classes=num_classes,
        expand_conv=expand_conv, stem=stem, stages=tuple(stages), head=head, native=native,
        presets=tuple(block_default.get("preset", ()) if isinstance(block_default.get("preset"), list) else ()),
    )
    _check_buildable(r, space)
    return space


def _merge(base: dict, over: dict) -> dict:
    """Stage-level block settings override the space-wide ones key by key."""
    return {**base, **over}


def _check_buildable(r: _Reader, space: SearchSpace) -> None:
    """Reject strides, widths and groups that no model could be built with, before any sampling."""
    total_stride = math.prod(l.stride for l in space.stem) * math.prod(s.stride for s in space.stages)
    smallest = min(space.resolutions)
    if smallest < total_stride:
        r.fail("input.resolution", f"resolution {smallest} is smaller than the total stride {total_stride}",
               "raise the resolution or set some stage strides to 1")
    in_widths = {space.stem[-1].width}
    for i, st in enumerate(space.stages):
        for j, bs in ((0, st.first_block), (1, st.block)):
            if j == 1 and max(st.depths) < 2:
                continue
            cins = in_widths if j == 0 else set(st.widths)
            for alt in bs.alternatives:
                if alt.op == "skip":
                    continue
                ch = dict(alt.choices)
                for g, e, cin, cout in itertools.product(ch["groups"], ch["expand"], cins, st.widths):
                    mid = int(round(cin * e))
                    if g > 1 and (cin % g or cout % g or mid % g):
                        r.fail(f"stages[{i}].block.groups", f"groups={g} does not divide the channels "
                               f"(in {cin}, mid {mid}, out {cout})", "use widths divisible by the group count")
                    if mid < 1:
                        r.fail(f"stages[{i}].block.expand", f"expansion {e} gives {mid} channels from {cin}")
        in_widths = set(st.widths)
    for i, l in enumerate(space.stem + space.head):
        if l.op == "conv" and l.groups > 1:
            part = "stem" if i < len(space.stem) else "head"
            r.fail(f"{part}.groups", "grouped stem/head convolutions are not supported", "remove groups")


# --------------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------------
_LOADED_PATHS: dict[str, str] = {}  # space name -> file, so Architecture.canonical finds user spaces too


def list_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _load_cached(path: str, mtime: float) -> SearchSpace:
    return load_space_file(path)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (``search_spaces/<name>.yaml``) or any YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        path = Path(_LOADED_PATHS.get(text, SPACES_DIR / f"{text}.yaml"))
        if not path.is_file():
            names = list_spaces()
            raise NasError(f"unknown search space '{text}'{_suggest(text, names)}", where="--space",
                           fix=f"use one of {', '.join(names)} or a path to a YAML file")
    if not path.is_file():
        raise NasError("file not found", where=str(path), fix="check the path or run `nas spaces list`")
    space = _load_cached(str(path.resolve()), path.stat().st_mtime)
    if path.parent.resolve() == SPACES_DIR.resolve() and space.name != path.stem:
        raise NasError(f"name '{space.name}' differs from the file name", where=f"{path}: name",
                       fix=f"set name: {path.stem}")
    _LOADED_PATHS.setdefault(space.name, str(path.resolve()))
    return space
