"""The canonical text form of architectures (and the native encodings of benchmark spaces): one grammar,
formatted and parsed here only. Stages are separated by ``/``, blocks by ``-``, a block's tokens by ``_``;
fixed choices are left out. Unknown tokens are errors with a suggestion (timm ignores them; we do not).
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Sequence

from nas.errors import NasError, did_you_mean
from nas.space.baselines import find as find_baseline
from nas.space.arch import ACTIVATIONS, Architecture, Block, Stage, make_divisible, normalize_number


def format_arch(space, arch: Architecture) -> str:
    """Canonical text of an architecture already validated against ``space``."""
    segments = []
    if len(space.resolutions) > 1:
        segments.append(f"r{arch.resolution}")
    for st_space, st in zip(space.stages, arch.stages):
        blocks = "-".join(format_block(st_space.block_space(j), b) for j, b in enumerate(st.blocks))
        segments.append(f"c{st.width}:{blocks}" if len(st_space.widths) > 1 else blocks)
    return "/".join(segments)


def parse_arch(space, text: str) -> Architecture:
    """Canonical text, JSON, the space's native encoding or a baseline's name -> a validated Architecture."""
    raw = str(text).strip()
    where = f"architecture '{_short(raw)}' (space {space.name})"
    named = find_baseline(raw)
    if named is not None:
        if named.space != space.name:
            raise NasError(f"baseline '{named.name}' is an architecture of space '{named.space}', not of "
                           f"'{space.name}'", where=where, fix=f"use space {named.space} (the name implies it)")
        space.validate(named.arch, where=where)
        return named.arch
    if raw.startswith("{") and space.native == "apq" and '"ks"' in raw:
        return parse_apq(space, raw, where)
    if raw.startswith("{"):
        arch = Architecture.from_json(raw, where=where)
        space.validate(arch, where=where)
        return arch
    if space.native and ("/" not in raw) and (("|" in raw) or (space.native == "digits" and raw.isdigit())):
        return parse_native(space, raw, where)
    segments = raw.split("/")
    resolution = space.resolutions[0]
    if len(space.resolutions) > 1:
        head = segments.pop(0) if segments else ""
        m = re.fullmatch(r"r(\d+)", head)
        if not m:
            raise NasError(f"must start with the resolution 'r<pixels>/', got '{head}'", where=where,
                           fix=f"resolution is one of {fmt_choices(space.resolutions)}")
        resolution = int(m.group(1))
        if resolution not in space.resolutions:
            raise NasError(f"resolution {resolution} is not in the space", where=where,
                           fix=f"use one of {fmt_choices(space.resolutions)}")
    if len(segments) != len(space.stages):
        raise NasError(f"has {len(segments)} stage segment(s) separated by '/', the space has "
                       f"{len(space.stages)}", where=where, fix="write one segment per stage, blocks joined by '-'")
    stages = []
    for i, (seg, st_space) in enumerate(zip(segments, space.stages)):
        here = f"{where}: stage {i}"
        width = st_space.widths[0]
        if len(st_space.widths) > 1:
            m = re.fullmatch(r"c(\d+):(.*)", seg)
            if not m:
                raise NasError(f"must start with its width 'c<channels>:', got '{_short(seg)}'", where=here,
                               fix=f"width is one of {fmt_choices(st_space.widths)}")
            width, seg = int(m.group(1)), m.group(2)
            if width not in st_space.widths:
                raise NasError(f"width {width} is not allowed", where=here,
                               fix=f"use one of {fmt_choices(st_space.widths)}")
        block_texts = seg.split("-") if seg else []
        if len(block_texts) not in st_space.depths:
            raise NasError(f"has {len(block_texts)} block(s), depth must be one of "
                           f"{fmt_choices(st_space.depths)}", where=here)
        blocks = tuple(parse_block(st_space.block_space(j), bt, f"{here} block {j}")
                       for j, bt in enumerate(block_texts))
        stages.append(Stage(width=width, blocks=blocks))
    arch = Architecture(space=space.name, resolution=resolution, stages=tuple(stages))
    space.validate(arch, where=where)
    return arch


def parse_native(space, raw: str, where: str) -> Architecture:
    positions = [(i, j) for i, st in enumerate(space.stages) for j in range(st.depths[0])]
    if space.native == "digits":
        tokens = list(raw)
        names = list(space.presets)
        try:
            tokens = [names[int(t)] for t in tokens]
        except IndexError:
            raise NasError(f"digits must be 0..{len(names) - 1} ({', '.join(names)})", where=where) from None
    else:
        tokens = [t.strip() for t in raw.split("|")]
    if len(tokens) != len(positions):
        raise NasError(f"native encoding has {len(tokens)} layer(s), the space has {len(positions)}",
                       where=where)
    stages: list[list[Block]] = [[] for _ in space.stages]
    for (i, j), tok in zip(positions, tokens):
        bs = space.stages[i].block_space(j)
        alt = next((a for a in bs.alternatives if a.name == tok), None)
        if alt is None:
            names = [a.name for a in bs.alternatives]
            raise NasError(f"layer {len(sum(stages, []))}: unknown op '{tok}'{did_you_mean(tok, names)}",
                           where=where, fix=f"ops are {', '.join(names)}")
        stages[i].append(Block(op=alt.op, **{f: v[0] for f, v in alt.choices}))
    arch = Architecture(space=space.name, resolution=space.resolutions[0],
                        stages=tuple(Stage(width=st.widths[0], blocks=tuple(b))
                                     for st, b in zip(space.stages, stages)))
    space.validate(arch, where=where)
    return arch


def to_native(space, arch: Architecture) -> str | None:
    """The benchmark's own encoding (digits, op names or APQ's JSON spec), or None if the space has none."""
    if not space.native:
        return None
    if space.native == "apq":
        return to_apq(space, arch)
    names = []
    for st_space, st in zip(space.stages, arch.stages):
        for j, b in enumerate(st.blocks):
            names.append(next(a.name for a in st_space.block_space(j).alternatives if a.contains(b)))
    if space.native == "digits":
        return "".join(str(space.presets.index(n)) for n in names)
    return "|".join(names)


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
    ("dw_wbits", re.compile(r"dw(\d+)"), int),
    ("dw_abits", re.compile(r"da(\d+)"), int),
)


def _token(field_name: str, value: Any) -> str:
    if field_name == "act":
        return str(value)
    prefix = {"kernel": "k", "expand": "e", "groups": "g", "se": "se", "wbits": "w", "abits": "a", "dw_wbits": "dw",
              "dw_abits": "da"}[field_name]
    return f"{prefix}{int(value) if isinstance(value, bool) else value}"


def format_block(bs, block: Block) -> str:
    return "_".join([block.op] + [_token(f, getattr(block, f)) for f in bs.varying_fields(block.op)])


def parse_block(bs, text: str, where: str) -> Block:
    """One block's text -> Block. Remembered per (block space, text): a study repeats the same few hundred
    block texts over thousands of trials, and `nas pareto` parses every trial. A bad text is not remembered,
    so its error is raised again with this ``where``."""
    try:
        return _parse_block_remembered(bs, text)
    except NasError:
        return _parse_block(bs, text, where)


@lru_cache(maxsize=1 << 16)
def _parse_block_remembered(bs, text: str) -> Block:
    return _parse_block(bs, text, "block")


def _parse_block(bs, text: str, where: str) -> Block:
    tokens = text.split("_")
    op = tokens[0]
    if op not in {a.op for a in bs.alternatives}:
        ops = sorted({a.op for a in bs.alternatives})
        raise NasError(f"'{text}' must start with the op ({', '.join(ops)}), got '{op}'{did_you_mean(op, ops)}",
                       where=where)
    given: dict[str, Any] = {}
    for tok in tokens[1:]:
        name, value = _read_token(tok)
        if name is None:
            raise NasError(f"unknown token '{tok}' in '{text}'{did_you_mean(tok, _example_tokens(bs))}", where=where,
                           fix="tokens are k<kernel> e<expansion> g<groups> se0/se1 "
                               f"{'/'.join(ACTIVATIONS)} w<weight bits> a<activation bits> (point-wise convs; "
                               "dw<bits> da<bits>: the depth-wise conv's, where the space lets it choose)")
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


def _example_tokens(bs) -> list[str]:
    out = []
    for a in bs.alternatives:
        for f, vals in a.choices:
            out.extend(_token(f, v) for v in vals)
    return out


def _format_example(bs) -> str:
    a = bs.alternatives[0]
    return format_block(bs, Block(op=a.op, **{f: v[0] for f, v in a.choices}))


def fmt_choices(values: Sequence[Any]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."





# --------------------------------------------------------------------------------------------------------
# APQ's architecture spec (mit-han-lab/apq utils/converter.py): 21 per-layer lists + 6 stage depths
# --------------------------------------------------------------------------------------------------------
APQ_KEYS = {"ks": "kernel", "e": "expand", "pw_w_bits_setting": "wbits", "pw_a_bits_setting": "abits",
            "dw_w_bits_setting": "dw_wbits", "dw_a_bits_setting": "dw_abits"}
APQ_OPTIONAL = {"wid", "d"}  # APQ writes wid = None; d is required (checked below)


def apq_positions(space) -> list[tuple[int, int]]:
    """(stage, block) of APQ's layer i: stages after the fixed first one, ``max depth`` slots each."""
    return [(i, j) for i, st in enumerate(space.stages) if i > 0 for j in range(max(st.depths))]


