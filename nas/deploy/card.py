"""The model card (card.json) and the summary.csv row of an exported model."""
from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from nas.bits import Bits
from nas.deploy.targets import Target, plain, trial_attrs
from nas.fileio import atomic_write_text
from nas.layers import LayerSpec, count

FP32_NAME, QUANT_NAME, CARD_NAME, SUMMARY_NAME = "model.onnx", "model.quant.onnx", "card.json", "summary.csv"
CARD_VERSION = 1


def bit_histogram(specs: list[LayerSpec]) -> dict[str, int]:
    """How many layers with weights deploy at each bit-width label ('int8': 9, 'w4a8': 1, ...)."""
    return dict(Counter(Bits(s.wbits, s.abits).label for s in specs if s.weight_params()))


def layer_rows(specs: list[LayerSpec]) -> list[dict]:
    """One card row per layer; ``deployed`` is its bit-width label, '-' for an identity skip (runs nothing)."""
    return [{"name": s.name, "op": s.op, "key": s.key, "wbits": s.wbits, "abits": s.abits,
             "deployed": Bits(s.wbits, s.abits).label if s.computes else "-"} for s in specs]


def provenance(target: Target) -> dict:
    """Where the model came from; a study trial's stored attributes are added (best effort), and the time."""
    prov = dict(target.provenance)
    if prov.get("source") == "study":
        try:
            prov["trial_attrs"] = trial_attrs(prov["storage"], prov["study"], prov["trial"])
        except Exception as exc:  # provenance is best effort; the export itself is valid
            prov["trial_attrs_error"] = str(exc)
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
        "params": cost.params,
        "macs": cost.macs,
        "size_bytes_analytic": cost.size_bytes,
        "layers": layer_rows(specs),
        "bit_widths": bit_histogram(specs),
        "files": {**sizes, "size_ratio": sizes[QUANT_NAME] / sizes[FP32_NAME]},
        **sections,
        "provenance": provenance(target),
    }


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
        for device, p in card["latency"]["predicted_ms"].items():
            row[f"predicted_quant_ms.{device}"] = p.get("quantized_ms")
            row[f"predicted_fp32_ms.{device}"] = p.get("fp32_ms")
    return row
