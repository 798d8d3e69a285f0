"""Latency tables and models: schema + IO (``table``), signatures a space needs (``signatures``), prediction
with a per-layer breakdown (``predict``), calibration, the explicit estimator, published-table importers,
metrics, transfer to new devices (``transfer/``) and measurement on this machine (``measure/``).

    import nas.latency
    model = nas.latency.load("raspi4")                 # or a table path, or a .transfer.yaml
    model.predict(arch, space).latency_ms
"""
from nas.latency.calibration import Calibration
from nas.latency.load import load
from nas.latency.predict import LatencyModel, LatencyPrediction, LayerLatency, TableLatencyModel
from nas.latency.table import SCHEMA_VERSION, LatencyTable, list_devices, read_table

__all__ = ["Calibration", "LatencyModel", "LatencyPrediction", "LayerLatency", "TableLatencyModel", "load",
           "SCHEMA_VERSION", "LatencyTable", "list_devices", "read_table"]