def parse_apq(space, raw: str, where: str) -> Architecture:
    """APQ's JSON spec -> Architecture. A layer is present when its slot is below its stage's depth ``d``;
    mid channels follow APQ's rule ``make_divisible(e * cin, 8)`` (so 4.33 and 4.333... both work)."""
    import json

    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise NasError(f"not valid JSON ({exc.msg} at char {exc.pos})", where=where) from None
    unknown = set(spec) - set(APQ_KEYS) - APQ_OPTIONAL
    missing = [k for k in list(APQ_KEYS) + ["d"] if k not in spec]
    if unknown or missing:
        raise NasError(f"APQ spec: {'unknown key(s) ' + str(sorted(unknown)) if unknown else ''}"
                       f"{'; ' if unknown and missing else ''}{'missing key(s) ' + str(missing) if missing else ''}",
                       where=where, fix=f"keys are {', '.join(list(APQ_KEYS) + ['d'])} (wid optional)")
    positions = apq_positions(space)
    searchable = space.stages[1:]
    for key in APQ_KEYS:
        if not isinstance(spec[key], list) or len(spec[key]) != len(positions):
            raise NasError(f"APQ spec: '{key}' must be a list of {len(positions)} values", where=where)
    d = spec["d"]
    if not isinstance(d, list) or len(d) != len(searchable):
        raise NasError(f"APQ spec: 'd' must list {len(searchable)} stage depths", where=where)
    stages = [Stage(width=space.stages[0].widths[0], blocks=(space.stages[0].block.blocks()[0],))]
    cin = space.stages[0].widths[0]
    layer = 0
    for s, (st, depth) in enumerate(zip(searchable, d)):
        # as APQ reads d: slot j of a stage is present when j < d, so a d beyond the stage's slots means all
        # (APQ's own random specs give the one-slot last stage d in {2, 3, 4})
        present = min(depth, max(st.depths)) if isinstance(depth, int) and not isinstance(depth, bool) else None
        if present not in st.depths:
            raise NasError(f"APQ spec: d[{s}] = {depth!r}: stage {s + 1} holds {fmt_choices(st.depths)} layers",
                           where=where)
        blocks = []
        for j in range(max(st.depths)):
            if j < present:
                blocks.append(_apq_block(st.block_space(j), spec, layer, cin if j == 0 else st.widths[0], where))
            layer += 1
        stages.append(Stage(width=st.widths[0], blocks=tuple(blocks)))
        cin = st.widths[0]
    arch = Architecture(space=space.name, resolution=space.resolutions[0], stages=tuple(stages))
    space.validate(arch, where=where)
    return arch


