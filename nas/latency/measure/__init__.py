"""Measuring on this machine with onnxruntime: the timing protocol (``timing``), layer tables (``profile``)
and whole networks against a table (``validate``). Imports torch and onnxruntime inside its functions."""
