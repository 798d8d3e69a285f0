"""The transferred latency model: a new device's latency from source tables, with coefficients fitted by
:mod:`nas.latency.transfer.adapt`; read from and written to plain YAML (``<name>.transfer.yaml``).

A prediction is ``network_ms + Σ_layers (coef · features(layer) + correction(layer))``, the features being each
source table's latency of the layer and table-free counts (:func:`layer_features`), the corrections per layer
key (fitted from k >= 20 measurements where cross-validation says they help; none otherwise). A layer a source table lacks is an error
listing the missing signatures, or, with ``allow_estimate=True``, that table's estimate
(:meth:`TableLatencyModel.estimate`) and the row is flagged. A transferred model has no calibration: its
coefficients are themselves fitted on whole networks, so ``calibrated=True`` and ``False`` give the same
fitted prediction, whose ``calibrated`` is False (``raw_ms`` = ``latency_ms``). A model records the
``feature_version`` its table-free features were computed with (absent: 1, before channel shuffles counted as
kernels and ``dw_macs_M`` existed; 3: as 2, but ``layers`` is no longer fitted, :data:`UNFITTED_FEATURES`) and is
predicted with that version. A model fitted at dtype ``arch`` (each
layer at its own bits) loads at any dtype its source tables price (its sources then deploy every layer at that
dtype); one fitted at ``fp32`` or ``int8`` only at its own. A source listed with ``part`` is that precision part of
the table (:mod:`nas.latency.transfer.precision`). ``reference_ms`` (optional) is the reference-kernel time its
milliseconds are expressed at (:mod:`nas.latency.measure.network_times`); ``host_fingerprint`` or ``host`` where they
were measured (:mod:`nas.latency.measure.host`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from nas.errors import NasError
from nas.fileio import atomic_write_text, read_yaml
from nas.latency.predict import LatencyModel, LatencyPrediction, LayerLatency, TableLatencyModel, check_positive
from nas.latency.signatures import check_dtype, deploy
from nas.latency.table import SHIPPED_DIR, list_transferred, read_table
from nas.latency.transfer.precision import wrap
from nas.layers import LayerSpec, plan
from nas.space import SearchSpace
from nas.space.arch import Architecture

KIND = "transferred"
SCHEMA_VERSION = 1
TRANSFER_SUFFIX = ".transfer.yaml"
LAYER_FEATURES = ("macs_M", "params_M", "kernels", "activations_M", "layers", "dw_macs_M")
EXTRA_FEATURES = ("dw_macs_M",)  # enter a fit only where cross-validation on the k measurements prefers them
# from version 3 never fitted: a per-layer overhead is the kernel count's near-collinear twin (every computing layer
# launches >= 1 kernel, and graph runtimes dispatch per kernel), so NNLS on 10 points traded one for the other on
# noise; computed as before so that older models keep predicting with it
UNFITTED_FEATURES = ("layers",)
NETWORK_FEATURE = "network_ms"
# 3: as 2, `layers` not fitted; 2: kernels count the channel shuffle after a grouped 1x1 conv, dw_macs_M exists;
# 1: models fitted before
FEATURE_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)


def layer_features(spec: LayerSpec, version: int = FEATURE_VERSION) -> tuple[float, ...]:
    """The table-free per-layer features, in :data:`LAYER_FEATURES` order (``version`` 1: as models fitted
    before feature version 2 counted them; versions 2 and 3 compute the same values)."""
    if not spec.computes:
        return (0.0,) * len(LAYER_FEATURES)
    parts = spec.parts()
    ho, wo = spec.out_hw
    if spec.op == "ir":
        act = spec.h * spec.w * spec.cin + (spec.h * spec.w * spec.mid if spec.expand_conv else 0) \
            + ho * wo * spec.mid + ho * wo * spec.cout
    else:
        act = spec.h * spec.w * spec.cin + ho * wo * spec.cout
    kernels = len(parts) + (spec.op == "pool") + bool(spec.residual)
    dw_macs = 0.0
    if version >= 2:  # the built network shuffles channels after a grouped expand conv (nas.nn.build)
        kernels += spec.op == "ir" and spec.expand_conv and spec.groups > 1
        dw_macs = parts[spec.depthwise_index][2] / 1e6 if spec.op == "ir" else 0.0
    return (sum(m for _, _, m in parts) / 1e6, spec.params() / 1e6, float(kernels), act / 1e6, 1.0, dw_macs)


class Features:
    """Per-layer feature rows of architectures from source tables (cached per layer signature)."""

    def __init__(self, sources: list[TableLatencyModel], space: SearchSpace, *, version: int = FEATURE_VERSION):
        if not sources:
            raise NasError(f"no source table covers space {space.name}", argument="sources",
                           fix="list tables that cover it in sources (`nas lut list` shows them)")
        self.sources = sources
        self.space = space
        self.names = [f"table:{s.device}" for s in sources] + list(LAYER_FEATURES)
        self.version = version
        self._cache: dict[tuple, tuple[np.ndarray, bool]] = {}

    def layers(self, arch: Architecture, *, allow_estimate: bool = False
               ) -> tuple[list[LayerSpec], np.ndarray, list[bool]]:
        """The layers of ``arch``, their feature rows and whether each row holds an estimate (a source table
        lacked the layer; only with ``allow_estimate=True``, else that table's error lists what it lacks)."""
        specs = plan(arch, self.space)
        rows, estimated = [], []
        missing: dict[int, list[LayerSpec]] = {}  # source index -> layers it lacks
        for spec in specs:
            key = (arch.resolution, spec.signature)
            hit = self._cache.get(key)
            if hit is None or (hit[1] and not allow_estimate):
                ms = [self._table_ms(src, spec, arch.resolution, allow_estimate, self.space.name)
                      for src in self.sources]
                for i, m in enumerate(ms):
                    if m is None:
                        missing.setdefault(i, []).append(spec)
                if any(m is None for m in ms):
                    continue
                hit = (np.array([m for m, _ in ms] + list(layer_features(spec, self.version))), any(e for _, e in ms))
                self._cache[key] = hit
            rows.append(hit[0])
            estimated.append(hit[1])
        if missing:
            i = min(missing)
            raise self.sources[i].missing_error(missing[i], self.space, arch)
        return specs, np.vstack(rows), estimated

    @staticmethod
    def _table_ms(src: TableLatencyModel, spec: LayerSpec, resolution: int, allow_estimate: bool,
                  space_name: str) -> tuple[float, bool] | None:
        """(ms, estimated) of the layer in one source table; None when it lacks it and estimates are not allowed."""
        ms = src.layer_ms(spec, space_name, resolution)
        if ms is not None:
            return ms, False
        return (src.estimate(spec), True) if allow_estimate else None

    def network(self, arch: Architecture) -> np.ndarray:
        """Whole-network features: the layer features summed, then 1 for the network constant."""
        return np.append(self.layers(arch)[1].sum(axis=0), 1.0)

    def matrix(self, archs) -> np.ndarray:
        return np.vstack([self.network(a) for a in archs])


class TransferredLatencyModel(LatencyModel):
    """A latency model for a new device fitted from k whole-network measurements over source tables."""

    def __init__(self, doc: dict, *, path: Path | None = None, dtype: str | None = None,
                 sources: list[TableLatencyModel] | None = None):
        self.doc = doc
        self.path = path
        where = str(path or "transferred model")
        try:
            self.device = str(doc["device"])
            self.space_name = str(doc["space"])
            self.dtype = check_dtype(doc.get("dtype"))
            self.threads = int(doc.get("threads", 1) or 1)
            coefs = {str(k): float(v) for k, v in doc["coefficients"].items()}
            source_docs = list(doc["sources"])
            self.corrections = {str(k): float(v) for k, v in (doc.get("corrections") or {}).items()}
            self.network_correction = float(doc.get("network_correction_ms", 0.0))
            self.feature_version = int(doc.get("feature_version", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise NasError(f"transferred model is malformed ({exc})", where=where,
                           fix="re-create it with `nas lut adapt`") from None
        if self.feature_version not in SUPPORTED_VERSIONS:
            raise NasError(f"feature_version {self.feature_version} is not supported (this version computes "
                           f"{', '.join(map(str, SUPPORTED_VERSIONS))})", where=where,
                           fix="re-create it with `nas lut adapt`")
        self.reference_ms = doc.get("reference_ms")  # units of its ms (see nas.latency.measure.network_times)
        fitted = self.dtype
        if dtype is not None and check_dtype(dtype) != self.dtype:
            if self.dtype != "arch":  # measured at every layer's own bits, it prices fp32 and int8 layers alike
                raise NasError(f"transferred model was fitted at dtype {self.dtype}, not {dtype}", where=where,
                               fix=f"load it with dtype='{self.dtype}' or adapt again from measurements at {dtype} "
                                   "(or at the architectures' own bits, dtype='arch', which predicts every dtype)")
            self.dtype = check_dtype(dtype)
        self.sources = list(sources or [])
        read: dict = {}  # a table split by precision is listed once per part: read it once
        for s in source_docs if sources is None else []:
            path = _source_path(s)
            if path not in read:
                read[path] = read_table(path)
            table = read[path]
            if table.content_hash() != s["content_hash"]:
                raise NasError(f"source table '{s['device']}' changed since the transfer was fitted "
                               f"(hash {table.content_hash()} != {s['content_hash']})", where=where,
                               fix="run `nas lut adapt` again with the same measurements")
            self.sources.append(wrap(TableLatencyModel(table, dtype=self.dtype, use_calibration=False), s))
        lacking = [s.device for s in self.sources if self.dtype not in str(s.table.meta.get("dtype", "")).split(",")]
        if self.dtype != fitted and lacking:
            raise NasError(f"transferred model was fitted at dtype {fitted}, and its source table(s) "
                           f"{', '.join(lacking)} do not price {self.dtype}", where=where,
                           fix=f"load it with dtype='{fitted}', or adapt from tables that price {self.dtype}")
        names = [f"table:{s.device}" for s in self.sources] + list(LAYER_FEATURES) + [NETWORK_FEATURE]
        unknown = sorted(set(coefs) - set(names))
        if unknown:
            raise NasError(f"unknown coefficient(s) {', '.join(unknown)}", where=where,
                           fix=f"coefficients may be {', '.join(names)}")
        self.coef = np.array([coefs.get(n, 0.0) for n in names])
        self._features: Features | None = None

    @classmethod
    def read(cls, path: str | Path, *, dtype: str | None = None) -> "TransferredLatencyModel":
        path = Path(path)
        if not path.is_file():
            raise NasError("transferred model file not found", where=str(path),
                           fix="give the file written by `nas lut adapt -o PATH`")
        doc = read_yaml(path)
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise NasError(f"not a transferred latency model (kind: {KIND} missing)", where=str(path))
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise NasError(f"schema_version {doc.get('schema_version')!r} is not supported (this version reads "
                           f"{SCHEMA_VERSION})", where=str(path), fix="re-create it with `nas lut adapt`")
        return cls(doc, path=path, dtype=dtype)

    def write(self, path: str | Path) -> Path:
        """Write the model as YAML, atomically (``nas.fileio``)."""
        self.path = atomic_write_text(path, yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True))
        return self.path

    @property
    def identity(self) -> dict:
        return {"kind": KIND, "device": self.device, "table": str(self.path or ""), "schema_version": SCHEMA_VERSION,
                "content_hash": self.content_hash(), "dtype": self.dtype, "calibrated": False,
                "k": self.doc.get("k"), "method": self.doc.get("method"),
                "sources": [s.device for s in self.sources]}

    def content_hash(self) -> str:
        import hashlib
        import json

        body = {k: self.doc.get(k) for k in ("space", "dtype", "coefficients", "sources")}
        if self.feature_version != 1:
            body.update(feature_version=self.feature_version)
        if self.corrections:
            body.update(corrections=self.corrections, network_correction_ms=self.network_correction)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def _check_space(self, space: SearchSpace) -> None:
        if space.name != self.space_name:
            raise NasError(f"transferred model '{self.device}' was fitted for space {self.space_name}, "
                           f"not {space.name}", where=str(self.path or self.device),
                           fix=f"predict architectures of {self.space_name}, or adapt from measurements in "
                               f"{space.name}")

    def features(self, space: SearchSpace) -> Features:
        self._check_space(space)
        if self._features is None or self._features.space is not space:
            self._features = Features(self.sources, space, version=self.feature_version)
        return self._features

    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False,
                calibrated: bool = True) -> LatencyPrediction:
        """The fitted model's latency with a per-layer breakdown plus a ``network constant`` row.

        ``allow_estimate=True``: a layer a source table lacks is priced with that table's estimate and its
        row flagged (else the error lists the missing signatures). ``calibrated`` changes nothing: a
        transferred model has no calibration (it is fitted end to end); the prediction says
        ``calibrated=False``."""
        specs, rows, estimated = self.features(space).layers(arch, allow_estimate=allow_estimate)
        per_layer = rows @ self.coef[:-1]
        fix = self.corrections
        keys = [s.key if self.dtype == "arch" else deploy(s, self.dtype).key for s in specs]  # as deployed
        out = [LayerLatency(s.name, key, float(ms) + (fix.get(key, 0.0) if s.computes else 0.0), est)
               for s, key, ms, est in zip(specs, keys, per_layer, estimated)]
        out.append(LayerLatency("network constant", NETWORK_FEATURE, float(self.coef[-1]) + self.network_correction))
        total = float(sum(r.ms for r in out))
        pred = LatencyPrediction(total, None, out, any(estimated), False, total)
        check_positive(pred, self.device, str(self.path or self.device), space, arch,
                       fix="adapt it again from more measurements (`nas lut adapt`)")
        return pred

    def check_covers(self, space: SearchSpace) -> None:
        self._check_space(space)
        checked = set()
        for src in self.sources:  # the precision parts of one table cover what the table covers: checked once
            if id(src.table) not in checked:
                checked.add(id(src.table))
                src.check_covers(space)


def _source_path(src: dict) -> str:
    """A source's table: its recorded path (relative = to the shipped data's folder) if present, else its device
    name."""
    p = Path(str(src["table"]))
    p = p if p.is_absolute() else SHIPPED_DIR.parent / p
    return str(p) if p.is_file() else str(src["device"]).removesuffix(f":{src['part']}" if src.get("part") else "")


def is_transferred_ref(device_or_path: str) -> Path | None:
    """The model file if ``device_or_path`` names a transferred model (a path or a name in the table dirs)."""
    text = str(device_or_path)
    if text.endswith(TRANSFER_SUFFIX) or (text.endswith((".yaml", ".yml")) and not text.endswith(".meta.yaml")):
        return Path(text)
    if "/" in text or text.endswith(".csv"):
        return None
    return list_transferred().get(text)
