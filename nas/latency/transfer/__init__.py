"""Latency for a new device from k whole-network measurements over existing tables (``nas lut adapt``):
the model (``model``), its fit (``adapt``), which architectures to measure (``suggest``), a table adapted to this
host in one step (``here``: ``nas lut adapt --measure-here``) and source tables split by precision
(``precision``)."""
from nas.latency.transfer.adapt import adapt, quality_summary
from nas.latency.transfer.model import TransferredLatencyModel
from nas.latency.transfer.suggest import suggest

__all__ = ["TransferredLatencyModel", "adapt", "quality_summary", "suggest"]
