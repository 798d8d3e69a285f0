"""Measuring on this machine with onnxruntime: the timing protocol (``timing``), layer tables (``profile``)
and whole networks against a table (``validate``); whole-network times as users bring them, and their units
(``network_times``: the ``--measured`` CSV of ``nas lut adapt`` and ``nas lut fit``). Imports torch and
onnxruntime inside its functions."""
