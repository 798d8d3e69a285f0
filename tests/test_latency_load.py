"""The factory nas.latency.load: a table or a transferred model from a name or a path; the public exports."""
from __future__ import annotations

import inspect

import pytest

import nas.latency
from nas.errors import NasError
from nas.latency import TableLatencyModel, load
from nas.latency.transfer.model import TransferredLatencyModel
from nas.space import load_space
from helpers_latency import TRANSFER_SPACE, adapt_synthetic, copy_table


def test_public_api():
    assert list(inspect.signature(load).parameters) == ["device", "dtype", "calibrated"]
    assert set(nas.latency.__all__) == {"LatencyModel", "TableLatencyModel", "LatencyPrediction", "LayerLatency",
                                        "Calibration", "LatencyTable", "read_table", "list_devices", "load",
                                        "SCHEMA_VERSION"}
    assert all(hasattr(nas.latency, n) for n in nas.latency.__all__)


def test_tables_by_name_and_by_path_at_a_dtype(tmp_path):
    by_name = load("raspi4", dtype="fp32")
    assert isinstance(by_name, TableLatencyModel) and by_name.dtype == "fp32" and by_name.device == "raspi4"
    path = copy_table(tmp_path)
    for ref in (path, path.with_name("t.meta.yaml")):
        model = load(str(ref))
        assert model.table.entries == by_name.table.entries and model.dtype == "arch"
    with pytest.raises(NasError, match="unknown dtype"):
        load("raspi4", dtype="fp16")


def test_transferred_models_by_path_and_by_name(tmp_path, monkeypatch):
    adapt_synthetic(tmp_path, load_space(TRANSFER_SPACE))
    path = tmp_path / "synthetic.transfer.yaml"
    assert isinstance(load(str(path)), TransferredLatencyModel)
    monkeypatch.setenv("NAS_LATENCY_TABLES", str(tmp_path))
    assert isinstance(load("synthetic", calibrated=False), TransferredLatencyModel)
    # fitted at the architectures' own bits, it predicts the dtypes its sources price (the FBNet tables: fp32)
    assert load("synthetic", dtype="fp32").dtype == "fp32"
    with pytest.raises(NasError, match="fitted at dtype arch, and its source table.* do not price int8") as exc:
        load("synthetic", dtype="int8")
    assert exc.value.fix.startswith("load it with dtype='arch'")
