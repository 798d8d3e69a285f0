"""Search spaces as data: parse and validate a ``search_spaces/*.yaml`` file into a SearchSpace.

A list in the YAML means "choose one", a scalar means "fixed". Every error names the file, the key and what
is allowed.
"""
from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any, Callable, Sequence


from nas.bits import ACT_BITS, WEIGHT_BITS
from nas.errors import NasError, did_you_mean
from nas.fileio import parse_yaml, read_yaml
from nas.space.arch import (ACTIVATIONS, BLOCK_DEFAULTS, BLOCK_FIELDS, IR_FIELDS, LAYER_ACTIVATIONS, OPS,
                            ROLE_FIELDS, STRIDES, normalize_number)
from nas.space.search_space import Alternative, BlockSpace, FixedLayer, SearchSpace, StageSpace

TOP_KEYS = {"name", "description", "source", "input", "num_classes", "expand_conv", "presets", "block",
            "stem", "stages", "head", "native"}
INPUT_KEYS = {"resolution", "channels"}
BLOCK_KEYS = set(BLOCK_FIELDS) | {"preset"}
STAGE_KEYS = {"width", "depth", "stride", "block", "first_block"}
LAYER_KEYS = {"op", "kernel", "stride", "width", "act", "groups", "bn", "bias", "wbits", "abits"}
LAYER_OPS = ("conv", "pool", "linear")
# Sane bounds (far above any published mobile space): beyond them a space cannot be built, counted or timed in
# reasonable memory and time, so a typo such as depth: 100000 is an error naming the key, not a crash later.
LIMITS = {"resolution": (4096, "pixels"), "channels": (1024, "channels"), "num_classes": (1_000_000, "classes"),
          "stages": (64, "stages"), "depth": (64, "blocks per stage"), "width": (16384, "channels"),
          "kernel": (31, ""), "expand": (64, "")}


# --------------------------------------------------------------------------------------------------------
# YAML reading
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
            self.fail(f"{key}.{u}" if key else u, f"unknown key '{u}'{did_you_mean(u, sorted(allowed))}",
                      f"allowed keys here: {', '.join(sorted(allowed))}")
        for r in required:
            if r not in data:
                self.fail(key, f"missing required key '{r}'")
        return data

    def choices(self, key: str, value: Any, check: Callable[[Any], bool], what: str, limit: str | None = None
                ) -> tuple:
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
            self.within(key, v, limit)
            out.append(v)
        return tuple(out)

    def scalar(self, key: str, value: Any, check: Callable[[Any], bool], what: str, limit: str | None = None
               ) -> Any:
        if isinstance(value, (list, dict)) or not check(value):
            self.fail(key, f"invalid value {value!r}", f"must be {what}")
        self.within(key, value, limit)
        return value

    def within(self, key: str, value: Any, limit: str | None) -> None:
        """A NasError naming the key when ``value`` exceeds the sane bound ``LIMITS[limit]``."""
        if limit is not None and value > LIMITS[limit][0]:
            bound, unit = LIMITS[limit]
            self.fail(key, f"{value!r} is above the limit of {bound}{' ' + unit if unit else ''}",
                      f"use at most {bound} (a sane bound; larger spaces cannot be built, counted or timed)")


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
def _field_limit(field: str) -> str | None:
    return field if field in LIMITS else None


FIELD_CHECKS["dw_wbits"] = FIELD_CHECKS["wbits"]
FIELD_CHECKS["dw_abits"] = FIELD_CHECKS["abits"]


def _block_space(r: _Reader, key: str, spec: dict, presets: dict[str, dict]) -> BlockSpace:
    spec = {**BLOCK_DEFAULTS, **spec}
    choices = {f: r.choices(f"{key}.{f}", v, *FIELD_CHECKS[f], limit=_field_limit(f)) for f, v in spec.items()
               if f != "preset"}
    alternatives = []
    if "preset" in spec:
        names = r.choices(f"{key}.preset", spec["preset"], lambda v: isinstance(v, str), "a preset name")
        for n in names:
            if n not in presets:
                r.fail(f"{key}.preset", f"unknown preset '{n}'{did_you_mean(n, list(presets))}",
                       f"define it under 'presets:' or use one of {', '.join(presets) or '(none defined)'}")
            op = presets[n]["op"][0] if "op" in presets[n] else BLOCK_DEFAULTS["op"]
            merged = {f: presets[n][f] if f in presets[n] else choices.get(f, ()) for f in IR_FIELDS}
            alternatives.append(_alternative(r, f"presets.{n}", n, op, merged))
    else:
        for op in choices["op"]:
            alternatives.append(_alternative(r, key, op, op, choices))
    return BlockSpace(tuple(alternatives))


