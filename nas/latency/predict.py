"""LatencyModel: anything that maps an Architecture to milliseconds with a per-layer breakdown.

``LatencyModel`` is the small base class the search codes against (``predict``, ``check_covers``,
``identity``). ``TableLatencyModel`` is the measured-table kind: the sum of the table's entries over the
architecture's layers (a lookup by signature tuple in a dict), optionally corrected by a calibration fitted
by ``validate(..., calibrate=True)`` (see :class:`Calibration`). Other kinds (e.g. a table transferred to a new
device, :mod:`nas.latency.transfer.model`) subclass ``LatencyModel``.

A missing signature is an error listing what is missing and the ``nas lut profile`` command that measures it;
``allow_estimate=True`` fills it from :mod:`nas.latency.estimate` instead and flags the row (its energy too, by
the same estimator fitted on the table's energy rows, where the table has energy). Never 0, never a constant.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import dataclasses
import math
from dataclasses import dataclass

from nas.errors import NasError
from nas.latency.calibration import Calibration
from nas.latency.signatures import check_dtype, deploy, deploy_signature, space_boundaries, space_signatures
from nas.latency.table import SCHEMA_VERSION, Entry, LatencyTable, signature_key
from nas.layers import LayerSpec, boundaries as layer_boundaries, plan
from nas.space import SearchSpace
from nas.space.arch import Architecture

_SHOW_MISSING = 6
# an identity skip (a layer that runs nothing) where the table has no row: a table may price it (HW-NAS-Bench
# published a measured identity op), the profiler does not measure it (it would time the per-call overhead)
IDENTITY = Entry(0.0, note="identity: runs nothing")


@dataclass(frozen=True, slots=True)
class LayerLatency:
    """One row of a prediction's breakdown."""

    name: str
    key: str
    ms: float
    estimated: bool = False
    energy_mJ: float | None = None
    note: str = ""  # how a row not measured as such was priced (a classifier resized for a user's classes)


@dataclass
class LatencyPrediction:
    latency_ms: float
    energy_mJ: float | None
    rows: list[LayerLatency]
    estimated: bool
    calibrated: bool = False
    raw_ms: float = 0.0  # the plain table sum, before calibration

    @property
    def notes(self) -> list[str]:
        """What was priced by a rule rather than read from the table (e.g. a classifier scaled to the data's
        class count); empty when every row is a measurement."""
        return [f"{r.name}: {r.note}" for r in self.rows if r.note]

    def to_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "energy_mJ": self.energy_mJ, "estimated": self.estimated,
                "calibrated": self.calibrated, "raw_ms": self.raw_ms, "notes": self.notes,
                "rows": [{"name": r.name, "key": r.key, "ms": r.ms, "estimated": r.estimated, "note": r.note}
                         for r in self.rows]}


def check_positive(pred: LatencyPrediction, device: str, where: str, space: SearchSpace, arch: Architecture, *,
                   fix: str) -> None:
    """A prediction's latency (and energy, where it has one) must be a positive finite number: anything else is
    an error naming the model and the architecture, never a price a budget or an objective could take."""
    for name, value in (("latency", pred.latency_ms), ("energy", pred.energy_mJ)):
        if value is not None and not (math.isfinite(value) and value > 0):
            unit = "ms" if name == "latency" else "mJ"
            raise NasError(f"latency model '{device}' predicts {name} {value:.6g} {unit} for {space.format(arch)} "
                           f"({space.name}): not a positive number", where=where, fix=fix)


class LatencyModel(ABC):
    """What the search needs from any latency source."""

    device: str

    @abstractmethod
    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False,
                calibrated: bool = True) -> LatencyPrediction:
        """Latency (and energy where known) of ``arch`` with a per-layer breakdown.

        A layer the model cannot price is an error listing every such layer, or, with ``allow_estimate=True``,
        an estimated row (flagged, and the prediction's ``estimated`` set). ``calibrated=False`` leaves out an
        end-to-end correction where the model has one; the prediction's ``calibrated`` says whether one was
        applied."""

    @abstractmethod
    def check_covers(self, space: SearchSpace) -> None:
        """Raise a NasError naming what is missing if some architecture of ``space`` cannot be predicted."""

    @property
    @abstractmethod
    def identity(self) -> dict:
        """Plain dict (device, file, schema version, content hash, calibrated, ...) to store with results."""


