"""The one way to get a LatencyModel from a name or a path: a measured table, or a transferred model."""
from __future__ import annotations

from nas.latency.predict import LatencyModel, TableLatencyModel
from nas.latency.table import read_table
from nas.latency.transfer.model import TransferredLatencyModel, is_transferred_ref


def load(name_or_path: str, *, dtype: str | None = None, calibrated: bool = True) -> LatencyModel:
    """A shipped or profiled table by device name, or a table's CSV / metadata path, as a LatencyModel.

    ``dtype``: ``arch`` (default: each layer at the bit-widths the architecture chose), ``fp32`` or ``int8``
    (every layer deployed at that precision). ``calibrated=False`` ignores a stored calibration.
    A transferred model (``nas lut adapt``: a ``.transfer.yaml`` path or its name) loads as one too; it has no
    calibration (it is fitted on whole networks), so ``calibrated`` does not change it.
    """
    transferred = is_transferred_ref(name_or_path)
    if transferred is not None:
        return TransferredLatencyModel.read(transferred, dtype=dtype)
    return TableLatencyModel(read_table(name_or_path), dtype=dtype, use_calibration=calibrated)