def _alternative(r: _Reader, key: str, name: str, op: str, choices: dict) -> Alternative:
    if op == "skip":
        return Alternative(name=name, op=op, choices=())
    for f in IR_FIELDS:
        if not choices.get(f) and f not in ROLE_FIELDS:
            r.fail(key, f"an 'ir' block needs '{f}'", f"add {f}: <value or list> to the block")
    return Alternative(name=name, op=op, choices=tuple((f, tuple(choices[f])) for f in IR_FIELDS if choices.get(f)))


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
            kw[k] = r.scalar(f"{key}.{k}", v, *FIELD_CHECKS["kernel"], limit="kernel")
        elif k == "stride":
            kw[k] = r.scalar(f"{key}.{k}", v, lambda x: x in STRIDES and _is_int(x), "1 or 2")
        elif k in ("width", "groups"):
            kw[k] = r.scalar(f"{key}.{k}", v, _pos_int, "a positive integer", limit="width")
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
        lo, hi, step = (r.scalar(f"input.resolution.{k}", value[k], _pos_int, "a positive integer", limit="resolution")
                        for k in ("min", "max", "step"))
        if lo > hi:
            r.fail("input.resolution", f"min {lo} > max {hi}")
        return tuple(range(lo, hi + 1, step))
    return r.choices("input.resolution", value, _pos_int, "a positive integer (pixels)", limit="resolution")


def load_space_file(path: str | Path, *, text: str | None = None) -> SearchSpace:
    """Parse and validate one YAML search-space file; with ``text``, that YAML (e.g. as a study stored it), errors
    naming ``path`` as where it came from."""
    path = Path(path)
    r = _Reader(path)
    raw = (read_yaml(path, not_found_fix="check the path or run `nas spaces list`") if text is None
           else parse_yaml(text, where=str(path)))
    data = r.check_keys("", raw, TOP_KEYS, required=("name", "input", "num_classes", "block", "stem", "stages", "head"))
    name = r.scalar("name", data["name"], lambda v: isinstance(v, str) and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", v),
                    "a lower-case identifier (letters, digits, '-', '_', '.')")
    inp = r.check_keys("input", data["input"], INPUT_KEYS, required=("resolution",))
    resolutions = _resolutions(r, inp["resolution"])
    in_channels = r.scalar("input.channels", inp.get("channels", 3), _pos_int, "a positive integer", limit="channels")
    num_classes = r.scalar("num_classes", data["num_classes"], _pos_int, "a positive integer", limit="num_classes")
    expand_conv = r.scalar("expand_conv", data.get("expand_conv", "when_expanding"),
                           lambda v: v in ("when_expanding", "always"), "'when_expanding' or 'always'")
    presets = _presets(r, data.get("presets") or {})
    block_default = r.check_keys("block", data["block"], BLOCK_KEYS)
    stem = _stem(r, data["stem"], num_classes)
    stages = _stages(r, data["stages"], block_default, presets)
    head = _head(r, data["head"], num_classes)
    native = _native(r, data.get("native"), stages, resolutions, block_default, presets)
    space = SearchSpace(
        name=name, description=str(data.get("description", "")).strip(), source=str(data.get("source", "")).strip(),
        path=str(path), resolutions=resolutions, in_channels=in_channels, num_classes=num_classes,
        expand_conv=expand_conv, stem=stem, stages=stages, head=head, native=native,
        presets=tuple(block_default.get("preset", ()) if isinstance(block_default.get("preset"), list) else ()),
    )
    _check_buildable(r, space)
    return space


