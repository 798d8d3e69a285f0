"""The model card (card.json) and the summary.csv row of an exported model."""
from __future__ import annotations

from typing import Any
from nas.deploy.targets import Target

FP32_NAME, QUANT_NAME, CARD_NAME, SUMMARY_NAME = "model.onnx", "model.quant.onnx", "card.json", "summary.csv"


def _bit_histogram(specs) -> dict[str, int]:
    from collections import Counter

    from nas.nn.quantize import Bits

    return dict(Counter(Bits(s.wbits, s.abits).label for s in specs if s.weight_params()))


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
