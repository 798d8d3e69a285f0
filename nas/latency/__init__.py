"""Latency tables: schema and IO (table), published-table importers, prediction (model), the explicit
estimator (estimate), the onnxruntime profiler (profile) and end-to-end validation + calibration (validate).

Only ``profile`` and ``validate`` import torch / onnxruntime, and only inside their functions.
"""
from nas.latency.model import (Calibration, LatencyModel, LatencyPrediction, LayerLatency, TableLatencyModel,
                               load_latency_model)
from nas.latency.table import SCHEMA_VERSION, LatencyTable, list_devices, read_table

__all__ = ["Calibration", "LatencyModel", "LatencyPrediction", "LayerLatency", "TableLatencyModel",
           "load_latency_model", "SCHEMA_VERSION", "LatencyTable", "list_devices", "read_table"]
