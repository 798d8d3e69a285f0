"""Latency for a new device from k whole-network measurements over existing tables (``nas lut adapt``):
the model (``model``), its fit (``fit``) and which architectures to measure (``suggest``)."""
from nas.latency.transfer.fit import adapt, quality_summary
from nas.latency.transfer.model import TransferredLatencyModel
from nas.latency.transfer.suggest import suggest

__all__ = ["TransferredLatencyModel", "adapt", "quality_summary", "suggest"]
