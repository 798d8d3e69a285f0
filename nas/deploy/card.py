"""The model card (card.json) and the summary.csv row of an exported model."""
from __future__ import annotations

import datetime as _dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from nas.bits import Bits
from nas.deploy.targets import Target, plain, trial_attrs
from nas.errors import NasError
from nas.fileio import atomic_write_text
from nas.latency.measure.timing import TOO_FAST
from nas.layers import LayerSpec, count

FP32_NAME, QUANT_NAME, CARD_NAME, SUMMARY_NAME = "model.onnx", "model.quant.onnx", "card.json", "summary.csv"
CARD_VERSION = 1


def bit_histogram(specs: list[LayerSpec]) -> dict[str, int]:
    """How many layers with weights deploy at each bit-width label ('int8': 9, 'w4a8': 1, ...; a block whose
    depth-wise conv has its own bits: 'w8a8/dw w4a8')."""
    return dict(Counter(_label(s) for s in specs if s.weight_params()))


def _label(s: LayerSpec) -> str:
    pw, dw = Bits(s.wbits, s.abits).label, Bits(s.dw_wbits, s.dw_abits).label
    return pw if pw == dw else f"{pw}/dw {dw}"


def containers(specs: list[LayerSpec]) -> dict[str, str]:
    """How bit-widths without an ONNX type are stored (nas.nn.quantize), for the bit-widths this model uses."""
    w = {b for s in specs if s.weight_params() for b in (s.wbits, s.dw_wbits)}
    a = {b for s in specs if s.weight_params() for b in (s.abits, s.dw_abits)}
    out = {}
    if 6 in w:
        out["w6"] = "int8 container holding 6-bit levels -31..31 (per-channel scale max|w| / 31)"
    for bits in sorted(a & {4, 6}):
        out[f"a{bits}"] = (f"uint8 container holding {2 ** bits} levels over the calibrated range (values beyond "
                           f"it are not clipped to {2 ** bits - 1})")
    return out


def layer_rows(specs: list[LayerSpec]) -> list[dict]:
    """One card row per layer; ``deployed`` is its bit-width label, '-' for an identity skip (runs nothing)."""
    return [{"name": s.name, "op": s.op, "key": s.key, "wbits": s.wbits, "abits": s.abits,
             **({"dw_wbits": s.dw_wbits, "dw_abits": s.dw_abits} if s.per_role else {}),
             "deployed": _label(s) if s.computes else "-"} for s in specs]


def provenance(target: Target) -> dict:
    """Where the model came from; a study trial's stored attributes (read with the target, else read here, best
    effort), and the time. The storage URL is stored without its password (``***``)."""
    from nas.search.storage import public_url

    prov = dict(target.provenance)
    if prov.get("source") == "study":
        url = prov["storage"]
        if "trial_attrs" not in prov:  # a target made by hand: read that trial now
            try:
                prov["trial_attrs"] = trial_attrs(url, prov["study"], prov["trial"])
            except Exception as exc:  # provenance is best effort; the export itself is valid
                prov["trial_attrs_error"] = str(exc).replace(url, public_url(url))
        prov["storage"] = public_url(url)
    return {**prov, "exported": _dt.datetime.now().isoformat(timespec="seconds")}


def build_card(target: Target, space, arch, specs: list[LayerSpec], *, deployment: str, folder: Path,
               sections: dict[str, Any]) -> dict:
    """The card of one exported model: what it is (arch, sums, layers, bit-widths, file sizes) followed by the
    pipeline's ``sections`` (training, onnx_check, quantization, accuracy, latency) and its provenance."""
    cost = count(specs)
    sizes = {name: (folder / name).stat().st_size for name in (FP32_NAME, QUANT_NAME)}
    return {
        "card_version": CARD_VERSION,
        "name": target.name,
        "space": space.name,
        "arch": space.format(arch),
        "deployment": deployment,
        "arch_json": json.loads(arch.to_json()),
        "num_classes": space.num_classes,  # a user's data: its own class count
        "params": cost.params,
        "macs": cost.macs,
        "size_bytes_analytic": cost.size_bytes,
        "layers": layer_rows(specs),
        "bit_widths": bit_histogram(specs),
        **({"bit_containers": containers(specs)} if containers(specs) else {}),
        "files": {**sizes, "size_ratio": sizes[QUANT_NAME] / sizes[FP32_NAME]},
        **{k: timed(v) if k == "latency" else v for k, v in sections.items()},
        "provenance": provenance(target),
    }


def timed(latency: dict) -> dict:
    """The latency section with each file that has no measured time (NaN from ``measure_onnx``, whose
    ``Measured.failures`` say why; any value <= 0) as None, the reason under ``measurement_failed`` and no
    speedup: a card never says 0 ms, and stays strict JSON."""
    measured = latency.get("measured_ms") or {}
    failed = {k: TOO_FAST for k, v in measured.items() if v is None or not (math.isfinite(v) and v > 0)}
    if not failed:
        return latency
    iqr = latency.get("measured_iqr_ms") or {}
    return {**latency, "measured_ms": {k: None if k in failed else v for k, v in measured.items()},
            "measured_iqr_ms": {k: None if k in failed else v for k, v in iqr.items()}, "speedup": None,
            "measurement_failed": failed}


def write_card(folder: Path, card: dict) -> Path:
    return atomic_write_text(folder / CARD_NAME, json.dumps(card, indent=2, default=plain) + "\n")


def summary_row(target: Target, card: dict | None, error: str | None) -> dict:
    row: dict[str, Any] = {"name": target.name, "status": "error" if error else "ok", "error": error or "",
                           "trial": target.provenance.get("trial", ""), "arch": target.arch}
    if card:
        row.update(params=card["params"], macs=card["macs"], fp32_bytes=card["files"][FP32_NAME],
                   quant_bytes=card["files"][QUANT_NAME], size_ratio=card["files"]["size_ratio"],
                   fp32_acc=card["accuracy"]["fp32"], quant_acc=card["accuracy"]["quantized"],
                   drop_points=card["accuracy"]["drop_points"], fp32_ms=card["latency"]["measured_ms"]["fp32"],
                   quant_ms=card["latency"]["measured_ms"]["quantized"], speedup=card["latency"]["speedup"])
        if card["latency"].get("measurement_failed"):
            row["latency_error"] = "; ".join(f"{k}: {why}" for k, why in card["latency"]["measurement_failed"].items())
        for device, p in card["latency"]["predicted_ms"].items():
            row[f"predicted_quant_ms.{device}"] = p.get("quantized_ms")
            row[f"predicted_fp32_ms.{device}"] = p.get("fp32_ms")
    return row


def read_summary(path: Path) -> list[dict]:
    """The rows of an existing summary.csv (none if there is none), as text: an earlier export's rows are kept
    as they were written."""
    import pandas as pd

    if not path.exists():
        return []
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise NasError(f"cannot read the summary of earlier exports ({exc})", where=str(path),
                       fix="move it away (its models stay in their folders) or export into another folder") from None
    if "name" not in df.columns:
        raise NasError("not a summary.csv written by nas export (no name column)", where=str(path),
                       fix="export into another folder")
    return df.to_dict("records")


def write_summary(path: Path, earlier: list[dict], rows: list[dict]) -> Path:
    """summary.csv: the earlier rows with this run's ``rows`` merged in by model name (a re-exported model's row
    is replaced where it was, a new one is added at the end); written atomically."""
    import pandas as pd

    merged = {r["name"]: r for r in earlier}
    merged.update((r["name"], r) for r in rows)
    return atomic_write_text(path, pd.DataFrame(list(merged.values())).to_csv(index=False))
