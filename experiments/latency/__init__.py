"""Latency benchmarks: tables against whole networks, precision boundaries, drift, transfer, this host, bits."""