def _apq_block(bs, spec: dict, i: int, cin: int, where: str) -> Block:
    values = {f: spec[k][i] for k, f in APQ_KEYS.items()}
    e = values["expand"]
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
        raise NasError(f"APQ spec: e[{i}] = {e!r} is not a finite number", where=where)
    mid = make_divisible(e * cin, 8)
    alt = next((a for a in bs.alternatives if a.contains(Block(op=a.op, **{**{f: v[0] for f, v in a.choices},
                                                                         "kernel": values["kernel"]}))), None)
    if alt is None:
        raise NasError(f"APQ spec: layer {i}: ks = {values['kernel']!r} is outside the space", where=where,
                       fix=f"allowed here: {bs.describe()}")
    allowed = alt.allowed("expand")
    match = [x for x in allowed if int(round(cin * x)) == mid]
    if not match:
        raise NasError(f"APQ spec: layer {i}: e = {e!r} gives {mid} mid channels from {cin}, not one of "
                       f"{fmt_choices(sorted({int(round(cin * x)) for x in allowed}))}", where=where)
    values["expand"] = match[0]
    block = Block(op=alt.op, **{**{f: v[0] for f, v in alt.choices}, **values})
    if not bs.contains(block):
        bad = [f"{k}[{i}] = {spec[k][i]!r}" for k, f in APQ_KEYS.items()
               if not any(getattr(block, f) in dict(a.choices).get(f, ()) for a in bs.alternatives)]
        if bad:
            raise NasError(f"APQ spec: layer {i}: {', '.join(bad)} is outside the space", where=where,
                           fix=f"allowed here: {bs.describe()}")
        raise NasError(f"APQ spec: layer {i}: ks[{i}] = {block.kernel} with dw_a_bits_setting[{i}] = "
                       f"{block.dw_abits} is outside the space (no such depth-wise conv in APQ's table)",
                       where=where, fix=f"allowed here: {bs.describe()}")
    return block


def to_apq(space, arch: Architecture) -> str:
    """APQ's JSON spec of an architecture; absent layers are written as APQ's converter writes them
    (ks 3, the smallest e, 8 bits)."""
    import json

    out: dict[str, list] = {k: [] for k in APQ_KEYS}
    out["d"] = [st.depth for st in arch.stages[1:]]
    cin = arch.stages[0].width
    for st_space, st in zip(space.stages[1:], arch.stages[1:]):
        for j in range(max(st_space.depths)):
            if j < st.depth:
                b = st.blocks[j]
                vals = {"kernel": b.kernel, "expand": b.expand, "wbits": b.wbits, "abits": b.abits,
                        "dw_wbits": b.dw_wbits, "dw_abits": b.dw_abits}
            else:
                smallest = min(st_space.block_space(j).alternatives[0].allowed("expand"))
                vals = {"kernel": 3, "expand": smallest, "wbits": 8, "abits": 8, "dw_wbits": 8, "dw_abits": 8}
            for k, f in APQ_KEYS.items():
                out[k].append(vals[f])
        cin = st.width
    del cin
    return json.dumps(out, separators=(",", ":"))
