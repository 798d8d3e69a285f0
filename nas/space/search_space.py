"""The SearchSpace value and its parts: what each block position allows, sampling (define-by-run, with any
``choose(name, options)`` callback: a seeded RNG or an Optuna trial), the canonical text form (delegated to
:mod:`nas.space.grammar`) and validation of Architectures. Built from YAML by :mod:`nas.space.schema`.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Callable, Sequence

from nas.errors import NasError
from nas.space import grammar
from nas.space.arch import IR_FIELDS, Architecture, Block, Stage

ROLE_BITS = ("wbits", "abits", "dw_wbits", "dw_abits")

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
            inner = ", ".join(f"{f}={grammar.fmt_choices(v) if len(v) > 1 else v[0]}" for f, v in a.choices)
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
    table_classes: int = 0  # with_num_classes: the classifier width the space's latency tables measured (0: same)

    # --- size -------------------------------------------------------------------------------------------
    def count(self) -> int:
        """Exact number of distinct architectures."""
        return len(self.resolutions) * math.prod(s.count() for s in self.stages)

    def log10_count(self) -> float:
        return math.log10(self.count())

    def with_num_classes(self, num_classes: int) -> "SearchSpace":
        """This space with a classifier of ``num_classes`` outputs (a user's data brings its own class count)."""
        if num_classes < 1:
            raise NasError(f"a classifier needs at least one output, got {num_classes}", argument="num_classes")
        if num_classes == self.num_classes:
            return self
        last = self.head[-1]
        if last.op != "linear" or last.width != self.num_classes:
            raise NasError(f"space '{self.name}' does not end in a classifier of num_classes outputs",
                           argument="num_classes", fix="end its head with {op: linear} (no width)")
        return replace(self, num_classes=num_classes, head=(*self.head[:-1], replace(last, width=num_classes)),
                       table_classes=self.table_classes or self.num_classes)

    @property
    def structure_hash(self) -> str:
        """What the space's networks are, without its name, description, source, path or native encoding:
        sha256 (first 16 hex) of its resolutions, input channels, expand rule, stem, stages and head, with the
        classifier as its latency tables measured it (a :meth:`with_num_classes` copy hashes as its original).
        A renamed copy of a file hashes the same; a file that keeps a name but changes a layer does not. Latency
        tables key the layers they price per space (fixed groups, precision boundaries) by it."""
        import hashlib

        space = self
        if self.table_classes:
            last = self.head[-1]
            space = replace(self, num_classes=self.table_classes,
                            head=(*self.head[:-1], replace(last, width=self.table_classes)))
        parts = (space.resolutions, space.in_channels, space.num_classes, space.expand_conv, space.stem,
                 space.stages, space.head, space.presets)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    @property
    def searches_bits(self) -> bool:
        """Whether a block may run below 32 bits: the spaces whose default score must see quantization."""
        return any(isinstance(v, int) and v < 32 for stage in self.stages for alt in stage.block.alternatives
                   for name, values in alt.choices if name in ROLE_BITS for v in values)

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

    def choices(self, arch: Architecture) -> dict[str, Any]:
        """The answers :meth:`sample` asks for to draw ``arch``: ``self.sample(lambda n, _: c[n]) == arch``.

        What a sampler stores as a trial's parameters, and the inverse a sampler needs to propose a given
        architecture."""
        out: dict[str, Any] = {}

        def put(name: str, options: Sequence[Any], value: Any) -> None:
            if len(options) > 1:
                out[name] = value

        put("resolution", self.resolutions, arch.resolution)
        for i, (st, ast) in enumerate(zip(self.stages, arch.stages)):
            put(f"s{i}.width", st.widths, ast.width)
            put(f"s{i}.depth", st.depths, ast.depth)
            for j, b in enumerate(ast.blocks):
                bs = st.block_space(j)
                names = [a.name for a in bs.alternatives]
                alt = next(a for a in bs.alternatives if a.contains(b))
                put(f"s{i}.b{j}.op", names, alt.name)
                prefix = f"s{i}.b{j}." + (f"{alt.name}." if len(names) > 1 else "")
                for f, vals in alt.choices:
                    put(prefix + f, vals, getattr(b, f))
        return out

    def choice_options(self) -> dict[str, tuple]:
        """Every choice :meth:`sample` can ask for (at any depth, any alternative) and its options, in order."""
        out: dict[str, tuple] = {}

        def put(name: str, options: Sequence[Any]) -> None:
            if len(options) > 1:
                out[name] = tuple(options)

        put("resolution", self.resolutions)
        for i, st in enumerate(self.stages):
            put(f"s{i}.width", st.widths)
            put(f"s{i}.depth", st.depths)
            for j in range(max(st.depths)):
                bs = st.block_space(j)
                names = [a.name for a in bs.alternatives]
                put(f"s{i}.b{j}.op", names)
                for alt in bs.alternatives:
                    prefix = f"s{i}.b{j}." + (f"{alt.name}." if len(names) > 1 else "")
                    for f, vals in alt.choices:
                        put(prefix + f, vals)
        return out

    def random(self, rng: random.Random) -> Architecture:
        return self.sample(lambda _name, options: options[rng.randrange(len(options))])

    def sample_many(self, n: int, seed: int = 0) -> list[Architecture]:
        rng = random.Random(seed)
        return [self.random(rng) for _ in range(n)]

    # --- canonical text (nas.space.grammar) ----------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        """The canonical text form: every open choice spelled out, fixed choices left out."""
        self.validate(arch)
        return grammar.format_arch(self, arch)

    def parse(self, text: str) -> Architecture:
        """Canonical text, JSON, or the space's native encoding -> a validated Architecture."""
        return grammar.parse_arch(self, text)

    def to_native(self, arch: Architecture) -> str | None:
        """The benchmark's own encoding (digits or op names), or None if the space has none."""
        return grammar.to_native(self, arch)

    # --- validation -------------------------------------------------------------------------------------
    def validate(self, arch: Architecture, *, where: str | None = None) -> None:
        where = where or f"architecture in space {self.name}"
        if arch.space != self.name:
            raise NasError(f"belongs to space '{arch.space}', not '{self.name}'", where=where,
                           fix=f"use space {arch.space}")
        if arch.resolution not in self.resolutions:
            raise NasError(f"resolution {arch.resolution} is not allowed", where=where,
                           fix=f"use one of {grammar.fmt_choices(self.resolutions)}")
        if len(arch.stages) != len(self.stages):
            raise NasError(f"has {len(arch.stages)} stages, the space has {len(self.stages)}", where=where)
        for i, (st_space, st) in enumerate(zip(self.stages, arch.stages)):
            if st.width not in st_space.widths:
                raise NasError(f"stage {i}: width {st.width} is not allowed", where=where,
                               fix=f"use one of {grammar.fmt_choices(st_space.widths)}")
            if st.depth not in st_space.depths:
                raise NasError(f"stage {i}: depth {st.depth} is not allowed", where=where,
                               fix=f"use one of {grammar.fmt_choices(st_space.depths)}")
            for j, b in enumerate(st.blocks):
                bs = st_space.block_space(j)
                if not bs.contains(b):
                    raise NasError(f"stage {i} block {j}: {b.to_dict()} is outside the space", where=where,
                                   fix=f"allowed here: {bs.describe()}")


