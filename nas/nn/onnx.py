"""ONNX export and onnxruntime execution of built networks, shared by profiling, validation and export.

The TorchScript exporter (``dynamo=False``) at opset 21 is ~10x faster than the dynamo exporter, keeps
GlobalAveragePool (which quantizes) and allows 4-bit QDQ later; BatchNorm is folded into the convs.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

OPSET = 21


def export_onnx(model, path: str | Path | None = None, *, batch: int = 1, input_shape: tuple | None = None) -> bytes:
    """Export ``model`` (eval mode) to a single ONNX file (no external data); returns the model bytes."""
    import torch

    shape = input_shape or getattr(model, "input_shape")
    dummy = torch.zeros(batch, *shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (dummy,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"], do_constant_folding=True)
    data = buffer.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def ort_session(model_bytes_or_path, *, threads: int = 1):
    """An onnxruntime CPU session with a fixed thread count (latency depends on it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    src = model_bytes_or_path if isinstance(model_bytes_or_path, bytes) else str(model_bytes_or_path)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.astype(np.float32)})[0]