# --------------------------------------------------------------------------------------------------------
# measured table
# --------------------------------------------------------------------------------------------------------
class TableLatencyModel(LatencyModel):
    """Sum of a measured table's entries over an architecture's layers, at a deployment dtype."""

    def __init__(self, table: LatencyTable, *, dtype: str | None = None, use_calibration: bool = True,
                 boundaries: bool = True):
        self.table = table
        self.device = table.device
        self.dtype = check_dtype(dtype)
        # precision boundaries are priced for the spaces whose boundary rows the table holds, at the layers' own
        # bits (dtype arch) unless boundaries=False (to compare)
        self.boundaries = set(table.boundary_spaces()) if boundaries and self.dtype == "arch" else set()
        self._estimator = None
        self._energy_estimator = None
        self._groups: dict[str, list] = {}  # space name -> the table's fixed groups (read once, not per predict)
        self._listed: dict[tuple, str | None] = {}  # (structure hash, name) -> the listed space it is
        self.calibration: Calibration | None = None
        cal = (table.meta.get("calibration") or {}).get(self.dtype) if use_calibration else None
        if cal:
            self.calibration = Calibration.from_dict(cal, where=f"{table.meta_path}: calibration.{self.dtype}")

    # --- identity ----------------------------------------------------------------------------------------
    @property
    def identity(self) -> dict:
        ident = {"kind": "table", "device": self.device, "table": str(self.table.csv_path or ""),
                 "schema_version": SCHEMA_VERSION, "content_hash": self.table.content_hash(),
                 "dtype": self.dtype, "calibrated": self.calibration is not None,
                 "boundaries": sorted(self.boundaries)}
        if self.calibration is not None:
            c = self.calibration
            ident["calibration"] = {"offset_ms": c.offset_ms, "scale": c.scale, "per_layer_ms": c.per_layer_ms,
                                    "n": c.n, "date": c.date}
        return ident

    # --- prediction -------------------------------------------------------------------------------------
    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False,
                calibrated: bool = True) -> LatencyPrediction:
        return self.predict_layers(plan(arch, space), space, arch, allow_estimate=allow_estimate,
                                   calibrated=calibrated)

    def predict_layers(self, specs: list[LayerSpec], space: SearchSpace, arch: Architecture, *,
                       allow_estimate: bool = False, calibrated: bool = True) -> LatencyPrediction:
        """:meth:`predict` on the architecture's plan when the caller has it already (a sampler screening
        candidates plans each once)."""
        r = arch.resolution
        rows: list[LayerLatency] = []
        computes: list[bool] = []
        missing: list[LayerSpec] = []
        energy: float | None = 0.0
        estimated = False
        for name, key, group in self._items(specs, self.table_space(space)):
            ms, e, row_estimated, note = 0.0, 0.0, False, ""
            for spec in group:
                if isinstance(spec, Entry):  # a fixed group's published constant
                    entry = spec
                    if space.table_classes and name.split("+")[-1] == specs[-1].name:
                        note = f"priced at the table's {space.table_classes}-class head (a fixed group)"
                else:
                    entry = self.table.lookup(deploy_signature(spec.signature, self.dtype), r)
                    if entry is None and not spec.computes:
                        entry = IDENTITY  # an identity skip runs nothing: 0 ms where the table has no row
                    if entry is None and spec is specs[-1] and space.table_classes:
                        entry, note = self._resized_classifier(spec, space.table_classes, r)
                if entry is None:
                    if not allow_estimate:
                        missing.append(spec)
                        continue
                    ms += self.estimate(spec)
                    estimated, row_estimated = True, True
                    if e is not None:  # a table with energy: the same estimator, fitted on its energy rows
                        e = None if (ee := self.estimate_energy(spec)) is None else e + ee
                else:
                    ms += entry.latency_ms
                    e = None if e is None or entry.energy_mJ is None else e + entry.energy_mJ
            rows.append(LayerLatency(name, key, ms, row_estimated, e, note))
            computes.append(not all(isinstance(g, LayerSpec) and (not g.computes or g.op == "boundary")
                                    for g in group))
            energy = None if energy is None or e is None else energy + e
        if missing:
            raise self.missing_error(missing, space, arch)
        total = sum(row.ms for row in rows)
        pred = LatencyPrediction(total, energy, rows, estimated, raw_ms=total)
        if calibrated and self.calibration is not None:
            pred = self._calibrate(pred, computes)
        check_positive(pred, self.device, str(self.table.meta_path or self.device), space, arch,
                       fix="re-fit the calibration on this host (validate with calibrate=True) or predict with "
                           "calibrated=False" if pred.calibrated else
                           "the table's rows sum to no time: measure the layers again (`nas lut profile`)")
        return pred

    def _resized_classifier(self, spec: LayerSpec, table_classes: int, resolution: int):
        """(entry, note) for a classifier with another output count than the table measured: the measured row
        at ``table_classes`` outputs, latency and energy scaled by outputs / ``table_classes`` (a linear layer's
        work is proportional to its outputs); (None, "") when the table has no such row either."""
        measured = dataclasses.replace(spec, cout=table_classes)
        base = self.table.lookup(deploy_signature(measured.signature, self.dtype), resolution)
        if base is None:
            return None, ""
        f = spec.cout / table_classes
        entry = Entry(base.latency_ms * f, base.spread_ms * f, base.repeats,
                      None if base.energy_mJ is None else base.energy_mJ * f, base.source_key, base.note)
        return entry, f"classifier scaled from the table's {table_classes} outputs to {spec.cout} (x{f:.3g})"

    def table_space(self, space: SearchSpace | str) -> str | None:
        """The name this table lists ``space``'s fixed groups and precision boundaries under (metadata ``fixed``,
        ``boundaries``): the listed space with the same structure (:attr:`SearchSpace.structure_hash`), so a
        renamed copy is priced as its original and a file that keeps a listed name with other layers is not; a
        listed name no space file answers to matches by name. A name (str) is taken as it is."""
        if isinstance(space, str):
            return space
        key = (space.structure_hash, space.name)
        if key not in self._listed:
            names = sorted(set(self.table.boundary_spaces()) | {str(g["space"]) for g in self.table.meta.get("fixed")
                                                                 or []})
            structures = {n: _structure_of(n) for n in names}
            found = next((n for n, h in structures.items() if h == key[0]), None)
            if found is None and space.name in structures and structures[space.name] is None:
                found = space.name  # listed, but no file says what it is: the name is all there is
            self._listed[key] = found
        return self._listed[key]

    def _items(self, specs: list[LayerSpec], space_name: str | None):
        """(breakdown name, key, what prices it) per priced item: a layer's own row, its convs (a per-conv
        table) or a fixed group's constant (for the group's first layer; the others are covered by it)."""
        groups = {g.layers[0]: g for g in self._fixed_groups(space_name)}
        covered = {n for g in groups.values() for n in g.layers}
        per_conv = self.table.granularity == "conv"
        for spec in specs:
            if spec.name in groups:
                g = groups[spec.name]
                yield "+".join(g.layers), f"fixed:{g.entry.source_key or '+'.join(g.layers)}", [g.entry]
            elif spec.name not in covered:
                sig = deploy_signature(spec.signature, self.dtype)
                yield spec.name, spec.key if sig is spec.signature else signature_key(sig), \
                    (spec.convs() if per_conv else [spec])
        if space_name in self.boundaries:
            for b in layer_boundaries(specs):
                yield b.name, b.key, [b]

    def _fixed_groups(self, space_name: str | None) -> list:
        if space_name not in self._groups:
            self._groups[space_name] = self.table.fixed_groups(space_name)
        return self._groups[space_name]

    def layer_ms(self, spec: LayerSpec, space: SearchSpace | str, resolution: int) -> float | None:
        """One layer's ms in this table, without boundaries: its row, its convs' rows (a per-conv table) or, for a
        layer of a fixed group, the group's value on the group's first layer and 0 on the others; None when a
        row is missing (what transferred models build their features from). ``space``: see :meth:`table_space`."""
        for g in self._fixed_groups(self.table_space(space)):
            if spec.name in g.layers:
                return g.entry.latency_ms if spec.name == g.layers[0] else 0.0
        total = 0.0
        for unit in (spec.convs() if self.table.granularity == "conv" else [spec]):
            entry = self.table.lookup(deploy_signature(unit.signature, self.dtype), resolution)
            if entry is None and not unit.computes:
                entry = IDENTITY
            if entry is None:
                return None
            total += entry.latency_ms
        return total

    def _calibrate(self, pred: LatencyPrediction, computes: list[bool]) -> LatencyPrediction:
        c = self.calibration
        rows = []
        for row, comp in zip(pred.rows, computes):
            rows.append(LayerLatency(row.name, row.key, c.scale * row.ms + (c.per_layer_ms if comp else 0.0),
                                     row.estimated, row.energy_mJ))
        rows.append(LayerLatency("calibration offset", "calibration", c.offset_ms))
        total = sum(r.ms for r in rows)
        return LatencyPrediction(total, pred.energy_mJ, rows, pred.estimated, True, pred.raw_ms)

    def estimate(self, spec: LayerSpec) -> float:
        """The layer's latency (ms, at this model's dtype) by :mod:`nas.latency.estimate`, fitted on this table:
        what ``allow_estimate=True`` fills a missing signature with."""
        from nas.latency.estimate import Estimator

        if self._estimator is None:
            self._estimator = Estimator({s: e.latency_ms for (_, s), e in self.table.entries.items()})
        return self._estimator.estimate(deploy(spec, self.dtype))

    def estimate_energy(self, spec: LayerSpec) -> float | None:
        """The layer's energy (mJ, at this model's dtype) by the same estimator fitted on the table's energy rows:
        what ``allow_estimate=True`` fills a missing signature's energy with; None for a table without energy."""
        from nas.latency.estimate import Estimator

        if self._energy_estimator is None:
            rows = {s: e.energy_mJ for (_, s), e in self.table.entries.items() if e.energy_mJ is not None}
            self._energy_estimator = Estimator(rows) if rows else False
        return self._energy_estimator.estimate(deploy(spec, self.dtype)) if self._energy_estimator else None

    def missing_error(self, missing: list[LayerSpec], space: SearchSpace, arch: Architecture | None) -> NasError:
        """The error for layers this table has no entry for: lists their signatures (at this model's dtype)
        and the ``nas lut profile`` command that measures them (for ``arch``'s layers, or the whole space)."""
        keys = list(dict.fromkeys(signature_key(deploy_signature(s.signature, self.dtype)) for s in missing))
        shown = ", ".join(keys[:_SHOW_MISSING]) + (f" and {len(keys) - _SHOW_MISSING} more" if
                                                   len(keys) > _SHOW_MISSING else "")
        dtype = "" if self.dtype == "arch" else f" --dtype {self.dtype}"
        dtype += " --boundaries" if any(s.op == "boundary" for s in missing) else ""
        target = "--archs ARCHS.csv" if arch is not None else "--all"
        return NasError(
            f"table '{self.device}' has no entry for {len(keys)} layer signature(s) of space {space.name}: {shown}",
            where=str(self.table.csv_path or self.device),
            fix=f"measure them with `nas lut profile --space {space.name} --device-name {self.device}{dtype} "
                f"{target}` on that device, or pass allow_estimate=True to fill them from the documented estimator")

    # --- coverage ---------------------------------------------------------------------------------------
    def missing_for(self, space: SearchSpace) -> list[LayerSpec]:
        listed = self.table_space(space)
        covered = {n for g in self._fixed_groups(listed) for n in g.layers}
        per_conv = self.table.granularity == "conv"
        missing = []
        for r in space.resolutions:
            for sig, spec in space_signatures(space, self.dtype, [r]).items():
                if spec.name in covered or not spec.computes:
                    continue
                for unit in (spec.convs() if per_conv else [spec]):
                    if space.table_classes and unit.op == "linear" and unit.cout == space.num_classes:
                        unit = dataclasses.replace(unit, cout=space.table_classes)  # priced by resizing that row
                    if self.table.lookup(deploy_signature(unit.signature, self.dtype), r) is None:
                        missing.append(unit)
            if listed in self.boundaries:
                missing += [b for sig, b in space_boundaries(space, [r]).items() if self.table.lookup(sig, r) is None]
        return missing

    def check_covers(self, space: SearchSpace) -> None:
        missing = self.missing_for(space)
        if missing:
            raise self.missing_error(missing, space, None)


def _structure_of(name: str) -> str | None:
    """The structure hash of the space a table lists by ``name``: the shipped file of that name, else a space of
    that name loaded in this process (``nas.space.load_space``); None when no file answers to it."""
    from nas.space import SPACES_DIR, load_space

    shipped = SPACES_DIR / f"{name}.yaml"
    try:
        return load_space(shipped if shipped.is_file() else name).structure_hash
    except NasError:
        return None
