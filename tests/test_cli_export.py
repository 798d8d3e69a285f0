"""`nas export`: what it prints per exported model."""
from __future__ import annotations

from nas.cli.export import result_line


def test_item14_an_untimed_model_prints_without_crashing():
    row = {"name": "trial3", "status": "ok", "fp32_acc": 0.91, "quant_acc": 0.9, "size_ratio": 0.26, "fp32_ms": 2.5,
           "quant_ms": None, "speedup": None, "latency_error": "quantized: measured at or below the overhead"}
    assert result_line(row) == ("trial3: acc fp32 0.9100 -> quantized 0.9000, size x0.26, 2.500 -> (not timed) ms; "
                                "timing failed: quantized: measured at or below the overhead")
    row = {**{k: v for k, v in row.items() if k != "latency_error"}, "quant_ms": 1.25, "speedup": 2.0}
    assert result_line(row) == "trial3: acc fp32 0.9100 -> quantized 0.9000, size x0.26, 2.500 -> 1.250 ms (x2.00)"
    assert result_line({"name": "t", "status": "error", "error": "boom"}) == "t: FAILED: boom"
