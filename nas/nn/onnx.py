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


def session_options(*, threads: int = 1, optimize: bool = True, optimized_path: str | Path | None = None):
    """The one onnxruntime configuration every session uses: ``threads`` intra-op threads (latency depends on
    it), one inter-op thread, sequential execution, quiet logs; all graph optimizations unless ``optimize`` is
    False (the profiler's Q/DQ boundary model must run unfused)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.log_severity_level = 3
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return opts


def ort_session(model_bytes_or_path, *, threads: int = 1, optimize: bool = True,
                optimized_path: str | Path | None = None):
    """An onnxruntime CPU session (see :func:`session_options`) for model bytes or a file."""
    import onnxruntime as ort

    src = model_bytes_or_path if isinstance(model_bytes_or_path, bytes) else str(model_bytes_or_path)
    return ort.InferenceSession(src, sess_options=session_options(threads=threads, optimize=optimize,
                                                                  optimized_path=optimized_path),
                                providers=["CPUExecutionProvider"])


def run_onnx(session, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.astype(np.float32)})[0]
