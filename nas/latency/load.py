"""The one way to get a LatencyModel from a name or a path: a measured table, or a transferred model."""
from __future__ import annotations

import warnings

from nas.deprecation import renamed_arguments
from nas.latency.measure.host import HostMismatchWarning, host_warning
from nas.latency.predict import LatencyModel, TableLatencyModel
from nas.latency.table import read_table
from nas.latency.transfer.model import TransferredLatencyModel, is_transferred_ref


@renamed_arguments(name_or_path="device")
def load(device: str, *, dtype: str | None = None, calibrated: bool = True) -> LatencyModel:
    """``device``: a shipped or profiled table by device name, or a table's CSV / metadata path, as a LatencyModel.

    ``dtype``: ``arch`` (default: each layer at the bit-widths the architecture chose), ``fp32`` or ``int8``
    (every layer deployed at that precision). ``calibrated=False`` ignores a stored calibration.
    A transferred model (``nas lut adapt``: a ``.transfer.yaml`` path or its name) loads as one too; it has no
    calibration (it is fitted on whole networks), so ``calibrated`` does not change it.

    A table or model this project measured on another host (its ``host_fingerprint`` differs from this
    host's), or measured by this project's protocol without a fingerprint (the shipped ``x86-2vcpu``), gives a
    :class:`~nas.latency.measure.host.HostMismatchWarning` naming the ``nas lut adapt --measure-here`` command
    that adapts it to this host (:func:`~nas.latency.measure.host.host_warning`); published tables of other
    devices never do.
    """
    transferred = is_transferred_ref(device)
    if transferred is not None:
        model = TransferredLatencyModel.read(transferred, dtype=dtype)
        meta, spaces = model.doc, [model.space_name]
    else:
        model = TableLatencyModel(read_table(device), dtype=dtype, use_calibration=calibrated)
        meta, spaces = model.table.meta, list(model.table.meta.get("spaces") or [])
    message = host_warning(meta, device=model.device, spaces=spaces)
    if message:
        warnings.warn(HostMismatchWarning(message), stacklevel=3)  # the caller of load (2: @renamed_arguments)
    return model