def _presets(r: _Reader, raw: Any) -> dict[str, dict]:
    if not isinstance(raw, dict):
        r.fail("presets", "must be a mapping of name -> block fields")
    presets: dict[str, dict] = {}
    for pname, pdata in raw.items():
        pdata = r.check_keys(f"presets.{pname}", pdata, set(BLOCK_FIELDS))
        presets[str(pname)] = {f: r.choices(f"presets.{pname}.{f}", v, *FIELD_CHECKS[f], limit=_field_limit(f))
                               for f, v in pdata.items()}
        if len(presets[str(pname)].get("op", ("ir",))) > 1:
            r.fail(f"presets.{pname}.op", "a preset has one op", "define one preset per op")
    return presets


def _stem(r: _Reader, raw: Any, num_classes: int) -> tuple[FixedLayer, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("stem", "must be a non-empty list of layers", "e.g. - {op: conv, kernel: 3, stride: 2, width: 32, act: relu6}")
    stem = tuple(_fixed_layer(r, f"stem[{i}]", l, num_classes, False) for i, l in enumerate(raw))
    if any(l.op != "conv" for l in stem):
        r.fail("stem", "stem layers must be 'conv'")
    return stem


def _stages(r: _Reader, raw: Any, block_default: dict, presets: dict[str, dict]) -> tuple[StageSpace, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("stages", "must be a non-empty list of stages")
    if len(raw) > LIMITS["stages"][0]:
        r.fail("stages", f"{len(raw)} stages are above the limit of {LIMITS['stages'][0]}",
               "use fewer stages (a sane bound; larger spaces cannot be built, counted or timed)")
    stages = []
    for i, st in enumerate(raw):
        key = f"stages[{i}]"
        st = r.check_keys(key, st, STAGE_KEYS, required=("width", "depth", "stride"))
        widths = r.choices(f"{key}.width", st["width"], _pos_int, "a positive integer (channels)", limit="width")
        depths = r.choices(f"{key}.depth", st["depth"], _pos_int, "a positive integer (blocks)", limit="depth")
        stride = r.scalar(f"{key}.stride", st["stride"], lambda v: v in STRIDES and _is_int(v), "1 or 2")
        block_over = r.check_keys(f"{key}.block", st.get("block") or {}, BLOCK_KEYS)
        first_over = r.check_keys(f"{key}.first_block", st.get("first_block") or {}, BLOCK_KEYS)
        stage_block = _merge(block_default, block_over)
        block = _block_space(r, f"{key}.block", stage_block, presets)
        first = _block_space(r, f"{key}.first_block", _merge(stage_block, first_over), presets) if first_over else block
        stages.append(StageSpace(widths=widths, depths=depths, stride=stride, block=block, first_block=first))
    return tuple(stages)


def _head(r: _Reader, raw: Any, num_classes: int) -> tuple[FixedLayer, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("head", "must be a non-empty list of layers", "e.g. conv 1x1, pool, linear")
    head = tuple(_fixed_layer(r, f"head[{i}]", l, num_classes, i == len(raw) - 1) for i, l in enumerate(raw))
    ops = [l.op for l in head]
    if ops.count("pool") != 1 or any(o != "conv" for o in ops[: ops.index("pool")]) or \
            any(o != "linear" for o in ops[ops.index("pool") + 1:]) or ops[-1] != "linear":
        r.fail("head", f"layers must be conv*, one pool, then linear+ (got {', '.join(ops)})")
    if head[-1].width != num_classes:
        r.fail(f"head[{len(head) - 1}].width", f"the last linear layer has width {head[-1].width}, "
               f"num_classes is {num_classes}", "make them equal")
    return head


def _native(r: _Reader, native: Any, stages, resolutions, block_default: dict, presets: dict) -> str | None:
    if native is None:
        return None
    r.scalar("native", native, lambda v: v in ("digits", "names", "apq"), "'digits', 'names' or 'apq'")
    if native == "apq":
        if (any(len(s.widths) > 1 for s in stages) or len(resolutions) > 1 or len(stages) < 2
                or stages[0].depths != (1,) or len(stages[0].block.blocks()) != 1):
            r.fail("native", "'apq' (APQ's spec) needs fixed widths and resolution and a fixed one-block first stage")
        return native
    if any(len(s.depths) > 1 or len(s.widths) > 1 for s in stages) or len(resolutions) > 1:
        r.fail("native", "a native encoding needs fixed depths, widths and resolution")
    if native == "digits" and ("preset" not in block_default or len(presets) > 10):
        r.fail("native", "'digits' needs block.preset with at most 10 presets (digit = index)")
    return native


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


